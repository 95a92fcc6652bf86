//! [`ObjectId`]: the 12-byte identity every Helios event carries (DESIGN §3),
//! the one implementation shared by the client crate (which mints ids for
//! the events an app records) and the store (which keeps them unique).
//!
//! The layout is MongoDB's: 4-byte big-endian seconds | 5-byte node id |
//! 3-byte big-endian counter. Big-endian seconds first means byte order is
//! time order, which the store's `(ts, _id)` keyset pagination and the `Ord`
//! impl rely on. *Minting* (which node id, which counter) is policy and lives
//! with whoever mints (the client per process, the collector per journal);
//! this crate is only the value type and its text form.
//!
//! The crate has no dependencies, so the lean client pays nothing for it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

/// Number of bytes in an [`ObjectId`].
pub const OBJECT_ID_BYTES: usize = 12;
/// Number of hex digits in the text form of an [`ObjectId`].
pub const OBJECT_ID_HEX_CHARS: usize = OBJECT_ID_BYTES * 2;
/// Number of bytes of the node-id part.
pub const NODE_ID_BYTES: usize = 5;
/// Largest value the 3-byte counter part can hold.
pub const COUNTER_MAX: u32 = 0x00FF_FFFF;

const SECONDS_END: usize = 4;
const NODE_END: usize = SECONDS_END + NODE_ID_BYTES;

/// A 12-byte event id, ordered by its bytes (so by creation second first).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; OBJECT_ID_BYTES]);

/// Why a text or byte slice is not an [`ObjectId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectIdError {
    /// The text is not exactly 24 bytes long.
    InvalidLength {
        /// Length of the rejected input, in bytes.
        len: usize,
    },
    /// A character is not a hex digit.
    InvalidChar {
        /// Byte offset of the offending character.
        index: usize,
        /// The offending character.
        found: char,
    },
    /// A binary id is not exactly 12 bytes long.
    InvalidByteLength {
        /// Length of the rejected slice.
        len: usize,
    },
    /// The counter does not fit in the 3-byte counter part.
    CounterOutOfRange {
        /// The rejected counter.
        counter: u32,
    },
}

impl fmt::Display for ObjectIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLength { len } => write!(
                f,
                "ObjectId must be {OBJECT_ID_HEX_CHARS} hex digits, got {len} bytes"
            ),
            Self::InvalidChar { index, found } => {
                write!(
                    f,
                    "ObjectId has a non-hex character {found:?} at byte {index}"
                )
            }
            Self::InvalidByteLength { len } => {
                write!(f, "ObjectId must be {OBJECT_ID_BYTES} bytes, got {len}")
            }
            Self::CounterOutOfRange { counter } => write!(
                f,
                "ObjectId counter {counter} exceeds the 24-bit maximum {COUNTER_MAX}"
            ),
        }
    }
}

impl std::error::Error for ObjectIdError {}

impl ObjectId {
    /// Wraps 12 raw bytes (as stored in SQLite's `_id` BLOB).
    pub const fn from_bytes(bytes: [u8; OBJECT_ID_BYTES]) -> Self {
        Self(bytes)
    }

