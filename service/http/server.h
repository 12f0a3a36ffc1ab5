/*
 * server.h - the HTTPS server of the agent (civetweb with our TLS settings).
 *
 * The server owns the civetweb context, its listening sockets and its worker threads. Every
 * request goes to one dispatch function (api/api.c routes it); civetweb's own error pages
 * are replaced by JSON errors (reply.h), and it never maps URLs to files (NO_FILES).
 */
#ifndef KASM_HTTP_SERVER_H
#define KASM_HTTP_SERVER_H

#include "err.h"

struct cfg;
struct mg_connection;
struct http_server;

/* Handles one request; returns the HTTP status it answered (for civetweb's bookkeeping). */
typedef int (*http_dispatch_fn)(struct mg_connection *conn, void *ctx);

/*
 * Starts listening on cfg->listen_address (all addresses when empty; IPv4 and IPv6 where the
 * system has it) and cfg->port (0: an ephemeral port), with TLS unless cfg->ssl is false.
 * Logs "listening on https://ADDR:PORT". ERR_EXISTS when the port is in use (the message
 * names it), ERR_PARSE/ERR_INVALID for certificate problems.
 */
int http_server_start(struct http_server **out, const struct cfg *cfg, http_dispatch_fn fn,
                      void *ctx, struct err *e);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stops accepting, waits for the requests in progress, frees s. NULL is ignored. */
void http_server_stop(struct http_server *s);

#endif
