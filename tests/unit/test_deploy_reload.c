/*
 * test_deploy_reload.c - `agentctl reload`'s sorting of changed keys (service/deploy/reload.c):
 * applied at once or needing a restart, a key changed by an earlier reload still needing one,
 * the token adopted only when the file holds another, the values copied (max_json_body_bytes
 * excepted) and the unknown keys taken over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "cfg.h"
#include "reload.h"

static const char base_yaml[] = "port: 4902\n"
                                "api_host: [a.example.test]\n"
                                "api_port: 443\n"
                                "heartbeat_interval: 30\n"
                                "debug: false\n"
                                "server_id: 0123456789abcdef0123456789abcdef\n"
                                "agent_jwt_token: tok-one\n"
                                "max_json_body_bytes: 1048576\n"
                                "some_unknown_key: old\n";

static void load(struct cfg *c, const char *yaml)
{
    struct err e = ERR_INIT;
    cfg_defaults(c, "/opt/kasm");
    if (cfg_load_buffer(c, "test", yaml, strlen(yaml), &e) < 0)
        fail_msg("%s", e.msg);
}

static int listed(const char *const *names, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], key) == 0)
            return 1;
    return 0;
}

static void nothing_changed(void **state)
{
    struct cfg a, b;
    struct drl_diff d;
    (void)state;
    load(&a, base_yaml);
    load(&b, base_yaml);
    drl_diff(&a, NULL, &b, &d);
    assert_int_equal(d.napplied, 0);
    assert_int_equal(d.nrestart, 0);
    assert_false(d.token_changed);
    assert_false(d.hosts_changed);
    cfg_free(&a);
    cfg_free(&b);
}

static void applied_and_restart_sorted(void **state)
{
    struct cfg run, file;
    struct drl_diff d;
    struct err e = ERR_INIT;
    (void)state;
    load(&run, base_yaml);
    load(&file, "port: 4903\n"
                "api_host: [b.example.test, c.example.test]\n"
                "api_port: 8443\n"
                "heartbeat_interval: 5\n"
                "debug: true\n"
                "server_id: 0123456789abcdef0123456789abcdef\n"
                "agent_jwt_token: tok-two\n"
                "max_json_body_bytes: 2048\n"
                "listen_address: 127.0.0.1\n"
                "other_unknown_key: new\n");
    drl_diff(&run, NULL, &file, &d);
    assert_true(d.token_changed);
    assert_true(d.hosts_changed);
    for (const char *const *k = (const char *const[]){"api_host", "api_port", "heartbeat_interval",
                                                      "debug", "agent_jwt_token", NULL};
         *k; k++)
        assert_true(listed(d.applied, d.napplied, *k));
    assert_int_equal(d.napplied, 5);
    for (const char *const *k =
             (const char *const[]){"port", "listen_address", "max_json_body_bytes", NULL};
         *k; k++)
        assert_true(listed(d.restart, d.nrestart, *k));
    assert_int_equal(d.nrestart, 3);

    assert_int_equal(drl_apply(&run, &file, &e), 0);
    assert_string_equal(run.agent_jwt_token, "tok-two");
    assert_int_equal(run.api_host_count, 2);
    assert_string_equal(run.api_host[1], "c.example.test");
    assert_int_equal(run.api_port, 8443);
    assert_int_equal(run.heartbeat_interval, 5);
    assert_int_equal(run.port, 4903); /* copied: a later save keeps the file's value */
    assert_int_equal(run.max_json_body_bytes, 1048576); /* not copied: read without a lock */
    assert_int_equal(cfg_unknown_count(&run), 1);
    assert_string_equal(cfg_unknown_key(&run, 0), "other_unknown_key");
    cfg_free(&run);
    cfg_free(&file);
}

