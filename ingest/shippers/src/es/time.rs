//! `@timestamp` to epoch milliseconds, the way Elasticsearch's default date
//! format (`strict_date_optional_time||epoch_millis`) reads it: an ISO 8601
//! / RFC 3339 date or date-time string, or an integer of epoch ms.

use serde_json::value::RawValue;

/// Earliest time Helios stores (`0000-01-01T00:00:00Z`), epoch ms: the
/// collector refuses a `ts` outside RFC 3339's years, so such a time is
/// left out (receive time) rather than turning a good event into a reject.
const TS_MIN_MS: i64 = -62_167_219_200_000;
/// Latest time Helios stores (`9999-12-31T23:59:59.999Z`), epoch ms.
const TS_MAX_MS: i64 = 253_402_300_799_999;

const MS_PER_DAY: i64 = 86_400_000;

/// The epoch ms of a `@timestamp` value as sent (raw JSON): a string date
/// or date-time, or an integer of epoch ms; `None` for anything else
/// (floats, objects, text that is no date, times outside years 0–9999).
pub(super) fn timestamp_ms(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    let ms = if text.starts_with('"') {
        // A date has no escapes worth decoding: one makes it unparseable.
        date_time_ms(text.strip_prefix('"')?.strip_suffix('"')?)?
    } else {
        epoch_ms(text)?
    };
    (TS_MIN_MS..=TS_MAX_MS).contains(&ms).then_some(ms)
}

/// An integer JSON number (no fraction, no exponent) as i64.
fn epoch_ms(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `YYYY-MM-DD[(T|t| )HH[:MM[:SS[(.|,)fraction]]][zone]]`, zone `Z`, `z`,
/// `±HH`, `±HHMM` or `±HH:MM`; no zone means UTC. Fraction digits past
/// the millisecond are dropped (truncated, as Helios's own `ts` parsing).
fn date_time_ms(text: &str) -> Option<i64> {
    let mut cursor = Cursor(text.as_bytes());
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    if cursor.is_empty() {
        return Some(ms);
    }
    if !matches!(cursor.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = cursor.digits(2)?;
    let (mut minute, mut second, mut millis) = (0, 0, 0);
    if cursor.peek() == Some(b':') {
        cursor.next();
        minute = cursor.digits(2)?;
        if cursor.peek() == Some(b':') {
            cursor.next();
            second = cursor.digits(2)?;
            if matches!(cursor.peek(), Some(b'.' | b',')) {
                cursor.next();
                millis = cursor.fraction_ms()?;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    ms -= cursor.zone_offset_ms()?;
    cursor.is_empty().then_some(ms)
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let head = self.0.get(..count)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[count..];
        Some(head.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    /// One or more digits of a decimal fraction of a second, as whole ms.
    fn fraction_ms(&mut self) -> Option<i64> {
        let count = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        let mut ms = 0;
        for place in 0..3 {
            let digit = self.0.get(place).filter(|_| place < count);
            ms = ms * 10 + digit.map_or(0, |d| i64::from(d - b'0'));
        }
        self.0 = &self.0[count..];
        Some(ms)
    }

    /// The zone at the end (none: UTC), as the ms to subtract.
    fn zone_offset_ms(&mut self) -> Option<i64> {
        let sign = match self.peek() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.next();
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.next();
        let hours = self.digits(2)?;
        let minutes = match self.peek() {
            None => 0,
            Some(b':') => {
                self.next();
                self.digits(2)?
            }
            Some(_) => self.digits(2)?,
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 60 + minutes) * 60_000)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (years 0–9999):
/// whole years as 365 days plus the leap days before them, then the days
/// of the months before `month`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Leap days in the years [0, year): every 4th, less every 100th, plus
    // every 400th; year 0 is a leap year, hence the +1 for year > 0.
    let leap_days = |y: i64| {
        if y <= 0 {
            0
        } else {
            (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400 + 1
        }
    };
    let days_before_year = 365 * year + leap_days(year);
    let days_before_month: i64 = (1..month).map(|m| days_in_month(year, m)).sum();
    // 1970-01-01 is day 719_528 counted from 0000-01-01.
    days_before_year + days_before_month + day - 1 - 719_528
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(json: &str) -> Option<i64> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        timestamp_ms(&raw)
    }

    #[test]
    fn rfc3339_with_zone_and_fraction_is_exact_to_the_millisecond() {
        assert_eq!(ts(r#""2025-12-07T11:15:00.123Z""#), Some(1_765_106_100_123));
        assert_eq!(
            ts(r#""2025-12-07T11:15:00.123456789Z""#),
            Some(1_765_106_100_123)
        );
        assert_eq!(
            ts(r#""2025-12-07T12:15:00.1+01:00""#),
            Some(1_765_106_100_100)
        );
        assert_eq!(ts(r#""2025-12-07T06:15:00-0500""#), Some(1_765_106_100_000));
        assert_eq!(ts(r#""2025-12-07t11:15:00,5z""#), Some(1_765_106_100_500));
    }

    #[test]
    fn a_time_without_zone_is_utc_and_seconds_or_minutes_may_be_left_out() {
        assert_eq!(ts(r#""2025-12-07T11:15:00""#), Some(1_765_106_100_000));
        assert_eq!(ts(r#""2025-12-07 11:15""#), Some(1_765_106_100_000));
        assert_eq!(ts(r#""2025-12-07T11""#), Some(1_765_105_200_000));
        assert_eq!(ts(r#""2025-12-07""#), Some(1_765_065_600_000));
    }

    #[test]
    fn calendar_edges_are_right() {
        assert_eq!(ts(r#""1970-01-01T00:00:00Z""#), Some(0));
        assert_eq!(ts(r#""2000-02-29T00:00:00Z""#), Some(951_782_400_000));
        assert_eq!(ts(r#""1969-12-31T23:59:59.999Z""#), Some(-1));
        assert_eq!(ts(r#""0000-01-01T00:00:00Z""#), Some(TS_MIN_MS));
        assert_eq!(ts(r#""9999-12-31T23:59:59.999Z""#), Some(TS_MAX_MS));
        assert_eq!(ts(r#""1900-02-29""#), None);
        assert_eq!(ts(r#""2023-02-29""#), None);
        assert_eq!(ts(r#""2024-04-31""#), None);
    }

    #[test]
    fn integer_epoch_milliseconds_are_taken_as_they_are() {
        assert_eq!(ts("1765106100123"), Some(1_765_106_100_123));
        assert_eq!(ts("-1"), Some(-1));
        assert_eq!(ts("0"), Some(0));
    }

    #[test]
    fn anything_else_gives_no_time() {
        for json in [
            "1765106100123.5",
            "1.7e12",
            "99999999999999999999",
            "253402300800000",
            "true",
            "null",
            "{}",
            r#""yesterday""#,
            r#""1765106100123""#,
            r#""2025-12-07T24:00:00Z""#,
            r#""2025-12-07T11:60""#,
            r#""2025-12-07T11:15:00.Z""#,
            r#""2025-12-07T11:15:00+24:00""#,
            r#""2025-12-07T11:15:00 extra""#,
            r#""2025-13-01""#,
            r#""2025-1-01""#,
            r#""0000-01-01T00:00:00+01:00""#,
            r#""2025-12-07\u0054""#,
            r#""""#,
        ] {
            assert_eq!(ts(json), None, "{json}");
        }
    }
}
