/* otachain ca init | issue-server | issue-device | issue-admin | sign-csr |
 * revoke | list | crl: the fleet CA (docs/cli.md; logic in lib/ca.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "otachain/ca.h"
#include "otachain/fsutil.h"

#define YEAR (365 * 86400)

/* A library refusal of what the user typed is a usage error (exit 2). */
static int usage_if_arg(int rc)
{
    return rc == OTA_ERR_INVALID_ARG ? CLI_ERR_USAGE : rc;
}

static int key_type(enum ota_ca_key_type *out, const char *s, struct ota_detail *det)
{
    *out = OTA_CA_KEY_P256;
    if (s == NULL || strcmp(s, "p256") == 0)
        return 0;
    if (strcmp(s, "ed25519") == 0) {
        *out = OTA_CA_KEY_ED25519;
        return 0;
    }
    ota_detail_set(det, "--key-type: 'p256' or 'ed25519', not '%s'", s);
    return CLI_ERR_USAGE;
}

static int validity(int64_t *out, const char *s, int64_t dflt, struct ota_detail *det)
{
    *out = dflt;
    if (s == NULL)
        return 0;
    if (cli_parse_duration(out, s) != 0) {
        ota_detail_set(det, "--validity: not a duration (30d, 2y, ...): '%s'", s);
        return CLI_ERR_USAGE;
    }
    return 0;
}

int cmd_ca_init(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"name", CLI_VAL, 0, {0}},
        {"validity", CLI_VAL, 0, {0}},
        {"key-type", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    enum ota_ca_key_type kt;
    int64_t life;
    int rc = cli_parse(opts, 3, &args, 1, 1, argc, argv, det);

    if (rc == 0)
        rc = validity(&life, cli_val(&opts[1]), 20 * (int64_t)YEAR, det);
    if (rc == 0)
        rc = key_type(&kt, cli_val(&opts[2]), det);
    if (rc != 0)
        return rc;
    rc = ota_ca_dir_init(args.pos[0], cli_val(&opts[0]) ? cli_val(&opts[0]) : "otachain", kt,
                         ctx->now, life, det);
    if (rc != 0)
        return usage_if_arg(rc);
    cli_printf(stdout, "created %s: server CA %s/server-ca.crt, device CA %s/device-ca.crt\n",
               args.pos[0], args.pos[0], args.pos[0]);
    return 0;
}

/* Issues a certificate with a new key into PREFIX.crt and PREFIX.key. */
static int issue_with_key(const struct cli_ctx *ctx, const char *dir, const char *prefix,
                          struct ota_cert_request *req, enum ota_ca_key_type kt,
                          struct ota_detail *det)
{
    char certp[4096];
    char keyp[4096];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct ota_buf cert;
    struct ota_buf key;
    int rc;

    if (snprintf(certp, sizeof(certp), "%s.crt", prefix) >= (int)sizeof(certp) ||
        snprintf(keyp, sizeof(keyp), "%s.key", prefix) >= (int)sizeof(keyp) || prefix[0] == '\0') {
        ota_detail_set(det, "bad --out '%s'", prefix);
        return CLI_ERR_USAGE;
    }
    req->now = ctx->now;
    ota_buf_init(&cert, OTA_CA_PEM_MAX);
    ota_buf_init(&key, OTA_CA_PEM_MAX);
    rc = ota_ca_dir_issue(&cert, &key, serial, dir, NULL, kt, req, det);
    if (rc == 0)
        rc = ota_ca_save(certp, &cert, keyp, &key, det);
    ota_buf_free(&cert);
    ota_buf_free(&key);
    if (rc != 0)
        return usage_if_arg(rc);
    cli_printf(stdout, "%s certificate %s serial %s: %s, key %s\n", ota_cert_role_name(req->role),
               req->cn, serial, certp, keyp);
    return 0;
}

