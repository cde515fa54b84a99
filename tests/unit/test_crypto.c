/* Unit tests for crypto.c and sign.c: the shared TUF/Ed25519 vector
 * (../shared/vectors/README.md, located through $OTA_VECTORS), RFC 8032,
 * SHA-256 known answers, hex, keyids and key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/crypto.h"
#include "otachain/fsutil.h"
#include "otachain/sign.h"

/* Known answers from the vectors README (checked against it below). */
#define V_SEED  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define V_PUB   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define V_KEYID "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
#define V_SIGNED                                                                                   \
    "{\"_type\":\"timestamp\",\"expires\":\"2030-01-01T00:00:00Z\",\"meta\":{\"snapshot.json\":"   \
    "{\"version\":1}},\"spec_version\":\"1.0.31\",\"version\":1}"
#define V_SIG                                                                                      \
    "c92efdd8c6c1c1bce36033eee122aae3de414794c80823054daf8e34a825f8c2598b19f7810a46a80a123c5b427a" \
    "f900557676cdbbb5861ff488fc9bf72bc103"

/* RFC 8032 section 7.1, tests 1 (empty message) and 2 (one byte 0x72). */
#define RFC1_SIG                                                                                   \
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9" \
    "b46bd25bf5f0595bbe24655141438e7a100b"
#define RFC2_PUB "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
#define RFC2_SIG                                                                                   \
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f1" \
    "1d8c387b2eaeb4302aeeb00d291612bb0c00"

/* ---- helpers ---- */

struct tdir {
    char path[PATH_MAX];
};

static int setup_dir(void **state)
{
    struct tdir *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");

    if (t == NULL)
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/ota-crypto-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(t->path) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    struct tdir *t = *state;
    DIR *d = opendir(t->path);
    struct dirent *e;
    char p[PATH_MAX];

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (snprintf(p, sizeof(p), "%s/%s", t->path, e->d_name) < (int)sizeof(p))
                unlink(p);
        }
        closedir(d);
    }
    rmdir(t->path);
    free(t);
    return 0;
}

