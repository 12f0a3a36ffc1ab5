#!/usr/bin/python3
"""test_transfer.py - POST /upload and GET /Downloads/Downloads/[path] end to end.

Starts the real agent (the Agent fixture of test_api.py: 127.0.0.1, port 0, temp config and
keys) and drives it over TLS with Dropzone-style chunked multipart uploads, the exact HTML
listing, downloads with Range / If-Modified-Since, traversal attempts and a hostile file name
corpus. Under Wine (--wine-run) only the small round trip runs.

Usage: test_transfer.py --bin-dir DIR | --wine-run WINE_RUN_SH --exe AGENT_EXE [unittest options]
"""
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_api  # noqa: E402  (the Agent fixture, keys and tokens)
from test_api import (Agent, error_of, pem_private, pem_public, rsa_key,  # noqa: E402
                      self_signed, user_token)

CHUNK = 10_000_000
READY_RE = re.compile(r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready")
BOUNDARY = "----kasmTestBoundary7MA4YWxkTrZu0gW"


def multipart(fields, filename, data):
    head = b"".join(
        (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").encode()
        for k, v in fields)
    fname = filename.encode() if isinstance(filename, str) else filename
    head += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"".encode()
             + fname + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n")
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def dz_fields(dzuuid, index, total_size, chunk_size, offset, count):
    return [("dzuuid", dzuuid), ("dzchunkindex", index), ("dztotalfilesize", total_size),
            ("dzchunksize", chunk_size), ("dzchunkbyteoffset", offset),
            ("dztotalchunkcount", count)]


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def wine_prefix():
    """The Wine prefix wine-run.sh uses for agent.exe (see cmake/wine-run.sh)."""
    if os.environ.get("KASM_WINEPREFIX"):
        return os.environ["KASM_WINEPREFIX"]
    d = os.path.dirname(os.path.abspath(test_api.WINE_EXE))
    while d != "/" and not os.path.exists(os.path.join(d, "CMakeCache.txt")):
        d = os.path.dirname(d)
    return os.path.join(d, "wineprefix")


# FOLDERID_Downloads in the Wine user's "User Shell Folders" (the helper's Downloads folder)
WINE_SHELL_FOLDERS = (r"HKCU\Software\Microsoft\Windows\CurrentVersion\Explorer"
                      r"\User Shell Folders")
WINE_DOWNLOADS_VALUE = "{374DE290-123F-4565-9164-39C4925E467B}"


def wine_reg(*args):
    subprocess.run([test_api.WINE_RUN, "--prefix", wine_prefix(), "reg"] + list(args),
                   check=True, capture_output=True, timeout=120)


class TransferTest(unittest.TestCase):
    """The upload_dir/download_dir engines (natively: an empty declared-sessions file, so no
    session helper takes the requests); under Wine with session_helper.exe beside agent.exe,
    Wine's session is adopted and the round trip goes through its helper, whose Downloads
    folder is pointed at a temp folder (never the build user's real ~/Downloads)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kasm-xfer-")
        cls.jwt_key = rsa_key()
        server_key = rsa_key()
        cls.helper_dl = None
        extra = "max_concurrent_uploads: 4\n"
        if test_api.WINE_RUN:
            exe_dir = os.path.dirname(os.path.abspath(test_api.WINE_EXE))
            if os.path.exists(os.path.join(exe_dir, "session_helper.exe")):
                # made first: Wine links a missing shell folder to the unix ~/Downloads
                cls.helper_dl = os.path.join(cls.tmp, "wine-downloads")
                os.makedirs(cls.helper_dl)
                wine_reg("add", WINE_SHELL_FOLDERS, "/v", WINE_DOWNLOADS_VALUE, "/t",
                         "REG_EXPAND_SZ", "/d", test_api.agent_path(cls.helper_dl), "/f")
        else:
            none = os.path.join(cls.tmp, "no-sessions")
            with open(none, "w") as f:
                f.write("# no session: the fallback folders serve every request\n")
            extra += f"sessions_file: {none}\n"
        cls.agent = Agent(cls.tmp, "main", pem_public(cls.jwt_key), extra=extra,
                          server_key=pem_private(server_key),
                          server_cert=self_signed(server_key))
        cls.token = user_token(cls.jwt_key)
        cls.up = os.path.join(cls.agent.dir, "up")
        cls.down = os.path.join(cls.agent.dir, "down")
        # The agent makes both at start (test_api.py checks that); these are no-ops then.
        os.makedirs(cls.up, exist_ok=True)
        os.makedirs(cls.down, exist_ok=True)
        if cls.helper_dl:  # requests before the helper is up would use the fallback
            end = time.monotonic() + 120
            while not READY_RE.search(cls.agent.log()):
                if time.monotonic() > end:
                    raise AssertionError("Wine's session helper is not ready:\n" +
                                         cls.agent.log()[-4000:])
                time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        if cls.helper_dl:
            wine_reg("delete", WINE_SHELL_FOLDERS, "/v", WINE_DOWNLOADS_VALUE, "/f")
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"agent exited with {rc}")

    # --- helpers ---

    def send_chunk(self, conn, filename, fields, data, token="default"):
        body = multipart(fields, filename, data)
        h = {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY}
        tok = self.token if token == "default" else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        conn.request("POST", "/upload", body=body, headers=h)
        r = conn.getresponse()
        payload = r.read()
        if r.getheader("Connection", "").lower() == "close" or r.will_close:
            conn.close()
        return r.status, payload

    def chunk(self, filename, fields, data, token="default"):
        c = self.agent.conn()
        try:
            return self.send_chunk(c, filename, fields, data, token)
        finally:
            c.close()

    def upload(self, filename, data, chunk_size, conn=None):
        dzuuid = str(uuid.uuid4())
        count = max(1, -(-len(data) // chunk_size))
        c = conn or self.agent.conn()
        try:
            for i in range(count):
                off = i * chunk_size
                status, body = self.send_chunk(
                    c, filename, dz_fields(dzuuid, i, len(data), chunk_size, off, count),
                    data[off:off + chunk_size])
                self.assertEqual((status, body), (200, b"uploaded Chunk"), f"chunk {i}")
        finally:
            if conn is None:
                c.close()
        return dzuuid

    def get(self, path, token="default", headers=None, method="GET"):
        return self.agent.request(method, path, self.token if token == "default" else token,
                                  headers=headers)

    def assert_no_temp(self, folder):
        left = [n for n in os.listdir(folder) if n.startswith(".kasm-upload-")]
        self.assertEqual(left, [])

    def download_sha256(self, path):
        c = self.agent.conn()
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + self.token})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            h = hashlib.sha256()
            n = 0
            while True:
                piece = r.read(1 << 20)
                if not piece:
                    break
                h.update(piece)
                n += len(piece)
            self.assertEqual(int(r.getheader("Content-Length")), n)
            return h.hexdigest()
        finally:
            c.close()

    # --- tests ---

    def test_small_roundtrip(self):
        # through Wine's session helper (when there is one) its Downloads folder is both
        # the upload target and what is listed; else upload_dir, then download_dir
        data = os.urandom(3000)
        self.upload("small.bin", data, 1500)
        up = self.helper_dl or self.up
        with open(os.path.join(up, "small.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assert_no_temp(up)
        if self.helper_dl:
            self.assertFalse(os.path.exists(os.path.join(self.up, "small.bin")))
        else:
            os.replace(os.path.join(self.up, "small.bin"), os.path.join(self.down, "small.bin"))
        status, headers, body = self.get("/Downloads/Downloads/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertIn(b'<li><a href="small.bin">small.bin</a></li>', body)
        self.assertEqual(self.download_sha256("/Downloads/Downloads/small.bin"),
                         hashlib.sha256(data).hexdigest())

    def test_large_upload_streams(self):
        # 1 GiB in the Kasm UI's 10 MB chunks over one keep-alive connection; the chunks are
        # made on the fly (a random block stamped with the chunk index) and hashed as sent
        size = 1 << 30
        count = -(-size // CHUNK)
        block = bytearray(os.urandom(CHUNK))
        sent = hashlib.sha256()
        # warm up the server's threads and TLS before the baseline
        self.upload("warm.bin", os.urandom(2 * CHUNK), CHUNK)
        before = vm_hwm_kib(self.agent.proc.pid)
        dzuuid = str(uuid.uuid4())
        c = self.agent.conn()
        c.timeout = 120
        try:
            for i in range(count):
                off = i * CHUNK
                block[0:8] = i.to_bytes(8, "little")
                piece = bytes(block[:min(CHUNK, size - off)])
                sent.update(piece)
                status, body = self.send_chunk(
                    c, "big.bin", dz_fields(dzuuid, i, size, CHUNK, off, count), piece)
                self.assertEqual((status, body), (200, b"uploaded Chunk"), f"chunk {i}")
        finally:
            c.close()
        growth = vm_hwm_kib(self.agent.proc.pid) - before
        self.assertLess(growth, 32 * 1024, f"VmHWM grew {growth} KiB")
        self.assert_no_temp(self.up)
        self.assertEqual(os.path.getsize(os.path.join(self.up, "big.bin")), size)
        os.replace(os.path.join(self.up, "big.bin"), os.path.join(self.down, "big.bin"))
        self.assertEqual(self.download_sha256("/Downloads/Downloads/big.bin"), sent.hexdigest())
        os.unlink(os.path.join(self.down, "big.bin"))

    def test_retry_wrong_offset_and_duplicate(self):
        data = os.urandom(2500)
        u = str(uuid.uuid4())
        f = lambda i, off: dz_fields(u, i, len(data), 1000, off, 3)  # noqa: E731
        self.assertEqual(self.chunk("retry.bin", f(0, 0), data[:1000]), (200, b"uploaded Chunk"))
        self.assertEqual(self.chunk("retry.bin", f(1, 1000), data[1000:2000])[0], 200)
        # the same chunk again (the client did not see the answer): accepted, not duplicated
        self.assertEqual(self.chunk("retry.bin", f(1, 1000), data[1000:2000]),
                         (200, b"uploaded Chunk"))
        status, body = self.chunk("retry.bin", f(2, 2100), data[2000:])
        self.assertEqual(status, 400, body)
        self.assertIn("does not match", error_of(body))
        self.assertEqual(self.chunk("retry.bin", f(2, 2000), data[2000:])[0], 200)
        with open(os.path.join(self.up, "retry.bin"), "rb") as fh:
            self.assertEqual(fh.read(), data)
        # the same name again at chunk 0
        status, body = self.chunk("retry.bin", dz_fields(str(uuid.uuid4()), 0, 10, 10, 0, 1),
                                  b"0123456789")
        self.assertEqual((status, error_of(body)), (400, "File already exists"))
        self.assert_no_temp(self.up)

    def test_size_mismatch(self):
        u = str(uuid.uuid4())
        self.assertEqual(self.chunk("short.bin", dz_fields(u, 0, 2000, 1000, 0, 2), b"a" * 1000)[0],
                         200)
        status, body = self.chunk("short.bin", dz_fields(u, 1, 2000, 1000, 1000, 2), b"b" * 500)
        self.assertEqual((status, error_of(body)), (500, "Size mismatch"))
        self.assertFalse(os.path.exists(os.path.join(self.up, "short.bin")))
        self.assert_no_temp(self.up)

    def test_disconnect_mid_chunk(self):
        u = str(uuid.uuid4())
        body = multipart(dz_fields(u, 0, 4000, 2000, 0, 2), "cut.bin", b"c" * 2000)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        marks = self.agent.log().count("the client went away")
        with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                t.sendall((f"POST /upload HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: Bearer {self.token}\r\n"
                           f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:1200])
                time.sleep(0.3)
        end = time.monotonic() + 15
        while self.agent.log().count("the client went away") == marks:
            self.assertLess(time.monotonic(), end, "the agent did not notice the disconnect")
            time.sleep(0.05)
        self.assertFalse(os.path.exists(os.path.join(self.up, "cut.bin")))
        # a fresh upload of the same name starts over (and removes the aborted one)
        data = os.urandom(4000)
        self.upload("cut.bin", data, 2000)
        with open(os.path.join(self.up, "cut.bin"), "rb") as fh:
            self.assertEqual(fh.read(), data)
        self.assert_no_temp(self.up)

    def test_hostile_filenames(self):
        parent = self.agent.dir
        before = sorted(os.listdir(parent))
        up_before = sorted(os.listdir(self.up))
        corpus = ["../x", "..\\x", "CON.txt", "a:b", "a/b", "a\\b", "x.", "..", ".", "",
                  "/etc/x", "C:\\x", "nul", "a\x01b", ".kasm-upload-x.part"]
        for name in corpus:
            with self.subTest(name=name):
                status, body = self.chunk(name, dz_fields(str(uuid.uuid4()), 0, 3, 3, 0, 1),
                                          b"bad")
                self.assertEqual(status, 400, body)
        self.assertEqual(sorted(os.listdir(parent)), before)
        self.assertEqual(sorted(os.listdir(self.up)), up_before)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))

    def test_listing_exact_html(self):
        root = os.path.join(self.down, "list")
        os.makedirs(os.path.join(root, "sub dir"))
        for name in ("a.txt", "b&c <d>.txt", ".hidden", "$secret", "\u00e9.txt"):
            with open(os.path.join(root, name), "w") as f:
                f.write("x")
        with open(os.path.join(root, "sub dir", "in.txt"), "w") as f:
            f.write("y")
        head = "<html><title>Directory Listing</title><body><h2>{}</h2><hr/><ul>"
        tail = "</ul></body></html>"
        visible = ['<li><a href="a.txt">a.txt</a></li>',
                   '<li><a href="b%26c%20%3Cd%3E.txt">b&amp;c &lt;d&gt;.txt</a></li>',
                   '<li><a href="sub%20dir/">sub dir/</a></li>',
                   '<li><a href="%C3%A9.txt">\u00e9.txt</a></li>']
        status, _, body = self.get("/Downloads/Downloads/list/")
        self.assertEqual(status, 200)
        self.assertEqual(body.decode(),
                         head.format("/Downloads/Downloads/list/") + "".join(visible) + tail)
        status, _, body = self.get("/Downloads/Downloads/list/?show_hidden=1")
        hidden = ['<li><a href="%24secret">$secret</a></li>',
                  '<li><a href=".hidden">.hidden</a></li>']
        self.assertEqual(body.decode(), head.format("/Downloads/Downloads/list/")
                         + "".join(hidden + visible) + tail)
        status, _, body = self.get("/Downloads/Downloads/list/sub%20dir/")
        self.assertEqual(body.decode(), head.format("/Downloads/Downloads/list/sub dir/")
                         + '<li><a href="in.txt">in.txt</a></li>' + tail)
        status, headers, _ = self.get("/Downloads/Downloads/list/sub%20dir?show_hidden=1")
        self.assertEqual((status, headers["location"]),
                         (301, "/Downloads/Downloads/list/sub%20dir/?show_hidden=1"))
        status, headers, _ = self.get("/Downloads/Downloads")
        self.assertEqual((status, headers["location"]), (301, "/Downloads/Downloads/"))

    def test_download_range_and_conditional(self):
        data = bytes(range(256)) * 40
        path = os.path.join(self.down, "r.txt")
        with open(path, "wb") as f:
            f.write(data)
        status, headers, body = self.get("/Downloads/Downloads/r.txt")
        self.assertEqual((status, body), (200, data))
        self.assertTrue(headers["content-type"].startswith("text/plain"), headers)
        self.assertEqual(headers["accept-ranges"], "bytes")
        self.assertEqual(int(headers["content-length"]), len(data))
        modified = headers["last-modified"]
        status, headers, body = self.get("/Downloads/Downloads/r.txt",
                                         headers={"Range": "bytes=100-199"})
        self.assertEqual((status, body), (206, data[100:200]))
        self.assertEqual(headers["content-range"], f"bytes 100-199/{len(data)}")
        status, headers, body = self.get("/Downloads/Downloads/r.txt",
                                         headers={"Range": "bytes=-10"})
        self.assertEqual((status, body), (206, data[-10:]))
        status, headers, _ = self.get("/Downloads/Downloads/r.txt",
                                      headers={"Range": f"bytes={len(data)}-"})
        self.assertEqual((status, headers["content-range"]), (416, f"bytes */{len(data)}"))
        status, _, body = self.get("/Downloads/Downloads/r.txt",
                                   headers={"If-Modified-Since": modified})
        self.assertEqual((status, body), (304, b""))
        status, headers, body = self.get("/Downloads/Downloads/r.txt", method="HEAD")
        self.assertEqual((status, body, int(headers["content-length"])), (200, b"", len(data)))

    def test_traversal_is_404(self):
        outside = os.path.join(self.agent.dir, "outside.txt")
        with open(outside, "w") as f:
            f.write("secret")
        os.symlink(outside, os.path.join(self.down, "link.txt"))
        os.symlink(self.agent.dir, os.path.join(self.down, "linkdir"))
        for path in ("/Downloads/Downloads/../outside.txt",
                     "/Downloads/Downloads/%2e%2e/outside.txt",
                     "/Downloads/Downloads/..%2foutside.txt", "/Downloads/Downloads/%2e%2e%2fx",
                     "/Downloads/Downloads/x%5c..%5c..%5coutside.txt",
                     "/Downloads/Downloads/link.txt", "/Downloads/Downloads/linkdir/",
                     "/Downloads/Downloads/linkdir/outside.txt", "/Downloads/Downloads/nope",
                     "/Downloads/Downloads/a%00b", "/Downloads/Downloads/%ff"):
            with self.subTest(path=path):
                status, _, body = self.get(path)
                self.assertEqual(status, 404, body)
                self.assertNotIn(b"secret", body)

    def test_auth_required(self):
        status, _, body = self.get("/Downloads/Downloads/", token=None)
        self.assertEqual((status, error_of(body)), (401, "Token is missing"))
        status, body = self.chunk("auth.bin", dz_fields(str(uuid.uuid4()), 0, 3, 3, 0, 1), b"abc",
                                  token=None)
        self.assertEqual((status, error_of(body)), (401, "Token is missing"))
        self.assertFalse(os.path.exists(os.path.join(self.up, "auth.bin")))
        status, _, _ = self.get("/upload", method="HEAD")
        self.assertEqual(status, 405)


WINE_SUBSET = ["test_small_roundtrip"]


def main():
    args = sys.argv[1:]
    usage = ("usage: test_transfer.py --bin-dir DIR | --wine-run WINE_RUN_SH --exe AGENT_EXE "
             "[test_name ...]")
    opts = {}
    for name in ("--bin-dir", "--wine-run", "--exe"):
        if name in args:
            i = args.index(name)
            if i + 1 >= len(args):
                sys.exit(usage)
            opts[name] = args[i + 1]
            del args[i:i + 2]
    if not (("--bin-dir" in opts) ^ ("--wine-run" in opts and "--exe" in opts)):
        sys.exit(usage)
    test_api.BIN_DIR = opts.get("--bin-dir")
    test_api.WINE_RUN = opts.get("--wine-run")
    test_api.WINE_EXE = opts.get("--exe")
    if args:  # test method names: run just those
        suite = unittest.TestSuite(TransferTest(n) for n in args)
    elif test_api.WINE_RUN:
        suite = unittest.TestSuite(TransferTest(n) for n in WINE_SUBSET)
    else:
        suite = unittest.TestLoader().loadTestsFromTestCase(TransferTest)
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
