/*
 * posix/plat_thread.c - mutexes, condition variables (monotonic clock) and threads over
 * pthreads.
 */
#include "plat.h"
#include "posix_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct plat_mutex {
    pthread_mutex_t m;
};

struct plat_cond {
    pthread_cond_t c;
};

struct plat_thread {
    pthread_t t;
    void (*fn)(void *);
    void *arg;
};

int plat_mutex_create(struct plat_mutex **out, struct err *e)
{
    struct plat_mutex *m = calloc(1, sizeof(*m));
    int r;
    *out = NULL;
    if (!m)
        return err_set(e, ERR_NOMEM, "cannot create a mutex: out of memory");
    r = pthread_mutex_init(&m->m, NULL);
    if (r != 0) {
        free(m);
        return plat_posix_fail(e, r, "cannot create a mutex", NULL);
    }
    *out = m;
    return 0;
}

void plat_mutex_lock(struct plat_mutex *m)
{
    if (pthread_mutex_lock(&m->m) != 0)
        abort(); /* only possible with a corrupt mutex: a bug */
}

void plat_mutex_unlock(struct plat_mutex *m)
{
    if (pthread_mutex_unlock(&m->m) != 0)
        abort();
}

void plat_mutex_destroy(struct plat_mutex *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->m);
    free(m);
}

int plat_cond_create(struct plat_cond **out, struct err *e)
{
    struct plat_cond *c = calloc(1, sizeof(*c));
    pthread_condattr_t attr;
    int r;
    *out = NULL;
    if (!c)
        return err_set(e, ERR_NOMEM, "cannot create a condition variable: out of memory");
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    r = pthread_cond_init(&c->c, &attr);
    pthread_condattr_destroy(&attr);
    if (r != 0) {
        free(c);
        return plat_posix_fail(e, r, "cannot create a condition variable", NULL);
    }
    *out = c;
    return 0;
}

int plat_cond_wait(struct plat_cond *c, struct plat_mutex *m, uint32_t timeout_ms)
{
    struct timespec ts;
    int r;
    if (timeout_ms == UINT32_MAX) {
        pthread_cond_wait(&c->c, &m->m);
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    r = pthread_cond_timedwait(&c->c, &m->m, &ts);
    return r == ETIMEDOUT ? ERR_TIMEOUT : 0;
}

void plat_cond_signal(struct plat_cond *c)
{
    pthread_cond_signal(&c->c);
}

void plat_cond_broadcast(struct plat_cond *c)
{
    pthread_cond_broadcast(&c->c);
}

void plat_cond_destroy(struct plat_cond *c)
{
    if (!c)
        return;
    pthread_cond_destroy(&c->c);
    free(c);
}

static void *thread_main(void *p)
{
    struct plat_thread *t = p;
    t->fn(t->arg);
    return NULL;
}

int plat_thread_start(struct plat_thread **out, void (*fn)(void *), void *arg, struct err *e)
{
    struct plat_thread *t = calloc(1, sizeof(*t));
    int r;
    *out = NULL;
    if (!t)
        return err_set(e, ERR_NOMEM, "cannot start a thread: out of memory");
    t->fn = fn;
    t->arg = arg;
    r = pthread_create(&t->t, NULL, thread_main, t);
    if (r != 0) {
        free(t);
        return plat_posix_fail(e, r, "cannot start a thread", NULL);
    }
    *out = t;
    return 0;
}

void plat_thread_join(struct plat_thread *t)
{
    if (!t)
        return;
    pthread_join(t->t, NULL);
    free(t);
}
