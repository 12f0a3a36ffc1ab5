#!/usr/bin/python3
"""test_orch_storage.py - the storage hooks (map_storage, unmap_storage) run as the user in
the user's session (service/orch/orch.c step_storage, the script runner's run_as), the real
agent against the deployment simulator.

As root only (skipped otherwise): a throwaway user (useradd -m, removed afterwards) whose
session is declared or not in the sessions_file the test rewrites; the builtin hooks are .sh
scripts that record `id -un`, the storage_mapping variable and the time. Checks:
  1. session_start before the user's session exists: the running report goes out, the hook
     has not run; the session appears -> map_storage runs as the user; session_end (the
     session still there) -> unmap_storage as the user;
  2. the user's session present at session_start: map_storage as the user at once (before
     the running report); the session gone at session_end -> unmap_storage as the service;
  3. session_end before the user ever logs on: the pending mount is dropped, never run later;
  4. the session of a user whose account cannot be had yet (declared before useradd, as a
     Windows logon whose token is not there yet): the deferred map_storage cannot start, is
     kept and retried with backoff; once the account exists it runs as that user.

Usage: test_orch_storage.py --bin-dir DIR [unittest options]
"""
import json
import os
import secrets
import subprocess
import time
import unittest
import uuid

import deploy_fixture as F
from deploy_fixture import K

ROOT = os.geteuid() == 0

HOOK = """#!/bin/sh
line=$(/usr/bin/python3 -c 'import json, os, sys, time
print(json.dumps({"hook": sys.argv[1], "user": sys.argv[2], "t": time.time(),
                  "kasm_id": os.environ.get("KASM_KASM_ID"), "home": os.environ.get("HOME"),
                  "ts": os.environ.get("KASM_TS_SESSION_ID"),
                  "mapping": json.loads(os.environ.get("KASM_STORAGE_MAPPING", "null"))}))' \
  NAME "$(id -un)")
printf '%s\\n' "$line" >> "OUT/hooks.jsonl"
"""


