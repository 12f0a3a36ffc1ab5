/*
 * helper_client.c - the service side of the session helper's download, upload and
 * screenshot requests over a pmux (helper_client.h), with the mapping of every failure to
 * the HTTP status the route answers.
 */
#include "helper_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmux.h"

struct hcl_dl {
    struct pmux_stream *s;
};

struct hcl_upload {
    struct pmux_stream *s;
    int answered; /* the helper sent a terminal frame: stop sending */
    int failed;   /* sending failed (channel down, timeout): the cause is in err */
    int fail_status;
    struct err err;
};

static void set_status(int *status, int v)
{
    if (status)
        *status = v;
}

/* Maps a pmux failure (rc, e already filled) to the HTTP status; returns rc. */
static int mux_fail(int rc, int *status, struct err *e, const char *what)
{
    switch (rc) {
    case ERR_TIMEOUT:
        set_status(status, 504);
        return err_set(e, rc, "The user's session helper did not answer in time (%s)", what);
    case ERR_BUSY:
        set_status(status, 503);
        return err_set(e, rc, "The user's session helper is busy; try again later");
    case ERR_PROTOCOL:
    case ERR_PARSE:
        set_status(status, 502);
        err_prefix(e, "the session helper's answer to %s", what);
        return rc;
    case ERR_NOMEM:
        set_status(status, 500);
        return rc;
    default:
        set_status(status, 503);
        return err_set(e, rc < 0 ? rc : ERR_IO,
                       "The user's session helper is not available (it stopped during %s)", what);
    }
}

/* A frame other than the expected ones: ERROR (the helper's status and message), CANCEL
 * (the helper gave up), anything else (a protocol error). Frees f. */
static int frame_fail(struct pmux_stream *s, struct proto_frame *f, const char *what, int *status,
                      struct err *e)
{
    struct proto_error pe;
    struct err de = ERR_INIT;
    uint32_t type = f->h.type;
    int rc;

    if (type == PROTO_ERROR) {
        rc = proto_error_decode(f->payload, f->h.length, &pe, &de);
        pmux_frame_free(s, f);
        if (rc < 0) {
            set_status(status, 502);
            return err_set(e, ERR_PROTOCOL, "the session helper sent a bad ERROR for %s: %s", what,
                           de.msg);
        }
        set_status(status, pe.status >= 400 && pe.status <= 599 ? pe.status : 500);
        if (!pe.message[0])
            return err_set(e, ERR_IO, "The session helper failed (%s, status %d)", what, pe.status);
        return err_set(e, pe.status == 404 ? ERR_NOT_FOUND : ERR_IO, "%s", pe.message);
    }
    pmux_frame_free(s, f);
    if (type == PROTO_CANCEL) {
        set_status(status, 503);
        return err_set(e, ERR_CANCELLED, "The user's session helper abandoned %s", what);
    }
    set_status(status, 502);
    return err_set(e, ERR_PROTOCOL, "the session helper answered %s with an unexpected %s frame",
                   what, proto_type_name(type));
}

/* Receives the next frame of s, mapping failures. */
static int recv_frame(struct pmux_stream *s, uint32_t timeout_ms, const char *what,
                      struct proto_frame **f, int *status, struct err *e)
{
    int rc = pmux_recv(s, timeout_ms, f, e);
    return rc < 0 ? mux_fail(rc, status, e, what) : 0;
}

