/* Unit tests for bundle.c: encode -> parse round trips, one refusal per
 * parse rule of docs/formats/bundle.md with its exact error, the look-ups
 * and the fetcher over a parsed bundle. (What a bundle means is tested
 * with the client: test_tuf_ledger.c, tests/system/test_bundle.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/bundle.h"
#include "otachain/merkle.h"

#define assert_err(expr, want, det)                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want))                                                                         \
            print_message("got %s (%s), want %s\n", ota_errname(rc_), (det)->msg,                  \
                          ota_errname(want));                                                      \
        assert_int_equal(rc_, (want));                                                             \
    } while (0)

static const uint8_t ROOT2[] = "{\"root\":2}";
static const uint8_t ROOT3[] = "{\"root\":3}";
static const uint8_t RCP3[] = "a checkpoint note\n";
static const uint8_t TS[] = "{\"timestamp\":1}";
static const uint8_t SNAP[] = "{\"snapshot\":7}";
static const uint8_t TG[] = "{\"targets\":5}";
static const uint8_t CP[] = "the checkpoint\n";
static uint8_t hashes[OTA_MERKLE_MAX_PROOF * OTA_MERKLE_HASH_LEN];

struct fx {
    struct ota_bundle b;
    struct ota_bundle parsed;
    struct ota_buf enc;
};

/* A bundle with one record of every type: roots 2 and 3 over base 1, a
 * per-root checkpoint for 3, every file, two consistency proofs (5 -> 9
 * and 7 -> 9) and three inclusion proofs. */
static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(hashes); i++)
        hashes[i] = (uint8_t)(i * 7 + 1);
    struct ota_bundle *b = &fx->b;
    b->base_root = 1;
    b->newest_root = 3;
    b->base_size = 5;
    b->roots[b->nroots++] = (struct ota_bundle_file){2, ROOT2, sizeof(ROOT2) - 1};
    b->roots[b->nroots++] = (struct ota_bundle_file){3, ROOT3, sizeof(ROOT3) - 1};
    b->root_checkpoints[b->nroot_checkpoints++] =
        (struct ota_bundle_file){3, RCP3, sizeof(RCP3) - 1};
    b->timestamp = (struct ota_bundle_file){0, TS, sizeof(TS) - 1};
    b->snapshot = (struct ota_bundle_file){7, SNAP, sizeof(SNAP) - 1};
    b->targets = (struct ota_bundle_file){5, TG, sizeof(TG) - 1};
    b->checkpoint = (struct ota_bundle_file){0, CP, sizeof(CP) - 1};
    b->consistency[b->nconsistency++] =
        (struct ota_bundle_consistency){5, 9, ota_merkle_consistency_len(5, 9), hashes};
    b->consistency[b->nconsistency++] =
        (struct ota_bundle_consistency){7, 9, ota_merkle_consistency_len(7, 9), hashes};
    b->inclusion[b->ninclusion++] = (struct ota_bundle_inclusion){
        OTA_TUF_ROOT, 2, 3, 7, ota_merkle_inclusion_len(3, 7), hashes};
    b->inclusion[b->ninclusion++] = (struct ota_bundle_inclusion){
        OTA_TUF_ROOT, 3, 6, 7, ota_merkle_inclusion_len(6, 7), hashes};
    b->inclusion[b->ninclusion++] = (struct ota_bundle_inclusion){
        OTA_TUF_SNAPSHOT, 7, 8, 9, ota_merkle_inclusion_len(8, 9), hashes};
    ota_buf_init(&fx->enc, OTA_BUNDLE_MAX_LEN);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    ota_buf_free(&fx->enc);
    free(fx);
    return 0;
}

static void encode(struct fx *fx)
{
    struct ota_detail det = {{0}};
    fx->enc.len = 0;
    assert_err(ota_bundle_encode(&fx->enc, &fx->b, &det), 0, &det);
}

/* Parses bytes and expects `want`; on failure the output is zeroed. */
static void expect(struct fx *fx, const uint8_t *bytes, size_t len, int want, const char *part)
{
    struct ota_detail det = {{0}};
    memset(&fx->parsed, 0x5a, sizeof(fx->parsed));
    assert_err(ota_bundle_parse(&fx->parsed, bytes, len, &det), want, &det);
    if (want != 0) {
        static const struct ota_bundle zero;
        assert_memory_equal(&fx->parsed, &zero, sizeof(zero));
    }
    if (part != NULL && strstr(det.msg, part) == NULL)
        fail_msg("detail \"%s\" lacks \"%s\"", det.msg, part);
}

