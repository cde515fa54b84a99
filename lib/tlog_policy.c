/* C2SP tlog-policy: parsing, quorum evaluation and checkpoint checks
 * (see otachain/tlog_policy.h).
 *
 * Groups may only name witnesses and groups defined on earlier lines, so
 * group i depends only on groups j < i: one pass in definition order
 * evaluates every group, and no cycle can exist.
 */
#include "otachain/tlog_policy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Items of one line: keyword, name, threshold, members, one spare to
 * detect an over-long line. */
#define MAX_TOKENS (3 + OTA_TLOG_POLICY_MAX_MEMBERS + 1)

struct token {
    const char *s;
    size_t len;
};

static bool tok_is(const struct token *t, const char *word)
{
    size_t n = strlen(word);

    return t->len == n && memcmp(t->s, word, n) == 0;
}

void ota_tlog_policy_free(struct ota_tlog_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nlogs; i++)
        free(p->logs[i].url);
    for (size_t i = 0; i < p->nwitnesses; i++)
        free(p->witnesses[i].url);
    free(p);
}

/* Looks a witness or group name up; false if undefined. */
static bool find_name(const struct ota_tlog_policy *p, const struct token *t,
                      struct ota_tlog_policy_ref *ref)
{
    for (size_t i = 0; i < p->nwitnesses; i++) {
        if (p->witnesses[i].name_len == t->len && memcmp(p->witnesses[i].name, t->s, t->len) == 0) {
            ref->group = false;
            ref->index = (uint8_t)i;
            return true;
        }
    }
    for (size_t i = 0; i < p->ngroups; i++) {
        if (p->groups[i].name_len == t->len && memcmp(p->groups[i].name, t->s, t->len) == 0) {
            ref->group = true;
            ref->index = (uint8_t)i;
            return true;
        }
    }
    return false;
}

/* A new witness or group name: within the cap, not "none", not taken. */
static int check_new_name(const struct ota_tlog_policy *p, const struct token *t, size_t no,
                          struct ota_detail *det)
{
    struct ota_tlog_policy_ref ref;

    if (t->len > OTA_TLOG_POLICY_MAX_NAME) {
        ota_detail_set(det, "policy line %zu: name of %zu bytes exceeds the cap of %d", no, t->len,
                       OTA_TLOG_POLICY_MAX_NAME);
        return OTA_ERR_TOO_LARGE;
    }
    if (tok_is(t, "none")) {
        ota_detail_set(det, "policy line %zu: \"none\" is predefined and cannot be defined", no);
        return OTA_ERR_FORMAT;
    }
    if (find_name(p, t, &ref)) {
        ota_detail_set(det, "policy line %zu: name %.*s is already defined", no, (int)t->len, t->s);
        return OTA_ERR_FORMAT;
    }
    return 0;
}

/* Parses a vkey of the required type and refuses duplicates of any key
 * already in the policy. */
static int parse_key(struct ota_note_verifier *v, const struct ota_tlog_policy *p,
                     const struct token *t, uint8_t type, size_t no, struct ota_detail *det)
{
    const struct ota_note_verifier *other;
    size_t i;
    int rc;

    rc = ota_note_verifier_parse(v, t->s, t->len, det);
    if (rc != 0) {
        char where[48];

        snprintf(where, sizeof(where), "policy line %zu", no);
        ota_detail_prefix(det, where);
        return rc;
    }
    if (v->type != type) {
        ota_detail_set(det, "policy line %zu: a %s key must have signature type 0x%02x", no,
                       type == OTA_NOTE_TYPE_ED25519 ? "log" : "witness", type);
        return OTA_ERR_KEY_FORMAT;
    }
    for (i = 0; i < p->nlogs + p->nwitnesses; i++) {
        other = i < p->nlogs ? &p->logs[i].key : &p->witnesses[i - p->nlogs].key;
        if (memcmp(other->pub, v->pub, sizeof(v->pub)) == 0) {
            ota_detail_set(det,
                           "policy line %zu: duplicate key (the same public key is "
                           "already listed)",
                           no);
            return OTA_ERR_KEY_FORMAT;
        }
        if (other->name_len == v->name_len && other->key_id == v->key_id &&
            memcmp(other->name, v->name, v->name_len) == 0) {
            ota_detail_set(det,
                           "policy line %zu: key name and key ID of %s collide with an "
                           "earlier key",
                           no, v->name);
            return OTA_ERR_KEY_FORMAT;
        }
    }
    return 0;
}

