/* FastCDC chunker (see otachain/chunker.h and docs/formats/chunk-index.md).
 *
 * Invariants of struct ota_chunker between calls:
 *   0 <= pos < max_size           bytes of the current chunk seen so far
 *   fp == 0 while pos <= min_size - 64 (hashing starts at byte min - 64)
 *   fp == gear hash of bytes [min - 64, pos) of the current chunk otherwise
 * A chunk ends after byte j (length L = j + 1) when L >= min and
 * fp & (L < avg ? mask_s : mask_l) == 0, or when L == max. Each judged fp
 * covers exactly the 64 bytes ending at the candidate cut, so the cut
 * points depend on the content and the previous cut only, never on how
 * the input was split into buffers.
 */
#include "otachain/chunker.h"

#include <string.h>

/* gear[i] = first 8 bytes, little-endian, of
 * SHA-256("otachain-fastcdc-gear-v1" || byte(i)); test_chunker re-derives
 * every entry and the identity hash below. */
static const uint64_t gear[256] = {
    UINT64_C(0x4fb80fd52fd0b732), UINT64_C(0xf74963c6dbddf476), UINT64_C(0xdcdb66c8a31da1f6),
    UINT64_C(0xc7d033a2491d3a7a), UINT64_C(0xe3a265d0d3e18a38), UINT64_C(0xeb3d0cf37d1e5a24),
    UINT64_C(0x1e0594fff11b6ebc), UINT64_C(0x200ab48f873940f9), UINT64_C(0x93b02acb8eee284e),
    UINT64_C(0x89b1b8d760d6f118), UINT64_C(0x44eaa44bb3cc3c27), UINT64_C(0xb849e9d178056b09),
    UINT64_C(0xa890c93d50ae0903), UINT64_C(0x7ec1a427d4234d6e), UINT64_C(0xd7635da436e66336),
    UINT64_C(0x1368e1c727979a55), UINT64_C(0xc05193fa4316e35e), UINT64_C(0xa3c39641bcce1054),
    UINT64_C(0xb0eae934bf5928a0), UINT64_C(0x4f8ac5b0a102409f), UINT64_C(0x3c33764fe9bd4dcc),
    UINT64_C(0x1fbdf666d56f079c), UINT64_C(0x57c3e140b9702fe1), UINT64_C(0x0dcf014dd23ba446),
    UINT64_C(0xc98d30bb96716184), UINT64_C(0xd6829868047ddb8d), UINT64_C(0xbaffd777e6eb6bc3),
    UINT64_C(0x5cb16c2b48d0786a), UINT64_C(0x0139d7d5b1a7799c), UINT64_C(0x82a4f6f0c2555f3e),
    UINT64_C(0x11c7e6f66e9a042e), UINT64_C(0x89947e39c30f0ea0), UINT64_C(0x476f7d31f03e490b),
    UINT64_C(0x0afd12d8173709bb), UINT64_C(0xeeb7496fd0915caf), UINT64_C(0x0d65fa7775c2e333),
    UINT64_C(0x4a817bea91b3e6c8), UINT64_C(0x3a46f9d627cd5623), UINT64_C(0x86d3d601c4ac9d14),
    UINT64_C(0xea1a9dcfc695c4a0), UINT64_C(0x344c1ef635b354bb), UINT64_C(0x1d89d993341915b7),
    UINT64_C(0x7dbb7a53ba3fbd1e), UINT64_C(0xea275ca71838f7eb), UINT64_C(0xa5973bd3b96c81d9),
    UINT64_C(0x8b22a06212e38e7c), UINT64_C(0xc270db64dbad3e07), UINT64_C(0x4435984dc09c09f1),
    UINT64_C(0x70688ba0b5cb6e22), UINT64_C(0x5dc6d99d048b0d28), UINT64_C(0xd4b53d8f099a8e1b),
    UINT64_C(0xf24b35f094afac6d), UINT64_C(0xaf9148041deb7000), UINT64_C(0xfe963ef7e89ef6a8),
    UINT64_C(0xf4df8ac2ae746fd2), UINT64_C(0x42f17aec51c66435), UINT64_C(0x95baa466629a8bcc),
    UINT64_C(0xb80f0cb5b42867d8), UINT64_C(0x2d5af7d6444c780c), UINT64_C(0xfe3881f2b31cca83),
    UINT64_C(0x0aed6b1fe4044d7d), UINT64_C(0x2d039355ff751aa8), UINT64_C(0x5fed9033e0d310de),
    UINT64_C(0x64c201b2c969313f), UINT64_C(0x88643747ad820187), UINT64_C(0x4e45cd90f298a260),
    UINT64_C(0x9ed9213a49c1a25d), UINT64_C(0x4dc9dea6d4054ac6), UINT64_C(0xaaea71c2f18c1063),
    UINT64_C(0x171fae2ecbc785f4), UINT64_C(0x8369bb95763d130a), UINT64_C(0x31e1e7ca40ff5a91),
    UINT64_C(0xb86822eeacfcd9c4), UINT64_C(0x7b2568279461969c), UINT64_C(0xc5ee101053202d4f),
    UINT64_C(0xd3bd737afb7e9fcc), UINT64_C(0x393aedad1ad9e14b), UINT64_C(0xfe3eb3b29fc809ed),
    UINT64_C(0x7a893583544e6ecb), UINT64_C(0xded23ef13177013d), UINT64_C(0x6a452949f55d9e7f),
    UINT64_C(0x2892791b24867e27), UINT64_C(0xfabc4aa20e29fb36), UINT64_C(0x4cacf6372d7b3500),
    UINT64_C(0x5bf37c9e3a0ef871), UINT64_C(0xae9c35384cfdf1b4), UINT64_C(0xa1ff429909894fc9),
    UINT64_C(0x66e83cf396a746c0), UINT64_C(0x638b3e0da9eb1980), UINT64_C(0x29c22c5c4971e5a0),
    UINT64_C(0xa9bd999615436ebf), UINT64_C(0xce0ca1d9039570ad), UINT64_C(0xf2d7f1678bdd32b6),
    UINT64_C(0xd6d54fdd7b5ad822), UINT64_C(0xa7d695a8e83f1334), UINT64_C(0x491c7679bf56d425),
    UINT64_C(0x7126713d6fae2841), UINT64_C(0x23bf578e7a187f64), UINT64_C(0x08300715d617b774),
    UINT64_C(0xe45798216a4e7757), UINT64_C(0xd57d5bf6d3d8abb7), UINT64_C(0x4769ed44422d55e0),
    UINT64_C(0x690026866049f125), UINT64_C(0x8ffca0a050b0960a), UINT64_C(0xa8dbc86bdebbc62c),
    UINT64_C(0x65b4dc95fae8c412), UINT64_C(0x8f9913942a561eba), UINT64_C(0xfcba9b1da24b00a9),
    UINT64_C(0x0c2a91679492e5f0), UINT64_C(0xf88c3c84043fd915), UINT64_C(0x5ee4425c61c6333f),
    UINT64_C(0x9c4229c68db8346d), UINT64_C(0x6a6a0b240168317f), UINT64_C(0xe53a026cc87ac1fb),
    UINT64_C(0xa54c90018fc786a3), UINT64_C(0x6a426f4e4ee77268), UINT64_C(0x6fa11a6470dfc039),
    UINT64_C(0x1d8ed1196fef630d), UINT64_C(0x0da39c2347bef4d6), UINT64_C(0x46b48990718c2b03),
    UINT64_C(0xf3faafb30b7ee2f5), UINT64_C(0x863ad7c1d1f49f45), UINT64_C(0x1f1efec1422940a3),
    UINT64_C(0x5b665e28079d7f4d), UINT64_C(0xd83ae62cd510a90a), UINT64_C(0x0309593e758084be),
    UINT64_C(0x5e4c5a4e90e86a2e), UINT64_C(0xdeb0f5fd320a4d9e), UINT64_C(0x45ce130012c1c1a7),
    UINT64_C(0x8c76de3b15f9c3f0), UINT64_C(0xfdee1c2626c32248), UINT64_C(0xbddf2ade06428241),
    UINT64_C(0x20a795da3448968b), UINT64_C(0x2ad313479b750f75), UINT64_C(0xd80eff2763365bc2),
    UINT64_C(0x167491031a00aee8), UINT64_C(0x7a7088ed3e6c1731), UINT64_C(0x9a4442590a2fcc52),
    UINT64_C(0xfebe0cf230652fc6), UINT64_C(0x79b580e3858b293e), UINT64_C(0xf0f4e5b9434bc0d4),
    UINT64_C(0x9cfc80126a4d7a46), UINT64_C(0xce155c1d136be3a7), UINT64_C(0xbe6ec196bfc2dedd),
    UINT64_C(0xad65e2ae10a6dbe1), UINT64_C(0xa9889d99c2dc4b3e), UINT64_C(0x9e3b05f990927cf1),
    UINT64_C(0x092986be92be1d39), UINT64_C(0x11f7b1d926400e4d), UINT64_C(0xc07f86a70cf59864),
    UINT64_C(0x4cf32b0f198efb3b), UINT64_C(0xb382f4fcca0b548e), UINT64_C(0x879c3047a4577e10),
    UINT64_C(0x58609f97352483a7), UINT64_C(0x7e3088a55b775205), UINT64_C(0x3c74391c1a2636da),
    UINT64_C(0x6d398fce31fdedf1), UINT64_C(0xcae5095c2577eb74), UINT64_C(0x9a58227c7a5fdba1),
    UINT64_C(0x24a3a003518a0e93), UINT64_C(0x48aa4bc8f612c04e), UINT64_C(0xcdaf8154c7115003),
    UINT64_C(0xe4544ab2675ee695), UINT64_C(0x815199aafb242bce), UINT64_C(0xd763b67752c32705),
    UINT64_C(0xa90db92221464e3b), UINT64_C(0x6ab31d67fb0a8b39), UINT64_C(0xf3b0f2f6e6e332bc),
    UINT64_C(0xe3a41002aff2e6a6), UINT64_C(0x827b8b926d3f3d6e), UINT64_C(0xf0e664464179ebfc),
    UINT64_C(0xe627c5f20fe04203), UINT64_C(0x000eb294280abcc0), UINT64_C(0x495b29baf5d6452a),
    UINT64_C(0xa26694ad823c05b6), UINT64_C(0x022adbfaee5c6360), UINT64_C(0x173dde3e028bfb2e),
    UINT64_C(0x481ff0f43cf5163e), UINT64_C(0x726151f720077d16), UINT64_C(0xc015226a2985ca02),
    UINT64_C(0x90b0be846d264fb0), UINT64_C(0x4699e285901b0415), UINT64_C(0x36a1e81169218202),
    UINT64_C(0x725af1190689066b), UINT64_C(0x2146d0532d854a25), UINT64_C(0x49626629e6c4aac1),
    UINT64_C(0x9788bc489cf8234b), UINT64_C(0x2dd1ad5ac9019d5f), UINT64_C(0x91d3b598c9cc030b),
    UINT64_C(0x6798722c5d55ea7f), UINT64_C(0x5ae18e9909f6668e), UINT64_C(0xe1d6122ab1b8cb05),
    UINT64_C(0xdd6c98f0b805cd1e), UINT64_C(0x56f0d2784bd7aa87), UINT64_C(0xf70332fe26791564),
    UINT64_C(0xdaded6ee1deab57b), UINT64_C(0xbeb23f4ff090291e), UINT64_C(0xe86c20a194ae55ed),
    UINT64_C(0xac99368d9a8c72aa), UINT64_C(0xd6f6f5bcaca6bcae), UINT64_C(0xf3cf52470d688065),
    UINT64_C(0xf81fe31ab01e9ea1), UINT64_C(0x735c4181ae5c716e), UINT64_C(0xa7a2eb4dc5040525),
    UINT64_C(0x103e70db02a5ba07), UINT64_C(0x04a05b5db17ab31b), UINT64_C(0x10fa6fc6c8325d8f),
    UINT64_C(0xb7b65fdbf61da102), UINT64_C(0x0575d0000c59043a), UINT64_C(0xe52510470ed9d7f2),
    UINT64_C(0x7be623c96710a3e7), UINT64_C(0xa5e9eff154970d22), UINT64_C(0x037539602900c1b9),
    UINT64_C(0xc6ee6770226a423c), UINT64_C(0x0a191b9a2d07e8c0), UINT64_C(0xcb61515b2f8c6963),
    UINT64_C(0xde51a31d645df830), UINT64_C(0x5b6d9910f05430b0), UINT64_C(0x1a21aeb3ce2054e7),
    UINT64_C(0xd1870c94debe5736), UINT64_C(0xb3840dbbf5d825a5), UINT64_C(0x493d22e930967252),
    UINT64_C(0x0d935009a16e79e2), UINT64_C(0xf56de1984511753b), UINT64_C(0xceb5163b64ce99b1),
    UINT64_C(0xcfbb92b71550f1b1), UINT64_C(0xed620a575b66f665), UINT64_C(0x64fa129d48f17eea),
    UINT64_C(0xaaaf5165973f1cb8), UINT64_C(0xfbcc72bf2bd8f760), UINT64_C(0xd2a6605a3d9cdced),
    UINT64_C(0x4eab8894bd154c7c), UINT64_C(0x9515191bc1e5df57), UINT64_C(0xf42bf32c0e3c3ca6),
    UINT64_C(0x8c235be3b2d4abc7), UINT64_C(0xf5e27478a32c9b66), UINT64_C(0x2047a300e7c07457),
    UINT64_C(0xcbf166034a92e8ef), UINT64_C(0x9f6b85af24d8ed51), UINT64_C(0x7724733df64aed42),
    UINT64_C(0x32a57a360f18ea2d), UINT64_C(0xb2beea054d379727), UINT64_C(0x6a364e392a640540),
    UINT64_C(0xb2cad46e59d257e9), UINT64_C(0xf7e253b57281cf65), UINT64_C(0x80469b3f88e93695),
    UINT64_C(0xeec348d9abe043ba), UINT64_C(0x5405996cb7f65936), UINT64_C(0xd6ff837b99003757),
    UINT64_C(0x33a70e845b75f1bd), UINT64_C(0x6dec68c8ef6095f0), UINT64_C(0x06d146a185ab69b7),
    UINT64_C(0x49da2075d3a34e2f), UINT64_C(0x228022e5c3277757), UINT64_C(0xcf337014ebd781ed),
    UINT64_C(0x779b6fb48edc3a8c),
};

