/*
 * main.c - agent(.exe): the command line (Kasm's own flags, so Kasm's scripts work
 * unchanged), then the agent itself under the service host: load the configuration, start
 * logging, run until asked to stop, stop cleanly.
 *
 * Exit codes: 0 success; 1 the configuration or start-up failed, or the registration failed;
 * 2 a command-line error.
 */
#define LOG_MODULE "agent"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm.h"
#include "admin/adm_notify.h"
#include "api/api.h"
#include "cfg.h"
#include "err.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "logship.h"
#include "log.h"
#include "plat.h"
#include "register.h"
#include "scripts/scr_startup.h"
#include "sesm.h"
#include "setup.h"
#include "svc_host.h"

#define AGENT_SERVICE_NAME "Kasm" /* the Windows service and Event Log source */

#ifdef _WIN32
#define PROG             "agent.exe"
#define DEFAULT_CFG_TEXT "config.yaml in the\n                            folder of agent.exe"
#else
#define PROG             "agent"
#define DEFAULT_CFG_TEXT "./config.yaml"
#endif

enum agent_exit {
    AGENT_EXIT_OK = 0,
    AGENT_EXIT_FAILED = 1,
    AGENT_EXIT_USAGE = 2,
};

struct agent_args {
    const char *cfg_path; /* NULL: the default */
    int debug;            /* -1: not given (use the config's `debug`), else 0/1 */
    int help;
    int console; /* --console: never ask the Service Control Manager */
    int version;
    /* registration (Kasm's installer scripts; service/deploy/register.c) */
    int registration;
    const char *register_host;
    int register_port;
    int have_register_token;
    const char *register_token; /* a secret: never printed */
    const char *server_id;
    int await_domain; /* -1: not given */
    /* the installer's custom actions (wix/kasm.wxs; service/setup/setup.h) */
    int install_setup;
    int uninstall_cleanup;
    int upgrade_mark;
    int stop_service;
    int port;      /* --port: 0 when not given or empty */
    int keep_data; /* --keep-data (with --uninstall-cleanup) */
};

struct agent_ctx {
    const struct agent_args *args;
    char cfg_path[CFG_PATH_MAX];
    int exit_code;
};

/* ------------------------------------------------------------------------------------- */
/* Command line                                                                           */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  " PROG " [/S] [--cfg FILE] [--debug 0|1]\n"
            "  " PROG " [/S] --register-host HOST [--register-port PORT] --register-token TOKEN\n"
            "            [--server-id ID] [--await-domain True|False] [--cfg FILE]\n"
            "  " PROG " --install-setup [--port PORT] | --uninstall-cleanup [--keep-data] |\n"
            "            --upgrade-mark | --stop-service [--cfg FILE]\n"
            "  " PROG " --version | --help\n"
            "\n"
            "Kasm open agent %s: an open replacement for the Kasm Desktop Service. It keeps\n"
            "this machine registered with a Kasm Workspaces deployment and lets Kasm users\n"
            "upload and download files over HTTPS (port 4902). Screenshots, local accounts and\n"
            "the administrator's scripts arrive in later versions.\n"
            "\n"
            "When the Service Control Manager starts it (service \"" AGENT_SERVICE_NAME "\"), it "
            "runs as a Windows\n"
            "service and logs to the Event Log (Application, source \"" AGENT_SERVICE_NAME "\") "
            "and to the log_file\n"
            "of its configuration. Started from a console, it runs in that console and logs "
            "there\n"
            "until you press Ctrl+C.\n"
            "\n"
            "Options:\n"
            "  /S                        Accepted for Kasm's installer scripts; ignored.\n"
            "  --cfg FILE                The configuration file (default: " DEFAULT_CFG_TEXT ").\n"
            "  --debug 0|1               1 logs debugging detail; overrides 'debug' in the\n"
            "                            configuration file.\n"
            "  --register-host HOST      Register this machine with the Kasm deployment at HOST.\n"
            "  --register-port PORT      HTTPS port of the deployment (default 443).\n"
            "  --register-token TOKEN    The registration token from the Kasm admin UI or the\n"
            "                            autoscale configuration.\n"
            "  --server-id ID            The server id (default: the one in the token).\n"
            "  --await-domain True|False\n"
            "                            True: if this machine has not joined its domain yet,\n"
            "                            register once it has.\n"
            "  --console                 Run in the foreground without asking the Service Control\n"
            "                            Manager first (tests, debugging; quicker under Wine).\n"
            "  --install-setup           (The installer) write a default config if there is\n"
            "                            none, set --port in it, set the folder ACLs, the\n"
            "                            firewall rule, the Event Log source and the service's\n"
            "                            recovery actions.\n"
            "  --uninstall-cleanup       (The installer) wait until the service has stopped,\n"
            "                            undo that and remove the config, the certificates and\n"
            "                            the transfer folders (not with --keep-data: upgrades).\n"
            "  --upgrade-mark            (The installer) the next uninstall is part of an\n"
            "                            upgrade: keep the data; then as --stop-service.\n"
            "  --stop-service            (The installer) stop the service and wait until its\n"
            "                            process has ended.\n"
            "  --port PORT               With --install-setup: the HTTPS port (empty: keep).\n"
            "  --version                 Print the version and exit.\n"
            "  --help                    Print this help and exit.\n"
            "\n"
            "Registration checks name resolution, TCP reach and the deployment's health check,\n"
            "registers, and writes the configuration and the certificates. If the agent is\n"
            "running with that configuration, it is told to reload it over its admin channel\n"
            "and uses the new registration at once; otherwise start (or restart) the service.\n"
            "\n"
            "Exit codes: 0 success; 1 the configuration could not be loaded, the agent failed\n"
            "or the registration failed; 2 a command-line error.\n",
            KASM_VERSION);
}

