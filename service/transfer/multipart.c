/*
 * multipart.c - the streaming multipart/form-data parser (multipart.h): boundary extraction
 * from Content-Type, a byte-level state machine over the body, part header parsing
 * (Content-Disposition, Content-Type) and the limits.
 *
 * Delimiter search: the delimiter is "\r\n--" + boundary. Because a boundary never contains
 * CR (RFC 2046 bchars), a partial match is always a prefix of the delimiter that holds its
 * only CR at position 0; on a mismatch the held-back bytes are emitted as data (copied from
 * the delimiter itself, so nothing is buffered across pieces) and the byte is looked at again.
 * Data goes out straight from the caller's piece, one emit per piece up to a possible
 * delimiter (a CR that is plainly not the delimiter stays in the run: data_run).
 * The body is treated as if a CRLF preceded it, so a first boundary at byte 0 matches.
 */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>

enum mp_state {
    ST_PREAMBLE,
    ST_AFTER_DELIM, /* just matched a delimiter: "--" or padding + CRLF follows */
    ST_DASH2,       /* saw the first '-' of the closing "--" */
    ST_PADDING,     /* transport padding (spaces, tabs) before CRLF */
    ST_LF,          /* saw CR after a boundary, expecting LF */
    ST_HEADERS,
    ST_DATA,
    ST_EPILOGUE,
    ST_FAILED,
};

struct mp_parser {
    enum mp_state state;
    char delim[4 + MP_BOUNDARY_MAX + 1];
    size_t dlen;
    size_t match; /* bytes of delim matched (held back) */
    struct mp_callbacks cb;
    void *ctx;
    int nparts;
    int in_part;
    int is_field;
    size_t field_len;
    size_t hlen;
    char hdr[MP_MAX_HEADER_BYTES];
    char name[MP_NAME_MAX + 1];
    char filename[MP_FILENAME_MAX + 1];
    int has_filename;
    char ctype[256];
    struct err err; /* the sticky error once failed */
};

