#!/usr/bin/python3
"""test_agentctl_doctor_wine.py - `agentctl.exe doctor` against `agent.exe --console` under Wine.

agent.exe registers with the deployment simulator (tests/sim/kasm_sim.py, in this process) the
way Kasm's installer does, then runs with --console and its own admin pipe; its session helper
path names a missing file. `agentctl.exe doctor --json` is parsed: the 14 checks in order, each
with a verdict and, when not ok, a fix; the verdicts Wine can support are asserted (config,
certificate and its key, JWT key, the HTTPS port, the deployment, the token, the clock, winfsp
skipped); the ones Wine cannot show as Windows would are only checked for shape (file DACLs:
Wine keeps none on Unix files and shows Everyone; the firewall: no INetFwPolicy2 policy, so
'skipped' with the reason; helpers: the missing helper). The exit code matches (6 when a check
failed). Then the simulator goes down: deployment fails, clock_skew is skipped, exit 6. The
human table is printed.

Usage: test_agentctl_doctor_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE --agentctl CTL_EXE
Exit status 0 when every check passes.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim"))
import kasm_sim as K  # noqa: E402  (path set above)
from wine_fixture import AgentRun, Fail, check, free_port, parse_args, win_path  # noqa: E402

START_TIMEOUT = 180  # the first Wine start may create the prefix
TIMEOUT = 90
PIPE = "\\\\.\\pipe\\kasm-test-doctor-%d" % os.getpid()
CHECKS = ["config", "key_file", "config_acl", "certificate", "certificate_key", "jwt_key",
          "https_port", "firewall", "deployment", "token", "clock_skew", "helpers", "winfsp",
          "disk_space"]


def main():
    args = parse_args("--wine-run", "--agent", "--agentctl")

    sim = K.KasmSimulator(K.SimConfig())
    sim.start()
    tmp = tempfile.mkdtemp(prefix="kasm-doctor-wine-")
    log = os.path.join(tmp, "agent.log")
    cfg = os.path.join(tmp, "config.yaml")
    wcfg = win_path(cfg)
    port = free_port()
    with open(cfg, "w", encoding="utf-8") as f:
        yaml.safe_dump({"port": port, "listen_address": "127.0.0.1", "log_file": win_path(log),
                        "session_helper": win_path(tmp + "/none.exe"), "admin_socket": PIPE,
                        "upload_dir": win_path(tmp + "/Upload")}, f)
    env = dict(os.environ)
    agent = AgentRun(log, TIMEOUT)
    text, wait = agent.text, agent.wait

    def doctor(*words):
        p = subprocess.run([args.wine_run, args.agentctl, "doctor"] + list(words) +
                           ["--cfg", wcfg], capture_output=True, text=True, timeout=TIMEOUT,
                           env=env)
        for t in (p.stdout, p.stderr):
            check("eyJ" not in t, "a token was printed")
            check("PRIVATE KEY" not in t, "a key was printed")
        return p.returncode, p.stdout, p.stderr

    def doctor_json():
        rc, out, err = doctor("--json")
        check(rc in (0, 6), f"doctor --json: exit {rc}, stderr {err!r}")
        checks = json.loads(out)
        check([c["check"] for c in checks] == CHECKS, f"checks {[c['check'] for c in checks]}")
        for c in checks:
            check(set(c) == {"check", "verdict", "detail", "fix"}, f"fields {c}")
            check(c["verdict"] in ("ok", "warning", "fail", "skipped"), f"verdict {c}")
            check(c["detail"], f"no detail: {c}")
            if c["verdict"] in ("warning", "fail"):
                check(c["fix"], f"{c['check']} is {c['verdict']} without a fix")
        failed = any(c["verdict"] == "fail" for c in checks)
        check(rc == (6 if failed else 0), f"exit {rc} with failed={failed}")
        return rc, {c["check"]: c for c in checks}

    rc = 0
    try:
        p = subprocess.run([args.wine_run, args.agent, "/S", "--register-host", "127.0.0.1",
                            "--register-port", str(sim.api_port), "--register-token",
                            sim.registration_token, "--cfg", wcfg],
                           capture_output=True, text=True, timeout=START_TIMEOUT, env=env)
        check(p.returncode == 0, f"registration: exit {p.returncode}: {p.stderr[-800:]}")
        agent.start(args.wine_run, args.agent, wcfg, env)
        wait(lambda: f"admin channel ready at {PIPE}" in text(), "the admin pipe", START_TIMEOUT)
        wait(lambda: "listening on https://" in text(), "the HTTPS API")
        wait(lambda: "checked in with the deployment" in text(), "the check-in")

        code, c = doctor_json()
        for name in ("config", "certificate", "certificate_key", "jwt_key", "https_port",
                     "deployment", "token", "clock_skew"):
            check(c[name]["verdict"] == "ok", f"{name}: {c[name]}")
        check(f"127.0.0.1:{port} (https)" in c["https_port"]["detail"], c["https_port"])
        check(f"127.0.0.1:{sim.api_port} healthy" in c["deployment"]["detail"], c["deployment"])
        check("days left" in c["certificate"]["detail"], c["certificate"])
        check(c["winfsp"]["verdict"] == "skipped", c["winfsp"])
        check(c["disk_space"]["verdict"] in ("ok", "warning"), c["disk_space"])
        check(c["helpers"]["verdict"] in ("ok", "warning", "fail"), c["helpers"])
        # Wine: no Windows Firewall policy to read (or, if a future Wine has one, a verdict)
        fw = c["firewall"]
        check(fw["verdict"] in ("ok", "fail", "skipped"), fw)
        if fw["verdict"] == "skipped":
            check("cannot be read" in fw["detail"] and "HRESULT" in fw["detail"], fw)
        # Wine keeps no DACL on Unix files: whatever it shows, a failure names icacls
        for name in ("key_file", "config_acl"):
            check(c[name]["verdict"] in ("ok", "fail"), c[name])
            if c[name]["verdict"] == "fail":
                check("icacls" in c[name]["fix"], c[name])
        print("ok   doctor --json under Wine: " +
              ", ".join(f"{k} {v['verdict']}" for k, v in c.items()) + f"; exit {code}")
        print(f"     firewall: {fw['detail']}")
        print(f"     key_file: {c['key_file']['detail']}")

        rc2, out, err = doctor()
        check(rc2 == code, f"doctor: exit {rc2}, --json exited {code}")
        check(out.startswith("VERDICT  CHECK") and "14 checks:" in out, f"table: {out!r}")
        print("ok   doctor (table):\n" + out)

        sim.inject("down")
        code, c = doctor_json()
        check(code == 6, f"deployment down: exit {code}")
        check(c["deployment"]["verdict"] == "fail", c["deployment"])
        check(f"cannot connect to 127.0.0.1:{sim.api_port}" in c["deployment"]["detail"],
              c["deployment"])
        check(c["clock_skew"]["verdict"] == "skipped", c["clock_skew"])
        sim.clear_faults()
        print("ok   the deployment down: deployment fail (cannot connect), clock_skew skipped, "
              "exit 6")
    except Fail as e:
        rc = 1
        print(f"FAIL {e}\n---- agent log ----\n{text()[-6000:]}")
    finally:
        agent.stop(TIMEOUT)
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
