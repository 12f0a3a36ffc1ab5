/*
 * svc_host.h - the service host: runs the agent's main function as a Windows service (under
 * the Service Control Manager) or as a foreground process (a console on Windows, a terminal
 * or systemd on POSIX), and turns the outside world's requests into one portable interface:
 * "stop now", "reload", "a session changed".
 *
 * Threads and ownership: the host owns a struct svc_host and its lock. The platform side
 * (the SCM control handler, the console control handler, the POSIX signal thread) only
 * records a request and wakes the waiter - it never does work itself. The run function
 * runs on one thread (the service's ServiceMain thread, or the main thread in a console) and
 * polls the host with svc_stop_wait() and svc_event_next().
 *
 *     static int agent_run(struct svc_host *h, void *ctx)
 *     {
 *         ... start up, calling svc_report_starting(h, 10000) during long steps ...
 *         svc_report_running(h);
 *         while (!svc_stop_wait(h, 1000)) {
 *             struct svc_event ev;
 *             while (svc_event_next(h, &ev))
 *                 ... handle ev ...
 *         }
 *         ... shut down, calling svc_report_stopping(h, 10000) during long steps ...
 *         return 0;
 *     }
 *     rc = svc_host_run("Kasm", agent_run, &ctx, &e);
 *
 * Windows: SERVICE_STOPPED is reported after the run function returns, last of all, with
 * NO_ERROR or (when run failed) ERROR_SERVICE_SPECIFIC_ERROR and the error code; the process
 * may end at any moment after that, so run must finish its own logging before it returns.
 */
#ifndef KASM_SVC_HOST_H
#define KASM_SVC_HOST_H

#include <stdint.h>

#include "err.h"

struct svc_host; /* owned by svc_host_run(); valid for the run function's lifetime */

enum svc_mode {
    SVC_MODE_CONSOLE = 0, /* foreground: a terminal, a Windows console, systemd */
    SVC_MODE_SERVICE = 1, /* started by the Windows Service Control Manager */
};

/* Why the host is stopping. */
enum svc_stop_reason {
    SVC_STOP_NONE = 0,
    SVC_STOP_REQUESTED = 1, /* SCM stop (net stop, Stop-Service), SIGTERM/SIGINT, Ctrl+C */
    SVC_STOP_SHUTDOWN = 2,  /* the machine is shutting down (SCM shutdown/preshutdown) */
    SVC_STOP_CONSOLE = 3,   /* the console window is closing or the user logs off */
    SVC_STOP_INTERNAL = 4,  /* svc_request_stop(): the agent itself */
};

enum svc_event_type {
    SVC_EVENT_RELOAD = 1,         /* SIGHUP / SERVICE_CONTROL_PARAMCHANGE: re-read the config */
    SVC_EVENT_SESSION_CHANGE = 2, /* SERVICE_CONTROL_SESSIONCHANGE (WTS_* reason, session id) */
    SVC_EVENT_OVERFLOW = 3,       /* events were dropped: re-enumerate sessions instead */
};

struct svc_event {
    enum svc_event_type type;
    uint32_t reason;     /* SESSION_CHANGE: WTS_SESSION_LOGON, _LOGOFF, _LOCK, ... */
    uint32_t session_id; /* SESSION_CHANGE: the terminal session id */
};

typedef int (*svc_run_fn)(struct svc_host *h, void *ctx);

/*
 * The command line in UTF-8, as every path in the agent is. On Windows the argv that main()
 * receives is in the ANSI code page, so it is rebuilt from GetCommandLineW(); on POSIX argv
 * is returned as it is. The result stays valid until the process ends.
 */
int svc_host_args(int argc, char **argv, int *argc_out, char ***argv_out, struct err *e);

/*
 * Runs fn(h, ctx) under the host: as a service when the SCM started the process, else in
 * the foreground. Returns fn's result (0 or a negative ERR_* code), or a negative code with
 * e filled when the host itself failed (then fn did not run).
 */
int svc_host_run(const char *service_name, svc_run_fn fn, void *ctx, struct err *e);
/*
 * Makes the next svc_host_run() run in the foreground without asking the Service Control
 * Manager first (agent --console). Windows: skips StartServiceCtrlDispatcherW, whose "not a
 * service" answer takes about 10 s under Wine; POSIX: always the foreground, no effect.
 */
void svc_host_force_console(void);

enum svc_mode svc_host_mode(const struct svc_host *h);
const char *svc_host_name(const struct svc_host *h);

/* Start-up progress: a new checkpoint; the SCM waits wait_hint_ms more (no-op on POSIX). */
void svc_report_starting(struct svc_host *h, uint32_t wait_hint_ms);
/* Start-up is complete: SERVICE_RUNNING, stop and session events accepted. Idempotent. */
void svc_report_running(struct svc_host *h);
/* Shut-down progress: SERVICE_STOP_PENDING with a new checkpoint. */
void svc_report_stopping(struct svc_host *h, uint32_t wait_hint_ms);

/* 1 when a stop has been requested (from any source), else 0. Any thread. */
int svc_stop_requested(struct svc_host *h);
enum svc_stop_reason svc_stop_reason(struct svc_host *h);
/* Who asked, for the log: "SIGTERM", "Ctrl+C", "the Service Control Manager", ... or "". */
const char *svc_stop_source(struct svc_host *h);
/* Requests a stop from inside the agent (a fatal error on a worker thread). Any thread. */
void svc_request_stop(struct svc_host *h);

/*
 * Waits up to timeout_ms (UINT32_MAX: no limit) for a stop request or a queued event.
 * Returns 1 when a stop has been requested, 0 on timeout or when an event is waiting.
 * Waiting means start-up is over: the first call reports running if the caller did not.
 * The first call that sees the stop reports STOP_PENDING.
 */
int svc_stop_wait(struct svc_host *h, uint32_t timeout_ms);

/* Takes the oldest queued event into ev: 1, or 0 when there is none. */
int svc_event_next(struct svc_host *h, struct svc_event *ev);

/*
 * Queues an event (the platform hosts use it; so can tests and the POSIX session source).
 * When the queue is full, the event is dropped and one SVC_EVENT_OVERFLOW is delivered.
 * Only takes the host's lock and signals: safe from a control handler.
 */
void svc_event_post(struct svc_host *h, const struct svc_event *ev);

#endif
