/*
 * scr_startup.c - the service-start work (scr_startup.h): script file mappings installed,
 * .reg files imported, service_startup scripts run; once per agent run, on its own thread.
 */
#define LOG_MODULE "scripts"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "api.h"
#include "fsutil.h"
#include "https_client.h"
#include "lifecycle.h"
#include "log.h"
#include "name.h"
#include "plat.h"
#include "scr.h"
#include "scr_plat.h"
#include "scr_startup.h"

#define SCR_MAPPING_MAX_BYTES (16u * 1024u * 1024u) /* one mapped file */

struct scr_startup {
    struct cfg *cfg;
    struct plat_mutex *lock; /* guards started, stop */
    struct plat_thread *thread;
    int started, stop;

    /* copied by the hook (the thread owns them afterwards) */
    char hosts[DAPI_MAX_HOSTS][256];
    size_t host_count, current;
    int port;
    struct dcl_options net;
    char ca_file[CFG_PATH_MAX];
    char *token; /* secret */
    char script_path[CFG_PATH_MAX];
    char server_id[128];
    int debug;
    int timeout_s;
};

static const char *const scr_dirs[] = {"service_startup", "session_start", "session_end",
                                       "registry", "builtin"};

static int is_sep(char c)
{
    return c == '/' || c == '\\';
}

static int ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (is_sep(x) && is_sep(y))
            continue;
        if (x != y)
            return 0;
    }
    return 1;
}

int scr_mapping_target(const char *script_path, const char *destination, char *out, size_t cap,
                       struct err *e)
{
    size_t rl = strlen(script_path), dl = strlen(destination);
    const char *rest = NULL, *p, *dir = NULL;
    char comp[2][NAME_MAX_BYTES + 1];
    size_t ncomp = 0;
    char path[CFG_PATH_MAX];
    int rc;

    while (rl > 1 && is_sep(script_path[rl - 1]))
        rl--;
    /* Absolute under script_path (ASCII case-insensitive, either separator) ... */
    if (dl > rl && is_sep(destination[rl]) && ieq_n(destination, script_path, rl))
        rest = destination + rl + 1;
    /* ... or relative: "scripts\..." (also ".\scripts\...") */
    else if (ieq_n(destination, "scripts", 7) && dl > 7 && is_sep(destination[7]))
        rest = destination + 8;
    else if (ieq_n(destination, "./scripts", 9) && dl > 9 && is_sep(destination[9]))
        rest = destination + 10;
    if (!rest)
        return 0;

    for (p = rest; *p;) {
        size_t n = 0;
        while (p[n] && !is_sep(p[n]))
            n++;
        if (n == 0)
            return err_set(e, ERR_PERMISSION, "the destination %s has an empty path component",
                           destination);
        if (ncomp == 2)
            return err_set(e, ERR_PERMISSION,
                           "the destination %s is deeper than <scripts>\\<folder>\\<file>",
                           destination);
        if (n > NAME_MAX_BYTES)
            return err_set(e, ERR_PERMISSION, "the destination %s has a name that is too long",
                           destination);
        memcpy(comp[ncomp], p, n);
        comp[ncomp][n] = '\0';
        if ((rc = name_validate(comp[ncomp], e)) < 0) {
            err_prefix(e, "the destination %s escapes or breaks the scripts folder", destination);
            e && (e->code = ERR_PERMISSION);
            return ERR_PERMISSION;
        }
        ncomp++;
        p += n;
        if (*p)
            p++;
        if (!*p && is_sep(p[-1]))
            return err_set(e, ERR_PERMISSION, "the destination %s names a folder", destination);
    }
    if (ncomp != 2)
        return err_set(e, ERR_PERMISSION, "the destination %s is not <scripts>\\<folder>\\<file>",
                       destination);
    for (size_t i = 0; i < sizeof(scr_dirs) / sizeof(scr_dirs[0]); i++)
        if (strlen(comp[0]) == strlen(scr_dirs[i]) && ieq_n(comp[0], scr_dirs[i], strlen(comp[0])))
            dir = scr_dirs[i];
    if (!dir)
        return err_set(e, ERR_PERMISSION,
                       "the destination %s is not in builtin, service_startup, session_start, "
                       "session_end or registry",
                       destination);
    if ((rc = fs_join(script_path, dir, path, sizeof(path), e)) < 0 ||
        (rc = fs_join(path, comp[1], out, cap, e)) < 0)
        return rc;
    return 1;
}

