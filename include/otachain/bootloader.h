/* Bootloader backends of the device agent: what the agent needs from a
 * bootloader to arm a new slot for a trial boot, confirm it or switch back
 * (DESIGN.md §6, docs/agent.md "Bootloader backends").
 *
 * The model every backend maps onto:
 *
 *   slot     the slot the bootloader boots by default (its primary);
 *   trial    an update is on trial: the bootloader counts boot attempts
 *            of `slot` and, once more than `limit` were made without the
 *            agent confirming, boots the other slot again and clears
 *            trial by itself (the fall-back rule). Attempts are counted
 *            only while trial is set, so power cuts of a committed device
 *            never switch it back.
 *
 * Backends: "uboot" (libubootenv: otachain_slot / upgrade_available /
 * bootcount / bootlimit, altbootcmd falls back; bootloader_uboot.c) and
 * "file" (a small key=value file a custom bootloader reads; bootloader.c).
 * BOOT_ORDER and GRUB fit the same operations.
 *
 * Backends never decide which slot is running: that comes from the kernel
 * command line (the agent's job), never from the environment.
 */
#ifndef OTACHAIN_BOOTLOADER_H
#define OTACHAIN_BOOTLOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "otachain/err.h"
#include "otachain/fsutil.h"

#define OTA_BOOT_SLOT_MAX 31 /* bytes of a slot's boot name */

struct ota_boot_state {
    char slot[OTA_BOOT_SLOT_MAX + 1]; /* boot name of the primary slot */
    bool trial;                       /* an update is on trial */
    uint32_t attempts;                /* boot attempts counted in this trial */
    uint32_t limit;                   /* attempts allowed before falling back; 0: none set */
};

struct ota_bootloader {
    const char *name; /* "uboot", "file" */
    /* Reads the current state. OTA_ERR_BOOTENV_CONFIG, OTA_ERR_BOOTENV_CRC,
     * OTA_ERR_BOOTENV_STATE (a value it cannot interpret), OTA_ERR_IO,
     * OTA_ERR_LOCKED. */
    int (*get)(void *ctx, struct ota_boot_state *out, struct ota_detail *det);
    /* Stores slot and trial in one atomic store, with attempts reset to 0
     * (the limit is the bootloader's own setting and is kept), then reads
     * the environment back: OTA_ERR_BOOTENV_VERIFY if it does not hold
     * what was stored. Errors of get, and OTA_ERR_BOOTENV_READONLY. */
    int (*set)(void *ctx, const char *slot, bool trial, struct ota_detail *det);
    /* Start-up check: the environment is readable, valid, interpretable
     * and writable (opened for writing, nothing written). */
    int (*check)(void *ctx, struct ota_detail *det);
    void (*destroy)(void *ctx);
    void *ctx;
};

struct ota_bootloader_cfg {
    const char *backend;      /* "uboot" or "file" */
    const char *path;         /* uboot: fw_env.config; file: the state file */
    const char *slot_var;     /* uboot: the variable naming the slot; NULL: "otachain_slot" */
    uint32_t call_timeout_ms; /* uboot: deadline of each libubootenv call (its lock); 0: 10000 */
    uint32_t file_limit;      /* file: attempts allowed, written into the file; 0: 3 */
    const char *const *slots; /* boot names of the slots (the values slot may take) */
    unsigned nslots;
    const struct ota_fs_hook *hook; /* counted before each store; may be NULL */
};

/* Creates the backend cfg->backend names (OTA_ERR_INVALID_ARG for an
 * unknown one, OTA_ERR_UNSUPPORTED for "uboot" in a build without
 * libubootenv). Nothing is read yet. The strings in cfg are copied. */
OTA_WUR int ota_bootloader_new(struct ota_bootloader **out, const struct ota_bootloader_cfg *cfg,
                               struct ota_detail *det);

/* Calls destroy and frees; accepts NULL. */
void ota_bootloader_free(struct ota_bootloader *b);

/* The U-Boot backend (bootloader_uboot.c); used by ota_bootloader_new. */
OTA_WUR int ota_bootloader_uboot_new(struct ota_bootloader **out,
                                     const struct ota_bootloader_cfg *cfg, struct ota_detail *det);

/* The file backend's file format, parsed (exposed for its fuzzer and
 * tests): lines "slot=NAME", "trial=0|1", "attempts=N", "limit=N", in any
 * order, each once; '#' comment lines and blank lines ignored. At most
 * OTA_BOOT_FILE_MAX bytes. OTA_ERR_BOOTENV_STATE names the line that is
 * wrong. */
#define OTA_BOOT_FILE_MAX 4096
OTA_WUR int ota_bootloader_file_parse(struct ota_boot_state *out, const char *text, size_t len,
                                      struct ota_detail *det);

#endif
