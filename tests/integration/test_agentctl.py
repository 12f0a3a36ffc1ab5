#!/usr/bin/python3
"""test_agentctl.py - agentctl against a real agent over the admin channel.

The agent runs with --console and admin_socket in a private temp dir, one declared session
(this user) with a real session helper. Checked: status, sessions, logs, token status and config
(the token redacted) with and without --json, the JSON fields against the config and the log;
an unknown command (sent raw) gets status 2; as root a
throwaway non-root user is refused (exit 4) both by the socket's permissions and - with the
permissions opened up on purpose - by the agent's SO_PEERCRED check; a second agent with the same
admin_socket fails to start naming the holder; a stale socket is replaced; garbage, oversized,
wrong-type and silent clients are dropped and the agent still answers the next agentctl; after
the agent stops, agentctl exits 3 and the socket is gone. No secret in any output.

Usage: test_agentctl.py --bin-dir DIR [--version-file VERSION] [unittest args]
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

TOKEN = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
         "eyJzZXJ2ZXJfaWQiOiIwMTIzNDU2Nzg5YWJjZGVmIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
         "c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk")
TOKEN_EXP = 4102444800
SERVER_ID = "0123456789abcdef0123456789abcdef"
TIMEOUT = 20
MAGIC_VERSION = (0x4B41 << 16) | 1
ADMIN_REQUEST, ADMIN_REPLY, HELLO = 64, 65, 1

BIN_DIR = None
VERSION = None


def frame(ftype, payload, rid=1, length=None):
    return struct.pack("<IIII", MAGIC_VERSION, ftype, len(payload) if length is None else length,
                       rid) + payload


def recv_all(sock, timeout=TIMEOUT):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


class AgentctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kasm-agentctl-")
        cls.sock = os.path.join(cls.tmp, "run", "admin.sock")
        cls.log = os.path.join(cls.tmp, "agent.log")
        cls.sessions = os.path.join(cls.tmp, "sessions.txt")
        cls.user = pwd.getpwuid(os.geteuid()).pw_name
        with open(cls.sessions, "w", encoding="utf-8") as f:
            f.write(f"1 {cls.user} console\n")
        cls.cfg = os.path.join(cls.tmp, "config.yaml")
        with open(cls.cfg, "w", encoding="utf-8") as f:
            f.write("port: 0\nlisten_address: 127.0.0.1\ndebug: true\n"
                    "api_host: [kasm.example.test, kasm2.example.test]\napi_port: 8443\n"
                    f"server_id: {SERVER_ID}\n"
                    f"log_file: {cls.log}\n"
                    f"admin_socket: {cls.sock}\n"
                    f"session_helper: {os.path.join(BIN_DIR, 'session_helper')}\n"
                    f"sessions_file: {cls.sessions}\n"
                    f"agent_jwt_token: {TOKEN}\n")
        cls.agent = cls.start_agent(cls.cfg)
        cls.wait_log("admin channel ready")
        cls.wait_log("listening on https://")

    @classmethod
    def tearDownClass(cls):
        if cls.agent and cls.agent.poll() is None:
            cls.agent.send_signal(signal.SIGTERM)
            try:
                cls.agent.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                cls.agent.kill()
                cls.agent.wait()
        if cls.agent:
            cls.agent.errfile.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def start_agent(cls, cfg):
        env = dict(os.environ, KASM_SESSION_POLL_MS="200")
        err = open(os.path.join(cls.tmp, "stderr-%d.txt" % time.monotonic_ns()), "w+")
        proc = subprocess.Popen([os.path.join(BIN_DIR, "agent"), "--console", "--cfg", cfg],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        proc.errfile = err
        return proc

    @classmethod
    def log_text(cls):
        try:
            with open(cls.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @classmethod
    def wait_log(cls, needle, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in cls.log_text():
                return
            if cls.agent.poll() is not None:
                raise AssertionError(f"agent exited ({cls.agent.returncode}) waiting for {needle!r}")
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not logged within {timeout} s")

    def ctl(self, *args, user=None, cfg=None):
        cmd = [os.path.join(BIN_DIR, "agentctl")] + list(args) + ["--cfg", cfg or self.cfg]
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        env = dict(os.environ)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
        for text in (p.stdout, p.stderr):
            self.assertNotIn(TOKEN.split(".")[2], text)
            self.assertNotIn(TOKEN.split(".")[1], text)
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args):
        rc, out, err = self.ctl(*args, "--json")
        self.assertEqual(rc, 0, f"{args}: exit {rc}, stderr {err!r}")
        return json.loads(out)

    def raw(self, data, timeout=TIMEOUT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        try:
            if data:
                s.sendall(data)
            return recv_all(s, timeout)
        finally:
            s.close()

    # ---- the commands ----------------------------------------------------------------------

    def test_status(self):
        rc, out, err = self.ctl("status")
        self.assertEqual(rc, 0, err)
        self.assertIn(f"running, version {VERSION}, pid {self.agent.pid}", out)
        self.assertIn(f"server id        {SERVER_ID}", out)
        self.assertIn("kasm.example.test, kasm2.example.test (port 8443)", out)
        self.assertIn("expires 2100-01-01 00:00:00 UTC", out)
        self.assertIn(self.sock, out)
        j = self.ctl_json("status")
        self.assertEqual(j["version"], VERSION)
        self.assertEqual(j["pid"], self.agent.pid)
        self.assertEqual(j["config"], self.cfg)
        self.assertEqual(j["admin_channel"], self.sock)
        self.assertEqual(j["server_id"], SERVER_ID)
        self.assertEqual(j["api_hosts"], ["kasm.example.test", "kasm2.example.test"])
        self.assertEqual(j["api_port"], 8443)
        self.assertEqual(j["listen_address"], "127.0.0.1")
        self.assertIn(f"listening on https://127.0.0.1:{j['listen_port']}", self.log_text())
        self.assertTrue(j["api_running"] and j["ssl"] and j["session_manager"])
        self.assertFalse(j["registered"])
        self.assertTrue(j["token_present"])
        self.assertEqual(j["token_expires"], TOKEN_EXP)
        self.assertFalse(j["token_expired"])
        self.assertGreater(j["token_seconds_left"], 0)
        self.assertGreaterEqual(j["uptime_seconds"], 0)
        self.assertEqual(j["sessions"], 1)
        self.assertIn(j["helpers_running"], (0, 1))

    def test_token_status(self):
        rc, out, err = self.ctl("token", "status")
        self.assertEqual(rc, 0, err)
        self.assertIn("registered       no", out)
        self.assertIn("agent token      expires 2100-01-01 00:00:00 UTC (in ", out)
        j = self.ctl_json("token", "status")
        self.assertEqual(j["token_expires"], TOKEN_EXP)
        self.assertEqual(j["token_expires_text"], "2100-01-01 00:00:00 UTC")
        self.assertEqual(set(j), {"registered", "token_present", "token_expires",
                                  "token_expires_text", "token_seconds_left", "token_expired",
                                  # the lifecycle's history (test_agentctl_deploy.py)
                                  "heartbeat_seconds", "next_refresh", "next_refresh_text",
                                  "next_refresh_in_seconds", "last_checkin", "last_refresh",
                                  "last_api_host", "last_api_port", "needs_registration"})

    def test_sessions(self):
        end = time.monotonic() + TIMEOUT
        while True:
            j = self.ctl_json("sessions")
            rows = j["sessions"]
            if rows and rows[0]["state"] == "running" or time.monotonic() > end:
                break
            time.sleep(0.1)
        self.assertEqual(len(rows), 1, rows)
        r = rows[0]
        self.assertEqual((r["session_id"], r["user"], r["state"], r["console"]),
                         (1, self.user, "running", True))
        self.assertGreater(r["helper_pid"], 0)
        with open(f"/proc/{r['helper_pid']}/cmdline", "rb") as f:
            self.assertTrue(f.read().split(b"\0")[0].endswith(b"session_helper"))
        rc, out, err = self.ctl("sessions")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["SESSION", "USER", "STATE", "CONSOLE", "HELPER",
                                            "SINCE", "RESTARTS"])
        self.assertEqual(lines[1].split()[:5], ["1", self.user, "running", "yes",
                                                str(r["helper_pid"])])

    def test_logs(self):
        j = self.ctl_json("logs", "--lines", "1000")
        recs = j["records"]
        self.assertTrue(any(x["message"].startswith("admin channel ready at " + self.sock)
                            for x in recs), recs[:5])
        # every record is in the log file too (same text, same level)
        text = self.log_text()
        for x in recs[-20:]:
            self.assertIn(f"[{x['module']}] {x['message']}", text)
            self.assertIn(x["level"], ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
        j = self.ctl_json("logs", "--lines", "3")
        self.assertLessEqual(len(j["records"]), 3)
        self.assertGreater(len(j["records"]), 0)
        j = self.ctl_json("logs", "--level", "warning", "--lines", "1000")
        self.assertTrue(all(x["level"] in ("WARNING", "ERROR", "CRITICAL") for x in j["records"]))
        self.assertTrue(any("kasm.example.test" in x["message"] for x in j["records"]))
        rc, out, err = self.ctl("logs", "--lines", "5")
        self.assertEqual(rc, 0, err)
        self.assertTrue(0 < len(out.splitlines()) <= 5, out)
        self.assertRegex(out.splitlines()[0],
                         r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (DEBUG|INFO|WARNING|ERROR) +\[")
        rc, _, err = self.ctl("logs", "--level", "loud")
        self.assertEqual(rc, 2)
        self.assertIn("level must be", err)
        rc, _, err = self.ctl("logs", "--lines", "0")
        self.assertEqual(rc, 2)

    def test_config(self):
        rc, out, err = self.ctl("config")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(f"# {self.cfg} (as the agent runs it)\n"), out[:200])
        body = yaml.safe_load(out)
        self.assertEqual(body["agent_jwt_token"], "<redacted>")
        self.assertEqual(body["admin_socket"], self.sock)
        self.assertEqual(body["server_id"], SERVER_ID)
        j = self.ctl_json("config")
        self.assertEqual(j["config"], self.cfg)
        self.assertEqual(yaml.safe_load(j["yaml"]), body)

    def test_usage(self):
        rc, _, err = self.ctl("frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command", err)
        rc, _, err = self.ctl("token")
        self.assertEqual(rc, 2)

    def test_unknown_command_raw(self):
        req = json.dumps({"command": "frobnicate", "args": {}}).encode()
        data = self.raw(frame(ADMIN_REQUEST, req))
        magic, ftype, length, rid = struct.unpack("<IIII", data[:16])
        self.assertEqual((magic, ftype, rid), (MAGIC_VERSION, ADMIN_REPLY, 1))
        rep = json.loads(data[16:16 + length])
        self.assertEqual(rep["status"], 2)
        self.assertIn("unknown command 'frobnicate'", rep["error"])

    # ---- hostile clients -------------------------------------------------------------------

    def assert_still_answers(self):
        j = self.ctl_json("status")
        self.assertEqual(j["pid"], self.agent.pid)

    def test_garbage_dropped(self):
        cases = [
            b"GET / HTTP/1.1\r\n\r\n",                                    # not our magic
            frame(ADMIN_REQUEST, b"", length=1 << 30),                    # oversized
            frame(ADMIN_REQUEST, b"", length=16 * 1024 + 1),              # just over the limit
            frame(HELLO, b"{}"),                                          # wrong type
            frame(ADMIN_REQUEST, b"{not json"),                           # bad JSON
            frame(ADMIN_REQUEST, json.dumps({"command": "status"}).encode()),  # no args
            frame(ADMIN_REQUEST, b"x" * 10, length=100),                  # short, then closed
        ]
        for data in cases:
            got = self.raw(data)
            self.assertEqual(got, b"", f"{data[:40]!r} got an answer {got[:80]!r}")
            self.assert_still_answers()
        self.assertIn("admin channel: dropped a client", self.log_text())

    def test_silent_client_dropped(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        t0 = time.monotonic()
        try:
            got = recv_all(s, timeout=30)  # the agent drops it after its I/O timeout (5 s)
        finally:
            s.close()
        self.assertEqual(got, b"")
        self.assertLess(time.monotonic() - t0, 29)
        self.assert_still_answers()

    # ---- exclusivity and permissions -------------------------------------------------------

    def test_second_agent_refused(self):
        cfg2 = os.path.join(self.tmp, "second.yaml")
        with open(self.cfg, encoding="utf-8") as f:
            text = f.read().replace("agent.log", "second.log")
        with open(cfg2, "w", encoding="utf-8") as f:
            f.write(text)
        p = self.start_agent(cfg2)
        try:
            rc = p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.fail("the second agent kept running")
        p.errfile.seek(0)
        err = p.errfile.read()
        p.errfile.close()
        self.assertEqual(rc, 1, err)
        self.assertIn(f"cannot create the admin channel: another agent holds {self.sock}", err)
        self.assertTrue(os.path.exists(self.sock))
        self.assert_still_answers()

    def test_permission_denied_for_other_users(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create a throwaway user")
        if not shutil.which("useradd") or not shutil.which("runuser"):
            self.skipTest("useradd/runuser missing")
        user = "kasmctl%d" % (os.getpid() % 100000)
        subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", user], check=True,
                       capture_output=True)
        pub = tempfile.mkdtemp(prefix="kasm-agentctl-pub-")
        run_dir = os.path.dirname(self.sock)
        try:
            os.chmod(pub, 0o755)
            cfg = os.path.join(pub, "config.yaml")
            with open(cfg, "w", encoding="utf-8") as f:  # readable, names the private socket
                f.write(f"admin_socket: {self.sock}\n")
            os.chmod(cfg, 0o644)
            # 1. the socket's directory (0700 root) keeps the user out
            rc, out, err = self.ctl("status", user=user, cfg=cfg)
            self.assertEqual(rc, 4, err)
            self.assertIn("permission denied", err)
            self.assertIn("run agentctl as root", err)
            self.assertEqual(out, "")
            # 2. with the permissions opened on purpose, the agent's SO_PEERCRED check refuses
            self.assertEqual(os.stat(run_dir).st_mode & 0o777, 0o700)
            self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)
            os.chmod(self.tmp, 0o711)
            os.chmod(run_dir, 0o755)
            os.chmod(self.sock, 0o666)
            # every command, each refused by the agent before it does anything
            commands = (["status", "--json"], ["sessions"], ["logs"], ["logs", "--follow"],
                        ["token", "status"], ["token", "refresh"], ["reload"], ["config"],
                        ["doctor"], ["screenshot", "--session", "1", "--out",
                                     os.path.join(pub, "shot.png")],
                        ["register", "--host", "127.0.0.1", "--token", "not-a-token"])
            results = []
            try:
                for words in commands:
                    results.append((words,) + self.ctl(*words, user=user, cfg=cfg))
            finally:
                os.chmod(self.sock, 0o600)
                os.chmod(run_dir, 0o700)
                os.chmod(self.tmp, 0o700)
            for words, rc, out, err in results:
                self.assertEqual(rc, 4, f"{words}: {err!r}")
                self.assertIn("permission denied: run agentctl as root", err, words)
                self.assertEqual(out, "", words)
            self.assertFalse(os.path.exists(os.path.join(pub, "shot.png")))
            self.wait_log("admin channel: refused a client: uid %d" % pwd.getpwnam(user).pw_uid)
            self.assert_still_answers()
        finally:
            shutil.rmtree(pub, ignore_errors=True)
            subprocess.run(["userdel", user], capture_output=True)

    # ---- last: stop, stale socket, not running ---------------------------------------------

    def test_zz_stop_stale_and_not_running(self):
        cls = type(self)
        cls.agent.send_signal(signal.SIGTERM)
        self.assertEqual(cls.agent.wait(timeout=TIMEOUT), 0)
        cls.agent.errfile.close()
        self.assertFalse(os.path.exists(self.sock), "the socket outlived the agent")
        rc, out, err = self.ctl("status")
        self.assertEqual(rc, 3)
        self.assertIn("the agent is not running", err)
        # a stale socket (nobody listening) is reported, then replaced by the next agent
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.sock)
        s.close()
        rc, out, err = self.ctl("status")
        self.assertEqual(rc, 3)
        self.assertIn("nobody listens", err)
        cls.agent = self.start_agent(self.cfg)
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            rc, out, err = self.ctl("status", "--json")
            if rc == 0:
                break
            self.assertIsNone(cls.agent.poll(), "the agent did not start over a stale socket")
            time.sleep(0.1)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["pid"], cls.agent.pid)


def main():
    global BIN_DIR, VERSION
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--version-file",
                    default=os.path.join(os.path.dirname(__file__), "..", "..", "VERSION"))
    a, rest = ap.parse_known_args()
    BIN_DIR = os.path.abspath(a.bin_dir)
    with open(a.version_file, encoding="utf-8") as f:
        VERSION = f.readline().strip()
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
