/*
 * fsutil.c - whole-file helpers over the platform layer: the atomic write (temp file in the
 * same directory, flush, replace, flush the directory), bounded whole-file reads, and the
 * dirname/join string helpers.
 */
#include "fsutil.h"

#include "plat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_sep(char c)
{
#ifdef _WIN32
    return c == '\\' || c == '/';
#else
    return c == '/';
#endif
}

/* Length of the root prefix of path that must never be cut: "/", "C:", "C:\", "\\srv\share\". */
static size_t root_len(const char *path)
{
#ifdef _WIN32
    size_t n = strlen(path);
    if (n >= 2 && is_sep(path[0]) && is_sep(path[1])) {
        /* \\server\share\ (or \\?\C:\ ...): keep two components after the leading "\\". */
        size_t i = 2;
        int comps = 0;
        if (n >= 4 && (path[2] == '?' || path[2] == '.') && is_sep(path[3])) {
            i = 4;
            if (n >= 6 &&
                ((path[4] >= 'A' && path[4] <= 'Z') || (path[4] >= 'a' && path[4] <= 'z')) &&
                path[5] == ':')
                return (n >= 7 && is_sep(path[6])) ? 7 : 6;
        }
        while (i < n && comps < 2) {
            while (i < n && !is_sep(path[i]))
                i++;
            comps++;
            if (i < n)
                i++;
        }
        return i;
    }
    if (n >= 2 && path[1] == ':' &&
        ((path[0] >= 'A' && path[0] <= 'Z') || (path[0] >= 'a' && path[0] <= 'z')))
        return (n >= 3 && is_sep(path[2])) ? 3 : 2;
    if (n >= 1 && is_sep(path[0]))
        return 1;
    return 0;
#else
    return path[0] == '/' ? 1 : 0;
#endif
}

int fs_dirname(const char *path, char *out, size_t cap, struct err *e)
{
    size_t root, end, n;

    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot take the directory of an empty path");
    root = root_len(path);
    end = strlen(path);
    /* Drop trailing separators, then the last component, then the separators before it. */
    while (end > root && is_sep(path[end - 1]))
        end--;
    while (end > root && !is_sep(path[end - 1]))
        end--;
    while (end > root && is_sep(path[end - 1]))
        end--;
    n = end;
    if (n == 0) {
        if (cap < 2)
            return err_set(e, ERR_TOO_LARGE, "the directory of %s does not fit", path);
        memcpy(out, ".", 2);
        return 0;
    }
    if (n + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the directory of %s does not fit in %zu bytes", path,
                       cap);
    memmove(out, path, n);
    out[n] = '\0';
    return 0;
}

