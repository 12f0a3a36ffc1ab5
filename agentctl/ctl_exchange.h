/*
 * ctl_exchange.h - one request to a running agent over its admin channel (ctl_exchange.c):
 * used by agentctl's commands and by the agent's own `--register-host` (service/admin/
 * adm_notify.c).
 */
#ifndef KASM_CTL_EXCHANGE_H
#define KASM_CTL_EXCHANGE_H

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
/* Reads and decodes the next frame header from c before the deadline. */
int ctl_read_frame_header(struct ctl_conn *c, uint64_t deadline, struct proto_header *h,
                          struct err *e);

#endif
