/*
 * sesm.c - the session manager (sesm.h), portable part: the session table, the monitor
 * thread that enumerates sessions, spawns helpers (sess_plat.h), waits for their HELLO,
 * restarts them with a throttle and stops them on logoff, and the leases through which the
 * API routes borrow a helper's channel.
 *
 * Ownership: a slot is one session in the table; an instance is one helper process with its
 * mux. A slot holds one reference to its current instance, every lease one more. When a
 * helper dies or is stopped its instance is "retired": detached from the slot, its channel
 * shut down (waking every lease holder), its process killed after a grace period, and freed
 * by the monitor once the process is reaped and the last lease is released. Only the monitor
 * thread changes the slot list and slot->inst (under m->lock); it may read them unlocked.
 * pmux calls are never made while holding m->lock (on_close takes it on the reader thread).
 */
#define LOG_MODULE "session"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plat.h"
#include "pmux.h"
#include "proto.h"
#include "pshm.h"
#include "sesm.h"
#include "sesm_int.h"
#include "sess_plat.h"

#define SESM_STOP_GRACE_MS 5000u /* a stopped helper gets this long to exit before a kill */
#define SESM_TICK_MS       50u   /* monitor wake-up while a helper's HELLO is awaited */
/* The shared window given to each helper (pmux.h): 16 slots of PROTO_DATA_MAX, twice what
 * one upload's 2 MiB credit window can hold, so a lone upload never waits for a slot. */
#define SESM_SHARED_BYTES (16u * PROTO_DATA_MAX)

enum sesm_state {
    SESM_STARTING,
    SESM_RUNNING,
    SESM_RESTARTING,
    SESM_STOPPING,
};

static const char *const sesm_state_names[] = {"starting", "running", "restarting", "stopping"};

struct sesm_inst {
    struct sesm *m;
    struct pmux *mux;
    struct sess_proc *proc;
    uint32_t session_id;
    char user[256];
    unsigned refs;               /* the slot's reference + one per lease (m->lock) */
    int ready;                   /* HELLO received (m->lock) */
    int closed;                  /* on_close was called (m->lock) */
    char close_why[ERR_MSG_MAX]; /* ... and why (m->lock) */
    int exited;                  /* the process was reaped (monitor) */
    uint64_t started_ms;         /* plat_monotonic_ms() at spawn */
    uint64_t kill_at_ms;         /* retired: kill the process at this time if still running */
    struct sesm_inst *next;      /* in m->retired */
};

struct sesm_slot {
    struct sess_info info;
    enum sesm_state state;
    int64_t since;
    unsigned restarts;
    struct sesm_throttle throttle;
    uint64_t restart_at_ms; /* SESM_RESTARTING: when to spawn again */
    uint64_t hello_deadline_ms;
    int seen; /* in the latest enumeration */
    struct sesm_inst *inst;
    struct sesm_slot *next;
};

struct sesm_lease {
    struct sesm_inst *inst;
};

struct sesm {
    struct sesm_config cfg;
    struct plat_mutex *lock;
    struct plat_cond *wake;
    struct plat_thread *thread;
    int stopping;  /* m->lock */
    int enumerate; /* m->lock: re-enumerate at the next wake-up */
    struct sesm_slot *slots;
    struct sesm_inst *retired;
    sesm_listener_fn listener; /* m->lock */
    void *listener_ctx;
};

/* ---- pure helpers (sesm_int.h) ---- */

uint32_t sesm_throttle_delay(struct sesm_throttle *t, uint64_t ran_ms, uint32_t min_ms,
                             uint32_t max_ms)
{
    uint32_t delay;

    if (max_ms < min_ms)
        max_ms = min_ms;
    if (t->next_ms == 0 || ran_ms >= SESM_STABLE_MS)
        t->next_ms = min_ms;
    delay = t->next_ms;
    t->next_ms = delay > max_ms / 2 ? max_ms : delay * 2;
    if (t->next_ms == 0)
        t->next_ms = max_ms ? max_ms : 1;
    return delay;
}

