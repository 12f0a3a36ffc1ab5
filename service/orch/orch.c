/*
 * orch.c - the session orchestrator (orch.h): the start and end sequences of a Kasm session,
 * the deployment reports, the storage mappings waiting for their user's logon (a worker
 * thread woken by the session manager), and the portable helpers (%VAR% expansion, the
 * started-sessions memory, the pending list).
 */
#define LOG_MODULE "session"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "acct.h"
#include "api.h"
#include "cfg.h"
#include "fsutil.h"
#include "jwt.h"
#include "log.h"
#include "orch.h"
#include "orch_helper.h"
#include "orch_plat.h"
#include "plat.h"
#include "scr.h"
#include "scr_plat.h"
#include "scr_startup.h"
#include "sesm.h"

#define ORCH_MAPPING_MAX_BYTES (16u * 1024u * 1024u) /* one mapped file */
#define ORCH_RETRY_FIRST_MS    1000u
#define ORCH_RETRY_MAX_MS      30000u
#define ORCH_RETRY_NO_EXP_S    600 /* a session token without exp: retry this long */

/*
 * Lock order: the session manager's lock, then o->lock (its listener takes o->lock), so no
 * sesm_* call is ever made while holding o->lock.
 */
struct orch {
    struct orch_config c;
    struct plat_mutex *lock; /* guards seen, cancelled, pending, poked */
    struct plat_cond *wake;  /* orch_cancel wakes the report retries; the pending worker */
    struct orch_seen seen;
    int cancelled;
    struct orch_pending_list pending; /* storage mappings waiting for their user's logon */
    int poked;                        /* a session appeared since the worker last looked */
    struct plat_thread *worker;       /* runs the pending mappings (with a session manager) */
};

#ifdef _WIN32
#define ORCH_SEP '\\'
#else
#define ORCH_SEP '/'
#endif

/* One run of a start or end sequence. */
struct orch_run {
    struct orch *o;
    int start;
    cJSON *root;
    const char *kasm_id, *username, *user_id, *jwt;
    const char *payload; /* the payload text (a pending mount keeps a copy) */
    size_t payload_len;
    char user[256]; /* the local account: username without "@domain" */
    char profile[1024];
    int progress;
    unsigned failed;
    /* the config, copied at the start of the run */
    char hosts[DAPI_MAX_HOSTS][256];
    struct dapi_conn conn;
    char ca_file[CFG_PATH_MAX];
    char script_path[CFG_PATH_MAX];
    int timeout_s, debug, multi_user, user_sso, logoff;
    /* the script variables */
    char port[16], ts_session[16], groups[2048];
    char remote_app[16], web_native[16], auto_logout[16];
    struct scr_var vars[SCR_MAX_VARS];
    size_t nvars;
};

/* ---- portable helpers ---- */