int fs_join(const char *dir, const char *name, char *out, size_t cap, struct err *e)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int add_sep = dl > 0 && !is_sep(dir[dl - 1]);
    size_t total = dl + (add_sep ? 1 : 0) + nl;

    if (total + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the path %s%s%s is too long (limit %zu bytes)", dir,
                       add_sep ? PLAT_PATH_SEP_STR : "", name, cap ? cap - 1 : 0);
    /* out may not overlap name, but may be dir itself. */
    memmove(out, dir, dl);
    if (add_sep)
        out[dl++] = PLAT_PATH_SEP;
    memcpy(out + dl, name, nl);
    out[dl + nl] = '\0';
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, int flags, struct err *e)
{
    static const char hex[] = "0123456789abcdef";
    struct plat_file *f = NULL;
    unsigned char rnd[4];
    char suffix[16];
    char *tmp = NULL;
    char *dir = NULL;
    size_t plen;
    int created = 0;
    int rc;
    int oflags = PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW;

    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot write a file: empty path");
    plen = strlen(path);
    tmp = malloc(plen + sizeof(suffix));
    dir = malloc(plen + 2);
    if (!tmp || !dir) {
        rc = err_set(e, ERR_NOMEM, "cannot write %s: out of memory", path);
        goto out;
    }
    rc = plat_random_bytes(rnd, sizeof(rnd), e);
    if (rc < 0) {
        err_prefix(e, "cannot write %s", path);
        goto out;
    }
    memcpy(suffix, ".tmp-", 5);
    for (size_t i = 0; i < sizeof(rnd); i++) {
        suffix[5 + 2 * i] = hex[rnd[i] >> 4];
        suffix[6 + 2 * i] = hex[rnd[i] & 15];
    }
    suffix[13] = '\0';
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, 14);
    rc = fs_dirname(path, dir, plen + 2, e);
    if (rc < 0)
        goto out;

    if (flags & FS_WRITE_PRIVATE)
        oflags |= PLAT_OPEN_PRIVATE;
    rc = plat_file_open(tmp, oflags, &f, e);
    if (rc < 0) {
        err_prefix(e, "cannot write %s", path);
        goto out;
    }
    created = 1;
    if (flags & FS_WRITE_PRIVATE) {
        /* Before any byte of the secret is in the file. */
        rc = plat_path_restrict_to_admins(tmp, e);
        if (rc < 0)
            goto fail;
    }
    rc = plat_file_write_all(f, data, len, e);
    if (rc < 0)
        goto fail;
    rc = plat_file_sync(f, e);
    if (rc < 0)
        goto fail;
    plat_file_close(f);
    f = NULL;
    rc = plat_path_replace(tmp, path, e);
    if (rc < 0)
        goto fail;
    created = 0; /* the temp name is gone: it is the target now */
    rc = plat_dir_sync(dir, e);
    if (rc < 0)
        err_prefix(e, "%s was written, but flushing its directory failed", path);
    goto out;
fail:
    err_prefix(e, "cannot write %s", path);
out:
    plat_file_close(f);
    if (created)
        plat_path_remove(tmp, NULL);
    free(tmp);
    free(dir);
    return rc;
}

int fs_read_all(const char *path, size_t max_bytes, char **out, size_t *len_out, struct err *e)
{
    struct plat_file *f = NULL;
    struct plat_file_info info;
    char *buf = NULL;
    size_t cap, len = 0;
    int rc;

    *out = NULL;
    if (len_out)
        *len_out = 0;
    if (max_bytes >= SIZE_MAX - 1)
        max_bytes = SIZE_MAX - 2;
    rc = plat_file_open(path, PLAT_OPEN_READ, &f, e);
    if (rc < 0)
        goto out;
    rc = plat_file_stat(f, &info, e);
    if (rc < 0)
        goto out;
    if (info.size > (uint64_t)max_bytes) {
        rc = err_set(e, ERR_TOO_LARGE, "%s is too large: %llu bytes, the limit is %zu", path,
                     (unsigned long long)info.size, max_bytes);
        goto out;
    }
    /* The size is a hint (the file may grow, or report 0): read until end, bounded. */
    cap = (size_t)info.size + 1;
    if (cap < 256)
        cap = 256;
    if (cap > max_bytes + 2)
        cap = max_bytes + 2;
    buf = malloc(cap);
    if (!buf) {
        rc = err_set(e, ERR_NOMEM, "cannot read %s: out of memory", path);
        goto out;
    }
    for (;;) {
        size_t got;
        if (len + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nb;
            if (ncap > max_bytes + 2 || ncap < cap)
                ncap = max_bytes + 2;
            if (ncap <= cap) {
                rc = err_set(e, ERR_TOO_LARGE, "%s is too large: the limit is %zu bytes", path,
                             max_bytes);
                goto out;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                rc = err_set(e, ERR_NOMEM, "cannot read %s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        rc = plat_file_read(f, buf + len, cap - 1 - len, &got, e);
        if (rc < 0)
            goto out;
        if (got == 0)
            break;
        len += got;
        if (len > max_bytes) {
            rc = err_set(e, ERR_TOO_LARGE, "%s is too large: the limit is %zu bytes", path,
                         max_bytes);
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    if (len_out)
        *len_out = len;
out:
    plat_file_close(f);
    free(buf);
    return rc;
}
