#!/usr/bin/python3
"""test_agent_cli.py - the first running programs, end to end, as real processes.

agent: --version / --help; a run with a good config that logs its start, stops cleanly on
SIGTERM and SIGINT, records SIGHUP, never logs the agent token; a bad config (file:line:col,
exit 1); Kasm's registration command line against a host that does not resolve (exit 1,
the failed check named, token not echoed).
session_helper: --help, --version, command-line refusals, and a run over a real inherited
socketpair with this script as the service (HELLO, PING, a listing, LOG frames, exit 0 when
the channel closes, exit 3 for a service of another version). agentctl: --help, --version,
exit 3 with no agent running (the commands themselves:
test_agentctl.py).

Usage: test_agent_cli.py --bin-dir DIR --version-file VERSION
Exit status 0 when every check passes; each check prints "ok" or "FAIL" with the reason.
"""
import argparse
import getpass
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOKEN = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
         "eyJzZXJ2ZXJfaWQiOiIwMTIzNDU2Nzg5YWJjZGVmIiwiYXV0aG9yaXphdGlvbnMiOls3MF19."
         "c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ")
REG_TOKEN = "6b1f0c5e-3f4d-4d8a-9a77-registration-secret"
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARNING|ERROR|CRITICAL)"
                     r" \[[\w-]+\] ")
