/*
 * test_acct.c - Kasm-managed local accounts (service/accounts/): acct_validate_username()
 * against every Windows rule (UTF-8 names, the 20-character limit counted in characters),
 * the ERR_UNSUPPORTED answer on POSIX, and on Windows the real steps of
 * acct_ensure_local_user() (the user, Remote Desktop Users, the profile).
 *
 * Under Wine 8 the netapi32 calls are stubs; each Windows case asserts what Wine does (so a
 * change in Wine is noticed), then skips the part Wine cannot show with the reason:
 *   - NetUserAdd: a stub that returns NERR_Success and creates nothing (so it never reports
 *     NERR_UserExists, and LookupAccountNameW then fails with 1332 ERROR_NONE_MAPPED);
 *     NetUserGetInfo level 1 answers NERR_Success for any name (privilege 0, flags 0);
 *   - NetUserSetInfo: not implemented - calling it aborts the process (never called here);
 *   - NetLocalGroupAddMembers: a stub that returns NERR_Success (never ERROR_MEMBER_IN_ALIAS);
 *     NetLocalGroupGetMembers: a stub listing only the Unix user;
 *   - CreateProfile: not exported by Wine's userenv.dll (acct resolves it at run time and
 *     answers ERR_UNSUPPORTED).
 * CreateWellKnownSid + LookupAccountSidW for S-1-5-32-555 do work under Wine.
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

#include "acct.h"

#ifdef _WIN32
#include <windows.h>

#include <lm.h>
#include <sddl.h>

#include "win32/acct_win.h"
#endif

/* ---- acct_validate_username ---------------------------------------------------------- */

static void expect_ok(const char *name)
{
    struct err e = ERR_INIT;
    int rc = acct_validate_username(name, &e);
    if (rc != 0)
        fail_msg("'%s' refused: %s", name, e.msg);
    assert_int_equal(e.code, 0);
}

static void expect_bad(const char *name, const char *why)
{
    struct err e = ERR_INIT;
    int rc = acct_validate_username(name, &e);
    if (rc != ERR_INVALID)
        fail_msg("a bad name (%s) was accepted (rc %d)", why, rc);
    assert_int_equal(e.code, ERR_INVALID);
    if (!strstr(e.msg, why))
        fail_msg("message '%s' does not say '%s'", e.msg, why);
}

static void test_valid_names(void **state)
{
    (void)state;
    expect_ok("bob");
    expect_ok("a");
    expect_ok("john.smith");
    expect_ok("john smith");
    expect_ok("j-s_2024");
    expect_ok(".bob"); /* a leading dot is allowed */
    expect_ok("bob "); /* a trailing space is not one of the rules */
    expect_ok("bob$"); /* '$' is allowed (machine accounts use it) */
    expect_ok("o'neil");
    expect_ok("José");
    expect_ok("Ölçü.Şahin");
    expect_ok("用户");
    expect_ok("Дмитрий");
    expect_ok("12345678901234567890"); /* exactly 20 */
}

static void test_forbidden_characters(void **state)
{
    static const char forbidden[] = "\"/\\[]:;|=,+*?<>@";
    (void)state;
    for (const char *c = forbidden; *c; c++) {
        char name[16], why[8];
        snprintf(name, sizeof(name), "ab%ccd", *c);
        snprintf(why, sizeof(why), "'%c'", *c);
        expect_bad(name, why);
        snprintf(name, sizeof(name), "%cabc", *c);
        expect_bad(name, why);
        snprintf(name, sizeof(name), "abc%c", *c);
        expect_bad(name, why);
    }
    /* The deployment's user@domain form must be split by the caller, never passed on. */
    expect_bad("bob@example.com", "'@'");
    expect_bad("HOST\\bob", "'\\'");
}

static void test_control_characters(void **state)
{
    (void)state;
    expect_bad("a\x01z", "control character (U+0001");
    expect_bad("a\tz", "control character (U+0009");
    expect_bad("a\nz", "control character (U+000A");
    expect_bad("a\x1fz", "control character (U+001F");
    expect_bad("a\x7fz", "control character (U+007F");
    expect_bad("a\xc2\x85z", "control character (U+0085"); /* C1 NEL */
    expect_bad("a\xc2\x9fz", "control character (U+009F");
    expect_ok("a\xc2\xa0z"); /* U+00A0 (no-break space) is not a control character */
}

