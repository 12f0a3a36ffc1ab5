#!/usr/bin/python3
"""Self-tests of the Kasm deployment simulator (tests/sim/kasm_sim.py).

Owns: proof that the simulator mints Kasm-shaped tokens, answers every section-6 endpoint with
the documented shapes and error texts, records calls, injects each fault kind, and that its
control API, `serve` CLI and `agent-call` client work.  Loopback and ephemeral ports only.
Run: /usr/bin/python3 tests/sim/test_kasm_sim.py
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import email.utils
import http.client
import http.server
import io
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kasm_sim as K  # noqa: E402

SIM: K.KasmSimulator


def setUpModule() -> None:
    global SIM
    SIM = K.KasmSimulator(control_port=0).start()


def tearDownModule() -> None:
    SIM.stop()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


def api_call(method: str, path: str, query: Optional[dict[str, str]] = None,
             body: Any = None, sim: Optional[K.KasmSimulator] = None,
             verify: bool = True, timeout: float = 5.0) -> Resp:
    """One call to a simulator's deployment API, trusting its CA."""
    sim = sim or SIM
    if query:
        path += "?" + urlencode(query)
    if sim.config.tls:
        if verify:
            ctx = ssl.create_default_context(cafile=sim.ca_file)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", sim.api_port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", sim.api_port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        return Resp(response.status, response.read(), response.getheader("Content-Type", ""))
    finally:
        conn.close()


def register_body(token: Optional[str], server_id: Optional[str] = None,
                  status: str = "registering", hostname: str = "win-test.example") -> dict:
    body: dict[str, Any] = {
        "type": "server_agent",
        "target_component": {"id": server_id if server_id is not None else SIM.server_id,
                             "type": "server_agent", "auto_configure": True,
                             "hostname": hostname, "service_status": status}}
    if token is not None:
        body["registration_token"] = token
    return body


def register(token: str, **kw: Any) -> Resp:
    return api_call("POST", "/api/admin/register_component", body=register_body(token, **kw))


def checkin(token: str, status: str = "running", sim: Optional[K.KasmSimulator] = None) -> Resp:
    body = register_body(None, status=status)
    return api_call("POST", "/api/admin/register_component", {"token": token}, body, sim=sim)


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


