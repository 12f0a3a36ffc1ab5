/*
 * health.c - GET /__healthcheck: {"cpu_usage": %, "memory_usage": %, "disk_usage": %}.
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <stdio.h>

#include "cfg.h"
#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "reply.h"

int api_healthcheck(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    struct plat_usage u;
    struct err e = ERR_INIT;
    char dir[CFG_PATH_MAX], body[160];

    (void)who;
    /* the volume the agent lives on: the folder of its configuration file */
    if (!a->cfg->path[0] || fs_dirname(a->cfg->path, dir, sizeof(dir), NULL) < 0)
        snprintf(dir, sizeof(dir), "%s", PLAT_PATH_SEP_STR);
    if (plat_system_usage(&u, dir, &e) < 0) {
        log_warning("health check: %s", e.msg);
        return http_reply_error(conn, 500, "cannot read the system usage");
    }
    snprintf(body, sizeof(body),
             "{\"cpu_usage\": %.1f, \"memory_usage\": %.1f, \"disk_usage\": %.1f}", u.cpu_pct,
             u.mem_pct, u.disk_pct);
    return http_reply_json(conn, 200, body);
}
