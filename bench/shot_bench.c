/*
 * shot_bench.c - a benchmark of the screenshot module (session_helper/shot.h) on the current
 * $DISPLAY, for docs/performance.md. Native only; built as `shot_bench`, never run by tests.
 *
 *     shot_bench [--pattern] [ITERATIONS]     (default 10)
 *
 * --pattern first paints a desktop-like picture on the root window (a gradient wallpaper,
 * window-like panels and rows of text-like marks, deterministic), so that the PNG sizes and
 * encode times resemble a real desktop rather than a blank screen.
 * For widths 1000 and 300 it times the whole shot_capture_png() (X11 capture + area-average
 * scale + PNG), and separately shot_scale() and shot_encode_png() on a full-size frame (taken
 * once, through a full-width capture decoded with libpng), and the reference: libpng alone
 * encoding the same full-size frame. Prints milliseconds per call and ratios to the reference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <png.h>

#include "shot.h"

static double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Paints the desktop-like pattern on the root window of $DISPLAY (24/32-bit TrueColor).
 * The connection stays open (*keep): an X server started without -noreset clears the
 * screen when its last client leaves. */
static int bench_paint(Display **keep)
{
    Display *d = XOpenDisplay(NULL);
    XImage *img;
    uint32_t seed = 12345;
    int w, h, rc = -1;

    if (!d) {
        fprintf(stderr, "shot_bench: cannot open the display\n");
        return -1;
    }
    w = DisplayWidth(d, DefaultScreen(d));
    h = DisplayHeight(d, DefaultScreen(d));
    img = XCreateImage(d, DefaultVisual(d, DefaultScreen(d)), (unsigned)DefaultDepth(d, 0), ZPixmap,
                       0, malloc((size_t)w * h * 4), (unsigned)w, (unsigned)h, 32, 0);
    if (!img || !img->data)
        goto out;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) /* wallpaper: a diagonal gradient */
            XPutPixel(img, x, y,
                      ((unsigned long)(40 + x * 80 / w) << 16) |
                          ((unsigned long)(70 + y * 90 / h) << 8) |
                          (unsigned long)(140 + (x + y) % 60));
    for (int win = 0; win < 6; win++) { /* panels with rows of text-like marks */
        int x0 = 60 + win * 270, y0 = 80 + (win % 3) * 250, pw = 700, ph = 420;
        for (int y = y0; y < y0 + ph && y < h; y++)
            for (int x = x0; x < x0 + pw && x < w; x++) {
                unsigned long c = y < y0 + 28 ? 0x2d3e50 : 0xf4f4f4;
                int row = (y - y0 - 40) / 18, col = (x - x0 - 12) / 7;
                if (y >= y0 + 40 && (y - y0 - 40) % 18 < 11 && x >= x0 + 12) {
                    seed = seed * 1103515245u + 12345u;
                    if (((seed >> 16) & 7) < 3 && (row + col) % 11 != 0)
                        c = 0x202020;
                }
                XPutPixel(img, x, y, c);
            }
    }
    XPutImage(d, DefaultRootWindow(d), DefaultGC(d, DefaultScreen(d)), img, 0, 0, 0, 0, (unsigned)w,
              (unsigned)h);
    XSync(d, False);
    rc = 0;
out:
    if (img)
        XDestroyImage(img); /* frees img->data too */
    if (rc == 0)
        *keep = d;
    else
        XCloseDisplay(d);
    return rc;
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
    const int paint = argc > 1 && strcmp(argv[1], "--pattern") == 0;
    const int iters = argc > 1 + paint ? atoi(argv[1 + paint]) : 10;
    static const int widths[] = {1000, 300};
    struct shot_rgb full = {0};
    struct err e = ERR_INIT;
    Display *painter = NULL;

    if (iters < 1) {
        fprintf(stderr, "usage: shot_bench [--pattern] [ITERATIONS]\n");
        return 2;
    }
    if (paint && bench_paint(&painter) < 0)
        return 1;
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
        printf("width %4d (%dx%d, %zu bytes): capture+scale+encode %.1f ms = %.2fx the bare "
               "encode of the same %dx%d frame (%.1f ms); scale alone %.1f ms\n",
               w, scaled.width, scaled.height, len, total, total / enc, scaled.width, scaled.height,
               enc, scale);
        free(scaled.px);
    }
    free(full.px);
    if (painter)
        XCloseDisplay(painter);
    return 0;
}