static void assert_same_file(const struct ota_bundle_file *a, const struct ota_bundle_file *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->len, b->len);
    if (a->len)
        assert_memory_equal(a->data, b->data, a->len);
}

static void test_round_trip(void **state)
{
    struct fx *fx = *state;
    encode(fx);
    /* header 40; records: roots 5+8+10 twice, rcp 5+8+18, ts 5+15,
     * snapshot 5+8+14, targets 5+8+13, checkpoint 5+15, proofs. */
    expect(fx, fx->enc.data, fx->enc.len, 0, NULL);
    const struct ota_bundle *p = &fx->parsed, *b = &fx->b;
    assert_int_equal(p->base_root, 1);
    assert_int_equal(p->newest_root, 3);
    assert_int_equal(p->base_size, 5);
    assert_int_equal(p->nroots, 2);
    for (size_t i = 0; i < 2; i++)
        assert_same_file(&p->roots[i], &b->roots[i]);
    assert_int_equal(p->nroot_checkpoints, 1);
    assert_same_file(&p->root_checkpoints[0], &b->root_checkpoints[0]);
    assert_same_file(&p->timestamp, &b->timestamp);
    assert_same_file(&p->snapshot, &b->snapshot);
    assert_same_file(&p->targets, &b->targets);
    assert_same_file(&p->checkpoint, &b->checkpoint);
    assert_int_equal(p->nconsistency, 2);
    assert_int_equal(p->consistency[1].size1, 7);
    assert_int_equal(p->consistency[1].count, b->consistency[1].count);
    assert_memory_equal(p->consistency[1].hashes, hashes, p->consistency[1].count * 32);
    assert_int_equal(p->ninclusion, 3);
    assert_int_equal(p->inclusion[2].role, OTA_TUF_SNAPSHOT);
    assert_int_equal(p->inclusion[2].index, 8);
    assert_int_equal(p->inclusion[1].version, 3);
    /* The header, byte for byte (docs/formats/bundle.md). */
    uint8_t head[40] = {'O', 'T', 'A', 'B', 'U', 'N', 'D', 'L', 0, 1}; /* version 1, flags 0 */
    head[23] = 1;                                                      /* base_root */
    head[31] = 3;                                                      /* newest_root */
    head[39] = 5;                                                      /* base_size */
    assert_memory_equal(fx->enc.data, head, sizeof(head));
    /* The first record: root 2. */
    static const uint8_t rec[13] = {1, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0, 2};
    assert_memory_equal(fx->enc.data + 40, rec, sizeof(rec));

    /* Re-encoding the parsed bundle gives the same bytes. */
    struct ota_buf again;
    struct ota_detail det = {{0}};
    ota_buf_init(&again, OTA_BUNDLE_MAX_LEN);
    assert_err(ota_bundle_encode(&again, p, &det), 0, &det);
    assert_int_equal(again.len, fx->enc.len);
    assert_memory_equal(again.data, fx->enc.data, again.len);
    ota_buf_free(&again);

    /* The smallest bundle: a header alone. */
    struct ota_bundle *min = calloc(1, sizeof(*min));
    assert_non_null(min);
    min->base_root = min->newest_root = 4;
    ota_buf_init(&again, 64);
    assert_err(ota_bundle_encode(&again, min, &det), 0, &det);
    assert_int_equal(again.len, 40);
    expect(fx, again.data, again.len, 0, NULL);
    assert_int_equal(fx->parsed.nroots, 0);
    assert_int_equal(fx->parsed.timestamp.len, 0);
    ota_buf_free(&again);
    free(min);
}

/* Offset of the record of index n (0 = the first after the header). */
static size_t record_at(const struct fx *fx, size_t n)
{
    size_t pos = 40;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = fx->enc.data + pos;
        pos += 5 + (((size_t)r[1] << 24) | ((size_t)r[2] << 16) | ((size_t)r[3] << 8) | r[4]);
    }
    return pos;
}

/* A copy of the encoding with one byte set. */
static uint8_t *with_byte(const struct fx *fx, size_t off, uint8_t v)
{
    uint8_t *c = malloc(fx->enc.len);
    assert_non_null(c);
    memcpy(c, fx->enc.data, fx->enc.len);
    c[off] = v;
    return c;
}

