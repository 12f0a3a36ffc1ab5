/*
 * pmux.h - requests multiplexed over one channel (pchan.h), with the HELLO handshake and
 * per-request flow control, so that many HTTP requests share one helper's channel and a
 * 10 GiB stream holds at most one window of memory on either side.
 *
 * Threads: pmux_start() starts one reader thread. It reads frames, checks each header
 * before allocating (proto_header_decode), and delivers them: HELLO and LOG to the mux
 * itself, CREDIT to the waiting sender, every other frame to its request's queue. A frame
 * that opens a new request in the PEER's id space goes to cfg->on_request. Writers
 * serialise on the mux's write lock; any thread may use any stream it owns.
 *
 * Ids: the side with cfg->initiator_odd = 1 (the service) opens odd ids, the other side
 * even ids, so both may open requests without colliding. Frames for an id that is not open
 * (a request this side closed, or a late frame) are dropped.
 *
 * Flow control: each side advertises `window` in its HELLO. A sender may have at most the
 * peer's window of DATA bytes not yet credited on one request; pmux_write_data() blocks
 * for credit (up to cfg->stall_timeout_ms). The receiver queues DATA (a peer that exceeds
 * the window breaks the protocol: the channel is closed) and returns CREDIT when the
 * application frees the frames (batched: once half a window has been consumed).
 *
 * Shared window: the service may give the mux a window (pshm.h) that its helper maps
 * read-only. Each side's HELLO says how many bytes of it it has ("shared"); when they agree,
 * the service's DATA goes into a free slot of the window (PROTO_DATA_MAX bytes each) and only
 * a DATA_SHARED {slot, length} frame crosses the channel; the helper's application gets an
 * ordinary DATA frame whose payload points into the slot, and pmux_frame_free() hands the slot
 * back (SHARED_FREE). Credit counts those bytes like any DATA. With no slot free (a helper
 * holding them all) the service sends plain DATA: the window is never a reason to wait. The
 * service never reads the window; the helper's reader checks every slot reference (in range,
 * not already held) and closes the channel on a bad one. Helper -> service DATA never uses it.
 *
 * Finishing: END, ERROR, CANCEL, UPLOAD_RESULT, FILE_RESULT and PONG are terminal frames. A request
 * is finished once either side has sent one; pmux_close() of an unfinished request sends CANCEL.
 * pmux_write_data() stops with ERR_CANCELLED as soon as the peer has sent a terminal frame other
 * than END (it cancelled, failed, or answered early).
 *
 * Failure: a malformed or oversized header, a window violation, a bad HELLO or a version
 * mismatch closes the channel: the reader ends, every waiter gets ERR_IO with the cause,
 * cfg->on_close is called once (on the reader thread) with the reason.
 *
 * Lifetime: pmux_shutdown() (any thread, idempotent) wakes everybody; pmux_free() joins the
 * reader and frees; all streams must have been closed before pmux_free().
 */
#ifndef KASM_PMUX_H
#define KASM_PMUX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "pchan.h"
#include "proto.h"

struct pmux;
struct pmux_stream;
struct plat_file;
struct pshm;

struct pmux_config {
    struct proto_hello hello;  /* what we say (role, pid, session_id, user; window set here) */
    int initiator_odd;         /* 1: this side opens odd request ids (the service) */
    uint32_t window;           /* DATA bytes we accept per request unacknowledged; 0: 2 MiB */
    uint32_t max_streams;      /* requests open at once; 0: 64 (more: ERROR 503 from the mux) */
    uint32_t stall_timeout_ms; /* longest wait for credit; 0: 60000 */
    /* A new request from the peer (reader thread; must not block: start a thread). The
     * callee owns s (pmux_close it) and first (pmux_frame_free it). May be NULL: then the
     * mux answers such requests ERROR 501. */
    void (*on_request)(void *ctx, struct pmux_stream *s, struct proto_frame *first);
    /* A LOG frame from the peer (reader thread). May be NULL. */
    void (*on_log)(void *ctx, const struct proto_log *msg);
    /* The channel ended (EOF, shutdown, protocol error); why->msg says which. Called once,
     * on the reader thread, after every waiter has been woken. May be NULL. */
    void (*on_close)(void *ctx, const struct err *why);
    void *ctx;
    /* The shared window, or NULL: the service's own (pshm_create) or the helper's read-only
     * view of it (pshm_open_reader). pmux_start takes ownership, also on failure. */
    struct pshm *shared;
};

