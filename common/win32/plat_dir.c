/*
 * win32/plat_dir.c - directories on Windows: listing (FindFirstFileExW), creating, removing,
 * final paths of directories, free space (GetDiskFreeSpaceExW), the executable's directory
 * and symbolic links.
 */
#include "plat.h"
#include "wide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct plat_dir {
    HANDLE find;
    WIN32_FIND_DATAW data;
    int have; /* data holds an entry not yet returned */
    char *path;
};

int plat_dir_open(const char *path, struct plat_dir **out, struct err *e)
{
    struct plat_dir *d = NULL;
    wchar_t *w = NULL, *pattern = NULL;
    size_t n;
    int rc = 0;

    *out = NULL;
    w = plat_w_path(path, e);
    if (!w)
        return e ? e->code : ERR_INVALID;
    n = wcslen(w);
    pattern = malloc((n + 3) * sizeof(wchar_t));
    d = calloc(1, sizeof(*d));
    if (!pattern || !d || !(d->path = _strdup(path))) {
        rc = err_set(e, ERR_NOMEM, "cannot list %s: out of memory", path);
        goto out;
    }
    wcscpy(pattern, w);
    if (n > 0 && pattern[n - 1] != L'\\')
        wcscat(pattern, L"\\");
    wcscat(pattern, L"*");
    d->find = FindFirstFileExW(pattern, FindExInfoBasic, &d->data, FindExSearchNameMatch, NULL,
                               FIND_FIRST_EX_LARGE_FETCH);
    if (d->find == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        DWORD a = GetFileAttributesW(w);
        if (err == ERROR_FILE_NOT_FOUND && a != INVALID_FILE_ATTRIBUTES &&
            (a & FILE_ATTRIBUTE_DIRECTORY)) {
            d->have = 0; /* an empty directory (not even "." on some file systems) */
        } else {
            if (err == ERROR_DIRECTORY)
                rc = err_set(e, ERR_INVALID, "cannot list %s: not a directory", path);
            else
                rc = plat_win_fail(e, err, "cannot list", path);
            goto out;
        }
    } else {
        d->have = 1;
    }
    *out = d;
    d = NULL;
out:
    if (d) {
        free(d->path);
        free(d);
    }
    free(pattern);
    free(w);
    return rc;
}

int plat_dir_next(struct plat_dir *d, struct plat_dir_entry *ent, struct err *e)
{
    for (;;) {
        if (!d->have) {
            if (d->find == INVALID_HANDLE_VALUE)
                return 0;
            if (!FindNextFileW(d->find, &d->data)) {
                DWORD err = GetLastError();
                if (err == ERROR_NO_MORE_FILES)
                    return 0;
                return plat_win_fail(e, err, "cannot list", d->path);
            }
        }
        d->have = 0;
        if (wcscmp(d->data.cFileName, L".") == 0 || wcscmp(d->data.cFileName, L"..") == 0)
            continue;
        memset(ent, 0, sizeof(*ent));
        /* A name that is not valid UTF-16 cannot be named in UTF-8: it is skipped. */
        if (plat_utf8_from_w_buf(d->data.cFileName, ent->name, sizeof(ent->name), NULL) < 0)
            continue;
        DWORD a = d->data.dwFileAttributes;
        ent->info.is_dir = (a & FILE_ATTRIBUTE_DIRECTORY) ? 1 : 0;
        ent->info.size =
            ent->info.is_dir ? 0 : (((uint64_t)d->data.nFileSizeHigh << 32) | d->data.nFileSizeLow);
        ent->info.mtime = plat_filetime_to_unix(&d->data.ftLastWriteTime);
        ent->info.is_link = (a & FILE_ATTRIBUTE_REPARSE_POINT) ? 1 : 0;
        ent->info.is_hidden = (a & FILE_ATTRIBUTE_HIDDEN) ? 1 : 0;
        ent->info.is_system = (a & FILE_ATTRIBUTE_SYSTEM) ? 1 : 0;
        return 1;
    }
}

void plat_dir_close(struct plat_dir *d)
{
    if (!d)
        return;
    if (d->find != INVALID_HANDLE_VALUE)
        FindClose(d->find);
    free(d->path);
    free(d);
}

static int create_one(const wchar_t *w, const char *path, struct err *e)
{
    DWORD attrs;
    if (CreateDirectoryW(w, NULL))
        return 0;
    DWORD err = GetLastError();
    if (err == ERROR_ALREADY_EXISTS || err == ERROR_ACCESS_DENIED) {
        attrs = GetFileAttributesW(w);
        if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
            return 0;
        if (err == ERROR_ALREADY_EXISTS)
            return err_set(e, ERR_EXISTS, "cannot create directory %s: a file has that name", path);
    }
    return plat_win_fail(e, err, "cannot create directory", path);
}

