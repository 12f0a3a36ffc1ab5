/*
 * server.c - start and stop the civetweb HTTPS server with our options, TLS settings and
 * JSON error pages (server.h).
 */
#define LOG_MODULE "http"

#include "server.h"

#include <civetweb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "plat.h"
#include "reply.h"
#include "tls.h"

struct http_server {
    struct mg_context *mg;
    http_dispatch_fn dispatch;
    void *dispatch_ctx;
    char cert_path[CFG_PATH_MAX];
    char key_path[CFG_PATH_MAX];
    struct err tls_err; /* the reason init_ssl failed, for the start error */
    int port;
};

static int on_request(struct mg_connection *conn, void *cbdata)
{
    struct http_server *s = cbdata;
    return s->dispatch(conn, s->dispatch_ctx);
}

/* Before the first request: every URI goes to our one handler ("**" matches any path). */
static void on_init_context(const struct mg_context *ctx)
{
    struct mg_context *mg = (struct mg_context *)(uintptr_t)ctx; /* civetweb's API is not const */
    mg_set_request_handler(mg, "**", on_request, mg_get_user_data(ctx));
}

static int on_init_ssl(void *ssl_ctx, void *user_data)
{
    struct http_server *s = user_data;
    return tls_ctx_setup(ssl_ctx, s->cert_path, s->key_path, &s->tls_err) < 0 ? -1 : 1;
}

/* civetweb's own messages: TLS handshake failures, client errors. Never request data. */
static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    log_debug("civetweb: %s", message);
    return 1;
}

static int on_log_access(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    (void)message;
    return 1; /* no access log: request lines may carry ?token= */
}

/* Errors civetweb detects itself (malformed request, headers too large): JSON, no page. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
    (void)msg;
    if (status == 413) /* civetweb's "message too large" is the request head */
        http_reply_error(conn, 431, "Request header too large");
    else
        http_reply_error(conn, status, http_status_text(status));
    return 0;
}

static int try_start(struct http_server *s, const struct cfg *c, const char *ports, char *why,
                     size_t cap)
{
    char nthreads[16], timeout[16], maxreq[16];
    const char *opts[40];
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data err;
    size_t n = 0;

    snprintf(nthreads, sizeof(nthreads), "%d", c->num_threads);
    snprintf(timeout, sizeof(timeout), "%d", c->request_timeout_ms);
    snprintf(maxreq, sizeof(maxreq), "%d", c->max_request_header_bytes);
    opts[n++] = "listening_ports";
    opts[n++] = ports;
    opts[n++] = "num_threads";
    opts[n++] = nthreads;
    opts[n++] = "request_timeout_ms";
    opts[n++] = timeout;
    opts[n++] = "max_request_size";
    opts[n++] = maxreq;
    opts[n++] = "enable_keep_alive";
    opts[n++] = "yes";
    opts[n++] = "keep_alive_timeout_ms";
    opts[n++] = "15000";
    opts[n++] = "ssl_protocol_version";
    opts[n++] = "4"; /* TLS 1.2 and later (tls_ctx.c sets the same minimum) */
    opts[n++] = "access_control_allow_origin";
    opts[n++] = ""; /* CORS is ours (reply.c) */
    opts[n++] = "access_control_allow_methods";
    opts[n++] = "";
    opts[n++] = "access_control_allow_headers";
    opts[n++] = "";
    opts[n++] = "enable_auth_domain_check";
    opts[n++] = "no";
    opts[n++] = "decode_url";
    opts[n++] = "no"; /* the download route decodes per path component (listing.h) */
    opts[n++] = "tcp_nodelay";
    opts[n++] = "1"; /* a reply's head and body go out in separate writes: without this,
                        Nagle + delayed ACK add ~40 ms to every keep-alive request */
    opts[n] = NULL;

    memset(&cb, 0, sizeof(cb));
    cb.init_ssl = on_init_ssl;
    cb.log_message = on_log_message;
    cb.log_access = on_log_access;
    cb.http_error = on_http_error;
    cb.init_context = on_init_context;
    init.callbacks = &cb;
    init.user_data = s;
    init.configuration_options = opts;
    memset(&err, 0, sizeof(err));
    why[0] = '\0';
    err.text = why;
    err.text_buffer_size = cap;
    s->mg = mg_start2(&init, &err);
    return s->mg ? 0 : -1;
}

static void listen_url(const struct cfg *c, int port, char *out, size_t cap)
{
    const char *scheme = c->ssl ? "https" : "http";
    const char *addr = c->listen_address[0] ? c->listen_address : "0.0.0.0";
    if (strchr(addr, ':'))
        snprintf(out, cap, "%s://[%s]:%d", scheme, addr, port);
    else
        snprintf(out, cap, "%s://%s:%d", scheme, addr, port);
}

int http_server_start(struct http_server **out, const struct cfg *c, http_dispatch_fn fn, void *ctx,
                      struct err *e)
{
    static int lib_ready;
    struct http_server *s;
    struct mg_server_port ports[4];
    char spec[128], why[256], url[128];
    const char *sfx = c->ssl ? "s" : "";
    int rc, generated = 0, n;

    *out = NULL;
    if (!lib_ready) {
        mg_init_library(MG_FEATURES_TLS | MG_FEATURES_IPV6);
        lib_ready = 1;
    }
    if (!(s = calloc(1, sizeof(*s))))
        return err_set(e, ERR_NOMEM, "out of memory starting the HTTPS server");
    s->dispatch = fn;
    s->dispatch_ctx = ctx;
    snprintf(s->cert_path, sizeof(s->cert_path), "%s", c->server_public_key);
    snprintf(s->key_path, sizeof(s->key_path), "%s", c->server_private_key);

    if (c->ssl) {
        if ((rc = tls_cert_ensure(s->cert_path, s->key_path, &generated, e)) < 0)
            goto fail;
    } else {
        log_warning("ssl is false: serving plain HTTP without encryption - for tests only, "
                    "never in production");
    }

    if (strchr(c->listen_address, ':'))
        snprintf(spec, sizeof(spec), "[%s]:%d%s", c->listen_address, c->port, sfx);
    else if (c->listen_address[0])
        snprintf(spec, sizeof(spec), "%s:%d%s", c->listen_address, c->port, sfx);
    else
        snprintf(spec, sizeof(spec), "+%d%s", c->port, sfx); /* IPv6 and IPv4 */

    if (try_start(s, c, spec, why, sizeof(why)) < 0 && !c->listen_address[0] && !s->tls_err.code) {
        log_debug("listening on IPv6 and IPv4 failed (%s); trying IPv4 only", why);
        snprintf(spec, sizeof(spec), "%d%s", c->port, sfx);
        try_start(s, c, spec, why, sizeof(why));
    }
    if (!s->mg) {
        if (s->tls_err.code) {
            rc = err_set(e, s->tls_err.code, "%s", s->tls_err.msg);
        } else {
            rc = err_set(e, ERR_EXISTS,
                         "cannot listen on port %d%s%s: %s; is another program (or another "
                         "agent) using the port?",
                         c->port, c->listen_address[0] ? " of " : "", c->listen_address,
                         why[0] ? why : "civetweb could not start");
        }
        goto fail;
    }
    n = mg_get_server_ports(s->mg, 4, ports);
    s->port = n > 0 ? ports[0].port : c->port;
    listen_url(c, s->port, url, sizeof(url));
    log_info("listening on %s (%d worker threads%s)", url, c->num_threads,
             generated ? ", self-signed certificate" : "");
    *out = s;
    return 0;
fail:
    free(s);
    return rc;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    mg_stop(s->mg);
    free(s);
}
