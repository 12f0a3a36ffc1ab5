/*
 * test_upload.c - service/transfer/upload.c: the Dropzone chunk engine on a real folder
 * (happy path, retries, offsets, exists, size mismatch, abort, expiry, hostile names,
 * same-dzuuid serialisation, the in-flight cap, no-space mapping by injection and, on
 * Linux as root, on a real 1 MiB tmpfs) and the request adapter over a multipart body.
 * Runs natively and under Wine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "plat.h"
#include "testdir.h"
#include "upload.h"

static char g_parent[1024]; /* scratch dir: holds root/ and nothing else */
static char g_root[1024];   /* the upload folder */
static int64_t g_now = 1000000;
static int g_inject; /* 0: none, ERR_NO_SPACE or ERR_IO: fail every write */

static int64_t fake_clock(void)
{
    return g_now;
}

static int faulty_write(struct plat_file *f, const void *buf, size_t len, struct err *e)
{
    if (g_inject)
        return err_set(e, g_inject, "injected failure");
    return plat_file_write_all(f, buf, len, e);
}

static struct upl_registry *new_reg(unsigned max_in_flight, uint32_t busy_wait_ms)
{
    struct upl_config cfg;
    struct upl_registry *r = NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_in_flight = max_in_flight;
    cfg.busy_wait_ms = busy_wait_ms;
    cfg.stale_seconds = 3600;
    cfg.clock = fake_clock;
    cfg.write_fn = faulty_write;
    assert_int_equal(upl_registry_create(&cfg, &r, NULL), 0);
    return r;
}

static int setup(void **state)
{
    (void)state;
    g_inject = 0;
    if (td_make("upl", g_parent, sizeof(g_parent)) < 0 ||
        fs_join(g_parent, "root", g_root, sizeof(g_root), NULL) < 0 ||
        plat_dir_create(g_root, NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_remove_tree(g_parent);
    return 0;
}

static void fields(struct upl_fields *f, const char *uuid, uint64_t index, uint64_t count,
                   uint64_t offset, uint64_t total, uint64_t size)
{
    char v[32];
    static const char *const names[] = {"dzchunkindex", "dztotalchunkcount", "dzchunkbyteoffset",
                                        "dztotalfilesize", "dzchunksize"};
    uint64_t vals[5];
    vals[0] = index;
    vals[1] = count;
    vals[2] = offset;
    vals[3] = total;
    vals[4] = size;
    upl_fields_init(f);
    assert_int_equal(upl_fields_set(f, "dzuuid", uuid, strlen(uuid), NULL), 1);
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)vals[i]);
        assert_int_equal(upl_fields_set(f, names[i], v, strlen(v), NULL), 1);
    }
}

/* Sends one whole chunk; returns the HTTP status, the message in msg (may be NULL). */
static int send_chunk(struct upl_registry *r, const char *uuid, const char *name, uint64_t index,
                      uint64_t count, uint64_t offset, uint64_t total, uint64_t size,
                      const char *data, size_t len, char *msg)
{
    struct upl_fields f;
    struct upl_chunk *c = NULL;
    struct upl_result res;
    fields(&f, uuid, index, count, offset, total, size);
    memset(&res, 0, sizeof(res));
    if (upl_chunk_begin(r, g_root, &f, name, &c, &res) == 0) {
        assert_non_null(c);
        /* in two pieces, to exercise streaming */
        upl_chunk_write(c, data, len / 2, &res);
        upl_chunk_write(c, data + len / 2, len - len / 2, &res);
        upl_chunk_end(c, &res);
    } else {
        assert_null(c);
    }
    if (msg)
        strcpy(msg, res.message);
    return res.status;
}

static char *read_in_root(const char *name, size_t *len)
{
    char path[2048];
    char *data = NULL;
    if (fs_join(g_root, name, path, sizeof(path), NULL) < 0 ||
        fs_read_all(path, 1 << 24, &data, len, NULL) < 0)
        return NULL;
    return data;
}

