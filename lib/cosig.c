/* tlog-cosignature v1 (Ed25519): message and verification (see
 * otachain/cosig.h). Ed25519 signs a whole message, so the message is
 * built in a buffer capped at the body plus the two header lines.
 */
#include "otachain/cosig.h"

#include <inttypes.h>
#include <string.h>

/* "cosignature/v1\n" + "time " + 19 digits + "\n". */
#define COSIG_PREFIX_MAX 64

void ota_cosig_put_time(uint8_t out[8], uint64_t t)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(t & 0xff);
        t >>= 8;
    }
}

uint64_t ota_cosig_get_time(const uint8_t in[8])
{
    uint64_t t = 0;

    for (int i = 0; i < 8; i++)
        t = (t << 8) | in[i];
    return t;
}

int ota_cosig_message(struct ota_buf *out, const char *body, size_t body_len, uint64_t t)
{
    int rc;

    if (out == NULL || (body == NULL && body_len > 0) || t > OTA_COSIG_MAX_TIME)
        return OTA_ERR_INVALID_ARG;
    rc = ota_buf_printf(out, OTA_COSIG_HEADER "time %" PRIu64 "\n", t);
    if (rc == 0)
        rc = ota_buf_append(out, body, body_len);
    return rc;
}

int ota_cosig_verify(uint64_t *t, const char *body, size_t body_len,
                     const uint8_t pub[OTA_ED25519_PUB_LEN], const uint8_t *sig, size_t sig_len)
{
    struct ota_buf msg;
    uint64_t when;
    int rc;

    if (t == NULL)
        return OTA_ERR_INVALID_ARG;
    *t = 0;
    if ((body == NULL && body_len > 0) || pub == NULL || (sig == NULL && sig_len > 0) ||
        body_len > SIZE_MAX - COSIG_PREFIX_MAX)
        return OTA_ERR_INVALID_ARG;
    if (sig_len != OTA_COSIG_LEN)
        return OTA_ERR_BAD_SIGNATURE;
    when = ota_cosig_get_time(sig);
    if (when > OTA_COSIG_MAX_TIME)
        return OTA_ERR_BAD_SIGNATURE;
    ota_buf_init(&msg, COSIG_PREFIX_MAX + body_len);
    rc = ota_cosig_message(&msg, body, body_len, when);
    if (rc == 0)
        rc = ota_ed25519_verify(pub, msg.data, msg.len, sig + 8);
    ota_buf_free(&msg);
    if (rc == 0)
        *t = when;
    return rc;
}
