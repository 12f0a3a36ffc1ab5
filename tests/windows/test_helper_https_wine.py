#!/usr/bin/python3
"""test_helper_https_wine.py - the Windows end to end of the session helper, under Wine + Xvfb.

An Xvfb display (1920x1080x24) is started and its root window painted a known colour (raw X11
protocol over the display's socket: no X client program is needed). A Wine prefix of the
test's own is (re)created while KASM_WINE_DISPLAY names that display (a prefix whose
wineserver started without a display cannot capture). agent.exe runs in console mode
(--console --debug 1) with TLS, a JWT key and session_helper.exe beside it (the default helper
path): it adopts Wine's session and starts the helper with CreateProcessAsUserW. The helper's
Downloads folder (FOLDERID_Downloads) is pointed at a temp folder through the registry.

Then, over HTTPS from Linux with PyJWT tokens whose system_username is the Wine user (the
Linux user): GET /__healthcheck; a ~5 MB upload in 3 Dropzone chunks; the listing of
/Downloads/Downloads/ shows it; the download has the same SHA-256 and a Range request gives
206; POST /screenshot?width=300 gives a 300x168 PNG whose centre pixel is the painted colour.
The agent's log must show that each of these went through the helper (its forwarded debug
lines "helper[session N]: request R: ..."), and the upload must be in the redirected Downloads
folder, not in upload_dir.

Usage: test_helper_https_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE --helper HELPER_EXE
                                 --prefix WINEPREFIX_DIR
Exit status 0 when every check passes, 77 when Xvfb is missing, 1 on a failure.
"""
import hashlib
import os
import pwd
import re
import shutil
import sys
import tempfile
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from test_api import self_signed  # noqa: E402  (a self-signed certificate for the agent)
from wine_fixture import (BOUNDARY, COLOUR, DOWNLOADS_VALUE, READY_RE_TEXT,  # noqa: E402
                          SHELL_FOLDERS, AgentRun, Client, Fail, check, multipart, no_xvfb,
                          painted_prefix, parse_args, png_pixel, png_size, prefix_run,
                          shutdown_prefix, stop_xvfb, win_path)

START_TIMEOUT = 180  # the agent's first start and the helper's HELLO under a loaded Wine
TIMEOUT = 60
LISTEN_RE = re.compile(r"listening on https://[^ ]+:(\d+)")
READY_RE = re.compile(READY_RE_TEXT)


# ---- the test -------------------------------------------------------------------------------

