/*
 * transfer_routes.c - POST /upload and GET|HEAD /Downloads/Downloads/[path], and the routing
 * decision shared with /screenshot (api_user_target): the user's session helper
 * (helper_client.h), else the upload_dir/download_dir fallback over the engines of
 * service/transfer/. Both paths answer with the same statuses, headers and bodies.
 *
 * Bodies stream both ways in XFER_PIECE pieces: an upload goes from mg_read() to the helper
 * as DATA (or through the request adapter, upload.h, into the temp file); a download goes
 * from the helper's DATA (or the open handle, listing.h) to mg_write(); a listing is sent in
 * HTTP chunks as the helper (or lst_render() here) produces it. Authentication is applied by
 * the router (api.c); the concurrent-upload cap is the upload registry's max_in_flight here
 * and the helper's own (max_concurrent_uploads, passed by the session manager) there.
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <civetweb.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "helper_client.h"
#include "listing.h"
#include "log.h"
#include "name.h"
#include "plat.h"
#include "range.h"
#include "reply.h"
#include "sesm.h"
#include "upload.h"

#define XFER_PIECE          (64 * 1024)
#define XFER_HELPER_PIECE   (256 * 1024) /* upload pieces to a helper: PROTO_DATA_MAX */
#define XFER_EXPIRE_SECONDS 60
#define XFER_DL_PREFIX      "/Downloads/Downloads"

/* ------------------------------------------------------------------------------------- */
/* The routing decision                                                                    */

int api_user_target(struct api *a, const struct api_claims *who, enum api_folder which,
                    struct api_target *out, int *status, struct err *e)
{
    struct err ae = ERR_INIT;
    const char *dir;
    int multi_user, rc;

    memset(out, 0, sizeof(*out));
    api_cfg_read_begin(a);
    multi_user = a->cfg->multi_user;
    api_cfg_read_end(a);
    if (a->sessions) {
        /* multi_user with a token that names no system user: no helper is "its" helper */
        if (!multi_user || who->local_user[0]) {
            rc = sesm_acquire(a->sessions, who->system_username, !multi_user, &out->lease, &ae);
            if (rc == 0)
                return 0;
            if (rc != ERR_NOT_FOUND)
                log_warning("choosing the session helper: %s", ae.msg);
        }
        if (sesm_running_count(a->sessions) > 0) {
            if (status)
                *status = 503;
            if (!who->local_user[0])
                return err_set(e, ERR_NOT_FOUND,
                               "The token names no system user and no console session is "
                               "available");
            return err_set(e, ERR_NOT_FOUND, "No session of user %s is running on this machine",
                           who->local_user);
        }
    }
    if (which == API_FOLDER_NONE) {
        if (status)
            *status = 503;
        return err_set(
            e, ERR_NOT_FOUND,
            "No user session is available for screenshots (no session helper is running)");
    }
    if (status)
        *status = 500;
    api_cfg_read_begin(a);
    dir = which == API_FOLDER_UPLOAD ? a->cfg->upload_dir : a->cfg->download_dir;
    rc = (int)strlen(dir);
    if (dir[0] && (size_t)rc < sizeof(out->folder))
        memcpy(out->folder, dir, (size_t)rc + 1);
    api_cfg_read_end(a);
    if (!rc)
        return err_set(e, ERR_NOT_FOUND, "no %s folder is configured",
                       which == API_FOLDER_UPLOAD ? "upload_dir" : "download_dir");
    if ((size_t)rc >= sizeof(out->folder))
        return err_set(e, ERR_TOO_LARGE, "the folder path is too long");
    return 0;
}

void api_target_release(struct api_target *t)
{
    if (t->lease)
        sesm_release(t->lease);
    t->lease = NULL;
}

/* ------------------------------------------------------------------------------------- */
/* POST /upload                                                                            */

/* Removes stale uploads, at most once every XFER_EXPIRE_SECONDS (called per request). */
static void upload_expire_maybe(struct api *a)
{
    int64_t now = plat_wall_time();
    int due, n;

    plat_mutex_lock(a->lock);
    due = now - a->uploads_expired_at >= XFER_EXPIRE_SECONDS || now < a->uploads_expired_at;
    if (due)
        a->uploads_expired_at = now;
    plat_mutex_unlock(a->lock);
    if (due && (n = upl_registry_expire(a->uploads, now)) > 0)
        log_info("upload: removed %d stale upload(s)", n);
}

