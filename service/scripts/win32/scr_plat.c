/*
 * win32/scr_plat.c - the script runner's Windows half (scr_plat.h): the owner and DACL check
 * of a script or folder (GetNamedSecurityInfoW), and a script run by the system directory's
 * powershell.exe, cmd.exe or reg.exe inside a job object that is terminated as a whole at
 * the timeout, its output read from an anonymous pipe. With run_as, as the user of a terminal
 * session: the user's token (service/session/win32/sess_token.h, as the session helpers
 * start), the user's environment block, CreateProcessAsUserW on winsta0\default.
 */
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <userenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "plat.h"
#include "scr_plat.h"
#include "win32/sess_token.h"
#include "win32/wide.h"

#define SCR_TRUSTED_INSTALLER L"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

/* Rights that let someone change what a script does. */
#define SCR_WRITE_RIGHTS                                                                           \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER |   \
     GENERIC_WRITE | GENERIC_ALL)

/* The SIDs that may own and write scripts: SYSTEM, Administrators, TrustedInstaller, us. */
struct trusted {
    BYTE system[SECURITY_MAX_SID_SIZE];
    BYTE admins[SECURITY_MAX_SID_SIZE];
    PSID installer;   /* LocalFree */
    TOKEN_USER *self; /* free */
};

static void trusted_free(struct trusted *t)
{
    if (t->installer)
        LocalFree(t->installer);
    free(t->self);
}

static int trusted_init(struct trusted *t, struct err *e)
{
    DWORD n = SECURITY_MAX_SID_SIZE;
    HANDLE tok = NULL;
    DWORD len = 0;

    memset(t, 0, sizeof(*t));
    if (!CreateWellKnownSid(WinLocalSystemSid, NULL, t->system, &n))
        return plat_win_fail(e, GetLastError(), "cannot build the SYSTEM SID", NULL);
    n = SECURITY_MAX_SID_SIZE;
    if (!CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, t->admins, &n))
        return plat_win_fail(e, GetLastError(), "cannot build the Administrators SID", NULL);
    if (!ConvertStringSidToSidW(SCR_TRUSTED_INSTALLER, &t->installer))
        t->installer = NULL;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        GetTokenInformation(tok, TokenUser, NULL, 0, &len);
        if (len && (t->self = malloc(len)) &&
            !GetTokenInformation(tok, TokenUser, t->self, len, &len)) {
            free(t->self);
            t->self = NULL;
        }
        CloseHandle(tok);
    }
    return 0;
}

static int is_trusted(const struct trusted *t, PSID sid)
{
    return EqualSid(sid, (PSID)t->system) || EqualSid(sid, (PSID)t->admins) ||
           (t->installer && EqualSid(sid, t->installer)) ||
           (t->self && EqualSid(sid, t->self->User.Sid));
}

/* "DOMAIN\name" or the S-1-... form. */
static void sid_name(PSID sid, char *out, size_t cap)
{
    wchar_t name[256], dom[256], *str = NULL;
    DWORD nn = 256, dn = 256;
    SID_NAME_USE use;
    char a[256] = "", b[256] = "";
    if (LookupAccountSidW(NULL, sid, name, &nn, dom, &dn, &use)) {
        plat_utf8_from_w_buf(dom, a, sizeof(a), NULL);
        plat_utf8_from_w_buf(name, b, sizeof(b), NULL);
        snprintf(out, cap, "%s%s%s", a, a[0] ? "\\" : "", b);
        return;
    }
    if (ConvertSidToStringSidW(sid, &str)) {
        plat_utf8_from_w_buf(str, out, cap, NULL);
        LocalFree(str);
        return;
    }
    snprintf(out, cap, "an unknown account");
}

