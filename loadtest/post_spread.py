#!/usr/bin/env python3
"""Posts EVENTS copies of the reference event, 100 per request, with `ts`
spread evenly over the day ending DAYS_AGO days back: in time order
(`sorted`) or shuffled across the whole run (`random`), so drain.sh can
compare how fast the store takes events out of time order (issue 22).

    post_spread.py URL EVENTS sorted|random [EVENT_FILE]

Standard library only; one keep-alive connection; exits non-zero on the
first request not answered 200.
"""

import datetime
import http.client
import json
import random
import sys
import urllib.parse

EVENTS_PER_REQUEST = 100
DAY_MS = 86_400_000
DAYS_AGO = 7
SEED = 22


def main() -> int:
    url, events, order = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    event_file = sys.argv[4] if len(sys.argv) > 4 else "../shared/bench/event.json"
    if order not in ("sorted", "random"):
        print(f"order must be sorted or random, not {order!r}", file=sys.stderr)
        return 2
    with open(event_file, encoding="utf-8") as f:
        template = json.load(f)
    now_ms = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
    start_ms = now_ms - DAYS_AGO * DAY_MS
    step_ms = DAY_MS / events
    offsets = [int(i * step_ms) for i in range(events)]
    if order == "random":
        random.Random(SEED).shuffle(offsets)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    for first in range(0, events, EVENTS_PER_REQUEST):
        lines = []
        for offset in offsets[first : first + EVENTS_PER_REQUEST]:
            ts = datetime.datetime.fromtimestamp(
                (start_ms + offset) / 1000, datetime.UTC
            )
            template["ts"] = (
                ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
            )
            lines.append(json.dumps(template, separators=(",", ":")))
        body = ("\n".join(lines) + "\n").encode()
        conn.request("POST", parts.path, body, {"Content-Type": "application/x-ndjson"})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            print(f"HTTP {response.status}: {answer[:200]!r}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
