/*
 * posix/domain.c - domain membership for --await-domain: not applicable on POSIX, where
 * the registration is always performed at once (docs/architecture.md).
 */
#include "register.h"

int dreg_domain_joined(void)
{
    return 1;
}
