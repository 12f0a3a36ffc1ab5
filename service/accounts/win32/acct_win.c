/*
 * win32/acct_win.c - Kasm-managed local accounts on Windows: the user (NetUserAdd, or
 * NetUserSetInfo for one that exists), its membership of Remote Desktop Users (found by the
 * well-known SID S-1-5-32-555, so localised group names work) and its profile (CreateProfile).
 *
 * The profile is made with CreateProfile rather than LogonUserW + LoadUserProfileW: it needs
 * no logon (no logon session, no "log on locally" right, which servers may not give to
 * Remote Desktop Users, no logon audit event, no bad-password counter), it does not use the
 * password at all, and SYSTEM may call it. It is resolved at run time from userenv.dll so that
 * a system without it (Wine) gets an error instead of an aborted process.
 *
 * The password: the only copy this file makes is the UTF-16 conversion, wiped with
 * SecureZeroMemory before it is freed; it is never put into a message.
 */
#include "acct.h"
#include "acct_win.h"

#include <lm.h>
#include <sddl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "win32/wide.h"

typedef HRESULT(WINAPI *acct_create_profile_fn)(LPCWSTR sid, LPCWSTR user, LPWSTR path, DWORD cch);

#define ACCT_QUALIFIED_MAX (MAX_COMPUTERNAME_LENGTH + 1 + 256 + 1)

/* The user name in UTF-8 for messages (names are not secrets). */
static void acct_name_utf8(const wchar_t *user, char *out, size_t cap)
{
    if (plat_utf8_from_w_buf(user, out, cap, NULL) < 0)
        snprintf(out, cap, "?");
}

/* A NERR_* code (2100..2999) the switch below does not know: its text lives in netmsg.dll,
 * not in the system's message table. */
static int acct_nerr_fail(struct err *e, DWORD code, const char *what, const char *name)
{
    HMODULE msgs = LoadLibraryExW(L"netmsg.dll", NULL,
                                  LOAD_LIBRARY_AS_DATAFILE | LOAD_LIBRARY_SEARCH_SYSTEM32);
    wchar_t wbuf[512];
    char text[512];
    DWORD n = 0;

    if (msgs)
        n = FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_IGNORE_INSERTS, msgs, code,
                           0, wbuf, sizeof(wbuf) / sizeof(wbuf[0]), NULL);
    if (msgs)
        FreeLibrary(msgs);
    while (n > 0 && (wbuf[n - 1] == L'\r' || wbuf[n - 1] == L'\n' || wbuf[n - 1] == L' ' ||
                     wbuf[n - 1] == L'.'))
        n--;
    text[0] = '\0';
    if (n > 0) {
        wbuf[n] = 0;
        if (plat_utf8_from_w_buf(wbuf, text, sizeof(text), NULL) < 0)
            text[0] = '\0';
    }
    if (!text[0])
        snprintf(text, sizeof(text), "network management error");
    return err_set(e, ERR_IO, "%s %s: %s (NERR %lu)", what, name, text, (unsigned long)code);
}

/* Fills e for a failed NetApi/Win32 call on the account `name`: the code and a sentence. */
static int acct_fail(struct err *e, DWORD code, const char *what, const char *name)
{
    const char *text = NULL, *hint = "";
    int rc = ERR_IO;

    switch (code) {
    case ERROR_ACCESS_DENIED:
        text = "access denied";
        hint = "; the agent must run as SYSTEM or as an administrator";
        rc = ERR_PERMISSION;
        break;
    case NERR_PasswordTooShort:
        text = "the password does not meet this host's password policy (length, complexity or "
               "history)";
        hint = "; compare `net accounts` and the local security policy with the passwords the "
               "Kasm deployment generates";
        rc = ERR_INVALID;
        break;
    case NERR_BadUsername:
        text = "Windows refused the user name";
        hint = "; use another user name in Kasm";
        rc = ERR_INVALID;
        break;
    case NERR_GroupExists:
        text = "a group with this name exists";
        hint = "; rename that group or use another user name in Kasm";
        rc = ERR_EXISTS;
        break;
    case NERR_UserNotFound:
        text = "there is no such user";
        rc = ERR_NOT_FOUND;
        break;
    case NERR_GroupNotFound:
        text = "the group does not exist";
        rc = ERR_NOT_FOUND;
        break;
    case NERR_NotPrimary:
        text = "this host keeps no local accounts (a domain controller)";
        hint = "; create the user in the domain and turn off create_local_account for it";
        rc = ERR_UNSUPPORTED;
        break;
    case ERROR_NO_SUCH_MEMBER:
        text = "Windows cannot find the user to add";
        rc = ERR_NOT_FOUND;
        break;
    case ERROR_INVALID_MEMBER:
        text = "the account cannot be a member of this group";
        rc = ERR_INVALID;
        break;
    default:
        if (code >= NERR_BASE && code <= MAX_NERR)
            return acct_nerr_fail(e, code, what, name);
        return plat_win_fail(e, code, what, name);
    }
    return err_set(e, rc, "%s %s: %s (error %lu)%s", what, name, text, (unsigned long)code, hint);
}

