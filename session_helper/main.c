/*
 * main.c - session_helper(.exe): the per-user half of the agent. The service starts one per
 * logged-on user, as that user and in that user's session, and talks to it over a private
 * channel it inherits at start. This version has the program and its command line; the
 * channel and the work it serves (screenshots, Downloads, storage mapping) arrive with their
 * issues, and until then it refuses to run rather than pretend.
 *
 * Exit codes: 0 --help/--version; 2 a command-line error (e.g. no channel given);
 * 3 the service channel is not available in this version.
 */
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#define PROG "session_helper.exe"
#else
#define PROG "session_helper"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  " PROG " --channel HANDLE\n"
            "  " PROG " --version | --help\n"
            "\n"
            "The session helper of the Kasm open agent %s. The agent service starts one for\n"
            "each logged-on user, running as that user in that user's session, to take\n"
            "screenshots, read and write the user's Downloads folder and map cloud storage, so\n"
            "that the service itself never writes into a folder the user controls.\n"
            "\n"
            "It is not meant to be started by hand: the service passes it the channel it talks\n"
            "over (--channel, an inherited handle). The channel and the helper's features\n"
            "arrive in later versions; this version only answers --help and --version.\n"
            "\n"
            "Options:\n"
            "  --channel HANDLE  The inherited channel to the service (given by the service).\n"
            "  --version         Print the version and exit.\n"
            "  --help            Print this help and exit.\n"
            "\n"
            "Exit codes: 0 success; 2 started without a channel or with a wrong option;\n"
            "3 the service channel is not available in this version.\n",
            KASM_VERSION);
}

int main(int argc, char **argv)
{
    const char *channel = NULL;

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
        if (strcmp(argv[i], "--channel") == 0 && i + 1 < argc) {
            channel = argv[++i];
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
    fprintf(stderr, "%s: the service channel is not available in this version; exiting\n", PROG);
    return 3;
}
