/* Internal helpers shared by the bootloader backends (bootloader.c,
 * bootloader_uboot.c). */
#ifndef OTACHAIN_BOOTLOADER_INT_H
#define OTACHAIN_BOOTLOADER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/bootloader.h"

#define OTA_BOOT_MAX_SLOTS 4

/* The slots' boot names, copied from the configuration. */
struct ota_boot_slots {
    char name[OTA_BOOT_MAX_SLOTS][OTA_BOOT_SLOT_MAX + 1];
    unsigned n;
};

/* Copies and checks cfg->slots: 2..OTA_BOOT_MAX_SLOTS names of
 * [A-Za-z0-9_-]. OTA_ERR_INVALID_ARG. */
int ota_boot_slots_copy(struct ota_boot_slots *s, const struct ota_bootloader_cfg *cfg,
                        struct ota_detail *det);
bool ota_boot_slots_has(const struct ota_boot_slots *s, const char *name);
bool ota_boot_name_valid(const char *s);

/* A decimal counter of at most 10 digits that fits 32 bits:
 * 0 or OTA_ERR_BOOTENV_STATE. */
int ota_boot_parse_u32(uint32_t *out, const char *s, size_t n);

#endif