/* "COMPUTERNAME\user": the local account, never a domain account of the same name. */
static int acct_qualified(const wchar_t *user, wchar_t *out, size_t cap, struct err *e)
{
    wchar_t comp[MAX_COMPUTERNAME_LENGTH + 1];
    DWORD n = MAX_COMPUTERNAME_LENGTH + 1;

    if (!GetComputerNameW(comp, &n))
        return plat_win_fail(e, GetLastError(), "cannot read the computer name", NULL);
    if (wcslen(comp) + 1 + wcslen(user) + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the qualified user name is too long");
    wcscpy(out, comp);
    wcscat(out, L"\\");
    wcscat(out, user);
    return 0;
}

int acct_win_user(const wchar_t *user, const wchar_t *password, int *created, struct err *e)
{
    USER_INFO_1 ui;
    USER_INFO_1 *cur = NULL;
    USER_INFO_1003 pw;
    USER_INFO_1008 fl;
    DWORD parm = 0;
    NET_API_STATUS st;
    char name[128];
    int rc = 0;

    *created = 0;
    acct_name_utf8(user, name, sizeof(name));
    memset(&ui, 0, sizeof(ui));
    memset(&pw, 0, sizeof(pw));
    ui.usri1_name = (LPWSTR)user;
    ui.usri1_password = (LPWSTR)password;
    ui.usri1_priv = USER_PRIV_USER;
    ui.usri1_comment = (LPWSTR)L"Kasm-managed local account (kasm-open-agent)";
    ui.usri1_flags = UF_SCRIPT | UF_DONT_EXPIRE_PASSWD | UF_NORMAL_ACCOUNT;
    st = NetUserAdd(NULL, 1, (LPBYTE)&ui, &parm);
    if (st == NERR_Success) {
        *created = 1;
        goto out;
    }
    if (st != NERR_UserExists) {
        rc = acct_fail(e, st, "cannot create the local user", name);
        goto out;
    }

    /* It exists: take it over only if it is an ordinary user (never reset the password of
     * an administrator or of the built-in Guest on the deployment's word). */
    st = NetUserGetInfo(NULL, user, 1, (LPBYTE *)&cur);
    if (st != NERR_Success) {
        rc = acct_fail(e, st, "cannot read the existing local user", name);
        goto out;
    }
    if (cur->usri1_priv != USER_PRIV_USER) {
        rc = err_set(e, ERR_PERMISSION,
                     "the local user %s exists and is %s; the agent takes over only ordinary "
                     "user accounts - use another user name in Kasm or rename that account",
                     name, cur->usri1_priv == USER_PRIV_ADMIN ? "an administrator" : "a guest");
        goto out;
    }
    pw.usri1003_password = (LPWSTR)password;
    st = NetUserSetInfo(NULL, user, 1003, (LPBYTE)&pw, &parm);
    if (st != NERR_Success) {
        rc = acct_fail(e, st, "cannot set the password of the existing local user", name);
        goto out;
    }
    if (cur->usri1_flags & (UF_ACCOUNTDISABLE | UF_LOCKOUT)) {
        fl.usri1008_flags = cur->usri1_flags & ~(DWORD)(UF_ACCOUNTDISABLE | UF_LOCKOUT);
        st = NetUserSetInfo(NULL, user, 1008, (LPBYTE)&fl, &parm);
        if (st != NERR_Success) {
            rc = acct_fail(e, st, "cannot enable the existing local user", name);
            goto out;
        }
    }
out:
    if (cur)
        NetApiBufferFree(cur);
    /* Only pointers to the caller's copy, but no trace of it is left on the stack either. */
    SecureZeroMemory(&ui, sizeof(ui));
    SecureZeroMemory(&pw, sizeof(pw));
    return rc;
}

int acct_win_rdu_name(wchar_t *out, size_t cap, struct err *e)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD sid_size = sizeof(sid);
    wchar_t dom[256];
    DWORD n = (DWORD)(cap > 4096 ? 4096 : cap), dn = 256;
    SID_NAME_USE use;

    if (!CreateWellKnownSid(WinBuiltinRemoteDesktopUsersSid, NULL, sid, &sid_size))
        return plat_win_fail(e, GetLastError(),
                             "cannot build the SID of Remote Desktop Users (S-1-5-32-555)", NULL);
    if (!LookupAccountSidW(NULL, sid, out, &n, dom, &dn, &use))
        return plat_win_fail(e, GetLastError(),
                             "cannot find the group Remote Desktop Users (S-1-5-32-555) on this "
                             "host; Remote Desktop must be available on this edition of Windows",
                             NULL);
    return 0;
}

