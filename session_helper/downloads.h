/*
 * downloads.h - who the helper runs as and where that user's Downloads folder is. The helper
 * runs as the logged-on user, so these are the user's own answers: Windows asks the shell
 * (SHGetKnownFolderPath(FOLDERID_Downloads), GetUserNameW); POSIX reads XDG_DOWNLOAD_DIR from
 * $XDG_CONFIG_HOME/user-dirs.dirs (else ~/.config/user-dirs.dirs), else uses $HOME/Downloads,
 * and takes the account name from the password database. Implementations:
 * session_helper/posix/downloads.c, session_helper/win32/downloads.c.
 */
#ifndef KASM_HLP_DOWNLOADS_H
#define KASM_HLP_DOWNLOADS_H

#include <stddef.h>

#include "err.h"

/*
 * The user's Downloads folder as a UTF-8 path, created (with its parents) if missing.
 * ERR_NOT_FOUND when there is no home / known folder to start from.
 */
int hlp_downloads_find(char *out, size_t cap, struct err *e);

/*
 * POSIX builds only, exposed for the tests: the XDG_DOWNLOAD_DIR value of a user-dirs.dirs text
 * (shell-style: XDG_DOWNLOAD_DIR="$HOME/Downloads", with \" \\ \$ \` escapes, comments and
 * blank lines ignored), "$HOME" / "${HOME}" at its start expanded to home. Returns 1 with
 * out filled, 0 when the text has no usable value (missing, relative, or "$HOME/" alone,
 * which xdg-user-dirs uses for "disabled"), ERR_TOO_LARGE when it does not fit.
 */
#ifndef _WIN32
int hlp_downloads_parse_xdg(const char *text, const char *home, char *out, size_t cap);
#endif

/* The user's profile folder (Windows: FOLDERID_Profile; POSIX: the home folder of the account
 * in the password database, as the service sees it). ERR_NOT_FOUND when there is none. */
int hlp_profile_find(char *out, size_t cap, struct err *e);

/* The account name the process runs as (Windows: GetUserNameW; POSIX: getpwuid). */
int hlp_user_name(char *out, size_t cap, struct err *e);

#endif
