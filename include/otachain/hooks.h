/* Running the device agent's hooks and commands with a deadline
 * (docs/agent.md, "Hooks").
 *
 * A hook is a program the integrator ships (pre-install, post-install,
 * health check) or a command line (the reboot command). It runs in a
 * process group of its own with the given extra environment, its output
 * going to the agent's standard error; after timeout_ms the whole group
 * is killed (SIGKILL). Hooks must be idempotent: after a power cut the
 * agent runs the same step, and so the same hook, again.
 */
#ifndef OTACHAIN_HOOKS_H
#define OTACHAIN_HOOKS_H

#include <stdint.h>

#include "otachain/err.h"

#define OTA_HOOK_MAX_ENV 16

struct ota_hook_env {
    const char *name; /* e.g. "OTACHAIN_SLOT" */
    const char *value;
};

/* Runs argv[0] (a path; no shell, no PATH search) with argv and the
 * environment of the agent plus env[0..nenv). 0 when it exits 0;
 * OTA_ERR_HOOK_TIMEOUT when it ran longer than timeout_ms (killed);
 * OTA_ERR_HOOK_FAILED when it could not be started, exited non-zero or
 * died of a signal (det says which); OTA_ERR_INVALID_ARG for more than
 * OTA_HOOK_MAX_ENV variables. */
OTA_WUR int ota_hook_run(const char *const *argv, const struct ota_hook_env *env, unsigned nenv,
                         uint32_t timeout_ms, struct ota_detail *det);

/* Runs a command line through /bin/sh -c, likewise. */
OTA_WUR int ota_hook_run_shell(const char *command, const struct ota_hook_env *env, unsigned nenv,
                               uint32_t timeout_ms, struct ota_detail *det);

#endif
