"""Send a few events to a Helios collector.

    python examples/quickstart.py                       # http://127.0.0.1:7070
    python examples/quickstart.py http://collector:7070

Start a collector first (from the repository root: ``cargo run --release``).
"""

from __future__ import annotations

import datetime
import decimal
import logging
import sys

import helios


def main() -> int:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7070"
    # Undeliverable events are logged whole on "helios.lost"; show them.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    client = helios.Client(endpoint, app="quickstart")

    # record() returns the event's _id at once and never raises.
    order_id = client.record(
        "order.placed",
        {"order": 42, "total": decimal.Decimal("19.99"), "currency": "EUR", "items": 3},
    )
    client.record("user.signup", plan="pro", referrer=None, at=datetime.datetime.now())

    # Route the app's own logging to Helios as events of type "log".
    log = logging.getLogger("quickstart")
    log.addHandler(helios.LogHandler(client))
    log.warning("payment for order %s took %d ms", 42, 312, extra={"order": 42})

    delivered = client.flush(timeout=5.0)
    print(f"order event {order_id}; delivered: {delivered}")
    print(client.stats())
    client.close()
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
