//! Content-Encoding: gzip and zstd, bounded so a small body cannot expand
//! past `max_decoded_bytes` (a gzip or zstd bomb gets 413, not our memory).
//!
//! zstd (RFC 8878) has a second bound: each frame names the window its
//! decoder must keep, up to 3.75 TiB, and a decoder allocates it before the
//! first byte comes out. We refuse frames asking more than 8 MiB, the limit
//! RFC 9659 sets for HTTP (`Content-Encoding: zstd` senders must stay within
//! it: libzstd levels 1-19 without long-distance matching do).
//!
//! There is no compression-ratio cap. The decoded-size limit already bounds
//! memory (the limit plus one chunk) and CPU (libzstd writes a 32 MiB bomb in
//! milliseconds; BENCHMARKS.md), while honest batches are highly repetitive:
//! the reference batch compresses more than 100:1, so a ratio cap low enough
//! to matter would refuse real clients.

use std::cell::RefCell;
use std::io::Read;

use zstd::zstd_safe::{self, zstd_sys::ZSTD_ErrorCode, DCtx, DParameter, InBuffer, OutBuffer};

/// Read granularity while inflating (the most `out` grows by at once).
const INFLATE_CHUNK_BYTES: usize = 64 << 10;

/// The smallest first growth of a body's output: a few events.
const INFLATE_FIRST_CHUNK_BYTES: usize = 4 << 10;

/// Bytes of a gzip member's trailer that hold its decoded size mod 2^32
/// (ISIZE, RFC 1952 §2.3.1).
const GZIP_ISIZE_BYTES: usize = 4;

/// Largest zstd window accepted, as a power of two: 2^23 = 8 MiB (RFC 9659
/// §3: HTTP decoders need not support more, encoders must not use more).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// libzstd's error for a frame whose window exceeds `WindowLogMax` (its
/// errors are the negated enum values, `ERROR(e)` in zstd's C sources).
const ZSTD_WINDOW_TOO_LARGE: zstd_safe::ErrorCode =
    (ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge as usize).wrapping_neg();

/// Why a gzip body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunzipError {
    /// More than the limit once decoded.
    TooLarge,
    /// Not gzip, or damaged.
    Corrupt,
}

/// Inflates `input` into `out` (cleared first), at most `max_bytes`.
///
/// A body may be several gzip members back to back (RFC 1952 §2.2): their
/// contents are concatenated.
pub fn gunzip_limited(
    input: &[u8],
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), GunzipError> {
    out.clear();
    // The `bufread` decoder reads the body slice in place: the `read` one
    // would copy it through a 32 KiB buffer allocated per request. Building
    // the decoder per request costs nothing measurable beside inflating
    // (reusing one per core was tried: criterion saw no difference).
    let mut decoder = flate2::bufread::MultiGzDecoder::new(input);
    let mut filled = 0;
    // The last member's trailer states its size: a hint, never trusted
    // beyond sizing the first growth.
    let stated = input
        .last_chunk::<GZIP_ISIZE_BYTES>()
        .map(|isize| u32::from_le_bytes(*isize) as usize);
    let mut chunk = first_chunk(stated);
    loop {
        if filled > max_bytes {
            out.truncate(filled);
            return Err(GunzipError::TooLarge);
        }
        match decoder.read(room(out, filled, &mut chunk)) {
            Ok(0) => {
                out.truncate(filled);
                return Ok(());
            }
            Ok(n) => filled += n,
            Err(_) => {
                out.truncate(filled);
                return Err(GunzipError::Corrupt);
            }
        }
    }
}

/// The zeroed room after the `filled` bytes of `out` for the next read:
/// what is left of the last growth, else `chunk` more bytes (then the next
/// growth doubles, up to [`INFLATE_CHUNK_BYTES`]). The decoders' APIs write
/// into initialized memory; growing from a small first chunk makes a
/// one-event body zero a few KiB, not a 64 KiB chunk per read (that zeroing
/// was a third of a gzip event's decode time and about half a zstd one's,
/// measured), and each byte is zeroed once.
fn room<'a>(out: &'a mut Vec<u8>, filled: usize, chunk: &mut usize) -> &'a mut [u8] {
    debug_assert!(filled <= out.len());
    if out.len() == filled {
        out.resize(filled + *chunk, 0);
        *chunk = (*chunk * 2).min(INFLATE_CHUNK_BYTES);
    }
    &mut out[filled..]
}

/// The first growth of a body's output: the size the body states plus
/// the byte a decoder needs free to report its end, within
/// [`INFLATE_FIRST_CHUNK_BYTES`]..=[`INFLATE_CHUNK_BYTES`].
fn first_chunk(stated_bytes: Option<usize>) -> usize {
    stated_bytes
        .map_or(INFLATE_FIRST_CHUNK_BYTES, |n| n.saturating_add(1))
        .clamp(INFLATE_FIRST_CHUNK_BYTES, INFLATE_CHUNK_BYTES)
}

