/*
 * lifecycle.c - the token lifecycle thread (lifecycle.h): check-in, keepalive, refresh,
 * exchange inside grace, and recovery from registration_token.txt.
 */
#define LOG_MODULE "token"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "fsutil.h"
#include "jwt.h"
#include "lifecycle.h"
#include "log.h"
#include "plat.h"
#include "policy.h"
#include "register.h"

#define DLC_TOKEN_FILE "registration_token.txt"

struct dlc {
    struct cfg *cfg;
    struct plat_mutex *cfg_lock; /* guards *cfg and config.yaml */
    struct plat_mutex *lock;     /* guards stop */
    struct plat_cond *wake;
    struct plat_thread *thread;
    int stop;

    uint32_t interval_ms;
    char token_file[CFG_PATH_MAX];
    struct dapi_conn conn;
    char hosts[CFG_MAX_API_HOSTS][256]; /* conn.hosts point here */

    char *token; /* our copy of the agent token (secret) */
    int has_exp;
    int64_t exp_ms, received_ms;
    int checkin_phase;     /* 0: "starting" due, 1: "running" due, 2: done */
    int need_registration; /* the token is gone for good: wait for registration_token.txt */
    int force_exchange;    /* the deployment said the token expired */
    int refreshing;        /* a refresh is in flight (never more than one) */
};

static dlc_checkin_fn checkin_hook; /* set before dlc_start (lifecycle.h) */
static void *checkin_hook_ctx;

