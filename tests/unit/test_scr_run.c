/*
 * test_scr_run.c - real scripts through the script runner (service/scripts/): natively .sh
 * scripts through /bin/sh, under Wine .cmd scripts through cmd.exe. Order and skip rules,
 * KASM_* variables (also values built to break out of quotes), the timeout killing a script
 * and its child, unsafe scripts and folders refused, the output cap, and a failing script's
 * output logged with the token redacted. The log is captured through the log hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit.h"

#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "scr.h"
#include "testdir.h"

#ifdef _WIN32
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>

/* Gives path the DACL of the SDDL string (protected); 0 or -1. */
static int set_dacl(const char *path, const wchar_t *sddl)
{
    wchar_t w[1100];
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    BOOL present = FALSE, def = FALSE;
    DWORD rc;
    if (!MultiByteToWideChar(CP_UTF8, 0, path, -1, w, 1100) ||
        !ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
        return -1;
    GetSecurityDescriptorDacl(sd, &present, &dacl, &def);
    rc = SetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                               DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                               NULL, NULL, dacl, NULL);
    LocalFree(sd);
    return rc == ERROR_SUCCESS ? 0 : -1;
}
#else
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#define SECRET "s3cr3t-session-token-value"

/* ---- the captured log ---- */

static struct plat_mutex *log_lock;
static char *log_text;
static size_t log_len;

static void hook(const struct log_record *rec, void *ctx)
{
    size_t n = strlen(rec->message);
    char *p;
    (void)ctx;
    plat_mutex_lock(log_lock);
    if ((p = realloc(log_text, log_len + n + 2))) {
        log_text = p;
        memcpy(log_text + log_len, rec->message, n);
        log_len += n;
        log_text[log_len++] = '\n';
        log_text[log_len] = '\0';
    }
    plat_mutex_unlock(log_lock);
}

static int log_has(const char *needle)
{
    int r;
    plat_mutex_lock(log_lock);
    r = log_text && strstr(log_text, needle) != NULL;
    plat_mutex_unlock(log_lock);
    return r;
}

struct fx {
    char root[1024]; /* script_path */
    char dir[1100];  /* root/service_startup */
    char out[1100];  /* root/out.txt: what scripts write */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || td_make("scr", f->root, sizeof(f->root)) < 0)
        return -1;
    plat_path_restrict_to_admins(f->root, NULL);
#ifndef _WIN32
    chmod(f->root, 0755);
#endif
    fs_join(f->root, "service_startup", f->dir, sizeof(f->dir), NULL);
    fs_join(f->root, "out.txt", f->out, sizeof(f->out), NULL);
    plat_dir_create(f->dir, NULL);
    plat_path_restrict_to_admins(f->dir, NULL);
#ifndef _WIN32
    chmod(f->dir, 0755);
#endif
    if (!log_lock && plat_mutex_create(&log_lock, NULL) < 0)
        return -1;
    free(log_text);
    log_text = NULL;
    log_len = 0;
    log_set_level(LOG_LEVEL_DEBUG);
    log_set_hook(hook, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    log_set_hook(NULL, NULL);
    td_remove_tree(f->root);
    free(f);
    return 0;
}

static void put_script(const struct fx *f, const char *name, const char *text)
{
    char path[1300];
    assert_int_equal(fs_join(f->dir, name, path, sizeof(path), NULL), 0);
    assert_int_equal(fs_write_atomic(path, text, strlen(text), FS_WRITE_PRIVATE, NULL), 0);
#ifndef _WIN32
    chmod(path, 0700);
#endif
}

static char *read_out(const struct fx *f)
{
    char *s = NULL;
    if (fs_read_all(f->out, 1 << 20, &s, NULL, NULL) < 0)
        return NULL;
    return s;
}

static const struct scr_result *find(const struct scr_results *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->items[i].name, name) == 0)
            return &r->items[i];
    return NULL;
}

#ifdef _WIN32
#define EXT ".cmd"
#else
#define EXT ".sh"
#endif

