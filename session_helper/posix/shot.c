/*
 * posix/shot.c - screenshots on X11: shot_capture_png() grabs the root window of $DISPLAY
 * with XGetImage, converts it to 0x00RRGGBB through the visual's channel masks, scales it
 * with shot_scale() (shot_scale.c) and encodes it with shot_encode_png() (libpng's
 * simplified write API, 8-bit RGB, default compression), which lives here too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <png.h>

#include "shot.h"

int shot_encode_png(const struct shot_rgb *img, struct shot_png *out, struct err *e)
{
    png_image pi;
    unsigned char *rgb = NULL;
    unsigned char *buf = NULL;
    png_alloc_size_t cap = 0;
    int rc = 0;

    if (!img || !out || !img->px || img->width < 1 || img->height < 1 || img->stride < img->width)
        return err_set(e, ERR_INVALID, "screenshot encode: invalid image");
    memset(out, 0, sizeof(*out));

    const size_t w = (size_t)img->width, h = (size_t)img->height;
    rgb = malloc(w * h * 3);
    if (!rgb) {
        rc = err_set(e, ERR_NOMEM, "screenshot encode: out of memory for %zux%zu", w, h);
        goto out;
    }
    for (size_t y = 0; y < h; y++) {
        const uint32_t *line = img->px + y * (size_t)img->stride;
        unsigned char *o = rgb + y * w * 3;
        for (size_t x = 0; x < w; x++) {
            o[x * 3] = (unsigned char)(line[x] >> 16);
            o[x * 3 + 1] = (unsigned char)(line[x] >> 8);
            o[x * 3 + 2] = (unsigned char)line[x];
        }
    }

    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)w;
    pi.height = (png_uint_32)h;
    pi.format = PNG_FORMAT_RGB;
    /* An upper bound of the encoded size (the image stored uncompressed plus overhead). */
    cap = PNG_IMAGE_PNG_SIZE_MAX(pi);
    buf = malloc(cap);
    if (!buf) {
        rc = err_set(e, ERR_NOMEM, "screenshot encode: out of memory for the PNG");
        goto out;
    }
    if (!png_image_write_to_memory(&pi, buf, &cap, 0, rgb, (png_int_32)(w * 3), NULL)) {
        rc = err_set(e, ERR_INTERNAL, "screenshot encode: libpng: %s", pi.message);
        png_image_free(&pi);
        goto out;
    }
    unsigned char *shrunk = realloc(buf, cap ? cap : 1);
    if (shrunk)
        buf = shrunk;
    out->data = buf;
    out->len = cap;
    out->width = (int)w;
    out->height = (int)h;
    buf = NULL;

out:
    free(rgb);
    free(buf);
    return rc;
}

/* Xlib calls the error handler for a failed request (the default one exits the process). */
static int shot_x_error_code;

static int shot_x_error(Display *dpy, XErrorEvent *ev)
{
    (void)dpy;
    shot_x_error_code = ev->error_code;
    return 0;
}

/* Position and width of a channel mask, for scaling the channel to 8 bits. */
static void shot_mask_info(unsigned long mask, int *shift, int *bits)
{
    *shift = 0;
    *bits = 0;
    if (!mask)
        return;
    while (!(mask & 1)) {
        mask >>= 1;
        (*shift)++;
    }
    while (mask & 1) {
        mask >>= 1;
        (*bits)++;
    }
}

static uint32_t shot_channel(unsigned long pixel, int shift, int bits)
{
    if (bits == 0)
        return 0;
    unsigned long v = (pixel >> shift) & ((1UL << bits) - 1);
    if (bits >= 8)
        return (uint32_t)(v >> (bits - 8));
    return (uint32_t)((v * 255 + ((1UL << bits) - 1) / 2) / ((1UL << bits) - 1));
}

