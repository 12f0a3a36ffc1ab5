/*
 * timefmt.c - durations in words (timefmt.h).
 */
#include "timefmt.h"

#include <stdio.h>

void tfmt_duration(int64_t secs, char *out, size_t cap)
{
    long long s = secs < 0 ? -(long long)secs : (long long)secs;

    if (!cap)
        return;
    if (s >= 86400)
        snprintf(out, cap, "%lld d %lld h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, cap, "%lld h %lld min", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, cap, "%lld min %lld s", s / 60, s % 60);
    else
        snprintf(out, cap, "%lld s", s);
}
