//! UTC milliseconds ↔ RFC 3339 text: the form `ts` and `recv` take in a
//! stored document, and the parser for the times clients send (`ts`,
//! `recv` from relays, `Helios-Sent-At`).
//!
//! Why text and not epoch numbers in `doc`: the document is what people read
//! in the report UI and exports, and an RFC 3339 string is unambiguous there
//! (no guessing seconds vs milliseconds). Why always `Z` and always three
//! fractional digits: the strings then sort lexically in time order and have
//! one fixed width (24 bytes). The numeric columns `ts`/`recv` (SQLite) and
//! BSON dates (MongoDB) carry the same instants for indexing.
//!
//! Hand-written (Howard Hinnant's `civil_from_days` / `days_from_civil`)
//! because a calendar crate would cost more build time than these lines.

/// Earliest instant with a four-digit year: 0000-01-01T00:00:00.000Z.
pub const RFC3339_MIN_MS: i64 = -62_167_219_200_000;
/// Latest instant with a four-digit year: 9999-12-31T23:59:59.999Z.
pub const RFC3339_MAX_MS: i64 = 253_402_300_799_999;

const MS_PER_SECOND: i64 = 1_000;
const SECONDS_PER_DAY: i64 = 86_400;
const MS_PER_DAY: i64 = MS_PER_SECOND * SECONDS_PER_DAY;

/// Formats `ms` (UTC milliseconds since the Unix epoch) as
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, or `None` outside years 0000–9999, which
/// RFC 3339 cannot express.
pub fn format_rfc3339_utc_ms(ms: i64) -> Option<String> {
    let text = rfc3339_utc_ms_ascii(ms)?;
    // Only ASCII digits and separators were written.
    String::from_utf8(text.to_vec()).ok()
}

/// Length of `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_UTC_MS_BYTES: usize = 24;

/// [`format_rfc3339_utc_ms`] as ASCII bytes, without allocating or going
/// through `fmt` (the flusher writes two of these per stored event).
pub fn rfc3339_utc_ms_ascii(ms: i64) -> Option<[u8; RFC3339_UTC_MS_BYTES]> {
    if !(RFC3339_MIN_MS..=RFC3339_MAX_MS).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(MS_PER_DAY);
    let ms_of_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = ms_of_day / (3_600 * MS_PER_SECOND);
    let minute = ms_of_day / (60 * MS_PER_SECOND) % 60;
    let second = ms_of_day / MS_PER_SECOND % 60;
    let milli = ms_of_day % MS_PER_SECOND;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    write_digits(&mut out[0..4], year);
    write_digits(&mut out[5..7], month);
    write_digits(&mut out[8..10], day);
    write_digits(&mut out[11..13], hour);
    write_digits(&mut out[14..16], minute);
    write_digits(&mut out[17..19], second);
    write_digits(&mut out[20..23], milli);
    Some(out)
}

/// Writes `value` (0 ≤ value < 10^len, checked by the callers' ranges)
/// as exactly `out.len()` decimal digits, zero-padded.
fn write_digits(out: &mut [u8], mut value: i64) {
    debug_assert!(value >= 0);
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    debug_assert_eq!(value, 0, "value wider than its field");
}

