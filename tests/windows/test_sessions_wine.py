#!/usr/bin/python3
"""test_sessions_wine.py - the session manager of agent.exe under Wine (service/session/win32/).

agent.exe --console adopts Wine's logged-on session (WTS), starts session_helper.exe in it
with CreateProcessAsUserW (user token, environment block, private pipe, job object), and its
log shows the helper's HELLO and a LOG line the helper sent. The helper's Unix process is
then killed: the agent restarts it after the throttle delay. Finally agent.exe itself is
killed (SIGKILL, no clean stop): the job object (kill on close) takes the helper with it.

The helper is a copy of session_helper.exe in the test's own folder (config key
session_helper), so that its processes are told apart from other Wine tests' helpers.

Usage: test_sessions_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE --helper HELPER_EXE
Exit status 0 when every check passes.
"""
import os
import re
import shutil
import signal
import sys
import tempfile

from wine_fixture import (READY_RE_TEXT, AgentRun, Fail, check, cmdline, kill_pids, parse_args,
                          ppid_of, unix_pids, win_path)

START_TIMEOUT = 180  # the first Wine start may create the prefix
TIMEOUT = 60
READY_RE = re.compile(READY_RE_TEXT)
RESTART_RE = re.compile(r"session (\d+) \([^)]+\): helper .*; restarting it in (\d+) ms")


def main():
    args = parse_args("--wine-run", "--agent", "--helper")

    tmp = tempfile.mkdtemp(prefix="kasm-sess-wine-")
    helper = os.path.join(tmp, "session_helper.exe")
    shutil.copy(args.helper, helper)
    log = os.path.join(tmp, "agent.log")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("port: 0\nlisten_address: 127.0.0.1\ndebug: true\n"
                "api_host: kasm.example.test\nserver_id: 0123456789abcdef0123456789abcdef\n"
                f"log_file: {win_path(log)}\nsession_helper: {win_path(helper)}\n"
                f"upload_dir: {win_path(tmp + '/up')}\ndownload_dir: {win_path(tmp + '/down')}\n"
                f"admin_socket: \\\\.\\pipe\\kasm-test-sessions-{os.getpid()}\n")
    env = dict(os.environ, KASM_SESSION_POLL_MS="500")
    agent = AgentRun(log, TIMEOUT)
    text, wait = agent.text, agent.wait
    proc = agent.start(args.wine_run, args.agent, win_path(cfg), env)
    helper_tag = win_path(helper)  # the helper's command line (Wine shows the DOS path)

    rc = 0
    try:
        m = wait(lambda: READY_RE.search(text()), "the helper's HELLO", START_TIMEOUT)
        sid = m.group(1)
        print(f"ok   helper of session {sid} ({m.group(2)}) said HELLO")
        wait(lambda: f"helper[session {sid}]: " in text(), "a LOG line from the helper")
        print("ok   the helper's LOG line is in the agent log")
        hp = wait(lambda: unix_pids(helper_tag), "the helper's process")
        check(len(hp) == 1, f"{len(hp)} helper processes, want 1")
        check(f"--session-id {sid}" in cmdline(hp[0]) and "--channel " in cmdline(hp[0]),
              f"helper command line: {cmdline(hp[0])}")
        print("ok   session_helper.exe runs with --channel and --session-id")

        os.kill(hp[0], signal.SIGKILL)
        wait(lambda: RESTART_RE.search(text()), "the restart of the killed helper")
        wait(lambda: len(READY_RE.findall(text())) >= 2, "the restarted helper's HELLO")
        print("ok   the killed helper was restarted: "
              + RESTART_RE.search(text()).group(0).split("): ", 1)[1])

        exe = [p for p in unix_pids("agent.exe") if ppid_of(p) == proc.pid or p == proc.pid]
        check(exe, "cannot find agent.exe's process")
        for p in exe:
            os.kill(p, signal.SIGKILL)
        wait(lambda: not unix_pids(helper_tag), "the helper's end after agent.exe was killed",
             agent_runs=False)
        print("ok   killing agent.exe ended its helper (job object)")
    except Fail as e:
        rc = 1
        print(f"FAIL {e}\n---- agent log ----\n{text()[-6000:]}")
    finally:
        agent.kill()
        kill_pids(unix_pids(helper_tag))
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
