/*
 * sess_spawn.c (POSIX) - starts a session helper (sess_plat.h): a socketpair (the service's
 * end close-on-exec; the child's end made inheritable only in the child), fork, and in the
 * child, when running as root for another user, the user's groups, gid and uid (checked:
 * getting root back must fail), a clean environment for that user, then exec. Everything
 * that may allocate (passwd lookup, group list, argv, environment) is prepared before
 * fork(); the child only makes system calls. An exec or credential failure is reported to
 * the parent through a close-on-exec pipe, so sess_spawn() fails with the reason. Not as
 * root, only sessions of the agent's own user get a helper (ERR_PERMISSION otherwise).
 * The user part (lookup, switch, environment) is posix/sess_user.c's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pchan.h"
#include "pshm.h"
#include "plat.h"
#include "sess_plat.h"
#include "sess_user.h"

struct sess_proc {
    pid_t pid;
    int exited;
    int code;
};

/* Closes descriptors first..last (the child: a system call, or close() one by one where the
 * kernel has no close_range). */
static void sess_child_close_range(unsigned first, unsigned last)
{
    if (first > last)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, 0) == 0)
        return;
#endif
    for (unsigned fd = first; fd <= last && fd < 65536; fd++)
        close((int)fd);
}

/*
 * Leaves the child only stdin/stdout/stderr and keep[0..n) - the channel, the shared window,
 * the error pipe (close-on-exec): whatever else the agent has open - a key file OpenSSL
 * opened without O_CLOEXEC, a socket a library made, another helper's channel being created
 * on another thread - must not reach a process of the user's. keep: descriptors >= 3, -1
 * entries ignored; sorted here (n is small).
 */
static void sess_child_close_fds(int *keep, int n)
{
    unsigned next = 3;

    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (keep[i] < (int)next)
            continue;
        sess_child_close_range(next, (unsigned)keep[i] - 1);
        next = (unsigned)keep[i] + 1;
    }
    sess_child_close_range(next, ~0u);
}

/* Clears close-on-exec on fd (the child); 0 or -1. */
static int sess_child_inherit(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 || fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0 ? -1 : 0;
}

static void sess_child_fail(int errpipe, int stage)
{
    int msg[2] = {stage, errno};
    ssize_t w = write(errpipe, msg, sizeof(msg));
    (void)w;
    _exit(127);
}

int sess_spawn(const struct sesm_config *cfg, const struct sess_info *s, struct pshm *shared,
               struct sess_proc **proc, struct pchan **chan, struct err *e)
{
    char path[4096], fdarg[16], idarg[16], uparg[16], shmarg[16], shmsize[24];
    char *argv[14];
    intptr_t shm_fd = -1;
    struct sess_env env = {{0}, 0};
    struct sess_user *u = NULL;
    char what[64];
    int sv[2] = {-1, -1}, ep[2] = {-1, -1};
    int rc = 0, argc = 0;
    struct sess_proc *p = NULL;
    pid_t pid = -1, parent = getpid();
    sigset_t all;

