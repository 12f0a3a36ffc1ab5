"""deploy_fixture.py - shared helpers of test_register.py and test_lifecycle.py: the agent
binary, temporary agent folders with a config.yaml, the deployment simulator in process
(tests/sim/kasm_sim.py), and waiting for log lines.

Run by Debian's /usr/bin/python3 (PyJWT, cryptography and PyYAML). The agent's binary folder
comes from --bin-dir, given by ctest.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
import kasm_sim as K  # noqa: E402  (path set above)

BIN_DIR = None
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def parse_bin_dir():
    """Takes --bin-dir DIR out of sys.argv (the rest goes to unittest)."""
    global BIN_DIR
    if "--bin-dir" in sys.argv:
        i = sys.argv.index("--bin-dir")
        BIN_DIR = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if not BIN_DIR:
        sys.exit("usage: %s --bin-dir DIR [unittest options]" % sys.argv[0])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def agent_bin():
    return os.path.join(BIN_DIR, "agent")


class AgentDir:
    """A temporary install folder: config.yaml, certs/, the agent's log."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kasm-deploy-test-")
        self.cfg = os.path.join(self.dir, "config.yaml")
        self.log = os.path.join(self.dir, "agent.log")
        self.token_file = os.path.join(self.dir, "registration_token.txt")
        self.proc = None
        self.out = None

    def write_config(self, **keys):
        # A free port for the agent's own HTTPS API: other tests on this machine may hold 4902.
        base = {"log_file": self.log, "upload_dir": os.path.join(self.dir, "Upload"),
                "custom_unknown_key": "kept", "port": free_port(),
                # its own admin channel: other tests run agents at the same time
                "admin_socket": os.path.join(self.dir, "admin.sock")}
        base.update(keys)
        with open(self.cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump(base, f)

    def config(self):
        with open(self.cfg, encoding="utf-8") as f:
            return yaml.safe_load(f)

    def config_text(self):
        with open(self.cfg, encoding="utf-8") as f:
            return f.read()

    def read_log(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def register(self, host, port, token, *extra):
        p = subprocess.run([agent_bin(), "/S", "--register-host", host, "--register-port",
                            str(port), "--register-token", token, "--cfg", self.cfg] +
                           list(extra), capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def start(self, heartbeat_ms=200):
        env = dict(os.environ, KASM_HEARTBEAT_MS=str(heartbeat_ms))
        self.out = open(os.path.join(self.dir, "stdout.txt"), "w", encoding="utf-8")
        self.proc = subprocess.Popen([agent_bin(), "--cfg", self.cfg], stdout=self.out,
                                     stderr=subprocess.STDOUT, env=env)
        return self.proc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.out:
            self.out.close()
            self.out = None

    def console(self):
        path = os.path.join(self.dir, "stdout.txt")
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=15, count=1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.read_log().count(needle) >= count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the agent exited ({self.proc.returncode}) before "
                                     f"logging {needle!r}:\n{self.read_log()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} x{count} not in the agent log within {timeout} s:\n"
                             f"{self.read_log()[-3000:]}")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(pred, timeout=15, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached within {timeout} s")


def assert_no_tokens(testcase, text, tokens=()):
    """No JWT and none of the given secrets appears in text."""
    testcase.assertIsNone(JWT_RE.search(text), "a JWT appears in the agent's output")
    for t in tokens:
        if t:
            testcase.assertNotIn(t, text, "a token appears in the agent's output")
