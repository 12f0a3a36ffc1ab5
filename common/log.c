/*
 * log.c - the logger (log.h): redaction, level filter, and the sinks: stderr, a rotating
 * file, the system log, an in-memory ring for `agentctl logs`, and the forwarding hook.
 *
 * Ownership: all logger state below belongs to g_lock (one mutex, created on first use).
 * The level is an atomic so the filter costs no lock. The hook is called outside the lock;
 * g_hook_busy counts calls in flight so log_set_hook() can wait for them to finish.
 *
 * Pipeline of one record: format (up to LOG_FMT_MAX) -> log_redact() -> escape control
 * characters (one record is always one line) and cut to LOG_LINE_MAX with "..." -> sinks.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define LOG_FMT_MAX           (4 * LOG_LINE_MAX) /* formatted, then redacted, then cut */
#define LOG_RING_MAX          1000               /* records kept for `agentctl logs` */
#define LOG_RING_BYTES        (512 * 1024)       /* and at most this many message bytes */
#define LOG_ERR_MINUTES       60                 /* error counts kept, one per minute */
#define LOG_FILE_RETRY_MS     60000              /* a failed file sink is retried this often */
#define LOG_DEFAULT_FILE_MAX  (10ull * 1024 * 1024)
#define LOG_DEFAULT_FILE_KEEP 5u
#define LOG_MAX_FILE_KEEP     99u
/* "2026-11-21T15:04:05.123Z CRITICAL [module] " (longer module names are cut). */
#define LOG_PREFIX_MAX 80

#ifdef _WIN32
#define LOG_FILE_NL "\r\n" /* the log file is read with Windows tools */
#else
#define LOG_FILE_NL "\n"
#endif

/* ------------------------------------------------------------------------------------- */
/* State                                                                                  */

struct log_ring_slot {
    uint64_t seq; /* 1, 2, ... in the order records entered the ring */
    int64_t time;
    uint32_t time_ms;
    enum log_level level;
    char module[16];
    char *message; /* heap, exact size */
};

struct log_file_sink {
    char *path; /* NULL: no file sink */
    uint64_t max_bytes;
    unsigned keep;
    struct plat_file *f;       /* NULL while closed or failed */
    uint64_t size;             /* bytes in the current file */
    int failed;                /* a failure was reported; cleared on the next success */
    uint64_t retry_at_ms;      /* monotonic time of the next open/rotate attempt */
    char notice[LOG_LINE_MAX]; /* pending announcement of a failure or recovery */
    enum log_level notice_level;
};

static atomic_int g_lock_state; /* 0 none, 1 being created, 2 ready */
static struct plat_mutex *g_lock;
static atomic_int g_level = LOG_LEVEL_INFO;

/* Guarded by g_lock: */
static int g_to_stderr = 1;
static struct log_file_sink g_file;
static int g_syslog_open;
static enum log_level g_syslog_level = LOG_LEVEL_INFO;
static log_hook_fn g_hook;
static void *g_hook_ctx;
static struct log_ring_slot g_ring[LOG_RING_MAX];
static size_t g_ring_start; /* index of the oldest record */
static size_t g_ring_count;
static size_t g_ring_bytes;
static uint64_t g_ring_next_seq = 1; /* the seq the next record gets */
/* Records at error or above per minute of the last hour, for `agentctl status`. */
static struct log_err_minute {
    int64_t minute; /* Unix time / 60 */
    uint32_t count;
} g_err_minutes[LOG_ERR_MINUTES];

static atomic_int g_hook_busy;      /* hook calls in flight */
static _Thread_local int t_in_hook; /* records logged by the hook do not reach it again */

static void lock_ensure(void)
{
    int expected = 0;
    if (atomic_load(&g_lock_state) == 2)
        return;
    if (atomic_compare_exchange_strong(&g_lock_state, &expected, 1)) {
        if (plat_mutex_create(&g_lock, NULL) < 0)
            g_lock = NULL; /* out of memory at start: run unlocked rather than not at all */
        atomic_store(&g_lock_state, 2);
        return;
    }
    while (atomic_load(&g_lock_state) != 2)
        plat_sleep_ms(1);
}

static void log_lock(void)
{
    lock_ensure();
    if (g_lock)
        plat_mutex_lock(g_lock);
}

static void log_unlock(void)
{
    if (g_lock)
        plat_mutex_unlock(g_lock);
}

