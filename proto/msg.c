/*
 * msg.c - the JSON control messages of proto.h: one encoder and one decoder per message.
 * Decoders require every field of the catalogue with its JSON type, ignore unknown fields,
 * refuse strings that do not fit their buffer (ERR_TOO_LARGE) and integers outside their
 * range (ERR_PARSE). Integers travel as JSON numbers, printed exactly, at most 2^53 - 1.
 */
#include "proto.h"

#include <limits.h>
#include <math.h> /* isfinite (a macro: no libm needed) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define MSG_INT_EXACT 9007199254740991.0 /* 2^53 - 1: every integer up to it is exact */
#define MSG_INT_MAX   (((int64_t)1 << 53) - 1)

/* ---- decoding helpers ---- */

static int msg_parse_max(const char *what, const void *payload, size_t len, size_t max, cJSON **out,
                         struct err *e)
{
    const char *end = NULL;
    cJSON *j;

    *out = NULL;
    if (len > max)
        return err_set(e, ERR_TOO_LARGE, "%s: %zu bytes of JSON exceed the limit of %zu", what, len,
                       max);
    j = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, 0);
    if (!j)
        return err_set(e, ERR_PARSE, "%s: the payload is not valid JSON", what);
    while (end < (const char *)payload + len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n' || *end == '\0'))
        end++;
    if (end != (const char *)payload + len) {
        cJSON_Delete(j);
        return err_set(e, ERR_PARSE, "%s: the payload has bytes after its JSON", what);
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set(e, ERR_PARSE, "%s: the payload is not a JSON object", what);
    }
    *out = j;
    return 0;
}

static int msg_parse(const char *what, const void *payload, size_t len, cJSON **out, struct err *e)
{
    return msg_parse_max(what, payload, len, PROTO_JSON_MAX, out, e);
}

static int msg_get_str(const char *what, const cJSON *o, const char *field, char *buf, size_t cap,
                       struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    size_t n;

    if (!v)
        return err_set(e, ERR_PARSE, "%s: field \"%s\" is missing", what, field);
    if (!cJSON_IsString(v) || !v->valuestring)
        return err_set(e, ERR_PARSE, "%s: field \"%s\" must be a string", what, field);
    n = strlen(v->valuestring);
    if (n >= cap)
        return err_set(e, ERR_TOO_LARGE, "%s: field \"%s\" has %zu bytes, at most %zu allowed",
                       what, field, n, cap - 1);
    memcpy(buf, v->valuestring, n + 1);
    return 0;
}

static int msg_get_num(const char *what, const cJSON *o, const char *field, double lo, double hi,
                       double *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    double d;

    if (!v)
        return err_set(e, ERR_PARSE, "%s: field \"%s\" is missing", what, field);
    if (!cJSON_IsNumber(v))
        return err_set(e, ERR_PARSE, "%s: field \"%s\" must be a number", what, field);
    d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi || d != (double)(int64_t)d)
        return err_set(e, ERR_PARSE, "%s: field \"%s\" must be an integer from %.0f to %.0f", what,
                       field, lo, hi);
    *out = d;
    return 0;
}

static int msg_get_u64(const char *what, const cJSON *o, const char *f, uint64_t *out,
                       struct err *e)
{
    double d;
    int rc = msg_get_num(what, o, f, 0, MSG_INT_EXACT, &d, e);
    if (rc == 0)
        *out = (uint64_t)d;
    return rc;
}

static int msg_get_i64(const char *what, const cJSON *o, const char *f, double lo, int64_t *out,
                       struct err *e)
{
    double d;
    int rc = msg_get_num(what, o, f, lo, MSG_INT_EXACT, &d, e);
    if (rc == 0)
        *out = (int64_t)d;
    return rc;
}

static int msg_get_u32(const char *what, const cJSON *o, const char *f, uint32_t *out,
                       struct err *e)
{
    double d;
    int rc = msg_get_num(what, o, f, 0, (double)UINT32_MAX, &d, e);
    if (rc == 0)
        *out = (uint32_t)d;
    return rc;
}