static void order_skips_and_variables(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"kasm_id", "kid-42", 0},
                             {"username", "bob", 0},
                             {"jwt_token", SECRET, 1},
                             {"out", f->out, 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    char *got;
#ifdef _WIN32
    put_script(f, "20_b.cmd",
               "@echo off\r\n>>\"%KASM_OUT%\" echo b %KASM_KASM_ID% %KASM_USERNAME%\r\n");
    put_script(f, "10_a.cmd", "@echo off\r\n>>\"%KASM_OUT%\" echo a %KASM_KASM_ID%\r\n");
    put_script(f, "15_c.bat", "@echo off\r\n>>\"%KASM_OUT%\" echo c\r\n");
#else
    put_script(f, "20_b.sh", "echo \"b $KASM_KASM_ID $KASM_USERNAME\" >> \"$KASM_OUT\"\n");
    put_script(f, "10_a.sh", "echo \"a $KASM_KASM_ID\" >> \"$KASM_OUT\"\n");
    put_script(f, "15_c.sh", "echo c >> \"$KASM_OUT\"\n");
#endif
    put_script(f, "05_x_tmp.ps1", "exit 1\r\n");
    put_script(f, "readme.txt", "not a script\n");
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 4, &o, &res, &e), 0);
    got = read_out(f);
    assert_non_null(got);
#ifdef _WIN32
    assert_string_equal(got, "a kid-42\r\nc\r\nb kid-42 bob\r\n");
#else
    assert_string_equal(got, "a kid-42\nc\nb kid-42 bob\n");
#endif
    free(got);
    assert_int_equal(res.count, 5);
    assert_string_equal(res.items[0].name, "05_x_tmp.ps1");
    assert_int_equal(res.items[0].status, SCR_SKIPPED);
    assert_int_equal(find(&res, "10_a" EXT)->status, SCR_OK);
    assert_int_equal(find(&res, "readme.txt")->status, SCR_SKIPPED);
    assert_true(log_has("readme.txt: skipped (not a script"));
    assert_true(log_has("10_a" EXT ": exit code 0"));
    assert_false(log_has(SECRET));
    scr_results_free(&res);
}

static void injection_values_arrive_verbatim(void **state)
{
    struct fx *f = *state;
#ifdef _WIN32
    /* cmd.exe expands %VAR% once: the value's own % and quotes stay literal text. */
    const char *evil = "a\"&echo pwned>pwned.txt&\"' $(x) `y`";
#else
    const char *evil = "a'\"; touch pwned; echo \"$(touch pwned2)`touch pwned3` \\ end";
#endif
    struct scr_var vars[] = {{"username", evil, 0}, {"out", f->out, 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    char *got, pwned[1300];
#ifdef _WIN32
    put_script(f, "a.cmd",
               "@echo off\r\nsetlocal EnableDelayedExpansion\r\n"
               ">\"%KASM_OUT%\" echo !KASM_USERNAME!\r\n");
#else
    put_script(f, "a.sh",
               "cd \"$(dirname \"$KASM_OUT\")\"; printf '%s\\n' \"$KASM_USERNAME\" > "
               "\"$KASM_OUT\"\n");
#endif
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 2, &o, &res, &e), 0);
    got = read_out(f);
    assert_non_null(got);
    {
        size_t n = strlen(got);
        while (n && (got[n - 1] == '\n' || got[n - 1] == '\r'))
            got[--n] = '\0';
    }
    assert_string_equal(got, evil);
    free(got);
    fs_join(f->root, "pwned", pwned, sizeof(pwned), NULL);
    assert_int_equal(plat_path_stat(pwned, &(struct plat_file_info){0}, NULL), ERR_NOT_FOUND);
    fs_join(f->root, "pwned.txt", pwned, sizeof(pwned), NULL);
    assert_int_equal(plat_path_stat(pwned, &(struct plat_file_info){0}, NULL), ERR_NOT_FOUND);
    scr_results_free(&res);
}

static void failing_script_output_logged_token_redacted(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"jwt_token", SECRET, 1}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
#ifdef _WIN32
    put_script(f, "fail.cmd",
               "@echo off\r\necho about to fail\r\necho raw %KASM_JWT_TOKEN%\r\n"
               "echo token=%KASM_JWT_TOKEN% 1>&2\r\nexit /b 7\r\n");
#else
    put_script(f, "fail.sh",
               "echo about to fail\necho \"raw $KASM_JWT_TOKEN\"\n"
               "echo \"token=$KASM_JWT_TOKEN\" >&2\nexit 7\n");
