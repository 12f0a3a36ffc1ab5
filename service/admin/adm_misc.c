/*
 * adm_misc.c - the admin commands `screenshot` (a PNG from a session's helper, sent after the
 * reply as DATA frames) and `logs follow` (records after a sequence number of the logger's
 * ring), and the certificate, upload and error fields of `status` (adm_misc.h).
 */
#define LOG_MODULE "admin"

#include "adm_misc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cfg.h"
#include "api/helper_client.h"
#include "log.h"
#include "plat.h"
#include "policy.h"
#include "sesm.h"
#include "tls_info.h"

#define ADM_MISC_USAGE       2
#define ADM_MISC_FAILED      5
#define ADM_MISC_NO_SHOT     6 /* no helper in the session, or it cannot take a screenshot */
#define ADM_SHOT_WIDTH_MIN   16
#define ADM_SHOT_WIDTH_MAX   3840
#define ADM_SHOT_TIMEOUT_MS  20000u /* the longest wait for one frame from the helper */
#define ADM_FOLLOW_MAX       1000
#define ADM_FOLLOW_BUDGET    (200u * 1024u) /* bytes of records in one reply */
#define ADM_FOLLOW_LINES_DEF 10

static void adm_misc_fail(struct proto_admin_reply *rep, int status, const char *msg)
{
    rep->status = status;
    snprintf(rep->error, sizeof(rep->error), "%s", msg);
}

static void adm_misc_time(cJSON *o, const char *name, int64_t t)
{
    char when[64];
    dpol_format_time(t, when, sizeof(when));
    cJSON_AddStringToObject(o, name, when);
}

/* ---- status ---- */

void adm_misc_status(const struct cfg *cfg, struct api *api, cJSON *r)
{
    struct tls_cert_info ci;
    struct err e = ERR_INIT;
    int64_t now = plat_wall_time();

    if (!cfg->ssl) {
        cJSON_AddNullToObject(r, "cert_path");
        cJSON_AddNullToObject(r, "cert_subject");
        cJSON_AddNullToObject(r, "cert_issuer");
        cJSON_AddNullToObject(r, "cert_expires");
        cJSON_AddNullToObject(r, "cert_expires_text");
        cJSON_AddNullToObject(r, "cert_seconds_left");
        cJSON_AddBoolToObject(r, "cert_expired", 0);
        cJSON_AddStringToObject(r, "cert_error", "ssl is off: the API serves plain HTTP");
    } else if (tls_cert_info_read(cfg->server_public_key, &ci, &e) < 0) {
        cJSON_AddStringToObject(r, "cert_path", cfg->server_public_key);
        cJSON_AddNullToObject(r, "cert_subject");
        cJSON_AddNullToObject(r, "cert_issuer");
        cJSON_AddNullToObject(r, "cert_expires");
        cJSON_AddNullToObject(r, "cert_expires_text");
        cJSON_AddNullToObject(r, "cert_seconds_left");
        cJSON_AddBoolToObject(r, "cert_expired", 0);
        cJSON_AddStringToObject(r, "cert_error", e.msg);
    } else {
        cJSON_AddStringToObject(r, "cert_path", cfg->server_public_key);
        cJSON_AddStringToObject(r, "cert_subject", ci.subject);
        cJSON_AddStringToObject(r, "cert_issuer", ci.issuer);
        cJSON_AddNumberToObject(r, "cert_expires", (double)ci.not_after);
        adm_misc_time(r, "cert_expires_text", ci.not_after);
        cJSON_AddNumberToObject(r, "cert_seconds_left", (double)(ci.not_after - now));
        cJSON_AddBoolToObject(r, "cert_expired", ci.not_after <= now);
        cJSON_AddNullToObject(r, "cert_error");
    }
    cJSON_AddNumberToObject(r, "uploads_in_flight", api ? api_uploads_in_flight(api) : 0);
    cJSON_AddNumberToObject(r, "errors_last_hour", log_error_count(now));
}

