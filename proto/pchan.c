/*
 * pchan.c - the part of the byte channel (pchan.h) that is the same on every platform,
 * built on the primitives of posix/pchan.c and win32/pchan.c.
 */
#include "pchan.h"

int pchan_read_full(struct pchan *c, void *buf, size_t len, struct err *e)
{
    size_t done = 0, got;
    int rc;

    while (done < len) {
        rc = pchan_read(c, (char *)buf + done, len - done, &got, e);
        if (rc < 0)
            return rc;
        if (got == 0)
            return err_set(e, ERR_IO, "the peer closed the channel");
        done += got;
    }
    return 0;
}
