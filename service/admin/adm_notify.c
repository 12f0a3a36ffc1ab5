/*
 * adm_notify.c - `reload` sent to a running agent after a command-line registration
 * (adm_notify.h).
 */
#include "adm_notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "adm_endpoint.h"
#include "cfg.h"
#include "ctl_exchange.h"
#include "proto.h"

#define ADM_NOTIFY_TIMEOUT_MS 90000

/* "applied: a, b; needs a restart: c" from the reload result. */
static void adm_notify_summary(const char *result, char *out, size_t cap)
{
    cJSON *r = cJSON_Parse(result ? result : "");
    const char *names[2] = {"applied", "restart_needed"};
    size_t used = 0;

    out[0] = '\0';
    for (int k = 0; r && k < 2; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, names[k]), *x;
        int n = 0, w = snprintf(out + used, cap - used, "%s%s: ", k ? "; " : "",
                                k ? "needs a restart" : "applied");
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
        cJSON_ArrayForEach(x, arr)
        {
            w = snprintf(out + used, cap - used, "%s%s", n++ ? ", " : "",
                         cJSON_IsString(x) ? x->valuestring : "?");
            if (w < 0 || (size_t)w >= cap - used)
                break;
            used += (size_t)w;
        }
        if (!n && used < cap)
            used += (size_t)snprintf(out + used, cap - used, "nothing");
        if (used >= cap)
            break;
    }
    cJSON_Delete(r);
}

int adm_notify_reload(const char *cfg_path, char *summary, size_t cap, struct err *e)
{
    struct cfg cfg;
    char endpoint[ADM_ENDPOINT_MAX];
    struct proto_admin_reply rep;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    memset(&rep, 0, sizeof(rep));
    if (summary && cap)
        summary[0] = '\0';
    if ((rc = cfg_load(&cfg, cfg_path, e)) < 0 ||
        (rc = adm_endpoint(cfg.admin_socket, endpoint, sizeof(endpoint), e)) < 0)
        goto out;
    rc = ctl_exchange(endpoint, 0, "reload", "{}", ADM_NOTIFY_TIMEOUT_MS, &rep, NULL, e);
    if (rc == ERR_NOT_FOUND) { /* no agent runs with this configuration */
        err_clear(e);
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (rep.status != 0) {
        rc = err_set(e, ERR_INVALID, "%s", rep.error);
        goto out;
    }
    if (summary && cap)
        adm_notify_summary(rep.result, summary, cap);
    rc = 1;
out:
    proto_admin_reply_clear(&rep);
    cfg_free(&cfg);
    return rc;
}
