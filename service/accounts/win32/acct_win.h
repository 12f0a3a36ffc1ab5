/*
 * win32/acct_win.h - the steps of acct_ensure_local_user() on Windows, one function each, so
 * that tests/unit/test_acct.c can run (and, under Wine, skip) them one by one. Not a public
 * API: the agent calls acct_ensure_local_user() only.
 */
#ifndef KASM_ACCT_WIN_H
#define KASM_ACCT_WIN_H

#include <windows.h>

#include <stddef.h>

#include "err.h"

/* NetUserAdd level 1 (UF_SCRIPT | UF_DONT_EXPIRE_PASSWD | UF_NORMAL_ACCOUNT); on
 * NERR_UserExists: refuses administrator and guest accounts, sets the password (level 1003)
 * and clears UF_ACCOUNTDISABLE and UF_LOCKOUT (level 1008). *created = 1 when it was new. */
int acct_win_user(const wchar_t *user, const wchar_t *password, int *created, struct err *e);

/* The name of Remote Desktop Users on this host (localised), from its well-known SID
 * S-1-5-32-555 (CreateWellKnownSid + LookupAccountSidW). */
int acct_win_rdu_name(wchar_t *out, size_t cap, struct err *e);

/* Adds COMPUTERNAME\user to Remote Desktop Users (NetLocalGroupAddMembers level 3).
 * *added = 1 when it was added now, 0 when it already was a member (ERROR_MEMBER_IN_ALIAS). */
int acct_win_rdu_add(const wchar_t *user, int *added, struct err *e);

/* Creates the user's profile with CreateProfile (userenv, resolved at run time), or finds the
 * existing one in the ProfileList key; dir receives its folder (UTF-8). */
int acct_win_profile(const wchar_t *user, char *dir, size_t cap, int *created, struct err *e);

#endif
