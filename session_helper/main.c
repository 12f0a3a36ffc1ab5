/*
 * main.c - session_helper(.exe): the per-user half of the agent. The service starts one per
 * logged-on user, as that user and in that user's session, and passes it one end of a private
 * channel (an inherited fd on POSIX, an overlapped pipe HANDLE on Windows). This file owns the
 * command line, the logger set-up and the exit codes; serve.c serves the channel.
 *
 * Exit codes: 0 --help/--version, or the channel closed after a good handshake; 1 a runtime
 * failure (the channel could not be used, no greeting from the service); 2 a command-line
 * error (e.g. no channel given); 3 the service is another version (refused at HELLO).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "downloads.h"
#include "err.h"
#include "log.h"
#include "pchan.h"
#include "plat.h"
#include "proto.h"
#include "pshm.h"
#include "serve.h"
#include "shot.h"

#ifdef _WIN32
#define PROG "session_helper.exe"
#else
#define PROG "session_helper"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  " PROG " --channel HANDLE --session-id ID [--shared HANDLE --shared-size N]\n"
            "                 [--debug] [--max-uploads N] [--downloads DIR]\n"
            "  " PROG " --version | --help\n"
            "\n"
            "The session helper of the Kasm open agent %s. The agent service starts one for\n"
            "each logged-on user, running as that user in that user's session, to take\n"
            "screenshots and to read and write the user's Downloads folder, so that the\n"
            "service itself never writes into a folder the user controls.\n"
            "\n"
            "It is not meant to be started by hand: the service passes it the channel it talks\n"
            "over (--channel, an inherited handle) and serves until that channel closes. Its\n"
            "log lines go to the service's log.\n"
            "\n"
            "Options:\n"
            "  --channel HANDLE  The inherited channel to the service (given by the service).\n"
            "  --session-id ID   The terminal session this helper serves (given by the service).\n"
            "  --shared HANDLE   The service's shared window, read-only (given by the service):\n"
            "                    uploaded bytes arrive there instead of through the channel.\n"
            "  --shared-size N   Its size in bytes (given with --shared).\n"
            "  --debug           Log debug lines, and also print the log on stderr.\n"
            "  --max-uploads N   Upload chunks received at once (the service's\n"
            "                    max_concurrent_uploads); more are answered 503.\n"
            "  --downloads DIR   Use DIR instead of the user's Downloads folder (tests).\n"
            "  --version         Print the version and exit.\n"
            "  --help            Print this help and exit.\n"
            "\n"
            "Exit codes: 0 success (the channel closed); 1 the channel failed; 2 started\n"
            "without a channel or with a wrong option; 3 the service is another version.\n",
            KASM_VERSION);
}

/* Parses a non-negative integer option value; 0 or -1. */
static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *channel = NULL, *session = NULL, *downloads_opt = NULL, *max_uploads_opt = NULL;
    const char *shared_opt = NULL, *shared_size_opt = NULL;
    char downloads[4096], user[PROTO_NAME_MAX], profile[4096];
    unsigned long long handle = 0, sid = 0, max_uploads = 0, shm_handle = 0, shm_size = 0;
    struct pshm *shared = NULL;
    struct hlp_options opt;
    struct log_options lo;
    struct pchan *ch = NULL;
    struct err e = ERR_INIT, dl_err = ERR_INIT, pr_err = ERR_INIT;
    int debug = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
            strcmp(argv[i], "/?") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("session_helper %s\n", KASM_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--debug") == 0) {
            debug = 1;
            continue;
        }
        if (strcmp(argv[i], "--channel") == 0 && i + 1 < argc) {
            channel = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--session-id") == 0 && i + 1 < argc) {
            session = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--shared") == 0 && i + 1 < argc) {
            shared_opt = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--shared-size") == 0 && i + 1 < argc) {
            shared_size_opt = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--max-uploads") == 0 && i + 1 < argc) {
            max_uploads_opt = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--downloads") == 0 && i + 1 < argc) {
            downloads_opt = argv[++i];
            continue;
        }
        fprintf(stderr, "%s: unknown or incomplete option in position %d; run '%s --help'\n", PROG,
                i, PROG);
        return 2;
    }
    if (!channel) {
        fprintf(stderr,
                "%s: started without the channel to the Kasm agent service (--channel); this "
                "program is started by the service for each logged-on user, not by hand\n",
                PROG);
        return 2;
    }
    if (parse_uint(channel, (unsigned long long)INTPTR_MAX, &handle) < 0) {
        fprintf(stderr, "%s: --channel %s: expected the handle number the service passes\n", PROG,
                channel);
        return 2;
    }
    if (max_uploads_opt && (parse_uint(max_uploads_opt, 1024, &max_uploads) < 0 || !max_uploads)) {
        fprintf(stderr, "%s: --max-uploads %s: expected a number from 1 to 1024\n", PROG,
                max_uploads_opt);
        return 2;
    }
    if (!shared_opt != !shared_size_opt ||
        (shared_opt && (parse_uint(shared_opt, (unsigned long long)INTPTR_MAX, &shm_handle) < 0 ||
                        parse_uint(shared_size_opt, UINT32_MAX, &shm_size) < 0 || !shm_size))) {
        fprintf(stderr,
                "%s: --shared HANDLE and --shared-size BYTES go together (handle and size "
                "numbers, as the service passes them)\n",
                PROG);
        return 2;
    }
    if (session && parse_uint(session, UINT32_MAX, &sid) < 0) {
        fprintf(stderr, "%s: --session-id %s: expected a session number\n", PROG, session);
        return 2;
    }

    memset(&lo, 0, sizeof(lo));
    lo.level = debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    lo.to_stderr = debug;
    if (log_init(&lo, &e) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return 1;
    }

    if (downloads_opt) {
        snprintf(downloads, sizeof(downloads), "%s", downloads_opt);
        if (plat_dir_create_all(downloads, &dl_err) < 0)
            err_prefix(&dl_err, "creating the Downloads folder %s", downloads);
    } else {
        hlp_downloads_find(downloads, sizeof(downloads), &dl_err);
    }
    if (hlp_user_name(user, sizeof(user), &e) < 0)
        snprintf(user, sizeof(user), "%s", "");
    if (hlp_profile_find(profile, sizeof(profile), &pr_err) < 0)
        log_warning("file mappings through this helper are off: %s", pr_err.msg);

    if (shared_opt && pshm_open_reader((intptr_t)shm_handle, (size_t)shm_size, &shared, &e) < 0)
        log_warning("%s; uploads arrive through the channel alone", e.msg); /* slower, works */
    err_clear(&e);
    rc = pchan_from_os((intptr_t)handle, &ch, &e);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot use the channel %s: %s\n", PROG, channel, e.msg);
        pshm_free(shared);
        log_shutdown();
        return 1;
    }
    shot_init(); /* on this (the main) thread, before hlp_serve starts its workers */
    memset(&opt, 0, sizeof(opt));
    opt.downloads = dl_err.code < 0 ? NULL : downloads;
    opt.downloads_error = dl_err.code < 0 ? dl_err.msg : NULL;
    opt.profile = pr_err.code < 0 ? NULL : profile;
    opt.session_id = (uint32_t)sid;
    opt.user = user;
    opt.forward_logs = 1;
    opt.max_uploads = (unsigned)max_uploads;
    opt.shared = shared; /* hlp_serve owns it from here */
    rc = hlp_serve(ch, &opt, &e);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
    log_shutdown();
    if (rc == ERR_PROTOCOL)
        return 3;
    return rc < 0 ? 1 : 0;
}