/* 200 answers plain text ("uploaded Chunk"), every other status {"error": message}. */
static int upload_answer(struct mg_connection *conn, int status, const char *message)
{
    if (status == 200)
        return http_reply(conn, 200, "text/plain; charset=utf-8", message, strlen(message));
    return http_reply_error(conn, status, message);
}

/* The body into the fallback folder through the local engine (upload.h). */
static int upload_local(struct api *a, struct mg_connection *conn, const char *folder,
                        const char *ctype, long long want, char *buf)
{
    long long got = 0;
    struct upl_request *q = NULL;
    struct upl_result res;
    int n = 0, stopped = 0;

    if (upl_request_begin(a->uploads, folder, ctype, &q, &res) < 0)
        return upload_answer(conn, res.status, res.message);
    while (want < 0 || got < want) {
        if ((n = mg_read(conn, buf, XFER_PIECE)) <= 0)
            break;
        got += n;
        if (upl_request_feed(q, buf, (size_t)n, &res) < 0) {
            stopped = 1; /* the answer is decided; civetweb closes the connection */
            break;
        }
    }
    if (!stopped && (n < 0 || (want >= 0 && got < want))) {
        upl_request_abort(q);
        log_info("upload: the client went away after %lld of %lld body bytes", got, want);
        return http_reply_error(conn, 400, "Incomplete request body");
    }
    upl_request_finish(q, &res);
    if (res.status != 200)
        log_info("upload: %d %s", res.status, res.message);
    return upload_answer(conn, res.status, res.message);
}

/* Reading the body for upload_helper: the connection, the Content-Length (-1: unknown), the
 * bytes read so far and the last mg_read() result (0: end of the body, < 0: an error). */
struct upload_fill {
    struct mg_connection *conn;
    long long want, got;
    int last;
};

/*
 * pmux_fill_fn: the next piece of the body, read by mg_read() straight into buf - a slot of
 * the helper's shared window when there is one, so the decrypted bytes are not copied again
 * on their way to the helper. mg_read gives at most one TLS record (16 KiB) a call; the piece
 * is filled up for fewer, larger DATA frames. Never fails: the end of the body or a read
 * error stops the piece and stays in f->last for the caller.
 */
static int upload_fill(void *ctx, uint8_t *buf, size_t cap, size_t *n, struct err *e)
{
    struct upload_fill *f = ctx;
    size_t have = 0;

    (void)e;
    while (have < cap && (f->want < 0 || f->got + (long long)have < f->want)) {
        if ((f->last = mg_read(f->conn, buf + have, cap - have)) <= 0)
            break;
        have += (size_t)f->last;
    }
    f->got += (long long)have;
    *n = have;
    return 0;
}

/* The body to the user's session helper as DATA; its UPLOAD_RESULT is the answer. */
static int upload_helper(struct mg_connection *conn, const struct sesm_lease *l, const char *ctype,
                         long long want, char *buf)
{
    struct upload_fill fc = {conn, want, 0, 0};
    struct hcl_upload *u = NULL;
    struct hcl_upload_result res;
    struct err e = ERR_INIT;
    size_t sent;
    int stopped = 0, status = 500;

    if (hcl_upload_begin(sesm_lease_mux(l), ctype, want, &u, &status, &e) < 0) {
        log_warning("upload via the helper of session %u: %s", (unsigned)sesm_lease_session(l),
                    e.msg);
        return http_reply_error(conn, status, e.msg);
    }
    while (want < 0 || fc.got < want) {
        if (hcl_upload_feed_from(u, upload_fill, &fc, (uint8_t *)buf, XFER_HELPER_PIECE, &sent,
                                 &e) != 0) {
            stopped = 1; /* answered early, or the helper is gone: finish says which */
            break;
        }
        if (fc.last <= 0)
            break;
    }
    if (!stopped && (fc.last < 0 || (want >= 0 && fc.got < want))) {
        hcl_upload_abort(u); /* CANCEL: the helper deletes the partial data */
        log_info("upload: the client went away after %lld of %lld body bytes", fc.got, want);
        return http_reply_error(conn, 400, "Incomplete request body");
    }
    if (hcl_upload_finish(u, HCL_TIMEOUT_MS, &res, &e) < 0)
        log_warning("upload via the helper of session %u: %s", (unsigned)sesm_lease_session(l),
                    e.msg);
    else if (res.status != 200)
        log_info("upload: %d %s", res.status, res.message);
    return upload_answer(conn, res.status, res.message);
}