def unverified(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


class SimTestCase(unittest.TestCase):
    def setUp(self) -> None:
        SIM.reset()


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


class TokenTests(SimTestCase):
    def test_minted_tokens_have_the_deployment_shape(self) -> None:
        table = [
            ("checkin", SIM.mint_checkin_token(), {"server_id"}, [70], K.LIFETIME_CHECKIN),
            ("registration", SIM.mint_registration_token(), {"server_id"}, [70],
             K.LIFETIME_REGISTRATION),
            ("agent", SIM.mint_agent_token(), {"server_id"}, [70], K.LIFETIME_AGENT),
            ("session", SIM.mint_session_token(profile_path="s3://p"),
             {"server_id", "kasm_id", "profile_path"}, [50], K.LIFETIME_SESSION),
            ("file_map", SIM.mint_file_map_token("abc"), {"file_map_id"}, [70],
             K.LIFETIME_FILE_MAP),
            ("user", SIM.mint_user_token("alice"), {"system_username", "username", "user_id"},
             [100], K.LIFETIME_USER),
        ]
        for kind, token, data_claims, auths, lifetime in table:
            with self.subTest(kind=kind):
                self.assertEqual(header_of(token), {"alg": "RS256", "typ": "JWT"})
                claims = SIM.decode(token)
                self.assertEqual(set(claims), data_claims | {"exp", "authorizations"})
                for absent in ("iat", "iss", "aud", "jti", "nbf"):
                    self.assertNotIn(absent, claims)
                self.assertEqual(claims["authorizations"], auths)
                self.assertIsInstance(claims["exp"], int)
                self.assertAlmostEqual(claims["exp"] - time.time(), lifetime, delta=5)
        self.assertEqual(len(unverified(SIM.mint_checkin_token())["server_id"]), 32)

    def test_component_registration_token_is_a_plain_uuid(self) -> None:
        token = SIM.component_uuid_token
        self.assertEqual(str(uuid.UUID(token)), token)
        self.assertEqual(SIM.mint("component_uuid"), token)

    def test_signing_key_has_exponent_3_and_verifies_with_pyjwt(self) -> None:
        with open(SIM.jwt_public_key_file, "rb") as handle:
            pem = handle.read()
        public = serialization.load_pem_public_key(pem)
        self.assertEqual(public.public_numbers().e, 3)  # type: ignore[union-attr]
        self.assertEqual(public.key_size, 2048)  # type: ignore[union-attr]
        token = SIM.mint_user_token("bob")
        self.assertEqual(jwt.decode(token, pem, algorithms=["RS256"])["system_username"], "bob")
        for sign in ("rogue", "none", "hs256-pubkey"):
            with self.subTest(sign=sign):
                forged = SIM.mint_user_token("bob", sign=sign)
                with self.assertRaises(jwt.InvalidTokenError):
                    jwt.decode(forged, pem, algorithms=["RS256"])
        self.assertEqual(header_of(SIM.mint_user_token(sign="none"))["alg"], "none")

    def test_signing_exponent_is_configurable(self) -> None:
        minter = K.TokenMinter(K.generate_rsa_key(65537, 1024))
        pem = minter.public_pem.encode()
        self.assertEqual(serialization.load_pem_public_key(pem).public_numbers().e, 65537)
        token = minter.mint({"server_id": "x"}, [70], lifetime=60)
        self.assertEqual(jwt.decode(token, pem, algorithms=["RS256"])["server_id"], "x")
        self.assertEqual(K.SimConfig().signing_exponent, 3)

    def test_token_check_verdicts(self) -> None:
        now = time.time()
        agent = frozenset({70})
        table = [
            (SIM.mint_agent_token(), agent, 100, K.Verdict.VALID),
            (SIM.mint_agent_token(exp=now - 50), agent, 100, K.Verdict.IN_GRACE),
            (SIM.mint_agent_token(exp=now - 500), agent, 100, K.Verdict.PAST_GRACE),
            (SIM.mint_agent_token(exp=now - 5), agent, None, K.Verdict.EXPIRED),
            (SIM.mint_agent_token(sign="rogue"), agent, 100, K.Verdict.BAD_SIGNATURE),
            (SIM.mint_agent_token(sign="hs256-pubkey"), agent, 100, K.Verdict.BAD_SIGNATURE),
            (SIM.mint_session_token(), agent, 100, K.Verdict.FORBIDDEN),
            ("not.a.jwt", agent, 100, K.Verdict.MALFORMED),
            ("", agent, 100, K.Verdict.MISSING),
        ]
        for token, allowed, grace, verdict in table:
            with self.subTest(verdict=verdict):
                self.assertEqual(SIM.minter.check(token, allowed, grace).verdict, verdict)

    def test_agent_token_lifetime_follows_configuration(self) -> None:
        SIM.set_token_lifetime(10)
        reply = register(SIM.registration_token).json()
        claims = SIM.decode(reply["server_agent"]["agent_jwt_token"])
        self.assertAlmostEqual(claims["exp"] - time.time(), 10, delta=3)


# --------------------------------------------------------------------------------------------
# Registration and check-in
# --------------------------------------------------------------------------------------------


class RegistrationTests(SimTestCase):
    def test_register_with_server_jwt_returns_the_exact_success_shape(self) -> None:
        for name, token in (("static", SIM.registration_token),
                            ("autoscale", SIM.mint_checkin_token())):
            with self.subTest(token=name):
                resp = register(token)
                self.assertEqual(resp.status, 200)
                reply = resp.json()
                self.assertEqual(set(reply), {"operational_status", "server_agent"})
                self.assertEqual(reply["operational_status"], "running")
                agent = reply["server_agent"]
                self.assertEqual(set(agent), {"agent_jwt_token", "public_jwt_cert", "server_cert",
                                              "server_key", "multi_user", "user_sso"})
                self.assertEqual(agent["public_jwt_cert"], SIM.jwt_public_key_pem)
                self.assertIn("BEGIN PUBLIC KEY", agent["public_jwt_cert"])
                claims = SIM.decode(agent["agent_jwt_token"])
                self.assertEqual((claims["server_id"], claims["authorizations"]),
                                 (SIM.server_id, [70]))
                self.assertIs(agent["multi_user"], False)
                self.assertIs(agent["user_sso"], False)
        record = SIM.calls("register_component")[-1]
        self.assertEqual((record.verdict, record.token_source), (K.Verdict.VALID, "body"))
        self.assertEqual(SIM.servers()[SIM.server_id].registered_via, "jwt")

    def test_agent_tls_material_loads_and_uses_exponent_3(self) -> None:
        agent = register(SIM.registration_token).json()["server_agent"]
        cert = x509.load_pem_x509_certificate(agent["server_cert"].encode())
        key = serialization.load_pem_private_key(agent["server_key"].encode(), None)
        self.assertEqual(key.public_key().public_numbers(),  # type: ignore[union-attr]
                         cert.public_key().public_numbers())  # type: ignore[union-attr]
        self.assertEqual(cert.public_key().public_numbers().e, 3)  # type: ignore[union-attr]
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertIn("win-test.example", names.value.get_values_for_type(x509.DNSName))
        # The same server gets the same certificate on check-in.
        again = checkin(agent["agent_jwt_token"]).json()["server_agent"]
        self.assertEqual(again["server_cert"], agent["server_cert"])

    def test_register_with_component_uuid_token(self) -> None:
        wanted = uuid.uuid4()
        resp = register(SIM.component_uuid_token, server_id=str(wanted))
        token = resp.json()["server_agent"]["agent_jwt_token"]
        self.assertEqual(SIM.decode(token)["server_id"], wanted.hex)
        self.assertEqual(SIM.calls("register_component")[-1].verdict, K.Verdict.UUID_OK)
        self.assertEqual(SIM.servers()[wanted.hex].registered_via, "uuid")
        # Without a server id the deployment assigns one (found in the token's claims).
        resp = register(SIM.component_uuid_token, server_id="")
        assigned = SIM.decode(resp.json()["server_agent"]["agent_jwt_token"])["server_id"]
        self.assertRegex(assigned, r"^[0-9a-f]{32}$")

    def test_bad_registration_tokens_get_kasm_error_texts(self) -> None:
        other_server = uuid.uuid4().hex
        table = [
            ("unknown uuid", register_body(str(uuid.uuid4())), K.ERR_ACCESS_DENIED),
            ("garbage", register_body("garbage"), K.ERR_ACCESS_DENIED),
            ("empty", register_body(""), K.ERR_ACCESS_DENIED),
            ("other key", register_body(SIM.mint_registration_token(sign="rogue")),
             K.ERR_ACCESS_DENIED),
            ("alg none", register_body(SIM.mint_registration_token(sign="none")),
             K.ERR_ACCESS_DENIED),
            ("session token", register_body(SIM.mint_session_token()), K.ERR_ACCESS_DENIED),
            ("expired", register_body(SIM.mint_checkin_token(exp=time.time() - 5)),
             K.ERR_REGISTER_EXPIRED),
            ("id mismatch", register_body(SIM.registration_token, server_id=other_server),
             K.ERR_ACCESS_DENIED),
            ("wrong type", {**register_body(SIM.registration_token), "type": "proxy"},
             K.ERR_INVALID_REQUEST),
            ("no component", {"type": "server_agent",
                              "registration_token": SIM.registration_token},
             K.ERR_INVALID_REQUEST),
        ]
        for name, body, text in table:
            with self.subTest(case=name):
                resp = api_call("POST", "/api/admin/register_component", body=body)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.json(), {"error_message": text})
        self.assertEqual(SIM.servers(), {})
        SIM.configure(error_status=403)
        resp = register(str(uuid.uuid4()))
        self.assertEqual((resp.status, resp.json()), (403, {"error_message": "Access Denied!"}))

    def test_checkin_returns_fresh_token_and_updates_flags(self) -> None:
        first = register(SIM.registration_token).json()["server_agent"]["agent_jwt_token"]
        SIM.configure(multi_user=True, user_sso=True)
        for status in ("starting", "running"):
            resp = checkin(first, status)
            agent = resp.json()["server_agent"]
            self.assertIs(agent["multi_user"], True)
            self.assertIs(agent["user_sso"], True)
            self.assertGreaterEqual(SIM.decode(agent["agent_jwt_token"])["exp"],
                                    unverified(first)["exp"])
            self.assertEqual(SIM.servers()[SIM.server_id].service_status, status)
        record = SIM.calls("register_component")[-1]
        self.assertEqual((record.token, record.token_source, record.verdict),
                         (first, "query", K.Verdict.VALID))
        self.assertEqual(SIM.servers()[SIM.server_id].checkins, 2)

    def test_checkin_with_bad_or_expired_token(self) -> None:
        table = [
            (SIM.mint_agent_token(exp=time.time() - 10), K.ERR_REGISTER_EXPIRED,
             K.Verdict.IN_GRACE),
            (SIM.mint_agent_token(sign="rogue"), K.ERR_ACCESS_DENIED, K.Verdict.BAD_SIGNATURE),
            (SIM.mint_user_token(), K.ERR_ACCESS_DENIED, K.Verdict.FORBIDDEN),
        ]
        for token, text, verdict in table:
            with self.subTest(verdict=verdict):
                self.assertEqual(checkin(token).json(), {"error_message": text})
                self.assertEqual(SIM.calls("register_component")[-1].verdict, verdict)
        resp = api_call("POST", "/api/admin/register_component", body=register_body(None))
        self.assertEqual(resp.json(), {"error_message": K.ERR_ACCESS_DENIED})