/* ---- screenshot ---- */

static int adm_misc_row_cmp(const void *a, const void *b)
{
    const struct sesm_row *x = a, *y = b;
    return x->session_id < y->session_id ? -1 : x->session_id > y->session_id;
}

/* "the sessions are 1 (root), 2 (alice)" or "there are no sessions" into out. */
static void adm_misc_known_sessions(struct sesm *sessions, char *out, size_t cap)
{
    struct sesm_row *rows = NULL;
    size_t n = 0, used;
    struct err e = ERR_INIT;

    snprintf(out, cap, "there are no sessions");
    if (sesm_table(sessions, &rows, &n, &e) < 0 || n == 0)
        goto out;
    qsort(rows, n, sizeof(*rows), adm_misc_row_cmp);
    used = (size_t)snprintf(out, cap, "the sessions are");
    for (size_t k = 0; k < n && used < cap; k++)
        used += (size_t)snprintf(out + used, cap - used, "%s %u (%s)", k ? "," : "",
                                 (unsigned)rows[k].session_id, rows[k].user);
out:
    free(rows);
}

static int adm_misc_int_arg(const cJSON *args, const char *name, long lo, long hi, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
        v->valuedouble != (double)(long)v->valuedouble)
        return -1;
    *out = (long)v->valuedouble;
    return 1;
}

int adm_misc_screenshot(struct sesm *sessions, const cJSON *args, cJSON *r,
                        struct proto_admin_reply *rep, struct adm_tail *tail)
{
    struct sesm_lease *lease = NULL;
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    char msg[PROTO_TEXT_MAX], known[600];
    long session = -1, width = ADM_SHOT_WIDTH_MAX;
    int rc, status = 0;

    memset(&shot, 0, sizeof(shot));
    tail->data = NULL;
    tail->len = 0;
    if (adm_misc_int_arg(args, "session", 0, 0x7fffffffL, &session) <= 0) {
        adm_misc_fail(rep, ADM_MISC_USAGE, "screenshot: --session N (a session id) is required");
        return -1;
    }
    if (adm_misc_int_arg(args, "width", ADM_SHOT_WIDTH_MIN, ADM_SHOT_WIDTH_MAX, &width) < 0) {
        adm_misc_fail(rep, ADM_MISC_USAGE, "screenshot: width must be a number from 16 to 3840");
        return -1;
    }
    if (!sessions) {
        adm_misc_fail(rep, ADM_MISC_NO_SHOT,
                      "screenshot: the session manager is not running (see the agent log)");
        return -1;
    }
    rc = sesm_acquire_session(sessions, (uint32_t)session, &lease, &e);
    if (rc == ERR_NOT_FOUND) {
        adm_misc_known_sessions(sessions, known, sizeof(known));
        snprintf(msg, sizeof(msg), "screenshot: %.300s; %.600s (agentctl sessions)", e.msg, known);
        adm_misc_fail(rep, ADM_MISC_USAGE, msg);
        return -1;
    }
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "screenshot: %s", e.msg);
        adm_misc_fail(rep, ADM_MISC_NO_SHOT, msg);
        return -1;
    }
    rc = hcl_shot_take(sesm_lease_mux(lease), (int)width, ADM_SHOT_TIMEOUT_MS, &shot, &status, &e);
    sesm_release(lease);
    if (rc < 0) {
        log_info("agentctl screenshot of session %ld: %s", session, e.msg);
        snprintf(msg, sizeof(msg), "screenshot: the helper of session %ld: %s (%d)", session, e.msg,
                 status);
        adm_misc_fail(rep, status == 503 ? ADM_MISC_NO_SHOT : ADM_MISC_FAILED, msg);
        return -1;
    }
    cJSON_AddNumberToObject(r, "session", (double)session);
    cJSON_AddNumberToObject(r, "width", shot.width);
    cJSON_AddNumberToObject(r, "height", shot.height);
    cJSON_AddNumberToObject(r, "bytes", (double)shot.size);
    log_info("agentctl screenshot of session %ld: %dx%d, %zu bytes", session, shot.width,
             shot.height, shot.size);
    tail->data = shot.png;
    tail->len = shot.size;
    return 0;
}

