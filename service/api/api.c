/*
 * api.c - starting and stopping the API, and the request router: CORS preflight, unknown
 * paths (404), wrong methods (405; HEAD is GET for downloads), authentication, then the route
 * handler. The concurrent-upload cap is the upload registry's (max_concurrent_uploads).
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <civetweb.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "orch.h"
#include "plat.h"
#include "reply.h"
#include "server.h"
#include "upload.h"
#include "work_queue.h"

#define API_QUEUE_THREADS 2
#define API_QUEUE_SLOTS   256

struct api_route {
    const char *path;
    int prefix; /* path is a prefix ending in '/'; the path without that '/' matches too */
    const char *method;
    int head_ok; /* HEAD is served like the GET */
    api_handler_fn fn;
};

static const struct api_route routes[] = {
    {"/__healthcheck", 0, "GET", 0, api_healthcheck},
    {"/session_start", 0, "POST", 0, api_session_start},
    {"/session_end", 0, "POST", 0, api_session_end},
    {"/screenshot", 0, "POST", 0, api_screenshot},
    {"/upload", 0, "POST", 0, api_upload},
    {"/Downloads/Downloads/", 1, "GET", 1, api_downloads},
};

static const struct api_route *find_route(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct api_route *r = &routes[i];
        size_t n = strlen(r->path);
        if (strcmp(path, r->path) == 0)
            return r;
        if (r->prefix && (strncmp(path, r->path, n) == 0 ||
                          (strncmp(path, r->path, n - 1) == 0 && path[n - 1] == '\0')))
            return r;
    }
    return NULL;
}

static int api_dispatch(struct mg_connection *conn, void *ctx)
{
    struct api *a = ctx;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri ? ri->local_uri : "";
    const struct api_route *r = find_route(path);
    struct api_claims who;
    int status;

    if (strcmp(ri->request_method, "OPTIONS") == 0)
        return r ? http_reply_preflight(conn) : http_reply_error(conn, 404, "Not found");
    if (!r)
        return http_reply_error(conn, 404, "Not found");
    if (strcmp(ri->request_method, r->method) != 0 &&
        !(r->head_ok && strcmp(ri->request_method, "HEAD") == 0))
        return http_reply_error(conn, 405, "Method not allowed");
    if ((status = http_auth_check(a->auth, conn, &who)) != 0)
        return status;
    return r->fn(a, conn, &who);
}

void api_cfg_read_begin(struct api *a)
{
    if (a->guard.lock)
        a->guard.lock(a->guard.ctx);
}

void api_cfg_read_end(struct api *a)
{
    if (a->guard.unlock)
        a->guard.unlock(a->guard.ctx);
}

/*
 * The transfer folders exist before the first request (Kasm's installer makes Upload\ and
 * Download\; a hand-written config may name new ones). A folder that cannot be made is
 * logged, not fatal: its routes answer 500 naming the problem until it exists.
 */
static void ensure_transfer_folder(const char *key, const char *path)
{
    struct err e = ERR_INIT;
    if (path[0] && plat_dir_create_all(path, &e) < 0)
        log_warning("%s %s cannot be created: %s", key, path, e.msg);
}

/* The session orchestrator behind the session jobs: it reads cfg under the API's guard. */
static void api_orch_lock(void *ctx)
{
    api_cfg_read_begin(ctx);
}

static void api_orch_unlock(void *ctx)
{
    api_cfg_read_end(ctx);
}

/* Step 6 of a session start: the screenshot cache refresh. */
static void api_orch_started(void *ctx, const char *system_username)
{
    api_screenshot_refresh(ctx, system_username);
}

static int api_orch_create(struct api *a, struct err *e)
{
    struct orch_config oc = {a->cfg, api_orch_lock, api_orch_unlock,
                             a,      a->sessions,   api_orch_started};
    return orch_create(&oc, &a->orch, e);
}

int api_start(struct api **out, const struct cfg *cfg, const struct api_cfg_guard *guard,
              struct sesm *sessions, struct err *e)
{
    struct upl_config ucfg;
    struct api *a;
    int rc;

    *out = NULL;
    if (!(a = calloc(1, sizeof(*a))))
        return err_set(e, ERR_NOMEM, "out of memory starting the API");
    a->cfg = cfg;
    a->sessions = sessions;
    if (guard)
        a->guard = *guard;
    ensure_transfer_folder("upload_dir", cfg->upload_dir);
    ensure_transfer_folder("download_dir", cfg->download_dir);
    memset(&ucfg, 0, sizeof(ucfg));
    ucfg.max_in_flight =
        cfg->max_concurrent_uploads > 0 ? (unsigned)cfg->max_concurrent_uploads : 0;
    if ((rc = plat_mutex_create(&a->lock, e)) < 0 ||
        (rc = upl_registry_create(&ucfg, &a->uploads, e)) < 0 ||
        (rc = http_auth_create(&a->auth, cfg->jwt_public_key, cfg->jwt_leeway, e)) < 0 ||
        (rc = api_shots_start(a, e)) < 0 || (rc = api_orch_create(a, e)) < 0 ||
        (rc = wq_create(&a->queue, API_QUEUE_THREADS, API_QUEUE_SLOTS, e)) < 0 ||
        (rc = http_server_start(&a->server, cfg, api_dispatch, a, e)) < 0) {
        api_stop(a);
        return rc;
    }
    *out = a;
    return 0;
}

int api_port(const struct api *a)
{
    return http_server_port(a->server);
}

void api_stop(struct api *a)
{
    if (!a)
        return;
    if (a->server) {
        log_info("HTTPS API: no longer accepting requests");
        http_server_stop(a->server);
    }
    orch_cancel(a->orch); /* running scripts killed; queued sessions only report */
    wq_destroy(a->queue, WQ_DRAIN);
    orch_free(a->orch);
    api_shots_stop(a); /* after the session jobs: none schedules a refresh any more */
    http_auth_free(a->auth);
    if (a->uploads)
        upl_registry_free(a->uploads); /* the server stopped: no chunk is in flight */
    if (a->lock)
        plat_mutex_destroy(a->lock);
    free(a);
}
