/*
 * win32/pchan.c - the byte channel of pchan.h on Windows: one end of a private byte-mode
 * named pipe opened for overlapped I/O. Reads and writes each use their own OVERLAPPED and
 * event, so a thread blocked in a read never holds up a writer. pchan_shutdown() sets a flag
 * and cancels pending I/O with CancelIoEx; an operation started after the flag was set sees
 * it and cancels itself, so no read can block past a shutdown.
 */
#include "pchan.h"

#include <windows.h>

#include <sddl.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "pchan_win.h"
#include "plat.h"
#include "win32/wide.h"

struct pchan {
    HANDLE h;
    HANDLE rd_ev; /* the reader's OVERLAPPED event */
    HANDLE wr_ev; /* the (serialised) writers' OVERLAPPED event */
    volatile LONG shut;
};

#define PCHAN_PIPE_BUFFER (64u * 1024u)
#define PCHAN_CONNECT_MS  5000u

static int pchan_is_shut(struct pchan *c)
{
    return InterlockedCompareExchange(&c->shut, 0, 0) != 0;
}

static int pchan_gone(DWORD err)
{
    return err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_NO_DATA ||
           err == ERROR_HANDLE_EOF;
}

int pchan_from_os(intptr_t os_handle, struct pchan **out, struct err *e)
{
    HANDLE h = (HANDLE)os_handle;
    struct pchan *c = NULL;
    int rc = 0;

    *out = NULL;
    if (h == NULL || h == INVALID_HANDLE_VALUE)
        return err_set(e, ERR_INVALID, "channel: not a pipe handle");
    c = calloc(1, sizeof(*c));
    if (!c) {
        rc = err_set(e, ERR_NOMEM, "channel: out of memory");
        goto out;
    }
    c->h = h;
    c->rd_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->wr_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!c->rd_ev || !c->wr_ev) {
        rc = err_set(e, ERR_IO, "channel: cannot create an event (error %lu)", GetLastError());
        goto out;
    }
    *out = c;
    c = NULL;
out:
    if (c) {
        if (c->rd_ev)
            CloseHandle(c->rd_ev);
        if (c->wr_ev)
            CloseHandle(c->wr_ev);
        free(c);
    }
    if (rc < 0)
        CloseHandle(h);
    return rc;
}

/* Finishes an overlapped operation that returned ok (1) or failed with err. Returns 0 with
 * *n, or the Win32 error (ERROR_OPERATION_ABORTED when shut down). */
static DWORD pchan_complete(struct pchan *c, OVERLAPPED *ov, BOOL ok, DWORD *n)
{
    DWORD err = ok ? 0 : GetLastError();

    if (!ok && err != ERROR_IO_PENDING)
        return err;
    if (!ok && pchan_is_shut(c))
        CancelIoEx(c->h, ov); /* shut down between our check and the start of the I/O */
    if (!GetOverlappedResult(c->h, ov, n, TRUE))
        return GetLastError();
    return 0;
}

int pchan_read(struct pchan *c, void *buf, size_t cap, size_t *got, struct err *e)
{
    OVERLAPPED ov;
    DWORD n = 0, err;
    BOOL ok;

    *got = 0;
    if (cap == 0 || pchan_is_shut(c))
        return 0;
    if (cap > 1u << 30)
        cap = 1u << 30;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = c->rd_ev;
    ResetEvent(c->rd_ev);
    ok = ReadFile(c->h, buf, (DWORD)cap, NULL, &ov);
    err = pchan_complete(c, &ov, ok, &n);
    if (err == ERROR_MORE_DATA)
        err = 0; /* message-mode peer: we read what fitted */
    if (err == ERROR_OPERATION_ABORTED || pchan_gone(err) || pchan_is_shut(c))
        return 0;
    if (err)
        return err_set(e, ERR_IO, "channel: read failed (error %lu)", err);
    *got = n;
    return 0;
}

int pchan_write_all(struct pchan *c, const void *buf, size_t len, struct err *e)
{
    const char *p = buf;
    OVERLAPPED ov;
    DWORD n, err, chunk;
    BOOL ok;

    while (len > 0) {
        if (pchan_is_shut(c))
            return err_set(e, ERR_IO, "channel: the channel was shut down");
        chunk = len > (1u << 30) ? (1u << 30) : (DWORD)len;
        memset(&ov, 0, sizeof(ov));
        ov.hEvent = c->wr_ev;
        ResetEvent(c->wr_ev);
        n = 0;
        ok = WriteFile(c->h, p, chunk, NULL, &ov);
        err = pchan_complete(c, &ov, ok, &n);
        if (err == ERROR_OPERATION_ABORTED || (err == 0 && pchan_is_shut(c) && n < chunk))
            return err_set(e, ERR_IO, "channel: the channel was shut down");
        if (pchan_gone(err))
            return err_set(e, ERR_IO, "the peer closed the channel");
        if (err)
            return err_set(e, ERR_IO, "channel: write failed (error %lu)", err);
        if (n == 0)
            return err_set(e, ERR_IO, "channel: write made no progress");
        p += n;
        len -= n;
    }
    return 0;
}

