/*
 * test_multipart.c - service/transfer/multipart.c: a table of bodies, each fed whole, one
 * byte at a time and in several piece sizes (so every boundary is split across pieces),
 * compared with the expected event trace or error; plus boundary extraction and limits.
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

#include "multipart.h"

/* The event trace: [name|filename|type] for a part, its data, '.' at its end, '$' at done. */
struct trace {
    char buf[70000];
    size_t len;
    int fail_at_begin; /* callback failure injection */
};

static void tr_put(struct trace *t, const void *s, size_t n)
{
    assert_true(t->len + n < sizeof(t->buf));
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static int on_begin(void *ctx, const struct mp_part_info *p, struct err *e)
{
    struct trace *t = ctx;
    char tmp[2400];
    if (t->fail_at_begin)
        return err_set(e, ERR_PERMISSION, "refused by the callback");
    snprintf(tmp, sizeof(tmp), "[%s|%s|%s]", p->name, p->filename ? p->filename : "-",
             p->content_type);
    tr_put(t, tmp, strlen(tmp));
    return 0;
}

static int on_data(void *ctx, const void *d, size_t n, struct err *e)
{
    (void)e;
    assert_true(n > 0);
    tr_put(ctx, d, n);
    return 0;
}

static int on_end(void *ctx, struct err *e)
{
    (void)e;
    tr_put(ctx, ".", 1);
    return 0;
}

static int on_done(void *ctx, struct err *e)
{
    (void)e;
    tr_put(ctx, "$", 1);
    return 0;
}

static const struct mp_callbacks cbs = {on_begin, on_data, on_end, on_done};

/* Runs body through a fresh parser in pieces of `piece` bytes (0: whole). */
static int run(const char *boundary, const char *body, size_t len, size_t piece, struct trace *t,
               struct err *e)
{
    struct mp_parser *p = NULL;
    int rc;
    t->len = 0;
    t->buf[0] = '\0';
    assert_int_equal(mp_parser_create(boundary, &cbs, t, &p, e), 0);
    rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t n = piece == 0 || piece > len - off ? len - off : piece;
        rc = mp_parser_feed(p, body + off, n, e);
        off += n;
    }
    if (rc == 0)
        rc = mp_parser_finish(p, e);
    mp_parser_free(p);
    return rc;
}

struct mp_case {
    const char *body;
    const char *trace; /* expected trace when rc == 0 */
    int rc;
    const char *why; /* part of the message when rc < 0 */
};

#define CRLF "\r\n"
#define CD   "Content-Disposition: form-data; "

