/*
 * win32/svc_host.c - the service host on Windows.
 *
 * Started by the Service Control Manager, the process calls StartServiceCtrlDispatcherW and
 * the SCM runs ServiceMain on a thread of its own: it registers the control handler, reports
 * SERVICE_START_PENDING, runs the agent, and reports SERVICE_STOPPED last, with the exit
 * code. Started any other way (an administrator in a console), the dispatcher fails with
 * ERROR_FAILED_SERVICE_CONTROLLER_CONNECT and the agent runs in the console instead, stopped
 * by Ctrl+C, Ctrl+Break or closing the window.
 *
 * The control handler and the console handler only record and signal (svc_host_core.c):
 * STOP, SHUTDOWN and PRESHUTDOWN request a stop; PARAMCHANGE and SESSIONCHANGE are queued as
 * events for the run function (the session manager consumes SESSIONCHANGE); INTERROGATE
 * needs no answer beyond NO_ERROR.
 *
 * Ownership: g_win is the one instance (ServiceMain takes no context); its status fields are
 * guarded by status_lock, the rest is written before the dispatcher starts.
 */
#include "svc_host_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <shellapi.h>
#include <wtsapi32.h>

#define SVC_START_WAIT_HINT_MS    30000
#define SVC_CONSOLE_CLOSE_WAIT_MS 4500 /* Windows ends the process ~5 s after a close event */

struct win_host {
    struct svc_host *h;
    wchar_t name[256];
    svc_run_fn fn;
    void *ctx;
    int rc;         /* the run function's result */
    struct err err; /* ServiceMain's own failure, if any */

    SERVICE_STATUS_HANDLE status_handle;
    CRITICAL_SECTION status_lock;
    SERVICE_STATUS status; /* guarded by status_lock */

    HANDLE done;                 /* console: set when the run function has returned */
    volatile LONG handlers_busy; /* console handler calls in flight */
};

static struct win_host g_win;

/*
 * The dispatcher can be started once per process: after it has said "not started by the SCM"
 * later runs (unit tests) go straight to the console. Under Wine that first answer takes
 * about 10 s (Wine waits for a control pipe of another service); on Windows it is immediate.
 */
static int g_not_under_scm;

/* ------------------------------------------------------------------------------------- */
/* Status reporting                                                                       */

static void set_status(DWORD state, DWORD wait_hint_ms, DWORD exit_code, DWORD specific)
{
    EnterCriticalSection(&g_win.status_lock);
    if (g_win.status_handle) {
        SERVICE_STATUS *s = &g_win.status;
        s->dwServiceType = SERVICE_WIN32_OWN_PROCESS;
        if (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING)
            s->dwCheckPoint = s->dwCurrentState == state ? s->dwCheckPoint + 1 : 1;
        else
            s->dwCheckPoint = 0;
        s->dwCurrentState = state;
        s->dwWaitHint = wait_hint_ms;
        s->dwControlsAccepted = state == SERVICE_RUNNING
                                    ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN |
                                          SERVICE_ACCEPT_PRESHUTDOWN |
                                          SERVICE_ACCEPT_SESSIONCHANGE | SERVICE_ACCEPT_PARAMCHANGE
                                    : 0;
        s->dwWin32ExitCode = exit_code;
        s->dwServiceSpecificExitCode = specific;
        SetServiceStatus(g_win.status_handle, s);
    }
    LeaveCriticalSection(&g_win.status_lock);
}

static void win_report(void *plat, enum svc_status status, uint32_t wait_hint_ms)
{
    (void)plat;
    switch (status) {
    case SVC_STATUS_START_PENDING:
        set_status(SERVICE_START_PENDING, wait_hint_ms, NO_ERROR, 0);
        break;
    case SVC_STATUS_RUNNING:
        set_status(SERVICE_RUNNING, 0, NO_ERROR, 0);
        break;
    case SVC_STATUS_STOP_PENDING:
        set_status(SERVICE_STOP_PENDING, wait_hint_ms, NO_ERROR, 0);
        break;
    }
}

