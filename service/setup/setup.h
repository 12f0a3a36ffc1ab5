/*
 * setup.h - what the installer asks of agent.exe (wix/kasm.wxs runs it as deferred custom
 * actions, as LocalSystem):
 *
 *   agent.exe --install-setup --cfg FILE [--port N]  after the files and the service are in:
 *       writes a default config.yaml only when none exists (an existing one is kept; --port
 *       sets its `port`), creates certs\ and scripts\, then hardens the machine (setup_plat_*).
 *   agent.exe --uninstall-cleanup --cfg FILE [--keep-data]  on uninstall, after StopServices:
 *       waits until the service's process has ended; then, on a real uninstall (not with
 *       --keep-data, which the removal of the old version in a major upgrade uses) undoes the
 *       hardening and removes what the agent wrote beside itself (config.yaml, certs\,
 *       Upload\, Download\, scripts\ contents, the pending registration, the log), so that
 *       the install folder goes with the files.
 */
#ifndef KASM_SETUP_H
#define KASM_SETUP_H

#include "err.h"

struct setup_request {
    const char *cfg_path;     /* <install dir>\config.yaml */
    int port;                 /* 0: keep the config's port (4902 in a new config) */
    const char *service_name; /* the Windows service ("Kasm") */
    int keep_data;            /* uninstall of the old version in a major upgrade: only wait */
};

/* Each returns 0 or a negative ERR_*; steps that cannot matter for a working agent (firewall,
 * Event Log source, recovery actions) only warn (log_warning) when they fail. */
int setup_install(const struct setup_request *r, struct err *e);
int setup_uninstall(const struct setup_request *r, struct err *e);

/*
 * agent.exe --upgrade-mark (the OLD agent.exe, from the new package, before
 * RemoveExistingProducts): marks the install folder so that the old version's uninstall keeps
 * the data even where the installer does not set UPGRADINGPRODUCTCODE for it (Wine's
 * RemoveExistingProducts). --install-setup removes the mark; one older than 30 min is ignored.
 * Then stops the service as setup_stop_service() does.
 */
int setup_mark_upgrade(const struct setup_request *r, struct err *e);

/*
 * agent.exe --stop-service (before StopServices): stops the service and waits until its
 * process has ended, so that the installer can replace or remove agent.exe. Windows
 * Installer's StopServices waits by itself; Wine's does not (its RemoveFiles then fails on the
 * running agent.exe, its InstallServices on the service still marked for deletion).
 */
int setup_stop_service(const struct setup_request *r, struct err *e);

/*
 * The default config.yaml text for an install folder (malloc'd; free it). Portable so that the
 * unit tests check it loads with cfg_load_buffer.
 */
char *setup_default_config(const char *install_dir, int port);

/* ---- platform part (win32/setup_plat.c, posix/setup_plat.c) ---- */

/*
 * The machine-wide settings: the folder ACLs (install dir: SYSTEM + Administrators full,
 * Users read/execute - session_helper.exe runs as the user; certs\, scripts\ and config.yaml:
 * SYSTEM + Administrators only), the Event Log source, the inbound firewall rule for TCP port,
 * the service's recovery actions (restart on failure). ACL failures fail; the rest warns.
 */
int setup_plat_harden(const char *install_dir, const char *cfg_path, const char *service_name,
                      int port, struct err *e);
/*
 * Waits until the service is stopped and its process has ended (asking it to stop if it still
 * runs), so that the installer can remove agent.exe: Windows Installer's StopServices waits,
 * Wine's does not. 0 also when the service does not exist; ERR_TIMEOUT after timeout_ms.
 */
int setup_plat_wait_stopped(const char *service_name, unsigned timeout_ms, struct err *e);
/* Removes the firewall rule and the Event Log source; failures warn. */
void setup_plat_unharden(const char *service_name);

#endif
