/*
 * test_shot.c - session_helper's screenshot module (shot.h): the area-average downscale on
 * synthetic images (exact means, fractional coverage, aspect ratio, 1-pixel edges, no
 * upscaling), PNG encoding decoded back (libpng on POSIX; by hand from the IHDR under Wine),
 * width and display errors, and a real capture: on POSIX of an Xvfb server the test starts
 * itself (-displayfd) with four coloured quadrants drawn on its root window, under Wine of
 * whatever desktop Wine offers (skipped when it has none).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shot.h"

#ifndef _WIN32
#include <X11/Xlib.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#define RGB(r, g, b) (((uint32_t)(r) << 16) | ((uint32_t)(g) << 8) | (uint32_t)(b))
#define CH_R(p)      (((p) >> 16) & 0xff)
#define CH_G(p)      (((p) >> 8) & 0xff)
#define CH_B(p)      ((p)&0xff)

static struct shot_rgb make_img(int w, int h, int stride)
{
    struct shot_rgb img = {w, h, stride, calloc((size_t)stride * (size_t)h, sizeof(uint32_t))};
    assert_non_null(img.px);
    return img;
}

/* A 2x downscale: every destination pixel is the rounded mean of its 2x2 block. */
static void scale_half_exact(void **state)
{
    (void)state;
    struct shot_rgb src = make_img(4, 4, 6), dst;
    struct err e = ERR_INIT;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            src.px[y * 6 + x] = RGB(x * 60 + y * 3, 255 - y * 50 - x, (x * 7 + y * 13) * 3);
    assert_int_equal(shot_scale(&src, 2, &dst, &e), 0);
    assert_int_equal(dst.width, 2);
    assert_int_equal(dst.height, 2);
    assert_int_equal(dst.stride, 2);
    for (int by = 0; by < 2; by++) {
        for (int bx = 0; bx < 2; bx++) {
            unsigned sr = 0, sg = 0, sb = 0;
            for (int y = by * 2; y < by * 2 + 2; y++)
                for (int x = bx * 2; x < bx * 2 + 2; x++) {
                    sr += CH_R(src.px[y * 6 + x]);
                    sg += CH_G(src.px[y * 6 + x]);
                    sb += CH_B(src.px[y * 6 + x]);
                }
            assert_int_equal(dst.px[by * 2 + bx], RGB((sr + 2) / 4, (sg + 2) / 4, (sb + 2) / 4));
        }
    }
    free(dst.px);
    /* Exact means that need no rounding. */
    src.px[0] = RGB(10, 0, 255);
    src.px[1] = RGB(20, 0, 255);
    src.px[6] = RGB(30, 100, 255);
    src.px[7] = RGB(40, 100, 255);
    assert_int_equal(shot_scale(&src, 2, &dst, &e), 0);
    assert_int_equal(dst.px[0], RGB(25, 50, 255));
    free(dst.px);
    free(src.px);
}

/* Non-integer ratios weight partly covered source pixels by the covered fraction. */
static void scale_fractional(void **state)
{
    (void)state;
    struct shot_rgb src = make_img(3, 1, 3), dst;
    struct err e = ERR_INIT;
    src.px[0] = RGB(0, 30, 90);
    src.px[1] = RGB(90, 60, 0);
    src.px[2] = RGB(210, 255, 3);
    /* 3 -> 2: d0 = (2*p0 + p1)/3, d1 = (p1 + 2*p2)/3 */
    assert_int_equal(shot_scale(&src, 2, &dst, &e), 0);
    assert_int_equal(dst.width, 2);
    assert_int_equal(dst.height, 1);
    assert_int_equal(dst.px[0], RGB(30, 40, 60));
    assert_int_equal(dst.px[1], RGB(170, 190, 2));
    free(dst.px);
    free(src.px);

    /* A uniform image stays uniform at any ratio; a vertical split stays at its place. */
    src = make_img(1920, 1080, 1920);
    for (int i = 0; i < 1920 * 1080; i++)
        src.px[i] = (i % 1920) < 960 ? RGB(12, 34, 56) : RGB(200, 150, 100);
    assert_int_equal(shot_scale(&src, 333, &dst, &e), 0);
    assert_int_equal(dst.width, 333);
    assert_int_equal(dst.height, 187);
    for (int y = 0; y < dst.height; y++) {
        assert_int_equal(dst.px[y * 333], RGB(12, 34, 56));
        assert_int_equal(dst.px[y * 333 + 165], RGB(12, 34, 56));
        assert_int_equal(dst.px[y * 333 + 167], RGB(200, 150, 100));
        assert_int_equal(dst.px[y * 333 + 332], RGB(200, 150, 100));
        /* column 166 covers 960 - 166*1920/333 = ... a mix of both halves */
        assert_int_not_equal(dst.px[y * 333 + 166], RGB(12, 34, 56));
        assert_int_not_equal(dst.px[y * 333 + 166], RGB(200, 150, 100));
    }
    free(dst.px);
    free(src.px);
}

