/*
 * posix/sockio.h - POSIX only: whole reads and writes on a stream socket with a deadline
 * (prefix sockio_), for the one-request-per-connection admin channel on both of its ends
 * (service/admin/posix/adm_chan.c, agentctl/posix/ctl_chan.c).
 */
#ifndef KASM_SOCKIO_H
#define KASM_SOCKIO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Reads exactly len bytes from fd before deadline (a plat_monotonic_ms() value). peer names
 * the other end in error messages ("the agent", "the client"). ERR_TIMEOUT past the deadline,
 * ERR_IO when the peer closes early or the socket fails. */
int sockio_read_full(int fd, void *buf, size_t len, uint64_t deadline, const char *peer,
                     struct err *e);
/* Writes all len bytes to fd before deadline; never raises SIGPIPE. */
int sockio_write_all(int fd, const void *buf, size_t len, uint64_t deadline, const char *peer,
                     struct err *e);

#endif
