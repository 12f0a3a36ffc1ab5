/* test_timefmt.c - durations in words: each unit's boundary, negative values, small buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "timefmt.h"

static const char *dur(int64_t secs)
{
    static char buf[64];
    tfmt_duration(secs, buf, sizeof(buf));
    return buf;
}

static void units_and_boundaries(void **state)
{
    (void)state;
    assert_string_equal(dur(0), "0 s");
    assert_string_equal(dur(59), "59 s");
    assert_string_equal(dur(60), "1 min 0 s");
    assert_string_equal(dur(3599), "59 min 59 s");
    assert_string_equal(dur(3600), "1 h 0 min");
    assert_string_equal(dur(86399), "23 h 59 min");
    assert_string_equal(dur(86400), "1 d 0 h");
    assert_string_equal(dur(2307149816LL), "26703 d 2 h");
}

static void negative_is_its_length(void **state)
{
    (void)state;
    assert_string_equal(dur(-150), "2 min 30 s");
    assert_string_equal(dur(INT64_MIN + 1), dur(INT64_MAX));
}

static void small_buffers_are_terminated(void **state)
{
    char buf[4] = "xxx";
    (void)state;
    tfmt_duration(3600, buf, sizeof(buf));
    assert_string_equal(buf, "1 h");
    tfmt_duration(5, buf, 0); /* nothing written */
    assert_string_equal(buf, "1 h");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(units_and_boundaries),
        cmocka_unit_test(negative_is_its_length),
        cmocka_unit_test(small_buffers_are_terminated),
    };
    return UNIT_RUN("timefmt", tests, NULL, NULL);
}
