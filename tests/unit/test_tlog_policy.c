/* Unit tests for tlog_policy.c: the spec's example policy and its quorum
 * (nested groups, any / all / k), one refusal per parse rule with its
 * exact error, the root.json form with its origin check, text round
 * trips, and the checkpoint check against a time window: a stale or
 * future cosignature never counts, a fresh cosignature by one witness on
 * an otherwise stale checkpoint is not enough for 3 of 4, a forged
 * cosignature refuses the checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/note.h"
#include "otachain/note_sign.h"
#include "otachain/tlog_policy.h"

#include "failalloc.h"

#define ORIGIN  "example.com/log"
#define ROOT    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
#define NOW     INT64_C(1700000000)
#define MAX_AGE INT64_C(3600)
#define SKEW    INT64_C(60)
#define NW      6
#define NONE    INT64_MIN /* no cosignature */

/* Log keys L0 (and L1 for rotation), witnesses W1..W6 named wN.example,
 * a stranger witness S not in any policy. Made once for all tests. */
static struct ota_note_signer *logk[2];
static struct ota_note_signer *wit[NW + 1];
static char logv[2][OTA_NOTE_VKEY_SIZE];
static char witv[NW + 1][OTA_NOTE_VKEY_SIZE];

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        uint8_t seed[32];
        struct ota_note_verifier v;

        memset(seed, 0x30 + i, sizeof(seed));
        if (ota_note_signer_from_seed(&logk[i], ORIGIN, strlen(ORIGIN), 0x01, seed) != 0)
            return -1;
        ota_note_signer_verifier(&v, logk[i]);
        ota_note_verifier_format(logv[i], &v);
    }
    for (int i = 0; i <= NW; i++) {
        uint8_t seed[32];
        char name[32];
        struct ota_note_verifier v;

        memset(seed, 0x50 + i, sizeof(seed));
        snprintf(name, sizeof(name), "w%d.example", i + 1);
        if (ota_note_signer_from_seed(&wit[i], name, strlen(name), 0x04, seed) != 0)
            return -1;
        ota_note_signer_verifier(&v, wit[i]);
        ota_note_verifier_format(witv[i], &v);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        ota_note_signer_free(logk[i]);
    for (int i = 0; i <= NW; i++)
        ota_note_signer_free(wit[i]);
    return 0;
}

/* Expands a template: "$L"/"$M" are the log keys, "$1".."$7" the witness
 * keys (7 = the stranger). */
