/*
 * test_shot_cache.c - the screenshot cache of the API (service/api/shot_cache.c): expiry,
 * the entry and byte bounds (oldest evicted), invalidation by helper pid and by the live
 * helper list, and the single flight (a second caller waits for the capture in flight).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "plat.h"
#include "shot_cache.h"

static struct shc *cache_new(size_t entries, size_t bytes)
{
    struct shc *c = NULL;
    struct err e = ERR_INIT;
    assert_int_equal(shc_create(&c, entries, bytes, &e), 0);
    assert_non_null(c);
    return c;
}

static struct shc_key key(uint32_t sid, unsigned long pid, int width)
{
    struct shc_key k = {sid, pid, width};
    return k;
}

/* Claims k (must be a miss) and stores n bytes of value v at time t. */
static void store(struct shc *c, struct shc_key k, uint64_t t, size_t n, unsigned char v)
{
    unsigned char *png = NULL, buf[4096];
    size_t size = 0;
    assert_true(n <= sizeof(buf));
    assert_int_equal(shc_get(c, &k, t, 1000, 0, &png, &size), SHC_CLAIM);
    memset(buf, v, n);
    shc_put(c, &k, t, buf, n);
}

/* 1 when k is a hit at time t with max age 1000 ms (a miss's claim is abandoned). */
static int hit(struct shc *c, struct shc_key k, uint64_t t, unsigned char *first)
{
    unsigned char *png = NULL;
    size_t size = 0;
    int rc = shc_get(c, &k, t, 1000, 0, &png, &size);
    if (rc == SHC_CLAIM) {
        shc_abandon(c, &k);
        return 0;
    }
    assert_int_equal(rc, SHC_HIT);
    if (first)
        *first = size ? png[0] : 0;
    free(png);
    return 1;
}

static void fresh_entry_is_served_until_it_expires(void **state)
{
    struct shc *c = cache_new(4, 1 << 20);
    unsigned char v = 0;
    (void)state;
    assert_int_equal(hit(c, key(1, 100, 300), 5000, NULL), 0);
    store(c, key(1, 100, 300), 5000, 10, 7);
    assert_int_equal(hit(c, key(1, 100, 300), 5000, &v), 1);
    assert_int_equal(v, 7);
    assert_int_equal(hit(c, key(1, 100, 300), 5999, NULL), 1);
    assert_int_equal(hit(c, key(1, 100, 300), 6000, NULL), 0);
    /* another width is another entry */
    assert_int_equal(hit(c, key(1, 100, 1000), 5001, NULL), 0);
    shc_free(c);
}

static void entry_bound_evicts_the_oldest(void **state)
{
    struct shc *c = cache_new(3, 1 << 20);
    size_t n, bytes;
    (void)state;
    store(c, key(1, 100, 300), 100, 10, 1);
    store(c, key(2, 200, 300), 50, 10, 2); /* the oldest */
    store(c, key(3, 300, 300), 200, 10, 3);
    store(c, key(4, 400, 300), 300, 10, 4);
    shc_stats(c, &n, &bytes);
    assert_int_equal(n, 3);
    assert_int_equal(bytes, 30);
    assert_int_equal(hit(c, key(2, 200, 300), 300, NULL), 0);
    assert_int_equal(hit(c, key(1, 100, 300), 300, NULL), 1);
    assert_int_equal(hit(c, key(4, 400, 300), 300, NULL), 1);
    shc_free(c);
}

static void byte_bound_evicts_and_refuses_huge(void **state)
{
    struct shc *c = cache_new(8, 1000);
    size_t n, bytes;
    (void)state;
    store(c, key(1, 100, 300), 100, 400, 1);
    store(c, key(2, 200, 300), 200, 400, 2);
    store(c, key(3, 300, 300), 300, 400, 3); /* 1200 > 1000: the oldest goes */
    shc_stats(c, &n, &bytes);
    assert_int_equal(n, 2);
    assert_int_equal(bytes, 800);
    assert_int_equal(hit(c, key(1, 100, 300), 300, NULL), 0);
    store(c, key(4, 400, 300), 300, 2000, 4); /* larger than the bound: not kept */
    shc_stats(c, &n, &bytes);
    assert_int_equal(n, 2);
    assert_int_equal(hit(c, key(4, 400, 300), 300, NULL), 0);
    /* a replaced entry's bytes are counted once */
    store(c, key(2, 200, 300), 1500, 100, 5);
    shc_stats(c, &n, &bytes);
    assert_int_equal(bytes, 500);
    shc_free(c);
}

