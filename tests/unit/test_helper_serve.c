/*
 * test_helper_serve.c - the session helper's request server (session_helper/serve.c) in one
 * process: hlp_serve() on one end of a pchan_pair with a temp Downloads folder, and a pmux
 * acting as the service (initiator_odd = 1) on the other. Listing, reads with offset and
 * length, 404 for hostile paths, a three-chunk Dropzone upload, an early upload failure,
 * CANCEL in the middle of a download, concurrent requests and the worker bound, a service of
 * another version refused, screenshots (through a fake shot_capture_png defined here: the
 * test links no capture code), and the Downloads folder lookup (session_helper/downloads.h).
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
#ifndef _WIN32
#include <unistd.h>
#endif

#include "downloads.h"
#include "fsutil.h"
#include "plat.h"
#include "pmux.h"
#include "proto.h"
#include "serve.h"
#include "shot.h"
#include "testdir.h"

#define WAIT_MS 60000u /* generous: a noisy 2-core machine, ASan, Wine */

/* ---- a fake screenshot module ---------------------------------------------------------- */

static int g_shot_mode; /* 0: no display; 1: a fake PNG of g_shot_len bytes */
static size_t g_shot_len = 300000;

static uint8_t pattern_byte(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

int shot_capture_png(int width, struct shot_png *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    if (g_shot_mode == 0)
        return err_set(e, ERR_NOT_FOUND, "no display: DISPLAY is not set");
    if (width < 16 || width > 3840)
        return err_set(e, ERR_INVALID, "width %d is out of range", width);
    out->data = malloc(g_shot_len);
    if (!out->data)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g_shot_len; i++)
        out->data[i] = pattern_byte(i + 7);
    out->len = g_shot_len;
    out->width = width;
    out->height = width / 2;
    return 0;
}

void shot_png_free(struct shot_png *p)
{
    if (p) {
        free(p->data);
        p->data = NULL;
    }
}

/* ---- the harness ----------------------------------------------------------------------- */

static char g_scratch[1024];
static char g_dl[1024];

struct harness {
    struct pmux *svc;
    struct plat_thread *helper;
    struct hlp_options opt;
    int helper_rc;
    struct err helper_err;
    struct plat_mutex *lock;
    struct plat_mutex *open_lock; /* see request() */
    int logs_seen;
    char last_log[PROTO_TEXT_MAX];
};

static struct pchan *g_helper_end;

static void helper_thread(void *arg)
{
    struct harness *h = arg;
    h->helper_rc = hlp_serve(g_helper_end, &h->opt, &h->helper_err);
}

static void on_log(void *ctx, const struct proto_log *msg)
{
    struct harness *h = ctx;
    plat_mutex_lock(h->lock);
    h->logs_seen++;
    snprintf(h->last_log, sizeof(h->last_log), "%s", msg->message);
    if (strstr(msg->message, "serving session"))
        h->logs_seen += 1000;
    plat_mutex_unlock(h->lock);
}

static void put_file(const char *name, const void *data, size_t len)
{
    char path[2048];
    assert_int_equal(fs_join(g_dl, name, path, sizeof(path), NULL), 0);
    assert_int_equal(fs_write_atomic(path, data, len, 0, NULL), 0);
}

static int setup(void **state)
{
    char sub[2048];
    (void)state;
    if (td_make("hlp", g_scratch, sizeof(g_scratch)) < 0 ||
        fs_join(g_scratch, "Downloads", g_dl, sizeof(g_dl), NULL) < 0 ||
        plat_dir_create(g_dl, NULL) < 0)
        return -1;
    put_file("a.txt", "0123456789abcdef", 16);
    put_file("b & c.txt", "x", 1);
    if (fs_join(g_dl, "sub", sub, sizeof(sub), NULL) < 0 || plat_dir_create(sub, NULL) < 0)
        return -1;
    g_shot_mode = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_remove_tree(g_scratch);
    return 0;
}

