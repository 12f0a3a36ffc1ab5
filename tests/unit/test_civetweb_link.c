/* test_civetweb_link.c - dep::civetweb is built with our flags (cmake/Civetweb.cmake): TLS via
 * OpenSSL linked in, no CGI/Lua/JS/WebSocket/HTTP2/file serving/caching, and it serves a request
 * on loopback with an ephemeral port (natively and under Wine). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include <civetweb.h>

#define TEST_URI  "/kasm-link-test"
#define TEST_BODY "civetweb ok"

struct feature_case {
    const char *name;
    unsigned bit;
    int expected; /* 1: compiled in, 0: compiled out */
};

static const struct feature_case feature_cases[] = {
    {"TLS", MG_FEATURES_TLS, 1},
    {"IPv6", MG_FEATURES_IPV6, 1},
    {"files", MG_FEATURES_FILES, 0},
    {"CGI", MG_FEATURES_CGI, 0},
    {"WebSocket", MG_FEATURES_WEBSOCKET, 0},
    {"Lua", MG_FEATURES_LUA, 0},
    {"server-side JS", MG_FEATURES_SSJS, 0},
    {"caching", MG_FEATURES_CACHE, 0},
    {"compression", MG_FEATURES_COMPRESSION, 0},
    {"HTTP/2", MG_FEATURES_HTTP2, 0},
};

static void features_match_build_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(feature_cases) / sizeof(feature_cases[0]); i++) {
        const struct feature_case *c = &feature_cases[i];
        int have = mg_check_feature(c->bit) != 0;
        if (have != c->expected) {
            fail_msg("civetweb feature %s: expected %s", c->name,
                     c->expected ? "compiled in" : "compiled out");
        }
    }
}

static void init_library_initialises_tls(void **state)
{
    (void)state;
    unsigned got = mg_init_library(MG_FEATURES_TLS);
    assert_true((got & MG_FEATURES_TLS) != 0);
    assert_int_not_equal(mg_exit_library(), 0);
}

static int hello_handler(struct mg_connection *conn, void *cbdata)
{
    int *hits = cbdata;
    (*hits)++;
    mg_send_http_ok(conn, "text/plain", (long long)strlen(TEST_BODY));
    mg_write(conn, TEST_BODY, strlen(TEST_BODY));
    return 200;
}

static void serves_a_request_on_an_ephemeral_port(void **state)
{
    (void)state;
    const char *options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2", NULL};
    struct mg_callbacks callbacks;
    struct mg_server_port ports[2];
    char ebuf[256] = "";
    char body[64] = "";
    int hits = 0;

    assert_true((mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS) != 0);
    memset(&callbacks, 0, sizeof(callbacks));
    struct mg_context *ctx = mg_start(&callbacks, NULL, options);
    assert_non_null(ctx);
    mg_set_request_handler(ctx, TEST_URI, hello_handler, &hits);

    assert_int_equal(mg_get_server_ports(ctx, 2, ports), 1);
    assert_int_equal(ports[0].protocol, 1);
    assert_int_equal(ports[0].is_ssl, 0);
    assert_true(ports[0].port > 0 && ports[0].port < 65536);

    struct mg_connection *conn =
        mg_download("127.0.0.1", ports[0].port, 0, ebuf, sizeof(ebuf),
                    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", TEST_URI);
    if (conn == NULL) {
        fail_msg("mg_download: %s", ebuf);
    }
    const struct mg_response_info *ri = mg_get_response_info(conn);
    assert_non_null(ri);
    assert_int_equal(ri->status_code, 200);
    int n = mg_read(conn, body, sizeof(body) - 1);
    assert_int_equal(n, (int)strlen(TEST_BODY));
    body[n] = '\0';
    assert_string_equal(body, TEST_BODY);
    mg_close_connection(conn);

    mg_stop(ctx);
    assert_int_equal(hits, 1);
    mg_exit_library();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(features_match_build_flags),
        cmocka_unit_test(init_library_initialises_tls),
        cmocka_unit_test(serves_a_request_on_an_ephemeral_port),
    };
    return UNIT_RUN("civetweb_link", tests, NULL, NULL);
}
