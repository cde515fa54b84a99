/* Outputs: a file (PATH.part, renamed once verified; resumed; space
 * checked first) and a slot (written in place; refused when booted,
 * mounted, too small). Block-device refusals are judged from a mount
 * table and a kernel command line the test writes, against a block
 * device found in /dev (skipped where there is none); writing real block
 * devices is left to the system tests (loop devices). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "testfs.h"

#include "otachain/crypto.h"
#include "otachain/output.h"

#define LEN 100000u

static char dir[64];
static uint8_t img[LEN];
static uint8_t sha[OTA_SHA256_LEN];
static uint8_t buf[4096];

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static bool exists(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ota-test-output-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    for (size_t i = 0; i < LEN; i++)
        img[i] = (uint8_t)(i * 31 + 7);
    return ota_sha256(sha, img, LEN);
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(dir);
    return 0;
}

static void write_all(struct ota_output *o, const uint8_t *data)
{
    struct ota_detail det = {{0}};

    /* Out of order, as chunks arrive. */
    assert_int_equal(ota_output_write(o, data + LEN / 2, LEN - LEN / 2, LEN / 2, &det), 0);
    assert_int_equal(ota_output_write(o, data, LEN / 2, 0, &det), 0);
}

static void test_file(void **state)
{
    struct ota_output *o = NULL;
    struct ota_detail det = {{0}};
    char out[128], part[128];
    uint8_t bad[LEN];
    uint64_t id[2], id2[2];

    (void)state;
    path_in(out, sizeof(out), "img");
    path_in(part, sizeof(part), "img.part");
    assert_int_equal(ota_output_file(&o, out, LEN, &det), 0);
    assert_false(ota_output_resumed(o));
    assert_string_equal(ota_output_name(o), part);
    assert_true(exists(part) && !exists(out));
    /* Nothing beyond the image. */
    assert_int_equal(ota_output_write(o, img, 2, LEN - 1, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_output_read(o, buf, 1, LEN, &det), OTA_ERR_INVALID_ARG);
    /* Not verified: no commit. */
    assert_int_equal(ota_output_commit(o, &det), OTA_ERR_INVALID_ARG);
    memcpy(bad, img, LEN);
    bad[777] ^= 1;
    write_all(o, bad);
    assert_int_equal(ota_output_verify(o, sha, buf, sizeof(buf), &det), OTA_ERR_HASH_MISMATCH);
    assert_non_null(strstr(det.msg, "read back do not match"));
    assert_int_equal(ota_output_commit(o, &det), OTA_ERR_INVALID_ARG);
    ota_output_identity(o, id);
    ota_output_free(o); /* PATH.part stays */

    /* Resumed: same file, same identity; fixed, verified, committed. */
    assert_int_equal(ota_output_file(&o, out, LEN, &det), 0);
    assert_true(ota_output_resumed(o));
    ota_output_identity(o, id2);
    assert_memory_equal(id, id2, sizeof(id));
    assert_int_equal(ota_output_read(o, buf, 10, 770, &det), 0);
    assert_memory_equal(buf, bad + 770, 10);
    assert_int_equal(ota_output_write(o, img + 777, 1, 777, &det), 0);
    assert_int_equal(ota_output_verify(o, sha, buf, 1000, &det), 0);
    /* A write after verify needs another verify. */
    assert_int_equal(ota_output_write(o, img, 1, 0, &det), 0);
    assert_int_equal(ota_output_commit(o, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_output_verify(o, sha, buf, sizeof(buf), &det), 0);
    assert_int_equal(ota_output_commit(o, &det), 0);
    assert_true(exists(out) && !exists(part));
    assert_int_equal(ota_output_discard(o, &det), 0); /* committed: nothing to remove */
    assert_true(exists(out));
    ota_output_free(o);

    /* A PATH.part of another length is started afresh; discard removes it. */
    assert_int_equal(ota_output_file(&o, out, LEN + 1, &det), 0);
    assert_false(ota_output_resumed(o));
    ota_output_free(o);
    assert_int_equal(ota_output_file(&o, out, LEN, &det), 0);
    assert_false(ota_output_resumed(o));
    assert_int_equal(ota_output_discard(o, &det), 0);
    assert_false(exists(part));
    ota_output_free(o);
    ota_output_free(NULL);
}

static void test_file_refusals(void **state)
{
    struct ota_output *o = NULL;
    struct ota_detail det = {{0}};
    char out[128], part[128];

    (void)state;
    /* A directory. */
    assert_int_equal(ota_output_file(&o, dir, LEN, &det), OTA_ERR_INVALID_ARG);
    assert_null(o);
    assert_non_null(strstr(det.msg, "is a directory"));
    /* No space: checked before anything is created. */
    path_in(out, sizeof(out), "huge");
    path_in(part, sizeof(part), "huge.part");
    assert_int_equal(ota_output_file(&o, out, UINT64_C(1) << 60, &det), OTA_ERR_NO_SPACE);
    assert_null(o);
    assert_non_null(strstr(det.msg, "free"));
    assert_false(exists(part));
    /* A directory that does not exist. */
    assert_int_equal(ota_output_file(&o, "/nonexistent/dir/img", LEN, &det), OTA_ERR_NOT_FOUND);
    assert_int_equal(ota_output_file(&o, "", LEN, &det), OTA_ERR_INVALID_ARG);
}

static void test_slot_file(void **state)
{
    struct ota_output *o = NULL;
    struct ota_detail det = {{0}};
    struct ota_slot_opts so = {0};
    char slot[128], other[128], link_[128];
    FILE *fp;

    (void)state;
    path_in(slot, sizeof(slot), "slot-b");
    path_in(other, sizeof(other), "slot-a");
    path_in(link_, sizeof(link_), "slot-b-link");
    /* Missing, too small. */
    assert_int_equal(ota_output_slot(&o, slot, LEN, NULL, &det), OTA_ERR_NOT_FOUND);
    fp = fopen(slot, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(truncate(slot, LEN - 1), 0);
    assert_int_equal(ota_output_slot(&o, slot, LEN, NULL, &det), OTA_ERR_NO_SPACE);
    assert_non_null(strstr(det.msg, "holds 99999 bytes, the image needs 100000"));
    assert_int_equal(truncate(slot, 2 * LEN), 0); /* a slot is longer than its image */
    fp = fopen(other, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(truncate(other, 2 * LEN), 0);
    /* The booted slot, named by itself or by another name for it. */
    so.booted = slot;
    assert_int_equal(ota_output_slot(&o, slot, LEN, &so, &det), OTA_ERR_SLOT_BOOTED);
    assert_non_null(strstr(det.msg, "is the booted slot"));
    assert_int_equal(link(slot, link_), 0);
    so.booted = link_;
    assert_int_equal(ota_output_slot(&o, slot, LEN, &so, &det), OTA_ERR_SLOT_BOOTED);
    /* The other slot is written in place, verified by reading it back,
     * and never renamed. */
    so.booted = other;
    assert_int_equal(ota_output_slot(&o, slot, LEN, &so, &det), 0);
    assert_true(ota_output_resumed(o));
    assert_string_equal(ota_output_name(o), slot);
    write_all(o, img);
    assert_int_equal(ota_output_verify(o, sha, buf, sizeof(buf), &det), 0);
    assert_int_equal(ota_output_commit(o, &det), 0);
    assert_int_equal(ota_output_discard(o, &det), 0);
    ota_output_free(o);
    assert_true(exists(slot));
    {
        struct stat st;

        assert_int_equal(stat(slot, &st), 0);
        assert_int_equal(st.st_size, 2 * LEN);
    }
    /* Neither a block device nor a file. */
    assert_int_equal(ota_output_slot(&o, dir, LEN, NULL, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_output_slot(&o, "/dev/null", LEN, NULL, &det), OTA_ERR_INVALID_ARG);
}

/* A block device of this machine, or none. */
static bool some_block_device(char *out, size_t n, struct stat *st)
{
    DIR *d = opendir("/dev");
    struct dirent *e;
    bool found = false;

    if (d == NULL)
        return false;
    while (!found && (e = readdir(d)) != NULL) {
        snprintf(out, n, "/dev/%s", e->d_name);
        found = lstat(out, st) == 0 && S_ISBLK(st->st_mode);
    }
    closedir(d);
    return found;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_slot_block_refusals(void **state)
{
    struct ota_output *o = NULL;
    struct ota_detail det = {{0}};
    struct ota_slot_opts so = {0};
    char dev[300], mi[128], cl[128], line[512];
    struct stat st, root;
    int want_free;

    (void)state;
    if (!some_block_device(dev, sizeof(dev), &st))
        skip();
    /* If it holds / it is "booted" whatever else is said. */
    want_free = !(stat("/", &root) == 0 && root.st_dev == st.st_rdev);
    path_in(mi, sizeof(mi), "mountinfo");
    path_in(cl, sizeof(cl), "cmdline");
    so.mountinfo = mi;
    so.cmdline = cl;
    /* Mounted, by device number (no optional fields, then with). */
    snprintf(line, sizeof(line), "36 35 %u:%u / /mnt/b rw - ext4 /dev/other rw\n",
             major(st.st_rdev), minor(st.st_rdev));
    write_text(mi, line);
    write_text(cl, "console=ttyS0 quiet\n");
    assert_int_equal(ota_output_slot(&o, dev, 1, &so, &det),
                     want_free ? OTA_ERR_SLOT_MOUNTED : OTA_ERR_SLOT_BOOTED);
    if (want_free)
        assert_non_null(strstr(det.msg, "is mounted on /mnt/b"));
    /* Mounted, by the source naming the device. */
    snprintf(line, sizeof(line),
             "1 2 0:99 / / rw shared:1 - tmpfs x rw\n"
             "36 35 0:55 / /data rw,relatime shared:7 - btrfs %s rw\n",
             dev);
    write_text(mi, line);
    assert_int_equal(ota_output_slot(&o, dev, 1, &so, &det),
                     want_free ? OTA_ERR_SLOT_MOUNTED : OTA_ERR_SLOT_BOOTED);
    if (want_free)
        assert_non_null(strstr(det.msg, "is mounted on /data"));
    /* Booted: root= on the kernel command line, or named by the caller. */
    write_text(mi, "");
    snprintf(line, sizeof(line), "console=ttyS0 root=%s rootwait\n", dev);
    write_text(cl, line);
    assert_int_equal(ota_output_slot(&o, dev, 1, &so, &det), OTA_ERR_SLOT_BOOTED);
    if (want_free)
        assert_non_null(strstr(det.msg, "on the kernel command line"));
    write_text(cl, "root=PARTUUID=00000000-no-such-uuid ro\n");
    so.booted = dev;
    assert_int_equal(ota_output_slot(&o, dev, 1, &so, &det), OTA_ERR_SLOT_BOOTED);
    assert_null(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_refusals),
        cmocka_unit_test(test_slot_file),
        cmocka_unit_test(test_slot_block_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