# --------------------------------------------------------------------------------------------
# Refresh
# --------------------------------------------------------------------------------------------


def refresh(token: str, in_query: bool = True, in_body: bool = True) -> Resp:
    return api_call("POST", "/api/admin/refresh_token", {"token": token} if in_query else None,
                    {"token": token} if in_body else {})


class RefreshTests(SimTestCase):
    def test_refresh_valid_token_from_query_or_body(self) -> None:
        SIM.set_token_lifetime(120)
        token = SIM.mint_agent_token(lifetime=30)
        for in_query, in_body in ((True, True), (True, False), (False, True)):
            with self.subTest(query=in_query, body=in_body):
                reply = refresh(token, in_query, in_body).json()
                claims = SIM.decode(reply["agent_jwt_token"])
                self.assertEqual(claims["server_id"], SIM.server_id)
                self.assertEqual(claims["authorizations"], [70])
                self.assertAlmostEqual(claims["exp"] - time.time(), 120, delta=3)
                self.assertEqual(SIM.calls("refresh_token")[-1].token_source,
                                 "query" if in_query else "body")

    def test_refresh_inside_grace_issues_a_new_token(self) -> None:
        SIM.set_grace(100)
        reply = refresh(SIM.mint_agent_token(exp=time.time() - 50)).json()
        self.assertGreater(SIM.decode(reply["agent_jwt_token"])["exp"], time.time())
        self.assertEqual(SIM.calls("refresh_token")[-1].verdict, K.Verdict.IN_GRACE)

    def test_refresh_past_grace_is_refused_with_the_real_text(self) -> None:
        SIM.set_grace(100)
        resp = refresh(SIM.mint_agent_token(exp=time.time() - 101))
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json(), {
            "error_message": "Token has been expired beyond the configured refresh period"})
        self.assertEqual(SIM.calls("refresh_token")[-1].verdict, K.Verdict.PAST_GRACE)

    def test_refresh_reply_shapes_are_configurable(self) -> None:
        token = SIM.mint_agent_token()
        for key in K.TOKEN_REPLY_KEYS:
            for nested in (False, True):
                with self.subTest(key=key, nested=nested):
                    SIM.configure(refresh_reply_key=key, refresh_reply_nested=nested)
                    reply = refresh(token).json()
                    inner = reply["server_agent"] if nested else reply
                    self.assertEqual(list(reply), ["server_agent"] if nested else [key])
                    self.assertEqual(SIM.decode(inner[key])["server_id"], SIM.server_id)
        with self.assertRaises(ValueError):
            SIM.configure(refresh_reply_key="jwt")

    def test_refresh_refuses_foreign_or_missing_tokens(self) -> None:
        for token in (SIM.mint_agent_token(sign="rogue"), SIM.mint_session_token(), ""):
            with self.subTest(token=token[:12]):
                self.assertEqual(refresh(token).json(), {"error_message": "Access Denied!"})

    def test_token_in_grace_only_serves_for_refresh(self) -> None:
        SIM.set_grace(1000)
        token = SIM.mint_agent_token(exp=time.time() - 10)
        resp = api_call("POST", "/api/set_server_status", {"token": token},
                        {"status": "running", "status_message": "", "status_progress": 100})
        self.assertEqual(resp.json(), {"error_message": "The JWT token has expired"})
        resp = api_call("GET", "/api/admin/get_server_file_mappings", {"token": token})
        self.assertEqual(resp.json(), {"error_message": "The JWT token has expired"})
        self.assertIn("agent_jwt_token", refresh(token).json())


# --------------------------------------------------------------------------------------------
# The other endpoints
# --------------------------------------------------------------------------------------------


