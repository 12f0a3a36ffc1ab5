/*
 * posix/adm_chan.c - the admin channel on POSIX (adm_chan.h): a Unix stream socket at the
 * config's admin_socket. Its directory is created 0700 and must belong to the agent's user
 * (root in production) and not be writable by others; the socket is 0600. A live socket at
 * the path means another agent is running (refused); a dead one is removed. Each client's
 * uid (SO_PEERCRED) must be 0 or the agent's own euid.
 */
#include "adm_chan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cfg.h"
#include "fsutil.h"
#include "plat.h"
#include "posix/sockio.h"

struct adm_listener {
    int fd;
    int wake[2]; /* a pipe: adm_listener_wake writes, adm_accept polls */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev; /* the socket file we made, so that close removes only ours */
    ino_t ino;
};

struct adm_conn {
    int fd;
    uid_t uid;
    pid_t pid;
};

static int adm_addr(const char *path, struct sockaddr_un *sa, struct err *e)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (!path || !*path)
        return err_set(e, ERR_INVALID, "admin_socket is empty in the configuration");
    if (strlen(path) >= sizeof(sa->sun_path))
        return err_set(e, ERR_INVALID,
                       "admin_socket %s is longer than the %zu bytes a socket "
                       "path may have",
                       path, sizeof(sa->sun_path) - 1);
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* The socket's directory: created 0700 if missing; else ours and not writable by others. */
static int adm_check_dir(const char *path, struct err *e)
{
    char dir[CFG_PATH_MAX];
    struct stat st;
    uid_t me = geteuid();
    int rc;

    if ((rc = fs_dirname(path, dir, sizeof(dir), e)) < 0)
        return rc;
    if (mkdir(dir, 0700) == 0) {
        if (chmod(dir, 0700) < 0)
            return err_set(e, ERR_IO, "cannot set the mode of %s: %s", dir, strerror(errno));
        return 0;
    }
    if (errno != EEXIST)
        return err_set(e, errno == EACCES ? ERR_PERMISSION : ERR_IO,
                       "cannot create the directory %s of the admin socket: %s%s", dir,
                       strerror(errno), me != 0 ? " (run the agent as root)" : "");
    if (lstat(dir, &st) < 0)
        return err_set(e, ERR_IO, "cannot inspect %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set(e, ERR_PERMISSION,
                       "%s, the directory of the admin socket, is not a directory", dir);
    if (st.st_uid != me || (st.st_mode & 022) != 0)
        return err_set(e, ERR_PERMISSION,
                       "the directory %s of the admin socket must belong to uid %lu and not be "
                       "writable by others (it belongs to uid %lu, mode %03o); fix it or set "
                       "admin_socket to a path in a private directory",
                       dir, (unsigned long)me, (unsigned long)st.st_uid,
                       (unsigned)(st.st_mode & 0777));
    return 0;
}