static int msg_get_int(const char *what, const cJSON *o, const char *f, int lo, int hi, int *out,
                       struct err *e)
{
    double d;
    int rc = msg_get_num(what, o, f, lo, hi, &d, e);
    if (rc == 0)
        *out = (int)d;
    return rc;
}

static int msg_get_bool(const char *what, const cJSON *o, const char *field, int *out,
                        struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);

    if (!v)
        return err_set(e, ERR_PARSE, "%s: field \"%s\" is missing", what, field);
    if (!cJSON_IsBool(v))
        return err_set(e, ERR_PARSE, "%s: field \"%s\" must be true or false", what, field);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

/* ---- encoding helpers: each returns 0 or a negative code; the object is freed by the
 * caller ---- */

static int msg_put_str(const char *what, cJSON *o, const char *field, const char *s, size_t cap,
                       struct err *e)
{
    if (memchr(s, '\0', cap) == NULL)
        return err_set(e, ERR_INVALID, "%s: field \"%s\" is not NUL-terminated", what, field);
    if (!cJSON_AddStringToObject(o, field, s))
        return err_set(e, ERR_NOMEM, "%s: out of memory", what);
    return 0;
}

static int msg_put_num(const char *what, cJSON *o, const char *field, int64_t v, int64_t lo,
                       int64_t hi, struct err *e)
{
    char text[32];

    if (v < lo || v > hi)
        return err_set(e, ERR_INVALID, "%s: field \"%s\" must be from %lld to %lld", what, field,
                       (long long)lo, (long long)hi);
    /* Printed by us: cJSON's own number printer may round integers above 2^50 or so. */
    snprintf(text, sizeof(text), "%lld", (long long)v);
    if (!cJSON_AddRawToObject(o, field, text))
        return err_set(e, ERR_NOMEM, "%s: out of memory", what);
    return 0;
}

static int msg_put_u64(const char *what, cJSON *o, const char *field, uint64_t v, struct err *e)
{
    if (v > (uint64_t)MSG_INT_MAX)
        return err_set(e, ERR_INVALID, "%s: field \"%s\" must be at most 2^53 - 1", what, field);
    return msg_put_num(what, o, field, (int64_t)v, 0, MSG_INT_MAX, e);
}

static int msg_put_i64(const char *what, cJSON *o, const char *field, int64_t v, int64_t lo,
                       struct err *e)
{
    return msg_put_num(what, o, field, v, lo, MSG_INT_MAX, e);
}

static int msg_put_bool(const char *what, cJSON *o, const char *field, int b, struct err *e)
{
    if (!cJSON_AddBoolToObject(o, field, b ? 1 : 0))
        return err_set(e, ERR_NOMEM, "%s: out of memory", what);
    return 0;
}

static int msg_finish_max(const char *what, cJSON *o, int rc, size_t max, char **out, size_t *len,
                          struct err *e)
{
    char *text = NULL;

    *out = NULL;
    *len = 0;
    if (rc == 0) {
        text = cJSON_PrintUnformatted(o);
        if (!text)
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", what);
    }
    if (rc == 0 && strlen(text) > max) {
        rc = err_set(e, ERR_TOO_LARGE, "%s: %zu bytes of JSON exceed the limit of %zu", what,
                     strlen(text), max);
        cJSON_free(text);
        text = NULL;
    }
    cJSON_Delete(o);
    if (rc == 0) {
        /* Hand out memory the caller releases with free(), whatever cJSON's allocator is. */
        size_t n = strlen(text);
        char *copy = malloc(n + 1);
        if (!copy) {
            cJSON_free(text);
            return err_set(e, ERR_NOMEM, "%s: out of memory", what);
        }
        memcpy(copy, text, n + 1);
        cJSON_free(text);
        *out = copy;
        *len = n;
    }
    return rc;
}

