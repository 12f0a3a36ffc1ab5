/*
 * test_sesm.c - service/session/: the declared-sessions and logind parsers, the restart
 * throttle arithmetic, user matching, and (POSIX) the whole manager against a fake helper:
 * this program re-runs itself with --channel and then speaks HELLO (role "helper") like
 * session_helper does, or misbehaves as KASM_TEST_FAKE_HELPER says (silent: no HELLO;
 * crash: exit at once). Windows (Wine): the manager on the WTS session, and the helper's
 * private pipe as sess_spawn() makes it (DACL, random name, one instance, inheritance).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "plat.h"
#include "pmux.h"
#include "proto.h"
#include "pshm.h"
#include "sesm.h"
#include "sesm_int.h"
#include "sess_plat.h"
#include "testdir.h"

#ifdef _WIN32
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <wchar.h>
#include <wtsapi32.h>
#else
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>
#endif

#ifndef _WIN32
static char g_self[4096]; /* this program, for the fake helper */
#endif

/* ---- the fake helper (the program run as "--channel FD --session-id N") ---- */

static void fake_on_close(void *ctx, const struct err *why)
{
    (void)why;
    *(volatile int *)ctx = 1;
}

static int fake_helper(int argc, char **argv)
{
    const char *mode = getenv("KASM_TEST_FAKE_HELPER");
    struct pchan *ch = NULL;
    struct pmux *mux = NULL;
    struct pmux_config pc;
    volatile int closed = 0;
    long long fd = -1;
    unsigned sid = 0;

    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--channel") == 0)
            fd = strtoll(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--session-id") == 0)
            sid = (unsigned)strtoul(argv[i + 1], NULL, 10);
    }
    if (mode && strcmp(mode, "crash") == 0)
        return 3;
    if (mode && strcmp(mode, "silent") == 0) {
        plat_sleep_ms(600000);
        return 0;
    }
    if (pchan_from_os((intptr_t)fd, &ch, NULL) < 0)
        return 2;
    memset(&pc, 0, sizeof(pc));
    proto_hello_init(&pc.hello, "helper");
    pc.hello.pid = (uint32_t)plat_pid();
    pc.hello.session_id = sid;
    snprintf(pc.hello.user, sizeof(pc.hello.user), "fake");
    pc.on_close = fake_on_close;
    pc.ctx = (void *)&closed;
    if (pmux_start(ch, &pc, &mux, NULL) < 0)
        return 2;
    if (pmux_wait_ready(mux, 10000, NULL, NULL) == 0)
        pmux_log(mux, "warning", "fake helper says hi");
    while (!closed)
        plat_sleep_ms(20);
    pmux_free(mux);
    return 0;
}

/* ---- throttle and user matching (portable) ---- */

static void test_throttle_doubles_and_caps(void **state)
{
    struct sesm_throttle t = {0};
    (void)state;
    assert_int_equal(sesm_throttle_delay(&t, 10, 1000, 8000), 1000);
    assert_int_equal(sesm_throttle_delay(&t, 10, 1000, 8000), 2000);
    assert_int_equal(sesm_throttle_delay(&t, 10, 1000, 8000), 4000);
    assert_int_equal(sesm_throttle_delay(&t, 10, 1000, 8000), 8000);
    assert_int_equal(sesm_throttle_delay(&t, 10, 1000, 8000), 8000);
    /* Not a power-of-two multiple: still capped. */
    struct sesm_throttle u = {0};
    assert_int_equal(sesm_throttle_delay(&u, 0, 3000, 10000), 3000);
    assert_int_equal(sesm_throttle_delay(&u, 0, 3000, 10000), 6000);
    assert_int_equal(sesm_throttle_delay(&u, 0, 3000, 10000), 10000);
    assert_int_equal(sesm_throttle_delay(&u, 0, 3000, 10000), 10000);
    /* Near UINT32_MAX: no overflow. */
    struct sesm_throttle v = {0};
    assert_int_equal(sesm_throttle_delay(&v, 0, 3000000000u, 4000000000u), 3000000000u);
    assert_int_equal(sesm_throttle_delay(&v, 0, 3000000000u, 4000000000u), 4000000000u);
}

