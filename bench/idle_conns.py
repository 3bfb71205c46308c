#!/usr/bin/env python3
"""Hold N idle keep-alive connections open to HOST:PORT: each sends one GET and reads its whole
answer, then stays open and silent. Prints "open N" once every connection has had its answer,
then holds them until stdin closes (or SECONDS pass). Fails (exit 1) if any answer is not 200.

Usage: bench/idle_conns.py HOST PORT N [SECONDS]
"""

import socket
import sys
import time


def read_answer(s: socket.socket) -> bytes:
    """One HTTP/1.1 answer with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return head


def main() -> int:
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 3600.0
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        conns.append(s)
    for s in conns:
        head = read_answer(s)
        if not head.startswith(b"HTTP/1.1 200"):
            print(f"answer: {head[:40]!r}", file=sys.stderr)
            return 1
    print(f"open {len(conns)}", flush=True)
    deadline = time.time() + hold
    # Until stdin closes: the caller measures, then closes our stdin.
    while time.time() < deadline:
        if not sys.stdin.read(1):
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
