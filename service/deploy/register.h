/*
 * register.h - registration of this machine with a Kasm deployment (prefix dreg_):
 * the command line of Kasm's installer scripts (KASM_INTERFACE.md section 2), applying a
 * registration or check-in answer to config.yaml and the PEM files, the server id rules, and
 * the registration queued until a Windows domain join (--await-domain True).
 *
 * Server id: a JWT registration token carries server_id in its claims; --server-id, when
 * given, is sent as target_component.id (the deployment checks that they match). A plain-UUID
 * component token carries none: --server-id, else the config's server_id, else none is sent
 * and the deployment assigns one; the id stored afterwards is always the one in the claims of
 * the agent token the deployment returns.
 */
#ifndef KASM_DEPLOY_REGISTER_H
#define KASM_DEPLOY_REGISTER_H

#include <stdint.h>

#include "api.h"
#include "cfg.h"
#include "err.h"

struct dreg_request {
    const char *cfg_path;
    const char *host;
    int port;
    const char *token;     /* a secret */
    const char *server_id; /* NULL: from the token's claims */
    int await_domain;      /* 1: wait for the domain join (Windows) */
    int debug;             /* -1: the config's */
};

/*
 * Applies a registration or check-in answer to cfg: agent_jwt_token, multi_user/user_sso,
 * server_id from the token's claims, and (write_pems) the three PEM files at the paths of
 * server_public_key, server_private_key and jwt_public_key, each atomic and admin-only, their
 * directories created. Then, when save (enum cfg_own keys) is not 0, saves those keys into
 * config.yaml by merge (cfg_save_keys: the administrator's other keys and comments stay).
 */
int dreg_apply(struct cfg *cfg, const struct dapi_agent_info *info, int write_pems, unsigned save,
               struct err *e);

/* Fills conn from cfg: its hosts, port and TLS options. */
void dreg_conn_from_cfg(struct dapi_conn *conn, const struct cfg *cfg);

/*
 * Registers with token against conn (the lifecycle's recovery path and the command line):
 * server_id as described above, hostname = this machine's FQDN. On success cfg is updated and
 * saved (dreg_apply, the keys in save; 0: not saved, the caller saves) and cfg->registered set.
 */
int dreg_register(struct cfg *cfg, struct dapi_conn *conn, const char *token, const char *server_id,
                  unsigned save, struct err *e);

/* Which step of dreg_reach_check() failed. */
enum dreg_step {
    DREG_STEP_NONE = 0,
    DREG_STEP_RESOLVE, /* name resolution */
    DREG_STEP_TCP,     /* TCP connection */
    DREG_STEP_HEALTH,  /* TLS and GET /api/__healthcheck */
};

/*
 * The checks before talking to a deployment host (the command line's registration and
 * agentctl doctor): name resolution, a TCP connection within tcp_timeout_ms, and the API
 * health check over net. The error says which failed ("name resolution failed: ...", "the
 * deployment is not reachable over TCP: ...", "the Kasm API health check failed: ..."), so
 * does *failed (may be NULL). date (may be NULL) receives the health check's HTTP Date header
 * ("" when absent).
 */
int dreg_reach_check(const struct dcl_options *net, const char *host, int port,
                     uint32_t tcp_timeout_ms, enum dreg_step *failed, char *date, size_t date_cap,
                     struct err *e);

/*
 * The command line: checks name resolution, TCP reach and the API health check (the error
 * says which failed), registers, writes the config and says so on stdout (the next step -
 * a running agent reloads, or a restart - is the caller's). Returns 0 registered, 1 queued
 * until the domain join (said on stdout), or an ERR_* code with a one-line reason in e.
 */
int dreg_cli(const struct dreg_request *req, struct err *e);

/* The pending registration file beside config.yaml (--await-domain True). */
#define DREG_PENDING_FILE "pending_registration.json"
/*
 * Performs a queued registration if there is one and the machine has joined its domain:
 * 1 done (file removed), 0 nothing to do or still waiting, <0 failed (file kept).
 */
int dreg_pending_run(struct cfg *cfg, struct err *e);

/* Platform: 1 the machine is in a domain (POSIX: always 1), 0 not yet, <0 unknown. */
int dreg_domain_joined(void);

#endif
