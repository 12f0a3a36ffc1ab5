#!/usr/bin/env bash
# test-all.sh - the project's test command: every build, every test runner, one summary.
#
#   1. scripts/setup-debian.sh            (skipped with KASM_SKIP_SETUP=1; needs root only when
#                                          something is missing)
#   2. scripts/build-mingw-deps.sh        (Windows dependencies, cached outside the checkout)
#   3. presets native, asan, mingw        configure, build, ctest (mingw tests run under Wine)
#   4. scripts/fuzz-smoke.sh              each libFuzzer target for FUZZ_SECONDS (default 20)
# Warnings are errors here (KASM_WERROR=OFF to relax). Each runner's summary is printed, then
# the time of each phase, and last a line "N passed, M failed" over all tests and fuzzers (a
# configure or build failure counts as one failed test). Exits non-zero on any failure.
# Runs from any directory. Environment: KASM_SKIP_SETUP, KASM_PRESETS (default
# "native asan mingw"), KASM_SKIP_FUZZ=1, KASM_WERROR, FUZZ_SECONDS, KASM_DEPS_CACHE.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
PRESETS="${KASM_PRESETS:-native asan mingw}"
WERROR="${KASM_WERROR:-ON}"

total_passed=0
total_failed=0
timings=()

banner() { printf '\n==== %s ====\n' "$*"; }
note_time() { timings+=("$(printf '%-28s %5d s' "$1" "$2")"); }

# Show the interesting part of a failed step's log.
show_failure() {
    local log="$1"
    grep -E 'error|Error|FAILED|warning:' "$log" | head -n 30 | sed 's/^/    | /'
    echo "    | ... (last lines of $log)"
    tail -n 15 "$log" | sed 's/^/    | /'
}

# Counts from a ctest JUnit file: sets j_tests j_failures j_skipped.
read_junit() {
    local counts
    counts="$(/usr/bin/python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
if s.tag != "testsuite":
    s = s.find("testsuite")
n = lambda k: int(s.get(k, "0") or 0)
print(n("tests"), n("failures"), n("skipped") + n("disabled"))
PY
)" || counts="0 0 0"
    read -r j_tests j_failures j_skipped <<<"$counts"
}

phase_start=$SECONDS
if [[ "${KASM_SKIP_SETUP:-0}" != 1 ]]; then
    banner "setup (scripts/setup-debian.sh)"
    if ! "$ROOT/scripts/setup-debian.sh"; then
        echo "setup failed; fix it or rerun with KASM_SKIP_SETUP=1"
        total_failed=$((total_failed + 1))
    fi
    note_time "setup-debian" $((SECONDS - phase_start))
fi

if [[ " $PRESETS " == *" mingw "* ]]; then
    banner "Windows dependencies (scripts/build-mingw-deps.sh)"
    phase_start=$SECONDS
    if prefix_out="$("$ROOT/scripts/build-mingw-deps.sh")"; then
        KASM_MINGW_DEPS="$(tail -n 1 <<<"$prefix_out")"
        export KASM_MINGW_DEPS
        echo "deps: $KASM_MINGW_DEPS"
    else
        echo "build-mingw-deps.sh failed; the mingw preset will fail"
    fi
    note_time "build-mingw-deps" $((SECONDS - phase_start))
fi

for preset in $PRESETS; do
    banner "preset $preset"
    bdir="$ROOT/build/$preset"
    mkdir -p "$bdir"
    log="$bdir/test-all.log"
    : >"$log"

    phase_start=$SECONDS
    if ! { cmake --preset "$preset" -DKASM_WERROR="$WERROR" &&
           cmake --build --preset "$preset"; } >>"$log" 2>&1; then
        note_time "$preset build" $((SECONDS - phase_start))
        echo "$preset: configure/build FAILED"
        show_failure "$log"
        total_failed=$((total_failed + 1))
        continue
    fi
    nwarn="$(grep -c 'warning:' "$log" || true)"
    echo "$preset: build ok ($((SECONDS - phase_start)) s, $nwarn warnings)"
    note_time "$preset build" $((SECONDS - phase_start))

    phase_start=$SECONDS
    junit="$bdir/ctest-junit.xml"
    rm -f "$junit"
    ctest --preset "$preset" --output-junit "$junit" 2>&1 | tee "$bdir/ctest.log" |
        grep -Ev '^\s*Start +[0-9]+:|^Test project ' || true
    note_time "$preset ctest" $((SECONDS - phase_start))
    if [[ -f "$junit" ]]; then
        read_junit "$junit"
        p=$(( ${j_tests:-0} - ${j_failures:-0} - ${j_skipped:-0} ))
        f=${j_failures:-0}
        echo "$preset: $p passed, $f failed, ${j_skipped:-0} skipped (of ${j_tests:-0} tests)"
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
        if (( ${j_tests:-0} == 0 )); then
            echo "$preset: no tests ran"
            total_failed=$((total_failed + 1))
        fi
    else
        echo "$preset: ctest wrote no results ($bdir/ctest.log)"
        total_failed=$((total_failed + 1))
    fi
done

if [[ "${KASM_SKIP_FUZZ:-0}" != 1 ]]; then
    banner "fuzz smoke (scripts/fuzz-smoke.sh, ${FUZZ_SECONDS:-20} s each)"
    phase_start=$SECONDS
    fuzz_out="$(KASM_WERROR="$WERROR" "$ROOT/scripts/fuzz-smoke.sh" 2>&1)"
    printf '%s\n' "$fuzz_out"
    last="$(grep -E '^fuzz-smoke: [0-9]+ passed, [0-9]+ failed$' <<<"$fuzz_out" | tail -n 1)"
    if [[ -n "$last" ]]; then
        fp="$(sed -E 's/^fuzz-smoke: ([0-9]+) passed.*/\1/' <<<"$last")"
        ff="$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$last")"
        total_passed=$((total_passed + fp))
        total_failed=$((total_failed + ff))
    else
        total_failed=$((total_failed + 1))
    fi
    note_time "fuzz build + smoke" $((SECONDS - phase_start))
fi

banner "timings"
printf '%s\n' "${timings[@]}"
printf '%-28s %5d s\n' "total" "$SECONDS"
echo
echo "$total_passed passed, $total_failed failed"
((total_failed == 0))
