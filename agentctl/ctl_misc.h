/*
 * ctl_misc.h - agentctl's exchange with the agent (one request per connection, optionally
 * kept open for what follows the reply) and the commands `screenshot` and `logs --follow`
 * (ctl_misc.c; docs/admin.md).
 */
#ifndef KASM_CTL_MISC_H
#define KASM_CTL_MISC_H

#include <stdint.h>

#include "ctl_chan.h"
#include "err.h"
#include "proto.h"

/*
 * Connects to endpoint, sends ADMIN_REQUEST {command, args_json} and reads the ADMIN_REPLY
 * into rep (free with proto_admin_reply_clear) within timeout_ms. keep NULL: the connection is
 * closed; else it is left open in *keep for the frames after the reply (close it with
 * ctl_close). Errors as ctl_connect's, or ERR_PROTOCOL / ERR_TIMEOUT / ERR_IO.
 */
int ctl_exchange(const char *endpoint, int debug, const char *command, const char *args_json,
                 uint32_t timeout_ms, struct proto_admin_reply *rep, struct ctl_conn **keep,
                 struct err *e);
/* agentctl's exit code for a failed exchange (3 unavailable, 4 permission, 5 other). */
int ctl_exit_code(int rc);

/* `screenshot --session N --out FILE [--width W]`: returns the exit code. */
int ctl_screenshot(const char *endpoint, int debug, int json, long session, long width,
                   const char *out_path);
/* `logs --follow [--lines N] [--level L]`: prints until SIGINT/SIGTERM (exit 0). */
int ctl_logs_follow(const char *endpoint, int debug, int json, long lines, const char *level);

#endif