static int exists_in_root(const char *name)
{
    char path[2048];
    struct plat_file_info info;
    assert_int_equal(fs_join(g_root, name, path, sizeof(path), NULL), 0);
    return plat_path_stat(path, &info, NULL) == 0;
}

static const char *k10 = "0123456789";

static void test_happy_path_three_chunks(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    size_t len = 0;
    char *got;
    (void)state;
    assert_int_equal(send_chunk(r, "u-1", "report.txt", 0, 3, 0, 25, 10, k10, 10, msg), 200);
    assert_string_equal(msg, "uploaded Chunk");
    assert_false(exists_in_root("report.txt"));
    assert_true(exists_in_root(".kasm-upload-u-1.part"));
    assert_int_equal(send_chunk(r, "u-1", "report.txt", 1, 3, 10, 25, 10, "abcdefghij", 10, msg),
                     200);
    assert_int_equal(send_chunk(r, "u-1", "report.txt", 2, 3, 20, 25, 10, "KLMNO", 5, msg), 200);
    assert_string_equal(msg, "uploaded Chunk");
    got = read_in_root("report.txt", &len);
    assert_non_null(got);
    assert_int_equal(len, 25);
    assert_memory_equal(got, "0123456789abcdefghijKLMNO", 25);
    free(got);
    /* the temp file was hidden; the finished file must not be */
    {
        char path[2048];
        struct plat_file_info info;
        assert_int_equal(fs_join(g_root, "report.txt", path, sizeof(path), NULL), 0);
        assert_int_equal(plat_path_stat(path, &info, NULL), 0);
        assert_int_equal(info.is_hidden, 0);
    }
    assert_false(exists_in_root(".kasm-upload-u-1.part"));
    assert_int_equal(td_count(g_root), 1);
    upl_registry_free(r);
}

static void test_retried_chunk_is_idempotent(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    size_t len = 0;
    char *got;
    (void)state;
    assert_int_equal(send_chunk(r, "u2", "a.bin", 0, 2, 0, 15, 10, k10, 10, msg), 200);
    /* the client did not see the answer and sends chunk 0 again (other bytes: not compared) */
    assert_int_equal(send_chunk(r, "u2", "a.bin", 0, 2, 0, 15, 10, "XXXXXXXXXX", 10, msg), 200);
    assert_string_equal(msg, "uploaded Chunk");
    assert_int_equal(send_chunk(r, "u2", "a.bin", 1, 2, 10, 15, 10, "abcde", 5, msg), 200);
    /* the last chunk retried after completion: still 200, file unchanged */
    assert_int_equal(send_chunk(r, "u2", "a.bin", 1, 2, 10, 15, 10, "zzzzz", 5, msg), 200);
    got = read_in_root("a.bin", &len);
    assert_non_null(got);
    assert_int_equal(len, 15);
    assert_memory_equal(got, "0123456789abcde", 15);
    free(got);
    assert_int_equal(td_count(g_root), 1);
    upl_registry_free(r);
}

