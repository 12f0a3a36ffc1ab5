/*
 * proto.h - the message set and codec shared by the service, the session helper and (issue 8)
 * agentctl: the 16-byte frame header, the per-type size limits, and an encoder/decoder for
 * every JSON control message. No I/O here (pchan.h moves bytes, pmux.h multiplexes requests).
 *
 * Frame: header (16 bytes, little-endian) then `length` payload bytes.
 *     u32 magic_version   PROTO_MAGIC << 16 | PROTO_VERSION
 *     u32 type            enum proto_type
 *     u32 length          payload bytes; <= proto_max_len(type), checked BEFORE allocating
 *     u32 request_id      0 for channel-level frames (HELLO, LOG); else the request's id
 *
 * Requests and streams: the side that starts a request picks a fresh request id from its own
 * id space (pmux.h) and sends the request frame (DL_OPEN, UPLOAD_BEGIN, SHOT, ...). Every
 * frame of that request carries the same id. Bulk bytes travel as DATA frames, ended by END,
 * and are flow-controlled: a sender may have at most the receiver's advertised window of DATA
 * bytes unacknowledged; the receiver returns CREDIT frames as it consumes them. ERROR ends a
 * request with an HTTP-like status; CANCEL abandons it (either side).
 *
 * The catalogue (JSON field names are the contract; unknown fields are ignored):
 *   HELLO        both ways, first frame, id 0. {"product","version","proto","role","pid",
 *                "window","session_id","user","shared"}; "shared" (optional, default 0): the
 *                bytes of the shared window the sender created (service) or mapped (helper).
 *                Different product versions refuse each other.
 *   ERROR        {"status": int, "message": str} - ends the request; status is HTTP-like
 *                (404 not found, 400 bad input, 500 failure, 503 unavailable).
 *   LOG          helper -> service, id 0: {"level": "error|warning|info|debug", "message"}.
 *   CREDIT       binary: u32 LE, n more DATA bytes may be sent on this request.
 *   DATA         binary: a piece of the request's stream, at most PROTO_DATA_MAX bytes.
 *   DATA_SHARED  service -> helper, binary: u32 LE slot, u32 LE length - a DATA piece whose
 *                bytes are in slot `slot` (PROTO_DATA_MAX bytes each) of the shared window
 *                (pshm.h) instead of the frame. Counts as DATA for flow control. Sent only to
 *                a helper whose HELLO "shared" equals the window's size; the slot stays the
 *                helper's until it answers SHARED_FREE.
 *   SHARED_FREE  helper -> service, id 0, binary: u32 LE slot numbers (1 to
 *                PROTO_SHARED_SLOTS_MAX of them) - done with those slots.
 *   END          empty: the sender's stream of this request is complete.
 *   CANCEL       empty: the sender abandons the request; the receiver stops and frees it.
 *   PING / PONG  empty; PING may be sent on any new id, answered by PONG on the same id.
 *   DL_OPEN      service -> helper: {"path": the URL path after "/Downloads/Downloads/",
 *                still percent-encoded, no query}. Answer DL_INFO, or ERROR 404/500. The
 *                request stays open: the service then sends exactly one of DL_READ, DL_LIST
 *                or CANCEL on the same id.
 *   DL_INFO      {"kind": "dir"|"file", "trailing_slash": bool, "name": str, "size": u64,
 *                "mtime": i64 (Unix seconds)}
 *   DL_READ      {"offset": u64, "length": u64} - the helper sends DATA... END (fewer bytes
 *                only if the file got shorter) or ERROR.
 *   DL_LIST      {"heading": str, "show_hidden": bool} - the helper sends the HTML listing of
 *                the opened directory as DATA... END, or ERROR.
 *   UPLOAD_BEGIN {"content_type": str, "content_length": i64 (-1: unknown)} - the service then
 *                sends the raw request body as DATA... END (or CANCEL when the client went
 *                away); the helper answers UPLOAD_RESULT once (possibly early, after which
 *                the service stops sending and closes the request).
 *   UPLOAD_RESULT {"status": int, "message": str} - the Dropzone answer (200 "uploaded Chunk").
 *   SHOT         {"width": int} - answer SHOT_INFO then the PNG as DATA... END, or ERROR
 *                (503 when there is no display).
 *   SHOT_INFO    {"width": int, "height": int, "size": u64 (PNG bytes that follow)}
 *   ADMIN_REQUEST agentctl -> service on the admin channel (docs/admin.md): {"command": str
 *                (e.g. "status", "token status"), "args": object (command options)}.
 *   ADMIN_REPLY  service -> agentctl, the answer: {"status": int (0 ok, else the agentctl exit
 *                code 2..127), "error": str ("" when ok), "result": object}. Up to
 *                PROTO_ADMIN_REPLY_MAX bytes (a `logs` result is bigger than other messages).
 *                The `screenshot` reply (status 0) is followed on the same connection by the
 *                PNG as DATA frames (request id 1, no CREDIT: the channel carries nothing else)
 *                and END; its result's "bytes" says how many.
 *   FILE_PUT     service -> helper (file mappings, docs/sessions.md): {"path": str (relative to
 *                the user's profile, '/'-separated), "size": u64 (<= PROTO_FILE_PUT_MAX),
 *                "readable": bool, "writable": bool, "executable": bool (the user's access
 *                to the file, applied by the helper)} -
 *                the service then sends exactly size bytes as DATA... END; the helper
 *                answers FILE_RESULT once (possibly early, after which the service stops).
 *   FILE_DELETE  service -> helper: {"path": str} as for FILE_PUT; answer FILE_RESULT.
 *   FILE_RESULT  {"status": int, "message": str}: 200 done, 404 (delete: no such file),
 *                400 refused path, 403 leads out of the profile, 500 failure.
 * Types 64..127 are reserved for the admin channel (agentctl, issue 8).
 */
