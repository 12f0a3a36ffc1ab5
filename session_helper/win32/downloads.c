/*
 * win32/downloads.c - the user's Downloads folder and account name on Windows (downloads.h):
 * SHGetKnownFolderPath(FOLDERID_Downloads, KF_FLAG_CREATE) and GetUserNameW. The helper runs
 * with the logged-on user's token, so both answers are that user's.
 */
#include "downloads.h"

#include <windows.h>

#include <knownfolders.h>
#include <lmcons.h>
#include <shlobj.h>

#include "plat.h"

/* UTF-16 -> UTF-8 into out; ERR_TOO_LARGE when it does not fit. */
static int dl_utf8(const wchar_t *w, char *out, size_t cap, const char *what, struct err *e)
{
    int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, out,
                                cap > INT_MAX ? INT_MAX : (int)cap, NULL, NULL);
    if (n <= 0)
        return err_set(e, ERR_TOO_LARGE, "%s cannot be converted to UTF-8 or is too long", what);
    return 0;
}

int hlp_downloads_find(char *out, size_t cap, struct err *e)
{
    PWSTR path = NULL;
    int rc;
    HRESULT hr = SHGetKnownFolderPath(&FOLDERID_Downloads, KF_FLAG_CREATE, NULL, &path);
    if (FAILED(hr) || !path) {
        rc = err_set(e, ERR_NOT_FOUND,
                     "cannot find the user's Downloads folder (SHGetKnownFolderPath: 0x%08lx)",
                     (unsigned long)hr);
        goto out;
    }
    rc = dl_utf8(path, out, cap, "the Downloads folder path", e);
    if (rc < 0)
        goto out;
    rc = plat_dir_create_all(out, e);
    if (rc < 0)
        err_prefix(e, "creating the Downloads folder %s", out);
out:
    CoTaskMemFree(path);
    return rc;
}

int hlp_user_name(char *out, size_t cap, struct err *e)
{
    wchar_t name[UNLEN + 1];
    DWORD n = UNLEN + 1;
    if (!GetUserNameW(name, &n))
        return err_set(e, ERR_NOT_FOUND, "cannot get the account name (GetUserNameW: error %lu)",
                       (unsigned long)GetLastError());
    return dl_utf8(name, out, cap, "the account name", e);
}

int hlp_profile_find(char *out, size_t cap, struct err *e)
{
    PWSTR path = NULL;
    int rc;
    HRESULT hr = SHGetKnownFolderPath(&FOLDERID_Profile, 0, NULL, &path);
    if (FAILED(hr) || !path) {
        rc = err_set(e, ERR_NOT_FOUND,
                     "cannot find the user's profile folder (SHGetKnownFolderPath: 0x%08lx)",
                     (unsigned long)hr);
        goto out;
    }
    rc = dl_utf8(path, out, cap, "the profile folder path", e);
out:
    CoTaskMemFree(path);
    return rc;
}
