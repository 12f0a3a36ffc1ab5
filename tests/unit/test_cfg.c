/*
 * test_cfg.c - tests of common/cfg.c: defaults, every key's accepted forms and type errors
 * (exact messages with line:column), YAML syntax and structure errors, duplicates, api_host
 * forms, unknown keys kept through a round trip, quoting of awkward strings, the token's
 * redaction and wiping, size limits, and the atomic save.
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

#include "cfg.h"
#include "fsutil.h"
#include "plat.h"

#define DATA_DIR KASM_TEST_DATA_DIR "/cfg"
#define SEP      PLAT_PATH_SEP_STR

/* ---- free() watch: proves the token is wiped before it is freed (GNU ld --wrap=free) ---- */
#ifndef _WIN32
void __real_free(void *p);
void __wrap_free(void *p);

static const void *watch_ptr;
static size_t watch_len;
static int watch_freed, watch_zero;

void __wrap_free(void *p)
{
    if (p && p == watch_ptr) {
        const unsigned char *b = p;
        watch_zero = 1;
        for (size_t i = 0; i < watch_len; i++)
            if (b[i])
                watch_zero = 0;
        watch_freed = 1;
        watch_ptr = NULL;
    }
    __real_free(p);
}

static void watch(const char *p)
{
    watch_ptr = p;
    watch_len = strlen(p);
    watch_freed = 0;
    watch_zero = 0;
}
#endif

/* ---- helpers ---- */

static char *render(const struct cfg *c)
{
    struct err e = ERR_INIT;
    char *out = NULL;
    size_t len = 0;
    int rc = cfg_render(c, &out, &len, &e);
    if (rc < 0)
        fail_msg("render failed: %s", e.msg);
    assert_int_equal(strlen(out), len);
    return out;
}

static int load_str(struct cfg *c, const char *yaml, struct err *e)
{
    cfg_defaults(c, "/opt/kasm");
    return cfg_load_buffer(c, "cfg", yaml, strlen(yaml), e);
}

static void load_ok(struct cfg *c, const char *yaml)
{
    struct err e = ERR_INIT;
    int rc = load_str(c, yaml, &e);
    if (rc < 0)
        fail_msg("load of [%s] failed: %s", yaml, e.msg);
}

/* Every field, the token, the unknown keys (by rendering) are equal. */
static void assert_cfg_equal(const struct cfg *a, const struct cfg *b)
{
    char *ra, *rb;

    assert_int_equal(a->ssl, b->ssl);
    assert_int_equal(a->port, b->port);
    assert_string_equal(a->server_private_key, b->server_private_key);
    assert_string_equal(a->server_public_key, b->server_public_key);
    assert_string_equal(a->jwt_public_key, b->jwt_public_key);
    assert_string_equal(a->upload_dir, b->upload_dir);
    assert_string_equal(a->download_dir, b->download_dir);
    assert_string_equal(a->log_file, b->log_file);
    assert_int_equal(a->multi_user, b->multi_user);
    assert_int_equal(a->user_sso, b->user_sso);
    assert_int_equal(a->api_host_count, b->api_host_count);
    for (size_t i = 0; i < a->api_host_count; i++)
        assert_string_equal(a->api_host[i], b->api_host[i]);
    if (a->api_host_count)
        assert_int_equal(a->api_host_seq, b->api_host_seq);
    assert_int_equal(a->api_port, b->api_port);
    assert_int_equal(a->registered, b->registered);
    assert_string_equal(a->script_path, b->script_path);
    assert_string_equal(a->server_id, b->server_id);
    assert_int_equal(a->debug, b->debug);
    if (!a->agent_jwt_token || !b->agent_jwt_token)
        assert_ptr_equal(a->agent_jwt_token, b->agent_jwt_token);
    else
        assert_string_equal(a->agent_jwt_token, b->agent_jwt_token);
    assert_string_equal(a->listen_address, b->listen_address);
    assert_int_equal(a->heartbeat_interval, b->heartbeat_interval);
    assert_int_equal(a->api_verify_cert, b->api_verify_cert);
    assert_string_equal(a->api_ca_file, b->api_ca_file);
    assert_int_equal(a->jwt_leeway, b->jwt_leeway);
    assert_string_equal(a->admin_socket, b->admin_socket);
    assert_int_equal(cfg_unknown_count(a), cfg_unknown_count(b));
    for (size_t i = 0; i < cfg_unknown_count(a); i++)
        assert_string_equal(cfg_unknown_key(a, i), cfg_unknown_key(b, i));
    assert_true(cfg_equal(a, b));
    ra = render(a);
    rb = render(b);
    assert_string_equal(ra, rb);
    free(ra);
    free(rb);
}

/* load -> render -> load: the same config, and the second render is the same text. */
static void assert_round_trip(const struct cfg *c)
{
    struct cfg back;
    struct err e = ERR_INIT;
    char *text = render(c);

    cfg_defaults(&back, "/elsewhere");
    if (cfg_load_buffer(&back, "rendered", text, strlen(text), &e) < 0)
        fail_msg("re-load failed: %s\n--- rendered ---\n%s", e.msg, text);
    assert_cfg_equal(c, &back);
    cfg_free(&back);
    free(text);
}

static char *read_fixture(const char *name)
{
    char path[512];
    char *buf = NULL;
    struct err e = ERR_INIT;

    snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
    if (fs_read_all(path, CFG_MAX_FILE_SIZE, &buf, NULL, &e) < 0)
        fail_msg("%s", e.msg);
    return buf;
}

/* A fresh directory under the working directory (ctest runs in the build tree). */
struct tmpdir {
    char path[256];
};

static void tmpdir_make(struct tmpdir *t)
{
    unsigned char r[4];
    struct err e = ERR_INIT;
    assert_int_equal(plat_random_bytes(r, sizeof(r), &e), 0);
    snprintf(t->path, sizeof(t->path), "cfg_test_%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    if (plat_dir_create(t->path, &e) < 0)
        fail_msg("%s", e.msg);
}

static void tmpdir_file(const struct tmpdir *t, const char *name, char *out, size_t cap)
{
    assert_int_equal(fs_join(t->path, name, out, cap, NULL), 0);
}

static void tmpdir_remove(struct tmpdir *t, const char *const *names)
{
    char p[512];
    for (; *names; names++) {
        tmpdir_file(t, *names, p, sizeof(p));
        plat_path_remove(p, NULL);
    }
    assert_int_equal(plat_dir_remove(t->path, NULL), 0);
}

static void write_file(const char *path, const char *text)
{
    struct err e = ERR_INIT;
    if (fs_write_atomic(path, text, strlen(text), 0, &e) < 0)
        fail_msg("%s", e.msg);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    struct cfg c;
    (void)state;
    cfg_defaults(&c, "base");
    assert_int_equal(c.ssl, 1);
    assert_int_equal(c.port, 4902);
    assert_string_equal(c.server_private_key, "base" SEP "certs" SEP "key.pem");
    assert_string_equal(c.server_public_key, "base" SEP "certs" SEP "cert.pem");
    assert_string_equal(c.jwt_public_key, "base" SEP "certs" SEP "jwt.pem");
    assert_string_equal(c.upload_dir, "base" SEP "Upload");
    assert_string_equal(c.download_dir, "base" SEP "Download");
    assert_string_equal(c.script_path, "base" SEP "scripts");
    assert_string_equal(c.log_file, "");
    assert_int_equal(c.multi_user, 0);
    assert_int_equal(c.user_sso, 0);
    assert_int_equal(c.api_host_count, 0);
    assert_int_equal(c.api_port, 443);
    assert_int_equal(c.registered, 0);
    assert_string_equal(c.server_id, "");
    assert_int_equal(c.debug, 0);
    assert_null(c.agent_jwt_token);
    assert_string_equal(c.listen_address, "");
    assert_int_equal(c.heartbeat_interval, 30);
    assert_int_equal(c.api_verify_cert, 0);
    assert_string_equal(c.api_ca_file, "");
    assert_int_equal(c.jwt_leeway, 60);
#ifdef _WIN32
    assert_string_equal(c.admin_socket, "\\\\.\\pipe\\kasm-open-agent-admin");
#else
    assert_string_equal(c.admin_socket, "/run/kasm-open-agent/admin.sock");
#endif
    assert_int_equal(cfg_unknown_count(&c), 0);
    assert_null(cfg_unknown_key(&c, 0));

    cfg_defaults(&c, NULL);
    assert_string_equal(c.upload_dir, "." SEP "Upload");
    cfg_free(&c);
}

/* Files with no keys at all give the defaults. */
static void test_empty_documents(void **state)
{
    static const char *const docs[] = {"",           "\n",     "# only a comment\n", "---\n", "~\n",
                                       "---\n...\n", "null\n", "\xEF\xBB\xBF"};
    (void)state;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct cfg c, d;
        load_ok(&c, docs[i]);
        cfg_defaults(&d, "/opt/kasm");
        assert_cfg_equal(&c, &d);
        cfg_free(&c);
    }
}

