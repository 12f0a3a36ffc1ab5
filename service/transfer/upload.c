/*
 * upload.c - the Dropzone chunk engine (upload.h): the upload registry, per-chunk offset
 * rules, the hidden temp file, the final rename, and the request adapter that drives it all
 * from a streamed multipart body.
 */
#include "upload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "name.h"

#define UPL_PATH_MAX 4096

enum upl_state { UP_ACTIVE, UP_DONE };

struct upl_entry {
    struct upl_entry *next;
    char dzuuid[UPL_UUID_MAX + 1];
    char root[UPL_PATH_MAX]; /* final path of the folder */
    char name[NAME_MAX_BYTES + 1];
    enum upl_state state;
    struct plat_file *file; /* the temp file (ACTIVE), position == received */
    uint64_t received;      /* bytes acknowledged */
    uint64_t total_size, total_chunks;
    int64_t last_activity;
    int busy;    /* a chunk owns it */
    int aborted; /* its last chunk was aborted */
};

struct upl_registry {
    struct upl_config cfg;
    struct plat_mutex *mu;
    struct plat_cond *cond;
    struct upl_entry *head;
    unsigned count, in_flight;
};

enum chunk_mode { CM_WRITE, CM_DISCARD, CM_FAILED };

struct upl_chunk {
    struct upl_registry *reg;
    struct upl_entry *ent;
    enum chunk_mode mode;
    uint64_t start;   /* ent->received when the chunk began */
    uint64_t written; /* bytes of this chunk written (CM_WRITE) */
    int is_last;
    struct upl_result fail; /* CM_FAILED: the answer */
};

static int result(struct upl_result *res, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 3, 4)))
#endif
    ;

static int result(struct upl_result *res, int status, const char *fmt, ...)
{
    va_list ap;
    if (res) {
        res->status = status;
        va_start(ap, fmt);
        vsnprintf(res->message, sizeof(res->message), fmt, ap);
        va_end(ap);
    }
    return status >= 400 ? (status >= 500 ? ERR_IO : ERR_INVALID) : 0;
}

static int64_t now_of(const struct upl_registry *r)
{
    return r->cfg.clock ? r->cfg.clock() : plat_wall_time();
}

