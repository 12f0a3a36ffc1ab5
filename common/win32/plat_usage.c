/*
 * win32/plat_usage.c - plat_system_usage() on Windows: CPU from GetSystemTimes (delta since
 * the previous call), memory from GlobalMemoryStatusEx, disk from GetDiskFreeSpaceExW.
 */
#include "plat.h"
#include "plat_cpu.h"
#include "wide.h"

#include <stdlib.h>
#include <string.h>

static SRWLOCK usage_lock = SRWLOCK_INIT;
static struct plat_cpu_sampler cpu; /* guarded by usage_lock */

static uint64_t ft64(const FILETIME *ft)
{
    return ((uint64_t)ft->dwHighDateTime << 32) | ft->dwLowDateTime;
}

static int read_cpu(uint64_t *busy, uint64_t *total, struct err *e)
{
    FILETIME idle, kernel, user;
    if (!GetSystemTimes(&idle, &kernel, &user))
        return plat_win_fail(e, GetLastError(), "GetSystemTimes", NULL);
    /* kernel time includes idle time */
    *total = ft64(&kernel) + ft64(&user);
    *busy = *total - ft64(&idle);
    return 0;
}

static int cpu_pct(double *out, struct err *e)
{
    uint64_t busy, total;
    int rc;

    AcquireSRWLockExclusive(&usage_lock);
    if (!cpu.have_prev) {
        if ((rc = read_cpu(&busy, &total, e)) < 0)
            goto out;
        plat_cpu_sample(&cpu, busy, total);
        Sleep(50);
    }
    if ((rc = read_cpu(&busy, &total, e)) < 0)
        goto out;
    *out = plat_cpu_sample(&cpu, busy, total);
out:
    ReleaseSRWLockExclusive(&usage_lock);
    return rc;
}

int plat_system_usage(struct plat_usage *out, const char *disk_path, struct err *e)
{
    MEMORYSTATUSEX ms;
    ULARGE_INTEGER avail, total, free_all;
    wchar_t *wpath = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = cpu_pct(&out->cpu_pct, e)) < 0)
        goto out;
    memset(&ms, 0, sizeof(ms));
    ms.dwLength = sizeof(ms);
    if (!GlobalMemoryStatusEx(&ms)) {
        rc = plat_win_fail(e, GetLastError(), "GlobalMemoryStatusEx", NULL);
        goto out;
    }
    if (ms.ullTotalPhys > 0 && ms.ullAvailPhys <= ms.ullTotalPhys)
        out->mem_pct =
            100.0 * (double)(ms.ullTotalPhys - ms.ullAvailPhys) / (double)ms.ullTotalPhys;
    if (!(wpath = plat_w_from_utf8(disk_path && *disk_path ? disk_path : "C:\\", e))) {
        rc = e ? e->code : ERR_NOMEM;
        goto out;
    }
    if (!GetDiskFreeSpaceExW(wpath, &avail, &total, &free_all)) {
        rc = plat_win_fail(e, GetLastError(), "reading the disk usage of", disk_path);
        goto out;
    }
    if (total.QuadPart > 0 && free_all.QuadPart <= total.QuadPart)
        out->disk_pct =
            100.0 * (double)(total.QuadPart - free_all.QuadPart) / (double)total.QuadPart;
    rc = 0;
out:
    free(wpath);
    return rc;
}
