/*
 * adm_endpoint.c - the admin channel's endpoint for a configuration (adm_endpoint.h).
 */
#include "adm_endpoint.h"

#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#define ADM_DEFAULT ADM_PIPE_NAME
#else
#define ADM_DEFAULT ADM_SOCKET_DEFAULT
#endif

int adm_endpoint(const char *admin_socket, char *out, size_t cap, struct err *e)
{
    if (!admin_socket || !*admin_socket)
        admin_socket = ADM_DEFAULT;
    if (strlen(admin_socket) >= cap)
        return err_set(e, ERR_TOO_LARGE, "admin_socket is too long (%zu bytes, at most %zu)",
                       strlen(admin_socket), cap - 1);
#ifdef _WIN32
    {
        static const char local[] = "\\\\.\\pipe\\";
        size_t n = sizeof(local) - 1;
        if (strlen(admin_socket) <= n || _strnicmp(admin_socket, local, n) != 0)
            return err_set(e, ERR_INVALID,
                           "admin_socket %.200s is not a local pipe name: write it as "
                           "\\\\.\\pipe\\NAME (default %s)",
                           admin_socket, ADM_PIPE_NAME);
    }
#endif
    snprintf(out, cap, "%s", admin_socket);
    return 0;
}
