/*
 * setup_plat.c (POSIX) - the installer's machine-wide settings (setup.h) exist only on
 * Windows; on Linux the folders are made private (owner only) and the rest is the packager's.
 */
#define LOG_MODULE "setup"

#include <stdio.h>

#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "setup.h"

int setup_plat_harden(const char *install_dir, const char *cfg_path, const char *service_name,
                      int port, struct err *e)
{
    static const char *const private_dirs[] = {"certs", "scripts"};
    char path[1024];
    int rc;

    (void)service_name;
    (void)port;
    for (size_t k = 0; k < sizeof(private_dirs) / sizeof(private_dirs[0]); k++) {
        if ((rc = fs_join(install_dir, private_dirs[k], path, sizeof(path), e)) < 0 ||
            (rc = plat_path_restrict_to_admins(path, e)) < 0)
            return rc;
    }
    return plat_path_restrict_to_admins(cfg_path, e);
}

int setup_plat_wait_stopped(const char *service_name, unsigned timeout_ms, struct err *e)
{
    (void)service_name;
    (void)timeout_ms;
    (void)e;
    return 0;
}

void setup_plat_unharden(const char *service_name)
{
    (void)service_name;
}
