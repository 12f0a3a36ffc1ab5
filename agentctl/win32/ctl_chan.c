/*
 * win32/ctl_chan.c - agentctl's end of the admin channel on Windows (ctl_chan.h): the named
 * pipe opened at identification level (SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION: the
 * server may learn who we are but cannot act as us), then the server checked before a byte
 * is sent:
 *  - the service "Kasm" installed and running: the pipe's server process
 *    (GetNamedPipeServerProcessId) must be the service's process (QueryServiceStatusEx) and
 *    run as SYSTEM;
 *  - otherwise (an agent started with --console, as in the tests): the pipe's server must
 *    run as the same user as agentctl. --debug says which rule applied.
 */
#include "ctl_chan.h"

#include <windows.h>

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define CTL_SERVICE_NAME L"Kasm"

struct ctl_conn {
    HANDLE pipe;
    HANDLE ev;
};

/* The user SID of a token into buf; NULL on failure. */
static PSID ctl_token_user(HANDLE tok, BYTE *buf, DWORD cap)
{
    DWORD len = 0;
    if (!GetTokenInformation(tok, TokenUser, buf, cap, &len))
        return NULL;
    return ((TOKEN_USER *)buf)->User.Sid;
}

/* The user SID of process pid into buf; NULL on failure. */
static PSID ctl_process_user(DWORD pid, BYTE *buf, DWORD cap)
{
    HANDLE proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    HANDLE tok = NULL;
    PSID sid = NULL;

    if (!proc)
        return NULL;
    if (OpenProcessToken(proc, TOKEN_QUERY, &tok)) {
        sid = ctl_token_user(tok, buf, cap);
        CloseHandle(tok);
    }
    CloseHandle(proc);
    return sid;
}

/* The Kasm service's process id when it is installed and running, else 0. */
static DWORD ctl_service_pid(int debug)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = NULL;
    SERVICE_STATUS_PROCESS st;
    DWORD need = 0, pid = 0;

    if (!scm) {
        if (debug)
            fprintf(stderr, "agentctl: cannot open the Service Control Manager (error %lu)\n",
                    GetLastError());
        return 0;
    }
    svc = OpenServiceW(scm, CTL_SERVICE_NAME, SERVICE_QUERY_STATUS);
    if (!svc) {
        if (debug)
            fprintf(stderr, "agentctl: the service \"Kasm\" is not installed (error %lu)\n",
                    GetLastError());
    } else if (QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st, sizeof(st), &need) &&
               st.dwCurrentState != SERVICE_STOPPED && st.dwProcessId != 0) {
        pid = st.dwProcessId;
    } else if (debug) {
        fprintf(stderr, "agentctl: the service \"Kasm\" is installed but not running\n");
    }
    if (svc)
        CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return pid;
}

static int ctl_verify_server(HANDLE pipe, int debug, struct err *e)
{
    BYTE sbuf[256], mbuf[256];
    ULONG spid = 0;
    DWORD svc_pid;
    PSID server_user, my_user = NULL;
    HANDLE tok = NULL;

    if (!GetNamedPipeServerProcessId(pipe, &spid))
        return err_set(e, ERR_AUTH, "cannot tell which process serves the admin pipe (error %lu)",
                       GetLastError());
    server_user = ctl_process_user(spid, sbuf, sizeof(sbuf));
    svc_pid = ctl_service_pid(debug);
    if (svc_pid) {
        if (spid != svc_pid)
            return err_set(e, ERR_AUTH,
                           "the admin pipe is served by process %lu, but the Kasm service is "
                           "process %lu: refusing to talk to it (another program holds the "
                           "pipe)",
                           (unsigned long)spid, (unsigned long)svc_pid);
        if (!server_user || !IsWellKnownSid(server_user, WinLocalSystemSid))
            return err_set(e, ERR_AUTH,
                           "the Kasm service (process %lu) does not run as SYSTEM: refusing to "
                           "talk to it",
                           (unsigned long)spid);
        if (debug)
            fprintf(stderr,
                    "agentctl: the pipe's server is the Kasm service (process %lu, "
                    "SYSTEM)\n",
                    (unsigned long)spid);
        return 0;
    }
    if (debug)
        fprintf(stderr,
                "agentctl: no running Kasm service: accepting the pipe's server (process %lu) "
                "only if it runs as this user (an agent started with --console)\n",
                (unsigned long)spid);
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        my_user = ctl_token_user(tok, mbuf, sizeof(mbuf));
        CloseHandle(tok);
    }
    if (!server_user || !my_user || !EqualSid(server_user, my_user))
        return err_set(e, ERR_AUTH,
                       "the admin pipe's server (process %lu) is not the Kasm service and does "
                       "not run as this user: refusing to talk to it",
                       (unsigned long)spid);
    return 0;
}

