#!/usr/bin/env bash
# shot_wine_xvfb.sh WINE_RUN PREFIX TEST_EXE - runs test_shot.exe's capture_desktop case under
# Wine with a 1920x1080 Xvfb display (xvfb-run) and expects a 300x168 PNG. Uses its own Wine
# prefix: a prefix whose wineserver started without a display cannot capture later.
set -euo pipefail
wine_run="$1" prefix="$2" exe="$3"
command -v xvfb-run >/dev/null 2>&1 || { echo "skipped: xvfb-run is not installed"; exit 77; }
export KASM_WINEPREFIX="$prefix" KASM_SHOT_EXPECT=300x168
"$wine_run" --shutdown >/dev/null 2>&1 || true
set +e
xvfb-run -a -s "-screen 0 1920x1080x24 -nolisten tcp" \
    bash -c 'KASM_WINE_DISPLAY="$DISPLAY" "$0" "$1" capture_desktop; rc=$?; "$0" --shutdown; exit $rc' \
    "$wine_run" "$exe"
rc=$?
set -e
# A skip (77) here means Wine still saw no desktop: with a display given, that is a failure.
if [[ $rc -eq 77 ]]; then
    echo "FAIL: Wine saw no desktop although an Xvfb display was given"
    exit 1
fi
exit "$rc"