int cmd_ca_issue_server(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"out", CLI_VAL | CLI_REQ, 0, {0}},  {"dns", CLI_VAL | CLI_MULTI, 0, {0}},
        {"ip", CLI_VAL | CLI_MULTI, 0, {0}}, {"validity", CLI_VAL, 0, {0}},
        {"key-type", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    struct ota_cert_request req = {.role = OTA_CERT_ROLE_SERVER};
    enum ota_ca_key_type kt;
    int rc = cli_parse(opts, 5, &args, 2, 2, argc, argv, det);

    if (rc == 0)
        rc = validity(&req.lifetime, cli_val(&opts[3]), 2 * (int64_t)YEAR, det);
    if (rc == 0)
        rc = key_type(&kt, cli_val(&opts[4]), det);
    if (rc != 0)
        return rc;
    req.cn = args.pos[1];
    req.dns = opts[1].val;
    req.ndns = opts[1].n;
    req.ips = opts[2].val;
    req.nips = opts[2].n;
    return issue_with_key(ctx, args.pos[0], cli_val(&opts[0]), &req, kt, det);
}

static int issue_client(const struct cli_ctx *ctx, int argc, char **argv, enum ota_cert_role role,
                        struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"out", CLI_VAL | CLI_REQ, 0, {0}},
        {"validity", CLI_VAL, 0, {0}},
        {"key-type", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    struct ota_cert_request req = {.role = role};
    enum ota_ca_key_type kt;
    int rc = cli_parse(opts, 3, &args, 2, 2, argc, argv, det);

    if (rc == 0)
        rc = validity(&req.lifetime, cli_val(&opts[1]), (int64_t)YEAR, det);
    if (rc == 0)
        rc = key_type(&kt, cli_val(&opts[2]), det);
    if (rc != 0)
        return rc;
    req.cn = args.pos[1];
    return issue_with_key(ctx, args.pos[0], cli_val(&opts[0]), &req, kt, det);
}

int cmd_ca_issue_device(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    return issue_client(ctx, argc, argv, OTA_CERT_ROLE_DEVICE, det);
}

int cmd_ca_issue_admin(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    return issue_client(ctx, argc, argv, OTA_CERT_ROLE_ADMIN, det);
}

int cmd_ca_sign_csr(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"out", CLI_VAL | CLI_REQ, 0, {0}},
        {"id", CLI_VAL, 0, {0}},
        {"validity", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    struct ota_cert_request req = {.role = OTA_CERT_ROLE_DEVICE};
    char cn[OTA_CERT_ID_MAX + 1];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct ota_buf cert;
    EVP_PKEY *pub = NULL;
    uint8_t *csr = NULL;
    size_t len = 0;
    int rc = cli_parse(opts, 3, &args, 2, 2, argc, argv, det);

    if (rc == 0)
        rc = validity(&req.lifetime, cli_val(&opts[2]), (int64_t)YEAR, det);
    if (rc != 0)
        return rc;
    rc = ota_fs_read(&csr, &len, args.pos[1], OTA_CA_PEM_MAX);
    if (rc != 0) {
        ota_detail_set(det, "%s", args.pos[1]);
        return rc;
    }
    rc = ota_ca_csr_parse(&pub, cn, csr, len, det);
    free(csr);
    if (rc != 0) {
        ota_detail_prefix(det, args.pos[1]);
        return rc;
    }
    if (cli_val(&opts[1]) != NULL && strcmp(cli_val(&opts[1]), cn) != 0) {
        ota_detail_set(det, "%s asks for CN '%s', not the --id '%s'", args.pos[1], cn,
                       cli_val(&opts[1]));
        EVP_PKEY_free(pub);
        return OTA_ERR_FORMAT;
    }
    req.cn = cn;
    req.now = ctx->now;
    ota_buf_init(&cert, OTA_CA_PEM_MAX);
    rc = ota_ca_dir_issue(&cert, NULL, serial, args.pos[0], pub, OTA_CA_KEY_P256, &req, det);
    if (rc == 0)
        rc = ota_ca_save(cli_val(&opts[0]), &cert, NULL, NULL, det);
    if (rc == 0)
        cli_printf(stdout, "device certificate %s serial %s: %s\n", cn, serial, cli_val(&opts[0]));
    ota_buf_free(&cert);
    EVP_PKEY_free(pub);
    return usage_if_arg(rc);
}

struct revoke_ctx {
    const char *dir;
    const char *id;
    const char *reason;
    int64_t now;
    size_t count;
    struct ota_detail *det;
};

