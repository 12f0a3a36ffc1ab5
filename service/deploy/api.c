/*
 * api.c - the deployment API calls (api.h): request bodies, answer checks, the tolerant
 * readers of register_component and refresh_token answers, and host failover.
 */
#define LOG_MODULE "deploy"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cJSON.h>

#include "api.h"
#include "log.h"

void dapi_agent_info_free(struct dapi_agent_info *info)
{
    if (!info)
        return;
    if (info->agent_jwt_token) {
        OPENSSL_cleanse(info->agent_jwt_token, strlen(info->agent_jwt_token));
        free(info->agent_jwt_token);
    }
    if (info->server_key) {
        OPENSSL_cleanse(info->server_key, strlen(info->server_key));
        free(info->server_key);
    }
    free(info->public_jwt_cert);
    free(info->server_cert);
    memset(info, 0, sizeof(*info));
}

int dapi_classify_error(const char *message)
{
    if (!message)
        return ERR_AUTH;
    if (strstr(message, "beyond the configured refresh period"))
        return ERR_AUTH;
    if (strstr(message, "The JWT token has expired") ||
        strstr(message, "Expired JWT utilized on register_component"))
        return ERR_EXPIRED;
    return ERR_AUTH;
}

int dapi_check_answer(const char *host, int port, const char *what, int status, const char *body,
                      size_t len, void **json, struct err *e)
{
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *msg =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "error_message") : NULL;
    int rc;

    *json = NULL;
    if (cJSON_IsString(msg) && msg->valuestring) {
        rc = dapi_classify_error(msg->valuestring);
        err_set(e, rc, "%s:%d refused %s: %.200s", host, port, what, msg->valuestring);
        cJSON_Delete(root);
        return rc;
    }
    if (status >= 500) {
        cJSON_Delete(root);
        return err_set(e, ERR_NETWORK, "%s:%d answered HTTP %d to %s", host, port, status, what);
    }
    if (status == 401 || status == 403) {
        cJSON_Delete(root);
        return err_set(e, ERR_AUTH, "%s:%d answered HTTP %d (access denied) to %s", host, port,
                       status, what);
    }
    if (status < 200 || status >= 300) {
        cJSON_Delete(root);
        return err_set(e, ERR_PROTOCOL, "%s:%d answered HTTP %d to %s", host, port, status, what);
    }
    if (!root) {
        return err_set(e, ERR_PROTOCOL, "%s:%d answered %s with something that is not JSON", host,
                       port, what);
    }
    *json = root;
    return 0;
}

static char *dup_string(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring)
        return NULL;
    return strdup(it->valuestring);
}

/* true/false, or the strings "true"/"false", or 0/1. -1 when absent or unreadable. */
static int read_flag(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsBool(it))
        return cJSON_IsTrue(it) ? 1 : 0;
    if (cJSON_IsNumber(it))
        return it->valuedouble != 0;
    if (cJSON_IsString(it) && it->valuestring) {
        if (!strcmp(it->valuestring, "true") || !strcmp(it->valuestring, "True"))
            return 1;
        if (!strcmp(it->valuestring, "false") || !strcmp(it->valuestring, "False"))
            return 0;
    }
    return -1;
}

int dapi_parse_agent_info(const char *body, size_t len, struct dapi_agent_info *out, struct err *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *sa;
    int mu, sso, rc = 0;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        rc = err_set(e, ERR_PROTOCOL, "the registration answer is not a JSON object");
        goto out;
    }
    sa = cJSON_GetObjectItemCaseSensitive(root, "server_agent");
    if (!cJSON_IsObject(sa))
        sa = root; /* tolerant: the fields at the top level */
    out->agent_jwt_token = dup_string(sa, "agent_jwt_token");
    out->public_jwt_cert = dup_string(sa, "public_jwt_cert");
    out->server_cert = dup_string(sa, "server_cert");
    out->server_key = dup_string(sa, "server_key");
    mu = read_flag(sa, "multi_user");
    sso = read_flag(sa, "user_sso");
    if (mu >= 0 && sso >= 0) {
        out->multi_user = mu;
        out->user_sso = sso;
        out->have_flags = 1;
    }
    if (!out->agent_jwt_token) {
        dapi_agent_info_free(out);
        rc = err_set(e, ERR_PROTOCOL, "the registration answer has no agent_jwt_token");
    }