/* ---- Kasm's own file ---- */

static void test_kasm_windows_config(void **state)
{
    struct cfg c;
    struct err e = ERR_INIT;
    (void)state;
    if (cfg_load(&c, DATA_DIR "/kasm_windows.yaml", &e) < 0)
        fail_msg("%s", e.msg);
    assert_int_equal(c.ssl, 1);
    assert_int_equal(c.port, 4902);
    assert_string_equal(c.server_private_key, "C:\\Program Files\\Kasm\\certs\\key.pem");
    assert_string_equal(c.server_public_key, "C:\\Program Files\\Kasm\\certs\\cert.pem");
    assert_string_equal(c.jwt_public_key, "C:\\Program Files\\Kasm\\certs\\jwt.pem");
    assert_string_equal(c.upload_dir, "C:\\Program Files\\Kasm\\Upload");
    assert_string_equal(c.download_dir, "C:\\Program Files\\Kasm\\Download");
    assert_string_equal(c.log_file, "C:\\Program Files\\Kasm\\agent.log");
    assert_int_equal(c.multi_user, 0);
    assert_int_equal(c.user_sso, 1);
    assert_int_equal(c.api_host_count, 1);
    assert_string_equal(c.api_host[0], "kasm.example.com");
    assert_int_equal(c.api_port, 443);
    assert_int_equal(c.registered, 1);
    assert_string_equal(c.script_path, "C:\\Program Files\\Kasm\\scripts");
    assert_string_equal(c.server_id, "5f1c0e8a9b2d4c6e8f0a1b2c3d4e5f60");
    assert_int_equal(c.debug, 1);
    assert_non_null(c.agent_jwt_token);
    assert_true(strncmp(c.agent_jwt_token, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
    assert_int_equal(strlen(c.agent_jwt_token), 178);
    assert_string_equal(c.path, DATA_DIR "/kasm_windows.yaml");
    /* Keys the file lacks default relative to its directory. */
    assert_int_equal(c.heartbeat_interval, 30);
    assert_int_equal(c.jwt_leeway, 60);
    assert_int_equal(cfg_unknown_count(&c), 0);
    assert_round_trip(&c);
    cfg_free(&c);
}

/* ---- accepted values, table-driven ---- */

struct bool_case {
    const char *text;
    int value;
};

static void test_bool_forms(void **state)
{
    static const struct bool_case cases[] = {
        {"true", 1}, {"false", 0},    {"yes", 1},     {"no", 0},   {"on", 1},
        {"off", 0},  {"True", 1},     {"False", 0},   {"TRUE", 1}, {"FALSE", 0},
        {"Yes", 1},  {"NO", 0},       {"On", 1},      {"OFF", 0},  {"1", 1},
        {"0", 0},    {"\"true\"", 1}, {"'False'", 0}, {"tRuE", 1},
    };
    static const char *const keys[] = {"ssl",        "multi_user", "user_sso",
                                       "registered", "debug",      "api_verify_cert"};
    (void)state;
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char yaml[128];
            struct cfg c;
            int got;
            snprintf(yaml, sizeof(yaml), "%s: %s\n", keys[k], cases[i].text);
            load_ok(&c, yaml);
            got = k == 0   ? c.ssl
                  : k == 1 ? c.multi_user
                  : k == 2 ? c.user_sso
                  : k == 3 ? c.registered
                  : k == 4 ? c.debug
                           : c.api_verify_cert;
            if (got != cases[i].value)
                fail_msg("%s gave %d", yaml, got);
            cfg_free(&c);
        }
    }
}

struct int_case {
    const char *yaml;
    size_t off;
    int value;
};