static size_t sesm_user_span(const char *s, const char **start)
{
    const char *bs = strrchr(s, '\\');
    const char *at;

    if (bs)
        s = bs + 1;
    at = strchr(s, '@');
    *start = s;
    return at ? (size_t)(at - s) : strlen(s);
}

int sesm_user_match(const char *want, const char *have)
{
    const char *w, *h;
    size_t wn, hn;

    if (!want || !have)
        return 0;
    wn = sesm_user_span(want, &w);
    hn = sesm_user_span(have, &h);
    if (wn == 0 || wn != hn)
        return 0;
#ifdef _WIN32
    for (size_t i = 0; i < wn; i++) {
        char a = w[i], b = h[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
#else
    return memcmp(w, h, wn) == 0;
#endif
}

/* Tells the listener that a session of a user is there (m->lock held). */
static void sesm_tell(struct sesm *m, const struct sesm_slot *s)
{
    if (m->listener)
        m->listener(m->listener_ctx, s->info.id, s->info.user);
}

/* ---- instances ---- */

static void sesm_on_log(void *ctx, const struct proto_log *msg)
{
    struct sesm_inst *inst = ctx;
    int level = log_level_parse(msg->level);

    if (level < 0)
        level = LOG_LEVEL_INFO;
    log_write((enum log_level)level, LOG_MODULE, "helper[session %u]: %s",
              (unsigned)inst->session_id, msg->message);
}

static void sesm_on_close(void *ctx, const struct err *why)
{
    struct sesm_inst *inst = ctx;
    struct sesm *m = inst->m;

    log_debug("helper[session %u]: channel closed: %s", (unsigned)inst->session_id,
              why && why->msg[0] ? why->msg : "end of channel");
    plat_mutex_lock(m->lock);
    inst->closed = 1;
    snprintf(inst->close_why, sizeof(inst->close_why), "%s",
             why && why->msg[0] ? why->msg : "end of channel");
    plat_cond_signal(m->wake);
    plat_mutex_unlock(m->lock);
}

static void sesm_set_state(struct sesm_slot *s, enum sesm_state st)
{
    s->state = st;
    s->since = plat_wall_time();
}

/* Spawns the helper of slot s (monitor thread, m->lock not held). */
static int sesm_spawn(struct sesm *m, struct sesm_slot *s, struct err *e)
{
    struct sesm_inst *inst = NULL;
    struct pchan *chan = NULL;
    struct pshm *shared = NULL;
    struct pmux_config pc;
    struct err we = ERR_INIT;
    int rc;

    inst = calloc(1, sizeof(*inst));
    if (!inst)
        return err_set(e, ERR_NOMEM, "out of memory starting the session helper");
    inst->m = m;
    inst->session_id = s->info.id;
    snprintf(inst->user, sizeof(inst->user), "%s", s->info.user);
    inst->refs = 1;
    if (pshm_create(SESM_SHARED_BYTES, &shared, &we) < 0)
        log_warning("session %u (%s): %s; uploads to its helper go through the channel alone",
                    (unsigned)s->info.id, s->info.user, we.msg);
    if ((rc = sess_spawn(&m->cfg, &s->info, shared, &inst->proc, &chan, e)) < 0)
        goto out;
    inst->started_ms = plat_monotonic_ms();

    memset(&pc, 0, sizeof(pc));
    proto_hello_init(&pc.hello, "service");
    pc.hello.pid = (uint32_t)plat_pid();
    pc.hello.session_id = s->info.id;
    snprintf(pc.hello.user, sizeof(pc.hello.user), "%s", s->info.user);
    pc.initiator_odd = 1;
    pc.on_log = sesm_on_log;
    pc.on_close = sesm_on_close;
    pc.ctx = inst;
    pc.shared = shared;
    rc = pmux_start(chan, &pc, &inst->mux, e); /* owns chan and shared from here */
    chan = NULL;
    shared = NULL;
    if (rc < 0) {
        sess_proc_kill(inst->proc);
        goto out;
    }
    log_info("session %u (%s): helper started, pid %lu", (unsigned)s->info.id, s->info.user,
             sess_proc_pid(inst->proc));

    plat_mutex_lock(m->lock);
    s->inst = inst;
    s->hello_deadline_ms = inst->started_ms + m->cfg.hello_timeout_ms;
    sesm_set_state(s, SESM_STARTING);
    plat_mutex_unlock(m->lock);
    inst = NULL;
    rc = 0;
out:
    if (chan)
        pchan_close(chan);
    pshm_free(shared);
    if (inst) {
        sess_proc_free(inst->proc);
        free(inst);
    }
    return rc;
}

/* Detaches the slot's instance and retires it; m->lock NOT held (monitor). */
static void sesm_retire(struct sesm *m, struct sesm_slot *s, uint32_t grace_ms)
{
    struct sesm_inst *inst = s->inst;

    if (!inst)
        return;
    pmux_shutdown(inst->mux);
    plat_mutex_lock(m->lock);
    s->inst = NULL;
    inst->refs--; /* the slot's */
    inst->kill_at_ms = plat_monotonic_ms() + grace_ms;
    inst->next = m->retired;
    m->retired = inst;
    plat_mutex_unlock(m->lock);
}

/* Reaps retired instances (monitor): closes the channel of the unleased, kills the overdue,
 * frees those exited and unleased. */
static void sesm_reap(struct sesm *m)
{
    struct sesm_inst **pp = &m->retired;
    uint64_t now = plat_monotonic_ms();

    while (*pp) {
        struct sesm_inst *inst = *pp;
        int code = 0, refs;

        plat_mutex_lock(m->lock);
        refs = (int)inst->refs;
        plat_mutex_unlock(m->lock);
        if (refs == 0 && inst->mux) {
            /* Closing our end is what the helper sees as the end (a Windows pipe's shutdown
             * only cancels our own I/O), so it can exit on its own before the kill. */
            pmux_free(inst->mux);
            inst->mux = NULL;
        }
        if (!inst->exited && sess_proc_wait(inst->proc, 0, &code) == 1) {
            inst->exited = 1;
            log_debug("helper[session %u]: pid %lu exited with %d", (unsigned)inst->session_id,
                      sess_proc_pid(inst->proc), code);
        }
        if (!inst->exited && now >= inst->kill_at_ms) {
            log_warning("session %u: helper pid %lu did not exit in time; killing it",
                        (unsigned)inst->session_id, sess_proc_pid(inst->proc));
            sess_proc_kill(inst->proc);
            if (sess_proc_wait(inst->proc, 1000, &code) == 1)
                inst->exited = 1;
        }
        if (inst->exited && refs == 0) {
            *pp = inst->next;
            sess_proc_free(inst->proc);
            free(inst);
            continue;
        }
        pp = &inst->next;
    }
}

/* ---- the monitor ---- */

static struct sesm_slot *sesm_find(struct sesm *m, uint32_t id)
{
    for (struct sesm_slot *s = m->slots; s; s = s->next)
        if (s->info.id == id)
            return s;
    return NULL;
}

/* Applies an enumeration: new sessions get a slot (spawned by the caller's pass), gone ones
 * are retired and removed. */
static void sesm_reconcile(struct sesm *m, const struct sess_info *list, size_t n)
{
    struct sesm_slot **pp;

    for (struct sesm_slot *s = m->slots; s; s = s->next)
        s->seen = 0;
    for (size_t i = 0; i < n; i++) {
        struct sesm_slot *s = sesm_find(m, list[i].id);
        if (s) {
            if (strcmp(s->info.user, list[i].user) != 0) {
                /* Another user in the same session id: a logoff and a logon. */
                log_info("session %u: user changed from %s to %s", (unsigned)list[i].id,
                         s->info.user, list[i].user);
                sesm_retire(m, s, SESM_STOP_GRACE_MS);
                plat_mutex_lock(m->lock);
                s->info = list[i];
                s->restarts = 0;
                s->throttle.next_ms = 0;
                s->restart_at_ms = 0;
                sesm_set_state(s, SESM_RESTARTING);
                sesm_tell(m, s);
                plat_mutex_unlock(m->lock);
            } else if (s->info.console != list[i].console ||
                       strcmp(s->info.display, list[i].display) != 0) {
                plat_mutex_lock(m->lock);
                s->info.console = list[i].console;
                snprintf(s->info.display, sizeof(s->info.display), "%s", list[i].display);
                plat_mutex_unlock(m->lock);
            }
            s->seen = 1;
            continue;
        }
        s = calloc(1, sizeof(*s));
        if (!s) {
            log_error("out of memory adding session %u", (unsigned)list[i].id);
            continue;
        }
        s->info = list[i];
        s->seen = 1;
        s->restart_at_ms = 0; /* spawn now */
        sesm_set_state(s, SESM_RESTARTING);
        log_info("session %u: user %s logged on%s", (unsigned)s->info.id, s->info.user,
                 s->info.console ? " (console)" : "");
        plat_mutex_lock(m->lock);
        s->next = m->slots;
        m->slots = s;
        sesm_tell(m, s);
        plat_mutex_unlock(m->lock);
    }
    pp = &m->slots;
    while (*pp) {
        struct sesm_slot *s = *pp;
        if (s->seen) {
            pp = &s->next;
            continue;
        }
        log_info("session %u: user %s logged off; stopping its helper", (unsigned)s->info.id,
                 s->info.user);
        plat_mutex_lock(m->lock);
        sesm_set_state(s, SESM_STOPPING);
        plat_mutex_unlock(m->lock);
        sesm_retire(m, s, SESM_STOP_GRACE_MS);
        plat_mutex_lock(m->lock);
        *pp = s->next;
        plat_mutex_unlock(m->lock);
        free(s);
    }
}

/* A helper ended (died, closed its channel or missed its HELLO): retire and schedule. */
static void sesm_helper_ended(struct sesm *m, struct sesm_slot *s, const char *why, int kill_now)
{
    uint64_t now = plat_monotonic_ms();
    uint64_t ran = s->inst ? now - s->inst->started_ms : 0;
    uint32_t delay =
        sesm_throttle_delay(&s->throttle, ran, m->cfg.restart_min_ms, m->cfg.restart_max_ms);

    log_warning("session %u (%s): helper %s; restarting it in %u ms", (unsigned)s->info.id,
                s->info.user, why, (unsigned)delay);
    if (kill_now && s->inst)
        sess_proc_kill(s->inst->proc);
    sesm_retire(m, s, SESM_STOP_GRACE_MS);
    plat_mutex_lock(m->lock);
    s->restart_at_ms = now + delay;
    sesm_set_state(s, SESM_RESTARTING);
    plat_mutex_unlock(m->lock);
}

/* One pass over the table; returns how long the monitor may sleep. */
static uint32_t sesm_pass(struct sesm *m)
{
    uint64_t now = plat_monotonic_ms();
    uint64_t next = now + 60000u;
    struct err e = ERR_INIT;

    for (struct sesm_slot *s = m->slots; s; s = s->next) {
        struct sesm_inst *inst = s->inst;
        int code = 0, closed;

        if (inst) {
            char why[ERR_MSG_MAX + 64], chan[ERR_MSG_MAX + 32] = "";
            plat_mutex_lock(m->lock);
            closed = inst->closed;
            if (closed) /* why the channel ended says more than the exit that follows it */
                snprintf(chan, sizeof(chan), "closed its channel (%s)", inst->close_why);
            plat_mutex_unlock(m->lock);
            if (sess_proc_wait(inst->proc, 0, &code) == 1) {
                inst->exited = 1;
                snprintf(why, sizeof(why), "pid %lu exited with code %d%s%s",
                         sess_proc_pid(inst->proc), code, chan[0] ? "; it had " : "", chan);
                sesm_helper_ended(m, s, why, 0);
            } else if (closed) {
                snprintf(why, sizeof(why), "%s", chan);
                sesm_helper_ended(m, s, why, 1);
            } else if (s->state == SESM_STARTING) {
                struct proto_hello peer;
                err_clear(&e);
                int rc = pmux_wait_ready(inst->mux, 0, &peer, &e);
                if (rc == 0) {
                    log_info("session %u (%s): helper pid %lu is ready (HELLO: role %s, "
                             "version %s, session %u, user %s, shared window %lu KiB)",
                             (unsigned)s->info.id, s->info.user, sess_proc_pid(inst->proc),
                             peer.role, peer.version, (unsigned)peer.session_id, peer.user,
                             (unsigned long)(peer.shared / 1024));
                    if (peer.session_id != s->info.id)
                        log_warning("session %u: the helper says it is in session %u",
                                    (unsigned)s->info.id, (unsigned)peer.session_id);
                    plat_mutex_lock(m->lock);
                    inst->ready = 1;
                    sesm_set_state(s, SESM_RUNNING);
                    sesm_tell(m, s);
                    plat_mutex_unlock(m->lock);
                } else if (rc != ERR_TIMEOUT) {
                    char msg[ERR_MSG_MAX + 32];
                    snprintf(msg, sizeof(msg), "failed its HELLO: %s", e.msg);
                    sesm_helper_ended(m, s, msg, 1);
                } else if (now >= s->hello_deadline_ms) {
                    sesm_helper_ended(m, s, "did not say HELLO in time", 1);
                } else if (next > now + SESM_TICK_MS) {
                    next = now + SESM_TICK_MS;
                }
            }
        }
        if (!s->inst && s->state == SESM_RESTARTING) {
            if (now >= s->restart_at_ms) {
                int first = s->restart_at_ms == 0;
                err_clear(&e);
                if (sesm_spawn(m, s, &e) < 0) {
                    uint32_t delay = sesm_throttle_delay(&s->throttle, 0, m->cfg.restart_min_ms,
                                                         m->cfg.restart_max_ms);
                    log_error("session %u (%s): cannot start the session helper: %s; trying "
                              "again in %u ms",
                              (unsigned)s->info.id, s->info.user, e.msg, (unsigned)delay);
                    plat_mutex_lock(m->lock);
                    s->restart_at_ms = now + delay;
                    plat_mutex_unlock(m->lock);
                } else if (!first) {
                    plat_mutex_lock(m->lock);
                    s->restarts++;
                    plat_mutex_unlock(m->lock);
                }
                if (s->inst && next > now + SESM_TICK_MS)
                    next = now + SESM_TICK_MS;
            }
            if (!s->inst && s->restart_at_ms < next)
                next = s->restart_at_ms;
        }
    }
    sesm_reap(m);
    if (m->retired && next > now + SESM_TICK_MS * 4)
        next = now + SESM_TICK_MS * 4;
    now = plat_monotonic_ms();
    return next > now ? (uint32_t)(next - now) : 0;
}

static void sesm_enumerate(struct sesm *m)
{
    struct sess_info *list = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;

    if (sess_enumerate(&m->cfg, &list, &n, &e) < 0) {
        log_warning("cannot list the logged-on sessions: %s; trying again in %u ms", e.msg,
                    (unsigned)m->cfg.poll_ms);
        return;
    }
    sesm_reconcile(m, list, n);
    free(list);
}

static void sesm_monitor(void *arg)
{
    struct sesm *m = arg;
    uint64_t enum_due = 0;

    for (;;) {
        uint64_t now = plat_monotonic_ms();
        uint32_t sleep_ms;
        int stop, again;

        plat_mutex_lock(m->lock);
        stop = m->stopping;
        again = m->enumerate;
        m->enumerate = 0;
        plat_mutex_unlock(m->lock);
        if (stop)
            break;
        if (again || now >= enum_due) {
            sesm_enumerate(m);
            enum_due = plat_monotonic_ms() + m->cfg.poll_ms;
        }
        sleep_ms = sesm_pass(m);
        now = plat_monotonic_ms();
        if (enum_due > now && enum_due - now < sleep_ms)
            sleep_ms = (uint32_t)(enum_due - now);
        else if (enum_due <= now)
            sleep_ms = 0;
        plat_mutex_lock(m->lock);
        if (!m->stopping && !m->enumerate && sleep_ms > 0)
            plat_cond_wait(m->wake, m->lock, sleep_ms);
        plat_mutex_unlock(m->lock);
    }

    /* Stop: retire every helper at once (channels shut), then reap with one deadline. */
    {
        struct sesm_slot *s;
        uint64_t deadline = plat_monotonic_ms() + SESM_STOP_GRACE_MS;

        for (s = m->slots; s; s = s->next) {
            plat_mutex_lock(m->lock);
            sesm_set_state(s, SESM_STOPPING);
            plat_mutex_unlock(m->lock);
            sesm_retire(m, s, SESM_STOP_GRACE_MS);
        }
        for (struct sesm_inst *i = m->retired; i; i = i->next)
            if (i->kill_at_ms > deadline)
                i->kill_at_ms = deadline;
        while (m->retired) {
            sesm_reap(m);
            if (!m->retired)
                break;
            if (plat_monotonic_ms() > deadline + 3000) {
                int leased = 0;
                for (struct sesm_inst *i = m->retired; i; i = i->next) {
                    sess_proc_kill(i->proc);
                    plat_mutex_lock(m->lock);
                    leased |= i->refs > 0;
                    plat_mutex_unlock(m->lock);
                }
                if (leased) {
                    /* A bug in a caller: freeing would pull the channel from under it. */
                    log_error("session helpers still leased at stop; leaving them allocated");
                    break;
                }
            }
            plat_sleep_ms(20);
        }
        plat_mutex_lock(m->lock);
        s = m->slots;
        m->slots = NULL;
        plat_mutex_unlock(m->lock);
        while (s) {
            struct sesm_slot *next = s->next;
            free(s);
            s = next;
        }
    }
}

/* ---- public API ---- */

int sesm_start(const struct sesm_config *cfg, struct sesm **out, struct err *e)
{
    struct sesm *m = NULL;
    const char *env;
    int rc;

    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, ERR_NOMEM, "out of memory starting the session manager");
    m->cfg = *cfg;
    if (m->cfg.poll_ms == 0)
        m->cfg.poll_ms = 30000;
    env = getenv("KASM_SESSION_POLL_MS");
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 10 && v <= 3600000)
            m->cfg.poll_ms = (uint32_t)v;
    }
    if (m->cfg.restart_min_ms == 0)
        m->cfg.restart_min_ms = 1000;
    if (m->cfg.restart_max_ms == 0)
        m->cfg.restart_max_ms = 60000;
    if (m->cfg.restart_max_ms < m->cfg.restart_min_ms)
        m->cfg.restart_max_ms = m->cfg.restart_min_ms;
    if (m->cfg.hello_timeout_ms == 0)
        m->cfg.hello_timeout_ms = 10000;
    m->enumerate = 1;

    if ((rc = plat_mutex_create(&m->lock, e)) < 0)
        goto out;
    if ((rc = plat_cond_create(&m->wake, e)) < 0)
        goto out;
    if ((rc = plat_thread_start(&m->thread, sesm_monitor, m, e)) < 0)
        goto out;
    log_info("session manager started (helper %s, sessions from %s, poll every %u ms)",
             m->cfg.helper_path[0] ? m->cfg.helper_path : "beside the agent",
#ifdef _WIN32
             "WTS",
#else
             m->cfg.sessions_file[0] ? m->cfg.sessions_file : "logind",
#endif
             (unsigned)m->cfg.poll_ms);
    *out = m;
    m = NULL;
    rc = 0;
