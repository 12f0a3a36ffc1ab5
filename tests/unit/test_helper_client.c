/*
 * test_helper_client.c - the service side of the helper requests (service/api/helper_client.c)
 * against a fake helper written here on top of pmux over pchan_pair (no session_helper code):
 * every call, the helper's errors, a helper that goes away mid-stream, an early
 * UPLOAD_RESULT, a helper that never answers, and a protocol violation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "helper_client.h"
#include "plat.h"
#include "pmux.h"
#include "proto.h"

#define FAKE_WAIT_MS  20000u /* the fake's longest wait for a frame (never reached when green) */
#define FAKE_THREADS  8
#define FAKE_SEEN_MAX 64
#define FILE_SIZE     (300u * 1024u) /* more than one window and one DATA frame */
#define WINDOW        (64u * 1024u)

enum fake_mode {
    FAKE_FILE,
    FAKE_FILE_SHORT,
    FAKE_DIR,
    FAKE_404,
    FAKE_GONE_READ,
    FAKE_UPLOAD,
    FAKE_UPLOAD_EARLY,
    FAKE_UPLOAD_GONE,
    FAKE_SHOT,
    FAKE_SHOT_NODISPLAY,
    FAKE_SILENT,
    FAKE_BAD_FRAME,
};

struct fake_job {
    struct pmux_stream *s;
    struct proto_frame *first;
    int gone; /* fake_go_away disposed of s, first and the helper's mux */
};

static struct {
    struct pmux *svc, *hlp;
    enum fake_mode mode;
    struct plat_mutex *mu;
    struct plat_thread *threads[FAKE_THREADS];
    int nthreads;
    int started;                  /* requests the fake has received in this test */
    int write_cancelled;          /* a pmux_write_data of the fake ended with ERR_CANCELLED */
    uint32_t seen[FAKE_SEEN_MAX]; /* frame types the fake received after the first */
    int nseen;
    uint32_t first_type;
    char path[PROTO_PATH_MAX];
    char heading[PROTO_PATH_MAX + 64];
    int show_hidden;
    uint64_t read_off, read_len;
    char ctype[PROTO_TEXT_MAX];
    int64_t clen;
    uint64_t up_bytes;
    uint32_t up_sum;
    int shot_width;
    uint8_t *content;
} g;

static uint32_t sum_bytes(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum = sum * 31u + p[i];
    return sum;
}

static void seen_add(uint32_t type)
{
    plat_mutex_lock(g.mu);
    if (g.nseen < FAKE_SEEN_MAX)
        g.seen[g.nseen++] = type;
    plat_mutex_unlock(g.mu);
}

static int seen_has(uint32_t type)
{
    for (int i = 0; i < g.nseen; i++)
        if (g.seen[i] == type)
            return 1;
    return 0;
}

/* The next frame from the service, recorded; NULL on timeout or channel end. */
static struct proto_frame *fake_recv(struct pmux_stream *s)
{
    struct proto_frame *f = NULL;
    if (pmux_recv(s, FAKE_WAIT_MS, &f, NULL) < 0)
        return NULL;
    seen_add(f->h.type);
    return f;
}

static void send_json(struct pmux_stream *s, uint32_t type, char *json, size_t len)
{
    assert_int_equal(pmux_send(s, type, json, len, NULL), 0);
    free(json);
}

static void send_info(struct pmux_stream *s, const char *kind, int slash, const char *name,
                      uint64_t size)
{
    struct proto_dl_info di;
    char *json;
    size_t len;

    memset(&di, 0, sizeof(di));
    snprintf(di.kind, sizeof(di.kind), "%s", kind);
    di.trailing_slash = slash;
    snprintf(di.name, sizeof(di.name), "%s", name);
    di.size = size;
    di.mtime = 1700000000;
    assert_int_equal(proto_dl_info_encode(&di, &json, &len, NULL), 0);
    send_json(s, PROTO_DL_INFO, json, len);
}

static void send_upload_result(struct pmux_stream *s, int status, const char *msg)
{
    struct proto_upload_result r;
    char *json;
    size_t len;

    r.status = status;
    snprintf(r.message, sizeof(r.message), "%s", msg);
    assert_int_equal(proto_upload_result_encode(&r, &json, &len, NULL), 0);
    send_json(s, PROTO_UPLOAD_RESULT, json, len);
}

