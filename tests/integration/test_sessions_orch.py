#!/usr/bin/python3
"""test_sessions_orch.py - the session orchestrator (service/orch/) in the running agent
against the deployment simulator, with .sh scripts and builtin hooks: POST /session_start and
/session_end do the steps of KASM_INTERFACE.md section 5 in order (the simulator's calls and
the hooks' own records asserted in order), scripts see the section 8 variables as KASM_*,
a failing / hanging (killed) / 10 MB / world-writable script goes through a session as the
runner promises, variable values cannot inject anything, a duplicate session_start does not
run twice, an unknown session_end still reports destroyed, and the mandatory report gets
through a deployment outage.

As root (CI): a throwaway user (useradd -m, removed afterwards) is the session's user, so a
file mapping under %HOMEPATH% lands in its home, owned by it.

Usage: test_sessions_orch.py --bin-dir DIR [unittest options]
"""
import json
import os
import pwd
import secrets
import subprocess
import unittest
import uuid

import deploy_fixture as F
from deploy_fixture import K

ROOT = os.geteuid() == 0

RECORD = """#!/bin/sh
exec /usr/bin/python3 -c 'import json, os, time
d = {k: v for k, v in os.environ.items() if k.startswith("KASM_")}
d["_cwd"] = os.getcwd()
open("OUT/%s-%d.json" % ("WHAT", time.time_ns()), "w").write(json.dumps(d))'
"""
HOOK = """#!/bin/sh
printf '%s\\n' "NAME" >> "OUT/hooks.log"
if [ -n "$KASM_STORAGE_MAPPING" ]; then printf '%s\\n' "$KASM_STORAGE_MAPPING" >> "OUT/storage.log"; fi
"""


def write_script(path, text, mode=0o755):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.chmod(os.path.dirname(path), 0o755)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


class SessionsOrchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30, user_sso=True))
        cls.sim.start()
        cls.a = F.AgentDir()
        os.chmod(cls.a.dir, 0o755)
        cls.out = os.path.join(cls.a.dir, "out")
        os.makedirs(cls.out)
        os.chmod(cls.out, 0o777)
        cls.scripts = os.path.join(cls.a.dir, "scripts")
        os.makedirs(cls.scripts)
        os.chmod(cls.scripts, 0o755)
        s = cls.scripts
        rec = RECORD.replace("OUT", cls.out)
        write_script(os.path.join(s, "session_start", "10_vars.sh"), rec.replace("WHAT", "start"))
        write_script(os.path.join(s, "session_start", "20_fail.sh"),
                     'echo "failing for $KASM_KASM_ID with $KASM_JWT_TOKEN"\nexit 3\n')
        write_script(os.path.join(s, "session_start", "30_big.sh"),
                     "head -c 10485760 /dev/zero | tr '\\0' x\nexit 1\n")
        write_script(os.path.join(s, "session_start", "40_hang.sh"),
                     f"sleep 1000 &\necho $! >> {cls.out}/hang.pid\nwait\n")
        write_script(os.path.join(s, "session_start", "50_world.sh"),
                     f"touch {cls.out}/world_ran\n", 0o777)
        write_script(os.path.join(s, "session_end", "10_vars.sh"), rec.replace("WHAT", "end"))
        for name in ("load_persistent_profile", "save_persistent_profile", "map_storage",
                     "unmap_storage"):
            write_script(os.path.join(s, "builtin", name + ".sh"),
                         HOOK.replace("OUT", cls.out).replace("NAME", name))
        cls.user = None
        if ROOT:
            cls.user = "kor" + secrets.token_hex(3)
            home = os.path.join(cls.a.dir, "home", cls.user)
            os.makedirs(os.path.dirname(home))
            os.chmod(os.path.dirname(home), 0o755)
            subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", cls.user], check=True,
                           capture_output=True)
            cls.home = home
            cls.addClassCleanup(subprocess.run, ["userdel", "-r", cls.user], capture_output=True)
        cls.addClassCleanup(cls.sim.stop)
        cls.addClassCleanup(cls.a.cleanup)
        cls.token = cls.sim.mint_agent_token(lifetime=600)
        cls.a.write_config(api_host="127.0.0.1", api_port=cls.sim.api_port,
                           server_id=cls.sim.server_id, registered=True,
                           agent_jwt_token=cls.token, user_sso=True,
                           jwt_public_key=cls.sim.jwt_public_key_file,
                           script_path=cls.scripts, script_timeout=3,
                           sessions_file=os.path.join(cls.a.dir, "no-sessions"))
        with open(os.path.join(cls.a.dir, "no-sessions"), "w") as f:
            f.write("# no sessions\n")
        cls.a.start()
        cls.a.wait_log("listening on https", timeout=60)
        cls.port = cls.a.config()["port"]

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        print(cls.a.read_log()[-20000:]) if os.environ.get("ORCH_DEBUG") else None
        try:
            log = cls.a.read_log() + cls.a.console()
            if "Sanitizer" in cls.a.console() or cls.a.proc.returncode != 0:
                raise AssertionError(f"agent exit {cls.a.proc.returncode}:\n"
                                     f"{cls.a.console()[-3000:]}")
            leaked = [c.token for c in cls.sim.calls() if c.token and c.token in log]
            if leaked:
                raise AssertionError("a token appears in the agent's log")
        finally:
            pass

    # ---- helpers ----

    def client(self, kasm_id=None, username=None):
        ident = K.AgentIdentity(username=username or self.user or "nobody_here",
                                user_id=uuid.uuid4().hex,
                                kasm_id=kasm_id or uuid.uuid4().hex,
                                server_id=self.sim.server_id)
        return K.AgentClient(f"https://127.0.0.1:{self.port}", self.sim, ident)

    def post(self, c, which, payload):
        r = c.request("POST", f"/{which}", c.session_token(), json.dumps(payload).encode(),
                      "application/json")
        self.assertEqual((r.status, r.body), (200, b"ok"))

    def wait_status(self, kasm_id, pred, timeout=90):
        return F.wait_until(lambda: [s for s in self.sim.session_statuses(kasm_id) if pred(s)],
                            timeout=timeout, what=f"a status report for {kasm_id}")

    def records(self, what):
        out = []
        for n in sorted(os.listdir(self.out)):
            if n.startswith(what + "-") and n.endswith(".json"):
                with open(os.path.join(self.out, n), encoding="utf-8") as f:
                    out.append(json.load(f))
        return out

    def hooks(self):
        p = os.path.join(self.out, "hooks.log")
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8") as f:
            return f.read().split()

    def last_seq(self):
        calls = self.sim.calls()
        return calls[-1].seq if calls else 0

    def status_calls(self, since):
        return [c for c in self.sim.calls(since=since)
                if c.path in ("/api/set_kasm_session_status",
                              "/api/set_kasm_session_credential",
                              "/api/admin/get_file_mapping_contents")]

    # ---- tests ----

    def test_1_full_start_and_end(self):
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        since = self.last_seq()
        files = {"a": ("%HOMEPATH%\\Desktop\\notes.txt", b"user notes\n"),
                 "b": (os.path.join(self.a.dir, "shared", "cfg.ini"), b"[x]\n")}
        payload = c.session_payload(create_local_account=True, file_mappings=files)
        payload["storage_mappings"] = {"Google Drive": {
            "volume_config": {"driver": "rclone", "driver_opts": {"type": "drive",
                                                                 "drive-token": "s3cr3t"}},
            "mount_config": {"read_only": False}}}
        payload["user_groups"] = [{"name": "All Users"}]
        hooks_before = len(self.hooks())
        self.post(c, "session_start", payload)
        self.wait_status(kasm_id, lambda s: s.get("status") == "running")
        log = self.a.read_log()

        # the deployment saw: progress, the one-time password, a failed-step report (no local
        # accounts on Linux), the mapping contents, ..., then running - in that order
        calls = self.status_calls(since)
        paths = [c_.path.rsplit("/", 1)[1] for c_ in calls]
        self.assertEqual(paths[:3], ["set_kasm_session_status", "set_kasm_session_credential",
                                     "set_kasm_session_status"], paths)
        self.assertEqual(calls[0].body, {"kasm_id": kasm_id, "status": "starting",
                                         "status_progress": 1})
        self.assertIn("create_local_account failed", calls[2].body["status_message"])
        self.assertEqual(paths.count("get_file_mapping_contents"), 2)
        self.assertLess(paths.index("set_kasm_session_credential"),
                        paths.index("get_file_mapping_contents"))
        self.assertEqual(calls[-1].body, {"kasm_id": kasm_id, "status": "running",
                                          "status_progress": 0})
        statuses = self.sim.session_statuses(kasm_id)
        self.assertTrue(any("session_start failed" in s.get("status_message", "")
                            for s in statuses), statuses)
        # the password never reaches the log
        self.assertNotIn(self.sim.session_credential(kasm_id), log)

        # hooks: the profile; map_storage waits for the user's logon (nobody is logged on
        # here; test_orch_storage.py runs it as the user), the running report did not wait
        self.assertEqual(self.hooks()[hooks_before:][:1], ["load_persistent_profile"])
        self.assertNotIn("map_storage", self.hooks()[hooks_before:])
        local = c.identity.username.split("@")[0]
        self.assertIn(f"kasm_id {kasm_id}: user {local} has no session yet: map_storage for 1 "
                      f"storage mapping(s) waits for the user's logon", log)
        self.assertNotIn("s3cr3t", log)

        # the file mappings: in the user's home, owned by the user; elsewhere by the service
        shared = os.path.join(self.a.dir, "shared", "cfg.ini")
        with open(shared, "rb") as f:
            self.assertEqual(f.read(), b"[x]\n")
        if ROOT:
            notes = os.path.join(self.home, "Desktop", "notes.txt")
            with open(notes, "rb") as f:
                self.assertEqual(f.read(), b"user notes\n")
            uid = pwd.getpwnam(self.user).pw_uid
            self.assertEqual(os.stat(notes).st_uid, uid)
            self.assertEqual(os.stat(os.path.dirname(notes)).st_uid, uid)
            # the simulator's mappings are readable, not writable, not executable
            self.assertEqual(os.stat(notes).st_mode & 0o7777, 0o400)

        # the session_start scripts: variables, the failing, big, hanging and unsafe ones
        rec = [r for r in self.records("start") if r.get("KASM_KASM_ID") == kasm_id]
        self.assertEqual(len(rec), 1)
        v = rec[0]
        self.assertEqual(v["KASM_USERNAME"], c.identity.username)
        self.assertEqual(v["KASM_USER_ID"], c.identity.user_id)
        self.assertEqual(v["KASM_API_HOST"], "127.0.0.1")
        self.assertEqual(v["KASM_API_PORT"], str(self.sim.api_port))
        self.assertEqual(self.sim.decode(v["KASM_JWT_TOKEN"])["kasm_id"], kasm_id)
        self.assertEqual(json.loads(v["KASM_USER_GROUPS"]), [{"name": "All Users"}])
        for k in ("KASM_TS_SESSION_ID", "KASM_IS_REMOTE_APP", "KASM_IS_WEB_NATIVE",
                  "KASM_AUTO_LOGOUT_USER"):
            self.assertIn(k, v)
        self.assertEqual(v["KASM_AUTO_LOGOUT_USER"], "false")
        self.assertEqual(v["_cwd"], os.path.join(self.scripts, "session_start"))
        self.assertIn("20_fail.sh: failed with exit code 3", log)
        self.assertIn("20_fail.sh| failing for " + kasm_id + " with <redacted>", log)
        self.assertIn("30_big.sh: failed with exit code 1", log)
        self.assertIn("more bytes of output not kept", log)
        self.assertIn("40_hang.sh: timed out after 3 s", log)
        self.assertIn("50_world.sh: refused", log)
        self.assertFalse(os.path.exists(os.path.join(self.out, "world_ran")))
        with open(os.path.join(self.out, "hang.pid")) as f:
            child = int(f.read().split()[-1])
        def gone():
            try:
                with open(f"/proc/{child}/stat", encoding="utf-8") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except FileNotFoundError:
                return True
        F.wait_until(gone, what="the hanging script's child killed")
        self.assertLess(log.index("load_persistent_profile.sh: exit code 0"),
                        log.index("10_vars.sh: exit code 0"))

        # session_end: mapped files removed, unmap, save hook, scripts, destroyed
        since = self.last_seq()
        hooks_before = len(self.hooks())
        end = c.session_payload(file_mappings=None, ending=True)
        end["file_mappings"] = payload["file_mappings"]
        end["storage_mappings"] = payload["storage_mappings"]
        self.post(c, "session_end", end)
        self.wait_status(kasm_id, lambda s: s.get("destroyed") is True)
        self.assertEqual(self.hooks()[hooks_before:], ["unmap_storage", "save_persistent_profile"])
        # unmap_storage ran as the service (no session): the storage mapping with its target;
        # the mount that never happened was dropped
        with open(os.path.join(self.out, "storage.log"), encoding="utf-8") as f:
            sm = json.loads(f.read().splitlines()[-1])
        self.assertEqual(sm["target"], "Google Drive")
        self.assertEqual(sm["volume_config"]["driver_opts"]["drive-token"], "s3cr3t")
        log = self.a.read_log()
        self.assertIn(f"kasm_id {kasm_id}: user {local} has no session any more: unmap_storage "
                      f"runs as the service", log)
        self.assertIn(f"kasm_id {kasm_id}: user {local} never logged on during the session", log)
        self.assertNotIn("s3cr3t", log)
        self.assertFalse(os.path.exists(shared))  # single-user host: every mapped file goes
        if ROOT:
            self.assertFalse(os.path.exists(os.path.join(self.home, "Desktop", "notes.txt")))
        self.assertEqual(len([r for r in self.records("end")
                              if r.get("KASM_KASM_ID") == kasm_id]), 1)
        calls = [x for x in self.sim.calls(since=since)
                 if x.path == "/api/set_kasm_session_status"]
        self.assertEqual(calls[-1].body, {"kasm_id": kasm_id, "status_progress": 0,
                                          "destroyed": True})
        self.assertNotIn(f"kasm_id {kasm_id}: log-off", self.a.read_log())  # off by default

    def test_2_injection_through_values(self):
        marker = os.path.join(self.out, "pwned")
        kasm_id = f"k'\"$(touch {marker})`touch {marker}`;\n{uuid.uuid4().hex}"
        user = f"u\"$(touch {marker})'\n;touch {marker}"
        c = self.client(kasm_id, user)
        payload = c.session_payload()
        payload["user_groups"] = [f"$(touch {marker})"]
        self.post(c, "session_start", payload)
        self.wait_status(kasm_id, lambda s: s.get("status") == "running")
        self.post(c, "session_end", payload)
        self.wait_status(kasm_id, lambda s: s.get("destroyed") is True)
        self.assertFalse(os.path.exists(marker), "a variable value ran as a command")
        sent = c.identity.kasm_id  # the simulator's client normalises ids (no '-', lower case)
        self.assertIn("$(touch", sent)
        rec = [r for r in self.records("start") if r.get("KASM_KASM_ID") == sent]
        self.assertEqual(len(rec), 1, "the value did not reach the script unchanged")
        self.assertEqual(rec[0]["KASM_USERNAME"], c.identity.username)
        self.assertEqual(json.loads(rec[0]["KASM_USER_GROUPS"]), [f"$(touch {marker})"])
        # the log line holds the value escaped: no forged line starts with its second half
        for line in self.a.read_log().splitlines():
            self.assertFalse(line.startswith(";touch"), line)

    def test_3_duplicate_and_unknown(self):
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        payload = c.session_payload()
        self.post(c, "session_start", payload)
        self.post(c, "session_start", payload)
        self.a.wait_log(f"session_start for kasm_id {kasm_id}: this session already started")
        self.wait_status(kasm_id, lambda s: s.get("status") == "running")
        self.a.wait_log(f"session_start for kasm_id {kasm_id} done")
        self.assertEqual(len([r for r in self.records("start")
                              if r.get("KASM_KASM_ID") == kasm_id]), 1)
        self.assertEqual(len([s for s in self.sim.session_statuses(kasm_id)
                              if s.get("status") == "running"]), 1)
        # an unknown session still reports destroyed
        other = uuid.uuid4().hex
        c2 = self.client(other)
        self.post(c2, "session_end", c2.session_payload())
        self.wait_status(other, lambda s: s.get("destroyed") is True)
        self.assertIn(f"session_end for kasm_id {other} (user", self.a.read_log())
        self.assertIn("a session this agent did not start", self.a.read_log())

    def test_4_report_through_an_outage(self):
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        payload = c.session_payload()
        self.sim.inject("down", "set_kasm_session_status")
        try:
            self.post(c, "session_start", payload)
            self.a.wait_log(f"kasm_id {kasm_id}: the running report failed (attempt 2)",
                            timeout=90)
            self.assertEqual(self.sim.session_statuses(kasm_id), [])
        finally:
            self.sim.clear_faults()
        self.wait_status(kasm_id, lambda s: s.get("status") == "running")
        self.a.wait_log(f"kasm_id {kasm_id}: reported running to the deployment (after retries)")

    @unittest.skipUnless(ROOT, "needs a throwaway user (root)")
    def test_5_profile_link_not_followed(self):
        # the user replaced a profile folder by a link to a folder of the system: the service
        # neither writes nor deletes there
        target = os.path.join(self.a.dir, "system_dir")
        os.makedirs(target)
        with open(os.path.join(target, "victim.txt"), "w") as f:
            f.write("keep")
        link = os.path.join(self.home, "Linked")
        os.symlink(target, link)
        os.lchown(link, pwd.getpwnam(self.user).pw_uid, -1)
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        payload = c.session_payload(file_mappings={
            "x": ("%HOMEPATH%\\Linked\\evil.txt", b"evil"),
            "y": ("%HOMEPATH%\\Linked\\victim.txt", b"evil")})
        self.post(c, "session_start", payload)
        self.wait_status(kasm_id, lambda s: s.get("status") == "running")
        self.assertFalse(os.path.exists(os.path.join(target, "evil.txt")))
        with open(os.path.join(target, "victim.txt")) as f:
            self.assertEqual(f.read(), "keep")
        self.assertIn("leads out of the user's profile", self.a.read_log())
        self.post(c, "session_end", payload)
        self.wait_status(kasm_id, lambda s: s.get("destroyed") is True)
        self.assertTrue(os.path.exists(os.path.join(target, "victim.txt")))

    @unittest.skipUnless(ROOT, "needs a throwaway user (root)")
    def test_7_mapping_flags_applied_by_the_service(self):
        # no helper runs for the user: the service writes the files and gives them to the user
        # with the owner bits of is_readable / is_writable / is_executable only
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        files = {"rwx": ("%HOMEPATH%\\Flags\\tool.sh", b"#!/bin/sh\n"),
                 "dflt": ("%HOMEPATH%\\Flags\\default.txt", b"d"),
                 "none": ("%HOMEPATH%\\Flags\\none.txt", b"n"),
                 "xonly": ("%HOMEPATH%\\Flags\\xonly.bin", b"x")}
        payload = c.session_payload(file_mappings=files)
        by_dest = {m["destination"]: m for m in payload["file_mappings"].values()}
        flags = {"rwx": (True, True, True), "none": (False, False, False),
                 "xonly": (False, False, True)}
        for key, (r, w, x) in flags.items():
            by_dest[files[key][0]].update(is_readable=r, is_writable=w, is_executable=x)
        for k in ("is_readable", "is_writable", "is_executable"):  # missing: the defaults
            del by_dest[files["dflt"][0]][k]
        self.post(c, "session_start", payload)
        self.wait_status(kasm_id, lambda s: s.get("status") == "running")
        d = os.path.join(self.home, "Flags")
        uid = pwd.getpwnam(self.user).pw_uid
        modes = {n: os.stat(os.path.join(d, n)).st_mode & 0o7777 for n in os.listdir(d)}
        self.assertEqual(modes, {"tool.sh": 0o700, "default.txt": 0o600, "none.txt": 0o000,
                                 "xonly.bin": 0o100})
        for n in modes:
            self.assertEqual(os.stat(os.path.join(d, n)).st_uid, uid)
        with open(os.path.join(d, "none.txt"), "rb") as f:  # root reads it: written
            self.assertEqual(f.read(), b"n")
        log = self.a.read_log()
        self.assertIn(f"written to {os.path.join(d, 'tool.sh')} (10 bytes, owned by the user, "
                      "access rwx)", log)
        self.assertIn("(1 bytes, owned by the user, access ---)", log)
        self.assertRegex(log, r"file mapping \S+ is neither readable nor writable: it is "
                              r"written, but " + self.user)
        self.post(c, "session_end", payload)
        self.wait_status(kasm_id, lambda s: s.get("destroyed") is True)
        self.assertEqual(os.listdir(d), [])

    def test_6_logoff_configured(self):
        # logoff_on_session_end: true - Linux has no WTSLogoffSession: logged, not a failure,
        # and the variable auto_logout_user follows the key
        a = F.AgentDir()
        self.addCleanup(a.cleanup)
        with open(os.path.join(a.dir, "no-sessions"), "w") as f:
            f.write("# no sessions\n")
        a.write_config(api_host="127.0.0.1", api_port=self.sim.api_port,
                       server_id=self.sim.server_id, registered=True,
                       agent_jwt_token=self.token, user_sso=True,
                       jwt_public_key=self.sim.jwt_public_key_file,
                       script_path=self.scripts, script_timeout=3,
                       logoff_on_session_end=True,
                       sessions_file=os.path.join(a.dir, "no-sessions"))
        a.start()
        a.wait_log("listening on https", timeout=60)
        kasm_id = uuid.uuid4().hex
        c = self.client(kasm_id)
        c.port = a.config()["port"]
        self.post(c, "session_end", c.session_payload())
        self.wait_status(kasm_id, lambda s: s.get("destroyed") is True)
        a.wait_log(f"session_end for kasm_id {kasm_id} done (0 step(s) failed)")
        self.assertIn(f"kasm_id {kasm_id}: log-off skipped: logging a user off is a Windows "
                      "feature", a.read_log())
        rec = [r for r in self.records("end") if r.get("KASM_KASM_ID") == kasm_id]
        self.assertEqual(rec[0]["KASM_AUTO_LOGOUT_USER"], "true")
        a.stop()
        self.assertEqual(a.proc.returncode, 0)


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main()