/* Starts the helper (max_workers 0: default) and a service mux of version `version`. */
static struct harness *start_with(unsigned max_workers, const char *version, int expect_ready)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct pchan *svc_end = NULL;
    struct pmux_config cfg;
    struct err e = ERR_INIT;
    assert_non_null(h);
    assert_int_equal(plat_mutex_create(&h->lock, NULL), 0);
    assert_int_equal(plat_mutex_create(&h->open_lock, NULL), 0);
    assert_int_equal(pchan_pair(&svc_end, &g_helper_end, &e), 0);
    h->opt.downloads = g_dl;
    h->opt.session_id = 7;
    h->opt.user = "tester";
    h->opt.max_workers = max_workers;
    h->opt.ready_timeout_ms = WAIT_MS;
    h->opt.forward_logs = 1;
    assert_int_equal(plat_thread_start(&h->helper, helper_thread, h, NULL), 0);

    memset(&cfg, 0, sizeof(cfg));
    proto_hello_init(&cfg.hello, "service");
    if (version)
        snprintf(cfg.hello.version, sizeof(cfg.hello.version), "%s", version);
    cfg.initiator_odd = 1;
    cfg.on_log = on_log;
    cfg.ctx = h;
    assert_int_equal(pmux_start(svc_end, &cfg, &h->svc, &e), 0);
    if (expect_ready) {
        struct proto_hello peer;
        int rc = pmux_wait_ready(h->svc, WAIT_MS, &peer, &e);
        if (rc < 0)
            fail_msg("service side: %s", e.msg);
        assert_string_equal(peer.role, "helper");
        assert_string_equal(peer.user, "tester");
        assert_int_equal(peer.session_id, 7);
        assert_int_equal(peer.pid, (uint32_t)plat_pid());
    }
    return h;
}

static struct harness *start(void)
{
    return start_with(0, NULL, 1);
}

/* Closes the service side and checks the helper ended cleanly (rc). */
static void stop(struct harness *h, int want_rc)
{
    pmux_shutdown(h->svc);
    pmux_free(h->svc);
    plat_thread_join(h->helper);
    if (h->helper_rc != want_rc)
        fail_msg("hlp_serve returned %d (%s), want %d", h->helper_rc, h->helper_err.msg, want_rc);
    plat_mutex_destroy(h->lock);
    plat_mutex_destroy(h->open_lock);
    free(h);
}

static struct proto_frame *recv_frame(struct pmux_stream *s)
{
    struct proto_frame *f = NULL;
    struct err e = ERR_INIT;
    if (pmux_recv(s, WAIT_MS, &f, &e) < 0)
        fail_msg("pmux_recv: %s", e.msg);
    return f;
}

/*
 * Opens a request and sends its first frame (a JSON text or empty). Opening and the first
 * send are serialised: the receiving mux drops a new request whose id is below one it has
 * already seen (pmux.c pmux_on_new), so two threads must not interleave them.
 */
static struct pmux_stream *request(struct harness *h, uint32_t type, const char *json)
{
    struct pmux_stream *s = NULL;
    struct err e = ERR_INIT;
    int rc;
    plat_mutex_lock(h->open_lock);
    rc = pmux_open(h->svc, &s, &e);
    if (rc == 0)
        rc = pmux_send(s, type, json, json ? strlen(json) : 0, &e);
    plat_mutex_unlock(h->open_lock);
    if (rc < 0)
        fail_msg("opening a request: %s", e.msg);
    return s;
}

/* Expects an ERROR frame with status; returns nothing, closes s. */
static void expect_error(struct pmux_stream *s, int status, const char *message)
{
    struct proto_frame *f = recv_frame(s);
    struct proto_error er;
    if (f->h.type != PROTO_ERROR)
        fail_msg("got %s, want ERROR %d", proto_type_name(f->h.type), status);
    assert_int_equal(proto_error_decode(f->payload, f->h.length, &er, NULL), 0);
    assert_int_equal(er.status, status);
    if (message)
        assert_non_null(strstr(er.message, message));
    pmux_frame_free(s, f);
    pmux_close(s);
}

