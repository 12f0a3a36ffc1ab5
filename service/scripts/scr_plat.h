/*
 * scr_plat.h - the platform half of the script runner (posix/scr_plat.c, win32/scr_plat.c):
 * the owner/permission check of a script or folder, and running one script as a process
 * tree that can be killed as a whole (a process group on POSIX, a job object on Windows)
 * with its output collected and capped. Private to service/scripts/.
 */
#ifndef KASM_SCR_PLAT_H
#define KASM_SCR_PLAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "scr.h"

/*
 * 0 when path (a file, or a folder when is_dir) is safe to run scripts from: POSIX owned by
 * root or the agent's user and not writable by group or others, not a symbolic link;
 * Windows owned by SYSTEM, Administrators or TrustedInstaller, and its DACL grants write
 * access to nobody else. Else ERR_PERMISSION with the reason ("writable by BUILTIN\Users").
 */
int scr_plat_check_path(const char *path, int is_dir, struct err *e);

/* 1 when this platform runs scripts of kind k. */
int scr_plat_supports(enum scr_kind k);

struct scr_spawn {
    enum scr_kind kind;
    const char *script;          /* the file to run (absolute) */
    const char *cwd;             /* the working directory (the script's folder); NULL: inherited */
    char *const *env_add;        /* "NAME=value", NULL-terminated; replaces same-named vars */
    uint32_t timeout_ms;         /* > 0 */
    int (*cancelled)(void *ctx); /* may be NULL */
    void *cancel_ctx;
    size_t out_cap;
    const struct scr_run_as *run_as; /* NULL: as the service */
};

struct scr_exit {
    int exit_code;
    int timed_out; /* killed at the timeout */
    int cancelled; /* killed because cancelled() said so */
    struct scr_outbuf out;
};

/*
 * Runs the script (stdout and stderr together into x->out, stdin empty) and waits for it,
 * the timeout or the cancellation. On a timeout or a cancellation the whole process tree is
 * killed. When the script exits by itself, processes it left behind are not killed; its
 * output is read until it exits (what they write later is not collected). With s->run_as
 * the process runs as that session's user (see struct scr_run_as). x->out must be
 * initialised (scr_outbuf_init); 0 once the process ran, else ERR_* (could not start).
 * Windows: output that is not valid UTF-8 is converted from the OEM code page (what cmd.exe
 * and a redirected PowerShell write).
 */
int scr_plat_run(const struct scr_spawn *s, struct scr_exit *x, struct err *e);

/*
 * Lets the user of run_as read path (the private copy of a PowerShell script, or its
 * folder), nobody else beyond SYSTEM/Administrators (root): Windows adds a read-and-execute
 * ACE for the user's SID to the protected DACL; POSIX gives the file or folder to the user.
 */
int scr_plat_grant_read(const char *path, const struct scr_run_as *run_as, struct err *e);

/* scr_run_as_check (scr.h): whether run_as's identity can be had now. */
int scr_plat_run_as_check(const struct scr_run_as *run_as, struct err *e);

#endif
