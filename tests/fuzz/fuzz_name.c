/*
 * fuzz_name.c - libFuzzer target for name_validate_len(): arbitrary bytes in; whenever a name
 * is accepted, the rules of name.h are re-checked here independently (a second, simpler
 * implementation), and any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void violated(const char *rule)
{
    fprintf(stderr, "fuzz_name: an accepted name breaks the rule: %s\n", rule);
    abort();
}

/* Well-formed UTF-8 per the Unicode standard's table of byte ranges (Table 3-7). */
static int well_formed_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint8_t lo = 0x80, hi = 0xBF;
        size_t k;
        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            k = 1;
        } else if (b == 0xE0) {
            k = 2;
            lo = 0xA0;
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
            k = 2;
        } else if (b == 0xED) {
            k = 2;
            hi = 0x9F;
        } else if (b == 0xF0) {
            k = 3;
            lo = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3) {
            k = 3;
        } else if (b == 0xF4) {
            k = 3;
            hi = 0x8F;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF)
                return 0;
        i += k + 1;
    }
    return 1;
}

static int contains(const uint8_t *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, needle, m) == 0)
            return 1;
    return 0;
}

static int reserved(const uint8_t *s, size_t n)
{
    static const char *const names[] = {
        "CON",         "PRN",         "AUX",        "NUL",         "CONIN$",      "CONOUT$",
        "CLOCK$",      "COM0",        "COM1",       "COM2",        "COM3",        "COM4",
        "COM5",        "COM6",        "COM7",       "COM8",        "COM9",        "LPT0",
        "LPT1",        "LPT2",        "LPT3",       "LPT4",        "LPT5",        "LPT6",
        "LPT7",        "LPT8",        "LPT9",       "COM\xc2\xb9", "COM\xc2\xb2", "COM\xc2\xb3",
        "LPT\xc2\xb9", "LPT\xc2\xb2", "LPT\xc2\xb3"};
    char base[300];
    size_t b = 0;
    while (b < n && s[b] != '.' && b < sizeof(base) - 1) {
        uint8_t c = s[b];
        base[b] = (char)((c >= 'a' && c <= 'z') ? c - 32 : c);
        b++;
    }
    while (b > 0 && base[b - 1] == ' ')
        b--;
    base[b] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(base, names[i]) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const banned_seq[] = {
        "\xef\xbc\x8f", "\xef\xbc\xbc", "\xe2\x88\x95", "\xe2\x81\x84", "\xef\xbc\x9a",
        "\xe2\xa7\xb8", "\xe2\xa7\xb9", "\xef\xb9\xa8", "\xe2\x88\x96", "\xc2\xa5",
        "\xe2\x82\xa9", "\xef\xbc\x8a", "\xef\xbc\x9f", "\xef\xbc\x82", "\xef\xbc\x9c",
        "\xef\xbc\x9e", "\xef\xbd\x9c", /* look-alikes */
        "\xd8\x9c",     "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa", "\xe2\x80\xab",
        "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x81\xa7",
        "\xe2\x81\xa8", "\xe2\x81\xa9", /* bidi controls */
        "\xe2\x80\xa8", "\xe2\x80\xa9", /* line/paragraph separators */
    };
    struct err e = ERR_INIT;
    int rc = name_validate_len((const char *)data, size, &e);

    if (rc != 0) {
        if (rc != ERR_INVALID || e.code != ERR_INVALID || e.msg[0] == '\0')
            violated("a rejection is ERR_INVALID with a message");
        return 0;
    }
    if (size == 0 || size > 255)
        violated("1 to 255 bytes");
    if (!well_formed_utf8(data, size))
        violated("well-formed UTF-8");
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data[i];
        if (c < 0x20 || c == 0x7F)
            violated("no C0 control characters or DEL");
        if (c != 0 && strchr("/\\:*?\"<>|", c))
            violated("no separators and none of : * ? \" < > |");
        if (c == 0xC2 && i + 1 < size && data[i + 1] >= 0x80 && data[i + 1] <= 0x9F)
            violated("no C1 control characters");
    }
    for (size_t i = 0; i < sizeof(banned_seq) / sizeof(banned_seq[0]); i++)
        if (contains(data, size, banned_seq[i]))
            violated("no look-alikes, bidi controls or line separators");
    if ((size == 1 && data[0] == '.') || (size == 2 && data[0] == '.' && data[1] == '.'))
        violated("not . or ..");
    if (data[0] == ' ' || data[size - 1] == '.' || data[size - 1] == ' ')
        violated("no leading space, no trailing dot or space");
    if (reserved(data, size))
        violated("not a reserved device name");

    /* The NUL-terminated entry point and the path helpers agree. */
    {
        char *z = malloc(size + 1);
        char joined[300];
        if (!z)
            return 0;
        memcpy(z, data, size);
        z[size] = '\0';
        if (name_validate(z, NULL) != 0)
            violated("name_validate agrees with name_validate_len");
        snprintf(joined, sizeof(joined), "/r/%s", z);
        if (!name_path_is_under_style("/r", joined, NAME_STYLE_POSIX))
            violated("an accepted name joined under a POSIX root is under it");
        snprintf(joined, sizeof(joined), "C:\\r\\%s", z);
        if (!name_path_is_under_style("C:\\r", joined, NAME_STYLE_WINDOWS))
            violated("an accepted name joined under a Windows root is under it");
        free(z);
    }
    return 0;
}
