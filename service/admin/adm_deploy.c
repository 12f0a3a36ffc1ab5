/*
 * adm_deploy.c - the admin commands token refresh, register and reload, and the token
 * lifecycle's history in status / token status (adm_deploy.h).
 */
#define LOG_MODULE "admin"

#include "adm_deploy.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lifecycle.h"
#include "log.h"
#include "plat.h"
#include "policy.h"

enum { ADM_DEPLOY_USAGE = 2, ADM_DEPLOY_FAILED = 5 }; /* agentctl's exit codes (adm.c) */

static int adm_deploy_fail(struct proto_admin_reply *rep, int status, const char *msg)
{
    rep->status = status;
    snprintf(rep->error, sizeof(rep->error), "%s", msg);
    return -1;
}

int adm_deploy_handles(const char *command)
{
    return strcmp(command, "token refresh") == 0 || strcmp(command, "register") == 0 ||
           strcmp(command, "reload") == 0;
}

static void adm_deploy_time(cJSON *o, const char *name, int64_t t)
{
    char key[64], when[64];
    cJSON_AddNumberToObject(o, name, (double)t);
    snprintf(key, sizeof(key), "%s_text", name);
    dpol_format_time(t, when, sizeof(when));
    cJSON_AddStringToObject(o, key, when);
}

static void adm_deploy_event(cJSON *r, const char *name, const struct dlc_event *ev)
{
    cJSON *o;
    if (!ev->done) {
        cJSON_AddNullToObject(r, name);
        return;
    }
    if (!(o = cJSON_AddObjectToObject(r, name)))
        return;
    adm_deploy_time(o, "time", ev->time);
    cJSON_AddStringToObject(o, "what", ev->what);
    cJSON_AddBoolToObject(o, "ok", ev->ok);
    if (ev->ok)
        cJSON_AddNullToObject(o, "error");
    else
        cJSON_AddStringToObject(o, "error", ev->error);
}

void adm_deploy_add_history(struct dlc *l, cJSON *r)
{
    struct dlc_history h;
    int64_t now = plat_wall_time();

    if (!l)
        return;
    dlc_history(l, &h);
    cJSON_AddNumberToObject(r, "heartbeat_seconds", h.heartbeat_ms / 1000.0);
    if (h.has_next_refresh) {
        adm_deploy_time(r, "next_refresh", h.next_refresh);
        cJSON_AddNumberToObject(r, "next_refresh_in_seconds",
                                (double)(h.next_refresh > now ? h.next_refresh - now : 0));
    } else {
        cJSON_AddNullToObject(r, "next_refresh");
        cJSON_AddNullToObject(r, "next_refresh_text");
        cJSON_AddNullToObject(r, "next_refresh_in_seconds");
    }
    adm_deploy_event(r, "last_checkin", &h.checkin);
    adm_deploy_event(r, "last_refresh", &h.refresh);
    if (h.last_host[0]) {
        cJSON_AddStringToObject(r, "last_api_host", h.last_host);
        cJSON_AddNumberToObject(r, "last_api_port", h.last_port);
    } else {
        cJSON_AddNullToObject(r, "last_api_host");
        cJSON_AddNullToObject(r, "last_api_port");
    }
    cJSON_AddBoolToObject(r, "needs_registration", h.need_registration);
}

/* "a, b" -> ["a", "b"] */
static void adm_deploy_list(cJSON *r, const char *name, const char *joined)
{
    cJSON *arr = cJSON_AddArrayToObject(r, name);
    const char *p = joined;

    while (arr && *p) {
        size_t n = strcspn(p, ",");
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(n < sizeof(key) - 1 ? n : sizeof(key) - 1), p);
        cJSON_AddItemToArray(arr, cJSON_CreateString(key));
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
}

static void adm_deploy_token(cJSON *r, const struct dlc_result *res)
{
    if (res->has_exp)
        adm_deploy_time(r, "token_expires", res->exp);
    else {
        cJSON_AddNullToObject(r, "token_expires");
        cJSON_AddNullToObject(r, "token_expires_text");
    }
    cJSON_AddStringToObject(r, "api_host", res->host);
    cJSON_AddNumberToObject(r, "api_port", res->port);
}

/* Reads the register arguments; the token stays in args (wiped by the caller). */
static int adm_deploy_reg_args(cJSON *args, struct dlc_register_args *reg,
                               struct proto_admin_reply *rep)
{
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(args, "host");
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(args, "port");
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(args, "token");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(args, "server_id");

    memset(reg, 0, sizeof(*reg));
    if (!cJSON_IsString(host) || !host->valuestring[0] || !cJSON_IsString(token) ||
        !token->valuestring[0])
        return adm_deploy_fail(rep, ADM_DEPLOY_USAGE, "register needs --host and --token");
    reg->port = 443;
    if (port) {
        if (!cJSON_IsNumber(port) || port->valuedouble < 1 || port->valuedouble > 65535 ||
            port->valuedouble != (double)(int)port->valuedouble)
            return adm_deploy_fail(rep, ADM_DEPLOY_USAGE,
                                   "register: --port expects a number from 1 to 65535");
        reg->port = (int)port->valuedouble;
    }
    if (sid && (!cJSON_IsString(sid) || !sid->valuestring[0]))
        return adm_deploy_fail(rep, ADM_DEPLOY_USAGE, "register: --server-id needs an id");
    reg->host = host->valuestring;
    reg->token = token->valuestring;
    reg->server_id = sid ? sid->valuestring : NULL;
    return 0;
}

