/* Unit tests for dp_fetch.c without a mirror (the HTTP paths are covered
 * by tests/system/test_dataplane.py with nginx): the index (read from a
 * file, through the callback) is checked against the signed length and
 * SHA-256 before anything is written; an image whose chunks the current
 * image all has is built with no pack request and renamed into place, the
 * progress removed; a run that cannot reach the mirror leaves OUT absent
 * and OUT.part unrenamed, and a rerun resumes from the chunks it verified;
 * a second run on the same state while one holds it is refused (locked);
 * a current image inside a longer file or device is read to its given
 * length only, and a device or pipe without one is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/chunk_index.h"
#include "otachain/crypto.h"
#include "otachain/dp_fetch.h"
#include "otachain/output.h"

#include "chunk_fixture.h"
#include "failalloc.h"
#include "testfs.h"

#define LEN (512u * 1024u)

struct fx {
    uint8_t *v1, *v2;
    uint8_t sha2[OTA_SHA256_LEN];
    struct ota_buf i2, p2;
    struct ota_chunk_index *idx2;
    int fd1, fd2;
    int ifd; /* the v2 index as a file */
    unsigned index_calls;
    char dir[256];
    char out[300], part[310], state[300];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR");

    if (f == NULL)
        return -1;
    f->v1 = malloc(LEN);
    f->v2 = malloc(LEN);
    if (f->v1 == NULL || f->v2 == NULL)
        return -1;
    fx_random(f->v1, LEN, 41);
    memcpy(f->v2, f->v1, LEN);
    fx_random(f->v2 + 200000, 3000, 42); /* one region differs */
    if (ota_sha256(f->sha2, f->v2, LEN) != 0 ||
        fx_build(&f->i2, &f->p2, f->v2, LEN, NULL, 0) != 0 ||
        ota_chunk_index_parse(&f->idx2, f->i2.data, f->i2.len, NULL) != 0)
        return -1;
    f->fd1 = fx_temp_fd(f->v1, LEN);
    f->fd2 = fx_temp_fd(f->v2, LEN);
    f->ifd = fx_temp_fd(f->i2.data, f->i2.len);
    if (f->ifd < 0)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/ota-dpf-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (f->fd1 < 0 || f->fd2 < 0 || mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->out, sizeof(f->out), "%s/new.img", f->dir);
    snprintf(f->part, sizeof(f->part), "%s.part", f->out);
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    rm_rf(f->dir);
    close(f->fd1);
    close(f->fd2);
    close(f->ifd);
    ota_chunk_index_free(f->idx2);
    free(ota_buf_steal(&f->i2, NULL));
    free(ota_buf_steal(&f->p2, NULL));
    free(f->v1);
    free(f->v2);
    free(f);
    return 0;
}

/* The index callback: what the TUF client would download, opened. */
static int get_index(void *ctx, int *fd, struct ota_detail *det)
{
    struct fx *f = ctx;

    (void)det;
    f->index_calls++;
    *fd = dup(f->ifd);
    return *fd < 0 ? OTA_ERR_IO : 0;
}

static void cfg_init(struct ota_dp_fetch_cfg *c, struct fx *f, int current_fd)
{
    static struct ota_http_policy http;

    ota_http_policy_default(&http);
    http.connect_timeout_s = 2;
    memset(c, 0, sizeof(*c));
    c->get_index = get_index;
    c->index_ctx = f;
    c->image_length = LEN;
    c->image_sha256 = f->sha2;
    c->current_fd = current_fd;
    c->base_url = "http://127.0.0.1:1"; /* nothing listens: connection refused */
    c->state_dir = f->state;
    c->http = &http;
}

/* One fetch into the file output f->out. */
static int fetch(struct ota_dp_fetch_stats *st, struct ota_dp_fetch_cfg *c, const struct fx *f,
                 struct ota_detail *det)
{
    struct ota_output *out = NULL;
    int rc = ota_output_file(&out, f->out, c->image_length, det);