static void test_body_table(void **state)
{
    static const struct mp_case cases[] = {
        /* a typical Dropzone body */
        {"--XyZ" CRLF CD "name=\"dzuuid\"" CRLF CRLF "abc-1" CRLF "--XyZ" CRLF CD
         "name=\"file\"; filename=\"a.txt\"" CRLF "Content-Type: text/plain" CRLF CRLF "hello" CRLF
         "--XyZ--" CRLF,
         "[dzuuid|-|]abc-1.[file|a.txt|text/plain]hello.$", 0, NULL},
        /* preamble and epilogue ignored */
        {"preamble " CRLF "junk" CRLF "--XyZ" CRLF CD "name=a" CRLF CRLF "1" CRLF
         "--XyZ--epilogue --XyZ" CRLF "more",
         "[a|-|]1.$", 0, NULL},
        /* empty value, transport padding after the boundary */
        {"--XyZ  \t" CRLF CD "name=\"e\"" CRLF CRLF CRLF "--XyZ--", "[e|-|].$", 0, NULL},
        /* data that looks like the delimiter's start: CR, CRLF, CRLF--, CRLF--Xy */
        {"--XyZ" CRLF CD "name=\"f\"; filename=\"b\"" CRLF CRLF "\r\r\n\r\n-\r\n--\r\n--Xy\r\r"
         "\n--XyZ--",
         "[f|b|]\r\r\n\r\n-\r\n--\r\n--Xy\r.$", 0, NULL},
        /* filename with quotes' neighbours: semicolons, %22, backslash kept literally */
        {"--XyZ" CRLF CD "name=\"file\"; filename=\"a;b; c=d.txt\"" CRLF CRLF "x" CRLF "--XyZ--",
         "[file|a;b; c=d.txt|]x.$", 0, NULL},
        {"--XyZ" CRLF "content-disposition:FORM-DATA;NAME=file;FILENAME=\"q%22u\\\\o\"" CRLF CRLF
         "x" CRLF "--XyZ--",
         "[file|q%22u\\\\o|]x.$", 0, NULL},
        /* filename* ignored (RFC 7578 4.2) */
        {"--XyZ" CRLF CD "name=\"file\"; filename*=UTF-8''%C3%A9.txt; filename=\"e.txt\"" CRLF CRLF
         "x" CRLF "--XyZ--",
         "[file|e.txt|]x.$", 0, NULL},
        /* a final boundary with no parts */
        {"--XyZ--" CRLF, "$", 0, NULL},
        /* errors */
        {"--XyZ" CRLF CD "name=\"a\"" CRLF CRLF "1" CRLF "--XyZ" CRLF, NULL, ERR_PARSE,
         "final boundary"},
        {"--XyZ" CRLF CD "name=\"a\"" CRLF CRLF "1", NULL, ERR_PARSE, "final boundary"},
        {"no boundary at all", NULL, ERR_PARSE, "final boundary"},
        {"", NULL, ERR_PARSE, "final boundary"},
        {"--XyZ" CRLF "Content-Type: text/plain" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE,
         "Content-Disposition"},
        {"--XyZ" CRLF "Content-Disposition: attachment; name=a" CRLF CRLF "1" CRLF "--XyZ--", NULL,
         ERR_PARSE, "not form-data"},
        {"--XyZ" CRLF CD "filename=\"a\"" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE,
         "Content-Disposition"},
        {"--XyZ" CRLF CD "name=\"a" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "unterminated"},
        {"--XyZ" CRLF CD "name=a; name=b" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE,
         "two name"},
        {"--XyZ" CRLF "NoColonHere" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "no ':'"},
        {"--XyZ" CRLF CD "name=a\nX: y" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "bare"},
        {"--XyZ" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "Content-Disposition"},
        {"--XyZx" CRLF CD "name=a" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "unexpected"},
        {"--XyZ\n" CD "name=a" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "unexpected"},
        {"--XyZ\r" CD "name=a" CRLF CRLF "1" CRLF "--XyZ--", NULL, ERR_PARSE, "CRLF"},
        {"--XyZ-x", NULL, ERR_PARSE, "unexpected"},
    };
    static const size_t pieces[] = {0, 1, 2, 3, 5, 7, 64};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
            struct trace *t = calloc(1, sizeof(*t));
            struct err e = ERR_INIT;
            int rc;
            assert_non_null(t);
            print_message("multipart case %u, pieces of %u\n", (unsigned)i, (unsigned)pieces[k]);
            rc = run("XyZ", cases[i].body, strlen(cases[i].body), pieces[k], t, &e);
            assert_int_equal(rc, cases[i].rc);
            if (rc == 0) {
                assert_string_equal(t->buf, cases[i].trace);
            } else {
                assert_int_equal(e.code, cases[i].rc);
                assert_non_null(strstr(e.msg, cases[i].why));
            }
            free(t);
        }
    }
}

