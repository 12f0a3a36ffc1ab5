/*
 * scr_startup.h - the service-start work of the scripts module (KASM_INTERFACE.md sections 6
 * and 8, issue 4 "At start"): after the first successful check-in, fetch the server's file
 * mappings and install those whose destination is under the scripts folder (admin scripts,
 * .reg files), import every .reg file of scripts/registry (Windows: reg.exe import), then run
 * the service_startup scripts with server_id, jwt, api_host and api_port. It runs once per
 * agent run, on a thread of its own, started from the token lifecycle's check-in hook
 * (dlc_set_checkin_hook in lifecycle.h).
 */
#ifndef KASM_SCR_STARTUP_H
#define KASM_SCR_STARTUP_H

#include <stddef.h>

#include "cfg.h"
#include "err.h"

struct dlc;
struct dapi_conn;
struct scr_startup;

/* cfg is the agent's configuration (read under the lifecycle's config lock); it must outlive s. */
int scr_startup_create(struct scr_startup **out, struct cfg *cfg, struct err *e);
/*
 * The lifecycle's check-in hook (ctx is the struct scr_startup *): the first call copies
 * what it needs (the connection, the token, config values) and starts the work thread;
 * later calls do nothing. Returns at once.
 */
void scr_startup_hook(struct dlc *l, const struct dapi_conn *conn, const char *token, void *ctx);
/* Stops the work (a running script is killed), waits for the thread, frees s; NULL ignored. */
void scr_startup_stop(struct scr_startup *s);

/*
 * Where a file mapping's destination lands under script_path: 1 when it names a file in one
 * of the folders builtin, service_startup, session_start, session_end, registry (out = the
 * path to write); 0 when the destination is not under the scripts folder (not ours to
 * install); ERR_PERMISSION when it is under it but escapes it or breaks the rules (".."
 * components, unsafe names, deeper folders, another folder). Destinations may be absolute
 * (script_path\...) or relative ("scripts\..."), with '\' or '/'.
 */
int scr_mapping_target(const char *script_path, const char *destination, char *out, size_t cap,
                       struct err *e);

#endif
