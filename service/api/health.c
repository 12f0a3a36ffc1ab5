/*
 * health.c - GET /__healthcheck: {"cpu_usage": %, "memory_usage": %, "disk_usage": %}.
 * The figures are sampled at most once per HEALTH_SAMPLE_MS and shared by the requests in
 * between (a monitor polling hard must not turn the check into load of its own; the CPU
 * share is the busy time since the previous sample, so a very short interval means little).
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <stdio.h>

#include "cfg.h"
#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "reply.h"

#define HEALTH_SAMPLE_MS 1000

int api_healthcheck(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    struct plat_usage u;
    struct err e = ERR_INIT;
    char dir[CFG_PATH_MAX], body[160];
    uint64_t now = plat_monotonic_ms();
    int fresh;

    (void)who;
    /* the volume the agent lives on: the folder of its configuration file */
    if (!a->cfg->path[0] || fs_dirname(a->cfg->path, dir, sizeof(dir), NULL) < 0)
        snprintf(dir, sizeof(dir), "%s", PLAT_PATH_SEP_STR);

    plat_mutex_lock(a->lock);
    fresh = a->usage_at_ms && now - a->usage_at_ms < HEALTH_SAMPLE_MS;
    if (fresh)
        u = a->usage;
    plat_mutex_unlock(a->lock);
    if (!fresh) {
        if (plat_system_usage(&u, dir, &e) < 0) {
            log_warning("health check: %s", e.msg);
            return http_reply_error(conn, 500, "cannot read the system usage");
        }
        plat_mutex_lock(a->lock);
        a->usage = u;
        a->usage_at_ms = now ? now : 1;
        plat_mutex_unlock(a->lock);
    }
    snprintf(body, sizeof(body),
             "{\"cpu_usage\": %.1f, \"memory_usage\": %.1f, \"disk_usage\": %.1f}", u.cpu_pct,
             u.mem_pct, u.disk_pct);
    return http_reply_json(conn, 200, body);
}
