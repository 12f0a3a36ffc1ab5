/*
 * test_listing.c - service/transfer/listing.c: the exact listing bytes for a known folder,
 * HTML and URL escaping, hidden/'$' entries and show_hidden, streaming in bounded pieces,
 * and URL path resolution (traversal, encoded separators, NUL, links out of the folder: all
 * not found). Runs natively and under Wine (link cases skip where links cannot be made).
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
#include "listing.h"
#include "name.h"
#include "plat.h"
#include "testdir.h"

static char g_parent[1024];
static char g_root[1024];

static int setup(void **state)
{
    (void)state;
    if (td_make("lst", g_parent, sizeof(g_parent)) < 0 ||
        fs_join(g_parent, "root", g_root, sizeof(g_root), NULL) < 0 ||
        plat_dir_create(g_root, NULL) < 0 ||
        plat_dir_final_path(g_root, g_root, sizeof(g_root), NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_remove_tree(g_parent);
    return 0;
}

struct sink {
    char *buf;
    size_t len, cap;
    size_t max_piece;
    int pieces;
    int fail_after; /* >0: fail on that piece */
};

static int sink_write(void *ctx, const void *data, size_t len)
{
    struct sink *s = ctx;
    s->pieces++;
    if (s->fail_after && s->pieces >= s->fail_after)
        return ERR_NETWORK;
    if (len > s->max_piece)
        s->max_piece = len;
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        assert_non_null(s->buf);
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

static void put(const char *rel, const char *text)
{
    char path[2048];
    assert_int_equal(fs_join(g_root, rel, path, sizeof(path), NULL), 0);
    assert_int_equal(td_write(path, text), 0);
}

static void mkdir_in(const char *rel)
{
    char path[2048];
    assert_int_equal(fs_join(g_root, rel, path, sizeof(path), NULL), 0);
    assert_int_equal(plat_dir_create(path, NULL), 0);
}

static char *render(const char *dir, const char *heading, int show_hidden)
{
    struct sink s;
    struct err e = ERR_INIT;
    memset(&s, 0, sizeof(s));
    assert_int_equal(lst_render(dir, heading, show_hidden, sink_write, &s, &e), 0);
    assert_true(s.max_piece <= LST_CHUNK);
    return s.buf;
}

static void test_exact_listing_bytes(void **state)
{
    char *html;
    (void)state;
    put("b.txt", "b");
    put("Zeta.txt", "z");
    put("x&y's.txt", "x");
    put("\xc3\xa9t\xc3\xa9 \xe6\x97\xa5.txt", "u");
    mkdir_in("a dir");
    html = render(g_root, "/Downloads/Downloads/", 0);
    assert_string_equal(html, "<html><title>Directory Listing</title><body>"
                              "<h2>/Downloads/Downloads/</h2><hr/><ul>"
                              "<li><a href=\"Zeta.txt\">Zeta.txt</a></li>"
                              "<li><a href=\"a%20dir/\">a dir/</a></li>"
                              "<li><a href=\"b.txt\">b.txt</a></li>"
                              "<li><a href=\"x%26y%27s.txt\">x&amp;y&#39;s.txt</a></li>"
                              "<li><a href=\"%C3%A9t%C3%A9%20%E6%97%A5.txt\">"
                              "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5.txt</a></li>"
                              "</ul></body></html>");
    free(html);
    /* an empty folder, and a heading that needs escaping */
    mkdir_in("empty");
    {
        char sub[2048];
        assert_int_equal(fs_join(g_root, "empty", sub, sizeof(sub), NULL), 0);
        html = render(sub, "<a&b \"c\" 'd'>", 0);
        assert_string_equal(html, "<html><title>Directory Listing</title><body>"
                                  "<h2>&lt;a&amp;b &quot;c&quot; &#39;d&#39;&gt;</h2><hr/><ul>"
                                  "</ul></body></html>");
        free(html);
    }
}

static void test_escaping_tables(void **state)
{
    static const struct {
        const char *in, *url, *html;
    } cases[] = {
        {"plain-name_1.~txt", "plain-name_1.~txt", "plain-name_1.~txt"},
        {"<>&\"'", "%3C%3E%26%22%27", "&lt;&gt;&amp;&quot;&#39;"},
        {"a b+c%d", "a%20b%2Bc%25d", "a b+c%d"},
        {"/\\?#[]@!$,;=:", "%2F%5C%3F%23%5B%5D%40%21%24%2C%3B%3D%3A", "/\\?#[]@!$,;=:"},
        {"\xc3\xa9\xf0\x9f\x98\x80", "%C3%A9%F0%9F%98%80", "\xc3\xa9\xf0\x9f\x98\x80"},
        {"", "", ""},
    };
    char out[256];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(lst_url_escape(cases[i].in, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].url);
        assert_int_equal(lst_html_escape(cases[i].in, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].html);
    }
    assert_int_equal(lst_url_escape(" ", out, 3), ERR_TOO_LARGE);
    assert_int_equal(lst_url_escape(" ", out, 4), 0);
    assert_int_equal(lst_html_escape("&", out, 5), ERR_TOO_LARGE);
}

