/*
 * adm_notify.h - `agent --register-host ...` telling a running agent about the new
 * configuration (prefix adm_notify_): agentctl's client end of the admin channel
 * (agentctl/ctl_chan.h) sends `reload`, so that the agent adopts the new token, server id and
 * API host without a restart.
 */
#ifndef KASM_ADM_NOTIFY_H
#define KASM_ADM_NOTIFY_H

#include <stddef.h>

#include "err.h"

/*
 * Sends `reload` to the agent whose admin channel the config at cfg_path names. 1 the agent
 * reloaded (summary: what it applied / what needs a restart); 0 no agent answers there (not
 * running); <0 it answered with an error or the exchange failed (e says why).
 */
int adm_notify_reload(const char *cfg_path, char *summary, size_t cap, struct err *e);

#endif
