/*
 * shot_bench.c - a benchmark of the screenshot module (session_helper/shot.h) on the current
 * $DISPLAY, for docs/performance.md. Native only; built as `shot_bench`, never run by tests.
 *
 *     shot_bench [ITERATIONS]     (default 10)
 *
 * For widths 1000 and 300 it times the whole shot_capture_png() (X11 capture + area-average
 * scale + PNG), and separately shot_scale() and shot_encode_png() on a full-size frame (taken
 * once, through a full-width capture decoded with libpng), and the reference: libpng alone
 * encoding the same full-size frame. Prints milliseconds per call and ratios to the reference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <png.h>

#include "shot.h"

static double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The full-size frame: a capture at the screen's width, decoded back. */
static int bench_full_frame(struct shot_rgb *img)
{
    struct shot_png png = {0};
    struct err e = ERR_INIT;
    png_image pi;
    unsigned char *rgb = NULL;
    int rc = -1;

    if (shot_capture_png(3840, &png, &e) < 0) {
        fprintf(stderr, "shot_bench: %s\n", e.msg);
        return -1;
    }
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, png.data, png.len))
        goto out;
    pi.format = PNG_FORMAT_RGB;
    rgb = malloc(PNG_IMAGE_SIZE(pi));
    img->px = malloc((size_t)pi.width * pi.height * sizeof(uint32_t));
    if (!rgb || !img->px || !png_image_finish_read(&pi, NULL, rgb, 0, NULL))
        goto out;
    img->width = img->stride = (int)pi.width;
    img->height = (int)pi.height;
    for (size_t i = 0; i < (size_t)pi.width * pi.height; i++)
        img->px[i] =
            ((uint32_t)rgb[i * 3] << 16) | ((uint32_t)rgb[i * 3 + 1] << 8) | rgb[i * 3 + 2];
    rc = 0;
out:
    if (rc < 0) {
        fprintf(stderr, "shot_bench: cannot decode the full-size capture: %s\n", pi.message);
        free(img->px);
        img->px = NULL;
    }
    png_image_free(&pi);
    free(rgb);
    shot_png_free(&png);
    return rc;
}

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 10;
    static const int widths[] = {1000, 300};
    struct shot_rgb full = {0};
    struct err e = ERR_INIT;

    if (iters < 1) {
        fprintf(stderr, "usage: shot_bench [ITERATIONS]\n");
        return 2;
    }
    if (bench_full_frame(&full) < 0)
        return 1;

    double t0 = bench_now_ms();
    size_t ref_len = 0;
    for (int i = 0; i < iters; i++) {
        struct shot_png p = {0};
        if (shot_encode_png(&full, &p, &e) < 0) {
            fprintf(stderr, "shot_bench: %s\n", e.msg);
            return 1;
        }
        ref_len = p.len;
        shot_png_free(&p);
    }
    const double ref = (bench_now_ms() - t0) / iters;
    printf("screen %dx%d, %d iterations\n", full.width, full.height, iters);
    printf("reference: libpng alone, full frame: %.1f ms, %zu bytes\n", ref, ref_len);

    for (size_t k = 0; k < sizeof(widths) / sizeof(widths[0]); k++) {
        const int w = widths[k];
        struct shot_png p = {0};
        struct shot_rgb scaled = {0};
        size_t len = 0;

        t0 = bench_now_ms();
        for (int i = 0; i < iters; i++) {
            if (shot_capture_png(w, &p, &e) < 0) {
                fprintf(stderr, "shot_bench: %s\n", e.msg);
                return 1;
            }
            len = p.len;
            shot_png_free(&p);
        }
        const double total = (bench_now_ms() - t0) / iters;

        t0 = bench_now_ms();
        for (int i = 0; i < iters; i++) {
            free(scaled.px);
            if (shot_scale(&full, w, &scaled, &e) < 0) {
                fprintf(stderr, "shot_bench: %s\n", e.msg);
                return 1;
            }
        }
        const double scale = (bench_now_ms() - t0) / iters;

        t0 = bench_now_ms();
        for (int i = 0; i < iters; i++) {
            if (shot_encode_png(&scaled, &p, &e) < 0) {
                fprintf(stderr, "shot_bench: %s\n", e.msg);
                return 1;
            }
            shot_png_free(&p);
        }
        const double enc = (bench_now_ms() - t0) / iters;
        printf("width %4d (%dx%d, %zu bytes): capture+scale+encode %.1f ms (%.2fx reference); "
               "scale %.1f ms (%.2fx); encode %.1f ms (%.2fx)\n",
               w, scaled.width, scaled.height, len, total, total / ref, scale, scale / ref, enc,
               enc / ref);
        free(scaled.px);
    }
    free(full.px);
    return 0;
}
