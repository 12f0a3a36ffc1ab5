#!/usr/bin/python3
"""Kasm Workspaces deployment simulator, for the integration tests and the demo.

Owns: a stand-in for the deployment API the agent calls (KASM_INTERFACE.md section 6), the
RS256 tokens a deployment mints (section 4), the refresh and grace rules (section 7), a record
of every call, fault injection, a control API for out-of-process tests, and a client that plays
the deployment calling the agent (section 5).

Standard library + PyJWT + cryptography (Debian packages) only: run it with /usr/bin/python3.
In-process use: `KasmSimulator(...).start()`.  Command line: `kasm_sim.py serve ...` and
`kasm_sim.py agent-call ...`.  Documentation: docs/simulator.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import html
import http.client
import http.server
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, ClassVar, Optional
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOG = logging.getLogger("kasm_sim")

# --------------------------------------------------------------------------------------------
# Constants (KASM_INTERFACE.md sections 4, 6, 7)
# --------------------------------------------------------------------------------------------

AUTH_SESSION = 50
AUTH_AGENT = 60
AUTH_SERVER_AGENT = 70
AUTH_USER = 100

ERR_ACCESS_DENIED = "Access Denied!"
ERR_TOKEN_EXPIRED = "The JWT token has expired"
ERR_REGISTER_EXPIRED = "Expired JWT utilized on register_component"
ERR_PAST_GRACE = "Token has been expired beyond the configured refresh period"
ERR_INVALID_REQUEST = "Invalid request"  # [inferred] text
ERR_NO_FILE_MAPPING = "File mapping not found"  # [inferred] text

LIFETIME_CHECKIN = 4 * 3600
LIFETIME_REGISTRATION = 10 * 365 * 86400
LIFETIME_AGENT = 259200  # api_token_lifespan_seconds default
LIFETIME_SESSION = 20 * 60
LIFETIME_FILE_MAP = 15 * 60
LIFETIME_USER = 7 * 86400  # "long" [inferred]
DEFAULT_GRACE = 3600  # [inferred]

REDACTED = "<redacted>"
TOKEN_REPLY_KEYS = ("agent_jwt_token", "auth_token", "token")
TOKEN_KEYS_IN_REPLIES = TOKEN_REPLY_KEYS + ("jwt_token",)
SIGN_MODES = ("rs256", "rogue", "none", "hs256-pubkey")


class Verdict:
    """What the simulator concluded about the token of a call (recorded per call)."""

    NOT_REQUIRED = "not_required"
    MISSING = "missing"
    VALID = "valid"
    EXPIRED = "expired"  # registration tokens: no grace applies
    IN_GRACE = "expired_in_grace"
    PAST_GRACE = "expired_past_grace"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    FORBIDDEN = "forbidden"  # valid signature, wrong authorizations
    UUID_OK = "uuid_token"
    UUID_UNKNOWN = "unknown_uuid"
    EXPIRED_ALL = (EXPIRED, IN_GRACE, PAST_GRACE)


# --------------------------------------------------------------------------------------------
# Redaction: nothing this program logs or prints carries a token, password or private key.
# --------------------------------------------------------------------------------------------

_JWT_RE = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
_PEM_KEY_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                         re.S)
_SECRET_PARAM_RE = re.compile(r"(?i)\b([a-z_]*token|jwt|password)=([^&\s\"']+)")
_SECRET_JSON_RE = re.compile(r'(?i)("(?:[a-z_]*token|jwt|password|server_key)"\s*:\s*)"[^"]*"')


def redact(text: str) -> str:
    """Replace JWTs, token/password parameters and private keys in text with <redacted>."""
    text = _PEM_KEY_RE.sub(REDACTED, text)
    text = _JWT_RE.sub(REDACTED, text)
    text = _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _SECRET_JSON_RE.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)


# --------------------------------------------------------------------------------------------
# Keys and certificates
# --------------------------------------------------------------------------------------------


def generate_rsa_key(exponent: int = 65537, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=exponent, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey, traditional: bool = False) -> bytes:
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if traditional
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def public_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=not cert_sign, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))


def make_ca_cert(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = _name(common_name)
    builder = (_builder(name, name, key, 3650)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True))
    return builder.sign(key, hashes.SHA256())


def make_leaf_cert(key: rsa.RSAPrivateKey, hosts: list[str],
                   issuer_key: Optional[rsa.RSAPrivateKey] = None,
                   issuer_cert: Optional[x509.Certificate] = None) -> x509.Certificate:
    """A server certificate for hosts; self-signed unless an issuer is given."""
    subject = _name(hosts[0])
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    builder = (_builder(subject, issuer, key, 825)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(cert_sign=False), critical=True)
               .add_extension(_san(hosts), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                              critical=False))
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def issue_self_signed(hosts: list[str], exponent: int = 3,
                      key: Optional[rsa.RSAPrivateKey] = None) -> tuple[str, str]:
    """(certificate PEM, private key PEM) for an agent's HTTPS listener, like Kasm issues."""
    key = key or generate_rsa_key(exponent)
    cert = make_leaf_cert(key, hosts)
    return cert_pem(cert).decode(), private_key_pem(key, traditional=True).decode()


def write_file(path: str, data: bytes, private: bool = False) -> None:
    """Write atomically; private files get mode 0600."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


@dataclass
class TlsIdentity:
    """A CA and a server certificate it signed."""

    ca_key: rsa.RSAPrivateKey
    ca_cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, hosts: list[str], ca_name: str) -> "TlsIdentity":
        ca_key = generate_rsa_key()
        ca_cert = make_ca_cert(ca_key, ca_name)
        key = generate_rsa_key()
        return cls(ca_key, ca_cert, key, make_leaf_cert(key, hosts, ca_key, ca_cert))

    def write(self, directory: str, prefix: str) -> tuple[str, str, str]:
        """Write (ca file, certificate file, key file) and return their paths."""
        paths = tuple(os.path.join(directory, f"{prefix}{n}") for n in
                      ("ca.pem", "server-cert.pem", "server-key.pem"))
        write_file(paths[0], cert_pem(self.ca_cert))
        write_file(paths[1], cert_pem(self.cert))
        write_file(paths[2], private_key_pem(self.key), private=True)
        return paths  # type: ignore[return-value]

    def server_context(self, directory: str, prefix: str) -> ssl.SSLContext:
        _, cert_file, key_file = self.write(directory, prefix)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        return ctx


@dataclass
class KeyMaterial:
    """Everything long-lived a deployment owns: its TLS identity and its JWT signing key.
    Two simulators sharing one KeyMaterial act as two API servers of one deployment."""

    tls: TlsIdentity
    signing_key: rsa.RSAPrivateKey

    FILES: ClassVar[dict[str, str]] = {"ca_key": "ca-key.pem", "ca_cert": "ca.pem",
                                       "key": "server-key.pem", "cert": "server-cert.pem",
                                       "signing_key": "jwt-private.pem"}

    @classmethod
    def generate(cls, hosts: list[str], signing_exponent: int = 3) -> "KeyMaterial":
        return cls(TlsIdentity.generate(hosts, "kasm-sim CA"), generate_rsa_key(signing_exponent))

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        f = self.FILES
        write_file(os.path.join(directory, f["ca_key"]), private_key_pem(self.tls.ca_key), True)
        write_file(os.path.join(directory, f["ca_cert"]), cert_pem(self.tls.ca_cert))
        write_file(os.path.join(directory, f["key"]), private_key_pem(self.tls.key), True)
        write_file(os.path.join(directory, f["cert"]), cert_pem(self.tls.cert))
        write_file(os.path.join(directory, f["signing_key"]),
                   private_key_pem(self.signing_key), True)

    @classmethod
    def load(cls, directory: str) -> Optional["KeyMaterial"]:
        paths = {k: os.path.join(directory, v) for k, v in cls.FILES.items()}
        if not all(os.path.exists(p) for p in paths.values()):
            return None

        def key(name: str) -> rsa.RSAPrivateKey:
            with open(paths[name], "rb") as handle:
                loaded = serialization.load_pem_private_key(handle.read(), None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            return loaded

        def cert(name: str) -> x509.Certificate:
            with open(paths[name], "rb") as handle:
                return x509.load_pem_x509_certificate(handle.read())

        tls = TlsIdentity(key("ca_key"), cert("ca_cert"), key("key"), cert("cert"))
        return cls(tls, key("signing_key"))

    @classmethod
    def load_or_generate(cls, directory: str, hosts: list[str],
                         signing_exponent: int = 3) -> "KeyMaterial":
        loaded = cls.load(directory)
        if loaded is not None:
            return loaded
        generated = cls.generate(hosts, signing_exponent)
        generated.save(directory)
        return generated


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


@dataclass
class TokenCheck:
    verdict: str
    claims: Optional[dict[str, Any]] = None
    detail: str = ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified_claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


class TokenMinter:
    """Mints tokens the way the deployment does: RS256, payload = data + exp + authorizations,
    no iat/iss/aud/jti.  Also forges bad ones for tests (another key, alg none, HS256 with the
    public key as secret)."""

    def __init__(self, signing_key: rsa.RSAPrivateKey):
        self._key = signing_key
        self._public = signing_key.public_key()
        self.public_pem = public_key_pem(signing_key).decode()
        self._rogue: Optional[rsa.RSAPrivateKey] = None
        self._lock = threading.Lock()

    def _rogue_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._rogue is None:
                self._rogue = generate_rsa_key()
            return self._rogue

    def mint(self, claims: dict[str, Any], authorizations: list[int], *,
             lifetime: Optional[float] = None, exp: Optional[float] = None,
             sign: str = "rs256") -> str:
        if exp is None:
            exp = time.time() + (lifetime if lifetime is not None else LIFETIME_AGENT)
        payload = {k: v for k, v in claims.items() if k not in ("exp", "authorizations")}
        payload["exp"] = int(exp)
        payload["authorizations"] = [int(a) for a in authorizations]
        if sign == "rs256":
            return jwt.encode(payload, self._key, algorithm="RS256")
        if sign == "rogue":
            return jwt.encode(payload, self._rogue_key(), algorithm="RS256")
        if sign in ("none", "hs256-pubkey"):
            return self._forge(payload, sign)
        raise ValueError(f"unknown signing mode {sign!r}; use one of {', '.join(SIGN_MODES)}")

    def _forge(self, payload: dict[str, Any], mode: str) -> str:
        alg = "none" if mode == "none" else "HS256"
        header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        signing_input = f"{header}.{body}"
        if mode == "none":
            return signing_input + "."
        mac = hmac.new(self.public_pem.encode(), signing_input.encode(), hashlib.sha256)
        return f"{signing_input}.{_b64url(mac.digest())}"

    def reissue(self, token: str, *, exp: Optional[float] = None, sign: str = "rs256") -> str:
        """The same claims under a new exp and/or signature (for reply faults)."""
        claims = unverified_claims(token)
        return self.mint(claims, claims.get("authorizations", []),
                         exp=exp if exp is not None else claims.get("exp"), sign=sign)

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims (signature and exp), as a relying party would check them."""
        return jwt.decode(token, self._public, algorithms=["RS256"],
                          options={"require": ["exp"]})

    def check(self, token: Any, allowed: frozenset[int], grace: Optional[float]) -> TokenCheck:
        """Signature, then authorizations, then expiry (with grace; None = no grace)."""
        if not isinstance(token, str) or not token:
            return TokenCheck(Verdict.MISSING)
        try:
            claims = jwt.decode(token, self._public, algorithms=["RS256"],
                                options={"verify_exp": False, "require": ["exp"]})
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
            return TokenCheck(Verdict.BAD_SIGNATURE, detail=str(exc))
        except jwt.InvalidTokenError as exc:
            return TokenCheck(Verdict.MALFORMED, detail=str(exc))
        auths = claims.get("authorizations")
        if not isinstance(auths, list) or not allowed.intersection(
                a for a in auths if isinstance(a, int)):
            return TokenCheck(Verdict.FORBIDDEN, claims, "authorizations do not allow this call")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            return TokenCheck(Verdict.MALFORMED, claims, "exp is not a number")
        now = time.time()
        if now < exp:
            return TokenCheck(Verdict.VALID, claims)
        if grace is None:
            return TokenCheck(Verdict.EXPIRED, claims)
        if now < exp + grace:
            return TokenCheck(Verdict.IN_GRACE, claims)
        return TokenCheck(Verdict.PAST_GRACE, claims)


