#!/usr/bin/python3
"""test_orch_helper_wine.py - file mappings written and removed through the user's session
helper under Wine (service/orch/orch_helper.c, session_helper/profile_put.c, FILE_PUT /
FILE_DELETE).

agent.exe --console (user_sso on, checked in with the deployment simulator) adopts Wine's
logged-on session and starts session_helper.exe (a copy in the test's own folder) in it. The
simulator then POSTs /session_start for the Wine user (the Unix user) with two file mappings
under %HOMEPATH% in a folder that does not exist yet: one readable and writable, one readable
only. Asserted: both files are in the prefix's C:\\users\\<user>\\KasmMapTest with the
mapped contents, the agent log shows they were written by the session helper (the
orchestrator's "by the session helper of <user>" line with the access, and the helper's own
forwarded "helper[session N]: file mapping written to ..." line), no temp file is left, the
deployment saw `running` with 0 failed steps; /session_end removes both through the helper
(both log lines again) and reports `destroyed`.

What Wine shows of the access list (it derives a file's DACL from its Unix mode and keeps no
DACL of its own) is printed as "info" lines, not asserted: the Unix mode of each file.

Usage: test_orch_helper_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE --helper HELPER_EXE
                                --prefix WINEPREFIX_DIR
Exit status 0 when every check passes.
"""
import os
import pwd
import re
import shutil
import stat
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
import kasm_sim as K  # noqa: E402  (path set above)
from wine_fixture import (READY_RE_TEXT, AgentRun, Fail, check, check_no_tokens,  # noqa: E402
                          kill_pids, parse_args, post_session, unix_pids, win_path)

START_TIMEOUT = 240  # the first Wine start may create the prefix
TIMEOUT = 120
READY_RE = re.compile(READY_RE_TEXT)
FOLDER = "KasmMapTest"


def xattr_sd(path):
    """The security descriptor Wine stores beside a file (extended attribute user.wine.sd),
    or None."""
    try:
        return os.getxattr(path, "user.wine.sd")
    except OSError:
        return None


