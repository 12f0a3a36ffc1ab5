/*
 * test_log.c - the logger: redaction of secrets (DESIGN.md "tokens, passwords and keys are
 * never logged"), the record format, the file sink and its rotation, levels, the forwarding
 * hook, the in-memory ring, the length cut and logging from several threads at once.
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

#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "testdir.h"

/* ------------------------------------------------------------------------------------- */
/* Redaction table                                                                        */

struct redact_case {
    const char *in;
    const char *out; /* NULL: must come back unchanged */
};

static const struct redact_case redact_cases[] = {
    /* key=value, query strings */
    {"token=abc123", "token=<redacted>"},
    {"GET /upload?name=a.txt&token=abc.def-ghi&x=1", "GET /upload?name=a.txt&token=<redacted>&x=1"},
    {"TOKEN = s3cr3t and more", "TOKEN = <redacted> and more"},
    {"apikey=1&pwd=2&page=3", "apikey=<redacted>&pwd=<redacted>&page=3"},
    {"access_token=xyz refresh_token=abc", "access_token=<redacted> refresh_token=<redacted>"},
    {"KASM_REGISTRATION_TOKEN=0b6f", "KASM_REGISTRATION_TOKEN=<redacted>"},
    {"jwt-token=a1;next", "jwt-token=<redacted>;next"},
    /* key: value (YAML, headers) */
    {"password: hunter2", "password: <redacted>"},
    {"Password:hunter2 next", "Password:<redacted> next"},
    {"agent_jwt_token: \"abc def\"", "agent_jwt_token: \"<redacted>\""},
    {"password: 'it''s here' tail", "password: '<redacted>' tail"},
    {"x-api-key: k123", "x-api-key: <redacted>"},
    {"credential: abc; user=bob", "credential: <redacted>; user=bob"},
    {"server_key: 1234, client_secret: 99", "server_key: <redacted>, client_secret: <redacted>"},
    /* JSON and Python reprs */
    {"{\"password\": \"a\\\"b c\", \"user\": \"bob\"}",
     "{\"password\": \"<redacted>\", \"user\": \"bob\"}"},
    {"{\"agent_jwt_token\":\"xyz\",\"port\":4902}",
     "{\"agent_jwt_token\":\"<redacted>\",\"port\":4902}"},
    {"{\"Secret\" : \"v\"}", "{\"Secret\" : \"<redacted>\"}"},
    {"{'client_secret': 's3', 'id': 1}", "{'client_secret': '<redacted>', 'id': 1}"},
    {"body=\"{\\\"token\\\":\\\"abc\\\"}\"", "body=\"{\\\"token\\\":\\\"<redacted>\\\"}\""},
    {"{\"passwd\": 1234}", "{\"passwd\": <redacted>}"},
    {"{\"password\": \"unterminated", "{\"password\": \"<redacted>"},
    /* command lines */
    {"agent.exe /S --register-host kasm.example --register-token 0b6f6c1e-1234 --server-id 42",
     "agent.exe /S --register-host kasm.example --register-token <redacted> --server-id 42"},
    {"--register-token=abcd --debug 1", "--register-token=<redacted> --debug 1"},
    {"--password \"two words\" -x", "--password \"<redacted>\" -x"},
    {"-secret hush", "-secret <redacted>"},
    /* Authorization and Bearer */
    {"Authorization: Bearer abc.def.ghi", "Authorization: Bearer <redacted>"},
    {"authorization=Basic dXNlcjpwYXNz", "authorization=Basic <redacted>"},
    {"Proxy-Authorization: Negotiate YIIx trailing", "Proxy-Authorization: Negotiate <redacted>"},
    {"sent header Bearer abcdefgh12345678 to api", "sent header Bearer <redacted> to api"},
    {"BEARER a+b/c=d~e_f-g.h", "BEARER <redacted>"},
    /* JWTs anywhere */
    {"got eyJhbGciOiJSUzI1NiJ9.eyJzZXJ2ZXJfaWQiOiIxIn0.c2lnbmF0dXJl from server",
     "got <redacted> from server"},
    {"tail eyJhbGciOiJSUzI1NiJ9.eyJzZXJ2ZXJf", "tail <redacted>"},
    {"none: eyJhbGciOiJub25lIn0.eyJhIjoxfQ. end", "none: <redacted> end"},
    {"(eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.sig)", "(<redacted>)"},
    {"jwe eyJhbGciOiJSU0EifQ.a.b.c.d!", "jwe <redacted>!"},
    /* PEM private keys */
    {"key -----BEGIN PRIVATE KEY-----\nMIIEv\nQIBADAN\n-----END PRIVATE KEY----- done",
     "key <redacted> done"},
    {"-----BEGIN RSA PRIVATE KEY-----\r\nMIIEow\r\n-----END RSA PRIVATE KEY-----\r\n",
     "<redacted>\r\n"},
    {"cut -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI", "cut <redacted>"},
    {"-----BEGIN OPENSSH PRIVATE KEY-----", "<redacted>"},
    {"x-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----y", "x<redacted>y"},
    {"private_key=-----BEGIN PRIVATE KEY-----\nAAA BBB\n-----END PRIVATE KEY----- next",
     "private_key=<redacted> next"},
    {"{\"pem\": \"-----BEGIN EC PRIVATE KEY-----\\nAAA\\n-----END EC PRIVATE KEY-----\\n\"}",
     "{\"pem\": \"<redacted>\\n\"}"},
    /* URLs with credentials */
    {"https://admin:pa55@kasm.example/api", "https://admin:<redacted>@kasm.example/api"},
    /* ordinary text stays readable */
    {"the token expired at 10:00", NULL},
    {"password reset for user bob", NULL},
    {"tokens: 3 left", NULL},
    {"jwt_public_key: /etc/kasm/certs/jwt.pem", NULL},
    {"server_private_key: C:\\Program Files\\Kasm\\certs\\key.pem", NULL},
    {"the bearer of bad news", NULL},
    {"if token == NULL", NULL},
    {"tokenizer=abc", NULL},
    {"secret: ", NULL},
    {"token=<redacted>", NULL},
    {"header eyJhbGciOiJSUzI1NiJ9 only", NULL},
    {"-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----", NULL},
    {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", NULL},
    {"C:\\Users\\bob\\Downloads at 12:30:01", NULL},
    {"https://kasm.example:443/api/x?a=b", NULL},
    {"--register-host kasm.example --server-id 42", NULL},
    {"", NULL},
};

static void redact_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(redact_cases) / sizeof(redact_cases[0]); k++) {
        const struct redact_case *c = &redact_cases[k];
        const char *want = c->out ? c->out : c->in;
        size_t cap = strlen(c->in) + 64;
        char *buf = malloc(cap);
        assert_non_null(buf);
        strcpy(buf, c->in);
        assert_ptr_equal(log_redact(buf, cap), buf);
        if (strcmp(buf, want) != 0)
            fail_msg("row %zu: redact(\"%s\")\n  got  \"%s\"\n  want \"%s\"", k, c->in, buf, want);
        /* Redacting again changes nothing. */
        log_redact(buf, cap);
        if (strcmp(buf, want) != 0)
            fail_msg("row %zu: not idempotent: \"%s\"", k, buf);
        free(buf);
    }
}