static int copy_url(char **url, const struct token *t, size_t no, struct ota_detail *det)
{
    if (t->len > OTA_TLOG_POLICY_MAX_URL) {
        ota_detail_set(det, "policy line %zu: URL of %zu bytes exceeds the cap of %d", no, t->len,
                       OTA_TLOG_POLICY_MAX_URL);
        return OTA_ERR_TOO_LARGE;
    }
    *url = malloc(t->len + 1);
    if (*url == NULL)
        return OTA_ERR_NOMEM;
    memcpy(*url, t->s, t->len);
    (*url)[t->len] = '\0';
    return 0;
}

static int parse_log(struct ota_tlog_policy *p, const struct token *tk, size_t n, size_t no,
                     struct ota_detail *det)
{
    struct ota_tlog_policy_log *lg;
    int rc;

    if (n < 2 || n > 3) {
        ota_detail_set(det, "policy line %zu: expected \"log <vkey> [<url>]\"", no);
        return OTA_ERR_FORMAT;
    }
    if (p->nlogs == OTA_TLOG_POLICY_MAX_LOGS) {
        ota_detail_set(det, "policy line %zu: more than %d logs", no, OTA_TLOG_POLICY_MAX_LOGS);
        return OTA_ERR_TOO_LARGE;
    }
    lg = &p->logs[p->nlogs];
    rc = parse_key(&lg->key, p, &tk[1], OTA_NOTE_TYPE_ED25519, no, det);
    if (rc == 0 && n == 3)
        rc = copy_url(&lg->url, &tk[2], no, det);
    if (rc != 0) {
        memset(lg, 0, sizeof(*lg));
        return rc;
    }
    p->nlogs++;
    return 0;
}

static int parse_witness(struct ota_tlog_policy *p, const struct token *tk, size_t n, size_t no,
                         struct ota_detail *det)
{
    struct ota_tlog_policy_witness *w;
    int rc;

    if (n < 3 || n > 4) {
        ota_detail_set(det, "policy line %zu: expected \"witness <name> <vkey> [<url>]\"", no);
        return OTA_ERR_FORMAT;
    }
    if (p->nwitnesses == OTA_TLOG_POLICY_MAX_WITNESSES) {
        ota_detail_set(det, "policy line %zu: more than %d witnesses", no,
                       OTA_TLOG_POLICY_MAX_WITNESSES);
        return OTA_ERR_TOO_LARGE;
    }
    rc = check_new_name(p, &tk[1], no, det);
    if (rc != 0)
        return rc;
    w = &p->witnesses[p->nwitnesses];
    rc = parse_key(&w->key, p, &tk[2], OTA_NOTE_TYPE_COSIG_V1, no, det);
    if (rc == 0 && n == 4)
        rc = copy_url(&w->url, &tk[3], no, det);
    if (rc != 0) {
        memset(w, 0, sizeof(*w));
        return rc;
    }
    memcpy(w->name, tk[1].s, tk[1].len);
    w->name[tk[1].len] = '\0';
    w->name_len = tk[1].len;
    p->nwitnesses++;
    return 0;
}

static int parse_group(struct ota_tlog_policy *p, const struct token *tk, size_t n, size_t no,
                       struct ota_detail *det)
{
    struct ota_tlog_policy_group *g;
    size_t nmembers;
    uint64_t k;
    int rc;