static void expand(char *out, size_t size, const char *tmpl)
{
    size_t o = 0;

    for (const char *p = tmpl; *p; p++) {
        const char *rep = NULL;

        if (p[0] == '$' && p[1] == 'L')
            rep = logv[0];
        else if (p[0] == '$' && p[1] == 'M')
            rep = logv[1];
        else if (p[0] == '$' && p[1] >= '1' && p[1] <= '7')
            rep = witv[p[1] - '1'];
        if (rep != NULL) {
            size_t n = strlen(rep);

            assert_true(o + n < size);
            memcpy(out + o, rep, n);
            o += n;
            p++;
        } else {
            assert_true(o + 1 < size);
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static struct ota_tlog_policy *policy(const char *tmpl)
{
    static char text[64 * 1024];
    struct ota_tlog_policy *p = NULL;
    struct ota_detail det = {{0}};

    expand(text, sizeof(text), tmpl);
    if (ota_tlog_policy_parse(&p, text, strlen(text), &det) != 0)
        fail_msg("policy %s: %s", text, det.msg);
    return p;
}

static void expect_policy(const char *tmpl, int want, const char *detail_part)
{
    static char text[512 * 1024];
    struct ota_tlog_policy *p = (struct ota_tlog_policy *)&p;
    struct ota_detail det = {{0}};
    int rc;

    expand(text, sizeof(text), tmpl);
    rc = ota_tlog_policy_parse(&p, text, strlen(text), &det);
    if (rc != want)
        fail_msg("policy %s: got %s (%s), want %s", text, ota_errname(rc), det.msg,
                 ota_errname(want));
    if (rc != 0)
        assert_null(p);
    ota_tlog_policy_free(rc == 0 ? p : NULL);
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("policy: detail \"%s\" lacks \"%s\"", det.msg, detail_part);
}

#define SPEC_POLICY "log $L\n" SPEC_WITNESSES
#define SPEC_WITNESSES                                                                             \
    "\n"                                                                                           \
    "witness X1 $1\n"                                                                              \
    "witness X2 $2\n"                                                                              \
    "witness X3 $3\n"                                                                              \
    "group X-witnesses 2 X1 X2 X3\n"                                                               \
    "\n"                                                                                           \
    "witness Y1 $4\n"                                                                              \
    "witness Y2 $5\n"                                                                              \
    "witness Y3 $6\n"                                                                              \
    "group Y-witnesses any Y1 Y2 Y3\n"                                                             \
    "\n"                                                                                           \
    "group X-and-Y all X-witnesses Y-witnesses\n"                                                  \
    "quorum X-and-Y\n"

#define FOUR_POLICY                                                                                \
    "log $L\n"                                                                                     \
    "witness w1 $1\n"                                                                              \
    "witness w2 $2\n"                                                                              \
    "witness w3 $3\n"                                                                              \
    "witness w4 $4\n"                                                                              \
    "group g 3 w1 w2 w3 w4\n"                                                                      \
    "quorum g\n"

/* ---- parsing and quorum evaluation ---- */

static void test_spec_example_structure(void **state)
{
    struct ota_tlog_policy *p = policy(SPEC_POLICY);

    (void)state;
    assert_int_equal(p->nlogs, 1);
    assert_int_equal(p->logs[0].key.type, 0x01);
    assert_null(p->logs[0].url);
    assert_int_equal(p->nwitnesses, 6);
    assert_string_equal(p->witnesses[3].name, "Y1");
    assert_int_equal(p->witnesses[3].key.type, 0x04);
    assert_int_equal(p->ngroups, 3);
    assert_int_equal(p->groups[0].threshold, 2);
    assert_int_equal(p->groups[1].threshold, 1);
    assert_int_equal(p->groups[2].threshold, 2); /* all of two */
    assert_true(p->groups[2].members[0].group);
    assert_false(p->quorum_none);
    assert_true(p->quorum.group);
    assert_int_equal(p->quorum.index, 2);
    assert_int_equal(ota_tlog_policy_witness_index(p, "X3", 2), 2);
    assert_int_equal(ota_tlog_policy_witness_index(p, "X-witnesses", 11), -1);
    ota_tlog_policy_free(p);
}

static bool met(const struct ota_tlog_policy *p, const char *a, const char *b, const char *c)
{
    const char *names[3] = {a, b, c};

    return ota_tlog_policy_quorum_met_names(p, names, 3);
}

static void test_quorum_nested_groups(void **state)
{
    struct ota_tlog_policy *p = policy(SPEC_POLICY);

    (void)state;
    assert_true(met(p, "X1", "X2", "Y1"));
    assert_true(met(p, "X2", "X3", "Y3"));
    assert_false(met(p, "X1", "Y1", "Y2"));                        /* one X only */
    assert_false(met(p, "X1", "X2", "X3"));                        /* no Y */
    assert_false(met(p, "X1", "X1", "Y1"));                        /* a repeat counts once */
    assert_false(met(p, "X1", "Y1", "nope"));                      /* unknown names ignored */
    assert_false(met(p, "X-witnesses", "Y-witnesses", "X-and-Y")); /* groups are not witnesses */
    assert_false(ota_tlog_policy_quorum_met_names(p, NULL, 0));
    ota_tlog_policy_free(p);
}

static void test_quorum_any_all_k_single_none(void **state)
{
    struct ota_tlog_policy *p;
    bool w[NW] = {false};

    (void)state;
    p = policy("witness a $1\nwitness b $2\nwitness c $3\ngroup g any a b c\nquorum g\n");
    assert_false(ota_tlog_policy_quorum_met(p, w));
    w[2] = true;
    assert_true(ota_tlog_policy_quorum_met(p, w));
    ota_tlog_policy_free(p);

    p = policy("witness a $1\nwitness b $2\nwitness c $3\ngroup g all a b c\nquorum g\n");
    w[0] = w[1] = true;
    w[2] = false;
    assert_false(ota_tlog_policy_quorum_met(p, w));
    w[2] = true;
    assert_true(ota_tlog_policy_quorum_met(p, w));
    ota_tlog_policy_free(p);

    p = policy("witness a $1\nwitness b $2\nwitness c $3\nwitness d $4\n"
               "group g 3 a b c d\nquorum g\n");
    memset(w, 0, sizeof(w));
    w[0] = w[3] = true;
    assert_false(ota_tlog_policy_quorum_met(p, w));
    w[1] = true;
    assert_true(ota_tlog_policy_quorum_met(p, w));
    ota_tlog_policy_free(p);

    /* The quorum is a single witness. */
    p = policy("witness a $1\nwitness b $2\nquorum b\n");
    memset(w, 0, sizeof(w));
    w[0] = true;
    assert_false(ota_tlog_policy_quorum_met(p, w));
    w[1] = true;
    assert_true(ota_tlog_policy_quorum_met(p, w));
    ota_tlog_policy_free(p);

    /* No cosignature needed. */
    p = policy("log $L\nquorum none\n");
    assert_true(p->quorum_none);
    assert_true(ota_tlog_policy_quorum_met(p, NULL));
    ota_tlog_policy_free(p);

    /* Three levels: (a or b) and (2 of c d e), then both with f. */
    p = policy("witness a $1\nwitness b $2\nwitness c $3\nwitness d $4\nwitness e $5\n"
               "witness f $6\ngroup ab any a b\ngroup cde 2 c d e\ngroup left all ab cde\n"
               "group top 2 left f b\nquorum top\n");
    memset(w, 0, sizeof(w));
    w[0] = w[2] = w[3] = true; /* left met, f and b missing */
    assert_false(ota_tlog_policy_quorum_met(p, w));
    w[5] = true;
    assert_true(ota_tlog_policy_quorum_met(p, w));
    w[5] = false;
    w[1] = true; /* b counts in ab and at the top */
    assert_true(ota_tlog_policy_quorum_met(p, w));
    ota_tlog_policy_free(p);
}

static void test_whitespace_comments_urls(void **state)
{
    struct ota_tlog_policy *p;

    (void)state;
    p = policy("# a policy\n"
               "   \t\n"
               "  log\t$L   https://log.example/  \n"
               "\t# indented comment with $ and \xc3\xa9\n"
               "witness  w\xc3\xa9  $1\thttps://w.example/\n"
               "quorum w\xc3\xa9\t\n");
    assert_string_equal(p->logs[0].url, "https://log.example/");
    assert_string_equal(p->witnesses[0].url, "https://w.example/");
    assert_string_equal(p->witnesses[0].name, "w\xc3\xa9");
    ota_tlog_policy_free(p);
}

static void test_long_comment_line(void **state)
{
    static char t[8192];
    size_t o;

    (void)state;
    /* A comment has no item cap: 400 words. */
    o = (size_t)snprintf(t, sizeof(t), "  # ");
    for (int i = 0; i < 400; i++)
        o += (size_t)snprintf(t + o, sizeof(t) - o, "w ");
    snprintf(t + o, sizeof(t) - o, "\nlog $L\nquorum none\n");
    expect_policy(t, 0, NULL);
    /* A group line with more items than any policy can define. */
    o = (size_t)snprintf(t, sizeof(t), "witness a $1\ngroup g any");
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(t + o, sizeof(t) - o, " a");
    snprintf(t + o, sizeof(t) - o, "\nquorum g\n");
    expect_policy(t, OTA_ERR_TOO_LARGE, "too many items");
}

static void test_format_round_trip(void **state)
{
    struct ota_tlog_policy *p = policy("log $L http://l/\nlog $M\n" SPEC_WITNESSES);
    struct ota_tlog_policy *q = NULL;
    struct ota_buf a;
    struct ota_buf b;

    (void)state;
    ota_buf_init(&a, 1 << 20);
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_tlog_policy_format(&a, p), 0);
    assert_int_equal(ota_tlog_policy_parse(&q, (char *)a.data, a.len, NULL), 0);
    assert_int_equal(ota_tlog_policy_format(&b, q), 0);
    assert_string_equal((char *)a.data, (char *)b.data);
    assert_non_null(strstr((char *)a.data, "group X-and-Y 2 X-witnesses Y-witnesses\n"));
    assert_non_null(strstr((char *)a.data, " http://l/\n"));
    assert_int_equal(q->nlogs, 2);
    assert_int_equal(q->ngroups, 3);
    ota_buf_free(&a);
    ota_buf_free(&b);
    ota_tlog_policy_free(p);
    ota_tlog_policy_free(q);
}

/* ---- parse refusals, one per rule ---- */

static void test_refuse_sizes(void **state)
{
    static char big[300 * 1024];
    char line[OTA_TLOG_POLICY_MAX_LINE + 16];
    char name[OTA_TLOG_POLICY_MAX_NAME + 2];
    char url[OTA_TLOG_POLICY_MAX_URL + 2];
    char t[8192];

    (void)state;
    /* Whole text. */
    memset(big, '#', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    expect_policy(big, OTA_ERR_TOO_LARGE, "cap");
    /* One line. */
    memset(line, ' ', sizeof(line) - 2);
    line[sizeof(line) - 2] = '\n';
    line[sizeof(line) - 1] = '\0';
    expect_policy(line, OTA_ERR_TOO_LARGE, "line 1 of");
    /* Names and URLs. */
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(t, sizeof(t), "witness %s $1\nquorum none\n", name);
    expect_policy(t, OTA_ERR_TOO_LARGE, "name of 256 bytes");
    memset(url, 'u', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    snprintf(t, sizeof(t), "log $L %s\nquorum none\n", url);
    expect_policy(t, OTA_ERR_TOO_LARGE, "URL of 2049 bytes");
}

static void test_refuse_counts(void **state)
{
    static char text[256 * 1024];
    struct ota_tlog_policy *p = NULL;
    struct ota_detail det = {{0}};
    size_t o;

    (void)state;
    /* 65 witnesses (keys generated here: they must all differ). */
    o = 0;
    for (int i = 0; i <= OTA_TLOG_POLICY_MAX_WITNESSES; i++) {
        struct ota_note_signer *s = NULL;
        struct ota_note_verifier v;
        char vk[OTA_NOTE_VKEY_SIZE];
        uint8_t seed[32] = {(uint8_t)i, 1};

        assert_int_equal(ota_note_signer_from_seed(&s, "w", 1, 0x04, seed), 0);
        ota_note_signer_verifier(&v, s);
        ota_note_verifier_format(vk, &v);
        o += (size_t)snprintf(text + o, sizeof(text) - o, "witness w%d %s\n", i, vk);
        ota_note_signer_free(s);
        if (i == OTA_TLOG_POLICY_MAX_WITNESSES - 1) {
            snprintf(text + o, sizeof(text) - o, "quorum w0\n");
            assert_int_equal(ota_tlog_policy_parse(&p, text, strlen(text), NULL), 0);
            assert_int_equal(p->nwitnesses, OTA_TLOG_POLICY_MAX_WITNESSES);
            ota_tlog_policy_free(p);
        }
    }
    snprintf(text + o, sizeof(text) - o, "quorum w0\n");
    assert_int_equal(ota_tlog_policy_parse(&p, text, strlen(text), &det), OTA_ERR_TOO_LARGE);
    assert_non_null(strstr(det.msg, "more than 64 witnesses"));

    /* 65 groups. */
    o = (size_t)snprintf(text, sizeof(text), "witness a %s\n", witv[0]);
    for (int i = 0; i <= OTA_TLOG_POLICY_MAX_GROUPS; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "group g%d any a\n", i);
    snprintf(text + o, sizeof(text) - o, "quorum a\n");
    assert_int_equal(ota_tlog_policy_parse(&p, text, strlen(text), &det), OTA_ERR_TOO_LARGE);
    assert_non_null(strstr(det.msg, "more than 64 groups"));

    /* 33 logs. */
    o = 0;
    for (int i = 0; i <= OTA_TLOG_POLICY_MAX_LOGS; i++) {
        struct ota_note_signer *s = NULL;
        struct ota_note_verifier v;
        char vk[OTA_NOTE_VKEY_SIZE];
        uint8_t seed[32] = {(uint8_t)i, 2};

        assert_int_equal(ota_note_signer_from_seed(&s, "l", 1, 0x01, seed), 0);
        ota_note_signer_verifier(&v, s);
        ota_note_verifier_format(vk, &v);
        o += (size_t)snprintf(text + o, sizeof(text) - o, "log %s\n", vk);
        ota_note_signer_free(s);
    }
    snprintf(text + o, sizeof(text) - o, "quorum none\n");
    assert_int_equal(ota_tlog_policy_parse(&p, text, strlen(text), &det), OTA_ERR_TOO_LARGE);
    assert_non_null(strstr(det.msg, "more than 32 logs"));
}

static void test_refuse_characters(void **state)
{
    (void)state;
    expect_policy("log $L\r\nquorum none\n", OTA_ERR_FORMAT, "line 1: control character 0x0d");
    expect_policy("log $L\nquorum none\x7f\n", OTA_ERR_FORMAT, "line 2: control character 0x7f");
    expect_policy("log $L\nquorum\vnone\n", OTA_ERR_FORMAT, "control character");
    expect_policy("log $L\nquorum none", OTA_ERR_FORMAT, "newline");
}

static void test_refuse_line_shapes(void **state)
{
    (void)state;
    expect_policy("logs $L\nquorum none\n", OTA_ERR_FORMAT, "unknown keyword logs");
    expect_policy("Log $L\nquorum none\n", OTA_ERR_FORMAT, "unknown keyword");
    expect_policy("log\nquorum none\n", OTA_ERR_FORMAT, "log <vkey>");
    expect_policy("log $L http://a/ extra\nquorum none\n", OTA_ERR_FORMAT, "log <vkey>");
    expect_policy("witness w $1 http://a/ extra\nquorum none\n", OTA_ERR_FORMAT, "witness <name>");
    expect_policy("witness $1\nquorum none\n", OTA_ERR_FORMAT, "witness <name>");
    expect_policy("witness a $1\ngroup g any\nquorum g\n", OTA_ERR_FORMAT, "group <name>");
    expect_policy("quorum\n", OTA_ERR_FORMAT, "quorum <name|none>");
    expect_policy("quorum none none\n", OTA_ERR_FORMAT, "quorum <name|none>");
}

static void test_refuse_keys(void **state)
{
    (void)state;
    /* Malformed vkeys keep the errors of note.h. */
    expect_policy("log example.com/log+00000000\nquorum none\n", OTA_ERR_KEY_FORMAT,
                  "policy line 1");
    expect_policy("log " ORIGIN "+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k\n"
                  "quorum none\n",
                  OTA_ERR_KEYID_MISMATCH, "policy line 1");
    /* Types by role. */
    expect_policy("log $1\nquorum none\n", OTA_ERR_KEY_FORMAT, "log key must have");
    expect_policy("witness w $L\nquorum none\n", OTA_ERR_KEY_FORMAT, "witness key must have");
    /* Duplicates. */
    expect_policy("log $L\nlog $L\nquorum none\n", OTA_ERR_KEY_FORMAT, "duplicate key");
    expect_policy("witness a $1\nwitness b $1\nquorum a\n", OTA_ERR_KEY_FORMAT, "duplicate key");
}

static void test_refuse_same_key_across_roles(void **state)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    uint8_t seed[32];
    char vk[OTA_NOTE_VKEY_SIZE];
    char t[1024];

    (void)state;
    /* L0's key again, as a cosigner key. */
    memset(seed, 0x30, sizeof(seed));
    assert_int_equal(ota_note_signer_from_seed(&s, "w", 1, 0x04, seed), 0);
    ota_note_signer_verifier(&v, s);
    ota_note_verifier_format(vk, &v);
    snprintf(t, sizeof(t), "log $L\nwitness w %s\nquorum w\n", vk);
    expect_policy(t, OTA_ERR_KEY_FORMAT, "duplicate key");
    ota_note_signer_free(s);
}

static void test_refuse_names(void **state)
{
    (void)state;
    expect_policy("witness a $1\nwitness a $2\nquorum a\n", OTA_ERR_FORMAT, "already defined");
    expect_policy("witness a $1\ngroup a any a\nquorum a\n", OTA_ERR_FORMAT, "already defined");
    expect_policy("witness none $1\nquorum none\n", OTA_ERR_FORMAT, "predefined");
    expect_policy("witness a $1\ngroup none any a\nquorum none\n", OTA_ERR_FORMAT, "predefined");
}

static void test_refuse_members(void **state)
{
    (void)state;
    expect_policy("witness a $1\ngroup g any a b\nquorum g\n", OTA_ERR_FORMAT,
                  "member b is not defined");
    expect_policy("witness a $1\ngroup g any a b\nwitness b $2\nquorum g\n", OTA_ERR_FORMAT,
                  "member b is not defined"); /* defined later */
    expect_policy("witness a $1\ngroup g any a g\nquorum g\n", OTA_ERR_FORMAT,
                  "member g is not defined"); /* itself */
    expect_policy("witness a $1\ngroup g any a none\nquorum g\n", OTA_ERR_FORMAT,
                  "\"none\" cannot be a group member");
    expect_policy("witness a $1\nwitness b $2\ngroup g any a b a\nquorum g\n", OTA_ERR_FORMAT,
                  "member a is listed twice");
}

static void test_refuse_thresholds(void **state)
{
    (void)state;
    expect_policy("witness a $1\nwitness b $2\ngroup g 0 a b\nquorum g\n", OTA_ERR_FORMAT,
                  "from 1 to 2");
    expect_policy("witness a $1\nwitness b $2\ngroup g 3 a b\nquorum g\n", OTA_ERR_FORMAT,
                  "from 1 to 2");
    expect_policy("witness a $1\nwitness b $2\ngroup g 01 a b\nquorum g\n", OTA_ERR_FORMAT,
                  "from 1 to 2");
    expect_policy("witness a $1\nwitness b $2\ngroup g two a b\nquorum g\n", OTA_ERR_FORMAT,
                  "all, any");
    expect_policy("witness a $1\nwitness b $2\ngroup g -1 a b\nquorum g\n", OTA_ERR_FORMAT,
                  "all, any");
    expect_policy("witness a $1\nwitness b $2\ngroup g ALL a b\nquorum g\n", OTA_ERR_FORMAT,
                  "all, any");
    expect_policy("witness a $1\nwitness b $2\ngroup g 2 a b\nquorum g\n", 0, NULL);
}

static void test_refuse_quorum_lines(void **state)
{
    (void)state;
    expect_policy("log $L\n", OTA_ERR_FORMAT, "no quorum line");
    expect_policy("", OTA_ERR_FORMAT, "no quorum line");
    expect_policy("witness a $1\nquorum a\nquorum none\n", OTA_ERR_FORMAT, "second quorum");
    expect_policy("quorum a\nwitness a $1\n", OTA_ERR_FORMAT, "quorum a is not defined");
}

/* ---- root.json form ---- */

static int from_json(struct ota_tlog_policy **p, const char *json_tmpl, struct ota_detail *det)
{
    static char text[300 * 1024];
    json_error_t jerr;
    json_t *j;
    int rc;

    expand(text, sizeof(text), json_tmpl);
    j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (j == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    rc = ota_tlog_policy_from_ledger(p, j, det);
    json_decref(j);
    return rc;
}

static void expect_json(const char *tmpl, int want, const char *detail_part)
{
    struct ota_tlog_policy *p = NULL;
    struct ota_detail det = {{0}};
    int rc = from_json(&p, tmpl, &det);

    if (rc != want)
        fail_msg("ledger %s: got %s (%s), want %s", tmpl, ota_errname(rc), det.msg,
                 ota_errname(want));
    if (rc != 0)
        assert_null(p);
    ota_tlog_policy_free(p);
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("ledger: detail \"%s\" lacks \"%s\"", det.msg, detail_part);
}

static void test_ledger_json(void **state)
{
    struct ota_tlog_policy *p = NULL;

    (void)state;
    assert_int_equal(from_json(&p,
                               "{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", "
                               "\"witness w1 $1\", \"witness w2 $2\", \"group g 2 w1 w2\", "
                               "\"quorum g\"]}",
                               NULL),
                     0);
    assert_string_equal(p->origin, ORIGIN);
    assert_int_equal(p->nwitnesses, 2);
    ota_tlog_policy_free(p);
    /* Key rotation: two log keys, both named after the origin. */
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", \"log $M\", \"quorum "
                "none\"]}",
                0, NULL);
    /* The freshness window of root.json (docs/formats/ledger.md). */
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", \"quorum none\"], "
                "\"max_age\": 86400}",
                0, NULL);
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", \"quorum none\"], "
                "\"max_age\": 0}",
                OTA_ERR_FORMAT, "max_age");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", \"quorum none\"], "
                "\"max_age\": \"1d\"}",
                OTA_ERR_FORMAT, "max_age");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", \"quorum none\"], "
                "\"max_age\": 60, \"x\": 1}",
                OTA_ERR_FORMAT, "exactly");
}

