"""Helios client: record structured events from Python without ever blocking
on the network or raising.

::

    import helios

    client = helios.Client("http://127.0.0.1:7070", app="shop")
    event_id = client.record("order.placed", {"order": 42, "total_cents": 1999})
    client.flush(timeout=5.0)
    print(client.stats())

Promises (the same as the Rust crate ``helios-client``):

- ``record()`` mints the event's ``_id`` and stamps ``ts`` in the calling
  thread, encodes it, puts it on a bounded queue and returns; it never
  blocks on the network and never raises, whatever it is given.
- A daemon thread sends batches as NDJSON over keep-alive HTTP/1.1 with
  ``Helios-Sent-At``, retries with capped exponential backoff and full
  jitter, honours ``Retry-After`` and fails over between endpoints.
- Every event that cannot be delivered is logged whole (truncated over a
  size cap, saying so) on the logger named ``helios.lost``: queue full,
  unencodable, rejected by the server (with its reason), retries exhausted,
  shutdown deadline passed.
- ``os.fork()`` children get their own queue and sender; interpreter exit
  delivers what is queued within ``shutdown_timeout``.
"""

from ._client import SHUTDOWN_GRACE, Client, Stats, close_all
from ._config import EVENTS_PATH, MAX_RETRY_AFTER
from ._encode import CLIENT_OWNED_KEYS, MAX_NESTING_DEPTH
from ._log_handler import LogHandler
from ._lost import CLIENT_LOGGER_NAME, LOST_LOGGER_NAME
from ._object_id import OBJECT_ID_HEX_LEN
from ._sender import SENDER_THREAD_NAME
from ._version import __version__

__all__ = [
    "CLIENT_LOGGER_NAME",
    "CLIENT_OWNED_KEYS",
    "EVENTS_PATH",
    "LOST_LOGGER_NAME",
    "MAX_NESTING_DEPTH",
    "MAX_RETRY_AFTER",
    "OBJECT_ID_HEX_LEN",
    "SENDER_THREAD_NAME",
    "SHUTDOWN_GRACE",
    "Client",
    "LogHandler",
    "Stats",
    "__version__",
    "close_all",
]
