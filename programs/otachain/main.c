/* otachain: the command line for keys, TUF repository authoring, multi-party
 * signing, publishing and verification (docs/cli.md).
 *
 * `otachain <group> <verb> [options]`. main() parses nothing but the
 * group and verb; each verb parses its own options (cli.c) and returns an
 * error code that main prints and maps to the exit status.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otachain/test_hooks.h"

#include "cli.h"
#include "cmds.h"

#ifndef OTACHAIN_VERSION
#define OTACHAIN_VERSION "0.0.0-dev"
#endif

/* Every global of the program (STYLE rule 7). */
static struct {
    struct ota_test_hooks hooks; /* clock and fault injection (test builds only) */
    struct cli_ctx ctx;
} g;

/* The transfer options of every verb that fetches (cli.h CLI_HTTP_OPTS,
 * docs/cli.md "Transfers"). */
#define TRANSFER_HELP                                                                              \
    "\nTransfer options (http:// and https:// only; TLS 1.2 or newer, always verified):\n"         \
    "  --ca-file PEM          CAs to trust instead of the system's\n"                              \
    "  --client-cert PEM      certificate for mutual TLS (--client-key PEM: its key,\n"            \
    "                         if not in the same file)\n"                                          \
    "  --connect-timeout D    to connect, TLS included (default 10s)\n"                            \
    "  --min-rate N           bytes/s each transfer must average (default 1024)...\n"              \
    "  --rate-grace D         ...once this is over (default 10s)\n"                                \
    "  --stall-timeout D      longest wait for the next byte (default 30s)\n"                      \
    "  --round-timeout D      for the whole round (default 24h)\n"                                 \
    "A transfer that breaks one of them, or outlasts the grace plus its signed\n"                  \
    "length at --min-rate, is refused: exit 1, slow_retrieval.\n"

struct verb {
    const char *group;
    const char *name;
    cli_cmd_fn fn;
    const char *synopsis;
    const char *help;
};

