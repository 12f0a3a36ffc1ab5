/*
 * adm.c - the portable part of the admin channel server (adm.h): the server thread, the
 * one-request-per-connection exchange, and the commands (status, sessions, logs, token
 * status). Results are JSON objects documented in docs/admin.md; none carries a secret (the
 * log records come from the logger's ring, already redacted).
 */
#define LOG_MODULE "admin"

#include "adm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "adm_chan.h"
#include "adm_doctor.h"
#include "adm_deploy.h"
#include "adm_misc.h"
#include "api/api.h"
#include "lifecycle.h"
#include "log.h"
#include "plat.h"
#include "policy.h"
#include "sesm.h"

#define ADM_LOGS_DEFAULT 50
#define ADM_LOGS_MAX     1000
#define ADM_LOGS_BUDGET  (200u * 1024u) /* bytes of records in one reply (escaping included) */

/* agentctl's exit codes, carried in ADMIN_REPLY status */
enum adm_status {
    ADM_OK = 0,
    ADM_USAGE = 2,
    ADM_PERMISSION = 4,
    ADM_FAILED = 5,
};

struct adm {
    struct cfg *cfg;
    char cfg_path[CFG_PATH_MAX];
    char endpoint[ADM_ENDPOINT_MAX]; /* the socket path or pipe name */
    int64_t started;                 /* Unix seconds */
    uint64_t started_mono;
    struct adm_listener *listener;
    struct plat_thread *thread;
    struct plat_mutex *lock; /* guards lifecycle, sessions and the commands using them */
    struct dlc *lifecycle;
    struct sesm *sessions;
    struct api *api;
    struct adm_tail tail; /* bytes that follow the reply (screenshot), sent by adm_serve */
};

/* ---- the commands ---- */

static void adm_fail(struct proto_admin_reply *rep, int status, const char *msg)
{
    rep->status = status;
    snprintf(rep->error, sizeof(rep->error), "%s", msg);
}

static void adm_add_time(cJSON *o, const char *name, int64_t t)
{
    char when[64];
    dpol_format_time(t, when, sizeof(when));
    cJSON_AddStringToObject(o, name, when);
}

static void adm_add_token(struct adm *a, cJSON *o)
{
    struct dlc_token_status ts;
    int64_t now = plat_wall_time();

    if (a->lifecycle) {
        dlc_token_status(a->lifecycle, &ts);
    } else {
        memset(&ts, 0, sizeof(ts));
        ts.registered = a->cfg->registered;
        ts.has_token = a->cfg->agent_jwt_token != NULL;
    }
    cJSON_AddBoolToObject(o, "registered", ts.registered);
    cJSON_AddBoolToObject(o, "token_present", ts.has_token);
    if (ts.has_exp) {
        cJSON_AddNumberToObject(o, "token_expires", (double)ts.exp);
        adm_add_time(o, "token_expires_text", ts.exp);
        cJSON_AddNumberToObject(o, "token_seconds_left", (double)(ts.exp - now));
        cJSON_AddBoolToObject(o, "token_expired", ts.exp <= now);
    } else {
        cJSON_AddNullToObject(o, "token_expires");
        cJSON_AddNullToObject(o, "token_expires_text");
        cJSON_AddNullToObject(o, "token_seconds_left");
        cJSON_AddBoolToObject(o, "token_expired", 0);
    }
    adm_deploy_add_history(a->lifecycle, o);
}

/* `config`: the configuration the agent runs with, as config.yaml would hold it, with the
 * agent token's value replaced by <redacted> (the rendering is wiped before it is freed). */
