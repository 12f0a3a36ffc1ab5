/*
 * logship.h - the deployment log shipper (prefix dls_; KASM_INTERFACE.md section 6, issue 6
 * "Logs to the deployment"): a forwarding hook of the logger (common/log.h) queues records in
 * a bounded queue, and a thread sends them in batches to the deployment.
 *
 * Queue: at most capacity records (1000); when it is full the oldest record is dropped and
 * counted; the next batch starts with a record "N log records were dropped". A batch goes when
 * more than flush_count (5) records wait, or flush_age_ms (30 s) after the oldest one arrived.
 * A batch the deployment refuses (HTTP 4xx, or an error_message other than an expired token) is
 * dropped and counted, never retried; a network error, a 5xx or an expired token is retried
 * with a capped, jittered exponential backoff while new records keep the queue bounded.
 *
 * Records are redacted by the logger before the hook sees them. Records logged on the
 * shipper's own thread (its warnings, and anything the HTTPS client logs for it) are never
 * queued, so a failing deployment cannot feed the queue from the shipper itself.
 *
 * The core (queue, batching, retry decisions) runs with any sender and clock: the unit tests
 * drive dls_pump() with a fake sender; dls_start() runs it on a thread with the real sender.
 */
#ifndef KASM_DEPLOY_LOGSHIP_H
#define KASM_DEPLOY_LOGSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "err.h"
#include "log.h"

#define DLS_CAPACITY      1000u
#define DLS_BATCH_MAX     100u   /* records per request */
#define DLS_FLUSH_COUNT   5u     /* a batch goes when more than this many wait */
#define DLS_FLUSH_AGE_MS  30000u /* ... or this long after the oldest one arrived */
#define DLS_RETRY_BASE_MS 1000u
#define DLS_RETRY_CAP_MS  60000u
#define DLS_NOT_READY_MS  1000u /* no token or check-in yet: look again after this */
#define DLS_EXP_MARGIN_S  2     /* the agent token is not used from this many seconds before exp */
#define DLS_APPLICATION   "kasm_agent"
#define DLS_LEVEL_OFF     1000 /* log_forward_level: off */

/* What a sender reports for one batch. */
enum dls_verdict {
    DLS_SENT = 0,      /* delivered: the records leave the queue */
    DLS_RETRY = 1,     /* network error, 5xx, expired token: the same records again later */
    DLS_REFUSED = 2,   /* 4xx or another refusal: the batch is dropped and counted */
    DLS_NOT_READY = 3, /* no token or no check-in yet: try later, no backoff */
};

/* Sends records_json (a JSON array of records); e says why when the verdict is not DLS_SENT. */
typedef enum dls_verdict (*dls_send_fn)(void *ctx, const char *records_json, struct err *e);

struct dls_options {
    size_t capacity;          /* 0: DLS_CAPACITY */
    size_t batch_max;         /* 0: DLS_BATCH_MAX */
    size_t flush_count;       /* 0: DLS_FLUSH_COUNT */
    uint32_t flush_age_ms;    /* 0: DLS_FLUSH_AGE_MS */
    uint32_t retry_base_ms;   /* 0: DLS_RETRY_BASE_MS */
    uint32_t retry_cap_ms;    /* 0: DLS_RETRY_CAP_MS */
    int min_level;            /* records below are not queued; DLS_LEVEL_OFF: none */
    const char *host;         /* the records' "host" (copied); NULL: this machine's name */
    uint64_t (*now_ms)(void); /* NULL: the monotonic clock; tests give a fake one */
};

/* Counters for `agentctl status` (no secret in them). */
struct dls_stats {
    uint64_t queued;   /* records waiting now */
    uint64_t sent;     /* records delivered */
    uint64_t dropped;  /* records dropped because the queue was full */
    uint64_t refused;  /* records in batches the deployment refused */
    uint64_t batches;  /* requests that delivered a batch */
    uint64_t failures; /* attempts that will be retried */
    int enabled;       /* 0: log_forward_level is off */
    char endpoint[32]; /* "component_log", "kasm_session_log" or "" (not known yet) */
    char last_error[ERR_MSG_MAX];
};

struct dls;

/* ---- the core (unit-tested with a fake sender and clock) ---- */

int dls_create(struct dls **out, const struct dls_options *o, dls_send_fn send, void *send_ctx,
               struct err *e);
void dls_destroy(struct dls *s);
/* The logger hook (log_hook_fn); ctx is the struct dls. */
void dls_hook(const struct log_record *rec, void *ctx);
/*
 * Sends at most one batch if one is due (force: whatever waits, ignoring the age and the
 * backoff). Returns how long the caller may wait before the next call (ms; 0: call again
 * now); new records may make a batch due earlier (dls_wait wakes on them).
 */
uint32_t dls_pump(struct dls *s, int force);
void dls_stats(struct dls *s, struct dls_stats *out);
/* Parses log_forward_level: "off", "debug", "info", ... (case-insensitive); -1 unknown. */
int dls_parse_level(const char *text);

/* ---- in the service (service/main.c) ---- */

struct dlc;
/*
 * Starts the shipper over cfg (log_forward_level, the API hosts, the agent token, read under
 * the lifecycle's config lock) and registers the logger hook. Records wait until the lifecycle
 * has checked in once. With log_forward_level off *out is NULL and nothing runs.
 */
int dls_start(struct dls **out, struct cfg *cfg, struct dlc *lifecycle, struct err *e);
/* Removes the hook, makes one last attempt to send what waits, stops the thread; NULL ok. */
void dls_stop(struct dls *s);

#endif
