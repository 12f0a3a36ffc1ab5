/*
 * win32/shot.c - screenshots on Windows: shot_capture_png() copies the whole virtual screen
 * (all monitors) with GDI, StretchBlt in HALFTONE mode straight into a 32-bit DIB section of
 * the target size, and encodes it as a 24-bit PNG through WIC on an HGLOBAL stream.
 * shot_encode_png() encodes a 0x00RRGGBB image through the same WIC path.
 *
 * Size rule (the same as shot_scale.c): a width >= the virtual screen's keeps the screen's
 * size; otherwise height = floor(screen_h * width / screen_w), at least 1.
 */
#define COBJMACROS
#include <windows.h>

#include <objbase.h>
#include <wincodec.h>

#include <stdlib.h>
#include <string.h>

#include "shot.h"

/* Encodes rows of 24-bit BGR (stride bytes apart) as a PNG into out. */
static int shot_wic_png(const unsigned char *bgr, int w, int h, UINT stride, struct shot_png *out,
                        struct err *e)
{
    HRESULT hr;
    int rc = 0, com_init = 0;
    IWICImagingFactory *factory = NULL;
    IStream *stream = NULL;
    IWICBitmapEncoder *enc = NULL;
    IWICBitmapFrameEncode *frame = NULL;
    IPropertyBag2 *props = NULL;
    HGLOBAL hg = NULL;
    void *mem = NULL;
    const char *step = "";

    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (SUCCEEDED(hr))
        com_init = 1; /* S_OK or S_FALSE: balanced by CoUninitialize */
    else if (hr != RPC_E_CHANGED_MODE) {
        step = "CoInitializeEx";
        goto fail;
    }
    step = "creating the WIC imaging factory";
    hr = CoCreateInstance(&CLSID_WICImagingFactory, NULL, CLSCTX_INPROC_SERVER,
                          &IID_IWICImagingFactory, (void **)&factory);
    if (FAILED(hr))
        goto fail;
    step = "CreateStreamOnHGlobal";
    hr = CreateStreamOnHGlobal(NULL, TRUE, &stream);
    if (FAILED(hr))
        goto fail;
    step = "creating the PNG encoder";
    hr = IWICImagingFactory_CreateEncoder(factory, &GUID_ContainerFormatPng, NULL, &enc);
    if (FAILED(hr))
        goto fail;
    hr = IWICBitmapEncoder_Initialize(enc, stream, WICBitmapEncoderNoCache);
    if (FAILED(hr))
        goto fail;
    step = "creating the PNG frame";
    hr = IWICBitmapEncoder_CreateNewFrame(enc, &frame, &props);
    if (FAILED(hr))
        goto fail;
    hr = IWICBitmapFrameEncode_Initialize(frame, props);
    if (FAILED(hr))
        goto fail;
    hr = IWICBitmapFrameEncode_SetSize(frame, (UINT)w, (UINT)h);
    if (FAILED(hr))
        goto fail;
    WICPixelFormatGUID fmt = GUID_WICPixelFormat24bppBGR;
    step = "setting the pixel format";
    hr = IWICBitmapFrameEncode_SetPixelFormat(frame, &fmt);
    if (FAILED(hr))
        goto fail;
    if (!IsEqualGUID(&fmt, &GUID_WICPixelFormat24bppBGR)) {
        rc = err_set(e, ERR_UNSUPPORTED,
                     "screenshot encode: the WIC PNG encoder does not take 24-bit BGR pixels");
        goto out;
    }
    step = "writing the pixels";
    hr = IWICBitmapFrameEncode_WritePixels(frame, (UINT)h, stride, stride * (UINT)h, (BYTE *)bgr);
    if (FAILED(hr))
        goto fail;
    step = "finishing the PNG";
    hr = IWICBitmapFrameEncode_Commit(frame);
    if (FAILED(hr))
        goto fail;
    hr = IWICBitmapEncoder_Commit(enc);
    if (FAILED(hr))
        goto fail;