static int adm_config_cmd(struct adm *a, cJSON *r, struct proto_admin_reply *rep)
{
    static const char key[] = "agent_jwt_token:";
    struct err e = ERR_INIT;
    char *yaml = NULL, *line;
    size_t len = 0;
    int rc;

    if (a->lifecycle)
        dlc_cfg_lock(a->lifecycle);
    rc = cfg_render(a->cfg, &yaml, &len, &e);
    if (a->lifecycle)
        dlc_cfg_unlock(a->lifecycle);
    if (rc < 0) {
        adm_fail(rep, ADM_FAILED, e.msg);
        return -1;
    }
    /* The token is one line "agent_jwt_token: VALUE": keep the key, drop the value. */
    for (line = yaml; line && *line;) {
        char *eol = strchr(line, '\n');
        if (strncmp(line, key, sizeof(key) - 1) == 0) {
            char *v = line + sizeof(key) - 1;
            size_t n = eol ? (size_t)(eol - v) : strlen(v);
            OPENSSL_cleanse(v, n);
            memmove(v + sizeof(" <redacted>") - 1, v + n, strlen(v + n) + 1);
            memcpy(v, " <redacted>", sizeof(" <redacted>") - 1);
            eol = strchr(v, '\n');
        }
        line = eol ? eol + 1 : NULL;
    }
    cJSON_AddStringToObject(r, "config", a->cfg_path);
    cJSON_AddStringToObject(r, "yaml", yaml);
    OPENSSL_cleanse(yaml, strlen(yaml));
    free(yaml);
    return 0;
}

static int adm_status_cmd(struct adm *a, cJSON *r)
{
    cJSON *hosts;
    unsigned running = a->sessions ? sesm_running_count(a->sessions) : 0;
    size_t nsessions = 0;

    cJSON_AddStringToObject(r, "version", KASM_VERSION);
    cJSON_AddNumberToObject(r, "pid", (double)plat_pid());
    adm_add_time(r, "started", a->started);
    cJSON_AddNumberToObject(r, "uptime_seconds",
                            (double)((plat_monotonic_ms() - a->started_mono) / 1000));
    cJSON_AddStringToObject(r, "config", a->cfg_path);
    cJSON_AddStringToObject(r, "admin_channel", a->endpoint);
    if (a->lifecycle)
        dlc_cfg_lock(a->lifecycle);
    cJSON_AddStringToObject(r, "server_id", a->cfg->server_id);
    hosts = cJSON_AddArrayToObject(r, "api_hosts");
    for (size_t i = 0; hosts && i < a->cfg->api_host_count; i++)
        cJSON_AddItemToArray(hosts, cJSON_CreateString(a->cfg->api_host[i]));
    cJSON_AddNumberToObject(r, "api_port", a->cfg->api_port);
    cJSON_AddStringToObject(r, "listen_address",
                            a->cfg->listen_address[0] ? a->cfg->listen_address : "0.0.0.0");
    cJSON_AddNumberToObject(r, "listen_port", a->api ? api_port(a->api) : a->cfg->port);
    cJSON_AddBoolToObject(r, "api_running", a->api != NULL);
    cJSON_AddBoolToObject(r, "ssl", a->cfg->ssl);
    adm_misc_status(a->cfg, a->api, r);
    if (a->lifecycle)
        dlc_cfg_unlock(a->lifecycle);
    adm_add_token(a, r);
    if (a->sessions) {
        struct sesm_row *rows = NULL;
        struct err e = ERR_INIT;
        if (sesm_table(a->sessions, &rows, &nsessions, &e) < 0)
            nsessions = 0;
        free(rows);
    }
    cJSON_AddBoolToObject(r, "session_manager", a->sessions != NULL);
    cJSON_AddNumberToObject(r, "sessions", (double)nsessions);
    cJSON_AddNumberToObject(r, "helpers_running", running);
    return 0;
}