def norm_id(value: Any) -> str:
    """Kasm ids are 32 hex digits; accept the dashed UUID form too."""
    return str(value or "").replace("-", "").strip().lower()


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def random_password() -> str:
    """A password that satisfies Windows' default complexity rules."""
    return f"{secrets.token_urlsafe(15)}aA1!"


# --------------------------------------------------------------------------------------------
# Configuration, deployment state, requests and replies
# --------------------------------------------------------------------------------------------


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    tls: bool = True
    server_id: str = ""  # default server; generated when empty
    signing_exponent: int = 3  # public exponent of the JWT signing key (Kasm issues e=3)
    agent_key_exponent: int = 3  # public exponent of server_key handed to agents
    token_lifetime: int = LIFETIME_AGENT  # api_token_lifespan_seconds
    grace: int = DEFAULT_GRACE  # refresh leeway after exp
    multi_user: bool = False
    user_sso: bool = False
    refresh_reply_key: str = "agent_jwt_token"  # or auth_token / token
    refresh_reply_nested: bool = False  # put it under "server_agent"
    error_status: int = 200  # HTTP status of {"error_message": ...} replies
    date_offset: int = 0  # seconds added to the API's HTTP Date header (a skewed clock)
    component_log: bool = True  # False: a deployment before 1.18 (component_log answers 404)

    RUNTIME_KEYS: ClassVar[tuple[str, ...]] = (
        "token_lifetime", "grace", "multi_user", "user_sso", "refresh_reply_key",
        "refresh_reply_nested", "error_status", "date_offset", "component_log")
    SIGNED_KEYS: ClassVar[tuple[str, ...]] = ("date_offset",)  # may be negative

    def update(self, changes: dict[str, Any]) -> None:
        """Apply run-time changes; raise ValueError on unknown keys or bad values."""
        for key, value in changes.items():
            if key not in self.RUNTIME_KEYS:
                raise ValueError(f"config key {key!r} cannot be changed at run time; "
                                 f"known: {', '.join(self.RUNTIME_KEYS)}")
            setattr(self, key, self._coerce(key, value))

    def _coerce(self, key: str, value: Any) -> Any:
        current = getattr(self, key)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
            return value
        if isinstance(current, int):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number")
            if value < 0 and key not in self.SIGNED_KEYS:
                raise ValueError(f"{key} must be a non-negative number")
            return int(value)
        if key == "refresh_reply_key" and value not in TOKEN_REPLY_KEYS:
            raise ValueError(f"refresh_reply_key must be one of {', '.join(TOKEN_REPLY_KEYS)}")
        return str(value)

    def restore(self, other: "SimConfig") -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(other, item.name))


@dataclass
class ServerRecord:
    server_id: str
    hostname: str
    registered_via: str  # jwt | uuid | checkin
    cert_pem: str
    key_pem: str
    service_status: str = ""
    checkins: int = 0


@dataclass
class FileMapping:
    mapping_id: str
    destination: str
    content: bytes
    is_readable: bool = True
    is_writable: bool = False
    is_executable: bool = False

    def describe(self, token: str) -> dict[str, Any]:
        return {"jwt_token": token, "destination": self.destination,
                "is_readable": self.is_readable, "is_writable": self.is_writable,
                "is_executable": self.is_executable}


@dataclass
class SimState:
    servers: dict[str, ServerRecord] = field(default_factory=dict)
    file_mappings: dict[str, FileMapping] = field(default_factory=dict)
    storage_mappings: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # kasm_id -> password
    credentials_used: set[str] = field(default_factory=set)
    session_statuses: dict[str, list[Any]] = field(default_factory=dict)
    server_statuses: dict[str, list[Any]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    raw_body: bytes = b""
    target: str = ""
    json: Any = None
    json_ok: bool = False
    token: Optional[str] = None
    token_source: Optional[str] = None
    check: Optional[TokenCheck] = None

    def __post_init__(self) -> None:
        if self.raw_body:
            try:
                self.json = json.loads(self.raw_body)
                self.json_ok = True
            except ValueError:
                self.json = None

    def body_dict(self) -> Optional[dict[str, Any]]:
        return self.json if isinstance(self.json, dict) else None


@dataclass
class Reply:
    status: int = 200
    payload: Any = None
    raw: Optional[bytes] = None
    content_type: str = "application/json"
    reset: bool = False  # drop the connection without an answer

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.payload).encode()

    def error_message(self) -> Optional[str]:
        if isinstance(self.payload, dict):
            message = self.payload.get("error_message")
            return str(message) if message is not None else None
        return None

    def for_record(self) -> Any:
        if self.raw is None:
            return self.payload
        if self.content_type.startswith("text/"):
            return self.raw.decode("utf-8", "replace")
        return f"<{len(self.raw)} bytes>"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    method: str
    token: str  # none | query | query_or_body | body_or_query | register
    auths: frozenset[int] = frozenset()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("register_component", "/api/admin/register_component", "POST", "register",
             frozenset({AUTH_SERVER_AGENT})),
    Endpoint("refresh_token", "/api/admin/refresh_token", "POST", "query_or_body",
             frozenset({AUTH_AGENT, AUTH_SERVER_AGENT})),
    Endpoint("get_server_file_mappings", "/api/admin/get_server_file_mappings", "GET", "query",
             frozenset({AUTH_SERVER_AGENT})),
    Endpoint("get_file_mapping_contents", "/api/admin/get_file_mapping_contents", "GET",
             "query", frozenset({AUTH_SERVER_AGENT})),
    Endpoint("set_kasm_session_status", "/api/set_kasm_session_status", "POST", "query",
             frozenset({AUTH_SESSION})),
    Endpoint("set_kasm_session_credential", "/api/set_kasm_session_credential", "GET", "query",
             frozenset({AUTH_SESSION})),
    Endpoint("kasm_session_log", "/api/kasm_session_log", "POST", "query",
             frozenset({AUTH_SESSION, AUTH_AGENT, AUTH_SERVER_AGENT})),
    Endpoint("component_log", "/api/component_log", "POST", "body_or_query",
             frozenset({AUTH_SESSION, AUTH_AGENT, AUTH_SERVER_AGENT})),
    Endpoint("set_server_status", "/api/set_server_status", "POST", "query",
             frozenset({AUTH_SERVER_AGENT})),
    Endpoint("healthcheck", "/api/__healthcheck", "GET", "none"),
)
ENDPOINTS_BY_PATH = {ep.path: ep for ep in ENDPOINTS}


