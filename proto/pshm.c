/*
 * pshm.c - the portable part of the shared window (pshm.h): its accessors. Creating, sharing,
 * mapping and freeing it are the platform's (posix/pshm.c, win32/pshm.c).
 */
#include "pshm.h"

#include "pshm_int.h"

uint8_t *pshm_base(const struct pshm *w)
{
    return w->base;
}

size_t pshm_size(const struct pshm *w)
{
    return w->size;
}

int pshm_writable(const struct pshm *w)
{
    return w->writable;
}