#endif
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.items[0].status, SCR_FAILED);
    assert_int_equal(res.items[0].exit_code, 7);
    assert_true(log_has("fail" EXT ": failed with exit code 7"));
    assert_true(log_has("fail" EXT "| about to fail"));
    assert_true(log_has("fail" EXT "| raw <redacted>"));
    assert_false(log_has(SECRET));
    scr_results_free(&res);
}

static void timeout_kills_script_and_child(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"out", f->out, 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
#ifdef _WIN32
    char child[1300];
    struct plat_file_info a, b;
    /* The child keeps appending to out.txt until it is killed with the job. */
    fs_join(f->root, "child.cmd", child, sizeof(child), NULL);
    {
        const char *c = "@echo off\r\n:loop\r\n>>\"%KASM_OUT%\" echo tick\r\ngoto loop\r\n";
        assert_int_equal(fs_write_atomic(child, c, strlen(c), 0, NULL), 0);
    }
    put_script(f, "hang.cmd",
               "@echo off\r\nstart \"\" /b cmd /d /c \"%~dp0..\\child.cmd\"\r\n"
               ":loop\r\ngoto loop\r\n");
#else
    put_script(f, "hang.sh", "sleep 1000 &\necho $! > \"$KASM_OUT\"\nwait\n");
#endif
    o.timeout_ms = 2000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.items[0].status, SCR_TIMEOUT);
    assert_true(
        log_has("hang" EXT ": timed out after 2 s; it was killed with its child processes"));
#ifdef _WIN32
    /* After the kill, out.txt stops growing. */
    plat_sleep_ms(500);
    assert_int_equal(plat_path_stat(f->out, &a, NULL), 0);
    plat_sleep_ms(1500);
    assert_int_equal(plat_path_stat(f->out, &b, NULL), 0);
    assert_int_equal(a.size, b.size);
#else
    {
        char *pid_text = read_out(f), procf[64];
        long pid;
        int gone = 0;
        assert_non_null(pid_text);
        pid = strtol(pid_text, NULL, 10);
        free(pid_text);
        assert_true(pid > 1);
        snprintf(procf, sizeof(procf), "/proc/%ld/stat", pid);
        /* gone, or a zombie waiting for its new parent to reap it */
        for (int i = 0; i < 200 && !gone; i++) {
            char *st = NULL;
            if (fs_read_all(procf, 4096, &st, NULL, NULL) < 0) {
                gone = 1;
            } else {
                const char *p = strrchr(st, ')');
                gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
                free(st);
            }
            if (!gone)
                plat_sleep_ms(50);
        }
        assert_true(gone);
    }
#endif
    scr_results_free(&res);
}

static void output_is_capped(void **state)
{
    struct fx *f = *state;
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    size_t before;
#ifdef _WIN32
    put_script(f, "big.cmd",
               "@echo off\r\nfor /l %%i in (1,1,3000) do echo line %%i xxxxxxxxxxxx"
               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
               "exit /b 3\r\n");
#else
    put_script(f, "big.sh", "head -c 10000000 /dev/zero | tr '\\0' 'x'\necho\nexit 3\n");
#endif
    o.timeout_ms = 120000;
    o.output_cap = 16 * 1024;
    assert_int_equal(scr_run_dir(f->root, "service_startup", NULL, 0, &o, &res, &e), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.items[0].status, SCR_FAILED);
    assert_int_equal(res.items[0].exit_code, 3);
    assert_true(log_has("more bytes of output not kept"));
    plat_mutex_lock(log_lock);
    before = log_len;
    plat_mutex_unlock(log_lock);
    /* all the kept output is logged (in pieces), and little more */
    assert_true(before > 16 * 1024);
    assert_true(before < 16 * 1024 + 8 * 1024);
    scr_results_free(&res);
}

