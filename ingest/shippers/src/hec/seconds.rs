//! HEC's `time`: epoch seconds with an optional fraction, as a JSON number
//! or a numeric string, turned into whole epoch milliseconds exactly from
//! the decimal digits. A float would turn `1433188255.5009` into
//! `1433188255.5008998…` and some times into the millisecond below; the
//! digits never do.

/// The earliest time Helios takes (`0001-01-01T00:00:00Z`, the first
/// instant RFC 3339 can write), in epoch ms.
pub(super) const MIN_MS: i64 = -62_135_596_800_000;
/// The latest (`9999-12-31T23:59:59.999Z`), in epoch ms.
pub(super) const MAX_MS: i64 = 253_402_300_799_999;
/// Most digits an exponent may have: anything longer is out of range for
/// a nonzero mantissa anyway, and bounding it keeps the arithmetic in i64.
const MAX_EXPONENT_DIGITS: usize = 6;

/// `text` (a JSON number's grammar: optional `-`, integer digits, optional
/// `.` fraction, optional exponent) as epoch seconds, converted to epoch
/// milliseconds, rounded toward the past (floor: `-0.0005` is `-1`), or
/// `None` when it is not such a number or falls outside
/// [`MIN_MS`]`..=`[`MAX_MS`].
pub(super) fn seconds_to_ms(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text.as_bytes()),
    };
    let (integer, rest) = split_digits(rest);
    if integer.is_empty() {
        return None;
    }
    let (fraction, rest) = match rest.split_first() {
        Some((b'.', after)) => match split_digits(after) {
            ([], _) => return None,
            found => found,
        },
        _ => (&[][..], rest),
    };
    let exponent = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', after)) => parse_exponent(after)?,
        Some(_) => return None,
    };
    // value = digits × 10^(exponent − fraction digits); ms = value × 1000.
    let fraction_len = i64::try_from(fraction.len()).ok()?;
    let shift = exponent.checked_sub(fraction_len)?.checked_add(3)?;
    let magnitude = scaled_magnitude(integer, fraction, shift, negative)?;
    let ms = if negative { -magnitude } else { magnitude };
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// The leading ASCII digits of `bytes`, and the rest.
fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    bytes.split_at(len)
}

/// `[+-]digits`, all of `bytes`.
fn parse_exponent(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty()
        || digits.len() > MAX_EXPONENT_DIGITS
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let value = digits
        .iter()
        .fold(0_i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if negative { -value } else { value })
}

/// |the integer `integer ++ fraction` × 10^shift|, floored for a positive
/// value and ceiled for a negative one (so that negating it floors), or
/// `None` past the range of times.
fn scaled_magnitude(integer: &[u8], fraction: &[u8], shift: i64, negative: bool) -> Option<i64> {
    // Past this magnitude no time is in range; stopping there keeps every
    // step in i64 however many digits were sent.
    const CEILING: i64 = MAX_MS + 1;
    // Every negative time in range is within the ceiling too.
    const _: () = assert!(-MIN_MS < CEILING);
    let mut digits = integer.iter().chain(fraction).map(|d| i64::from(d - b'0'));
    let total = integer.len() + fraction.len();
    // How many digits count: all of them when shifting left, those before
    // the decimal point of the scaled value when shifting right.
    let dropped = usize::try_from(shift.saturating_neg().max(0)).unwrap_or(usize::MAX);
    let kept = total.saturating_sub(dropped);
    let mut magnitude = 0_i64;
    for digit in digits.by_ref().take(kept) {
        magnitude = magnitude * 10 + digit;
        if magnitude > CEILING {
            return None;
        }
    }
    if shift > 0 && magnitude != 0 {
        for _ in 0..shift {
            magnitude *= 10;
            if magnitude > CEILING {
                return None;
            }
        }
    }
    // What the shift cut off: a nonzero remainder moves a negative time one
    // millisecond further into the past.
    if negative && digits.any(|d| d != 0) {
        magnitude += 1;
    }
    Some(magnitude)
}