static int is_sep(char c)
{
    return c == '/' || c == '\\';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

static int is_absolute(const char *p)
{
    if (is_sep(p[0]))
        return 1;
    return ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
           is_sep(p[2]);
}

int orch_expand(const char *dest, const struct orch_expand_env *env, char *out, size_t cap,
                struct err *e)
{
    size_t n = 0;
    const char *p = dest;

    if (cap == 0)
        return err_set(e, ERR_TOO_LARGE, "no room for the destination");
    while (*p) {
        const char *val = NULL, *end;
        char one[2] = {0, 0};
        size_t vl;
        if (*p != '%') {
            one[0] = *p++;
            val = one;
        } else if (p[1] == '%') {
            one[0] = '%';
            val = one;
            p += 2;
        } else {
            size_t name_len;
            if (!(end = strchr(p + 1, '%')))
                return err_set(e, ERR_INVALID, "the destination %.200s has an unclosed %%", dest);
            name_len = (size_t)(end - (p + 1));
            if ((name_len == 8 && ieq(p + 1, "HOMEPATH", 8)) ||
                (name_len == 11 && ieq(p + 1, "USERPROFILE", 11)))
                val = env->profile;
            else if (name_len == 8 && ieq(p + 1, "USERNAME", 8))
                val = env->username;
            else
                return err_set(e, ERR_INVALID,
                               "the destination %.200s uses %%%.*s%%, which the agent does not "
                               "expand (%%HOMEPATH%%, %%USERPROFILE%%, %%USERNAME%%)",
                               dest, (int)(name_len > 64 ? 64 : name_len), p + 1);
            if (!val || !*val)
                return err_set(e, ERR_INVALID,
                               "the destination %.200s needs %%%.*s%%, which is not known for "
                               "this user",
                               dest, (int)name_len, p + 1);
            p = end + 1;
        }
        vl = strlen(val);
        if (n + vl >= cap)
            return err_set(e, ERR_TOO_LARGE, "the destination %.200s is too long", dest);
        memcpy(out + n, val, vl);
        n += vl;
    }
    out[n] = '\0';
    for (size_t i = 0; i < n; i++) /* the platform's separator ('\\' and '/' are the same) */
        if (is_sep(out[i]))
            out[i] = ORCH_SEP;
    if (!is_absolute(out))
        return err_set(e, ERR_PERMISSION, "the destination %.200s is not an absolute path", dest);
    for (const char *q = out; *q;) {
        size_t l = 0;
        while (q[l] && !is_sep(q[l]))
            l++;
        if ((l == 2 && q[0] == '.' && q[1] == '.') || (l == 1 && q[0] == '.'))
            return err_set(e, ERR_PERMISSION, "the destination %.200s has a . or .. component",
                           dest);
        q += l;
        if (*q)
            q++;
    }
    if (is_sep(out[n - 1]))
        return err_set(e, ERR_PERMISSION, "the destination %.200s names a folder", dest);
    return 0;
}

int orch_path_under(const char *path, const char *dir)
{
    size_t dl = strlen(dir);
    while (dl > 1 && is_sep(dir[dl - 1]))
        dl--;
    if (dl == 0)
        return 0;
    for (size_t i = 0; i < dl; i++) {
        char a = path[i], b = dir[i];
        if (!a)
            return 0;
        if (is_sep(a) && is_sep(b))
            continue;
#ifdef _WIN32
        a = lower(a);
        b = lower(b);
#endif
        if (a != b)
            return 0;
    }
    return path[dl] == '\0' || is_sep(path[dl]);
}

int orch_seen_add(struct orch_seen *s, const char *id)
{
    for (size_t i = 0; i < ORCH_REMEMBERED; i++)
        if (s->ids[i][0] && strcmp(s->ids[i], id) == 0)
            return 1;
    snprintf(s->ids[s->next], sizeof(s->ids[0]), "%s", id);
    s->next = (s->next + 1) % ORCH_REMEMBERED;
    return 0;
}

int orch_seen_remove(struct orch_seen *s, const char *id)
{
    for (size_t i = 0; i < ORCH_REMEMBERED; i++)
        if (s->ids[i][0] && strcmp(s->ids[i], id) == 0) {
            s->ids[i][0] = '\0';
            return 1;
        }
    return 0;
}

static void pending_free(struct orch_pending *p)
{
    if (!p)
        return;
    if (p->payload) {
        memset(p->payload, 0, p->len); /* the session token and storage credentials */
        free(p->payload);
    }
    free(p);
}

void orch_pending_remove(struct orch_pending_list *l, struct orch_pending *p)
{
    for (struct orch_pending **pp = &l->head; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            l->count--;
            pending_free(p);
            return;
        }
}

static struct orch_pending *pending_find(struct orch_pending_list *l, const char *kasm_id)
{
    for (struct orch_pending *p = l->head; p; p = p->next)
        if (strcmp(p->kasm_id, kasm_id) == 0)
            return p;
    return NULL;
}

int orch_pending_add(struct orch_pending_list *l, const char *kasm_id, const char *user,
                     const char *payload, size_t len, int64_t expires, struct err *e)
{
    struct orch_pending *p, *old = pending_find(l, kasm_id);

    if (old && !old->running)
        orch_pending_remove(l, old);
    if (l->count >= ORCH_PENDING_MAX)
        return err_set(e, ERR_TOO_LARGE,
                       "%d sessions already wait for their user's logon; the storage "
                       "mappings of this one are not kept",
                       ORCH_PENDING_MAX);
    if (!(p = calloc(1, sizeof(*p))) || !(p->payload = malloc(len + 1))) {
        free(p);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    snprintf(p->kasm_id, sizeof(p->kasm_id), "%s", kasm_id);
    snprintf(p->user, sizeof(p->user), "%s", user);
    memcpy(p->payload, payload, len);
    p->payload[len] = '\0';
    p->len = len;
    p->expires = expires;
    p->next = l->head;
    l->head = p;
    l->count++;
    return 0;
}

int orch_pending_drop(struct orch_pending_list *l, const char *kasm_id)
{
    int running = 0;
    for (struct orch_pending *p = l->head, *next; p; p = next) {
        next = p->next;
        if (strcmp(p->kasm_id, kasm_id) != 0)
            continue;
        if (p->running) {
            running = 1;
            continue;
        }
        orch_pending_remove(l, p);
        return 1;
    }
    return running ? 2 : 0;
}

size_t orch_pending_expire(struct orch_pending_list *l, int64_t now,
                           void (*each)(void *ctx, const struct orch_pending *p), void *ctx)
{
    size_t n = 0;
    for (struct orch_pending *p = l->head, *next; p; p = next) {
        next = p->next;
        if (p->running || p->expires > now)
            continue;
        if (each)
            each(ctx, p);
        orch_pending_remove(l, p);
        n++;
    }
    return n;
}

int64_t orch_pending_backoff(int attempts)
{
    int64_t s = 5;
    for (int i = 1; i < attempts && s < 60; i++)
        s *= 2;
    return s < 60 ? s : 60;
}

int64_t orch_pending_retry(struct orch_pending *p, int64_t now)
{
    int64_t wait;
    p->running = 0;
    if (++p->attempts >= ORCH_PENDING_ATTEMPTS)
        return 0;
    wait = orch_pending_backoff(p->attempts);
    p->retry_at = now + wait;
    return wait;
}

int orch_pending_due(const struct orch_pending *p, int64_t now)
{
    return !p->running && p->retry_at <= now;
}

int64_t orch_pending_next(const struct orch_pending_list *l, int64_t now, int64_t limit)
{
    int64_t next = limit;
    for (const struct orch_pending *p = l->head; p; p = p->next) {
        if (p->running)
            continue;
        if (p->expires < next)
            next = p->expires;
        if (p->retry_at > now && p->retry_at < next)
            next = p->retry_at;
    }
    return next;
}

void orch_pending_clear(struct orch_pending_list *l)
{
    while (l->head) {
        struct orch_pending *p = l->head;
        l->head = p->next;
        pending_free(p);
    }
    l->count = 0;
}

/* ---- the orchestrator ---- */

static void pending_worker(void *arg);

/* The session manager's listener: a session of a user appeared (its lock held: only wake). */
static void on_session(void *ctx, uint32_t session_id, const char *user)
{
    struct orch *o = ctx;
    (void)session_id;
    (void)user;
    plat_mutex_lock(o->lock);
    o->poked = 1;
    plat_cond_broadcast(o->wake);
    plat_mutex_unlock(o->lock);
}

int orch_create(const struct orch_config *c, struct orch **out, struct err *e)
{
    struct orch *o = calloc(1, sizeof(*o));
    int rc;
    *out = NULL;
    if (!o)
        return err_set(e, ERR_NOMEM, "out of memory");
    o->c = *c;
    if ((rc = plat_mutex_create(&o->lock, e)) < 0) {
        free(o);
        return rc;
    }
    if ((rc = plat_cond_create(&o->wake, e)) < 0) {
        plat_mutex_destroy(o->lock);
        free(o);
        return rc;
    }
    if (o->c.sessions) {
        if ((rc = plat_thread_start(&o->worker, pending_worker, o, e)) < 0) {
            plat_cond_destroy(o->wake);
            plat_mutex_destroy(o->lock);
            free(o);
            return err_prefix(e, "starting the storage mapping worker");
        }
        sesm_set_listener(o->c.sessions, on_session, o);
    }
    *out = o;
    return 0;
}

void orch_cancel(struct orch *o)
{
    if (!o)
        return;
    plat_mutex_lock(o->lock);
    o->cancelled = 1;
    plat_cond_broadcast(o->wake);
    plat_mutex_unlock(o->lock);
}

void orch_free(struct orch *o)
{
    if (!o)
        return;
    if (o->worker) {
        sesm_set_listener(o->c.sessions, NULL, NULL); /* no call into o after this */
        orch_cancel(o);
        plat_thread_join(o->worker);
    }
    if (o->pending.count)
        log_info("%zu session(s) still waited for their user's logon to map storage; "
                 "forgotten as the agent stops",
                 o->pending.count);
    orch_pending_clear(&o->pending);
    plat_cond_destroy(o->wake);
    plat_mutex_destroy(o->lock);
    free(o);
}

static int cancelled(void *arg)
{
    struct orch *o = arg;
    int v;
    plat_mutex_lock(o->lock);
    v = o->cancelled;
    plat_mutex_unlock(o->lock);
    return v;
}

/* Waits ms or until orch_cancel; 1 when cancelled. */
static int pause_ms(struct orch *o, uint32_t ms)
{
    uint64_t until = plat_monotonic_ms() + ms;
    int v;
    plat_mutex_lock(o->lock);
    while (!o->cancelled) {
        uint64_t now = plat_monotonic_ms();
        if (now >= until)
            break;
        plat_cond_wait(o->wake, o->lock, (uint32_t)(until - now));
    }
    v = o->cancelled;
    plat_mutex_unlock(o->lock);
    return v;
}

static const char *str_field(const cJSON *root, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* A payload flag as script text: true/false, a string as it is, else dflt. */
static void flag_text(const cJSON *root, const char *name, const char *dflt, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (cJSON_IsBool(v))
        snprintf(out, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsString(v) && v->valuestring)
        snprintf(out, cap, "%s", v->valuestring);
    else
        snprintf(out, cap, "%s", dflt);
}

static void copy_config(struct orch_run *r)
{
    const struct cfg *cfg = r->o->c.cfg;
    if (r->o->c.lock)
        r->o->c.lock(r->o->c.ctx);
    memset(&r->conn, 0, sizeof(r->conn));
    for (size_t i = 0; i < cfg->api_host_count && i < DAPI_MAX_HOSTS; i++) {
        snprintf(r->hosts[i], sizeof(r->hosts[i]), "%s", cfg->api_host[i]);
        r->conn.hosts[r->conn.host_count++] = r->hosts[i];
    }
    r->conn.port = cfg->api_port;
    r->conn.net.verify_cert = cfg->api_verify_cert;
    snprintf(r->ca_file, sizeof(r->ca_file), "%s", cfg->api_ca_file);
    r->conn.net.ca_file = r->ca_file;
    r->conn.net.connect_timeout_ms = 5000;
    r->conn.net.max_body = ORCH_MAPPING_MAX_BYTES;
    snprintf(r->script_path, sizeof(r->script_path), "%s", cfg->script_path);
    r->timeout_s = cfg->script_timeout > 0 ? cfg->script_timeout : SCR_DEFAULT_TIMEOUT;
    r->debug = cfg->debug || log_get_level() <= LOG_LEVEL_DEBUG;
    r->multi_user = cfg->multi_user;
    r->user_sso = cfg->user_sso;
    r->logoff = cfg->logoff_on_session_end;
    if (r->o->c.unlock)
        r->o->c.unlock(r->o->c.ctx);
}

static void add_var(struct orch_run *r, const char *name, const char *value, int secret)
{
    if (r->nvars < SCR_MAX_VARS)
        r->vars[r->nvars++] = (struct scr_var){name, value ? value : "", secret};
}

static void build_vars(struct orch_run *r)
{
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(r->root, "user_groups");
    char *g = cJSON_IsArray(groups) ? cJSON_PrintUnformatted(groups) : NULL;

    snprintf(r->groups, sizeof(r->groups), "%s", g && strlen(g) < sizeof(r->groups) ? g : "[]");
    free(g);
    snprintf(r->port, sizeof(r->port), "%d", r->conn.port);
    flag_text(r->root, "is_remote_app", "false", r->remote_app, sizeof(r->remote_app));
    flag_text(r->root, "is_web_native", "false", r->web_native, sizeof(r->web_native));
    flag_text(r->root, "auto_logout_user", r->logoff ? "true" : "false", r->auto_logout,
              sizeof(r->auto_logout));
    r->ts_session[0] = '\0';
    if (r->o->c.sessions && r->user[0]) {
        struct sesm_lease *l = NULL;
        if (sesm_acquire(r->o->c.sessions, r->user, 0, &l, NULL) == 0) {
            snprintf(r->ts_session, sizeof(r->ts_session), "%u", (unsigned)sesm_lease_session(l));
            sesm_release(l);
        }
    }
    r->nvars = 0;
    add_var(r, "user_id", r->user_id, 0);
    add_var(r, "username", r->username, 0);
    add_var(r, "kasm_id", r->kasm_id, 0);
    add_var(r, "jwt_token", r->jwt, 1);
    add_var(r, "api_host", r->conn.host_count ? r->hosts[0] : "", 0);
    add_var(r, "api_port", r->port, 0);
    add_var(r, "ts_session_id", r->ts_session, 0);
    add_var(r, "is_remote_app", r->remote_app, 0);
    add_var(r, "is_web_native", r->web_native, 0);
    add_var(r, "auto_logout_user", r->auto_logout, 0);
    add_var(r, "user_groups", r->groups, 0);
}

static void scr_opts(struct orch_run *r, struct scr_options *so)
{
    memset(so, 0, sizeof(*so));
    so->timeout_ms = (uint32_t)r->timeout_s * 1000u;
    so->debug = r->debug;
    so->cancelled = cancelled;
    so->cancel_ctx = r->o;
}

/* The JSON of a status report (heap). status NULL: none; message NULL: none. */
static char *status_body(const struct orch_run *r, const char *status, int progress, int destroyed,
                         const char *message)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "kasm_id", r->kasm_id);
    if (status)
        cJSON_AddStringToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "status_progress", progress);
    if (destroyed)
        cJSON_AddBoolToObject(o, "destroyed", 1);
    if (message)
        cJSON_AddStringToObject(o, "status_message", message);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* A progress report: one attempt, a failure only logged. */
static void report_progress(struct orch_run *r, const char *message)
{
    struct err e = ERR_INIT;
    char *body;
    if (!r->jwt[0] || cancelled(r->o))
        return;
    r->progress++;
    if (!(body = status_body(r, "starting", r->progress, 0, message)))
        return;
    if (dapi_set_session_status(&r->conn, r->jwt, body, &e) < 0)
        log_warning("kasm_id %s: the progress report was not delivered: %s", r->kasm_id, e.msg);
    free(body);
}

static void step_failed(struct orch_run *r, const char *step, const char *why)
{
    char msg[512];
    r->failed++;
    log_error("kasm_id %s: %s failed: %s", r->kasm_id, step, why);
    snprintf(msg, sizeof(msg), "%s failed: %s", step, why);
    if (r->start)
        report_progress(r, msg);
}

static int retryable(int rc)
{
    return rc == ERR_NETWORK || rc == ERR_TIMEOUT || rc == ERR_PROTOCOL;
}

/* The mandatory report: retried with backoff until delivered, refused for good, the session
 * token expired, or the agent stopping (then one last attempt has been made). */
static void report_final(struct orch_run *r, int destroyed)
{
    const char *what = destroyed ? "destroyed" : "running";
    char *body = status_body(r, destroyed ? NULL : "running", 0, destroyed, NULL);
    struct jwt_claims claims = {0};
    int64_t deadline = plat_wall_time() + ORCH_RETRY_NO_EXP_S;
    uint32_t wait = ORCH_RETRY_FIRST_MS;
    unsigned attempt = 0;

    if (!body) {
        log_error("kasm_id %s: out of memory: the %s report is not sent", r->kasm_id, what);
        return;
    }
    if (!r->jwt[0]) {
        log_error("kasm_id %s: the payload has no session token (jwt): the %s report cannot be "
                  "sent",
                  r->kasm_id, what);
        goto out;
    }
    if (jwt_decode_unverified(r->jwt, strlen(r->jwt), &claims, NULL) == 0 && claims.has_exp)
        deadline = claims.exp;
    jwt_claims_free(&claims);
    for (;;) {
        struct err e = ERR_INIT;
        int rc = dapi_set_session_status(&r->conn, r->jwt, body, &e);
        attempt++;
        if (rc == 0) {
            log_info("kasm_id %s: reported %s to the deployment%s", r->kasm_id, what,
                     attempt > 1 ? " (after retries)" : "");
            break;
        }
        if (!retryable(rc)) {
            log_error("kasm_id %s: the %s report was refused: %s; not retried", r->kasm_id, what,
                      e.msg);
            break;
        }
        if (plat_wall_time() + (int64_t)(wait / 1000) >= deadline) {
            log_error("kasm_id %s: the %s report was not delivered before the session token "
                      "expired: %s",
                      r->kasm_id, what, e.msg);
            break;
        }
        if (cancelled(r->o)) {
            log_error("kasm_id %s: the %s report was not delivered (%s) and the agent is "
                      "stopping",
                      r->kasm_id, what, e.msg);
            break;
        }
        log_warning("kasm_id %s: the %s report failed (attempt %u): %s; retrying in %u s",
                    r->kasm_id, what, attempt, e.msg, (unsigned)(wait / 1000));
        pause_ms(r->o, wait);
        wait = wait * 2 > ORCH_RETRY_MAX_MS ? ORCH_RETRY_MAX_MS : wait * 2;
    }
out:
    free(body);
}

/* A builtin hook by name: the first of name.ps1/.cmd/.bat/.sh in builtin/ that exists and
 * that this platform runs. 0 ran (or absent: *ran 0), <0 could not run or failed. */
static int run_hook(struct orch_run *r, const char *name, const struct scr_var *vars, size_t nvars,
                    const struct scr_run_as *as, struct err *e)
{
    static const char *const exts[] = {".ps1", ".cmd", ".bat", ".sh"};
    char dir[CFG_PATH_MAX], file[300], path[CFG_PATH_MAX + 300];
    struct scr_options so;
    struct scr_result res;
    struct plat_file_info fi;

    if (!r->script_path[0] || fs_join(r->script_path, "builtin", dir, sizeof(dir), NULL) < 0)
        return 0;
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        snprintf(file, sizeof(file), "%s%s", name, exts[i]);
        if (!scr_plat_supports(scr_kind_of(file)) ||
            fs_join(dir, file, path, sizeof(path), NULL) < 0 || plat_path_stat(path, &fi, NULL) < 0)
            continue;
        scr_opts(r, &so);
        so.run_as = as;
        memset(&res, 0, sizeof(res));
        scr_run_file(path, vars, nvars, &so, &res, e);
        if (res.status == SCR_OK)
            return 0;
        return err_set(e, ERR_INTERNAL, "%s: %s (exit code %d)", file, scr_status_name(res.status),
                       res.exit_code);
    }
    log_debug("kasm_id %s: no builtin %s hook that this platform runs; skipped", r->kasm_id, name);
    return 0;
}

