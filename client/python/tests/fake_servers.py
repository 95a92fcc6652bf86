"""Small socket servers on 127.0.0.1 that misbehave on purpose.

``FakeCollector`` reads each HTTP/1.1 request (Content-Length framed, as the
client sends), decodes the NDJSON body, and answers whatever its ``reply``
function says: accept, reject some events, any status, close, stall or
garbage. ``CuttingProxy`` forwards to a real collector and, for the first
requests, closes the client's connection after the collector answered,
without relaying that answer. Every loop here is bounded by ``stop()``.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

#: Largest request a fake server reads.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
#: Socket timeout of server-side sockets, so loops notice ``stop()``.
_POLL_SECONDS = 0.05


@dataclass
class SeenRequest:
    """One request as a fake server saw it."""

    at: float
    connection: int
    request_line: str
    headers: Dict[str, str]
    raw_body: bytes
    events: List[dict] = field(default_factory=list)

    def ids(self) -> List[str]:
        return [event.get("_id", "") for event in self.events]


@dataclass
class Reply:
    """What to do with one request; build with the helpers below."""

    kind: str
    status: int = 200
    headers: Tuple[Tuple[str, str], ...] = ()
    body: bytes = b""
    close_after: bool = False


def accept() -> Reply:
    return Reply("accept")


def accept_then_close() -> Reply:
    """Accepts, then closes the connection without saying so in a header."""
    return Reply("accept", close_after=True)


def reject(indices_and_errors: List[Tuple[int, str]]) -> Reply:
    return Reply("reject", body=json.dumps(indices_and_errors).encode())


def status(code: int, headers: Tuple[Tuple[str, str], ...] = (), body: bytes = b"") -> Reply:
    return Reply("status", status=code, headers=headers, body=body)


def close() -> Reply:
    return Reply("close")


def stall() -> Reply:
    return Reply("stall")


def garbage(data: bytes) -> Reply:
    return Reply("garbage", body=data)


ReplyFn = Callable[[int, SeenRequest], Reply]


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes, stop: threading.Event) -> int:
    """Index of ``marker`` in ``buf`` after reading as needed; -1 on close."""
    while True:
        index = buf.find(marker)
        if index >= 0:
            return index
        chunk = _recv(sock, stop)
        if not chunk:
            return -1
        buf += chunk
        if len(buf) > MAX_REQUEST_BYTES:
            return -1


def _recv(sock: socket.socket, stop: threading.Event) -> bytes:
    while not stop.is_set():
        try:
            return sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return b""
    return b""


def read_http_message(
    sock: socket.socket, buf: bytearray, stop: threading.Event
) -> Optional[Tuple[str, Dict[str, str], bytes, bytes]]:
    """One request or response: (first line, headers, body, raw bytes)."""
    end = _read_until(sock, buf, b"\r\n\r\n", stop)
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1")
    lines = head.split("\r\n")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    total = end + 4 + length
    while len(buf) < total:
        chunk = _recv(sock, stop)
        if not chunk:
            return None
        buf += chunk
    raw = bytes(buf[:total])
    body = bytes(buf[end + 4 : total])
    del buf[:total]
    return lines[0], headers, body, raw


def _decode_events(headers: Dict[str, str], raw_body: bytes) -> List[dict]:
    body = raw_body
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    events = []
    for line in body.split(b"\n"):
        if line.strip():
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append({})
    return events


class _Server:
    """Accept loop plus one thread per connection (TLS when given a
    server-side ``ssl.SSLContext``)."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self._tls = tls
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(_POLL_SECONDS)
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._connections = 0
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(_POLL_SECONDS)
            self._connections += 1
            thread = threading.Thread(
                target=self._serve_guarded, args=(sock, self._connections), daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve_guarded(self, sock: socket.socket, connection: int) -> None:
        try:
            if self._tls is not None:
                sock.settimeout(5)
                sock = self._tls.wrap_socket(sock, server_side=True)
                sock.settimeout(_POLL_SECONDS)
            self.serve(sock, connection)
        except OSError:
            pass
        finally:
            sock.close()

    def serve(self, sock: socket.socket, connection: int) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accept_thread.join(5)
        for thread in self._threads:
            thread.join(5)


class FakeCollector(_Server):
    """Answers each request as ``reply(request_index, request)`` says."""

    def __init__(
        self, reply: ReplyFn = lambda i, r: accept(), tls: Optional[ssl.SSLContext] = None
    ) -> None:
        self.reply = reply
        self.seen: List[SeenRequest] = []
        self._lock = threading.Lock()
        super().__init__(tls)

    def serve(self, sock: socket.socket, connection: int) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            message = read_http_message(sock, buf, self._stop)
            if message is None:
                return
            line, headers, body, _ = message
            request = SeenRequest(time.monotonic(), connection, line, headers, body)
            request.events = _decode_events(headers, body)
            with self._lock:
                index = len(self.seen)
                self.seen.append(request)
            if not self._answer(sock, self.reply(index, request), request):
                return

    def _answer(self, sock: socket.socket, reply: Reply, request: SeenRequest) -> bool:
        """Sends the reply; False when the connection is to be closed."""
        if reply.kind == "close":
            return False
        if reply.kind == "stall":
            self._stop.wait()
            return False
        if reply.kind == "garbage":
            sock.sendall(reply.body)
            return False
        if reply.kind == "accept":
            rejected: List[Tuple[int, str]] = []
            body = None
        elif reply.kind == "reject":
            rejected = [tuple(pair) for pair in json.loads(reply.body)]
            body = None
        else:
            body = reply.body
        if body is None:
            answer = {
                "accepted": len(request.events) - len(rejected),
                "rejected": [{"index": i, "error": e} for i, e in rejected],
            }
            body = json.dumps(answer).encode()
        head = [f"HTTP/1.1 {reply.status} X", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in reply.headers]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return not reply.close_after

    def requests(self) -> List[SeenRequest]:
        with self._lock:
            return list(self.seen)

    def events(self) -> List[dict]:
        return [event for request in self.requests() for event in request.events]

    def __enter__(self) -> FakeCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CuttingProxy(_Server):
    """Forwards each request to ``upstream`` and, for the first ``cut``
    requests, closes the client's connection once the upstream answered
    (so the events are committed but the client never hears it)."""

    def __init__(self, upstream_port: int, cut: int) -> None:
        self.upstream_port = upstream_port
        self.cut_left = cut
        self.cut_done = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        super().__init__()

    def serve(self, sock: socket.socket, connection: int) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        try:
            client_buf = bytearray()
            upstream_buf = bytearray()
            while not self._stop.is_set():
                request = read_http_message(sock, client_buf, self._stop)
                if request is None:
                    return
                upstream.sendall(request[3])
                response = read_http_message(upstream, upstream_buf, self._stop)
                if response is None:
                    return
                with self._lock:
                    self.forwarded += 1
                    cut = self.cut_left > 0
                    if cut:
                        self.cut_left -= 1
                        self.cut_done += 1
                if cut:
                    return  # closes the client's connection, answer unsent
                sock.sendall(response[3])
        finally:
            upstream.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unreachable_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