out:
    if (m) {
        if (m->wake)
            plat_cond_destroy(m->wake);
        if (m->lock)
            plat_mutex_destroy(m->lock);
        free(m);
        err_prefix(e, "starting the session manager");
    }
    return rc;
}

void sesm_notify(struct sesm *m, uint32_t reason, uint32_t session_id)
{
    if (!m)
        return;
    log_debug("session %u: event %u", (unsigned)session_id, (unsigned)reason);
    plat_mutex_lock(m->lock);
    m->enumerate = 1;
    plat_cond_signal(m->wake);
    plat_mutex_unlock(m->lock);
}

void sesm_stop(struct sesm *m)
{
    if (!m)
        return;
    plat_mutex_lock(m->lock);
    m->stopping = 1;
    plat_cond_signal(m->wake);
    plat_mutex_unlock(m->lock);
    plat_thread_join(m->thread);
    if (m->retired) /* leaked on purpose: see the end of sesm_monitor */
        return;
    plat_cond_destroy(m->wake);
    plat_mutex_destroy(m->lock);
    free(m);
    log_info("session manager stopped");
}

static int sesm_usable(const struct sesm_slot *s)
{
    return s->inst && s->inst->ready && !s->inst->closed && s->state == SESM_RUNNING;
}

int sesm_acquire(struct sesm *m, const char *user, int console_fallback, struct sesm_lease **out,
                 struct err *e)
{
    struct sesm_slot *pick = NULL;
    struct sesm_lease *l;
    int by_user = user && *user;

