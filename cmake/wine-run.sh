#!/usr/bin/env bash
# wine-run.sh - CMAKE_CROSSCOMPILING_EMULATOR of the mingw build: runs a Windows .exe under Wine.
#
#   wine-run.sh [--prefix DIR] PROGRAM.exe [ARGS...]   run it; exits with the program's status
#   wine-run.sh [--prefix DIR] --reset                  recreate the Wine prefix from scratch
#   wine-run.sh [--prefix DIR] --shutdown               stop the prefix's wineserver
#
# The Wine prefix (WINEPREFIX) is DIR, else $KASM_WINEPREFIX, else <build dir>/wineprefix (the
# nearest parent of PROGRAM holding CMakeCache.txt). It is created with `wineboot -i` on first
# use under a lock, because ctest may start several tests at once. The mingw preset's ctest
# fixture `wine_prefix` (tests/windows/CMakeLists.txt) runs --reset before and --shutdown after
# the tests, so every test run starts from a fresh prefix, with one wineserver kept up
# between. No X display is used (DISPLAY is unset) unless KASM_WINE_DISPLAY names one, e.g. an
# Xvfb server; Wine's debug output is off (WINEDEBUG=-all) and the Mono/Gecko installers are
# disabled.
set -euo pipefail

die() { echo "wine-run: $*" >&2; exit 125; }

prefix="${KASM_WINEPREFIX:-}"
if [[ "${1:-}" == "--prefix" ]]; then
    [[ $# -ge 2 ]] || die "--prefix needs a directory"
    prefix="$2"
    shift 2
fi
[[ $# -ge 1 ]] || die "usage: wine-run.sh [--prefix DIR] PROGRAM.exe [ARGS...] | --reset | --shutdown"

if [[ -z "$prefix" ]]; then
    d="$(cd "$(dirname -- "$1")" 2>/dev/null && pwd || pwd)"
    while [[ "$d" != "/" && ! -f "$d/CMakeCache.txt" ]]; do d="$(dirname "$d")"; done
    if [[ -f "$d/CMakeCache.txt" ]]; then
        prefix="$d/wineprefix"
    else
        prefix="${KASM_DEPS_CACHE:-$HOME/.cache/kasm-open-agent}/wineprefix"
    fi
fi

WINE="${KASM_WINE:-wine}"
command -v "$WINE" >/dev/null 2>&1 || die "'$WINE' not found - run scripts/setup-debian.sh"
command -v wineserver >/dev/null 2>&1 || die "wineserver not found - run scripts/setup-debian.sh"

mkdir -p "$(dirname "$prefix")"
prefix="$(cd "$(dirname "$prefix")" && pwd)/$(basename "$prefix")"
export WINEPREFIX="$prefix"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"
export WINEARCH=win64
# Headless unless a test asks for a display (e.g. an Xvfb server for screenshot tests).
unset WAYLAND_DISPLAY
if [[ -n "${KASM_WINE_DISPLAY:-}" ]]; then
    export DISPLAY="$KASM_WINE_DISPLAY"
else
    unset DISPLAY
fi

lock="$prefix.lock"

# Create the prefix if it is missing (or half-made); the caller holds the lock.
ensure_prefix() {
    [[ -f "$prefix/.kasm-ready" ]] && return 0
    wineserver -k >/dev/null 2>&1 || true
    rm -rf "$prefix"
    local log="$prefix.boot.log"
    if ! wineboot -i >"$log" 2>&1 || ! wineserver -w >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "wineboot -i failed for $prefix (log: $log)"
    fi
    # Wine links the user's shell folders (Desktop, Downloads, ...) to the unix home; make
    # them folders of the prefix, so that a test never writes into the real ~/Downloads.
    local link
    for link in "$prefix"/drive_c/users/*/*; do
        if [[ -L "$link" ]]; then
            rm -f "$link"
            mkdir -p "$link"
        fi
    done
    touch "$prefix/.kasm-ready"
}

case "$1" in
--reset)
    exec 9>"$lock"
    flock 9
    rm -f "$prefix/.kasm-ready"
    ensure_prefix
    # Keep the wineserver up until --shutdown: by default it exits a few seconds after its
    # last client, and a test starting at that moment fails with "Connection reset by peer".
    wineserver -p >/dev/null 2>&1 || true
    # Start Wine's system processes (services.exe, explorer.exe, ...) now, with their output on
    # /dev/null: they live as long as the wineserver and inherit the stdio of the program that
    # started them, so a test that started them would hold ctest's pipe open until --shutdown.
    "$WINE" cmd.exe /c exit </dev/null >/dev/null 2>&1 || true
    exit 0
    ;;
--shutdown)
    wineserver -k >/dev/null 2>&1 || true
    exit 0
    ;;
esac

if [[ ! -f "$prefix/.kasm-ready" ]]; then
    exec 9>"$lock"
    flock 9
    ensure_prefix
    exec 9>&-
fi

# Wine's exit status is the program's exit code (truncated to 8 bits by the OS).
set +e
"$WINE" "$@"
exit $?
