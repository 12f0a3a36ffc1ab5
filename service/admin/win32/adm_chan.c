/*
 * win32/adm_chan.c - the admin channel on Windows (adm_chan.h): the named pipe
 * \\.\pipe\kasm-open-agent-admin (adm_endpoint.h), DACL SYSTEM + Administrators only, created
 * with FILE_FLAG_FIRST_PIPE_INSTANCE (if anybody - a second agent, a squatter - created it
 * first, the service refuses to start) and PIPE_REJECT_REMOTE_CLIENTS, one instance, used
 * for one client at a time with overlapped I/O and deadlines. Each client is authorised by
 * its token: ImpersonateNamedPipeClient, OpenThreadToken, RevertToSelf, then SYSTEM or a
 * member of Administrators (CheckTokenMembership) - never by process id. A connect that
 * completed before ConnectNamedPipe (ERROR_PIPE_CONNECTED) is served like any other.
 */
#include "adm_chan.h"

#include <windows.h>

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define ADM_PIPE_BUFFER 65536
#define ADM_DRAIN_MS    2000 /* after the reply: wait this long for the client to close */

struct adm_listener {
    HANDLE pipe;
    HANDLE stop_ev; /* manual reset: set by adm_listener_wake */
    HANDLE io_ev;   /* manual reset: overlapped connect, read and write */
    char name[256];
};

struct adm_conn {
    struct adm_listener *l;
};

int adm_listen(const char *path, struct adm_listener **out, struct err *e)
{
    struct adm_listener *l = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa;
    wchar_t wname[256];
    DWORD err;
    int rc = 0;

    *out = NULL;
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wname, 256))
        return err_set(e, ERR_INVALID, "the admin pipe name %.200s is not valid", path);
    l = calloc(1, sizeof(*l));
    if (!l)
        return err_set(e, ERR_NOMEM, "out of memory");
    l->pipe = INVALID_HANDLE_VALUE;
    snprintf(l->name, sizeof(l->name), "%s", path);
    l->stop_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    l->io_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!l->stop_ev || !l->io_ev) {
        rc = err_set(e, ERR_IO, "cannot create an event (error %lu)", GetLastError());
        goto out;
    }
    /* Protected DACL: SYSTEM and Administrators, nobody else (no inherited entries). */
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(L"D:P(A;;GA;;;SY)(A;;GA;;;BA)",
                                                              SDDL_REVISION_1, &sd, NULL)) {
        rc = err_set(e, ERR_IO, "cannot build the admin pipe's security (error %lu)",
                     GetLastError());
        goto out;
    }
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    l->pipe = CreateNamedPipeW(
        wname, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
        ADM_PIPE_BUFFER, ADM_PIPE_BUFFER, 0, &sa);
    if (l->pipe == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY)
            rc = err_set(e, ERR_EXISTS,
                         "another agent or another program holds %s (error %lu); stop it "
                         "first - if no agent runs, a program squats the pipe: find it with "
                         "a handle viewer",
                         path, err);
        else
            rc = err_set(e, ERR_IO, "cannot create %s (error %lu)", path, err);
        goto out;
    }
