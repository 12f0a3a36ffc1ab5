"""wine_fixture.py - what the Windows end-to-end tests (tests/windows/test_*_wine.py, run by
ctest under Wine, see CMakeLists.txt here) share, one copy each:

  - Fail / check: a failed assertion, printed as "FAIL ..." by each test's main();
  - parse_args() (every option required), no_xvfb() (the skip when Xvfb is missing);
  - win_path(): the Wine DOS path (Z:\\...) of a Linux path; free_port();
  - AgentRun: agent.exe --console started through cmake/wine-run.sh in a process group of its
    own, its log read back, wait() polling for a condition while agent.exe runs, stop()/kill();
  - the /proc helpers that find (and kill) the Unix processes of a Wine program;
  - a Wine prefix of a test's own: wine-run.sh in it, made on an Xvfb display
    (tests/integration/xvfb.py) whose root window is painted a known colour (raw X11 protocol),
    shut down again;
  - PNG size and pixel decoding for the screenshots, a multipart body of Dropzone chunks, an
    HTTPS client for the agent's API (its self-signed certificate accepted, as Kasm does);
  - the orchestrator's session_start/session_end POSTs and the no-token-in-the-log check.
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import xvfb  # noqa: E402  (tests/integration/xvfb.py)

READY_RE_TEXT = r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready \(HELLO: role helper"
COLOUR = (0x33, 0x66, 0xCC)
SHELL_FOLDERS = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Explorer\User Shell Folders"
DOWNLOADS_VALUE = "{374DE290-123F-4565-9164-39C4925E467B}"  # FOLDERID_Downloads
BOUNDARY = "----kasmHelperE2E7MA4YWxkTrZu0gW"


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def parse_args(*names, known=False):
    """The command line: each option in names required (known: (args, the rest))."""
    ap = argparse.ArgumentParser()
    for name in names:
        ap.add_argument(name, required=True)
    return ap.parse_known_args() if known else ap.parse_args()


def no_xvfb():
    """True, having said why the test is skipped, when Xvfb is not installed."""
    if shutil.which("Xvfb"):
        return False
    print("skipped: Xvfb is not installed (scripts/setup-debian.sh installs it)")
    return True


def win_path(path):
    return "Z:" + path.replace("/", "\\")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_text(path):
    """A file's text ("" while it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ---- agent.exe --console --------------------------------------------------------------------

class AgentRun:
    """agent.exe --console under wine-run.sh and its log file. wait() polls pred every
    interval seconds until it returns something true (returned), failing when agent.exe
    exits first (unless agent_runs=False; never when this did not start it) or after timeout
    seconds; with tail, the timeout's message carries the end of the log."""

    def __init__(self, log, timeout, interval=0.1, tail=False):
        self.log, self.timeout, self.interval, self.tail = log, timeout, interval, tail
        self.proc = None

    def start(self, wine_run, exe, wcfg, env, prefix=None, extra=(), out=None):
        """Starts exe --console --cfg wcfg [extra] in a new session (killpg then ends Wine's
        wrapper and agent.exe); its output goes to the file out (truncated) or nowhere."""
        cmd = ([wine_run] + (["--prefix", prefix] if prefix else []) +
               [exe, "--console", "--cfg", wcfg] + list(extra))
        if out is None:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        else:
            with open(out, "wb") as f:
                self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def text(self):
        return read_text(self.log)

    def wait(self, pred, what, timeout=None, agent_runs=True):
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = pred()
            if r:
                return r
            if agent_runs and self.proc is not None and self.proc.poll() is not None:
                raise Fail(f"agent.exe exited with {self.proc.returncode} while waiting for {what}")
            time.sleep(self.interval)
        raise Fail(f"{what} did not happen within {timeout} s" +
                   (f":\n{self.text()[-3000:]}" if self.tail else ""))

    def stop(self, timeout=60):
        """SIGTERM to agent.exe's process group, SIGKILL after timeout seconds."""
        stop_group(self.proc, timeout)

    def kill(self):
        kill_group(self.proc)


def stop_group(proc, timeout=60, only_running=True):
    """SIGTERM to proc's process group, SIGKILL when it has not ended after timeout s."""
    if proc is None or (only_running and proc.poll() is not None):
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def kill_group(proc):
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---- Unix processes of Wine programs --------------------------------------------------------

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
    """The processes whose command line contains needle (Wine shows a program's DOS path)."""
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and needle in cmdline(int(d))]


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# ---- a Wine prefix of the test's own on Xvfb ------------------------------------------------

def prefix_run(wine_run, prefix, env, *a, timeout=300):
    """wine-run.sh --prefix PREFIX ARGS..., failing unless it exits 0."""
    r = subprocess.run([wine_run, "--prefix", prefix] + list(a), env=env,
                       capture_output=True, text=True, errors="replace", timeout=timeout)
    check(r.returncode == 0, f"wine-run.sh {' '.join(a)} exited with {r.returncode}: "
                             f"{r.stdout[-2000:]}{r.stderr[-2000:]}")


def start_xvfb():
    """Xvfb (1920x1080x24) on a display it picks; returns (process, ':N'). -noreset: the
    server would reset (and the root window lose its colour) when its last client leaves."""
    return xvfb.start(screen="1920x1080x24", noreset=True)


def stop_xvfb(proc):
    xvfb.stop(proc)