    *out = NULL;
    if (!m)
        return err_set(e, ERR_NOT_FOUND,
                       "no session helpers: the session manager is not "
                       "running (see the agent log at start-up)");
    l = calloc(1, sizeof(*l));
    if (!l)
        return err_set(e, ERR_NOMEM, "out of memory");
    plat_mutex_lock(m->lock);
    if (by_user) {
        for (struct sesm_slot *s = m->slots; s; s = s->next) {
            if (!sesm_usable(s) || !sesm_user_match(user, s->info.user))
                continue;
            if (!pick || (s->info.console && !pick->info.console))
                pick = s;
        }
    }
    if (!pick && (!by_user || console_fallback)) {
        for (struct sesm_slot *s = m->slots; s; s = s->next)
            if (sesm_usable(s) && s->info.console)
                pick = s;
    }
    if (pick) {
        l->inst = pick->inst;
        l->inst->refs++;
    }
    plat_mutex_unlock(m->lock);
    if (!pick) {
        free(l);
        if (by_user && console_fallback)
            return err_set(e, ERR_NOT_FOUND,
                           "no session helper is running for user %s nor for the console "
                           "session; is the user logged on?",
                           user);
        if (by_user)
            return err_set(e, ERR_NOT_FOUND,
                           "no session helper is running for user %s; is the user logged on?",
                           user);
        return err_set(e, ERR_NOT_FOUND,
                       "no session helper is running for the console session; is a user "
                       "logged on at the console?");
    }
    *out = l;
    return 0;
}

