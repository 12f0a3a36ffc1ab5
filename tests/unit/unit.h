/*
 * unit.h - the entry point every cmocka test program shares.
 *
 *     prog            run every test of the group
 *     prog NAME       run the one test NAME (ctest registers each case this way, see
 *                     tests/unit/CMakeLists.txt); an unknown NAME is an error, not a pass
 *     prog --list     print the test names, one per line
 *
 * A test that cannot run on this platform calls UNIT_SKIP("reason"): the reason is printed,
 * and a single-test run exits with UNIT_SKIP_CODE so ctest reports it as skipped rather than
 * passed. Include after <cmocka.h>.
 */
#ifndef KASM_TEST_UNIT_H
#define KASM_TEST_UNIT_H

#include <stdio.h>
#include <string.h>

#define UNIT_SKIP_CODE 77

static int unit_skipped;

#define UNIT_SKIP(reason)                                                                          \
    do {                                                                                           \
        print_message("skipped: %s\n", (reason));                                                  \
        unit_skipped = 1;                                                                          \
        skip();                                                                                    \
    } while (0)

static inline int unit_run(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
                           size_t count, CMFixtureFunction setup, CMFixtureFunction teardown)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < count; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc == 2) {
        size_t i;
        for (i = 0; i < count; i++)
            if (strcmp(tests[i].name, argv[1]) == 0)
                break;
        if (i == count) {
            fprintf(stderr, "%s: no test named '%s' (see --list)\n", argv[0], argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
        int failed = _cmocka_run_group_tests(group, tests, count, setup, teardown);
        if (failed == 0 && unit_skipped)
            return UNIT_SKIP_CODE;
        return failed;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--list | TEST_NAME]\n", argv[0]);
        return 2;
    }
    return _cmocka_run_group_tests(group, tests, count, setup, teardown);
}

#define UNIT_RUN(group, tests, setup, teardown)                                                    \
    unit_run(argc, argv, (group), (tests), sizeof(tests) / sizeof((tests)[0]), (setup), (teardown))

#endif
