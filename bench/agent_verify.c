/* Full-image verification as the agent does it after writing a slot
 * (bench/agent): the slot output's verify (sync, page cache dropped,
 * re-read, SHA-256) with the agent's 1 MiB buffer.
 *
 *   agent_verify SLOT LENGTH SHA256-HEX    prints "SECONDS"
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otachain/checkpoint.h"
#include "otachain/crypto.h"
#include "otachain/output.h"

int main(int argc, char **argv)
{
    struct ota_output *o = NULL;
    struct ota_detail det = {{0}};
    uint8_t sha[OTA_SHA256_LEN];
    uint64_t len;
    struct timespec a, b;
    uint8_t *buf = malloc(1u << 20);
    int rc;

    if (argc != 4 || buf == NULL ||
        ota_checkpoint_parse_u64(&len, argv[2], strlen(argv[2]), UINT64_MAX) != 0 ||
        strlen(argv[3]) != OTA_SHA256_HEX_LEN ||
        ota_hex_decode(sha, OTA_SHA256_LEN, argv[3]) != 0) {
        fprintf(stderr, "usage: agent_verify SLOT LENGTH SHA256-HEX\n");
        free(buf);
        return 2;
    }
    rc = ota_output_slot(&o, argv[1], len, NULL, &det);
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (rc == 0)
        rc = ota_output_verify(o, sha, buf, 1u << 20, &det);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ota_output_free(o);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "agent_verify: %s: %s\n", ota_errname(rc), det.msg);
        return 1;
    }
    printf("%.3f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
