/* Reference delta benchmark tool (bench/delta-corpus calls it).
 *
 *   delta_bench [opts] make OLD NEW OUT
 *       makes the delta OLD -> NEW into OUT (written to OUT.tmp, renamed
 *       on success); prints one line of key=value statistics on stdout:
 *       bytes, seconds, op counts, searches, frames, window_log.
 *   delta_bench apply OLD DELTA OUT
 *       applies DELTA to OLD as a device would: OLD read with pread at the
 *       offsets the delta names, DELTA read in 64 KiB pieces and fed as
 *       they come, OUT written as a stream; the output's SHA-256 is checked
 *       against the delta's declared to-image hash at the end (what the
 *       agent checks against signed metadata). Prints bytes and seconds.
 *       Nothing is mapped or loaded whole, so /usr/bin/time -v shows the
 *       applier's real peak RSS.
 *
 * opts (make): --level N, --window-log N, --frame-size BYTES,
 *              --min-gain N, --copy-run N (see otachain/delta_make.h).
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otachain/crypto.h"
#include "otachain/delta.h"
#include "otachain/delta_make.h"

struct out_file {
    int fd;
    uint64_t written;
    struct ota_sha256_ctx *sha; /* NULL: not hashed */
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: delta_bench [--level N] [--window-log N] [--frame-size BYTES]\n"
                    "                   [--min-gain N] [--copy-run N] make OLD NEW OUT\n"
                    "       delta_bench apply OLD DELTA OUT\n");
    return 2;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return OTA_ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int file_sink(void *ctx, const void *data, size_t len)
{
    struct out_file *o = ctx;
    int rc;

    if (o->sha != NULL) {
        rc = ota_sha256_update(o->sha, data, len);
        if (rc != 0)
            return rc;
    }
    rc = write_all(o->fd, data, len);
    if (rc == 0)
        o->written += len;
    return rc;
}

