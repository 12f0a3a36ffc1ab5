/*
 * orch_helper.c - the service side of FILE_PUT / FILE_DELETE (orch_helper.h): borrow the
 * user's helper through the session manager's lease, send the request (and the bytes), wait
 * for FILE_RESULT.
 */
#include "orch_helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "orch"
#include "log.h"
#include "orch.h"
#include "plat.h"
#include "pmux.h"
#include "proto.h"
#include "sesm.h"

#define ORCH_HELPER_WAIT_MS 60000u /* the helper's answer after the last byte */

int orch_profile_rel(const char *path, const char *profile, char *out, size_t cap, struct err *e)
{
    size_t plen = strlen(profile), i, n = 0;
    const char *p;

    if (!orch_path_under(path, profile))
        return err_set(e, ERR_INVALID, "%s is not inside the profile %s", path, profile);
    while (plen > 0 && (profile[plen - 1] == '/' || profile[plen - 1] == '\\'))
        plen--;
    p = path + plen;
    while (*p == '/' || *p == '\\')
        p++;
    for (i = 0; p[i]; i++) {
        if (n + 2 > cap)
            return err_set(e, ERR_TOO_LARGE, "the path %s is too long", path);
        out[n++] = p[i] == '\\' ? '/' : p[i];
    }
    if (n == 0)
        return err_set(e, ERR_INVALID, "%s is the profile itself", path);
    out[n] = '\0';
    return 0;
}

/* Waits for FILE_RESULT on s: 0 (200), ERR_NOT_FOUND (404), else the helper's message. */
static int helper_result(struct pmux_stream *s, const char *what, struct err *e)
{
    struct proto_file_result *r = calloc(1, sizeof(*r));
    struct proto_frame *f = NULL;
    int rc;

    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = pmux_recv(s, ORCH_HELPER_WAIT_MS, &f, e)) < 0) {
        err_prefix(e, "the user's session helper did not answer %s", what);
        goto out;
    }
    if (f->h.type == PROTO_FILE_RESULT) {
        if ((rc = proto_file_result_decode(f->payload, f->h.length, r, e)) < 0)
            err_prefix(e, "the session helper's answer to %s", what);
        else if (r->status == 200)
            rc = 0;
        else
            rc = err_set(e,
                         r->status == 404   ? ERR_NOT_FOUND
                         : r->status == 403 ? ERR_PERMISSION
                                            : ERR_IO,
                         "the user's session helper refused %s: %s", what, r->message);
    } else if (f->h.type == PROTO_ERROR) {
        struct proto_error pe;
        rc = proto_error_decode(f->payload, f->h.length, &pe, NULL) < 0
                 ? err_set(e, ERR_PROTOCOL, "the session helper sent a bad ERROR for %s", what)
                 : err_set(e, ERR_IO, "the user's session helper failed %s: %s", what, pe.message);
    } else {
        rc = err_set(e, ERR_PROTOCOL, "the session helper answered %s with an unexpected %s", what,
                     proto_type_name(f->h.type));
    }
out:
    if (f)
        pmux_frame_free(s, f);
    free(r);
    return rc;
}

/* Borrows user's helper and opens a request on it: ORCH_HELPER_NONE when there is none. */
static int helper_open(struct sesm *sessions, const char *user, struct sesm_lease **lease,
                       struct pmux_stream **s, struct err *e)
{
    struct err le = ERR_INIT;
    int rc;

    *lease = NULL;
    *s = NULL;
    if (!sessions || !user || !*user)
        return ORCH_HELPER_NONE;
    if ((rc = sesm_acquire(sessions, user, 0, lease, &le)) < 0) {
        log_debug("no session helper for %s: %s", user, le.msg);
        *lease = NULL;
        return ORCH_HELPER_NONE;
    }
    if ((rc = pmux_open(sesm_lease_mux(*lease), s, e)) < 0) {
        err_prefix(e, "the session helper of %s", user);
        sesm_release(*lease);
        *lease = NULL;
        *s = NULL;
    }
    return rc;
}

int orch_helper_put(struct sesm *sessions, const char *user, const char *rel, unsigned access,
                    const void *data, size_t len, struct err *e)
{
    struct proto_file_put *rq = calloc(1, sizeof(*rq));
    struct sesm_lease *lease = NULL;
    struct pmux_stream *s = NULL;
    char *json = NULL;
    size_t jlen = 0;
    int rc;

    if (!rq)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (snprintf(rq->path, sizeof(rq->path), "%s", rel) >= (int)sizeof(rq->path)) {
        rc = err_set(e, ERR_TOO_LARGE, "the path %s is too long", rel);
        goto out;
    }
    rq->size = len;
    rq->readable = (access & PLAT_ACCESS_READ) != 0;
    rq->writable = (access & PLAT_ACCESS_WRITE) != 0;
    rq->executable = (access & PLAT_ACCESS_EXECUTE) != 0;
    if ((rc = proto_file_put_encode(rq, &json, &jlen, e)) < 0)
        goto out;
    if ((rc = helper_open(sessions, user, &lease, &s, e)) != 0)
        goto out;
    if ((rc = pmux_send(s, PROTO_FILE_PUT, json, jlen, e)) < 0)
        goto out;
    rc = pmux_write_data(s, data, len, e);
    if (rc == 0)
        rc = pmux_send(s, PROTO_END, NULL, 0, e);
    if (rc == 0 || rc == ERR_CANCELLED) /* cancelled: the helper answered early */
        rc = helper_result(s, "the file", e);
out:
    if (s)
        pmux_close(s);
    if (lease)
        sesm_release(lease);
    free(json);
    free(rq);
    return rc;
}

int orch_helper_delete(struct sesm *sessions, const char *user, const char *rel, struct err *e)
{
    struct proto_file_delete *rq = calloc(1, sizeof(*rq));
    struct sesm_lease *lease = NULL;
    struct pmux_stream *s = NULL;
    char *json = NULL;
    size_t jlen = 0;
    int rc;

    if (!rq)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (snprintf(rq->path, sizeof(rq->path), "%s", rel) >= (int)sizeof(rq->path)) {
        rc = err_set(e, ERR_TOO_LARGE, "the path %s is too long", rel);
        goto out;
    }
    if ((rc = proto_file_delete_encode(rq, &json, &jlen, e)) < 0)
        goto out;
    if ((rc = helper_open(sessions, user, &lease, &s, e)) != 0)
        goto out;
    if ((rc = pmux_send(s, PROTO_FILE_DELETE, json, jlen, e)) == 0)
        rc = helper_result(s, "the removal", e);
out:
    if (s)
        pmux_close(s);
    if (lease)
        sesm_release(lease);
    free(json);
    free(rq);
    return rc;
}
