/*
 * work_queue.h - a bounded queue of jobs served by N worker threads (portable, over plat.h).
 *
 * HTTP handlers only parse, authenticate and hand long work (session start/end) to the queue,
 * then answer at once. Jobs run in FIFO order of submission (with N workers, N may run at
 * the same time). The queue owns one lock (q->lock) guarding its ring, its state and its
 * counters.
 *
 * Shutdown (wq_destroy) is orderly: new submissions are refused with ERR_CANCELLED, the jobs
 * already running finish, the jobs still queued are either run (WQ_DRAIN) or cancelled
 * (WQ_CANCEL: their cancel callback runs and a log line names each one), then the workers
 * are joined.
 */
#ifndef KASM_WORK_QUEUE_H
#define KASM_WORK_QUEUE_H

#include <stddef.h>

#include "err.h"

struct wq;

/* run: does the work. done: always called exactly once afterwards (or instead, when the job
 * is cancelled; cancelled != 0 then) to release arg. done may be NULL. */
typedef void (*wq_run_fn)(void *arg);
typedef void (*wq_done_fn)(void *arg, int cancelled);

enum wq_stop_mode {
    WQ_DRAIN = 0,  /* run every queued job before returning */
    WQ_CANCEL = 1, /* cancel the queued jobs (done(arg, 1)), finish only the running ones */
};

/* Starts `threads` workers (1..64) over a ring of `capacity` jobs (1..65536). */
int wq_create(struct wq **out, unsigned threads, size_t capacity, struct err *e);
/*
 * Queues a job. name (copied, at most 63 bytes kept) appears in log lines. ERR_BUSY when the
 * queue is full, ERR_CANCELLED once shutdown began; then neither run nor done is called.
 */
int wq_submit(struct wq *q, const char *name, wq_run_fn run, wq_done_fn done, void *arg,
              struct err *e);
/* Jobs queued and not started yet. */
size_t wq_pending(struct wq *q);
/* 1 once wq_destroy() has begun (new jobs are refused), else 0. */
int wq_stopping(struct wq *q);
/* Stops the queue as described above and frees it. NULL is ignored. */
void wq_destroy(struct wq *q, enum wq_stop_mode mode);

#endif
