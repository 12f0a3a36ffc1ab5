/*
 * posix/svc_host.c - the service host on POSIX: a foreground process (a terminal, or a
 * systemd unit of Type=simple). SIGINT and SIGTERM request a stop, SIGHUP queues a reload
 * event, SIGPIPE is ignored (a closed socket is an error return, not a death).
 *
 * Signals are taken by a dedicated thread with sigwait(): the three are blocked before the
 * run function starts, so every thread it creates inherits the mask and only the signal
 * thread receives them. The signal thread only records and wakes (svc_host_core.c).
 */
#include "svc_host_core.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

struct sig_ctx {
    struct svc_host *h;
    sigset_t set;
};

static void *sig_thread(void *arg)
{
    struct sig_ctx *c = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&c->set, &sig) != 0)
            continue;
        if (sig == SIGTERM) {
            svc_core_request_stop(c->h, SVC_STOP_REQUESTED, "SIGTERM");
        } else if (sig == SIGINT) {
            svc_core_request_stop(c->h, SVC_STOP_REQUESTED, "SIGINT");
        } else if (sig == SIGHUP) {
            struct svc_event ev = {SVC_EVENT_RELOAD, 0, 0};
            svc_event_post(c->h, &ev);
        }
    }
    return NULL;
}

int svc_host_args(int argc, char **argv, int *argc_out, char ***argv_out, struct err *e)
{
    (void)e;
    *argc_out = argc;
    *argv_out = argv;
    return 0;
}

void svc_host_force_console(void)
{
    /* POSIX always runs in the foreground */
}

int svc_host_run(const char *service_name, svc_run_fn fn, void *ctx, struct err *e)
{
    struct sig_ctx sc;
    struct sigaction ign;
    sigset_t old;
    pthread_t th;
    int rc, r;

    memset(&sc, 0, sizeof(sc));
    if ((rc = svc_core_create(&sc.h, service_name, SVC_MODE_CONSOLE, NULL, NULL, e)) < 0)
        return rc;

    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGINT);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sc.set, &old);
    r = pthread_create(&th, NULL, sig_thread, &sc);
    if (r != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        svc_core_destroy(sc.h);
        return err_set(e, ERR_IO, "cannot start the signal thread: %s", strerror(r));
    }

    rc = fn(sc.h, ctx);

    pthread_cancel(th); /* sigwait() is a cancellation point */
    pthread_join(th, NULL);
    /* Swallow signals that arrived after the run function returned, then restore the mask. */
    {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&sc.set, NULL, &zero) > 0)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    svc_core_destroy(sc.h);
    return rc;
}
