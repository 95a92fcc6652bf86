//! The on-disk format, byte by byte. `journal/FORMAT.md` is the prose version
//! of this module; the two must agree.
//!
//! All integers are little-endian. Offsets are from the start of the segment
//! file. A segment is `segment_size_bytes` long, a multiple of [`BLOCK_BYTES`];
//! block 0 holds the segment header, commits start on block boundaries.

use crate::error::FormatError;

/// The unit of every journal write and of O_DIRECT alignment. 4096 is the
/// physical block of the disks we target (statx reports 512 as the minimum
/// DIO alignment; 4096 never straddles a physical sector).
pub const BLOCK_BYTES: usize = 4096;

/// Magic at offset 0 of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"HELIOSJ\0";
/// The only format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header that carry data (the rest of block 0 is zero).
pub const SEGMENT_HEADER_BYTES: usize = 36;

/// Magic at offset 0 of every record header ("HREC").
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"HREC");
/// Size of a record header; the app name and payload follow it.
pub const RECORD_HEADER_BYTES: usize = 64;
/// Records inside a commit start on this alignment.
pub const RECORD_ALIGN_BYTES: usize = 8;
/// A commit marker is a bare record header of kind [`RecordKind::Marker`].
pub const MARKER_BYTES: usize = RECORD_HEADER_BYTES;
/// Longest app name a record can carry (the header field is a u16).
pub const MAX_APP_BYTES: usize = u16::MAX as usize;

/// Record flag: this record is the first of its commit.
pub const FLAG_COMMIT_START: u8 = 1;
/// Record flag, on a commit's first record only: the commit was opened
/// while an earlier commit was not yet durable, so it may have been in
/// flight together with that one (and then was acknowledged only after
/// it). Recovery reads it on a torn commit, whose marker is lost.
pub const FLAG_MAY_OVERLAP: u8 = 2;

/// What a record header describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Accepted events of one request.
    Events = 1,
    /// Closes a commit: a commit without its marker is torn.
    Marker = 2,
}

/// Decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment sequence number ("lap"): unique per incarnation of a file.
    pub lap: u64,
    /// Total file size this segment was created with.
    pub segment_size_bytes: u64,
}

impl SegmentHeader {
    /// Encodes the header into the first [`SEGMENT_HEADER_BYTES`] of `block`.
    pub fn encode(&self, block: &mut [u8]) {
        assert!(block.len() >= SEGMENT_HEADER_BYTES);
        block[0..8].copy_from_slice(&SEGMENT_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[12..16].copy_from_slice(&(BLOCK_BYTES as u32).to_le_bytes());
        block[16..24].copy_from_slice(&self.lap.to_le_bytes());
        block[24..32].copy_from_slice(&self.segment_size_bytes.to_le_bytes());
        let crc = crc32c::crc32c(&block[0..32]);
        block[32..36].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes and checks a segment header.
    pub fn decode(block: &[u8]) -> Result<SegmentHeader, FormatError> {
        if block.len() < SEGMENT_HEADER_BYTES {
            return Err(FormatError::Short);
        }
        if block[0..8] != SEGMENT_MAGIC {
            return Err(FormatError::BadMagic);
        }
        let crc = read_u32(block, 32);
        if crc32c::crc32c(&block[0..32]) != crc {
            return Err(FormatError::BadChecksum);
        }
        let version = read_u32(block, 8);
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let block_bytes = read_u32(block, 12);
        if block_bytes as usize != BLOCK_BYTES {
            return Err(FormatError::BadBlockSize(block_bytes));
        }
        let segment_size_bytes = read_u64(block, 24);
        if segment_size_bytes % BLOCK_BYTES as u64 != 0
            || segment_size_bytes < 2 * BLOCK_BYTES as u64
        {
            return Err(FormatError::BadSegmentSize(segment_size_bytes));
        }
        Ok(SegmentHeader {
            lap: read_u64(block, 16),
            segment_size_bytes,
        })
    }
}

/// The fields a caller gives for one record (everything but the sequencing,
/// which the journal assigns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordMeta<'a> {
    /// Receive time of the request, UTC milliseconds.
    pub recv_ms: i64,
    /// Clock offset applied to the events' `ts`, milliseconds (0 if none).
    pub clock_offset_ms: i64,
    /// ObjectId of the first minted id; later minted ids count up from it.
    pub id_base: [u8; 12],
    /// Number of events in the payload.
    pub event_count: u32,
    /// App the events belong to (may be empty).
    pub app: &'a str,
}

/// Decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Events or marker.
    pub kind: RecordKind,
    /// Flag bits (`FLAG_*`).
    pub flags: u8,
    /// Length of the app name that follows the header.
    pub app_len: u16,
    /// Length of the payload that follows the app name.
    pub payload_len: u32,
    /// Lap of the segment the record was written for.
    pub lap: u64,
    /// Per-journal record sequence (for a marker: the commit's first seq).
    pub seq: u64,
    /// See [`RecordMeta::recv_ms`].
    pub recv_ms: i64,
    /// See [`RecordMeta::clock_offset_ms`].
    pub clock_offset_ms: i64,
    /// See [`RecordMeta::id_base`].
    pub id_base: [u8; 12],
    /// Events in the payload (for a marker: records in the commit).
    pub count: u32,
}