static void test_ledger_json_refusals(void **state)
{
    static char big[8192];
    size_t o;

    (void)state;
    expect_json("[]", OTA_ERR_FORMAT, "exactly");
    expect_json("{\"policy\": [\"log $L\", \"quorum none\"]}", OTA_ERR_FORMAT, "exactly");
    expect_json("{\"origin\": \"" ORIGIN "\"}", OTA_ERR_FORMAT, "exactly");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"quorum none\"], \"x\": 1}",
                OTA_ERR_FORMAT, "exactly");
    expect_json("{\"origin\": 5, \"policy\": [\"quorum none\"]}", OTA_ERR_FORMAT, "exactly");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": \"log $L\"}", OTA_ERR_FORMAT, "exactly");
    expect_json("{\"origin\": \"a b\", \"policy\": [\"log $L\", \"quorum none\"]}", OTA_ERR_FORMAT,
                "origin");
    expect_json("{\"origin\": \"\", \"policy\": [\"log $L\", \"quorum none\"]}", OTA_ERR_FORMAT,
                "origin");
    expect_json("{\"origin\": \"a\\u0000b\", \"policy\": [\"log $L\", \"quorum none\"]}",
                OTA_ERR_FORMAT, "origin");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", 7, \"quorum none\"]}",
                OTA_ERR_FORMAT, "policy[1]");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\\nquorum none\"]}",
                OTA_ERR_FORMAT, "policy[0]");
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", \"quorum\\u0000none\"]}",
                OTA_ERR_FORMAT, "policy[1]");
    /* The lines are parsed as a policy. */
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\"]}", OTA_ERR_FORMAT,
                "no quorum");
    /* Origin checks. */
    expect_json("{\"origin\": \"" ORIGIN "\", \"policy\": [\"quorum none\"]}", OTA_ERR_ORIGIN,
                "no log");
    expect_json("{\"origin\": \"other.example/log\", \"policy\": [\"log $L\", \"quorum none\"]}",
                OTA_ERR_ORIGIN, "not named after the origin");
    /* Too many lines. */
    o = (size_t)snprintf(big, sizeof(big), "{\"origin\": \"o\", \"policy\": [");
    for (int i = 0; i <= OTA_TLOG_POLICY_MAX_LINES; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "\"\",");
    snprintf(big + o - 1, sizeof(big) - o + 1, "]}");
    expect_json(big, OTA_ERR_TOO_LARGE, "more than 1024 lines");
}

