/*
 * fuzz_range.c - libFuzzer target for service/transfer/range.c. The first 8 bytes are the
 * file size, the rest a Range header, an HTTP date and a file name. Checks: a 206 lies inside
 * the file and its Content-Range says the same, 200 is the whole file, 416 sends nothing;
 * every date that parses formats back to a string that parses to the same time.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_range: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t fsize = 0;
    char *s;
    struct rng_result r;
    char want[96];
    int64_t t, t2;
    char date[RNG_DATE_LEN];

    if (size < 8)
        return 0;
    for (int i = 0; i < 8; i++)
        fsize = fsize << 8 | data[i];
    if (data[0] & 0x80)
        fsize &= 0xFFFF; /* small sizes often */
    s = malloc(size - 8 + 1);
    if (!s)
        return 0;
    memcpy(s, data + 8, size - 8);
    s[size - 8] = '\0';

    rng_parse(s, fsize, &r);
    switch (r.status) {
    case 200:
        if (r.start != 0 || r.length != fsize || r.content_range[0])
            violated("200 is not the whole file");
        break;
    case 206:
        if (r.length == 0 || r.start >= fsize || r.length > fsize - r.start)
            violated("206 outside the file");
        snprintf(want, sizeof(want), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r.start,
                 r.start + r.length - 1, fsize);
        if (strcmp(want, r.content_range) != 0)
            violated("Content-Range disagrees with the offsets");
        break;
    case 416:
        snprintf(want, sizeof(want), "bytes */%" PRIu64, fsize);
        if (r.length != 0 || strcmp(want, r.content_range) != 0)
            violated("bad 416");
        break;
    default:
        violated("unexpected status");
    }

    if (rng_http_date_parse(s, &t, NULL) == 0) {
        if (rng_http_date_format(t, date, sizeof(date)) != 0)
            violated("a parsed date does not format");
        if (rng_http_date_parse(date, &t2, NULL) != 0 || t2 != t)
            violated("date round trip");
    }
    if (!rng_content_type(s))
        violated("no content type");
    (void)rng_not_modified(s, (int64_t)fsize);
    free(s);
    return 0;
}
