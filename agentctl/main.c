/*
 * main.c - agentctl(.exe): administrator diagnostics for the running agent over its admin
 * channel (docs/admin.md): a named pipe only SYSTEM and Administrators can open on Windows,
 * a root-only Unix socket on Linux (its path from the agent's config: --cfg FILE). Each
 * command is one ADMIN_REQUEST / ADMIN_REPLY exchange (proto.h); the result prints as a
 * table, or with --json as the result object itself.
 *
 * Exit codes: 0 success; 2 a command-line error; 3 the agent is not running, the channel is
 * missing (or not the agent's); 4 permission denied;
 * 5 the agent answered with an error; 6 doctor: at least one check failed (ctl_doctor.h), or
 * screenshot: the session has no helper or no display (ctl_misc.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "adm_endpoint.h"
#include "cfg.h"
#include "ctl_chan.h"
#include "ctl_deploy.h"
#include "ctl_doctor.h"
#include "ctl_misc.h"
#include "err.h"
#include "fsutil.h"
#include "plat.h"
#include "proto.h"
#include "timefmt.h"

#ifdef _WIN32
#define PROG "agentctl.exe"
#else
#define PROG "agentctl"
#endif

#define CTL_TIMEOUT_MS 90000 /* token refresh, register, reload wait up to 60 s in the agent */

enum ctl_exit {
    CTL_OK = 0,
    CTL_USAGE = 2,
    CTL_UNAVAILABLE = 3,
    CTL_PERMISSION = 4,
    CTL_FAILED = 5,
};

struct ctl_command {
    const char *name; /* as sent: "token status" */
    const char *args;
    const char *help;
};

static const struct ctl_command ctl_commands[] = {
    {"status", "", "Version, uptime, registration, token expiry, listener, sessions."},
    {"sessions", "", "Logged-on users' sessions and their session helpers."},
    {"logs", "[--follow] [--lines N] [--level L]",
     "Recent log records kept in memory by the agent."},
    {"token status", "", "Expiry of the agent's own token."},
    {"token refresh", "", "Refresh the agent's token now and show the result."},
    {"register", "--host H --token T [--port P]", "Register through the agent; no restart."},
    {"reload", "", "Re-read config.yaml; list what needs a restart."},
    {"config", "", "The configuration in use, the token hidden."},
    {"screenshot", "--session N --out FILE", "A PNG of a session's desktop (--width W)."},
    {"doctor", "", "Checks with a verdict and a fix for each (exit 6: one failed)."},
};
#define CTL_NCOMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

struct ctl_args {
    char command[PROTO_ADMIN_COMMAND_MAX];
    const char *cfg_path;
    int json, debug, follow;
    long lines; /* 0: the agent's default */
    const char *level;
    struct ctl_deploy_opts deploy; /* register's options (ctl_deploy.c) */
    long session, width;           /* screenshot: session -1 when not given; width 0: the agent's */
    const char *out;               /* screenshot: the PNG file */
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  " PROG " COMMAND [--json] [--cfg FILE] [--debug] [OPTIONS]\n"
            "  " PROG " --version | --help\n"
            "\n"
            "Diagnostics for the Kasm open agent %s over its admin channel. Windows: the\n"
            "pipe \\\\.\\pipe\\kasm-open-agent-admin, open to SYSTEM and Administrators only\n"
            "(run from an elevated prompt). Linux: the Unix socket admin_socket of the\n"
            "agent's configuration (default %s), open to root only.\n"
            "\n"
            "Commands:\n",
            KASM_VERSION, ADM_SOCKET_DEFAULT);
    for (size_t k = 0; k < CTL_NCOMMANDS; k++) {
        char left[64];
        snprintf(left, sizeof(left), "%s %s", ctl_commands[k].name, ctl_commands[k].args);
        fprintf(out, "  %-40s %s\n", left, ctl_commands[k].help);
    }
    fprintf(out, "\n"
                 "Options:\n"
                 "  --json        Print the result as a JSON object (for scripts).\n"
                 "  --cfg FILE    The agent's configuration: its admin_socket is used (Linux).\n"
                 "  --debug       Explain on stderr how the channel is found and checked.\n"
                 "  --lines N     logs: the last N records (1-1000, default 50; --follow: 10).\n"
                 "  --level L     logs: only records at level L or above (debug, info, warning,\n"
                 "                error, critical).\n"
                 "  --host H, --port P (default 443), --token T, --server-id ID\n"
                 "                register: the deployment and the registration token (the\n"
                 "                token is sent to the agent only, never printed).\n"
                 "  --token-file FILE\n"
                 "                register: read the token from FILE ('-': standard input), so\n"
                 "                that it is not in the process list.\n"
                 "  --follow      logs: keep printing new records until Ctrl-C (--json: one\n"
                 "                object per line).\n"
                 "  --session N   screenshot: the session (see 'sessions').\n"
                 "  --out FILE    screenshot: where the PNG goes (written whole or not at all).\n"
                 "  --width W     screenshot: width in pixels, 16-3840 (default 3840; never\n"
                 "                wider than the screen).\n"
                 "\n"
                 "Exit codes: 0 success; 2 a command-line error; 3 the agent is not running, its\n"
                 "channel is missing; 4 permission denied;\n"
                 "5 the agent answered with an error; 6 doctor: at least one check failed, or\n"
                 "screenshot: the session has no helper running or no display.\n");
}

