/*
 * profile_put.c - FILE_PUT / FILE_DELETE: file mappings written and removed as the user
 * (profile_put.h has the rules). Portable: everything goes through name.h and plat.h.
 */
#include "profile_put.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "helper"
#include "fsutil.h"
#include "log.h"
#include "name.h"
#include "plat.h"
#include "pmux.h"
#include "proto.h"

#define HLP_PROF_PATH_MAX 4096
#define HLP_PROF_IDLE_MS  120000u /* a FILE_PUT with no frame for 2 minutes is dropped */
#define HLP_PROF_TEMP_PFX ".kasm-put-"
#define HLP_PROF_NO_PROF  "The user's profile folder is not available to the session helper"

int hlp_prof_split(const char *rel, char *buf, size_t cap, char **comps, int max, int *n,
                   struct err *e)
{
    size_t len = rel ? strlen(rel) : 0;
    char *p, *slash;
    int count = 0;

    *n = 0;
    if (len == 0)
        return err_set(e, ERR_INVALID, "the path is empty");
    if (rel[0] == '/' || rel[0] == '\\')
        return err_set(e, ERR_INVALID, "the path must be relative to the profile");
    if (len + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the path is too long");
    memcpy(buf, rel, len + 1);
    for (p = buf; p; p = slash ? slash + 1 : NULL) {
        struct err ne = ERR_INIT;
        slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (count == max)
            return err_set(e, ERR_TOO_LARGE, "the path has more than %d components", max);
        if (name_validate(p, &ne) < 0)
            return err_set(e, ERR_INVALID, "path component %d: %s", count + 1, ne.msg);
        comps[count++] = p;
    }
    *n = count;
    return 0;
}

int hlp_prof_walk(const char *profile_final, char *const *comps, int n, int create, char *out,
                  size_t cap, struct err *e)
{
    char cur[HLP_PROF_PATH_MAX], next[HLP_PROF_PATH_MAX];
    int i, rc;

    if (snprintf(cur, sizeof(cur), "%s", profile_final) >= (int)sizeof(cur))
        return err_set(e, ERR_TOO_LARGE, "the profile path is too long");
    for (i = 0; i < n; i++) {
        struct plat_file_info st;
        struct err se = ERR_INIT;
        if ((rc = fs_join(cur, comps[i], next, sizeof(next), e)) < 0)
            return rc;
        rc = plat_path_stat(next, &st, &se);
        if (rc == ERR_NOT_FOUND && create) {
            if ((rc = plat_dir_create(next, e)) < 0)
                return rc;
            log_debug("created the folder %s", next);
            rc = plat_path_stat(next, &st, e);
        } else if (rc < 0) {
            return err_set(e, rc, "%s", se.msg);
        }
        if (rc < 0)
            return rc;
        if (st.is_link)
            return err_set(e, ERR_PERMISSION,
                           "%s is a link or junction; file mappings never follow links in the "
                           "profile",
                           next);
        if (!st.is_dir)
            return err_set(e, ERR_INVALID, "%s is not a folder", next);
        if ((rc = plat_dir_final_path(next, cur, sizeof(cur), e)) < 0)
            return rc;
        if (!name_path_is_under(profile_final, cur))
            return err_set(e, ERR_PERMISSION, "%s leads out of the user's profile (to %s)", next,
                           cur);
    }
    if (snprintf(out, cap, "%s", cur) >= (int)cap)
        return err_set(e, ERR_TOO_LARGE, "the folder path is too long");
    return 0;
}

static void prof_result(struct pmux_stream *s, int status, const char *message)
{
    struct proto_file_result *r = calloc(1, sizeof(*r));
    char *json = NULL;
    size_t len = 0;

    if (!r)
        return;
    r->status = status;
    snprintf(r->message, sizeof(r->message), "%.1000s", message);
    if (proto_file_result_encode(r, &json, &len, NULL) == 0)
        pmux_send(s, PROTO_FILE_RESULT, json, len, NULL);
    free(json);
    free(r);
}

static int prof_status(int rc)
{
    switch (rc) {
    case ERR_INVALID:
    case ERR_TOO_LARGE:
    case ERR_PARSE:
        return 400;
    case ERR_PERMISSION:
        return 403;
    case ERR_NOT_FOUND:
        return 404;
    default:
        return 500;
    }
}

/*
 * Resolves rel for a request: the profile's final path, the validated components, the final
 * path of the file's folder (created when create), and the destination path in it.
 */
static int prof_resolve(const char *profile, const char *rel, int create, char *dir, char *dest,
                        char *name, struct err *e)
{
    char prof_final[HLP_PROF_PATH_MAX], buf[PROTO_PATH_MAX], *comps[HLP_PROF_DEPTH];
    int n = 0, rc;

    if ((rc = hlp_prof_split(rel, buf, sizeof(buf), comps, HLP_PROF_DEPTH, &n, e)) < 0 ||
        (rc = name_root_resolve(profile, prof_final, sizeof(prof_final), e)) < 0 ||
        (rc = hlp_prof_walk(prof_final, comps, n - 1, create, dir, HLP_PROF_PATH_MAX, e)) < 0 ||
        (rc = fs_join(dir, comps[n - 1], dest, HLP_PROF_PATH_MAX, e)) < 0)
        return rc;
    snprintf(name, NAME_MAX_BYTES + 1, "%s", comps[n - 1]);
    return 0;
}

/* The destination must be absent or a plain file (never a link or a folder). */
static int prof_check_dest(const char *dest, int must_exist, struct err *e)
{
    struct plat_file_info st;
    struct err se = ERR_INIT;
    int rc = plat_path_stat(dest, &st, &se);

    if (rc == ERR_NOT_FOUND && !must_exist)
        return 0;
    if (rc < 0)
        return err_set(e, rc, "%s", se.msg);
    if (st.is_link)
        return err_set(e, ERR_PERMISSION,
                       "%s is a link or junction; file mappings never follow links in the "
                       "profile",
                       dest);
    if (st.is_dir)
        return err_set(e, ERR_INVALID, "%s is a folder", dest);
    return 0;
}

/* Receives exactly want bytes of DATA then END into f. */
static int prof_receive(struct pmux_stream *s, struct plat_file *f, uint64_t want, struct err *e)
{
    uint64_t got = 0;
    int rc = 0;

    for (;;) {
        struct proto_frame *fr = NULL;
        uint32_t type;
        if ((rc = pmux_recv(s, HLP_PROF_IDLE_MS, &fr, e)) < 0) {
            err_prefix(e, "receiving the file");
            return rc;
        }
        type = fr->h.type;
        if (type == PROTO_DATA) {
            if (fr->h.length > want - got)
                rc = err_set(e, ERR_INVALID, "more bytes than the announced %llu",
                             (unsigned long long)want);
            else if ((rc = plat_file_write_all(f, fr->payload, fr->h.length, e)) == 0)
                got += fr->h.length;
        } else if (type == PROTO_END) {
            if (got != want)
                rc = err_set(e, ERR_INVALID, "%llu bytes received, %llu announced",
                             (unsigned long long)got, (unsigned long long)want);
        } else if (type == PROTO_CANCEL) {
            rc = err_set(e, ERR_CANCELLED, "the service cancelled the file");
        } else {
            rc = err_set(e, ERR_PROTOCOL, "unexpected %s", proto_type_name(type));
        }
        pmux_frame_free(s, fr);
        if (rc < 0 || type != PROTO_DATA)
            return rc;
    }
}

void hlp_prof_put(struct pmux_stream *s, const struct proto_frame *first, const char *profile)
{
    struct proto_file_put *rq = calloc(1, sizeof(*rq));
    char *dir = malloc(HLP_PROF_PATH_MAX), *dest = malloc(HLP_PROF_PATH_MAX);
    char *tmp = malloc(HLP_PROF_PATH_MAX), tname[96], name[NAME_MAX_BYTES + 1], fin[512];
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    unsigned access;
    int rc, created = 0;

    if (!rq || !dir || !dest || !tmp) {
        prof_result(s, 500, "Out of memory");
        goto out;
    }
    if ((rc = proto_file_put_decode(first->payload, first->h.length, rq, &e)) < 0) {
        prof_result(s, 400, e.msg);
        goto out;
    }
    if (!profile) {
        prof_result(s, 503, HLP_PROF_NO_PROF);
        goto out;
    }
    snprintf(tname, sizeof(tname), HLP_PROF_TEMP_PFX "%lu-%u.part", plat_pid(),
             (unsigned)pmux_stream_id(s));
    if ((rc = prof_resolve(profile, rq->path, 1, dir, dest, name, &e)) < 0 ||
        (rc = prof_check_dest(dest, 0, &e)) < 0 ||
        (rc = name_open_under_resolved(dir, tname, PLAT_OPEN_WRITE | PLAT_OPEN_HIDDEN, &f, &e)) < 0)
        goto fail;
    created = 1;
    access = (rq->readable ? PLAT_ACCESS_READ : 0u) | (rq->writable ? PLAT_ACCESS_WRITE : 0u) |
             (rq->executable ? PLAT_ACCESS_EXECUTE : 0u);
    if ((rc = prof_receive(s, f, rq->size, &e)) < 0 || (rc = plat_file_sync(f, &e)) < 0 ||
        (rc = plat_file_set_hidden(f, 0, &e)) < 0 ||
        (rc = plat_file_set_user_access(f, access, &e)) < 0)
        goto fail;
    plat_file_close(f);
    f = NULL;
    /* the temp file's folder is dir (checked through its handle); the destination is in it */
    if ((rc = fs_join(dir, tname, tmp, HLP_PROF_PATH_MAX, &e)) < 0 ||
        (rc = prof_check_dest(dest, 0, &e)) < 0 || (rc = plat_path_replace(tmp, dest, &e)) < 0)
        goto fail;
    created = 0;
    log_info("file mapping written to %s (%llu bytes, access %c%c%c)", dest,
             (unsigned long long)rq->size, rq->readable ? 'r' : '-', rq->writable ? 'w' : '-',
             rq->executable ? 'x' : '-');
    prof_result(s, 200, "written");
    goto out;
fail:
    if (created) {
        if (f)
            plat_file_delete(f, NULL);
        else if (fs_join(dir, tname, tmp, HLP_PROF_PATH_MAX, NULL) == 0)
            plat_path_remove(tmp, NULL);
    }
    snprintf(fin, sizeof(fin), "%.500s", e.msg);
    log_warning("file mapping %.300s refused: %s", rq->path, fin);
    if (rc != ERR_CANCELLED)
        prof_result(s, prof_status(rc), fin);
out:
    plat_file_close(f);
    free(rq);
    free(dir);
    free(dest);
    free(tmp);
}

void hlp_prof_delete(struct pmux_stream *s, const struct proto_frame *first, const char *profile)
{
    struct proto_file_delete *rq = calloc(1, sizeof(*rq));
    char *dir = malloc(HLP_PROF_PATH_MAX), *dest = malloc(HLP_PROF_PATH_MAX);
    char name[NAME_MAX_BYTES + 1];
    struct err e = ERR_INIT;
    int rc;

    if (!rq || !dir || !dest) {
        prof_result(s, 500, "Out of memory");
        goto out;
    }
    if ((rc = proto_file_delete_decode(first->payload, first->h.length, rq, &e)) < 0) {
        prof_result(s, 400, e.msg);
        goto out;
    }
    if (!profile) {
        prof_result(s, 503, HLP_PROF_NO_PROF);
        goto out;
    }
    if ((rc = prof_resolve(profile, rq->path, 0, dir, dest, name, &e)) < 0 ||
        (rc = prof_check_dest(dest, 1, &e)) < 0 || (rc = plat_path_remove(dest, &e)) < 0) {
        if (rc == ERR_NOT_FOUND)
            log_debug("file mapping %.300s: already gone", rq->path);
        else
            log_warning("file mapping %.300s not removed: %s", rq->path, e.msg);
        prof_result(s, prof_status(rc), e.msg);
        goto out;
    }
    log_info("file mapping removed from %s", dest);
    prof_result(s, 200, "removed");
out:
    free(rq);
    free(dir);
    free(dest);
}
