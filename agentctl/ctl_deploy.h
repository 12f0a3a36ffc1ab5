/*
 * ctl_deploy.h - agentctl's side of the commands that act on the deployment trust (prefix
 * ctl_deploy_): `token refresh`, `register --host H [--port P] --token T [--server-id ID]`
 * and `reload` - their options, their request arguments, their tables, and the lifecycle's
 * history lines of `status` / `token status` (service/admin/adm_deploy.c answers).
 */
#ifndef KASM_CTL_DEPLOY_H
#define KASM_CTL_DEPLOY_H

#include <cjson/cJSON.h>

struct ctl_deploy_opts {
    const char *host;
    long port;         /* 0: not given */
    const char *token; /* a secret: sent, never printed */
    const char *server_id;
};

/* The option at argv[*i] if it is one of register's: 1 taken (*i moved past its value),
 * 0 not ours, -1 a usage error (printed). */
int ctl_deploy_option(struct ctl_deploy_opts *o, int argc, char **argv, int *i, const char *prog);
/* Checks the options against the command: 0 fine, -1 a usage error (printed). */
int ctl_deploy_check(const char *command, const struct ctl_deploy_opts *o, const char *prog);
/* Adds register's arguments to the request. */
void ctl_deploy_args(const struct ctl_deploy_opts *o, cJSON *args);
/* Prints the result of token refresh / register / reload; 0 when command is not one of them. */
int ctl_deploy_print(const char *command, const cJSON *r);
/* The lifecycle's lines of status and token status. */
void ctl_deploy_print_history(const cJSON *r);

#endif