int ctl_connect(const char *endpoint, int debug, struct ctl_conn **out, struct err *e)
{
    wchar_t wname[256];
    HANDLE pipe = INVALID_HANDLE_VALUE;
    struct ctl_conn *c = NULL;
    uint64_t deadline = plat_monotonic_ms() + 10000;
    int rc = 0;

    *out = NULL;
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, endpoint, -1, wname, 256))
        return err_set(e, ERR_INVALID, "the admin pipe name %.200s is not valid", endpoint);
    if (debug)
        fprintf(stderr, "agentctl: opening the admin pipe %s at identification level\n", endpoint);
    for (;;) {
        DWORD err;
        pipe = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                           NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        err = GetLastError();
        if (err == ERROR_PIPE_BUSY && plat_monotonic_ms() < deadline) {
            WaitNamedPipeW(wname, 1000); /* another agentctl is being served */
            continue;
        }
        if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
            return err_set(e, ERR_NOT_FOUND,
                           "the agent is not running: there is no admin pipe %s (start the "
                           "service \"Kasm\")",
                           endpoint);
        if (err == ERROR_ACCESS_DENIED)
            return err_set(e, ERR_PERMISSION,
                           "permission denied on the admin pipe: run agentctl as an "
                           "administrator from an elevated prompt");
        if (err == ERROR_PIPE_BUSY)
            return err_set(e, ERR_NOT_FOUND, "the admin pipe %s stayed busy for 10 s", endpoint);
        return err_set(e, ERR_NOT_FOUND, "cannot open the admin pipe %s (error %lu)", endpoint,
                       err);
    }
    if ((rc = ctl_verify_server(pipe, debug, e)) < 0)
        goto out;
    c = calloc(1, sizeof(*c));
    if (!c) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    c->ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!c->ev) {
        rc = err_set(e, ERR_IO, "cannot create an event (error %lu)", GetLastError());
        goto out;
    }
    c->pipe = pipe;
    pipe = INVALID_HANDLE_VALUE;
    *out = c;
    c = NULL;
out:
    if (pipe != INVALID_HANDLE_VALUE)
        CloseHandle(pipe);
    if (c) {
        if (c->ev)
            CloseHandle(c->ev);
        free(c);
    }
    return rc;
}

static int ctl_io(struct ctl_conn *c, int write, void *buf, size_t len, uint64_t deadline,
                  struct err *e)
{
    size_t pos = 0;

    while (pos < len) {
        OVERLAPPED ov;
        DWORD n = 0, want = (DWORD)((len - pos) > 65536 ? 65536 : (len - pos)), w, err = 0;
        uint64_t now = plat_monotonic_ms();
        BOOL ok;

        memset(&ov, 0, sizeof(ov));
        ResetEvent(c->ev);
        ov.hEvent = c->ev;
        ok = write ? WriteFile(c->pipe, (char *)buf + pos, want, NULL, &ov)
                   : ReadFile(c->pipe, (char *)buf + pos, want, NULL, &ov);
        if (!ok && (err = GetLastError()) != ERROR_IO_PENDING)
            goto failed;
        w = WaitForSingleObject(c->ev, now >= deadline ? 0 : (DWORD)(deadline - now));
        if (w != WAIT_OBJECT_0) {
            CancelIoEx(c->pipe, &ov);
            GetOverlappedResult(c->pipe, &ov, &n, TRUE);
            return err_set(e, ERR_TIMEOUT, "the agent did not answer in time");
        }
        if (!GetOverlappedResult(c->pipe, &ov, &n, FALSE)) {
            err = GetLastError();
            goto failed;
        }
        if (n == 0 && !write)
            return err_set(e, ERR_IO, "the agent closed the connection without an answer");
        pos += n;
        continue;
    failed:
        if (err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_NO_DATA)
            return err_set(e, ERR_IO, "the agent closed the connection without an answer");
        return err_set(e, ERR_IO, "pipe I/O failed (error %lu)", err);
    }
    return 0;
}

int ctl_read(struct ctl_conn *c, void *buf, size_t len, uint64_t deadline, struct err *e)
{
    return ctl_io(c, 0, buf, len, deadline, e);
}

int ctl_write(struct ctl_conn *c, const void *buf, size_t len, uint64_t deadline, struct err *e)
{
    return ctl_io(c, 1, (void *)buf, len, deadline, e);
}

void ctl_close(struct ctl_conn *c)
{
    if (c) {
        CloseHandle(c->pipe);
        CloseHandle(c->ev);
        free(c);
    }
}