/* ---- checking cosigned checkpoints ---- */

/* A checkpoint of `size` for origin, signed by log key `log` (-1: none),
 * cosigned by witness i at times[i] (NONE: not at all). */
static struct ota_note *checkpoint(const char *origin, int log, const int64_t *times, int ntimes)
{
    char body[512];
    struct ota_buf b;
    struct ota_note *n = NULL;

    snprintf(body, sizeof(body), "%s\n42\n" ROOT "\n", origin);
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_printf(&b, "%s\n", body), 0);
    if (log >= 0)
        assert_int_equal(ota_note_sign(&b, body, strlen(body), logk[log], NULL), 0);
    for (int i = 0; i < ntimes; i++)
        if (times[i] != NONE)
            assert_int_equal(
                ota_note_cosign(&b, body, strlen(body), (uint64_t)times[i], wit[i], NULL), 0);
    if (log < 0 && b.len == strlen(body) + 1) /* keep it a note: a stranger signs */
        assert_int_equal(ota_note_cosign(&b, body, strlen(body), 1, wit[NW], NULL), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    ota_buf_free(&b);
    return n;
}

static struct ota_tlog_policy *four_policy(void)
{
    struct ota_tlog_policy *p = NULL;

    assert_int_equal(from_json(&p,
                               "{\"origin\": \"" ORIGIN "\", \"policy\": [\"log $L\", "
                               "\"witness w1 $1\", \"witness w2 $2\", \"witness w3 $3\", "
                               "\"witness w4 $4\", \"group g 3 w1 w2 w3 w4\", \"quorum g\"]}",
                               NULL),
                     0);
    return p;
}

