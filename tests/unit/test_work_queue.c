/*
 * test_work_queue.c - the bounded job queue of the service (service/work_queue.c): FIFO order,
 * concurrent workers, a full queue, and shutdown with pending jobs (drain and cancel).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "plat.h"
#include "work_queue.h"

struct probe {
    struct plat_mutex *m;
    struct plat_cond *c;
    int order[64];
    int ran, cancelled, done, running, max_running;
    int gate_open;
};

struct job {
    struct probe *p;
    int id;
    int wait_gate;  /* block until gate_open */
    int wait_peers; /* block until this many jobs run at once (or 5 s) */
};

static struct probe *probe_new(void)
{
    struct probe *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(plat_mutex_create(&p->m, NULL), 0);
    assert_int_equal(plat_cond_create(&p->c, NULL), 0);
    return p;
}

static void probe_free(struct probe *p)
{
    plat_cond_destroy(p->c);
    plat_mutex_destroy(p->m);
    free(p);
}

static void job_run(void *arg)
{
    struct job *j = arg;
    struct probe *p = j->p;
    uint64_t end = plat_monotonic_ms() + 5000;

    plat_mutex_lock(p->m);
    p->order[p->ran++ % 64] = j->id;
    p->running++;
    if (p->running > p->max_running)
        p->max_running = p->running;
    plat_cond_broadcast(p->c);
    while ((j->wait_gate && !p->gate_open) || (j->wait_peers && p->max_running < j->wait_peers)) {
        if (plat_monotonic_ms() >= end)
            break;
        plat_cond_wait(p->c, p->m, 50);
    }
    p->running--;
    plat_mutex_unlock(p->m);
}

static void job_done(void *arg, int cancelled)
{
    struct job *j = arg;
    plat_mutex_lock(j->p->m);
    j->p->done++;
    if (cancelled)
        j->p->cancelled++;
    plat_mutex_unlock(j->p->m);
}

static void wait_ran(struct probe *p, int n)
{
    uint64_t end = plat_monotonic_ms() + 5000;
    plat_mutex_lock(p->m);
    while (p->ran < n && plat_monotonic_ms() < end)
        plat_cond_wait(p->c, p->m, 50);
    plat_mutex_unlock(p->m);
    assert_true(p->ran >= n);
}

static void open_gate(struct probe *p)
{
    plat_mutex_lock(p->m);
    p->gate_open = 1;
    plat_cond_broadcast(p->c);
    plat_mutex_unlock(p->m);
}

static void fifo_order_with_one_worker(void **state)
{
    struct probe *p = probe_new();
    struct job jobs[40];
    struct wq *q;
    (void)state;

    assert_int_equal(wq_create(&q, 1, 64, NULL), 0);
    for (int i = 0; i < 40; i++) {
        jobs[i] = (struct job){p, i, 0, 0};
        assert_int_equal(wq_submit(q, "order", job_run, job_done, &jobs[i], NULL), 0);
    }
    wq_destroy(q, WQ_DRAIN);
    assert_int_equal(p->ran, 40);
    assert_int_equal(p->done, 40);
    assert_int_equal(p->cancelled, 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(p->order[i], i);
    probe_free(p);
}

static void workers_run_jobs_concurrently(void **state)
{
    struct probe *p = probe_new();
    struct job jobs[4];
    struct wq *q;
    (void)state;

    assert_int_equal(wq_create(&q, 4, 16, NULL), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){p, i, 0, 4};
        assert_int_equal(wq_submit(q, "conc", job_run, job_done, &jobs[i], NULL), 0);
    }
    wq_destroy(q, WQ_DRAIN);
    assert_int_equal(p->max_running, 4); /* all four were inside run() at once */
    assert_int_equal(p->done, 4);
    probe_free(p);
}

