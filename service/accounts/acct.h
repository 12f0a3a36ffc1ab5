/*
 * acct.h - Kasm-managed local accounts (prefix acct_): what session_start does when the
 * deployment asks for `create_local_account` (KASM_INTERFACE.md section 5, step 1).
 * Windows: NetUserAdd / NetUserSetInfo, membership of "Remote Desktop Users" (by its
 * well-known SID S-1-5-32-555, so localised group names work), the profile created.
 * POSIX: not supported - every call fails with ERR_UNSUPPORTED and says so.
 *
 * The password is a secret: it is never logged or copied into an error message; the caller
 * wipes its buffer after the call (acct functions wipe their own copies).
 */
#ifndef KASM_ACCT_H
#define KASM_ACCT_H

#include <stddef.h>

#include "err.h"

#define ACCT_USERNAME_MAX 20 /* Windows local account names: at most 20 characters */

/* 0 when username (UTF-8) is a valid Windows local account name: 1..20 characters, none of
 * " / \ [ ] : ; | = , + * ? < > @, no control characters, not only dots and spaces, no
 * trailing dot. Portable: the same rule on every platform. */
int acct_validate_username(const char *username, struct err *e);

struct acct_result {
    int created;            /* 1 the account was created, 0 it existed and was updated */
    int added_to_rdu;       /* 1 it was added to Remote Desktop Users now (0: already a member) */
    int profile_created;    /* 1 its profile folder was created now */
    char profile_dir[1024]; /* the profile folder (UTF-8) */
};

/* Creates the local user (or resets the password of an existing one and enables it), makes
 * it a member of Remote Desktop Users and creates its profile. */
int acct_ensure_local_user(const char *username, const char *password, struct acct_result *out,
                           struct err *e);

#endif
