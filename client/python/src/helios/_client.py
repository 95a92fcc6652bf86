"""The client: ``record()``, the bounded queue, flush, close, fork and exit.

``Client`` is a thin handle on a ``_Core``, which holds the queue and the
counters and is shared with the sender thread. The sender thread keeps the
core (not the handle) alive, so a handle that is garbage-collected closes
its core, and the core still delivers what was queued.

Locking: one lock per core guards the queue, the counters and the flush
bookkeeping; it is held for a few attribute updates at a time and never
while logging or doing I/O, so ``record()`` waits for no more than that.

Fork: at-fork hooks take every core's lock before ``fork()`` so the child
never inherits a queue half-updated by another thread; the child then gets
new locks, an empty queue, zeroed counters, new ObjectId randomness, and a
new sender thread on its first ``record()``. The parent's queued events stay
the parent's: nothing is sent twice.

Exit: one ``atexit`` hook closes every live core, all against their own
``shutdown_timeout`` at once, and logs what could not be delivered.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

from . import _lost, _object_id
from ._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_INITIAL_BACKOFF,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_BATCH_DELAY,
    DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_LOGGED_DOCUMENT_BYTES,
    DEFAULT_MAX_RETRY_TIME,
    DEFAULT_QUEUE_CAPACITY,
    DEFAULT_QUEUE_CAPACITY_BYTES,
    DEFAULT_SHUTDOWN_TIMEOUT,
    Config,
    HostSetting,
    make_config,
)
from ._encode import (
    EncodeError,
    default_fields_json,
    dumps,
    encode_event,
    is_high_priority,
    rfc3339_ms,
)
from ._sender import Sender, start_thread
from ._version import __version__

#: Share of the queue (events and bytes), in percent, that only events
#: recorded with ``priority="high"`` may fill.
HIGH_PRIORITY_RESERVE_PERCENT = 10


def _normal_share(capacity: int) -> int:
    """How much of ``capacity`` low- and normal-priority events may fill:
    all but the reserve, rounded down (a queue of fewer than 10 events has
    no reserve rather than no room for normal events)."""
    return capacity - capacity * HIGH_PRIORITY_RESERVE_PERCENT // 100


#: How long ``close()`` waits past its deadline for the sender to notice a
#: cut request and log the batch it held, seconds.
SHUTDOWN_GRACE = 0.5
#: After the sender thread failed to start, how long ``record()`` waits
#: before trying again, seconds (a failing start must not cost every call).
_START_RETRY_PAUSE = 1.0
#: Longest ``repr()`` of unencodable fields put in a lost-event log record;
#: ``log_lost``'s own size cap applies on top.
_MAX_REPR_CHARS = 1024 * 1024


@dataclass(frozen=True)
class Stats:
    """A snapshot of a client's delivery counters since it was created (or,
    in a forked child, since the fork).

    Every recorded event ends in exactly one of ``sent``, ``rejected`` or
    ``dropped``, or is still on its way (``queued`` or in a request); so
    once a flush succeeded, ``recorded == sent + rejected + dropped``.
    """

    #: Calls to ``record()``.
    recorded: int
    #: Events the server acknowledged as stored.
    sent: int
    #: Events the server refused (per-event rejects and whole-batch 4xx).
    rejected: int
    #: Events lost in the client: unencodable, too large, queue full,
    #: recorded after close, retries exhausted, shutdown deadline passed.
    #: Each was logged on ``helios.lost``.
    dropped: int
    #: The part of ``dropped`` lost because the queue was full.
    dropped_queue_full: int
    #: Send attempts that retried an earlier failed attempt.
    retried: int
    #: Requests that got a 2xx answer.
    batches_sent: int
    #: Events queued by ``record()`` and not settled yet (waiting, in a
    #: batch, or in a request).
    queued: int


class _Core:
    """Queue, counters and sender of one client (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._defaults = default_fields_json({"host": config.host, "app": config.app})
        self._max_event_bytes = config.max_event_bytes
        self._max_logged_bytes = config.max_logged_document_bytes
        self._closed = False
        self._deadline: Optional[float] = None
        self._sender: Optional[Sender] = None
        self._thread: Optional[threading.Thread] = None
        self._start_failed_at: Optional[float] = None
        #: Set (and only set: no lock) when the handle is garbage-collected.
        self._abandon_timeout: Optional[float] = None
        self._reset_state()

    def _reset_state(self) -> None:
        """Fresh locks, queue and counters (at creation and in a forked child)."""
        self._lock = threading.Lock()
        self._settled_cv = threading.Condition(self._lock)
        self._close_lock = threading.Lock()
        self._start_lock = threading.Lock()
        #: Set by ``record()`` when a batch is waiting, and by flush/close.
        self._wake = threading.Event()
        self._incoming: Deque[bytes] = deque()
        self._incoming_bytes = 0
        #: Events and bytes queued and not yet in a batch (the incoming
        #: deque plus what the sender swapped out but has not batched).
        self._pending_events = 0
        self._pending_bytes = 0
        #: Sequence numbers for flush: events queued so far, and events the
        #: sender has settled (sent, rejected or lost), in queue order.
        self._enqueued_total = 0
        self._settled_total = 0
        self._flush_target = 0
        self._flush_waiters = 0
        self._deadline_hit = False
        self._recorded = 0
        self._sent = 0
        self._rejected = 0
        self._dropped = 0
        self._dropped_queue_full = 0
        self._retried = 0
        self._batches_sent = 0
        #: Events the sender lost or saw rejected; flush/close compare it.
        self._delivery_losses = 0

    # ---- record() path -------------------------------------------------

    def record(self, event_type: Any, fields: Any, more_fields: Dict[str, Any]) -> str:
        unix_ms = time.time_ns() // 1_000_000
        id_hex = _object_id.mint_hex(unix_ms // 1000)
        try:
            doc = encode_event(id_hex, unix_ms, event_type, fields, self._defaults, more_fields)
        except Exception as error:  # noqa: BLE001 - whatever a value's __str__ raises
            given = fields if not more_fields else {"fields": fields, "keywords": more_fields}
            self._lose_unencodable(id_hex, unix_ms, event_type, given, error)
            return id_hex
        try:
            self._push(doc, is_high_priority(doc))
        except Exception as error:  # noqa: BLE001 - a bug here must not reach the app
            _lost.log_lost(_lost.internal_error(error), doc, self._max_logged_bytes)
        return id_hex

    def _push(self, doc: bytes, high_priority: bool) -> None:
        size = len(doc)
        reason: Optional[str] = None
        wake = False
        config = self.config
        with self._lock:
            self._recorded += 1
            if size > self._max_event_bytes:
                reason = _lost.too_large(self._max_event_bytes)
            elif self._closed:
                reason = _lost.CLIENT_CLOSED
            elif (
                self._pending_events >= config.queue_capacity
                or self._pending_bytes + size > config.queue_capacity_bytes
            ):
                # The NEW event is dropped: queued events keep their place
                # and record() stays O(1).
                reason = _lost.QUEUE_FULL
                self._dropped_queue_full += 1
            elif not high_priority and (
                self._pending_events >= _normal_share(config.queue_capacity)
                or self._pending_bytes + size > _normal_share(config.queue_capacity_bytes)
            ):
                # The last tenth is kept for high priority (issue 21).
                reason = _lost.QUEUE_RESERVED
                self._dropped_queue_full += 1
            else:
                self._incoming.append(doc)
                self._incoming_bytes += size
                self._pending_events += 1
                self._pending_bytes += size
                self._enqueued_total += 1
                # Wake the sender only when a full batch waits: waking a
                # parked thread on every call would cost every call.
                wake = (
                    self._pending_events >= config.max_batch_events
                    or self._pending_bytes >= config.max_batch_bytes
                )
            if reason is not None:
                self._dropped += 1
        if reason is not None:
            _lost.log_lost(reason, doc, self._max_logged_bytes)
            return
        if wake and not self._wake.is_set():
            self._wake.set()
        if self._thread is None:
            self._start_sender()

    def _lose_unencodable(
        self, id_hex: str, unix_ms: int, event_type: Any, fields: Any, error: Exception
    ) -> None:
        with self._lock:
            self._recorded += 1
            self._dropped += 1
        reason = _lost.invalid(
            str(error) if isinstance(error, EncodeError) else f"{type(error).__name__}: {error}"
        )
        # What can be known of the event: its id, time, and the repr of
        # what was given (the document "whole", as far as Python can say).
        doc = {
            "_id": id_hex,
            "type": event_type if isinstance(event_type, str) else _safe_repr(event_type),
            "ts": rfc3339_ms(unix_ms),
            "fields_repr": _safe_repr(fields),
        }
        try:
            text = dumps(doc)
        except Exception:  # noqa: BLE001 - e.g. a str subclass that misbehaves
            text = repr(doc)
        _lost.log_lost(reason, text.encode("utf-8", "replace"), self._max_logged_bytes)

    def _start_sender(self) -> None:
        if self._closed:
            return  # close() delivers from its own thread
        failed_at = self._start_failed_at
        if failed_at is not None and time.monotonic() - failed_at < _START_RETRY_PAUSE:
            return
        with self._start_lock:
            if self._thread is not None:
                return
            if self._sender is None:
                self._sender = Sender(self, __version__)
            try:
                self._thread = start_thread(self._sender)
            except Exception as error:  # noqa: BLE001 - e.g. at interpreter shutdown
                self._start_failed_at = time.monotonic()
                _lost.client_logger.warning(
                    "helios cannot start its sender thread (%s); events stay queued", error
                )

    # ---- the sender's side ---------------------------------------------

    def closing(self) -> bool:
        if self._abandon_timeout is not None and not self._closed:
            self.begin_close(self._abandon_timeout)
        return self._closed

    def shutdown_deadline(self) -> Optional[float]:
        return self._deadline if self._closed else None

    def deadline_passed(self) -> bool:
        deadline = self.shutdown_deadline()
        return deadline is not None and time.monotonic() >= deadline

    def flush_wanted(self) -> bool:
        return self._flush_target > self._settled_total

    def wait_for_wake(self, timeout: float) -> None:
        self._wake.wait(max(timeout, 0.0))
        self._wake.clear()

    def take_queued(self) -> Tuple[Deque[bytes], int]:
        """Hands the whole incoming queue (and its document bytes) to the
        sender in O(1)."""
        with self._lock:
            taken = self._incoming, self._incoming_bytes
            self._incoming = deque()
            self._incoming_bytes = 0
        return taken

    def batched(self, events: int, size_bytes: int) -> None:
        with self._lock:
            self._pending_events -= events
            self._pending_bytes -= size_bytes

    def settled(self, events: int) -> None:
        with self._lock:
            self._settled_total += events
            if self._flush_waiters:
                self._settled_cv.notify_all()

    def accept(self, batch: List[bytes], rejected: Sequence[Tuple[int, str]]) -> None:
        with self._lock:
            self._batches_sent += 1
            self._sent += len(batch) - len(rejected)
            self._rejected += len(rejected)
            self._delivery_losses += len(rejected)
        for index, reason in rejected:
            _lost.log_lost(_lost.rejected(reason), batch[index], self._max_logged_bytes)

    def reject(self, batch: List[bytes], reason: str) -> None:
        with self._lock:
            self._rejected += len(batch)
            self._delivery_losses += len(batch)
        _lost.log_lost_many(reason, batch, self._max_logged_bytes)

    def lose(self, batch: List[bytes], reason: str) -> None:
        with self._lock:
            self._dropped += len(batch)
            self._delivery_losses += len(batch)
        _lost.log_lost_many(reason, batch, self._max_logged_bytes)

    def lose_at_deadline(self, batch: List[bytes]) -> None:
        self._deadline_hit = True
        self.lose(batch, _lost.SHUTDOWN_DEADLINE)

    def count_retry(self) -> None:
        with self._lock:
            self._retried += 1

    def sender_exited(self) -> None:
        if self._closed:
            _unregister(self)

    # ---- flush, close, stats -------------------------------------------

    def flush(self, timeout: float) -> bool:
        if threading.current_thread() is self._thread:
            return False  # e.g. a log handler run by the sender: it cannot wait on itself
        deadline = time.monotonic() + _seconds(timeout)
        with self._lock:
            target = self._enqueued_total
            losses_before = self._delivery_losses
            if self._settled_total >= target:
                return True
            if target > self._flush_target:
                self._flush_target = target
        if self._thread is None and not self._closed:
            self._start_sender()
        self._wake.set()
        with self._lock:
            self._flush_waiters += 1
            try:
                done = self._settled_cv.wait_for(
                    lambda: self._settled_total >= target, max(deadline - time.monotonic(), 0.0)
                )
            finally:
                self._flush_waiters -= 1
            return bool(done) and self._delivery_losses == losses_before

    def begin_close(self, timeout: float) -> float:
        """Refuses new events and asks the sender to deliver what is queued
        by the returned deadline (an earlier deadline stays)."""
        deadline = time.monotonic() + _seconds(timeout)
        with self._lock:
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
            self._closed = True
            deadline = self._deadline
        self._wake.set()
        return deadline

    def close(self, timeout: float) -> bool:
        if threading.current_thread() is self._thread:
            self.begin_close(timeout)
            return False  # the sender cannot wait for itself
        with self._close_lock:
            with self._lock:
                losses_before = self._delivery_losses
            deadline = self.begin_close(timeout)
            thread = self._thread
            sender = self._sender
            if thread is not None and thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0.0))
                if thread.is_alive() and sender is not None:
                    # Past the deadline mid-request: cut it, so the sender
                    # logs the batch it holds and exits.
                    self._deadline_hit = True
                    sender.delivery.transport.abort()
                    thread.join(SHUTDOWN_GRACE)
                sender_gone = not thread.is_alive()
            else:
                # No thread (never started, failed to start, or a forked
                # child's that never recorded): deliver from this one.
                if self._pending_events:
                    if sender is None:
                        sender = self._sender = Sender(self, __version__)
                    sender.drain()
                sender_gone = True
            self._lose_leftovers(sender if sender_gone else None)
            if sender_gone:
                if sender is not None:
                    sender.delivery.transport.close()
                _unregister(self)
            return not self._deadline_hit and self._delivery_losses == losses_before

    def _lose_leftovers(self, sender: Optional[Sender]) -> None:
        """Logs what nobody will send any more (the sender ran out of time)."""
        leftovers = list(self.take_queued()[0])
        if sender is not None:
            leftovers += sender.leftovers()
        if not leftovers:
            return
        self.batched(len(leftovers), sum(len(doc) for doc in leftovers))
        self._deadline_hit = True
        self.lose(leftovers, _lost.SHUTDOWN_DEADLINE)
        self.settled(len(leftovers))

    def abandon(self, timeout: float) -> None:
        """The handle is gone: deliver what is queued, then stop. Runs as a
        weakref finalizer, possibly from the cyclic GC in the middle of any
        thread's code, even code holding this core's lock; so it takes no
        lock at all and the sender closes the core on its next pass."""
        self._abandon_timeout = timeout

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                recorded=self._recorded,
                sent=self._sent,
                rejected=self._rejected,
                dropped=self._dropped,
                dropped_queue_full=self._dropped_queue_full,
                retried=self._retried,
                batches_sent=self._batches_sent,
                queued=self._enqueued_total - self._settled_total,
            )

    # ---- fork ----------------------------------------------------------

    def before_fork(self) -> None:
        self._lock.acquire()

    def after_fork_in_parent(self) -> None:
        self._lock.release()

    def after_fork_in_child(self) -> None:
        # The parent's threads do not exist here; its queue is the parent's
        # to send. Connections are dropped without a word on the wire.
        sender = self._sender
        if sender is not None:
            sender.delivery.transport.forget_after_fork()
        self._sender = None
        self._thread = None
        self._start_failed_at = None
        self._reset_state()