static void step_hook(struct orch_run *r, const char *name)
{
    struct err e = ERR_INIT;
    if (run_hook(r, name, r->vars, r->nvars, NULL, &e) < 0)
        step_failed(r, name, e.msg);
}

static void step_scripts(struct orch_run *r, const char *dir)
{
    struct scr_options so;
    struct scr_results res = {0};
    struct err e = ERR_INIT;
    size_t ok = 0, bad = 0;

    if (!r->script_path[0])
        return;
    scr_opts(r, &so);
    if (scr_run_dir(r->script_path, dir, r->vars, r->nvars, &so, &res, &e) < 0) {
        step_failed(r, dir, e.msg);
        goto out;
    }
    for (size_t i = 0; i < res.count; i++) {
        ok += res.items[i].status == SCR_OK;
        bad += res.items[i].status != SCR_OK && res.items[i].status != SCR_SKIPPED;
    }
    log_info("kasm_id %s: %s scripts: %zu of %zu succeeded", r->kasm_id, dir, ok, res.count);
    if (bad) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%zu script(s) did not succeed", bad);
        step_failed(r, dir, msg);
    }
out:
    scr_results_free(&res);
}

static void find_profile(struct orch_run *r)
{
    struct err e = ERR_INIT;
    if (r->profile[0] || !r->user[0])
        return;
    if (orch_plat_profile_dir(r->user, r->profile, sizeof(r->profile), &e) < 0) {
        log_info("kasm_id %s: no profile folder for %s: %s", r->kasm_id, r->user, e.msg);
        r->profile[0] = '\0';
    }
}

