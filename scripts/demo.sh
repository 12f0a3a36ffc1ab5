#!/usr/bin/env bash
# demo.sh - the README's main job: set up, build, start the bundled Kasm deployment simulator
# and run the agent against it in the foreground until Ctrl-C.
#
#   scripts/demo.sh                 set up (root), build the native preset, run
#   scripts/demo.sh --check N       run for N seconds, stop the agent, verify a clean stop
#                                   (used by the test suite to keep this command true)
# Options: --no-setup (skip scripts/setup-debian.sh), --bin-dir DIR (use built binaries
# instead of building), --work-dir DIR (keep the demo's files there; by default they go to a
# temp dir that is removed at exit).
#
# What it shows: the simulator (the Kasm deployment) starts; the agent registers with it
# (agent --register-host, as Kasm's installer runs it), then serves its HTTPS API on
# a free port of 127.0.0.1 (never 4902, so it cannot collide with anything there), trusting
# the key the registration wrote; the simulator then plays Kasm calling the agent (healthcheck, a
# chunked upload, the listing, a download with its checksum compared); the agent refreshes its
# own token on the heartbeat (15 s tokens, 1 s heartbeat here); curl examples are printed with a
# token minted by the simulator.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
check_seconds=""
do_setup=1
bin_dir=""
work_dir=""

while [[ $# -gt 0 ]]; do
    case "$1" in
    --check) check_seconds="${2:?--check needs a number of seconds}"; shift 2 ;;
    --no-setup) do_setup=0; shift ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift 2 ;;
    --work-dir) work_dir="${2:?--work-dir needs a directory}"; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

if [[ $do_setup == 1 && "${KASM_SKIP_SETUP:-0}" != 1 ]]; then
    say "Setting up this machine (scripts/setup-debian.sh)"
    "$ROOT/scripts/setup-debian.sh"
fi

if [[ -z "$bin_dir" ]]; then
    say "Building the agent (cmake --preset native)"
    cmake --preset native -S "$ROOT" >/dev/null
    cmake --build --preset native >/dev/null
    bin_dir="$ROOT/build/native/bin"
fi
[[ -x "$bin_dir/agent" ]] || die "no agent in $bin_dir (build it, or pass --bin-dir)"

made_work_dir=0
if [[ -z "$work_dir" ]]; then
    work_dir="$(mktemp -d /tmp/kasm-demo.XXXXXX)"
    made_work_dir=1