static int stopping(void *arg)
{
    struct scr_startup *s = arg;
    int v;
    plat_mutex_lock(s->lock);
    v = s->stop;
    plat_mutex_unlock(s->lock);
    return v;
}

/* One GET to the deployment, trying the hosts from the one that answered last. */
static int api_get(struct scr_startup *s, const char *target, const char *what,
                   struct dcl_response *resp, struct err *e)
{
    int rc = ERR_NETWORK;
    if (s->host_count == 0)
        return err_set(e, ERR_INVALID, "no api_host is configured");
    for (size_t k = 0; k < s->host_count; k++) {
        size_t i = (s->current + k) % s->host_count;
        memset(resp, 0, sizeof(*resp));
        rc = dcl_request(&s->net, s->hosts[i], s->port, "GET", target, NULL, resp, e);
        if (rc == 0) {
            s->current = i;
            return 0;
        }
        err_prefix(e, "%s", what);
        if (stopping(s))
            break;
    }
    return rc;
}

/* An error_message in a JSON answer, or a status that is not 2xx: ERR_*; else 0. */
static int check_raw(struct scr_startup *s, const struct dcl_response *r, const char *what,
                     struct err *e)
{
    void *json = NULL;
    cJSON *root;
    if (r->status < 200 || r->status >= 300 || (r->body_len && r->body[0] == '{')) {
        root = cJSON_ParseWithLength(r->body, r->body_len);
        if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "error_message")) {
            cJSON_Delete(root);
            return dapi_check_answer(s->hosts[s->current], s->port, what, r->status, r->body,
                                     r->body_len, &json, e);
        }
        cJSON_Delete(root);
        if (r->status < 200 || r->status >= 300)
            return err_set(e, ERR_PROTOCOL, "%s:%d answered HTTP %d to %s", s->hosts[s->current],
                           s->port, r->status, what);
    }
    return 0;
}