static void test_dots_and_spaces(void **state)
{
    (void)state;
    expect_bad(".", "only of dots and spaces");
    expect_bad("..", "only of dots and spaces");
    expect_bad(" ", "only of dots and spaces");
    expect_bad(" . . ", "only of dots and spaces");
    expect_bad("bob.", "ends with a dot");
    expect_bad("bob..", "ends with a dot");
    expect_ok("b.o.b");
    expect_ok(". b");
}

static void test_empty_and_null(void **state)
{
    struct err e = ERR_INIT;
    (void)state;
    expect_bad("", "empty");
    assert_int_equal(acct_validate_username(NULL, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "no user name"));
    /* e may be NULL: the code is still returned. */
    assert_int_equal(acct_validate_username("a/b", NULL), ERR_INVALID);
    assert_int_equal(acct_validate_username("ok", NULL), 0);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    expect_bad("\xff", "not valid UTF-8");
    expect_bad("ab\x80", "not valid UTF-8 (byte 3)");
    expect_bad("\xc3", "not valid UTF-8");             /* cut short */
    expect_bad("\xc3z", "not valid UTF-8");            /* cut short */
    expect_bad("\xc0\xaf", "not valid UTF-8");         /* overlong '/' */
    expect_bad("\xe0\x80\xaf", "not valid UTF-8");     /* overlong '/' */
    expect_bad("\xf0\x80\x80\xaf", "not valid UTF-8"); /* overlong '/' */
    expect_bad("\xed\xa0\x80", "not valid UTF-8");     /* a surrogate */
    expect_bad("\xf4\x90\x80\x80", "not valid UTF-8"); /* past U+10FFFF */
    expect_bad("\xf8\x88\x80\x80\x80", "not valid UTF-8");
}

/* n copies of the UTF-8 sequence s, then tail. */
static void repeat(char *out, size_t cap, const char *s, int n, const char *tail)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        strncat(out, s, cap - strlen(out) - 1);
    strncat(out, tail, cap - strlen(out) - 1);
}

static void test_length_in_characters(void **state)
{
    char name[256];
    (void)state;
    repeat(name, sizeof(name), "a", 20, "");
    expect_ok(name);
    repeat(name, sizeof(name), "a", 21, "");
    expect_bad(name, "21 characters long");
    /* 20 two-byte characters: 40 bytes, 20 characters - allowed. */
    repeat(name, sizeof(name), "\xc3\xa9", 20, "");
    assert_int_equal(strlen(name), 40);
    expect_ok(name);
    repeat(name, sizeof(name), "\xc3\xa9", 21, "");
    expect_bad(name, "21 characters long");
    /* 20 three-byte characters (CJK): 60 bytes - allowed. */
    repeat(name, sizeof(name), "\xe7\x94\xa8", 20, "");
    assert_int_equal(strlen(name), 60);
    expect_ok(name);
    repeat(name, sizeof(name), "\xe7\x94\xa8", 19, "ab");
    expect_bad(name, "21 characters long");
    /* Beyond U+FFFF a character is two UTF-16 units, as Windows counts: 10 emoji fit, 11 do
     * not, and 19 letters + 1 emoji is 21. */
    repeat(name, sizeof(name), "\xf0\x9f\x98\x80", 10, "");
    expect_ok(name);
    repeat(name, sizeof(name), "\xf0\x9f\x98\x80", 11, "");
    expect_bad(name, "22 characters long");
    repeat(name, sizeof(name), "a", 19, "\xf0\x9f\x98\x80");
    expect_bad(name, "21 characters long");
}

/* ---- acct_ensure_local_user: POSIX ----------------------------------------------------- */

static const char secret_pw[] = "Kt#s3cret-PW-9z!Q";