class EndpointTests(SimTestCase):
    def test_file_mappings_and_contents(self) -> None:
        script = SIM.add_file_mapping("C:\\Program Files\\Kasm\\scripts\\session_start\\a.ps1",
                                      b"Write-Host hi\r\n", is_executable=True)
        data = SIM.add_file_mapping("%HOMEPATH%\\Desktop\\data.bin", bytes(range(256)))
        SIM.set_storage_mappings({"Drive": {"volume_config": {"driver_opts": {"type": "s3"}},
                                            "mount_config": {"read_only": True}}})
        reply = api_call("GET", "/api/admin/get_server_file_mappings",
                         {"token": SIM.mint_agent_token()}).json()
        self.assertEqual(set(reply), {"file_mappings", "storage_mappings"})
        self.assertEqual(set(reply["file_mappings"]), {script, data})
        self.assertTrue(reply["file_mappings"][script]["is_executable"])
        self.assertTrue(reply["storage_mappings"]["Drive"]["mount_config"]["read_only"])
        for mapping_id, expected in ((script, b"Write-Host hi\r\n"), (data, bytes(range(256)))):
            entry = reply["file_mappings"][mapping_id]
            claims = SIM.decode(entry["jwt_token"])
            self.assertEqual((claims["file_map_id"], claims["authorizations"]), (mapping_id, [70]))
            resp = api_call("GET", "/api/admin/get_file_mapping_contents",
                            {"token": entry["jwt_token"]})
            self.assertEqual((resp.status, resp.body), (200, expected))
            self.assertEqual(resp.content_type, "application/octet-stream")

    def test_file_mapping_contents_rejects_wrong_tokens(self) -> None:
        SIM.add_file_mapping("C:\\x.txt", b"x")
        table = [(SIM.mint_file_map_token("nope"), K.ERR_NO_FILE_MAPPING),
                 (SIM.mint_agent_token(), K.ERR_NO_FILE_MAPPING),
                 (SIM.mint_session_token(), K.ERR_ACCESS_DENIED),
                 (SIM.mint_file_map_token("nope", exp=time.time() - 5), K.ERR_TOKEN_EXPIRED)]
        for token, text in table:
            with self.subTest(text=text):
                resp = api_call("GET", "/api/admin/get_file_mapping_contents", {"token": token})
                self.assertEqual(resp.json(), {"error_message": text})

    def test_session_status_is_recorded_per_session(self) -> None:
        kasm_id = uuid.uuid4().hex
        token = SIM.mint_session_token(kasm_id)
        bodies = [{"kasm_id": kasm_id, "status": "starting", "status_progress": 1},
                  {"kasm_id": kasm_id, "status": "running", "status_progress": 0},
                  {"kasm_id": kasm_id, "status_progress": 0, "destroyed": True}]
        for body in bodies:
            resp = api_call("POST", "/api/set_kasm_session_status", {"token": token}, body)
            self.assertEqual((resp.status, resp.json()), (200, {}))
        self.assertEqual(SIM.session_statuses(kasm_id), bodies)
        other = {"kasm_id": uuid.uuid4().hex, "status": "running", "status_progress": 0}
        resp = api_call("POST", "/api/set_kasm_session_status", {"token": token}, other)
        self.assertEqual(resp.json(), {"error_message": "Access Denied!"})
        resp = api_call("POST", "/api/set_kasm_session_status",
                        {"token": SIM.mint_agent_token()}, bodies[0])
        self.assertEqual(resp.json(), {"error_message": "Access Denied!"})

    def test_session_credential_is_one_time(self) -> None:
        kasm_id = uuid.uuid4().hex
        token = SIM.mint_session_token(kasm_id)
        first = api_call("GET", "/api/set_kasm_session_credential", {"token": token})
        self.assertEqual(first.status, 200)
        self.assertTrue(first.content_type.startswith("text/plain"))
        self.assertEqual(first.body.decode(), SIM.session_credential(kasm_id))
        self.assertGreaterEqual(len(first.body), 12)
        second = api_call("GET", "/api/set_kasm_session_credential", {"token": token})
        self.assertEqual(second.status, 403)
        SIM.set_session_credential(kasm_id, "Fixed-Pass-1")
        third = api_call("GET", "/api/set_kasm_session_credential", {"token": token})
        self.assertEqual((third.status, third.body), (200, b"Fixed-Pass-1"))

    def test_log_endpoints_store_records(self) -> None:
        record = {"levelname": "INFO", "message": "hello", "host": "win1",
                  "application": "kasm_agent", "ingest_date": "2024-01-01T00:00:00Z"}
        session = SIM.mint_session_token()
        resp = api_call("POST", "/api/kasm_session_log", {"token": session}, [record])
        self.assertEqual((resp.status, resp.json()), (200, {}))
        resp = api_call("POST", "/api/component_log",
                        body={"token": SIM.mint_agent_token(), "logs": [record, record]})
        self.assertEqual((resp.status, resp.json()), (200, {}))
        self.assertEqual([(e["endpoint"], len(e["records"])) for e in SIM.logs()],
                         [("kasm_session_log", 1), ("component_log", 2)])
        resp = api_call("POST", "/api/kasm_session_log", {"token": session}, {"not": "a list"})
        self.assertEqual(resp.json(), {"error_message": K.ERR_INVALID_REQUEST})
        resp = api_call("POST", "/api/component_log", body={"logs": [record]})
        self.assertEqual(resp.json(), {"error_message": K.ERR_ACCESS_DENIED})

    def test_log_endpoints_old_deployment_and_faults(self) -> None:
        record = {"levelname": "INFO", "message": "hello", "host": "win1",
                  "application": "kasm_agent", "ingest_date": "2024-01-01T00:00:00Z"}
        agent = SIM.mint_agent_token()
        # a deployment before 1.18 has no component_log; kasm_session_log still works
        SIM.configure(component_log=False)
        resp = api_call("POST", "/api/component_log", body={"token": agent, "logs": [record]})
        self.assertEqual(resp.status, 404)
        resp = api_call("POST", "/api/kasm_session_log", {"token": agent}, [record])
        self.assertEqual((resp.status, resp.json()), (200, {}))
        SIM.configure(component_log=True)
        # faults on the log endpoints: 400 and 500, recorded, nothing stored
        SIM.inject("400", "component_log", count=1)
        resp = api_call("POST", "/api/component_log", body={"token": agent, "logs": [record]})
        self.assertEqual((resp.status, resp.json()), (400, {"error_message": "Bad Request"}))
        SIM.inject("http500", "kasm_session_log", count=1)
        resp = api_call("POST", "/api/kasm_session_log", {"token": agent}, [record])
        self.assertEqual(resp.status, 500)
        self.assertEqual([e["endpoint"] for e in SIM.logs()], ["kasm_session_log"])
        self.assertEqual([c.status for c in SIM.calls("component_log")], [404, 400])
        resp = api_call("POST", "/api/component_log", body={"token": agent, "logs": [record]})
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(SIM.logs()), 2)

    def test_server_status_keepalive(self) -> None:
        body = {"status": "running", "status_message": "ok", "status_progress": 100}
        resp = api_call("POST", "/api/set_server_status", {"token": SIM.mint_agent_token()}, body)
        self.assertEqual((resp.status, resp.json()), (200, {}))
        self.assertEqual(SIM.server_statuses(), [body])

    def test_date_offset_skews_the_date_header(self) -> None:
        def date_of_healthcheck() -> float:
            ctx = ssl.create_default_context(cafile=SIM.ca_file)
            conn = http.client.HTTPSConnection("127.0.0.1", SIM.api_port, context=ctx, timeout=5)
            try:
                conn.request("GET", "/api/__healthcheck")
                response = conn.getresponse()
                response.read()
                return email.utils.parsedate_to_datetime(response.getheader("Date")).timestamp()
            finally:
                conn.close()

        self.assertLess(abs(date_of_healthcheck() - time.time()), 30)
        SIM.configure(date_offset=3600)
        self.assertLess(abs(date_of_healthcheck() - time.time() - 3600), 30)
        SIM.configure(date_offset=-600)
        self.assertLess(abs(date_of_healthcheck() - time.time() + 600), 30)
        with self.assertRaises(ValueError):
            SIM.configure(grace=-1)
        SIM.reset()
        self.assertEqual(SIM.config.date_offset, 0)

    def test_healthcheck_and_unknown_routes(self) -> None:
        resp = api_call("GET", "/api/__healthcheck")
        self.assertEqual((resp.status, resp.json()), (200, {"ok": True}))
        self.assertEqual(api_call("GET", "/api/nope").status, 404)
        self.assertEqual(api_call("POST", "/api/__healthcheck", body={}).status, 405)
        self.assertEqual(SIM.calls("__healthcheck")[0].verdict, K.Verdict.NOT_REQUIRED)


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


