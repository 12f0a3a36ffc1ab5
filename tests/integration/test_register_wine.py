#!/usr/bin/python3
"""test_register_wine.py - agent.exe (the mingw build) registers under Wine against the
deployment simulator: Kasm's installer command line writes config.yaml and the certs (Windows
paths), a refused token exits non-zero with the deployment's message, and --await-domain True
on a machine outside a domain (a Wine prefix is never in one) queues the registration in
pending_registration.json and exits 0.

Usage: test_register_wine.py --wine-run cmake/wine-run.sh --agent agent.exe
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from deploy_fixture import K

ARGS = None


def winpath(path):
    return "Z:" + path.replace("/", "\\")


class RegisterUnderWine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = K.KasmSimulator(K.SimConfig(user_sso=True))
        cls.sim.start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kasm-wine-reg-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cfg = os.path.join(self.dir, "config.yaml")
        with open(self.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump({"log_file": winpath(os.path.join(self.dir, "agent.log")),
                            "custom_unknown_key": "kept"}, f)

    def run_agent(self, token, *extra):
        p = subprocess.run([ARGS.wine_run, ARGS.agent, "/S", "--register-host", "127.0.0.1",
                            "--register-port", str(self.sim.api_port), "--register-token",
                            token, "--cfg", winpath(self.cfg)] + list(extra),
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def config(self):
        with open(self.cfg, encoding="utf-8") as f:
            return yaml.safe_load(f)

    def test_kasm_command_line_registers(self):
        rc, out, err = self.run_agent(self.sim.checkin_token, "--server-id", self.sim.server_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("net stop kasm && net start kasm", out)
        c = self.config()
        self.assertEqual(c["server_id"], self.sim.server_id)
        self.assertIs(c["registered"], True)
        self.assertIs(c["user_sso"], True)
        self.assertEqual(c["custom_unknown_key"], "kept")
        self.assertEqual(self.sim.decode(c["agent_jwt_token"])["server_id"], self.sim.server_id)
        certs = os.path.join(self.dir, "certs")
        self.assertEqual(c["server_private_key"], winpath(os.path.join(certs, "key.pem")))
        with open(os.path.join(certs, "cert.pem"), "rb") as f:
            x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(certs, "key.pem"), "rb") as f:
            serialization.load_pem_private_key(f.read(), password=None)
        self.assertNotIn(self.sim.checkin_token, out + err)

    def test_refused_token(self):
        bad = self.sim.mint("registration", sign="rogue")
        rc, out, err = self.run_agent(bad)
        self.assertNotEqual(rc, 0)
        self.assertIn("Access Denied!", err)
        self.assertNotIn(bad, out + err)
        self.assertNotIn("agent_jwt_token", self.config())

    def test_await_domain_queues(self):
        rc, out, err = self.run_agent(self.sim.registration_token, "--await-domain", "True")
        self.assertEqual(rc, 0, err)
        self.assertIn("queued", out)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "pending_registration.json")))
        self.assertNotIn("registered", self.config())
        self.assertEqual(self.sim.calls("register_component"), [])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--wine-run", required=True)
    ap.add_argument("--agent", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
