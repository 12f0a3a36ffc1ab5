/*
 * posix/ctl_chan.c - agentctl's end of the admin channel on POSIX (ctl_chan.h): a Unix
 * stream socket. The socket (0600) and its directory (0700) belong to the agent's user, so
 * the kernel refuses everybody else at connect (EACCES); the agent checks SO_PEERCRED too.
 */
#include "ctl_chan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "plat.h"
#include "posix/sockio.h"

struct ctl_conn {
    int fd;
};

int ctl_connect(const char *endpoint, int debug, struct ctl_conn **out, struct err *e)
{
    struct sockaddr_un sa;
    struct ctl_conn *c;
    int fd, err;

    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(endpoint) >= sizeof(sa.sun_path))
        return err_set(e, ERR_INVALID, "the admin socket path %s is too long", endpoint);
    memcpy(sa.sun_path, endpoint, strlen(endpoint) + 1);
    if (debug)
        fprintf(stderr, "agentctl: connecting to the admin socket %s as uid %lu\n", endpoint,
                (unsigned long)geteuid());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(e, ERR_IO, "socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = errno;
        close(fd);
        if (err == ENOENT)
            return err_set(e, ERR_NOT_FOUND,
                           "the agent is not running: there is no admin socket at %s (start "
                           "the agent, or pass the agent's config with --cfg)",
                           endpoint);
        if (err == ECONNREFUSED)
            return err_set(e, ERR_NOT_FOUND,
                           "the agent is not running: nobody listens on %s (a stale socket)",
                           endpoint);
        if (err == EACCES || err == EPERM)
            return err_set(e, ERR_PERMISSION,
                           "permission denied on the admin socket %s: run agentctl as root "
                           "(or as the agent's user)",
                           endpoint);
        return err_set(e, ERR_NOT_FOUND, "cannot connect to the admin socket %s: %s", endpoint,
                       strerror(err));
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    c->fd = fd;
    *out = c;
    return 0;
}

int ctl_read(struct ctl_conn *c, void *buf, size_t len, uint64_t deadline, struct err *e)
{
    return sockio_read_full(c->fd, buf, len, deadline, "the agent", e);
}

int ctl_write(struct ctl_conn *c, const void *buf, size_t len, uint64_t deadline, struct err *e)
{
    return sockio_write_all(c->fd, buf, len, deadline, "the agent", e);
}

void ctl_close(struct ctl_conn *c)
{
    if (c) {
        close(c->fd);
        free(c);
    }
}