static const struct verb verbs[] = {
    {"key", "generate", cmd_key_generate, "otachain key generate --out FILE",
     "Writes a new Ed25519 secret key to FILE (PEM PKCS#8, mode 0600, refused if FILE\n"
     "exists) and its public key to FILE.pub. Prints the keyid.\n"},
    {"key", "show", cmd_key_show, "otachain key show FILE",
     "Prints 'keyid <hex>' and 'public <hex>' for a secret or public key file.\n"},
    {"repo", "init", cmd_repo_init,
     "otachain repo init DIR --root-key K... --root-threshold N --targets-key K...\n"
     "                      --targets-threshold N [--expires ROLE=DURATION]...\n"
     "                      [--no-ledger | [--ledger-origin O] [--witness NAME=VKEY@URL]...\n"
     "                       [--witness-quorum N] [--ledger-max-age DURATION]]",
     "Creates the repository DIR with root v1 and an empty targets v1 (pending),\n"
     "generating the online snapshot and timestamp keys into DIR/private/. Keys given\n"
     "as secret key files sign; when both thresholds are met and no witness is\n"
     "named, publishes at once. With witnesses it prints the log key they need\n"
     "(otachain ledger key DIR): configure them, then run repo publish.\n"
     "Expiry defaults: root 365d, targets 90d, snapshot 7d, timestamp 1d\n"
     "(durations: 30s, 10m, 12h, 7d, 2w, 1y).\n"
     "Unless --no-ledger, creates the log key DIR/private/log.key and puts the\n"
     "ledger policy into root v1: the witnesses (VKEY as printed by\n"
     "otachain-witness --init), the quorum (default: all; none without\n"
     "witnesses) and the freshness window (--ledger-max-age, default 1d).\n"},
    {"repo", "publish", cmd_repo_publish, "otachain repo publish DIR [--witness-timeout D]",
     "Publishes the pending root and targets into DIR/public once their thresholds\n"
     "are met (exit 1 'threshold' otherwise), with a new snapshot and timestamp.\n"
     "With a ledger, logs the new versions and makes them live only when the\n"
     "witnesses' quorum cosigned the new checkpoint (exit 1 'quorum' otherwise,\n"
     "naming the witnesses that did not, with nothing public changed).\n"
     "--witness-timeout: how long each witness may take to answer (default 10s,\n"
     "at most 1h); a witness that has not answered may still have cosigned.\n"},
    {"repo", "refresh", cmd_repo_refresh,
     "otachain repo refresh DIR [--snapshot] [--witness-timeout D]",
     "Re-signs the timestamp (and the snapshot when half its lifetime is gone, or\n"
     "with --snapshot). Warns when root or targets expire within 30 days.\n"
     "With a ledger, has the witnesses cosign the checkpoint again (fresh\n"
     "cosignature times) and rewrites public/ledger/checkpoint (--witness-timeout\n"
     "as for repo publish).\n"},
    {"repo", "status", cmd_repo_status, "otachain repo status DIR",
     "Shows versions, expiries, keys and thresholds, and the pending metadata with\n"
     "who has signed and what is missing.\n"},
    {"repo", "verify", cmd_repo_verify,
     "otachain repo verify (--url URL | --dir DIR) --trusted-root FILE [--state DIR]\n"
     "                        [--target PATH --out FILE] [transfer options]\n"
     "       otachain repo verify --bundle FILE --trusted-root FILE --state DIR",
     "Runs the TUF client workflow against a published repository (URL or DIR is\n"
     "the public/ directory), optionally downloading a verified target to FILE;\n"
     "or against a proof bundle (otachain repo bundle) made for the state's root\n"
     "version and checkpoint size. --state defaults to\n"
     "$XDG_STATE_HOME/otachain/verify/<id>. Prints the trusted versions, the time\n"
     "floor and the state's 'bundle request' (the options of repo bundle).\n" TRANSFER_HELP},
    {"repo", "bundle", cmd_repo_bundle,
     "otachain repo bundle DIR --root-version N [--checkpoint-size N]\n"
     "                        [--snapshot-version N] [--targets-version N] --out FILE",
     "Writes to FILE the proof bundle (docs/formats/bundle.md) that takes a device\n"
     "trusting root version N and a checkpoint of the given size (0 or absent: none)\n"
     "to the state published in DIR/public: new roots, per-root checkpoints,\n"
     "timestamp, snapshot and targets (left out when the device has those\n"
     "versions), the checkpoint and every proof. A device verifies it with\n"
     "repo verify --bundle (or the agent), offline.\n"},
    {"release", "add", cmd_release_add,
     "otachain release add DIR IMAGE --product P --hardware H[,H...] --version V\n"
     "                        --security-version N [--name NAME]",
     "Adds target P/V/NAME (NAME defaults to IMAGE's file name) to the pending\n"
     "targets; signatures already on them are dropped. Also chunks the image: its\n"
     "chunk index becomes target P/V/NAME.cidx (named in the image's custom.index)\n"
     "and its pack is published as public/chunks/<image-sha256>.pack.\n"
     "IMAGE: a regular file or a block device. P: [A-Za-z0-9._-], 1-64 bytes.\n"
     "H: [A-Za-z0-9._+:-], 1-64 bytes each, at most 64, no spaces (nothing is\n"
     "trimmed). V: SemVer 2.0.0. N: 0 to 2^53-1, no leading zeros. Warns when V is\n"
     "not newer, or N lower, than a release of P already in the targets.\n"},
    {"release", "sign", cmd_release_sign, "otachain release sign DIR --key FILE",
     "Signs the pending targets with a targets key.\n"},
    {"release", "merge", cmd_release_merge, "otachain release merge DIR FILE...",
     "Merges the signatures of other copies of DIR/pending/targets.json.\n"},
    {"delta", "make", cmd_delta_make,
     "otachain delta make DIR --release P/V (--from IMAGE | --from-version V)\n"
     "                       [--frame-size N]",
     "Makes a reference delta from IMAGE (or the image of release P/V') to the image\n"
     "of release P/V and writes it atomically to\n"
     "DIR/public/deltas/<from-sha256>/<to-sha256>, where fetch looks for it. Needs\n"
     "no signature: the device checks the output against the signed image hash.\n"
     "--frame-size: op-stream bytes per frame (resume points; default 16 MiB).\n"},
    {"fetch", "", cmd_fetch,
     "otachain fetch --url URL --trusted-root FILE --state DIR --target P/V/NAME\n"
     "               [--current IMAGE [--current-length N]]\n"
     "               (--out FILE | --slot DEVICE [--booted-slot PATH]) [--no-delta]\n"
     "               [transfer options]",
     "Refreshes the TUF metadata from URL (with the ledger rule when root names one),\n"
     "then builds the image from a reference delta against IMAGE when URL has one\n"
     "(without the chunk index: a small fix costs the delta), else from IMAGE's chunks\n"
     "and the missing ones fetched as byte ranges of the release's pack (checked\n"
     "against the signed chunk index), or from the whole image target when the\n"
     "mirror ignores Range. The output is FILE (written as FILE.part, renamed once\n"
     "verified) or a slot written in place (a block device, or a file standing in\n"
     "for one; refused when booted or in use; --booted-slot names the booted one).\n"
     "Space is checked first; the output is verified by reading it back. Progress is\n"
     "kept in DIR: a rerun after an interruption fetches no verified chunk again\n"
     "and only the rest of a delta. HTTP/2 is used when an https URL offers it. IMAGE\n"
     "may be a slot device: then --current-length gives the length of the image it\n"
     "holds. The round (--round-timeout) is the whole command.\n" TRANSFER_HELP},
    {"audit", "", cmd_audit,
     "otachain audit IMAGE --index FILE [--index-sha256 HEX] [--chunks N|all]",
     "Re-hashes chunks of an installed image in place (IMAGE may be a slot longer\n"
     "than the image) and compares them with its chunk index: N chunks drawn at\n"
     "random (default 16), or every one. --index-sha256: the hash the signed\n"
     "targets metadata gives the index; the index must match it. Exit 1\n"
     "(hash_mismatch) names the first bad chunk and its byte range.\n"},
    {"root", "rotate", cmd_root_rotate,
     "otachain root rotate DIR [--add-key ROLE=K]... [--remove-key ROLE=KEYID]...\n"
     "                         [--threshold ROLE=N]... [--rotate-online-key ROLE]...\n"
     "                         [--add-witness NAME=VKEY@URL]... [--remove-witness NAME]...\n"
     "                         [--witness-quorum N] [--key FILE]...",
     "Starts root version N+1 from the current root with the changes applied; each\n"
     "--key signs it. It needs the root thresholds of both the current and the new\n"
     "root. ROLE: root, targets, snapshot, timestamp. The witness options change\n"
     "the ledger policy; its publish needs the quorum of the old and new policy.\n"},
    {"root", "sign", cmd_root_sign, "otachain root sign DIR --key FILE",
     "Signs the pending root with a root key of the current or the new root.\n"},
    {"root", "merge", cmd_root_merge, "otachain root merge DIR FILE...",
     "Merges the signatures of other copies of DIR/pending/root.json.\n"},
    {"ledger", "key", cmd_ledger_key, "otachain ledger key DIR [--origin]",
     "Prints the log's verifier key (with --origin: the log's origin), as each\n"
     "witness's [log NAME] section needs them (key = ..., origin = ...). Read from\n"
     "the pending root, else the published one; the secret log key is not read.\n"},
    {"ledger", "show", cmd_ledger_show, "otachain ledger show (DIR | --url URL) [transfer options]",
     "Prints the latest checkpoint: origin, size, root hash, and every signer, with\n"
     "the time of each witness cosignature. Nothing is verified (see ledger "
     "verify).\n" TRANSFER_HELP},
    {"ledger", "verify", cmd_ledger_verify,
     "otachain ledger verify (DIR | --url URL) [--trusted-root FILE] [transfer options]",
     "Full audit of the published log: recomputes the tree from every entry bundle\n"
     "and checks it against the checkpoint root, verifies the log signature and every\n"
     "cosignature and the quorum of the policy in root.json (the newest root\n"
     "followed from FILE with --trusted-root), and checks that each\n"
     "index/<role>/<version> file names its entry. Exit 1 on any mismatch.\n" TRANSFER_HELP},
    {"ledger", "policy", cmd_ledger_policy,
     "otachain ledger policy (DIR | --url URL) --trusted-root FILE [transfer options]",
     "Follows the root chain from FILE and prints the C2SP tlog-policy in force.\n" TRANSFER_HELP},
    {"ledger", "proof", cmd_ledger_proof, "otachain ledger proof DIR (--index I | --from A)",
     "--index: prints the C2SP tlog-proof@v1 of entry I against the latest cosigned\n"
     "checkpoint. --from: prints the tlog-witness add-checkpoint body (old A,\n"
     "consistency proof, checkpoint) from size A to the latest checkpoint.\n"},
    {"ledger", "monitor", cmd_ledger_monitor,
     "otachain ledger monitor --url URL --trusted-root FILE [--state DIR] [--once]\n"
     "                        [transfer options]",
     "Follows the log from the last size seen (kept in --state): prints every entry,\n"
     "the releases each targets version adds and who signed them, and checks each\n"
     "logged file against its entry and the keys of the latest logged root. Exit 1\n"
     "(threshold) on an entry not signed by the expected keys. Polls every 60 s\n"
     "unless --once; each poll is a round (--round-timeout).\n" TRANSFER_HELP},
    {"ca", "init", cmd_ca_init,
     "otachain ca init DIR [--name NAME] [--validity DURATION] [--key-type p256|ed25519]",
     "Creates the fleet CA directory DIR: a server CA (issues server and admin\n"
     "certificates) and a separate device CA (issues device certificates), their keys\n"
     "in DIR/private/ (mode 0600). NAME (default otachain) names both CAs. Validity\n"
     "default 20y; key type default p256 (ECDSA P-256).\n"},
    {"ca", "issue-server", cmd_ca_issue_server,
     "otachain ca issue-server DIR NAME (--dns HOST | --ip ADDR)... --out PREFIX\n"
     "                        [--validity DURATION] [--key-type p256|ed25519]",
     "Issues a server certificate (serverAuth, the otachain server policy) for the\n"
     "given names from the server CA, with a new key: PREFIX.crt and PREFIX.key\n"
     "(mode 0600; refused if either exists). Validity default 2y.\n"},
    {"ca", "issue-device", cmd_ca_issue_device,
     "otachain ca issue-device DIR ID --out PREFIX [--validity DURATION]\n"
     "                        [--key-type p256|ed25519]",
     "Issues a device certificate (CN=ID, clientAuth, the otachain device policy)\n"
     "from the device CA, with a new key: PREFIX.crt and PREFIX.key. ID:\n"
     "[A-Za-z0-9._-]{1,64}. Validity default 1y (devices renew over the device API).\n"},
    {"ca", "sign-csr", cmd_ca_sign_csr,
     "otachain ca sign-csr DIR CSR --out FILE [--id ID] [--validity DURATION]",
     "Issues a device certificate for the key of a PEM certificate signing request\n"
     "made on the device or its secure element (the key never leaves it). The\n"
     "request's signature must verify and its subject be CN=<id>; --id: the id it\n"
     "must name. Requested extensions are ignored. Writes FILE (refused if it exists).\n"},
    {"ca", "issue-admin", cmd_ca_issue_admin,
     "otachain ca issue-admin DIR NAME --out PREFIX [--validity DURATION]\n"
     "                        [--key-type p256|ed25519]",
     "Issues an admin client certificate (clientAuth, the otachain admin policy)\n"
     "from the server CA, with a new key: PREFIX.crt and PREFIX.key. It has every\n"
     "scope of the server's admin API. Validity default 1y.\n"},
    {"ca", "revoke", cmd_ca_revoke, "otachain ca revoke DIR (SERIAL | --device ID) [--reason TEXT]",
     "Records the revocation of one certificate (SERIAL as ca list prints it) or of\n"
     "every device certificate of ID, for the CRL (ca crl). The server refuses\n"
     "revoked devices once told through its admin API (docs/api/admin-v1.md).\n"},
    {"ca", "list", cmd_ca_list, "otachain ca list DIR",
     "Lists every certificate issued: serial, role, name, notAfter, and valid,\n"
     "expired or revoked (with time and reason).\n"},
    {"ca", "crl", cmd_ca_crl,
     "otachain ca crl DIR --out FILE [--ca device|server] [--validity DURATION]",
     "Writes the PEM CRL of the device CA (or the server CA) listing its revoked\n"
     "certificates, for other components (mosquitto crlfile, nginx\n"
     "ssl_crl). Validity (nextUpdate) default 30d: export it again before then.\n"},
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

/* The clock and the fault hook: injected by tests in a build with test
 * hooks (include/otachain/test_hooks.h), the system's otherwise. */
static int setup_hooks(struct ota_detail *det)
{
    int rc = ota_test_hooks_load(&g.hooks, det);

    if (rc != 0)
        return CLI_ERR_USAGE;
    g.ctx.hook = ota_test_hooks_fs(&g.hooks);
    g.ctx.now = ota_clock_now(&g.hooks.clock);
    /* Transfers time themselves on the monotonic clock unless a test
     * injected one (an injected clock has a function). */
    g.ctx.xfer_clock = g.hooks.clock.now != NULL ? &g.hooks.clock : NULL;
    if (g.ctx.now == OTA_TIME_NONE || g.ctx.now < 0) {
        ota_detail_set(det, "the system clock cannot be read (or reads before 1970)");
        return OTA_ERR_IO;
    }
    return 0;
}

static void usage(FILE *f, const char *group)
{
    if (group == NULL)
        fputs("usage: otachain <group> <verb> [options]   (otachain <group> <verb> --help)\n"
              "       otachain --version\n\n",
              f);
    for (size_t i = 0; i < NVERBS; i++) {
        if (group == NULL || strcmp(group, verbs[i].group) == 0)
            fprintf(f, "  %s\n", verbs[i].synopsis);
    }
    if (group == NULL)
        fputs("\nExit status: 0 success, 1 refused (verification, threshold, rollback, ...),\n"
              "2 usage error, 3 environment error (I/O, network, permissions, lock).\n"
              "See docs/cli.md.\n",
              f);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static bool known_group(const char *group)
{
    for (size_t i = 0; i < NVERBS; i++) {
        if (strcmp(group, verbs[i].group) == 0)
            return true;
    }
    return false;
}

static int run(int argc, char **argv, struct ota_detail *det)
{
    const char *group;

    if (argc < 2) {
        ota_detail_set(det, "missing command (otachain --help)");
        return CLI_ERR_USAGE;
    }
    group = argv[1];
    if (strcmp(group, "--help") == 0 || strcmp(group, "-h") == 0 || strcmp(group, "help") == 0) {
        usage(stdout, NULL);
        return 0;
    }
    if (strcmp(group, "--version") == 0) {
        printf("otachain %s\n", OTACHAIN_VERSION);
        return 0;
    }
    if (!known_group(group)) {
        ota_detail_set(det, "unknown command '%s' (otachain --help)", group);
        return CLI_ERR_USAGE;
    }
    for (size_t i = 0; i < NVERBS; i++) {
        const struct verb *v = &verbs[i];

        /* A verb of its own, without a group (fetch, audit). */
        if (v->name[0] != '\0' || strcmp(group, v->group) != 0)
            continue;
        if (wants_help(argc - 2, argv + 2)) {
            printf("usage: %s\n\n%s", v->synopsis, v->help);
            return 0;
        }
        return v->fn(&g.ctx, argc - 2, argv + 2, det);
    }
    if (argc < 3) {
        ota_detail_set(det, "missing verb after '%s' (otachain %s --help)", group, group);
        return CLI_ERR_USAGE;
    }
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        usage(stdout, group);
        return 0;
    }
    for (size_t i = 0; i < NVERBS; i++) {
        const struct verb *v = &verbs[i];

        if (strcmp(group, v->group) != 0 || strcmp(argv[2], v->name) != 0)
            continue;
        if (wants_help(argc - 3, argv + 3)) {
            printf("usage: %s\n\n%s", v->synopsis, v->help);
            return 0;
        }
        return v->fn(&g.ctx, argc - 3, argv + 3, det);
    }
    /* Hidden test hook (docs/cli.md): only in a build with test hooks, and
     * only with OTACHAIN_TEST_HOOKS=1. */
    if (strcmp(group, "ledger") == 0 && strcmp(argv[2], "append-forged") == 0 && g.hooks.test_verbs)
        return cmd_ledger_append_forged(&g.ctx, argc - 3, argv + 3, det);
    ota_detail_set(det, "unknown verb '%s %s' (otachain %s --help)", group, argv[2], group);
    return CLI_ERR_USAGE;
}

int main(int argc, char **argv)
{
    struct ota_detail det;
    int rc;

    det.msg[0] = '\0';
    rc = setup_hooks(&det);
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ota_detail_set(&det, "curl_global_init failed");
        rc = OTA_ERR_NETWORK;
    } else if (rc == 0) {
        rc = run(argc, argv, &det);
        curl_global_cleanup();
    }
    if (fflush(stdout) != 0 && rc == 0) {
        ota_detail_set(&det, "writing to standard output");
        rc = OTA_ERR_IO;
    }
    if (rc != 0)
        cli_print_error(rc, &det);
    return cli_exit_code(rc);
}
