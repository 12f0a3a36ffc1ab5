/*
 * upload.h - the Dropzone chunk engine behind POST /upload: a registry of uploads in flight
 * keyed by dzuuid, each streaming its chunks into a hidden temp file in the target folder
 * (".kasm-upload-<dzuuid>.part", created CREATE_NEW through name_open_under_resolved and
 * kept open across chunks), renamed into place (never replacing anything) after the last
 * chunk. Answers carry the HTTP status and the exact messages of KASM_INTERFACE.md section 5.
 *
 * A route uses either the chunk API (fields already parsed) or, simpler, the request API,
 * which owns a multipart parser and drives the chunk API from the body pieces:
 *
 *     upl_request_begin(reg, folder, content_type, &q, &res)   // fails: answer res
 *     while (piece = read body) if (upl_request_feed(q, piece, n, &res) < 0) break;
 *     upl_request_finish(q, &res) ... answer res.status / res.message
 *     (or upl_request_abort(q) when the client went away mid-body)
 *
 * Decisions (details in docs/architecture.md "Uploads and downloads"):
 *  - dzchunkbyteoffset must equal the bytes received so far. A chunk lying entirely inside
 *    what is already stored (offset < received and offset + its length <= received, where
 *    its length is min(dzchunksize, dztotalfilesize - offset)) is a retry: its bytes are read
 *    and dropped without comparison and it answers 200. Anything else is 400.
 *  - a second chunk of the same dzuuid waits (up to busy_wait_ms) for the one in flight,
 *    then is refused with 409.
 *  - max_in_flight caps chunks being received at the same moment (503 "Too many uploads in
 *    progress"); max_uploads caps the registry (stale entries are expired first, then
 *    finished ones, kept only to answer retries, make way).
 *  - any write failure deletes the whole partial upload (no space: 400 "No Space
 *    available"; otherwise 500); later chunks of it get 400 "Unknown upload".
 *  - a finished upload stays known (without a file) until it goes stale, so a retried last
 *    chunk answers 200 again.
 * Thread safety: one mutex per registry, owned by the registry, guards the table; a chunk
 * marks its upload busy and does its file I/O outside the mutex.
 */
#ifndef KASM_UPLOAD_H
#define KASM_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "plat.h"

#define UPL_UUID_MAX    64
#define UPL_TEMP_PREFIX ".kasm-upload-"
#define UPL_TEMP_SUFFIX ".part"

struct upl_config {
    unsigned max_in_flight; /* chunks received at once; 0: 8 */
    unsigned max_uploads;   /* uploads known to the registry; 0: 256 */
    int64_t stale_seconds;  /* no chunk for this long: removed; 0: 3600 */
    uint32_t busy_wait_ms;  /* how long a same-dzuuid chunk waits; 0: 30000 */
    int64_t (*clock)(void); /* NULL: plat_wall_time (tests pass a fake clock) */
    /* NULL: plat_file_write_all (tests inject failures) */
    int (*write_fn)(struct plat_file *f, const void *buf, size_t len, struct err *e);
};

struct upl_result {
    int status;                /* HTTP status */
    char message[ERR_MSG_MAX]; /* the body text ("uploaded Chunk", "File already exists", ...) */
};

struct upl_fields {
    char dzuuid[UPL_UUID_MAX + 1];
    uint64_t chunk_index, total_chunks, byte_offset, total_size, chunk_size;
    unsigned seen; /* which fields were set (internal bitmask) */
};

struct upl_registry;
struct upl_chunk;
struct upl_request;

/* cfg may be NULL (all defaults). */
int upl_registry_create(const struct upl_config *cfg, struct upl_registry **out, struct err *e);
/* Call with no chunk in flight: deletes the temp files of unfinished uploads and frees. */
void upl_registry_free(struct upl_registry *r);
/* Removes uploads with no chunk for stale_seconds at time now (their temp files are
 * deleted); returns how many. */
int upl_registry_expire(struct upl_registry *r, int64_t now);
/* Uploads known (unfinished + finished-but-not-yet-stale), for tests and health output. */
unsigned upl_registry_count(struct upl_registry *r);

void upl_fields_init(struct upl_fields *f);
/* Sets field `name` from value[0..len): 1 if it is a dz field, 0 if the name is not one
 * (ignored), < 0 with res = 400 if the value is malformed or out of range. */
int upl_fields_set(struct upl_fields *f, const char *name, const char *value, size_t len,
                   struct upl_result *res);
/* 0 if all six fields are present and consistent, else < 0 with res = 400. */
int upl_fields_check(const struct upl_fields *f, struct upl_result *res);

/*
 * Starts a chunk for file `filename` (the multipart filename, validated here) in folder
 * root. On failure res holds the answer and *out is NULL. Otherwise feed the chunk's bytes
 * with upl_chunk_write, then exactly one of upl_chunk_end (the body was complete) or
 * upl_chunk_abort (the client went away); both free the chunk.
 */
int upl_chunk_begin(struct upl_registry *r, const char *root, const struct upl_fields *f,
                    const char *filename, struct upl_chunk **out, struct upl_result *res);
/* < 0 with res filled once the chunk has failed (keep reading or stop; then call end). */
int upl_chunk_write(struct upl_chunk *c, const void *data, size_t len, struct upl_result *res);
/* The final answer for this chunk (200 "uploaded Chunk" or the failure); frees c. */
int upl_chunk_end(struct upl_chunk *c, struct upl_result *res);
/* The client disappeared: the temp file is cut back to the bytes acknowledged before this
 * chunk, so the client may send the chunk again; frees c. */
void upl_chunk_abort(struct upl_chunk *c);

/* The request API (see the top of this file). */
int upl_request_begin(struct upl_registry *r, const char *root, const char *content_type,
                      struct upl_request **out, struct upl_result *res);
int upl_request_feed(struct upl_request *q, const void *data, size_t len, struct upl_result *res);
/* The body ended: the answer for the request; frees q. */
int upl_request_finish(struct upl_request *q, struct upl_result *res);
void upl_request_abort(struct upl_request *q);

#endif
