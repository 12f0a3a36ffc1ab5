/*
 * name.c - safe file names and paths (see name.h for the rules and the open recipe).
 *
 * Portable code: the Windows rules are checked on every platform, because a name accepted
 * here may later land on an NTFS volume. Only name_path_is_under()'s native style and the
 * open itself depend on the platform, and they go through plat.h.
 */
#include "name.h"

#include "fsutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME_PATH_MAX 32768

/* Decodes one strict UTF-8 sequence at s[0..len). Returns its length, or 0 with *why set. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp, const char **why)
{
    unsigned char b = s[0];
    size_t n;
    uint32_t c, min;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b < 0xC0) {
        *why = "is not valid UTF-8 (a continuation byte without a lead byte)";
        return 0;
    }
    if (b < 0xE0) {
        n = 2;
        c = b & 0x1F;
        min = 0x80;
    } else if (b < 0xF0) {
        n = 3;
        c = b & 0x0F;
        min = 0x800;
    } else if (b < 0xF8) {
        n = 4;
        c = b & 0x07;
        min = 0x10000;
    } else {
        *why = "is not valid UTF-8 (an impossible byte)";
        return 0;
    }
    if (len < n) {
        *why = "is not valid UTF-8 (a sequence cut short)";
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *why = "is not valid UTF-8 (a sequence cut short)";
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min) {
        *why = "has an overlong UTF-8 encoding (a disguised character)";
        return 0;
    }
    if (c >= 0xD800 && c <= 0xDFFF) {
        *why = "encodes a UTF-16 surrogate, which is not a character";
        return 0;
    }
    if (c > 0x10FFFF) {
        *why = "is not valid UTF-8 (a code point past U+10FFFF)";
        return 0;
    }
    *cp = c;
    return n;
}

static int is_bidi_control(uint32_t c)
{
    return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* The ASCII character a look-alike stands for, or 0. */
static char lookalike_of(uint32_t c)
{
    switch (c) {
    case 0xFF0F: /* fullwidth solidus */
    case 0x2215: /* division slash */
    case 0x2044: /* fraction slash */
    case 0x29F8: /* big solidus */
        return '/';
    case 0xFF3C: /* fullwidth reverse solidus */
    case 0x29F9: /* big reverse solidus */
    case 0xFE68: /* small reverse solidus */
    case 0x2216: /* set minus */
    case 0x00A5: /* yen sign: '\' in code page 932 */
    case 0x20A9: /* won sign: '\' in code page 949 */
        return '\\';
    case 0xFF1A: /* fullwidth colon */
        return ':';
    case 0xFF0A:
        return '*';
    case 0xFF1F:
        return '?';
    case 0xFF02:
        return '"';
    case 0xFF1C:
        return '<';
    case 0xFF1E:
        return '>';
    case 0xFF5C:
        return '|';
    default:
        return 0;
    }
}

static int is_space_like(uint32_t c)
{
    return c == ' ' || c == 0x00A0 || c == 0x3000;
}

static int is_dot_like(uint32_t c)
{
    return c == '.' || c == 0xFF0E;
}

static int ascii_upper(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}

/*
 * 1 if the part before the first dot, without trailing spaces, is a reserved device name.
 * Windows resolves "CON", "con.txt", "CON .txt" and "nul.tar.gz" to devices.
 */
static int is_reserved_device(const char *name, size_t len)
{
    static const char *const plain[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"};
    char up[16];
    size_t n = 0;

    while (n < len && name[n] != '.')
        n++;
    while (n > 0 && name[n - 1] == ' ')
        n--;
    if (n == 0 || n >= sizeof(up))
        return 0;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)ascii_upper((unsigned char)name[i]);
    up[n] = '\0';
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (strcmp(up, plain[i]) == 0)
            return 1;
    if (strncmp(up, "COM", 3) == 0 || strncmp(up, "LPT", 3) == 0) {
        if (n == 4 && up[3] >= '0' && up[3] <= '9')
            return 1;
        /* Superscript one, two, three: U+00B9, U+00B2, U+00B3 (C2 B9 / C2 B2 / C2 B3). */
        if (n == 5 && (unsigned char)up[3] == 0xC2 &&
            ((unsigned char)up[4] == 0xB9 || (unsigned char)up[4] == 0xB2 ||
             (unsigned char)up[4] == 0xB3))
            return 1;
    }
    return 0;
}