    c->out = out;
    if (rc == 0)
        rc = ota_dp_fetch(st, c, det);
    ota_output_free(out);
    c->out = NULL;
    return rc;
}

static bool exists(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0;
}

static void test_index_must_match_signed_target(void **state)
{
    struct fx *f = *state;
    struct ota_dp_fetch_cfg c;
    struct ota_detail det;
    uint8_t other[OTA_SHA256_LEN];

    cfg_init(&c, f, f->fd1);
    c.image_length = LEN + 1;
    assert_int_equal(fetch(NULL, &c, f, &det), OTA_ERR_LENGTH_MISMATCH);
    memcpy(other, f->sha2, sizeof(other));
    other[5] ^= 1;
    cfg_init(&c, f, f->fd1);
    c.image_sha256 = other;
    assert_int_equal(fetch(NULL, &c, f, &det), OTA_ERR_HASH_MISMATCH);
    assert_false(exists(f->out));
}

static void test_all_chunks_local(void **state)
{
    struct fx *f = *state;
    struct ota_dp_fetch_cfg c;
    struct ota_dp_fetch_stats st;
    struct ota_detail det;
    uint8_t *got = NULL;
    size_t n = 0;

    cfg_init(&c, f, f->fd2); /* the current image already is the target */
    assert_int_equal(fetch(&st, &c, f, &det), 0);
    assert_false(st.delta_used);
    assert_int_equal(st.chunks_copied, f->idx2->count);
    assert_int_equal(st.chunks_fetched, 0);
    assert_int_equal(st.range_bytes, 0);
    assert_int_equal(st.requests, 1); /* the delta attempt only */
    assert_false(exists(f->part));
    got = malloc(LEN + 1);
    assert_non_null(got);
    {
        int fd = open(f->out, O_RDONLY);

        assert_true(fd >= 0);
        n = (size_t)read(fd, got, LEN + 1);
        close(fd);
    }
    assert_int_equal(n, LEN);
    assert_memory_equal(got, f->v2, LEN);
    free(got);
    assert_int_equal(unlink(f->out), 0);
}

static void test_unreachable_mirror_then_resume(void **state)
{
    struct fx *f = *state;
    struct ota_dp_fetch_cfg c;
    struct ota_dp_fetch_stats st;
    struct ota_detail det;
    uint32_t copied;

    cfg_init(&c, f, f->fd1);
    c.no_delta = true;
    assert_int_equal(fetch(&st, &c, f, &det), OTA_ERR_NETWORK);
    copied = st.chunks_copied;
    assert_true(copied > 0 && copied < f->idx2->count);
    assert_true(exists(f->part));
    assert_false(exists(f->out));
    /* Rerun with the full image as "current": the verified chunks are
     * not touched again, the rest are copied. */
    cfg_init(&c, f, f->fd2);
    assert_int_equal(fetch(&st, &c, f, &det), 0);
    assert_int_equal(st.chunks_done, copied);
    assert_int_equal(st.chunks_copied, f->idx2->count - copied);
    assert_true(exists(f->out));
    assert_false(exists(f->part));
    assert_int_equal(unlink(f->out), 0);
}

