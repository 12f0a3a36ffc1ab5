#!/usr/bin/python3
"""test_helper_routes.py - /upload, /Downloads/Downloads/ and /screenshot routed through the
session helpers (service/api/transfer_routes.c, screenshot.c, helper_client.c) end to end: the
real agent with a declared-sessions file (sessions_file) and the real session_helper.

As root: two throwaway users (useradd -m, removed afterwards) with one declared session each;
each helper runs as its user, so its Downloads folder is that user's ~/Downloads and an
uploaded file is owned by the user (st_uid), never by root. Not as root: both sessions are
this user, and HOME points to a temp folder (the helper's ~/Downloads is a temp folder).

Checks: both helpers use the shared window (HELLO and their log); a 3-chunk upload lands in the JWT system_username's Downloads (the '@domain' part
dropped; with two sessions, each token reaches its own user); listing (byte-identical to the
fallback path's listing of the same files), Range 206, 416, HEAD, If-Modified-Since 304, 301
and 404 through the helper; multi_user false + an unknown user -> the console session's
helper; multi_user true + an unknown user -> 503 naming the user, nothing written anywhere;
no session at all -> the upload_dir/download_dir fallback; screenshot -> 503 with the
helper's message when its session has no DISPLAY, 503 "No user session..." without helpers,
and (when Xvfb is installed) a PNG of the requested width from a session with display=:N.

Usage: test_helper_routes.py --bin-dir DIR [unittest options]
"""
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_api  # noqa: E402  (the Agent fixture, keys and tokens)
import xvfb  # noqa: E402
from test_api import (Agent, error_of, pem_private, pem_public, rsa_key,  # noqa: E402
                      self_signed, user_token)
from test_transfer import BOUNDARY, dz_fields, multipart  # noqa: E402

READY_RE = re.compile(r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready")
TIMEOUT = 30
ROOT = os.geteuid() == 0


class Users:
    """Two session users: throwaway accounts as root, else this user twice (HOME = tmp)."""

    def __init__(self, tmp):
        self.made = []
        self.old_home = os.environ.get("HOME")
        if ROOT:
            for tag in ("a", "b"):
                name = "khr" + secrets.token_hex(3) + tag
                subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True,
                               capture_output=True)
                self.made.append(name)
            self.names = list(self.made)
            self.homes = [pwd.getpwnam(n).pw_dir for n in self.names]
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            home = os.path.join(tmp, "home")
            os.makedirs(home)
            os.environ["HOME"] = home  # the agent passes it on to its helpers
            self.names = [me, me]
            self.homes = [home, home]
        # the helpers must not find a display (the screenshot check wants the 503)
        os.environ.pop("DISPLAY", None)
        os.environ.pop("XDG_CONFIG_HOME", None)
        os.environ["KASM_SESSION_POLL_MS"] = "200"

    def downloads(self, i):
        return os.path.join(self.homes[i], "Downloads")

    def uid(self, i):
        return pwd.getpwnam(self.names[i]).pw_uid

    def cleanup(self):
        for name in self.made:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
            subprocess.run(["userdel", "-r", name], capture_output=True)
        if self.old_home is not None:
            os.environ["HOME"] = self.old_home


def write_sessions(path, lines):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(path + ".tmp", path)


def start_agent(tmp, name, jwt_key, sessions_file, extra=""):
    server_key = rsa_key()
    helper = os.path.join(os.path.abspath(test_api.BIN_DIR), "session_helper")
    return Agent(tmp, name, pem_public(jwt_key),
                 extra=f"session_helper: {helper}\nsessions_file: {sessions_file}\n" + extra,
                 server_key=pem_private(server_key), server_cert=self_signed(server_key))


def wait_ready(agent, count):
    """Waits until `count` different sessions have a ready helper."""
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        sids = {m.group(1) for m in READY_RE.finditer(agent.log())}
        if len(sids) >= count:
            return
        if agent.proc.poll() is not None:
            raise AssertionError(f"agent exited with {agent.proc.returncode}:\n{agent.log()}")
        time.sleep(0.05)
    raise AssertionError(f"{count} helpers not ready within {TIMEOUT} s:\n{agent.log()[-4000:]}")


def upload(agent, token, filename, data, pieces=3):
    """A Dropzone upload in `pieces` chunks; returns the (status, body) of each chunk."""
    dzuuid = str(uuid.uuid4())
    size = -(-len(data) // pieces)
    out = []
    for i in range(pieces):
        off = i * size
        body = multipart(dz_fields(dzuuid, i, len(data), size, off, pieces), filename,
                         data[off:off + size])
        status, _, payload = agent.request(
            "POST", "/upload", token, body=body,
            headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY})
        out.append((status, payload))
        if status != 200:
            break
    return out


class HelperRoutesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kasm-hroutes-")
        os.chmod(cls.tmp, 0o755)
        cls.users = Users(cls.tmp)
        cls.jwt_key = rsa_key()
        cls.sessions = os.path.join(cls.tmp, "sessions")
        write_sessions(cls.sessions, [f"1 {cls.users.names[0]} console",
                                      f"2 {cls.users.names[1]}"])
        cls.empty_sessions = os.path.join(cls.tmp, "no-sessions")
        write_sessions(cls.empty_sessions, ["# nobody is logged on"])
        cls.agents = []
        # single-user (multi_user false): unknown users fall back to the console session
        cls.single = start_agent(cls.tmp, "single", cls.jwt_key, cls.sessions,
                                 "multi_user: false\nmax_concurrent_uploads: 3\n")
        cls.agents.append(cls.single)
        wait_ready(cls.single, 2)

    @classmethod
    def tearDownClass(cls):
        rcs = [a.stop() for a in cls.agents]
        cls.users.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if any(rcs):
            raise AssertionError(f"agent exit codes {rcs}")

    def token(self, i=None, name=None):
        user = name if name is not None else self.users.names[i]
        return user_token(self.jwt_key, system_username=f"{user}@corp.example")

    def assert_owned(self, path, i):
        st = os.stat(path)
        self.assertEqual(st.st_uid, self.users.uid(i), f"{path} is owned by uid {st.st_uid}")

    # --- uploads ---

    def test_upload_three_chunks_to_users_downloads(self):
        data = os.urandom(300_000)
        for i in (0, 1):
            with self.subTest(user=i):
                name = f"three-{i}.bin"
                res = upload(self.single, self.token(i), name, data)
                self.assertEqual(res, [(200, b"uploaded Chunk")] * 3)
                path = os.path.join(self.users.downloads(i), name)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), data)
                self.assert_owned(path, i)
                self.assertFalse(os.path.exists(os.path.join(self.single.dir, "up", name)),
                                 "the fallback folder got the file too")
        if ROOT:  # two users: each token reached its own user's helper only
            self.assertFalse(os.path.exists(os.path.join(self.users.downloads(1), "three-0.bin")))
            self.assertFalse(os.path.exists(os.path.join(self.users.downloads(0), "three-1.bin")))

    def test_uploads_use_the_shared_window(self):
        # both sides agreed on the 4 MiB window at HELLO, and each helper mapped it
        text = self.single.log()
        ready = re.findall(r"helper pid \d+ is ready \([^\n]*shared window (\d+) KiB\)", text)
        self.assertTrue(ready, "no helper-ready line")
        self.assertEqual(set(ready), {"4096"}, "a helper without the shared window")
        self.assertGreaterEqual(
            text.count("uploads arrive through the service's shared window (4096 KiB)"), 2,
            "the helpers did not both map the shared window")

    def test_upload_cap_reaches_the_helpers(self):
        # max_concurrent_uploads is the helper's cap now: it must be on their command line
        pids = {m.group(3) for m in READY_RE.finditer(self.single.log())}
        self.assertTrue(pids)
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except FileNotFoundError:
                continue  # restarted since; the new one is checked by its own line
            self.assertIn(b"--max-uploads", args)
            self.assertEqual(args[args.index(b"--max-uploads") + 1], b"3")

    def test_upload_errors_come_from_the_helper(self):
        data = b"x" * 1000
        self.assertEqual(upload(self.single, self.token(0), "dup.bin", data),
                         [(200, b"uploaded Chunk")] * 3)
        res = upload(self.single, self.token(0), "dup.bin", data)
        self.assertEqual(res[0][0], 400, res)  # an existing file is refused at chunk 0
        self.assertIn("exists", error_of(res[0][1]))
        res = upload(self.single, self.token(0), "../evil.bin", data, pieces=1)
        self.assertNotEqual(res[0][0], 200, res)
        self.assertFalse(os.path.exists(os.path.join(self.users.homes[0], "evil.bin")))

    def test_unknown_user_single_user_goes_to_console_session(self):
        res = upload(self.single, self.token(name="nosuchuser"), "console.bin", b"c" * 3000)
        self.assertEqual(res, [(200, b"uploaded Chunk")] * 3)
        path = os.path.join(self.users.downloads(0), "console.bin")  # session 1 is the console
        self.assertTrue(os.path.exists(path))
        self.assert_owned(path, 0)

    # --- downloads ---

    def test_listing_and_ranges_via_helper(self):
        down = self.users.downloads(0)
        data = bytes(range(256)) * 40
        sub = os.path.join(down, "sub dir")
        os.makedirs(sub, exist_ok=True)
        for p, content in ((os.path.join(down, "report.txt"), data),
                           (os.path.join(sub, "inner.bin"), b"inner")):
            with open(p, "wb") as f:
                f.write(content)
            os.utime(p, (1700000000, 1700000000))
        if ROOT:
            for p in (sub, os.path.join(down, "report.txt"), os.path.join(sub, "inner.bin")):
                os.chown(p, self.users.uid(0), -1)
        tok = self.token(0)
        a = self.single
        status, h, body = a.request("GET", "/Downloads/Downloads/report.txt", tok)
        self.assertEqual((status, body), (200, data))
        self.assertEqual(h["content-length"], str(len(data)))
        self.assertTrue(h["content-type"].startswith("text/plain"), h)
        self.assertEqual(h["accept-ranges"], "bytes")
        lm = h["last-modified"]
        self.assertEqual(lm, "Tue, 14 Nov 2023 22:13:20 GMT")
        status, h, body = a.request("GET", "/Downloads/Downloads/report.txt", tok,
                                    headers={"Range": "bytes=100-1099"})
        self.assertEqual((status, body), (206, data[100:1100]))
        self.assertEqual(h["content-range"], f"bytes 100-1099/{len(data)}")
        status, h, body = a.request("GET", "/Downloads/Downloads/report.txt", tok,
                                    headers={"Range": "bytes=-10"})
        self.assertEqual((status, body), (206, data[-10:]))
        status, h, _ = a.request("GET", "/Downloads/Downloads/report.txt", tok,
                                 headers={"Range": f"bytes={len(data)}-"})
        self.assertEqual(status, 416)
        self.assertEqual(h["content-range"], f"bytes */{len(data)}")
        status, h, body = a.request("HEAD", "/Downloads/Downloads/report.txt", tok)
        self.assertEqual((status, body, h["content-length"]), (200, b"", str(len(data))))
        status, h, body = a.request("GET", "/Downloads/Downloads/report.txt", tok,
                                    headers={"If-Modified-Since": lm})
        self.assertEqual((status, body), (304, b""))
        status, h, _ = a.request("GET", "/Downloads/Downloads/sub%20dir?show_hidden=1", tok)
        self.assertEqual(status, 301)
        self.assertEqual(h["location"], "/Downloads/Downloads/sub%20dir/?show_hidden=1")
        status, _, body = a.request("GET", "/Downloads/Downloads/sub%20dir/inner.bin", tok)
        self.assertEqual((status, body), (200, b"inner"))
        status, _, body = a.request("GET", "/Downloads/Downloads/nope.txt", tok)
        self.assertEqual((status, error_of(body)), (404, "Not found"))
        status, _, body = a.request("GET", "/Downloads/Downloads/..%2f..%2fetc/passwd", tok)
        self.assertEqual(status, 404)
        status, h, listing = a.request("GET", "/Downloads/Downloads/sub%20dir/", tok)
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertIn(b'<a href="inner.bin">inner.bin</a>', listing)
        status, h, body = a.request("HEAD", "/Downloads/Downloads/sub%20dir/", tok)
        self.assertEqual((status, body), (200, b""))

        # The same tree served by the fallback path (an agent without sessions): the same
        # bytes, statuses and headers (but Date).
        fb = self.fallback_agent()
        fdown = os.path.join(fb.dir, "down")
        shutil.rmtree(fdown)
        shutil.copytree(sub, os.path.join(fdown, "sub dir"), copy_function=shutil.copy2)
        shutil.copy2(os.path.join(down, "report.txt"), os.path.join(fdown, "report.txt"))
        os.utime(os.path.join(fdown, "sub dir"), (os.stat(sub).st_mtime,) * 2)
        for path, hdrs in (("/Downloads/Downloads/sub%20dir/", {}),
                           ("/Downloads/Downloads/sub%20dir/?show_hidden=1", {}),
                           ("/Downloads/Downloads/report.txt", {"Range": "bytes=5-20"}),
                           ("/Downloads/Downloads/report.txt", {"Range": "bytes=99999-"}),
                           ("/Downloads/Downloads/report.txt", {"If-Modified-Since": lm}),
                           ("/Downloads/Downloads/sub%20dir", {}),
                           ("/Downloads/Downloads/missing", {})):
            with self.subTest(path=path, headers=hdrs):
                s1, h1, b1 = a.request("GET", path, tok, headers=hdrs)
                s2, h2, b2 = fb.request("GET", path, tok, headers=hdrs)
                h1.pop("date", None)
                h2.pop("date", None)
                self.assertEqual((s1, h1, b1), (s2, h2, b2))

    def fallback_agent(self):
        if not hasattr(type(self), "_fallback"):
            fb = start_agent(self.tmp, "fallback", self.jwt_key, self.empty_sessions)
            self.agents.append(fb)
            type(self)._fallback = fb
        return type(self)._fallback

    def test_no_session_falls_back_to_folders(self):
        fb = self.fallback_agent()
        data = os.urandom(5000)
        self.assertEqual(upload(fb, self.token(0), "fallback.bin", data),
                         [(200, b"uploaded Chunk")] * 3)
        with open(os.path.join(fb.dir, "up", "fallback.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertFalse(os.path.exists(os.path.join(self.users.downloads(0), "fallback.bin")))
        status, _, body = fb.request("POST", "/screenshot?width=300", self.token(0))
        self.assertEqual(status, 503)
        self.assertIn("No user session", error_of(body))

    # --- multi_user: true ---

    def test_multi_user_without_a_session_of_that_user(self):
        if not hasattr(type(self), "_multi"):
            m = start_agent(self.tmp, "multi", self.jwt_key, self.sessions,
                            "multi_user: true\nuser_sso: true\n")
            self.agents.append(m)
            wait_ready(m, 2)
            type(self)._multi = m
        m = type(self)._multi
        res = upload(m, self.token(name="nosuchuser"), "stray.bin", b"s" * 3000)
        self.assertEqual(res[0][0], 503, res)
        self.assertIn("nosuchuser", error_of(res[0][1]))
        self.assertEqual(os.listdir(os.path.join(m.dir, "up")), [])
        for i in (0, 1):
            self.assertFalse(os.path.exists(os.path.join(self.users.downloads(i), "stray.bin")))
        status, _, body = m.request("GET", "/Downloads/Downloads/", self.token(name="nosuchuser"))
        self.assertEqual(status, 503)
        self.assertIn("nosuchuser", error_of(body))
        status, _, body = m.request("POST", "/screenshot", self.token(name="nosuchuser"))
        self.assertEqual(status, 503)
        # a user with a session still gets their own helper
        res = upload(m, self.token(1), "multi-ok.bin", b"m" * 3000)
        self.assertEqual(res, [(200, b"uploaded Chunk")] * 3)
        self.assert_owned(os.path.join(self.users.downloads(1), "multi-ok.bin"), 1)

    # --- screenshots ---

    def test_screenshot_without_display_is_503_from_helper(self):
        status, _, body = self.single.request("POST", "/screenshot?width=300", self.token(0))
        self.assertEqual(status, 503, body)
        msg = error_of(body)
        self.assertNotIn("No user session", msg)  # the helper's own message
        status, _, body = self.single.request("POST", "/screenshot?width=5", self.token(0))
        self.assertEqual(status, 400)  # width validation stays first

    def test_screenshot_png_from_helper_under_xvfb(self):
        if not shutil.which("Xvfb"):
            self.skipTest("no Xvfb")
        x, num = xvfb.start()
        try:
            shot_sessions = os.path.join(self.tmp, "shot-sessions")
            write_sessions(shot_sessions, [f"7 {self.users.names[0]} console display={num}"])
            a = start_agent(self.tmp, "shot", self.jwt_key, shot_sessions)
            self.agents.append(a)
            wait_ready(a, 1)
            status, h, body = a.request("POST", "/screenshot?width=300", self.token(0))
            self.assertEqual(status, 200, body[:200])
            self.assertEqual(h["content-type"], "image/png")
            self.assertEqual(h["content-length"], str(len(body)))
            self.assertEqual(body[:8], b"\x89PNG\r\n\x1a\n")
            self.assertEqual(int.from_bytes(body[16:20], "big"), 300)  # IHDR width
            self.assertGreater(int.from_bytes(body[20:24], "big"), 0)
        finally:
            xvfb.stop(x)

    def test_big_download_sha256(self):
        down = self.users.downloads(1)
        data = os.urandom(8 << 20)
        p = os.path.join(down, "big.bin")
        with open(p, "wb") as f:
            f.write(data)
        if ROOT:
            os.chown(p, self.users.uid(1), -1)
        c = self.single.conn()
        try:
            c.request("GET", "/Downloads/Downloads/big.bin",
                      headers={"Authorization": "Bearer " + self.token(1)})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            got = hashlib.sha256(r.read()).hexdigest()
        finally:
            c.close()
        self.assertEqual(got, hashlib.sha256(data).hexdigest())


def main():
    args = sys.argv[1:]
    if "--bin-dir" not in args or args.index("--bin-dir") + 1 >= len(args):
        sys.exit("usage: test_helper_routes.py --bin-dir DIR [unittest options]")
    i = args.index("--bin-dir")
    test_api.BIN_DIR = args[i + 1]
    del args[i:i + 2]
    if not os.path.exists(os.path.join(test_api.BIN_DIR, "session_helper")):
        print("skipped: no session_helper in", test_api.BIN_DIR)
        return 77
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