static void join(char out[PATH_MAX], const struct tdir *t, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", t->path, name);

    assert_true(n > 0 && n < PATH_MAX);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void unhex(uint8_t *out, size_t n, const char *hex)
{
    assert_int_equal(ota_hex_decode(out, n, hex), 0);
}

static void hexstr(char *out, const uint8_t *in, size_t n)
{
    ota_hex_encode(out, in, n);
}

/* ---- the shared vector ---- */

/* Value after "label" up to the end of the line in the README. */
static void readme_value(char *out, size_t outsz, const char *readme, const char *label)
{
    const char *p = strstr(readme, label);
    size_t n;

    assert_non_null(p);
    p += strlen(label);
    while (*p == ' ')
        p++;
    n = strcspn(p, "\r\n");
    assert_true(n < outsz);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_vector_constants_match_readme(void **state)
{
    const char *dir = getenv("OTA_VECTORS");
    char path[PATH_MAX];
    uint8_t *readme = NULL;
    size_t len = 0;
    char v[512];

    (void)state;
    if (dir == NULL || dir[0] == '\0') {
        print_message("OTA_VECTORS not set: README cross-check skipped\n");
        skip();
    }
    snprintf(path, sizeof(path), "%s/README.md", dir);
    assert_int_equal(ota_fs_read(&readme, &len, path, 1 << 20), 0);
    readme_value(v, sizeof(v), (char *)readme, "Seed of RFC 8032 test 1:");
    assert_string_equal(v, V_SEED);
    readme_value(v, sizeof(v), (char *)readme, "- public key:");
    assert_string_equal(v, V_PUB);
    readme_value(v, sizeof(v), (char *)readme, "- keyid = sha256(canonical key object):");
    assert_string_equal(v, V_KEYID);
    readme_value(v, sizeof(v), (char *)readme, "- signed (canonical):");
    assert_string_equal(v, V_SIGNED);
    readme_value(v, sizeof(v), (char *)readme, "- signature:");
    assert_string_equal(v, V_SIG);
    free(readme);
}

static void test_vector_seed_pub_keyid_sig(void **state)
{
    uint8_t seed[32], pub[32], want_pub[32], sig[64], want_sig[64];
    char keyid[OTA_KEYID_SIZE];
    struct ota_signer *s = NULL;

    (void)state;
    unhex(seed, sizeof(seed), V_SEED);
    unhex(want_pub, sizeof(want_pub), V_PUB);
    unhex(want_sig, sizeof(want_sig), V_SIG);

    assert_int_equal(ota_signer_from_seed(&s, seed), 0);
    ota_signer_public(pub, s);
    assert_memory_equal(pub, want_pub, 32);
    assert_string_equal(ota_signer_keyid(s), V_KEYID);

    assert_int_equal(ota_ed25519_keyid(keyid, want_pub), 0);
    assert_string_equal(keyid, V_KEYID);

    assert_int_equal(ota_signer_sign(sig, s, V_SIGNED, strlen(V_SIGNED)), 0);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(ota_ed25519_verify(want_pub, V_SIGNED, strlen(V_SIGNED), want_sig), 0);
    ota_signer_free(s);
    ota_wipe(seed, sizeof(seed));
}

static void test_keyid_matches_sha256_of_key_object(void **state)
{
    static const char obj[] =
        "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"" V_PUB "\"},\"scheme\":\"ed25519\"}";
    uint8_t pub[32], d[32];
    char hex[65];
    char keyid[OTA_KEYID_SIZE];

    (void)state;
    unhex(pub, sizeof(pub), V_PUB);
    assert_int_equal(ota_sha256(d, obj, strlen(obj)), 0);
    hexstr(hex, d, sizeof(d));
    assert_string_equal(hex, V_KEYID);
    assert_int_equal(ota_ed25519_keyid(keyid, pub), 0);
    assert_string_equal(keyid, hex);
}

static void test_rfc8032(void **state)
{
    uint8_t pub[32], sig[64];
    const uint8_t msg2 = 0x72;

    (void)state;
    unhex(pub, sizeof(pub), V_PUB);
    unhex(sig, sizeof(sig), RFC1_SIG);
    assert_int_equal(ota_ed25519_verify(pub, NULL, 0, sig), 0);
    assert_int_equal(ota_ed25519_verify(pub, "", 0, sig), 0);
    /* The empty-message signature does not verify a one-byte message. */
    assert_int_equal(ota_ed25519_verify(pub, &msg2, 1, sig), OTA_ERR_BAD_SIGNATURE);

    unhex(pub, sizeof(pub), RFC2_PUB);
    unhex(sig, sizeof(sig), RFC2_SIG);
    assert_int_equal(ota_ed25519_verify(pub, &msg2, 1, sig), 0);
}

static void test_flipped_bits(void **state)
{
    uint8_t pub[32], sig[64], m[sizeof(V_SIGNED) - 1];
    size_t bit;

    (void)state;
    unhex(pub, sizeof(pub), V_PUB);
    unhex(sig, sizeof(sig), V_SIG);
    memcpy(m, V_SIGNED, sizeof(m));
    assert_int_equal(ota_ed25519_verify(pub, m, sizeof(m), sig), 0);

    for (bit = 0; bit < 8 * sizeof(sig); bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(ota_ed25519_verify(pub, m, sizeof(m), sig), OTA_ERR_BAD_SIGNATURE);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (bit = 0; bit < 8 * sizeof(m); bit += 7) {
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(ota_ed25519_verify(pub, m, sizeof(m), sig), OTA_ERR_BAD_SIGNATURE);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (bit = 0; bit < 8 * sizeof(pub); bit++) {
        pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(ota_ed25519_verify(pub, m, sizeof(m), sig), OTA_ERR_BAD_SIGNATURE);
        pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Truncated message, and a message with a byte more. */
    assert_int_equal(ota_ed25519_verify(pub, m, sizeof(m) - 1, sig), OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(ota_ed25519_verify(pub, V_SIGNED, sizeof(V_SIGNED), sig),
                     OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(ota_ed25519_verify(pub, m, sizeof(m), sig), 0);
}

/* ---- SHA-256 ---- */

static void test_sha256_known(void **state)
{
    uint8_t d[32];
    char hex[65];

    (void)state;
    assert_int_equal(ota_sha256(d, "abc", 3), 0);
    hexstr(hex, d, 32);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(ota_sha256(d, NULL, 0), 0);
    hexstr(hex, d, 32);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* FIPS 180-2 two-block message. */
    assert_int_equal(ota_sha256(d, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56),
                     0);
    hexstr(hex, d, 32);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_streaming(void **state)
{
    uint8_t data[300];
    uint8_t one[32], two[32];
    struct ota_sha256_ctx *ctx = NULL;
    size_t i;
    size_t a;

    (void)state;
    for (i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(ota_sha256(one, data, sizeof(data)), 0);
    /* Every two-way split, and a three-way split around it. */
    for (a = 0; a <= sizeof(data); a++) {
        size_t b = a + (sizeof(data) - a) / 2;

        assert_int_equal(ota_sha256_init(&ctx), 0);
        assert_int_equal(ota_sha256_update(ctx, data, a), 0);
        assert_int_equal(ota_sha256_update(ctx, data + a, sizeof(data) - a), 0);
        assert_int_equal(ota_sha256_final(two, ctx), 0);
        assert_memory_equal(one, two, 32);
        ota_sha256_ctx_free(ctx);

        assert_int_equal(ota_sha256_init(&ctx), 0);
        assert_int_equal(ota_sha256_update(ctx, data, a), 0);
        assert_int_equal(ota_sha256_update(ctx, NULL, 0), 0);
        assert_int_equal(ota_sha256_update(ctx, data + a, b - a), 0);
        assert_int_equal(ota_sha256_update(ctx, data + b, sizeof(data) - b), 0);
        assert_int_equal(ota_sha256_final(two, ctx), 0);
        assert_memory_equal(one, two, 32);
        /* final may be called once; no updates after it. */
        assert_int_equal(ota_sha256_final(two, ctx), OTA_ERR_INVALID_ARG);
        assert_int_equal(ota_sha256_update(ctx, data, 1), OTA_ERR_INVALID_ARG);
        ota_sha256_ctx_free(ctx);
    }
    /* Byte at a time. */
    assert_int_equal(ota_sha256_init(&ctx), 0);
    for (i = 0; i < sizeof(data); i++)
        assert_int_equal(ota_sha256_update(ctx, data + i, 1), 0);
    assert_int_equal(ota_sha256_final(two, ctx), 0);
    assert_memory_equal(one, two, 32);
    ota_sha256_ctx_free(ctx);
    ota_sha256_ctx_free(NULL);
}

/* ---- hex, ct_equal, wipe ---- */

static void test_hex(void **state)
{
    uint8_t out[4];
    char enc[9];
    const uint8_t want[4] = {0x00, 0xab, 0xCD, 0xff};

    (void)state;
    assert_int_equal(ota_hex_decode(out, 4, "00abCDff"), 0);
    assert_memory_equal(out, want, 4);
    ota_hex_encode(enc, out, 4);
    assert_string_equal(enc, "00abcdff");

    /* Each failure zeroes the output. */
    memset(out, 0x55, sizeof(out));
    assert_int_equal(ota_hex_decode(out, 4, "00abcdf"), OTA_ERR_FORMAT); /* odd */
    assert_memory_equal(out, "\0\0\0\0", 4);
    memset(out, 0x55, sizeof(out));
    assert_int_equal(ota_hex_decode(out, 4, "00abcdff0"), OTA_ERR_FORMAT); /* too long */
    assert_memory_equal(out, "\0\0\0\0", 4);
    memset(out, 0x55, sizeof(out));
    assert_int_equal(ota_hex_decode(out, 4, "00abcdfff0"), OTA_ERR_FORMAT);
    memset(out, 0x55, sizeof(out));
    assert_int_equal(ota_hex_decode(out, 4, "00abcd"), OTA_ERR_FORMAT); /* too short */
    assert_memory_equal(out, "\0\0\0\0", 4);
    memset(out, 0x55, sizeof(out));
    assert_int_equal(ota_hex_decode(out, 4, "00abcdfg"), OTA_ERR_FORMAT); /* bad digit */
    assert_memory_equal(out, "\0\0\0\0", 4);
    memset(out, 0x55, sizeof(out));
    assert_int_equal(ota_hex_decode(out, 4, "x0abcdff"), OTA_ERR_FORMAT);
    assert_memory_equal(out, "\0\0\0\0", 4);
    assert_int_equal(ota_hex_decode(out, 4, " 0abcdff"), OTA_ERR_FORMAT);
    assert_int_equal(ota_hex_decode(out, 4, "00ab:dff"), OTA_ERR_FORMAT);
    assert_int_equal(ota_hex_decode(out, 4, "00ab@dff"), OTA_ERR_FORMAT);
    assert_int_equal(ota_hex_decode(out, 4, "00ab`dff"), OTA_ERR_FORMAT);
    assert_int_equal(ota_hex_decode(out, 4, "00abGdff"), OTA_ERR_FORMAT);
    assert_int_equal(ota_hex_decode(out, 4,
                                    "00ab"
                                    "\xc3\xa9"
                                    "ff"),
                     OTA_ERR_FORMAT);
    assert_int_equal(ota_hex_decode(out, 0, ""), 0);
    assert_int_equal(ota_hex_decode(out, 0, "0"), OTA_ERR_FORMAT);
    /* Every single byte value decodes and re-encodes. */
    {
        unsigned v;
        char h[3];
        uint8_t b;

        for (v = 0; v < 256; v++) {
            snprintf(h, sizeof(h), "%02X", v);
            assert_int_equal(ota_hex_decode(&b, 1, h), 0);
            assert_int_equal(b, v);
        }
    }
}

static void test_ct_equal_and_wipe(void **state)
{
    uint8_t a[32], b[32];

    (void)state;
    memset(a, 7, sizeof(a));
    memset(b, 7, sizeof(b));
    assert_true(ota_ct_equal(a, b, 32));
    b[31] ^= 1;
    assert_false(ota_ct_equal(a, b, 32));
    assert_true(ota_ct_equal(a, b, 31));
    assert_true(ota_ct_equal(a, b, 0));
    ota_wipe(a, sizeof(a));
    assert_memory_equal(a, (uint8_t[32]){0}, 32);
    ota_wipe(NULL, 0);
}

/* ---- key files ---- */

static void test_pubkey_file_round_trip(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    uint8_t pub[32], got[32];
    struct stat st;
    uint8_t *pem = NULL;
    size_t len = 0;

    unhex(pub, sizeof(pub), V_PUB);
    join(p, t, "key.pub");
    assert_int_equal(ota_pubkey_save(p, pub), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(ota_fs_read(&pem, &len, p, 4096), 0);
    assert_non_null(strstr((char *)pem, "-----BEGIN PUBLIC KEY-----"));
    free(pem);
    assert_int_equal(ota_pubkey_load(got, p), 0);
    assert_memory_equal(got, pub, 32);
    /* Never overwritten. */
    assert_int_equal(ota_pubkey_save(p, pub), OTA_ERR_EXISTS);
    join(p, t, "missing.pub");
    memset(got, 0x55, sizeof(got));
    assert_int_equal(ota_pubkey_load(got, p), OTA_ERR_NOT_FOUND);
    assert_memory_equal(got, (uint8_t[32]){0}, 32);
}

static void test_secret_key_file_round_trip(void **state)
{
    struct ota_detail det = {{0}};
    struct tdir *t = *state;
    char p[PATH_MAX];
    char pp[PATH_MAX];
    uint8_t seed[32], pub[32], got[32], sig1[64], sig2[64];
    struct ota_signer *s = NULL, *l = NULL;
    struct stat st;
    uint8_t *pem = NULL;
    size_t len = 0;
    mode_t old_umask;

    unhex(seed, sizeof(seed), V_SEED);
    assert_int_equal(ota_signer_from_seed(&s, seed), 0);
    join(p, t, "key.sec");
    old_umask = umask(0); /* the mode must be 0600 whatever the umask */
    assert_int_equal(ota_signer_save(s, p, NULL), 0);
    umask(old_umask);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(ota_fs_read(&pem, &len, p, 4096), 0);
    assert_non_null(strstr((char *)pem, "-----BEGIN PRIVATE KEY-----"));
    ota_wipe(pem, len);
    free(pem);

    assert_int_equal(ota_signer_load(&l, p, &det), 0);
    ota_signer_public(pub, s);
    ota_signer_public(got, l);
    assert_memory_equal(pub, got, 32);
    assert_string_equal(ota_signer_keyid(l), V_KEYID);
    assert_int_equal(ota_signer_sign(sig1, s, "msg", 3), 0);
    assert_int_equal(ota_signer_sign(sig2, l, "msg", 3), 0);
    assert_memory_equal(sig1, sig2, 64); /* Ed25519 is deterministic */

    /* The public half can be read from the secret key file. */
    assert_int_equal(ota_pubkey_load(got, p), 0);
    assert_memory_equal(pub, got, 32);

    /* Save refuses an existing path, and a dangling symlink. */
    assert_int_equal(ota_signer_save(s, p, NULL), OTA_ERR_EXISTS);
    join(pp, t, "dangling");
    assert_int_equal(symlink("/nonexistent/ota-target", pp), 0);
    assert_int_equal(ota_signer_save(s, pp, NULL), OTA_ERR_EXISTS);
    ota_signer_free(l);
    ota_signer_free(s);
    ota_signer_free(NULL);
}

static void test_secret_key_load_refusals(void **state)
{
    struct ota_detail det = {{0}};
    struct tdir *t = *state;
    char p[PATH_MAX];
    char link[PATH_MAX];
    uint8_t seed[32];
    struct ota_signer *s = NULL, *l = NULL;

    unhex(seed, sizeof(seed), V_SEED);
    assert_int_equal(ota_signer_from_seed(&s, seed), 0);
    join(p, t, "key.sec");
    assert_int_equal(ota_signer_save(s, p, NULL), 0);

    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_PERMISSION);
    assert_null(l);
    assert_non_null(strstr(det.msg, "accessible by group or others (mode 0640)"));
    assert_non_null(strstr(det.msg, "chmod 600 "));
    assert_int_equal(chmod(p, 0604), 0);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_PERMISSION);
    assert_int_equal(chmod(p, 0601), 0);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_PERMISSION);
    assert_int_equal(chmod(p, 0400), 0);
    assert_int_equal(ota_signer_load(&l, p, &det), 0);
    ota_signer_free(l);
    l = NULL;
    assert_int_equal(chmod(p, 0600), 0);

    /* A symlink to a good key file is refused. */
    join(link, t, "link.sec");
    assert_int_equal(symlink(p, link), 0);
    assert_int_equal(ota_signer_load(&l, link, &det), OTA_ERR_PERMISSION);
    assert_null(l);
    assert_non_null(strstr(det.msg, "is a symbolic link: secret keys are read from the key file"));
    assert_null(strstr(det.msg, "chmod"));
    /* A directory is not a regular file. */
    assert_int_equal(ota_signer_load(&l, t->path, &det), OTA_ERR_PERMISSION);
    assert_non_null(strstr(det.msg, "is not a regular file"));
    join(p, t, "missing.sec");
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_NOT_FOUND);
    ota_signer_free(s);
}

static void test_key_format_errors(void **state)
{
    struct ota_detail det = {{0}};
    struct tdir *t = *state;
    char p[PATH_MAX];
    EVP_PKEY *ec;
    BIO *bio;
    char *pem;
    long n;
    uint8_t pub[32];
    struct ota_signer *l = NULL;
    char big[OTA_KEYFILE_MAX + 1];

    /* An EC P-256 key is well-formed PEM but not Ed25519. */
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);

    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(bio, &pem);
    join(p, t, "ec.sec");
    write_file(p, pem, (size_t)n, 0600);
    BIO_free(bio);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_KEY_FORMAT);
    assert_null(l);
    assert_non_null(strstr(det.msg, "not an Ed25519 key"));
    assert_int_equal(ota_pubkey_load(pub, p), OTA_ERR_KEY_FORMAT);

    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, ec), 1);
    n = BIO_get_mem_data(bio, &pem);
    join(p, t, "ec.pub");
    write_file(p, pem, (size_t)n, 0644);
    BIO_free(bio);
    memset(pub, 0x55, sizeof(pub));
    assert_int_equal(ota_pubkey_load(pub, p), OTA_ERR_KEY_FORMAT);
    assert_memory_equal(pub, (uint8_t[32]){0}, 32);
    EVP_PKEY_free(ec);

    /* Not PEM at all. */
    join(p, t, "garbage");
    write_file(p, "not a key\n", 10, 0600);
    assert_int_equal(ota_pubkey_load(pub, p), OTA_ERR_KEY_FORMAT);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_KEY_FORMAT);
    assert_non_null(strstr(det.msg, "is not a PEM key file"));
    /* A public key where a secret key is expected. */
    unhex(pub, sizeof(pub), V_PUB);
    join(p, t, "only.pub");
    assert_int_equal(ota_pubkey_save(p, pub), 0);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_KEY_FORMAT);
    assert_non_null(strstr(det.msg, "is a public key file"));
    /* An encrypted key is named as such. */
    {
        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

        assert_non_null(ed);
        bio = BIO_new(BIO_s_mem());
        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, ed, EVP_aes_256_cbc(), NULL, 0, NULL,
                                                       (void *)"pass phrase"),
                         1);
        n = BIO_get_mem_data(bio, &pem);
        join(p, t, "enc.sec");
        write_file(p, pem, (size_t)n, 0600);
        BIO_free(bio);
        EVP_PKEY_free(ed);
        assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_KEY_FORMAT);
        assert_non_null(strstr(det.msg, "is an encrypted private key"));
    }
    /* Oversized key files are refused before parsing. */
    memset(big, 'A', sizeof(big));
    join(p, t, "big");
    write_file(p, big, sizeof(big), 0600);
    assert_int_equal(ota_pubkey_load(pub, p), OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_signer_load(&l, p, &det), OTA_ERR_TOO_LARGE);
}

