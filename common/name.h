/*
 * name.h - safe file names and paths: the one place that decides whether a name that came
 * from a client (an upload's file name, a download request) may become a file on disk.
 *
 * A client never sends a path, only a single file name. name_validate() accepts a name only
 * if it is safe on BOTH Windows and POSIX (uploads land on Windows; the Linux backend runs the
 * same rules). name_open_under() is the full recipe: validate, join under the root, open with
 * CREATE_NEW for writes and never through a link, then check the final path of the OPEN
 * handle is directly inside the root's final path; on failure, undo and refuse. Callers use
 * the returned handle, never the path again.
 *
 * The rules (each rejection has its own message; see docs/security.md "Names and paths"):
 *  - valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF);
 *  - not empty, not "." or "..";
 *  - at most 255 bytes AND at most 255 UTF-16 code units (the stricter of POSIX and Windows);
 *  - no separators / \, none of : * ? " < > | (':' also closes NTFS alternate data streams);
 *  - no control characters: C0 (0x00-0x1F), DEL (0x7F), C1 (U+0080-U+009F), and the
 *    line/paragraph separators U+2028/U+2029 (they break log lines and shells);
 *  - no look-alikes that Windows "best fit" conversions or shells turn into the characters
 *    above: fullwidth ／ ＼ ： ＊ ？ ＂ ＜ ＞ ｜ (U+FF0F U+FF3C U+FF1A U+FF0A U+FF1F U+FF02
 *    U+FF1C U+FF1E U+FF5C), division slash U+2215, fraction slash U+2044, big solidus U+29F8,
 *    big reverse solidus U+29F9, small reverse solidus U+FE68, set minus U+2216, and the yen
 *    and won signs U+00A5 / U+20A9 (code pages 932 and 949 map them to a backslash);
 *  - no bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069): they
 *    make "gpj.exe" look like "exe.jpg";
 *  - no leading space and no trailing dot or space (Windows strips trailing ones, so the
 *    file would get another name than the one checked; leading ones hide in listings); the
 *    fullwidth full stop U+FF0E counts as a dot for this rule;
 *  - not a reserved DOS device name: CON PRN AUX NUL COM0-9 LPT0-9 COM¹²³ LPT¹²³ CONIN$
 *    CONOUT$ CLOCK$, in any case, alone or with any extension, also with spaces before the
 *    dot ("NUL .txt", "con.tar.gz").
 * Allowed: any other Unicode, spaces and dots inside, leading dots (".bashrc" is a normal,
 * hidden-by-convention name), "~" (8.3 aliases cannot overwrite anything: writes are
 * CREATE_NEW).
 */
#ifndef KASM_NAME_H
#define KASM_NAME_H

#include <stddef.h>

#include "err.h"
#include "plat.h"

#define NAME_MAX_BYTES 255
#define NAME_MAX_UTF16 255

/* 0 if name is one safe file name, else ERR_INVALID with the rule that failed in e. */
int name_validate(const char *name, struct err *e);
/* The same for a counted string; an embedded NUL is rejected as a control character. */
int name_validate_len(const char *name, size_t len, struct err *e);

/* Validates name and writes "root<sep>name" into out (ERR_TOO_LARGE if it won't fit). */
int name_join_under(const char *root, const char *name, char *out, size_t cap, struct err *e);

enum name_path_style {
    NAME_STYLE_NATIVE = 0,
    NAME_STYLE_POSIX = 1,   /* '/' only, case-sensitive */
    NAME_STYLE_WINDOWS = 2, /* '\' and '/', ASCII case-insensitive */
};

/*
 * 1 if path is strictly below root (root + a separator + at least one more component),
 * else 0. A plain prefix is not enough: "C:\Users\bob\Downloads2\x" is not under
 * "C:\Users\bob\Downloads". Trailing separators on root are ignored. Any "." or ".."
 * component after the root makes the answer 0 (both arguments should be final paths).
 * Windows style folds ASCII letters only: non-ASCII case differences give 0, which refuses
 * (safe), never a false "under".
 */
int name_path_is_under(const char *root, const char *path);
int name_path_is_under_style(const char *root, const char *path, enum name_path_style style);

/*
 * The safe open: validates name, resolves root to its final path, joins, opens with flags
 * (PLAT_OPEN_WRITE always means PLAT_OPEN_CREATE_NEW here; TRUNCATE and APPEND are refused),
 * refusing links and reparse points, then checks that the final path of the open handle
 * is directly inside the root's final path. If not, a file it created is deleted through the
 * handle, and the call fails with ERR_PERMISSION. On success *out is the open handle
 * (plat_file_final_path() gives its path for logs and answers).
 */
int name_open_under(const char *root, const char *name, int flags, struct plat_file **out,
                    struct err *e);

/*
 * The same with a root already resolved once (name_root_resolve(), e.g. the Downloads folder
 * at start-up): if that path no longer leads where it did (a folder swapped for a link), the
 * final-path check refuses every open instead of following it.
 */
int name_root_resolve(const char *root, char *out, size_t cap, struct err *e);
int name_open_under_resolved(const char *root_final, const char *name, int flags,
                             struct plat_file **out, struct err *e);

#endif
