"""The background sender: batching, delivery, retries, fail-over.

One daemon thread per client owns every connection, so requests need no
lock and a batch is never in two places at once. It moves queued documents
into a batch until ``max_batch_events`` or ``max_batch_bytes`` is reached or
``max_batch_delay`` has passed (or a flush or close asks for it), encodes
the body once, and sends that same body on every attempt, so a resend is
byte-identical (same ``_id``s; the collector stores it once). Only
``Helios-Sent-At`` changes per attempt.

An exception inside the loop (a bug) is caught, the events it held are
logged as lost, and the loop goes on after a pause: nothing the network
sends can stop the thread, and nothing reaches the app.
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from collections import deque
from typing import TYPE_CHECKING, Deque, Dict, List, Optional, Tuple

from . import _lost
from ._http import AttemptError, Response, Transport
from ._lost import client_logger

if TYPE_CHECKING:
    from ._client import _Core

#: Name of the sender thread (shows in debuggers and ``py-spy``).
SENDER_THREAD_NAME = "helios-sender"
#: Pause before the loop goes on after an internal error, so a bug cannot spin.
_RESTART_PAUSE = 0.1
#: Longest a backoff sleep goes without re-checking the shutdown deadline.
_SLEEP_SLICE = 0.05
#: gzip level: 1 is several times faster than the default and still
#: shrinks JSON events about fivefold; the sender's CPU time is the app's.
_GZIP_LEVEL = 1
#: zlib ``wbits`` that make a gzip stream (header and trailer).
_GZIP_WBITS = 31
_USER_AGENT_PREFIX = "helios-client-python/"


class _Failure:
    """A failed attempt worth retrying."""

    __slots__ = ("reason", "retry_after")

    def __init__(self, reason: str, retry_after: Optional[float] = None) -> None:
        self.reason = reason
        self.retry_after = retry_after


def parse_verdict(body: bytes, batch_len: int) -> Tuple[List[Tuple[int, str]], Optional[str]]:
    """Reads ``{"accepted": n, "rejected": [{"index": i, "error": "..."}]}``.

    Returns ``(rejected, problem)``: each distinct in-range rejected index
    with its reason, and why the body could not be fully trusted, if so.
    """
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        return [], f"not JSON: {error}"
    if not isinstance(value, dict):
        return [], "not a JSON object"
    problem: Optional[str] = None
    seen = set()
    rejected: List[Tuple[int, str]] = []
    entries = value.get("rejected")
    for entry in entries if isinstance(entries, list) else []:
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, bool) or not isinstance(index, int):
            problem = "a rejected entry has no index"
            continue
        if not 0 <= index < batch_len:
            problem = f"rejected index {index} out of range"
            continue
        if index in seen:
            continue
        seen.add(index)
        error = entry.get("error")
        reason = error if isinstance(error, str) else "no reason given"
        rejected.append((index, _lost.one_line(reason)))
    accepted = value.get("accepted")
    expected = batch_len - len(rejected)
    if accepted != expected and problem is None:
        problem = f"accepted is {accepted!r}, expected {expected}"
    return rejected, problem


def quote_error(body: bytes) -> str:
    """``error: detail`` from a JSON error body, else the body's start as
    text; always one bounded line."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        detail = value.get("detail")
        if isinstance(detail, str):
            return _lost.one_line(f"{value['error']}: {detail}")
        return _lost.one_line(value["error"])
    return _lost.one_line(body[: _lost.MAX_QUOTED_TEXT_BYTES].decode("utf-8", "replace"))


