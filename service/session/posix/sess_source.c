/*
 * sess_source.c (POSIX) - sess_enumerate(): the logged-on sessions from a declared-sessions
 * file (cfg->sessions_file; tests and hosts without logind) or from logind's state files in
 * /run/systemd/sessions/. Also the parsers behind them (sesm_int.h), unit-tested.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sesm_int.h"
#include "sess_plat.h"

#define SESS_LOGIND_DIR  "/run/systemd/sessions"
#define SESS_FILE_MAX    (1024 * 1024)
#define SESS_MAX_ENTRIES 4096

static int sess_push(struct sess_info **arr, size_t *n, size_t *cap, const struct sess_info *s,
                     struct err *e)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct sess_info *p;
        if (nc > SESS_MAX_ENTRIES)
            return err_set(e, ERR_TOO_LARGE, "more than %d sessions", SESS_MAX_ENTRIES);
        p = realloc(*arr, nc * sizeof(*p));
        if (!p)
            return err_set(e, ERR_NOMEM, "out of memory listing sessions");
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = *s;
    return 0;
}

/* Next whitespace-separated word of [*p, end); returns its length (0: none). */
static size_t sess_word(const char **p, const char *end, const char **word)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
        s++;
    *word = s;
    while (s < end && *s != ' ' && *s != '\t' && *s != '\r')
        s++;
    *p = s;
    return (size_t)(s - *word);
}

