#!/usr/bin/env bash
# fuzz-smoke.sh - build the `fuzz` preset and give every libFuzzer target a short run.
#
#   scripts/fuzz-smoke.sh [fuzz_name...]     default: every build/fuzz/fuzz/fuzz_* executable
#
# Each fuzzer runs for FUZZ_SECONDS (default 20) on a fresh temporary corpus, seeded from
# tests/fuzz/corpus/<name>/ when that exists (read-only; it is never modified). Per-fuzzer
# libFuzzer flags can go in tests/fuzz/<name>.options (one flag per line, e.g. -max_len=8192)
# and a dictionary in tests/fuzz/<name>.dict. Crash inputs are kept in fuzz-artifacts/.
# A fuzzer fails when libFuzzer reports a crash, leak, timeout or sanitizer error.
# Prints one line per fuzzer and a last line "fuzz-smoke: N passed, M failed".
# Environment: FUZZ_SECONDS, FUZZ_MAX_LEN (default 4096), KASM_FUZZ_NO_BUILD=1 (skip the build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${FUZZ_SECONDS:-20}"
MAX_LEN="${FUZZ_MAX_LEN:-4096}"
BUILD="$ROOT/build/fuzz"
ARTIFACTS="$ROOT/fuzz-artifacts"

say() { printf '%s\n' "fuzz-smoke: $*"; }

cd "$ROOT"
if [[ "${KASM_FUZZ_NO_BUILD:-0}" != 1 ]]; then
    mkdir -p "$BUILD"
    log="$BUILD/fuzz-smoke-build.log"
    if ! { cmake --preset fuzz ${KASM_WERROR:+-DKASM_WERROR="$KASM_WERROR"} &&
           cmake --build --preset fuzz; } >"$log" 2>&1; then
        grep -E 'error|Error' "$log" | head -n 20 | sed 's/^/    | /'
        tail -n 20 "$log" | sed 's/^/    | /'
        say "build of the fuzz preset failed (log: $log)"
        say "0 passed, 1 failed"
        exit 1
    fi
fi

fuzzers=()
if (($#)); then
    for n in "$@"; do fuzzers+=("$BUILD/fuzz/$n"); done
else
    for f in "$BUILD"/fuzz/fuzz_*; do
        [[ -f "$f" && -x "$f" ]] && fuzzers+=("$f")
    done
fi
if ((${#fuzzers[@]} == 0)); then
    say "no fuzzers found in $BUILD/fuzz"
    say "0 passed, 1 failed"
    exit 1
fi

mkdir -p "$ARTIFACTS"
work="$(mktemp -d "${TMPDIR:-/tmp}/kasm-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
for fz in "${fuzzers[@]}"; do
    name="$(basename "$fz")"
    if [[ ! -x "$fz" ]]; then
        say "$name: FAILED - not built ($fz)"
        failed=$((failed + 1))
        continue
    fi
    corpus="$work/$name-corpus"
    mkdir -p "$corpus"
    args=(-max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$name-")
    if [[ -f "$ROOT/tests/fuzz/$name.options" ]]; then
        while IFS= read -r opt; do
            [[ -z "$opt" || "$opt" == \#* ]] || args+=("$opt")
        done <"$ROOT/tests/fuzz/$name.options"
    fi
    [[ -f "$ROOT/tests/fuzz/$name.dict" ]] && args+=(-dict="$ROOT/tests/fuzz/$name.dict")
    seeds=()
    seed_note="no seed corpus"
    if [[ -d "$ROOT/tests/fuzz/corpus/$name" ]]; then
        seeds=("$ROOT/tests/fuzz/corpus/$name")
        seed_note="$(find "${seeds[0]}" -type f | wc -l) seeds"
    fi
    log="$work/$name.log"
    set +e
    "$fz" "${args[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)"
    ncorp="$(find "$corpus" -type f | wc -l)"
    if ((rc == 0)) && ! grep -Eq 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
        say "$name: ok - ${runs:-?} runs in ${SECONDS_EACH}s, coverage ${cov:-?}, corpus $ncorp ($seed_note)"
        passed=$((passed + 1))
    else
        keep="$ARTIFACTS/$name.log"
        cp "$log" "$keep"
        say "$name: FAILED (exit $rc) - log: $keep"
        grep -E -m 5 'ERROR:|runtime error:|SUMMARY:|Test unit written to' "$log" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
done

say "$passed passed, $failed failed"
((failed == 0))
