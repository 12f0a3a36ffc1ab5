#!/usr/bin/python3
"""test_orch_helper.py - file mappings inside the user's profile written and removed through
the user's running session helper (FILE_PUT / FILE_DELETE; service/orch/orch_helper.c,
session_helper/profile_put.c), the real agent against the deployment simulator.

As root only (skipped otherwise): a throwaway user (useradd -m, removed afterwards) with a
declared session (sessions_file), so the agent runs the real session_helper as that user.
Checks: a mapping under %HOMEPATH% into folders that do not exist yet is written by the helper
(the file and the folders owned by the user, the helper's log line and the orchestrator's
"by the session helper"), session_end removes it through the helper; a folder link and a file
link planted in the profile are refused (nothing written or removed through them, the step
reported as failed); a mapping outside the profile is still written by the service.

Usage: test_orch_helper.py --bin-dir DIR [unittest options]
"""
import os
import pwd
import re
import secrets
import subprocess
import unittest
import uuid
import json

import deploy_fixture as F
from deploy_fixture import K

ROOT = os.geteuid() == 0
READY_RE = re.compile(r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready")


@unittest.skipUnless(ROOT, "needs root: the helper runs as a throwaway user")
class OrchHelperTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30, user_sso=True))
        cls.sim.start()
        cls.addClassCleanup(cls.sim.stop)
        cls.a = F.AgentDir()
        cls.addClassCleanup(cls.a.cleanup)
        os.chmod(cls.a.dir, 0o755)
        cls.user = "koh" + secrets.token_hex(3)
        cls.home = os.path.join(cls.a.dir, "home", cls.user)
        os.makedirs(os.path.dirname(cls.home))
        os.chmod(os.path.dirname(cls.home), 0o755)
        subprocess.run(["useradd", "-m", "-d", cls.home, "-s", "/bin/sh", cls.user], check=True,
                       capture_output=True)
        cls.addClassCleanup(subprocess.run, ["userdel", "-r", cls.user], capture_output=True)
        cls.addClassCleanup(subprocess.run, ["pkill", "-KILL", "-u", cls.user],
                            capture_output=True)
        cls.uid = pwd.getpwnam(cls.user).pw_uid
        sessions = os.path.join(cls.a.dir, "sessions")
        with open(sessions, "w", encoding="utf-8") as f:
            f.write(f"1 {cls.user} console\n")
        os.environ["KASM_SESSION_POLL_MS"] = "200"
        os.environ.pop("DISPLAY", None)
        cls.token = cls.sim.mint_agent_token(lifetime=600)
        cls.a.write_config(api_host="127.0.0.1", api_port=cls.sim.api_port,
                           server_id=cls.sim.server_id, registered=True,
                           agent_jwt_token=cls.token, user_sso=True,
                           jwt_public_key=cls.sim.jwt_public_key_file,
                           script_path=os.path.join(cls.a.dir, "scripts"),
                           session_helper=os.path.join(os.path.abspath(F.BIN_DIR),
                                                       "session_helper"),
                           sessions_file=sessions)
        cls.a.start()
        cls.a.wait_log("listening on https", timeout=60)
        cls.port = cls.a.config()["port"]
        F.wait_until(lambda: READY_RE.search(cls.a.read_log()), timeout=60,
                     what="the session helper of the test user")

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        if "Sanitizer" in cls.a.console() or cls.a.proc.returncode != 0:
            raise AssertionError(f"agent exit {cls.a.proc.returncode}:\n"
                                 f"{cls.a.console()[-3000:]}")

    def client(self, kasm_id):
        ident = K.AgentIdentity(username=self.user + "@example.com", user_id=uuid.uuid4().hex,
                                kasm_id=kasm_id, server_id=self.sim.server_id)
        return K.AgentClient(f"https://127.0.0.1:{self.port}", self.sim, ident)

    def post(self, c, which, payload):
        r = c.request("POST", f"/{which}", c.session_token(), json.dumps(payload).encode(),
                      "application/json")
        self.assertEqual((r.status, r.body), (200, b"ok"))

    def run_session(self, which, c, payload):
        kasm_id = payload["kasm_id"]
        self.post(c, which, payload)
        F.wait_until(lambda: re.search(f"{which} for kasm_id {kasm_id} done", self.a.read_log()),
                     timeout=90, what=f"{which} of {kasm_id}")
        return self.a.read_log()

    def test_1_written_and_removed_by_the_helper(self):
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        outside = os.path.join(self.a.dir, "shared", "cfg.ini")
        payload = c.session_payload(file_mappings={
            "a": ("%HOMEPATH%\\NewDir\\Sub\\notes.txt", b"user notes\n"),
            "b": (outside, b"[x]\n")})
        log = self.run_session("session_start", c, payload)
        path = os.path.join(self.home, "NewDir", "Sub", "notes.txt")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"user notes\n")
        for p in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
            self.assertEqual(os.lstat(p).st_uid, self.uid, p)
        # the simulator's mappings are readable, not writable, not executable
        self.assertEqual(os.stat(path).st_mode & 0o7777, 0o400)
        self.assertIn(f"written to {path} (11 bytes, access r--) by the session helper of "
                      f"{self.user}", log)
        self.assertIn(f"helper[session 1]: file mapping written to {path} (11 bytes, access r--)",
                      log)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["notes.txt"])  # no temp file left
        # outside the profile: the service writes it itself, as before
        with open(outside, "rb") as f:
            self.assertEqual(f.read(), b"[x]\n")
        self.assertEqual(os.stat(outside).st_uid, 0)
        self.assertIn("done (0 step(s) failed)", log.split(f"session_start for kasm_id "
                                                           f"{kasm_id}")[-1])

        end = c.session_payload(file_mappings=None, ending=True)
        end["file_mappings"] = payload["file_mappings"]
        log = self.run_session("session_end", c, end)
        self.assertFalse(os.path.exists(path))
        self.assertIn(f"removed from {path} by the session helper of {self.user}", log)
        self.assertIn(f"helper[session 1]: file mapping removed from {path}", log)

    def test_2_links_refused(self):
        target = os.path.join(self.a.dir, "system_dir")
        os.makedirs(target)
        victim = os.path.join(target, "victim.txt")
        with open(victim, "w") as f:
            f.write("keep")
        dlink = os.path.join(self.home, "Linked")
        flink = os.path.join(self.home, "victim-link.txt")
        os.symlink(target, dlink)
        os.symlink(victim, flink)
        os.lchown(dlink, self.uid, -1)
        os.lchown(flink, self.uid, -1)
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        payload = c.session_payload(file_mappings={
            "x": ("%HOMEPATH%\\Linked\\evil.txt", b"evil"),
            "y": ("%HOMEPATH%\\victim-link.txt", b"evil")})
        log = self.run_session("session_start", c, payload)
        self.assertFalse(os.path.exists(os.path.join(target, "evil.txt")))
        with open(victim) as f:
            self.assertEqual(f.read(), "keep")
        self.assertTrue(os.path.islink(flink))
        self.assertIn(f"{dlink} is a link or junction", log)
        self.assertIn(f"{flink} is a link or junction", log)
        self.assertIn("done (2 step(s) failed)",
                      log.split(f"session_start for kasm_id {kasm_id}")[-1])
        statuses = self.sim.session_statuses(kasm_id)
        self.assertTrue(any("session helper refused" in s.get("status_message", "")
                            for s in statuses), statuses)

        end = c.session_payload(file_mappings=None, ending=True)
        end["file_mappings"] = payload["file_mappings"]
        self.run_session("session_end", c, end)
        self.assertTrue(os.path.exists(victim))
        self.assertTrue(os.path.islink(flink))

    def test_3_flags_applied_by_the_helper(self):
        # is_readable / is_writable / is_executable: the owner bits of the file the helper
        # wrote (group and others nothing); missing flags: readable and writable
        files = {"rwx": ("%HOMEPATH%\\Flags\\tool.sh", b"#!/bin/sh\n"),
                 "dflt": ("%HOMEPATH%\\Flags\\default.txt", b"d"),
                 "none": ("%HOMEPATH%\\Flags\\none.txt", b"n"),
                 "wx": ("%HOMEPATH%\\Flags\\wx.bin", b"wx")}
        flags = {"rwx": (True, True, True), "none": (False, False, False),
                 "wx": (False, True, True)}

        def start(c):
            payload = c.session_payload(file_mappings=files)
            by_dest = {m["destination"]: m for m in payload["file_mappings"].values()}
            for key, (r, w, x) in flags.items():
                by_dest[files[key][0]].update(is_readable=r, is_writable=w, is_executable=x)
            for k in ("is_readable", "is_writable", "is_executable"):
                del by_dest[files["dflt"][0]][k]
            log = self.run_session("session_start", c, payload)
            self.assertIn("done (0 step(s) failed)",
                          log.split(f"session_start for kasm_id {c.identity.kasm_id}")[-1])
            return payload, log

        # a second session over the files the first one left (one of them unreadable)
        first = self.client(uuid.uuid4().hex)
        p1, _ = start(first)
        c = self.client(uuid.uuid4().hex)
        payload, log = start(c)
        d = os.path.join(self.home, "Flags")
        modes = {n: os.stat(os.path.join(d, n)).st_mode & 0o7777 for n in os.listdir(d)}
        self.assertEqual(modes, {"tool.sh": 0o700, "default.txt": 0o600, "none.txt": 0o000,
                                 "wx.bin": 0o300})
        for n in modes:
            self.assertEqual(os.stat(os.path.join(d, n)).st_uid, self.uid)
        with open(os.path.join(d, "wx.bin"), "rb") as f:
            self.assertEqual(f.read(), b"wx")
        self.assertIn(f"helper[session 1]: file mapping written to {os.path.join(d, 'tool.sh')} "
                      "(10 bytes, access rwx)", log)
        self.assertIn(f"helper[session 1]: file mapping written to {os.path.join(d, 'none.txt')} "
                      "(1 bytes, access ---)", log)
        self.assertIn("is neither readable nor writable", log)
        for cl, pl in ((c, payload), (first, p1)):
            end = cl.session_payload(file_mappings=None, ending=True)
            end["file_mappings"] = pl["file_mappings"]
            log = self.run_session("session_end", cl, end)
        self.assertEqual(os.listdir(d), [])

if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main()
