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
/*
 * Sends one frame whose payload is up to max bytes of an open file (os_file: an fd) at offset
 * off, without the bytes passing through this process's memory: POSIX splices the file into a
 * pipe, learns how many bytes it got (n, short at the end of the file), calls
 * make_header(ctx, n, header) for the PROTO_HEADER_SIZE-byte header, writes it, then splices
 * the n bytes from the pipe to the channel (never SIGPIPE). *sent = n; n == 0 (end of file)
 * sends nothing. Writers are serialised by the caller. ERR_UNSUPPORTED when this platform or
 * file cannot do it (Windows; a file splice refuses): nothing was sent, the caller reads and
 * writes instead. Other errors leave the channel unusable.
 */
int pchan_write_file_frame(struct pchan *c, intptr_t os_file, uint64_t off, size_t max,
                           void (*make_header)(void *ctx, size_t n, uint8_t *header), void *ctx,
                           size_t *sent, struct err *e);
/* Makes a blocked pchan_read return *got == 0 and later writes fail; any thread, idempotent. */
void pchan_shutdown(struct pchan *c);
/* Closes the handle and frees c; NULL is ignored. No read or write may be in progress. */
void pchan_close(struct pchan *c);
/* The OS handle, for passing to a child process (the channel keeps owning it). */
intptr_t pchan_os_handle(const struct pchan *c);

#endif