static void expect_byte(struct fx *fx, size_t off, uint8_t v, int want, const char *part)
{
    uint8_t *c = with_byte(fx, off, v);
    expect(fx, c, fx->enc.len, want, part);
    free(c);
}

static void test_header_rules(void **state)
{
    struct fx *fx = *state;
    encode(fx);
    expect(fx, fx->enc.data, 0, OTA_ERR_TRUNCATED, "magic");
    expect(fx, fx->enc.data, 7, OTA_ERR_TRUNCATED, "magic");
    expect(fx, fx->enc.data, 39, OTA_ERR_TRUNCATED, "header");
    expect_byte(fx, 0, 'X', OTA_ERR_BAD_MAGIC, "OTABUNDL");
    expect_byte(fx, 9, 2, OTA_ERR_FORMAT_VERSION, "version 2");
    expect_byte(fx, 8, 1, OTA_ERR_FORMAT_VERSION, NULL);
    expect_byte(fx, 11, 1, OTA_ERR_FORMAT, "flags");
    expect_byte(fx, 15, 1, OTA_ERR_FORMAT, "reserved");
    expect_byte(fx, 23, 0, OTA_ERR_FORMAT, "base_root");   /* base_root 0 */
    expect_byte(fx, 31, 0, OTA_ERR_FORMAT, "newest_root"); /* newest below base */
    expect_byte(fx, 24, 0x80, OTA_ERR_FORMAT, NULL);       /* newest >= 2^63 */
    expect_byte(fx, 30, 1, OTA_ERR_FORMAT, "256 apart");   /* newest = base + 259 */
    expect_byte(fx, 32, 0x80, OTA_ERR_FORMAT, "base_size");
    /* newest_root 2: root 3 lies outside. */
    expect_byte(fx, 31, 2, OTA_ERR_FORMAT, "outside");
    /* Too large as a whole, before anything is read. */
    expect(fx, fx->enc.data, (size_t)OTA_BUNDLE_MAX_LEN + 1, OTA_ERR_TOO_LARGE, "cap");
}

static void test_record_rules(void **state)
{
    struct fx *fx = *state;
    encode(fx);
    size_t r0 = record_at(fx, 0); /* root 2 */
    size_t r1 = record_at(fx, 1); /* root 3 */
    size_t r2 = record_at(fx, 2); /* root_checkpoint 3 */
    size_t r3 = record_at(fx, 3); /* timestamp */
    size_t r7 = record_at(fx, 7); /* consistency 5 -> 9 */
    size_t r9 = record_at(fx, 9); /* inclusion root 2 */

    /* Framing. */
    expect(fx, fx->enc.data, r0 + 3, OTA_ERR_TRUNCATED, "record 0");
    expect(fx, fx->enc.data, r0 + 10, OTA_ERR_TRUNCATED, "18 bytes announced");
    expect(fx, fx->enc.data, fx->enc.len - 1, OTA_ERR_TRUNCATED, "inclusion");
    expect_byte(fx, r0, 0, OTA_ERR_FORMAT, "unknown record type 0");
    expect_byte(fx, r0, 9, OTA_ERR_FORMAT, "unknown record type 9");
    expect_byte(fx, r3, OTA_BUNDLE_ROOT, OTA_ERR_FORMAT, "ascending type");
    expect_byte(fx, r0 + 1, 0x7f, OTA_ERR_TOO_LARGE, "cap");
    /* A file record's version and bytes. */
    expect_byte(fx, r0 + 4, 7, OTA_ERR_TRUNCATED, "less than its 8-byte version");
    expect_byte(fx, r0 + 12, 0, OTA_ERR_FORMAT, "version 0"); /* root 0 */
    expect_byte(fx, r1 + 12, 2, OTA_ERR_FORMAT, "ascending"); /* root 2 twice */
    expect_byte(fx, r0 + 12, 1, OTA_ERR_FORMAT, "outside");   /* root 1 = base */
    expect_byte(fx, r2 + 12, 4, OTA_ERR_FORMAT, "outside");   /* rcp 4 > newest */
    /* An empty file: record length 8 then a version and nothing. */
    {
        uint8_t *c = with_byte(fx, r0 + 4, 8);
        /* The rest is now misframed; cut right after the empty record. */
        expect(fx, c, r0 + 13, OTA_ERR_FORMAT, "empty file");
        free(c);
    }
    /* Consistency: sizes, count, order. */
    expect_byte(fx, r7 + 5 + 7, 0, OTA_ERR_FORMAT, "size1 < size2"); /* size1 0 */
    expect_byte(fx, r7 + 5 + 7, 9, OTA_ERR_FORMAT, "size1 < size2"); /* size1 = size2 */
    expect_byte(fx, r7 + 5 + 7, 6, OTA_ERR_PROOF_MALFORMED, "hashes");
    expect_byte(fx, r7 + 5 + 7, 7, OTA_ERR_FORMAT, "ascending"); /* 7 -> 9 twice */
    expect_byte(fx, r7 + 5 + 16, 3, OTA_ERR_PROOF_MALFORMED, NULL);
    /* Inclusion: role, version, index, size, count, order. */
    expect_byte(fx, r9 + 5, 3, OTA_ERR_FORMAT, "role 3");
    expect_byte(fx, r9 + 5, 0, OTA_ERR_FORMAT, "role 0");
    expect_byte(fx, r9 + 5 + 8, 0, OTA_ERR_FORMAT, "version 0");
    expect_byte(fx, r9 + 5 + 16, 7, OTA_ERR_FORMAT, "index < size"); /* index = size */
    expect_byte(fx, r9 + 5 + 24, 4, OTA_ERR_PROOF_MALFORMED, NULL);  /* size 4: other count */
    expect_byte(fx, r9 + 5 + 8, 4, OTA_ERR_FORMAT, "ascending");     /* root 4 after root 3 */
    expect_byte(fx, r9 + 5 + 25, 9, OTA_ERR_PROOF_MALFORMED, NULL);
}

