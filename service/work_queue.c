/*
 * work_queue.c - the bounded job queue and its worker threads (work_queue.h).
 */
#define LOG_MODULE "queue"

#include "work_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plat.h"

#define WQ_MAX_THREADS 64
#define WQ_NAME_MAX    64

struct wq_job {
    char name[WQ_NAME_MAX];
    wq_run_fn run;
    wq_done_fn done;
    void *arg;
};

struct wq {
    struct plat_mutex *lock; /* guards everything below */
    struct plat_cond *cond;  /* signalled on submit and on stop */
    struct wq_job *ring;
    size_t cap, head, count;
    int stopping; /* no new submissions */
    int cancel;   /* workers stop taking jobs; the rest is cancelled */
    unsigned nthreads;
    struct plat_thread *threads[WQ_MAX_THREADS];
};

static void wq_worker(void *arg)
{
    struct wq *q = arg;

    for (;;) {
        struct wq_job job;

        plat_mutex_lock(q->lock);
        while (q->count == 0 && !q->stopping)
            plat_cond_wait(q->cond, q->lock, UINT32_MAX);
        if (q->count == 0 || q->cancel) {
            plat_mutex_unlock(q->lock);
            return;
        }
        job = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        plat_mutex_unlock(q->lock);

        log_debug("job %s: started", job.name);
        job.run(job.arg);
        if (job.done)
            job.done(job.arg, 0);
        log_debug("job %s: finished", job.name);
    }
}

int wq_create(struct wq **out, unsigned threads, size_t capacity, struct err *e)
{
    struct wq *q = NULL;
    int rc;

    *out = NULL;
    if (threads < 1 || threads > WQ_MAX_THREADS || capacity < 1 || capacity > 65536)
        return err_set(e, ERR_INVALID, "work queue: %u threads and %zu slots are out of range",
                       threads, capacity);
    if (!(q = calloc(1, sizeof(*q))) || !(q->ring = calloc(capacity, sizeof(*q->ring)))) {
        rc = err_set(e, ERR_NOMEM, "work queue: out of memory");
        goto fail;
    }
    q->cap = capacity;
    if ((rc = plat_mutex_create(&q->lock, e)) < 0 || (rc = plat_cond_create(&q->cond, e)) < 0)
        goto fail;
    for (unsigned i = 0; i < threads; i++) {
        if ((rc = plat_thread_start(&q->threads[i], wq_worker, q, e)) < 0) {
            err_prefix(e, "work queue: starting worker %u", i + 1);
            goto fail;
        }
        q->nthreads++;
    }
    *out = q;
    return 0;
fail:
    if (q && q->nthreads) {
        wq_destroy(q, WQ_CANCEL);
        return rc;
    }
    if (q) {
        if (q->cond)
            plat_cond_destroy(q->cond);
        if (q->lock)
            plat_mutex_destroy(q->lock);
        free(q->ring);
        free(q);
    }
    return rc;
}

int wq_submit(struct wq *q, const char *name, wq_run_fn run, wq_done_fn done, void *arg,
              struct err *e)
{
    struct wq_job *job;
    int rc = 0;

    plat_mutex_lock(q->lock);
    if (q->stopping) {
        rc = err_set(e, ERR_CANCELLED, "the agent is stopping; job %s not accepted", name);
    } else if (q->count == q->cap) {
        rc = err_set(e, ERR_BUSY, "the work queue is full (%zu jobs waiting)", q->cap);
    } else {
        job = &q->ring[(q->head + q->count) % q->cap];
        snprintf(job->name, sizeof(job->name), "%s", name ? name : "?");
        job->run = run;
        job->done = done;
        job->arg = arg;
        q->count++;
        plat_cond_signal(q->cond);
    }
    plat_mutex_unlock(q->lock);
    return rc;
}

size_t wq_pending(struct wq *q)
{
    size_t n;
    plat_mutex_lock(q->lock);
    n = q->count;
    plat_mutex_unlock(q->lock);
    return n;
}

int wq_stopping(struct wq *q)
{
    int v;
    plat_mutex_lock(q->lock);
    v = q->stopping;
    plat_mutex_unlock(q->lock);
    return v;
}

void wq_destroy(struct wq *q, enum wq_stop_mode mode)
{
    if (!q)
        return;
    plat_mutex_lock(q->lock);
    q->stopping = 1;
    q->cancel = mode == WQ_CANCEL;
    if (q->count)
        log_info("stopping the work queue: %zu queued job(s) will be %s", q->count,
                 q->cancel ? "cancelled" : "run first");
    plat_cond_broadcast(q->cond);
    plat_mutex_unlock(q->lock);

    for (unsigned i = 0; i < q->nthreads; i++)
        plat_thread_join(q->threads[i]);

    /* Workers are gone: what is left was cancelled (or there were no workers). */
    while (q->count) {
        struct wq_job *job = &q->ring[q->head];
        log_warning("job %s cancelled: the agent is stopping", job->name);
        if (job->done)
            job->done(job->arg, 1);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    plat_cond_destroy(q->cond);
    plat_mutex_destroy(q->lock);
    free(q->ring);
    free(q);
}
