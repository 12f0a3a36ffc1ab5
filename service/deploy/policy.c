/*
 * policy.c - the refresh decision, the retry backoff and the log time format (policy.h).
 */
#include <stdio.h>

#include "policy.h"

enum dpol_action dpol_decide(int has_exp, int64_t exp_ms, int64_t received_ms, int64_t now_ms,
                             int64_t ahead_ms)
{
    int64_t due;

    if (!has_exp)
        return DPOL_KEEP;
    if (now_ms >= exp_ms)
        return DPOL_EXCHANGE;
    if (exp_ms <= received_ms)
        return DPOL_REFRESH; /* received after exp (a clock change): at once */
    due = dpol_refresh_due_ms(has_exp, exp_ms, received_ms);
    if (ahead_ms < 0)
        ahead_ms = 0;
    /* due now, or the next decision (now + ahead) would come after the due time */
    if (now_ms >= due || now_ms > due - ahead_ms)
        return DPOL_REFRESH;
    return DPOL_KEEP;
}

int64_t dpol_refresh_due_ms(int has_exp, int64_t exp_ms, int64_t received_ms)
{
    int64_t lifetime = exp_ms - received_ms;

    if (!has_exp)
        return 0;
    if (lifetime <= 0)
        return received_ms;
    /* left * 3 < lifetime  <=>  left <= ceil(lifetime / 3) - 1 */
    return exp_ms - (lifetime + 2) / 3 + 1;
}

uint32_t dpol_backoff_ms(unsigned attempt, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd)
{
    uint64_t d = base_ms ? base_ms : 1;
    uint32_t half;

    for (unsigned i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    half = (uint32_t)(d / 2);
    return (uint32_t)d - (half ? rnd % (half + 1) : 0);
}

void dpol_format_time(int64_t t, char *out, size_t cap)
{
    int64_t days = t / 86400, secs = t % 86400;
    int64_t z, era, doe, yoe, y, doy, mp, d, m;

    if (secs < 0) {
        secs += 86400;
        days--;
    }
    /* civil_from_days (Howard Hinnant's algorithm) */
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    snprintf(out, cap, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld UTC", (long long)y, (long long)m,
             (long long)d, (long long)(secs / 3600), (long long)(secs % 3600 / 60),
             (long long)(secs % 60));
}
