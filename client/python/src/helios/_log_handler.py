"""``LogHandler``: route an app's existing ``logging`` to Helios."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict

from ._client import Client
from ._encode import rfc3339_ms

#: Attributes every ``LogRecord`` has; anything else on a record came from
#: ``extra=`` (or a filter) and becomes an event field.
_STANDARD_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None, "func", None))
) | {"message", "asctime", "taskName"}
#: Records of these loggers are never recorded: the client's own messages
#: about lost events would otherwise loop back into it.
_OWN_LOGGER_PREFIX = "helios"


class LogHandler(logging.Handler):
    """A ``logging.Handler`` that records each log record as a Helios event.

    Fields: ``message`` (the formatted message), ``level`` (``"ERROR"``...),
    ``logger``, ``ts`` (the record's creation time), ``file``, ``line``,
    ``function``, ``thread``, ``process``, ``exception`` (the formatted
    traceback, when there is one), ``stack`` (with ``stack_info=True``) and
    every ``extra={...}`` field, converted by the client's value rules. A
    field named like one of the above is kept from the record, not
    ``extra``.

    Records from the ``helios`` loggers themselves (e.g. ``helios.lost``)
    are skipped so a lost event can never loop back into the client; so is
    a record emitted while this handler is already recording one on the
    same thread. Like ``Client.record``, ``emit`` never raises.

    Example::

        logging.getLogger().addHandler(helios.LogHandler(client))
    """

    def __init__(self, client: Client, type: str = "log", level: int = logging.NOTSET) -> None:  # noqa: A002 - the issue's API
        super().__init__(level)
        self.client = client
        self.event_type = type
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if name == _OWN_LOGGER_PREFIX or name.startswith(_OWN_LOGGER_PREFIX + "."):
            return
        if getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            self.client.record(self.event_type, self._fields(record))
        except Exception:  # noqa: BLE001, S110 - record() never raises; belt and braces
            pass
        finally:
            self._busy.active = False

    def _fields(self, record: logging.LogRecord) -> Dict[str, Any]:
        fields: Dict[str, Any] = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_RECORD_ATTRIBUTES and not key.startswith("_")
        }
        fields.update(
            message=_message(record),
            level=record.levelname,
            logger=record.name,
            ts=rfc3339_ms(int(record.created * 1000)),
            file=record.pathname,
            line=record.lineno,
            function=record.funcName,
            thread=record.threadName,
            process=record.process,
        )
        if record.exc_info and record.exc_info[0] is not None:
            fields["exception"] = _exception_text(record)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = record.stack_info
        return fields


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as error:  # noqa: BLE001 - bad %-arguments are the app's bug, not a crash
        return f"{record.msg!r} % {record.args!r} (formatting failed: {error})"


_exception_formatter = logging.Formatter()


def _exception_text(record: logging.LogRecord) -> str:
    try:
        return _exception_formatter.formatException(record.exc_info)  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001
        return f"(traceback unavailable: {error})"
