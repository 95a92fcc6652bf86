"""Logging events that will never be delivered.

Every path that loses an event ends here, so the app's log is the place of
last resort for the data (SEED "Client API": the logged message must contain
the entire document). Records go to the logger named ``helios.lost``, one
per event, so an app can route them to a file of their own and replay them
later. Without any logging configuration Python's last-resort handler still
prints WARNING and above to stderr, so nothing is lost silently.

Each record's message is ``helios event lost (<reason>): <document>``; a
document larger than the size cap is cut to its first bytes (never inside
a UTF-8 character) and the message gives its full size and says
``TRUNCATED``. The record also carries ``helios_reason``,
``helios_event_id`` and ``helios_document_bytes`` attributes for handlers
that want them.
"""

from __future__ import annotations

import logging
import re

#: Name of the logger every lost event is logged on.
LOST_LOGGER_NAME = "helios.lost"
#: Logger for the client's own operational messages (retries, odd answers).
CLIENT_LOGGER_NAME = "helios.client"

lost_logger = logging.getLogger(LOST_LOGGER_NAME)
client_logger = logging.getLogger(CLIENT_LOGGER_NAME)

# Why an event was lost; each is the start of the log message's reason.
QUEUE_FULL = "queue full, new event dropped"
QUEUE_RESERVED = "queue 90% full, the rest is kept for priority high: new low/normal event dropped"
CLIENT_CLOSED = "recorded after client close"
SHUTDOWN_DEADLINE = "shutdown deadline passed before delivery"
SENDER_FAILED = "sender thread failed internally"
#: Most bytes of server-supplied text quoted in a log message.
MAX_QUOTED_TEXT_BYTES = 256
_ID_PATTERN = re.compile(rb'^\{"_id":"([0-9a-f]{24})"')
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def too_large(limit_bytes: int) -> str:
    return f"event larger than max_event_bytes={limit_bytes}"


def invalid(error: str) -> str:
    return f"invalid event: {error}"


def internal_error(error: BaseException) -> str:
    return f"client internal error: {type(error).__name__}: {error}"


def rejected(reason: str) -> str:
    return f"rejected by server: {reason}"


def retries_exhausted(attempts: int, last_error: str) -> str:
    return f"retries exhausted after {attempts} attempts, last error: {last_error}"


def one_line(text: str) -> str:
    """Server text as one bounded log line: control characters and runs of
    whitespace become one space, so a server cannot forge extra lines in
    the app's log."""
    flat = _WHITESPACE_OR_CONTROL.sub(" ", text).strip()
    if len(flat.encode("utf-8", "replace")) <= MAX_QUOTED_TEXT_BYTES:
        return flat
    return utf8_prefix(flat.encode("utf-8", "replace"), MAX_QUOTED_TEXT_BYTES).decode(
        "utf-8", "replace"
    )


def utf8_prefix(doc: bytes, max_bytes: int) -> bytes:
    """The longest prefix of at most ``max_bytes`` that does not split a
    UTF-8 character."""
    end = min(max_bytes, len(doc))
    # A continuation byte looks like 0b10xx_xxxx; back up at most 3.
    for _ in range(3):
        if end == 0 or end == len(doc) or doc[end] & 0xC0 != 0x80:
            break
        end -= 1
    return doc[:end]


def _is_delivery_failure(reason: str) -> bool:
    # A server reject or an unencodable event is the app's data problem
    # (WARNING); the rest are delivery failures (ERROR).
    return not (reason.startswith("rejected") or reason.startswith("invalid"))


def log_lost(reason: str, doc: bytes, max_logged_bytes: int) -> None:
    """Logs one lost document whole, or truncated with its size when it is
    larger than ``max_logged_bytes``. Never raises."""
    try:
        level = logging.ERROR if _is_delivery_failure(reason) else logging.WARNING
        if not lost_logger.isEnabledFor(level):
            return
        match = _ID_PATTERN.match(doc)
        extra = {
            "helios_reason": reason,
            "helios_event_id": match.group(1).decode("ascii") if match else None,
            "helios_document_bytes": len(doc),
        }
        if len(doc) <= max_logged_bytes:
            text = doc.decode("utf-8", "replace")
            lost_logger.log(level, "helios event lost (%s): %s", reason, text, extra=extra)
            return
        prefix = utf8_prefix(doc, max_logged_bytes)
        lost_logger.log(
            level,
            "helios event lost (%s); document is %d bytes, TRUNCATED to its first %d bytes: %s",
            reason,
            len(doc),
            len(prefix),
            prefix.decode("utf-8", "replace"),
            extra=extra,
        )
    except Exception:  # noqa: BLE001, S110 - a broken handler must not reach the app
        pass


def log_lost_many(reason: str, docs, max_logged_bytes: int) -> None:
    """``log_lost`` for each document of ``docs``."""
    for doc in docs:
        log_lost(reason, doc, max_logged_bytes)
