/*
 * shot.h - a screenshot of the user's desktop as a PNG of a requested width (height by the
 * aspect ratio, at least 1). Windows (win32/shot.c): GDI capture of the whole virtual screen,
 * StretchBlt with HALFTONE down to the width, PNG through WIC. POSIX (posix/shot.c): X11
 * capture of the root window of $DISPLAY (XGetImage), area-average scaling, PNG through
 * libpng. The scaling and encoding steps are exposed for the tests and the benchmark.
 */
#ifndef KASM_SHOT_H
#define KASM_SHOT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SHOT_MIN_WIDTH 16
#define SHOT_MAX_WIDTH 3840

/* ERR_INVALID unless SHOT_MIN_WIDTH <= width <= SHOT_MAX_WIDTH. */
int shot_check_width(int width, struct err *e);
/* The size rule: a width >= the screen's keeps the screen's size; otherwise
 * height = floor(screen_h * width / screen_w), at least 1. */
void shot_fit(int screen_w, int screen_h, int width, int *out_w, int *out_h);

struct shot_png {
    int width, height; /* of the encoded image */
    unsigned char *data;
    size_t len;
};

/*
 * Captures the desktop scaled to width (16..3840; wider than the screen is not enlarged:
 * the screen's own width is used). ERR_NOT_FOUND "no display: ..." when there is no
 * desktop to capture (POSIX: DISPLAY unset or the server unreachable; Windows: no
 * interactive desktop), ERR_UNSUPPORTED when the build has no capture support.
 */
int shot_capture_png(int width, struct shot_png *out, struct err *e);
void shot_png_free(struct shot_png *p);
/*
 * Prepares the process for screenshots; call once from the main thread before any worker
 * thread captures. Windows: sets per-monitor DPI awareness and makes the process's first
 * user32/GDI call, which connects it to its desktop (Wine gives a process whose first GDI
 * call comes from a worker thread a screen that cannot be read). POSIX: nothing.
 */
void shot_init(void);

/* A 32-bit image: pixels as 0x00RRGGBB in row order, stride in pixels. */
struct shot_rgb {
    int width, height, stride;
    uint32_t *px;
};
/* Area-average downscale of src into a new image of dst_width x (aspect) (caller frees px). */
int shot_scale(const struct shot_rgb *src, int dst_width, struct shot_rgb *dst, struct err *e);
/* PNG (8-bit RGB, default compression) of img; POSIX only (libpng); Windows uses WIC. */
int shot_encode_png(const struct shot_rgb *img, struct shot_png *out, struct err *e);

#endif