/* ------------------------------------------------------------------------------------- */
/* Levels                                                                                 */

const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG:
        return "DEBUG";
    case LOG_LEVEL_INFO:
        return "INFO";
    case LOG_LEVEL_WARNING:
        return "WARNING";
    case LOG_LEVEL_ERROR:
        return "ERROR";
    case LOG_LEVEL_CRITICAL:
        return "CRITICAL";
    }
    return "LEVEL?";
}

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int str_ieq(const char *a, const char *b)
{
    while (*a && *b && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

int log_level_parse(const char *name)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {"debug", LOG_LEVEL_DEBUG},  {"info", LOG_LEVEL_INFO},   {"warning", LOG_LEVEL_WARNING},
        {"warn", LOG_LEVEL_WARNING}, {"error", LOG_LEVEL_ERROR}, {"critical", LOG_LEVEL_CRITICAL},
    };
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (str_ieq(name, names[i].name))
            return (int)names[i].level;
    }
    return -1;
}

static int level_valid(int level)
{
    return level == LOG_LEVEL_DEBUG || level == LOG_LEVEL_INFO || level == LOG_LEVEL_WARNING ||
           level == LOG_LEVEL_ERROR || level == LOG_LEVEL_CRITICAL;
}

void log_set_level(enum log_level level)
{
    atomic_store(&g_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&g_level);
}

/* ------------------------------------------------------------------------------------- */
/* Redaction                                                                              */

/* Output of the redactor: never more than cap - 1 bytes. */
struct rd_out {
    char *p;
    size_t cap;
    size_t len;
};