static void test_throttle_resets_after_stable_run(void **state)
{
    struct sesm_throttle t = {0};
    (void)state;
    assert_int_equal(sesm_throttle_delay(&t, 0, 500, 60000), 500);
    assert_int_equal(sesm_throttle_delay(&t, 1000, 500, 60000), 1000);
    assert_int_equal(sesm_throttle_delay(&t, SESM_STABLE_MS - 1, 500, 60000), 2000);
    assert_int_equal(sesm_throttle_delay(&t, SESM_STABLE_MS, 500, 60000), 500);
    assert_int_equal(sesm_throttle_delay(&t, 5, 500, 60000), 1000);
    /* max below min: min wins. */
    struct sesm_throttle u = {0};
    assert_int_equal(sesm_throttle_delay(&u, 0, 2000, 100), 2000);
    assert_int_equal(sesm_throttle_delay(&u, 0, 2000, 100), 2000);
}

static void test_user_match(void **state)
{
    (void)state;
    assert_true(sesm_user_match("alice", "alice"));
    assert_true(sesm_user_match("alice@corp.example", "alice"));
    assert_true(sesm_user_match("CORP\\alice", "alice"));
    assert_true(sesm_user_match("alice", "CORP\\alice"));
    assert_false(sesm_user_match("alice", "alicia"));
    assert_false(sesm_user_match("ali", "alice"));
    assert_false(sesm_user_match("", "alice"));
    assert_false(sesm_user_match("@corp", ""));
    assert_false(sesm_user_match(NULL, "alice"));
    assert_false(sesm_user_match("bob@alice", "alice"));
#ifdef _WIN32
    assert_true(sesm_user_match("Alice@CORP", "aLiCe"));
#else
    assert_false(sesm_user_match("Alice", "alice"));
#endif
}

static void test_acquire_without_manager(void **state)
{
    struct sesm_lease *l = (struct sesm_lease *)1;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(sesm_acquire(NULL, "alice", 1, &l, &e), ERR_NOT_FOUND);
    assert_null(l);
    assert_int_equal(sesm_running_count(NULL), 0);
}

/* ---- POSIX session sources ---- */

#ifndef _WIN32
static void parse_ok(const char *text, struct sess_info **out, size_t *n)
{
    struct err e = ERR_INIT;
    int rc = sess_parse_declared("sessions", text, strlen(text), out, n, &e);
    if (rc != 0)
        fail_msg("parse failed: %s", e.msg);
}

static void parse_bad(const char *text, const char *want)
{
    struct sess_info *out = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    assert_int_equal(sess_parse_declared("sessions", text, strlen(text), &out, &n, &e), ERR_PARSE);
    assert_null(out);
    if (!strstr(e.msg, want))
        fail_msg("message '%s' lacks '%s'", e.msg, want);
}
#endif

static void test_declared_parse(void **state)
{
    (void)state;
#ifdef _WIN32
    UNIT_SKIP("the declared-sessions file is POSIX only");
#else
    struct sess_info *s = NULL;
    size_t n = 0;
    parse_ok("# sessions\n\n 7 alice console display=:5  # the desk\n12\tbob\r\n", &s, &n);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].id, 7);
    assert_string_equal(s[0].user, "alice");
    assert_int_equal(s[0].console, 1);
    assert_string_equal(s[0].display, ":5");
    assert_int_equal(s[1].id, 12);
    assert_string_equal(s[1].user, "bob");
    assert_int_equal(s[1].console, 0);
    assert_string_equal(s[1].display, "");
    free(s);
    parse_ok("", &s, &n);
    assert_int_equal(n, 0);
    free(s);
    parse_ok("1 carol", &s, &n); /* no final newline */
    assert_int_equal(n, 1);
    assert_string_equal(s[0].user, "carol");
    free(s);

    parse_bad("x alice\n", "sessions:1: the session id must be a number");
    parse_bad("1 alice\n2\n", "sessions:2: a user name must follow");
    parse_bad("1 alice seat0\n", "sessions:1: unknown word 'seat0'");
    parse_bad("1 alice\n1 bob\n", "sessions:2: session 1 is declared twice");
    parse_bad("99999999999 alice\n", "must be a number");
#endif
}

static void test_declared_file(void **state)
{
    (void)state;
#ifdef _WIN32
    UNIT_SKIP("the declared-sessions file is POSIX only");
#else
    char dir[1024], path[1100];
    struct sesm_config cfg;
    struct sess_info *s = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;

    assert_int_equal(td_make("sesm", dir, sizeof(dir)), 0);
    memset(&cfg, 0, sizeof(cfg));
    snprintf(path, sizeof(path), "%s/sessions", dir);
    snprintf(cfg.sessions_file, sizeof(cfg.sessions_file), "%s", path);
    /* Missing file: nobody logged on. */
    assert_int_equal(sess_enumerate(&cfg, &s, &n, &e), 0);
    assert_int_equal(n, 0);
    free(s);
    assert_int_equal(td_write(path, "3 dave console\n"), 0);
    assert_int_equal(sess_enumerate(&cfg, &s, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].id, 3);
    assert_int_equal(s[0].console, 1);
    free(s);
    assert_int_equal(td_write(path, "3 dave bogus\n"), 0);
    assert_int_equal(sess_enumerate(&cfg, &s, &n, &e), ERR_PARSE);
    assert_non_null(strstr(e.msg, path));
    td_remove_tree(dir);
#endif
}