/* 1 when a token can go into a query string as it is (a JWT: base64url and dots). */
static int url_safe(const char *t)
{
    if (!*t)
        return 0;
    for (; *t; t++) {
        char c = *t;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Fetches one mapping's contents and writes it admin-only, atomically. */
static int install_one(struct scr_startup *s, const char *id, const char *token, const char *dest,
                       struct err *e)
{
    struct dcl_response r;
    char target[8192], dir[CFG_PATH_MAX];
    int rc;

    memset(&r, 0, sizeof(r));
    if (!url_safe(token))
        return err_set(e, ERR_PROTOCOL, "the file mapping %s has a token that is not a JWT", id);
    if (snprintf(target, sizeof(target), "/api/admin/get_file_mapping_contents?token=%s", token) >=
        (int)sizeof(target))
        return err_set(e, ERR_TOO_LARGE, "the file mapping %s has an over-long token", id);
    rc = api_get(s, target, "get_file_mapping_contents", &r, e);
    memset(target, 0, sizeof(target));
    if (rc < 0 || (rc = check_raw(s, &r, "get_file_mapping_contents", e)) < 0)
        goto out;
    if ((rc = fs_dirname(dest, dir, sizeof(dir), e)) < 0 ||
        (rc = plat_dir_create_all(dir, e)) < 0 || (rc = plat_path_restrict_to_admins(dir, e)) < 0 ||
        (rc = fs_write_atomic(dest, r.body, r.body_len, FS_WRITE_PRIVATE, e)) < 0)
        goto out;
    log_info("file mapping %s installed at %s (%zu bytes)", id, dest, r.body_len);
out:
    dcl_response_free(&r);
    return rc;
}

static void install_mappings(struct scr_startup *s)
{
    struct dcl_response r;
    struct err e = ERR_INIT;
    char target[8192];
    void *json = NULL;
    const cJSON *maps, *m;
    size_t installed = 0, refused = 0, failed = 0;
    int rc;

    memset(&r, 0, sizeof(r));
    if (!s->token || !url_safe(s->token)) {
        log_warning("no usable agent token: the server's file mappings are not fetched");
        return;
    }
    snprintf(target, sizeof(target), "/api/admin/get_server_file_mappings?token=%s", s->token);
    rc = api_get(s, target, "get_server_file_mappings", &r, &e);
    memset(target, 0, sizeof(target));
    if (rc == 0)
        rc = dapi_check_answer(s->hosts[s->current], s->port, "get_server_file_mappings", r.status,
                               r.body, r.body_len, &json, &e);
    if (rc < 0) {
        log_error("cannot fetch the server's file mappings: %s; the scripts already installed "
                  "are used",
                  e.msg);
        goto out;
    }
    maps = cJSON_GetObjectItemCaseSensitive((cJSON *)json, "file_mappings");
    if (!cJSON_IsObject(maps)) {
        log_info("the deployment has no file mappings for this server");
        goto out;
    }
    cJSON_ArrayForEach(m, maps)
    {
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m, "jwt_token");
        const cJSON *dst = cJSON_GetObjectItemCaseSensitive(m, "destination");
        const char *id = m->string ? m->string : "?";
        char path[CFG_PATH_MAX];
        if (stopping(s))
            break;
        if (!cJSON_IsString(dst) || !dst->valuestring || !cJSON_IsString(tok) ||
            !tok->valuestring) {
            log_warning("file mapping %s has no destination or token; skipped", id);
            continue;
        }
        err_clear(&e);
        rc = scr_mapping_target(s->script_path, dst->valuestring, path, sizeof(path), &e);
        if (rc == 0) {
            log_debug("file mapping %s (%s) is not under the scripts folder; not installed at "
                      "service start",
                      id, dst->valuestring);
            continue;
        }
        if (rc < 0) {
            log_error("file mapping %s refused: %s", id, e.msg);
            refused++;
            continue;
        }
        if (install_one(s, id, tok->valuestring, path, &e) < 0) {
            log_error("file mapping %s (%s) not installed: %s", id, path, e.msg);
            failed++;
        } else {
            installed++;
        }
    }
    log_info("server file mappings: %zu installed under %s, %zu refused, %zu failed", installed,
             s->script_path, refused, failed);
out:
    cJSON_Delete(json);
    dcl_response_free(&r);
}

/* reg.exe import of every .reg file of scripts/registry, each result logged. */
static void import_registry(struct scr_startup *s, const struct scr_options *o)
{
    char dir[CFG_PATH_MAX];
    struct plat_dir *d = NULL;
    struct plat_dir_entry *ent = NULL;
    char **names = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;

    if (fs_join(s->script_path, "registry", dir, sizeof(dir), NULL) < 0 ||
        plat_dir_open(dir, &d, NULL) < 0)
        return; /* no registry folder: nothing to import */
    if (!(ent = malloc(sizeof(*ent))))
        goto out;
    while (plat_dir_next(d, ent, NULL) == 1) {
        char **q;
        if (ent->info.is_dir || ent->info.is_link || scr_kind_of(ent->name) != SCR_KIND_REG)
            continue;
        if (!(q = realloc(names, (n + 1) * sizeof(*q))))
            goto out;
        names = q;
        if (!(names[n] = strdup(ent->name)))
            goto out;
        n++;
    }
    if (n == 0)
        goto out;
    if (!scr_plat_supports(SCR_KIND_REG)) {
        log_info("%zu .reg file(s) in %s not imported: the registry exists only on Windows", n,
                 dir);
        goto out;
    }
    if (scr_plat_check_path(s->script_path, 1, &e) < 0 || scr_plat_check_path(dir, 1, &e) < 0) {
        log_error("registry files refused: %s", e.msg);
        goto out;
    }
    qsort(names, n, sizeof(*names), scr_name_cmp);
    for (size_t i = 0; i < n && !stopping(s); i++) {
        char path[CFG_PATH_MAX + 256];
        struct scr_spawn sp;
        struct scr_exit x;
        memset(&x, 0, sizeof(x));
        err_clear(&e);
        if (fs_join(dir, names[i], path, sizeof(path), &e) < 0 ||
            scr_plat_check_path(path, 0, &e) < 0) {
            log_error("registry file %s refused: %s", names[i], e.msg);
            continue;
        }
        if (scr_outbuf_init(&x.out, 8192, &e) < 0)
            break;
        memset(&sp, 0, sizeof(sp));
        sp.kind = SCR_KIND_REG;
        sp.script = path;
        sp.cwd = dir;
        sp.timeout_ms = o->timeout_ms;
        sp.cancelled = o->cancelled;
        sp.cancel_ctx = o->cancel_ctx;
        sp.out_cap = x.out.cap;
        if (scr_plat_run(&sp, &x, &e) < 0) {
            log_error("registry file %s: reg.exe import could not run: %s", names[i], e.msg);
        } else {
            scr_scrub_output(x.out.data, &x.out.len, x.out.cap + 1024, NULL, 0);
            while (x.out.len &&
                   (x.out.data[x.out.len - 1] == '\n' || x.out.data[x.out.len - 1] == '\r'))
                x.out.data[--x.out.len] = '\0';
            if (x.exit_code == 0 && !x.timed_out && !x.cancelled)
                log_info("registry file %s imported (reg.exe import: exit code 0)", names[i]);
            else
                log_error("registry file %s: reg.exe import failed (%s, exit code %d): %s",
                          names[i], x.timed_out ? "timed out" : "error", x.exit_code,
                          x.out.len ? x.out.data : "no output");
        }
        scr_outbuf_free(&x.out);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(ent);
    plat_dir_close(d);
}

static void work(void *arg)
{
    struct scr_startup *s = arg;
    struct scr_options o;
    struct scr_results res = {0};
    struct err e = ERR_INIT;
    char port[16];
    struct scr_var vars[4];

    memset(&o, 0, sizeof(o));
    o.timeout_ms = (uint32_t)(s->timeout_s > 0 ? s->timeout_s : SCR_DEFAULT_TIMEOUT) * 1000u;
    o.debug = s->debug;
    o.cancelled = stopping;
    o.cancel_ctx = s;

    if (!s->script_path[0]) {
        log_warning("script_path is empty: no script mappings, registry files or "
                    "service_startup scripts");
        return;
    }
    log_info("service start: installing script file mappings, importing registry files, "
             "running service_startup scripts");
    install_mappings(s);
    if (!stopping(s))
        import_registry(s, &o);
    snprintf(port, sizeof(port), "%d", s->port);
    vars[0] = (struct scr_var){"server_id", s->server_id, 0};
    vars[1] = (struct scr_var){"jwt", s->token ? s->token : "", 1};
    vars[2] = (struct scr_var){"api_host", s->host_count ? s->hosts[s->current] : "", 0};
    vars[3] = (struct scr_var){"api_port", port, 0};
    if (!stopping(s)) {
        scr_run_dir(s->script_path, "service_startup", vars, 4, &o, &res, &e);
        {
            size_t ok = 0;
            for (size_t i = 0; i < res.count; i++)
                ok += res.items[i].status == SCR_OK;
            log_info("service start work done: %zu of %zu service_startup entries succeeded", ok,
                     res.count);
        }
    }
    scr_results_free(&res);
}

int scr_startup_create(struct scr_startup **out, struct cfg *cfg, struct err *e)
{
    struct scr_startup *s = calloc(1, sizeof(*s));
    int rc;
    *out = NULL;
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->cfg = cfg;
    if ((rc = plat_mutex_create(&s->lock, e)) < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void scr_startup_hook(struct dlc *l, const struct dapi_conn *conn, const char *token, void *ctx)
{
    struct scr_startup *s = ctx;
    struct err e = ERR_INIT;

    plat_mutex_lock(s->lock);
    if (s->started || s->stop) {
        plat_mutex_unlock(s->lock);
        return;
    }
    s->started = 1; /* the lock is held to the end: scr_startup_stop waits for the thread start */
    for (size_t i = 0; i < conn->host_count && i < DAPI_MAX_HOSTS; i++)
        snprintf(s->hosts[i], sizeof(s->hosts[i]), "%s", conn->hosts[i]);
    s->host_count = conn->host_count < DAPI_MAX_HOSTS ? conn->host_count : DAPI_MAX_HOSTS;
    s->current = conn->current < s->host_count ? conn->current : 0;
    s->port = conn->port;
    s->net = conn->net;
    if (conn->net.ca_file) {
        snprintf(s->ca_file, sizeof(s->ca_file), "%s", conn->net.ca_file);
        s->net.ca_file = s->ca_file;
    }
    s->net.max_body = SCR_MAPPING_MAX_BYTES;
    s->token = token ? strdup(token) : NULL;
    dlc_cfg_lock(l);
    snprintf(s->script_path, sizeof(s->script_path), "%s", s->cfg->script_path);
    snprintf(s->server_id, sizeof(s->server_id), "%s", s->cfg->server_id);
    s->debug = s->cfg->debug || log_get_level() <= LOG_LEVEL_DEBUG;
    s->timeout_s = s->cfg->script_timeout;
    dlc_cfg_unlock(l);
    if (plat_thread_start(&s->thread, work, s, &e) < 0)
        log_error("cannot start the service start work: %s", e.msg);
    plat_mutex_unlock(s->lock);
}

void scr_startup_stop(struct scr_startup *s)
{
    if (!s)
        return;
    plat_mutex_lock(s->lock);
    s->stop = 1;
    plat_mutex_unlock(s->lock);
    if (s->thread)
        plat_thread_join(s->thread);
    if (s->token) {
        memset(s->token, 0, strlen(s->token));
        free(s->token);
    }
    plat_mutex_destroy(s->lock);
    free(s);
}
