/*
 * orch.h - the session orchestrator (prefix orch_): what POST /session_start and
 * /session_end do in the background, in the order of KASM_INTERFACE.md section 5.
 *
 * session_start: (1) create_local_account: the one-time password from
 * set_kasm_session_credential, then acct_ensure_local_user (service/accounts/acct.h), progress
 * reported as "starting"; (2) the load_persistent_profile hook; (3) with user_sso: the file
 * mappings written (%VAR% expanded, given to the user when in the user's profile) and
 * map_storage per storage mapping; (4) the session_start scripts; (5) the mandatory `running`
 * report, retried with backoff until delivered or the session token expires; (6) the
 * screenshot refresh (no cache in the API: skipped).
 * session_end: log-off (config logoff_on_session_end, Windows), the mapped files removed,
 * unmap_storage, the save_persistent_profile hook, the session_end scripts, the mandatory
 * `destroyed` report.
 *
 * The storage hooks run as the user, in the user's terminal session (found through the
 * session manager, sesm_find_user): map_storage at once when the user has a session, else
 * deferred - the mappings wait (struct orch_pending) until the session manager reports a
 * session of that user (sesm_set_listener: a logon, a session found by enumeration, a helper's
 * HELLO), then a worker thread runs map_storage as the user; the `running` report never waits
 * for it. A pending mount is dropped at session_end or when the session token expires. When
 * a script cannot be started as the user yet (scr_run_as_check: no token right after a
 * logon, no such account), the mount stays pending and is retried with backoff (5 s .. 60 s,
 * ORCH_PENDING_ATTEMPTS attempts); a hook that ran and failed is final.
 * unmap_storage runs in the user's session when there is one, else as the service. Without a
 * session manager both run as the service.
 *
 * A session_start for a kasm_id that already started is not run again (a bounded memory of
 * started sessions); a session_end for an unknown kasm_id still reports destroyed. A failed
 * step is logged and reported as a progress message; the final report is always attempted.
 * docs/sessions.md is the administrator's account of it.
 */
#ifndef KASM_ORCH_H
#define KASM_ORCH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cfg;
struct sesm;
struct orch;

#define ORCH_REMEMBERED 256 /* started sessions remembered (oldest forgotten first) */

struct orch_config {
    const struct cfg *cfg;     /* read between lock(ctx) and unlock(ctx) */
    void (*lock)(void *ctx);   /* may be NULL: nothing else writes cfg */
    void (*unlock)(void *ctx); /* may be NULL */
    void *ctx;
    struct sesm *sessions; /* may be NULL: no session helpers (ts_session_id stays "") */
    /* may be NULL: step 6, the screenshot cache refresh (the API's api_screenshot_refresh) */
    void (*session_started)(void *ctx, const char *system_username);
};

int orch_create(const struct orch_config *c, struct orch **out, struct err *e);
/* The agent is stopping: report retries end after one more attempt, running scripts are
 * killed. Returns at once. */
void orch_cancel(struct orch *o);
/* Frees o (no session work may be running); NULL ignored. */
void orch_free(struct orch *o);

/* Runs the whole start or end sequence for a validated payload (JSON text); blocking. */
void orch_session_start(struct orch *o, const char *payload, size_t len);
void orch_session_end(struct orch *o, const char *payload, size_t len);

/* ---- the portable pieces (unit-tested) ---- */

/* What %VAR% expands to in a file mapping's destination. */
struct orch_expand_env {
    const char *profile;  /* %HOMEPATH%, %USERPROFILE%: the user's profile folder */
    const char *username; /* %USERNAME%: the local account name */
};
/*
 * Expands %HOMEPATH%, %USERPROFILE% and %USERNAME% (ASCII case-insensitive; %% is a '%') in a
 * destination. An unknown variable, an unset one (profile NULL or "") or an unclosed '%' is
 * ERR_INVALID; the result must be an absolute path without ".." components (ERR_PERMISSION).
 */
int orch_expand(const char *dest, const struct orch_expand_env *env, char *out, size_t cap,
                struct err *e);
