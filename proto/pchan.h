/*
 * pchan.h - a byte channel between two processes: one end of a socketpair (POSIX) or of a
 * private named pipe (Windows, opened for overlapped I/O so that one thread can block in a
 * read while another writes). One reader thread and any number of writers (serialised by
 * the caller, pmux.h) may use a channel at once. Implementations: proto/posix/pchan.c,
 * proto/win32/pchan.c.
 */
#ifndef KASM_PCHAN_H
#define KASM_PCHAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct pchan;

/*
 * Wraps an inherited or created OS handle (an fd on POSIX; a HANDLE value on Windows, which
 * must have been opened with FILE_FLAG_OVERLAPPED). The channel owns it from then on.
 */
int pchan_from_os(intptr_t os_handle, struct pchan **out, struct err *e);
/*
 * A connected pair in this process (tests, and the service's end before spawning: see
 * sess_spawn). POSIX: socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC). Windows: a named pipe
 * with a random name, first instance, remote clients rejected, both ends overlapped.
 */
int pchan_pair(struct pchan **a, struct pchan **b, struct err *e);
/* Reads up to cap bytes; blocks until at least one byte; *got == 0: the peer closed (or the
 * channel was shut down). */
int pchan_read(struct pchan *c, void *buf, size_t cap, size_t *got, struct err *e);
/* Reads exactly len bytes; ERR_IO "the peer closed the channel" on an early end. */
int pchan_read_full(struct pchan *c, void *buf, size_t len, struct err *e);
/* Writes all len bytes (never SIGPIPE); ERR_IO once the peer is gone. */
int pchan_write_all(struct pchan *c, const void *buf, size_t len, struct err *e);
/* Makes a blocked pchan_read return *got == 0 and later writes fail; any thread, idempotent. */
void pchan_shutdown(struct pchan *c);
/* Closes the handle and frees c; NULL is ignored. No read or write may be in progress. */
void pchan_close(struct pchan *c);
/* The OS handle, for passing to a child process (the channel keeps owning it). */
intptr_t pchan_os_handle(const struct pchan *c);

#endif