#if defined(__GNUC__)
__attribute__((format(ERR_PRINTF_ARCHETYPE, 1, 2)))
#endif
static int
usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; run '%s --help' for the options\n", PROG);
    return AGENT_EXIT_USAGE;
}

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* "1", "true", "yes", "on" -> 1; "0", "false", "no", "off" -> 0; else -1. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t k = 0; k < 4; k++) {
        if (ascii_ieq(s, yes[k]))
            return 1;
        if (ascii_ieq(s, no[k]))
            return 0;
    }
    return -1;
}

static int parse_port(const char *s)
{
    char *end = NULL;
    long v;
    if (!*s || *s < '0' || *s > '9')
        return -1;
    v = strtol(s, &end, 10);
    return (*end == '\0' && v >= 1 && v <= 65535) ? (int)v : -1;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct agent_args *a)
{
    memset(a, 0, sizeof(*a));
    a->debug = -1;
    a->await_domain = -1;
    a->register_port = 443;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        char name[32];
        size_t nlen;

        if (ascii_ieq(arg, "/S"))
            continue; /* silent-install flag of Kasm's scripts */
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "/?") == 0) {
            a->help = 1;
            continue;
        }
        if (strcmp(arg, "--console") == 0) {
            a->console = 1;
            continue;
        }
        if (strcmp(arg, "--version") == 0) {
            a->version = 1;
            continue;
        }
        if (strcmp(arg, "--install-setup") == 0) {
            a->install_setup = 1;
            continue;
        }
        if (strcmp(arg, "--uninstall-cleanup") == 0) {
            a->uninstall_cleanup = 1;
            continue;
        }
        if (strcmp(arg, "--upgrade-mark") == 0) {
            a->upgrade_mark = 1;
            continue;
        }
        if (strcmp(arg, "--stop-service") == 0) {
            a->stop_service = 1;
            continue;
        }
        if (strcmp(arg, "--keep-data") == 0) {
            a->keep_data = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            /* Not echoed: a misplaced token must not end up on the screen or in a log. */
            fprintf(stderr,
                    "%s: unexpected argument in position %d (options start with --); "
                    "run '%s --help' for the options\n",
                    PROG, i, PROG);
            return AGENT_EXIT_USAGE;
        }
        /* --name value or --name=value */
        nlen = strcspn(arg, "=");
        if (nlen >= sizeof(name))
            return usage_error("unknown option '%.40s...'", arg);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (arg[nlen] == '=') {
            val = arg + nlen + 1;
        } else if (strcmp(name, "--debug") == 0 &&
                   (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            val = "1"; /* a bare --debug */
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            val = argv[++i]; /* a following option is not taken as this one's value */
        }

        if (strcmp(name, "--cfg") == 0) {
            if (!val || !*val)
                return usage_error("%s needs a file name", name);
            a->cfg_path = val;
        } else if (strcmp(name, "--debug") == 0) {
            if (!val || (a->debug = parse_bool(val)) < 0)
                return usage_error("%s expects 0 or 1", name);
        } else if (strcmp(name, "--register-host") == 0) {
            if (!val || !*val)
                return usage_error("%s needs a host name", name);
            a->register_host = val;
            a->registration = 1;
        } else if (strcmp(name, "--register-port") == 0) {
            if (!val || (a->register_port = parse_port(val)) < 0)
                return usage_error("%s expects a port number from 1 to 65535", name);
            a->registration = 1;
        } else if (strcmp(name, "--register-token") == 0) {
            if (!val || !*val)
                return usage_error("%s needs the registration token", name);
            a->have_register_token = 1; /* the value is never printed */
            a->register_token = val;
            a->registration = 1;
        } else if (strcmp(name, "--server-id") == 0) {
            if (!val || !*val)
                return usage_error("%s needs a server id", name);
            a->server_id = val;
            a->registration = 1;
        } else if (strcmp(name, "--port") == 0) {
            /* The MSI passes --port "[PORT]": empty when the property is not set. */
            if (!val || (*val && (a->port = parse_port(val)) < 0))
                return usage_error("%s expects a port number from 1 to 65535", name);
        } else if (strcmp(name, "--await-domain") == 0) {
            if (!val || (a->await_domain = parse_bool(val)) < 0)
                return usage_error("%s expects True or False", name);
            a->registration = 1;
        } else {
            return usage_error("unknown option '%s'", name);
        }
    }
    if (a->install_setup + a->uninstall_cleanup + a->upgrade_mark + a->stop_service +
            a->registration >
        1)
        return usage_error("--install-setup, --uninstall-cleanup, --upgrade-mark, "
                           "--stop-service and --register-... are separate steps; give one");
    if (a->keep_data && !a->uninstall_cleanup)
        return usage_error("--keep-data goes with --uninstall-cleanup");
    if (a->port && !a->install_setup)
        return usage_error("--port goes with --install-setup (the port is in the config)");
    return -1;
}

