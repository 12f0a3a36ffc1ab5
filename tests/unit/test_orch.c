/*
 * test_orch.c - the portable logic of the session orchestrator (service/orch/orch.c): %VAR%
 * expansion of file mapping destinations (known variables, unknown and unset ones, escapes
 * out of the profile, separators), "is this path in the profile", a mapping's access flags and
 * their defaults, and the bounded memory of started sessions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cJSON.h>

#include "unit.h"

#include "orch.h"
#include "orch_helper.h"
#include "plat.h"

#ifdef _WIN32
#define PROFILE "C:\\Users\\alice"
#define S       "\\"
#else
#define PROFILE "/home/alice"
#define S       "/"
#endif

static void expand_known_variables(void **state)
{
    struct orch_expand_env env = {PROFILE, "alice"};
    char out[512];
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(orch_expand("%HOMEPATH%\\Desktop\\notes.txt", &env, out, sizeof(out), &e), 0);
    assert_string_equal(out, PROFILE S "Desktop" S "notes.txt");
    assert_int_equal(orch_expand("%userprofile%/a.txt", &env, out, sizeof(out), &e), 0);
    assert_string_equal(out, PROFILE S "a.txt");
    assert_int_equal(orch_expand("%HOMEPATH%\\%USERNAME%-100%%.txt", &env, out, sizeof(out), &e),
                     0);
    assert_string_equal(out, PROFILE S "alice-100%.txt");
#ifdef _WIN32
    assert_int_equal(orch_expand("C:/ProgramData/x.ini", &env, out, sizeof(out), &e), 0);
    assert_string_equal(out, "C:\\ProgramData\\x.ini");
#else
    assert_int_equal(orch_expand("/etc/kasm/x.ini", &env, out, sizeof(out), &e), 0);
    assert_string_equal(out, "/etc/kasm/x.ini");
#endif
}

static void expand_refusals(void **state)
{
    struct orch_expand_env env = {PROFILE, "alice"}, none = {"", "bob"};
    char out[512], small[8];
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(orch_expand("%APPDATA%\\x", &env, out, sizeof(out), &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "APPDATA"));
    assert_int_equal(orch_expand("%HOMEPATH\\x", &env, out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(orch_expand("%HOMEPATH%\\x", &none, out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(orch_expand("Desktop\\x.txt", &env, out, sizeof(out), &e), ERR_PERMISSION);
    assert_int_equal(orch_expand("%HOMEPATH%\\..\\bob\\x", &env, out, sizeof(out), &e),
                     ERR_PERMISSION);
    assert_int_equal(orch_expand("%HOMEPATH%\\.\\x", &env, out, sizeof(out), &e), ERR_PERMISSION);
    assert_int_equal(orch_expand("%HOMEPATH%\\dir\\", &env, out, sizeof(out), &e), ERR_PERMISSION);
    assert_int_equal(orch_expand("%HOMEPATH%\\long-name.txt", &env, small, sizeof(small), &e),
                     ERR_TOO_LARGE);
    /* a username that is itself a path is still caught by the .. rule */
    {
        struct orch_expand_env evil = {PROFILE, ".."};
        assert_int_equal(orch_expand("%HOMEPATH%\\%USERNAME%\\x", &evil, out, sizeof(out), &e),
                         ERR_PERMISSION);
    }
}

static void path_under(void **state)
{
    (void)state;
    assert_true(orch_path_under(PROFILE S "Desktop" S "a", PROFILE));
    assert_true(orch_path_under(PROFILE, PROFILE));
    assert_true(orch_path_under(PROFILE S "a", PROFILE S));
    assert_false(orch_path_under(PROFILE "2" S "a", PROFILE));
    assert_false(orch_path_under(S "tmp" S "a", PROFILE));
    assert_false(orch_path_under(S, ""));
#ifdef _WIN32
    assert_true(orch_path_under("c:\\users\\ALICE\\x", PROFILE));
    assert_true(orch_path_under("C:/Users/alice/x", PROFILE));
#else
    assert_false(orch_path_under("/home/ALICE/x", PROFILE));
#endif
}