/* Collects DATA until END into a malloc'd buffer. */
static uint8_t *collect(struct pmux_stream *s, size_t *len)
{
    size_t cap = 1024, n = 0;
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        struct proto_frame *f = recv_frame(s);
        if (f->h.type == PROTO_END) {
            pmux_frame_free(s, f);
            break;
        }
        if (f->h.type != PROTO_DATA)
            fail_msg("got %s in a stream, want DATA or END", proto_type_name(f->h.type));
        assert_true(f->h.length <= PROTO_DATA_MAX);
        if (n + f->h.length > cap) {
            while (n + f->h.length > cap)
                cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        memcpy(buf + n, f->payload, f->h.length);
        n += f->h.length;
        pmux_frame_free(s, f);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* DL_OPEN path -> the DL_INFO (asserted to be one); s stays open. */
static struct pmux_stream *dl_open(struct harness *h, const char *path, struct proto_dl_info *info)
{
    struct proto_dl_open o;
    struct proto_frame *f;
    struct pmux_stream *s;
    char *json = NULL;
    size_t len;
    memset(&o, 0, sizeof(o));
    snprintf(o.path, sizeof(o.path), "%s", path);
    assert_int_equal(proto_dl_open_encode(&o, &json, &len, NULL), 0);
    s = request(h, PROTO_DL_OPEN, json);
    free(json);
    if (!info)
        return s;
    f = recv_frame(s);
    if (f->h.type != PROTO_DL_INFO)
        fail_msg("DL_OPEN %s: got %s", path, proto_type_name(f->h.type));
    assert_int_equal(proto_dl_info_decode(f->payload, f->h.length, info, NULL), 0);
    pmux_frame_free(s, f);
    return s;
}

static uint8_t *dl_read(struct pmux_stream *s, uint64_t off, uint64_t len, size_t *got)
{
    struct proto_dl_read r = {off, len};
    char *json = NULL;
    size_t n;
    struct err e = ERR_INIT;
    assert_int_equal(proto_dl_read_encode(&r, &json, &n, NULL), 0);
    assert_int_equal(pmux_send(s, PROTO_DL_READ, json, n, &e), 0);
    free(json);
    return collect(s, got);
}

/* ---- cases ----------------------------------------------------------------------------- */

static void test_ping_and_log(void **state)
{
    struct harness *h = start();
    struct pmux_stream *s;
    struct proto_frame *f;
    int seen = 0;
    (void)state;
    s = request(h, PROTO_PING, NULL);
    f = recv_frame(s);
    assert_int_equal(f->h.type, PROTO_PONG);
    pmux_frame_free(s, f);
    pmux_close(s);
    /* the start-up line reached the service as a LOG frame */
    for (int i = 0; i < 600 && !seen; i++) {
        plat_mutex_lock(h->lock);
        seen = h->logs_seen >= 1000;
        plat_mutex_unlock(h->lock);
        if (!seen)
            plat_sleep_ms(100);
    }
    assert_true(seen);
    stop(h, 0);
}

static void test_listing(void **state)
{
    struct harness *h = start();
    struct proto_dl_info info;
    struct proto_dl_list l;
    struct pmux_stream *s;
    char *json = NULL;
    size_t n;
    uint8_t *html;
    (void)state;
    s = dl_open(h, "", &info);
    assert_string_equal(info.kind, "dir");
    assert_true(info.trailing_slash);
    memset(&l, 0, sizeof(l));
    snprintf(l.heading, sizeof(l.heading), "Index of /Downloads/");
    assert_int_equal(proto_dl_list_encode(&l, &json, &n, NULL), 0);
    assert_int_equal(pmux_send(s, PROTO_DL_LIST, json, n, NULL), 0);
    free(json);
    html = collect(s, &n);
    assert_true(n > 0);
    assert_non_null(strstr((char *)html, "Index of /Downloads/"));
    assert_non_null(strstr((char *)html, "a.txt"));
    assert_non_null(strstr((char *)html, "b &amp; c.txt"));
    assert_non_null(strstr((char *)html, "sub/"));
    free(html);
    pmux_close(s);

    /* a subfolder, and DL_READ on a directory is refused */
    s = dl_open(h, "sub/", &info);
    assert_string_equal(info.kind, "dir");
    assert_string_equal(info.name, "sub");
    json = NULL;
    {
        struct proto_dl_read r = {0, 10};
        assert_int_equal(proto_dl_read_encode(&r, &json, &n, NULL), 0);
    }
    assert_int_equal(pmux_send(s, PROTO_DL_READ, json, n, NULL), 0);
    free(json);
    expect_error(s, 400, NULL);
    stop(h, 0);
}

static void test_file_read(void **state)
{
    struct harness *h = start();
    struct proto_dl_info info;
    struct pmux_stream *s;
    size_t n, big = 3 * PROTO_DATA_MAX + 12345;
    uint8_t *data, *got;
    (void)state;
    s = dl_open(h, "a.txt", &info);
    assert_string_equal(info.kind, "file");
    assert_string_equal(info.name, "a.txt");
    assert_false(info.trailing_slash);
    assert_int_equal(info.size, 16);
    assert_true(info.mtime > 0);
    got = dl_read(s, 3, 5, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(got, "34567", 5);
    free(got);
    pmux_close(s);

    /* past the end: fewer bytes */
    s = dl_open(h, "a.txt", &info);
    got = dl_read(s, 10, 100, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(got, "abcdef", 6);
    free(got);
    pmux_close(s);

    /* a file of several DATA frames, more than one window: credit flows */
    data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = pattern_byte(i);
    put_file("big.bin", data, big);
    s = dl_open(h, "big.bin", &info);
    assert_int_equal(info.size, big);
    got = dl_read(s, 0, big, &n);
    assert_int_equal(n, big);
    assert_memory_equal(got, data, big);
    free(got);
    pmux_close(s);
    s = dl_open(h, "big.bin", &info);
    got = dl_read(s, PROTO_DATA_MAX - 1, PROTO_DATA_MAX + 2, &n);
    assert_int_equal(n, PROTO_DATA_MAX + 2);
    assert_memory_equal(got, data + PROTO_DATA_MAX - 1, n);
    free(got);
    pmux_close(s);
    free(data);
    stop(h, 0);
}

static void test_not_found(void **state)
{
    static const char *const bad[] = {
        "nope.txt",
        "../a.txt",
        "..",
        "%2e%2e/a.txt",
        "sub/../a.txt",
        "sub%2F..%2Fa.txt",
        "sub%5C..%5Ca.txt",
        "a.txt%00",
        "%00",
        "CON",
        "nul.txt",
        "%ZZ",
        "a.txt.",
        "..%2F..%2Fetc%2Fpasswd",
        "sub/nope/",
        "%EF%BC%8Fa.txt",
        "%C0%AE%C0%AE/a.txt",
    };
    struct harness *h = start();
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pmux_stream *s = dl_open(h, bad[i], NULL);
        print_message("DL_OPEN %s\n", bad[i]);
        expect_error(s, 404, "Not found");
    }
    stop(h, 0);
}

/* A Dropzone chunk as the browser sends it (boundary B). */
static char *dz_body(const char *uuid, int index, int count, size_t offset, size_t total,
                     size_t chunk, const char *name, const uint8_t *data, size_t len,
                     size_t *out_len)
{
    char head[2048];
    const char *tail = "\r\n--B--\r\n";
    int hn =
        snprintf(head, sizeof(head),
                 "--B\r\nContent-Disposition: form-data; name=\"dzuuid\"\r\n\r\n%s\r\n"
                 "--B\r\nContent-Disposition: form-data; name=\"dzchunkindex\"\r\n\r\n%d\r\n"
                 "--B\r\nContent-Disposition: form-data; name=\"dztotalfilesize\"\r\n\r\n%zu\r\n"
                 "--B\r\nContent-Disposition: form-data; name=\"dzchunksize\"\r\n\r\n%zu\r\n"
                 "--B\r\nContent-Disposition: form-data; name=\"dztotalchunkcount\"\r\n\r\n%d\r\n"
                 "--B\r\nContent-Disposition: form-data; name=\"dzchunkbyteoffset\"\r\n\r\n%zu\r\n"
                 "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n",
                 uuid, index, total, chunk, count, offset, name);
    char *body = malloc((size_t)hn + len + strlen(tail));
    assert_non_null(body);
    memcpy(body, head, (size_t)hn);
    memcpy(body + hn, data, len);
    memcpy(body + hn + len, tail, strlen(tail));
    *out_len = (size_t)hn + len + strlen(tail);
    return body;
}

static struct pmux_stream *upload_begin(struct harness *h, int64_t length)
{
    struct proto_upload_begin b;
    struct pmux_stream *s;
    char *json = NULL;
    size_t n;
    memset(&b, 0, sizeof(b));
    snprintf(b.content_type, sizeof(b.content_type), "multipart/form-data; boundary=B");
    b.content_length = length;
    assert_int_equal(proto_upload_begin_encode(&b, &json, &n, NULL), 0);
    s = request(h, PROTO_UPLOAD_BEGIN, json);
    free(json);
    return s;
}

static void expect_result(struct pmux_stream *s, int status, const char *message)
{
    struct proto_frame *f = recv_frame(s);
    struct proto_upload_result r;
    if (f->h.type != PROTO_UPLOAD_RESULT)
        fail_msg("got %s, want UPLOAD_RESULT", proto_type_name(f->h.type));
    assert_int_equal(proto_upload_result_decode(f->payload, f->h.length, &r, NULL), 0);
    if (r.status != status || strcmp(r.message, message) != 0)
        fail_msg("UPLOAD_RESULT %d %s, want %d %s", r.status, r.message, status, message);
    pmux_frame_free(s, f);
}

static void test_upload_chunks(void **state)
{
    struct harness *h = start();
    size_t total = 250000, chunk = 100000, len = 0;
    uint8_t *data = malloc(total);
    char path[2048], *got = NULL;
    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < total; i++)
        data[i] = pattern_byte(i * 3);
    for (int i = 0; i < 3; i++) {
        size_t off = (size_t)i * chunk, n = total - off < chunk ? total - off : chunk, blen;
        char *body = dz_body("u-123", i, 3, off, total, chunk, "up load.bin", data + off, n, &blen);
        struct pmux_stream *s = upload_begin(h, (int64_t)blen);
        struct err e = ERR_INIT;
        /* in uneven pieces, as an HTTP body arrives */
        size_t cut = blen / 3;
        assert_int_equal(pmux_write_data(s, body, cut, &e), 0);
        assert_int_equal(pmux_write_data(s, body + cut, blen - cut, &e), 0);
        assert_int_equal(pmux_send(s, PROTO_END, NULL, 0, &e), 0);
        expect_result(s, 200, "uploaded Chunk");
        pmux_close(s);
        free(body);
    }
    assert_int_equal(fs_join(g_dl, "up load.bin", path, sizeof(path), NULL), 0);
    assert_int_equal(fs_read_all(path, total + 1, &got, &len, NULL), 0);
    assert_int_equal(len, total);
    assert_memory_equal(got, data, total);
    free(got);
    free(data);
    stop(h, 0);
}

static void test_upload_fails_early(void **state)
{
    struct harness *h = start();
    uint8_t data[64];
    size_t blen;
    char *body;
    struct pmux_stream *s;
    struct err e = ERR_INIT;
    (void)state;
    memset(data, 'z', sizeof(data));
    body = dz_body("u-ex", 0, 1, 0, sizeof(data), 1000, "a.txt", data, sizeof(data), &blen);
    s = upload_begin(h, (int64_t)blen);
    assert_int_equal(pmux_write_data(s, body, blen, &e), 0);
    /* no END: the answer comes as soon as the file part shows the name is taken */
    expect_result(s, 400, "File already exists");
    pmux_close(s);
    free(body);

    /* a body that is not multipart at all */
    s = upload_begin(h, 5);
    assert_int_equal(pmux_write_data(s, "hello", 5, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_END, NULL, 0, &e), 0);
    {
        struct proto_frame *f = recv_frame(s);
        struct proto_upload_result r;
        assert_int_equal(f->h.type, PROTO_UPLOAD_RESULT);
        assert_int_equal(proto_upload_result_decode(f->payload, f->h.length, &r, NULL), 0);
        assert_int_equal(r.status, 400);
        pmux_frame_free(s, f);
    }
    pmux_close(s);

    /* a cancelled upload leaves nothing behind and the name stays free */
    body = dz_body("u-cx", 0, 1, 0, sizeof(data), 1000, "c.txt", data, sizeof(data), &blen);
    s = upload_begin(h, (int64_t)blen);
    assert_int_equal(pmux_write_data(s, body, blen / 2, &e), 0);
    pmux_close(s); /* CANCEL */
    free(body);
    {
        char path[2048];
        struct plat_file_info st;
        assert_int_equal(fs_join(g_dl, "c.txt", path, sizeof(path), NULL), 0);
        assert_int_equal(plat_path_stat(path, &st, NULL), ERR_NOT_FOUND);
    }
    stop(h, 0);
}

#ifdef __linux__
/* Open descriptors of this process that refer to path. */
static int fds_on(const char *path)
{
    struct plat_dir *d = NULL;
    struct plat_dir_entry ent;
    int n = 0;
    if (plat_dir_open("/proc/self/fd", &d, NULL) < 0)
        return -1;
    while (plat_dir_next(d, &ent, NULL) == 1) {
        char link[1100], target[2048];
        ssize_t k;
        snprintf(link, sizeof(link), "/proc/self/fd/%s", ent.name);
        k = readlink(link, target, sizeof(target) - 1);
        if (k > 0) {
            target[k] = 0;
            n += strcmp(target, path) == 0;
        }
    }
    plat_dir_close(d);
    return n;
}
#endif

static void test_cancel_download(void **state)
{
    struct harness *h = start();
    struct proto_dl_info info;
    struct pmux_stream *s;
    struct proto_frame *f;
    size_t big = 16u * 1024u * 1024u;
    uint8_t *data = calloc(1, big);
    char path[2048];
    (void)state;
    assert_non_null(data);
    put_file("huge.bin", data, big);
    free(data);
    assert_int_equal(fs_join(g_dl, "huge.bin", path, sizeof(path), NULL), 0);
    s = dl_open(h, "huge.bin", &info);
    {
        struct proto_dl_read r = {0, big};
        char *json = NULL;
        size_t n;
        assert_int_equal(proto_dl_read_encode(&r, &json, &n, NULL), 0);
        assert_int_equal(pmux_send(s, PROTO_DL_READ, json, n, NULL), 0);
        free(json);
    }
    f = recv_frame(s);
    assert_int_equal(f->h.type, PROTO_DATA);
    pmux_frame_free(s, f);
    pmux_close(s); /* CANCEL in the middle */

#ifdef __linux__
    {
        int open_fds = -1;
        for (int i = 0; i < 600 && open_fds != 0; i++) {
            open_fds = fds_on(path);
            if (open_fds != 0)
                plat_sleep_ms(100);
        }
        assert_int_equal(open_fds, 0); /* the worker closed the file */
    }
#endif
    /* the helper carries on */
    s = request(h, PROTO_PING, NULL);
    f = recv_frame(s);
    assert_int_equal(f->h.type, PROTO_PONG);
    pmux_frame_free(s, f);
    pmux_close(s);
    /* a DL_OPEN followed by CANCEL only */
    s = dl_open(h, "a.txt", &info);
    assert_int_equal(pmux_send(s, PROTO_CANCEL, NULL, 0, NULL), 0);
    pmux_close(s);
    stop(h, 0); /* and the channel end releases the rest */
}

struct client {
    struct harness *h;
    int index, failures;
};

/*
 * One DL_OPEN + DL_READ of a.txt from offset off, without cmocka assertions (they must not
 * run off the main thread): 0 when the right bytes came back.
 */
static int client_read(struct harness *h, uint64_t off)
{
    static const char digits[] = "0123456789abcdef";
    struct proto_dl_read r = {off, 16};
    struct pmux_stream *s = NULL;
    struct proto_frame *f = NULL;
    char *json = NULL;
    size_t n = 0, got = 0;
    int rc = -1, sent;

    plat_mutex_lock(h->open_lock); /* see request() */
    if (pmux_open(h->svc, &s, NULL) < 0) {
        plat_mutex_unlock(h->open_lock);
        return -1;
    }
    sent = pmux_send(s, PROTO_DL_OPEN, "{\"path\": \"a.txt\"}", 17, NULL);
    plat_mutex_unlock(h->open_lock);
    if (sent < 0 || pmux_recv(s, WAIT_MS, &f, NULL) < 0 || f->h.type != PROTO_DL_INFO)
        goto out;
    pmux_frame_free(s, f);
    f = NULL;
    if (proto_dl_read_encode(&r, &json, &n, NULL) < 0 ||
        pmux_send(s, PROTO_DL_READ, json, n, NULL) < 0)
        goto out;
    while (pmux_recv(s, WAIT_MS, &f, NULL) == 0 && f->h.type == PROTO_DATA) {
        if (got + f->h.length > 16 - off || memcmp(f->payload, &digits[off + got], f->h.length))
            goto out;
        got += f->h.length;
        pmux_frame_free(s, f);
        f = NULL;
    }
    if (f && f->h.type == PROTO_END && got == 16 - off)
        rc = 0;
out:
    if (f)
        pmux_frame_free(s, f);
    free(json);
    pmux_close(s);
    return rc;
}

static void client_thread(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < 12; i++)
        if (client_read(c->h, (uint64_t)((c->index + i) % 16)) < 0)
            c->failures++;
}

static void test_concurrent(void **state)
{
    struct harness *h = start();
    struct client cl[8];
    struct plat_thread *t[8];
    (void)state;
    for (int i = 0; i < 8; i++) {
        cl[i].h = h;
        cl[i].index = i;
        cl[i].failures = 0;
        assert_int_equal(plat_thread_start(&t[i], client_thread, &cl[i], NULL), 0);
    }
    for (int i = 0; i < 8; i++) {
        plat_thread_join(t[i]);
        assert_int_equal(cl[i].failures, 0);
    }
    stop(h, 0);
}

static void test_worker_bound(void **state)
{
    struct harness *h = start_with(2, NULL, 1);
    struct proto_dl_info info;
    struct pmux_stream *a, *b, *s;
    struct proto_frame *f;
    int ponged = 0;
    (void)state;
    a = dl_open(h, "a.txt", &info); /* two workers wait for DL_READ */
    b = dl_open(h, "a.txt", &info);
    s = request(h, PROTO_SHOT_INFO, "{}"); /* a request type the helper does not serve */
    expect_error(s, 503, "Too many requests");
    pmux_close(a);
    pmux_close(b);
    /* the workers end on CANCEL and make room again: 501 from a worker, not 503 */
    for (int i = 0; i < 600 && !ponged; i++) {
        struct proto_error er;
        s = request(h, PROTO_SHOT_INFO, "{}");
        f = recv_frame(s);
        assert_int_equal(f->h.type, PROTO_ERROR);
        assert_int_equal(proto_error_decode(f->payload, f->h.length, &er, NULL), 0);
        ponged = er.status == 501;
        pmux_frame_free(s, f);
        pmux_close(s);
        if (!ponged)
            plat_sleep_ms(100);
    }
    assert_true(ponged);
    stop(h, 0);
}

static void test_version_mismatch(void **state)
{
    struct harness *h = start_with(0, "0.0.1-other", 0);
    (void)state;
    plat_thread_join(h->helper);
    h->helper = NULL;
    assert_int_equal(h->helper_rc, ERR_PROTOCOL);
    assert_non_null(strstr(h->helper_err.msg, "0.0.1-other"));
    pmux_shutdown(h->svc);
    pmux_free(h->svc);
    plat_mutex_destroy(h->lock);
    plat_mutex_destroy(h->open_lock);
    free(h);
}

static void test_shot(void **state)
{
    struct harness *h = start();
    struct pmux_stream *s;
    struct proto_frame *f;
    struct proto_shot_info info;
    size_t n;
    uint8_t *png;
    (void)state;
    g_shot_mode = 0;
    s = request(h, PROTO_SHOT, "{\"width\": 300}");
    expect_error(s, 503, "no display");

    g_shot_mode = 1;
    s = request(h, PROTO_SHOT, "{\"width\": 300}");
    f = recv_frame(s);
    assert_int_equal(f->h.type, PROTO_SHOT_INFO);
    assert_int_equal(proto_shot_info_decode(f->payload, f->h.length, &info, NULL), 0);
    pmux_frame_free(s, f);
    assert_int_equal(info.width, 300);
    assert_int_equal(info.height, 150);
    assert_int_equal(info.size, g_shot_len);
    png = collect(s, &n);
    assert_int_equal(n, g_shot_len);
    for (size_t i = 0; i < n; i++)
        if (png[i] != pattern_byte(i + 7))
            fail_msg("screenshot byte %zu differs", i);
    free(png);
    pmux_close(s);

    s = request(h, PROTO_SHOT, "{\"width\": 3}");
    expect_error(s, 400, NULL);
    stop(h, 0);
}

static void test_unknown_request(void **state)
{
    struct harness *h = start();
    struct pmux_stream *s;
    (void)state;
    s = request(h, PROTO_SHOT_INFO, "{\"width\":1,\"height\":1,\"size\":0}");
    expect_error(s, 501, NULL);
    s = request(h, PROTO_DL_OPEN, "{\"nopath\": 1}");
    expect_error(s, 400, NULL);
    stop(h, 0);
}

static void test_no_downloads_folder(void **state)
{
    struct harness *h;
    struct pmux_stream *s;
    (void)state;
    td_remove_tree(g_dl);
    h = start();
    s = dl_open(h, "a.txt", NULL);
    expect_error(s, 503, NULL);
    stop(h, 0);
}

/* ---- the Downloads folder ------------------------------------------------------------ */

static void test_downloads_xdg_parse(void **state)
{
#ifdef _WIN32
    (void)state;
    UNIT_SKIP("user-dirs.dirs is a POSIX convention");
#else
    char out[256];
    (void)state;
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"$HOME/Dl\"\n", "/home/u", out, sizeof(out)), 1);
    assert_string_equal(out, "/home/u/Dl");
    assert_int_equal(hlp_downloads_parse_xdg("# c\n\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\n"
                                             "  XDG_DOWNLOAD_DIR=\"${HOME}/My \\\"Files\\\"\"\n",
                                             "/home/u/", out, sizeof(out)),
                     1);
    assert_string_equal(out, "/home/u/My \"Files\"");
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"/srv/dl\"", "/home/u", out, sizeof(out)), 1);
    assert_string_equal(out, "/srv/dl");
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=$HOME/plain # x\n", "/h", out, sizeof(out)), 1);
    assert_string_equal(out, "/h/plain");
    /* disabled, relative, absent, another variable's name */
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"$HOME/\"\n", "/home/u", out, sizeof(out)), 0);
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"Dl\"\n", "/home/u", out, sizeof(out)), 0);
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_MUSIC_DIR=\"$HOME/M\"\n", "/home/u", out, sizeof(out)), 0);
    assert_int_equal(
        hlp_downloads_parse_xdg("MY_XDG_DOWNLOAD_DIR=\"/x\"\n", "/home/u", out, sizeof(out)), 0);
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"$HOMEX/a\"\n", "/home/u", out, sizeof(out)), 0);
    /* the last assignment wins */
    assert_int_equal(hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"/a\"\nXDG_DOWNLOAD_DIR=\"/b\"\n",
                                             "/h", out, sizeof(out)),
                     1);
    assert_string_equal(out, "/b");
    assert_int_equal(
        hlp_downloads_parse_xdg("XDG_DOWNLOAD_DIR=\"$HOME/a-long-name\"\n", "/home/u", out, 10),
        ERR_TOO_LARGE);