int acct_win_rdu_add(const wchar_t *user, int *added, struct err *e)
{
    wchar_t group[257];
    wchar_t qual[ACCT_QUALIFIED_MAX];
    LOCALGROUP_MEMBERS_INFO_3 m;
    NET_API_STATUS st;
    char name[128];
    int rc;

    *added = 0;
    acct_name_utf8(user, name, sizeof(name));
    rc = acct_win_rdu_name(group, sizeof(group) / sizeof(group[0]), e);
    if (rc < 0)
        return rc;
    rc = acct_qualified(user, qual, sizeof(qual) / sizeof(qual[0]), e);
    if (rc < 0)
        return rc;
    m.lgrmi3_domainandname = qual;
    st = NetLocalGroupAddMembers(NULL, group, 3, (LPBYTE)&m, 1);
    if (st == NERR_Success) {
        *added = 1;
        return 0;
    }
    if (st == ERROR_MEMBER_IN_ALIAS)
        return 0;
    return acct_fail(e, st, "cannot add to Remote Desktop Users the local user", name);
}

/* The folder of an existing profile: ProfileList\<SID>\ProfileImagePath, expanded. */
static int acct_profile_dir(const wchar_t *sidstr, const char *name, char *dir, size_t cap,
                            struct err *e)
{
    static const wchar_t base[] = L"SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\";
    wchar_t key[sizeof(base) / sizeof(base[0]) + 256];
    wchar_t val[MAX_PATH * 2];
    DWORD size = sizeof(val);
    LSTATUS ls;

    if (wcslen(sidstr) >= 256)
        return err_set(e, ERR_INTERNAL, "a SID string is too long");
    wcscpy(key, base);
    wcscat(key, sidstr);
    /* RRF_RT_REG_SZ: a REG_EXPAND_SZ value is expanded and returned as REG_SZ. */
    ls =
        RegGetValueW(HKEY_LOCAL_MACHINE, key, L"ProfileImagePath", RRF_RT_REG_SZ, NULL, val, &size);
    if (ls != ERROR_SUCCESS)
        return plat_win_fail(e, (DWORD)ls,
                             "the profile exists but its folder is not in the ProfileList key "
                             "for the local user",
                             name);
    return plat_utf8_from_w_buf(val, dir, cap, e);
}