class FaultTests(SimTestCase):
    def test_http403_for_the_next_n_calls_only(self) -> None:
        SIM.inject("http403", "refresh_token", count=2)
        token = SIM.mint_agent_token()
        statuses = [refresh(token).status for _ in range(3)]
        self.assertEqual(statuses, [403, 403, 200])
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)
        self.assertEqual([c.fault for c in SIM.calls("refresh_token")],
                         ["http403", "http403", None])
        self.assertEqual(SIM.faults(), [])

    def test_http500_and_error200_messages(self) -> None:
        SIM.inject("500", count=1)
        resp = api_call("GET", "/api/__healthcheck")
        self.assertEqual((resp.status, resp.body), (500, b"Internal Server Error"))
        SIM.inject("error200", "register_component", count=1, message="The JWT token has expired")
        resp = register(SIM.registration_token)
        self.assertEqual((resp.status, resp.json()),
                         (200, {"error_message": "The JWT token has expired"}))
        self.assertEqual(register(SIM.registration_token).json()["operational_status"], "running")

    def test_malformed_json_body(self) -> None:
        SIM.inject("malformed", "register_component", count=1)
        resp = register(SIM.registration_token)
        self.assertEqual(resp.status, 200)
        with self.assertRaises(ValueError):
            json.loads(resp.body)

    def test_slow_delays_the_answer(self) -> None:
        # A wide margin: the undelayed call must not be near the delay even on a loaded machine.
        SIM.inject("slow", "__healthcheck", count=1, delay=2.0)
        started = time.monotonic()
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 1.95)
        started = time.monotonic()
        api_call("GET", "/api/__healthcheck")
        self.assertLess(time.monotonic() - started, 1.9)

    def test_expired_token_in_the_reply(self) -> None:
        SIM.inject("expired_token", "register_component", count=1, age=30)
        token = register(SIM.registration_token).json()["server_agent"]["agent_jwt_token"]
        claims = jwt.decode(token, SIM.jwt_public_key_pem, algorithms=["RS256"],
                            options={"verify_exp": False})
        self.assertAlmostEqual(claims["exp"], time.time() - 30, delta=3)
        with self.assertRaises(jwt.ExpiredSignatureError):
            SIM.decode(token)

    def test_wrongly_signed_token_in_the_reply(self) -> None:
        SIM.inject("bad_signature", "refresh_token", count=1)
        token = refresh(SIM.mint_agent_token()).json()["agent_jwt_token"]
        with self.assertRaises(jwt.InvalidSignatureError):
            SIM.decode(token)
        self.assertEqual(unverified(token)["server_id"], SIM.server_id)
        SIM.decode(refresh(SIM.mint_agent_token()).json()["agent_jwt_token"])

    def test_down_on_one_endpoint_drops_the_connection(self) -> None:
        SIM.inject("down", "refresh_token", count=1)
        with self.assertRaises((OSError, http.client.HTTPException)):
            refresh(SIM.mint_agent_token())
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)
        self.assertEqual(refresh(SIM.mint_agent_token()).status, 200)
        record = SIM.calls("refresh_token")[0]
        self.assertEqual((record.fault, record.status), ("down", None))

    def test_down_for_next_connection(self) -> None:
        SIM.inject("down", count=1)
        with self.assertRaises((OSError, http.client.HTTPException)):
            api_call("GET", "/api/__healthcheck")
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)
        self.assertEqual(SIM.calls()[0].fault, "down")

    def test_down_refuses_connections_until_cleared(self) -> None:
        port = SIM.api_port
        SIM.inject("down")
        with self.assertRaises(ConnectionRefusedError):
            api_call("GET", "/api/__healthcheck")
        self.assertEqual([f.kind for f in SIM.faults()], ["down"])
        SIM.clear_faults()
        self.assertEqual(SIM.api_port, port)
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)

    def test_down_for_some_seconds(self) -> None:
        SIM.inject("down", seconds=0.5)
        with self.assertRaises(ConnectionRefusedError):
            api_call("GET", "/api/__healthcheck")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        else:
            self.fail("the listener did not come back")

    def test_tls_with_unknown_ca(self) -> None:
        SIM.inject("tls_unknown_ca", count=2)
        with self.assertRaises(ssl.SSLCertVerificationError):
            api_call("GET", "/api/__healthcheck")
        # A client that does not verify (Kasm's default) still gets through.
        self.assertEqual(api_call("GET", "/api/__healthcheck", verify=False).status, 200)
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)
        self.assertEqual([c.fault for c in SIM.calls() if c.fault], ["tls_unknown_ca"] * 2)

    def test_endpoint_faults_win_over_global_ones(self) -> None:
        SIM.inject("http500", count=1)
        SIM.inject("http403", "__healthcheck", count=1)
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 403)
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 500)
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 200)

    def test_fault_validation(self) -> None:
        bad = [dict(kind="explode"), dict(kind="http403", endpoint="nope"),
               dict(kind="tls_unknown_ca", endpoint="refresh_token"),
               dict(kind="http403", count=0)]
        for kwargs in bad:
            with self.subTest(**kwargs), self.assertRaises(ValueError):
                SIM.inject(**kwargs)
        self.assertEqual(SIM.faults(), [])
        fault = SIM.inject("bad_json", "/api/admin/refresh_token")
        self.assertEqual((fault.kind, fault.endpoint, fault.count),
                         ("malformed", "/api/admin/refresh_token", None))