@unittest.skipUnless(ROOT, "needs root: the hooks run as a throwaway user")
class OrchStorageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30, user_sso=True))
        cls.sim.start()
        cls.addClassCleanup(cls.sim.stop)
        cls.a = F.AgentDir()
        cls.addClassCleanup(cls.a.cleanup)
        os.chmod(cls.a.dir, 0o755)
        cls.out = os.path.join(cls.a.dir, "out")
        os.makedirs(cls.out)
        os.chmod(cls.out, 0o777)
        with open(os.path.join(cls.out, "hooks.jsonl"), "w", encoding="utf-8"):
            pass  # every test user appends to it
        os.chmod(os.path.join(cls.out, "hooks.jsonl"), 0o666)
        builtin = os.path.join(cls.a.dir, "scripts", "builtin")
        os.makedirs(builtin)
        for d in (os.path.dirname(builtin), builtin):
            os.chmod(d, 0o755)
        for name in ("map_storage", "unmap_storage"):
            path = os.path.join(builtin, name + ".sh")
            with open(path, "w", encoding="utf-8") as f:
                f.write(HOOK.replace("OUT", cls.out).replace("NAME", name))
            os.chmod(path, 0o755)
        cls.user = "kos" + secrets.token_hex(3)
        cls.home = os.path.join(cls.a.dir, "home", cls.user)
        os.makedirs(os.path.dirname(cls.home))
        os.chmod(os.path.dirname(cls.home), 0o755)
        subprocess.run(["useradd", "-m", "-d", cls.home, "-s", "/bin/sh", cls.user], check=True,
                       capture_output=True)
        cls.addClassCleanup(subprocess.run, ["userdel", "-r", cls.user], capture_output=True)
        cls.addClassCleanup(subprocess.run, ["pkill", "-KILL", "-u", cls.user],
                            capture_output=True)
        cls.sessions = os.path.join(cls.a.dir, "sessions")
        cls.set_session(False)
        os.environ["KASM_SESSION_POLL_MS"] = "200"
        os.environ.pop("DISPLAY", None)
        cls.token = cls.sim.mint_agent_token(lifetime=600)
        cls.a.write_config(api_host="127.0.0.1", api_port=cls.sim.api_port,
                           server_id=cls.sim.server_id, registered=True,
                           agent_jwt_token=cls.token, user_sso=True,
                           jwt_public_key=cls.sim.jwt_public_key_file,
                           script_path=os.path.join(cls.a.dir, "scripts"), script_timeout=60,
                           session_helper=os.path.join(os.path.abspath(F.BIN_DIR),
                                                       "session_helper"),
                           sessions_file=cls.sessions)
        cls.a.start()
        cls.a.wait_log("listening on https", timeout=60)
        cls.port = cls.a.config()["port"]

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        log = cls.a.read_log() + cls.a.console()
        if "Sanitizer" in cls.a.console() or cls.a.proc.returncode != 0:
            raise AssertionError(f"agent exit {cls.a.proc.returncode}:\n"
                                 f"{cls.a.console()[-3000:]}")
        if "dr1ve-s3cr3t" in log:
            raise AssertionError("a storage credential appears in the agent's log")

    # ---- helpers ----

    @classmethod
    def set_session(cls, present):
        with open(cls.sessions + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"1 {cls.user} console\n" if present else "# nobody logged on\n")
        os.replace(cls.sessions + ".tmp", cls.sessions)

    def session_declared(self):
        with open(self.sessions, encoding="utf-8") as f:
            return f"1 {self.user}" in f.read()

    def client(self, kasm_id, user=None):
        ident = K.AgentIdentity(username=(user or self.user) + "@example.com",
                                user_id=uuid.uuid4().hex,
                                kasm_id=kasm_id, server_id=self.sim.server_id)
        return K.AgentClient(f"https://127.0.0.1:{self.port}", self.sim, ident)

    def post(self, c, which, payload):
        r = c.request("POST", f"/{which}", c.session_token(), json.dumps(payload).encode(),
                      "application/json")
        self.assertEqual((r.status, r.body), (200, b"ok"))

    def payload(self, c, ending=False):
        p = c.session_payload(ending=ending)
        p["storage_mappings"] = {"Google Drive": {
            "volume_config": {"driver": "rclone",
                              "driver_opts": {"type": "drive", "drive-token": "dr1ve-s3cr3t"}},
            "mount_config": {"read_only": False}}}
        return p

    def records(self, kasm_id, hook=None):
        p = os.path.join(self.out, "hooks.jsonl")
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8") as f:
            recs = [json.loads(line) for line in f if line.strip()]
        return [r for r in recs if r["kasm_id"] == kasm_id and (hook is None or r["hook"] == hook)]

    def wait_done(self, which, kasm_id):
        F.wait_until(lambda: f"{which} for kasm_id {kasm_id} done" in self.a.read_log(),
                     timeout=90, what=f"{which} of {kasm_id}")

    def wait_session(self, present):
        if present:
            n = self.a.read_log().count("(console)")
            self.set_session(True)
            F.wait_until(lambda: self.a.read_log().count("(console)") > n, timeout=60,
                         what="the user's session in the session manager")
        else:
            n = self.a.read_log().count(f"user {self.user} logged off")
            self.set_session(False)
            F.wait_until(lambda: self.a.read_log().count(f"user {self.user} logged off") > n,
                         timeout=60, what="the user's session gone")

    def assert_mapping(self, rec):
        self.assertEqual(rec["mapping"]["target"], "Google Drive")
        self.assertEqual(rec["mapping"]["volume_config"]["driver_opts"]["drive-token"],
                         "dr1ve-s3cr3t")

    # ---- tests ----

    def test_1_deferred_until_logon(self):
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        self.post(c, "session_start", self.payload(c))
        self.wait_done("session_start", kasm_id)
        # the running report did not wait for the mount, and the hook has not run
        statuses = self.sim.session_statuses(kasm_id)
        self.assertTrue(any(s.get("status") == "running" for s in statuses), statuses)
        log = self.a.read_log()
        self.assertIn(f"kasm_id {kasm_id}: user {self.user} has no session yet: map_storage for "
                      f"1 storage mapping(s) waits for the user's logon", log)
        time.sleep(1)  # the worker had every chance to run it wrongly
        self.assertEqual(self.records(kasm_id), [])

        # the user logs on: map_storage runs as the user, after the logon
        logon = time.time()
        self.wait_session(True)
        rec = F.wait_until(lambda: self.records(kasm_id, "map_storage"), timeout=60,
                           what="the deferred map_storage")
        self.assertEqual(len(rec), 1)
        self.assertEqual(rec[0]["user"], self.user)
        self.assertEqual(rec[0]["home"], self.home)
        self.assertEqual(rec[0]["ts"], "1")  # the session it runs in
        self.assertGreaterEqual(rec[0]["t"], logon)
        self.assert_mapping(rec[0])
        F.wait_until(lambda: f"kasm_id {kasm_id}: deferred storage mappings done (0 failed)"
                     in self.a.read_log(), timeout=60, what="the deferred mount's end")
        self.assertIn(f"kasm_id {kasm_id}: user {self.user} logged on (session 1): map_storage "
                      f"for the deferred storage mappings runs as the user", self.a.read_log())
        self.assertIn(f"map_storage.sh: running as user {self.user} in session 1",
                      self.a.read_log())

        # session_end with the session still there: unmap_storage as the user
        self.post(c, "session_end", self.payload(c, ending=True))
        self.wait_done("session_end", kasm_id)
        rec = self.records(kasm_id, "unmap_storage")
        self.assertEqual([r["user"] for r in rec], [self.user])
        self.assert_mapping(rec[0])
        self.assertIn(f"kasm_id {kasm_id}: unmap_storage for 1 storage mapping(s) runs as user "
                      f"{self.user} in session 1", self.a.read_log())
        self.assertEqual(len(self.records(kasm_id, "map_storage")), 1)  # never twice

    def test_2_session_present(self):
        if not self.session_declared():
            self.wait_session(True)
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        self.post(c, "session_start", self.payload(c))
        self.wait_done("session_start", kasm_id)
        rec = self.records(kasm_id, "map_storage")
        self.assertEqual([r["user"] for r in rec], [self.user])  # before the run's end
        self.assertEqual(rec[0]["ts"], "1")
        self.assert_mapping(rec[0])
        log = self.a.read_log()
        self.assertIn(f"kasm_id {kasm_id}: map_storage for 1 storage mapping(s) runs as user "
                      f"{self.user} in session 1", log)
        part = log.split(f"session_start for kasm_id {kasm_id} (user")[1]
        self.assertLess(part.index("map_storage.sh: exit code 0"),
                        part.index(f"kasm_id {kasm_id}: reported running"))
        self.assertNotIn("waits for the user's logon", part.split("done (")[0])

        # the user logged off before session_end: unmap_storage still runs, as the service
        self.wait_session(False)
        self.post(c, "session_end", self.payload(c, ending=True))
        self.wait_done("session_end", kasm_id)
        rec = self.records(kasm_id, "unmap_storage")
        self.assertEqual([r["user"] for r in rec], ["root"])
        self.assertIn(f"kasm_id {kasm_id}: user {self.user} has no session any more: "
                      f"unmap_storage runs as the service", self.a.read_log())

    def test_3_dropped_when_the_user_never_logs_on(self):
        if self.session_declared():
            self.wait_session(False)
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        self.post(c, "session_start", self.payload(c))
        self.wait_done("session_start", kasm_id)
        self.post(c, "session_end", self.payload(c, ending=True))
        self.wait_done("session_end", kasm_id)
        self.assertIn(f"kasm_id {kasm_id}: user {self.user} never logged on during the session: "
                      f"its storage mappings were never mounted; dropped", self.a.read_log())
        self.assertEqual([r["hook"] + ":" + r["user"] for r in self.records(kasm_id)],
                         ["unmap_storage:root"])
        # a logon now mounts nothing for that session
        ready = self.a.read_log().count(f"({self.user}): helper pid")
        self.wait_session(True)
        F.wait_until(lambda: self.a.read_log().count(f"({self.user}): helper pid") > ready,
                     timeout=60, what="the helper of the new session ready")
        time.sleep(1)
        self.assertEqual(len(self.records(kasm_id, "map_storage")), 0)

    def test_4_retried_until_the_user_can_be_had(self):
        late = "kol" + secrets.token_hex(3)
        home = os.path.join(self.a.dir, "home", late)
        self.addCleanup(subprocess.run, ["userdel", "-r", late], capture_output=True)
        self.addCleanup(subprocess.run, ["pkill", "-KILL", "-u", late], capture_output=True)
        # a session of an account that does not exist yet: the session manager still lists it
        with open(self.sessions + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"2 {late} console\n")
        os.replace(self.sessions + ".tmp", self.sessions)
        F.wait_until(lambda: f"session 2: user {late} logged on" in self.a.read_log(),
                     timeout=60, what="the late user's session in the session manager")
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id, late)
        self.post(c, "session_start", self.payload(c))
        self.wait_done("session_start", kasm_id)
        cannot = (f"kasm_id {kasm_id}: cannot run map_storage as {late} yet: user {late} "
                  f"(map_storage) does not exist here")
        F.wait_until(lambda: cannot in self.a.read_log(), timeout=60,
                     what="the deferred map_storage failing to start")
        log = self.a.read_log()
        self.assertIn(f"{cannot}; retrying in 5 s (attempt 1 of 8)", log)  # at session_start
        # the worker's retry, 5 s later, cannot start either
        F.wait_until(lambda: f"{cannot}; retrying in 10 s (attempt 2 of 8)" in self.a.read_log(),
                     timeout=60, what="the first retry")
        self.assertNotIn(f"kasm_id {kasm_id}: deferred storage mappings done", self.a.read_log())
        self.assertEqual(self.records(kasm_id), [])

        # the account appears: the next retry (10 s later) runs the hook as the user
        created = time.time()
        subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", late], check=True,
                       capture_output=True)
        rec = F.wait_until(lambda: self.records(kasm_id, "map_storage"), timeout=90,
                           what="the retried map_storage")
        self.assertEqual([r["user"] for r in rec], [late])
        self.assertEqual(rec[0]["home"], home)
        self.assertEqual(rec[0]["ts"], "2")
        self.assertGreaterEqual(rec[0]["t"], created)
        self.assert_mapping(rec[0])
        F.wait_until(lambda: f"kasm_id {kasm_id}: deferred storage mappings done (0 failed)"
                     in self.a.read_log(), timeout=60, what="the deferred mount's end")
        self.assertNotIn("gave up after", self.a.read_log())

        self.post(c, "session_end", self.payload(c, ending=True))
        self.wait_done("session_end", kasm_id)
        self.assertEqual(len(self.records(kasm_id, "map_storage")), 1)  # never twice


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main()
