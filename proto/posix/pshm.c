/*
 * posix/pshm.c - the shared window of pshm.h on Linux: memfd_create with sealing. The writer
 * maps the memfd read-write and then seals it, so that the fd the helper inherits can neither
 * be mapped writable again (F_SEAL_FUTURE_WRITE, Linux 5.1) nor resized (a helper that
 * truncated it would make the service's next store into it fault).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#endif
#include "pshm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pshm_int.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define PSHM_SEALS (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

int pshm_create(size_t size, struct pshm **out, struct err *e)
{
    struct pshm *w = NULL;
    int rc = 0;

    *out = NULL;
    if (size == 0 || size > (size_t)INT32_MAX)
        return err_set(e, ERR_INVALID, "a shared window of %zu bytes is not possible", size);
    if (!(w = calloc(1, sizeof(*w))))
        return err_set(e, ERR_NOMEM, "out of memory for a shared window");
    w->base = MAP_FAILED;
    w->os = memfd_create("kasm-shared-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (w->os < 0) {
        rc = err_set(e, errno == ENOSYS || errno == EINVAL ? ERR_UNSUPPORTED : ERR_IO,
                     "cannot create a shared window: memfd_create: %s", strerror(errno));
        goto out;
    }
    if (ftruncate((int)w->os, (off_t)size) < 0) {
        rc = err_set(e, errno == ENOSPC || errno == ENOMEM ? ERR_NO_SPACE : ERR_IO,
                     "cannot size a shared window of %zu bytes: %s", size, strerror(errno));
        goto out;
    }
    w->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)w->os, 0);
    if (w->base == MAP_FAILED) {
        rc = err_set(e, ERR_NOMEM, "cannot map a shared window of %zu bytes: %s", size,
                     strerror(errno));
        goto out;
    }
    /* after our writable mapping: the seal refuses only new ones */
    if (fcntl((int)w->os, F_ADD_SEALS, PSHM_SEALS) < 0) {
        rc = err_set(e, ERR_UNSUPPORTED,
                     "cannot seal a shared window (Linux 5.1 or later is needed): %s",
                     strerror(errno));
        goto out;
    }
    w->size = size;
    w->writable = 1;
    *out = w;
    w = NULL;
out:
    if (w) {
        if (w->base != MAP_FAILED)
            munmap(w->base, size);
        if (w->os >= 0)
            close((int)w->os);
        free(w);
    }
    return rc;
}

int pshm_share(struct pshm *w, intptr_t *os_handle, struct err *e)
{
    if (!w->writable)
        return err_set(e, ERR_INVALID, "only the writer of a shared window can share it");
    *os_handle = w->os;
    return 0;
}

void pshm_share_done(struct pshm *w, intptr_t os_handle)
{
    (void)w; /* the fd stays ours (pshm_free closes it); the child had its own copy */
    (void)os_handle;
}

int pshm_open_reader(intptr_t os_handle, size_t size, struct pshm **out, struct err *e)
{
    struct pshm *w = NULL;
    struct stat st;
    int fd = (int)os_handle, rc = 0, seals;

    *out = NULL;
    if (os_handle < 0 || os_handle > INT32_MAX) {
        return err_set(e, ERR_INVALID, "shared window: %ld is not a file descriptor",
                       (long)os_handle);
    }
    if (fstat(fd, &st) < 0) {
        rc = err_set(e, ERR_INVALID, "shared window: descriptor %d: %s", fd, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || size == 0 || (uint64_t)st.st_size < (uint64_t)size) {
        rc = err_set(e, ERR_INVALID,
                     "shared window: descriptor %d is not a window of %zu bytes (it has %lld)", fd,
                     size, (long long)st.st_size);
        goto out;
    }
    seals = fcntl(fd, F_GET_SEALS); /* -1 EINVAL: a file that cannot be sealed at all */
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) != (F_SEAL_SHRINK | F_SEAL_SEAL)) {
        /* an unsealed file could be truncated under us and make our reads fault */
        rc = err_set(e, ERR_INVALID, "shared window: descriptor %d is not sealed against shrinking",
                     fd);
        goto out;
    }
    if (!(w = calloc(1, sizeof(*w)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory for a shared window");
        goto out;
    }
    w->base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (w->base == MAP_FAILED) {
        rc = err_set(e, ERR_NOMEM, "cannot map the shared window (%zu bytes): %s", size,
                     strerror(errno));
        goto out;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC); /* nothing we start needs it */
    w->os = fd;
    fd = -1;
    w->size = size;
    *out = w;
    w = NULL;
out:
    free(w);
    if (fd >= 0)
        close(fd);
    return rc;
}

void pshm_free(struct pshm *w)
{
    if (!w)
        return;
    munmap(w->base, w->size);
    close((int)w->os);
    free(w);
}
