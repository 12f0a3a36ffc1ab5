/*
 * api.h - the agent's HTTPS API (KASM_INTERFACE.md section 5): the server, its routes and the
 * work queue behind session_start/session_end, started and stopped as one piece.
 *
 * Routes (one file each): health.c (GET /__healthcheck), session.c (POST /session_start,
 * /session_end), screenshot.c (POST /screenshot), transfer_routes.c (POST /upload,
 * GET /Downloads/Downloads/...). api.c routes requests: CORS preflight, 404, 405, the JWT,
 * then the handler.
 */
#ifndef KASM_API_H
#define KASM_API_H

#include <stddef.h>

#include "auth.h"
#include "err.h"

struct cfg;
struct api;
struct sesm;
struct sesm_lease;

/*
 * Fields of the config that another thread rewrites while the API runs (the token lifecycle
 * updates multi_user and user_sso at check-in) are read between lock(ctx) and unlock(ctx).
 */
struct api_cfg_guard {
    void (*lock)(void *ctx);
    void (*unlock)(void *ctx);
    void *ctx;
};

/*
 * Starts the work queue and the HTTPS server for cfg (which must outlive the API). guard may
 * be NULL when nothing else writes cfg while the API runs. sessions (may be NULL: no helpers,
 * the upload_dir/download_dir fallback only) is the session manager whose helpers do the
 * users' file I/O and screenshots; it must outlive the API. Errors name the cause (port in
 * use, certificate problems).
 */
int api_start(struct api **out, const struct cfg *cfg, const struct api_cfg_guard *guard,
              struct sesm *sessions, struct err *e);
/* The bound port (useful when cfg->port is 0). */
int api_port(const struct api *a);
/* POST /upload requests being received now, on either path (agentctl status). */
unsigned api_uploads_in_flight(struct api *a);
/*
 * Stops accepting requests, waits for those in progress, runs the queued session jobs to the
 * end, then frees a. NULL is ignored.
 */
void api_stop(struct api *a);
/*
 * Schedules a capture of the dashboard's screenshot widths (300 and 1000) of the session of
 * system_username 20 s from now into the screenshot cache (KASM_INTERFACE.md section 5 step
 * 6). Returns at once; nothing happens when the cache is off (screenshot_cache_seconds 0) or
 * the user has no session helper then. api_stop cancels the pending ones.
 */
void api_screenshot_refresh(struct api *a, const char *system_username);

enum api_folder {
    API_FOLDER_NONE = 0,     /* screenshots: a helper or nothing */
    API_FOLDER_UPLOAD = 1,   /* where POST /upload writes */
    API_FOLDER_DOWNLOAD = 2, /* what GET /Downloads/Downloads/ lists and serves */
};

/* Where a request goes: a session helper (lease != NULL) or the fallback folder. */
struct api_target {
    struct sesm_lease *lease; /* the helper of the user's session; release it when done */
    char folder[4096];        /* lease == NULL: the config's upload_dir or download_dir */
};

/*
 * The routing decision for a transfer or screenshot of `who` (docs/architecture.md, "Routing
 * to session helpers"):
 *  1. the helper of a session whose user is who->system_username (text after '@' dropped;
 *     case-insensitive on Windows);
 *  2. with multi_user false and no such session: the active console session's helper;
 *  3. no helper running at all (or no session manager): the fallback folder (upload_dir /
 *     download_dir; ERR_NOT_FOUND when which is API_FOLDER_NONE or the folder is not set);
 *  4. helpers running but none for this user (multi_user true, or no console helper):
 *     ERR_NOT_FOUND naming the user - the routes answer 503; nothing is written into a
 *     shared folder on behalf of a user who has no session.
 * Returns 0 with out filled; *status (when not NULL) is the HTTP status of a failure.
 */
int api_user_target(struct api *a, const struct api_claims *who, enum api_folder which,
                    struct api_target *out, int *status, struct err *e);
/* Releases the target's lease (if any); idempotent. */
void api_target_release(struct api_target *t);

#endif