static void test_posix_unsupported(void **state)
{
#ifdef _WIN32
    (void)state;
    UNIT_SKIP("POSIX only (on Windows the accounts are created: the test_win_* cases)");
#else
    struct acct_result r;
    struct err e = ERR_INIT;
    (void)state;
    memset(&r, 0xAA, sizeof(r));
    assert_int_equal(acct_ensure_local_user("bob", secret_pw, &r, &e), ERR_UNSUPPORTED);
    assert_int_equal(e.code, ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "local accounts are created only on Windows"));
    assert_null(strstr(e.msg, secret_pw));
    assert_int_equal(r.created, 0);
    assert_int_equal(r.added_to_rdu, 0);
    assert_int_equal(r.profile_created, 0);
    assert_string_equal(r.profile_dir, "");
    /* Every call, whatever the input. */
    assert_int_equal(acct_ensure_local_user("a/b", NULL, &r, NULL), ERR_UNSUPPORTED);
#endif
}

/* ---- acct_ensure_local_user: Windows (and what Wine implements of it) ------------------ */

#ifdef _WIN32
static int is_wine(void)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}

/* A fresh name per case (each case is its own process under ctest): "kt" + 8 hex + tag. */
static void unique_user(wchar_t *out, size_t cap, char tag)
{
    unsigned v = (unsigned)GetCurrentProcessId() * 2654435761u ^ (unsigned)GetTickCount();
    _snwprintf(out, cap, L"kt%08x%c", v, tag);
    out[cap - 1] = 0;
}

static int account_exists(const wchar_t *user, DWORD *err_out)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD sid_size = sizeof(sid), dn = 256;
    wchar_t dom[256];
    SID_NAME_USE use;
    if (LookupAccountNameW(NULL, user, sid, &sid_size, dom, &dn, &use))
        return use == SidTypeUser;
    *err_out = GetLastError();
    return 0;
}

/* Removes what a case made on a real host (Wine keeps nothing). */
static void remove_user(const wchar_t *user)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD sid_size = sizeof(sid), dn = 256;
    wchar_t dom[256], *sidstr = NULL;
    SID_NAME_USE use;
    if (is_wine())
        return;
    if (LookupAccountNameW(NULL, user, sid, &sid_size, dom, &dn, &use) &&
        ConvertSidToStringSidW(sid, &sidstr)) {
        HMODULE lib = LoadLibraryExW(L"userenv.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
        typedef BOOL(WINAPI * del_fn)(LPCWSTR, LPCWSTR, LPCWSTR);
        del_fn del = lib ? (del_fn)(void (*)(void))GetProcAddress(lib, "DeleteProfileW") : NULL;
        if (del)
            del(sidstr, NULL, NULL);
        if (lib)
            FreeLibrary(lib);
        LocalFree(sidstr);
    }
    NetUserDel(NULL, user);
}

#define WIN_ONLY()                                                                                 \
    do {                                                                                           \
    } while (0)
#else
#define WIN_ONLY() UNIT_SKIP("Windows only (POSIX answers ERR_UNSUPPORTED: test_posix_unsupported)")
#endif

static void test_win_rdu_name(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t name[257], dom[256];
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD sid_size = sizeof(sid), dn = 256;
    SID_NAME_USE use;
    wchar_t *sidstr = NULL;
    struct err e = ERR_INIT;
    assert_int_equal(acct_win_rdu_name(name, 257, &e), 0);
    assert_true(wcslen(name) > 0);
    /* Round trip: the name found leads back to S-1-5-32-555, a builtin alias. */
    assert_true(LookupAccountNameW(NULL, name, sid, &sid_size, dom, &dn, &use));
    assert_int_equal(use, SidTypeAlias);
    assert_true(ConvertSidToStringSidW(sid, &sidstr));
    assert_true(wcscmp(sidstr, L"S-1-5-32-555") == 0);
    LocalFree(sidstr);
    if (is_wine())
        assert_true(wcscmp(name, L"Remote Desktop Users") == 0);
#endif
}

static void test_win_user_create(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t user[32], pw[64];
    struct err e = ERR_INIT;
    int created = -1;
    DWORD le = 0;
    unique_user(user, 32, 'c');
    _snwprintf(pw, 64, L"Kt#%08lx-9z!Q", (unsigned long)GetTickCount());
    pw[63] = 0;
    int rc = acct_win_user(user, pw, &created, &e);
    if (rc != 0)
        fail_msg("acct_win_user: %s", e.msg);
    assert_int_equal(created, 1);
    int exists = account_exists(user, &le);
    remove_user(user);
    if (is_wine()) {
        assert_false(exists);
        assert_int_equal(le, ERROR_NONE_MAPPED);
        UNIT_SKIP("Wine 8: NetUserAdd is a stub (NERR_Success, no account is made; "
                  "LookupAccountNameW then fails with 1332): the account itself cannot be checked");
    }
    assert_true(exists);
#endif
}

