/*
 * ctl_deploy.c - options, request arguments and tables of token refresh, register and
 * reload, and the lifecycle's history lines (ctl_deploy.h).
 */
#include "ctl_deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "timefmt.h"

#define CTL_DEPLOY_TOKEN_MAX 1536 /* fits the request's 2 KiB of arguments with the rest */

static char ctl_deploy_token_buf[CTL_DEPLOY_TOKEN_MAX + 2]; /* --token-file's token */

/* Reads the token of --token-file (a file, or "-": standard input), blanks trimmed. */
static int ctl_deploy_read_token(const char *path, const char *prog)
{
    char *text = NULL;
    size_t len = 0, n;
    struct err e = ERR_INIT;
    const char *t;

    if (strcmp(path, "-") == 0) {
        len = fread(ctl_deploy_token_buf, 1, sizeof(ctl_deploy_token_buf) - 1, stdin);
        ctl_deploy_token_buf[len] = '\0';
    } else {
        if (fs_read_all(path, 64 * 1024, &text, &len, &e) < 0) {
            fprintf(stderr, "%s: --token-file: %s\n", prog, e.msg);
            return -1;
        }
        snprintf(ctl_deploy_token_buf, sizeof(ctl_deploy_token_buf), "%s", text);
        memset(text, 0, len);
        free(text);
    }
    for (t = ctl_deploy_token_buf; *t == ' ' || *t == '\t' || *t == '\r' || *t == '\n'; t++)
        ;
    memmove(ctl_deploy_token_buf, t, strlen(t) + 1);
    n = strlen(ctl_deploy_token_buf);
    while (n && strchr(" \t\r\n", ctl_deploy_token_buf[n - 1]))
        ctl_deploy_token_buf[--n] = '\0';
    if (!n || n > CTL_DEPLOY_TOKEN_MAX) {
        fprintf(stderr, "%s: --token-file: %s\n", prog,
                n ? "the token is too long" : "no token in it");
        return -1;
    }
    return 0;
}

static const char *ctl_deploy_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double ctl_deploy_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int ctl_deploy_usage(const char *prog, const char *msg)
{
    fprintf(stderr, "%s: %s; run '%s --help' for the commands\n", prog, msg, prog);
    return -1;
}

int ctl_deploy_option(struct ctl_deploy_opts *o, int argc, char **argv, int *i, const char *prog)
{
    const char *s = argv[*i], *val;

    if (strcmp(s, "--host") != 0 && strcmp(s, "--port") != 0 && strcmp(s, "--token") != 0 &&
        strcmp(s, "--token-file") != 0 && strcmp(s, "--server-id") != 0)
        return 0;
    if (*i + 1 >= argc || !argv[*i + 1][0]) {
        char msg[64];
        snprintf(msg, sizeof(msg), "missing value for %s", s);
        return ctl_deploy_usage(prog, msg);
    }
    val = argv[++*i];
    if (strcmp(s, "--host") == 0) {
        o->host = val;
    } else if (strcmp(s, "--token") == 0) {
        o->token = val; /* never echoed, not even in an error */
    } else if (strcmp(s, "--token-file") == 0) {
        if (ctl_deploy_read_token(val, prog) < 0)
            return -1;
        o->token = ctl_deploy_token_buf;
    } else if (strcmp(s, "--server-id") == 0) {
        o->server_id = val;
    } else {
        char *end = NULL;
        o->port = strtol(val, &end, 10);
        if (*end || o->port < 1 || o->port > 65535)
            return ctl_deploy_usage(prog, "--port expects a number from 1 to 65535");
    }
    return 1;
}

int ctl_deploy_check(const char *command, const struct ctl_deploy_opts *o, const char *prog)
{
    int any = o->host || o->port || o->token || o->server_id;

    if (strcmp(command, "register") != 0)
        return any ? ctl_deploy_usage(prog, "--host, --port, --token(-file) and --server-id "
                                            "belong to the register command")
                   : 0;
    if (!o->host || !o->token)
        return ctl_deploy_usage(prog, "register needs --host HOST and --token TOKEN or "
                                      "--token-file FILE (the registration token from the Kasm "
                                      "admin UI)");
    return 0;
}