static int msg_finish(const char *what, cJSON *o, int rc, char **out, size_t *len, struct err *e)
{
    return msg_finish_max(what, o, rc, PROTO_JSON_MAX, out, len, e);
}

static cJSON *msg_new(const char *what, struct err *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        err_set(e, ERR_NOMEM, "%s: out of memory", what);
    return o;
}

#define STR(o, f, m)  msg_put_str(W, o, #f, (m)->f, sizeof((m)->f), e)
#define GSTR(o, f, m) msg_get_str(W, o, #f, (m)->f, sizeof((m)->f), e)
#define STATUS_LO     100
#define STATUS_HI     599
#define PIXELS_MAX    65535
#define OUT_OF_MEMORY ERR_NOMEM

/* The messages whose only field is {"path": str} (DL_OPEN, FILE_DELETE). */
static int msg_path_encode(const char *what, const char *path, size_t cap, char **out, size_t *len,
                           struct err *e)
{
    cJSON *o = msg_new(what, e);

    if (!o)
        return OUT_OF_MEMORY;
    return msg_finish(what, o, msg_put_str(what, o, "path", path, cap, e), out, len, e);
}

static int msg_path_decode(const char *what, const void *payload, size_t len, char *path,
                           size_t cap, struct err *e)
{
    cJSON *o;
    int rc;

    if ((rc = msg_parse(what, payload, len, &o, e)) < 0)
        return rc;
    rc = msg_get_str(what, o, "path", path, cap, e);
    cJSON_Delete(o);
    return rc;
}

/* ---- HELLO ---- */

int proto_hello_encode(const struct proto_hello *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "HELLO";
    cJSON *o = msg_new(W, e);
    int rc = 0;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, product, m)) == 0 && (rc = STR(o, version, m)) == 0 &&
        (rc = msg_put_num(W, o, "proto", m->proto, 0, (int64_t)UINT32_MAX, e)) == 0 &&
        (rc = STR(o, role, m)) == 0 &&
        (rc = msg_put_num(W, o, "pid", m->pid, 0, (int64_t)UINT32_MAX, e)) == 0 &&
        (rc = msg_put_num(W, o, "window", m->window, 0, (int64_t)UINT32_MAX, e)) == 0 &&
        (rc = msg_put_num(W, o, "session_id", m->session_id, 0, (int64_t)UINT32_MAX, e)) == 0 &&
        (rc = STR(o, user, m)) == 0)
        rc = msg_put_num(W, o, "shared", m->shared, 0, (int64_t)UINT32_MAX, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_hello_decode(const void *payload, size_t len, struct proto_hello *m, struct err *e)
{
    static const char W[] = "HELLO";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, product, m)) == 0 && (rc = GSTR(o, version, m)) == 0 &&
        (rc = msg_get_u32(W, o, "proto", &m->proto, e)) == 0 && (rc = GSTR(o, role, m)) == 0 &&
        (rc = msg_get_u32(W, o, "pid", &m->pid, e)) == 0 &&
        (rc = msg_get_u32(W, o, "window", &m->window, e)) == 0 &&
        (rc = msg_get_u32(W, o, "session_id", &m->session_id, e)) == 0 &&
        (rc = GSTR(o, user, m)) == 0 && cJSON_GetObjectItemCaseSensitive(o, "shared"))
        rc = msg_get_u32(W, o, "shared", &m->shared, e); /* optional: 0 when absent */
    cJSON_Delete(o);
    return rc;
}

/* ---- ERROR and UPLOAD_RESULT: {status, message} ---- */

static int status_encode(const char *W, int status, const char *message, size_t cap, char **out,
                         size_t *len, struct err *e)
{
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = msg_put_num(W, o, "status", status, STATUS_LO, STATUS_HI, e)) == 0)
        rc = msg_put_str(W, o, "message", message, cap, e);
    return msg_finish(W, o, rc, out, len, e);
}

