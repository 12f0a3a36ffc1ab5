/*
 * test_pmux.c - proto/pmux.c and the pchan of this platform, over pchan_pair(): handshake,
 * version mismatches, requests both ways, many streams at once, flow control (a sender
 * blocks while the receiver holds its data and resumes when it consumes), stall timeout,
 * CANCEL both ways, shutdown waking every waiter, frames for closed ids dropped, max_streams
 * -> ERROR 503, no handler -> ERROR 501, PING, LOG, the channel alone (shutdown wakes a
 * blocked read, a gone peer fails writes without SIGPIPE), and a hostile raw peer (window
 * violation, garbage, oversized and truncated frames: the channel closes, on_close once).
 * The bulk test moves 4 GiB (KASM_PMUX_BULK_MB overrides) through one stream between two
 * threads and checks that peak memory grows by less than 64 MiB (getrusage ru_maxrss;
 * Windows: GetProcessMemoryInfo PeakWorkingSetSize; about 8 s under Wine 8), once over the
 * channel alone and once through a shared window. The shared window (pshm.h): data through
 * its slots, the fallback to plain DATA when the reader holds every slot, slots coming back
 * when a stream is closed with frames queued, a hostile peer's slot references (out of range,
 * reused, freed twice, sent the wrong way), and the reader's handle that can neither map the
 * window writable nor resize it.
 * Runs natively and under Wine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>

#include <psapi.h>
#else
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

#include "fsutil.h"
#include "plat.h"
#include "pmux.h"
#include "pshm.h"
#include "testdir.h"

#define WAIT_MS 60000u /* generous: the machine is noisy */

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
/* ASan parks freed memory in a quarantine (256 MiB by default), which the bulk test would
 * see as growth; a small one keeps that test meaningful under the asan preset. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}
#endif

/* ---- a side of the channel: a mux plus what its callbacks saw ---- */

enum mode { MODE_ECHO, MODE_HOLD, MODE_CLOSE_NOW, MODE_NONE };

struct held {
    struct pmux_stream *s;
    struct proto_frame *first;
};

struct side {
    struct pmux *m;
    enum mode mode;
    struct plat_mutex *mu;
    atomic_int closes;
    struct err close_err;
    atomic_int requests;
    atomic_int cancels;
    atomic_int logs;
    char last_log[PROTO_TEXT_MAX + 32];
    struct plat_thread *threads[256];
    int nthreads;
    struct held held[64];
    int nheld;
};

struct echo_req {
    struct side *sd;
    struct pmux_stream *s;
    struct proto_frame *first;
};

static void echo_main(void *arg)
{
    struct echo_req *r = arg;
    struct pmux_stream *s = r->s;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    uint8_t *buf = NULL;
    size_t len = 0;

    pmux_frame_free(s, r->first);
    for (;;) {
        if (pmux_recv(s, UINT32_MAX, &f, &e) < 0)
            break;
        if (f->h.type == PROTO_DATA) {
            buf = realloc(buf, len + f->h.length);
            memcpy(buf + len, f->payload, f->h.length);
            len += f->h.length;
            pmux_frame_free(s, f);
            continue;
        }
        uint32_t type = f->h.type;
        pmux_frame_free(s, f);
        if (type == PROTO_END) {
            if (pmux_write_data(s, buf, len, &e) == 0)
                pmux_send(s, PROTO_END, NULL, 0, &e);
            break;
        }
        if (type == PROTO_CANCEL) {
            atomic_fetch_add(&r->sd->cancels, 1);
            break;
        }
    }
    free(buf);
    pmux_close(s);
    free(r);
}

static void on_request(void *ctx, struct pmux_stream *s, struct proto_frame *first)
{
    struct side *sd = ctx;

    atomic_fetch_add(&sd->requests, 1);
    if (sd->mode == MODE_CLOSE_NOW) {
        pmux_frame_free(s, first);
        pmux_close(s);
        return;
    }
    plat_mutex_lock(sd->mu);
    if (sd->mode == MODE_HOLD && sd->nheld < 64) {
        sd->held[sd->nheld].s = s;
        sd->held[sd->nheld].first = first;
        sd->nheld++;
        plat_mutex_unlock(sd->mu);
        return;
    }
    struct echo_req *r = calloc(1, sizeof(*r));
    r->sd = sd;
    r->s = s;
    r->first = first;
    assert_true(sd->nthreads < 256);
    assert_int_equal(plat_thread_start(&sd->threads[sd->nthreads++], echo_main, r, NULL), 0);
    plat_mutex_unlock(sd->mu);
}

static void on_log(void *ctx, const struct proto_log *msg)
{
    struct side *sd = ctx;
    plat_mutex_lock(sd->mu);
    snprintf(sd->last_log, sizeof(sd->last_log), "%s: %s", msg->level, msg->message);
    plat_mutex_unlock(sd->mu);
    atomic_fetch_add(&sd->logs, 1);
}

static void on_close(void *ctx, const struct err *why)
{
    struct side *sd = ctx;
    plat_mutex_lock(sd->mu);
    sd->close_err = *why;
    plat_mutex_unlock(sd->mu);
    atomic_fetch_add(&sd->closes, 1);
}

static void side_init(struct side *sd, enum mode mode)
{
    memset(sd, 0, sizeof(*sd));
    sd->mode = mode;
    assert_int_equal(plat_mutex_create(&sd->mu, NULL), 0);
}

static void side_config(struct side *sd, struct pmux_config *c, const char *role, int odd)
{
    memset(c, 0, sizeof(*c));
    proto_hello_init(&c->hello, role);
    snprintf(c->hello.user, sizeof(c->hello.user), "tester");
    c->initiator_odd = odd;
    c->on_request = sd->mode == MODE_NONE ? NULL : on_request;
    c->on_log = on_log;
    c->on_close = on_close;
    c->ctx = sd;
}

/* Frees the mux (joins the reader), then the held streams and the echo threads. */
static void side_free(struct side *sd)
{
    pmux_shutdown(sd->m);
    for (int i = 0; i < sd->nheld; i++) {
        pmux_frame_free(sd->held[i].s, sd->held[i].first);
        pmux_close(sd->held[i].s);
    }
    for (int i = 0; i < sd->nthreads; i++)
        plat_thread_join(sd->threads[i]);
    pmux_free(sd->m);
    plat_mutex_destroy(sd->mu);
}

static void wait_until(atomic_int *v, int want)
{
    uint64_t end = plat_monotonic_ms() + WAIT_MS;
    while (atomic_load(v) < want && plat_monotonic_ms() < end)
        plat_sleep_ms(5);
    assert_true(atomic_load(v) >= want);
}

/* Starts a (service, odd ids) and b (helper, even ids) with these configs, both ready. */
static void start_pair(struct side *a, struct pmux_config *ca, struct side *b,
                       struct pmux_config *cb)
{
    struct pchan *x, *y;
    struct err e = ERR_INIT;

    assert_int_equal(pchan_pair(&x, &y, &e), 0);
    if (pmux_start(x, ca, &a->m, &e) < 0)
        fail_msg("pmux_start: %s", e.msg);
    if (pmux_start(y, cb, &b->m, &e) < 0)
        fail_msg("pmux_start: %s", e.msg);
    if (pmux_wait_ready(a->m, WAIT_MS, NULL, &e) < 0)
        fail_msg("wait_ready a: %s", e.msg);
    if (pmux_wait_ready(b->m, WAIT_MS, NULL, &e) < 0)
        fail_msg("wait_ready b: %s", e.msg);
}

