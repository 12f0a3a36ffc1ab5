/*
 * scr.c - the portable half of the script runner (scr.h): which files run and in which
 * order, the variables (environment and PowerShell prologue), the temporary PowerShell copy,
 * the checks, and what is logged. The processes themselves are scr_plat.h's.
 */
#define LOG_MODULE "scripts"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "scr.h"
#include "scr_plat.h"

#define SCR_LOG_PIECE    1500                  /* bytes of output per log record */
#define SCR_PS_MAX_BYTES (16u * 1024u * 1024u) /* a larger .ps1 is not copied */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (lower(s[n - m + i]) != lower(suffix[i]))
            return 0;
    return 1;
}

enum scr_kind scr_kind_of(const char *name)
{
    if (!name || !*name)
        return SCR_KIND_OTHER;
    if (ends_with_ci(name, "_tmp.ps1"))
        return SCR_KIND_TMP;
    if (ends_with_ci(name, ".ps1") && strlen(name) > 4)
        return SCR_KIND_PS1;
    if ((ends_with_ci(name, ".cmd") || ends_with_ci(name, ".bat")) && strlen(name) > 4)
        return SCR_KIND_CMD;
    if (ends_with_ci(name, ".sh") && strlen(name) > 3)
        return SCR_KIND_SH;
    if (ends_with_ci(name, ".reg") && strlen(name) > 4)
        return SCR_KIND_REG;
    return SCR_KIND_OTHER;
}

int scr_name_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    for (size_t i = 0;; i++) {
        char p = lower(x[i]), q = lower(y[i]);
        if (p != q)
            return (unsigned char)p < (unsigned char)q ? -1 : 1;
        if (!p)
            break;
    }
    return strcmp(x, y);
}

int scr_var_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

int scr_env_name(const char *var, char *out, size_t cap, struct err *e)
{
    size_t n;
    if (!scr_var_name_valid(var))
        return err_set(e, ERR_INVALID, "'%.64s' is not a valid script variable name",
                       var ? var : "");
    n = strlen(var);
    if (n + 6 > cap)
        return err_set(e, ERR_TOO_LARGE, "the variable name %s is too long", var);
    memcpy(out, "KASM_", 5);
    for (size_t i = 0; i < n; i++)
        out[5 + i] = (var[i] >= 'a' && var[i] <= 'z') ? (char)(var[i] - 32) : var[i];
    out[5 + n] = '\0';
    return 0;
}

void scr_env_list_free(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++) {
        memset(*p, 0, strlen(*p)); /* values may be tokens */
        free(*p);
    }
    free(list);
}

int scr_env_list(const struct scr_var *vars, size_t nvars, char ***out, struct err *e)
{
    char **list = calloc(nvars + 1, sizeof(*list));
    int rc = 0;

    *out = NULL;
    if (!list)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nvars; i++) {
        char name[80];
        const char *v = vars[i].value ? vars[i].value : "";
        size_t need;
        if ((rc = scr_env_name(vars[i].name, name, sizeof(name), e)) < 0)
            goto out;
        need = strlen(name) + 1 + strlen(v) + 1;
        if (!(list[i] = malloc(need))) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        snprintf(list[i], need, "%s=%s", name, v);
    }
    *out = list;
    list = NULL;
out:
    scr_env_list_free(list);
    return rc;
}

