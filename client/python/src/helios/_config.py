"""Client settings: defaults, validation and endpoint URLs.

Every limit is a named constant here so that the bounds of the client are
readable in one place (DESIGN.md section 1, invariant 3). Durations are in
seconds (floats), sizes in bytes, like the Python standard library.
"""

from __future__ import annotations

import math
import socket
import ssl
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

#: Default bound on events waiting to be sent.
DEFAULT_QUEUE_CAPACITY = 10_000
#: Default bound on the bytes of documents waiting to be sent.
DEFAULT_QUEUE_CAPACITY_BYTES = 16 * 1024 * 1024
#: Default most events in one request.
DEFAULT_MAX_BATCH_EVENTS = 500
#: Default most body bytes (before gzip) in one request; the collector's
#: default ``max_body_bytes`` is 8 MiB.
DEFAULT_MAX_BATCH_BYTES = 1024 * 1024
#: Default longest an event waits for its batch to fill, seconds.
DEFAULT_MAX_BATCH_DELAY = 0.2
#: Default largest single event document; larger ones are logged and dropped.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
#: Default most bytes of one document written to the log when it is lost.
DEFAULT_MAX_LOGGED_DOCUMENT_BYTES = 64 * 1024
#: Default TCP connect timeout per attempt, seconds.
DEFAULT_CONNECT_TIMEOUT = 2.0
#: Default wait for each socket read or write of a request, seconds.
DEFAULT_IO_TIMEOUT = 10.0
#: Default ceiling of the first retry's backoff, seconds.
DEFAULT_INITIAL_BACKOFF = 0.1
#: Default largest backoff ceiling, seconds.
DEFAULT_MAX_BACKOFF = 10.0
#: Default most attempts per batch, the first included.
DEFAULT_MAX_ATTEMPTS = 10
#: Default longest time spent retrying one batch, seconds.
DEFAULT_MAX_RETRY_TIME = 30.0
#: Default time interpreter exit waits for queued events, seconds.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: Longest ``Retry-After`` honoured, seconds; a larger value is clamped.
MAX_RETRY_AFTER = 60.0
#: Path appended to an endpoint's prefix.
EVENTS_PATH = "/v1/events"

#: ``host=True`` means "this machine's name".
HostSetting = Union[str, bool, None]


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``http[s]://host[:port][/prefix]`` URL."""

    url: str
    scheme: str
    host: str
    port: int
    #: Request target: ``<prefix>/v1/events``.
    target: str


def parse_endpoint(url: str) -> Endpoint:
    """Parses one endpoint URL; ``ValueError`` says what is wrong with it."""
    if not isinstance(url, str):
        raise TypeError(f"endpoint must be a URL string, got {type(url).__name__}")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError(f"endpoint {url!r}: URL may not contain spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"endpoint {url!r}: only http:// and https:// URLs are supported")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"endpoint {url!r}: URL may not contain user info, query or fragment")
    if not parts.hostname:
        raise ValueError(f"endpoint {url!r}: missing host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"endpoint {url!r}: invalid port") from None
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise ValueError(f"endpoint {url!r}: invalid port")
    return Endpoint(
        url=url,
        scheme=scheme,
        host=parts.hostname,
        port=port,
        target=parts.path.rstrip("/") + EVENTS_PATH,
    )


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class Config:
    """The validated settings a client runs with (see ``Client``)."""

    endpoints: Tuple[Endpoint, ...]
    app: Optional[str]
    host: Optional[str]
    api_key: Optional[str]
    queue_capacity: int
    queue_capacity_bytes: int
    max_batch_events: int
    max_batch_bytes: int
    max_batch_delay: float
    max_event_bytes: int
    max_logged_document_bytes: int
    connect_timeout: float
    io_timeout: float
    initial_backoff: float
    max_backoff: float
    max_attempts: int
    max_retry_time: float
    shutdown_timeout: float
    gzip: bool
    ssl_context: Optional[ssl.SSLContext]


def make_config(
    endpoint: Union[str, Sequence[str]],
    *,
    app: Optional[str],
    host: HostSetting,
    api_key: Optional[str],
    queue_capacity: int,
    queue_capacity_bytes: int,
    max_batch_events: int,
    max_batch_bytes: int,
    max_batch_delay: float,
    max_event_bytes: int,
    max_logged_document_bytes: int,
    connect_timeout: float,
    io_timeout: float,
    initial_backoff: float,
    max_backoff: float,
    max_attempts: int,
    max_retry_time: float,
    shutdown_timeout: float,
    gzip: bool,
    ssl_context: Optional[ssl.SSLContext],
) -> Config:
    """Validates the constructor's arguments (``ValueError``/``TypeError``)."""
    urls = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    if not urls:
        raise ValueError("at least one endpoint URL is required")
    endpoints = tuple(parse_endpoint(url) for url in urls)
    if api_key is not None and (
        not isinstance(api_key, str)
        or not api_key
        or not all(0x21 <= ord(c) <= 0x7E for c in api_key)
    ):
        # Anything else could end the Authorization header early.
        raise ValueError("api_key must be visible ASCII without spaces")
    if app is not None and not isinstance(app, str):
        raise TypeError(f"app must be a string or None, got {type(app).__name__}")
    if host is True:
        host_name: Optional[str] = socket.gethostname() or None
    elif host is False or host is None:
        host_name = None
    elif isinstance(host, str):
        host_name = host
    else:
        raise TypeError(f"host must be a string, True, False or None, got {type(host).__name__}")
    config = Config(
        endpoints=endpoints,
        app=app,
        host=host_name,
        api_key=api_key,
        queue_capacity=_count("queue_capacity", queue_capacity),
        queue_capacity_bytes=_count("queue_capacity_bytes", queue_capacity_bytes),
        max_batch_events=_count("max_batch_events", max_batch_events),
        max_batch_bytes=_count("max_batch_bytes", max_batch_bytes),
        # The sender polls the queue on this tick; zero would spin.
        max_batch_delay=_positive("max_batch_delay", max_batch_delay),
        max_event_bytes=_count("max_event_bytes", max_event_bytes),
        max_logged_document_bytes=_count("max_logged_document_bytes", max_logged_document_bytes),
        connect_timeout=_positive("connect_timeout", connect_timeout),
        io_timeout=_positive("io_timeout", io_timeout),
        initial_backoff=_non_negative("initial_backoff", initial_backoff),
        max_backoff=_non_negative("max_backoff", max_backoff),
        max_attempts=_count("max_attempts", max_attempts),
        max_retry_time=_non_negative("max_retry_time", max_retry_time),
        shutdown_timeout=_non_negative("shutdown_timeout", shutdown_timeout),
        gzip=bool(gzip),
        ssl_context=ssl_context,
    )
    if config.max_event_bytes > config.queue_capacity_bytes:
        raise ValueError(
            f"max_event_bytes ({config.max_event_bytes}) exceeds "
            f"queue_capacity_bytes ({config.queue_capacity_bytes})"
        )
    return config