static void test_concurrent_run_locked(void **state)
{
    struct fx *f = *state;
    struct ota_dp_fetch_cfg c;
    struct ota_detail det;
    char hex[OTA_SHA256_HEX_LEN + 1];
    char lock[400];
    int fd;

    assert_int_equal(mkdir(f->state, 0700), 0);
    ota_hex_encode(hex, f->sha2, OTA_SHA256_LEN);
    snprintf(lock, sizeof(lock), "%s/%s.lock", f->state, hex);
    fd = open(lock, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    cfg_init(&c, f, f->fd2);
    assert_int_equal(fetch(NULL, &c, f, &det), OTA_ERR_LOCKED);
    assert_false(exists(f->out));
    close(fd);
    assert_int_equal(fetch(NULL, &c, f, &det), 0);
    assert_int_equal(unlink(f->out), 0);
    c.ranges_per_request = OTA_DP_MAX_RANGES_PER_REQUEST + 1;
    assert_int_equal(fetch(NULL, &c, f, &det), OTA_ERR_INVALID_ARG);
}

/* A slot holds the image followed by other bytes: with current_length
 * only the image is chunked and hashed; beyond the file it is truncated;
 * a pipe (like a device, st_size 0) needs a length. */
static void test_current_length(void **state)
{
    struct fx *f = *state;
    struct ota_dp_fetch_cfg c;
    struct ota_dp_fetch_stats st;
    struct ota_detail det;
    uint8_t *slot = malloc(LEN + 100000);
    int slot_fd;
    int pipefd[2];

    assert_non_null(slot);
    memcpy(slot, f->v2, LEN);
    memset(slot + LEN, 0xa5, 100000);
    slot_fd = fx_temp_fd(slot, LEN + 100000);
    assert_true(slot_fd >= 0);
    cfg_init(&c, f, slot_fd);
    c.current_length = LEN + 100001;
    assert_int_equal(fetch(&st, &c, f, &det), OTA_ERR_TRUNCATED);
    assert_non_null(strstr(det.msg, "beyond the file"));
    assert_false(exists(f->out));
    c.current_length = LEN;
    assert_int_equal(fetch(&st, &c, f, &det), 0);
    assert_int_equal(st.chunks_copied, f->idx2->count);
    assert_int_equal(st.chunks_fetched, 0);
    assert_true(exists(f->out));
    assert_int_equal(unlink(f->out), 0);
    /* Without the length the trailing bytes change the last chunks, which
     * are then fetched (the mirror is unreachable here). */
    c.current_length = 0;
    assert_int_equal(fetch(&st, &c, f, &det), OTA_ERR_NETWORK);
    assert_true(st.chunks_copied < f->idx2->count);
    assert_false(exists(f->out));
    close(slot_fd);
    free(slot);

    assert_int_equal(pipe(pipefd), 0);
    cfg_init(&c, f, pipefd[0]);
    assert_int_equal(fetch(&st, &c, f, &det), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "not a regular file"));
    close(pipefd[0]);
    close(pipefd[1]);
}

/* From a clean state: an image whose chunks the current image all has
 * (no request needed): 0 with OUT = v2 and the progress gone, or an
 * error with OUT absent. */
static int fa_local(struct fx *f)
{
    struct ota_dp_fetch_cfg c;
    struct ota_dp_fetch_stats st;
    struct ota_detail det;
    int rc;

    rm_rf(f->state);
    (void)unlink(f->part);
    (void)unlink(f->out);
    cfg_init(&c, f, f->fd2);
    c.no_delta = true;
    rc = fetch(&st, &c, f, &det);
    return rc;
}

/* STYLE rule 9 on the fetcher (its network paths are covered by the
 * system tests): each allocation fails in turn; a failed run never
 * leaves OUT, and a normal rerun on the state it left succeeds. */
static void test_alloc_faults(void **state)
{
    struct fx *f = *state;
    struct ota_dp_fetch_cfg c;
    struct ota_dp_fetch_stats st;
    struct ota_detail det;
    unsigned long k;

    assert_int_equal(fa_local(f), 0);
    for (k = 1;; k++) {
        int rc;

        fa_arm(k);
        rc = fa_local(f);
        if (!fa_disarm()) {
            assert_int_equal(rc, 0);
            break;
        }
        if (!fa_rc_ok(rc))
            fail_msg("allocation %lu failed: %s", k, ota_errname(rc));
        if (rc != 0) {
            assert_false(exists(f->out));
            cfg_init(&c, f, f->fd2);
            c.no_delta = true;
            assert_int_equal(fetch(&st, &c, f, &det), 0);
        }
        assert_true(exists(f->out));
        assert_false(exists(f->part));
    }
    assert_true(fa_failed_runs() >= 5);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_current_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_must_match_signed_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_chunks_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_mirror_then_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_run_locked, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
