#!/usr/bin/env bash
# check_pe.sh OBJDUMP EXE... - each EXE is a PE32+ x86-64 image that imports only DLLs that
# are part of Windows itself (the allow-list below); OpenSSL, civetweb, cJSON, libyaml and the
# mingw runtime must be linked in statically. Exits non-zero and names the offender otherwise.
set -euo pipefail

objdump="$1"
shift

# Windows system DLLs the agent may import (compared case-insensitively), plus the API sets.
allowed=(kernel32 advapi32 user32 gdi32 ws2_32 crypt32 bcrypt shell32 ole32 oleaut32 userenv
         wtsapi32 netapi32 msvcrt secur32 shlwapi iphlpapi dbghelp version rpcrt4 windowscodecs
         ntdll mswsock psapi)

is_allowed() {
    local dll="${1,,}" a
    dll="${dll%.dll}"
    [[ "$dll" == api-ms-win-* ]] && return 0
    for a in "${allowed[@]}"; do
        [[ "$dll" == "$a" ]] && return 0
    done
    return 1
}

fail=0
for exe in "$@"; do
    name="$(basename "$exe")"
    if [[ ! -f "$exe" ]]; then
        echo "FAIL $name: not found at $exe"
        fail=1
        continue
    fi
    ok=1
    desc="$(file -b "$exe")"
    if [[ "$desc" != PE32+\ executable* || "$desc" != *x86-64* || "$desc" == *"(DLL)"* ]]; then
        echo "FAIL $name: not a PE32+ x86-64 program: $desc"
        ok=0
    fi
    mapfile -t dlls < <("$objdump" -p "$exe" | sed -n 's/^[[:space:]]*DLL Name:[[:space:]]*//p')
    if ((${#dlls[@]} == 0)); then
        echo "FAIL $name: no DLL imports found (objdump output changed?)"
        ok=0
    fi
    bad=()
    for d in "${dlls[@]}"; do
        is_allowed "$d" || bad+=("$d")
    done
    if ((${#bad[@]})); then
        echo "FAIL $name: imports non-system DLLs: ${bad[*]}"
        ok=0
    fi
    if ((ok)); then
        echo "ok   $name: $desc; imports: ${dlls[*]}"
    else
        fail=1
    fi
done
exit "$fail"