/* Body lengths that disagree with the hash count. */
static void test_body_lengths(void **state)
{
    struct fx *fx = *state;
    struct ota_bundle *b = &fx->b;
    /* One consistency proof: its body cut or padded. */
    b->nconsistency = 1;
    b->ninclusion = 0;
    encode(fx);
    size_t r = record_at(fx, 7);
    size_t body = 17 + b->consistency[0].count * 32;
    assert_int_equal(fx->enc.len, r + 5 + body);
    /* Announce one hash less (cut body): truncated; one byte more: trailing. */
    uint8_t *c = with_byte(fx, r + 4, (uint8_t)(body - 1));
    expect(fx, c, fx->enc.len - 1, OTA_ERR_TRUNCATED, "hashes");
    free(c);
    uint8_t *d = malloc(fx->enc.len + 1);
    assert_non_null(d);
    memcpy(d, fx->enc.data, fx->enc.len);
    d[fx->enc.len] = 0;
    d[r + 4] = (uint8_t)(body + 1);
    expect(fx, d, fx->enc.len + 1, OTA_ERR_TRAILING_DATA, "after its");
    /* A body too short for the head. */
    d[r + 4] = 16;
    expect(fx, d, r + 5 + 16, OTA_ERR_TRUNCATED, "17-byte head");
    free(d);
}

static void test_encode_refuses_what_parse_refuses(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    struct ota_buf out;
    ota_buf_init(&out, OTA_BUNDLE_MAX_LEN);
    assert_int_equal(ota_buf_append(&out, "x", 1), 0);
    /* Out of order. */
    struct ota_bundle_file t = fx->b.roots[0];
    fx->b.roots[0] = fx->b.roots[1];
    fx->b.roots[1] = t;
    assert_err(ota_bundle_encode(&out, &fx->b, &det), OTA_ERR_FORMAT, &det);
    assert_int_equal(out.len, 1); /* left as it was */
    assert_int_equal(out.data[1], 0);
    fx->b.roots[1] = fx->b.roots[0];
    fx->b.roots[0] = t;
    /* A wrong hash count. */
    fx->b.inclusion[0].count++;
    assert_err(ota_bundle_encode(&out, &fx->b, &det), OTA_ERR_PROOF_MALFORMED, &det);
    fx->b.inclusion[0].count--;
    /* Over the output's cap. */
    struct ota_buf small;
    ota_buf_init(&small, 100);
    assert_err(ota_bundle_encode(&small, &fx->b, &det), OTA_ERR_TOO_LARGE, &det);
    assert_int_equal(small.len, 0);
    ota_buf_free(&small);
    assert_err(ota_bundle_encode(&out, &fx->b, &det), 0, &det);
    ota_buf_free(&out);
}

