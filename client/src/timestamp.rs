//! Wall-clock stamps for `ts` and `Helios-Sent-At`.
//!
//! `ts` is written as RFC 3339 UTC with milliseconds because a logged
//! document (the only trace of a lost event) should be readable by a person;
//! `Helios-Sent-At` is epoch milliseconds because only the server reads it.
//! Both forms are accepted by the collector (DESIGN.md §3).

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_SEC: u64 = 1_000;
const SECS_PER_DAY: u64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const DAYS_FROM_CIVIL_EPOCH_TO_UNIX_EPOCH: i64 = 719_468;
const DAYS_PER_400_YEARS: i64 = 146_097;

/// Milliseconds since the unix epoch; 0 if the clock is before 1970.
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Appends `unix_ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 bytes).
pub(crate) fn write_rfc3339_ms(unix_ms: u64, out: &mut Vec<u8>) {
    let secs = unix_ms / MS_PER_SEC;
    let millis = unix_ms % MS_PER_SEC;
    let days = i64::try_from(secs / SECS_PER_DAY).unwrap_or(i64::MAX / 2);
    let secs_of_day = secs % SECS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    push_digits(out, u64::try_from(year).unwrap_or(0), 4);
    out.push(b'-');
    push_digits(out, u64::from(month), 2);
    out.push(b'-');
    push_digits(out, u64::from(day), 2);
    out.push(b'T');
    push_digits(out, secs_of_day / 3_600, 2);
    out.push(b':');
    push_digits(out, secs_of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, secs_of_day % 60, 2);
    out.push(b'.');
    push_digits(out, millis, 3);
    out.push(b'Z');
}

/// Zero-padded decimal of exactly `width` digits (higher digits dropped:
/// callers pass values that fit).
fn push_digits(out: &mut Vec<u8>, value: u64, width: u32) {
    let mut divisor = 10u64.pow(width - 1);
    for _ in 0..width {
        out.push(b'0' + (value / divisor % 10) as u8);
        divisor /= 10;
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (y, m, d).
fn civil_from_days(days_since_unix_epoch: i64) -> (i64, u32, u32) {
    let z = days_since_unix_epoch + DAYS_FROM_CIVIL_EPOCH_TO_UNIX_EPOCH;
    let era = z.div_euclid(DAYS_PER_400_YEARS);
    let day_of_era = z.rem_euclid(DAYS_PER_400_YEARS);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(unix_ms: u64) -> String {
        let mut out = Vec::new();
        write_rfc3339_ms(unix_ms, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn formats_the_epoch() {
        assert_eq!(format(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn formats_a_leap_day_with_milliseconds() {
        // 2024-02-29T12:34:56.789Z
        assert_eq!(format(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn formats_the_last_millisecond_of_a_year() {
        assert_eq!(format(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        assert_eq!(format(1_735_689_600_000), "2025-01-01T00:00:00.000Z");
    }
}
