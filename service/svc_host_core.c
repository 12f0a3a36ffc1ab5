/*
 * svc_host_core.c - the portable half of the service host (svc_host_core.h): the stop
 * request, the bounded event queue and the waits, over the platform layer's mutex and
 * condition variable.
 *
 * Ownership: everything in struct svc_host below `lock` is guarded by it. Control handlers
 * only take the lock, record, broadcast and return.
 */
#include "svc_host_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define SVC_EVENT_QUEUE 64

struct svc_host {
    char name[128];
    enum svc_mode mode;
    svc_report_fn report;
    void *plat;

    struct plat_mutex *lock;
    struct plat_cond *cond;
    /* guarded by lock: */
    enum svc_stop_reason stop_reason;
    const char *stop_source;
    int running_reported;
    int stopping_reported;
    struct svc_event queue[SVC_EVENT_QUEUE];
    size_t q_start;
    size_t q_count;
    int overflow; /* an SVC_EVENT_OVERFLOW is owed to the reader */
};

int svc_core_create(struct svc_host **out, const char *name, enum svc_mode mode,
                    svc_report_fn report, void *plat, struct err *e)
{
    struct svc_host *h = calloc(1, sizeof(*h));
    int rc = 0;

    *out = NULL;
    if (!h)
        return err_set(e, ERR_NOMEM, "cannot start the service host: out of memory");
    snprintf(h->name, sizeof(h->name), "%s", name ? name : "");
    h->mode = mode;
    h->report = report;
    h->plat = plat;
    h->stop_source = "";
    if ((rc = plat_mutex_create(&h->lock, e)) < 0 || (rc = plat_cond_create(&h->cond, e)) < 0) {
        svc_core_destroy(h);
        return err_prefix(e, "cannot start the service host");
    }
    *out = h;
    return 0;
}

void svc_core_destroy(struct svc_host *h)
{
    if (!h)
        return;
    plat_cond_destroy(h->cond);
    plat_mutex_destroy(h->lock);
    free(h);
}

void svc_core_set_mode(struct svc_host *h, enum svc_mode mode)
{
    h->mode = mode;
}

void svc_core_set_report(struct svc_host *h, svc_report_fn report, void *plat)
{
    h->report = report;
    h->plat = plat;
}

void svc_core_request_stop(struct svc_host *h, enum svc_stop_reason reason, const char *source)
{
    plat_mutex_lock(h->lock);
    if (h->stop_reason == SVC_STOP_NONE) {
        h->stop_reason = reason;
        h->stop_source = source ? source : "";
    }
    plat_cond_broadcast(h->cond);
    plat_mutex_unlock(h->lock);
}

enum svc_mode svc_host_mode(const struct svc_host *h)
{
    return h->mode;
}

const char *svc_host_name(const struct svc_host *h)
{
    return h->name;
}

static void report(struct svc_host *h, enum svc_status status, uint32_t wait_hint_ms)
{
    if (h->report)
        h->report(h->plat, status, wait_hint_ms);
}

void svc_report_starting(struct svc_host *h, uint32_t wait_hint_ms)
{
    int running;
    plat_mutex_lock(h->lock);
    running = h->running_reported;
    plat_mutex_unlock(h->lock);
    if (!running)
        report(h, SVC_STATUS_START_PENDING, wait_hint_ms);
}

void svc_report_running(struct svc_host *h)
{
    int first;
    plat_mutex_lock(h->lock);
    first = !h->running_reported;
    h->running_reported = 1;
    plat_mutex_unlock(h->lock);
    if (first)
        report(h, SVC_STATUS_RUNNING, 0);
}

void svc_report_stopping(struct svc_host *h, uint32_t wait_hint_ms)
{
    plat_mutex_lock(h->lock);
    h->running_reported = 1; /* a start that is abandoned never reports running */
    h->stopping_reported = 1;
    plat_mutex_unlock(h->lock);
    report(h, SVC_STATUS_STOP_PENDING, wait_hint_ms);
}

int svc_stop_requested(struct svc_host *h)
{
    int stop;
    plat_mutex_lock(h->lock);
    stop = h->stop_reason != SVC_STOP_NONE;
    plat_mutex_unlock(h->lock);
    return stop;
}

enum svc_stop_reason svc_stop_reason(struct svc_host *h)
{
    enum svc_stop_reason r;
    plat_mutex_lock(h->lock);
    r = h->stop_reason;
    plat_mutex_unlock(h->lock);
    return r;
}

const char *svc_stop_source(struct svc_host *h)
{
    const char *s;
    plat_mutex_lock(h->lock);
    s = h->stop_source;
    plat_mutex_unlock(h->lock);
    return s;
}

void svc_request_stop(struct svc_host *h)
{
    svc_core_request_stop(h, SVC_STOP_INTERNAL, "the agent");
}

int svc_stop_wait(struct svc_host *h, uint32_t timeout_ms)
{
    uint64_t deadline = plat_monotonic_ms() + timeout_ms;
    int stop, first_stop = 0;

    svc_report_running(h); /* waiting means start-up is over */
    plat_mutex_lock(h->lock);
    while (h->stop_reason == SVC_STOP_NONE && h->q_count == 0 && !h->overflow) {
        uint32_t left = UINT32_MAX;
        if (timeout_ms != UINT32_MAX) {
            uint64_t now = plat_monotonic_ms();
            if (now >= deadline)
                break;
            left = (uint32_t)(deadline - now);
        }
        plat_cond_wait(h->cond, h->lock, left); /* spurious wake-ups loop */
    }
    stop = h->stop_reason != SVC_STOP_NONE;
    if (stop && !h->stopping_reported) {
        h->stopping_reported = 1;
        first_stop = 1;
    }
    plat_mutex_unlock(h->lock);
    if (first_stop)
        report(h, SVC_STATUS_STOP_PENDING, 30000);
    return stop;
}

int svc_event_next(struct svc_host *h, struct svc_event *ev)
{
    int got = 0;
    plat_mutex_lock(h->lock);
    if (h->q_count > 0) {
        *ev = h->queue[h->q_start];
        h->q_start = (h->q_start + 1) % SVC_EVENT_QUEUE;
        h->q_count--;
        got = 1;
    } else if (h->overflow) {
        memset(ev, 0, sizeof(*ev));
        ev->type = SVC_EVENT_OVERFLOW;
        h->overflow = 0;
        got = 1;
    }
    plat_mutex_unlock(h->lock);
    return got;
}

void svc_event_post(struct svc_host *h, const struct svc_event *ev)
{
    plat_mutex_lock(h->lock);
    if (h->q_count == SVC_EVENT_QUEUE)
        h->overflow = 1;
    else
        h->queue[(h->q_start + h->q_count++) % SVC_EVENT_QUEUE] = *ev;
    plat_cond_broadcast(h->cond);
    plat_mutex_unlock(h->lock);
}
