/*
 * test_deploy_logship.c - the log shipper's core (service/deploy/logship.c) with a fake sender
 * and a fake clock: batching by count and age, the bounded queue with drop-oldest and the
 * drop notice, retries with backoff on failures, refused batches dropped without a retry, the
 * level filter and the records of the shipper's own module kept out.
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

#include "logship.h"

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

struct fake {
    enum dls_verdict verdict; /* what the next sends answer */
    int calls;
    char last[65536];
    int last_count; /* records in the last batch */
};

static enum dls_verdict fake_send(void *ctx, const char *json, struct err *e)
{
    struct fake *f = ctx;
    cJSON *arr = cJSON_Parse(json);
    f->calls++;
    snprintf(f->last, sizeof(f->last), "%s", json);
    assert_non_null(arr);
    assert_true(cJSON_IsArray(arr));
    f->last_count = cJSON_GetArraySize(arr);
    cJSON_Delete(arr);
    if (f->verdict != DLS_SENT)
        err_set(e, ERR_NETWORK, "fake failure");
    return f->verdict;
}

static struct dls *make(struct fake *f, size_t cap, int level)
{
    struct dls_options o;
    struct dls *s = NULL;
    struct err e = ERR_INIT;
    memset(&o, 0, sizeof(o));
    memset(f, 0, sizeof(*f));
    o.capacity = cap;
    o.min_level = level;
    o.host = "testhost";
    o.now_ms = fake_clock;
    fake_now = 1000000;
    assert_int_equal(dls_create(&s, &o, fake_send, f, &e), 0);
    return s;
}

static void emit(struct dls *s, enum log_level level, const char *module, const char *msg)
{
    struct log_record r;
    memset(&r, 0, sizeof(r));
    r.time = 1700000000; /* 2023-11-14T22:13:20Z */
    r.level = level;
    r.module = module;
    r.message = msg;
    dls_hook(&r, s);
}

static void emit_n(struct dls *s, int n)
{
    char msg[64];
    for (int i = 0; i < n; i++) {
        snprintf(msg, sizeof(msg), "record %d", i);
        emit(s, LOG_LEVEL_INFO, "test", msg);
    }
}

static void batch_by_count(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    cJSON *arr, *r0;
    struct dls_stats st;
    (void)state;

    emit_n(s, 5); /* 5 is not more than 5: waits for the age */
    assert_int_not_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 0);
    emit_n(s, 1);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.last_count, 6);

    arr = cJSON_Parse(f.last);
    r0 = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetObjectItem(r0, "levelname")->valuestring, "INFO");
    assert_string_equal(cJSON_GetObjectItem(r0, "message")->valuestring, "record 0");
    assert_string_equal(cJSON_GetObjectItem(r0, "host")->valuestring, "testhost");
    assert_string_equal(cJSON_GetObjectItem(r0, "application")->valuestring, "kasm_agent");
    assert_string_equal(cJSON_GetObjectItem(r0, "name")->valuestring, "test");
    assert_string_equal(cJSON_GetObjectItem(r0, "ingest_date")->valuestring,
                        "2023-11-14T22:13:20Z");
    cJSON_Delete(arr);

    dls_stats(s, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.sent, 6);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.enabled, 1);
    /* nothing waits: nothing is sent */
    assert_int_not_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 1);
    dls_destroy(s);
}

static void batch_by_age(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    uint32_t wait;
    (void)state;

    emit_n(s, 2);
    wait = dls_pump(s, 0);
    assert_int_equal(wait, DLS_FLUSH_AGE_MS);
    fake_now += DLS_FLUSH_AGE_MS - 1;
    assert_int_equal(dls_pump(s, 0), 1);
    assert_int_equal(f.calls, 0);
    fake_now += 1;
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.last_count, 2);
    dls_destroy(s);
}

static void bounded_queue_drops_oldest(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 10, LOG_LEVEL_INFO);
    struct dls_stats st;
    cJSON *arr;
    (void)state;

    f.verdict = DLS_RETRY;
    emit_n(s, 25); /* records 15..24 are kept */
    dls_stats(s, &st);
    assert_int_equal(st.queued, 10);
    assert_int_equal(st.dropped, 15);

    f.verdict = DLS_SENT;
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.last_count, 11); /* the notice and 10 records */
    arr = cJSON_Parse(f.last);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "message")->valuestring,
                        "15 log records were dropped");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "levelname")->valuestring,
                        "WARNING");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "message")->valuestring,
                        "record 15");
    cJSON_Delete(arr);

    /* reported once */
    emit_n(s, 6);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.last_count, 6);
    assert_null(strstr(f.last, "were dropped"));
    dls_stats(s, &st);
    assert_int_equal(st.dropped, 15);
    assert_int_equal(st.sent, 16);
    dls_destroy(s);
}

