#!/usr/bin/python3
"""test_agentctl_deploy_wine.py - agentctl.exe token refresh, register and reload against
agent.exe --console under Wine (over its own admin pipe) and the deployment simulator: a
refresh works and a simulator fault makes it fail with exit 5 and the deployment's text;
register through the agent moves it to a second simulator, which then sees the new token;
reload applies a changed heartbeat and reports a port change as needing a restart;
agent.exe --register-host (Kasm's command line) tells the running agent.exe to reload. --json
parsed; no token in any output or in the log.

Usage: test_agentctl_deploy_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE
       --agentctl AGENTCTL_EXE [unittest args]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import deploy_fixture as F  # noqa: E402
from deploy_fixture import K  # noqa: E402
from wine_fixture import AgentRun, Fail, parse_args, win_path as winpath  # noqa: E402

ARGS = None
START_TIMEOUT = 180  # the first Wine start may create the prefix
TIMEOUT = 120


class AgentctlDeployWine(unittest.TestCase):
    def setUp(self):
        self.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=600))
        self.sim.start()
        self.sim2 = None
        self.dir = tempfile.mkdtemp(prefix="kasm-wine-ctl-deploy-")
        self.cfg = os.path.join(self.dir, "config.yaml")
        self.log = os.path.join(self.dir, "agent.log")
        self.pipe = "\\\\.\\pipe\\kasm-test-ctl-deploy-%d-%d" % (os.getpid(), time.monotonic_ns())
        token = self.sim.mint_agent_token(lifetime=600)
        self.secrets = [token, self.sim.registration_token, self.sim.checkin_token]
        self.outputs = []
        with open(self.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump({"log_file": winpath(self.log), "port": F.free_port(),
                            "listen_address": "127.0.0.1", "api_host": "127.0.0.1",
                            "api_port": self.sim.api_port, "server_id": self.sim.server_id,
                            "registered": True, "agent_jwt_token": token,
                            "session_helper": winpath(os.path.join(self.dir, "none.exe")),
                            "admin_socket": self.pipe, "custom_unknown_key": "kept"}, f)
        env = dict(os.environ, KASM_HEARTBEAT_MS="500")
        self.agent = AgentRun(self.log, TIMEOUT)
        self.agent.start(ARGS.wine_run, ARGS.agent, winpath(self.cfg), env)
        self.wait(lambda: "admin channel ready" in self.text(), "the admin pipe", START_TIMEOUT)
        self.wait(lambda: len(self.sim.calls("register_component")) >= 2, "the check-ins")
        # ... and the last one's token saved: a config edit before that save would be lost
        newest = self.sim.calls("register_component")[-1].response["server_agent"]["agent_jwt_token"]
        self.wait(lambda: self.config().get("agent_jwt_token") == newest,
                  "the last check-in's token saved in config.yaml")

    def tearDown(self):
        self.agent.stop()
        try:
            calls = self.sim.calls() + (self.sim2.calls() if self.sim2 else [])
            F.assert_no_tokens(self, self.text() + "".join(self.outputs),
                               self.secrets + [c.token for c in calls])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.sim.stop()
            if self.sim2:
                self.sim2.stop()

    def text(self):
        return self.agent.text()

    def wait(self, pred, what, timeout=TIMEOUT):
        try:
            return self.agent.wait(pred, what, timeout)
        except Fail as e:  # a test failure (not an error), with the end of the log
            raise self.failureException(f"{e}\n{self.text()[-3000:]}") from None

    def ctl(self, *words):
        p = subprocess.run([ARGS.wine_run, ARGS.agentctl] + list(words) +
                           ["--cfg", winpath(self.cfg)], capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.outputs += [p.stdout, p.stderr]
        F.assert_no_tokens(self, p.stdout + p.stderr, self.secrets)
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *words):
        rc, out, err = self.ctl(*words, "--json")
        self.assertEqual(rc, 0, f"{words}: exit {rc}, stderr {err!r}")
        return json.loads(out)

    def config(self):
        with open(self.cfg, encoding="utf-8") as f:
            return yaml.safe_load(f)

    def second_sim(self):
        self.sim2 = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=600))
        self.sim2.start()
        self.secrets += [self.sim2.registration_token, self.sim2.checkin_token]
        return self.sim2

    def test_token_refresh_and_reload(self):
        n = len(self.sim.calls("refresh_token"))
        j = self.ctl_json("token", "refresh")
        self.assertIs(j["refreshed"], True)
        self.assertEqual(j["api_port"], self.sim.api_port)
        self.assertEqual(len(self.sim.calls("refresh_token")), n + 1)
        st = self.ctl_json("token", "status")
        self.assertTrue(st["last_refresh"]["ok"])
        self.assertIsNotNone(st["next_refresh"])
        self.sim.inject("http500", "refresh_token", count=1)
        rc, out, err = self.ctl("token", "refresh")
        self.assertEqual(rc, 5, err)
        self.assertIn("the token refresh failed", err)
        self.assertFalse(self.ctl_json("token", "status")["last_refresh"]["ok"])
        # reload: a new port needs a restart
        c = self.config()
        c["port"] = F.free_port()
        c["debug"] = True
        with open(self.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump(c, f)
        j = self.ctl_json("reload")
        self.assertEqual(j["applied"], ["debug"])
        self.assertEqual(j["restart_needed"], ["port"])

    def test_register_through_the_agent(self):
        b = self.second_sim()
        rc, out, err = self.ctl("register", "--host", "127.0.0.1", "--port", str(b.api_port),
                                "--token", b.registration_token)
        self.assertEqual(rc, 0, err)
        self.assertIn("server id        " + b.server_id, out)
        c = self.config()
        self.assertEqual(c["api_port"], b.api_port)
        self.assertEqual(b.decode(c["agent_jwt_token"])["server_id"], b.server_id)
        self.assertEqual(c["custom_unknown_key"], "kept")
        self.wait(lambda: [k for k in b.calls("set_server_status") if k.verdict == "valid"],
                  "a keepalive to the new deployment")
        self.assertEqual(self.ctl_json("status")["server_id"], b.server_id)

    def test_kasm_command_line_reloads_the_running_agent(self):
        b = self.second_sim()
        p = subprocess.run([ARGS.wine_run, ARGS.agent, "/S", "--register-host", "127.0.0.1",
                            "--register-port", str(b.api_port), "--register-token",
                            b.registration_token, "--cfg", winpath(self.cfg)],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.outputs += [p.stdout, p.stderr]
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("The running agent reloaded its configuration", p.stdout)
        self.assertNotIn("net stop kasm", p.stdout)
        self.wait(lambda: [k for k in b.calls("set_server_status") if k.verdict == "valid"],
                  "a keepalive to the new deployment")


if __name__ == "__main__":
    ARGS, rest = parse_args("--wine-run", "--agent", "--agentctl", known=True)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