static void test_win_user_update(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t user[32], pw1[64], pw2[64];
    struct err e = ERR_INIT;
    int created = -1;
    unique_user(user, 32, 'u');
    _snwprintf(pw1, 64, L"Kt#%08lx-9z!Q", (unsigned long)GetTickCount());
    _snwprintf(pw2, 64, L"Kt#%08lx-8y?R", (unsigned long)GetCurrentProcessId());
    pw1[63] = pw2[63] = 0;
    if (acct_win_user(user, pw1, &created, &e) != 0)
        fail_msg("acct_win_user (first): %s", e.msg);
    assert_int_equal(created, 1);
    if (is_wine()) {
        /* The stub again: NERR_Success, so the update path (NetUserSetInfo, which Wine does
         * not implement at all) is not reached. */
        assert_int_equal(acct_win_user(user, pw2, &created, &e), 0);
        assert_int_equal(created, 1);
        UNIT_SKIP("Wine 8: NetUserAdd never reports NERR_UserExists and NetUserSetInfo is "
                  "unimplemented (calling it aborts the process): the update path needs Windows");
    }
    /* Disable it, then the second call must reset the password and enable it again. */
    USER_INFO_1 *ui = NULL;
    USER_INFO_1008 fl;
    assert_int_equal(NetUserGetInfo(NULL, user, 1, (LPBYTE *)&ui), NERR_Success);
    fl.usri1008_flags = ui->usri1_flags | UF_ACCOUNTDISABLE;
    NetApiBufferFree(ui);
    assert_int_equal(NetUserSetInfo(NULL, user, 1008, (LPBYTE)&fl, NULL), NERR_Success);
    int rc = acct_win_user(user, pw2, &created, &e);
    if (rc != 0) {
        remove_user(user);
        fail_msg("acct_win_user (second): %s", e.msg);
    }
    assert_int_equal(created, 0);
    assert_int_equal(NetUserGetInfo(NULL, user, 1, (LPBYTE *)&ui), NERR_Success);
    DWORD flags = ui->usri1_flags;
    NetApiBufferFree(ui);
    /* The new password works, the old one does not (a network logon needs no logon right). */
    HANDLE tok = NULL;
    BOOL new_ok =
        LogonUserW(user, L".", pw2, LOGON32_LOGON_NETWORK, LOGON32_PROVIDER_DEFAULT, &tok);
    if (tok)
        CloseHandle(tok);
    tok = NULL;
    BOOL old_ok =
        LogonUserW(user, L".", pw1, LOGON32_LOGON_NETWORK, LOGON32_PROVIDER_DEFAULT, &tok);
    if (tok)
        CloseHandle(tok);
    remove_user(user);
    assert_int_equal(flags & UF_ACCOUNTDISABLE, 0);
    assert_true(new_ok);
    assert_false(old_ok);
#endif
}

/* An existing administrator is refused, and keeps its password. */
static void test_win_user_refuses_admin(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t user[32], pw1[64], pw2[64], admins[257], dom[256], comp[MAX_COMPUTERNAME_LENGTH + 1],
        qual[300];
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD sid_size = sizeof(sid), n = 257, dn = 256, cl = MAX_COMPUTERNAME_LENGTH + 1;
    SID_NAME_USE use;
    struct err e = ERR_INIT;
    int created = -1;
    unique_user(user, 32, 'a');
    _snwprintf(pw1, 64, L"Kt#%08lx-9z!Q", (unsigned long)GetTickCount());
    _snwprintf(pw2, 64, L"Kt#%08lx-8y?R", (unsigned long)GetCurrentProcessId());
    pw1[63] = pw2[63] = 0;
    if (acct_win_user(user, pw1, &created, &e) != 0)
        fail_msg("acct_win_user: %s", e.msg);
    assert_int_equal(created, 1);
    if (is_wine())
        UNIT_SKIP("Wine 8: NetUserAdd is a stub that never reports NERR_UserExists, so the "
                  "check of an existing account is never reached");
    /* Make it an administrator (the group by its SID S-1-5-32-544). */
    assert_true(CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, sid, &sid_size));
    assert_true(LookupAccountSidW(NULL, sid, admins, &n, dom, &dn, &use));
    assert_true(GetComputerNameW(comp, &cl));
    _snwprintf(qual, 300, L"%ls\\%ls", comp, user);
    qual[299] = 0;
    LOCALGROUP_MEMBERS_INFO_3 m = {qual};
    assert_int_equal(NetLocalGroupAddMembers(NULL, admins, 3, (LPBYTE)&m, 1), NERR_Success);
    int rc = acct_win_user(user, pw2, &created, &e);
    HANDLE tok = NULL;
    BOOL old_ok =
        LogonUserW(user, L".", pw1, LOGON32_LOGON_NETWORK, LOGON32_PROVIDER_DEFAULT, &tok);
    if (tok)
        CloseHandle(tok);
    remove_user(user);
    assert_int_equal(rc, ERR_PERMISSION);
    assert_non_null(strstr(e.msg, "is an administrator"));
    assert_int_equal(created, 0);
    assert_true(old_ok);
