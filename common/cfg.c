/*
 * cfg.c - config.yaml: the typed load (libyaml events, line:column errors), the keys the
 * agent does not know (kept as a tree and written back), rendering through the libyaml
 * emitter (so quoting and escaping are libyaml's, never ours), cfg_equal (same meaning, with
 * the YAML 1.1 plain-scalar types it needs) and the atomic save.
 * The key table below is the single list of known keys, in the order they are saved.
 */
#include "cfg.h"

#include "fsutil.h"

#include <openssl/crypto.h>
#include <yaml.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_RENDER_MAX (64u * 1024u * 1024u) /* ceiling of a rendered file (escapes grow it) */
#define CFG_SHOW_MAX   48                    /* bytes of a bad value quoted in an error */

/* ---- the tree kept for unknown keys ---- */

enum node_kind { NODE_SCALAR, NODE_SEQ, NODE_MAP };

struct cfg_node {
    int kind;
    char *tag;               /* NULL when implicit */
    int style;               /* yaml_scalar_style_t, or yaml_{sequence,mapping}_style_t */
    char *text;              /* scalar bytes, NUL-terminated (may also hold NULs: see len) */
    size_t len;              /* scalar length */
    struct cfg_node **items; /* sequence: values; mapping: key, value, key, value, ... */
    size_t count, cap;
};

struct cfg_entry {
    struct cfg_node *key; /* always a scalar at the top level */
    struct cfg_node *value;
};

struct cfg_unknown {
    struct cfg_entry *v;
    size_t count, cap;
};

/* ---- the known keys ---- */

enum key_type { KT_BOOL, KT_INT, KT_STR, KT_HOSTS, KT_TOKEN };

struct key_desc {
    const char *name;
    enum key_type type;
    size_t off;
    size_t size; /* KT_STR: buffer size */
    int min, max;
};

#define FIELD_SIZE(f) sizeof(((struct cfg *)0)->f)
/* clang-format off */
#define K_BOOL(f) {#f, KT_BOOL, offsetof(struct cfg, f), 0, 0, 0}
#define K_INT(f, lo, hi) {#f, KT_INT, offsetof(struct cfg, f), 0, lo, hi}
#define K_STR(f) {#f, KT_STR, offsetof(struct cfg, f), FIELD_SIZE(f), 0, 0}
/* clang-format on */

/* Save order: Kasm's keys as its agent documents them, then ours (docs/config.md). */
static const struct key_desc keys[] = {
    K_BOOL(ssl),
    K_INT(port, 0, 65535), /* 0: an ephemeral port (tests) */
    K_STR(server_private_key),
    K_STR(server_public_key),
    K_STR(jwt_public_key),
    K_STR(upload_dir),
    K_STR(download_dir),
    K_STR(log_file),
    K_BOOL(multi_user),
    K_BOOL(user_sso),
    {"api_host", KT_HOSTS, offsetof(struct cfg, api_host), 0, 0, 0},
    K_INT(api_port, 1, 65535),
    K_BOOL(registered),
    K_STR(script_path),
    K_STR(server_id),
    K_BOOL(debug),
    {"agent_jwt_token", KT_TOKEN, offsetof(struct cfg, agent_jwt_token), 0, 0, 0},
    K_STR(listen_address),
    K_INT(heartbeat_interval, 1, 86400),
    K_BOOL(api_verify_cert),
    K_STR(api_ca_file),
    K_INT(jwt_leeway, 0, 3600),
    K_STR(admin_socket),
    K_INT(max_request_header_bytes, 4096, 1048576),
    K_INT(max_json_body_bytes, 1024, 64 * 1048576),
    K_INT(request_timeout_ms, 1000, 3600000),
    K_INT(max_concurrent_uploads, 1, 256),
    K_INT(num_threads, 2, 256),
    K_INT(screenshot_cache_seconds, 0, 3600),
    K_STR(session_helper),
    K_STR(sessions_file),
    K_INT(script_timeout, 1, 86400),
    K_BOOL(logoff_on_session_end),
    K_STR(log_forward_level),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* ---- small helpers ---- */

static void wipe_free(char *s, size_t n)
{
    if (s) {
        OPENSSL_cleanse(s, n);
        free(s);
    }
}

static void token_free(char *t)
{
    if (t)
        wipe_free(t, strlen(t));
}

static void node_free(struct cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->count; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->tag);
    free(n->text);
    free(n);
}

static void unknown_free(struct cfg_unknown *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->count; i++) {
        node_free(u->v[i].key);
        node_free(u->v[i].value);
    }
    free(u->v);
    free(u);
}

/* strnlen is POSIX, not C11. */
static size_t str_len_max(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

static int lower_ascii(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch;
}

/* s (len bytes) equals word, ignoring ASCII case. */
static int word_eq(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower_ascii((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

/* A value quoted for an error message: cut at a character boundary, control bytes escaped. */
static void show_value(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0, i = 0, lim = len;
    int cut = 0;

    if (lim > CFG_SHOW_MAX) {
        lim = CFG_SHOW_MAX;
        while (lim > 0 && ((unsigned char)s[lim] & 0xC0) == 0x80)
            lim--;
        cut = 1;
    }
    for (i = 0; i < lim && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            snprintf(out + o, cap - o, "\\x%02x", ch);
            o += 4;
        } else {
            out[o++] = (char)ch;
        }
    }
    if (cut && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- parsing ---- */

struct keyslot {
    const char *text;
    size_t len;
    size_t line;
};

struct parse {
    yaml_parser_t parser;
    const char *name;
    struct err *e;
    struct cfg *c; /* the candidate, copied over the caller's on success */
    char *token;   /* new agent_jwt_token when token_set */
    int token_set;
    struct cfg_unknown *unk;  /* unknown keys of this buffer */
    size_t known_line[NKEYS]; /* 1-based line of each known key seen, 0 = not seen */
    struct keyslot *slots;    /* hash set of unknown keys, for duplicates */
    size_t nslots, used;
};

/* "<name>:<line>:<col>: <message>" at mark m. */
static int perr(struct parse *p, int code, yaml_mark_t m, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 4, 5)))
#endif
    ;

static int perr(struct parse *p, int code, yaml_mark_t m, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    return err_set(p->e, code, "%s:%zu:%zu: %s", p->name, m.line + 1, m.column + 1, msg);
}

static int nomem(struct parse *p)
{
    return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->name);
}

static int syntax_error(struct parse *p)
{
    const yaml_parser_t *y = &p->parser;
    const char *problem = y->problem ? y->problem : "syntax error";

    if (y->error == YAML_MEMORY_ERROR)
        return nomem(p);
    if (y->error == YAML_READER_ERROR) {
        if (y->problem_value != -1)
            return err_set(p->e, ERR_PARSE, "%s: invalid YAML: %s (#%X) at byte %zu", p->name,
                           problem, (unsigned)y->problem_value, y->problem_offset);
        return err_set(p->e, ERR_PARSE, "%s: invalid YAML: %s at byte %zu", p->name, problem,
                       y->problem_offset);
    }
    if (y->context)
        return perr(p, ERR_PARSE, y->problem_mark, "invalid YAML: %s (%s at line %zu, column %zu)",
                    problem, y->context, y->context_mark.line + 1, y->context_mark.column + 1);
    return perr(p, ERR_PARSE, y->problem_mark, "invalid YAML: %s", problem);
}

/* Wipes scalar text (it may be the token) before libyaml frees it. */
static void ev_free(yaml_event_t *ev)
{
    if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.value)
        OPENSSL_cleanse(ev->data.scalar.value, ev->data.scalar.length);
    yaml_event_delete(ev);
}

/* The next event; aliases and over-long scalars are refused here for every caller. */
static int next_event(struct parse *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->parser, ev)) {
        memset(ev, 0, sizeof(*ev));
        return syntax_error(p);
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        int rc = perr(p, ERR_PARSE, ev->start_mark,
                      "aliases (*name) are not supported in the config file");
        ev_free(ev);
        return rc;
    }
    if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length > CFG_MAX_SCALAR) {
        int rc = perr(p, ERR_TOO_LARGE, ev->start_mark,
                      "a value is %zu bytes long; the limit is %d bytes", ev->data.scalar.length,
                      CFG_MAX_SCALAR);
        ev_free(ev);
        return rc;
    }
    return 0;
}