/* ------------------------------------------------------------------------------------- */
/* The agent                                                                              */

/* A start-up failure: the console gets one line on stderr, a service the Event Log. */
static int fail_start(struct svc_host *h, struct agent_ctx *c, int rc, const char *msg)
{
    if (svc_host_mode(h) == SVC_MODE_SERVICE) {
        struct log_options o = {0};
        o.level = LOG_LEVEL_INFO;
        o.syslog_source = AGENT_SERVICE_NAME;
        log_init(&o, NULL);
        log_error("the service cannot start: %s", msg);
        log_shutdown();
    } else {
        char line[ERR_MSG_MAX + 64];
        snprintf(line, sizeof(line), "%s", msg);
        fprintf(stderr, "%s: %s\n", PROG, log_redact(line, sizeof(line)));
    }
    c->exit_code = AGENT_EXIT_FAILED;
    return rc < 0 ? rc : ERR_INTERNAL;
}

static void log_config_summary(const struct cfg *cfg)
{
    log_debug("config: port %d, ssl %s, api_host %s%s port %d, registered %s, server_id %s, "
              "multi_user %s, log_file %s, agent token %s",
              cfg->port, cfg->ssl ? "on" : "off", cfg->api_host_count ? cfg->api_host[0] : "(none)",
              cfg->api_host_count > 1 ? " (+more)" : "", cfg->api_port,
              cfg->registered ? "yes" : "no", cfg->server_id[0] ? cfg->server_id : "(none)",
              cfg->multi_user ? "yes" : "no", cfg->log_file[0] ? cfg->log_file : "(none)",
              cfg->agent_jwt_token ? "present" : "absent");
}

/* The API reads the config fields the token lifecycle rewrites under the lifecycle's lock. */
static void cfg_guard_lock(void *ctx)
{
    dlc_cfg_lock(ctx);
}

static void cfg_guard_unlock(void *ctx)
{
    dlc_cfg_unlock(ctx);
}

