#!/usr/bin/python3
"""http_bench.py - the HTTPS API against nginx on the same machine, in one run (issue 3).

Measures side by side, over TLS on loopback with the same certificate:
  download  GET of a 1 GiB file (curl, one connection)            agent vs nginx
  upload    1 GiB as Dropzone 10 MB chunks to /upload (agent) vs one PUT of the same bytes
            to nginx (dav_methods PUT), both from the same Python keep-alive client
  requests  authenticated GET /__healthcheck (agent) vs a small static file (nginx), wrk
            with 16 keep-alive connections
  memory    the agent's peak RSS growth during the upload (VmHWM - VmRSS before)
and prints the ratios agent/nginx next to the targets of docs/performance.md.

Usage: bench/http_bench.py [--bin-dir build/native/bin] [--size-mib 1024] [--runs 3]
                           [--seconds 10] [--json]
The agent is the build in --bin-dir (build it first: cmake --preset native && cmake --build
--preset native). Needs nginx, curl and wrk (scripts/setup-debian.sh installs them).
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_api as T  # noqa: E402  (keys, certificates, tokens, the Agent process)

CHUNK = 10_000_000
TARGETS = {"download": 0.9, "upload": 0.8, "requests": 0.5, "rss_mib": 16}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class Nginx:
    def __init__(self, tmp, cert, key, www):
        self.port = free_port()
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"))
        os.makedirs(os.path.join(www, "put"), exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""{user}worker_processes auto;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy; fastcgi_temp_path {self.dir}/fcgi;
  uwsgi_temp_path {self.dir}/uwsgi; scgi_temp_path {self.dir}/scgi;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    root {www};
    location /put/ {{ dav_methods PUT; client_max_body_size 0; create_full_put_path on; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("nginx failed: " + self.proc.stderr.read().decode())
                time.sleep(0.05)
        raise SystemExit("nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


def curl_download(url, token):
    out = subprocess.run(["curl", "-k", "-s", "-f", "-o", "/dev/null", "-w", "%{speed_download}",
                          "-H", "Authorization: Bearer " + token, url],
                         check=True, capture_output=True, text=True).stdout
    return float(out) / 1e6  # MB/s


def upload_agent(agent, token, path, size):
    """Dropzone chunks over one keep-alive connection; returns MB/s."""
    c = agent.conn()
    dz = str(uuid.uuid4())
    total = (size + CHUNK - 1) // CHUNK
    name = "bench-%s.bin" % dz[:8]
    boundary = "----kasmbench" + dz.replace("-", "")
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        for i in range(total):
            data = f.read(CHUNK)
            fields = {"dzuuid": dz, "dzchunkindex": i, "dztotalfilesize": size,
                      "dzchunksize": CHUNK, "dztotalchunkcount": total,
                      "dzchunkbyteoffset": i * CHUNK}
            head = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                           f"{v}\r\n" for k, v in fields.items())
            head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            tail = f"\r\n--{boundary}--\r\n".encode()
            body = [head.encode(), data, tail]
            length = sum(len(b) for b in body)
            c.putrequest("POST", "/upload")
            c.putheader("Authorization", "Bearer " + token)
            c.putheader("Content-Type", "multipart/form-data; boundary=" + boundary)
            c.putheader("Content-Length", str(length))
            c.endheaders()
            for b in body:
                c.send(b)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"upload chunk {i}: {r.status}")
    dt = time.perf_counter() - t0
    c.close()
    return size / dt / 1e6, name


def upload_nginx(port, path, size, ctx):
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    t0 = time.perf_counter()
    c.putrequest("PUT", "/put/bench.bin")
    c.putheader("Content-Length", str(size))
    c.endheaders()
    with open(path, "rb") as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            c.send(data)
    r = c.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    c.close()
    if r.status not in (201, 204):
        raise SystemExit(f"nginx PUT: {r.status}")
    return size / dt / 1e6


def wrk_rate(url, token, seconds):
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-H",
                          "Authorization: Bearer " + token, url],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise SystemExit("wrk output not understood:\n" + out)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "build", "native", "bin"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("nginx", "curl", "wrk"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            raise SystemExit(f"{tool} is missing: run scripts/setup-debian.sh")
    T.BIN_DIR = os.path.abspath(args.bin_dir)
    size = args.size_mib * 1024 * 1024
    tmp = tempfile.mkdtemp(prefix="kasm-bench-")
    agent = nginx = None
    res = {}
    try:
        jwt_key = T.rsa_key()
        skey = T.rsa_key()
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        T.write_atomic(cert, T.self_signed(skey))
        T.write_atomic(key, T.pem_private(skey))
        token = T.user_token(jwt_key, exp_in=3600)
        agent = T.Agent(tmp, "agent", T.pem_public(jwt_key), server_key=T.pem_private(skey),
                        server_cert=T.self_signed(skey))
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        src = os.path.join(tmp, "src.bin")
        with open(src, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                f.write(block)
        down = os.path.join(agent.dir, "down")
        os.makedirs(down, exist_ok=True)
        shutil.copyfile(src, os.path.join(down, "big.bin"))
        os.link(os.path.join(down, "big.bin"), os.path.join(www, "big.bin"))
        with open(os.path.join(www, "health.json"), "w") as f:
            f.write('{"cpu_percent": 1.0, "memory_percent": 2.0, "disk_percent": 3.0}')
        nginx = Nginx(tmp, cert, key, www)

        a_url = f"https://127.0.0.1:{agent.port}"
        n_url = f"https://127.0.0.1:{nginx.port}"
        dl_a = [curl_download(a_url + "/Downloads/Downloads/big.bin", token)
                for _ in range(args.runs)]
        dl_n = [curl_download(n_url + "/big.bin", token) for _ in range(args.runs)]
        res["download"] = (statistics.median(dl_a), statistics.median(dl_n))

        rss_before = proc_status(agent.proc.pid, "VmRSS")
        up_a, up_n = [], []
        for _ in range(args.runs):
            rate, name = upload_agent(agent, token, src, size)
            up_a.append(rate)
            os.unlink(os.path.join(agent.dir, "up", name))
            up_n.append(upload_nginx(nginx.port, src, size, T.client_context()))
        hwm = proc_status(agent.proc.pid, "VmHWM")
        res["upload"] = (statistics.median(up_a), statistics.median(up_n))
        res["rss_mib"] = max(0, hwm - rss_before) / (1 << 20)
        res["requests"] = (wrk_rate(a_url + "/__healthcheck", token, args.seconds),
                           wrk_rate(n_url + "/health.json", token, args.seconds))
    finally:
        if agent:
            agent.stop()
        if nginx:
            nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{'measure':<10} {'agent':>12} {'nginx':>12} {'ratio':>7} {'target':>8}")
    ok = True
    for k, unit in (("download", "MB/s"), ("upload", "MB/s"), ("requests", "req/s")):
        a, n = res[k]
        ratio = a / n if n else 0.0
        ok &= ratio >= TARGETS[k]
        print(f"{k:<10} {a:>8.1f} {unit:<4}{n:>8.1f} {unit:<4}{ratio:>6.2f}x {'>=' + str(TARGETS[k]) + 'x':>8}")
    ok &= res["rss_mib"] < TARGETS["rss_mib"]
    print(f"{'rss':<10} {res['rss_mib']:>8.1f} MiB growth during the upload (target < {TARGETS['rss_mib']} MiB)")
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
