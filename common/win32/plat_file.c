/*
 * win32/plat_file.c - files and paths on Windows: CreateFileW on long (\\?\) paths, never
 * through a reparse point (FILE_FLAG_OPEN_REPARSE_POINT + attribute check), CREATE_NEW,
 * final paths (GetFinalPathNameByHandleW), replace/rename (MoveFileExW), delete through the
 * handle, and the SYSTEM + Administrators DACL.
 */
#include "plat.h"
#include "wide.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct plat_file {
    HANDLE h;
    char *path; /* as given, for messages */
};

/* Protected DACLs: SYSTEM and BUILTIN\Administrators full control, nothing inherited. */
#define SDDL_ADMINS_FILE L"D:P(A;;FA;;;SY)(A;;FA;;;BA)"
#define SDDL_ADMINS_DIR  L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

static void fill_info_attrs(DWORD attrs, uint64_t size, const FILETIME *mtime,
                            struct plat_file_info *out)
{
    memset(out, 0, sizeof(*out));
    out->is_dir = (attrs & FILE_ATTRIBUTE_DIRECTORY) ? 1 : 0;
    out->size = out->is_dir ? 0 : size;
    out->mtime = plat_filetime_to_unix(mtime);
    out->is_link = (attrs & FILE_ATTRIBUTE_REPARSE_POINT) ? 1 : 0;
    out->is_hidden = (attrs & FILE_ATTRIBUTE_HIDDEN) ? 1 : 0;
    out->is_system = (attrs & FILE_ATTRIBUTE_SYSTEM) ? 1 : 0;
}

static int build_sd(int is_dir, PSECURITY_DESCRIPTOR *sd, struct err *e)
{
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
            is_dir ? SDDL_ADMINS_DIR : SDDL_ADMINS_FILE, SDDL_REVISION_1, sd, NULL))
        return plat_win_fail(e, GetLastError(), "cannot build the administrators-only ACL", NULL);
    return 0;
}

int plat_file_open(const char *path, int flags, struct plat_file **out, struct err *e)
{
    struct plat_file *f = NULL;
    wchar_t *wpath = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa;
    BY_HANDLE_FILE_INFORMATION bhi;
    HANDLE h = INVALID_HANDLE_VALUE;
    DWORD access = 0, disposition, attrs, err;
    int rc = 0;
    int created = 0;

    *out = NULL;
    if (!path || !*path)
        return err_set(e, ERR_INVALID, "cannot open a file: empty path");
    if ((flags & (PLAT_OPEN_READ | PLAT_OPEN_WRITE)) == 0)
        return err_set(e, ERR_INVALID, "cannot open %s: neither read nor write access asked", path);
    if (flags & PLAT_OPEN_READ)
        access |= GENERIC_READ;
    if (flags & PLAT_OPEN_WRITE) {
        if (flags & PLAT_OPEN_APPEND)
            /* Append-only access: every write goes to the current end of the file. */
            access |= FILE_APPEND_DATA | FILE_WRITE_ATTRIBUTES | READ_CONTROL | SYNCHRONIZE;
        else
            access |= GENERIC_WRITE;
    }
    if (flags & PLAT_OPEN_CREATE_NEW) {
        disposition = CREATE_NEW;
        /* DELETE: plat_file_delete() can undo it through the handle; WRITE_DAC and
         * READ_CONTROL: plat_file_set_user_access() (granted to the creator whatever the new
         * file's DACL says) */
        access |= DELETE | WRITE_DAC | READ_CONTROL;
    } else if (flags & (PLAT_OPEN_TRUNCATE | PLAT_OPEN_APPEND)) {
        disposition = OPEN_ALWAYS; /* truncated below, after the reparse-point check */
    } else {
        disposition = OPEN_EXISTING;
    }
    attrs = (flags & PLAT_OPEN_HIDDEN) ? FILE_ATTRIBUTE_HIDDEN : FILE_ATTRIBUTE_NORMAL;

    wpath = plat_w_path(path, e);
    if (!wpath) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.nLength = sizeof(sa);
    sa.bInheritHandle = FALSE;
    if (flags & PLAT_OPEN_PRIVATE) {
        rc = build_sd(0, &sd, e);
        if (rc < 0)
            goto out;
        sa.lpSecurityDescriptor = sd;
    }
    h = CreateFileW(wpath, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                    disposition, attrs | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        if (err == ERROR_FILE_EXISTS || err == ERROR_ALREADY_EXISTS) {
            rc = err_set(e, ERR_EXISTS, "cannot create %s: something with that name exists", path);
        } else if (err == ERROR_ACCESS_DENIED) {
            DWORD a = GetFileAttributesW(wpath);
            if (a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY))
                rc = err_set(e, ERR_INVALID, "cannot open %s: it is a directory", path);
            else
                rc = plat_win_fail(e, err, "cannot open", path);
        } else {
            rc = plat_win_fail(e, err, "cannot open", path);
        }
        goto out;
    }
    created = (flags & PLAT_OPEN_CREATE_NEW) ||
              (disposition == OPEN_ALWAYS && GetLastError() != ERROR_ALREADY_EXISTS);
    if (!GetFileInformationByHandle(h, &bhi)) {
        rc = plat_win_fail(e, GetLastError(), "cannot query", path);
        goto out;
    }
    if (bhi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
        rc = err_set(e, ERR_PERMISSION,
                     "cannot open %s: it is a symbolic link or reparse point; refusing to "
                     "follow it",
                     path);
        goto out;
    }
    if (bhi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
        rc = err_set(e, ERR_INVALID, "cannot open %s: it is a directory", path);
        goto out;
    }
    if (GetFileType(h) != FILE_TYPE_DISK) {
        rc = err_set(e, ERR_INVALID, "cannot open %s: not a regular file (device or pipe)", path);
        goto out;
    }
    if ((flags & PLAT_OPEN_TRUNCATE) && !(flags & PLAT_OPEN_CREATE_NEW)) {
        FILE_END_OF_FILE_INFO eof;
        eof.EndOfFile.QuadPart = 0;
        if (!SetFileInformationByHandle(h, FileEndOfFileInfo, &eof, sizeof(eof))) {
            rc = plat_win_fail(e, GetLastError(), "cannot truncate", path);
            goto out;
        }
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->path = _strdup(path))) {
        rc = err_set(e, ERR_NOMEM, "cannot open %s: out of memory", path);
        goto out;
    }
    f->h = h;
    h = INVALID_HANDLE_VALUE;
    *out = f;
    f = NULL;
