/*
 * posix/plat_file.c - files and paths on POSIX (Linux): open without following links, read,
 * write, sync, final path through /proc/self/fd, stat, rename/replace, remove, the errno to
 * ERR_* mapping and owner-only permissions.
 */
#include "plat.h"
#include "posix_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

struct plat_file {
    int fd;
    char *path; /* as given to plat_file_open, for messages */
};

int plat_err_from_os(long os_error)
{
    switch (os_error) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return ERR_NO_SPACE;
    case EACCES:
    case EPERM:
    case EROFS:
        return ERR_PERMISSION;
    case ENOENT:
    case ENOTDIR:
        return ERR_NOT_FOUND;
    case EEXIST:
    case ENOTEMPTY:
        return ERR_EXISTS;
    case ENOMEM:
        return ERR_NOMEM;
    case ENAMETOOLONG:
    case EFBIG:
        return ERR_TOO_LARGE;
    case EBUSY:
    case ETXTBSY:
        return ERR_BUSY;
    case EINVAL:
    case EISDIR:
        return ERR_INVALID;
    case ELOOP:
        return ERR_PERMISSION;
    case ENOSYS:
    case EOPNOTSUPP:
        return ERR_UNSUPPORTED;
    default:
        return ERR_IO;
    }
}

int plat_posix_fail(struct err *e, int errnum, const char *what, const char *path)
{
    char buf[256];
    /* GNU strerror_r (the build defines _GNU_SOURCE): returns a pointer, maybe not buf. */
    const char *txt = strerror_r(errnum, buf, sizeof(buf));
    int code = plat_err_from_os(errnum);
    if (path)
        return err_set(e, code, "%s %s: %s", what, path, txt);
    return err_set(e, code, "%s: %s", what, txt);
}

static int is_hidden_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return base[0] == '.' && strcmp(base, ".") != 0 && strcmp(base, "..") != 0;
}

static void fill_info(const struct stat *st, const char *path, struct plat_file_info *out)
{
    memset(out, 0, sizeof(*out));
    out->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
    out->mtime = (int64_t)st->st_mtime;
    out->is_dir = S_ISDIR(st->st_mode) ? 1 : 0;
    out->is_link = S_ISLNK(st->st_mode) ? 1 : 0;
    out->is_hidden = path ? is_hidden_name(path) : 0;
    out->is_system = 0;
}

int plat_file_open(const char *path, int flags, struct plat_file **out, struct err *e)
{
    struct plat_file *f = NULL;
    struct stat st;
    int fd = -1;
    int rc = 0;
    int oflags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    mode_t mode = (flags & PLAT_OPEN_PRIVATE) ? 0600 : 0666;

    *out = NULL;
    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot open a file: empty path");
    if ((flags & (PLAT_OPEN_READ | PLAT_OPEN_WRITE)) == 0)
        return err_set(e, ERR_INVALID, "cannot open %s: neither read nor write access asked", path);
    if ((flags & PLAT_OPEN_READ) && (flags & PLAT_OPEN_WRITE))
        oflags |= O_RDWR;
    else if (flags & PLAT_OPEN_WRITE)
        oflags |= O_WRONLY;
    else
        oflags |= O_RDONLY;
    if (flags & PLAT_OPEN_CREATE_NEW)
        oflags |= O_CREAT | O_EXCL;
    else if (flags & PLAT_OPEN_TRUNCATE)
        oflags |= O_CREAT | O_TRUNC;
    else if (flags & PLAT_OPEN_APPEND)
        oflags |= O_CREAT;
    if (flags & PLAT_OPEN_APPEND)
        oflags |= O_APPEND;

    do {
        fd = open(path, oflags, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int en = errno;
        if (en == ELOOP || en == EMLINK) {
            rc = err_set(e, ERR_PERMISSION,
                         "cannot open %s: it is a symbolic link or reparse point; refusing to "
                         "follow it",
                         path);
        } else if (en == EEXIST) {
            rc = err_set(e, ERR_EXISTS, "cannot create %s: something with that name exists", path);
        } else if (en == EISDIR) {
            rc = err_set(e, ERR_INVALID, "cannot open %s: it is a directory", path);
        } else {
            rc = plat_posix_fail(e, en, "cannot open", path);
        }
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = plat_posix_fail(e, errno, "cannot stat", path);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = err_set(e, ERR_INVALID, "cannot open %s: it is a directory", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_INVALID, "cannot open %s: not a regular file (device, pipe or socket)",
                     path);
        goto out;
    }
    /* O_NONBLOCK only guarded the open against FIFOs; regular files do not need it. */
    if (fcntl(fd, F_SETFL, oflags & (O_APPEND)) < 0) {
        rc = plat_posix_fail(e, errno, "cannot set flags on", path);
        goto out;
    }
    if ((flags & PLAT_OPEN_PRIVATE) && (flags & PLAT_OPEN_WRITE) && (st.st_mode & 077) != 0 &&
        fchmod(fd, st.st_mode & 0700) < 0) {
        rc = plat_posix_fail(e, errno, "cannot make owner-only", path);
        goto out;
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->path = strdup(path))) {
        rc = err_set(e, ERR_NOMEM, "cannot open %s: out of memory", path);
        goto out;
    }
    f->fd = fd;
    fd = -1;
    *out = f;
    f = NULL;
out:
    if (fd >= 0) {
        /* We created it (CREATE_NEW succeeded) but cannot hand it out: do not leave it. */
        if ((flags & PLAT_OPEN_CREATE_NEW) && rc != 0)
            unlink(path);
        close(fd);
    }
    if (f) {
        free(f->path);
        free(f);
    }
    return rc;
}