static void step_account(struct orch_run *r)
{
    struct err e = ERR_INIT;
    struct acct_result ar;
    char *password = NULL;

    memset(&ar, 0, sizeof(ar));
    report_progress(r, NULL);
    if (acct_validate_username(r->user, &e) < 0) {
        step_failed(r, "create_local_account", e.msg);
        return;
    }
    if (dapi_get_session_credential(&r->conn, r->jwt, &password, &e) < 0) {
        step_failed(r, "create_local_account (the one-time password)", e.msg);
        return;
    }
    if (acct_ensure_local_user(r->user, password, &ar, &e) < 0) {
        step_failed(r, "create_local_account", e.msg);
    } else {
        log_info("kasm_id %s: local account %s %s%s", r->kasm_id, r->user,
                 ar.created ? "created" : "updated",
                 ar.added_to_rdu ? ", added to Remote Desktop Users" : "");
        if (ar.profile_dir[0])
            snprintf(r->profile, sizeof(r->profile), "%s", ar.profile_dir);
        report_progress(r, NULL);
    }
    memset(password, 0, strlen(password));
    free(password);
}

/* The destination of one file mapping; 1 usable (out), 0 skipped (logged). */
static int mapping_dest(struct orch_run *r, const char *id, const char *dest, char *out, size_t cap,
                        struct err *e)
{
    struct orch_expand_env env = {r->profile, r->user};
    char tmp[CFG_PATH_MAX];
    int rc;
    if (r->script_path[0] &&
        (rc = scr_mapping_target(r->script_path, dest, tmp, sizeof(tmp), NULL)) != 0) {
        log_debug("kasm_id %s: file mapping %s is a scripts-folder mapping (service start)",
                  r->kasm_id, id);
        return 0;
    }
    if ((rc = orch_expand(dest, &env, out, cap, e)) < 0)
        return rc;
    return 1;
}

