/*
 * screenshot.c - POST /screenshot?width=N: the multi_user/user_sso rule and the width check
 * first, then a PNG from the session helper chosen by api_user_target (helper_client.h).
 * No helper: 503. The helper's ERROR (503 when its session has no display) is passed on.
 */
#define LOG_MODULE "api"

#include "api_priv.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "helper_client.h"
#include "log.h"
#include "reply.h"
#include "sesm.h"

#define SHOT_WIDTH_DEFAULT 300
#define SHOT_WIDTH_MIN     16
#define SHOT_WIDTH_MAX     3840

/* The width parameter: default when absent, else decimal digits in range; -1 when invalid. */
static int shot_width(struct mg_connection *conn)
{
    char v[16];
    long w;
    int rc = http_query_param(conn, "width", v, sizeof(v));

    if (rc == ERR_NOT_FOUND)
        return SHOT_WIDTH_DEFAULT;
    if (rc < 0 || !v[0] || strspn(v, "0123456789") != strlen(v) || strlen(v) > 5)
        return -1;
    w = strtol(v, NULL, 10);
    return (w >= SHOT_WIDTH_MIN && w <= SHOT_WIDTH_MAX) ? (int)w : -1;
}

int api_screenshot(struct api *a, struct mg_connection *conn, const struct api_claims *who)
{
    struct api_target t;
    struct hcl_shot shot;
    struct err e = ERR_INIT;
    int disabled, width, status = 503;

    api_cfg_read_begin(a);
    disabled = a->cfg->multi_user && !a->cfg->user_sso;
    api_cfg_read_end(a);
    if (disabled)
        return http_reply_error(conn, 403, "Screenshots are disabled for this user");
    if ((width = shot_width(conn)) < 0)
        return http_reply_error(conn, 400, "width must be an integer from 16 to 3840");
    if (api_user_target(a, who, API_FOLDER_NONE, &t, &status, &e) < 0)
        return http_reply_error(conn, status, e.msg);
    if (hcl_shot_take(sesm_lease_mux(t.lease), width, HCL_TIMEOUT_MS, &shot, &status, &e) < 0) {
        log_info("screenshot via the helper of session %u: %s",
                 (unsigned)sesm_lease_session(t.lease), e.msg);
        status = http_reply_error(conn, status, e.msg);
    } else {
        http_reply_head(conn, 200, "image/png", (long long)shot.size,
                        "Cache-Control: no-store\r\n");
        mg_write(conn, shot.png, shot.size);
        free(shot.png);
        status = 200;
    }
    api_target_release(&t);
    return status;
}