def main():
    args = parse_args("--wine-run", "--agent", "--helper", "--prefix")
    if no_xvfb():
        return 77

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="kasm-helper-https-")
    prefix = os.path.abspath(args.prefix)
    xvfb = None
    env = dict(os.environ)
    log = os.path.join(tmp, "agent.log")
    agent = AgentRun(log, TIMEOUT)
    text, wait = agent.text, agent.wait

    def wine_run(*a, timeout=300):
        prefix_run(args.wine_run, prefix, env, *a, timeout=timeout)

    rc = 0
    try:
        xvfb, display = painted_prefix(args.wine_run, prefix, env)
        print(f"ok   Xvfb on {display}, root window painted #{bytes(COLOUR).hex()}")
        # made first: Wine links a missing shell folder to the unix ~/Downloads
        downloads = os.path.join(tmp, "wine-downloads")
        os.makedirs(downloads)
        wine_run("reg", "add", SHELL_FOLDERS, "/v", DOWNLOADS_VALUE, "/t", "REG_EXPAND_SZ",
                 "/d", win_path(downloads), "/f")
        print(f"ok   Wine prefix {prefix} made on {display}, Downloads -> {downloads}")

        # agent.exe with session_helper.exe beside it: the default helper path
        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        exe = os.path.join(bindir, "agent.exe")
        shutil.copy(args.agent, exe)
        shutil.copy(args.helper, os.path.join(bindir, "session_helper.exe"))
        jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        files = {
            "jwt.pem": jwt_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            "key.pem": srv_key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()),
            "cert.pem": self_signed(srv_key),
        }
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        up = os.path.join(tmp, "up")
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("ssl: true\nport: 0\nlisten_address: 127.0.0.1\nmulti_user: false\n"
                    f"jwt_public_key: {win_path(tmp + '/jwt.pem')}\n"
                    f"server_public_key: {win_path(tmp + '/cert.pem')}\n"
                    f"server_private_key: {win_path(tmp + '/key.pem')}\n"
                    f"upload_dir: {win_path(up)}\ndownload_dir: {win_path(tmp + '/down')}\n")
        agent.start(args.wine_run, exe, win_path(cfg), env, prefix=prefix,
                    extra=("--debug", "1"), out=log)
        port = int(wait(lambda: LISTEN_RE.search(text()), "the 'listening on https' line",
                        START_TIMEOUT).group(1))
        m = wait(lambda: READY_RE.search(text()), "the helper's HELLO", START_TIMEOUT)
        sid, user = m.group(1), m.group(2)
        tag = f"helper[session {sid}]: "
        print(f"ok   agent.exe on https port {port}; helper of session {sid} ({user}) is ready")
        wait(lambda: tag + "session helper " in text() and "Downloads: " in text(),
             "the helper's start line")
        check(f"Downloads: {win_path(downloads)}".lower() in text().lower(),
              "the helper does not use the redirected Downloads folder")

        me = pwd.getpwuid(os.getuid()).pw_name  # the Wine user is the Unix user
        token = jwt.encode({"system_username": me, "username": f"{me}@kasm.local",
                            "user_id": "5f1c0e2a", "authorizations": [100],
                            "exp": int(time.time()) + 3600},
                           jwt_key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()),
                           algorithm="RS256")
        cl = Client(port, token, TIMEOUT)

        status, headers, body = cl.request("GET", "/__healthcheck")
        check(status == 200 and headers.get("content-type") == "application/json",
              f"healthcheck: {status} {body[:200]!r}")
        print("ok   GET /__healthcheck 200")

        # ~5 MB in 3 Dropzone chunks
        name = "e2e-upload.bin"
        data = os.urandom(5 * 1000 * 1000 + 12345)
        chunk = -(-len(data) // 3)
        dzuuid = str(uuid.uuid4())
        for i in range(3):
            off = i * chunk
            fields = [("dzuuid", dzuuid), ("dzchunkindex", i), ("dztotalfilesize", len(data)),
                      ("dzchunksize", chunk), ("dzchunkbyteoffset", off),
                      ("dztotalchunkcount", 3)]
            status, _, body = cl.request(
                "POST", "/upload", multipart(fields, name, data[off:off + chunk]),
                {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY})
            check((status, body) == (200, b"uploaded Chunk"), f"chunk {i}: {status} {body!r}")
        check(os.path.isfile(os.path.join(downloads, name)),
              "the upload is not in the helper's Downloads folder")
        with open(os.path.join(downloads, name), "rb") as f:
            check(f.read() == data, "the uploaded file differs from what was sent")
        check(not os.path.exists(os.path.join(up, name)), "the upload went to upload_dir")
        print(f"ok   POST /upload of {len(data)} bytes in 3 chunks; the file is in Downloads, "
              "not in upload_dir")

        status, headers, body = cl.request("GET", "/Downloads/Downloads/")
        check(status == 200 and headers.get("content-type", "").startswith("text/html"),
              f"listing: {status} {body[:200]!r}")
        check(f'<li><a href="{name}">{name}</a></li>'.encode() in body,
              f"the listing does not show {name}: {body[:2000]!r}")
        print("ok   GET /Downloads/Downloads/ lists it")

        status, headers, body = cl.request("GET", f"/Downloads/Downloads/{name}")
        check(status == 200 and int(headers.get("content-length", -1)) == len(data),
              f"download: {status} {headers}")
        check(hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest(),
              "the download's SHA-256 differs from the upload's")
        status, headers, body = cl.request("GET", f"/Downloads/Downloads/{name}",
                                           headers={"Range": "bytes=1000000-1000999"})
        check(status == 206 and body == data[1000000:1001000] and
              headers.get("content-range") == f"bytes 1000000-1000999/{len(data)}",
              f"range: {status} {headers}")
        print("ok   GET of the file: same SHA-256; Range bytes=1000000-1000999 -> 206")

        status, headers, png = cl.request("POST", "/screenshot?width=300")
        check(status == 200 and headers.get("content-type") == "image/png",
              f"screenshot: {status} {headers.get('content-type')} {png[:200]!r}")
        check(png_size(png) == (300, 168), f"screenshot size {png_size(png)}, want 300x168")
        px = png_pixel(png, 150, 84)
        check(all(abs(a - b) <= 8 for a, b in zip(px, COLOUR)),
              f"screenshot centre pixel #{bytes(px).hex()}, want #{bytes(COLOUR).hex()}")
        print(f"ok   POST /screenshot?width=300: 300x168 PNG, centre pixel #{bytes(px).hex()}")

        # each of them went through the helper (its debug lines, forwarded over the channel)
        esc = re.escape(tag)
        wanted = {
            "upload": esc + r"request \d+: upload answered 200 uploaded Chunk",
            "listing": esc + r"request \d+: listed ",
            "download": esc + rf"request \d+: sent {len(data)} bytes of [^\n]*{name} from offset 0",
            "range": esc + rf"request \d+: sent 1000 bytes of [^\n]*{name} from offset 1000000",
            "screenshot": esc + r"request \d+: screenshot 300x168, \d+ bytes of PNG",
        }
        for what, pattern in wanted.items():
            wait(lambda: re.search(pattern, text()), f"the helper's log line of the {what}")
        n_up = len(re.findall(wanted["upload"], text()))
        check(n_up == 3, f"{n_up} helper upload lines, want 3")
        # the bodies came through the shared window (the section the service made), not the pipe
        shared = [int(n) for n in re.findall(
            esc + r"request \d+: upload answered 200 [^\n]*\((\d+) bytes through the shared window",
            text())]
        check(shared and max(shared) >= len(data),
              f"{max(shared or [0])} bytes through the shared window, want the {len(data)} "
              "uploaded at least")
        check("uploads arrive through the service's shared window" in text(),
              "the helper did not say it mapped the shared window")
        print("ok   the agent log shows the helper served the upload (3 chunks, through the "
              "shared window), the listing, both downloads and the screenshot")
    except Exception as e:  # Fail, or e.g. a refused connection or a timeout
        rc = 1
        print(f"FAIL {e if isinstance(e, Fail) else repr(e)}\n---- agent log (end) ----\n{text()[-8000:]}")
    finally:
        agent.kill()
        shutdown_prefix(args.wine_run, prefix, env)
        stop_xvfb(xvfb)  # SIGTERM: Xvfb then removes its socket and lock file
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'passed' if rc == 0 else 'failed'} in {time.monotonic() - started:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