    /// Reads an id from a byte slice that must be exactly 12 bytes long
    /// (e.g. a BLOB read back from the store, which we do not trust).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ObjectIdError> {
        let array: [u8; OBJECT_ID_BYTES] = bytes
            .try_into()
            .map_err(|_| ObjectIdError::InvalidByteLength { len: bytes.len() })?;
        Ok(Self(array))
    }

    /// Builds an id from its three parts. The counter must fit in 24 bits:
    /// silently masking it would let two different counters mint the same id.
    pub fn from_parts(
        timestamp_secs: u32,
        node_id: [u8; NODE_ID_BYTES],
        counter: u32,
    ) -> Result<Self, ObjectIdError> {
        if counter > COUNTER_MAX {
            return Err(ObjectIdError::CounterOutOfRange { counter });
        }
        let mut bytes = [0u8; OBJECT_ID_BYTES];
        bytes[..SECONDS_END].copy_from_slice(&timestamp_secs.to_be_bytes());
        bytes[SECONDS_END..NODE_END].copy_from_slice(&node_id);
        // The low three bytes of the big-endian counter.
        bytes[NODE_END..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Ok(Self(bytes))
    }

    /// Builds an id whose counter is `counter` modulo 2^24: for minters
    /// that let the counter wrap within one second (the client, whose ids
    /// also differ by the 5 random process bytes), unlike [`Self::from_parts`].
    pub const fn from_parts_wrapping(
        timestamp_secs: u32,
        node_id: [u8; NODE_ID_BYTES],
        counter: u32,
    ) -> Self {
        let secs = timestamp_secs.to_be_bytes();
        let count = (counter & COUNTER_MAX).to_be_bytes();
        Self([
            secs[0], secs[1], secs[2], secs[3], node_id[0], node_id[1], node_id[2], node_id[3],
            node_id[4], count[1], count[2], count[3],
        ])
    }

    /// Parses 24 hex digits, upper or lower case. Anything else (other
    /// lengths, signs, whitespace, `0x`) is rejected, never trimmed.
    pub fn parse_hex(text: &str) -> Result<Self, ObjectIdError> {
        let input = text.as_bytes();
        if input.len() != OBJECT_ID_HEX_CHARS {
            return Err(ObjectIdError::InvalidLength { len: input.len() });
        }
        let mut bytes = [0u8; OBJECT_ID_BYTES];
        for (i, out) in bytes.iter_mut().enumerate() {
            let high = hex_value(text, 2 * i)?;
            let low = hex_value(text, 2 * i + 1)?;
            *out = (high << 4) | low;
        }
        Ok(Self(bytes))
    }

    /// The raw 12 bytes.
    pub const fn bytes(&self) -> [u8; OBJECT_ID_BYTES] {
        self.0
    }

    /// The raw 12 bytes, borrowed.
    pub const fn as_bytes(&self) -> &[u8; OBJECT_ID_BYTES] {
        &self.0
    }

    /// The creation time part, in seconds since the Unix epoch.
    pub fn timestamp_secs(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// The 5-byte node-id part.
    pub fn node_id(&self) -> [u8; NODE_ID_BYTES] {
        let mut node = [0u8; NODE_ID_BYTES];
        node.copy_from_slice(&self.0[SECONDS_END..NODE_END]);
        node
    }

    /// The 24-bit counter part.
    pub fn counter(&self) -> u32 {
        u32::from_be_bytes([0, self.0[9], self.0[10], self.0[11]])
    }

    /// Lowercase hex text, 24 characters (the form stored in `doc._id`).
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The id as 24 lowercase hex ASCII bytes, without allocating (the
    /// client writes them straight into an event's JSON).
    pub fn hex_bytes(&self) -> [u8; OBJECT_ID_HEX_CHARS] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; OBJECT_ID_HEX_CHARS];
        for (i, byte) in self.0.iter().enumerate() {
            text[2 * i] = DIGITS[usize::from(byte >> 4)];
            text[2 * i + 1] = DIGITS[usize::from(byte & 0x0F)];
        }
        text
    }
}

/// Value of the hex digit at `index` of `text` (known to be in bounds).
fn hex_value(text: &str, index: usize) -> Result<u8, ObjectIdError> {
    let byte = text.as_bytes()[index];
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err(ObjectIdError::InvalidChar {
            index,
            // Every byte before `index` was an ASCII hex digit, so `index`
            // is a char boundary and the char is well defined.
            found: text[index..].chars().next().unwrap_or('\u{FFFD}'),
        }),
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.hex_bytes();
        // Only ASCII hex digits were written, so this cannot fail; still,
        // report a formatting error rather than panic.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = ObjectIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_hex(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_laid_out_seconds_node_counter_big_endian() {
        let id = ObjectId::from_parts(0x0102_0304, [5, 6, 7, 8, 9], 0x0A_0B0C).unwrap();
        assert_eq!(id.bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(id.timestamp_secs(), 0x0102_0304);
        assert_eq!(id.node_id(), [5, 6, 7, 8, 9]);
        assert_eq!(id.counter(), 0x0A_0B0C);
    }

    #[test]
    fn counter_above_24_bits_is_rejected_not_masked() {
        assert!(ObjectId::from_parts(1, [0; 5], COUNTER_MAX).is_ok());
        assert_eq!(
            ObjectId::from_parts(1, [0; 5], COUNTER_MAX + 1),
            Err(ObjectIdError::CounterOutOfRange {
                counter: COUNTER_MAX + 1
            })
        );
    }

    #[test]
    fn wrapping_parts_keep_the_low_24_bits_of_the_counter() {
        let id = ObjectId::from_parts_wrapping(1, [0; 5], COUNTER_MAX + 2);
        assert_eq!(id.counter(), 1);
        assert_eq!(
            ObjectId::from_parts_wrapping(7, [1, 2, 3, 4, 5], 9),
            ObjectId::from_parts(7, [1, 2, 3, 4, 5], 9).unwrap()
        );
    }

    #[test]
    fn order_follows_creation_second_first() {
        let early = ObjectId::from_parts(100, [0xFF; 5], COUNTER_MAX).unwrap();
        let late = ObjectId::from_parts(101, [0; 5], 0).unwrap();
        assert!(early < late);
    }

    #[test]
    fn from_slice_requires_exactly_twelve_bytes() {
        assert_eq!(
            ObjectId::from_slice(&[0; 11]),
            Err(ObjectIdError::InvalidByteLength { len: 11 })
        );
        assert!(ObjectId::from_slice(&[0; 12]).is_ok());
    }
}