static void start_default(struct side *a, enum mode ma, struct side *b, enum mode mb,
                          uint32_t window)
{
    struct pmux_config ca, cb;
    side_init(a, ma);
    side_init(b, mb);
    side_config(a, &ca, "service", 1);
    side_config(b, &cb, "helper", 0);
    ca.window = cb.window = window;
    start_pair(a, &ca, b, &cb);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Sends a request with len bytes to an echo peer and checks the echo. */
static void echo_roundtrip(struct pmux *m, size_t len, uint32_t seed)
{
    struct pmux_stream *s;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    uint8_t *out = malloc(len ? len : 1), *in = malloc(len ? len : 1);
    size_t got = 0;

    fill_pattern(out, len, seed);
    if (pmux_open(m, &s, &e) < 0)
        fail_msg("open: %s", e.msg);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    if (pmux_write_data(s, out, len, &e) < 0)
        fail_msg("write_data: %s", e.msg);
    assert_int_equal(pmux_send(s, PROTO_END, NULL, 0, &e), 0);
    for (;;) {
        if (pmux_recv(s, WAIT_MS, &f, &e) < 0)
            fail_msg("recv: %s", e.msg);
        if (f->h.type == PROTO_DATA) {
            assert_true(got + f->h.length <= len);
            memcpy(in + got, f->payload, f->h.length);
            got += f->h.length;
            pmux_frame_free(s, f);
            continue;
        }
        assert_int_equal(f->h.type, PROTO_END);
        pmux_frame_free(s, f);
        break;
    }
    assert_int_equal(got, len);
    assert_memory_equal(in, out, len);
    pmux_close(s);
    free(in);
    free(out);
}

/* ---- tests ---- */

static void test_handshake(void **state)
{
    struct side a, b;
    struct pmux_config ca, cb;
    struct proto_hello pa, pb;
    struct err e = ERR_INIT;

    side_init(&a, MODE_ECHO);
    side_init(&b, MODE_ECHO);
    side_config(&a, &ca, "service", 1);
    side_config(&b, &cb, "helper", 0);
    cb.hello.session_id = 7;
    ca.window = 100000;
    start_pair(&a, &ca, &b, &cb);
    assert_int_equal(pmux_wait_ready(a.m, 0, &pa, &e), 0);
    assert_int_equal(pmux_wait_ready(b.m, 0, &pb, &e), 0);
    assert_string_equal(pa.role, "helper");
    assert_string_equal(pb.role, "service");
    assert_int_equal(pa.session_id, 7);
    assert_int_equal(pb.window, 100000);
    assert_int_equal(pa.window, 2 * 1024 * 1024); /* 0: the default (pmux.h) */
    assert_int_equal(pa.pid, plat_pid());
    assert_string_equal(pa.user, "tester");
    assert_string_equal(pa.version, KASM_VERSION);
    assert_true(pmux_alive(a.m));
    side_free(&a);
    side_free(&b);
    assert_int_equal(atomic_load(&a.closes), 1);
    assert_int_equal(atomic_load(&b.closes), 1);
}

static void test_version_mismatch(void **state)
{
    struct side a, b;
    struct pmux_config ca, cb;
    struct pchan *x, *y;
    struct err e = ERR_INIT, ea = ERR_INIT, eb = ERR_INIT;

    side_init(&a, MODE_ECHO);
    side_init(&b, MODE_ECHO);
    side_config(&a, &ca, "service", 1);
    side_config(&b, &cb, "helper", 0);
    snprintf(cb.hello.version, sizeof(cb.hello.version), "0.0.1-old");
    assert_int_equal(pchan_pair(&x, &y, &e), 0);
    assert_int_equal(pmux_start(x, &ca, &a.m, &e), 0);
    assert_int_equal(pmux_start(y, &cb, &b.m, &e), 0);
    assert_int_equal(pmux_wait_ready(a.m, WAIT_MS, NULL, &ea), ERR_PROTOCOL);
    assert_int_equal(pmux_wait_ready(b.m, WAIT_MS, NULL, &eb), ERR_PROTOCOL);
    print_message("service side: %s\nhelper side: %s\n", ea.msg, eb.msg);
    for (int i = 0; i < 2; i++) {
        const char *msg = i ? eb.msg : ea.msg;
        assert_non_null(strstr(msg, "0.0.1-old"));
        assert_non_null(strstr(msg, KASM_VERSION));
        assert_non_null(strstr(msg, "reinstall"));
    }
    wait_until(&a.closes, 1);
    wait_until(&b.closes, 1);
    assert_int_equal(a.close_err.code, ERR_PROTOCOL);
    assert_false(pmux_alive(a.m));
    struct pmux_stream *s;
    assert_int_equal(pmux_open(a.m, &s, &e), ERR_IO);
    side_free(&a);
    side_free(&b);
    assert_int_equal(atomic_load(&a.closes), 1);
    assert_int_equal(atomic_load(&b.closes), 1);
}

/* ---- a raw peer, speaking frames by hand ---- */

static void raw_send(struct pchan *c, uint32_t type, uint32_t id, const void *p, size_t len)
{
    uint8_t *frame = malloc(PROTO_HEADER_SIZE + len);
    struct err e = ERR_INIT;

    /* One write: a peer that rejects the header may close the channel before a second. */
    assert_non_null(frame);
    proto_header_encode(frame, type, (uint32_t)len, id);
    if (len)
        memcpy(frame + PROTO_HEADER_SIZE, p, len);
    assert_int_equal(pchan_write_all(c, frame, PROTO_HEADER_SIZE + len, &e), 0);
    free(frame);
}

/* Reads one frame (payload into buf, up to cap); returns its header. */
static struct proto_header raw_recv(struct pchan *c, void *buf, size_t cap)
{
    uint8_t hb[PROTO_HEADER_SIZE];
    struct proto_header h;
    struct err e = ERR_INIT;

    if (pchan_read_full(c, hb, sizeof(hb), &e) < 0)
        fail_msg("raw read: %s", e.msg);
    assert_int_equal(proto_header_decode(hb, &h, &e), 0);
    assert_true(h.length <= cap);
    if (h.length)
        assert_int_equal(pchan_read_full(c, buf, h.length, &e), 0);
    return h;
}

/* A mux `a` (service, odd ids, window) against a raw helper that has done the handshake. */
static void start_raw(struct side *a, enum mode mode, uint32_t window, struct pchan **raw)
{
    struct pmux_config ca;
    struct pchan *x;
    struct proto_hello h;
    struct err e = ERR_INIT;
    char *json;
    size_t len;
    static char buf[PROTO_JSON_MAX];

    side_init(a, mode);
    side_config(a, &ca, "service", 1);
    ca.window = window;
    assert_int_equal(pchan_pair(&x, raw, &e), 0);
    assert_int_equal(pmux_start(x, &ca, &a->m, &e), 0);
    struct proto_header hd = raw_recv(*raw, buf, sizeof(buf));
    assert_int_equal(hd.type, PROTO_HELLO);
    assert_int_equal(proto_hello_decode(buf, hd.length, &h, &e), 0);
    assert_int_equal(h.window, window);
    proto_hello_init(&h, "helper");
    h.window = 65536;
    assert_int_equal(proto_hello_encode(&h, &json, &len, &e), 0);
    raw_send(*raw, PROTO_HELLO, 0, json, len);
    free(json);
    assert_int_equal(pmux_wait_ready(a->m, WAIT_MS, NULL, &e), 0);
}

static void test_proto_version_mismatch(void **state)
{
    struct side a;
    struct pmux_config ca;
    struct pchan *x, *raw;
    struct err e = ERR_INIT;
    uint8_t h[PROTO_HEADER_SIZE], frame[PROTO_HEADER_SIZE + 2];

    side_init(&a, MODE_ECHO);
    side_config(&a, &ca, "service", 1);
    assert_int_equal(pchan_pair(&x, &raw, &e), 0);
    assert_int_equal(pmux_start(x, &ca, &a.m, &e), 0);
    proto_header_encode(h, PROTO_HELLO, 2, 0);
    h[0] = 2; /* a future protocol */
    memcpy(frame, h, sizeof(h));
    memcpy(frame + sizeof(h), "{}", 2);
    /* One write: the service may close the channel as soon as it has read the header. */
    assert_int_equal(pchan_write_all(raw, frame, sizeof(frame), &e), 0);
    assert_int_equal(pmux_wait_ready(a.m, WAIT_MS, NULL, &e), ERR_PROTOCOL);
    assert_non_null(strstr(e.msg, "version 2"));
    assert_non_null(strstr(e.msg, "version 1"));
    wait_until(&a.closes, 1);
    side_free(&a);
    pchan_close(raw);
    assert_int_equal(atomic_load(&a.closes), 1);
}

static void test_hello_missing(void **state)
{
    struct side a;
    struct pmux_config ca;
    struct pchan *x, *raw;
    struct err e = ERR_INIT;

    side_init(&a, MODE_ECHO);
    side_config(&a, &ca, "service", 1);
    assert_int_equal(pchan_pair(&x, &raw, &e), 0);
    assert_int_equal(pmux_start(x, &ca, &a.m, &e), 0);
    raw_send(raw, PROTO_PING, 2, NULL, 0);
    assert_int_equal(pmux_wait_ready(a.m, WAIT_MS, NULL, &e), ERR_PROTOCOL);
    assert_non_null(strstr(e.msg, "before HELLO"));
    side_free(&a);
    pchan_close(raw);
    assert_int_equal(atomic_load(&a.closes), 1);
}

static void test_wait_ready_timeout(void **state)
{
    struct side a;
    struct pmux_config ca;
    struct pchan *x, *raw;
    struct err e = ERR_INIT;

    side_init(&a, MODE_ECHO);
    side_config(&a, &ca, "service", 1);
    assert_int_equal(pchan_pair(&x, &raw, &e), 0);
    assert_int_equal(pmux_start(x, &ca, &a.m, &e), 0);
    assert_int_equal(pmux_wait_ready(a.m, 50, NULL, &e), ERR_TIMEOUT);
    side_free(&a);
    pchan_close(raw);
}

static void test_requests_both_ways(void **state)
{
    struct side a, b;
    struct pmux_stream *s1, *s2, *t1;
    struct err e = ERR_INIT;

    start_default(&a, MODE_ECHO, &b, MODE_ECHO, 64 * 1024);
    echo_roundtrip(a.m, 1000, 1);
    echo_roundtrip(b.m, 300 * 1024, 2);
    echo_roundtrip(a.m, 0, 3);
    echo_roundtrip(b.m, PROTO_DATA_MAX * 3 + 17, 4);
    assert_int_equal(atomic_load(&b.requests), 2);
    assert_int_equal(atomic_load(&a.requests), 2);
    /* Id spaces: the service opens odd ids, the helper even ones, increasing. */
    assert_int_equal(pmux_open(a.m, &s1, &e), 0);
    assert_int_equal(pmux_open(a.m, &s2, &e), 0);
    assert_int_equal(pmux_open(b.m, &t1, &e), 0);
    assert_int_equal(pmux_stream_id(s1) % 2, 1);
    assert_int_equal(pmux_stream_id(s2), pmux_stream_id(s1) + 2);
    assert_int_equal(pmux_stream_id(t1) % 2, 0);
    /* Unopened on the wire: closing sends CANCEL which the peer drops (nothing to answer). */
    pmux_close(s1);
    pmux_close(s2);
    pmux_close(t1);
    echo_roundtrip(a.m, 10, 5);
    assert_int_equal(atomic_load(&b.requests), 3);
    side_free(&a);
    side_free(&b);
}

struct many_arg {
    struct pmux *m;
    uint32_t seed;
    atomic_int *done;
};

static void many_main(void *arg)
{
    struct many_arg *ma = arg;
    for (int i = 0; i < 3; i++)
        echo_roundtrip(ma->m, 20000 + (ma->seed * 7919u) % 200000, ma->seed * 10 + (uint32_t)i);
    atomic_fetch_add(ma->done, 1);
}

static void test_many_streams(void **state)
{
    struct side a, b;
    enum { N = 24 };
    struct plat_thread *t[N];
    struct many_arg args[N];
    atomic_int done;

    atomic_init(&done, 0);
    start_default(&a, MODE_ECHO, &b, MODE_ECHO, 32 * 1024);
    for (int i = 0; i < N; i++) {
        args[i].m = (i % 3 == 0) ? b.m : a.m; /* some from the helper side too */
        args[i].seed = (uint32_t)i + 1;
        args[i].done = &done;
        assert_int_equal(plat_thread_start(&t[i], many_main, &args[i], NULL), 0);
    }
    for (int i = 0; i < N; i++)
        plat_thread_join(t[i]);
    assert_int_equal(atomic_load(&done), N);
    assert_int_equal(atomic_load(&a.requests) + atomic_load(&b.requests), N * 3);
    side_free(&a);
    side_free(&b);
}

struct writer_arg {
    struct pmux_stream *s;
    const uint8_t *data;
    size_t len, chunk;
    atomic_int progress; /* chunks written */
    atomic_int finished;
    int rc;
    struct err e;
};

static void writer_main(void *arg)
{
    struct writer_arg *w = arg;
    size_t off = 0;

    w->rc = 0;
    while (off < w->len) {
        size_t n = w->len - off < w->chunk ? w->len - off : w->chunk;
        w->rc = pmux_write_data(w->s, w->data + off, n, &w->e);
        if (w->rc < 0)
            break;
        off += n;
        atomic_fetch_add(&w->progress, 1);
    }
    atomic_store(&w->finished, 1);
}

static struct held hold_wait(struct side *sd, int idx)
{
    uint64_t end = plat_monotonic_ms() + WAIT_MS;
    struct held h = {0};
    for (;;) {
        plat_mutex_lock(sd->mu);
        if (sd->nheld > idx)
            h = sd->held[idx];
        plat_mutex_unlock(sd->mu);
        if (h.s || plat_monotonic_ms() > end)
            break;
        plat_sleep_ms(5);
    }
    assert_non_null(h.s);
    return h;
}

static void test_flow_control(void **state)
{
    struct side a, b;
    const uint32_t window = 64 * 1024;
    struct writer_arg w;
    struct plat_thread *t;
    struct pmux_stream *s, *p;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    size_t len = 4 * window, got = 0;
    uint8_t *data = malloc(len), *in = malloc(len);

    fill_pattern(data, len, 99);
    start_default(&a, MODE_ECHO, &b, MODE_HOLD, window);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    memset(&w, 0, sizeof(w));
    w.s = s;
    w.data = data;
    w.len = len;
    w.chunk = 4096;
    assert_int_equal(plat_thread_start(&t, writer_main, &w, NULL), 0);
    struct held h = hold_wait(&b, 0);

    /* The sender gets exactly one window out, then blocks. */
    wait_until(&w.progress, (int)(window / w.chunk));
    plat_sleep_ms(300);
    assert_int_equal(atomic_load(&w.progress), (int)(window / w.chunk));
    assert_false(atomic_load(&w.finished));

    /* The reader is not blocked by the held stream: another request still works. */
    assert_int_equal(pmux_open(a.m, &p, &e), 0);
    assert_int_equal(pmux_send(p, PROTO_PING, NULL, 0, &e), 0);
    assert_int_equal(pmux_recv(p, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_PONG);
    pmux_frame_free(p, f);
    pmux_close(p);

    /* Consuming resumes the sender. */
    pmux_frame_free(h.s, h.first);
    h.first = NULL;
    plat_mutex_lock(b.mu);
    b.held[0].first = NULL;
    plat_mutex_unlock(b.mu);
    while (got < len) {
        if (pmux_recv(h.s, WAIT_MS, &f, &e) < 0)
            fail_msg("recv: %s", e.msg);
        assert_int_equal(f->h.type, PROTO_DATA);
        memcpy(in + got, f->payload, f->h.length);
        got += f->h.length;
        pmux_frame_free(h.s, f);
    }
    plat_thread_join(t);
    assert_int_equal(w.rc, 0);
    assert_memory_equal(in, data, len);
    assert_int_equal(pmux_send(s, PROTO_END, NULL, 0, &e), 0);
    assert_int_equal(pmux_recv(h.s, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_END);
    pmux_frame_free(h.s, f);
    pmux_close(s);
    side_free(&a);
    side_free(&b);
    free(data);
    free(in);
}

static void test_stall_timeout(void **state)
{
    struct side a, b;
    struct pmux_config ca, cb;
    struct pmux_stream *s;
    struct err e = ERR_INIT;
    size_t len = 3 * 65536;
    uint8_t *data = calloc(1, len);

    side_init(&a, MODE_ECHO);
    side_init(&b, MODE_HOLD);
    side_config(&a, &ca, "service", 1);
    side_config(&b, &cb, "helper", 0);
    ca.stall_timeout_ms = 300;
    cb.window = 65536;
    start_pair(&a, &ca, &b, &cb);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    assert_int_equal(pmux_write_data(s, data, len, &e), ERR_TIMEOUT);
    assert_non_null(strstr(e.msg, "stalled"));
    assert_true(pmux_alive(a.m));
    pmux_close(s);
    side_free(&a);
    side_free(&b);
    free(data);
}

static void test_cancel_by_sender(void **state)
{
    struct side a, b;
    struct pmux_stream *s;
    struct err e = ERR_INIT;
    uint8_t data[1000] = {0};

    start_default(&a, MODE_ECHO, &b, MODE_ECHO, 0);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    assert_int_equal(pmux_write_data(s, data, sizeof(data), &e), 0);
    pmux_close(s); /* unfinished: CANCEL goes out */
    wait_until(&b.cancels, 1);
    echo_roundtrip(a.m, 10, 1); /* the channel is fine */
    side_free(&a);
    side_free(&b);
}

static void test_cancel_by_receiver(void **state)
{
    struct side a, b;
    struct pmux_stream *s;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    struct writer_arg w;
    struct plat_thread *t;
    size_t len = 8u << 20;
    uint8_t *data = calloc(1, len);

    start_default(&a, MODE_ECHO, &b, MODE_HOLD, 65536);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    memset(&w, 0, sizeof(w));
    w.s = s;
    w.data = data;
    w.len = len;
    w.chunk = len;
    assert_int_equal(plat_thread_start(&t, writer_main, &w, NULL), 0);
    struct held h = hold_wait(&b, 0);
    /* The helper answers early (UPLOAD_RESULT) and closes: the sender stops. */
    static const char result[] = "{\"status\":507,\"message\":\"disk full\"}";
    assert_int_equal(pmux_send(h.s, PROTO_UPLOAD_RESULT, result, strlen(result), &e), 0);
    plat_thread_join(t);
    assert_int_equal(w.rc, ERR_CANCELLED);
    assert_int_equal(pmux_recv(s, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_UPLOAD_RESULT);
    pmux_frame_free(s, f);
    pmux_close(s); /* finished: no CANCEL */
    /* And a CANCEL from the peer stops a sender the same way. */
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    memset(&w, 0, sizeof(w));
    w.s = s;
    w.data = data;
    w.len = len;
    w.chunk = len;
    assert_int_equal(plat_thread_start(&t, writer_main, &w, NULL), 0);
    h = hold_wait(&b, 1);
    assert_int_equal(pmux_send(h.s, PROTO_CANCEL, NULL, 0, &e), 0);
    plat_thread_join(t);
    assert_int_equal(w.rc, ERR_CANCELLED);
    assert_int_equal(pmux_recv(s, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_CANCEL);
    pmux_frame_free(s, f);
    pmux_close(s);
    side_free(&a);
    side_free(&b);
    free(data);
}

struct recv_arg {
    struct pmux_stream *s;
    int rc;
    struct err e;
};

static void recv_main(void *arg)
{
    struct recv_arg *r = arg;
    struct proto_frame *f = NULL;
    r->rc = pmux_recv(r->s, UINT32_MAX, &f, &r->e);
    pmux_frame_free(r->s, f);
}

static void test_shutdown_wakes_all(void **state)
{
    struct side a, b;
    struct pmux_stream *s1, *s2;
    struct plat_thread *t1, *t2;
    struct recv_arg r;
    struct writer_arg w;
    struct err e = ERR_INIT;
    size_t len = 1u << 20;
    uint8_t *data = calloc(1, len);

    start_default(&a, MODE_HOLD, &b, MODE_HOLD, 65536);
    assert_int_equal(pmux_open(a.m, &s1, &e), 0);
    assert_int_equal(pmux_open(a.m, &s2, &e), 0);
    assert_int_equal(pmux_send(s1, PROTO_SHOT, "{\"width\":0}", 11, &e), 0);
    assert_int_equal(pmux_send(s2, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    memset(&r, 0, sizeof(r));
    r.s = s1;
    memset(&w, 0, sizeof(w));
    w.s = s2;
    w.data = data;
    w.len = len;
    w.chunk = len;
    assert_int_equal(plat_thread_start(&t1, recv_main, &r, NULL), 0);
    assert_int_equal(plat_thread_start(&t2, writer_main, &w, NULL), 0);
    hold_wait(&b, 1);
    plat_sleep_ms(100); /* let both block (not required for correctness) */
    pmux_shutdown(a.m);
    pmux_shutdown(a.m); /* idempotent */
    plat_thread_join(t1);
    plat_thread_join(t2);
    assert_int_equal(r.rc, ERR_IO);
    assert_int_equal(w.rc, ERR_IO);
    wait_until(&a.closes, 1);
    assert_non_null(strstr(a.close_err.msg, "shut down"));
    assert_false(pmux_alive(a.m));
    assert_int_equal(pmux_send(s1, PROTO_END, NULL, 0, &e), ERR_IO);
    pmux_close(s1);
    pmux_close(s2);
    side_free(&a);
    side_free(&b);
    assert_int_equal(atomic_load(&a.closes), 1);
    free(data);
}

static void test_closed_ids_dropped(void **state)
{
    struct side a;
    struct pchan *raw;
    static uint8_t buf[PROTO_JSON_MAX];
    struct proto_header h;

    start_raw(&a, MODE_CLOSE_NOW, 65536, &raw);
    /* A request the mux's handler closes at once: CANCEL comes back. */
    raw_send(raw, PROTO_DL_OPEN, 2, "{\"path\":\"x\"}", 12);
    h = raw_recv(raw, buf, sizeof(buf));
    assert_int_equal(h.type, PROTO_CANCEL);
    assert_int_equal(h.request_id, 2);
    /* Late frames for id 2 (even a new request frame) and for ids the mux never opened are
     * dropped: no second request, no answer, the channel stays up. */
    raw_send(raw, PROTO_DATA, 2, "abc", 3);
    raw_send(raw, PROTO_DL_OPEN, 2, "{\"path\":\"y\"}", 12);
    raw_send(raw, PROTO_END, 2, NULL, 0);
    raw_send(raw, PROTO_DATA, 1, "abc", 3); /* the mux's own id space, never opened */
    raw_send(raw, PROTO_CREDIT, 3, "\x10\0\0\0", 4);
    raw_send(raw, PROTO_CANCEL, 6, NULL, 0); /* opened and abandoned by the peer */
    raw_send(raw, PROTO_PING, 8, NULL, 0);
    h = raw_recv(raw, buf, sizeof(buf));
    assert_int_equal(h.type, PROTO_PONG);
    assert_int_equal(h.request_id, 8);
    assert_int_equal(atomic_load(&a.requests), 1);
    assert_true(pmux_alive(a.m));
    /* Used ids stay dead: PING on 6 (used by the CANCEL above) gets no PONG; 10 does. */
    raw_send(raw, PROTO_PING, 6, NULL, 0);
    raw_send(raw, PROTO_PING, 10, NULL, 0);
    h = raw_recv(raw, buf, sizeof(buf));
    assert_int_equal(h.request_id, 10);
    assert_int_equal(atomic_load(&a.closes), 0);
    side_free(&a);
    pchan_close(raw);
}

/* A raw peer that breaks the protocol after the handshake: the mux closes, on_close once,
 * an open stream's waiters get ERR_IO. */
static void expect_violation(void (*act)(struct pchan *raw), const char *why)
{
    struct side a;
    struct pchan *raw;
    struct pmux_stream *s;
    struct proto_frame *f;
    struct err e = ERR_INIT;

    start_raw(&a, MODE_HOLD, 65536, &raw);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    act(raw);
    assert_int_equal(pmux_recv(s, WAIT_MS, &f, &e), ERR_IO);
    assert_non_null(strstr(e.msg, why));
    wait_until(&a.closes, 1);
    print_message("closed: %s\n", a.close_err.msg);
    assert_non_null(strstr(a.close_err.msg, why));
    assert_false(pmux_alive(a.m));
    assert_int_equal(pmux_write_data(s, "x", 1, &e), ERR_IO);
    pmux_close(s);
    side_free(&a);
    pchan_close(raw);
    assert_int_equal(atomic_load(&a.closes), 1);
}

static void act_window(struct pchan *raw)
{
    static uint8_t chunk[16384];
    raw_send(raw, PROTO_UPLOAD_BEGIN, 2, "{}", 2);
    for (int i = 0; i < 5; i++) /* 80 KiB into a 64 KiB window */
        raw_send(raw, PROTO_DATA, 2, chunk, sizeof(chunk));
}

static void act_bad_magic(struct pchan *raw)
{
    struct err e = ERR_INIT;
    assert_int_equal(pchan_write_all(raw, "GARBAGEGARBAGE!!", 16, &e), 0);
}

static void act_oversized(struct pchan *raw)
{
    uint8_t h[PROTO_HEADER_SIZE];
    struct err e = ERR_INIT;
    proto_header_encode(h, PROTO_DATA, PROTO_DATA_MAX + 1, 2);
    assert_int_equal(pchan_write_all(raw, h, sizeof(h), &e), 0);
}

static void act_huge_json(struct pchan *raw)
{
    uint8_t h[PROTO_HEADER_SIZE];
    struct err e = ERR_INIT;
    proto_header_encode(h, PROTO_DL_OPEN, 0xfffffff0u, 2);
    assert_int_equal(pchan_write_all(raw, h, sizeof(h), &e), 0);
}

static void act_unknown_type(struct pchan *raw)
{
    raw_send(raw, 99, 2, NULL, 0);
}

#ifndef _WIN32
static void act_short_header(struct pchan *raw)
{
    struct err e = ERR_INIT;
    uint8_t h[PROTO_HEADER_SIZE];
    proto_header_encode(h, PROTO_PING, 0, 2);
    assert_int_equal(pchan_write_all(raw, h, 7, &e), 0);
    pchan_shutdown(raw); /* POSIX: EOF at the peer now. Windows: at pchan_close. */
}
#endif

static void act_bad_credit(struct pchan *raw)
{
    raw_send(raw, PROTO_CREDIT, 1, "\xff\xff\0\0", 4); /* credit for bytes never sent */
}

static void act_second_hello(struct pchan *raw)
{
    raw_send(raw, PROTO_HELLO, 0, "{}", 2);
}

static void act_tiny_frames(struct pchan *raw)
{
    uint8_t frame[PROTO_HEADER_SIZE + 1];

    raw_send(raw, PROTO_UPLOAD_BEGIN, 2, "{}", 2);
    proto_header_encode(frame, PROTO_DATA, 1, 2);
    frame[PROTO_HEADER_SIZE] = 'x';
    /* 4200 bytes: well inside the window, but too many frames; the mux hangs up part way */
    for (int i = 0; i < 4200; i++)
        if (pchan_write_all(raw, frame, sizeof(frame), NULL) < 0)
            break;
}

static void test_violation_window(void **state)
{
    expect_violation(act_window, "beyond the window");
}
static void test_violation_bad_magic(void **state)
{
    expect_violation(act_bad_magic, "not a kasm-open-agent channel");
}
static void test_violation_oversized(void **state)
{
    expect_violation(act_oversized, "exceeds its limit");
}
static void test_violation_huge_json(void **state)
{
    expect_violation(act_huge_json, "exceeds its limit");
}
static void test_violation_unknown_type(void **state)
{
    expect_violation(act_unknown_type, "unknown frame type");
}
static void test_violation_bad_credit(void **state)
{
    expect_violation(act_bad_credit, "more than were sent");
}
static void test_violation_second_hello(void **state)
{
    expect_violation(act_second_hello, "second HELLO");
}
static void test_violation_tiny_frames(void **state)
{
    expect_violation(act_tiny_frames, "DATA frames on request");
}

static void test_short_read(void **state)
{
#ifdef _WIN32
    UNIT_SKIP("pchan_shutdown on Windows does not signal EOF to the peer until it is closed; "
              "covered by test_truncated_payload");
#else
    expect_violation(act_short_header, "closed the channel");
#endif
}

static void test_truncated_payload(void **state)
{
    struct side a;
    struct pchan *raw;
    struct pmux_stream *s;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    uint8_t h[PROTO_HEADER_SIZE];

    start_raw(&a, MODE_HOLD, 65536, &raw);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    proto_header_encode(h, PROTO_DL_OPEN, 100, 2);
    assert_int_equal(pchan_write_all(raw, h, sizeof(h), &e), 0);
    assert_int_equal(pchan_write_all(raw, "{\"path\":", 8, &e), 0);
    pchan_close(raw); /* the peer dies mid-frame */
    assert_int_equal(pmux_recv(s, WAIT_MS, &f, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "closed the channel"));
    wait_until(&a.closes, 1);
    assert_int_equal(atomic_load(&a.requests), 0);
    pmux_close(s);
    side_free(&a);
    assert_int_equal(atomic_load(&a.closes), 1);
}

static void test_max_streams(void **state)
{
    struct side a, b;
    struct pmux_config ca, cb;
    struct pmux_stream *s[4], *extra;
    struct proto_frame *f;
    struct proto_error pe;
    struct err e = ERR_INIT;

    side_init(&a, MODE_ECHO);
    side_init(&b, MODE_HOLD);
    side_config(&a, &ca, "service", 1);
    side_config(&b, &cb, "helper", 0);
    ca.max_streams = 4;
    cb.max_streams = 2;
    start_pair(&a, &ca, &b, &cb);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pmux_open(a.m, &s[i], &e), 0);
        assert_int_equal(pmux_send(s[i], PROTO_SHOT, "{\"width\":0}", 11, &e), 0);
    }
    assert_int_equal(pmux_open(a.m, &extra, &e), ERR_BUSY);
    for (int i = 2; i < 4; i++) {
        assert_int_equal(pmux_recv(s[i], WAIT_MS, &f, &e), 0);
        assert_int_equal(f->h.type, PROTO_ERROR);
        assert_int_equal(proto_error_decode(f->payload, f->h.length, &pe, &e), 0);
        assert_int_equal(pe.status, 503);
        assert_non_null(strstr(pe.message, "too many"));
        pmux_frame_free(s[i], f);
    }
    assert_int_equal(atomic_load(&b.requests), 2);
    /* The held two get nothing; after closing one, a new request gets through. */
    assert_int_equal(pmux_recv(s[0], 50, &f, &e), ERR_TIMEOUT);
    for (int i = 0; i < 4; i++)
        pmux_close(s[i]);
    plat_mutex_lock(b.mu);
    struct held h = b.held[0];
    b.held[0] = b.held[--b.nheld];
    plat_mutex_unlock(b.mu);
    pmux_frame_free(h.s, h.first);
    pmux_close(h.s);
    assert_int_equal(pmux_open(a.m, &extra, &e), 0);
    assert_int_equal(pmux_send(extra, PROTO_SHOT, "{\"width\":0}", 11, &e), 0);
    hold_wait(&b, 1);
    assert_int_equal(atomic_load(&b.requests), 3);
    pmux_close(extra);
    side_free(&a);
    side_free(&b);
}

static void test_no_handler(void **state)
{
    struct side a, b;
    struct pmux_stream *s;
    struct proto_frame *f;
    struct proto_error pe;
    struct err e = ERR_INIT;

    start_default(&a, MODE_ECHO, &b, MODE_NONE, 0);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_DL_OPEN, "{\"path\":\"\"}", 11, &e), 0);
    assert_int_equal(pmux_recv(s, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_ERROR);
    assert_int_equal(proto_error_decode(f->payload, f->h.length, &pe, &e), 0);
    assert_int_equal(pe.status, 501);
    pmux_frame_free(s, f);
    pmux_close(s);
    side_free(&a);
    side_free(&b);
}

static void test_ping_log_and_send_checks(void **state)
{
    struct side a, b;
    struct pmux_stream *s;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    static char big[PROTO_JSON_MAX + 1];

    start_default(&a, MODE_ECHO, &b, MODE_ECHO, 0);
    assert_int_equal(pmux_open(b.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_PING, NULL, 0, &e), 0);
    assert_int_equal(pmux_recv(s, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_PONG);
    assert_int_equal(f->h.request_id, pmux_stream_id(s));
    pmux_frame_free(s, f);
    assert_int_equal(pmux_send(s, PROTO_DATA, "x", 1, &e), ERR_INVALID);
    assert_int_equal(pmux_send(s, PROTO_CREDIT, "xxxx", 4, &e), ERR_INVALID);
    assert_int_equal(pmux_send(s, PROTO_HELLO, "{}", 2, &e), ERR_INVALID);
    assert_int_equal(pmux_send(s, 99, NULL, 0, &e), ERR_INVALID);
    assert_int_equal(pmux_send(s, PROTO_END, "x", 1, &e), ERR_TOO_LARGE);
    assert_int_equal(pmux_send(s, PROTO_DL_OPEN, big, sizeof(big), &e), ERR_TOO_LARGE);
    assert_int_equal(pmux_send_error(s, 42, "bad status", &e), ERR_INVALID);
    pmux_close(s);
    pmux_log(b.m, "warning", "capture failed");
    wait_until(&a.logs, 1);
    assert_string_equal(a.last_log, "warning: capture failed");
    pmux_log(b.m, "bogus", "dropped by the encoder");
    echo_roundtrip(b.m, 5, 1);
    assert_int_equal(atomic_load(&a.logs), 1);
    side_free(&a);
    side_free(&b);
}

/* ---- the channel itself ---- */

struct pread_arg {
    struct pchan *c;
    int rc;
    size_t got;
};

static void pread_main(void *arg)
{
    struct pread_arg *r = arg;
    char buf[16];
    r->rc = pchan_read(r->c, buf, sizeof(buf), &r->got, NULL);
}

static void test_pchan_basics(void **state)
{
    struct pchan *x, *y, *bad;
    struct plat_thread *t;
    struct pread_arg r;
    struct err e = ERR_INIT;
    char buf[8];
    size_t big = 1u << 20, got = 1;
    char *junk = calloc(1, big);

    assert_int_equal(pchan_from_os(-1, &bad, &e), ERR_INVALID);
    assert_int_equal(pchan_pair(&x, &y, &e), 0);
    assert_true(pchan_os_handle(x) != pchan_os_handle(y));
    assert_int_equal(pchan_write_all(x, "hello", 5, &e), 0);
    assert_int_equal(pchan_read_full(y, buf, 5, &e), 0);
    assert_memory_equal(buf, "hello", 5);
    /* A read blocked in another thread returns 0 bytes at shutdown. */
    memset(&r, 0, sizeof(r));
    r.c = y;
    r.got = 99;
    assert_int_equal(plat_thread_start(&t, pread_main, &r, NULL), 0);
    plat_sleep_ms(100); /* let it block (not required for correctness) */
    pchan_shutdown(y);
    pchan_shutdown(y); /* idempotent */
    plat_thread_join(t);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.got, 0);
    assert_int_equal(pchan_write_all(y, "x", 1, &e), ERR_IO);
    assert_int_equal(pchan_read_full(y, buf, 1, &e), ERR_IO);
    pchan_close(y);
    /* The peer is gone: writes fail with ERR_IO (no SIGPIPE), reads see the end. */
    assert_int_equal(pchan_write_all(x, junk, big, &e), ERR_IO);
    assert_int_equal(pchan_read(x, buf, sizeof(buf), &got, &e), 0);
    assert_int_equal(got, 0);
    assert_int_equal(pchan_read_full(x, buf, 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "closed"));
    pchan_close(x);
    pchan_close(NULL);
    free(junk);
}

/* ---- bulk: constant memory ---- */

static uint64_t peak_rss_kib(void)
{
#ifdef _WIN32
    PROCESS_MEMORY_COUNTERS pmc;
    memset(&pmc, 0, sizeof(pmc));
    pmc.cb = sizeof(pmc);
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc)))
        return 0;
    return (uint64_t)pmc.PeakWorkingSetSize / 1024;
#else
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss;
#endif
}

struct bulk_arg {
    struct pmux_stream *s;
    uint64_t total;
    int rc;
    struct err e;
};

struct file_arg {
    struct pmux_stream *s;
    struct plat_file *f;
    uint64_t off, len, sent;
    int rc;
};

static void file_writer(void *arg)
{
    struct file_arg *a = arg;
    struct err e = ERR_INIT;

    a->rc = pmux_write_file(a->s, a->f, a->off, a->len, &a->sent, &e);
    if (a->rc == 0)
        a->rc = pmux_send(a->s, PROTO_END, NULL, 0, &e);
    if (a->rc < 0)
        print_message("pmux_write_file: %s\n", e.msg);
}

static void bulk_writer(void *arg)
{
    struct bulk_arg *b = arg;
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    uint64_t off = 0;
    uint32_t seed = 1;

    b->rc = 0;
    while (off < b->total) {
        size_t n = b->total - off < CHUNK ? (size_t)(b->total - off) : CHUNK;
        for (size_t i = 0; i < n; i += 4096) /* a cheap pattern: a counter per 4 KiB */
            memset(buf + i, (int)(seed++ & 0xff), n - i < 4096 ? n - i : 4096);
        b->rc = pmux_write_data(b->s, buf, n, &b->e);
        if (b->rc < 0)
            break;
        off += n;
    }
    if (b->rc == 0)
        b->rc = pmux_send(b->s, PROTO_END, NULL, 0, &b->e);
    free(buf);
}

/* Receives DATA frames on h until END into out (cap bytes); returns the count. */
static size_t recv_all(struct pmux_stream *s, uint8_t *out, size_t cap)
{
    struct proto_frame *f;
    struct err e = ERR_INIT;
    size_t got = 0;

    for (;;) {
        if (pmux_recv(s, WAIT_MS, &f, &e) < 0)
            fail_msg("recv after %zu bytes: %s", got, e.msg);
        if (f->h.type == PROTO_END) {
            pmux_frame_free(s, f);
            return got;
        }
        assert_int_equal(f->h.type, PROTO_DATA);
        assert_true(f->h.length <= PROTO_DATA_MAX);
        assert_true(got + f->h.length <= cap);
        memcpy(out + got, f->payload, f->h.length);
        got += f->h.length;
        pmux_frame_free(s, f);
    }
}

/* pmux_write_file: a range of a file as DATA (spliced on POSIX, read and written on Windows),
 * several frames, within the credit; a file that ends first sends what it has. */
static void test_write_file(void **state)
{
    enum { SIZE = 3 * 1024 * 1024 + 12345 };
    char dir[1024], path[1100];
    struct side a, b;
    struct pmux_stream *s;
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    uint8_t *data = malloc(SIZE), *got = malloc(SIZE);
    uint32_t x = 12345;
    (void)state;

    assert_non_null(data);
    assert_non_null(got);
    for (size_t i = 0; i < SIZE; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    assert_int_equal(td_make("pmuxfile", dir, sizeof(dir)), 0);
    assert_int_equal(fs_join(dir, "src.bin", path, sizeof(path), NULL), 0);
    assert_int_equal(plat_file_open(path, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e), 0);
    assert_int_equal(plat_file_write_all(f, data, SIZE, &e), 0);
    plat_file_close(f);
    assert_int_equal(plat_file_open(path, PLAT_OPEN_READ, &f, &e), 0);

    start_default(&a, MODE_ECHO, &b, MODE_HOLD, 0);
    /* a middle range over several frames and windows */
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    struct held h = hold_wait(&b, 0);
    struct file_arg fa = {s, f, 1000, 2 * 1024 * 1024 + 777, 0, 0};
    /* the writer blocks on credit: run it beside the reader */
    struct plat_thread *t = NULL;
    assert_int_equal(plat_thread_start(&t, file_writer, &fa, NULL), 0);
    size_t n = recv_all(h.s, got, SIZE);
    plat_thread_join(t);
    assert_int_equal(fa.rc, 0);
    assert_int_equal(fa.sent, fa.len);
    assert_int_equal(n, fa.len);
    assert_memory_equal(got, data + fa.off, n);
    pmux_close(s); /* h.s is b's: side_free closes it */

    /* past the end: only what the file has */
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    h = hold_wait(&b, 1);
    fa = (struct file_arg){s, f, SIZE - 5000, 1u << 20, 0, 0};
    assert_int_equal(plat_thread_start(&t, file_writer, &fa, NULL), 0);
    n = recv_all(h.s, got, SIZE);
    plat_thread_join(t);
    assert_int_equal(fa.rc, 0);
    assert_int_equal(fa.sent, 5000);
    assert_int_equal(n, 5000);
    assert_memory_equal(got, data + SIZE - 5000, 5000);
    pmux_close(s);

    side_free(&a);
    side_free(&b);
    plat_file_close(f);
    td_remove_tree(dir);
    free(data);
    free(got);
}

static void start_shared(struct side *a, struct side *b, enum mode mb, uint32_t nslots);

/* 4 GiB (KASM_PMUX_BULK_MB) service -> helper, checked, in constant memory; nslots > 0:
 * through a shared window of that many slots, every byte of it. */
static void bulk_run(uint32_t nslots)
{
    struct side a, b;
    struct pmux_stream *s;
    struct plat_thread *t;
    struct bulk_arg ba;
    struct proto_frame *f;
    struct err e = ERR_INIT;
    const char *env = getenv("KASM_PMUX_BULK_MB");
    uint64_t total = 4ull << 30;
    uint64_t got = 0, before, after;
    uint32_t seed = 1;
    size_t pos_in_block = 0;

    if (env && atoi(env) > 0)
        total = (uint64_t)atoi(env) << 20;
    if (nslots)
        start_shared(&a, &b, MODE_HOLD, nslots);
    else
        start_default(&a, MODE_ECHO, &b, MODE_HOLD, 0); /* default 2 MiB window */
    before = peak_rss_kib();
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    memset(&ba, 0, sizeof(ba));
    ba.s = s;
    ba.total = total;
    assert_int_equal(plat_thread_start(&t, bulk_writer, &ba, NULL), 0);
    struct held h = hold_wait(&b, 0);
    for (;;) {
        if (pmux_recv(h.s, WAIT_MS, &f, &e) < 0)
            fail_msg("bulk recv after %llu bytes: %s", (unsigned long long)got, e.msg);
        if (f->h.type == PROTO_END) {
            pmux_frame_free(h.s, f);
            break;
        }
        assert_int_equal(f->h.type, PROTO_DATA);
        /* Check the pattern at every 4 KiB block start and the last byte of the frame. */
        for (uint32_t i = 0; i < f->h.length;) {
            size_t run = 4096 - pos_in_block;
            if (run > f->h.length - i)
                run = f->h.length - i;
            if (f->payload[i] != (uint8_t)(seed & 0xff) ||
                f->payload[i + run - 1] != (uint8_t)(seed & 0xff))
                fail_msg("bulk data corrupt at byte %llu", (unsigned long long)(got + i));
            i += (uint32_t)run;
            pos_in_block += run;
            if (pos_in_block == 4096) {
                pos_in_block = 0;
                seed++;
            }
        }
        got += f->h.length;
        pmux_frame_free(h.s, f);
    }
    plat_thread_join(t);
    assert_int_equal(ba.rc, 0);
    assert_int_equal(got, total);
    after = peak_rss_kib();
    print_message("bulk: %llu MiB moved, peak memory %llu KiB -> %llu KiB\n",
                  (unsigned long long)(total >> 20), (unsigned long long)before,
                  (unsigned long long)after);
    /* a 2 MiB credit window holds at most 8 slots: the writer never runs out of 16 */
    assert_int_equal(pmux_shared_bytes(a.m), nslots ? total : 0);
    assert_int_equal(pmux_shared_bytes(b.m), nslots ? total : 0);
    pmux_close(s);
    side_free(&a);
    side_free(&b);
    if (before == 0 && after == 0)
        UNIT_SKIP("peak memory is not available here");
    assert_true(after - before < 64 * 1024);
}

static void test_bulk_constant_memory(void **state)
{
    bulk_run(0);
}

static void test_bulk_shared_constant_memory(void **state)
{
    bulk_run(16);
}

/* ---- the shared window ---- */

/* A window of nslots slots: *w the service's, *r the helper's read-only view of it. */
static void window_pair(uint32_t nslots, struct pshm **w, struct pshm **r)
{
    struct err e = ERR_INIT;
    intptr_t h = 0;

    if (pshm_create((size_t)nslots * PROTO_DATA_MAX, w, &e) < 0)
        fail_msg("pshm_create: %s", e.msg);
    assert_int_equal(pshm_share(*w, &h, &e), 0);
#ifndef _WIN32
    h = dup((int)h); /* POSIX shares the window's own fd; the reader takes a copy of it */
#endif
    if (pshm_open_reader(h, (size_t)nslots * PROTO_DATA_MAX, r, &e) < 0)
        fail_msg("pshm_open_reader: %s", e.msg);
    assert_true(pshm_writable(*w));
    assert_false(pshm_writable(*r));
}

/* a (service) and b (helper, mode mb) sharing a window of nslots slots. */
static void start_shared(struct side *a, struct side *b, enum mode mb, uint32_t nslots)
{
    struct pmux_config ca, cb;
    struct proto_hello pa, pb;
    struct err e = ERR_INIT;

    side_init(a, MODE_ECHO);
    side_init(b, mb);
    side_config(a, &ca, "service", 1);
    side_config(b, &cb, "helper", 0);
    window_pair(nslots, &ca.shared, &cb.shared);
    start_pair(a, &ca, b, &cb);
    assert_int_equal(pmux_wait_ready(a->m, 0, &pa, &e), 0);
    assert_int_equal(pmux_wait_ready(b->m, 0, &pb, &e), 0);
    assert_int_equal(pa.shared, nslots * PROTO_DATA_MAX);
    assert_int_equal(pb.shared, nslots * PROTO_DATA_MAX);
}

/* Service -> helper DATA goes through the window (the bytes arrive, the counters say so);
 * helper -> service DATA does not. */
static void test_shared_window_echo(void **state)
{
    struct side a, b;
    size_t len = 3 * 1024 * 1024 + 12345;

    start_shared(&a, &b, MODE_ECHO, 16);
    echo_roundtrip(a.m, len, 99);
    echo_roundtrip(a.m, 1, 7);
    assert_int_equal(pmux_shared_bytes(a.m), len + 1);
    assert_int_equal(pmux_shared_bytes(b.m), len + 1);
    side_free(&a);
    side_free(&b);
}

/* Writes len bytes of pattern seed on s (service side); asserts success. */
static void write_pattern(struct pmux_stream *s, size_t len, uint32_t seed)
{
    uint8_t *buf = malloc(len);
    struct err e = ERR_INIT;

    assert_non_null(buf);
    fill_pattern(buf, len, seed);
    if (pmux_write_data(s, buf, len, &e) < 0)
        fail_msg("write_data: %s", e.msg);
    free(buf);
}

/* Receives n DATA frames on s (not freed: into out[]), checking they carry pattern seed. */
static void recv_pattern_frames(struct pmux_stream *s, struct proto_frame **out, int n, size_t len,
                                uint32_t seed)
{
    uint8_t *want = malloc(len);
    struct err e = ERR_INIT;
    size_t at = 0;

    fill_pattern(want, len, seed);
    for (int i = 0; i < n; i++) {
        if (pmux_recv(s, WAIT_MS, &out[i], &e) < 0)
            fail_msg("recv: %s", e.msg);
        assert_int_equal(out[i]->h.type, PROTO_DATA);
        assert_true(at + out[i]->h.length <= len);
        assert_memory_equal(out[i]->payload, want + at, out[i]->h.length);
        at += out[i]->h.length;
    }
    assert_int_equal(at, len);
    free(want);
}

/* A PING round trip from m: every frame the peer wrote (or queued for its sender thread)
 * before answering has been handled by m's reader when this returns. */
static void ping_barrier(struct pmux *m)
{
    struct pmux_stream *p;
    struct proto_frame *f;
    struct err e = ERR_INIT;

    assert_int_equal(pmux_open(m, &p, &e), 0);
    assert_int_equal(pmux_send(p, PROTO_PING, NULL, 0, &e), 0);
    assert_int_equal(pmux_recv(p, WAIT_MS, &f, &e), 0);
    assert_int_equal(f->h.type, PROTO_PONG);
    pmux_frame_free(p, f);
    pmux_close(p);
}

/* The helper holds both slots of a 2-slot window: the service goes on with plain DATA, in
 * order; slots the helper frees, or that a closed stream held, come back. */
static void test_shared_window_fallback(void **state)
{
    struct side a, b;
    struct pmux_stream *s;
    struct proto_frame *f[4];
    struct err e = ERR_INIT;
    enum { PIECE = PROTO_DATA_MAX };

    start_shared(&a, &b, MODE_HOLD, 2);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    struct held h = hold_wait(&b, 0);

    write_pattern(s, 4 * PIECE, 1); /* 1 MiB: within the 2 MiB credit, 4 frames */
    recv_pattern_frames(h.s, f, 4, 4 * PIECE, 1);
    assert_true(f[0]->shared_slot && f[1]->shared_slot);
    assert_true(!f[2]->shared_slot && !f[3]->shared_slot);
    assert_int_equal(pmux_shared_bytes(a.m), 2 * PIECE);
    for (int i = 0; i < 4; i++)
        pmux_frame_free(h.s, f[i]);
    ping_barrier(a.m); /* the service has seen the two SHARED_FREE */

    /* both slots free again: the next two frames use them; held in the queue, not taken */
    write_pattern(s, 2 * PIECE, 2);
    uint64_t end = plat_monotonic_ms() + WAIT_MS;
    while (pmux_shared_bytes(b.m) < 4 * PIECE && plat_monotonic_ms() < end)
        plat_sleep_ms(5);
    assert_int_equal(pmux_shared_bytes(a.m), 4 * PIECE);
    assert_int_equal(pmux_shared_bytes(b.m), 4 * PIECE);

    /* the helper closes the stream with them queued: the slots go back all the same */
    plat_mutex_lock(b.mu);
    b.nheld = 0;
    plat_mutex_unlock(b.mu);
    pmux_frame_free(h.s, h.first);
    pmux_close(h.s);
    pmux_close(s);
    ping_barrier(a.m);

    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    h = hold_wait(&b, 0);
    write_pattern(s, 2 * PIECE, 3);
    recv_pattern_frames(h.s, f, 2, 2 * PIECE, 3);
    assert_true(f[0]->shared_slot && f[1]->shared_slot);
    assert_int_equal(pmux_shared_bytes(a.m), 6 * PIECE);
    pmux_frame_free(h.s, f[0]);
    pmux_frame_free(h.s, f[1]);
    pmux_close(s);
    side_free(&a);
    side_free(&b);
}

/* pmux_write_data_from: fill() writes in place (a slot, or the spare buffer without one);
 * a fill error is passed on and nothing is sent; 0 bytes sends nothing. */
struct fill_ctx {
    uint32_t seed;
    uint8_t *last_buf;
    int fail;
};

static int fill_seeded(void *ctx, uint8_t *buf, size_t cap, size_t *n, struct err *e)
{
    struct fill_ctx *c = ctx;
    c->last_buf = buf;
    if (c->fail)
        return err_set(e, ERR_NETWORK, "the client went away");
    fill_pattern(buf, cap / 2, c->seed);
    *n = cap / 2;
    return 0;
}

static void test_write_data_from(void **state)
{
    for (int shared = 0; shared < 2; shared++) {
        struct side a, b;
        struct pmux_stream *s;
        struct proto_frame *f;
        struct err e = ERR_INIT;
        struct fill_ctx c = {5, NULL, 0};
        uint8_t *spare = malloc(PROTO_DATA_MAX);
        size_t sent = 0;

        if (shared)
            start_shared(&a, &b, MODE_HOLD, 4);
        else
            start_default(&a, MODE_ECHO, &b, MODE_HOLD, 0);
        assert_int_equal(pmux_open(a.m, &s, &e), 0);
        assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
        struct held h = hold_wait(&b, 0);

        assert_int_equal(pmux_write_data_from(s, 1000, spare, fill_seeded, &c, &sent, &e), 0);
        assert_int_equal(sent, 500);
        assert_true(shared ? c.last_buf != spare : c.last_buf == spare);
        c.fail = 1;
        assert_int_equal(pmux_write_data_from(s, 1000, spare, fill_seeded, &c, &sent, &e),
                         ERR_NETWORK);
        assert_int_equal(sent, 0);
        assert_non_null(strstr(e.msg, "went away"));
        assert_int_equal(pmux_send(s, PROTO_END, NULL, 0, &e), 0);

        recv_pattern_frames(h.s, &f, 1, 500, 5);
        assert_int_equal(f->shared_slot != 0, shared);
        pmux_frame_free(h.s, f);
        assert_int_equal(pmux_recv(h.s, WAIT_MS, &f, &e), 0);
        assert_int_equal(f->h.type, PROTO_END); /* the failed fill sent nothing */
        pmux_frame_free(h.s, f);
        assert_int_equal(pmux_shared_bytes(a.m), shared ? 500 : 0);
        pmux_close(s);
        side_free(&a);
        side_free(&b);
        free(spare);
    }
}

/*
 * A mux with a window against a raw peer that did the handshake. helper = 1: the mux is the
 * helper reading a window of nslots slots (0: none) and the raw peer the service; helper = 0:
 * the mux is the service writing one (0: none), the raw peer a helper that says it mapped it.
 */
static void start_raw_shared(struct side *a, int helper, uint32_t nslots, struct pchan **raw)
{
    struct pmux_config ca;
    struct pshm *w = NULL, *r = NULL;
    struct pchan *x;
    struct proto_hello h;
    struct err e = ERR_INIT;
    static char buf[PROTO_JSON_MAX];
    char *json;
    size_t len;

    side_init(a, MODE_HOLD);
    side_config(a, &ca, helper ? "helper" : "service", !helper);
    if (nslots)
        window_pair(nslots, &w, &r);
    ca.shared = helper ? r : w;
    pshm_free(helper ? w : r);
    assert_int_equal(pchan_pair(&x, raw, &e), 0);
    assert_int_equal(pmux_start(x, &ca, &a->m, &e), 0);
    struct proto_header hd = raw_recv(*raw, buf, sizeof(buf));
    assert_int_equal(hd.type, PROTO_HELLO);
    proto_hello_init(&h, helper ? "service" : "helper");
    h.window = 65536;
    h.shared = nslots * PROTO_DATA_MAX;
    assert_int_equal(proto_hello_encode(&h, &json, &len, &e), 0);
    raw_send(*raw, PROTO_HELLO, 0, json, len);
    free(json);
    assert_int_equal(pmux_wait_ready(a->m, WAIT_MS, NULL, &e), 0);
}

/* The raw peer's act breaks the window's rules: the mux closes the channel saying why. */
static void expect_shared_violation(int helper, uint32_t nslots, void (*act)(struct pchan *raw),
                                    const char *why)
{
    struct side a;
    struct pchan *raw;

    start_raw_shared(&a, helper, nslots, &raw);
    act(raw);
    wait_until(&a.closes, 1);
    print_message("closed: %s\n", a.close_err.msg);
    assert_non_null(strstr(a.close_err.msg, why));
    assert_false(pmux_alive(a.m));
    side_free(&a);
    pchan_close(raw);
}

static void raw_data_shared(struct pchan *raw, uint32_t id, uint32_t slot, uint32_t len)
{
    uint8_t pl[PROTO_DATA_SHARED_LEN];
    proto_data_shared_encode(pl, slot, len);
    raw_send(raw, PROTO_DATA_SHARED, id, pl, sizeof(pl));
}

static void act_ds_slot(struct pchan *raw, uint32_t slot, uint32_t len)
{
    raw_send(raw, PROTO_UPLOAD_BEGIN, 1, "{}", 2);
    raw_data_shared(raw, 1, slot, len);
}
static void act_ds_good(struct pchan *raw)
{
    act_ds_slot(raw, 1, 100);
}
static void act_ds_out_of_range(struct pchan *raw)
{
    act_ds_slot(raw, 2, 100);
}
static void act_ds_empty(struct pchan *raw)
{
    act_ds_slot(raw, 0, 0);
}
static void act_ds_too_long(struct pchan *raw)
{
    act_ds_slot(raw, 0, PROTO_DATA_MAX + 1);
}
static void act_ds_reused(struct pchan *raw)
{
    act_ds_slot(raw, 1, 100);
    raw_data_shared(raw, 1, 1, 100); /* the helper still holds it (MODE_HOLD) */
}
static void act_ds_from_helper(struct pchan *raw)
{
    raw_send(raw, PROTO_UPLOAD_BEGIN, 2, "{}", 2);
    raw_data_shared(raw, 2, 0, 100);
}
static void act_sf_never_lent(struct pchan *raw)
{
    uint8_t pl[4];
    uint32_t slot = 0;
    proto_shared_free_encode(pl, &slot, 1);
    raw_send(raw, PROTO_SHARED_FREE, 0, pl, sizeof(pl));
}

/* The service lends slots 0 and 1 to a raw helper, which frees both in one SHARED_FREE:
 * accepted; freeing slot 0 again ends the channel. */
static void test_shared_free_batch(void **state)
{
    struct side a;
    struct pchan *raw;
    struct pmux_stream *s;
    struct proto_header h;
    struct err e = ERR_INIT;
    static char buf[PROTO_JSON_MAX];
    uint32_t slots[2] = {0, 1}, slot = 0, len = 0;
    uint8_t pl[8];

    start_raw_shared(&a, 0, 4, &raw);
    assert_int_equal(pmux_open(a.m, &s, &e), 0);
    assert_int_equal(pmux_send(s, PROTO_UPLOAD_BEGIN, "{}", 2, &e), 0);
    assert_int_equal(raw_recv(raw, buf, sizeof(buf)).type, PROTO_UPLOAD_BEGIN);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(pmux_write_data(s, "abc", 3, &e), 0);
        h = raw_recv(raw, buf, sizeof(buf));
        assert_int_equal(h.type, PROTO_DATA_SHARED);
        assert_int_equal(proto_data_shared_decode(buf, h.length, &slot, &len, &e), 0);
        assert_int_equal(slot, i);
        assert_int_equal(len, 3);
    }
    proto_shared_free_encode(pl, slots, 2);
    raw_send(raw, PROTO_SHARED_FREE, 0, pl, sizeof(pl));
    raw_send(raw, PROTO_PING, 2, NULL, 0); /* answered after the batch was taken */
    assert_int_equal(raw_recv(raw, buf, sizeof(buf)).type, PROTO_PONG);
    assert_true(pmux_alive(a.m));
    raw_send(raw, PROTO_SHARED_FREE, 0, pl, 4);
    wait_until(&a.closes, 1);
    assert_non_null(strstr(a.close_err.msg, "slot 0 of the shared window, which it did not have"));
    pmux_close(s);
    side_free(&a);
    pchan_close(raw);
}

static void test_shared_window_violations(void **state)
{
    /* the helper's reader checks every slot reference */
    expect_shared_violation(1, 0, act_ds_good, "reads no shared window");
    expect_shared_violation(1, 2, act_ds_out_of_range, "slots of");
    expect_shared_violation(1, 2, act_ds_empty, "slots of");
    expect_shared_violation(1, 2, act_ds_too_long, "slots of");
    expect_shared_violation(1, 2, act_ds_reused, "reused slot 1");
    /* the service takes no slot references and frees only what it lent */
    expect_shared_violation(0, 2, act_ds_from_helper, "reads no shared window");
    expect_shared_violation(0, 2, act_sf_never_lent, "which it did not have");
    expect_shared_violation(0, 0, act_sf_never_lent, "lent it no shared window");
}

/* DESIGN.md security rule: the helper's handle to the window can map it read-only and
 * nothing else (no writable view, no resize, no writes); a window the reader is handed must
 * be one (sealed, big enough). */
static void test_shared_window_read_only(void **state)
{
    struct pshm *w = NULL, *r = NULL;
    struct err e = ERR_INIT;
    intptr_t h = 0;
    size_t size = 2 * PROTO_DATA_MAX;

    assert_int_equal(pshm_create(size, &w, &e), 0);
    assert_int_equal(pshm_share(w, &h, &e), 0);
    memset(pshm_base(w), 0x5a, size); /* the writer's view is writable */
#ifdef _WIN32
    assert_null(MapViewOfFile((HANDLE)h, FILE_MAP_WRITE, 0, 0, size));
    assert_int_equal(GetLastError(), ERROR_ACCESS_DENIED);
    void *ro = MapViewOfFile((HANDLE)h, FILE_MAP_READ, 0, 0, size);
    assert_non_null(ro);
    assert_int_equal(((uint8_t *)ro)[size - 1], 0x5a);
    UnmapViewOfFile(ro);
    /* a view larger than the window is refused */
    assert_int_equal(pshm_open_reader(h, size + 4096, &r, &e), ERR_INVALID);
    assert_int_equal(pshm_share(w, &h, &e), 0);
#else
    int fd = (int)h;
    assert_true(mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, 0), -1);
    assert_int_equal(ftruncate(fd, (off_t)size * 2), -1);
    assert_int_equal(pwrite(fd, "x", 1, 0), -1);
    assert_int_equal(pshm_open_reader(dup(fd), size + 4096, &r, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not a window"));
    {
        /* an ordinary file could be truncated under the reader: refused */
        char dir[1024], path[1100];
        assert_int_equal(td_make("pshm", dir, sizeof(dir)), 0);
        assert_int_equal(fs_join(dir, "plain", path, sizeof(path), NULL), 0);
        int pfd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(pfd >= 0);
        assert_int_equal(ftruncate(pfd, (off_t)size), 0);
        assert_int_equal(pshm_open_reader(pfd, size, &r, &e), ERR_INVALID);
        assert_non_null(strstr(e.msg, "not sealed"));
        td_remove_tree(dir);
    }
    h = dup(fd);
#endif
    assert_int_equal(pshm_open_reader(h, size, &r, &e), 0);
    assert_int_equal(pshm_base(r)[0], 0x5a);
    pshm_base(w)[0] = 0x33; /* one memory: the reader sees the writer's stores */
    assert_int_equal(((volatile uint8_t *)pshm_base(r))[0], 0x33);
    pshm_free(r);
    pshm_free(w);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_proto_version_mismatch),
        cmocka_unit_test(test_hello_missing),
        cmocka_unit_test(test_wait_ready_timeout),
        cmocka_unit_test(test_requests_both_ways),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_flow_control),
        cmocka_unit_test(test_stall_timeout),
        cmocka_unit_test(test_cancel_by_sender),
        cmocka_unit_test(test_cancel_by_receiver),
        cmocka_unit_test(test_shutdown_wakes_all),
        cmocka_unit_test(test_closed_ids_dropped),
        cmocka_unit_test(test_violation_window),
        cmocka_unit_test(test_violation_bad_magic),
        cmocka_unit_test(test_violation_oversized),
        cmocka_unit_test(test_violation_huge_json),
        cmocka_unit_test(test_violation_unknown_type),
        cmocka_unit_test(test_violation_bad_credit),
        cmocka_unit_test(test_violation_second_hello),
        cmocka_unit_test(test_violation_tiny_frames),
        cmocka_unit_test(test_short_read),
        cmocka_unit_test(test_truncated_payload),
        cmocka_unit_test(test_max_streams),
        cmocka_unit_test(test_no_handler),
        cmocka_unit_test(test_ping_log_and_send_checks),
        cmocka_unit_test(test_pchan_basics),
        cmocka_unit_test(test_write_file),
        cmocka_unit_test(test_bulk_constant_memory),
        cmocka_unit_test(test_bulk_shared_constant_memory),
        cmocka_unit_test(test_shared_window_echo),
        cmocka_unit_test(test_shared_window_fallback),
        cmocka_unit_test(test_write_data_from),
        cmocka_unit_test(test_shared_window_violations),
        cmocka_unit_test(test_shared_free_batch),
        cmocka_unit_test(test_shared_window_read_only),
    };
    return UNIT_RUN("pmux", tests, NULL, NULL);
}
