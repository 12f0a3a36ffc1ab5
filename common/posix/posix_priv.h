/*
 * posix_priv.h - helpers shared by the POSIX files of the platform layer (not a public API).
 */
#ifndef KASM_POSIX_PRIV_H
#define KASM_POSIX_PRIV_H

#include "err.h"

/*
 * Fills e from errnum: "<what> <path>: <strerror>", code from plat_err_from_os().
 * path may be NULL. Returns the code.
 */
int plat_posix_fail(struct err *e, int errnum, const char *what, const char *path);

#endif
