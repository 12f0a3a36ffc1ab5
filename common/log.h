/*
 * log.h - the agent's logger: levels, sinks and redaction of secrets.
 *
 * Every record goes through log_redact() before any sink sees it, so a token, password or
 * private key that slips into a message still prints as `<redacted>`. Callers should not
 * log secrets in the first place; redaction is the safety net, and it is tested.
 *
 * Sinks: stderr (on by default), a file with size-based rotation, the system log (Event Log
 * on Windows, syslog on POSIX), and a forwarding hook (the deployment log shipper uses it),
 * plus an in-memory ring of recent records for the admin CLI. The logger is thread-safe.
 */
#ifndef KASM_LOG_H
#define KASM_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum log_level {
    LOG_LEVEL_DEBUG = 10,
    LOG_LEVEL_INFO = 20,
    LOG_LEVEL_WARNING = 30,
    LOG_LEVEL_ERROR = 40,
    LOG_LEVEL_CRITICAL = 50,
};

#define LOG_LINE_MAX 2048 /* longer messages are cut and end in "..." */
#define LOG_REDACTED "<redacted>"

/* A record handed to sinks and hooks: already redacted. */
struct log_record {
    int64_t time;     /* seconds since the Unix epoch, UTC */
    uint32_t time_ms; /* milliseconds part */
    enum log_level level;
    const char *module;  /* short name of the emitting module, e.g. "cfg" */
    const char *message; /* redacted, NUL-terminated */
};

typedef void (*log_hook_fn)(const struct log_record *rec, void *ctx);

struct log_options {
    enum log_level level;        /* records below are dropped (default INFO) */
    int to_stderr;               /* 1: write to stderr */
    const char *file_path;       /* NULL: no file sink */
    uint64_t file_max_bytes;     /* rotate when the file would grow past this (0: 10 MiB) */
    unsigned file_keep;          /* rotated files kept: path.1 .. path.N (0: 5) */
    const char *syslog_source;   /* NULL: no system log sink; else Event Log source / ident */
    enum log_level syslog_level; /* records below are not sent to the system log (0: INFO) */
};

/* (Re)configures sinks. Safe to call again (e.g. on reload). */
int log_init(const struct log_options *opt, struct err *e);
/* Flushes and closes sinks; afterwards records go to stderr only. */
void log_shutdown(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/*
 * Registers a forwarding hook (one at a time; NULL removes it). The hook gets every record
 * that passes the level, already redacted, on the logging thread and outside the logger's
 * lock. Records the hook itself logs are not fed back to it. When this returns, calls of the
 * previous hook have finished; so it must not be called from inside the hook.
 */
void log_set_hook(log_hook_fn fn, void *ctx);

/*
 * Formats, redacts, escapes control characters (one record is one line: "\n" prints as
 * "\\n") and cuts to LOG_LINE_MAX, then hands the record to every sink. Thread-safe.
 */
void log_write(enum log_level level, const char *module, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 3, 4)))
#endif
    ;

#ifndef LOG_MODULE
#define LOG_MODULE "agent"
#endif
#define log_debug(...)    log_write(LOG_LEVEL_DEBUG, LOG_MODULE, __VA_ARGS__)
#define log_info(...)     log_write(LOG_LEVEL_INFO, LOG_MODULE, __VA_ARGS__)
#define log_warning(...)  log_write(LOG_LEVEL_WARNING, LOG_MODULE, __VA_ARGS__)
#define log_error(...)    log_write(LOG_LEVEL_ERROR, LOG_MODULE, __VA_ARGS__)
#define log_critical(...) log_write(LOG_LEVEL_CRITICAL, LOG_MODULE, __VA_ARGS__)

/*
 * Rewrites msg in place, replacing secrets by LOG_REDACTED (the full rules and examples are
 * in docs/security.md, "Logging"):
 *  - JWTs (eyJ... base64url segments; also a cut-off "eyJ...eyJ..." header and payload);
 *  - PEM private key blocks, BEGIN through END (an unterminated block: to the end);
 *  - values of secret-named keys (token, jwt, password, secret, authorization, api_key,
 *    private_key, credential, *_token, *_password, ... case-insensitive) in the forms
 *    key=value, key: value, "key": "value", --key value, "Authorization: Bearer x";
 *  - "Bearer <credential>" anywhere and the password of "scheme://user:password@host".
 * Ordinary text such as "the token expired at 10:00" is left alone. Reads at most cap bytes
 * (the last one is treated as the terminator if there is none) and the result never grows
 * past cap - 1 bytes. Returns msg.
 */
char *log_redact(char *msg, size_t cap);

/* "DEBUG", "INFO", ... and back (case-insensitive); -1 when unknown. */
const char *log_level_name(enum log_level level);
int log_level_parse(const char *name);

/*
 * Copies up to max most recent records (oldest first) from the in-memory ring into out,
 * which the caller frees with log_ring_free(). Used by `agentctl logs`.
 */
struct log_ring_entry {
    uint64_t seq; /* the record's sequence number: 1, 2, ... since the logger started */
    int64_t time;
    uint32_t time_ms;
    enum log_level level;
    char module[16];
    char message[LOG_LINE_MAX];
};
size_t log_ring_snapshot(struct log_ring_entry **out, size_t max);
void log_ring_free(struct log_ring_entry *entries);

/*
 * `agentctl logs --follow`: up to max records with a sequence number above `after`, oldest
 * first (0: from the oldest record in the ring). pos tells where the ring stands: oldest and
 * last are the sequence numbers of its oldest and newest record (oldest = last + 1 when it is
 * empty); missed counts the records after `after` that already left the ring (it wrapped
 * before the client asked again); next is what to pass as `after` on the next call (the last
 * record returned, else `after` itself, or oldest - 1 when records were missed).
 */
struct log_ring_pos {
    uint64_t oldest, last, missed, next;
};
size_t log_ring_since(uint64_t after, size_t max, struct log_ring_entry **out,
                      struct log_ring_pos *pos);

/* Records at error or above logged in the last hour before `now` (Unix seconds), counted by
 * the minute: the 60 minutes up to and including now's. */
unsigned log_error_count(int64_t now);

#endif