static void test_int_values(void **state)
{
    static const struct int_case cases[] = {
        {"port: 1", offsetof(struct cfg, port), 1},
        {"port: 65535", offsetof(struct cfg, port), 65535},
        {"port: \"4903\"", offsetof(struct cfg, port), 4903},
        {"port: +80", offsetof(struct cfg, port), 80},
        {"port: ~", offsetof(struct cfg, port), 4902},
        {"port:", offsetof(struct cfg, port), 4902},
        {"api_port: 8443", offsetof(struct cfg, api_port), 8443},
        {"heartbeat_interval: 1", offsetof(struct cfg, heartbeat_interval), 1},
        {"heartbeat_interval: 86400", offsetof(struct cfg, heartbeat_interval), 86400},
        {"jwt_leeway: 0", offsetof(struct cfg, jwt_leeway), 0},
        {"jwt_leeway: 3600", offsetof(struct cfg, jwt_leeway), 3600},
        {"ssl: ~", offsetof(struct cfg, ssl), 1},
        {"debug: null", offsetof(struct cfg, debug), 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        int got;
        load_ok(&c, cases[i].yaml);
        memcpy(&got, (const char *)&c + cases[i].off, sizeof(got));
        if (got != cases[i].value)
            fail_msg("%s gave %d", cases[i].yaml, got);
        cfg_free(&c);
    }
}

struct str_case {
    const char *yaml;
    size_t off;
    const char *value;
};

static void test_string_values(void **state)
{
    static const struct str_case cases[] = {
        {"log_file:", offsetof(struct cfg, log_file), ""},
        {"log_file: ~", offsetof(struct cfg, log_file), ""},
        {"download_dir: null", offsetof(struct cfg, download_dir), ""},
        {"upload_dir: \"\"", offsetof(struct cfg, upload_dir), ""},
        {"server_id: 12345", offsetof(struct cfg, server_id), "12345"},
        {"server_id: \"007\"", offsetof(struct cfg, server_id), "007"},
        {"listen_address: 0.0.0.0", offsetof(struct cfg, listen_address), "0.0.0.0"},
        {"api_ca_file: 'C:\\ca\\root.pem'", offsetof(struct cfg, api_ca_file), "C:\\ca\\root.pem"},
        {"admin_socket: /tmp/a b.sock", offsetof(struct cfg, admin_socket), "/tmp/a b.sock"},
        {"script_path: \"\\u00e9t\\u00e9\"", offsetof(struct cfg, script_path),
         "\xC3\xA9t\xC3\xA9"},
        {"server_private_key: |\n  multi\n  line\n", offsetof(struct cfg, server_private_key),
         "multi\nline\n"},
        {"server_public_key: !!str 42", offsetof(struct cfg, server_public_key), "42"},
        {"jwt_public_key: \"C:\\\\k\\\\jwt.pem\"", offsetof(struct cfg, jwt_public_key),
         "C:\\k\\jwt.pem"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        load_ok(&c, cases[i].yaml);
        assert_string_equal((const char *)&c + cases[i].off, cases[i].value);
        assert_round_trip(&c);
        cfg_free(&c);
    }
}

static void test_token_values(void **state)
{
    struct cfg c;
    (void)state;
    load_ok(&c, "agent_jwt_token: abc.def.ghi\n");
    assert_string_equal(c.agent_jwt_token, "abc.def.ghi");
    cfg_free(&c);
    load_ok(&c, "agent_jwt_token:\n");
    assert_null(c.agent_jwt_token);
    cfg_free(&c);
    load_ok(&c, "agent_jwt_token: ''\n");
    assert_null(c.agent_jwt_token);
    cfg_free(&c);
}

/* ---- errors, table-driven: exact messages with line:column ---- */

struct err_case {
    const char *yaml;
    int code;
    const char *msg;
};

static void run_err_cases(const struct err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct cfg c;
        struct err e = ERR_INIT;
        char *before, *after;
        int rc;

        /* Start from a loaded config: a failed load must leave it exactly as it was. */
        load_ok(&c, "agent_jwt_token: kept.token.value\nkept_key: [1, 2]\n");
        before = render(&c);
        rc = cfg_load_buffer(&c, "cfg", cases[i].yaml, strlen(cases[i].yaml), &e);
        if (rc != cases[i].code || e.code != cases[i].code || strcmp(e.msg, cases[i].msg) != 0)
            fail_msg("case %u [%s]: rc %d, message\n  got:  %s\n  want: %s", (unsigned)i,
                     cases[i].yaml, rc, e.msg, cases[i].msg);
        after = render(&c);
        assert_string_equal(before, after);
        assert_string_equal(c.agent_jwt_token, "kept.token.value");
        free(before);
        free(after);
        cfg_free(&c);
    }
}

#define H "header: true\n# a comment\n" /* puts the key under test on line 3 */

static void test_type_errors(void **state)
{
    static const struct err_case cases[] = {
        {H "port: abc\n", ERR_PARSE,
         "cfg:3:7: port: expected an integer from 0 to 65535, got 'abc'"},
        {H "port: -1\n", ERR_PARSE, "cfg:3:7: port: expected an integer from 0 to 65535, got '-1'"},
        {H "port: 65536\n", ERR_PARSE,
         "cfg:3:7: port: expected an integer from 0 to 65535, got '65536'"},
        {H "port: 4902.0\n", ERR_PARSE,
         "cfg:3:7: port: expected an integer from 0 to 65535, got '4902.0'"},
        {H "port: [1]\n", ERR_PARSE,
         "cfg:3:7: port: expected an integer from 0 to 65535, got a sequence"},
        {H "port:\n    99999999999999999999\n", ERR_PARSE,
         "cfg:4:5: port: expected an integer from 0 to 65535, got '99999999999999999999'"},
        {H "api_port: -1\n", ERR_PARSE,
         "cfg:3:11: api_port: expected an integer from 1 to 65535, got '-1'"},
        {H "heartbeat_interval: 0\n", ERR_PARSE,
         "cfg:3:21: heartbeat_interval: expected an integer from 1 to 86400, got '0'"},
        {H "heartbeat_interval: 86401\n", ERR_PARSE,
         "cfg:3:21: heartbeat_interval: expected an integer from 1 to 86400, got '86401'"},
        {H "jwt_leeway: 3601\n", ERR_PARSE,
         "cfg:3:13: jwt_leeway: expected an integer from 0 to 3600, got '3601'"},
        {H "jwt_leeway: {a: 1}\n", ERR_PARSE,
         "cfg:3:13: jwt_leeway: expected an integer from 0 to 3600, got a mapping"},
        {H "ssl: maybe\n", ERR_PARSE, "cfg:3:6: ssl: expected true or false, got 'maybe'"},
        {H "ssl: \"a\\tb\"\n", ERR_PARSE, "cfg:3:6: ssl: expected true or false, got 'a\\x09b'"},
        {H "multi_user: 2\n", ERR_PARSE, "cfg:3:13: multi_user: expected true or false, got '2'"},
        {H "user_sso: [true]\n", ERR_PARSE,
         "cfg:3:11: user_sso: expected true or false, got a sequence"},
        {H "registered: {a: 1}\n", ERR_PARSE,
         "cfg:3:13: registered: expected true or false, got a mapping"},
        {H "debug: yes please\n", ERR_PARSE,
         "cfg:3:8: debug: expected true or false, got 'yes please'"},
        {H "api_verify_cert: sometimes\n", ERR_PARSE,
         "cfg:3:18: api_verify_cert: expected true or false, got 'sometimes'"},
        {H "server_private_key: [a]\n", ERR_PARSE,
         "cfg:3:21: server_private_key: expected a string, got a sequence"},
        {H "server_public_key: {a: b}\n", ERR_PARSE,
         "cfg:3:20: server_public_key: expected a string, got a mapping"},
        {H "jwt_public_key: [a]\n", ERR_PARSE,
         "cfg:3:17: jwt_public_key: expected a string, got a sequence"},
        {H "upload_dir: [a]\n", ERR_PARSE,
         "cfg:3:13: upload_dir: expected a string, got a sequence"},
        {H "download_dir: {}\n", ERR_PARSE,
         "cfg:3:15: download_dir: expected a string, got a mapping"},
        {H "log_file: []\n", ERR_PARSE, "cfg:3:11: log_file: expected a string, got a sequence"},
        {H "script_path:\n  - x\n", ERR_PARSE,
         "cfg:4:3: script_path: expected a string, got a sequence"},
        {H "server_id: {id: 1}\n", ERR_PARSE,
         "cfg:3:12: server_id: expected a string, got a mapping"},
        {H "listen_address: [0.0.0.0]\n", ERR_PARSE,
         "cfg:3:17: listen_address: expected a string, got a sequence"},
        {H "api_ca_file: [a]\n", ERR_PARSE,
         "cfg:3:14: api_ca_file: expected a string, got a sequence"},
        {H "admin_socket: {}\n", ERR_PARSE,
         "cfg:3:15: admin_socket: expected a string, got a mapping"},
        {H "agent_jwt_token: {a: b}\n", ERR_PARSE,
         "cfg:3:18: agent_jwt_token: expected a string, got a mapping"},
        {H "api_host: {a: b}\n", ERR_PARSE,
         "cfg:3:11: api_host: expected a host name, a comma-separated list or a sequence of host "
         "names, got a mapping"},
        {H "api_host: [a, {b: c}]\n", ERR_PARSE,
         "cfg:3:15: api_host: expected a host name, got a mapping"},
        {H "api_host: [a, ~]\n", ERR_PARSE,
         "cfg:3:15: api_host: expected a host name, got an empty value"},
        {H "api_host: a b\n", ERR_PARSE, "cfg:3:11: api_host: expected a host name, got 'a b'"},
        {H "api_host: [\"a,b\"]\n", ERR_PARSE,
         "cfg:3:12: api_host: expected a host name, got 'a,b'"},
        {H "api_host: a,b,c,d,e,f,g,h,i\n", ERR_PARSE, "cfg:3:11: api_host: more than 8 hosts"},
        {H "server_id: "
           "0123456789012345678901234567890123456789012345678901234567890123456789"
           "0123456789012345678901234567890123456789012345678901234567890123456789\n",
         ERR_TOO_LARGE, "cfg:3:12: server_id: the value is 140 bytes long; at most 127"},
        {H "log_file: \"a\\0b\"\n", ERR_PARSE,
         "cfg:3:11: log_file: the value contains a NUL character"},
        {H "port: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
         ERR_PARSE,
         "cfg:3:7: port: expected an integer from 0 to 65535, got "
         "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'"},
        {H
         "debug: \"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
         "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
         "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9x\"\n",
         ERR_PARSE,
         "cfg:3:8: debug: expected true or false, got '\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
         "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
         "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9...'"},
    };
    (void)state;
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_syntax_errors(void **state)
{
    static const struct err_case cases[] = {
        {"a: \"unterminated\n", ERR_PARSE,
         "cfg:2:1: invalid YAML: found unexpected end of stream (while scanning a quoted scalar "
         "at line 1, column 4)"},
        {"ssl: true\na: b: c\n", ERR_PARSE,
         "cfg:2:5: invalid YAML: mapping values are not allowed in this context"},
        {"a:\n\t- x\n", ERR_PARSE,
         "cfg:2:1: invalid YAML: found character that cannot start any token (while scanning for "
         "the next token at line 2, column 1)"},
        {"a: [1, 2\n", ERR_PARSE,
         "cfg:2:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence "
         "at line 1, column 4)"},
        {"k: @x\n", ERR_PARSE,
         "cfg:1:4: invalid YAML: found character that cannot start any token (while scanning for "
         "the next token at line 1, column 4)"},
        {"a: \xff\n", ERR_PARSE, "cfg: invalid YAML: invalid leading UTF-8 octet (#FF) at byte 3"},
        {"a: \x01\n", ERR_PARSE,
         "cfg: invalid YAML: control characters are not allowed (#1) at byte 3"},
    };
    (void)state;
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_structure_errors(void **state)
{
    static const struct err_case cases[] = {
        {"- a\n- b\n", ERR_PARSE,
         "cfg:1:1: the top level must be a mapping of keys to values, got a sequence"},
        {"just text\n", ERR_PARSE,
         "cfg:1:1: the top level must be a mapping of keys to values, got a single value"},
        {"a: 1\n---\nb: 2\n", ERR_PARSE,
         "cfg:2:1: the file holds more than one YAML document; only one is allowed"},
        {"a: &x 1\nb: *x\n", ERR_PARSE,
         "cfg:2:4: aliases (*name) are not supported in the config file"},
        {"a: &x [1]\nb: [2, *x]\n", ERR_PARSE,
         "cfg:2:8: aliases (*name) are not supported in the config file"},
        {"[a]: 1\n", ERR_PARSE, "cfg:1:1: a top-level key must be a string, got a sequence"},
        {"ssl: true\n? {a: 1}\n: 2\n", ERR_PARSE,
         "cfg:2:3: a top-level key must be a string, got a mapping"},
        /* Tags libyaml's emitter would write in a form its scanner refuses (found by fuzzing). */
        {"a: !<tag:yaml.org,2002:x,y> 1\n", ERR_PARSE,
         "cfg:1:4: the tag 'tag:yaml.org,2002:x,y' is not supported in the config file"},
        {"a: [1, !<!a[b]> {}]\n", ERR_PARSE,
         "cfg:1:8: the tag '!a[b]' is not supported in the config file"},
    };
    (void)state;
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_duplicate_keys(void **state)
{
    static const struct err_case cases[] = {
        {"port: 1\nport: 2\n", ERR_PARSE, "cfg:2:1: duplicate key 'port' on lines 1 and 2"},
        {"x: 1\ny: 2\n\nx: 3\n", ERR_PARSE, "cfg:4:1: duplicate key 'x' on lines 1 and 4"},
        {"\"port\": 1\nssl: true\nport: 2\n", ERR_PARSE,
         "cfg:3:1: duplicate key 'port' on lines 1 and 3"},
        {"agent_jwt_token: one\nagent_jwt_token: two\n", ERR_PARSE,
         "cfg:2:1: duplicate key 'agent_jwt_token' on lines 1 and 2"},
        {"future: {a: 1}\nother: 2\n'future': [3]\n", ERR_PARSE,
         "cfg:3:1: duplicate key 'future' on lines 1 and 3"},
        /* Every spelling of a null key is the same key (found by fuzzing: "" is saved as ~). */
        {"~: 1\nnull: 2\n", ERR_PARSE, "cfg:2:1: duplicate key 'null' on lines 1 and 2"},
        {"~: 1\n? \n: 2\n", ERR_PARSE, "cfg:2:2: duplicate key '' on lines 1 and 2"},
    };
    (void)state;
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- api_host ---- */

struct hosts_case {
    const char *yaml;
    size_t count;
    int seq;
    const char *hosts[CFG_MAX_API_HOSTS];
    const char *rendered; /* the api_host line(s) of the render */
};

static void test_api_host_forms(void **state)
{
    static const struct hosts_case cases[] = {
        {"api_host: kasm.example.com",
         1,
         0,
         {"kasm.example.com"},
         "api_host: \"kasm.example.com\"\n"},
        {"api_host: a.example.com, b.example.com ,c",
         3,
         0,
         {"a.example.com", "b.example.com", "c"},
         "api_host: \"a.example.com,b.example.com,c\"\n"},
        {"api_host: ',,a,'", 1, 0, {"a"}, "api_host: \"a\"\n"},
        {"api_host:\n  - a.example.com\n  - 10.0.0.1\n",
         2,
         1,
         {"a.example.com", "10.0.0.1"},
         "api_host:\n- \"a.example.com\"\n- \"10.0.0.1\"\n"},
        {"api_host: [\"[::1]\"]", 1, 1, {"[::1]"}, "api_host:\n- \"[::1]\"\n"},
        {"api_host: \"\"", 0, 0, {NULL}, "api_host: \"\"\n"},
        {"api_host:", 0, 0, {NULL}, "api_host: \"\"\n"},
        {"api_host: []", 0, 1, {NULL}, "api_host: \"\"\n"},
        {"api_host: a,b,c,d,e,f,g,h",
         8,
         0,
         {"a", "b", "c", "d", "e", "f", "g", "h"},
         "api_host: \"a,b,c,d,e,f,g,h\"\n"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char *text;
        load_ok(&c, cases[i].yaml);
        assert_int_equal(c.api_host_count, cases[i].count);
        assert_int_equal(c.api_host_seq, cases[i].seq);
        for (size_t k = 0; k < cases[i].count; k++)
            assert_string_equal(c.api_host[k], cases[i].hosts[k]);
        text = render(&c);
        if (!strstr(text, cases[i].rendered))
            fail_msg("case %u: no [%s] in\n%s", (unsigned)i, cases[i].rendered, text);
        free(text);
        assert_round_trip(&c);
        cfg_free(&c);
    }
}

static void test_api_host_length(void **state)
{
    char yaml[600];
    struct cfg c;
    struct err e = ERR_INIT;
    (void)state;
    strcpy(yaml, "api_host: ");
    memset(yaml + 10, 'h', 255);
    yaml[265] = '\0';
    load_ok(&c, yaml);
    assert_int_equal(strlen(c.api_host[0]), 255);
    cfg_free(&c);
    strcat(yaml, "h");
    assert_int_equal(load_str(&c, yaml, &e), ERR_PARSE);
    assert_string_equal(e.msg, "cfg:1:11: api_host: a host name is 256 bytes long; at most 255");
    cfg_free(&c);
}

/* ---- unknown keys ---- */

static void test_unknown_keys_round_trip(void **state)
{
    static const char *const expect_keys[] = {
        "token_expires", "refresh_state",  "feature_flags", "windows_path",
        "single quoted", "leading_spaces", "literal_block", "folded_block",
        "empty_list",    "empty_map",      "123",
    };
    /* Lines of the render that show quoting, tags and styles were kept. */
    static const char *const expect_text[] = {
        "token_expires: 2030-01-02T03:04:05Z\n",
        "  last_error: \"Token has been expired beyond the configured refresh period\"\n",
        "  hosts: [a.example.com, \"b.example.com:8443\"]\n",
        "{flag: yes, count: 007, ratio: 0.5, none: ~, empty: \"\"}",
        "feature_flags:\n- 1\n- \"1\"\n- !!str 2\n- true\n- \"true\"\n- null\n- ''\n",
        "windows_path: \"C:\\\\Users\\\\Public\\\\Kasm #1: \xC3\xBCn\xC3\xAF"
        "c\xC3\xB8"
        "d\xC3\xA9 \xE2\x98\x83\"\n",
        "'single quoted': 'it''s here'\n",
        "leading_spaces: \"   three spaces\"\n",
        "literal_block: |\n  line one\n    line two indented\n",
        "empty_list: []\nempty_map: {}\n\"123\": numeric-looking key\n",
    };
    char *text = read_fixture("unknown_keys.yaml");
    char *out;
    struct cfg c;
    (void)state;

    load_ok(&c, text);
    assert_int_equal(c.ssl, 0);
    assert_int_equal(c.port, 14902);
    assert_int_equal(c.api_host_count, 2);
    assert_int_equal(c.api_host_seq, 1);
    assert_null(c.agent_jwt_token);
    assert_int_equal(cfg_unknown_count(&c), sizeof(expect_keys) / sizeof(expect_keys[0]));
    for (size_t i = 0; i < sizeof(expect_keys) / sizeof(expect_keys[0]); i++)
        assert_string_equal(cfg_unknown_key(&c, i), expect_keys[i]);
    out = render(&c);
    for (size_t i = 0; i < sizeof(expect_text) / sizeof(expect_text[0]); i++)
        if (!strstr(out, expect_text[i]))
            fail_msg("no [%s] in\n%s", expect_text[i], out);
    /* Known keys come first, in the documented order, then the unknown ones. */
    assert_true(strstr(out, "ssl: false") < strstr(out, "port: 14902"));
    assert_true(strstr(out, "admin_socket:") < strstr(out, "token_expires:"));
    free(out);
    assert_round_trip(&c);
    cfg_free(&c);
    free(text);
}

/* Unknown keys are replaced by a new load, and dropped by cfg_free. */
static void test_unknown_keys_replaced(void **state)
{
    struct cfg c;
    struct err e = ERR_INIT;
    const char *second = "other: 1\n";
    (void)state;
    load_ok(&c, "first: [1]\nagent_jwt_token: tok\n");
    assert_int_equal(cfg_unknown_count(&c), 1);
    assert_int_equal(cfg_load_buffer(&c, "cfg", second, strlen(second), &e), 0);
    assert_int_equal(cfg_unknown_count(&c), 1);
    assert_string_equal(cfg_unknown_key(&c, 0), "other");
    /* The token is kept when the buffer does not name it. */
    assert_string_equal(c.agent_jwt_token, "tok");
    cfg_free(&c);
    assert_int_equal(cfg_unknown_count(&c), 0);
    assert_null(c.agent_jwt_token);
}

/*
 * Unknown values keep their meaning: tags are kept, and flow collections whose plain values
 * hold ':' and are typed (sexagesimal ints, timestamps) are written in block style, because
 * libyaml would quote them in flow style and so turn them into strings.
 */
struct tag_case {
    const char *yaml;
    const char *rendered;
};

static void test_unknown_value_forms(void **state)
{
    static const struct tag_case cases[] = {
        {"t: !!str 2\n", "\nt: !!str 2\n"},
        {"t: !!binary aGVsbG8=\n", "\nt: !!binary aGVsbG8=\n"},
        {"t: ! 12\n", "\nt: !<%21> 12\n"},
        {"%TAG !e! tag:example.com,2000:\n---\nt: !e!foo bar\n",
         "\nt: !<tag:example.com,2000:foo> bar\n"},
        {"t: !local {a: 1}\n", "\nt: !local {a: 1}\n"},
        {"t: !!set {a, b}\n", "\nt: !!set {a: ~, b: ~}\n"},
        {"t: !!omap [a: 1]\n", "\nt: !!omap [{a: 1}]\n"},
        {"t: [1:30, {a: 2001-12-14T21:59:43Z}, x]\n",
         "\nt:\n- 1:30\n- a: 2001-12-14T21:59:43Z\n- x\n"},
        {"t: [a:b, 'c']\n", "\nt: ['a:b', 'c']\n"},
        {"t: {k: [2:3:4.5]}\n", "\nt:\n  k:\n  - 2:3:4.5\n"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char *text;
        load_ok(&c, cases[i].yaml);
        text = render(&c);
        if (!strstr(text, cases[i].rendered))
            fail_msg("case %u: no [%s] in\n%s", (unsigned)i, cases[i].rendered, text);
        free(text);
        assert_round_trip(&c);
        cfg_free(&c);
    }
}

/* cfg_equal compares meaning: typed known keys, unknown values by text, tag and quoting. */
struct equal_case {
    const char *a, *b;
    int equal;
};

static void test_cfg_equal(void **state)
{
    static const struct equal_case cases[] = {
        {"k: 1", "k: 1", 1},
        {"k: 1", "k: '1'", 0},
        {"k: [1, 2]", "k:\n  - 1\n  - 2\n", 1},
        {"k: !!str 1", "k: '1'", 0},
        {"k: abc", "k: 'abc'", 1},
        {"k: yes", "k: 'yes'", 0},
        {"k: .inf", "k: \".inf\"", 0},
        {"k: ~", "k: '~'", 0},
        {"::", "':':", 1},
        {"k: !!str 1", "k: !!str '1'", 1},
        {"k:", "k: ~", 1},
        {"k: ''", "k:", 0},
        {"a: 1\nb: 2", "b: 2\na: 1", 0},
        {"k: {a: 1}", "k: {a: 2}", 0},
        {"k: {a: 1}", "k: [a, 1]", 0},
        {"k: [1]", "k: [1, 2]", 0},
        {"agent_jwt_token: x", "agent_jwt_token: y", 0},
        {"agent_jwt_token: x", "", 0},
        {"api_host: a", "api_host: [a]", 0},
        {"api_host: a, b", "api_host: a,b", 1},
        {"api_host: ''", "api_host: []", 1},
        {"port: 1", "port: '1'", 1},
        {"ssl: yes", "ssl: true", 1},
        {"server_id: abc", "server_id: abd", 0},
        {"jwt_leeway: 5", "", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg a, b;
        load_ok(&a, cases[i].a);
        load_ok(&b, cases[i].b);
        if (cfg_equal(&a, &b) != cases[i].equal || cfg_equal(&b, &a) != cases[i].equal)
            fail_msg("case %u: [%s] vs [%s] should be %s", (unsigned)i, cases[i].a, cases[i].b,
                     cases[i].equal ? "equal" : "different");
        cfg_free(&a);
        cfg_free(&b);
    }
}

/* ---- strings that need quoting or escaping survive render -> load ---- */

static void test_awkward_strings_round_trip(void **state)
{
    static const char *const values[] = {
        "C:\\Program Files\\Kasm\\certs\\cert.pem",
        "\\\\server\\share\\dir",
        "a: b",
        "# not a comment",
        "value # with hash",
        "  leading and trailing  ",
        "\xC3\xBCn\xC3\xAF"
        "c\xC3\xB8"
        "d\xC3\xA9 \xE2\x98\x83 \xE6\x97\xA5\xE6\x9C\xAC",
        "'single' \"double\"",
        "line1\nline2",
        "tab\there",
        "true",
        "123",
        "~",
        "null",
        "",
        "- dash",
        "[x]",
        "{y}",
        "&anchor",
        "*alias",
        "!tag",
        "%percent",
        "@at",
        "`tick",
        "...",
        "---",
        "trailing\\",
        "bell\a and del\x7f",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct cfg c;
        struct err e = ERR_INIT;
        cfg_defaults(&c, "C:\\Program Files\\Kasm");
        snprintf(c.server_id, sizeof(c.server_id), "%s", values[i]);
        snprintf(c.upload_dir, sizeof(c.upload_dir), "%s", values[i]);
        snprintf(c.listen_address, sizeof(c.listen_address), "%s", values[i]);
        assert_int_equal(cfg_set_agent_token(&c, values[i], &e), 0);
        assert_round_trip(&c);
        cfg_free(&c);
    }
}

static void test_render_invalid_utf8(void **state)
{
    struct cfg c;
    struct err e = ERR_INIT;
    char *out = (char *)"untouched";
    (void)state;
    cfg_defaults(&c, "/opt/kasm");
    strcpy(c.server_id, "bad \xff byte");
    assert_int_equal(cfg_render(&c, &out, NULL, &e), ERR_INVALID);
    assert_null(out);
    assert_string_equal(e.msg, "cannot render server_id: the value is not valid UTF-8");
    cfg_free(&c);
}

/* ---- the token ---- */

static void test_token_never_in_errors(void **state)
{
    /* Each input names the secret and fails; the message must not show it. */
    static const char *const inputs[] = {
        "agent_jwt_token: SECRETTOKENVALUE\nport: nope\n",
        "agent_jwt_token: \"SECRETTOKENVALUE\\0tail\"\n",
        "agent_jwt_token: \"SECRETTOKENVALUE\n",
        "agent_jwt_token: SECRETTOKENVALUE\nagent_jwt_token: SECRETTOKENVALUE\n",
        "agent_jwt_token: [SECRETTOKENVALUE]\n",
        "agent_jwt_token: {SECRETTOKENVALUE: 1}\n",
        "agent_jwt_token: SECRETTOKENVALUE: x\n",
        "agent_jwt_token: 'SECRETTOKENVALUE'\n---\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct cfg c;
        struct err e = ERR_INIT;
        assert_true(load_str(&c, inputs[i], &e) < 0);
        assert_true(e.msg[0] != '\0');
        if (strstr(e.msg, "SECRET"))
            fail_msg("case %u leaks the token: %s", (unsigned)i, e.msg);
        assert_null(c.agent_jwt_token);
        cfg_free(&c);
    }
    {
        struct cfg c;
        struct err e = ERR_INIT;
        assert_int_equal(load_str(&c, inputs[1], &e), ERR_PARSE);
        assert_string_equal(e.msg, "cfg:1:18: agent_jwt_token: the value <redacted> contains a NUL "
                                   "character");
        cfg_free(&c);
    }
}

#ifndef _WIN32
static void test_token_wiped_on_free(void **state)
{
    struct cfg c;
    (void)state;
    load_ok(&c, "agent_jwt_token: eyJ.secret.sig\n");
    watch(c.agent_jwt_token);
    cfg_free(&c);
    assert_true(watch_freed);
    assert_true(watch_zero);
    assert_null(c.agent_jwt_token);
}

static void test_token_wiped_on_replace(void **state)
{
    struct cfg c;
    struct err e = ERR_INIT;
    const char *again = "agent_jwt_token: third.token.value\n";
    (void)state;
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_set_agent_token(&c, "first.token.value", &e), 0);
    watch(c.agent_jwt_token);
    assert_int_equal(cfg_set_agent_token(&c, "second.token.value", &e), 0);
    assert_true(watch_freed && watch_zero);
    assert_string_equal(c.agent_jwt_token, "second.token.value");

    watch(c.agent_jwt_token);
    assert_int_equal(cfg_load_buffer(&c, "cfg", again, strlen(again), &e), 0);
    assert_true(watch_freed && watch_zero);
    assert_string_equal(c.agent_jwt_token, "third.token.value");

    watch(c.agent_jwt_token);
    assert_int_equal(cfg_set_agent_token(&c, NULL, &e), 0);
    assert_true(watch_freed && watch_zero);
    assert_null(c.agent_jwt_token);
    cfg_free(&c);
}
#else
/* The wipe code is portable; only the free() watch needs GNU ld's --wrap (ELF builds). */
static void test_token_wiped_on_free(void **state)
{
    (void)state;
    UNIT_SKIP("the free() watch needs GNU ld --wrap=free, which this linker lacks");
}

static void test_token_wiped_on_replace(void **state)
{
    (void)state;
    UNIT_SKIP("the free() watch needs GNU ld --wrap=free, which this linker lacks");
}
#endif

static void test_token_set_limits(void **state)
{
    struct cfg c;
    struct err e = ERR_INIT;
    char *big = malloc(CFG_MAX_SCALAR + 2);
    (void)state;
    assert_non_null(big);
    memset(big, 'a', CFG_MAX_SCALAR + 1);
    big[CFG_MAX_SCALAR + 1] = '\0';
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_set_agent_token(&c, "keep", &e), 0);
    assert_int_equal(cfg_set_agent_token(&c, big, &e), ERR_TOO_LARGE);
    assert_string_equal(c.agent_jwt_token, "keep");
    big[CFG_MAX_SCALAR] = '\0';
    assert_int_equal(cfg_set_agent_token(&c, big, &e), 0);
    assert_int_equal(strlen(c.agent_jwt_token), CFG_MAX_SCALAR);
    assert_int_equal(cfg_set_agent_token(&c, "", &e), 0);
    assert_null(c.agent_jwt_token);
    cfg_free(&c);
    free(big);
}

/* ---- limits ---- */

static void test_file_size_limit(void **state)
{
    size_t n = CFG_MAX_FILE_SIZE + 1;
    char *buf = malloc(n);
    struct cfg c;
    struct err e = ERR_INIT;
    (void)state;
    assert_non_null(buf);
    /* A file of comment lines: exactly 1 MiB loads, one byte more is refused. */
    memset(buf, '#', n);
    for (size_t i = 63; i < n; i += 64)
        buf[i] = '\n';
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_load_buffer(&c, "big", buf, n - 1, &e), 0);
    assert_int_equal(cfg_load_buffer(&c, "big", buf, n, &e), ERR_TOO_LARGE);
    assert_string_equal(e.msg, "big is too large: 1048577 bytes, the limit is 1048576");
    cfg_free(&c);
    free(buf);
}

static void test_scalar_size_limit(void **state)
{
    size_t n = CFG_MAX_SCALAR + 64;
    char *buf = malloc(n);
    struct cfg c;
    struct err e = ERR_INIT;
    (void)state;
    assert_non_null(buf);
    memcpy(buf, "k: ", 3);
    memset(buf + 3, 'v', CFG_MAX_SCALAR);
    buf[3 + CFG_MAX_SCALAR] = '\n';
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_load_buffer(&c, "cfg", buf, CFG_MAX_SCALAR + 4, &e), 0);
    assert_int_equal(cfg_unknown_count(&c), 1);
    assert_round_trip(&c);
    memset(buf + 3, 'v', CFG_MAX_SCALAR + 1);
    buf[4 + CFG_MAX_SCALAR] = '\n';
    assert_int_equal(cfg_load_buffer(&c, "cfg", buf, CFG_MAX_SCALAR + 5, &e), ERR_TOO_LARGE);
    assert_string_equal(e.msg, "cfg:1:4: a value is 65537 bytes long; the limit is 65536 bytes");
    /* The same for the token, without showing it. */
    memcpy(buf, "agent_jwt_token: ", 17);
    memset(buf + 17, 'v', CFG_MAX_SCALAR + 1);
    assert_int_equal(cfg_load_buffer(&c, "cfg", buf, CFG_MAX_SCALAR + 18, &e), ERR_TOO_LARGE);
    assert_null(strstr(e.msg, "vvvv"));
    cfg_free(&c);
    free(buf);
}

static void test_nesting_limit(void **state)
{
    char yaml[256];
    struct cfg c;
    struct err e = ERR_INIT;
    size_t n;
    (void)state;
    for (int depth = 31; depth <= 33; depth++) {
        n = (size_t)snprintf(yaml, sizeof(yaml), "deep: ");
        for (int i = 0; i < depth; i++)
            yaml[n++] = '[';
        for (int i = 0; i < depth; i++)
            yaml[n++] = ']';
        yaml[n] = '\0';
        cfg_defaults(&c, NULL);
        if (depth <= CFG_MAX_DEPTH) {
            assert_int_equal(cfg_load_buffer(&c, "cfg", yaml, n, &e), 0);
            assert_round_trip(&c);
        } else {
            assert_int_equal(cfg_load_buffer(&c, "cfg", yaml, n, &e), ERR_TOO_LARGE);
            assert_string_equal(e.msg, "cfg:1:39: values nest deeper than 32 levels");
        }
        cfg_free(&c);
    }
    /* Block nesting counts the same way. */
    {
        char block[4096];
        n = (size_t)snprintf(block, sizeof(block), "deep:\n");
        for (int i = 0; i < 33; i++)
            n += (size_t)snprintf(block + n, sizeof(block) - n, "%*sk%d:\n", 2 * (i + 1), "", i);
        n += (size_t)snprintf(block + n, sizeof(block) - n, "%*sleaf\n", 68, "");
        cfg_defaults(&c, NULL);
        assert_int_equal(cfg_load_buffer(&c, "cfg", block, n, &e), ERR_TOO_LARGE);
        assert_string_equal(e.msg, "cfg:34:67: values nest deeper than 32 levels");
        cfg_free(&c);
    }
}

/* ---- files: load and the atomic save ---- */

static void test_save_and_load_file(void **state)
{
    static const char *const files[] = {"config.yaml", NULL};
    struct tmpdir t;
    char path[512], expect[512];
    struct cfg c, back;
    struct err e = ERR_INIT;
    char *text = read_fixture("unknown_keys.yaml");
    (void)state;

    tmpdir_make(&t);
    tmpdir_file(&t, "config.yaml", path, sizeof(path));
    write_file(path, "old_key: 1\nport: 1\n");
    /* Defaults come from the file's directory. */
    assert_int_equal(cfg_load(&c, path, &e), 0);
    assert_int_equal(c.port, 1);
    snprintf(expect, sizeof(expect), "%s" SEP "certs" SEP "key.pem", t.path);
    assert_string_equal(c.server_private_key, expect);
    assert_string_equal(c.path, path);

    /* Save over the existing file (path NULL = where it came from) and load it back. */
    assert_int_equal(cfg_load_buffer(&c, "fixture", text, strlen(text), &e), 0);
    assert_int_equal(cfg_set_agent_token(&c, "eyJ.saved.token", &e), 0);
    if (cfg_save(&c, NULL, &e) < 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg_load(&back, path, &e), 0);
    assert_cfg_equal(&c, &back);
    for (size_t i = 0; i < cfg_unknown_count(&back); i++)
        assert_string_not_equal(cfg_unknown_key(&back, i), "old_key");
    cfg_free(&back);
    cfg_free(&c);

    /* Only the config file is left: no temp file behind. */
    {
        struct plat_dir *d;
        struct plat_dir_entry ent;
        int count = 0;
        assert_int_equal(plat_dir_open(t.path, &d, &e), 0);
        while (plat_dir_next(d, &ent, &e) == 1) {
            if (strcmp(ent.name, ".") && strcmp(ent.name, ".."))
                count++;
        }
        plat_dir_close(d);
        assert_int_equal(count, 1);
    }
    tmpdir_remove(&t, files);
    free(text);
}

static void test_failed_save_keeps_old_file(void **state)
{
    static const char *const files[] = {"config.yaml", NULL};
    static const char old[] = "port: 5000\nkeep_me: true\n";
    struct tmpdir t;
    char path[512], missing[512];
    char *now = NULL;
    struct cfg c;
    struct err e = ERR_INIT;
    struct plat_file_info info;
    (void)state;

    tmpdir_make(&t);
    tmpdir_file(&t, "config.yaml", path, sizeof(path));
    write_file(path, old);

    /* A save whose render fails never touches the file. */
    assert_int_equal(cfg_load(&c, path, &e), 0);
    strcpy(c.server_id, "\xfe\xff");
    assert_int_equal(cfg_save(&c, NULL, &e), ERR_INVALID);
    assert_true(strstr(e.msg, "cannot save ") == e.msg);
    assert_int_equal(fs_read_all(path, 4096, &now, NULL, &e), 0);
    assert_string_equal(now, old);
    free(now);

    /* A save into a directory that does not exist fails cleanly and creates nothing. */
    strcpy(c.server_id, "ok");
    tmpdir_file(&t, "no-such-dir" SEP "config.yaml", missing, sizeof(missing));
    assert_true(cfg_save(&c, missing, &e) < 0);
    assert_true(e.msg[0] != '\0');
    assert_int_equal(plat_path_stat(missing, &info, NULL), ERR_NOT_FOUND);
    cfg_free(&c);

    /* No path at all. */
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_save(&c, NULL, &e), ERR_INVALID);
    cfg_free(&c);
    tmpdir_remove(&t, files);
}

static void test_load_missing_and_oversized_file(void **state)
{
    static const char *const files[] = {"big.yaml", NULL};
    struct tmpdir t;
    char path[512];
    char *big;
    struct cfg c;
    struct err e = ERR_INIT;
    (void)state;

    assert_int_equal(cfg_load(&c, DATA_DIR "/does-not-exist.yaml", &e), ERR_NOT_FOUND);
    assert_true(strstr(e.msg, "cannot load the config: ") == e.msg);
    /* c holds the defaults and can be freed. */
    assert_int_equal(c.port, 4902);
    cfg_free(&c);

    tmpdir_make(&t);
    tmpdir_file(&t, "big.yaml", path, sizeof(path));
    big = malloc(CFG_MAX_FILE_SIZE + 2);
    assert_non_null(big);
    memset(big, '\n', CFG_MAX_FILE_SIZE + 1);
    big[CFG_MAX_FILE_SIZE + 1] = '\0';
    write_file(path, big);
    assert_int_equal(cfg_load(&c, path, &e), ERR_TOO_LARGE);
    cfg_free(&c);
    big[CFG_MAX_FILE_SIZE] = '\0';
    write_file(path, big);
    assert_int_equal(cfg_load(&c, path, &e), 0);
    cfg_free(&c);
    free(big);
    tmpdir_remove(&t, files);

    assert_int_equal(cfg_load(&c, "", &e), ERR_INVALID);
    cfg_free(&c);
}

/* ---- merge-on-save (cfg_merge_text, cfg_save_keys) ---- */

/* The agent's in-memory config: loaded from `loaded`, then its own keys changed. */
static void agent_cfg(struct cfg *c, const char *loaded)
{
    struct err e = ERR_INIT;
    load_ok(c, loaded);
    if (cfg_set_agent_token(c, "eyJ.new.token", &e) < 0)
        fail_msg("%s", e.msg);
    c->multi_user = 1;
    c->user_sso = 1;
    strcpy(c->server_id, "sid-new");
}

static char *merge_ok(const struct cfg *c, unsigned own, const char *old, int want_in_place)
{
    struct err e = ERR_INIT;
    char *out = NULL;
    size_t len = 0;
    int in_place = -1;
    if (cfg_merge_text(c, own, "config.yaml", old, strlen(old), &out, &len, &in_place, &e) < 0)
        fail_msg("merge of [%s] failed: %s", old, e.msg);
    assert_int_equal(strlen(out), len);
    if (in_place != want_in_place)
        fail_msg("merge of [%s]: in place %d, expected %d; got [%s]", old, in_place, want_in_place,
                 out);
    return out;
}

static void test_merge_keeps_admin_edits(void **state)
{
    /* what the agent loaded; the administrator then edited the file (file below) */
    static const char loaded[] = "port: 4000\ndebug: false\nagent_jwt_token: \"eyJ.old\"\n";
    static const char file[] = "# my comment\n"
                               "port: 4001   # moved\n"
                               "debug: true\n"
                               "multi_user: false # set by the deployment\n"
                               "agent_jwt_token: \"eyJ.old\"  # keep this comment\n"
                               "my_key: [1, 2]\n"
                               "# trailing comment\n";
    static const char want[] = "# my comment\n"
                               "port: 4001   # moved\n"
                               "debug: true\n"
                               "multi_user: true # set by the deployment\n"
                               "agent_jwt_token: \"eyJ.new.token\"  # keep this comment\n"
                               "my_key: [1, 2]\n"
                               "# trailing comment\n"
                               "user_sso: true\n"
                               "server_id: \"sid-new\"\n";
    struct cfg c, back;
    char *out;
    (void)state;

    agent_cfg(&c, loaded);
    c.port = 4000; /* not ours: the file's 4001 stays */
    out = merge_ok(&c, CFG_OWN_CHECKIN, file, 1);
    assert_string_equal(out, want);
    load_ok(&back, out);
    assert_int_equal(back.port, 4001);
    assert_int_equal(back.debug, 1);
    assert_string_equal(back.agent_jwt_token, "eyJ.new.token");
    assert_int_equal(cfg_unknown_count(&back), 1);
    cfg_free(&back);
    free(out);

    /* only the token: multi_user and server_id keep the file's values (absent stays absent) */
    out = merge_ok(&c, CFG_OWN_TOKEN, file, 1);
    assert_non_null(strstr(out, "multi_user: false # set by the deployment\n"));
    assert_null(strstr(out, "server_id"));
    assert_null(strstr(out, "user_sso"));
    assert_non_null(strstr(out, "agent_jwt_token: \"eyJ.new.token\"  # keep"));
    free(out);
    cfg_free(&c);
}

static void test_merge_absent_keys_appended(void **state)
{
    struct cfg c, back;
    char *out;
    (void)state;

    agent_cfg(&c, "port: 1\n");
    /* no line break at the end: one is added before the appended keys */
    out = merge_ok(&c, CFG_OWN_TOKEN, "port: 2 # two", 1);
    assert_string_equal(out, "port: 2 # two\nagent_jwt_token: \"eyJ.new.token\"\n");
    free(out);
    /* an empty file, comments only, a bare document start */
    out = merge_ok(&c, CFG_OWN_TOKEN, "", 1);
    assert_string_equal(out, "agent_jwt_token: \"eyJ.new.token\"\n");
    free(out);
    out = merge_ok(&c, CFG_OWN_TOKEN | CFG_OWN_MULTI_USER, "# nothing yet\n", 1);
    assert_string_equal(out,
                        "# nothing yet\nmulti_user: true\nagent_jwt_token: \"eyJ.new.token\"\n");
    free(out);
    out = merge_ok(&c, CFG_OWN_TOKEN, "---\n", 1);
    load_ok(&back, out);
    assert_string_equal(back.agent_jwt_token, "eyJ.new.token");
    cfg_free(&back);
    free(out);
    /* registration: the hosts as a sequence, kept a sequence */
    c.api_host_count = 2;
    c.api_host_seq = 1;
    strcpy(c.api_host[0], "a.example");
    strcpy(c.api_host[1], "b.example");
    c.api_port = 8443;
    c.registered = 1;
    strcpy(c.server_private_key, "/opt/kasm/certs/key.pem"); /* the same on every platform */
    strcpy(c.server_public_key, "/opt/kasm/certs/cert.pem");
    strcpy(c.jwt_public_key, "/opt/kasm/certs/jwt.pem");
    out = merge_ok(&c, CFG_OWN_REGISTER, "api_host: old.example\napi_port: 443 # x\nz: 1\n", 1);
    assert_string_equal(out,
                        "api_host:\n- \"a.example\"\n- \"b.example\"\napi_port: 8443 # x\nz: 1\n"
                        "server_private_key: \"/opt/kasm/certs/key.pem\"\n"
                        "server_public_key: \"/opt/kasm/certs/cert.pem\"\n"
                        "jwt_public_key: \"/opt/kasm/certs/jwt.pem\"\n"
                        "multi_user: true\nuser_sso: true\nregistered: true\n"
                        "server_id: \"sid-new\"\nagent_jwt_token: \"eyJ.new.token\"\n");
    free(out);
    cfg_free(&c);
}

static void test_merge_crlf(void **state)
{
    static const char file[] = "# admin\r\nport: 7\r\nagent_jwt_token: old  # c\r\n"
                               "api_host:\r\n  - x.example\r\n  - y.example\r\n# end\r\n";
    struct cfg c, back;
    char *out;
    (void)state;

    agent_cfg(&c, "port: 1\n");
    c.api_host_count = 1;
    c.api_host_seq = 1;
    strcpy(c.api_host[0], "z.example");
    out = merge_ok(&c, CFG_OWN_TOKEN | CFG_OWN_API_HOST | CFG_OWN_USER_SSO, file, 1);
    assert_string_equal(out, "# admin\r\nport: 7\r\nagent_jwt_token: \"eyJ.new.token\"  # c\r\n"
                             "api_host:\r\n- \"z.example\"\r\n# end\r\nuser_sso: true\r\n");
    for (const char *p = out; *p; p++)
        if (*p == '\n')
            assert_true(p > out && p[-1] == '\r');
    load_ok(&back, out);
    assert_int_equal(back.port, 7);
    cfg_free(&back);
    free(out);
    cfg_free(&c);
}

/* Odd layouts of an owned key are still edited in place, or the file is written whole. */
static void test_merge_layouts(void **state)
{
    static const struct {
        const char *file;
        int in_place;
    } cases[] = {
        {"agent_jwt_token:\nport: 3 # p\n", 1},                     /* empty value */
        {"agent_jwt_token: ~ # none\nport: 3 # p\n", 1},            /* null */
        {"agent_jwt_token: >-\n  eyJ.a\n  .b\n\nport: 3 # p\n", 1}, /* folded scalar */
        {"agent_jwt_token: |\n  eyJ.a\nport: 3 # p\n", 1},          /* literal scalar */
        {"# \xc3\xa9t\xc3\xa9 \xe2\x82\xac\nagent_jwt_token: 'x' # \xe2\x82\xac\nport: 3 # p\n", 1},
        {"\xEF\xBB\xBFport: 3 # p\nagent_jwt_token: x\n", 1}, /* UTF-8 BOM */
        {"multi_user: !!bool yes\nagent_jwt_token: \"a\\\n  b\"\nport: 3 # p\n", 1},
        {"api_host: [a.example, b.example] # flow\nport: 3 # p\n", 1},
        {"api_host:\n- a.example\n\n# between\n- b.example\nport: 3 # p\n", 1},
        {"{port: 3, agent_jwt_token: x}", 0}, /* a flow mapping: written whole */
        {"port: 3\n...\n", 0},                /* a document end marker: written whole */
    };
    struct cfg c, back;
    (void)state;

    agent_cfg(&c, "port: 1\n");
    strcpy(c.api_host[0], "n.example");
    c.api_host_count = 1;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out =
            merge_ok(&c, CFG_OWN_CHECKIN | CFG_OWN_API_HOST, cases[i].file, cases[i].in_place);
        load_ok(&back, out);
        assert_int_equal(back.port, 3);
        assert_string_equal(back.agent_jwt_token, "eyJ.new.token");
        assert_int_equal(back.multi_user, 1);
        assert_int_equal(back.user_sso, 1);
        assert_string_equal(back.server_id, "sid-new");
        assert_int_equal(back.api_host_count, 1);
        assert_string_equal(back.api_host[0], "n.example");
        if (cases[i].in_place && !strstr(out, "port: 3 # p"))
            fail_msg("case %zu lost a comment: [%s]", i, out);
        cfg_free(&back);
        free(out);
    }
    cfg_free(&c);
}

static void test_merge_broken_file(void **state)
{
    static const char *const files[] = {"config.yaml", NULL};
    static const char broken[] = "# admin\nport: 5\nheartbeat_interval: [unclosed\n";
    struct tmpdir t;
    char path[512];
    char *out = (char *)"x", *now = NULL;
    size_t len = 1;
    struct cfg c;
    struct err e = ERR_INIT;
    (void)state;

    agent_cfg(&c, "port: 1\n");
    assert_int_equal(cfg_merge_text(&c, CFG_OWN_TOKEN, "config.yaml", broken, strlen(broken), &out,
                                    &len, NULL, &e),
                     ERR_PARSE);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_non_null(strstr(e.msg, "config.yaml:"));
    /* a type error is a broken file too */
    assert_true(cfg_merge_text(&c, CFG_OWN_TOKEN, "config.yaml", "port: abc\n", 10, &out, &len,
                               NULL, &e) < 0);

    /* on disk: the file is left byte for byte, the error says so and where */
    tmpdir_make(&t);
    tmpdir_file(&t, "config.yaml", path, sizeof(path));
    write_file(path, broken);
    assert_int_equal(cfg_save_keys(&c, path, CFG_OWN_TOKEN, &e), ERR_PARSE);
    assert_true(strstr(e.msg, path) == e.msg);
    assert_non_null(strstr(e.msg, " no longer loads, so the agent's new values (agent_jwt_token) "
                                  "are not saved and the file is left as it is: "));
    assert_non_null(strstr(e.msg, ":3:"));
    assert_null(strstr(e.msg, "eyJ.new.token"));
    assert_int_equal(fs_read_all(path, 4096, &now, NULL, &e), 0);
    assert_string_equal(now, broken);
    free(now);

    /* fixed: the next save merges */
    write_file(path, "# admin\nport: 5\n");
    if (cfg_save_keys(&c, path, CFG_OWN_TOKEN, &e) < 0)
        fail_msg("%s", e.msg);
    assert_int_equal(fs_read_all(path, 4096, &now, NULL, &e), 0);
    assert_string_equal(now, "# admin\nport: 5\nagent_jwt_token: \"eyJ.new.token\"\n");
    free(now);

    /* missing: written whole from the agent's config */
    plat_path_remove(path, NULL);
    if (cfg_save_keys(&c, path, CFG_OWN_TOKEN, &e) < 0)
        fail_msg("%s", e.msg);
    {
        struct cfg back;
        assert_int_equal(cfg_load(&back, path, &e), 0);
        assert_int_equal(back.port, 1);
        assert_string_equal(back.agent_jwt_token, "eyJ.new.token");
        cfg_free(&back);
    }
    cfg_free(&c);
    tmpdir_remove(&t, files);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_kasm_windows_config),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_int_values),
        cmocka_unit_test(test_string_values),
        cmocka_unit_test(test_token_values),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_api_host_forms),
        cmocka_unit_test(test_api_host_length),
        cmocka_unit_test(test_unknown_keys_round_trip),
        cmocka_unit_test(test_unknown_keys_replaced),
        cmocka_unit_test(test_unknown_value_forms),
        cmocka_unit_test(test_cfg_equal),
        cmocka_unit_test(test_awkward_strings_round_trip),
        cmocka_unit_test(test_render_invalid_utf8),
        cmocka_unit_test(test_token_never_in_errors),
        cmocka_unit_test(test_token_wiped_on_free),
        cmocka_unit_test(test_token_wiped_on_replace),
        cmocka_unit_test(test_token_set_limits),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_scalar_size_limit),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_save_and_load_file),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_load_missing_and_oversized_file),
        cmocka_unit_test(test_merge_keeps_admin_edits),
        cmocka_unit_test(test_merge_absent_keys_appended),
        cmocka_unit_test(test_merge_crlf),
        cmocka_unit_test(test_merge_layouts),
        cmocka_unit_test(test_merge_broken_file),
    };
    return UNIT_RUN("cfg", tests, NULL, NULL);
}
