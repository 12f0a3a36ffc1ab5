/*
 * test_name.c - safe names and paths: name_validate() against a hostile corpus (and good
 * names that must pass), name_path_is_under() in both styles, and name_open_under() on a
 * real directory with planted links. Runs natively and under Wine.
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
#include "testdir.h"

struct name_case {
    const char *name;
    size_t len;      /* 0: strlen(name) */
    const char *why; /* NULL: must be accepted; else a part of the rejection message */
};

#define SEP      "path separator"
#define COLON    "':'"
#define FORBID   "Windows forbids"
#define CTRL     "control character"
#define LOOK     "look-alike"
#define BIDI     "bidirectional"
#define RESV     "reserved Windows device"
#define TRAIL    "ends with a dot or a space"
#define LEAD     "starts with a space"
#define DOTS     "'.' or '..'"
#define UTF8     "not valid UTF-8"
#define OVERLONG "overlong"

static const struct name_case hostile[] = {
    /* traversal and paths */
    {"..\\x", 0, SEP},
    {"../x", 0, SEP},
    {"..\\..\\Windows\\System32\\x.dll", 0, SEP},
    {"a/b", 0, SEP},
    {"a\\b", 0, SEP},
    {"/", 0, SEP},
    {"\\", 0, SEP},
    {"/etc/passwd", 0, SEP},
    {"\\\\?\\C:\\x", 0, SEP},
    {"\\\\server\\share", 0, SEP},
    {"x/", 0, SEP},
    /* drives and alternate data streams */
    {"C:", 0, COLON},
    {"C:x", 0, COLON},
    {"a:b", 0, COLON},
    {"file.txt:Zone.Identifier", 0, COLON},
    {"x::$DATA", 0, COLON},
    /* dot names and Windows stripping */
    {".", 0, DOTS},
    {"..", 0, DOTS},
    {"...", 0, TRAIL},
    {"x.", 0, TRAIL},
    {"x ", 0, TRAIL},
    {"x. .", 0, TRAIL},
    {"report.pdf ", 0, TRAIL},
    {" x", 0, LEAD},
    {" ", 0, LEAD},
    {"x\xef\xbc\x8e", 0, TRAIL}, /* fullwidth full stop at the end */
    {"x\xe3\x80\x80", 0, TRAIL}, /* ideographic space at the end */
    {"\xc2\xa0x", 0, LEAD},      /* no-break space at the start */
    {"", 0, "empty"},
    /* reserved device names */
    {"CON", 0, RESV},
    {"con", 0, RESV},
    {"con.txt", 0, RESV},
    {"CON.tar.gz", 0, RESV},
    {"PRN.doc", 0, RESV},
    {"aux", 0, RESV},
    {"Nul", 0, RESV},
    {"NUL .txt", 0, RESV},
    {"nul   .txt", 0, RESV},
    {"COM1", 0, RESV},
    {"com9.log", 0, RESV},
    {"COM0.txt", 0, RESV},
    {"LPT9.log", 0, RESV},
    {"lpt1", 0, RESV},
    {"COM\xc2\xb9", 0, RESV},     /* COM superscript one */
    {"com\xc2\xb2.txt", 0, RESV}, /* com superscript two */
    {"LPT\xc2\xb3.log", 0, RESV}, /* LPT superscript three */
    {"CONIN$", 0, RESV},
    {"conout$.log", 0, RESV},
    {"CLOCK$", 0, RESV},
    /* characters Windows forbids */
    {"a*b", 0, FORBID},
    {"a?b", 0, FORBID},
    {"a\"b", 0, FORBID},
    {"a<b", 0, FORBID},
    {"a>b", 0, FORBID},
    {"a|b", 0, FORBID},
    {"*.*", 0, FORBID},
    /* control characters */
    {"a\tb", 0, CTRL},
    {"a\nb", 0, CTRL},
    {"a\rb", 0, CTRL},
    {"a\x01", 0, CTRL},
    {"a\x7f", 0, CTRL},
    {"\x1b[31mred", 0, CTRL},
    {"a\0b", 3, CTRL},
    {"a\xc2\x85"
     "b",
     0, CTRL}, /* NEL, a C1 control */
    {"a\xc2\x9b"
     "b",
     0, CTRL}, /* CSI, a C1 control */
    {"a\xe2\x80\xa8"
     "b",
     0, CTRL}, /* line separator */
    {"a\xe2\x80\xa9"
     "b",
     0, CTRL}, /* paragraph separator */
    /* look-alikes */
    {"..\xef\xbc\x8f"
     "etc",
     0, LOOK}, /* fullwidth solidus */
    {"a\xef\xbc\xbc"
     "b",
     0, LOOK}, /* fullwidth reverse solidus */
    {"a\xe2\x88\x95"
     "b",
     0, LOOK}, /* division slash */
    {"a\xe2\x81\x84"
     "b",
     0, LOOK}, /* fraction slash */
    {"C\xef\xbc\x9a"
     "x",
     0, LOOK}, /* fullwidth colon */
    {"a\xe2\xa7\xb8"
     "b",
     0, LOOK}, /* big solidus */
    {"a\xe2\xa7\xb9"
     "b",
     0, LOOK}, /* big reverse solidus */
    {"a\xef\xb9\xa8"
     "b",
     0, LOOK}, /* small reverse solidus */
    {"a\xe2\x88\x96"
     "b",
     0, LOOK}, /* set minus */
    {"a\xc2\xa5"
     "b",
     0, LOOK}, /* yen sign */
    {"a\xe2\x82\xa9"
     "b",
     0, LOOK}, /* won sign */
    {"a\xef\xbc\x8a"
     "b",
     0, LOOK}, /* fullwidth asterisk */
    {"a\xef\xbc\x9f"
     "b",
     0, LOOK}, /* fullwidth question mark */
    {"a\xef\xbc\x82"
     "b",
     0, LOOK}, /* fullwidth quotation mark */
    {"a\xef\xbc\x9c"
     "b",
     0, LOOK}, /* fullwidth less-than */
    {"a\xef\xbc\x9e"
     "b",
     0, LOOK}, /* fullwidth greater-than */
    {"a\xef\xbd\x9c"
     "b",
     0, LOOK}, /* fullwidth vertical line */
    /* bidirectional controls */
    {"evil\xe2\x80\xae"
     "gpj.exe",
     0, BIDI}, /* RIGHT-TO-LEFT OVERRIDE */
    {"a\xe2\x80\xaa"
     "b",
     0, BIDI}, /* LRE */
    {"a\xe2\x80\xad"
     "b",
     0, BIDI}, /* LRO */
    {"a\xe2\x81\xa6"
     "b",
     0, BIDI}, /* LRI */
    {"a\xe2\x81\xa9"
     "b",
     0, BIDI}, /* PDI */
    {"a\xe2\x80\x8f"
     "b",
     0, BIDI}, /* RLM */
    {"a\xd8\x9c"
     "b",
     0, BIDI}, /* ARABIC LETTER MARK */
    /* malformed UTF-8 */
    {"\xc0\xae\xc0\xae", 0, OVERLONG}, /* ".." in two-byte overlong form */
    {"\xc0\xaf", 0, OVERLONG},         /* "/" overlong */
    {"\xc1\x9c", 0, OVERLONG},         /* "\" overlong */
    {"\xe0\x80\xaf", 0, OVERLONG},     /* "/" three-byte overlong */
    {"\xf0\x80\x80\xaf", 0, OVERLONG}, /* "/" four-byte overlong */
    {"\xed\xa0\x80", 0, "surrogate"},  /* U+D800 */
    {"\xed\xbf\xbf", 0, "surrogate"},  /* U+DFFF */
    {"\xf4\x90\x80\x80", 0, UTF8},     /* past U+10FFFF */
    {"\xff", 0, UTF8},
    {"a\xfe"
     "b",
     0, UTF8},
    {"\x80"
     "abc",
     0, UTF8},
    {"abc\xe6\x97", 0, UTF8}, /* cut short at the end */
    {"a\xc3(", 0, UTF8},      /* bad continuation */
    {"%c0%ae", 0, NULL},      /* percent text is literal, never decoded */
    /* good names */
    {"report.pdf", 0, NULL},
    {"r\xc3\xa9sum\xc3\xa9.pdf", 0, NULL},                              /* résumé.pdf */
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", 0, NULL},              /* 日本語.txt */
    {"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82.docx", 0, NULL}, /* Привет.docx */
    {"emoji\xf0\x9f\x98\x80.png", 0, NULL},                             /* four-byte UTF-8 */
    {"dev \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb.txt", 0, NULL},  /* ZWJ sequence */
    {"my file (1).txt", 0, NULL},
    {"a.b.c.tar.gz", 0, NULL},
    {".bashrc", 0, NULL},
    {"..hidden", 0, NULL},
    {".x.", 0, TRAIL},
    {"CONSOLE.txt", 0, NULL},
    {"COM10.txt", 0, NULL},
    {"COM.txt", 0, NULL},
    {"LPT", 0, NULL},
    {"NULL", 0, NULL},
    {"x.CON", 0, NULL},
    {"con_x.txt", 0, NULL},
    {"CON x.txt", 0, NULL},
    {"PROGRA~1", 0, NULL},
    {"-rf", 0, NULL},
    {"a;b&c'd$e", 0, NULL},
    {"#1 [draft] {v2} @home +50%.txt", 0, NULL},
    {"x", 0, NULL},
};

