/*
 * api.h - the deployment API calls the agent makes (KASM_INTERFACE.md section 6; prefix
 * dapi_): health check, register_component (registration and check-in), refresh_token and
 * set_server_status, over one or more API hosts with failover, and the tolerant parsing of
 * their answers.
 *
 * Every call health-checks the current host first and moves to the next configured host when
 * the check or the call fails at the network level. Tokens travel as ?token= and in JSON
 * bodies as the interface requires; they never appear in an error message.
 *
 * Result codes: 0 success; ERR_EXPIRED the deployment says the token has expired (an exchange
 * inside the grace period may still work); ERR_AUTH the deployment refused the token for good
 * (past the grace period, or access denied: a new registration is needed); ERR_NETWORK /
 * ERR_TIMEOUT / ERR_PROTOCOL the deployment could not be reached or answered badly (retry).
 */
#ifndef KASM_DEPLOY_API_H
#define KASM_DEPLOY_API_H

#include <stddef.h>

#include "err.h"
#include "https_client.h"

#define DAPI_MAX_HOSTS 8

struct dapi_conn {
    const char *hosts[DAPI_MAX_HOSTS]; /* borrowed */
    size_t host_count;
    size_t current; /* index of the host that answered last */
    int port;
    struct dcl_options net;
};

/* What register_component answers (registration and check-in); heap strings or NULL. */
struct dapi_agent_info {
    char *agent_jwt_token;
    char *public_jwt_cert;
    char *server_cert;
    char *server_key;
    int multi_user, user_sso; /* valid when have_flags */
    int have_flags;
};
void dapi_agent_info_free(struct dapi_agent_info *info);

/* ---- pure parsing (unit-tested) ---- */

/*
 * Judges an "error_message" text: ERR_EXPIRED for "The JWT token has expired" and "Expired JWT
 * utilized on register_component", ERR_AUTH for "... beyond the configured refresh period",
 * "Access Denied!" and anything else.
 */
int dapi_classify_error(const char *message);
/*
 * Checks an HTTP answer (status and JSON body) for an error: returns 0 when it is a success
 * and fills *json (cJSON*, caller deletes), else an ERR_* code with the deployment's message.
 * what names the call in the message ("H:P answered HTTP 500").
 */
int dapi_check_answer(const char *host, int port, const char *what, int status, const char *body,
                      size_t len, void **json, struct err *e);
/* Reads a register_component answer (server_agent {...}). */
int dapi_parse_agent_info(const char *body, size_t len, struct dapi_agent_info *out, struct err *e);
/*
 * Reads the new token of a refresh_token answer: agent_jwt_token, auth_token or token, at the
 * top level or under server_agent (the first found in that order). *token is heap.
 */
int dapi_parse_refresh(const char *body, size_t len, char **token, struct err *e);
/* The registration/check-in request body (heap); reg_token NULL for a check-in. */
char *dapi_register_body(const char *reg_token, const char *server_id, const char *hostname,
                         const char *service_status);

/* ---- calls ---- */

/* GET /api/__healthcheck on one host. */
int dapi_healthcheck(const struct dcl_options *net, const char *host, int port, struct err *e);
/* The same; date (cap bytes, may be NULL) receives the answer's HTTP Date header ("" if none). */
int dapi_healthcheck_date(const struct dcl_options *net, const char *host, int port, char *date,
                          size_t cap, struct err *e);
/*
 * POST /api/admin/register_component. reg_token set: registration; else a check-in with
 * agent_token as ?token=. server_id may be NULL or "" (UUID registration without an id).
 */
int dapi_register(struct dapi_conn *c, const char *reg_token, const char *agent_token,
                  const char *server_id, const char *hostname, const char *service_status,
                  struct dapi_agent_info *out, struct err *e);
/* POST /api/admin/refresh_token; *new_token is heap. */
int dapi_refresh(struct dapi_conn *c, const char *token, char **new_token, struct err *e);
/* POST /api/set_server_status (keepalive). */
int dapi_set_server_status(struct dapi_conn *c, const char *token, const char *status,
                           const char *message, struct err *e);

/* ---- session calls (the session orchestrator, service/orch/) ---- */

/*
 * POST /api/set_kasm_session_status?token=<session token> with body (JSON text: kasm_id,
 * status, status_progress, destroyed ...). ERR_NETWORK/ERR_TIMEOUT/ERR_PROTOCOL: worth a retry.
 */
int dapi_set_session_status(struct dapi_conn *c, const char *session_token, const char *body,
                            struct err *e);
/*
 * GET /api/set_kasm_session_credential?token=<session token>: the one-time password of the
 * local account (*password heap, NUL-terminated; a secret: the caller wipes and frees it).
 * A second call is refused by the deployment (ERR_AUTH).
 */
int dapi_get_session_credential(struct dapi_conn *c, const char *session_token, char **password,
                                struct err *e);
/*
 * GET /api/admin/get_file_mapping_contents?token=<the mapping's token>: the raw bytes
 * (*data heap, NUL-terminated, *len bytes; at most c->net.max_body).
 */
int dapi_get_file_mapping_contents(struct dapi_conn *c, const char *map_token, char **data,
                                   size_t *len, struct err *e);

#endif