/// Parses a strict RFC 3339 `date-time` into UTC milliseconds since the Unix
/// epoch: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
///
/// - `T`/`t` and `Z`/`z` are both accepted (RFC 3339 §5.6 is
///   case-insensitive); a space instead of `T` is not (the RFC only *allows*
///   applications to use one, and accepting it would invite `"2026-11-30
///   17:54"`-style near misses).
/// - The fraction may have any number of digits (at least one); it is
///   truncated, not rounded, to milliseconds, so a time never moves into the
///   next second (or day) by parsing.
/// - Seconds `60` (a leap second) are accepted at any minute and clamped to
///   `59.999`: the instant stays inside the minute the sender meant, and
///   ordering within that minute is kept. We do not check the leap-second
///   table (it changes, and a wrong rejection costs more than a clamped ms).
/// - Month/day ranges are checked, leap years included (no `02-30`); hours
///   `00`–`23` (no `24:00`), minutes `00`–`59`. Offsets `±HH:MM` with hours
///   `00`–`23`; `-00:00` ("offset unknown") is taken as UTC.
/// - The result, offset applied, must lie in
///   [`RFC3339_MIN_MS`]`..=`[`RFC3339_MAX_MS`], so whatever this accepts
///   [`format_rfc3339_utc_ms`] can write back.
///
/// Anything else (missing zone, trailing bytes, signs, non-ASCII digits)
/// gives `None`. Never panics: every index is checked.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    cursor.expect_either(b'T', b't')?;
    let hour = cursor.digits(2)?;
    cursor.expect(b':')?;
    let minute = cursor.digits(2)?;
    cursor.expect(b':')?;
    let second = cursor.digits(2)?;
    let fraction_ms = cursor.fraction_ms()?;
    let offset_minutes = cursor.zone_offset_minutes()?;
    if cursor.at != cursor.bytes.len() {
        return None;
    }

    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > MAX_HOUR || minute > MAX_MINUTE || second > LEAP_SECOND {
        return None;
    }
    // Leap second: clamp to the last millisecond of the minute (see above).
    let (second, fraction_ms) = if second == LEAP_SECOND {
        (LEAP_SECOND - 1, MS_PER_SECOND - 1)
    } else {
        (second, fraction_ms)
    };

    let days = days_from_civil(year, month, day);
    let local_ms =
        days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * MS_PER_SECOND + fraction_ms;
    // Local time = UTC + offset, so UTC = local − offset.
    let utc_ms = local_ms - offset_minutes * 60 * MS_PER_SECOND;
    (RFC3339_MIN_MS..=RFC3339_MAX_MS)
        .contains(&utc_ms)
        .then_some(utc_ms)
}

const MAX_HOUR: i64 = 23;
const MAX_MINUTE: i64 = 59;
/// RFC 3339 allows second 60 for a leap second.
const LEAP_SECOND: i64 = 60;
/// Fraction digits that carry milliseconds; later ones are truncated.
const MS_FRACTION_DIGITS: u32 = 3;