static void test_hidden_and_dollar_entries(void **state)
{
    struct plat_file *f = NULL;
    char *html;
    (void)state;
    put("visible.txt", "v");
    put("$secret.txt", "s");
    mkdir_in("$RECYCLE.BIN");
    /* hidden on both systems: a dot name (POSIX) created with the hidden attribute (Windows) */
    assert_int_equal(name_open_under(g_root, ".kasm-upload-x.part",
                                     PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW | PLAT_OPEN_HIDDEN, &f,
                                     NULL),
                     0);
    plat_file_close(f);
    html = render(g_root, "h", 0);
    assert_string_equal(html, "<html><title>Directory Listing</title><body><h2>h</h2><hr/><ul>"
                              "<li><a href=\"visible.txt\">visible.txt</a></li>"
                              "</ul></body></html>");
    free(html);
    html = render(g_root, "h", 1);
    assert_string_equal(html, "<html><title>Directory Listing</title><body><h2>h</h2><hr/><ul>"
                              "<li><a href=\"%24RECYCLE.BIN/\">$RECYCLE.BIN/</a></li>"
                              "<li><a href=\"%24secret.txt\">$secret.txt</a></li>"
                              "<li><a href=\".kasm-upload-x.part\">.kasm-upload-x.part</a></li>"
                              "<li><a href=\"visible.txt\">visible.txt</a></li>"
                              "</ul></body></html>");
    free(html);
}

static void test_streams_many_entries_in_pieces(void **state)
{
    struct sink s;
    struct err e = ERR_INIT;
    char name[64];
    int count = 0;
    (void)state;
    for (int i = 0; i < 1500; i++) {
        snprintf(name, sizeof(name), "file-%05d-with-a-longish-name.bin", i);
        put(name, "");
    }
    memset(&s, 0, sizeof(s));
    assert_int_equal(lst_render(g_root, "big", 0, sink_write, &s, &e), 0);
    assert_true(s.pieces > 5);
    assert_true(s.max_piece <= LST_CHUNK);
    for (const char *p = s.buf; (p = strstr(p, "<li>")) != NULL; p++)
        count++;
    assert_int_equal(count, 1500);
    /* sorted */
    assert_true(strstr(s.buf, "file-00000") < strstr(s.buf, "file-01499"));
    free(s.buf);
    /* a writer that fails (client gone) stops the listing with its code */
    memset(&s, 0, sizeof(s));
    s.fail_after = 2;
    assert_int_equal(lst_render(g_root, "big", 0, sink_write, &s, &e), ERR_NETWORK);
    assert_int_equal(s.pieces, 2);
    free(s.buf);
    /* a missing folder is an error, not an empty listing */
    memset(&s, 0, sizeof(s));
    assert_true(lst_render("/nonexistent-kasm-dir/x", "x", 0, sink_write, &s, &e) < 0);
    assert_int_equal(s.pieces, 0);
}

