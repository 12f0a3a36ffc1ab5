#!/usr/bin/python3
"""test_agentctl_misc.py - agentctl screenshot, logs --follow and the status additions.

A real agent (the test_api Agent fixture: its own TLS certificate made here, its own admin
socket) with three declared sessions of this user: 1 with an Xvfb display (-noreset), 2 with
none, 3 of a user that does not exist (its helper cannot start: an error record every restart).
Checked:
  - screenshot: the PNG's IHDR width/height against --width and the screen, --json fields,
    an unknown session (exit 2, the known sessions listed), a session without display (exit 6,
    the helper's message), no file and no temp file left on failure, an existing file kept;
    a fake agent that announces more bytes than it sends, or too many: exit 5, nothing written;
  - logs --follow: sees a record logged after it started, --level filters, --json one object
    per line, exits 0 on SIGTERM and on SIGINT; the raw `logs follow` command reports records
    missed when the ring wrapped; a fake agent's "missed" is printed;
  - status: cert_subject/cert_expires of the certificate made here, uploads_in_flight while an
    upload hangs mid-body, errors_last_hour against the error records of the log ring.

Usage: test_agentctl_misc.py --bin-dir DIR [unittest args]
"""
import datetime
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import faulthandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_api  # noqa: E402  (the Agent fixture, keys and tokens)
import xvfb  # noqa: E402
from test_api import Agent, pem_private, pem_public, rsa_key, user_token  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

TIMEOUT = 30
MAGIC_VERSION = (0x4B41 << 16) | 1
ADMIN_REQUEST, ADMIN_REPLY, DATA, END = 64, 65, 5, 6
CERT_CN = "agentctl-misc.example"
CERT_NOT_AFTER = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
BIN_DIR = None


def frame(ftype, payload, rid=1):
    return struct.pack("<IIII", MAGIC_VERSION, ftype, len(payload), rid) + payload


def make_cert(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_CN),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kasm Test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
            .not_valid_after(CERT_NOT_AFTER)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class FakeAgent:
    """A Unix socket that answers each connection with the scripted bytes of `replies`
    (one item per connection, the last one repeated)."""

    def __init__(self, path, replies):
        self.replies = replies
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(path)
        self.s.listen(4)
        self.requests = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        n = 0
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            with c:
                c.settimeout(TIMEOUT)
                hdr = c.recv(16, socket.MSG_WAITALL)
                length = struct.unpack("<IIII", hdr)[2]
                self.requests.append(json.loads(c.recv(length, socket.MSG_WAITALL)))
                c.sendall(self.replies[min(n, len(self.replies) - 1)])
                n += 1

    def close(self):
        self.s.close()


def reply(result, status=0, error=""):
    return frame(ADMIN_REPLY, json.dumps({"status": status, "error": error,
                                          "result": result}).encode())


class AgentctlMiscTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kasm-ctlmisc-")
        os.chmod(cls.tmp, 0o755)
        cls.user = pwd.getpwuid(os.geteuid()).pw_name
        os.environ.pop("DISPLAY", None)  # session 2's helper must find no display
        os.environ["KASM_SESSION_POLL_MS"] = "200"
        cls.xvfb = None
        display = ""
        if shutil.which("Xvfb"):
            cls.xvfb, num = xvfb.start(noreset=True)
            display = f" display={num}"
        sessions = os.path.join(cls.tmp, "sessions.txt")
        with open(sessions, "w", encoding="utf-8") as f:
            f.write(f"1 {cls.user} console{display}\n2 {cls.user}\n3 no-such-user-kasm\n")
        cls.jwt_key = rsa_key()
        server_key = rsa_key()
        helper = os.path.join(BIN_DIR, "session_helper")
        cls.agent = Agent(cls.tmp, "a", pem_public(cls.jwt_key),
                          extra=f"session_helper: {helper}\nsessions_file: {sessions}\n",
                          server_key=pem_private(server_key), server_cert=make_cert(server_key))
        cls.sock = os.path.join(cls.agent.dir, "admin.sock")
        end = time.monotonic() + TIMEOUT
        while not ("session 1 (" in cls.agent.log() and "session 2 (" in cls.agent.log()
                   and cls.agent.log().count("is ready (HELLO") >= 2):
            if time.monotonic() > end:
                raise AssertionError("helpers not ready:\n" + cls.agent.log()[-3000:])
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        xvfb.stop(cls.xvfb)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ctl(self, *args, cfg=None):
        p = subprocess.run([os.path.join(BIN_DIR, "agentctl")] + list(args) +
                           ["--cfg", cfg or self.agent.cfg], capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def ctl_json(self, *args):
        rc, out, err = self.ctl(*args, "--json")
        self.assertEqual(rc, 0, f"{args}: exit {rc}, stderr {err!r}")
        return json.loads(out)

    def raw(self, command, args):
        req = json.dumps({"command": command, "args": args}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(self.sock)
            s.sendall(frame(ADMIN_REQUEST, req))
            hdr = s.recv(16, socket.MSG_WAITALL)
            length = struct.unpack("<IIII", hdr)[2]
            return json.loads(s.recv(length, socket.MSG_WAITALL))

    def poke(self):
        """Makes the agent log a warning: a client that sends garbage is dropped."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(self.sock)
            s.sendall(b"this is not a frame at all")
            try:
                s.recv(16)  # the agent closes the connection
            except ConnectionResetError:
                pass

    def out_dir(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        return d

    # ---- screenshot ------------------------------------------------------------------------

    def test_screenshot_png(self):
        if not self.xvfb:
            self.skipTest("no Xvfb")
        d = self.out_dir("shot")
        out = os.path.join(d, "desk.png")
        j = self.ctl_json("screenshot", "--session", "1", "--out", out, "--width", "320")
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(png_size(data), (320, 240))
        self.assertEqual(j, {"session": 1, "width": 320, "height": 240, "bytes": len(data),
                             "file": out})
        # no --width: the screen's own size (never wider); an existing file is replaced
        rc, text, err = self.ctl("screenshot", "--session", "1", "--out", out)
        self.assertEqual(rc, 0, err)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(png_size(data), (640, 480))
        self.assertEqual(text, f"session 1: 640x480 PNG, {len(data)} bytes written to {out}\n")
        self.assertEqual(os.listdir(d), ["desk.png"])  # no temp file left
        self.assertIn("agentctl screenshot of session 1: 640x480", self.agent.log())

    def test_screenshot_unknown_session(self):
        d = self.out_dir("unknown")
        out = os.path.join(d, "x.png")
        rc, text, err = self.ctl("screenshot", "--session", "99", "--out", out)
        self.assertEqual(rc, 2, err)
        self.assertIn("there is no session 99", err)
        for known in (f" 1 ({self.user})", f" 2 ({self.user})", " 3 (no-such-user-kasm)"):
            self.assertIn(known, err)
        self.assertEqual(text, "")
        self.assertEqual(os.listdir(d), [])

    def test_screenshot_no_helper_and_no_display(self):
        d = self.out_dir("nodisp")
        out = os.path.join(d, "keep.png")
        with open(out, "wb") as f:
            f.write(b"old contents")
        rc, text, err = self.ctl("screenshot", "--session", "2", "--out", out, "--json")
        self.assertEqual(rc, 6, err)
        self.assertIn("no display", err)  # the helper's own message
        self.assertIn("(503)", err)
        self.assertEqual(text, "")
        rc, text, err = self.ctl("screenshot", "--session", "3", "--out", out)
        self.assertEqual(rc, 6, err)
        self.assertIn("session 3 has no running session helper", err)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"old contents")
        self.assertEqual(os.listdir(d), ["keep.png"])

    def test_screenshot_usage(self):
        for args in (["screenshot", "--session", "1"], ["screenshot", "--out", "x.png"],
                     ["screenshot", "--session", "1", "--out", "x", "--width", "5"],
                     ["screenshot", "--session", "x", "--out", "x"],
                     ["status", "--session", "1"], ["status", "--follow"]):
            rc, _, err = self.ctl(*args)
            self.assertEqual(rc, 2, f"{args}: {err!r}")

    def test_screenshot_short_or_oversized_stream_leaves_nothing(self):
        d = self.out_dir("fake")
        sock = os.path.join(d, "fake.sock")
        cfg = os.path.join(d, "fake.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(f"admin_socket: {sock}\n")
        out = os.path.join(d, "out.png")
        head = {"session": 1, "width": 2, "height": 2}
        cases = [
            # announces 1000 bytes, sends 300 and closes
            (reply(dict(head, bytes=1000)) + frame(DATA, b"\x89PNG" + b"x" * 296), 5,
             "closed the connection"),
            # announces 10 bytes, sends 20
            (reply(dict(head, bytes=10)) + frame(DATA, b"y" * 20) + frame(END, b""), 5,
             "more than the 10 bytes"),
            # announces more than agentctl accepts
            (reply(dict(head, bytes=65 * 1024 * 1024)), 5, "at most"),
            # an error reply: its status is the exit code
            (reply({}, 6, "screenshot: no display"), 6, "no display"),
        ]
        for data, code, msg in cases:
            fake = FakeAgent(sock, [data])
            try:
                rc, text, err = self.ctl("screenshot", "--session", "1", "--out", out, cfg=cfg)
            finally:
                fake.close()
                os.unlink(sock)
            self.assertEqual(rc, code, err)
            self.assertIn(msg, err)
            self.assertEqual(fake.requests[0], {"command": "screenshot",
                                                "args": {"session": 1}})
            self.assertEqual(sorted(os.listdir(d)), ["fake.yaml"], err)

    def test_screenshot_many_data_frames(self):
        """A several-frame image (a fake agent: Xvfb's black screen compresses to one frame)."""
        d = self.out_dir("fakebig")
        sock = os.path.join(d, "fake.sock")
        cfg = os.path.join(d, "fake.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(f"admin_socket: {sock}\n")
        img = os.urandom(3 * 256 * 1024 + 12345)
        data = reply({"session": 4, "width": 1920, "height": 1080, "bytes": len(img)})
        for off in range(0, len(img), 256 * 1024):
            data += frame(DATA, img[off:off + 256 * 1024])
        fake = FakeAgent(sock, [data + frame(END, b"")])
        out = os.path.join(d, "big.png")
        try:
            rc, text, err = self.ctl("screenshot", "--session", "4", "--width", "1920", "--out",
                                     out, "--json", cfg=cfg)
        finally:
            fake.close()
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(text), {"session": 4, "width": 1920, "height": 1080,
                                            "bytes": len(img), "file": out})
        with open(out, "rb") as f:
            self.assertEqual(f.read(), img)
        self.assertEqual(fake.requests[0]["args"], {"session": 4, "width": 1920})

    # ---- logs --follow ---------------------------------------------------------------------

    def follow(self, *args):
        p = subprocess.Popen([os.path.join(BIN_DIR, "agentctl"), "logs", "--follow", *args,
                              "--cfg", self.agent.cfg], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        lines = []

        def read():
            for line in p.stdout:
                lines.append(line)
        t = threading.Thread(target=read, daemon=True)
        t.start()
        return p, lines, t

    def wait_line(self, p, lines, needle):
        end = time.monotonic() + TIMEOUT
        while not any(needle in x for x in lines):
            if p.poll() is not None:
                self.fail(f"agentctl exited ({p.returncode}): {p.stderr.read()!r}")
            self.assertLess(time.monotonic(), end, f"{needle!r} not followed: {lines[-5:]!r}")
            time.sleep(0.05)

    def stop(self, p, t, sig):
        p.send_signal(sig)
        rc = p.wait(timeout=TIMEOUT)
        t.join(timeout=TIMEOUT)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        return rc, err

    def test_logs_follow_sees_new_records_and_stops_on_sigterm(self):
        p, lines, t = self.follow("--lines", "1", "--level", "warning")
        try:
            end = time.monotonic() + TIMEOUT
            # it polls: wait for a second request to have been made, then log something
            while self.agent.log().count("admin channel: command 'logs follow'") < 2:
                self.assertLess(time.monotonic(), end)
                time.sleep(0.05)
            self.poke()
            self.wait_line(p, lines, "admin channel: dropped a client")
        finally:
            rc, err = self.stop(p, t, signal.SIGTERM)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        for x in lines:
            if x.startswith("--"):
                continue
            self.assertRegex(x, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (WARNING|ERROR|CRITICAL) +\[")
        # each record once
        self.assertEqual(len(lines), len(set(lines)), lines)

    def test_logs_follow_json_and_sigint(self):
        p, lines, t = self.follow("--json", "--lines", "3")
        try:
            self.wait_line(p, lines, "command 'logs follow'")  # a debug record of its own
            self.poke()
            self.wait_line(p, lines, "dropped a client")
        finally:
            rc, err = self.stop(p, t, signal.SIGINT)
        self.assertEqual(rc, 0, err)
        recs = [json.loads(x) for x in lines]
        seqs = [r["seq"] for r in recs if "seq" in r]
        self.assertEqual(seqs, sorted(set(seqs)))
        for r in recs:
            if "seq" in r:
                self.assertEqual(set(r), {"seq", "time", "time_ms", "time_text", "level",
                                          "module", "message"})
        self.assertTrue(any(r.get("level") == "DEBUG" for r in recs))

    def test_logs_follow_reports_missed_records(self):
        first = self.raw("logs follow", {"lines": 1})
        self.assertEqual(first["status"], 0, first)
        start = first["result"]["next"]
        self.assertEqual(first["result"]["missed"], 0)
        # more records than the ring holds (1000): garbage clients, one warning each
        r = self.raw("logs follow", {"after": start, "level": "warning"})
        while r["result"]["last"] - start < 1100:
            for _ in range(50):
                self.poke()
            r = self.raw("logs follow", {"after": start, "level": "warning"})
        res = r["result"]
        self.assertGreater(res["missed"], 0)
        recs = res["records"]
        self.assertTrue(recs and all(x["level"] in ("WARNING", "ERROR", "CRITICAL")
                                     for x in recs))
        self.assertGreaterEqual(recs[0]["seq"], start + res["missed"] + 1)
        bad = self.raw("logs follow", {"after": -1})
        self.assertEqual(bad["status"], 2)
        # agentctl prints the missed count (a fake agent that says so)
        d = self.out_dir("fakelogs")
        sock = os.path.join(d, "fake.sock")
        cfg = os.path.join(d, "fake.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(f"admin_socket: {sock}\n")
        rec = {"seq": 50, "time": 0, "time_ms": 0, "time_text": "1970-01-01 00:00:00 UTC",
               "level": "INFO", "module": "x", "message": "after the gap"}
        fake = FakeAgent(sock, [reply({"records": [], "next": 7, "last": 7, "missed": 0}),
                                reply({"records": [rec], "next": 50, "last": 50,
                                       "missed": 42}),
                                reply({"records": [], "next": 50, "last": 50, "missed": 0})])
        p = subprocess.Popen([os.path.join(BIN_DIR, "agentctl"), "logs", "--follow", "--cfg",
                              cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        t = threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True)
        try:
            t.start()
            end = time.monotonic() + TIMEOUT
            while len(fake.requests) < 3:
                self.assertLess(time.monotonic(), end, fake.requests)
                time.sleep(0.05)
        finally:
            rc, err = self.stop(p, t, signal.SIGTERM)
            fake.close()
        self.assertEqual(rc, 0, err)
        self.assertEqual(fake.requests[1]["args"], {"after": 7})
        self.assertEqual(fake.requests[2]["args"], {"after": 50})
        self.assertEqual(lines[:2], [
            "-- 42 record(s) missed: the agent's log ring wrapped between two requests --\n",
            "1970-01-01 00:00:00 UTC INFO     [x] after the gap\n"])

    # ---- status ----------------------------------------------------------------------------

    def test_status_certificate_uploads_errors(self):
        j = self.ctl_json("status")
        self.assertEqual(j["cert_path"], self.agent.cert_path)
        self.assertIn(f"CN={CERT_CN}", j["cert_subject"])
        self.assertIn("O=Kasm Test", j["cert_subject"])
        self.assertEqual(j["cert_expires"], int(CERT_NOT_AFTER.timestamp()))
        self.assertEqual(j["cert_expires_text"], "2031-05-06 07:08:09 UTC")
        self.assertFalse(j["cert_expired"])
        self.assertIsNone(j["cert_error"])
        self.assertEqual(j["uploads_in_flight"], 0)
        rc, out, err = self.ctl("status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rf"certificate +.*CN={CERT_CN}.*, expires 2031-05-06 07:08:09 UTC "
                              r"\(in \d+ d \d+ h\)\n")
        self.assertRegex(out, r"uploads +0 in flight\n")
        self.assertRegex(out, r"errors +\d+ in the last hour")

        # errors: session 3's helper cannot start, an error record at each attempt; the count
        # is at least the error lines the agent had printed before, and the agent prints as
        # many eventually (its output is read by a thread: it may lag)
        def printed_errors():
            return len(re.findall(r"Z (ERROR|CRITICAL) +\[", self.agent.log()))
        end = time.monotonic() + TIMEOUT
        while "cannot start the session helper" not in self.agent.log():
            self.assertLess(time.monotonic(), end, "no error record")
            time.sleep(0.1)
        before = printed_errors()
        count = self.ctl_json("status")["errors_last_hour"]
        self.assertGreaterEqual(count, max(before, 1))
        end = time.monotonic() + TIMEOUT
        while printed_errors() < count:
            self.assertLess(time.monotonic(), end, (count, printed_errors()))
            time.sleep(0.1)

        # an upload that stops mid-body is in flight until its connection closes
        token = user_token(self.jwt_key, system_username=self.user)
        c = self.agent.conn()
        c.putrequest("POST", "/upload")
        c.putheader("Authorization", "Bearer " + token)
        c.putheader("Content-Type", "multipart/form-data; boundary=xyz")
        c.putheader("Content-Length", "100000")
        c.endheaders()
        c.send(b"--xyz\r\n")
        try:
            end = time.monotonic() + TIMEOUT
            while self.ctl_json("status")["uploads_in_flight"] != 1:
                self.assertLess(time.monotonic(), end, "the upload is not counted")
                time.sleep(0.1)
        finally:
            c.close()
        end = time.monotonic() + 60
        while self.ctl_json("status")["uploads_in_flight"] != 0:
            self.assertLess(time.monotonic(), end, "the upload is still counted")
            time.sleep(0.2)


def main():
    global BIN_DIR
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--bin-dir":
        sys.exit("usage: test_agentctl_misc.py --bin-dir DIR [unittest args]")
    BIN_DIR = os.path.abspath(args[1])
    test_api.BIN_DIR = BIN_DIR
    faulthandler.dump_traceback_later(250, exit=True)
    unittest.main(argv=[sys.argv[0], "-v"] + args[2:])


if __name__ == "__main__":
    main()