static const char *kind_name(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SEQUENCE_START_EVENT:
        return "a sequence";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    default:
        return "something else";
    }
}

/* The plain spellings of null in YAML 1.1 (and the empty value). */
static int null_text(const char *s, size_t n)
{
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int is_null(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;

    if (ev->data.scalar.tag || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return null_text(s, n);
}

static int node_is_null(const struct cfg_node *n)
{
    return n->kind == NODE_SCALAR && !n->tag &&
           (n->style == YAML_PLAIN_SCALAR_STYLE || n->style == YAML_ANY_SCALAR_STYLE) &&
           null_text(n->text, n->len);
}

static int node_push(struct cfg_node *n, struct cfg_node *child)
{
    if (n->count == n->cap) {
        size_t ncap = n->cap ? n->cap * 2 : 4;
        struct cfg_node **v = realloc(n->items, ncap * sizeof(*v));
        if (!v)
            return -1;
        n->items = v;
        n->cap = ncap;
    }
    n->items[n->count++] = child;
    return 0;
}

static char *dup_tag(const yaml_char_t *tag, int *fail)
{
    char *t;
    if (!tag)
        return NULL;
    t = malloc(strlen((const char *)tag) + 1);
    if (!t) {
        *fail = 1;
        return NULL;
    }
    memcpy(t, tag, strlen((const char *)tag) + 1);
    return t;
}

static int bad_tag(struct parse *p, yaml_mark_t m, const char *tag)
{
    char shown[CFG_SHOW_MAX * 4 + 8];
    show_value(shown, sizeof(shown), tag, strlen(tag));
    return perr(p, ERR_PARSE, m, "the tag '%s' is not supported in the config file", shown);
}

/*
 * libyaml's emitter writes a tag under the "!!" or "!" handle when its prefix matches, and its
 * scanner then refuses ',', '[' or ']' after the handle: such tags could not be
 * read back after a save, so they are refused at load.
 */
static int tag_ok(const char *tag)
{
    static const char yaml_prefix[] = "tag:yaml.org,2002:";
    const char *suffix = NULL;

    if (!tag)
        return 1;
    if (!strncmp(tag, yaml_prefix, sizeof(yaml_prefix) - 1))
        suffix = tag + sizeof(yaml_prefix) - 1;
    else if (tag[0] == '!')
        suffix = tag + 1;
    if (!suffix)
        return 1;                               /* written verbatim as !<...> */
    return !*suffix || !strpbrk(suffix, ",[]"); /* "!" alone is written verbatim too */
}

/* Builds a node from ev (consumed) and, for collections, the events up to its end. */
static int build_node(struct parse *p, yaml_event_t *ev, int depth, struct cfg_node **out)
{
    struct cfg_node *n = calloc(1, sizeof(*n));
    int fail = 0, rc = 0;

    *out = NULL;
    if (!n) {
        ev_free(ev);
        return nomem(p);
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->kind = NODE_SCALAR;
        n->style = ev->data.scalar.style;
        n->tag = dup_tag(ev->data.scalar.tag, &fail);
        n->len = ev->data.scalar.length;
        if (!fail && !tag_ok(n->tag)) {
            rc = bad_tag(p, ev->start_mark, n->tag);
            break;
        }
        n->text = malloc(n->len + 1);
        if (!n->text || fail) {
            rc = nomem(p);
            break;
        }
        memcpy(n->text, ev->data.scalar.value, n->len);
        n->text[n->len] = '\0';
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

        if (depth > CFG_MAX_DEPTH) {
            rc = perr(p, ERR_TOO_LARGE, ev->start_mark, "values nest deeper than %d levels",
                      CFG_MAX_DEPTH);
            break;
        }
        n->kind = is_map ? NODE_MAP : NODE_SEQ;
        n->style = is_map ? (int)ev->data.mapping_start.style : (int)ev->data.sequence_start.style;
        n->tag = dup_tag(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag, &fail);
        if (fail) {
            rc = nomem(p);
            break;
        }
        if (!tag_ok(n->tag)) {
            rc = bad_tag(p, ev->start_mark, n->tag);
            break;
        }
        for (;;) {
            yaml_event_t child_ev;
            struct cfg_node *child;

            rc = next_event(p, &child_ev);
            if (rc < 0)
                break;
            if (child_ev.type == end) {
                ev_free(&child_ev);
                break;
            }
            rc = build_node(p, &child_ev, depth + 1, &child);
            if (rc < 0)
                break;
            if (node_push(n, child) < 0) {
                node_free(child);
                rc = nomem(p);
                break;
            }
        }
        break;
    }
    default:
        rc = perr(p, ERR_PARSE, ev->start_mark, "unexpected YAML event");
        break;
    }
    ev_free(ev);
    if (rc < 0) {
        node_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Adds an unknown key; returns the earlier line when it is already there, else 0. */
static int keyset_add(struct parse *p, const char *s, size_t n, size_t line, size_t *dup_line)
{
    size_t i;

    *dup_line = 0;
    if ((p->used + 1) * 2 > p->nslots) {
        size_t ncap = p->nslots ? p->nslots * 2 : 64;
        struct keyslot *ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return -1;
        for (size_t k = 0; k < p->nslots; k++) {
            if (!p->slots[k].text)
                continue;
            i = hash_bytes(p->slots[k].text, p->slots[k].len) & (ncap - 1);
            while (ns[i].text)
                i = (i + 1) & (ncap - 1);
            ns[i] = p->slots[k];
        }
        free(p->slots);
        p->slots = ns;
        p->nslots = ncap;
    }
    i = hash_bytes(s, n) & (p->nslots - 1);
    while (p->slots[i].text) {
        if (p->slots[i].len == n && !memcmp(p->slots[i].text, s, n)) {
            *dup_line = p->slots[i].line;
            return 0;
        }
        i = (i + 1) & (p->nslots - 1);
    }
    p->slots[i].text = s;
    p->slots[i].len = n;
    p->slots[i].line = line;
    p->used++;
    return 0;
}

static int parse_int_text(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    long long v = 0;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n || n - i > 12)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

static int parse_bool_text(const char *s, size_t n, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (word_eq(s, n, yes[i])) {
            *out = 1;
            return 0;
        }
        if (word_eq(s, n, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int host_char_ok(unsigned char ch)
{
    return ch > 0x20 && ch != 0x7f && ch != ',';
}

static int add_host(struct parse *p, const char *s, size_t n, yaml_mark_t m)
{
    struct cfg *c = p->c;
    char shown[CFG_SHOW_MAX * 4 + 8];

    for (size_t i = 0; i < n; i++) {
        if (!host_char_ok((unsigned char)s[i])) {
            show_value(shown, sizeof(shown), s, n);
            return perr(p, ERR_PARSE, m, "api_host: expected a host name, got '%s'", shown);
        }
    }
    if (c->api_host_count >= CFG_MAX_API_HOSTS)
        return perr(p, ERR_PARSE, m, "api_host: more than %d hosts", CFG_MAX_API_HOSTS);
    if (n >= sizeof(c->api_host[0]))
        return perr(p, ERR_PARSE, m, "api_host: a host name is %zu bytes long; at most %zu", n,
                    sizeof(c->api_host[0]) - 1);
    memcpy(c->api_host[c->api_host_count], s, n);
    c->api_host[c->api_host_count][n] = '\0';
    c->api_host_count++;
    return 0;
}

/* "a, b,c" -> hosts a, b, c (empty items are skipped). */
static int hosts_from_text(struct parse *p, const char *s, size_t n, yaml_mark_t m)
{
    size_t i = 0;

    while (i < n) {
        size_t start, end;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        start = i;
        while (i < n && s[i] != ',')
            i++;
        end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (end > start) {
            int rc = add_host(p, s + start, end - start, m);
            if (rc < 0)
                return rc;
        }
        if (i < n)
            i++; /* the comma */
    }
    return 0;
}

static int hosts_from_seq(struct parse *p)
{
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(p, &ev);
        if (rc < 0)
            return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            ev_free(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT || is_null(&ev)) {
            rc = perr(p, ERR_PARSE, ev.start_mark, "api_host: expected a host name, got %s",
                      ev.type == YAML_SCALAR_EVENT ? "an empty value" : kind_name(&ev));
        } else {
            rc = add_host(p, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                          ev.start_mark);
        }
        ev_free(&ev);
        if (rc < 0)
            return rc;
    }
}

/* What a key takes, for "expected ..." messages. */
static const char *describe_expect(const struct key_desc *d, char *buf, size_t cap)
{
    switch (d->type) {
    case KT_BOOL:
        return "true or false";
    case KT_INT:
        snprintf(buf, cap, "an integer from %d to %d", d->min, d->max);
        return buf;
    case KT_HOSTS:
        return "a host name, a comma-separated list or a sequence of host names";
    case KT_STR:
    case KT_TOKEN:
        break;
    }
    return "a string";
}

/* Applies the value event ev (consumed) of known key d to the candidate. */
static int apply_known(struct parse *p, const struct key_desc *d, yaml_event_t *ev)
{
    char *base = (char *)p->c;
    char shown[CFG_SHOW_MAX * 4 + 8];
    const char *s = NULL;
    size_t n = 0;
    int rc = 0;

    if (ev->type == YAML_SCALAR_EVENT) {
        s = (const char *)ev->data.scalar.value;
        n = ev->data.scalar.length;
    } else if (!(d->type == KT_HOSTS && ev->type == YAML_SEQUENCE_START_EVENT)) {
        rc = perr(p, ERR_PARSE, ev->start_mark, "%s: expected %s, got %s", d->name,
                  describe_expect(d, shown, sizeof(shown)), kind_name(ev));
        goto out;
    }

    switch (d->type) {
    case KT_BOOL: {
        int v;
        if (is_null(ev))
            break; /* keeps the default */
        if (parse_bool_text(s, n, &v) < 0) {
            show_value(shown, sizeof(shown), s, n);
            rc = perr(p, ERR_PARSE, ev->start_mark, "%s: expected true or false, got '%s'", d->name,
                      shown);
            break;
        }
        *(int *)(base + d->off) = v;
        break;
    }
    case KT_INT: {
        long long v;
        if (is_null(ev))
            break;
        if (parse_int_text(s, n, &v) < 0 || v < d->min || v > d->max) {
            show_value(shown, sizeof(shown), s, n);
            rc = perr(p, ERR_PARSE, ev->start_mark,
                      "%s: expected an integer from %d to %d, got '%s'", d->name, d->min, d->max,
                      shown);
            break;
        }
        *(int *)(base + d->off) = (int)v;
        break;
    }
    case KT_STR:
        if (is_null(ev))
            n = 0;
        if (n >= d->size) {
            rc = perr(p, ERR_TOO_LARGE, ev->start_mark,
                      "%s: the value is %zu bytes long; at most %zu", d->name, n, d->size - 1);
            break;
        }
        if (memchr(s, '\0', n)) {
            rc = perr(p, ERR_PARSE, ev->start_mark, "%s: the value contains a NUL character",
                      d->name);
            break;
        }
        memset(base + d->off, 0, d->size);
        memcpy(base + d->off, s, n);
        break;
    case KT_TOKEN:
        if (n && memchr(s, '\0', n)) {
            rc = perr(p, ERR_PARSE, ev->start_mark,
                      "%s: the value <redacted> contains a NUL character", d->name);
            break;
        }
        token_free(p->token);
        p->token = NULL;
        p->token_set = 1;
        if (is_null(ev) || n == 0)
            break;
        p->token = malloc(n + 1);
        if (!p->token) {
            rc = nomem(p);
            break;
        }
        memcpy(p->token, s, n);
        p->token[n] = '\0';
        break;
    case KT_HOSTS:
        memset(p->c->api_host, 0, sizeof(p->c->api_host));
        p->c->api_host_count = 0;
        if (ev->type == YAML_SEQUENCE_START_EVENT) {
            p->c->api_host_seq = 1;
            rc = hosts_from_seq(p);
        } else {
            p->c->api_host_seq = 0;
            if (!is_null(ev))
                rc = hosts_from_text(p, s, n, ev->start_mark);
        }
        break;
    }
out:
    ev_free(ev);
    return rc;
}

static int unknown_push(struct parse *p, struct cfg_node *key, struct cfg_node *value)
{
    struct cfg_unknown *u = p->unk;
    if (u->count == u->cap) {
        size_t ncap = u->cap ? u->cap * 2 : 8;
        struct cfg_entry *v = realloc(u->v, ncap * sizeof(*v));
        if (!v)
            return -1;
        u->v = v;
        u->cap = ncap;
    }
    u->v[u->count].key = key;
    u->v[u->count].value = value;
    u->count++;
    return 0;
}

static const struct key_desc *find_key(const char *s, size_t n)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strlen(keys[i].name) == n && !memcmp(keys[i].name, s, n))
            return &keys[i];
    return NULL;
}

/* The pairs of the top-level mapping, after its start event. */
static int parse_top_mapping(struct parse *p)
{
    char shown[CFG_SHOW_MAX * 4 + 8];

    for (;;) {
        yaml_event_t kev, vev;
        const struct key_desc *d;
        struct cfg_node *key = NULL, *value = NULL;
        yaml_mark_t km;
        size_t dup_line;
        int rc = next_event(p, &kev);

        if (rc < 0)
            return rc;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            ev_free(&kev);
            return 0;
        }
        km = kev.start_mark;
        if (kev.type != YAML_SCALAR_EVENT) {
            rc =
                perr(p, ERR_PARSE, km, "a top-level key must be a string, got %s", kind_name(&kev));
            ev_free(&kev);
            return rc;
        }
        d = find_key((const char *)kev.data.scalar.value, kev.data.scalar.length);
        if (d) {
            size_t *seen = &p->known_line[d - keys];
            ev_free(&kev);
            if (*seen)
                return perr(p, ERR_PARSE, km, "duplicate key '%s' on lines %zu and %zu", d->name,
                            *seen, km.line + 1);
            *seen = km.line + 1;
            rc = next_event(p, &vev);
            if (rc < 0)
                return rc;
            rc = apply_known(p, d, &vev);
            if (rc < 0)
                return rc;
            continue;
        }
        rc = build_node(p, &kev, 1, &key);
        if (rc < 0)
            return rc;
        /* "", "~" and "null" are one key (null): the save writes "" as "~". */
        if (keyset_add(p, node_is_null(key) ? "~" : key->text, node_is_null(key) ? 1 : key->len,
                       km.line + 1, &dup_line) < 0) {
            node_free(key);
            return nomem(p);
        }
        if (dup_line) {
            show_value(shown, sizeof(shown), key->text, key->len);
            node_free(key);
            return perr(p, ERR_PARSE, km, "duplicate key '%s' on lines %zu and %zu", shown,
                        dup_line, km.line + 1);
        }
        rc = next_event(p, &vev);
        if (rc == 0)
            rc = build_node(p, &vev, 1, &value);
        if (rc == 0 && unknown_push(p, key, value) < 0)
            rc = nomem(p);
        if (rc < 0) {
            /* The key text stays in the hash set, which is freed with the parse. */
            node_free(value);
            node_free(key);
            return rc;
        }
    }
}

static int parse_stream(struct parse *p)
{
    yaml_event_t ev;
    int rc;

    rc = next_event(p, &ev);
    if (rc < 0)
        return rc;
    ev_free(&ev); /* STREAM-START */
    rc = next_event(p, &ev);
    if (rc < 0)
        return rc;
    if (ev.type == YAML_STREAM_END_EVENT) {
        ev_free(&ev);
        return 0; /* empty file: all defaults */
    }
    ev_free(&ev); /* DOCUMENT-START */
    rc = next_event(p, &ev);
    if (rc < 0)
        return rc;
    if (ev.type == YAML_MAPPING_START_EVENT) {
        ev_free(&ev);
        rc = parse_top_mapping(p);
        if (rc < 0)
            return rc;
    } else if (ev.type == YAML_SCALAR_EVENT && is_null(&ev)) {
        ev_free(&ev); /* "---" or "~" alone: all defaults */
    } else {
        rc = perr(p, ERR_PARSE, ev.start_mark,
                  "the top level must be a mapping of keys to values, got %s",
                  ev.type == YAML_SCALAR_EVENT ? "a single value" : kind_name(&ev));
        ev_free(&ev);
        return rc;
    }
    rc = next_event(p, &ev);
    if (rc < 0)
        return rc;
    ev_free(&ev); /* DOCUMENT-END */
    rc = next_event(p, &ev);
    if (rc < 0)
        return rc;
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc = perr(p, ERR_PARSE, ev.start_mark,
                  "the file holds more than one YAML document; only one is allowed");
        ev_free(&ev);
        return rc;
    }
    ev_free(&ev);
    return 0;
}

static void parser_wipe(yaml_parser_t *y)
{
    if (y->buffer.start)
        OPENSSL_cleanse(y->buffer.start, (size_t)(y->buffer.end - y->buffer.start));
    if (y->raw_buffer.start)
        OPENSSL_cleanse(y->raw_buffer.start, (size_t)(y->raw_buffer.end - y->raw_buffer.start));
}

int cfg_load_buffer(struct cfg *c, const char *name, const char *yaml, size_t len, struct err *e)
{
    struct parse p;
    struct cfg *cand = NULL;
    int rc, parser_ok = 0;

    memset(&p, 0, sizeof(p));
    if (!name)
        name = "config";
    if (!c || (!yaml && len))
        return err_set(e, ERR_INVALID, "%s: no config to load", name);
    if (len > CFG_MAX_FILE_SIZE)
        return err_set(e, ERR_TOO_LARGE, "%s is too large: %zu bytes, the limit is %d", name, len,
                       CFG_MAX_FILE_SIZE);
    p.name = name;
    p.e = e;
    cand = malloc(sizeof(*cand));
    p.unk = calloc(1, sizeof(*p.unk));
    if (!cand || !p.unk) {
        rc = nomem(&p);
        goto out;
    }
    memcpy(cand, c, sizeof(*cand));
    p.c = cand;
    if (!yaml_parser_initialize(&p.parser)) {
        rc = nomem(&p);
        goto out;
    }
    parser_ok = 1;
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)(yaml ? yaml : ""), len);
    rc = parse_stream(&p);
    if (rc < 0)
        goto out;

    /* Commit: the candidate's fixed fields, the new unknown keys, the token if it was set. */
    if (p.token_set) {
        token_free(c->agent_jwt_token);
        cand->agent_jwt_token = p.token;
        p.token = NULL;
    }
    unknown_free(c->unknown);
    cand->unknown = p.unk;
    p.unk = NULL;
    memcpy(c, cand, sizeof(*c));
