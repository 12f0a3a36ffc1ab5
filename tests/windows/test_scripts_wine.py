#!/usr/bin/python3
"""test_scripts_wine.py - the service-start work of agent.exe under Wine (service/scripts/):
agent.exe --console checks in with the deployment simulator, installs the script file
mappings (.cmd scripts under scripts\\service_startup, a .reg file under scripts\\registry),
imports the .reg file with reg.exe import, then runs the .cmd scripts in name order through
cmd.exe with their KASM_* variables: one reads the imported registry value back with
reg query, one hangs and is killed at script_timeout, one fails and its output is logged with
the token redacted. No token appears in the log.

Usage: test_scripts_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE
Exit status 0 when every check passes.
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
import kasm_sim as K  # noqa: E402  (path set above)
from wine_fixture import AgentRun, Fail, check, check_no_tokens, parse_args, win_path  # noqa: E402

START_TIMEOUT = 240  # the first Wine start may create the prefix
PIPE = "\\\\.\\pipe\\kasm-test-scripts-%d" % os.getpid()

ENV_CMD = (b"@echo off\r\n"
           b">\"%~dp0..\\..\\env.txt\" echo id=%KASM_SERVER_ID% host=%KASM_API_HOST% "
           b"port=%KASM_API_PORT%\r\n"
           b"reg query HKLM\\Software\\KasmOpenAgentTest /v Marker >\"%~dp0..\\..\\regq.txt\" 2>&1\r\n")
HANG_CMD = b"@echo off\r\n:loop\r\ngoto loop\r\n"
FAIL_CMD = b"@echo off\r\necho failing with %KASM_JWT%\r\nexit /b 5\r\n"
REG = (b"Windows Registry Editor Version 5.00\r\n\r\n"
       b"[HKEY_LOCAL_MACHINE\\Software\\KasmOpenAgentTest]\r\n"
       b"\"Marker\"=\"kasm-wine-42\"\r\n")


def main():
    args = parse_args("--wine-run", "--agent")

    tmp = tempfile.mkdtemp(prefix="kasm-scripts-wine-")
    log = os.path.join(tmp, "agent.log")
    cfg = os.path.join(tmp, "config.yaml")
    sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30))
    sim.start()
    token = sim.mint_agent_token(lifetime=600)
    sim.add_file_mapping("scripts\\service_startup\\10_env.cmd", ENV_CMD)
    sim.add_file_mapping("scripts\\service_startup\\20_hang.cmd", HANG_CMD)
    sim.add_file_mapping("scripts\\service_startup\\30_fail.cmd", FAIL_CMD)
    sim.add_file_mapping("scripts\\registry\\test.reg", REG)
    sim.add_file_mapping("scripts\\..\\evil.cmd", b"echo evil\r\n", mapping_id="escaping")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("port: 0\nlisten_address: 127.0.0.1\nregistered: true\n"
                f"api_host: 127.0.0.1\napi_port: {sim.api_port}\nserver_id: {sim.server_id}\n"
                f"log_file: {win_path(log)}\nsession_helper: {win_path(tmp + '/none.exe')}\n"
                f"agent_jwt_token: {token}\nadmin_socket: {PIPE}\nscript_timeout: 3\n"
                f"script_path: {win_path(tmp + '/scripts')}\n")
    env = dict(os.environ, KASM_HEARTBEAT_MS="500")
    agent = AgentRun(log, 120, interval=0.2, tail=True)
    text, wait = agent.text, agent.wait
    agent.start(args.wine_run, args.agent, win_path(cfg), env)

    rc = 0
    try:
        wait(lambda: "service start work done" in text(), "the service start work",
             START_TIMEOUT)
        t = text()
        check("file mapping escaping refused" in t, "the escaping mapping was not refused")
        check(not os.path.exists(os.path.join(tmp, "evil.cmd")), "evil.cmd was written")
        check("4 installed" in t, "not 4 mappings installed")
        print("ok   4 script mappings installed, the escaping one refused")
        check("registry file test.reg imported (reg.exe import: exit code 0)" in t,
              "reg.exe import not logged as a success")
        with open(os.path.join(tmp, "regq.txt"), encoding="utf-8", errors="replace") as f:
            q = f.read()
        check("kasm-wine-42" in q, f"reg query did not read the value back: {q!r}")
        print("ok   test.reg imported with reg.exe import, the value read back with reg query")
        with open(os.path.join(tmp, "env.txt"), encoding="utf-8", errors="replace") as f:
            envtxt = f.read().strip()
        check(envtxt == f"id={sim.server_id} host=127.0.0.1 port={sim.api_port}",
              f"env.txt {envtxt!r}")
        print("ok   10_env.cmd ran through cmd.exe with KASM_SERVER_ID/API_HOST/API_PORT")
        check("20_hang.cmd: timed out after 3 s; it was killed with its child processes" in t,
              "the hanging script was not killed at the timeout")
        check(t.index("10_env.cmd: exit code 0") < t.index("20_hang.cmd: timed out")
              < t.index("30_fail.cmd: failed with exit code 5"), "the scripts ran out of order")
        check("30_fail.cmd| failing with <redacted>" in t, "the failing script's output")
        print("ok   20_hang.cmd killed at the 3 s timeout; 30_fail.cmd's output logged, "
              "token redacted; name order kept")
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
