#!/usr/bin/python3
"""test_bad_helper.py - a session helper that sends garbage or an oversized frame is dropped
by the agent, which carries on: it logs why, restarts that helper with growing delays,
keeps its memory flat (the 1 GiB frame is never allocated), answers HTTPS, and serves the
same user's other session through its good helper (bad_helper.py execs the real one there).

Usage: test_bad_helper.py --bin-dir DIR
"""
import getpass
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_api  # noqa: E402
from test_api import Agent, pem_private, pem_public, rsa_key, self_signed, user_token  # noqa: E402
from test_helper_routes import BOUNDARY, dz_fields, multipart  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = open(os.path.join(HERE, "..", "..", "VERSION")).read().strip()
READY_RE = re.compile(r"session 2 \([^)]+\): helper pid (\d+) is ready")
RESTART_RE = re.compile(r"session 1 \([^)]+\): helper (.*); restarting it in (\d+) ms")
TIMEOUT = 30


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


class BadHelperTest(unittest.TestCase):
    def run_mode(self, mode, reason):
        tmp = tempfile.mkdtemp(prefix=f"kasm-badhelper-{mode}-")
        self.addCleanup(shutil.rmtree, tmp, True)
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        me = getpass.getuser()
        sessions = os.path.join(tmp, "sessions")
        with open(sessions, "w") as f:
            f.write(f"1 {me} console\n2 {me}\n")
        saved = dict(os.environ)
        os.environ.update(HOME=home, KASM_SESSION_POLL_MS="200", KASM_TEST_BAD_MODE=mode,
                          KASM_TEST_GOOD_SESSION="2", KASM_TEST_VERSION=VERSION,
                          KASM_TEST_REAL_HELPER=os.path.join(test_api.BIN_DIR, "session_helper"))
        jwt_key, skey = rsa_key(), rsa_key()
        try:
            agent = Agent(tmp, "agent", pem_public(jwt_key), server_key=pem_private(skey),
                          server_cert=self_signed(skey),
                          extra=f"session_helper: {os.path.join(HERE, 'bad_helper.py')}\n"
                                f"sessions_file: {sessions}\n")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.addCleanup(agent.stop)
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            log = agent.log()
            if len(RESTART_RE.findall(log)) >= 2 and READY_RE.search(log):
                break
            self.assertIsNone(agent.proc.poll(), "the agent died:\n" + log[-3000:])
            time.sleep(0.1)
        log = agent.log()
        restarts = RESTART_RE.findall(log)
        self.assertGreaterEqual(len(restarts), 2, log[-3000:])
        # why the channel was dropped is in the log (the restart line names it unless the
        # helper's exit was seen first)
        self.assertIn(reason, log)
        delays = [int(d) for _, d in restarts]
        self.assertGreater(delays[1], delays[0], f"the restart delays do not grow: {delays}")
        self.assertTrue(READY_RE.search(log), "the good helper of session 2 is not ready")
        # the agent carries on: HTTPS answers, memory is flat, the good helper serves uploads
        token = user_token(jwt_key, system_username=me)
        status, _, _ = agent.request("GET", "/__healthcheck", token)
        self.assertEqual(status, 200)
        self.assertLess(vm_hwm_kib(agent.proc.pid), 256 * 1024, "the agent's memory grew")
        dzuuid, data = str(uuid.uuid4()), os.urandom(30_000)
        for i in range(3):
            body = multipart(dz_fields(dzuuid, i, len(data), 10_000, i * 10_000, 3), "ok.bin",
                             data[i * 10_000:(i + 1) * 10_000])
            status, _, payload = agent.request(
                "POST", "/upload", token, body=body,
                headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY})
            self.assertEqual((status, payload), (200, b"uploaded Chunk"))
        with open(os.path.join(home, "Downloads", "ok.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertIsNone(agent.proc.poll())

    def test_garbage_instead_of_hello(self):
        self.run_mode("garbage", "not a kasm-open-agent channel")

    def test_oversized_frame_after_hello(self):
        self.run_mode("oversized", "exceeds its limit")


def main():
    if "--bin-dir" not in sys.argv:
        sys.exit(__doc__)
    i = sys.argv.index("--bin-dir")
    test_api.BIN_DIR = os.path.abspath(sys.argv[i + 1])
    del sys.argv[i:i + 2]
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
