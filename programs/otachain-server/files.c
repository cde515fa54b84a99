/* The public repository layout and file downloads (server.h): GET and
 * HEAD, Range (single and multipart/byteranges), ETag / If-None-Match,
 * cache headers by path, sendfile on plain connections without a rate
 * limit (libevent file segments). Nothing here touches the database. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/crypto.h"
#include "otachain/serve_range.h"
#include "server.h"

/* Paths that are replaced in place: revalidated on every use. A staged
 * file (docs/formats/ledger.md, "Staging") is removed when its publish is
 * abandoned, so its name may come back with other bytes. */
static bool mutable_path(const char *path)
{
    return strncmp(path, "staging/", 8) == 0 || strcmp(path, "metadata/timestamp.json") == 0 ||
           strcmp(path, "metadata/root.json") == 0 || strcmp(path, "ledger/checkpoint") == 0;
}

static enum srv_bytes_kind kind_of(const char *path)
{
    if (strncmp(path, "metadata/", 9) == 0 || strncmp(path, "staging/", 8) == 0)
        return SRV_BYTES_METADATA;
    if (strncmp(path, "ledger/", 7) == 0)
        return SRV_BYTES_LEDGER;
    if (strncmp(path, "chunks/", 7) == 0)
        return SRV_BYTES_PACK;
    if (strncmp(path, "deltas/", 7) == 0)
        return SRV_BYTES_DELTA;
    return SRV_BYTES_TARGET;
}

static const char *type_of(const char *path)
{
    size_t n = strlen(path);

    if (n > 5 && strcmp(path + n - 5, ".json") == 0)
        return "application/json";
    if (strcmp(path, "ledger/checkpoint") == 0 ||
        strncmp(path, "ledger/root-checkpoint/", 23) == 0 ||
        strncmp(path, "ledger/index/", 13) == 0)
        return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

/* A path of the public layout: one of the six top directories, then
 * segments of printable ASCII without '%', none empty, "." or "..", or
 * starting with '.' (no hidden or temporary files). */
static bool layout_path(const char *p)
{
    static const char *const tops[] = {"metadata/", "targets/", "chunks/",
                                       "deltas/",   "ledger/",  "staging/"};
    bool top = false;
    size_t seg = 0;
    size_t n = strlen(p);

    for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
        top = top || strncmp(p, tops[i], strlen(tops[i])) == 0;
    if (!top || n == 0 || p[n - 1] == '/')
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            if (i == seg || p[seg] == '.')
                return false;
            seg = i + 1;
            continue;
        }
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '%' ||
            p[i] == '\\')
            return false;
    }
    return true;
}

void srv_files_serve(struct srv_req *r, const char *path)
{
    char fs[PATH_MAX];

    if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "GET, HEAD");
        srv_reply_error(r, 405, OTA_ERR_INVALID_ARG, "the repository is read-only (GET, HEAD)");
        return;
    }
    if (!layout_path(path) ||
        snprintf(fs, sizeof(fs), "%s/%s", r->srv->repo.public_dir, path) >= (int)sizeof(fs)) {
        srv_reply_error(r, 404, OTA_ERR_NOT_FOUND, "no such file in the repository");
        return;
    }
    r->bytes_kind = kind_of(path);
    srv_files_send(r, fs, !mutable_path(path), NULL, type_of(path));
}

void srv_public_route(struct srv_req *r)
{
    srv_files_serve(r, r->path + 1);
}

/* Adds bytes [first, last] of seg to out. */
static int add_seg(struct evbuffer *out, struct evbuffer_file_segment *seg, uint64_t first,
                   uint64_t last)
{
    return evbuffer_add_file_segment(out, seg, (ev_off_t)first, (ev_off_t)(last - first + 1));
}