/* The output never exceeds cap - 1, even when "<redacted>" is longer than the secret. */
static void redact_respects_cap(void **state)
{
    char buf[8] = "pwd=a";
    char raw[16];
    (void)state;
    log_redact(buf, sizeof(buf));
    assert_string_equal(buf, "pwd=<re");

    /* Not terminated within cap: the last byte becomes the terminator, nothing is read past. */
    memset(raw, 'A', sizeof(raw));
    char *exact = malloc(sizeof(raw));
    assert_non_null(exact);
    memcpy(exact, raw, sizeof(raw));
    log_redact(exact, sizeof(raw));
    assert_int_equal(strlen(exact), sizeof(raw) - 1);
    free(exact);

    assert_null(log_redact(NULL, 10));
    buf[0] = 'x';
    log_redact(buf, 0); /* nothing written */
    assert_int_equal(buf[0], 'x');
}

/* Random compositions of tricky pieces: in bounds (ASan), terminated, never longer. */
static void redact_random_is_bounded(void **state)
{
    static const char *const pieces[] = {
        "token",
        "=",
        ":",
        " ",
        "\"",
        "'",
        "\\",
        "\\\"",
        "eyJ",
        "abc",
        ".",
        "-",
        "--",
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "-----",
        "Bearer ",
        "Authorization",
        "&",
        "\n",
        "://",
        "@",
        "password",
        "{",
        "}",
        "<redacted>",
        "\xc3\xa9",
    };
    uint32_t seed = 12345;
    (void)state;
    for (int it = 0; it < 20000; it++) {
        char text[256];
        size_t len = 0, cap;
        int parts;
        seed = seed * 1103515245u + 12345u;
        parts = (int)((seed >> 16) % 24);
        for (int p = 0; p < parts; p++) {
            const char *s;
            seed = seed * 1103515245u + 12345u;
            s = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            if (len + strlen(s) >= sizeof(text))
                break;
            memcpy(text + len, s, strlen(s));
            len += strlen(s);
        }
        text[len] = '\0';
        seed = seed * 1103515245u + 12345u;
        cap = len + 1 + (seed >> 16) % 12; /* sometimes tight, sometimes roomy */
        char *buf = malloc(cap);
        assert_non_null(buf);
        memcpy(buf, text, len + 1);
        log_redact(buf, cap);
        assert_true(strlen(buf) <= cap - 1);
        free(buf);
    }
}

