/*
 * range.h - what a file download answers besides its bytes: the Range header (RFC 9110
 * 14.2), HTTP dates for Last-Modified / If-Modified-Since, and a Content-Type guessed from
 * the file name's extension. Pure functions, no I/O.
 *
 * Range decisions: only "bytes=" with ONE range is honoured ("a-b", "a-", "-n"); a header
 * with several ranges, another unit, or a syntax error is ignored (200, whole file), as RFC
 * 9110 allows; a well-formed single range that starts past the end (or any range of an
 * empty file) is 416 with the
 * unsatisfied-range form of Content-Range ("bytes *" + "/N"). An end past the file is clamped.
 */
#ifndef KASM_RANGE_H
#define KASM_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct rng_result {
    int status;             /* 200, 206 or 416 */
    uint64_t start;         /* first byte to send (200: 0) */
    uint64_t length;        /* bytes to send (200: the size; 416: 0) */
    char content_range[80]; /* "bytes a-b/N" (206), unsatisfied form (416), "" (200) */
};

/* header may be NULL (no Range). Never fails. */
void rng_parse(const char *header, uint64_t size, struct rng_result *out);

#define RNG_DATE_LEN 30 /* "Sun, 06 Nov 1994 08:49:37 GMT" + NUL */

/* IMF-fixdate of t (seconds since the epoch, UTC) into out (cap >= RNG_DATE_LEN). */
int rng_http_date_format(int64_t t, char *out, size_t cap);
/* Parses IMF-fixdate, RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") or asctime
 * ("Sun Nov  6 08:49:37 1994"); ERR_PARSE otherwise. */
int rng_http_date_parse(const char *s, int64_t *out, struct err *e);
/* 1 if a GET with this If-Modified-Since (may be NULL) is answered 304 for mtime. */
int rng_not_modified(const char *if_modified_since, int64_t mtime);

/* A Content-Type for the file name (by extension, case-insensitive); never NULL. */
const char *rng_content_type(const char *filename);

#endif
