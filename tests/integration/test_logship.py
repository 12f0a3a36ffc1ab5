#!/usr/bin/python3
"""test_logship.py - the log shipper (service/deploy/logship.c) in the running agent against
the deployment simulator: records arrive in batches at component_log with the fields of the
interface; a deployment before 1.18 (component_log 404) gets them at kasm_session_log; a 500
is retried until the records get through; a 400 drops the batch without a retry; while the
deployment is down the queue stays bounded and the drops are reported afterwards;
log_forward_level filters or turns it off. No body carries a token except component_log's
"token" field.

Usage: test_logship.py --bin-dir DIR [unittest options]
"""
import json
import os
import re
import unittest

import deploy_fixture as F
from deploy_fixture import K

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DROPPED_RE = re.compile(r"^(\d+) log records were dropped$")


class LogShipTest(unittest.TestCase):
    def setUp(self):
        self.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30))
        self.sim.start()
        self.a = F.AgentDir()
        self.token = self.sim.mint_agent_token(lifetime=600)
        self.env = {}

    def write(self, **keys):
        self.a.write_config(api_host="127.0.0.1", api_port=self.sim.api_port,
                            server_id=self.sim.server_id, registered=True,
                            agent_jwt_token=self.token, **keys)

    def start(self, heartbeat_ms=200, **env):
        old = {k: os.environ.get(k) for k in env}
        os.environ.update({k: str(v) for k, v in env.items()})
        try:
            self.a.start(heartbeat_ms=heartbeat_ms)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def tearDown(self):
        self.a.stop()
        log = self.a.read_log() + self.a.console()
        try:
            self.assertNotIn("Sanitizer", self.a.console())
            if self.a.proc is not None:
                self.assertEqual(self.a.proc.returncode, 0, self.a.console()[-2000:])
            F.assert_no_tokens(self, log, [self.token] + [c.token for c in self.sim.calls()])
            self.check_bodies()
        finally:
            self.a.cleanup()
            self.sim.stop()

    # ---- helpers ----

    def log_calls(self, path=None):
        return [c for c in self.sim.calls()
                if c.path in ("/api/component_log", "/api/kasm_session_log")
                and (path is None or c.path == path)]

    def records(self):
        return [r for e in self.sim.logs() for r in e["records"]]

    def messages(self):
        return [r.get("message", "") for r in self.records()]

    def check_bodies(self):
        """No token in any log call's body, except component_log's "token" field."""
        tokens = [self.token] + [c.token for c in self.sim.calls() if c.token]
        for c in self.log_calls():
            body = c.body
            if c.path == "/api/component_log":
                self.assertIsInstance(body, dict)
                self.assertEqual(set(body), {"token", "logs"})
                body = body["logs"]
            else:
                self.assertIn("token", c.query)
            text = json.dumps(body)
            self.assertIsNone(F.JWT_RE.search(text), "a JWT in a log record")
            for t in tokens:
                self.assertNotIn(t, text)

    def wait_message(self, needle, timeout=30):
        return F.wait_until(lambda: any(needle in m for m in self.messages()), timeout,
                            f"a record with {needle!r} at the deployment")

    # ---- tests ----

    def test_records_arrive_batched(self):
        self.write()
        self.start()
        self.wait_message("checked in with the deployment")
        stored = self.sim.logs()
        self.assertTrue(all(e["endpoint"] == "component_log" for e in stored), stored)
        # batches of more than 5 records while the agent runs (the start alone logs more)
        self.assertGreater(len(stored[0]["records"]), 5)
        for r in self.records():
            self.assertEqual(r["application"], "kasm_agent")
            self.assertIn(r["levelname"], ("INFO", "WARNING", "ERROR", "CRITICAL"))
            self.assertRegex(r["ingest_date"], DATE_RE)
            self.assertTrue(r["host"])
            self.assertIsInstance(r["message"], str)
        # the shipper's own lines stay local
        self.assertFalse(any("go to the deployment" in m for m in self.messages()))
        # the agent's token authenticates the call, in the body as component_log wants
        calls = self.log_calls()
        self.assertTrue(calls)
        self.assertEqual(calls[0].token_source, "body")
        self.assertEqual(calls[0].verdict, "valid")
        # the last records go out when the agent stops
        self.a.stop()
        self.assertTrue(any(m.startswith("stopping (requested by") for m in self.messages()),
                        self.messages()[-10:])

    def test_old_deployment_gets_kasm_session_log(self):
        self.sim.configure(component_log=False)
        self.write()
        self.start()
        self.wait_message("checked in with the deployment")
        self.assertEqual({e["endpoint"] for e in self.sim.logs()}, {"kasm_session_log"})
        # component_log was tried once, then remembered as missing
        self.assertEqual([c.status for c in self.log_calls("/api/component_log")], [404])
        for c in self.log_calls("/api/kasm_session_log"):
            self.assertEqual(c.token_source, "query")
            self.assertIsInstance(c.body, list)
        self.a.wait_log("log records go to kasm_session_log")

    def test_500_retried_until_delivered(self):
        self.sim.inject("http500", "component_log", count=3)
        self.write()
        self.start(KASM_LOGSHIP_RETRY_MS=300)
        self.wait_message("checked in with the deployment")
        statuses = [c.status for c in self.log_calls()]
        self.assertEqual(statuses[:4], [500, 500, 500, 200], statuses)
        # the records of the refused attempts arrive, in order, in the first delivered batch
        first = [c.body["logs"] for c in self.log_calls()][0]
        stored = self.sim.logs()[0]["records"]
        self.assertEqual(stored[:len(first)], first)
        self.a.wait_log("log records reach the deployment again")
        self.assertEqual(self.a.read_log().count("cannot send log records to the deployment"), 1)

    def test_400_dropped_without_retry(self):
        self.sim.inject("http400", "component_log", count=1)
        self.write()
        self.start(KASM_LOGSHIP_AGE_MS=300, KASM_LOGSHIP_RETRY_MS=300)
        self.a.wait_log("the deployment refused a batch of")
        refused = [c for c in self.log_calls() if c.status == 400]
        self.assertEqual(len(refused), 1)
        lost = [r["message"] for r in refused[0].body["logs"]]
        # later records still go out (the stop flushes whatever waits)
        self.a.stop()
        F.wait_until(lambda: any(DROPPED_RE.match(m) for m in self.messages()), 10,
                     "the drop notice")
        note = next(DROPPED_RE.match(m) for m in self.messages() if DROPPED_RE.match(m))
        self.assertEqual(int(note.group(1)), len(lost))
        # the refused batch was never sent again (messages the agent logged once)
        local = self.a.read_log()
        unique = [m for m in lost if local.count(m) == 1]
        self.assertTrue(unique, lost)
        for m in unique:
            self.assertNotIn(m, self.messages())
        self.assertEqual(len([c for c in self.log_calls() if c.status == 400]), 1)
        self.assertLess(len(self.log_calls()), 20, "a retry storm")
        self.assertEqual(self.a.read_log().count("the deployment refused a batch"), 1)

    def test_outage_bounded_queue_and_drop_counter(self):
        self.write()
        self.start(KASM_LOGSHIP_QUEUE=20, KASM_LOGSHIP_RETRY_MS=300, KASM_LOGSHIP_AGE_MS=300)
        self.wait_message("checked in with the deployment")
        before = len(self.records())
        self.sim.inject("down")
        # the lifecycle logs every failed attempt: more than the queue holds
        self.a.wait_log("cannot connect to", count=40, timeout=90)
        self.sim.clear_faults()
        F.wait_until(lambda: any(DROPPED_RE.match(m) for m in self.messages()), 60,
                     "the drop notice after the outage")
        notes = [int(DROPPED_RE.match(m).group(1)) for m in self.messages()
                 if DROPPED_RE.match(m)]
        self.assertGreater(notes[0], 0)
        # bounded: the first batch after the outage holds the notice and at most 20 records
        after = [e for e in self.sim.logs()[1:]
                 if any(DROPPED_RE.match(r["message"]) for r in e["records"])][0]
        self.assertLessEqual(len(after["records"]), 21)
        self.assertGreater(len(self.records()), before)
        self.a.wait_log("log records reach the deployment again")

    def test_forward_level_warning(self):
        self.write(log_forward_level="warning")
        self.start(KASM_LOGSHIP_AGE_MS=300)
        self.a.wait_log("checked in with the deployment")
        self.sim.inject("http500", "set_server_status", count=3)  # a few keepalive warnings
        self.wait_message("keepalive:")
        self.assertTrue(self.records())
        for r in self.records():
            self.assertIn(r["levelname"], ("WARNING", "ERROR", "CRITICAL"), r)

    def test_forward_off(self):
        self.write(log_forward_level="off")
        self.start()
        self.a.wait_log("log_forward_level: off")
        self.a.wait_log("checked in with the deployment (running)")
        self.a.stop()
        self.assertEqual(self.log_calls(), [])
        self.assertEqual(self.sim.logs(), [])


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main(verbosity=2)
