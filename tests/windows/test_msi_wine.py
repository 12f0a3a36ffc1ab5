#!/usr/bin/python3
"""test_msi_wine.py - the MSI end to end under Wine (issue 7).

1. The MSI's tables (msiinfo export): the service Kasm (auto start, description, the
   ServiceControl events), the custom actions (agent.exe itself, deferred, not impersonated,
   the registration's target hidden), their place in InstallExecuteSequence, the Upgrade rows,
   the properties (ProductVersion = the VERSION file, MsiHiddenProperties, SecureCustom...).
2. A Wine prefix of the test's own (made on an Xvfb display when Xvfb is installed, for the
   screenshot), its Downloads folder redirected to a temp folder, the deployment simulator
   (tests/sim/kasm_sim.py) on loopback.
3. A silent install with a refused registration token: msiexec fails, nothing is left (no
   service, no agent.exe).
4. msiexec /i x.msi /qn API_HOST API_PORT REGISTRATION_TOKEN SERVER_ID PORT=<a free port>: the
   service Kasm is RUNNING (sc query); config.yaml is registered (server_id, an agent token the
   simulator signed), the PEM files exist; the registration token is in neither the MSI log
   nor the config; agent.exe --version prints the MSI's version.
5. HTTPS from Linux to 127.0.0.1:<port> with a user token of the simulator: healthcheck, a
   100 MB upload in 10 Dropzone chunks (through the session helper under Wine's service, into
   the redirected Downloads), the listing, the download with the same SHA-256, and a
   screenshot (a PNG of the requested width) when the test has an X display; then
   POST /session_start and /session_end with .cmd hooks placed in the installed
   scripts\\session_start and scripts\\session_end: the hooks ran with their KASM_* variables
   and the simulator saw the `running` and `destroyed` reports.
6. A major upgrade to the same build with a higher version (built here with wix/build-msi.sh):
   the service runs again, config.yaml (server id, token, port), certs\\ and a file in
   Upload\\ are kept, the uploaded file is still served with the same hash, the registry shows
   the new version only; installing the older MSI again is refused.
7. msiexec /x: no service, no install folder, no Event Log source.

Usage: test_msi_wine.py --wine-run cmake/wine-run.sh --msi X.msi --version-file VERSION
                        --build-msi wix/build-msi.sh --wxs wix/kasm.wxs --bin-dir BIN
                        --prefix WINEPREFIX_DIR
Exit status 0 when every check passes, 77 when wixl/msitools are missing, 1 on a failure.
"""
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

import yaml

BUILTIN_HOOKS = ("load_persistent_profile.ps1", "save_persistent_profile.ps1",
                 "map_storage.ps1", "unmap_storage.ps1")
HOOKS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hooks",
                         "builtin")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
sys.path.insert(0, HERE)
import kasm_sim as K  # noqa: E402
from wine_fixture import (BOUNDARY, DOWNLOADS_VALUE, SHELL_FOLDERS, AgentRun, Client,  # noqa: E402
                          Fail, check, free_port, multipart, parse_args, png_size, shutdown_prefix,
                          start_xvfb, stop_xvfb, win_path)