/* Height = floor(src_h * width / src_w), at least 1. */
static void scale_aspect(void **state)
{
    (void)state;
    static const struct {
        int sw, sh, w, dw, dh;
    } cases[] = {
        {1920, 1080, 1000, 1000, 562}, {1920, 1080, 300, 300, 168},   {1920, 1080, 16, 16, 9},
        {1080, 1920, 300, 300, 533},   {3840, 1, 100, 100, 1},        {1000, 3, 10, 10, 1},
        {5, 1000, 1, 1, 200},          {2560, 1440, 1280, 1280, 720},
    };
    struct err e = ERR_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct shot_rgb src = make_img(cases[i].sw, cases[i].sh, cases[i].sw), dst;
        for (size_t k = 0; k < (size_t)cases[i].sw * (size_t)cases[i].sh; k++)
            src.px[k] = RGB(77, 88, 99);
        assert_int_equal(shot_scale(&src, cases[i].w, &dst, &e), 0);
        assert_int_equal(dst.width, cases[i].dw);
        assert_int_equal(dst.height, cases[i].dh);
        for (int k = 0; k < dst.width * dst.height; k++)
            assert_int_equal(dst.px[k], RGB(77, 88, 99));
        free(dst.px);
        free(src.px);
    }
}

/* 1-pixel images and lines: everything collapses to the exact mean. */
static void scale_one_pixel(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_rgb src = make_img(1, 1, 1), dst;
    src.px[0] = RGB(1, 2, 3);
    assert_int_equal(shot_scale(&src, 1, &dst, &e), 0);
    assert_int_equal(dst.width, 1);
    assert_int_equal(dst.height, 1);
    assert_int_equal(dst.px[0], RGB(1, 2, 3));
    free(dst.px);
    assert_int_equal(shot_scale(&src, 50, &dst, &e), 0); /* no upscaling */
    assert_int_equal(dst.width, 1);
    assert_int_equal(dst.height, 1);
    assert_int_equal(dst.px[0], RGB(1, 2, 3));
    free(dst.px);
    free(src.px);

    /* A 7x1 line to 1 pixel: the mean of 7 values (rounded half up). */
    src = make_img(7, 1, 7);
    unsigned sr = 0;
    for (int x = 0; x < 7; x++) {
        src.px[x] = RGB(x * 30 + 1, 70, 255 - x);
        sr += (unsigned)(x * 30 + 1);
    }
    assert_int_equal(shot_scale(&src, 1, &dst, &e), 0);
    assert_int_equal(dst.width, 1);
    assert_int_equal(dst.height, 1);
    assert_int_equal(dst.px[0], RGB((sr * 2 + 7) / 14, 70, 252));
    free(dst.px);
    free(src.px);

    /* A 1x7 column keeps its width and its 7 rows. */
    src = make_img(1, 7, 1);
    for (int y = 0; y < 7; y++)
        src.px[y] = RGB(y, y, y);
    assert_int_equal(shot_scale(&src, 1, &dst, &e), 0);
    assert_int_equal(dst.height, 7);
    assert_memory_equal(dst.px, src.px, 7 * sizeof(uint32_t));
    free(dst.px);
    free(src.px);
}