static int revoke_device_cert(void *arg, const struct ota_ca_record *rec)
{
    struct revoke_ctx *c = arg;
    int rc;

    if (rec->role != OTA_CERT_ROLE_DEVICE || rec->revoked || strcmp(rec->cn, c->id) != 0)
        return 0;
    rc = ota_ca_dir_revoke(c->dir, rec->serial, c->reason, c->now, c->det);
    if (rc == 0) {
        cli_printf(stdout, "revoked %s (device %s)\n", rec->serial, rec->cn);
        c->count++;
    }
    return rc;
}

int cmd_ca_revoke(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"device", CLI_VAL, 0, {0}},
        {"reason", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    const char *reason;
    int rc = cli_parse(opts, 2, &args, 1, 2, argc, argv, det);

    if (rc != 0)
        return rc;
    reason = cli_val(&opts[1]) ? cli_val(&opts[1]) : "";
    if ((args.npos == 2) == (opts[0].n == 1)) {
        ota_detail_set(det, "give either a SERIAL or --device ID");
        return CLI_ERR_USAGE;
    }
    if (opts[0].n == 1) {
        struct revoke_ctx c = {args.pos[0], cli_val(&opts[0]), reason, ctx->now, 0, det};
        rc = ota_ca_dir_list(args.pos[0], revoke_device_cert, &c, det);
        if (rc == 0 && c.count == 0) {
            ota_detail_set(det, "no unrevoked device certificate for '%s' in %s", c.id,
                           args.pos[0]);
            rc = OTA_ERR_NOT_FOUND;
        }
        return usage_if_arg(rc);
    }
    if (ota_cert_serial_normalize(serial, args.pos[1]) != 0) {
        ota_detail_set(det, "'%s' is not a serial (hex, as otachain ca list prints it)",
                       args.pos[1]);
        return CLI_ERR_USAGE;
    }
    rc = ota_ca_dir_revoke(args.pos[0], serial, reason, ctx->now, det);
    if (rc == 0)
        cli_printf(stdout, "revoked %s\n", serial);
    return usage_if_arg(rc);
}

static int print_record(void *arg, const struct ota_ca_record *rec)
{
    const struct cli_ctx *ctx = arg;
    char until[24];
    char at[24];

    ota_time_text(until, rec->not_after);
    if (rec->revoked) {
        ota_time_text(at, rec->revoked_at);
        cli_printf(stdout, "%s  %-6s  %-24s  %s  revoked %s%s%s\n", rec->serial,
                   ota_cert_role_name(rec->role), rec->cn, until, at, rec->reason[0] ? " " : "",
                   rec->reason);
    } else {
        cli_printf(stdout, "%s  %-6s  %-24s  %s  %s\n", rec->serial, ota_cert_role_name(rec->role),
                   rec->cn, until, rec->not_after < ctx->now ? "expired" : "valid");
    }
    return 0;
}

int cmd_ca_list(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_args args;
    int rc = cli_parse(NULL, 0, &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    return ota_ca_dir_list(args.pos[0], print_record, (void *)ctx, det);
}

int cmd_ca_crl(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"out", CLI_VAL | CLI_REQ, 0, {0}},
        {"ca", CLI_VAL, 0, {0}},
        {"validity", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    enum ota_cert_role role = OTA_CERT_ROLE_DEVICE;
    struct ota_buf crl;
    int64_t life;
    int rc = cli_parse(opts, 3, &args, 1, 1, argc, argv, det);

    if (rc == 0)
        rc = validity(&life, cli_val(&opts[2]), 30 * 86400, det);
    if (rc != 0)
        return rc;
    if (cli_val(&opts[1]) != NULL && strcmp(cli_val(&opts[1]), "device") != 0) {
        if (strcmp(cli_val(&opts[1]), "server") != 0) {
            ota_detail_set(det, "--ca: 'device' or 'server', not '%s'", cli_val(&opts[1]));
            return CLI_ERR_USAGE;
        }
        role = OTA_CERT_ROLE_SERVER;
    }
    ota_buf_init(&crl, 64u * 1024 * 1024);
    rc = ota_ca_dir_crl(&crl, args.pos[0], role, ctx->now, life, det);
    if (rc == 0) {
        rc = ota_fs_replace(cli_val(&opts[0]), crl.data, crl.len, 0644, ctx->hook);
        if (rc != 0)
            ota_detail_set(det, "writing %s", cli_val(&opts[0]));
    }
    ota_buf_free(&crl);
    return usage_if_arg(rc);
}
