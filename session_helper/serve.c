/*
 * serve.c - the helper's request server over one pmux (serve.h): the handshake, one worker
 * thread per request (bounded), and the handlers for downloads, uploads, screenshots and
 * PING (file mappings: profile_put.c). Log records are forwarded to the service as LOG frames when
 * asked.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "helper"
#include "listing.h"
#include "log.h"
#include "name.h"
#include "plat.h"
#include "pmux.h"
#include "profile_put.h"
#include "proto.h"
#include "pshm.h"
#include "shot.h"
#include "upload.h"

#define HLP_READY_TIMEOUT_MS 30000u
#define HLP_UPLOAD_IDLE_MS   300000u /* an upload with no frame for 5 minutes is dropped */
#define HLP_NOT_FOUND        "Not found"
#define HLP_DOWNLOAD_FAILED  "Download failed"
#define HLP_NO_FOLDER        "The Downloads folder is not available"

enum hlp_slot_state { HLP_SLOT_FREE = 0, HLP_SLOT_BUSY, HLP_SLOT_DONE };

struct hlp_slot {
    struct plat_thread *thread;
    enum hlp_slot_state state;
};

struct hlp_server {
    struct pmux *mux;
    int have_root;
    char root[LST_PATH_MAX]; /* the Downloads folder's final path */
    struct upl_registry *uploads;
    int have_profile;
    char profile[LST_PATH_MAX]; /* the user's profile folder (file mappings) */
    struct plat_mutex *lock;
    struct plat_cond *cond;
    int closed;   /* on_close has run */
    int stopping; /* no new workers */
    char close_reason[ERR_MSG_MAX];
    unsigned max_workers;
    struct hlp_slot *slots;
};

struct hlp_job {
    struct hlp_server *srv;
    struct pmux_stream *s;
    struct proto_frame *first;
    unsigned slot;
};

/* ---- sending ------------------------------------------------------------------------- */

