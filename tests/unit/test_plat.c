/*
 * test_plat.c - the platform layer and fsutil: atomic writes, bounded reads, renames, open
 * flags and link refusal, directory listing, final paths, threads, time, random, host name,
 * disk space and the native error mapping. Runs natively and under Wine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/stat.h>
#endif

#include "fsutil.h"
#include "plat.h"
#include "plat_cpu.h"
#include "testdir.h"

static char g_dir[1024];

static int setup(void **state)
{
    (void)state;
    return td_make("plat", g_dir, sizeof(g_dir));
}

static int teardown(void **state)
{
    (void)state;
    td_remove_tree(g_dir);
    /* Nothing may be left behind, not even the directory. */
    struct plat_file_info info;
    return plat_path_stat(g_dir, &info, NULL) == ERR_NOT_FOUND ? 0 : -1;
}

static void path_in(const char *name, char *out, size_t cap)
{
    assert_int_equal(fs_join(g_dir, name, out, cap, NULL), 0);
}

static void read_expect(const char *path, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    struct err e = ERR_INIT;
    assert_int_equal(fs_read_all(path, 1 << 20, &buf, &len, &e), 0);
    assert_int_equal(len, strlen(want));
    assert_string_equal(buf, want);
    free(buf);
}

/* --- fsutil --------------------------------------------------------------------------- */

static void test_atomic_write_creates_and_replaces(void **state)
{
    char p[1100];
    struct err e = ERR_INIT;
    (void)state;
    path_in("a.yaml", p, sizeof(p));
    assert_int_equal(fs_write_atomic(p, "first\n", 6, 0, &e), 0);
    read_expect(p, "first\n");
    assert_int_equal(fs_write_atomic(p, "second, longer\n", 15, 0, &e), 0);
    read_expect(p, "second, longer\n");
    assert_int_equal(fs_write_atomic(p, "", 0, 0, &e), 0);
    read_expect(p, "");
    /* Only the target is left: no "a.yaml.tmp-*" files. */
    assert_int_equal(td_count(g_dir), 1);
    assert_int_equal(plat_path_remove(p, NULL), 0);
}