void ctl_deploy_args(const struct ctl_deploy_opts *o, cJSON *args)
{
    if (o->host)
        cJSON_AddStringToObject(args, "host", o->host);
    if (o->port)
        cJSON_AddNumberToObject(args, "port", (double)o->port);
    if (o->token)
        cJSON_AddStringToObject(args, "token", o->token);
    if (o->server_id)
        cJSON_AddStringToObject(args, "server_id", o->server_id);
}

static void ctl_deploy_event(const char *label, const cJSON *ev)
{
    const char *err;
    if (!cJSON_IsObject(ev)) {
        printf("%-16s %s\n", label, "none yet");
        return;
    }
    err = ctl_deploy_str(ev, "error");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "ok")))
        printf("%-16s %s, %s: ok\n", label, ctl_deploy_str(ev, "time_text"),
               ctl_deploy_str(ev, "what"));
    else
        printf("%-16s %s, %s: FAILED: %s\n", label, ctl_deploy_str(ev, "time_text"),
               ctl_deploy_str(ev, "what"), err ? err : "?");
}

void ctl_deploy_print_history(const cJSON *r)
{
    const char *next = ctl_deploy_str(r, "next_refresh_text");
    const char *host = ctl_deploy_str(r, "last_api_host");

    if (!cJSON_GetObjectItemCaseSensitive(r, "heartbeat_seconds"))
        return; /* the lifecycle is not running */
    if (next) {
        char d[64];
        {
            double in = ctl_deploy_num(r, "next_refresh_in_seconds");
            tfmt_duration(in < 0 ? 0 : (int64_t)in, d, sizeof(d)); /* overdue: "in 0 s" */
        }
        printf("%-16s %s (in %s; heartbeat every %.0f s)\n", "next refresh", next, d,
               ctl_deploy_num(r, "heartbeat_seconds"));
    } else
        printf("%-16s %s\n", "next refresh", "none scheduled (the token has no expiry)");
    ctl_deploy_event("last check-in", cJSON_GetObjectItemCaseSensitive(r, "last_checkin"));
    ctl_deploy_event("last refresh", cJSON_GetObjectItemCaseSensitive(r, "last_refresh"));
    if (host)
        printf("%-16s %s:%.0f\n", "last api host", host, ctl_deploy_num(r, "last_api_port"));
    else
        printf("%-16s %s\n", "last api host", "none yet");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "needs_registration")))
        printf("%-16s %s\n", "attention",
               "the deployment refused the token: register again (agentctl register)");
}

static void ctl_deploy_list(const char *label, const cJSON *arr)
{
    const cJSON *k;
    int n = 0;
    printf("%-16s ", label);
    cJSON_ArrayForEach(k, arr)
    {
        printf("%s%s", n++ ? ", " : "", cJSON_IsString(k) ? k->valuestring : "?");
    }
    printf("%s\n", n ? "" : "(none)");
}

int ctl_deploy_print(const char *command, const cJSON *r)
{
    const char *exp = ctl_deploy_str(r, "token_expires_text");
    const cJSON *k;

    if (strcmp(command, "token refresh") == 0 || strcmp(command, "register") == 0) {
        if (strcmp(command, "register") == 0) {
            printf("%-16s %s\n", "registered", "yes");
            printf("%-16s %s\n", "server id", ctl_deploy_str(r, "server_id"));
        } else {
            printf("%-16s %s\n", "token refresh", "ok");
        }
        printf("%-16s %s\n", "token expires", exp ? exp : "never (no expiry)");
        printf("%-16s %s:%.0f\n", "api host", ctl_deploy_str(r, "api_host"),
               ctl_deploy_num(r, "api_port"));
        if (ctl_deploy_str(r, "note"))
            printf("%-16s %s\n", "note", ctl_deploy_str(r, "note"));
        return 1;
    }
    if (strcmp(command, "reload") == 0) {
        ctl_deploy_list("applied", cJSON_GetObjectItemCaseSensitive(r, "applied"));
        ctl_deploy_list("restart needed", cJSON_GetObjectItemCaseSensitive(r, "restart_needed"));
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(r, "notes"))
        {
            printf("%-16s %s\n", "note", cJSON_IsString(k) ? k->valuestring : "");
        }
        return 1;
    }
    return 0;
}