static int status_decode(const char *W, const void *payload, size_t len, int *status, char *message,
                         size_t cap, struct err *e)
{
    cJSON *o;
    int rc;

    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = msg_get_int(W, o, "status", STATUS_LO, STATUS_HI, status, e)) == 0)
        rc = msg_get_str(W, o, "message", message, cap, e);
    cJSON_Delete(o);
    return rc;
}

int proto_error_encode(const struct proto_error *m, char **out, size_t *len, struct err *e)
{
    return status_encode("ERROR", m->status, m->message, sizeof(m->message), out, len, e);
}

int proto_error_decode(const void *payload, size_t len, struct proto_error *m, struct err *e)
{
    memset(m, 0, sizeof(*m));
    return status_decode("ERROR", payload, len, &m->status, m->message, sizeof(m->message), e);
}

int proto_upload_result_encode(const struct proto_upload_result *m, char **out, size_t *len,
                               struct err *e)
{
    return status_encode("UPLOAD_RESULT", m->status, m->message, sizeof(m->message), out, len, e);
}

int proto_upload_result_decode(const void *payload, size_t len, struct proto_upload_result *m,
                               struct err *e)
{
    memset(m, 0, sizeof(*m));
    return status_decode("UPLOAD_RESULT", payload, len, &m->status, m->message, sizeof(m->message),
                         e);
}

int proto_file_result_encode(const struct proto_file_result *m, char **out, size_t *len,
                             struct err *e)
{
    return status_encode("FILE_RESULT", m->status, m->message, sizeof(m->message), out, len, e);
}

int proto_file_result_decode(const void *payload, size_t len, struct proto_file_result *m,
                             struct err *e)
{
    memset(m, 0, sizeof(*m));
    return status_decode("FILE_RESULT", payload, len, &m->status, m->message, sizeof(m->message),
                         e);
}

/* ---- FILE_PUT and FILE_DELETE ---- */

int proto_file_put_encode(const struct proto_file_put *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "FILE_PUT";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, path, m)) == 0 && m->size > PROTO_FILE_PUT_MAX)
        rc = err_set(e, ERR_TOO_LARGE, "FILE_PUT: field \"size\" is above %llu bytes",
                     (unsigned long long)PROTO_FILE_PUT_MAX);
    if (rc == 0)
        rc = msg_put_u64(W, o, "size", m->size, e);
    if (rc == 0)
        rc = msg_put_bool(W, o, "readable", m->readable, e);
    if (rc == 0)
        rc = msg_put_bool(W, o, "writable", m->writable, e);
    if (rc == 0)
        rc = msg_put_bool(W, o, "executable", m->executable, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_file_put_decode(const void *payload, size_t len, struct proto_file_put *m, struct err *e)
{
    static const char W[] = "FILE_PUT";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, path, m)) == 0 && (rc = msg_get_u64(W, o, "size", &m->size, e)) == 0 &&
        m->size > PROTO_FILE_PUT_MAX)
        rc = err_set(e, ERR_TOO_LARGE, "FILE_PUT: field \"size\" is above %llu bytes",
                     (unsigned long long)PROTO_FILE_PUT_MAX);
    if (rc == 0 && (rc = msg_get_bool(W, o, "readable", &m->readable, e)) == 0 &&
        (rc = msg_get_bool(W, o, "writable", &m->writable, e)) == 0)
        rc = msg_get_bool(W, o, "executable", &m->executable, e);
    cJSON_Delete(o);
    return rc;
}

int proto_file_delete_encode(const struct proto_file_delete *m, char **out, size_t *len,
                             struct err *e)
{
    return msg_path_encode("FILE_DELETE", m->path, sizeof(m->path), out, len, e);
}

int proto_file_delete_decode(const void *payload, size_t len, struct proto_file_delete *m,
                             struct err *e)
{
    memset(m, 0, sizeof(*m));
    return msg_path_decode("FILE_DELETE", payload, len, m->path, sizeof(m->path), e);
}

