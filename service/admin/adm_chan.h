/*
 * adm_chan.h - the platform part of the admin channel (service/admin/posix/adm_chan.c,
 * win32/adm_chan.c): create the endpoint safely, accept one client at a time, tell whether
 * the client may administer the agent, and move bytes with a deadline. Internal to
 * service/admin/.
 */
#ifndef KASM_ADM_CHAN_H
#define KASM_ADM_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct adm_listener;
struct adm_conn;

/* Creates the endpoint (path: the socket path or the pipe name, adm_endpoint.h). Refuses when
 * another agent or another program holds it. */
int adm_listen(const char *path, struct adm_listener **out, struct err *e);
/* Waits for the next client. ERR_CANCELLED once adm_listener_wake() was called. */
int adm_accept(struct adm_listener *l, struct adm_conn **out, struct err *e);
/* Makes a waiting or later adm_accept() return ERR_CANCELLED; any thread. */
void adm_listener_wake(struct adm_listener *l);
/* Closes the endpoint and removes the socket file; NULL ignored. */
void adm_listener_close(struct adm_listener *l);

/* 0 when the client may administer the agent; ERR_PERMISSION (who it is in e) otherwise.
 * Windows: call after the first read (impersonation needs data read from the pipe). */
int adm_conn_authorize(struct adm_conn *c, struct err *e);
/* Reads exactly len bytes before the deadline (plat_monotonic_ms() value). */
int adm_conn_read(struct adm_conn *c, void *buf, size_t len, uint64_t deadline, struct err *e);
int adm_conn_write(struct adm_conn *c, const void *buf, size_t len, uint64_t deadline,
                   struct err *e);
void adm_conn_close(struct adm_conn *c);

#endif