static void test_logind_files(void **state)
{
    (void)state;
#ifdef _WIN32
    UNIT_SKIP("logind is POSIX only");
#else
    char dir[1024], p[1200];
    struct sess_info *s = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    static const struct {
        const char *name, *text;
    } files[] = {
        {"2", "# This is private data. Do not parse.\nUID=1000\nUSER=alice\nACTIVE=1\n"
              "STATE=active\nTYPE=x11\nCLASS=user\nSEAT=seat0\nDISPLAY=:0\n"},
        {"c3", "UID=1001\nUSER=bob\nACTIVE=0\nSTATE=online\nCLASS=user\nREMOTE=1\n"},
        {"4", "UID=1002\nUSER=carol\nSTATE=closing\nCLASS=user\n"},
        {"5", "UID=113\nUSER=lightdm\nSTATE=active\nCLASS=greeter\nSEAT=seat0\nACTIVE=1\n"},
        {"6", "UID=1003\nSTATE=active\n"},
        {".#7abc", "USER=temp\nSTATE=active\n"},
        {"x9", "USER=weird\nSTATE=active\n"},
    };

    assert_int_equal(td_make("logind", dir, sizeof(dir)), 0);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i].name);
        assert_int_equal(td_write(p, files[i].text), 0);
    }
    assert_int_equal(sess_logind_enumerate(dir, &s, &n, &e), 0);
    assert_int_equal(n, 2);
    if (s[0].id != 2) { /* directory order is arbitrary */
        struct sess_info t = s[0];
        s[0] = s[1];
        s[1] = t;
    }
    assert_int_equal(s[0].id, 2);
    assert_string_equal(s[0].user, "alice");
    assert_int_equal(s[0].console, 1);
    assert_string_equal(s[0].display, ":0");
    assert_int_equal(s[1].id, 0x80000003u);
    assert_string_equal(s[1].user, "bob");
    assert_int_equal(s[1].console, 0);
    free(s);
    /* No such directory: no sessions. */
    snprintf(p, sizeof(p), "%s/none", dir);
    assert_int_equal(sess_logind_enumerate(p, &s, &n, &e), 0);
    assert_int_equal(n, 0);
    free(s);
    td_remove_tree(dir);
#endif
}

/* ---- the manager against the fake helper (POSIX) ---- */

#ifndef _WIN32
struct mgr {
    char dir[1024];
    char file[1100];
    char user[256];
    struct sesm *m;
};

static void mgr_write(struct mgr *g, const char *lines)
{
    char tmp[1200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", g->file);
    assert_int_equal(td_write(tmp, lines), 0);
    assert_int_equal(rename(tmp, g->file), 0);
}

static void mgr_start(struct mgr *g, const char *mode, uint32_t hello_ms)
{
    struct sesm_config cfg;
    struct err e = ERR_INIT;
    struct passwd *pw = getpwuid(geteuid());
    char lines[600];

    assert_non_null(pw);
    snprintf(g->user, sizeof(g->user), "%s", pw->pw_name);
    assert_int_equal(td_make("sesm-mgr", g->dir, sizeof(g->dir)), 0);
    snprintf(g->file, sizeof(g->file), "%s/sessions", g->dir);
    snprintf(lines, sizeof(lines), "5 %s console\n", g->user);
    mgr_write(g, lines);
    if (mode)
        setenv("KASM_TEST_FAKE_HELPER", mode, 1);
    else
        unsetenv("KASM_TEST_FAKE_HELPER");
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.helper_path, sizeof(cfg.helper_path), "%s", g_self);
    snprintf(cfg.sessions_file, sizeof(cfg.sessions_file), "%s", g->file);
    cfg.poll_ms = 100;
    cfg.restart_min_ms = 100;
    cfg.restart_max_ms = 400;
    cfg.hello_timeout_ms = hello_ms;
    if (sesm_start(&cfg, &g->m, &e) < 0)
        fail_msg("sesm_start: %s", e.msg);
}

