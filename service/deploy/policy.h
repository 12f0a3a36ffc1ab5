/*
 * policy.h - the pure decisions of the token lifecycle (prefix dpol_): when to refresh the
 * agent token, how long to wait between retries, and how times are printed in the log.
 * No I/O and no clock reads: everything takes "now" as an argument (unit-tested).
 */
#ifndef KASM_DEPLOY_POLICY_H
#define KASM_DEPLOY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define DPOL_MAX_ATTEMPTS 10 /* "Attempt N /10 attempts" */

enum dpol_action {
    DPOL_KEEP = 0, /* the token is fine */
    DPOL_REFRESH,  /* valid, but less than a third of its lifetime is left */
    DPOL_EXCHANGE, /* past exp: exchange it (works inside the deployment's grace period) */
};

/*
 * What to do with a token whose exp is exp_ms (epoch ms) and that was received at
 * received_ms (epoch ms), at now_ms. The lifetime is exp - received; the token is due for a
 * refresh once the time left falls under a third of it (dpol_refresh_due_ms). ahead_ms is
 * how long until the lifecycle decides again (the heartbeat interval, plus how long the last
 * keepalive took when it decides before one): when the next decision would come after the
 * due time, the token is refreshed now rather than late. A token without exp (has_exp 0) is
 * kept.
 */
enum dpol_action dpol_decide(int has_exp, int64_t exp_ms, int64_t received_ms, int64_t now_ms,
                             int64_t ahead_ms);
/*
 * When dpol_decide() starts answering DPOL_REFRESH for that token with ahead_ms 0 (epoch ms);
 * 0 for a token without exp. A heartbeat every I ms refreshes at the first beat t with
 * t + I > due (or t >= due).
 */
int64_t dpol_refresh_due_ms(int has_exp, int64_t exp_ms, int64_t received_ms);

/*
 * Delay before retry attempt (1-based: the wait after the attempt-th failure): base * 2^(n-1)
 * capped at cap_ms, then jittered into [delay/2, delay] by rnd (any 32-bit random value).
 */
uint32_t dpol_backoff_ms(unsigned attempt, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd);

/* "2026-11-21 16:20:05 UTC" for epoch seconds t (proleptic Gregorian, UTC). */
void dpol_format_time(int64_t t, char *out, size_t cap);

#endif