static void handle_event(const struct svc_event *ev, struct sesm *sessions, struct dlc *lifecycle)
{
    switch (ev->type) {
    case SVC_EVENT_RELOAD: {
        /* the same reload as `agentctl reload`, not waited for (the lifecycle logs what it
         * applied); the loop must stay free for a stop request */
        static struct dlc_result res;
        struct err e = ERR_INIT;
        log_info("reload requested by the service host");
        if (dlc_command(lifecycle, DLC_CMD_RELOAD, NULL, 0, &res, &e) < 0 && e.code != ERR_TIMEOUT)
            log_warning("reload: %s", e.msg);
        break;
    }
    case SVC_EVENT_SESSION_CHANGE:
        log_debug("session %u changed (reason %u)", (unsigned)ev->session_id, (unsigned)ev->reason);
        sesm_notify(sessions, ev->reason, ev->session_id);
        break;
    case SVC_EVENT_OVERFLOW:
        log_debug("some session events were dropped; listing the sessions again");
        sesm_notify(sessions, 0, 0);
        break;
    }
}

static int agent_run(struct svc_host *h, void *arg)
{
    struct agent_ctx *c = arg;
    struct cfg cfg;
    struct err e = ERR_INIT;
    struct log_options lo = {0};
    struct adm *admin = NULL;     /* the admin channel for agentctl (service/admin/adm.h) */
    struct dlc *lifecycle = NULL; /* owns cfg's token fields and config.yaml while it runs */
    struct dls *shipper = NULL;   /* log records to the deployment */
    struct api *api = NULL;       /* the HTTPS API (service/api/api.h) */
    struct sesm *sessions = NULL; /* the session helpers (service/session/sesm.h); may be NULL */
    struct scr_startup *startup = NULL; /* service-start scripts (service/scripts/), may be NULL */
    int rc, debug;

    memset(&cfg, 0, sizeof(cfg));
    svc_report_starting(h, 10000);
    if ((rc = cfg_load(&cfg, c->cfg_path, &e)) < 0) {
        cfg_free(&cfg);
        return fail_start(h, c, rc, e.msg);
    }

    debug = c->args->debug >= 0 ? c->args->debug : cfg.debug;
    lo.level = debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    lo.to_stderr = svc_host_mode(h) == SVC_MODE_CONSOLE;
    lo.file_path = cfg.log_file[0] ? cfg.log_file : NULL;
    lo.syslog_source = svc_host_mode(h) == SVC_MODE_SERVICE ? AGENT_SERVICE_NAME : NULL;
    if (log_init(&lo, &e) < 0)
        log_warning("%s; logging goes on without it and the file is retried", e.msg);

    log_info("Kasm open agent %s starting (config %s, pid %lu)", KASM_VERSION, c->cfg_path,
             plat_pid());
    if (svc_host_mode(h) == SVC_MODE_CONSOLE)
        log_info("running in the foreground; stop it with Ctrl+C%s",
#ifdef _WIN32
                 " or Ctrl+Break"
#else
                 " or SIGTERM"
#endif
        );
    log_config_summary(&cfg);

    /* The admin channel first: a second agent, or a squatter on the pipe, stops here. */
    {
        struct adm_config ac = {&cfg, c->cfg_path};
        if ((rc = adm_start(&ac, &admin, &e)) < 0) {
            log_shutdown();
            cfg_free(&cfg);
            return fail_start(h, c, rc, e.msg);
        }
    }

    /* After the first check-in: script mappings, .reg imports, service_startup scripts. */
    if (scr_startup_create(&startup, &cfg, &e) == 0)
        dlc_set_checkin_hook(scr_startup_hook, startup);
    /* The token lifecycle: check-in, keepalive, refresh (service/deploy/lifecycle.c). */
    if ((rc = dlc_start(&lifecycle, &cfg, &e)) < 0) {
        scr_startup_stop(startup);
        adm_stop(admin);
        log_shutdown();
        cfg_free(&cfg);
        return fail_start(h, c, rc, e.msg);
    }
    dlc_set_debug_override(lifecycle, c->args->debug); /* --debug wins over a reload */
    adm_attach(admin, lifecycle, NULL, NULL);          /* from now on config reads take its lock */
    /* Log records to the deployment (service/deploy/logship.c); not fatal. */
    if (dls_start(&shipper, &cfg, lifecycle, &e) < 0)
        log_warning("%s; log records are not sent to the deployment", e.msg);

    /* The session helpers (service/session/): without them the agent still serves what
     * does not need a user's session, so a failure here is logged, not fatal. */
    {
        struct sesm_config sc;
        memset(&sc, 0, sizeof(sc));
        snprintf(sc.helper_path, sizeof(sc.helper_path), "%s", cfg.session_helper);
        snprintf(sc.sessions_file, sizeof(sc.sessions_file), "%s", cfg.sessions_file);
        sc.debug = debug;
        sc.upload_max_in_flight = (uint32_t)cfg.max_concurrent_uploads;
        err_clear(&e);
        if (sesm_start(&sc, &sessions, &e) < 0) {
            log_error("%s; the agent goes on without session helpers (no screenshots; files "
                      "go to upload_dir/download_dir)",
                      e.msg);
            sessions = NULL;
        }
    }

    /* The HTTPS API on cfg.port (service/api/): fatal when it cannot start. */
    struct api_cfg_guard guard = {cfg_guard_lock, cfg_guard_unlock, lifecycle};
    if ((rc = api_start(&api, &cfg, &guard, sessions, &e)) < 0) {
        adm_stop(admin);
        sesm_stop(sessions);
        dls_stop(shipper);
        dlc_stop(lifecycle);
        scr_startup_stop(startup);
        log_shutdown();
        cfg_free(&cfg);
        return fail_start(h, c, rc, e.msg);
    }

    adm_attach(admin, lifecycle, sessions, api);
    svc_report_running(h);
    while (!svc_stop_wait(h, UINT32_MAX)) {
        struct svc_event ev;
        while (svc_event_next(h, &ev))
            handle_event(&ev, sessions, lifecycle);
    }

    log_info("stopping (requested by %s)", svc_stop_source(h));
    adm_stop(admin); /* first: its commands read the session manager and the lifecycle */
    /* The API before the rest: no new requests, the queued session work finishes. */
    api_stop(api);
    sesm_stop(sessions); /* after the API: no route holds a lease any more */
    dls_stop(shipper);   /* before the lifecycle: it reads the token under its lock */
    dlc_stop(lifecycle); /* first: it writes config.yaml */
    /* after the lifecycle (no check-in hook any more): a running startup script is killed */
    scr_startup_stop(startup);
    cfg_free(&cfg);
    log_info("stopped");
    log_shutdown();
    c->exit_code = AGENT_EXIT_OK;
    return 0;
}