    *proc = NULL;
    *chan = NULL;
    if (cfg->helper_path[0]) {
        snprintf(path, sizeof(path), "%s", cfg->helper_path);
    } else {
        if ((rc = plat_exe_dir(path, sizeof(path) - 16, e)) < 0)
            goto out;
        strcat(path, "/session_helper");
    }
    if (access(path, X_OK) != 0) {
        rc = err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_PERMISSION,
                     "the session helper %s cannot be run: %s; set session_helper in the "
                     "configuration or install it beside the agent",
                     path, strerror(errno));
        goto out;
    }

    /* Whose helper: as root, another user's; otherwise our own (tests). */
    if (!(u = malloc(sizeof(*u)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(what, sizeof(what), "a session helper for session %u", (unsigned)s->id);
    if ((rc = sess_user_lookup(s->user, what, u, e)) < 0)
        goto out;
    if (sess_env_base(&env, u) < 0)
        goto env_fail;
    if (s->display[0] && sess_env_add(&env, "DISPLAY", s->display) < 0)
        goto env_fail;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
        rc = err_set(e, ERR_IO, "cannot create the helper's channel: %s", strerror(errno));
        goto out;
    }
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    snprintf(idarg, sizeof(idarg), "%u", (unsigned)s->id);
    argv[argc++] = path;
    argv[argc++] = "--channel";
    argv[argc++] = fdarg;
    argv[argc++] = "--session-id";
    argv[argc++] = idarg;
    if (shared && (rc = pshm_share(shared, &shm_fd, e)) < 0)
        goto out;
    if (shm_fd >= 0) {
        snprintf(shmarg, sizeof(shmarg), "%d", (int)shm_fd);
        snprintf(shmsize, sizeof(shmsize), "%zu", pshm_size(shared));
        argv[argc++] = "--shared";
        argv[argc++] = shmarg;
        argv[argc++] = "--shared-size";
        argv[argc++] = shmsize;
    }
    if (cfg->debug)
        argv[argc++] = "--debug";
    if (cfg->upload_max_in_flight) {
        snprintf(uparg, sizeof(uparg), "%u", (unsigned)cfg->upload_max_in_flight);
        argv[argc++] = "--max-uploads";
        argv[argc++] = uparg;
    }
    argv[argc] = NULL;

    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }

    pid = fork();
    if (pid < 0) {
        rc = err_set(e, ERR_IO, "cannot fork the session helper: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only. */
        struct sigaction dfl;
        int fl, keep[3] = {sv[1], ep[1], (int)shm_fd};
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < 32; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                sigaction(sig, &dfl, NULL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        setsid(); /* its own process group: a Ctrl+C at the agent's terminal is the agent's */
        if ((fl = sess_user_become(u, 1)) != 0)
            sess_child_fail(ep[1], fl);
        /* Die with the agent (the monitor thread that forked lives as long as it does). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sess_child_close_fds(keep, 3);
        if (sess_child_inherit(sv[1]) < 0 || (shm_fd >= 0 && sess_child_inherit((int)shm_fd) < 0))
            sess_child_fail(ep[1], SESS_STAGE_CHANNEL);
        execve(path, argv, env.v);
        sess_child_fail(ep[1], SESS_STAGE_EXEC);
    }

    /* The parent. */
    close(ep[1]);
    ep[1] = -1;
    close(sv[1]);
    sv[1] = -1;
    p->pid = pid;
    {
        int msg[2];
        ssize_t got;
        do
            got = read(ep[0], msg, sizeof(msg));
        while (got < 0 && errno == EINTR);
        if (got == (ssize_t)sizeof(msg)) {
            rc = err_set(e, msg[0] == SESS_STAGE_EXEC ? ERR_IO : ERR_PERMISSION,
                         "session helper %s for %s: %s failed: %s", path, s->user,
                         sess_stage_name(msg[0]), strerror(msg[1]));
            goto out;
        }
    }
    if ((rc = pchan_from_os(sv[0], chan, e)) < 0) {
        sv[0] = -1; /* the channel owns it, also on failure (pmux.h convention) */
        goto out;
    }
    sv[0] = -1;
    *proc = p;
    p = NULL;
    rc = 0;
out:
    if (p) {
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        free(p);
    }
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        if (ep[i] >= 0)
            close(ep[i]);
    }
    if (shm_fd >= 0)
        pshm_share_done(shared, shm_fd);
    sess_env_free(&env);
    free(u);
    return rc;
env_fail:
    rc = err_set(e, ERR_NOMEM, "cannot build the session helper's environment");
    goto out;
}

unsigned long sess_proc_pid(const struct sess_proc *p)
{
    return p ? (unsigned long)p->pid : 0;
}

static int sess_try_reap(struct sess_proc *p, int flags)
{
    int status = 0;
    pid_t r;

    if (p->exited)
        return 1;
    do
        r = waitpid(p->pid, &status, flags);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    p->exited = 1;
    if (r < 0)
        p->code = -1; /* already reaped elsewhere: treat as gone */
    else if (WIFEXITED(status))
        p->code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        p->code = 128 + WTERMSIG(status);
    return 1;
}

int sess_proc_wait(struct sess_proc *p, uint32_t timeout_ms, int *exit_code)
{
    uint64_t deadline = plat_monotonic_ms() + timeout_ms;

    for (;;) {
        if (sess_try_reap(p, WNOHANG)) {
            if (exit_code)
                *exit_code = p->code;
            return 1;
        }
        if (plat_monotonic_ms() >= deadline)
            return 0;
        plat_sleep_ms(10);
    }
}

void sess_proc_kill(struct sess_proc *p)
{
    if (!p || p->exited)
        return;
    kill(-p->pid, SIGKILL); /* its process group (setsid in the child) */
    kill(p->pid, SIGKILL);
}

void sess_proc_free(struct sess_proc *p)
{
    if (!p)
        return;
    sess_try_reap(p, 0);
    free(p);
}