int sesm_acquire_session(struct sesm *m, uint32_t session_id, struct sesm_lease **out,
                         struct err *e)
{
    struct sesm_slot *pick = NULL;
    struct sesm_lease *l;
    int known = 0;

    *out = NULL;
    if (!m)
        return err_set(e, ERR_NOT_FOUND,
                       "no session helpers: the session manager is not "
                       "running (see the agent log at start-up)");
    if (!(l = calloc(1, sizeof(*l))))
        return err_set(e, ERR_NOMEM, "out of memory");
    plat_mutex_lock(m->lock);
    for (struct sesm_slot *s = m->slots; s; s = s->next) {
        if (s->info.id != session_id)
            continue;
        known = 1;
        if (sesm_usable(s))
            pick = s;
    }
    if (pick) {
        l->inst = pick->inst;
        l->inst->refs++;
    }
    plat_mutex_unlock(m->lock);
    if (!pick) {
        free(l);
        if (known)
            return err_set(e, ERR_BUSY,
                           "session %u has no running session helper (starting or restarting; "
                           "see agentctl sessions)",
                           (unsigned)session_id);
        return err_set(e, ERR_NOT_FOUND, "there is no session %u", (unsigned)session_id);
    }
    *out = l;
    return 0;
}

struct pmux *sesm_lease_mux(const struct sesm_lease *l)
{
    return l->inst->mux;
}

