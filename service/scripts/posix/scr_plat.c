/*
 * posix/scr_plat.c - the script runner's POSIX half (scr_plat.h): owner and mode checks, and
 * /bin/sh scripts run in a process group of their own, killed as a group at the timeout; with
 * run_as, as that user (service/session/posix/sess_user.h, as the session helpers start).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plat.h"
#include "posix/sess_user.h"
#include "scr_plat.h"

extern char **environ;

int scr_plat_check_path(const char *path, int is_dir, struct err *e)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return err_set(e, plat_err_from_os(errno), "cannot read the owner of %s: %s", path,
                       strerror(errno));
    if (S_ISLNK(st.st_mode))
        return err_set(e, ERR_PERMISSION, "%s is a symbolic link", path);
    if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return err_set(e, ERR_PERMISSION, "%s is not a %s", path,
                       is_dir ? "folder" : "regular file");
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return err_set(e, ERR_PERMISSION, "%s is owned by uid %lu, not by root or the agent's user",
                       path, (unsigned long)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return err_set(e, ERR_PERMISSION, "%s is writable by %s (mode %04o)", path,
                       (st.st_mode & S_IWOTH) ? "every user" : "its group",
                       (unsigned)(st.st_mode & 07777));
    return 0;
}

int scr_plat_supports(enum scr_kind k)
{
    return k == SCR_KIND_SH;
}

/* The environment of the agent without the names env_add sets, then env_add. */
static char **build_env(char *const *env_add)
{
    size_t n = 0, m = 0, k = 0;
    char **out;
    for (char **p = environ; p && *p; p++)
        n++;
    for (char *const *p = env_add; p && *p; p++)
        m++;
    if (!(out = calloc(n + m + 1, sizeof(*out))))
        return NULL;
    for (char **p = environ; p && *p; p++) {
        size_t nl = strcspn(*p, "=");
        int replaced = 0;
        for (char *const *q = env_add; q && *q && !replaced; q++)
            replaced = strncmp(*q, *p, nl) == 0 && (*q)[nl] == '=';
        if (!replaced)
            out[k++] = *p;
    }
    for (char *const *q = env_add; q && *q; q++)
        out[k++] = *q;
    out[k] = NULL;
    return out;
}

/* The environment of a script run as another user: the user's login variables, then env_add. */
static int build_user_env(const struct sess_user *u, char *const *env_add, struct sess_env *env,
                          struct err *e)
{
    int rc = sess_env_base(env, u);
    for (char *const *q = env_add; rc == 0 && q && *q; q++) {
        char key[128];
        size_t kl = strcspn(*q, "=");
        if (kl >= sizeof(key) || (*q)[kl] != '=')
            continue;
        memcpy(key, *q, kl);
        key[kl] = '\0';
        rc = sess_env_add(env, key, *q + kl + 1);
    }
    if (rc < 0)
        return err_set(e, rc, "cannot build the environment of user %s", u->name);
    return 0;
}

/* The child could not become the user: says so on its output (async-signal-safe). */
static void child_fail_user(int stage)
{
    static const char head[] = "the Kasm agent could not run this script as its user: ";
    const char *what = sess_stage_name(stage);
    ssize_t w = write(1, head, sizeof(head) - 1);
    w = write(1, what, strlen(what));
    w = write(1, "\n", 1);
    (void)w;
    _exit(126);
}

/* POSIX runs .sh scripts only, from where they are (never copied): this gives path to the
 * user for completeness (owner-only modes stay). */
int scr_plat_grant_read(const char *path, const struct scr_run_as *run_as, struct err *e)
{
    struct sess_user *u = malloc(sizeof(*u));
    int rc = 0;

    if (!u)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = sess_user_lookup(run_as->user, "a script", u, e)) < 0)
        goto out;
    if (u->switch_user && chown(path, u->uid, (gid_t)-1) < 0)
        rc = err_set(e, plat_err_from_os(errno), "cannot give %s to user %s: %s", path, u->name,
                     strerror(errno));
out:
    free(u);
    return rc;
}

int scr_plat_run_as_check(const struct scr_run_as *run_as, struct err *e)
{
    struct sess_user *u = malloc(sizeof(*u));
    int rc;

    if (!u)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = sess_user_lookup(run_as->user, "map_storage", u, e);
    free(u);
    return rc;
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL); /* in case setpgid had not happened yet */
}

int scr_plat_run(const struct scr_spawn *s, struct scr_exit *x, struct err *e)
{
    int fds[2] = {-1, -1}, devnull = -1, status = 0, rc = 0, exited = 0;
    char **envp = NULL;
    struct sess_user *u = NULL;
    struct sess_env uenv = {{0}, 0};
    char *argv[3];
    pid_t pid = -1;
    uint64_t deadline;
    char buf[4096];
    sigset_t none;

    x->exit_code = -1;
    x->timed_out = x->cancelled = 0;
    if (s->kind != SCR_KIND_SH)
        return err_set(e, ERR_UNSUPPORTED, "only shell scripts run on this platform");
    argv[0] = (char *)"/bin/sh";
    argv[1] = (char *)s->script;
    argv[2] = NULL;
    if (s->run_as) {
        const char *base = strrchr(s->script, '/');
        if (!(u = malloc(sizeof(*u)))) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        if ((rc = sess_user_lookup(s->run_as->user, base ? base + 1 : s->script, u, e)) < 0)
            goto out;
    }
    if (u && u->switch_user) {
        if ((rc = build_user_env(u, s->env_add, &uenv, e)) < 0)
            goto out;
    } else if (!(envp = build_env(s->env_add))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (pipe2(fds, O_CLOEXEC) < 0 || (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = err_set(e, ERR_IO, "cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    sigemptyset(&none);
    pid = fork();
    if (pid < 0) {
        rc = err_set(e, ERR_IO, "cannot start /bin/sh: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* The child: only async-signal-safe calls until exec. */
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL); /* the agent ignores it; scripts expect the default */
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(devnull, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        if (s->cwd && chdir(s->cwd) < 0)
            _exit(126);
        if (u && u->switch_user) {
            int stage = sess_user_become(u, 0);
            if (stage)
                child_fail_user(stage);
        }
        execve(argv[0], argv, u && u->switch_user ? uenv.v : envp);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    close(fds[1]);
    fds[1] = -1;
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);

    deadline = plat_monotonic_ms() + s->timeout_ms;
    for (;;) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        pid_t w;
        if (fds[0] >= 0 && poll(&pfd, 1, 100) > 0) {
            ssize_t got = read(fds[0], buf, sizeof(buf));
            if (got > 0)
                scr_outbuf_add(&x->out, buf, (size_t)got);
            else if (got == 0) { /* every writer closed it */
                close(fds[0]);
                fds[0] = -1;
            }
        } else if (fds[0] < 0) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = 1;
            break;
        }
        if (s->cancelled && s->cancelled(s->cancel_ctx)) {
            x->cancelled = 1;
            break;
        }
        if (plat_monotonic_ms() >= deadline) {
            x->timed_out = 1;
            break;
        }
    }
    if (!exited) {
        kill_group(pid);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    /* What is already in the pipe (children left behind keep their end: no waiting). */
    while (fds[0] >= 0) {
        ssize_t got = read(fds[0], buf, sizeof(buf));
        if (got <= 0)
            break;
        scr_outbuf_add(&x->out, buf, (size_t)got);
    }
    if (WIFEXITED(status))
        x->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        x->exit_code = 128 + WTERMSIG(status);
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (devnull >= 0)
        close(devnull);
    free(envp);
    sess_env_free(&uenv);
    free(u);
    return rc;
}