static int is_bchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
        return 1;
    return strchr("'()+_,-./:=? ", c) != NULL && c != '\0';
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int ieq_n(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static int validate_boundary(const char *b, size_t n, struct err *e)
{
    if (n < 1 || n > MP_BOUNDARY_MAX)
        return err_set(e, ERR_INVALID, "multipart boundary must be 1 to %d characters, not %zu",
                       MP_BOUNDARY_MAX, n);
    for (size_t i = 0; i < n; i++)
        if (!is_bchar((unsigned char)b[i]))
            return err_set(e, ERR_INVALID,
                           "multipart boundary has a character not allowed by RFC 2046 at %zu", i);
    if (b[n - 1] == ' ')
        return err_set(e, ERR_INVALID, "multipart boundary must not end with a space");
    return 0;
}

int mp_boundary_from_content_type(const char *ct, char *out, size_t cap, struct err *e)
{
    const char *p = ct;
    const char *t;

    if (!ct)
        return err_set(e, ERR_INVALID, "the request has no Content-Type (multipart/form-data)");
    while (is_ws(*p))
        p++;
    t = p;
    while (*p && *p != ';' && !is_ws(*p))
        p++;
    if (!ieq_n(t, (size_t)(p - t), "multipart/form-data"))
        return err_set(e, ERR_INVALID, "Content-Type must be multipart/form-data");
    while (*p) {
        const char *pn, *v;
        size_t pnlen, vlen;
        while (is_ws(*p))
            p++;
        if (*p != ';')
            return err_set(e, ERR_INVALID, "malformed Content-Type parameters");
        p++;
        while (is_ws(*p))
            p++;
        pn = p;
        while (*p && *p != '=' && *p != ';' && !is_ws(*p))
            p++;
        pnlen = (size_t)(p - pn);
        while (is_ws(*p))
            p++;
        if (*p != '=') {
            if (pnlen == 0 && *p == '\0')
                break; /* a trailing ';' */
            return err_set(e, ERR_INVALID, "malformed Content-Type parameter");
        }
        p++;
        while (is_ws(*p))
            p++;
        if (*p == '"') {
            v = ++p;
            while (*p && *p != '"')
                p++;
            if (*p != '"')
                return err_set(e, ERR_INVALID, "unterminated quoted string in Content-Type");
            vlen = (size_t)(p - v);
            p++;
        } else {
            v = p;
            while (*p && *p != ';' && !is_ws(*p))
                p++;
            vlen = (size_t)(p - v);
        }
        if (ieq_n(pn, pnlen, "boundary")) {
            int rc = validate_boundary(v, vlen, e);
            if (rc < 0)
                return rc;
            if (vlen + 1 > cap)
                return err_set(e, ERR_TOO_LARGE, "boundary buffer too small");
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
    }
    return err_set(e, ERR_INVALID, "Content-Type multipart/form-data has no boundary parameter");
}

int mp_parser_create(const char *boundary, const struct mp_callbacks *cb, void *ctx,
                     struct mp_parser **out, struct err *e)
{
    struct mp_parser *p;
    size_t n = boundary ? strlen(boundary) : 0;
    int rc = validate_boundary(boundary ? boundary : "", n, e);

    *out = NULL;
    if (rc < 0)
        return rc;
    p = calloc(1, sizeof(*p));
    if (!p)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary, n);
    p->dlen = 4 + n;
    p->match = 2; /* as if the body were preceded by CRLF */
    p->state = ST_PREAMBLE;
    if (cb)
        p->cb = *cb;
    p->ctx = ctx;
    *out = p;
    return 0;
}

void mp_parser_free(struct mp_parser *p)
{
    free(p);
}

int mp_parser_is_done(const struct mp_parser *p)
{
    return p && p->state == ST_EPILOGUE;
}

static int fail(struct mp_parser *p, int code, const char *msg)
{
    p->state = ST_FAILED;
    return err_set(&p->err, code, "multipart body: %s", msg);
}

/* A callback failed: keep its error (with context) and fail the parser. */
static int cb_failed(struct mp_parser *p, int rc)
{
    if (p->err.code == 0)
        err_set(&p->err, rc, "multipart callback failed");
    p->state = ST_FAILED;
    return rc;
}

static int emit(struct mp_parser *p, const char *data, size_t len)
{
    int rc;
    if (len == 0 || p->state != ST_DATA)
        return 0; /* preamble bytes are dropped */
    if (p->is_field) {
        p->field_len += len;
        if (p->field_len > MP_MAX_FIELD_BYTES) {
            p->state = ST_FAILED;
            return err_set(&p->err, ERR_TOO_LARGE,
                           "multipart body: a form field value is larger than %d bytes",
                           MP_MAX_FIELD_BYTES);
        }
    }
    if (p->cb.part_data && (rc = p->cb.part_data(p->ctx, data, len, &p->err)) < 0)
        return cb_failed(p, rc);
    return 0;
}

/* Copies a parameter value; returns 0, or -1 if it does not fit. */
static int copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    if (n + 1 > cap)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int parse_disposition(struct mp_parser *p, const char *s, size_t n, int *have_name)
{
    size_t i = 0, t;
    while (i < n && is_ws(s[i]))
        i++;
    t = i;
    while (i < n && s[i] != ';' && !is_ws(s[i]))
        i++;
    if (!ieq_n(s + t, i - t, "form-data"))
        return fail(p, ERR_PARSE, "a part's Content-Disposition is not form-data");
    for (;;) {
        size_t pn, pnlen, v, vlen;
        while (i < n && is_ws(s[i]))
            i++;
        if (i == n)
            return 0;
        if (s[i] != ';')
            return fail(p, ERR_PARSE, "malformed Content-Disposition parameters");
        i++;
        while (i < n && is_ws(s[i]))
            i++;
        if (i == n)
            return 0; /* trailing ';' */
        pn = i;
        while (i < n && s[i] != '=' && s[i] != ';' && !is_ws(s[i]))
            i++;
        pnlen = i - pn;
        while (i < n && is_ws(s[i]))
            i++;
        if (i == n || s[i] != '=' || pnlen == 0)
            return fail(p, ERR_PARSE, "malformed Content-Disposition parameter");
        i++;
        while (i < n && is_ws(s[i]))
            i++;
        if (i < n && s[i] == '"') {
            v = ++i;
            while (i < n && s[i] != '"')
                i++;
            if (i == n)
                return fail(p, ERR_PARSE, "unterminated quoted string in Content-Disposition");
            vlen = i - v;
            i++;
        } else {
            v = i;
            while (i < n && s[i] != ';' && !is_ws(s[i]))
                i++;
            vlen = i - v;
        }
        if (ieq_n(s + pn, pnlen, "name")) {
            if (*have_name)
                return fail(p, ERR_PARSE, "Content-Disposition has two name parameters");
            if (copy_value(p->name, sizeof(p->name), s + v, vlen) < 0)
                return fail(p, ERR_TOO_LARGE, "a part name is too long");
            *have_name = 1;
        } else if (ieq_n(s + pn, pnlen, "filename")) {
            if (p->has_filename)
                return fail(p, ERR_PARSE, "Content-Disposition has two filename parameters");
            if (copy_value(p->filename, sizeof(p->filename), s + v, vlen) < 0)
                return fail(p, ERR_TOO_LARGE, "a part filename is too long");
            p->has_filename = 1;
        }
        /* other parameters, including filename* (RFC 7578 4.2), are ignored */
    }
}

/* Parses the header block hdr[0..hlen) (ends with CRLF CRLF, or is a lone CRLF). */
static int headers_done(struct mp_parser *p)
{
    const char *s = p->hdr;
    size_t n = p->hlen - 2; /* drop the blank line's CRLF */
    size_t i = 0;
    int have_disp = 0, have_name = 0, rc;
    struct mp_part_info info;

    p->name[0] = p->filename[0] = p->ctype[0] = '\0';
    p->has_filename = 0;
    while (i < n) {
        size_t ls = i, le, colon, vs, ve;
        while (i < n && !(s[i] == '\r' && s[i + 1] == '\n'))
            i++;
        le = i;
        i += 2; /* past CRLF */
        for (colon = ls; colon < le && s[colon] != ':'; colon++)
            if (s[colon] == '\r' || s[colon] == '\n')
                break;
        if (colon == le || s[colon] != ':')
            return fail(p, ERR_PARSE, "a part header line has no ':'");
        for (size_t k = ls; k < le; k++)
            if (s[k] == '\r' || s[k] == '\n' || s[k] == '\0')
                return fail(p, ERR_PARSE, "a part header has a bare CR, LF or NUL");
        vs = colon + 1;
        while (vs < le && is_ws(s[vs]))
            vs++;
        ve = le;
        while (ve > vs && is_ws(s[ve - 1]))
            ve--;
        if (ieq_n(s + ls, colon - ls, "content-disposition")) {
            if (have_disp)
                return fail(p, ERR_PARSE, "a part has two Content-Disposition headers");
            have_disp = 1;
            if ((rc = parse_disposition(p, s + vs, ve - vs, &have_name)) < 0)
                return rc;
        } else if (ieq_n(s + ls, colon - ls, "content-type")) {
            if (copy_value(p->ctype, sizeof(p->ctype), s + vs, ve - vs) < 0)
                return fail(p, ERR_TOO_LARGE, "a part Content-Type is too long");
        }
    }
    if (!have_disp || !have_name)
        return fail(p, ERR_PARSE, "a part has no Content-Disposition form-data name");
    if (p->nparts >= MP_MAX_PARTS) {
        p->state = ST_FAILED;
        return err_set(&p->err, ERR_TOO_LARGE, "multipart body: more than %d parts", MP_MAX_PARTS);
    }
    p->nparts++;
    p->in_part = 1;
    p->is_field = !p->has_filename;
    p->field_len = 0;
    p->state = ST_DATA;
    info.name = p->name;
    info.filename = p->has_filename ? p->filename : NULL;
    info.content_type = p->ctype;
    if (p->cb.part_begin && (rc = p->cb.part_begin(p->ctx, &info, &p->err)) < 0)
        return cb_failed(p, rc);
    return 0;
}

/* A full delimiter was matched (in the preamble or after a part's data). */
static int delimiter_seen(struct mp_parser *p)
{
    int rc;
    if (p->in_part) {
        p->in_part = 0;
        if (p->cb.part_end && (rc = p->cb.part_end(p->ctx, &p->err)) < 0)
            return cb_failed(p, rc);
    }
    p->state = ST_AFTER_DELIM;
    return 0;
}

/*
 * The length of the data run at buf[from..len): up to the first '\r' where the delimiter
 * starts (or may start, when the piece ends inside it), else to the end. A '\r' that is
 * plainly not the delimiter stays inside the run, so a piece goes out in one emit (one file
 * write) rather than one per '\r' (binary data has one every 256 bytes on average).
 */
static size_t data_run(const struct mp_parser *p, const char *buf, size_t len, size_t from)
{
    size_t j = from;
    while (j < len) {
        const char *r = memchr(buf + j, '\r', len - j);
        size_t k, cmp;
        if (!r)
            return len - from;
        k = (size_t)(r - buf);
        cmp = len - k < p->dlen ? len - k : p->dlen;
        if (memcmp(buf + k, p->delim, cmp) == 0)
            return k - from;
        j = k + 1;
    }
    return len - from;
}

/* Data or preamble: consume from buf[*i] up to the next full delimiter or the end. */
static int scan_body(struct mp_parser *p, const char *buf, size_t len, size_t *i)
{
    int rc;
    while (*i < len) {
        if (p->match == 0) {
            size_t run = data_run(p, buf, len, *i);
            if ((rc = emit(p, buf + *i, run)) < 0)
                return rc;
            *i += run;
            if (*i == len)
                return 0;
            p->match = 1; /* buf[*i] is the '\r' that may start the delimiter */
            (*i)++;
            continue;
        }
        if (buf[*i] == p->delim[p->match]) {
            p->match++;
            (*i)++;
            if (p->match == p->dlen) {
                p->match = 0;
                return delimiter_seen(p);
            }
            continue;
        }
        /* Mismatch: the held-back bytes were data; look at this byte again. */
        rc = emit(p, p->delim, p->match);
        p->match = 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mp_parser_feed(struct mp_parser *p, const void *data, size_t len, struct err *e)
{
    const char *buf = data;
    size_t i = 0;
    int rc = 0;

    while (i < len && p->state != ST_FAILED) {
        char c;
        switch (p->state) {
        case ST_PREAMBLE:
        case ST_DATA:
            rc = scan_body(p, buf, len, &i);
            break;
        case ST_AFTER_DELIM:
            c = buf[i++];
            if (c == '-')
                p->state = ST_DASH2;
            else if (is_ws(c))
                p->state = ST_PADDING;
            else if (c == '\r')
                p->state = ST_LF;
            else
                rc = fail(p, ERR_PARSE, "a boundary is followed by unexpected bytes");
            break;
        case ST_DASH2:
            if (buf[i++] != '-') {
                rc = fail(p, ERR_PARSE, "a boundary is followed by unexpected bytes");
                break;
            }
            p->state = ST_EPILOGUE;
            if (p->cb.done && (rc = p->cb.done(p->ctx, &p->err)) < 0)
                rc = cb_failed(p, rc);
            break;
        case ST_PADDING:
            c = buf[i++];
            if (c == '\r')
                p->state = ST_LF;
            else if (!is_ws(c))
                rc = fail(p, ERR_PARSE, "a boundary line has unexpected bytes");
            break;
        case ST_LF:
            if (buf[i++] != '\n') {
                rc = fail(p, ERR_PARSE, "a boundary line does not end with CRLF");
                break;
            }
            p->state = ST_HEADERS;
            p->hlen = 0;
            break;
        case ST_HEADERS:
            if (p->hlen == sizeof(p->hdr)) {
                p->state = ST_FAILED;
                rc = err_set(&p->err, ERR_TOO_LARGE,
                             "multipart body: a part header block is larger than %d bytes",
                             MP_MAX_HEADER_BYTES);
                break;
            }
            p->hdr[p->hlen++] = buf[i++];
            if ((p->hlen == 2 && memcmp(p->hdr, "\r\n", 2) == 0) ||
                (p->hlen >= 4 && memcmp(p->hdr + p->hlen - 4, "\r\n\r\n", 4) == 0))
                rc = headers_done(p);
            break;
        case ST_EPILOGUE:
            i = len; /* ignored */
            break;
        case ST_FAILED:
            break;
        }
        if (rc < 0)
            break;
    }
    if (p->state == ST_FAILED) {
        if (e) {
            *e = p->err;
        }
        return p->err.code ? p->err.code : ERR_INTERNAL;
    }
    return 0;
}

int mp_parser_finish(struct mp_parser *p, struct err *e)
{
    if (p->state == ST_FAILED) {
        if (e)
            *e = p->err;
        return p->err.code ? p->err.code : ERR_INTERNAL;
    }
    if (p->state != ST_EPILOGUE) {
        fail(p, ERR_PARSE, "the body ended before the final boundary");
        if (e)
            *e = p->err;
        return ERR_PARSE;
    }
    return 0;
}
