/*
 * main.c - agentctl(.exe): administrator diagnostics for the running agent, over its admin
 * channel (a named pipe only SYSTEM and Administrators can open on Windows, a root-only Unix
 * socket on Linux). This version has the program and its command list; the admin channel
 * arrives with its issue, and until then every command says so and exits 3 instead of
 * printing a made-up answer.
 *
 * Exit codes: 0 --help/--version; 2 a command-line error; 3 the admin pipe is not available.
 */
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#define PROG "agentctl.exe"
#else
#define PROG "agentctl"
#endif

struct ctl_command {
    const char *name;
    const char *args;
    const char *help;
};

static const struct ctl_command commands[] = {
    {"status", "", "Service state, version, registration and token expiry."},
    {"sessions", "", "Logged-on users' sessions and their session helpers."},
    {"logs", "[-n N]", "The most recent log records kept in memory by the service."},
    {"config", "", "The configuration in use, with secrets hidden."},
    {"token", "", "Expiry and refresh state of the agent's own token."},
    {"reload", "", "Ask the service to read its configuration again."},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  " PROG " COMMAND [OPTIONS]\n"
            "  " PROG " --version | --help\n"
            "\n"
            "Diagnostics for the Kasm open agent %s, over the service's admin pipe (only\n"
            "SYSTEM and Administrators can open it: run from an elevated prompt).\n"
            "\n"
            "Commands (they arrive with the admin pipe in a later version):\n",
            KASM_VERSION);
    for (size_t k = 0; k < NCOMMANDS; k++) {
        char left[32];
        snprintf(left, sizeof(left), "%s %s", commands[k].name, commands[k].args);
        fprintf(out, "  %-16s %s\n", left, commands[k].help);
    }
    fprintf(out, "\n"
                 "In this version the admin pipe does not exist yet, so every command exits\n"
                 "with code 3.\n"
                 "\n"
                 "Exit codes: 0 success; 2 a command-line error; 3 the admin pipe is not\n"
                 "available.\n");
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "/?") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("agentctl %s\n", KASM_VERSION);
        return 0;
    }
    for (size_t k = 0; k < NCOMMANDS; k++) {
        if (strcmp(cmd, commands[k].name) == 0) {
            fprintf(stderr, "%s: %s: the admin pipe is not available in this version\n", PROG, cmd);
            return 3;
        }
    }
    fprintf(stderr, "%s: unknown command '%.40s'; run '%s --help' for the commands\n", PROG, cmd,
            PROG);
    return 2;
}