/* ------------------------------------------------------------------------------------- */
/* Levels                                                                                 */

static void level_names_round_trip(void **state)
{
    static const struct {
        const char *name;
        int level;
    } rows[] = {
        {"debug", LOG_LEVEL_DEBUG},
        {"INFO", LOG_LEVEL_INFO},
        {"Warning", LOG_LEVEL_WARNING},
        {"warn", LOG_LEVEL_WARNING},
        {"error", LOG_LEVEL_ERROR},
        {"CRITICAL", LOG_LEVEL_CRITICAL},
        {"verbose", -1},
        {"", -1},
        {"info2", -1},
    };
    (void)state;
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        assert_int_equal(log_level_parse(rows[k].name), rows[k].level);
        if (rows[k].level > 0)
            assert_int_equal(log_level_parse(log_level_name(rows[k].level)), rows[k].level);
    }
    assert_int_equal(log_level_parse(NULL), -1);
    assert_string_equal(log_level_name(LOG_LEVEL_WARNING), "WARNING");
}

/* ------------------------------------------------------------------------------------- */
/* Helpers for sink tests                                                                 */

struct fixture {
    char dir[1024];
    char path[1100];
};

static int setup_dir(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx || td_make("log", fx->dir, sizeof(fx->dir)) < 0)
        return -1;
    if (fs_join(fx->dir, "agent.log", fx->path, sizeof(fx->path), NULL) < 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown_dir(void **state)
{
    struct fixture *fx = *state;
    log_shutdown();
    log_set_level(LOG_LEVEL_INFO);
    if (fx) {
        td_remove_tree(fx->dir);
        free(fx);
    }
    return 0;
}

static void init_file(const struct fixture *fx, uint64_t max_bytes, unsigned keep)
{
    struct log_options o = {0};
    struct err e = ERR_INIT;
    o.level = LOG_LEVEL_DEBUG;
    o.to_stderr = 0;
    o.file_path = fx->path;
    o.file_max_bytes = max_bytes;
    o.file_keep = keep;
    if (log_init(&o, &e) < 0)
        fail_msg("log_init: %s", e.msg);
}

static char *read_text(const char *path)
{
    char *text = NULL;
    struct err e = ERR_INIT;
    if (fs_read_all(path, 64 * 1024 * 1024, &text, NULL, &e) < 0)
        fail_msg("reading %s: %s", path, e.msg);
    return text;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "2026-11-21T15:04:05.123Z " */
static int is_timestamp(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t k = 0; k < sizeof(shape) - 1; k++) {
        if (shape[k] == 'd' ? !is_digit(s[k]) : s[k] != shape[k])
            return 0;
    }
    return 1;
}

/* The most recent ring record (caller frees); fails the test when the ring is empty. */
static struct log_ring_entry *last_record(void)
{
    struct log_ring_entry *v = NULL;
    size_t n = log_ring_snapshot(&v, 1);
    assert_int_equal(n, 1);
    return v;
}

/* ------------------------------------------------------------------------------------- */
/* Sinks                                                                                  */

static void file_sink_writes_redacted_lines(void **state)
{
    struct fixture *fx = *state;
    char *text, *line;
    init_file(fx, 0, 0);
    log_write(LOG_LEVEL_INFO, "test", "registering with token=%s and %s", "s3cr3t-value",
              "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln");
    log_write(LOG_LEVEL_WARNING, "cfg", "key %s",
              "-----BEGIN PRIVATE KEY-----\nMIIE\n"
              "-----END PRIVATE KEY-----");
    log_shutdown();

    text = read_text(fx->path);
    assert_int_equal(count_lines(text), 2);
    assert_null(strstr(text, "s3cr3t"));
    assert_null(strstr(text, "eyJhbGci"));
    assert_null(strstr(text, "MIIE"));
    line = text;
    assert_true(is_timestamp(line));
    assert_memory_equal(line + 25,
                        "INFO  [test] registering with token=<redacted> and "
                        "Authorization: Bearer <redacted>",
                        strlen("INFO  [test] registering with token=<redacted> and "
                               "Authorization: Bearer <redacted>"));
    line = strchr(line, '\n') + 1;
    assert_true(is_timestamp(line));
    assert_memory_equal(line + 25, "WARNING [cfg] key <redacted>", 28);
    free(text);
}

static void file_sink_appends(void **state)
{
    struct fixture *fx = *state;
    char *text;
    assert_int_equal(td_write(fx->path, "earlier line\n"), 0);
    init_file(fx, 0, 0);
    log_write(LOG_LEVEL_INFO, "test", "later line");
    log_shutdown();
    text = read_text(fx->path);
    assert_memory_equal(text, "earlier line\n", 13);
    assert_non_null(strstr(text + 13, "later line"));
    free(text);
}

static void file_rotation_keeps_n_files(void **state)
{
    struct fixture *fx = *state;
    char name[1200];
    int prev = -1, total = 0;
    init_file(fx, 1000, 3);
    for (int k = 0; k < 200; k++)
        log_write(LOG_LEVEL_INFO, "rot", "line %04d %s", k, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    log_shutdown();

    /* path.4 must not exist; path.3 .. path.1, path hold consecutive lines, oldest first. */
    snprintf(name, sizeof(name), "%s.4", fx->path);
    struct plat_file_info info;
    assert_int_equal(plat_path_stat(name, &info, NULL), ERR_NOT_FOUND);
    for (int k = 3; k >= 0; k--) {
        char *text, *p;
        if (k > 0)
            snprintf(name, sizeof(name), "%s.%d", fx->path, k);
        else
            snprintf(name, sizeof(name), "%s", fx->path);
        text = read_text(name);
        assert_true(strlen(text) <= 1000);
        for (p = strstr(text, "line "); p; p = strstr(p + 1, "line ")) {
            int num = atoi(p + 5);
            if (prev >= 0)
                assert_int_equal(num, prev + 1);
            prev = num;
            total++;
        }
        free(text);
    }
    assert_int_equal(prev, 199);
    assert_true(total < 200); /* the oldest lines were rotated away */
    assert_int_equal(td_count(fx->dir), 4);
}

/* A file sink that cannot rotate reports once and logging goes on through the other sinks. */
static void failing_file_sink_reports_once(void **state)
{
    struct fixture *fx = *state;
    char blocker[1200];
    struct log_ring_entry *v = NULL;
    size_t n, notices = 0, seen = 0;

    /* path.1 is a directory: rotation fails. */
    snprintf(blocker, sizeof(blocker), "%s.1", fx->path);
    assert_int_equal(plat_dir_create(blocker, NULL), 0);
    init_file(fx, 200, 2);
    for (int k = 0; k < 50; k++)
        log_write(LOG_LEVEL_INFO, "fail", "record %d padding padding padding padding", k);
    n = log_ring_snapshot(&v, 60);
    for (size_t k = 0; k < n; k++) {
        if (strcmp(v[k].module, "log") == 0) {
            notices++;
            assert_int_equal(v[k].level, LOG_LEVEL_ERROR);
            assert_non_null(strstr(v[k].message, "cannot rotate log file"));
        } else if (strcmp(v[k].module, "fail") == 0) {
            seen++;
        }
    }
    log_ring_free(v);
    assert_int_equal(notices, 1);
    assert_int_equal(seen, 50);
}

static void init_reports_unopenable_file(void **state)
{
    struct fixture *fx = *state;
    struct log_options o = {0};
    struct err e = ERR_INIT;
    char bad[1200];
    struct log_ring_entry *v;
    snprintf(bad, sizeof(bad), "%s%smissing%sagent.log", fx->dir, PLAT_PATH_SEP_STR,
             PLAT_PATH_SEP_STR);
    o.level = LOG_LEVEL_INFO;
    o.file_path = bad;
    assert_true(log_init(&o, &e) < 0);
    assert_non_null(strstr(e.msg, "agent.log"));
    assert_true(log_init(&o, NULL) < 0); /* no error struct: still only a return code */
    log_write(LOG_LEVEL_INFO, "test", "still logging");
    v = last_record();
    assert_string_equal(v->message, "still logging");
    log_ring_free(v);
}

static void levels_filter(void **state)
{
    struct fixture *fx = *state;
    char *text;
    init_file(fx, 0, 0);
    log_set_level(LOG_LEVEL_WARNING);
    assert_int_equal(log_get_level(), LOG_LEVEL_WARNING);
    log_write(LOG_LEVEL_DEBUG, "lv", "debug-record");
    log_write(LOG_LEVEL_INFO, "lv", "info-record");
    log_write(LOG_LEVEL_WARNING, "lv", "warning-record");
    log_write(LOG_LEVEL_ERROR, "lv", "error-record");
    log_write(LOG_LEVEL_CRITICAL, "lv", "critical-record");
    log_shutdown();
    text = read_text(fx->path);
    assert_null(strstr(text, "debug-record"));
    assert_null(strstr(text, "info-record"));
    assert_non_null(strstr(text, "WARNING [lv] warning-record"));
    assert_non_null(strstr(text, "ERROR [lv] error-record"));
    assert_non_null(strstr(text, "CRITICAL [lv] critical-record"));
    assert_int_equal(count_lines(text), 3);
    free(text);
}

struct hook_seen {
    int calls;
    enum log_level level;
    char module[16];
    char message[LOG_LINE_MAX];
    size_t ring_inside; /* the hook can take the logger's lock: it is called outside it */
};

static void hook_fn(const struct log_record *rec, void *ctx)
{
    struct hook_seen *h = ctx;
    struct log_ring_entry *v = NULL;
    h->calls++;
    h->level = rec->level;
    snprintf(h->module, sizeof(h->module), "%s", rec->module);
    snprintf(h->message, sizeof(h->message), "%s", rec->message);
    h->ring_inside = log_ring_snapshot(&v, 5);
    log_ring_free(v);
    /* A record logged from inside the hook is not fed back to it. */
    log_write(LOG_LEVEL_INFO, "hook", "logged from the hook");
}

static void hook_receives_redacted_records(void **state)
{
    struct hook_seen seen;
    struct log_ring_entry *v;
    struct log_options o = {0};
    (void)state;
    memset(&seen, 0, sizeof(seen));
    o.level = LOG_LEVEL_INFO;
    assert_int_equal(log_init(&o, NULL), 0);
    log_set_hook(hook_fn, &seen);
    log_write(LOG_LEVEL_ERROR, "deploy", "{\"password\": \"pw-%d\"}", 42);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.level, LOG_LEVEL_ERROR);
    assert_string_equal(seen.module, "deploy");
    assert_string_equal(seen.message, "{\"password\": \"<redacted>\"}");
    assert_true(seen.ring_inside > 0);
    v = last_record();
    assert_string_equal(v->module, "hook");
    log_ring_free(v);

    log_set_hook(NULL, NULL);
    log_write(LOG_LEVEL_ERROR, "deploy", "after removal");
    assert_int_equal(seen.calls, 1);
}

static void ring_snapshot_order_and_bounds(void **state)
{
    struct log_ring_entry *v = NULL;
    struct log_options o = {0};
    size_t n;
    (void)state;
    o.level = LOG_LEVEL_INFO;
    assert_int_equal(log_init(&o, NULL), 0);
    for (int k = 0; k < 1200; k++)
        log_write(LOG_LEVEL_INFO, "ring", "n=%d", k);

    n = log_ring_snapshot(&v, 5000);
    assert_int_equal(n, 1000); /* the ring keeps the last 1000 */
    for (size_t k = 0; k < n; k++) {
        char want[32];
        snprintf(want, sizeof(want), "n=%d", (int)(200 + k));
        assert_string_equal(v[k].message, want);
        assert_string_equal(v[k].module, "ring");
        if (k > 0)
            assert_true(v[k].time * 1000 + v[k].time_ms >= v[k - 1].time * 1000 + v[k - 1].time_ms);
    }
    log_ring_free(v);

    n = log_ring_snapshot(&v, 3);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].message, "n=1197");
    assert_string_equal(v[2].message, "n=1199");
    log_ring_free(v);

    assert_int_equal(log_ring_snapshot(&v, 0), 0);
    assert_null(v);
}