fi
mkdir -p "$work_dir/sim" "$work_dir/agent"
sim_pid=""
agent_pid=""
# SIGTERM, then SIGKILL after 5 s: a stuck child must not keep the demo (or ctest) waiting.
stop_pid() {
    [[ -n "$1" ]] || return 0
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "demo: pid $1 did not stop within 5 s; killing it" >&2
    kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    stop_pid "$agent_pid"
    stop_pid "$sim_pid"
    wait 2>/dev/null || true
    [[ $made_work_dir == 1 ]] && rm -rf "$work_dir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting the Kasm deployment simulator (tests/sim/kasm_sim.py)"
# Agent tokens live 15 s here (a real deployment: days), so the demo shows a refresh.
"$PY" "$ROOT/tests/sim/kasm_sim.py" serve --port 0 --control-port 0 --quiet \
    --token-lifetime 15 --state-dir "$work_dir/sim" >"$work_dir/sim/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 100); do
    [[ -f "$work_dir/sim/sim.json" ]] && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work_dir/sim/sim.log" >&2; die "the simulator exited"; }
    sleep 0.1
done
[[ -f "$work_dir/sim/sim.json" ]] || die "the simulator did not start (log: $work_dir/sim/sim.log)"
sim_field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$work_dir/sim/sim.json" "$1"; }
api_port="$(sim_field api_port)"
echo "simulator API:  https://127.0.0.1:$api_port  (health: $(curl -sk "https://127.0.0.1:$api_port/api/__healthcheck"))"
echo "simulator state: $work_dir/sim/sim.json"

say "Writing the agent's config.yaml"
cfg="$work_dir/agent/config.yaml"
files="$work_dir/agent/Downloads"
mkdir -p "$files"
cp "$(sim_field jwt_public_key_pem)" "$work_dir/agent/jwt.pem"
cat >"$cfg" <<EOF
ssl: true
port: 0
listen_address: 127.0.0.1
jwt_public_key: $work_dir/agent/jwt.pem
server_public_key: $work_dir/agent/cert.pem
server_private_key: $work_dir/agent/key.pem
upload_dir: $files
download_dir: $files
log_file: $work_dir/agent/agent.log
api_host: 127.0.0.1
api_port: $api_port
registered: false
script_path: $work_dir/agent/scripts
admin_socket: $work_dir/agent/admin.sock
EOF
sed 's/^/    /' "$cfg"
echo "(port 0: the agent picks a free port and logs it; Kasm's port is 4902. upload_dir and"
echo " download_dir are one folder here, as the user's Downloads folder is in a real session.)"

say "Registering this machine with the simulator (as Kasm's installer does)"
echo "\$ agent --register-host 127.0.0.1 --register-port $api_port" \
    "--register-token <redacted> --cfg $cfg"
"$bin_dir/agent" --register-host 127.0.0.1 --register-port "$api_port" \
    --register-token "$(sim_field registration_token)" --cfg "$cfg" 2>&1 | sed 's/^/    /'
[[ "${PIPESTATUS[0]}" == 0 ]] || die "registration failed (log: $work_dir/agent/agent.log)"
echo "config.yaml now (tokens redacted):"
sed -E 's/^([a-z_]*token[a-z_]*: ).*/\1<redacted>/' "$cfg" | sed 's/^/    /'

say "Starting the agent: $bin_dir/agent --cfg $cfg"
# A 1 s heartbeat instead of 30 s (KASM_HEARTBEAT_MS, docs/config.md) to match the short tokens.
KASM_HEARTBEAT_MS=1000 "$bin_dir/agent" --cfg "$cfg" >"$work_dir/agent/console.log" 2>&1 &
agent_pid=$!
agent_url=""
for _ in $(seq 1 200); do
    line="$(grep -ho 'listening on https://[^ ]*' "$work_dir/agent/agent.log" \
        "$work_dir/agent/console.log" 2>/dev/null | head -1 || true)"
    if [[ -n "$line" ]]; then
        agent_url="https://127.0.0.1:${line##*:}"
        break
    fi
    kill -0 "$agent_pid" 2>/dev/null ||
        { cat "$work_dir/agent/console.log" >&2; die "the agent exited"; }
    sleep 0.1
done
[[ -n "$agent_url" ]] || die "the agent did not log 'listening on' (log: $work_dir/agent/agent.log)"
echo "agent API: $agent_url   (log: $work_dir/agent/agent.log)"

call() {
    echo "\$ kasm_sim.py agent-call $*"
    "$PY" "$ROOT/tests/sim/kasm_sim.py" agent-call --agent "$agent_url" \
        --state-dir "$work_dir/sim" "$@" 2>&1 | sed 's/^/    /'
    return "${PIPESTATUS[0]}"
}

say "Kasm calls the agent (the simulator in client mode)"
call healthcheck || die "healthcheck failed"
sample="$work_dir/demo-sample.bin"
head -c 3000000 /dev/urandom >"$sample"
call --chunk-size 1000000 upload "$sample" || die "upload failed"
call list || die "listing failed"
call download "$(basename "$sample")" -o "$work_dir/demo-downloaded.bin" || die "download failed"
sum_up="$(sha256sum <"$sample" | cut -d' ' -f1)"
sum_down="$(sha256sum <"$work_dir/demo-downloaded.bin" | cut -d' ' -f1)"
echo "sha256 uploaded:   $sum_up"
echo "sha256 downloaded: $sum_down"
[[ "$sum_up" == "$sum_down" ]] || die "the downloaded file differs from the uploaded one"
echo "the round trip preserved the file"

say "The agent refreshes its own token on the heartbeat (tokens live 15 s in this demo)"
refreshed=""
for _ in $(seq 1 300); do
    # A refresh: "Refreshing auth token ..." followed by "New auth token expires ...".
    if awk '/Refreshing auth token which expires/ { r = 1 }
            r && /New auth token expires/ { found = 1 } END { exit !found }' \
        "$work_dir/agent/agent.log"; then
        refreshed=1
        break
    fi
    sleep 0.1
done
[[ -n "$refreshed" ]] || die "no token refresh within 30 s (log: $work_dir/agent/agent.log)"
awk '/Refreshing auth token which expires/ { r = 1 } r && /auth token/' \
    "$work_dir/agent/agent.log" | head -n 2 | sed 's/^/    /'

say "Try it yourself (while this runs)"
control="http://127.0.0.1:$(sim_field control_port)"
cat <<EOF
A user token (the simulator signs it with the key the agent trusts):
    TOKEN=\$(curl -s -X POST $control/control/mint -d '{"kind": "user"}' \\
            | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
Then:
    curl -sk -H "Authorization: Bearer \$TOKEN" $agent_url/__healthcheck
    curl -sk -H "Authorization: Bearer \$TOKEN" $agent_url/Downloads/Downloads/
    curl -sk -H "Authorization: Bearer \$TOKEN" -r 0-99 \
        $agent_url/Downloads/Downloads/$(basename "$sample") | xxd | head
    $PY $ROOT/tests/sim/kasm_sim.py agent-call --agent $agent_url --state-dir $work_dir/sim list
    tail -f $work_dir/agent/agent.log
EOF
[[ -n "$check_seconds" ]] || echo "Press Ctrl-C to stop."

if [[ -n "$check_seconds" ]]; then
    sleep "$check_seconds"
    kill -0 "$agent_pid" 2>/dev/null || die "the agent exited early (log: $work_dir/agent/agent.log)"
    kill -TERM "$agent_pid"
    rc=0
    wait "$agent_pid" || rc=$?
    agent_pid=""
    [[ $rc == 0 ]] || die "the agent exited with $rc after SIGTERM"
    grep -q "starting" "$work_dir/agent/agent.log" || die "no start line in the agent's log"
    grep -q "stopped" "$work_dir/agent/agent.log" || die "no stop line in the agent's log"
    say "demo check passed: the agent served the simulator's calls and stopped cleanly"
    exit 0
fi
wait "$agent_pid"
