/* The verbs of the otachain CLI (docs/cli.md); each is a cli_cmd_fn. */
#ifndef OTACHAIN_CMDS_H
#define OTACHAIN_CMDS_H

#include "cli.h"

int cmd_key_generate(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_key_show(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);

int cmd_repo_init(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_repo_publish(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_repo_refresh(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_repo_status(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_repo_verify(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_repo_bundle(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);

int cmd_fetch(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_delta_make(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_audit(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_release_add(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_release_sign(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_release_merge(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);

int cmd_root_rotate(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_root_sign(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_root_merge(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);

int cmd_ledger_key(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ledger_show(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ledger_verify(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ledger_policy(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ledger_proof(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ledger_monitor(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ledger_append_forged(const struct cli_ctx *ctx, int argc, char **argv,
                             struct ota_detail *det);

int cmd_ca_init(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_issue_server(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_issue_device(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_issue_admin(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_sign_csr(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_revoke(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_list(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);
int cmd_ca_crl(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);

#endif