/* width >= the source keeps its size and pixels; the stride padding is dropped. */
static void scale_no_upscale(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_rgb src = make_img(5, 3, 8), dst;
    for (int i = 0; i < 8 * 3; i++)
        src.px[i] = (i % 8) < 5 ? RGB(i, 2 * i, 3 * i) : RGB(255, 255, 255);
    static const int widths[] = {5, 6, 3840};
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(shot_scale(&src, widths[k], &dst, &e), 0);
        assert_int_equal(dst.width, 5);
        assert_int_equal(dst.height, 3);
        assert_int_equal(dst.stride, 5);
        for (int y = 0; y < 3; y++)
            assert_memory_equal(dst.px + y * 5, src.px + y * 8, 5 * sizeof(uint32_t));
        free(dst.px);
    }
    free(src.px);
}

static void scale_invalid(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_rgb src = make_img(4, 4, 4), dst;
    assert_int_equal(shot_scale(&src, 0, &dst, &e), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_int_equal(shot_scale(&src, -5, &dst, NULL), ERR_INVALID);
    struct shot_rgb bad = src;
    bad.stride = 3;
    assert_int_equal(shot_scale(&bad, 2, &dst, NULL), ERR_INVALID);
    bad = src;
    bad.px = NULL;
    assert_int_equal(shot_scale(&bad, 2, &dst, NULL), ERR_INVALID);
    free(src.px);
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The PNG signature and IHDR, read by hand: width, height, 8-bit, colour type 2 (RGB). */
static void check_ihdr(const struct shot_png *p, int w, int h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_non_null(p->data);
    assert_true(p->len > 33);
    assert_memory_equal(p->data, sig, 8);
    assert_int_equal(be32(p->data + 8), 13);
    assert_memory_equal(p->data + 12, "IHDR", 4);
    assert_int_equal(be32(p->data + 16), (uint32_t)w);
    assert_int_equal(be32(p->data + 20), (uint32_t)h);
    assert_int_equal(p->data[24], 8);
    assert_int_equal(p->data[25], 2);
    assert_int_equal(p->width, w);
    assert_int_equal(p->height, h);
}

#ifndef _WIN32
static void assert_near(uint32_t got, uint32_t want, int tol)
{
    int d[3] = {(int)CH_R(got) - (int)CH_R(want), (int)CH_G(got) - (int)CH_G(want),
                (int)CH_B(got) - (int)CH_B(want)};
    for (int i = 0; i < 3; i++) {
        if (d[i] < -tol || d[i] > tol)
            fail_msg("pixel 0x%06x is not within %d of 0x%06x", (unsigned)got, tol, (unsigned)want);
    }
}

/* Decodes a PNG with libpng into 0x00RRGGBB (caller frees px). */
static struct shot_rgb decode_png(const struct shot_png *p)
{
    png_image pi;
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, p->data, p->len))
        fail_msg("libpng cannot read the PNG: %s", pi.message);
    pi.format = PNG_FORMAT_RGB;
    unsigned char *rgb = malloc(PNG_IMAGE_SIZE(pi));
    assert_non_null(rgb);
    if (!png_image_finish_read(&pi, NULL, rgb, 0, NULL))
        fail_msg("libpng cannot decode the PNG: %s", pi.message);
    struct shot_rgb img = make_img((int)pi.width, (int)pi.height, (int)pi.width);
    for (size_t i = 0; i < (size_t)pi.width * pi.height; i++)
        img.px[i] = RGB(rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]);
    free(rgb);
    return img;
}
#endif

/* shot_encode_png output decodes back to the same pixels (POSIX), or at least carries the
 * right header (Windows, WIC; no PNG decoder in the Windows build). */
static void encode_roundtrip(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_rgb src = make_img(37, 23, 40);
    uint32_t seed = 12345;
    for (int i = 0; i < 40 * 23; i++) {
        seed = seed * 1103515245u + 12345u;
        src.px[i] = (seed >> 8) & 0xffffff;
    }
    struct shot_png png = {0};
    int rc = shot_encode_png(&src, &png, &e);
    if (rc == ERR_UNSUPPORTED) {
        free(src.px);
        UNIT_SKIP(e.msg);
        return;
    }
    assert_int_equal(rc, 0);
    check_ihdr(&png, 37, 23);
#ifndef _WIN32
    struct shot_rgb back = decode_png(&png);
    assert_int_equal(back.width, 37);
    assert_int_equal(back.height, 23);
    for (int y = 0; y < 23; y++)
        assert_memory_equal(back.px + y * 37, src.px + y * 40, 37 * sizeof(uint32_t));
    free(back.px);
#endif
    shot_png_free(&png);
    assert_null(png.data);
    assert_int_equal(png.len, 0);
    shot_png_free(NULL);

    struct shot_rgb bad = src;
    bad.width = 0;
    assert_int_equal(shot_encode_png(&bad, &png, NULL), ERR_INVALID);
    free(src.px);
}

