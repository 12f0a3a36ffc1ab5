/*
 * wide.h - private helpers of the Win32 platform layer (not a public API): UTF-8 <-> UTF-16
 * conversion, long-path (\\?\) forms, Win32 error messages, FILETIME conversion.
 */
#ifndef KASM_WIN32_WIDE_H
#define KASM_WIN32_WIDE_H

#include <windows.h>

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* UTF-8 -> UTF-16, malloc'd (free()). NULL with ERR_INVALID/ERR_NOMEM in e on failure. */
wchar_t *plat_w_from_utf8(const char *s, struct err *e);
/* UTF-16 -> UTF-8, malloc'd. Fails (NULL) on unpaired surrogates. */
char *plat_utf8_from_w(const wchar_t *w, struct err *e);
/* UTF-16 -> UTF-8 into out (ERR_TOO_LARGE if it does not fit). */
int plat_utf8_from_w_buf(const wchar_t *w, char *out, size_t cap, struct err *e);

/*
 * A path for the wide Win32 file API: made absolute and normalised (GetFullPathNameW), then
 * given the long-path prefix (\\?\C:\... or \\?\UNC\server\share\...). Paths already in
 * \\?\ or \\.\ form are kept as they are. malloc'd.
 */
wchar_t *plat_w_path(const char *path, struct err *e);

/* Removes a \\?\ or \\?\UNC\ prefix in place ("\\?\UNC\srv\x" -> "\\srv\x"). */
void plat_w_strip_long_prefix(wchar_t *w);

/*
 * Fills e from a Win32 error: "<what> <path>: <system text> (error N)", the code from
 * plat_err_from_os(). path may be NULL. Returns the code.
 */
int plat_win_fail(struct err *e, DWORD code, const char *what, const char *path);

/*
 * A file's access list for its user (plat_file_set_user_access, the orchestrator's files in a
 * profile): SYSTEM and BUILTIN\Administrators full control, user (a SID) the FILE_GENERIC_*
 * rights of access (PLAT_ACCESS_*; write includes DELETE), no entry for the user when access
 * is 0. Nothing inherits from it. LocalFree the result.
 */
int plat_win_user_file_dacl(PSID user, unsigned access, PACL *out, struct err *e);
/*
 * The general form: SYSTEM and BUILTIN\Administrators get admin_rights, user gets user_rights
 * (no entry when 0), every entry with the given inheritance (NO_INHERITANCE,
 * SUB_CONTAINERS_AND_OBJECTS_INHERIT ...). LocalFree the result.
 */
int plat_win_user_dacl(PSID user, DWORD admin_rights, DWORD user_rights, DWORD inheritance,
                       PACL *out, struct err *e);

/* FILETIME (100 ns since 1601) -> seconds since the Unix epoch. */
int64_t plat_filetime_to_unix(const FILETIME *ft);

#endif
