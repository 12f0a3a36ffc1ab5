/*
 * fsutil.h - whole-file helpers built on the platform layer: bounded reads and the atomic
 * write every file the service owns goes through (config, certificates, keys, tokens).
 *
 * fs_write_atomic(): write to a temp file in the same directory, flush it to disk, then
 * replace the target in one step (MoveFileExW / rename) and flush the directory. A crash at
 * any instant leaves the old file or the new one, never a torn one; the temp file of an
 * interrupted write is named "<target>.tmp-<random>" and is removed on error.
 */
#ifndef KASM_FSUTIL_H
#define KASM_FSUTIL_H

#include <stddef.h>

#include "err.h"

enum fs_write_flags {
    FS_WRITE_PRIVATE = 1 << 0, /* SYSTEM + Administrators only (keys, tokens, config) */
};

int fs_write_atomic(const char *path, const void *data, size_t len, int flags, struct err *e);

/*
 * Reads a whole file into a NUL-terminated heap buffer (free()). Fails with ERR_TOO_LARGE
 * past max_bytes, ERR_NOT_FOUND when missing. *len_out (may be NULL) excludes the NUL.
 */
int fs_read_all(const char *path, size_t max_bytes, char **out, size_t *len_out, struct err *e);

/* Directory part of path ("C:\a\b.yaml" -> "C:\a"; "b.yaml" -> "."), into out. */
int fs_dirname(const char *path, char *out, size_t cap, struct err *e);

/* Joins dir and name with the platform separator into out (ERR_TOO_LARGE if it won't fit). */
int fs_join(const char *dir, const char *name, char *out, size_t cap, struct err *e);

#endif