static void rd_put(struct rd_out *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void rd_redacted(struct rd_out *o)
{
    rd_put(o, LOG_REDACTED, sizeof(LOG_REDACTED) - 1);
}

static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_b64url(int c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

/* Characters of a key name: identifiers, including "register-token" and "--flags". */
static int is_word(int c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int starts_with(const char *s, size_t n, size_t i, const char *lit)
{
    size_t k = strlen(lit);
    return n - i >= k && memcmp(s + i, lit, k) == 0;
}

static int starts_with_ci(const char *s, size_t n, size_t i, const char *lit)
{
    size_t k = strlen(lit);
    if (n - i < k)
        return 0;
    for (size_t j = 0; j < k; j++) {
        if (ascii_lower((unsigned char)s[i + j]) != lit[j])
            return 0;
    }
    return 1;
}

/* Index of lit in s[from, to) or (size_t)-1. */
static size_t find_lit(const char *s, size_t from, size_t to, const char *lit)
{
    size_t k = strlen(lit);
    for (size_t i = from; i + k <= to; i++) {
        if (memcmp(s + i, lit, k) == 0)
            return i;
    }
    return (size_t)-1;
}

/*
 * "-----BEGIN <label>-----" where label contains "PRIVATE KEY", through the next
 * "-----END <label>-----" (or the end of the message when the block is cut). Returns the end
 * of the block, or 0 when there is none at i.
 */
static size_t match_pem(const char *s, size_t n, size_t i)
{
    size_t lab, close, end;
    if (!starts_with(s, n, i, "-----BEGIN "))
        return 0;
    lab = i + 11;
    close = find_lit(s, lab, n - lab > 80 ? lab + 80 : n, "-----");
    if (close == (size_t)-1 || find_lit(s, lab, close, "PRIVATE KEY") == (size_t)-1)
        return 0;
    end = find_lit(s, close + 5, n, "-----END ");
    if (end == (size_t)-1)
        return n;
    end = find_lit(s, end + 9, n, "-----");
    return end == (size_t)-1 ? n : end + 5;
}

/*
 * A JWT at i: "eyJ" + base64url, '.', base64url, then '.' and an optional signature (and
 * more segments for JWE). A cut-off "eyJ...eyJ..." (header and payload, no dot after) counts
 * too. Returns the end, or 0.
 */
static size_t match_jwt(const char *s, size_t n, size_t i)
{
    size_t j, k;
    if ((i > 0 && is_b64url((unsigned char)s[i - 1])) || !starts_with(s, n, i, "eyJ"))
        return 0;
    for (j = i + 3; j < n && is_b64url((unsigned char)s[j]); j++)
        ;
    if (j - i < 4 || j >= n || s[j] != '.')
        return 0;
    for (k = j + 1; k < n && is_b64url((unsigned char)s[k]); k++)
        ;
    if (k == j + 1)
        return 0;
    if (k < n && s[k] == '.') {
        do {
            for (k++; k < n && is_b64url((unsigned char)s[k]); k++)
                ;
        } while (k + 1 < n && s[k] == '.' && is_b64url((unsigned char)s[k + 1]));
        return k;
    }
    return starts_with(s, n, j + 1, "eyJ") ? k : 0;
}

/* Key names whose values are secrets, with '-' written as '_'. */
static const char *const secret_names[] = {
    "token",    "jwt",    "jwt_token",   "agent_jwt_token", "registration_token", "register_token",
    "password", "passwd", "pwd",         "secret",          "client_secret",      "authorization",
    "api_key",  "apikey", "private_key", "server_key",      "credential",         "credentials",
};
/* ...and names ending in one of these ("access_token", "db_password", "x-api-key"). */
static const char *const secret_suffixes[] = {
    "_token",   "_jwt",    "_password",      "_passwd",     "_secret",
    "_api_key", "_apikey", "_authorization", "_credential", "_credentials",
};

static int name_is_auth(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "authorization") == 0 ||
           (n > 14 && strcmp(name + n - 14, "_authorization") == 0);
}

/* Normalises s[i, i+len) (lower case, '-' -> '_') into out; 0 when too long to be a key. */
static int key_name(const char *s, size_t i, size_t len, char *out, size_t cap)
{
    if (len == 0 || len >= cap)
        return 0;
    for (size_t k = 0; k < len; k++) {
        int c = ascii_lower((unsigned char)s[i + k]);
        out[k] = (char)(c == '-' ? '_' : c);
    }
    out[len] = '\0';
    return 1;
}

static int name_is_secret(const char *name)
{
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof(secret_names) / sizeof(secret_names[0]); k++) {
        if (strcmp(name, secret_names[k]) == 0)
            return 1;
    }
    for (size_t k = 0; k < sizeof(secret_suffixes) / sizeof(secret_suffixes[0]); k++) {
        size_t m = strlen(secret_suffixes[k]);
        if (n > m && strcmp(name + n - m, secret_suffixes[k]) == 0)
            return 1;
    }
    return 0;
}

/* End of a quoted value whose opening quote q is at j: the index of the closing quote or n. */
static size_t quoted_end(const char *s, size_t n, size_t j, char q)
{
    size_t k = j + 1;
    while (k < n) {
        if (s[k] == '\\' && k + 1 < n) {
            k += 2;
            continue;
        }
        if (s[k] == q) {
            if (q == '\'' && k + 1 < n && s[k + 1] == '\'') { /* YAML '' escape */
                k += 2;
                continue;
            }
            return k;
        }
        k++;
    }
    return n;
}

static int value_delim(int c, char sep)
{
    if (is_space(c))
        return 1;
    if (sep == ' ') /* CLI: the value is the next whole argument */
        return 0;
    return c == ',' || c == ';' || c == '"' || c == '\'' || c == ')' || c == ']' || c == '}' ||
           (sep == '=' && c == '&');
}

/*
 * "Bearer xyz", "Basic xyz" at v (an Authorization value): sets *cred to where the
 * credential starts and returns the end of the line (or of the quoted string), 0 when v does
 * not hold "<scheme> <credential>".
 */
static size_t match_auth_scheme(const char *s, size_t n, size_t v, size_t *cred)
{
    size_t k = v, c, end;
    while (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z')))
        k++;
    if (k == v || k >= n || !is_blank((unsigned char)s[k]))
        return 0;
    for (c = k; c < n && is_blank((unsigned char)s[c]); c++)
        ;
    if (c >= n || is_space((unsigned char)s[c]))
        return 0;
    for (end = c; end < n && s[end] != '\r' && s[end] != '\n' && s[end] != '"' && s[end] != '\'';
         end++)
        ;
    *cred = c;
    return end;
}

/*
 * A secret-named key at word start i (word ends at w) followed by its value. On a match,
 * writes the key and separator, then LOG_REDACTED in place of the value, and returns the
 * index where copying resumes. Returns 0 when there is nothing to redact here.
 *
 * Forms: key=value (also in query strings, spaces allowed around '='), key:value / key: value
 * (YAML, HTTP headers; no space before ':'), "key": "value" and 'key': 'value' (JSON,
 * Python), {\"key\":\"value\"} (JSON inside a JSON string), and CLI flags "--key value".
 * Authorization values keep their scheme: "Authorization: Bearer <redacted>".
 */
static size_t match_key(const char *s, size_t n, size_t i, size_t w, struct rd_out *o)
{
    char name[48];
    size_t dashes = 0, j = w, v, end, cred;
    char q = 0, sep;
    int esc = 0;

    while (i + dashes < w && s[i + dashes] == '-')
        dashes++;
    if (!key_name(s, i + dashes, w - i - dashes, name, sizeof(name)) || !name_is_secret(name))
        return 0;

    /* A quoted key: "token": ... , 'token': ..., \"token\": ... */
    if (i > 0 && (s[i - 1] == '"' || s[i - 1] == '\'')) {
        q = s[i - 1];
        esc = q == '"' && i > 1 && s[i - 2] == '\\';
        if (esc && j + 1 < n && s[j] == '\\' && s[j + 1] == '"') {
            j += 2;
        } else if (!esc && j < n && s[j] == q) {
            j++;
        } else {
            q = 0; /* "token is ..." in quotes is text, not a key */
            esc = 0;
        }
    }
    v = j;
    while (v < n && is_blank((unsigned char)s[v]))
        v++;
    if (v < n && s[v] == '=' && !(v + 1 < n && s[v + 1] == '=')) {
        sep = '=';
        v++;
    } else if (v < n && s[v] == ':' && (v == j || q) && !(v + 1 < n && s[v + 1] == ':')) {
        sep = ':';
        v++;
    } else if (dashes > 0 && v > j && v < n) {
        sep = ' ';
    } else {
        return 0;
    }
    while (v < n && is_blank((unsigned char)s[v]))
        v++;
    if (v >= n || starts_with(s, n, v, LOG_REDACTED) || s[v] == '{' || s[v] == '[')
        return 0;

    if (s[v] == '"' || s[v] == '\'') {
        end = quoted_end(s, n, v, s[v]);
        v++;
    } else if (s[v] == '\\' && v + 1 < n && s[v + 1] == '"') {
        end = find_lit(s, v + 2, n, "\\\"");
        if (end == (size_t)-1)
            end = n;
        v += 2;
    } else if ((end = match_pem(s, n, v)) != 0) {
        /* private_key=-----BEGIN ... : the whole block, not just its first word */
    } else if (name_is_auth(name) && (end = match_auth_scheme(s, n, v, &cred)) != 0) {
        v = cred; /* keep the scheme */
    } else {
        for (end = v; end < n && !value_delim((unsigned char)s[end], sep); end++)
            ;
        if (end == v)
            return 0;
    }
    rd_put(o, s + i, v - i);
    rd_redacted(o);
    return end;
}

/* Credential characters after "Bearer" (RFC 6750 b64token). */
static int is_b64token(int c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

/* "Bearer <credential>" anywhere (credential of 8+ token characters). */
static size_t match_bearer(const char *s, size_t n, size_t i, size_t w, struct rd_out *o)
{
    size_t c, end;
    if (w - i != 6 || !starts_with_ci(s, n, i, "bearer"))
        return 0;
    for (c = w; c < n && is_blank((unsigned char)s[c]); c++)
        ;
    if (c == w)
        return 0;
    for (end = c; end < n && is_b64token((unsigned char)s[end]); end++)
        ;
    if (end - c < 8)
        return 0;
    rd_put(o, s + i, c - i);
    rd_redacted(o);
    return end;
}

/* "scheme://user:password@host": hides the password. i is at "://". */
static size_t match_userinfo(const char *s, size_t n, size_t i, struct rd_out *o)
{
    size_t k, colon = 0;
    if (!starts_with(s, n, i, "://"))
        return 0;
    for (k = i + 3; k < n && s[k] != '@' && s[k] != '/' && !is_space((unsigned char)s[k]); k++) {
        if (s[k] == ':' && !colon)
            colon = k;
    }
    if (k >= n || s[k] != '@' || !colon || colon + 1 == k)
        return 0;
    rd_put(o, s + i, colon + 1 - i);
    rd_redacted(o);
    return k;
}

char *log_redact(char *msg, size_t cap)
{
    struct rd_out o;
    size_t n, i = 0;

    if (!msg || cap == 0)
        return msg;
    n = strnlen(msg, cap);
    if (n == cap) /* not terminated within cap: treat the last byte as the end */
        n = cap - 1;
    o.p = malloc(cap);
    o.cap = cap;
    o.len = 0;
    if (!o.p) {
        /* Cannot inspect it safely: hide all of it. */
        snprintf(msg, cap, "%s", LOG_REDACTED);
        return msg;
    }
    while (i < n && o.len < cap - 1) {
        size_t end;
        unsigned char c = (unsigned char)msg[i];
        if (c == '-' && (end = match_pem(msg, n, i)) != 0) {
            rd_redacted(&o);
            i = end;
            continue;
        }
        if (c == 'e' && (end = match_jwt(msg, n, i)) != 0) {
            rd_redacted(&o);
            i = end;
            continue;
        }
        if (c == ':' && (end = match_userinfo(msg, n, i, &o)) != 0) {
            i = end;
            continue;
        }
        if (is_word(c) && (i == 0 || !is_word((unsigned char)msg[i - 1]))) {
            size_t w = i;
            while (w < n && is_word((unsigned char)msg[w]))
                w++;
            if ((end = match_key(msg, n, i, w, &o)) != 0 ||
                (end = match_bearer(msg, n, i, w, &o)) != 0) {
                i = end;
                continue;
            }
        }
        /* One byte at a time: a PEM block may start inside a word ("x-----BEGIN ..."). */
        rd_put(&o, msg + i, 1);
        i++;
    }
    memcpy(msg, o.p, o.len);
    msg[o.len] = '\0';
    free(o.p);
    return msg;
}

/* ------------------------------------------------------------------------------------- */
/* Formatting                                                                             */

/* The largest n' <= n such that s[0, n') does not end inside a UTF-8 sequence. */
static size_t utf8_boundary(const char *s, size_t n)
{
    size_t j = n;
    unsigned char lead;
    size_t need;
    while (j > 0 && n - j < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j == 0)
        return n;
    lead = (unsigned char)s[j - 1];
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return (need > 1 && n - (j - 1) < need) ? j - 1 : n;
}

/*
 * Copies src into dst (cap bytes), escaping control characters so one record is one line
 * ("\n", "\r", "\x1b"; tabs are kept), and cuts it with "..." when it does not fit or when
 * cut is set (the formatter already dropped a tail). Never splits a UTF-8 sequence.
 */
static void sanitize_cut(const char *src, int cut, char *dst, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t limit = cap - 1, o = 0, i = 0;

    for (; src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        char esc[4];
        size_t k = 0;
        if (c == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else if (c == '\r') {
            esc[k++] = '\\';
            esc[k++] = 'r';
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'x';
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char)c;
        }
        if (o + k > limit) {
            cut = 1;
            break;
        }
        memcpy(dst + o, esc, k);
        o += k;
    }
    if (cut) {
        if (o > limit - 3)
            o = limit - 3;
        o = utf8_boundary(dst, o);
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468; /* shift the epoch to 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400) + (*m <= 2);
}

/* "2026-11-21T15:04:05.123Z INFO  [module] " into out. */
static int format_prefix(const struct log_record *r, char *out, size_t cap)
{
    int64_t days = r->time / 86400, secs = r->time % 86400;
    int y;
    unsigned mo, d;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    civil_from_days(days, &y, &mo, &d);
    return snprintf(out, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%03uZ %-5s [%.15s] ", y, mo, d,
                    (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
                    (unsigned)r->time_ms, log_level_name(r->level), r->module);
}

/* ------------------------------------------------------------------------------------- */
/* Sinks (all called with g_lock held)                                                    */

static void sink_stderr(const struct log_record *r, const char *prefix)
{
    fprintf(stderr, "%s%s\n", prefix, r->message);
    fflush(stderr);
}

/* A failure (or recovery) of the file sink is announced once, after the current record. */
#if defined(__GNUC__)
__attribute__((format(ERR_PRINTF_ARCHETYPE, 2, 3)))
#endif
static void
file_notice(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_file.notice, sizeof(g_file.notice), fmt, ap);
    va_end(ap);
    g_file.notice_level = level;
}

static void file_fail(const char *what, const struct err *e)
{
    plat_file_close(g_file.f);
    g_file.f = NULL;
    g_file.retry_at_ms = plat_monotonic_ms() + LOG_FILE_RETRY_MS;
    if (!g_file.failed) {
        g_file.failed = 1;
        file_notice(LOG_LEVEL_ERROR,
                    "%s log file %s: %s; file logging is paused and retried every %d s", what,
                    g_file.path, e->msg, LOG_FILE_RETRY_MS / 1000);
    }
}

/* Opens (creates) the log file for appending; e must not be NULL. */
static int file_open(struct err *e)
{
    struct plat_file_info info;
    if (plat_file_open(g_file.path, PLAT_OPEN_WRITE | PLAT_OPEN_APPEND, &g_file.f, e) < 0)
        return e->code;
    if (plat_file_stat(g_file.f, &info, e) < 0) {
        plat_file_close(g_file.f);
        g_file.f = NULL;
        return e->code;
    }
    g_file.size = info.size;
    return 0;
}

/* path -> path.1 -> ... -> path.N (the oldest is overwritten), then a fresh path. */
static int file_rotate(struct err *e)
{
    size_t plen = strlen(g_file.path);
    size_t cap = plen + 8;
    char *src = malloc(cap), *dst = malloc(cap);
    int rc = 0;

    plat_file_close(g_file.f);
    g_file.f = NULL;
    if (!src || !dst) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (unsigned k = g_file.keep; k >= 1; k--) {
        struct err e2 = ERR_INIT;
        if (k == 1)
            snprintf(src, cap, "%s", g_file.path);
        else
            snprintf(src, cap, "%s.%u", g_file.path, k - 1);
        snprintf(dst, cap, "%s.%u", g_file.path, k);
        if (plat_path_replace(src, dst, &e2) < 0 && e2.code != ERR_NOT_FOUND) {
            *e = e2;
            rc = e2.code;
            goto out;
        }
    }
    rc = file_open(e);
out:
    free(src);
    free(dst);
    return rc;
}

static void sink_file(const char *prefix, const char *message)
{
    struct err e = ERR_INIT;
    size_t plen = strlen(prefix), mlen = strlen(message), nl = sizeof(LOG_FILE_NL) - 1;
    char line[LOG_PREFIX_MAX + LOG_LINE_MAX + 4];
    uint64_t len;

    if (!g_file.path)
        return;
    if (!g_file.f) {
        if (g_file.failed && plat_monotonic_ms() < g_file.retry_at_ms)
            return;
        if (file_open(&e) < 0) {
            file_fail("cannot open", &e);
            return;
        }
    }
    if (plen + mlen + nl > sizeof(line))
        mlen = sizeof(line) - plen - nl;
    memcpy(line, prefix, plen);
    memcpy(line + plen, message, mlen);
    memcpy(line + plen + mlen, LOG_FILE_NL, nl);
    len = plen + mlen + nl;
    if (g_file.size > 0 && g_file.size + len > g_file.max_bytes && file_rotate(&e) < 0) {
        file_fail("cannot rotate", &e);
        return;
    }
    if (plat_file_write_all(g_file.f, line, (size_t)len, &e) < 0) {
        file_fail("cannot write", &e);
        return;
    }
    g_file.size += len;
    if (g_file.failed) {
        g_file.failed = 0;
        file_notice(LOG_LEVEL_WARNING,
                    "log file %s is writable again; records from the time it failed are "
                    "missing from it",
                    g_file.path);
    }
}

static void sink_ring(const struct log_record *r)
{
    size_t mlen = strlen(r->message);
    char *copy = malloc(mlen + 1);
    struct log_ring_slot *slot;

    if (!copy)
        return;
    memcpy(copy, r->message, mlen + 1);
    while (g_ring_count > 0 &&
           (g_ring_count == LOG_RING_MAX || g_ring_bytes + mlen > LOG_RING_BYTES)) {
        slot = &g_ring[g_ring_start];
        g_ring_bytes -= strlen(slot->message);
        free(slot->message);
        slot->message = NULL;
        g_ring_start = (g_ring_start + 1) % LOG_RING_MAX;
        g_ring_count--;
    }
    slot = &g_ring[(g_ring_start + g_ring_count) % LOG_RING_MAX];
    slot->seq = g_ring_next_seq++;
    slot->time = r->time;
    slot->time_ms = r->time_ms;
    slot->level = r->level;
    snprintf(slot->module, sizeof(slot->module), "%s", r->module);
    slot->message = copy;
    g_ring_count++;
    g_ring_bytes += mlen;
}

static void err_minute_count(int64_t t)
{
    int64_t minute = t / 60;
    struct log_err_minute *b = &g_err_minutes[(uint64_t)minute % LOG_ERR_MINUTES];
    if (b->minute != minute) {
        b->minute = minute;
        b->count = 0;
    }
    b->count++;
}

static void emit_locked(const struct log_record *r, int to_file)
{
    char prefix[LOG_PREFIX_MAX];
    format_prefix(r, prefix, sizeof(prefix));
    if (g_to_stderr)
        sink_stderr(r, prefix);
    if (to_file)
        sink_file(prefix, r->message);
    if (g_syslog_open && r->level >= g_syslog_level) {
        char line[LOG_LINE_MAX + 32];
        snprintf(line, sizeof(line), "[%s] %s", r->module, r->message);
        plat_syslog_write((int)r->level, line);
    }
    sink_ring(r);
    if (r->level >= LOG_LEVEL_ERROR)
        err_minute_count(r->time);

    if (g_file.notice[0]) {
        /* A file sink failure reaches stderr even when stderr is not a sink: last resort. */
        char text[LOG_LINE_MAX];
        struct log_record n = *r;
        int failed = g_file.failed;
        log_redact(g_file.notice, sizeof(g_file.notice));
        sanitize_cut(g_file.notice, 0, text, sizeof(text));
        g_file.notice[0] = '\0';
        n.level = g_file.notice_level;
        n.module = "log";
        n.message = text;
        if (failed && !g_to_stderr) {
            format_prefix(&n, prefix, sizeof(prefix));
            sink_stderr(&n, prefix);
        }
        emit_locked(&n, !failed);
    }
}

/* ------------------------------------------------------------------------------------- */
/* API                                                                                    */

static void file_close_locked(void)
{
    plat_file_close(g_file.f);
    free(g_file.path);
    memset(&g_file, 0, sizeof(g_file));
}

int log_init(const struct log_options *opt, struct err *e)
{
    struct log_options def = {LOG_LEVEL_INFO, 1, NULL, 0, 0, NULL, 0};
    struct err fe = ERR_INIT;
    int rc = 0;
    char *path = NULL;

    if (!opt)
        opt = &def;
    if (!level_valid(opt->level))
        return err_set(e, ERR_INVALID, "unknown log level %d", (int)opt->level);
    if (opt->file_path && *opt->file_path && !(path = strdup(opt->file_path)))
        return err_set(e, ERR_NOMEM, "cannot set up logging: out of memory");

    log_lock();
    g_to_stderr = opt->to_stderr != 0;
    atomic_store(&g_level, (int)opt->level);

    file_close_locked();
    if (path) {
        g_file.path = path;
        g_file.max_bytes = opt->file_max_bytes ? opt->file_max_bytes : LOG_DEFAULT_FILE_MAX;
        g_file.keep = opt->file_keep ? opt->file_keep : LOG_DEFAULT_FILE_KEEP;
        if (g_file.keep > LOG_MAX_FILE_KEEP)
            g_file.keep = LOG_MAX_FILE_KEEP;
        if (file_open(&fe) < 0) {
            /* Keep it configured: it is retried, and the other sinks work meanwhile. */
            rc = err_prefix(&fe, "cannot open log file %s", path);
            if (e)
                *e = fe;
            g_file.failed = 1;
            g_file.retry_at_ms = plat_monotonic_ms() + LOG_FILE_RETRY_MS;
        }
    }

    if (g_syslog_open) {
        plat_syslog_close();
        g_syslog_open = 0;
    }
    if (opt->syslog_source && *opt->syslog_source) {
        plat_syslog_open(opt->syslog_source);
        g_syslog_open = 1;
        g_syslog_level = opt->syslog_level ? opt->syslog_level : LOG_LEVEL_INFO;
    }
    log_unlock();
    return rc;
}

void log_shutdown(void)
{
    log_set_hook(NULL, NULL);
    log_lock();
    file_close_locked();
    if (g_syslog_open) {
        plat_syslog_close();
        g_syslog_open = 0;
    }
    g_to_stderr = 1;
    log_unlock();
}

void log_set_hook(log_hook_fn fn, void *ctx)
{
    log_lock();
    g_hook = fn;
    g_hook_ctx = ctx;
    log_unlock();
    /* Calls that started before the change finish before we return (unless we are one). */
    while (!t_in_hook && atomic_load(&g_hook_busy) > 0)
        plat_sleep_ms(1);
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char raw[LOG_FMT_MAX];
    char msg[LOG_LINE_MAX];
    struct log_record r;
    log_hook_fn hook;
    void *hook_ctx;
    int64_t now;
    va_list ap;
    int n;

    if ((int)level < atomic_load(&g_level))
        return;
    if (fmt) {
        va_start(ap, fmt);
        n = vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
    } else {
        raw[0] = '\0';
        n = 0;
    }
    if (n < 0)
        snprintf(raw, sizeof(raw), "(unprintable log message)");
    log_redact(raw, sizeof(raw));
    sanitize_cut(raw, n >= (int)sizeof(raw), msg, sizeof(msg));

    now = plat_wall_time_ms();
    r.time = now / 1000;
    r.time_ms = (uint32_t)(now % 1000);
    r.level = level;
    r.module = module && *module ? module : "-";
    r.message = msg;

    log_lock();
    emit_locked(&r, 1);
    hook = t_in_hook ? NULL : g_hook;
    hook_ctx = g_hook_ctx;
    if (hook)
        atomic_fetch_add(&g_hook_busy, 1);
    log_unlock();

    if (hook) {
        t_in_hook = 1;
        hook(&r, hook_ctx);
        t_in_hook = 0;
        atomic_fetch_sub(&g_hook_busy, 1);
    }
}

size_t log_ring_snapshot(struct log_ring_entry **out, size_t max)
{
    struct log_ring_entry *v;
    size_t count, skip;

    *out = NULL;
    log_lock();
    count = g_ring_count < max ? g_ring_count : max;
    v = count ? calloc(count, sizeof(*v)) : NULL;
    if (!v) {
        log_unlock();
        return 0;
    }
    skip = g_ring_count - count; /* the most recent `count`, oldest first */
    for (size_t k = 0; k < count; k++) {
        const struct log_ring_slot *s = &g_ring[(g_ring_start + skip + k) % LOG_RING_MAX];
        v[k].seq = s->seq;
        v[k].time = s->time;
        v[k].time_ms = s->time_ms;
        v[k].level = s->level;
        memcpy(v[k].module, s->module, sizeof(v[k].module));
        snprintf(v[k].message, sizeof(v[k].message), "%s", s->message);
    }
    log_unlock();
    *out = v;
    return count;
}

size_t log_ring_since(uint64_t after, size_t max, struct log_ring_entry **out,
                      struct log_ring_pos *pos)
{
    struct log_ring_entry *v = NULL;
    size_t count = 0, skip = 0;
    uint64_t oldest;

    *out = NULL;
    log_lock();
    oldest = g_ring_count ? g_ring[g_ring_start].seq : g_ring_next_seq;
    pos->oldest = oldest;
    pos->last = g_ring_next_seq - 1;
    pos->missed = after + 1 < oldest ? oldest - after - 1 : 0;
    if (after + 1 > oldest)
        skip = after - oldest + 1 < g_ring_count ? (size_t)(after - oldest + 1) : g_ring_count;
    count = g_ring_count - skip;
    if (count > max)
        count = max;
    if (count && !(v = calloc(count, sizeof(*v))))
        count = 0;
    for (size_t k = 0; k < count; k++) {
        const struct log_ring_slot *s = &g_ring[(g_ring_start + skip + k) % LOG_RING_MAX];
        v[k].seq = s->seq;
        v[k].time = s->time;
        v[k].time_ms = s->time_ms;
        v[k].level = s->level;
        memcpy(v[k].module, s->module, sizeof(v[k].module));
        snprintf(v[k].message, sizeof(v[k].message), "%s", s->message);
    }
    pos->next = count ? v[count - 1].seq : (after > pos->last ? pos->last : after);
    if (pos->next < oldest - 1)
        pos->next = oldest - 1;
    log_unlock();
    *out = v;
    return count;
}

unsigned log_error_count(int64_t now)
{
    int64_t minute = now / 60;
    unsigned n = 0;

    log_lock();
    for (size_t k = 0; k < LOG_ERR_MINUTES; k++) {
        const struct log_err_minute *b = &g_err_minutes[k];
        if (b->count && b->minute <= minute && b->minute > minute - LOG_ERR_MINUTES)
            n += b->count;
    }
    log_unlock();
    return n;
}

void log_ring_free(struct log_ring_entry *entries)
{
    free(entries);
}
