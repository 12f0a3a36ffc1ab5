/*
 * lifecycle.c - the token lifecycle thread (lifecycle.h): check-in, keepalive, refresh,
 * exchange inside grace, recovery from registration_token.txt, and the commands agentctl
 * sends (token refresh, register, reload) run between two heartbeats.
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
#include "reload.h"

#define DLC_TOKEN_FILE "registration_token.txt"

struct dlc {
    struct cfg *cfg;
    struct cfg *started;         /* cfg's plain fields at start (no token, no unknown keys) */
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
    int interval_env;      /* KASM_HEARTBEAT_MS set the interval */
    unsigned unsaved;      /* enum cfg_own keys config.yaml does not hold yet (a failed save) */
    uint64_t unsaved_said; /* monotonic ms of the last error logged about them (0: none) */
    int64_t keepalive_ms;  /* how long the last keepalive took */
    int debug_override;    /* the agent's --debug, -1 not given */

    /* under lock: what agentctl sees, and the command mailbox (one command at a time) */
    struct dlc_history hist;
    int64_t next_beat_ms; /* wall ms of the next heartbeat */
    int64_t due_ms;       /* wall ms from which the token is refreshed (0: never) */
    struct plat_cond *done;
    enum dlc_cmd cmd; /* 0: none waiting for the thread */
    int cmd_busy;     /* a command is waiting or running */
    unsigned long cmd_seq, cmd_done_seq;
    struct dlc_result cmd_result;
    char cmd_host[256];
    int cmd_port;
    char *cmd_token; /* secret */
    char cmd_sid[128];
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

/* Remembers an exchange for agentctl (rc 0: success; else e says why). */
static void note(struct dlc *l, struct dlc_event *ev, const char *what, int rc, const struct err *e)
{
    plat_mutex_lock(l->lock);
    ev->done = 1;
    ev->time = plat_wall_time();
    ev->ok = rc == 0;
    snprintf(ev->what, sizeof(ev->what), "%s", what);
    snprintf(ev->error, sizeof(ev->error), "%s",
             rc == 0 ? "" : (e && e->msg[0] ? e->msg : "failed"));
    plat_mutex_unlock(l->lock);
}

/* Remembers the API host that answered last. */
static void note_host(struct dlc *l, const char *host, int port)
{
    plat_mutex_lock(l->lock);
    snprintf(l->hist.last_host, sizeof(l->hist.last_host), "%s", host ? host : "");
    l->hist.last_port = port;
    plat_mutex_unlock(l->lock);
}

static void note_conn_host(struct dlc *l)
{
    if (l->conn.host_count && l->conn.current < l->conn.host_count)
        note_host(l, l->conn.hosts[l->conn.current], l->conn.port);
}

void dlc_history(struct dlc *l, struct dlc_history *out)
{
    plat_mutex_lock(l->lock);
    *out = l->hist;
    out->heartbeat_ms = l->interval_ms;
    out->has_next_refresh = l->due_ms != 0;
    if (l->due_ms) {
        /* the first heartbeat t that refreshes: t >= due, or t + interval > due */
        int64_t t = l->next_beat_ms, step = l->interval_ms ? l->interval_ms : 1;
        int64_t first = l->due_ms - step + 1;
        if (first > t)
            t += (first - t + step - 1) / step * step;
        out->next_refresh = (t + 999) / 1000;
    }
    plat_mutex_unlock(l->lock);
}

void dlc_set_debug_override(struct dlc *l, int debug)
{
    plat_mutex_lock(l->lock);
    l->debug_override = debug;
    plat_mutex_unlock(l->lock);
}

static int stopping(struct dlc *l)
{
    int s;
    plat_mutex_lock(l->lock);
    s = l->stop;
    plat_mutex_unlock(l->lock);
    return s;
}

/* Sleeps ms between retries; returns 1 early when stopping or when agentctl's command waits
 * (it goes first: a registration with a new host must not wait for retries to a dead one). */
static int nap(struct dlc *l, uint32_t ms)
{
    uint64_t end = plat_monotonic_ms() + ms;
    int s;
    plat_mutex_lock(l->lock);
    while (!l->stop && !l->cmd) {
        uint64_t now = plat_monotonic_ms();
        if (now >= end)
            break;
        plat_cond_wait(l->wake, l->lock, (uint32_t)(end - now));
    }
    s = l->stop || l->cmd;
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
    plat_mutex_lock(l->lock);
    l->due_ms = dpol_refresh_due_ms(l->has_exp, l->exp_ms, l->received_ms);
    plat_mutex_unlock(l->lock);
}

