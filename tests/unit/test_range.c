/*
 * test_range.c - service/transfer/range.c: Range headers -> status/offsets/Content-Range,
 * HTTP dates in all three forms (and round trips), If-Modified-Since, content types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <string.h>

#include "range.h"

struct range_case {
    const char *header;
    uint64_t size;
    int status;
    uint64_t start, length;
    const char *content_range;
};

static void test_range_table(void **state)
{
    static const struct range_case cases[] = {
        {NULL, 100, 200, 0, 100, ""},
        {"bytes=0-9", 100, 206, 0, 10, "bytes 0-9/100"},
        {"bytes=10-", 100, 206, 10, 90, "bytes 10-99/100"},
        {"bytes=-10", 100, 206, 90, 10, "bytes 90-99/100"},
        {"bytes=-1000", 100, 206, 0, 100, "bytes 0-99/100"},
        {"bytes=50-5000", 100, 206, 50, 50, "bytes 50-99/100"},
        {"bytes=99-99", 100, 206, 99, 1, "bytes 99-99/100"},
        {"BYTES = 1-2 ", 100, 206, 1, 2, "bytes 1-2/100"},
        {"bytes=100-", 100, 416, 0, 0, "bytes */100"},
        {"bytes=200-300", 100, 416, 0, 0, "bytes */100"},
        {"bytes=-0", 100, 416, 0, 0, "bytes */100"},
        {"bytes=0-", 0, 416, 0, 0, "bytes */0"},
        {"bytes=-5", 0, 416, 0, 0, "bytes */0"},
        {"bytes=99999999999999999999999-", 100, 416, 0, 0, "bytes */100"},
        /* ignored: whole file */
        {"bytes=0-1,5-6", 100, 200, 0, 100, ""},
        {"bytes=5-1", 100, 200, 0, 100, ""},
        {"bytes=-", 100, 200, 0, 100, ""},
        {"bytes=a-b", 100, 200, 0, 100, ""},
        {"items=0-1", 100, 200, 0, 100, ""},
        {"bytes 0-1", 100, 200, 0, 100, ""},
        {"bytes=0-1x", 100, 200, 0, 100, ""},
        {"", 100, 200, 0, 100, ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rng_result r;
        print_message("range case %u: %s\n", (unsigned)i,
                      cases[i].header ? cases[i].header : "(none)");
        rng_parse(cases[i].header, cases[i].size, &r);
        assert_int_equal(r.status, cases[i].status);
        assert_true(r.start == cases[i].start);
        assert_true(r.length == cases[i].length);
        assert_string_equal(r.content_range, cases[i].content_range);
    }
}

struct date_case {
    const char *text;
    int64_t t; /* -1: must be rejected */
};

