#!/usr/bin/python3
"""helper_bench.py - what the session helper costs (issue 5), in one run on this machine.

  screenshot  POST /screenshot?width=1000 and 300 of a 1920x1080 Xvfb display painted with a
              desktop-like pattern: median end-to-end HTTPS latency (agent -> helper ->
              capture, scale, PNG -> agent -> client), next to bench/shot_bench's in-process
              capture+scale+encode and bare libpng encode of the same frame
  upload      1 GiB in Dropzone 10 MB chunks: through the helper vs straight into upload_dir
              (the agent without sessions), same client; target >= 0.85x
  download    the same 1 GiB file: through the helper vs from download_dir; target >= 0.85x

Run as root (the helper runs as a throwaway user, created and removed here, whose home is a
temp folder) with a native build: bench/helper_bench.py [--bin-dir build/native/bin]
[--size-mib 1024] [--runs 3] [--shots 20]. Needs Xvfb (scripts/setup-debian.sh).
"""
import argparse
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_api as T  # noqa: E402
import http_bench as H  # noqa: E402  (the Dropzone client, curl download)
import xvfb  # noqa: E402

USER = "kasmbench"
READY_RE = re.compile(r"helper pid (\d+) is ready")


def cpu_seconds(pid):
    """utime + stime of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids):
    return {p: cpu_seconds(p) for p in pids}


def shot_latency(agent, token, width, n):
    c = agent.conn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("POST", f"/screenshot?width={width}", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != 200 or not body.startswith(b"\x89PNG"):
            raise SystemExit(f"screenshot: {r.status} {body[:200]!r}")
    c.close()
    return statistics.median(times), len(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "build", "native", "bin"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shots", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the helper runs as a throwaway user made for the run")
    T.BIN_DIR = os.path.abspath(args.bin_dir)
    size = args.size_mib << 20
    tmp = tempfile.mkdtemp(prefix="kasm-hbench-")
    os.chmod(tmp, 0o755)
    home = os.path.join(tmp, "home")
    xserver = direct = helped = None
    user_made = False
    try:
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", USER], check=True)
        user_made = True
        pw = pwd.getpwnam(USER)
        os.makedirs(os.path.join(home, "Downloads"))
        for d in (home, os.path.join(home, "Downloads")):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        xserver, display = xvfb.start("1920x1080x24", noreset=True)
        env = dict(os.environ, DISPLAY=display)
        shot = subprocess.run([os.path.join(T.BIN_DIR, "shot_bench"), "--pattern", "10"],
                              env=env, capture_output=True, text=True, check=True).stdout

        jwt_key, skey = T.rsa_key(), T.rsa_key()
        token = T.user_token(jwt_key, exp_in=3600, system_username=USER)
        sessions = os.path.join(tmp, "sessions")
        with open(sessions, "w") as f:
            f.write(f"1 {USER} console display={display}\n")
        helped = T.Agent(tmp, "helped", T.pem_public(jwt_key), server_key=T.pem_private(skey),
                         server_cert=T.self_signed(skey), extra=f"sessions_file: {sessions}\nscreenshot_cache_seconds: 0\n")
        direct = T.Agent(tmp, "direct", T.pem_public(jwt_key), server_key=T.pem_private(skey),
                         server_cert=T.self_signed(skey))
        end = time.monotonic() + 30
        while not READY_RE.search(helped.log()):
            if time.monotonic() > end:
                raise SystemExit("the helper did not start:\n" + helped.log()[-2000:])
            time.sleep(0.1)

        shots = {w: shot_latency(helped, token, w, args.shots) for w in (1000, 300)}

        src = os.path.join(tmp, "src.bin")
        with open(src, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                f.write(block)
        up = {"helper": [], "direct": []}
        dl = {"helper": [], "direct": []}
        helper_pid = int(READY_RE.search(helped.log()).group(1))
        # CPU seconds per GiB moved, per process and transfer kind: what the helper's path
        # costs the machine, which a loaded machine's wall-clock figures hide in noise
        cpu = {(kind, what): [] for kind in ("helper", "direct") for what in ("upload", "download")}

        def measured(kind, what, pids, fn):
            before, c0 = cpu_of(pids), os.times()
            r = fn()
            after, c1 = cpu_of(pids), os.times()
            spent = {p: after[p] - before[p] for p in pids}
            spent["client"] = (c1.user - c0.user) + (c1.system - c0.system) + \
                (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
            cpu[(kind, what)].append({k: v / (size / (1 << 30)) for k, v in spent.items()})
            return r
        helper_dl = os.path.join(home, "Downloads")
        for _ in range(args.runs):
            for kind, agent, folder in (("helper", helped, helper_dl),
                                        ("direct", direct, os.path.join(direct.dir, "up"))):
                pids = ([agent.proc.pid, helper_pid] if kind == "helper"
                        else [agent.proc.pid])
                rate, name = measured(kind, "upload", pids,
                                      lambda: H.upload_agent(agent, token, src, size))
                up[kind].append(rate)
                path = os.path.join(folder, name)
                if os.path.getsize(path) != size:
                    raise SystemExit(f"{kind}: the uploaded file has the wrong size")
                if kind == "helper" and os.stat(path).st_uid != pw.pw_uid:
                    raise SystemExit("the helper's upload is not owned by the session user")
                target = (os.path.join(helper_dl, "big.bin") if kind == "helper"
                          else os.path.join(direct.dir, "down", "big.bin"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(path, target)
                url = f"https://127.0.0.1:{agent.port}/Downloads/Downloads/big.bin"
                dl[kind].append(measured(kind, "download", pids,
                                         lambda: H.curl_download(url, token)))
                os.unlink(target)
    finally:
        for a in (helped, direct):
            if a:
                a.stop()
        xvfb.stop(xserver)
        if user_made:
            subprocess.run(["userdel", USER], check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    print(shot.rstrip())
    for w, (ms, n) in shots.items():
        print(f"screenshot width {w:4d}: end-to-end HTTPS {ms:.1f} ms median ({n} bytes PNG)")
    ok = True
    for what, d in (("upload", up), ("download", dl)):
        h, dr = statistics.median(d["helper"]), statistics.median(d["direct"])
        ratio = h / dr if dr else 0.0
        ok &= ratio >= 0.85
        print(f"{what:<8} through the helper {h:7.1f} MB/s, direct {dr:7.1f} MB/s: "
              f"{ratio:.2f}x (target >= 0.85x)")
    for what in ("upload", "download"):
        for kind in ("helper", "direct"):
            runs = cpu[(kind, what)]
            names = {"client": "client"}
            keys = [k for k in runs[0] if k != "client"]
            names.update({keys[0]: "agent"})
            if len(keys) > 1:
                names[keys[1]] = "helper"
            parts = {names[k]: statistics.median(r[k] for r in runs) for k in runs[0]}
            total = sum(parts.values())
            print(f"cpu {what:<8} {kind:<6}: " +
                  ", ".join(f"{n} {v:.2f}" for n, v in parts.items()) +
                  f"; total {total:.2f} CPU s/GiB")
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
