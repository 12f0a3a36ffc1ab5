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
/*
 * Stops accepting requests, waits for those in progress, runs the queued session jobs to the
 * end, then frees a. NULL is ignored.
 */
void api_stop(struct api *a);

enum api_folder {
    API_FOLDER_UPLOAD = 1,   /* where POST /upload writes */
    API_FOLDER_DOWNLOAD = 2, /* what GET /Downloads/Downloads/ lists and serves */
};

/*
 * The folder a transfer for `who` uses. This version answers the config's upload_dir /
 * download_dir for every user; the session-helper issue swaps the implementation for the
 * user's own Downloads folder (reached through the helper running as that user).
 */
int api_user_folder(const struct cfg *c, const struct api_claims *who, enum api_folder which,
                    char *out, size_t cap, struct err *e);

#endif
