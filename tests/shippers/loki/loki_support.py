"""Helpers of the Loki suites: plain HTTP pushes (for what no client will
send: broken bodies, wrong compression), backpressure made real by holding
the store's write lock, and the winston-loki script."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from shipper_support import INGEST_KEY, ShipperCollector

PUSH = "/loki/api/v1/push"
NODE_DIR = Path(__file__).resolve().parent / "node"
PUSH_JS = NODE_DIR / "push.js"
#: The journal budget that a few dozen 1 KiB entries exhaust.
SMALL_BUDGET_BYTES = 65536


def basic(key: str) -> str:
    """What Loki clients send: Basic auth whose password is the key."""
    return "Basic " + base64.b64encode(f"loki:{key}".encode()).decode()


def push(
    collector: ShipperCollector,
    body: bytes,
    content_type: str = "application/json",
    key: str | None = INGEST_KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, str]]:
    """POSTs ``body`` to the push endpoint; returns status, text, headers."""
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if key is not None:
        all_headers["Authorization"] = basic(key)
    request = urllib.request.Request(collector.url + PUSH, data=body, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def json_push(job: str, entries: list[tuple[str, str]], **labels: str) -> bytes:
    """A JSON push of one stream with ``job`` and ``labels``."""
    stream = {"stream": {"job": job, **labels}, "values": [list(e) for e in entries]}
    return json.dumps({"streams": [stream]}).encode()


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)


def of_type(collector: ShipperCollector, type_: str, count: int, timeout: float = 30) -> list:
    """The stored events of ``type_`` once there are ``count`` (or the
    timeout passed), after a pause that would show a duplicate."""
    deadline = time.monotonic() + timeout
    while True:
        docs = [d for d in collector.documents() if d["type"] == type_]
        if len(docs) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    return [d for d in collector.documents() if d["type"] == type_]


def fill_until_busy(collector: ShipperCollector, limit: int = 500) -> int:
    """Pushes 1 KiB entries until the collector answers 503 with
    ``Retry-After``; returns how many pushes were stored before."""
    for accepted in range(limit):
        body = json_push("filler", [(str(1765108800000000000 + accepted), "f" * 1024)])
        status, text, headers = push(collector, body)
        if status == 503:
            assert text.startswith("busy: "), text
            assert headers.get("Content-Type") == "text/plain; charset=utf-8"
            assert headers.get("Retry-After") == "1"
            return accepted
        assert (status, text) == (204, ""), (status, text)
    raise AssertionError(f"no 503 after {limit} pushes past a {SMALL_BUDGET_BYTES}-byte budget")


def winston_env(
    collector: ShipperCollector,
    records: list[dict],
    options: dict | None = None,
    key: str = INGEST_KEY,
) -> dict[str, str]:
    """The environment of push.js."""
    return {
        "LOKI_HOST": collector.url,
        "LOKI_AUTH": f"loki:{key}",
        "LOKI_RECORDS": json.dumps(records),
        "LOKI_OPTIONS": json.dumps(options or {}),
    }


def start_winston(env: dict[str, str]) -> subprocess.Popen:
    """push.js in handshake mode: it reports its first connection error on
    stdout and waits for a line on stdin before closing the transport."""
    return subprocess.Popen(
        ["node", str(PUSH_JS)],
        cwd=NODE_DIR,
        env={**os.environ, **env, "LOKI_HANDSHAKE": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
