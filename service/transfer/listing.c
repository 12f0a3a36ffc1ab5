/*
 * listing.c - URL path resolution under the download folder and the streamed HTML listing
 * (listing.h).
 */
#include "listing.h"

#include <stdlib.h>
#include <string.h>

#include "fsutil.h"

int lst_url_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~';
        if (o + (keep ? 1 : 3) + 1 > cap)
            return ERR_TOO_LARGE;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o + 1 > cap)
        return ERR_TOO_LARGE;
    out[o] = '\0';
    return 0;
}

int lst_html_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s; s++) {
        const char *r = NULL;
        size_t n;
        switch (*s) {
        case '&':
            r = "&amp;";
            break;
        case '<':
            r = "&lt;";
            break;
        case '>':
            r = "&gt;";
            break;
        case '"':
            r = "&quot;";
            break;
        case '\'':
            r = "&#39;";
            break;
        default:
            break;
        }
        n = r ? strlen(r) : 1;
        if (o + n + 1 > cap)
            return ERR_TOO_LARGE;
        if (r)
            memcpy(out + o, r, n);
        else
            out[o] = *s;
        o += n;
    }
    if (o + 1 > cap)
        return ERR_TOO_LARGE;
    out[o] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes s[0..n) into out; -1 on a bad escape, %00, or no room. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int not_found(struct err *e, const char *why)
{
    return err_set(e, ERR_NOT_FOUND, "not found: %s", why);
}

int lst_resolve(const char *root_final, const char *url_path, struct lst_target *out, struct err *e)
{
    char comp[NAME_MAX_BYTES + 1];
    char next[LST_PATH_MAX];
    char fp[LST_PATH_MAX];
    const char *p = url_path ? url_path : "";
    int is_file = 0, rc = 0;
    struct plat_file_info info;
    struct plat_file *f = NULL;

    memset(out, 0, sizeof(*out));
    out->is_dir = 1;
    out->trailing_slash = (*p == '\0' || p[strlen(p) - 1] == '/');
    if (plat_dir_final_path(root_final, out->path, sizeof(out->path), e) < 0)
        return err_prefix(e, "download folder");
    if (strcmp(out->path, root_final) != 0)
        return not_found(e, "the download folder no longer resolves to itself");

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0) {
            p++;
            continue;
        }
        if (is_file)
            return not_found(e, "a file is used as a folder");
        if (pct_decode(p, n, comp, sizeof(comp)) < 0)
            return not_found(e, "bad percent-encoding or name too long");
        if (name_validate(comp, NULL) < 0)
            return not_found(e, "not a valid name");
        if (name_join_under(out->path, comp, next, sizeof(next), NULL) < 0)
            return not_found(e, "path too long");
        if (plat_path_stat(next, &info, NULL) < 0)
            return not_found(e, "no such file or folder");
        if (info.is_link)
            return not_found(e, "links are not followed");
        if (info.is_dir) {
            if (plat_dir_final_path(next, out->path, sizeof(out->path), NULL) < 0 ||
                !name_path_is_under(root_final, out->path))
                return not_found(e, "outside the download folder");
        } else {
            is_file = 1;
            memcpy(out->path, next, strlen(next) + 1);
        }
        memcpy(out->name, comp, strlen(comp) + 1);
        p += n;
    }
    if (!is_file)
        return 0;

    out->is_dir = 0;
    rc = plat_file_open(out->path, PLAT_OPEN_READ, &f, e);
    if (rc < 0) {
        if (rc == ERR_NOT_FOUND || rc == ERR_PERMISSION)
            rc = not_found(e, "cannot open the file");
        goto out;
    }
    if ((rc = plat_file_final_path(f, fp, sizeof(fp), e)) < 0)
        goto out;
    if (!name_path_is_under(root_final, fp)) {
        rc = not_found(e, "outside the download folder");
        goto out;
    }
    if ((rc = plat_file_stat(f, &out->info, e)) < 0)
        goto out;
    if (out->info.is_dir || out->info.is_link) {
        rc = not_found(e, "not a regular file");
        goto out;
    }
    memcpy(out->path, fp, strlen(fp) + 1);
    out->file = f;
    f = NULL;
out:
    plat_file_close(f);
    return rc;
}

/* ---- rendering ------------------------------------------------------------------------- */

