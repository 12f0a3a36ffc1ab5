/*
 * posix/acct_posix.c - Kasm-managed local accounts on POSIX: not supported. The agent on
 * Linux serves tests and development; it never creates system accounts.
 */
#include "acct.h"

#include <string.h>

int acct_ensure_local_user(const char *username, const char *password, struct acct_result *out,
                           struct err *e)
{
    (void)username;
    (void)password;
    if (out)
        memset(out, 0, sizeof(*out));
    return err_set(e, ERR_UNSUPPORTED,
                   "local accounts are created only on Windows; turn off create_local_account "
                   "for this server in the Kasm deployment, or create the user yourself");
}