uint32_t sesm_lease_session(const struct sesm_lease *l)
{
    return l->inst->session_id;
}

unsigned long sesm_lease_helper_pid(const struct sesm_lease *l)
{
    return sess_proc_pid(l->inst->proc);
}

const char *sesm_lease_user(const struct sesm_lease *l)
{
    return l->inst->user;
}

void sesm_release(struct sesm_lease *l)
{
    struct sesm *m;

    if (!l)
        return;
    m = l->inst->m;
    plat_mutex_lock(m->lock);
    if (--l->inst->refs == 0)
        plat_cond_signal(m->wake); /* the monitor frees retired instances */
    plat_mutex_unlock(m->lock);
    free(l);
}

int sesm_find_user(struct sesm *m, const char *user, uint32_t *session_id, char *account,
                   size_t cap, struct err *e)
{
    const struct sesm_slot *pick = NULL;

    if (!m)
        return err_set(e, ERR_NOT_FOUND, "the session manager is not running");
    plat_mutex_lock(m->lock);
    for (const struct sesm_slot *s = m->slots; s; s = s->next) {
        if (s->state == SESM_STOPPING || !sesm_user_match(user, s->info.user))
            continue;
        if (!pick || (s->info.console && !pick->info.console))
            pick = s;
    }
    if (pick) {
        *session_id = pick->info.id;
        if (account && cap)
            snprintf(account, cap, "%s", pick->info.user);
    }
    plat_mutex_unlock(m->lock);
    if (!pick)
        return err_set(e, ERR_NOT_FOUND, "user %s has no session on this host now",
                       user ? user : "");
    return 0;
}