static void retry_with_backoff(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    struct dls_stats st;
    uint32_t wait, prev = 0;
    (void)state;

    f.verdict = DLS_RETRY;
    emit_n(s, 6);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 1);
    /* backoff: no new attempt before it is over, waits grow up to the cap */
    for (int i = 0; i < 12; i++) {
        wait = dls_pump(s, 0);
        assert_int_not_equal(wait, 0);
        assert_true(wait <= DLS_RETRY_CAP_MS);
        assert_int_equal(f.calls, i + 1);
        if (i < 5)
            assert_true(wait * 2 >= prev); /* jitter halves at most */
        prev = wait;
        fake_now += wait;
        assert_int_equal(dls_pump(s, 0), 0);
        assert_int_equal(f.calls, i + 2);
    }
    dls_stats(s, &st);
    assert_int_equal(st.failures, 13);
    assert_int_equal(st.queued, 6);
    assert_string_equal(st.last_error, "fake failure");

    /* recovery: the same records go out */
    f.verdict = DLS_SENT;
    fake_now += DLS_RETRY_CAP_MS;
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.last_count, 6);
    assert_non_null(strstr(f.last, "record 0"));
    dls_stats(s, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.sent, 6);
    assert_string_equal(st.last_error, "");
    dls_destroy(s);
}

static void refused_not_retried(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    struct dls_stats st;
    cJSON *arr;
    (void)state;

    f.verdict = DLS_REFUSED;
    emit_n(s, 6);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 1);
    /* dropped: no second attempt, however long we wait */
    fake_now += 10 * DLS_FLUSH_AGE_MS;
    assert_int_not_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 1);
    dls_stats(s, &st);
    assert_int_equal(st.refused, 6);
    assert_int_equal(st.queued, 0);

    /* the next batch says so */
    f.verdict = DLS_SENT;
    emit_n(s, 6);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.last_count, 7);
    arr = cJSON_Parse(f.last);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "message")->valuestring,
                        "6 log records were dropped");
    cJSON_Delete(arr);
    dls_destroy(s);
}

static void not_ready_waits(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    struct dls_stats st;
    (void)state;

    f.verdict = DLS_NOT_READY;
    emit_n(s, 6);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(dls_pump(s, 0), DLS_NOT_READY_MS);
    dls_stats(s, &st);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.queued, 6);
    f.verdict = DLS_SENT;
    fake_now += DLS_NOT_READY_MS;
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.calls, 2);
    dls_destroy(s);
}

static void level_and_module_filter(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_WARNING);
    struct dls_stats st;
    (void)state;

    emit(s, LOG_LEVEL_INFO, "test", "info is below");
    emit(s, LOG_LEVEL_DEBUG, "test", "debug is below");
    emit(s, LOG_LEVEL_ERROR, "logship", "the shipper's own record");
    emit(s, LOG_LEVEL_WARNING, "test", "a warning");
    emit(s, LOG_LEVEL_ERROR, "test", "an error");
    dls_stats(s, &st);
    assert_int_equal(st.queued, 2);
    assert_int_equal(dls_pump(s, 1), 0); /* force: whatever waits */
    assert_int_equal(f.last_count, 2);
    assert_non_null(strstr(f.last, "a warning"));
    assert_null(strstr(f.last, "below"));
    assert_null(strstr(f.last, "own record"));
    dls_destroy(s);
}

static void batch_size_capped(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    struct dls_stats st;
    (void)state;

    emit_n(s, 250);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.last_count, DLS_BATCH_MAX);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(dls_pump(s, 0), 0);
    assert_int_equal(f.last_count, 50);
    dls_stats(s, &st);
    assert_int_equal(st.sent, 250);
    assert_int_equal(st.batches, 3);
    dls_destroy(s);
}

/* Through the real logger: what the hook queues is already redacted. */
static void records_are_redacted(void **state)
{
    struct fake f;
    struct dls *s = make(&f, 0, LOG_LEVEL_INFO);
    (void)state;

    log_set_hook(dls_hook, s);
    log_write(LOG_LEVEL_INFO, "test", "token=%s password: hunter2",
              "eyJhbGciOiJSUzI1NiJ9.eyJzZXJ2ZXJfaWQiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl");
    log_write(LOG_LEVEL_INFO, "logship", "the shipper's own line");
    log_set_hook(NULL, NULL);
    assert_int_equal(dls_pump(s, 1), 0);
    assert_int_equal(f.last_count, 1);
    assert_non_null(strstr(f.last, LOG_REDACTED));
    assert_null(strstr(f.last, "eyJ"));
    assert_null(strstr(f.last, "hunter2"));
    dls_destroy(s);
}

static void parse_level(void **state)
{
    (void)state;
    assert_int_equal(dls_parse_level("off"), DLS_LEVEL_OFF);
    assert_int_equal(dls_parse_level(""), LOG_LEVEL_INFO);
    assert_int_equal(dls_parse_level("info"), LOG_LEVEL_INFO);
    assert_int_equal(dls_parse_level("WARNING"), LOG_LEVEL_WARNING);
    assert_int_equal(dls_parse_level("debug"), LOG_LEVEL_DEBUG);
    assert_true(dls_parse_level("loud") < 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_by_count),
        cmocka_unit_test(batch_by_age),
        cmocka_unit_test(bounded_queue_drops_oldest),
        cmocka_unit_test(retry_with_backoff),
        cmocka_unit_test(refused_not_retried),
        cmocka_unit_test(not_ready_waits),
        cmocka_unit_test(level_and_module_filter),
        cmocka_unit_test(batch_size_capped),
        cmocka_unit_test(records_are_redacted),
        cmocka_unit_test(parse_level),
    };
    return UNIT_RUN("deploy_logship", tests, NULL, NULL);
}
