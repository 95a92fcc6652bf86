//! UTC milliseconds → RFC 3339 text, the form `ts` and `recv` take in a
//! stored document.
//!
//! Why text and not epoch numbers in `doc`: the document is what people read
//! in the report UI and exports, and an RFC 3339 string is unambiguous there
//! (no guessing seconds vs milliseconds). Why always `Z` and always three
//! fractional digits: the strings then sort lexically in time order and have
//! one fixed width (24 bytes). The numeric columns `ts`/`recv` (SQLite) and
//! BSON dates (MongoDB) carry the same instants for indexing.
//!
//! Hand-written (Howard Hinnant's `civil_from_days`) because a calendar crate
//! would cost more build time than these thirty lines.

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
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z"
    ))
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
}