void srv_files_send(struct srv_req *r, const char *fs_path, bool immutable, const char *etag,
                    const char *content_type)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(r->req);
    struct ota_range ranges[OTA_RANGE_MAX];
    struct evbuffer_file_segment *seg = NULL;
    struct evbuffer *out = NULL;
    enum ota_range_verdict v;
    char tag[96];
    char buf[160];
    const char *inm;
    struct stat st;
    size_t n = 0;
    int fd;

    fd = open(fs_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (fd < 0 && e != ENOENT && e != ENOTDIR && e != ELOOP)
            srv_reply_error(r, 500, OTA_ERR_IO, "cannot open the file");
        else
            srv_reply_error(r, 404, OTA_ERR_NOT_FOUND, "no such file");
        return;
    }
    if (etag != NULL)
        snprintf(tag, sizeof(tag), "\"%s\"", etag);
    else
        snprintf(tag, sizeof(tag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st.st_ino,
                 (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec);
    evhttp_add_header(hdr, "ETag", tag);
    evhttp_add_header(hdr, "Accept-Ranges", "bytes");
    evhttp_add_header(hdr, "Cache-Control",
                      immutable ? "public, max-age=31536000, immutable" : "no-cache");
    inm = evhttp_find_header(in, "If-None-Match");
    if (inm != NULL && (strcmp(inm, tag) == 0 || strcmp(inm, "*") == 0)) {
        close(fd);
        srv_reply(r, 304, NULL, NULL);
        return;
    }
    v = ota_serve_range_parse(ranges, &n, evhttp_find_header(in, "Range"), (uint64_t)st.st_size);
    /* If-Range with another tag: the whole file. */
    if (v != OTA_RANGE_FULL && evhttp_find_header(in, "If-Range") != NULL &&
        strcmp(evhttp_find_header(in, "If-Range"), tag) != 0)
        v = OTA_RANGE_FULL;
    if (v == OTA_RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(buf, sizeof(buf), "bytes */%" PRIu64, (uint64_t)st.st_size);
        evhttp_add_header(hdr, "Content-Range", buf);
        srv_reply_error(r, 416, OTA_ERR_INVALID_ARG, "no requested range lies in the file");
        return;
    }
    if (r->method == EVHTTP_REQ_HEAD) {
        close(fd);
        snprintf(buf, sizeof(buf), "%" PRIu64, (uint64_t)st.st_size);
        evhttp_add_header(hdr, "Content-Length", buf);
        srv_reply(r, 200, content_type, NULL);
        return;
    }
    out = evbuffer_new();
    /* Plain sockets send file segments with sendfile; a TLS connection
     * maps them. Not under a rate limit: libevent's sendfile path writes a
     * whole segment at once, past the token bucket (public.rate_limit). */
    if (out != NULL && r->l->ssl == NULL && r->l->rate == NULL)
        evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
    seg = out != NULL && st.st_size > 0
              ? evbuffer_file_segment_new(fd, 0, st.st_size, EVBUF_FS_CLOSE_ON_FREE)
              : NULL;
    if (out == NULL || (st.st_size > 0 && seg == NULL)) {
        if (seg == NULL)
            close(fd);
        if (out != NULL)
            evbuffer_free(out);
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    if (seg == NULL)
        close(fd);
    if (v == OTA_RANGE_FULL) {
        if (seg != NULL && add_seg(out, seg, 0, (uint64_t)st.st_size - 1) != 0)
            goto fail;
        evbuffer_file_segment_free(seg);
        srv_reply(r, 200, content_type, out);
        return;
    }
    if (n == 1) {
        snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, ranges[0].first,
                 ranges[0].last, (uint64_t)st.st_size);
        evhttp_add_header(hdr, "Content-Range", buf);
        if (add_seg(out, seg, ranges[0].first, ranges[0].last) != 0)
            goto fail;
        evbuffer_file_segment_free(seg);
        srv_reply(r, 206, content_type, out);
        return;
    }
    {
        uint8_t rnd[12];
        char boundary[2 * sizeof(rnd) + 1];
        char ctype[128];

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto fail;
        ota_hex_encode(boundary, rnd, sizeof(rnd));
        for (size_t i = 0; i < n; i++) {
            if (evbuffer_add_printf(out,
                                    "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64
                                    "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                                    i == 0 ? "" : "\r\n", boundary, content_type, ranges[i].first,
                                    ranges[i].last, (uint64_t)st.st_size) < 0 ||
                add_seg(out, seg, ranges[i].first, ranges[i].last) != 0)
                goto fail;
        }
        if (evbuffer_add_printf(out, "\r\n--%s--\r\n", boundary) < 0)
            goto fail;
        snprintf(ctype, sizeof(ctype), "multipart/byteranges; boundary=%s", boundary);
        evbuffer_file_segment_free(seg);
        srv_reply(r, 206, ctype, out);
        return;
    }
fail:
    evbuffer_file_segment_free(seg);
    evbuffer_free(out);
    srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
}
