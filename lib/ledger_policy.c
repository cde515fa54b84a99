/* Policy authoring: the ledger member of root.json (see
 * otachain/ledger_policy.h). */
#include "otachain/ledger_policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otachain/buf.h"
#include "otachain/publish.h"

/* A quorum: decimal, no sign, no leading zero, at most max. */
static int parse_quorum(uint64_t *out, const char *s, uint64_t max)
{
    uint64_t v = 0;

    *out = 0;
    if (s == NULL || s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
        return OTA_ERR_FORMAT;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return OTA_ERR_FORMAT;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max)
            return OTA_ERR_FORMAT;
    }
    *out = v;
    return 0;
}

/* "http://" or "https://" (scheme case-insensitive, RFC 3986) and a host. */
static bool url_scheme_ok(const char *url)
{
    size_t n = strncasecmp(url, "http://", 7) == 0    ? 7
               : strncasecmp(url, "https://", 8) == 0 ? 8
                                                      : 0;

    return n > 0 && url[n] != '\0' && url[n] != '/';
}

int ota_ledger_witness_parse(struct ota_ledger_witness *w, const char *arg, struct ota_detail *det)
{
    const char *eq = strchr(arg, '=');
    const char *at = eq != NULL ? strchr(eq, '@') : NULL;
    struct ota_note_verifier v;
    size_t nlen;
    size_t vlen;

    memset(w, 0, sizeof(*w));
    if (eq == NULL || at == NULL || eq == arg || at == eq + 1 || at[1] == '\0') {
        ota_detail_set(det, "--witness %s: expected NAME=VKEY@URL", arg);
        return OTA_ERR_INVALID_ARG;
    }
    nlen = (size_t)(eq - arg);
    vlen = (size_t)(at - eq - 1);
    if (nlen > OTA_TLOG_POLICY_MAX_NAME || vlen >= sizeof(w->vkey) ||
        strlen(at + 1) > OTA_TLOG_POLICY_MAX_URL || strpbrk(arg, " \t\n") != NULL ||
        (nlen == 4 && memcmp(arg, "none", 4) == 0) ||
        (nlen == 9 && memcmp(arg, "witnesses", 9) == 0)) {
        ota_detail_set(det, "--witness %s: name, key or URL too long, a space, or a reserved name",
                       arg);
        return OTA_ERR_INVALID_ARG;
    }
    if (ota_note_verifier_parse(&v, eq + 1, vlen, det) != 0 || v.type != OTA_NOTE_TYPE_COSIG_V1) {
        ota_detail_set(det,
                       "--witness %s: VKEY is not a cosignature/v1 verifier key (as printed "
                       "by otachain-witness --init)",
                       arg);
        return OTA_ERR_INVALID_ARG;
    }
    /* Publish can only post to http(s) (tlog-witness over HTTP): refuse any
     * other scheme now rather than at the first publish. */
    if (!url_scheme_ok(at + 1)) {
        ota_detail_set(det,
                       "--witness %.*s: URL '%s' must start with http:// or https:// followed "
                       "by a host (the witness's base URL; publish posts to URL/add-checkpoint)",
                       (int)nlen, arg, at + 1);
        return OTA_ERR_INVALID_ARG;
    }
    memcpy(w->name, arg, nlen);
    memcpy(w->vkey, eq + 1, vlen);
    snprintf(w->url, sizeof(w->url), "%s", at + 1);
    return 0;
}

/* Refuses two witnesses with one key: the quorum would count one signer
 * twice (and the policy parser refuses it anyway, as a malformed policy). */
static int witness_keys_distinct(const struct ota_ledger_witness *ws, size_t nw,
                                 struct ota_detail *det)
{
    struct ota_note_verifier *v = calloc(nw > 0 ? nw : 1, sizeof(*v));
    int rc = v == NULL ? OTA_ERR_NOMEM : 0;

