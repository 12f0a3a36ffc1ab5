/*
 * logship.c - the deployment log shipper (logship.h): the bounded record queue, batching and
 * retry decisions (the core), and the service's thread and sender over the deployment API
 * (component_log on 1.18+, kasm_session_log before).
 */
#define LOG_MODULE "logship"

#include "logship.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "api.h"
#include "https_client.h"
#include "lifecycle.h"
#include "plat.h"
#include "policy.h"
#include "register.h"

/* Records logged on the shipper's thread are never queued (logship.h). */
static _Thread_local int on_shipper_thread;

struct dls_rec {
    uint64_t seq;
    uint64_t queued_ms; /* clock of the core, when it was queued */
    int64_t time;       /* the record's wall time (Unix seconds, UTC) */
    enum log_level level;
    char module[16];
    char *message;
};

struct dls_real; /* the service's sender (below) */

struct dls {
    struct dls_options o;
    char host[256];
    dls_send_fn send;
    void *send_ctx;
    struct plat_mutex *lock;
    struct plat_cond *cond;
    /* the queue: a ring of o.capacity records, guarded by lock */
    struct dls_rec *ring;
    size_t head, count;
    uint64_t next_seq;
    uint64_t drop_pending; /* dropped or refused records not yet reported in a batch */
    unsigned attempt;      /* failures in a row */
    uint64_t retry_at;     /* no attempt before this (clock of the core) */
    int refused_logged;    /* a refusal was logged since the last delivery */
    int failure_logged;    /* a failure was logged since the last delivery */
    struct dls_stats st;
    /* the service's thread */
    struct plat_thread *thread;
    int stop;
    struct dls_real *real;
};

static uint64_t default_now(void)
{
    return plat_monotonic_ms();
}

static uint64_t now_ms(const struct dls *s)
{
    return s->o.now_ms ? s->o.now_ms() : default_now();
}

int dls_parse_level(const char *text)
{
    if (!text || !*text)
        return LOG_LEVEL_INFO;
    if (strcmp(text, "off") == 0 || strcmp(text, "OFF") == 0 || strcmp(text, "Off") == 0 ||
        strcmp(text, "false") == 0 || strcmp(text, "none") == 0)
        return DLS_LEVEL_OFF;
    return log_level_parse(text);
}

