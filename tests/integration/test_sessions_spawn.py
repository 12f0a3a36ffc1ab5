#!/usr/bin/python3
"""test_sessions_spawn.py - the session manager (service/session/) end to end: the real agent
(--console) with a declared-sessions file and the real session_helper.

Checks: a helper is spawned per declared session (ps shows it; as root it runs as that
session's user, with the user's uid, gid and groups - two throwaway users are created with
useradd and removed afterwards; not as root: the same user twice) and its HELLO and LOG line
reach the agent log; a killed helper is restarted after the throttle delay and the restart is
logged; rapid repeated crashes make the delays grow; removing a line stops that helper; the
agent's stop leaves no helper behind; each helper holds only stdio and its own channel (a
socket whose peer is in the agent), no other descriptor of the agent.

Usage: test_sessions_spawn.py --bin-dir DIR
Exit status 0 when every check passes; each check prints "ok" or "FAIL" with the reason.
"""
import argparse
import mmap
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT = 30
STARTED_RE = re.compile(r"session (\d+) \(([^)]+)\): helper started, pid (\d+)")
READY_RE = re.compile(r"session (\d+) \(([^)]+)\): helper pid (\d+) is ready")
RESTART_RE = re.compile(r"session (\d+) \([^)]+\): helper .*; restarting it in (\d+) ms")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except FileNotFoundError:
        return []


def fd_targets(pid):
    """{fd: readlink target} of a process's open descriptors."""
    out = {}
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except FileNotFoundError:
            pass  # closed while listing
    return out


def socket_inode(target):
    m = re.fullmatch(r"socket:\[(\d+)\]", target)
    return int(m.group(1)) if m else None


def unix_stream_inodes():
    """Inodes of the AF_UNIX stream sockets in /proc/net/unix."""
    out = set()
    with open("/proc/net/unix", encoding="utf-8") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) >= 7 and cols[4] == "0001":  # SOCK_STREAM
                out.add(int(cols[6]))
    return out


