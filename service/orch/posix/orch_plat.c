/*
 * posix/orch_plat.c - the orchestrator's platform part on POSIX (orch_plat.h): the home
 * folder from the password database, chown to the user (the file's mode from the mapping's
 * flags), no log-off.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orch.h"
#include "orch_plat.h"
#include "plat.h"

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

/* The file itself, through one descriptor (no link followed): owner, then mode. */
static int give_file(const char *path, const struct passwd *pw, unsigned access, struct err *e)
{
    struct stat st;
    mode_t mode = 0;
    int fd, rc = 0;

    if (access & PLAT_ACCESS_READ)
        mode |= S_IRUSR;
    if (access & PLAT_ACCESS_WRITE)
        mode |= S_IWUSR;
    if (access & PLAT_ACCESS_EXECUTE)
        mode |= S_IXUSR;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, ERR_PERMISSION, "%s is not a plain file (%s)", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = err_set(e, ERR_PERMISSION, "%s is not a plain file", path);
    else if (fchown(fd, pw->pw_uid, pw->pw_gid) < 0 || fchmod(fd, mode) < 0)
        rc = err_set(e, ERR_PERMISSION, "cannot give %s to %.100s: %s", path, pw->pw_name,
                     strerror(errno));
    close(fd);
    return rc;
}

int orch_plat_give_to_user(const char *path, const char *top, const char *user, unsigned access,
                           struct err *e)
{
    struct passwd pw;
    char buf[4096], p[4096], *slash;
    int rc;
    if ((rc = lookup(user, &pw, buf, sizeof(buf), e)) < 0)
        return rc;
    if (!orch_path_under(path, top) || strcmp(path, top) == 0)
        return err_set(e, ERR_INVALID, "%s is not inside %s", path, top);
    if ((rc = give_file(path, &pw, access, e)) < 0)
        return rc;
    snprintf(p, sizeof(p), "%s", path);
    if (!(slash = strrchr(p, '/')) || slash == p)
        return 0;
    *slash = '\0';
    /* then each folder up to (not including) the profile itself */
    while (orch_path_under(p, top) && strcmp(p, top) != 0) {
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