static void test_date_parse_table(void **state)
{
    static const struct date_case cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Tue, 29 Feb 2000 12:00:00 GMT", 951825600},
        {"Sat, 21 Nov 2026 16:00:00 GMT", 1795276800},
        {"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799},
        {"Sun, 06 Nov 1994 08:49:37 UTC", -1},
        {"Sun, 6 Nov 1994 08:49:37 GMT", -1},
        {"Sun, 06 Nov 1994 08:49:37 GMT ", -1},
        {"Xyz, 06 Nov 1994 08:49:37 GMT", -1},
        {"Sun, 06 Foo 1994 08:49:37 GMT", -1},
        {"Sun, 30 Feb 1994 08:49:37 GMT", -1},
        {"Sun, 06 Nov 1994 24:00:00 GMT", -1},
        {"Sun, 06 Nov 1969 08:49:37 GMT", -1},
        {"Sun, +6 Nov 1994 08:49:37 GMT", -1},
        {"", -1},
        {"yesterday", -1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = 0;
        struct err e = ERR_INIT;
        int rc = rng_http_date_parse(cases[i].text, &t, &e);
        print_message("date case %u: %s\n", (unsigned)i, cases[i].text);
        if (cases[i].t < 0) {
            assert_int_equal(rc, ERR_PARSE);
            assert_true(e.msg[0] != '\0');
        } else {
            assert_int_equal(rc, 0);
            assert_true(t == cases[i].t);
        }
    }
}

static void test_date_round_trip(void **state)
{
    char buf[RNG_DATE_LEN];
    int64_t back = 0;
    (void)state;
    assert_int_equal(rng_http_date_format(784111777, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(rng_http_date_format(0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    /* every ~11 days over 60 years, with odd seconds */
    for (int64_t t = 0; t < (int64_t)60 * 365 * 86400; t += 987654 + 7) {
        assert_int_equal(rng_http_date_format(t, buf, sizeof(buf)), 0);
        assert_int_equal(rng_http_date_parse(buf, &back, NULL), 0);
        assert_true(back == t);
    }
    assert_int_equal(rng_http_date_format(1, buf, 10), ERR_TOO_LARGE);
}

static void test_not_modified(void **state)
{
    (void)state;
    assert_int_equal(rng_not_modified("Sun, 06 Nov 1994 08:49:37 GMT", 784111777), 1);
    assert_int_equal(rng_not_modified("Sun, 06 Nov 1994 08:49:37 GMT", 784111776), 1);
    assert_int_equal(rng_not_modified("Sun, 06 Nov 1994 08:49:37 GMT", 784111778), 0);
    assert_int_equal(rng_not_modified(NULL, 5), 0);
    assert_int_equal(rng_not_modified("garbage", 5), 0);
}

static void test_content_types(void **state)
{
    static const struct {
        const char *name, *type;
    } cases[] = {
        {"a.txt", "text/plain; charset=utf-8"},
        {"REPORT.PDF", "application/pdf"},
        {"x.tar.gz", "application/gzip"},
        {"photo.JpG", "image/jpeg"},
        {"b.png", "image/png"},
        {"c.gif", "image/gif"},
        {"d.zip", "application/zip"},
        {"e.json", "application/json"},
        {"f.csv", "text/csv"},
        {"g.mp4", "video/mp4"},
        {"h.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"i.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"j.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"setup.exe", "application/vnd.microsoft.portable-executable"},
        {"setup.msi", "application/x-msi"},
        {"page.html", "text/html; charset=utf-8"},
        {"noext", "application/octet-stream"},
        {"trailing.", "application/octet-stream"},
        {"a.txtx", "application/octet-stream"},
        {".bashrc", "application/octet-stream"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(rng_content_type(cases[i].name), cases[i].type);
}

static void test_range_large_sizes(void **state)
{
    struct rng_result r;
    const uint64_t big = (uint64_t)1 << 40; /* 1 TiB */
    (void)state;
    rng_parse("bytes=1099511627775-", big, &r);
    assert_int_equal(r.status, 206);
    assert_true(r.start == big - 1 && r.length == 1);
    assert_string_equal(r.content_range, "bytes 1099511627775-1099511627775/1099511627776");
    rng_parse("bytes=0-18446744073709551615", big, &r);
    assert_int_equal(r.status, 206);
    assert_true(r.start == 0 && r.length == big);
    rng_parse("bytes=-18446744073709551616", big, &r);
    assert_int_equal(r.status, 206);
    assert_true(r.start == 0 && r.length == big);
    rng_parse("bytes=18446744073709551615-", UINT64_MAX, &r);
    assert_int_equal(r.status, 416);
}

static void test_date_format_edges(void **state)
{
    char buf[RNG_DATE_LEN];
    (void)state;
    assert_int_equal(rng_http_date_format(-1, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_int_equal(rng_http_date_format(951782400, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_int_equal(rng_http_date_format(4102444800, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "Fri, 01 Jan 2100 00:00:00 GMT");
    assert_int_equal(rng_http_date_format(253402300800, buf, sizeof(buf)), ERR_INVALID);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_table),       cmocka_unit_test(test_date_parse_table),
        cmocka_unit_test(test_date_round_trip),   cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_content_types),     cmocka_unit_test(test_range_large_sizes),
        cmocka_unit_test(test_date_format_edges),
    };
    return UNIT_RUN("range", tests, NULL, NULL);
}
