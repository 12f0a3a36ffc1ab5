/*
 * test_deploy_http.c - the HTTP response parser of the deployment client (dcl_response_parse,
 * dcl_header_get): Content-Length, chunked and close-delimited bodies, fed whole and byte by
 * byte, the size limit, and malformed answers.
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

#include "https_client.h"

struct good_case {
    const char *name;
    const char *raw;
    int eof_needed; /* complete only at the end of the connection */
    int status;
    const char *body;
};

static const struct good_case goods[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}", 0, 200,
     "{\"ok\":true}"},
    {"http/1.0 close-delimited",
     "HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6\r\nContent-Type: application/json\r\n\r\n{}", 1, 200,
     "{}"},
    {"chunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\n"
     "pedia\r\n0\r\nTrailer: 1\r\n\r\n",
     0, 200, "Wikipedia"},
    {"chunked, upper-case hex and header",
     "HTTP/1.1 500 Internal\r\ntransfer-encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 0,
     500, "0123456789"},
    {"bare LF lines", "HTTP/1.1 403 Forbidden\nContent-Length: 2\n\nno", 0, 403, "no"},
    {"204 without body", "HTTP/1.1 204 No Content\r\n\r\n", 0, 204, ""},
    {"empty content-length", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 200, ""},
};

static void parse_whole_and_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        const struct good_case *c = &goods[i];
        size_t len = strlen(c->raw);
        struct dcl_response r;
        struct err e = ERR_INIT;
        int done_at = -1;

        for (size_t n = 0; n <= len; n++) {
            int rc = dcl_response_parse(c->raw, n, 0, 0, &r, &e);
            if (rc < 0)
                fail_msg("%s: error at %zu bytes: %s", c->name, n, e.msg);
            if (rc == 1) {
                done_at = (int)n;
                dcl_response_free(&r);
                break;
            }
        }
        if (c->eof_needed)
            assert_int_equal(done_at, -1);
        else if (done_at != (int)len)
            fail_msg("%s: complete at %d of %zu bytes", c->name, done_at, len);
        assert_int_equal(dcl_response_parse(c->raw, len, 1, 0, &r, &e), 1);
        assert_int_equal(r.status, c->status);
        assert_int_equal(r.body_len, strlen(c->body));
        assert_string_equal(r.body, c->body);
        dcl_response_free(&r);
    }
}

struct bad_case {
    const char *name;
    const char *raw;
    int eof;
    int code;
};

static const struct bad_case bads[] = {
    {"not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", 0, ERR_PROTOCOL},
    {"not http, no blank line yet", "220 smtp.example.com ESMTP ready", 0, ERR_PROTOCOL},
    {"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, ERR_PROTOCOL},
    {"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 0, ERR_PROTOCOL},
    {"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1, ERR_PROTOCOL},
    {"truncated headers", "HTTP/1.1 200 OK\r\nContent-", 1, ERR_PROTOCOL},
    {"truncated chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1,
     ERR_PROTOCOL},
    {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0,
     ERR_PROTOCOL},
    {"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 0,
     ERR_PROTOCOL},
    {"body over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, ERR_TOO_LARGE},
    {"chunk over the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\n",
     0, ERR_TOO_LARGE},
};

static void malformed_and_oversized_are_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        struct dcl_response r;
        struct err e = ERR_INIT;
        int rc = dcl_response_parse(bads[i].raw, strlen(bads[i].raw), bads[i].eof, 64, &r, &e);
        if (rc != bads[i].code)
            fail_msg("%s: got %d (%s), want %d", bads[i].name, rc, e.msg, bads[i].code);
        assert_true(e.msg[0] != '\0');
        assert_null(r.body);
    }
}

static void close_delimited_body_over_limit(void **state)
{
    char raw[256];
    struct dcl_response r;
    struct err e = ERR_INIT;
    (void)state;
    snprintf(raw, sizeof(raw), "HTTP/1.0 200 OK\r\n\r\n%080d", 7);
    assert_int_equal(dcl_response_parse(raw, strlen(raw), 1, 64, &r, &e), ERR_TOO_LARGE);
    assert_int_equal(dcl_response_parse(raw, strlen(raw), 1, 80, &r, &e), 1);
    assert_int_equal(r.body_len, 80);
    dcl_response_free(&r);
}

static void header_lookup(void **state)
{
    const char *h = "HTTP/1.1 200 OK\r\nContent-Type:  application/json \r\nX-Empty:\r\n"
                    "content-length: 5\r\n\r\n";
    char v[64];
    (void)state;
    assert_int_equal(dcl_header_get(h, "content-type", v, sizeof(v)), 1);
    assert_string_equal(v, "application/json");
    assert_int_equal(dcl_header_get(h, "Content-Length", v, sizeof(v)), 1);
    assert_string_equal(v, "5");
    assert_int_equal(dcl_header_get(h, "X-Empty", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(dcl_header_get(h, "Content", v, sizeof(v)), 0);
    assert_int_equal(dcl_header_get(h, "Location", v, sizeof(v)), 0);
    assert_int_equal(dcl_header_get(h, "content-type", v, 5), 1);
    assert_string_equal(v, "appl");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_whole_and_byte_by_byte),
        cmocka_unit_test(malformed_and_oversized_are_refused),
        cmocka_unit_test(close_delimited_body_over_limit),
        cmocka_unit_test(header_lookup),
    };
    return UNIT_RUN("deploy_http", tests, NULL, NULL);
}