out:
    if (h != INVALID_HANDLE_VALUE) {
        if (created && rc != 0) {
            FILE_DISPOSITION_INFO di;
            di.DeleteFile = TRUE;
            if (!SetFileInformationByHandle(h, FileDispositionInfo, &di, sizeof(di)))
                DeleteFileW(wpath);
        }
        CloseHandle(h);
    }
    if (f) {
        free(f->path);
        free(f);
    }
    if (sd)
        LocalFree(sd);
    free(wpath);
    return rc;
}

int plat_file_read(struct plat_file *f, void *buf, size_t cap, size_t *got, struct err *e)
{
    DWORD n = 0;
    DWORD want = cap > (1u << 30) ? (1u << 30) : (DWORD)cap;
    *got = 0;
    if (!ReadFile(f->h, buf, want, &n, NULL)) {
        DWORD err = GetLastError();
        if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE)
            return 0;
        return plat_win_fail(e, err, "cannot read", f->path);
    }
    *got = n;
    return 0;
}

intptr_t plat_file_os_handle(const struct plat_file *f)
{
    return (intptr_t)f->h;
}

int plat_file_pread(struct plat_file *f, void *buf, size_t cap, uint64_t off, size_t *got,
                    struct err *e)
{
    OVERLAPPED ov;
    LARGE_INTEGER zero, pos;
    DWORD n = 0;
    DWORD want = cap > (1u << 30) ? (1u << 30) : (DWORD)cap;
    int rc = 0;

    *got = 0;
    /* A synchronous ReadFile at an offset moves the file pointer: put it back after. */
    zero.QuadPart = 0;
    if (!SetFilePointerEx(f->h, zero, &pos, FILE_CURRENT))
        return plat_win_fail(e, GetLastError(), "cannot read", f->path);
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)(off & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)(off >> 32);
    if (!ReadFile(f->h, buf, want, &n, &ov)) {
        DWORD err = GetLastError();
        if (err != ERROR_HANDLE_EOF)
            rc = plat_win_fail(e, err, "cannot read", f->path);
        n = 0;
    }
    SetFilePointerEx(f->h, pos, NULL, FILE_BEGIN);
    if (rc == 0)
        *got = n;
    return rc;
}

int plat_file_write_all(struct plat_file *f, const void *buf, size_t len, struct err *e)
{
    const unsigned char *p = buf;
    while (len > 0) {
        DWORD chunk = len > (1u << 30) ? (1u << 30) : (DWORD)len;
        DWORD n = 0;
        if (!WriteFile(f->h, p, chunk, &n, NULL))
            return plat_win_fail(e, GetLastError(), "cannot write", f->path);
        if (n == 0)
            return err_set(e, ERR_IO, "cannot write %s: the system wrote nothing", f->path);
        p += n;
        len -= n;
    }
    return 0;
}