int plat_dir_create(const char *path, struct err *e)
{
    wchar_t *w = plat_w_path(path, e);
    int rc;
    if (!w)
        return e ? e->code : ERR_INVALID;
    rc = create_one(w, path, e);
    free(w);
    return rc;
}

/* Index in w (a \\?\ long path) of the first character after its root. */
static size_t long_root_len(const wchar_t *w)
{
    size_t n = wcslen(w), i;
    if (wcsncmp(w, L"\\\\?\\UNC\\", 8) == 0) {
        /* \\?\UNC\server\share\ */
        int comps = 0;
        i = 8;
        while (i < n && comps < 2) {
            while (i < n && w[i] != L'\\')
                i++;
            comps++;
            if (i < n)
                i++;
        }
        return i;
    }
    if (wcsncmp(w, L"\\\\?\\", 4) == 0 || wcsncmp(w, L"\\\\.\\", 4) == 0) {
        /* \\?\C:\ or \\?\Volume{...}\ */
        i = 4;
        while (i < n && w[i] != L'\\')
            i++;
        return i < n ? i + 1 : i;
    }
    return 0;
}

int plat_dir_create_all(const char *path, struct err *e)
{
    wchar_t *w;
    size_t n, i;
    int rc = 0;

    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot create a directory: empty path");
    w = plat_w_path(path, e);
    if (!w)
        return e ? e->code : ERR_INVALID;
    n = wcslen(w);
    while (n > 0 && w[n - 1] == L'\\')
        w[--n] = 0;
    for (i = long_root_len(w); i <= n; i++) {
        if (w[i] != L'\\' && w[i] != 0)
            continue;
        if (i == 0 || w[i - 1] == L'\\')
            continue;
        wchar_t saved = w[i];
        w[i] = 0;
        rc = create_one(w, path, e);
        w[i] = saved;
        if (rc < 0)
            break;
    }
    free(w);
    return rc;
}

int plat_dir_remove(const char *path, struct err *e)
{
    wchar_t *w = plat_w_path(path, e);
    DWORD attrs;
    int rc = 0;
    if (!w)
        return e ? e->code : ERR_INVALID;
    attrs = GetFileAttributesW(w);
    if (attrs == INVALID_FILE_ATTRIBUTES) {
        DWORD err = GetLastError();
        if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
            rc = err_set(e, ERR_NOT_FOUND, "cannot remove directory %s: it does not exist", path);
        else
            rc = plat_win_fail(e, err, "cannot remove directory", path);
    } else if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) {
        rc = err_set(e, ERR_INVALID, "cannot remove directory %s: it is a symbolic link", path);
    } else if (!RemoveDirectoryW(w)) {
        rc = plat_win_fail(e, GetLastError(), "cannot remove directory", path);
    }
    free(w);
    return rc;
}

int plat_dir_sync(const char *path, struct err *e)
{
    /* NTFS journals directory changes; MoveFileExW(WRITE_THROUGH) already flushed it. */
    (void)path;
    (void)e;
    return 0;
}

