#!/usr/bin/env python3
"""Memory with many idle keep-alive connections (a benchmark, not a test).

Starts helios-collector, opens N connections (default 10,000), sends one
event on each so every connection has been served once and is idle in
keep-alive, then reports the collector's RSS before and after.

    python3 loadtest/idle_conns.py [N]

Loopback only. Needs `ulimit -n` above N for this script (it raises its own
soft limit) and the collector (started from here, it inherits it).
"""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
PORT = 18208
BIN = os.environ.get("HELIOS_COLLECTOR", "target/release/helios-collector")
BODY = b'{"type":"idle"}'
REQ = b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N + 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, want), hard), hard))
    data = tempfile.mkdtemp(prefix="helios-idle-")
    proc = subprocess.Popen(
        [BIN, "--listen", f"127.0.0.1:{PORT}", "--data-dir", data, "--cores", "2",
         "--log-format", "json", "--max-connections-per-core", str(N)],
        stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", PORT)).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        conns = []
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", PORT))
            s.sendall(REQ)
            conns.append(s)
        answered = 0
        for s in conns:
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                answered += 1
        time.sleep(1.0)
        after = rss_kib(proc.pid)
        print(f"{N} idle keep-alive connections ({answered} answered 200): collector RSS "
              f"{before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after "
              f"({(after - before) * 1024 / N:.0f} bytes per connection)")
        for s in conns:
            s.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