impl RecordHeader {
    /// Bytes the record occupies, header included, before alignment padding.
    pub fn record_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + self.app_len as usize + self.payload_len as usize
    }
}

/// Bytes a record with this app and payload occupies, padding included.
pub fn padded_record_bytes(app_len: usize, payload_len: usize) -> usize {
    align_up(
        RECORD_HEADER_BYTES + app_len + payload_len,
        RECORD_ALIGN_BYTES,
    )
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub const fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// Encodes one record (header, app, payload, zero padding) into `out`, which
/// must be exactly `padded_record_bytes` long.
pub fn encode_record(
    out: &mut [u8],
    kind: RecordKind,
    flags: u8,
    lap: u64,
    seq: u64,
    meta: &RecordMeta<'_>,
    payload: &[u8],
) {
    let head = RecordHead {
        kind,
        flags,
        lap,
        seq,
    };
    encode_record_with(out, head, meta, payload.len(), |dst| {
        dst.copy_from_slice(payload)
    });
}

/// The fixed fields of a record besides its [`RecordMeta`].
#[derive(Debug, Clone, Copy)]
pub struct RecordHead {
    /// Events or marker.
    pub kind: RecordKind,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Lap of the segment it goes to.
    pub lap: u64,
    /// Its sequence.
    pub seq: u64,
}

/// [`encode_record`] with the payload written in place by `fill`, which is
/// handed exactly `payload_len` bytes and must write all of them (the
/// caller frames its data straight into the group buffer: no copy of it
/// made first). The CRC covers what `fill` wrote.
pub fn encode_record_with(
    out: &mut [u8],
    head: RecordHead,
    meta: &RecordMeta<'_>,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let RecordHead {
        kind,
        flags,
        lap,
        seq,
    } = head;
    let app = meta.app.as_bytes();
    debug_assert!(app.len() <= MAX_APP_BYTES);
    debug_assert!(payload_len <= u32::MAX as usize);
    let body_end = RECORD_HEADER_BYTES + app.len() + payload_len;
    assert_eq!(out.len(), align_up(body_end, RECORD_ALIGN_BYTES));
    out[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
    out[4] = kind as u8;
    out[5] = flags;
    out[6..8].copy_from_slice(&(app.len() as u16).to_le_bytes());
    out[8..12].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[16..24].copy_from_slice(&lap.to_le_bytes());
    out[24..32].copy_from_slice(&seq.to_le_bytes());
    out[32..40].copy_from_slice(&meta.recv_ms.to_le_bytes());
    out[40..48].copy_from_slice(&meta.clock_offset_ms.to_le_bytes());
    out[48..60].copy_from_slice(&meta.id_base);
    out[60..64].copy_from_slice(&meta.event_count.to_le_bytes());
    out[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + app.len()].copy_from_slice(app);
    fill(&mut out[RECORD_HEADER_BYTES + app.len()..body_end]);
    out[body_end..].fill(0);
    let crc = record_crc(&out[..body_end]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes the marker that closes a commit of `records` records starting
/// at `first_seq` into `out` ([`MARKER_BYTES`] long). `overlap_records`
/// says how many records before `first_seq` were in commits still in
/// flight (written, not yet known durable) when this commit was submitted
/// (0: none, as in every journal written before commits overlapped). It
/// sits in the receive-time field, which a marker has no other use for,
/// under the record CRC like every other field.
pub fn encode_marker(out: &mut [u8], lap: u64, first_seq: u64, records: u32, overlap_records: u64) {
    let meta = RecordMeta {
        recv_ms: overlap_records as i64,
        event_count: records,
        ..RecordMeta::default()
    };
    encode_record(out, RecordKind::Marker, 0, lap, first_seq, &meta, &[]);
}

/// The overlap a marker records (see [`encode_marker`]).
pub fn marker_overlap_records(marker: &RecordHeader) -> u64 {
    debug_assert_eq!(marker.kind, RecordKind::Marker);
    marker.recv_ms as u64
}

/// CRC32C over a record's bytes with its CRC field (bytes 12..16) skipped.
fn record_crc(record: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&record[0..12]);
    crc32c::crc32c_append(crc, &record[16..])
}

/// Decodes the header at the start of `bytes` without checking the CRC
/// (the caller may not have the whole record yet). Fails on anything that
/// cannot be a record header.
pub fn peek_record_header(bytes: &[u8]) -> Result<RecordHeader, FormatError> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Err(FormatError::Short);
    }
    if read_u32(bytes, 0) != RECORD_MAGIC {
        return Err(FormatError::BadMagic);
    }
    let kind = match bytes[4] {
        1 => RecordKind::Events,
        2 => RecordKind::Marker,
        other => return Err(FormatError::BadKind(other)),
    };
    let mut id_base = [0u8; 12];
    id_base.copy_from_slice(&bytes[48..60]);
    Ok(RecordHeader {
        kind,
        flags: bytes[5],
        app_len: u16::from_le_bytes([bytes[6], bytes[7]]),
        payload_len: read_u32(bytes, 8),
        lap: read_u64(bytes, 16),
        seq: read_u64(bytes, 24),
        recv_ms: read_u64(bytes, 32) as i64,
        clock_offset_ms: read_u64(bytes, 40) as i64,
        id_base,
        count: read_u32(bytes, 60),
    })
}

