/*
 * sess_token.c (Windows) - a session user's token and SID (win32/sess_token.h).
 */
#include <windows.h>

#include <sddl.h>
#include <wtsapi32.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"
#include "win32/sess_token.h"
#include "win32/wide.h"

#define SESS_TOKEN_TRIES    10
#define SESS_TOKEN_RETRY_MS 300

int sess_user_token(uint32_t session, const char *purpose, HANDLE *token, struct err *e)
{
    DWORD code = 0, mine = 0;

    *token = NULL;
    for (int i = 0; i < SESS_TOKEN_TRIES; i++) {
        if (WTSQueryUserToken(session, token))
            return 0;
        code = GetLastError();
        if (code != ERROR_NO_TOKEN)
            break;
        Sleep(SESS_TOKEN_RETRY_MS); /* the logon is not finished yet */
    }
    if (code == ERROR_PRIVILEGE_NOT_HELD && ProcessIdToSessionId(GetCurrentProcessId(), &mine) &&
        mine == session) {
        HANDLE own = NULL;
        int ok = OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &own) &&
                 DuplicateTokenEx(own, TOKEN_ALL_ACCESS, NULL, SecurityImpersonation, TokenPrimary,
                                  token);
        code = GetLastError();
        if (own)
            CloseHandle(own);
        if (ok)
            return 0;
    }
    {
        char what[64];
        int rc;
        snprintf(what, sizeof(what), "cannot get the user token of session %u", (unsigned)session);
        rc = plat_win_fail(e, code, what, NULL);
        if (code == ERROR_PRIVILEGE_NOT_HELD && e) {
            size_t n = strlen(e->msg);
            snprintf(e->msg + n, sizeof(e->msg) - n,
                     "; the agent must run as SYSTEM (as a service) to %s in other sessions",
                     purpose ? purpose : "start processes");
        }
        return rc;
    }
}

int sess_token_sid(HANDLE token, wchar_t **sid, struct err *e)
{
    BYTE *buf = NULL;
    DWORD len = 0;
    int rc = 0;

    *sid = NULL;
    GetTokenInformation(token, TokenUser, NULL, 0, &len);
    if (len == 0) {
        rc = plat_win_fail(e, GetLastError(), "cannot read the session user's SID", NULL);
        goto out;
    }
    buf = malloc(len);
    if (!buf) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!GetTokenInformation(token, TokenUser, buf, len, &len) ||
        !ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, sid)) {
        rc = plat_win_fail(e, GetLastError(), "cannot read the session user's SID", NULL);
        goto out;
    }
out:
    free(buf);
    return rc;
}