static void test_hostile_corpus(void **state)
{
    (void)state;
    size_t rows = sizeof(hostile) / sizeof(hostile[0]);
    assert_true(rows >= 60);
    for (size_t i = 0; i < rows; i++) {
        const struct name_case *c = &hostile[i];
        size_t len = c->len ? c->len : strlen(c->name);
        struct err e = ERR_INIT;
        int rc = name_validate_len(c->name, len, &e);
        if (!c->why) {
            if (rc != 0)
                fail_msg("row %u: a good name was refused: %s", (unsigned)i, e.msg);
            continue;
        }
        if (rc != ERR_INVALID)
            fail_msg("row %u: a bad name was accepted (want \"%s\")", (unsigned)i, c->why);
        if (!strstr(e.msg, c->why))
            fail_msg("row %u: message \"%s\" does not name the rule \"%s\"", (unsigned)i, e.msg,
                     c->why);
        /* The NUL-terminated entry point agrees (when the row has no embedded NUL). */
        if (!c->len) {
            struct err e2 = ERR_INIT;
            assert_int_equal(name_validate(c->name, &e2), ERR_INVALID);
            assert_string_equal(e.msg, e2.msg);
        }
    }
    assert_int_equal(name_validate(NULL, NULL), ERR_INVALID);
}