const uint8_t ota_chunker_gear_sha256[OTA_SHA256_LEN] = {
    0x15, 0x4e, 0x38, 0x3a, 0x32, 0x02, 0x39, 0x32, 0x24, 0x27, 0x31, 0xac, 0xfd, 0xc0, 0x11, 0x1c,
    0x91, 0x72, 0xe6, 0xe6, 0x10, 0xea, 0xcf, 0x13, 0x27, 0x6e, 0x14, 0xc8, 0xbd, 0xb3, 0x61, 0x97,
};

const uint64_t *ota_chunker_gear(void)
{
    return gear;
}

void ota_chunker_params_default(struct ota_chunker_params *p)
{
    p->min_size = OTA_CHUNKER_MIN_DEFAULT;
    p->avg_size = OTA_CHUNKER_AVG_DEFAULT;
    p->max_size = OTA_CHUNKER_MAX_DEFAULT;
    p->nc_level = OTA_CHUNKER_NC_DEFAULT;
}

static unsigned log2_u32(uint32_t v)
{
    unsigned b = 0;

    while (v > 1) {
        v >>= 1;
        b++;
    }
    return b;
}

int ota_chunker_params_check(const struct ota_chunker_params *p, struct ota_detail *det)
{
    if (p == NULL)
        return OTA_ERR_INVALID_ARG;
    if (p->avg_size < OTA_CHUNKER_AVG_FLOOR || p->avg_size > OTA_CHUNK_LEN_CAP ||
        (p->avg_size & (p->avg_size - 1)) != 0) {
        ota_detail_set(det, "average chunk size %u is not a power of two in [256, 1 MiB]",
                       (unsigned)p->avg_size);
        return OTA_ERR_CHUNK_PARAMS;
    }
    if (p->min_size < OTA_CHUNKER_MIN_FLOOR || p->min_size > p->avg_size ||
        p->max_size < p->avg_size || p->max_size > OTA_CHUNK_LEN_CAP) {
        ota_detail_set(det,
                       "chunk sizes min %u avg %u max %u: need 64 <= min <= avg <= max <= "
                       "1 MiB",
                       (unsigned)p->min_size, (unsigned)p->avg_size, (unsigned)p->max_size);
        return OTA_ERR_CHUNK_PARAMS;
    }
    if (p->nc_level > OTA_CHUNKER_NC_MAX || log2_u32(p->avg_size) <= p->nc_level) {
        ota_detail_set(det, "normalization level %u is not in 0..3", (unsigned)p->nc_level);
        return OTA_ERR_CHUNK_PARAMS;
    }
    return 0;
}

