/*
 * svc_host_core.h - the portable half of the service host, shared by service/posix/ and
 * service/win32/ (not for the rest of the agent: it uses svc_host.h). The core owns the
 * stop request, the event queue and the "running"/"stopping" bookkeeping; the platform half
 * creates it, feeds it from its control handler, and reports status through a callback.
 */
#ifndef KASM_SVC_HOST_CORE_H
#define KASM_SVC_HOST_CORE_H

#include "svc_host.h"

enum svc_status {
    SVC_STATUS_START_PENDING = 1,
    SVC_STATUS_RUNNING = 2,
    SVC_STATUS_STOP_PENDING = 3,
};

/* Reports a status to the OS (SetServiceStatus); called outside the core's lock. */
typedef void (*svc_report_fn)(void *plat, enum svc_status status, uint32_t wait_hint_ms);

/* name is copied. report may be NULL (nothing to report to, e.g. a console). */
int svc_core_create(struct svc_host **out, const char *name, enum svc_mode mode,
                    svc_report_fn report, void *plat, struct err *e);
void svc_core_destroy(struct svc_host *h);
void svc_core_set_mode(struct svc_host *h, enum svc_mode mode);
void svc_core_set_report(struct svc_host *h, svc_report_fn report, void *plat);
/* Records a stop request (the first one wins) and wakes the waiter. source: a literal. */
void svc_core_request_stop(struct svc_host *h, enum svc_stop_reason reason, const char *source);

#endif
