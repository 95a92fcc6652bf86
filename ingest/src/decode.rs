//! Content-Encoding: gzip, bounded so a small body cannot expand past
//! `max_decoded_bytes` (a gzip bomb gets 413, not our memory).

use std::io::Read;

/// Read granularity while inflating.
const INFLATE_CHUNK_BYTES: usize = 64 << 10;

/// Why a gzip body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunzipError {
    /// More than the limit once decoded.
    TooLarge,
    /// Not gzip, or damaged.
    Corrupt,
}

/// Inflates `input` into `out` (cleared first), at most `max_bytes`.
pub fn gunzip_limited(
    input: &[u8],
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), GunzipError> {
    out.clear();
    let mut decoder = flate2::read::MultiGzDecoder::new(input);
    loop {
        let len = out.len();
        if len > max_bytes {
            return Err(GunzipError::TooLarge);
        }
        out.resize(len + INFLATE_CHUNK_BYTES, 0);
        match decoder.read(&mut out[len..]) {
            Ok(0) => {
                out.truncate(len);
                return Ok(());
            }
            Ok(n) => out.truncate(len + n),
            Err(_) => {
                out.truncate(len);
                return Err(GunzipError::Corrupt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trips() {
        let mut out = Vec::new();
        gunzip_limited(&gzip(b"{\"type\":\"x\"}"), 1000, &mut out).unwrap();
        assert_eq!(out, b"{\"type\":\"x\"}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 64 << 10);
        let mut out = Vec::new();
        assert_eq!(
            gunzip_limited(&bomb, 1 << 20, &mut out),
            Err(GunzipError::TooLarge)
        );
        assert!(out.len() <= (1 << 20) + INFLATE_CHUNK_BYTES);
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut out = Vec::new();
        assert_eq!(
            gunzip_limited(b"not gzip at all", 1000, &mut out),
            Err(GunzipError::Corrupt)
        );
    }
}