static void test_boundary_from_content_type(void **state)
{
    static const struct {
        const char *ct;
        const char *boundary; /* NULL: rejected */
    } cases[] = {
        {"multipart/form-data; boundary=----WebKitFormBoundaryAbC123",
         "----WebKitFormBoundaryAbC123"},
        {"Multipart/Form-Data;boundary=\"a b:c?\"", "a b:c?"},
        {"multipart/form-data; charset=utf-8; boundary=x", "x"},
        {"multipart/form-data; boundary=x;", "x"},
        {"multipart/form-data; BOUNDARY=\"'()+_,-./:=?\"", "'()+_,-./:=?"},
        {"multipart/form-data; boundary="
         "1234567890123456789012345678901234567890123456789012345678901234567890",
         "1234567890123456789012345678901234567890123456789012345678901234567890"},
        {"multipart/form-data; boundary="
         "12345678901234567890123456789012345678901234567890123456789012345678901",
         NULL},
        {"multipart/form-data; boundary=\"\"", NULL},
        {"multipart/form-data; boundary=\"ends with space \"", NULL},
        {"multipart/form-data; boundary=\"a\rb\"", NULL},
        {"multipart/form-data; boundary=a{b", NULL},
        {"multipart/form-data; boundary=\"unterminated", NULL},
        {"multipart/form-data", NULL},
        {"multipart/mixed; boundary=x", NULL},
        {"application/json", NULL},
        {NULL, NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[MP_BOUNDARY_MAX + 1];
        struct err e = ERR_INIT;
        int rc = mp_boundary_from_content_type(cases[i].ct, out, sizeof(out), &e);
        print_message("content-type case %u\n", (unsigned)i);
        if (cases[i].boundary) {
            assert_int_equal(rc, 0);
            assert_string_equal(out, cases[i].boundary);
        } else {
            assert_int_equal(rc, ERR_INVALID);
            assert_true(e.msg[0] != '\0');
        }
    }
}

static void test_quoted_boundary_with_space_parses(void **state)
{
    struct trace *t = calloc(1, sizeof(*t));
    const char *body = "--a b:c?" CRLF CD "name=x" CRLF CRLF "v" CRLF "--a b:c?--";
    (void)state;
    assert_int_equal(run("a b:c?", body, strlen(body), 1, t, NULL), 0);
    assert_string_equal(t->buf, "[x|-|]v.$");
    free(t);
}

static char *build(const char *head, size_t fill, char c, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + fill + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    memset(s + hl, c, fill);
    memcpy(s + hl + fill, tail, tl + 1);
    return s;
}

static void test_header_block_limit(void **state)
{
    struct trace *t = calloc(1, sizeof(*t));
    struct err e = ERR_INIT;
    /* "X-Pad: " + fill + CRLF + CD line + CRLF CRLF: exactly 8192 bytes passes, 8193 fails */
    const char *cdl = CD "name=a" CRLF CRLF;
    size_t base = strlen("X-Pad: ") + 2 + strlen(cdl);
    char head[64];
    char *body;
    (void)state;
    for (int extra = 0; extra <= 1; extra++) {
        snprintf(head, sizeof(head), "--XyZ" CRLF "X-Pad: ");
        body = build(head, MP_MAX_HEADER_BYTES - base + (size_t)extra, 'p',
                     CRLF CD "name=a" CRLF CRLF "v" CRLF "--XyZ--");
        e.code = 0;
        for (size_t piece = 1; piece <= 4096; piece *= 4096) {
            int rc = run("XyZ", body, strlen(body), piece, t, &e);
            if (extra == 0) {
                assert_int_equal(rc, 0);
                assert_string_equal(t->buf, "[a|-|]v.$");
            } else {
                assert_int_equal(rc, ERR_TOO_LARGE);
                assert_non_null(strstr(e.msg, "header block"));
            }
        }
        free(body);
    }
    free(t);
}

static void test_field_limit_and_file_unlimited(void **state)
{
    struct trace *t = calloc(1, sizeof(*t));
    struct err e = ERR_INIT;
    char *body;
    (void)state;
    body = build("--XyZ" CRLF CD "name=f" CRLF CRLF, MP_MAX_FIELD_BYTES, 'v', CRLF "--XyZ--");
    assert_int_equal(run("XyZ", body, strlen(body), 3, t, &e), 0);
    free(body);
    body = build("--XyZ" CRLF CD "name=f" CRLF CRLF, MP_MAX_FIELD_BYTES + 1, 'v', CRLF "--XyZ--");
    assert_int_equal(run("XyZ", body, strlen(body), 3, t, &e), ERR_TOO_LARGE);
    assert_non_null(strstr(e.msg, "form field"));
    free(body);
    /* a file part has no such limit */
    body = build("--XyZ" CRLF CD "name=f; filename=\"x\"" CRLF CRLF, 60000, 'v', CRLF "--XyZ--");
    assert_int_equal(run("XyZ", body, strlen(body), 1000, t, &e), 0);
    assert_int_equal(t->len, strlen("[f|x|]") + 60000 + 2);
    free(body);
    free(t);
}

static void test_part_count_limit(void **state)
{
    struct trace *t = calloc(1, sizeof(*t));
    struct err e = ERR_INIT;
    char body[4096];
    (void)state;
    for (int parts = MP_MAX_PARTS; parts <= MP_MAX_PARTS + 1; parts++) {
        size_t n = 0;
        for (int i = 0; i < parts; i++)
            n += (size_t)snprintf(body + n, sizeof(body) - n,
                                  "--XyZ" CRLF CD "name=p%d" CRLF CRLF "%d" CRLF, i, i);
        snprintf(body + n, sizeof(body) - n, "--XyZ--");
        if (parts == MP_MAX_PARTS) {
            assert_int_equal(run("XyZ", body, strlen(body), 1, t, &e), 0);
        } else {
            assert_int_equal(run("XyZ", body, strlen(body), 1, t, &e), ERR_TOO_LARGE);
            assert_non_null(strstr(e.msg, "parts"));
        }
    }
    free(t);
}

static void test_callback_error_is_sticky(void **state)
{
    struct trace *t = calloc(1, sizeof(*t));
    struct mp_parser *p = NULL;
    struct err e = ERR_INIT;
    const char *body = "--XyZ" CRLF CD "name=a" CRLF CRLF "1" CRLF "--XyZ--";
    (void)state;
    t->fail_at_begin = 1;
    assert_int_equal(mp_parser_create("XyZ", &cbs, t, &p, &e), 0);
    assert_int_equal(mp_parser_feed(p, body, strlen(body), &e), ERR_PERMISSION);
    assert_non_null(strstr(e.msg, "refused by the callback"));
    memset(&e, 0, sizeof(e));
    assert_int_equal(mp_parser_feed(p, "x", 1, &e), ERR_PERMISSION);
    assert_int_equal(mp_parser_finish(p, &e), ERR_PERMISSION);
    mp_parser_free(p);
    assert_int_equal(mp_parser_create("", &cbs, t, &p, &e), ERR_INVALID);
    assert_null(p);
    free(t);
}

static void test_large_file_part_one_byte_at_a_time(void **state)
{
    /* binary data full of CR, LF and '-' so that partial delimiters occur everywhere */
    static const char alphabet[] = "\r\n-XyZ\r\n--Xy\r\n--X";
    struct trace *t = calloc(1, sizeof(*t));
    size_t n = 20000, hl;
    char *body, *data;
    unsigned x = 12345;
    const char *head = "--XyZ" CRLF CD "name=\"file\"; filename=\"bin\"" CRLF CRLF;
    (void)state;
    data = malloc(n);
    body = malloc(n + 256);
    assert_non_null(data);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (x >> 16) % 3 ? alphabet[(x >> 8) % (sizeof(alphabet) - 1)] : (char)(x >> 20);
    }
    hl = strlen(head);
    memcpy(body, head, hl);
    memcpy(body + hl, data, n);
    memcpy(body + hl + n, CRLF "--XyZ--", 9);
    assert_int_equal(run("XyZ", body, hl + n + 9, 1, t, NULL), 0);
    assert_int_equal(t->len, strlen("[file|bin|]") + n + 2);
    assert_memory_equal(t->buf + strlen("[file|bin|]"), data, n);
    assert_memory_equal(t->buf + t->len - 2, ".$", 2);
    free(data);
    free(body);
    free(t);
}