static void unsafe_script_refused(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"out", f->out, 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    char path[1300];
    char *got;
#ifdef _WIN32
    put_script(f, "gw.cmd", "@echo off\r\n>>\"%KASM_OUT%\" echo ran\r\n");
    put_script(f, "ok.cmd", "@echo off\r\n>>\"%KASM_OUT%\" echo ok\r\n");
    fs_join(f->dir, "gw.cmd", path, sizeof(path), NULL);
    /* SYSTEM and Administrators full control, Everyone may write. (Wine derives DACLs from
     * the Unix mode bits, so of the grants to ordinary users only Everyone's shows there;
     * docs/scripts.md lists the checks only a real Windows host can show.) */
    assert_int_equal(set_dacl(path, L"D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;WD)"), 0);
#else
    put_script(f, "gw.sh", "echo ran >> \"$KASM_OUT\"\n");
    put_script(f, "ok.sh", "echo ok >> \"$KASM_OUT\"\n");
    fs_join(f->dir, "gw.sh", path, sizeof(path), NULL);
    chmod(path, 0770);
#endif
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
    assert_int_equal(find(&res, "gw" EXT)->status, SCR_REFUSED);
    assert_int_equal(find(&res, "ok" EXT)->status, SCR_OK);
    assert_true(log_has("gw" EXT ": refused:"));
#ifdef _WIN32
    assert_true(log_has("Everyone"));
#else
    assert_true(log_has("is writable by its group"));
#endif
    got = read_out(f);
    assert_non_null(got);
    assert_non_null(strstr(got, "ok"));
    assert_null(strstr(got, "ran"));
    free(got);
    scr_results_free(&res);
#ifdef _WIN32
    /* read-only for everyone else: fine */
    assert_int_equal(set_dacl(path, L"D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;WD)"), 0);
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
    assert_int_equal(find(&res, "gw" EXT)->status, SCR_OK);
    scr_results_free(&res);
#else
    /* world-writable */
    chmod(path, 0702);
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
    assert_int_equal(find(&res, "gw" EXT)->status, SCR_REFUSED);
    assert_true(log_has("is writable by every user"));
    scr_results_free(&res);
#endif
}

static void unsafe_folder_refused(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"out", f->out, 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
#ifdef _WIN32
    put_script(f, "a.cmd", "@echo off\r\n>>\"%KASM_OUT%\" echo ran\r\n");
    /* Everyone may add files to the folder */
    assert_int_equal(set_dacl(f->dir, L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;FA;;;WD)"), 0);
#else
    put_script(f, "a.sh", "echo ran >> \"$KASM_OUT\"\n");
    chmod(f->dir, 0777);
#endif
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e),
                     ERR_PERMISSION);
    assert_int_equal(res.count, 0);
    assert_true(log_has("service_startup scripts refused"));
    assert_int_equal(plat_path_stat(f->out, &(struct plat_file_info){0}, NULL), ERR_NOT_FOUND);
#ifdef _WIN32
    plat_path_restrict_to_admins(f->dir, NULL);
#else
    chmod(f->dir, 0755);
#endif
}

static void runs_in_its_folder(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"out", f->out, 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    char *got;
#ifdef _WIN32
    /* cd prints the folder; 0x82 is e-acute in the OEM code page 437 of Wine's en-US */
    put_script(f, "w.cmd", "@echo off\r\n>\"%KASM_OUT%\" cd\r\necho caf\x82 1\r\nexit /b 1\r\n");
#else
    put_script(f, "w.sh", "pwd > \"$KASM_OUT\"\n");
#endif
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
    got = read_out(f);
    assert_non_null(got);
    {
        size_t n = strlen(got);
        while (n && (got[n - 1] == '\n' || got[n - 1] == '\r'))
            got[--n] = '\0';
    }
#ifdef _WIN32
    /* Wine may print the folder with another letter case */
    assert_int_equal(strlen(got), strlen(f->dir));
    assert_true(log_has("w.cmd| caf\xc3\xa9 1")); /* converted to UTF-8 */
#else
    assert_string_equal(got, f->dir);
#endif
    free(got);
    scr_results_free(&res);
}

/* run_as: the script runs as the user of a session (storage hooks). POSIX as root: as
 * "nobody", with its HOME/USER/LOGNAME; not as root: refused with a clear reason. Windows
 * (Wine): as the user of our own session (WTSQueryUserToken, CreateProcessAsUserW). */
