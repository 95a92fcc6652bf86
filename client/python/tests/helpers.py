"""Shared test helpers: fast retry settings, the lost-log capture, and
the shape of an expected document."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Dict, List

#: Settings that make a misbehaving endpoint cost a test about a second,
#: not the production defaults' tens of seconds.
FAST_RETRIES = {
    "initial_backoff": 0.02,
    "max_backoff": 0.2,
    "max_retry_time": 1.0,
    "connect_timeout": 0.5,
    "io_timeout": 0.5,
    "max_batch_delay": 0.02,
}


class LostLog(logging.Handler):
    """Every record logged on ``helios.lost`` during a test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.records.append(record)

    def snapshot(self) -> List[logging.LogRecord]:
        with self._lock:
            return list(self.records)

    def messages(self) -> List[str]:
        return [record.getMessage() for record in self.snapshot()]

    def documents(self) -> Dict[str, dict]:
        """The logged documents by ``_id``; each message ends with the
        document, which starts with its ``_id``."""
        docs = {}
        for message in self.messages():
            start = message.find('{"_id":"')
            if start >= 0 and "TRUNCATED" not in message:
                doc = json.loads(message[start:])
                docs[doc["_id"]] = doc
        return docs

    def wait_for(self, ids, timeout: float = 15.0) -> Dict[str, dict]:
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            docs = self.documents()
            if wanted <= set(docs) or time.monotonic() > deadline:
                return docs
            time.sleep(0.02)


def expected_document(event_id: str, event_type: str, fields: dict) -> dict:
    """What a logged or stored document must hold, ``ts`` aside."""
    return {"_id": event_id, "type": event_type, "host": "test-host", **fields}


def without_ts(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("ts", "recv")}