static void test_split_at_every_position(void **state)
{
    const char *body = "pre" CRLF "--XyZ" CRLF CD "name=\"a\"" CRLF CRLF "one" CRLF "--XyZ" CRLF CD
                       "name=\"file\"; filename=\"f.txt\"" CRLF CRLF "\r\n--Xy" CRLF "--XyZ--" CRLF;
    const char *want = "[a|-|]one.[file|f.txt|]\r\n--Xy.$";
    size_t len = strlen(body);
    (void)state;
    for (size_t cut = 0; cut <= len; cut++) {
        struct trace *t = calloc(1, sizeof(*t));
        struct mp_parser *p = NULL;
        assert_int_equal(mp_parser_create("XyZ", &cbs, t, &p, NULL), 0);
        assert_int_equal(mp_parser_feed(p, body, cut, NULL), 0);
        assert_int_equal(mp_parser_feed(p, body + cut, len - cut, NULL), 0);
        assert_int_equal(mp_parser_finish(p, NULL), 0);
        assert_int_equal(mp_parser_is_done(p), 1);
        assert_string_equal(t->buf, want);
        mp_parser_free(p);
        free(t);
    }
}

static void test_disposition_parameters(void **state)
{
    static const struct {
        const char *disp;
        const char *trace; /* NULL: error */
    } cases[] = {
        {"form-data; name=\"file\"; filename=\"\"", "[file||]x.$"},
        {"form-data; name=file; filename=plain.txt", "[file|plain.txt|]x.$"},
        {"form-data ; name = \"a b\" ; filename = \"c d.txt\" ;", "[a b|c d.txt|]x.$"},
        {"form-data; filename=\"x.txt\"; name=\"file\"; size=3", "[file|x.txt|]x.$"},
        {"form-data; name=\"file\"; filename=\"\xc3\xa9\xe6\x97\xa5.txt\"",
         "[file|\xc3\xa9\xe6\x97\xa5.txt|]x.$"},
        {"form-data; name=\"file\"; filename=\"a\"b\"", NULL},
        {"form-data; name=\"file\"; filename=\"a\"; filename=\"b\"", NULL},
        {"form-data; name", NULL},
        {"form-data; =x; name=a", NULL},
        {"form-data name=a", NULL},
        {"", NULL},
    };
    char body[512];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct trace *t = calloc(1, sizeof(*t));
        struct err e = ERR_INIT;
        int rc;
        snprintf(body, sizeof(body),
                 "--XyZ" CRLF "Content-Disposition: %s" CRLF CRLF "x" CRLF "--XyZ--",
                 cases[i].disp);
        rc = run("XyZ", body, strlen(body), 2, t, &e);
        print_message("disposition case %u\n", (unsigned)i);
        if (cases[i].trace) {
            assert_int_equal(rc, 0);
            assert_string_equal(t->buf, cases[i].trace);
        } else {
            assert_true(rc < 0);
            assert_true(e.msg[0] != '\0');
        }
        free(t);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_table),
        cmocka_unit_test(test_boundary_from_content_type),
        cmocka_unit_test(test_quoted_boundary_with_space_parses),
        cmocka_unit_test(test_header_block_limit),
        cmocka_unit_test(test_field_limit_and_file_unlimited),
        cmocka_unit_test(test_part_count_limit),
        cmocka_unit_test(test_callback_error_is_sticky),
        cmocka_unit_test(test_large_file_part_one_byte_at_a_time),
        cmocka_unit_test(test_split_at_every_position),
        cmocka_unit_test(test_disposition_parameters),
    };
    return UNIT_RUN("multipart", tests, NULL, NULL);
}