    if (n < 4) {
        ota_detail_set(det, "policy line %zu: expected \"group <name> <all|any|k> <member>...\"",
                       no);
        return OTA_ERR_FORMAT;
    }
    if (p->ngroups == OTA_TLOG_POLICY_MAX_GROUPS) {
        ota_detail_set(det, "policy line %zu: more than %d groups", no, OTA_TLOG_POLICY_MAX_GROUPS);
        return OTA_ERR_TOO_LARGE;
    }
    rc = check_new_name(p, &tk[1], no, det);
    if (rc != 0)
        return rc;
    nmembers = n - 3;
    if (nmembers > OTA_TLOG_POLICY_MAX_MEMBERS) {
        ota_detail_set(det, "policy line %zu: more than %d group members", no,
                       OTA_TLOG_POLICY_MAX_MEMBERS);
        return OTA_ERR_TOO_LARGE;
    }
    g = &p->groups[p->ngroups];
    for (size_t i = 0; i < nmembers; i++) {
        const struct token *m = &tk[3 + i];
        struct ota_tlog_policy_ref ref;

        if (tok_is(m, "none")) {
            ota_detail_set(det, "policy line %zu: \"none\" cannot be a group member", no);
            goto format;
        }
        if (!find_name(p, m, &ref)) {
            ota_detail_set(det, "policy line %zu: member %.*s is not defined on an earlier line",
                           no, (int)m->len, m->s);
            goto format;
        }
        for (size_t j = 0; j < i; j++) {
            if (g->members[j].group == ref.group && g->members[j].index == ref.index) {
                ota_detail_set(det, "policy line %zu: member %.*s is listed twice", no, (int)m->len,
                               m->s);
                goto format;
            }
        }
        g->members[i] = ref;
    }
    if (tok_is(&tk[2], "all")) {
        k = nmembers;
    } else if (tok_is(&tk[2], "any")) {
        k = 1;
    } else if (ota_checkpoint_parse_u64(&k, tk[2].s, tk[2].len, UINT64_MAX) != 0 || k < 1 ||
               k > nmembers) {
        ota_detail_set(det,
                       "policy line %zu: threshold must be all, any or a number from 1 to "
                       "%zu",
                       no, nmembers);
        goto format;
    }
    memcpy(g->name, tk[1].s, tk[1].len);
    g->name[tk[1].len] = '\0';
    g->name_len = tk[1].len;
    g->threshold = (unsigned)k;
    g->nmembers = nmembers;
    p->ngroups++;
    return 0;
format:
    memset(g, 0, sizeof(*g));
    return OTA_ERR_FORMAT;
}

static int parse_quorum(struct ota_tlog_policy *p, bool *have, const struct token *tk, size_t n,
                        size_t no, struct ota_detail *det)
{
    if (n != 2) {
        ota_detail_set(det, "policy line %zu: expected \"quorum <name|none>\"", no);
        return OTA_ERR_FORMAT;
    }
    if (*have) {
        ota_detail_set(det, "policy line %zu: a second quorum line", no);
        return OTA_ERR_FORMAT;
    }
    if (tok_is(&tk[1], "none")) {
        p->quorum_none = true;
    } else if (!find_name(p, &tk[1], &p->quorum)) {
        ota_detail_set(det, "policy line %zu: quorum %.*s is not defined on an earlier line", no,
                       (int)tk[1].len, tk[1].s);
        return OTA_ERR_FORMAT;
    }
    *have = true;
    return 0;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static int parse_text(struct ota_tlog_policy *p, const char *text, size_t len,
                      struct ota_detail *det)
{
    struct token tk[MAX_TOKENS];
    bool have_quorum = false;
    size_t pos = 0;
    size_t no = 0;
    int rc;

    if (len > OTA_TLOG_POLICY_MAX_LEN) {
        ota_detail_set(det, "policy of %zu bytes exceeds the cap of %u", len,
                       OTA_TLOG_POLICY_MAX_LEN);
        return OTA_ERR_TOO_LARGE;
    }
    for (size_t i = 0, line = 1; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c == '\n')
            line++;
        else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
            ota_detail_set(det, "policy line %zu: control character 0x%02x", line, c);
            return OTA_ERR_FORMAT;
        }
    }
    if (len > 0 && text[len - 1] != '\n') {
        ota_detail_set(det, "policy does not end in a newline");
        return OTA_ERR_FORMAT;
    }
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = (size_t)(nl - line);
        size_t n = 0;
        size_t i = 0;

        no++;
        pos += llen + 1;
        if (llen > OTA_TLOG_POLICY_MAX_LINE) {
            ota_detail_set(det, "policy line %zu of %zu bytes exceeds the cap of %d", no, llen,
                           OTA_TLOG_POLICY_MAX_LINE);
            return OTA_ERR_TOO_LARGE;
        }
        while (i < llen && is_ws(line[i]))
            i++;
        if (i == llen || line[i] == '#')
            continue; /* blank or comment: any number of words */
        while (i < llen) {
            size_t start;

            while (i < llen && is_ws(line[i]))
                i++;
            if (i == llen)
                break;
            if (n == MAX_TOKENS) {
                ota_detail_set(det, "policy line %zu has too many items", no);
                return OTA_ERR_TOO_LARGE;
            }
            start = i;
            while (i < llen && !is_ws(line[i]))
                i++;
            tk[n].s = line + start;
            tk[n].len = i - start;
            n++;
        }
        if (tok_is(&tk[0], "log"))
            rc = parse_log(p, tk, n, no, det);
        else if (tok_is(&tk[0], "witness"))
            rc = parse_witness(p, tk, n, no, det);
        else if (tok_is(&tk[0], "group"))
            rc = parse_group(p, tk, n, no, det);
        else if (tok_is(&tk[0], "quorum"))
            rc = parse_quorum(p, &have_quorum, tk, n, no, det);
        else {
            ota_detail_set(det, "policy line %zu: unknown keyword %.*s", no,
                           (int)(tk[0].len > 32 ? 32 : tk[0].len), tk[0].s);
            rc = OTA_ERR_FORMAT;
        }
        if (rc != 0)
            return rc;
    }
    if (!have_quorum) {
        ota_detail_set(det, "policy has no quorum line");
        return OTA_ERR_FORMAT;
    }
    return 0;
}

