/*
 * win32/domain.c - domain membership for --await-domain: NetGetJoinInformation.
 */
#include <windows.h>
#include <lm.h>

#include "register.h"

int dreg_domain_joined(void)
{
    LPWSTR name = NULL;
    NETSETUP_JOIN_STATUS status = NetSetupUnknownStatus;
    NET_API_STATUS rc = NetGetJoinInformation(NULL, &name, &status);

    if (name)
        NetApiBufferFree(name);
    if (rc != NERR_Success)
        return -1;
    return status == NetSetupDomainName ? 1 : 0;
}
