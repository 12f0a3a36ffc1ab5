#!/usr/bin/python3
"""test_api.py - the HTTPS API on port 4902 (service/http/, service/api/), end to end.

Starts the real agent on 127.0.0.1, port 0, with a temp config and keys made here, reads the
bound port from its log ("listening on https://ADDR:PORT") and drives it with http.client over
TLS (no certificate verification, as Kasm's callers do) and curl.

Usage: test_api.py --bin-dir DIR [unittest options]
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

BIN_DIR = None
WINE_RUN = None  # --wine-run: run agent.exe under Wine (tests/windows/, a subset of the tests)
WINE_EXE = None
LISTEN_RE = re.compile(r"listening on (https?)://([^ ]+):(\d+)")
START_TIMEOUT = 20


def rsa_key(e=65537):
    return rsa.generate_private_key(public_exponent=e, key_size=2048)


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed(key, cn="kasm-test"):
    import datetime
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def user_token(key, exp_in=600, **extra):
    claims = {"system_username": "jdoe@corp.example", "username": "jdoe@kasm.local",
              "user_id": "5f1c0e2a", "authorizations": [100],
              "exp": int(time.time()) + exp_in}
    claims.update(extra)
    return jwt.encode(claims, pem_private(key), algorithm="RS256")


def agent_path(path):
    """A path as the agent sees it: Wine maps / to drive Z:."""
    return "Z:" + path.replace("/", "\\") if WINE_RUN else path


def write_atomic(path, data):
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)



_CLIENT_CONTEXT = None


def client_context():
    """One TLS client context for every connection (making one loads the CA store: slow).
    Kasm's callers do not verify the agent's self-signed certificate; neither do we here."""
    global _CLIENT_CONTEXT
    if _CLIENT_CONTEXT is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _CLIENT_CONTEXT = ctx
    return _CLIENT_CONTEXT

class Agent:
    """The agent process with its config in a temp dir; the log is collected in memory."""

    def __init__(self, tmp, name, jwt_pub, extra="", server_key=None, server_cert=None,
                 ssl_on=True):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.jwt_path = os.path.join(self.dir, "jwt.pem")
        self.cert_path = os.path.join(self.dir, "certs", "cert.pem")
        self.key_path = os.path.join(self.dir, "certs", "key.pem")
        write_atomic(self.jwt_path, jwt_pub)
        if server_key:
            os.makedirs(os.path.dirname(self.key_path))
            write_atomic(self.key_path, server_key)
            write_atomic(self.cert_path, server_cert)
        self.cfg = os.path.join(self.dir, "config.yaml")
        if not WINE_RUN and "sessions_file:" not in extra:
            # no session helpers unless a test declares sessions: the requests are served
            # from upload_dir/download_dir even on a machine where someone is logged in
            none = os.path.join(self.dir, "no-sessions")
            with open(none, "w") as f:
                f.write("# no sessions\n")
            extra += f"sessions_file: {none}\n"
        if "admin_socket:" not in extra:
            # its own admin channel: other tests run agents at the same time
            extra += "admin_socket: %s\n" % (
                "\\\\.\\pipe\\kasm-test-%d-%s" % (os.getpid(), name) if WINE_RUN
                else os.path.join(self.dir, "admin.sock"))
        with open(self.cfg, "w") as f:
            f.write(f"ssl: {'true' if ssl_on else 'false'}\nport: 0\n"
                    f"listen_address: 127.0.0.1\n"
                    f"jwt_public_key: {agent_path(self.jwt_path)}\n"
                    f"server_public_key: {agent_path(self.cert_path)}\n"
                    f"server_private_key: {agent_path(self.key_path)}\n"
                    f"upload_dir: {agent_path(self.dir + '/up')}\n"
                    f"download_dir: {agent_path(self.dir + '/down')}\n" + extra)
        self.lines = []
        self.lock = threading.Lock()
        if WINE_RUN:
            cmd = [WINE_RUN, WINE_EXE, "--console", "--cfg", agent_path(self.cfg), "--debug", "1"]
        else:
            cmd = [os.path.join(BIN_DIR, "agent"), "--cfg", self.cfg, "--debug", "1"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.scheme, self.port = self._wait_port()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\r\n"))

    def log(self):
        with self.lock:
            return "\n".join(self.lines)

    def _wait_port(self):
        end = time.monotonic() + (120 if WINE_RUN else START_TIMEOUT)
        while time.monotonic() < end:
            m = LISTEN_RE.search(self.log())
            if m:
                return m.group(1), int(m.group(3))
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError("no 'listening on' line within %d s:\n%s" % (START_TIMEOUT, self.log()))

    def conn(self, context=None):
        if self.scheme == "http":
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if context is None:
            context = client_context()
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)

    def request(self, method, path, token=None, body=None, headers=None):
        c = self.conn()
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def stop(self, sig=signal.SIGTERM):
        if WINE_RUN:
            # no console to send Ctrl+C to: end the Wine process group; the wine_prefix
            # fixture stops the wineserver afterwards
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.reader.join(timeout=5)
            self.proc.stdout.close()
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(timeout=5)
        self.proc.stdout.close()
        return rc


def error_of(body):
    return json.loads(body.decode())["error"]


class ApiTest(unittest.TestCase):
    """The main agent: an e=3 server key, multi_user true and user_sso false, small limits."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kasm-api-")
        cls.jwt_key = rsa_key()
        server_key = rsa_key(e=3)
        cls.agent = Agent(cls.tmp, "main", pem_public(cls.jwt_key),
                          extra="multi_user: true\nuser_sso: false\nmax_json_body_bytes: 2048\n",
                          server_key=pem_private(server_key),
                          server_cert=self_signed(server_key))
        cls.token = user_token(cls.jwt_key)

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"agent exited with {rc}")

    def get(self, path, token="default", **kw):
        return self.agent.request("GET", path, self.token if token == "default" else token, **kw)

    def post(self, path, token="default", **kw):
        return self.agent.request("POST", path, self.token if token == "default" else token, **kw)

    # --- server and TLS ---

    def test_e3_server_key_is_served(self):
        der = ssl.get_server_certificate(("127.0.0.1", self.agent.port))
        cert = x509.load_pem_x509_certificate(der.encode())
        self.assertEqual(cert.public_key().public_numbers().e, 3)

    def test_tls12_accepted_tls11_refused(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                self.assertEqual(t.version(), "TLSv1.2")
                cipher = t.cipher()[0]
                self.assertTrue("GCM" in cipher or "CHACHA20" in cipher, cipher)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.set_ciphers("ALL:@SECLEVEL=0")  # so that the client itself can offer TLS 1.1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as s:
            with self.assertRaises(ssl.SSLError):
                old.wrap_socket(s).close()

    def test_curl_healthcheck(self):
        out = subprocess.run(["curl", "-sk", "--tlsv1.2", "-H", "Authorization: Bearer " + self.token,
                              f"https://127.0.0.1:{self.agent.port}/__healthcheck"],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sorted(json.loads(out.stdout)), ["cpu_usage", "disk_usage", "memory_usage"])

    # --- healthcheck ---

    def test_healthcheck_shape(self):
        status, headers, body = self.get("/__healthcheck")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        data = json.loads(body)
        self.assertEqual(sorted(data), ["cpu_usage", "disk_usage", "memory_usage"])
        for k, v in data.items():
            self.assertIsInstance(v, (int, float), k)
            self.assertTrue(0 <= v <= 100, f"{k}={v}")
        self.assertGreater(data["memory_usage"], 0)
        self.assertGreater(data["disk_usage"], 0)

    # --- authentication ---

    def test_token_missing(self):
        status, _, body = self.get("/__healthcheck", token=None)
        self.assertEqual((status, error_of(body)), (401, "Token is missing"))

    def test_bad_tokens(self):
        now = int(time.time())
        forged = user_token(rsa_key())
        expired = user_token(self.jwt_key, exp_in=-3600)
        hdr_none = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = b64u(json.dumps({"system_username": "x", "exp": now + 600}).encode())
        alg_none = f"{hdr_none}.{payload}."
        hdr_hs = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        signing = f"{hdr_hs}.{payload}".encode()
        mac = hmac.new(pem_public(self.jwt_key), signing, hashlib.sha256).digest()
        hs256 = f"{hdr_hs}.{payload}.{b64u(mac)}"
        no_exp = jwt.encode({"system_username": "x"}, pem_private(self.jwt_key), algorithm="RS256")
        cases = {"forged": forged, "expired": expired, "alg-none": alg_none,
                 "hs256-confusion": hs256, "no-exp": no_exp, "garbage": "abc.def.ghi"}
        for name, tok in cases.items():
            with self.subTest(name):
                status, _, body = self.get("/__healthcheck", token=tok)
                self.assertEqual((status, error_of(body)), (401, "Invalid token"))
        status, _, body = self.get("/__healthcheck", token=None,
                                   headers={"Authorization": "Basic dXNlcjpwdw=="})
        self.assertEqual((status, error_of(body)), (401, "Invalid token"))
        self.assertNotIn(forged, self.agent.log())
        self.assertNotIn(hs256, self.agent.log())

    def test_token_in_query(self):
        status, _, body = self.get("/__healthcheck?token=" + self.token, token=None)
        self.assertEqual(status, 200, body)
        status, _, body = self.get("/__healthcheck?token=" + user_token(rsa_key()), token=None)
        self.assertEqual((status, error_of(body)), (401, "Invalid token"))
        status, _, body = self.get("/__healthcheck?token=", token=None)
        self.assertEqual((status, error_of(body)), (401, "Token is missing"))

    # --- CORS ---

    def test_cors_preflight_without_auth(self):
        status, headers, body = self.agent.request(
            "OPTIONS", "/upload", headers={"Origin": "https://kasm.example",
                                           "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 204)
        self.assertEqual(body, b"")
        self.assertEqual(headers["access-control-allow-origin"], "https://kasm.example")
        self.assertIn("POST", headers["access-control-allow-methods"])
        for h in ("Authorization", "Content-Type", "X-Requested-With", "Cache-Control"):
            self.assertIn(h, headers["access-control-allow-headers"])
        self.assertIn("access-control-max-age", headers)
        status, headers, _ = self.get("/__healthcheck", headers={"Origin": "https://kasm.example"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["access-control-allow-origin"], "https://kasm.example")
        status, headers, _ = self.get("/__healthcheck")
        self.assertEqual(headers["access-control-allow-origin"], "*")

    # --- session_start / session_end ---

    def session_payload(self):
        return {"username": "jdoe", "kasm_id": "a1b2c3", "user_id": "5f1c0e2a",
                "create_local_account": False, "jwt": "session.jwt.token",
                "file_mappings": {}, "storage_mappings": {}, "user_groups": [],
                "extra_field_from_a_newer_kasm": 1}

    def test_session_start_and_end_ok(self):
        for path in ("/session_start", "/session_end"):
            with self.subTest(path):
                status, _, body = self.post(path, body=self.session_payload())
                self.assertEqual((status, body), (200, b"ok"))
        # the orchestrator ran both (no deployment here: the reports fail, never hang)
        end = time.monotonic() + 30
        while time.monotonic() < end and "session_end for kasm_id a1b2c3 done" not in self.agent.log():
            time.sleep(0.05)
        self.assertIn("session_start for kasm_id a1b2c3 done", self.agent.log())
        self.assertIn("session_end for kasm_id a1b2c3 done", self.agent.log())

    def test_session_payload_errors(self):
        cases = []
        for field in ("username", "kasm_id", "user_id"):
            p = self.session_payload()
            del p[field]
            cases.append((field + " missing", p, field))
            p = self.session_payload()
            p[field] = 12
            cases.append((field + " not a string", p, field))
            p = self.session_payload()
            p[field] = ""
            cases.append((field + " empty", p, field))
        for field, bad in (("create_local_account", "yes"), ("jwt", 5), ("file_mappings", []),
                           ("storage_mappings", "x"), ("user_groups", {})):
            p = self.session_payload()
            p[field] = bad
            cases.append((field, p, field))
        for name, payload, field in cases:
            with self.subTest(name):
                status, _, body = self.post("/session_start", body=payload)
                self.assertEqual(status, 400)
                self.assertIn(field, error_of(body))
        status, _, body = self.post("/session_start", body="{not json")
        self.assertEqual(status, 400)
        status, _, body = self.post("/session_end", body=[1, 2])
        self.assertEqual(status, 400)
        status, _, body = self.post("/session_start", token=None, body=self.session_payload())
        self.assertEqual((status, error_of(body)), (401, "Token is missing"))

    # --- screenshot (multi_user true, user_sso false) ---

    def test_screenshot_disabled_for_multi_user(self):
        status, _, body = self.post("/screenshot?width=300")
        self.assertEqual((status, error_of(body)),
                         (403, "Screenshots are disabled for this user"))
        status, _, body = self.post("/screenshot", token=None)
        self.assertEqual(status, 401)

    # --- transfers (wired in; exercised in depth by test_transfer.py) ---

    def test_transfer_folders_created_at_start(self):
        # Nothing made them but the agent: the config names folders that did not exist.
        self.assertTrue(os.path.isdir(os.path.join(self.agent.dir, "up")))
        self.assertTrue(os.path.isdir(os.path.join(self.agent.dir, "down")))

    def test_upload_and_downloads_wired(self):
        status, _, body = self.post("/upload", body=b"x", headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 400, body)
        self.assertTrue(error_of(body))
        status, headers, _ = self.get("/Downloads/Downloads")
        self.assertEqual((status, headers.get("location")), (301, "/Downloads/Downloads/"))
        status, _, body = self.get("/Downloads/Downloads/a.txt")
        self.assertEqual((status, error_of(body)), (404, "Not found"))
        for path in ("/Downloads/Downloads/", "/upload"):
            status, _, _ = self.agent.request("GET" if path != "/upload" else "POST", path)
            self.assertEqual(status, 401)

    # --- routing and limits ---

    def test_unknown_path_and_wrong_method(self):
        for path in ("/", "/nope", "/__healthcheck/x", "/Downloads/other", "/uploads"):
            with self.subTest(path):
                status, headers, body = self.get(path)
                self.assertEqual((status, error_of(body)), (404, "Not found"))
                self.assertEqual(headers["content-type"], "application/json")
        for method, path in (("POST", "/__healthcheck"), ("GET", "/session_start"),
                             ("GET", "/upload"), ("PUT", "/upload"), ("DELETE", "/session_end"),
                             ("POST", "/Downloads/Downloads/x")):
            with self.subTest(method + path):
                status, _, body = self.agent.request(method, path, self.token)
                self.assertEqual((status, error_of(body)), (405, "Method not allowed"))

    def test_oversized_headers(self):
        status, headers, body = self.get("/__healthcheck", headers={"X-Big": "a" * 20000})
        self.assertIn(status, (400, 431))
        self.assertEqual(headers.get("content-type"), "application/json")
        self.assertIn("error", json.loads(body))

    def test_oversized_json_body(self):
        p = self.session_payload()
        p["pad"] = "x" * 4096
        status, _, body = self.post("/session_start", body=p)
        self.assertEqual((status, error_of(body)), (413, "Request body too large"))
        p["pad"] = "x" * 1000  # under max_json_body_bytes (2048)
        status, _, body = self.post("/session_start", body=p)
        self.assertEqual(status, 200, body)


class ApiGeneratedCertTest(unittest.TestCase):
    """No certificate configured (generated), multi_user false; key swap; SIGTERM under load."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kasm-api2-")
        self.jwt_key = rsa_key()
        self.agent = Agent(self.tmp, "gen", pem_public(self.jwt_key))
        self.token = user_token(self.jwt_key)

    def tearDown(self):
        self.agent.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_generated_certificate(self):
        self.assertTrue(os.path.exists(self.agent.cert_path))
        mode = stat.S_IMODE(os.stat(self.agent.key_path).st_mode)
        self.assertEqual(mode, 0o600)
        pem = ssl.get_server_certificate(("127.0.0.1", self.agent.port)).encode()
        with open(self.agent.cert_path, "rb") as f:
            self.assertEqual(x509.load_pem_x509_certificate(pem),
                             x509.load_pem_x509_certificate(f.read()))
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertIn("localhost", san.get_values_for_type(x509.DNSName))
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
        self.assertIn("127.0.0.1", ips)
        self.assertIn("::1", ips)
        self.assertIn("generated a self-signed", self.agent.log())

    def test_screenshot_width_and_503(self):
        for q in ("?width=15", "?width=3841", "?width=abc", "?width=", "?width=-5", "?width=1e3"):
            with self.subTest(q):
                status, _, body = self.agent.request("POST", "/screenshot" + q, self.token)
                self.assertEqual(status, 400, body)
                self.assertIn("width", error_of(body))
        for q in ("", "?width=16", "?width=300", "?width=1000", "?width=3840"):
            with self.subTest(q):
                status, _, body = self.agent.request("POST", "/screenshot" + q, self.token)
                self.assertEqual(status, 503)
                self.assertIn("session helper", error_of(body))

    def test_key_file_swapped_at_runtime(self):
        status, _, _ = self.agent.request("GET", "/__healthcheck", self.token)
        self.assertEqual(status, 200)
        new_key = rsa_key()
        new_token = user_token(new_key)
        status, _, _ = self.agent.request("GET", "/__healthcheck", new_token)
        self.assertEqual(status, 401)
        write_atomic(self.agent.jwt_path, pem_public(new_key))
        status, _, _ = self.agent.request("GET", "/__healthcheck", new_token)
        self.assertEqual(status, 200)
        status, _, body = self.agent.request("GET", "/__healthcheck", self.token)
        self.assertEqual((status, error_of(body)), (401, "Invalid token"))

    def test_verified_token_still_expires(self):
        # the agent remembers verified tokens (auth.c); a remembered one must still expire
        agent = Agent(self.tmp, "leeway0", pem_public(self.jwt_key), extra="jwt_leeway: 0\n")
        try:
            exp = int(time.time()) + 3
            token = user_token(self.jwt_key, exp_in=exp - int(time.time()))
            for _ in range(3):
                status, _, _ = agent.request("GET", "/__healthcheck", token)
                self.assertEqual(status, 200)
            while time.time() < exp + 0.2:
                time.sleep(0.1)
            status, _, body = agent.request("GET", "/__healthcheck", token)
            self.assertEqual((status, error_of(body)), (401, "Invalid token"))
            end = time.monotonic() + 10  # the log is read by another thread
            while "expired" not in agent.log() and time.monotonic() < end:
                time.sleep(0.05)
            self.assertIn("expired", agent.log())
        finally:
            agent.stop()

    def test_sigterm_during_requests(self):
        stop = threading.Event()
        results = []

        def hammer():
            while not stop.is_set():
                try:
                    results.append(self.agent.request(
                        "POST", "/session_start", self.token,
                        body={"username": "u", "kasm_id": "k", "user_id": "i"})[0])
                except (OSError, http.client.HTTPException):
                    results.append(None)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        self.agent.proc.send_signal(signal.SIGTERM)
        rc = self.agent.stop()
        stop.set()
        for t in threads:
            t.join(timeout=20)
        self.assertEqual(rc, 0, self.agent.log())
        self.assertIn(200, results)
        self.assertIn("stopped", self.agent.log())


class ApiPlainHttpTest(unittest.TestCase):
    def test_ssl_false_serves_http_and_warns(self):
        tmp = tempfile.mkdtemp(prefix="kasm-api3-")
        try:
            key = rsa_key()
            agent = Agent(tmp, "plain", pem_public(key), ssl_on=False)
            try:
                self.assertEqual(agent.scheme, "http")
                status, _, body = agent.request("GET", "/__healthcheck", user_token(key))
                self.assertEqual(status, 200, body)
                self.assertIn("for tests only", agent.log())
                self.assertFalse(os.path.exists(agent.key_path))
            finally:
                self.assertEqual(agent.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


WINE_SUBSET = ["test_healthcheck_shape", "test_token_missing", "test_bad_tokens",
               "test_token_in_query", "test_session_start_and_end_ok",
               "test_session_payload_errors", "test_unknown_path_and_wrong_method",
               "test_e3_server_key_is_served"]


def main():
    global BIN_DIR, WINE_RUN, WINE_EXE
    args = sys.argv[1:]
    usage = ("usage: test_api.py --bin-dir DIR | --wine-run WINE_RUN_SH --exe AGENT_EXE")
    opts = {}
    for name in ("--bin-dir", "--wine-run", "--exe"):
        if name in args:
            i = args.index(name)
            if i + 1 >= len(args):
                sys.exit(usage)
            opts[name] = args[i + 1]
            del args[i:i + 2]
    if args or not (("--bin-dir" in opts) ^ ("--wine-run" in opts and "--exe" in opts)):
        sys.exit(usage)
    BIN_DIR = opts.get("--bin-dir")
    WINE_RUN = opts.get("--wine-run")
    WINE_EXE = opts.get("--exe")
    loader = unittest.TestLoader()
    if WINE_RUN:
        # agent.exe under Wine: the main checks (healthcheck, 401s, session_start) only
        suite = unittest.TestSuite(ApiTest(name) for name in WINE_SUBSET)
    else:
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c)
                                   for c in (ApiTest, ApiGeneratedCertTest, ApiPlainHttpTest))
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
