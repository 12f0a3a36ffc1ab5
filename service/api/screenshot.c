/*
 * screenshot.c - POST /screenshot?width=N: the multi_user/user_sso rule and the width check
 * first, then a PNG from the session helper chosen by api_user_target (helper_client.h).
 * No helper: 503. The helper's ERROR (503 when its session has no display) is passed on.
 *
 * Also owns the screenshot cache (shot_cache.h) in front of the helpers: PNGs younger than
 * screenshot_cache_seconds are served again, one capture per (session, helper pid, width) at a
 * time; and the refresh thread that captures the dashboard's widths 20 s after a session_start
 * (api_screenshot_refresh; pending refreshes are dropped at api_stop).
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "helper_client.h"
#include "log.h"
#include "reply.h"
#include "plat.h"
#include "sesm.h"
#include "shot_cache.h"

#define SHOT_WIDTH_DEFAULT    300
#define SHOT_WIDTH_MIN        16
#define SHOT_WIDTH_MAX        3840
#define SHOT_REFRESH_DELAY_MS (20 * 1000)
#define SHOT_REFRESH_MAX      16 /* pending refreshes; more are dropped (logged) */

static const int shot_refresh_widths[] = {300, 1000}; /* the dashboard's two sizes */

struct shot_pending {
    uint64_t due_ms;
    char user[256];
};

/* The refresh thread's state (api->refresh). */
struct api_shot_refresh {
    struct plat_mutex *lock;
    struct plat_cond *wake;
    struct plat_thread *thread;
    int stop;
    struct shot_pending q[SHOT_REFRESH_MAX];
    size_t n;
};

/* The width parameter: default when absent, else decimal digits in range; -1 when invalid. */
static int shot_width(struct mg_connection *conn)
{
    char v[16];
    long w;
    int rc = http_query_param(conn, "width", v, sizeof(v));

    if (rc == ERR_NOT_FOUND)
        return SHOT_WIDTH_DEFAULT;
    if (rc < 0 || !v[0] || strspn(v, "0123456789") != strlen(v) || strlen(v) > 5)
        return -1;
    w = strtol(v, NULL, 10);
    return (w >= SHOT_WIDTH_MIN && w <= SHOT_WIDTH_MAX) ? (int)w : -1;
}

static int shot_max_age_s(struct api *a)
{
    int v;
    api_cfg_read_begin(a);
    v = a->cfg->screenshot_cache_seconds;
    api_cfg_read_end(a);
    return v;
}

/* Drops cache entries whose helper is gone (no longer in the session manager's table). */
static void shot_retain_live(struct api *a)
{
    struct sesm_row *rows = NULL;
    uint32_t *sids = NULL;
    unsigned long *pids = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;

    if (!a->sessions || sesm_table(a->sessions, &rows, &n, &e) < 0)
        goto out;
    sids = calloc(n ? n : 1, sizeof(*sids));
    pids = calloc(n ? n : 1, sizeof(*pids));
    if (!sids || !pids)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sids[i] = rows[i].session_id;
        pids[i] = rows[i].helper_pid;
    }
    shc_retain(a->shots, sids, pids, n);
out:
    free(sids);
    free(pids);
    free(rows);
}

/*
 * A PNG of the lease's session: from the cache when younger than max_age_s (0: never cached),
 * else captured by the helper (and stored). fresh: always capture (the refresh thread).
 */
static int shot_get(struct api *a, struct sesm_lease *lease, int width, int max_age_s, int fresh,
                    struct hcl_shot *out, int *status, struct err *e)
{
    struct shc_key k;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!a->shots || max_age_s <= 0)
        return hcl_shot_take(sesm_lease_mux(lease), width, HCL_TIMEOUT_MS, out, status, e);
    k.session_id = sesm_lease_session(lease);
    k.helper_pid = sesm_lease_helper_pid(lease);
    k.width = width;
    rc = shc_get(a->shots, &k, plat_monotonic_ms(), fresh ? 0 : (uint64_t)max_age_s * 1000,
                 HCL_TIMEOUT_MS, &out->png, &out->size);
    if (rc == SHC_HIT) {
        log_debug("screenshot of session %u at width %d: from the cache", (unsigned)k.session_id,
                  width);
        return 0;
    }
    if (rc != SHC_CLAIM) /* the other capture hung or no memory: capture without the cache */
        return hcl_shot_take(sesm_lease_mux(lease), width, HCL_TIMEOUT_MS, out, status, e);
    if ((rc = hcl_shot_take(sesm_lease_mux(lease), width, HCL_TIMEOUT_MS, out, status, e)) < 0) {
        shc_abandon(a->shots, &k);
        return rc;
    }
    log_debug("screenshot of session %u at width %d: captured (%zu bytes)", (unsigned)k.session_id,
              width, out->size);
    shot_retain_live(a);
    shc_put(a->shots, &k, plat_monotonic_ms(), out->png, out->size);
    return 0;
}

int api_screenshot(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    struct api_target t;
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int disabled, width, status = 503;

    api_cfg_read_begin(a);
    disabled = a->cfg->multi_user && !a->cfg->user_sso;
    api_cfg_read_end(a);
    if (disabled)
        return http_reply_error(conn, 403, "Screenshots are disabled for this user");
    if ((width = shot_width(conn)) < 0)
        return http_reply_error(conn, 400, "width must be an integer from 16 to 3840");
    if (api_user_target(a, who, API_FOLDER_NONE, &t, &status, &e) < 0)
        return http_reply_error(conn, status, e.msg);
    if (shot_get(a, t.lease, width, shot_max_age_s(a), 0, &shot, &status, &e) < 0) {
        log_info("screenshot via the helper of session %u: %s",
                 (unsigned)sesm_lease_session(t.lease), e.msg);
        status = http_reply_error(conn, status, e.msg);
    } else {
        http_reply_head(conn, 200, "image/png", (long long)shot.size,
                        "Cache-Control: no-store\r\n");
        mg_write(conn, shot.png, shot.size);
        free(shot.png);
        status = 200;
    }
    api_target_release(&t);
    return status;
}

