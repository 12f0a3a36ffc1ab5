/*
 * win32/sock_wait.c - the platform part of the deployment client: waiting for a socket with
 * select() (Winsock's fd_set holds handles, so any SOCKET value fits), and SOCK_STREAM.
 */
#include <winsock2.h>

#include "https_client.h"

int dcl_sock_stream_type(void)
{
    return SOCK_STREAM;
}

int dcl_sock_wait(int fd, int for_read, uint32_t timeout_ms)
{
    fd_set set, errs;
    struct timeval tv;
    int r;

    FD_ZERO(&set);
    FD_ZERO(&errs);
    FD_SET((SOCKET)fd, &set);
    FD_SET((SOCKET)fd, &errs); /* a failed connect shows up here on Windows */
    tv.tv_sec = (long)(timeout_ms / 1000);
    tv.tv_usec = (long)(timeout_ms % 1000) * 1000;
    r = select(0, for_read ? &set : NULL, for_read ? NULL : &set, &errs, &tv);
    if (r == SOCKET_ERROR)
        return -1;
    return r == 0 ? 0 : 1;
}
