/*
 * test_deploy_policy.c - the token lifecycle's pure decisions: when to refresh or exchange,
 * the capped and jittered exponential backoff, and the time format of the log lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "policy.h"

static void refresh_decision(void **state)
{
    static const struct {
        int has_exp;
        int64_t exp, received, now;
        enum dpol_action want;
    } cases[] = {
        /* lifetime 3000 ms: refresh when less than 1000 ms are left */
        {1, 10000, 7000, 7000, DPOL_KEEP},
        {1, 10000, 7000, 8999, DPOL_KEEP},
        {1, 10000, 7000, 9000, DPOL_KEEP}, /* exactly a third left */
        {1, 10000, 7000, 9001, DPOL_REFRESH},
        {1, 10000, 7000, 9999, DPOL_REFRESH},
        {1, 10000, 7000, 10000, DPOL_EXCHANGE},
        {1, 10000, 7000, 99999, DPOL_EXCHANGE},
        /* 3 days: refresh on day 2 */
        {1, 259200000, 0, 172799000, DPOL_KEEP},
        {1, 259200000, 0, 172801000, DPOL_REFRESH},
        /* received after exp (clock change): refresh at once */
        {1, 1000, 2000, 500, DPOL_REFRESH},
        /* no exp: never */
        {0, 0, 0, 123456789, DPOL_KEEP},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum dpol_action got =
            dpol_decide(cases[i].has_exp, cases[i].exp, cases[i].received, cases[i].now);
        if (got != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, (int)got, (int)cases[i].want);
    }
}

static void backoff_grows_is_capped_and_jittered(void **state)
{
    static const uint32_t rnds[] = {0, 1, 7, 12345, 0xffffffffu, 0x80000000u};
    (void)state;
    for (unsigned n = 1; n <= 12; n++) {
        uint64_t full = 500;
        for (unsigned k = 1; k < n; k++)
            full *= 2;
        if (full > 8000)
            full = 8000;
        assert_int_equal(dpol_backoff_ms(n, 500, 8000, 0), full); /* rnd 0: no jitter */
        for (size_t r = 0; r < sizeof(rnds) / sizeof(rnds[0]); r++) {
            uint32_t d = dpol_backoff_ms(n, 500, 8000, rnds[r]);
            assert_true(d <= full);
            assert_true(d >= full / 2);
        }
    }
    assert_int_equal(dpol_backoff_ms(1, 0, 10, 0), 1);
    assert_int_equal(dpol_backoff_ms(1000, 1000, 60000, 0), 60000);
    /* the jitter spreads the values */
    assert_true(dpol_backoff_ms(4, 500, 8000, 1000) != dpol_backoff_ms(4, 500, 8000, 2000));
}

static void times_print_in_utc(void **state)
{
    static const struct {
        int64_t t;
        const char *want;
    } cases[] = {
        {0, "1970-01-01 00:00:00 UTC"},          {951782400, "2000-02-29 00:00:00 UTC"},
        {1795360805, "2026-11-22 15:20:05 UTC"}, {4102444799, "2099-12-31 23:59:59 UTC"},
        {-1, "1969-12-31 23:59:59 UTC"},
    };
    char buf[64];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dpol_format_time(cases[i].t, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
}

/* dpol_refresh_due_ms() is the first moment dpol_decide() stops keeping the token. */
static void refresh_due_matches_decision(void **state)
{
    static const int64_t lifetimes[] = {1, 2, 3, 4, 5, 7, 1000, 2999, 3000, 3001, 259200000};
    (void)state;
    assert_int_equal(dpol_refresh_due_ms(0, 5000, 1000), 0);
    assert_int_equal(dpol_refresh_due_ms(1, 1000, 1000), 1000); /* no lifetime: at once */
    for (size_t i = 0; i < sizeof(lifetimes) / sizeof(lifetimes[0]); i++) {
        int64_t received = 1700000000000LL, exp = received + lifetimes[i];
        int64_t due = dpol_refresh_due_ms(1, exp, received);
        assert_true(due > received);
        assert_true(due <= exp);
        assert_int_not_equal(dpol_decide(1, exp, received, due), DPOL_KEEP);
        assert_int_equal(dpol_decide(1, exp, received, due - 1), DPOL_KEEP);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refresh_decision),
        cmocka_unit_test(refresh_due_matches_decision),
        cmocka_unit_test(backoff_grows_is_capped_and_jittered),
        cmocka_unit_test(times_print_in_utc),
    };
    return UNIT_RUN("deploy_policy", tests, NULL, NULL);
}
