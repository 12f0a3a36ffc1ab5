/*
 * posix/plat_sys.c - time, sleeping, host name, secure random bytes, process id and syslog
 * on POSIX (Linux).
 */
#include "log.h"
#include "plat.h"
#include "posix_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

uint64_t plat_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t plat_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t plat_wall_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

void plat_sleep_ms(uint32_t ms)
{
    struct timespec req, rem;
    req.tv_sec = (time_t)(ms / 1000);
    req.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&req, &rem) < 0 && errno == EINTR)
        req = rem;
}

int plat_hostname(char *out, size_t cap, struct err *e)
{
    char name[256];
    char best[1025];
    struct addrinfo hints, *res = NULL;
    size_t n;

    if (gethostname(name, sizeof(name)) < 0)
        return plat_posix_fail(e, errno, "cannot read the host name", NULL);
    name[sizeof(name) - 1] = '\0';
    snprintf(best, sizeof(best), "%s", name);
    /* A plain name: ask the resolver (normally /etc/hosts) for the canonical, qualified one. */
    if (!strchr(name, '.')) {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_flags = AI_CANONNAME;
        if (getaddrinfo(name, NULL, &hints, &res) == 0 && res && res->ai_canonname) {
            size_t ln = strlen(name);
            /* Only accept it if it extends our name ("vm" -> "vm.example.org"). */
            if (strncmp(res->ai_canonname, name, ln) == 0 && res->ai_canonname[ln] == '.')
                snprintf(best, sizeof(best), "%s", res->ai_canonname);
        }
        if (res)
            freeaddrinfo(res);
    }
    n = strlen(best);
    if (n == 0)
        return err_set(e, ERR_IO, "the host name is empty");
    if (n + 1 > cap)
        return err_set(e, ERR_TOO_LARGE, "the host name does not fit in %zu bytes", cap);
    memcpy(out, best, n + 1);
    return 0;
}

int plat_random_bytes(void *buf, size_t len, struct err *e)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len > 256 ? 256 : len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS)
                break; /* very old kernel: fall back to /dev/urandom */
            return plat_posix_fail(e, errno, "cannot get random bytes", NULL);
        }
        p += n;
        len -= (size_t)n;
    }
    if (len > 0) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return plat_posix_fail(e, errno, "cannot get random bytes", "/dev/urandom");
        while (len > 0) {
            ssize_t n = read(fd, p, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                int en = n < 0 ? errno : EIO;
                close(fd);
                return plat_posix_fail(e, en, "cannot get random bytes", "/dev/urandom");
            }
            p += n;
            len -= (size_t)n;
        }
        close(fd);
    }
    return 0;
}

unsigned long plat_pid(void)
{
    return (unsigned long)getpid();
}

/* openlog() keeps the ident pointer: it must outlive the log. */
static char syslog_ident[64];

void plat_syslog_open(const char *source)
{
    snprintf(syslog_ident, sizeof(syslog_ident), "%s", source ? source : "kasm-agent");
    openlog(syslog_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void plat_syslog_write(int level, const char *msg)
{
    int pri;
    if (level >= LOG_LEVEL_CRITICAL)
        pri = LOG_CRIT;
    else if (level >= LOG_LEVEL_ERROR)
        pri = LOG_ERR;
    else if (level >= LOG_LEVEL_WARNING)
        pri = LOG_WARNING;
    else if (level >= LOG_LEVEL_INFO)
        pri = LOG_INFO;
    else
        pri = LOG_DEBUG;
    syslog(pri, "%s", msg);
}

void plat_syslog_close(void)
{
    closelog();
}
