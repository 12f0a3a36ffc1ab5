#!/usr/bin/python3
"""test_agentctl_wine.py - agentctl.exe and agent.exe under Wine over the admin named pipe.

agent.exe --console creates the pipe named by its config's admin_socket (a name of its own, so
that parallel Wine tests do not collide); agentctl.exe, given the same config, connects at
identification level, checks the pipe's server (no Kasm service under Wine: same user), and
`status --json`, `token status --json`, `sessions --json` and `logs --json` are parsed and
checked against the config and the log; `status` prints its table. A second agent.exe with the
same config fails to start naming the pipe. After agent.exe stops, agentctl.exe exits 3.

Usage: test_agentctl_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE --agentctl AGENTCTL_EXE
Exit status 0 when every check passes.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from wine_fixture import AgentRun, Fail, check, parse_args, stop_group, win_path

START_TIMEOUT = 180  # the first Wine start may create the prefix
TIMEOUT = 60
SERVER_ID = "0123456789abcdef0123456789abcdef"
PIPE = "\\\\.\\pipe\\kasm-test-agentctl-%d" % os.getpid()
TOKEN = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
         "eyJzZXJ2ZXJfaWQiOiIwMTIzNDU2Nzg5YWJjZGVmIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
         "c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk")


def main():
    args = parse_args("--wine-run", "--agent", "--agentctl")

    tmp = tempfile.mkdtemp(prefix="kasm-agentctl-wine-")
    log = os.path.join(tmp, "agent.log")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("port: 0\nlisten_address: 127.0.0.1\ndebug: true\n"
                f"api_host: kasm.example.test\napi_port: 8443\nserver_id: {SERVER_ID}\n"
                f"log_file: {win_path(log)}\nsession_helper: {win_path(tmp + '/none.exe')}\n"
                f"agent_jwt_token: {TOKEN}\nadmin_socket: {PIPE}\n")
    env = dict(os.environ)
    wcfg = win_path(cfg)
    agent = AgentRun(log, TIMEOUT)
    text, wait = agent.text, agent.wait
    agent.start(args.wine_run, args.agent, wcfg, env)

    def ctl(*words):
        p = subprocess.run([args.wine_run, args.agentctl] + list(words) + ["--cfg", wcfg],
                           capture_output=True, text=True, timeout=TIMEOUT, env=env)
        for t in (p.stdout, p.stderr):
            check(TOKEN.split(".")[2] not in t, "the token's signature was printed")
        return p.returncode, p.stdout, p.stderr

    def ctl_json(*words):
        rc, out, err = ctl(*words, "--json")
        check(rc == 0, f"{words}: exit {rc}, stderr {err!r}")
        return json.loads(out)

    rc = 0
    try:
        wait(lambda: f"admin channel ready at {PIPE}" in text(), "the admin pipe", START_TIMEOUT)
        wait(lambda: "listening on https://" in text(), "the HTTPS API")
        pipe = text().split("admin channel ready at ", 1)[1].split()[0]
        j = ctl_json("status")
        check(j["server_id"] == SERVER_ID, f"server_id {j['server_id']!r}")
        check(j["config"] == wcfg, f"config {j['config']!r}")
        check(j["admin_channel"] == pipe, f"admin_channel {j['admin_channel']!r}")
        check(j["api_hosts"] == ["kasm.example.test"] and j["api_port"] == 8443,
              f"api {j['api_hosts']} {j['api_port']}")
        check(f"listening on https://127.0.0.1:{j['listen_port']}" in text(),
              f"listen_port {j['listen_port']}")
        check(j["token_expires"] == 4102444800 and not j["token_expired"], "token expiry")
        print(f"ok   status --json over {pipe} (pid {j['pid']}, version {j['version']})")
        rc2, out, err = ctl("status", "--debug")
        check(rc2 == 0 and f"server id        {SERVER_ID}" in out, f"status: {rc2} {out!r}")
        check("no running Kasm service" in err and "runs as this user" in err,
              f"--debug does not explain the server check: {err!r}")
        print("ok   status (table); --debug: no Kasm service, the pipe's server runs as this user")
        j = ctl_json("token", "status")
        check(j["token_expires_text"] == "2100-01-01 00:00:00 UTC", f"token status {j}")
        j = ctl_json("sessions")
        check(isinstance(j["sessions"], list) and j["session_manager"] is True, f"sessions {j}")
        nsess = len(j["sessions"])
        j = ctl_json("logs", "--lines", "1000")
        check(any(r["message"].startswith("admin channel ready at ") for r in j["records"]),
              "logs: the admin channel's start is missing")
        print(f"ok   token status, sessions ({nsess} rows), logs ({len(j['records'])} records)")
        j = ctl_json("config")
        check(j["config"] == wcfg and "agent_jwt_token: <redacted>\n" in j["yaml"] and
              f"server_id: \"{SERVER_ID}\"" in j["yaml"], f"config: {j}")
        print("ok   config --json: the configuration in use, the token redacted")

        p2 = subprocess.run([args.wine_run, args.agent, "--console", "--cfg", wcfg],
                            capture_output=True, text=True, timeout=TIMEOUT, env=env)
        check(p2.returncode == 1, f"second agent.exe: exit {p2.returncode}")
        check(f"cannot create the admin channel: another agent or another program holds {pipe}"
              in p2.stderr, f"second agent.exe: {p2.stderr[-400:]!r}")
        j = ctl_json("status")
        print("ok   a second agent.exe fails to start naming the pipe; the first still answers")

        stop_group(agent.proc, TIMEOUT, only_running=False)
        end = time.monotonic() + TIMEOUT
        while True:
            rc3, out, err = ctl("status")
            if rc3 == 3 or time.monotonic() > end:
                break
            time.sleep(0.5)
        check(rc3 == 3 and "the agent is not running" in err, f"after stop: {rc3} {err!r}")
        print("ok   agentctl.exe exits 3 once agent.exe is gone")
    except Fail as e:
        rc = 1
        print(f"FAIL {e}\n---- agent log ----\n{text()[-6000:]}")
    finally:
        agent.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
