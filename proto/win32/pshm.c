/*
 * win32/pshm.c - the shared window of pshm.h on Windows: a section backed by the paging file
 * (a section never changes size), mapped read-write by the service. The helper's handle is a
 * duplicate with FILE_MAP_READ access only, so it can map the window read-only and nothing
 * else; it is inheritable only from pshm_share() to pshm_share_done(), like the pipe end
 * passed beside it.
 */
#include "pshm.h"

#include <windows.h>

#include <stdlib.h>

#include "pshm_int.h"
#include "win32/wide.h"

int pshm_create(size_t size, struct pshm **out, struct err *e)
{
    struct pshm *w = NULL;
    int rc = 0;

    *out = NULL;
    if (size == 0 || size > (size_t)INT32_MAX)
        return err_set(e, ERR_INVALID, "a shared window of %zu bytes is not possible", size);
    if (!(w = calloc(1, sizeof(*w))))
        return err_set(e, ERR_NOMEM, "out of memory for a shared window");
    w->os = (intptr_t)CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)size,
                                         NULL);
    if (!w->os) {
        rc = plat_win_fail(e, GetLastError(), "cannot create a shared window", NULL);
        goto out;
    }
    w->base = MapViewOfFile((HANDLE)w->os, FILE_MAP_WRITE, 0, 0, size);
    if (!w->base) {
        rc = plat_win_fail(e, GetLastError(), "cannot map a shared window", NULL);
        goto out;
    }
    w->size = size;
    w->writable = 1;
    *out = w;
    w = NULL;
out:
    if (w) {
        if (w->os)
            CloseHandle((HANDLE)w->os);
        free(w);
    }
    return rc;
}

int pshm_share(struct pshm *w, intptr_t *os_handle, struct err *e)
{
    HANDLE ro = NULL;

    if (!w->writable)
        return err_set(e, ERR_INVALID, "only the writer of a shared window can share it");
    if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)w->os, GetCurrentProcess(), &ro,
                         FILE_MAP_READ, TRUE, 0))
        return plat_win_fail(e, GetLastError(), "cannot share the shared window", NULL);
    *os_handle = (intptr_t)ro;
    return 0;
}

void pshm_share_done(struct pshm *w, intptr_t os_handle)
{
    (void)w;
    if (os_handle && (HANDLE)os_handle != INVALID_HANDLE_VALUE)
        CloseHandle((HANDLE)os_handle);
}

int pshm_open_reader(intptr_t os_handle, size_t size, struct pshm **out, struct err *e)
{
    HANDLE h = (HANDLE)os_handle;
    struct pshm *w = NULL;
    int rc = 0;

    *out = NULL;
    if (!h || h == INVALID_HANDLE_VALUE || size == 0)
        return err_set(e, ERR_INVALID, "shared window: not a section handle");
    if (!(w = calloc(1, sizeof(*w)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory for a shared window");
        goto out;
    }
    /* fails when the section is smaller than size, or the handle is not a section */
    w->base = MapViewOfFile(h, FILE_MAP_READ, 0, 0, size);
    if (!w->base) {
        rc = err_set(e, ERR_INVALID,
                     "shared window: cannot map %zu bytes of the handle read-only (error %lu)",
                     size, (unsigned long)GetLastError());
        goto out;
    }
    SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0); /* nothing we start needs it */
    w->os = (intptr_t)h;
    h = NULL;
    w->size = size;
    *out = w;
    w = NULL;
out:
    free(w);
    if (h && h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    return rc;
}

void pshm_free(struct pshm *w)
{
    if (!w)
        return;
    UnmapViewOfFile(w->base);
    CloseHandle((HANDLE)w->os);
    free(w);
}
