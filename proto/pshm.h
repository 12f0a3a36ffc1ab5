/*
 * pshm.h - a shared window: memory that the service writes and its session helper reads, so
 * that the bulk bytes of an upload reach the helper without being copied through the
 * channel (pmux.h, "shared window"). The writer creates it; the reader is handed a handle
 * that can only map it read-only and can never resize it:
 *   POSIX    a memfd sealed against growing, shrinking and new writable mappings
 *            (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);
 *   Windows  a pagefile-backed section (fixed size by nature) whose handle for the reader is
 *            a duplicate with FILE_MAP_READ access only.
 * Neither side trusts the other's bytes more than a channel's: the writer never reads the
 * window back, the reader checks every slot reference (pmux.c).
 * Implementations: proto/posix/pshm.c, proto/win32/pshm.c.
 */
#ifndef KASM_PSHM_H
#define KASM_PSHM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct pshm;

/* The writer's side: size fresh zeroed bytes mapped read-write here (ERR_UNSUPPORTED where
 * the OS cannot seal them: the caller then goes without). */
int pshm_create(size_t size, struct pshm **out, struct err *e);
/*
 * A handle for the reader's process to inherit at its start. POSIX: the sealed memfd itself
 * (close-on-exec: the spawner clears that in the child only); Windows: a new inheritable
 * handle with FILE_MAP_READ access only. Hand it back with pshm_share_done() once the child
 * has started (or failed to).
 */
int pshm_share(struct pshm *w, intptr_t *os_handle, struct err *e);
void pshm_share_done(struct pshm *w, intptr_t os_handle);
/*
 * The reader's side: maps size bytes of an inherited handle read-only; takes ownership of the
 * handle (also on failure). ERR_INVALID when the handle is not a window of at least size
 * bytes.
 */
int pshm_open_reader(intptr_t os_handle, size_t size, struct pshm **out, struct err *e);
uint8_t *pshm_base(const struct pshm *w);
size_t pshm_size(const struct pshm *w);
/* 1 on the writer's side (pshm_create), 0 on the reader's. */
int pshm_writable(const struct pshm *w);
/* Unmaps and closes; NULL is ignored. */
void pshm_free(struct pshm *w);

#endif
