/*
 * http_parse.c - parsing of an HTTP/1.x response held in memory (dcl_response_parse): the
 * status line, the headers and a body delimited by Content-Length, chunked transfer-encoding
 * or the end of the connection. Pure code, no I/O; fuzzable and unit-tested.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "https_client.h"

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int dcl_header_get(const char *headers, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *line = headers;

    if (cap)
        out[0] = '\0';
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && ieq_n(line, name, nlen)) {
            const char *v = line + nlen + 1;
            const char *end = line + llen;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (cap) {
                size_t n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
                memcpy(out, v, n);
                out[n] = '\0';
            }
            return 1;
        }
        line = eol ? eol + 1 : NULL;
    }
    return 0;
}

/* Position just past the blank line ending the headers, or 0 when not there yet. */
static size_t header_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int parse_status(const char *buf, size_t len, int *status)
{
    int s = 0;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        s = s * 10 + (buf[i] - '0');
    }
    if (s < 100 || (len > 12 && buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
        return -1;
    *status = s;
    return 0;
}

/* Parses a decimal Content-Length; -1 when invalid. */
static long long parse_length(const char *s)
{
    long long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (1LL << 40))
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/*
 * Decodes a chunked body from p[0..len) into a heap buffer. 1 complete, 0 need more, <0 error.
 */
static int dechunk(const char *p, size_t len, size_t max_body, char **out, size_t *out_len,
                   struct err *e)
{
    size_t pos = 0, total = 0;
    char *body = NULL;
    int rc;

    for (;;) {
        size_t size = 0, digits = 0, eol;
        const char *nl = memchr(p + pos, '\n', len - pos);
        if (!nl) {
            rc = len - pos > 1024 ? err_set(e, ERR_PROTOCOL, "bad chunk size line") : 0;
            goto out;
        }
        eol = (size_t)(nl - p);
        while (pos + digits < eol) {
            char c = (char)lower((unsigned char)p[pos + digits]);
            int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
            if (d < 0)
                break;
            if (size > max_body) {
                rc = err_set(e, ERR_TOO_LARGE, "the response body is larger than %zu bytes",
                             max_body);
                goto out;
            }
            size = size * 16 + (size_t)d;
            digits++;
        }
        if (digits == 0) {
            rc = err_set(e, ERR_PROTOCOL, "bad chunk size line");
            goto out;
        }
        pos = eol + 1;
        if (size == 0) {
            /* trailers until an empty line */
            for (;;) {
                const char *tnl = memchr(p + pos, '\n', len - pos);
                size_t tl;
                if (!tnl) {
                    rc = 0;
                    goto out;
                }
                tl = (size_t)(tnl - (p + pos));
                pos += tl + 1;
                if (tl == 0 || (tl == 1 && p[pos - 2] == '\r'))
                    break;
            }
            break;
        }
        if (total + size > max_body) {
            rc = err_set(e, ERR_TOO_LARGE, "the response body is larger than %zu bytes", max_body);
            goto out;
        }
        if (len - pos < size + 1) {
            rc = 0;
            goto out;
        }
        {
            char *nb = realloc(body, total + size + 1);
            if (!nb) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
                goto out;
            }
            body = nb;
        }
        memcpy(body + total, p + pos, size);
        total += size;
        pos += size;
        if (p[pos] == '\r') {
            if (len - pos < 2) {
                rc = 0;
                goto out;
            }
            pos++;
        }
        if (p[pos] != '\n') {
            rc = err_set(e, ERR_PROTOCOL, "a chunk does not end with a line break");
            goto out;
        }
        pos++;
    }
    if (!body && !(body = malloc(1))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    body[total] = '\0';
    *out = body;
    *out_len = total;
    body = NULL;
    rc = 1;
out:
    free(body);
    return rc;
}

int dcl_response_parse(const char *buf, size_t len, int eof, size_t max_body,
                       struct dcl_response *out, struct err *e)
{
    size_t hend = header_end(buf, len), blen = 0;
    char *headers = NULL, *body = NULL;
    char value[128];
    int status = 0, rc;
    long long clen = -1;

    memset(out, 0, sizeof(*out));
    if (max_body == 0)
        max_body = DCL_MAX_BODY;
    if (!hend) {
        if (len > DCL_MAX_HEADER)
            return err_set(e, ERR_TOO_LARGE, "the response headers are too large");
        if (len >= 12 && parse_status(buf, len, &status) < 0)
            return err_set(e, ERR_PROTOCOL, "the answer is not an HTTP response");
        if (eof)
            return err_set(e, ERR_PROTOCOL,
                           "the connection closed before the response headers "
                           "were complete");
        return 0;
    }
    if (parse_status(buf, hend, &status) < 0)
        return err_set(e, ERR_PROTOCOL, "the answer is not an HTTP response");
    if (!(headers = malloc(hend + 1)))
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(headers, buf, hend);
    headers[hend] = '\0';

    if (dcl_header_get(headers, "Transfer-Encoding", value, sizeof(value)) &&
        ieq_n(value, "chunked", 7) && value[7] == '\0') {
        rc = dechunk(buf + hend, len - hend, max_body, &body, &blen, e);
        if (rc == 0 && eof)
            rc = err_set(e, ERR_PROTOCOL, "the connection closed in the middle of the body");
        if (rc <= 0)
            goto out;
    } else {
        if (dcl_header_get(headers, "Content-Length", value, sizeof(value)) &&
            (clen = parse_length(value)) < 0) {
            rc = err_set(e, ERR_PROTOCOL, "bad Content-Length '%.40s'", value);
            goto out;
        }
        if (status < 200 || status == 204 || status == 304)
            clen = 0;
        if (clen >= 0) {
            if ((unsigned long long)clen > max_body) {
                rc = err_set(e, ERR_TOO_LARGE, "the response body is larger than %zu bytes",
                             max_body);
                goto out;
            }
            if (len - hend < (size_t)clen) {
                rc = eof ? err_set(e, ERR_PROTOCOL,
                                   "the connection closed in the middle of the body")
                         : 0;
                goto out;
            }
            blen = (size_t)clen;
        } else {
            if (len - hend > max_body) {
                rc = err_set(e, ERR_TOO_LARGE, "the response body is larger than %zu bytes",
                             max_body);
                goto out;
            }
            if (!eof) {
                rc = 0;
                goto out;
            }
            blen = len - hend;
        }
        if (!(body = malloc(blen + 1))) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(body, buf + hend, blen);
        body[blen] = '\0';
    }
    out->status = status;
    out->headers = headers;
    out->body = body;
    out->body_len = blen;
    headers = body = NULL;
    rc = 1;
out:
    free(headers);
    free(body);
    return rc;
}

void dcl_response_free(struct dcl_response *r)
{
    if (!r)
        return;
    free(r->headers);
    if (r->body) { /* answers carry tokens and private keys */
        OPENSSL_cleanse(r->body, r->body_len);
        free(r->body);
    }
    memset(r, 0, sizeof(*r));
}
