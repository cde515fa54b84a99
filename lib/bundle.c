/* Proof bundles: strict parser, encoder and fetcher (otachain/bundle.h,
 * docs/formats/bundle.md).
 *
 * The parser walks the records once, left to right, and checks every
 * length against what is left before it reads a field; a record's type
 * and key must be above the previous record's, so order and uniqueness
 * are one comparison. It keeps pointers into the input.
 */
#include "otachain/bundle.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/note.h"

#define VERSION_MAX (OTA_MERKLE_MAX_SIZE - 1) /* versions and sizes are below 2^63 */

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static const char *type_name(unsigned type)
{
    static const char *const names[] = {
        [OTA_BUNDLE_ROOT] = "root",
        [OTA_BUNDLE_ROOT_CHECKPOINT] = "root_checkpoint",
        [OTA_BUNDLE_TIMESTAMP] = "timestamp",
        [OTA_BUNDLE_SNAPSHOT] = "snapshot",
        [OTA_BUNDLE_TARGETS] = "targets",
        [OTA_BUNDLE_CHECKPOINT] = "checkpoint",
        [OTA_BUNDLE_CONSISTENCY] = "consistency",
        [OTA_BUNDLE_INCLUSION] = "inclusion",
    };
    return type >= OTA_BUNDLE_ROOT && type <= OTA_BUNDLE_INCLUSION ? names[type] : "unknown";
}

/* Body cap of each type. */
static uint64_t body_cap(unsigned type)
{
    switch (type) {
    case OTA_BUNDLE_ROOT:
        return 8 + (uint64_t)OTA_TUF_ROOT_MAX_LEN;
    case OTA_BUNDLE_ROOT_CHECKPOINT:
        return 8 + (uint64_t)OTA_NOTE_MAX_LEN;
    case OTA_BUNDLE_TIMESTAMP:
        return OTA_TUF_TIMESTAMP_MAX_LEN;
    case OTA_BUNDLE_SNAPSHOT:
        return 8 + (uint64_t)OTA_TUF_SNAPSHOT_MAX_LEN;
    case OTA_BUNDLE_TARGETS:
        return 8 + (uint64_t)OTA_TUF_TARGETS_MAX_LEN;
    case OTA_BUNDLE_CHECKPOINT:
        return OTA_NOTE_MAX_LEN;
    case OTA_BUNDLE_CONSISTENCY:
        return 17 + (uint64_t)OTA_MERKLE_MAX_PROOF * OTA_MERKLE_HASH_LEN;
    default:
        return 26 + (uint64_t)OTA_MERKLE_MAX_PROOF * OTA_MERKLE_HASH_LEN;
    }
}

/* Parse state: where we are, for the detail. */
struct pstate {
    struct ota_bundle *b;
    size_t rec;    /* index of the record being parsed */
    unsigned type; /* its type */
    struct ota_detail *det;
};

#define FAIL(ps, rc, ...)                                                                          \
    do {                                                                                           \
        fail_detail((ps), __VA_ARGS__);                                                            \
        return (rc);                                                                               \
    } while (0)