/* ------------------------------------------------------------------------------------- */
/* Service mode                                                                           */

static DWORD WINAPI control_handler(DWORD control, DWORD event_type, LPVOID event_data,
                                    LPVOID context)
{
    struct svc_event ev;
    (void)context;
    switch (control) {
    case SERVICE_CONTROL_STOP:
        svc_core_request_stop(g_win.h, SVC_STOP_REQUESTED, "the Service Control Manager");
        return NO_ERROR;
    case SERVICE_CONTROL_PRESHUTDOWN:
    case SERVICE_CONTROL_SHUTDOWN:
        svc_core_request_stop(g_win.h, SVC_STOP_SHUTDOWN, "Windows shutting down");
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    case SERVICE_CONTROL_PARAMCHANGE:
        memset(&ev, 0, sizeof(ev));
        ev.type = SVC_EVENT_RELOAD;
        svc_event_post(g_win.h, &ev);
        return NO_ERROR;
    case SERVICE_CONTROL_SESSIONCHANGE:
        /* Queued for the session manager; it also re-enumerates, as events can be missed. */
        memset(&ev, 0, sizeof(ev));
        ev.type = SVC_EVENT_SESSION_CHANGE;
        ev.reason = event_type;
        if (event_data)
            ev.session_id = ((const WTSSESSION_NOTIFICATION *)event_data)->dwSessionId;
        svc_event_post(g_win.h, &ev);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    DWORD exit_code = NO_ERROR, specific = 0;
    (void)argc;
    (void)argv;

    g_win.status_handle = RegisterServiceCtrlHandlerExW(g_win.name, control_handler, NULL);
    if (!g_win.status_handle) {
        g_win.rc =
            err_set(&g_win.err, ERR_IO, "cannot register the service control handler (error %lu)",
                    (unsigned long)GetLastError());
        return;
    }
    svc_core_set_mode(g_win.h, SVC_MODE_SERVICE);
    svc_core_set_report(g_win.h, win_report, NULL);
    set_status(SERVICE_START_PENDING, SVC_START_WAIT_HINT_MS, NO_ERROR, 0);

    g_win.rc = g_win.fn(g_win.h, g_win.ctx);

    if (g_win.rc < 0) {
        exit_code = ERROR_SERVICE_SPECIFIC_ERROR;
        specific = (DWORD)-g_win.rc;
    }
    set_status(SERVICE_STOPPED, 0, exit_code, specific); /* last: the process may end now */
}

/* ------------------------------------------------------------------------------------- */
/* Console mode                                                                           */

static BOOL WINAPI console_handler(DWORD type)
{
    BOOL handled = TRUE;
    InterlockedIncrement(&g_win.handlers_busy);
    switch (type) {
    case CTRL_C_EVENT:
        svc_core_request_stop(g_win.h, SVC_STOP_REQUESTED, "Ctrl+C");
        break;
    case CTRL_BREAK_EVENT:
        svc_core_request_stop(g_win.h, SVC_STOP_REQUESTED, "Ctrl+Break");
        break;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        /* Windows ends the process when this returns: give the agent time to stop. */
        svc_core_request_stop(
            g_win.h, type == CTRL_SHUTDOWN_EVENT ? SVC_STOP_SHUTDOWN : SVC_STOP_CONSOLE,
            type == CTRL_CLOSE_EVENT ? "the console window closing" : "the user logging off");
        WaitForSingleObject(g_win.done, SVC_CONSOLE_CLOSE_WAIT_MS);
        break;
    default:
        handled = FALSE;
        break;
    }
    InterlockedDecrement(&g_win.handlers_busy);
    return handled;
}

static int run_console(struct err *e)
{
    int rc;
    g_win.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!g_win.done)
        return err_set(e, ERR_IO, "cannot create an event (error %lu)",
                       (unsigned long)GetLastError());
    if (!SetConsoleCtrlHandler(console_handler, TRUE)) {
        rc = err_set(e, ERR_IO, "cannot install the Ctrl+C handler (error %lu)",
                     (unsigned long)GetLastError());
        goto out;
    }
    svc_core_set_mode(g_win.h, SVC_MODE_CONSOLE);
    rc = g_win.fn(g_win.h, g_win.ctx);
    SetEvent(g_win.done);
    SetConsoleCtrlHandler(console_handler, FALSE);
    while (InterlockedCompareExchange(&g_win.handlers_busy, 0, 0) != 0)
        Sleep(1);
out:
    CloseHandle(g_win.done);
    g_win.done = NULL;
    return rc;
}