static int usage_error(const char *msg, const char *what)
{
    fprintf(stderr, "%s: %s%s; run '%s --help' for the commands\n", PROG, msg, what ? what : "",
            PROG);
    return CTL_USAGE;
}

/* Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct ctl_args *a)
{
    const char *words[2] = {NULL, NULL};
    int nwords = 0, rc;

    memset(a, 0, sizeof(*a));
    a->session = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (strcmp(s, "--debug") == 0) {
            a->debug = 1;
        } else if (strcmp(s, "--follow") == 0 || strcmp(s, "-f") == 0) {
            a->follow = 1;
        } else if (strcmp(s, "--cfg") == 0 || strcmp(s, "--lines") == 0 || strcmp(s, "-n") == 0 ||
                   strcmp(s, "--level") == 0) {
            if (i + 1 >= argc || !*argv[i + 1])
                return usage_error("missing value for ", s);
            if (strcmp(s, "--cfg") == 0) {
                a->cfg_path = argv[++i];
            } else if (strcmp(s, "--level") == 0) {
                a->level = argv[++i];
            } else {
                char *end = NULL;
                a->lines = strtol(argv[++i], &end, 10);
                if (*end || a->lines < 1 || a->lines > 1000)
                    return usage_error("--lines expects a number from 1 to 1000", NULL);
            }
        } else if (strcmp(s, "--session") == 0 || strcmp(s, "--width") == 0 ||
                   strcmp(s, "--out") == 0) {
            char *end = NULL;
            long v;
            if (i + 1 >= argc || !*argv[i + 1])
                return usage_error("missing value for ", s);
            if (strcmp(s, "--out") == 0) {
                a->out = argv[++i];
                continue;
            }
            v = strtol(argv[++i], &end, 10);
            if (strcmp(s, "--session") == 0 && (*end || v < 0 || v > 0x7fffffffL))
                return usage_error("--session expects a session id (see 'sessions')", NULL);
            if (strcmp(s, "--width") == 0 && (*end || v < 16 || v > 3840))
                return usage_error("--width expects a number from 16 to 3840", NULL);
            *(strcmp(s, "--session") == 0 ? &a->session : &a->width) = v;
        } else if ((rc = ctl_deploy_option(&a->deploy, argc, argv, &i, PROG)) != 0) {
            if (rc < 0)
                return CTL_USAGE;
        } else if (s[0] == '-') {
            return usage_error("unknown option ", s);
        } else if (nwords < 2) {
            words[nwords++] = s;
        } else {
            return usage_error("too many words in the command", NULL);
        }
    }
    if (nwords == 0) {
        usage(stderr);
        return CTL_USAGE;
    }
    if (strcmp(words[0], "token") == 0) {
        if (nwords < 2)
            return usage_error("token needs a subcommand: status or refresh", NULL);
        snprintf(a->command, sizeof(a->command), "token %.32s", words[1]);
    } else {
        if (nwords > 1)
            return usage_error("unexpected argument after the command: ", words[1]);
        snprintf(a->command, sizeof(a->command), "%.60s", words[0]);
    }
    for (size_t k = 0; k < CTL_NCOMMANDS; k++) {
        if (strcmp(a->command, ctl_commands[k].name) != 0)
            continue;
        if (a->follow && strcmp(a->command, "logs") != 0)
            return usage_error("--follow belongs to the logs command", NULL);
        if ((a->session >= 0 || a->width || a->out) && strcmp(a->command, "screenshot") != 0)
            return usage_error("--session, --out and --width belong to the screenshot command",
                               NULL);
        if (strcmp(a->command, "screenshot") == 0 && (a->session < 0 || !a->out))
            return usage_error("screenshot needs --session N and --out FILE", NULL);
        if ((a->lines || a->level) && strcmp(a->command, "logs") != 0)
            return usage_error("--lines and --level belong to the logs command", NULL);
        if (ctl_deploy_check(a->command, &a->deploy, PROG) < 0)
            return CTL_USAGE;
        return -1;
    }
    fprintf(stderr, "%s: unknown command '%.40s'; run '%s --help' for the commands\n", PROG,
            a->command, PROG);
    return CTL_USAGE;
}

/* ---- the exchange ---- */