/* 1 when path is dir itself or inside it ('/' and '\' alike; ASCII case-insensitive on
 * Windows, exact elsewhere); 0 otherwise. */
int orch_path_under(const char *path, const char *dir);

/*
 * What a file mapping (the payload's object with is_readable, is_writable, is_executable)
 * lets the user do with its file: PLAT_ACCESS_* bits (plat.h). A flag that is missing or not
 * true/false takes its default: readable and writable, not executable.
 */
struct cJSON;
unsigned orch_mapping_access(const struct cJSON *mapping);
/* "rwx" with '-' for what access (PLAT_ACCESS_*) does not allow, for logs (out: 4 bytes). */
const char *orch_access_text(unsigned access, char *out);

/* The bounded memory of started sessions (a ring of ORCH_REMEMBERED ids). */
struct orch_seen {
    char ids[ORCH_REMEMBERED][128];
    size_t next;
};
/* Adds id; 0 when it was new, 1 when it was already there (nothing changed). */
int orch_seen_add(struct orch_seen *s, const char *id);
/* Forgets id (session_end); 1 when it was there. */
int orch_seen_remove(struct orch_seen *s, const char *id);

/* Storage mappings waiting for their user's logon (a list, guarded by the caller). */
#define ORCH_PENDING_MAX      64
#define ORCH_PENDING_NO_EXP_S (12 * 3600) /* a session token without exp: wait this long */
#define ORCH_PENDING_ATTEMPTS 8 /* starts as the user that may fail before an entry is dropped */
struct orch_pending {
    char kasm_id[128];
    char user[256]; /* the local account (no "@domain") */
    char *payload;  /* the session_start payload (holds secrets: wiped when freed) */
    size_t len;
    int64_t expires;  /* Unix seconds: dropped after this */
    int running;      /* map_storage is running for it now: not dropped, not expired */
    int64_t retry_at; /* Unix seconds: not tried before this (0: once the user is there) */
    int attempts;     /* times map_storage could not be started as the user */
    struct orch_pending *next;
};
struct orch_pending_list {
    struct orch_pending *head;
    size_t count;
};
/* Adds a copy of payload for kasm_id (an entry of the same kasm_id that is not running is
 * replaced). ERR_TOO_LARGE beyond ORCH_PENDING_MAX entries, ERR_NOMEM. */
int orch_pending_add(struct orch_pending_list *l, const char *kasm_id, const char *user,
                     const char *payload, size_t len, int64_t expires, struct err *e);
/* The entry of kasm_id: 0 none, 1 removed (not running), 2 running (left in place). */
int orch_pending_drop(struct orch_pending_list *l, const char *kasm_id);
/* Removes the entries (not running) whose expires <= now; each(ctx, entry) is called before
 * one is freed (may be NULL). Returns how many. */
size_t orch_pending_expire(struct orch_pending_list *l, int64_t now,
                           void (*each)(void *ctx, const struct orch_pending *p), void *ctx);
/* The wait (s) after the n-th start that failed: 5, 10, 20, 40, then 60. */
int64_t orch_pending_backoff(int attempts);
/* map_storage could not be started as p's user at now: counts the attempt and sets retry_at.
 * Returns the seconds until the retry, or 0 once ORCH_PENDING_ATTEMPTS attempts failed (the
 * caller drops p). */
int64_t orch_pending_retry(struct orch_pending *p, int64_t now);
/* 1 when p may be tried at now: not running, its retry time reached. */
int orch_pending_due(const struct orch_pending *p, int64_t now);
/* When the worker must look again at the latest: the earliest expiry or future retry time
 * of an entry that is not running, limit if none is earlier. */
int64_t orch_pending_next(const struct orch_pending_list *l, int64_t now, int64_t limit);
/* Unlinks p (in l) and frees it. */
void orch_pending_remove(struct orch_pending_list *l, struct orch_pending *p);
/* Frees every entry. */
void orch_pending_clear(struct orch_pending_list *l);

#endif