/* The profile-relative path FILE_PUT carries: '/'-separated, never empty, only below. */
static void profile_rel(void **state)
{
    char out[256], tiny[6];
    struct err e = ERR_INIT;

    (void)state;
    assert_int_equal(
        orch_profile_rel(PROFILE S "Desktop" S "a b.txt", PROFILE, out, sizeof(out), &e), 0);
    assert_string_equal(out, "Desktop/a b.txt");
    assert_int_equal(orch_profile_rel(PROFILE S "x", PROFILE S, out, sizeof(out), &e), 0);
    assert_string_equal(out, "x");
    assert_int_equal(orch_profile_rel(PROFILE, PROFILE, out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(orch_profile_rel(PROFILE "2" S "x", PROFILE, out, sizeof(out), &e),
                     ERR_INVALID);
    assert_int_equal(
        orch_profile_rel(PROFILE S "Desktop" S "long.txt", PROFILE, tiny, sizeof(tiny), &e),
        ERR_TOO_LARGE);
}

/* is_readable / is_writable / is_executable: true/false taken, anything else the default
 * (readable, writable, not executable). */
static void mapping_access(void **state)
{
    static const struct {
        const char *json;
        unsigned want;
        const char *text;
    } cases[] = {
        {"{}", PLAT_ACCESS_READ | PLAT_ACCESS_WRITE, "rw-"},
        {"{\"is_readable\":true,\"is_writable\":false,\"is_executable\":false}", PLAT_ACCESS_READ,
         "r--"},
        {"{\"is_readable\":false,\"is_writable\":false,\"is_executable\":false}", 0, "---"},
        {"{\"is_readable\":false,\"is_writable\":true,\"is_executable\":true}",
         PLAT_ACCESS_WRITE | PLAT_ACCESS_EXECUTE, "-wx"},
        {"{\"is_executable\":true}", PLAT_ACCESS_READ | PLAT_ACCESS_WRITE | PLAT_ACCESS_EXECUTE,
         "rwx"},
        /* not booleans: the defaults */
        {"{\"is_readable\":0,\"is_writable\":\"false\",\"is_executable\":1}",
         PLAT_ACCESS_READ | PLAT_ACCESS_WRITE, "rw-"},
        {"{\"is_readable\":null,\"is_writable\":false}", PLAT_ACCESS_READ, "r--"},
        {"[]", PLAT_ACCESS_READ | PLAT_ACCESS_WRITE, "rw-"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        char text[4];
        assert_non_null(j);
        if (orch_mapping_access(j) != cases[i].want)
            fail_msg("%s: access %u, want %u", cases[i].json, orch_mapping_access(j),
                     cases[i].want);
        assert_string_equal(orch_access_text(orch_mapping_access(j), text), cases[i].text);
        cJSON_Delete(j);
    }
    assert_int_equal(orch_mapping_access(NULL), PLAT_ACCESS_READ | PLAT_ACCESS_WRITE);
}

static void seen_is_bounded(void **state)
{
    struct orch_seen *s = calloc(1, sizeof(*s));
    char id[32];
    (void)state;
    assert_non_null(s);
    assert_int_equal(orch_seen_add(s, "a"), 0);
    assert_int_equal(orch_seen_add(s, "a"), 1);
    assert_int_equal(orch_seen_remove(s, "a"), 1);
    assert_int_equal(orch_seen_remove(s, "a"), 0);
    assert_int_equal(orch_seen_add(s, "a"), 0);
    for (int i = 0; i < ORCH_REMEMBERED - 1; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        assert_int_equal(orch_seen_add(s, id), 0);
    }
    assert_int_equal(orch_seen_add(s, "a"), 1);   /* still remembered: the ring is full */
    assert_int_equal(orch_seen_add(s, "new"), 0); /* the oldest ("a") is forgotten */
    assert_int_equal(orch_seen_add(s, "a"), 0);
    free(s);
}

static void count_expired(void *ctx, const struct orch_pending *p)
{
    (void)p;
    ++*(int *)ctx;
}

static void pending_list(void **state)
{
    struct orch_pending_list l = {0};
    struct err e = ERR_INIT;
    char id[32];
    int seen = 0;
    (void)state;

    assert_int_equal(orch_pending_add(&l, "k1", "alice", "{\"a\":1}", 7, 100, &e), 0);
    assert_int_equal(orch_pending_add(&l, "k2", "bob", "{}", 2, 200, &e), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.head->kasm_id, "k2");
    assert_string_equal(l.head->next->payload, "{\"a\":1}");
    /* the same kasm_id again replaces its entry */
    assert_int_equal(orch_pending_add(&l, "k1", "alice", "{\"b\":2}", 7, 150, &e), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.head->payload, "{\"b\":2}");
    assert_int_equal((int)l.head->expires, 150);
    /* expiry: only entries at or past their time, never a running one */
    l.head->running = 1; /* k1 */
    assert_int_equal((int)orch_pending_expire(&l, 150, count_expired, &seen), 0);
    assert_int_equal((int)orch_pending_expire(&l, 199, count_expired, &seen), 0);
    assert_int_equal(seen, 0);
    assert_int_equal((int)orch_pending_expire(&l, 200, count_expired, &seen), 1); /* k2 */
    assert_int_equal(seen, 1);
    assert_int_equal(l.count, 1);
    /* drop: a running entry stays (the caller waits), then goes */
    assert_int_equal(orch_pending_drop(&l, "k1"), 2);
    assert_int_equal(orch_pending_drop(&l, "nope"), 0);
    l.head->running = 0;
    assert_int_equal(orch_pending_drop(&l, "k1"), 1);
    assert_int_equal(orch_pending_drop(&l, "k1"), 0);
    assert_int_equal(l.count, 0);
    assert_null(l.head);
    /* bounded */
    for (int i = 0; i < ORCH_PENDING_MAX; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        assert_int_equal(orch_pending_add(&l, id, "u", "{}", 2, 1, &e), 0);
    }
    assert_int_equal(orch_pending_add(&l, "one-more", "u", "{}", 2, 1, &e), ERR_TOO_LARGE);
    assert_int_equal(orch_pending_add(&l, "id-3", "u", "{}", 2, 1, &e), 0); /* a replacement */
    orch_pending_remove(&l, l.head);
    assert_int_equal((int)l.count, ORCH_PENDING_MAX - 1);
    orch_pending_clear(&l);
    assert_int_equal(l.count, 0);
    assert_null(l.head);
}

/* A map_storage that cannot start as the user: backoff, skipped until due, bounded. */
static void pending_retry(void **state)
{
    static const int64_t waits[] = {5, 10, 20, 40, 60, 60, 60};
    struct orch_pending_list l = {0};
    struct err e = ERR_INIT;
    struct orch_pending *p;
    int64_t now = 1000;
    (void)state;

    assert_int_equal((int)orch_pending_backoff(1), 5);
    assert_int_equal((int)orch_pending_backoff(4), 40);
    assert_int_equal((int)orch_pending_backoff(5), 60);
    assert_int_equal((int)orch_pending_backoff(100), 60);

    assert_int_equal(orch_pending_add(&l, "k1", "alice", "{}", 2, 5000, &e), 0);
    assert_int_equal(orch_pending_add(&l, "k2", "bob", "{}", 2, 3000, &e), 0);
    p = l.head->next; /* k1 */
    assert_string_equal(p->kasm_id, "k1");
    /* new entries are due at once; the next look is at the earliest expiry (or the limit) */
    assert_true(orch_pending_due(p, now));
    assert_int_equal((int)orch_pending_next(&l, now, now + 30), (int)now + 30);
    assert_int_equal((int)orch_pending_next(&l, now, 4000), 3000);
    p->running = 1;
    assert_false(orch_pending_due(p, now));

    for (int a = 1; a < ORCH_PENDING_ATTEMPTS; a++) {
        int64_t wait = orch_pending_retry(p, now);
        assert_int_equal((int)wait, (int)waits[a - 1]);
        assert_int_equal(p->attempts, a);
        assert_int_equal(p->running, 0);
        assert_int_equal((int)p->retry_at, (int)(now + wait));
        /* not tried before its time (a poke does not help), woken up for it */
        assert_false(orch_pending_due(p, now));
        assert_false(orch_pending_due(p, now + wait - 1));
        assert_int_equal((int)orch_pending_next(&l, now, now + 100), (int)(now + wait));
        /* the retry is due; a running entry's retry time does not count */
        now += wait;
        assert_true(orch_pending_due(p, now));
        assert_int_equal((int)orch_pending_next(&l, now, now + 30), (int)now + 30);
        p->running = 1;
        assert_int_equal((int)orch_pending_next(&l, now - 1, now + 30), (int)now + 30);
    }
    /* the last attempt: the caller drops it */
    assert_int_equal((int)orch_pending_retry(p, now), 0);
    assert_int_equal(p->attempts, ORCH_PENDING_ATTEMPTS);
    orch_pending_remove(&l, p);
    assert_int_equal(l.count, 1);
    /* an entry waiting for its retry still expires and still goes at session_end */
    p = l.head; /* k2 */
    assert_int_equal((int)orch_pending_retry(p, 2990), 5);
    assert_int_equal((int)orch_pending_next(&l, 2990, 4000), 2995);
    assert_int_equal((int)orch_pending_expire(&l, 3000, NULL, NULL), 1);
    assert_int_equal(orch_pending_add(&l, "k3", "carol", "{}", 2, 9000, &e), 0);
    assert_int_equal((int)orch_pending_retry(l.head, 100), 5);
    assert_int_equal(orch_pending_drop(&l, "k3"), 1);
    /* a new session_start for the same kasm_id starts over */
    assert_int_equal(orch_pending_add(&l, "k4", "dave", "{}", 2, 9000, &e), 0);
    assert_int_equal((int)orch_pending_retry(l.head, 100), 5);
    assert_int_equal(orch_pending_add(&l, "k4", "dave", "{}", 2, 9000, &e), 0);
    assert_int_equal(l.head->attempts, 0);
    assert_true(orch_pending_due(l.head, 100));
    orch_pending_clear(&l);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(expand_known_variables),
        cmocka_unit_test(expand_refusals),
        cmocka_unit_test(path_under),
        cmocka_unit_test(profile_rel),
        cmocka_unit_test(mapping_access),
        cmocka_unit_test(seen_is_bounded),
        cmocka_unit_test(pending_list),
        cmocka_unit_test(pending_retry),
    };
    return UNIT_RUN("orch", tests, NULL, NULL);
}