static void repeat(char *out, const char *unit, size_t times)
{
    size_t ul = strlen(unit);
    for (size_t i = 0; i < times; i++)
        memcpy(out + i * ul, unit, ul);
    out[times * ul] = '\0';
}

static void test_lengths(void **state)
{
    char buf[1200];
    struct err e = ERR_INIT;
    (void)state;
    repeat(buf, "a", 255);
    assert_int_equal(name_validate(buf, &e), 0);
    repeat(buf, "a", 256);
    assert_int_equal(name_validate(buf, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "255 bytes"));
    repeat(buf, "a", 1000);
    assert_int_equal(name_validate(buf, &e), ERR_INVALID);
    /* 85 x U+65E5 = 255 bytes, 85 UTF-16 units: fits; 86 does not (258 bytes). */
    repeat(buf, "\xe6\x97\xa5", 85);
    assert_int_equal(name_validate(buf, &e), 0);
    repeat(buf, "\xe6\x97\xa5", 86);
    assert_int_equal(name_validate(buf, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "longer than"));
    /* 254 ASCII bytes + a two-byte character = 256 bytes. */
    repeat(buf, "b", 254);
    strcat(buf, "\xc3\xa9");
    assert_int_equal(name_validate(buf, &e), ERR_INVALID);
    /* 63 emoji = 252 bytes, 126 UTF-16 units; plus "abc" = 255 bytes. */
    repeat(buf, "\xf0\x9f\x98\x80", 63);
    strcat(buf, "abc");
    assert_int_equal(name_validate(buf, &e), 0);
    /* A multibyte character cut by the byte limit is still a length error, not UTF-8. */
    repeat(buf, "\xe6\x97\xa5", 100);
    assert_int_equal(name_validate_len(buf, 256, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "longer than"));
}