static int mgr_row(struct mgr *g, uint32_t id, struct sesm_row *out)
{
    struct sesm_row *rows = NULL;
    size_t n = 0;
    int found = 0;
    assert_int_equal(sesm_table(g->m, &rows, &n, NULL), 0);
    for (size_t i = 0; i < n; i++)
        if (rows[i].session_id == id) {
            *out = rows[i];
            found = 1;
        }
    free(rows);
    return found;
}

/* Waits (up to 30 s) until session id is in `state` (NULL: absent from the table). */
static int mgr_wait(struct mgr *g, uint32_t id, const char *state, unsigned min_restarts,
                    struct sesm_row *out)
{
    struct sesm_row r;
    for (int i = 0; i < 1500; i++) {
        int found = mgr_row(g, id, &r);
        if (!state && !found)
            return 1;
        if (state && found && strcmp(r.state, state) == 0 && r.restarts >= min_restarts) {
            if (out)
                *out = r;
            return 1;
        }
        plat_sleep_ms(20);
    }
    return 0;
}

static int pid_gone(unsigned long pid)
{
    for (int i = 0; i < 1500; i++) {
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            return 1;
        plat_sleep_ms(20);
    }
    return 0;
}
#endif

#ifndef _WIN32
/* What the session manager's listener heard (sesm_set_listener). */
struct heard {
    struct plat_mutex *lock;
    int count;
    uint32_t last;
    char user[256];
};

static void on_heard(void *ctx, uint32_t session_id, const char *user)
{
    struct heard *h = ctx;
    plat_mutex_lock(h->lock);
    h->count++;
    h->last = session_id;
    snprintf(h->user, sizeof(h->user), "%s", user);
    plat_mutex_unlock(h->lock);
}
#endif

static void test_manager_spawn_lease_restart_logoff(void **state)
{
    (void)state;
#ifdef _WIN32
    UNIT_SKIP("the spawn test needs a declared session (POSIX); Windows: tests/windows");
#else
    struct mgr g;
    struct sesm_row r, r2;
    struct sesm_lease *l = NULL;
    struct err e = ERR_INIT;

    memset(&g, 0, sizeof(g));
    mgr_start(&g, NULL, 10000);
    assert_true(mgr_wait(&g, 5, "running", 0, &r));
    assert_int_equal(r.console, 1);
    assert_string_equal(r.user, g.user);
    assert_true(r.helper_pid > 0);
    assert_int_equal(sesm_running_count(g.m), 1);

    /* Leases: by user (with a domain), by console fallback, and a miss. */
    assert_int_equal(sesm_acquire(g.m, g.user, 0, &l, &e), 0);
    assert_int_equal(sesm_lease_session(l), 5);
    assert_string_equal(sesm_lease_user(l), g.user);
    assert_true(pmux_alive(sesm_lease_mux(l)));
    sesm_release(l);
    assert_int_equal(sesm_acquire(g.m, "nobody-here@corp", 1, &l, &e), 0);
    assert_int_equal(sesm_lease_session(l), 5);
    sesm_release(l);
    assert_int_equal(sesm_acquire(g.m, "nobody-here", 0, &l, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "nobody-here"));
    assert_int_equal(sesm_acquire(g.m, NULL, 0, &l, &e), 0);
    sesm_release(l);
    {
        /* The session of a user, whatever its helper's state (storage hooks run there). */
        char with_domain[300], account[256] = "";
        uint32_t sid = 0;
        snprintf(with_domain, sizeof(with_domain), "%s@corp.example", g.user);
        assert_int_equal(sesm_find_user(g.m, with_domain, &sid, account, sizeof(account), &e), 0);
        assert_int_equal(sid, 5);
        assert_string_equal(account, g.user);
        assert_int_equal(sesm_find_user(g.m, "nobody-here", &sid, account, sizeof(account), &e),
                         ERR_NOT_FOUND);
        assert_non_null(strstr(e.msg, "nobody-here"));
    }

    /* A lease held across the helper's death: the channel goes down, then restart. */
    assert_int_equal(sesm_acquire(g.m, g.user, 0, &l, &e), 0);
    assert_int_equal(kill((pid_t)r.helper_pid, SIGKILL), 0);
    assert_true(mgr_wait(&g, 5, "running", 1, &r2));
    assert_true(r2.helper_pid != r.helper_pid);
    assert_int_equal(r2.restarts, 1);
    for (int i = 0; i < 1500 && pmux_alive(sesm_lease_mux(l)); i++)
        plat_sleep_ms(20);
    assert_false(pmux_alive(sesm_lease_mux(l)));
    sesm_release(l);

    /* Logoff: the line goes, the helper is stopped and reaped. */
    mgr_write(&g, "# nobody\n");
    assert_true(mgr_wait(&g, 5, NULL, 0, NULL));
    assert_true(pid_gone(r2.helper_pid));
    assert_int_equal(sesm_acquire(g.m, g.user, 1, &l, &e), ERR_NOT_FOUND);
    {
        uint32_t sid = 0;
        assert_int_equal(sesm_find_user(g.m, g.user, &sid, NULL, 0, &e), ERR_NOT_FOUND);
    }

    /* Logon again, heard by the listener (the session, then its helper's HELLO); then stop:
     * no helper left. */
    {
        char lines[600];
        struct heard h;
        uint32_t sid = 0;
        memset(&h, 0, sizeof(h));
        assert_int_equal(plat_mutex_create(&h.lock, NULL), 0);
        sesm_set_listener(g.m, on_heard, &h);
        snprintf(lines, sizeof(lines), "6 %s\n", g.user);
        mgr_write(&g, lines);
        assert_true(mgr_wait(&g, 6, "running", 0, &r));
        sesm_set_listener(g.m, NULL, NULL); /* after this, on_heard is not running */
        assert_true(h.count >= 2);
        assert_int_equal(h.last, 6);
        assert_string_equal(h.user, g.user);
        assert_int_equal(sesm_find_user(g.m, g.user, &sid, NULL, 0, &e), 0);
        assert_int_equal(sid, 6);
        plat_mutex_destroy(h.lock);
    }
    sesm_notify(g.m, SESS_EVENT_LOGON, 6);
    sesm_stop(g.m);
    assert_true(pid_gone(r.helper_pid));
    td_remove_tree(g.dir);
#endif
}

