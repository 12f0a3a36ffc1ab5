/*
 * fuzz_multipart.c - libFuzzer target for the streaming multipart parser
 * (service/transfer/multipart.c). The first two bytes seed the piece sizes; the rest is the
 * body (boundary "XyZ"). Checks: no crash or leak (ASan/LSan), the limits hold in every
 * callback (parts, field sizes, name lengths), callbacks come in a legal order, and feeding
 * the body whole or in random pieces gives the same result and the same event trace.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
    uint64_t hash; /* FNV-1a over the event trace */
    int parts, in_part, done, is_field;
    size_t field_len;
};

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_multipart: %s\n", what);
    abort();
}

static void mix(struct state *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ b[i]) * 1099511628211ull;
}

static int on_begin(void *ctx, const struct mp_part_info *p, struct err *e)
{
    struct state *s = ctx;
    (void)e;
    if (s->in_part || s->done)
        violated("part_begin out of order");
    if (++s->parts > MP_MAX_PARTS)
        violated("more parts than MP_MAX_PARTS");
    if (!p->name || strlen(p->name) > MP_NAME_MAX)
        violated("bad part name");
    if (p->filename && strlen(p->filename) > MP_FILENAME_MAX)
        violated("filename too long");
    s->in_part = 1;
    s->is_field = p->filename == NULL;
    s->field_len = 0;
    mix(s, "B", 1);
    mix(s, p->name, strlen(p->name) + 1);
    if (p->filename)
        mix(s, p->filename, strlen(p->filename) + 1);
    return 0;
}

static int on_data(void *ctx, const void *d, size_t n, struct err *e)
{
    struct state *s = ctx;
    (void)e;
    if (!s->in_part || n == 0)
        violated("part_data outside a part or empty");
    if (s->is_field && (s->field_len += n) > MP_MAX_FIELD_BYTES)
        violated("field value over MP_MAX_FIELD_BYTES delivered");
    mix(s, d, n);
    return 0;
}

static int on_end(void *ctx, struct err *e)
{
    struct state *s = ctx;
    (void)e;
    if (!s->in_part)
        violated("part_end without part_begin");
    s->in_part = 0;
    mix(s, "E", 1);
    return 0;
}

static int on_done(void *ctx, struct err *e)
{
    struct state *s = ctx;
    (void)e;
    if (s->in_part || s->done)
        violated("done out of order");
    s->done = 1;
    mix(s, "Z", 1);
    return 0;
}

static const struct mp_callbacks cbs = {on_begin, on_data, on_end, on_done};

static int run(const uint8_t *body, size_t len, unsigned seed, struct state *s)
{
    struct mp_parser *p = NULL;
    struct err e = ERR_INIT;
    int rc;
    memset(s, 0, sizeof(*s));
    s->hash = 1469598103934665603ull;
    if (mp_parser_create("XyZ", &cbs, s, &p, &e) < 0)
        violated("create failed");
    rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t n = len - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % 97;
            if (want < n)
                n = want;
        }
        rc = mp_parser_feed(p, body + off, n, &e);
        off += n;
    }
    if (rc == 0)
        rc = mp_parser_finish(p, &e);
    if (rc < 0 && e.msg[0] == '\0')
        violated("an error without a message");
    mp_parser_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state a, b;
    unsigned seed;
    int ra, rb;
    if (size < 2)
        return 0;
    seed = (unsigned)data[0] << 8 | data[1] | 1u;
    ra = run(data + 2, size - 2, 0, &a);
    rb = run(data + 2, size - 2, seed, &b);
    if (ra != rb)
        violated("whole and piecewise feeding disagree on the result");
    if (ra == 0 && a.hash != b.hash)
        violated("whole and piecewise feeding disagree on the events");
    if (ra == 0 && !a.done)
        violated("success without the final boundary");
    return 0;
}
