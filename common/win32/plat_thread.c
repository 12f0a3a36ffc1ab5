/*
 * win32/plat_thread.c - mutexes (SRWLOCK), condition variables (CONDITION_VARIABLE) and
 * threads (_beginthreadex) on Windows.
 */
#include "plat.h"
#include "wide.h"

#include <process.h>
#include <stdlib.h>

struct plat_mutex {
    SRWLOCK lock;
};

struct plat_cond {
    CONDITION_VARIABLE cv;
};

struct plat_thread {
    HANDLE h;
    void (*fn)(void *);
    void *arg;
};

int plat_mutex_create(struct plat_mutex **out, struct err *e)
{
    struct plat_mutex *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (!m)
        return err_set(e, ERR_NOMEM, "cannot create a mutex: out of memory");
    InitializeSRWLock(&m->lock);
    *out = m;
    return 0;
}

void plat_mutex_lock(struct plat_mutex *m)
{
    AcquireSRWLockExclusive(&m->lock);
}

void plat_mutex_unlock(struct plat_mutex *m)
{
    ReleaseSRWLockExclusive(&m->lock);
}

void plat_mutex_destroy(struct plat_mutex *m)
{
    free(m); /* an SRWLOCK needs no cleanup */
}

int plat_cond_create(struct plat_cond **out, struct err *e)
{
    struct plat_cond *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return err_set(e, ERR_NOMEM, "cannot create a condition variable: out of memory");
    InitializeConditionVariable(&c->cv);
    *out = c;
    return 0;
}

int plat_cond_wait(struct plat_cond *c, struct plat_mutex *m, uint32_t timeout_ms)
{
    DWORD t = timeout_ms == UINT32_MAX ? INFINITE : (DWORD)timeout_ms;
    if (!SleepConditionVariableSRW(&c->cv, &m->lock, t, 0))
        return GetLastError() == ERROR_TIMEOUT ? ERR_TIMEOUT : ERR_IO;
    return 0;
}

void plat_cond_signal(struct plat_cond *c)
{
    WakeConditionVariable(&c->cv);
}

void plat_cond_broadcast(struct plat_cond *c)
{
    WakeAllConditionVariable(&c->cv);
}

void plat_cond_destroy(struct plat_cond *c)
{
    free(c);
}

static unsigned __stdcall thread_main(void *p)
{
    struct plat_thread *t = p;
    t->fn(t->arg);
    return 0;
}

int plat_thread_start(struct plat_thread **out, void (*fn)(void *), void *arg, struct err *e)
{
    struct plat_thread *t = calloc(1, sizeof(*t));
    uintptr_t h;
    *out = NULL;
    if (!t)
        return err_set(e, ERR_NOMEM, "cannot start a thread: out of memory");
    t->fn = fn;
    t->arg = arg;
    h = _beginthreadex(NULL, 0, thread_main, t, 0, NULL);
    if (h == 0) {
        free(t);
        return plat_win_fail(e, GetLastError(), "cannot start a thread", NULL);
    }
    t->h = (HANDLE)h;
    *out = t;
    return 0;
}

void plat_thread_join(struct plat_thread *t)
{
    if (!t)
        return;
    WaitForSingleObject(t->h, INFINITE);
    CloseHandle(t->h);
    free(t);
}