#endif
}

static void test_win_rdu_add(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t user[32], pw[64], group[257], comp[MAX_COMPUTERNAME_LENGTH + 1], qual[300];
    DWORD cl = MAX_COMPUTERNAME_LENGTH + 1;
    struct err e = ERR_INIT;
    int created = -1, added = -1;
    unique_user(user, 32, 'r');
    _snwprintf(pw, 64, L"Kt#%08lx-9z!Q", (unsigned long)GetTickCount());
    pw[63] = 0;
    if (acct_win_user(user, pw, &created, &e) != 0)
        fail_msg("acct_win_user: %s", e.msg);
    int rc = acct_win_rdu_add(user, &added, &e);
    if (rc != 0) {
        remove_user(user);
        fail_msg("acct_win_rdu_add: %s", e.msg);
    }
    assert_int_equal(added, 1);
    rc = acct_win_rdu_add(user, &added, &e);
    if (is_wine()) {
        assert_int_equal(rc, 0);
        assert_int_equal(added, 1);
        UNIT_SKIP("Wine 8: NetLocalGroupAddMembers is a stub (NERR_Success every time, never "
                  "ERROR_MEMBER_IN_ALIAS) and NetLocalGroupGetMembers lists only the Unix user: "
                  "membership cannot be checked");
    }
    /* The second call finds it a member already; the group lists it. */
    assert_int_equal(rc, 0);
    assert_int_equal(added, 0);
    assert_int_equal(acct_win_rdu_name(group, 257, &e), 0);
    assert_true(GetComputerNameW(comp, &cl));
    _snwprintf(qual, 300, L"%ls\\%ls", comp, user);
    qual[299] = 0;
    LOCALGROUP_MEMBERS_INFO_3 *m = NULL;
    DWORD nread = 0, total = 0, found = 0;
    assert_int_equal(NetLocalGroupGetMembers(NULL, group, 3, (LPBYTE *)&m, MAX_PREFERRED_LENGTH,
                                             &nread, &total, NULL),
                     NERR_Success);
    for (DWORD i = 0; i < nread; i++)
        if (_wcsicmp(m[i].lgrmi3_domainandname, qual) == 0)
            found = 1;
    NetApiBufferFree(m);
    remove_user(user);
    assert_int_equal(found, 1);
#endif
}

static void test_win_profile(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t user[32], pw[64];
    char dir[1024], dir2[1024];
    struct err e = ERR_INIT;
    int created = -1, pcreated = -1;
    unique_user(user, 32, 'p');
    _snwprintf(pw, 64, L"Kt#%08lx-9z!Q", (unsigned long)GetTickCount());
    pw[63] = 0;
    if (acct_win_user(user, pw, &created, &e) != 0)
        fail_msg("acct_win_user: %s", e.msg);
    int rc = acct_win_profile(user, dir, sizeof(dir), &pcreated, &e);
    if (is_wine()) {
        assert_int_equal(rc, ERR_UNSUPPORTED);
        assert_non_null(strstr(e.msg, "CreateProfile"));
        assert_int_equal(pcreated, 0);
        UNIT_SKIP("Wine 8: userenv.dll does not export CreateProfile (acct answers "
                  "ERR_UNSUPPORTED): the profile needs Windows");
    }
    if (rc != 0) {
        remove_user(user);
        fail_msg("acct_win_profile: %s", e.msg);
    }
    assert_int_equal(pcreated, 1);
    DWORD attr = GetFileAttributesA(dir);
    rc = acct_win_profile(user, dir2, sizeof(dir2), &pcreated, &e);
    remove_user(user);
    assert_true(attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY));
    if (rc != 0)
        fail_msg("acct_win_profile (second): %s", e.msg);
    assert_int_equal(pcreated, 0);
    assert_string_equal(dir, dir2);
