#!/usr/bin/python3
"""test_agentctl_misc_wine.py - agentctl.exe screenshot, logs --follow and the status additions
under Wine + Xvfb.

Like test_helper_https_wine.py: an Xvfb display painted a known colour, a Wine prefix of the
test's own made while KASM_WINE_DISPLAY names it, agent.exe --console with session_helper.exe
beside it (it adopts Wine's session and starts the helper). agentctl.exe over the agent's own
admin pipe then:
  - screenshot --session N --width 300 --json: a 300x168 PNG whose centre pixel is the painted
    colour, the JSON fields; an unknown session exits 2 listing the known one, no file left;
  - status --json: the certificate made here (subject, expiry), uploads_in_flight 0,
    errors_last_hour a count;
  - logs --follow --json: one JSON object per line, and a record logged after it started (the
    agent's debug line for another agentctl command) shows up.

Usage: test_agentctl_misc_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE
           --helper HELPER_EXE --agentctl AGENTCTL_EXE --prefix WINEPREFIX_DIR
Exit status 0 when every check passes, 77 when Xvfb is missing, 1 on a failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from wine_fixture import (COLOUR, READY_RE_TEXT, AgentRun, Fail, check, kill_group,  # noqa: E402
                          no_xvfb, painted_prefix, parse_args, png_pixel, png_size, shutdown_prefix,
                          stop_xvfb, win_path)
from test_agentctl_misc import CERT_CN, CERT_NOT_AFTER, make_cert  # noqa: E402
from test_api import pem_private, rsa_key  # noqa: E402

START_TIMEOUT = 180
TIMEOUT = 60
READY_RE = re.compile(READY_RE_TEXT)
PIPE = "\\\\.\\pipe\\kasm-test-ctlmisc-%d" % os.getpid()


def main():
    args = parse_args("--wine-run", "--agent", "--helper", "--agentctl", "--prefix")
    if no_xvfb():
        return 77

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="kasm-ctlmisc-wine-")
    prefix = os.path.abspath(args.prefix)
    xvfb = follow = None
    env = dict(os.environ)
    log = os.path.join(tmp, "agent.log")
    agent = AgentRun(log, TIMEOUT)
    text, wait = agent.text, agent.wait

    rc = 0
    try:
        xvfb, display = painted_prefix(args.wine_run, prefix, env)
        print(f"ok   Xvfb on {display}, Wine prefix {prefix} made on it")

        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        exe = os.path.join(bindir, "agent.exe")
        ctl_exe = os.path.join(bindir, "agentctl.exe")
        shutil.copy(args.agent, exe)
        shutil.copy(args.helper, os.path.join(bindir, "session_helper.exe"))
        shutil.copy(args.agentctl, ctl_exe)
        srv_key = rsa_key()
        with open(os.path.join(tmp, "key.pem"), "wb") as f:
            f.write(pem_private(srv_key))
        with open(os.path.join(tmp, "cert.pem"), "wb") as f:
            f.write(make_cert(srv_key))
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("ssl: true\nport: 0\nlisten_address: 127.0.0.1\ndebug: true\n"
                    f"server_public_key: {win_path(tmp + '/cert.pem')}\n"
                    f"server_private_key: {win_path(tmp + '/key.pem')}\n"
                    f"log_file: {win_path(log + '.file')}\n"
                    f"upload_dir: {win_path(tmp + '/up')}\n"
                    f"download_dir: {win_path(tmp + '/down')}\nadmin_socket: {PIPE}\n")
        wcfg = win_path(cfg)
        agent.start(args.wine_run, exe, wcfg, env, prefix=prefix, extra=("--debug", "1"),
                    out=log)
        wait(lambda: "listening on https://" in text(), "the HTTPS API", START_TIMEOUT)
        m = wait(lambda: READY_RE.search(text()), "the helper's HELLO", START_TIMEOUT)
        sid = int(m.group(1))
        print(f"ok   agent.exe runs; the helper of session {sid} is ready")

        def ctl(*words, timeout=TIMEOUT):
            p = subprocess.run([args.wine_run, "--prefix", prefix, ctl_exe] + list(words) +
                               ["--cfg", wcfg], capture_output=True, text=True,
                               errors="replace", timeout=timeout, env=env)
            return p.returncode, p.stdout, p.stderr

        # screenshot
        shot = os.path.join(tmp, "shots", "desk.png")
        os.makedirs(os.path.dirname(shot))
        rc1, out, err = ctl("screenshot", "--session", str(sid), "--width", "300", "--out",
                            win_path(shot), "--json", timeout=120)
        check(rc1 == 0, f"screenshot: exit {rc1}, {err!r}")
        j = json.loads(out)
        with open(shot, "rb") as f:
            png = f.read()
        check(png_size(png) == (300, 168), f"screenshot size {png_size(png)}, want 300x168")
        px = png_pixel(png, 150, 84)
        check(all(abs(a - b) <= 8 for a, b in zip(px, COLOUR)),
              f"centre pixel #{bytes(px).hex()}, want #{bytes(COLOUR).hex()}")
        check(j == {"session": sid, "width": 300, "height": 168, "bytes": len(png),
                    "file": win_path(shot)}, f"screenshot --json: {j}")
        check(os.listdir(os.path.dirname(shot)) == ["desk.png"], "a temp file was left")
        print(f"ok   screenshot --session {sid} --width 300: 300x168 PNG, {len(png)} bytes, "
              f"centre #{bytes(px).hex()}")
        rc2, out, err = ctl("screenshot", "--session", "9999", "--out",
                            win_path(os.path.join(tmp, "shots", "none.png")))
        check(rc2 == 2 and "there is no session 9999" in err and f" {sid} (" in err,
              f"unknown session: exit {rc2}, {err!r}")
        check(os.listdir(os.path.dirname(shot)) == ["desk.png"], "a file was left on failure")
        print("ok   an unknown session exits 2 naming the known one; nothing written")

        # status
        rc3, out, err = ctl("status", "--json")
        check(rc3 == 0, f"status: exit {rc3}, {err!r}")
        j = json.loads(out)
        check(f"CN={CERT_CN}" in (j["cert_subject"] or "") and
              j["cert_expires"] == int(CERT_NOT_AFTER.timestamp()) and
              j["cert_expires_text"] == "2031-05-06 07:08:09 UTC" and not j["cert_expired"],
              f"certificate fields: {j}")
        check(j["uploads_in_flight"] == 0 and isinstance(j["errors_last_hour"], int),
              f"uploads/errors: {j}")
        rc3, out, err = ctl("status")
        check(rc3 == 0 and re.search(r"uploads +0 in flight", out) and
              "expires 2031-05-06 07:08:09 UTC" in out, f"status table: {out!r}")
        print(f"ok   status: {j['cert_subject']} until {j['cert_expires_text']}, "
              f"{j['uploads_in_flight']} uploads in flight, {j['errors_last_hour']} errors")

        # logs --follow
        follow = subprocess.Popen([args.wine_run, "--prefix", prefix, ctl_exe, "logs",
                                   "--follow", "--json", "--lines", "2", "--cfg", wcfg],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  errors="replace", env=env, start_new_session=True)
        lines = []
        threading.Thread(target=lambda: lines.extend(follow.stdout), daemon=True).start()

        def follow_lines():
            return list(lines)
        wait(lambda: sum("command 'logs follow'" in x for x in follow_lines()) >= 2,
             "logs --follow printing its own requests")
        rc4, _, err = ctl("sessions")
        check(rc4 == 0, f"sessions: exit {rc4}, {err!r}")
        wait(lambda: any("command 'sessions'" in x for x in follow_lines()),
             "logs --follow showing a record logged after it started")
        recs = [json.loads(x) for x in follow_lines()]
        seqs = [r["seq"] for r in recs if "seq" in r]
        check(seqs == sorted(set(seqs)), "records repeated or out of order")
        print(f"ok   logs --follow --json: {len(recs)} records, one JSON object per line, "
              "the new one included")
    except Exception as e:  # Fail, or e.g. a timeout
        rc = 1
        print(f"FAIL {e if isinstance(e, Fail) else repr(e)}\n---- agent log (end) ----\n"
              f"{text()[-8000:]}")
    finally:
        for p in (follow, agent.proc):
            kill_group(p)
        shutdown_prefix(args.wine_run, prefix, env)
        stop_xvfb(xvfb)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'passed' if rc == 0 else 'failed'} in {time.monotonic() - started:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