/// Checks the CRC of a whole record (`bytes` holds at least
/// `header.record_bytes()` bytes starting at the header).
pub fn verify_record(bytes: &[u8], header: &RecordHeader) -> Result<(), FormatError> {
    let len = header.record_bytes();
    if bytes.len() < len {
        return Err(FormatError::Short);
    }
    if record_crc(&bytes[..len]) != read_u32(bytes, 12) {
        return Err(FormatError::BadChecksum);
    }
    Ok(())
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecordMeta<'static> {
        RecordMeta {
            recv_ms: 1_764_000_000_123,
            clock_offset_ms: -250,
            id_base: [7; 12],
            event_count: 3,
            app: "billing",
        }
    }

    #[test]
    fn segment_header_round_trips() {
        let mut block = vec![0u8; BLOCK_BYTES];
        let h = SegmentHeader {
            lap: 42,
            segment_size_bytes: 1 << 20,
        };
        h.encode(&mut block);
        assert_eq!(SegmentHeader::decode(&block), Ok(h));
    }

    #[test]
    fn segment_header_with_flipped_bit_is_rejected() {
        let mut block = vec![0u8; BLOCK_BYTES];
        SegmentHeader {
            lap: 1,
            segment_size_bytes: 1 << 20,
        }
        .encode(&mut block);
        for i in 0..SEGMENT_HEADER_BYTES {
            let mut b = block.clone();
            b[i] ^= 0x10;
            assert!(SegmentHeader::decode(&b).is_err(), "byte {i}");
        }
    }

    #[test]
    fn record_round_trips_with_crc() {
        let payload = b"{\"type\":\"x\"}";
        let n = padded_record_bytes(7, payload.len());
        let mut out = vec![0xffu8; n];
        encode_record(
            &mut out,
            RecordKind::Events,
            FLAG_COMMIT_START,
            3,
            99,
            &meta(),
            payload,
        );
        let h = peek_record_header(&out).unwrap();
        assert_eq!(h.kind, RecordKind::Events);
        assert_eq!(h.flags, FLAG_COMMIT_START);
        assert_eq!((h.lap, h.seq, h.count), (3, 99, 3));
        assert_eq!((h.recv_ms, h.clock_offset_ms), (1_764_000_000_123, -250));
        assert_eq!(h.id_base, [7; 12]);
        verify_record(&out, &h).unwrap();
        let body = &out[RECORD_HEADER_BYTES..h.record_bytes()];
        assert_eq!(&body[..7], b"billing");
        assert_eq!(&body[7..], payload);
        assert!(
            out[h.record_bytes()..].iter().all(|&b| b == 0),
            "padding is zeroed"
        );
    }

    #[test]
    fn any_flipped_byte_of_a_record_fails_its_check() {
        let payload = b"0123456789";
        let n = padded_record_bytes(7, payload.len());
        let mut out = vec![0u8; n];
        encode_record(&mut out, RecordKind::Events, 0, 1, 1, &meta(), payload);
        let len = peek_record_header(&out).unwrap().record_bytes();
        for i in 0..len {
            let mut b = out.clone();
            b[i] ^= 0x01;
            let ok = peek_record_header(&b)
                .and_then(|h| verify_record(&b, &h).map(|_| h))
                .is_ok();
            assert!(!ok, "flip at {i} went unnoticed");
        }
    }
}