/*
 * For a path inside the user's profile: its folder, resolved (links, junctions), must still
 * be inside the resolved profile - a user who replaced Desktop by a link to a system folder
 * must not get the service to write or delete there.
 */
static int check_in_profile(struct orch_run *r, const char *path, struct err *e)
{
    char dir[CFG_PATH_MAX], real_dir[CFG_PATH_MAX], real_profile[CFG_PATH_MAX];
    int rc;
    if ((rc = fs_dirname(path, dir, sizeof(dir), e)) < 0 ||
        (rc = plat_dir_final_path(dir, real_dir, sizeof(real_dir), e)) < 0 ||
        (rc = plat_dir_final_path(r->profile, real_profile, sizeof(real_profile), e)) < 0)
        return rc;
    if (!orch_path_under(real_dir, real_profile))
        return err_set(e, ERR_PERMISSION,
                       "%s leads out of the user's profile (a link or junction to %s); "
                       "nothing written or removed there",
                       dir, real_dir);
    return 0;
}

unsigned orch_mapping_access(const struct cJSON *mapping)
{
    static const struct {
        const char *field;
        unsigned bit;
        int dflt;
    } flags[] = {{"is_readable", PLAT_ACCESS_READ, 1},
                 {"is_writable", PLAT_ACCESS_WRITE, 1},
                 {"is_executable", PLAT_ACCESS_EXECUTE, 0}};
    unsigned access = 0;

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        const cJSON *v = cJSON_IsObject(mapping)
                             ? cJSON_GetObjectItemCaseSensitive(mapping, flags[i].field)
                             : NULL;
        if (cJSON_IsBool(v) ? cJSON_IsTrue(v) : flags[i].dflt)
            access |= flags[i].bit;
    }
    return access;
}

const char *orch_access_text(unsigned access, char *out)
{
    out[0] = (access & PLAT_ACCESS_READ) ? 'r' : '-';
    out[1] = (access & PLAT_ACCESS_WRITE) ? 'w' : '-';
    out[2] = (access & PLAT_ACCESS_EXECUTE) ? 'x' : '-';
    out[3] = '\0';
    return out;
}

static int write_mapping(struct orch_run *r, const char *id, const char *token, const char *path,
                         unsigned access, struct err *e)
{
    char *data = NULL, dir[CFG_PATH_MAX], acc[4];
    size_t len = 0;
    int in_profile = r->profile[0] && orch_path_under(path, r->profile), rc;

    orch_access_text(access, acc);
    if ((rc = dapi_get_file_mapping_contents(&r->conn, token, &data, &len, e)) < 0)
        goto out;
    if (in_profile && !(access & (PLAT_ACCESS_READ | PLAT_ACCESS_WRITE)))
        log_warning("kasm_id %s: file mapping %s is neither readable nor writable: it is "
                    "written, but %s can open it only after changing its permissions",
                    r->kasm_id, id, r->user);
    /* inside the profile with the user's helper running: the helper writes it, as the user */
    if (in_profile && (rc = orch_profile_rel(path, r->profile, dir, sizeof(dir), e)) == 0 &&
        (rc = orch_helper_put(r->o->c.sessions, r->user, dir, access, data, len, e)) !=
            ORCH_HELPER_NONE) {
        if (rc == 0)
            log_info("kasm_id %s: file mapping %s written to %s (%zu bytes, access %s) by the "
                     "session helper of %s",
                     r->kasm_id, id, path, len, acc, r->user);
        goto out;
    }
    if ((rc = fs_dirname(path, dir, sizeof(dir), e)) < 0 ||
        (rc = plat_dir_create_all(dir, e)) < 0 ||
        (in_profile && (rc = check_in_profile(r, path, e)) < 0) ||
        (rc = fs_write_atomic(path, data, len, 0, e)) < 0)
        goto out;
    if (in_profile && (rc = orch_plat_give_to_user(path, r->profile, r->user, access, e)) < 0) {
        plat_path_remove(path, NULL); /* never leave a service-owned file in a profile */
        goto out;
    }
    if (in_profile)
        log_info("kasm_id %s: file mapping %s written to %s (%zu bytes, owned by the user, "
                 "access %s)",
                 r->kasm_id, id, path, len, acc);
    else
        log_info("kasm_id %s: file mapping %s written to %s (%zu bytes)", r->kasm_id, id, path,
                 len);
out:
    if (data) {
        memset(data, 0, len);
        free(data);
    }
    return rc;
}