/* The top k bits of a 64-bit word (1 <= k <= 63). */
static uint64_t top_bits(unsigned k)
{
    return ~UINT64_C(0) << (64 - k);
}

int ota_chunker_init(struct ota_chunker *c, const struct ota_chunker_params *p,
                     struct ota_detail *det)
{
    unsigned b;
    int rc;

    if (c == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(c, 0, sizeof(*c));
    rc = ota_chunker_params_check(p, det);
    if (rc != 0)
        return rc;
    c->p = *p;
    b = log2_u32(p->avg_size);
    c->mask_s = top_bits(b + p->nc_level);
    c->mask_l = top_bits(b - p->nc_level);
    return 0;
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

size_t ota_chunker_scan(struct ota_chunker *c, uint32_t *cut_len, const void *data, size_t len)
{
    const uint8_t *in = data;
    const uint8_t *q;
    const uint8_t *end;
    uint64_t fp = c->fp;
    uint32_t pos = c->pos;
    const uint32_t hash_from = c->p.min_size - 64;
    size_t i = 0;
    size_t n;

    *cut_len = 0;
    /* Cut-point skipping: bytes before min - 64 cannot influence a cut. */
    if (pos < hash_from) {
        n = min_sz(len, hash_from - pos);
        pos += (uint32_t)n;
        i += n;
    }
    /* Warm-up: hash bytes [min - 64, min - 1) without judging. */
    if (i < len && pos < c->p.min_size - 1) {
        n = min_sz(len - i, c->p.min_size - 1 - pos);
        for (q = in + i, end = q + n; q < end; q++)
            fp = (fp << 1) + gear[*q];
        pos += (uint32_t)n;
        i += n;
    }
    /* Lengths min .. avg - 1: the stricter mask. */
    if (i < len && pos < c->p.avg_size - 1) {
        const uint64_t mask = c->mask_s;

        n = min_sz(len - i, c->p.avg_size - 1 - pos);
        for (q = in + i, end = q + n; q < end; q++) {
            fp = (fp << 1) + gear[*q];
            if ((fp & mask) == 0) {
                n = (size_t)(q - (in + i)) + 1;
                pos += (uint32_t)n;
                i += n;
                goto cut;
            }
        }
        pos += (uint32_t)n;
        i += n;
    }
    /* Lengths avg .. max: the looser mask, and a forced cut at max. */
    if (i < len && pos < c->p.max_size) {
        const uint64_t mask = c->mask_l;

        n = min_sz(len - i, c->p.max_size - pos);
        for (q = in + i, end = q + n; q < end; q++) {
            fp = (fp << 1) + gear[*q];
            if ((fp & mask) == 0) {
                n = (size_t)(q - (in + i)) + 1;
                pos += (uint32_t)n;
                i += n;
                goto cut;
            }
        }
        pos += (uint32_t)n;
        i += n;
        if (pos == c->p.max_size)
            goto cut;
    }
    c->fp = fp;
    c->pos = pos;
    return i;
cut:
    *cut_len = pos;
    c->fp = 0;
    c->pos = 0;
    return i;
}

uint32_t ota_chunker_end(struct ota_chunker *c)
{
    uint32_t last = c->pos;

    c->fp = 0;
    c->pos = 0;
    return last;
}
