/*
 * ctl_chan.h - agentctl's end of the admin channel (agentctl/posix/ctl_chan.c,
 * agentctl/win32/ctl_chan.c): connect to the agent's endpoint (adm_endpoint.h), make sure on
 * Windows that the pipe's server is the agent, and move bytes with a deadline.
 */
#ifndef KASM_CTL_CHAN_H
#define KASM_CTL_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ctl_conn;

/*
 * Connects. ERR_NOT_FOUND: no agent there (not running, or a stale socket); ERR_PERMISSION:
 * the channel refused us (not root / not an elevated administrator); ERR_AUTH: the pipe's
 * server is not the agent (Windows). debug: explain each step on stderr.
 */
int ctl_connect(const char *endpoint, int debug, struct ctl_conn **out, struct err *e);
int ctl_read(struct ctl_conn *c, void *buf, size_t len, uint64_t deadline, struct err *e);
int ctl_write(struct ctl_conn *c, const void *buf, size_t len, uint64_t deadline, struct err *e);
void ctl_close(struct ctl_conn *c);

#endif
