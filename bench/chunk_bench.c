/* Data-plane benchmark (bench/run calls it on the release build).
 *
 *   chunk_bench [opts] build IMAGE
 *       release creation: chunking alone, SHA-256 of the whole image,
 *       chunking + SHA-256 of each chunk, and the full build (chunk + hash
 *       + zstd each distinct chunk) in MB/s of wall and of CPU time;
 *       chunk count, pack (store: distinct chunks) size, distinct chunks,
 *       index size.
 *   chunk_bench [opts] levels IMAGE
 *       the full build at zstd levels 1 3 4 5 6 9 12 15 19 (each with its
 *       own search log) and at the default (level 5, search log 4): MB/s
 *       (wall, CPU) and pack size.
 *   chunk_bench [opts] sweep V1 V2
 *       what a device holding V1 fetches for V2, at average chunk sizes 4,
 *       8, 16, 32 and 64 KiB (min = avg/4, max = 4 avg): chunks, index
 *       bytes, needed frame bytes, bytes requested after coalescing, HTTP
 *       ranges and requests, total = index + requested.
 *
 * opts: --level N (zstd level), --search-log N (zstd searchLog, 0 = the
 *       level's own), --avg BYTES (min avg/4, max 4 avg): each defaults to
 *       what `otachain release add` uses for an image of that length
 *       (ota_chunk_build_opts_for; in sweep, the V2 image's level);
 *       --threads N (compression threads, default 1), --gap BYTES,
 *       --ranges-per-request N, --max-requests N.
 * Output: Markdown table rows on stdout. Images are mapped read-only and
 * touched once before timing, so the numbers are CPU, not disk.
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

#include "otachain/buf.h"
#include "otachain/chunk_build.h"
#include "otachain/chunk_index.h"
#include "otachain/chunker.h"
#include "otachain/crypto.h"
#include "otachain/fsutil.h"
#include "otachain/plan.h"

struct bench {
    int level;      /* 0 = as for the image */
    int search_log; /* -1 = as for the image */
    uint32_t avg;   /* 0 = as for the image */
    unsigned threads;
    struct ota_plan_opts plan;
};

/* Build options for an image of len bytes: what release add uses, with
 * the command line's overrides. */
static void opts_for(struct ota_chunk_build_opts *o, const struct bench *bc, uint64_t len)
{
    ota_chunk_build_opts_for(o, len);
    if (bc->level != 0) {
        o->zstd_level = bc->level;
        o->zstd_search_log = 0;
    }
    if (bc->search_log >= 0)
        o->zstd_search_log = bc->search_log;
    if (bc->avg != 0) {
        o->chunker.avg_size = bc->avg;
        o->chunker.min_size = bc->avg / 4 < 64 ? 64 : bc->avg / 4;
        o->chunker.max_size = bc->avg * 4 > OTA_CHUNK_LEN_CAP ? OTA_CHUNK_LEN_CAP : bc->avg * 4;
    }
    o->threads = bc->threads;
}

