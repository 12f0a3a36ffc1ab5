#!/usr/bin/python3
"""test_scripts_startup.py - the service-start work of the scripts module
(service/scripts/scr_startup.c) in the running agent against the deployment simulator:
after the first check-in the agent fetches get_server_file_mappings, installs the mappings
whose destination is under the scripts folder (admin-only, contents fetched with each
mapping's own token), refuses destinations that escape it, leaves .reg files to Windows, and
runs the service_startup scripts with server_id, jwt, api_host and api_port; a failing
script's output is logged without the token; a hanging script is killed when the agent stops.

Usage: test_scripts_startup.py --bin-dir DIR [unittest options]
"""
import os
import stat
import unittest

import deploy_fixture as F
from deploy_fixture import K

HELLO = b"""#!/bin/sh
out="$(dirname "$0")/../../startup_ran.txt"
echo "server_id=$KASM_SERVER_ID api_host=$KASM_API_HOST api_port=$KASM_API_PORT" > "$out"
printf '%s' "$KASM_JWT" > "$(dirname "$0")/../../startup_jwt.txt"
"""
FAIL = b"""echo "about to fail with jwt=$KASM_JWT"
echo "and the bare token $KASM_JWT"
exit 4
"""


class ScriptsStartupTest(unittest.TestCase):
    def setUp(self):
        self.sim = K.KasmSimulator(K.SimConfig(token_lifetime=600, grace=30))
        self.sim.start()
        self.a = F.AgentDir()
        self.scripts = os.path.join(self.a.dir, "scripts")
        self.token = self.sim.mint_agent_token(lifetime=600)
        self.a.write_config(api_host="127.0.0.1", api_port=self.sim.api_port,
                            server_id=self.sim.server_id, registered=True,
                            agent_jwt_token=self.token)

    def tearDown(self):
        self.a.stop()
        log = self.a.read_log() + self.a.console()
        try:
            # a clean stop (under the asan preset: no leak or error report)
            self.assertNotIn("Sanitizer", self.a.console())
            if self.a.proc is not None:
                self.assertEqual(self.a.proc.returncode, 0, self.a.console()[-2000:])
            F.assert_no_tokens(self, log, [self.token] + [c.token for c in self.sim.calls()])
        finally:
            self.a.cleanup()
            self.sim.stop()

    def test_mapped_scripts_installed_and_run(self):
        self.sim.add_file_mapping("scripts\\service_startup\\10_hello.sh", HELLO)
        self.sim.add_file_mapping("scripts/service_startup/20_fail.sh", FAIL)
        reg_dest = os.path.join(self.scripts, "registry", "policy.reg")
        self.sim.add_file_mapping(reg_dest, b"Windows Registry Editor Version 5.00\r\n")
        self.sim.add_file_mapping("scripts\\..\\evil.sh", b"echo evil > /tmp/evil\n",
                                  mapping_id="escaping")
        self.sim.add_file_mapping("scripts/tmp/x.sh", b"echo x\n", mapping_id="tmpdir")
        self.sim.add_file_mapping("%HOMEPATH%\\Desktop\\notes.txt", b"user file",
                                  mapping_id="userfile")
        self.a.start()
        self.a.wait_log("service start work done", timeout=60)
        log = self.a.read_log()

        # the mapped scripts are there, admin-only, with the deployment's contents
        hello = os.path.join(self.scripts, "service_startup", "10_hello.sh")
        with open(hello, "rb") as f:
            self.assertEqual(f.read(), HELLO)
        self.assertEqual(stat.S_IMODE(os.stat(hello).st_mode) & 0o077, 0)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(hello)).st_mode) & 0o022, 0)
        self.assertTrue(os.path.exists(reg_dest))
        self.assertIn("not imported: the registry exists only on Windows", log)

        # refused or ignored ones are not written anywhere
        self.assertFalse(os.path.exists(os.path.join(self.a.dir, "evil.sh")))
        self.assertFalse(os.path.exists(os.path.join(self.scripts, "tmp", "x.sh")))
        self.assertIn("file mapping escaping refused", log)
        self.assertIn("file mapping tmpdir refused", log)
        self.assertNotIn("userfile refused", log)
        self.assertIn("3 installed", log)

        # the service_startup scripts ran in order with their variables
        with open(os.path.join(self.a.dir, "startup_ran.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read().strip(),
                             f"server_id={self.sim.server_id} api_host=127.0.0.1 "
                             f"api_port={self.sim.api_port}")
        with open(os.path.join(self.a.dir, "startup_jwt.txt"), encoding="utf-8") as f:
            jwt = f.read()
        self.assertEqual(self.sim.decode(jwt)["server_id"], self.sim.server_id)
        self.assertLess(log.index("10_hello.sh: exit code 0"),
                        log.index("20_fail.sh: failed with exit code 4"))
        self.assertIn("20_fail.sh| about to fail with jwt=<redacted>", log)
        self.assertIn("20_fail.sh| and the bare token <redacted>", log)
        self.assertNotIn(jwt, log)

        # the calls: check-in first, then the mappings with the agent token, then each
        # mapping's contents with that mapping's own token
        paths = [c.path for c in self.sim.calls()]
        first_checkin = paths.index("/api/admin/register_component")
        listing = paths.index("/api/admin/get_server_file_mappings")
        self.assertLess(first_checkin, listing)
        contents = self.sim.calls("get_file_mapping_contents")
        self.assertEqual(len(contents), 3)
        for c in contents:
            self.assertEqual(c.verdict, "valid")
            self.assertIn("file_map_id", self.sim.decode(c.token))

    def test_hanging_startup_script_killed_at_stop(self):
        self.sim.add_file_mapping("scripts/service_startup/hang.sh",
                                  b"sleep 1000 &\necho $! > \"$(dirname \"$0\")/../../child.pid\"\n"
                                  b"wait\n")
        self.a.start()
        self.a.wait_log("hang.sh: running", timeout=60)
        pid_file = os.path.join(self.a.dir, "child.pid")
        F.wait_until(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
                     what="the script's child pid")
        child = int(open(pid_file).read().strip())
        self.a.stop()
        self.assertEqual(self.a.proc.returncode, 0)
        log = self.a.read_log()
        self.assertIn("hang.sh: stopped because the agent is stopping", log)

        def gone():
            try:
                with open(f"/proc/{child}/stat", encoding="utf-8") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except FileNotFoundError:
                return True
        F.wait_until(gone, what="the script's child killed")

    def test_unsafe_scripts_folder_refused(self):
        os.makedirs(os.path.join(self.scripts, "service_startup"))
        with open(os.path.join(self.scripts, "service_startup", "a.sh"), "w") as f:
            f.write("echo ran > \"$(dirname \"$0\")/../../ran.txt\"\n")
        os.chmod(os.path.join(self.scripts, "service_startup"), 0o777)
        self.a.start()
        self.a.wait_log("service start work done", timeout=60)
        self.assertIn("service_startup scripts refused", self.a.read_log())
        self.assertFalse(os.path.exists(os.path.join(self.a.dir, "ran.txt")))


if __name__ == "__main__":
    F.parse_bin_dir()
    unittest.main()