int dls_create(struct dls **out, const struct dls_options *o, dls_send_fn send, void *send_ctx,
               struct err *e)
{
    struct dls *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->o = *o;
    if (!s->o.capacity)
        s->o.capacity = DLS_CAPACITY;
    if (!s->o.batch_max)
        s->o.batch_max = DLS_BATCH_MAX;
    if (!s->o.flush_count)
        s->o.flush_count = DLS_FLUSH_COUNT;
    if (!s->o.flush_age_ms)
        s->o.flush_age_ms = DLS_FLUSH_AGE_MS;
    if (!s->o.retry_base_ms)
        s->o.retry_base_ms = DLS_RETRY_BASE_MS;
    if (!s->o.retry_cap_ms)
        s->o.retry_cap_ms = DLS_RETRY_CAP_MS;
    if (s->o.host)
        snprintf(s->host, sizeof(s->host), "%s", s->o.host);
    else if (plat_hostname(s->host, sizeof(s->host), NULL) < 0)
        snprintf(s->host, sizeof(s->host), "localhost");
    s->o.host = NULL;
    s->send = send;
    s->send_ctx = send_ctx;
    s->next_seq = 1;
    s->st.enabled = s->o.min_level != DLS_LEVEL_OFF;
    s->ring = calloc(s->o.capacity, sizeof(*s->ring));
    if (!s->ring) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = plat_mutex_create(&s->lock, e)) < 0)
        goto fail;
    if ((rc = plat_cond_create(&s->cond, e)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (s->lock)
        plat_mutex_destroy(s->lock);
    free(s->ring);
    free(s);
    return rc;
}

static struct dls_rec *at(struct dls *s, size_t i)
{
    return &s->ring[(s->head + i) % s->o.capacity];
}

static void pop_head(struct dls *s)
{
    struct dls_rec *r = at(s, 0);
    free(r->message);
    memset(r, 0, sizeof(*r));
    s->head = (s->head + 1) % s->o.capacity;
    s->count--;
}

void dls_destroy(struct dls *s)
{
    if (!s)
        return;
    while (s->count)
        pop_head(s);
    free(s->ring);
    plat_cond_destroy(s->cond);
    plat_mutex_destroy(s->lock);
    free(s);
}

void dls_hook(const struct log_record *rec, void *ctx)
{
    struct dls *s = ctx;
    struct dls_rec *r;
    char *msg;

    if (on_shipper_thread || !rec || !rec->message || (int)rec->level < s->o.min_level)
        return;
    if (rec->module && strcmp(rec->module, LOG_MODULE) == 0)
        return;
    if (!(msg = strdup(rec->message)))
        return;
    plat_mutex_lock(s->lock);
    if (s->count == s->o.capacity) { /* full: the oldest goes */
        pop_head(s);
        s->drop_pending++;
        s->st.dropped++;
    }
    r = at(s, s->count);
    r->seq = s->next_seq++;
    r->queued_ms = now_ms(s);
    r->time = rec->time;
    r->level = rec->level;
    snprintf(r->module, sizeof(r->module), "%s", rec->module ? rec->module : "");
    r->message = msg;
    s->count++;
    if (s->count > s->o.flush_count)
        plat_cond_signal(s->cond);
    plat_mutex_unlock(s->lock);
}

/* "%Y-%m-%dT%H:%M:%SZ" of Unix seconds, without the C library's time zone state. */
static void format_utc(int64_t t, char *out, size_t cap)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    /* civil from days (Howard Hinnant's algorithm) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, (int)m, (int)d, (int)(secs / 3600),
             (int)(secs % 3600 / 60), (int)(secs % 60));
}

static cJSON *record_json(const struct dls *s, int64_t time, enum log_level level,
                          const char *module, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    char date[96];
    const char *name = log_level_name(level);

    if (!o)
        return NULL;
    format_utc(time, date, sizeof(date));
    if (!cJSON_AddStringToObject(o, "levelname", name ? name : "INFO") ||
        !cJSON_AddStringToObject(o, "message", message) ||
        !cJSON_AddStringToObject(o, "host", s->host) ||
        !cJSON_AddStringToObject(o, "application", DLS_APPLICATION) ||
        !cJSON_AddStringToObject(o, "name", module) ||
        !cJSON_AddStringToObject(o, "ingest_date", date)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/*
 * Under the lock: the JSON of the next batch (heap), the last sequence number in it and how
 * many drops its notice reports. NULL when out of memory.
 */
static char *build_batch(struct dls *s, uint64_t *last_seq, uint64_t *reported, size_t *n)
{
    cJSON *arr = cJSON_CreateArray();
    char *json = NULL;
    size_t take = s->count < s->o.batch_max ? s->count : s->o.batch_max;

    *last_seq = 0;
    *reported = 0;
    *n = 0;
    if (!arr)
        return NULL;
    if (s->drop_pending) {
        char text[96];
        cJSON *r;
        snprintf(text, sizeof(text), "%llu log records were dropped",
                 (unsigned long long)s->drop_pending);
        r = record_json(s, plat_wall_time(), LOG_LEVEL_WARNING, LOG_MODULE, text);
        if (!r || !cJSON_AddItemToArray(arr, r)) {
            cJSON_Delete(r);
            goto out;
        }
        *reported = s->drop_pending;
    }
    for (size_t i = 0; i < take; i++) {
        const struct dls_rec *q = at(s, i);
        cJSON *r = record_json(s, q->time, q->level, q->module, q->message);
        if (!r || !cJSON_AddItemToArray(arr, r)) {
            cJSON_Delete(r);
            goto out;
        }
        *last_seq = q->seq;
    }
    *n = take;
    json = cJSON_PrintUnformatted(arr);
out:
    cJSON_Delete(arr);
    return json;
}

/* Under the lock: ms until a batch is due (0: now), UINT32_MAX when nothing waits. */
static uint32_t due_in(struct dls *s, uint64_t now, int force)
{
    uint64_t age_due;

    if (!s->count && !(force && s->drop_pending))
        return UINT32_MAX;
    if (!force && now < s->retry_at)
        return (uint32_t)(s->retry_at - now);
    if (force || s->count > s->o.flush_count)
        return 0;
    if (!s->count) /* a drop notice alone waits for the next record */
        return UINT32_MAX;
    age_due = at(s, 0)->queued_ms + s->o.flush_age_ms;
    return age_due <= now ? 0 : (uint32_t)(age_due - now);
}

/* Under the lock: drops the records up to last_seq that are still queued. */
static size_t remove_through(struct dls *s, uint64_t last_seq)
{
    size_t n = 0;
    while (s->count && at(s, 0)->seq <= last_seq) {
        pop_head(s);
        n++;
    }
    return n;
}

uint32_t dls_pump(struct dls *s, int force)
{
    uint64_t last_seq, reported, now;
    size_t n, removed;
    uint32_t wait;
    char *json;
    enum dls_verdict v;
    struct err e = ERR_INIT;

    plat_mutex_lock(s->lock);
    now = now_ms(s);
    wait = due_in(s, now, force);
    if (wait) {
        plat_mutex_unlock(s->lock);
        return wait;
    }
    json = build_batch(s, &last_seq, &reported, &n);
    plat_mutex_unlock(s->lock);
    if (!json)
        return DLS_NOT_READY_MS; /* out of memory: later */

    v = s->send(s->send_ctx, json, &e);
    cJSON_free(json);

    plat_mutex_lock(s->lock);
    now = now_ms(s);
    switch (v) {
    case DLS_SENT:
        removed = remove_through(s, last_seq);
        s->drop_pending -= reported;
        s->st.sent += removed;
        s->st.batches++;
        s->attempt = 0;
        s->retry_at = 0;
        if (s->failure_logged)
            log_info("log records reach the deployment again");
        s->refused_logged = 0;
        s->failure_logged = 0;
        s->st.last_error[0] = '\0';
        break;
    case DLS_REFUSED:
        removed = remove_through(s, last_seq);
        /* the refused records are reported as dropped in the next batch */
        s->drop_pending = s->drop_pending - reported + removed;
        s->st.refused += removed;
        s->attempt = 0;
        snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", e.msg);
        if (!s->refused_logged) {
            s->refused_logged = 1;
            log_warning("the deployment refused a batch of %zu log records (%s); it is dropped, "
                        "not retried",
                        n, e.msg);
        }
        break;
    case DLS_RETRY: {
        uint32_t rnd = 0;
        s->attempt++;
        s->st.failures++;
        plat_random_bytes(&rnd, sizeof(rnd), NULL);
        s->retry_at = now + dpol_backoff_ms(s->attempt, s->o.retry_base_ms, s->o.retry_cap_ms, rnd);
        snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", e.msg);
        if (!s->failure_logged) {
            s->failure_logged = 1;
            log_warning("cannot send log records to the deployment (%s); retrying with backoff, "
                        "at most %zu records are kept",
                        e.msg, s->o.capacity);
        }
        break;
    }
    case DLS_NOT_READY:
    default:
        s->retry_at = now + DLS_NOT_READY_MS;
        break;
    }
    plat_mutex_unlock(s->lock);
    return 0;
}

void dls_stats(struct dls *s, struct dls_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    plat_mutex_lock(s->lock);
    *out = s->st;
    out->queued = s->count;
    plat_mutex_unlock(s->lock);
}

/* ---- the service's sender: the deployment API ---- */

enum real_mode { MODE_UNKNOWN, MODE_COMPONENT, MODE_LEGACY };

struct dls_real {
    struct dls *owner;
    struct cfg *cfg;
    struct dlc *dlc;
    int ready;      /* the lifecycle has checked in once */
    int mode;       /* enum real_mode; written on the shipper thread */
    size_t current; /* the host that answered last */
    char ca_file[1024];
};

/* Remembers the endpoint the deployment takes (for dls_stats). */
static void set_mode(struct dls_real *r, int mode)
{
    r->mode = mode;
    plat_mutex_lock(r->owner->lock);
    snprintf(r->owner->st.endpoint, sizeof(r->owner->st.endpoint), "%s",
             mode == MODE_COMPONENT ? "component_log" : "kasm_session_log");
    plat_mutex_unlock(r->owner->lock);
}

static void wipe_free(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

static char *url_encoded(const char *in)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(in);
    char *out = malloc(3 * n + 1), *w = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    return out;
}

/* The request (target and body, heap) for the mode; the token goes where the interface says. */
static int make_request(int mode, const char *token, const char *records, char **target,
                        char **body)
{
    *target = NULL;
    *body = NULL;
    if (mode == MODE_LEGACY) {
        char *enc = url_encoded(token);
        size_t n;
        if (!enc)
            return ERR_NOMEM;
        n = strlen("/api/kasm_session_log?token=") + strlen(enc) + 1;
        if ((*target = malloc(n)) != NULL)
            snprintf(*target, n, "/api/kasm_session_log?token=%s", enc);
        wipe_free(enc);
        *body = strdup(records);
    } else {
        cJSON *t = cJSON_CreateString(token);
        char *tj = t ? cJSON_PrintUnformatted(t) : NULL;
        size_t n = (tj ? strlen(tj) : 0) + strlen(records) + 32;
        cJSON_Delete(t);
        *target = strdup("/api/component_log");
        if (tj && (*body = malloc(n)) != NULL)
            snprintf(*body, n, "{\"token\":%s,\"logs\":%s}", tj, records);
        if (tj) {
            memset(tj, 0, strlen(tj));
            cJSON_free(tj);
        }
    }
    if (!*target || !*body) {
        free(*target);
        wipe_free(*body);
        *target = *body = NULL;
        return ERR_NOMEM;
    }
    return 0;
}

/* Judges an answer: the verdict, e filled when it is not DLS_SENT. */
static enum dls_verdict judge(const char *host, int port, const char *what,
                              const struct dcl_response *r, struct err *e)
{
    cJSON *j;
    enum dls_verdict v = DLS_SENT;

    if (r->status >= 500 || r->status < 200) {
        err_set(e, ERR_PROTOCOL, "%s:%d answered HTTP %d to %s", host, port, r->status, what);
        return DLS_RETRY;
    }
    if (r->status >= 300) {
        err_set(e, ERR_PERMISSION, "%s:%d answered HTTP %d to %s", host, port, r->status, what);
        return DLS_REFUSED;
    }
    j = cJSON_ParseWithLength(r->body ? r->body : "", r->body_len);
    if (j) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "error_message");
        if (cJSON_IsString(m) && m->valuestring) {
            int rc = dapi_classify_error(m->valuestring);
            err_set(e, rc, "%s:%d refused %s: %.200s", host, port, what, m->valuestring);
            v = rc == ERR_EXPIRED ? DLS_RETRY : DLS_REFUSED;
        }
        cJSON_Delete(j);
    }
    return v;
}