int plat_file_read(struct plat_file *f, void *buf, size_t cap, size_t *got, struct err *e)
{
    ssize_t n;
    *got = 0;
    if (cap > SSIZE_MAX)
        cap = SSIZE_MAX;
    do {
        n = read(f->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return plat_posix_fail(e, errno, "cannot read", f->path);
    *got = (size_t)n;
    return 0;
}

intptr_t plat_file_os_handle(const struct plat_file *f)
{
    return f->fd;
}

int plat_file_pread(struct plat_file *f, void *buf, size_t cap, uint64_t off, size_t *got,
                    struct err *e)
{
    ssize_t n;
    *got = 0;
    if (off > (uint64_t)INT64_MAX)
        return err_set(e, ERR_INVALID, "cannot read %s: offset out of range", f->path);
    if (cap > SSIZE_MAX)
        cap = SSIZE_MAX;
    do {
        n = pread(f->fd, buf, cap, (off_t)off);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return plat_posix_fail(e, errno, "cannot read", f->path);
    *got = (size_t)n;
    return 0;
}

int plat_file_write_all(struct plat_file *f, const void *buf, size_t len, struct err *e)
{
    const unsigned char *p = buf;
    while (len > 0) {
        size_t chunk = len > (size_t)1 << 30 ? (size_t)1 << 30 : len;
        ssize_t n = write(f->fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return plat_posix_fail(e, errno, "cannot write", f->path);
        }
        if (n == 0)
            return err_set(e, ERR_IO, "cannot write %s: the system wrote nothing", f->path);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int plat_file_sync(struct plat_file *f, struct err *e)
{
    int r;
    do {
        r = fsync(f->fd);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return plat_posix_fail(e, errno, "cannot flush", f->path);
    return 0;
}

int plat_file_truncate(struct plat_file *f, uint64_t len, struct err *e)
{
    if (len > (uint64_t)INT64_MAX)
        return err_set(e, ERR_INVALID, "cannot truncate %s: length out of range", f->path);
    if (ftruncate(f->fd, (off_t)len) < 0)
        return plat_posix_fail(e, errno, "cannot truncate", f->path);
    return 0;
}

int plat_file_seek(struct plat_file *f, uint64_t off, struct err *e)
{
    if (off > (uint64_t)INT64_MAX)
        return err_set(e, ERR_INVALID, "cannot seek in %s: offset out of range", f->path);
    if (lseek(f->fd, (off_t)off, SEEK_SET) < 0)
        return plat_posix_fail(e, errno, "cannot seek in", f->path);
    return 0;
}

int plat_file_set_hidden(struct plat_file *f, int hidden, struct err *e)
{
    (void)f;
    (void)hidden;
    (void)e;
    return 0;
}

int plat_file_set_user_access(struct plat_file *f, unsigned access, struct err *e)
{
    mode_t mode = 0;

    if (access & PLAT_ACCESS_READ)
        mode |= S_IRUSR;
    if (access & PLAT_ACCESS_WRITE)
        mode |= S_IWUSR;
    if (access & PLAT_ACCESS_EXECUTE)
        mode |= S_IXUSR;
    if (fchmod(f->fd, mode) < 0)
        return plat_posix_fail(e, errno, "cannot set the permissions of", f->path);
    return 0;
}

int plat_file_final_path(struct plat_file *f, char *out, size_t cap, struct err *e)
{
    char link[64];
    char buf[PATH_MAX + 1];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", f->fd);
    n = readlink(link, buf, sizeof(buf));
    if (n < 0) {
        if (errno == ENOENT)
            return err_set(e, ERR_UNSUPPORTED,
                           "cannot find the final path of %s: /proc is not mounted", f->path);
        return plat_posix_fail(e, errno, "cannot find the final path of", f->path);
    }
    if ((size_t)n >= sizeof(buf))
        return err_set(e, ERR_TOO_LARGE, "the final path of %s is too long", f->path);
    buf[n] = '\0';
    if (buf[0] != '/')
        return err_set(e, ERR_IO, "the final path of %s is not a path (%s)", f->path, buf);
    if ((size_t)n + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the final path of %s does not fit in %zu bytes", f->path,
                       cap);
    memcpy(out, buf, (size_t)n + 1);
    return 0;
}

int plat_file_delete(struct plat_file *f, struct err *e)
{
    char path[PATH_MAX + 1];
    struct stat by_fd, by_path;
    int rc;

    rc = plat_file_final_path(f, path, sizeof(path), e);
    if (rc < 0)
        return err_prefix(e, "cannot delete %s", f->path);
    if (fstat(f->fd, &by_fd) < 0)
        return plat_posix_fail(e, errno, "cannot stat", f->path);
    if (lstat(path, &by_path) < 0)
        return plat_posix_fail(e, errno, "cannot delete", path);
    if (by_fd.st_dev != by_path.st_dev || by_fd.st_ino != by_path.st_ino)
        return err_set(e, ERR_BUSY, "cannot delete %s: it was replaced while open", path);
    if (unlink(path) < 0)
        return plat_posix_fail(e, errno, "cannot delete", path);
    return 0;
}

void plat_file_close(struct plat_file *f)
{
    if (!f)
        return;
    close(f->fd);
    free(f->path);
    free(f);
}

int plat_file_stat(struct plat_file *f, struct plat_file_info *out, struct err *e)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return plat_posix_fail(e, errno, "cannot stat", f->path);
    fill_info(&st, f->path, out);
    return 0;
}

int plat_path_stat(const char *path, struct plat_file_info *out, struct err *e)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return plat_posix_fail(e, errno, "cannot stat", path);
    fill_info(&st, path, out);
    return 0;
}

int plat_path_replace(const char *src, const char *dst, struct err *e)
{
    if (rename(src, dst) < 0) {
        char what[64 + PATH_MAX];
        snprintf(what, sizeof(what), "cannot replace %s by", dst);
        return plat_posix_fail(e, errno, what, src);
    }
    return 0;
}

int plat_path_rename_new(const char *src, const char *dst, struct err *e)
{
    int en;
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    en = errno;
    if (en == EINVAL || en == ENOSYS || en == EOPNOTSUPP) {
        /* The file system cannot do RENAME_NOREPLACE: link() fails if dst exists. */
        if (link(src, dst) == 0) {
            if (unlink(src) < 0) {
                en = errno;
                unlink(dst);
                return plat_posix_fail(e, en, "cannot rename (unlink)", src);
            }
            return 0;
        }
        en = errno;
    }
    if (en == EEXIST)
        return err_set(e, ERR_EXISTS, "cannot rename %s to %s: the target exists", src, dst);
    {
        char what[64 + PATH_MAX];
        snprintf(what, sizeof(what), "cannot rename %s to", src);
        return plat_posix_fail(e, en, what, dst);
    }
}

int plat_path_remove(const char *path, struct err *e)
{
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            return err_set(e, ERR_NOT_FOUND, "cannot delete %s: it does not exist", path);
        return plat_posix_fail(e, errno, "cannot delete", path);
    }
    return 0;
}

int plat_path_restrict_to_admins(const char *path, struct err *e)
{
    struct stat st;
    int rc = 0;
    int fd;

    do {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ELOOP)
            return err_set(e, ERR_PERMISSION,
                           "cannot restrict %s: it is a symbolic link; refusing to follow it",
                           path);
        return plat_posix_fail(e, errno, "cannot restrict", path);
    }
    if (fstat(fd, &st) < 0) {
        rc = plat_posix_fail(e, errno, "cannot stat", path);
        goto out;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_INVALID, "cannot restrict %s: not a file or directory", path);
        goto out;
    }
    if (fchmod(fd, S_ISDIR(st.st_mode) ? 0700 : 0600) < 0)
        rc = plat_posix_fail(e, errno, "cannot restrict (chmod)", path);
out:
    close(fd);
    return rc;
}
