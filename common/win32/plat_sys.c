/*
 * win32/plat_sys.c - time, sleeping, host name (GetComputerNameExW), secure random bytes
 * (BCryptGenRandom), process id and the Windows Event Log on Windows.
 */
#include "log.h"
#include "plat.h"
#include "wide.h"

#include <bcrypt.h>
#include <stdlib.h>
#include <string.h>

uint64_t plat_monotonic_ms(void)
{
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq); /* constant after boot, and cheap */
    QueryPerformanceCounter(&now);
    return (uint64_t)(now.QuadPart / freq.QuadPart) * 1000u +
           (uint64_t)(now.QuadPart % freq.QuadPart) * 1000u / (uint64_t)freq.QuadPart;
}

static uint64_t filetime_now_100ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    return (((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime) - UINT64_C(116444736000000000);
}

int64_t plat_wall_time(void)
{
    return (int64_t)(filetime_now_100ns() / 10000000u);
}

int64_t plat_wall_time_ms(void)
{
    return (int64_t)(filetime_now_100ns() / 10000u);
}

void plat_sleep_ms(uint32_t ms)
{
    Sleep(ms);
}

static int computer_name(COMPUTER_NAME_FORMAT fmt, char *out, size_t cap, struct err *e)
{
    wchar_t buf[256];
    DWORD n = sizeof(buf) / sizeof(buf[0]);
    if (!GetComputerNameExW(fmt, buf, &n))
        return plat_win_fail(e, GetLastError(), "cannot read the host name", NULL);
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND, "the host name is empty");
    buf[n] = 0;
    return plat_utf8_from_w_buf(buf, out, cap, e);
}

int plat_hostname(char *out, size_t cap, struct err *e)
{
    int rc = computer_name(ComputerNameDnsFullyQualified, out, cap, e);
    if (rc == 0 || rc == ERR_TOO_LARGE)
        return rc;
    rc = computer_name(ComputerNameDnsHostname, out, cap, e);
    if (rc == 0 || rc == ERR_TOO_LARGE)
        return rc;
    return computer_name(ComputerNameNetBIOS, out, cap, e);
}

int plat_random_bytes(void *buf, size_t len, struct err *e)
{
    unsigned char *p = buf;
    while (len > 0) {
        ULONG chunk = len > (1u << 20) ? (1u << 20) : (ULONG)len;
        NTSTATUS st = BCryptGenRandom(NULL, p, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
        if (st < 0)
            return err_set(e, ERR_IO, "cannot get random bytes: BCryptGenRandom failed (0x%08lx)",
                           (unsigned long)st);
        p += chunk;
        len -= chunk;
    }
    return 0;
}

unsigned long plat_pid(void)
{
    return (unsigned long)GetCurrentProcessId();
}

/* The Event Log source handle; the lock keeps writes away from a closing handle. */
static SRWLOCK g_evlock = SRWLOCK_INIT;
static HANDLE g_evsrc;

void plat_syslog_open(const char *source)
{
    wchar_t *w = plat_w_from_utf8(source ? source : "kasm-agent", NULL);
    HANDLE h;
    if (!w)
        return;
    h = RegisterEventSourceW(NULL, w);
    free(w);
    AcquireSRWLockExclusive(&g_evlock);
    if (g_evsrc)
        DeregisterEventSource(g_evsrc);
    g_evsrc = h;
    ReleaseSRWLockExclusive(&g_evlock);
}

void plat_syslog_write(int level, const char *msg)
{
    WORD type;
    wchar_t *w;
    LPCWSTR strings[1];

    if (level >= LOG_LEVEL_ERROR)
        type = EVENTLOG_ERROR_TYPE;
    else if (level >= LOG_LEVEL_WARNING)
        type = EVENTLOG_WARNING_TYPE;
    else
        type = EVENTLOG_INFORMATION_TYPE;
    w = plat_w_from_utf8(msg ? msg : "", NULL);
    if (!w)
        return;
    strings[0] = w;
    AcquireSRWLockShared(&g_evlock);
    if (g_evsrc)
        ReportEventW(g_evsrc, type, 0, 1, NULL, 1, 0, strings, NULL);
    ReleaseSRWLockShared(&g_evlock);
    free(w);
}

void plat_syslog_close(void)
{
    AcquireSRWLockExclusive(&g_evlock);
    if (g_evsrc)
        DeregisterEventSource(g_evsrc);
    g_evsrc = NULL;
    ReleaseSRWLockExclusive(&g_evlock);
}
