/*
 * posix/pchan.c - the byte channel of pchan.h on POSIX: one end of an AF_UNIX stream
 * socketpair. pchan_shutdown() uses shutdown(2), which wakes a blocked recv (it returns 0)
 * and makes later sends fail; writes use MSG_NOSIGNAL so a gone peer never raises SIGPIPE.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* splice, F_SETPIPE_SZ */
#endif
#include "pchan.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define PCHAN_SOCKET_BUFFER (2048 * 1024) /* bytes, each way */

struct pchan {
    int fd;
    atomic_int shut;
    int pipe[2]; /* pchan_write_file_frame's staging pipe, made on first use; -1: none */
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
    c->pipe[0] = c->pipe[1] = -1;
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

static void pchan_pipe_close(struct pchan *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->pipe[i] >= 0)
            close(c->pipe[i]);
        c->pipe[i] = -1;
    }
}

/* Moves n bytes from the staging pipe to the channel; SIGPIPE (a gone peer) is blocked in
 * this thread and taken back, so a dead peer is an error return as for pchan_write_all. */
static int pchan_splice_out(struct pchan *c, size_t n, struct err *e)
{
    sigset_t pipe_sig, old, pending;
    int rc = 0, was_pending;

    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, &old);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    while (n > 0) {
        ssize_t k;
        if (atomic_load(&c->shut)) {
            rc = err_set(e, ERR_IO, "channel: the channel was shut down");
            break;
        }
        k = splice(c->pipe[0], NULL, c->fd, NULL, n, SPLICE_F_MOVE);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int err = k < 0 ? errno : EPIPE;
            if (err == EPIPE && !was_pending) {
                struct timespec zero = {0, 0};
                sigtimedwait(&pipe_sig, NULL, &zero); /* the SIGPIPE this splice raised */
            }
            rc = err == EPIPE || err == ECONNRESET
                     ? err_set(e, ERR_IO, "the peer closed the channel")
                     : err_set(e, ERR_IO, "channel: splice failed: %s", strerror(err));
            break;
        }
        n -= (size_t)k;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int pchan_write_file_frame(struct pchan *c, intptr_t os_file, uint64_t off, size_t max,
                           void (*make_header)(void *ctx, size_t n, uint8_t *header), void *ctx,
                           size_t *sent, struct err *e)
{
    uint8_t header[PROTO_HEADER_SIZE];
    loff_t pos = (loff_t)off;
    ssize_t n;
    int rc;

    *sent = 0;
    if (os_file < 0 || os_file > INT32_MAX)
        return err_set(e, ERR_INVALID, "channel: %ld is not a file descriptor", (long)os_file);
    if (c->pipe[0] < 0) {
        if (pipe2(c->pipe, O_CLOEXEC) < 0) {
            c->pipe[0] = c->pipe[1] = -1;
            return err_set(e, ERR_UNSUPPORTED, "channel: no pipe for splice: %s", strerror(errno));
        }
        /* one DATA frame fits (best effort: else frames come out smaller) */
        fcntl(c->pipe[1], F_SETPIPE_SZ, (int)PROTO_DATA_MAX);
    }
    do
        n = splice((int)os_file, &pos, c->pipe[1], NULL, max, SPLICE_F_MOVE);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        if (err == EINVAL || err == ENOSYS)
            return err_set(e, ERR_UNSUPPORTED, "channel: this file cannot be spliced");
        return err_set(e, ERR_IO, "channel: reading the file failed: %s", strerror(err));
    }
    if (n == 0)
        return 0; /* the end of the file */
    make_header(ctx, (size_t)n, header);
    rc = pchan_write_all(c, header, sizeof(header), e);
    if (rc == 0)
        rc = pchan_splice_out(c, (size_t)n, e);
    if (rc < 0) {
        pchan_pipe_close(c); /* it may hold the rest of the frame: never reuse it */
        return rc;
    }
    *sent = (size_t)n;
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
    pchan_pipe_close(c);
    close(c->fd);
    free(c);
}

intptr_t pchan_os_handle(const struct pchan *c)
{
    return c->fd;
}