static int ctl_exit_for(int rc)
{
    switch (rc) {
    case ERR_PERMISSION:
        return CTL_PERMISSION;
    case ERR_NOT_FOUND:
    case ERR_AUTH:
        return CTL_UNAVAILABLE;
    default:
        return CTL_FAILED;
    }
}

static int ctl_request(const struct ctl_args *a, const char *endpoint,
                       struct proto_admin_reply *rep, struct err *e)
{
    cJSON *args = cJSON_CreateObject();
    char *argtext = NULL;
    int rc;

    memset(rep, 0, sizeof(*rep));
    if (!args) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (a->lines)
        cJSON_AddNumberToObject(args, "lines", (double)a->lines);
    if (a->level)
        cJSON_AddStringToObject(args, "level", a->level);
    ctl_deploy_args(&a->deploy, args);
    if (!(argtext = cJSON_PrintUnformatted(args))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = ctl_exchange(endpoint, a->debug, a->command, argtext, CTL_TIMEOUT_MS, rep, NULL, e);
out:
    cJSON_free(argtext);
    cJSON_Delete(args);
    return rc;
}

/* ---- human output ---- */

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int jbool(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void print_token(const cJSON *r)
{
    char d[64];
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(r, "token_expires");

    printf("%-16s %s\n", "registered", jbool(r, "registered") ? "yes" : "no");
    if (!jbool(r, "token_present")) {
        printf("%-16s %s\n", "agent token", "none (register the agent)");
        return;
    }
    if (!cJSON_IsNumber(exp)) {
        printf("%-16s %s\n", "agent token", "present, no expiry");
        return;
    }
    tfmt_duration((int64_t)jnum(r, "token_seconds_left"), d, sizeof(d));
    if (jbool(r, "token_expired"))
        printf("%-16s expired %s (%s ago)\n", "agent token", jstr(r, "token_expires_text"), d);
    else
        printf("%-16s expires %s (in %s)\n", "agent token", jstr(r, "token_expires_text"), d);
    ctl_deploy_print_history(r);
}

/* status: the certificate, uploads in flight and errors of the last hour (adm_misc.c). */
static void print_status_misc(const cJSON *r)
{
    char d[64];

    tfmt_duration((int64_t)jnum(r, "cert_seconds_left"), d, sizeof(d));
    if (*jstr(r, "cert_error"))
        printf("%-16s %s\n", "certificate", jstr(r, "cert_error"));
    else
        printf("%-16s %s, %s %s (%s%s%s)\n", "certificate", jstr(r, "cert_subject"),
               jbool(r, "cert_expired") ? "expired" : "expires", jstr(r, "cert_expires_text"),
               jbool(r, "cert_expired") ? "" : "in ", d, jbool(r, "cert_expired") ? " ago" : "");
    printf("%-16s %.0f in flight\n", "uploads", jnum(r, "uploads_in_flight"));
    printf("%-16s %.0f in the last hour (error or critical)\n", "errors",
           jnum(r, "errors_last_hour"));
}

static void print_status(const cJSON *r)
{
    const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(r, "api_hosts");
    const cJSON *h;
    char up[64];
    int n = 0;

    tfmt_duration((int64_t)jnum(r, "uptime_seconds"), up, sizeof(up));
    printf("%-16s running, version %s, pid %.0f\n", "agent", jstr(r, "version"), jnum(r, "pid"));
    printf("%-16s %s (up %s)\n", "started", jstr(r, "started"), up);
    printf("%-16s %s\n", "config", jstr(r, "config"));
    printf("%-16s %s\n", "admin channel", jstr(r, "admin_channel"));
    printf("%-16s %s\n", "server id", *jstr(r, "server_id") ? jstr(r, "server_id") : "(none)");
    printf("%-16s ", "api hosts");
    cJSON_ArrayForEach(h, hosts)
    {
        printf("%s%s", n++ ? ", " : "", cJSON_IsString(h) ? h->valuestring : "?");
    }
    printf("%s (port %.0f)\n", n ? "" : "(none)", jnum(r, "api_port"));
    printf("%-16s %s:%.0f (%s)\n", "listening", jstr(r, "listen_address"), jnum(r, "listen_port"),
           jbool(r, "ssl") ? "https" : "http");
    print_token(r);
    printf("%-16s %.0f, %.0f helper(s) running%s\n", "sessions", jnum(r, "sessions"),
           jnum(r, "helpers_running"),
           jbool(r, "session_manager") ? "" : " (the session manager is not running)");
    print_status_misc(r);
}

static void print_sessions(const cJSON *r)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(r, "sessions");
    const cJSON *s;

    if (cJSON_GetArraySize(rows) == 0) {
        printf("no sessions%s\n",
               jbool(r, "session_manager") ? "" : " (the session manager is not running)");
        return;
    }
    printf("%-8s %-20s %-11s %-8s %-10s %-24s %s\n", "SESSION", "USER", "STATE", "CONSOLE",
           "HELPER", "SINCE", "RESTARTS");
    cJSON_ArrayForEach(s, rows)
    {
        printf("%-8.0f %-20s %-11s %-8s %-10.0f %-24s %.0f\n", jnum(s, "session_id"),
               jstr(s, "user"), jstr(s, "state"), jbool(s, "console") ? "yes" : "no",
               jnum(s, "helper_pid"), jstr(s, "since_text"), jnum(s, "restarts"));
    }
}

static void print_logs(const cJSON *r)
{
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(r, "records");
    const cJSON *x;

    cJSON_ArrayForEach(x, recs)
    {
        printf("%s %-8s [%s] %s\n", jstr(x, "time_text"), jstr(x, "level"), jstr(x, "module"),
               jstr(x, "message"));
    }
}

/* Windows: the config.yaml of the installation (beside agentctl.exe), when it exists. */
static int ctl_installed_cfg(char *out, size_t cap)
{
#ifdef _WIN32
    char dir[CFG_PATH_MAX];
    struct plat_file_info info;
    if (plat_exe_dir(dir, sizeof(dir), NULL) < 0 || fs_join(dir, "config.yaml", out, cap, NULL) < 0)
        return -1;
    return plat_path_stat(out, &info, NULL);
#else
    (void)out;
    (void)cap;
    return -1;
#endif
}

int main(int argc, char **argv)
{
    struct ctl_args a;
    struct proto_admin_reply rep;
    struct err e = ERR_INIT;
    char endpoint[ADM_ENDPOINT_MAX];
    cJSON *result = NULL;
    int rc, code = CTL_OK;

    memset(&rep, 0, sizeof(rep));
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "/?") == 0 || strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return CTL_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("agentctl %s\n", KASM_VERSION);
        return CTL_OK;
    }
    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;

    /* Where the channel is: the admin_socket of the agent's config (--cfg; Windows without
     * it: config.yaml beside agentctl.exe, if there is one), else the default. */
    {
        struct cfg cfg;
        char path[CFG_PATH_MAX];
        const char *cfg_path = a.cfg_path;
        memset(&cfg, 0, sizeof(cfg));
        if (!cfg_path && ctl_installed_cfg(path, sizeof(path)) == 0)
            cfg_path = path;
        if (cfg_path && cfg_load(&cfg, cfg_path, &e) < 0) {
            if (strcmp(a.command, "doctor") != 0) {
                fprintf(stderr, "%s: %s\n", PROG, e.msg);
                cfg_free(&cfg);
                return CTL_USAGE;
            }
            /* doctor is for when things are broken: its config check names the problem */
            fprintf(stderr, "%s: warning: %s; trying the default admin channel\n", PROG, e.msg);
            cfg_path = NULL;
        }
        rc = adm_endpoint(cfg_path ? cfg.admin_socket : NULL, endpoint, sizeof(endpoint), &e);
        cfg_free(&cfg);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", PROG, e.msg);
            return CTL_USAGE;
        }
    }

    if (strcmp(a.command, "screenshot") == 0)
        return ctl_screenshot(endpoint, a.debug, a.json, a.session, a.width, a.out);
    if (strcmp(a.command, "logs") == 0 && a.follow)
        return ctl_logs_follow(endpoint, a.debug, a.json, a.lines, a.level);
    if ((rc = ctl_request(&a, endpoint, &rep, &e)) < 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, a.command, e.msg);
        code = ctl_exit_for(rc);
        goto out;
    }
    if (rep.status != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, a.command, rep.error);
        code = rep.status;
        goto out;
    }
    result = cJSON_Parse(rep.result);
    if (!result) {
        fprintf(stderr, "%s: %s: the agent's answer cannot be read\n", PROG, a.command);
        code = CTL_FAILED;
        goto out;
    }
    if (strcmp(a.command, "doctor") == 0) {
        code = ctl_doctor_output(result, a.json);
    } else if (a.json) {
        char *text = cJSON_Print(result);
        if (text)
            printf("%s\n", text);
        cJSON_free(text);
    } else if (strcmp(a.command, "status") == 0) {
        print_status(result);
    } else if (strcmp(a.command, "sessions") == 0) {
        print_sessions(result);
    } else if (strcmp(a.command, "logs") == 0) {
        print_logs(result);
    } else if (strcmp(a.command, "config") == 0) {
        printf("# %s (as the agent runs it)\n%s", jstr(result, "config"), jstr(result, "yaml"));
    } else if (ctl_deploy_print(a.command, result)) {
        /* token refresh, register, reload: printed by ctl_deploy.c */
    } else {
        print_token(result);
    }
    if (fflush(stdout) != 0)
        code = CTL_FAILED;
out:
    cJSON_Delete(result);
    proto_admin_reply_clear(&rep);
    return code;
}
