/*
 * helper_client.h - the service side of the session helper's requests (proto.h catalogue):
 * DL_OPEN/DL_INFO then DL_READ or DL_LIST for downloads, UPLOAD_BEGIN + DATA.../END then
 * UPLOAD_RESULT for uploads, SHOT then SHOT_INFO + PNG for screenshots. Each call runs one
 * request over a helper's pmux (borrowed through a sesm lease) and maps every failure to the
 * HTTP status and message the route answers with.
 *
 * Failures: every function returns 0 or a negative ERR_* and, on failure, sets *status (when
 * not NULL) and fills e:
 *   - the helper answered ERROR {status, message}: *status is its status (400..599, anything
 *     else becomes 500) and e->msg its message, verbatim (fit for the client);
 *   - the channel ended or the request was cancelled (ERR_IO/ERR_CANCELLED): 503;
 *   - nothing came within timeout_ms (ERR_TIMEOUT): 504; the request is cancelled;
 *   - the mux has no free request slot (ERR_BUSY): 503;
 *   - an unexpected frame or a message that does not decode (ERR_PROTOCOL/ERR_PARSE): 502.
 * timeout_ms bounds each wait for one frame from the helper (not the whole transfer).
 *
 * Threads: a request object belongs to the thread that opened it.
 */
#ifndef KASM_HELPER_CLIENT_H
#define KASM_HELPER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "pmux.h"
#include "proto.h"

struct pmux;

/* The longest wait for one frame from a helper in the routes. */
#define HCL_TIMEOUT_MS 60000u
/* The largest PNG accepted from a helper. */
#define HCL_SHOT_MAX (64u * 1024u * 1024u)

/* Receives the next piece of a stream; returns 0, or < 0 to stop (the client went away). */
typedef int (*hcl_write_fn)(void *ctx, const void *data, size_t len);

/* ---- downloads: DL_OPEN, then exactly one of hcl_dl_read, hcl_dl_list, hcl_dl_close ---- */

struct hcl_dl;

struct hcl_dl_info {
    int is_dir;
    int trailing_slash;            /* the URL path ended with '/' (or was empty) */
    char name[PROTO_NAME_MAX * 4]; /* the last component, decoded ("" for the root) */
    uint64_t size;
    int64_t mtime; /* Unix seconds */
};

/* Opens the target at url_path (after "/Downloads/Downloads/", still percent-encoded, no
 * query). The helper answers 404 for a path that does not exist or is refused. */
int hcl_dl_open(struct pmux *m, const char *url_path, uint32_t timeout_ms, struct hcl_dl **out,
                struct hcl_dl_info *info, int *status, struct err *e);
/*
 * Streams bytes [offset, offset + length) of the opened file to write. A stream that ends
 * early (the file got shorter) is ERR_IO with *status 500. write failing ends the request
 * (CANCEL) and returns ERR_CANCELLED. Closes d in every case.
 */
int hcl_dl_read(struct hcl_dl *d, uint64_t offset, uint64_t length, hcl_write_fn write, void *ctx,
                uint32_t timeout_ms, int *status, struct err *e);
/* Streams the HTML listing of the opened directory (rendered by the helper with lst_render)
 * to write. Same endings as hcl_dl_read. Closes d in every case. */
int hcl_dl_list(struct hcl_dl *d, const char *heading, int show_hidden, hcl_write_fn write,
                void *ctx, uint32_t timeout_ms, int *status, struct err *e);
/* Abandons an opened target (CANCEL); NULL is ignored. */
void hcl_dl_close(struct hcl_dl *d);

/* ---- uploads: begin, feed the body piece by piece, then finish (or abort) ---- */

struct hcl_upload;

/* The helper's answer: the Dropzone status and message ("uploaded Chunk" with 200). */
struct hcl_upload_result {
    int status;
    char message[PROTO_TEXT_MAX];
};

/* Sends UPLOAD_BEGIN. content_length -1: unknown. */
int hcl_upload_begin(struct pmux *m, const char *content_type, int64_t content_length,
                     struct hcl_upload **out, int *status, struct err *e);
/*
 * Sends one piece of the body as DATA (waiting for credit). Returns 0 when sent, 1 when the
 * helper has already answered (stop sending; hcl_upload_finish returns its answer), < 0 when
 * the channel failed (then hcl_upload_finish reports it too).
 */
int hcl_upload_feed(struct hcl_upload *u, const void *data, size_t len, struct err *e);
/*
 * Sends the next piece of the body as one DATA frame of up to max bytes that fill writes in
 * place (pmux_write_data_from): straight into the helper's shared window when it has a free
 * slot, else into spare (max bytes). *sent: the bytes sent (0: fill had none). Returns as
 * hcl_upload_feed; fill's own errors are passed on as they are.
 */
int hcl_upload_feed_from(struct hcl_upload *u, pmux_fill_fn fill, void *ctx, uint8_t *spare,
                         size_t max, size_t *sent, struct err *e);
/*
 * Ends the body (END, unless the helper answered early) and waits for the answer. Always
 * fills res: the helper's UPLOAD_RESULT or ERROR; else a status and message for the failure
 * (503/504/502 as above), with a negative return. Frees u.
 */
int hcl_upload_finish(struct hcl_upload *u, uint32_t timeout_ms, struct hcl_upload_result *res,
                      struct err *e);
/* The client went away: CANCEL (the helper deletes the partial data), free u. NULL ignored. */
void hcl_upload_abort(struct hcl_upload *u);

/* ---- screenshots ---- */

struct hcl_shot {
    int width, height;
    uint8_t *png; /* malloc'd PNG (caller frees) */
    size_t size;
};

/* Asks for a screenshot width pixels wide; the whole PNG is collected (at most HCL_SHOT_MAX
 * bytes) before returning, so that a failure never leaves a half-sent image. */
int hcl_shot_take(struct pmux *m, int width, uint32_t timeout_ms, struct hcl_shot *out, int *status,
                  struct err *e);

#endif