int upl_registry_create(const struct upl_config *cfg, struct upl_registry **out, struct err *e)
{
    struct upl_registry *r = calloc(1, sizeof(*r));
    int rc;
    *out = NULL;
    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.max_in_flight)
        r->cfg.max_in_flight = 8;
    if (!r->cfg.max_uploads)
        r->cfg.max_uploads = 256;
    if (r->cfg.stale_seconds <= 0)
        r->cfg.stale_seconds = 3600;
    if (!r->cfg.busy_wait_ms)
        r->cfg.busy_wait_ms = 30000;
    if (!r->cfg.write_fn)
        r->cfg.write_fn = plat_file_write_all;
    if ((rc = plat_mutex_create(&r->mu, e)) < 0 || (rc = plat_cond_create(&r->cond, e)) < 0) {
        if (r->mu)
            plat_mutex_destroy(r->mu);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Unlinks ent from the table (lock held), deletes its temp file, frees it. */
static void entry_remove(struct upl_registry *r, struct upl_entry *ent)
{
    for (struct upl_entry **pp = &r->head; *pp; pp = &(*pp)->next) {
        if (*pp == ent) {
            *pp = ent->next;
            r->count--;
            break;
        }
    }
    if (ent->file) {
        plat_file_delete(ent->file, NULL);
        plat_file_close(ent->file);
    }
    free(ent);
}

void upl_registry_free(struct upl_registry *r)
{
    if (!r)
        return;
    while (r->head)
        entry_remove(r, r->head);
    plat_cond_destroy(r->cond);
    plat_mutex_destroy(r->mu);
    free(r);
}

static int is_stale(const struct upl_registry *r, const struct upl_entry *ent, int64_t now)
{
    return !ent->busy && now - ent->last_activity >= r->cfg.stale_seconds;
}

static int expire_locked(struct upl_registry *r, int64_t now)
{
    int n = 0;
    struct upl_entry *ent = r->head;
    while (ent) {
        struct upl_entry *next = ent->next;
        if (is_stale(r, ent, now)) {
            entry_remove(r, ent);
            n++;
        }
        ent = next;
    }
    return n;
}

static void drop_finished_locked(struct upl_registry *r)
{
    struct upl_entry *ent = r->head;
    while (ent) {
        struct upl_entry *next = ent->next;
        if (!ent->busy && ent->state == UP_DONE)
            entry_remove(r, ent);
        ent = next;
    }
}

int upl_registry_expire(struct upl_registry *r, int64_t now)
{
    int n;
    plat_mutex_lock(r->mu);
    n = expire_locked(r, now);
    plat_mutex_unlock(r->mu);
    return n;
}

unsigned upl_registry_count(struct upl_registry *r)
{
    unsigned n;
    plat_mutex_lock(r->mu);
    n = r->count;
    plat_mutex_unlock(r->mu);
    return n;
}

/* ---- fields ---------------------------------------------------------------------------- */

enum {
    F_UUID = 1,
    F_INDEX = 2,
    F_COUNT = 4,
    F_OFFSET = 8,
    F_TOTAL = 16,
    F_SIZE = 32,
    F_ALL = 63,
};

/* Upper bounds: sizes below 2^53 (what a JavaScript number holds exactly). */
#define UPL_MAX_BYTES  ((uint64_t)1 << 53)
#define UPL_MAX_CHUNKS ((uint64_t)1 << 32)

void upl_fields_init(struct upl_fields *f)
{
    memset(f, 0, sizeof(*f));
}

static int parse_uint(const char *v, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t x = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (x > (max - (uint64_t)(v[i] - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

int upl_fields_set(struct upl_fields *f, const char *name, const char *v, size_t len,
                   struct upl_result *res)
{
    static const struct {
        const char *name;
        unsigned bit;
        uint64_t max;
        size_t off;
    } ints[] = {
        {"dzchunkindex", F_INDEX, UPL_MAX_CHUNKS, offsetof(struct upl_fields, chunk_index)},
        {"dztotalchunkcount", F_COUNT, UPL_MAX_CHUNKS, offsetof(struct upl_fields, total_chunks)},
        {"dzchunkbyteoffset", F_OFFSET, UPL_MAX_BYTES, offsetof(struct upl_fields, byte_offset)},
        {"dztotalfilesize", F_TOTAL, UPL_MAX_BYTES, offsetof(struct upl_fields, total_size)},
        {"dzchunksize", F_SIZE, UPL_MAX_BYTES, offsetof(struct upl_fields, chunk_size)},
    };
    if (strcmp(name, "dzuuid") == 0) {
        if (len < 1 || len > UPL_UUID_MAX)
            return result(res, 400, "dzuuid must be 1 to %d characters", UPL_UUID_MAX);
        for (size_t i = 0; i < len; i++) {
            char c = v[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-'))
                return result(res, 400, "dzuuid may only contain letters, digits and '-'");
        }
        if (f->seen & F_UUID)
            return result(res, 400, "field dzuuid is given twice");
        memcpy(f->dzuuid, v, len);
        f->dzuuid[len] = '\0';
        f->seen |= F_UUID;
        return 1;
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcmp(name, ints[i].name) != 0)
            continue;
        if (f->seen & ints[i].bit)
            return result(res, 400, "field %s is given twice", ints[i].name);
        if (parse_uint(v, len, ints[i].max, (uint64_t *)(void *)((char *)f + ints[i].off)) < 0)
            return result(res, 400, "field %s must be an integer from 0 to %llu", ints[i].name,
                          (unsigned long long)ints[i].max);
        f->seen |= ints[i].bit;
        return 1;
    }
    return 0;
}

int upl_fields_check(const struct upl_fields *f, struct upl_result *res)
{
    static const char *const names[] = {
        "dzuuid",          "dzchunkindex", "dztotalchunkcount", "dzchunkbyteoffset",
        "dztotalfilesize", "dzchunksize"};
    for (unsigned i = 0; i < 6; i++)
        if (!(f->seen & (1u << i)))
            return result(res, 400, "missing field %s", names[i]);
    if (f->total_chunks == 0 || f->chunk_index >= f->total_chunks)
        return result(res, 400, "dzchunkindex must be below dztotalchunkcount");
    if (f->chunk_size == 0)
        return result(res, 400, "dzchunksize must be positive");
    if (f->byte_offset > f->total_size)
        return result(res, 400, "dzchunkbyteoffset is past dztotalfilesize");
    return 0;
}

/* ---- chunks ---------------------------------------------------------------------------- */

static struct upl_entry *find_locked(struct upl_registry *r, const char *dzuuid)
{
    for (struct upl_entry *ent = r->head; ent; ent = ent->next)
        if (strcmp(ent->dzuuid, dzuuid) == 0)
            return ent;
    return NULL;
}

/* Releases the chunk's hold on its entry (lock held) and frees the chunk. */
static void release_locked(struct upl_chunk *c)
{
    struct upl_registry *r = c->reg;
    c->ent->busy = 0;
    c->ent->last_activity = now_of(r);
    r->in_flight--;
    plat_cond_broadcast(r->cond);
    free(c);
}

int upl_chunk_begin(struct upl_registry *r, const char *root, const struct upl_fields *f,
                    const char *filename, struct upl_chunk **out, struct upl_result *res)
{
    char root_final[UPL_PATH_MAX];
    char final_path[UPL_PATH_MAX];
    char temp_name[NAME_MAX_BYTES + 1];
    struct upl_chunk *c = NULL;
    struct upl_entry *ent = NULL;
    struct plat_file_info info;
    struct err e = ERR_INIT;
    uint64_t chunk_len;
    uint64_t deadline = plat_monotonic_ms() + r->cfg.busy_wait_ms;
    int rc, created = 0;

    *out = NULL;
    if ((rc = upl_fields_check(f, res)) < 0)
        return rc;
    if (!filename)
        return result(res, 400, "the file part has no filename");
    if (name_validate(filename, &e) < 0)
        return result(res, 400, "Invalid file name: %s", e.msg);
    if (strncmp(filename, UPL_TEMP_PREFIX, strlen(UPL_TEMP_PREFIX)) == 0)
        return result(res, 400, "Invalid file name: names starting with %s are reserved",
                      UPL_TEMP_PREFIX);
    if (name_root_resolve(root, root_final, sizeof(root_final), &e) < 0)
        return result(res, 500, "Upload folder unavailable: %s", e.msg);
    if (name_join_under(root_final, filename, final_path, sizeof(final_path), &e) < 0)
        return result(res, 400, "Invalid file name: %s", e.msg);
    snprintf(temp_name, sizeof(temp_name), "%s%s%s", UPL_TEMP_PREFIX, f->dzuuid, UPL_TEMP_SUFFIX);
    chunk_len = f->total_size - f->byte_offset;
    if (chunk_len > f->chunk_size)
        chunk_len = f->chunk_size;

    c = calloc(1, sizeof(*c));
    if (!c)
        return result(res, 500, "out of memory");
    c->reg = r;
    c->is_last = f->chunk_index + 1 == f->total_chunks;

    plat_mutex_lock(r->mu);
    for (;;) {
        uint64_t now_ms;
        ent = find_locked(r, f->dzuuid);
        if (!ent || !ent->busy)
            break;
        now_ms = plat_monotonic_ms();
        if (now_ms >= deadline ||
            plat_cond_wait(r->cond, r->mu, (uint32_t)(deadline - now_ms)) == ERR_TIMEOUT) {
            ent = find_locked(r, f->dzuuid);
            if (ent && ent->busy) {
                rc = result(res, 409, "Another chunk of this upload is in progress");
                goto unlock_fail;
            }
            break;
        }
    }
    if (r->in_flight >= r->cfg.max_in_flight) {
        rc = result(res, 503, "Too many uploads in progress");
        goto unlock_fail;
    }
    if (ent) {
        if (strcmp(ent->root, root_final) != 0 || strcmp(ent->name, filename) != 0) {
            rc = result(res, 400, "dzuuid belongs to another file");
            goto unlock_fail;
        }
        if (ent->total_size != f->total_size || ent->total_chunks != f->total_chunks) {
            rc = result(res, 400, "dztotalfilesize or dztotalchunkcount changed during the upload");
            goto unlock_fail;
        }
        if ((f->byte_offset < ent->received || ent->state == UP_DONE) &&
            f->byte_offset + chunk_len <= ent->received) {
            c->mode = CM_DISCARD; /* a retry of a chunk already stored */
        } else if (ent->state == UP_ACTIVE && f->byte_offset == ent->received) {
            c->mode = CM_WRITE;
        } else {
            rc = result(res, 400, "Chunk offset %llu does not match the %llu bytes received",
                        (unsigned long long)f->byte_offset, (unsigned long long)ent->received);
            goto unlock_fail;
        }
    } else {
        if (f->chunk_index != 0) {
            rc = result(res, 400,
                        "Unknown upload: chunk 0 was not received or the upload "
                        "expired");
            goto unlock_fail;
        }
        if (f->byte_offset != 0) {
            rc = result(res, 400, "Chunk offset %llu does not match the 0 bytes received",
                        (unsigned long long)f->byte_offset);
            goto unlock_fail;
        }
        /* Stale or abandoned (aborted) uploads of the same file make way. */
        for (struct upl_entry *o = r->head, *next; o; o = next) {
            next = o->next;
            if (!o->busy && o->state == UP_ACTIVE && strcmp(o->root, root_final) == 0 &&
                strcmp(o->name, filename) == 0 && (o->aborted || is_stale(r, o, now_of(r))))
                entry_remove(r, o);
        }
        if (r->count >= r->cfg.max_uploads)
            expire_locked(r, now_of(r));
        if (r->count >= r->cfg.max_uploads)
            drop_finished_locked(r); /* kept only to answer retries: they make way first */
        if (r->count >= r->cfg.max_uploads) {
            rc = result(res, 503, "Too many uploads in progress");
            goto unlock_fail;
        }
        rc = plat_path_stat(final_path, &info, &e);
        if (rc == 0) {
            rc = result(res, 400, "File already exists");
            goto unlock_fail;
        }
        if (rc != ERR_NOT_FOUND) {
            rc = result(res, 500, "Cannot check the target file: %s", e.msg);
            goto unlock_fail;
        }
        ent = calloc(1, sizeof(*ent));
        if (!ent) {
            rc = result(res, 500, "out of memory");
            goto unlock_fail;
        }
        memcpy(ent->dzuuid, f->dzuuid, sizeof(ent->dzuuid));
        memcpy(ent->root, root_final, strlen(root_final) + 1);
        memcpy(ent->name, filename, strlen(filename) + 1);
        ent->state = UP_ACTIVE;
        ent->total_size = f->total_size;
        ent->total_chunks = f->total_chunks;
        ent->next = r->head;
        r->head = ent;
        r->count++;
        created = 1;
        c->mode = CM_WRITE;
    }
    ent->busy = 1;
    ent->aborted = 0;
    ent->last_activity = now_of(r);
    r->in_flight++;
    c->ent = ent;
    c->start = ent->received;
    plat_mutex_unlock(r->mu);

    if (created) {
        rc = name_open_under_resolved(root_final, temp_name,
                                      PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW | PLAT_OPEN_HIDDEN,
                                      &ent->file, &e);
        if (rc < 0) {
            if (rc == ERR_NO_SPACE)
                result(res, 400, "No Space available");
            else if (rc == ERR_EXISTS)
                result(res, 409, "A temporary file for this upload already exists");
            else
                result(res, 500, "Cannot create the temporary file: %s", e.msg);
            plat_mutex_lock(r->mu);
            ent->busy = 0;
            r->in_flight--;
            entry_remove(r, ent);
            plat_cond_broadcast(r->cond);
            plat_mutex_unlock(r->mu);
            free(c);
            return rc < 0 ? rc : ERR_IO;
        }
    }
    *out = c;
    return 0;

unlock_fail:
    plat_mutex_unlock(r->mu);
    free(c);
    return rc < 0 ? rc : ERR_INVALID;
}

/* The chunk failed and the whole partial upload goes: remember the answer. */
static int chunk_fail(struct upl_chunk *c, int status, const char *msg, struct upl_result *res)
{
    c->mode = CM_FAILED;
    c->fail.status = status;
    snprintf(c->fail.message, sizeof(c->fail.message), "%s", msg);
    if (res)
        *res = c->fail;
    return status >= 500 ? ERR_IO : ERR_INVALID;
}

int upl_chunk_write(struct upl_chunk *c, const void *data, size_t len, struct upl_result *res)
{
    struct upl_entry *ent = c->ent;
    struct err e = ERR_INIT;
    int rc;

    if (c->mode == CM_FAILED) {
        if (res)
            *res = c->fail;
        return c->fail.status >= 500 ? ERR_IO : ERR_INVALID;
    }
    if (c->mode == CM_DISCARD || len == 0)
        return 0;
    if (c->start + c->written + len > ent->total_size)
        return chunk_fail(c, 500, "Size mismatch", res);
    rc = c->reg->cfg.write_fn(ent->file, data, len, &e);
    if (rc == ERR_NO_SPACE)
        return chunk_fail(c, 400, "No Space available", res);
    if (rc < 0) {
        char msg[ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "Write failed: %.400s", e.msg);
        return chunk_fail(c, 500, msg, res);
    }
    c->written += len;
    return 0;
}

int upl_chunk_end(struct upl_chunk *c, struct upl_result *res)
{
    struct upl_registry *r = c->reg;
    struct upl_entry *ent = c->ent;
    char temp_path[UPL_PATH_MAX], final_path[UPL_PATH_MAX];
    struct err e = ERR_INIT;
    int rc = 0;

    if (c->mode == CM_WRITE) {
        ent->received = c->start + c->written;
        if (c->is_last && ent->received != ent->total_size)
            chunk_fail(c, 500, "Size mismatch", NULL);
    }
    if (c->mode == CM_WRITE && c->is_last) {
        /* Complete: unhide, close, then rename into place without replacing anything. */
        if (plat_file_final_path(ent->file, temp_path, sizeof(temp_path), &e) < 0 ||
            name_join_under(ent->root, ent->name, final_path, sizeof(final_path), &e) < 0) {
            char msg[ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "Cannot finish the upload: %.400s", e.msg);
            chunk_fail(c, 500, msg, NULL);
        } else if (plat_file_set_hidden(ent->file, 0, &e) < 0) {
            char msg[ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "Cannot finish the upload: %.400s", e.msg);
            chunk_fail(c, 500, msg, NULL);
        } else {
            plat_file_close(ent->file);
            ent->file = NULL;
            rc = plat_path_rename_new(temp_path, final_path, &e);
            if (rc < 0) {
                plat_path_remove(temp_path, NULL);
                if (rc == ERR_EXISTS) {
                    chunk_fail(c, 400, "File already exists", NULL);
                } else {
                    char msg[ERR_MSG_MAX];
                    snprintf(msg, sizeof(msg), "Cannot finish the upload: %.400s", e.msg);
                    chunk_fail(c, 500, msg, NULL);
                }
            } else {
                ent->state = UP_DONE;
            }
        }
    }

    plat_mutex_lock(r->mu);
    if (c->mode == CM_FAILED) {
        if (res)
            *res = c->fail;
        rc = c->fail.status >= 500 ? ERR_IO : ERR_INVALID;
        c->ent = NULL;
        ent->busy = 0;
        r->in_flight--;
        entry_remove(r, ent);
        plat_cond_broadcast(r->cond);
        free(c);
    } else {
        rc = result(res, 200, "uploaded Chunk");
        release_locked(c);
    }
    plat_mutex_unlock(r->mu);
    return rc;
}

void upl_chunk_abort(struct upl_chunk *c)
{
    struct upl_registry *r = c->reg;
    struct upl_entry *ent = c->ent;
    int drop = c->mode == CM_FAILED;

    if (c->mode == CM_WRITE && c->written > 0) {
        if (plat_file_truncate(ent->file, c->start, NULL) < 0 ||
            plat_file_seek(ent->file, c->start, NULL) < 0)
            drop = 1;
    }
    plat_mutex_lock(r->mu);
    if (drop) {
        ent->busy = 0;
        r->in_flight--;
        entry_remove(r, ent);
        plat_cond_broadcast(r->cond);
        free(c);
    } else {
        ent->aborted = 1;
        release_locked(c);
    }
    plat_mutex_unlock(r->mu);
}

/* ---- the request adapter --------------------------------------------------------------- */

struct upl_request {
    struct upl_registry *reg;
    char root[UPL_PATH_MAX];
    struct mp_parser *mp;
    struct upl_fields fields;
    struct upl_chunk *chunk;
    int in_file; /* the current part is the file */
    int file_seen;
    char fname[MP_NAME_MAX + 1];
    char fval[MP_MAX_FIELD_BYTES + 1];
    size_t flen;
    int failed;
    struct upl_result res;
};

static int rq_fail(struct upl_request *q, int status, const char *msg, struct err *e)
{
    if (!q->failed) {
        q->failed = 1;
        q->res.status = status;
        snprintf(q->res.message, sizeof(q->res.message), "%s", msg);
    }
    return err_set(e, status >= 500 ? ERR_IO : ERR_INVALID, "%s", q->res.message);
}

static int rq_part_begin(void *ctx, const struct mp_part_info *p, struct err *e)
{
    struct upl_request *q = ctx;
    struct upl_result res;
    q->in_file = 0;
    if (strcmp(p->name, "file") == 0) {
        if (q->file_seen)
            return rq_fail(q, 400, "more than one file part", e);
        q->file_seen = 1;
        if (!p->filename)
            return rq_fail(q, 400, "the file part has no filename", e);
        if (upl_chunk_begin(q->reg, q->root, &q->fields, p->filename, &q->chunk, &res) < 0)
            return rq_fail(q, res.status, res.message, e);
        q->in_file = 1;
        return 0;
    }
    snprintf(q->fname, sizeof(q->fname), "%s", p->name);
    q->flen = 0;
    return 0;
}

static int rq_part_data(void *ctx, const void *data, size_t len, struct err *e)
{
    struct upl_request *q = ctx;
    struct upl_result res;
    if (q->in_file) {
        if (upl_chunk_write(q->chunk, data, len, &res) < 0)
            return rq_fail(q, res.status, res.message, e);
        return 0;
    }
    if (q->flen + len > MP_MAX_FIELD_BYTES) /* the parser enforces it too */
        return rq_fail(q, 400, "a form field is too large", e);
    memcpy(q->fval + q->flen, data, len);
    q->flen += len;
    return 0;
}

static int rq_part_end(void *ctx, struct err *e)
{
    struct upl_request *q = ctx;
    struct upl_result res;
    if (q->in_file) {
        q->in_file = 0;
        return 0; /* committed when the final boundary arrives */
    }
    q->fval[q->flen] = '\0';
    if (q->file_seen)
        return 0; /* fields after the file are ignored */
    if (upl_fields_set(&q->fields, q->fname, q->fval, q->flen, &res) < 0)
        return rq_fail(q, res.status, res.message, e);
    return 0;
}

int upl_request_begin(struct upl_registry *r, const char *root, const char *content_type,
                      struct upl_request **out, struct upl_result *res)
{
    static const struct mp_callbacks cb = {rq_part_begin, rq_part_data, rq_part_end, NULL};
    char boundary[MP_BOUNDARY_MAX + 1];
    struct err e = ERR_INIT;
    struct upl_request *q;

    *out = NULL;
    if (strlen(root) >= UPL_PATH_MAX)
        return result(res, 500, "upload folder path too long");
    if (mp_boundary_from_content_type(content_type, boundary, sizeof(boundary), &e) < 0)
        return result(res, 400, "Bad upload request: %s", e.msg);
    q = calloc(1, sizeof(*q));
    if (!q)
        return result(res, 500, "out of memory");
    q->reg = r;
    memcpy(q->root, root, strlen(root) + 1);
    upl_fields_init(&q->fields);
    if (mp_parser_create(boundary, &cb, q, &q->mp, &e) < 0) {
        free(q);
        return result(res, 400, "Bad upload request: %s", e.msg);
    }
    *out = q;
    return 0;
}

int upl_request_feed(struct upl_request *q, const void *data, size_t len, struct upl_result *res)
{
    struct err e = ERR_INIT;
    if (!q->failed && mp_parser_feed(q->mp, data, len, &e) < 0 && !q->failed) {
        q->failed = 1;
        q->res.status = e.code == ERR_TOO_LARGE ? 413 : 400;
        snprintf(q->res.message, sizeof(q->res.message), "Bad upload request: %.400s", e.msg);
    }
    if (q->failed) {
        if (res)
            *res = q->res;
        return q->res.status >= 500 ? ERR_IO : ERR_INVALID;
    }
    return 0;
}

static void rq_free(struct upl_request *q)
{
    mp_parser_free(q->mp);
    free(q);
}

int upl_request_finish(struct upl_request *q, struct upl_result *res)
{
    struct err e = ERR_INIT;
    int rc;
    if (!q->failed && mp_parser_finish(q->mp, &e) < 0) {
        q->failed = 1;
        q->res.status = 400;
        snprintf(q->res.message, sizeof(q->res.message), "Bad upload request: %.400s", e.msg);
    }
    if (!q->failed && !q->file_seen) {
        q->failed = 1;
        q->res.status = 400;
        snprintf(q->res.message, sizeof(q->res.message), "Bad upload request: no file part");
    }
    if (q->chunk) {
        if (q->failed && q->res.status != 0 && !mp_parser_is_done(q->mp)) {
            /* the body was cut or malformed: the chunk never completed */
            upl_chunk_abort(q->chunk);
        } else {
            struct upl_result cres;
            upl_chunk_end(q->chunk, &cres);
            if (!q->failed || cres.status >= 400)
                q->res = cres;
            q->failed = q->res.status >= 400;
        }
        q->chunk = NULL;
    }
    if (res)
        *res = q->res;
    rc = q->res.status >= 400 ? (q->res.status >= 500 ? ERR_IO : ERR_INVALID) : 0;
    rq_free(q);
    return rc;
}

void upl_request_abort(struct upl_request *q)
{
    if (q->chunk)
        upl_chunk_abort(q->chunk);
    rq_free(q);
}
