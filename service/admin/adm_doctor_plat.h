/*
 * adm_doctor_plat.h - the platform parts of `agentctl doctor` (adm_doctor.h): who may read or
 * write a file (POSIX mode and owner; Windows owner and DACL read with GetNamedSecurityInfoW)
 * and the firewall rule for the HTTPS port (Windows INetFwPolicy2; POSIX not applicable).
 * Implemented in service/admin/posix/ and service/admin/win32/ adm_doctor_plat.c.
 */
#ifndef KASM_ADM_DOCTOR_PLAT_H
#define KASM_ADM_DOCTOR_PLAT_H

#include <stddef.h>

#include "adm_doctor.h"
#include "err.h"

/*
 * Is path (a private key) readable and writable only by the agent's account and the
 * administrators (POSIX: mode 0600 or stricter, owned by root or the agent's user; Windows: a
 * DACL granting SYSTEM and Administrators only)? 0 yes; 1 no, with why (what grants too much)
 * and fix (the commands that repair it); <0 it cannot be told (e: missing, unreadable).
 */
int admd_plat_private(const char *path, char *why, size_t why_cap, char *fix, size_t fix_cap,
                      struct err *e);

/*
 * Can only the agent's account and the administrators change path (a file or a directory:
 * the config, the scripts folder)? POSIX: not writable by group or others, owned by root or
 * the agent's user; Windows: owned by and writable only by SYSTEM, Administrators or
 * TrustedInstaller. 0 yes; 1 no (why, fix); <0 cannot be told (e).
 */
int admd_plat_admin_write_only(const char *path, char *why, size_t why_cap, char *fix,
                               size_t fix_cap, struct err *e);

/* The firewall check for inbound TCP on port: fills c's verdict, detail and fix. */
void admd_plat_firewall(int port, struct admd_check *c);

#endif