static void fail_detail(const struct pstate *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_detail(const struct pstate *ps, const char *fmt, ...)
{
    if (ps->det == NULL)
        return;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    ota_detail_set(ps->det, "bundle record %zu (%s): %s", ps->rec, type_name(ps->type), what);
}

/* A file record: [version (8)] bytes (at least one). */
static int parse_file(struct ota_bundle_file *out, const struct pstate *ps, const uint8_t *body,
                      size_t len, bool versioned)
{
    size_t off = 0;
    out->version = 0;
    if (versioned) {
        if (len < 8)
            FAIL(ps, OTA_ERR_TRUNCATED, "%zu bytes, less than its 8-byte version", len);
        out->version = get64(body);
        if (out->version == 0 || out->version > VERSION_MAX)
            FAIL(ps, OTA_ERR_FORMAT, "version %llu is not 1 to 2^63 - 1",
                 (unsigned long long)out->version);
        off = 8;
    }
    if (len == off)
        FAIL(ps, OTA_ERR_FORMAT, "empty file");
    out->data = body + off;
    out->len = len - off;
    return 0;
}

/* Hash count against the body: fewer bytes is truncated, more trailing. */
static int check_hashes(const struct pstate *ps, size_t fixed, size_t count, size_t len)
{
    size_t want = fixed + count * OTA_MERKLE_HASH_LEN;
    if (len < want)
        FAIL(ps, OTA_ERR_TRUNCATED, "%zu bytes for %zu hashes, need %zu", len, count, want);
    if (len > want)
        FAIL(ps, OTA_ERR_TRAILING_DATA, "%zu bytes after its %zu hashes", len - want, count);
    return 0;
}

static int parse_consistency(struct pstate *ps, const uint8_t *body, size_t len)
{
    struct ota_bundle *b = ps->b;
    if (len < 17)
        FAIL(ps, OTA_ERR_TRUNCATED, "%zu bytes, less than its 17-byte head", len);
    struct ota_bundle_consistency c = {
        .size1 = get64(body), .size2 = get64(body + 8), .count = body[16], .hashes = body + 17};
    if (c.size1 == 0 || c.size1 >= c.size2 || c.size2 > VERSION_MAX)
        FAIL(ps, OTA_ERR_FORMAT, "sizes %llu to %llu: need 1 <= size1 < size2 < 2^63",
             (unsigned long long)c.size1, (unsigned long long)c.size2);
    if (c.count != ota_merkle_consistency_len(c.size1, c.size2))
        FAIL(ps, OTA_ERR_PROOF_MALFORMED, "%zu hashes; a proof from %llu to %llu has %zu", c.count,
             (unsigned long long)c.size1, (unsigned long long)c.size2,
             ota_merkle_consistency_len(c.size1, c.size2));
    int rc = check_hashes(ps, 17, c.count, len);
    if (rc != 0)
        return rc;
    if (b->nconsistency > 0) {
        const struct ota_bundle_consistency *p = &b->consistency[b->nconsistency - 1];
        if (c.size1 < p->size1 || (c.size1 == p->size1 && c.size2 <= p->size2))
            FAIL(ps, OTA_ERR_FORMAT, "sizes %llu to %llu after %llu to %llu (ascending, once each)",
                 (unsigned long long)c.size1, (unsigned long long)c.size2,
                 (unsigned long long)p->size1, (unsigned long long)p->size2);
    }
    if (b->nconsistency == OTA_BUNDLE_MAX_CONSISTENCY)
        FAIL(ps, OTA_ERR_TOO_LARGE, "more than %d consistency proofs", OTA_BUNDLE_MAX_CONSISTENCY);
    b->consistency[b->nconsistency++] = c;
    return 0;
}

static unsigned wire_role(enum ota_tuf_role role)
{
    return role == OTA_TUF_ROOT ? OTA_BUNDLE_WIRE_ROOT : OTA_BUNDLE_WIRE_SNAPSHOT;
}

static int parse_inclusion(struct pstate *ps, const uint8_t *body, size_t len)
{
    struct ota_bundle *b = ps->b;
    if (len < 26)
        FAIL(ps, OTA_ERR_TRUNCATED, "%zu bytes, less than its 26-byte head", len);
    struct ota_bundle_inclusion in = {.version = get64(body + 1),
                                      .index = get64(body + 9),
                                      .size = get64(body + 17),
                                      .count = body[25],
                                      .hashes = body + 26};
    if (body[0] == OTA_BUNDLE_WIRE_ROOT)
        in.role = OTA_TUF_ROOT;
    else if (body[0] == OTA_BUNDLE_WIRE_SNAPSHOT)
        in.role = OTA_TUF_SNAPSHOT;
    else
        FAIL(ps, OTA_ERR_FORMAT, "role %u is neither 1 (root) nor 2 (snapshot)", body[0]);
    if (in.version == 0 || in.version > VERSION_MAX)
        FAIL(ps, OTA_ERR_FORMAT, "version %llu is not 1 to 2^63 - 1",
             (unsigned long long)in.version);
    if (in.index >= in.size || in.size > VERSION_MAX)
        FAIL(ps, OTA_ERR_FORMAT, "leaf %llu of size %llu: need index < size < 2^63",
             (unsigned long long)in.index, (unsigned long long)in.size);
    if (in.count != ota_merkle_inclusion_len(in.index, in.size))
        FAIL(ps, OTA_ERR_PROOF_MALFORMED, "%zu hashes; a proof of leaf %llu in size %llu has %zu",
             in.count, (unsigned long long)in.index, (unsigned long long)in.size,
             ota_merkle_inclusion_len(in.index, in.size));
    int rc = check_hashes(ps, 26, in.count, len);
    if (rc != 0)
        return rc;
    if (b->ninclusion > 0) {
        const struct ota_bundle_inclusion *p = &b->inclusion[b->ninclusion - 1];
        unsigned r = wire_role(in.role), pr = wire_role(p->role);
        bool above = r > pr || (r == pr && (in.version > p->version ||
                                            (in.version == p->version && in.size > p->size)));
        if (!above)
            FAIL(ps, OTA_ERR_FORMAT,
                 "%s v%llu in size %llu after %s v%llu in size %llu (ascending, once each)",
                 ota_tuf_role_name(in.role), (unsigned long long)in.version,
                 (unsigned long long)in.size, ota_tuf_role_name(p->role),
                 (unsigned long long)p->version, (unsigned long long)p->size);
    }
    if (b->ninclusion == OTA_BUNDLE_MAX_INCLUSION)
        FAIL(ps, OTA_ERR_TOO_LARGE, "more than %d inclusion proofs", OTA_BUNDLE_MAX_INCLUSION);
    b->inclusion[b->ninclusion++] = in;
    return 0;
}

/* root and root_checkpoint: versions base_root + 1 .. newest_root,
 * ascending. */
static int parse_root_file(struct pstate *ps, struct ota_bundle_file *arr, size_t *n,
                           const uint8_t *body, size_t len)
{
    struct ota_bundle_file f;
    int rc = parse_file(&f, ps, body, len, true);
    if (rc != 0)
        return rc;
    const struct ota_bundle *b = ps->b;
    if (f.version <= b->base_root || f.version > b->newest_root)
        FAIL(ps, OTA_ERR_FORMAT, "root version %llu is outside %llu to %llu",
             (unsigned long long)f.version, (unsigned long long)b->base_root + 1,
             (unsigned long long)b->newest_root);
    if (*n > 0 && f.version <= arr[*n - 1].version)
        FAIL(ps, OTA_ERR_FORMAT, "version %llu after %llu (ascending, once each)",
             (unsigned long long)f.version, (unsigned long long)arr[*n - 1].version);
    arr[(*n)++] = f; /* the range bounds *n by OTA_BUNDLE_MAX_ROOTS */
    return 0;
}

static int parse_single(struct pstate *ps, struct ota_bundle_file *out, const uint8_t *body,
                        size_t len, bool versioned)
{
    if (out->len != 0)
        FAIL(ps, OTA_ERR_FORMAT, "a second %s record", type_name(ps->type));
    return parse_file(out, ps, body, len, versioned);
}

static int parse_record(struct pstate *ps, const uint8_t *body, size_t len)
{
    struct ota_bundle *b = ps->b;
    switch (ps->type) {
    case OTA_BUNDLE_ROOT:
        return parse_root_file(ps, b->roots, &b->nroots, body, len);
    case OTA_BUNDLE_ROOT_CHECKPOINT:
        return parse_root_file(ps, b->root_checkpoints, &b->nroot_checkpoints, body, len);
    case OTA_BUNDLE_TIMESTAMP:
        return parse_single(ps, &b->timestamp, body, len, false);
    case OTA_BUNDLE_SNAPSHOT:
        return parse_single(ps, &b->snapshot, body, len, true);
    case OTA_BUNDLE_TARGETS:
        return parse_single(ps, &b->targets, body, len, true);
    case OTA_BUNDLE_CHECKPOINT:
        return parse_single(ps, &b->checkpoint, body, len, false);
    case OTA_BUNDLE_CONSISTENCY:
        return parse_consistency(ps, body, len);
    default:
        return parse_inclusion(ps, body, len);
    }
}

static int parse(struct ota_bundle *b, const uint8_t *in, size_t len, struct ota_detail *det)
{
    if (len > OTA_BUNDLE_MAX_LEN) {
        ota_detail_set(det, "bundle: %zu bytes, more than the cap of %u", len, OTA_BUNDLE_MAX_LEN);
        return OTA_ERR_TOO_LARGE;
    }
    if (len < 8) {
        ota_detail_set(det, "bundle: %zu bytes, shorter than its magic", len);
        return OTA_ERR_TRUNCATED;
    }
    if (memcmp(in, OTA_BUNDLE_MAGIC, 8) != 0) {
        ota_detail_set(det, "bundle: not a proof bundle (magic is not %s)", OTA_BUNDLE_MAGIC);
        return OTA_ERR_BAD_MAGIC;
    }
    if (len < OTA_BUNDLE_HEADER_LEN) {
        ota_detail_set(det, "bundle: %zu bytes, shorter than its %d-byte header", len,
                       OTA_BUNDLE_HEADER_LEN);
        return OTA_ERR_TRUNCATED;
    }
    if (get16(in + 8) != OTA_BUNDLE_VERSION) {
        ota_detail_set(det, "bundle: format version %u (this otachain reads %d)", get16(in + 8),
                       OTA_BUNDLE_VERSION);
        return OTA_ERR_FORMAT_VERSION;
    }
    if (get16(in + 10) != 0 || get32(in + 12) != 0) {
        ota_detail_set(det, "bundle: flags 0x%04x and reserved 0x%08x must be 0", get16(in + 10),
                       get32(in + 12));
        return OTA_ERR_FORMAT;
    }
    b->base_root = get64(in + 16);
    b->newest_root = get64(in + 24);
    b->base_size = get64(in + 32);
    if (b->base_root == 0 || b->newest_root > VERSION_MAX || b->newest_root < b->base_root ||
        b->newest_root - b->base_root > OTA_BUNDLE_MAX_ROOTS) {
        ota_detail_set(det,
                       "bundle: roots %llu to %llu: need 1 <= base_root <= newest_root < 2^63, at "
                       "most %d apart",
                       (unsigned long long)b->base_root, (unsigned long long)b->newest_root,
                       OTA_BUNDLE_MAX_ROOTS);
        return OTA_ERR_FORMAT;
    }
    if (b->base_size > VERSION_MAX) {
        ota_detail_set(det, "bundle: base_size %llu is not below 2^63",
                       (unsigned long long)b->base_size);
        return OTA_ERR_FORMAT;
    }
    struct pstate ps = {.b = b, .det = det};
    size_t pos = OTA_BUNDLE_HEADER_LEN;
    unsigned last = 0;
    for (; pos < len; ps.rec++) {
        ps.type = 0;
        if (len - pos < OTA_BUNDLE_RECORD_HDR_LEN)
            FAIL(&ps, OTA_ERR_TRUNCATED, "%zu bytes left, a record header has %d", len - pos,
                 OTA_BUNDLE_RECORD_HDR_LEN);
        unsigned type = in[pos];
        uint32_t blen = get32(in + pos + 1);
        if (type < OTA_BUNDLE_ROOT || type > OTA_BUNDLE_INCLUSION)
            FAIL(&ps, OTA_ERR_FORMAT, "unknown record type %u", type);
        ps.type = type;
        if (type < last)
            FAIL(&ps, OTA_ERR_FORMAT, "after a %s record (records go in ascending type)",
                 type_name(last));
        if (blen > body_cap(type))
            FAIL(&ps, OTA_ERR_TOO_LARGE, "%lu bytes, more than the cap of %llu",
                 (unsigned long)blen, (unsigned long long)body_cap(type));
        pos += OTA_BUNDLE_RECORD_HDR_LEN;
        if (blen > len - pos)
            FAIL(&ps, OTA_ERR_TRUNCATED, "%lu bytes announced, %zu left", (unsigned long)blen,
                 len - pos);
        int rc = parse_record(&ps, in + pos, blen);
        if (rc != 0)
            return rc;
        pos += blen;
        last = type;
    }
    return 0;
}

int ota_bundle_parse(struct ota_bundle *out, const uint8_t *in, size_t len, struct ota_detail *det)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (in == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    int rc = parse(out, in ? in : (const uint8_t *)"", len, det);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- encoding ------------------------------------------------------------ */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends a record: type, length, head (hlen bytes), tail (tlen bytes). */
static int put_record(struct ota_buf *out, unsigned type, const uint8_t *head, size_t hlen,
                      const uint8_t *tail, size_t tlen)
{
    if (tlen > UINT32_MAX - hlen)
        return OTA_ERR_TOO_LARGE;
    uint8_t rh[OTA_BUNDLE_RECORD_HDR_LEN] = {(uint8_t)type};
    put32(rh + 1, (uint32_t)(hlen + tlen));
    int rc = ota_buf_append(out, rh, sizeof(rh));
    if (rc == 0 && hlen > 0)
        rc = ota_buf_append(out, head, hlen);
    if (rc == 0 && tlen > 0)
        rc = ota_buf_append(out, tail, tlen);
    return rc;
}

static int put_file(struct ota_buf *out, unsigned type, const struct ota_bundle_file *f,
                    bool versioned)
{
    uint8_t v[8];
    put64(v, f->version);
    return put_record(out, type, v, versioned ? 8 : 0, f->data, f->len);
}

static int encode(struct ota_buf *out, const struct ota_bundle *b)
{
    uint8_t h[OTA_BUNDLE_HEADER_LEN] = {0};
    memcpy(h, OTA_BUNDLE_MAGIC, 8);
    h[9] = OTA_BUNDLE_VERSION;
    put64(h + 16, b->base_root);
    put64(h + 24, b->newest_root);
    put64(h + 32, b->base_size);
    int rc = ota_buf_append(out, h, sizeof(h));
    for (size_t i = 0; rc == 0 && i < b->nroots && i < OTA_BUNDLE_MAX_ROOTS; i++)
        rc = put_file(out, OTA_BUNDLE_ROOT, &b->roots[i], true);
    for (size_t i = 0; rc == 0 && i < b->nroot_checkpoints && i < OTA_BUNDLE_MAX_ROOTS; i++)
        rc = put_file(out, OTA_BUNDLE_ROOT_CHECKPOINT, &b->root_checkpoints[i], true);
    if (rc == 0 && b->timestamp.len > 0)
        rc = put_file(out, OTA_BUNDLE_TIMESTAMP, &b->timestamp, false);
    if (rc == 0 && b->snapshot.len > 0)
        rc = put_file(out, OTA_BUNDLE_SNAPSHOT, &b->snapshot, true);
    if (rc == 0 && b->targets.len > 0)
        rc = put_file(out, OTA_BUNDLE_TARGETS, &b->targets, true);
    if (rc == 0 && b->checkpoint.len > 0)
        rc = put_file(out, OTA_BUNDLE_CHECKPOINT, &b->checkpoint, false);
    for (size_t i = 0; rc == 0 && i < b->nconsistency && i < OTA_BUNDLE_MAX_CONSISTENCY; i++) {
        const struct ota_bundle_consistency *c = &b->consistency[i];
        if (c->count > OTA_MERKLE_MAX_PROOF)
            return OTA_ERR_TOO_LARGE;
        uint8_t head[17];
        put64(head, c->size1);
        put64(head + 8, c->size2);
        head[16] = (uint8_t)c->count;
        rc = put_record(out, OTA_BUNDLE_CONSISTENCY, head, sizeof(head), c->hashes,
                        c->count * OTA_MERKLE_HASH_LEN);
    }
    for (size_t i = 0; rc == 0 && i < b->ninclusion && i < OTA_BUNDLE_MAX_INCLUSION; i++) {
        const struct ota_bundle_inclusion *in = &b->inclusion[i];
        if (in->count > OTA_MERKLE_MAX_PROOF)
            return OTA_ERR_TOO_LARGE;
        uint8_t head[26];
        head[0] = (uint8_t)wire_role(in->role);
        if (in->role != OTA_TUF_ROOT && in->role != OTA_TUF_SNAPSHOT)
            head[0] = 0; /* refused by the parse below */
        put64(head + 1, in->version);
        put64(head + 9, in->index);
        put64(head + 17, in->size);
        head[25] = (uint8_t)in->count;
        rc = put_record(out, OTA_BUNDLE_INCLUSION, head, sizeof(head), in->hashes,
                        in->count * OTA_MERKLE_HASH_LEN);
    }
    return rc;
}

int ota_bundle_encode(struct ota_buf *out, const struct ota_bundle *b, struct ota_detail *det)
{
    if (out == NULL || b == NULL)
        return OTA_ERR_INVALID_ARG;
    if (b->nroots > OTA_BUNDLE_MAX_ROOTS || b->nroot_checkpoints > OTA_BUNDLE_MAX_ROOTS ||
        b->nconsistency > OTA_BUNDLE_MAX_CONSISTENCY || b->ninclusion > OTA_BUNDLE_MAX_INCLUSION) {
        ota_detail_set(det, "bundle: more records of a type than its cap");
        return OTA_ERR_TOO_LARGE;
    }
    size_t start = out->len;
    int rc = encode(out, b);
    if (rc == OTA_ERR_TOO_LARGE)
        ota_detail_set(det, "bundle: larger than the output's cap of %zu bytes", out->max);
    struct ota_bundle *check = NULL;
    if (rc == 0) {
        check = malloc(sizeof(*check));
        if (check == NULL)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0)
        rc = ota_bundle_parse(check, out->data + start, out->len - start, det);
    free(check);
    if (rc != 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = 0; /* the buffer's NUL after its contents */
    }
    return rc;
}

/* ---- look-ups and the fetcher ---------------------------------------------- */

const struct ota_bundle_file *ota_bundle_find_root(const struct ota_bundle *b, uint64_t version)
{
    for (size_t i = 0; b && i < b->nroots; i++)
        if (b->roots[i].version == version)
            return &b->roots[i];
    return NULL;
}

const struct ota_bundle_file *ota_bundle_find_root_checkpoint(const struct ota_bundle *b,
                                                              uint64_t version)
{
    for (size_t i = 0; b && i < b->nroot_checkpoints; i++)
        if (b->root_checkpoints[i].version == version)
            return &b->root_checkpoints[i];
    return NULL;
}

const struct ota_bundle_consistency *ota_bundle_find_consistency(const struct ota_bundle *b,
                                                                 uint64_t size1, uint64_t size2)
{
    for (size_t i = 0; b && i < b->nconsistency; i++)
        if (b->consistency[i].size1 == size1 && b->consistency[i].size2 == size2)
            return &b->consistency[i];
    return NULL;
}

const struct ota_bundle_inclusion *ota_bundle_find_inclusion(const struct ota_bundle *b,
                                                             enum ota_tuf_role role,
                                                             uint64_t version, uint64_t size)
{
    for (size_t i = 0; b && i < b->ninclusion; i++) {
        const struct ota_bundle_inclusion *in = &b->inclusion[i];
        if (in->role == role && in->version == version && in->size == size)
            return in;
    }
    return NULL;
}

/* "<decimal><suffix>" with the number in 1..2^63-1: its value, else 0. */
static uint64_t name_version(const char *name, const char *prefix, const char *suffix)
{
    size_t n = strlen(name), p = strlen(prefix), s = strlen(suffix);
    if (n <= p + s || memcmp(name, prefix, p) != 0 || memcmp(name + n - s, suffix, s) != 0)
        return 0;
    uint64_t v = 0;
    if (ota_checkpoint_parse_u64(&v, name + p, n - p - s, VERSION_MAX) != 0)
        return 0;
    return v;
}

static const struct ota_bundle_file *lookup(const struct ota_bundle *b, enum ota_fetch_kind kind,
                                            const char *name)
{
    uint64_t v;
    if (kind == OTA_FETCH_METADATA) {
        if (strcmp(name, "timestamp.json") == 0)
            return b->timestamp.len ? &b->timestamp : NULL;
        if ((v = name_version(name, "", ".root.json")) != 0)
            return ota_bundle_find_root(b, v);
        if ((v = name_version(name, "", ".snapshot.json")) != 0)
            return b->snapshot.len && b->snapshot.version == v ? &b->snapshot : NULL;
        if ((v = name_version(name, "", ".targets.json")) != 0)
            return b->targets.len && b->targets.version == v ? &b->targets : NULL;
    } else if (kind == OTA_FETCH_LEDGER) {
        if (strcmp(name, "checkpoint") == 0)
            return b->checkpoint.len ? &b->checkpoint : NULL;
        if ((v = name_version(name, "root-checkpoint/", "")) != 0)
            return ota_bundle_find_root_checkpoint(b, v);
    }
    return NULL;
}

static int bundle_fetch(void *ctx, enum ota_fetch_kind kind, const char *name, uint64_t max,
                        ota_sink_fn sink, void *sink_ctx, struct ota_detail *det)
{
    const struct ota_bundle *b = ctx;
    const struct ota_bundle_file *f = name ? lookup(b, kind, name) : NULL;
    if (f == NULL) {
        ota_detail_set(det, "%s: not in the bundle", name ? name : "(null)");
        return OTA_ERR_NOT_FOUND;
    }
    if ((uint64_t)f->len > max) {
        ota_detail_set(det, "%s: %zu bytes in the bundle, more than %llu", name, f->len,
                       (unsigned long long)max);
        return OTA_ERR_TOO_LARGE;
    }
    return sink(sink_ctx, f->data, f->len);
}

void ota_bundle_fetcher(struct ota_fetcher *out, const struct ota_bundle *b)
{
    out->fetch = bundle_fetch;
    out->destroy = NULL;
    out->ctx = (void *)b;
}
