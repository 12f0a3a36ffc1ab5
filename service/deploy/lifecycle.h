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
 * dlc_cfg_unlock(). Every save is a merge (cfg_save_keys: config.yaml read again, only the
 * keys the operation changed replaced, an administrator's edits kept) and atomic, so a crash in
 * the middle of a refresh leaves the old token (still inside its grace period) or the new one.
 * A config.yaml that no longer loads is left alone: the new values are used from memory and
 * saved at the first heartbeat after it is fixed.
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

/* ---- for agentctl (service/admin/adm_deploy.c) ---- */

/* One exchange with the deployment as the lifecycle remembers it (no secret in it). */
struct dlc_event {
    int done;                /* 0: none yet since the start */
    int64_t time;            /* Unix seconds */
    int ok;                  /* the exchange succeeded */
    char what[32];           /* "check-in (starting)", "keepalive", "refresh", "registration" */
    char error[ERR_MSG_MAX]; /* !ok: why */
};

struct dlc_history {
    struct dlc_event checkin; /* the last check-in or keepalive */
    struct dlc_event refresh; /* the last token refresh (scheduled or asked for) */
    char last_host[256];      /* the API host that answered last ("" none yet) */
    int last_port;
    int has_next_refresh;  /* the token has an expiry */
    int64_t next_refresh;  /* Unix seconds: the heartbeat that will refresh the token */
    uint32_t heartbeat_ms; /* the interval in use */
    int need_registration; /* the deployment refused the token for good */
};
/* Fills *out; thread-safe. */
void dlc_history(struct dlc *l, struct dlc_history *out);

/* A command run by the lifecycle thread between two heartbeats. */
enum dlc_cmd {
    DLC_CMD_REFRESH = 1, /* refresh the agent token now (one attempt) */
    DLC_CMD_REGISTER,    /* register with host:port and a registration token */
    DLC_CMD_RELOAD,      /* read config.yaml again and apply it (reload.h) */
};

struct dlc_register_args {
    const char *host;
    int port;
    const char *token;     /* a secret: copied, wiped after use */
    const char *server_id; /* NULL or "": from the token (register.h) */
};

struct dlc_result {
    int rc;                  /* 0, or the ERR_* code of the failure */
    char error[ERR_MSG_MAX]; /* rc < 0: the reason (no secret) */
    char step[32];           /* rc < 0: register: "name resolution", "tcp", "health check",
                                "registration", "save"; reload: "parse"; refresh: "refresh" */
    int has_exp;             /* refresh, register: the new token's expiry */
    int64_t exp;
    char server_id[128]; /* register */
    char host[256];      /* the API host that answered (refresh, register) */
    int port;
    char applied[1024]; /* reload: keys applied, comma separated ("" none) */
    char restart[1024]; /* reload: changed keys that need a restart */
    int heartbeat_env;  /* reload: KASM_HEARTBEAT_MS overrides heartbeat_interval */
    int debug_cli;      /* reload: --debug on the command line overrides debug */
};

/* The agent's --debug (-1 not given): a reload then leaves the log level alone. */
void dlc_set_debug_override(struct dlc *l, int debug);

/*
 * Asks the lifecycle thread to run cmd and waits up to timeout_ms for its end: 0 with *out
 * filled (out->rc says how the command went); ERR_BUSY another command is still running
 * (never two at once); ERR_TIMEOUT it is still running (it finishes on its own: see
 * `token status`); ERR_CANCELLED the service is stopping.
 */
int dlc_command(struct dlc *l, enum dlc_cmd cmd, const struct dlc_register_args *reg,
                uint32_t timeout_ms, struct dlc_result *out, struct err *e);

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