static int check(const struct ota_tlog_policy *p, const int64_t *times, int n,
                 struct ota_tlog_policy_result *res, struct ota_detail *det)
{
    struct ota_note *note = checkpoint(ORIGIN, 0, times, n);
    int rc = ota_tlog_policy_verify(res, note, p, NOW, MAX_AGE, SKEW, det);

    ota_note_free(note);
    return rc;
}

static void test_verify_fresh_quorum(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    struct ota_detail det = {{0}};
    const int64_t all[4] = {NOW, NOW - 10, NOW - 3599, NOW + 5};
    const int64_t three[4] = {NOW, NONE, NOW - 100, NOW - 200};

    (void)state;
    assert_int_equal(check(p, all, 4, &res, &det), 0);
    assert_int_equal(res.ncounted, 4);
    assert_int_equal(res.checkpoint.size, 42);
    assert_int_equal(res.log, 0);
    assert_true(res.witnesses[2].counted);
    assert_int_equal(res.witnesses[2].time, NOW - 3599);
    assert_non_null(strstr(det.msg, "quorum met"));
    assert_non_null(strstr(det.msg, "counted: w1, w2, w3, w4"));
    assert_int_equal(check(p, three, 4, &res, &det), 0);
    assert_int_equal(res.ncounted, 3);
    assert_false(res.witnesses[1].cosigned);
    assert_non_null(strstr(det.msg, "counted: w1, w3, w4"));
    ota_tlog_policy_free(p);
}

