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
 * " / \ [ ] : ; | = , + * ? < > @, no control characters (C0, DEL, C1), not only dots and
 * spaces, no trailing dot; strict UTF-8 (no overlong forms, no surrogates). Characters are
 * counted as Windows counts them, in UTF-16 code units: 20 letters of any script fit (60 bytes
 * of CJK are fine), a character beyond U+FFFF (an emoji) counts as 2. Portable: the same rule
 * on every platform. Otherwise ERR_INVALID naming the rule. */
int acct_validate_username(const char *username, struct err *e);

struct acct_result {
    int created;            /* 1 the account was created, 0 it existed and was updated */
    int added_to_rdu;       /* 1 it was added to Remote Desktop Users now (0: already a member) */
    int profile_created;    /* 1 its profile folder was created now */
    char profile_dir[1024]; /* the profile folder (UTF-8) */
};

/* Creates the local user (or resets the password of an existing one and enables it), makes
 * it a member of Remote Desktop Users and creates its profile. Idempotent: a second call
 * reports created = added_to_rdu = profile_created = 0. An existing administrator or guest
 * account is refused (ERR_PERMISSION), never taken over. Not rolled back on a failed step (the
 * next call completes it). username is validated first (ERR_INVALID); out is zeroed first and
 * is required. Windows-only (docs/accounts.md); elsewhere ERR_UNSUPPORTED. */
int acct_ensure_local_user(const char *username, const char *password, struct acct_result *out,
                           struct err *e);

#endif