static void capture_invalid_width(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_png png;
    static const int bad[] = {15, 0, -1, 3841, 100000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&e);
        assert_int_equal(shot_capture_png(bad[i], &png, &e), ERR_INVALID);
        assert_int_equal(e.code, ERR_INVALID);
        assert_non_null(strstr(e.msg, "16..3840"));
        assert_null(png.data);
    }
}

#ifndef _WIN32
static void capture_no_display(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_png png;
    char *saved = getenv("DISPLAY") ? strdup(getenv("DISPLAY")) : NULL;

    unsetenv("DISPLAY");
    assert_int_equal(shot_capture_png(1000, &png, &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no display: DISPLAY is not set");
    assert_null(png.data);

    /* A display number nobody serves: the error names it. */
    setenv("DISPLAY", ":4093", 1);
    err_clear(&e);
    assert_int_equal(shot_capture_png(1000, &png, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no display: "));
    assert_non_null(strstr(e.msg, ":4093"));

    if (saved) {
        setenv("DISPLAY", saved, 1);
        free(saved);
    } else {
        unsetenv("DISPLAY");
    }
}

/* The Xvfb server of capture_desktop, started by its setup and killed by its teardown. */
static pid_t g_xvfb = -1;
static char g_display[32];

static int have_program(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof(buf) - strlen(name) - 2) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
            if (access(buf, X_OK) == 0)
                return 1;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

static int xvfb_setup(void **state)
{
    (void)state;
    int fds[2];
    g_xvfb = -1;
    g_display[0] = 0;
    if (!have_program("Xvfb"))
        return 0; /* the test skips */
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        char fdarg[16];
        close(fds[0]);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
        execlp("Xvfb", "Xvfb", "-displayfd", fdarg, "-screen", "0", "1920x1080x24", "-nolisten",
               "tcp", "-noreset", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    g_xvfb = pid;
    /* Xvfb writes its display number and a newline once it accepts connections. */
    size_t len = 0;
    char num[16];
    while (len < sizeof(num) - 1) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, 120000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t n = read(fds[0], num + len, sizeof(num) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(num, '\n', len))
            break;
    }
    close(fds[0]);
    num[len] = 0;
    if (len == 0 || !memchr(num, '\n', len)) {
        print_error("Xvfb did not report a display number\n");
        return -1;
    }
    num[strcspn(num, "\n")] = 0;
    snprintf(g_display, sizeof(g_display), ":%s", num);
    return 0;
}

static int xvfb_teardown(void **state)
{
    (void)state;
    if (g_xvfb > 0) {
        kill(g_xvfb, SIGTERM);
        waitpid(g_xvfb, NULL, 0);
        g_xvfb = -1;
    }
    return 0;
}

/* Four quadrants of distinct colours on the root window of the test's Xvfb. */
static const unsigned short quad_rgb[4][3] = {
    {200, 30, 60}, /* top left */
    {20, 180, 90}, /* top right */
    {40, 70, 220}, /* bottom left */
    {250, 240, 10} /* bottom right */
};

static void draw_quadrants(const char *display)
{
    Display *dpy = XOpenDisplay(display);
    if (!dpy)
        fail_msg("cannot open the test's Xvfb display %s", display);
    int scr = DefaultScreen(dpy);
    Window root = RootWindow(dpy, scr);
    int w = DisplayWidth(dpy, scr), h = DisplayHeight(dpy, scr);
    assert_int_equal(w, 1920);
    assert_int_equal(h, 1080);
    GC gc = XCreateGC(dpy, root, 0, NULL);
    for (int q = 0; q < 4; q++) {
        XColor c;
        memset(&c, 0, sizeof(c));
        c.red = (unsigned short)(quad_rgb[q][0] * 257);
        c.green = (unsigned short)(quad_rgb[q][1] * 257);
        c.blue = (unsigned short)(quad_rgb[q][2] * 257);
        c.flags = DoRed | DoGreen | DoBlue;
        assert_true(XAllocColor(dpy, DefaultColormap(dpy, scr), &c));
        XSetForeground(dpy, gc, c.pixel);
        XFillRectangle(dpy, root, gc, (q % 2) * (w / 2), (q / 2) * (h / 2), (unsigned)(w / 2),
                       (unsigned)(h / 2));
    }
    XFreeGC(dpy, gc);
    XSync(dpy, False);
    XCloseDisplay(dpy);
}

static void check_capture(int width, int want_w, int want_h)
{
    struct err e = ERR_INIT;
    struct shot_png png;
    if (shot_capture_png(width, &png, &e) < 0)
        fail_msg("capture at width %d: %s", width, e.msg);
    check_ihdr(&png, want_w, want_h);
    struct shot_rgb img = decode_png(&png);
    assert_int_equal(img.width, want_w);
    assert_int_equal(img.height, want_h);
    for (int q = 0; q < 4; q++) {
        int x = (q % 2) * want_w / 2 + want_w / 4, y = (q / 2) * want_h / 2 + want_h / 4;
        assert_near(img.px[y * want_w + x], RGB(quad_rgb[q][0], quad_rgb[q][1], quad_rgb[q][2]), 2);
    }
    free(img.px);
    shot_png_free(&png);
}

static void capture_desktop(void **state)
{
    (void)state;
    if (g_xvfb < 0) {
        UNIT_SKIP("Xvfb is not installed (apt-get install xvfb)");
        return;
    }
    char *saved = getenv("DISPLAY") ? strdup(getenv("DISPLAY")) : NULL;
    setenv("DISPLAY", g_display, 1);
    draw_quadrants(g_display);
    check_capture(1000, 1000, 562);
    check_capture(300, 300, 168);
    check_capture(3840, 1920, 1080); /* wider than the screen: the screen's own size */
    check_capture(16, 16, 9);
    if (saved) {
        setenv("DISPLAY", saved, 1);
        free(saved);
    } else {
        unsetenv("DISPLAY");
    }
}
#else
static void capture_no_display(void **state)
{
    (void)state;
    UNIT_SKIP("POSIX only: Windows has no DISPLAY variable");
}

static int xvfb_setup(void **state)
{
    (void)state;
    return 0;
}

static int xvfb_teardown(void **state)
{
    (void)state;
    return 0;
}

/* Under Wine: whatever desktop Wine provides (none when it runs headless). */
static void capture_desktop(void **state)
{
    (void)state;
    struct err e = ERR_INIT;
    struct shot_png png;
    int rc = shot_capture_png(300, &png, &e);
    if (rc == ERR_NOT_FOUND) {
        UNIT_SKIP(e.msg);
        return;
    }
    if (rc < 0)
        fail_msg("capture at width 300: %s", e.msg);
    assert_true(png.width >= 16 && png.width <= 300);
    assert_true(png.height >= 1);
    check_ihdr(&png, png.width, png.height);
    /* Set by the shot_wine_xvfb test, which gives Wine a 1920x1080 Xvfb display. */
    const char *expect = getenv("KASM_SHOT_EXPECT");
    if (expect && *expect) {
        char got[32];
        snprintf(got, sizeof(got), "%dx%d", png.width, png.height);
        assert_string_equal(got, expect);
    }
    shot_png_free(&png);
}
#endif

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(scale_half_exact),
        cmocka_unit_test(scale_fractional),
        cmocka_unit_test(scale_aspect),
        cmocka_unit_test(scale_one_pixel),
        cmocka_unit_test(scale_no_upscale),
        cmocka_unit_test(scale_invalid),
        cmocka_unit_test(encode_roundtrip),
        cmocka_unit_test(capture_invalid_width),
        cmocka_unit_test(capture_no_display),
        cmocka_unit_test_setup_teardown(capture_desktop, xvfb_setup, xvfb_teardown),
    };
    return UNIT_RUN("shot", tests, NULL, NULL);
}