#ifndef KASM_PROTO_H
#define KASM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PROTO_MAGIC       0x4B41u /* "KA" */
#define PROTO_VERSION     1u
#define PROTO_HEADER_SIZE 16u
#define PROTO_DATA_MAX    (256u * 1024u) /* largest DATA payload */
#define PROTO_JSON_MAX    (16u * 1024u)  /* largest JSON control payload */
#define PROTO_PRODUCT     "kasm-open-agent"

enum proto_type {
    PROTO_HELLO = 1,
    PROTO_ERROR = 2,
    PROTO_LOG = 3,
    PROTO_CREDIT = 4,
    PROTO_DATA = 5,
    PROTO_END = 6,
    PROTO_CANCEL = 7,
    PROTO_PING = 8,
    PROTO_PONG = 9,
    PROTO_DATA_SHARED = 10,
    PROTO_SHARED_FREE = 11,
    PROTO_DL_OPEN = 16,
    PROTO_DL_INFO = 17,
    PROTO_DL_READ = 18,
    PROTO_DL_LIST = 19,
    PROTO_UPLOAD_BEGIN = 20,
    PROTO_UPLOAD_RESULT = 21,
    PROTO_SHOT = 22,
    PROTO_SHOT_INFO = 23,
    PROTO_FILE_PUT = 24,
    PROTO_FILE_DELETE = 25,
    PROTO_FILE_RESULT = 26,
    PROTO_ADMIN_REQUEST = 64,
    PROTO_ADMIN_REPLY = 65,
};

struct proto_header {
    uint16_t magic;
    uint16_t version;
    uint32_t type;
    uint32_t length;
    uint32_t request_id;
};

/* A received frame: one allocation; payload has length + 1 bytes, the last one NUL - except
 * a DATA frame with shared_slot set (pmux.c): its payload points into the shared window's
 * slot shared_slot - 1 and has no NUL after it. */
struct proto_frame {
    struct proto_header h;
    uint8_t *payload;
    uint32_t shared_slot;
};

/* Writes the 16-byte header for (type, length, request_id) at out. */
void proto_header_encode(uint8_t out[PROTO_HEADER_SIZE], uint32_t type, uint32_t length,
                         uint32_t request_id);
/*
 * Decodes and checks a header: wrong magic -> ERR_PROTOCOL ("not a kasm-open-agent
 * channel"); other version -> ERR_PROTOCOL naming both versions; unknown type ->
 * ERR_PROTOCOL; length above proto_max_len(type) -> ERR_TOO_LARGE. Nothing is allocated.
 */
int proto_header_decode(const uint8_t in[PROTO_HEADER_SIZE], struct proto_header *out,
                        struct err *e);
/* The largest payload allowed for type (0 for unknown types and for empty-only types). */
uint32_t proto_max_len(uint32_t type);
/* "HELLO", "DATA", ... or "UNKNOWN". */
const char *proto_type_name(uint32_t type);
/* Allocates a frame for a decoded header (payload zeroed, NUL-terminated); ERR_NOMEM. */
int proto_frame_alloc(const struct proto_header *h, struct proto_frame **out, struct err *e);
void proto_frame_free(struct proto_frame *f);

/* ---- JSON control messages: *_encode returns a malloc'd JSON text (caller frees) and its
 * length; *_decode parses payload[0..len) (ERR_PARSE with the field named on bad input;
 * strings too long for their buffer are ERR_TOO_LARGE). ---- */

#define PROTO_NAME_MAX 256  /* user names, roles, kinds */
#define PROTO_TEXT_MAX 1024 /* messages, headings */
#define PROTO_PATH_MAX 4096

struct proto_hello {
    char product[64]; /* PROTO_PRODUCT */
    char version[32]; /* KASM_VERSION of the sender */
    uint32_t proto;   /* PROTO_VERSION */
    char role[16];    /* "service", "helper", "agentctl" */
    uint32_t pid;
    uint32_t window;     /* DATA bytes the sender accepts unacknowledged per request */
    uint32_t session_id; /* helper: its terminal session; else 0 */
    char user[PROTO_NAME_MAX];
    uint32_t shared; /* bytes of the shared window created (service) or mapped (helper); 0 */
};
/* Fills product, version, proto and role for this build. */
void proto_hello_init(struct proto_hello *h, const char *role);
/* Refuses a peer of another product, protocol or version: ERR_PROTOCOL with a message that
 * names both sides' versions and says to reinstall so both come from one package. */