int pchan_write_file_frame(struct pchan *c, intptr_t os_file, uint64_t off, size_t max,
                           void (*make_header)(void *ctx, size_t n, uint8_t *header), void *ctx,
                           size_t *sent, struct err *e)
{
    (void)c;
    (void)os_file;
    (void)off;
    (void)max;
    (void)make_header;
    (void)ctx;
    *sent = 0;
    /* No zero-copy send from a file into a pipe on Windows: pmux reads and writes. */
    return err_set(e, ERR_UNSUPPORTED, "channel: no zero-copy file send on Windows");
}

void pchan_shutdown(struct pchan *c)
{
    if (!c)
        return;
    if (InterlockedExchange(&c->shut, 1) == 0)
        CancelIoEx(c->h, NULL);
}

void pchan_close(struct pchan *c)
{
    if (!c)
        return;
    CloseHandle(c->h);
    CloseHandle(c->rd_ev);
    CloseHandle(c->wr_ev);
    free(c);
}

intptr_t pchan_os_handle(const struct pchan *c)
{
    return (intptr_t)c->h;
}

int pchan_win_private_pipe(const wchar_t *prefix, const wchar_t *sddl, int client_inheritable,
                           HANDLE *server_out, HANDLE *client_out, struct err *e)
{
    static const wchar_t hex[] = L"0123456789abcdef";
    wchar_t name[256];
    unsigned char rnd[16];
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa_server, sa_client;
    HANDLE server = INVALID_HANDLE_VALUE, client = INVALID_HANDLE_VALUE, ev = NULL;
    OVERLAPPED ov;
    DWORD n, err;
    int k, rc;

    *server_out = *client_out = INVALID_HANDLE_VALUE;
    if ((rc = plat_random_bytes(rnd, sizeof(rnd), e)) < 0)
        goto out;
    k = _snwprintf(name, 200, L"\\\\.\\pipe\\%ls", prefix);
    if (k < 0 || k > 200) {
        rc = err_set(e, ERR_INVALID, "channel: the pipe name prefix is too long");
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        name[k++] = hex[rnd[i] >> 4];
        name[k++] = hex[rnd[i] & 15];
    }
    name[k] = 0;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL)) {
        rc = plat_win_fail(e, GetLastError(), "channel: cannot build the pipe's security", NULL);
        goto out;
    }
    sa_server.nLength = sizeof(sa_server);
    sa_server.lpSecurityDescriptor = sd;
    sa_server.bInheritHandle = FALSE;
    server = CreateNamedPipeW(
        name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
        PCHAN_PIPE_BUFFER, PCHAN_PIPE_BUFFER, 0, &sa_server);
    if (server == INVALID_HANDLE_VALUE) {
        rc = plat_win_fail(e, GetLastError(), "channel: cannot create a private pipe", NULL);
        goto out;
    }
    sa_client.nLength = sizeof(sa_client);
    sa_client.lpSecurityDescriptor = NULL;
    sa_client.bInheritHandle = client_inheritable ? TRUE : FALSE;
    client =
        CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, &sa_client, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (client == INVALID_HANDLE_VALUE) {
        rc = plat_win_fail(e, GetLastError(), "channel: cannot open the private pipe", NULL);
        goto out;
    }
    if (!(ev = CreateEventW(NULL, TRUE, FALSE, NULL))) {
        rc = plat_win_fail(e, GetLastError(), "channel: cannot create an event", NULL);
        goto out;
    }
    /* The client is already there: this answers ERROR_PIPE_CONNECTED, or completes at once. */
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = ev;
    if (!ConnectNamedPipe(server, &ov)) {
        err = GetLastError();
        if (err == ERROR_IO_PENDING) {
            if (WaitForSingleObject(ev, PCHAN_CONNECT_MS) == WAIT_OBJECT_0 &&
                GetOverlappedResult(server, &ov, &n, FALSE)) {
                err = 0;
            } else {
                err = GetLastError() ? GetLastError() : ERROR_TIMEOUT;
                CancelIoEx(server, &ov);
                GetOverlappedResult(server, &ov, &n, TRUE);
            }
        }
        if (err != 0 && err != ERROR_PIPE_CONNECTED) {
            rc = plat_win_fail(e, err, "channel: cannot connect the private pipe", NULL);
            goto out;
        }
    }
    *server_out = server;
    *client_out = client;
    server = client = INVALID_HANDLE_VALUE;
    rc = 0;
out:
    if (server != INVALID_HANDLE_VALUE)
        CloseHandle(server);
    if (client != INVALID_HANDLE_VALUE)
        CloseHandle(client);
    if (ev)
        CloseHandle(ev);
    if (sd)
        LocalFree(sd);
    return rc;
}

int pchan_pair(struct pchan **a, struct pchan **b, struct err *e)
{
    HANDLE server, client;
    int rc;

    *a = *b = NULL;
    /* SYSTEM, Administrators and the owner only; the default DACL lets Everyone read. */
    rc = pchan_win_private_pipe(L"kasm-open-agent-", L"D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)", 0,
                                &server, &client, e);
    if (rc < 0)
        return rc;
    if ((rc = pchan_from_os((intptr_t)server, a, e)) < 0) { /* owns (or closed) server */
        CloseHandle(client);
        return rc;
    }
    if ((rc = pchan_from_os((intptr_t)client, b, e)) < 0) {
        pchan_close(*a);
        *a = NULL;
    }
    return rc;
}