static void test_verify_below_quorum(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    struct ota_detail det = {{0}};
    const int64_t two[4] = {NOW, NONE, NONE, NOW};

    (void)state;
    res.ncounted = 99;
    assert_int_equal(check(p, two, 4, &res, &det), OTA_ERR_QUORUM);
    assert_int_equal(res.ncounted, 0); /* zeroed on failure */
    assert_non_null(strstr(det.msg, "quorum not met"));
    assert_non_null(strstr(det.msg, "counted: w1, w4"));
    ota_tlog_policy_free(p);
}

/* The replay: a checkpoint whose cosignatures are all old, plus one fresh
 * cosignature from one (compromised) witness. */
static void test_verify_replay_with_one_fresh_cosignature(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    struct ota_detail det = {{0}};
    const int64_t replay[4] = {NOW - 86400, NOW - 86400, NOW - 86399, NOW};
    const int64_t old[4] = {NOW - 86400, NOW - 86400, NOW - 86399, NOW - 86399};
    const int64_t half[4] = {NOW, NOW - 1, NOW - 7200, NOW - 7200};

    (void)state;
    assert_int_equal(check(p, replay, 4, &res, &det), OTA_ERR_STALE);
    assert_non_null(strstr(det.msg, "counted: w4"));
    assert_non_null(strstr(det.msg, "w1, w2, w3"));
    assert_int_equal(check(p, old, 4, &res, &det), OTA_ERR_STALE);
    assert_non_null(strstr(det.msg, "counted: none"));
    assert_int_equal(check(p, half, 4, &res, &det), OTA_ERR_STALE);
    ota_tlog_policy_free(p);
}

