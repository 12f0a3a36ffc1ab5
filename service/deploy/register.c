/*
 * register.c - registration with a deployment (register.h): the command-line flow, applying
 * the answer to config.yaml and the PEM files, and the registration queued for a domain join.
 */
#define LOG_MODULE "register"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cJSON.h>

#include "fsutil.h"
#include "jwt.h"
#include "log.h"
#include "plat.h"
#include "register.h"

static int write_pem(const char *path, const char *what, const char *pem, struct err *e)
{
    char dir[CFG_PATH_MAX];
    int rc;

    if (!path[0])
        return err_set(e, ERR_INVALID, "the config has no path for the %s", what);
    if ((rc = fs_dirname(path, dir, sizeof(dir), e)) < 0 ||
        (rc = plat_dir_create_all(dir, e)) < 0 ||
        (rc = fs_write_atomic(path, pem, strlen(pem), FS_WRITE_PRIVATE, e)) < 0)
        return err_prefix(e, "cannot write the %s", what);
    log_debug("wrote the %s to %s", what, path);
    return 0;
}

int dreg_apply(struct cfg *cfg, const struct dapi_agent_info *info, int write_pems, unsigned save,
               struct err *e)
{
    struct jwt_claims claims = {0};
    int rc;

    if (write_pems) {
        if (info->server_cert &&
            (rc = write_pem(cfg->server_public_key, "TLS certificate (server_public_key)",
                            info->server_cert, e)) < 0)
            goto out;
        if (info->server_key &&
            (rc = write_pem(cfg->server_private_key, "TLS private key (server_private_key)",
                            info->server_key, e)) < 0)
            goto out;
        if (info->public_jwt_cert &&
            (rc = write_pem(cfg->jwt_public_key, "deployment's JWT public key (jwt_public_key)",
                            info->public_jwt_cert, e)) < 0)
            goto out;
    }
    if ((rc = cfg_set_agent_token(cfg, info->agent_jwt_token, e)) < 0)
        goto out;
    if (jwt_decode_unverified(info->agent_jwt_token, strlen(info->agent_jwt_token), &claims,
                              NULL) == 0) {
        const char *sid = jwt_claim_string(&claims, "server_id");
        if (sid && *sid && strlen(sid) < sizeof(cfg->server_id))
            snprintf(cfg->server_id, sizeof(cfg->server_id), "%s", sid);
    }
    if (info->have_flags) {
        if (cfg->multi_user != info->multi_user || cfg->user_sso != info->user_sso)
            log_info("the deployment sets multi_user %s, user_sso %s",
                     info->multi_user ? "true" : "false", info->user_sso ? "true" : "false");
        cfg->multi_user = info->multi_user;
        cfg->user_sso = info->user_sso;
    }
    if (save && (rc = cfg_save_keys(cfg, NULL, save, e)) < 0)
        err_prefix(e, "cannot save the configuration");
out:
    jwt_claims_free(&claims);
    return rc;
}

void dreg_conn_from_cfg(struct dapi_conn *conn, const struct cfg *cfg)
{
    memset(conn, 0, sizeof(*conn));
    for (size_t i = 0; i < cfg->api_host_count && i < DAPI_MAX_HOSTS; i++)
        conn->hosts[conn->host_count++] = cfg->api_host[i];
    conn->port = cfg->api_port;
    conn->net.verify_cert = cfg->api_verify_cert;
    conn->net.ca_file = cfg->api_ca_file;
}