/* Session end, inside the profile with the user's helper running: the helper removes it.
 * ORCH_HELPER_NONE when the service does it itself. */
static int remove_through_helper(struct orch_run *r, const char *path, struct err *e)
{
    char rel[CFG_PATH_MAX];
    int rc;

    if (!r->profile[0] || !orch_path_under(path, r->profile))
        return ORCH_HELPER_NONE;
    if ((rc = orch_profile_rel(path, r->profile, rel, sizeof(rel), e)) < 0)
        return rc;
    return orch_helper_delete(r->o->c.sessions, r->user, rel, e);
}

static void step_file_mappings(struct orch_run *r, int start)
{
    const cJSON *maps = cJSON_GetObjectItemCaseSensitive(r->root, "file_mappings"), *m;
    if (!cJSON_IsObject(maps))
        return;
    find_profile(r);
    cJSON_ArrayForEach(m, maps)
    {
        const char *id = m->string ? m->string : "?";
        const char *dest = str_field(m, "destination"), *tok = str_field(m, "jwt_token");
        char path[CFG_PATH_MAX], what[200];
        struct err e = ERR_INIT;
        int rc;
        if (cancelled(r->o))
            break;
        snprintf(what, sizeof(what), "file mapping %.100s", id);
        if (!*dest) {
            step_failed(r, what, "it has no destination");
            continue;
        }
        if ((rc = mapping_dest(r, id, dest, path, sizeof(path), &e)) < 0) {
            step_failed(r, what, e.msg);
            continue;
        }
        if (rc == 0)
            continue;
        if (start) {
            if (!*tok)
                step_failed(r, what, "it has no jwt_token");
            else if (write_mapping(r, id, tok, path, orch_mapping_access(m), &e) < 0)
                step_failed(r, what, e.msg);
        } else if (r->multi_user && !(r->profile[0] && orch_path_under(path, r->profile))) {
            log_info("kasm_id %s: file mapping %s (%s) is outside the user's profile on a "
                     "multi-user host: left in place",
                     r->kasm_id, id, path);
        } else if ((rc = remove_through_helper(r, path, &e)) != ORCH_HELPER_NONE) {
            if (rc == 0)
                log_info("kasm_id %s: file mapping %s removed from %s by the session helper of %s",
                         r->kasm_id, id, path, r->user);
            else if (rc != ERR_NOT_FOUND)
                step_failed(r, what, e.msg);
        } else if (r->profile[0] && orch_path_under(path, r->profile) &&
                   check_in_profile(r, path, &e) < 0 && e.code != ERR_NOT_FOUND) {
            step_failed(r, what, e.msg);
        } else if (plat_path_remove(path, &e) < 0 && e.code != ERR_NOT_FOUND) {
            step_failed(r, what, e.msg);
        } else {
            log_info("kasm_id %s: file mapping %s removed from %s", r->kasm_id, id, path);
        }
    }
}

/* The hook for every storage mapping, as the session's user (as) or the service (NULL). */
static void storage_hooks(struct orch_run *r, const char *hook, const struct scr_run_as *as)
{
    const cJSON *maps = cJSON_GetObjectItemCaseSensitive(r->root, "storage_mappings"), *m;
    if (!cJSON_IsObject(maps))
        return;
    if (as && !r->ts_session[0]) /* the session's helper is not running (yet) */
        snprintf(r->ts_session, sizeof(r->ts_session), "%u", (unsigned)as->session_id);
    cJSON_ArrayForEach(m, maps)
    {
        struct scr_var vars[SCR_MAX_VARS];
        cJSON *copy = cJSON_Duplicate(m, 1);
        char *json = NULL, what[200];
        struct err e = ERR_INIT;
        size_t n = r->nvars;

        if (cancelled(r->o)) {
            cJSON_Delete(copy);
            break;
        }
        snprintf(what, sizeof(what), "%s (%.100s)", hook, m->string ? m->string : "?");
        if (!cJSON_IsObject(copy) || !m->string) {
            cJSON_Delete(copy);
            step_failed(r, what, "the storage mapping is not an object");
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "target");
        cJSON_AddStringToObject(copy, "target", m->string);
        json = cJSON_PrintUnformatted(copy);
        cJSON_Delete(copy);
        memcpy(vars, r->vars, n * sizeof(vars[0]));
        vars[n++] = (struct scr_var){"storage_mapping", json ? json : "{}", 1};
        if (run_hook(r, hook, vars, n, as, &e) < 0)
            step_failed(r, what, e.msg);
        if (json) {
            memset(json, 0, strlen(json)); /* driver options hold credentials */
            free(json);
        }
    }
}

/* When a session token stops being usable: its exp, else ORCH_PENDING_NO_EXP_S from now. */
static int64_t token_expiry(const char *jwt)
{
    struct jwt_claims claims = {0};
    int64_t t = plat_wall_time() + ORCH_PENDING_NO_EXP_S;
    if (jwt[0] && jwt_decode_unverified(jwt, strlen(jwt), &claims, NULL) == 0 && claims.has_exp)
        t = claims.exp;
    jwt_claims_free(&claims);
    return t;
}

/*
 * map_storage (start) or unmap_storage for every storage mapping: as the user in the user's
 * session when there is one; else map_storage waits for the user's logon (pending) and
 * unmap_storage runs as the service; without a session manager both run as the service.
 */