/* Windows (Wine): the manager adopts the logged-on session from WTS and starts this program
 * as its helper with CreateProcessAsUserW; a lease works; the stop ends the helper. */
static void test_manager_wts_session(void **state)
{
    (void)state;
#ifndef _WIN32
    UNIT_SKIP("WTS sessions are Windows only (POSIX: the declared-sessions tests)");
#else
    struct sesm_config cfg;
    struct sesm *m = NULL;
    struct sesm_row *rows = NULL, r;
    struct sesm_lease *l = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;
    int found = 0;
    HANDLE h;

    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(plat_exe_dir(cfg.helper_path, sizeof(cfg.helper_path) - 32, NULL), 0);
    strcat(cfg.helper_path, "\\test_sesm.exe");
    cfg.poll_ms = 200;
    cfg.restart_min_ms = 100;
    if (sesm_start(&cfg, &m, &e) < 0)
        fail_msg("sesm_start: %s", e.msg);
    for (int i = 0; i < 3000 && !found; i++) {
        assert_int_equal(sesm_table(m, &rows, &n, NULL), 0);
        for (size_t k = 0; k < n; k++)
            if (strcmp(rows[k].state, "running") == 0) {
                r = rows[k];
                found = 1;
            }
        free(rows);
        if (!found)
            plat_sleep_ms(20);
    }
    if (!found) {
        sesm_stop(m);
        UNIT_SKIP("no logged-on session with a running helper (WTS lists none here)");
        return;
    }
    assert_true(r.helper_pid > 0);
    assert_int_equal(sesm_acquire(m, r.user, 0, &l, &e), 0);
    assert_int_equal(sesm_lease_session(l), r.session_id);
    assert_true(pmux_alive(sesm_lease_mux(l)));
    sesm_release(l);
    h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)r.helper_pid);
    assert_non_null(h);
    sesm_stop(m);
    assert_int_equal(WaitForSingleObject(h, 30000), WAIT_OBJECT_0);
    CloseHandle(h);
#endif
}

/* ---- the helper's private pipe (Windows): DACL, name, instances, inheritance ---- */

#ifdef _WIN32
/* The token user's SID of session id as sess_spawn gets it (WTSQueryUserToken; not as
 * SYSTEM: our own token). A TOKEN_USER buffer to free(), or NULL. */