static int parse_num(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Maps a whole file read-only (NULL for an empty file). */
static int map_file(const uint8_t **data, size_t *len, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *data = NULL;
    *len = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "delta_bench: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    if (*len > 0) {
        void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);

        if (p == MAP_FAILED) {
            fprintf(stderr, "delta_bench: mmap %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        *data = p;
    }
    close(fd);
    return 0;
}

static int cmd_make(const char *old_path, const char *new_path, const char *out_path,
                    const struct ota_delta_make_opts *opts)
{
    const uint8_t *old_img;
    const uint8_t *new_img;
    size_t old_len;
    size_t new_len;
    struct ota_delta_make_stats st;
    struct ota_detail det = {{0}};
    struct out_file o = {-1, 0, NULL};
    char tmp[4096];
    double t0;
    double t1;
    int rc;

    if (map_file(&old_img, &old_len, old_path) != 0 || map_file(&new_img, &new_len, new_path) != 0)
        return 1;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", out_path) >= (int)sizeof(tmp))
        return 1;
    o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0) {
        fprintf(stderr, "delta_bench: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    t0 = now();
    rc = ota_delta_make(file_sink, &o, &st, old_img, old_len, new_img, new_len, opts, &det);
    t1 = now();
    if (rc == 0 && (fsync(o.fd) != 0 || close(o.fd) != 0))
        rc = OTA_ERR_IO;
    else if (rc != 0)
        close(o.fd);
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = OTA_ERR_IO;
    if (rc != 0) {
        unlink(tmp);
        fprintf(stderr, "delta_bench: make: %s (%s)\n", ota_strerror(rc), det.msg);
        return 1;
    }
    printf("bytes=%" PRIu64 " seconds=%.2f op_stream=%" PRIu64 " copy_ops=%" PRIu64
           " copy_bytes=%" PRIu64 " add_ops=%" PRIu64 " add_bytes=%" PRIu64 " insert_ops=%" PRIu64
           " insert_bytes=%" PRIu64 " searches=%" PRIu64 " frames=%" PRIu64 " window_log=%u\n",
           st.delta_length, t1 - t0, st.op_stream_length, st.copy_ops, st.copy_bytes, st.add_ops,
           st.add_bytes, st.insert_ops, st.insert_bytes, st.searches, st.frames, st.window_log);
    return 0;
}

static int cmd_apply(const char *old_path, const char *delta_path, const char *out_path)
{
    static uint8_t buf[65536];
    struct ota_delta_apply_cfg cfg;
    struct ota_delta_apply *a = NULL;
    struct ota_delta_info info;
    struct ota_detail det = {{0}};
    struct out_file o = {-1, 0, NULL};
    uint8_t got[OTA_SHA256_LEN];
    struct stat st;
    int old_fd;
    int dfd;
    double t0;
    int rc;

    old_fd = open(old_path, O_RDONLY | O_CLOEXEC);
    dfd = open(delta_path, O_RDONLY | O_CLOEXEC);
    if (old_fd < 0 || dfd < 0 || fstat(old_fd, &st) != 0) {
        fprintf(stderr, "delta_bench: %s or %s: %s\n", old_path, delta_path, strerror(errno));
        return 1;
    }
    o.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0 || ota_sha256_init(&o.sha) != 0) {
        fprintf(stderr, "delta_bench: %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = ota_delta_read_fd;
    cfg.read_ctx = &old_fd;
    cfg.old_length = (uint64_t)st.st_size;
    cfg.sink = file_sink;
    cfg.sink_ctx = &o;
    t0 = now();
    rc = ota_delta_apply_new(&a, &cfg);
    while (rc == 0) {
        ssize_t n = read(dfd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = OTA_ERR_IO;
            break;
        }
        if (n == 0) {
            rc = ota_delta_apply_finish(a, &det);
            break;
        }
        rc = ota_delta_apply_feed(a, buf, (size_t)n, &det);
    }
    if (rc == 0)
        rc = ota_delta_apply_info(&info, a);
    if (rc == 0)
        rc = ota_sha256_final(got, o.sha);
    if (rc == 0 && !ota_ct_equal(got, info.to_sha256, OTA_SHA256_LEN)) {
        rc = OTA_ERR_HASH_MISMATCH;
        snprintf(det.msg, sizeof(det.msg), "output differs from the declared to-image");
    }
    if (rc == 0 && (fsync(o.fd) != 0 || close(o.fd) != 0))
        rc = OTA_ERR_IO;
    if (rc != 0) {
        fprintf(stderr, "delta_bench: apply: %s (%s)\n", ota_strerror(rc), det.msg);
        ota_delta_apply_free(a);
        return 1;
    }
    printf("bytes=%" PRIu64 " seconds=%.2f applier_mem=%zu\n", o.written, now() - t0,
           ota_delta_apply_mem(a));
    ota_delta_apply_free(a);
    ota_sha256_ctx_free(o.sha);
    close(old_fd);
    close(dfd);
    return 0;
}

int main(int argc, char **argv)
{
    struct ota_delta_make_opts opts;
    int i = 1;

    memset(&opts, 0, sizeof(opts));
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        uint64_t v;

        if (i + 1 >= argc || parse_num(argv[i + 1], &v) != 0 || v > UINT32_MAX)
            return usage();
        if (strcmp(argv[i], "--level") == 0)
            opts.level = (int)v;
        else if (strcmp(argv[i], "--window-log") == 0)
            opts.window_log = (unsigned)v;
        else if (strcmp(argv[i], "--frame-size") == 0)
            opts.frame_size = v;
        else if (strcmp(argv[i], "--min-gain") == 0)
            opts.min_gain = (unsigned)v;
        else if (strcmp(argv[i], "--copy-run") == 0)
            opts.copy_run = (unsigned)v;
        else
            return usage();
        i += 2;
    }
    if (argc - i == 4 && strcmp(argv[i], "make") == 0)
        return cmd_make(argv[i + 1], argv[i + 2], argv[i + 3], &opts);
    if (argc - i == 4 && strcmp(argv[i], "apply") == 0)
        return cmd_apply(argv[i + 1], argv[i + 2], argv[i + 3]);
    return usage();
}
