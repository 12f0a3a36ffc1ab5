#!/usr/bin/python3
"""cfg_oracle.py - PyYAML as an independent oracle for common/cfg.c.

    cfg_oracle.py GEN DATA_DIR

GEN is cfg_oracle_gen (load IN, print what was read as JSON, save OUT). Two directions:
  1. PyYAML writes Kasm-style configs (the way Kasm's Python agent would, in several dump
     styles); cfg must read every value right, and what cfg saves must load in PyYAML to the
     same values, unknown keys included.
  2. DATA_DIR/oracle_in.yaml is saved by cfg with awkward values set (--tricky); PyYAML must
     read the awkward values exactly, and every unknown key must mean what it meant in the
     input.
Exit 0 when all checks pass; otherwise each failure is printed and the exit code is 1.
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile

import yaml

FAILURES = []

OUR_DEFAULTS = {
    "listen_address": "",
    "heartbeat_interval": 30,
    "api_verify_cert": False,
    "api_ca_file": "",
    "jwt_leeway": 60,
    "admin_socket": "/run/kasm-open-agent/admin.sock",
    "max_request_header_bytes": 16384,
    "max_json_body_bytes": 1048576,
    "request_timeout_ms": 30000,
    "max_concurrent_uploads": 8,
    "num_threads": 16,
    "screenshot_cache_seconds": 10,
    "session_helper": "",
    "sessions_file": "",
    "script_timeout": 300,
    "logoff_on_session_end": False,
    "log_forward_level": "info",
}

KASM_KEYS = [
    "ssl", "port", "server_private_key", "server_public_key", "jwt_public_key", "upload_dir",
    "download_dir", "log_file", "multi_user", "user_sso", "api_host", "api_port", "registered",
    "script_path", "server_id", "debug", "agent_jwt_token",
]
KNOWN = set(KASM_KEYS) | set(OUR_DEFAULTS)


def check(cond, what):
    if not cond:
        FAILURES.append(what)


def run_gen(gen, inp, out, tricky=False):
    args = [gen, inp, out] + (["--tricky"] if tricky else [])
    p = subprocess.run(args, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        FAILURES.append("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
        return None
    return json.loads(p.stdout)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def kasm_style_source():
    """A config as Kasm's Python agent could hold it, plus keys we do not know."""
    return {
        "ssl": True,
        "port": 4902,
        "server_private_key": "C:\\Program Files\\Kasm\\certs\\key.pem",
        "server_public_key": "C:\\Program Files\\Kasm\\certs\\cert.pem",
        "jwt_public_key": "C:\\Program Files\\Kasm\\certs\\jwt.pem",
        "upload_dir": "C:\\Program Files\\Kasm\\Upload",
        "download_dir": "C:\\Program Files\\Kasm\\Download",
        "log_file": "C:\\Program Files\\Kasm\\log #1: agent.log",
        "multi_user": False,
        "user_sso": True,
        "api_host": "kasm.example.com",
        "api_port": 443,
        "registered": True,
        "script_path": "C:\\Program Files\\Kasm\\scripts",
        "server_id": "00000000000000000000000000000042",
        "debug": False,
        "agent_jwt_token": "eyJhbGciOiJSUzI1NiJ9.eyJzZXJ2ZXJfaWQiOiI0MiJ9.c2ln",
        "token_expiry": datetime.datetime(2031, 2, 3, 4, 5, 6),
        "refresh": {"attempts": 3, "ratio": 0.25, "last": None, "ok": True,
                    "hosts": ["a", "b: c", "#d", "  e", "\u00fcn\u00efc\u00f8d\u00e9 \u2603"]},
        "nested": {"l1": {"l2": {"l3": [1, [2, [3, {"k": "v"}]]]}}},
        "numeric_string": "0042",
        "bool_string": "yes",
        "null_string": "null",
        "multi_line": "first\nsecond\ttabbed\n",
        "empty_list": [],
        "empty_map": {},
        12345: "an integer key",
    }


