#!/usr/bin/python3
"""test_orch_wine.py - the session orchestrator of agent.exe under Wine (service/orch/):
agent.exe --console checks in with the deployment simulator (user_sso on), installs .cmd
scripts and builtin hooks from the server's file mappings, then the simulator plays the
deployment: POST /session_start (a file mapping outside any profile, a storage mapping) and
POST /session_end. Asserted: the hooks and scripts ran through cmd.exe in the order of
KASM_INTERFACE.md section 5 with their KASM_* variables (map_storage deferred: that user has
no Windows session), the mapped file was written and removed again, the deployment saw the
mapping's contents fetched and then `running`, and `destroyed` at the end; a second
session_start of the same kasm_id does not run again; a session of the user of Wine's own
session runs map_storage and unmap_storage as that user (CreateProcessAsUserW); no token in
the log.

Usage: test_orch_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE
Exit status 0 when every check passes.
"""
import os
import re
import shutil
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
import kasm_sim as K  # noqa: E402  (path set above)
from wine_fixture import (AgentRun, Fail, check, check_no_tokens, parse_args,  # noqa: E402
                          post_session, read_text, win_path)

START_TIMEOUT = 240  # the first Wine start may create the prefix
PIPE = "\\\\.\\pipe\\kasm-test-orch-%d" % os.getpid()


def hook(name, out):
    """A .cmd hook appending "<name> <kasm_id> <its own folder>" to out (an absolute path: a
    hook run as the user runs from a private copy elsewhere)."""
    return (b"@echo off\r\n>>\"" + out.encode() + b"\" echo " + name.encode() +
            b" %KASM_KASM_ID% %~dp0\r\n")


START_CMD = (b"@echo off\r\n"
             b">>\"%~dp0..\\..\\start.txt\" echo id=%KASM_KASM_ID% user=%KASM_USERNAME% "
             b"uid=%KASM_USER_ID% host=%KASM_API_HOST% port=%KASM_API_PORT% "
             b"remote=%KASM_IS_REMOTE_APP%\r\n"
             b">>\"%~dp0..\\..\\hooks.txt\" echo session_start %KASM_KASM_ID%\r\n")
END_CMD = (b"@echo off\r\n"
           b">>\"%~dp0..\\..\\hooks.txt\" echo session_end %KASM_KASM_ID%\r\n")


