/*
 * fuzz_proto.c - libFuzzer target for proto/proto.c and proto/msg.c. The input is read as a
 * stream of frames: each 16-byte header goes through proto_header_decode (and, when it
 * passes, proto_frame_alloc) and its payload through the decoder of its type; the whole
 * input also goes through every JSON decoder and the CREDIT decoder. Checks: a decoded
 * header respects its type's limit; every message that decodes encodes again (or is refused
 * as too large once escaped) and decodes to the same struct.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_proto: %s\n", what);
    abort();
}

#define ROUNDTRIP(name)                                                                            \
    static void rt_##name(const void *p, size_t len)                                               \
    {                                                                                              \
        struct proto_##name a, b;                                                                  \
        struct err e = ERR_INIT;                                                                   \
        char *text = NULL;                                                                         \
        size_t tlen = 0;                                                                           \
        int rc;                                                                                    \
        if (proto_##name##_decode(p, len, &a, &e) < 0) {                                           \
            if (e.msg[0] == 0)                                                                     \
                violated(#name ": a failure without a message");                                   \
            return;                                                                                \
        }                                                                                          \
        rc = proto_##name##_encode(&a, &text, &tlen, &e);                                          \
        if (rc == ERR_TOO_LARGE)                                                                   \
            return;                                                                                \
        if (rc < 0)                                                                                \
            violated(#name ": a decoded message does not encode");                                 \
        if (tlen > PROTO_JSON_MAX)                                                                 \
            violated(#name ": encoded over the JSON limit");                                       \
        if (proto_##name##_decode(text, tlen, &b, &e) < 0)                                         \
            violated(#name ": an encoded message does not decode");                                \
        if (memcmp(&a, &b, sizeof(a)) != 0)                                                        \
            violated(#name ": the round trip changed the message");                                \
        free(text);                                                                                \
    }
ROUNDTRIP(hello)
ROUNDTRIP(error)
ROUNDTRIP(log)
ROUNDTRIP(dl_open)
ROUNDTRIP(dl_info)
ROUNDTRIP(dl_read)
ROUNDTRIP(dl_list)
ROUNDTRIP(upload_begin)
ROUNDTRIP(upload_result)
ROUNDTRIP(shot)
ROUNDTRIP(shot_info)
ROUNDTRIP(file_put)
ROUNDTRIP(file_delete)
ROUNDTRIP(file_result)

ROUNDTRIP(admin_request)

/* ADMIN_REPLY holds its result as allocated text: compared by content. */
static void rt_admin_reply(const void *p, size_t len)
{
    struct proto_admin_reply a, b;
    struct err e = ERR_INIT;
    char *text = NULL;
    size_t tlen = 0;
    int rc;

    if (proto_admin_reply_decode(p, len, &a, &e) < 0) {
        if (e.msg[0] == 0)
            violated("admin_reply: a failure without a message");
        return;
    }
    rc = proto_admin_reply_encode(&a, &text, &tlen, &e);
    if (rc == ERR_TOO_LARGE) {
        proto_admin_reply_clear(&a);
        return;
    }
    if (rc < 0)
        violated("admin_reply: a decoded message does not encode");
    if (tlen > PROTO_ADMIN_REPLY_MAX)
        violated("admin_reply: encoded over its limit");
    if (proto_admin_reply_decode(text, tlen, &b, &e) < 0)
        violated("admin_reply: an encoded message does not decode");
    if (a.status != b.status || strcmp(a.error, b.error) != 0 || strcmp(a.result, b.result) != 0)
        violated("admin_reply: the round trip changed the message");
    proto_admin_reply_clear(&a);
    proto_admin_reply_clear(&b);
    free(text);
}

static void all_json(const void *p, size_t len)
{
    rt_hello(p, len);
    rt_error(p, len);
    rt_log(p, len);
    rt_dl_open(p, len);
    rt_dl_info(p, len);
    rt_dl_read(p, len);
    rt_dl_list(p, len);
    rt_upload_begin(p, len);
    rt_upload_result(p, len);
    rt_shot(p, len);
    rt_shot_info(p, len);
    rt_file_put(p, len);
    rt_file_delete(p, len);
    rt_file_result(p, len);
    rt_admin_request(p, len);
    rt_admin_reply(p, len);
}

static void by_type(uint32_t type, const void *p, size_t len)
{
    uint32_t n;
    switch (type) {
    case PROTO_HELLO:
        rt_hello(p, len);
        break;
    case PROTO_ERROR:
        rt_error(p, len);
        break;
    case PROTO_LOG:
        rt_log(p, len);
        break;
    case PROTO_CREDIT:
        (void)proto_credit_decode(p, len, &n, NULL);
        break;
    case PROTO_DL_OPEN:
        rt_dl_open(p, len);
        break;
    case PROTO_DL_INFO:
        rt_dl_info(p, len);
        break;
    case PROTO_DL_READ:
        rt_dl_read(p, len);
        break;
    case PROTO_DL_LIST:
        rt_dl_list(p, len);
        break;
    case PROTO_UPLOAD_BEGIN:
        rt_upload_begin(p, len);
        break;
    case PROTO_UPLOAD_RESULT:
        rt_upload_result(p, len);
        break;
    case PROTO_SHOT:
        rt_shot(p, len);
        break;
    case PROTO_SHOT_INFO:
        rt_shot_info(p, len);
        break;
    case PROTO_FILE_PUT:
        rt_file_put(p, len);
        break;
    case PROTO_FILE_DELETE:
        rt_file_delete(p, len);
        break;
    case PROTO_FILE_RESULT:
        rt_file_result(p, len);
        break;
    case PROTO_ADMIN_REQUEST:
        rt_admin_request(p, len);
        break;
    case PROTO_ADMIN_REPLY:
        rt_admin_reply(p, len);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    uint32_t n;

    all_json(data, size);
    (void)proto_credit_decode(data, size, &n, NULL);

    while (size - off >= PROTO_HEADER_SIZE) {
        struct proto_header h;
        struct proto_frame *f = NULL;
        struct err e = ERR_INIT;

        if (proto_header_decode(data + off, &h, &e) < 0) {
            if (e.code != ERR_PROTOCOL && e.code != ERR_TOO_LARGE)
                violated("header refused with an unexpected code");
            off += PROTO_HEADER_SIZE;
            continue;
        }
        if (h.length > proto_max_len(h.type))
            violated("a header over its type's limit was accepted");
        off += PROTO_HEADER_SIZE;
        if (h.length > size - off)
            break; /* a short read: the channel would end here */
        if (proto_frame_alloc(&h, &f, &e) < 0)
            violated("frame_alloc failed for a checked header");
        memcpy(f->payload, data + off, h.length);
        if (f->payload[h.length] != 0)
            violated("a frame's payload is not NUL-terminated");
        by_type(h.type, f->payload, h.length);
        proto_frame_free(f);
        off += h.length;
    }
    return 0;
}