/* ------------------------------------------------------------------------------------- */
/* The refresh after a session_start                                                      */

/* Captures the dashboard's widths of user's session into the cache (nothing to answer). */
static void shot_refresh_now(struct api *a, const char *user)
{
    struct api_claims who;
    struct api_target t;
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int status, max_age = shot_max_age_s(a);
    const char *at;

    if (max_age <= 0)
        return;
    memset(&who, 0, sizeof(who));
    snprintf(who.system_username, sizeof(who.system_username), "%s", user);
    snprintf(who.local_user, sizeof(who.local_user), "%s", user);
    if ((at = strchr(who.local_user, '@')) != NULL)
        who.local_user[at - who.local_user] = '\0';
    if (api_user_target(a, &who, API_FOLDER_NONE, &t, &status, &e) < 0 || !t.lease) {
        log_debug("screenshot refresh for %s: %s", user, e.msg[0] ? e.msg : "no session helper");
        api_target_release(&t);
        return;
    }
    for (size_t i = 0; i < sizeof(shot_refresh_widths) / sizeof(shot_refresh_widths[0]); i++) {
        int stop;
        plat_mutex_lock(a->refresh->lock);
        stop = a->refresh->stop; /* api_stop: no further capture */
        plat_mutex_unlock(a->refresh->lock);
        if (stop)
            break;
        if (shot_get(a, t.lease, shot_refresh_widths[i], max_age, 1, &shot, &status, &e) < 0) {
            log_info("screenshot refresh for %s: %s", user, e.msg);
            break;
        }
        free(shot.png);
    }
    log_info("screenshot refresh for %s done (session %u)", user,
             (unsigned)sesm_lease_session(t.lease));
    api_target_release(&t);
}

static void shot_refresh_main(void *arg)
{
    struct api *a = arg;
    struct api_shot_refresh *r = a->refresh;
    char user[256];

    plat_mutex_lock(r->lock);
    while (!r->stop) {
        uint64_t now = plat_monotonic_ms(), next = UINT64_MAX;
        size_t due = r->n;
        for (size_t i = 0; i < r->n; i++) {
            if (r->q[i].due_ms <= now && due == r->n)
                due = i;
            if (r->q[i].due_ms < next)
                next = r->q[i].due_ms;
        }
        if (due == r->n) {
            uint64_t wait = next == UINT64_MAX ? 60000 : next - now;
            plat_cond_wait(r->wake, r->lock, (uint32_t)(wait > 60000 ? 60000 : wait));
            continue;
        }
        memcpy(user, r->q[due].user, sizeof(user));
        r->q[due] = r->q[--r->n];
        plat_mutex_unlock(r->lock);
        shot_refresh_now(a, user);
        plat_mutex_lock(r->lock);
    }
    plat_mutex_unlock(r->lock);
}

int api_shots_start(struct api *a, struct err *e)
{
    struct api_shot_refresh *r;
    int rc;

    if ((rc = shc_create(&a->shots, SHC_MAX_ENTRIES, SHC_MAX_BYTES, e)) < 0)
        return rc;
    if (!(r = calloc(1, sizeof(*r))))
        return err_set(e, ERR_NOMEM, "out of memory starting the screenshot refresh");
    a->refresh = r;
    if ((rc = plat_mutex_create(&r->lock, e)) < 0 || (rc = plat_cond_create(&r->wake, e)) < 0 ||
        (rc = plat_thread_start(&r->thread, shot_refresh_main, a, e)) < 0)
        return rc;
    return 0;
}

void api_shots_stop(struct api *a)
{
    struct api_shot_refresh *r = a->refresh;

    if (r) {
        if (r->thread) {
            plat_mutex_lock(r->lock);
            r->stop = 1;
            if (r->n)
                log_debug("%zu pending screenshot refresh(es) cancelled", r->n);
            r->n = 0;
            plat_cond_broadcast(r->wake);
            plat_mutex_unlock(r->lock);
            plat_thread_join(r->thread);
        }
        if (r->wake)
            plat_cond_destroy(r->wake);
        if (r->lock)
            plat_mutex_destroy(r->lock);
        free(r);
        a->refresh = NULL;
    }
    shc_free(a->shots);
    a->shots = NULL;
}

void api_screenshot_refresh(struct api *a, const char *system_username)
{
    struct api_shot_refresh *r = a ? a->refresh : NULL;

    if (!r || !system_username || !system_username[0])
        return;
    plat_mutex_lock(r->lock);
    if (r->stop) {
        /* api_stop is under way: nothing more is scheduled */
    } else if (r->n == SHOT_REFRESH_MAX) {
        log_warning("screenshot refresh for %s not scheduled: %d are pending", system_username,
                    SHOT_REFRESH_MAX);
    } else {
        r->q[r->n].due_ms = plat_monotonic_ms() + SHOT_REFRESH_DELAY_MS;
        snprintf(r->q[r->n].user, sizeof(r->q[r->n].user), "%s", system_username);
        r->n++;
        plat_cond_signal(r->wake);
    }
    plat_mutex_unlock(r->lock);
}