/* ---- LOG ---- */

static int log_level_ok(const char *level)
{
    return strcmp(level, "error") == 0 || strcmp(level, "warning") == 0 ||
           strcmp(level, "info") == 0 || strcmp(level, "debug") == 0;
}

int proto_log_encode(const struct proto_log *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "LOG";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, level, m)) == 0 && !log_level_ok(m->level))
        rc = err_set(e, ERR_INVALID, "LOG: field \"level\" must be error, warning, info or debug");
    if (rc == 0)
        rc = STR(o, message, m);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_log_decode(const void *payload, size_t len, struct proto_log *m, struct err *e)
{
    static const char W[] = "LOG";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, level, m)) == 0 && !log_level_ok(m->level))
        rc = err_set(e, ERR_PARSE, "LOG: field \"level\" must be error, warning, info or debug");
    if (rc == 0)
        rc = GSTR(o, message, m);
    cJSON_Delete(o);
    return rc;
}

/* ---- DL_OPEN ---- */

int proto_dl_open_encode(const struct proto_dl_open *m, char **out, size_t *len, struct err *e)
{
    return msg_path_encode("DL_OPEN", m->path, sizeof(m->path), out, len, e);
}

int proto_dl_open_decode(const void *payload, size_t len, struct proto_dl_open *m, struct err *e)
{
    memset(m, 0, sizeof(*m));
    return msg_path_decode("DL_OPEN", payload, len, m->path, sizeof(m->path), e);
}

/* ---- DL_INFO ---- */

static int dl_kind_ok(const char *kind)
{
    return strcmp(kind, "dir") == 0 || strcmp(kind, "file") == 0;
}

int proto_dl_info_encode(const struct proto_dl_info *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "DL_INFO";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, kind, m)) == 0 && !dl_kind_ok(m->kind))
        rc = err_set(e, ERR_INVALID, "DL_INFO: field \"kind\" must be \"dir\" or \"file\"");
    if (rc == 0 && (rc = msg_put_bool(W, o, "trailing_slash", m->trailing_slash, e)) == 0 &&
        (rc = STR(o, name, m)) == 0 && (rc = msg_put_u64(W, o, "size", m->size, e)) == 0)
        rc = msg_put_i64(W, o, "mtime", m->mtime, -MSG_INT_MAX, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_dl_info_decode(const void *payload, size_t len, struct proto_dl_info *m, struct err *e)
{
    static const char W[] = "DL_INFO";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, kind, m)) == 0 && !dl_kind_ok(m->kind))
        rc = err_set(e, ERR_PARSE, "DL_INFO: field \"kind\" must be \"dir\" or \"file\"");
    if (rc == 0 && (rc = msg_get_bool(W, o, "trailing_slash", &m->trailing_slash, e)) == 0 &&
        (rc = GSTR(o, name, m)) == 0 && (rc = msg_get_u64(W, o, "size", &m->size, e)) == 0)
        rc = msg_get_i64(W, o, "mtime", -MSG_INT_EXACT, &m->mtime, e);
    cJSON_Delete(o);
    return rc;
}

/* ---- DL_READ ---- */

int proto_dl_read_encode(const struct proto_dl_read *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "DL_READ";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = msg_put_u64(W, o, "offset", m->offset, e)) == 0)
        rc = msg_put_u64(W, o, "length", m->length, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_dl_read_decode(const void *payload, size_t len, struct proto_dl_read *m, struct err *e)
{
    static const char W[] = "DL_READ";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = msg_get_u64(W, o, "offset", &m->offset, e)) == 0)
        rc = msg_get_u64(W, o, "length", &m->length, e);
    cJSON_Delete(o);
    return rc;
}

/* ---- DL_LIST ---- */

