#!/usr/bin/python3
"""test_register.py - `agent --register-host ...` (KASM_INTERFACE.md section 2) against the
deployment simulator: registration with a per-server JWT and with a plain-UUID component
token (config keys and PEM files written, PEMs load, private modes, other keys untouched),
the failed checks named (name resolution, TCP reach, health check), refusals from the
deployment (bad token, HTTP 200 + error_message), --await-domain on POSIX, and no token in
any output.

Usage: test_register.py --bin-dir DIR [unittest options]
"""
import json
import os
import stat
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import serialization

import deploy_fixture as F
from deploy_fixture import K


class RegisterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = K.KasmSimulator(K.SimConfig(multi_user=True, user_sso=True))
        cls.sim.start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.reset()
        self.sim.configure(multi_user=True, user_sso=True)
        self.a = F.AgentDir()
        self.a.write_config(debug=False)

    def tearDown(self):
        self.a.cleanup()

    def register(self, token, *extra, port=None, host="127.0.0.1"):
        return self.a.register(host, port or self.sim.api_port, token, *extra)

    def check_registered(self, server_id):
        c = self.a.config()
        self.assertEqual(c["server_id"], server_id)
        self.assertEqual(c["api_host"], "127.0.0.1")
        self.assertEqual(c["api_port"], self.sim.api_port)
        self.assertIs(c["registered"], True)
        self.assertIs(c["multi_user"], True)
        self.assertIs(c["user_sso"], True)
        self.assertEqual(c["custom_unknown_key"], "kept")
        self.assertEqual(c["upload_dir"], os.path.join(self.a.dir, "Upload"))
        claims = self.sim.decode(c["agent_jwt_token"])
        self.assertEqual(claims["server_id"], server_id)
        self.assertEqual(claims["authorizations"], [70])
        # the PEM files, where the config says, loadable, private
        with open(c["server_public_key"], "rb") as f:
            x509.load_pem_x509_certificate(f.read())
        with open(c["server_private_key"], "rb") as f:
            serialization.load_pem_private_key(f.read(), password=None)
        with open(c["jwt_public_key"], "rb") as f:
            self.assertEqual(f.read().strip(), self.sim.jwt_public_key_pem.encode().strip())
        for path in (c["server_private_key"], self.a.cfg):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        return c

    def test_jwt_token_server_id_from_claims(self):
        rc, out, err = self.register(self.sim.registration_token)
        self.assertEqual(rc, 0, err)
        self.assertIn("restart the agent", out)
        self.check_registered(self.sim.server_id)
        body = self.sim.calls("register_component")[0].body
        self.assertEqual(body["type"], "server_agent")
        self.assertEqual(body["registration_token"], self.sim.registration_token)
        tc = body["target_component"]
        self.assertEqual((tc["id"], tc["type"], tc["auto_configure"], tc["service_status"]),
                         (self.sim.server_id, "server_agent", True, "registering"))
        self.assertTrue(tc["hostname"])
        F.assert_no_tokens(self, out + err + self.a.read_log(),
                           [self.sim.registration_token])
        self.assertIn("Component registration successful", self.a.read_log())

    def test_jwt_token_with_server_id_kasm_command_line(self):
        rc, out, err = self.register(self.sim.checkin_token, "--server-id", self.sim.server_id,
                                     "--await-domain", "True")  # POSIX: registers at once
        self.assertEqual(rc, 0, err)
        self.check_registered(self.sim.server_id)

    def write_pending(self, text):
        # what `agent --await-domain True` leaves beside config.yaml on a Windows host that
        # has not joined its domain yet (POSIX counts as joined, so the CLI never queues)
        path = os.path.join(self.a.dir, "pending_registration.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_queued_registration_runs_at_service_start(self):
        sid = "fedcba9876543210fedcba9876543210"
        path = self.write_pending(json.dumps({
            "host": "127.0.0.1", "port": self.sim.api_port,
            "registration_token": self.sim.component_uuid_token, "server_id": sid}))
        self.a.start()
        self.a.wait_log("the queued registration is done")
        self.assertFalse(os.path.exists(path))
        self.check_registered(sid)
        # then the service goes on as a registered agent: check-in with the new token
        F.wait_until(lambda: [c for c in self.sim.calls("register_component")
                              if c.verdict == "valid"], what="check-in after the registration")
        self.a.stop()
        F.assert_no_tokens(self, self.a.console() + self.a.read_log(),
                           [self.sim.component_uuid_token])

    def test_bad_queued_registration_is_kept(self):
        path = self.write_pending('{"host": "127.0.0.1", "port": "not a number"}')
        self.a.start()
        self.a.wait_log("the queued registration failed")
        self.assertIn("is not a queued registration", self.a.read_log())
        self.assertTrue(os.path.exists(path))
        self.assertIsNone(self.a.proc.poll(), "the service keeps running")
        self.assertEqual(self.sim.calls("register_component"), [])

    def test_uuid_token_with_server_id(self):
        sid = "0123456789abcdef0123456789abcdef"
        rc, out, err = self.register(self.sim.component_uuid_token, "--server-id", sid)
        self.assertEqual(rc, 0, err)
        self.check_registered(sid)
        self.assertEqual(self.sim.calls("register_component")[0].verdict, "uuid_token")
        F.assert_no_tokens(self, out + err + self.a.read_log(), [self.sim.component_uuid_token])

    def test_uuid_token_server_id_assigned(self):
        rc, out, err = self.register(self.sim.component_uuid_token)
        self.assertEqual(rc, 0, err)
        sid = self.a.config()["server_id"]
        self.assertRegex(sid, r"^[0-9a-f]{32}$")
        self.check_registered(sid)

    def test_bad_token(self):
        before = self.a.config_text()
        bad = self.sim.mint("registration", sign="rogue")
        rc, out, err = self.register(bad)
        self.assertNotEqual(rc, 0)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("Access Denied!", err)
        F.assert_no_tokens(self, out + err + self.a.read_log(), [bad])
        self.assertEqual(self.a.config_text(), before)
        self.assertFalse(os.path.exists(os.path.join(self.a.dir, "certs")))

    def test_expired_registration_token(self):
        old = self.sim.mint_registration_token(lifetime=-100)
        rc, out, err = self.register(old)
        self.assertNotEqual(rc, 0)
        self.assertIn("Expired JWT utilized on register_component", err)

    def test_error_message_in_http_200(self):
        self.sim.inject("error200", "register_component", count=1, message="Server is locked")
        rc, out, err = self.register(self.sim.registration_token)
        self.assertNotEqual(rc, 0)
        self.assertIn("Server is locked", err)
        self.assertNotIn("agent_jwt_token", self.a.config())

    def test_wrong_port(self):
        port = F.free_port()
        rc, out, err = self.register(self.sim.registration_token, port=port)
        self.assertNotEqual(rc, 0)
        self.assertIn("not reachable over TCP", err)
        self.assertIn(f"cannot connect to 127.0.0.1:{port}", err)

    def test_unresolvable_host(self):
        rc, out, err = self.register(self.sim.registration_token, host="no-such-host.invalid")
        self.assertNotEqual(rc, 0)
        self.assertIn("name resolution failed: cannot resolve no-such-host.invalid", err)

    def test_health_check_fails(self):
        self.sim.inject("http500", "__healthcheck", count=1)
        rc, out, err = self.register(self.sim.registration_token)
        self.assertNotEqual(rc, 0)
        self.assertIn("health check failed", err)
        self.assertIn("answered HTTP 500", err)
        self.assertEqual(self.sim.calls("register_component"), [])

    def test_down_then_back(self):
        self.sim.inject("down")  # connections refused until cleared
        rc, out, err = self.register(self.sim.registration_token)
        self.assertNotEqual(rc, 0)
        self.assertIn("not reachable over TCP", err)
        self.assertNotIn("agent_jwt_token", self.a.config())
        self.sim.clear_faults()
        rc, out, err = self.register(self.sim.registration_token)
        self.assertEqual(rc, 0, err)
        self.check_registered(self.sim.server_id)

    def test_verified_tls(self):
        # api_verify_cert with the simulator's CA: registers; a certificate from an unknown CA
        # fails the handshake and says so; without verification (Kasm's default) it passes.
        self.a.write_config(api_verify_cert=True, api_ca_file=self.sim.ca_file)
        self.sim.inject("tls_unknown_ca")
        rc, out, err = self.register(self.sim.registration_token)
        self.assertNotEqual(rc, 0)
        self.assertIn(f"TLS handshake with 127.0.0.1:{self.sim.api_port} failed: certificate "
                      f"verification failed", err)
        self.sim.clear_faults()
        rc, out, err = self.register(self.sim.registration_token)
        self.assertEqual(rc, 0, err)
        c = self.check_registered(self.sim.server_id)
        self.assertIs(c["api_verify_cert"], True)
        self.a.write_config(api_verify_cert=False)
        self.sim.inject("tls_unknown_ca")
        rc, out, err = self.register(self.sim.registration_token)
        self.assertEqual(rc, 0, err)

    def test_debug_log_has_no_tokens(self):
        rc, out, err = self.register(self.sim.registration_token, "--debug", "1")
        self.assertEqual(rc, 0, err)
        token = self.a.config()["agent_jwt_token"]
        F.assert_no_tokens(self, out + err + self.a.read_log(),
                           [self.sim.registration_token, token])


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main(verbosity=2)
