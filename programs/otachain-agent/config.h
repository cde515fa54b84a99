/* otachain-agent configuration: an INI file (docs/agent.md,
 * contrib/agent.ini).
 *
 *     [agent]
 *     state_dir = /var/lib/otachain-agent   ; on the data partition
 *     product = acme-cam
 *     hardware = rev-a
 *     factory_version = 1.0.0               ; what the device was made with
 *     poll_interval = 3600                  ; seconds; optional
 *     poll_jitter = 360                     ; seconds added at random; optional
 *     cmdline = /proc/cmdline               ; optional
 *     reboot_command = systemctl reboot     ; optional
 *     reboot_timeout = 60                   ; optional
 *
 *     [trust]
 *     root = /etc/otachain/root.json        ; the bootstrap root
 *     ca_file = /etc/otachain/ca.pem        ; optional
 *     device_cert = ..., device_key = ...   ; optional (update server)
 *
 *     [source]
 *     mirror = https://mirror1.example      ; repeatable, tried in order
 *
 *     [slot a]                              ; two or more
 *     device = /dev/mmcblk0p2
 *
 *     [bootloader]
 *     backend = uboot                       ; or file
 *     fw_env_config = /etc/fw_env.config    ; uboot
 *     slot_variable = otachain_slot         ; uboot, optional
 *     state_file = /boot/otachain.state     ; file
 *
 *     [hooks]                               ; all optional
 *     pre_install = PATH, post_install = PATH, health_check = PATH
 *     timeout = 120                         ; seconds, each hook
 *
 * Fail closed: an unknown section or key, a duplicate, a missing
 * mandatory key or a malformed value refuses the whole file
 * (OTA_ERR_CONFIG naming the file, section and key).
 */
#ifndef OTACHAIN_AGENT_CONFIG_H
#define OTACHAIN_AGENT_CONFIG_H

#include <stdint.h>

#include "otachain/agent.h"
#include "otachain/err.h"

#define AGENT_CONFIG_MAX_LEN (64u * 1024)
#define AGENT_MAX_PATH       4096
#define AGENT_DEFAULT_CONFIG "/etc/otachain/agent.ini"

struct agent_config {
    char *state_dir;
    char *product;
    char *hardware;
    char *factory_version;
    uint32_t poll_interval; /* seconds */
    uint32_t poll_jitter;   /* seconds */
    char *cmdline;
    char *reboot_command;
    uint32_t reboot_timeout; /* seconds */
    char *root;
    char *ca_file;
    char *device_cert;
    char *device_key;
    char *mirrors[OTA_AGENT_MAX_MIRRORS];
    unsigned nmirrors;
    char *server;
    char *slot_name[OTA_AGENT_MAX_SLOTS];
    char *slot_device[OTA_AGENT_MAX_SLOTS];
    unsigned nslots;
    char *backend;
    char *fw_env_config;
    char *slot_variable;
    char *state_file;
    char *pre_install;
    char *post_install;
    char *health_check;
    uint32_t hook_timeout; /* seconds */
};

/* Loads and checks path. On failure cfg is freed and det names the
 * file, section and key. */
OTA_WUR int agent_config_load(struct agent_config *cfg, const char *path, struct ota_detail *det);

void agent_config_free(struct agent_config *cfg);

#endif