class Delivery:
    """Gets one batch to a server, retrying per policy; every event ends
    counted as sent, rejected or dropped (and logged)."""

    def __init__(self, core: _Core, version: str) -> None:
        config = core.config
        self._core = core
        self._config = config
        self._transport = Transport(
            config.endpoints, config.connect_timeout, config.io_timeout, config.ssl_context
        )
        #: Index of the endpoint the next attempt goes to (sticky after a
        #: fail-over, so a healthy endpoint keeps getting the traffic).
        self._endpoint = 0
        self._random = random.Random()
        self._last_sent_at_ms = 0
        headers = {
            "Content-Type": "application/x-ndjson",
            "User-Agent": _USER_AGENT_PREFIX + version,
        }
        if config.gzip:
            headers["Content-Encoding"] = "gzip"
        if config.api_key is not None:
            headers["Authorization"] = "Bearer " + config.api_key
        self._headers = headers

    @property
    def transport(self) -> Transport:
        return self._transport

    def deliver(self, batch: List[bytes]) -> None:
        core = self._core
        body = self._encode_body(batch)
        first_attempt_at = time.monotonic()
        attempt = 0
        # Every pass settles the batch or counts one attempt, so the loop
        # ends within max_attempts passes.
        while True:
            if core.deadline_passed():
                core.lose_at_deadline(batch)
                return
            attempt += 1
            if attempt > 1:
                core.count_retry()
            try:
                response = self._transport.post(
                    self._endpoint, body, self._attempt_headers(), core.shutdown_deadline()
                )
                failure = self._judge(batch, response)
            except AttemptError as error:
                failure = _Failure(str(error))
            if failure is None:
                return
            if core.deadline_passed():
                core.lose_at_deadline(batch)
                return
            wait = max(self._backoff(attempt), failure.retry_after or 0.0)
            elapsed = time.monotonic() - first_attempt_at
            if attempt >= self._config.max_attempts or elapsed + wait > self._config.max_retry_time:
                core.lose(batch, _lost.retries_exhausted(attempt, failure.reason))
                return
            client_logger.warning(
                "helios send of %d events failed (attempt %d/%d): %s; retrying in %d ms",
                len(batch),
                attempt,
                self._config.max_attempts,
                failure.reason,
                round(wait * 1000),
            )
            self._endpoint = (self._endpoint + 1) % self._transport.endpoint_count
            self._sleep(wait)

    def _judge(self, batch: List[bytes], response: Response) -> Optional[_Failure]:
        """Settles the batch from a response, or says why to try again."""
        status = response.status
        url = self._transport.url(self._endpoint)
        if 200 <= status < 300:
            self._accepted(batch, response.body, url)
            return None
        reason = f"{url}: HTTP {status} {quote_error(response.body)}"
        if status in (408, 429) or 500 <= status < 600:
            return _Failure(reason, response.retry_after)
        if status == 413 and len(batch) > 1:
            # The server's size limits are smaller than ours: halves fit
            # sooner or later, down to single events (judged on their own).
            middle = len(batch) // 2
            self.deliver(batch[:middle])
            self.deliver(batch[middle:])
            return None
        # Any other status is the server's final word on the whole batch.
        self._core.reject(batch, _lost.rejected(reason))
        return None

    def _accepted(self, batch: List[bytes], body: bytes, url: str) -> None:
        """Counts a 2xx answer and logs each event it rejected, with the
        server's reason."""
        rejected, problem = parse_verdict(body, len(batch))
        if problem is not None:
            # A 2xx means stored (DESIGN.md section 1), so the events count
            # as sent even when the body does not say which.
            client_logger.warning(
                "helios server %s answered 2xx with an unexpected body (%s): %s",
                url,
                problem,
                quote_error(body),
            )
        self._core.accept(batch, rejected)

    def _attempt_headers(self) -> Dict[str, str]:
        headers = dict(self._headers)
        # Never a value an earlier attempt used, so the server can tell
        # attempts apart even within one millisecond.
        now_ms = time.time_ns() // 1_000_000
        self._last_sent_at_ms = max(now_ms, self._last_sent_at_ms + 1)
        headers["Helios-Sent-At"] = str(self._last_sent_at_ms)
        return headers

    def _encode_body(self, batch: List[bytes]) -> bytes:
        body = b"\n".join(batch) + b"\n"
        if not self._config.gzip:
            return body
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        return compressor.compress(body) + compressor.flush()

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in ``[0, min(max_backoff, initial * 2^(attempt-1))]``."""
        exponent = min(attempt - 1, 62)
        ceiling = min(self._config.max_backoff, self._config.initial_backoff * (2**exponent))
        return self._random.uniform(0.0, ceiling)

    def _sleep(self, wait: float) -> None:
        """Sleeps ``wait`` seconds, cut short by the shutdown deadline."""
        end = time.monotonic() + wait
        while True:
            deadline = self._core.shutdown_deadline()
            until = end if deadline is None else min(end, deadline)
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _SLEEP_SLICE))


class Sender:
    """Moves documents from the client's queue into batches and delivers
    them; ``run`` is the thread's body, ``drain`` also serves a close that
    has no thread to ask."""

    def __init__(self, core: _Core, version: str) -> None:
        self._core = core
        config = core.config
        self._max_events = config.max_batch_events
        self._max_bytes = config.max_batch_bytes
        self._max_delay = config.max_batch_delay
        #: Documents taken from the shared queue in one O(1) swap, not yet
        #: in a batch (still counted as pending by the core).
        self._backlog: Deque[bytes] = deque()
        self._backlog_bytes = 0
        self._batch: List[bytes] = []
        self._batch_bytes = 0
        self.delivery = Delivery(core, version)

    def run(self) -> None:
        core = self._core
        try:
            while True:
                try:
                    self._loop()
                    return
                except Exception:  # noqa: BLE001 - a bug must not stop delivery
                    client_logger.exception("helios sender thread failed; going on")
                    self._lose_held(_lost.SENDER_FAILED)
                    time.sleep(_RESTART_PAUSE)
        finally:
            core.sender_exited()

    def _loop(self) -> None:
        """Sends every ``max_batch_delay`` tick, and at once whenever a
        batch is full or a flush waits; returns after a close drained it."""
        core = self._core
        next_tick = time.monotonic() + self._max_delay
        while True:
            if core.closing():
                self.drain()
                return
            full = self._fill()
            now = time.monotonic()
            due = now >= next_tick or core.flush_wanted()
            if self._batch and (full or due):
                self._send_batch()
                if due:
                    next_tick = time.monotonic() + self._max_delay
                continue
            if now >= next_tick:
                next_tick = now + self._max_delay
            core.wait_for_wake(next_tick - now)

    def drain(self) -> None:
        """Delivers everything queued, batch by batch; once the shutdown
        deadline has passed each batch is logged as lost instead."""
        # Ends when the queue is empty: record() refuses new events once
        # close began, so the queue only shrinks.
        while True:
            self._fill()
            if not self._batch:
                return
            self._send_batch()

    def _fill(self) -> bool:
        """Moves documents into the batch; True when it is full."""
        batch = self._batch
        moved_events = 0
        moved_bytes = 0
        full = False
        while True:
            room_events = self._max_events - len(batch)
            if room_events <= 0:
                full = True
                break
            if not self._backlog:
                self._backlog, self._backlog_bytes = self._core.take_queued()
                if not self._backlog:
                    break
            backlog = self._backlog
            count = len(backlog)
            # Each document costs its bytes plus its newline.
            if count <= room_events and (
                self._batch_bytes + self._backlog_bytes + count <= self._max_bytes
            ):
                # All of it fits: one C-level extend instead of a Python
                # loop, so the sender holds the GIL (and the app) less.
                batch.extend(backlog)
                backlog.clear()
                self._batch_bytes += self._backlog_bytes + count
                moved_events += count
                moved_bytes += self._backlog_bytes
                self._backlog_bytes = 0
                continue
            doc = backlog[0]
            line_bytes = len(doc) + 1
            if batch and self._batch_bytes + line_bytes > self._max_bytes:
                full = True
                break
            backlog.popleft()
            self._backlog_bytes -= len(doc)
            batch.append(doc)
            self._batch_bytes += line_bytes
            moved_events += 1
            moved_bytes += len(doc)
        if moved_events:
            self._core.batched(moved_events, moved_bytes)
        return full

    def _send_batch(self) -> None:
        batch = self._batch
        self._batch = []
        self._batch_bytes = 0
        try:
            self.delivery.deliver(batch)
        except Exception:
            # A bug between attempts: the events are not known to be sent.
            self._core.lose(batch, _lost.SENDER_FAILED)
            raise
        finally:
            self._core.settled(len(batch))

    def _lose_held(self, reason: str) -> None:
        """After an internal error: the batch in hand is logged as lost so
        the loop cannot trip on the same events again."""
        batch = self._batch
        self._batch = []
        self._batch_bytes = 0
        if batch:
            self._core.lose(batch, reason)
            self._core.settled(len(batch))

    def leftovers(self) -> List[bytes]:
        """Documents this sender took but never batched (for a close whose
        sender is gone)."""
        docs = list(self._backlog)
        self._backlog = deque()
        self._backlog_bytes = 0
        return docs


def start_thread(sender: Sender) -> threading.Thread:
    thread = threading.Thread(target=sender.run, name=SENDER_THREAD_NAME, daemon=True)
    thread.start()
    return thread
