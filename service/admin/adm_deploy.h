/*
 * adm_deploy.h - the admin commands that act on the deployment trust (prefix adm_deploy_):
 * `token refresh`, `register` and `reload`, all run by the token lifecycle's thread
 * (lifecycle.h, dlc_command), and the lifecycle's history added to `status` and
 * `token status`. Results are documented in docs/admin.md; none carries a secret.
 */
#ifndef KASM_ADM_DEPLOY_H
#define KASM_ADM_DEPLOY_H

#include <cjson/cJSON.h>

#include "proto.h"

struct dlc;

#define ADM_DEPLOY_WAIT_MS 60000 /* how long a command waits for the lifecycle's result */

/* 1 for the commands of this file: "token refresh", "register", "reload". */
int adm_deploy_handles(const char *command);
/*
 * Runs one of them (l may be NULL: the lifecycle is not running). Fills r, or rep's status
 * and error (then returns -1). Wipes the registration token in args.
 */
int adm_deploy_cmd(struct dlc *l, const char *command, cJSON *args, cJSON *r,
                   struct proto_admin_reply *rep);
/* Adds the next refresh, the last check-in and refresh, and the last API host to r. */
void adm_deploy_add_history(struct dlc *l, cJSON *r);

#endif