int plat_dir_final_path(const char *path, char *out, size_t cap, struct err *e)
{
    wchar_t *w = plat_w_path(path, e);
    wchar_t stackbuf[MAX_PATH + 1];
    wchar_t *fp = stackbuf;
    BY_HANDLE_FILE_INFORMATION bhi;
    HANDLE h;
    DWORD n;
    size_t len;
    int rc = 0;

    if (!w)
        return e ? e->code : ERR_INVALID;
    /* Follows links on purpose: the point is to learn where the directory really is. */
    h = CreateFileW(w, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE)
        return plat_win_fail(e, GetLastError(), "cannot resolve directory", path);
    if (!GetFileInformationByHandle(h, &bhi)) {
        rc = plat_win_fail(e, GetLastError(), "cannot query", path);
        goto out;
    }
    if (!(bhi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
        rc = err_set(e, ERR_INVALID, "%s is not a directory", path);
        goto out;
    }
    n = GetFinalPathNameByHandleW(h, fp, MAX_PATH + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (n > MAX_PATH) {
        fp = malloc(((size_t)n + 1) * sizeof(wchar_t));
        if (!fp) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        n = GetFinalPathNameByHandleW(h, fp, n + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    }
    if (n == 0) {
        rc = plat_win_fail(e, GetLastError(), "cannot find the final path of", path);
        goto out;
    }
    plat_w_strip_long_prefix(fp);
    len = wcslen(fp);
    /* No trailing separator, except a drive root "C:\". */
    while (len > 0 && fp[len - 1] == L'\\' && !(len == 3 && fp[1] == L':'))
        fp[--len] = 0;
    rc = plat_utf8_from_w_buf(fp, out, cap, e);
    if (rc < 0)
        err_prefix(e, "the final path of %s", path);
out:
    if (fp != stackbuf)
        free(fp);
    CloseHandle(h);
    return rc;
}

int plat_disk_free(const char *path, uint64_t *free_bytes, uint64_t *total_bytes, struct err *e)
{
    ULARGE_INTEGER avail, total, all_free;
    wchar_t *w = plat_w_path(path, e);
    size_t n;
    int rc = 0;
    if (!w)
        return e ? e->code : ERR_INVALID;
    /* GetDiskFreeSpaceExW wants a directory with a trailing separator. */
    n = wcslen(w);
    wchar_t *wd = malloc((n + 2) * sizeof(wchar_t));
    if (!wd) {
        free(w);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    wcscpy(wd, w);
    if (n > 0 && wd[n - 1] != L'\\')
        wcscat(wd, L"\\");
    if (!GetDiskFreeSpaceExW(wd, &avail, &total, &all_free)) {
        rc = plat_win_fail(e, GetLastError(), "cannot query free space of", path);
    } else {
        if (free_bytes)
            *free_bytes = avail.QuadPart;
        if (total_bytes)
            *total_bytes = total.QuadPart;
    }
    free(wd);
    free(w);
    return rc;
}

int plat_exe_dir(char *out, size_t cap, struct err *e)
{
    DWORD size = MAX_PATH, n;
    wchar_t *w = NULL;
    wchar_t *slash;
    int rc = 0;

    for (;;) {
        wchar_t *nw = realloc(w, (size_t)size * sizeof(wchar_t));
        if (!nw) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        w = nw;
        n = GetModuleFileNameW(NULL, w, size);
        if (n == 0) {
            rc = plat_win_fail(e, GetLastError(), "cannot find the executable's path", NULL);
            goto out;
        }
        if (n < size)
            break;
        if (size >= 32768) {
            rc = err_set(e, ERR_TOO_LARGE, "the executable's path is too long");
            goto out;
        }
        size *= 2;
    }
    plat_w_strip_long_prefix(w);
    slash = wcsrchr(w, L'\\');
    if (!slash) {
        rc = err_set(e, ERR_IO, "the executable's path is not absolute");
        goto out;
    }
    if (slash - w == 2 && w[1] == L':')
        slash[1] = 0; /* keep "C:\" */
    else
        *slash = 0;
    rc = plat_utf8_from_w_buf(w, out, cap, e);
out:
    free(w);
    return rc;
}

#ifndef SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE
#define SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE 0x2
#endif

int plat_symlink_create(const char *target, const char *linkpath, int is_dir, struct err *e)
{
    wchar_t *wl = plat_w_path(linkpath, e);
    wchar_t *wt = NULL;
    DWORD fl = is_dir ? SYMBOLIC_LINK_FLAG_DIRECTORY : 0;
    int rc = 0;

    if (!wl)
        return e ? e->code : ERR_INVALID;
    wt = plat_w_from_utf8(target, e);
    if (!wt) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    for (wchar_t *p = wt; *p; p++)
        if (*p == L'/')
            *p = L'\\';
    if (!CreateSymbolicLinkW(wl, wt, fl | SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE)) {
        DWORD err = GetLastError();
        /* Windows before 10 1703 does not know the unprivileged flag. */
        if (err == ERROR_INVALID_PARAMETER && CreateSymbolicLinkW(wl, wt, fl))
            goto check;
        if (err == ERROR_INVALID_PARAMETER)
            err = GetLastError();
        rc = plat_win_fail(e, err, "cannot create symbolic link", linkpath);
        goto out;
    }
check:
    /* Some systems (Wine) report success without making a link: never pretend. */
    {
        DWORD a = GetFileAttributesW(wl);
        if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_REPARSE_POINT))
            rc = err_set(e, ERR_UNSUPPORTED,
                         "cannot create symbolic link %s: the system reported success but made "
                         "no link (Wine does not implement symbolic links)",
                         linkpath);
    }
out:
    free(wl);
    free(wt);
    return rc;
}
