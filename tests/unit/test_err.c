/* test_err.c - the error convention: codes, messages, context prefixes, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "err.h"

static void set_fills_code_and_message(void **state)
{
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(err_set(&e, ERR_IO, "cannot open %s: %s", "a.yaml", "denied"), ERR_IO);
    assert_int_equal(e.code, ERR_IO);
    assert_string_equal(e.msg, "cannot open a.yaml: denied");
}

static void set_with_null_only_returns(void **state)
{
    (void)state;
    assert_int_equal(err_set(NULL, ERR_PARSE, "x"), ERR_PARSE);
}

static void prefix_reads_outside_in(void **state)
{
    struct err e = ERR_INIT;
    (void)state;
    err_set(&e, ERR_PARSE, "line 3, column 1: bad value");
    assert_int_equal(err_prefix(&e, "loading %s", "config.yaml"), ERR_PARSE);
    assert_string_equal(e.msg, "loading config.yaml: line 3, column 1: bad value");
}

static void prefix_without_error_is_internal(void **state)
{
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(err_prefix(&e, "ctx"), ERR_INTERNAL);
    assert_int_equal(err_prefix(NULL, "ctx"), ERR_INTERNAL);
}

static void long_messages_are_truncated_and_terminated(void **state)
{
    struct err e = ERR_INIT;
    char big[ERR_MSG_MAX * 2];
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    err_set(&e, ERR_INVALID, "%s", big);
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
    err_prefix(&e, "ctx");
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
    assert_memory_equal(e.msg, "ctx: x", 6);
}

static void clear_resets(void **state)
{
    struct err e = ERR_INIT;
    (void)state;
    err_set(&e, ERR_IO, "boom");
    err_clear(&e);
    assert_int_equal(e.code, 0);
    assert_string_equal(e.msg, "");
}

static void every_code_has_a_name(void **state)
{
    (void)state;
    for (int c = ERR_INTERNAL; c <= ERR_OK; c++)
        assert_string_not_equal(err_code_name(c), "unknown");
    assert_string_equal(err_code_name(-1000), "unknown");
    assert_string_equal(err_code_name(ERR_NO_SPACE), "no space");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_fills_code_and_message),
        cmocka_unit_test(set_with_null_only_returns),
        cmocka_unit_test(prefix_reads_outside_in),
        cmocka_unit_test(prefix_without_error_is_internal),
        cmocka_unit_test(long_messages_are_truncated_and_terminated),
        cmocka_unit_test(clear_resets),
        cmocka_unit_test(every_code_has_a_name),
    };
    return UNIT_RUN("err", tests, NULL, NULL);
}