static void step_storage(struct orch_run *r, int start)
{
    const char *hook = start ? "map_storage" : "unmap_storage";
    const cJSON *maps = cJSON_GetObjectItemCaseSensitive(r->root, "storage_mappings");
    struct scr_run_as as;
    struct err e = ERR_INIT, why = ERR_INIT;
    int count = cJSON_IsObject(maps) ? cJSON_GetArraySize(maps) : 0, rc, found;
    int64_t expires, wait = 0;

    if (count == 0)
        return;
    memset(&as, 0, sizeof(as));
    if (!r->o->c.sessions) {
        log_info("kasm_id %s: no session manager: %s runs as the service for %d storage "
                 "mapping(s)",
                 r->kasm_id, hook, count);
        storage_hooks(r, hook, NULL);
        return;
    }
    found = sesm_find_user(r->o->c.sessions, r->user, &as.session_id, as.user, sizeof(as.user),
                           NULL) == 0;
    /* right after a logon the user's token may not be there yet: map_storage waits for it */
    if (found && (!start || scr_run_as_check(&as, &why) == 0)) {
        log_info("kasm_id %s: %s for %d storage mapping(s) runs as user %s in session %u",
                 r->kasm_id, hook, count, as.user, (unsigned)as.session_id);
        storage_hooks(r, hook, &as);
        return;
    }
    if (!start) {
        log_info("kasm_id %s: user %s has no session any more: unmap_storage runs as the service "
                 "for %d storage mapping(s) (cleanup)",
                 r->kasm_id, r->user, count);
        storage_hooks(r, hook, NULL);
        return;
    }
    expires = token_expiry(r->jwt);
    plat_mutex_lock(r->o->lock);
    rc = orch_pending_add(&r->o->pending, r->kasm_id, r->user, r->payload, r->payload_len, expires,
                          &e);
    if (rc == 0 && found) /* its first attempt failed: retried like the worker's */
        wait = orch_pending_retry(pending_find(&r->o->pending, r->kasm_id), plat_wall_time());
    plat_cond_broadcast(r->o->wake); /* the worker looks again (the user may be there now) */
    plat_mutex_unlock(r->o->lock);
    if (rc < 0) {
        step_failed(r, hook, e.msg);
        return;
    }
    if (found)
        log_warning("kasm_id %s: cannot run map_storage as %s yet: %s; retrying in %lld s "
                    "(attempt 1 of %d)",
                    r->kasm_id, as.user, why.msg, (long long)wait, ORCH_PENDING_ATTEMPTS);
    else
        log_info("kasm_id %s: user %s has no session yet: map_storage for %d storage mapping(s) "
                 "waits for the user's logon (at most %lld s, until the session token expires)",
                 r->kasm_id, r->user, count, (long long)(expires - plat_wall_time()));
}

static int run_init(struct orch_run *r, struct orch *o, int start, const char *payload, size_t len)
{
    const char *at;
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->start = start;
    if (!(r->root = cJSON_ParseWithLength(payload, len))) {
        log_error("%s: the payload is not JSON", start ? "session_start" : "session_end");
        return -1;
    }
    r->kasm_id = str_field(r->root, "kasm_id");
    r->username = str_field(r->root, "username");
    r->user_id = str_field(r->root, "user_id");
    r->jwt = str_field(r->root, "jwt");
    r->payload = payload;
    r->payload_len = len;
    snprintf(r->user, sizeof(r->user), "%s", r->username);
    if ((at = strchr(r->user, '@')))
        r->user[at - r->user] = '\0';
    copy_config(r);
    build_vars(r);
    return 0;
}

static void run_free(struct orch_run *r)
{
    cJSON *tok = cJSON_GetObjectItemCaseSensitive(r->root, "jwt");
    if (cJSON_IsString(tok) && tok->valuestring)
        memset(tok->valuestring, 0, strlen(tok->valuestring));
    cJSON_Delete(r->root);
}

/* Session end: a mount still waiting for the user's logon is dropped; one running now is
 * waited for (unmap_storage comes after it). */
static void drop_pending(struct orch_run *r)
{
    struct orch *o = r->o;
    int rc, waited = 0;

    plat_mutex_lock(o->lock);
    while ((rc = orch_pending_drop(&o->pending, r->kasm_id)) == 2 && !o->cancelled) {
        waited = 1;
        plat_cond_wait(o->wake, o->lock, 1000);
    }
    plat_mutex_unlock(o->lock);
    if (rc == 1)
        log_info("kasm_id %s: user %s never logged on during the session: its storage "
                 "mappings were never mounted; dropped",
                 r->kasm_id, r->user);
    else if (waited)
        log_info("kasm_id %s: waited for the deferred map_storage to finish", r->kasm_id);
}

/*
 * The worker: runs map_storage, as the user, for a pending session whose user has logged on.
 * ERR_* (e says why, nothing ran) when a script cannot be started as the user yet (right
 * after a logon the user's token may not be there): p stays for a retry. Else 0, whatever
 * the hooks did (p is done).
 */
static int run_deferred(struct orch *o, struct orch_pending *p, const struct scr_run_as *as,
                        struct err *e)
{
    struct orch_run *r;
    int rc;

    if ((rc = scr_run_as_check(as, e)) < 0)
        return rc;
    if (!(r = malloc(sizeof(*r)))) {
        log_error("kasm_id %s: out of memory: the deferred storage mappings are not mounted",
                  p->kasm_id);
        return 0;
    }
    if (run_init(r, o, 1, p->payload, p->len) < 0)
        goto out;
    r->start = 0; /* the running report went long ago: failures are logged, not reported */
    log_info("kasm_id %s: user %s logged on (session %u): map_storage for the deferred storage "
             "mappings runs as the user",
             r->kasm_id, as->user, (unsigned)as->session_id);
    storage_hooks(r, "map_storage", as);
    log_info("kasm_id %s: deferred storage mappings done (%u failed)", r->kasm_id, r->failed);
out:
    run_free(r);
    free(r);
    return 0;
}

static void log_expired(void *ctx, const struct orch_pending *p)
{
    (void)ctx;
    log_warning("kasm_id %s: the session token expired before user %s logged on: its storage "
                "mappings are dropped (never mounted)",
                p->kasm_id, p->user);
}