TIMEOUT = 60  # generous: under ASan with other tests in parallel a start or stop can be slow


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def run(args, cwd=None, timeout=TIMEOUT, env=None):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def wait_for(path, needle, proc, timeout=TIMEOUT):
    """Waits until path contains needle; fails if the process exits first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                if needle in f.read():
                    return
        if proc.poll() is not None:
            raise Fail(f"agent exited with {proc.returncode} before logging '{needle}'")
        time.sleep(0.05)
    raise Fail(f"'{needle}' did not appear in {path} within {timeout} s")


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


class Checks:
    def __init__(self, bin_dir, version):
        bin_dir = os.path.abspath(bin_dir)
        self.bin = lambda name: os.path.join(bin_dir, name)
        self.version = version
        self.tmp = tempfile.mkdtemp(prefix="kasm-agent-cli-")

    def write_config(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def good_config(self, name, debug=True):
        log = os.path.join(self.tmp, name + ".log")
        path = self.write_config(name + ".yaml",
                                 f"port: 0\n"  # a free port: tests run in parallel
                                 f"listen_address: 127.0.0.1\n"
                                 f"debug: {'true' if debug else 'false'}\n"
                                 f"api_host: kasm.example.test\n"
                                 f"server_id: 0123456789abcdef0123456789abcdef\n"
                                 f"log_file: {log}\n"
                                 f"admin_socket: {os.path.join(self.tmp, name + '.sock')}\n"
                                 f"agent_jwt_token: {TOKEN}\n")
        return path, log

    def start_agent(self, cfg, extra=(), cwd=None):
        err = open(os.path.join(self.tmp, "stderr-%d.txt" % time.monotonic_ns()), "w+")
        proc = subprocess.Popen([self.bin("agent")] + (["--cfg", cfg] if cfg else []) + list(extra),
                                cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        return proc, err

    def stop_agent(self, proc, sig):
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Fail(f"agent did not stop within {TIMEOUT} s of signal {sig}")

    # --- agent ---------------------------------------------------------------------------

    def test_version(self):
        rc, out, err = run([self.bin("agent"), "--version"])
        check(rc == 0, f"exit {rc}")
        check(out == f"agent {self.version}\n", f"printed {out!r}, want 'agent {self.version}'")

    def test_help(self):
        rc, out, _ = run([self.bin("agent"), "--help"])
        check(rc == 0, f"exit {rc}")
        for flag in ("/S", "--cfg", "--debug", "--register-host", "--register-port",
                     "--register-token", "--server-id", "--await-domain", "--version", "--help"):
            check(flag in out, f"--help does not mention {flag}")

    def test_run_and_sigterm(self):
        cfg, log = self.good_config("run")
        proc, err = self.start_agent(cfg)
        wait_for(log, "starting", proc)
        rc = self.stop_agent(proc, signal.SIGTERM)
        check(rc == 0, f"exit {rc} after SIGTERM")
        text = read(log)
        lines = text.splitlines()
        check(f"Kasm open agent {self.version} starting (config {cfg}, pid {proc.pid})" in text,
              "no start line with version, config path and pid")
        check("stopping (requested by SIGTERM)" in text, "no 'stopping' line naming SIGTERM")
        check(lines and lines[-1].endswith("[agent] stopped"), "the last line is not 'stopped'")
        check(all(LINE_RE.match(line) for line in lines), "a log line has the wrong format")
        check(any(" DEBUG [agent] config:" in line for line in lines),
              "debug: true in the config did not enable debug records")
        err.seek(0)
        errtext = err.read()
        check("starting" in errtext, "the console run does not log to stderr")
        for where, t in (("log file", text), ("stderr", errtext)):
            check(TOKEN not in t and TOKEN.split(".")[2] not in t and TOKEN.split(".")[1] not in t,
                  f"the agent token appears in the {where}")
        err.close()

    def test_sigint_and_sighup(self):
        cfg, log = self.good_config("hup")
        proc, err = self.start_agent(cfg)
        wait_for(log, "starting", proc)
        proc.send_signal(signal.SIGHUP)
        wait_for(log, "reload requested", proc)
        check(proc.poll() is None, "SIGHUP stopped the agent")
        rc = self.stop_agent(proc, signal.SIGINT)
        check(rc == 0, f"exit {rc} after SIGINT")
        text = read(log)
        check("stopping (requested by SIGINT)" in text, "no 'stopping' line naming SIGINT")
        check(text.rstrip().endswith("stopped"), "no 'stopped' line at the end")
        err.close()

    def test_debug_flag_overrides_config(self):
        cfg, log = self.good_config("nodebug", debug=True)
        proc, err = self.start_agent(cfg, ["--debug", "0"])
        wait_for(log, "starting", proc)
        check(self.stop_agent(proc, signal.SIGTERM) == 0, "exit status")
        check(" DEBUG " not in read(log), "--debug 0 did not turn debug records off")
        err.close()

    def test_default_config_in_cwd(self):
        cfg, log = self.good_config("config", debug=False)  # ./config.yaml
        proc, err = self.start_agent(None, cwd=self.tmp)
        wait_for(log, "starting", proc)
        check(self.stop_agent(proc, signal.SIGTERM) == 0, "exit status")
        check("(config ./config.yaml," in read(log), "did not use ./config.yaml by default")
        err.close()

    def test_bad_yaml(self):
        bad = self.write_config("bad.yaml", "port: 4902\nssl: true\napi_port: [443\n")
        rc, out, err = run([self.bin("agent"), "--cfg", bad])
        check(rc == 1, f"exit {rc}, want 1")
        lines = err.strip().splitlines()
        check(len(lines) == 1, f"want one line on stderr, got {len(lines)}: {err!r}")
        check(re.search(re.escape(bad) + r":\d+:\d+: ", lines[0]), f"no file:line:col in {err!r}")

    def test_bad_value(self):
        bad = self.write_config("badval.yaml", f"agent_jwt_token: {TOKEN}\nport: many\n")
        rc, _, err = run([self.bin("agent"), "--cfg", bad])
        check(rc == 1, f"exit {rc}, want 1")
        check(re.search(re.escape(bad) + r":2:\d+: .*port", err), f"no file:2:col: port in {err!r}")
        check(TOKEN not in err, "the token appears in the error")

    def test_missing_config(self):
        rc, _, err = run([self.bin("agent"), "--cfg", os.path.join(self.tmp, "absent.yaml")])
        check(rc == 1, f"exit {rc}, want 1")
        check(len(err.strip().splitlines()) == 1 and "absent.yaml" in err, f"stderr {err!r}")

    def test_registration_unresolvable_host(self):
        # The whole of registration is tested against the simulator in test_register.py;
        # here: Kasm's exact command line is accepted, a host that does not resolve fails
        # with exit 1 and one line naming the failed check, the token is not echoed and
        # nothing is written.
        cfg = os.path.join(self.tmp, "reg-config.yaml")
        rc, out, err = run([self.bin("agent"), "/S", "--register-host", "kasm.example.test",
                            "--register-port", "443", "--server-id",
                            "0123456789abcdef0123456789abcdef", "--register-token", REG_TOKEN,
                            "--await-domain", "True", "--cfg", cfg])
        check(rc == 1, f"exit {rc}, want 1")
        check(err.count("\n") == 1 and "name resolution failed" in err and
              "kasm.example.test" in err, f"stderr {err!r}")
        check(REG_TOKEN not in err + out, "the registration token was echoed")
        check(not os.path.exists(cfg), "a failed registration wrote the config")

    def test_usage_errors(self):
        for args, needle in ((["--bogus"], "unknown option '--bogus'"),
                             (["--register-port", "http"], "--register-port"),
                             (["--debug", "maybe"], "--debug"),
                             (["--cfg"], "--cfg"),
                             ([REG_TOKEN], "position 1")):
            rc, _, err = run([self.bin("agent")] + args)
            check(rc == 2, f"{args}: exit {rc}, want 2")
            check(needle in err and REG_TOKEN not in err, f"{args}: stderr {err!r}")

    # --- session_helper and agentctl -------------------------------------------------------

    def test_session_helper(self):
        rc, out, _ = run([self.bin("session_helper"), "--help"])
        check(rc == 0 and "session helper" in out and "--channel" in out, f"--help: exit {rc}")
        rc, out, _ = run([self.bin("session_helper"), "--version"])
        check(rc == 0 and out == f"session_helper {self.version}\n", f"--version: {out!r}")
        rc, _, err = run([self.bin("session_helper")])
        check(rc == 2 and "channel" in err, f"no channel: exit {rc}, stderr {err!r}")
        rc, _, err = run([self.bin("session_helper"), "--channel", "abc"])
        check(rc == 2 and "--channel" in err, f"--channel abc: exit {rc}, stderr {err!r}")
        # a handle that is not open: a runtime failure, said so
        rc, _, err = run([self.bin("session_helper"), "--channel", "987", "--session-id", "1"])
        check(rc == 1 and "channel" in err, f"--channel 987: exit {rc}, stderr {err!r}")

    # The helper over a real inherited socketpair, with this script acting as the service
    # (the frame format of proto/proto.h).
    def _helper(self, dl_dir, session_id=5):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proc = subprocess.Popen(
            [self.bin("session_helper"), "--channel", str(theirs.fileno()), "--session-id",
             str(session_id), "--downloads", dl_dir],
            pass_fds=[theirs.fileno()], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        theirs.close()
        ours.settimeout(TIMEOUT)
        return ours, proc

    @staticmethod
    def _send(sock, ftype, rid, payload=b""):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        sock.sendall(struct.pack("<IIII", (0x4B41 << 16) | 1, ftype, len(payload), rid) + payload)

    @staticmethod
    def _recv(sock):
        def exact(n):
            buf = b""
            while len(buf) < n:
                piece = sock.recv(n - len(buf))
                if not piece:
                    raise Fail("the helper closed the channel")
                buf += piece
            return buf
        mv, ftype, length, rid = struct.unpack("<IIII", exact(16))
        check(mv == (0x4B41 << 16) | 1, f"frame magic/version {mv:#x}")
        return ftype, rid, exact(length)

    def _hello(self, version):
        return {"product": "kasm-open-agent", "version": version, "proto": 1, "role": "service",
                "pid": os.getpid(), "window": 1 << 20, "session_id": 0, "user": ""}

    def test_session_helper_channel(self):
        HELLO, ERROR, LOG, DATA, END, PING, PONG = 1, 2, 3, 5, 6, 8, 9
        DL_OPEN, DL_INFO, DL_LIST = 16, 17, 19
        dl = os.path.join(self.tmp, "helper-dl")
        sock, proc = self._helper(dl)
        try:
            ftype, rid, body = self._recv(sock)
            check(ftype == HELLO and rid == 0, f"first frame type {ftype} id {rid}")
            hello = json.loads(body)
            check(hello["role"] == "helper" and hello["pid"] == proc.pid
                  and hello["session_id"] == 5 and hello["user"] == getpass.getuser()
                  and hello["version"] == self.version, f"helper HELLO {hello}")
            self._send(sock, HELLO, 0, self._hello(self.version))
            with open(os.path.join(dl, "x.txt"), "w", encoding="utf-8") as f:
                f.write("hi")  # --downloads DIR was created by the helper
            self._send(sock, PING, 1)
            self._send(sock, DL_OPEN, 3, {"path": ""})
            got, logs, html = {}, [], b""
            # the helper's LOG frames come from its own log hook, in no fixed order with the
            # answers: read until the answers and the "serving" line are all there
            while not (1 in got and END in got and any("serving session 5" in m for m in logs)):
                ftype, rid, body = self._recv(sock)
                if ftype == LOG:
                    logs.append(json.loads(body)["message"])
                elif rid == 1:
                    got[1] = ftype
                elif ftype == DL_INFO:
                    check(json.loads(body)["kind"] == "dir", f"DL_INFO {body!r}")
                    self._send(sock, DL_LIST, 3, {"heading": "Index", "show_hidden": False})
                elif ftype == DATA:
                    html += body
                elif ftype == END:
                    got[END] = 1
                else:
                    raise Fail(f"unexpected frame {ftype} on {rid}: {body!r}")
            check(got[1] == PONG, f"PING answered with type {got[1]}")
            check(b"x.txt" in html, f"listing {html!r}")
            check(any("serving session 5" in m for m in logs), f"LOG frames {logs}")
            sock.close()  # the service goes away: the helper ends cleanly
            rc = proc.wait(TIMEOUT)
            check(rc == 0, f"exit {rc} after the channel closed, stderr {proc.stderr.read()!r}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.close()

    def test_session_helper_version_mismatch(self):
        sock, proc = self._helper(os.path.join(self.tmp, "helper-dl2"))
        try:
            ftype, _, _ = self._recv(sock)
            check(ftype == 1, f"first frame type {ftype}")
            self._send(sock, 1, 0, self._hello("0.0.0-other"))
            rc = proc.wait(TIMEOUT)
            err = proc.stderr.read()
            check(rc == 3 and "0.0.0-other" in err, f"mismatch: exit {rc}, stderr {err!r}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.close()

    def test_agentctl(self):
        rc, out, _ = run([self.bin("agentctl"), "--help"])
        check(rc == 0, f"--help: exit {rc}")
        for cmd in ("status", "sessions", "logs", "token status", "config", "reload", "doctor"):
            check(cmd in out, f"--help does not list '{cmd}'")
        check("token refresh" in out and "register" in out and "screenshot" in out,
              "--help does not list every command")
        check("(not yet)" not in out, "--help still marks a command as not implemented")
        # the implemented commands, with no agent running: exit 3, saying so
        sock = os.path.join(self.tmp, "nowhere", "admin.sock")
        cfg = self.write_config("ctl.yaml", f"admin_socket: {sock}\n")
        env = dict(os.environ)
        for cmd in (["status"], ["sessions"], ["logs"], ["token", "status"], ["token", "refresh"],
                    ["reload"], ["doctor"], ["config"]):
            rc, out2, err = run([self.bin("agentctl")] + cmd + ["--cfg", cfg], env=env)
            check(rc == 3, f"{cmd}: exit {rc}, want 3")
            check(f"the agent is not running: there is no admin socket at {sock}" in err,
                  f"{cmd}: stderr {err!r}")
            check(out2 == "", f"{cmd}: printed a result on stdout: {out2!r}")
        rc, out, _ = run([self.bin("agentctl"), "--version"])
        check(rc == 0 and out == f"agentctl {self.version}\n", f"--version: {out!r}")
        rc, _, err = run([self.bin("agentctl"), "frobnicate"])
        check(rc == 2 and "unknown command" in err, f"unknown command: exit {rc}")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--version-file", required=True)
    ap.add_argument("-k", help="run only checks whose name contains this")
    a = ap.parse_args()
    with open(a.version_file, encoding="utf-8") as f:
        version = f.readline().strip()
    c = Checks(a.bin_dir, version)
    names = sorted(n for n in dir(c) if n.startswith("test_") and (not a.k or a.k in n))
    failed = 0
    for n in names:
        try:
            getattr(c, n)()
            print(f"ok    {n}")
        except Fail as e:
            failed += 1
            print(f"FAIL  {n}: {e}")
        except Exception as e:  # a crash of the check itself is a failure too
            failed += 1
            print(f"FAIL  {n}: {type(e).__name__}: {e}")
    print(f"{len(names) - failed}/{len(names)} checks passed (files in {c.tmp})")
    if not failed:
        shutil.rmtree(c.tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