int name_validate_len(const char *name, size_t len, struct err *e)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t i = 0, units = 0;
    uint32_t first = 0, last = 0;

    if (!name)
        return err_set(e, ERR_INVALID, "file name is missing");
    if (len == 0)
        return err_set(e, ERR_INVALID, "file name is empty");
    if (len > NAME_MAX_BYTES)
        return err_set(e, ERR_INVALID, "file name is longer than %d bytes", NAME_MAX_BYTES);

    while (i < len) {
        const char *why = NULL;
        uint32_t c = 0;
        size_t n = utf8_decode(s + i, len - i, &c, &why);
        char look;

        if (n == 0)
            return err_set(e, ERR_INVALID, "file name %s at byte %zu", why, i);
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == 0x2028 || c == 0x2029)
            return err_set(e, ERR_INVALID,
                           "file name contains a control character (U+%04X at byte %zu)",
                           (unsigned)c, i);
        if (c == '/' || c == '\\')
            return err_set(e, ERR_INVALID,
                           "file name contains a path separator ('%c' at byte %zu); send a "
                           "file name, not a path",
                           (char)c, i);
        if (c == ':')
            return err_set(e, ERR_INVALID,
                           "file name contains ':' at byte %zu (drive letters and NTFS "
                           "alternate data streams are not allowed)",
                           i);
        if (c == '*' || c == '?' || c == '"' || c == '<' || c == '>' || c == '|')
            return err_set(e, ERR_INVALID,
                           "file name contains '%c' at byte %zu, which Windows forbids in file "
                           "names",
                           (char)c, i);
        look = lookalike_of(c);
        if (look)
            return err_set(e, ERR_INVALID,
                           "file name contains U+%04X at byte %zu, a look-alike of '%c' that "
                           "Windows or a shell may turn into it",
                           (unsigned)c, i, look);
        if (is_bidi_control(c))
            return err_set(e, ERR_INVALID,
                           "file name contains a bidirectional text control (U+%04X at byte "
                           "%zu), which can disguise its extension",
                           (unsigned)c, i);
        if (i == 0)
            first = c;
        last = c;
        units += c >= 0x10000 ? 2 : 1;
        i += n;
    }
    if (units > NAME_MAX_UTF16)
        return err_set(e, ERR_INVALID,
                       "file name is longer than %d UTF-16 code units (the Windows limit)",
                       NAME_MAX_UTF16);
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return err_set(e, ERR_INVALID, "file name is '.' or '..', which name a directory");
    if (is_space_like(first))
        return err_set(e, ERR_INVALID, "file name starts with a space");
    if (is_dot_like(last) || is_space_like(last))
        return err_set(e, ERR_INVALID,
                       "file name ends with a dot or a space, which Windows strips (the file "
                       "would get another name)");
    if (is_reserved_device(name, len))
        return err_set(e, ERR_INVALID,
                       "file name is a reserved Windows device name (CON, PRN, AUX, NUL, "
                       "COM0-9, LPT0-9, ...), with or without an extension");
    return 0;
}

int name_validate(const char *name, struct err *e)
{
    if (!name)
        return err_set(e, ERR_INVALID, "file name is missing");
    return name_validate_len(name, strnlen(name, NAME_MAX_BYTES + 1), e);
}

int name_join_under(const char *root, const char *name, char *out, size_t cap, struct err *e)
{
    int rc;
    if (!root || !*root)
        return err_set(e, ERR_INVALID, "no folder to put the file in");
    rc = name_validate(name, e);
    if (rc < 0)
        return rc;
    return fs_join(root, name, out, cap, e);
}

static int style_is_sep(char c, enum name_path_style style)
{
    return c == '/' || (style == NAME_STYLE_WINDOWS && c == '\\');
}

static enum name_path_style native_style(void)
{
#ifdef _WIN32
    return NAME_STYLE_WINDOWS;
#else
    return NAME_STYLE_POSIX;
#endif
}