/* Takes ownership of ch (also on failure), sends our HELLO and starts the reader. */
int pmux_start(struct pchan *ch, const struct pmux_config *cfg, struct pmux **out, struct err *e);
/*
 * Waits until the peer's HELLO has arrived and passed proto_hello_check (peer may be NULL).
 * ERR_TIMEOUT after timeout_ms; ERR_PROTOCOL for a version mismatch (the channel is then
 * closed); ERR_IO if the channel ended.
 */
int pmux_wait_ready(struct pmux *m, uint32_t timeout_ms, struct proto_hello *peer, struct err *e);
/* 1 while the channel is up. */
int pmux_alive(struct pmux *m);
/* Sends a LOG frame (helper -> service). Failures are ignored. */
void pmux_log(struct pmux *m, const char *level, const char *message);
void pmux_shutdown(struct pmux *m);
void pmux_free(struct pmux *m);

/* Opens a request with a fresh id in our id space (ERR_BUSY at max_streams; ERR_IO if the
 * channel is down). */
int pmux_open(struct pmux *m, struct pmux_stream **out, struct err *e);
uint32_t pmux_stream_id(const struct pmux_stream *s);
/* Sends a control frame (any type but DATA and CREDIT) on the stream's id. */
int pmux_send(struct pmux_stream *s, uint32_t type, const void *payload, size_t len, struct err *e);
/* Sends an ERROR {status, message}. */
int pmux_send_error(struct pmux_stream *s, int status, const char *message, struct err *e);
/*
 * Sends len bytes as DATA frames, waiting for credit. ERR_CANCELLED when the peer cancelled
 * or closed the request, ERR_TIMEOUT when no credit came for stall_timeout_ms, ERR_IO when
 * the channel is down.
 */
int pmux_write_data(struct pmux_stream *s, const void *data, size_t len, struct err *e);
/*
 * Writes one DATA piece in place: fill(ctx, buf, cap, n, e) puts up to cap bytes into buf and
 * sets *n (0: nothing to send); a negative return is passed on (e set by fill).
 */
typedef int (*pmux_fill_fn)(void *ctx, uint8_t *buf, size_t cap, size_t *n, struct err *e);
/*
 * Sends one DATA piece of up to max bytes (at most PROTO_DATA_MAX) that fill() produces:
 * straight into a free slot of the shared window when there is one (the bytes never cross the
 * channel), else into spare (max bytes, the caller's) sent as DATA. Waits for credit first
 * (errors as for pmux_write_data; fill is not called then). *sent: the bytes sent.
 */
int pmux_write_data_from(struct pmux_stream *s, size_t max, uint8_t *spare, pmux_fill_fn fill,
                         void *ctx, size_t *sent, struct err *e);
/* DATA bytes this side sent or received through the shared window so far. */
uint64_t pmux_shared_bytes(struct pmux *m);
/*
 * Sends up to len bytes of an open file from offset off as DATA frames, like
 * pmux_write_data (same credit, errors and timeouts). Where the channel can (POSIX), the bytes
 * go from the file to the channel without passing through this process's memory; else they
 * are read into a buffer. *sent: the bytes sent (fewer than len when the file ends first).
 */
int pmux_write_file(struct pmux_stream *s, struct plat_file *f, uint64_t off, uint64_t len,
                    uint64_t *sent, struct err *e);
/*
 * The stream's next frame (FIFO). ERR_TIMEOUT after timeout_ms (UINT32_MAX: no limit);
 * ERR_IO when the channel ended and nothing is queued. A CANCEL from the peer is returned
 * as a frame like any other.
 */
int pmux_recv(struct pmux_stream *s, uint32_t timeout_ms, struct proto_frame **out, struct err *e);
/* Frees a frame returned by pmux_recv (or given to on_request); a DATA frame's bytes count
 * as consumed (credit goes back to the peer, and its shared-window slot if it had one: pass
 * the stream for DATA frames). */
void pmux_frame_free(struct pmux_stream *s, struct proto_frame *f);
/* Ends our use of the request: if it is not finished, CANCEL is sent; its queued
 * frames are freed; later frames for its id are dropped. NULL is ignored. s is freed:
 * free every frame taken from it (pmux_frame_free needs s) before closing it. */
void pmux_close(struct pmux_stream *s);

#endif