int plat_file_sync(struct plat_file *f, struct err *e)
{
    if (!FlushFileBuffers(f->h))
        return plat_win_fail(e, GetLastError(), "cannot flush", f->path);
    return 0;
}

int plat_file_truncate(struct plat_file *f, uint64_t len, struct err *e)
{
    FILE_END_OF_FILE_INFO eof;
    if (len > (uint64_t)INT64_MAX)
        return err_set(e, ERR_INVALID, "cannot truncate %s: length out of range", f->path);
    eof.EndOfFile.QuadPart = (LONGLONG)len;
    if (!SetFileInformationByHandle(f->h, FileEndOfFileInfo, &eof, sizeof(eof)))
        return plat_win_fail(e, GetLastError(), "cannot truncate", f->path);
    return 0;
}

int plat_file_seek(struct plat_file *f, uint64_t off, struct err *e)
{
    LARGE_INTEGER pos;
    if (off > (uint64_t)INT64_MAX)
        return err_set(e, ERR_INVALID, "cannot seek in %s: offset out of range", f->path);
    pos.QuadPart = (LONGLONG)off;
    if (!SetFilePointerEx(f->h, pos, NULL, FILE_BEGIN))
        return plat_win_fail(e, GetLastError(), "cannot seek in", f->path);
    return 0;
}

int plat_file_set_hidden(struct plat_file *f, int hidden, struct err *e)
{
    FILE_BASIC_INFO bi;
    if (!GetFileInformationByHandleEx(f->h, FileBasicInfo, &bi, sizeof(bi)))
        return plat_win_fail(e, GetLastError(), "cannot read the attributes of", f->path);
    if (hidden)
        bi.FileAttributes |= FILE_ATTRIBUTE_HIDDEN;
    else
        bi.FileAttributes &= ~(DWORD)FILE_ATTRIBUTE_HIDDEN;
    if (bi.FileAttributes == 0)
        bi.FileAttributes = FILE_ATTRIBUTE_NORMAL;
    /* zero times mean "leave unchanged" */
    bi.CreationTime.QuadPart = 0;
    bi.LastAccessTime.QuadPart = 0;
    bi.LastWriteTime.QuadPart = 0;
    bi.ChangeTime.QuadPart = 0;
    if (!SetFileInformationByHandle(f->h, FileBasicInfo, &bi, sizeof(bi)))
        return plat_win_fail(e, GetLastError(), "cannot set the attributes of", f->path);
    return 0;
}

