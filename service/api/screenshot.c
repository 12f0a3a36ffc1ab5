/*
 * screenshot.c - POST /screenshot?width=N: the multi_user/user_sso rule and the width check.
 * The image comes from the session helper (its own issue); until then the route answers 503.
 */
#include "api_priv.h"

#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "reply.h"

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
    int disabled;
    (void)who;
    api_cfg_read_begin(a);
    disabled = a->cfg->multi_user && !a->cfg->user_sso;
    api_cfg_read_end(a);
    if (disabled)
        return http_reply_error(conn, 403, "Screenshots are disabled for this user");
    if (shot_width(conn) < 0)
        return http_reply_error(conn, 400, "width must be an integer from 16 to 3840");
    return http_reply_error(
        conn, 503, "Screenshots need the session helper, which is not available in this version");
}