out:
    cJSON_Delete(root);
    return rc;
}

int dapi_parse_refresh(const char *body, size_t len, char **token, struct err *e)
{
    static const char *const names[] = {"agent_jwt_token", "auth_token", "token"};
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *scopes[2];
    int rc = 0;

    *token = NULL;
    if (!cJSON_IsObject(root)) {
        rc = err_set(e, ERR_PROTOCOL, "the refresh_token answer is not a JSON object");
        goto out;
    }
    scopes[0] = root;
    scopes[1] = cJSON_GetObjectItemCaseSensitive(root, "server_agent");
    for (size_t s = 0; s < 2 && !*token; s++) {
        if (!cJSON_IsObject(scopes[s]))
            continue;
        for (size_t i = 0; i < 3 && !*token; i++)
            *token = dup_string(scopes[s], names[i]);
    }
    if (!*token) {
        size_t n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, root)
        {
            n++;
        }
        rc = err_set(e, ERR_PROTOCOL,
                     "the refresh_token answer has none of agent_jwt_token, auth_token, token "
                     "(%zu other keys)",
                     n);
    }
out:
    cJSON_Delete(root);
    return rc;
}

char *dapi_register_body(const char *reg_token, const char *server_id, const char *hostname,
                         const char *service_status)
{
    cJSON *root = cJSON_CreateObject(), *tc;
    char *text = NULL;

    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "type", "server_agent");
    if (reg_token)
        cJSON_AddStringToObject(root, "registration_token", reg_token);
    tc = cJSON_AddObjectToObject(root, "target_component");
    if (tc) {
        if (server_id && *server_id)
            cJSON_AddStringToObject(tc, "id", server_id);
        cJSON_AddStringToObject(tc, "type", "server_agent");
        cJSON_AddBoolToObject(tc, "auto_configure", 1);
        cJSON_AddStringToObject(tc, "hostname", hostname ? hostname : "");
        cJSON_AddStringToObject(tc, "service_status", service_status);
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    return text;
}

/* ---- transport ---- */

static int url_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (n + 4 >= cap)
            return -1;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return 0;
}