static TOKEN_USER *pipe_session_user(uint32_t id)
{
    HANDLE token = NULL;
    TOKEN_USER *tu = NULL;
    DWORD len = 0;

    if (!WTSQueryUserToken(id, &token) &&
        !OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return NULL;
    GetTokenInformation(token, TokenUser, NULL, 0, &len);
    if (len && (tu = malloc(len)) != NULL &&
        !GetTokenInformation(token, TokenUser, tu, len, &len)) {
        free(tu);
        tu = NULL;
    }
    CloseHandle(token);
    return tu;
}

/* (a): a protected DACL with exactly two allow ACEs, SYSTEM and user; no other SID. */
static void pipe_check_dacl(HANDLE h, PSID user)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL, system = NULL;
    PACL dacl = NULL;
    SECURITY_DESCRIPTOR_CONTROL ctl = 0;
    DWORD rev = 0, rc;
    int saw_system = 0, saw_user = 0;

    rc =
        GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION | OWNER_SECURITY_INFORMATION,
                        &owner, NULL, &dacl, NULL, &sd);
    if (rc != ERROR_SUCCESS)
        fail_msg("GetSecurityInfo on the helper's pipe: error %lu", (unsigned long)rc);
    assert_true(ConvertStringSidToSidW(L"S-1-5-18", &system));
    assert_true(GetSecurityDescriptorControl(sd, &ctl, &rev));
    assert_true(ctl & SE_DACL_PRESENT);
    assert_true(ctl & SE_DACL_PROTECTED);
    assert_non_null(dacl); /* a NULL DACL would let everyone in */
    assert_int_equal(dacl->AceCount, 2);
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *ace = NULL;
        PSID sid;
        assert_true(GetAce(dacl, i, (void **)&ace));
        assert_int_equal(ace->AceType, ACCESS_ALLOWED_ACE_TYPE);
        assert_false(ace->AceFlags & INHERITED_ACE);
        sid = (PSID) & ((ACCESS_ALLOWED_ACE *)ace)->SidStart;
        if (EqualSid(sid, system))
            saw_system = 1;
        else if (EqualSid(sid, user))
            saw_user = 1;
        else {
            wchar_t *s = NULL;
            ConvertSidToStringSidW(sid, &s);
            fail_msg("the helper's pipe grants %ls (only SYSTEM and the user may be in it)",
                     s ? s : L"?");
        }
    }
    assert_true(saw_system);
    assert_true(saw_user);
    LocalFree(system);
    LocalFree(sd);
}

typedef LONG(NTAPI *pipe_ntqo_fn)(HANDLE, int, void *, ULONG, ULONG *);

/* The pipe's name below \Device\NamedPipe ("\kasm-helper-..."): FileNameInfo, else
 * NtQueryObject(ObjectNameInformation). 0, or -1 when this Windows (Wine) answers neither. */
static int pipe_name_of(HANDLE h, wchar_t *out, size_t cap)
{
    static const wchar_t dev[] = L"\\Device\\NamedPipe";
    union {
        FILE_NAME_INFO fni;
        unsigned char raw[2048];
    } u;
    size_t n;
    const wchar_t *s;

    memset(&u, 0, sizeof(u));
    if (GetFileInformationByHandleEx(h, FileNameInfo, &u, sizeof(u) - sizeof(wchar_t))) {
        s = u.fni.FileName;
        n = u.fni.FileNameLength / sizeof(wchar_t);
        print_message("pipe name from FileNameInfo\n");
    } else {
        /* OBJECT_NAME_INFORMATION: a UNICODE_STRING followed by the text. */
        pipe_ntqo_fn q = (pipe_ntqo_fn)(void (*)(void))GetProcAddress(
            GetModuleHandleW(L"ntdll.dll"), "NtQueryObject");
        ULONG got = 0;
        struct {
            USHORT len, max;
            wchar_t *buf;
        } *us = (void *)u.raw;
        memset(&u, 0, sizeof(u));
        if (!q || q(h, 1 /* ObjectNameInformation */, &u, sizeof(u), &got) < 0 || !us->buf)
            return -1;
        s = us->buf;
        n = us->len / sizeof(wchar_t);
        print_message("pipe name from NtQueryObject\n");
    }
    if (n >= wcslen(dev) && _wcsnicmp(s, dev, wcslen(dev)) == 0) {
        s += wcslen(dev);
        n -= wcslen(dev);
    }
    if (n + 1 > cap)
        return -1;
    memcpy(out, s, n * sizeof(wchar_t));
    out[n] = 0;
    return 0;
}

/* (b): "\kasm-helper-<session>-" and 32 lower-case hex digits, nothing after. */
static void pipe_check_name(const wchar_t *name, uint32_t session)
{
    wchar_t prefix[64];
    size_t k;

    _snwprintf(prefix, 64, L"\\kasm-helper-%u-", (unsigned)session);
    prefix[63] = 0;
    k = wcslen(prefix);
    if (wcsncmp(name, prefix, k) != 0 || wcslen(name) != k + 32)
        fail_msg("the helper's pipe is named %ls, want %ls + 32 hex digits", name, prefix);
    for (size_t i = k; i < k + 32; i++)
        if (!((name[i] >= L'0' && name[i] <= L'9') || (name[i] >= L'a' && name[i] <= L'f')))
            fail_msg("the helper's pipe name %ls has a non-hex character", name);
}