void sesm_set_listener(struct sesm *m, sesm_listener_fn fn, void *ctx)
{
    if (!m)
        return;
    plat_mutex_lock(m->lock);
    m->listener = fn;
    m->listener_ctx = ctx;
    plat_mutex_unlock(m->lock);
}

unsigned sesm_running_count(struct sesm *m)
{
    unsigned n = 0;

    if (!m)
        return 0;
    plat_mutex_lock(m->lock);
    for (struct sesm_slot *s = m->slots; s; s = s->next)
        n += sesm_usable(s) ? 1u : 0u;
    plat_mutex_unlock(m->lock);
    return n;
}

int sesm_table(struct sesm *m, struct sesm_row **rows, size_t *n, struct err *e)
{
    size_t count = 0, i = 0;
    struct sesm_row *r;
    int rc = 0;

    *rows = NULL;
    *n = 0;
    if (!m)
        return 0;
    plat_mutex_lock(m->lock);
    for (struct sesm_slot *s = m->slots; s; s = s->next)
        count++;
    r = calloc(count ? count : 1, sizeof(*r));
    if (!r) {
        rc = err_set(e, ERR_NOMEM, "out of memory listing sessions");
        goto out;
    }
    for (struct sesm_slot *s = m->slots; s; s = s->next, i++) {
        r[i].session_id = s->info.id;
        snprintf(r[i].user, sizeof(r[i].user), "%s", s->info.user);
        snprintf(r[i].state, sizeof(r[i].state), "%s", sesm_state_names[s->state]);
        r[i].console = s->info.console;
        r[i].helper_pid = s->inst ? sess_proc_pid(s->inst->proc) : 0;
        r[i].since = s->since;
        r[i].restarts = s->restarts;
    }
    *rows = r;
    *n = count;
out:
    plat_mutex_unlock(m->lock);
    return rc;
}