# --------------------------------------------------------------------------------------------
# Recording and redaction
# --------------------------------------------------------------------------------------------


class RecordingTests(SimTestCase):
    def test_every_call_is_recorded(self) -> None:
        token = SIM.mint_agent_token()
        before = time.time()
        api_call("POST", "/api/set_server_status", {"token": token, "x": "1"},
                 {"status": "running", "status_message": "m", "status_progress": 5})
        api_call("GET", "/api/__healthcheck")
        calls = SIM.calls()
        self.assertEqual(len(calls), 2)
        first = calls[0]
        self.assertEqual((first.method, first.path, first.query),
                         ("POST", "/api/set_server_status", {"token": token, "x": "1"}))
        self.assertEqual(first.body["status_progress"], 5)
        self.assertEqual((first.token, first.token_source, first.verdict),
                         (token, "query", K.Verdict.VALID))
        self.assertEqual(first.claims["server_id"], SIM.server_id)
        self.assertEqual((first.status, first.response, first.error_message), (200, {}, None))
        self.assertGreaterEqual(first.time, before)
        self.assertEqual([c.path for c in SIM.calls("__healthcheck")], ["/api/__healthcheck"])
        self.assertEqual([c.seq for c in SIM.calls(since=first.seq)], [calls[1].seq])
        json.dumps([c.to_json() for c in calls])  # JSON-ready for the control API

    def test_log_lines_redact_tokens_and_passwords(self) -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        old_level = K.LOG.level
        K.LOG.addHandler(handler)
        K.LOG.setLevel(logging.DEBUG)
        try:
            token = register(SIM.registration_token).json()["server_agent"]["agent_jwt_token"]
            refresh(token)
            session = SIM.mint_session_token()
            password = api_call("GET", "/api/set_kasm_session_credential",
                                {"token": session}).body.decode()
            register(SIM.component_uuid_token)
        finally:
            K.LOG.removeHandler(handler)
            K.LOG.setLevel(old_level)
        text = stream.getvalue()
        self.assertIn("/api/admin/refresh_token?token=<redacted>", text)
        for secret in (token, SIM.registration_token, session, password,
                       SIM.component_uuid_token, token.split(".")[2]):
            self.assertNotIn(secret, text)

    def test_redact(self) -> None:
        jwt_text = SIM.mint_user_token()
        key = K.private_key_pem(K.generate_rsa_key(65537, 1024)).decode().strip()
        table = [
            (f"GET /x?token={jwt_text}&a=1", "GET /x?token=<redacted>&a=1"),
            ("POST /x?registration_token=abcd-1234", "POST /x?registration_token=<redacted>"),
            (f"bearer {jwt_text} end", "bearer <redacted> end"),
            ('{"agent_jwt_token": "abc", "ok": 1}', '{"agent_jwt_token": "<redacted>", "ok": 1}'),
            ('{"password": "hunter2"}', '{"password": "<redacted>"}'),
            (f"key {key} end", "key <redacted> end"),
            ("nothing secret here", "nothing secret here"),
        ]
        for raw, expected in table:
            with self.subTest(raw=raw[:30]):
                self.assertEqual(K.redact(raw), expected)


# --------------------------------------------------------------------------------------------
# Control API, CLI, other modes
# --------------------------------------------------------------------------------------------


class ControlApiTests(SimTestCase):
    def test_control_api_round_trip(self) -> None:
        control = K.ControlClient(SIM.control_url or "")
        token = control.mint("agent", {"server_id": "ab" * 16}, lifetime=60)
        self.assertEqual(SIM.decode(token)["server_id"], "ab" * 16)
        session = control.call("POST", "/control/mint", {"kind": "session"})
        self.assertEqual(session["password"], SIM.session_credential(session["claims"]["kasm_id"]))
        self.assertEqual(control.mint("component_uuid"), SIM.component_uuid_token)
        control.inject("http403", "__healthcheck", 1)
        self.assertEqual(api_call("GET", "/api/__healthcheck").status, 403)
        self.assertEqual(control.configure(grace=7, user_sso=True)["grace"], 7)
        self.assertEqual((SIM.config.grace, SIM.config.user_sso), (7, True))
        calls = control.calls("__healthcheck")
        self.assertEqual([(c["status"], c["fault"]) for c in calls], [(403, "http403")])
        map_id = control.add_file_mapping("C:\\f.txt", b"\x00\x01")
        self.assertEqual(SIM.api.state.file_mappings[map_id].content, b"\x00\x01")
        state = control.state()
        self.assertEqual((state["api_port"], state["server_id"]), (SIM.api_port, SIM.server_id))
        control.reset()
        self.assertEqual((control.calls(), SIM.config.grace), ([], K.DEFAULT_GRACE))

    def test_control_api_rejects_bad_requests(self) -> None:
        control = K.ControlClient(SIM.control_url or "")
        bad = [("POST", "/control/mint", {"kind": "bogus"}),
               ("POST", "/control/fault", {"kind": "explode"}),
               ("POST", "/control/config", {"host": "0.0.0.0"}),
               ("POST", "/control/config", {"grace": "soon"}),
               ("GET", "/control/nothing", None)]
        for method, path, payload in bad:
            with self.subTest(path=path, payload=payload):
                with self.assertRaises(RuntimeError):
                    control.call(method, path, payload)