def painted_prefix(wine_run, prefix, env):
    """Xvfb with its root window painted COLOUR, and the Wine prefix (re)made while
    KASM_WINE_DISPLAY (set in env) names that display (a prefix whose wineserver started
    without a display cannot capture). Returns (Xvfb process, ':N')."""
    proc, display = start_xvfb()
    try:
        paint_root(display, COLOUR)
        env["KASM_WINE_DISPLAY"] = display
        env["KASM_SESSION_POLL_MS"] = "500"
        prefix_run(wine_run, prefix, env, "--shutdown", timeout=60)
        prefix_run(wine_run, prefix, env, "--reset")
    except BaseException:
        stop_xvfb(proc)
        raise
    return proc, display


def shutdown_prefix(wine_run, prefix, env, **out):
    """Stops the prefix's wineserver (its output captured unless out redirects it)."""
    if not out:
        out = {"capture_output": True}
    try:
        subprocess.run([wine_run, "--prefix", prefix, "--shutdown"], env=env, timeout=60,
                       **out)
    except subprocess.TimeoutExpired:
        print("warning: wine-run.sh --shutdown timed out")


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        piece = sock.recv(n - len(buf))
        if not piece:
            raise Fail("the X server closed the connection")
        buf += piece
    return buf


def paint_root(display, rgb, timeout=60):
    """Sets the root window's background pixel and clears it (what `xsetroot -solid` does),
    speaking the X11 protocol on the display's Unix socket (Xvfb here needs no auth)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(f"/tmp/.X11-unix/X{display.lstrip(':')}")
        s.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))  # little endian, no auth
        head = recv_exact(s, 8)
        extra = recv_exact(s, struct.unpack_from("<H", head, 6)[0] * 4)
        check(head[0] == 1, f"the X server refused the connection: {extra[:200]!r}")
        vendor_len, = struct.unpack_from("<H", extra, 16)
        n_formats = extra[21]
        root, = struct.unpack_from("<I", extra, 32 + (vendor_len + 3) // 4 * 4 + 8 * n_formats)
        pixel = rgb[0] << 16 | rgb[1] << 8 | rgb[2]  # 24-bit TrueColor: 0xRRGGBB
        req = struct.pack("<BxHIII", 2, 4, root, 0x2, pixel)  # ChangeWindowAttributes BackPixel
        req += struct.pack("<BBHIhhHH", 61, 0, 4, root, 0, 0, 0, 0)  # ClearArea (all)
        req += struct.pack("<BxH", 43, 1)  # GetInputFocus: its reply proves the rest was done
        s.sendall(req)
        while True:  # skip events (none expected); errors fail
            msg = recv_exact(s, 32)
            check(msg[0] != 0, f"X error {msg[1]} painting the root window")
            if msg[0] == 1:
                break
    finally:
        s.close()


# ---- PNG ------------------------------------------------------------------------------------

def png_size(png):
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", "not a PNG")
    return struct.unpack(">II", png[16:24])


def png_pixel(png, x, y):
    """The RGB of pixel (x, y) of an 8-bit RGB/RGBA, non-interlaced PNG (filters 0..4)."""
    pos, idat, ihdr = 8, b"", None
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IHDR":
            ihdr = png[pos + 8:pos + 8 + n]
        elif kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    check(depth == 8 and ctype in (2, 6) and interlace == 0,
          f"PNG depth {depth} colour type {ctype} interlace {interlace}: not decoded here")
    bpp = 3 if ctype == 2 else 4
    stride = w * bpp
    raw = zlib.decompress(idat)
    prev = bytearray(stride)
    for row in range(y + 1):
        ftype = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            else:
                check(ftype == 0, f"PNG filter type {ftype}")
        prev = line
    return tuple(prev[x * bpp:x * bpp + 3])


# ---- HTTPS ----------------------------------------------------------------------------------

def multipart(fields, filename, data):
    head = b"".join(
        (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").encode()
        for k, v in fields)
    head += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


class Client:
    """HTTPS to the agent on 127.0.0.1:port with a bearer token; the agent's certificate (its
    own self-signed one, or the deployment's) is not verified, as Kasm does not."""

    def __init__(self, port, token, timeout):
        self.port, self.token, self.timeout = port, token, timeout
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=self.timeout,
                                           context=self.ctx)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        h = dict(headers or {})
        h["Authorization"] = "Bearer " + self.token
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            if conn is None:
                c.close()

    def sha256(self, path):
        """GETs path streaming; returns (SHA-256 hex, length)."""
        c = self.conn()
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + self.token})
            r = c.getresponse()
            check(r.status == 200, f"GET {path}: {r.status}")
            h, n = hashlib.sha256(), 0
            while True:
                piece = r.read(1 << 20)
                if not piece:
                    break
                h.update(piece)
                n += len(piece)
            return h.hexdigest(), n
        finally:
            c.close()


# ---- the deployment simulator (tests/sim/kasm_sim.py) ---------------------------------------

def post_session(client, what, payload):
    """POST /session_start or /session_end (what) as the deployment does; fails unless 200 ok."""
    r = client.request("POST", "/" + what, client.session_token(),
                       json.dumps(payload).encode(), "application/json")
    check((r.status, r.body) == (200, b"ok"), f"{what} answered {r.status}")


def check_no_tokens(text, sim, *tokens, jwt_shaped=False):
    """No token (those given, and every one the simulator saw) in text; with jwt_shaped,
    nothing that starts like a JWT either."""
    tokens = list(tokens) + [c.token for c in sim.calls() if c.token]
    check(not any(tk in text for tk in tokens), "a token appears in the agent's log")
    if jwt_shaped:
        check("eyJ" not in text, "something like a JWT appears in the agent's log")