static int adm_sessions_cmd(struct adm *a, cJSON *r, struct proto_admin_reply *rep)
{
    cJSON *arr = cJSON_AddArrayToObject(r, "sessions");
    struct sesm_row *rows = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;

    cJSON_AddBoolToObject(r, "session_manager", a->sessions != NULL);
    if (!a->sessions)
        return 0; /* none running: an empty table, said so by session_manager false */
    if (sesm_table(a->sessions, &rows, &n, &e) < 0) {
        adm_fail(rep, ADM_FAILED, e.msg);
        return -1;
    }
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddNumberToObject(o, "session_id", rows[i].session_id);
        cJSON_AddStringToObject(o, "user", rows[i].user);
        cJSON_AddStringToObject(o, "state", rows[i].state);
        cJSON_AddBoolToObject(o, "console", rows[i].console);
        cJSON_AddNumberToObject(o, "helper_pid", (double)rows[i].helper_pid);
        cJSON_AddNumberToObject(o, "since", (double)rows[i].since);
        adm_add_time(o, "since_text", rows[i].since);
        cJSON_AddNumberToObject(o, "restarts", rows[i].restarts);
        cJSON_AddItemToArray(arr, o);
    }
    free(rows);
    return 0;
}

static int adm_logs_cmd(cJSON *args, cJSON *r, struct proto_admin_reply *rep)
{
    const cJSON *jl = cJSON_GetObjectItemCaseSensitive(args, "lines");
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(args, "level");
    struct log_ring_entry *ents = NULL;
    size_t n, first, budget = 0, lines = ADM_LOGS_DEFAULT;
    int level = LOG_LEVEL_DEBUG;
    cJSON *arr;

    if (jl) {
        if (!cJSON_IsNumber(jl) || jl->valuedouble < 1 || jl->valuedouble > ADM_LOGS_MAX ||
            jl->valuedouble != (double)(int)jl->valuedouble) {
            adm_fail(rep, ADM_USAGE, "logs: lines must be a whole number from 1 to 1000");
            return -1;
        }
        lines = (size_t)jl->valuedouble;
    }
    if (jv) {
        if (!cJSON_IsString(jv) || (level = log_level_parse(jv->valuestring)) < 0) {
            adm_fail(rep, ADM_USAGE, "logs: level must be debug, info, warning, error or critical");
            return -1;
        }
    }
    n = log_ring_snapshot(&ents, ADM_LOGS_MAX);
    /* Walk back from the newest record: the last `lines` at or above the level that fit. */
    first = n;
    for (size_t k = n, taken = 0; k > 0 && taken < lines; k--) {
        size_t cost;
        if ((int)ents[k - 1].level < level)
            continue;
        cost = 2 * strlen(ents[k - 1].message) + 128;
        if (budget + cost > ADM_LOGS_BUDGET)
            break;
        budget += cost;
        first = k - 1;
        taken++;
    }
    arr = cJSON_AddArrayToObject(r, "records");
    for (size_t k = first; arr && k < n; k++) {
        char when[64];
        cJSON *o;
        if ((int)ents[k].level < level)
            continue;
        if (!(o = cJSON_CreateObject()))
            break;
        dpol_format_time(ents[k].time, when, sizeof(when));
        cJSON_AddNumberToObject(o, "time", (double)ents[k].time);
        cJSON_AddNumberToObject(o, "time_ms", ents[k].time_ms);
        cJSON_AddStringToObject(o, "time_text", when);
        cJSON_AddStringToObject(o, "level", log_level_name(ents[k].level));
        cJSON_AddStringToObject(o, "module", ents[k].module);
        cJSON_AddStringToObject(o, "message", ents[k].message);
        cJSON_AddItemToArray(arr, o);
    }
    log_ring_free(ents);
    return 0;
}

void adm_dispatch(struct adm *a, const struct proto_admin_request *req,
                  struct proto_admin_reply *rep)
{
    cJSON *args = cJSON_Parse(req->args[0] ? req->args : "{}");
    cJSON *r = cJSON_CreateObject();
    char *text = NULL;
    int rc = 0;

