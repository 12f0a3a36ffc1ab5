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
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 180  # the first Wine start may create the prefix
TIMEOUT = 60
READY_RE = re.compile(r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready \(HELLO: role helper")
RESTART_RE = re.compile(r"session (\d+) \([^)]+\): helper .*; restarting it in (\d+) ms")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def win_path(path):
    return "Z:" + path.replace("/", "\\")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def unix_pids(needle):
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and needle in cmdline(int(d))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wine-run", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--helper", required=True)
    args = ap.parse_args()

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
    proc = subprocess.Popen([args.wine_run, args.agent, "--console", "--cfg", win_path(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    helper_tag = win_path(helper)  # the helper's command line (Wine shows the DOS path)

    def text():
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait(pred, what, timeout=TIMEOUT, agent_runs=True):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = pred()
            if r:
                return r
            if agent_runs and proc.poll() is not None:
                raise Fail(f"agent.exe exited with {proc.returncode} while waiting for {what}")
            time.sleep(0.1)
        raise Fail(f"{what} did not happen within {timeout} s")

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

        agent = [p for p in unix_pids("agent.exe") if ppid_of(p) == proc.pid or p == proc.pid]
        check(agent, "cannot find agent.exe's process")
        for p in agent:
            os.kill(p, signal.SIGKILL)
        wait(lambda: not unix_pids(helper_tag), "the helper's end after agent.exe was killed",
             agent_runs=False)
        print("ok   killing agent.exe ended its helper (job object)")
    except Fail as e:
        rc = 1
        print(f"FAIL {e}\n---- agent log ----\n{text()[-6000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in unix_pids(helper_tag):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
