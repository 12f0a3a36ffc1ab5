/*
 * multipart.h - a streaming multipart/form-data parser (RFC 7578 over RFC 2046) for POST
 * /upload. It is fed the request body in pieces of any size (one byte at a time works) and
 * reports parts through callbacks; it never holds more than one part header block (8 KiB).
 *
 * Decisions (docs/architecture.md "Uploads and downloads"):
 *  - the preamble and the epilogue are ignored; a body that ends before the final boundary
 *    ("--boundary--") is an error (mp_parser_finish);
 *  - a part needs a Content-Disposition of type form-data with a name; `filename` is
 *    reported as sent (a quoted string ends at the first '"'; backslashes and %XX are kept
 *    literally, as browsers send them) and is validated later by name_validate();
 *  - `filename*` (RFC 5987) is ignored: RFC 7578 4.2 forbids it in form data and browsers
 *    send UTF-8 in `filename`;
 *  - limits: part header block <= MP_MAX_HEADER_BYTES, at most MP_MAX_PARTS parts, the value
 *    of a part without a filename (a form field) <= MP_MAX_FIELD_BYTES.
 * After any error (a limit, a syntax error, or a callback returning < 0) the parser is
 * failed for good: every later call returns the same error.
 */
#ifndef KASM_MULTIPART_H
#define KASM_MULTIPART_H

#include <stddef.h>

#include "err.h"

#define MP_BOUNDARY_MAX     70
#define MP_MAX_HEADER_BYTES 8192
#define MP_MAX_PARTS        16
#define MP_MAX_FIELD_BYTES  4096
#define MP_NAME_MAX         256  /* a longer part name is an error */
#define MP_FILENAME_MAX     1024 /* a longer filename is an error (name_validate allows 255) */

struct mp_part_info {
    const char *name;         /* Content-Disposition name, never NULL */
    const char *filename;     /* Content-Disposition filename, NULL if absent */
    const char *content_type; /* the part's Content-Type, "" if absent */
};

/* Each callback returns 0 or a negative ERR_* code with e filled; NULL callbacks are skipped. */
struct mp_callbacks {
    int (*part_begin)(void *ctx, const struct mp_part_info *part, struct err *e);
    int (*part_data)(void *ctx, const void *data, size_t len, struct err *e);
    int (*part_end)(void *ctx, struct err *e);
    int (*done)(void *ctx, struct err *e); /* the final boundary was seen */
};

struct mp_parser;

/*
 * Extracts the boundary from a Content-Type header value ("multipart/form-data;
 * boundary=XYZ", quoted or not) into out (cap >= MP_BOUNDARY_MAX + 1). ERR_INVALID if the
 * type is not multipart/form-data or the boundary is missing or breaks RFC 2046
 * (1..70 characters of DIGIT ALPHA '()+_,-./:=? and space, not ending in a space).
 */
int mp_boundary_from_content_type(const char *content_type, char *out, size_t cap, struct err *e);

int mp_parser_create(const char *boundary, const struct mp_callbacks *cb, void *ctx,
                     struct mp_parser **out, struct err *e);
/* Feeds the next piece of the body. */
int mp_parser_feed(struct mp_parser *p, const void *data, size_t len, struct err *e);
/* Call at the end of the body: ERR_PARSE if the final boundary was not seen. */
int mp_parser_finish(struct mp_parser *p, struct err *e);
/* 1 once the final boundary has been seen. */
int mp_parser_is_done(const struct mp_parser *p);
void mp_parser_free(struct mp_parser *p);

#endif
