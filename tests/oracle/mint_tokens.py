#!/usr/bin/python3
"""mint_tokens.py - an independent token oracle for the JWT verifier (common/jwt.c).

Uses PyJWT and python3-cryptography (Debian packages; run with /usr/bin/python3) to make
keys and a corpus of tokens - valid ones and every attack the verifier must refuse - each
with the verdict an RFC 7515/7519-conforming, RS256-by-default verifier must give. The C
side (`test_jwt --oracle DIR`) verifies every token and compares.

Usage: mint_tokens.py OUTDIR

Writes into OUTDIR:
  *.pem            public keys in three forms: SubjectPublicKeyInfo (.spki.pem), PKCS#1
                   (.pkcs1.pem, RSA only) and a self-signed X.509 certificate (.cert.pem)
  manifest.txt     one case per line, tab-separated (the token never holds a tab):
                   name verdict keyfile algs now leeway string-claims authorizations token
                   verdict: ok | parse | auth | expired | too_large
                   algs: "default" or a comma list (RS256,PS256)
                   string-claims: k=v;k2=v2 or "-" (checked on accepted tokens)
                   authorizations: 50,70 or "-" (each must be present on accepted tokens)

Times are fixed when the corpus is made (NOW below is written into every line), so the
verdicts do not depend on when the test runs. Private keys stay in memory only.

The script checks itself against PyJWT where PyJWT can judge: every "ok" token must decode
with PyJWT (exp checked against the real clock only when the verdict is time-independent),
and every forged signature must be refused by PyJWT too.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

NOW = int(time.time())
LEEWAY = 60
MAX_TOKEN = 16384
SERVER_ID = "0123456789abcdef0123456789abcdef"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def split(token: str):
    return token.split(".")


class Keys:
    def __init__(self, outdir):
        self.outdir = outdir
        self.priv = {}
        self.files = {}

    def add_rsa(self, name, e, bits=2048):
        key = rsa.generate_private_key(public_exponent=e, key_size=bits)
        self.priv[name] = key
        pub = key.public_key()
        self._write(name + ".spki.pem", pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self._write(name + ".pkcs1.pem", pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
        self._write(name + ".cert.pem", self._cert(key))

    def add_ec(self, name):
        key = ec.generate_private_key(ec.SECP256R1())
        self.priv[name] = key
        self._write(name + ".spki.pem", key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self._write(name + ".cert.pem", self._cert(key))

    def spki_pem(self, name) -> bytes:
        with open(os.path.join(self.outdir, name + ".spki.pem"), "rb") as f:
            return f.read()

    def pub(self, name):
        return self.priv[name].public_key()

    def _cert(self, key) -> bytes:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kasm-oracle")])
        start = datetime.datetime(2020, 1, 1)
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(days=365 * 30))
                .sign(key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    def _write(self, fname, data):
        with open(os.path.join(self.outdir, fname), "wb") as f:
            f.write(data)


class Corpus:
    def __init__(self, keys):
        self.keys = keys
        self.lines = []
        self.names = set()

    def add(self, name, verdict, keyfile, token, algs="default", now=NOW, leeway=LEEWAY,
            strs=None, auths=None):
        assert name not in self.names, name
        assert verdict in ("ok", "parse", "auth", "expired", "too_large"), verdict
        assert "\t" not in token and "\n" not in token and "\r" not in token, name
        self.names.add(name)
        s = ";".join("%s=%s" % kv for kv in (strs or {}).items()) or "-"
        a = ",".join(str(x) for x in (auths or [])) or "-"
        self.lines.append("\t".join([name, verdict, keyfile, algs, str(now), str(leeway), s, a,
                                     token]))

    def write(self, path):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("# made by tests/oracle/mint_tokens.py with PyJWT %s; NOW=%d\n"
                    % (jwt.__version__, NOW))
            for line in self.lines:
                f.write(line + "\n")


def sign_input(keys, keyname, alg, signing_input: bytes) -> bytes:
    """Signs with cryptography directly (for hand-built headers/payloads)."""
    key = keys.priv[keyname]
    h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if alg.startswith("RS"):
        return key.sign(signing_input, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        return key.sign(signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size),
                        h)
    if alg.startswith("ES"):
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(h)))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise ValueError(alg)


def raw_token(keys, keyname, alg, header_text: str, payload_text: str) -> str:
    """A token from literal JSON texts (to express what PyJWT would never produce)."""
    si = b64u(header_text.encode("utf-8")) + "." + b64u(payload_text.encode("utf-8"))
    sig = sign_input(keys, keyname, alg, si.encode("ascii")) if keyname else b""
    return si + "." + b64u(sig)


def pyjwt_accepts(token, pubkey, alg, verify_exp) -> bool:
    try:
        jwt.decode(token, pubkey, algorithms=[alg],
                   options={"verify_exp": verify_exp, "verify_nbf": verify_exp})
        return True
    except jwt.InvalidTokenError:
        return False


def build(outdir):
    keys = Keys(outdir)
    keys.add_rsa("rsa", 65537)
    keys.add_rsa("rsa_e3", 3)
    keys.add_rsa("rsa_other", 65537)
    keys.add_ec("ec")
    keys.add_ec("ec_other")
    c = Corpus(keys)
    pem = lambda name: keys.priv[name]

    agent = {"server_id": SERVER_ID, "authorizations": [70], "exp": NOW + 4 * 3600}
    session = {"server_id": SERVER_ID, "kasm_id": "f00dfeed", "profile_path": "s3://bucket/p",
               "authorizations": [50], "exp": NOW + 20 * 60}
    user = {"system_username": "jdoe@corp.example", "username": "J\u00fcrgen \u00c5str\u00f6m",
            "user_id": "8a4b9c0d", "authorizations": [100], "exp": NOW + 86400}
    agent_strs = {"server_id": SERVER_ID}

    # --- Valid tokens: every key form, e = 3, the Kasm token shapes ---------------------
    for keyname in ("rsa", "rsa_e3"):
        tok = jwt.encode(agent, pem(keyname), algorithm="RS256")
        assert pyjwt_accepts(tok, keys.pub(keyname), "RS256", True)
        for form in ("spki", "pkcs1", "cert"):
            c.add("%s_rs256_%s" % (keyname, form), "ok", "%s.%s.pem" % (keyname, form), tok,
                  strs=agent_strs, auths=[70])
        c.add("%s_wrong_key" % keyname, "auth",
              "rsa_other.spki.pem", tok)
    for name, claims, strs, auths in (
            ("session", session, {"kasm_id": "f00dfeed", "profile_path": "s3://bucket/p"}, [50]),
            ("user", user, {"system_username": "jdoe@corp.example", "user_id": "8a4b9c0d",
                            "username": "J\u00fcrgen \u00c5str\u00f6m"}, [100]),
            ("admin_multi", {"authorizations": [100, 200], "exp": NOW + 60}, {}, [100, 200])):
        tok = jwt.encode(claims, pem("rsa"), algorithm="RS256")
        c.add("rs256_" + name, "ok", "rsa.spki.pem", tok, strs=strs, auths=auths)
    tok = jwt.encode(agent, pem("rsa"), algorithm="RS256", headers={"kid": "k1"})
    c.add("rs256_with_kid", "ok", "rsa.cert.pem", tok, strs=agent_strs, auths=[70])
    tok = jwt.encode(agent, pem("rsa"), algorithm="RS256", headers={"typ": None})
    c.add("rs256_no_typ", "ok", "rsa.spki.pem", tok, strs=agent_strs)

    # --- ES256 ---------------------------------------------------------------------------
    tok = jwt.encode(agent, pem("ec"), algorithm="ES256")
    assert pyjwt_accepts(tok, keys.pub("ec"), "ES256", True)
    c.add("ec_es256_spki", "ok", "ec.spki.pem", tok, strs=agent_strs, auths=[70])
    c.add("ec_es256_cert", "ok", "ec.cert.pem", tok, strs=agent_strs, auths=[70])
    c.add("ec_es256_wrong_key", "auth", "ec_other.spki.pem", tok)
    c.add("ec_es256_vs_rsa_key", "auth", "rsa.spki.pem", tok, algs="RS256,ES256")
    h, p, s = split(tok)
    sig = base64.urlsafe_b64decode(s + "==")
    # r and s swapped; the signature DER-encoded (what a naive signer emits).
    c.add("ec_es256_rs_swapped", "auth", "ec.spki.pem", "%s.%s.%s" % (h, p, b64u(sig[32:] +
                                                                                 sig[:32])))
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    c.add("ec_es256_der_sig", "auth", "ec.spki.pem", "%s.%s.%s" % (h, p, b64u(der)))
    c.add("ec_es256_zero_sig", "auth", "ec.spki.pem", "%s.%s.%s" % (h, p, b64u(bytes(64))))

    # --- Other RSA algorithms: only when allowed --------------------------------------------
    for alg in ("RS384", "RS512", "PS256"):
        tok = jwt.encode(agent, pem("rsa"), algorithm=alg)
        assert pyjwt_accepts(tok, keys.pub("rsa"), alg, True)
        c.add("rsa_%s_default" % alg.lower(), "auth", "rsa.spki.pem", tok)
        c.add("rsa_%s_allowed" % alg.lower(), "ok", "rsa.spki.pem", tok, algs="RS256," + alg,
              strs=agent_strs, auths=[70])
        c.add("rsa_e3_%s_allowed" % alg.lower(), "ok", "rsa_e3.spki.pem",
              jwt.encode(agent, pem("rsa_e3"), algorithm=alg), algs=alg)
        c.add("rsa_%s_vs_ec_key" % alg.lower(), "auth", "ec.spki.pem", tok, algs="ES256," + alg)
    tok = jwt.encode(agent, pem("rsa"), algorithm="RS256")
    c.add("rsa_rs256_not_in_list", "auth", "rsa.spki.pem", tok, algs="PS256")
    c.add("rsa_rs256_vs_ec_key", "auth", "ec.spki.pem", tok)

    # --- alg none and HMAC key confusion ------------------------------------------------
    payload = b64u_json(agent)
    for variant in ("none", "None", "NONE"):
        hdr = b64u_json({"alg": variant, "typ": "JWT"})
        c.add("alg_%s_unsigned" % variant, "auth", "rsa.spki.pem", "%s.%s." % (hdr, payload),
              algs="RS256,RS384,RS512,PS256")
        good_sig = split(jwt.encode(agent, pem("rsa"), algorithm="RS256"))[2]
        c.add("alg_%s_with_sig" % variant, "auth", "rsa.spki.pem",
              "%s.%s.%s" % (hdr, payload, good_sig))
    tok = jwt.encode(agent, None, algorithm="none")  # PyJWT's own unsecured token
    assert not pyjwt_accepts(tok, keys.pub("rsa"), "RS256", True)
    c.add("pyjwt_none", "auth", "rsa.spki.pem", tok)
    for keyfile in ("rsa.spki.pem", "rsa.pkcs1.pem", "rsa.cert.pem", "ec.spki.pem"):
        with open(os.path.join(outdir, keyfile), "rb") as f:
            secret = f.read()
        for alg, fn in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384),
                        ("HS512", hashlib.sha512)):
            si = b64u_json({"alg": alg, "typ": "JWT"}) + "." + payload
            mac = hmac.new(secret, si.encode("ascii"), fn).digest()
            tok = si + "." + b64u(mac)
            c.add("hmac_confusion_%s_%s" % (alg.lower(), keyfile.replace(".", "_")), "auth",
                  keyfile, tok, algs="RS256,RS384,RS512,PS256,ES256")
            # The same MAC over a secret without the trailing newline.
            mac = hmac.new(secret.strip(), si.encode("ascii"), fn).digest()
            c.add("hmac_confusion_strip_%s_%s" % (alg.lower(), keyfile.replace(".", "_")),
                  "auth", keyfile, si + "." + b64u(mac))

    # --- Tampering ----------------------------------------------------------------------
    for keyname in ("rsa", "rsa_e3"):
        tok = jwt.encode(agent, pem(keyname), algorithm="RS256")
        h, p, s = split(tok)
        forged_p = b64u_json(dict(agent, authorizations=[200]))
        forged_h = b64u_json({"alg": "RS256", "typ": "JWS"})
        for label, t in (("payload", "%s.%s.%s" % (h, forged_p, s)),
                         ("header", "%s.%s.%s" % (forged_h, p, s))):
            assert not pyjwt_accepts(t, keys.pub(keyname), "RS256", False)
            c.add("%s_tampered_%s" % (keyname, label), "auth", keyname + ".spki.pem", t)
        sig = bytearray(base64.urlsafe_b64decode(s + "=="))
        for i in (0, 100, len(sig) - 1):
            bad = bytearray(sig)
            bad[i] ^= 0x01
            t = "%s.%s.%s" % (h, p, b64u(bytes(bad)))
            assert not pyjwt_accepts(t, keys.pub(keyname), "RS256", False)
            c.add("%s_sig_bit_%d" % (keyname, i), "auth", keyname + ".spki.pem", t)
        c.add("%s_sig_short" % keyname, "auth", keyname + ".spki.pem",
              "%s.%s.%s" % (h, p, b64u(bytes(sig[:-1]))))
        c.add("%s_sig_long" % keyname, "auth", keyname + ".spki.pem",
              "%s.%s.%s" % (h, p, b64u(bytes(sig) + b"\x00")))
        c.add("%s_sig_leading_zero" % keyname, "auth", keyname + ".spki.pem",
              "%s.%s.%s" % (h, p, b64u(b"\x00" + bytes(sig))))
        c.add("%s_sig_empty" % keyname, "auth", keyname + ".spki.pem", "%s.%s." % (h, p))
        c.add("%s_sig_zero" % keyname, "auth", keyname + ".spki.pem",
              "%s.%s.%s" % (h, p, b64u(bytes(len(sig)))))
        c.add("%s_sig_one" % keyname, "auth", keyname + ".spki.pem",
              "%s.%s.%s" % (h, p, b64u(bytes(len(sig) - 1) + b"\x01")))
        other = split(jwt.encode(dict(agent, exp=NOW + 1), pem(keyname), algorithm="RS256"))[2]
        c.add("%s_sig_of_other_token" % keyname, "auth", keyname + ".spki.pem",
              "%s.%s.%s" % (h, p, other))
    # A PS256 signature labelled RS256 (and the reverse).
    tok = raw_token(keys, "rsa", "PS256", '{"alg":"RS256"}', json.dumps(agent))
    c.add("ps256_sig_labelled_rs256", "auth", "rsa.spki.pem", tok, algs="RS256,PS256")
    tok = raw_token(keys, "rsa", "RS256", '{"alg":"PS256"}', json.dumps(agent))
    c.add("rs256_sig_labelled_ps256", "auth", "rsa.spki.pem", tok, algs="RS256,PS256")

    # --- Times ---------------------------------------------------------------------------
    # Valid while now < exp + leeway (PyJWT's own rule: expired when exp <= now - leeway).
    for off, leeway, verdict in ((-59, 60, "ok"), (-60, 60, "expired"), (-61, 60, "expired"),
                                 (0, 0, "expired"), (1, 0, "ok"), (-3600, 60, "expired"),
                                 (-299, 300, "ok"), (-300, 300, "expired"),
                                 (10 ** 12, 60, "ok")):
        tok = jwt.encode(dict(agent, exp=NOW + off), pem("rsa"), algorithm="RS256")
        c.add("exp_%d_leeway_%d" % (off, leeway), verdict, "rsa.spki.pem", tok, leeway=leeway)
    tok = jwt.encode(dict(agent, exp=NOW - 60 + 0.5), pem("rsa"), algorithm="RS256")
    c.add("exp_fraction_inside", "ok", "rsa.spki.pem", tok)
    tok = jwt.encode(dict(agent, exp=NOW - 61 + 0.5), pem("rsa"), algorithm="RS256")
    c.add("exp_fraction_outside", "expired", "rsa.spki.pem", tok)
    tok = jwt.encode(dict(agent, exp=NOW - 100), pem("rsa_e3"), algorithm="RS256")
    c.add("rsa_e3_expired", "expired", "rsa_e3.cert.pem", tok)
    tok = jwt.encode(dict(agent, exp=NOW - 100), pem("ec"), algorithm="ES256")
    c.add("ec_expired", "expired", "ec.spki.pem", tok)
    no_exp = {k: v for k, v in agent.items() if k != "exp"}
    tok = jwt.encode(no_exp, pem("rsa"), algorithm="RS256")
    assert pyjwt_accepts(tok, keys.pub("rsa"), "RS256", True)  # PyJWT does not require exp...
    c.add("exp_missing", "auth", "rsa.spki.pem", tok)  # ...we do
    for label, value in (("string", str(NOW + 3600)), ("null", None), ("bool", True),
                         ("list", [NOW + 3600]), ("object", {"t": NOW + 3600})):
        tok = raw_token(keys, "rsa", "RS256", '{"alg":"RS256","typ":"JWT"}',
                        json.dumps(dict(agent, exp=value)))
        c.add("exp_%s" % label, "auth", "rsa.spki.pem", tok)
    for off, verdict in ((61, "auth"), (60, "ok"), (0, "ok"), (-3600, "ok")):
        tok = jwt.encode(dict(agent, nbf=NOW + off), pem("rsa"), algorithm="RS256")
        c.add("nbf_%d" % off, verdict, "rsa.spki.pem", tok)
    tok = raw_token(keys, "rsa", "RS256", '{"alg":"RS256"}',
                    json.dumps(dict(agent, nbf=str(NOW))))
    c.add("nbf_string", "auth", "rsa.spki.pem", tok)

    # --- Structure ------------------------------------------------------------------------
    tok = jwt.encode(agent, pem("rsa"), algorithm="RS256")
    h, p, s = split(tok)
    std = lambda x: x.replace("-", "+").replace("_", "/")
    assert std(s) != s, "signature has no - or _ (rerun)"
    c.add("seg_two", "parse", "rsa.spki.pem", "%s.%s" % (h, p))
    c.add("seg_four", "parse", "rsa.spki.pem", "%s.%s.%s.%s" % (h, p, s, s))
    c.add("seg_trailing_dot", "parse", "rsa.spki.pem", tok + ".")
    c.add("seg_leading_dot", "parse", "rsa.spki.pem", "." + tok)
    raw = json.dumps(agent).encode()
    while len(raw) % 3 == 0:
        raw += b" "
    padded = base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    si = b64u_json({"alg": "RS256"}) + "." + padded  # signed with its padding: still refused
    c.add("b64_padding_payload", "parse", "rsa.spki.pem",
          si + "." + b64u(sign_input(keys, "rsa", "RS256", si.encode())))
    c.add("b64_padding_sig", "parse", "rsa.spki.pem", tok + "==")
    c.add("b64_standard_alphabet", "parse", "rsa.spki.pem", "%s.%s.%s" % (h, p, std(s)))
    c.add("b64_space_inside", "parse", "rsa.spki.pem", "%s.%s %s.%s" % (h, p[:10], p[10:], s))
    c.add("b64_trailing_space", "parse", "rsa.spki.pem", tok + " ")
    c.add("b64_leading_space", "parse", "rsa.spki.pem", " " + tok)
    c.add("b64_bad_length", "parse", "rsa.spki.pem", "%s.%sA.%s" % (h, p, s)
          if len(p) % 4 == 0 else "%s.%s.%sA" % (h, p, s))
    # Non-canonical trailing bits: make a payload whose encoding has spare bits, then set one.
    pl = dict(agent)
    while len(b64u_json(pl)) % 4 == 0:
        pl["pad"] = pl.get("pad", "") + "x"
    si = b64u_json({"alg": "RS256"}) + "." + b64u_json(pl)
    good = si + "." + b64u(sign_input(keys, "rsa", "RS256", si.encode()))
    c.add("b64_canonical_control", "ok", "rsa.spki.pem", good)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    hh, pp, ss = split(good)
    last = alphabet.index(pp[-1])
    pp_bad = pp[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(pp_bad + "=" * (-len(pp_bad) % 4)) == \
        base64.urlsafe_b64decode(pp + "=" * (-len(pp) % 4))  # same bytes, other spelling
    c.add("b64_noncanonical_payload", "parse", "rsa.spki.pem", "%s.%s.%s" % (hh, pp_bad, ss))
    # JSON shapes, all correctly signed.
    for label, hdr, body, verdict in (
            ("hdr_array", '["RS256"]', json.dumps(agent), "parse"),
            ("hdr_no_alg", '{"typ":"JWT"}', json.dumps(agent), "parse"),
            ("hdr_alg_number", '{"alg":256}', json.dumps(agent), "parse"),
            ("hdr_typ_number", '{"alg":"RS256","typ":7}', json.dumps(agent), "parse"),
            ("hdr_dup_alg", '{"alg":"RS256","alg":"RS256"}', json.dumps(agent), "parse"),
            ("hdr_crit", '{"alg":"RS256","crit":["exp"]}', json.dumps(agent), "auth"),
            ("hdr_trailing", '{"alg":"RS256"}x', json.dumps(agent), "parse"),
            ("hdr_jwk_ignored", '{"alg":"RS256","jwk":{"kty":"oct","k":"AA"}}', json.dumps(agent),
             "ok"),
            ("pl_array", '{"alg":"RS256"}', "[1]", "parse"),
            ("pl_string", '{"alg":"RS256"}', '"x"', "parse"),
            ("pl_not_json", '{"alg":"RS256"}', "exp=1", "parse"),
            ("pl_dup_exp", '{"alg":"RS256"}',
             '{"exp":%d,"exp":%d}' % (NOW - 3600, NOW + 3600), "parse"),
            ("pl_whitespace", '{"alg":"RS256"}', ' {"exp": %d}\n' % (NOW + 3600), "ok")):
        c.add("json_" + label, verdict, "rsa.spki.pem", raw_token(keys, "rsa", "RS256", hdr, body))

    # --- Size --------------------------------------------------------------------------------
    pad = 11800
    while True:
        tok = jwt.encode(dict(agent, pad="p" * pad), pem("rsa"), algorithm="RS256")
        if len(tok) > MAX_TOKEN:
            break
        under = tok
        pad += 1
    assert MAX_TOKEN - 3 <= len(under) <= MAX_TOKEN
    c.add("size_at_limit", "ok", "rsa.spki.pem", under, strs=agent_strs)
    c.add("size_over_limit", "too_large", "rsa.spki.pem", tok)
    c.add("size_huge_garbage", "too_large", "rsa.spki.pem", "A" * 100000)

    c.write(os.path.join(outdir, "manifest.txt"))
    return len(c.lines)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: mint_tokens.py OUTDIR\n")
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    n = build(outdir)
    print("mint_tokens: %d cases in %s (PyJWT %s)" % (n, outdir, jwt.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