static void test_join_under(void **state)
{
    char out[64];
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(name_join_under("root", "a.txt", out, sizeof(out), &e), 0);
    assert_string_equal(out, "root" PLAT_PATH_SEP_STR "a.txt");
    assert_int_equal(name_join_under("root" PLAT_PATH_SEP_STR, "a.txt", out, sizeof(out), &e), 0);
    assert_string_equal(out, "root" PLAT_PATH_SEP_STR "a.txt");
    assert_int_equal(name_join_under("root", "../a.txt", out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(name_join_under("root", "CON", out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(name_join_under("", "a.txt", out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(name_join_under("root", "a.txt", out, 10, &e), ERR_TOO_LARGE);
}

struct under_case {
    enum name_path_style style;
    const char *root;
    const char *path;
    int want;
};

static const struct under_case under_cases[] = {
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/x", 1},
    {NAME_STYLE_POSIX, "/home/bob/Downloads/", "/home/bob/Downloads/x", 1},
    {NAME_STYLE_POSIX, "/home/bob/Downloads//", "/home/bob/Downloads/x", 1},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/a/b", 1},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads2/x", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Download", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/downloads/x", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/../x", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/./x", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/a/..", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads\\x", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/etc/passwd", 0},
    {NAME_STYLE_POSIX, "/home/bob/Downloads", "/home/bob/Downloads/..x", 1},
    {NAME_STYLE_POSIX, "/", "/x", 1},
    {NAME_STYLE_POSIX, "/", "/", 0},
    {NAME_STYLE_POSIX, "", "/x", 0},
    {NAME_STYLE_POSIX, "/a", "", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:\\Users\\bob\\Downloads\\x", 1},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:\\Users\\bob\\Downloads2\\x", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "c:\\users\\BOB\\downloads\\x", 1},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:/Users/bob/Downloads/x", 1},
    {NAME_STYLE_WINDOWS, "C:/Users/bob/Downloads/", "C:\\Users\\bob\\Downloads\\x", 1},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads\\", "C:\\Users\\bob\\Downloads\\x", 1},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:\\Users\\bob\\Downloads", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:\\Users\\bob\\Downloads\\", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:\\Users\\bob\\Downloads\\..\\x", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "C:\\Users\\bob\\Downloads/../x", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\bob\\Downloads", "D:\\Users\\bob\\Downloads\\x", 0},
    {NAME_STYLE_WINDOWS, "C:\\", "C:\\x", 1},
    {NAME_STYLE_WINDOWS, "C:\\", "D:\\x", 0},
    {NAME_STYLE_WINDOWS, "\\\\srv\\share", "\\\\srv\\share\\x", 1},
    {NAME_STYLE_WINDOWS, "\\\\srv\\share", "\\\\srv\\share2\\x", 0},
    /* Only ASCII is folded: a non-ASCII case difference refuses (safe), never accepts. */
    {NAME_STYLE_WINDOWS, "C:\\Users\\\xc3\x89mile", "C:\\Users\\\xc3\xa9mile\\x", 0},
    {NAME_STYLE_WINDOWS, "C:\\Users\\\xc3\x89mile", "C:\\Users\\\xc3\x89mile\\x", 1},
};

static void test_path_is_under(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(under_cases) / sizeof(under_cases[0]); i++) {
        const struct under_case *c = &under_cases[i];
        int got = name_path_is_under_style(c->root, c->path, c->style);
        if (got != c->want)
            fail_msg("row %u: is_under(%s, %s) = %d, want %d", (unsigned)i, c->root, c->path, got,
                     c->want);
    }
    /* The native style uses the platform's separator. */
    assert_int_equal(name_path_is_under("r" PLAT_PATH_SEP_STR "d",
                                        "r" PLAT_PATH_SEP_STR "d" PLAT_PATH_SEP_STR "x"),
                     1);
    assert_int_equal(name_path_is_under("r" PLAT_PATH_SEP_STR "d",
                                        "r" PLAT_PATH_SEP_STR "d2" PLAT_PATH_SEP_STR "x"),
                     0);
    assert_int_equal(name_path_is_under(NULL, "x"), 0);
    assert_int_equal(name_path_is_under("x", NULL), 0);
}

/* --- name_open_under on a real directory --------------------------------------------- */

static char g_base[1024]; /* scratch: holds root/ and outside/ */
static char g_root[1100]; /* the "Downloads" folder */
static char g_out[1100];  /* a folder outside the root */

static int setup(void **state)
{
    (void)state;
    if (td_make("name", g_base, sizeof(g_base)) < 0)
        return -1;
    if (fs_join(g_base, "root", g_root, sizeof(g_root), NULL) < 0 ||
        fs_join(g_base, "outside", g_out, sizeof(g_out), NULL) < 0)
        return -1;
    if (plat_dir_create(g_root, NULL) < 0 || plat_dir_create(g_out, NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_remove_tree(g_base);
    return 0;
}

static void read_back(struct plat_file *f, const char *want)
{
    char buf[64];
    size_t got = 0;
    assert_int_equal(plat_file_pread(f, buf, sizeof(buf), 0, &got, NULL), 0);
    assert_int_equal(got, strlen(want));
    assert_memory_equal(buf, want, got);
}

static void test_open_under_basic(void **state)
{
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    char fp[1200], want[1200];
    (void)state;
    assert_int_equal(
        name_open_under(g_root, "upload.txt", PLAT_OPEN_READ | PLAT_OPEN_WRITE, &f, &e), 0);
    assert_non_null(f);
    assert_int_equal(plat_file_final_path(f, fp, sizeof(fp), &e), 0);
    assert_int_equal(fs_join(g_root, "upload.txt", want, sizeof(want), NULL), 0);
    assert_string_equal(fp, want);
    assert_int_equal(plat_file_write_all(f, "data", 4, &e), 0);
    read_back(f, "data");
    plat_file_close(f);
    f = NULL;

    /* Writes never replace: the same name again is ERR_EXISTS, content unchanged. */
    assert_int_equal(name_open_under(g_root, "upload.txt", PLAT_OPEN_WRITE, &f, &e), ERR_EXISTS);
    assert_null(f);
    assert_int_equal(name_open_under(g_root, "upload.txt", PLAT_OPEN_READ, &f, &e), 0);
    read_back(f, "data");
    plat_file_close(f);
    f = NULL;

    /* Truncate/append are not offered under a user folder. */
    assert_int_equal(
        name_open_under(g_root, "upload.txt", PLAT_OPEN_WRITE | PLAT_OPEN_TRUNCATE, &f, &e),
        ERR_INVALID);
    assert_int_equal(
        name_open_under(g_root, "upload.txt", PLAT_OPEN_WRITE | PLAT_OPEN_APPEND, &f, &e),
        ERR_INVALID);
    assert_int_equal(name_open_under(g_root, "missing.txt", PLAT_OPEN_READ, &f, &e), ERR_NOT_FOUND);
    assert_null(f);

    /* Bad names never reach the disk. */
    static const char *const bad[] = {"../escape.txt", "..", "CON", "a:b", "x.", "",
                                      "..\\escape.txt"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(name_open_under(g_root, bad[i], PLAT_OPEN_WRITE, &f, &e), ERR_INVALID);
        assert_null(f);
    }
    assert_int_equal(td_count(g_base), 2); /* root and outside only */
    assert_int_equal(td_count(g_out), 0);
    assert_int_equal(td_count(g_root), 1);

    /* A root that does not exist is an error, not a creation. */
    char nowhere[1200];
    assert_int_equal(fs_join(g_base, "nowhere", nowhere, sizeof(nowhere), NULL), 0);
    assert_int_equal(name_open_under(nowhere, "a.txt", PLAT_OPEN_WRITE, &f, &e), ERR_NOT_FOUND);
    assert_int_equal(td_count(g_base), 2);

    assert_int_equal(fs_join(g_root, "upload.txt", want, sizeof(want), NULL), 0);
    assert_int_equal(plat_path_remove(want, NULL), 0);
}

static int try_symlink(const char *target, const char *link, int is_dir)
{
    struct err e = ERR_INIT;
    int rc = plat_symlink_create(target, link, is_dir, &e);
    if (rc == ERR_UNSUPPORTED || rc == ERR_PERMISSION) {
        print_message("[   NOTE   ] symbolic links cannot be created here (%s); the planted-"
                      "link checks do not run on this host\n",
                      e.msg);
        return 0;
    }
    assert_int_equal(rc, 0);
    return 1;
}

static void test_open_under_planted_link(void **state)
{
    char secret[1200], link[1200], target[1200];
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(fs_join(g_out, "secret.txt", secret, sizeof(secret), NULL), 0);
    assert_int_equal(td_write(secret, "secret"), 0);
    assert_int_equal(fs_join(g_root, "evil.txt", link, sizeof(link), NULL), 0);
    if (!try_symlink(secret, link, 0))
        goto out;
    /* Reading through the link is refused, and nothing is read. */
    assert_int_equal(name_open_under(g_root, "evil.txt", PLAT_OPEN_READ, &f, &e), ERR_PERMISSION);
    assert_null(f);
    /* Writing to the link's name is refused (CREATE_NEW sees it exists) ... */
    assert_int_equal(name_open_under(g_root, "evil.txt", PLAT_OPEN_WRITE, &f, &e), ERR_EXISTS);
    assert_null(f);
    /* ... and the secret is unchanged. */
    {
        char *buf = NULL;
        assert_int_equal(fs_read_all(secret, 100, &buf, NULL, NULL), 0);
        assert_string_equal(buf, "secret");
        free(buf);
    }
    assert_int_equal(plat_path_remove(link, NULL), 0);

    /* A dangling link to a new file outside: no file appears outside. */
    assert_int_equal(fs_join(g_out, "created.txt", target, sizeof(target), NULL), 0);
    if (try_symlink(target, link, 0)) {
        assert_int_equal(name_open_under(g_root, "evil.txt", PLAT_OPEN_WRITE, &f, &e), ERR_EXISTS);
        struct plat_file_info info;
        assert_int_equal(plat_path_stat(target, &info, NULL), ERR_NOT_FOUND);
        assert_int_equal(plat_path_remove(link, NULL), 0);
    }
out:
    assert_int_equal(td_count(g_out), 1); /* only secret.txt */
    assert_int_equal(plat_path_remove(secret, NULL), 0);
    assert_int_equal(td_count(g_root), 0);
}

static void test_open_under_swapped_root(void **state)
{
    char root_final[1200], moved[1200];
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    (void)state;
    /* The helper resolves its Downloads folder once ... */
    assert_int_equal(name_root_resolve(g_root, root_final, sizeof(root_final), &e), 0);
    assert_int_equal(name_open_under_resolved(root_final, "ok.txt", PLAT_OPEN_WRITE, &f, &e), 0);
    plat_file_close(f);
    f = NULL;
    /* ... then someone swaps the folder for a link to another place. */
    assert_int_equal(fs_join(g_base, "root.moved", moved, sizeof(moved), NULL), 0);
    assert_int_equal(plat_path_replace(g_root, moved, &e), 0);
    if (try_symlink(g_out, g_root, 1)) {
        e = (struct err)ERR_INIT;
        int rc = name_open_under_resolved(root_final, "escape.txt", PLAT_OPEN_WRITE, &f, &e);
        assert_int_equal(rc, ERR_PERMISSION);
        assert_null(f);
        assert_non_null(strstr(e.msg, "outside"));
        /* The file it had to create on the way was deleted again: nothing outside. */
        assert_int_equal(td_count(g_out), 0);
        /* Reads through the swapped root are refused too. */
        char planted[1200];
        assert_int_equal(fs_join(g_out, "planted.txt", planted, sizeof(planted), NULL), 0);
        assert_int_equal(td_write(planted, "x"), 0);
        assert_int_equal(
            name_open_under_resolved(root_final, "planted.txt", PLAT_OPEN_READ, &f, &e),
            ERR_PERMISSION);
        assert_null(f);
        assert_int_equal(plat_path_remove(planted, NULL), 0);
        assert_int_equal(plat_path_remove(g_root, NULL), 0);
    }
    assert_int_equal(plat_path_replace(moved, g_root, &e), 0);
    assert_int_equal(td_count(g_root), 1); /* ok.txt */
    char ok[1200];
    assert_int_equal(fs_join(g_root, "ok.txt", ok, sizeof(ok), NULL), 0);
    assert_int_equal(plat_path_remove(ok, NULL), 0);
    assert_int_equal(td_count(g_base), 2);
}

static void test_open_under_root_is_link(void **state)
{
    char alias[1200], fp[1200], want[1200];
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    (void)state;
    /* A root that is itself a link (a redirected folder) is resolved once, then used. */
    assert_int_equal(fs_join(g_base, "alias", alias, sizeof(alias), NULL), 0);
    if (!try_symlink(g_root, alias, 1))
        return;
    assert_int_equal(name_open_under(alias, "via-alias.txt", PLAT_OPEN_WRITE, &f, &e), 0);
    assert_int_equal(plat_file_final_path(f, fp, sizeof(fp), &e), 0);
    assert_int_equal(fs_join(g_root, "via-alias.txt", want, sizeof(want), NULL), 0);
    assert_string_equal(fp, want);
    plat_file_close(f);
    assert_int_equal(plat_path_remove(want, NULL), 0);
    assert_int_equal(plat_path_remove(alias, NULL), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_corpus),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_join_under),
        cmocka_unit_test(test_path_is_under),
        cmocka_unit_test(test_open_under_basic),
        cmocka_unit_test(test_open_under_planted_link),
        cmocka_unit_test(test_open_under_swapped_root),
        cmocka_unit_test(test_open_under_root_is_link),
    };
    return UNIT_RUN("name", tests, setup, teardown);
}
