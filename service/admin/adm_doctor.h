/*
 * adm_doctor.h - `agentctl doctor` in the service (prefix admd_): the checks an administrator
 * runs when something is wrong, each with a verdict and, when not ok, a fix to act on
 * (docs/admin.md, "doctor"). The checks run in the service because it has the rights (the
 * private key, the config's ACLs) and the state (the token, the session table, the listener).
 * adm_doctor.c holds the portable checks, one function per check; the file ACLs and the
 * firewall are platform code (adm_doctor_plat.h: posix/ and win32/ adm_doctor_plat.c).
 *
 * Network checks have short timeouts and a shared budget so that doctor answers within about
 * 20 s even when the deployment is dead (agentctl waits 30 s).
 */
#ifndef KASM_ADM_DOCTOR_H
#define KASM_ADM_DOCTOR_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct cfg;
struct dlc;
struct sesm;
struct api;

enum admd_verdict {
    ADMD_OK = 0,
    ADMD_WARNING,
    ADMD_FAIL,
    ADMD_SKIPPED,
};

#define ADMD_TEXT_MAX 768

struct admd_check {
    const char *name; /* "config", "key_file", ... (docs/admin.md) */
    enum admd_verdict verdict;
    char detail[ADMD_TEXT_MAX]; /* what was found */
    char fix[ADMD_TEXT_MAX];    /* what to do; "" when ok or nothing can be done */
};

/*
 * Runs every check and adds them to r as "checks": [{check, verdict, detail, fix}] and the
 * counts "ok", "warnings", "failed", "skipped". cfg is the configuration in use (read under
 * the lifecycle's lock), cfg_path its file; lifecycle, sessions and api may be NULL (the
 * agent is still starting). Returns 0, or ERR_NOMEM: the checks' failures are results.
 */
int admd_run(struct cfg *cfg, const char *cfg_path, struct dlc *lifecycle, struct sesm *sessions,
             struct api *api, struct cJSON *r);

const char *admd_verdict_name(enum admd_verdict v);

/* ---- pure judgements (unit-tested) ---- */

#define ADMD_CERT_WARN_DAYS 30
#define ADMD_SKEW_FAIL_S    300
#define ADMD_DISK_WARN_FREE (1024ull * 1024ull * 1024ull) /* 1 GiB */
#define ADMD_DISK_WARN_PCT  5

/* A certificate whose not-before is to_not_before seconds from now (negative: in the past)
 * and not-after to_not_after seconds from now: fail outside, warning in its last 30 days. */
enum admd_verdict admd_judge_cert(int64_t to_not_before, int64_t to_not_after);
/* The deployment's clock minus ours: warning above leeway seconds (jwt_leeway), fail above
 * 5 minutes either way. */
enum admd_verdict admd_judge_skew(int64_t skew, int leeway);
/* Free space: warning under 1 GiB or under 5% of the volume. */
enum admd_verdict admd_judge_disk(uint64_t free_bytes, uint64_t total_bytes);
/* 1 when a firewall rule's local ports ("*", "4902", "80,443,4900-4910", "RPC" ...) include
 * port. */
int admd_port_in_list(const char *list, int port);
/* The agent token: fail when absent or past its exp. */
enum admd_verdict admd_judge_token(int has_token, int has_exp, int64_t exp, int64_t now);

#endif
