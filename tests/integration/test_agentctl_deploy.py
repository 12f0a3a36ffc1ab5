#!/usr/bin/python3
"""test_agentctl_deploy.py - the agentctl commands that act on the deployment trust (issue 8):
token refresh (ok, and refused by a simulator fault), register through the running agent (the
second simulator then sees the new token; a closed port and a refused token name the failed
step), reload (a changed heartbeat_interval and api_host applied at once, a port change
reported as needing a restart, a malformed config refused with the running one kept), the new
fields of status / token status, `agent --register-host` telling the running agent to reload,
a token save keeping the administrator's edits of config.yaml (merge-on-save) and a broken
config.yaml left alone with the new token kept in memory until it is fixed,
a non-root user refused, every --json output parsed and no secret in any output or log.

Usage: test_agentctl_deploy.py --bin-dir DIR [unittest options]
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

import yaml

import deploy_fixture as F
from deploy_fixture import K

TIMEOUT = 120


class AgentctlDeployTest(unittest.TestCase):
    def setUp(self):
        self.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=600))
        self.sim.start()
        self.sim2 = None
        self.a = F.AgentDir()
        self.outputs = []
        self.secrets = [self.sim.registration_token, self.sim.checkin_token]

    def tearDown(self):
        self.a.stop()
        text = self.a.read_log() + self.a.console() + "".join(self.outputs)
        try:
            calls = self.sim.calls() + (self.sim2.calls() if self.sim2 else [])
            F.assert_no_tokens(self, text, self.secrets + [c.token for c in calls])
        finally:
            self.a.cleanup()
            self.sim.stop()
            if self.sim2:
                self.sim2.stop()

    # ---- helpers ---------------------------------------------------------------------------

    def start_agent(self, heartbeat_ms=300, **extra):
        token = self.sim.mint_agent_token(lifetime=600)
        self.secrets.append(token)
        self.a.write_config(api_host="127.0.0.1", api_port=self.sim.api_port,
                            server_id=self.sim.server_id, registered=True,
                            agent_jwt_token=token, **extra)
        if heartbeat_ms is None:  # heartbeat_interval of the config, not KASM_HEARTBEAT_MS
            env = {k: v for k, v in os.environ.items() if k != "KASM_HEARTBEAT_MS"}
            self.a.out = open(os.path.join(self.a.dir, "stdout.txt"), "w", encoding="utf-8")
            self.a.proc = subprocess.Popen([F.agent_bin(), "--cfg", self.a.cfg],
                                           stdout=self.a.out, stderr=subprocess.STDOUT, env=env)
        else:
            self.a.start(heartbeat_ms=heartbeat_ms)
        self.a.wait_log("admin channel ready")
        F.wait_until(lambda: len(self.sim.calls("register_component")) >= 2, timeout=30,
                     what="the check-ins")
        # ... and the agent has saved the token of the last one (the save merges, so an edit
        # made before it would survive too: test_admin_edit_survives_token_save; waiting keeps
        # the tests that compare the file's token simple)
        newest = self.sim.calls("register_component")[-1].response["server_agent"]["agent_jwt_token"]
        self.secrets.append(newest)
        F.wait_until(lambda: self.a.config().get("agent_jwt_token") == newest, timeout=30,
                     what="the last check-in's token saved in config.yaml")

    def ctl(self, *args, user=None, cfg=None, stdin=None):
        cmd = [os.path.join(F.BIN_DIR, "agentctl")] + list(args) + ["--cfg", cfg or self.a.cfg]
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                           input=stdin if stdin is not None else "")
        self.outputs += [p.stdout, p.stderr]
        F.assert_no_tokens(self, p.stdout + p.stderr, self.secrets)
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args):
        rc, out, err = self.ctl(*args, "--json")
        self.assertEqual(rc, 0, f"{args}: exit {rc}, stderr {err!r}")
        return json.loads(out)

    def edit_config(self, **changes):
        c = self.a.config()
        c.update(changes)
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump(c, f)

    # ---- token refresh / token status -------------------------------------------------------

    def test_token_refresh_ok(self):
        self.start_agent()
        before = self.ctl_json("token", "status")
        self.assertIsNotNone(before["next_refresh"])
        self.assertGreater(before["next_refresh"], before["token_expires"] - 600)
        self.assertLessEqual(before["next_refresh"], before["token_expires"])
        F.wait_until(lambda: self.ctl_json("token", "status")["last_checkin"], what="check-in")
        n = len(self.sim.calls("refresh_token"))
        j = self.ctl_json("token", "refresh")
        self.assertIs(j["refreshed"], True)
        self.assertEqual(j["api_host"], "127.0.0.1")
        self.assertEqual(j["api_port"], self.sim.api_port)
        self.assertGreaterEqual(j["token_expires"], before["token_expires"])
        calls = self.sim.calls("refresh_token")
        self.assertEqual(len(calls), n + 1)
        self.assertEqual(calls[-1].status, 200)
        new = calls[-1].response["agent_jwt_token"] if "agent_jwt_token" in calls[-1].response \
            else None
        self.secrets += [c.token for c in calls]
        if new:
            F.wait_until(lambda: self.a.config().get("agent_jwt_token") == new,
                         what="the refreshed token saved")
        st = self.ctl_json("token", "status")
        self.assertTrue(st["last_refresh"]["ok"])
        self.assertEqual(st["last_refresh"]["what"], "refresh")
        self.assertIsNone(st["last_refresh"]["error"])
        self.assertEqual(st["last_api_host"], "127.0.0.1")
        self.assertEqual(st["last_api_port"], self.sim.api_port)
        self.assertIn(st["last_checkin"]["what"],
                      ("keepalive", "check-in (running)", "check-in (starting)"))
        self.assertFalse(st["needs_registration"])
        # the tables
        rc, out, err = self.ctl("token", "refresh")
        self.assertEqual(rc, 0, err)
        self.assertIn("token refresh    ok", out)
        self.assertIn("api host         127.0.0.1:%d" % self.sim.api_port, out)
        rc, out, err = self.ctl("token", "status")
        self.assertEqual(rc, 0, err)
        for line in ("next refresh", "last check-in", "last refresh", "last api host"):
            self.assertIn(line, out)
        self.assertIn("refresh: ok", out)
        s = self.ctl_json("status")
        self.assertIn("next_refresh", s)
        self.assertIn("last_checkin", s)
        rc, out, err = self.ctl("status")
        self.assertIn("last check-in", out)

    def test_token_refresh_refused(self):
        self.start_agent()
        self.sim.inject("http500", "refresh_token", count=1)
        rc, out, err = self.ctl("token", "refresh")
        self.assertEqual(rc, 5, err)
        self.assertEqual(out, "")
        self.assertIn("the token refresh failed", err)
        self.assertIn("500", err)
        st = self.ctl_json("token", "status")
        self.assertFalse(st["last_refresh"]["ok"])
        self.assertIn("500", st["last_refresh"]["error"])
        # the deployment says no for good: the error names it, the agent asks for a registration
        self.sim.inject("http403", "refresh_token", count=1)
        rc, out, err = self.ctl("token", "refresh", "--json")
        self.assertEqual(rc, 5, err)
        self.assertIn("Access Denied", err)
        self.assertTrue(self.ctl_json("token", "status")["needs_registration"])
        # and without a fault it works again
        j = self.ctl_json("token", "refresh")
        self.assertIs(j["refreshed"], True)
        self.assertFalse(self.ctl_json("token", "status")["needs_registration"])

    # ---- register ---------------------------------------------------------------------------

    def second_sim(self):
        self.sim2 = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=600))
        self.sim2.start()
        self.secrets += [self.sim2.registration_token, self.sim2.checkin_token]
        return self.sim2

    def test_register_through_the_agent(self):
        self.start_agent()
        b = self.second_sim()
        # the token from standard input (--token-file -): not in the process list
        rc, out, err = self.ctl("register", "--host", "127.0.0.1", "--port", str(b.api_port),
                                "--token-file", "-", stdin=b.registration_token + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("registered       yes", out)
        self.assertIn("server id        " + b.server_id, out)
        c = self.a.config()
        self.assertEqual(c["api_port"], b.api_port)
        self.assertEqual(c["server_id"], b.server_id)
        self.assertEqual(b.decode(c["agent_jwt_token"])["server_id"], b.server_id)
        self.assertEqual(c["custom_unknown_key"], "kept")
        # the agent talks to the new deployment with the new token, no restart
        F.wait_until(lambda: [k for k in b.calls("set_server_status") if k.verdict == "valid"],
                     timeout=30, what="a keepalive to the new deployment")
        self.assertTrue(all(k.verdict == "valid" for k in b.calls("set_server_status")))
        st = self.ctl_json("status")
        self.assertEqual(st["server_id"], b.server_id)
        self.assertEqual(st["api_port"], b.api_port)
        self.assertEqual(st["last_refresh"]["what"], "registration")
        self.assertTrue(st["last_refresh"]["ok"])
        F.wait_until(lambda: self.ctl_json("status")["last_api_port"] == b.api_port,
                     what="the new deployment answered last")

    def test_register_failures_name_the_step(self):
        self.start_agent()
        b = self.second_sim()
        closed = F.free_port()
        rc, out, err = self.ctl("register", "--host", "127.0.0.1", "--port", str(closed),
                                "--token", b.registration_token, "--json")
        self.assertEqual(rc, 5, err)
        self.assertIn("the registration failed at the TCP connection", err)
        rc, out, err = self.ctl("register", "--host", "no-such-host.invalid", "--token",
                                b.registration_token)
        self.assertEqual(rc, 5, err)
        self.assertIn("the registration failed at name resolution", err)
        bad = b.mint("registration", sign="rogue")
        self.secrets.append(bad)
        rc, out, err = self.ctl("register", "--host", "127.0.0.1", "--port", str(b.api_port),
                                "--token", bad)
        self.assertEqual(rc, 5, err)
        self.assertIn("the registration failed at the deployment's answer", err)
        self.assertIn("Access Denied!", err)
        # nothing changed
        self.assertEqual(self.a.config()["api_port"], self.sim.api_port)
        rc, out, err = self.ctl("register", "--host", "127.0.0.1")
        self.assertEqual(rc, 2)
        self.assertIn("register needs --host HOST and --token TOKEN", err)
        empty = os.path.join(self.a.dir, "empty-token")
        open(empty, "w").close()
        rc, out, err = self.ctl("register", "--host", "127.0.0.1", "--token-file", empty)
        self.assertEqual(rc, 2)
        self.assertIn("--token-file: no token in it", err)
        rc, out, err = self.ctl("reload", "--token", "x")
        self.assertEqual(rc, 2)

    def test_cli_registration_reloads_the_running_agent(self):
        self.start_agent()
        b = self.second_sim()
        rc, out, err = self.a.register("127.0.0.1", b.api_port, b.registration_token)
        self.outputs += [out, err]
        self.assertEqual(rc, 0, err)
        self.assertIn("Registered with 127.0.0.1:%d" % b.api_port, out)
        self.assertIn("The running agent reloaded its configuration", out)
        self.assertIn("agent_jwt_token", out)
        self.assertNotIn("Next step", out)
        F.wait_until(lambda: [k for k in b.calls("set_server_status") if k.verdict == "valid"],
                     timeout=30, what="a keepalive to the new deployment")
        self.assertEqual(self.ctl_json("status")["server_id"], b.server_id)

    def test_cli_registration_without_a_running_agent(self):
        self.a.write_config()  # its own admin_socket: nobody listens there
        rc, out, err = self.a.register("127.0.0.1", self.sim.api_port,
                                       self.sim.registration_token)
        self.outputs += [out, err]
        self.assertEqual(rc, 0, err)
        self.assertIn("Next step: restart the agent", out)

    # ---- merge-on-save: the agent's token saves keep the administrator's edits -------------

    def refresh_now(self, cfg=None):
        """agentctl token refresh; returns the new token the deployment handed out."""
        n = len(self.sim.calls("refresh_token"))
        rc, out, err = self.ctl("token", "refresh", "--json", cfg=cfg)
        self.assertEqual(rc, 0, err)
        self.assertIs(json.loads(out)["refreshed"], True)
        calls = self.sim.calls("refresh_token")
        self.assertEqual(len(calls), n + 1)
        self.secrets += [c.token for c in calls]
        new = calls[-1].response["agent_jwt_token"]
        self.secrets.append(new)
        return new

    def test_admin_edit_survives_token_save(self):
        self.start_agent()
        text = self.a.config_text()
        self.assertIn("custom_unknown_key: kept\n", text)
        # the administrator edits config.yaml after the agent loaded it: a comment, a changed
        # value, a new key; then the agent saves a new token
        edited = ("# edited by the administrator\n" +
                  text.replace("custom_unknown_key: kept\n",
                               "custom_unknown_key: changed  # by hand\n") +
                  "admin_added_key: kept  # mine\n")
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(edited)
        new = self.refresh_now()
        F.wait_until(lambda: self.a.config().get("agent_jwt_token") == new,
                     what="the refreshed token saved")
        now = self.a.config_text()
        self.assertIn("# edited by the administrator\n", now)
        self.assertIn("custom_unknown_key: changed  # by hand\n", now)
        self.assertIn("admin_added_key: kept  # mine\n", now)
        c = self.a.config()
        self.assertEqual(c["admin_added_key"], "kept")
        self.assertEqual(c["custom_unknown_key"], "changed")
        # nothing but the token changed
        old_token = yaml.safe_load(edited)["agent_jwt_token"]
        self.assertEqual(now, edited.replace(old_token, new))

    def test_broken_config_keeps_the_token(self):
        self.start_agent()
        good = self.a.config_text()
        broken = good + "heartbeat_interval: [unclosed\n"
        # agentctl finds the channel through a config of its own: it cannot read the broken one
        ctl_cfg = os.path.join(self.a.dir, "ctl.yaml")
        with open(ctl_cfg, "w", encoding="utf-8") as f:
            f.write("admin_socket: %s\n" % self.a.config()["admin_socket"])
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(broken)
        new = self.refresh_now(cfg=ctl_cfg)
        self.a.wait_log("config.yaml no longer loads, so the agent's new values (agent_jwt_token) "
                        "are not saved and the file is left as it is: ")
        self.assertIn("the agent keeps using them from memory and saves them at the first "
                      "heartbeat after the file is fixed",
                      self.a.read_log())
        # the file is not clobbered ...
        self.assertEqual(self.a.config_text(), broken)
        # ... and the new token is in use: the keepalives send it
        n = len(self.sim.calls("set_server_status"))
        F.wait_until(lambda: len(self.sim.calls("set_server_status")) >= n + 2,
                     what="keepalives after the refresh")
        self.assertEqual(self.sim.calls("set_server_status")[-1].token, new)
        self.assertEqual(self.a.config_text(), broken)
        # the administrator fixes the file (with an edit of theirs): the next heartbeat saves
        fixed = "# fixed by the administrator\n" + good
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(fixed)
        F.wait_until(lambda: self.a.config().get("agent_jwt_token") == new, timeout=30,
                     what="the kept token saved once the file loads again")
        self.assertTrue(self.a.config_text().startswith("# fixed by the administrator\n"))
        self.a.wait_log("(an earlier save had failed)")


    # ---- reload -----------------------------------------------------------------------------

    def test_reload_applies_and_lists_restarts(self):
        self.start_agent(heartbeat_ms=None, heartbeat_interval=1)
        self.assertEqual(self.ctl_json("status")["heartbeat_seconds"], 1)
        old_port = self.a.config()["port"]
        self.edit_config(heartbeat_interval=2, api_host=["localhost", "127.0.0.1"],
                         port=F.free_port(), debug=True)
        j = self.ctl_json("reload")
        self.assertEqual(set(j["applied"]), {"heartbeat_interval", "api_host", "debug"})
        self.assertEqual(j["restart_needed"], ["port"])
        self.assertIs(j["restart_required"], True)
        self.assertTrue(any("jwt_public_key" in n for n in j["notes"]))
        s = self.ctl_json("status")
        self.assertEqual(s["heartbeat_seconds"], 2)
        self.assertEqual(s["api_hosts"], ["localhost", "127.0.0.1"])
        # the listener stays where it is until a restart
        self.assertEqual(s["listen_port"], old_port)
        # the next keepalive goes to the new first host
        F.wait_until(lambda: self.ctl_json("token", "status")["last_api_host"] == "localhost",
                     timeout=30, what="a keepalive answered by the new api_host")
        # debug: on now
        self.a.wait_log("admin channel: command 'status'")
        rc, out, err = self.ctl("reload")
        self.assertEqual(rc, 0, err)
        self.assertIn("applied          (none)", out)
        self.assertIn("restart needed   port", out)

    def test_sighup_reloads(self):
        self.start_agent(heartbeat_ms=None, heartbeat_interval=1)
        self.edit_config(heartbeat_interval=3)
        self.a.proc.send_signal(signal.SIGHUP)
        F.wait_until(lambda: self.ctl_json("status")["heartbeat_seconds"] == 3,
                     what="the heartbeat of the reloaded config")
        self.a.wait_log("reload: applied: ")
        self.assertIn("heartbeat_interval",
                      [x for x in self.a.read_log().splitlines() if "reload: applied: " in x][-1])

    def test_reload_malformed_config(self):
        self.start_agent()
        good = self.a.config_text()
        # agentctl finds the channel through a config of its own: it cannot read the broken one
        ctl_cfg = os.path.join(self.a.dir, "ctl.yaml")
        with open(ctl_cfg, "w", encoding="utf-8") as f:
            f.write("admin_socket: %s\n" % self.a.config()["admin_socket"])
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(good + "heartbeat_interval: [unclosed\n")
        rc, out, err = self.ctl("reload", cfg=self.a.cfg)  # --cfg the broken file: says why
        self.assertEqual(rc, 2, err)
        self.assertIn("config.yaml:", err)
        rc, out, err = self.ctl("reload", cfg=ctl_cfg)
        self.assertEqual(rc, 5, err)
        self.assertEqual(out, "")
        self.assertIn("the configuration was not reloaded, the running one stays", err)
        self.assertIn("config.yaml:", err)
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(good.replace("api_port:", "api_port: abc\nx_api_port:"))
        rc, out, err = self.ctl("reload", "--json", cfg=ctl_cfg)
        self.assertEqual(rc, 5, err)
        self.assertIn("api_port", err)
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(good)
        s = self.ctl_json("status")
        self.assertEqual(s["api_port"], self.sim.api_port)
        self.assertEqual(self.ctl_json("reload")["applied"], [])

    # ---- refusals ---------------------------------------------------------------------------

    def test_non_root_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create a throwaway user")
        if not shutil.which("useradd") or not shutil.which("runuser"):
            self.skipTest("useradd/runuser missing")
        self.start_agent()
        user = "kasmdpl%d" % (os.getpid() % 100000)
        subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", user], check=True,
                       capture_output=True)
        pub = tempfile.mkdtemp(prefix="kasm-agentctl-deploy-pub-")
        try:
            os.chmod(pub, 0o755)
            cfg = os.path.join(pub, "config.yaml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write("admin_socket: %s\n" % self.a.config()["admin_socket"])
            os.chmod(cfg, 0o644)
            n = len(self.sim.calls("refresh_token"))
            for args in (["token", "refresh"], ["reload"],
                         ["register", "--host", "127.0.0.1", "--token", "not-a-token"]):
                rc, out, err = self.ctl(*args, user=user, cfg=cfg)
                self.assertEqual(rc, 4, f"{args}: {err}")
                self.assertIn("permission denied", err)
                self.assertEqual(out, "")
            self.assertEqual(len(self.sim.calls("refresh_token")), n)
        finally:
            shutil.rmtree(pub, ignore_errors=True)
            subprocess.run(["userdel", user], capture_output=True)


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main(verbosity=2)