/// A bounds-checked reader over the ASCII bytes of a timestamp.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        self.expect_either(wanted, wanted)
    }

    fn expect_either(&mut self, a: u8, b: u8) -> Option<()> {
        let byte = self.peek()?;
        if byte == a || byte == b {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let mut value = 0i64;
        for _ in 0..count {
            let byte = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + i64::from(byte - b'0');
            self.at += 1;
        }
        Some(value)
    }

    /// `.d+` if present, truncated to milliseconds; 0 if absent.
    fn fraction_ms(&mut self) -> Option<i64> {
        if self.peek() != Some(b'.') {
            return Some(0);
        }
        self.at += 1;
        let start = self.at;
        let mut ms = 0i64;
        while let Some(byte) = self.peek().filter(u8::is_ascii_digit) {
            let position = self.at - start;
            if position < MS_FRACTION_DIGITS as usize {
                ms = ms * 10 + i64::from(byte - b'0');
            }
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 {
            return None;
        }
        // Fewer than three digits: ".5" is 500 ms.
        let missing = MS_FRACTION_DIGITS.saturating_sub(digits as u32);
        Some(ms * 10i64.pow(missing))
    }

    /// `Z`/`z` → 0, `±HH:MM` → signed minutes east of UTC.
    fn zone_offset_minutes(&mut self) -> Option<i64> {
        let sign = match self.peek()? {
            b'Z' | b'z' => {
                self.at += 1;
                return Some(0);
            }
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.at += 1;
        let hours = self.digits(2)?;
        self.expect(b':')?;
        let minutes = self.digits(2)?;
        if hours > MAX_HOUR || minutes > MAX_MINUTE {
            return None;
        }
        Some(sign * (hours * 60 + minutes))
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Day count since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_days`]); `month` is 1–12, `day` already range-checked.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March so the leap day is the last day of the year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {

    #[test]
    fn ascii_formatting_matches_the_format_macro_across_the_whole_range() {
        let reference = |ms: i64| {
            let days = ms.div_euclid(MS_PER_DAY);
            let ms_of_day = ms.rem_euclid(MS_PER_DAY);
            let (year, month, day) = civil_from_days(days);
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                ms_of_day / 3_600_000,
                ms_of_day / 60_000 % 60,
                ms_of_day / 1_000 % 60,
                ms_of_day % 1_000
            )
        };
        let span = RFC3339_MAX_MS - RFC3339_MIN_MS;
        let mut samples = vec![RFC3339_MIN_MS, RFC3339_MAX_MS, 0, -1, 1, 951_782_400_000];
        // A spread over every year of the range, odd offsets so every
        // field takes many values.
        samples.extend((0..20_000i64).map(|i| RFC3339_MIN_MS + span / 20_000 * i + i * 7_777_777));
        for ms in samples
            .into_iter()
            .filter(|ms| (RFC3339_MIN_MS..=RFC3339_MAX_MS).contains(ms))
        {
            assert_eq!(
                format_rfc3339_utc_ms(ms).as_deref(),
                Some(reference(ms).as_str()),
                "{ms}"
            );
        }
        assert_eq!(rfc3339_utc_ms_ascii(RFC3339_MAX_MS + 1), None);
        assert_eq!(rfc3339_utc_ms_ascii(RFC3339_MIN_MS - 1), None);
    }

    use super::*;

    #[test]
    fn epoch_and_known_instants_format_with_milliseconds_and_z() {
        assert_eq!(
            format_rfc3339_utc_ms(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        // 2026-11-30T19:21:43.123Z
        assert_eq!(
            format_rfc3339_utc_ms(1_796_066_503_123).as_deref(),
            Some("2026-11-30T19:21:43.123Z")
        );
        // A leap day.
        assert_eq!(
            format_rfc3339_utc_ms(951_782_400_000).as_deref(),
            Some("2000-02-29T00:00:00.000Z")
        );
    }

    #[test]
    fn instants_before_the_epoch_count_backwards() {
        assert_eq!(
            format_rfc3339_utc_ms(-1).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
    }

    #[test]
    fn four_digit_year_bounds_are_inclusive_and_beyond_is_none() {
        assert_eq!(
            format_rfc3339_utc_ms(RFC3339_MIN_MS).as_deref(),
            Some("0000-01-01T00:00:00.000Z")
        );
        assert_eq!(
            format_rfc3339_utc_ms(RFC3339_MAX_MS).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(format_rfc3339_utc_ms(RFC3339_MIN_MS - 1), None);
        assert_eq!(format_rfc3339_utc_ms(RFC3339_MAX_MS + 1), None);
        assert_eq!(format_rfc3339_utc_ms(i64::MIN), None);
        assert_eq!(format_rfc3339_utc_ms(i64::MAX), None);
    }
    /// Deterministic xorshift so the fuzz-style tests need no rand crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn parse_reads_utc_times_with_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-11-30T19:21:43.123Z"),
            Some(1_796_066_503_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn parse_accepts_lowercase_t_and_z() {
        assert_eq!(parse_rfc3339_ms("1970-01-01t00:00:01z"), Some(1_000));
    }

    #[test]
    fn parse_round_trips_format_across_the_whole_range() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let span = (RFC3339_MAX_MS - RFC3339_MIN_MS) as u64;
        let mut samples = vec![RFC3339_MIN_MS, RFC3339_MAX_MS, 0, -1, 951_782_400_000];
        samples.extend((0..20_000).map(|_| RFC3339_MIN_MS + (rng.next() % span) as i64));
        for ms in samples {
            let text = format_rfc3339_utc_ms(ms).expect("in range");
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn parse_truncates_fractions_to_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.05Z"), Some(50));
        assert_eq!(
            parse_rfc3339_ms("1970-01-01T00:00:00.9999999999Z"),
            Some(999)
        );
        assert_eq!(
            parse_rfc3339_ms("1970-01-01T00:00:00.123456789Z"),
            Some(123)
        );
    }

    #[test]
    fn parse_applies_offsets_east_and_west() {
        // 02:00 at +02:00 is midnight UTC; 19:00 at -05:00 is midnight too.
        assert_eq!(parse_rfc3339_ms("1970-01-01T02:00:00+02:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1969-12-31T19:00:00-05:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T05:30:00.250+05:30"), Some(250));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00-00:00"), Some(0));
    }

    #[test]
    fn parse_clamps_a_leap_second_to_the_end_of_its_minute() {
        assert_eq!(
            parse_rfc3339_ms("2016-12-31T23:59:60Z"),
            parse_rfc3339_ms("2016-12-31T23:59:59.999Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2016-12-31T23:59:60.5Z"),
            parse_rfc3339_ms("2016-12-31T23:59:59.999Z")
        );
    }

    #[test]
    fn parse_rejects_impossible_dates_and_times() {
        for text in [
            "2026-02-30T00:00:00Z",
            "2026-02-29T00:00:00Z", // not a leap year
            "1900-02-29T00:00:00Z", // century, not a leap year
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2026-01-01T23:59:61Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01:60",
        ] {
            assert_eq!(parse_rfc3339_ms(text), None, "{text}");
        }
        assert!(parse_rfc3339_ms("2000-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for text in [
            "",
            "garbage",
            "2026-11-30T19:21:43",      // no zone
            "2026-11-30 19:21:43Z",     // space separator
            "2026-11-30T19:21:43.Z",    // empty fraction
            "2026-11-30T19:21Z",        // no seconds
            "2026-11-30T19:21:43Z ",    // trailing space
            " 2026-11-30T19:21:43Z",    // leading space
            "2026-11-30T19:21:43+0100", // offset without colon
            "2026-11-30T19:21:43+01",
            "+2026-11-30T19:21:43Z",
            "26-11-30T19:21:43Z",
            "2026-1-30T19:21:43Z",
            "2026-11-30T19:21:43ZZ",
            "２０２６-11-30T19:21:43Z", // non-ASCII digits
            "1796066503123",
        ] {
            assert_eq!(parse_rfc3339_ms(text), None, "{text:?}");
        }
    }

    #[test]
    fn parse_rejects_instants_outside_four_digit_years_after_the_offset() {
        assert_eq!(parse_rfc3339_ms("0000-01-01T00:00:00+00:01"), None);
        assert_eq!(parse_rfc3339_ms("9999-12-31T23:59:59.999-00:01"), None);
        assert_eq!(
            parse_rfc3339_ms("0000-01-01T00:00:00Z"),
            Some(RFC3339_MIN_MS)
        );
    }

    #[test]
    fn parse_never_panics_on_truncated_or_mutated_input() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let seeds = [
            "2026-11-30T19:21:43.123456+05:30",
            "2000-02-29T23:59:60.999Z",
            "0000-01-01T00:00:00Z",
        ];
        let alphabet = b"0123456789-:.TZtz+- \xff";
        for seed in seeds {
            // No proper prefix of these seeds is a complete date-time.
            for cut in 0..seed.len() {
                let prefix = seed.get(..cut).expect("ASCII seed");
                assert_eq!(parse_rfc3339_ms(prefix), None, "{prefix:?}");
            }
            assert!(parse_rfc3339_ms(seed).is_some(), "{seed}");
            for _ in 0..20_000 {
                let mut bytes = seed.as_bytes().to_vec();
                let flips = 1 + rng.next() % 3;
                for _ in 0..flips {
                    let at = (rng.next() % bytes.len() as u64) as usize;
                    bytes[at] = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                }
                let text = String::from_utf8_lossy(&bytes);
                if let Some(ms) = parse_rfc3339_ms(&text) {
                    assert!((RFC3339_MIN_MS..=RFC3339_MAX_MS).contains(&ms), "{text}");
                }
            }
        }
        for _ in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            assert_eq!(parse_rfc3339_ms(&text), None, "{text:?}");
        }
    }
}