    for (size_t i = 0; rc == 0 && i < nw; i++) {
        rc = ota_note_verifier_parse(&v[i], ws[i].vkey, strlen(ws[i].vkey), det);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (memcmp(v[i].pub, v[j].pub, sizeof(v[i].pub)) == 0 ||
                (v[i].key_id == v[j].key_id && v[i].name_len == v[j].name_len &&
                 memcmp(v[i].name, v[j].name, v[i].name_len) == 0)) {
                ota_detail_set(det,
                               "witness %s: the same key (%s) as witness %s; each witness "
                               "needs its own key (otachain-witness --init)",
                               ws[i].name, v[i].name, ws[j].name);
                rc = OTA_ERR_INVALID_ARG;
            }
        }
    }
    free(v);
    return rc;
}

int ota_ledger_json(json_t **out, const char *origin, const char *log_vkey,
                    const struct ota_ledger_witness *ws, size_t nw, uint64_t quorum,
                    int64_t max_age, struct ota_detail *det)
{
    json_t *lines = json_array();
    json_t *obj = NULL;
    struct ota_tlog_policy *check = NULL;
    struct ota_buf b;
    int rc = lines == NULL ? OTA_ERR_NOMEM : 0;

    *out = NULL;
    ota_buf_init(&b, OTA_TLOG_POLICY_MAX_LINE);
    if (quorum > nw) {
        ota_detail_set(det, "--witness-quorum %" PRIu64 ": only %zu witness(es)", quorum, nw);
        rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0)
        rc = witness_keys_distinct(ws, nw, det);
    if (rc == 0)
        rc = ota_buf_printf(&b, "log %s", log_vkey);
    if (rc == 0 && json_array_append_new(lines, json_string((const char *)b.data)) != 0)
        rc = OTA_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        b.len = 0;
        rc = ota_buf_printf(&b, "witness %s %s %s", ws[i].name, ws[i].vkey, ws[i].url);
        if (rc == 0 && json_array_append_new(lines, json_string((const char *)b.data)) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0 && nw > 0) {
        b.len = 0;
        rc = ota_buf_printf(&b, "group witnesses %" PRIu64, quorum == 0 ? (uint64_t)nw : quorum);
        for (size_t i = 0; rc == 0 && i < nw; i++)
            rc = ota_buf_printf(&b, " %s", ws[i].name);
        if (rc == 0 && json_array_append_new(lines, json_string((const char *)b.data)) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0 &&
        json_array_append_new(lines, json_string(nw > 0 ? "quorum witnesses" : "quorum none")) != 0)
        rc = OTA_ERR_NOMEM;
    if (rc == 0) {
        obj = json_pack("{s:s,s:O,s:I}", "origin", origin, "policy", lines, "max_age",
                        (json_int_t)max_age);
        rc = obj == NULL ? OTA_ERR_NOMEM : 0;
    }
    if (rc == 0)
        rc = ota_tlog_policy_from_ledger(&check, obj, det);
    if (rc == 0)
        *out = obj;
    else
        json_decref(obj);
    ota_tlog_policy_free(check);
    json_decref(lines);
    ota_buf_free(&b);
    return rc;
}

int ota_ledger_rotate_json(json_t *sp, const struct ota_ledger_witness *add, size_t nadd,
                           const char *const *rm, size_t nrm, const char *quorum_arg,
                           struct ota_detail *det)
{
    json_t *old = json_object_get(sp, "x-otachain-ledger");
    struct ota_tlog_policy *p = NULL;
    struct ota_ledger_witness *ws = NULL;
    char logv[OTA_NOTE_VKEY_SIZE];
    json_t *obj = NULL;
    size_t nw = 0;
    uint64_t quorum = 0;
    int64_t max_age = OTA_LEDGER_DEFAULT_MAX_AGE;
    int rc;

    if (old == NULL) {
        ota_detail_set(det, "the root carries no ledger (x-otachain-ledger)");
        return OTA_ERR_NOT_FOUND;
    }
    rc = ota_tlog_policy_from_ledger(&p, old, det);
    if (rc != 0)
        return rc;
    ws = calloc(OTA_TLOG_POLICY_MAX_WITNESSES + 1, sizeof(*ws));
    if (ws == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    if (json_object_get(old, "max_age") != NULL)
        max_age = (int64_t)json_integer_value(json_object_get(old, "max_age"));
    ota_note_verifier_format(logv, &p->logs[0].key);
    for (size_t i = 0; i < p->nwitnesses; i++) {
        bool drop = false;

        for (size_t j = 0; j < nrm; j++)
            drop = drop || strcmp(rm[j], p->witnesses[i].name) == 0;
        if (drop)
            continue;
        snprintf(ws[nw].name, sizeof(ws[nw].name), "%s", p->witnesses[i].name);
        ota_note_verifier_format(ws[nw].vkey, &p->witnesses[i].key);
        snprintf(ws[nw].url, sizeof(ws[nw].url), "%s",
                 p->witnesses[i].url != NULL ? p->witnesses[i].url : "");
        nw++;
    }
    for (size_t j = 0; j < nrm; j++) {
        if (ota_tlog_policy_witness_index(p, rm[j], strlen(rm[j])) < 0) {
            ota_detail_set(det, "--remove-witness %s: not a witness of the ledger policy", rm[j]);
            rc = OTA_ERR_INVALID_ARG;
            goto out;
        }
    }
    for (size_t j = 0; j < nadd; j++) {
        for (size_t i = 0; i < nw; i++) {
            if (strcmp(ws[i].name, add[j].name) == 0) {
                ota_detail_set(det, "--add-witness %s: already a witness", add[j].name);
                rc = OTA_ERR_INVALID_ARG;
                goto out;
            }
        }
        if (nw >= OTA_TLOG_POLICY_MAX_WITNESSES) {
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        ws[nw++] = add[j];
    }
    if (quorum_arg != NULL) {
        if (parse_quorum(&quorum, quorum_arg, nw) != 0 || (quorum == 0 && nw > 0)) {
            ota_detail_set(det, "--witness-quorum %s: expected 1 to %zu", quorum_arg, nw);
            rc = OTA_ERR_INVALID_ARG;
            goto out;
        }
    } else if (!p->quorum_none && p->quorum.group &&
               p->groups[p->quorum.index].threshold < p->groups[p->quorum.index].nmembers) {
        quorum = p->groups[p->quorum.index].threshold; /* else: all */
        if (quorum > nw) {
            ota_detail_set(det,
                           "the quorum of %" PRIu64 " exceeds the %zu witnesses left: give "
                           "--witness-quorum",
                           quorum, nw);
            rc = OTA_ERR_INVALID_ARG;
            goto out;
        }
    }
    rc = ota_ledger_json(&obj, p->origin, logv, ws, nw, quorum, max_age, det);
    if (rc == 0 && json_object_set_new(sp, "x-otachain-ledger", obj) != 0)
        rc = OTA_ERR_NOMEM;
out:
    ota_tlog_policy_free(p);
    free(ws);
    return rc;
}

int ota_ledger_log_key(char vkey[OTA_NOTE_VKEY_SIZE], char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1],
                       const struct ota_tuf_meta *root, struct ota_detail *det)
{
    struct ota_tlog_policy *p = NULL;
    int64_t max_age;
    int rc = ota_publish_policy_of(&p, &max_age, root, det);

    vkey[0] = '\0';
    origin[0] = '\0';
    if (rc == 0 && (p == NULL || p->nlogs == 0)) {
        ota_detail_set(det,
                       "root v%" PRIu64 " names no ledger (the repository was made with "
                       "--no-ledger)",
                       root->version);
        rc = OTA_ERR_NOT_FOUND;
    }
    if (rc == 0) {
        ota_note_verifier_format(vkey, &p->logs[0].key);
        snprintf(origin, OTA_CHECKPOINT_MAX_ORIGIN + 1, "%s", p->origin);
    }
    ota_tlog_policy_free(p);
    return rc;
}