static void test_resolve_table(void **state)
{
    static const struct {
        const char *url;
        int rc; /* 0 or ERR_NOT_FOUND */
        int is_dir;
        const char *name;
    } cases[] = {
        {"", 0, 1, ""},
        {"/", 0, 1, ""},
        {"sub", 0, 1, "sub"},
        {"sub/", 0, 1, "sub"},
        {"sub//deeper/", 0, 1, "deeper"},
        {"sub/f.txt", 0, 0, "f.txt"},
        {"a%20b.txt", 0, 0, "a b.txt"},
        {"sub/%66.txt", 0, 0, "f.txt"},
        {"%C3%A9.txt", 0, 0, "\xc3\xa9.txt"},
        {"..", ERR_NOT_FOUND, 0, NULL},
        {"sub/../sub/f.txt", ERR_NOT_FOUND, 0, NULL},
        {"%2e%2e/x", ERR_NOT_FOUND, 0, NULL},
        {"sub%2Ff.txt", ERR_NOT_FOUND, 0, NULL},
        {"sub%5Cf.txt", ERR_NOT_FOUND, 0, NULL},
        {"f.txt%00.png", ERR_NOT_FOUND, 0, NULL},
        {"%zz", ERR_NOT_FOUND, 0, NULL},
        {"%4", ERR_NOT_FOUND, 0, NULL},
        {"%C0%AE%C0%AE/x", ERR_NOT_FOUND, 0, NULL},
        {"%FF.txt", ERR_NOT_FOUND, 0, NULL},
        {"nope.txt", ERR_NOT_FOUND, 0, NULL},
        {"sub/f.txt/x", ERR_NOT_FOUND, 0, NULL},
        {"con", ERR_NOT_FOUND, 0, NULL},
        {"C:%5CWindows", ERR_NOT_FOUND, 0, NULL},
    };
    struct lst_target t;
    struct err e = ERR_INIT;
    (void)state;
    mkdir_in("sub");
    mkdir_in("sub" PLAT_PATH_SEP_STR "deeper");
    put("sub" PLAT_PATH_SEP_STR "f.txt", "inner");
    put("a b.txt", "spaced");
    put("\xc3\xa9.txt", "accent");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = lst_resolve(g_root, cases[i].url, &t, &e);
        print_message("resolve case %u: %s\n", (unsigned)i, cases[i].url);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(t.is_dir, cases[i].is_dir);
            assert_string_equal(t.name, cases[i].name);
            assert_true(strcmp(t.path, g_root) == 0 || name_path_is_under(g_root, t.path));
            if (!t.is_dir) {
                char buf[16];
                size_t got = 0;
                assert_non_null(t.file);
                assert_int_equal(plat_file_read(t.file, buf, sizeof(buf), &got, NULL), 0);
                assert_true(got == t.info.size);
                plat_file_close(t.file);
            } else {
                assert_null(t.file);
            }
        } else {
            assert_null(t.file);
        }
    }
    assert_int_equal(lst_resolve(g_root, "sub", &t, &e), 0);
    assert_int_equal(t.trailing_slash, 0);
    assert_int_equal(lst_resolve(g_root, "sub/", &t, &e), 0);
    assert_int_equal(t.trailing_slash, 1);
}

static int try_symlink(const char *target, const char *link, int is_dir)
{
    struct err e = ERR_INIT;
    int rc = plat_symlink_create(target, link, is_dir, &e);
    if (rc == ERR_UNSUPPORTED || rc == ERR_PERMISSION)
        return 0;
    assert_int_equal(rc, 0);
    return 1;
}

static void test_links_out_of_the_folder(void **state)
{
    char outside[2048], secret[2048], link[2048], dlink[2048];
    struct lst_target t;
    struct err e = ERR_INIT;
    char *html;
    (void)state;
    assert_int_equal(fs_join(g_parent, "outside", outside, sizeof(outside), NULL), 0);
    assert_int_equal(plat_dir_create(outside, NULL), 0);
    assert_int_equal(fs_join(outside, "secret.txt", secret, sizeof(secret), NULL), 0);
    assert_int_equal(td_write(secret, "secret"), 0);
    assert_int_equal(fs_join(g_root, "file-link", link, sizeof(link), NULL), 0);
    assert_int_equal(fs_join(g_root, "dir-link", dlink, sizeof(dlink), NULL), 0);
    if (!try_symlink(secret, link, 0) || !try_symlink(outside, dlink, 1))
        UNIT_SKIP("symbolic links cannot be created here");
    put("real.txt", "r");
    html = render(g_root, "x", 1);
    assert_null(strstr(html, "link"));
    assert_non_null(strstr(html, "real.txt"));
    free(html);
    assert_int_equal(lst_resolve(g_root, "file-link", &t, &e), ERR_NOT_FOUND);
    assert_int_equal(lst_resolve(g_root, "dir-link/", &t, &e), ERR_NOT_FOUND);
    assert_int_equal(lst_resolve(g_root, "dir-link/secret.txt", &t, &e), ERR_NOT_FOUND);
    assert_null(t.file);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_listing_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hidden_and_dollar_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_many_entries_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_out_of_the_folder, setup, teardown),
    };
    return UNIT_RUN("listing", tests, NULL, NULL);
}
