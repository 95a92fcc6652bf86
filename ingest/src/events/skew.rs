//! The clock-skew rule applied at request time (DESIGN §3 "Clock skew").

use helios_store::{parse_rfc3339_ms, RFC3339_MAX_MS, RFC3339_MIN_MS};

/// Default drift (ms) below which `ts` is left as sent.
pub const DEFAULT_CLOCK_SKEW_THRESHOLD_MS: i64 = 1_000;
/// Longest all-digit header read as epoch ms (more digits are beyond the
/// RFC 3339 years anyway, and this keeps the parse overflow-free).
const EPOCH_MS_MAX_DIGITS: usize = 15;

/// The offset to add to the events' `ts` of a request received at `recv_ms`
/// whose `Helios-Sent-At` header (RFC 3339 or integer epoch ms; surrounding
/// spaces and tabs ignored) is `sent_at`: `recv − sent` when that drift
/// exceeds `threshold_ms` in either direction, else 0.
///
/// 0 too when the header is absent or unparseable: a bad header must not
/// cost the client its events, and without a trustworthy send time there is
/// nothing to correct by.
pub fn clock_offset_ms(recv_ms: i64, sent_at: Option<&[u8]>, threshold_ms: i64) -> i64 {
    let Some(sent_ms) = sent_at.and_then(parse_sent_at_ms) else {
        return 0;
    };
    match recv_ms.checked_sub(sent_ms) {
        Some(offset) if offset.unsigned_abs() > threshold_ms.unsigned_abs() => offset,
        _ => 0,
    }
}

fn parse_sent_at_ms(header: &[u8]) -> Option<i64> {
    let header = header.trim_ascii();
    if !header.is_empty() && header.iter().all(u8::is_ascii_digit) {
        if header.len() > EPOCH_MS_MAX_DIGITS {
            return None;
        }
        let ms = std::str::from_utf8(header).ok()?.parse::<i64>().ok()?;
        return (RFC3339_MIN_MS..=RFC3339_MAX_MS)
            .contains(&ms)
            .then_some(ms);
    }
    parse_rfc3339_ms(std::str::from_utf8(header).ok()?)
}