def endpoint_path(name: str) -> str:
    """'*', a path, or a short name ('refresh_token', '__healthcheck') -> path or '*'."""
    if name in ("*", "") or name.startswith("/"):
        return name or "*"
    for ep in ENDPOINTS:
        if name in (ep.name, ep.path.rsplit("/", 1)[-1]):
            return ep.path
    raise ValueError(f"unknown endpoint {name!r}")


# --------------------------------------------------------------------------------------------
# The deployment's behaviour (no HTTP here)
# --------------------------------------------------------------------------------------------


class DeploymentApi:
    """Answers API requests the way a Kasm deployment does.  Thread-safe."""

    def __init__(self, config: SimConfig, minter: TokenMinter, uuid_tokens: set[str]):
        self.config = config
        self.minter = minter
        self.uuid_tokens = uuid_tokens
        self.state = SimState()
        self.lock = threading.RLock()
        self._agent_keys: dict[str, rsa.RSAPrivateKey] = {}  # survives reset: keygen is slow

    # ---- tokens the deployment mints -------------------------------------------------------

    def mint_agent_token(self, server_id: str, **kw: Any) -> str:
        kw.setdefault("lifetime", self.config.token_lifetime)
        return self.minter.mint({"server_id": server_id}, [AUTH_SERVER_AGENT], **kw)

    def mint_file_map_token(self, file_map_id: str, **kw: Any) -> str:
        kw.setdefault("lifetime", LIFETIME_FILE_MAP)
        return self.minter.mint({"file_map_id": file_map_id}, [AUTH_SERVER_AGENT], **kw)

    # ---- request handling --------------------------------------------------------------------

    def inspect(self, req: ApiRequest) -> None:
        """Find the call's token and judge it (no side effects)."""
        if req.check is not None:
            return
        ep = ENDPOINTS_BY_PATH.get(req.path)
        if ep is None or ep.token == "none":
            req.check = TokenCheck(Verdict.NOT_REQUIRED)
            return
        req.token, req.token_source = self._find_token(ep, req)
        if ep.token == "register" and req.token_source == "body":
            req.check = self._check_registration(req.token)
        else:
            req.check = self.minter.check(req.token, ep.auths, self.config.grace)

    @staticmethod
    def _find_token(ep: Endpoint, req: ApiRequest) -> tuple[Optional[str], Optional[str]]:
        body = req.body_dict() or {}
        in_query = req.query.get("token")
        in_body = body.get("token") if isinstance(body.get("token"), str) else None
        if ep.token == "register" and "registration_token" in body:
            value = body.get("registration_token")
            return (value if isinstance(value, str) else None), "body"
        order = [("body", in_body), ("query", in_query)] if ep.token == "body_or_query" \
            else [("query", in_query), ("body", in_body if ep.token != "query" else None)]
        for source, value in order:
            if value:
                return value, source
        return None, None

    def _check_registration(self, token: Optional[str]) -> TokenCheck:
        if not token:
            return TokenCheck(Verdict.MISSING)
        if is_uuid(token):
            known = token.lower() in {t.lower() for t in self.uuid_tokens}
            return TokenCheck(Verdict.UUID_OK if known else Verdict.UUID_UNKNOWN)
        return self.minter.check(token, frozenset({AUTH_SERVER_AGENT}), None)

    def handle(self, req: ApiRequest) -> Reply:
        ep = ENDPOINTS_BY_PATH.get(req.path)
        if ep is None:
            return Reply(404, {"error_message": "Not Found"})
        if req.method != ep.method:
            return Reply(405, {"error_message": "Method Not Allowed"})
        self.inspect(req)
        with self.lock:
            handler: Callable[[ApiRequest], Reply] = getattr(self, f"_ep_{ep.name}")
            return handler(req)

    # ---- helpers -------------------------------------------------------------------------------

    def _error(self, message: str) -> Reply:
        return Reply(self.config.error_status, {"error_message": message})

    def _gate(self, check: Optional[TokenCheck], expired_text: str = ERR_TOKEN_EXPIRED,
              ok: tuple[str, ...] = (Verdict.VALID,)) -> Optional[Reply]:
        """None when the call may proceed, else the error reply."""
        verdict = check.verdict if check else Verdict.MISSING
        if verdict in ok:
            return None
        if verdict in Verdict.EXPIRED_ALL:
            return self._error(expired_text)
        return self._error(ERR_ACCESS_DENIED)

    def _claims(self, req: ApiRequest) -> dict[str, Any]:
        return (req.check.claims if req.check and req.check.claims else {})

    def _server(self, server_id: str, component: dict[str, Any], via: str) -> ServerRecord:
        server = self.state.servers.get(server_id)
        hostname = str(component.get("hostname") or "")
        if server is None:
            name = hostname or f"kasm-{server_id[:8]}"
            if server_id not in self._agent_keys:
                self._agent_keys[server_id] = generate_rsa_key(self.config.agent_key_exponent)
            cert, key = issue_self_signed([name], key=self._agent_keys[server_id])
            server = ServerRecord(server_id, name, via, cert, key)
            self.state.servers[server_id] = server
        elif hostname:
            server.hostname = hostname
        return server

    def _success(self, server: ServerRecord) -> Reply:
        agent = {"agent_jwt_token": self.mint_agent_token(server.server_id),
                 "public_jwt_cert": self.minter.public_pem,
                 "server_cert": server.cert_pem, "server_key": server.key_pem,
                 "multi_user": self.config.multi_user, "user_sso": self.config.user_sso}
        return Reply(200, {"operational_status": "running", "server_agent": agent})

    @staticmethod
    def _server_id_for(check: TokenCheck, component: dict[str, Any]) -> Optional[str]:
        wanted = norm_id(component.get("id"))
        if check.verdict == Verdict.UUID_OK:
            return wanted or uuid.uuid4().hex
        claimed = norm_id((check.claims or {}).get("server_id"))
        if not claimed or (wanted and wanted != claimed):
            return None
        return claimed

    # ---- endpoints -------------------------------------------------------------------------------

    def _ep_register_component(self, req: ApiRequest) -> Reply:
        body = req.body_dict()
        component = body.get("target_component") if body else None
        if not body or body.get("type") != "server_agent" or not isinstance(component, dict):
            return self._error(ERR_INVALID_REQUEST)
        registering = req.token_source == "body"
        ok = (Verdict.VALID, Verdict.UUID_OK) if registering else (Verdict.VALID,)
        denied = self._gate(req.check, ERR_REGISTER_EXPIRED, ok)
        if denied:
            return denied
        assert req.check is not None
        server_id = self._server_id_for(req.check, component)
        if server_id is None:
            return self._error(ERR_ACCESS_DENIED)
        via = ("uuid" if req.check.verdict == Verdict.UUID_OK else "jwt") if registering \
            else "checkin"
        server = self._server(server_id, component, via)
        server.service_status = str(component.get("service_status", ""))
        if not registering:
            server.checkins += 1
        return self._success(server)

    def _ep_refresh_token(self, req: ApiRequest) -> Reply:
        check = req.check
        if check and check.verdict == Verdict.PAST_GRACE:
            return self._error(ERR_PAST_GRACE)
        denied = self._gate(check, ERR_TOKEN_EXPIRED, (Verdict.VALID, Verdict.IN_GRACE))
        if denied:
            return denied
        claims = self._claims(req)
        token = self.minter.mint(claims, claims.get("authorizations", []),
                                 lifetime=self.config.token_lifetime)
        inner = {self.config.refresh_reply_key: token}
        return Reply(200, {"server_agent": inner} if self.config.refresh_reply_nested else inner)

    def _ep_get_server_file_mappings(self, req: ApiRequest) -> Reply:
        denied = self._gate(req.check)
        if denied:
            return denied
        mappings = {m.mapping_id: m.describe(self.mint_file_map_token(m.mapping_id))
                    for m in self.state.file_mappings.values()}
        return Reply(200, {"file_mappings": mappings,
                           "storage_mappings": json.loads(
                               json.dumps(self.state.storage_mappings))})

    def _ep_get_file_mapping_contents(self, req: ApiRequest) -> Reply:
        denied = self._gate(req.check)
        if denied:
            return denied
        mapping = self.state.file_mappings.get(str(self._claims(req).get("file_map_id")))
        if mapping is None:
            return self._error(ERR_NO_FILE_MAPPING)
        return Reply(200, raw=mapping.content, content_type="application/octet-stream")

    def _ep_set_kasm_session_status(self, req: ApiRequest) -> Reply:
        denied = self._gate(req.check)
        if denied:
            return denied
        body = req.body_dict()
        if body is None or not body.get("kasm_id"):
            return self._error(ERR_INVALID_REQUEST)
        kasm_id = norm_id(body["kasm_id"])
        if kasm_id != norm_id(self._claims(req).get("kasm_id")):
            return self._error(ERR_ACCESS_DENIED)
        self.state.session_statuses.setdefault(kasm_id, []).append(body)
        return Reply(200, {})

    def _ep_set_kasm_session_credential(self, req: ApiRequest) -> Reply:
        denied = self._gate(req.check)
        if denied:
            return denied
        kasm_id = norm_id(self._claims(req).get("kasm_id"))
        if not kasm_id:
            return self._error(ERR_ACCESS_DENIED)
        if kasm_id in self.state.credentials_used:
            return Reply(403, {"error_message": ERR_ACCESS_DENIED})
        self.state.credentials_used.add(kasm_id)
        password = self.state.credentials.setdefault(kasm_id, random_password())
        return Reply(200, raw=password.encode(), content_type="text/plain")

    def _store_logs(self, endpoint: str, records: Any) -> Reply:
        if not isinstance(records, list):
            return self._error(ERR_INVALID_REQUEST)
        self.state.logs.append({"endpoint": endpoint, "records": records})
        return Reply(200, {})

    def _ep_kasm_session_log(self, req: ApiRequest) -> Reply:
        return self._gate(req.check) or self._store_logs("kasm_session_log", req.json)

    def _ep_component_log(self, req: ApiRequest) -> Reply:
        if not self.config.component_log:
            return Reply(404, {"error_message": "Not Found"})
        body = req.body_dict() or {}
        return self._gate(req.check) or self._store_logs("component_log", body.get("logs"))

    def _ep_set_server_status(self, req: ApiRequest) -> Reply:
        denied = self._gate(req.check)
        if denied:
            return denied
        body = req.body_dict()
        if body is None:
            return self._error(ERR_INVALID_REQUEST)
        server_id = norm_id(self._claims(req).get("server_id"))
        self.state.server_statuses.setdefault(server_id, []).append(body)
        return Reply(200, {})

    def _ep_healthcheck(self, req: ApiRequest) -> Reply:
        return Reply(200, {"ok": True})


