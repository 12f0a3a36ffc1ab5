/*
 * posix/downloads.c - the user's Downloads folder and account name on POSIX (downloads.h):
 * XDG_DOWNLOAD_DIR from user-dirs.dirs with $HOME expansion, else $HOME/Downloads; the
 * account name from getpwuid_r(geteuid()).
 */
#include "downloads.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "plat.h"

#define DL_FILE_MAX (64u * 1024u) /* a user-dirs.dirs larger than this is not one */

/* Appends c to out[*n]; ERR_TOO_LARGE when full (room kept for the NUL). */
static int dl_put(char *out, size_t cap, size_t *n, char c)
{
    if (*n + 1 >= cap)
        return ERR_TOO_LARGE;
    out[(*n)++] = c;
    out[*n] = '\0';
    return 0;
}

/* Parses the value after "XDG_DOWNLOAD_DIR=" (line ends at '\n' or NUL). 1, 0 or < 0. */
static int dl_parse_value(const char *v, const char *home, char *out, size_t cap)
{
    char raw[4096];
    size_t n = 0, rn = 0;
    const char *rest;
    int quoted = 0;

    raw[0] = '\0';
    if (*v == '"') {
        quoted = 1;
        v++;
    }
    for (; *v && *v != '\n'; v++) {
        char c = *v;
        if (quoted && c == '"')
            break;
        if (!quoted && (c == ' ' || c == '\t' || c == '#' || c == '\r'))
            break;
        if (c == '\\' && v[1] && v[1] != '\n') {
            c = *++v;
        } else if (c == '\r') {
            continue;
        }
        if (dl_put(raw, sizeof(raw), &rn, c) < 0)
            return ERR_TOO_LARGE;
    }
    out[0] = '\0';
    if (strncmp(raw, "$HOME", 5) == 0 && (raw[5] == '/' || raw[5] == '\0'))
        rest = raw + 5;
    else if (strncmp(raw, "${HOME}", 7) == 0 && (raw[7] == '/' || raw[7] == '\0'))
        rest = raw + 7;
    else if (raw[0] == '/')
        return (rn + 1 > cap) ? ERR_TOO_LARGE : (memcpy(out, raw, rn + 1), 1);
    else
        return 0; /* relative or empty: not a valid entry */
    /* "$HOME" or "$HOME/" alone: the folder is disabled */
    while (*rest == '/')
        rest++;
    if (!*rest || !home || home[0] != '/')
        return 0;
    for (const char *p = home; *p; p++)
        if (dl_put(out, cap, &n, *p) < 0)
            return ERR_TOO_LARGE;
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    if (dl_put(out, cap, &n, '/') < 0)
        return ERR_TOO_LARGE;
    for (const char *p = rest; *p; p++)
        if (dl_put(out, cap, &n, *p) < 0)
            return ERR_TOO_LARGE;
    return 1;
}

int hlp_downloads_parse_xdg(const char *text, const char *home, char *out, size_t cap)
{
    static const char key[] = "XDG_DOWNLOAD_DIR=";
    int found = 0;
    if (cap)
        out[0] = '\0';
    for (const char *line = text; line && *line;) {
        const char *p = line;
        const char *nl = strchr(line, '\n');
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, key, sizeof(key) - 1) == 0) {
            /* the last assignment wins, as when the file is sourced by a shell */
            int rc = dl_parse_value(p + sizeof(key) - 1, home, out, cap);
            if (rc < 0)
                return rc;
            found = rc;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!found && cap)
        out[0] = '\0';
    return found;
}

int hlp_downloads_find(char *out, size_t cap, struct err *e)
{
    const char *home = getenv("HOME");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    char conf[4096], *text = NULL;
    size_t len = 0;
    int rc, found = 0;

    if (!home || home[0] != '/') {
        rc = err_set(e, ERR_NOT_FOUND,
                     "cannot find the Downloads folder: HOME is not set to an absolute path");
        goto out;
    }
    if (xdg && xdg[0] == '/')
        rc = fs_join(xdg, "user-dirs.dirs", conf, sizeof(conf), e);
    else
        rc = snprintf(conf, sizeof(conf), "%s/.config/user-dirs.dirs", home) < (int)sizeof(conf)
                 ? 0
                 : err_set(e, ERR_TOO_LARGE, "the home directory path is too long");
    if (rc < 0)
        goto out;
    if (fs_read_all(conf, DL_FILE_MAX, &text, &len, NULL) == 0) {
        found = hlp_downloads_parse_xdg(text, home, out, cap);
        if (found < 0) {
            rc = err_set(e, ERR_TOO_LARGE, "XDG_DOWNLOAD_DIR in %s is too long", conf);
            goto out;
        }
    }
    if (!found && snprintf(out, cap, "%s/Downloads", home) >= (int)cap) {
        rc = err_set(e, ERR_TOO_LARGE, "the home directory path is too long");
        goto out;
    }
    rc = plat_dir_create_all(out, e);
    if (rc < 0)
        err_prefix(e, "creating the Downloads folder %s", out);
out:
    free(text);
    return rc;
}

int hlp_user_name(char *out, size_t cap, struct err *e)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int rc = getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res);
    if (rc != 0 || !res || !res->pw_name)
        return err_set(e, ERR_NOT_FOUND, "cannot find the account of user id %lu: %s",
                       (unsigned long)geteuid(), rc ? strerror(rc) : "no such user");
    if (strlen(res->pw_name) + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the account name is too long");
    memcpy(out, res->pw_name, strlen(res->pw_name) + 1);
    return 0;
}

int hlp_profile_find(char *out, size_t cap, struct err *e)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int rc = getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res);
    if (rc != 0 || !res || !res->pw_dir || res->pw_dir[0] != '/')
        return err_set(e, ERR_NOT_FOUND, "cannot find the home folder of user id %lu: %s",
                       (unsigned long)geteuid(), rc ? strerror(rc) : "no home folder");
    if (strlen(res->pw_dir) + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the home folder path is too long");
    memcpy(out, res->pw_dir, strlen(res->pw_dir) + 1);
    return 0;
}
