/*
 * acct.c - the portable part of Kasm-managed local accounts: acct_validate_username(), the
 * Windows rules for local account names, applied on every platform.
 */
#include "acct.h"

#include <stdint.h>
#include <string.h>

/* The characters Windows refuses in account names. */
static const char acct_forbidden[] = "\"/\\[]:;|=,+*?<>@";

/* Decodes one strict UTF-8 sequence (no overlong forms, no surrogates, at most U+10FFFF).
 * Returns its length in bytes, or 0 when the bytes at s are not valid UTF-8. */
static size_t acct_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n;
    uint32_t c, min;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b < 0xC2) /* a continuation byte, or the lead of an overlong 2-byte form */
        return 0;
    if (b < 0xE0) {
        n = 2;
        c = b & 0x1F;
        min = 0x80;
    } else if (b < 0xF0) {
        n = 3;
        c = b & 0x0F;
        min = 0x800;
    } else if (b < 0xF5) {
        n = 4;
        c = b & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

int acct_validate_username(const char *username, struct err *e)
{
    const unsigned char *s = (const unsigned char *)username;
    size_t len, units = 0;
    int only_dots_spaces = 1;
    uint32_t last = 0;

    if (!username)
        return err_set(e, ERR_INVALID, "no user name was given");
    len = strlen(username);
    if (len == 0)
        return err_set(e, ERR_INVALID, "the user name is empty");
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t n = acct_utf8_decode(s + i, len - i, &c);

        if (n == 0)
            return err_set(e, ERR_INVALID, "the user name is not valid UTF-8 (byte %zu)", i + 1);
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F))
            return err_set(e, ERR_INVALID,
                           "the user name contains a control character (U+%04X at byte %zu); "
                           "Windows account names cannot contain control characters",
                           (unsigned)c, i + 1);
        if (c < 0x80 && strchr(acct_forbidden, (int)c))
            return err_set(e, ERR_INVALID,
                           "the user name contains '%c', which Windows does not allow in account "
                           "names (none of \" / \\ [ ] : ; | = , + * ? < > @)",
                           (char)c);
        if (c != '.' && c != ' ')
            only_dots_spaces = 0;
        /* Windows counts UTF-16 code units: a character beyond U+FFFF takes two. */
        units += c > 0xFFFF ? 2 : 1;
        last = c;
        i += n;
    }
    if (units > ACCT_USERNAME_MAX)
        return err_set(e, ERR_INVALID,
                       "the user name is %zu characters long; Windows local account names have at "
                       "most %d",
                       units, ACCT_USERNAME_MAX);
    if (only_dots_spaces)
        return err_set(e, ERR_INVALID,
                       "the user name consists only of dots and spaces, which Windows does not "
                       "allow");
    if (last == '.')
        return err_set(e, ERR_INVALID,
                       "the user name ends with a dot, which Windows does not allow");
    return 0;
}