static int sess_parse_id(const char *w, size_t len, uint32_t *id)
{
    uint64_t v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (w[i] < '0' || w[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(w[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *id = (uint32_t)v;
    return 0;
}

int sess_parse_declared(const char *name, const char *text, size_t len, struct sess_info **out,
                        size_t *n, struct err *e)
{
    struct sess_info *arr = NULL;
    size_t cnt = 0, cap = 0;
    const char *p = text, *end = text + len;
    unsigned line = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *w;
        size_t wl;
        struct sess_info s;

        line++;
        memset(&s, 0, sizeof(s));
        wl = sess_word(&p, le, &w);
        if (wl == 0 || w[0] == '#')
            goto next;
        if (sess_parse_id(w, wl, &s.id) < 0) {
            rc = err_set(e, ERR_PARSE, "%s:%u: the session id must be a number, got '%.*s'", name,
                         line, (int)(wl > 32 ? 32 : wl), w);
            goto out;
        }
        wl = sess_word(&p, le, &w);
        if (wl == 0 || w[0] == '#') {
            rc = err_set(e, ERR_PARSE, "%s:%u: a user name must follow the session id", name, line);
            goto out;
        }
        if (wl >= sizeof(s.user)) {
            rc = err_set(e, ERR_PARSE, "%s:%u: the user name is too long", name, line);
            goto out;
        }
        memcpy(s.user, w, wl);
        while ((wl = sess_word(&p, le, &w)) > 0 && w[0] != '#') {
            if (wl == 7 && memcmp(w, "console", 7) == 0) {
                s.console = 1;
            } else if (wl > 8 && memcmp(w, "display=", 8) == 0 && wl - 8 < sizeof(s.display)) {
                memcpy(s.display, w + 8, wl - 8);
            } else {
                rc = err_set(e, ERR_PARSE,
                             "%s:%u: unknown word '%.*s' (expected console or display=:N)", name,
                             line, (int)(wl > 32 ? 32 : wl), w);
                goto out;
            }
        }
        for (size_t i = 0; i < cnt; i++)
            if (arr[i].id == s.id) {
                rc = err_set(e, ERR_PARSE, "%s:%u: session %u is declared twice", name, line,
                             (unsigned)s.id);
                goto out;
            }
        if ((rc = sess_push(&arr, &cnt, &cap, &s, e)) < 0)
            goto out;
    next:
        p = eol ? eol + 1 : end;
    }
    *out = arr;
    *n = cnt;
    arr = NULL;
out:
    free(arr);
    return rc;
}

/* Reads a small file whole (NUL-terminated). */
static int sess_read_file(const char *path, char **buf, size_t *len, struct err *e)
{
    FILE *f = NULL;
    char *b = NULL;
    size_t got = 0;
    int rc = 0;

    *buf = NULL;
    *len = 0;
    f = fopen(path, "rbe");
    if (!f) {
        rc = err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot open %s: %s", path,
                     strerror(errno));
        goto out;
    }
    b = malloc(SESS_FILE_MAX + 1);
    if (!b) {
        rc = err_set(e, ERR_NOMEM, "out of memory reading %s", path);
        goto out;
    }
    got = fread(b, 1, SESS_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = err_set(e, ERR_IO, "cannot read %s", path);
        goto out;
    }
    if (got > SESS_FILE_MAX) {
        rc = err_set(e, ERR_TOO_LARGE, "%s is larger than %d bytes", path, SESS_FILE_MAX);
        goto out;
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    b = NULL;
out:
    free(b);
    if (f)
        fclose(f);
    return rc;
}

/* The value of KEY= in a key=value text, copied into out ("" when absent). */
static void sess_kv(const char *text, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = text;

    out[0] = '\0';
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t vl = strcspn(v, "\n");
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
}

static int sess_logind_id(const char *name, uint32_t *id)
{
    uint32_t v;

    if (name[0] == 'c') {
        if (sess_parse_id(name + 1, strlen(name + 1), &v) < 0 || v >= 0x80000000u)
            return -1;
        *id = 0x80000000u | v;
        return 0;
    }
    if (sess_parse_id(name, strlen(name), &v) < 0 || v >= 0x80000000u)
        return -1;
    *id = v;
    return 0;
}

int sess_logind_enumerate(const char *dir, struct sess_info **out, size_t *n, struct err *e)
{
    struct sess_info *arr = NULL;
    size_t cnt = 0, cap = 0;
    DIR *d = NULL;
    struct dirent *de;
    char *text = NULL;
    int rc = 0;

    *out = NULL;
    *n = 0;
    d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            goto done;
        rc = err_set(e, ERR_IO, "cannot list %s: %s", dir, strerror(errno));
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096], state[32], cls[32], active[8], seat[64];
        struct sess_info s;
        size_t len;
        struct err fe = ERR_INIT;

        if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
            continue; /* ".", "..", and logind's temporary files */
        memset(&s, 0, sizeof(s));
        if (sess_logind_id(de->d_name, &s.id) < 0)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
            continue;
        free(text);
        text = NULL;
        if (sess_read_file(path, &text, &len, &fe) < 0)
            continue; /* a session that ended while we listed */
        sess_kv(text, "STATE", state, sizeof(state));
        sess_kv(text, "CLASS", cls, sizeof(cls));
        sess_kv(text, "USER", s.user, sizeof(s.user));
        sess_kv(text, "ACTIVE", active, sizeof(active));
        sess_kv(text, "SEAT", seat, sizeof(seat));
        sess_kv(text, "DISPLAY", s.display, sizeof(s.display));
        if (strcmp(state, "active") != 0 && strcmp(state, "online") != 0)
            continue;
        if (cls[0] && strncmp(cls, "user", 4) != 0)
            continue; /* greeter, lock-screen, background, manager */
        if (!s.user[0])
            continue;
        s.console = seat[0] && strcmp(active, "1") == 0;
        if ((rc = sess_push(&arr, &cnt, &cap, &s, e)) < 0)
            goto out;
    }
done:
    *out = arr;
    *n = cnt;
    arr = NULL;
out:
    free(text);
    free(arr);
    if (d)
        closedir(d);
    return rc;
}

int sess_enumerate(const struct sesm_config *cfg, struct sess_info **out, size_t *n, struct err *e)
{
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    *out = NULL;
    *n = 0;
    if (cfg->sessions_file[0]) {
        rc = sess_read_file(cfg->sessions_file, &text, &len, e);
        if (rc == ERR_NOT_FOUND) {
            /* No file: no declared sessions (a test removes it to log everybody off). */
            err_clear(e);
            return 0;
        }
        if (rc == 0)
            rc = sess_parse_declared(cfg->sessions_file, text, len, out, n, e);
        free(text);
        return rc;
    }
    if (stat(SESS_LOGIND_DIR, &st) == 0 && S_ISDIR(st.st_mode))
        return sess_logind_enumerate(SESS_LOGIND_DIR, out, n, e);
    return 0;
}