    STATSTG st;
    memset(&st, 0, sizeof(st));
    step = "reading the PNG stream";
    hr = IStream_Stat(stream, &st, STATFLAG_NONAME);
    if (FAILED(hr))
        goto fail;
    hr = GetHGlobalFromStream(stream, &hg);
    if (FAILED(hr))
        goto fail;
    const size_t len = (size_t)st.cbSize.QuadPart;
    if (len == 0 || len > GlobalSize(hg) || !(mem = GlobalLock(hg))) {
        rc = err_set(e, ERR_INTERNAL, "screenshot encode: the WIC stream holds no PNG");
        goto out;
    }
    out->data = malloc(len);
    if (!out->data) {
        rc = err_set(e, ERR_NOMEM, "screenshot encode: out of memory for the PNG");
        goto out;
    }
    memcpy(out->data, mem, len);
    out->len = len;
    out->width = w;
    out->height = h;
    goto out;

fail:
    rc = err_set(e, hr == E_OUTOFMEMORY ? ERR_NOMEM : ERR_IO,
                 "screenshot encode: %s failed (HRESULT 0x%08lx)", step, (unsigned long)hr);
out:
    if (mem)
        GlobalUnlock(hg);
    if (props)
        IPropertyBag2_Release(props);
    if (frame)
        IWICBitmapFrameEncode_Release(frame);
    if (enc)
        IWICBitmapEncoder_Release(enc);
    if (stream)
        IStream_Release(stream); /* frees the HGLOBAL (fDeleteOnRelease) */
    if (factory)
        IWICImagingFactory_Release(factory);
    if (com_init)
        CoUninitialize();
    return rc;
}

static UINT shot_bgr_stride(int w)
{
    return ((UINT)w * 3 + 3) & ~3u;
}

int shot_encode_png(const struct shot_rgb *img, struct shot_png *out, struct err *e)
{
    if (!img || !out || !img->px || img->width < 1 || img->height < 1 || img->stride < img->width)
        return err_set(e, ERR_INVALID, "screenshot encode: invalid image");
    memset(out, 0, sizeof(*out));

    const UINT stride = shot_bgr_stride(img->width);
    unsigned char *bgr = calloc((size_t)stride, (size_t)img->height);
    if (!bgr)
        return err_set(e, ERR_NOMEM, "screenshot encode: out of memory for %dx%d", img->width,
                       img->height);
    for (int y = 0; y < img->height; y++) {
        const uint32_t *line = img->px + (size_t)y * (size_t)img->stride;
        unsigned char *o = bgr + (size_t)y * stride;
        for (int x = 0; x < img->width; x++) {
            o[x * 3] = (unsigned char)line[x];
            o[x * 3 + 1] = (unsigned char)(line[x] >> 8);
            o[x * 3 + 2] = (unsigned char)(line[x] >> 16);
        }
    }
    int rc = shot_wic_png(bgr, img->width, img->height, stride, out, e);
    free(bgr);
    return rc;
}

/*
 * Screen sizes in physical pixels: without DPI awareness a high-DPI screen reports scaled
 * metrics and the copy covers only part of it. The helper has no windows, so setting the
 * process awareness at the first capture is early enough. Failure (an older Windows, or
 * it was already set) leaves the default.
 */
static BOOL CALLBACK shot_dpi_once(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    SetProcessDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2);
    return TRUE;
}

static INIT_ONCE dpi_once = INIT_ONCE_STATIC_INIT;

void shot_init(void)
{
    HDC screen;
    InitOnceExecuteOnce(&dpi_once, shot_dpi_once, NULL, NULL);
    screen = GetDC(NULL); /* NULL when the session has no desktop: reported per capture */
    if (screen)
        ReleaseDC(NULL, screen);
}