int scr_plat_check_path(const char *path, int is_dir, struct err *e)
{
    wchar_t *w = plat_w_path(path, e);
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL;
    PACL dacl = NULL;
    struct trusted t;
    DWORD attrs, rc_w;
    char who[300];
    int rc = 0;

    memset(&t, 0, sizeof(t));
    if (!w)
        return e ? e->code : ERR_INVALID;
    attrs = GetFileAttributesW(w);
    if (attrs == INVALID_FILE_ATTRIBUTES) {
        rc = plat_win_fail(e, GetLastError(), "cannot read the attributes of", path);
        goto out;
    }
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) {
        rc = err_set(e, ERR_PERMISSION, "%s is a symbolic link or reparse point", path);
        goto out;
    }
    if (!!(attrs & FILE_ATTRIBUTE_DIRECTORY) != !!is_dir) {
        rc = err_set(e, ERR_PERMISSION, "%s is not a %s", path, is_dir ? "folder" : "file");
        goto out;
    }
    rc_w = GetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                                 OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                                 NULL, &dacl, NULL, &sd);
    if (rc_w != ERROR_SUCCESS) {
        rc = plat_win_fail(e, rc_w, "cannot read the owner and permissions of", path);
        goto out;
    }
    if ((rc = trusted_init(&t, e)) < 0)
        goto out;
    if (!owner || !is_trusted(&t, owner)) {
        if (owner)
            sid_name(owner, who, sizeof(who));
        rc = err_set(e, ERR_PERMISSION,
                     "%s is owned by %s, not by SYSTEM, Administrators or TrustedInstaller", path,
                     owner ? who : "nobody");
        goto out;
    }
    if (!dacl) {
        rc = err_set(e, ERR_PERMISSION, "%s has no DACL: every user may change it", path);
        goto out;
    }
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h = NULL;
        ACCESS_ALLOWED_ACE *a;
        if (!GetAce(dacl, i, (void **)&h) || !h)
            continue;
        if (h->AceFlags & INHERIT_ONLY_ACE)
            continue; /* applies to children only; they are checked themselves */
        if (h->AceType != ACCESS_ALLOWED_ACE_TYPE && h->AceType != ACCESS_ALLOWED_CALLBACK_ACE_TYPE)
            continue; /* deny ACEs only take rights away */
        a = (ACCESS_ALLOWED_ACE *)h;
        if ((a->Mask & SCR_WRITE_RIGHTS) && !is_trusted(&t, (PSID)&a->SidStart)) {
            sid_name((PSID)&a->SidStart, who, sizeof(who));
            rc = err_set(e, ERR_PERMISSION, "%s is writable by %s", path, who);
            goto out;
        }
    }
    rc = 0;
out:
    trusted_free(&t);
    if (sd)
        LocalFree(sd);
    free(w);
    return rc;
}

int scr_plat_supports(enum scr_kind k)
{
    return k == SCR_KIND_PS1 || k == SCR_KIND_CMD || k == SCR_KIND_REG;
}