    memset(rep, 0, sizeof(*rep));
    if (!args || !r) {
        adm_fail(rep, ADM_FAILED, "out of memory");
        goto out;
    }
    plat_mutex_lock(a->lock);
    if (strcmp(req->command, "status") == 0)
        rc = adm_status_cmd(a, r);
    else if (strcmp(req->command, "sessions") == 0)
        rc = adm_sessions_cmd(a, r, rep);
    else if (strcmp(req->command, "config") == 0)
        rc = adm_config_cmd(a, r, rep);
    else if (strcmp(req->command, "logs") == 0)
        rc = adm_logs_cmd(args, r, rep);
    else if (strcmp(req->command, "token status") == 0)
        adm_add_token(a, r);
    else if (strcmp(req->command, "doctor") == 0)
        rc = admd_run(a->cfg, a->cfg_path, a->lifecycle, a->sessions, a->api, r);
    else if (adm_deploy_handles(req->command))
        rc = adm_deploy_cmd(a->lifecycle, req->command, args, r, rep);
    else if (strcmp(req->command, "screenshot") == 0)
        rc = adm_misc_screenshot(a->sessions, args, r, rep, &a->tail);
    else if (strcmp(req->command, "logs follow") == 0)
        rc = adm_misc_logs_follow(args, r, rep);
    else {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown command '%.64s'", req->command);
        adm_fail(rep, ADM_USAGE, msg);
        rc = -1;
    }
    plat_mutex_unlock(a->lock);
    if (rc == 0) {
        text = cJSON_PrintUnformatted(r);
        if (!text) {
            adm_fail(rep, ADM_FAILED, "out of memory");
            goto out;
        }
        rep->result = malloc(strlen(text) + 1);
        if (rep->result)
            memcpy(rep->result, text, strlen(text) + 1);
        else
            adm_fail(rep, ADM_FAILED, "out of memory");
        cJSON_free(text);
    }
out:
    cJSON_Delete(args);
    cJSON_Delete(r);
}

/* ---- the exchange on one connection ---- */

static int adm_send_reply(struct adm_conn *c, const struct proto_admin_reply *rep,
                          uint64_t deadline, struct err *e)
{
    uint8_t hdr[PROTO_HEADER_SIZE];
    char *text = NULL;
    size_t len = 0;
    int rc;

    if ((rc = proto_admin_reply_encode(rep, &text, &len, e)) < 0)
        return rc;
    proto_header_encode(hdr, PROTO_ADMIN_REPLY, (uint32_t)len, 1);
    if ((rc = adm_conn_write(c, hdr, sizeof(hdr), deadline, e)) == 0)
        rc = adm_conn_write(c, text, len, deadline, e);
    free(text);
    return rc;
}

/* The bytes that follow a reply (screenshot): DATA frames of request 1, then END. */
static int adm_send_tail(struct adm_conn *c, const struct adm_tail *t, struct err *e)
{
    uint8_t hdr[PROTO_HEADER_SIZE];
    size_t off = 0;
    int rc;

    if (!t->data)
        return 0;
    while (off < t->len) {
        size_t n = t->len - off < PROTO_DATA_MAX ? t->len - off : PROTO_DATA_MAX;
        uint64_t deadline = plat_monotonic_ms() + ADM_IO_TIMEOUT_MS;
        proto_header_encode(hdr, PROTO_DATA, (uint32_t)n, 1);
        if ((rc = adm_conn_write(c, hdr, sizeof(hdr), deadline, e)) < 0 ||
            (rc = adm_conn_write(c, t->data + off, n, deadline, e)) < 0)
            return rc;
        off += n;
    }
    proto_header_encode(hdr, PROTO_END, 0, 1);
    return adm_conn_write(c, hdr, sizeof(hdr), plat_monotonic_ms() + ADM_IO_TIMEOUT_MS, e);
}