static void pending_worker(void *arg)
{
    struct orch *o = arg;
    struct cand {
        char kasm_id[128];
        char user[256];
    } *cands = calloc(ORCH_PENDING_MAX, sizeof(*cands));

    if (!cands) {
        log_error("out of memory: storage mappings that wait for a logon are never mounted");
        return;
    }
    plat_mutex_lock(o->lock);
    while (!o->cancelled) {
        int64_t now = plat_wall_time(), next;
        size_t n = 0, found = ORCH_PENDING_MAX;
        struct scr_run_as as;

        orch_pending_expire(&o->pending, now, log_expired, NULL);
        next = orch_pending_next(&o->pending, now, now + 30);
        for (struct orch_pending *p = o->pending.head; p && n < ORCH_PENDING_MAX; p = p->next) {
            if (!orch_pending_due(p, now)) /* running, or waiting for its retry */
                continue;
            memcpy(cands[n].kasm_id, p->kasm_id, sizeof(cands[n].kasm_id));
            memcpy(cands[n].user, p->user, sizeof(cands[n].user));
            n++;
        }
        o->poked = 0;
        plat_mutex_unlock(o->lock);
        memset(&as, 0, sizeof(as));
        for (size_t i = 0; i < n && found == ORCH_PENDING_MAX; i++)
            if (sesm_find_user(o->c.sessions, cands[i].user, &as.session_id, as.user,
                               sizeof(as.user), NULL) == 0)
                found = i;
        plat_mutex_lock(o->lock);
        if (found < ORCH_PENDING_MAX) {
            struct orch_pending *p = pending_find(&o->pending, cands[found].kasm_id);
            if (p && !p->running && !o->cancelled) {
                struct err e = ERR_INIT;
                int64_t wait = 0;
                int rc, attempts;

                p->running = 1;
                plat_mutex_unlock(o->lock);
                rc = run_deferred(o, p, &as, &e);
                plat_mutex_lock(o->lock);
                wait = rc < 0 ? orch_pending_retry(p, plat_wall_time()) : 0;
                attempts = p->attempts;
                if (wait == 0) /* done, or its last attempt failed */
                    orch_pending_remove(&o->pending, p);
                plat_cond_broadcast(o->wake); /* a session_end may wait for it */
                plat_mutex_unlock(o->lock);
                if (rc < 0 && wait)
                    log_warning("kasm_id %s: cannot run map_storage as %s yet: %s; retrying in "
                                "%lld s (attempt %d of %d)",
                                cands[found].kasm_id, as.user, e.msg, (long long)wait, attempts,
                                ORCH_PENDING_ATTEMPTS);
                else if (rc < 0)
                    log_error("kasm_id %s: cannot run map_storage as %s: %s; gave up after %d "
                              "attempts: its storage mappings are not mounted",
                              cands[found].kasm_id, as.user, e.msg, attempts);
                plat_mutex_lock(o->lock);
            }
            continue;
        }
        if (!o->poked && !o->cancelled) {
            int64_t wait_s = next - plat_wall_time();
            plat_cond_wait(o->wake, o->lock,
                           wait_s <= 0    ? 10u
                           : wait_s >= 30 ? 30000u
                                          : (uint32_t)wait_s * 1000u);
        }
    }
    plat_mutex_unlock(o->lock);
    free(cands);
}

void orch_session_start(struct orch *o, const char *payload, size_t len)
{
    struct orch_run *r = malloc(sizeof(*r));
    const cJSON *cla;
    int dup;

    if (!r) {
        log_error("session_start: out of memory");
        return;
    }
    if (run_init(r, o, 1, payload, len) < 0)
        goto out;
    plat_mutex_lock(o->lock);
    dup = orch_seen_add(&o->seen, r->kasm_id);
    plat_mutex_unlock(o->lock);
    if (dup) {
        log_warning("session_start for kasm_id %s: this session already started; not run again",
                    r->kasm_id);
        goto out;
    }
    log_info("session_start for kasm_id %s (user %s): starting", r->kasm_id, r->username);

    /* (1) the local account */
    cla = cJSON_GetObjectItemCaseSensitive(r->root, "create_local_account");
    if (cJSON_IsTrue(cla))
        step_account(r);
    /* (2) the persistent profile */
    if (!cancelled(o))
        step_hook(r, "load_persistent_profile");
    /* (3) file and storage mappings (single sign-on deployments) */
    if (r->user_sso && !cancelled(o)) {
        step_file_mappings(r, 1);
        step_storage(r, 1);
    } else if (!r->user_sso) {
        log_debug("kasm_id %s: user_sso is off: no file or storage mappings", r->kasm_id);
    }
    /* (4) the administrator's scripts */
    if (!cancelled(o))
        step_scripts(r, "session_start");
    /* (5) the mandatory report */
    report_final(r, 0);
    /* (6) the screenshot cache refresh, 20 s from now */
    if (o->c.session_started)
        o->c.session_started(o->c.ctx, r->user);
    log_info("session_start for kasm_id %s done (%u step(s) failed)", r->kasm_id, r->failed);
out:
    run_free(r);
    free(r);
}

void orch_session_end(struct orch *o, const char *payload, size_t len)
{
    struct orch_run *r = malloc(sizeof(*r));
    int known;

    if (!r) {
        log_error("session_end: out of memory");
        return;
    }
    if (run_init(r, o, 0, payload, len) < 0)
        goto out;
    plat_mutex_lock(o->lock);
    known = orch_seen_remove(&o->seen, r->kasm_id);
    plat_mutex_unlock(o->lock);
    log_info("session_end for kasm_id %s (user %s): ending%s", r->kasm_id, r->username,
             known ? "" : " (a session this agent did not start)");

    if (r->logoff && r->user[0]) {
        struct err e = ERR_INIT;
        unsigned n = 0;
        int rc = orch_plat_logoff(r->user, &n, &e);
        if (rc == ERR_UNSUPPORTED)
            log_info("kasm_id %s: log-off skipped: %s", r->kasm_id, e.msg);
        else if (rc < 0)
            step_failed(r, "log-off", e.msg);
        else
            log_info("kasm_id %s: %u session(s) of %s logged off", r->kasm_id, n, r->user);
    }
    drop_pending(r);
    if (r->user_sso && !cancelled(o)) {
        step_file_mappings(r, 0);
        step_storage(r, 0);
    }
    if (!cancelled(o))
        step_hook(r, "save_persistent_profile");
    if (!cancelled(o))
        step_scripts(r, "session_end");
    report_final(r, 1);
    log_info("session_end for kasm_id %s done (%u step(s) failed)", r->kasm_id, r->failed);
out:
    run_free(r);
    free(r);
}