def main():
    args = parse_args("--wine-run", "--agent", "--helper", "--prefix")

    prefix = os.path.abspath(args.prefix)
    me = pwd.getpwuid(os.getuid()).pw_name  # the Wine user is the Unix user
    folder = os.path.join(prefix, "drive_c", "users", me, FOLDER)
    tmp = tempfile.mkdtemp(prefix="kasm-orch-helper-wine-")
    helper = os.path.join(tmp, "session_helper.exe")
    shutil.copy(args.helper, helper)
    log = os.path.join(tmp, "agent.log")
    cfg = os.path.join(tmp, "config.yaml")
    sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30, user_sso=True))
    sim.start()
    token = sim.mint_agent_token(lifetime=600)
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("port: 0\nlisten_address: 127.0.0.1\nregistered: true\ndebug: true\n"
                f"api_host: 127.0.0.1\napi_port: {sim.api_port}\nserver_id: {sim.server_id}\n"
                f"log_file: {win_path(log)}\nsession_helper: {win_path(helper)}\n"
                f"agent_jwt_token: {token}\nuser_sso: true\n"
                f"admin_socket: \\\\.\\pipe\\kasm-test-orch-helper-{os.getpid()}\n"
                f"jwt_public_key: {win_path(sim.jwt_public_key_file)}\n"
                f"script_path: {win_path(tmp + '/scripts')}\n"
                f"upload_dir: {win_path(tmp + '/up')}\ndownload_dir: {win_path(tmp + '/down')}\n")
    env = dict(os.environ, KASM_SESSION_POLL_MS="500", KASM_HEARTBEAT_MS="500")
    agent = AgentRun(log, TIMEOUT, interval=0.2)
    text, wait = agent.text, agent.wait
    agent.start(args.wine_run, args.agent, win_path(cfg), env, prefix=prefix)
    helper_tag = win_path(helper)

    rc = 0
    try:
        check(not os.path.exists(folder), f"{folder} exists before the test")
        wait(lambda: "service start work done" in text(), "the service start work",
             START_TIMEOUT)
        m = wait(lambda: READY_RE.search(text()), "the helper's HELLO", START_TIMEOUT)
        sid, user = m.group(1), m.group(2)
        tag = f"helper[session {sid}]: "
        port = int(wait(lambda: re.search(r"listening on https://[^:]+:(\d+)", text()),
                        "the API port").group(1))
        print(f"ok   agent.exe on port {port}; helper of session {sid} ({user}) is ready")

        kasm_id = uuid.uuid4().hex
        ident = K.AgentIdentity(username=f"{me}@kasm.local", user_id=uuid.uuid4().hex,
                                kasm_id=kasm_id, server_id=sim.server_id)
        client = K.AgentClient(f"https://127.0.0.1:{port}", sim, ident)
        files = {"rw": (f"%HOMEPATH%\\{FOLDER}\\notes.txt", b"user notes\r\n"),
                 "ro": (f"%HOMEPATH%\\{FOLDER}\\readonly.ini", b"[ro]\r\n")}
        payload = client.session_payload(file_mappings=files)
        by_dest = {m["destination"]: m for m in payload["file_mappings"].values()}
        by_dest[files["rw"][0]].update(is_readable=True, is_writable=True, is_executable=False)
        by_dest[files["ro"][0]].update(is_readable=True, is_writable=False, is_executable=False)
        post_session(client, "session_start", payload)
        wait(lambda: f"session_start for kasm_id {kasm_id} done" in text(), "the start done")
        t = text().split(f"session_start for kasm_id {kasm_id}")
        check("done (0 step(s) failed)" in t[-1], f"session_start: {t[-1][:500]}")
        wait(lambda: any(s.get("status") == "running" for s in sim.session_statuses(kasm_id)),
             "the running report")
        names = {"rw": "notes.txt", "ro": "readonly.ini"}
        access = {"rw": "rw-", "ro": "r--"}
        for key, name in names.items():
            p = os.path.join(folder, name)
            with open(p, "rb") as f:
                check(f.read() == files[key][1], f"the contents of {p}")
            t = text()
            win = re.search(rf"file mapping \S+ written to (\S+\\{FOLDER}\\{re.escape(name)}) "
                            rf"\((\d+) bytes, access {access[key]}\) by the session helper of "
                            rf"{re.escape(me)}", t)
            check(win, f"no 'written ... by the session helper' line for {name}")
            check(int(win.group(2)) == len(files[key][1]), f"size in the log line of {name}")
            check(re.search(re.escape(tag) + rf"file mapping written to \S+\\{FOLDER}\\"
                            rf"{re.escape(name)} \(\d+ bytes, access {access[key]}\)", t),
                  f"no helper log line for {name}")
            print(f"ok   {win.group(1)} written by the session helper (access {access[key]}), "
                  "contents match")
            try:
                xattrs = sorted(os.listxattr(p))
            except OSError as ex:
                xattrs = [f"(none readable: {ex.strerror})"]
            print(f"info Wine shows {name} with the Unix mode "
                  f"{stat.S_IMODE(os.stat(p).st_mode):04o}, extended attributes {xattrs}")
            sd = xattr_sd(p)
            if sd:
                print(f"info {name}: Wine kept a security descriptor ({len(sd)} bytes): "
                      f"{sd.hex()}")
        check(sorted(os.listdir(folder)) == ["notes.txt", "readonly.ini"],
              f"files in {folder}: {os.listdir(folder)} (a temp file left?)")
        print("ok   no temp file left; 0 failed steps; running reported")

        end = client.session_payload(ending=True)
        end["file_mappings"] = payload["file_mappings"]
        post_session(client, "session_end", end)
        wait(lambda: any(s.get("destroyed") is True for s in sim.session_statuses(kasm_id)),
             "the destroyed report")
        wait(lambda: f"session_end for kasm_id {kasm_id} done" in text(), "the end done")
        t = text()
        check("done (0 step(s) failed)" in t.split(f"session_end for kasm_id {kasm_id}")[-1],
              "session_end had failed steps")
        for name in names.values():
            check(not os.path.exists(os.path.join(folder, name)), f"{name} was not removed")
            check(re.search(rf"removed from \S+\\{FOLDER}\\{re.escape(name)} by the session "
                            rf"helper of {re.escape(me)}", t),
                  f"no 'removed ... by the session helper' line for {name}")
            check(re.search(re.escape(tag) + rf"file mapping removed from \S+\\{FOLDER}\\"
                            rf"{re.escape(name)}", t),
                  f"no helper removal line for {name}")
        print("ok   session_end removed both through the session helper; destroyed reported")
        check_no_tokens(t, sim, token)
        print("ok   no token in the log")
    except Fail as ex:
        rc = 1
        print(f"FAIL {ex}\n---- agent log (end) ----\n{text()[-6000:]}")
    finally:
        agent.stop()
        kill_pids(unix_pids(helper_tag))
        sim.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