int proto_hello_check(const struct proto_hello *mine, const struct proto_hello *peer,
                      struct err *e);

struct proto_error {
    int status;
    char message[PROTO_TEXT_MAX];
};
struct proto_log {
    char level[16];
    char message[PROTO_TEXT_MAX];
};
struct proto_dl_open {
    char path[PROTO_PATH_MAX];
};
struct proto_dl_info {
    char kind[8]; /* "dir" or "file" */
    int trailing_slash;
    char name[PROTO_NAME_MAX * 4];
    uint64_t size;
    int64_t mtime;
};
struct proto_dl_read {
    uint64_t offset, length;
};
struct proto_dl_list {
    char heading[PROTO_PATH_MAX + 64];
    int show_hidden;
};
struct proto_upload_begin {
    char content_type[PROTO_TEXT_MAX];
    int64_t content_length;
};
struct proto_upload_result {
    int status;
    char message[PROTO_TEXT_MAX];
};
struct proto_shot {
    int width;
};
struct proto_shot_info {
    int width, height;
    uint64_t size;
};

#define PROTO_FILE_PUT_MAX (64ull * 1024u * 1024u) /* largest FILE_PUT "size" */
struct proto_file_put {
    char path[PROTO_PATH_MAX];
    uint64_t size;
    int readable, writable, executable; /* 0 or 1 */
};
struct proto_file_delete {
    char path[PROTO_PATH_MAX];
};
struct proto_file_result {
    int status;
    char message[PROTO_TEXT_MAX];
};

/* The admin channel (agentctl; docs/admin.md). */
#define PROTO_ADMIN_COMMAND_MAX 64
#define PROTO_ADMIN_ARGS_MAX    2048           /* the args object, compact JSON */
#define PROTO_ADMIN_REPLY_MAX   (256u * 1024u) /* largest ADMIN_REPLY payload */
#define PROTO_ADMIN_STATUS_MAX  127
struct proto_admin_request {
    char command[PROTO_ADMIN_COMMAND_MAX];
    char args[PROTO_ADMIN_ARGS_MAX]; /* a JSON object as compact text; "" encodes as {} */
};
struct proto_admin_reply {
    int status; /* 0 ok; else the agentctl exit code, 2..PROTO_ADMIN_STATUS_MAX */
    char error[PROTO_TEXT_MAX];
    char *result; /* a JSON object as compact text: NULL encodes as {}; the decoder allocates
                     it (free with proto_admin_reply_clear) */
};
/* Frees m->result and sets it to NULL. */
void proto_admin_reply_clear(struct proto_admin_reply *m);

#define PROTO_CODEC(name)                                                                          \
    int proto_##name##_encode(const struct proto_##name *m, char **out, size_t *len,               \
                              struct err *e);                                                      \
    int proto_##name##_decode(const void *payload, size_t len, struct proto_##name *m,             \
                              struct err *e);
PROTO_CODEC(hello)
PROTO_CODEC(error)
PROTO_CODEC(log)
PROTO_CODEC(dl_open)
PROTO_CODEC(dl_info)
PROTO_CODEC(dl_read)
PROTO_CODEC(dl_list)
PROTO_CODEC(upload_begin)
PROTO_CODEC(upload_result)
PROTO_CODEC(shot)
PROTO_CODEC(shot_info)
PROTO_CODEC(file_put)
PROTO_CODEC(file_delete)
PROTO_CODEC(file_result)
PROTO_CODEC(admin_request)
PROTO_CODEC(admin_reply)
#undef PROTO_CODEC

/* CREDIT payload: 4 bytes little-endian. */
void proto_credit_encode(uint8_t out[4], uint32_t n);
int proto_credit_decode(const void *payload, size_t len, uint32_t *n, struct err *e);
/* DATA_SHARED {slot, length}: 8 bytes. SHARED_FREE {slot...}: 4 bytes a slot; a window
 * has at most PROTO_SHARED_SLOTS_MAX slots (more memory than that is left unused). */
#define PROTO_DATA_SHARED_LEN  8u
#define PROTO_SHARED_SLOTS_MAX 64u
#define PROTO_SHARED_FREE_MAX  (4u * PROTO_SHARED_SLOTS_MAX)
void proto_data_shared_encode(uint8_t out[PROTO_DATA_SHARED_LEN], uint32_t slot, uint32_t length);
int proto_data_shared_decode(const void *payload, size_t len, uint32_t *slot, uint32_t *length,
                             struct err *e);
/* out: 4 * n bytes (n <= PROTO_SHARED_SLOTS_MAX). */
void proto_shared_free_encode(uint8_t *out, const uint32_t *slots, size_t n);
/* slots: room for PROTO_SHARED_SLOTS_MAX; *n: how many were listed (at least 1). */
int proto_shared_free_decode(const void *payload, size_t len, uint32_t *slots, size_t *n,
                             struct err *e);

#endif
