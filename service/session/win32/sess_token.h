/*
 * win32/sess_token.h - a logged-on session's user token (Windows), shared by the session
 * helper spawner (sess_spawn.c) and the script runner (service/scripts/win32/scr_plat.c,
 * storage hooks run as the session's user).
 */
#ifndef KASM_SESS_TOKEN_H
#define KASM_SESS_TOKEN_H

#include <windows.h>

#include <stdint.h>

#include "err.h"

/*
 * The primary token of session's user (CloseHandle). As SYSTEM: WTSQueryUserToken, retried
 * while it says ERROR_NO_TOKEN (1008: the logon is not finished yet). Not as SYSTEM (agent
 * --console by an administrator): our own token, for our own session only. purpose ("start
 * helpers", "run storage hooks") completes the advice when the privilege is missing.
 */
int sess_user_token(uint32_t session, const char *purpose, HANDLE *token, struct err *e);
/* "S-1-5-21-..." of the token's user (LocalFree). */
int sess_token_sid(HANDLE token, wchar_t **sid, struct err *e);

#endif