static void runs_as_a_user(void **state)
{
    struct fx *f = *state;
    struct scr_var vars[] = {{"out", "marker-value", 0}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct scr_run_as as;
    struct err e = ERR_INIT;
    const struct scr_result *r;

    memset(&as, 0, sizeof(as));
    o.timeout_ms = 60000;
    o.debug = 1; /* the output of a successful script is logged */
    o.run_as = &as;
#ifdef _WIN32
    {
        DWORD sid = 0;
        assert_true(ProcessIdToSessionId(GetCurrentProcessId(), &sid));
        as.session_id = sid;
        snprintf(as.user, sizeof(as.user), "wineuser");
        assert_int_equal(scr_run_as_check(&as, &e), 0); /* the user's token can be had */
        put_script(f, "u.cmd", "@echo off\r\necho who=%KASM_OUT%\r\n");
        assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
        assert_non_null(r = find(&res, "u.cmd"));
        assert_int_equal(r->status, SCR_OK);
        assert_true(log_has("u.cmd: running as user wineuser in session"));
        assert_true(log_has("u.cmd| who=marker-value"));
    }
#else
    {
        char path[1300];
        as.session_id = 7;
        put_script(f, "u.sh",
                   "echo \"who=$(id -un) home=$HOME user=$USER logname=$LOGNAME "
                   "out=$KASM_OUT\"\n");
        assert_int_equal(fs_join(f->dir, "u.sh", path, sizeof(path), NULL), 0);
        chmod(path, 0755); /* the user must read it */
        if (geteuid() == 0) {
            snprintf(as.user, sizeof(as.user), "nobody");
            assert_int_equal(scr_run_as_check(&as, &e), 0);
            assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
            assert_non_null(r = find(&res, "u.sh"));
            assert_int_equal(r->status, SCR_OK);
            assert_true(log_has("u.sh: running as user nobody in session 7"));
            assert_true(log_has("u.sh| who=nobody home="));
            assert_true(log_has(" user=nobody logname=nobody out=marker-value"));
        } else {
            snprintf(as.user, sizeof(as.user), "root");
            assert_int_equal(scr_run_as_check(&as, &e), ERR_PERMISSION);
            err_clear(&e);
            assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
            assert_non_null(r = find(&res, "u.sh"));
            assert_int_equal(r->status, SCR_ERROR);
            assert_true(log_has("the agent does not run as root"));
        }
        /* a user that does not exist: a clear error, nothing run as the service instead */
        scr_results_free(&res);
        snprintf(as.user, sizeof(as.user), "no-such-user-kasm");
        assert_int_equal(scr_run_as_check(&as, &e), ERR_NOT_FOUND); /* checked before a run */
        assert_non_null(strstr(e.msg, "user no-such-user-kasm (map_storage) does not exist here"));
        err_clear(&e);
        assert_int_equal(scr_run_as_check(NULL, &e), 0); /* as the service */
        assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 1, &o, &res, &e), 0);
        assert_non_null(r = find(&res, "u.sh"));
        assert_int_equal(r->status, SCR_ERROR);
        assert_true(log_has("user no-such-user-kasm (u.sh) does not exist here"));
    }
#endif
    scr_results_free(&res);
}

