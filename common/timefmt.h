/*
 * timefmt.h - durations in words for people (prefix tfmt_): what agentctl and the agent's
 * admin commands print for token life, uptime, certificate life and clock skew.
 */
#ifndef KASM_TIMEFMT_H
#define KASM_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Writes the length of secs (its absolute value: the caller says "ago" or "in") in the two
 * largest units: "2 d 3 h", "4 h 5 min", "6 min 7 s", "8 s". Always NUL-terminated. */
void tfmt_duration(int64_t secs, char *out, size_t cap);

#endif