static void test_verify_window_bounds(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    const int64_t edges[4] = {NOW - MAX_AGE, NOW + SKEW, NOW, NONE};
    const int64_t too_old[4] = {NOW - MAX_AGE - 1, NOW + SKEW, NOW, NONE};
    const int64_t future[4] = {NOW - MAX_AGE, NOW + SKEW + 1, NOW, NONE};

    (void)state;
    assert_int_equal(check(p, edges, 4, &res, NULL), 0);
    assert_int_equal(check(p, too_old, 4, &res, NULL), OTA_ERR_STALE);
    assert_int_equal(check(p, future, 4, &res, NULL), OTA_ERR_STALE);
    ota_tlog_policy_free(p);
}

static void test_verify_forged_cosignature(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    struct ota_detail det = {{0}};
    const int64_t all[4] = {NOW, NOW, NOW, NOW};
    struct ota_note *n = checkpoint(ORIGIN, 0, all, 4);

    (void)state;
    /* w4's cosignature is forged; w1..w3 alone would meet the quorum. */
    ((uint8_t *)n->sigs[4].sig)[20] ^= 0x40;
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, &det),
                     OTA_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(det.msg, "w4.example"));
    /* A forged time on a genuine signature is a forgery too. */
    ((uint8_t *)n->sigs[4].sig)[20] ^= 0x40;
    ((uint8_t *)n->sigs[4].sig)[7] ^= 0x01;
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL),
                     OTA_ERR_BAD_SIGNATURE);
    ota_note_free(n);
    ota_tlog_policy_free(p);
}

static void test_verify_two_cosignatures_by_one_witness(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    char body[256];
    struct ota_buf b;
    struct ota_note *n = NULL;

    (void)state;
    snprintf(body, sizeof(body), ORIGIN "\n42\n" ROOT "\n");
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_printf(&b, "%s\n", body), 0);
    assert_int_equal(ota_note_sign(&b, body, strlen(body), logk[0], NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ota_note_cosign(&b, body, strlen(body), NOW - 86400, wit[i], NULL), 0);
    /* w1 cosigns again, freshly. */
    assert_int_equal(ota_note_cosign(&b, body, strlen(body), NOW, wit[0], NULL), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL),
                     OTA_ERR_DUP_SIGNATURE);
    ota_note_free(n);
    ota_buf_free(&b);
    ota_tlog_policy_free(p);
}

static void test_verify_log_signature(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    struct ota_detail det = {{0}};
    const int64_t all[4] = {NOW, NOW, NOW, NOW};
    struct ota_note *n;

    (void)state;
    /* No log signature: witnesses alone are not enough. */
    n = checkpoint(ORIGIN, -1, all, 4);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, &det),
                     OTA_ERR_UNVERIFIED);
    assert_non_null(strstr(det.msg, "log key"));
    ota_note_free(n);
    /* Signed by another key with the log's name: unknown, so unverified. */
    n = checkpoint(ORIGIN, 1, all, 4);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL),
                     OTA_ERR_UNVERIFIED);
    ota_note_free(n);
    /* A bad log signature. */
    n = checkpoint(ORIGIN, 0, all, 4);
    ((uint8_t *)n->sigs[0].sig)[0] ^= 1;
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL),
                     OTA_ERR_BAD_SIGNATURE);
    ota_note_free(n);
    ota_tlog_policy_free(p);
}

static void test_verify_origin(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy *q;
    struct ota_tlog_policy_result res;
    struct ota_detail det = {{0}};
    const int64_t all[4] = {NOW, NOW, NOW, NOW};
    struct ota_note *n = checkpoint("other.example/log", 0, all, 4);

    (void)state;
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, &det), OTA_ERR_ORIGIN);
    assert_non_null(strstr(det.msg, "other.example/log"));
    /* A text policy has no origin of its own: the log keys' names decide. */
    q = policy(FOUR_POLICY);
    assert_int_equal(ota_tlog_policy_verify(&res, n, q, NOW, MAX_AGE, SKEW, &det), OTA_ERR_ORIGIN);
    assert_non_null(strstr(det.msg, "no log"));
    ota_note_free(n);
    n = checkpoint(ORIGIN, 0, all, 4);
    assert_int_equal(ota_tlog_policy_verify(&res, n, q, NOW, MAX_AGE, SKEW, NULL), 0);
    ota_note_free(n);
    ota_tlog_policy_free(q);
    ota_tlog_policy_free(p);
}

static void test_verify_rotation_none_and_strangers(void **state)
{
    struct ota_tlog_policy *p;
    struct ota_tlog_policy_result res;
    const int64_t all[NW + 1] = {NOW, NOW, NOW, NONE, NONE, NONE, NOW};
    struct ota_note *n;

    (void)state;
    /* Two log keys: the second signs. A stranger's cosignature is ignored. */
    p = policy("log $L\nlog $M\nwitness a $1\nwitness b $2\nwitness c $3\n"
               "group g all a b c\nquorum g\n");
    n = checkpoint(ORIGIN, 1, all, NW + 1);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL), 0);
    assert_int_equal(res.log, 1);
    assert_int_equal(res.ncounted, 3);
    ota_note_free(n);
    ota_tlog_policy_free(p);
    /* quorum none: the log signature alone. */
    p = policy("log $L\nquorum none\n");
    n = checkpoint(ORIGIN, 0, all, 0);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL), 0);
    assert_int_equal(res.ncounted, 0);
    ota_note_free(n);
    ota_tlog_policy_free(p);
}