static enum dls_verdict real_send(void *ctx, const char *records, struct err *e)
{
    struct dls_real *r = ctx;
    struct dapi_conn conn;
    char hosts[DAPI_MAX_HOSTS][256];
    char *token = NULL, *target = NULL, *body = NULL;
    enum dls_verdict v = DLS_NOT_READY;
    int registered, stopping;

    if (!r->ready) {
        struct dlc_history h;
        dlc_history(r->dlc, &h);
        if (!h.checkin.done || !h.checkin.ok) {
            err_set(e, ERR_BUSY, "the agent has not checked in with the deployment yet");
            return DLS_NOT_READY;
        }
        r->ready = 1;
    }
    dlc_cfg_lock(r->dlc);
    dreg_conn_from_cfg(&conn, r->cfg);
    for (size_t i = 0; i < conn.host_count; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "%s", conn.hosts[i]);
        conn.hosts[i] = hosts[i];
    }
    snprintf(r->ca_file, sizeof(r->ca_file), "%s", r->cfg->api_ca_file);
    conn.net.ca_file = r->ca_file;
    registered = r->cfg->registered;
    token = r->cfg->agent_jwt_token ? strdup(r->cfg->agent_jwt_token) : NULL;
    dlc_cfg_unlock(r->dlc);
    plat_mutex_lock(r->owner->lock);
    stopping = r->owner->stop;
    plat_mutex_unlock(r->owner->lock);
    /* the last attempt while the service stops is short: the service manager is waiting */
    conn.net.connect_timeout_ms = stopping ? 2000 : 5000;
    conn.net.io_timeout_ms = stopping ? 5000 : 15000;
    conn.net.max_body = 64 * 1024;
    if (!registered || !token || !*token || !conn.host_count) {
        err_set(e, ERR_BUSY, "the agent has no token or no deployment host");
        goto out;
    }
    {
        /* An expired token (or one about to expire) is for the lifecycle to exchange, not to
         * be used: wait for its new one. */
        struct dlc_token_status ts;
        dlc_token_status(r->dlc, &ts);
        if (ts.has_exp && plat_wall_time() + DLS_EXP_MARGIN_S >= ts.exp) {
            err_set(e, ERR_BUSY, "the agent token expires now; waiting for its renewal");
            goto out;
        }
    }

    for (int round = 0; round < 2; round++) {
        int mode = r->mode == MODE_LEGACY ? MODE_LEGACY : MODE_COMPONENT;
        const char *what = mode == MODE_LEGACY ? "kasm_session_log" : "component_log";
        int fallback = 0;

        free(target);
        wipe_free(body);
        if (make_request(mode, token, records, &target, &body) < 0) {
            err_set(e, ERR_NOMEM, "out of memory");
            v = DLS_RETRY;
            goto out;
        }
        v = DLS_RETRY;
        for (size_t k = 0; k < conn.host_count; k++) {
            size_t idx = (r->current + k) % conn.host_count;
            struct dcl_response resp;
            memset(&resp, 0, sizeof(resp));
            if (dcl_request(&conn.net, conn.hosts[idx], conn.port, "POST", target, body, &resp, e) <
                0) {
                v = DLS_RETRY; /* network: the next host */
                continue;
            }
            r->current = idx;
            if (mode == MODE_COMPONENT && r->mode == MODE_UNKNOWN &&
                (resp.status == 404 || resp.status == 405)) {
                fallback = 1;
            } else {
                v = judge(conn.hosts[idx], conn.port, what, &resp, e);
                if (v == DLS_SENT && r->mode == MODE_UNKNOWN)
                    set_mode(r, MODE_COMPONENT);
            }
            dcl_response_free(&resp);
            break;
        }
        if (!fallback)
            break;
        set_mode(r, MODE_LEGACY);
        log_info("the deployment has no component_log (older than 1.18): log records go to "
                 "kasm_session_log");
    }