out:
    if (parser_ok) {
        parser_wipe(&p.parser);
        yaml_parser_delete(&p.parser);
    }
    token_free(p.token);
    unknown_free(p.unk);
    free(p.slots);
    free(cand);
    return rc;
}

/* ---- defaults, load, token, accessors ---- */

void cfg_defaults(struct cfg *c, const char *base_dir)
{
    char certs[CFG_PATH_MAX];

    memset(c, 0, sizeof(*c));
    if (!base_dir || !*base_dir)
        base_dir = ".";
    c->ssl = 1;
    c->port = 4902;
    c->api_port = 443;
    c->heartbeat_interval = 30;
    c->jwt_leeway = 60;
    c->max_request_header_bytes = 16384;
    c->max_json_body_bytes = 1048576;
    c->request_timeout_ms = 30000;
    c->max_concurrent_uploads = 8;
    c->num_threads = 16;
    c->screenshot_cache_seconds = 10;
    c->script_timeout = 300;
    snprintf(c->log_forward_level, sizeof(c->log_forward_level), "%s", "info");
    /* A path that does not fit stays "" (and fails loudly when used). */
    if (fs_join(base_dir, "certs", certs, sizeof(certs), NULL) == 0) {
        fs_join(certs, "key.pem", c->server_private_key, sizeof(c->server_private_key), NULL);
        fs_join(certs, "cert.pem", c->server_public_key, sizeof(c->server_public_key), NULL);
        fs_join(certs, "jwt.pem", c->jwt_public_key, sizeof(c->jwt_public_key), NULL);
    }
    fs_join(base_dir, "Upload", c->upload_dir, sizeof(c->upload_dir), NULL);
    fs_join(base_dir, "Download", c->download_dir, sizeof(c->download_dir), NULL);
    fs_join(base_dir, "scripts", c->script_path, sizeof(c->script_path), NULL);
#ifdef _WIN32
    snprintf(c->admin_socket, sizeof(c->admin_socket), "%s", "\\\\.\\pipe\\kasm-open-agent-admin");
#else
    snprintf(c->admin_socket, sizeof(c->admin_socket), "%s", "/run/kasm-open-agent/admin.sock");
#endif
}