static int fake_write(struct pmux_stream *s, const void *data, size_t len)
{
    int rc = pmux_write_data(s, data, len, NULL);
    if (rc == ERR_CANCELLED)
        g.write_cancelled = 1;
    return rc;
}

/* DL_OPEN of a file, then serves DL_READ with limit bytes at most. */
/*
 * The helper dies: its channel is closed for good (as when its process exits; a shutdown
 * alone does not end the peer's reads on every platform). The mux leaves g.hlp first.
 */
static void fake_go_away(struct fake_job *job)
{
    struct pmux *h;

    plat_mutex_lock(g.mu);
    h = g.hlp;
    g.hlp = NULL;
    plat_mutex_unlock(g.mu);
    pmux_shutdown(h);
    pmux_frame_free(job->s, job->first);
    pmux_close(job->s);
    pmux_free(h);
    job->gone = 1;
}

static void fake_file(struct pmux_stream *s, uint64_t limit, struct fake_job *go_away)
{
    struct proto_frame *f;
    struct proto_dl_read rd;

    send_info(s, "file", 0, "report.pdf", FILE_SIZE);
    if (!(f = fake_recv(s)))
        return;
    if (f->h.type != PROTO_DL_READ) {
        pmux_frame_free(s, f);
        return;
    }
    assert_int_equal(proto_dl_read_decode(f->payload, f->h.length, &rd, NULL), 0);
    pmux_frame_free(s, f);
    g.read_off = rd.offset;
    g.read_len = rd.length;
    if (rd.length > limit)
        rd.length = limit;
    /* two writes: several DATA frames, and a window's worth of waiting for credit */
    if (fake_write(s, g.content + rd.offset, (size_t)(rd.length / 2)) < 0)
        return;
    if (go_away) {
        fake_go_away(go_away);
        return;
    }
    if (fake_write(s, g.content + rd.offset + rd.length / 2, (size_t)(rd.length - rd.length / 2)) <
        0)
        return;
    (void)pmux_send(s, PROTO_END, NULL, 0, NULL);
}

static void fake_dir(struct pmux_stream *s)
{
    static const char part1[] = "<!DOCTYPE html><html><body>";
    static const char part2[] = "<a href=\"x.txt\">x.txt</a></body></html>\n";
    struct proto_frame *f;
    struct proto_dl_list dl;

    send_info(s, "dir", 1, "sub", 0);
    if (!(f = fake_recv(s)))
        return;
    if (f->h.type != PROTO_DL_LIST) {
        pmux_frame_free(s, f);
        return;
    }
    assert_int_equal(proto_dl_list_decode(f->payload, f->h.length, &dl, NULL), 0);
    pmux_frame_free(s, f);
    snprintf(g.heading, sizeof(g.heading), "%s", dl.heading);
    g.show_hidden = dl.show_hidden;
    assert_int_equal(pmux_write_data(s, part1, strlen(part1), NULL), 0);
    assert_int_equal(pmux_write_data(s, part2, strlen(part2), NULL), 0);
    (void)pmux_send(s, PROTO_END, NULL, 0, NULL);
}

static void fake_upload(struct pmux_stream *s, struct proto_frame *first, struct fake_job *go_away)
{
    struct proto_upload_begin ub;
    struct proto_frame *f;

    assert_int_equal(proto_upload_begin_decode(first->payload, first->h.length, &ub, NULL), 0);
    snprintf(g.ctype, sizeof(g.ctype), "%s", ub.content_type);
    g.clen = ub.content_length;
    if (g.mode == FAKE_UPLOAD_EARLY) {
        send_upload_result(s, 400, "File already exists");
        return;
    }
    while ((f = fake_recv(s)) != NULL) {
        uint32_t type = f->h.type;
        if (type == PROTO_DATA) {
            g.up_sum = sum_bytes(g.up_sum, f->payload, f->h.length);
            g.up_bytes += f->h.length;
        }
        pmux_frame_free(s, f);
        if (type == PROTO_DATA && go_away && g.up_bytes >= WINDOW) {
            fake_go_away(go_away);
            return;
        }
        if (type == PROTO_END) {
            send_upload_result(s, 200, "uploaded Chunk");
            return;
        }
        if (type != PROTO_DATA)
            return; /* CANCEL */
    }
}