/* The interpreter's absolute path and the command line (heap, both). */
static int build_command(const struct scr_spawn *s, wchar_t **app, wchar_t **cmd, struct err *e)
{
    wchar_t sys[MAX_PATH + 1];
    wchar_t *script = NULL;
    const wchar_t *exe, *fmt;
    size_t n;
    UINT sl = GetSystemDirectoryW(sys, MAX_PATH);
    int rc = 0;

    *app = *cmd = NULL;
    if (sl == 0 || sl >= MAX_PATH)
        return plat_win_fail(e, GetLastError(), "cannot find the system directory", NULL);
    if (strchr(s->script, '"'))
        return err_set(e, ERR_INVALID, "the script path %s holds a quote", s->script);
    if (!(script = plat_w_from_utf8(s->script, e)))
        return e ? e->code : ERR_INVALID;
    switch (s->kind) {
    case SCR_KIND_PS1:
        exe = L"\\WindowsPowerShell\\v1.0\\powershell.exe";
        fmt = L"\"%ls\" -NoProfile -NonInteractive -ExecutionPolicy Bypass -File \"%ls\"";
        break;
    case SCR_KIND_CMD:
        /* /d: no AutoRun commands; /s /c "..." keeps the quoted path as it is */
        exe = L"\\cmd.exe";
        fmt = L"\"%ls\" /d /s /c \"\"%ls\"\"";
        break;
    case SCR_KIND_REG:
        exe = L"\\reg.exe";
        fmt = L"\"%ls\" import \"%ls\"";
        break;
    default:
        rc = err_set(e, ERR_UNSUPPORTED, "this kind of script does not run on Windows");
        goto out;
    }
    n = wcslen(sys) + wcslen(exe) + 1;
    if (!(*app = malloc(n * sizeof(wchar_t)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    swprintf(*app, n, L"%ls%ls", sys, exe);
    n = 2 * wcslen(*app) + wcslen(script) + wcslen(fmt) + 16;
    if (!(*cmd = malloc(n * sizeof(wchar_t)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    swprintf(*cmd, n, fmt, *app, script);
out:
    if (rc < 0) {
        free(*app);
        *app = NULL;
    }
    free(script);
    return rc;
}

/* The agent's environment (or user_block, a user's) without the names env_add sets, then
 * env_add (double-NUL end). */
static wchar_t *build_env(char *const *env_add, const wchar_t *user_block, struct err *e)
{
    wchar_t *own = user_block ? NULL : GetEnvironmentStringsW(), *out = NULL, **add = NULL;
    const wchar_t *base = user_block ? user_block : own;
    size_t nadd = 0, total = 2, k = 0; /* two NULs at the end */

    for (char *const *p = env_add; p && *p; p++)
        nadd++;
    if (!(add = calloc(nadd + 1, sizeof(*add))))
        goto nomem;
    for (size_t i = 0; i < nadd; i++) {
        if (!(add[i] = plat_w_from_utf8(env_add[i], e)))
            goto fail;
        total += wcslen(add[i]) + 1;
    }
    for (const wchar_t *p = base; p && *p; p += wcslen(p) + 1)
        total += wcslen(p) + 1;
    if (!(out = malloc(total * sizeof(wchar_t))))
        goto nomem;
    for (const wchar_t *p = base; p && *p; p += wcslen(p) + 1) {
        const wchar_t *eq = wcschr(p + 1, L'='); /* "=C:=C:\x" entries start with '=' */
        size_t nl = eq ? (size_t)(eq - p) : wcslen(p);
        int replaced = 0;
        for (size_t i = 0; i < nadd && !replaced; i++)
            replaced = _wcsnicmp(add[i], p, nl) == 0 && add[i][nl] == L'=';
        if (!replaced) {
            memcpy(out + k, p, (wcslen(p) + 1) * sizeof(wchar_t));
            k += wcslen(p) + 1;
        }
    }
    for (size_t i = 0; i < nadd; i++) {
        memcpy(out + k, add[i], (wcslen(add[i]) + 1) * sizeof(wchar_t));
        k += wcslen(add[i]) + 1;
    }
    out[k] = L'\0';
    out[k + 1] = L'\0';
    goto done;
nomem:
    err_set(e, ERR_NOMEM, "out of memory");
fail:
    free(out);
    out = NULL;
done:
    for (size_t i = 0; add && i < nadd; i++) {
        if (add[i]) {
            SecureZeroMemory(add[i], wcslen(add[i]) * sizeof(wchar_t));
            free(add[i]);
        }
    }
    free(add);
    if (own)
        FreeEnvironmentStringsW(own);
    return out;
}

/* Reads what the pipe holds now (no blocking). Returns 0, or -1 when the pipe is closed. */
static int drain(HANDLE rd, struct scr_exit *x)
{
    char buf[4096];
    for (;;) {
        DWORD avail = 0, got = 0;
        if (!PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL))
            return -1;
        if (avail == 0)
            return 0;
        if (!ReadFile(rd, buf, avail < sizeof(buf) ? avail : (DWORD)sizeof(buf), &got, NULL))
            return -1;
        scr_outbuf_add(&x->out, buf, got);
        if (got < sizeof(buf))
            return 0;
    }
}

/* 1 when buf[0..len) is valid UTF-8 (a cut sequence at the very end counts as valid). */
static int valid_utf8(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (n == 9)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len)
                return 1;
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        }
        i += n + 1;
    }
    return 1;
}

/* Output in the OEM code page (cmd.exe, a redirected PowerShell) becomes UTF-8, in place. */
static void oem_to_utf8(struct scr_outbuf *b)
{
    int wn, un;
    wchar_t *w = NULL;
    size_t room = b->cap + 1024 - 1; /* scr_outbuf_init's allocation, less the NUL */
    if (b->len == 0 || valid_utf8((const unsigned char *)b->data, b->len))
        return;
    wn = MultiByteToWideChar(CP_OEMCP, 0, b->data, (int)b->len, NULL, 0);
    if (wn <= 0 || !(w = malloc((size_t)wn * sizeof(wchar_t))))
        return;
    MultiByteToWideChar(CP_OEMCP, 0, b->data, (int)b->len, w, wn);
    /* fewer characters until the UTF-8 form fits the buffer */
    while (wn > 0 && (un = WideCharToMultiByte(CP_UTF8, 0, w, wn, NULL, 0, NULL, NULL)) > 0 &&
           (size_t)un > room)
        wn -= (int)((size_t)un - room + 2) / 3 + 1;
    if (wn > 0 &&
        (un = WideCharToMultiByte(CP_UTF8, 0, w, wn, b->data, (int)room, NULL, NULL)) > 0) {
        b->len = (size_t)un;
        b->data[b->len] = '\0';
    }
    free(w);
}

/* The SID of a session's user (LocalFree). */
static int user_sid(const struct scr_run_as *run_as, PSID *sid, struct err *e)
{
    HANDLE token = NULL;
    wchar_t *str = NULL;
    int rc;

    *sid = NULL;
    if ((rc = sess_user_token(run_as->session_id, "run storage hooks as the user", &token, e)) <
            0 ||
        (rc = sess_token_sid(token, &str, e)) < 0)
        goto out;
    if (!ConvertStringSidToSidW(str, sid)) {
        *sid = NULL;
        rc = plat_win_fail(e, GetLastError(), "cannot read the SID of user", run_as->user);
    }
out:
    if (str)
        LocalFree(str);
    if (token)
        CloseHandle(token);
    return rc;
}

int scr_plat_run_as_check(const struct scr_run_as *run_as, struct err *e)
{
    HANDLE token = NULL;
    int rc = sess_user_token(run_as->session_id, "run storage hooks as the user", &token, e);
    if (rc == 0)
        CloseHandle(token);
    return rc;
}

int scr_plat_grant_read(const char *path, const struct scr_run_as *run_as, struct err *e)
{
    wchar_t *w = NULL;
    PSID sid = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL, merged = NULL;
    EXPLICIT_ACCESSW ea;
    DWORD rc_w;
    int rc = 0;

    if (!(w = plat_w_path(path, e)))
        return e ? e->code : ERR_INVALID;
    if ((rc = user_sid(run_as, &sid, e)) < 0)
        goto out;
    rc_w = GetNamedSecurityInfoW(w, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl,
                                 NULL, &sd);
    if (rc_w != ERROR_SUCCESS) {
        rc = plat_win_fail(e, rc_w, "cannot read the permissions of", path);
        goto out;
    }
    memset(&ea, 0, sizeof(ea));
    ea.grfAccessPermissions = GENERIC_READ | GENERIC_EXECUTE;
    ea.grfAccessMode = GRANT_ACCESS;
    ea.grfInheritance = NO_INHERITANCE;
    ea.Trustee.TrusteeForm = TRUSTEE_IS_SID;
    ea.Trustee.TrusteeType = TRUSTEE_IS_USER;
    ea.Trustee.ptstrName = (LPWSTR)sid;
    rc_w = SetEntriesInAclW(1, &ea, dacl, &merged);
    if (rc_w == ERROR_SUCCESS)
        rc_w = SetNamedSecurityInfoW(
            w, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            NULL, NULL, merged, NULL);
    if (rc_w != ERROR_SUCCESS)
        rc = plat_win_fail(e, rc_w, "cannot let the user read", path);
out:
    if (merged)
        LocalFree(merged);
    if (sd)
        LocalFree(sd);
    if (sid)
        LocalFree(sid);
    free(w);
    return rc;
}

int scr_plat_run(const struct scr_spawn *s, struct scr_exit *x, struct err *e)
{
    wchar_t *app = NULL, *cmd = NULL, *env = NULL, *wcwd = NULL;
    HANDLE rd = NULL, wr = NULL, nul = INVALID_HANDLE_VALUE, job = NULL, token = NULL;
    void *user_env = NULL;
    BOOL started;
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    STARTUPINFOEXW si;
    PROCESS_INFORMATION pi = {0};
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
    SIZE_T attr_size = 0;
    HANDLE inherit[2];
    ULONGLONG deadline;
    DWORD code = 0;
    int rc = 0, pipe_open = 1;

    x->exit_code = -1;
    x->timed_out = x->cancelled = 0;
    if ((rc = build_command(s, &app, &cmd, e)) < 0)
        goto out;
    if (s->cwd && !(wcwd = plat_w_from_utf8(s->cwd, e))) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    if (s->run_as) {
        if ((rc = sess_user_token(s->run_as->session_id, "run storage hooks as the user", &token,
                                  e)) < 0)
            goto out;
        if (!CreateEnvironmentBlock(&user_env, token, FALSE)) {
            user_env = NULL;
            rc = plat_win_fail(e, GetLastError(), "cannot build the environment of user",
                               s->run_as->user);
            goto out;
        }
    }
    if (!(env = build_env(s->env_add, user_env, e))) {
        rc = e ? e->code : ERR_NOMEM;
        goto out;
    }
    if (!CreatePipe(&rd, &wr, &sa, 0) || !SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0)) {
        rc = plat_win_fail(e, GetLastError(), "cannot create the output pipe", NULL);
        goto out;
    }
    nul = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING,
                      0, NULL);
    if (nul == INVALID_HANDLE_VALUE) {
        rc = plat_win_fail(e, GetLastError(), "cannot open", "NUL");
        goto out;
    }
    if (!(job = CreateJobObjectW(NULL, NULL))) {
        rc = plat_win_fail(e, GetLastError(), "cannot create a job object", NULL);
        goto out;
    }
    /* Only these two handles are inherited. */
    InitializeProcThreadAttributeList(NULL, 1, 0, &attr_size);
    if (!(attrs = malloc(attr_size)) ||
        !InitializeProcThreadAttributeList(attrs, 1, 0, &attr_size)) {
        free(attrs);
        attrs = NULL;
        rc = err_set(e, ERR_NOMEM, "cannot prepare the process attributes");
        goto out;
    }
    inherit[0] = wr;
    inherit[1] = nul;
    if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit,
                                   sizeof(inherit), NULL, NULL)) {
        rc = plat_win_fail(e, GetLastError(), "cannot set the inherited handles", NULL);
        goto out;
    }
    memset(&si, 0, sizeof(si));
    si.StartupInfo.cb = sizeof(si);
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = nul;
    si.StartupInfo.hStdOutput = wr;
    si.StartupInfo.hStdError = wr;
    si.lpAttributeList = attrs;
    if (token) {
        si.StartupInfo.lpDesktop = L"winsta0\\default";
        started = CreateProcessAsUserW(token, app, cmd, NULL, NULL, TRUE,
                                       CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT |
                                           CREATE_NO_WINDOW | EXTENDED_STARTUPINFO_PRESENT,
                                       env, wcwd, &si.StartupInfo, &pi);
    } else {
        started = CreateProcessW(app, cmd, NULL, NULL, TRUE,
                                 CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW |
                                     EXTENDED_STARTUPINFO_PRESENT,
                                 env, wcwd, &si.StartupInfo, &pi);
    }
    if (!started) {
        char a[MAX_PATH * 3] = "";
        plat_utf8_from_w_buf(app, a, sizeof(a), NULL);
        rc = plat_win_fail(e, GetLastError(), "cannot start", a);
        goto out;
    }
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
        rc = plat_win_fail(e, GetLastError(), "cannot put the script into a job object", NULL);
        TerminateProcess(pi.hProcess, 1);
        goto out;
    }
    ResumeThread(pi.hThread);
    CloseHandle(wr); /* ours: the pipe ends when every process holding it ends */
    wr = NULL;

    deadline = GetTickCount64() + s->timeout_ms;
    for (;;) {
        DWORD avail = 0;
        if (pipe_open && !PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL))
            pipe_open = 0;
        if (avail && drain(rd, x) < 0)
            pipe_open = 0;
        if (WaitForSingleObject(pi.hProcess, avail ? 0 : 50) == WAIT_OBJECT_0)
            break;
        if (s->cancelled && s->cancelled(s->cancel_ctx)) {
            x->cancelled = 1;
            break;
        }
        if (GetTickCount64() >= deadline) {
            x->timed_out = 1;
            break;
        }
    }
    if (x->timed_out || x->cancelled) {
        TerminateJobObject(job, 1);
        WaitForSingleObject(pi.hProcess, 10000);
    }
    if (pipe_open)
        drain(rd, x);
    if (GetExitCodeProcess(pi.hProcess, &code))
        x->exit_code = (int)code;
    oem_to_utf8(&x->out);
out:
    if (pi.hThread)
        CloseHandle(pi.hThread);
    if (pi.hProcess)
        CloseHandle(pi.hProcess);
    if (attrs) {
        DeleteProcThreadAttributeList(attrs);
        free(attrs);
    }
    if (job)
        CloseHandle(job);
    if (nul != INVALID_HANDLE_VALUE)
        CloseHandle(nul);
    if (rd)
        CloseHandle(rd);
    if (wr)
        CloseHandle(wr);
    if (env) {
        size_t n = 0;
        while (env[n] || env[n + 1])
            n++;
        SecureZeroMemory(env, (n + 2) * sizeof(wchar_t));
        free(env);
    }
    if (user_env)
        DestroyEnvironmentBlock(user_env);
    if (token)
        CloseHandle(token);
    free(app);
    free(cmd);
    free(wcwd);
    return rc;
}