struct outbuf {
    char buf[LST_CHUNK];
    size_t len;
    lst_write_fn write;
    void *ctx;
};

static int ob_flush(struct outbuf *o)
{
    int rc = 0;
    if (o->len)
        rc = o->write(o->ctx, o->buf, o->len);
    o->len = 0;
    return rc;
}

static int ob_put(struct outbuf *o, const char *s, size_t n)
{
    int rc;
    while (n) {
        size_t room = sizeof(o->buf) - o->len;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
        if (o->len == sizeof(o->buf) && (rc = ob_flush(o)) < 0)
            return rc;
    }
    return 0;
}

static int ob_str(struct outbuf *o, const char *s)
{
    return ob_put(o, s, strlen(s));
}

struct entry {
    char *name;
    int is_dir;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

int lst_render(const char *dir_path, const char *heading, int show_hidden, lst_write_fn write,
               void *ctx, struct err *e)
{
    struct plat_dir *d = NULL;
    struct plat_dir_entry *ent = NULL;
    struct entry *list = NULL;
    struct outbuf *o = NULL;
    size_t n = 0, cap = 0;
    /* A name is at most 1023 bytes from plat_dir_next: escaped at most 3x, + "/". */
    char *href = NULL, *text = NULL;
    size_t esc_cap = 3 * sizeof(ent->name) + 8;
    int rc;

    ent = malloc(sizeof(*ent));
    o = malloc(sizeof(*o));
    href = malloc(esc_cap);
    text = malloc(esc_cap);
    if (!ent || !o || !href || !text) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    o->len = 0;
    o->write = write;
    o->ctx = ctx;
    if ((rc = plat_dir_open(dir_path, &d, e)) < 0)
        goto out;
    while ((rc = plat_dir_next(d, ent, e)) == 1) {
        if (ent->info.is_link)
            continue;
        if (!show_hidden && (ent->name[0] == '$' || ent->info.is_hidden || ent->info.is_system))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct entry *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl) {
                rc = err_set(e, ERR_NOMEM, "out of memory listing a folder");
                goto out;
            }
            list = nl;
            cap = ncap;
        }
        list[n].name = malloc(strlen(ent->name) + 1);
        if (!list[n].name) {
            rc = err_set(e, ERR_NOMEM, "out of memory listing a folder");
            goto out;
        }
        memcpy(list[n].name, ent->name, strlen(ent->name) + 1);
        list[n].is_dir = ent->info.is_dir;
        n++;
    }
    if (rc < 0)
        goto out;
    if (n > 1)
        qsort(list, n, sizeof(*list), entry_cmp);

    if ((rc = ob_str(o, "<html><title>Directory Listing</title><body><h2>")) < 0)
        goto write_failed;
    if (lst_html_escape(heading ? heading : "", text, esc_cap) < 0) {
        rc = err_set(e, ERR_TOO_LARGE, "listing heading too long");
        goto out;
    }
    if ((rc = ob_str(o, text)) < 0 || (rc = ob_str(o, "</h2><hr/><ul>")) < 0)
        goto write_failed;
    for (size_t i = 0; i < n; i++) {
        const char *slash = list[i].is_dir ? "/" : "";
        if (lst_url_escape(list[i].name, href, esc_cap) < 0 ||
            lst_html_escape(list[i].name, text, esc_cap) < 0) {
            rc = err_set(e, ERR_INTERNAL, "listing entry does not fit its escape buffer");
            goto out;
        }
        if ((rc = ob_str(o, "<li><a href=\"")) < 0 || (rc = ob_str(o, href)) < 0 ||
            (rc = ob_str(o, slash)) < 0 || (rc = ob_str(o, "\">")) < 0 ||
            (rc = ob_str(o, text)) < 0 || (rc = ob_str(o, slash)) < 0 ||
            (rc = ob_str(o, "</a></li>")) < 0)
            goto write_failed;
    }
    if ((rc = ob_str(o, "</ul></body></html>")) < 0 || (rc = ob_flush(o)) < 0)
        goto write_failed;
    rc = 0;
    goto out;
write_failed:
    if (rc >= 0)
        rc = ERR_IO;
    err_set(e, rc, "writing the listing failed");
out:
    plat_dir_close(d);
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
    free(ent);
    free(o);
    free(href);
    free(text);
    return rc;
}