int ota_tlog_policy_parse(struct ota_tlog_policy **out, const char *text, size_t len,
                          struct ota_detail *det)
{
    struct ota_tlog_policy *p;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (text == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return OTA_ERR_NOMEM;
    rc = parse_text(p, text, len, det);
    if (rc != 0) {
        ota_tlog_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int ota_tlog_policy_from_ledger(struct ota_tlog_policy **out, const json_t *ledger,
                                struct ota_detail *det)
{
    struct ota_tlog_policy *p = NULL;
    struct ota_buf text;
    const json_t *origin;
    const json_t *lines;
    const char *o;
    size_t olen;
    size_t i;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (ledger == NULL)
        return OTA_ERR_INVALID_ARG;
    origin = json_object_get(ledger, "origin");
    lines = json_object_get(ledger, "policy");
    /* "max_age" (docs/formats/ledger.md) is the device's freshness window:
     * optional here, read by the client rule, a positive integer. */
    if (!json_is_object(ledger) ||
        json_object_size(ledger) != 2 + (json_object_get(ledger, "max_age") != NULL) ||
        !json_is_string(origin) || !json_is_array(lines) ||
        (json_object_get(ledger, "max_age") != NULL &&
         (!json_is_integer(json_object_get(ledger, "max_age")) ||
          json_integer_value(json_object_get(ledger, "max_age")) <= 0))) {
        ota_detail_set(det, "x-otachain-ledger must be an object with exactly \"origin\" (a "
                            "string), \"policy\" (an array of strings) and optionally "
                            "\"max_age\" (seconds, > 0)");
        return OTA_ERR_FORMAT;
    }
    o = json_string_value(origin);
    olen = json_string_length(origin);
    if (olen > OTA_CHECKPOINT_MAX_ORIGIN || memchr(o, '\0', olen) != NULL ||
        !ota_note_name_valid(o, olen)) {
        ota_detail_set(det,
                       "x-otachain-ledger: origin is not a valid log key name (1 to %d "
                       "bytes, no space or '+')",
                       OTA_CHECKPOINT_MAX_ORIGIN);
        return OTA_ERR_FORMAT;
    }
    if (json_array_size(lines) > OTA_TLOG_POLICY_MAX_LINES) {
        ota_detail_set(det, "x-otachain-ledger: policy has more than %d lines",
                       OTA_TLOG_POLICY_MAX_LINES);
        return OTA_ERR_TOO_LARGE;
    }
    ota_buf_init(&text, OTA_TLOG_POLICY_MAX_LEN);
    rc = 0;
    for (i = 0; rc == 0 && i < json_array_size(lines); i++) {
        const json_t *l = json_array_get(lines, i);
        const char *s = json_is_string(l) ? json_string_value(l) : "";
        size_t n = json_is_string(l) ? json_string_length(l) : 0;

        if (!json_is_string(l) || memchr(s, '\n', n) != NULL || memchr(s, '\0', n) != NULL) {
            ota_detail_set(det, "x-otachain-ledger: policy[%zu] is not a string holding one line",
                           i);
            rc = OTA_ERR_FORMAT;
            break;
        }
        rc = ota_buf_append(&text, s, n);
        if (rc == 0)
            rc = ota_buf_append(&text, "\n", 1);
        if (rc == OTA_ERR_TOO_LARGE)
            ota_detail_set(det, "x-otachain-ledger: policy exceeds the cap of %u bytes",
                           OTA_TLOG_POLICY_MAX_LEN);
    }
    if (rc == 0)
        rc = ota_tlog_policy_parse(&p, (const char *)text.data, text.len, det);
    ota_buf_free(&text);
    if (rc != 0) {
        ota_detail_prefix(det, "x-otachain-ledger");
        return rc;
    }
    if (p->nlogs == 0) {
        ota_detail_set(det, "x-otachain-ledger: the policy lists no log");
        rc = OTA_ERR_ORIGIN;
    }
    for (i = 0; rc == 0 && i < p->nlogs; i++) {
        if (p->logs[i].key.name_len != olen || memcmp(p->logs[i].key.name, o, olen) != 0) {
            ota_detail_set(det, "x-otachain-ledger: log key %s is not named after the origin %s",
                           p->logs[i].key.name, o);
            rc = OTA_ERR_ORIGIN;
        }
    }
    if (rc != 0) {
        ota_tlog_policy_free(p);
        return rc;
    }
    memcpy(p->origin, o, olen);
    p->origin[olen] = '\0';
    p->origin_len = olen;
    *out = p;
    return 0;
}

static int format_ref(struct ota_buf *out, const struct ota_tlog_policy *p,
                      const struct ota_tlog_policy_ref *r)
{
    if (r->group)
        return ota_buf_append(out, p->groups[r->index].name, p->groups[r->index].name_len);
    return ota_buf_append(out, p->witnesses[r->index].name, p->witnesses[r->index].name_len);
}

int ota_tlog_policy_format(struct ota_buf *out, const struct ota_tlog_policy *p)
{
    char vkey[OTA_NOTE_VKEY_SIZE];
    size_t old;
    int rc = 0;

    if (out == NULL || p == NULL)
        return OTA_ERR_INVALID_ARG;
    old = out->len;
    for (size_t i = 0; rc == 0 && i < p->nlogs; i++) {
        ota_note_verifier_format(vkey, &p->logs[i].key);
        rc = ota_buf_printf(out, "log %s%s%s\n", vkey, p->logs[i].url ? " " : "",
                            p->logs[i].url ? p->logs[i].url : "");
    }
    for (size_t i = 0; rc == 0 && i < p->nwitnesses; i++) {
        const struct ota_tlog_policy_witness *w = &p->witnesses[i];

        ota_note_verifier_format(vkey, &w->key);
        rc = ota_buf_append_str(out, "witness ");
        if (rc == 0)
            rc = ota_buf_append(out, w->name, w->name_len);
        if (rc == 0)
            rc = ota_buf_printf(out, " %s%s%s\n", vkey, w->url ? " " : "", w->url ? w->url : "");
    }
    for (size_t i = 0; rc == 0 && i < p->ngroups; i++) {
        const struct ota_tlog_policy_group *g = &p->groups[i];

        rc = ota_buf_append_str(out, "group ");
        if (rc == 0)
            rc = ota_buf_append(out, g->name, g->name_len);
        if (rc == 0)
            rc = ota_buf_printf(out, " %u", g->threshold);
        for (size_t j = 0; rc == 0 && j < g->nmembers; j++) {
            rc = ota_buf_append(out, " ", 1);
            if (rc == 0)
                rc = format_ref(out, p, &g->members[j]);
        }
        if (rc == 0)
            rc = ota_buf_append(out, "\n", 1);
    }
    if (rc == 0) {
        rc = ota_buf_append_str(out, "quorum ");
        if (rc == 0)
            rc = p->quorum_none ? ota_buf_append_str(out, "none") : format_ref(out, p, &p->quorum);
        if (rc == 0)
            rc = ota_buf_append(out, "\n", 1);
    }
    if (rc != 0 && out->data != NULL) {
        out->len = old;
        out->data[old] = '\0';
    }
    return rc;
}

int ota_tlog_policy_witness_index(const struct ota_tlog_policy *p, const char *name, size_t len)
{
    if (p == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < p->nwitnesses; i++)
        if (p->witnesses[i].name_len == len && memcmp(p->witnesses[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

bool ota_tlog_policy_quorum_met(const struct ota_tlog_policy *p, const bool *witnessed)
{
    bool sat[OTA_TLOG_POLICY_MAX_GROUPS];

    if (p == NULL)
        return false;
    if (p->quorum_none)
        return true;
    if (witnessed == NULL)
        return false;
    if (!p->quorum.group)
        return witnessed[p->quorum.index];
    for (size_t i = 0; i <= p->quorum.index; i++) {
        const struct ota_tlog_policy_group *g = &p->groups[i];
        unsigned count = 0;

        for (size_t j = 0; j < g->nmembers; j++) {
            const struct ota_tlog_policy_ref *m = &g->members[j];

            count += m->group ? sat[m->index] : witnessed[m->index];
        }
        sat[i] = count >= g->threshold;
    }
    return sat[p->quorum.index];
}

bool ota_tlog_policy_quorum_met_names(const struct ota_tlog_policy *p, const char *const *names,
                                      size_t nnames)
{
    bool witnessed[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};

    if (p == NULL || (names == NULL && nnames > 0))
        return false;
    for (size_t i = 0; i < nnames; i++) {
        int w =
            names[i] != NULL ? ota_tlog_policy_witness_index(p, names[i], strlen(names[i])) : -1;

        if (w >= 0)
            witnessed[w] = true;
    }
    return ota_tlog_policy_quorum_met(p, witnessed);
}

/* Appends printf text to d[*len..size), truncating (advisory text). */
static void __attribute__((format(printf, 4, 5)))
cat(char *d, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*len + 1 >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(d + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        d[*len] = '\0';
    else
        *len = (size_t)n >= size - *len ? size - 1 : *len + (size_t)n;
}

/* Appends the names of the witnesses with flag set, or "none". */
static void cat_names(char *d, size_t size, size_t *len, const struct ota_tlog_policy *p,
                      const bool *flag)
{
    bool any = false;

    for (size_t i = 0; i < p->nwitnesses; i++) {
        if (flag[i]) {
            cat(d, size, len, "%s%s", any ? ", " : " ", p->witnesses[i].name);
            any = true;
        }
    }
    if (!any)
        cat(d, size, len, " none");
}

static void set_detail(struct ota_detail *det, const struct ota_tlog_policy *p,
                       const struct ota_tlog_policy_result *r, int64_t lo, int64_t hi,
                       const char *verdict)
{
    bool counted[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};
    bool outside[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};
    char msg[OTA_DETAIL_LEN];
    size_t len = 0;

    if (det == NULL)
        return;
    for (size_t i = 0; i < p->nwitnesses; i++) {
        counted[i] = r->witnesses[i].counted;
        outside[i] = r->witnesses[i].cosigned && !r->witnesses[i].counted;
    }
    msg[0] = '\0';
    cat(msg, sizeof(msg), &len, "%s at size %" PRIu64 "; counted:", verdict, r->checkpoint.size);
    cat_names(msg, sizeof(msg), &len, p, counted);
    cat(msg, sizeof(msg), &len, "; cosigned outside [%" PRId64 ", %" PRId64 "]:", lo, hi);
    cat_names(msg, sizeof(msg), &len, p, outside);
    ota_detail_set(det, "%s", msg);
}

int ota_tlog_policy_verify(struct ota_tlog_policy_result *res, const struct ota_note *note,
                           const struct ota_tlog_policy *p, int64_t now, int64_t max_age,
                           int64_t skew, struct ota_detail *det)
{
    struct ota_note_verifier *vs = NULL;
    struct ota_note_check *checks = NULL;
    bool cosigned[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};
    bool counted[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};
    size_t logidx[OTA_TLOG_POLICY_MAX_LOGS];
    size_t nlog = 0;
    size_t nv;
    size_t nverified = 0;
    size_t i;
    int64_t lo;
    int64_t hi;
    int rc;

    if (res == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(res, 0, sizeof(*res));
    if (note == NULL || p == NULL || max_age < 0 || skew < 0)
        return OTA_ERR_INVALID_ARG;
    rc = ota_checkpoint_parse(&res->checkpoint, note->text, note->text_len, det);
    if (rc != 0)
        goto out;
    if (p->origin_len > 0 && (res->checkpoint.origin_len != p->origin_len ||
                              memcmp(res->checkpoint.origin, p->origin, p->origin_len) != 0)) {
        ota_detail_set(det, "checkpoint origin %s is not the ledger's origin %s",
                       res->checkpoint.origin, p->origin);
        rc = OTA_ERR_ORIGIN;
        goto out;
    }
    vs = calloc(p->nlogs + p->nwitnesses + 1, sizeof(*vs));
    checks = calloc(p->nlogs + p->nwitnesses + 1, sizeof(*checks));
    if (vs == NULL || checks == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    /* Logs named after the origin first (entries 0..nlog), then the
     * witnesses (entries nlog + i). */
    for (i = 0; i < p->nlogs; i++) {
        if (p->logs[i].key.name_len == res->checkpoint.origin_len &&
            memcmp(p->logs[i].key.name, res->checkpoint.origin, res->checkpoint.origin_len) == 0) {
            logidx[nlog] = i;
            vs[nlog++] = p->logs[i].key;
        }
    }
    if (nlog == 0) {
        ota_detail_set(det, "no log in the policy has the origin %s", res->checkpoint.origin);
        rc = OTA_ERR_ORIGIN;
        goto out;
    }
    for (i = 0; i < p->nwitnesses; i++)
        vs[nlog + i] = p->witnesses[i].key;
    nv = nlog + p->nwitnesses;
    rc = ota_note_verify(checks, &nverified, note, vs, nv, det);
    if (rc != 0)
        goto out;
    for (i = 0; i < nlog && !checks[i].verified; i++)
        ;
    if (i == nlog) {
        ota_detail_set(det, "checkpoint for %s carries no signature by the log key",
                       res->checkpoint.origin);
        rc = OTA_ERR_UNVERIFIED;
        goto out;
    }
    res->log = logidx[i];

    lo = now < INT64_MIN + max_age ? INT64_MIN : now - max_age;
    hi = now > INT64_MAX - skew ? INT64_MAX : now + skew;
    res->nwitnesses = p->nwitnesses;
    for (i = 0; i < p->nwitnesses; i++) {
        struct ota_tlog_policy_witness_state *w = &res->witnesses[i];
        const struct ota_note_check *c = &checks[nlog + i];
        /* Verified cosignature times are at most 2^63 - 1. */
        int64_t t = (int64_t)c->timestamp;

        w->cosigned = c->verified;
        w->time = c->verified ? c->timestamp : 0;
        w->counted = c->verified && t >= lo && t <= hi;
        cosigned[i] = w->cosigned;
        counted[i] = w->counted;
        res->ncounted += w->counted;
    }
    if (ota_tlog_policy_quorum_met(p, counted)) {
        set_detail(det, p, res, lo, hi, "quorum met");
        rc = 0;
    } else if (ota_tlog_policy_quorum_met(p, cosigned)) {
        set_detail(det, p, res, lo, hi, "quorum met only with stale cosignatures");
        rc = OTA_ERR_STALE;
    } else {
        set_detail(det, p, res, lo, hi, "quorum not met");
        rc = OTA_ERR_QUORUM;
    }
out:
    free(vs);
    free(checks);
    if (rc != 0)
        memset(res, 0, sizeof(*res));
    return rc;
}
