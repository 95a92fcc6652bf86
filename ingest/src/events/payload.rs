//! The payload of one journal record: the accepted events of one request.
//! The layout is documented byte by byte in the module doc of
//! [`crate::events`].

use std::ops::Range;

/// Payload flag: the request came from a relay, so its events keep their own
/// `recv`, `app` and `ts_raw` (DESIGN §3).
pub const PAYLOAD_FLAG_RELAYED: u8 = 0b0000_0001;
/// Every flag this version knows. A payload with another bit set was written
/// by a newer collector: refusing it beats misreading it.
pub const PAYLOAD_KNOWN_FLAGS: u8 = PAYLOAD_FLAG_RELAYED;
/// Bytes of the flags prefix.
pub const PAYLOAD_FLAGS_BYTES: usize = 1;
/// Bytes of each event's length prefix (u32, little-endian).
pub const PAYLOAD_LEN_BYTES: usize = 4;

/// Why a payload cannot be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not even the flags byte.
    #[error("payload is empty (no flags byte)")]
    Empty,
    /// Flag bits this version does not know.
    #[error("payload flags {flags:#04x} have unknown bits set")]
    UnknownFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A length prefix or an event runs past the end of the payload.
    #[error("payload truncated at byte {offset}")]
    Truncated {
        /// Where the incomplete length or event starts.
        offset: usize,
    },
    /// A zero-length event: no accepted event is empty.
    #[error("empty event at byte {offset} of the payload")]
    EmptyEvent {
        /// Where its length prefix starts.
        offset: usize,
    },
    /// An accepted range that does not lie inside the body (a caller bug).
    #[error("event range {start}..{end} is outside the {body_len}-byte body")]
    RangeOutOfBody {
        /// Range start.
        start: usize,
        /// Range end.
        end: usize,
        /// Body length.
        body_len: usize,
    },
    /// An event longer than a u32 length can say.
    #[error("event of {len} bytes does not fit a u32 length")]
    EventTooLong {
        /// Its length.
        len: usize,
    },
}

/// Bytes [`encode_payload`] appends for these events (to size a journal
/// record before building it).
pub fn payload_len(accepted: &[Range<usize>]) -> usize {
    PAYLOAD_FLAGS_BYTES
        + accepted
            .iter()
            .map(|range| PAYLOAD_LEN_BYTES + range.len())
            .sum::<usize>()
}

/// Appends the payload for `body[range]` of each accepted range to `out`
/// (a buffer reused from request to request). On error `out` is left as it
/// was.
pub fn encode_payload(
    flags: u8,
    body: &[u8],
    accepted: &[Range<usize>],
    out: &mut Vec<u8>,
) -> Result<(), PayloadError> {
    let checked = check_payload(flags, body, accepted)?;
    let initial_len = out.len();
    out.resize(initial_len + checked.len(), 0);
    checked.write(&mut out[initial_len..]);
    Ok(())
}

/// A payload whose framing was checked ([`check_payload`]): writing it
/// cannot fail.
#[derive(Debug, Clone, Copy)]
pub struct CheckedPayload<'a> {
    flags: u8,
    body: &'a [u8],
    accepted: &'a [Range<usize>],
    len: usize,
}

/// Checks that `flags` and every accepted range can be framed (known
/// flags; each range inside `body`, not empty, its length fitting a u32).
pub fn check_payload<'a>(
    flags: u8,
    body: &'a [u8],
    accepted: &'a [Range<usize>],
) -> Result<CheckedPayload<'a>, PayloadError> {
    if flags & !PAYLOAD_KNOWN_FLAGS != 0 {
        return Err(PayloadError::UnknownFlags { flags });
    }
    let mut offset = PAYLOAD_FLAGS_BYTES;
    for range in accepted {
        let event = body
            .get(range.clone())
            .ok_or(PayloadError::RangeOutOfBody {
                start: range.start,
                end: range.end,
                body_len: body.len(),
            })?;
        if event.is_empty() {
            return Err(PayloadError::EmptyEvent { offset });
        }
        u32::try_from(event.len()).map_err(|_| PayloadError::EventTooLong { len: event.len() })?;
        offset += PAYLOAD_LEN_BYTES + event.len();
    }
    debug_assert_eq!(offset, payload_len(accepted));
    Ok(CheckedPayload {
        flags,
        body,
        accepted,
        len: offset,
    })
}