/*
 * Saves the keys in own (enum cfg_own), and those an earlier save could not, into
 * config.yaml by merge (cfg_save_keys): the administrator's edits made since the agent loaded
 * the file stay. The caller holds the config lock. A file that does not load is left as it is:
 * the values stay in memory (in use) and every heartbeat tries again (heartbeat()).
 */
static int save_owned_locked(struct dlc *l, unsigned own, struct err *e)
{
    char names[256];
    int rc;

    own |= l->unsaved;
    cfg_own_names(own, names, sizeof(names));
    rc = cfg_save_keys(l->cfg, NULL, own, e);
    if (rc == 0) {
        if (l->unsaved)
            log_info("saved %s in %s (an earlier save had failed)", names, l->cfg->path);
        l->unsaved = 0;
        l->unsaved_said = 0;
        return 0;
    }
    l->unsaved = own;
    /* said at once, then every 5 minutes while the file stays broken */
    if (!l->unsaved_said || plat_monotonic_ms() - l->unsaved_said >= 300000) {
        log_error("%s; the agent keeps using them from memory and saves them at the first "
                  "heartbeat after the file is fixed (agentctl doctor shows what is wrong; a "
                  "restart before that loses them)",
                  e->msg);
        l->unsaved_said = plat_monotonic_ms();
        if (!l->unsaved_said)
            l->unsaved_said = 1;
    }
    return rc;
}

/* The retry of a failed save, at every heartbeat. */
static void save_unsaved(struct dlc *l)
{
    struct err e = ERR_INIT;

    dlc_cfg_lock(l);
    if (l->unsaved)
        save_owned_locked(l, 0, &e);
    dlc_cfg_unlock(l);
}

/* Stores a new token in the config and config.yaml (merge, atomic), then adopts it. A failed
 * save does not lose it: it is used from memory and saved later (save_owned_locked). */