#endif
}

static void test_win_ensure(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    wchar_t wuser[32];
    char user[32];
    struct acct_result r;
    struct err e = ERR_INIT;
    unique_user(wuser, 32, 'e');
    snprintf(user, sizeof(user), "%ls", wuser);
    int rc = acct_ensure_local_user(user, secret_pw, &r, &e);
    assert_null(strstr(e.msg, secret_pw));
    if (is_wine()) {
        /* The user and group stubs succeed; the profile step is where Wine stops. */
        assert_int_equal(rc, ERR_UNSUPPORTED);
        assert_int_equal(r.created, 1);
        assert_int_equal(r.added_to_rdu, 1);
        assert_int_equal(r.profile_created, 0);
        assert_non_null(strstr(e.msg, "CreateProfile"));
        UNIT_SKIP("Wine 8: the user and group calls are stubs and CreateProfile is missing: "
                  "the whole sequence needs Windows (docs/accounts.md has the procedure)");
    }
    if (rc != 0) {
        remove_user(wuser);
        fail_msg("acct_ensure_local_user: %s", e.msg);
    }
    struct acct_result r2;
    rc = acct_ensure_local_user(user, "Kt#An0ther-pw!", &r2, &e);
    remove_user(wuser);
    assert_int_equal(r.created, 1);
    assert_int_equal(r.added_to_rdu, 1);
    assert_int_equal(r.profile_created, 1);
    assert_true(strlen(r.profile_dir) > 0);
    if (rc != 0)
        fail_msg("acct_ensure_local_user (second): %s", e.msg);
    assert_int_equal(r2.created, 0);
    assert_int_equal(r2.added_to_rdu, 0);
    assert_int_equal(r2.profile_created, 0);
    assert_string_equal(r.profile_dir, r2.profile_dir);
#endif
}

/* Bad input is refused before any account call (runs fully under Wine too). */
static void test_win_ensure_bad_input(void **state)
{
    (void)state;
    WIN_ONLY();
#ifdef _WIN32
    struct acct_result r;
    struct err e = ERR_INIT;
    char longpw[300];
    assert_int_equal(acct_ensure_local_user("bad/name", secret_pw, &r, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "local account: "));
    assert_null(strstr(e.msg, secret_pw));
    assert_int_equal(acct_ensure_local_user("bob", NULL, &r, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "no password"));
    assert_int_equal(acct_ensure_local_user("bob", "", &r, &e), ERR_INVALID);
    memset(longpw, 'x', 257);
    longpw[257] = '\0';
    assert_int_equal(acct_ensure_local_user("bob", longpw, &r, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "longer than the 256"));
    assert_null(strstr(e.msg, "xxxx"));
    assert_int_equal(acct_ensure_local_user("bob", "bad\xff", &r, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not valid UTF-8"));
    assert_int_equal(r.created, 0);
#endif
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),          cmocka_unit_test(test_forbidden_characters),
        cmocka_unit_test(test_control_characters),   cmocka_unit_test(test_dots_and_spaces),
        cmocka_unit_test(test_empty_and_null),       cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_length_in_characters), cmocka_unit_test(test_posix_unsupported),
        cmocka_unit_test(test_win_rdu_name),         cmocka_unit_test(test_win_user_create),
        cmocka_unit_test(test_win_user_update),      cmocka_unit_test(test_win_user_refuses_admin),
        cmocka_unit_test(test_win_rdu_add),          cmocka_unit_test(test_win_profile),
        cmocka_unit_test(test_win_ensure),           cmocka_unit_test(test_win_ensure_bad_input),
    };
    return UNIT_RUN("acct", tests, NULL, NULL);
}