SYSTEM_ENVIRONMENT = r"HKLM\System\CurrentControlSet\Control\Session Manager\Environment"
TIMEOUT = 120
UPLOAD_SIZE = 100 * 1000 * 1000
CHUNK = 10 * 1000 * 1000
READY_RE = re.compile(r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready")


def msi_table(msi, table):
    """Rows of an MSI table as dicts (msiinfo export: names, types, key line, rows)."""
    out = subprocess.run(["msiinfo", "export", msi, table], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    names = out[0].rstrip("\r").split("\t")
    rows = []
    for line in out[3:]:
        line = line.rstrip("\r")
        if line:
            rows.append(dict(zip(names, line.split("\t"))))
    return rows


def check_tables(msi, version):
    props = {r["Property"]: r["Value"] for r in msi_table(msi, "Property")}
    check(props.get("ProductVersion") == version,
          f"ProductVersion {props.get('ProductVersion')!r}, VERSION says {version!r}")
    check("REGISTRATION_TOKEN" in props.get("MsiHiddenProperties", "").split(";"),
          "MsiHiddenProperties does not hide REGISTRATION_TOKEN")
    secure = props.get("SecureCustomProperties", "").split(";")
    for p in ("API_HOST", "API_PORT", "REGISTRATION_TOKEN", "SERVER_ID", "PORT", "INSTALLDIR"):
        check(p in secure, f"{p} is not in SecureCustomProperties")
    check(props.get("ALLUSERS") == "1", "not a per-machine package (ALLUSERS)")

    svc = msi_table(msi, "ServiceInstall")
    check(len(svc) == 1 and svc[0]["Name"] == "Kasm", f"ServiceInstall: {svc}")
    s = svc[0]
    check(s["StartType"] == "2" and s["ServiceType"] == "16" and s["StartName"] == "LocalSystem"
          and s["Component_"] == "AgentExe" and len(s["Description"]) > 20 and s["DisplayName"],
          f"service Kasm: {s}")
    ctl = msi_table(msi, "ServiceControl")
    # 163 = start on install (1) + stop on install (2) + stop (32) and delete (128) on uninstall
    check(len(ctl) == 1 and ctl[0]["Name"] == "Kasm" and ctl[0]["Event"] == "163" and
          ctl[0]["Wait"] == "1", f"ServiceControl: {ctl}")

    files = {r["FileName"].split("|")[-1] for r in msi_table(msi, "File")}
    check({"agent.exe", "session_helper.exe", "agentctl.exe"} | set(BUILTIN_HOOKS) <= files,
          f"files: {files}")
    dirs = {r["Directory"]: r for r in msi_table(msi, "Directory")}
    check(dirs["INSTALLDIR"]["DefaultDir"] == "Kasm" and
          dirs["INSTALLDIR"]["Directory_Parent"] == "ProgramFiles64Folder", "INSTALLDIR")
    for sub in ("service_startup", "session_start", "session_end", "builtin", "registry"):
        check(any(d["DefaultDir"] == sub for d in dirs.values()), f"no scripts\\{sub} folder")

    ca = {r["Action"]: r for r in msi_table(msi, "CustomAction")}
    deferred, no_impersonate, hide = 0x400, 0x800, 0x2000
    for name in ("KasmSetup", "KasmRegister", "KasmRegisterWithId", "KasmCleanup",
                 "KasmUpgradeStop"):
        t = int(ca[name]["Type"])
        check(t & 0x3F == 18 and ca[name]["Source"] == "AgentExe",
              f"{name}: not agent.exe run directly (type {t})")
        check(t & deferred and t & no_impersonate, f"{name}: not deferred as LocalSystem")
    for name in ("KasmRegister", "KasmRegisterWithId"):
        t, target = int(ca[name]["Type"]), ca[name]["Target"]
        check(t & hide, f"{name}: the target is not hidden (type {t})")
        check(t & 0xC0 == 0, f"{name}: its exit code is ignored (type {t})")
        check('--register-token "[REGISTRATION_TOKEN]"' in target and
              '--cfg "[INSTALLDIR]config.yaml"' in target and target.startswith("/S "),
              f"{name}: target {target}")
    check('--server-id "[SERVER_ID]"' in ca["KasmRegisterWithId"]["Target"], "SERVER_ID")

    seq = {r["Action"]: (int(r["Sequence"]), r["Condition"])
           for r in msi_table(msi, "InstallExecuteSequence")}
    n = {k: v[0] for k, v in seq.items()}
    for name in ("KasmSetup", "KasmRegister", "KasmRegisterWithId", "KasmCleanup",
                 "KasmUpgradeStop"):
        check(n["InstallInitialize"] < n[name] < n["InstallFinalize"],
              f"{name} (a deferred action) is outside InstallInitialize..InstallFinalize")
    check(n["InstallFiles"] < n["InstallServices"] < n["KasmSetup"] < n["KasmRegister"] <
          n["KasmRegisterWithId"] < n["StartServices"], f"install order: {n}")
    check(n["StopServices"] < n["KasmCleanup"] < n["RemoveFiles"], "uninstall order")
    check(n["InstallInitialize"] < n["RemoveExistingProducts"] < n["StopServices"],
          "RemoveExistingProducts is not right after InstallInitialize")
    check("NOT UPGRADINGPRODUCTCODE" in seq["KasmCleanup"][1], "KasmCleanup runs on upgrades")

    up = msi_table(msi, "Upgrade")
    codes = {r["UpgradeCode"] for r in up}
    check(len(codes) == 1 and props["UpgradeCode"].upper() in codes, f"Upgrade: {up}")
    older = [r for r in up if r["ActionProperty"] == "KASM_OLDER_FOUND"]
    newer = [r for r in up if r["ActionProperty"] == "KASM_NEWER_FOUND"]
    check(len(older) == 1 and older[0]["VersionMax"] == version and
          not int(older[0]["Attributes"]) & 2, f"older versions: {older}")
    check(len(newer) == 1 and newer[0]["VersionMin"] == version and
          int(newer[0]["Attributes"]) & 2, f"newer versions (detect only): {newer}")
    conds = [r["Condition"] for r in msi_table(msi, "LaunchCondition")]
    check(any("KASM_NEWER_FOUND" in c for c in conds), "no downgrade launch condition")


def kasm_versions(reg_output):
    """DisplayVersion of each Uninstall key (reg query /s output) named Kasm Open Agent."""
    versions = []
    for block in re.split(r"\r?\n(?=HKEY_)", reg_output):
        if re.search(r"DisplayName\s+REG_SZ\s+Kasm Open Agent\s*$", block, re.M):
            m = re.search(r"DisplayVersion\s+REG_SZ\s+(\S+)", block)
            versions.append(m.group(1) if m else "?")
    return versions


# Wine's MSI log ends with a dump of the properties that ignores MsiHiddenProperties (Windows
# prints "REGISTRATION_TOKEN = **********" there); that one line is Wine's, not the package's.
WINE_PROPERTY_DUMP = re.compile(r"^Property\([SC]\): REGISTRATION_TOKEN = ")


def assert_not_logged(secret, what, **texts):
    """Fails naming where the secret appears (the line, with the secret cut out); returns the
    number of Wine property-dump lines that hold it."""
    dumps = 0
    for where, text in texts.items():
        for line in text.splitlines():
            if secret not in line:
                continue
            if where == "msi_log" and WINE_PROPERTY_DUMP.match(line):
                dumps += 1
                continue
            raise Fail(f"{what} is in the {where}: {line.replace(secret, '<TOKEN>')[:300]}")
    return dumps


def main():
    args = parse_args("--wine-run", "--msi", "--version-file", "--build-msi", "--wxs",
                      "--bin-dir", "--prefix")
    for tool in ("msiinfo", "wixl", "msibuild"):
        if not shutil.which(tool):
            print(f"skipped: {tool} is not installed (scripts/setup-debian.sh installs it)")
            return 77
    with open(args.version_file, encoding="utf-8") as f:
        version = f.readline().strip()

    tmp = tempfile.mkdtemp(prefix="kasm-msi-")
    prefix = os.path.abspath(args.prefix)
    kasm_dir = os.path.join(prefix, "drive_c", "Program Files", "Kasm")
    env = dict(os.environ)
    xvfb = sim = None
    rc = 0

    service = AgentRun(os.path.join(kasm_dir, "agent.log"), TIMEOUT, interval=0.2)
    agent_log, wait = service.text, service.wait  # the service's agent.exe: not started here

    def wine(*a, timeout=300, ok=True):
        # Output into files, not pipes: processes Wine starts on the way (its custom action
        # server, the service) inherit them and would hold a pipe open long after.
        with tempfile.TemporaryFile(dir=tmp) as out, tempfile.TemporaryFile(dir=tmp) as err:
            p = subprocess.run([args.wine_run, "--prefix", prefix] + list(a), env=env,
                               stdout=out, stderr=err, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(
                p.args, p.returncode, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"))
        if ok:
            check(r.returncode == 0, f"{' '.join(a)} exited with {r.returncode}: "
                                     f"{r.stdout[-3000:]}{r.stderr[-3000:]}")
        return r

    def service_state():
        r = wine("sc", "query", "kasm", ok=False)
        m = re.search(r"STATE\s*:\s*\d+\s+(\w+)", r.stdout)
        return m.group(1) if m else None

    def msi_log_text(path):
        with open(path, "rb") as f:
            raw = f.read()
        return raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8",
                          errors="replace")

    def msiexec(*a, log_name):
        log = os.path.join(tmp, log_name)
        r = wine("msiexec", *a, "/qn", "/l*v", win_path(log), ok=False, timeout=600)
        return r, msi_log_text(log) if os.path.exists(log) else ""

    try:
        check_tables(args.msi, version)
        print(f"ok   MSI tables (service, custom actions, sequence, upgrade, properties) of "
              f"{os.path.basename(args.msi)}")

        display = None
        if shutil.which("Xvfb"):
            xvfb, display = start_xvfb()
            env["KASM_WINE_DISPLAY"] = display
        env["KASM_SESSION_POLL_MS"] = "500"
        wine("--shutdown", timeout=60)
        wine("--reset")
        downloads = os.path.join(tmp, "wine-downloads")
        os.makedirs(downloads)  # first: Wine links a missing shell folder to ~/Downloads
        wine("reg", "add", SHELL_FOLDERS, "/v", DOWNLOADS_VALUE, "/t", "REG_EXPAND_SZ",
             "/d", win_path(downloads), "/f")
        if display:
            # Wine starts services with an environment built from the registry, so the
            # service and the helper it starts (CreateEnvironmentBlock) find the X display
            # only there; on Windows a session has its display without any variable.
            wine("reg", "add", SYSTEM_ENVIRONMENT, "/v", "DISPLAY", "/t", "REG_SZ",
                 "/d", display, "/f")
        print(f"ok   fresh Wine prefix {prefix}"
              f"{' on Xvfb ' + display if display else ' (no Xvfb: no screenshot)'}")

        sim = K.KasmSimulator(K.SimConfig())
        sim.start()
        port = free_port()
        common = ["API_HOST=127.0.0.1", f"API_PORT={sim.api_port}", f"PORT={port}"]

        # A refused token: the install fails and rolls back.
        bad = sim.mint("registration", sign="rogue")
        r, log = msiexec("/i", win_path(args.msi), *common, f"REGISTRATION_TOKEN={bad}",
                         log_name="bad.log")
        check(r.returncode != 0, "msiexec succeeded with a refused registration token")
        check(service_state() is None, "a service Kasm is left after the failed install")
        check(not os.path.exists(os.path.join(kasm_dir, "agent.exe")),
              "agent.exe is left after the failed install")
        assert_not_logged(bad, "the refused token", msi_log=log, msiexec_output=r.stdout + r.stderr)
        print(f"ok   refused registration token: msiexec exit {r.returncode}, rolled back "
              "(no service, no agent.exe), the token is not logged")

        token = sim.checkin_token
        r, log = msiexec("/i", win_path(args.msi), *common, f"REGISTRATION_TOKEN={token}",
                         f"SERVER_ID={sim.server_id}", log_name="install.log")
        check(r.returncode == 0, f"msiexec /i exited with {r.returncode}: {r.stderr[-3000:]}")
        dumps = assert_not_logged(token, "the registration token", msi_log=log,
                                  msiexec_output=r.stdout + r.stderr)
        if dumps:
            print(f"note the token is only in {dumps} line(s) of Wine's closing property dump "
                  "(Wine ignores MsiHiddenProperties there; Windows masks it)")
        check("KasmRegisterWithId" in log, "the MSI log does not show the registration action")
        wait(lambda: service_state() == "RUNNING", "service Kasm RUNNING")
        print("ok   msiexec /i ... /qn with the registration properties: exit 0, service Kasm "
              "RUNNING, no custom action's command line in the MSI log holds the token")

        with open(os.path.join(kasm_dir, "config.yaml"), encoding="utf-8") as f:
            cfg_text = f.read()
        cfg = yaml.safe_load(cfg_text)
        check(cfg.get("registered") is True and cfg.get("server_id") == sim.server_id,
              f"config: registered {cfg.get('registered')}, server_id {cfg.get('server_id')}")
        check(sim.decode(cfg["agent_jwt_token"])["server_id"] == sim.server_id,
              "the config's agent token is not the simulator's")
        check(cfg.get("port") == port, f"config port {cfg.get('port')}, PORT={port}")
        check(token not in cfg_text, "the registration token is stored in config.yaml")
        for pem in ("cert.pem", "key.pem", "jwt.pem"):
            check(os.path.getsize(os.path.join(kasm_dir, "certs", pem)) > 100, f"certs\\{pem}")
        for sub in ("service_startup", "session_start", "session_end", "registry"):
            check(os.path.isdir(os.path.join(kasm_dir, "scripts", sub)), f"scripts\\{sub}")
        for hook in BUILTIN_HOOKS:
            with open(os.path.join(kasm_dir, "scripts", "builtin", hook), "rb") as f, \
                    open(os.path.join(HOOKS_DIR, hook), "rb") as g:
                check(f.read() == g.read(), f"scripts\\builtin\\{hook} is not hooks/builtin/{hook}")
        ev = wine("reg", "query", r"HKLM\System\CurrentControlSet\Services\EventLog"
                  r"\Application\Kasm", ok=False)
        check(ev.returncode == 0 and "TypesSupported" in ev.stdout, "no Event Log source Kasm")
        setup_out = r.stdout + r.stderr
        check(f"firewall rule 'Kasm Open Agent' allows inbound TCP {port}" in setup_out or
              "cannot add the firewall rule" in setup_out,
              "agent.exe --install-setup did not report the firewall rule")
        for line in setup_out.splitlines():
            if "[setup]" in line and ("firewall" in line or "recovery" in line or
                                      "restarts on failure" in line):
                print("note install setup: " + line.split("[setup] ", 1)[-1])
        v = wine(os.path.join(kasm_dir, "agent.exe"), "--version").stdout.strip()
        check(v == f"agent {version}", f"agent.exe --version: {v!r}, the MSI: {version}")
        print(f"ok   config.yaml registered as {sim.server_id} with the simulator's agent token "
              f"and port {port}; certs\\cert.pem, key.pem, jwt.pem; {v}")

        # HTTPS from Linux with a user token of the deployment
        me = pwd.getpwuid(os.getuid()).pw_name  # the Wine user is the Unix user
        cl = Client(port, sim.mint("user", {"system_username": me,
                                            "username": f"{me}@kasm.local"}), TIMEOUT)

        def health():
            try:
                return cl.request("GET", "/__healthcheck")[0] == 200
            except OSError:
                return False
        wait(health, f"GET https://127.0.0.1:{port}/__healthcheck 200")
        wait(lambda: READY_RE.search(agent_log()), "the session helper under the service")
        print("ok   GET /__healthcheck 200; the service started the session helper")

        name = "msi-e2e-100MB.bin"
        block = os.urandom(1 << 20)
        h = hashlib.sha256()
        dzuuid, count = str(uuid.uuid4()), -(-UPLOAD_SIZE // CHUNK)
        c = cl.conn()
        try:
            for i in range(count):
                off = i * CHUNK
                n = min(CHUNK, UPLOAD_SIZE - off)
                data = ((bytes([i]) + block) * (n // len(block) + 1))[:n]  # stamped
                h.update(data)
                fields = [("dzuuid", dzuuid), ("dzchunkindex", i),
                          ("dztotalfilesize", UPLOAD_SIZE), ("dzchunksize", CHUNK),
                          ("dzchunkbyteoffset", off), ("dztotalchunkcount", count)]
                status, _, body = cl.request(
                    "POST", "/upload", multipart(fields, name, data),
                    {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY}, conn=c)
                check((status, body) == (200, b"uploaded Chunk"), f"chunk {i}: {status} {body!r}")
        finally:
            c.close()
        digest = h.hexdigest()
        check(os.path.getsize(os.path.join(downloads, name)) == UPLOAD_SIZE,
              "the upload is not in the helper's Downloads folder")
        print(f"ok   POST /upload of {UPLOAD_SIZE} bytes in {count} chunks (into Downloads)")

        status, headers, body = cl.request("GET", "/Downloads/Downloads/")
        check(status == 200 and f'<a href="{name}">'.encode() in body,
              f"listing: {status} {body[:500]!r}")
        got, n = cl.sha256(f"/Downloads/Downloads/{name}")
        check((got, n) == (digest, UPLOAD_SIZE), f"download: {n} bytes, sha256 {got}")
        print("ok   the listing shows it; the download has the same SHA-256")

        if display:
            status, headers, png = cl.request("POST", "/screenshot?width=320")
            check(status == 200 and headers.get("content-type") == "image/png",
                  f"screenshot: {status} {png[:300]!r}")
            check(png_size(png)[0] == 320, f"screenshot size {png_size(png)}")
            print(f"ok   POST /screenshot?width=320: a {png_size(png)} PNG from the helper "
                  "the service started")
        else:
            print("note no screenshot: Xvfb is not installed, Wine has no display")

        # session_start / session_end through the installed service, with .cmd hooks of the
        # administrator in the installed scripts\ folders (docs/sessions.md)
        hooks_txt = os.path.join(tmp, "hooks.txt")  # outside the install folder
        for folder, what in (("session_start", "start"), ("session_end", "end")):
            with open(os.path.join(kasm_dir, "scripts", folder, f"10_{what}.cmd"), "wb") as f:
                f.write(b"@echo off\r\n>>\"" + win_path(hooks_txt).encode() + b"\" echo " +
                        what.encode() + b" %KASM_KASM_ID% %KASM_USERNAME%\r\n")
        kasm_id = uuid.uuid4().hex
        ident = K.AgentIdentity(username="msi_user", user_id=uuid.uuid4().hex,
                                kasm_id=kasm_id, server_id=sim.server_id)
        sc = K.AgentClient(f"https://127.0.0.1:{port}", sim, ident)
        for path, body, report in (
                ("/session_start", sc.session_payload(), lambda s: s.get("status") == "running"),
                ("/session_end", sc.session_payload(ending=True),
                 lambda s: s.get("destroyed") is True)):
            r = sc.request("POST", path, sc.session_token(), json.dumps(body).encode(),
                           "application/json")
            check((r.status, r.body) == (200, b"ok"), f"{path} answered {r.status} {r.body!r}")
            wait(lambda: any(report(st) for st in sim.session_statuses(kasm_id)),
                 f"the status report after {path}")

        def hook_lines():
            try:
                with open(hooks_txt, encoding="utf-8", errors="replace") as f:
                    return [ln.split() for ln in f.read().splitlines() if ln.strip()]
            except OSError:
                return []
        check(hook_lines() == [["start", kasm_id, "msi_user"], ["end", kasm_id, "msi_user"]],
              f"the session hooks ran: {hook_lines()}")
        statuses = sim.session_statuses(kasm_id)
        check(statuses[-1] == {"kasm_id": kasm_id, "status_progress": 0, "destroyed": True} and
              any(st == {"kasm_id": kasm_id, "status": "running", "status_progress": 0}
                  for st in statuses), f"the session status reports: {statuses}")
        print("ok   session_start and session_end: the .cmd hooks in scripts\\ ran with "
              "KASM_KASM_ID and KASM_USERNAME; the simulator saw running, then destroyed")

        # Major upgrade to a higher version of the same build
        parts = [int(x) for x in version.split(".")]
        new_version = f"{parts[0]}.{parts[1]}.{parts[2] + 1}"
        new_msi = os.path.join(tmp, f"kasm-open-agent-{new_version}-x64.msi")
        subprocess.run([args.build_msi, args.wxs, new_version, args.bin_dir, new_msi],
                       check=True, stdout=subprocess.DEVNULL)
        keep = os.path.join(kasm_dir, "Upload", "kept-across-upgrade.txt")
        with open(keep, "w", encoding="utf-8") as f:
            f.write("an administrator's file\n")
        cert_before = open(os.path.join(kasm_dir, "certs", "cert.pem"), "rb").read()
        r, log = msiexec("/i", win_path(new_msi), log_name="upgrade.log")
        check(r.returncode == 0, f"the upgrade exited with {r.returncode}: {r.stderr[-3000:]}")
        wait(lambda: service_state() == "RUNNING", "service Kasm RUNNING after the upgrade")
        with open(os.path.join(kasm_dir, "config.yaml"), encoding="utf-8") as f:
            cfg2 = yaml.safe_load(f)
        check(cfg2.get("server_id") == sim.server_id and cfg2.get("registered") is True and
              cfg2.get("agent_jwt_token") and cfg2.get("port") == port,
              "the upgrade did not keep config.yaml")
        check(open(os.path.join(kasm_dir, "certs", "cert.pem"), "rb").read() == cert_before,
              "the upgrade changed certs\\cert.pem")
        check(os.path.isfile(keep), "the upgrade removed a file from Upload\\")
        reg = wine("reg", "query",
                   r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall", "/s").stdout
        shown = kasm_versions(reg)
        check(shown == [new_version],
              f"the registry's DisplayVersion values are {shown}, want {new_version} only")
        wait(health, "the healthcheck after the upgrade")
        got, n = cl.sha256(f"/Downloads/Downloads/{name}")
        check((got, n) == (digest, UPLOAD_SIZE), "the uploaded file changed in the upgrade")
        print(f"ok   major upgrade {version} -> {new_version}: service RUNNING, config.yaml, "
              "certs\\ and Upload\\ kept, the uploaded file served with the same hash")

        # A downgrade is refused (the launch condition on KASM_NEWER_FOUND)
        r, log = msiexec("/i", win_path(args.msi), log_name="downgrade.log")
        check(r.returncode != 0, f"installing {version} over {new_version} succeeded")
        shown = kasm_versions(wine("reg", "query", r"HKLM\Software\Microsoft\Windows"
                                   r"\CurrentVersion\Uninstall", "/s").stdout)
        check(shown == [new_version] and service_state() == "RUNNING",
              f"after the refused downgrade: versions {shown}, service {service_state()}")
        print(f"ok   installing {version} over {new_version} is refused (exit {r.returncode}); "
              f"{new_version} stays, its service RUNNING")

        r, log = msiexec("/x", win_path(new_msi), log_name="uninstall.log")
        check(r.returncode == 0, f"msiexec /x exited with {r.returncode}: {r.stderr[-3000:]}")
        wait(lambda: service_state() is None, "the service's removal", timeout=60)
        wait(lambda: not os.path.exists(kasm_dir), f"the removal of {kasm_dir}", timeout=60)
        ev = wine("reg", "query", r"HKLM\System\CurrentControlSet\Services\EventLog"
                  r"\Application\Kasm", ok=False)
        check(ev.returncode != 0, "the Event Log source Kasm is left")
        print("ok   msiexec /x: no service Kasm, no install folder, no Event Log source")
    except Exception as e:  # Fail, or a refused connection, a timeout
        rc = 1
        print(f"FAIL {e if isinstance(e, Fail) else repr(e)}\n---- agent log (end) ----\n"
              f"{agent_log()[-6000:]}")
        for name in ("bad.log", "install.log", "upgrade.log", "uninstall.log"):
            p = os.path.join(tmp, name)
            if os.path.exists(p):
                lines = [ln for ln in msi_log_text(p).splitlines()
                         if "Kasm" in ln or "rror" in ln or "Return value 3" in ln]
                print(f"---- {name} (Kasm and error lines) ----\n" + "\n".join(lines[-40:]))
    finally:
        shutdown_prefix(args.wine_run, prefix, env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        if sim is not None:
            sim.stop()
        stop_xvfb(xvfb)
        shutil.rmtree(prefix, ignore_errors=True)
        for p in (prefix + ".lock", prefix + ".boot.log"):
            if os.path.exists(p):
                os.unlink(p)
        shutil.rmtree(tmp, ignore_errors=True)
    if rc == 0:
        print("PASS")
    return rc


if __name__ == "__main__":
    sys.exit(main())