/* The final path of any handle, without the \\?\ prefix, as UTF-8. */
static int handle_final_path(HANDLE h, const char *what, char *out, size_t cap, struct err *e)
{
    wchar_t stackbuf[MAX_PATH + 1];
    wchar_t *w = stackbuf;
    DWORD n;
    int rc;

    n = GetFinalPathNameByHandleW(h, w, MAX_PATH + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (n > MAX_PATH) {
        w = malloc(((size_t)n + 1) * sizeof(wchar_t));
        if (!w)
            return err_set(e, ERR_NOMEM, "out of memory");
        n = GetFinalPathNameByHandleW(h, w, n + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    }
    if (n == 0) {
        rc = plat_win_fail(e, GetLastError(), "cannot find the final path of", what);
        goto out;
    }
    plat_w_strip_long_prefix(w);
    rc = plat_utf8_from_w_buf(w, out, cap, e);
    if (rc < 0)
        err_prefix(e, "the final path of %s", what);
out:
    if (w != stackbuf)
        free(w);
    return rc;
}

int plat_win_user_dacl(PSID user, DWORD admin_rights, DWORD user_rights, DWORD inheritance,
                       PACL *out, struct err *e)
{
    SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
    PSID system = NULL, admins = NULL;
    EXPLICIT_ACCESSW ea[3];
    DWORD err;
    int rc = 0;

    *out = NULL;
    if (!AllocateAndInitializeSid(&nt, 1, SECURITY_LOCAL_SYSTEM_RID, 0, 0, 0, 0, 0, 0, 0,
                                  &system) ||
        !AllocateAndInitializeSid(&nt, 2, SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS, 0,
                                  0, 0, 0, 0, 0, &admins)) {
        rc = plat_win_fail(e, GetLastError(), "cannot build the well-known SIDs", NULL);
        goto out;
    }
    memset(ea, 0, sizeof(ea));
    for (int i = 0; i < 3; i++) {
        ea[i].grfAccessPermissions = i < 2 ? admin_rights : user_rights;
        ea[i].grfAccessMode = SET_ACCESS;
        ea[i].grfInheritance = inheritance;
        ea[i].Trustee.TrusteeForm = TRUSTEE_IS_SID;
    }
    ea[0].Trustee.ptstrName = (LPWSTR)system;
    ea[1].Trustee.ptstrName = (LPWSTR)admins;
    ea[2].Trustee.ptstrName = (LPWSTR)user;
    if ((err = SetEntriesInAclW(user_rights ? 3 : 2, ea, NULL, out)) != ERROR_SUCCESS)
        rc = plat_win_fail(e, err, "cannot build an access list", NULL);
out:
    if (system)
        FreeSid(system);
    if (admins)
        FreeSid(admins);
    return rc;
}

int plat_win_user_file_dacl(PSID user, unsigned access, PACL *out, struct err *e)
{
    DWORD mask = 0;

    if (access & PLAT_ACCESS_READ)
        mask |= FILE_GENERIC_READ;
    if (access & PLAT_ACCESS_WRITE)
        mask |= FILE_GENERIC_WRITE | DELETE;
    if (access & PLAT_ACCESS_EXECUTE)
        mask |= FILE_GENERIC_EXECUTE;
    return plat_win_user_dacl(user, FILE_ALL_ACCESS, mask, NO_INHERITANCE, out, e);
}

int plat_file_set_user_access(struct plat_file *f, unsigned access, struct err *e)
{
    HANDLE token = NULL;
    TOKEN_USER *tu = NULL;
    PACL dacl = NULL;
    DWORD need = 0, err;
    int rc = 0;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        rc = plat_win_fail(e, GetLastError(), "cannot read this process's user for", f->path);
        goto out;
    }
    GetTokenInformation(token, TokenUser, NULL, 0, &need);
    if (need == 0 || !(tu = malloc(need)) ||
        !GetTokenInformation(token, TokenUser, tu, need, &need)) {
        rc = plat_win_fail(e, GetLastError(), "cannot read this process's user for", f->path);
        goto out;
    }
    if ((rc = plat_win_user_file_dacl(tu->User.Sid, access, &dacl, e)) < 0)
        goto out;
    err = SetSecurityInfo(f->h, SE_FILE_OBJECT,
                          DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
                          NULL, dacl, NULL);
    if (err != ERROR_SUCCESS)
        rc = plat_win_fail(e, err, "cannot set the access list of", f->path);
out:
    if (dacl)
        LocalFree(dacl);
    free(tu);
    if (token)
        CloseHandle(token);
    return rc;
}

int plat_file_final_path(struct plat_file *f, char *out, size_t cap, struct err *e)
{
    return handle_final_path(f->h, f->path, out, cap, e);
}

int plat_file_delete(struct plat_file *f, struct err *e)
{
    FILE_DISPOSITION_INFO di;
    char *path;
    wchar_t *w;
    int rc = 0;

    di.DeleteFile = TRUE;
    if (SetFileInformationByHandle(f->h, FileDispositionInfo, &di, sizeof(di)))
        return 0;
    /* No DELETE access on this handle: delete the file the handle resolves to now. */
    path = malloc(32768 * 3);
    if (!path)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = handle_final_path(f->h, f->path, path, 32768 * 3, e);
    if (rc < 0)
        goto out;
    w = plat_w_path(path, e);
    if (!w) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    if (!DeleteFileW(w))
        rc = plat_win_fail(e, GetLastError(), "cannot delete", path);
    free(w);
out:
    free(path);
    return rc;
}

void plat_file_close(struct plat_file *f)
{
    if (!f)
        return;
    CloseHandle(f->h);
    free(f->path);
    free(f);
}

int plat_file_stat(struct plat_file *f, struct plat_file_info *out, struct err *e)
{
    BY_HANDLE_FILE_INFORMATION bhi;
    if (!GetFileInformationByHandle(f->h, &bhi))
        return plat_win_fail(e, GetLastError(), "cannot query", f->path);
    fill_info_attrs(bhi.dwFileAttributes, ((uint64_t)bhi.nFileSizeHigh << 32) | bhi.nFileSizeLow,
                    &bhi.ftLastWriteTime, out);
    return 0;
}

int plat_path_stat(const char *path, struct plat_file_info *out, struct err *e)
{
    WIN32_FILE_ATTRIBUTE_DATA ad;
    wchar_t *w = plat_w_path(path, e);
    int rc = 0;
    if (!w)
        return e ? e->code : ERR_INVALID;
    /* Reports the link itself, not its target. */
    if (!GetFileAttributesExW(w, GetFileExInfoStandard, &ad))
        rc = plat_win_fail(e, GetLastError(), "cannot query", path);
    else
        fill_info_attrs(ad.dwFileAttributes, ((uint64_t)ad.nFileSizeHigh << 32) | ad.nFileSizeLow,
                        &ad.ftLastWriteTime, out);
    free(w);
    return rc;
}

static int move_file(const char *src, const char *dst, DWORD mflags, struct err *e)
{
    wchar_t *ws = plat_w_path(src, e), *wd = NULL;
    int rc = 0;
    if (!ws)
        return e ? e->code : ERR_INVALID;
    wd = plat_w_path(dst, e);
    if (!wd) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    if (!MoveFileExW(ws, wd, mflags)) {
        DWORD err = GetLastError();
        if (!(mflags & MOVEFILE_REPLACE_EXISTING) &&
            (err == ERROR_ALREADY_EXISTS || err == ERROR_FILE_EXISTS)) {
            rc = err_set(e, ERR_EXISTS, "cannot rename %s to %s: the target exists", src, dst);
        } else {
            size_t wl = strlen(dst) + 32;
            char *what = malloc(wl);
            if (what)
                snprintf(what, wl, "%s %s by",
                         (mflags & MOVEFILE_REPLACE_EXISTING) ? "cannot replace"
                                                              : "cannot rename to",
                         dst);
            rc = plat_win_fail(e, err, what ? what : "cannot move", src);
            free(what);
        }
    }
out:
    free(ws);
    free(wd);
    return rc;
}

int plat_path_replace(const char *src, const char *dst, struct err *e)
{
    return move_file(src, dst, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH, e);
}

int plat_path_rename_new(const char *src, const char *dst, struct err *e)
{
    return move_file(src, dst, MOVEFILE_WRITE_THROUGH, e);
}

int plat_path_remove(const char *path, struct err *e)
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
            rc = err_set(e, ERR_NOT_FOUND, "cannot delete %s: it does not exist", path);
        else
            rc = plat_win_fail(e, err, "cannot delete", path);
        goto out;
    }
    if (attrs & FILE_ATTRIBUTE_DIRECTORY) {
        if (!(attrs & FILE_ATTRIBUTE_REPARSE_POINT)) {
            rc = err_set(e, ERR_INVALID, "cannot delete %s: it is a directory", path);
            goto out;
        }
        /* A directory link or junction: removes the link, never the target's contents. */
        if (!RemoveDirectoryW(w))
            rc = plat_win_fail(e, GetLastError(), "cannot delete", path);
        goto out;
    }
    if (!DeleteFileW(w)) {
        DWORD err = GetLastError();
        if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
            rc = err_set(e, ERR_NOT_FOUND, "cannot delete %s: it does not exist", path);
        else
            rc = plat_win_fail(e, err, "cannot delete", path);
    }
