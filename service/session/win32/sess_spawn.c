/*
 * sess_spawn.c (Windows) - starts a session helper (sess_plat.h) as the session's user:
 * WTSQueryUserToken (retried on ERROR_NO_TOKEN), the user's environment block, a private
 * named pipe (random name, DACL SYSTEM + the user's SID, first instance, remote clients
 * rejected, overlapped) whose client end alone - with, when there is one, a read-only handle to
 * the shared window (pshm.h) - is inherited through PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
 * CreateProcessAsUserW on winsta0\default (suspended), the process put in the manager's job
 * object (kill on job close), then resumed.
 */
#include <windows.h>

#include <sddl.h>
#include <userenv.h>
#include <wtsapi32.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "pchan.h"
#include "plat.h"
#include "pshm.h"
#include "sess_plat.h"
#include "win32/sess_token.h"
#include "win32/pchan_win.h"
#include "win32/wide.h"

struct sess_proc {
    HANDLE process;
    DWORD pid;
    int exited;
    int code;
};

/* One job for every helper: closing it (the agent ends, even by a crash) kills them all. */
static INIT_ONCE sess_job_once = INIT_ONCE_STATIC_INIT;
static HANDLE sess_job;
static DWORD sess_job_error;

static BOOL CALLBACK sess_job_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
    HANDLE job;

    (void)once;
    (void)param;
    (void)ctx;
    job = CreateJobObjectW(NULL, NULL);
    if (!job) {
        sess_job_error = GetLastError();
        return TRUE;
    }
    memset(&li, 0, sizeof(li));
    li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof(li))) {
        sess_job_error = GetLastError();
        CloseHandle(job);
        return TRUE;
    }
    sess_job = job;
    return TRUE;
}

/* Appends advice to e's message (when it fits). */
static void sess_advise(struct err *e, const char *advice)
{
    if (e) {
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof(e->msg) - n, "; %s", advice);
    }
}

int sess_spawn(const struct sesm_config *cfg, const struct sess_info *s, struct pshm *shared,
               struct sess_proc **proc, struct pchan **chan, struct err *e)
{
    char path[4096];
    wchar_t *wpath = NULL, *sid = NULL, *cmd = NULL;
    wchar_t prefix[48], sddl[256];
    HANDLE token = NULL, server = INVALID_HANDLE_VALUE, client = INVALID_HANDLE_VALUE;
    void *env = NULL;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
    SIZE_T attrs_size = 0;
    STARTUPINFOEXW si;
    PROCESS_INFORMATION pi;
    struct sess_proc *p = NULL;
    size_t cmd_cap;
    wchar_t uploads[32] = L"", window[80] = L"";
    HANDLE inherit[2];
    intptr_t shm = 0;
    int rc = 0, attrs_init = 0;

    *proc = NULL;
    *chan = NULL;
    memset(&pi, 0, sizeof(pi));

    if (cfg->helper_path[0]) {
        snprintf(path, sizeof(path), "%s", cfg->helper_path);
    } else {
        if ((rc = plat_exe_dir(path, sizeof(path) - 24, e)) < 0)
            goto out;
        strcat(path, "\\session_helper.exe");
    }
    if (!(wpath = plat_w_from_utf8(path, e))) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    if (GetFileAttributesW(wpath) == INVALID_FILE_ATTRIBUTES) {
        rc = plat_win_fail(e, GetLastError(), "cannot find the session helper", path);
        sess_advise(e, "set session_helper in the configuration or install it beside the agent");
        goto out;
    }

    InitOnceExecuteOnce(&sess_job_once, sess_job_init, NULL, NULL);
    if (!sess_job) {
        rc = plat_win_fail(e, sess_job_error, "cannot create the job object for helpers", NULL);
        goto out;
    }

    if ((rc = sess_user_token(s->id, "start helpers", &token, e)) < 0)
        goto out;
    if (!CreateEnvironmentBlock(&env, token, FALSE)) {
        rc = plat_win_fail(e, GetLastError(), "cannot build the environment of user", s->user);
        goto out;
    }
    if ((rc = sess_token_sid(token, &sid, e)) < 0)
        goto out;

