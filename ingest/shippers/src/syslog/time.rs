//! Syslog timestamps to epoch milliseconds: RFC 5424's RFC 3339 profile
//! (exact, with its zone) and RFC 3164's `Mmm dd hh:mm:ss` (no year, no
//! zone: the year nearest the receive time, in the collector's zone).

/// Earliest `ts` the collector takes: 0000-01-01T00:00:00Z (the store's
/// RFC 3339 range; a `ts` outside it would get the whole event refused).
pub const MIN_TS_MS: i64 = -62_167_219_200_000;
/// Latest `ts` the collector takes: 9999-12-31T23:59:59.999Z.
pub const MAX_TS_MS: i64 = 253_402_300_799_999;

/// Most fraction digits taken after the seconds: RFC 5424 allows 6;
/// senders with nanosecond clocks write 9, and only milliseconds are kept.
const MAX_FRACTION_DIGITS: usize = 9;

const MS_PER_SECOND: i64 = 1000;
const SECONDS_PER_DAY: i64 = 86_400;
/// Days in 400 Gregorian years (the calendar repeats every 400 years).
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 to 1970-01-01.
const DAYS_TO_EPOCH_FROM_ERA_START: i64 = 719_468;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (valid input).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count from March so that the leap day ends the year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - DAYS_TO_EPOCH_FROM_ERA_START
}

