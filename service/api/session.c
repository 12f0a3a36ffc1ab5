/*
 * session.c - POST /session_start and /session_end: validate the payload
 * (KASM_INTERFACE.md section 5), answer `ok` at once and queue the work.
 *
 * The queued job hands the payload to the session orchestrator (service/orch/orch.h), which
 * does the work of starting or ending the session and reports to the deployment.
 */
#define LOG_MODULE "session"

#include "api_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cfg.h"
#include "log.h"
#include "orch.h"
#include "reply.h"
#include "work_queue.h"

enum field_kind { F_STRING, F_BOOL, F_OBJECT, F_LIST };

struct field_rule {
    const char *name;
    enum field_kind kind;
    int required;
};

static const struct field_rule session_fields[] = {
    {"username", F_STRING, 1},      {"kasm_id", F_STRING, 1},
    {"user_id", F_STRING, 1},       {"create_local_account", F_BOOL, 0},
    {"jwt", F_STRING, 0},           {"persistent_profile", F_STRING, 0},
    {"file_mappings", F_OBJECT, 0}, {"storage_mappings", F_OBJECT, 0},
    {"user_groups", F_LIST, 0},
};

static const char *kind_name(enum field_kind k)
{
    switch (k) {
    case F_STRING:
        return "a string";
    case F_BOOL:
        return "true or false";
    case F_OBJECT:
        return "an object";
    case F_LIST:
        return "a list";
    }
    return "?";
}

static int kind_ok(const cJSON *v, enum field_kind k)
{
    switch (k) {
    case F_STRING:
        return cJSON_IsString(v);
    case F_BOOL:
        return cJSON_IsBool(v);
    case F_OBJECT:
        return cJSON_IsObject(v);
    case F_LIST:
        return cJSON_IsArray(v);
    }
    return 0;
}

/* 0 when valid; otherwise msg names the first bad field. Extra fields are accepted. */
static int validate(const cJSON *root, char *msg, size_t cap)
{
    if (!cJSON_IsObject(root)) {
        snprintf(msg, cap, "The request body must be a JSON object");
        return -1;
    }
    for (size_t i = 0; i < sizeof(session_fields) / sizeof(session_fields[0]); i++) {
        const struct field_rule *f = &session_fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, f->name);
        if (!v || (!f->required && cJSON_IsNull(v))) {
            if (f->required) {
                snprintf(msg, cap, "Missing field: %s", f->name);
                return -1;
            }
            continue;
        }
        if (!kind_ok(v, f->kind)) {
            snprintf(msg, cap, "Invalid field: %s must be %s", f->name, kind_name(f->kind));
            return -1;
        }
        if (f->required && !v->valuestring[0]) {
            snprintf(msg, cap, "Invalid field: %s must not be empty", f->name);
            return -1;
        }
    }
    return 0;
}

struct session_job {
    int start;
    char kasm_id[128];
    struct orch *orch;
    char *payload; /* the request body (holds the session token: wiped when freed) */
    size_t len;
};

static void session_job_run(void *arg)
{
    struct session_job *j = arg;
    if (j->start)
        orch_session_start(j->orch, j->payload, j->len);
    else
        orch_session_end(j->orch, j->payload, j->len);
}

static void session_job_done(void *arg, int cancelled)
{
    struct session_job *j = arg;
    if (cancelled)
        log_warning("%s for kasm_id %s was cancelled before it ran",
                    j->start ? "session_start" : "session_end", j->kasm_id);
    if (j->payload) {
        memset(j->payload, 0, j->len);
        free(j->payload);
    }
    free(j);
}

static int session_request(struct api *a, struct mg_connection *conn, int start)
{
    const char *what = start ? "session_start" : "session_end";
    struct err e = ERR_INIT;
    char *body = NULL, msg[160];
    size_t len = 0;
    cJSON *root = NULL;
    struct session_job *job = NULL;
    char kasm_id[128];
    int status;

    if (http_read_body(conn, (size_t)a->cfg->max_json_body_bytes, &body, &len, &e) < 0) {
        log_debug("%s: %s", what, e.msg);
        status = e.code == ERR_TOO_LARGE
                     ? http_reply_error(conn, 413, "Request body too large")
                     : http_reply_error(conn, 400, "Cannot read the request body");
        goto out;
    }
    if (!(root = cJSON_ParseWithLength(body, len))) {
        status = http_reply_error(conn, 400, "The request body is not valid JSON");
        goto out;
    }
    if (validate(root, msg, sizeof(msg)) < 0) {
        log_info("%s refused: %s", what, msg);
        status = http_reply_error(conn, 400, msg);
        goto out;
    }
    if (!(job = calloc(1, sizeof(*job)))) {
        status = http_reply_error(conn, 500, "out of memory");
        goto out;
    }
    job->start = start;
    job->orch = a->orch;
    job->payload = body; /* the job owns the body from here */
    job->len = len;
    body = NULL;
    snprintf(job->kasm_id, sizeof(job->kasm_id), "%s",
             cJSON_GetObjectItemCaseSensitive(root, "kasm_id")->valuestring);
    snprintf(kasm_id, sizeof(kasm_id), "%s", job->kasm_id); /* job belongs to the queue next */
    if (wq_submit(a->queue, what, session_job_run, session_job_done, job, &e) < 0) {
        memset(job->payload, 0, job->len);
        free(job->payload);
        free(job);
        log_warning("%s for kasm_id %s refused: %s", what, kasm_id, e.msg);
        status = http_reply_error(conn, 503, e.code == ERR_BUSY ? "busy" : "The agent is stopping");
        goto out;
    }
    log_info("%s for kasm_id %s accepted", what, kasm_id);
    status = http_reply(conn, 200, "text/html; charset=utf-8", "ok", 2);
out:
    cJSON_Delete(root);
    free(body);
    return status;
}

int api_session_start(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    (void)who;
    return session_request(a, conn, 1);
}

int api_session_end(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    (void)who;
    return session_request(a, conn, 0);
}
