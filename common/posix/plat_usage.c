/*
 * posix/plat_usage.c - plat_system_usage() on Linux: CPU from /proc/stat (delta since the
 * previous call), memory from /proc/meminfo (MemAvailable), disk from statvfs().
 */
#include "plat.h"
#include "plat_cpu.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

static pthread_mutex_t usage_lock = PTHREAD_MUTEX_INITIALIZER;
static struct plat_cpu_sampler cpu; /* guarded by usage_lock */

static int read_cpu(unsigned long long *busy, unsigned long long *total, struct err *e)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (!f)
        return err_set(e, ERR_IO, "cannot read /proc/stat: %s", strerror(errno));
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 4)
        return err_set(e, ERR_PARSE, "/proc/stat: unexpected format");
    /* user nice system idle iowait irq softirq steal (guest times are inside user/nice) */
    *total = 0;
    for (int i = 0; i < 8 && i < n; i++)
        *total += v[i];
    *busy = *total - v[3] - (n > 4 ? v[4] : 0);
    return 0;
}

static int cpu_pct(double *out, struct err *e)
{
    unsigned long long busy, total;
    int rc;

    pthread_mutex_lock(&usage_lock);
    if (!cpu.have_prev) {
        struct timespec ts = {0, 50 * 1000000L};
        if ((rc = read_cpu(&busy, &total, e)) < 0)
            goto out;
        plat_cpu_sample(&cpu, busy, total);
        nanosleep(&ts, NULL);
    }
    if ((rc = read_cpu(&busy, &total, e)) < 0)
        goto out;
    *out = plat_cpu_sample(&cpu, busy, total);
out:
    pthread_mutex_unlock(&usage_lock);
    return rc;
}

static int mem_pct(double *out, struct err *e)
{
    char line[256];
    unsigned long long total = 0, avail = 0, v;
    int have_total = 0, have_avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");

    if (!f)
        return err_set(e, ERR_IO, "cannot read /proc/meminfo: %s", strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu", &v) == 1) {
            total = v;
            have_total = 1;
        } else if (sscanf(line, "MemAvailable: %llu", &v) == 1) {
            avail = v;
            have_avail = 1;
        }
    }
    fclose(f);
    if (!have_total || !have_avail || total == 0 || avail > total)
        return err_set(e, ERR_PARSE, "/proc/meminfo: MemTotal or MemAvailable missing");
    *out = 100.0 * (double)(total - avail) / (double)total;
    return 0;
}

int plat_system_usage(struct plat_usage *out, const char *disk_path, struct err *e)
{
    struct statvfs sv;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = cpu_pct(&out->cpu_pct, e)) < 0 || (rc = mem_pct(&out->mem_pct, e)) < 0)
        return rc;
    if (statvfs(disk_path && *disk_path ? disk_path : "/", &sv) != 0)
        return err_set(e, plat_err_from_os(errno), "cannot read the disk usage of %s: %s",
                       disk_path && *disk_path ? disk_path : "/", strerror(errno));
    if (sv.f_blocks > 0) {
        /* used / (used + available to unprivileged users), as df computes it */
        double used = (double)(sv.f_blocks - sv.f_bfree);
        double avail = (double)sv.f_bavail;
        out->disk_pct = used + avail > 0 ? 100.0 * used / (used + avail) : 0.0;
    }
    return 0;
}