struct image {
    const uint8_t *data;
    size_t len;
    int fd;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mbps(size_t bytes, double secs)
{
    return secs > 0 ? (double)bytes / 1e6 / secs : 0;
}

static int map_image(struct image *im, const char *path)
{
    struct stat st;
    volatile uint8_t sink = 0;
    size_t i;

    im->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (im->fd < 0 || fstat(im->fd, &st) != 0) {
        fprintf(stderr, "chunk_bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    im->len = (size_t)st.st_size;
    im->data = NULL;
    if (im->len == 0)
        return 0;
    im->data = mmap(NULL, im->len, PROT_READ, MAP_PRIVATE, im->fd, 0);
    if (im->data == MAP_FAILED) {
        fprintf(stderr, "chunk_bench: mmap %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (i = 0; i < im->len; i += 4096)
        sink ^= im->data[i];
    (void)sink;
    return 0;
}

struct build_result {
    double secs;
    double cpu_secs;
    uint32_t chunks;
    uint64_t pack;
    size_t index_len;
    uint32_t distinct; /* chunks with a frame */
};

static int count_sink(void *ctx, const struct ota_chunk_entry *e, const uint8_t *frame, size_t n)
{
    (void)e;
    (void)n;
    if (frame != NULL)
        ++*(uint32_t *)ctx;
    return 0;
}

/* The full build of im in memory; the pack is counted, not kept. */
static int run_build(struct build_result *r, const struct image *im,
                     const struct ota_chunk_build_opts *o, struct ota_buf *index_out)
{
    struct ota_chunk_build *b = NULL;
    struct ota_chunk_index *idx = NULL;
    struct ota_buf index;
    struct ota_detail det = {{0}};
    double t0;
    double c0;
    int rc;

    memset(r, 0, sizeof(*r));
    ota_buf_init(&index, SIZE_MAX);
    t0 = now();
    c0 = cpu_now();
    rc = ota_chunk_build_new(&b, o, count_sink, &r->distinct, &det);
    if (rc == 0)
        rc = ota_chunk_build_update(b, im->data, im->len, &det);
    if (rc == 0)
        rc = ota_chunk_build_finish(&index, b, &det);
    r->secs = now() - t0;
    r->cpu_secs = cpu_now() - c0;
    ota_chunk_build_free(b);
    if (rc == 0)
        rc = ota_chunk_index_parse(&idx, index.data, index.len, &det);
    if (rc != 0) {
        fprintf(stderr, "chunk_bench: build: %s %s\n", ota_strerror(rc), det.msg);
        ota_buf_free(&index);
        return rc;
    }
    r->chunks = idx->count;
    r->pack = idx->pack_length;
    r->index_len = index.len;
    ota_chunk_index_free(idx);
    if (index_out != NULL)
        *index_out = index;
    else
        ota_buf_free(&index);
    return 0;
}

static int cmd_build(const struct bench *bc, const char *path)
{
    struct image im;
    struct ota_chunk_build_opts o;
    struct ota_chunker ch;
    struct build_result r;
    uint8_t h[OTA_SHA256_LEN];
    uint32_t chunks = 0;
    size_t off = 0;
    double t0, t_chunk, t_hash, t_sha;

    if (map_image(&im, path) != 0)
        return 1;
    opts_for(&o, bc, im.len);
    /* Chunking alone. */
    if (ota_chunker_init(&ch, &o.chunker, NULL) != 0)
        return 1;
    t0 = now();
    while (off < im.len) {
        uint32_t cut;

        off += ota_chunker_scan(&ch, &cut, im.data + off, im.len - off);
        chunks += cut != 0;
    }
    chunks += ota_chunker_end(&ch) != 0;
    t_chunk = now() - t0;
    /* SHA-256 of the whole image: the limit of hashing alone. */
    t0 = now();
    if (ota_sha256(h, im.data, im.len) != 0)
        return 1;
    t_sha = now() - t0;
    /* Chunking + SHA-256 of every chunk. */
    t0 = now();
    {
        size_t start = 0;

        off = 0;
        while (off < im.len) {
            uint32_t cut;

            off += ota_chunker_scan(&ch, &cut, im.data + off, im.len - off);
            if (cut != 0) {
                if (ota_sha256(h, im.data + start, cut) != 0)
                    return 1;
                start += cut;
            }
        }
        if (ota_chunker_end(&ch) != 0 && ota_sha256(h, im.data + start, im.len - start) != 0)
            return 1;
    }
    t_hash = now() - t0;
    if (run_build(&r, &im, &o, NULL) != 0)
        return 1;
    printf("| %s | %zu | %u KiB | %d/%d | %u | %u | %.0f | %.0f | %.0f | %.1f | %.1f | %" PRIu64
           " | %u | %zu |\n",
           path, im.len, o.chunker.avg_size / 1024, o.zstd_level, o.zstd_search_log, o.threads,
           chunks, mbps(im.len, t_chunk), mbps(im.len, t_sha), mbps(im.len, t_hash),
           mbps(im.len, r.secs), mbps(im.len, r.cpu_secs), r.pack, r.distinct, r.index_len);
    return 0;
}

static int cmd_levels(const struct bench *bc, const char *path)
{
    /* {level, search log}: the levels as zstd defines them, then the
     * large-image default. */
    static const int levels[][2] = {
        {1, 0},  {3, 0},
        {4, 0},  {5, 0},
        {6, 0},  {9, 0},
        {12, 0}, {15, 0},
        {19, 0}, {OTA_CHUNK_ZSTD_LEVEL_DEFAULT, OTA_CHUNK_ZSTD_SEARCH_LOG_DEFAULT}};
    struct image im;
    size_t i;

    if (map_image(&im, path) != 0)
        return 1;
    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        struct ota_chunk_build_opts o;
        struct build_result r;

        opts_for(&o, bc, im.len);
        o.zstd_level = levels[i][0];
        o.zstd_search_log = levels[i][1];
        if (run_build(&r, &im, &o, NULL) != 0)
            return 1;
        printf("| %s | %u KiB | %d/%d | %u | %.1f | %.1f | %" PRIu64 " | %.1f %% |\n", path,
               o.chunker.avg_size / 1024, o.zstd_level, o.zstd_search_log, o.threads,
               mbps(im.len, r.secs), mbps(im.len, r.cpu_secs), r.pack,
               100.0 * (double)r.pack / (double)im.len);
    }
    return 0;
}

/* An unlinked temporary file holding n bytes of data. */
static int temp_file_with(int *fd, const uint8_t *data, size_t n)
{
    char path[] = "/tmp/chunk-bench-index-XXXXXX";

    *fd = mkstemp(path);
    if (*fd < 0)
        return OTA_ERR_IO;
    unlink(path);
    return ota_fs_write_all(*fd, data, n);
}

static int cmd_sweep(const struct bench *bc, const char *v1, const char *v2)
{
    static const uint32_t avgs[] = {4096, 8192, 16384, 32768, 65536};
    struct image a, b;
    size_t i;

    if (map_image(&a, v1) != 0 || map_image(&b, v2) != 0)
        return 1;
    for (i = 0; i < sizeof(avgs) / sizeof(avgs[0]); i++) {
        struct ota_chunk_build_opts o;
        struct build_result r;
        struct ota_buf index;
        struct ota_chunk_index_file *idx = NULL;
        struct ota_plan_have *have = NULL;
        struct ota_plan_stats ps;
        struct ota_detail det = {{0}};
        double t0, t_have;
        int ifd = -1;
        int rc;

        opts_for(&o, bc, b.len);
        o.chunker.avg_size = avgs[i];
        o.chunker.min_size = avgs[i] / 4;
        o.chunker.max_size = avgs[i] * 4;
        if (run_build(&r, &b, &o, &index) != 0)
            return 1;
        /* The device reads the index from a file (ota_chunk_index_open). */
        rc = temp_file_with(&ifd, index.data, index.len);
        if (rc == 0)
            rc = ota_chunk_index_open(&idx, ifd, NULL, &det);
        t0 = now();
        if (rc == 0)
            rc = ota_plan_have_from_fd(&have, NULL, a.fd, UINT64_MAX, &o.chunker, NULL, &det);
        t_have = now() - t0;
        if (rc == 0)
            rc = ota_plan_estimate(&ps, idx, have, NULL, &bc->plan, &det);
        if (rc != 0) {
            fprintf(stderr, "chunk_bench: sweep: %s %s\n", ota_strerror(rc), det.msg);
            return 1;
        }
        printf("| %u KiB | %u | %zu | %" PRIu64 " | %u | %" PRIu64 " | %" PRIu64 " | %u | %u | "
               "%" PRIu64 " | %.2f s |\n",
               avgs[i] / 1024, ota_chunk_index_file_header(idx)->count, index.len,
               ota_chunk_index_file_header(idx)->pack_length, ps.fetch_chunks, ps.fetch_zbytes,
               ps.range_bytes, ps.ranges, ps.requests, (uint64_t)index.len + ps.range_bytes,
               t_have);
        fflush(stdout);
        ota_plan_have_free(have);
        ota_chunk_index_file_free(idx);
        close(ifd);
        ota_buf_free(&index);
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: chunk_bench [--level N] [--search-log N] [--threads N] [--avg BYTES] "
                    "[--gap BYTES] "
                    "[--ranges-per-request N] [--max-requests N]\n"
                    "                   build IMAGE | levels IMAGE | sweep V1 V2\n");
    return 2;
}

static int num(const char *s, unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno != 0 || end == s || *end != '\0' ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct bench bc;
    int i = 1;

    bc.level = 0;
    bc.search_log = -1;
    bc.threads = 1;
    bc.avg = 0;
    ota_plan_opts_default(&bc.plan);
    while (i + 1 < argc && strncmp(argv[i], "--", 2) == 0) {
        unsigned long long v;

        if (num(argv[i + 1], &v) != 0)
            return usage();
        if (strcmp(argv[i], "--level") == 0)
            bc.level = (int)v;
        else if (strcmp(argv[i], "--search-log") == 0)
            bc.search_log = (int)v;
        else if (strcmp(argv[i], "--threads") == 0)
            bc.threads = (unsigned)v;
        else if (strcmp(argv[i], "--avg") == 0)
            bc.avg = (uint32_t)v;
        else if (strcmp(argv[i], "--gap") == 0)
            bc.plan.gap = v;
        else if (strcmp(argv[i], "--ranges-per-request") == 0)
            bc.plan.ranges_per_request = (uint32_t)v;
        else if (strcmp(argv[i], "--max-requests") == 0)
            bc.plan.max_requests = (uint32_t)v;
        else
            return usage();
        i += 2;
    }
    if (i + 2 == argc && strcmp(argv[i], "build") == 0)
        return cmd_build(&bc, argv[i + 1]);
    if (i + 2 == argc && strcmp(argv[i], "levels") == 0)
        return cmd_levels(&bc, argv[i + 1]);
    if (i + 3 == argc && strcmp(argv[i], "sweep") == 0)
        return cmd_sweep(&bc, argv[i + 1], argv[i + 2]);
    return usage();
}