static void test_wrong_offset_and_unknown_upload(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    (void)state;
    assert_int_equal(send_chunk(r, "u3", "b.bin", 0, 3, 0, 30, 10, k10, 10, msg), 200);
    /* skipping chunk 1 */
    assert_int_equal(send_chunk(r, "u3", "b.bin", 2, 3, 20, 30, 10, k10, 10, msg), 400);
    assert_string_equal(msg, "Chunk offset 20 does not match the 10 bytes received");
    /* overlapping what is stored without lying inside it: not a retry */
    assert_int_equal(send_chunk(r, "u3", "b.bin", 1, 3, 5, 30, 10, k10, 10, msg), 400);
    assert_string_equal(msg, "Chunk offset 5 does not match the 10 bytes received");
    /* a chunk 0 claiming an offset */
    assert_int_equal(send_chunk(r, "u4", "c.bin", 0, 3, 5, 30, 10, k10, 10, msg), 400);
    assert_non_null(strstr(msg, "does not match the 0 bytes"));
    /* a later chunk of an upload never started */
    assert_int_equal(send_chunk(r, "nope", "d.bin", 1, 3, 10, 30, 10, k10, 10, msg), 400);
    assert_non_null(strstr(msg, "Unknown upload"));
    /* totals changed mid-way */
    assert_int_equal(send_chunk(r, "u3", "b.bin", 1, 3, 10, 31, 10, k10, 10, msg), 400);
    assert_non_null(strstr(msg, "changed"));
    /* the same dzuuid for another file */
    assert_int_equal(send_chunk(r, "u3", "other.bin", 1, 3, 10, 30, 10, k10, 10, msg), 400);
    assert_non_null(strstr(msg, "another file"));
    /* the right chunk still works after all that */
    assert_int_equal(send_chunk(r, "u3", "b.bin", 1, 3, 10, 30, 10, k10, 10, msg), 200);
    upl_registry_free(r);
    assert_int_equal(td_count(g_root), 0); /* the registry removed its unfinished temp file */
}

static void test_exists_at_chunk_zero(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX], path[2048];
    size_t len = 0;
    char *got;
    (void)state;
    assert_int_equal(fs_join(g_root, "taken.txt", path, sizeof(path), NULL), 0);
    assert_int_equal(td_write(path, "original"), 0);
    assert_int_equal(send_chunk(r, "u5", "taken.txt", 0, 1, 0, 3, 10, "new", 3, msg), 400);
    assert_string_equal(msg, "File already exists");
    assert_int_equal(td_count(g_root), 1);
    /* the final name appears while the upload runs: refused at the rename, temp removed */
    assert_int_equal(send_chunk(r, "u6", "late.txt", 0, 2, 0, 13, 10, k10, 10, msg), 200);
    assert_int_equal(fs_join(g_root, "late.txt", path, sizeof(path), NULL), 0);
    assert_int_equal(td_write(path, "someone else"), 0);
    assert_int_equal(send_chunk(r, "u6", "late.txt", 1, 2, 10, 13, 10, "abc", 3, msg), 400);
    assert_string_equal(msg, "File already exists");
    got = read_in_root("late.txt", &len);
    assert_non_null(got);
    assert_int_equal(len, 12);
    free(got);
    assert_int_equal(td_count(g_root), 2); /* taken.txt, late.txt; no temp */
    upl_registry_free(r);
}

