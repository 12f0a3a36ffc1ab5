/*
 * posix/pchan.c - the byte channel of pchan.h on POSIX: one end of an AF_UNIX stream
 * socketpair. pchan_shutdown() uses shutdown(2), which wakes a blocked recv (it returns 0)
 * and makes later sends fail; writes use MSG_NOSIGNAL so a gone peer never raises SIGPIPE.
 */
#include "pchan.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PCHAN_SOCKET_BUFFER (2048 * 1024) /* bytes, each way */

struct pchan {
    int fd;
    atomic_int shut;
};

/*
 * Room for a full window of DATA in the socket: with the default (~200 KiB) a 256 KiB frame
 * blocks its writer until the reader drains it, and bulk transfers run at a fraction of the
 * disk's speed. Best effort: the kernel caps it at net.core.wmem_max / rmem_max, and a
 * descriptor that is not a socket (tests) ignores it.
 */
static void pchan_tune(int fd)
{
    int size = PCHAN_SOCKET_BUFFER;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

int pchan_from_os(intptr_t os_handle, struct pchan **out, struct err *e)
{
    struct pchan *c;

    *out = NULL;
    if (os_handle < 0 || os_handle > INT32_MAX)
        return err_set(e, ERR_INVALID, "channel: %ld is not a file descriptor", (long)os_handle);
    c = calloc(1, sizeof(*c));
    if (!c) {
        close((int)os_handle);
        return err_set(e, ERR_NOMEM, "channel: out of memory");
    }
    c->fd = (int)os_handle;
    atomic_init(&c->shut, 0);
    pchan_tune(c->fd);
    *out = c;
    return 0;
}

int pchan_pair(struct pchan **a, struct pchan **b, struct err *e)
{
    int fds[2];
    int rc;

    *a = *b = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return err_set(e, ERR_IO, "channel: socketpair failed: %s", strerror(errno));
    rc = pchan_from_os(fds[0], a, e);
    if (rc < 0) {
        close(fds[1]);
        return rc;
    }
    rc = pchan_from_os(fds[1], b, e);
    if (rc < 0) {
        pchan_close(*a);
        *a = NULL;
        return rc;
    }
    return 0;
}

int pchan_read(struct pchan *c, void *buf, size_t cap, size_t *got, struct err *e)
{
    ssize_t n;

    *got = 0;
    if (cap == 0)
        return 0;
    for (;;) {
        if (atomic_load(&c->shut))
            return 0;
        n = recv(c->fd, buf, cap, 0);
        if (n >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET || atomic_load(&c->shut))
            return 0; /* the peer went away: same as an orderly close */
        return err_set(e, ERR_IO, "channel: read failed: %s", strerror(errno));
    }
    if (atomic_load(&c->shut))
        return 0;
    *got = (size_t)n;
    return 0;
}

int pchan_write_all(struct pchan *c, const void *buf, size_t len, struct err *e)
{
    const char *p = buf;
    ssize_t n;

    while (len > 0) {
        if (atomic_load(&c->shut))
            return err_set(e, ERR_IO, "channel: the channel was shut down");
        n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return err_set(e, ERR_IO, "the peer closed the channel");
            return err_set(e, ERR_IO, "channel: write failed: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void pchan_shutdown(struct pchan *c)
{
    if (!c)
        return;
    if (atomic_exchange(&c->shut, 1) == 0)
        shutdown(c->fd, SHUT_RDWR);
}

void pchan_close(struct pchan *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}

intptr_t pchan_os_handle(const struct pchan *c)
{
    return c->fd;
}
