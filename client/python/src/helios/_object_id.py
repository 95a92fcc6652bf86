"""ObjectId minting for event ``_id`` values.

The client fixes every event's ``_id`` when ``record()`` is called, so a
resend after a lost acknowledgement carries the same id and the collector
stores the event once (DESIGN.md section 1, invariant 2). The layout is
MongoDB's, so ids sort by creation second and need no coordination between
processes:

=======  ==============================================================
bytes    content
=======  ==============================================================
0..4     unix seconds, big-endian
4..9     random value, fixed for the life of the process
9..12    big-endian counter, starting at a random value, wrapping at 2^24
=======  ==============================================================

A forked child gets a fresh random value and counter (see ``reseed``):
otherwise parent and child would mint the same ids and the store would
keep only one of each pair.
"""

from __future__ import annotations

import itertools
import os

#: Size of an ObjectId in bytes.
OBJECT_ID_BYTES = 12
#: Length of an ObjectId written as lowercase hex.
OBJECT_ID_HEX_LEN = 2 * OBJECT_ID_BYTES
#: The counter occupies the low three bytes.
_COUNTER_MASK = 0xFFFFFF
#: Bytes of per-process randomness.
_PROCESS_RANDOM_BYTES = 5


class _ProcessIdState:
    """The per-process parts of an id, shared by every client."""

    __slots__ = ("counter", "random_hex")

    def __init__(self) -> None:
        self.random_hex = os.urandom(_PROCESS_RANDOM_BYTES).hex()
        start = int.from_bytes(os.urandom(3), "big")
        # next() on itertools.count is a single C call, so concurrent
        # record() calls never see the same value (no lock on the hot path).
        self.counter = itertools.count(start)


_state = _ProcessIdState()


def reseed() -> None:
    """Gives this process a new random value and counter (after fork)."""
    global _state
    _state = _ProcessIdState()


def mint_hex(unix_secs: int) -> str:
    """A fresh id for an event created at ``unix_secs``, as 24 hex digits."""
    state = _state
    counter = next(state.counter) & _COUNTER_MASK
    return f"{unix_secs & 0xFFFFFFFF:08x}{state.random_hex}{counter:06x}"