class ModeTests(SimTestCase):
    def test_cli_serve_writes_state_and_stops_on_sigterm(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            keys_dir, state_dir = os.path.join(tmp, "keys"), os.path.join(tmp, "state")
            assert SIM.keys is not None
            SIM.keys.save(keys_dir)  # reuse keys: no key generation in the child
            proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "kasm_sim.py"), "serve", "--port", "0",
                 "--control-port", "0", "--state-dir", state_dir, "--keys-dir", keys_dir],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                info = K.read_sim_json(state_dir, timeout=20)
                for key in ("api_port", "control_port", "ca_file", "jwt_public_key_pem",
                            "registration_token", "component_uuid_token", "pid"):
                    self.assertIn(key, info)
                self.assertEqual(info["pid"], proc.pid)
                ctx = ssl.create_default_context(cafile=info["ca_file"])
                conn = http.client.HTTPSConnection("127.0.0.1", info["api_port"], context=ctx,
                                                   timeout=5)
                conn.request("GET", "/api/__healthcheck")
                self.assertEqual(json.loads(conn.getresponse().read()), {"ok": True})
                conn.close()
                with open(info["jwt_public_key_pem"]) as handle:
                    pem = handle.read()
                claims = jwt.decode(info["registration_token"], pem, algorithms=["RS256"])
                self.assertEqual(claims["server_id"], info["server_id"])
                control = K.ControlClient(info["control_url"])
                self.assertEqual(len(control.calls("__healthcheck")), 1)
            finally:
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=15)
            self.assertEqual(proc.returncode, 0, err)
            self.assertIn("kasm_sim serving https://127.0.0.1:", out)
            self.assertNotIn(info["registration_token"], out + err)
            self.assertFalse(os.path.exists(os.path.join(state_dir, "sim.json")))

    def test_plain_http_mode(self) -> None:
        with K.KasmSimulator(K.SimConfig(tls=False), keys=SIM.keys) as plain:
            self.assertTrue(plain.api_url.startswith("http://"))
            self.assertEqual(api_call("GET", "/api/__healthcheck", sim=plain).json(), {"ok": True})
            self.assertIsNone(plain.info()["ca_file"])
            with self.assertRaises(ValueError):
                plain.inject("tls_unknown_ca")

    def test_two_instances_sharing_keys_act_as_one_deployment(self) -> None:
        token = register(SIM.registration_token).json()["server_agent"]["agent_jwt_token"]
        with K.KasmSimulator(K.SimConfig(server_id=SIM.server_id), keys=SIM.keys) as second:
            self.assertNotEqual(second.api_port, SIM.api_port)
            reply = checkin(token, sim=second).json()
            self.assertEqual(SIM.decode(reply["server_agent"]["agent_jwt_token"])["server_id"],
                             SIM.server_id)
            self.assertEqual(second.servers()[SIM.server_id].registered_via, "checkin")


# --------------------------------------------------------------------------------------------
# agent-call against a fake agent
# --------------------------------------------------------------------------------------------


def tiny_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


