/*
 * win32/orch_plat.c - the orchestrator's platform part on Windows (orch_plat.h): the profile
 * folder from the ProfileList of the account's SID, the user made owner of a written file
 * with a protected DACL (SYSTEM, Administrators, the user with the rights the mapping's flags
 * give), WTSLogoffSession.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <userenv.h>
#include <wtsapi32.h>

#include "orch.h"
#include "orch_plat.h"
#include "win32/wide.h"

/* The SID of a local account (LocalFree the result). */
static int user_sid(const char *user, PSID *out, struct err *e)
{
    wchar_t *wu = plat_w_from_utf8(user, e), domain[256];
    DWORD sid_len = 0, dom_len = 256;
    SID_NAME_USE use;
    PSID sid = NULL;
    int rc = 0;

    *out = NULL;
    if (!wu)
        return e ? e->code : ERR_INVALID;
    LookupAccountNameW(NULL, wu, NULL, &sid_len, domain, &dom_len, &use);
    if (sid_len == 0 || !(sid = LocalAlloc(LPTR, sid_len))) {
        rc = err_set(e, ERR_NOT_FOUND, "there is no local account %.100s", user);
        goto out;
    }
    dom_len = 256;
    if (!LookupAccountNameW(NULL, wu, sid, &sid_len, domain, &dom_len, &use)) {
        rc = err_set(e, ERR_NOT_FOUND, "there is no local account %.100s", user);
        LocalFree(sid);
        goto out;
    }
    *out = sid;
out:
    free(wu);
    return rc;
}

int orch_plat_profile_dir(const char *user, char *out, size_t cap, struct err *e)
{
    PSID sid = NULL;
    wchar_t *ssid = NULL, key[512], buf[MAX_PATH * 2], dir[MAX_PATH * 2];
    DWORD len = sizeof(buf), n = MAX_PATH * 2;
    int rc;

    if (user_sid(user, &sid, NULL) == 0 && ConvertSidToStringSidW(sid, &ssid)) {
        _snwprintf(key, 512, L"SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\%ls",
                   ssid);
        key[511] = L'\0';
        if (RegGetValueW(HKEY_LOCAL_MACHINE, key, L"ProfileImagePath", RRF_RT_REG_SZ, NULL, buf,
                         &len) == ERROR_SUCCESS &&
            ExpandEnvironmentStringsW(buf, dir, MAX_PATH * 2) > 0) {
            rc = plat_utf8_from_w_buf(dir, out, cap, e);
            goto out;
        }
    }
    /* no profile yet (or Wine): <profiles dir>\<user> */
    if (!GetProfilesDirectoryW(dir, &n)) {
        rc = plat_win_fail(e, GetLastError(), "cannot find the profiles folder", NULL);
        goto out;
    }
    if ((rc = plat_utf8_from_w_buf(dir, out, cap, e)) < 0)
        goto out;
    if (strlen(out) + 1 + strlen(user) >= cap) {
        rc = err_set(e, ERR_TOO_LARGE, "the profile folder of %.100s is too long", user);
        goto out;
    }
    strcat(out, "\\");
    strcat(out, user);
    rc = 0;
out:
    if (ssid)
        LocalFree(ssid);
    if (sid)
        LocalFree(sid);
    return rc;
}

static int give_one(const char *path, PSID user, PACL dacl, struct err *e)
{
    wchar_t *w = plat_w_path(path, e);
    DWORD rc;
    if (!w)
        return e ? e->code : ERR_INVALID;
    rc = SetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                               OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION |
                                   PROTECTED_DACL_SECURITY_INFORMATION,
                               user, NULL, dacl, NULL);
    free(w);
    if (rc != ERROR_SUCCESS)
        return plat_win_fail(e, rc, "cannot give to the user", path);
    return 0;
}

int orch_plat_give_to_user(const char *path, const char *top, const char *user, unsigned access,
                           struct err *e)
{
    PSID sid = NULL;
    PACL dacl = NULL, file_dacl = NULL;
    char p[4096];
    int rc;

    if ((rc = user_sid(user, &sid, e)) < 0)
        return rc;
    if ((rc = plat_win_user_dacl(sid, GENERIC_ALL, GENERIC_ALL, SUB_CONTAINERS_AND_OBJECTS_INHERIT,
                                 &dacl, e)) < 0) {
        err_prefix(e, "the folders of %.100s", user);
        goto out;
    }
    /* the file: what the mapping's flags allow the user; the folders: full control */
    if ((rc = plat_win_user_file_dacl(sid, access, &file_dacl, e)) < 0)
        goto out;
    snprintf(p, sizeof(p), "%s", path);
    for (int first = 1; orch_path_under(p, top) && strlen(p) > strlen(top); first = 0) {
        char *a, *b, *cut;
        if ((rc = give_one(p, sid, first ? file_dacl : dacl, e)) < 0)
            goto out;
        a = strrchr(p, '\\');
        b = strrchr(p, '/');
        cut = a > b ? a : b;
        if (!cut)
            break;
        *cut = '\0';
    }
    rc = 0;
out:
    if (dacl)
        LocalFree(dacl);
    if (file_dacl)
        LocalFree(file_dacl);
    LocalFree(sid);
    return rc;
}

int orch_plat_logoff(const char *user, unsigned *count, struct err *e)
{
    WTS_SESSION_INFOW *list = NULL;
    DWORD n = 0;
    wchar_t *wu = plat_w_from_utf8(user, e);
    int rc = 0;

    *count = 0;
    if (!wu)
        return e ? e->code : ERR_INVALID;
    if (!WTSEnumerateSessionsW(WTS_CURRENT_SERVER_HANDLE, 0, 1, &list, &n)) {
        rc = plat_win_fail(e, GetLastError(), "cannot list the terminal sessions", NULL);
        goto out;
    }
    for (DWORD i = 0; i < n; i++) {
        wchar_t *name = NULL;
        DWORD bytes = 0;
        if (!WTSQuerySessionInformationW(WTS_CURRENT_SERVER_HANDLE, list[i].SessionId, WTSUserName,
                                         &name, &bytes))
            continue;
        if (name && _wcsicmp(name, wu) == 0) {
            if (WTSLogoffSession(WTS_CURRENT_SERVER_HANDLE, list[i].SessionId, FALSE))
                (*count)++;
            else
                rc = plat_win_fail(e, GetLastError(), "WTSLogoffSession failed for", user);
        }
        WTSFreeMemory(name);
    }
out:
    if (list)
        WTSFreeMemory(list);
    free(wu);
    return rc;
}
