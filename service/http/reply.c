/*
 * reply.c - responses, CORS headers and bounded body reads for the API handlers (reply.h).
 *
 * Every response is written whole here (status line, headers, body) so that no civetweb
 * page and no header we did not choose reaches a client.
 */
#include "reply.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

const char *http_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

/* The Origin of the request when it is a plain token of printable characters, else "*". */
static const char *cors_origin(const struct mg_connection *conn)
{
    const char *o = mg_get_header(conn, "Origin");
    if (!o || !*o || strlen(o) > 512)
        return "*";
    for (const char *p = o; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return "*";
    return o;
}

int http_reply(struct mg_connection *conn, int status, const char *content_type, const void *body,
               size_t len)
{
    const char *origin = cors_origin(conn);
    char buf[4096];
    int head;

    /* head and a small body in one write: one TLS record, one syscall */
    head = snprintf(buf, sizeof(buf),
                    "HTTP/1.1 %d %s\r\n"
                    "Content-Type: %s\r\n"
                    "Content-Length: %lu\r\n"
                    "Cache-Control: no-store\r\n"
                    "X-Content-Type-Options: nosniff\r\n"
                    "Access-Control-Allow-Origin: %s\r\n"
                    "%s"
                    "\r\n",
                    status, http_status_text(status), content_type ? content_type : "text/plain",
                    (unsigned long)len, origin, strcmp(origin, "*") ? "Vary: Origin\r\n" : "");
    if (head < 0 || (size_t)head >= sizeof(buf))
        return status; /* cannot happen: the origin is at most 512 bytes */
    if (len && len <= sizeof(buf) - (size_t)head) {
        memcpy(buf + head, body, len);
        mg_write(conn, buf, (size_t)head + len);
        return status;
    }
    mg_write(conn, buf, (size_t)head);
    if (len)
        mg_write(conn, body, len);
    return status;
}

int http_reply_head(struct mg_connection *conn, int status, const char *content_type,
                    long long content_length, const char *extra)
{
    const char *origin = cors_origin(conn);
    char length[48] = "";

    if (content_length >= 0)
        snprintf(length, sizeof(length), "Content-Length: %lld\r\n", content_length);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\n"
              "%s%s%s"
              "%s"
              "X-Content-Type-Options: nosniff\r\n"
              "Access-Control-Allow-Origin: %s\r\n"
              "%s%s"
              "\r\n",
              status, http_status_text(status), content_type ? "Content-Type: " : "",
              content_type ? content_type : "", content_type ? "\r\n" : "", length, origin,
              strcmp(origin, "*") ? "Vary: Origin\r\n" : "", extra ? extra : "");
    return status;
}

int http_reply_json(struct mg_connection *conn, int status, const char *json)
{
    return http_reply(conn, status, "application/json", json, strlen(json));
}

int http_reply_error(struct mg_connection *conn, int status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    if (o && cJSON_AddStringToObject(o, "error", msg))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return http_reply_json(conn, 500, "{\"error\": \"out of memory\"}");
    http_reply_json(conn, status, text);
    cJSON_free(text);
    return status;
}

int http_reply_preflight(struct mg_connection *conn)
{
    const char *origin = cors_origin(conn);
    mg_printf(conn,
              "HTTP/1.1 204 No Content\r\n"
              "Access-Control-Allow-Origin: %s\r\n"
              "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
              "Access-Control-Allow-Headers: Authorization, Content-Type, X-Requested-With, "
              "Cache-Control\r\n"
              "Access-Control-Max-Age: 600\r\n"
              "%s"
              "Content-Length: 0\r\n"
              "\r\n",
              origin, strcmp(origin, "*") ? "Vary: Origin\r\n" : "");
    return 204;
}

int http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len, struct err *e)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    size_t cap, used = 0;
    char *buf = NULL;
    int rc;

    *out = NULL;
    *len = 0;
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > max)
        return err_set(e, ERR_TOO_LARGE, "the request body is larger than %zu bytes", max);
    cap = ri->content_length >= 0 ? (size_t)ri->content_length : 4096;
    if (!(buf = malloc(cap + 1)))
        return err_set(e, ERR_NOMEM, "out of memory reading the request body");
    for (;;) {
        int n;
        if (used == cap) {
            char *nb;
            if (ri->content_length >= 0)
                break;
            if (cap >= max) {
                /* one more byte tells "exactly max" from "more than max" */
                char probe;
                if (mg_read(conn, &probe, 1) > 0) {
                    rc =
                        err_set(e, ERR_TOO_LARGE, "the request body is larger than %zu bytes", max);
                    goto fail;
                }
                break;
            }
            cap = cap * 2 > max ? max : cap * 2;
            if (!(nb = realloc(buf, cap + 1))) {
                rc = err_set(e, ERR_NOMEM, "out of memory reading the request body");
                goto fail;
            }
            buf = nb;
        }
        n = mg_read(conn, buf + used, cap - used);
        if (n < 0) {
            rc = err_set(e, ERR_IO, "reading the request body failed");
            goto fail;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (ri->content_length >= 0 && used != (size_t)ri->content_length) {
        rc = err_set(e, ERR_IO, "the client sent %zu of %lld body bytes", used, ri->content_length);
        goto fail;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return 0;
fail:
    free(buf);
    return rc;
}

int http_query_param(const struct mg_connection *conn, const char *name, char *out, size_t cap)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    int n;
    if (!ri->query_string)
        return ERR_NOT_FOUND;
    n = mg_get_var(ri->query_string, strlen(ri->query_string), name, out, cap);
    if (n == -1)
        return ERR_NOT_FOUND;
    if (n < 0)
        return ERR_TOO_LARGE;
    return 0;
}
