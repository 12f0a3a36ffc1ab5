/*
 * adm.h - the admin channel server in the service (prefix adm_): the endpoint agentctl talks
 * to (docs/admin.md). It is created first thing at start; failing to create it is fatal
 * (another agent holds it, a squatter, an unsafe directory). One thread accepts connections
 * and serves them one after the other: each connection carries exactly one ADMIN_REQUEST
 * frame and gets one ADMIN_REPLY frame (proto.h), then is closed. A client that sends
 * anything else, too much, or nothing within ADM_IO_TIMEOUT_MS is dropped.
 *
 * Authorisation: POSIX - a Unix socket (cfg admin_socket; adm_endpoint.h) of mode 0600 in a
 * directory of mode 0700 owned by the agent's user (root in production), and SO_PEERCRED: uid 0 or
 * the agent's own euid. Windows - \\.\pipe\kasm-open-agent-admin, DACL SYSTEM + Administrators,
 * first instance, remote clients rejected, and the client's token (impersonated) must be
 * SYSTEM or in Administrators. A refused client gets status 4.
 *
 * Commands (results in docs/admin.md): status, sessions, logs, token status; token refresh,
 * register and reload in adm_deploy.c.
 */
#ifndef KASM_ADM_H
#define KASM_ADM_H

#include <stdint.h>

#include "cfg.h"
#include "adm_endpoint.h"
#include "err.h"
#include "proto.h"

#define ADM_IO_TIMEOUT_MS 5000 /* a connection must deliver its request within this */

struct adm;
struct api;
struct dlc;
struct sesm;

struct adm_config {
    struct cfg *cfg;      /* read only (server_id, registered under the lifecycle's lock) */
    const char *cfg_path; /* the configuration file in use */
};

/* Creates the channel and starts the server thread. */
int adm_start(const struct adm_config *c, struct adm **out, struct err *e);
/* Makes the lifecycle, the session manager and the HTTPS API visible to the commands (any
 * may be NULL). */
void adm_attach(struct adm *a, struct dlc *lifecycle, struct sesm *sessions, struct api *api);
/* Stops the thread, removes the channel, frees a; NULL ignored. Call before stopping what
 * was attached. */
void adm_stop(struct adm *a);

/* Builds the reply to one request (the server thread; exposed for the unit tests). The
 * caller frees rep->result. */
void adm_dispatch(struct adm *a, const struct proto_admin_request *req,
                  struct proto_admin_reply *rep);

#endif