int cfg_load(struct cfg *c, const char *path, struct err *e)
{
    char base[CFG_PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (!path || !*path) {
        cfg_defaults(c, NULL);
        return err_set(e, ERR_INVALID, "no config file given");
    }
    if (fs_dirname(path, base, sizeof(base), NULL) < 0)
        base[0] = '\0';
    cfg_defaults(c, base);
    if (strlen(path) >= sizeof(c->path))
        return err_set(e, ERR_TOO_LARGE, "the config path is longer than %zu bytes",
                       sizeof(c->path) - 1);
    memcpy(c->path, path, strlen(path) + 1);
    rc = fs_read_all(path, CFG_MAX_FILE_SIZE, &buf, &len, e);
    if (rc < 0) {
        err_prefix(e, "cannot load the config");
        return rc;
    }
    rc = cfg_load_buffer(c, path, buf, len, e);
    wipe_free(buf, len);
    return rc;
}

int cfg_set_agent_token(struct cfg *c, const char *token, struct err *e)
{
    char *t = NULL;

    if (token && *token) {
        size_t n = strlen(token);
        if (n > CFG_MAX_SCALAR)
            return err_set(e, ERR_TOO_LARGE, "agent_jwt_token: the token is %zu bytes; at most %d",
                           n, CFG_MAX_SCALAR);
        t = malloc(n + 1);
        if (!t)
            return err_set(e, ERR_NOMEM, "agent_jwt_token: out of memory");
        memcpy(t, token, n + 1);
    }
    token_free(c->agent_jwt_token);
    c->agent_jwt_token = t;
    return 0;
}

size_t cfg_unknown_count(const struct cfg *c)
{
    return c && c->unknown ? c->unknown->count : 0;
}

const char *cfg_unknown_key(const struct cfg *c, size_t i)
{
    if (!c || !c->unknown || i >= c->unknown->count)
        return NULL;
    return c->unknown->v[i].key->text;
}

/* ---- YAML 1.1 implicit types of plain scalars (the resolvers PyYAML uses) ---- */

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Skips chars of set at s[*i]; returns how many. */
static size_t skip_set(const char *s, size_t n, size_t *i, const char *set)
{
    size_t start = *i;
    while (*i < n && s[*i] && strchr(set, s[*i]))
        (*i)++;
    return *i - start;
}

/* (:[0-5]?[0-9])+ -- the sexagesimal tail of ints and floats. */
static int skip_sexagesimal(const char *s, size_t n, size_t *i)
{
    int groups = 0;
    while (*i < n && s[*i] == ':') {
        size_t d = *i + 1, k = d;
        skip_set(s, n, &k, "0123456789");
        if (k - d == 0 || k - d > 2 || (k - d == 2 && s[d] > '5'))
            return 0;
        *i = k;
        groups++;
    }
    return groups > 0;
}

static int yaml11_int(const char *s, size_t n)
{
    size_t i = (n && (s[0] == '+' || s[0] == '-')) ? 1 : 0, k;

    if (i + 1 < n && s[i] == '0' && s[i + 1] == 'b') {
        k = i + 2;
        return skip_set(s, n, &k, "01_") > 0 && k == n;
    }
    if (i + 1 < n && s[i] == '0' && s[i + 1] == 'x') {
        k = i + 2;
        return skip_set(s, n, &k, "0123456789abcdefABCDEF_") > 0 && k == n;
    }
    if (i < n && s[i] == '0') {
        k = i + 1;
        skip_set(s, n, &k, "01234567_");
        return k == n;
    }
    if (i < n && s[i] >= '1' && s[i] <= '9') {
        k = i + 1;
        skip_set(s, n, &k, "0123456789_");
        if (k == n)
            return 1;
        return skip_sexagesimal(s, n, &k) && k == n;
    }
    return 0;
}

static int yaml11_float(const char *s, size_t n)
{
    size_t i = (n && (s[0] == '+' || s[0] == '-')) ? 1 : 0, k;
    const char *rest = s + i;
    size_t rn = n - i;

    if ((rn == 4 &&
         (!memcmp(rest, ".inf", 4) || !memcmp(rest, ".Inf", 4) || !memcmp(rest, ".INF", 4))) ||
        (n == 4 && (!memcmp(s, ".nan", 4) || !memcmp(s, ".NaN", 4) || !memcmp(s, ".NAN", 4))))
        return 1;
    k = i;
    if (k < n && is_digit(s[k])) {
        skip_set(s, n, &k, "0123456789_");
        if (k < n && s[k] == ':' && (!skip_sexagesimal(s, n, &k) || k == n || s[k] != '.'))
            return 0;
    } else if (i != 0 || k + 1 >= n || s[k] != '.' || !is_digit(s[k + 1])) {
        return 0; /* ".5" only without a sign, and with a digit */
    }
    if (k >= n || s[k] != '.')
        return 0;
    k++;
    skip_set(s, n, &k, "0123456789_");
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++; /* YAML 1.1 wants the sign; accepting its absence errs on "typed" */
        if (!skip_set(s, n, &k, "0123456789"))
            return 0;
    }
    return k == n;
}

