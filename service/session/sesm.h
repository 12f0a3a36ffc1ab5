/*
 * sesm.h - the session manager: one session helper per logged-on terminal session, started
 * as that session's user, restarted (throttled) when it dies, stopped on logoff. The routes
 * of the HTTPS API borrow a helper's channel through a lease; agentctl reads the table.
 *
 * Sources of sessions (sess_plat.h): Windows - SERVICE_CONTROL_SESSIONCHANGE events, queued
 * by the service host and handed over with sesm_notify(), plus WTSEnumerateSessionsW at
 * start and every poll_ms (Wine sends no events); POSIX - a declared-sessions file (tests)
 * or logind's /run/systemd/sessions, enumerated at start and every poll_ms.
 *
 * Threads: one monitor thread owns the table and its lock (sesm->lock); it enumerates,
 * spawns, reaps and restarts. sesm_notify() only queues and wakes it. Route threads take
 * leases under the lock; a helper being stopped is shut down (its channel wakes every
 * waiter) and freed only when its last lease is released.
 *
 * Helper states: starting (spawned, HELLO not yet received) -> running -> (exit or channel
 * closed) -> restarting (waiting out the throttle: restart_min_ms, doubling per quick death
 * up to restart_max_ms; reset after a helper ran 60 s) -> starting ...; logoff -> stopping
 * -> removed from the table.
 */
#ifndef KASM_SESM_H
#define KASM_SESM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sesm;
struct sesm_lease;
struct pmux;

struct sesm_config {
    char helper_path[4096];    /* session_helper(.exe); "": beside the running executable */
    char sessions_file[4096];  /* POSIX: declared sessions (tests); "": logind */
    uint32_t poll_ms;          /* re-enumeration period; 0: 30000 (env KASM_SESSION_POLL_MS) */
    uint32_t restart_min_ms;   /* first restart delay; 0: 1000 */
    uint32_t restart_max_ms;   /* longest restart delay; 0: 60000 */
    uint32_t hello_timeout_ms; /* a helper that does not say HELLO in time is killed; 0: 10000 */
    int debug;                 /* pass --debug to helpers */
    uint32_t upload_max_in_flight; /* passed to helpers (max_concurrent_uploads) */
};

int sesm_start(const struct sesm_config *cfg, struct sesm **out, struct err *e);
/* A session changed (svc_host SVC_EVENT_SESSION_CHANGE: WTS_* reason, session id). Queues and
 * wakes the monitor; never blocks. reason 0: re-enumerate (SVC_EVENT_OVERFLOW). */
void sesm_notify(struct sesm *m, uint32_t reason, uint32_t session_id);
/* Stops every helper (close the channel, wait up to 5 s, then kill) and frees m. */
void sesm_stop(struct sesm *m);

/*
 * Borrows the channel of a running helper:
 *  - user != NULL and non-empty: the helper of a session of that user (the part after '@'
 *    is ignored; case-insensitive on Windows, ASCII letters);
 *  - else, or when no session of that user has one and console_fallback is set: the helper
 *    of the active console session.
 * ERR_NOT_FOUND (message says whose) when none is running. Release the lease when done.
 */
int sesm_acquire(struct sesm *m, const char *user, int console_fallback, struct sesm_lease **out,
                 struct err *e);
/* Borrows the channel of session session_id's helper (agentctl screenshot): ERR_NOT_FOUND
 * when there is no such session, ERR_BUSY when its helper is not running now. */
int sesm_acquire_session(struct sesm *m, uint32_t session_id, struct sesm_lease **out,
                         struct err *e);
struct pmux *sesm_lease_mux(const struct sesm_lease *l);
uint32_t sesm_lease_session(const struct sesm_lease *l);
const char *sesm_lease_user(const struct sesm_lease *l);
/* The pid of the lease's helper process (a restarted helper has another; the screenshot
 * cache keys on it). */
unsigned long sesm_lease_helper_pid(const struct sesm_lease *l);
void sesm_release(struct sesm_lease *l);
/*
 * The terminal session of a user (the same matching as sesm_acquire; the console session
 * first), whatever the state of its helper: 0 with *session_id and account (the user as the
 * session names it), or ERR_NOT_FOUND when that user has no session now.
 */
int sesm_find_user(struct sesm *m, const char *user, uint32_t *session_id, char *account,
                   size_t cap, struct err *e);
/*
 * fn(ctx, session_id, user) is called when a session of a user appears (a logon, or found by
 * an enumeration) and when its helper says HELLO. It runs on the monitor thread with the
 * manager's lock held: it must only note and wake (never call sesm_*, never block). NULL
 * removes it; once sesm_set_listener returns, the previous fn is not running any more.
 */
typedef void (*sesm_listener_fn)(void *ctx, uint32_t session_id, const char *user);
void sesm_set_listener(struct sesm *m, sesm_listener_fn fn, void *ctx);
/* How many helpers are running now. */
unsigned sesm_running_count(struct sesm *m);

struct sesm_row {
    uint32_t session_id;
    char user[256];
    char state[16];           /* "starting", "running", "restarting", "stopping" */
    int console;              /* the active console session */
    unsigned long helper_pid; /* 0 when none */
    int64_t since;            /* Unix seconds: when the current state began */
    unsigned restarts;        /* helper restarts in this session */
};
/* A snapshot of the table (malloc'd array, caller frees). */
int sesm_table(struct sesm *m, struct sesm_row **rows, size_t *n, struct err *e);

#endif