static void adm_deploy_wipe(cJSON *args)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(args, "token");
    if (cJSON_IsString(t) && t->valuestring)
        OPENSSL_cleanse(t->valuestring, strlen(t->valuestring));
}

static const char *adm_deploy_step_text(const char *step)
{
    if (strcmp(step, "name resolution") == 0)
        return "name resolution";
    if (strcmp(step, "tcp") == 0)
        return "the TCP connection";
    if (strcmp(step, "health check") == 0)
        return "the health check";
    if (strcmp(step, "registration") == 0)
        return "the deployment's answer";
    if (strcmp(step, "save") == 0)
        return "saving the configuration";
    if (strcmp(step, "parse") == 0)
        return "reading the configuration";
    return step;
}

static void adm_deploy_reload_result(cJSON *r, const struct dlc_result *res)
{
    cJSON *notes;

    adm_deploy_list(r, "applied", res->applied);
    adm_deploy_list(r, "restart_needed", res->restart);
    cJSON_AddBoolToObject(r, "restart_required", res->restart[0] != '\0');
    notes = cJSON_AddArrayToObject(r, "notes");
    if (!notes)
        return;
    cJSON_AddItemToArray(notes,
                         cJSON_CreateString("the JWT public key (jwt_public_key) is re-read by "
                                            "the HTTPS API whenever its file changes"));
    cJSON_AddItemToArray(
        notes, cJSON_CreateString("certificates (server_public_key, server_private_key) are "
                                  "loaded when the HTTPS listener starts: restart to change them"));
    if (res->heartbeat_env)
        cJSON_AddItemToArray(notes, cJSON_CreateString("heartbeat_interval: the environment "
                                                       "variable KASM_HEARTBEAT_MS overrides it"));
    if (res->debug_cli)
        cJSON_AddItemToArray(notes, cJSON_CreateString("debug: the agent's --debug option "
                                                       "overrides it"));
}

int adm_deploy_cmd(struct dlc *l, const char *command, cJSON *args, cJSON *r,
                   struct proto_admin_reply *rep)
{
    struct dlc_register_args reg;
    struct dlc_result res;
    struct err e = ERR_INIT;
    enum dlc_cmd cmd;
    int rc = -1;

    memset(&reg, 0, sizeof(reg));
    if (!l) {
        adm_deploy_fail(rep, ADM_DEPLOY_FAILED, "the token lifecycle is not running");
        goto out;
    }
    if (strcmp(command, "token refresh") == 0) {
        cmd = DLC_CMD_REFRESH;
    } else if (strcmp(command, "reload") == 0) {
        cmd = DLC_CMD_RELOAD;
    } else {
        cmd = DLC_CMD_REGISTER;
        if (adm_deploy_reg_args(args, &reg, rep) < 0)
            goto out;
    }
    if (dlc_command(l, cmd, cmd == DLC_CMD_REGISTER ? &reg : NULL, ADM_DEPLOY_WAIT_MS, &res, &e) <
        0) {
        adm_deploy_fail(rep, ADM_DEPLOY_FAILED, e.msg);
        goto out;
    }
    if (res.rc < 0) {
        char msg[ERR_MSG_MAX + 128];
        if (cmd == DLC_CMD_RELOAD)
            snprintf(msg, sizeof(msg),
                     "the configuration was not reloaded, the running one "
                     "stays: %s",
                     res.error);
        else if (cmd == DLC_CMD_REFRESH)
            snprintf(msg, sizeof(msg), "the token refresh failed: %s", res.error);
        else
            snprintf(msg, sizeof(msg), "the registration failed at %.40s: %.500s",
                     adm_deploy_step_text(res.step),
                     strncmp(res.error, "registration failed: ", 21) == 0 ? res.error + 21
                                                                          : res.error);
        adm_deploy_fail(rep, ADM_DEPLOY_FAILED, msg);
        goto out;
    }
    if (cmd == DLC_CMD_REFRESH) {
        cJSON_AddBoolToObject(r, "refreshed", 1);
        adm_deploy_token(r, &res);
    } else if (cmd == DLC_CMD_REGISTER) {
        cJSON_AddBoolToObject(r, "registered", 1);
        cJSON_AddStringToObject(r, "server_id", res.server_id);
        adm_deploy_token(r, &res);
        cJSON_AddStringToObject(r, "note",
                                "the new token, server id and API host are in use now; the "
                                "TLS certificate the deployment sent is used after the next "
                                "service restart");
    } else {
        adm_deploy_reload_result(r, &res);
    }
    rc = 0;
out:
    adm_deploy_wipe(args);
    return rc;
}
