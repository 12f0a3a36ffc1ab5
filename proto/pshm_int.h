/*
 * pshm_int.h - the shared window's record (pshm.h), common to the accessors in proto/pshm.c
 * and the platform files proto/posix/pshm.c and proto/win32/pshm.c.
 */
#ifndef KASM_PSHM_INT_H
#define KASM_PSHM_INT_H

#include <stddef.h>
#include <stdint.h>

struct pshm {
    intptr_t os;   /* POSIX: the memfd; Windows: the section's HANDLE */
    uint8_t *base; /* the mapping: read-write (writer) or read-only (reader) */
    size_t size;
    int writable;
};

#endif
