/*
 * range.c - Range parsing, HTTP dates and the extension -> Content-Type table (range.h).
 * Dates are converted with the days-from-civil arithmetic of the proleptic Gregorian
 * calendar, so neither timegm() nor gmtime_r() (absent or different on Windows) is needed.
 */
#include "range.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads digits at *p; 1 if at least one (value saturates at UINT64_MAX), else 0. */
static int read_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (*s < '0' || *s > '9')
        return 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        x = (x > (UINT64_MAX - d) / 10) ? UINT64_MAX : x * 10 + d;
        s++;
    }
    *p = s;
    *v = x;
    return 1;
}

static void whole(uint64_t size, struct rng_result *out)
{
    out->status = 200;
    out->start = 0;
    out->length = size;
    out->content_range[0] = '\0';
}

static void unsatisfiable(uint64_t size, struct rng_result *out)
{
    out->status = 416;
    out->start = 0;
    out->length = 0;
    snprintf(out->content_range, sizeof(out->content_range), "bytes */%" PRIu64, size);
}

void rng_parse(const char *h, uint64_t size, struct rng_result *out)
{
    const char *p = h;
    uint64_t a = 0, b = 0;
    int have_a, have_b;

    whole(size, out);
    if (!h)
        return;
    while (is_ows(*p))
        p++;
    for (const char *u = "bytes"; *u; u++, p++)
        if (lower((unsigned char)*p) != *u)
            return; /* another unit: ignored */
    while (is_ows(*p))
        p++;
    if (*p++ != '=')
        return;
    if (strchr(p, ','))
        return; /* several ranges: ignored, the whole file is sent */
    while (is_ows(*p))
        p++;
    have_a = read_u64(&p, &a);
    if (*p++ != '-')
        return;
    have_b = read_u64(&p, &b);
    while (is_ows(*p))
        p++;
    if (*p != '\0' || (!have_a && !have_b))
        return;
    if (have_a) {
        if (have_b && b < a)
            return; /* invalid: ignored */
        if (a >= size) {
            unsatisfiable(size, out);
            return;
        }
        if (!have_b || b >= size)
            b = size - 1;
    } else {
        if (b == 0 || size == 0) {
            unsatisfiable(size, out);
            return;
        }
        a = b >= size ? 0 : size - b;
        b = size - 1;
    }
    out->status = 206;
    out->start = a;
    out->length = b - a + 1;
    snprintf(out->content_range, sizeof(out->content_range),
             "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a, b, size);
}

/* ---- dates ----------------------------------------------------------------------------- */

static const char *const wk_short[7] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char *const wk_long[7] = {"Thursday", "Friday",  "Saturday", "Sunday",
                                       "Monday",   "Tuesday", "Wednesday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of y-m-d (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dm[m - 1] + (m == 2 && leap);
}

int rng_http_date_format(int64_t t, char *out, size_t cap)
{
    int64_t days, secs, y;
    int m, d, wd;
    if (cap < RNG_DATE_LEN)
        return ERR_TOO_LARGE;
    days = t / 86400;
    secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return ERR_INVALID;
    wd = (int)(((days % 7) + 7) % 7);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wk_short[wd], d, months[m - 1],
             (int)y, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    return 0;
}

static int month_index(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strcmp(s, months[i]) == 0)
            return i + 1;
    return 0;
}

static int in_list(const char *s, const char *const *list)
{
    for (int i = 0; i < 7; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Digits-only check for fixed-width fields (sscanf's %d would accept signs and spaces). */
static int digits_at(const char *s, const char *pattern)
{
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == 'D' && (s[i] < '0' || s[i] > '9'))
            return 0;
        if (pattern[i] != 'D' && pattern[i] != '*' && s[i] != pattern[i])
            return 0;
        if (!s[i])
            return 0;
    }
    return 1;
}

int rng_http_date_parse(const char *s, int64_t *out, struct err *e)
{
    char wk[10] = {0}, mon[4] = {0};
    int d = 0, y = 0, hh = 0, mm = 0, ss = 0, n = -1, m;
    size_t len = s ? strlen(s) : 0;

    if (!s)
        return err_set(e, ERR_PARSE, "no HTTP date");
    if (len == 29 && digits_at(s, "***, DD *** DDDD DD:DD:DD GMT") &&
        sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wk, &d, mon, &y, &hh, &mm,
               &ss, &n) == 7 &&
        n == 29 && in_list(wk, wk_short)) {
        /* IMF-fixdate */
    } else if (sscanf(s, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", wk, &d, mon, &y, &hh,
                      &mm, &ss, &n) == 7 &&
               (size_t)n == len && in_list(wk, wk_long) &&
               digits_at(s + strlen(wk), ", DD-***-DD DD:DD:DD GMT")) {
        y += y < 70 ? 2000 : 1900; /* RFC 850 two-digit year */
    } else if (len == 24 && digits_at(s, "*** *** *D DD:DD:DD DDDD") &&
               (s[8] == ' ' || (s[8] >= '0' && s[8] <= '9')) &&
               sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wk, mon, &d, &hh, &mm, &ss,
                      &y, &n) == 7 &&
               n == 24 && in_list(wk, wk_short)) {
        /* asctime */
    } else {
        return err_set(e, ERR_PARSE, "not an HTTP date (IMF-fixdate, RFC 850 or asctime)");
    }
    m = month_index(mon);
    if (!m || y < 1970 || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 60)
        return err_set(e, ERR_PARSE, "HTTP date out of range");
    if (ss == 60)
        ss = 59; /* a leap second counts as the second before */
    *out = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

int rng_not_modified(const char *ims, int64_t mtime)
{
    int64_t t;
    if (!ims || rng_http_date_parse(ims, &t, NULL) < 0)
        return 0; /* absent or unparsable: send the file */
    return mtime <= t;
}

/* ---- content types --------------------------------------------------------------------- */

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"txt", "text/plain; charset=utf-8"},
    {"log", "text/plain; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"bmp", "image/bmp"},
    {"webp", "image/webp"},
    {"svg", "image/svg+xml"},
    {"ico", "image/vnd.microsoft.icon"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"7z", "application/x-7z-compressed"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"exe", "application/vnd.microsoft.portable-executable"},
    {"msi", "application/x-msi"},
};

const char *rng_content_type(const char *filename)
{
    const char *dot = filename ? strrchr(filename, '.') : NULL;
    if (dot && dot[1]) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            const char *a = dot + 1, *b = types[i].ext;
            while (*a && *b && lower((unsigned char)*a) == *b) {
                a++;
                b++;
            }
            if (!*a && !*b)
                return types[i].type;
        }
    }
    return "application/octet-stream";
}