    /* The private pipe: SYSTEM and the session's user only; the helper's end inheritable. */
    _snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]), L"D:P(A;;GA;;;SY)(A;;GA;;;%ls)", sid);
    sddl[sizeof(sddl) / sizeof(sddl[0]) - 1] = 0;
    _snwprintf(prefix, sizeof(prefix) / sizeof(prefix[0]), L"kasm-helper-%u-", (unsigned)s->id);
    prefix[sizeof(prefix) / sizeof(prefix[0]) - 1] = 0;
    if ((rc = pchan_win_private_pipe(prefix, sddl, 1, &server, &client, e)) < 0) {
        err_prefix(e, "the helper's pipe");
        goto out;
    }

    /* Only the client end (and the window's read-only handle) is inherited. */
    inherit[0] = client;
    if (shared) {
        if ((rc = pshm_share(shared, &shm, e)) < 0)
            goto out;
        inherit[1] = (HANDLE)shm;
        _snwprintf(window, sizeof(window) / sizeof(window[0]), L" --shared %llu --shared-size %llu",
                   (unsigned long long)(uintptr_t)shm, (unsigned long long)pshm_size(shared));
        window[sizeof(window) / sizeof(window[0]) - 1] = 0;
    }
    InitializeProcThreadAttributeList(NULL, 1, 0, &attrs_size);
    attrs = malloc(attrs_size);
    if (!attrs) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!InitializeProcThreadAttributeList(attrs, 1, 0, &attrs_size)) {
        rc = plat_win_fail(e, GetLastError(), "cannot prepare the helper's start", NULL);
        goto out;
    }
    attrs_init = 1;
    if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit,
                                   (shm ? 2 : 1) * sizeof(HANDLE), NULL, NULL)) {
        rc = plat_win_fail(e, GetLastError(), "cannot prepare the helper's start", NULL);
        goto out;
    }

    cmd_cap = wcslen(wpath) + 256;
    cmd = malloc(cmd_cap * sizeof(wchar_t));
    if (!cmd) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (cfg->upload_max_in_flight)
        _snwprintf(uploads, sizeof(uploads) / sizeof(uploads[0]), L" --max-uploads %u",
                   (unsigned)cfg->upload_max_in_flight);
    _snwprintf(cmd, cmd_cap, L"\"%ls\" --channel %llu --session-id %u%ls%ls%ls", wpath,
               (unsigned long long)(uintptr_t)client, (unsigned)s->id, window,
               cfg->debug ? L" --debug" : L"", uploads);
    cmd[cmd_cap - 1] = 0;

    memset(&si, 0, sizeof(si));
    si.StartupInfo.cb = sizeof(si);
    si.StartupInfo.lpDesktop = L"winsta0\\default";
    si.lpAttributeList = attrs;
    if (!CreateProcessAsUserW(token, wpath, cmd, NULL, NULL, TRUE,
                              CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT |
                                  CREATE_NO_WINDOW | CREATE_SUSPENDED,
                              env, NULL, &si.StartupInfo, &pi)) {
        rc = plat_win_fail(e, GetLastError(), "cannot start the session helper", path);
        goto out;
    }
    if (!AssignProcessToJobObject(sess_job, pi.hProcess)) {
        rc = plat_win_fail(e, GetLastError(), "cannot put the session helper in the job object",
                           NULL);
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
        goto out;
    }
    if (ResumeThread(pi.hThread) == (DWORD)-1) {
        rc = plat_win_fail(e, GetLastError(), "cannot resume the session helper", NULL);
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
        goto out;
    }
    /* The helper has its copy; ours would keep the pipe open after the helper died. */
    CloseHandle(client);
    client = INVALID_HANDLE_VALUE;

    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
        goto out;
    }
    p->process = pi.hProcess;
    p->pid = pi.dwProcessId;
    pi.hProcess = NULL;
    rc = pchan_from_os((intptr_t)server, chan, e);
    server = INVALID_HANDLE_VALUE; /* the channel owns it, also on failure */
    if (rc < 0) {
        TerminateProcess(p->process, 1);
        WaitForSingleObject(p->process, 5000);
        goto out;
    }
    *proc = p;
    p = NULL;
out:
    if (p) {
        CloseHandle(p->process);
        free(p);
    }
    if (pi.hThread)
        CloseHandle(pi.hThread);
    if (pi.hProcess)
        CloseHandle(pi.hProcess);
    free(cmd);
    if (attrs_init)
        DeleteProcThreadAttributeList(attrs);
    free(attrs);
    if (client != INVALID_HANDLE_VALUE)
        CloseHandle(client);
    if (shm)
        pshm_share_done(shared, shm); /* the helper has its own copy */
    if (server != INVALID_HANDLE_VALUE)
        CloseHandle(server);
    if (sid)
        LocalFree(sid);
    if (env)
        DestroyEnvironmentBlock(env);
    if (token)
        CloseHandle(token);
    free(wpath);
    return rc;
}

unsigned long sess_proc_pid(const struct sess_proc *p)
{
    return p ? (unsigned long)p->pid : 0;
}

int sess_proc_wait(struct sess_proc *p, uint32_t timeout_ms, int *exit_code)
{
    DWORD code = 0;

    if (!p->exited) {
        if (WaitForSingleObject(p->process, timeout_ms == UINT32_MAX ? INFINITE : timeout_ms) !=
            WAIT_OBJECT_0)
            return 0;
        p->exited = 1;
        p->code = GetExitCodeProcess(p->process, &code) ? (int)code : -1;
    }
    if (exit_code)
        *exit_code = p->code;
    return 1;
}

void sess_proc_kill(struct sess_proc *p)
{
    if (p && !p->exited)
        TerminateProcess(p->process, 1);
}

void sess_proc_free(struct sess_proc *p)
{
    if (!p)
        return;
    if (!p->exited && WaitForSingleObject(p->process, 5000) != WAIT_OBJECT_0)
        TerminateProcess(p->process, 1);
    CloseHandle(p->process);
    free(p);
}
