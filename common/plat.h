/*
 * plat.h - the platform layer: the one header portable code includes to reach the OS.
 *
 * Two implementations stand behind it, with the same functions: common/win32/ (Win32 API,
 * wide-char paths, built with mingw-w64) and common/posix/ (Linux). Portable code never
 * includes <windows.h> or POSIX headers for these concerns. Where one side has no true
 * counterpart the function returns ERR_UNSUPPORTED with a message that says so; it never
 * pretends to have succeeded.
 *
 * Paths are UTF-8 everywhere in the portable code; the win32 side converts to UTF-16 and
 * uses long-path (\\?\) forms internally. All functions follow err.h: 0 or a negative
 * ERR_* code, with `struct err *e` (may be NULL) filled on failure.
 */
#ifndef KASM_PLAT_H
#define KASM_PLAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef _WIN32
#define PLAT_PATH_SEP     '\\'
#define PLAT_PATH_SEP_STR "\\"
#else
#define PLAT_PATH_SEP     '/'
#define PLAT_PATH_SEP_STR "/"
#endif

/* ------------------------------------------------------------------------------------- */
/* Files                                                                                  */

struct plat_file; /* an open file handle (HANDLE / fd), opaque */

enum plat_open_flags {
    PLAT_OPEN_READ = 1 << 0,
    PLAT_OPEN_WRITE = 1 << 1,
    PLAT_OPEN_CREATE_NEW = 1 << 2, /* create; fail with ERR_EXISTS if anything is there */
    PLAT_OPEN_TRUNCATE = 1 << 3,   /* open existing or create, truncate to 0 */
    PLAT_OPEN_APPEND = 1 << 4,     /* writes go to the end (log files) */
    PLAT_OPEN_HIDDEN = 1 << 5,     /* Windows: FILE_ATTRIBUTE_HIDDEN on create; POSIX: none */
    PLAT_OPEN_PRIVATE = 1 << 6,    /* owner/admin-only permissions on create (keys, tokens) */
};

/*
 * Opens a file. The final component is never followed if it is a symbolic link or reparse
 * point (ERR_PERMISSION "... is a symbolic link or reparse point"); directories are refused.
 */
int plat_file_open(const char *path, int flags, struct plat_file **out, struct err *e);
/* Reads up to cap bytes; *got == 0 means end of file. */
int plat_file_read(struct plat_file *f, void *buf, size_t cap, size_t *got, struct err *e);
/* Reads up to cap bytes at offset without moving the file position. */
int plat_file_pread(struct plat_file *f, void *buf, size_t cap, uint64_t off, size_t *got,
                    struct err *e);
/* Writes all len bytes or fails (ERR_NO_SPACE when the disk is full). */
int plat_file_write_all(struct plat_file *f, const void *buf, size_t len, struct err *e);
/* Flushes file data and metadata to stable storage. */
int plat_file_sync(struct plat_file *f, struct err *e);
/* Sets the file length (used to drop a torn tail). */
int plat_file_truncate(struct plat_file *f, uint64_t len, struct err *e);
/* Moves the file position (where the next read or write happens) to offset off from the start. */
int plat_file_seek(struct plat_file *f, uint64_t off, struct err *e);
/*
 * Sets or clears the Windows hidden attribute through the handle (an upload's temp file is
 * hidden until it is renamed into place). POSIX: no-op (hidden there means a leading dot).
 */
int plat_file_set_hidden(struct plat_file *f, int hidden, struct err *e);
/*
 * The final, resolved path of the open handle (GetFinalPathNameByHandleW without the \\?\
 * prefix / readlink of /proc/self/fd/N), in UTF-8.
 */
