/*
 * posix/sockio.c - whole reads and writes on a stream socket with a deadline (sockio.h).
 */
#include "sockio.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "plat.h"

/* Waits until fd is ready for events, or fails once the deadline has passed. */
static int sockio_wait(int fd, short events, uint64_t deadline, const char *peer, struct err *e)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        uint64_t now = plat_monotonic_ms();
        int rc;
        if (now >= deadline)
            return err_set(e, ERR_TIMEOUT, "%s did not %s in time", peer,
                           events == POLLIN ? "send its data" : "take the data");
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return err_set(e, ERR_IO, "waiting for %s: %s", peer, strerror(errno));
    }
}

int sockio_read_full(int fd, void *buf, size_t len, uint64_t deadline, const char *peer,
                     struct err *e)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n;
        int rc = sockio_wait(fd, POLLIN, deadline, peer, e);
        if (rc < 0)
            return rc;
        n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
        if (n == 0)
            return err_set(e, ERR_IO, "%s closed the connection early", peer);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return err_set(e, ERR_IO, "reading from %s: %s", peer, strerror(errno));
        }
        got += (size_t)n;
    }
    return 0;
}

int sockio_write_all(int fd, const void *buf, size_t len, uint64_t deadline, const char *peer,
                     struct err *e)
{
    size_t put = 0;

    while (put < len) {
        ssize_t n;
        int rc = sockio_wait(fd, POLLOUT, deadline, peer, e);
        if (rc < 0)
            return rc;
        n = send(fd, (const char *)buf + put, len - put, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return err_set(e, ERR_IO, "writing to %s: %s", peer, strerror(errno));
        }
        put += (size_t)n;
    }
    return 0;
}
