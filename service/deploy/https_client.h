/*
 * https_client.h - a small HTTP/1.1 client over OpenSSL 3 for the deployment API (prefix dcl_).
 *
 * One request per connection (Connection: close): name resolution, a TCP connect with a
 * timeout, TLS with SNI (certificate verification off by default, as Kasm's agent does; on
 * with dcl_options.verify_cert, against ca_file or the system store), the request with an
 * optional JSON body, and the response: status, headers and a bounded body, delimited by
 * Content-Length, chunked transfer-encoding or the end of the connection (HTTP/1.0).
 *
 * Errors name the step that failed and the peer as host:port ("cannot resolve H", "cannot
 * connect to H:P", "TLS handshake with H:P failed: ..."); they never contain the query string,
 * which may carry a token. Sockets come from OpenSSL's portable BIO socket functions; only
 * waiting for readiness is platform code (posix/ and win32/ dcl_sock_wait).
 */
#ifndef KASM_DEPLOY_HTTPS_CLIENT_H
#define KASM_DEPLOY_HTTPS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define DCL_MAX_BODY        (4u * 1024u * 1024u) /* default response body limit */
#define DCL_MAX_HEADER      (64u * 1024u)        /* status line and headers */
#define DCL_DEFAULT_TIMEOUT 15000u               /* ms, connect and each read/write */

struct dcl_options {
    int verify_cert;             /* 0: accept any certificate (Kasm's default) */
    const char *ca_file;         /* NULL or "": the system store when verifying */
    uint32_t connect_timeout_ms; /* 0: DCL_DEFAULT_TIMEOUT */
    uint32_t io_timeout_ms;      /* 0: DCL_DEFAULT_TIMEOUT; whole response */
    size_t max_body;             /* 0: DCL_MAX_BODY */
};

struct dcl_response {
    int status;    /* 200, 500, ... */
    char *headers; /* the raw header block (NUL-terminated, heap) */
    char *body;    /* NUL-terminated (heap; the NUL is not counted in body_len) */
    size_t body_len;
};

/* Checks that host resolves (ERR_NETWORK "cannot resolve H"). */
int dcl_resolve_check(const char *host, int port, struct err *e);
/* Opens and closes a TCP connection (ERR_NETWORK "cannot connect to H:P" / ERR_TIMEOUT). */
int dcl_tcp_check(const char *host, int port, uint32_t timeout_ms, struct err *e);

/*
 * Sends one request to https://host:port + target (path and query; the query is never put
 * into an error message). body may be NULL (no body) or JSON text. Any HTTP status is a
 * success at this level: the caller judges out->status. Free out with dcl_response_free().
 */
int dcl_request(const struct dcl_options *o, const char *host, int port, const char *method,
                const char *target, const char *body, struct dcl_response *out, struct err *e);
void dcl_response_free(struct dcl_response *r);

/*
 * Parses a response held in buf[0..len): returns 1 when it is complete (out filled, heap
 * members allocated), 0 when more bytes are needed (eof == 0), or a negative ERR_* code
 * (ERR_PROTOCOL malformed or truncated at eof, ERR_TOO_LARGE body over max_body). Handles
 * Content-Length, chunked transfer-encoding and close-delimited bodies. Pure: no I/O.
 */
int dcl_response_parse(const char *buf, size_t len, int eof, size_t max_body,
                       struct dcl_response *out, struct err *e);
/* The value of header name (case-insensitive) copied into out; 1 found, 0 absent. */
int dcl_header_get(const char *headers, const char *name, char *out, size_t cap);

/*
 * Platform: waits until fd is readable (for_read) or writable, at most timeout_ms.
 * 1 ready, 0 timed out, -1 error.
 */
int dcl_sock_wait(int fd, int for_read, uint32_t timeout_ms);
/* Platform: this OS's SOCK_STREAM value (for OpenSSL's BIO_lookup_ex and BIO_socket). */
int dcl_sock_stream_type(void);

#endif