static void test_verify_nested_policy_freshness(void **state)
{
    struct ota_tlog_policy *p = policy(SPEC_POLICY);
    struct ota_tlog_policy_result res;
    const int64_t stale_y[NW] = {NOW, NOW, NONE, NOW - 10000, NONE, NONE};
    const int64_t fresh_y[NW] = {NOW, NOW, NONE, NOW - 10000, NOW, NONE};
    const int64_t no_y[NW] = {NOW, NOW, NOW, NONE, NONE, NONE};
    struct ota_note *n;

    (void)state;
    n = checkpoint(ORIGIN, 0, stale_y, NW);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL), OTA_ERR_STALE);
    ota_note_free(n);
    n = checkpoint(ORIGIN, 0, fresh_y, NW);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL), 0);
    assert_false(res.witnesses[3].counted);
    assert_true(res.witnesses[3].cosigned);
    assert_true(res.witnesses[4].counted);
    ota_note_free(n);
    n = checkpoint(ORIGIN, 0, no_y, NW);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, SKEW, NULL), OTA_ERR_QUORUM);
    ota_note_free(n);
    ota_tlog_policy_free(p);
}

static void test_verify_bad_inputs(void **state)
{
    struct ota_tlog_policy *p = four_policy();
    struct ota_tlog_policy_result res;
    const int64_t all[4] = {NOW, NOW, NOW, NOW};
    struct ota_note *n = checkpoint(ORIGIN, 0, all, 4);
    struct ota_note *bad = NULL;
    const char *notcp = "hello\n\n\xe2\x80\x94 k AQIDBAU=\n";

    (void)state;
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, -1, SKEW, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, NOW, MAX_AGE, -1, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tlog_policy_verify(&res, NULL, p, NOW, MAX_AGE, SKEW, NULL),
                     OTA_ERR_INVALID_ARG);
    /* Extreme clocks do not overflow the window. */
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, INT64_MAX, INT64_MAX, INT64_MAX, NULL), 0);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, INT64_MIN, INT64_MAX, INT64_MAX, NULL),
                     OTA_ERR_STALE);
    assert_int_equal(ota_tlog_policy_verify(&res, n, p, INT64_MIN, 0, 0, NULL), OTA_ERR_STALE);
    /* A note that is not a checkpoint. */
    assert_int_equal(ota_note_parse(&bad, notcp, strlen(notcp), NULL), 0);
    assert_int_equal(ota_tlog_policy_verify(&res, bad, p, NOW, MAX_AGE, SKEW, NULL),
                     OTA_ERR_FORMAT);
    ota_note_free(bad);
    ota_note_free(n);
    ota_tlog_policy_free(p);
}

/* Parses text and formats it: 0 and want, or an error. */
static int fa_policy(const char *text, const struct ota_buf *want)
{
    struct ota_tlog_policy *p = NULL;
    struct ota_buf b;
    int rc = ota_tlog_policy_parse(&p, text, strlen(text), NULL);

    ota_buf_init(&b, 1 << 20);
    if (rc == 0)
        rc = ota_tlog_policy_format(&b, p);
    if (rc == 0 && (b.len != want->len || memcmp(b.data, want->data, b.len) != 0))
        rc = OTA_ERR_FORMAT;
    ota_buf_free(&b);
    ota_tlog_policy_free(p);
    return rc;
}

/* STYLE rule 9: each allocation of parse + format fails in turn. */
static void test_alloc_faults(void **state)
{
    static char text[64 * 1024];
    struct ota_tlog_policy *p;
    struct ota_buf want;
    int rc;

    (void)state;
    expand(text, sizeof(text), "log $L http://l/\nlog $M\n" SPEC_WITNESSES);
    p = policy("log $L http://l/\nlog $M\n" SPEC_WITNESSES);
    ota_buf_init(&want, 1 << 20);
    assert_int_equal(ota_tlog_policy_format(&want, p), 0);
    ota_tlog_policy_free(p);
    assert_int_equal(fa_policy(text, &want), 0);
    FA_LOOP(rc, fa_policy(text, &want));
    assert_true(fa_failed_runs() >= 3);
    ota_buf_free(&want);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_spec_example_structure),
        cmocka_unit_test(test_quorum_nested_groups),
        cmocka_unit_test(test_quorum_any_all_k_single_none),
        cmocka_unit_test(test_whitespace_comments_urls),
        cmocka_unit_test(test_long_comment_line),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_refuse_sizes),
        cmocka_unit_test(test_refuse_counts),
        cmocka_unit_test(test_refuse_characters),
        cmocka_unit_test(test_refuse_line_shapes),
        cmocka_unit_test(test_refuse_keys),
        cmocka_unit_test(test_refuse_same_key_across_roles),
        cmocka_unit_test(test_refuse_names),
        cmocka_unit_test(test_refuse_members),
        cmocka_unit_test(test_refuse_thresholds),
        cmocka_unit_test(test_refuse_quorum_lines),
        cmocka_unit_test(test_ledger_json),
        cmocka_unit_test(test_ledger_json_refusals),
        cmocka_unit_test(test_verify_fresh_quorum),
        cmocka_unit_test(test_verify_below_quorum),
        cmocka_unit_test(test_verify_replay_with_one_fresh_cosignature),
        cmocka_unit_test(test_verify_window_bounds),
        cmocka_unit_test(test_verify_forged_cosignature),
        cmocka_unit_test(test_verify_two_cosignatures_by_one_witness),
        cmocka_unit_test(test_verify_log_signature),
        cmocka_unit_test(test_verify_origin),
        cmocka_unit_test(test_verify_rotation_none_and_strangers),
        cmocka_unit_test(test_verify_nested_policy_freshness),
        cmocka_unit_test(test_verify_bad_inputs),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