int shot_capture_png(int width, struct shot_png *out, struct err *e)
{
    HDC screen = NULL, mem = NULL;
    HBITMAP dib = NULL;
    HGDIOBJ old = NULL;
    void *bits = NULL;
    unsigned char *bgr = NULL;
    int rc = 0;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!out)
        return err_set(e, ERR_INVALID, "screenshot: no output");
    if ((rc = shot_check_width(width, e)) < 0)
        return rc;
    InitOnceExecuteOnce(&dpi_once, shot_dpi_once, NULL, NULL);

    const int vx = GetSystemMetrics(SM_XVIRTUALSCREEN), vy = GetSystemMetrics(SM_YVIRTUALSCREEN);
    const int vw = GetSystemMetrics(SM_CXVIRTUALSCREEN), vh = GetSystemMetrics(SM_CYVIRTUALSCREEN);
    if (vw < 1 || vh < 1)
        return err_set(e, ERR_NOT_FOUND, "no display: this session has no interactive desktop");
    int dw, dh;
    shot_fit(vw, vh, width, &dw, &dh);

    screen = GetDC(NULL);
    if (!screen) {
        rc = err_set(e, ERR_NOT_FOUND, "no display: cannot open the desktop of this session");
        goto out;
    }
    mem = CreateCompatibleDC(screen);
    if (!mem) {
        rc = err_set(e, ERR_IO, "screenshot: CreateCompatibleDC failed (error %lu)",
                     (unsigned long)GetLastError());
        goto out;
    }
    BITMAPINFO bi;
    memset(&bi, 0, sizeof(bi));
    bi.bmiHeader.biSize = sizeof(bi.bmiHeader);
    bi.bmiHeader.biWidth = dw;
    bi.bmiHeader.biHeight = -dh; /* top-down */
    bi.bmiHeader.biPlanes = 1;
    bi.bmiHeader.biBitCount = 32;
    bi.bmiHeader.biCompression = BI_RGB;
    dib = CreateDIBSection(screen, &bi, DIB_RGB_COLORS, &bits, NULL, 0);
    if (!dib || !bits) {
        rc = err_set(e, ERR_NOMEM, "screenshot: cannot create a %dx%d bitmap (error %lu)", dw, dh,
                     (unsigned long)GetLastError());
        goto out;
    }
    old = SelectObject(mem, dib);
    if (!old || old == HGDI_ERROR) {
        old = NULL;
        rc = err_set(e, ERR_IO, "screenshot: SelectObject failed");
        goto out;
    }
    SetStretchBltMode(mem, HALFTONE);
    SetBrushOrgEx(mem, 0, 0, NULL); /* required after choosing HALFTONE */
    /* Fails when the session has no readable desktop: none at all (a service session, Wine
     * without an X display), or one that is locked or switched to the secure desktop. */
    SetLastError(0);
    if (!StretchBlt(mem, 0, 0, dw, dh, screen, vx, vy, vw, vh, SRCCOPY | CAPTUREBLT)) {
        rc = err_set(e, ERR_NOT_FOUND,
                     "no display: the screen of this session cannot be read (error %lu); it has "
                     "no interactive desktop, or the desktop is locked or on the secure desktop",
                     (unsigned long)GetLastError());
        goto out;
    }
    GdiFlush();

    const UINT stride = shot_bgr_stride(dw);
    bgr = calloc((size_t)stride, (size_t)dh);
    if (!bgr) {
        rc = err_set(e, ERR_NOMEM, "screenshot: out of memory for %dx%d", dw, dh);
        goto out;
    }
    for (int y = 0; y < dh; y++) {
        const unsigned char *in = (const unsigned char *)bits + (size_t)y * (size_t)dw * 4;
        unsigned char *o = bgr + (size_t)y * stride;
        for (int x = 0; x < dw; x++) {
            o[x * 3] = in[x * 4];
            o[x * 3 + 1] = in[x * 4 + 1];
            o[x * 3 + 2] = in[x * 4 + 2];
        }
    }
    rc = shot_wic_png(bgr, dw, dh, stride, out, e);

out:
    free(bgr);
    if (old)
        SelectObject(mem, old);
    if (dib)
        DeleteObject(dib);
    if (mem)
        DeleteDC(mem);
    if (screen)
        ReleaseDC(NULL, screen);
    return rc;
}