/* Fixed count of digits at s[*i]. */
static int digits(const char *s, size_t n, size_t *i, size_t min, size_t max)
{
    size_t start = *i;
    while (*i < n && *i - start < max && is_digit(s[*i]))
        (*i)++;
    return *i - start >= min;
}

/* Timestamps; a tab between date and time is not matched (libyaml must quote it anyway). */
static int yaml11_timestamp(const char *s, size_t n)
{
    size_t i = 0;

    if (!digits(s, n, &i, 4, 4) || i >= n || s[i++] != '-' || !digits(s, n, &i, 1, 2) || i >= n ||
        s[i++] != '-' || !digits(s, n, &i, 1, 2))
        return 0;
    if (i == n)
        return n == 10; /* the date alone needs two-digit month and day */
    if (s[i] == 'T' || s[i] == 't')
        i++;
    else if (!skip_set(s, n, &i, " "))
        return 0;
    if (!digits(s, n, &i, 1, 2) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, 2) || i >= n ||
        s[i++] != ':' || !digits(s, n, &i, 2, 2))
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        skip_set(s, n, &i, "0123456789");
    }
    skip_set(s, n, &i, " ");
    if (i < n && s[i] == 'Z')
        i++;
    else if (i < n && (s[i] == '+' || s[i] == '-')) {
        i++;
        if (!digits(s, n, &i, 1, 2))
            return 0;
        if (i < n && s[i] == ':') {
            i++;
            if (!digits(s, n, &i, 2, 2))
                return 0;
        }
    }
    return i == n;
}

/*
 * A plain scalar that no YAML 1.1 resolver turns into a null, bool, int, float, timestamp,
 * merge or value key means the same as the quoted string. libyaml's emitter quotes plain
 * scalars it cannot write plain (":", "8:", "9,[x"); those are strings by this test, so a
 * re-loaded quoted copy is equal in meaning.
 */
static int plain_means_string(const char *s, size_t n)
{
    static const char *const words[] = {"y", "n", "yes", "no", "true", "false", "on", "off"};

    if (null_text(s, n) || (n == 1 && s[0] == '=') || (n == 2 && !memcmp(s, "<<", 2)))
        return 0;
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
        if (word_eq(s, n, words[w]))
            return 0;
    return !yaml11_int(s, n) && !yaml11_float(s, n) && !yaml11_timestamp(s, n);
}

/* Same meaning: text, tag, plain vs quoted (untagged), structure; layout and style aside. */
static int node_equal(const struct cfg_node *a, const struct cfg_node *b)
{
    if (a->kind != b->kind || !a->tag != !b->tag || (a->tag && strcmp(a->tag, b->tag)))
        return 0;
    if (a->kind == NODE_SCALAR) {
        int plain_a = a->style == YAML_PLAIN_SCALAR_STYLE || a->style == YAML_ANY_SCALAR_STYLE;
        int plain_b = b->style == YAML_PLAIN_SCALAR_STYLE || b->style == YAML_ANY_SCALAR_STYLE;
        if (!a->tag && plain_a != plain_b &&
            !plain_means_string(plain_a ? a->text : b->text, plain_a ? a->len : b->len))
            return 0;
        if (!a->tag && plain_a && null_text(a->text, a->len) && null_text(b->text, b->len))
            return 1;
        return a->len == b->len && !memcmp(a->text, b->text, a->len);
    }
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!node_equal(a->items[i], b->items[i]))
            return 0;
    return 1;
}

int cfg_equal(const struct cfg *a, const struct cfg *b)
{
    const char *pa = (const char *)a, *pb = (const char *)b;
    size_t nu = cfg_unknown_count(a);

    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_desc *d = &keys[i];
        switch (d->type) {
        case KT_BOOL:
        case KT_INT:
            if (*(const int *)(pa + d->off) != *(const int *)(pb + d->off))
                return 0;
            break;
        case KT_STR:
            if (strncmp(pa + d->off, pb + d->off, d->size))
                return 0;
            break;
        case KT_TOKEN:
            if (!a->agent_jwt_token != !b->agent_jwt_token ||
                (a->agent_jwt_token && strcmp(a->agent_jwt_token, b->agent_jwt_token)))
                return 0;
            break;
        case KT_HOSTS:
            if (a->api_host_count != b->api_host_count)
                return 0;
            if (a->api_host_count && !a->api_host_seq != !b->api_host_seq)
                return 0;
            for (size_t k = 0; k < a->api_host_count && k < CFG_MAX_API_HOSTS; k++)
                if (strncmp(a->api_host[k], b->api_host[k], sizeof(a->api_host[k])))
                    return 0;
            break;
        }
    }
    if (nu != cfg_unknown_count(b))
        return 0;
    for (size_t i = 0; i < nu; i++)
        if (!node_equal(a->unknown->v[i].key, b->unknown->v[i].key) ||
            !node_equal(a->unknown->v[i].value, b->unknown->v[i].value))
            return 0;
    return 1;
}

void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    token_free(c->agent_jwt_token);
    c->agent_jwt_token = NULL;
    unknown_free(c->unknown);
    c->unknown = NULL;
}

/* ---- rendering ---- */

struct outbuf {
    char *p;
    size_t len, cap;
};

/* Grows without realloc so no stale copy of the token stays on the heap. */
static int out_reserve(struct outbuf *o, size_t more)
{
    size_t ncap;
    char *np;

    if (o->len + more + 1 <= o->cap)
        return 0;
    if (o->len + more + 1 > CFG_RENDER_MAX)
        return -1;
    ncap = o->cap ? o->cap : 4096;
    while (ncap < o->len + more + 1)
        ncap *= 2;
    np = malloc(ncap);
    if (!np)
        return -1;
    if (o->p) {
        memcpy(np, o->p, o->len);
        wipe_free(o->p, o->cap);
    }
    o->p = np;
    o->cap = ncap;
    return 0;
}

static int out_write(void *data, unsigned char *buf, size_t size)
{
    struct outbuf *o = data;
    if (out_reserve(o, size) < 0)
        return 0;
    memcpy(o->p + o->len, buf, size);
    o->len += size;
    return 1;
}

struct render {
    yaml_emitter_t em;
    struct err *e;
    const char *what; /* the key being written, for messages */
};