/* path + "?token=" + the encoded token (heap); the result holds a secret. */
static char *target_with_token(const char *path, const char *token)
{
    size_t cap = strlen(path) + (token ? strlen(token) * 3 : 0) + 16;
    char *t = malloc(cap);
    size_t n;
    if (!t)
        return NULL;
    n = (size_t)snprintf(t, cap, "%s", path);
    if (token) {
        n += (size_t)snprintf(t + n, cap - n, "?token=");
        if (url_encode(token, t + n, cap - n) < 0) {
            free(t);
            return NULL;
        }
    }
    return t;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int dapi_healthcheck(const struct dcl_options *net, const char *host, int port, struct err *e)
{
    return dapi_healthcheck_date(net, host, port, NULL, 0, e);
}

int dapi_healthcheck_date(const struct dcl_options *net, const char *host, int port, char *date,
                          size_t cap, struct err *e)
{
    struct dcl_response r;
    void *json = NULL;
    int rc;

    if (date && cap)
        date[0] = '\0';
    rc = dcl_request(net, host, port, "GET", "/api/__healthcheck", NULL, &r, e);
    if (rc < 0)
        return err_prefix(e, "the health check of %s:%d failed", host, port);
    if (date && cap && !dcl_header_get(r.headers, "Date", date, cap))
        date[0] = '\0';
    rc = dapi_check_answer(host, port, "the health check", r.status, r.body, r.body_len, &json, e);
    cJSON_Delete(json);
    dcl_response_free(&r);
    return rc;
}

/* Network-level failures that another host may not have. */
static int try_next_host(int rc)
{
    return rc == ERR_NETWORK || rc == ERR_TIMEOUT || rc == ERR_PROTOCOL;
}

/*
 * One call with failover: health check, then the request, on each host in turn starting
 * with the current one. On success *resp holds the answer (status 2xx, no error_message).
 */
static int call(struct dapi_conn *c, const char *method, const char *path, const char *token,
                const char *body, const char *what, struct dcl_response *resp, struct err *e)
{
    char *target = target_with_token(path, token);
    int rc = ERR_INVALID;

    memset(resp, 0, sizeof(*resp));
    if (!target)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (c->host_count == 0) {
        rc = err_set(e, ERR_INVALID, "no deployment host (api_host) is configured");
        goto out;
    }
    for (size_t k = 0; k < c->host_count; k++) {
        size_t idx = (c->current + k) % c->host_count;
        const char *host = c->hosts[idx];
        void *json = NULL;

        if ((rc = dapi_healthcheck(&c->net, host, c->port, e)) < 0) {
            if (c->host_count > 1)
                log_warning("%s; trying the next deployment host", e ? e->msg : "");
            continue;
        }
        rc = dcl_request(&c->net, host, c->port, method, target, body, resp, e);
        if (rc == 0) {
            rc = dapi_check_answer(host, c->port, what, resp->status, resp->body, resp->body_len,
                                   &json, e);
            cJSON_Delete(json);
        }
        if (rc == 0) {
            if (idx != c->current)
                log_info("the deployment API answers on %s:%d now", host, c->port);
            c->current = idx;
            break;
        }
        dcl_response_free(resp);
        if (!try_next_host(rc))
            break;
        if (c->host_count > 1 && k + 1 < c->host_count)
            log_warning("%s; trying the next deployment host", e ? e->msg : "");
    }
out:
    wipe_free(target);
    return rc;
}

int dapi_register(struct dapi_conn *c, const char *reg_token, const char *agent_token,
                  const char *server_id, const char *hostname, const char *service_status,
                  struct dapi_agent_info *out, struct err *e)
{
    struct dcl_response r;
    char *body = dapi_register_body(reg_token, server_id, hostname, service_status);
    int rc;

    memset(out, 0, sizeof(*out));
    if (!body)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = call(c, "POST", "/api/admin/register_component", reg_token ? NULL : agent_token, body,
              reg_token ? "the registration" : "the check-in", &r, e);
    wipe_free(body);
    if (rc < 0)
        return rc;
    rc = dapi_parse_agent_info(r.body, r.body_len, out, e);
    dcl_response_free(&r);
    return rc;
}

int dapi_refresh(struct dapi_conn *c, const char *token, char **new_token, struct err *e)
{
    struct dcl_response r;
    cJSON *obj = cJSON_CreateObject();
    char *body = NULL;
    int rc;

    *new_token = NULL;
    if (!obj || !cJSON_AddStringToObject(obj, "token", token) ||
        !(body = cJSON_PrintUnformatted(obj))) {
        cJSON_Delete(obj);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(obj); /* the token inside is freed with it; cJSON does not wipe */
    rc = call(c, "POST", "/api/admin/refresh_token", token, body, "the token refresh", &r, e);
    wipe_free(body);
    if (rc < 0)
        return rc;
    rc = dapi_parse_refresh(r.body, r.body_len, new_token, e);
    dcl_response_free(&r);
    return rc;
}

int dapi_set_server_status(struct dapi_conn *c, const char *token, const char *status,
                           const char *message, struct err *e)
{
    struct dcl_response r;
    cJSON *obj = cJSON_CreateObject();
    char *body = NULL;
    int rc;

    if (!obj)
        return err_set(e, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(obj, "status", status);
    cJSON_AddStringToObject(obj, "status_message", message ? message : "");
    cJSON_AddNumberToObject(obj, "status_progress", 100);
    body = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!body)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = call(c, "POST", "/api/set_server_status", token, body, "the keepalive", &r, e);
    free(body);
    if (rc == 0)
        dcl_response_free(&r);
    return rc;
}

/* ---- session calls ---- */

/*
 * Like call(), for answers that are raw bytes (a password, a file): an error_message in a
 * JSON answer or a status that is not 2xx is an error; any other body is the answer.
 */
static int call_raw(struct dapi_conn *c, const char *method, const char *path, const char *token,
                    const char *body, const char *what, struct dcl_response *resp, struct err *e)
{
    char *target = target_with_token(path, token);
    int rc = ERR_INVALID;

    memset(resp, 0, sizeof(*resp));
    if (!target)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (c->host_count == 0) {
        rc = err_set(e, ERR_INVALID, "no deployment host (api_host) is configured");
        goto out;
    }
    for (size_t k = 0; k < c->host_count; k++) {
        size_t idx = (c->current + k) % c->host_count;
        const char *host = c->hosts[idx];
        void *json = NULL;

        if ((rc = dapi_healthcheck(&c->net, host, c->port, e)) < 0)
            continue;
        rc = dcl_request(&c->net, host, c->port, method, target, body, resp, e);
        if (rc == 0) {
            int is_json = resp->body_len && resp->body[0] == '{';
            if (is_json || resp->status < 200 || resp->status >= 300) {
                rc = dapi_check_answer(host, c->port, what, resp->status, resp->body,
                                       resp->body_len, &json, e);
                cJSON_Delete(json);
                if (rc == ERR_PROTOCOL && resp->status >= 200 && resp->status < 300)
                    rc = 0; /* a 2xx body that only looks like JSON: raw data */
            }
        }
        if (rc == 0) {
            c->current = idx;
            break;
        }
        dcl_response_free(resp);
        if (!try_next_host(rc))
            break;
    }
out:
    wipe_free(target);
    return rc;
}

int dapi_set_session_status(struct dapi_conn *c, const char *session_token, const char *body,
                            struct err *e)
{
    struct dcl_response r;
    int rc = call(c, "POST", "/api/set_kasm_session_status", session_token, body,
                  "set_kasm_session_status", &r, e);
    if (rc == 0)
        dcl_response_free(&r);
    return rc;
}

int dapi_get_session_credential(struct dapi_conn *c, const char *session_token, char **password,
                                struct err *e)
{
    struct dcl_response r;
    size_t n;
    int rc;

    *password = NULL;
    rc = call_raw(c, "GET", "/api/set_kasm_session_credential", session_token, NULL,
                  "set_kasm_session_credential", &r, e);
    if (rc < 0)
        return rc;
    n = r.body_len;
    while (n && (r.body[n - 1] == '\n' || r.body[n - 1] == '\r'))
        n--;
    if (n == 0 || memchr(r.body, '\0', n)) {
        rc = err_set(e, ERR_PROTOCOL, "set_kasm_session_credential answered no usable password");
    } else if (!(*password = malloc(n + 1))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
    } else {
        memcpy(*password, r.body, n);
        (*password)[n] = '\0';
    }
    OPENSSL_cleanse(r.body, r.body_len);
    dcl_response_free(&r);
    return rc;
}

int dapi_get_file_mapping_contents(struct dapi_conn *c, const char *map_token, char **data,
                                   size_t *len, struct err *e)
{
    struct dcl_response r;
    int rc;

    *data = NULL;
    *len = 0;
    rc = call_raw(c, "GET", "/api/admin/get_file_mapping_contents", map_token, NULL,
                  "get_file_mapping_contents", &r, e);
    if (rc < 0)
        return rc;
    *data = r.body; /* NUL-terminated by the client */
    *len = r.body_len;
    r.body = NULL;
    dcl_response_free(&r);
    return 0;
}
