/* Test helpers shared by test_merkle.c and test_tiles.c: an independent,
 * naive RFC 9162 tree (recursive MTH, PATH and SUBPROOF straight from the
 * RFC's definitions, hashing with OpenSSL directly, not through
 * libotachain), an in-memory store of every node by level that serves as a
 * struct ota_merkle_source and counts look-ups, and a strict base64
 * decoder for the vectors. Header-only (static functions) so that each
 * test stays one executable. */
#ifndef OTACHAIN_TEST_NAIVE_TREE_H
#define OTACHAIN_TEST_NAIVE_TREE_H

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/merkle.h"

#define NH 32

static inline void nt_sha256(uint8_t out[NH], const void *p, size_t n)
{
    unsigned int len = 0;

    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != NH)
        abort();
}

static inline void nt_leaf(uint8_t out[NH], const void *entry, size_t n)
{
    uint8_t *buf = malloc(n + 1);

    if (buf == NULL)
        abort();
    buf[0] = 0;
    if (n > 0)
        memcpy(buf + 1, entry, n);
    nt_sha256(out, buf, n + 1);
    free(buf);
}

static inline void nt_node(uint8_t out[NH], const uint8_t l[NH], const uint8_t r[NH])
{
    uint8_t buf[1 + 2 * NH];

    buf[0] = 1;
    memcpy(buf + 1, l, NH);
    memcpy(buf + 1 + NH, r, NH);
    nt_sha256(out, buf, sizeof(buf));
}

/* Largest power of two strictly below n (n >= 2). */
static inline uint64_t nt_split(uint64_t n)
{
    uint64_t k = 1;

    while (k * 2 < n)
        k *= 2;
    return k;
}

/* MTH(D[lo:hi)) by the RFC's recursive definition. */
static inline void nt_mth(uint8_t out[NH], const uint8_t (*leaves)[NH], uint64_t lo, uint64_t hi)
{
    uint8_t l[NH];
    uint8_t r[NH];
    uint64_t k;

    if (hi - lo == 0) {
        nt_sha256(out, "", 0);
        return;
    }
    if (hi - lo == 1) {
        memcpy(out, leaves[lo], NH);
        return;
    }
    k = nt_split(hi - lo);
    nt_mth(l, leaves, lo, lo + k);
    nt_mth(r, leaves, lo + k, hi);
    nt_node(out, l, r);
}

/* PATH(m, D[lo:hi)) appended to proof (leaf side first). */
static inline void nt_path(struct ota_merkle_proof *p, const uint8_t (*leaves)[NH], uint64_t m,
                           uint64_t lo, uint64_t hi)
{
    uint64_t k;

    if (hi - lo <= 1)
        return;
    k = nt_split(hi - lo);
    if (m < lo + k) {
        nt_path(p, leaves, m, lo, lo + k);
        nt_mth(p->hash[p->count++], leaves, lo + k, hi);
    } else {
        nt_path(p, leaves, m, lo + k, hi);
        nt_mth(p->hash[p->count++], leaves, lo, lo + k);
    }
}

/* SUBPROOF(m, D[lo:hi), b) appended to proof; m is an absolute size. */
static inline void nt_subproof(struct ota_merkle_proof *p, const uint8_t (*leaves)[NH], uint64_t m,
                               uint64_t lo, uint64_t hi, int b)
{
    uint64_t k;

    if (m == hi) {
        if (!b)
            nt_mth(p->hash[p->count++], leaves, lo, hi);
        return;
    }
    k = nt_split(hi - lo);
    if (m - lo <= k) {
        nt_subproof(p, leaves, m, lo, lo + k, b);
        nt_mth(p->hash[p->count++], leaves, lo + k, hi);
    } else {
        nt_subproof(p, leaves, m, lo + k, hi, 0);
        nt_mth(p->hash[p->count++], leaves, lo, lo + k);
    }
}

/* Every perfect node of a tree of n leaves, by level. */
struct nt_store {
    uint64_t n;
    unsigned levels;
    uint64_t count[64];
    uint8_t (*lv[64])[NH];
    uint64_t lookups;
    uint64_t bad; /* look-ups of nodes that do not exist */
};

static inline void nt_store_build(struct nt_store *s, const uint8_t (*leaves)[NH], uint64_t n)
{
    unsigned l;
    uint64_t i;

    memset(s, 0, sizeof(*s));
    s->n = n;
    s->count[0] = n;
    s->lv[0] = malloc((n ? n : 1) * NH);
    if (s->lv[0] == NULL)
        abort();
    if (n > 0)
        memcpy(s->lv[0], leaves, n * NH);
    for (l = 1; l < 64 && s->count[l - 1] >= 2; l++) {
        s->count[l] = s->count[l - 1] / 2;
        s->lv[l] = malloc(s->count[l] * NH);
        if (s->lv[l] == NULL)
            abort();
        for (i = 0; i < s->count[l]; i++)
            nt_node(s->lv[l][i], s->lv[l - 1][2 * i], s->lv[l - 1][2 * i + 1]);
    }
    s->levels = l;
}

static inline void nt_store_free(struct nt_store *s)
{
    unsigned l;

    for (l = 0; l < 64; l++)
        free(s->lv[l]);
    memset(s, 0, sizeof(*s));
}

/* Serves the tree of size `limit` (<= s->n) from the store. */
struct nt_view {
    struct nt_store *s;
    uint64_t limit;
};

static inline int nt_view_node(void *ctx, unsigned level, uint64_t index, uint8_t out[NH])
{
    struct nt_view *v = ctx;

    v->s->lookups++;
    if (level >= 64 || level >= v->s->levels || index >= (v->limit >> level) ||
        index >= v->s->count[level]) {
        v->s->bad++;
        return OTA_ERR_NOT_FOUND;
    }
    memcpy(out, v->s->lv[level][index], NH);
    return 0;
}

/* Strict standard base64 (padding required). Returns the decoded length,
 * or -1 if the text is not canonical base64 or decodes to more than max. */
static inline long nt_b64(uint8_t *out, size_t max, const char *s)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    size_t i;
    size_t o = 0;

    if (n % 4 != 0)
        return -1;
    for (i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        int j;

        for (j = 0; j < 4; j++) {
            const char *p;

            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (pad > 0 || s[i + j] == '\0' || (p = strchr(al, s[i + j])) == NULL)
                return -1;
            v = (v << 6) | (uint32_t)(p - al);
        }
        if (o + 3 - (size_t)pad > max)
            return -1;
        out[o++] = (uint8_t)(v >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(v >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)v;
        if ((pad == 2 && (v & 0xffff) != 0) || (pad == 1 && (v & 0xff) != 0))
            return -1;
    }
    return (long)o;
}

/* Deterministic leaves: leaf i is the leaf hash of the 8-byte entry i. */
static inline uint8_t (*nt_make_leaves(uint64_t n))[NH]
{
    uint8_t(*leaves)[NH] = malloc((n ? n : 1) * NH);
    uint64_t i;

    if (leaves == NULL)
        abort();
    for (i = 0; i < n; i++) {
        uint8_t e[8];
        int b;

        for (b = 0; b < 8; b++)
            e[b] = (uint8_t)(i >> (56 - 8 * b));
        nt_leaf(leaves[i], e, sizeof(e));
    }
    return leaves;
}

/* xorshift64*: reproducible randomness for the cross-checks. */
static inline uint64_t nt_rand(uint64_t *st)
{
    uint64_t x = *st;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * UINT64_C(2685821657736338717);
}

#endif