int proto_dl_list_encode(const struct proto_dl_list *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "DL_LIST";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, heading, m)) == 0)
        rc = msg_put_bool(W, o, "show_hidden", m->show_hidden, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_dl_list_decode(const void *payload, size_t len, struct proto_dl_list *m, struct err *e)
{
    static const char W[] = "DL_LIST";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, heading, m)) == 0)
        rc = msg_get_bool(W, o, "show_hidden", &m->show_hidden, e);
    cJSON_Delete(o);
    return rc;
}

/* ---- UPLOAD_BEGIN ---- */

int proto_upload_begin_encode(const struct proto_upload_begin *m, char **out, size_t *len,
                              struct err *e)
{
    static const char W[] = "UPLOAD_BEGIN";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, content_type, m)) == 0)
        rc = msg_put_i64(W, o, "content_length", m->content_length, -1, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_upload_begin_decode(const void *payload, size_t len, struct proto_upload_begin *m,
                              struct err *e)
{
    static const char W[] = "UPLOAD_BEGIN";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, content_type, m)) == 0)
        rc = msg_get_i64(W, o, "content_length", -1, &m->content_length, e);
    cJSON_Delete(o);
    return rc;
}

/* ---- SHOT and SHOT_INFO ---- */

int proto_shot_encode(const struct proto_shot *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "SHOT";
    cJSON *o = msg_new(W, e);

    if (!o)
        return OUT_OF_MEMORY;
    return msg_finish(W, o, msg_put_num(W, o, "width", m->width, 0, PIXELS_MAX, e), out, len, e);
}

int proto_shot_decode(const void *payload, size_t len, struct proto_shot *m, struct err *e)
{
    static const char W[] = "SHOT";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    rc = msg_get_int(W, o, "width", 0, PIXELS_MAX, &m->width, e);
    cJSON_Delete(o);
    return rc;
}

int proto_shot_info_encode(const struct proto_shot_info *m, char **out, size_t *len, struct err *e)
{
    static const char W[] = "SHOT_INFO";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = msg_put_num(W, o, "width", m->width, 0, PIXELS_MAX, e)) == 0 &&
        (rc = msg_put_num(W, o, "height", m->height, 0, PIXELS_MAX, e)) == 0)
        rc = msg_put_u64(W, o, "size", m->size, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_shot_info_decode(const void *payload, size_t len, struct proto_shot_info *m,
                           struct err *e)
{
    static const char W[] = "SHOT_INFO";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = msg_get_int(W, o, "width", 0, PIXELS_MAX, &m->width, e)) == 0 &&
        (rc = msg_get_int(W, o, "height", 0, PIXELS_MAX, &m->height, e)) == 0)
        rc = msg_get_u64(W, o, "size", &m->size, e);
    cJSON_Delete(o);
    return rc;
}

/* ---- ADMIN_REQUEST and ADMIN_REPLY: a command with an object of arguments, and its answer
 * with an object of results. The objects travel as JSON and are held as compact text. ---- */

/* Parses text (NULL or "": {}) as a JSON object and adds it to o under field (o owns it). */
static int admin_put_object(const char *what, cJSON *o, const char *field, const char *text,
                            size_t max, struct err *e)
{
    cJSON *v;

    if (!text || !*text) {
        v = cJSON_CreateObject();
    } else {
        size_t n = strnlen(text, max + 1);
        if (n > max)
            return err_set(e, ERR_TOO_LARGE, "%s: field \"%s\" exceeds %zu bytes", what, field,
                           max);
        v = cJSON_ParseWithLength(text, n);
        if (!v)
            return err_set(e, ERR_INVALID, "%s: field \"%s\" is not valid JSON", what, field);
    }
    if (!v)
        return err_set(e, ERR_NOMEM, "%s: out of memory", what);
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return err_set(e, ERR_INVALID, "%s: field \"%s\" must be a JSON object", what, field);
    }
    if (!cJSON_AddItemToObject(o, field, v)) {
        cJSON_Delete(v);
        return err_set(e, ERR_NOMEM, "%s: out of memory", what);
    }
    return 0;
}