out:
    free(target);
    wipe_free(body);
    wipe_free(token);
    return v;
}

static int env_ms(const char *name, uint32_t *out)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;
    if (!v || !*v)
        return 0;
    n = strtoul(v, &end, 10);
    if (*end || n == 0 || n > 86400000ul)
        return 0;
    *out = (uint32_t)n;
    return 1;
}

static void thread_main(void *arg)
{
    struct dls *s = arg;
    int last;

    on_shipper_thread = 1;
    for (;;) {
        uint32_t wait;
        plat_mutex_lock(s->lock);
        if (s->stop) {
            plat_mutex_unlock(s->lock);
            break;
        }
        plat_mutex_unlock(s->lock);
        wait = dls_pump(s, 0);
        if (!wait)
            continue;
        plat_mutex_lock(s->lock);
        /* a batch that became due since dls_pump looked is not waited for */
        if (!s->stop && due_in(s, now_ms(s), 0) != 0)
            plat_cond_wait(s->cond, s->lock, wait < 1000 ? wait : 1000);
        plat_mutex_unlock(s->lock);
    }
    /* the service stops: one last attempt for what waits (no retry) */
    plat_mutex_lock(s->lock);
    last = s->count || s->drop_pending;
    plat_mutex_unlock(s->lock);
    if (last)
        dls_pump(s, 1);
}