/// The year a day (since 1970-01-01) falls in.
fn year_of_day(day: i64) -> i64 {
    // An estimate off by at most one, then corrected.
    let mut year = 1970 + day.div_euclid(365);
    while days_from_civil(year, 1, 1) > day {
        year -= 1;
    }
    while days_from_civil(year + 1, 1, 1) <= day {
        year += 1;
    }
    year
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A time of day, validated (hour 0..=23, minute and second 0..=59:
/// RFC 5424 forbids leap seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeOfDay {
    hour: u32,
    minute: u32,
    second: u32,
}

impl TimeOfDay {
    /// `hh:mm:ss` exactly.
    fn parse(bytes: &[u8]) -> Option<TimeOfDay> {
        let [h1, h2, b':', m1, m2, b':', s1, s2] = *bytes else {
            return None;
        };
        let time = TimeOfDay {
            hour: two_digits(h1, h2)?,
            minute: two_digits(m1, m2)?,
            second: two_digits(s1, s2)?,
        };
        (time.hour <= 23 && time.minute <= 59 && time.second <= 59).then_some(time)
    }

    fn seconds(self) -> i64 {
        i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

fn two_digits(a: u8, b: u8) -> Option<u32> {
    Some(digit(a)? * 10 + digit(b)?)
}

/// Epoch ms of a whole RFC 3339 timestamp as RFC 5424 §6.2.3 profiles it:
/// `YYYY-MM-DDThh:mm:ss[.f]` then `Z` or `±hh:mm`. The fraction (1 to
/// [`MAX_FRACTION_DIGITS`] digits) is truncated to milliseconds, exactly
/// (no float). `T` and `Z` are also taken in lower case (RFC 3339 §5.6).
/// `None` for anything else, an impossible date, or a time outside
/// [`MIN_TS_MS`]..=[`MAX_TS_MS`].
pub fn rfc3339_ms(text: &[u8]) -> Option<i64> {
    if text.len() < "YYYY-MM-DDThh:mm:ssZ".len() {
        return None;
    }
    let (date, rest) = text.split_at(10);
    let [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2] = *date else {
        return None;
    };
    let year = i64::from(two_digits(y1, y2)? * 100 + two_digits(y3, y4)?);
    let month = two_digits(mo1, mo2)?;
    let day = two_digits(d1, d2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let rest = rest
        .strip_prefix(b"T")
        .or_else(|| rest.strip_prefix(b"t"))?;
    let time = TimeOfDay::parse(rest.get(..8)?)?;
    let mut rest = &rest[8..];
    let mut fraction_ms = 0_i64;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let digits = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > MAX_FRACTION_DIGITS {
            return None;
        }
        // The first three digits are the milliseconds, padded on the right.
        fraction_ms = after_dot[..digits]
            .iter()
            .chain(b"00")
            .take(3)
            .fold(0, |acc, &b| acc * 10 + i64::from(b - b'0'));
        rest = &after_dot[digits..];
    }
    let offset_s = zone_offset_seconds(rest)?;
    let local_s = days_from_civil(year, month, day) * SECONDS_PER_DAY + time.seconds();
    let ms = (local_s - offset_s) * MS_PER_SECOND + fraction_ms;
    (MIN_TS_MS..=MAX_TS_MS).contains(&ms).then_some(ms)
}

/// `Z` (0) or `±hh:mm` (seconds east of UTC), and nothing after it.
fn zone_offset_seconds(zone: &[u8]) -> Option<i64> {
    match *zone {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = two_digits(h1, h2)?;
            let minutes = two_digits(m1, m2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            Some(if sign == b'-' { -seconds } else { seconds })
        }
        _ => None,
    }
}

/// RFC 3164's `Mmm dd hh:mm:ss`: month, day and time, no year, no zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BsdTime {
    month: u32,
    day: u32,
    time: TimeOfDay,
}

/// `Mmm dd hh:mm:ss` at the start of `bytes` and its length, as senders
/// write it: the day space-padded (`Dec  7`, RFC 3164), zero-padded
/// (`Dec 07`) or bare (`Dec 7`); the month name in any case. It must be
/// followed by a space or the end.
pub fn split_bsd_time(bytes: &[u8]) -> Option<(BsdTime, usize)> {
    let name = bytes.get(..3)?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .and_then(|i| u32::try_from(i + 1).ok())?;
    if bytes.get(3) != Some(&b' ') {
        return None;
    }
    let (day, day_end) = match bytes.get(4..6)? {
        [b' ', d] => (digit(*d)?, 6),
        [d1, d2] if d2.is_ascii_digit() => (two_digits(*d1, *d2)?, 6),
        [d, b' '] => (digit(*d)?, 5),
        _ => return None,
    };
    if !(1..=31).contains(&day) || bytes.get(day_end) != Some(&b' ') {
        return None;
    }
    let time_start = day_end + 1;
    let time = TimeOfDay::parse(bytes.get(time_start..time_start + 8)?)?;
    let end = time_start + 8;
    if !matches!(bytes.get(end), None | Some(b' ')) {
        return None;
    }
    Some((BsdTime { month, day, time }, end))
}

impl BsdTime {
    /// Epoch ms, by the rule RFC 3164 leaves to the receiver: the time is
    /// in the collector's zone (`utc_offset_s` east of UTC), in whichever
    /// of the receive year, the year before or the year after puts it
    /// nearest `recv_ms` (so `Dec 31 23:59:59` received on 1 January is
    /// last year, and `Jan 1 00:00:01` received on 31 December next
    /// year). `Feb 29` only exists in leap years; `None` when none of the
    /// three years has it.
    pub fn to_ms(self, recv_ms: i64, utc_offset_s: i32) -> Option<i64> {
        let offset_s = i64::from(utc_offset_s);
        let recv_local_day =
            (recv_ms.div_euclid(MS_PER_SECOND) + offset_s).div_euclid(SECONDS_PER_DAY);
        let recv_year = year_of_day(recv_local_day);
        (recv_year - 1..=recv_year + 1)
            .filter(|&year| self.day <= days_in_month(year, self.month))
            .map(|year| {
                let local_s = days_from_civil(year, self.month, self.day) * SECONDS_PER_DAY
                    + self.time.seconds();
                (local_s - offset_s) * MS_PER_SECOND
            })
            .min_by_key(|ms| ms.abs_diff(recv_ms))
            .filter(|ms| (MIN_TS_MS..=MAX_TS_MS).contains(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T11:28:15Z.
    const RECV_MS: i64 = 1_796_642_895_000;

    #[test]
    fn calendar_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(
            days_from_civil(0, 1, 1) * SECONDS_PER_DAY * MS_PER_SECOND,
            MIN_TS_MS
        );
        assert_eq!(
            days_from_civil(10_000, 1, 1) * SECONDS_PER_DAY * MS_PER_SECOND - 1,
            MAX_TS_MS
        );
        for day in [-800_000, -1, 0, 59, 365, 11_016, 20_000, 2_900_000] {
            let year = year_of_day(day);
            assert!(days_from_civil(year, 1, 1) <= day && day < days_from_civil(year + 1, 1, 1));
        }
    }

    #[test]
    fn rfc3339_keeps_exact_milliseconds_and_zone() {
        assert_eq!(
            rfc3339_ms(b"2026-12-07T11:28:15.024792+00:00"),
            Some(RECV_MS + 24)
        );
        assert_eq!(rfc3339_ms(b"2026-12-07T11:28:15Z"), Some(RECV_MS));
        assert_eq!(
            rfc3339_ms(b"2026-12-07T12:28:15.9+01:00"),
            Some(RECV_MS + 900)
        );
        assert_eq!(
            rfc3339_ms(b"2026-12-07T06:58:15.123456789-04:30"),
            Some(RECV_MS + 123)
        );
        // RFC 5424 §6.5 example 2.
        assert_eq!(
            rfc3339_ms(b"2003-08-24T05:14:15.000003-07:00"),
            Some(1_061_727_255_000)
        );
        assert_eq!(rfc3339_ms(b"1969-12-31T23:59:59.5Z"), Some(-500));
    }

    #[test]
    fn rfc3339_refuses_what_rfc5424_does_not_allow() {
        for bad in [
            &b"2026-12-07T11:28:15"[..],
            b"2026-12-07 11:28:15Z",
            b"2026-13-07T11:28:15Z",
            b"2026-02-29T11:28:15Z",
            b"2026-12-07T24:00:00Z",
            b"2026-12-07T11:60:00Z",
            b"2026-12-07T11:28:60Z",
            b"2026-12-07T11:28:15.Z",
            b"2026-12-07T11:28:15.1234567890Z",
            b"2026-12-07T11:28:15+0100",
            b"2026-12-07T11:28:15+24:00",
            b"2026-12-07T11:28:15Zjunk",
            b"0000-01-01T00:00:00+00:01",
            b"",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(rfc3339_ms(b"2024-02-29T00:00:00z"), Some(1_709_164_800_000));
    }

    #[test]
    fn bsd_day_may_be_space_padded_zero_padded_or_bare() {
        for text in [
            &b"Dec  7 11:28:04 x"[..],
            b"Dec 07 11:28:04",
            b"Dec 7 11:28:04 x",
            b"dec  7 11:28:04",
        ] {
            let (time, len) = split_bsd_time(text).unwrap();
            assert_eq!(
                (time.month, time.day),
                (12, 7),
                "{}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(&text[len - 8..len], b"11:28:04");
        }
        for bad in [
            &b"Dec  7 11:28:04x"[..],
            b"Dex  7 11:28:04",
            b"Dec 32 11:28:04",
            b"Dec  0 11:28:04",
            b"Dec  7 1:28:04",
        ] {
            assert_eq!(
                split_bsd_time(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bsd_year_is_the_one_nearest_the_receive_time() {
        let time = |text: &[u8]| split_bsd_time(text).unwrap().0;
        // Same year.
        assert_eq!(
            time(b"Dec  7 11:28:04").to_ms(RECV_MS, 0),
            Some(RECV_MS - 11_000)
        );
        // Sent on 31 December, received on 1 January: last year.
        let new_year_ms = 1_798_761_600_000; // 2027-01-01T00:00:00Z
        assert_eq!(
            time(b"Dec 31 23:59:58").to_ms(new_year_ms + 1000, 0),
            Some(new_year_ms - 2000)
        );
        // A sender's clock a little ahead across the new year: next year.
        assert_eq!(
            time(b"Jan  1 00:00:02").to_ms(new_year_ms - 1000, 0),
            Some(new_year_ms + 2000)
        );
    }

    #[test]
    fn bsd_time_is_in_the_collector_zone() {
        let (time, _) = split_bsd_time(b"Dec  7 12:28:15").unwrap();
        assert_eq!(time.to_ms(RECV_MS, 3600), Some(RECV_MS));
        let (time, _) = split_bsd_time(b"Dec  7 06:58:15").unwrap();
        assert_eq!(time.to_ms(RECV_MS, -16_200), Some(RECV_MS));
    }

    #[test]
    fn bsd_february_29_takes_the_nearest_leap_year_or_none() {
        let (time, _) = split_bsd_time(b"Feb 29 00:00:00").unwrap();
        // Received 2028-03-01: 2028 is a leap year.
        assert_eq!(time.to_ms(1_835_481_600_000, 0), Some(1_835_395_200_000));
        // Received in 2026: neither 2025, 2026 nor 2027 has a 29 February.
        assert_eq!(time.to_ms(RECV_MS, 0), None);
    }
}
