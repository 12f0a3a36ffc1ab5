/*
 * transfer_routes.c - POST /upload and GET|HEAD /Downloads/Downloads/[path] over the engines
 * of service/transfer/, and the choice of the user's folder for both (api_user_folder).
 *
 * Bodies stream both ways in XFER_PIECE pieces: an upload goes from mg_read() through the
 * request adapter (upload.h) into the temp file; a download goes from the open handle
 * (listing.h) to mg_write(); a listing is sent in HTTP chunks as lst_render() produces it.
 * Authentication is applied by the router (api.c); the concurrent-upload cap is the upload
 * registry's max_in_flight (max_concurrent_uploads).
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <civetweb.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "listing.h"
#include "log.h"
#include "name.h"
#include "plat.h"
#include "range.h"
#include "reply.h"
#include "upload.h"

#define XFER_PIECE          (64 * 1024)
#define XFER_EXPIRE_SECONDS 60
#define XFER_DL_PREFIX      "/Downloads/Downloads"

int api_user_folder(const struct cfg *c, const struct api_claims *who, enum api_folder which,
                    char *out, size_t cap, struct err *e)
{
    /* The session-helper issue replaces this with who's own Downloads folder. */
    const char *dir = which == API_FOLDER_UPLOAD ? c->upload_dir : c->download_dir;
    (void)who;
    if (!dir[0])
        return err_set(e, ERR_NOT_FOUND, "no %s folder is configured",
                       which == API_FOLDER_UPLOAD ? "upload_dir" : "download_dir");
    if (strlen(dir) >= cap)
        return err_set(e, ERR_TOO_LARGE, "the folder path is too long");
    snprintf(out, cap, "%s", dir);
    return 0;
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
static int upload_answer(struct mg_connection *conn, const struct upl_result *res)
{
    if (res->status == 200)
        return http_reply(conn, 200, "text/plain; charset=utf-8", res->message,
                          strlen(res->message));
    return http_reply_error(conn, res->status, res->message);
}

int api_upload(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *ctype = mg_get_header(conn, "Content-Type");
    long long want = ri->content_length, got = 0;
    char folder[CFG_PATH_MAX];
    struct err e = ERR_INIT;
    struct upl_request *q = NULL;
    struct upl_result res;
    char *buf = NULL;
    int n = 0, stopped = 0, status;

    upload_expire_maybe(a);
    if (api_user_folder(a->cfg, who, API_FOLDER_UPLOAD, folder, sizeof(folder), &e) < 0) {
        log_warning("upload: %s", e.msg);
        return http_reply_error(conn, 500, "Upload folder unavailable");
    }
    if (!(buf = malloc(XFER_PIECE)))
        return http_reply_error(conn, 500, "out of memory");
    if (upl_request_begin(a->uploads, folder, ctype ? ctype : "", &q, &res) < 0) {
        status = upload_answer(conn, &res);
        goto out;
    }
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
        status = http_reply_error(conn, 400, "Incomplete request body");
        goto out;
    }
    upl_request_finish(q, &res);
    if (res.status != 200)
        log_info("upload: %d %s", res.status, res.message);
    status = upload_answer(conn, &res);
out:
    free(buf);
    return status;
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

static int dl_listing(struct mg_connection *conn, int head, const char *dir, const char *rest)
{
    char heading[LST_PATH_MAX + sizeof(XFER_DL_PREFIX) + 2];
    char decoded[LST_PATH_MAX + 1];
    char flag[8];
    int show_hidden = 0;
    struct dl_sink sink = {conn, 0};
    struct err e = ERR_INIT;

    if (head) {
        dl_listing_head(conn);
        return 200;
    }
    if (http_query_param(conn, "show_hidden", flag, sizeof(flag)) == 0)
        show_hidden = strcmp(flag, "1") == 0 || strcmp(flag, "true") == 0;
    /* lst_resolve accepted every component, so the decoded path is valid UTF-8 */
    if (mg_url_decode(rest, (int)strlen(rest), decoded, (int)sizeof(decoded), 0) < 0)
        return http_reply_error(conn, 414, "URI Too Long");
    snprintf(heading, sizeof(heading), "%s/%s", XFER_DL_PREFIX, decoded);
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

static int dl_file(struct mg_connection *conn, int head, struct lst_target *t)
{
    char modified[RNG_DATE_LEN];
    char extra[256];
    struct rng_result r;
    struct err e = ERR_INIT;
    char *buf = NULL;
    uint64_t off, end;
    size_t got;

    rng_http_date_format(t->info.mtime, modified, sizeof(modified));
    if (rng_not_modified(mg_get_header(conn, "If-Modified-Since"), t->info.mtime)) {
        snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nCache-Control: no-cache\r\n",
                 modified);
        return http_reply_head(conn, 304, NULL, -1, extra);
    }
    rng_parse(mg_get_header(conn, "Range"), t->info.size, &r);
    if (r.status == 416) {
        snprintf(extra, sizeof(extra), "Content-Range: %s\r\n", r.content_range);
        return http_reply_head(conn, 416, "text/plain", 0, extra);
    }
    snprintf(extra, sizeof(extra),
             "Last-Modified: %s\r\nAccept-Ranges: bytes\r\nCache-Control: no-cache\r\n"
             "%s%s%s",
             modified, r.status == 206 ? "Content-Range: " : "",
             r.status == 206 ? r.content_range : "", r.status == 206 ? "\r\n" : "");
    http_reply_head(conn, r.status, rng_content_type(t->name), (long long)r.length, extra);
    if (head || !r.length)
        return r.status;
    if (!(buf = malloc(XFER_PIECE)))
        return r.status; /* the client sees a short body and the connection end */
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
    return r.status;
}

int api_downloads(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *raw = ri->local_uri_raw ? ri->local_uri_raw : "";
    int head = strcmp(ri->request_method, "HEAD") == 0;
    size_t plen = strlen(XFER_DL_PREFIX);
    char folder[CFG_PATH_MAX], root[LST_PATH_MAX];
    struct lst_target *t = NULL;
    struct err e = ERR_INIT;
    const char *rest;
    int rc, status;

    /* raw is the path as sent (decode_url is off): the engine decodes each component */
    if (strncmp(raw, XFER_DL_PREFIX, plen) != 0 || (raw[plen] != '/' && raw[plen] != '\0'))
        return http_reply_error(conn, 404, "Not found");
    rest = raw[plen] ? raw + plen + 1 : raw + plen;
    if (api_user_folder(a->cfg, who, API_FOLDER_DOWNLOAD, folder, sizeof(folder), &e) < 0 ||
        name_root_resolve(folder, root, sizeof(root), &e) < 0) {
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
    if (t->is_dir && (!t->trailing_slash || !raw[plen])) {
        char *loc = malloc(strlen(raw) + (ri->query_string ? strlen(ri->query_string) : 0) + 32);
        if (!loc) {
            status = http_reply_error(conn, 500, "out of memory");
            goto out;
        }
        sprintf(loc, "Location: %s/%s%s\r\n", raw, ri->query_string ? "?" : "",
                ri->query_string ? ri->query_string : "");
        status = http_reply_head(conn, 301, "text/plain", 0, loc);
        free(loc);
        goto out;
    }
    status = t->is_dir ? dl_listing(conn, head, t->path, rest) : dl_file(conn, head, t);
out:
    if (t && t->file)
        plat_file_close(t->file);
    free(t);
    return status;
}