static int default_cfg_path(char *out, size_t cap, struct err *e);

#ifdef _WIN32
#define AGENT_RESTART_HINT "restart the service: net stop kasm && net start kasm"
#else
#define AGENT_RESTART_HINT "restart the agent so that it uses the new configuration"
#endif

/* After a registration: an agent running with this config (its admin channel answers) is
 * told to reload (service/admin/adm_notify.c); otherwise the next step is a (re)start. */
static void registration_next_step(const char *cfg_path)
{
    char summary[1024];
    struct err e = ERR_INIT;
    int rc = adm_notify_reload(cfg_path, summary, sizeof(summary), &e);

    if (rc == 1)
        printf("The running agent reloaded its configuration and uses the new registration "
               "now (no restart needed).\nReload: %s.\n",
               summary);
    else if (rc == 0)
        printf("Next step: " AGENT_RESTART_HINT ".\n");
    else
        printf("The running agent did not reload its configuration (%s).\nNext "
               "step: " AGENT_RESTART_HINT ".\n",
               e.msg);
}

/* agent --register-host ...: register, write the config, exit (service/deploy/register.c). */
static int run_registration(const struct agent_args *a)
{
    struct dreg_request req;
    struct err e = ERR_INIT;
    char cfg_path[CFG_PATH_MAX];
    int rc;

    if (!a->register_host || !a->register_token)
        return usage_error("registration needs --register-host and --register-token");
    if (a->cfg_path)
        snprintf(cfg_path, sizeof(cfg_path), "%s", a->cfg_path);
    else if (default_cfg_path(cfg_path, sizeof(cfg_path), &e) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return AGENT_EXIT_FAILED;
    }
    memset(&req, 0, sizeof(req));
    req.cfg_path = cfg_path;
    req.host = a->register_host;
    req.port = a->register_port;
    req.token = a->register_token;
    req.server_id = a->server_id;
    req.await_domain = a->await_domain == 1;
    req.debug = a->debug;
    if ((rc = dreg_cli(&req, &e)) < 0) {
        char line[ERR_MSG_MAX];
        snprintf(line, sizeof(line), "%s", e.msg);
        fprintf(stderr, "%s: %s\n", PROG, log_redact(line, sizeof(line)));
        return AGENT_EXIT_FAILED;
    }
    if (rc == 0)
        registration_next_step(cfg_path);
    return AGENT_EXIT_OK;
}

