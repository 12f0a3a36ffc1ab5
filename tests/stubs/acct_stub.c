/*
 * acct_stub.c - a TEST stand-in for service/accounts/acct.h, linked only
 * while the accounts module is not in the tree: every call fails like the POSIX build of the
 * real module does (ERR_UNSUPPORTED), except the portable name check, which accepts
 * 1..20 bytes without the characters Windows forbids.
 */
#include <string.h>

#include "acct.h"

int acct_validate_username(const char *username, struct err *e)
{
    size_t n = strlen(username);
    if (n == 0 || n > ACCT_USERNAME_MAX || strpbrk(username, "\"/\\[]:;|=,+*?<>@"))
        return err_set(e, ERR_INVALID, "%.40s is not a valid Windows account name", username);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)username[i] < 32)
            return err_set(e, ERR_INVALID, "an account name has no control characters");
    return 0;
}

int acct_ensure_local_user(const char *username, const char *password, struct acct_result *out,
                           struct err *e)
{
    (void)username;
    (void)password;
    memset(out, 0, sizeof(*out));
    return err_set(e, ERR_UNSUPPORTED,
                   "local accounts are not supported in this build (test stub)");
}
