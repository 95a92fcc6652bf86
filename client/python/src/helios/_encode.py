"""Turning ``record()`` arguments into the bytes that go on the wire.

An event is encoded once, in the calling thread, into its final JSON
document. The sender only concatenates documents, so every resend carries
byte-identical events with the same ``_id``, and a lost event is logged
exactly as it would have been stored.

Keys owned by the client: ``_id`` and ``type`` always come from
``record()``; a field named ``recv`` is removed because the collector owns
it and rejects events that carry it. ``ts``, ``host`` and ``app`` are
defaults: a field of the same name given by the app wins.

Value conversion rules
----------------------
Values JSON encodes as they are (``str``, ``int``, ``float``, ``bool``,
``None``, ``dict``, ``list``, ``tuple`` and their subclasses, so also
``IntEnum`` and ``StrEnum``) are written as JSON writes them. Everything
else is converted, recursively, by the first rule that matches:

==========================  ===============================================
value                       written as
==========================  ===============================================
``datetime.datetime``       RFC 3339 string in UTC, ``Z`` suffix,
                            microseconds when non-zero. A naive datetime
                            is taken as local time (Python's own rule for
                            ``datetime.timestamp()``).
``datetime.date``           ``"YYYY-MM-DD"``
``datetime.time``           ``time.isoformat()``, e.g. ``"12:30:00"``
``datetime.timedelta``      its total seconds, a number
``decimal.Decimal``         a number: exact integer when integral, else
                            the nearest float; NaN and infinities: null
``float`` NaN / infinity    null (JSON has no such numbers; this is what
                            JavaScript's ``JSON.stringify`` does)
``uuid.UUID``               its canonical string (lowercase, hyphenated)
``bytes``, ``bytearray``,   standard padded base64 text (lossless; bytes
``memoryview``              need not be text)
``set``, ``frozenset``      a list, sorted when its items can be sorted
``enum.Enum``               its ``value``, converted by these rules
dataclass instance          an object of its fields (``dataclasses.fields``)
``os.PathLike``             its path as text (``os.fsdecode``)
other ``Mapping``           an object
other ``Sequence``/``Set``  a list
anything else               ``str(value)``
==========================  ===============================================

Object keys that are not ``str``, ``int``, ``float``, ``bool`` or ``None``
are converted by the same rules when that gives text or a number (``UUID``,
``Enum``, ``datetime``...), and written as ``str(key)`` otherwise. Text
holding lone surrogates (e.g. file names decoded with ``surrogateescape``)
cannot be UTF-8: each such code point becomes U+FFFD.

Where no rule can produce a document (a circular reference, nesting deeper
than ``MAX_NESTING_DEPTH``, a ``__str__`` that raises, fields that are not a
mapping) ``encode_event`` raises ``EncodeError`` and the client logs the
event whole, as its ``repr``, on the ``helios.lost`` logger.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Dict, Optional, Tuple

#: Keys the app may not set through fields (see the module docstring).
CLIENT_OWNED_KEYS = frozenset({"_id", "type", "recv"})
#: Deepest nesting the slow path follows; deeper is an encoding error (the
#: collector's default limit is 64, so such an event could not be stored).
MAX_NESTING_DEPTH = 128
#: Event types whose JSON form is cached; apps use a handful of types, and
#: the bound keeps a flood of distinct types from growing memory.
_TYPE_CACHE_MAX_ENTRIES = 1024

_UTC = datetime.timezone.utc


class EncodeError(Exception):
    """``record()`` arguments that no rule turns into a document."""


def _datetime_text(value: datetime.datetime) -> str:
    # astimezone() on a naive datetime assumes local time, like timestamp().
    utc = value.astimezone(_UTC).replace(tzinfo=None)
    return utc.isoformat() + "Z"


def _decimal_number(value: decimal.Decimal) -> Any:
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _set_items(value: AbstractSet) -> list:
    try:
        return sorted(value)
    except TypeError:
        # Mixed or unorderable items: iteration order is all there is.
        return list(value)


def _bytes_text(value: Any) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


#: Exact-type fast lookup for the commonest conversions; subclasses fall
#: through to the isinstance chain in ``convert``.
_CONVERTERS = {
    datetime.datetime: _datetime_text,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    datetime.timedelta: datetime.timedelta.total_seconds,
    decimal.Decimal: _decimal_number,
    uuid.UUID: str,
    bytes: _bytes_text,
    bytearray: _bytes_text,
    memoryview: _bytes_text,
    set: _set_items,
    frozenset: _set_items,
}


def convert(value: Any) -> Any:
    """Applies the first matching conversion rule to one value.

    Used as ``json``'s ``default`` hook: it is called only for values JSON
    cannot encode as they are, and its result is encoded (and converted)
    in turn.
    """
    converter = _CONVERTERS.get(type(value))
    if converter is not None:
        return converter(value)
    # Order matters: datetime is a date subclass.
    if isinstance(value, datetime.datetime):
        return _datetime_text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return _decimal_number(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_text(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, AbstractSet):
        return _set_items(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return str(value)


_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    default=convert,
)
_PRIMITIVE_KEY_TYPES = (str, int, float, bool, type(None))


def _float_key(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _key_text(key: Any) -> str:
    """An object key as text, the way ``json`` writes primitive keys."""
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float_key(key)
    converted = convert(key)
    if isinstance(converted, _PRIMITIVE_KEY_TYPES):
        return _key_text(converted)
    return str(key)


def _normalize(value: Any, depth: int, path: set) -> Any:
    """Rebuilds ``value`` from JSON-ready types only (the slow path)."""
    if depth > MAX_NESTING_DEPTH:
        raise EncodeError(f"nested deeper than {MAX_NESTING_DEPTH} levels")
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    is_container = isinstance(value, (dict, list, tuple))
    if not is_container:
        # A conversion result can itself need converting (Enum value,
        # dataclass fields); depth bounds a chain that never ends.
        return _normalize(convert(value), depth + 1, path)
    marker = id(value)
    if marker in path:
        raise EncodeError("circular reference")
    path.add(marker)
    try:
        if isinstance(value, dict):
            return {_key_text(k): _normalize(v, depth + 1, path) for k, v in value.items()}
        return [_normalize(item, depth + 1, path) for item in value]
    finally:
        path.discard(marker)


def dumps(value: Any) -> str:
    """``value`` as compact JSON text, by the module's conversion rules."""
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError, RecursionError):
        # Non-finite floats, keys json refuses, a cycle or deep nesting:
        # the slow path converts what it can and names what it cannot.
        try:
            return _ENCODER.encode(_normalize(value, 0, set()))
        except RecursionError:
            raise EncodeError(f"nested deeper than {MAX_NESTING_DEPTH} levels") from None


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates replaced by U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return repaired.encode("utf-8")