def direction_pyyaml_to_cfg(gen, tmp):
    src = kasm_style_source()
    styles = [
        ("block", dict(default_flow_style=False, allow_unicode=True)),
        ("flow", dict(default_flow_style=True, allow_unicode=False)),
        ("ascii-wide", dict(default_flow_style=None, allow_unicode=False, width=20)),
    ]
    for name, opts in styles:
        inp = os.path.join(tmp, "kasm-%s.yaml" % name)
        out = os.path.join(tmp, "kasm-%s.out.yaml" % name)
        with open(inp, "w", encoding="utf-8") as f:
            yaml.safe_dump(src, f, **opts)
        got = run_gen(gen, inp, out)
        if got is None:
            continue
        for k in KASM_KEYS:
            want = [src[k]] if k == "api_host" else src[k]
            check(got[k] == want, "%s: cfg read %s=%r, PyYAML wrote %r" % (name, k, got[k], want))
        for k, v in OUR_DEFAULTS.items():
            check(got[k] == v, "%s: default %s=%r, want %r" % (name, k, got[k], v))
        unknown = [k for k in src if k not in KNOWN]
        check(sorted(got["_unknown"]) == sorted(str(k) for k in unknown),
              "%s: unknown keys %r, want %r" % (name, got["_unknown"], unknown))
        back = load_yaml(out)
        for k, v in src.items():
            check(k in back and back[k] == v,
                  "%s: after cfg_save, PyYAML reads %r=%r, want %r" % (name, k, back.get(k), v))
        for k, v in OUR_DEFAULTS.items():
            check(back.get(k) == v, "%s: saved %s=%r, want %r" % (name, k, back.get(k), v))
        want_keys = set(src) | set(OUR_DEFAULTS)
        check(set(back) == want_keys,
              "%s: saved keys differ: %r" % (name, sorted(map(str, set(back) ^ want_keys))))


TRICKY = {
    "server_id": "id: with colon # and hash",
    "upload_dir": "C:\\Users\\Public\\Kasm Upload\\\u00fcn\u00efc\u00f8d\u00e9 \u2603",
    "download_dir": "  leading spaces",
    "log_file": "C:\\logs\\agent #1.log",
    "listen_address": "'quoted' \"double\"",
    "api_ca_file": "line1\nline2\ttab",
    "script_path": "true",
    "api_host": ["a.example.com", "b.example.com"],
    "port": 4903,
    "debug": True,
    "agent_jwt_token": "eyJ.tricky.token",
}


def direction_cfg_to_pyyaml(gen, data, tmp):
    inp = os.path.join(data, "oracle_in.yaml")
    out = os.path.join(tmp, "oracle_out.yaml")
    src = load_yaml(inp)
    got = run_gen(gen, inp, out, tricky=True)
    if got is None:
        return
    # What cfg read from the fixture, against what PyYAML reads from it.
    for k in KASM_KEYS:
        want = src[k]
        if k == "api_host":
            want = [h.strip() for h in want.split(",")]
        check(got[k] == want, "fixture: cfg read %s=%r, PyYAML reads %r" % (k, got[k], want))
    back = load_yaml(out)
    for k, v in TRICKY.items():
        check(back.get(k) == v, "tricky: PyYAML reads %s=%r, want %r" % (k, back.get(k), v))
    for k in KASM_KEYS:
        if k not in TRICKY and k != "api_host":
            check(back.get(k) == src[k], "fixture: saved %s=%r, want %r" % (k, back.get(k), src[k]))
    for k, v in src.items():
        if k not in KNOWN:
            check(k in back and back[k] == v,
                  "fixture: unknown %r became %r, want %r" % (k, back.get(k), v))
    want_keys = set(src) | KNOWN
    check(set(back) == want_keys, "fixture: saved keys differ: %r" % (set(back) ^ want_keys))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    gen, data = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        direction_pyyaml_to_cfg(gen, tmp)
        direction_cfg_to_pyyaml(gen, data, tmp)
    for f in FAILURES:
        print("FAIL:", f)
    print("cfg oracle: %d failure(s)" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