static int default_cfg_path(char *out, size_t cap, struct err *e)
{
#ifdef _WIN32
    char dir[CFG_PATH_MAX];
    if (plat_exe_dir(dir, sizeof(dir), e) < 0)
        return err_prefix(e, "cannot find the folder of agent.exe");
    return fs_join(dir, "config.yaml", out, cap, e);
#else
    (void)e;
    snprintf(out, cap, "./config.yaml");
    return 0;
#endif
}

/* agent --install-setup / --uninstall-cleanup: the installer's steps (service/setup/). */
static int run_setup(const struct agent_args *a)
{
    struct setup_request req;
    struct err e = ERR_INIT;
    struct log_options lo = {0};
    char cfg_path[CFG_PATH_MAX];
    int rc;

    if (a->cfg_path)
        snprintf(cfg_path, sizeof(cfg_path), "%s", a->cfg_path);
    else if (default_cfg_path(cfg_path, sizeof(cfg_path), &e) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return AGENT_EXIT_FAILED;
    }
    lo.level = a->debug > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    lo.to_stderr = 1;
    log_init(&lo, NULL);
    memset(&req, 0, sizeof(req));
    req.cfg_path = cfg_path;
    req.port = a->port;
    req.service_name = AGENT_SERVICE_NAME;
    req.keep_data = a->keep_data;
    if (a->install_setup)
        rc = setup_install(&req, &e);
    else if (a->upgrade_mark)
        rc = setup_mark_upgrade(&req, &e);
    else if (a->stop_service)
        rc = setup_stop_service(&req, &e);
    else if (a->uninstall_cleanup)
        rc = setup_uninstall(&req, &e);
    else
        rc = err_set(&e, ERR_INTERNAL, "no setup step was asked for");
    if (rc < 0)
        log_error("%s failed: %s",
                  a->install_setup  ? "the install setup"
                  : a->upgrade_mark ? "the upgrade mark"
                  : a->stop_service ? "stopping the service"
                                    : "the uninstall clean-up",
                  e.msg);
    log_shutdown();
    return rc < 0 ? AGENT_EXIT_FAILED : AGENT_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct agent_args args;
    struct agent_ctx ctx;
    struct err e = ERR_INIT;
    int rc;

    if (svc_host_args(argc, argv, &argc, &argv, &e) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return AGENT_EXIT_USAGE;
    }
    if ((rc = parse_args(argc, argv, &args)) >= 0)
        return rc;
    if (args.help) {
        usage(stdout);
        return AGENT_EXIT_OK;
    }
    if (args.version) {
        printf("agent %s\n", KASM_VERSION);
        return AGENT_EXIT_OK;
    }
    if (args.registration)
        return run_registration(&args);
    if (args.install_setup || args.uninstall_cleanup || args.upgrade_mark || args.stop_service)
        return run_setup(&args);

    memset(&ctx, 0, sizeof(ctx));
    ctx.args = &args;
    ctx.exit_code = -1;
    if (args.cfg_path) {
        if (strlen(args.cfg_path) >= sizeof(ctx.cfg_path)) {
            fprintf(stderr, "%s: the --cfg path is too long\n", PROG);
            return AGENT_EXIT_USAGE;
        }
        snprintf(ctx.cfg_path, sizeof(ctx.cfg_path), "%s", args.cfg_path);
    } else if (default_cfg_path(ctx.cfg_path, sizeof(ctx.cfg_path), &e) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return AGENT_EXIT_FAILED;
    }

    if (args.console)
        svc_host_force_console();
    rc = svc_host_run(AGENT_SERVICE_NAME, agent_run, &ctx, &e);
    if (ctx.exit_code >= 0)
        return ctx.exit_code;
    /* The host failed before the agent ran. */
    fprintf(stderr, "%s: %s\n", PROG, rc < 0 ? e.msg : "the service host stopped unexpectedly");
    return AGENT_EXIT_FAILED;
}