static void replaced_or_gone_helper_drops_entries(void **state)
{
    struct shc *c = cache_new(8, 1 << 20);
    uint32_t sids[] = {2};
    unsigned long pids[] = {200};
    size_t n, bytes;
    (void)state;
    store(c, key(1, 100, 300), 100, 10, 1);
    store(c, key(1, 100, 1000), 100, 10, 1);
    /* session 1's helper restarted (pid 101): both widths are dropped on the next lookup */
    assert_int_equal(hit(c, key(1, 101, 300), 100, NULL), 0);
    shc_stats(c, &n, &bytes);
    assert_int_equal(n, 0);
    store(c, key(1, 101, 300), 100, 10, 1);
    store(c, key(2, 200, 300), 100, 10, 2);
    shc_retain(c, sids, pids, 1); /* session 1's helper is gone */
    shc_stats(c, &n, &bytes);
    assert_int_equal(n, 1);
    assert_int_equal(hit(c, key(2, 200, 300), 100, NULL), 1);
    shc_retain(c, NULL, NULL, 0);
    shc_stats(c, &n, &bytes);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
    shc_free(c);
}

struct waiter {
    struct shc *c;
    struct shc_key k;
    int rc;
    unsigned char first;
};

static void waiter_main(void *arg)
{
    struct waiter *w = arg;
    unsigned char *png = NULL;
    size_t size = 0;
    w->rc = shc_get(w->c, &w->k, plat_monotonic_ms(), 60000, 30000, &png, &size);
    if (png && size)
        w->first = png[0];
    if (w->rc == SHC_CLAIM)
        shc_abandon(w->c, &w->k);
    free(png);
}

static void second_caller_waits_for_the_capture(void **state)
{
    struct shc *c = cache_new(4, 1 << 20);
    struct waiter w = {0};
    struct plat_thread *t = NULL;
    struct shc_key k = key(1, 100, 300);
    unsigned char *png = NULL, img[3] = {9, 9, 9};
    size_t size = 0;
    (void)state;
    assert_int_equal(shc_get(c, &k, plat_monotonic_ms(), 60000, 0, &png, &size), SHC_CLAIM);
    w.c = c;
    w.k = k;
    assert_int_equal(plat_thread_start(&t, waiter_main, &w, NULL), 0);
    plat_sleep_ms(200); /* the waiter is (most likely) waiting now; either way it must hit */
    shc_put(c, &k, plat_monotonic_ms(), img, sizeof(img));
    plat_thread_join(t);
    assert_int_equal(w.rc, SHC_HIT);
    assert_int_equal(w.first, 9);
    /* a claim held by someone else times out for a caller with a short wait */
    assert_int_equal(shc_get(c, &(struct shc_key){2, 200, 300}, 0, 60000, 0, &png, &size),
                     SHC_CLAIM);
    assert_int_equal(shc_get(c, &(struct shc_key){2, 200, 300}, 0, 60000, 50, &png, &size),
                     ERR_TIMEOUT);
    /* an abandoned claim: the next caller claims */
    shc_abandon(c, &(struct shc_key){2, 200, 300});
    assert_int_equal(shc_get(c, &(struct shc_key){2, 200, 300}, 0, 60000, 50, &png, &size),
                     SHC_CLAIM);
    shc_abandon(c, &(struct shc_key){2, 200, 300});
    shc_free(c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fresh_entry_is_served_until_it_expires),
        cmocka_unit_test(entry_bound_evicts_the_oldest),
        cmocka_unit_test(byte_bound_evicts_and_refuses_huge),
        cmocka_unit_test(replaced_or_gone_helper_drops_entries),
        cmocka_unit_test(second_caller_waits_for_the_capture),
    };
    return UNIT_RUN("shot_cache", tests, NULL, NULL);
}