/* The object under field as compact text in a new malloc'd string (*out). */
static int admin_get_object(const char *what, const cJSON *o, const char *field, char **out,
                            struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    char *text;
    size_t n;

    *out = NULL;
    if (!v)
        return err_set(e, ERR_PARSE, "%s: field \"%s\" is missing", what, field);
    if (!cJSON_IsObject(v))
        return err_set(e, ERR_PARSE, "%s: field \"%s\" must be a JSON object", what, field);
    text = cJSON_PrintUnformatted(v);
    if (!text)
        return err_set(e, ERR_NOMEM, "%s: out of memory", what);
    n = strlen(text);
    *out = malloc(n + 1);
    if (*out)
        memcpy(*out, text, n + 1);
    cJSON_free(text);
    return *out ? 0 : err_set(e, ERR_NOMEM, "%s: out of memory", what);
}

int proto_admin_request_encode(const struct proto_admin_request *m, char **out, size_t *len,
                               struct err *e)
{
    static const char W[] = "ADMIN_REQUEST";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = STR(o, command, m)) == 0 && memchr(m->args, '\0', sizeof(m->args)) == NULL)
        rc = err_set(e, ERR_INVALID, "%s: field \"args\" is not NUL-terminated", W);
    if (rc == 0)
        rc = admin_put_object(W, o, "args", m->args, sizeof(m->args) - 1, e);
    return msg_finish(W, o, rc, out, len, e);
}

int proto_admin_request_decode(const void *payload, size_t len, struct proto_admin_request *m,
                               struct err *e)
{
    static const char W[] = "ADMIN_REQUEST";
    char *args = NULL;
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse(W, payload, len, &o, e)) < 0)
        return rc;
    if ((rc = GSTR(o, command, m)) == 0 && (rc = admin_get_object(W, o, "args", &args, e)) == 0) {
        size_t n = strlen(args);
        if (n >= sizeof(m->args))
            rc = err_set(e, ERR_TOO_LARGE, "%s: field \"args\" has %zu bytes, at most %zu allowed",
                         W, n, sizeof(m->args) - 1);
        else
            memcpy(m->args, args, n + 1);
    }
    free(args);
    cJSON_Delete(o);
    return rc;
}

void proto_admin_reply_clear(struct proto_admin_reply *m)
{
    if (m) {
        free(m->result);
        m->result = NULL;
    }
}

int proto_admin_reply_encode(const struct proto_admin_reply *m, char **out, size_t *len,
                             struct err *e)
{
    static const char W[] = "ADMIN_REPLY";
    cJSON *o = msg_new(W, e);
    int rc;

    if (!o)
        return OUT_OF_MEMORY;
    if ((rc = msg_put_num(W, o, "status", m->status, 0, PROTO_ADMIN_STATUS_MAX, e)) == 0 &&
        (rc = STR(o, error, m)) == 0)
        rc = admin_put_object(W, o, "result", m->result, PROTO_ADMIN_REPLY_MAX, e);
    return msg_finish_max(W, o, rc, PROTO_ADMIN_REPLY_MAX, out, len, e);
}

int proto_admin_reply_decode(const void *payload, size_t len, struct proto_admin_reply *m,
                             struct err *e)
{
    static const char W[] = "ADMIN_REPLY";
    cJSON *o;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_parse_max(W, payload, len, PROTO_ADMIN_REPLY_MAX, &o, e)) < 0)
        return rc;
    if ((rc = msg_get_int(W, o, "status", 0, PROTO_ADMIN_STATUS_MAX, &m->status, e)) == 0 &&
        (rc = GSTR(o, error, m)) == 0)
        rc = admin_get_object(W, o, "result", &m->result, e);
    cJSON_Delete(o);
    if (rc < 0)
        proto_admin_reply_clear(m);
    return rc;
}
