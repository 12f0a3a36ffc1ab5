/*
 * adm_endpoint.h - where the admin channel of an agent is, shared by the service and
 * agentctl (compiled into both): the config key admin_socket - POSIX, the path of a Unix
 * socket (default ADM_SOCKET_DEFAULT); Windows, the name of a local pipe \\.\pipe\NAME
 * (default ADM_PIPE_NAME). Tests give every agent its own, so several run side by side.
 */
#ifndef KASM_ADM_ENDPOINT_H
#define KASM_ADM_ENDPOINT_H

#include <stddef.h>

#include "err.h"

#define ADM_PIPE_NAME      "\\\\.\\pipe\\kasm-open-agent-admin"
#define ADM_SOCKET_DEFAULT "/run/kasm-open-agent/admin.sock"
#define ADM_ENDPOINT_MAX   1024

/* The endpoint named by the config value admin_socket (NULL or "" for the default).
 * Windows: ERR_INVALID unless it is a local pipe name. */
int adm_endpoint(const char *admin_socket, char *out, size_t cap, struct err *e);

#endif