/* Something at path: a live agent (refuse), a dead socket (remove), anything else (refuse). */
static int adm_clear_stale(const char *path, const struct sockaddr_un *sa, struct err *e)
{
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0
                               : err_set(e, ERR_IO, "cannot inspect %s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return err_set(e, ERR_EXISTS,
                       "%s exists and is not a socket; remove it or choose another "
                       "admin_socket",
                       path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(e, ERR_IO, "socket: %s", strerror(errno));
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    close(fd);
    if (rc == 0)
        return err_set(e, ERR_EXISTS,
                       "another agent holds %s; stop it first (or give this one "
                       "its own admin_socket)",
                       path);
    if (unlink(path) < 0 && errno != ENOENT)
        return err_set(e, ERR_IO, "cannot remove the stale admin socket %s: %s", path,
                       strerror(errno));
    return 0;
}

int adm_listen(const char *path, struct adm_listener **out, struct err *e)
{
    struct adm_listener *l = NULL;
    struct sockaddr_un sa;
    struct stat st;
    int rc;

    *out = NULL;
    if ((rc = adm_addr(path, &sa, e)) < 0 || (rc = adm_check_dir(path, e)) < 0 ||
        (rc = adm_clear_stale(path, &sa, e)) < 0)
        return rc;
    l = calloc(1, sizeof(*l));
    if (!l)
        return err_set(e, ERR_NOMEM, "out of memory");
    l->fd = l->wake[0] = l->wake[1] = -1;
    snprintf(l->path, sizeof(l->path), "%s", path);
    if (pipe2(l->wake, O_CLOEXEC) < 0) {
        rc = err_set(e, ERR_IO, "pipe: %s", strerror(errno));
        goto fail;
    }
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        rc = err_set(e, ERR_IO, "socket: %s", strerror(errno));
        goto fail;
    }
    if (bind(l->fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = err_set(e, errno == EADDRINUSE ? ERR_EXISTS : ERR_IO,
                     errno == EADDRINUSE ? "another agent holds %s (%s)" : "cannot bind %s: %s",
                     path, strerror(errno));
        goto fail;
    }
    /* The directory is 0700: nobody else can reach the socket before this. */
    if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
        rc = err_set(e, ERR_IO, "cannot set the mode of %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    if (listen(l->fd, 8) < 0) {
        rc = err_set(e, ERR_IO, "cannot listen on %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    *out = l;
    return 0;
fail:
    if (l->fd >= 0)
        close(l->fd);
    if (l->wake[0] >= 0)
        close(l->wake[0]);
    if (l->wake[1] >= 0)
        close(l->wake[1]);
    free(l);
    return rc;
}

int adm_accept(struct adm_listener *l, struct adm_conn **out, struct err *e)
{
    struct pollfd p[2];
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    struct adm_conn *c;
    int fd;

    *out = NULL;
    p[0].fd = l->fd;
    p[0].events = POLLIN;
    p[1].fd = l->wake[0];
    p[1].events = POLLIN;
    for (;;) {
        p[0].revents = p[1].revents = 0;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return err_set(e, ERR_IO, "poll: %s", strerror(errno));
        }
        if (p[1].revents)
            return err_set(e, ERR_CANCELLED, "the admin channel is closing");
        if (p[0].revents)
            break;
    }
    fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return err_set(e, ERR_IO, "accept: %s", strerror(errno));
    memset(&cred, 0, sizeof(cred));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        int err = errno;
        close(fd);
        return err_set(e, ERR_IO, "cannot read the client's credentials: %s", strerror(err));
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    c->fd = fd;
    c->uid = cred.uid;
    c->pid = cred.pid;
    *out = c;
    return 0;
}

void adm_listener_wake(struct adm_listener *l)
{
    if (l && l->wake[1] >= 0) {
        ssize_t n = write(l->wake[1], "x", 1);
        (void)n;
    }
}

void adm_listener_close(struct adm_listener *l)
{
    struct stat st;

    if (!l)
        return;
    close(l->fd);
    close(l->wake[0]);
    close(l->wake[1]);
    /* Only our own socket: a later agent may already have replaced it. */
    if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
    free(l);
}

int adm_conn_authorize(struct adm_conn *c, struct err *e)
{
    if (c->uid == 0 || c->uid == geteuid())
        return 0;
    return err_set(e, ERR_PERMISSION, "uid %lu (pid %ld) is neither root nor the agent's user",
                   (unsigned long)c->uid, (long)c->pid);
}

int adm_conn_read(struct adm_conn *c, void *buf, size_t len, uint64_t deadline, struct err *e)
{
    return sockio_read_full(c->fd, buf, len, deadline, "the client", e);
}

int adm_conn_write(struct adm_conn *c, const void *buf, size_t len, uint64_t deadline,
                   struct err *e)
{
    return sockio_write_all(c->fd, buf, len, deadline, "the client", e);
}

void adm_conn_close(struct adm_conn *c)
{
    if (c) {
        close(c->fd);
        free(c);
    }
}
