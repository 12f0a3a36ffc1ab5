/*
 * cfg_oracle_gen.c - helper of tests/oracle/cfg_oracle.py (the PyYAML oracle of common/cfg.c).
 *
 *   cfg_oracle_gen IN OUT [--tricky]
 *
 * Loads IN with cfg_load, prints what it read as JSON on stdout (known keys, the token, the
 * unknown keys' names), optionally overwrites some keys with awkward values (--tricky: the
 * oracle knows the same values), and saves to OUT with cfg_save. Exit 0, or 2 with the error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cfg.h"

static void add_str(cJSON *o, const char *k, const char *v)
{
    cJSON_AddStringToObject(o, k, v);
}

static cJSON *to_json(const struct cfg *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *hosts = cJSON_CreateArray();
    cJSON *unknown = cJSON_CreateArray();

    cJSON_AddBoolToObject(o, "ssl", c->ssl);
    cJSON_AddNumberToObject(o, "port", c->port);
    add_str(o, "server_private_key", c->server_private_key);
    add_str(o, "server_public_key", c->server_public_key);
    add_str(o, "jwt_public_key", c->jwt_public_key);
    add_str(o, "upload_dir", c->upload_dir);
    add_str(o, "download_dir", c->download_dir);
    add_str(o, "log_file", c->log_file);
    cJSON_AddBoolToObject(o, "multi_user", c->multi_user);
    cJSON_AddBoolToObject(o, "user_sso", c->user_sso);
    for (size_t i = 0; i < c->api_host_count; i++)
        cJSON_AddItemToArray(hosts, cJSON_CreateString(c->api_host[i]));
    cJSON_AddItemToObject(o, "api_host", hosts);
    cJSON_AddNumberToObject(o, "api_port", c->api_port);
    cJSON_AddBoolToObject(o, "registered", c->registered);
    add_str(o, "script_path", c->script_path);
    add_str(o, "server_id", c->server_id);
    cJSON_AddBoolToObject(o, "debug", c->debug);
    if (c->agent_jwt_token)
        add_str(o, "agent_jwt_token", c->agent_jwt_token);
    else
        cJSON_AddNullToObject(o, "agent_jwt_token");
    add_str(o, "listen_address", c->listen_address);
    cJSON_AddNumberToObject(o, "heartbeat_interval", c->heartbeat_interval);
    cJSON_AddBoolToObject(o, "api_verify_cert", c->api_verify_cert);
    add_str(o, "api_ca_file", c->api_ca_file);
    cJSON_AddNumberToObject(o, "jwt_leeway", c->jwt_leeway);
    add_str(o, "admin_socket", c->admin_socket);
    cJSON_AddNumberToObject(o, "max_request_header_bytes", c->max_request_header_bytes);
    cJSON_AddNumberToObject(o, "max_json_body_bytes", c->max_json_body_bytes);
    cJSON_AddNumberToObject(o, "request_timeout_ms", c->request_timeout_ms);
    cJSON_AddNumberToObject(o, "max_concurrent_uploads", c->max_concurrent_uploads);
    cJSON_AddNumberToObject(o, "num_threads", c->num_threads);
    cJSON_AddNumberToObject(o, "screenshot_cache_seconds", c->screenshot_cache_seconds);
    add_str(o, "session_helper", c->session_helper);
    add_str(o, "sessions_file", c->sessions_file);
    cJSON_AddNumberToObject(o, "script_timeout", c->script_timeout);
    cJSON_AddBoolToObject(o, "logoff_on_session_end", c->logoff_on_session_end);
    add_str(o, "log_forward_level", c->log_forward_level);
    for (size_t i = 0; i < cfg_unknown_count(c); i++)
        cJSON_AddItemToArray(unknown, cJSON_CreateString(cfg_unknown_key(c, i)));
    cJSON_AddItemToObject(o, "_unknown", unknown);
    return o;
}

static void set_tricky(struct cfg *c)
{
    struct err e = ERR_INIT;

    snprintf(c->server_id, sizeof(c->server_id), "%s", "id: with colon # and hash");
    snprintf(c->upload_dir, sizeof(c->upload_dir), "%s",
             "C:\\Users\\Public\\Kasm Upload\\\xC3\xBCn\xC3\xAF"
             "c\xC3\xB8"
             "d\xC3\xA9 \xE2\x98\x83");
    snprintf(c->download_dir, sizeof(c->download_dir), "%s", "  leading spaces");
    snprintf(c->log_file, sizeof(c->log_file), "%s", "C:\\logs\\agent #1.log");
    snprintf(c->listen_address, sizeof(c->listen_address), "%s", "'quoted' \"double\"");
    snprintf(c->api_ca_file, sizeof(c->api_ca_file), "%s", "line1\nline2\ttab");
    snprintf(c->script_path, sizeof(c->script_path), "%s", "true");
    snprintf(c->api_host[0], sizeof(c->api_host[0]), "%s", "a.example.com");
    snprintf(c->api_host[1], sizeof(c->api_host[1]), "%s", "b.example.com");
    c->api_host_count = 2;
    c->api_host_seq = 1;
    c->port = 4903;
    c->debug = 1;
    if (cfg_set_agent_token(c, "eyJ.tricky.token", &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct cfg c;
    struct err e = ERR_INIT;
    cJSON *j;
    char *s;

    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--tricky") != 0)) {
        fprintf(stderr, "usage: cfg_oracle_gen IN OUT [--tricky]\n");
        return 2;
    }
    if (cfg_load(&c, argv[1], &e) < 0) {
        fprintf(stderr, "load: %s\n", e.msg);
        cfg_free(&c);
        return 2;
    }
    j = to_json(&c);
    s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(j);
    if (argc == 4)
        set_tricky(&c);
    if (cfg_save(&c, argv[2], &e) < 0) {
        fprintf(stderr, "save: %s\n", e.msg);
        cfg_free(&c);
        return 2;
    }
    cfg_free(&c);
    return 0;
}