static int store_token(struct dlc *l, const char *token, struct err *e)
{
    struct err se = ERR_INIT;
    int rc;
    char when[64];

    dlc_cfg_lock(l);
    rc = cfg_set_agent_token(l->cfg, token, e);
    if (rc == 0)
        save_owned_locked(l, CFG_OWN_TOKEN, &se);
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
        note_conn_host(l);
        dlc_cfg_lock(l);
        rc = dreg_apply(l->cfg, &info, 0, 0, e);
        if (rc == 0) {
            struct err se = ERR_INIT;
            save_owned_locked(l, CFG_OWN_CHECKIN, &se); /* a failure: kept, retried */
        }
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
        if (rc == 0) {
            note_conn_host(l);
            rc = store_token(l, fresh, e);
        }
        wipe_free(fresh);
        return rc;
    }
    dlc_cfg_lock(l);
    rc = dreg_register(l->cfg, &l->conn, reg_token, NULL, 0, e);
    if (rc == 0) {
        struct err se = ERR_INIT;
        save_owned_locked(l, CFG_OWN_REREGISTER, &se);
    }
    dlc_cfg_unlock(l);
    if (rc == 0) {
        note_conn_host(l);
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

/* After a registration (registration_token.txt, agentctl register, a reload that brought a
 * new token): the token is good again, the next heartbeat checks in as "running". */
static void registered_now(struct dlc *l)
{
    l->need_registration = 0;
    l->force_exchange = 0;
    l->checkin_phase = 1;
    plat_mutex_lock(l->lock);
    l->hist.need_registration = 0;
    plat_mutex_unlock(l->lock);
}

static void set_need_registration(struct dlc *l)
{
    l->need_registration = 1;
    plat_mutex_lock(l->lock);
    l->hist.need_registration = 1;
    plat_mutex_unlock(l->lock);
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
    note(l, &l->hist.refresh, "registration", rc, &e);
    if (rc < 0) {
        log_error("registration with the token from %s failed: %s; the file is kept", l->token_file,
                  e.msg);
        goto out;
    }
    if (plat_path_remove(l->token_file, &e) < 0)
        log_error("cannot remove the registration token file: %s", e.msg);
    else
        log_info("Successfully removed registration token file at %s", l->token_file);
    registered_now(l);
    rc = 1;
out:
    wipe_free(text);
    return rc;
}

static void heartbeat(struct dlc *l);

/*
 * Refreshes (or exchanges) the token when it is due or would be due before the next decision,
 * ahead_ms from now (dpol_decide). 1: the heartbeat stops here (the refresh failed).
 */
static int refresh_if_due(struct dlc *l, int64_t ahead_ms)
{
    struct err e = ERR_INIT;
    enum dpol_action act = l->force_exchange ? DPOL_EXCHANGE
                                             : dpol_decide(l->has_exp, l->exp_ms, l->received_ms,
                                                           plat_wall_time_ms(), ahead_ms);
    int rc;

    if (act == DPOL_KEEP || l->refreshing)
        return 0;
    l->refreshing = 1;
    rc = with_retries(l, OP_REFRESH, NULL, &e);
    l->refreshing = 0;
    note(l, &l->hist.refresh, act == DPOL_EXCHANGE ? "exchange" : "refresh", rc, &e);
    if (rc == ERR_AUTH || rc == ERR_EXPIRED) {
        log_error("the deployment will not renew the agent token (%s)", e.msg);
        set_need_registration(l);
        heartbeat(l); /* look for registration_token.txt at once */
        return 1;
    }
    if (rc < 0) {
        log_warning("the token refresh failed: %s; retrying at the next heartbeat", e.msg);
        return 1;
    }
    return 0;
}

static void heartbeat(struct dlc *l)
{
    struct err e = ERR_INIT;
    uint64_t started;
    int rc;

    save_unsaved(l); /* a save that failed (config.yaml did not load) is tried again */
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

    if (refresh_if_due(l, (int64_t)l->interval_ms + l->keepalive_ms))
        return;

    if (l->checkin_phase < 2) {
        const char *what = l->checkin_phase == 0 ? "check-in (starting)" : "check-in (running)";
        rc = with_retries(l, OP_CHECKIN, NULL, &e);
        note(l, &l->hist.checkin, what, rc, &e);
        if (rc == ERR_EXPIRED) {
            log_warning("%s; exchanging the expired token", e.msg);
            l->force_exchange = 1;
        } else if (rc == ERR_AUTH) {
            log_error("%s", e.msg);
            set_need_registration(l);
        } else if (rc < 0) {
            log_warning("%s; retrying at the next heartbeat", e.msg);
        }
        return;
    }

    started = plat_monotonic_ms();
    rc = dapi_set_server_status(&l->conn, l->token, "running", "heartbeat", &e);
    l->keepalive_ms = (int64_t)(plat_monotonic_ms() - started);
    note(l, &l->hist.checkin, "keepalive", rc, &e);
    if (rc == 0)
        note_conn_host(l);
    if (rc == ERR_EXPIRED) {
        log_warning("keepalive: %s; exchanging the token", e.msg);
        l->force_exchange = 1;
    } else if (rc < 0) {
        log_warning("keepalive: %s", e.msg);
    }
    /* the keepalive may have been slow: decide again, so the refresh does not wait a beat */
    refresh_if_due(l, l->interval_ms);
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

/* ---- the commands of agentctl ---- */

static void result_fail(struct dlc_result *r, int rc, const char *step, const struct err *e)
{
    r->rc = rc;
    snprintf(r->step, sizeof(r->step), "%s", step);
    snprintf(r->error, sizeof(r->error), "%s", e->msg[0] ? e->msg : "failed");
}

static void result_token(struct dlc *l, struct dlc_result *r)
{
    r->has_exp = l->has_exp;
    r->exp = l->exp_ms / 1000;
    plat_mutex_lock(l->lock);
    snprintf(r->host, sizeof(r->host), "%s", l->hist.last_host);
    r->port = l->hist.last_port;
    plat_mutex_unlock(l->lock);
}

static void cmd_refresh(struct dlc *l, struct dlc_result *r)
{
    struct err e = ERR_INIT;
    int rc;

    if (!l->token) {
        rc = err_set(&e, ERR_INVALID,
                     "this agent has no token to refresh: register it first (agentctl register)");
        result_fail(r, rc, "refresh", &e);
        return;
    }
    log_info("token refresh asked for over the admin channel");
    l->refreshing = 1; /* this thread runs every refresh: never two at once */
    rc = do_op(l, OP_REFRESH, NULL, &e);
    l->refreshing = 0;
    note(l, &l->hist.refresh, "refresh", rc, &e);
    if (rc < 0) {
        result_fail(r, rc, "refresh", &e);
        if (rc == ERR_AUTH || rc == ERR_EXPIRED) {
            log_error("the deployment will not renew the agent token (%s)", e.msg);
            set_need_registration(l);
        } else {
            log_warning("the token refresh failed: %s", e.msg);
        }
        return;
    }
    if (l->need_registration) { /* the deployment takes the token again */
        l->need_registration = 0;
        plat_mutex_lock(l->lock);
        l->hist.need_registration = 0;
        plat_mutex_unlock(l->lock);
    }
    result_token(l, r);
}

static void cmd_register(struct dlc *l, struct dlc_result *r)
{
    struct err e = ERR_INIT;
    struct dapi_conn conn;
    const char *step = "name resolution";
    int rc, registered = 0;

    log_info("registering with %s:%d (asked for over the admin channel)", l->cmd_host, l->cmd_port);
    if ((rc = dcl_resolve_check(l->cmd_host, l->cmd_port, &e)) < 0)
        goto out;
    step = "tcp";
    if ((rc = dcl_tcp_check(l->cmd_host, l->cmd_port, 10000, &e)) < 0) {
        err_prefix(&e, "the deployment is not reachable over TCP");
        goto out;
    }
    memset(&conn, 0, sizeof(conn));
    conn.hosts[0] = l->cmd_host;
    conn.host_count = 1;
    conn.port = l->cmd_port;
    conn.net.verify_cert = l->cfg->api_verify_cert; /* this thread is the config's writer */
    conn.net.ca_file = l->cfg->api_ca_file;
    conn.net.connect_timeout_ms = 5000;
    step = "health check";
    if ((rc = dapi_healthcheck(&conn.net, l->cmd_host, l->cmd_port, &e)) < 0) {
        err_prefix(&e, "the Kasm API health check failed");
        goto out;
    }
    step = "registration";
    dlc_cfg_lock(l);
    rc = dreg_register(l->cfg, &conn, l->cmd_token, l->cmd_sid[0] ? l->cmd_sid : NULL, 0, &e);
    registered = rc == 0;
    if (registered) { /* from now on the deployment that registered us is the one */
        snprintf(l->cfg->api_host[0], sizeof(l->cfg->api_host[0]), "%s", l->cmd_host);
        l->cfg->api_host_count = 1;
        l->cfg->api_port = l->cmd_port;
        step = "save";
        if ((rc = save_owned_locked(l, CFG_OWN_REGISTER, &e)) < 0)
            err_prefix(&e, "registered (the new token is in use), but cannot save the "
                           "configuration; it is saved at the first heartbeat after the file "
                           "is fixed");
        load_conn(l);
        snprintf(r->server_id, sizeof(r->server_id), "%s", l->cfg->server_id);
    }
    dlc_cfg_unlock(l);
    if (registered) {
        char when[64];
        adopt_token(l, l->cfg->agent_jwt_token);
        registered_now(l);
        note_host(l, l->cmd_host, l->cmd_port);
        fmt_exp(l, when, sizeof(when));
        log_info("New auth token expires %s", when);
        result_token(l, r);
    }
out:
    note(l, &l->hist.refresh, "registration", rc, &e);
    if (rc < 0) {
        result_fail(r, rc, step, &e);
        log_error("the registration asked for over the admin channel failed (%s): %s", step, e.msg);
    }
}

/* Joins names into out as "a, b, c". */
static void join_keys(char *out, size_t cap, const char *const *names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int key_listed(const char *const *names, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], key) == 0)
            return 1;
    return 0;
}