def main():
    args = parse_args("--wine-run", "--agent")

    tmp = tempfile.mkdtemp(prefix="kasm-orch-wine-")
    log = os.path.join(tmp, "agent.log")
    cfg = os.path.join(tmp, "config.yaml")
    sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30, user_sso=True))
    sim.start()
    token = sim.mint_agent_token(lifetime=600)
    sim.add_file_mapping("scripts\\session_start\\10_start.cmd", START_CMD)
    sim.add_file_mapping("scripts\\session_end\\10_end.cmd", END_CMD)
    for name in ("load_persistent_profile", "save_persistent_profile", "map_storage",
                 "unmap_storage"):
        sim.add_file_mapping(f"scripts\\builtin\\{name}.cmd",
                             hook(name, win_path(tmp + "/hooks.txt")))
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("port: 0\nlisten_address: 127.0.0.1\nregistered: true\n"
                f"api_host: 127.0.0.1\napi_port: {sim.api_port}\nserver_id: {sim.server_id}\n"
                f"log_file: {win_path(log)}\nsession_helper: {win_path(tmp + '/none.exe')}\n"
                f"agent_jwt_token: {token}\nadmin_socket: {PIPE}\nscript_timeout: 30\n"
                f"jwt_public_key: {win_path(sim.jwt_public_key_file)}\n"
                f"script_path: {win_path(tmp + '/scripts')}\n")
    env = dict(os.environ, KASM_HEARTBEAT_MS="500")
    agent = AgentRun(log, 120, interval=0.2, tail=True)
    text, wait = agent.text, agent.wait
    agent.start(args.wine_run, args.agent, win_path(cfg), env)

    def read(name):
        return read_text(os.path.join(tmp, name))

    rc = 0
    try:
        wait(lambda: "service start work done" in text(), "the service start work",
             START_TIMEOUT)
        m = wait(lambda: re.search(r"listening on https://[^:]+:(\d+)", text()), "the API port")
        port = int(m.group(1))
        kasm_id = uuid.uuid4().hex
        ident = K.AgentIdentity(username="kasm_wine_user", user_id=uuid.uuid4().hex,
                                kasm_id=kasm_id, server_id=sim.server_id)
        client = K.AgentClient(f"https://127.0.0.1:{port}", sim, ident)
        shared = os.path.join(tmp, "shared", "app.ini")
        payload = client.session_payload(file_mappings={"m": (win_path(shared), b"[app]\r\n")})
        payload["storage_mappings"] = {"Share": {"volume_config": {"driver_opts": {"type": "local"}},
                                                 "mount_config": {"read_only": True}}}
        since = sim.calls()[-1].seq
        for _ in range(2):  # the second one must not run again
            post_session(client, "session_start", payload)
        wait(lambda: any(s.get("status") == "running" for s in sim.session_statuses(kasm_id)),
             "the running report")
        wait(lambda: f"session_start for kasm_id {kasm_id} done" in text(), "the start done")
        wait(lambda: "this session already started" in text(), "the duplicate refused")
        t = text()
        start = read("start.txt").strip().splitlines()
        check(len(start) == 1, f"session_start scripts ran {len(start)} times")
        check(start[0].strip() == f"id={kasm_id} user=kasm_wine_user uid={ident.user_id} "
              f"host=127.0.0.1 port={sim.api_port} remote=false", f"start.txt {start!r}")
        with open(shared, "rb") as f:
            check(f.read() == b"[app]\r\n", "the mapped file's contents")
        calls = [c for c in sim.calls(since=since)
                 if c.path in ("/api/admin/get_file_mapping_contents",
                               "/api/set_kasm_session_status")]
        check([c.path.rsplit("/", 1)[1] for c in calls] ==
              ["get_file_mapping_contents", "set_kasm_session_status"],
              f"calls {[c.path for c in calls]}")
        check(calls[-1].body == {"kasm_id": kasm_id, "status": "running", "status_progress": 0},
              f"running body {calls[-1].body}")
        print("ok   session_start: profile hook, file mapping, map_storage deferred, session_start "
              ".cmd with KASM_* variables, then running; the duplicate did not run")

        end = client.session_payload(ending=True)
        end["file_mappings"] = payload["file_mappings"]
        end["storage_mappings"] = payload["storage_mappings"]
        post_session(client, "session_end", end)
        wait(lambda: any(s.get("destroyed") is True for s in sim.session_statuses(kasm_id)),
             "the destroyed report")
        hooks = [ln.split()[0] for ln in read("hooks.txt").splitlines() if ln.strip()]
        # kasm_wine_user has no Windows session: map_storage waited for a logon that never
        # came (dropped at session_end), unmap_storage ran as the service
        check(hooks == ["load_persistent_profile", "session_start",
                        "unmap_storage", "save_persistent_profile", "session_end"],
              f"hooks in order: {hooks}")
        t = text()
        check(f"kasm_id {kasm_id}: user kasm_wine_user has no session yet: map_storage for 1 "
              "storage mapping(s) waits for the user's logon" in t, "map_storage deferred")
        check(f"kasm_id {kasm_id}: user kasm_wine_user never logged on during the session" in t,
              "the pending mount dropped")
        check(f"kasm_id {kasm_id}: user kasm_wine_user has no session any more: unmap_storage "
              "runs as the service" in t, "unmap_storage as the service")
        check(not os.path.exists(shared), "the mapped file was not removed at session_end")
        last = sim.session_statuses(kasm_id)[-1]
        check(last == {"kasm_id": kasm_id, "status_progress": 0, "destroyed": True},
              f"destroyed body {last}")
        print("ok   session_end: unmap_storage, save hook, session_end .cmd, file removed, "
              "then destroyed")

        # the user of Wine's own session: the storage hooks run as that user in that session
        # (WTSQueryUserToken, CreateProcessAsUserW), map_storage before the running report
        m = wait(lambda: re.search(r"session (\d+): user (\S+) logged on", text()),
                 "Wine's session in the session manager")
        sid, wuser = m.group(1), m.group(2)
        kasm2 = uuid.uuid4().hex
        ident2 = K.AgentIdentity(username=wuser + "@example.com", user_id=uuid.uuid4().hex,
                                 kasm_id=kasm2, server_id=sim.server_id)
        client2 = K.AgentClient(f"https://127.0.0.1:{port}", sim, ident2)
        p2 = client2.session_payload()
        p2["storage_mappings"] = payload["storage_mappings"]
        post_session(client2, "session_start", p2)
        wait(lambda: f"session_start for kasm_id {kasm2} done" in text(), "the second start")
        e2 = client2.session_payload(ending=True)
        e2["storage_mappings"] = payload["storage_mappings"]
        post_session(client2, "session_end", e2)
        wait(lambda: f"session_end for kasm_id {kasm2} done" in text(), "the second end")
        lines2 = [ln.split() for ln in read("hooks.txt").splitlines()
                  if len(ln.split()) > 1 and ln.split()[1] == kasm2]
        hooks2 = [ln[0] for ln in lines2]
        check(hooks2[:2] == ["load_persistent_profile", "map_storage"] and
              "unmap_storage" in hooks2, f"hooks of the user's session: {hooks2}")
        # as the user a hook runs from a private copy (the scripts folder is admin-only)
        dirs = {ln[0]: ln[2] for ln in lines2 if len(ln) > 2}
        check("\\tmp\\ps-" in dirs["map_storage"] and "\\tmp\\ps-" in dirs["unmap_storage"]
              and dirs["load_persistent_profile"].lower().endswith("\\builtin\\"),
              f"the hooks' folders: {dirs}")
        t = text()
        part = t.split(f"session_start for kasm_id {kasm2} (user")[1]
        for needle in (f"kasm_id {kasm2}: map_storage for 1 storage mapping(s) runs as user "
                       f"{wuser} in session {sid}",
                       f"map_storage.cmd: running as user {wuser} in session {sid}",
                       "map_storage.cmd: exit code 0",
                       f"kasm_id {kasm2}: unmap_storage for 1 storage mapping(s) runs as user "
                       f"{wuser} in session {sid}",
                       "unmap_storage.cmd: exit code 0"):
            check(needle in part, f"missing in the log: {needle}")
        check(part.index("map_storage.cmd: exit code 0") <
              part.index(f"kasm_id {kasm2}: reported running"), "map_storage before running")
        print(f"ok   storage hooks as user {wuser} in Wine's session {sid}")

        t = text()
        check_no_tokens(t, sim, token, jwt_shaped=True)
        print("ok   no token in the log")
    except Fail as ex:
        print(f"FAIL {ex}")
        print(text()[-4000:])
        rc = 1
    finally:
        agent.stop()
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