static void fake_shot(struct pmux_stream *s, struct proto_frame *first)
{
    struct proto_shot sh;
    struct proto_shot_info si;
    char *json;
    size_t len;

    assert_int_equal(proto_shot_decode(first->payload, first->h.length, &sh, NULL), 0);
    g.shot_width = sh.width;
    if (g.mode == FAKE_SHOT_NODISPLAY) {
        (void)pmux_send_error(s, 503, "No display: DISPLAY is not set in this session", NULL);
        return;
    }
    si.width = sh.width;
    si.height = 77;
    si.size = FILE_SIZE;
    assert_int_equal(proto_shot_info_encode(&si, &json, &len, NULL), 0);
    send_json(s, PROTO_SHOT_INFO, json, len);
    if (pmux_write_data(s, g.content, FILE_SIZE, NULL) == 0)
        (void)pmux_send(s, PROTO_END, NULL, 0, NULL);
}

static void fake_serve(void *arg)
{
    struct fake_job *job = arg;
    struct pmux_stream *s = job->s;
    struct proto_frame *first = job->first, *f;
    struct proto_dl_open op;

    g.first_type = first->h.type;
    if (first->h.type == PROTO_DL_OPEN) {
        assert_int_equal(proto_dl_open_decode(first->payload, first->h.length, &op, NULL), 0);
        snprintf(g.path, sizeof(g.path), "%s", op.path);
    }
    switch (g.mode) {
    case FAKE_FILE:
        fake_file(s, UINT64_MAX, NULL);
        break;
    case FAKE_FILE_SHORT:
        fake_file(s, FILE_SIZE / 3, NULL);
        break;
    case FAKE_GONE_READ:
        fake_file(s, UINT64_MAX, job);
        break;
    case FAKE_DIR:
        fake_dir(s);
        break;
    case FAKE_404:
        (void)pmux_send_error(s, 404, "Not found", NULL);
        break;
    case FAKE_UPLOAD:
    case FAKE_UPLOAD_EARLY:
    case FAKE_UPLOAD_GONE:
        fake_upload(s, first, g.mode == FAKE_UPLOAD_GONE ? job : NULL);
        break;
    case FAKE_SHOT:
    case FAKE_SHOT_NODISPLAY:
        fake_shot(s, first);
        break;
    case FAKE_SILENT:
        if ((f = fake_recv(s)) != NULL) /* the service's CANCEL after its timeout */
            pmux_frame_free(s, f);
        break;
    case FAKE_BAD_FRAME:
        send_info(s, "file", 0, "x", 1); /* valid frame, wrong request: SHOT wants SHOT_INFO */
        if ((f = fake_recv(s)) != NULL)
            pmux_frame_free(s, f);
        break;
    }
    if (!job->gone) {
        pmux_frame_free(s, first);
        pmux_close(s);
    }
    free(job);
}

static void on_request(void *ctx, struct pmux_stream *s, struct proto_frame *first)
{
    struct fake_job *job = calloc(1, sizeof(*job));
    (void)ctx;
    assert_non_null(job);
    job->s = s;
    job->first = first;
    plat_mutex_lock(g.mu);
    g.started++;
    assert_true(g.nthreads < FAKE_THREADS);
    assert_int_equal(plat_thread_start(&g.threads[g.nthreads++], fake_serve, job, NULL), 0);
    plat_mutex_unlock(g.mu);
}

/* Joins the fake requests started so far. */
static void fake_reap(void)
{
    for (;;) {
        struct plat_thread *t = NULL;
        plat_mutex_lock(g.mu);
        if (g.nthreads > 0)
            t = g.threads[--g.nthreads];
        plat_mutex_unlock(g.mu);
        if (!t)
            return;
        plat_thread_join(t);
    }
}

/* Waits until the fake has received its request, then for every fake request to end. */
static void fake_join(void)
{
    for (int i = 0; i < (int)(FAKE_WAIT_MS / 10); i++) {
        int started;
        plat_mutex_lock(g.mu);
        started = g.started;
        plat_mutex_unlock(g.mu);
        if (started)
            break;
        plat_sleep_ms(10);
    }
    fake_reap();
}

