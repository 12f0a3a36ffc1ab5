/*
 * ctl_misc.h - the agentctl commands `screenshot` and `logs --follow` (ctl_misc.c;
 * docs/admin.md), and agentctl's exit code for a failed exchange.
 */
#ifndef KASM_CTL_MISC_H
#define KASM_CTL_MISC_H

#include <stdint.h>

#include "ctl_exchange.h"
#include "err.h"

/* agentctl's exit code for a failed exchange (3 unavailable, 4 permission, 5 other). */
int ctl_exit_code(int rc);

/* `screenshot --session N --out FILE [--width W]`: returns the exit code. */
int ctl_screenshot(const char *endpoint, int debug, int json, long session, long width,
                   const char *out_path);
/* `logs --follow [--lines N] [--level L]`: prints until SIGINT/SIGTERM (exit 0). */
int ctl_logs_follow(const char *endpoint, int debug, int json, long lines, const char *level);

#endif