static void test_generate(void **state)
{
    struct ota_signer *a = NULL, *b = NULL;
    uint8_t pa[32], pb[32], sig[64];
    char keyid[OTA_KEYID_SIZE];

    (void)state;
    assert_int_equal(ota_signer_generate(&a), 0);
    assert_int_equal(ota_signer_generate(&b), 0);
    ota_signer_public(pa, a);
    ota_signer_public(pb, b);
    assert_memory_not_equal(pa, pb, 32);
    assert_string_not_equal(ota_signer_keyid(a), ota_signer_keyid(b));
    assert_int_equal(ota_ed25519_keyid(keyid, pa), 0);
    assert_string_equal(keyid, ota_signer_keyid(a));
    assert_int_equal(ota_signer_sign(sig, a, "hello", 5), 0);
    assert_int_equal(ota_ed25519_verify(pa, "hello", 5, sig), 0);
    assert_int_equal(ota_ed25519_verify(pb, "hello", 5, sig), OTA_ERR_BAD_SIGNATURE);
    ota_signer_free(a);
    ota_signer_free(b);
}

/* Key files told apart by their PEM label. */
static void test_keyfile_kind(void **state)
{
    static const struct {
        const char *text;
        enum ota_keyfile_kind kind;
    } cases[] = {
        {"-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n", OTA_KEYFILE_PUBLIC},
        {"-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----\n", OTA_KEYFILE_SECRET},
        {"comment\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGb\n", OTA_KEYFILE_ENCRYPTED},
        {"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", OTA_KEYFILE_OTHER_SECRET},
        {"-----BEGIN EC PRIVATE KEY-----\n", OTA_KEYFILE_OTHER_SECRET},
        {"-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"
         "-----BEGIN PUBLIC KEY-----\n",
         OTA_KEYFILE_PUBLIC},
        {"just text\n", OTA_KEYFILE_NONE},
        {"-----BEGIN ", OTA_KEYFILE_NONE},
        {"", OTA_KEYFILE_NONE},
    };
    struct tdir *t = *state;
    char p[PATH_MAX];
    enum ota_keyfile_kind kind;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f;

        join(p, t, "k.pem");
        f = fopen(p, "w");
        assert_non_null(f);
        fputs(cases[i].text, f);
        fclose(f);
        assert_int_equal(ota_keyfile_kind(&kind, p), 0);
        if (kind != cases[i].kind)
            fail_msg("case %zu: kind %d, want %d", i, (int)kind, (int)cases[i].kind);
        unlink(p);
    }
    join(p, t, "missing.pem");
    assert_int_equal(ota_keyfile_kind(&kind, p), OTA_ERR_NOT_FOUND);
}

#define TD(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_constants_match_readme),
        cmocka_unit_test(test_vector_seed_pub_keyid_sig),
        cmocka_unit_test(test_keyid_matches_sha256_of_key_object),
        cmocka_unit_test(test_rfc8032),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_sha256_known),
        cmocka_unit_test(test_sha256_streaming),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_ct_equal_and_wipe),
        TD(test_pubkey_file_round_trip),
        TD(test_secret_key_file_round_trip),
        TD(test_secret_key_load_refusals),
        TD(test_key_format_errors),
        TD(test_keyfile_kind),
        cmocka_unit_test(test_generate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
