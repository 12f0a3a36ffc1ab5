/*
 * posix/plat_dir.c - directories on POSIX (Linux): listing, creating, syncing, resolving a
 * directory's final path, free disk space and the executable's directory.
 */
#include "plat.h"
#include "posix_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

struct plat_dir {
    DIR *dir;
    char *path;
};

int plat_dir_open(const char *path, struct plat_dir **out, struct err *e)
{
    struct plat_dir *d;
    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return err_set(e, ERR_NOMEM, "cannot list %s: out of memory", path);
    }
    d->dir = opendir(path);
    if (!d->dir) {
        int rc = plat_posix_fail(e, errno, "cannot list", path);
        free(d->path);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int plat_dir_next(struct plat_dir *d, struct plat_dir_entry *ent, struct err *e)
{
    for (;;) {
        struct dirent *de;
        struct stat st;
        size_t n;

        errno = 0;
        de = readdir(d->dir);
        if (!de) {
            if (errno != 0)
                return plat_posix_fail(e, errno, "cannot list", d->path);
            return 0;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        n = strlen(de->d_name);
        if (n >= sizeof(ent->name))
            continue; /* cannot happen with NAME_MAX 255; never hand out a cut name */
        memset(ent, 0, sizeof(*ent));
        memcpy(ent->name, de->d_name, n + 1);
        if (fstatat(dirfd(d->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue; /* deleted meanwhile */
            return plat_posix_fail(e, errno, "cannot stat an entry of", d->path);
        }
        ent->info.size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        ent->info.mtime = (int64_t)st.st_mtime;
        ent->info.is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
        ent->info.is_link = S_ISLNK(st.st_mode) ? 1 : 0;
        ent->info.is_hidden = ent->name[0] == '.';
        ent->info.is_system = 0;
        return 1;
    }
}

void plat_dir_close(struct plat_dir *d)
{
    if (!d)
        return;
    closedir(d->dir);
    free(d->path);
    free(d);
}

int plat_dir_create(const char *path, struct err *e)
{
    struct stat st;
    if (mkdir(path, 0777) == 0)
        return 0;
    if (errno == EEXIST) {
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        return err_set(e, ERR_EXISTS, "cannot create directory %s: a file has that name", path);
    }
    return plat_posix_fail(e, errno, "cannot create directory", path);
}

int plat_dir_create_all(const char *path, struct err *e)
{
    char *buf;
    size_t n;
    int rc = 0;

    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot create a directory: empty path");
    n = strlen(path);
    buf = malloc(n + 1);
    if (!buf)
        return err_set(e, ERR_NOMEM, "cannot create directory %s: out of memory", path);
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i - 1] == '/')
            continue; /* "a//b" */
        char saved = buf[i];
        buf[i] = '\0';
        rc = plat_dir_create(buf, e);
        buf[i] = saved;
        if (rc < 0)
            goto out;
    }
out:
    free(buf);
    return rc;
}

int plat_dir_sync(const char *path, struct err *e)
{
    int fd, r, rc = 0;
    do {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return plat_posix_fail(e, errno, "cannot open directory", path);
    do {
        r = fsync(fd);
    } while (r < 0 && errno == EINTR);
    /* Some file systems cannot sync a directory (EINVAL): nothing more can be done there. */
    if (r < 0 && errno != EINVAL && errno != EROFS)
        rc = plat_posix_fail(e, errno, "cannot flush directory", path);
    close(fd);
    return rc;
}

int plat_dir_final_path(const char *path, char *out, size_t cap, struct err *e)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t n;

    if (!realpath(path, buf))
        return plat_posix_fail(e, errno, "cannot resolve directory", path);
    if (stat(buf, &st) < 0)
        return plat_posix_fail(e, errno, "cannot stat", buf);
    if (!S_ISDIR(st.st_mode))
        return err_set(e, ERR_INVALID, "%s is not a directory", path);
    n = strlen(buf);
    if (n + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the final path of %s does not fit in %zu bytes", path,
                       cap);
    memcpy(out, buf, n + 1);
    return 0;
}

int plat_disk_free(const char *path, uint64_t *free_bytes, uint64_t *total_bytes, struct err *e)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return plat_posix_fail(e, errno, "cannot query free space of", path);
    if (free_bytes)
        *free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    if (total_bytes)
        *total_bytes = (uint64_t)sv.f_blocks * (uint64_t)sv.f_frsize;
    return 0;
}

int plat_exe_dir(char *out, size_t cap, struct err *e)
{
    char buf[PATH_MAX + 1];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    char *slash;
    size_t len;

    if (n < 0)
        return plat_posix_fail(e, errno, "cannot find the executable's path", "/proc/self/exe");
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (!slash)
        return err_set(e, ERR_IO, "the executable's path is not absolute: %s", buf);
    if (slash == buf)
        slash++; /* keep "/" */
    *slash = '\0';
    len = strlen(buf);
    if (len + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the executable's directory does not fit in %zu bytes",
                       cap);
    memcpy(out, buf, len + 1);
    return 0;
}

int plat_dir_remove(const char *path, struct err *e)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return err_set(e, ERR_INVALID, "cannot remove directory %s: it is a symbolic link", path);
    if (rmdir(path) < 0) {
        if (errno == ENOENT)
            return err_set(e, ERR_NOT_FOUND, "cannot remove directory %s: it does not exist", path);
        return plat_posix_fail(e, errno, "cannot remove directory", path);
    }
    return 0;
}

int plat_symlink_create(const char *target, const char *linkpath, int is_dir, struct err *e)
{
    (void)is_dir;
    if (symlink(target, linkpath) < 0)
        return plat_posix_fail(e, errno, "cannot create symbolic link", linkpath);
    return 0;
}