char *scr_base64(const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;

    if (!out)
        return NULL;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* A growing text buffer for the prologue. */
struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *q;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(q = realloc(b->p, cap))) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_wipe_free(struct sbuf *b)
{
    if (b->p) {
        memset(b->p, 0, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

int scr_ps_prologue(const struct scr_var *vars, size_t nvars, char **out, size_t *len,
                    struct err *e)
{
    struct sbuf b = {0};
    int rc = 0;

    *out = NULL;
    sb_str(&b, "# Variables set by the Kasm agent (base64 UTF-8: no value can break out of its "
               "quotes).\r\n");
    for (size_t i = 0; i < nvars; i++) {
        const char *v = vars[i].value ? vars[i].value : "";
        char *enc;
        if (!scr_var_name_valid(vars[i].name)) {
            rc = err_set(e, ERR_INVALID, "'%.64s' is not a valid script variable name",
                         vars[i].name ? vars[i].name : "");
            goto out;
        }
        if (!(enc = scr_base64(v, strlen(v)))) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        sb_str(&b, "$");
        sb_str(&b, vars[i].name);
        sb_str(&b, " = [System.Text.Encoding]::UTF8.GetString([System.Convert]::"
                   "FromBase64String('");
        sb_str(&b, enc);
        sb_str(&b, "'))\r\n");
        memset(enc, 0, strlen(enc));
        free(enc);
    }
    sb_str(&b, "# End of the variables set by the Kasm agent.\r\n");
    if (b.failed) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    b.p = NULL;
out:
    sb_wipe_free(&b);
    return rc;
}

int scr_ps_copy(const char *script, size_t script_len, const struct scr_var *vars, size_t nvars,
                char **out, size_t *len, struct err *e)
{
    struct sbuf b = {0};
    char *pro = NULL;
    size_t plen = 0;
    int rc;

    *out = NULL;
    if ((rc = scr_ps_prologue(vars, nvars, &pro, &plen, e)) < 0)
        return rc;
    if (script_len >= 3 && (unsigned char)script[0] == 0xEF && (unsigned char)script[1] == 0xBB &&
        (unsigned char)script[2] == 0xBF) {
        script += 3;
        script_len -= 3;
    }
    sb_add(&b, "\xEF\xBB\xBF", 3); /* Windows PowerShell 5 reads a BOM-less file as ANSI */
    sb_add(&b, pro, plen);
    sb_add(&b, script, script_len);
    memset(pro, 0, plen);
    free(pro);
    if (b.failed) {
        sb_wipe_free(&b);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* 1 for names whose values are secrets even when the caller did not say so. */
static int secret_name(const char *name)
{
    static const char *const words[] = {"token", "jwt", "password", "secret", "key", "credential"};
    char low[72];
    size_t n = strlen(name);
    if (n >= sizeof(low))
        n = sizeof(low) - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = lower(name[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(low, words[i]))
            return 1;
    return 0;
}

/* Replaces every occurrence of needle in buf[0..*len) by LOG_REDACTED (never past cap - 1). */
static void replace_all(char *buf, size_t *len, size_t cap, const char *needle)
{
    size_t nl = strlen(needle), rl = strlen(LOG_REDACTED), i = 0;
    if (nl == 0)
        return;
    while (i + nl <= *len) {
        if (memcmp(buf + i, needle, nl) != 0) {
            i++;
            continue;
        }
        if (rl <= nl || *len + (rl - nl) < cap) {
            memmove(buf + i + rl, buf + i + nl, *len - i - nl);
            memcpy(buf + i, LOG_REDACTED, rl);
            *len = *len + rl - nl;
            i += rl;
        } else {
            memset(buf + i, '*', nl); /* no room to grow: mask in place */
            i += nl;
        }
    }
    buf[*len] = '\0';
}

void scr_scrub_output(char *buf, size_t *len, size_t cap, const struct scr_var *vars, size_t nvars)
{
    if (cap == 0)
        return;
    if (*len >= cap)
        *len = cap - 1;
    for (size_t i = 0; i < *len; i++)
        if (buf[i] == '\0')
            buf[i] = '?';
    buf[*len] = '\0';
    for (size_t i = 0; i < nvars; i++) {
        const char *v = vars[i].value;
        if (!v || !vars[i].name)
            continue;
        if (vars[i].secret || (secret_name(vars[i].name) && strlen(v) >= 8))
            replace_all(buf, len, cap, v);
    }
    log_redact(buf, cap);
    *len = strlen(buf);
}

int scr_outbuf_init(struct scr_outbuf *b, size_t cap, struct err *e)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap ? cap : SCR_OUTPUT_CAP;
    /* room for a NUL and for the redaction marks to grow the text a little */
    if (!(b->data = malloc(b->cap + 1024)))
        return err_set(e, ERR_NOMEM, "out of memory");
    b->data[0] = '\0';
    return 0;
}

void scr_outbuf_add(struct scr_outbuf *b, const void *data, size_t len)
{
    size_t room = b->len < b->cap ? b->cap - b->len : 0, take = len < room ? len : room;
    if (take) {
        memcpy(b->data + b->len, data, take);
        b->len += take;
        b->data[b->len] = '\0';
    }
    b->dropped += len - take;
}

void scr_outbuf_free(struct scr_outbuf *b)
{
    if (b->data) {
        memset(b->data, 0, b->cap + 1024);
        free(b->data);
    }
    memset(b, 0, sizeof(*b));
}

int scr_run_as_check(const struct scr_run_as *run_as, struct err *e)
{
    if (!run_as)
        return 0; /* as the service: always */
    return scr_plat_run_as_check(run_as, e);
}

const char *scr_status_name(enum scr_status s)
{
    switch (s) {
    case SCR_OK:
        return "ok";
    case SCR_FAILED:
        return "failed";
    case SCR_TIMEOUT:
        return "timeout";
    case SCR_REFUSED:
        return "refused";
    case SCR_SKIPPED:
        return "skipped";
    case SCR_ERROR:
        return "error";
    case SCR_CANCELLED:
        return "cancelled";
    }
    return "?";
}

void scr_results_free(struct scr_results *r)
{
    if (!r)
        return;
    free(r->items);
    r->items = NULL;
    r->count = 0;
}

/* ---- running ---- */

static const char *base_name(const char *path)
{
    const char *b = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    return b;
}

/* Logs the output line by line (already scrubbed). */
static void log_output(enum log_level level, const char *name, char *text, size_t len,
                       uint64_t dropped)
{
    size_t start = 0;
    if (len == 0) {
        log_write(level, LOG_MODULE, "%s: (no output)", name);
        return;
    }
    log_write(level, LOG_MODULE, "%s: output:", name);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            size_t n = i - start;
            if (n && text[start + n - 1] == '\r')
                n--;
            /* a long line goes out in pieces: a record is cut at LOG_LINE_MAX */
            for (size_t off = 0; off < n || (off == 0 && i < len); off += SCR_LOG_PIECE) {
                size_t k = n - off < SCR_LOG_PIECE ? n - off : SCR_LOG_PIECE;
                log_write(level, LOG_MODULE, "%s| %.*s", name, (int)k, text + start + off);
                if (n == 0)
                    break;
            }
            start = i + 1;
        }
    }
    if (dropped)
        log_write(level, LOG_MODULE, "%s: ... %llu more bytes of output not kept", name,
                  (unsigned long long)dropped);
}

/* A private folder for the PowerShell copy: script_dir/../tmp/<random> (admin-only). */
static int make_private_tmp(const char *script_path_file, char *dir, size_t cap, struct err *e)
{
    char sdir[1024], root[1024], tmp[1024], leaf[40];
    unsigned char rnd[12];
    int rc;

    if ((rc = fs_dirname(script_path_file, sdir, sizeof(sdir), e)) < 0 ||
        (rc = fs_dirname(sdir, root, sizeof(root), e)) < 0 ||
        (rc = fs_join(root, "tmp", tmp, sizeof(tmp), e)) < 0)
        return rc;
    if ((rc = plat_dir_create(tmp, e)) < 0 || (rc = plat_path_restrict_to_admins(tmp, e)) < 0 ||
        (rc = plat_random_bytes(rnd, sizeof(rnd), e)) < 0)
        return err_prefix(e, "cannot prepare the private folder %s", tmp);
    snprintf(leaf, sizeof(leaf), "ps-");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(leaf + 3 + 2 * i, sizeof(leaf) - 3 - 2 * i, "%02x", rnd[i]);
    if ((rc = fs_join(tmp, leaf, dir, cap, e)) < 0)
        return rc;
    if ((rc = plat_dir_create(dir, e)) < 0 || (rc = plat_path_restrict_to_admins(dir, e)) < 0) {
        plat_dir_remove(dir, NULL);
        return err_prefix(e, "cannot create the private folder %s", dir);
    }
    return 0;
}

int scr_run_file(const char *path, const struct scr_var *vars, size_t nvars,
                 const struct scr_options *o, struct scr_result *res, struct err *e)
{
    const char *name = base_name(path);
    enum scr_kind kind = scr_kind_of(name);
    struct scr_spawn sp;
    struct scr_exit x;
    char **env = NULL;
    char tmp_dir[1024] = "", tmp_file[1100] = "", cwd[1024] = "";
    char *text = NULL, *copy = NULL;
    size_t text_len = 0, copy_len = 0;
    uint64_t t0;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    memset(&x, 0, sizeof(x));
    snprintf(res->name, sizeof(res->name), "%s", name);
    res->exit_code = -1;

    if (kind == SCR_KIND_TMP) {
        log_debug("%s: skipped (a *_tmp.ps1 file)", name);
        res->status = SCR_SKIPPED;
        return 0;
    }
    if (kind == SCR_KIND_OTHER || kind == SCR_KIND_REG) {
        log_info("%s: skipped (not a script: only .ps1, .cmd, .bat and .sh files run)", name);
        res->status = SCR_SKIPPED;
        return 0;
    }
    if (!scr_plat_supports(kind)) {
        log_info("%s: skipped (%s scripts do not run on this platform)", name,
                 kind == SCR_KIND_SH    ? "shell"
                 : kind == SCR_KIND_PS1 ? "PowerShell"
                                        : "cmd.exe");
        res->status = SCR_SKIPPED;
        return 0;
    }
    if ((rc = scr_plat_check_path(path, 0, e)) < 0) {
        log_error("%s: refused: %s; only administrators may be able to change a script", name,
                  e ? e->msg : "unsafe owner or permissions");
        res->status = SCR_REFUSED;
        return rc;
    }
    if ((rc = scr_env_list(vars, nvars, &env, e)) < 0 ||
        (rc = scr_outbuf_init(&x.out, o && o->output_cap ? o->output_cap : SCR_OUTPUT_CAP, e)) < 0)
        goto start_failed;

    memset(&sp, 0, sizeof(sp));
    sp.kind = kind;
    sp.script = path;
    if (fs_dirname(path, cwd, sizeof(cwd), NULL) == 0)
        sp.cwd = cwd; /* the script's own folder, also for the PowerShell copy */
    sp.env_add = env;
    sp.timeout_ms = o && o->timeout_ms ? o->timeout_ms : SCR_DEFAULT_TIMEOUT * 1000u;
    sp.cancelled = o ? o->cancelled : NULL;
    sp.cancel_ctx = o ? o->cancel_ctx : NULL;
    sp.out_cap = x.out.cap;
    sp.run_as = o ? o->run_as : NULL;

    /*
     * A private temporary copy: always for PowerShell (the variables as $name, a prologue);
     * for cmd.exe scripts run as a user too - the scripts folder is admin-only on Windows, so
     * the user could not read the original. That user may read the copy and its folder (still
     * nobody else), which is also the working directory then.
     */
    if (kind == SCR_KIND_PS1 || (sp.run_as && kind == SCR_KIND_CMD)) {
        if ((rc = fs_read_all(path, SCR_PS_MAX_BYTES, &text, &text_len, e)) < 0)
            goto start_failed;
        if (kind == SCR_KIND_PS1 &&
            (rc = scr_ps_copy(text, text_len, vars, nvars, &copy, &copy_len, e)) < 0)
            goto start_failed;
        if ((rc = make_private_tmp(path, tmp_dir, sizeof(tmp_dir), e)) < 0 ||
            (rc = fs_join(tmp_dir, name, tmp_file, sizeof(tmp_file), e)) < 0 ||
            (rc = fs_write_atomic(tmp_file, copy ? copy : text, copy ? copy_len : text_len,
                                  FS_WRITE_PRIVATE, e)) < 0)
            goto start_failed;
        if (sp.run_as && ((rc = scr_plat_grant_read(tmp_dir, sp.run_as, e)) < 0 ||
                          (rc = scr_plat_grant_read(tmp_file, sp.run_as, e)) < 0)) {
            err_prefix(e, "cannot let %s read the private copy", sp.run_as->user);
            goto start_failed;
        }
        sp.script = tmp_file;
        if (sp.run_as)
            sp.cwd = tmp_dir;
    }

    if (sp.run_as)
        log_info("%s: running as user %s in session %u (timeout %u s)", name, sp.run_as->user,
                 (unsigned)sp.run_as->session_id, (unsigned)(sp.timeout_ms / 1000));
    else
        log_info("%s: running (timeout %u s)", name, (unsigned)(sp.timeout_ms / 1000));
    t0 = plat_monotonic_ms();
    rc = scr_plat_run(&sp, &x, e);
    res->duration_ms = plat_monotonic_ms() - t0;
    if (rc < 0)
        goto start_failed;

    res->exit_code = x.exit_code;
    res->status = x.cancelled   ? SCR_CANCELLED
                  : x.timed_out ? SCR_TIMEOUT
                  : x.exit_code ? SCR_FAILED
                                : SCR_OK;
    scr_scrub_output(x.out.data, &x.out.len, x.out.cap + 1024, vars, nvars);
    switch (res->status) {
    case SCR_OK:
        log_info("%s: exit code 0 after %llu ms", name, (unsigned long long)res->duration_ms);
        if (o && o->debug)
            log_output(LOG_LEVEL_DEBUG, name, x.out.data, x.out.len, x.out.dropped);
        break;
    case SCR_FAILED:
        log_error("%s: failed with exit code %d after %llu ms", name, x.exit_code,
                  (unsigned long long)res->duration_ms);
        log_output(LOG_LEVEL_ERROR, name, x.out.data, x.out.len, x.out.dropped);
        break;
    case SCR_TIMEOUT:
        log_error("%s: timed out after %u s; it was killed with its child processes", name,
                  (unsigned)(sp.timeout_ms / 1000));
        log_output(LOG_LEVEL_ERROR, name, x.out.data, x.out.len, x.out.dropped);
        break;
    default:
        log_warning("%s: stopped because the agent is stopping (after %llu ms)", name,
                    (unsigned long long)res->duration_ms);
        break;
    }
    rc = 0;
    goto out;

start_failed:
    res->status = SCR_ERROR;
    log_error("%s: cannot run it: %s", name, e ? e->msg : "error");
out:
    if (tmp_file[0])
        plat_path_remove(tmp_file, NULL);
    if (tmp_dir[0])
        plat_dir_remove(tmp_dir, NULL);
    if (text) {
        memset(text, 0, text_len);
        free(text);
    }
    if (copy) {
        memset(copy, 0, copy_len);
        free(copy);
    }
    scr_outbuf_free(&x.out);
    scr_env_list_free(env);
    return rc;
}

static int add_result(struct scr_results *out, const struct scr_result *r)
{
    struct scr_result *p = realloc(out->items, (out->count + 1) * sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    out->items = p;
    out->items[out->count++] = *r;
    return 0;
}

/* The file names of dir (files only; links and folders are left out), sorted. */
static int list_scripts(const char *dir, char ***names, size_t *count, struct err *e)
{
    struct plat_dir *d = NULL;
    struct plat_dir_entry *ent = malloc(sizeof(*ent));
    char **v = NULL;
    size_t n = 0;
    int rc;

    *names = NULL;
    *count = 0;
    if (!ent)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = plat_dir_open(dir, &d, e)) < 0)
        goto out;
    while ((rc = plat_dir_next(d, ent, e)) == 1) {
        char **q;
        if (ent->info.is_dir || ent->info.is_link) {
            log_info("%s: skipped (%s)", ent->name,
                     ent->info.is_link ? "a link is never followed" : "a folder");
            continue;
        }
        if (!(q = realloc(v, (n + 2) * sizeof(*v))) || !(q[n] = strdup(ent->name))) {
            if (q)
                v = q;
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        v = q;
        v[++n] = NULL;
    }
    if (rc < 0)
        goto out;
    if (n)
        qsort(v, n, sizeof(*v), scr_name_cmp);
    *names = v;
    *count = n;
    v = NULL;
    rc = 0;
out:
    if (v) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
    }
    plat_dir_close(d);
    free(ent);
    return rc;
}

int scr_run_dir(const char *script_path, const char *dir_name, const struct scr_var *vars,
                size_t nvars, const struct scr_options *o, struct scr_results *out, struct err *e)
{
    char dir[1024];
    struct plat_file_info fi;
    char **names = NULL;
    size_t n = 0, ran = 0;
    int rc;

    if ((rc = fs_join(script_path, dir_name, dir, sizeof(dir), e)) < 0)
        return rc;
    if (plat_path_stat(dir, &fi, NULL) < 0) {
        log_debug("no %s scripts (%s does not exist)", dir_name, dir);
        return 0;
    }
    if ((rc = scr_plat_check_path(script_path, 1, e)) < 0 ||
        (rc = scr_plat_check_path(dir, 1, e)) < 0) {
        log_error("%s scripts refused: %s; only administrators may be able to change the "
                  "scripts folder",
                  dir_name, e ? e->msg : "unsafe owner or permissions");
        return rc;
    }
    if ((rc = list_scripts(dir, &names, &n, e)) < 0) {
        log_error("cannot list the %s scripts: %s", dir_name, e ? e->msg : "error");
        return rc;
    }
    log_info("running the %s scripts of %s (%zu files)", dir_name, dir, n);
    for (size_t i = 0; i < n; i++) {
        char path[1300];
        struct scr_result r;
        struct err fe = ERR_INIT;
        if (o && o->cancelled && o->cancelled(o->cancel_ctx)) {
            memset(&r, 0, sizeof(r));
            snprintf(r.name, sizeof(r.name), "%s", names[i]);
            r.status = SCR_CANCELLED;
            r.exit_code = -1;
        } else if (fs_join(dir, names[i], path, sizeof(path), &fe) < 0) {
            memset(&r, 0, sizeof(r));
            snprintf(r.name, sizeof(r.name), "%s", names[i]);
            r.status = SCR_ERROR;
            r.exit_code = -1;
            log_error("%s: %s", names[i], fe.msg);
        } else {
            scr_run_file(path, vars, nvars, o, &r, &fe);
            if (r.status != SCR_SKIPPED)
                ran++;
        }
        if (add_result(out, &r) < 0) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            break;
        }
    }
    log_info("the %s scripts are done (%zu run)", dir_name, ran);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
