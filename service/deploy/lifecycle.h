/*
 * lifecycle.h - the agent token lifecycle in the service (prefix dlc_): one thread that
 * checks in at start ("starting", then "running"), sends a keepalive every heartbeat,
 * refreshes the agent token before it expires, exchanges it inside the grace period after
 * expiry, and recovers from registration_token.txt beside config.yaml when the token is past
 * its grace period or missing - without a restart (KASM_INTERFACE.md sections 6 and 7).
 *
 * The configuration is shared state: while the lifecycle runs it is the one writer of the
 * struct cfg it was given (agent_jwt_token, server_id, multi_user, user_sso, registered) and
 * of config.yaml; every other thread reads those fields only between dlc_cfg_lock() and
 * dlc_cfg_unlock(). Every save is atomic (cfg_save), so a crash in the middle of a refresh
 * leaves the old token (still inside its grace period) or the new one.
 *
 * The heartbeat is the config's heartbeat_interval (seconds); the environment variable
 * KASM_HEARTBEAT_MS overrides it in milliseconds (tests and diagnostics; docs/config.md).
 */
#ifndef KASM_DEPLOY_LIFECYCLE_H
#define KASM_DEPLOY_LIFECYCLE_H

#include "cfg.h"
#include "err.h"

struct dlc;

/* Starts the lifecycle thread over cfg (which must outlive dlc_stop). */
int dlc_start(struct dlc **out, struct cfg *cfg, struct err *e);
/* Stops the thread (an exchange in flight finishes or times out) and frees l; NULL ignored. */
void dlc_stop(struct dlc *l);
void dlc_cfg_lock(struct dlc *l);
void dlc_cfg_unlock(struct dlc *l);

/* The agent token's state for `agentctl status` / `token status` (no secret in it). */
struct dlc_token_status {
    int registered; /* the config's `registered` */
    int has_token;  /* agent_jwt_token is present */
    int has_exp;    /* the token has an exp claim */
    int64_t exp;    /* Unix seconds (has_exp) */
};
/* Fills *out from the configuration, under the config lock; thread-safe. */
void dlc_token_status(struct dlc *l, struct dlc_token_status *out);

/*
 * A hook called on the lifecycle thread after every successful check-in, outside the config
 * lock, with the connection and the fresh token (borrowed for the call). It must return
 * quickly. The service-start work uses it (service/scripts/scr_startup.h). Set before
 * dlc_start; NULL removes it.
 */
struct dapi_conn;
typedef void (*dlc_checkin_fn)(struct dlc *l, const struct dapi_conn *conn, const char *token,
                               void *ctx);
void dlc_set_checkin_hook(dlc_checkin_fn fn, void *ctx);

#endif
