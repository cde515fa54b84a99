/* otachain key generate | show */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "otachain/crypto.h"
#include "otachain/sign.h"

int cmd_key_generate(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"out", CLI_VAL | CLI_REQ, 0, {0}}};
    struct cli_args args;
    struct ota_signer *s = NULL;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    char pubpath[4096];
    const char *out;
    struct stat st;
    int n;
    int rc = cli_parse(opts, 1, &args, 0, 0, argc, argv, det);

    (void)ctx;
    if (rc != 0)
        return rc;
    out = cli_val(&opts[0]);
    n = snprintf(pubpath, sizeof(pubpath), "%s.pub", out);
    if (out[0] == '\0' || n < 0 || n >= (int)sizeof(pubpath)) {
        ota_detail_set(det, "bad --out '%s'", out);
        return CLI_ERR_USAGE;
    }
    if (lstat(out, &st) == 0 || lstat(pubpath, &st) == 0) {
        ota_detail_set(det, "%s exists", lstat(out, &st) == 0 ? out : pubpath);
        return OTA_ERR_EXISTS;
    }
    rc = ota_signer_generate(&s);
    if (rc != 0) {
        ota_detail_set(det, "generating a key");
        return rc;
    }
    rc = ota_signer_save(s, out, ctx->hook);
    if (rc != 0) {
        ota_detail_set(det, "writing %s", out);
        goto out;
    }
    ota_signer_public(pub, s);
    rc = ota_pubkey_save(pubpath, pub);
    if (rc != 0) {
        ota_detail_set(det, "writing %s", pubpath);
        unlink(out);
        goto out;
    }
    cli_printf(stdout, "%s\n", ota_signer_keyid(s));
out:
    ota_signer_free(s);
    return rc;
}

/* key show still shows an unsafe secret key (it is how an operator finds
 * out which key a file holds) but says what signing will refuse. */
static void warn_unsafe_secret(const char *path)
{
    enum ota_keyfile_kind kind;
    struct stat st;

    if (ota_keyfile_kind(&kind, path) != 0 || kind == OTA_KEYFILE_PUBLIC ||
        kind == OTA_KEYFILE_NONE || lstat(path, &st) != 0)
        return;
    if (S_ISLNK(st.st_mode))
        cli_warn("%s is a symbolic link to a secret key: signing refuses it (secret keys are "
                 "read from the file itself, never through a link); give the file's own path",
                 path);
    else if ((st.st_mode & 077) != 0)
        cli_warn("%s is a secret key readable by group or others (mode %04o): signing refuses "
                 "it; run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
}

int cmd_key_show(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_args args;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    char keyid[OTA_KEYID_SIZE];
    char hex[2 * OTA_ED25519_PUB_LEN + 1];
    int rc = cli_parse(NULL, 0, &args, 1, 1, argc, argv, det);

    (void)ctx;
    if (rc != 0)
        return rc;
    rc = ota_pubkey_load(pub, args.pos[0]);
    if (rc == 0)
        rc = ota_ed25519_keyid(keyid, pub);
    if (rc != 0) {
        ota_detail_set(det, "%s", args.pos[0]);
        return rc;
    }
    ota_hex_encode(hex, pub, sizeof(pub));
    cli_printf(stdout, "keyid %s\npublic %s\n", keyid, hex);
    warn_unsafe_secret(args.pos[0]);
    return 0;
}