/* Encodes a JSON control message with proto_<name>_encode and sends it as type. */
#define HLP_SEND(s, type, name, msg, e)                                                            \
    do {                                                                                           \
        char *j_ = NULL;                                                                           \
        size_t n_ = 0;                                                                             \
        if (proto_##name##_encode((msg), &j_, &n_, (e)) == 0)                                      \
            pmux_send((s), (type), j_, n_, (e));                                                   \
        free(j_);                                                                                  \
    } while (0)

static void hlp_error(struct pmux_stream *s, int status, const char *message)
{
    struct err e = ERR_INIT;
    if (pmux_send_error(s, status, message, &e) < 0)
        log_debug("request %u: cannot send ERROR %d: %s", pmux_stream_id(s), status, e.msg);
}

static void hlp_upload_result(struct pmux_stream *s, const struct upl_result *res)
{
    struct proto_upload_result r;
    struct err e = ERR_INIT;
    memset(&r, 0, sizeof(r));
    r.status = res->status;
    snprintf(r.message, sizeof(r.message), "%s", res->message);
    HLP_SEND(s, PROTO_UPLOAD_RESULT, upload_result, &r, &e);
}

static void hlp_end(struct pmux_stream *s)
{
    pmux_send(s, PROTO_END, NULL, 0, NULL);
}

/* ---- downloads ----------------------------------------------------------------------- */

static void hlp_dl_read(struct pmux_stream *s, struct lst_target *t, const struct proto_frame *f)
{
    struct proto_dl_read rq;
    struct err e = ERR_INIT;
    uint64_t sent = 0;

    if (proto_dl_read_decode(f->payload, f->h.length, &rq, &e) < 0) {
        hlp_error(s, 400, e.msg);
        return;
    }
    if (t->is_dir || !t->file) {
        hlp_error(s, 400, "Not a file");
        return;
    }
    /* the file straight into the channel (POSIX: spliced, never copied through here) */
    if (pmux_write_file(s, t->file, rq.offset, rq.length, &sent, &e) < 0) {
        if (e.code == ERR_CANCELLED || e.code == ERR_TIMEOUT) {
            log_debug("request %u: download of %s stopped: %s", pmux_stream_id(s), t->name, e.msg);
            return;
        }
        /* a read error; or the channel is down, and then this ERROR goes nowhere either */
        log_warning("sending %s: %s", t->name, e.msg);
        hlp_error(s, 500, HLP_DOWNLOAD_FAILED);
        return;
    }
    log_debug("request %u: sent %llu bytes of %s from offset %llu", pmux_stream_id(s),
              (unsigned long long)sent, t->name, (unsigned long long)rq.offset);
    hlp_end(s); /* fewer bytes than asked when the file got shorter */
}

struct hlp_list_ctx {
    struct pmux_stream *s;
    struct err e;
    int failed;
};

static int hlp_list_write(void *ctx, const void *data, size_t len)
{
    struct hlp_list_ctx *c = ctx;
    if (pmux_write_data(c->s, data, len, &c->e) < 0) {
        c->failed = 1;
        return ERR_CANCELLED;
    }
    return 0;
}

static void hlp_dl_list(struct pmux_stream *s, struct lst_target *t, const struct proto_frame *f)
{
    struct proto_dl_list *rq = calloc(1, sizeof(*rq));
    struct hlp_list_ctx c;
    struct err e = ERR_INIT;

    memset(&c, 0, sizeof(c));
    c.s = s;
    if (!rq) {
        hlp_error(s, 500, HLP_DOWNLOAD_FAILED);
        goto out;
    }
    if (proto_dl_list_decode(f->payload, f->h.length, rq, &e) < 0) {
        hlp_error(s, 400, e.msg);
        goto out;
    }
    if (!t->is_dir) {
        hlp_error(s, 400, "Not a directory");
        goto out;
    }
    if (lst_render(t->path, rq->heading, rq->show_hidden, hlp_list_write, &c, &e) < 0) {
        if (c.failed) {
            log_debug("request %u: listing stopped: %s", pmux_stream_id(s), c.e.msg);
        } else {
            log_warning("listing %s: %s", t->path, e.msg);
            hlp_error(s, 500, HLP_DOWNLOAD_FAILED);
        }
        goto out;
    }
    log_debug("request %u: listed %s", pmux_stream_id(s), t->path);
    hlp_end(s);
out:
    free(rq);
}

static void hlp_download(struct hlp_server *srv, struct pmux_stream *s,
                         const struct proto_frame *first)
{
    struct proto_dl_open *rq = calloc(1, sizeof(*rq));
    struct lst_target *t = calloc(1, sizeof(*t));
    struct proto_dl_info *info = calloc(1, sizeof(*info));
    struct proto_frame *f = NULL;
    struct err e = ERR_INIT;
    int rc;

    if (!rq || !t || !info) {
        hlp_error(s, 500, HLP_DOWNLOAD_FAILED);
        goto out;
    }
    if (proto_dl_open_decode(first->payload, first->h.length, rq, &e) < 0) {
        hlp_error(s, 400, e.msg);
        goto out;
    }
    if (!srv->have_root) {
        hlp_error(s, 503, HLP_NO_FOLDER);
        goto out;
    }
    rc = lst_resolve(srv->root, rq->path, t, &e);
    if (rc == ERR_NOT_FOUND) {
        log_debug("request %u: not found: %s", pmux_stream_id(s), e.msg);
        hlp_error(s, 404, HLP_NOT_FOUND);
        goto out;
    }
    if (rc < 0) {
        log_warning("resolving a download: %s", e.msg);
        hlp_error(s, 500, HLP_DOWNLOAD_FAILED);
        goto out;
    }
    snprintf(info->kind, sizeof(info->kind), "%s", t->is_dir ? "dir" : "file");
    info->trailing_slash = t->trailing_slash;
    snprintf(info->name, sizeof(info->name), "%s", t->name);
    if (t->is_dir) {
        struct plat_file_info st;
        if (plat_path_stat(t->path, &st, NULL) == 0)
            info->mtime = st.mtime;
    } else {
        info->size = t->info.size;
        info->mtime = t->info.mtime;
    }
    HLP_SEND(s, PROTO_DL_INFO, dl_info, info, &e);
    if (e.code < 0)
        goto out;
    if (pmux_recv(s, UINT32_MAX, &f, &e) < 0)
        goto out; /* the channel ended */
    switch (f->h.type) {
    case PROTO_DL_READ:
        hlp_dl_read(s, t, f);
        break;
    case PROTO_DL_LIST:
        hlp_dl_list(s, t, f);
        break;
    case PROTO_CANCEL:
        break;
    default:
        hlp_error(s, 400, "Expected DL_READ, DL_LIST or CANCEL");
        break;
    }
out:
    if (f)
        pmux_frame_free(s, f);
    if (t)
        plat_file_close(t->file);
    free(t);
    free(info);
    free(rq);
}

/* ---- uploads ------------------------------------------------------------------------- */

static void hlp_upload(struct hlp_server *srv, struct pmux_stream *s,
                       const struct proto_frame *first)
{
    struct proto_upload_begin *rq = calloc(1, sizeof(*rq));
    struct upl_request *q = NULL;
    struct upl_result res;
    struct err e = ERR_INIT;
    int done = 0;

    memset(&res, 0, sizeof(res));
    if (!rq) {
        res.status = 500;
        snprintf(res.message, sizeof(res.message), "Out of memory");
        hlp_upload_result(s, &res);
        goto out;
    }
    if (proto_upload_begin_decode(first->payload, first->h.length, rq, &e) < 0) {
        res.status = 400;
        snprintf(res.message, sizeof(res.message), "Bad upload request: %.400s", e.msg);
        hlp_upload_result(s, &res);
        goto out;
    }
    if (!srv->have_root) {
        res.status = 503;
        snprintf(res.message, sizeof(res.message), "%s", HLP_NO_FOLDER);
        hlp_upload_result(s, &res);
        goto out;
    }
    if (upl_request_begin(srv->uploads, srv->root, rq->content_type, &q, &res) < 0) {
        q = NULL;
        hlp_upload_result(s, &res);
        goto out;
    }
    while (!done) {
        struct proto_frame *f = NULL;
        if (pmux_recv(s, HLP_UPLOAD_IDLE_MS, &f, &e) < 0) {
            log_debug("request %u: upload abandoned: %s", pmux_stream_id(s), e.msg);
            upl_request_abort(q);
            q = NULL;
            break;
        }
        switch (f->h.type) {
        case PROTO_DATA:
            if (upl_request_feed(q, f->payload, f->h.length, &res) < 0) {
                /* answer at once; the service stops sending, the rest is dropped */
                struct upl_result ignored;
                hlp_upload_result(s, &res);
                upl_request_finish(q, &ignored);
                q = NULL;
                done = 1;
            }
            break;
        case PROTO_END:
            upl_request_finish(q, &res);
            q = NULL;
            hlp_upload_result(s, &res);
            done = 1;
            break;
        case PROTO_CANCEL:
            upl_request_abort(q);
            q = NULL;
            done = 1;
            break;
        default:
            upl_request_abort(q);
            q = NULL;
            res.status = 400;
            snprintf(res.message, sizeof(res.message), "Bad upload request: unexpected %s",
                     proto_type_name(f->h.type));
            hlp_upload_result(s, &res);
            done = 1;
            break;
        }
        pmux_frame_free(s, f);
    }
    if (res.status >= 500)
        log_warning("upload failed: %d %s", res.status, res.message);
    else
        log_debug("request %u: upload answered %d %s (%llu bytes through the shared window "
                  "so far)",
                  pmux_stream_id(s), res.status, res.message,
                  (unsigned long long)pmux_shared_bytes(srv->mux));
out:
    if (q)
        upl_request_abort(q);
    free(rq);
}

/* ---- screenshots --------------------------------------------------------------------- */

static void hlp_shot(struct pmux_stream *s, const struct proto_frame *first)
{
    struct proto_shot rq;
    struct proto_shot_info info;
    struct shot_png png;
    struct err e = ERR_INIT;
    int rc;

    memset(&png, 0, sizeof(png));
    if (proto_shot_decode(first->payload, first->h.length, &rq, &e) < 0) {
        hlp_error(s, 400, e.msg);
        goto out;
    }
    rc = shot_capture_png(rq.width, &png, &e);
    if (rc < 0) {
        int status = rc == ERR_NOT_FOUND || rc == ERR_UNSUPPORTED ? 503
                     : rc == ERR_INVALID                          ? 400
                                                                  : 500;
        if (status == 500)
            log_warning("screenshot failed: %s", e.msg);
        hlp_error(s, status, e.msg);
        goto out;
    }
    memset(&info, 0, sizeof(info));
    info.width = png.width;
    info.height = png.height;
    info.size = png.len;
    HLP_SEND(s, PROTO_SHOT_INFO, shot_info, &info, &e);
    if (e.code < 0 || pmux_write_data(s, png.data, png.len, &e) < 0) {
        log_debug("request %u: screenshot not delivered: %s", pmux_stream_id(s), e.msg);
        goto out;
    }
    log_debug("request %u: screenshot %dx%d, %zu bytes of PNG", pmux_stream_id(s), png.width,
              png.height, png.len);
    hlp_end(s);
out:
    shot_png_free(&png);
}

/* ---- workers ------------------------------------------------------------------------- */

static void hlp_worker(void *arg)
{
    struct hlp_job *job = arg;
    struct hlp_server *srv = job->srv;
    struct pmux_stream *s = job->s;

    switch (job->first->h.type) {
    case PROTO_PING:
        pmux_send(s, PROTO_PONG, NULL, 0, NULL);
        break;
    case PROTO_DL_OPEN:
        hlp_download(srv, s, job->first);
        break;
    case PROTO_UPLOAD_BEGIN:
        hlp_upload(srv, s, job->first);
        break;
    case PROTO_SHOT:
        hlp_shot(s, job->first);
        break;
    case PROTO_FILE_PUT:
        hlp_prof_put(s, job->first, srv->have_profile ? srv->profile : NULL);
        break;
    case PROTO_FILE_DELETE:
        hlp_prof_delete(s, job->first, srv->have_profile ? srv->profile : NULL);
        break;
    default:
        log_debug("request %u: %s is not a request this helper serves", pmux_stream_id(s),
                  proto_type_name(job->first->h.type));
        hlp_error(s, 501, "Not implemented");
        break;
    }
    pmux_frame_free(s, job->first);
    pmux_close(s);
    plat_mutex_lock(srv->lock);
    srv->slots[job->slot].state = HLP_SLOT_DONE;
    plat_cond_broadcast(srv->cond);
    plat_mutex_unlock(srv->lock);
    free(job);
}

/* Reader thread: starts a worker for the request, or answers 503 when all are busy. */
static void hlp_on_request(void *ctx, struct pmux_stream *s, struct proto_frame *first)
{
    struct hlp_server *srv = ctx;
    struct plat_thread *old = NULL;
    struct hlp_job *job = NULL;
    struct err e = ERR_INIT;
    unsigned i;

    plat_mutex_lock(srv->lock);
    for (i = 0; i < srv->max_workers; i++)
        if (srv->slots[i].state != HLP_SLOT_BUSY)
            break;
    if (srv->stopping || i == srv->max_workers) {
        plat_mutex_unlock(srv->lock);
        hlp_error(s, 503, "Too many requests");
        goto refuse;
    }
    old = srv->slots[i].thread;
    srv->slots[i].thread = NULL;
    srv->slots[i].state = HLP_SLOT_BUSY;
    plat_mutex_unlock(srv->lock);
    plat_thread_join(old); /* a finished worker: returns at once */

    job = calloc(1, sizeof(*job));
    if (job) {
        struct plat_thread *t = NULL;
        job->srv = srv;
        job->s = s;
        job->first = first;
        job->slot = i;
        plat_mutex_lock(srv->lock);
        if (plat_thread_start(&t, hlp_worker, job, &e) == 0) {
            srv->slots[i].thread = t;
            plat_mutex_unlock(srv->lock);
            return;
        }
        plat_mutex_unlock(srv->lock);
        free(job);
    }
    log_error("cannot start a worker for request %u: %s", pmux_stream_id(s),
              job ? e.msg : "out of memory");
    plat_mutex_lock(srv->lock);
    srv->slots[i].state = HLP_SLOT_FREE;
    plat_mutex_unlock(srv->lock);
    hlp_error(s, 500, "Cannot start a worker");
refuse:
    pmux_frame_free(s, first);
    pmux_close(s);
}

static void hlp_on_close(void *ctx, const struct err *why)
{
    struct hlp_server *srv = ctx;
    plat_mutex_lock(srv->lock);
    srv->closed = 1;
    snprintf(srv->close_reason, sizeof(srv->close_reason), "%s",
             why && why->msg[0] ? why->msg : "the channel ended");
    plat_cond_broadcast(srv->cond);
    plat_mutex_unlock(srv->lock);
}

/* ---- logging ------------------------------------------------------------------------- */

static void hlp_log_hook(const struct log_record *rec, void *ctx)
{
    const char *level = rec->level >= LOG_LEVEL_ERROR     ? "error"
                        : rec->level >= LOG_LEVEL_WARNING ? "warning"
                        : rec->level >= LOG_LEVEL_INFO    ? "info"
                                                          : "debug";
    pmux_log(ctx, level, rec->message);
}

/* ---- the server ---------------------------------------------------------------------- */

int hlp_serve(struct pchan *ch, const struct hlp_options *opt, struct err *e)
{
    struct hlp_server *srv = calloc(1, sizeof(*srv));
    struct pmux_config cfg;
    struct upl_config ucfg;
    struct proto_hello peer;
    struct err root_err = ERR_INIT;
    size_t shared_size = 0;
    int rc, hooked = 0;

    if (!srv) {
        pchan_close(ch);
        pshm_free(opt->shared);
        return err_set(e, ERR_NOMEM, "out of memory starting the session helper");
    }
    srv->max_workers = opt->max_workers ? opt->max_workers : HLP_WORKERS_DEFAULT;
    srv->slots = calloc(srv->max_workers, sizeof(*srv->slots));
    if (!srv->slots) {
        pchan_close(ch);
        pshm_free(opt->shared);
        rc = err_set(e, ERR_NOMEM, "out of memory starting the session helper");
        goto out;
    }
    memset(&ucfg, 0, sizeof(ucfg));
    ucfg.max_in_flight = opt->max_uploads;
    if ((rc = plat_mutex_create(&srv->lock, e)) < 0 || (rc = plat_cond_create(&srv->cond, e)) < 0 ||
        (rc = upl_registry_create(&ucfg, &srv->uploads, e)) < 0) {
        pchan_close(ch);
        pshm_free(opt->shared);
        goto out;
    }
    if (opt->downloads) {
        srv->have_root =
            name_root_resolve(opt->downloads, srv->root, sizeof(srv->root), &root_err) == 0;
        if (!srv->have_root)
            err_prefix(&root_err, "the Downloads folder %s", opt->downloads);
    } else {
        err_set(&root_err, ERR_NOT_FOUND, "%s",
                opt->downloads_error ? opt->downloads_error : "no Downloads folder");
    }

    if (opt->profile && snprintf(srv->profile, sizeof(srv->profile), "%s", opt->profile) <
                            (int)sizeof(srv->profile))
        srv->have_profile = 1;

    memset(&cfg, 0, sizeof(cfg));
    proto_hello_init(&cfg.hello, "helper");
    cfg.hello.pid = (uint32_t)plat_pid();
    cfg.hello.session_id = opt->session_id;
    snprintf(cfg.hello.user, sizeof(cfg.hello.user), "%s", opt->user ? opt->user : "");
    cfg.initiator_odd = 0;
    cfg.on_request = hlp_on_request;
    cfg.on_close = hlp_on_close;
    cfg.ctx = srv;
    cfg.shared = opt->shared;
    shared_size = opt->shared ? pshm_size(opt->shared) : 0; /* the mux owns it from here */
    rc = pmux_start(ch, &cfg, &srv->mux, e);
    if (rc < 0) {
        srv->mux = NULL;
        err_prefix(e, "starting the service channel");
        goto out;
    }
    if (opt->forward_logs) {
        log_set_hook(hlp_log_hook, srv->mux);
        hooked = 1;
    }
    memset(&peer, 0, sizeof(peer));
    rc = pmux_wait_ready(
        srv->mux, opt->ready_timeout_ms ? opt->ready_timeout_ms : HLP_READY_TIMEOUT_MS, &peer, e);
    if (rc < 0) {
        err_prefix(e, "the service's greeting");
        log_error("%s", e->msg);
        goto stop;
    }
    log_info("session helper %s (pid %lu) serving session %u for %s; Downloads: %s", KASM_VERSION,
             plat_pid(), opt->session_id, cfg.hello.user,
             srv->have_root ? srv->root : "unavailable");
    if (!srv->have_root)
        log_error("%s; downloads and uploads answer 503", root_err.msg);
    if (shared_size && peer.shared == shared_size)
        log_info("uploads arrive through the service's shared window (%lu KiB), not the channel",
                 (unsigned long)(peer.shared / 1024));
    else if (peer.shared || shared_size)
        log_warning("the shared window is not in use (the service has %lu bytes, this helper "
                    "%lu); uploads arrive through the channel",
                    (unsigned long)peer.shared, (unsigned long)shared_size);

    plat_mutex_lock(srv->lock);
    while (!srv->closed)
        plat_cond_wait(srv->cond, srv->lock, UINT32_MAX);
    plat_mutex_unlock(srv->lock);
    log_info("the service channel closed (%s); stopping", srv->close_reason);

stop:
    pmux_shutdown(srv->mux);
    plat_mutex_lock(srv->lock);
    while (!srv->closed)
        plat_cond_wait(srv->cond, srv->lock, UINT32_MAX);
    srv->stopping = 1;
    plat_mutex_unlock(srv->lock);
    for (unsigned i = 0; i < srv->max_workers; i++) {
        plat_thread_join(srv->slots[i].thread); /* workers see the channel down and end */
        srv->slots[i].thread = NULL;
    }
    if (hooked)
        log_set_hook(NULL, NULL);
out:
    if (srv->mux)
        pmux_free(srv->mux);
    if (srv->uploads)
        upl_registry_free(srv->uploads);
    if (srv->cond)
        plat_cond_destroy(srv->cond);
    if (srv->lock)
        plat_mutex_destroy(srv->lock);
    free(srv->slots);
    free(srv);
    return rc;
}