int plat_file_final_path(struct plat_file *f, char *out, size_t cap, struct err *e);
/* What a file's user may do with it (plat_file_set_user_access, file mappings). */
enum plat_user_access {
    PLAT_ACCESS_READ = 1 << 0,
    PLAT_ACCESS_WRITE = 1 << 1,
    PLAT_ACCESS_EXECUTE = 1 << 2,
};
/*
 * Sets exactly what the user may do with the file f (PLAT_ACCESS_* bits; 0: nothing but what
 * an owner always keeps, changing the permissions). POSIX: the mode becomes the owner bits
 * 0400/0200/0100 and nothing for group and others (fchmod). Windows: a protected DACL with
 * SYSTEM and Administrators full control and the calling process's user FILE_GENERIC_READ /
 * FILE_GENERIC_WRITE + DELETE / FILE_GENERIC_EXECUTE (SetSecurityInfo on the handle; f must
 * have been created by this process with PLAT_OPEN_CREATE_NEW, which asks for WRITE_DAC).
 */
int plat_file_set_user_access(struct plat_file *f, unsigned access, struct err *e);
/* Closes f; NULL is ignored. */
void plat_file_close(struct plat_file *f);
/* The OS handle (POSIX fd, Windows HANDLE value) for zero-copy sends (pchan); f keeps it. */
intptr_t plat_file_os_handle(const struct plat_file *f);
/*
 * Deletes the file f refers to, through the handle where the OS allows it (Windows
 * FILE_DISPOSITION_INFO; POSIX unlinks the final path after checking it is still the same
 * inode). Used to undo a CREATE_NEW that turned out to be in the wrong place. f stays open;
 * close it afterwards.
 */
int plat_file_delete(struct plat_file *f, struct err *e);

struct plat_file_info {
    uint64_t size;
    int64_t mtime; /* seconds since the Unix epoch, UTC */
    int is_dir;
    int is_link;   /* a symbolic link, junction or other reparse point */
    int is_hidden; /* Windows hidden attribute / POSIX leading dot */
    int is_system; /* Windows system attribute; always 0 on POSIX */
};

int plat_file_stat(struct plat_file *f, struct plat_file_info *out, struct err *e);
/* Information about a path without following a final link (lstat). */
int plat_path_stat(const char *path, struct plat_file_info *out, struct err *e);

/* Atomically replaces dst by src (same directory): MoveFileExW(REPLACE|WRITE_THROUGH) / rename. */
int plat_path_replace(const char *src, const char *dst, struct err *e);
/* Renames src to dst only if dst does not exist (ERR_EXISTS otherwise). */
int plat_path_rename_new(const char *src, const char *dst, struct err *e);
/* Deletes a file; ERR_NOT_FOUND when it is not there. */
int plat_path_remove(const char *path, struct err *e);
/* Creates a directory; success if it already exists as a directory. */
int plat_dir_create(const char *path, struct err *e);
/* Creates a directory and its missing parents. */
int plat_dir_create_all(const char *path, struct err *e);
/* Removes an empty directory (not a link to one); ERR_NOT_FOUND when it is not there. */
int plat_dir_remove(const char *path, struct err *e);
/*
 * Creates a symbolic link linkpath -> target (is_dir: Windows directory link). Used by tests
 * and tools; fails with ERR_UNSUPPORTED or ERR_PERMISSION where links cannot be made.
 */
int plat_symlink_create(const char *target, const char *linkpath, int is_dir, struct err *e);
/* Flushes a directory entry change (POSIX fsync of the dir; no-op on Windows). */
int plat_dir_sync(const char *path, struct err *e);
/*
 * Restricts a file or directory to the service account and administrators:
 * Windows DACL SYSTEM + BUILTIN\Administrators (protected, not inherited);
 * POSIX owner-only mode (0600 files, 0700 directories).
 */
int plat_path_restrict_to_admins(const char *path, struct err *e);

/* Directory listing. Entries "." and ".." are never returned. */
struct plat_dir;
struct plat_dir_entry {
    char name[1024]; /* UTF-8 */
    struct plat_file_info info;
};
int plat_dir_open(const char *path, struct plat_dir **out, struct err *e);
/* Returns 1 with *ent filled, 0 at the end, negative on error. */
int plat_dir_next(struct plat_dir *d, struct plat_dir_entry *ent, struct err *e);
void plat_dir_close(struct plat_dir *d);

