#!/usr/bin/python3
"""test_logship_wine.py - agent.exe --console under Wine ships its log records to the
deployment simulator (service/deploy/logship.c): batches arrive at component_log with the
interface's fields, a 500 is retried until they get through, and no record carries a token.

Usage: test_logship_wine.py --wine-run WINE_RUN_SH --agent AGENT_EXE [unittest args]
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import deploy_fixture as F  # noqa: E402
from deploy_fixture import K  # noqa: E402
from wine_fixture import AgentRun, parse_args, win_path as winpath  # noqa: E402

ARGS = None
START_TIMEOUT = 180  # the first Wine start may create the prefix
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class LogShipWine(unittest.TestCase):
    def setUp(self):
        self.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=600))
        self.sim.start()
        self.dir = tempfile.mkdtemp(prefix="kasm-wine-logship-")
        self.cfg = os.path.join(self.dir, "config.yaml")
        self.log = os.path.join(self.dir, "agent.log")
        self.pipe = "\\\\.\\pipe\\kasm-test-logship-%d-%d" % (os.getpid(), time.monotonic_ns())
        self.token = self.sim.mint_agent_token(lifetime=600)
        with open(self.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump({"log_file": winpath(self.log), "port": F.free_port(),
                            "listen_address": "127.0.0.1", "api_host": "127.0.0.1",
                            "api_port": self.sim.api_port, "server_id": self.sim.server_id,
                            "registered": True, "agent_jwt_token": self.token,
                            "session_helper": winpath(os.path.join(self.dir, "none.exe")),
                            "admin_socket": self.pipe}, f)
        self.agent = AgentRun(self.log, START_TIMEOUT)

    def tearDown(self):
        self.agent.stop()
        try:
            F.assert_no_tokens(self, self.text(), [self.token] + [c.token for c in
                                                                  self.sim.calls()])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.sim.stop()

    def text(self):
        return self.agent.text()

    def test_records_shipped_after_a_500(self):
        self.sim.inject("http500", "component_log", count=2)
        env = dict(os.environ, KASM_HEARTBEAT_MS="500", KASM_LOGSHIP_RETRY_MS="500",
                   KASM_LOGSHIP_AGE_MS="500")
        self.agent.start(ARGS.wine_run, ARGS.agent, winpath(self.cfg), env)
        F.wait_until(lambda: any("checked in with the deployment" in r.get("message", "")
                                 for e in self.sim.logs() for r in e["records"]),
                     START_TIMEOUT, "the check-in record at the deployment")
        calls = [c for c in self.sim.calls("component_log")]
        self.assertEqual([c.status for c in calls][:3], [500, 500, 200])
        self.assertEqual(calls[0].body["logs"],
                         self.sim.logs()[0]["records"][:len(calls[0].body["logs"])])
        for c in calls:
            self.assertEqual(set(c.body), {"token", "logs"})
            self.assertEqual(c.verdict, "valid")
            text = json.dumps(c.body["logs"])
            self.assertIsNone(F.JWT_RE.search(text))
        for e in self.sim.logs():
            for r in e["records"]:
                self.assertEqual(r["application"], "kasm_agent")
                self.assertRegex(r["ingest_date"], DATE_RE)
                self.assertTrue(r["host"])


if __name__ == "__main__":
    ARGS, rest = parse_args("--wine-run", "--agent", known=True)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