static void test_size_mismatch_deletes_partial(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    (void)state;
    /* last chunk shorter than announced */
    assert_int_equal(send_chunk(r, "u7", "short.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_int_equal(send_chunk(r, "u7", "short.bin", 1, 2, 10, 20, 10, "abc", 3, msg), 500);
    assert_string_equal(msg, "Size mismatch");
    assert_int_equal(td_count(g_root), 0);
    /* more bytes than dztotalfilesize: refused before they reach the disk */
    assert_int_equal(send_chunk(r, "u8", "long.bin", 0, 1, 0, 5, 10, k10, 10, msg), 500);
    assert_string_equal(msg, "Size mismatch");
    assert_int_equal(td_count(g_root), 0);
    /* and the upload is gone: its next chunk is unknown */
    assert_int_equal(send_chunk(r, "u7", "short.bin", 1, 2, 10, 20, 10, k10, 10, msg), 400);
    assert_int_equal(upl_registry_count(r), 0);
    upl_registry_free(r);
}

static void test_abort_truncates_to_acknowledged(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    struct upl_fields f;
    struct upl_chunk *c = NULL;
    struct upl_result res;
    char msg[ERR_MSG_MAX];
    struct plat_file_info info;
    char temp[2048];
    size_t len = 0;
    char *got;
    (void)state;
    assert_int_equal(send_chunk(r, "u9", "ab.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    fields(&f, "u9", 1, 2, 10, 20, 10);
    assert_int_equal(upl_chunk_begin(r, g_root, &f, "ab.bin", &c, &res), 0);
    assert_int_equal(upl_chunk_write(c, "xyz", 3, &res), 0);
    upl_chunk_abort(c); /* the client went away after 3 bytes */
    assert_int_equal(fs_join(g_root, ".kasm-upload-u9.part", temp, sizeof(temp), NULL), 0);
    assert_int_equal(plat_path_stat(temp, &info, NULL), 0);
    assert_true(info.size == 10);
    /* the client resends chunk 1 in full */
    assert_int_equal(send_chunk(r, "u9", "ab.bin", 1, 2, 10, 20, 10, "abcdefghij", 10, msg), 200);
    got = read_in_root("ab.bin", &len);
    assert_non_null(got);
    assert_int_equal(len, 20);
    assert_memory_equal(got, "0123456789abcdefghij", 20);
    free(got);
    upl_registry_free(r);
}

static void test_expiry_and_abandoned_same_name(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    struct upl_fields f;
    struct upl_chunk *c = NULL;
    struct upl_result res;
    char msg[ERR_MSG_MAX];
    (void)state;
    assert_int_equal(send_chunk(r, "old", "x.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_true(exists_in_root(".kasm-upload-old.part"));
    g_now += 3599;
    assert_int_equal(upl_registry_expire(r, g_now), 0);
    g_now += 1;
    assert_int_equal(upl_registry_expire(r, g_now), 1);
    assert_int_equal(td_count(g_root), 0);
    assert_int_equal(upl_registry_count(r), 0);
    /* abandoned mid-chunk: a new chunk 0 of the same name cleans it up */
    assert_int_equal(send_chunk(r, "gone", "y.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    fields(&f, "gone", 1, 2, 10, 20, 10);
    assert_int_equal(upl_chunk_begin(r, g_root, &f, "y.bin", &c, &res), 0);
    upl_chunk_abort(c);
    assert_int_equal(send_chunk(r, "new", "y.bin", 0, 1, 0, 4, 10, "data", 4, msg), 200);
    assert_false(exists_in_root(".kasm-upload-gone.part"));
    assert_true(exists_in_root("y.bin"));
    assert_int_equal(td_count(g_root), 1);
    /* a live (not aborted, not stale) upload of the same name is left alone */
    assert_int_equal(send_chunk(r, "live", "z.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_int_equal(send_chunk(r, "other", "z.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_true(exists_in_root(".kasm-upload-live.part"));
    assert_true(exists_in_root(".kasm-upload-other.part"));
    upl_registry_free(r);
    assert_int_equal(td_count(g_root), 1);
}

static void test_hostile_names_write_nothing_outside(void **state)
{
    static const char *const names[] = {
        "../escape.txt",
        "..",
        ".",
        "",
        "a/b.txt",
        "a\\b.txt",
        "C:evil.txt",
        "con.txt",
        "NUL",
        "trail.",
        "trail ",
        " lead",
        "x:stream",
        "a*b",
        "q?",
        "<x>",
        "p|q",
        "\"q\"",
        "bad\x01name",
        "\xc0\xae\xc0\xae",
        "\xe2\x80\xae"
        "fdp.exe",
        "\xef\xbc\x8f"
        "etc",
        ".kasm-upload-u-1.part",
    };
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char uuid[16];
        snprintf(uuid, sizeof(uuid), "h%u", (unsigned)i);
        print_message("hostile name %u\n", (unsigned)i);
        assert_int_equal(send_chunk(r, uuid, names[i], 0, 1, 0, 3, 10, "bad", 3, msg), 400);
        assert_non_null(strstr(msg, "Invalid file name"));
    }
    assert_int_equal(td_count(g_root), 0);
    assert_int_equal(td_count(g_parent), 1); /* only root/ */
    assert_int_equal(upl_registry_count(r), 0);
    upl_registry_free(r);
}

static void test_field_validation(void **state)
{
    static const struct {
        const char *name, *value;
        int rc; /* 1 set, 0 ignored, <0 refused */
    } cases[] = {
        {"dzuuid", "0b9c6a9e-1f2d-4c3b-9a8e-7d6c5b4a3f2e", 1},
        {"dzuuid", "", -1},
        {"dzuuid", "has space", -1},
        {"dzuuid", "../x", -1},
        {"dzuuid", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -1},
        {"dzchunkindex", "0", 1},
        {"dzchunkindex", "-1", -1},
        {"dzchunkindex", "1.5", -1},
        {"dzchunkindex", "", -1},
        {"dzchunkindex", "4294967297", -1},
        {"dztotalfilesize", "9007199254740992", 1},
        {"dztotalfilesize", "9007199254740993", -1},
        {"dztotalfilesize", "99999999999999999999999", -1},
        {"dzchunksize", " 10", -1},
        {"somethingelse", "x", 0},
    };
    struct upl_fields f;
    struct upl_result res;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        upl_fields_init(&f);
        memset(&res, 0, sizeof(res));
        rc = upl_fields_set(&f, cases[i].name, cases[i].value, strlen(cases[i].value), &res);
        print_message("field case %u\n", (unsigned)i);
        if (cases[i].rc < 0) {
            assert_true(rc < 0);
            assert_int_equal(res.status, 400);
        } else {
            assert_int_equal(rc, cases[i].rc);
        }
    }
    /* required fields and consistency */
    upl_fields_init(&f);
    assert_true(upl_fields_check(&f, &res) < 0);
    assert_string_equal(res.message, "missing field dzuuid");
    fields(&f, "u", 3, 3, 0, 10, 10);
    assert_true(upl_fields_check(&f, &res) < 0);
    assert_non_null(strstr(res.message, "below dztotalchunkcount"));
    fields(&f, "u", 0, 1, 0, 10, 0);
    assert_true(upl_fields_check(&f, &res) < 0);
    fields(&f, "u", 0, 1, 11, 10, 10);
    assert_true(upl_fields_check(&f, &res) < 0);
    fields(&f, "u", 0, 1, 0, 10, 10);
    assert_int_equal(upl_fields_check(&f, &res), 0);
    assert_true(upl_fields_set(&f, "dzuuid", "x", 1, &res) < 0); /* twice */
}

struct second {
    struct upl_registry *r;
    int status;
    volatile int done;
    char msg[ERR_MSG_MAX];
};

static void second_chunk(void *arg)
{
    struct second *s = arg;
    s->status = send_chunk(s->r, "ser", "s.bin", 1, 2, 0 + 10, 20, 10, "abcdefghij", 10, s->msg);
    s->done = 1;
}

static void test_same_dzuuid_is_serialised(void **state)
{
    struct upl_registry *r = new_reg(0, 10000);
    struct upl_fields f;
    struct upl_chunk *c = NULL;
    struct upl_result res;
    struct plat_thread *t = NULL;
    struct second s;
    size_t len = 0;
    char *got;
    (void)state;
    memset(&s, 0, sizeof(s));
    s.r = r;
    fields(&f, "ser", 0, 2, 0, 20, 10);
    assert_int_equal(upl_chunk_begin(r, g_root, &f, "s.bin", &c, &res), 0);
    assert_int_equal(upl_chunk_write(c, "01234", 5, &res), 0);
    /* chunk 1 arrives while chunk 0 is still being received: it must wait */
    assert_int_equal(plat_thread_start(&t, second_chunk, &s, NULL), 0);
    plat_sleep_ms(300);
    assert_int_equal(s.done, 0);
    assert_int_equal(upl_chunk_write(c, "56789", 5, &res), 0);
    assert_int_equal(upl_chunk_end(c, &res), 0);
    plat_thread_join(t);
    assert_int_equal(s.status, 200);
    got = read_in_root("s.bin", &len);
    assert_non_null(got);
    assert_int_equal(len, 20);
    assert_memory_equal(got, "0123456789abcdefghij", 20);
    free(got);
    upl_registry_free(r);

    /* with a short wait the second chunk is refused instead */
    r = new_reg(0, 50);
    fields(&f, "ser2", 0, 2, 0, 20, 10);
    assert_int_equal(upl_chunk_begin(r, g_root, &f, "t.bin", &c, &res), 0);
    fields(&f, "ser2", 0, 2, 0, 20, 10);
    {
        struct upl_chunk *c2 = NULL;
        assert_true(upl_chunk_begin(r, g_root, &f, "t.bin", &c2, &res) < 0);
        assert_int_equal(res.status, 409);
        assert_null(c2);
    }
    upl_chunk_abort(c);
    upl_registry_free(r);
}

static void test_in_flight_cap(void **state)
{
    struct upl_registry *r = new_reg(1, 0);
    struct upl_fields f;
    struct upl_chunk *a = NULL, *b = NULL;
    struct upl_result res;
    (void)state;
    fields(&f, "capa", 0, 1, 0, 1, 10);
    assert_int_equal(upl_chunk_begin(r, g_root, &f, "a.bin", &a, &res), 0);
    fields(&f, "capb", 0, 1, 0, 1, 10);
    assert_true(upl_chunk_begin(r, g_root, &f, "b.bin", &b, &res) < 0);
    assert_int_equal(res.status, 503);
    assert_string_equal(res.message, "Too many uploads in progress");
    assert_int_equal(upl_chunk_write(a, "A", 1, &res), 0);
    assert_int_equal(upl_chunk_end(a, &res), 0);
    assert_int_equal(upl_chunk_begin(r, g_root, &f, "b.bin", &b, &res), 0);
    assert_int_equal(upl_chunk_write(b, "B", 1, &res), 0);
    assert_int_equal(upl_chunk_end(b, &res), 0);
    assert_int_equal(td_count(g_root), 2);
    upl_registry_free(r);
}

static void test_write_failures_map_to_answers(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    (void)state;
    assert_int_equal(send_chunk(r, "ns", "full.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    g_inject = ERR_NO_SPACE;
    assert_int_equal(send_chunk(r, "ns", "full.bin", 1, 2, 10, 20, 10, k10, 10, msg), 400);
    assert_string_equal(msg, "No Space available");
    assert_int_equal(td_count(g_root), 0); /* the partial upload is gone */
    g_inject = ERR_IO;
    assert_int_equal(send_chunk(r, "io", "io.bin", 0, 1, 0, 10, 10, k10, 10, msg), 500);
    assert_non_null(strstr(msg, "Write failed: injected failure"));
    assert_int_equal(td_count(g_root), 0);
    g_inject = 0;
    assert_int_equal(upl_registry_count(r), 0);
    upl_registry_free(r);
}

static void test_no_space_on_real_tmpfs(void **state)
{
#ifdef _WIN32
    (void)state;
    UNIT_SKIP("a size-limited tmpfs is a Linux mechanism");
#else
    char cmd[2300];
    char saved[1024];
    struct upl_registry *r;
    char msg[ERR_MSG_MAX];
    static char block[256 * 1024];
    int status = 0;
    (void)state;
    snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=1m kasmtest '%s' 2>/dev/null", g_root);
    if (system(cmd) != 0)
        UNIT_SKIP("cannot mount a tmpfs here (needs root and mount permission)");
    memcpy(saved, g_root, sizeof(saved));
    r = new_reg(0, 0);
    memset(block, 'z', sizeof(block));
    for (uint64_t i = 0; i < 8; i++) {
        status = send_chunk(r, "tmpfs", "big.bin", i, 8, i * sizeof(block), 8 * sizeof(block),
                            sizeof(block), block, sizeof(block), msg);
        if (status != 200)
            break;
    }
    upl_registry_free(r);
    {
        int left = td_count(g_root);
        snprintf(cmd, sizeof(cmd), "umount '%s'", saved);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(status, 400);
        assert_string_equal(msg, "No Space available");
        assert_int_equal(left, 0);
    }
#endif
}

/* ---- the request adapter over a multipart body ----------------------------------------- */

static size_t body_for(char *out, size_t cap, const char *uuid, int index, int count, int offset,
                       int total, int size, const char *name, const char *data, int final)
{
    return (size_t)snprintf(
        out, cap,
        "--B\r\nContent-Disposition: form-data; name=\"dzuuid\"\r\n\r\n%s\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dzchunkindex\"\r\n\r\n%d\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dztotalfilesize\"\r\n\r\n%d\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dzchunksize\"\r\n\r\n%d\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dztotalchunkcount\"\r\n\r\n%d\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dzchunkbyteoffset\"\r\n\r\n%d\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n%s\r\n%s",
        uuid, index, total, size, count, offset, name, data, final ? "--B--\r\n" : "");
}

static int post(struct upl_registry *r, const char *body, size_t len, size_t piece, int cut,
                char *msg)
{
    struct upl_request *q = NULL;
    struct upl_result res;
    memset(&res, 0, sizeof(res));
    if (upl_request_begin(r, g_root, "multipart/form-data; boundary=B", &q, &res) < 0) {
        strcpy(msg, res.message);
        return res.status;
    }
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (upl_request_feed(q, body + off, n, &res) < 0)
            break;
    }
    if (cut) {
        upl_request_abort(q);
        return 0;
    }
    upl_request_finish(q, &res);
    strcpy(msg, res.message);
    return res.status;
}

static void test_request_adapter(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char body[4096], msg[ERR_MSG_MAX];
    struct upl_request *q = NULL;
    struct upl_result res;
    size_t n, len = 0;
    char *got;
    (void)state;
    n = body_for(body, sizeof(body), "rq", 0, 2, 0, 14, 10, "r.txt", "0123456789", 1);
    assert_int_equal(post(r, body, n, 1, 0, msg), 200);
    assert_string_equal(msg, "uploaded Chunk");
    /* a body cut short (client gone): nothing acknowledged, temp back to 10 bytes */
    n = body_for(body, sizeof(body), "rq", 1, 2, 10, 14, 10, "r.txt", "abcd", 0);
    assert_int_equal(post(r, body, n, 7, 1, msg), 0);
    /* the same body without its final boundary but finished: 400 */
    assert_int_equal(post(r, body, n, 7, 0, msg), 400);
    assert_non_null(strstr(msg, "final boundary"));
    n = body_for(body, sizeof(body), "rq", 1, 2, 10, 14, 10, "r.txt", "abcd", 1);
    assert_int_equal(post(r, body, n, 3, 0, msg), 200);
    got = read_in_root("r.txt", &len);
    assert_non_null(got);
    assert_int_equal(len, 14);
    assert_memory_equal(got, "0123456789abcd", 14);
    free(got);
    n = body_for(body, sizeof(body), "rq2", 0, 1, 0, 4, 10, "r.txt", "abcd", 1);
    assert_int_equal(post(r, body, n, 4096, 0, msg), 400);
    assert_string_equal(msg, "File already exists");
    n = body_for(body, sizeof(body), "rq3", 0, 1, 0, 4, 10, "..\\x", "abcd", 1);
    assert_int_equal(post(r, body, n, 4096, 0, msg), 400);
    assert_non_null(strstr(msg, "Invalid file name"));
    /* bad Content-Type */
    assert_true(upl_request_begin(r, g_root, "text/plain", &q, &res) < 0);
    assert_int_equal(res.status, 400);
    assert_null(q);
    assert_int_equal(td_count(g_root), 1);
    assert_int_equal(td_count(g_parent), 1);
    upl_registry_free(r);
}

static void test_empty_file(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    size_t len = 7;
    char *got;
    (void)state;
    assert_int_equal(send_chunk(r, "empty", "empty.txt", 0, 1, 0, 0, 10, "", 0, msg), 200);
    got = read_in_root("empty.txt", &len);
    assert_non_null(got);
    assert_int_equal(len, 0);
    free(got);
    /* retried: still 200, nothing new */
    assert_int_equal(send_chunk(r, "empty", "empty.txt", 0, 1, 0, 0, 10, "", 0, msg), 200);
    assert_int_equal(td_count(g_root), 1);
    upl_registry_free(r);
}

static void test_registry_size_cap_and_free(void **state)
{
    struct upl_config cfg;
    struct upl_registry *r = NULL;
    char msg[ERR_MSG_MAX];
    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_uploads = 2;
    cfg.clock = fake_clock;
    assert_int_equal(upl_registry_create(&cfg, &r, NULL), 0);
    assert_int_equal(send_chunk(r, "k1", "k1.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_int_equal(send_chunk(r, "k2", "k2.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_int_equal(send_chunk(r, "k3", "k3.bin", 0, 2, 0, 20, 10, k10, 10, msg), 503);
    assert_string_equal(msg, "Too many uploads in progress");
    assert_int_equal(td_count(g_root), 2);
    /* once the others are stale, a new upload makes room by expiring them */
    g_now += 3600;
    assert_int_equal(send_chunk(r, "k3", "k3.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_int_equal(td_count(g_root), 1);
    assert_int_equal(upl_registry_count(r), 1);
    /* finished uploads (kept only for retries) make way for new ones at once */
    assert_int_equal(send_chunk(r, "k4", "k4.bin", 0, 1, 0, 1, 10, "4", 1, msg), 200);
    assert_int_equal(upl_registry_count(r), 2); /* k3 (running), k4 (finished) */
    assert_int_equal(send_chunk(r, "k5", "k5.bin", 0, 2, 0, 20, 10, k10, 10, msg), 200);
    assert_int_equal(upl_registry_count(r), 2); /* k3, k5: both running */
    assert_int_equal(send_chunk(r, "k6", "k6.bin", 0, 2, 0, 20, 10, k10, 10, msg), 503);
    assert_int_equal(td_count(g_root), 3); /* k4 and the temp files of k3 and k5 */
    /* freeing the registry removes unfinished temp files */
    upl_registry_free(r);
    assert_int_equal(td_count(g_root), 1);
}

static void test_request_field_order_and_parts(void **state)
{
    struct upl_registry *r = new_reg(0, 0);
    char msg[ERR_MSG_MAX];
    /* the file part before the dz fields */
    const char *early = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.txt\""
                        "\r\n\r\nabc\r\n--B\r\nContent-Disposition: form-data; name=\"dzuuid\""
                        "\r\n\r\nx\r\n--B--\r\n";
    /* fields only, no file */
    const char *nofile = "--B\r\nContent-Disposition: form-data; name=\"dzuuid\"\r\n\r\nx\r\n"
                         "--B--\r\n";
    /* a malformed field value */
    const char *badval = "--B\r\nContent-Disposition: form-data; name=\"dzchunkindex\"\r\n\r\n"
                         "-3\r\n--B--\r\n";
    (void)state;
    assert_int_equal(post(r, early, strlen(early), 5, 0, msg), 400);
    assert_string_equal(msg, "missing field dzuuid");
    assert_int_equal(post(r, nofile, strlen(nofile), 5, 0, msg), 400);
    assert_non_null(strstr(msg, "no file part"));
    assert_int_equal(post(r, badval, strlen(badval), 5, 0, msg), 400);
    assert_non_null(strstr(msg, "dzchunkindex"));
    assert_int_equal(td_count(g_root), 0);
    assert_int_equal(upl_registry_count(r), 0);
    upl_registry_free(r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_happy_path_three_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retried_chunk_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_offset_and_unknown_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exists_at_chunk_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_mismatch_deletes_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_truncates_to_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_and_abandoned_same_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names_write_nothing_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_dzuuid_is_serialised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_flight_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failures_map_to_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_space_on_real_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_adapter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_size_cap_and_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_field_order_and_parts, setup, teardown),
    };
    return UNIT_RUN("upload", tests, NULL, NULL);
}
