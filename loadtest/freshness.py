#!/usr/bin/env python3
"""Freshness probe (issue 22): how long after its ack an event is visible
to queries (the report API's `GET /api/events/{id}`) and to the live tail
(`GET /api/tail`, server-sent events).

    freshness.py COLLECTOR_URL REPORT_URL [PROBES] [INTERVAL_S]

Every INTERVAL_S (default 0.2 s) it posts one event with its own `_id` to
the collector, notes when the 200 came back (the ack: the event is
durable), then polls the report API every 2 ms until the event is found.
A tail opened before the first probe notes when each probe's id appears.
Prints p50/p99/max of both delays in ms, and a JSON line. Run it beside a
background load (loadtest/freshness.sh does). Standard library only.
"""

import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

POLL_S = 0.002
GIVE_UP_S = 30.0
EVENT_TYPE = "freshness.probe"


def connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=GIVE_UP_S
    ), parts.path


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Tail(threading.Thread):
    """Reads the live tail and notes when each `_id` first appears."""

    def __init__(self, report_url: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.conn, _ = connect(report_url)
        self.conn.request("GET", f"/api/tail?types={EVENT_TYPE}")
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise SystemExit(f"tail answered HTTP {self.response.status}")

    def run(self) -> None:
        for raw in self.response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            now = time.monotonic()
            try:
                event = json.loads(line[len("data:") :])
            except ValueError:
                continue
            events = event if isinstance(event, list) else [event]
            with self.lock:
                for item in events:
                    if isinstance(item, dict) and isinstance(item.get("_id"), str):
                        self.seen.setdefault(item["_id"], now)


def main() -> int:
    collector_url, report_url = sys.argv[1], sys.argv[2]
    probes = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    interval_s = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
    tail = Tail(report_url)
    tail.start()
    collector, post_path = connect(collector_url)
    report, _ = connect(report_url)
    acked_at: dict[str, float] = {}
    query_ms: list[float] = []
    for n in range(probes):
        started = time.monotonic()
        event_id = os.urandom(12).hex()
        body = json.dumps({"_id": event_id, "type": EVENT_TYPE, "n": n})
        collector.request("POST", post_path, body, {"Content-Type": "application/json"})
        response = collector.getresponse()
        response.read()
        if response.status != 200:
            print(f"probe {n}: HTTP {response.status}", file=sys.stderr)
            return 1
        acked = time.monotonic()
        acked_at[event_id] = acked
        while True:
            report.request("GET", f"/api/events/{event_id}")
            answer = report.getresponse()
            answer.read()
            if answer.status == 200:
                query_ms.append((time.monotonic() - acked) * 1000)
                break
            if time.monotonic() - acked > GIVE_UP_S:
                print(f"probe {n}: not visible after {GIVE_UP_S} s", file=sys.stderr)
                return 1
            time.sleep(POLL_S)
        time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        with tail.lock:
            if all(i in tail.seen for i in acked_at):
                break
        time.sleep(0.05)
    with tail.lock:
        tail_ms = [
            (tail.seen[i] - t) * 1000 for i, t in acked_at.items() if i in tail.seen
        ]
    missing = len(acked_at) - len(tail_ms)
    result = {
        "probes": probes,
        "query_ms": summary(query_ms),
        "tail_ms": summary(tail_ms) if tail_ms else None,
        "tail_missing": missing,
    }
    for name in ("query_ms", "tail_ms"):
        figures = result[name]
        if figures:
            print(
                f"{name[:-3]:>5}: p50 {figures['p50']:.1f} ms  p90 {figures['p90']:.1f} ms  "
                f"p99 {figures['p99']:.1f} ms  "
                f"max {figures['max']:.1f} ms  (after the ack)"
            )
    if missing:
        print(f"tail: {missing} probes never seen on the tail", file=sys.stderr)
    print(json.dumps(result))
    return 1 if missing else 0


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


if __name__ == "__main__":
    sys.exit(main())