/// Why a zstd body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnzstdError {
    /// More than the limit once decoded.
    TooLarge,
    /// A frame needs a window larger than [`ZSTD_WINDOW_LOG_MAX`] allows.
    WindowTooLarge,
    /// Not zstd, damaged, truncated, or needing a dictionary.
    Corrupt,
}

thread_local! {
    /// One decompression context per thread, i.e. per core: creating one
    /// allocates its tables (about 160 KiB) and, at the first frame, its
    /// window; reusing it makes a one-event body cost what its bytes cost.
    /// It keeps at most an 8 MiB window per core between requests.
    static ZSTD_DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// A decompression context that refuses windows over 8 MiB.
fn new_dctx() -> Result<DCtx<'static>, UnzstdError> {
    let mut dctx = DCtx::create();
    dctx.set_parameter(DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX))
        .map_err(|_| UnzstdError::Corrupt)?;
    Ok(dctx)
}

/// Decodes the zstd body `input` into `out` (cleared first), at most
/// `max_bytes`.
///
/// As RFC 8878 §3 allows, a body may be several frames back to back (their
/// contents are concatenated) and may hold skippable frames (ignored).
/// Frames that need a dictionary are refused as corrupt: HTTP has no way to
/// agree on one. An empty body is not zstd (a frame is at least 6 bytes).
pub fn unzstd_limited(
    input: &[u8],
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), UnzstdError> {
    out.clear();
    if input.is_empty() {
        return Err(UnzstdError::Corrupt);
    }
    ZSTD_DCTX.with(|slot| {
        let mut slot = slot.borrow_mut();
        let dctx = match &mut *slot {
            Some(dctx) => dctx,
            none => none.insert(new_dctx()?),
        };
        // The previous body may have stopped mid-frame (refused or bad):
        // start clean. The parameters (the window cap) are kept.
        dctx.reset(zstd_safe::ResetDirective::SessionOnly)
            .map_err(|_| UnzstdError::Corrupt)?;
        let mut src = InBuffer::around(input);
        let mut filled = 0;
        // The first frame's header may state its size: a hint, never
        // trusted beyond sizing the first growth.
        let stated = zstd_safe::get_frame_content_size(input)
            .ok()
            .flatten()
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut chunk = first_chunk(stated);
        loop {
            if filled > max_bytes {
                out.truncate(filled);
                return Err(UnzstdError::TooLarge);
            }
            let read_before = src.pos();
            let mut dst = OutBuffer::around(room(out, filled, &mut chunk));
            let result = dctx.decompress_stream(&mut dst, &mut src);
            let written = dst.pos();
            filled += written;
            let outcome = match result {
                Err(ZSTD_WINDOW_TOO_LARGE) => Err(UnzstdError::WindowTooLarge),
                Err(_) => Err(UnzstdError::Corrupt),
                // 0: a frame ended and all of it is in `out`; with no input
                // left, that was the last frame.
                Ok(0) if src.pos() == input.len() => Ok(()),
                // The input ran out inside a frame (a truncated body), or
                // nothing moved at all: never loop on it.
                Ok(_) if written == 0 && src.pos() == read_before => Err(UnzstdError::Corrupt),
                Ok(_) => continue,
            };
            out.truncate(filled);
            return outcome;
        }
    })
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
    fn gzip_members_back_to_back_are_one_body() {
        let mut body = gzip(b"{\"n\":1}\n");
        body.extend(gzip(b"{\"n\":2}\n"));
        body.extend(gzip(b""));
        body.extend(gzip(b"{\"n\":3}\n"));
        let mut out = Vec::new();
        gunzip_limited(&body, 1000, &mut out).unwrap();
        assert_eq!(out, b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    }

    #[test]
    fn an_empty_truncated_or_trailing_garbage_gzip_body_is_corrupt() {
        let whole = gzip(b"{\"type\":\"x\"}");
        let mut trailing = whole.clone();
        trailing.extend_from_slice(b"junk");
        let mut out = Vec::new();
        for (name, body) in [
            ("empty", &[][..]),
            ("truncated", &whole[..whole.len() - 3]),
            ("trailing garbage", &trailing[..]),
        ] {
            assert_eq!(
                gunzip_limited(body, 1000, &mut out),
                Err(GunzipError::Corrupt),
                "{name}"
            );
        }
    }

    #[test]
    fn a_body_after_a_refused_one_decodes_from_a_clean_state() {
        let whole = gzip(b"{\"type\":\"x\"}");
        let bomb = gzip(&vec![b' '; 4 << 20]);
        let mut out = Vec::new();
        for refused in [&whole[..whole.len() / 2], &bomb[..]] {
            assert!(gunzip_limited(refused, 1 << 20, &mut out).is_err());
            gunzip_limited(&whole, 1000, &mut out).unwrap();
            assert_eq!(out, b"{\"type\":\"x\"}");
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut out = Vec::new();
        assert_eq!(
            gunzip_limited(b"not gzip at all", 1000, &mut out),
            Err(GunzipError::Corrupt)
        );
    }

    fn zstd(data: &[u8], level: i32) -> Vec<u8> {
        zstd::bulk::compress(data, level).unwrap()
    }

    #[test]
    fn zstd_round_trips_at_every_level_the_http_limit_allows() {
        let body: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"type\":\"x\",\"n\":{i}}}\n").into_bytes())
            .collect();
        for level in 1..=19 {
            let mut out = Vec::new();
            unzstd_limited(&zstd(&body, level), 1 << 20, &mut out).unwrap();
            assert_eq!(out, body, "level {level}");
        }
    }

    #[test]
    fn a_zstd_bomb_stops_at_the_limit() {
        let bomb = zstd(&vec![b' '; 64 << 20], 3);
        assert!(bomb.len() < 8 << 10, "{} bytes", bomb.len());
        let mut out = Vec::new();
        assert_eq!(
            unzstd_limited(&bomb, 1 << 20, &mut out),
            Err(UnzstdError::TooLarge)
        );
        assert!(out.len() <= (1 << 20) + INFLATE_CHUNK_BYTES);
        // The same body exactly at the limit passes.
        let fits = zstd(&vec![b' '; 1 << 20], 3);
        unzstd_limited(&fits, 1 << 20, &mut out).unwrap();
        assert_eq!(out.len(), 1 << 20);
    }

    /// A frame made by libzstd with a 16 MiB window (long-distance
    /// matching's window log), its content size left out so the window
    /// cannot shrink to it.
    fn zstd_with_window_log(data: &[u8], window_log: u32) -> Vec<u8> {
        let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        e.include_contentsize(false).unwrap();
        e.window_log(window_log).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_window_over_8_mib_is_refused_and_8_mib_passes() {
        let data = vec![b'a'; 1000];
        let mut out = Vec::new();
        let big = zstd_with_window_log(&data, ZSTD_WINDOW_LOG_MAX + 1);
        assert!(big.len() < 100);
        assert_eq!(
            unzstd_limited(&big, 1 << 20, &mut out),
            Err(UnzstdError::WindowTooLarge)
        );
        // 27 is what `zstd --long` and level 22 ask for.
        let huge = zstd_with_window_log(&data, 27);
        assert_eq!(
            unzstd_limited(&huge, 1 << 20, &mut out),
            Err(UnzstdError::WindowTooLarge)
        );
        let ok = zstd_with_window_log(&data, ZSTD_WINDOW_LOG_MAX);
        unzstd_limited(&ok, 1 << 20, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn corrupt_truncated_and_trailing_garbage_are_refused() {
        let mut out = Vec::new();
        let good = zstd(b"{\"type\":\"x\"}", 3);
        for bad in [
            &b"not zstd at all"[..],
            &b""[..],
            &good[..good.len() - 1],
            &good[..4],
        ] {
            assert_eq!(
                unzstd_limited(bad, 1000, &mut out),
                Err(UnzstdError::Corrupt),
                "{bad:?}"
            );
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(
            unzstd_limited(&trailing, 1000, &mut out),
            Err(UnzstdError::Corrupt)
        );
        // A flipped bit in a frame with a content checksum (the zstd
        // CLI's default; the library's is none, and then damage that still
        // parses is caught only by the JSON validation after us).
        let body: Vec<u8> = (0..2000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(true).unwrap();
        e.write_all(&body).unwrap();
        let mut damaged = e.finish().unwrap();
        unzstd_limited(&damaged, 1 << 20, &mut out).unwrap();
        assert_eq!(out, body);
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x40;
        assert_eq!(
            unzstd_limited(&damaged, 1 << 20, &mut out),
            Err(UnzstdError::Corrupt)
        );
        // The context recovers for the next body.
        unzstd_limited(&good, 1000, &mut out).unwrap();
        assert_eq!(out, b"{\"type\":\"x\"}");
    }

    #[test]
    fn frames_back_to_back_and_skippable_frames_are_one_body() {
        let mut body = zstd(b"{\"type\":\"a\"}\n", 3);
        // A skippable frame (magic 0x184D2A50..5F, little endian, then a
        // 4-byte length): RFC 8878 §3.1.2 says decoders skip it.
        body.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        body.extend_from_slice(&zstd(b"{\"type\":\"b\"}\n", 19));
        body.extend_from_slice(&zstd(b"", 3));
        let mut out = Vec::new();
        unzstd_limited(&body, 1000, &mut out).unwrap();
        assert_eq!(out, b"{\"type\":\"a\"}\n{\"type\":\"b\"}\n");
    }

    #[test]
    fn a_frame_needing_a_dictionary_is_corrupt() {
        let dict = b"{\"type\":\"order.placed\",\"host\":\"web-01\"}".repeat(20);
        let framed = zstd::bulk::Compressor::with_dictionary(3, &dict)
            .unwrap()
            .compress(b"{\"type\":\"order.placed\",\"host\":\"web-01\"}")
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(
            unzstd_limited(&framed, 1000, &mut out),
            Err(UnzstdError::Corrupt)
        );
    }
}