/* Big records: the ring also bounds its bytes, and drops the oldest first. */
static void ring_bounds_bytes(void **state)
{
    struct log_ring_entry *v = NULL;
    struct log_options o = {0};
    char big[1500];
    size_t n, bytes = 0;
    (void)state;
    o.level = LOG_LEVEL_INFO;
    assert_int_equal(log_init(&o, NULL), 0);
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int k = 0; k < 600; k++)
        log_write(LOG_LEVEL_INFO, "big", "%04d %s", k, big);
    n = log_ring_snapshot(&v, 5000);
    assert_true(n < 600);
    for (size_t k = 0; k < n; k++)
        bytes += strlen(v[k].message);
    assert_true(bytes <= 512 * 1024);
    assert_int_equal(atoi(v[n - 1].message), 599);
    assert_int_equal(atoi(v[0].message), (int)(600 - n));
    log_ring_free(v);
}

static void long_message_is_cut(void **state)
{
    struct fixture *fx = *state;
    struct log_ring_entry *v;
    char *big = malloc(10 * 1024 + 1);
    char *text, *nl;
    assert_non_null(big);
    memset(big, 'm', 10 * 1024);
    big[10 * 1024] = '\0';
    init_file(fx, 0, 0);
    log_write(LOG_LEVEL_INFO, "big", "%s", big);
    v = last_record();
    assert_int_equal(strlen(v->message), LOG_LINE_MAX - 1);
    assert_string_equal(v->message + LOG_LINE_MAX - 4, "...");
    log_ring_free(v);
    log_shutdown();
    text = read_text(fx->path);
    nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_memory_equal(nl - 3 - (nl[-1] == '\r'), "...", 3);
    assert_int_equal(count_lines(text), 1);
    free(text);
    free(big);
}

