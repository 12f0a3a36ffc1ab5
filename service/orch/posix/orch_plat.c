/*
 * posix/orch_plat.c - the orchestrator's platform part on POSIX (orch_plat.h): the home
 * folder from the password database, chown to the user, no log-off.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orch.h"
#include "orch_plat.h"

static int lookup(const char *user, struct passwd *pw, char *buf, size_t cap, struct err *e)
{
    struct passwd *res = NULL;
    int rc = getpwnam_r(user, pw, buf, cap, &res);
    if (rc != 0 || !res)
        return err_set(e, ERR_NOT_FOUND, "there is no local account %.100s", user);
    return 0;
}

int orch_plat_profile_dir(const char *user, char *out, size_t cap, struct err *e)
{
    struct passwd pw;
    char buf[4096];
    int rc;
    if ((rc = lookup(user, &pw, buf, sizeof(buf), e)) < 0)
        return rc;
    if (!pw.pw_dir || !pw.pw_dir[0] || strcmp(pw.pw_dir, "/") == 0)
        return err_set(e, ERR_NOT_FOUND, "the account %.100s has no home folder", user);
    if ((size_t)snprintf(out, cap, "%s", pw.pw_dir) >= cap)
        return err_set(e, ERR_TOO_LARGE, "the home folder of %.100s is too long", user);
    return 0;
}

int orch_plat_give_to_user(const char *path, const char *top, const char *user, struct err *e)
{
    struct passwd pw;
    char buf[4096], p[4096];
    int rc;
    if ((rc = lookup(user, &pw, buf, sizeof(buf), e)) < 0)
        return rc;
    snprintf(p, sizeof(p), "%s", path);
    /* the file, then each folder up to (not including) the profile itself */
    while (orch_path_under(p, top) && strcmp(p, top) != 0) {
        char *slash;
        struct stat st;
        if (lstat(p, &st) < 0 || S_ISLNK(st.st_mode))
            return err_set(e, ERR_PERMISSION, "%s is not a plain file or folder", p);
        if (lchown(p, pw.pw_uid, pw.pw_gid) < 0)
            return err_set(e, ERR_PERMISSION, "cannot give %s to %.100s: %s", p, user,
                           strerror(errno));
        if (!(slash = strrchr(p, '/')) || slash == p)
            break;
        *slash = '\0';
    }
    return 0;
}

int orch_plat_logoff(const char *user, unsigned *count, struct err *e)
{
    (void)user;
    *count = 0;
    return err_set(e, ERR_UNSUPPORTED, "logging a user off is a Windows feature");
}