/* ------------------------------------------------------------------------------------- */

int svc_host_args(int argc, char **argv, int *argc_out, char ***argv_out, struct err *e)
{
    wchar_t **wargv;
    char **out = NULL;
    int n = 0, rc = 0;

    (void)argc;
    (void)argv;
    wargv = CommandLineToArgvW(GetCommandLineW(), &n);
    if (!wargv)
        return err_set(e, ERR_IO, "cannot read the command line (error %lu)",
                       (unsigned long)GetLastError());
    out = calloc((size_t)n + 1, sizeof(*out));
    if (!out) {
        rc = err_set(e, ERR_NOMEM, "cannot read the command line: out of memory");
        goto out;
    }
    for (int k = 0; k < n; k++) {
        int len =
            WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wargv[k], -1, NULL, 0, NULL, NULL);
        if (len <= 0 || !(out[k] = malloc((size_t)len)) ||
            WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wargv[k], -1, out[k], len, NULL,
                                NULL) != len) {
            rc = err_set(e, ERR_INVALID, "argument %d of the command line is not valid text", k);
            goto out;
        }
    }
    *argc_out = n;
    *argv_out = out; /* kept until the process ends */
    out = NULL;
out:
    if (out) {
        for (int k = 0; k < n; k++)
            free(out[k]);
        free(out);
    }
    LocalFree(wargv);
    return rc;
}

void svc_host_force_console(void)
{
    g_not_under_scm = 1;
}

int svc_host_run(const char *service_name, svc_run_fn fn, void *ctx, struct err *e)
{
    SERVICE_TABLE_ENTRYW table[2];
    DWORD last;
    int rc;

    memset(&g_win, 0, sizeof(g_win));
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, service_name, -1, g_win.name,
                             (int)(sizeof(g_win.name) / sizeof(g_win.name[0]))))
        return err_set(e, ERR_INVALID, "invalid service name '%s'", service_name);
    g_win.fn = fn;
    g_win.ctx = ctx;
    InitializeCriticalSection(&g_win.status_lock);
    if ((rc = svc_core_create(&g_win.h, service_name, SVC_MODE_SERVICE, NULL, NULL, e)) < 0)
        goto out;

    if (g_not_under_scm) {
        rc = run_console(e);
        goto out;
    }
    table[0].lpServiceName = g_win.name;
    table[0].lpServiceProc = service_main;
    table[1].lpServiceName = NULL;
    table[1].lpServiceProc = NULL;
    if (StartServiceCtrlDispatcherW(table)) {
        /* Returns once the service has reported SERVICE_STOPPED. */
        rc = g_win.err.code ? g_win.err.code : g_win.rc;
        if (g_win.err.code && e)
            *e = g_win.err;
    } else if ((last = GetLastError()) == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
        g_not_under_scm = 1;
        rc = run_console(e);
    } else {
        rc = err_set(e, ERR_IO, "cannot connect to the Service Control Manager (error %lu)",
                     (unsigned long)last);
    }
out:
    svc_core_destroy(g_win.h);
    g_win.h = NULL;
    DeleteCriticalSection(&g_win.status_lock);
    return rc;
}