/* A cut never splits a UTF-8 character, and a token cut off by the length limit stays hidden. */
static void cut_keeps_utf8_and_secrets(void **state)
{
    struct log_ring_entry *v;
    struct log_options o = {0};
    char *big = malloc(5000);
    size_t len;
    (void)state;
    o.level = LOG_LEVEL_INFO;
    assert_int_equal(log_init(&o, NULL), 0);
    assert_non_null(big);
    for (int k = 0; k < 4000; k += 2)
        memcpy(big + k, "\xc3\xa9", 2); /* é */
    big[4000] = '\0';
    log_write(LOG_LEVEL_INFO, "u8", "x%s", big); /* odd offset: the cut lands mid-character */
    v = last_record();
    len = strlen(v->message);
    assert_string_equal(v->message + len - 3, "...");
    assert_true((unsigned char)v->message[len - 4] == 0xa9);
    log_ring_free(v);

    /* A JWT that straddles the cut: redaction runs before the cut, so no piece of it shows. */
    memset(big, 'p', 2030);
    big[2030] = '\0';
    log_write(LOG_LEVEL_INFO, "u8", "%s %s", big,
              "eyJhbGciOiJSUzI1NiJ9.eyJzZXJ2ZXJfaWQiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl");
    v = last_record();
    assert_null(strstr(v->message, "eyJ"));
    assert_string_equal(v->message + 2031, "<redacted>");
    log_ring_free(v);
    free(big);

    /* A JWT longer than the formatting buffer: cut there, then redacted to almost nothing;
     * the record still says it was cut. */
    big = malloc(12000);
    assert_non_null(big);
    memcpy(big, "eyJhbGciOiJSUzI1NiJ9.eyJ", 24);
    memset(big + 24, 'Q', 12000 - 25);
    big[12000 - 1] = '\0';
    log_write(LOG_LEVEL_INFO, "u8", "jwt %s.c2ln", big);
    v = last_record();
    assert_string_equal(v->message, "jwt <redacted>...");
    log_ring_free(v);
    free(big);
}

