/*
 * https_client.c - dcl_request(): one HTTPS request per connection over OpenSSL 3, with
 * resolution, a connect timeout, TLS (SNI, optional verification) and a deadline for the
 * whole exchange. The socket is non-blocking; waiting is dcl_sock_wait() (posix/, win32/).
 */
#define LOG_MODULE "deploy"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "https_client.h"
#include "log.h"
#include "plat.h"

static uint32_t remaining_ms(uint64_t deadline)
{
    uint64_t now = plat_monotonic_ms();
    return now >= deadline ? 0 : (uint32_t)(deadline - now);
}

static int is_ip_literal(const char *host)
{
    if (strchr(host, ':'))
        return 1;
    for (const char *p = host; *p; p++)
        if ((*p < '0' || *p > '9') && *p != '.')
            return 0;
    return 1;
}

static int lookup(const char *host, int port, BIO_ADDRINFO **res, struct err *e)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    if (!host || !*host)
        return err_set(e, ERR_INVALID, "no deployment host is configured");
    if (!BIO_lookup_ex(host, service, BIO_LOOKUP_CLIENT, 0 /* AF_UNSPEC */, dcl_sock_stream_type(),
                       0, res)) {
        ERR_clear_error();
        return err_set(e, ERR_NETWORK, "cannot resolve %s", host);
    }
    return 0;
}

int dcl_resolve_check(const char *host, int port, struct err *e)
{
    BIO_ADDRINFO *res = NULL;
    int rc = lookup(host, port, &res, e);
    BIO_ADDRINFO_free(res);
    return rc;
}

/* Connects to the first address that answers; *fd is non-blocking. */
static int tcp_connect(const char *host, int port, uint32_t timeout_ms, int *fd_out, struct err *e)
{
    BIO_ADDRINFO *res = NULL;
    const BIO_ADDRINFO *ai;
    uint64_t deadline = plat_monotonic_ms() + timeout_ms;
    int rc, timed_out = 0;

    if ((rc = lookup(host, port, &res, e)) < 0)
        return rc;
    rc = ERR_NETWORK;
    for (ai = res; ai; ai = BIO_ADDRINFO_next(ai)) {
        int fd = BIO_socket(BIO_ADDRINFO_family(ai), dcl_sock_stream_type(), 0, 0);
        int r;
        if (fd < 0)
            continue;
        if (!BIO_socket_nbio(fd, 1)) {
            BIO_closesocket(fd);
            continue;
        }
        /* BIO_SOCK_NONBLOCK: without it BIO_connect makes the socket blocking again, and a
         * deployment that stalls mid-answer would hold the reader past every deadline. */
        r = BIO_connect(fd, BIO_ADDRINFO_address(ai), BIO_SOCK_NONBLOCK);
        if (r != 1 && BIO_sock_should_retry(-1)) {
            int w = dcl_sock_wait(fd, 0, remaining_ms(deadline));
            if (w == 0)
                timed_out = 1;
            r = (w == 1 && BIO_sock_error(fd) == 0) ? 1 : 0;
        }
        if (r == 1) {
            *fd_out = fd;
            rc = 0;
            break;
        }
        BIO_closesocket(fd);
        if (remaining_ms(deadline) == 0)
            break;
    }
    BIO_ADDRINFO_free(res);
    ERR_clear_error();
    if (rc == 0)
        return 0;
    if (timed_out)
        return err_set(e, ERR_TIMEOUT, "cannot connect to %s:%d: no answer within %u ms", host,
                       port, (unsigned)timeout_ms);
    return err_set(e, ERR_NETWORK, "cannot connect to %s:%d", host, port);
}

int dcl_tcp_check(const char *host, int port, uint32_t timeout_ms, struct err *e)
{
    int fd = -1;
    int rc = tcp_connect(host, port, timeout_ms ? timeout_ms : DCL_DEFAULT_TIMEOUT, &fd, e);
    if (rc == 0)
        BIO_closesocket(fd);
    return rc;
}

static void ssl_reason(char *out, size_t cap)
{
    unsigned long code = ERR_peek_last_error();
    if (code) {
        const char *r = ERR_reason_error_string(code);
        snprintf(out, cap, "%s", r ? r : "TLS error");
    } else {
        snprintf(out, cap, "the connection was closed");
    }
    ERR_clear_error();
}

/* Waits as SSL_get_error asks; 0 to retry, or an ERR_* code (msg filled by the caller). */
static int ssl_wait(SSL *ssl, int ret, int fd, uint64_t deadline, int *timed_out)
{
    int se = SSL_get_error(ssl, ret), w;
    if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE)
        return ERR_NETWORK;
    w = dcl_sock_wait(fd, se == SSL_ERROR_WANT_READ, remaining_ms(deadline));
    if (w == 1)
        return 0;
    if (w == 0)
        *timed_out = 1;
    return w == 0 ? ERR_TIMEOUT : ERR_NETWORK;
}

static int build_request(const char *host, int port, const char *method, const char *target,
                         const char *body, char **out, size_t *out_len, struct err *e)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(host) + strlen(method) + strlen(target) + blen + 256;
    char *req = malloc(cap);
    int n;

    if (!req)
        return err_set(e, ERR_NOMEM, "out of memory");
    n = snprintf(req, cap,
                 "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: kasm-open-agent\r\n"
                 "Accept: application/json\r\nConnection: close\r\n",
                 method, target, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                 port);
    if (body)
        n += snprintf(req + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body)
        memcpy(req + n, body, blen);
    *out = req;
    *out_len = (size_t)n + blen;
    return 0;
}

/* The path of target without its query (for error messages). */
static void path_only(const char *target, char *out, size_t cap)
{
    size_t n = strcspn(target, "?");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, target, n);
    out[n] = '\0';
}

