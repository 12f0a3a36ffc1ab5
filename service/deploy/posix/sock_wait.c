/*
 * posix/sock_wait.c - the platform part of the deployment client: waiting for a socket with
 * poll(2), and this OS's SOCK_STREAM value.
 */
#include <poll.h>
#include <errno.h>
#include <sys/socket.h>

#include "https_client.h"

int dcl_sock_stream_type(void)
{
    return SOCK_STREAM;
}

int dcl_sock_wait(int fd, int for_read, uint32_t timeout_ms)
{
    struct pollfd p;
    int r;

    p.fd = fd;
    p.events = for_read ? POLLIN : POLLOUT;
    p.revents = 0;
    do {
        r = poll(&p, 1, timeout_ms > 0x7fffffffu ? -1 : (int)timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    return r == 0 ? 0 : 1;
}
