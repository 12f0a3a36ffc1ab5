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
            dpol_decide(cases[i].has_exp, cases[i].exp, cases[i].received, cases[i].now, 0);
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
        assert_int_not_equal(dpol_decide(1, exp, received, due, 0), DPOL_KEEP);
        assert_int_equal(dpol_decide(1, exp, received, due - 1, 0), DPOL_KEEP);
    }
}

/* ahead_ms: refresh now when the next decision would come after the due time. */
static void refresh_decision_looks_ahead(void **state)
{
    static const struct {
        int64_t now, ahead;
        enum dpol_action want;
    } cases[] = {
        /* exp 10000, received 7000: due at 9001 */
        {8000, 1000, DPOL_KEEP},    /* next decision at 9000: still before due */
        {8001, 1000, DPOL_KEEP},    /* next decision exactly at due: on time */
        {8002, 1000, DPOL_REFRESH}, /* next decision at 9002: one ms late, so now */
        {7000, 5000, DPOL_REFRESH}, /* a heartbeat longer than two thirds of the lifetime */
        {7000, 2000, DPOL_KEEP},    /* 9000 < 9001 */
        {7000, 2002, DPOL_REFRESH}, /* 9002 > 9001 */
        {9001, 0, DPOL_REFRESH},    /* due: refreshes whatever ahead says */
        {8999, -50, DPOL_KEEP},     /* a negative ahead counts as 0 */
        {10000, 1000, DPOL_EXCHANGE},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum dpol_action got = dpol_decide(1, 10000, 7000, cases[i].now, cases[i].ahead);
        if (got != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, (int)got, (int)cases[i].want);
    }
    assert_int_equal(dpol_decide(0, 0, 0, 5, 1000000), DPOL_KEEP);
}

/*
 * A fake clock runs the lifecycle's loop: decide (ahead = interval + the last keepalive's
 * duration), keepalive (takes `slow[k]` ms), decide again (ahead = interval), wait the
 * interval. Returns when the token is refreshed; *late_by: how far past the due time (<= 0
 * on time). The lifecycle before the fix decided once, with no look-ahead (old = 1).
 */
static int64_t run_beats(int64_t lifetime, int64_t interval, const int64_t *slow, size_t nslow,
                         int old, int64_t *spike_end)
{
    int64_t received = 1700000000000LL, exp = received + lifetime, now = received + 7;
    int64_t last = 0;
    size_t k = 0;

    *spike_end = 0;
    for (long beat = 0; beat < 2000000; beat++) {
        int64_t took = slow[k++ % nslow];
        if (dpol_decide(1, exp, received, now, old ? 0 : interval + last) != DPOL_KEEP)
            return now;
        now += took; /* the keepalive */
        if (now - took < dpol_refresh_due_ms(1, exp, received) &&
            now >= dpol_refresh_due_ms(1, exp, received))
            *spike_end = now; /* this keepalive was in flight at the due time */
        last = took;
        if (!old && dpol_decide(1, exp, received, now, interval) != DPOL_KEEP)
            return now;
        now += interval;
    }
    fail_msg("no refresh in 2000000 heartbeats");
    return 0;
}

static void fake_clock_refresh_never_late(void **state)
{
    static const int64_t lifetimes[] = {4000, 60000, 3600000, 259200000};
    static const int64_t intervals[] = {250, 1000, 30000, 50000, 7200000};
    static const int64_t steady[] = {0}, slowish[] = {5000}, spiky[] = {10, 10, 29000, 10, 10};
    static const int64_t *const slows[] = {steady, slowish, spiky};
    static const size_t nslows[] = {1, 1, 5};
    int old_late = 0;
    (void)state;

    for (size_t l = 0; l < sizeof(lifetimes) / sizeof(lifetimes[0]); l++) {
        int64_t received = 1700000000000LL;
        int64_t due = dpol_refresh_due_ms(1, received + lifetimes[l], received);
        for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
            for (size_t s = 0; s < 3; s++) {
                int64_t spike_end, t, old_t;
                t = run_beats(lifetimes[l], intervals[i], slows[s], nslows[s], 0, &spike_end);
                /* never late, except by the one keepalive in flight at the due time */
                if (t > due && t != spike_end)
                    fail_msg("lifetime %lld, heartbeat %lld, keepalives %zu: refreshed %lld ms "
                             "late",
                             (long long)lifetimes[l], (long long)intervals[i], s,
                             (long long)(t - due));
                /* and not needlessly early: within one heartbeat + keepalive of the due time */
                if (t < due - intervals[i] - 29000 && t != received + 7)
                    fail_msg("lifetime %lld, heartbeat %lld: refreshed %lld ms early",
                             (long long)lifetimes[l], (long long)intervals[i],
                             (long long)(due - t));
                old_t = run_beats(lifetimes[l], intervals[i], slows[s], nslows[s], 1, &spike_end);
                if (old_t > due)
                    old_late++;
            }
        }
    }
    /* the model can see lateness: the rule before the fix was late in some of these */
    assert_true(old_late > 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refresh_decision),
        cmocka_unit_test(refresh_due_matches_decision),
        cmocka_unit_test(refresh_decision_looks_ahead),
        cmocka_unit_test(fake_clock_refresh_never_late),
        cmocka_unit_test(backoff_grows_is_capped_and_jittered),
        cmocka_unit_test(times_print_in_utc),
    };
    return UNIT_RUN("deploy_policy", tests, NULL, NULL);
}