def _seconds(timeout: Any) -> float:
    """A timeout argument as non-negative seconds; nonsense means zero
    (these calls never raise)."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        return 0.0
    if value != value or value < 0:
        return 0.0
    return min(value, 365 * 24 * 3600.0)


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as error:  # noqa: BLE001 - a __repr__ may raise anything
        text = f"<{type(value).__qualname__} object; repr() raised {type(error).__name__}>"
    return text[:_MAX_REPR_CHARS]


# ---- the process-wide registry, fork hooks and exit hook ---------------

_registry_lock = threading.Lock()
#: Every core still alive. Weak: a running sender thread keeps its core
#: alive, and a core whose handle is gone and that has no thread has
#: nothing left to deliver, so it may go.
_live_cores: weakref.WeakSet[_Core] = weakref.WeakSet()


def _register(core: _Core) -> None:
    with _registry_lock:
        _live_cores.add(core)


def _unregister(core: _Core) -> None:
    with _registry_lock:
        _live_cores.discard(core)


def _snapshot() -> List[_Core]:
    with _registry_lock:
        return list(_live_cores)


def close_all(timeout: Optional[float] = None) -> None:
    """Closes every live client at once, each within its own
    ``shutdown_timeout`` (or ``timeout``). Run at interpreter exit."""
    cores = _snapshot()
    for core in cores:
        core.begin_close(core.config.shutdown_timeout if timeout is None else timeout)
    for core in cores:
        try:
            core.close(core.config.shutdown_timeout if timeout is None else timeout)
        except Exception:  # noqa: BLE001, S110 - exit must go on
            pass


_forking: List[_Core] = []


def _before_fork() -> None:
    _registry_lock.acquire()
    _forking[:] = list(_live_cores)
    for core in _forking:
        core.before_fork()
    _hook_multiprocessing()


def _after_fork_in_parent() -> None:
    for core in _forking:
        core.after_fork_in_parent()
    _forking.clear()
    _registry_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock
    _object_id.reseed()
    for core in _forking:
        core.after_fork_in_child()
    _forking.clear()
    _registry_lock = threading.Lock()


class _MultiprocessingHook:
    """Weak-referenceable owner of the multiprocessing after-fork hook."""


_mp_hook = _MultiprocessingHook()
_mp_hooked = False


def _hook_multiprocessing() -> None:
    """A ``multiprocessing`` child ends with ``os._exit()``, which skips
    ``atexit``; it runs multiprocessing's own finalizers instead. Registered
    only once multiprocessing is in use (never imported for it)."""
    global _mp_hooked
    util = sys.modules.get("multiprocessing.util")
    if _mp_hooked or util is None:
        return
    try:
        # Runs in each child after multiprocessing cleared its finalizers.
        util.register_after_fork(_mp_hook, _register_mp_exit_finalizer)
        _mp_hooked = True
    except Exception:  # noqa: BLE001, S110 - only a convenience
        pass


def _register_mp_exit_finalizer(owner: _MultiprocessingHook) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(owner, close_all, exitpriority=0)


_mp_child_hooked = False


def _hook_multiprocessing_child() -> None:
    """The same for a child multiprocessing started fresh (spawn,
    forkserver) that creates its own client."""
    global _mp_child_hooked
    process = sys.modules.get("multiprocessing.process")
    if _mp_child_hooked or process is None:
        return
    try:
        if process.parent_process() is not None:
            _register_mp_exit_finalizer(_mp_hook)
            _mp_child_hooked = True
    except Exception:  # noqa: BLE001, S110 - only a convenience
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
atexit.register(close_all)


# ---- the public handle -------------------------------------------------


class Client:
    """Records structured events to Helios from any thread, without ever
    blocking on the network or raising.

    ``record()`` mints the event's ``_id`` and stamps ``ts`` in the calling
    thread, encodes the event and puts it on a bounded queue; one daemon
    thread sends batches as NDJSON to ``<endpoint>/v1/events`` over
    keep-alive HTTP/1.1, retrying with capped exponential backoff and full
    jitter, honouring ``Retry-After`` and failing over between endpoints.
    Every event that cannot be delivered is logged whole on the
    ``helios.lost`` logger. Interpreter exit delivers what is queued within
    ``shutdown_timeout``; forked children get their own queue and sender.

    Only the constructor raises (``ValueError``/``TypeError`` for an invalid
    setting); ``record``, ``flush``, ``close`` and ``stats`` never do.

    :param endpoint: collector (or relay) URL ``http[s]://host[:port][/prefix]``,
        or a list of them to fail over between (on each failed attempt the
        next one is tried, and kept while it works).
    :param app: ``app`` field stamped on events that do not set one (a
        collector with API keys stamps it from the key instead).
    :param api_key: sent as ``Authorization: Bearer <key>``.
    :param queue_capacity: most events waiting to be sent; beyond it new
        events are dropped, counted and logged.
    :param max_retry_time: longest time spent retrying one batch, seconds.
    :param shutdown_timeout: how long interpreter exit (and a collected
        handle) waits for queued events, seconds.
    :param gzip: compress request bodies (``Content-Encoding: gzip``).
    :param host: ``host`` field stamped on events that do not set one:
        ``True`` for this machine's name, a string, or ``None``/``False``
        for none.
    :param queue_capacity_bytes: most document bytes waiting to be sent.
    :param max_batch_events: most events in one request.
    :param max_batch_bytes: most uncompressed body bytes in one request (a
        larger single event still goes, alone).
    :param max_batch_delay: longest an event waits for its batch to fill,
        seconds.
    :param max_event_bytes: largest event document; larger ones are logged
        (truncated) and dropped.
    :param max_logged_document_bytes: lost documents larger than this are
        logged truncated to it, with their size.
    :param connect_timeout: TCP (and TLS) connect timeout per attempt, seconds.
    :param io_timeout: longest wait for any socket read or write of a
        request, seconds; a stalled server costs one attempt after this.
    :param initial_backoff: backoff ceiling before the first retry, seconds;
        it doubles per retry up to ``max_backoff``, and the wait is drawn
        uniformly below it (full jitter).
    :param max_backoff: largest backoff ceiling, seconds.
    :param max_attempts: most attempts per batch, the first included.
    :param ssl_context: for ``https://`` endpoints (default: the system's
        trusted CAs, hostname checked).
    """

    def __init__(
        self,
        endpoint: Union[str, Sequence[str]] = "http://127.0.0.1:7070",
        app: Optional[str] = None,
        api_key: Optional[str] = None,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        max_retry_time: float = DEFAULT_MAX_RETRY_TIME,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        gzip: bool = True,
        *,
        host: HostSetting = True,
        queue_capacity_bytes: int = DEFAULT_QUEUE_CAPACITY_BYTES,
        max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_batch_delay: float = DEFAULT_MAX_BATCH_DELAY,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_logged_document_bytes: int = DEFAULT_MAX_LOGGED_DOCUMENT_BYTES,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        io_timeout: float = DEFAULT_IO_TIMEOUT,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        ssl_context: Any = None,
    ) -> None:
        config = make_config(
            endpoint,
            app=app,
            host=host,
            api_key=api_key,
            queue_capacity=queue_capacity,
            queue_capacity_bytes=queue_capacity_bytes,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            max_batch_delay=max_batch_delay,
            max_event_bytes=max_event_bytes,
            max_logged_document_bytes=max_logged_document_bytes,
            connect_timeout=connect_timeout,
            io_timeout=io_timeout,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            max_attempts=max_attempts,
            max_retry_time=max_retry_time,
            shutdown_timeout=shutdown_timeout,
            gzip=gzip,
            ssl_context=ssl_context,
        )
        core = _Core(config)
        self._core = core
        _register(core)
        _hook_multiprocessing_child()
        # A handle dropped without close(): deliver in the background; the
        # exit hook still waits for it if the process ends first.
        finalizer = weakref.finalize(self, core.abandon, config.shutdown_timeout)
        finalizer.atexit = False

    def record(self, event_type: str, fields: Any = None, /, **more_fields: Any) -> str:
        """Records one event of type ``event_type`` and returns its ``_id``
        (24 lowercase hex digits) at once.

        ``fields`` (a mapping, or a dataclass instance) and keyword
        arguments are the event's fields; keywords win over ``fields``.
        Values JSON cannot encode as they are are converted by the rules in
        ``helios._encode`` (datetimes to RFC 3339 text, ``Decimal`` to
        numbers, ``bytes`` to base64 ...). ``_id`` and ``type`` always come
        from the client and a ``recv`` field is removed (the collector owns
        it); ``ts``, ``host`` and ``app`` given here override the client's.

        Never blocks on the network and never raises: an event that cannot
        be encoded or queued (bad type, unconvertible value, too large,
        queue full, client closed) is counted as dropped and logged whole
        on the ``helios.lost`` logger.

        A ``priority`` field of ``"high"``, ``"normal"`` or ``"low"`` sets
        the event's priority: the last 10% of the queue (events and bytes)
        is kept for ``"high"``, so a low or normal event is dropped (and
        logged) once the queue is 90% full, a high one only when it is
        full; the collector reads the same field at its journal budget.
        """
        return self._core.record(event_type, fields, more_fields)

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every event recorded before this call has been sent
        (or rejected or dropped, and logged), at most ``timeout`` seconds.

        True when all of them were settled in time and none was rejected or
        lost while it waited; see ``stats()`` and the ``helios.lost`` log
        for what was lost. Never raises.
        """
        try:
            return self._core.flush(timeout)
        except Exception:  # noqa: BLE001
            return False

    def close(self, timeout: float = 5.0) -> bool:
        """Stops accepting events, delivers what is queued and stops the
        sender thread, waiting at most ``timeout`` seconds; what is still
        undelivered then is logged as lost (the call may take up to
        ``SHUTDOWN_GRACE`` longer while a cut request is logged).

        True when everything queued was delivered in time. Later
        ``record()`` calls log and drop their event. Idempotent; also run
        for every live client at interpreter exit. Never raises.
        """
        try:
            return self._core.close(timeout)
        except Exception:  # noqa: BLE001
            return False

    def stats(self) -> Stats:
        """A snapshot of the delivery counters (see ``Stats``)."""
        try:
            return self._core.stats()
        except Exception:  # noqa: BLE001 - never expected; keep the promise
            return Stats(0, 0, 0, 0, 0, 0, 0, 0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close(self._core.config.shutdown_timeout)

    def __repr__(self) -> str:
        urls = ", ".join(e.url for e in self._core.config.endpoints)
        return f"<helios.Client [{urls}] {self.stats()}>"
