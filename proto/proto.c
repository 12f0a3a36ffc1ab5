/*
 * proto.c - the frame header codec, the per-type size limits, frame allocation, the CREDIT
 * payload and the HELLO compatibility check (proto.h). The JSON messages live in msg.c.
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xffu);
    p[1] = (uint8_t)((v >> 8) & 0xffu);
    p[2] = (uint8_t)((v >> 16) & 0xffu);
    p[3] = (uint8_t)((v >> 24) & 0xffu);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void proto_header_encode(uint8_t out[PROTO_HEADER_SIZE], uint32_t type, uint32_t length,
                         uint32_t request_id)
{
    put_u32(out, PROTO_MAGIC << 16 | PROTO_VERSION);
    put_u32(out + 4, type);
    put_u32(out + 8, length);
    put_u32(out + 12, request_id);
}

uint32_t proto_max_len(uint32_t type)
{
    switch (type) {
    case PROTO_HELLO:
    case PROTO_ERROR:
    case PROTO_LOG:
    case PROTO_DL_OPEN:
    case PROTO_DL_INFO:
    case PROTO_DL_READ:
    case PROTO_DL_LIST:
    case PROTO_UPLOAD_BEGIN:
    case PROTO_UPLOAD_RESULT:
    case PROTO_SHOT:
    case PROTO_SHOT_INFO:
    case PROTO_FILE_PUT:
    case PROTO_FILE_DELETE:
    case PROTO_FILE_RESULT:
    case PROTO_ADMIN_REQUEST:
        return PROTO_JSON_MAX;
    case PROTO_ADMIN_REPLY:
        return PROTO_ADMIN_REPLY_MAX;
    case PROTO_CREDIT:
        return 4;
    case PROTO_DATA_SHARED:
        return PROTO_DATA_SHARED_LEN;
    case PROTO_SHARED_FREE:
        return PROTO_SHARED_FREE_MAX;
    case PROTO_DATA:
        return PROTO_DATA_MAX;
    default: /* END, CANCEL, PING, PONG: empty; unknown types: nothing */
        return 0;
    }
}

const char *proto_type_name(uint32_t type)
{
    switch (type) {
    case PROTO_HELLO:
        return "HELLO";
    case PROTO_ERROR:
        return "ERROR";
    case PROTO_LOG:
        return "LOG";
    case PROTO_CREDIT:
        return "CREDIT";
    case PROTO_DATA:
        return "DATA";
    case PROTO_END:
        return "END";
    case PROTO_CANCEL:
        return "CANCEL";
    case PROTO_PING:
        return "PING";
    case PROTO_PONG:
        return "PONG";
    case PROTO_DATA_SHARED:
        return "DATA_SHARED";
    case PROTO_SHARED_FREE:
        return "SHARED_FREE";
    case PROTO_DL_OPEN:
        return "DL_OPEN";
    case PROTO_DL_INFO:
        return "DL_INFO";
    case PROTO_DL_READ:
        return "DL_READ";
    case PROTO_DL_LIST:
        return "DL_LIST";
    case PROTO_UPLOAD_BEGIN:
        return "UPLOAD_BEGIN";
    case PROTO_UPLOAD_RESULT:
        return "UPLOAD_RESULT";
    case PROTO_SHOT:
        return "SHOT";
    case PROTO_SHOT_INFO:
        return "SHOT_INFO";
    case PROTO_FILE_PUT:
        return "FILE_PUT";
    case PROTO_FILE_DELETE:
        return "FILE_DELETE";
    case PROTO_FILE_RESULT:
        return "FILE_RESULT";
    case PROTO_ADMIN_REQUEST:
        return "ADMIN_REQUEST";
    case PROTO_ADMIN_REPLY:
        return "ADMIN_REPLY";
    default:
        return "UNKNOWN";
    }
}

static int type_known(uint32_t type)
{
    return strcmp(proto_type_name(type), "UNKNOWN") != 0;
}

int proto_header_decode(const uint8_t in[PROTO_HEADER_SIZE], struct proto_header *out,
                        struct err *e)
{
    uint32_t mv = get_u32(in);
    struct proto_header h;

