#!/usr/bin/python3
"""test_agentctl_doctor.py - `agentctl doctor` against a real agent registered with the
deployment simulator (tests/sim/kasm_sim.py).

A healthy setup (registered with the simulator, one declared session with its helper) gives
no warning and no failure (firewall and winfsp are skipped on POSIX, with the reason) and exit
0. Then things are broken on purpose one at a time and put back: the private key world-readable,
an expired certificate (and one about to expire: a warning, exit 0), a certificate that does
not match the key, the JWT public key missing, the config edited (a warning) and broken, the
deployment down, the deployment too slow (doctor still answers), the deployment's Date header
skewed (warning, then failure), and - with a second agent - an expired token. Each shows the
verdict, a fix and the exit code (6 when a check failed); --json is parsed; a non-root user is
refused (exit 4); no token appears in any output.

Usage: test_agentctl_doctor.py --bin-dir DIR [unittest options]
"""
import base64
import datetime
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import deploy_fixture as F
from deploy_fixture import K

TIMEOUT = 60
EXIT_FAILED = 6
CHECKS = ["config", "key_file", "config_acl", "certificate", "certificate_key", "jwt_key",
          "https_port", "firewall", "deployment", "token", "clock_skew", "helpers", "winfsp",
          "disk_space"]


def make_cert(key, days_from, days_to):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor-test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def fake_jwt(claims):
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return (b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + "." +
            base64.urlsafe_b64encode(b"not-a-signature-never-printed").rstrip(b"=").decode())


