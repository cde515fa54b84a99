/* libFuzzer harness for proof bundles (ota_bundle_parse, ota_bundle_encode,
 * the fetcher over a parsed bundle).
 *
 * Input: a bundle. Whatever parses must encode back to the input byte for
 * byte (one encoding per bundle) and answer the fetcher's names it holds
 * with its own bytes; whatever fails must leave the output zeroed.
 * Crashes, leaks, sanitizer reports or a broken invariant (abort) are
 * failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/bundle.h"
#include "otachain/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    const uint8_t *want;
    size_t len;
    size_t got;
};

static int check_sink(void *ctx, const void *data, size_t len)
{
    struct sink *s = ctx;
    if (len > s->len - s->got || memcmp(data, s->want + s->got, len) != 0)
        abort();
    s->got += len;
    return 0;
}

static void served(const struct ota_fetcher *f, enum ota_fetch_kind kind, const char *name,
                   const struct ota_bundle_file *file)
{
    struct sink s = {.want = file->data, .len = file->len};
    struct ota_detail det;
    if (f->fetch(f->ctx, kind, name, UINT64_MAX, check_sink, &s, &det) != 0 || s.got != s.len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_bundle zero;
    static struct ota_bundle b;
    struct ota_detail det;
    struct ota_buf out;

    int rc = ota_bundle_parse(&b, data, size, &det);
    if (rc != 0) {
        if (memcmp(&b, &zero, sizeof(b)) != 0)
            abort();
        return 0;
    }
    ota_buf_init(&out, OTA_BUNDLE_MAX_LEN);
    if (ota_bundle_encode(&out, &b, &det) != 0 || out.len != size ||
        memcmp(out.data, data, size) != 0)
        abort();
    ota_buf_free(&out);

    struct ota_fetcher f;
    char name[64];
    ota_bundle_fetcher(&f, &b);
    for (size_t i = 0; i < b.nroots; i++) {
        snprintf(name, sizeof(name), "%llu.root.json", (unsigned long long)b.roots[i].version);
        served(&f, OTA_FETCH_METADATA, name, &b.roots[i]);
    }
    for (size_t i = 0; i < b.nroot_checkpoints; i++) {
        snprintf(name, sizeof(name), "root-checkpoint/%llu",
                 (unsigned long long)b.root_checkpoints[i].version);
        served(&f, OTA_FETCH_LEDGER, name, &b.root_checkpoints[i]);
    }
    if (b.timestamp.len)
        served(&f, OTA_FETCH_METADATA, "timestamp.json", &b.timestamp);
    if (b.checkpoint.len)
        served(&f, OTA_FETCH_LEDGER, "checkpoint", &b.checkpoint);
    if (b.snapshot.len) {
        snprintf(name, sizeof(name), "%llu.snapshot.json", (unsigned long long)b.snapshot.version);
        served(&f, OTA_FETCH_METADATA, name, &b.snapshot);
    }
    for (size_t i = 0; i < b.ninclusion; i++) {
        const struct ota_bundle_inclusion *in = &b.inclusion[i];
        if (ota_bundle_find_inclusion(&b, in->role, in->version, in->size) != in)
            abort();
    }
    for (size_t i = 0; i < b.nconsistency; i++) {
        const struct ota_bundle_consistency *c = &b.consistency[i];
        if (ota_bundle_find_consistency(&b, c->size1, c->size2) != c)
            abort();
    }
    return 0;
}