static int setup(void **state)
{
    struct pchan *a = NULL, *b = NULL;
    struct pmux_config sc, hc;
    struct err e = ERR_INIT;
    (void)state;

    memset(&g, 0, sizeof(g));
    assert_int_equal(plat_mutex_create(&g.mu, NULL), 0);
    g.content = malloc(FILE_SIZE);
    assert_non_null(g.content);
    for (uint32_t i = 0; i < FILE_SIZE; i++)
        g.content[i] = (uint8_t)(i * 7u + (i >> 9));
    assert_int_equal(pchan_pair(&a, &b, &e), 0);
    memset(&sc, 0, sizeof(sc));
    memset(&hc, 0, sizeof(hc));
    proto_hello_init(&sc.hello, "service");
    proto_hello_init(&hc.hello, "helper");
    sc.initiator_odd = 1;
    sc.window = WINDOW;
    hc.window = WINDOW;
    hc.on_request = on_request;
    assert_int_equal(pmux_start(a, &sc, &g.svc, &e), 0);
    assert_int_equal(pmux_start(b, &hc, &g.hlp, &e), 0);
    assert_int_equal(pmux_wait_ready(g.svc, FAKE_WAIT_MS, NULL, &e), 0);
    assert_int_equal(pmux_wait_ready(g.hlp, FAKE_WAIT_MS, NULL, &e), 0);
    return 0;
}

static int teardown(void **state)
{
    struct pmux *h;
    (void)state;
    /* a helper that went away took itself out of g.hlp (its fake ended before this) */
    plat_mutex_lock(g.mu);
    h = g.hlp;
    plat_mutex_unlock(g.mu);
    pmux_shutdown(g.svc);
    if (h)
        pmux_shutdown(h);
    fake_reap();
    pmux_free(g.svc);
    if (h)
        pmux_free(h);
    plat_mutex_destroy(g.mu);
    free(g.content);
    return 0;
}

/* A write callback collecting into a heap buffer; fails after fail_after bytes if set. */
struct sink {
    uint8_t *buf;
    size_t len, cap;
    size_t fail_after;
    int calls;
};

static int sink_write(void *ctx, const void *data, size_t len)
{
    struct sink *k = ctx;
    k->calls++;
    if (k->fail_after && k->len >= k->fail_after)
        return -1;
    if (k->len + len > k->cap) {
        size_t cap = (k->len + len) * 2;
        uint8_t *n = realloc(k->buf, cap);
        assert_non_null(n);
        k->buf = n;
        k->cap = cap;
    }
    memcpy(k->buf + k->len, data, len);
    k->len += len;
    return 0;
}

/* ---- downloads ---- */

static void test_dl_file_range(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct sink k = {0};
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_FILE;
    assert_int_equal(hcl_dl_open(g.svc, "a%20b/report.pdf", 5000, &d, &info, &status, &e), 0);
    assert_string_equal(g.path, "a%20b/report.pdf");
    assert_false(info.is_dir);
    assert_string_equal(info.name, "report.pdf");
    assert_true(info.size == FILE_SIZE);
    assert_true(info.mtime == 1700000000);
    /* a range past one window: flow control both ways */
    assert_int_equal(hcl_dl_read(d, 1000, FILE_SIZE - 2000, sink_write, &k, 5000, &status, &e), 0);
    fake_join();
    assert_true(g.read_off == 1000 && g.read_len == FILE_SIZE - 2000);
    assert_int_equal(k.len, FILE_SIZE - 2000);
    assert_memory_equal(k.buf, g.content + 1000, FILE_SIZE - 2000);
    assert_false(seen_has(PROTO_CANCEL));
    free(k.buf);
}

static void test_dl_file_shorter(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct sink k = {0};
    struct err e = ERR_INIT;
    int status = 0, rc;
    (void)state;

    g.mode = FAKE_FILE_SHORT;
    assert_int_equal(hcl_dl_open(g.svc, "report.pdf", 5000, &d, &info, &status, &e), 0);
    rc = hcl_dl_read(d, 0, FILE_SIZE, sink_write, &k, 5000, &status, &e);
    assert_int_equal(rc, ERR_IO);
    assert_int_equal(status, 500);
    assert_non_null(strstr(e.msg, "shorter"));
    assert_int_equal(k.len, FILE_SIZE / 3);
    fake_join();
    free(k.buf);
}

static void test_dl_not_found(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_404;
    assert_int_equal(hcl_dl_open(g.svc, "nope.txt", 5000, &d, &info, &status, &e), ERR_NOT_FOUND);
    assert_null(d);
    assert_int_equal(status, 404);
    assert_string_equal(e.msg, "Not found");
    fake_join();
}

