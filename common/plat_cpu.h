/*
 * plat_cpu.h - the portable half of the CPU usage figure: both platform layers read the
 * machine's cumulative busy and total CPU times (/proc/stat, GetSystemTimes) and feed them
 * here; the percentage is the busy share of the time elapsed since the previous sample.
 * Private to common/ (posix/plat_usage.c, win32/plat_usage.c and the unit test).
 */
#ifndef KASM_PLAT_CPU_H
#define KASM_PLAT_CPU_H

#include <stdint.h>

struct plat_cpu_sampler {
    uint64_t prev_busy, prev_total;
    int have_prev; /* 0 until the first sample: the caller takes a short second one */
};

/* Percentage 0..100 of busy time between the previous sample and this one; records it. */
static inline double plat_cpu_sample(struct plat_cpu_sampler *s, uint64_t busy, uint64_t total)
{
    double pct = 0.0;
    if (s->have_prev && total > s->prev_total && busy >= s->prev_busy)
        pct = 100.0 * (double)(busy - s->prev_busy) / (double)(total - s->prev_total);
    if (pct > 100.0)
        pct = 100.0;
    s->prev_busy = busy;
    s->prev_total = total;
    s->have_prev = 1;
    return pct;
}

#endif