/* Converts an XImage of a TrueColor/DirectColor visual to 0x00RRGGBB. */
static int shot_convert(XImage *img, struct shot_rgb *out, struct err *e)
{
    int rs, rb, gs, gb, bs, bb;
    const int w = img->width, h = img->height;
    const int host_lsb = (*(const unsigned char *)&(uint32_t){1}) == 1;

    shot_mask_info(img->red_mask, &rs, &rb);
    shot_mask_info(img->green_mask, &gs, &gb);
    shot_mask_info(img->blue_mask, &bs, &bb);
    if (rb == 0 || gb == 0 || bb == 0)
        return err_set(e, ERR_UNSUPPORTED,
                       "screenshot: the X display uses a colour-mapped visual (depth %d); "
                       "only true-colour displays can be captured",
                       img->depth);
    out->px = malloc((size_t)w * (size_t)h * sizeof(uint32_t));
    if (!out->px)
        return err_set(e, ERR_NOMEM, "screenshot: out of memory for %dx%d", w, h);
    out->width = out->stride = w;
    out->height = h;

    const int fast = img->bits_per_pixel == 32 && (img->byte_order == LSBFirst) == host_lsb &&
                     rb == 8 && gb == 8 && bb == 8;
    for (int y = 0; y < h; y++) {
        uint32_t *o = out->px + (size_t)y * (size_t)w;
        if (fast) {
            const uint32_t *line = (const uint32_t *)(img->data + (size_t)y * img->bytes_per_line);
            for (int x = 0; x < w; x++) {
                const uint32_t p = line[x];
                o[x] = (((p >> rs) & 0xff) << 16) | (((p >> gs) & 0xff) << 8) | ((p >> bs) & 0xff);
            }
        } else {
            for (int x = 0; x < w; x++) {
                const unsigned long p = XGetPixel(img, x, y);
                o[x] = (shot_channel(p, rs, rb) << 16) | (shot_channel(p, gs, gb) << 8) |
                       shot_channel(p, bs, bb);
            }
        }
    }
    return 0;
}

void shot_init(void)
{
    /* Nothing to prepare: each capture opens its own connection to $DISPLAY. */
}

int shot_capture_png(int width, struct shot_png *out, struct err *e)
{
    Display *dpy = NULL;
    XImage *img = NULL;
    int (*old_handler)(Display *, XErrorEvent *) = NULL;
    int handler_set = 0;
    struct shot_rgb full = {0}, scaled = {0};
    int rc = 0;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!out)
        return err_set(e, ERR_INVALID, "screenshot: no output");
    if ((rc = shot_check_width(width, e)) < 0)
        return rc;

    const char *name = getenv("DISPLAY");
    if (!name || !*name)
        return err_set(e, ERR_NOT_FOUND, "no display: DISPLAY is not set");
    /* A server that resets when its last client leaves (Xvfb without -noreset) refuses
     * connections for a moment: try a few times before giving up. */
    for (int attempt = 0; attempt < 3 && !(dpy = XOpenDisplay(name)); attempt++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!dpy)
        return err_set(e, ERR_NOT_FOUND, "no display: cannot open X display '%s'", name);

    Window root = DefaultRootWindow(dpy);
    XWindowAttributes wa;
    if (!XGetWindowAttributes(dpy, root, &wa) || wa.width < 1 || wa.height < 1) {
        rc = err_set(e, ERR_IO, "screenshot: cannot read the size of the X screen '%s'", name);
        goto out;
    }
    old_handler = XSetErrorHandler(shot_x_error);
    handler_set = 1;
    shot_x_error_code = 0;
    img = XGetImage(dpy, root, 0, 0, (unsigned)wa.width, (unsigned)wa.height, AllPlanes, ZPixmap);
    XSync(dpy, False);
    if (!img || shot_x_error_code) {
        rc = err_set(e, ERR_IO,
                     "screenshot: XGetImage of the %dx%d screen of '%s' failed (X error %d)",
                     wa.width, wa.height, name, shot_x_error_code);
        goto out;
    }
    rc = shot_convert(img, &full, e);
    if (rc < 0)
        goto out;
    XDestroyImage(img);
    img = NULL;

    rc = shot_scale(&full, width, &scaled, e);
    if (rc < 0)
        goto out;
    free(full.px);
    full.px = NULL;
    rc = shot_encode_png(&scaled, out, e);

out:
    if (img)
        XDestroyImage(img);
    if (handler_set)
        XSetErrorHandler(old_handler);
    if (dpy)
        XCloseDisplay(dpy);
    free(full.px);
    free(scaled.px);
    return rc;
}