static void test_atomic_write_private(void **state)
{
    char p[1100];
    struct err e = ERR_INIT;
    (void)state;
    path_in("token.txt", p, sizeof(p));
    assert_int_equal(fs_write_atomic(p, "secret", 6, FS_WRITE_PRIVATE, &e), 0);
    read_expect(p, "secret");
#ifndef _WIN32
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Replacing an existing world-readable file also ends up owner-only. */
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(fs_write_atomic(p, "secret2", 7, FS_WRITE_PRIVATE, &e), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
#endif
    assert_int_equal(td_count(g_dir), 1);
    assert_int_equal(plat_path_remove(p, NULL), 0);
}

static void test_atomic_write_error_leaves_nothing(void **state)
{
    char p[1100];
    struct err e = ERR_INIT;
    (void)state;
    /* Target directory does not exist: the temp file cannot be made; clear message. */
    path_in("missing-dir", p, sizeof(p));
    char q[1200];
    assert_int_equal(fs_join(p, "x.yaml", q, sizeof(q), NULL), 0);
    assert_int_equal(fs_write_atomic(q, "x", 1, 0, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "x.yaml"));
    /* Replacing a directory fails; the temp file is removed again. */
    assert_int_equal(plat_dir_create(p, NULL), 0);
    e = (struct err)ERR_INIT;
    assert_true(fs_write_atomic(p, "x", 1, 0, &e) < 0);
    assert_true(e.msg[0] != '\0');
    assert_int_equal(td_count(g_dir), 1);
    assert_int_equal(plat_dir_remove(p, NULL), 0);
}

static void test_read_all_limits(void **state)
{
    char p[1100];
    char *buf = NULL;
    size_t len = 99;
    struct err e = ERR_INIT;
    (void)state;
    path_in("ten.bin", p, sizeof(p));
    assert_int_equal(td_write(p, "0123456789"), 0);
    assert_int_equal(fs_read_all(p, 10, &buf, &len, &e), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "0123456789", 11); /* NUL-terminated */
    free(buf);
    buf = NULL;
    assert_int_equal(fs_read_all(p, 9, &buf, &len, &e), ERR_TOO_LARGE);
    assert_null(buf);
    assert_non_null(strstr(e.msg, "ten.bin"));
    assert_int_equal(fs_read_all(p, 0, &buf, NULL, &e), ERR_TOO_LARGE);
    assert_int_equal(plat_path_remove(p, NULL), 0);

    path_in("empty.bin", p, sizeof(p));
    assert_int_equal(td_write(p, ""), 0);
    assert_int_equal(fs_read_all(p, 0, &buf, &len, &e), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
    buf = NULL;
    assert_int_equal(plat_path_remove(p, NULL), 0);

    assert_int_equal(fs_read_all(p, 100, &buf, &len, &e), ERR_NOT_FOUND);
    assert_null(buf);
    assert_non_null(strstr(e.msg, "empty.bin"));
    /* A directory is not a file. */
    assert_int_equal(fs_read_all(g_dir, 100, &buf, &len, &e), ERR_INVALID);
}

static void test_read_all_large(void **state)
{
    char p[1100];
    char *buf = NULL;
    size_t len = 0;
    size_t n = 300000;
    char *data = malloc(n);
    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    path_in("big.bin", p, sizeof(p));
    assert_int_equal(fs_write_atomic(p, data, n, 0, NULL), 0);
    assert_int_equal(fs_read_all(p, n, &buf, &len, NULL), 0);
    assert_int_equal(len, n);
    assert_memory_equal(buf, data, n);
    free(buf);
    buf = NULL;
    assert_int_equal(fs_read_all(p, n - 1, &buf, &len, NULL), ERR_TOO_LARGE);
    free(data);
    assert_int_equal(plat_path_remove(p, NULL), 0);
}

struct dirname_case {
    const char *in;
    const char *want;
};

static void test_dirname_join(void **state)
{
    static const struct dirname_case cases[] = {
        {"b.yaml", "."},
        {"/a/b.yaml", "/a"},
        {"/b.yaml", "/"},
        {"/a/b/", "/a"},
        {"a//b", "a"},
        {"/", "/"},
#ifdef _WIN32
        {"C:\\a\\b.yaml", "C:\\a"},
        {"C:\\b.yaml", "C:\\"},
        {"C:/a/b.yaml", "C:/a"},
        {"C:\\a/b.yaml", "C:\\a"},
        {"\\\\srv\\share\\x.txt", "\\\\srv\\share\\"},
#else
        {"C:\\a\\b.yaml", "."}, /* a backslash is an ordinary character on POSIX */
#endif
    };
    char out[256];
    struct err e = ERR_INIT;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(fs_dirname(cases[i].in, out, sizeof(out), &e), 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("fs_dirname(%s) = %s, want %s", cases[i].in, out, cases[i].want);
    }
    assert_int_equal(fs_dirname("", out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(fs_dirname("/abc/def", out, 4, &e), ERR_TOO_LARGE);

    assert_int_equal(fs_join("dir", "x", out, sizeof(out), &e), 0);
    assert_string_equal(out, "dir" PLAT_PATH_SEP_STR "x");
    assert_int_equal(fs_join("dir" PLAT_PATH_SEP_STR, "x", out, sizeof(out), &e), 0);
    assert_string_equal(out, "dir" PLAT_PATH_SEP_STR "x");
    assert_int_equal(fs_join("", "x", out, sizeof(out), &e), 0);
    assert_string_equal(out, "x");
    assert_int_equal(fs_join("dir", "x", out, 6, &e), 0); /* exactly fits */
    assert_int_equal(fs_join("dir", "xy", out, 6, &e), ERR_TOO_LARGE);
}

/* --- files ---------------------------------------------------------------------------- */

static void test_open_flags(void **state)
{
    char p[1100];
    struct plat_file *f = NULL;
    struct plat_file_info info;
    struct err e = ERR_INIT;
    char buf[32];
    size_t got;
    (void)state;
    path_in("f.txt", p, sizeof(p));
    assert_int_equal(plat_file_open(p, PLAT_OPEN_READ, &f, &e), ERR_NOT_FOUND);
    assert_null(f);
    assert_non_null(strstr(e.msg, "f.txt"));
    assert_int_equal(
        plat_file_open(p, PLAT_OPEN_READ | PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e), 0);
    assert_int_equal(plat_file_write_all(f, "hello world", 11, &e), 0);
    assert_int_equal(plat_file_sync(f, &e), 0);
    assert_int_equal(plat_file_pread(f, buf, 5, 6, &got, &e), 0);
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(plat_file_truncate(f, 5, &e), 0);
    assert_int_equal(plat_file_stat(f, &info, &e), 0);
    assert_int_equal(info.size, 5);
    assert_int_equal(info.is_dir, 0);
    assert_int_equal(info.is_link, 0);
    assert_true(info.mtime > 1500000000);
    plat_file_close(f);
    f = NULL;

    /* CREATE_NEW refuses anything already there. */
    e = (struct err)ERR_INIT;
    assert_int_equal(plat_file_open(p, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e), ERR_EXISTS);
    assert_null(f);
    assert_non_null(strstr(e.msg, "f.txt"));

    /* APPEND adds at the end; read sees everything. */
    assert_int_equal(plat_file_open(p, PLAT_OPEN_WRITE | PLAT_OPEN_APPEND, &f, &e), 0);
    assert_int_equal(plat_file_write_all(f, "!!", 2, &e), 0);
    plat_file_close(f);
    read_expect(p, "hello!!");

    /* TRUNCATE empties. */
    assert_int_equal(plat_file_open(p, PLAT_OPEN_WRITE | PLAT_OPEN_TRUNCATE, &f, &e), 0);
    plat_file_close(f);
    read_expect(p, "");

    /* Directories are refused; no access asked is refused. */
    assert_int_equal(plat_file_open(g_dir, PLAT_OPEN_READ, &f, &e), ERR_INVALID);
    assert_null(f);
    assert_int_equal(plat_file_open(p, 0, &f, &e), ERR_INVALID);
    assert_int_equal(plat_path_remove(p, &e), 0);
    assert_int_equal(plat_path_remove(p, &e), ERR_NOT_FOUND);
}

static void test_read_loop(void **state)
{
    char p[1100];
    struct plat_file *f = NULL;
    char buf[4];
    size_t got, total = 0;
    (void)state;
    path_in("r.txt", p, sizeof(p));
    assert_int_equal(td_write(p, "abcdefghij"), 0);
    assert_int_equal(plat_file_open(p, PLAT_OPEN_READ, &f, NULL), 0);
    for (;;) {
        assert_int_equal(plat_file_read(f, buf, sizeof(buf), &got, NULL), 0);
        if (got == 0)
            break;
        assert_memory_equal(buf, &"abcdefghij"[total], got);
        total += got;
    }
    assert_int_equal(total, 10);
    plat_file_close(f);
    plat_file_close(NULL); /* ignored */
    assert_int_equal(plat_path_remove(p, NULL), 0);
}

static void test_rename_and_replace(void **state)
{
    char a[1100], b[1100];
    struct err e = ERR_INIT;
    struct plat_file_info info;
    (void)state;
    path_in("a", a, sizeof(a));
    path_in("b", b, sizeof(b));
    assert_int_equal(td_write(a, "A"), 0);
    assert_int_equal(td_write(b, "B"), 0);
    assert_int_equal(plat_path_rename_new(a, b, &e), ERR_EXISTS);
    read_expect(a, "A");
    read_expect(b, "B");
    assert_int_equal(plat_path_replace(a, b, &e), 0);
    read_expect(b, "A");
    assert_int_equal(plat_path_stat(a, &info, &e), ERR_NOT_FOUND);
    assert_int_equal(plat_path_rename_new(b, a, &e), 0);
    read_expect(a, "A");
    assert_int_equal(plat_path_stat(b, &info, NULL), ERR_NOT_FOUND);
    assert_int_equal(plat_path_rename_new(b, a, &e), ERR_NOT_FOUND);
    assert_int_equal(plat_path_remove(a, NULL), 0);
}

static void test_final_path(void **state)
{
    char p[1100], fp[1100], root[1100];
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(plat_dir_final_path(g_dir, root, sizeof(root), &e), 0);
    assert_string_equal(root, g_dir); /* td_make already resolved it */
    path_in("final.txt", p, sizeof(p));
    assert_int_equal(plat_file_open(p, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e), 0);
    assert_int_equal(plat_file_final_path(f, fp, sizeof(fp), &e), 0);
    assert_string_equal(fp, p);
    assert_int_equal(plat_file_final_path(f, fp, 5, &e), ERR_TOO_LARGE);
    /* Delete through the handle. */
    assert_int_equal(plat_file_delete(f, &e), 0);
    plat_file_close(f);
    struct plat_file_info info;
    assert_int_equal(plat_path_stat(p, &info, NULL), ERR_NOT_FOUND);
    /* A path with "." and ".." resolves to the same directory. */
    char sub[1100], dotted[1200];
    path_in("sub", sub, sizeof(sub));
    assert_int_equal(plat_dir_create(sub, &e), 0);
    snprintf(dotted, sizeof(dotted), "%s" PLAT_PATH_SEP_STR "." PLAT_PATH_SEP_STR "..", sub);
    assert_int_equal(plat_dir_final_path(dotted, fp, sizeof(fp), &e), 0);
    assert_string_equal(fp, g_dir);
    assert_int_equal(plat_dir_remove(sub, &e), 0);
    assert_int_equal(plat_dir_final_path(sub, fp, sizeof(fp), &e), ERR_NOT_FOUND);
}

static int can_symlink(const char *target, const char *link, int is_dir)
{
    struct err e = ERR_INIT;
    int rc = plat_symlink_create(target, link, is_dir, &e);
    if (rc == ERR_UNSUPPORTED || rc == ERR_PERMISSION) {
        print_message("[   NOTE   ] symbolic links cannot be created here (%s); the link part "
                      "of this test does not run on this host\n",
                      e.msg);
        return 0;
    }
    assert_int_equal(rc, 0);
    return 1;
}

static void test_symlinks_refused(void **state)
{
    char target[1100], link[1100], dlink[1100], sub[1100];
    struct plat_file *f = NULL;
    struct plat_file_info info;
    struct err e = ERR_INIT;
    (void)state;
    path_in("real.txt", target, sizeof(target));
    path_in("link.txt", link, sizeof(link));
    assert_int_equal(td_write(target, "real"), 0);
    if (can_symlink(target, link, 0)) {
        assert_int_equal(plat_path_stat(link, &info, &e), 0);
        assert_int_equal(info.is_link, 1);
        for (int i = 0; i < 4; i++) {
            static const int fl[] = {PLAT_OPEN_READ, PLAT_OPEN_WRITE | PLAT_OPEN_TRUNCATE,
                                     PLAT_OPEN_WRITE | PLAT_OPEN_APPEND,
                                     PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW};
            e = (struct err)ERR_INIT;
            int rc = plat_file_open(link, fl[i], &f, &e);
            assert_null(f);
            if (fl[i] & PLAT_OPEN_CREATE_NEW) {
                assert_int_equal(rc, ERR_EXISTS);
            } else {
                assert_int_equal(rc, ERR_PERMISSION);
                assert_non_null(strstr(e.msg, "link"));
            }
        }
        read_expect(target, "real"); /* untouched through the link */
        assert_int_equal(plat_path_remove(link, &e), 0);
        read_expect(target, "real"); /* removing the link keeps the target */

        /* A dangling link is not followed by CREATE_NEW either. */
        char nowhere[1100];
        path_in("nowhere.txt", nowhere, sizeof(nowhere));
        if (can_symlink(nowhere, link, 0)) {
            assert_int_equal(plat_file_open(link, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e),
                             ERR_EXISTS);
            assert_int_equal(plat_path_stat(nowhere, &info, NULL), ERR_NOT_FOUND);
            assert_int_equal(plat_path_remove(link, &e), 0);
        }

        /* A link to a directory: listed as a link; dir_final_path resolves it. */
        path_in("sub", sub, sizeof(sub));
        path_in("dlink", dlink, sizeof(dlink));
        assert_int_equal(plat_dir_create(sub, &e), 0);
        if (can_symlink(sub, dlink, 1)) {
            char fp[1100];
            assert_int_equal(plat_path_stat(dlink, &info, &e), 0);
            assert_int_equal(info.is_link, 1);
            assert_int_equal(plat_dir_final_path(dlink, fp, sizeof(fp), &e), 0);
            assert_string_equal(fp, sub);
            assert_int_equal(plat_path_restrict_to_admins(dlink, &e), ERR_PERMISSION);
            assert_int_equal(plat_path_remove(dlink, &e), 0);
        }
        assert_int_equal(plat_dir_remove(sub, &e), 0);
    }
    assert_int_equal(plat_path_remove(target, &e), 0);
}

static void test_dir_listing(void **state)
{
    char p[1100], sub[1100];
    struct plat_dir *d = NULL;
    struct plat_dir_entry ent;
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    int seen_hidden = 0, seen_plain = 0, seen_dir = 0, n = 0;
    (void)state;
    path_in(".hidden", p, sizeof(p));
    assert_int_equal(
        plat_file_open(p, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW | PLAT_OPEN_HIDDEN, &f, &e), 0);
    assert_int_equal(plat_file_write_all(f, "h", 1, &e), 0);
    plat_file_close(f);
    path_in("plain.txt", p, sizeof(p));
    assert_int_equal(td_write(p, "plain"), 0);
    path_in("sub", sub, sizeof(sub));
    assert_int_equal(plat_dir_create(sub, &e), 0);
    assert_int_equal(plat_dir_create(sub, &e), 0);        /* exists as a dir: fine */
    assert_int_equal(plat_dir_create(p, &e), ERR_EXISTS); /* a file has the name */

    assert_int_equal(plat_dir_open(g_dir, &d, &e), 0);
    int rc;
    while ((rc = plat_dir_next(d, &ent, &e)) == 1) {
        n++;
        assert_true(strcmp(ent.name, ".") != 0 && strcmp(ent.name, "..") != 0);
        if (strcmp(ent.name, ".hidden") == 0) {
            seen_hidden = 1;
            assert_int_equal(ent.info.is_hidden, 1);
            assert_int_equal(ent.info.size, 1);
        } else if (strcmp(ent.name, "plain.txt") == 0) {
            seen_plain = 1;
            assert_int_equal(ent.info.is_hidden, 0);
            assert_int_equal(ent.info.is_dir, 0);
            assert_int_equal(ent.info.size, 5);
            assert_true(ent.info.mtime > 1500000000);
        } else if (strcmp(ent.name, "sub") == 0) {
            seen_dir = 1;
            assert_int_equal(ent.info.is_dir, 1);
            assert_int_equal(ent.info.is_link, 0);
        }
    }
    assert_int_equal(rc, 0);
    plat_dir_close(d);
    assert_int_equal(n, 3);
    assert_true(seen_hidden && seen_plain && seen_dir);

    path_in(".hidden", p, sizeof(p));
    assert_int_equal(plat_path_remove(p, &e), 0);
    path_in("plain.txt", p, sizeof(p));
    assert_int_equal(plat_path_remove(p, &e), 0);
    assert_int_equal(plat_dir_remove(sub, &e), 0);
    assert_int_equal(plat_dir_remove(sub, &e), ERR_NOT_FOUND);
    assert_int_equal(plat_dir_open(sub, &d, &e), ERR_NOT_FOUND);
    assert_null(d);
}

static void test_dir_create_all_and_restrict(void **state)
{
    char deep[1200], base[1100];
    struct plat_file_info info;
    struct err e = ERR_INIT;
    (void)state;
    path_in("x", base, sizeof(base));
    snprintf(deep, sizeof(deep), "%s" PLAT_PATH_SEP_STR "y" PLAT_PATH_SEP_STR "z", base);
    assert_int_equal(plat_dir_create_all(deep, &e), 0);
    assert_int_equal(plat_dir_create_all(deep, &e), 0);
    assert_int_equal(plat_path_stat(deep, &info, &e), 0);
    assert_int_equal(info.is_dir, 1);
    assert_int_equal(plat_path_restrict_to_admins(deep, &e), 0);
    char f[1300];
    snprintf(f, sizeof(f), "%s" PLAT_PATH_SEP_STR "k.pem", deep);
    assert_int_equal(td_write(f, "k"), 0);
    assert_int_equal(plat_path_restrict_to_admins(f, &e), 0);
#ifndef _WIN32
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
#endif
    read_expect(f, "k"); /* still usable by us */
    assert_int_equal(plat_path_remove(f, &e), 0);
    char missing[1300];
    snprintf(missing, sizeof(missing), "%s" PLAT_PATH_SEP_STR "nope", deep);
    assert_int_equal(plat_path_restrict_to_admins(missing, &e), ERR_NOT_FOUND);
    td_remove_tree(base);
    assert_int_equal(plat_path_stat(base, &info, NULL), ERR_NOT_FOUND);
}

/* plat_file_set_user_access through the handle of a file this process created: POSIX the
 * owner bits only (each combination exact); Windows the DACL call succeeds (what a real host
 * enforces is described in docs/sessions.md). */
static void test_file_set_user_access(void **state)
{
    static const struct {
        unsigned access;
        unsigned mode;
    } cases[] = {{PLAT_ACCESS_READ | PLAT_ACCESS_EXECUTE, 0500},
                 {0, 0},
                 {PLAT_ACCESS_WRITE, 0200},
                 {PLAT_ACCESS_READ | PLAT_ACCESS_WRITE | PLAT_ACCESS_EXECUTE, 0700},
                 {PLAT_ACCESS_READ | PLAT_ACCESS_WRITE, 0600}};
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    char p[1100];
    (void)state;
    path_in("access.txt", p, sizeof(p));
    assert_int_equal(plat_file_open(p, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e), 0);
    assert_int_equal(plat_file_write_all(f, "abc", 3, &e), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (plat_file_set_user_access(f, cases[i].access, &e) != 0)
            fail_msg("access %u: %s", cases[i].access, e.msg);
#ifndef _WIN32
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, cases[i].mode);
#else
        (void)cases[i].mode;
#endif
    }
    plat_file_close(f);
    read_expect(p, "abc");
    assert_int_equal(plat_path_remove(p, &e), 0);
}

/* --- errors --------------------------------------------------------------------------- */

static void test_error_mapping(void **state)
{
    (void)state;
#ifdef _WIN32
    /* Win32 error numbers (winerror.h). */
    const long disk_full = 112, handle_disk_full = 39, access_denied = 5, file_not_found = 2,
               path_not_found = 3, file_exists = 80, already_exists = 183, sharing = 32;
    assert_int_equal(plat_err_from_os(disk_full), ERR_NO_SPACE);
    assert_int_equal(plat_err_from_os(handle_disk_full), ERR_NO_SPACE);
    assert_int_equal(plat_err_from_os(access_denied), ERR_PERMISSION);
    assert_int_equal(plat_err_from_os(file_not_found), ERR_NOT_FOUND);
    assert_int_equal(plat_err_from_os(path_not_found), ERR_NOT_FOUND);
    assert_int_equal(plat_err_from_os(file_exists), ERR_EXISTS);
    assert_int_equal(plat_err_from_os(already_exists), ERR_EXISTS);
    assert_int_equal(plat_err_from_os(sharing), ERR_BUSY);
#else
    assert_int_equal(plat_err_from_os(ENOSPC), ERR_NO_SPACE);
    assert_int_equal(plat_err_from_os(EDQUOT), ERR_NO_SPACE);
    assert_int_equal(plat_err_from_os(EACCES), ERR_PERMISSION);
    assert_int_equal(plat_err_from_os(ENOENT), ERR_NOT_FOUND);
    assert_int_equal(plat_err_from_os(EEXIST), ERR_EXISTS);
    assert_int_equal(plat_err_from_os(EIO), ERR_IO);
#endif
}

static void test_device_files_refused(void **state)
{
    struct plat_file *f = NULL;
    struct plat_file_info info;
    struct err e = ERR_INIT;
    (void)state;
    /* A character device (Linux /dev/full) is not a regular file: refused, never written. */
    if (plat_path_stat("/dev/full", &info, NULL) != 0) {
        print_message("[   NOTE   ] no /dev/full on this host; device refusal not checked\n");
        return;
    }
    assert_int_equal(plat_file_open("/dev/full", PLAT_OPEN_WRITE, &f, &e), ERR_INVALID);
    assert_null(f);
    assert_non_null(strstr(e.msg, "regular"));
}

/* --- threads and time ----------------------------------------------------------------- */

struct counter {
    struct plat_mutex *m;
    struct plat_cond *c;
    long value;
    int done;
};

static void count_up(void *p)
{
    struct counter *k = p;
    for (int i = 0; i < 20000; i++) {
        plat_mutex_lock(k->m);
        k->value++;
        plat_mutex_unlock(k->m);
    }
    plat_mutex_lock(k->m);
    k->done++;
    plat_cond_broadcast(k->c);
    plat_mutex_unlock(k->m);
}

static void test_threads(void **state)
{
    struct counter k = {0};
    struct plat_thread *t[4];
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(plat_mutex_create(&k.m, &e), 0);
    assert_int_equal(plat_cond_create(&k.c, &e), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(plat_thread_start(&t[i], count_up, &k, &e), 0);
    plat_mutex_lock(k.m);
    while (k.done < 4)
        assert_int_equal(plat_cond_wait(k.c, k.m, 10000), 0);
    plat_mutex_unlock(k.m);
    for (int i = 0; i < 4; i++)
        plat_thread_join(t[i]);
    assert_int_equal(k.value, 4 * 20000);

    /* A wait with nobody signalling times out, after about the time asked. */
    uint64_t t0 = plat_monotonic_ms();
    plat_mutex_lock(k.m);
    int rc = plat_cond_wait(k.c, k.m, 100);
    plat_mutex_unlock(k.m);
    uint64_t dt = plat_monotonic_ms() - t0;
    assert_int_equal(rc, ERR_TIMEOUT);
    assert_true(dt >= 90);
    assert_true(dt < 5000);
    plat_cond_signal(k.c); /* no waiter: harmless */
    plat_cond_destroy(k.c);
    plat_mutex_destroy(k.m);
    plat_thread_join(NULL);
}

static void test_time(void **state)
{
    (void)state;
    uint64_t a = plat_monotonic_ms();
    plat_sleep_ms(50);
    uint64_t b = plat_monotonic_ms();
    assert_true(b >= a + 45);
    assert_true(b < a + 5000);
    int64_t now = plat_wall_time();
    int64_t now_ms = plat_wall_time_ms();
    assert_true(now > 1700000000); /* after 2023 */
    assert_true(now < 4102444800); /* before 2100 */
    assert_true(now_ms / 1000 - now <= 1 && now_ms / 1000 - now >= 0);
    uint64_t prev = plat_monotonic_ms();
    for (int i = 0; i < 1000; i++) {
        uint64_t cur = plat_monotonic_ms();
        assert_true(cur >= prev);
        prev = cur;
    }
}

/* --- system --------------------------------------------------------------------------- */

static void test_random(void **state)
{
    unsigned char a[32], b[32], big[5000];
    (void)state;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(plat_random_bytes(a, sizeof(a), NULL), 0);
    assert_int_equal(plat_random_bytes(b, sizeof(b), NULL), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    static const unsigned char zero[32];
    assert_memory_not_equal(a, zero, sizeof(a));
    /* Large requests are filled completely (check the tail is not left zero). */
    memset(big, 0, sizeof(big));
    assert_int_equal(plat_random_bytes(big, sizeof(big), NULL), 0);
    assert_memory_not_equal(big + sizeof(big) - 32, zero, 32);
    assert_int_equal(plat_random_bytes(big, 0, NULL), 0);
}

static void test_system_info(void **state)
{
    char host[256], exe[1024], small[2];
    uint64_t fr = 0, total = 0;
    struct err e = ERR_INIT;
    struct plat_file_info info;
    (void)state;
    assert_int_equal(plat_hostname(host, sizeof(host), &e), 0);
    assert_true(strlen(host) > 0);
    assert_int_equal(plat_hostname(small, sizeof(small), &e), ERR_TOO_LARGE);
    assert_true(plat_pid() > 0);
    assert_int_equal(plat_disk_free(g_dir, &fr, &total, &e), 0);
    assert_true(total > 0);
    assert_true(fr <= total);
    assert_int_equal(plat_exe_dir(exe, sizeof(exe), &e), 0);
    assert_true(strlen(exe) > 0);
    assert_int_equal(plat_path_stat(exe, &info, &e), 0);
    assert_int_equal(info.is_dir, 1);
    assert_true(exe[strlen(exe) - 1] != PLAT_PATH_SEP || strlen(exe) <= 3);
    /* The system log never fails the caller. */
    plat_syslog_open("kasm-test");
    plat_syslog_write(20, "test_plat: a harmless test record");
    plat_syslog_close();
}

/* The CPU figure: the first sample only records; later ones are the busy share of the delta. */
static void test_cpu_sampler(void **state)
{
    struct plat_cpu_sampler s = {0};
    (void)state;
    assert_true(plat_cpu_sample(&s, 100, 1000) == 0.0);  /* first sample: no delta yet */
    assert_true(plat_cpu_sample(&s, 150, 1100) == 50.0); /* 50 busy of 100 elapsed */
    assert_true(plat_cpu_sample(&s, 150, 1200) == 0.0);  /* idle */
    assert_true(plat_cpu_sample(&s, 250, 1300) == 100.0);
    assert_true(plat_cpu_sample(&s, 250, 1300) == 0.0);   /* no time passed */
    assert_true(plat_cpu_sample(&s, 100, 1400) == 0.0);   /* counters went back: no figure */
    assert_true(plat_cpu_sample(&s, 400, 1450) == 100.0); /* clamped (300 busy of 50) */
    assert_true(s.prev_busy == 400 && s.prev_total == 1450);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_write_creates_and_replaces),
        cmocka_unit_test(test_atomic_write_private),
        cmocka_unit_test(test_atomic_write_error_leaves_nothing),
        cmocka_unit_test(test_read_all_limits),
        cmocka_unit_test(test_read_all_large),
        cmocka_unit_test(test_dirname_join),
        cmocka_unit_test(test_open_flags),
        cmocka_unit_test(test_read_loop),
        cmocka_unit_test(test_rename_and_replace),
        cmocka_unit_test(test_final_path),
        cmocka_unit_test(test_symlinks_refused),
        cmocka_unit_test(test_dir_listing),
        cmocka_unit_test(test_dir_create_all_and_restrict),
        cmocka_unit_test(test_file_set_user_access),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_device_files_refused),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_system_info),
        cmocka_unit_test(test_cpu_sampler),
    };
    return UNIT_RUN("plat", tests, setup, teardown);
}