static void control_characters_are_escaped(void **state)
{
    struct log_ring_entry *v;
    struct log_options o = {0};
    (void)state;
    o.level = LOG_LEVEL_INFO;
    assert_int_equal(log_init(&o, NULL), 0);
    log_write(LOG_LEVEL_INFO, "esc", "name=%s", "a\nFAKE RECORD\r\x1b[31m\tb");
    v = last_record();
    assert_string_equal(v->message, "name=a\\nFAKE RECORD\\r\\x1b[31m\tb");
    log_ring_free(v);
}

#define THREADS    4
#define PER_THREAD 500

static void thread_body(void *arg)
{
    int id = *(int *)arg;
    for (int k = 0; k < PER_THREAD; k++)
        log_write(LOG_LEVEL_INFO, "mt", "thread %d line %04d %s", id, k,
                  "................................................................");
}

/* Four threads log at once: every line is whole and each thread's lines are in order. */
static void concurrent_logging_does_not_tear(void **state)
{
    struct fixture *fx = *state;
    struct plat_thread *t[THREADS];
    int ids[THREADS], next[THREADS] = {0};
    char *text, *line;
    int lines = 0;
    init_file(fx, 0, 0);
    for (int k = 0; k < THREADS; k++) {
        ids[k] = k;
        assert_int_equal(plat_thread_start(&t[k], thread_body, &ids[k], NULL), 0);
    }
    for (int k = 0; k < THREADS; k++)
        plat_thread_join(t[k]);
    log_shutdown();

    text = read_text(fx->path);
    for (line = text; *line; lines++) {
        char *end = strchr(line, '\n');
        int id, num;
        assert_non_null(end);
        assert_true(is_timestamp(line));
        assert_int_equal(sscanf(line + 25, "INFO  [mt] thread %d line %d", &id, &num), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(num, next[id]);
        next[id]++;
        /* ...and ends in the full padding. */
        assert_memory_equal(end - 8 - (end[-1] == '\r'), "........", 8);
        line = end + 1;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
    free(text);
}

/* log_ring_since: records after a sequence number, in order, capped; a wrapped ring says how
 * many records the reader missed and where to go on from. */
static void ring_since_follows_and_reports_missed(void **state)
{
    struct fixture *fx = *state;
    struct log_ring_entry *v = NULL;
    struct log_ring_pos pos;
    uint64_t last;
    size_t n;

    init_file(fx, 0, 0);
    for (int k = 0; k < 10; k++)
        log_write(LOG_LEVEL_INFO, "seq", "record %d", k);
    v = last_record();
    last = v->seq;
    log_ring_free(v);
    assert_true(last >= 10);

    /* the last five, oldest first, numbered one by one */
    n = log_ring_since(last - 5, 100, &v, &pos);
    assert_int_equal(n, 5);
    for (size_t k = 0; k < n; k++) {
        char want[32];
        snprintf(want, sizeof(want), "record %d", (int)(5 + k));
        assert_int_equal(v[k].seq, last - 4 + k);
        assert_string_equal(v[k].message, want);
    }
    assert_int_equal(pos.last, last);
    assert_int_equal(pos.missed, 0);
    assert_int_equal(pos.next, last);
    log_ring_free(v);

    /* capped by max: next is the last one returned */
    n = log_ring_since(last - 5, 2, &v, &pos);
    assert_int_equal(n, 2);
    assert_int_equal(v[1].seq, last - 3);
    assert_int_equal(pos.next, last - 3);
    log_ring_free(v);

    /* nothing new: next stays; a number from the future (an agent restarted) comes back */
    n = log_ring_since(last, 100, &v, &pos);
    assert_int_equal(n, 0);
    assert_null(v);
    assert_int_equal(pos.next, last);
    n = log_ring_since(last + 1000, 100, &v, &pos);
    assert_int_equal(n, 0);
    assert_int_equal(pos.next, last);

    /* the ring wraps: 1500 records later, the reader at `last` missed the oldest ones */
    for (int k = 0; k < 1500; k++)
        log_write(LOG_LEVEL_INFO, "seq", "later %d", k);
    n = log_ring_since(last, 10, &v, &pos);
    assert_int_equal(n, 10);
    assert_int_equal(pos.last, last + 1500);
    assert_true(pos.oldest > last + 1);
    assert_int_equal(v[0].seq, pos.oldest);
    assert_int_equal(pos.missed, pos.oldest - last - 1);
    assert_int_equal(pos.missed + (pos.last - pos.oldest + 1), 1500);
    assert_int_equal(pos.next, pos.oldest + 9);
    log_ring_free(v);
    /* going on from next misses nothing */
    n = log_ring_since(pos.next, 5000, &v, &pos);
    assert_int_equal(pos.missed, 0);
    assert_int_equal(v[n - 1].seq, last + 1500);
    assert_string_equal(v[n - 1].message, "later 1499");
    log_ring_free(v);
}

/* log_error_count: records at error and above of the last hour, by the minute. */
static void error_count_last_hour(void **state)
{
    struct fixture *fx = *state;
    int64_t now = plat_wall_time();
    unsigned before;

    init_file(fx, 0, 0);
    before = log_error_count(now);
    log_write(LOG_LEVEL_ERROR, "err", "one");
    log_write(LOG_LEVEL_CRITICAL, "err", "two");
    log_write(LOG_LEVEL_WARNING, "err", "a warning is not counted");
    log_write(LOG_LEVEL_ERROR, "err", "three");
    now = plat_wall_time();
    assert_int_equal(log_error_count(now), before + 3);
    /* an hour and more later they no longer count; two minutes earlier, not yet */
    assert_int_equal(log_error_count(now + 3600 + 120), 0);
    assert_true(log_error_count(now - 120) <= before);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redact_table),
        cmocka_unit_test(redact_respects_cap),
        cmocka_unit_test(redact_random_is_bounded),
        cmocka_unit_test(level_names_round_trip),
        cmocka_unit_test_setup_teardown(file_sink_writes_redacted_lines, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(file_sink_appends, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(file_rotation_keeps_n_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(failing_file_sink_reports_once, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(init_reports_unopenable_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(levels_filter, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(hook_receives_redacted_records, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(ring_snapshot_order_and_bounds, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(ring_bounds_bytes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(long_message_is_cut, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(cut_keeps_utf8_and_secrets, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(control_characters_are_escaped, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(concurrent_logging_does_not_tear, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(ring_since_follows_and_reports_missed, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(error_count_last_hour, setup_dir, teardown_dir),
    };
    return UNIT_RUN("log", tests, NULL, NULL);
}