static int emit(struct render *r, yaml_event_t *ev)
{
    if (yaml_emitter_emit(&r->em, ev))
        return 0;
    if (r->em.error == YAML_MEMORY_ERROR)
        return err_set(r->e, ERR_NOMEM, "cannot render the config: out of memory");
    return err_set(r->e, ERR_INVALID, "cannot render the config%s%s: %s", r->what ? " at key " : "",
                   r->what ? r->what : "", r->em.problem ? r->em.problem : "emitter error");
}

static int emit_scalar(struct render *r, const char *text, size_t len, const char *tag, int style,
                       int plain_implicit, int quoted_implicit)
{
    yaml_event_t ev;

    if (len > INT_MAX)
        return err_set(r->e, ERR_TOO_LARGE, "cannot render %s: value too long",
                       r->what ? r->what : "the config");
    if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)tag, (yaml_char_t *)text, (int)len,
                                      plain_implicit, quoted_implicit, (yaml_scalar_style_t)style))
        return err_set(r->e, ERR_INVALID, "cannot render %s: the value is not valid UTF-8",
                       r->what ? r->what : "the config");
    return emit(r, &ev);
}

static int emit_plain(struct render *r, const char *text)
{
    return emit_scalar(r, text, strlen(text), NULL, YAML_PLAIN_SCALAR_STYLE, 1, 1);
}

/* A string value: always quoted, so "123", "true" or "" stay strings for every reader. */
static int emit_string(struct render *r, const char *text, size_t len)
{
    return emit_scalar(r, text, len, NULL, YAML_DOUBLE_QUOTED_SCALAR_STYLE, 0, 1);
}

/*
 * libyaml's emitter quotes any plain scalar holding ':' inside a flow collection, which would
 * turn a typed value such as [1:30] (a YAML 1.1 sexagesimal int) or a timestamp into a string.
 * Such values are written in block style instead, where ':' stays plain.
 */
static int flow_would_retype(const struct cfg_node *n, int in_flow)
{
    if (n->kind == NODE_SCALAR)
        return in_flow && !n->tag &&
               (n->style == YAML_PLAIN_SCALAR_STYLE || n->style == YAML_ANY_SCALAR_STYLE) &&
               memchr(n->text, ':', n->len) && !plain_means_string(n->text, n->len);
    in_flow =
        in_flow || n->style == YAML_FLOW_SEQUENCE_STYLE || n->style == YAML_FLOW_MAPPING_STYLE;
    for (size_t i = 0; i < n->count; i++)
        if (flow_would_retype(n->items[i], in_flow))
            return 1;
    return 0;
}

/* Writes n; block forces block style on every collection (see flow_would_retype). */
static int emit_node(struct render *r, const struct cfg_node *n, int block)
{
    yaml_event_t ev;
    int rc, ok;

    if (n->kind == NODE_SCALAR) {
        if (n->tag)
            return emit_scalar(r, n->text, n->len, n->tag, n->style, 0, 0);
        if (n->style == YAML_PLAIN_SCALAR_STYLE || n->style == YAML_ANY_SCALAR_STYLE) {
            /* An empty plain scalar is null; "~" says so in every context. */
            if (n->len == 0)
                return emit_scalar(r, "~", 1, NULL, YAML_PLAIN_SCALAR_STYLE, 1, 1);
            return emit_scalar(r, n->text, n->len, NULL, YAML_PLAIN_SCALAR_STYLE, 1, 1);
        }
        return emit_scalar(r, n->text, n->len, NULL, n->style, 0, 1);
    }
    if (n->kind == NODE_SEQ)
        ok = yaml_sequence_start_event_initialize(&ev, NULL, (yaml_char_t *)n->tag, !n->tag,
                                                  block ? YAML_BLOCK_SEQUENCE_STYLE
                                                        : (yaml_sequence_style_t)n->style);
    else
        ok = yaml_mapping_start_event_initialize(&ev, NULL, (yaml_char_t *)n->tag, !n->tag,
                                                 block ? YAML_BLOCK_MAPPING_STYLE
                                                       : (yaml_mapping_style_t)n->style);
    if (!ok)
        return err_set(r->e, ERR_NOMEM, "cannot render the config: out of memory");
    rc = emit(r, &ev);
    for (size_t i = 0; rc == 0 && i < n->count; i++)
        rc = emit_node(r, n->items[i], block);
    if (rc < 0)
        return rc;
    if (n->kind == NODE_SEQ)
        yaml_sequence_end_event_initialize(&ev);
    else
        yaml_mapping_end_event_initialize(&ev);
    return emit(r, &ev);
}

static int emit_known(struct render *r, const struct cfg *c, const struct key_desc *d)
{
    const char *base = (const char *)c;
    char num[32];
    int rc;

    r->what = d->name;
    rc = emit_plain(r, d->name);
    if (rc < 0)
        return rc;
    switch (d->type) {
    case KT_BOOL:
        return emit_plain(r, *(const int *)(base + d->off) ? "true" : "false");
    case KT_INT:
        snprintf(num, sizeof(num), "%d", *(const int *)(base + d->off));
        return emit_plain(r, num);
    case KT_STR: {
        const char *s = base + d->off;
        size_t n = 0;
        while (n < d->size && s[n])
            n++;
        return emit_string(r, s, n);
    }
    case KT_TOKEN:
        if (!c->agent_jwt_token)
            return emit_string(r, "", 0);
        return emit_string(r, c->agent_jwt_token, strlen(c->agent_jwt_token));
    case KT_HOSTS: {
        size_t count =
            c->api_host_count > CFG_MAX_API_HOSTS ? CFG_MAX_API_HOSTS : c->api_host_count;
        char joined[CFG_MAX_API_HOSTS * 257];
        size_t len = 0;

        if (c->api_host_seq && count > 0) {
            yaml_event_t ev;
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
            rc = emit(r, &ev);
            for (size_t i = 0; rc == 0 && i < count; i++)
                rc = emit_string(r, c->api_host[i], str_len_max(c->api_host[i], 255));
            if (rc < 0)
                return rc;
            yaml_sequence_end_event_initialize(&ev);
            return emit(r, &ev);
        }
        for (size_t i = 0; i < count; i++) {
            size_t n = str_len_max(c->api_host[i], 255);
            if (i)
                joined[len++] = ',';
            memcpy(joined + len, c->api_host[i], n);
            len += n;
        }
        return emit_string(r, joined, len);
    }
    }
    return err_set(r->e, ERR_INTERNAL, "cannot render %s: unknown key type", d->name);
}

static const char render_header[] =
    "# Kasm agent configuration (kasm-open-agent). Keys: docs/config.md.\n"
    "# Written whole by the agent: comments are not kept; keys it does not know are kept.\n"
    "# Its later saves (token, check-in) change only its own keys and keep everything else.\n";

/* Renders c (only: that key alone, without the header; NULL: the whole file). */
static int render_doc(const struct cfg *c, const struct key_desc *only, char **out, size_t *len,
                      struct err *e)
{
    struct render r;
    struct outbuf o = {NULL, 0, 0};
    yaml_event_t ev;
    int rc = 0;