static void ps1_through_powershell(void **state)
{
    struct fx *f = *state;
    const char *evil = "bob'); Remove-Item C:\\ -Recurse; ('";
    struct scr_var vars[] = {{"username", evil, 0}, {"out", f->out, 0}, {"jwt_token", SECRET, 1}};
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    const char *body = "Write-Output \"hello $username\"\r\n";
#ifdef _WIN32
    wchar_t sys[MAX_PATH], dst[MAX_PATH + 64], src[1024];
    char *got, *enc, tmpdir[1100];
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    if (!nt || !GetProcAddress(nt, "wine_get_version")) {
        UNIT_SKIP("replaces powershell.exe with a stand-in: only under Wine");
        return;
    }
    /* the stand-in at the real place: Z:<unix path of the build> */
    {
        char path[1024];
        snprintf(path, sizeof(path), "Z:%s", KASM_FAKE_POWERSHELL);
        for (char *p = path; *p; p++)
            if (*p == '/')
                *p = '\\';
        MultiByteToWideChar(CP_UTF8, 0, path, -1, src, 1024);
    }
    assert_true(GetSystemDirectoryW(sys, MAX_PATH) > 0);
    swprintf(dst, MAX_PATH + 64, L"%ls\\WindowsPowerShell\\v1.0\\powershell.exe", sys);
    assert_true(CopyFileW(src, dst, FALSE));
    put_script(f, "10_ps.ps1", body);
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 3, &o, &res, &e), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.items[0].status, SCR_FAILED);
    assert_int_equal(res.items[0].exit_code, 3);
    assert_true(log_has("10_ps.ps1| fake powershell ran"));
    got = read_out(f);
    assert_non_null(got);
    /* the command line, as CommandLineToArgvW splits it */
    assert_non_null(strstr(got, "argc 7\n-NoProfile\n-NonInteractive\n-ExecutionPolicy\nBypass\n"
                                "-File\n"));
    fs_join(f->root, "tmp", tmpdir, sizeof(tmpdir), NULL);
    assert_non_null(strstr(got, tmpdir));          /* the private copy ... */
    assert_non_null(strstr(got, "\\10_ps.ps1\n")); /* ... under the script's name */
    assert_non_null(strstr(got, "cwd "));
    assert_non_null(strstr(got, f->dir + 2)); /* the script's folder (drive letter case aside) */
    assert_non_null(strstr(got, "user bob'); Remove-Item C:\\ -Recurse; ('\n"));
    /* the copy: BOM, the prologue with base64 values, then the script */
    enc = scr_base64(evil, strlen(evil));
    {
        const char *file = strstr(got, "--- file\n");
        char line[512];
        assert_non_null(file);
        file += 9;
        assert_memory_equal(file, "\xEF\xBB\xBF# Variables set by the Kasm agent", 3 + 33);
        snprintf(line, sizeof(line),
                 "$username = [System.Text.Encoding]::UTF8.GetString([System.Convert]::"
                 "FromBase64String('%s'))\r\n",
                 enc);
        assert_non_null(strstr(file, line));
        assert_null(strstr(file, "Remove-Item")); /* the value only as base64 */
        assert_null(strstr(file, SECRET));        /* the token only as base64 */
        assert_non_null(strstr(file, body));
        assert_true(strstr(file, line) < strstr(file, body));
    }
    free(enc);
    free(got);
    /* the copy and its folder are gone; tmp itself stays */
    {
        struct plat_dir *d = NULL;
        struct plat_dir_entry ent;
        assert_int_equal(plat_dir_open(tmpdir, &d, NULL), 0);
        assert_int_equal(plat_dir_next(d, &ent, NULL), 0);
        plat_dir_close(d);
    }
    scr_results_free(&res);
#else
    put_script(f, "10_ps.ps1", body);
    o.timeout_ms = 60000;
    assert_int_equal(scr_run_dir(f->root, "service_startup", vars, 3, &o, &res, &e), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.items[0].status, SCR_SKIPPED);
    assert_true(log_has("10_ps.ps1: skipped (PowerShell scripts do not run on this platform)"));
    scr_results_free(&res);
#endif
}

static int cancel_now(void *ctx)
{
    return *(int *)ctx;
}

static void missing_folder_and_cancel(void **state)
{
    struct fx *f = *state;
    struct scr_results res = {0};
    struct scr_options o = {0};
    struct err e = ERR_INIT;
    int cancel = 1;
    assert_int_equal(scr_run_dir(f->root, "session_end", NULL, 0, &o, &res, &e), 0);
    assert_int_equal(res.count, 0);
    put_script(f, "a" EXT, "exit 0\n");
    o.cancelled = cancel_now;
    o.cancel_ctx = &cancel;
    assert_int_equal(scr_run_dir(f->root, "service_startup", NULL, 0, &o, &res, &e), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.items[0].status, SCR_CANCELLED);
    scr_results_free(&res);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(order_skips_and_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(injection_values_arrive_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_script_output_logged_token_redacted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(timeout_kills_script_and_child, setup, teardown),
        cmocka_unit_test_setup_teardown(output_is_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(unsafe_script_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unsafe_folder_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_folder_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(runs_in_its_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(ps1_through_powershell, setup, teardown),
        cmocka_unit_test_setup_teardown(runs_as_a_user, setup, teardown),
    };
    return UNIT_RUN("scr_run", tests, NULL, NULL);
}
