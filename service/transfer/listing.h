/*
 * listing.h - GET /Downloads/Downloads/[path]: resolving the URL path to a directory or a
 * file strictly inside the download folder, and rendering the exact HTML listing of
 * KASM_INTERFACE.md section 5, streamed in pieces.
 *
 * Decisions (docs/architecture.md "Uploads and downloads"):
 *  - the path is split on '/' first, then each component is percent-decoded and must pass
 *    name_validate(): an encoded separator (%2F, %5C), %00, invalid UTF-8, "." / "..", a
 *    bad %XX or a reserved name all resolve to "not found" (404), as does anything that is a
 *    symbolic link / junction / reparse point, or whose final path is not under the root.
 *    Empty components ("a//b", a trailing '/') are skipped. '+' is a literal plus.
 *  - the listing shows entries in plain byte order of their UTF-8 names (code point order),
 *    directories and files mixed; links are never listed (they would 404); entries starting
 *    with '$' and hidden or system entries are skipped unless show_hidden.
 *  - only names are held in memory while sorting (no HTML is buffered); the HTML goes out
 *    through the write callback in pieces of at most LST_CHUNK bytes.
 */
#ifndef KASM_LISTING_H
#define KASM_LISTING_H

#include <stddef.h>

#include "err.h"
#include "name.h"
#include "plat.h"

#define LST_CHUNK    8192
#define LST_PATH_MAX 4096

/* Receives the next piece of output; returns 0, or < 0 to stop (the client went away). */
typedef int (*lst_write_fn)(void *ctx, const void *data, size_t len);

struct lst_target {
    int is_dir;
    int trailing_slash;            /* the URL path ended with '/' (or was empty) */
    char path[LST_PATH_MAX];       /* final path of the directory or file */
    char name[NAME_MAX_BYTES + 1]; /* the last component, decoded ("" for the root) */
    struct plat_file *file;        /* files: the open handle (caller closes); dirs: NULL */
    struct plat_file_info info;    /* files: size and mtime */
};

/*
 * Resolves url_path (the part after "/Downloads/Downloads/", still percent-encoded, without
 * the query string) under root_final (a final path from name_root_resolve()). ERR_NOT_FOUND
 * for everything that must answer 404; other codes are server errors.
 */
int lst_resolve(const char *root_final, const char *url_path, struct lst_target *out,
                struct err *e);

/*
 * Renders the listing of directory dir_path (a final path from lst_resolve) with heading
 * (HTML-escaped here) as <h2>. A negative return from write stops it (that code returns).
 */
int lst_render(const char *dir_path, const char *heading, int show_hidden, lst_write_fn write,
               void *ctx, struct err *e);

/* Percent-encodes everything but unreserved (A-Z a-z 0-9 - . _ ~); ERR_TOO_LARGE if no room. */
int lst_url_escape(const char *s, char *out, size_t cap);
/* Escapes & < > " ' for HTML text and attributes; ERR_TOO_LARGE if no room. */
int lst_html_escape(const char *s, char *out, size_t cap);

#endif