int dreg_register(struct cfg *cfg, struct dapi_conn *conn, const char *token, const char *server_id,
                  unsigned save, struct err *e)
{
    struct jwt_claims claims = {0};
    struct dapi_agent_info info;
    char host[256], sid[128] = "";
    int rc;

    if (jwt_decode_unverified(token, strlen(token), &claims, NULL) == 0) {
        const char *c = jwt_claim_string(&claims, "server_id");
        if (server_id && *server_id)
            snprintf(sid, sizeof(sid), "%s", server_id);
        else if (c)
            snprintf(sid, sizeof(sid), "%s", c);
    } else if (server_id && *server_id) {
        snprintf(sid, sizeof(sid), "%s", server_id);
    } else {
        snprintf(sid, sizeof(sid), "%s", cfg->server_id);
    }
    jwt_claims_free(&claims);
    if (plat_hostname(host, sizeof(host), NULL) < 0)
        snprintf(host, sizeof(host), "localhost");

    rc = dapi_register(conn, token, NULL, sid, host, "registering", &info, e);
    if (rc < 0)
        return err_prefix(e, "registration failed");
    cfg->registered = 1;
    rc = dreg_apply(cfg, &info, 1, save, e);
    dapi_agent_info_free(&info);
    if (rc == 0)
        log_info("Component registration successful (server id %s)",
                 cfg->server_id[0] ? cfg->server_id : "(none)");
    return rc;
}

/* Loads the config, or starts from the defaults when the file does not exist yet. */
static int load_cfg(struct cfg *cfg, const char *path, struct err *e)
{
    char dir[CFG_PATH_MAX];
    int rc = cfg_load(cfg, path, e);

    if (rc != ERR_NOT_FOUND)
        return rc;
    cfg_free(cfg);
    if (fs_dirname(path, dir, sizeof(dir), e) < 0)
        return ERR_INVALID;
    cfg_defaults(cfg, dir);
    snprintf(cfg->path, sizeof(cfg->path), "%s", path);
    err_clear(e);
    return 0;
}

static int pending_path(const char *cfg_path, char *out, size_t cap, struct err *e)
{
    char dir[CFG_PATH_MAX];
    int rc = fs_dirname(cfg_path, dir, sizeof(dir), e);
    return rc < 0 ? rc : fs_join(dir, DREG_PENDING_FILE, out, cap, e);
}

static int queue_registration(const struct dreg_request *req, struct err *e)
{
    char path[CFG_PATH_MAX];
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    int rc;

    if ((rc = pending_path(req->cfg_path, path, sizeof(path), e)) < 0)
        goto out;
    if (!o || !cJSON_AddStringToObject(o, "host", req->host) ||
        !cJSON_AddNumberToObject(o, "port", req->port) ||
        !cJSON_AddStringToObject(o, "registration_token", req->token) ||
        (req->server_id && !cJSON_AddStringToObject(o, "server_id", req->server_id)) ||
        !(text = cJSON_PrintUnformatted(o))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = fs_write_atomic(path, text, strlen(text), FS_WRITE_PRIVATE, e)) < 0) {
        err_prefix(e, "cannot queue the registration");
        goto out;
    }
    printf("This machine has not joined its domain yet: the registration with %s:%d was "
           "queued in %s\nand the Kasm service performs it when it starts after the domain "
           "join.\n",
           req->host, req->port, path);
    log_info("registration with %s:%d queued in %s until the domain join", req->host, req->port,
             path);
out:
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    cJSON_Delete(o);
    return rc;
}