class FakeAgentHandler(http.server.BaseHTTPRequestHandler):
    """Just enough of the agent's API (section 5) to check what agent-call sends."""

    server: "FakeAgent"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else query.get("token", "")
        try:
            claims = jwt.decode(token, SIM.jwt_public_key_pem, algorithms=["RS256"])
        except jwt.InvalidTokenError:
            claims = None
        self.server.requests.append({"method": self.command, "path": parts.path,
                                     "query": query, "claims": claims, "body": body,
                                     "headers": dict(self.headers)})
        if claims is None:
            return self._reply(401, b'{"error": "Invalid token"}', "application/json")
        self._route(parts.path, query, body)

    def _route(self, path: str, query: dict[str, str], body: bytes) -> None:
        files = self.server.files
        if path == "/__healthcheck":
            return self._reply(200, b'{"cpu_usage": 1, "memory_usage": 2, "disk_usage": 3}',
                               "application/json")
        if path in ("/session_start", "/session_end"):
            return self._reply(200, b"ok")
        if path == "/upload":
            return self._upload(body)
        if path == "/Downloads/Downloads/":
            items = "".join(f'<li><a href="{n}">{n}</a></li>' for n in sorted(files))
            page = (f"<html><title>Directory Listing</title><body><h2>/</h2><hr/><ul>{items}"
                    "</ul></body></html>")
            return self._reply(200, page.encode(), "text/html")
        if path.startswith("/Downloads/Downloads/"):
            name = unquote(path[len("/Downloads/Downloads/"):])
            if name in files:
                return self._reply(200, files[name], "application/octet-stream")
            return self._reply(404, b'{"error": "not found"}', "application/json")
        if path == "/screenshot":
            width = int(query.get("width", 300))
            return self._reply(200, tiny_png(width, width * 9 // 16), "image/png")
        return self._reply(404, b'{"error": "no route"}', "application/json")

    def _upload(self, body: bytes) -> None:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        form: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            form[name] = part.get_payload(decode=True)
            if name == "file":
                form["filename"] = part.get_filename()
        self.server.chunks.append({k: (v.decode() if k.startswith("dz") else v)
                                   for k, v in form.items()})
        partial = self.server.partial.setdefault(form["dzuuid"].decode(), bytearray())
        partial += form["file"]
        if int(form["dzchunkindex"]) + 1 == int(form["dztotalchunkcount"]):
            self.server.files[form["filename"]] = bytes(partial)
        self._reply(200, b"uploaded Chunk")

    do_GET = do_POST = _dispatch


class FakeAgent(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: str):
        super().__init__(("127.0.0.1", 0), FakeAgentHandler)
        self.requests: list[dict[str, Any]] = []
        self.chunks: list[dict[str, Any]] = []
        self.partial: dict[str, bytearray] = {}
        self.files: dict[str, bytes] = {"report one.txt": b"report body\n"}
        cert, key = K.issue_self_signed(["127.0.0.1"], exponent=3)
        cert_file, key_file = (os.path.join(directory, n) for n in ("agent.pem", "agent.key"))
        K.write_file(cert_file, cert.encode())
        K.write_file(key_file, key.encode(), private=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server_address[1]}"


class AgentCallTests(SimTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.agent = FakeAgent(cls.tmp.name)
        cls.thread = threading.Thread(target=cls.agent.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.agent.shutdown()
        cls.agent.server_close()
        cls.tmp.cleanup()

    def setUp(self) -> None:
        super().setUp()
        self.agent.requests.clear()
        self.agent.chunks.clear()

    def run_cli(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        argv = ["agent-call", "--agent", self.agent.url, "--state-dir", SIM.state_dir, *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = K.main(argv)
        return code, out.getvalue(), err.getvalue()

    def test_session_start_and_end(self) -> None:
        code, out, _ = self.run_cli("session_start", "--username", "alice",
                                    "--create-local-account", "--file-mapping", "C:\\a.txt=hello")
        self.assertEqual(code, 0, out)
        self.assertIn("session_start: HTTP 200", out)
        start = self.agent.requests[-1]
        payload = json.loads(start["body"])
        self.assertEqual(set(payload), {"username", "kasm_id", "user_id", "create_local_account",
                                        "jwt", "file_mappings", "storage_mappings",
                                        "user_groups"})
        self.assertEqual((payload["username"], payload["create_local_account"]), ("alice", True))
        self.assertEqual(start["claims"]["authorizations"], [50])
        self.assertEqual(start["claims"]["kasm_id"], payload["kasm_id"])
        self.assertEqual(start["claims"]["server_id"], SIM.server_id)
        self.assertEqual(SIM.decode(payload["jwt"])["kasm_id"], payload["kasm_id"])
        (mapping,) = payload["file_mappings"].values()
        self.assertEqual(mapping["destination"], "C:\\a.txt")
        resp = api_call("GET", "/api/admin/get_file_mapping_contents",
                        {"token": mapping["jwt_token"]})
        self.assertEqual(resp.body, b"hello")
        self.assertEqual(self.run_cli("session_end", "--username", "alice",
                                      "--file-mapping", "C:\\a.txt=hello")[0], 0)
        end = json.loads(self.agent.requests[-1]["body"])
        self.assertEqual(self.agent.requests[-1]["path"], "/session_end")
        self.assertEqual(end["kasm_id"], payload["kasm_id"])  # stable across invocations
        self.assertIn("attached_object", next(iter(end["file_mappings"].values())))

    def test_upload_is_dropzone_chunked(self) -> None:
        data = os.urandom(2500)
        path = os.path.join(self.tmp.name, "up load.bin")
        with open(path, "wb") as handle:
            handle.write(data)
        code, out, _ = self.run_cli("upload", path, "--chunk-size", "1000", "--username", "bob")
        self.assertEqual(code, 0, out)
        self.assertEqual(out.count("HTTP 200"), 3)
        self.assertEqual(self.agent.files["up load.bin"], data)
        chunks = self.agent.chunks
        self.assertEqual([c["dzchunkindex"] for c in chunks], ["0", "1", "2"])
        self.assertEqual([c["dzchunkbyteoffset"] for c in chunks], ["0", "1000", "2000"])
        self.assertEqual({(c["dztotalfilesize"], c["dzchunksize"], c["dztotalchunkcount"])
                          for c in chunks}, {("2500", "1000", "3")})
        self.assertEqual(len({c["dzuuid"] for c in chunks}), 1)
        claims = self.agent.requests[0]["claims"]
        self.assertEqual((claims["system_username"], claims["authorizations"]), ("bob", [100]))
        self.assertEqual(set(claims), {"system_username", "username", "user_id", "exp",
                                       "authorizations"})

    def test_list_download_and_screenshot(self) -> None:
        code, out, _ = self.run_cli("list")
        self.assertEqual(code, 0)
        self.assertIn("  report one.txt", out)
        target = os.path.join(self.tmp.name, "got.txt")
        code, out, _ = self.run_cli("download", "report one.txt", "-o", target)
        self.assertEqual(code, 0, out)
        with open(target, "rb") as handle:
            self.assertEqual(handle.read(), b"report body\n")
        self.assertEqual(self.agent.requests[-1]["path"], "/Downloads/Downloads/report%20one.txt")
        shot = os.path.join(self.tmp.name, "shot.png")
        code, out, _ = self.run_cli("screenshot", "--width", "1000", "-o", shot)
        self.assertEqual(code, 0, out)
        self.assertIn("PNG 1000x562", out)
        self.assertEqual(self.agent.requests[-1]["query"], {"width": "1000"})
        self.assertEqual(self.agent.requests[-1]["method"], "POST")

    def test_failures_give_a_nonzero_exit(self) -> None:
        code, out, _ = self.run_cli("download", "missing.txt", "-o",
                                    os.path.join(self.tmp.name, "m"))
        self.assertEqual(code, 1)
        self.assertIn("HTTP 404", out)
        code, _, err = self.run_cli("upload")
        self.assertEqual(code, 2)
        self.assertIn("needs a FILE", err)

    def test_healthcheck_as_a_script_with_query_token(self) -> None:
        proc = subprocess.run(
            [sys.executable, os.path.join(HERE, "kasm_sim.py"), "agent-call", "--agent",
             self.agent.url, "--control", SIM.control_url or "", "--token-in-query",
             "healthcheck"], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("healthcheck: HTTP 200", proc.stdout)
        request = self.agent.requests[-1]
        self.assertNotIn("Authorization", request["headers"])
        self.assertEqual(request["claims"]["server_id"], SIM.server_id)
        self.assertNotIn(request["query"]["token"], proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
