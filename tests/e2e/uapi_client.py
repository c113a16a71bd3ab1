#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A UAPI client that misbehaves on purpose, for uapi_abuse.sh: one mode per run.

Usage: uapi_client.py SOCKET MODE [ARG]
  get                one get=1; prints the answer; exit 1 unless it ends errno=0
  set TEXT           one set=1 with TEXT's lines (\\n-separated); exit 1 unless errno=0
  refused            get=1; exit 0 when the server hangs up without a byte
  overlong           a set line of 5,000 bytes; prints the reply, then "eof" once closed
  silent             says nothing; prints the seconds until the server hangs up
  drip SECONDS       set=1, then one byte every SECONDS; prints "cut S bytes_read N"
  cap N              N connections each served a get, then one more; prints
                     "extra_eof_s S held_ok K" (K of N still answer afterwards)
  flood N IDLE       N connections at once, none says anything; prints "early E late L
                     open_max M", where early ones were closed before IDLE/2 seconds
                     and late ones at IDLE or after (M: those not closed early)
Every wait is bounded (30 s): a server that never answers fails the run.
"""
import resource
import selectors
import socket
import sys
import time

LIMIT = 30.0


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(LIMIT)
    s.connect(path)
    return s


def read_reply(s):
    """Bytes up to the first blank line, or to EOF."""
    buf = b""
    while b"\n\n" not in buf:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        buf += d
    return buf


def read_eof(s):
    """Everything until the server hangs up."""
    buf = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return buf
        if not d:
            return buf
        buf += d


def get(path):
    s = connect(path)
    s.sendall(b"get=1\n\n")
    r = read_reply(s)
    s.close()
    return r


def main():
    path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "get":
        r = get(path)
        sys.stdout.write(r.decode())
        return 0 if r.endswith(b"errno=0\n\n") else 1
    if mode == "set":
        s = connect(path)
        s.sendall(b"set=1\n" + args[0].encode() + b"\n\n")
        r = read_reply(s)
        print(r.decode().strip())
        return 0 if r == b"errno=0\n\n" else 1
    if mode == "refused":
        s = connect(path)
        try:
            s.sendall(b"get=1\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_eof(s)
        print("got %d bytes" % len(r))
        return 0 if not r else 1
    if mode == "overlong":
        s = connect(path)
        try:
            s.sendall(b"set=1\nendpoint=" + b"1" * 5000 + b"\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_reply(s)
        print(r.decode().strip())
        print("eof" if read_eof(s) == b"" else "more")
        return 0
    if mode == "silent":
        s = connect(path)
        t0 = time.monotonic()
        r = read_eof(s)
        print("%.2f %d" % (time.monotonic() - t0, len(r)))
        return 0
    if mode == "drip":
        step = float(args[0])
        s = connect(path)
        s.setblocking(False)
        body = b"set=1\n" + b"fwmark=1\n" * 1000
        t0 = time.monotonic()
        got = b""
        i = 0
        while time.monotonic() - t0 < LIMIT:
            try:
                s.send(body[i:i + 1])
                i += 1
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(step)
            try:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break
        print("cut %.2f bytes_read %d" % (time.monotonic() - t0, len(got)))
        return 0
    if mode == "cap":
        n = int(args[0])
        held = [connect(path) for _ in range(n)]
        for s in held:
            s.sendall(b"get=1\n\n")
            if not read_reply(s).endswith(b"errno=0\n\n"):
                print("a held connection got no answer")
                return 1
        extra = connect(path)
        t0 = time.monotonic()
        try:
            extra.sendall(b"get=1\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_eof(extra)
        dt = time.monotonic() - t0
        ok = 0
        for s in held:
            s.sendall(b"get=1\n\n")
            ok += read_reply(s).endswith(b"errno=0\n\n")
        print("extra_eof_s %.2f extra_bytes %d held_ok %d" % (dt, len(r), ok))
        return 0
    if mode == "flood":
        n, idle = int(args[0]), float(args[1])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * n + 64)), hard))
        sel = selectors.DefaultSelector()
        t0 = time.monotonic()
        for _ in range(n):
            s = connect(path)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed = []
        while len(closed) < n and time.monotonic() - t0 < LIMIT:
            for key, _ in sel.select(timeout=1.0):
                try:
                    d = key.fileobj.recv(16)
                except ConnectionResetError:
                    d = b""
                if d:
                    print("a flood connection got bytes")
                    return 1
                closed.append(time.monotonic() - t0)
                sel.unregister(key.fileobj)
                key.fileobj.close()
        early = sum(1 for t in closed if t < idle / 2)
        late = sum(1 for t in closed if t >= idle)
        print("early %d late %d open_max %d" % (early, late, n - early))
        return 0
    print("unknown mode " + mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
