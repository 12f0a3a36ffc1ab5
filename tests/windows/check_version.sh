#!/usr/bin/env bash
# check_version.sh WINE_RUN VERSION_FILE AGENT_EXE - `agent.exe --version` run under Wine exits 0
# and prints the version in the VERSION file.
set -euo pipefail

wine_run="$1" version_file="$2" agent="$3"
want="$(head -n1 "$version_file" | tr -d '[:space:]')"
[[ -n "$want" ]] || { echo "FAIL: empty $version_file"; exit 1; }

set +e
out="$("$wine_run" "$agent" --version 2>&1)"
rc=$?
set -e
out="${out//$'\r'/}"
echo "agent.exe --version (exit $rc): $out"
if ((rc != 0)); then
    echo "FAIL: agent.exe --version exited with $rc"
    exit 1
fi
if [[ "$out" != *"$want"* ]]; then
    echo "FAIL: output does not contain the version '$want'"
    exit 1
fi
echo "ok: version $want"
