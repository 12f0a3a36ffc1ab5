/*
 * shot_scale.c - the portable half of the screenshot module: shot_scale(), an exact
 * area-average downscale of a 0x00RRGGBB image (every destination pixel is the mean of the
 * source area it covers, partial source pixels weighted by the fraction covered), and
 * shot_png_free(). Used by POSIX captures, the tests and the benchmark on every platform.
 *
 * Size rule (shared with win32/shot.c): dst_width >= the source width keeps the source size
 * (no upscaling); otherwise height = floor(src_h * dst_width / src_w), at least 1.
 * 1920x1080 -> 1000x562, 300x168.
 */
#include <stdlib.h>
#include <string.h>

#include "shot.h"

void shot_png_free(struct shot_png *p)
{
    if (!p)
        return;
    free(p->data);
    p->data = NULL;
    p->len = 0;
    p->width = p->height = 0;
}

/* Integer coordinates: along an axis of src length S scaled to D, destination cell d covers
 * [d*S, (d+1)*S) and source cell s covers [s*D, (s+1)*D) in units of 1/D source pixels,
 * so the overlaps are exact integers and each destination cell's weights sum to S. */
static int64_t shot_overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
    int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

int shot_check_width(int width, struct err *e)
{
    if (width < SHOT_MIN_WIDTH || width > SHOT_MAX_WIDTH)
        return err_set(e, ERR_INVALID, "screenshot width %d is out of range (%d..%d)", width,
                       SHOT_MIN_WIDTH, SHOT_MAX_WIDTH);
    return 0;
}

void shot_fit(int screen_w, int screen_h, int width, int *out_w, int *out_h)
{
    const int64_t w = width < screen_w ? width : screen_w;
    const int64_t h = (int64_t)screen_h * w / screen_w;
    *out_w = (int)w;
    *out_h = h < 1 ? 1 : (int)h;
}

int shot_scale(const struct shot_rgb *src, int dst_width, struct shot_rgb *dst, struct err *e)
{
    uint64_t *acc = NULL;   /* per destination column: r, g, b sums of the current row */
    uint64_t *row = NULL;   /* horizontal pass of one source row */
    int64_t *xfirst = NULL; /* per destination column: its first source column */
    uint32_t *xw = NULL;    /* ... and the weights of its source columns, kmax per column */
    int rc = 0;

    if (!src || !dst || !src->px || src->width < 1 || src->height < 1 || src->stride < src->width ||
        dst_width < 1)
        return err_set(e, ERR_INVALID, "screenshot scale: invalid image or width %d", dst_width);
    memset(dst, 0, sizeof(*dst));

    const int64_t sw = src->width, sh = src->height;
    int fw, fh;
    shot_fit(src->width, src->height, dst_width, &fw, &fh);
    const int64_t dw = fw, dh = fh;

    dst->px = malloc((size_t)dw * (size_t)dh * sizeof(uint32_t));
    acc = calloc((size_t)dw * 3, sizeof(uint64_t));
    row = calloc((size_t)dw * 3, sizeof(uint64_t));
    /* A destination column covers sw/dw source columns, plus partial ones at both ends. */
    const int64_t kmax = sw / dw + 2;
    xfirst = calloc((size_t)dw, sizeof(int64_t));
    xw = calloc((size_t)dw * (size_t)kmax, sizeof(uint32_t));
    if (!dst->px || !acc || !row || !xfirst || !xw) {
        rc = err_set(e, ERR_NOMEM, "screenshot scale: out of memory for %lldx%lld", (long long)dw,
                     (long long)dh);
        goto out;
    }
    dst->width = (int)dw;
    dst->height = (int)dh;
    dst->stride = (int)dw;

    if (dw == sw && dh == sh) { /* same size: a copy */
        for (int64_t y = 0; y < sh; y++)
            memcpy(dst->px + y * dw, src->px + y * src->stride, (size_t)sw * sizeof(uint32_t));
        goto out;
    }

    for (int64_t x = 0; x < dw; x++) {
        const int64_t x0 = x * sw, x1 = x0 + sw;
        xfirst[x] = x0 / dw;
        for (int64_t k = 0; k < kmax && xfirst[x] + k < sw; k++) {
            const int64_t s = xfirst[x] + k;
            xw[x * kmax + k] = (uint32_t)shot_overlap(x0, x1, s * dw, (s + 1) * dw);
        }
    }

    const uint64_t total = (uint64_t)sw * (uint64_t)sh; /* weight sum of every dest pixel */
    int64_t cached = -1; /* the source row whose horizontal pass `row` holds */
    for (int64_t y = 0; y < dh; y++) {
        const int64_t y0 = y * sh, y1 = y0 + sh;
        memset(acc, 0, (size_t)dw * 3 * sizeof(uint64_t));
        for (int64_t r = y0 / dh; r * dh < y1 && r < sh; r++) {
            const uint64_t wv = (uint64_t)shot_overlap(y0, y1, r * dh, (r + 1) * dh);
            if (wv == 0)
                continue;
            if (r != cached) {
                const uint32_t *line = src->px + r * src->stride;
                for (int64_t x = 0; x < dw; x++) {
                    const uint32_t *in = line + xfirst[x];
                    const uint32_t *w = xw + x * kmax;
                    const int64_t n = sw - xfirst[x] < kmax ? sw - xfirst[x] : kmax;
                    uint64_t sr = 0, sg = 0, sb = 0;
                    for (int64_t k = 0; k < n; k++) {
                        const uint64_t wh = w[k];
                        const uint32_t p = in[k];
                        sr += wh * ((p >> 16) & 0xff);
                        sg += wh * ((p >> 8) & 0xff);
                        sb += wh * (p & 0xff);
                    }
                    row[x * 3] = sr;
                    row[x * 3 + 1] = sg;
                    row[x * 3 + 2] = sb;
                }
                cached = r;
            }
            for (int64_t i = 0; i < dw * 3; i++)
                acc[i] += wv * row[i];
        }
        uint32_t *out_line = dst->px + y * dw;
        for (int64_t x = 0; x < dw; x++) {
            const uint32_t cr = (uint32_t)((acc[x * 3] + total / 2) / total);
            const uint32_t cg = (uint32_t)((acc[x * 3 + 1] + total / 2) / total);
            const uint32_t cb = (uint32_t)((acc[x * 3 + 2] + total / 2) / total);
            out_line[x] = (cr << 16) | (cg << 8) | cb;
        }
    }

out:
    free(acc);
    free(row);
    free(xfirst);
    free(xw);
    if (rc < 0) {
        free(dst->px);
        memset(dst, 0, sizeof(*dst));
    }
    return rc;
}