# --------------------------------------------------------------------------------------------
# Faults and the call record
# --------------------------------------------------------------------------------------------

FAULT_KINDS = ("down", "slow", "http400", "http403", "http500", "error200", "malformed", "expired_token",
               "bad_signature", "tls_unknown_ca")
FAULT_ALIASES = {"400": "http400", "403": "http403", "500": "http500", "error_message": "error200",
                 "bad_json": "malformed", "malformed_json": "malformed",
                 "expired": "expired_token", "wrong_signature": "bad_signature",
                 "tls": "tls_unknown_ca", "unknown_ca": "tls_unknown_ca"}
SHORT_CIRCUIT_FAULTS = ("down", "http400", "http403", "http500", "error200", "malformed")
REPLY_TOKEN_FAULTS = ("expired_token", "bad_signature")
CONNECTION_FAULTS = ("down", "tls_unknown_ca")
MALFORMED_BODY = b'{"operational_status": "running", "server_agent": {"agent_jwt_token": '


@dataclass
class Fault:
    """An injected failure.  endpoint '*' = every endpoint; count None = until cleared."""

    kind: str
    endpoint: str = "*"
    count: Optional[int] = None
    delay: float = 2.0  # slow: seconds
    message: str = ""  # http400 / http403 / http500 / error200 text
    seconds: Optional[float] = None  # down (global, no count): come back after this long
    age: int = 60  # expired_token: how many seconds before now the token expired

    @classmethod
    def create(cls, kind: str, endpoint: str = "*", count: Optional[int] = None,
               **options: Any) -> "Fault":
        kind = FAULT_ALIASES.get(kind, kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if count is not None and (isinstance(count, bool) or int(count) < 1):
            raise ValueError("count must be a positive integer (or absent: until cleared)")
        fault = cls(kind, endpoint_path(endpoint or "*"),
                    int(count) if count is not None else None,
                    **{k: v for k, v in options.items() if v is not None})
        if fault.kind == "tls_unknown_ca" and fault.endpoint != "*":
            raise ValueError("tls_unknown_ca is per connection: it cannot target an endpoint")
        if not fault.message:
            fault.message = {"http500": "Internal Server Error",
                             "http400": "Bad Request"}.get(kind, ERR_ACCESS_DENIED)
        return fault

    @property
    def connection_level(self) -> bool:
        """Applied at accept time, before a request is read."""
        return self.kind in CONNECTION_FAULTS and self.endpoint == "*"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Active faults; each use decrements its count and exhausted faults disappear."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return [replace(f) for f in self._faults]

    def _consume(self, fault: Fault) -> None:
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)

    def take_connection(self) -> Optional[Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.connection_level:
                    self._consume(fault)
                    return replace(fault)
        return None

    def take_request(self, path: str) -> list[Fault]:
        """Every matching 'slow' fault plus the first other matching fault (endpoint-specific
        faults before global ones)."""
        with self._lock:
            candidates = [f for f in self._faults if not f.connection_level
                          and f.endpoint in ("*", path)]
            candidates.sort(key=lambda f: f.endpoint == "*")
            chosen = [f for f in candidates if f.kind == "slow"]
            chosen += [f for f in candidates if f.kind != "slow"][:1]
            taken = [replace(f) for f in chosen]
            for fault in chosen:
                self._consume(fault)
            return taken


@dataclass
class CallRecord:
    seq: int
    time: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: Optional[str]
    token_source: Optional[str]
    verdict: str
    claims: Optional[dict[str, Any]]
    status: Optional[int]
    error_message: Optional[str]
    response: Any
    fault: Optional[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CallLog:
    def __init__(self) -> None:
        self._calls: list[CallRecord] = []
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, **values: Any) -> CallRecord:
        with self._lock:
            self._seq += 1
            record = CallRecord(seq=self._seq, time=time.time(), **values)
            self._calls.append(record)
            return record

    def list(self, path: Optional[str] = None, since: int = 0) -> list[CallRecord]:
        wanted = endpoint_path(path) if path else None
        with self._lock:
            return [c for c in self._calls if c.seq > since
                    and (wanted in (None, "*") or c.path == wanted)]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------

MAX_BODY = 64 * 1024 * 1024


def reset_close(sock: socket.socket) -> None:
    """Close with RST, so the peer sees the connection reset."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class _QuietServerMixin:
    """Bind without reverse DNS; log connection errors at debug level only."""

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # type: ignore[arg-type]
        host, port = self.server_address[:2]  # type: ignore[attr-defined]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)


class _BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "kasm-sim"
    sys_version = ""
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        LOG.debug("%s", redact(format % args))

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()
            if len(data) > MAX_BODY:
                raise ValueError("request body too large")

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ApiHandler(_BaseHandler):
    server: "_ApiServer"

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        """The Date header, shifted by the configuration's date_offset (a skewed clock)."""
        if timestamp is None:
            timestamp = time.time()
        return super().date_time_string(timestamp + self.server.sim.config.date_offset)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = ApiRequest(self.command, parts.path, query, self.read_body(), self.path)
        reply = self.server.sim.serve_request(req)
        if reply.reset:
            reset_close(self.connection)
            self.close_connection = True
            return
        self.send_body(reply.status, reply.body(), reply.content_type)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class _ApiServer(_QuietServerMixin, http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: "KasmSimulator"):
        self.sim = sim
        super().__init__(address, _ApiHandler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        return self.sim.accept_connection(sock), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(15)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                LOG.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)


class _Listener:
    """A server on a fixed port that can be stopped (port refused) and started again."""

    def __init__(self, factory: Callable[[tuple[str, int]], socketserver.TCPServer],
                 host: str, port: int, name: str):
        self._factory = factory
        self.host, self.port, self.name = host, port, name
        self._server: Optional[socketserver.TCPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = self._factory((self.host, self.port))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


class _ControlHandler(_BaseHandler):
    server: "_ControlServer"

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            raw = self.read_body()
            body = json.loads(raw) if raw.strip() else {}
            status, payload = control_dispatch(self.server.sim, self.command, parts.path,
                                               query, body)
        except (ValueError, TypeError, KeyError) as exc:
            status, payload = 400, {"error": str(exc)}
        self.send_body(status, json.dumps(payload).encode(), "application/json")

    do_GET = do_POST = _dispatch


class _ControlServer(_QuietServerMixin, http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: "KasmSimulator"):
        self.sim = sim
        super().__init__(address, _ControlHandler)


def control_dispatch(sim: "KasmSimulator", method: str, path: str, query: dict[str, str],
                     body: Any) -> tuple[int, Any]:
    """The control API (plain HTTP JSON on its own loopback port)."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    if (method, path) == ("GET", "/control/calls"):
        calls = sim.calls(query.get("path"), since=int(query.get("since", 0)))
        return 200, {"calls": [c.to_json() for c in calls]}
    if (method, path) == ("GET", "/control/state"):
        return 200, sim.describe()
    if (method, path) == ("POST", "/control/fault"):
        if body.get("clear"):
            sim.clear_faults()
        else:
            sim.inject(**body)
        return 200, {"ok": True, "faults": [f.to_json() for f in sim.faults()]}
    if (method, path) == ("POST", "/control/config"):
        sim.configure(**body)
        return 200, {"ok": True, "config": asdict(sim.config)}
    if (method, path) == ("POST", "/control/mint"):
        return 200, _control_mint(sim, body)
    if (method, path) == ("POST", "/control/file_mapping"):
        content = (base64.b64decode(body.pop("content_b64")) if "content_b64" in body
                   else str(body.pop("content", "")).encode())
        return 200, {"id": sim.add_file_mapping(body.pop("destination"), content, **body)}
    if (method, path) == ("POST", "/control/reset"):
        sim.reset()
        return 200, {"ok": True}
    return 404, {"error": f"no control route {method} {path}"}


def _control_mint(sim: "KasmSimulator", body: dict[str, Any]) -> dict[str, Any]:
    kind = str(body.pop("kind", ""))
    token = sim.mint(kind, **body)
    reply: dict[str, Any] = {"token": token}
    if kind != "component_uuid":
        claims = unverified_claims(token)
        reply["claims"] = claims
        if kind == "session":
            reply["password"] = sim.session_credential(claims["kasm_id"])
    return reply


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------


class KasmSimulator:
    """A Kasm deployment on loopback.  Use as a context manager or start()/stop()."""

    def __init__(self, config: Optional[SimConfig] = None, *, port: int = 0,
                 control_port: Optional[int] = None, state_dir: Optional[str] = None,
                 keys: Optional[KeyMaterial] = None, keys_dir: Optional[str] = None):
        self.config = replace(config) if config else SimConfig()
        self.config.server_id = norm_id(self.config.server_id) or uuid.uuid4().hex
        self._initial_config = replace(self.config)
        self._port, self._control_port = port, control_port
        self._state_dir_arg, self._keys_dir = state_dir, keys_dir
        self.keys = keys
        self.state_dir = ""
        self.component_uuid_token = str(uuid.uuid4())
        self.registration_token = ""
        self.checkin_token = ""
        self._uuid_tokens = {self.component_uuid_token}
        self._faults = FaultBook()
        self._calls = CallLog()
        self._lock = threading.RLock()
        self._down: Optional[Fault] = None
        self._down_timer: Optional[threading.Timer] = None
        self._tls_ctx: Optional[ssl.SSLContext] = None
        self._unknown_ctx: Optional[ssl.SSLContext] = None
        self._listener: Optional[_Listener] = None
        self._control: Optional[_Listener] = None
        self._api: Optional[DeploymentApi] = None
        self._minter: Optional[TokenMinter] = None
        self._made_state_dir = False

    # ---- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> "KasmSimulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> "KasmSimulator":
        self._prepare_state_dir()
        if os.path.exists(self.sim_json_file):  # stale: readers wait for the fresh one
            os.unlink(self.sim_json_file)
        hosts = self._tls_hosts()
        if self.keys is None:
            self.keys = (KeyMaterial.load_or_generate(self._keys_dir, hosts,
                                                      self.config.signing_exponent)
                         if self._keys_dir else
                         KeyMaterial.generate(hosts, self.config.signing_exponent))
        self._minter = TokenMinter(self.keys.signing_key)
        self._api = DeploymentApi(self.config, self._minter, self._uuid_tokens)
        write_file(self.jwt_public_key_file, self._minter.public_pem.encode())
        if self.config.tls:
            self._tls_ctx = self.keys.tls.server_context(self.state_dir, "")
        self.registration_token = self.mint_registration_token()
        self.checkin_token = self.mint_checkin_token()
        self._listener = _Listener(lambda a: _ApiServer(a, self), self.config.host, self._port,
                                   "kasm-sim-api")
        self._listener.start()
        if self._control_port is not None:
            self._control = _Listener(lambda a: _ControlServer(a, self), "127.0.0.1",
                                      self._control_port, "kasm-sim-control")
            self._control.start()
        write_file(self.sim_json_file, json.dumps(self.info(), indent=2).encode(), private=True)
        LOG.info("simulator ready: api %s, control %s, state %s", self.api_url,
                 self.control_url or "off", self.state_dir)
        return self

    def stop(self) -> None:
        with self._lock:
            self._cancel_down_timer()
            self._down = None
        for listener in (self._listener, self._control):
            if listener is not None:
                listener.stop()
        if self.state_dir and os.path.exists(self.sim_json_file):
            os.unlink(self.sim_json_file)
        if self._made_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self._made_state_dir = False

    def _prepare_state_dir(self) -> None:
        if self._state_dir_arg:
            os.makedirs(self._state_dir_arg, exist_ok=True)
            self.state_dir = os.path.abspath(self._state_dir_arg)
        else:
            self.state_dir = tempfile.mkdtemp(prefix="kasm-sim-")
            self._made_state_dir = True

    def _tls_hosts(self) -> list[str]:
        hosts = ["localhost", "127.0.0.1", "::1"]
        if self.config.host not in hosts:
            hosts.insert(0, self.config.host)
        return hosts

    # ---- where things are ----------------------------------------------------------------------

    @property
    def api(self) -> DeploymentApi:
        if self._api is None:
            raise RuntimeError("the simulator is not started")
        return self._api

    @property
    def minter(self) -> TokenMinter:
        if self._minter is None:
            raise RuntimeError("the simulator is not started")
        return self._minter

    @property
    def server_id(self) -> str:
        return self.config.server_id

    @property
    def api_port(self) -> int:
        return self._listener.port if self._listener else 0

    @property
    def api_url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self.api_port}"

    @property
    def control_port(self) -> Optional[int]:
        return self._control.port if self._control else None

    @property
    def control_url(self) -> Optional[str]:
        return f"http://127.0.0.1:{self.control_port}" if self._control else None

    @property
    def ca_file(self) -> str:
        return os.path.join(self.state_dir, "ca.pem")

    @property
    def jwt_public_key_file(self) -> str:
        return os.path.join(self.state_dir, "jwt-public.pem")

    @property
    def jwt_public_key_pem(self) -> str:
        return self.minter.public_pem

    @property
    def sim_json_file(self) -> str:
        return os.path.join(self.state_dir, "sim.json")

    def info(self) -> dict[str, Any]:
        """The content of sim.json."""
        return {"api_port": self.api_port, "control_port": self.control_port,
                "api_url": self.api_url, "control_url": self.control_url,
                "host": self.config.host, "tls": self.config.tls,
                "ca_file": self.ca_file if self.config.tls else None,
                "jwt_public_key_pem": self.jwt_public_key_file,
                "registration_token": self.registration_token,
                "checkin_token": self.checkin_token,
                "component_uuid_token": self.component_uuid_token,
                "server_id": self.server_id, "pid": os.getpid()}

    def describe(self) -> dict[str, Any]:
        """info() plus configuration, active faults and registered servers."""
        with self.api.lock:
            servers = {sid: {"hostname": s.hostname, "registered_via": s.registered_via,
                             "service_status": s.service_status, "checkins": s.checkins}
                       for sid, s in self.api.state.servers.items()}
        return {**self.info(), "config": asdict(self.config), "servers": servers,
                "faults": [f.to_json() for f in self.faults()],
                "listening": bool(self._listener and self._listener.running)}

    # ---- tokens ----------------------------------------------------------------------------------

    def mint(self, kind: str, claims: Optional[dict[str, Any]] = None, *,
             lifetime: Optional[float] = None, exp: Optional[float] = None,
             authorizations: Optional[list[int]] = None, sign: str = "rs256") -> str:
        """Mint a token of a kind (checkin, registration, agent, session, file_map, user,
        custom, component_uuid); claims override or extend the defaults."""
        if kind == "component_uuid":
            return self.component_uuid_token
        defaults, auths, default_lifetime = self._token_defaults(kind)
        merged = {**defaults, **(claims or {})}
        if kind == "session":
            self.session_credential(merged["kasm_id"])
        return self.minter.mint(merged, authorizations if authorizations is not None else auths,
                                lifetime=lifetime if lifetime is not None else default_lifetime,
                                exp=exp, sign=sign)

    def _token_defaults(self, kind: str) -> tuple[dict[str, Any], list[int], float]:
        server = {"server_id": self.server_id}
        table: dict[str, tuple[dict[str, Any], list[int], float]] = {
            "checkin": (server, [AUTH_SERVER_AGENT], LIFETIME_CHECKIN),
            "registration": (server, [AUTH_SERVER_AGENT], LIFETIME_REGISTRATION),
            "agent": (server, [AUTH_SERVER_AGENT], self.config.token_lifetime),
            "session": ({**server, "kasm_id": uuid.uuid4().hex, "profile_path": ""},
                        [AUTH_SESSION], LIFETIME_SESSION),
            "file_map": ({"file_map_id": uuid.uuid4().hex}, [AUTH_SERVER_AGENT],
                         LIFETIME_FILE_MAP),
            "user": ({"system_username": "kasm_user", "username": "kasm_user@kasm.local",
                      "user_id": uuid.uuid4().hex}, [AUTH_USER], LIFETIME_USER),
            "custom": ({}, [], LIFETIME_AGENT),
        }
        if kind not in table:
            raise ValueError(f"unknown token kind {kind!r}; use one of "
                             f"{', '.join(list(table) + ['component_uuid'])}")
        return table[kind]

    def mint_checkin_token(self, server_id: Optional[str] = None, **kw: Any) -> str:
        return self.mint("checkin", {"server_id": norm_id(server_id or self.server_id)}, **kw)

    def mint_registration_token(self, server_id: Optional[str] = None, **kw: Any) -> str:
        return self.mint("registration", {"server_id": norm_id(server_id or self.server_id)},
                         **kw)

    def mint_agent_token(self, server_id: Optional[str] = None, **kw: Any) -> str:
        return self.mint("agent", {"server_id": norm_id(server_id or self.server_id)}, **kw)

    def mint_session_token(self, kasm_id: Optional[str] = None, *,
                           server_id: Optional[str] = None, profile_path: str = "",
                           **kw: Any) -> str:
        claims = {"server_id": norm_id(server_id or self.server_id),
                  "kasm_id": norm_id(kasm_id) or uuid.uuid4().hex, "profile_path": profile_path}
        return self.mint("session", claims, **kw)

    def mint_file_map_token(self, file_map_id: str, **kw: Any) -> str:
        return self.mint("file_map", {"file_map_id": file_map_id}, **kw)

    def mint_user_token(self, system_username: str = "kasm_user", *,
                        username: Optional[str] = None, user_id: Optional[str] = None,
                        **kw: Any) -> str:
        claims = {"system_username": system_username,
                  "username": username or f"{system_username}@kasm.local",
                  "user_id": user_id or uuid.uuid4().hex}
        return self.mint("user", claims, **kw)

    def decode(self, token: str) -> dict[str, Any]:
        """Claims of a token this deployment signed (signature and exp verified)."""
        return self.minter.decode(token)

    def add_uuid_token(self, token: str) -> None:
        self._uuid_tokens.add(token)

    # ---- deployment data -------------------------------------------------------------------

    def add_file_mapping(self, destination: str, content: bytes, *,
                         mapping_id: Optional[str] = None, is_readable: bool = True,
                         is_writable: bool = False, is_executable: bool = False) -> str:
        mapping = FileMapping(mapping_id or uuid.uuid4().hex, destination, content,
                              is_readable, is_writable, is_executable)
        with self.api.lock:
            self.api.state.file_mappings[mapping.mapping_id] = mapping
        return mapping.mapping_id

    def set_storage_mappings(self, mappings: dict[str, Any]) -> None:
        with self.api.lock:
            self.api.state.storage_mappings = dict(mappings)

    def session_credential(self, kasm_id: str) -> str:
        """The one-time password the deployment holds for a session (created on demand)."""
        with self.api.lock:
            return self.api.state.credentials.setdefault(norm_id(kasm_id), random_password())

    def set_session_credential(self, kasm_id: str, password: str) -> None:
        with self.api.lock:
            self.api.state.credentials[norm_id(kasm_id)] = password
            self.api.state.credentials_used.discard(norm_id(kasm_id))

    def servers(self) -> dict[str, ServerRecord]:
        with self.api.lock:
            return {k: replace(v) for k, v in self.api.state.servers.items()}

    def session_statuses(self, kasm_id: str) -> list[Any]:
        with self.api.lock:
            return list(self.api.state.session_statuses.get(norm_id(kasm_id), []))

    def server_statuses(self, server_id: Optional[str] = None) -> list[Any]:
        with self.api.lock:
            return list(self.api.state.server_statuses.get(norm_id(server_id or self.server_id),
                                                           []))

    def logs(self) -> list[dict[str, Any]]:
        with self.api.lock:
            return list(self.api.state.logs)

    # ---- configuration --------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        with self.api.lock:
            self.config.update(changes)

    def set_token_lifetime(self, seconds: int) -> None:
        self.configure(token_lifetime=seconds)

    def set_grace(self, seconds: int) -> None:
        self.configure(grace=seconds)

    def reset(self) -> None:
        """Forget calls, faults and deployment data; restore the start-up configuration.
        Keys, registration tokens and ports stay."""
        self.clear_faults()
        self._calls.clear()
        with self.api.lock:
            self.config.restore(self._initial_config)
            self.api.state = SimState()
        self._uuid_tokens.intersection_update({self.component_uuid_token})

    # ---- calls and faults ----------------------------------------------------------------------

    def calls(self, path: Optional[str] = None, since: int = 0) -> list[CallRecord]:
        """Recorded calls, optionally for one endpoint (path or short name)."""
        return self._calls.list(path, since)

    def faults(self) -> list[Fault]:
        active = self._faults.active()
        with self._lock:
            return active + ([replace(self._down)] if self._down else [])

    def inject(self, kind: str, endpoint: str = "*", count: Optional[int] = None, *,
               delay: Optional[float] = None, message: Optional[str] = None,
               seconds: Optional[float] = None, age: Optional[int] = None) -> Fault:
        """Make the next `count` calls (all when None) to `endpoint` ('*' = all) fail."""
        fault = Fault.create(kind, endpoint, count, delay=delay, message=message,
                             seconds=seconds, age=age)
        if fault.kind == "tls_unknown_ca":
            self._ensure_unknown_ca()
        if fault.kind == "down" and fault.endpoint == "*" and fault.count is None:
            self._go_down(fault)
        else:
            self._faults.add(fault)
        LOG.info("fault injected: %s on %s (%s)", fault.kind, fault.endpoint,
                 "until cleared" if fault.count is None else f"next {fault.count}")
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()
        self._come_up()

    def _ensure_unknown_ca(self) -> None:
        if not self.config.tls:
            raise ValueError("tls_unknown_ca needs TLS; the simulator runs plain HTTP")
        with self._lock:
            if self._unknown_ctx is None:
                identity = TlsIdentity.generate(self._tls_hosts(), "kasm-sim unknown CA")
                self._unknown_ctx = identity.server_context(self.state_dir, "unknown-")

    def _go_down(self, fault: Fault) -> None:
        with self._lock:
            self._cancel_down_timer()
            self._down = fault
            if self._listener:
                self._listener.stop()
            if fault.seconds:
                self._down_timer = threading.Timer(fault.seconds, self._come_up)
                self._down_timer.daemon = True
                self._down_timer.start()

    def _come_up(self) -> None:
        with self._lock:
            self._cancel_down_timer()
            if self._down is None:
                return
            self._down = None
            if self._listener:
                self._listener.start()
            LOG.info("listener back on port %s", self.api_port)

    def _cancel_down_timer(self) -> None:
        if self._down_timer is not None:
            self._down_timer.cancel()
            self._down_timer = None

    # ---- serving (called from the HTTP threads) -------------------------------------------------

    def accept_connection(self, sock: socket.socket) -> socket.socket:
        """Apply connection-level faults; wrap in TLS (handshake runs in the handler thread)."""
        fault = self._faults.take_connection()
        ctx = self._tls_ctx
        if fault is not None:
            self._record_connection_fault(fault.kind)
            if fault.kind == "down":
                reset_close(sock)
                raise OSError("injected fault: down")
            ctx = self._unknown_ctx
        if ctx is None:
            return sock
        return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    def _record_connection_fault(self, kind: str) -> None:
        self._calls.add(method="", path="", query={}, body=None, token=None, token_source=None,
                        verdict=Verdict.NOT_REQUIRED, claims=None, status=None,
                        error_message=None, response=None, fault=kind)
        LOG.info("connection -> fault=%s", kind)

    def serve_request(self, req: ApiRequest) -> Reply:
        faults = self._faults.take_request(req.path)
        for fault in faults:
            if fault.kind == "slow":
                time.sleep(fault.delay)
        main = next((f for f in faults if f.kind != "slow"), None)
        self.api.inspect(req)
        if main is not None and main.kind in SHORT_CIRCUIT_FAULTS:
            reply = self._fault_reply(main)
        else:
            reply = self.api.handle(req)
            if main is not None and main.kind in REPLY_TOKEN_FAULTS:
                reply.payload = self._spoil_tokens(reply.payload, main)
        self._record(req, reply, faults)
        return reply

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        if fault.kind == "down":
            return Reply(reset=True)
        if fault.kind == "http400":
            return Reply(400, {"error_message": fault.message})
        if fault.kind == "http403":
            return Reply(403, {"error_message": fault.message})
        if fault.kind == "http500":
            return Reply(500, raw=fault.message.encode(), content_type="text/plain")
        if fault.kind == "error200":
            return Reply(200, {"error_message": fault.message})
        return Reply(200, raw=MALFORMED_BODY, content_type="application/json")

    def _spoil_tokens(self, value: Any, fault: Fault) -> Any:
        if isinstance(value, dict):
            return {k: (self._spoil_token(v, fault) if k in TOKEN_KEYS_IN_REPLIES
                        and isinstance(v, str) else self._spoil_tokens(v, fault))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._spoil_tokens(v, fault) for v in value]
        return value

    def _spoil_token(self, token: str, fault: Fault) -> str:
        if fault.kind == "expired_token":
            return self.minter.reissue(token, exp=time.time() - fault.age)
        return self.minter.reissue(token, sign="rogue")

    def _record(self, req: ApiRequest, reply: Reply, faults: list[Fault]) -> None:
        check = req.check or TokenCheck(Verdict.NOT_REQUIRED)
        fault = ",".join(f.kind for f in faults) or None
        body = req.json if req.json_ok else (req.raw_body.decode("utf-8", "replace")
                                             if req.raw_body else None)
        self._calls.add(method=req.method, path=req.path, query=dict(req.query), body=body,
                        token=req.token, token_source=req.token_source, verdict=check.verdict,
                        claims=check.claims, status=None if reply.reset else reply.status,
                        error_message=reply.error_message(), response=reply.for_record(),
                        fault=fault)
        LOG.info("%s %s -> %s verdict=%s%s", req.method, redact(req.target or req.path),
                 "reset" if reply.reset else reply.status, check.verdict,
                 f" fault={fault}" if fault else "")


# --------------------------------------------------------------------------------------------
# Out-of-process access: sim.json and the control API
# --------------------------------------------------------------------------------------------


def read_sim_json(state_dir: str, timeout: float = 0.0) -> dict[str, Any]:
    """Read DIR/sim.json, waiting up to timeout seconds for it to appear."""
    path = os.path.join(state_dir, "sim.json")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (FileNotFoundError, ValueError):
            if time.monotonic() >= deadline:
                raise FileNotFoundError(f"no simulator state in {path}") from None
            time.sleep(0.05)


class ControlClient:
    """Python client of the control API (what shell tests do with curl)."""

    def __init__(self, url: str, timeout: float = 15.0):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout

    @classmethod
    def from_state_dir(cls, state_dir: str, timeout: float = 0.0) -> "ControlClient":
        url = read_sim_json(state_dir, timeout).get("control_url")
        if not url:
            raise ValueError("the simulator runs without a control port")
        return cls(url)

    def call(self, method: str, path: str, payload: Optional[dict[str, Any]] = None) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, path, body=body,
                         headers={"Content-Type": "application/json"} if body else {})
            response = conn.getresponse()
            data = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"control {method} {path}: {data.get('error', response.status)}")
        return data

    def calls(self, path: Optional[str] = None, since: int = 0) -> list[dict[str, Any]]:
        query = urlencode({k: v for k, v in (("path", path), ("since", since)) if v})
        return self.call("GET", "/control/calls" + (f"?{query}" if query else ""))["calls"]

    def state(self) -> dict[str, Any]:
        return self.call("GET", "/control/state")

    def inject(self, kind: str, endpoint: str = "*", count: Optional[int] = None,
               **options: Any) -> None:
        self.call("POST", "/control/fault", {"kind": kind, "endpoint": endpoint,
                                             "count": count, **options})

    def clear_faults(self) -> None:
        self.call("POST", "/control/fault", {"clear": True})

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.call("POST", "/control/config", changes)["config"]

    def mint(self, kind: str, claims: Optional[dict[str, Any]] = None, **options: Any) -> str:
        return self.call("POST", "/control/mint",
                         {"kind": kind, "claims": claims or {}, **options})["token"]

    def add_file_mapping(self, destination: str, content: bytes, **flags: Any) -> str:
        payload = {"destination": destination,
                   "content_b64": base64.b64encode(content).decode(), **flags}
        return self.call("POST", "/control/file_mapping", payload)["id"]

    def reset(self) -> None:
        self.call("POST", "/control/reset", {})


# --------------------------------------------------------------------------------------------
# Playing the deployment calling the agent (KASM_INTERFACE.md section 5)
# --------------------------------------------------------------------------------------------

UPLOAD_CHUNK = 10_000_000


@dataclass
class AgentIdentity:
    """Who the deployment says the session belongs to."""

    username: str = "kasm_user"  # Windows account (system_username)
    kasm_username: str = ""  # the Kasm login (username claim)
    user_id: str = ""
    kasm_id: str = ""
    server_id: str = ""
    profile_path: str = ""

    def __post_init__(self) -> None:
        # Stable defaults so separate invocations (session_start, later session_end) agree.
        seed = f"kasm-sim:{self.username}"
        self.kasm_username = self.kasm_username or f"{self.username}@kasm.local"
        self.user_id = norm_id(self.user_id) or uuid.uuid5(uuid.NAMESPACE_URL, seed + ":u").hex
        self.kasm_id = norm_id(self.kasm_id) or uuid.uuid5(uuid.NAMESPACE_URL, seed + ":k").hex
        self.server_id = norm_id(self.server_id)


@dataclass
class AgentResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def encode_multipart(fields_: list[tuple[str, str]], filename: str,
                     data: bytes) -> tuple[bytes, str]:
    """multipart/form-data with text fields first and a `file` part, as Dropzone.js sends."""
    boundary = f"----kasmsim{secrets.token_hex(12)}"
    out = bytearray()
    for name, value in fields_:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    safe_name = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def parse_listing(page: str) -> list[str]:
    """Entry names of the agent's /Downloads/Downloads/ HTML listing."""
    return [html.unescape(m) for m in re.findall(r'<li><a href="[^"]*">([^<]*)</a></li>', page)]


def png_size(data: bytes) -> Optional[tuple[int, int]]:
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class AgentClient:
    """Calls an agent's HTTPS API with tokens minted by the deployment (sim or control API).
    `tokens` is anything with mint(kind, claims) and add_file_mapping(destination, content)."""

    def __init__(self, agent_url: str, tokens: Any, identity: AgentIdentity, *,
                 ca_file: Optional[str] = None, timeout: float = 30.0,
                 token_in_query: bool = False):
        parts = urlsplit(agent_url)
        self.scheme = parts.scheme or "https"
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 4902
        self.tokens, self.identity = tokens, identity
        self.timeout, self.token_in_query = timeout, token_in_query
        self.ssl_context = self._client_context(ca_file)

    @staticmethod
    def _client_context(ca_file: Optional[str]) -> ssl.SSLContext:
        if ca_file:
            return ssl.create_default_context(cafile=ca_file)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # Kasm does not verify the agent
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    # ---- tokens ----------------------------------------------------------------------------------

    def user_token(self) -> str:
        ident = self.identity
        return self.tokens.mint("user", {"system_username": ident.username,
                                         "username": ident.kasm_username,
                                         "user_id": ident.user_id})

    def session_token(self) -> str:
        ident = self.identity
        return self.tokens.mint("session", {"server_id": ident.server_id,
                                            "kasm_id": ident.kasm_id,
                                            "profile_path": ident.profile_path})

    def server_token(self) -> str:  # healthcheck: [inferred] which token the manager uses
        return self.tokens.mint("agent", {"server_id": self.identity.server_id})

    # ---- transport -------------------------------------------------------------------------------

    def request(self, method: str, path: str, token: str, body: Optional[bytes] = None,
                content_type: Optional[str] = None) -> AgentResponse:
        headers = {"Content-Length": str(len(body or b""))}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token_in_query:
            path += ("&" if "?" in path else "?") + urlencode({"token": token})
        else:
            headers["Authorization"] = f"Bearer {token}"
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body or b"", headers=headers)
            response = conn.getresponse()
            return AgentResponse(response.status, dict(response.getheaders()), response.read())
        finally:
            conn.close()

    # ---- the calls -------------------------------------------------------------------------------

    def healthcheck(self) -> AgentResponse:
        return self.request("GET", "/__healthcheck", self.server_token())

    def session_payload(self, *, create_local_account: bool = False,
                        file_mappings: Optional[dict[str, tuple[str, bytes]]] = None,
                        ending: bool = False) -> dict[str, Any]:
        ident = self.identity
        mappings: dict[str, Any] = {}
        for destination, content in (file_mappings or {}).values():
            map_id = self.tokens.add_file_mapping(destination, content)
            entry = {"jwt_token": self.tokens.mint("file_map", {"file_map_id": map_id}),
                     "destination": destination, "is_readable": True, "is_writable": False,
                     "is_executable": False}
            if ending:
                entry["attached_object"] = {}  # [inferred] shape
            mappings[map_id] = entry
        return {"username": ident.username, "kasm_id": ident.kasm_id, "user_id": ident.user_id,
                "create_local_account": create_local_account, "jwt": self.session_token(),
                "file_mappings": mappings, "storage_mappings": {}, "user_groups": []}

    def session_call(self, which: str, **options: Any) -> AgentResponse:
        payload = self.session_payload(ending=which == "session_end", **options)
        return self.request("POST", f"/{which}", self.session_token(),
                            json.dumps(payload).encode(), "application/json")

    def upload(self, path: str, chunk_size: int = UPLOAD_CHUNK,
               progress: Optional[Callable[[int, int, AgentResponse], None]] = None
               ) -> list[AgentResponse]:
        total = os.path.getsize(path)
        chunks = max(1, math.ceil(total / chunk_size))
        dzuuid, token = str(uuid.uuid4()), self.user_token()
        responses: list[AgentResponse] = []
        with open(path, "rb") as handle:
            for index in range(chunks):
                offset = index * chunk_size
                handle.seek(offset)
                fields_ = [("dzuuid", dzuuid), ("dzchunkindex", str(index)),
                           ("dztotalfilesize", str(total)), ("dzchunksize", str(chunk_size)),
                           ("dztotalchunkcount", str(chunks)),
                           ("dzchunkbyteoffset", str(offset))]
                body, ctype = encode_multipart(fields_, os.path.basename(path),
                                               handle.read(chunk_size))
                response = self.request("POST", "/upload", token, body, ctype)
                responses.append(response)
                if progress:
                    progress(index, chunks, response)
                if not response.ok:
                    break
        return responses

    def listing(self, show_hidden: bool = False) -> AgentResponse:
        suffix = "?show_hidden=1" if show_hidden else ""
        return self.request("GET", f"/Downloads/Downloads/{suffix}", self.user_token())

    def download(self, name: str) -> AgentResponse:
        return self.request("GET", "/Downloads/Downloads/" + quote(name), self.user_token())

    def screenshot(self, width: int = 300) -> AgentResponse:
        return self.request("POST", f"/screenshot?width={int(width)}", self.user_token())


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

AGENT_ACTIONS = ("session_start", "session_end", "healthcheck", "upload", "list", "download",
                 "screenshot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kasm_sim.py",
                                     description="Kasm deployment simulator (docs/simulator.md)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the deployment API until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="API port (0 = ephemeral)")
    serve.add_argument("--control-port", type=int, default=0,
                       help="control API port (0 = ephemeral, -1 = off)")
    serve.add_argument("--state-dir", help="where sim.json and the PEM files go (default: temp)")
    serve.add_argument("--keys-dir", help="load keys from / save keys to this directory "
                                          "(share it between instances for failover)")
    serve.add_argument("--plain-http", action="store_true", help="HTTP instead of HTTPS")
    serve.add_argument("--server-id", default="")
    serve.add_argument("--exponent", type=int, default=3, choices=(3, 65537),
                       help="public exponent of the JWT signing key")
    serve.add_argument("--agent-key-exponent", type=int, default=3, choices=(3, 65537))
    serve.add_argument("--token-lifetime", type=int, default=LIFETIME_AGENT)
    serve.add_argument("--grace", type=int, default=DEFAULT_GRACE)
    serve.add_argument("--multi-user", action="store_true")
    serve.add_argument("--user-sso", action="store_true")
    serve.add_argument("--refresh-reply-key", choices=TOKEN_REPLY_KEYS,
                       default="agent_jwt_token")
    serve.add_argument("--refresh-reply-nested", action="store_true")
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.add_argument("-q", "--quiet", action="store_true", help="warnings only")

    call = sub.add_parser("agent-call", help="play the deployment calling the agent")
    call.add_argument("--agent", required=True, help="e.g. https://127.0.0.1:4902")
    call.add_argument("action", choices=AGENT_ACTIONS)
    call.add_argument("arg", nargs="?", help="FILE for upload, NAME for download")
    where = call.add_mutually_exclusive_group(required=True)
    where.add_argument("--state-dir", help="a running simulator's state dir (mints tokens)")
    where.add_argument("--control", help="a running simulator's control URL")
    call.add_argument("--username", default="kasm_user", help="Windows account")
    call.add_argument("--kasm-username", default="")
    call.add_argument("--user-id", default="")
    call.add_argument("--kasm-id", default="")
    call.add_argument("--server-id", default="", help="default: the simulator's")
    call.add_argument("--create-local-account", action="store_true")
    call.add_argument("--file-mapping", action="append", default=[], metavar="DEST=TEXT",
                      help="session_start/end: a file mapping served by the simulator")
    call.add_argument("--width", type=int, default=300, help="screenshot width")
    call.add_argument("--chunk-size", type=int, default=UPLOAD_CHUNK)
    call.add_argument("--show-hidden", action="store_true")
    call.add_argument("-o", "--output", help="where download/screenshot is saved")
    call.add_argument("--ca-file", help="verify the agent's certificate (Kasm does not)")
    call.add_argument("--token-in-query", action="store_true", help="?token= instead of Bearer")
    call.add_argument("--timeout", type=float, default=30.0)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s kasm_sim %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(level)


def cmd_serve(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose, args.quiet)
    config = SimConfig(host=args.host, tls=not args.plain_http, server_id=args.server_id,
                       signing_exponent=args.exponent, agent_key_exponent=args.agent_key_exponent,
                       token_lifetime=args.token_lifetime, grace=args.grace,
                       multi_user=args.multi_user, user_sso=args.user_sso,
                       refresh_reply_key=args.refresh_reply_key,
                       refresh_reply_nested=args.refresh_reply_nested)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sim = KasmSimulator(config, port=args.port,
                        control_port=None if args.control_port < 0 else args.control_port,
                        state_dir=args.state_dir, keys_dir=args.keys_dir)
    sim.start()
    try:
        print(f"kasm_sim serving {sim.api_url} (control {sim.control_url or 'off'}); "
              f"state {sim.sim_json_file}", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
    LOG.info("stopped")
    return 0


def _token_source(args: argparse.Namespace) -> tuple[ControlClient, str]:
    """(control client, default server id) of the simulator named on the command line."""
    if args.control:
        client = ControlClient(args.control)
        return client, client.state()["server_id"]
    info = read_sim_json(args.state_dir)
    if not info.get("control_url"):
        raise ValueError("that simulator runs without a control port")
    return ControlClient(info["control_url"]), info["server_id"]


def _parse_mappings(specs: list[str]) -> dict[str, tuple[str, bytes]]:
    mappings: dict[str, tuple[str, bytes]] = {}
    for index, spec in enumerate(specs):
        destination, sep, text = spec.partition("=")
        if not sep or not destination:
            raise ValueError(f"--file-mapping wants DEST=TEXT, got {spec!r}")
        mappings[str(index)] = (destination, text.encode())
    return mappings


def _report(action: str, response: AgentResponse, detail: str = "") -> None:
    print(f"{action}: HTTP {response.status}{' - ' + detail if detail else ''}")
    if not response.ok:
        print(redact(response.text()[:2000]), file=sys.stderr)


def _run_agent_action(client: AgentClient, args: argparse.Namespace) -> bool:
    action = args.action
    if action in ("session_start", "session_end"):
        response = client.session_call(action, create_local_account=args.create_local_account,
                                       file_mappings=_parse_mappings(args.file_mapping))
        _report(action, response, redact(response.text()[:200]))
        return response.ok
    if action == "healthcheck":
        response = client.healthcheck()
        _report(action, response, response.text()[:200])
        return response.ok
    if action == "upload":
        def progress(index: int, total: int, resp: AgentResponse) -> None:
            _report(f"upload chunk {index + 1}/{total}", resp, resp.text()[:200])
        responses = client.upload(args.arg, args.chunk_size, progress)
        return bool(responses) and all(r.ok for r in responses)
    if action == "list":
        response = client.listing(args.show_hidden)
        names = parse_listing(response.text()) if response.ok else []
        _report(action, response, f"{len(names)} entries")
        for name in names:
            print(f"  {name}")
        return response.ok
    if action == "download":
        response = client.download(args.arg)
        return _save(action, response, args.output or os.path.basename(args.arg) or "download")
    response = client.screenshot(args.width)
    return _save(action, response, args.output or "screenshot.png")


def _save(action: str, response: AgentResponse, path: str) -> bool:
    if not response.ok:
        _report(action, response)
        return False
    write_file(path, response.body)
    size = png_size(response.body)
    shape = f", PNG {size[0]}x{size[1]}" if size else ""
    digest = hashlib.sha256(response.body).hexdigest()[:16]
    _report(action, response, f"saved {len(response.body)} bytes{shape} to {path} "
                              f"(sha256 {digest}...)")
    return True


def cmd_agent_call(args: argparse.Namespace) -> int:
    if args.action in ("upload", "download") and not args.arg:
        print(f"agent-call {args.action} needs a {'FILE' if args.action == 'upload' else 'NAME'}",
              file=sys.stderr)
        return 2
    try:
        tokens, default_server = _token_source(args)
        identity = AgentIdentity(args.username, args.kasm_username, args.user_id, args.kasm_id,
                                 args.server_id or default_server)
        client = AgentClient(args.agent, tokens, identity, ca_file=args.ca_file,
                             timeout=args.timeout, token_in_query=args.token_in_query)
        return 0 if _run_agent_action(client, args) else 1
    except (OSError, ValueError, RuntimeError, http.client.HTTPException) as exc:
        print(f"agent-call {args.action} failed: {redact(str(exc))}", file=sys.stderr)
        return 2


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    return cmd_agent_call(args)


if __name__ == "__main__":
    sys.exit(main())