int dls_start(struct dls **out, struct cfg *cfg, struct dlc *lifecycle, struct err *e)
{
    struct dls_options o;
    struct dls_real *real = NULL;
    struct dls *s = NULL;
    int rc, level;

    *out = NULL;
    memset(&o, 0, sizeof(o));
    dlc_cfg_lock(lifecycle);
    level = dls_parse_level(cfg->log_forward_level);
    if (level < 0)
        log_warning("log_forward_level '%.32s' is not off, debug, info, warning, error or "
                    "critical; using info",
                    cfg->log_forward_level);
    dlc_cfg_unlock(lifecycle);
    if (level < 0)
        level = LOG_LEVEL_INFO;
    if (level == DLS_LEVEL_OFF) {
        log_info("log records are not sent to the deployment (log_forward_level: off)");
        return 0;
    }
    o.min_level = level;
    env_ms("KASM_LOGSHIP_AGE_MS", &o.flush_age_ms);
    env_ms("KASM_LOGSHIP_RETRY_MS", &o.retry_cap_ms);
    {
        uint32_t cap = 0;
        if (env_ms("KASM_LOGSHIP_QUEUE", &cap) && cap <= DLS_CAPACITY)
            o.capacity = cap;
    }
    if (o.retry_cap_ms && o.retry_cap_ms < DLS_RETRY_BASE_MS)
        o.retry_base_ms = o.retry_cap_ms;
    if (!(real = calloc(1, sizeof(*real))))
        return err_set(e, ERR_NOMEM, "out of memory");
    real->cfg = cfg;
    real->dlc = lifecycle;
    if ((rc = dls_create(&s, &o, real_send, real, e)) < 0) {
        free(real);
        return rc;
    }
    s->real = real;
    real->owner = s;
    if ((rc = plat_thread_start(&s->thread, thread_main, s, e)) < 0) {
        dls_destroy(s);
        free(real);
        return err_prefix(e, "cannot start the log shipper");
    }
    log_set_hook(dls_hook, s);
    log_info("log records at %s and above go to the deployment", log_level_name(level));
    *out = s;
    return 0;
}

void dls_stop(struct dls *s)
{
    struct dls_real *real;
    if (!s)
        return;
    log_set_hook(NULL, NULL); /* no new records; calls in flight have finished */
    plat_mutex_lock(s->lock);
    s->stop = 1;
    plat_cond_broadcast(s->cond);
    plat_mutex_unlock(s->lock);
    plat_thread_join(s->thread);
    real = s->real;
    dls_destroy(s);
    free(real);
}