/* Opens a request and sends its first (JSON) frame. */
static int open_request(struct pmux *m, uint32_t type, const char *json, size_t len,
                        const char *what, struct pmux_stream **out, int *status, struct err *e)
{
    struct pmux_stream *s = NULL;
    int rc;

    *out = NULL;
    if (!m) {
        set_status(status, 503);
        return err_set(e, ERR_IO, "The user's session helper is not available");
    }
    if ((rc = pmux_open(m, &s, e)) < 0)
        return mux_fail(rc, status, e, what);
    if ((rc = pmux_send(s, type, json, len, e)) < 0) {
        pmux_close(s);
        return mux_fail(rc, status, e, what);
    }
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------------------------- */

int hcl_dl_open(struct pmux *m, const char *url_path, uint32_t timeout_ms, struct hcl_dl **out,
                struct hcl_dl_info *info, int *status, struct err *e)
{
    struct proto_dl_open req;
    struct proto_dl_info di;
    struct proto_frame *f = NULL;
    struct pmux_stream *s = NULL;
    struct hcl_dl *d = NULL;
    char *json = NULL;
    size_t len;
    int rc;

    *out = NULL;
    memset(&req, 0, sizeof(req));
    if (strlen(url_path) >= sizeof(req.path)) {
        set_status(status, 414);
        return err_set(e, ERR_TOO_LARGE, "URI Too Long");
    }
    memcpy(req.path, url_path, strlen(url_path) + 1);
    if (!(d = calloc(1, sizeof(*d)))) {
        set_status(status, 500);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if ((rc = proto_dl_open_encode(&req, &json, &len, e)) < 0) {
        set_status(status, 500);
        goto out;
    }
    if ((rc = open_request(m, PROTO_DL_OPEN, json, len, "a download", &s, status, e)) < 0 ||
        (rc = recv_frame(s, timeout_ms, "a download", &f, status, e)) < 0)
        goto out;
    if (f->h.type != PROTO_DL_INFO) {
        rc = frame_fail(s, f, "a download", status, e); /* frees f */
        goto out;
    }
    rc = proto_dl_info_decode(f->payload, f->h.length, &di, e);
    pmux_frame_free(s, f);
    if (rc == 0 && strcmp(di.kind, "dir") != 0 && strcmp(di.kind, "file") != 0)
        rc = err_set(e, ERR_PROTOCOL, "unknown kind \"%s\"", di.kind);
    if (rc < 0) {
        rc = mux_fail(ERR_PROTOCOL, status, e, "a download");
        goto out;
    }
    memset(info, 0, sizeof(*info));
    info->is_dir = strcmp(di.kind, "dir") == 0;
    info->trailing_slash = di.trailing_slash;
    memcpy(info->name, di.name, sizeof(info->name));
    info->name[sizeof(info->name) - 1] = '\0';
    info->size = di.size;
    info->mtime = di.mtime;
    d->s = s;
    s = NULL;
    *out = d;
    d = NULL;
out:
    pmux_close(s);
    free(d);
    free(json);
    return rc;
}

void hcl_dl_close(struct hcl_dl *d)
{
    if (!d)
        return;
    pmux_close(d->s);
    free(d);
}

/*
 * Receives DATA... END on s into write. want: the bytes expected (UINT64_MAX: any number);
 * *got counts them. A write failure returns ERR_CANCELLED (the caller closes s: CANCEL).
 */
static int recv_stream(struct pmux_stream *s, uint64_t want, uint64_t *got, hcl_write_fn write,
                       void *ctx, uint32_t timeout_ms, const char *what, int *status, struct err *e)
{
    struct proto_frame *f = NULL;
    int rc;

    *got = 0;
    for (;;) {
        if ((rc = recv_frame(s, timeout_ms, what, &f, status, e)) < 0)
            return rc;
        if (f->h.type == PROTO_END) {
            pmux_frame_free(s, f);
            return 0;
        }
        if (f->h.type != PROTO_DATA)
            return frame_fail(s, f, what, status, e);
        if (f->h.length > want - *got) {
            pmux_frame_free(s, f);
            set_status(status, 502);
            return err_set(e, ERR_PROTOCOL, "the session helper sent more bytes than asked for %s",
                           what);
        }
        *got += f->h.length;
        rc = f->h.length ? write(ctx, f->payload, f->h.length) : 0;
        pmux_frame_free(s, f);
        if (rc < 0) {
            set_status(status, 499);
            return err_set(e, ERR_CANCELLED, "the client went away during %s", what);
        }
    }
}

int hcl_dl_read(struct hcl_dl *d, uint64_t offset, uint64_t length, hcl_write_fn write, void *ctx,
                uint32_t timeout_ms, int *status, struct err *e)
{
    struct proto_dl_read req = {offset, length};
    char *json = NULL;
    size_t len;
    uint64_t got = 0;
    int rc;

    if ((rc = proto_dl_read_encode(&req, &json, &len, e)) < 0) {
        set_status(status, 500);
        goto out;
    }
    if ((rc = pmux_send(d->s, PROTO_DL_READ, json, len, e)) < 0) {
        rc = mux_fail(rc, status, e, "a download");
        goto out;
    }
    if ((rc = recv_stream(d->s, length, &got, write, ctx, timeout_ms, "a download", status, e)) < 0)
        goto out;
    if (got < length) {
        set_status(status, 500);
        rc = err_set(e, ERR_IO, "the file got shorter (%llu of %llu bytes sent)",
                     (unsigned long long)got, (unsigned long long)length);
    }
out:
    free(json);
    hcl_dl_close(d);
    return rc;
}

int hcl_dl_list(struct hcl_dl *d, const char *heading, int show_hidden, hcl_write_fn write,
                void *ctx, uint32_t timeout_ms, int *status, struct err *e)
{
    struct proto_dl_list req;
    char *json = NULL;
    size_t len;
    uint64_t got = 0;
    int rc;

    memset(&req, 0, sizeof(req));
    if (strlen(heading) >= sizeof(req.heading)) {
        set_status(status, 414);
        rc = err_set(e, ERR_TOO_LARGE, "URI Too Long");
        goto out;
    }
    memcpy(req.heading, heading, strlen(heading) + 1);
    req.show_hidden = show_hidden;
    if ((rc = proto_dl_list_encode(&req, &json, &len, e)) < 0) {
        set_status(status, 500);
        goto out;
    }
    if ((rc = pmux_send(d->s, PROTO_DL_LIST, json, len, e)) < 0) {
        rc = mux_fail(rc, status, e, "a listing");
        goto out;
    }
    rc = recv_stream(d->s, UINT64_MAX, &got, write, ctx, timeout_ms, "a listing", status, e);
out:
    free(json);
    hcl_dl_close(d);
    return rc;
}

/* ------------------------------------------------------------------------------------- */

int hcl_upload_begin(struct pmux *m, const char *content_type, int64_t content_length,
                     struct hcl_upload **out, int *status, struct err *e)
{
    struct proto_upload_begin req;
    struct hcl_upload *u = NULL;
    char *json = NULL;
    size_t len;
    int rc;

    *out = NULL;
    memset(&req, 0, sizeof(req));
    if (strlen(content_type) >= sizeof(req.content_type)) {
        set_status(status, 400);
        return err_set(e, ERR_TOO_LARGE, "The Content-Type header is too long");
    }
    memcpy(req.content_type, content_type, strlen(content_type) + 1);
    req.content_length = content_length;
    if (!(u = calloc(1, sizeof(*u)))) {
        set_status(status, 500);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if ((rc = proto_upload_begin_encode(&req, &json, &len, e)) < 0) {
        set_status(status, 500);
        goto out;
    }
    if ((rc = open_request(m, PROTO_UPLOAD_BEGIN, json, len, "an upload", &u->s, status, e)) < 0)
        goto out;
    *out = u;
    u = NULL;
out:
    free(u);
    free(json);
    return rc;
}

/* What a feed's pmux write came to (rc, u->err): 0 sent, 1 answered, < 0 failed. */
static int upload_fed(struct hcl_upload *u, int rc, struct err *e)
{
    if (rc == 0)
        return 0;
    if (rc == ERR_CANCELLED) {
        u->answered = 1; /* the helper answered or gave up; finish reads which */
        return 1;
    }
    u->failed = 1;
    rc = mux_fail(rc, &u->fail_status, &u->err, "an upload");
    return err_set(e, rc, "%s", u->err.msg);
}

int hcl_upload_feed(struct hcl_upload *u, const void *data, size_t len, struct err *e)
{
    if (u->answered)
        return 1;
    if (u->failed)
        return err_set(e, u->err.code, "%s", u->err.msg);
    return upload_fed(u, pmux_write_data(u->s, data, len, &u->err), e);
}

int hcl_upload_feed_from(struct hcl_upload *u, pmux_fill_fn fill, void *ctx, uint8_t *spare,
                         size_t max, size_t *sent, struct err *e)
{
    *sent = 0;
    if (u->answered)
        return 1;
    if (u->failed)
        return err_set(e, u->err.code, "%s", u->err.msg);
    return upload_fed(u, pmux_write_data_from(u->s, max, spare, fill, ctx, sent, &u->err), e);
}

int hcl_upload_finish(struct hcl_upload *u, uint32_t timeout_ms, struct hcl_upload_result *res,
                      struct err *e)
{
    struct proto_upload_result ur;
    struct proto_frame *f = NULL;
    struct err se = ERR_INIT, le = ERR_INIT;
    int rc, status = 500;

    memset(res, 0, sizeof(*res));
    if (u->failed) {
        /* a frame may still be queued (an answer that raced the failure): prefer it */
        if (pmux_recv(u->s, 0, &f, &se) < 0) {
            status = u->fail_status;
            rc = err_set(&le, u->err.code, "%s", u->err.msg);
            goto fail;
        }
    } else {
        if (!u->answered)
            (void)pmux_send(u->s, PROTO_END, NULL, 0, &se); /* a failure shows in the recv */
        if ((rc = recv_frame(u->s, timeout_ms, "an upload", &f, &status, &le)) < 0)
            goto fail;
    }
    if (f->h.type != PROTO_UPLOAD_RESULT) {
        rc = frame_fail(u->s, f, "an upload", &status, &le);
        goto fail;
    }
    rc = proto_upload_result_decode(f->payload, f->h.length, &ur, &le);
    pmux_frame_free(u->s, f);
    if (rc < 0) {
        rc = mux_fail(ERR_PROTOCOL, &status, &le, "an upload");
        goto fail;
    }
    res->status = ur.status >= 100 && ur.status <= 599 ? ur.status : 500;
    memcpy(res->message, ur.message, sizeof(res->message));
    res->message[sizeof(res->message) - 1] = '\0';
    pmux_close(u->s);
    free(u);
    return 0;
fail:
    res->status = status;
    snprintf(res->message, sizeof(res->message), "%s", le.msg);
    if (e)
        *e = le;
    pmux_close(u->s);
    free(u);
    return rc;
}

void hcl_upload_abort(struct hcl_upload *u)
{
    if (!u)
        return;
    pmux_close(u->s); /* unfinished: CANCEL */
    free(u);
}

/* ------------------------------------------------------------------------------------- */

struct shot_buf {
    uint8_t *png;
    size_t used, cap;
};

static int shot_write(void *ctx, const void *data, size_t len)
{
    struct shot_buf *b = ctx;
    if (len > b->cap - b->used)
        return ERR_PROTOCOL; /* recv_stream checked the total already; defensive */
    memcpy(b->png + b->used, data, len);
    b->used += len;
    return 0;
}

int hcl_shot_take(struct pmux *m, int width, uint32_t timeout_ms, struct hcl_shot *out, int *status,
                  struct err *e)
{
    struct proto_shot req = {width};
    struct proto_shot_info si;
    struct proto_frame *f = NULL;
    struct pmux_stream *s = NULL;
    struct shot_buf b = {NULL, 0, 0};
    char *json = NULL;
    size_t len;
    uint64_t got = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = proto_shot_encode(&req, &json, &len, e)) < 0) {
        set_status(status, 500);
        goto out;
    }
    if ((rc = open_request(m, PROTO_SHOT, json, len, "a screenshot", &s, status, e)) < 0 ||
        (rc = recv_frame(s, timeout_ms, "a screenshot", &f, status, e)) < 0)
        goto out;
    if (f->h.type != PROTO_SHOT_INFO) {
        rc = frame_fail(s, f, "a screenshot", status, e);
        goto out;
    }
    rc = proto_shot_info_decode(f->payload, f->h.length, &si, e);
    pmux_frame_free(s, f);
    if (rc < 0) {
        rc = mux_fail(ERR_PROTOCOL, status, e, "a screenshot");
        goto out;
    }
    if (!si.size || si.size > HCL_SHOT_MAX) {
        set_status(status, 502);
        rc = err_set(e, ERR_PROTOCOL, "the session helper announced a %llu-byte screenshot",
                     (unsigned long long)si.size);
        goto out;
    }
    if (!(b.png = malloc((size_t)si.size))) {
        set_status(status, 500);
        rc = err_set(e, ERR_NOMEM, "out of memory for a screenshot");
        goto out;
    }
    b.cap = (size_t)si.size;
    if ((rc = recv_stream(s, si.size, &got, shot_write, &b, timeout_ms, "a screenshot", status,
                          e)) < 0)
        goto out;
    if (got != si.size) {
        set_status(status, 502);
        rc = err_set(e, ERR_PROTOCOL, "the session helper sent %llu of %llu screenshot bytes",
                     (unsigned long long)got, (unsigned long long)si.size);
        goto out;
    }
    out->width = si.width;
    out->height = si.height;
    out->png = b.png;
    out->size = b.used;
    b.png = NULL;
out:
    free(b.png);
    free(json);
    pmux_close(s);
    return rc;
}