    h.magic = (uint16_t)(mv >> 16);
    h.version = (uint16_t)(mv & 0xffffu);
    h.type = get_u32(in + 4);
    h.length = get_u32(in + 8);
    h.request_id = get_u32(in + 12);
    if (h.magic != PROTO_MAGIC)
        return err_set(e, ERR_PROTOCOL,
                       "not a kasm-open-agent channel (frame magic 0x%04x, expected 0x%04x)",
                       (unsigned)h.magic, (unsigned)PROTO_MAGIC);
    if (h.version != PROTO_VERSION)
        return err_set(e, ERR_PROTOCOL,
                       "the peer speaks protocol version %u, this program speaks version %u; "
                       "reinstall so that both come from one package",
                       (unsigned)h.version, (unsigned)PROTO_VERSION);
    if (!type_known(h.type))
        return err_set(e, ERR_PROTOCOL, "unknown frame type %lu on request %lu",
                       (unsigned long)h.type, (unsigned long)h.request_id);
    if (h.length > proto_max_len(h.type))
        return err_set(e, ERR_TOO_LARGE,
                       "%s frame of %lu bytes on request %lu exceeds its limit of %lu bytes",
                       proto_type_name(h.type), (unsigned long)h.length,
                       (unsigned long)h.request_id, (unsigned long)proto_max_len(h.type));
    *out = h;
    return 0;
}

int proto_frame_alloc(const struct proto_header *h, struct proto_frame **out, struct err *e)
{
    struct proto_frame *f;

    *out = NULL;
    if (h->length > PROTO_DATA_MAX && h->length > PROTO_JSON_MAX &&
        h->length > PROTO_ADMIN_REPLY_MAX)
        return err_set(e, ERR_TOO_LARGE, "frame of %lu bytes is too large",
                       (unsigned long)h->length);
    f = calloc(1, sizeof(*f) + (size_t)h->length + 1);
    if (!f)
        return err_set(e, ERR_NOMEM, "out of memory for a %lu-byte %s frame",
                       (unsigned long)h->length, proto_type_name(h->type));
    f->h = *h;
    f->payload = (uint8_t *)(f + 1);
    *out = f;
    return 0;
}

void proto_frame_free(struct proto_frame *f)
{
    free(f);
}

void proto_credit_encode(uint8_t out[4], uint32_t n)
{
    put_u32(out, n);
}

int proto_credit_decode(const void *payload, size_t len, uint32_t *n, struct err *e)
{
    if (len != 4)
        return err_set(e, ERR_PARSE, "CREDIT payload has %zu bytes, expected 4", len);
    *n = get_u32(payload);
    return 0;
}

void proto_data_shared_encode(uint8_t out[PROTO_DATA_SHARED_LEN], uint32_t slot, uint32_t length)
{
    put_u32(out, slot);
    put_u32(out + 4, length);
}

int proto_data_shared_decode(const void *payload, size_t len, uint32_t *slot, uint32_t *length,
                             struct err *e)
{
    if (len != PROTO_DATA_SHARED_LEN)
        return err_set(e, ERR_PARSE, "DATA_SHARED payload has %zu bytes, expected %u", len,
                       PROTO_DATA_SHARED_LEN);
    *slot = get_u32(payload);
    *length = get_u32((const uint8_t *)payload + 4);
    return 0;
}

void proto_shared_free_encode(uint8_t *out, const uint32_t *slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_u32(out + 4 * i, slots[i]);
}

int proto_shared_free_decode(const void *payload, size_t len, uint32_t *slots, size_t *n,
                             struct err *e)
{
    const uint8_t *p = payload;

    *n = 0;
    if (len == 0 || len % 4 || len > PROTO_SHARED_FREE_MAX)
        return err_set(e, ERR_PARSE,
                       "SHARED_FREE payload has %zu bytes, expected 1 to %u slot numbers of 4", len,
                       PROTO_SHARED_SLOTS_MAX);
    for (size_t i = 0; i < len / 4; i++)
        slots[i] = get_u32(p + 4 * i);
    *n = len / 4;
    return 0;
}

void proto_hello_init(struct proto_hello *h, const char *role)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->product, sizeof(h->product), "%s", PROTO_PRODUCT);
    snprintf(h->version, sizeof(h->version), "%s", KASM_VERSION);
    h->proto = PROTO_VERSION;
    snprintf(h->role, sizeof(h->role), "%s", role ? role : "");
}

int proto_hello_check(const struct proto_hello *mine, const struct proto_hello *peer, struct err *e)
{
    if (strcmp(peer->product, PROTO_PRODUCT) != 0)
        return err_set(e, ERR_PROTOCOL,
                       "the peer (%.16s) is \"%.64s\", not %s; it cannot be talked to", peer->role,
                       peer->product, PROTO_PRODUCT);
    if (peer->proto != mine->proto || strcmp(peer->version, mine->version) != 0)
        return err_set(e, ERR_PROTOCOL,
                       "version mismatch: this %.16s is %.32s (protocol %lu), the peer %.16s is "
                       "%.32s (protocol %lu); reinstall so that both come from one package",
                       mine->role, mine->version, (unsigned long)mine->proto, peer->role,
                       peer->version, (unsigned long)peer->proto);
    return 0;
}