    *out = NULL;
    if (len)
        *len = 0;
    memset(&r, 0, sizeof(r));
    r.e = e;
    if (out_reserve(&o, sizeof(render_header)) < 0)
        return err_set(e, ERR_NOMEM, "cannot render the config: out of memory");
    if (!only) {
        memcpy(o.p, render_header, sizeof(render_header) - 1);
        o.len = sizeof(render_header) - 1;
    }
    if (!yaml_emitter_initialize(&r.em)) {
        wipe_free(o.p, o.cap);
        return err_set(e, ERR_NOMEM, "cannot render the config: out of memory");
    }
    yaml_emitter_set_output(&r.em, out_write, &o);
    yaml_emitter_set_unicode(&r.em, 1);
    yaml_emitter_set_width(&r.em, -1);
    yaml_emitter_set_indent(&r.em, 2);
    yaml_emitter_set_break(&r.em, YAML_LN_BREAK);

    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    rc = emit(&r, &ev);
    if (rc == 0) {
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
        rc = emit(&r, &ev);
    }
    if (rc == 0) {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        rc = emit(&r, &ev);
    }
    if (only && rc == 0)
        rc = emit_known(&r, c, only);
    for (size_t i = 0; !only && rc == 0 && i < NKEYS; i++)
        rc = emit_known(&r, c, &keys[i]);
    for (size_t i = 0; !only && rc == 0 && c->unknown && i < c->unknown->count; i++) {
        r.what = c->unknown->v[i].key->text;
        rc = emit_node(&r, c->unknown->v[i].key, 0);
        if (rc == 0)
            rc =
                emit_node(&r, c->unknown->v[i].value, flow_would_retype(c->unknown->v[i].value, 0));
    }
    r.what = NULL;
    if (rc == 0) {
        yaml_mapping_end_event_initialize(&ev);
        rc = emit(&r, &ev);
    }
    if (rc == 0) {
        yaml_document_end_event_initialize(&ev, 1);
        rc = emit(&r, &ev);
    }
    if (rc == 0) {
        yaml_stream_end_event_initialize(&ev);
        rc = emit(&r, &ev);
    }
    if (rc == 0 && !yaml_emitter_flush(&r.em))
        rc = err_set(e, ERR_NOMEM, "cannot render the config: out of memory");
    if (r.em.buffer.start)
        OPENSSL_cleanse(r.em.buffer.start, (size_t)(r.em.buffer.end - r.em.buffer.start));
    yaml_emitter_delete(&r.em);
    if (rc < 0 || out_reserve(&o, 0) < 0) {
        if (rc == 0)
            rc = err_set(e, ERR_NOMEM, "cannot render the config: out of memory");
        wipe_free(o.p, o.cap);
        return rc;
    }
    o.p[o.len] = '\0';
    *out = o.p;
    if (len)
        *len = o.len;
    return 0;
}

int cfg_render(const struct cfg *c, char **out, size_t *len, struct err *e)
{
    return render_doc(c, NULL, out, len, e);
}

int cfg_save(const struct cfg *c, const char *path, struct err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!path)
        path = c->path;
    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot save the config: no file name");
    rc = cfg_render(c, &text, &len, e);
    if (rc < 0) {
        err_prefix(e, "cannot save %s", path);
        return rc;
    }
    rc = fs_write_atomic(path, text, len, FS_WRITE_PRIVATE, e);
    wipe_free(text, len + 1);
    return rc;
}

/* ---- merge-on-save: the keys the agent owns, written into the administrator's file ---- */

static const struct {
    unsigned bit;
    const char *name;
} own_keys[] = {
    /* in the save order of keys[]: appended keys follow it */
    {CFG_OWN_SERVER_PRIVATE_KEY, "server_private_key"},
    {CFG_OWN_SERVER_PUBLIC_KEY, "server_public_key"},
    {CFG_OWN_JWT_PUBLIC_KEY, "jwt_public_key"},
    {CFG_OWN_MULTI_USER, "multi_user"},
    {CFG_OWN_USER_SSO, "user_sso"},
    {CFG_OWN_API_HOST, "api_host"},
    {CFG_OWN_API_PORT, "api_port"},
    {CFG_OWN_REGISTERED, "registered"},
    {CFG_OWN_SERVER_ID, "server_id"},
    {CFG_OWN_TOKEN, "agent_jwt_token"},
};
#define NOWN (sizeof(own_keys) / sizeof(own_keys[0]))

void cfg_own_names(unsigned own, char *out, size_t cap)
{
    size_t used = 0;

    if (!cap)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < NOWN && used < cap; i++) {
        int w;
        if (!(own & own_keys[i].bit))
            continue;
        w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", own_keys[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Copies the keys in own from src to dst. */
static int copy_owned(struct cfg *dst, const struct cfg *src, unsigned own, struct err *e)
{
    if ((own & CFG_OWN_TOKEN) && cfg_set_agent_token(dst, src->agent_jwt_token, e) < 0)
        return e ? e->code : ERR_NOMEM;
    if (own & CFG_OWN_SERVER_ID)
        memcpy(dst->server_id, src->server_id, sizeof(dst->server_id));
    if (own & CFG_OWN_MULTI_USER)
        dst->multi_user = src->multi_user;
    if (own & CFG_OWN_USER_SSO)
        dst->user_sso = src->user_sso;
    if (own & CFG_OWN_REGISTERED)
        dst->registered = src->registered;
    if (own & CFG_OWN_API_HOST) {
        memcpy(dst->api_host, src->api_host, sizeof(dst->api_host));
        dst->api_host_count = src->api_host_count;
        dst->api_host_seq = src->api_host_seq;
    }
    if (own & CFG_OWN_API_PORT)
        dst->api_port = src->api_port;
    if (own & CFG_OWN_SERVER_PRIVATE_KEY)
        memcpy(dst->server_private_key, src->server_private_key, sizeof(dst->server_private_key));
    if (own & CFG_OWN_SERVER_PUBLIC_KEY)
        memcpy(dst->server_public_key, src->server_public_key, sizeof(dst->server_public_key));
    if (own & CFG_OWN_JWT_PUBLIC_KEY)
        memcpy(dst->jwt_public_key, src->jwt_public_key, sizeof(dst->jwt_public_key));
    return 0;
}

/* Where one owned key's "key: value" is in the old text (byte offsets). */
struct own_span {
    int found;
    size_t start, end;
    int ends_line; /* the value took its line break (a block scalar): the new text adds one */
};

/* libyaml's mark.index counts code points after a BOM; the text is UTF-8 (checked by load). */
static size_t mark_byte(const char *s, size_t len, size_t bom, size_t index)
{
    size_t i = bom;
    for (size_t n = 0; i < len && n < index; n++) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

#define MERGE_MAX_DEPTH 64

/*
 * Finds the top-level pairs of the owned keys in s. 0: spans filled (absent keys not found);
 * -1: the layout cannot be edited in place (the caller rewrites the file instead).
 */
static int locate_owned(const char *s, size_t len, struct own_span spans[NOWN])
{
    yaml_parser_t y;
    yaml_event_t ev;
    size_t bom = len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3) ? 3 : 0;
    int rc = -1, stage = 0;

    memset(spans, 0, sizeof(*spans) * NOWN);
    if ((len >= 2 && ((unsigned char)s[0] == 0xFE || (unsigned char)s[0] == 0xFF)) ||
        !yaml_parser_initialize(&y))
        return -1; /* UTF-16 (a BOM): rewritten as UTF-8 */
    yaml_parser_set_input_string(&y, (const unsigned char *)s, len);
    /* stage 0: STREAM-START, 1: DOCUMENT-START or STREAM-END, 2: the top node, 3: pairs */
    while (stage < 3) {
        if (!yaml_parser_parse(&y, &ev))
            goto out;
        if (stage == 1 && ev.type == YAML_STREAM_END_EVENT) {
            ev_free(&ev);
            rc = 0; /* empty or comments only: every key is appended */
            goto out;
        }
        if (stage == 2 && ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) {
            ev_free(&ev);
            rc = 0; /* "---" alone */
            goto out;
        }
        if (stage == 2 && (ev.type != YAML_MAPPING_START_EVENT ||
                           ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE)) {
            ev_free(&ev);
            goto out;
        }
        ev_free(&ev);
        stage++;
    }
    for (;;) {
        size_t kstart, kend, vend;
        int own = -1, depth = 0, empty = 0;
        int flow[MERGE_MAX_DEPTH];

        if (!yaml_parser_parse(&y, &ev))
            goto out;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            ev_free(&ev);
            rc = 0;
            goto out;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            ev_free(&ev);
            goto out;
        }
        for (size_t i = 0; i < NOWN; i++)
            if (ev.data.scalar.length == strlen(own_keys[i].name) &&
                !memcmp(ev.data.scalar.value, own_keys[i].name, ev.data.scalar.length))
                own = (int)i;
        kstart = ev.start_mark.index;
        kend = vend = ev.end_mark.index;
        ev_free(&ev);
        /* the value: one scalar, or a collection up to its matching end */
        do {
            if (!yaml_parser_parse(&y, &ev))
                goto out;
            if (ev.type == YAML_SCALAR_EVENT) {
                if (depth == 0 && ev.data.scalar.length == 0 && !ev.data.scalar.tag &&
                    !ev.data.scalar.anchor && ev.data.scalar.plain_implicit)
                    empty = 1; /* "key:" alone: its mark is the next token's */
                else
                    vend = ev.end_mark.index;
            } else if (ev.type == YAML_SEQUENCE_START_EVENT ||
                       ev.type == YAML_MAPPING_START_EVENT) {
                if (depth >= MERGE_MAX_DEPTH) {
                    ev_free(&ev);
                    goto out;
                }
                flow[depth++] = ev.type == YAML_SEQUENCE_START_EVENT
                                    ? ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                                    : ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
                vend = ev.end_mark.index;
            } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
                /* a block collection ends at the next token (past comments): not its text */
                if (depth > 0 && flow[--depth])
                    vend = ev.end_mark.index;
            } else if (ev.type != YAML_ALIAS_EVENT) {
                ev_free(&ev);
                goto out;
            } else {
                vend = ev.end_mark.index;
            }
            ev_free(&ev);
        } while (depth > 0);
        if (own >= 0) {
            struct own_span *sp = &spans[own];
            sp->found = 1;
            sp->start = mark_byte(s, len, bom, kstart);
            sp->end = mark_byte(s, len, bom, empty ? kend : vend);
            if (empty) { /* take the ':' too */
                while (sp->end < len && (s[sp->end] == ' ' || s[sp->end] == '\t'))
                    sp->end++;
                if (sp->end < len && s[sp->end] == ':')
                    sp->end++;
            }
            sp->ends_line =
                sp->end > sp->start && (s[sp->end - 1] == '\n' || s[sp->end - 1] == '\r');
        }
    }
