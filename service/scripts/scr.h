/*
 * scr.h - the script runner (prefix scr_): runs the administrator's scripts of one folder
 * under the config's script_path (service_startup, session_start, session_end) in name
 * order, with the variables of KASM_INTERFACE.md section 8, after an ownership/ACL check,
 * each with a timeout that kills its whole process tree, and logs what happened (exit code,
 * duration, and on failure or with debug the output, secrets redacted, size capped).
 *
 * Kinds: `.ps1` through the system directory's powershell.exe (-NoProfile -NonInteractive
 * -ExecutionPolicy Bypass -File), `.cmd`/`.bat` through the system directory's cmd.exe /c,
 * `.sh` through /bin/sh (POSIX). `*_tmp.ps1` files are skipped, as are other files and the
 * kinds the platform cannot run (each with a log line).
 *
 * Variables reach every script as environment variables KASM_<NAME> (name upper-cased);
 * PowerShell scripts also get them as $name, set by a prologue in a private temporary copy
 * of the script (values base64-encoded, decoded by the prologue: no quoting to break out of).
 *
 * Scripts run as the service, or (scr_options.run_as: the storage hooks) as the user of a
 * terminal session; then .ps1/.cmd/.bat run from a private copy that user may read, in the
 * copy's folder (the scripts folder is admin-only on Windows).
 *
 * The portable part (scr.c) decides and logs; the platform part (scr_plat.h, posix/ and
 * win32/) checks owners and ACLs and runs a process. docs/scripts.md is the administrator's
 * account of it.
 */
#ifndef KASM_SCR_H
#define KASM_SCR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SCR_OUTPUT_CAP      (64 * 1024) /* bytes of output kept per script */
#define SCR_DEFAULT_TIMEOUT 300         /* seconds (config key script_timeout) */
#define SCR_MAX_VARS        32

/* A variable handed to scripts. secret: its value never reaches a log (jwt_token, jwt). */
struct scr_var {
    const char *name; /* [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes */
    const char *value;
    int secret;
};

enum scr_kind {
    SCR_KIND_OTHER = 0, /* not a script: skipped */
    SCR_KIND_TMP,       /* *_tmp.ps1: skipped */
    SCR_KIND_PS1,
    SCR_KIND_CMD, /* .cmd and .bat */
    SCR_KIND_SH,
    SCR_KIND_REG, /* a .reg file for reg.exe import (scripts\registry) */
};

enum scr_status {
    SCR_OK = 0,    /* exit code 0 */
    SCR_FAILED,    /* ran, exit code not 0 */
    SCR_TIMEOUT,   /* killed at the timeout with its process tree */
    SCR_REFUSED,   /* owner or permissions unsafe */
    SCR_SKIPPED,   /* not a script, *_tmp.ps1, or a kind this platform cannot run */
    SCR_ERROR,     /* could not be started */
    SCR_CANCELLED, /* the agent is stopping */
};

/*
 * Whom a script runs as when not as the service: the user of a logged-on terminal session.
 * Windows: the token of session_id's user (WTSQueryUserToken), the user's environment block,
 * on winsta0\default; POSIX (as root): user's groups, gid and uid, HOME/USER/LOGNAME set.
 */
struct scr_run_as {
    uint32_t session_id;
    char user[256]; /* the account as the session names it */
};

struct scr_options {
    /* NULL: as the service (SYSTEM/root); else as that session's user */
    const struct scr_run_as *run_as;
    uint32_t timeout_ms; /* per script; 0: SCR_DEFAULT_TIMEOUT s */
    int debug;           /* 1: log the output of successful scripts too */
    size_t output_cap;   /* 0: SCR_OUTPUT_CAP */
    /* Polled while a script runs: non-zero stops it (killed like at the timeout). */
    int (*cancelled)(void *ctx);
    void *cancel_ctx;
};

struct scr_result {
    char name[256]; /* file name */
    enum scr_status status;
    int exit_code;
    uint64_t duration_ms;
};

struct scr_results {
    struct scr_result *items;
    size_t count;
};

/*
 * Runs every script of script_path/dir_name in name order (see above) and appends one
 * result per directory entry to *out (initialise it to {0}; free with scr_results_free).
 * A missing folder is no error (nothing to run). Returns 0 when every script ran (whatever
 * their exit codes), ERR_PERMISSION when the folder itself is unsafe (nothing ran), or
 * another ERR_* when the folder cannot be read.
 */
int scr_run_dir(const char *script_path, const char *dir_name, const struct scr_var *vars,
                size_t nvars, const struct scr_options *o, struct scr_results *out, struct err *e);
/* Runs one file (checks included); the result is filled in every case. */
int scr_run_file(const char *path, const struct scr_var *vars, size_t nvars,
                 const struct scr_options *o, struct scr_result *res, struct err *e);
void scr_results_free(struct scr_results *r);
const char *scr_status_name(enum scr_status s);
/*
 * 0 when a script can be started as run_as's user now: Windows the session's user token can
 * be had (WTSQueryUserToken, right after a logon it may not be there yet); POSIX the account
 * exists and the agent runs as root or as that user. Else ERR_* saying why (a retry later
 * may succeed).
 */
int scr_run_as_check(const struct scr_run_as *run_as, struct err *e);

/* ---- the portable pieces (unit-tested) ---- */

/* The kind of a file by its name (ASCII case-insensitive extension). */
enum scr_kind scr_kind_of(const char *name);
/* Name order: ASCII case-insensitive, then byte order; for qsort over char *. */
int scr_name_cmp(const void *a, const void *b);
/* 1 when name is a valid variable name. */
int scr_var_name_valid(const char *name);
/* "KASM_" + name in upper case ("kasm_id" -> "KASM_KASM_ID"). */
int scr_env_name(const char *var, char *out, size_t cap, struct err *e);
/* "KASM_<NAME>=value" for each variable (heap array + strings, NULL-terminated). */
int scr_env_list(const struct scr_var *vars, size_t nvars, char ***out, struct err *e);
void scr_env_list_free(char **list);
/* Standard base64 of data (heap, NUL-terminated). */
char *scr_base64(const void *data, size_t len);
/*
 * The PowerShell prologue setting $name for each variable from its base64-encoded UTF-8
 * value (heap, NUL-terminated, CRLF line ends).
 */
int scr_ps_prologue(const struct scr_var *vars, size_t nvars, char **out, size_t *len,
                    struct err *e);
/*
 * The temporary copy of a PowerShell script: UTF-8 BOM, the prologue, then the script
 * without its own BOM (heap).
 */
int scr_ps_copy(const char *script, size_t script_len, const struct scr_var *vars, size_t nvars,
                char **out, size_t *len, struct err *e);
/*
 * Makes captured output safe to log, in place: NUL bytes become '?', the value of every
 * secret variable (and every value of 8 bytes or more of a variable named like a token)
 * becomes <redacted>, then log_redact() runs over the whole text (so a PEM key spread over
 * lines is caught). *len is updated; buf must have cap bytes (the text never grows past
 * cap - 1).
 */
void scr_scrub_output(char *buf, size_t *len, size_t cap, const struct scr_var *vars, size_t nvars);

/* Output collected with a cap: the first cap bytes are kept, the rest only counted. */
struct scr_outbuf {
    char *data;
    size_t len, cap;
    uint64_t dropped;
};
int scr_outbuf_init(struct scr_outbuf *b, size_t cap, struct err *e);
void scr_outbuf_add(struct scr_outbuf *b, const void *data, size_t len);
void scr_outbuf_free(struct scr_outbuf *b);

#endif