int api_upload(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *ctype = mg_get_header(conn, "Content-Type");
    struct api_target t;
    struct err e = ERR_INIT;
    char *buf = NULL;
    int status;

    upload_expire_maybe(a);
    if (api_user_target(a, who, API_FOLDER_UPLOAD, &t, &status, &e) < 0) {
        log_warning("upload: %s", e.msg);
        return http_reply_error(conn, status, status == 500 ? "Upload folder unavailable" : e.msg);
    }
    atomic_fetch_add(&a->uploads_in_flight, 1);
    if (!(buf = malloc(XFER_HELPER_PIECE))) /* big enough for both paths */
        status = http_reply_error(conn, 500, "out of memory");
    else if (t.lease)
        status = upload_helper(conn, t.lease, ctype ? ctype : "", ri->content_length, buf);
    else
        status = upload_local(a, conn, t.folder, ctype ? ctype : "", ri->content_length, buf);
    free(buf);
    api_target_release(&t);
    atomic_fetch_sub(&a->uploads_in_flight, 1);
    return status;
}

unsigned api_uploads_in_flight(struct api *a)
{
    return atomic_load(&a->uploads_in_flight);
}

/* ------------------------------------------------------------------------------------- */
/* GET|HEAD /Downloads/Downloads/[path]                                                    */

/* The listing's head goes out with its first piece, so that a failure before any output
 * (the directory cannot be read) still gets a proper 500. */
struct dl_sink {
    struct mg_connection *conn;
    int started;
};

static void dl_listing_head(struct mg_connection *conn)
{
    http_reply_head(conn, 200, "text/html; charset=utf-8", -1,
                    "Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n");
}

static int dl_chunk_write(void *ctx, const void *data, size_t len)
{
    struct dl_sink *s = ctx;
    if (!s->started) {
        dl_listing_head(s->conn);
        s->started = 1;
    }
    if (!len)
        return 0;
    return mg_send_chunk(s->conn, data, (unsigned int)len) > 0 ? 0 : ERR_IO;
}

/* Raw body bytes of a file download (helper DATA) to the client. */
static int dl_body_write(void *ctx, const void *data, size_t len)
{
    return mg_write(ctx, data, len) > 0 ? 0 : ERR_IO;
}

/* The listing's heading ("/Downloads/Downloads/<decoded rest>") and show_hidden. */
static int dl_listing_args(struct mg_connection *conn, const char *rest, char *heading, size_t cap,
                           int *show_hidden)
{
    char decoded[LST_PATH_MAX + 1];
    char flag[8];

    *show_hidden = 0;
    if (http_query_param(conn, "show_hidden", flag, sizeof(flag)) == 0)
        *show_hidden = strcmp(flag, "1") == 0 || strcmp(flag, "true") == 0;
    /* the path was checked component by component, so the decoded path is valid UTF-8 */
    if (mg_url_decode(rest, (int)strlen(rest), decoded, (int)sizeof(decoded), 0) < 0)
        return ERR_TOO_LARGE;
    snprintf(heading, cap, "%s/%s", XFER_DL_PREFIX, decoded);
    return 0;
}

/* The listing of dir (fallback folder), rendered here. */
static int dl_listing(struct mg_connection *conn, int head, const char *dir, const char *rest)
{
    char heading[LST_PATH_MAX + sizeof(XFER_DL_PREFIX) + 2];
    int show_hidden = 0;
    struct dl_sink sink = {conn, 0};
    struct err e = ERR_INIT;

    if (head) {
        dl_listing_head(conn);
        return 200;
    }
    if (dl_listing_args(conn, rest, heading, sizeof(heading), &show_hidden) < 0)
        return http_reply_error(conn, 414, "URI Too Long");
    if (lst_render(dir, heading, show_hidden, dl_chunk_write, &sink, &e) < 0) {
        log_warning("listing %s: %s", heading, e.msg);
        /* before any output: a proper error; after it only the client can have gone away */
        return sink.started ? 200 : http_reply_error(conn, 500, "Listing failed");
    }
    if (!sink.started)
        dl_listing_head(conn);
    mg_send_chunk(conn, "", 0);
    return 200;
}

