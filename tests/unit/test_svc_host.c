/*
 * test_svc_host.c - the service host (service/svc_host.h): the run function is called and
 * its result returned; stop requests from another thread and (POSIX) from SIGTERM/SIGINT
 * wake svc_stop_wait(); SIGHUP queues a reload; timeouts; the event queue keeps order and
 * reports overflow. Under Wine the host falls back to console mode, as from a real console.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#ifndef _WIN32
#include <signal.h>
#include <unistd.h>
#endif

#include "plat.h"
#include "svc_host.h"

static int run_returns(struct svc_host *h, void *ctx)
{
    assert_int_equal(svc_host_mode(h), SVC_MODE_CONSOLE);
    assert_string_equal(svc_host_name(h), "KasmTest");
    assert_false(svc_stop_requested(h));
    assert_int_equal(svc_stop_reason(h), SVC_STOP_NONE);
    return *(int *)ctx;
}

static void host_returns_run_result(void **state)
{
    struct err e = ERR_INIT;
    int want = 0;
    (void)state;
    assert_int_equal(svc_host_run("KasmTest", run_returns, &want, &e), 0);
    want = ERR_PARSE;
    assert_int_equal(svc_host_run("KasmTest", run_returns, &want, &e), ERR_PARSE);
}

static int run_times_out(struct svc_host *h, void *ctx)
{
    uint64_t t0 = plat_monotonic_ms();
    (void)ctx;
    svc_report_starting(h, 1000); /* no-op outside the SCM, must not crash */
    assert_int_equal(svc_stop_wait(h, 60), 0);
    assert_true(plat_monotonic_ms() - t0 >= 55);
    assert_int_equal(svc_stop_wait(h, 0), 0);
    return 0;
}

static void wait_times_out(void **state)
{
    (void)state;
    assert_int_equal(svc_host_run("KasmTest", run_times_out, NULL, NULL), 0);
}

static void stopper(void *arg)
{
    plat_sleep_ms(50);
    svc_request_stop(arg);
}

static int run_stopped_by_thread(struct svc_host *h, void *ctx)
{
    struct plat_thread *t = NULL;
    (void)ctx;
    assert_int_equal(plat_thread_start(&t, stopper, h, NULL), 0);
    assert_int_equal(svc_stop_wait(h, UINT32_MAX), 1);
    plat_thread_join(t);
    assert_true(svc_stop_requested(h));
    assert_int_equal(svc_stop_reason(h), SVC_STOP_INTERNAL);
    assert_string_equal(svc_stop_source(h), "the agent");
    /* A stop stays requested: later waits return at once. */
    assert_int_equal(svc_stop_wait(h, UINT32_MAX), 1);
    svc_report_stopping(h, 1000);
    return 0;
}

static void stop_from_another_thread(void **state)
{
    (void)state;
    assert_int_equal(svc_host_run("KasmTest", run_stopped_by_thread, NULL, NULL), 0);
}

static int run_events(struct svc_host *h, void *ctx)
{
    struct svc_event ev;
    (void)ctx;
    assert_int_equal(svc_event_next(h, &ev), 0);
    for (uint32_t k = 0; k < 3; k++) {
        struct svc_event in = {SVC_EVENT_SESSION_CHANGE, 5 + k, 100 + k};
        svc_event_post(h, &in);
    }
    /* An event ends the wait at once without a stop. */
    assert_int_equal(svc_stop_wait(h, UINT32_MAX), 0);
    for (uint32_t k = 0; k < 3; k++) {
        assert_int_equal(svc_event_next(h, &ev), 1);
        assert_int_equal(ev.type, SVC_EVENT_SESSION_CHANGE);
        assert_int_equal(ev.reason, 5 + k);
        assert_int_equal(ev.session_id, 100 + k);
    }
    assert_int_equal(svc_event_next(h, &ev), 0);

    /* More than the queue holds: the first 64 in order, then one OVERFLOW. */
    for (uint32_t k = 0; k < 100; k++) {
        struct svc_event in = {SVC_EVENT_SESSION_CHANGE, 0, k};
        svc_event_post(h, &in);
    }
    for (uint32_t k = 0; k < 64; k++) {
        assert_int_equal(svc_event_next(h, &ev), 1);
        assert_int_equal(ev.session_id, k);
    }
    assert_int_equal(svc_event_next(h, &ev), 1);
    assert_int_equal(ev.type, SVC_EVENT_OVERFLOW);
    assert_int_equal(svc_event_next(h, &ev), 0);
    assert_false(svc_stop_requested(h));
    return 0;
}

static void events_in_order_with_overflow(void **state)
{
    (void)state;
    assert_int_equal(svc_host_run("KasmTest", run_events, NULL, NULL), 0);
}

#ifndef _WIN32
struct sig_result {
    int sig;
    char source[32];
    int reloads;
};

static int run_signals(struct svc_host *h, void *ctx)
{
    struct sig_result *r = ctx;
    struct svc_event ev;
    uint64_t end = plat_monotonic_ms() + 5000;

    /* SIGHUP: a reload event, not a stop. */
    kill(getpid(), SIGHUP);
    while (!r->reloads && plat_monotonic_ms() < end) {
        if (svc_stop_wait(h, 100))
            return ERR_INTERNAL;
        while (svc_event_next(h, &ev))
            r->reloads += ev.type == SVC_EVENT_RELOAD;
    }
    kill(getpid(), r->sig);
    if (svc_stop_wait(h, 5000) != 1)
        return ERR_TIMEOUT;
    snprintf(r->source, sizeof(r->source), "%s", svc_stop_source(h));
    /* A second signal during shutdown must not kill the process. */
    kill(getpid(), r->sig);
    return svc_stop_reason(h) == SVC_STOP_REQUESTED ? 0 : ERR_INTERNAL;
}

static void signals_stop_and_reload(void **state)
{
    static const struct {
        int sig;
        const char *name;
    } rows[] = {{SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"}};
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        struct sig_result r;
        memset(&r, 0, sizeof(r));
        r.sig = rows[k].sig;
        assert_int_equal(svc_host_run("KasmTest", run_signals, &r, NULL), 0);
        assert_int_equal(r.reloads, 1);
        assert_string_equal(r.source, rows[k].name);
    }
    /* SIGPIPE is ignored: writing to a closed pipe is an error, not death. */
    {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        close(fds[0]);
        assert_int_equal(write(fds[1], "x", 1), -1);
        close(fds[1]);
    }
}
#else
static void signals_stop_and_reload(void **state)
{
    (void)state;
    UNIT_SKIP("POSIX signals; on Windows the SCM and console control handler stop the agent");
}
#endif

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_returns_run_result),  cmocka_unit_test(wait_times_out),
        cmocka_unit_test(stop_from_another_thread), cmocka_unit_test(events_in_order_with_overflow),
        cmocka_unit_test(signals_stop_and_reload),
    };
    return UNIT_RUN("svc_host", tests, NULL, NULL);
}