static void cmd_reload(struct dlc *l, struct dlc_result *r)
{
    struct cfg fresh;
    struct drl_diff d;
    struct err e = ERR_INIT;
    char dirs[2][CFG_PATH_MAX];
    int rc, heartbeat, debug, override;

    memset(&fresh, 0, sizeof(fresh));
    log_info("reloading %s", l->cfg->path);
    if ((rc = cfg_load(&fresh, l->cfg->path, &e)) < 0) {
        result_fail(r, rc, "parse", &e);
        log_error("reload: %s; the running configuration stays", e.msg);
        goto out;
    }
    dlc_cfg_lock(l);
    drl_diff(l->cfg, l->started, &fresh, &d);
    rc = drl_apply(l->cfg, &fresh, &e);
    if (rc == 0 && d.hosts_changed)
        load_conn(l);
    if (rc == 0 && d.token_stale) {
        /* an editor opened before a refresh wrote the older token back: save ours */
        log_warning("reload: config.yaml held an older agent token; the running one is kept "
                    "and saved");
        save_owned_locked(l, CFG_OWN_TOKEN, &e); /* a failure is logged there */
        err_clear(&e);
    }
    heartbeat = l->cfg->heartbeat_interval > 0 ? l->cfg->heartbeat_interval : 30;
    debug = l->cfg->debug;
    snprintf(dirs[0], sizeof(dirs[0]), "%s", l->cfg->upload_dir);
    snprintf(dirs[1], sizeof(dirs[1]), "%s", l->cfg->download_dir);
    dlc_cfg_unlock(l);
    if (rc < 0) {
        result_fail(r, rc, "apply", &e);
        goto out;
    }
    plat_mutex_lock(l->lock);
    if (!l->interval_env)
        l->interval_ms = (uint32_t)heartbeat * 1000u;
    override = l->debug_override;
    plat_mutex_unlock(l->lock);
    r->heartbeat_env = l->interval_env;
    r->debug_cli = override >= 0;
    if (override < 0 && key_listed(d.applied, d.napplied, "debug"))
        log_set_level(debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    for (int k = 0; k < 2; k++) {
        if (dirs[k][0] &&
            key_listed(d.applied, d.napplied, k == 0 ? "upload_dir" : "download_dir") &&
            plat_dir_create_all(dirs[k], &e) < 0)
            log_warning("reload: %s", e.msg);
    }
    if (d.token_changed) {
        adopt_token(l, l->cfg->agent_jwt_token);
        registered_now(l);
        note(l, &l->hist.refresh, "token from config.yaml", 0, NULL);
        log_info("reload: adopted the agent token of the configuration file");
    }
    join_keys(r->applied, sizeof(r->applied), d.applied, d.napplied);
    join_keys(r->restart, sizeof(r->restart), d.restart, d.nrestart);
    log_info("reload: applied: %s; needs a restart: %s", d.napplied ? r->applied : "(nothing)",
             d.nrestart ? r->restart : "(nothing)");
out:
    cfg_free(&fresh);
}

static void run_command(struct dlc *l, enum dlc_cmd cmd)
{
    static struct dlc_result r; /* only this thread runs commands; large for a stack */

    memset(&r, 0, sizeof(r));
    if (cmd == DLC_CMD_REFRESH)
        cmd_refresh(l, &r);
    else if (cmd == DLC_CMD_REGISTER)
        cmd_register(l, &r);
    else
        cmd_reload(l, &r);
    plat_mutex_lock(l->lock);
    l->cmd_result = r;
    l->cmd_done_seq = l->cmd_seq;
    l->cmd_busy = 0;
    wipe_free(l->cmd_token);
    l->cmd_token = NULL;
    plat_cond_broadcast(l->done);
    plat_mutex_unlock(l->lock);
}

/* Waits for the next heartbeat, running the commands that arrive meanwhile; 1 when stopping. */
static int wait_beat(struct dlc *l)
{
    uint64_t end;
    int s;

    plat_mutex_lock(l->lock);
    end = plat_monotonic_ms() + l->interval_ms;
    l->next_beat_ms = plat_wall_time_ms() + l->interval_ms;
    while (!l->stop) {
        uint64_t now;
        if (l->cmd) {
            enum dlc_cmd cmd = l->cmd;
            l->cmd = 0;
            plat_mutex_unlock(l->lock);
            run_command(l, cmd);
            plat_mutex_lock(l->lock);
            now = plat_monotonic_ms();
            if (end > now + l->interval_ms) { /* a reload shortened the heartbeat */
                end = now + l->interval_ms;
                l->next_beat_ms = plat_wall_time_ms() + l->interval_ms;
            }
            continue;
        }
        now = plat_monotonic_ms();
        if (now >= end)
            break;
        plat_cond_wait(l->wake, l->lock, (uint32_t)(end - now));
    }
    s = l->stop;
    plat_mutex_unlock(l->lock);
    return s;
}

int dlc_command(struct dlc *l, enum dlc_cmd cmd, const struct dlc_register_args *reg,
                uint32_t timeout_ms, struct dlc_result *out, struct err *e)
{
    uint64_t end = plat_monotonic_ms() + timeout_ms;
    unsigned long seq;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    plat_mutex_lock(l->lock);
    if (l->stop) {
        rc = err_set(e, ERR_CANCELLED, "the agent is stopping");
        goto out;
    }
    if (l->cmd_busy) {
        rc = err_set(e, ERR_BUSY,
                     "an earlier token refresh, registration or reload is still running; try "
                     "again when it has finished (agentctl logs)");
        goto out;
    }
    if (cmd == DLC_CMD_REGISTER) {
        if (!reg || !reg->host || !reg->host[0] || strlen(reg->host) >= sizeof(l->cmd_host) ||
            reg->port < 1 || reg->port > 65535 || !reg->token || !reg->token[0] ||
            (reg->server_id && strlen(reg->server_id) >= sizeof(l->cmd_sid))) {
            rc = err_set(e, ERR_INVALID,
                         "register needs a host, a port from 1 to 65535 and a "
                         "registration token");
            goto out;
        }
        if (!(l->cmd_token = strdup(reg->token))) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        snprintf(l->cmd_host, sizeof(l->cmd_host), "%s", reg->host);
        l->cmd_port = reg->port;
        snprintf(l->cmd_sid, sizeof(l->cmd_sid), "%s", reg->server_id ? reg->server_id : "");
    }
    l->cmd = cmd;
    l->cmd_busy = 1;
    seq = ++l->cmd_seq;
    plat_cond_broadcast(l->wake);
    while (l->cmd_done_seq < seq && !l->stop) {
        uint64_t now = plat_monotonic_ms();
        if (now >= end)
            break;
        plat_cond_wait(l->done, l->lock, (uint32_t)(end - now));
    }
    if (l->cmd_done_seq >= seq)
        *out = l->cmd_result;
    else if (l->stop)
        rc = err_set(e, ERR_CANCELLED, "the agent is stopping");
    else
        rc = err_set(e, ERR_TIMEOUT,
                     "no result within %u s; the agent goes on with it (see 'agentctl token "
                     "status' and 'agentctl logs')",
                     (unsigned)(timeout_ms / 1000));
out:
    plat_mutex_unlock(l->lock);
    return rc;
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
        if (wait_beat(l))
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
    l->debug_override = -1;
    if (!(l->started = malloc(sizeof(*l->started)))) {
        free(l);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *l->started = *cfg;
    l->started->agent_jwt_token = NULL; /* plain fields only: drl_diff() reads no more */
    l->started->unknown = NULL;
    l->interval_ms = (uint32_t)(cfg->heartbeat_interval > 0 ? cfg->heartbeat_interval : 30) * 1000;
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 10 && v <= 86400000L) {
            l->interval_ms = (uint32_t)v;
            l->interval_env = 1;
        }
    }
    load_conn(l);
    if ((rc = fs_dirname(cfg->path, dir, sizeof(dir), e)) < 0 ||
        (rc = fs_join(dir, DLC_TOKEN_FILE, l->token_file, sizeof(l->token_file), e)) < 0 ||
        (rc = plat_mutex_create(&l->cfg_lock, e)) < 0 ||
        (rc = plat_mutex_create(&l->lock, e)) < 0 || (rc = plat_cond_create(&l->wake, e)) < 0 ||
        (rc = plat_cond_create(&l->done, e)) < 0 ||
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
        plat_cond_broadcast(l->done);
        plat_mutex_unlock(l->lock);
        plat_thread_join(l->thread);
    }
    plat_cond_destroy(l->wake);
    plat_cond_destroy(l->done);
    wipe_free(l->cmd_token);
    plat_mutex_destroy(l->lock);
    plat_mutex_destroy(l->cfg_lock);
    wipe_free(l->token);
    free(l->started);
    free(l);
}