/* The listing of the directory the helper opened (d), rendered by the helper. Closes d. */
static int dl_listing_helper(struct mg_connection *conn, int head, struct hcl_dl *d,
                             const char *rest)
{
    char heading[LST_PATH_MAX + sizeof(XFER_DL_PREFIX) + 2];
    int show_hidden = 0, status = 500;
    struct dl_sink sink = {conn, 0};
    struct err e = ERR_INIT;

    if (head) {
        hcl_dl_close(d);
        dl_listing_head(conn);
        return 200;
    }
    if (dl_listing_args(conn, rest, heading, sizeof(heading), &show_hidden) < 0) {
        hcl_dl_close(d);
        return http_reply_error(conn, 414, "URI Too Long");
    }
    if (hcl_dl_list(d, heading, show_hidden, dl_chunk_write, &sink, HCL_TIMEOUT_MS, &status, &e) <
        0) {
        log_warning("listing %s: %s", heading, e.msg);
        if (sink.started)
            return 200; /* after output only the client or the helper can have gone away */
        return http_reply_error(conn, status, status == 500 ? "Listing failed" : e.msg);
    }
    if (!sink.started)
        dl_listing_head(conn);
    mg_send_chunk(conn, "", 0);
    return 200;
}

/*
 * The head of a file download: 304, 416, or 200/206 with its headers. Returns the status;
 * *r tells the range to send (r->length 0 or a 304/416: no body).
 */
static int dl_file_head(struct mg_connection *conn, const char *name, uint64_t size, int64_t mtime,
                        struct rng_result *r)
{
    char modified[RNG_DATE_LEN];
    char extra[256];

    rng_http_date_format(mtime, modified, sizeof(modified));
    if (rng_not_modified(mg_get_header(conn, "If-Modified-Since"), mtime)) {
        snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nCache-Control: no-cache\r\n",
                 modified);
        r->status = 304;
        r->length = 0;
        return http_reply_head(conn, 304, NULL, -1, extra);
    }
    rng_parse(mg_get_header(conn, "Range"), size, r);
    if (r->status == 416) {
        snprintf(extra, sizeof(extra), "Content-Range: %s\r\n", r->content_range);
        r->length = 0;
        return http_reply_head(conn, 416, "text/plain", 0, extra);
    }
    snprintf(extra, sizeof(extra),
             "Last-Modified: %s\r\nAccept-Ranges: bytes\r\nCache-Control: no-cache\r\n"
             "%s%s%s",
             modified, r->status == 206 ? "Content-Range: " : "",
             r->status == 206 ? r->content_range : "", r->status == 206 ? "\r\n" : "");
    return http_reply_head(conn, r->status, rng_content_type(name), (long long)r->length, extra);
}

static int dl_file(struct mg_connection *conn, int head, struct lst_target *t)
{
    struct rng_result r;
    struct err e = ERR_INIT;
    char *buf = NULL;
    uint64_t off, end;
    size_t got;
    int status = dl_file_head(conn, t->name, t->info.size, t->info.mtime, &r);

    if (head || !r.length)
        return status;
    if (!(buf = malloc(XFER_PIECE)))
        return status; /* the client sees a short body and the connection end */
    for (off = r.start, end = r.start + r.length; off < end; off += got) {
        size_t want = end - off < XFER_PIECE ? (size_t)(end - off) : XFER_PIECE;
        if (plat_file_pread(t->file, buf, want, off, &got, &e) < 0 || !got) {
            log_warning("download %s: %s", t->name, got ? e.msg : "the file got shorter");
            break;
        }
        if (mg_write(conn, buf, got) <= 0)
            break; /* the client went away */
    }
    free(buf);
    return status;
}

/* A file the helper opened (d): the same head, then its DATA. Closes d. */
static int dl_file_helper(struct mg_connection *conn, int head, struct hcl_dl *d,
                          const struct hcl_dl_info *info)
{
    struct rng_result r;
    struct err e = ERR_INIT;
    int status = dl_file_head(conn, info->name, info->size, info->mtime, &r);

    if (head || !r.length) {
        hcl_dl_close(d);
        return status;
    }
    if (hcl_dl_read(d, r.start, r.length, dl_body_write, conn, HCL_TIMEOUT_MS, NULL, &e) < 0 &&
        e.code != ERR_CANCELLED)
        log_warning("download %s: %s", info->name, e.msg); /* the client sees a short body */
    return status;
}

