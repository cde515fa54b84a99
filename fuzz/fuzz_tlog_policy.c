/* libFuzzer harness for tlog-policy text (ota_tlog_policy_parse).
 *
 * Input: a policy. Whatever parses must format to text that parses to a
 * policy formatting identically; the quorum must be met when every
 * witness counts, and when none does only for "quorum none". Crashes,
 * leaks, sanitizer reports or a broken invariant (abort) are failures.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/err.h"
#include "otachain/tlog_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool all[OTA_TLOG_POLICY_MAX_WITNESSES];
    bool none[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};
    struct ota_tlog_policy *p = NULL;
    struct ota_tlog_policy *q = NULL;
    struct ota_detail det;
    struct ota_buf a;
    struct ota_buf b;
    int rc;

    rc = ota_tlog_policy_parse(&p, (const char *)data, size, &det);
    if (rc != 0) {
        if (p != NULL)
            abort();
        return 0;
    }
    memset(all, 1, sizeof(all));
    if (!ota_tlog_policy_quorum_met(p, all) ||
        ota_tlog_policy_quorum_met(p, none) != p->quorum_none)
        abort();
    ota_buf_init(&a, 1 << 20);
    ota_buf_init(&b, 1 << 20);
    if (ota_tlog_policy_format(&a, p) != 0 ||
        ota_tlog_policy_parse(&q, (const char *)a.data, a.len, &det) != 0 ||
        ota_tlog_policy_format(&b, q) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    ota_buf_free(&a);
    ota_buf_free(&b);
    ota_tlog_policy_free(p);
    ota_tlog_policy_free(q);
    return 0;
}