out:
    free(w);
    return rc;
}

int plat_path_restrict_to_admins(const char *path, struct err *e)
{
    wchar_t *w = plat_w_path(path, e);
    HANDLE h = INVALID_HANDLE_VALUE;
    PSECURITY_DESCRIPTOR sd = NULL;
    BY_HANDLE_FILE_INFORMATION bhi;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    DWORD err;
    int rc = 0;
    int is_dir;

    if (!w)
        return e ? e->code : ERR_INVALID;
    /* Work on a handle: the object checked is the object changed. */
    h = CreateFileW(w, READ_CONTROL | WRITE_DAC | FILE_READ_ATTRIBUTES,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                    FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        rc = plat_win_fail(e, GetLastError(), "cannot restrict", path);
        goto out;
    }
    if (!GetFileInformationByHandle(h, &bhi)) {
        rc = plat_win_fail(e, GetLastError(), "cannot query", path);
        goto out;
    }
    if (bhi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
        rc = err_set(e, ERR_PERMISSION,
                     "cannot restrict %s: it is a symbolic link or reparse point; refusing to "
                     "follow it",
                     path);
        goto out;
    }
    is_dir = (bhi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? 1 : 0;
    rc = build_sd(is_dir, &sd, e);
    if (rc < 0)
        goto out;
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) || !present) {
        rc = err_set(e, ERR_INTERNAL, "the administrators-only ACL has no DACL");
        goto out;
    }
    err = SetSecurityInfo(h, SE_FILE_OBJECT,
                          DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
                          NULL, dacl, NULL);
    if (err != ERROR_SUCCESS)
        rc = plat_win_fail(e, err, "cannot set the administrators-only ACL on", path);
out:
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    if (sd)
        LocalFree(sd);
    free(w);
    return rc;
}
