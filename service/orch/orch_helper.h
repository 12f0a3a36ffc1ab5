/*
 * orch_helper.h - file mappings inside the user's profile written and removed through the
 * user's running session helper (FILE_PUT / FILE_DELETE, proto.h): the helper runs as the
 * user, so the file is the user's from the start and a link the user planted can lead
 * nowhere the user could not write anyway. docs/sessions.md "File mappings".
 */
#ifndef KASM_ORCH_HELPER_H
#define KASM_ORCH_HELPER_H

#include <stddef.h>

#include "err.h"

struct sesm;

/* ORCH_HELPER_NONE: no helper of that user runs (the caller takes the service's own path). */
#define ORCH_HELPER_NONE 1

/*
 * path (absolute, inside profile per orch_path_under) relative to profile, '/'-separated as
 * FILE_PUT wants it. ERR_INVALID when path is not below profile; ERR_TOO_LARGE when it does
 * not fit out.
 */
int orch_profile_rel(const char *path, const char *profile, char *out, size_t cap, struct err *e);

/*
 * Writes data[0..len) to rel (relative to the user's profile) through the session helper of
 * user, which gives the user access (PLAT_ACCESS_*, plat.h) to the file. ORCH_HELPER_NONE
 * when none runs (sessions NULL, or no helper of that user); 0 when the helper wrote it;
 * else a negative ERR_* with the helper's refusal or the channel failure.
 */
int orch_helper_put(struct sesm *sessions, const char *user, const char *rel, unsigned access,
                    const void *data, size_t len, struct err *e);
/* Removes rel the same way: ORCH_HELPER_NONE, 0 (removed), ERR_NOT_FOUND (not there), or the
 * failure. */
int orch_helper_delete(struct sesm *sessions, const char *user, const char *rel, struct err *e);

#endif