int dcl_request(const struct dcl_options *o, const char *host, int port, const char *method,
                const char *target, const char *body, struct dcl_response *out, struct err *e)
{
    static const struct dcl_options defaults = {0};
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    BIO *bio = NULL;
    char *req = NULL, *buf = NULL, path[256], why[160];
    size_t req_len = 0, sent = 0, len = 0, cap = 0, max_body;
    uint64_t deadline;
    int fd = -1, fd_sock = -1, rc, timed_out = 0;

    memset(out, 0, sizeof(*out));
    if (!o)
        o = &defaults;
    max_body = o->max_body ? o->max_body : DCL_MAX_BODY;
    path_only(target, path, sizeof(path));

    if ((rc = build_request(host, port, method, target, body, &req, &req_len, e)) < 0)
        goto out;
    if ((rc = tcp_connect(host, port,
                          o->connect_timeout_ms ? o->connect_timeout_ms : DCL_DEFAULT_TIMEOUT, &fd,
                          e)) < 0)
        goto out;
    deadline = plat_monotonic_ms() + (o->io_timeout_ms ? o->io_timeout_ms : DCL_DEFAULT_TIMEOUT);

    if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
        rc = err_set(e, ERR_NOMEM, "cannot create a TLS context");
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->verify_cert) {
        int ok = (o->ca_file && *o->ca_file) ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                                             : SSL_CTX_set_default_verify_paths(ctx);
        if (!ok) {
            ERR_clear_error();
            rc = err_set(e, ERR_IO, "cannot load the CA certificates%s%s to verify %s:%d",
                         (o->ca_file && *o->ca_file) ? " from " : " of the system",
                         (o->ca_file && *o->ca_file) ? o->ca_file : "", host, port);
            goto out;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (!(bio = BIO_new_socket(fd, BIO_CLOSE))) {
        rc = err_set(e, ERR_NOMEM, "cannot create a TLS connection");
        goto out;
    }
    fd_sock = fd; /* the BIO closes it from here on */
    fd = -1;
    if (!(ssl = SSL_new(ctx))) {
        rc = err_set(e, ERR_NOMEM, "cannot create a TLS connection");
        goto out;
    }
    SSL_set_bio(ssl, bio, bio);
    bio = NULL;
    if (!is_ip_literal(host)) {
        SSL_set_tlsext_host_name(ssl, host);
        if (o->verify_cert)
            SSL_set1_host(ssl, host);
    } else if (o->verify_cert) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    }

    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        if ((rc = ssl_wait(ssl, r, fd_sock, deadline, &timed_out)) == 0)
            continue;
        if (timed_out) {
            snprintf(why, sizeof(why), "no answer in time");
        } else if (SSL_get_verify_result(ssl) != X509_V_OK) {
            snprintf(why, sizeof(why), "certificate verification failed: %s",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
        } else {
            ssl_reason(why, sizeof(why));
        }
        ERR_clear_error();
        rc = err_set(e, timed_out ? ERR_TIMEOUT : ERR_NETWORK,
                     "TLS handshake with %s:%d failed: %s", host, port, why);
        goto out;
    }

    while (sent < req_len) {
        size_t w = 0;
        int r = SSL_write_ex(ssl, req + sent, req_len - sent, &w);
        if (r == 1) {
            sent += w;
            continue;
        }
        if ((rc = ssl_wait(ssl, r, fd_sock, deadline, &timed_out)) == 0)
            continue;
        ssl_reason(why, sizeof(why));
        rc = err_set(e, rc, "sending %s %s to %s:%d failed: %s", method, path, host, port,
                     timed_out ? "timed out" : why);
        goto out;
    }

    for (;;) {
        size_t got = 0;
        int r, eof = 0;
        if (cap - len < 16384) {
            size_t ncap = cap ? cap * 2 : 32768;
            char *nb;
            if (ncap > max_body + DCL_MAX_HEADER + 65536)
                ncap = max_body + DCL_MAX_HEADER + 65536;
            if (ncap <= len) {
                rc = err_set(e, ERR_TOO_LARGE, "%s:%d answered %s %s with more than %zu bytes",
                             host, port, method, path, max_body);
                goto out;
            }
            if (!(nb = realloc(buf, ncap))) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        r = SSL_read_ex(ssl, buf + len, cap - len, &got);
        if (r == 1) {
            len += got;
        } else {
            int se = SSL_get_error(ssl, r);
            if (se == SSL_ERROR_ZERO_RETURN || se == SSL_ERROR_SYSCALL) {
                eof = 1;
                ERR_clear_error();
            } else if ((rc = ssl_wait(ssl, r, fd_sock, deadline, &timed_out)) == 0) {
                continue;
            } else {
                ssl_reason(why, sizeof(why));
                rc = err_set(e, rc, "reading the answer of %s:%d to %s %s failed: %s", host, port,
                             method, path, timed_out ? "timed out" : why);
                goto out;
            }
        }
        rc = dcl_response_parse(buf, len, eof, max_body, out, e);
        if (rc < 0) {
            err_prefix(e, "%s:%d answered %s %s badly", host, port, method, path);
            goto out;
        }
        if (rc == 1)
            break;
    }
    rc = 0;
out:
    SSL_free(ssl); /* closes the socket through its BIO */
    BIO_free(bio);
    if (fd >= 0)
        BIO_closesocket(fd);
    SSL_CTX_free(ctx);
    if (req) { /* the query may hold a token, the body a registration token */
        OPENSSL_cleanse(req, req_len);
        free(req);
    }
    if (buf) { /* the answer may hold a token or a private key */
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    ERR_clear_error();
    return rc;
}