impl CheckedPayload<'_> {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: a payload holds at least its flags byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the payload into `out`, exactly [`CheckedPayload::len`]
    /// bytes (the journal's group buffer: no copy made first).
    pub fn write(&self, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            self.len,
            "payload written into a wrong-sized slot"
        );
        let (first, mut rest) = out.split_at_mut(PAYLOAD_FLAGS_BYTES);
        first[0] = self.flags;
        for range in self.accepted {
            // `check_payload` saw every range inside the body and u32-sized.
            let event = &self.body[range.clone()];
            let (len_bytes, after_len) = rest.split_at_mut(PAYLOAD_LEN_BYTES);
            len_bytes.copy_from_slice(&(event.len() as u32).to_le_bytes());
            let (event_bytes, after_event) = after_len.split_at_mut(event.len());
            event_bytes.copy_from_slice(event);
            rest = after_event;
        }
        debug_assert!(rest.is_empty());
    }
}

/// Checks the whole framing of `payload` and returns an iterator over its
/// events. All checking happens here, so the iterator itself cannot fail;
/// no input panics.
pub fn decode_payload(payload: &[u8]) -> Result<PayloadIter<'_>, PayloadError> {
    let (&flags, events) = payload.split_first().ok_or(PayloadError::Empty)?;
    if flags & !PAYLOAD_KNOWN_FLAGS != 0 {
        return Err(PayloadError::UnknownFlags { flags });
    }
    let mut count = 0usize;
    let mut rest = events;
    while !rest.is_empty() {
        let offset = payload.len() - rest.len();
        let (event, after) = split_event(rest).map_err(|kind| kind.at(offset))?;
        debug_assert!(!event.is_empty());
        rest = after;
        count += 1;
    }
    Ok(PayloadIter {
        flags,
        rest: events,
        remaining: count,
    })
}

/// What is wrong at some offset (filled in by the caller).
enum FrameError {
    Truncated,
    Empty,
}

impl FrameError {
    fn at(self, offset: usize) -> PayloadError {
        match self {
            Self::Truncated => PayloadError::Truncated { offset },
            Self::Empty => PayloadError::EmptyEvent { offset },
        }
    }
}

/// Splits one `len | bytes` frame off the front of `rest`.
fn split_event(rest: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    let (len_bytes, after_len) = rest
        .split_first_chunk::<PAYLOAD_LEN_BYTES>()
        .ok_or(FrameError::Truncated)?;
    let len = usize::try_from(u32::from_le_bytes(*len_bytes)).map_err(|_| FrameError::Truncated)?;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if after_len.len() < len {
        return Err(FrameError::Truncated);
    }
    Ok(after_len.split_at(len))
}

/// The events of a checked payload, in order, as their verbatim bytes.
#[derive(Debug, Clone)]
pub struct PayloadIter<'a> {
    flags: u8,
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> PayloadIter<'a> {
    /// The flags byte (`PAYLOAD_FLAG_*`).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the request came from a relay.
    pub fn relayed(&self) -> bool {
        self.flags & PAYLOAD_FLAG_RELAYED != 0
    }
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // `decode_payload` checked every frame; a failure here cannot
        // happen, and would end the iteration rather than panic.
        let (event, rest) = split_event(self.rest).ok()?;
        self.rest = rest;
        self.remaining = self.remaining.saturating_sub(1);
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for PayloadIter<'_> {}