static void adm_serve(struct adm *a, struct adm_conn *c)
{
    uint64_t deadline = plat_monotonic_ms() + ADM_IO_TIMEOUT_MS;
    uint8_t hdr[PROTO_HEADER_SIZE];
    struct proto_header h;
    struct proto_frame *f = NULL;
    struct proto_admin_request req;
    struct proto_admin_reply rep;
    struct err e = ERR_INIT;
    int rc;

    memset(&rep, 0, sizeof(rep));
    if ((rc = adm_conn_read(c, hdr, sizeof(hdr), deadline, &e)) < 0 ||
        (rc = proto_header_decode(hdr, &h, &e)) < 0)
        goto drop;
    if (h.type != PROTO_ADMIN_REQUEST) {
        rc = err_set(&e, ERR_PROTOCOL, "expected an ADMIN_REQUEST frame, got %s",
                     proto_type_name(h.type));
        goto drop;
    }
    if ((rc = proto_frame_alloc(&h, &f, &e)) < 0 ||
        (rc = adm_conn_read(c, f->payload, h.length, deadline, &e)) < 0)
        goto drop;
    if (adm_conn_authorize(c, &e) < 0) {
        log_warning("admin channel: refused a client: %s", e.msg);
        adm_fail(&rep, ADM_PERMISSION,
                 "permission denied: run agentctl as root"
#ifdef _WIN32
                 " (an elevated prompt)"
#endif
        );
        err_clear(&e);
        adm_send_reply(c, &rep, deadline, &e);
        goto out;
    }
    if ((rc = proto_admin_request_decode(f->payload, h.length, &req, &e)) < 0)
        goto drop;
    log_debug("admin channel: command '%s'", req.command);
    adm_dispatch(a, &req, &rep);
    OPENSSL_cleanse(req.args, sizeof(req.args)); /* register's token */
    OPENSSL_cleanse(f->payload, h.length);
    deadline = plat_monotonic_ms() + ADM_IO_TIMEOUT_MS; /* the command may have taken a while */
    if (adm_send_reply(c, &rep, deadline, &e) < 0 ||
        (rep.status == 0 && adm_send_tail(c, &a->tail, &e) < 0))
        log_warning("admin channel: cannot answer '%s': %s", req.command, e.msg);
    goto out;
drop:
    log_warning("admin channel: dropped a client: %s", e.msg);
out:
    free(a->tail.data);
    a->tail.data = NULL;
    a->tail.len = 0;
    proto_admin_reply_clear(&rep);
    proto_frame_free(f);
    adm_conn_close(c);
}

static void adm_thread(void *arg)
{
    struct adm *a = arg;

    for (;;) {
        struct adm_conn *c = NULL;
        struct err e = ERR_INIT;
        int rc = adm_accept(a->listener, &c, &e);
        if (rc == ERR_CANCELLED)
            break;
        if (rc < 0) {
            log_warning("admin channel: %s", e.msg);
            plat_sleep_ms(200); /* no busy loop on a persistent failure */
            continue;
        }
        adm_serve(a, c);
    }
}

/* ---- lifetime ---- */

int adm_start(const struct adm_config *c, struct adm **out, struct err *e)
{
    struct adm *a = calloc(1, sizeof(*a));
    int rc;

    *out = NULL;
    if (!a)
        return err_set(e, ERR_NOMEM, "out of memory");
    a->cfg = c->cfg;
    snprintf(a->cfg_path, sizeof(a->cfg_path), "%s", c->cfg_path ? c->cfg_path : "");
    a->started = plat_wall_time();
    a->started_mono = plat_monotonic_ms();
    if ((rc = adm_endpoint(c->cfg->admin_socket, a->endpoint, sizeof(a->endpoint), e)) < 0 ||
        (rc = plat_mutex_create(&a->lock, e)) < 0 ||
        (rc = adm_listen(a->endpoint, &a->listener, e)) < 0 ||
        (rc = plat_thread_start(&a->thread, adm_thread, a, e)) < 0) {
        adm_stop(a);
        return err_prefix(e, "cannot create the admin channel");
    }
    log_info("admin channel ready at %s", a->endpoint);
    *out = a;
    return 0;
}

void adm_attach(struct adm *a, struct dlc *lifecycle, struct sesm *sessions, struct api *api)
{
    if (!a)
        return;
    plat_mutex_lock(a->lock);
    a->lifecycle = lifecycle;
    a->sessions = sessions;
    a->api = api;
    plat_mutex_unlock(a->lock);
}

void adm_stop(struct adm *a)
{
    if (!a)
        return;
    if (a->thread) {
        adm_listener_wake(a->listener);
        plat_thread_join(a->thread);
    }
    adm_listener_close(a->listener);
    plat_mutex_destroy(a->lock);
    free(a);
}
