/*
 * serve.h - the helper's side of the service channel: one pmux (pmux.h) over the inherited
 * channel, answering the service's requests (proto.h catalogue) as the logged-on user.
 *
 *   PING -> PONG
 *   DL_OPEN -> DL_INFO (or ERROR 404 "Not found" / 500 "Download failed"), then on the same
 *       request DL_READ -> DATA... END, DL_LIST -> the HTML listing as DATA... END, or CANCEL
 *   UPLOAD_BEGIN, DATA..., END -> UPLOAD_RESULT (early on a failure; CANCEL aborts)
 *   SHOT -> SHOT_INFO, DATA... END (ERROR 503 without a display)
 *   anything else -> ERROR 501
 *
 * Threads: the mux's reader thread hands each new request to on_request, which starts one
 * worker thread for it; at most max_workers run at once (more are answered ERROR 503 "Too
 * many requests"). Files are resolved under the Downloads folder with name_root_resolve()
 * (once, at start) and lst_resolve(); uploads go through the helper's own upl_registry, so
 * every file is created by this process, i.e. by the session user.
 */
#ifndef KASM_HLP_SERVE_H
#define KASM_HLP_SERVE_H

#include <stdint.h>

#include "err.h"
#include "pchan.h"

struct pshm;

#define HLP_WORKERS_DEFAULT 32

struct hlp_options {
    const char *downloads;       /* the Downloads folder; NULL: file requests answer 503 */
    const char *downloads_error; /* logged at start when downloads is NULL (may be NULL) */
    const char *profile;         /* the user's profile folder (FILE_PUT/FILE_DELETE); NULL: 503 */
    uint32_t session_id;         /* sent in our HELLO */
    const char *user;            /* sent in our HELLO (account name) */
    unsigned max_workers;        /* requests served at once; 0: HLP_WORKERS_DEFAULT */
    unsigned max_uploads;        /* upload chunks received at once (upl_config.max_in_flight);
                                    0: the engine's default */
    uint32_t ready_timeout_ms;   /* wait for the service's HELLO; 0: 30000 */
    int forward_logs;            /* 1: log records go to the service as LOG frames */
    struct pshm *shared;         /* the service's shared window, read-only (pshm_open_reader),
                                    or NULL; hlp_serve takes it over like the channel */
};

/*
 * Serves the channel ch (taken over with opt->shared, also on failure) until it closes. 0 when
 * the channel ended after a good handshake; ERR_PROTOCOL when the service is another version
 * (or not a kasm service); ERR_TIMEOUT / ERR_IO when no HELLO came. Every worker has finished
 * and every file is closed when this returns.
 */
int hlp_serve(struct pchan *ch, const struct hlp_options *opt, struct err *e);

#endif