/* Free bytes available to the caller on the volume holding path. */
int plat_disk_free(const char *path, uint64_t *free_bytes, uint64_t *total_bytes, struct err *e);

/*
 * The final, resolved path of an existing directory (symbolic links, junctions and ".."
 * resolved; GetFinalPathNameByHandleW without \\?\ / realpath), in UTF-8, no trailing
 * separator except for a root ("/", "C:\").
 */
int plat_dir_final_path(const char *path, char *out, size_t cap, struct err *e);

/*
 * Maps a native error number (errno on POSIX, GetLastError() on Windows) to an ERR_* code:
 * disk full / quota -> ERR_NO_SPACE, access denied -> ERR_PERMISSION, not found ->
 * ERR_NOT_FOUND, exists -> ERR_EXISTS, anything else -> ERR_IO.
 */
int plat_err_from_os(long os_error);

/* Directory of the running executable, UTF-8, no trailing separator. */
int plat_exe_dir(char *out, size_t cap, struct err *e);

/* ------------------------------------------------------------------------------------- */
/* Time                                                                                   */

/* Milliseconds from an arbitrary start; never goes backwards. */
uint64_t plat_monotonic_ms(void);
/* Seconds since the Unix epoch, UTC. */
int64_t plat_wall_time(void);
/* Milliseconds since the Unix epoch, UTC (log timestamps). */
int64_t plat_wall_time_ms(void);
void plat_sleep_ms(uint32_t ms);

/* ------------------------------------------------------------------------------------- */
/* Threads                                                                                */

struct plat_mutex;
struct plat_cond;
struct plat_thread;

int plat_mutex_create(struct plat_mutex **out, struct err *e);
void plat_mutex_lock(struct plat_mutex *m);
void plat_mutex_unlock(struct plat_mutex *m);
void plat_mutex_destroy(struct plat_mutex *m);

int plat_cond_create(struct plat_cond **out, struct err *e);
/* Waits at most timeout_ms (UINT32_MAX: forever). Returns 0, or ERR_TIMEOUT. */
int plat_cond_wait(struct plat_cond *c, struct plat_mutex *m, uint32_t timeout_ms);
void plat_cond_signal(struct plat_cond *c);
void plat_cond_broadcast(struct plat_cond *c);
void plat_cond_destroy(struct plat_cond *c);

int plat_thread_start(struct plat_thread **out, void (*fn)(void *), void *arg, struct err *e);
/* Waits for the thread to finish and frees it. */
void plat_thread_join(struct plat_thread *t);

/* ------------------------------------------------------------------------------------- */
/* System                                                                                 */

/* Fully qualified host name if known, else the plain host name. */
int plat_hostname(char *out, size_t cap, struct err *e);
/* Cryptographically secure random bytes (BCryptGenRandom / getrandom). */
int plat_random_bytes(void *buf, size_t len, struct err *e);
/* Process id of the caller. */
unsigned long plat_pid(void);

/*
 * A cheap snapshot of system load for the health check, each a percentage 0..100.
 * cpu_pct: busy share of all CPUs since the previous call (the first call samples over ~50 ms);
 * mem_pct: physical memory in use; disk_pct: space used on the volume holding disk_path.
 * Thread-safe. (posix/plat_usage.c: /proc/stat, /proc/meminfo, statvfs; win32/plat_usage.c:
 * GetSystemTimes, GlobalMemoryStatusEx, GetDiskFreeSpaceExW.)
 */
struct plat_usage {
    double cpu_pct;
    double mem_pct;
    double disk_pct;
};
int plat_system_usage(struct plat_usage *out, const char *disk_path, struct err *e);

/*
 * The system log: the Windows Event Log (log "Application", source `source`) or syslog.
 * level uses enum log_level from log.h. Failures are silent: logging must not fail callers.
 */
void plat_syslog_open(const char *source);
void plat_syslog_write(int level, const char *msg);
void plat_syslog_close(void);

#endif