out:
    parser_wipe(&y);
    yaml_parser_delete(&y);
    return rc;
}

/* Appends len bytes, turning "\n" into "\r\n" when crlf. */
static int out_put(struct outbuf *o, const char *s, size_t len, int crlf)
{
    for (size_t i = 0; i < len; i++) {
        if (crlf && s[i] == '\n' && out_write(o, (unsigned char *)"\r", 1) == 0)
            return -1;
        if (out_write(o, (unsigned char *)s + i, 1) == 0)
            return -1;
    }
    return 0;
}

/* Edits the keys in own into old in place; 0 with *out, <0 on failure (e set). */
static int splice_owned(const struct cfg *c, unsigned own, const char *old, size_t old_len,
                        const struct own_span spans[NOWN], char **out, size_t *out_len,
                        struct err *e)
{
    struct outbuf o = {NULL, 0, 0};
    const char *nl = memchr(old, '\n', old_len);
    int crlf = nl && nl > old && nl[-1] == '\r';
    size_t pos = 0, done = 0;
    int rc = 0, appended = 0;
    char *one = NULL;
    size_t one_len = 0;

    *out = NULL;
    /* replacements in file order, then the keys the file did not have */
    while (rc == 0) {
        size_t next = NOWN;
        for (size_t i = 0; i < NOWN; i++)
            if ((own & own_keys[i].bit) && !(done & (1u << i)) && spans[i].found &&
                spans[i].start >= pos && (next == NOWN || spans[i].start < spans[next].start))
                next = i;
        if (next == NOWN)
            break;
        done |= 1u << next;
        if ((rc = render_doc(c, find_key(own_keys[next].name, strlen(own_keys[next].name)), &one,
                             &one_len, e)) < 0)
            break;
        while (one_len && one[one_len - 1] == '\n')
            one_len--;
        if (out_put(&o, old + pos, spans[next].start - pos, 0) < 0 ||
            out_put(&o, one, one_len, crlf) < 0 ||
            (spans[next].ends_line && out_put(&o, "\n", 1, crlf) < 0))
            rc = err_set(e, ERR_NOMEM, "cannot merge the config: out of memory");
        pos = spans[next].end;
        wipe_free(one, one_len + 1);
        one = NULL;
    }
    if (rc == 0 && out_put(&o, old + pos, old_len - pos, 0) < 0)
        rc = err_set(e, ERR_NOMEM, "cannot merge the config: out of memory");
    for (size_t i = 0; rc == 0 && i < NOWN; i++) {
        if (!(own & own_keys[i].bit) || spans[i].found)
            continue;
        if (!appended && old_len && old[old_len - 1] != '\n' && old[old_len - 1] != '\r' &&
            out_put(&o, "\n", 1, crlf) < 0) {
            rc = err_set(e, ERR_NOMEM, "cannot merge the config: out of memory");
            break;
        }
        appended = 1;
        if ((rc = render_doc(c, find_key(own_keys[i].name, strlen(own_keys[i].name)), &one,
                             &one_len, e)) < 0)
            break;
        if (out_put(&o, one, one_len, crlf) < 0)
            rc = err_set(e, ERR_NOMEM, "cannot merge the config: out of memory");
        wipe_free(one, one_len + 1);
        one = NULL;
    }
    if (rc == 0 && out_reserve(&o, 0) < 0)
        rc = err_set(e, ERR_NOMEM, "cannot merge the config: out of memory");
    if (rc < 0) {
        wipe_free(o.p, o.cap);
        return rc;
    }
    o.p[o.len] = '\0';
    *out = o.p;
    *out_len = o.len;
    return 0;
}

int cfg_merge_text(const struct cfg *c, unsigned own, const char *name, const char *old,
                   size_t old_len, char **out, size_t *out_len, int *in_place, struct err *e)
{
    struct cfg want, check;
    struct own_span spans[NOWN];
    char base[CFG_PATH_MAX];
    char *text = NULL;
    size_t text_len = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (in_place)
        *in_place = 0;
    if (!c->path[0] || fs_dirname(c->path, base, sizeof(base), NULL) < 0)
        base[0] = '\0';
    cfg_defaults(&want, base);
    cfg_defaults(&check, base);
    /* the administrator's file as it is now; a file that does not load is never replaced */
    if ((rc = cfg_load_buffer(&want, name, old, old_len, e)) < 0)
        goto out;
    if ((rc = copy_owned(&want, c, own, e)) < 0)
        goto out;
    /* in place: the file's comments, order and layout stay; accepted only when it loads back
     * as exactly the administrator's keys with ours (else the whole file is written) */
    if (locate_owned(old, old_len, spans) == 0 &&
        splice_owned(c, own, old, old_len, spans, &text, &text_len, NULL) == 0 &&
        cfg_load_buffer(&check, name, text, text_len, NULL) == 0 && cfg_equal(&want, &check)) {
        if (in_place)
            *in_place = 1;
    } else {
        wipe_free(text, text_len + 1);
        text = NULL;
        if ((rc = render_doc(&want, NULL, &text, &text_len, e)) < 0)
            goto out;
    }
    *out = text;
    *out_len = text_len;
    text = NULL;
out:
    if (text)
        wipe_free(text, text_len + 1);
    cfg_free(&want);
    cfg_free(&check);
    return rc;
}

int cfg_save_keys(const struct cfg *c, const char *path, unsigned own, struct err *e)
{
    char names[256];
    char *old = NULL, *text = NULL;
    size_t old_len = 0, text_len = 0;
    int rc;

    if (!path)
        path = c->path;
    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot save the config: no file name");
    cfg_own_names(own, names, sizeof(names));
    rc = fs_read_all(path, CFG_MAX_FILE_SIZE, &old, &old_len, e);
    if (rc == ERR_NOT_FOUND) { /* nothing of the administrator's to keep */
        err_clear(e);
        return cfg_save(c, path, e);
    }
    if (rc < 0) {
        err_prefix(e, "cannot save %s into %s: it cannot be read back", names, path);
        goto out;
    }
    if ((rc = cfg_merge_text(c, own, path, old, old_len, &text, &text_len, NULL, e)) < 0) {
        err_prefix(e,
                   "%s no longer loads, so the agent's new values (%s) are not saved and the file "
                   "is left as it is",
                   path, names);
        goto out;
    }
    if (text_len == old_len && !memcmp(text, old, old_len))
        goto out; /* already holds our values */
    rc = fs_write_atomic(path, text, text_len, FS_WRITE_PRIVATE, e);
out:
    if (old)
        wipe_free(old, old_len + 1);
    if (text)
        wipe_free(text, text_len + 1);
    return rc;
}
