"""HTTP/1.1 ``POST /v1/events`` over ``http.client``, one kept-alive
connection per endpoint.

Only the sender thread uses a ``Transport``, so it needs no lock; the one
exception is ``abort()``, which a closing thread calls to cut a request
that is still hanging past the shutdown deadline.

Why plain ``http.client``: the standard library only, keep-alive, and no
retry, redirect or pooling policy of its own, so the sender's policy stays
the only one. Everything read from the network is bounded: ``http.client``
caps header lines and count, and the body is read to at most
``MAX_RESPONSE_BODY_BYTES``.
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import time
from typing import Dict, List, Optional, Sequence

from ._config import MAX_RETRY_AFTER, Endpoint

#: Largest response body read (the collector's answers are small JSON).
MAX_RESPONSE_BODY_BYTES = 1024 * 1024
#: Shortest socket timeout used when a deadline is close, seconds.
_MIN_SOCKET_TIMEOUT = 0.01


class AttemptError(Exception):
    """One request failed below HTTP (connect, I/O, malformed answer)."""


class Response:
    """A final response: status, ``Retry-After`` seconds if any, body."""

    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, retry_after: Optional[float], body: bytes) -> None:
        self.status = status
        self.retry_after = retry_after
        self.body = body


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds (delta-seconds or HTTP-date), clamped to
    ``[0, MAX_RETRY_AFTER]``; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds: Optional[float]
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _is_connection_lost(error: BaseException) -> bool:
    """Errors a server's close of an idle kept-alive connection produces."""
    return isinstance(
        error,
        (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError),
    )


class Transport:
    """Sends requests, keeping at most one idle connection per endpoint."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        connect_timeout: float,
        io_timeout: float,
        ssl_context: Optional[ssl.SSLContext],
    ) -> None:
        self._endpoints = tuple(endpoints)
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._ssl_context = ssl_context
        self._idle: List[Optional[http.client.HTTPConnection]] = [None] * len(endpoints)
        #: The socket of the request in flight, for ``abort()``.
        self._active_sock: Optional[socket.socket] = None

    @property
    def endpoint_count(self) -> int:
        return len(self._endpoints)

    def url(self, index: int) -> str:
        return self._endpoints[index].url

    def post(
        self,
        index: int,
        body: bytes,
        headers: Dict[str, str],
        deadline: Optional[float],
    ) -> Response:
        """POSTs ``body`` to endpoint ``index``; socket waits end by
        ``deadline`` (``time.monotonic()``) if one is given. Raises
        ``AttemptError``."""
        conn = self._idle[index]
        self._idle[index] = None
        reused = conn is not None
        try:
            try:
                return self._exchange(index, conn, body, headers, deadline)
            except Exception as error:
                # A kept-alive connection the server closed while idle fails
                # before any answer; the body carries its _ids, so sending it
                # again on a fresh connection at once is safe.
                if not (reused and _is_connection_lost(error)):
                    raise
            return self._exchange(index, None, body, headers, deadline)
        except AttemptError:
            raise
        except Exception as error:  # noqa: BLE001
            raise AttemptError(f"{self.url(index)}: {_describe(error)}") from None

    def _exchange(
        self,
        index: int,
        conn: Optional[http.client.HTTPConnection],
        body: bytes,
        headers: Dict[str, str],
        deadline: Optional[float],
    ) -> Response:
        keep = False
        try:
            if conn is None:
                conn = self._connect(self._endpoints[index], deadline)
            sock = conn.sock
            self._active_sock = sock
            if sock is not None:
                sock.settimeout(self._timeout(self._io_timeout, deadline))
            conn.request("POST", self._endpoints[index].target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_RESPONSE_BODY_BYTES + 1)
            if len(data) > MAX_RESPONSE_BODY_BYTES:
                raise AttemptError(
                    f"{self.url(index)}: response body larger than {MAX_RESPONSE_BODY_BYTES} bytes"
                )
            keep = not response.will_close and response.isclosed()
            retry_after = parse_retry_after(response.getheader("Retry-After"))
            return Response(response.status, retry_after, data)
        finally:
            self._active_sock = None
            if conn is not None:
                if keep:
                    self._idle[index] = conn
                else:
                    conn.close()

    def _connect(self, endpoint: Endpoint, deadline: Optional[float]) -> http.client.HTTPConnection:
        timeout = self._timeout(self._connect_timeout, deadline)
        conn: http.client.HTTPConnection
        if endpoint.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
        conn.connect()
        if conn.sock is not None:
            # Head and body go out in one request; a lone small request
            # must not wait for a delayed ACK either.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    @staticmethod
    def _timeout(limit: float, deadline: Optional[float]) -> float:
        if deadline is None:
            return limit
        left = deadline - time.monotonic()
        if left <= 0:
            raise AttemptError("shutdown deadline passed")
        return max(min(limit, left), _MIN_SOCKET_TIMEOUT)

    def abort(self) -> None:
        """Cuts the request in flight (called from another thread)."""
        sock = self._active_sock
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Closes every idle connection."""
        for index, conn in enumerate(self._idle):
            self._idle[index] = None
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001, S110 - closing is best effort
                    pass

    def forget_after_fork(self) -> None:
        """In a forked child: drops the parent's connections. Closing the
        child's copy of a descriptor sends nothing while the parent still
        has it open, so the parent's connections are unaffected; a TLS
        connection is detached rather than closed so no close_notify goes
        out on the parent's stream."""
        for index, conn in enumerate(self._idle):
            self._idle[index] = None
            sock = getattr(conn, "sock", None)
            if sock is None:
                continue
            try:
                if isinstance(sock, ssl.SSLSocket):
                    socket.close(sock.detach())
                else:
                    sock.close()
            except Exception:  # noqa: BLE001, S110
                pass
        self._active_sock = None


def _describe(error: BaseException) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out waiting for the server"
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed before a complete response"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"
