/*
 * profile_put.h - file mappings written and removed as the user (FILE_PUT / FILE_DELETE,
 * proto.h; docs/sessions.md "File mappings"): the path rules and the two request handlers.
 *
 * A path comes from the service relative to the user's profile, '/'-separated. Each component
 * must pass name_validate() (no "." / "..", no separators, no drive letters, no device names),
 * at most HLP_PROF_DEPTH of them. Folders are walked one at a time from the profile's final
 * path: a component that is a link (symbolic link, junction) is refused, a missing folder is
 * created (FILE_PUT only), and each folder's final path must be strictly inside the profile's.
 * The file is written to a hidden temp file in its folder (CREATE_NEW through
 * name_open_under_resolved: no link followed, the handle's final path checked), then renamed
 * over the destination; a destination that is a link or a folder is refused. Before the
 * rename the temp file gets the access FILE_PUT asks for (readable/writable/executable:
 * plat_file_set_user_access - POSIX owner mode bits, Windows the user's DACL entry).
 */
#ifndef KASM_HLP_PROFILE_PUT_H
#define KASM_HLP_PROFILE_PUT_H

#include <stddef.h>

#include "err.h"

#define HLP_PROF_DEPTH 32

struct pmux_stream;
struct proto_frame;

/*
 * Splits rel into its components: copies rel into buf (cap bytes) and points comps[0..*n)
 * into it. ERR_INVALID (the rule named in e) for an empty or absolute path, an empty, "." or
 * ".." component, or any component name_validate() refuses; ERR_TOO_LARGE when there are
 * more than max components or rel does not fit buf.
 */
int hlp_prof_split(const char *rel, char *buf, size_t cap, char **comps, int max, int *n,
                   struct err *e);

/*
 * Walks the folders comps[0..n) below profile_final (a final path): each must not be a link
 * (ERR_PERMISSION), missing ones are created when create is set (else ERR_NOT_FOUND), and
 * each final path must be strictly inside profile_final (ERR_PERMISSION). out: the final path
 * of the last folder (profile_final itself when n is 0).
 */
int hlp_prof_walk(const char *profile_final, char *const *comps, int n, int create, char *out,
                  size_t cap, struct err *e);

/* The request handlers (serve.c calls them on a worker thread): they answer FILE_RESULT. The
 * profile is the user's profile folder, NULL when the helper could not find it (503). */
void hlp_prof_put(struct pmux_stream *s, const struct proto_frame *first, const char *profile);
void hlp_prof_delete(struct pmux_stream *s, const struct proto_frame *first, const char *profile);

#endif