/* (c): nobody (not even SYSTEM or the user, who may create instances by the DACL) gets a
 * second instance of the helper's pipe. */
static void pipe_check_no_second_instance(const wchar_t *name)
{
    wchar_t path[300];
    DWORD flags[2] = {PIPE_ACCESS_DUPLEX, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE};

    _snwprintf(path, 300, L"\\\\.\\pipe%ls", name);
    path[299] = 0;
    for (int i = 0; i < 2; i++) {
        HANDLE h2 = CreateNamedPipeW(path, flags[i], PIPE_TYPE_BYTE | PIPE_WAIT,
                                     PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, NULL);
        DWORD code = GetLastError();
        if (h2 != INVALID_HANDLE_VALUE) {
            CloseHandle(h2);
            fail_msg("a second instance of %ls could be created (flags 0x%lx)", path,
                     (unsigned long)flags[i]);
        }
        print_message("second instance of the helper's pipe refused: error %lu\n",
                      (unsigned long)code);
        assert_true(code == ERROR_PIPE_BUSY || code == ERROR_ACCESS_DENIED);
    }
}

/* (d): one instance at most, we are the server end, and our end is not inheritable. */
static void pipe_check_info(HANDLE h)
{
    DWORD flags = 0, out_sz = 0, in_sz = 0, max = 0, hflags = 0;

    assert_true(GetNamedPipeInfo(h, &flags, &out_sz, &in_sz, &max));
    assert_true(flags & PIPE_SERVER_END);
    assert_int_equal(max, 1);
    assert_true(GetHandleInformation(h, &hflags));
    assert_false(hflags & HANDLE_FLAG_INHERIT);
}

typedef BOOL(WINAPI *pipe_cmp_fn)(HANDLE, HANDLE);

/* The helper got only its end: an inheritable event of ours is not in it. 1 checked, 0 when
 * this Windows cannot tell (no CompareObjectHandles). */