static void test_dl_listing(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct sink k = {0};
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_DIR;
    assert_int_equal(hcl_dl_open(g.svc, "sub/", 5000, &d, &info, &status, &e), 0);
    assert_true(info.is_dir);
    assert_true(info.trailing_slash);
    assert_int_equal(
        hcl_dl_list(d, "/Downloads/Downloads/sub/", 1, sink_write, &k, 5000, &status, &e), 0);
    fake_join();
    assert_string_equal(g.heading, "/Downloads/Downloads/sub/");
    assert_int_equal(g.show_hidden, 1);
    assert_true(k.len > 0);
    assert_true(sink_write(&k, "", 1) == 0); /* NUL-terminate */
    assert_string_equal((char *)k.buf, "<!DOCTYPE html><html><body><a href=\"x.txt\">x.txt</a>"
                                       "</body></html>\n");
    free(k.buf);
}

static void test_dl_close_cancels(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_FILE; /* the HEAD / 304 / 416 case: open, then no read */
    assert_int_equal(hcl_dl_open(g.svc, "report.pdf", 5000, &d, &info, &status, &e), 0);
    hcl_dl_close(d);
    fake_join();
    assert_true(seen_has(PROTO_CANCEL));
    assert_false(seen_has(PROTO_DL_READ));
}

static void test_dl_client_gone_cancels(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct sink k = {0};
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_FILE;
    k.fail_after = 1;
    assert_int_equal(hcl_dl_open(g.svc, "report.pdf", 5000, &d, &info, &status, &e), 0);
    assert_int_equal(hcl_dl_read(d, 0, FILE_SIZE, sink_write, &k, 5000, &status, &e),
                     ERR_CANCELLED);
    fake_join(); /* the fake's pending write ends: the request is gone (no hang) */
    assert_true(g.write_cancelled);
    free(k.buf);
}

static void test_dl_helper_gone_mid_stream(void **state)
{
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct sink k = {0};
    struct err e = ERR_INIT;
    int status = 0, rc;
    (void)state;

    g.mode = FAKE_GONE_READ;
    assert_int_equal(hcl_dl_open(g.svc, "report.pdf", 5000, &d, &info, &status, &e), 0);
    rc = hcl_dl_read(d, 0, FILE_SIZE, sink_write, &k, FAKE_WAIT_MS, &status, &e);
    assert_true(rc == ERR_IO || rc == ERR_CANCELLED);
    assert_int_equal(status, 503);
    assert_non_null(strstr(e.msg, "session helper"));
    assert_true(k.len < FILE_SIZE);
    fake_join();
    /* later requests fail at once with 503, no hang */
    assert_true(hcl_dl_open(g.svc, "report.pdf", FAKE_WAIT_MS, &d, &info, &status, &e) < 0);
    assert_int_equal(status, 503);
    free(k.buf);
}

/* ---- uploads ---- */

static void test_upload_three_pieces(void **state)
{
    struct hcl_upload *u = NULL;
    struct hcl_upload_result res;
    struct err e = ERR_INIT;
    int status = 0;
    uint32_t piece = FILE_SIZE / 3;
    (void)state;

    g.mode = FAKE_UPLOAD;
    assert_int_equal(hcl_upload_begin(g.svc, "multipart/form-data; boundary=xyz",
                                      (int64_t)FILE_SIZE, &u, &status, &e),
                     0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hcl_upload_feed(u, g.content + i * piece, piece, &e), 0);
    assert_int_equal(hcl_upload_finish(u, 5000, &res, &e), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.message, "uploaded Chunk");
    fake_join();
    assert_string_equal(g.ctype, "multipart/form-data; boundary=xyz");
    assert_true(g.clen == (int64_t)FILE_SIZE);
    assert_true(g.up_bytes == 3ull * piece);
    assert_true(g.up_sum == sum_bytes(0, g.content, 3 * piece));
    assert_false(seen_has(PROTO_CANCEL));
}

static void test_upload_early_result(void **state)
{
    struct hcl_upload *u = NULL;
    struct hcl_upload_result res;
    struct err e = ERR_INIT;
    int status = 0, rc = 0, i;
    (void)state;

    g.mode = FAKE_UPLOAD_EARLY;
    assert_int_equal(hcl_upload_begin(g.svc, "multipart/form-data", -1, &u, &status, &e), 0);
    /* the fake never takes data: once its window is full only the answer can unblock */
    for (i = 0; i < 1000 && rc == 0; i++)
        rc = hcl_upload_feed(u, g.content, 4096, &e);
    assert_int_equal(rc, 1);
    assert_int_equal(hcl_upload_feed(u, g.content, 4096, &e), 1); /* stays stopped */
    assert_int_equal(hcl_upload_finish(u, 5000, &res, &e), 0);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.message, "File already exists");
    fake_join();
}