out:
    if (sd)
        LocalFree(sd);
    if (rc < 0) {
        adm_listener_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* Waits for the overlapped operation ov on the pipe until the deadline or the stop event. */
static int adm_wait_io(struct adm_listener *l, OVERLAPPED *ov, uint64_t deadline, int stoppable,
                       DWORD *done, struct err *e)
{
    HANDLE hs[2] = {l->io_ev, l->stop_ev};
    uint64_t now = plat_monotonic_ms();
    DWORD ms = deadline == UINT64_MAX ? INFINITE : (now >= deadline ? 0 : (DWORD)(deadline - now));
    DWORD w = WaitForMultipleObjects(stoppable ? 2 : 1, hs, FALSE, ms);

    if (w != WAIT_OBJECT_0) {
        CancelIoEx(l->pipe, ov);
        GetOverlappedResult(l->pipe, ov, done, TRUE);
        if (w == WAIT_OBJECT_0 + 1)
            return err_set(e, ERR_CANCELLED, "the admin channel is closing");
        return err_set(e, ERR_TIMEOUT, "the client was too slow");
    }
    if (!GetOverlappedResult(l->pipe, ov, done, FALSE)) {
        DWORD err = GetLastError();
        if (err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED)
            return err_set(e, ERR_IO, "the client closed the connection early");
        return err_set(e, ERR_IO, "pipe I/O failed (error %lu)", err);
    }
    return 0;
}

int adm_accept(struct adm_listener *l, struct adm_conn **out, struct err *e)
{
    OVERLAPPED ov;
    struct adm_conn *c;
    DWORD done = 0;
    int rc;

    *out = NULL;
    if (WaitForSingleObject(l->stop_ev, 0) == WAIT_OBJECT_0)
        return err_set(e, ERR_CANCELLED, "the admin channel is closing");
    memset(&ov, 0, sizeof(ov));
    ResetEvent(l->io_ev);
    ov.hEvent = l->io_ev;
    if (!ConnectNamedPipe(l->pipe, &ov)) {
        DWORD err = GetLastError();
        if (err == ERROR_IO_PENDING) {
            if ((rc = adm_wait_io(l, &ov, UINT64_MAX, 1, &done, e)) < 0) {
                if (rc != ERR_CANCELLED)
                    DisconnectNamedPipe(l->pipe);
                return rc;
            }
        } else if (err != ERROR_PIPE_CONNECTED) {
            /* ERROR_NO_DATA: the client came and went; make the instance free again */
            DisconnectNamedPipe(l->pipe);
            return err_set(e, ERR_IO, "cannot accept an admin client (error %lu)", err);
        }
        /* ERROR_PIPE_CONNECTED: connected between CreateNamedPipe and now; same checks. */
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        DisconnectNamedPipe(l->pipe);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    c->l = l;
    *out = c;
    return 0;
}

void adm_listener_wake(struct adm_listener *l)
{
    if (l && l->stop_ev)
        SetEvent(l->stop_ev);
}

void adm_listener_close(struct adm_listener *l)
{
    if (!l)
        return;
    if (l->pipe != INVALID_HANDLE_VALUE)
        CloseHandle(l->pipe);
    if (l->stop_ev)
        CloseHandle(l->stop_ev);
    if (l->io_ev)
        CloseHandle(l->io_ev);
    free(l);
}

/* SYSTEM, or a member of Administrators (enabled in the token: an elevated client). */
static int adm_token_is_admin(HANDLE tok, char *who, size_t cap)
{
    BYTE sidbuf[SECURITY_MAX_SID_SIZE];
    DWORD sidlen = sizeof(sidbuf);
    BYTE userbuf[256];
    DWORD len = 0;
    BOOL member = FALSE;
    char *sidtext = NULL;

    snprintf(who, cap, "an unknown user");
    if (GetTokenInformation(tok, TokenUser, userbuf, sizeof(userbuf), &len)) {
        PSID user = ((TOKEN_USER *)userbuf)->User.Sid;
        if (ConvertSidToStringSidA(user, &sidtext)) {
            snprintf(who, cap, "the user %s", sidtext);
            LocalFree(sidtext);
        }
        if (IsWellKnownSid(user, WinLocalSystemSid))
            return 1;
    }
    if (CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, sidbuf, &sidlen) &&
        CheckTokenMembership(tok, sidbuf, &member) && member)
        return 1;
    return 0;
}

int adm_conn_authorize(struct adm_conn *c, struct err *e)
{
    HANDLE tok = NULL;
    char who[128];
    DWORD err = 0;
    int ok;

    if (!ImpersonateNamedPipeClient(c->l->pipe))
        return err_set(e, ERR_PERMISSION, "cannot identify the client (error %lu)", GetLastError());
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok))
        err = GetLastError();
    if (!RevertToSelf()) {
        /* Never go on as the client. */
        fprintf(stderr, "agent: RevertToSelf failed (error %lu); stopping\n", GetLastError());
        abort();
    }
    if (err)
        return err_set(e, ERR_PERMISSION, "cannot read the client's token (error %lu)", err);
    ok = adm_token_is_admin(tok, who, sizeof(who));
    CloseHandle(tok);
    if (!ok)
        return err_set(e, ERR_PERMISSION, "%s is neither SYSTEM nor an elevated administrator",
                       who);
    return 0;
}

static int adm_io(struct adm_conn *c, int write, void *buf, size_t len, uint64_t deadline,
                  struct err *e)
{
    size_t pos = 0;

    while (pos < len) {
        OVERLAPPED ov;
        DWORD n = 0, want = (DWORD)((len - pos) > 65536 ? 65536 : (len - pos));
        BOOL ok;
        int rc;

        memset(&ov, 0, sizeof(ov));
        ResetEvent(c->l->io_ev);
        ov.hEvent = c->l->io_ev;
        ok = write ? WriteFile(c->l->pipe, (char *)buf + pos, want, NULL, &ov)
                   : ReadFile(c->l->pipe, (char *)buf + pos, want, NULL, &ov);
        if (!ok) {
            DWORD err = GetLastError();
            if (err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_NO_DATA)
                return err_set(e, ERR_IO, "the client closed the connection early");
            if (err != ERROR_IO_PENDING && err != ERROR_MORE_DATA)
                return err_set(e, ERR_IO, "pipe I/O failed (error %lu)", err);
        }
        if ((rc = adm_wait_io(c->l, &ov, deadline, 0, &n, e)) < 0)
            return rc;
        if (n == 0 && !write)
            return err_set(e, ERR_IO, "the client closed the connection early");
        pos += n;
    }
    return 0;
}

int adm_conn_read(struct adm_conn *c, void *buf, size_t len, uint64_t deadline, struct err *e)
{
    return adm_io(c, 0, buf, len, deadline, e);
}

int adm_conn_write(struct adm_conn *c, const void *buf, size_t len, uint64_t deadline,
                   struct err *e)
{
    return adm_io(c, 1, (void *)buf, len, deadline, e);
}

void adm_conn_close(struct adm_conn *c)
{
    char byte;
    struct err e = ERR_INIT;

    if (!c)
        return;
    /* DisconnectNamedPipe discards what the client has not read yet: wait (briefly) until
     * the client has read the reply and closed its end. */
    (void)adm_io(c, 0, &byte, 1, plat_monotonic_ms() + ADM_DRAIN_MS, &e);
    DisconnectNamedPipe(c->l->pipe);
    free(c);
}