static void restart_keys_compared_with_the_start(void **state)
{
    struct cfg run, started, file;
    struct drl_diff d;
    struct err e = ERR_INIT;
    (void)state;
    load(&run, base_yaml);
    load(&started, base_yaml);
    load(&file, "port: 4903\nheartbeat_interval: 7\n");
    drl_diff(&run, &started, &file, &d);
    assert_true(listed(d.restart, d.nrestart, "port"));
    assert_int_equal(drl_apply(&run, &file, &e), 0);
    /* the same file again: nothing more to apply, the port still needs the restart */
    drl_diff(&run, &started, &file, &d);
    assert_int_equal(d.napplied, 0);
    assert_int_equal(d.nrestart, 1);
    assert_string_equal(d.restart[0], "port");
    cfg_free(&run);
    cfg_free(&started);
    cfg_free(&file);
}

static void file_without_token_keeps_the_running_one(void **state)
{
    struct cfg run, file;
    struct drl_diff d;
    struct err e = ERR_INIT;
    (void)state;
    load(&run, base_yaml);
    load(&file, "port: 4902\napi_host: [a.example.test]\n");
    drl_diff(&run, NULL, &file, &d);
    assert_false(d.token_changed);
    assert_false(listed(d.applied, d.napplied, "agent_jwt_token"));
    assert_int_equal(drl_apply(&run, &file, &e), 0);
    assert_string_equal(run.agent_jwt_token, "tok-one");
    cfg_free(&run);
    cfg_free(&file);
}

/* JWTs (unsigned for this purpose): server aaaa exp 2000000000 / 2000000100, server bbbb
 * exp 1900000000 */
#define JWT_HDR   "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
#define JWT_OLD   JWT_HDR "eyJzZXJ2ZXJfaWQiOiJhYWFhIiwiZXhwIjoyMDAwMDAwMDAwfQ.c2ln"
#define JWT_NEW   JWT_HDR "eyJzZXJ2ZXJfaWQiOiJhYWFhIiwiZXhwIjoyMDAwMDAwMTAwfQ.c2ln"
#define JWT_OTHER JWT_HDR "eyJzZXJ2ZXJfaWQiOiJiYmJiIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2ln"

static void token_newer_older_or_other_server(void **state)
{
    struct cfg run, file;
    struct drl_diff d;
    struct err e = ERR_INIT;
    (void)state;
    load(&run, "agent_jwt_token: " JWT_NEW "\n");
    /* an older token of the same server (an editor saved a stale copy): kept, flagged */
    load(&file, "agent_jwt_token: " JWT_OLD "\n");
    drl_diff(&run, NULL, &file, &d);
    assert_false(d.token_changed);
    assert_true(d.token_stale);
    assert_int_equal(drl_apply(&run, &file, &e), 0);
    assert_string_equal(run.agent_jwt_token, JWT_NEW);
    cfg_free(&file);
    /* another server's token, even with an earlier exp: a new registration, adopted */
    load(&file, "agent_jwt_token: " JWT_OTHER "\n");
    drl_diff(&run, NULL, &file, &d);
    assert_true(d.token_changed);
    assert_int_equal(drl_apply(&run, &file, &e), 0);
    assert_string_equal(run.agent_jwt_token, JWT_OTHER);
    cfg_free(&file);
    cfg_free(&run);
    /* a newer token of the same server: adopted */
    load(&run, "agent_jwt_token: " JWT_OLD "\n");
    load(&file, "agent_jwt_token: " JWT_NEW "\n");
    drl_diff(&run, NULL, &file, &d);
    assert_true(d.token_changed);
    assert_false(d.token_stale);
    cfg_free(&file);
    cfg_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_changed),
        cmocka_unit_test(applied_and_restart_sorted),
        cmocka_unit_test(restart_keys_compared_with_the_start),
        cmocka_unit_test(file_without_token_keeps_the_running_one),
        cmocka_unit_test(token_newer_older_or_other_server),
    };
    return UNIT_RUN("deploy_reload", tests, NULL, NULL);
}