def unix_peers():
    """{inode: peer inode} of connected AF_UNIX sockets (ss -x), or None without ss."""
    try:
        res = subprocess.run(["ss", "-xan"], capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    out = {}
    for line in res.stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 8 and cols[-1].isdigit() and cols[-3].isdigit():
            out[int(cols[-3])] = int(cols[-1])
    return out


class Checks:
    def __init__(self, bin_dir):
        self.bin_dir = os.path.abspath(bin_dir)
        self.tmp = tempfile.mkdtemp(prefix="kasm-sessions-")
        os.chmod(self.tmp, 0o755)
        self.sessions = os.path.join(self.tmp, "sessions")
        self.log = os.path.join(self.tmp, "agent.log")
        self.made_users = []
        self.agent = None
        if os.geteuid() == 0:
            for tag in ("a", "b"):
                name = "kst" + secrets.token_hex(3) + tag
                subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True,
                               capture_output=True)
                self.made_users.append(name)
            self.users = list(self.made_users)
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            self.users = [me, me]

    def cleanup(self):
        if self.agent and self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait()
        for name in self.made_users:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
            subprocess.run(["userdel", "-r", name], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_sessions(self, lines):
        tmp = self.sessions + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, self.sessions)

    def log_text(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pred, what, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = pred(self.log_text())
            if r:
                return r
            if self.agent.poll() is not None:
                raise Fail(f"agent exited with {self.agent.returncode} while waiting for {what}")
            time.sleep(0.05)
        raise Fail(f"{what} did not happen within {timeout} s")

    def ready_pids(self, sid):
        return [int(m.group(3)) for m in READY_RE.finditer(self.log_text())
                if int(m.group(1)) == sid]

    def wait_ready(self, sid, count):
        """Waits until session sid's helper has been ready `count` times; its latest pid."""
        pids = self.wait_log(lambda t: (lambda p: p if len(p) >= count else None)(
            self.ready_pids(sid)), f"helper #{count} of session {sid} ready")
        return pids[count - 1]

    def start(self):
        cfg = os.path.join(self.tmp, "config.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("port: 0\nlisten_address: 127.0.0.1\ndebug: true\n"
                    "api_host: kasm.example.test\n"
                    "server_id: 0123456789abcdef0123456789abcdef\n"
                    f"log_file: {self.log}\n"
                    f"session_helper: {os.path.join(self.bin_dir, 'session_helper')}\n"
                    f"sessions_file: {self.sessions}\n"
                    f"admin_socket: {os.path.join(self.tmp, 'admin.sock')}\n")
        env = dict(os.environ, KASM_SESSION_POLL_MS="200")
        self.err = open(os.path.join(self.tmp, "stderr.txt"), "w")
        self.agent = subprocess.Popen([os.path.join(self.bin_dir, "agent"), "--console",
                                       "--cfg", cfg], stdout=subprocess.DEVNULL,
                                      stderr=self.err, env=env)

    # ---------------------------------------------------------------------------------------

    def test_spawn_as_user(self):
        self.write_sessions([f"1 {self.users[0]} console", f"2 {self.users[1]}  # second"])
        self.start()
        for sid, user in ((1, self.users[0]), (2, self.users[1])):
            pid = self.wait_ready(sid, 1)
            check(pid_alive(pid), f"helper pid {pid} of session {sid} is not running")
            cmd = proc_cmdline(pid)
            check(os.path.basename(cmd[0].decode()) == "session_helper",
                  f"pid {pid} runs {cmd[0]!r}, not session_helper")
            check(b"--session-id" in cmd and cmd[cmd.index(b"--session-id") + 1] ==
                  str(sid).encode(), f"pid {pid}: --session-id {sid} missing in {cmd!r}")
            check(b"--channel" in cmd, f"pid {pid}: no --channel")
            ps = subprocess.run(["ps", "-o", "user:64=,args=", "-p", str(pid)],
                                capture_output=True, text=True).stdout
            check("session_helper" in ps, f"ps does not show the helper: {ps!r}")
            pw = pwd.getpwnam(user)
            st = proc_status(pid)
            check(st["Uid"] == [str(pw.pw_uid)] * 4, f"helper of {user} has Uid {st['Uid']}")
            check(st["Gid"] == [str(pw.pw_gid)] * 4, f"helper of {user} has Gid {st['Gid']}")
            if os.geteuid() == 0:
                want = sorted(set(os.getgrouplist(user, pw.pw_gid)))
                check(sorted(int(g) for g in st["Groups"]) == want,
                      f"helper of {user} has groups {st['Groups']}, want {want}")
                check(ps.split()[0] in (user, str(pw.pw_uid)),
                      f"ps shows the helper as {ps.split()[0]}")
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
                check(f"HOME={pw.pw_dir}".encode() in env, "HOME is not the user's")
                check(f"USER={user}".encode() in env, "USER is not the user's")
        text = self.log_text()
        check("helper[session 1]: " in text, "no LOG line from the helper of session 1")
        check("HELLO: role helper" in text, "the helper's HELLO is not logged")

    def check_window(self, pid, n, agent, windows):
        """The helper's fd n is a shared window of the agent's, named by --shared, that no
        one can map writable or resize (sealed: DESIGN.md, Security rules), even reopened."""
        path = f"/proc/{pid}/fd/{n}"
        ino = os.stat(path).st_ino
        agent_inos = set()
        for an in agent:
            try:
                agent_inos.add(os.stat(f"/proc/{self.agent.pid}/fd/{an}").st_ino)
            except FileNotFoundError:
                pass
        check(ino in agent_inos, f"helper {pid}: its window (fd {n}) is not one of the agent's")
        cmd = proc_cmdline(pid)
        check(cmd[cmd.index(b"--shared") + 1] == str(n).encode(),
              f"helper {pid}: --shared is not its fd {n}")
        size = int(cmd[cmd.index(b"--shared-size") + 1])
        check(os.stat(path).st_size == size, f"helper {pid}: the window is not {size} bytes")
        fd = os.open(path, os.O_RDWR)  # root reopening it: the seals hold all the same
        try:
            try:
                mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                check(False, f"helper {pid}: its window can be mapped writable")
            except PermissionError:
                pass
            for bad in (0, size * 2):
                try:
                    os.ftruncate(fd, bad)
                    check(False, f"helper {pid}: its window can be resized to {bad}")
                except PermissionError:
                    pass
            view = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
            view.close()
        finally:
            os.close(fd)
        windows.append(ino)

    def test_helper_fds_are_only_the_channel(self):
        """Each helper holds stdin/stdout/stderr, ONE socket, the channel, whose peer is in
        the agent, and its own sealed shared window: nothing else of the agent (log file, TLS
        listener, the other helper's channel or window) leaked into it (DESIGN.md, Security
        rules: socketpair and window, nothing else)."""
        agent = fd_targets(self.agent.pid)
        agent_socks = {socket_inode(v) for v in agent.values()} - {None}
        check(any(v == os.path.realpath(self.log) for v in agent.values()),
              "the agent has no log file open")
        check(len(agent_socks) >= 3, f"the agent has {len(agent_socks)} sockets, want the "
              "TLS listener and two channels at least")
        streams = unix_stream_inodes()
        peers = unix_peers()
        channels, windows = [], []
        for sid in (1, 2):
            pid = self.ready_pids(sid)[-1]
            fds = fd_targets(pid)
            for n in (0, 1, 2):
                check(n in fds and fds[n] in (agent.get(n), "/dev/null"),
                      f"helper {pid}: fd {n} is {fds.get(n)!r}, want the agent's "
                      f"{agent.get(n)!r} or /dev/null")
            extra = {n: v for n, v in fds.items() if n > 2}
            windows_fds = {n: v for n, v in extra.items() if v.startswith("/memfd:kasm-shared")}
            check(len(windows_fds) == 1, f"helper {pid} of session {sid} has no shared window "
                  f"(descriptors {extra})")
            (wn, _), = windows_fds.items()
            self.check_window(pid, wn, agent, windows)
            del extra[wn]
            check(len(extra) == 1, f"helper {pid} of session {sid} has descriptors {extra}, "
                  "want only its channel and its window (something of the agent leaked into it)")
            (n, target), = extra.items()
            ino = socket_inode(target)
            check(ino is not None, f"helper {pid}: fd {n} is {target!r}, not a socket")
            check(ino not in agent_socks, f"helper {pid}: fd {n} is one of the agent's own "
                  f"sockets ({target})")
            check(ino in streams, f"helper {pid}: {target} is not an AF_UNIX stream socket")
            cmd = proc_cmdline(pid)
            check(cmd[cmd.index(b"--channel") + 1] == str(n).encode(),
                  f"helper {pid}: --channel is not its fd {n}")
            if peers is not None:
                check(peers.get(ino) in agent_socks, f"helper {pid}: the peer of its channel "
                      f"({peers.get(ino)}) is not a socket of the agent {sorted(agent_socks)}")
            channels.append(ino)
        check(channels[0] != channels[1], "the two helpers share a channel")
        check(windows[0] != windows[1], "the two helpers share a window")
        if peers is None:
            print("note: no `ss`: the channel's peer was not checked")

    def test_kill_restarts_with_growing_delay(self):
        pid = self.wait_ready(1, 1)
        os.kill(pid, signal.SIGKILL)
        pid2 = self.wait_ready(1, 2)
        check(pid2 != pid, "the restarted helper has the old pid")
        check(not pid_alive(pid), f"the killed helper {pid} was not reaped")
        # Crash it again as soon as it is up: each quick death doubles the wait.
        os.kill(pid2, signal.SIGKILL)
        pid3 = self.wait_ready(1, 3)
        os.kill(pid3, signal.SIGKILL)
        self.wait_ready(1, 4)
        delays = [int(m.group(2)) for m in RESTART_RE.finditer(self.log_text())
                  if m.group(1) == "1"]
        check(delays[:3] == [1000, 2000, 4000], f"restart delays {delays}, want 1000, 2000, 4000")
        started = [m for m in STARTED_RE.finditer(self.log_text()) if m.group(1) == "1"]
        check(len(started) == 4, f"{len(started)} starts of session 1's helper, want 4")
        # The other session was not disturbed.
        check(len(self.ready_pids(2)) == 1, "session 2's helper was restarted too")

    def test_logoff_stops_helper(self):
        pid1 = self.ready_pids(1)[-1]
        pid2 = self.ready_pids(2)[-1]
        self.write_sessions([f"1 {self.users[0]} console"])
        self.wait_log(lambda t: "session 2: user" in t and "logged off" in t, "session 2 logoff")
        end = time.monotonic() + TIMEOUT
        while pid_alive(pid2) and time.monotonic() < end:
            time.sleep(0.05)
        check(not pid_alive(pid2), f"the helper of the logged-off session ({pid2}) still runs")
        check(pid_alive(pid1), "the helper of session 1 stopped too")

    def test_stop_leaves_no_helper(self):
        pid1 = self.ready_pids(1)[-1]
        agent_pid = self.agent.pid
        self.agent.send_signal(signal.SIGTERM)
        try:
            rc = self.agent.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail("the agent did not stop within 30 s")
        check(rc == 0, f"agent exit {rc}")
        check(not pid_alive(pid1), f"helper {pid1} survived the agent")
        every = [int(m.group(3)) for m in STARTED_RE.finditer(self.log_text())]
        check(every, "no helper was ever started")
        left = [p for p in every if pid_alive(p)]
        check(not left, f"helpers left behind after the agent stopped: {left}")
        for d in os.listdir("/proc"):  # nor any child the agent had
            if d.isdigit():
                try:
                    ppid = int(proc_status(int(d))["PPid"][0])
                except (OSError, KeyError, IndexError):
                    continue
                check(ppid != agent_pid, f"process {d} of the stopped agent left behind")
        check("session manager stopped" in self.log_text(), "no 'session manager stopped'")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.bin_dir, "session_helper")):
        print("skipped: no session_helper in", args.bin_dir)
        return 77
    c = Checks(args.bin_dir)
    failed = 0
    try:
        for name in ("test_spawn_as_user", "test_helper_fds_are_only_the_channel",
                     "test_kill_restarts_with_growing_delay",
                     "test_logoff_stops_helper", "test_stop_leaves_no_helper"):
            try:
                getattr(c, name)()
                print(f"ok   {name}")
            except Fail as e:
                failed += 1
                print(f"FAIL {name}: {e}")
                print("---- agent log ----\n" + c.log_text()[-6000:])
                break  # the later checks build on the earlier ones
    finally:
        c.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
