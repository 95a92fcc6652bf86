"""How long ``Client.record()`` takes for a 300-byte event: p50, p99, max.

The target (issue 15) is a p99 under 50 us. Each call is timed alone with
``time.perf_counter_ns`` while the client's sender thread delivers to a real
collector, so the numbers include what the sender costs the recording
thread (the GIL, the queue lock). The event is ../shared/bench/event.json,
the reference load's event, without its fixed ``ts`` and ``host`` (the
client stamps both, as for a real app).

    python bench/record_latency.py                   # starts a collector
    python bench/record_latency.py --endpoint http://127.0.0.1:7070
    python bench/record_latency.py --rate 20000      # paced, events/s

Without ``--endpoint`` it starts ``HELIOS_COLLECTOR_BIN`` (default
``<repo>/target/debug/helios-collector``) on a free port in a temporary
data directory, and stops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import helios
from helios import _encode

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE_EVENT = REPO_ROOT.parent / "shared" / "bench" / "event.json"
#: The reference event, for checkouts without ../shared beside them.
FALLBACK_EVENT = {
    "type": "order.placed",
    "service": "checkout-api",
    "level": "info",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "user_id": "u-12345678",
    "message": "order placed",
    "amount": 129.95,
    "currency": "EUR",
    "items": 3,
    "pad": "",
}


def load_event(path: Optional[str]) -> dict:
    source = Path(path) if path else REFERENCE_EVENT
    event = json.loads(source.read_text()) if source.is_file() else dict(FALLBACK_EVENT)
    # The client stamps ts and host itself, as it would for a real app.
    event.pop("ts", None)
    event.pop("host", None)
    return event


def start_collector(data_dir: str) -> tuple[subprocess.Popen, str]:
    binary = os.environ.get("HELIOS_COLLECTOR_BIN") or str(
        REPO_ROOT / "target/debug/helios-collector"
    )
    if not os.access(binary, os.X_OK):
        sys.exit(f"no collector at {binary}: build it, set HELIOS_COLLECTOR_BIN, or --endpoint")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOS_")}
    process = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, "--cores", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("the collector did not start")


def percentile(sorted_ns: List[int], fraction: float) -> float:
    index = min(len(sorted_ns) - 1, int(fraction * len(sorted_ns)))
    return sorted_ns[index] / 1000.0


def measure(client: helios.Client, event: dict, count: int, rate: float) -> List[int]:
    event_type = event["type"]
    fields = {k: v for k, v in event.items() if k != "type"}
    record = client.record
    clock = time.perf_counter_ns
    interval_ns = int(1e9 / rate) if rate > 0 else 0
    next_at = clock()
    samples = [0] * count
    for i in range(count):
        if interval_ns:
            next_at += interval_ns
            while clock() < next_at:
                pass
        started = clock()
        record(event_type, fields)
        samples[i] = clock() - started
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoint", help="collector URL (default: start one)")
    parser.add_argument("--events", type=int, default=200_000, help="timed record() calls")
    parser.add_argument("--warmup", type=int, default=5_000, help="untimed calls first")
    parser.add_argument("--rate", type=float, default=0, help="events/s; 0 = back to back")
    parser.add_argument("--event", help="JSON file of the event (default: shared/bench)")
    args = parser.parse_args()

    event = load_event(args.event)
    data_dir = None
    process = None
    endpoint = args.endpoint
    if endpoint is None:
        data_dir = tempfile.mkdtemp(
            prefix="helios-bench-", dir=os.environ.get("TMPDIR", "/var/tmp")
        )
        process, endpoint = start_collector(data_dir)
    try:
        # Room for the whole run: a drop (and its log line) is not what is measured.
        client = helios.Client(
            endpoint,
            queue_capacity=args.events + args.warmup,
            queue_capacity_bytes=1 << 30,
            max_event_bytes=1 << 20,
        )
        fields = {k: v for k, v in event.items() if k != "type"}
        # The encoded size, as record() builds it (same host default).
        defaults = _encode.default_fields_json({"host": socket.gethostname()})
        doc_bytes = len(_encode.encode_event("0" * 24, 0, event["type"], fields, defaults))
        measure(client, event, args.warmup, args.rate)
        samples = sorted(measure(client, event, args.events, args.rate))
        delivered = client.flush(60.0)
        stats = client.stats()
        client.close(10.0)
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)

    pace = f"{args.rate:.0f}/s" if args.rate else "back to back"
    print(f"record() latency, {args.events} events of {doc_bytes} bytes ({pace})")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"p50    {percentile(samples, 0.50):8.1f} us")
    print(f"p90    {percentile(samples, 0.90):8.1f} us")
    print(f"p99    {percentile(samples, 0.99):8.1f} us")
    print(f"p99.9  {percentile(samples, 0.999):8.1f} us")
    print(f"max    {samples[-1] / 1000.0:8.1f} us")
    print(
        f"delivered: {delivered}; sent {stats.sent}, dropped {stats.dropped}, "
        f"batches {stats.batches_sent}, retried {stats.retried}"
    )


if __name__ == "__main__":
    main()