_type_cache: Dict[str, str] = {}


def _type_json(event_type: Any) -> str:
    cached = _type_cache.get(event_type) if type(event_type) is str else None
    if cached is not None:
        return cached
    if not isinstance(event_type, str):
        raise EncodeError(f"event type must be a non-empty string, got {type(event_type).__name__}")
    if not event_type:
        raise EncodeError("event type is empty")
    text = dumps(str(event_type))
    if type(event_type) is str and len(_type_cache) < _TYPE_CACHE_MAX_ENTRIES:
        _type_cache[event_type] = text
    return text


#: The field that names an event's priority, and the value that lets it
#: use the queue's reserve (the collector reads the same field at its
#: journal budget: "low" refused first, "high" kept a reserve).
PRIORITY_FIELD = "priority"
HIGH_PRIORITY = "high"


def is_high_priority(doc: bytes) -> bool:
    """Whether an encoded event document says ``"priority": "high"``.

    Read from the document rather than the arguments, so keyword, mapping
    and dataclass fields all count, and ``"priority"`` inside a nested
    value does not. A cheap substring test first: most events carry no
    priority at all.
    """
    if b'"priority":"high"' not in doc:
        return False
    try:
        return json.loads(doc).get(PRIORITY_FIELD) == HIGH_PRIORITY
    except ValueError:
        return False


def _fields_dict(fields: Any) -> Dict[Any, Any]:
    if fields is None:
        return {}
    if type(fields) is dict:
        return fields
    if isinstance(fields, Mapping):
        return dict(fields)
    converted = convert(fields) if dataclasses.is_dataclass(fields) else None
    if isinstance(converted, dict):
        return converted
    raise EncodeError(
        f"fields must be a mapping or a dataclass instance, got {type(fields).__name__}"
    )


_ts_prefix_cache: Tuple[int, str] = (-1, "")


def rfc3339_ms(unix_ms: int) -> str:
    """``unix_ms`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    global _ts_prefix_cache
    secs, millis = divmod(unix_ms, 1000)
    cached_secs, prefix = _ts_prefix_cache
    if cached_secs != secs:
        # One strftime per second instead of one per event; the tuple is
        # replaced whole, so a racing thread reads an old or a new pair.
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        _ts_prefix_cache = (secs, prefix)
    return f"{prefix}.{millis:03d}Z"


def default_fields_json(defaults: Mapping[str, Optional[str]]) -> Tuple[Tuple[str, str], ...]:
    """``(key, JSON text)`` pairs for the client's default fields, encoded
    once when the client is built; ``None`` values are left out."""
    return tuple((key, dumps(value)) for key, value in defaults.items() if value is not None)


def encode_event(
    id_hex: str,
    unix_ms: int,
    event_type: Any,
    fields: Any,
    defaults: Tuple[Tuple[str, str], ...],
    more_fields: Optional[Dict[str, Any]] = None,
) -> bytes:
    """The complete JSON document of one event, as UTF-8 bytes.

    ``more_fields`` (``record()``'s keyword arguments) win over ``fields``.
    Raises ``EncodeError`` (or whatever a value's own ``__str__`` raises)
    when the arguments cannot make a document.
    """
    type_json = _type_json(event_type)
    fields = _fields_dict(fields)
    if more_fields:
        fields = {**fields, **more_fields}
    if "_id" in fields or "type" in fields or "recv" in fields:
        fields = {k: v for k, v in fields.items() if k not in CLIENT_OWNED_KEYS}
    parts = ['{"_id":"', id_hex, '","type":', type_json]
    if "ts" not in fields:
        parts += [',"ts":"', rfc3339_ms(unix_ms), '"']
    for key, value_json in defaults:
        if key not in fields:
            parts += [',"', key, '":', value_json]
    if fields:
        body = dumps(fields)
        # body is "{...}": splice its members after the envelope's.
        parts += [",", body[1:]]
    else:
        parts.append("}")
    return utf8("".join(parts))