static void full_queue_is_busy(void **state)
{
    struct probe *p = probe_new();
    struct job jobs[4];
    struct err e = ERR_INIT;
    struct wq *q;
    (void)state;

    assert_int_equal(wq_create(&q, 1, 2, NULL), 0);
    for (int i = 0; i < 4; i++)
        jobs[i] = (struct job){p, i, 1, 0};
    assert_int_equal(wq_submit(q, "a", job_run, job_done, &jobs[0], NULL), 0);
    wait_ran(p, 1); /* the worker holds job 0: the ring is empty again */
    assert_int_equal(wq_submit(q, "b", job_run, job_done, &jobs[1], NULL), 0);
    assert_int_equal(wq_submit(q, "c", job_run, job_done, &jobs[2], NULL), 0);
    assert_int_equal(wq_pending(q), 2);
    assert_int_equal(wq_submit(q, "d", job_run, job_done, &jobs[3], &e), ERR_BUSY);
    assert_int_equal(e.code, ERR_BUSY);
    assert_non_null(strstr(e.msg, "full"));
    open_gate(p);
    wq_destroy(q, WQ_DRAIN);
    assert_int_equal(p->ran, 3);
    assert_int_equal(p->done, 3); /* the refused job was neither run nor released */
    probe_free(p);
}

struct stopper {
    struct wq *q;
    enum wq_stop_mode mode;
};

static void stop_thread(void *arg)
{
    struct stopper *s = arg;
    wq_destroy(s->q, s->mode);
}

static void shutdown_with_pending(enum wq_stop_mode mode)
{
    struct probe *p = probe_new();
    struct job jobs[6];
    struct stopper s;
    struct plat_thread *t;
    struct err e = ERR_INIT;

    assert_int_equal(wq_create(&s.q, 1, 8, NULL), 0);
    s.mode = mode;
    for (int i = 0; i < 6; i++) {
        jobs[i] = (struct job){p, i, i == 0, 0};
        assert_int_equal(wq_submit(s.q, "pending", job_run, job_done, &jobs[i], NULL), 0);
    }
    wait_ran(p, 1); /* job 0 blocks the only worker; 5 are queued */
    assert_int_equal(plat_thread_start(&t, stop_thread, &s, NULL), 0);
    for (int i = 0; i < 500 && !wq_stopping(s.q); i++)
        plat_sleep_ms(10); /* until the stop has begun; it then waits for the running job */
    assert_true(wq_stopping(s.q));
    assert_int_equal(wq_submit(s.q, "late", job_run, job_done, &jobs[0], &e), ERR_CANCELLED);
    open_gate(p);
    plat_thread_join(t);
    assert_int_equal(p->done, 6); /* every job released exactly once */
    if (mode == WQ_DRAIN) {
        assert_int_equal(p->ran, 6);
        assert_int_equal(p->cancelled, 0);
    } else {
        assert_int_equal(p->ran, 1);
        assert_int_equal(p->cancelled, 5);
    }
    probe_free(p);
}

static void shutdown_drains_pending_jobs(void **state)
{
    (void)state;
    shutdown_with_pending(WQ_DRAIN);
}

static void shutdown_cancels_pending_jobs(void **state)
{
    (void)state;
    shutdown_with_pending(WQ_CANCEL);
}

static void bad_sizes_are_refused(void **state)
{
    struct wq *q = (struct wq *)1;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(wq_create(&q, 0, 4, &e), ERR_INVALID);
    assert_null(q);
    assert_int_equal(wq_create(&q, 2, 0, &e), ERR_INVALID);
    assert_int_equal(wq_create(&q, 65, 4, &e), ERR_INVALID);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_order_with_one_worker),
        cmocka_unit_test(workers_run_jobs_concurrently),
        cmocka_unit_test(full_queue_is_busy),
        cmocka_unit_test(shutdown_drains_pending_jobs),
        cmocka_unit_test(shutdown_cancels_pending_jobs),
        cmocka_unit_test(bad_sizes_are_refused),
    };
    return UNIT_RUN("work_queue", tests, NULL, NULL);
}