class Agent:
    """An agent started with --console on an AgentDir, with its own admin socket."""

    def __init__(self, adir):
        self.a = adir
        self.sock = os.path.join(adir.dir, "run", "admin.sock")
        self.proc = None

    def start(self):
        self.err = open(os.path.join(self.a.dir, "stderr.txt"), "w")
        self.proc = subprocess.Popen([F.agent_bin(), "--console", "--cfg", self.a.cfg],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        self.a.proc = self.proc
        self.a.wait_log("listening on https://", timeout=TIMEOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.err.close()


class DoctorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = K.KasmSimulator(K.SimConfig())
        cls.sim.start()
        cls.user = pwd.getpwuid(os.geteuid()).pw_name
        cls.a = F.AgentDir()
        sessions = os.path.join(cls.a.dir, "sessions.txt")
        with open(sessions, "w", encoding="utf-8") as f:
            f.write(f"1 {cls.user} console\n")
        cls.a.write_config(listen_address="127.0.0.1",
                           admin_socket=os.path.join(cls.a.dir, "run", "admin.sock"),
                           session_helper=os.path.join(F.BIN_DIR, "session_helper"),
                           sessions_file=sessions,
                           download_dir=os.path.join(cls.a.dir, "Download"))
        rc, out, err = cls.a.register("127.0.0.1", cls.sim.api_port, cls.sim.registration_token)
        assert rc == 0, err
        cls.c = cls.a.config()
        cls.agent = Agent(cls.a)
        cls.agent.start()
        cls.a.wait_log("is ready", timeout=TIMEOUT)
        cls.agent2 = None

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        if cls.agent2:
            cls.agent2.stop()
            cls.agent2.a.cleanup()
        cls.a.cleanup()
        cls.sim.stop()

    def tearDown(self):
        self.sim.clear_faults()
        self.sim.configure(date_offset=0)

    # ---- helpers -----------------------------------------------------------------------------

    def secrets(self):
        return [self.c.get("agent_jwt_token"), self.sim.registration_token]

    def doctor(self, *args, cfg=None, user=None):
        cmd = [os.path.join(F.BIN_DIR, "agentctl"), "doctor"] + list(args) + \
              ["--cfg", cfg or self.a.cfg]
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        for text in (p.stdout, p.stderr):
            F.assert_no_tokens(self, text, self.secrets())
            self.assertNotIn("PRIVATE KEY", text)
        return p.returncode, p.stdout, p.stderr

    def doctor_json(self, cfg=None):
        rc, out, err = self.doctor("--json", cfg=cfg)
        self.assertIn(rc, (0, EXIT_FAILED), err)
        checks = json.loads(out)
        self.assertIsInstance(checks, list)
        self.assertEqual([c["check"] for c in checks], CHECKS)
        for c in checks:
            self.assertEqual(set(c), {"check", "verdict", "detail", "fix"})
            self.assertIn(c["verdict"], ("ok", "warning", "fail", "skipped"))
            self.assertTrue(c["detail"], c)
            if c["verdict"] in ("warning", "fail"):
                self.assertTrue(c["fix"], f"{c['check']} is {c['verdict']} without a fix")
            if c["verdict"] == "ok":
                self.assertIsNone(c["fix"])
        failed = any(c["verdict"] == "fail" for c in checks)
        self.assertEqual(rc, EXIT_FAILED if failed else 0, checks)
        return rc, {c["check"]: c for c in checks}

    def assert_only(self, checks, expected):
        """expected: {check: verdict} for the broken ones; the rest must be ok or skipped as in
        the healthy setup."""
        healthy = {"firewall": "skipped", "winfsp": "skipped",
                   "disk_space": ("ok", "warning")}  # this machine's disk may be nearly full
        for name, c in checks.items():
            want = expected.get(name, healthy.get(name, "ok"))
            if isinstance(want, tuple):
                self.assertIn(c["verdict"], want, c)
            else:
                self.assertEqual(c["verdict"], want, c)

    def replace_file(self, path, data, mode=0o600):
        backup = path + ".orig"
        if not os.path.exists(backup):
            shutil.copy2(path, backup)
            self.addCleanup(os.replace, backup, path)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)

    def key(self):
        with open(self.c["server_private_key"], "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)

    # ---- the healthy setup -------------------------------------------------------------------

    def test_a_healthy_setup_is_all_ok(self):
        rc, checks = self.doctor_json()
        self.assertEqual(rc, 0)
        self.assert_only(checks, {})
        self.assertIn("not applicable", checks["firewall"]["detail"])
        self.assertIn("storage", checks["winfsp"]["detail"])
        port = self.c["port"]
        self.assertIn(f"127.0.0.1:{port} (https)", checks["https_port"]["detail"])
        self.assertIn(f"127.0.0.1:{self.sim.api_port} healthy", checks["deployment"]["detail"])
        self.assertIn("days left", checks["certificate"]["detail"])
        self.assertIn("left", checks["token"]["detail"])
        self.assertIn("jwt_leeway", checks["clock_skew"]["detail"])
        self.assertIn("1 session(s), each with its helper running", checks["helpers"]["detail"])
        self.assertIn(self.c["upload_dir"], checks["disk_space"]["detail"])
        self.assertIn("GiB free", checks["disk_space"]["detail"])
        # the table
        rc, out, err = self.doctor()
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("VERDICT  CHECK"), out)
        self.assertRegex(out, r"\nok +certificate_key +")
        self.assertRegex(out, r"\nskipped +firewall +not applicable")
        self.assertRegex(out, r"\n14 checks: 1[12] ok, [01] warning\(s\), 0 failed, 2 skipped\n")
        if checks["disk_space"]["verdict"] == "ok":
            self.assertNotIn("fix:", out)

    # ---- broken on purpose -------------------------------------------------------------------

    def test_key_file_world_readable(self):
        key = self.c["server_private_key"]
        os.chmod(key, 0o644)
        self.addCleanup(os.chmod, key, 0o600)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"key_file": "fail"})
        self.assertIn("mode 0644", checks["key_file"]["detail"])
        self.assertIn(f"chmod 600 '{key}'", checks["key_file"]["fix"])
        rc, out, err = self.doctor()
        self.assertEqual(rc, EXIT_FAILED, err)
        self.assertRegex(out, r"\nFAIL +key_file +the TLS private key .* is not private")
        self.assertIn(f"fix: chmod 600 '{key}'", out)
        self.assertIn("1 failed", out)

    def test_config_writable_by_others(self):
        os.chmod(self.a.cfg, 0o666)
        self.addCleanup(os.chmod, self.a.cfg, 0o600)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"config_acl": "fail"})
        self.assertIn("every user can write it", checks["config_acl"]["detail"])
        self.assertIn(f"chmod go-w '{self.a.cfg}'", checks["config_acl"]["fix"])

    def test_expired_certificate(self):
        self.replace_file(self.c["server_public_key"], make_cert(self.key(), -30, -1), 0o644)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"certificate": "fail"})
        self.assertIn("expired", checks["certificate"]["detail"])
        self.assertIn("renew it", checks["certificate"]["fix"])

    def test_certificate_about_to_expire_is_a_warning(self):
        self.replace_file(self.c["server_public_key"], make_cert(self.key(), -30, 10), 0o644)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, 0)  # warnings alone exit 0
        self.assert_only(checks, {"certificate": "warning"})
        self.assertRegex(checks["certificate"]["detail"], r"\((9|10) days left\)")
        rc, out, err = self.doctor()
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\nWARNING +certificate ")
        self.assertRegex(out, r"[12] warning\(s\), 0 failed")

    def test_certificate_not_matching_the_key(self):
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.replace_file(self.c["server_public_key"], make_cert(other, -1, 300), 0o644)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"certificate_key": "fail"})
        self.assertIn("does not match the private key", checks["certificate_key"]["detail"])

    def test_jwt_key_missing(self):
        path = self.c["jwt_public_key"]
        os.rename(path, path + ".away")
        self.addCleanup(os.rename, path + ".away", path)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"jwt_key": "fail"})
        self.assertIn(path, checks["jwt_key"]["detail"])
        self.assertIn("register the agent again", checks["jwt_key"]["fix"])

    def test_config_edited_and_broken(self):
        with open(self.a.cfg, encoding="utf-8") as f:
            text = f.read()
        self.addCleanup(self.restore_config, text)
        edited = yaml.safe_load(text)
        edited["jwt_leeway"] = 77
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump(edited, f)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, 0)
        self.assert_only(checks, {"config": "warning"})
        self.assertIn("differs from the configuration the agent is running with",
                      checks["config"]["detail"])
        self.assertIn("restart the agent", checks["config"]["fix"])
        with open(self.a.cfg, "a", encoding="utf-8") as f:
            f.write("port: [not, a, port\n")
        # agentctl cannot read the broken file either: it is given one that names the socket
        ctl_cfg = os.path.join(self.a.dir, "agentctl.yaml")
        with open(ctl_cfg, "w", encoding="utf-8") as f:
            f.write(f"admin_socket: {self.agent.sock}\n")
        rc, checks = self.doctor_json(cfg=ctl_cfg)
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"config": "fail"})
        self.assertIn("config.yaml:", checks["config"]["detail"])
        self.assertIn("correct", checks["config"]["fix"])

    def restore_config(self, text):
        with open(self.a.cfg, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(self.a.cfg, 0o600)

    def test_deployment_down(self):
        self.sim.inject("down")
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"deployment": "fail", "clock_skew": "skipped"})
        self.assertIn(f"cannot connect to 127.0.0.1:{self.sim.api_port}",
                      checks["deployment"]["detail"])
        self.assertIn("cannot connect", checks["deployment"]["fix"])
        self.assertIn("no deployment host answered", checks["clock_skew"]["detail"])

    def test_deployment_too_slow_still_answers(self):
        # Each answer takes 40 s: longer than agentctl waits (30 s). Doctor's own timeouts must
        # give up first and report it (exit 6, not 5 "no answer").
        self.sim.inject("slow", "__healthcheck", delay=40)
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"deployment": "fail", "clock_skew": "skipped"})
        self.assertIn("health check", checks["deployment"]["detail"])

    def test_clock_skew(self):
        self.sim.configure(date_offset=150)  # over jwt_leeway (60 s): a warning
        rc, checks = self.doctor_json()
        self.assertEqual(rc, 0)
        self.assert_only(checks, {"clock_skew": "warning"})
        self.assertIn("ahead of this machine's", checks["clock_skew"]["detail"])
        self.assertIn("synchronise the clocks", checks["clock_skew"]["fix"])
        self.sim.configure(date_offset=-900)  # over 5 minutes: a failure
        rc, checks = self.doctor_json()
        self.assertEqual(rc, EXIT_FAILED)
        self.assert_only(checks, {"clock_skew": "fail"})
        self.assertIn("behind this machine's", checks["clock_skew"]["detail"])

    def test_expired_token(self):
        # A second agent whose token expired two hours ago; its deployment is gone, so the
        # lifecycle cannot exchange it.
        b = F.AgentDir()
        token = fake_jwt({"server_id": "0123456789abcdef", "exp": int(time.time()) - 7200})
        b.write_config(listen_address="127.0.0.1", api_host="127.0.0.1",
                       api_port=F.free_port(), agent_jwt_token=token,
                       admin_socket=os.path.join(b.dir, "run", "admin.sock"),
                       session_helper=os.path.join(F.BIN_DIR, "session_helper"),
                       sessions_file=os.path.join(b.dir, "no-sessions.txt"))
        open(os.path.join(b.dir, "no-sessions.txt"), "w").close()
        type(self).agent2 = Agent(b)
        self.agent2.start()
        rc, out, err = self.doctor("--json", cfg=b.cfg)
        F.assert_no_tokens(self, out + err, [token])
        self.assertEqual(rc, EXIT_FAILED, err)
        checks = {c["check"]: c for c in json.loads(out)}
        self.assertEqual(checks["token"]["verdict"], "fail")
        self.assertIn("expired", checks["token"]["detail"])
        self.assertIn("(2 h 0 min ago)", checks["token"]["detail"])
        self.assertIn("registration_token.txt", checks["token"]["fix"])
        self.assertEqual(checks["deployment"]["verdict"], "fail")
        self.assertEqual(checks["helpers"]["verdict"], "ok")
        self.assertIn("no user is logged on", checks["helpers"]["detail"])

    def test_non_root_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create a throwaway user")
        if not shutil.which("useradd") or not shutil.which("runuser"):
            self.skipTest("useradd/runuser missing")
        user = "kasmdoc%d" % (os.getpid() % 100000)
        subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", user], check=True,
                       capture_output=True)
        pub = tempfile.mkdtemp(prefix="kasm-doctor-pub-")
        try:
            os.chmod(pub, 0o755)
            cfg = os.path.join(pub, "config.yaml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write(f"admin_socket: {self.agent.sock}\n")
            os.chmod(cfg, 0o644)
            rc, out, err = self.doctor(cfg=cfg, user=user)
            self.assertEqual(rc, 4, err)
            self.assertIn("permission denied", err)
            self.assertEqual(out, "")
        finally:
            subprocess.run(["userdel", user], capture_output=True)
            shutil.rmtree(pub, ignore_errors=True)


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
