/* Where a downloaded image goes (STYLE rule 11: the fetcher and the
 * agent write through this, never to a path of their own).
 *
 * Two kinds:
 *   - a file: written as PATH.part (created 0600, or resumed when it is
 *     already the image's length), renamed to PATH by ota_output_commit
 *     once verified, so PATH only ever holds a verified image;
 *   - a slot: a block device (an A/B partition), or a regular file
 *     standing in for one (tests, custom boards), written in place from
 *     byte 0, never renamed. It is refused when it is the booted slot
 *     (OTA_ERR_SLOT_BOOTED) or in use: mounted, held by the kernel
 *     (swap, device mapper, RAID: an exclusive open fails), or a file
 *     backing a loop device (OTA_ERR_SLOT_MOUNTED). A block device stays
 *     open exclusively until ota_output_free, so nobody mounts it
 *     meanwhile.
 * Either way the space is checked before the first byte: a file needs
 * the image's length free on its file system (less what PATH.part
 * already holds), a slot must be at least that long (OTA_ERR_NO_SPACE).
 *
 * Life cycle:
 *   open ─► write/read (any order, any offset below length) ─► sync ...
 *        ─► verify: fdatasync, drop the cached pages (posix_fadvise
 *           DONTNEED), re-read [0, length) from the medium, compare its
 *           SHA-256 ─► commit (file: fsync, rename, fsync the directory)
 *   free at any point: PATH.part (or the slot's contents) stays for a
 *   resume; discard removes PATH.part.
 *
 * Nothing here verifies chunks: the caller writes only bytes it checked
 * (or, for a reference delta without its index, bytes the whole-image
 * hash of verify covers before anything is committed or armed).
 */
#ifndef OTACHAIN_OUTPUT_H
#define OTACHAIN_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"

/* How a slot is judged; every field may be NULL. */
struct ota_slot_opts {
    /* The slot the system runs from, when the caller knows it (the agent
     * reads it from its configuration); it is refused whatever the
     * kernel command line says. */
    const char *booted;
    /* Where the kernel's view is read (tests and simulators point them
     * elsewhere): NULL means /proc/self/mountinfo and /proc/cmdline. */
    const char *mountinfo;
    const char *cmdline;
};

struct ota_output; /* opaque */

/* A file output for an image of length bytes at path (PATH.part while
 * being written). OTA_ERR_NO_SPACE, OTA_ERR_IO, OTA_ERR_INVALID_ARG (path
 * is a directory or not a regular file, path too long); det says which.
 * PATH.part is kept when it is a regular file of exactly length bytes
 * (ota_output_resumed then says so), else created afresh. */
OTA_WUR int ota_output_file(struct ota_output **out, const char *path, uint64_t length,
                            struct ota_detail *det);

/* A slot output: path is a block device, or a regular file at least
 * length bytes long. OTA_ERR_SLOT_BOOTED, OTA_ERR_SLOT_MOUNTED,
 * OTA_ERR_NO_SPACE (shorter than length), OTA_ERR_NOT_FOUND,
 * OTA_ERR_INVALID_ARG (neither a block device nor a regular file),
 * OTA_ERR_IO; det says which and why. opts may be NULL. */
OTA_WUR int ota_output_slot(struct ota_output **out, const char *path, uint64_t length,
                            const struct ota_slot_opts *opts, struct ota_detail *det);

/* Writes or reads len bytes at off; off + len must not pass length
 * (OTA_ERR_INVALID_ARG). OTA_ERR_IO with det naming the output. */
OTA_WUR int ota_output_write(struct ota_output *o, const void *data, size_t len, uint64_t off,
                             struct ota_detail *det);
OTA_WUR int ota_output_read(struct ota_output *o, void *buf, size_t len, uint64_t off,
                            struct ota_detail *det);

/* Makes everything written so far durable (fdatasync). */
OTA_WUR int ota_output_sync(struct ota_output *o, struct ota_detail *det);

/* Syncs, drops the output's pages from the page cache and re-reads
 * [0, length) with buf (buf_len > 0 bytes of the caller's) to compare its
 * SHA-256 with sha256 in constant time. OTA_ERR_HASH_MISMATCH (det: the
 * output does not hold the image), OTA_ERR_IO. */
OTA_WUR int ota_output_verify(struct ota_output *o, const uint8_t sha256[OTA_SHA256_LEN],
                              uint8_t *buf, size_t buf_len, struct ota_detail *det);

/* After a successful verify: a file is renamed to PATH (fsync, rename,
 * fsync of its directory); a slot needs nothing more. OTA_ERR_INVALID_ARG
 * without a successful verify since the last write, OTA_ERR_IO. */
OTA_WUR int ota_output_commit(struct ota_output *o, struct ota_detail *det);

/* Gives up: a file's PATH.part is removed; a slot is left as it is (it is
 * not armed; its contents are not the image). */
OTA_WUR int ota_output_discard(struct ota_output *o, struct ota_detail *det);

/* What is being written (PATH.part, or the slot's path), for messages. */
const char *ota_output_name(const struct ota_output *o);

/* Whether the output already held something of this length when opened
 * (a file's PATH.part from an earlier run, always for a slot), and its
 * identity (device and inode, or the block device number): a resume
 * record applies only to the same identity. */
bool ota_output_resumed(const struct ota_output *o);
void ota_output_identity(const struct ota_output *o, uint64_t id[2]);

/* Closes (releasing a slot's exclusive open); accepts NULL. A file's
 * PATH.part stays unless discarded or committed. */
void ota_output_free(struct ota_output *o);

#endif
