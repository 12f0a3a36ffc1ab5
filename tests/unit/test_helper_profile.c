/*
 * test_helper_profile.c - the session helper's file-mapping path rules
 * (session_helper/profile_put.c): splitting and validating a profile-relative path, and the
 * folder walk (folders created inside the profile, links refused, nothing created outside).
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
#include "name.h"
#include "plat.h"
#include "profile_put.h"
#include "testdir.h"

static char g_parent[1024];
static char g_prof[1024];

static int setup(void **state)
{
    (void)state;
    if (td_make("hpf", g_parent, sizeof(g_parent)) < 0 ||
        fs_join(g_parent, "profile", g_prof, sizeof(g_prof), NULL) < 0 ||
        plat_dir_create(g_prof, NULL) < 0 ||
        plat_dir_final_path(g_prof, g_prof, sizeof(g_prof), NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_remove_tree(g_parent);
    return 0;
}

static int split(const char *rel, int *n, struct err *e)
{
    static char buf[4096];
    char *comps[HLP_PROF_DEPTH];
    return hlp_prof_split(rel, buf, sizeof(buf), comps, HLP_PROF_DEPTH, n, e);
}

static void test_split_accepts(void **state)
{
    char buf[256], *comps[HLP_PROF_DEPTH];
    struct err e = ERR_INIT;
    int n = 0;

    (void)state;
    assert_int_equal(hlp_prof_split("Desktop/sub dir/r\xc3\xa9sum\xc3\xa9.txt", buf, sizeof(buf),
                                    comps, HLP_PROF_DEPTH, &n, &e),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(comps[0], "Desktop");
    assert_string_equal(comps[1], "sub dir");
    assert_string_equal(comps[2], "r\xc3\xa9sum\xc3\xa9.txt");
    assert_int_equal(split(".bashrc", &n, &e), 0);
    assert_int_equal(n, 1);
}

static void test_split_refuses(void **state)
{
    static const char *bad[] = {
        "",          "/etc/passwd", "\\Windows\\x", "a//b",         "a/",  "../x",
        "a/../../x", "./x",         "a\\..\\..\\x", "C:/Windows/x", "C:x", "a/NUL",
        "con.txt",   "a/b\x01",     "a/trailing. ", "a/b:stream"};
    struct err e = ERR_INIT;
    int n = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = split(bad[i], &n, &e);
        if (rc != ERR_INVALID)
            fail_msg("\"%s\" was not refused (%d)", bad[i], rc);
        assert_true(e.msg[0] != '\0');
        assert_int_equal(n, 0);
    }
}

static void test_split_depth(void **state)
{
    char path[512] = "";
    struct err e = ERR_INIT;
    int n = 0;

    (void)state;
    for (int i = 0; i < HLP_PROF_DEPTH; i++)
        strcat(path, i ? "/d" : "d");
    assert_int_equal(split(path, &n, &e), 0);
    assert_int_equal(n, HLP_PROF_DEPTH);
    strcat(path, "/d");
    assert_int_equal(split(path, &n, &e), ERR_TOO_LARGE);
}

static void test_walk_creates_inside(void **state)
{
    char *comps[] = {"AppData", "Roaming", "app"};
    char out[2048], want[2048];
    struct plat_file_info st;
    struct err e = ERR_INIT;

    (void)state;
    assert_int_equal(hlp_prof_walk(g_prof, comps, 3, 0, out, sizeof(out), &e), ERR_NOT_FOUND);
    assert_int_equal(hlp_prof_walk(g_prof, comps, 3, 1, out, sizeof(out), &e), 0);
    assert_int_equal(fs_join(g_prof, "AppData", want, sizeof(want), NULL), 0);
    assert_int_equal(plat_path_stat(want, &st, NULL), 0);
    assert_true(st.is_dir);
    assert_true(name_path_is_under(g_prof, out));
    assert_non_null(strstr(out, "app"));
    /* again: the folders exist now */
    assert_int_equal(hlp_prof_walk(g_prof, comps, 3, 0, out, sizeof(out), &e), 0);
    /* no components: the profile itself */
    assert_int_equal(hlp_prof_walk(g_prof, comps, 0, 0, out, sizeof(out), &e), 0);
    assert_string_equal(out, g_prof);
}

static void test_walk_refuses_a_file_as_folder(void **state)
{
    char *comps[] = {"plain", "x"};
    char path[2048], out[2048];
    struct err e = ERR_INIT;

    (void)state;
    assert_int_equal(fs_join(g_prof, "plain", path, sizeof(path), NULL), 0);
    assert_int_equal(td_write(path, "x"), 0);
    assert_int_equal(hlp_prof_walk(g_prof, comps, 2, 1, out, sizeof(out), &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not a folder"));
}

static void test_walk_refuses_links(void **state)
{
    char *comps[] = {"Desktop", "new"};
    char outside[2048], link[2048], out[2048], made[2048];
    struct err e = ERR_INIT, le = ERR_INIT;
    struct plat_file_info st;
    int rc;

    (void)state;
    assert_int_equal(fs_join(g_parent, "outside", outside, sizeof(outside), NULL), 0);
    assert_int_equal(plat_dir_create(outside, NULL), 0);
    assert_int_equal(fs_join(g_prof, "Desktop", link, sizeof(link), NULL), 0);
    rc = plat_symlink_create(outside, link, 1, &le);
    if (rc == ERR_UNSUPPORTED || rc == ERR_PERMISSION)
        skip();
    assert_int_equal(rc, 0);
    assert_int_equal(hlp_prof_walk(g_prof, comps, 2, 1, out, sizeof(out), &e), ERR_PERMISSION);
    assert_non_null(strstr(e.msg, "link"));
    /* nothing was created through the link */
    assert_int_equal(fs_join(outside, "new", made, sizeof(made), NULL), 0);
    assert_int_equal(plat_path_stat(made, &st, NULL), ERR_NOT_FOUND);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_accepts),
        cmocka_unit_test(test_split_refuses),
        cmocka_unit_test(test_split_depth),
        cmocka_unit_test_setup_teardown(test_walk_creates_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_refuses_a_file_as_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_refuses_links, setup, teardown),
    };
    return UNIT_RUN("helper_profile", tests, NULL, NULL);
}