int dreg_pending_run(struct cfg *cfg, struct err *e)
{
    char path[CFG_PATH_MAX];
    char *text = NULL;
    cJSON *o = NULL;
    const cJSON *host, *port, *token, *sid;
    struct dapi_conn conn;
    int rc;

    if ((rc = pending_path(cfg->path, path, sizeof(path), e)) < 0)
        return rc;
    rc = fs_read_all(path, 64 * 1024, &text, NULL, e);
    if (rc == ERR_NOT_FOUND) {
        err_clear(e);
        return 0;
    }
    if (rc < 0)
        return rc;
    if (dreg_domain_joined() != 1) {
        log_info("a registration is queued in %s; waiting for the domain join", path);
        rc = 0;
        goto out;
    }
    o = cJSON_Parse(text);
    host = cJSON_GetObjectItemCaseSensitive(o, "host");
    port = cJSON_GetObjectItemCaseSensitive(o, "port");
    token = cJSON_GetObjectItemCaseSensitive(o, "registration_token");
    sid = cJSON_GetObjectItemCaseSensitive(o, "server_id");
    if (!cJSON_IsString(host) || !cJSON_IsNumber(port) || !cJSON_IsString(token)) {
        rc = err_set(e, ERR_PARSE, "%s is not a queued registration", path);
        goto out;
    }
    memset(&conn, 0, sizeof(conn));
    conn.hosts[0] = host->valuestring;
    conn.host_count = 1;
    conn.port = (int)port->valuedouble;
    conn.net.verify_cert = cfg->api_verify_cert;
    conn.net.ca_file = cfg->api_ca_file;
    if ((rc = dreg_register(cfg, &conn, token->valuestring,
                            cJSON_IsString(sid) ? sid->valuestring : NULL, 0, e)) < 0)
        goto out;
    snprintf(cfg->api_host[0], sizeof(cfg->api_host[0]), "%s", host->valuestring);
    cfg->api_host_count = 1;
    cfg->api_port = conn.port;
    if ((rc = cfg_save_keys(cfg, NULL, CFG_OWN_REGISTER, e)) < 0)
        goto out;
    plat_path_remove(path, NULL);
    log_info("the queued registration is done; removed %s", path);
    rc = 1;
out:
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    cJSON_Delete(o);
    return rc;
}

int dreg_reach_check(const struct dcl_options *net, const char *host, int port,
                     uint32_t tcp_timeout_ms, enum dreg_step *failed, char *date, size_t date_cap,
                     struct err *e)
{
    enum dreg_step step = DREG_STEP_RESOLVE;
    int rc;

    if (date && date_cap)
        date[0] = '\0';
    if ((rc = dcl_resolve_check(host, port, e)) < 0) {
        err_prefix(e, "name resolution failed");
        goto out;
    }
    step = DREG_STEP_TCP;
    if ((rc = dcl_tcp_check(host, port, tcp_timeout_ms, e)) < 0) {
        err_prefix(e, "the deployment is not reachable over TCP");
        goto out;
    }
    step = DREG_STEP_HEALTH;
    if ((rc = dapi_healthcheck_date(net, host, port, date, date_cap, e)) < 0) {
        err_prefix(e, "the Kasm API health check failed");
        goto out;
    }
    step = DREG_STEP_NONE;
out:
    if (failed)
        *failed = step;
    return rc;
}

int dreg_cli(const struct dreg_request *req, struct err *e)
{
    struct cfg cfg;
    struct dapi_conn conn;
    struct log_options lo = {0};
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    if ((rc = load_cfg(&cfg, req->cfg_path, e)) < 0)
        goto out;
    lo.level = (req->debug > 0 || (req->debug < 0 && cfg.debug)) ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    lo.file_path = cfg.log_file[0] ? cfg.log_file : NULL;
    log_init(&lo, NULL);

    if (req->await_domain == 1 && dreg_domain_joined() == 0) {
        if ((rc = queue_registration(req, e)) == 0)
            rc = 1;
        goto out;
    }

    memset(&conn, 0, sizeof(conn));
    conn.hosts[0] = req->host;
    conn.host_count = 1;
    conn.port = req->port;
    conn.net.verify_cert = cfg.api_verify_cert;
    conn.net.ca_file = cfg.api_ca_file;
    if ((rc = dreg_reach_check(&conn.net, req->host, req->port, 10000, NULL, NULL, 0, e)) < 0)
        goto out;
    log_info("registering with %s:%d", req->host, req->port);
    snprintf(cfg.api_host[0], sizeof(cfg.api_host[0]), "%s", req->host);
    cfg.api_host_count = 1;
    cfg.api_port = req->port;
    if ((rc = dreg_register(&cfg, &conn, req->token, req->server_id, CFG_OWN_REGISTER, e)) < 0)
        goto out;
    /* the next step (a running agent reloads, or a restart) is the caller's: service/main.c */
    printf("Registered with %s:%d as server %s.\n", req->host, req->port, cfg.server_id);
    fflush(stdout);
out:
    if (rc < 0)
        log_error("%s", e ? e->msg : "registration failed");
    log_shutdown();
    cfg_free(&cfg);
    return rc;
}