/* 301 to the directory's URL with a slash (query kept); a directory without one. */
static int dl_redirect(struct mg_connection *conn, const char *raw)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char *loc = malloc(strlen(raw) + (ri->query_string ? strlen(ri->query_string) : 0) + 32);
    int status;

    if (!loc)
        return http_reply_error(conn, 500, "out of memory");
    sprintf(loc, "Location: %s/%s%s\r\n", raw, ri->query_string ? "?" : "",
            ri->query_string ? ri->query_string : "");
    status = http_reply_head(conn, 301, "text/plain", 0, loc);
    free(loc);
    return status;
}

static int dl_local(struct mg_connection *conn, int head, const char *folder, const char *raw,
                    const char *rest)
{
    char root[LST_PATH_MAX];
    struct lst_target *t = NULL;
    struct err e = ERR_INIT;
    int rc, status;

    if (name_root_resolve(folder, root, sizeof(root), &e) < 0) {
        log_warning("download: %s", e.msg);
        return http_reply_error(conn, 500, "Download folder unavailable");
    }
    if (!(t = calloc(1, sizeof(*t))))
        return http_reply_error(conn, 500, "out of memory");
    if ((rc = lst_resolve(root, rest, t, &e)) < 0) {
        if (rc != ERR_NOT_FOUND)
            log_warning("download: %s", e.msg);
        status = http_reply_error(conn, rc == ERR_NOT_FOUND ? 404 : 500,
                                  rc == ERR_NOT_FOUND ? "Not found" : "Download failed");
        goto out;
    }
    if (t->is_dir && (!t->trailing_slash || !raw[strlen(XFER_DL_PREFIX)]))
        status = dl_redirect(conn, raw);
    else
        status = t->is_dir ? dl_listing(conn, head, t->path, rest) : dl_file(conn, head, t);
out:
    if (t->file)
        plat_file_close(t->file);
    free(t);
    return status;
}

static int dl_helper(struct mg_connection *conn, int head, const struct sesm_lease *l,
                     const char *raw, const char *rest)
{
    struct hcl_dl_info *info = NULL;
    struct hcl_dl *d = NULL;
    struct err e = ERR_INIT;
    int status = 500;

    if (!(info = calloc(1, sizeof(*info))))
        return http_reply_error(conn, 500, "out of memory");
    if (hcl_dl_open(sesm_lease_mux(l), rest, HCL_TIMEOUT_MS, &d, info, &status, &e) < 0) {
        if (status != 404)
            log_warning("download via the helper of session %u: %s",
                        (unsigned)sesm_lease_session(l), e.msg);
        status = http_reply_error(conn, status,
                                  status == 404   ? "Not found"
                                  : status == 500 ? "Download failed"
                                                  : e.msg);
        goto out;
    }
    if (info->is_dir && (!info->trailing_slash || !raw[strlen(XFER_DL_PREFIX)])) {
        hcl_dl_close(d);
        status = dl_redirect(conn, raw);
    } else if (info->is_dir) {
        status = dl_listing_helper(conn, head, d, rest);
    } else {
        status = dl_file_helper(conn, head, d, info);
    }
out:
    free(info);
    return status;
}

int api_downloads(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *raw = ri->local_uri_raw ? ri->local_uri_raw : "";
    int head = strcmp(ri->request_method, "HEAD") == 0;
    size_t plen = strlen(XFER_DL_PREFIX);
    struct api_target t;
    struct err e = ERR_INIT;
    const char *rest;
    int status;

    /* raw is the path as sent (decode_url is off): the engine decodes each component */
    if (strncmp(raw, XFER_DL_PREFIX, plen) != 0 || (raw[plen] != '/' && raw[plen] != '\0'))
        return http_reply_error(conn, 404, "Not found");
    rest = raw[plen] ? raw + plen + 1 : raw + plen;
    if (api_user_target(a, who, API_FOLDER_DOWNLOAD, &t, &status, &e) < 0) {
        log_warning("download: %s", e.msg);
        return http_reply_error(conn, status,
                                status == 500 ? "Download folder unavailable" : e.msg);
    }
    if (t.lease)
        status = dl_helper(conn, head, t.lease, raw, rest);
    else
        status = dl_local(conn, head, t.folder, raw, rest);
    api_target_release(&t);
    return status;
}