static void test_upload_abort_cancels(void **state)
{
    struct hcl_upload *u = NULL;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_UPLOAD;
    assert_int_equal(hcl_upload_begin(g.svc, "multipart/form-data", 100000, &u, &status, &e), 0);
    assert_int_equal(hcl_upload_feed(u, g.content, 1000, &e), 0);
    hcl_upload_abort(u);
    fake_join();
    assert_true(seen_has(PROTO_CANCEL));
    assert_false(seen_has(PROTO_END));
}

static void test_upload_helper_gone(void **state)
{
    struct hcl_upload *u = NULL;
    struct hcl_upload_result res;
    struct err e = ERR_INIT;
    int status = 0, rc = 0, i;
    (void)state;

    g.mode = FAKE_UPLOAD_GONE;
    assert_int_equal(hcl_upload_begin(g.svc, "multipart/form-data", -1, &u, &status, &e), 0);
    for (i = 0; i < 1000 && rc == 0; i++)
        rc = hcl_upload_feed(u, g.content, 8192, &e);
    assert_true(rc != 0);
    assert_true(hcl_upload_finish(u, FAKE_WAIT_MS, &res, &e) < 0);
    assert_int_equal(res.status, 503);
    assert_non_null(strstr(res.message, "session helper"));
    fake_join();
}

/* ---- screenshots ---- */

static void test_shot_png(void **state)
{
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_SHOT;
    assert_int_equal(hcl_shot_take(g.svc, 300, 5000, &shot, &status, &e), 0);
    assert_int_equal(g.shot_width, 300);
    assert_int_equal(shot.width, 300);
    assert_int_equal(shot.height, 77);
    assert_int_equal(shot.size, FILE_SIZE);
    assert_memory_equal(shot.png, g.content, FILE_SIZE);
    free(shot.png);
    fake_join();
}

static void test_shot_no_display(void **state)
{
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_SHOT_NODISPLAY;
    assert_true(hcl_shot_take(g.svc, 640, 5000, &shot, &status, &e) < 0);
    assert_int_equal(status, 503);
    assert_string_equal(e.msg, "No display: DISPLAY is not set in this session");
    assert_null(shot.png);
    fake_join();
}

static void test_timeout_cancels(void **state)
{
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_SILENT;
    assert_int_equal(hcl_shot_take(g.svc, 300, 200, &shot, &status, &e), ERR_TIMEOUT);
    assert_int_equal(status, 504);
    fake_join();
    assert_true(seen_has(PROTO_CANCEL));
}

static void test_unexpected_frame(void **state)
{
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    g.mode = FAKE_BAD_FRAME;
    assert_int_equal(hcl_shot_take(g.svc, 300, 5000, &shot, &status, &e), ERR_PROTOCOL);
    assert_int_equal(status, 502);
    assert_non_null(strstr(e.msg, "DL_INFO"));
    fake_join();
    assert_true(seen_has(PROTO_CANCEL));
}

static void test_no_mux(void **state)
{
    struct hcl_shot shot;
    struct hcl_dl *d = NULL;
    struct hcl_dl_info info;
    struct hcl_upload *u = NULL;
    struct err e = ERR_INIT;
    int status = 0;
    (void)state;

    assert_true(hcl_shot_take(NULL, 300, 5000, &shot, &status, &e) < 0);
    assert_int_equal(status, 503);
    status = 0;
    assert_true(hcl_dl_open(NULL, "x", 5000, &d, &info, &status, &e) < 0);
    assert_int_equal(status, 503);
    status = 0;
    assert_true(hcl_upload_begin(NULL, "", -1, &u, &status, &e) < 0);
    assert_int_equal(status, 503);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dl_file_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_file_shorter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_close_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_client_gone_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_helper_gone_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_three_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_early_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_abort_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_helper_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shot_png, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shot_no_display, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_mux, setup, teardown),
    };
    return UNIT_RUN("helper_client", tests, NULL, NULL);
}