/* Length of path's part that lies past root + separator, or -1 if path is not under root. */
static long under_rest(const char *root, const char *path, enum name_path_style style)
{
    size_t rl, pl, i;

    if (style == NAME_STYLE_NATIVE)
        style = native_style();
    if (!root || !path || !*root || !*path)
        return -1;
    rl = strlen(root);
    while (rl > 0 && style_is_sep(root[rl - 1], style))
        rl--;
    pl = strlen(path);
    if (pl <= rl)
        return -1;
    for (i = 0; i < rl; i++) {
        char a = root[i], b = path[i];
        if (style == NAME_STYLE_WINDOWS) {
            if (style_is_sep(a, style) && style_is_sep(b, style))
                continue;
            a = (char)ascii_upper((unsigned char)a);
            b = (char)ascii_upper((unsigned char)b);
        }
        if (a != b)
            return -1;
    }
    if (!style_is_sep(path[rl], style))
        return -1;
    /* Every component after the root must be a real name. */
    i = rl;
    while (i < pl) {
        size_t start, clen;
        while (i < pl && style_is_sep(path[i], style))
            i++;
        start = i;
        while (i < pl && !style_is_sep(path[i], style))
            i++;
        clen = i - start;
        if (clen == 1 && path[start] == '.')
            return -1;
        if (clen == 2 && path[start] == '.' && path[start + 1] == '.')
            return -1;
    }
    /* Skip the separators: something must remain. */
    i = rl;
    while (i < pl && style_is_sep(path[i], style))
        i++;
    if (i == pl)
        return -1;
    return (long)i;
}

int name_path_is_under_style(const char *root, const char *path, enum name_path_style style)
{
    return under_rest(root, path, style) >= 0;
}

int name_path_is_under(const char *root, const char *path)
{
    return name_path_is_under_style(root, path, NAME_STYLE_NATIVE);
}

/* 1 if path is root + separator + one component (no further separator). */
static int is_direct_child(const char *root, const char *path)
{
    enum name_path_style style = native_style();
    long start = under_rest(root, path, style);
    if (start < 0)
        return 0;
    for (const char *p = path + start; *p; p++)
        if (style_is_sep(*p, style))
            return 0;
    return 1;
}

int name_root_resolve(const char *root, char *out, size_t cap, struct err *e)
{
    if (!root || !*root)
        return err_set(e, ERR_INVALID, "no folder to put the file in");
    return plat_dir_final_path(root, out, cap, e);
}

int name_open_under_resolved(const char *root_final, const char *name, int flags,
                             struct plat_file **out, struct err *e)
{
    struct plat_file *f = NULL;
    char *path = NULL, *final = NULL;
    int rc;

    *out = NULL;
    rc = name_validate(name, e);
    if (rc < 0)
        goto out;
    if (!root_final || !*root_final) {
        rc = err_set(e, ERR_INVALID, "no folder to put the file in");
        goto out;
    }
    if (flags & (PLAT_OPEN_TRUNCATE | PLAT_OPEN_APPEND)) {
        rc = err_set(e, ERR_INVALID,
                     "files under a user folder are only created new or read, never "
                     "truncated or appended to");
        goto out;
    }
    if (flags & PLAT_OPEN_WRITE)
        flags |= PLAT_OPEN_CREATE_NEW;
    path = malloc(NAME_PATH_MAX);
    final = malloc(NAME_PATH_MAX);
    if (!path || !final) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = fs_join(root_final, name, path, NAME_PATH_MAX, e);
    if (rc < 0)
        goto out;
    rc = plat_file_open(path, flags, &f, e);
    if (rc < 0)
        goto out;
    /* The handle decides, not the path: where did we really land? */
    rc = plat_file_final_path(f, final, NAME_PATH_MAX, e);
    if (rc < 0)
        goto undo;
    if (!is_direct_child(root_final, final)) {
        rc = err_set(e, ERR_PERMISSION, "refusing %s: it resolves to %s, outside %s", path, final,
                     root_final);
        goto undo;
    }
    *out = f;
    f = NULL;
    goto out;
undo:
    if (flags & PLAT_OPEN_CREATE_NEW)
        plat_file_delete(f, NULL);
out:
    plat_file_close(f);
    free(path);
    free(final);
    return rc;
}

int name_open_under(const char *root, const char *name, int flags, struct plat_file **out,
                    struct err *e)
{
    char *root_final = malloc(NAME_PATH_MAX);
    int rc;

    *out = NULL;
    if (!root_final)
        return err_set(e, ERR_NOMEM, "out of memory");
    /* Validate first: a bad name is refused without touching the disk. */
    rc = name_validate(name, e);
    if (rc == 0)
        rc = name_root_resolve(root, root_final, NAME_PATH_MAX, e);
    if (rc == 0)
        rc = name_open_under_resolved(root_final, name, flags, out, e);
    free(root_final);
    return rc;
}
