/*
 * win32/pchan_win.h - Windows only: the private pipe behind a channel. Used by pchan_pair()
 * and by the session manager's spawner (service/session/win32/sess_spawn.c), which hands the
 * client end to a helper process by inheritance.
 */
#ifndef KASM_PCHAN_WIN_H
#define KASM_PCHAN_WIN_H

#include <windows.h>

#include "err.h"

/*
 * Creates a connected private pipe: the name is \\.\pipe\<prefix> + 32 random hex digits,
 * the security descriptor is sddl (a protected DACL naming who may open it), one instance
 * only (FILE_FLAG_FIRST_PIPE_INSTANCE: a squatter makes this fail), remote clients
 * rejected, byte mode, both ends overlapped; the client end is opened at identification
 * level and is inheritable only when client_inheritable. On success the caller owns both
 * handles; on failure none is left open.
 */
int pchan_win_private_pipe(const wchar_t *prefix, const wchar_t *sddl, int client_inheritable,
                           HANDLE *server, HANDLE *client, struct err *e);

#endif
