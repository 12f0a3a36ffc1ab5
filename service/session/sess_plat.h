/*
 * sess_plat.h - what the session manager (sesm.c, portable) needs from the OS: the list of
 * logged-on sessions and a helper process started as a session's user with one end of a
 * private channel. service/session/posix/ and service/session/win32/ implement it.
 */
#ifndef KASM_SESS_PLAT_H
#define KASM_SESS_PLAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sesm.h"

struct pchan;
struct pshm;

struct sess_info {
    uint32_t id;      /* terminal session id (Windows) / logind or declared id (POSIX) */
    char user[256];   /* account name (no domain) */
    int console;      /* the active console session */
    char display[64]; /* POSIX: DISPLAY for the helper ("" = inherit); Windows: unused */
};

/*
 * The sessions with a logged-on user now (sessions without a user, services session 0 and
 * listeners are left out). Windows: WTSEnumerateSessionsW + WTSQuerySessionInformationW;
 * POSIX: cfg->sessions_file when set (lines "<id> <user> [console] [display=:N]", '#'
 * comments), else /run/systemd/sessions/ (state active or online), else none.
 */
int sess_enumerate(const struct sesm_config *cfg, struct sess_info **out, size_t *n, struct err *e);

struct sess_proc;

/*
 * Starts the helper for session s with the private channel; *chan is the service's end. When
 * shared (a window from pshm_create, still the caller's) is not NULL, the helper also gets a
 * read-only handle to it (pshm_share) and its size.
 * Windows: WTSQueryUserToken (retried on ERROR_NO_TOKEN 1008), CreateEnvironmentBlock, a
 * pipe with a random name and a DACL for SYSTEM + the user's SID (first instance, remote
 * rejected), the client end inherited through PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
 * CreateProcessAsUserW on winsta0\default, the process put in the manager's job object
 * (kill on close). POSIX: socketpair, fork; as root: initgroups/setgid/setuid to the
 * user, HOME/USER/LOGNAME set; exec. Helper command line:
 *   session_helper --channel <os handle> --session-id <id> [--shared <os handle>
 *       --shared-size <bytes>] [--debug] [--max-uploads <n>]
 */
int sess_spawn(const struct sesm_config *cfg, const struct sess_info *s, struct pshm *shared,
               struct sess_proc **proc, struct pchan **chan, struct err *e);
unsigned long sess_proc_pid(const struct sess_proc *p);
/* 1 if exited (*exit_code set), 0 if still running after timeout_ms. */
int sess_proc_wait(struct sess_proc *p, uint32_t timeout_ms, int *exit_code);
/* Kills the helper (and on Windows its job members started from it). */
void sess_proc_kill(struct sess_proc *p);
/* Waits for/reaps, closes every handle, frees; NULL ignored. Kill first if it may run. */
void sess_proc_free(struct sess_proc *p);

/* Windows: WTS_SESSION_LOGON etc. as in <wtsapi32.h>; POSIX uses the same numbers. */
#define SESS_EVENT_CONSOLE_CONNECT    0x1
#define SESS_EVENT_CONSOLE_DISCONNECT 0x2
#define SESS_EVENT_REMOTE_CONNECT     0x3
#define SESS_EVENT_REMOTE_DISCONNECT  0x4
#define SESS_EVENT_LOGON              0x5
#define SESS_EVENT_LOGOFF             0x6

#endif
