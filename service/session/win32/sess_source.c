/*
 * sess_source.c (Windows) - sess_enumerate(): the terminal sessions with a logged-on user,
 * from WTSEnumerateSessionsW and WTSQuerySessionInformationW(WTSUserName); session 0
 * (services) and sessions without a user (listeners, the login screen) are left out. The
 * console session is WTSGetActiveConsoleSessionId().
 *
 * Real Windows always lists at least session 0. Wine 8's WTSEnumerateSessionsW is a stub that
 * lists nothing, while WTSGetActiveConsoleSessionId and WTSQuerySessionInformationW work; so
 * an empty list falls back to the active console session alone.
 */
#include <windows.h>

#include <wtsapi32.h>

#include <stdlib.h>
#include <string.h>

#include "sess_plat.h"
#include "win32/wide.h"

/* The user of session id into s (0), or -1 when it has none or it is gone. */
static int sess_query_user(DWORD id, DWORD console, struct sess_info *s)
{
    LPWSTR name = NULL;
    DWORD bytes = 0;
    int rc = -1;

    memset(s, 0, sizeof(*s));
    if (!WTSQuerySessionInformationW(WTS_CURRENT_SERVER_HANDLE, id, WTSUserName, &name, &bytes))
        return -1; /* it ended while we listed */
    if (name && name[0] && plat_utf8_from_w_buf(name, s->user, sizeof(s->user), NULL) == 0) {
        s->id = id;
        s->console = id == console;
        rc = 0;
    }
    if (name)
        WTSFreeMemory(name);
    return rc;
}

int sess_enumerate(const struct sesm_config *cfg, struct sess_info **out, size_t *n, struct err *e)
{
    WTS_SESSION_INFOW *list = NULL;
    DWORD count = 0, console;
    struct sess_info *arr = NULL;
    size_t cnt = 0;
    int rc = 0;

    (void)cfg;
    *out = NULL;
    *n = 0;
    if (!WTSEnumerateSessionsW(WTS_CURRENT_SERVER_HANDLE, 0, 1, &list, &count)) {
        rc = plat_win_fail(e, GetLastError(), "cannot list the terminal sessions", NULL);
        goto out;
    }
    console = WTSGetActiveConsoleSessionId();
    arr = calloc(count ? count : 1, sizeof(*arr));
    if (!arr) {
        rc = err_set(e, ERR_NOMEM, "out of memory listing sessions");
        goto out;
    }
    for (DWORD i = 0; i < count; i++) {
        if (list[i].SessionId == 0)
            continue;
        if (list[i].State == WTSListen || list[i].State == WTSDown || list[i].State == WTSInit)
            continue;
        if (sess_query_user(list[i].SessionId, console, &arr[cnt]) == 0)
            cnt++;
    }
    if (count == 0 && console != 0 && console != 0xFFFFFFFFu &&
        sess_query_user(console, console, &arr[0]) == 0)
        cnt = 1; /* Wine: see the top of the file */
    *out = arr;
    *n = cnt;
    arr = NULL;
out:
    free(arr);
    if (list)
        WTSFreeMemory(list);
    return rc;
}
