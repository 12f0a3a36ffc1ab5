/*
 * api_priv.h - what the route files of service/api/ share: the API's state and the handler
 * signature. Not for use outside service/api/.
 */
#ifndef KASM_API_PRIV_H
#define KASM_API_PRIV_H

#include <stdatomic.h>
#include <stdint.h>

#include "api.h"
#include "auth.h"
#include "plat.h"

struct mg_connection;
struct plat_mutex;
struct http_server;
struct wq;
struct upl_registry;
struct sesm;
struct orch;
struct shc;
struct api_shot_refresh;

struct api {
    const struct cfg *cfg;
    struct api_cfg_guard guard; /* read lifecycle-owned cfg fields under it (api_cfg_*) */
    struct http_auth *auth;
    struct wq *queue;  /* session_start / session_end jobs */
    struct orch *orch; /* what those jobs run (service/orch/orch.h) */
    struct http_server *server;
    struct sesm *sessions;        /* the session helpers (may be NULL: fallback folders only) */
    struct upl_registry *uploads; /* POST /upload; caps uploads at max_concurrent_uploads */
    struct plat_mutex *lock;      /* guards uploads_expired_at and the usage cache */
    int64_t uploads_expired_at;   /* when stale uploads were last removed */
    struct plat_usage usage;      /* the last health check's figures ... */
    uint64_t usage_at_ms;         /* ... taken at this monotonic time (0: never) */
    /* POST /upload requests being handled now (agentctl status) */
    atomic_uint uploads_in_flight;
    struct shc *shots;                /* the screenshot cache (screenshot.c) */
    struct api_shot_refresh *refresh; /* its refresh thread (api_screenshot_refresh) */
};

/* Bracket reads of cfg fields another thread may rewrite (multi_user, user_sso). */
void api_cfg_read_begin(struct api *a);
void api_cfg_read_end(struct api *a);

/* A route handler: the request is authenticated (who); returns the status it answered. */
typedef int (*api_handler_fn)(struct api *a, struct mg_connection *conn,
                              const struct api_claims *who);

int api_healthcheck(struct api *a, struct mg_connection *conn, const struct api_claims *who);
int api_session_start(struct api *a, struct mg_connection *conn, const struct api_claims *who);
int api_session_end(struct api *a, struct mg_connection *conn, const struct api_claims *who);
int api_screenshot(struct api *a, struct mg_connection *conn, const struct api_claims *who);
/* The screenshot cache and its refresh thread (screenshot.c): started before the server,
 * stopped after it (pending refreshes are cancelled). */
int api_shots_start(struct api *a, struct err *e);
void api_shots_stop(struct api *a);
int api_upload(struct api *a, struct mg_connection *conn, const struct api_claims *who);
int api_downloads(struct api *a, struct mg_connection *conn, const struct api_claims *who);

#endif
