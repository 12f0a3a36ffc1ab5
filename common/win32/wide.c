/*
 * win32/wide.c - UTF-8 <-> UTF-16 conversion, long-path forms, Win32 error text and the
 * native error mapping for the Win32 platform layer.
 */
#include "wide.h"

#include "plat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

wchar_t *plat_w_from_utf8(const char *s, struct err *e)
{
    int n;
    wchar_t *w;

    if (!s) {
        err_set(e, ERR_INVALID, "missing text");
        return NULL;
    }
    if (!*s) {
        w = calloc(1, sizeof(wchar_t));
        if (!w)
            err_set(e, ERR_NOMEM, "out of memory");
        return w;
    }
    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) {
        err_set(e, ERR_INVALID, "text is not valid UTF-8");
        return NULL;
    }
    w = malloc((size_t)n * sizeof(wchar_t));
    if (!w) {
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        err_set(e, ERR_INVALID, "text is not valid UTF-8");
        return NULL;
    }
    return w;
}

char *plat_utf8_from_w(const wchar_t *w, struct err *e)
{
    int n;
    char *s;

    n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0) {
        err_set(e, ERR_INVALID, "a name is not valid UTF-16 (unpaired surrogate)");
        return NULL;
    }
    s = malloc((size_t)n);
    if (!s) {
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, s, n, NULL, NULL) != n) {
        free(s);
        err_set(e, ERR_INVALID, "a name is not valid UTF-16 (unpaired surrogate)");
        return NULL;
    }
    return s;
}

int plat_utf8_from_w_buf(const wchar_t *w, char *out, size_t cap, struct err *e)
{
    char *s = plat_utf8_from_w(w, e);
    size_t n;
    if (!s)
        return e ? e->code : ERR_INVALID;
    n = strlen(s);
    if (n + 1 > cap) {
        free(s);
        return err_set(e, ERR_TOO_LARGE, "a path does not fit in %zu bytes", cap);
    }
    memcpy(out, s, n + 1);
    free(s);
    return 0;
}

static int has_prefix(const wchar_t *w, const wchar_t *p)
{
    return wcsncmp(w, p, wcslen(p)) == 0;
}

wchar_t *plat_w_path(const char *path, struct err *e)
{
    wchar_t *w = NULL, *full = NULL, *out = NULL;
    DWORD n, m;

    if (!path || !*path) {
        err_set(e, ERR_INVALID, "empty path");
        return NULL;
    }
    w = plat_w_from_utf8(path, e);
    if (!w) {
        err_prefix(e, "path %s", path);
        return NULL;
    }
    if (has_prefix(w, L"\\\\?\\") || has_prefix(w, L"\\\\.\\"))
        return w;
    n = GetFullPathNameW(w, 0, NULL, NULL);
    if (n == 0) {
        plat_win_fail(e, GetLastError(), "cannot make an absolute path of", path);
        goto out;
    }
    full = malloc(((size_t)n + 1) * sizeof(wchar_t));
    if (!full) {
        err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    m = GetFullPathNameW(w, n + 1, full, NULL);
    if (m == 0 || m > n) {
        plat_win_fail(e, m == 0 ? GetLastError() : ERROR_BUFFER_OVERFLOW,
                      "cannot make an absolute path of", path);
        goto out;
    }
    out = malloc(((size_t)m + 16) * sizeof(wchar_t));
    if (!out) {
        err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (full[0] == L'\\' && full[1] == L'\\') {
        if (has_prefix(full, L"\\\\?\\") || has_prefix(full, L"\\\\.\\")) {
            wcscpy(out, full);
        } else {
            wcscpy(out, L"\\\\?\\UNC\\");
            wcscat(out, full + 2);
        }
    } else if (full[0] != 0 && full[1] == L':') {
        wcscpy(out, L"\\\\?\\");
        wcscat(out, full);
    } else {
        wcscpy(out, full);
    }
out:
    free(w);
    free(full);
    return out;
}

void plat_w_strip_long_prefix(wchar_t *w)
{
    size_t n = wcslen(w);
    if (has_prefix(w, L"\\\\?\\UNC\\")) {
        /* "\\?\UNC\srv\x" -> "\\srv\x": keep the first two characters, drop "?\UNC". */
        memmove(w + 2, w + 8, (n - 8 + 1) * sizeof(wchar_t));
    } else if (has_prefix(w, L"\\\\?\\")) {
        memmove(w, w + 4, (n - 4 + 1) * sizeof(wchar_t));
    }
}

int plat_err_from_os(long os_error)
{
    switch ((DWORD)os_error) {
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
    case 1295: /* ERROR_DISK_QUOTA_EXCEEDED, missing from some mingw headers */
        return ERR_NO_SPACE;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
    case ERROR_WRITE_PROTECT:
    case ERROR_CANT_ACCESS_FILE:
    case ERROR_CANT_RESOLVE_FILENAME:
        return ERR_PERMISSION;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
    case ERROR_NOT_READY:
        return ERR_NOT_FOUND;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
    case ERROR_DIR_NOT_EMPTY:
        return ERR_EXISTS;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_BUSY:
        return ERR_BUSY;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ERR_NOMEM;
    case ERROR_FILENAME_EXCED_RANGE:
    case ERROR_BUFFER_OVERFLOW:
    case ERROR_INSUFFICIENT_BUFFER:
    case ERROR_FILE_TOO_LARGE:
        return ERR_TOO_LARGE;
    case ERROR_INVALID_NAME:
    case ERROR_INVALID_PARAMETER:
    case ERROR_DIRECTORY:
    case ERROR_BAD_PATHNAME:
        return ERR_INVALID;
    case ERROR_NOT_SUPPORTED:
    case ERROR_CALL_NOT_IMPLEMENTED:
    case ERROR_INVALID_FUNCTION:
        return ERR_UNSUPPORTED;
    case ERROR_TIMEOUT:
    case WAIT_TIMEOUT:
        return ERR_TIMEOUT;
    default:
        return ERR_IO;
    }
}

int plat_win_fail(struct err *e, DWORD code, const char *what, const char *path)
{
    wchar_t wbuf[512];
    char text[512];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code,
                             0, wbuf, sizeof(wbuf) / sizeof(wbuf[0]), NULL);
    int rc = plat_err_from_os((long)code);

    text[0] = '\0';
    if (n > 0) {
        /* Drop the trailing ".\r\n" the system puts on its messages. */
        while (n > 0 && (wbuf[n - 1] == L'\r' || wbuf[n - 1] == L'\n' || wbuf[n - 1] == L' ' ||
                         wbuf[n - 1] == L'.'))
            n--;
        wbuf[n] = 0;
        if (plat_utf8_from_w_buf(wbuf, text, sizeof(text), NULL) < 0)
            text[0] = '\0';
    }
    if (!text[0])
        snprintf(text, sizeof(text), "%s", err_code_name(rc));
    if (path)
        return err_set(e, rc, "%s %s: %s (error %lu)", what, path, text, (unsigned long)code);
    return err_set(e, rc, "%s: %s (error %lu)", what, text, (unsigned long)code);
}

int64_t plat_filetime_to_unix(const FILETIME *ft)
{
    uint64_t t = ((uint64_t)ft->dwHighDateTime << 32) | ft->dwLowDateTime;
    return (int64_t)(t / 10000000u) - INT64_C(11644473600);
}
