/*
 * reload.h - what `agentctl reload` does to the running configuration (prefix drl_): compares
 * the running struct cfg with config.yaml as read again, sorts every changed key into
 * "applied now" or "needs a service restart", and copies the new values into the running
 * configuration. Pure (no I/O); the token lifecycle calls it under its config lock
 * (lifecycle.c) and acts on the applied keys (API hosts, heartbeat, log level).
 *
 * Applied at once: api_host, api_port, api_verify_cert, api_ca_file, heartbeat_interval,
 * debug, upload_dir, download_dir, and the keys the deployment sets (agent_jwt_token when the
 * file holds a newer one or one of another server_id, server_id, registered, multi_user,
 * user_sso). Every other key
 * needs a restart: the listener (port, listen_address, ssl, the certificate paths), the
 * limits given to the HTTP server at start, the log file, the admin channel, the session
 * helper settings, the JWT key path (the key file itself is re-read by the API whenever it
 * changes). Those values are still copied into the running configuration (they are only read
 * at start), so that a later save by the service writes the file's values back, not the old
 * ones - except max_json_body_bytes, read by request threads without a lock.
 */
#ifndef KASM_DEPLOY_RELOAD_H
#define KASM_DEPLOY_RELOAD_H

#include <stddef.h>

#include "cfg.h"

#define DRL_MAX_KEYS 48

struct drl_diff {
    const char *applied[DRL_MAX_KEYS]; /* key names (static strings) */
    size_t napplied;
    const char *restart[DRL_MAX_KEYS];
    size_t nrestart;
    int token_changed; /* the file holds a newer agent token or one of another registration
                          (server_id claim): adopted by drl_apply */
    int token_stale;   /* the file holds an older agent token (e.g. written back by an editor
                          opened before a refresh): the running one stays */
    int hosts_changed; /* api_host, api_port, api_verify_cert or api_ca_file */
};

/*
 * Compares the file's configuration with the running one (keys applied at once) and with the
 * one the service started with (keys that need a restart: a key changed by an earlier reload
 * still needs it). started may be NULL (= running); only its plain fields are read.
 */
void drl_diff(const struct cfg *running, const struct cfg *started, const struct cfg *file,
              struct drl_diff *d);

/*
 * Copies the file's values into running as described above (the token only when the file has
 * one that differs; the unknown keys are taken over: file's and running's are swapped, free
 * file afterwards). Returns 0, or ERR_NOMEM (running unchanged for the token).
 */
int drl_apply(struct cfg *running, struct cfg *file, struct err *e);

#endif
