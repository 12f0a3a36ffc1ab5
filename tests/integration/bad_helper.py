#!/usr/bin/python3
"""bad_helper.py - a session helper that breaks the protocol, for test_bad_helper.py.

Started by the agent in place of session_helper (config key session_helper) with the same
command line (--channel FD --session-id N ...). Session KASM_TEST_GOOD_SESSION execs the real
helper (KASM_TEST_REAL_HELPER) with the same arguments; the others do what
KASM_TEST_BAD_MODE says, then wait for the agent to hang up:
  garbage    16 bytes that are not a frame header
  oversized  a correct HELLO, then a DATA header announcing 1 GiB
"""
import json
import os
import struct
import sys

MAGIC = (0x4B41 << 16) | 1
HELLO, DATA = 1, 5


def frame(ftype, payload=b"", req=0, length=None):
    n = len(payload) if length is None else length
    return struct.pack("<IIII", MAGIC, ftype, n, req) + payload


def main():
    args = sys.argv[1:]
    fd = int(args[args.index("--channel") + 1])
    session = args[args.index("--session-id") + 1]
    if session == os.environ.get("KASM_TEST_GOOD_SESSION"):
        real = os.environ["KASM_TEST_REAL_HELPER"]
        os.execv(real, [real] + args)
    mode = os.environ.get("KASM_TEST_BAD_MODE", "garbage")
    hello = json.dumps({"product": "kasm-open-agent", "version": os.environ["KASM_TEST_VERSION"],
                        "proto": 1, "role": "helper", "pid": os.getpid(), "window": 1 << 20,
                        "session_id": int(session), "user": "bad"}).encode()
    try:
        if mode == "garbage":
            os.write(fd, b"GET / HTTP/1.1\r\n")
        else:
            os.write(fd, frame(HELLO, hello))
            os.write(fd, frame(DATA, req=2, length=1 << 30))
        while os.read(fd, 65536):  # until the agent hangs up
            pass
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