static int pipe_check_not_inherited(DWORD helper_pid, HANDLE ours)
{
    pipe_cmp_fn cmp = (pipe_cmp_fn)(void (*)(void))GetProcAddress(
        GetModuleHandleW(L"kernelbase.dll"), "CompareObjectHandles");
    HANDLE hp, dup = NULL;
    int checked = 0;

    if (!cmp)
        return 0;
    hp = OpenProcess(PROCESS_DUP_HANDLE, FALSE, helper_pid);
    if (!hp)
        return 0;
    /* Inherited handles keep their values: whatever the helper has at ours' value must be
     * another object. */
    print_message("helper inheritance checked with CompareObjectHandles\n");
    if (DuplicateHandle(hp, ours, GetCurrentProcess(), &dup, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
        int same = cmp(dup, ours);
        CloseHandle(dup);
        if (same) {
            CloseHandle(hp);
            fail_msg("the helper inherited an unrelated handle of the service");
        }
    }
    checked = 1;
    CloseHandle(hp);
    return checked;
}

/* One session to spawn in: WTS's first, else the console fallback of sess_enumerate. */
static int pipe_session(struct sess_info *out)
{
    struct sesm_config cfg;
    struct sess_info *s = NULL;
    size_t n = 0;
    int ok = 0;

    memset(&cfg, 0, sizeof(cfg));
    if (sess_enumerate(&cfg, &s, &n, NULL) == 0 && n > 0) {
        *out = s[0];
        ok = 1;
    }
    free(s);
    return ok;
}
#endif

/* Windows (Wine): sess_spawn() gives the helper a private pipe (DESIGN.md, Security rules):
 * a protected DACL of SYSTEM + the session user only, a random name, one instance at most
 * (a squatter cannot add one), our end not inheritable, and the helper inherits only its
 * end. What only a real Windows host can show: docs/security.md, "Limits we know of". */
static void test_spawn_private_pipe(void **state)
{
    (void)state;
#ifndef _WIN32
    UNIT_SKIP("named pipes are Windows only (POSIX: sessions_spawn checks the helper's fds)");
#else
    struct sesm_config cfg;
    struct sess_info s;
    struct sess_proc *proc[2] = {NULL, NULL};
    struct pchan *chan[2] = {NULL, NULL};
    struct err e = ERR_INIT;
    wchar_t names[2][256];
    TOKEN_USER *tu = NULL;
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    HANDLE bait;
    int named = 1, inherit_checked;

    if (!pipe_session(&s)) {
        UNIT_SKIP("no logged-on session (WTS lists none and there is no console session)");
        return;
    }
    tu = pipe_session_user(s.id);
    assert_non_null(tu);
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(plat_exe_dir(cfg.helper_path, sizeof(cfg.helper_path) - 32, NULL), 0);
    strcat(cfg.helper_path, "\\test_sesm.exe");
    bait = CreateEventW(&sa, TRUE, FALSE, NULL); /* inheritable: must not reach the helper */
    assert_non_null(bait);
    for (int i = 0; i < 2; i++) {
        HANDLE h;
        struct pshm *window = NULL;
        if (i == 0) /* one helper with a shared window, one without */
            assert_int_equal(pshm_create(PROTO_DATA_MAX, &window, &e), 0);
        if (sess_spawn(&cfg, &s, window, &proc[i], &chan[i], &e) < 0)
            fail_msg("sess_spawn: %s", e.msg);
        pshm_free(window);
        h = (HANDLE)pchan_os_handle(chan[i]);
        pipe_check_dacl(h, tu->User.Sid);
        pipe_check_info(h);
        if (pipe_name_of(h, names[i], 256) < 0) {
            named = 0;
            continue;
        }
        pipe_check_name(names[i], s.id);
        pipe_check_no_second_instance(names[i]);
    }
    if (named)
        assert_true(wcscmp(names[0], names[1]) != 0);
    inherit_checked = pipe_check_not_inherited((DWORD)sess_proc_pid(proc[0]), bait);
    for (int i = 0; i < 2; i++) {
        sess_proc_kill(proc[i]);
        sess_proc_free(proc[i]);
        pchan_close(chan[i]);
    }
    CloseHandle(bait);
    free(tu);
    if (!named)
        UNIT_SKIP("DACL and instance checks passed; this Windows tells no pipe's name "
                  "(FileNameInfo, NtQueryObject): name and second-instance checks not run");
    if (!inherit_checked)
        UNIT_SKIP("DACL, name and instance checks passed; no CompareObjectHandles here: the "
                  "handle-list inheritance check did not run");
#endif
}

static void test_manager_hello_timeout_and_crash_throttle(void **state)
{
    (void)state;
#ifdef _WIN32
    UNIT_SKIP("the spawn test needs a declared session (POSIX); Windows: tests/windows");
#else
    struct mgr g;
    struct sesm_row r, r2;

    /* A helper that never says HELLO is killed and started again. */
    memset(&g, 0, sizeof(g));
    mgr_start(&g, "silent", 300);
    assert_true(mgr_wait(&g, 5, "starting", 0, &r));
    assert_true(r.helper_pid > 0);
    assert_true(pid_gone(r.helper_pid));
    assert_true(mgr_wait(&g, 5, "starting", 1, &r2));
    assert_int_equal(sesm_running_count(g.m), 0);
    sesm_stop(g.m);
    assert_true(pid_gone(r2.helper_pid));
    td_remove_tree(g.dir);

    /* A helper that crashes at once: restarted over and over, counted. */
    memset(&g, 0, sizeof(g));
    mgr_start(&g, "crash", 10000);
    for (int i = 0; i < 1500; i++) {
        if (mgr_row(&g, 5, &r) && r.restarts >= 3)
            break;
        plat_sleep_ms(20);
    }
    assert_true(r.restarts >= 3);
    assert_int_equal(sesm_running_count(g.m), 0);
    sesm_stop(g.m);
    unsetenv("KASM_TEST_FAKE_HELPER");
    td_remove_tree(g.dir);
#endif
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throttle_doubles_and_caps),
        cmocka_unit_test(test_throttle_resets_after_stable_run),
        cmocka_unit_test(test_user_match),
        cmocka_unit_test(test_acquire_without_manager),
        cmocka_unit_test(test_declared_parse),
        cmocka_unit_test(test_declared_file),
        cmocka_unit_test(test_logind_files),
        cmocka_unit_test(test_manager_spawn_lease_restart_logoff),
        cmocka_unit_test(test_manager_hello_timeout_and_crash_throttle),
        cmocka_unit_test(test_manager_wts_session),
        cmocka_unit_test(test_spawn_private_pipe),
    };
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--channel") == 0)
            return fake_helper(argc, argv);
#ifndef _WIN32
    {
        ssize_t n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
        if (n > 0)
            g_self[n] = '\0';
    }
#endif
    return UNIT_RUN("sesm", tests, NULL, NULL);
}
