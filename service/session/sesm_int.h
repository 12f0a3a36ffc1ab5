/*
 * sesm_int.h - internals of the session manager shared with its platform files and its unit
 * test (tests/unit/test_sesm.c): the restart throttle, user matching and the POSIX session
 * sources' parsers. Not for other modules.
 */
#ifndef KASM_SESM_INT_H
#define KASM_SESM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sess_plat.h"

#define SESM_STABLE_MS 60000u /* a helper that ran this long resets the restart delay */

/* The restart throttle of one session: next_ms is the delay the next quick death waits. */
struct sesm_throttle {
    uint32_t next_ms; /* 0: none yet */
};
/*
 * A helper died after running ran_ms: returns how long to wait before starting it again.
 * The first delay is min_ms; each quick death doubles it up to max_ms; a helper that ran
 * SESM_STABLE_MS or more starts over at min_ms.
 */
uint32_t sesm_throttle_delay(struct sesm_throttle *t, uint64_t ran_ms, uint32_t min_ms,
                             uint32_t max_ms);

/*
 * 1 when the account name `want` (as a route names it: "alice", "alice@corp.example",
 * "CORP\alice") names the session user `have`. The domain part is dropped; Windows
 * compares ASCII letters case-insensitively, POSIX exactly.
 */
int sesm_user_match(const char *want, const char *have);

#ifndef _WIN32
/*
 * Parses a declared-sessions file: lines "<id> <user> [console] [display=:N]", '#' comments
 * and blank lines ignored. A malformed line is ERR_PARSE naming the line. *out is malloc'd.
 */
int sess_parse_declared(const char *name, const char *text, size_t len, struct sess_info **out,
                        size_t *n, struct err *e);
/*
 * The logind sessions in dir (/run/systemd/sessions): key=value files with USER, ACTIVE,
 * STATE, DISPLAY, SEAT, CLASS; sessions in state active or online of class user*. Ids "N"
 * map to N, "cN" to 0x80000000 | N; other names are skipped.
 */
int sess_logind_enumerate(const char *dir, struct sess_info **out, size_t *n, struct err *e);
#endif

#endif