#endif
}

#define XDG_FR                                                                                     \
    "XDG_DOWNLOAD_DIR=\"$HOME/T\xc3\xa9l\xc3\xa9"                                                  \
    "chargements\"\n"
#define XDG_XY "XDG_DOWNLOAD_DIR=\"$HOME/x/y\"\n"

static void test_downloads_find(void **state)
{
    char out[2048];
    struct plat_file_info st;
    (void)state;
#ifdef _WIN32
    /* the known folder of whoever runs the test: it exists (created if it was missing) */
    assert_int_equal(hlp_downloads_find(out, sizeof(out), NULL), 0);
    assert_int_equal(plat_path_stat(out, &st, NULL), 0);
    assert_true(st.is_dir);
#else
    char want[2048], conf[2048];
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char *old_xdg = getenv("XDG_CONFIG_HOME") ? strdup(getenv("XDG_CONFIG_HOME")) : NULL;
    struct err e = ERR_INIT;
    setenv("HOME", g_scratch, 1);
    unsetenv("XDG_CONFIG_HOME");
    /* no user-dirs.dirs: $HOME/Downloads, created */
    assert_int_equal(hlp_downloads_find(out, sizeof(out), &e), 0);
    snprintf(want, sizeof(want), "%s/Downloads", g_scratch);
    assert_string_equal(out, want);
    /* ~/.config/user-dirs.dirs */
    snprintf(conf, sizeof(conf), "%s/.config", g_scratch);
    assert_int_equal(plat_dir_create(conf, NULL), 0);
    snprintf(conf, sizeof(conf), "%s/.config/user-dirs.dirs", g_scratch);
    assert_int_equal(fs_write_atomic(conf, XDG_FR, strlen(XDG_FR), 0, NULL), 0);
    assert_int_equal(hlp_downloads_find(out, sizeof(out), &e), 0);
    snprintf(want, sizeof(want), "%s/Téléchargements", g_scratch);
    assert_string_equal(out, want);
    assert_int_equal(plat_path_stat(out, &st, NULL), 0);
    assert_true(st.is_dir);
    /* $XDG_CONFIG_HOME wins over ~/.config */
    snprintf(conf, sizeof(conf), "%s/xdg", g_scratch);
    assert_int_equal(plat_dir_create(conf, NULL), 0);
    setenv("XDG_CONFIG_HOME", conf, 1);
    snprintf(conf, sizeof(conf), "%s/xdg/user-dirs.dirs", g_scratch);
    assert_int_equal(fs_write_atomic(conf, XDG_XY, strlen(XDG_XY), 0, NULL), 0);
    assert_int_equal(hlp_downloads_find(out, sizeof(out), &e), 0);
    snprintf(want, sizeof(want), "%s/x/y", g_scratch);
    assert_string_equal(out, want);
    assert_int_equal(plat_path_stat(out, &st, NULL), 0);
    /* no HOME at all */
    unsetenv("HOME");
    assert_int_equal(hlp_downloads_find(out, sizeof(out), &e), ERR_NOT_FOUND);
    if (old_home)
        setenv("HOME", old_home, 1);
    if (old_xdg)
        setenv("XDG_CONFIG_HOME", old_xdg, 1);
    else
        unsetenv("XDG_CONFIG_HOME");
    free(old_home);
    free(old_xdg);
#endif
}

static void test_user_name(void **state)
{
    char user[256];
    struct err e = ERR_INIT;
    (void)state;
    if (hlp_user_name(user, sizeof(user), &e) < 0)
        fail_msg("%s", e.msg);
    assert_true(strlen(user) > 0);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_fails_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_downloads_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downloads_xdg_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downloads_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_name, setup, teardown),
    };
    return UNIT_RUN("helper_serve", tests, NULL, NULL);
}