void dlc_set_checkin_hook(dlc_checkin_fn fn, void *ctx)
{
    checkin_hook = fn;
    checkin_hook_ctx = ctx;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void dlc_cfg_lock(struct dlc *l)
{
    plat_mutex_lock(l->cfg_lock);
}

void dlc_cfg_unlock(struct dlc *l)
{
    plat_mutex_unlock(l->cfg_lock);
}

void dlc_token_status(struct dlc *l, struct dlc_token_status *out)
{
    struct jwt_claims claims = {0};

    memset(out, 0, sizeof(*out));
    dlc_cfg_lock(l);
    out->registered = l->cfg->registered;
    out->has_token = l->cfg->agent_jwt_token && l->cfg->agent_jwt_token[0];
    if (out->has_token &&
        jwt_decode_unverified(l->cfg->agent_jwt_token, strlen(l->cfg->agent_jwt_token), &claims,
                              NULL) == 0 &&
        claims.has_exp) {
        out->has_exp = 1;
        out->exp = claims.exp;
    }
    dlc_cfg_unlock(l);
    jwt_claims_free(&claims);
}

static int stopping(struct dlc *l)
{
    int s;
    plat_mutex_lock(l->lock);
    s = l->stop;
    plat_mutex_unlock(l->lock);
    return s;
}

/* Sleeps ms unless asked to stop; returns 1 when stopping. */
static int nap(struct dlc *l, uint32_t ms)
{
    uint64_t end = plat_monotonic_ms() + ms;
    int s;
    plat_mutex_lock(l->lock);
    while (!l->stop) {
        uint64_t now = plat_monotonic_ms();
        if (now >= end)
            break;
        plat_cond_wait(l->wake, l->lock, (uint32_t)(end - now));
    }
    s = l->stop;
    plat_mutex_unlock(l->lock);
    return s;
}

static void fmt_exp(const struct dlc *l, char *out, size_t cap)
{
    if (l->has_exp)
        dpol_format_time(l->exp_ms / 1000, out, cap);
    else
        snprintf(out, cap, "never");
}

/* Takes a new token as ours (copy), remembering when we received it. */
static void adopt_token(struct dlc *l, const char *token)
{
    struct jwt_claims claims = {0};

    wipe_free(l->token);
    l->token = token ? strdup(token) : NULL;
    l->has_exp = 0;
    l->received_ms = plat_wall_time_ms();
    l->force_exchange = 0;
    if (l->token && jwt_decode_unverified(l->token, strlen(l->token), &claims, NULL) == 0 &&
        claims.has_exp) {
        l->has_exp = 1;
        l->exp_ms = claims.exp * 1000;
    }
    jwt_claims_free(&claims);
}

/* Stores a new token in the config and config.yaml (atomic), then adopts it. */
static int store_token(struct dlc *l, const char *token, struct err *e)
{
    int rc;
    char when[64];

    dlc_cfg_lock(l);
    rc = cfg_set_agent_token(l->cfg, token, e);
    if (rc == 0 && (rc = cfg_save(l->cfg, NULL, e)) < 0)
        err_prefix(e, "cannot save the new token");
    dlc_cfg_unlock(l);
    if (rc < 0)
        return rc;
    adopt_token(l, token);
    fmt_exp(l, when, sizeof(when));
    log_info("New auth token expires %s", when);
    return 0;
}

static int retryable(int rc)
{
    return rc == ERR_NETWORK || rc == ERR_TIMEOUT || rc == ERR_PROTOCOL || rc == ERR_IO;
}

static uint32_t backoff(const struct dlc *l, unsigned attempt)
{
    uint32_t base = l->interval_ms / 4, cap = l->interval_ms * 2, rnd = 0;
    if (base < 100)
        base = 100;
    if (base > 1000)
        base = 1000;
    if (cap < 1000)
        cap = 1000;
    if (cap > 60000)
        cap = 60000;
    plat_random_bytes(&rnd, sizeof(rnd), NULL);
    return dpol_backoff_ms(attempt, base, cap, rnd);
}

enum op { OP_CHECKIN, OP_REFRESH, OP_REGISTER };

static int do_op(struct dlc *l, enum op op, const char *reg_token, struct err *e)
{
    int rc;
    if (op == OP_CHECKIN) {
        struct dapi_agent_info info;
        char host[256];
        const char *status = l->checkin_phase == 0 ? "starting" : "running";
        if (plat_hostname(host, sizeof(host), NULL) < 0)
            snprintf(host, sizeof(host), "localhost");
        rc = dapi_register(&l->conn, NULL, l->token, l->cfg->server_id, host, status, &info, e);
        if (rc < 0)
            return err_prefix(e, "check-in (%s)", status);
        dlc_cfg_lock(l);
        rc = dreg_apply(l->cfg, &info, 0, e);
        dlc_cfg_unlock(l);
        if (rc == 0) {
            adopt_token(l, info.agent_jwt_token);
            log_info("checked in with the deployment (%s); multi_user %s, user_sso %s", status,
                     l->cfg->multi_user ? "true" : "false", l->cfg->user_sso ? "true" : "false");
            {
                char when[64];
                fmt_exp(l, when, sizeof(when));
                log_info("New auth token expires %s", when);
            }
            l->checkin_phase++;
            if (checkin_hook)
                checkin_hook(l, &l->conn, l->token, checkin_hook_ctx);
        }
        dapi_agent_info_free(&info);
        return rc;
    }
    if (op == OP_REFRESH) {
        char *fresh = NULL;
        char when[64];
        fmt_exp(l, when, sizeof(when));
        log_info("Refreshing auth token which expires %s", when);
        rc = dapi_refresh(&l->conn, l->token, &fresh, e);
        if (rc == 0)
            rc = store_token(l, fresh, e);
        wipe_free(fresh);
        return rc;
    }
    dlc_cfg_lock(l);
    rc = dreg_register(l->cfg, &l->conn, reg_token, NULL, e);
    dlc_cfg_unlock(l);
    if (rc == 0) {
        adopt_token(l, l->cfg->agent_jwt_token);
        char when[64];
        fmt_exp(l, when, sizeof(when));
        log_info("New auth token expires %s", when);
    }
    return rc;
}

/* Runs op with up to DPOL_MAX_ATTEMPTS attempts while the failure is a network one. */
static int with_retries(struct dlc *l, enum op op, const char *reg_token, struct err *e)
{
    int rc = ERR_CANCELLED;
    for (unsigned n = 1; n <= DPOL_MAX_ATTEMPTS; n++) {
        rc = do_op(l, op, reg_token, e);
        if (rc == 0 || !retryable(rc))
            return rc;
        log_warning("%s; Attempt %u /%d attempts", e->msg, n, DPOL_MAX_ATTEMPTS);
        if (n == DPOL_MAX_ATTEMPTS || nap(l, backoff(l, n)))
            break;
    }
    return rc;
}

/* Strips trailing white space and line breaks in place. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/* Looks for registration_token.txt and registers with it. 1 done, 0 no file, <0 failed. */
static int try_token_file(struct dlc *l)
{
    struct err e = ERR_INIT;
    char *text = NULL;
    const char *tok;
    int rc = fs_read_all(l->token_file, 64 * 1024, &text, NULL, &e);

    if (rc == ERR_NOT_FOUND)
        return 0;
    if (rc < 0) {
        log_error("cannot read the registration token file: %s", e.msg);
        return rc;
    }
    chomp(text);
    tok = text;
    while (*tok == ' ' || *tok == '\t' || *tok == '\r' || *tok == '\n')
        tok++;
    if (!*tok) {
        log_error("the registration token file %s is empty; it is kept", l->token_file);
        rc = ERR_INVALID;
        goto out;
    }
    log_info("Loaded registration token from %s", l->token_file);
    rc = with_retries(l, OP_REGISTER, tok, &e);
    if (rc < 0) {
        log_error("registration with the token from %s failed: %s; the file is kept", l->token_file,
                  e.msg);
        goto out;
    }
    if (plat_path_remove(l->token_file, &e) < 0)
        log_error("cannot remove the registration token file: %s", e.msg);
    else
        log_info("Successfully removed registration token file at %s", l->token_file);
    l->need_registration = 0;
    l->checkin_phase = 1; /* report "running" next */
    rc = 1;
out:
    wipe_free(text);
    return rc;
}

static void heartbeat(struct dlc *l)
{
    struct err e = ERR_INIT;
    int rc;

    if (l->need_registration || !l->token) {
        if (try_token_file(l) != 0)
            return;
        if (!l->token)
            log_warning("this agent has no token for the Kasm deployment: register it with "
                        "'agent --register-host HOST --register-token TOKEN', or place a "
                        "registration token from the Kasm admin UI in %s",
                        l->token_file);
        else
            log_warning("the agent token is no longer accepted by the deployment: place a "
                        "registration token from the Kasm admin UI in %s (it is picked up "
                        "within one heartbeat, no restart needed)",
                        l->token_file);
        return;
    }

    {
        enum dpol_action act = l->force_exchange ? DPOL_EXCHANGE
                                                 : dpol_decide(l->has_exp, l->exp_ms,
                                                               l->received_ms, plat_wall_time_ms());
        if (act != DPOL_KEEP && !l->refreshing) {
            l->refreshing = 1;
            rc = with_retries(l, OP_REFRESH, NULL, &e);
            l->refreshing = 0;
            if (rc == ERR_AUTH || rc == ERR_EXPIRED) {
                log_error("the deployment will not renew the agent token (%s)", e.msg);
                l->need_registration = 1;
                heartbeat(l); /* look for registration_token.txt at once */
                return;
            }
            if (rc < 0) {
                log_warning("the token refresh failed: %s; retrying at the next heartbeat", e.msg);
                return;
            }
        }
    }

    if (l->checkin_phase < 2) {
        rc = with_retries(l, OP_CHECKIN, NULL, &e);
        if (rc == ERR_EXPIRED) {
            log_warning("%s; exchanging the expired token", e.msg);
            l->force_exchange = 1;
        } else if (rc == ERR_AUTH) {
            log_error("%s", e.msg);
            l->need_registration = 1;
        } else if (rc < 0) {
            log_warning("%s; retrying at the next heartbeat", e.msg);
        }
        return;
    }

    rc = dapi_set_server_status(&l->conn, l->token, "running", "heartbeat", &e);
    if (rc == ERR_EXPIRED) {
        log_warning("keepalive: %s; exchanging the token", e.msg);
        l->force_exchange = 1;
    } else if (rc < 0) {
        log_warning("keepalive: %s", e.msg);
    }
}

/* The API hosts, port and TLS options from the config (copied: the config may change). */
static void load_conn(struct dlc *l)
{
    dreg_conn_from_cfg(&l->conn, l->cfg);
    for (size_t i = 0; i < l->conn.host_count; i++) {
        snprintf(l->hosts[i], sizeof(l->hosts[i]), "%s", l->cfg->api_host[i]);
        l->conn.hosts[i] = l->hosts[i];
    }
    l->conn.net.connect_timeout_ms = 5000;
}

static void run(void *arg)
{
    struct dlc *l = arg;
    struct err e = ERR_INIT;
    int rc;

    dlc_cfg_lock(l);
    rc = dreg_pending_run(l->cfg, &e);
    if (rc < 0)
        log_error("the queued registration failed: %s; it is retried at the next start", e.msg);
    else if (rc == 1)
        load_conn(l); /* it set api_host and api_port */
    adopt_token(l, l->cfg->agent_jwt_token);
    dlc_cfg_unlock(l);
    log_info("token lifecycle started: heartbeat every %u ms, deployment %s:%d%s",
             (unsigned)l->interval_ms, l->conn.host_count ? l->conn.hosts[0] : "(none)",
             l->conn.port, l->conn.host_count > 1 ? " (+ failover hosts)" : "");
    while (!stopping(l)) {
        heartbeat(l);
        if (nap(l, l->interval_ms))
            break;
    }
    log_debug("token lifecycle stopped");
}

int dlc_start(struct dlc **out, struct cfg *cfg, struct err *e)
{
    struct dlc *l = calloc(1, sizeof(*l));
    char dir[CFG_PATH_MAX];
    const char *env = getenv("KASM_HEARTBEAT_MS");
    int rc;

    *out = NULL;
    if (!l)
        return err_set(e, ERR_NOMEM, "out of memory");
    l->cfg = cfg;
    l->interval_ms = (uint32_t)(cfg->heartbeat_interval > 0 ? cfg->heartbeat_interval : 30) * 1000;
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 10 && v <= 86400000L)
            l->interval_ms = (uint32_t)v;
    }
    load_conn(l);
    if ((rc = fs_dirname(cfg->path, dir, sizeof(dir), e)) < 0 ||
        (rc = fs_join(dir, DLC_TOKEN_FILE, l->token_file, sizeof(l->token_file), e)) < 0 ||
        (rc = plat_mutex_create(&l->cfg_lock, e)) < 0 ||
        (rc = plat_mutex_create(&l->lock, e)) < 0 || (rc = plat_cond_create(&l->wake, e)) < 0 ||
        (rc = plat_thread_start(&l->thread, run, l, e)) < 0) {
        dlc_stop(l);
        return err_prefix(e, "cannot start the token lifecycle");
    }
    *out = l;
    return 0;
}

void dlc_stop(struct dlc *l)
{
    if (!l)
        return;
    if (l->thread) {
        plat_mutex_lock(l->lock);
        l->stop = 1;
        plat_cond_broadcast(l->wake);
        plat_mutex_unlock(l->lock);
        plat_thread_join(l->thread);
    }
    plat_cond_destroy(l->wake);
    plat_mutex_destroy(l->lock);
    plat_mutex_destroy(l->cfg_lock);
    wipe_free(l->token);
    free(l);
}
