/*
 * reply.h - writing responses and reading request bodies for the API handlers: JSON errors
 * {"error": "..."}, CORS headers on every answer, bounded body reads.
 */
#ifndef KASM_HTTP_REPLY_H
#define KASM_HTTP_REPLY_H

#include <stddef.h>

#include "err.h"

struct mg_connection;

/* Sends a complete response; returns status. content_type NULL means text/plain. */
int http_reply(struct mg_connection *conn, int status, const char *content_type, const void *body,
               size_t len);
/*
 * The status line and headers (CORS included, no Cache-Control) of a response whose body the
 * caller writes (or that has none): content_length < 0 sends no Content-Length; content_type
 * NULL sends none; extra holds more header lines, each ending in CRLF, or NULL. Returns status.
 */
int http_reply_head(struct mg_connection *conn, int status, const char *content_type,
                    long long content_length, const char *extra);
/* {"error": msg} with the given status; returns status. */
int http_reply_error(struct mg_connection *conn, int status, const char *msg);
/* A JSON text body; returns status. */
int http_reply_json(struct mg_connection *conn, int status, const char *json);
/* The answer to a CORS preflight (204); returns 204. */
int http_reply_preflight(struct mg_connection *conn);
/* The standard reason phrase of a status ("Not Found"). */
const char *http_status_text(int status);

/*
 * Reads the whole request body (Content-Length or chunked) into a NUL-terminated heap buffer
 * (free()). ERR_TOO_LARGE past max bytes (nothing more is read), ERR_IO when the client
 * stops sending.
 */
int http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len, struct err *e);

/* The value of query parameter name, URL-decoded, into out. ERR_NOT_FOUND when absent. */
int http_query_param(const struct mg_connection *conn, const char *name, char *out, size_t cap);

#endif