int acct_win_profile(const wchar_t *user, char *dir, size_t cap, int *created, struct err *e)
{
    HMODULE lib = NULL;
    acct_create_profile_fn create_profile;
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD sid_size = sizeof(sid), dn = 256;
    wchar_t dom[256];
    wchar_t qual[ACCT_QUALIFIED_MAX];
    wchar_t path[MAX_PATH];
    wchar_t *sidstr = NULL;
    SID_NAME_USE use;
    HRESULT hr;
    char name[128];
    int rc = 0;

    *created = 0;
    if (cap)
        dir[0] = '\0';
    acct_name_utf8(user, name, sizeof(name));
    lib = LoadLibraryExW(L"userenv.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
    if (!lib) {
        rc = plat_win_fail(e, GetLastError(), "cannot load userenv.dll to create the profile of",
                           name);
        goto out;
    }
    create_profile = (acct_create_profile_fn)(void (*)(void))GetProcAddress(lib, "CreateProfile");
    if (!create_profile) {
        rc = err_set(e, ERR_UNSUPPORTED,
                     "cannot create the profile of %s: userenv.dll has no CreateProfile on this "
                     "system (Windows Vista or later has it; Wine does not)",
                     name);
        goto out;
    }
    rc = acct_qualified(user, qual, sizeof(qual) / sizeof(qual[0]), e);
    if (rc < 0)
        goto out;
    if (!LookupAccountNameW(NULL, qual, sid, &sid_size, dom, &dn, &use)) {
        rc = plat_win_fail(e, GetLastError(), "cannot find the SID of the local user", name);
        goto out;
    }
    if (!ConvertSidToStringSidW(sid, &sidstr)) {
        rc = plat_win_fail(e, GetLastError(), "cannot format the SID of the local user", name);
        goto out;
    }
    hr = create_profile(sidstr, user, path, MAX_PATH);
    if (hr == S_OK) {
        *created = 1;
        rc = plat_utf8_from_w_buf(path, dir, cap, e);
        goto out;
    }
    if (hr == HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)) {
        rc = acct_profile_dir(sidstr, name, dir, cap, e);
        goto out;
    }
    if (HRESULT_FACILITY(hr) == FACILITY_WIN32)
        rc =
            plat_win_fail(e, HRESULT_CODE(hr), "cannot create the profile of the local user", name);
    else
        rc = err_set(e, ERR_IO, "cannot create the profile of the local user %s (HRESULT 0x%08lx)",
                     name, (unsigned long)hr);
out:
    if (sidstr)
        LocalFree(sidstr);
    if (lib)
        FreeLibrary(lib);
    return rc;
}

int acct_ensure_local_user(const char *username, const char *password, struct acct_result *out,
                           struct err *e)
{
    wchar_t *wuser = NULL, *wpass = NULL;
    struct err le = ERR_INIT;
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    rc = acct_validate_username(username, e);
    if (rc < 0) {
        err_prefix(e, "local account");
        goto out;
    }
    if (!out) {
        rc = err_set(e, ERR_INTERNAL, "acct_ensure_local_user: no result structure");
        goto out;
    }
    if (!password || !*password) {
        rc = err_set(e, ERR_INVALID,
                     "local account %s: no password was given (the deployment sends a one-time "
                     "password with set_kasm_session_credential)",
                     username);
        goto out;
    }
    wuser = plat_w_from_utf8(username, NULL);
    if (!wuser) {
        rc = err_set(e, ERR_NOMEM, "local account %s: out of memory", username);
        goto out;
    }
    /* plat_w_from_utf8's messages never quote the text, but they do not know it is secret:
     * say it here. */
    wpass = plat_w_from_utf8(password, &le);
    if (!wpass) {
        rc = err_set(e, le.code,
                     le.code == ERR_NOMEM ? "local account %s: out of memory"
                                          : "local account %s: the password is not valid UTF-8",
                     username);
        goto out;
    }
    if (wcslen(wpass) > PWLEN) {
        rc = err_set(e, ERR_INVALID,
                     "local account %s: the password is longer than the %d characters Windows "
                     "accepts",
                     username, PWLEN);
        goto out;
    }
    rc = acct_win_user(wuser, wpass, &out->created, e);
    if (rc < 0)
        goto out;
    rc = acct_win_rdu_add(wuser, &out->added_to_rdu, e);
    if (rc < 0)
        goto out;
    rc = acct_win_profile(wuser, out->profile_dir, sizeof(out->profile_dir), &out->profile_created,
                          e);
out:
    if (wpass) {
        SecureZeroMemory(wpass, wcslen(wpass) * sizeof(wchar_t));
        free(wpass);
    }
    free(wuser);
    return rc;
}