struct sink {
    uint8_t data[256];
    size_t len;
};

static int sink_fn(void *ctx, const void *data, size_t len)
{
    struct sink *s = ctx;
    if (len > sizeof(s->data) - s->len)
        return OTA_ERR_TOO_LARGE;
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

static int fetch(const struct ota_fetcher *f, enum ota_fetch_kind kind, const char *name,
                 uint64_t max, struct sink *s)
{
    struct ota_detail det = {{0}};
    s->len = 0;
    return f->fetch(f->ctx, kind, name, max, sink_fn, s, &det);
}

static void test_lookups_and_fetcher(void **state)
{
    struct fx *fx = *state;
    encode(fx);
    expect(fx, fx->enc.data, fx->enc.len, 0, NULL);
    const struct ota_bundle *b = &fx->parsed;
    assert_non_null(ota_bundle_find_root(b, 3));
    assert_null(ota_bundle_find_root(b, 4));
    assert_non_null(ota_bundle_find_root_checkpoint(b, 3));
    assert_null(ota_bundle_find_root_checkpoint(b, 2));
    assert_non_null(ota_bundle_find_consistency(b, 7, 9));
    assert_null(ota_bundle_find_consistency(b, 7, 8));
    assert_non_null(ota_bundle_find_inclusion(b, OTA_TUF_SNAPSHOT, 7, 9));
    assert_null(ota_bundle_find_inclusion(b, OTA_TUF_ROOT, 7, 9));

    struct ota_fetcher f;
    ota_bundle_fetcher(&f, b);
    assert_null(f.destroy);
    struct sink s;
    struct {
        enum ota_fetch_kind kind;
        const char *name;
        const uint8_t *want;
        size_t len;
    } ok[] = {
        {OTA_FETCH_METADATA, "2.root.json", ROOT2, sizeof(ROOT2) - 1},
        {OTA_FETCH_METADATA, "3.root.json", ROOT3, sizeof(ROOT3) - 1},
        {OTA_FETCH_METADATA, "timestamp.json", TS, sizeof(TS) - 1},
        {OTA_FETCH_METADATA, "7.snapshot.json", SNAP, sizeof(SNAP) - 1},
        {OTA_FETCH_METADATA, "5.targets.json", TG, sizeof(TG) - 1},
        {OTA_FETCH_LEDGER, "checkpoint", CP, sizeof(CP) - 1},
        {OTA_FETCH_LEDGER, "root-checkpoint/3", RCP3, sizeof(RCP3) - 1},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(fetch(&f, ok[i].kind, ok[i].name, 1000, &s), 0);
        assert_int_equal(s.len, ok[i].len);
        assert_memory_equal(s.data, ok[i].want, s.len);
    }
    const char *absent_meta[] = {"1.root.json",     "4.root.json",    "02.root.json", "root.json",
                                 "6.snapshot.json", "7.targets.json", "x.root.json",  "checkpoint"};
    for (size_t i = 0; i < sizeof(absent_meta) / sizeof(absent_meta[0]); i++)
        assert_int_equal(fetch(&f, OTA_FETCH_METADATA, absent_meta[i], 1000, &s),
                         OTA_ERR_NOT_FOUND);
    const char *absent_ledger[] = {"root-checkpoint/2", "root-checkpoint/", "index/root/2",
                                   "tile/0/000", "timestamp.json"};
    for (size_t i = 0; i < sizeof(absent_ledger) / sizeof(absent_ledger[0]); i++)
        assert_int_equal(fetch(&f, OTA_FETCH_LEDGER, absent_ledger[i], 1000, &s),
                         OTA_ERR_NOT_FOUND);
    assert_int_equal(fetch(&f, OTA_FETCH_TARGET, "2.root.json", 1000, &s), OTA_ERR_NOT_FOUND);
    /* The cap, before a byte reaches the sink. */
    assert_int_equal(fetch(&f, OTA_FETCH_METADATA, "timestamp.json", sizeof(TS) - 2, &s),
                     OTA_ERR_TOO_LARGE);
    assert_int_equal(s.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_refuses_what_parse_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups_and_fetcher, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
