/*
 * orch_plat.h - the platform part of the session orchestrator (posix/, win32/): the user's
 * profile folder, handing a written file over to the user, and logging a user off.
 */
#ifndef KASM_ORCH_PLAT_H
#define KASM_ORCH_PLAT_H

#include <stddef.h>

#include "err.h"

/* The profile folder of local account user (Windows: the ProfileList entry of its SID, else
 * <profiles dir>\user; POSIX: its home from the password database). ERR_NOT_FOUND when
 * the account is unknown. */
int orch_plat_profile_dir(const char *user, char *out, size_t cap, struct err *e);
/* Makes path (a file the service wrote, inside top) and the folders between it and top (the
 * profile) belong to user: POSIX chown to the user's uid/gid (the file through a descriptor
 * opened without following a link) and the file's mode the owner bits of access
 * (PLAT_ACCESS_*, plat.h) only; Windows owner = the user's SID and a protected DACL of
 * SYSTEM, Administrators (full control) and the user (folders: full control; the file: the
 * rights of access, plat_file_set_user_access). */
int orch_plat_give_to_user(const char *path, const char *top, const char *user, unsigned access,
                           struct err *e);
/* Logs off every terminal session of user (WTSLogoffSession); returns how many in *count.
 * POSIX: ERR_UNSUPPORTED. */
int orch_plat_logoff(const char *user, unsigned *count, struct err *e);

#endif
