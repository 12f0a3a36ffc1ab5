"""xvfb.py - an Xvfb server on a display number it picks itself, for the screenshot tests.

start() runs Xvfb with -displayfd, so the server chooses a free display number and holds it
before telling us: two tests (or two checkouts) starting at the same moment can never end up
sharing one server, as a number picked by looking for free lock files could.
"""
import os
import select
import subprocess
import time


def start(screen="640x480x24", noreset=False, timeout=60):
    """Starts Xvfb; returns (process, ':N'). -ac: a session user who is not the server's
    owner may connect; -noreset keeps the server (and what was drawn) when its last client
    leaves. Raises RuntimeError when it does not come up within timeout seconds."""
    rfd, wfd = os.pipe()
    cmd = ["Xvfb", "-displayfd", str(wfd), "-screen", "0", screen, "-ac", "-nolisten", "tcp"]
    if noreset:
        cmd.append("-noreset")
    proc = subprocess.Popen(cmd, pass_fds=(wfd,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(wfd)
    got = b""
    end = time.monotonic() + timeout
    try:
        while not got.endswith(b"\n"):
            if time.monotonic() > end or proc.poll() is not None:
                raise RuntimeError(f"Xvfb did not report its display (exit status {proc.poll()})")
            if select.select([rfd], [], [], 0.5)[0]:
                piece = os.read(rfd, 64)
                if not piece:
                    raise RuntimeError("Xvfb closed -displayfd without a display number")
                got += piece
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        os.close(rfd)
    return proc, ":" + got.decode().strip()


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