/* ---- logs follow ---- */

static cJSON *adm_misc_record(const struct log_ring_entry *x)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "seq", (double)x->seq);
    cJSON_AddNumberToObject(o, "time", (double)x->time);
    cJSON_AddNumberToObject(o, "time_ms", x->time_ms);
    adm_misc_time(o, "time_text", x->time);
    cJSON_AddStringToObject(o, "level", log_level_name(x->level));
    cJSON_AddStringToObject(o, "module", x->module);
    cJSON_AddStringToObject(o, "message", x->message);
    return o;
}

int adm_misc_logs_follow(const cJSON *args, cJSON *r, struct proto_admin_reply *rep)
{
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(args, "level");
    struct log_ring_entry *ents = NULL;
    struct log_ring_pos pos;
    long lines = ADM_FOLLOW_LINES_DEF;
    double after = 0;
    int level = LOG_LEVEL_DEBUG, has_after;
    size_t n, first, end, budget = 0;
    uint64_t next;
    cJSON *arr;
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(args, "after");

    has_after = ja != NULL;
    if (ja && (!cJSON_IsNumber(ja) || ja->valuedouble < 0 || ja->valuedouble > 9007199254740992.0 ||
               ja->valuedouble != (double)(uint64_t)ja->valuedouble)) {
        adm_misc_fail(rep, ADM_MISC_USAGE, "logs follow: after must be a record number");
        return -1;
    }
    if (ja)
        after = ja->valuedouble;
    if (adm_misc_int_arg(args, "lines", 1, ADM_FOLLOW_MAX, &lines) < 0) {
        adm_misc_fail(rep, ADM_MISC_USAGE, "logs: lines must be a whole number from 1 to 1000");
        return -1;
    }
    if (jv && (!cJSON_IsString(jv) || (level = log_level_parse(jv->valuestring)) < 0)) {
        adm_misc_fail(rep, ADM_MISC_USAGE,
                      "logs: level must be debug, info, warning, error or critical");
        return -1;
    }
    n = log_ring_since((uint64_t)after, ADM_FOLLOW_MAX, &ents, &pos);
    if (!has_after) {
        /* The start: the last `lines` records at or above the level that fit. */
        first = n;
        for (size_t k = n, taken = 0; k > 0 && taken < (size_t)lines; k--) {
            size_t cost;
            if ((int)ents[k - 1].level < level)
                continue;
            cost = 2 * strlen(ents[k - 1].message) + 160;
            if (budget + cost > ADM_FOLLOW_BUDGET)
                break;
            budget += cost;
            first = k - 1;
            taken++;
        }
        end = n;
        next = pos.last;
        pos.missed = 0;
    } else {
        /* Going on: the records after `after`, as many as fit; next is the last one looked at. */
        first = 0;
        next = pos.next;
        for (end = 0; end < n; end++) {
            size_t cost = 2 * strlen(ents[end].message) + 160;
            if ((int)ents[end].level < level)
                continue;
            if (budget + cost > ADM_FOLLOW_BUDGET)
                break;
            budget += cost;
        }
        if (end < n)
            next = end ? ents[end - 1].seq : (uint64_t)after;
    }
    arr = cJSON_AddArrayToObject(r, "records");
    for (size_t k = first; arr && k < end; k++) {
        cJSON *o;
        if ((int)ents[k].level < level)
            continue;
        if (!(o = adm_misc_record(&ents[k])))
            break;
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(r, "next", (double)next);
    cJSON_AddNumberToObject(r, "last", (double)pos.last);
    cJSON_AddNumberToObject(r, "missed", (double)pos.missed);
    log_ring_free(ents);
    return 0;
}
