//! Query-string parameters → the query layer's request shapes. Every
//! parameter arrives as text and is checked here, so a bad one is a 400
//! with a message naming it (never axum's plain-text rejection).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use helios_store::query::{
    parse_mongo_filter, parse_text, Cursor, FieldPath, Filter, Selection, SortOrder, TimeRange,
    MAX_HISTOGRAM_BUCKETS,
};

use crate::error::ApiError;

/// The window a request covers when it gives no `from`: the last day.
pub const DEFAULT_WINDOW_MS: i64 = 24 * 3_600_000;
/// Longest raw MongoDB filter accepted, bytes (the text language has its
/// own limit in the query layer).
pub const MAX_FILTER_JSON_BYTES: usize = 16 * 1024;
/// Most types one `types=` list may name.
pub const MAX_TYPES: usize = 100;
/// Histogram bars when the caller does not say.
pub const DEFAULT_HISTOGRAM_BUCKETS: usize = 60;

/// Raw query-string parameters (the last value wins for repeated names).
pub type Params = HashMap<String, String>;

/// Current time, UTC ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn get<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `from`/`to` as epoch ms or RFC 3339; defaults: `to` = now (inclusive of
/// this millisecond), `from` = `to` − [`DEFAULT_WINDOW_MS`].
pub fn time_range(params: &Params) -> Result<TimeRange, ApiError> {
    let to_ms = match get(params, "to") {
        Some(text) => parse_time("to", text)?,
        None => now_ms().saturating_add(1),
    };
    let from_ms = match get(params, "from") {
        Some(text) => parse_time("from", text)?,
        None => to_ms.saturating_sub(DEFAULT_WINDOW_MS),
    };
    if from_ms >= to_ms {
        return Err(ApiError::BadRequest(
            "`from` must be before `to`".to_owned(),
        ));
    }
    Ok(TimeRange::new(from_ms, to_ms))
}

fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    helios_store::parse_rfc3339_ms(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{name}` is neither epoch milliseconds nor an RFC 3339 time"
        ))
    })
}

/// `types=a,b` (empty = every type).
pub fn types(params: &Params) -> Result<Vec<String>, ApiError> {
    let Some(list) = get(params, "types") else {
        return Ok(Vec::new());
    };
    let types: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if types.len() > MAX_TYPES {
        return Err(ApiError::BadRequest(format!(
            "`types` names {} types, the limit is {MAX_TYPES}",
            types.len()
        )));
    }
    Ok(types)
}

/// The filter from `q` (text language) and/or `filter` (raw MongoDB JSON);
/// both given means both must match.
pub fn filter(params: &Params) -> Result<Option<Filter>, ApiError> {
    let text = get(params, "q").map(parse_text_filter).transpose()?;
    let raw = get(params, "filter").map(parse_raw_filter).transpose()?;
    Ok(match (text, raw) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
        (Some(a), Some(b)) => Some(Filter::and(vec![a, b])),
    })
}

fn parse_text_filter(text: &str) -> Result<Filter, ApiError> {
    parse_text(text).map_err(|error| {
        // The parser counts bytes; people and the UI count characters.
        let offset = floor_char_boundary(text, error.offset);
        ApiError::BadFilter {
            detail: format!("q: {}", error.message),
            position: Some(text[..offset].chars().count()),
            location: None,
        }
    })
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn parse_raw_filter(json: &str) -> Result<Filter, ApiError> {
    if json.len() > MAX_FILTER_JSON_BYTES {
        return Err(ApiError::BadFilter {
            detail: format!(
                "filter: {} bytes, the limit is {MAX_FILTER_JSON_BYTES}",
                json.len()
            ),
            position: None,
            location: None,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|error| ApiError::BadFilter {
            detail: format!("filter: not JSON: {error}"),
            position: Some(json_error_position(json, &error)),
            location: None,
        })?;
    parse_mongo_filter(&value).map_err(|error| ApiError::BadFilter {
        detail: format!("filter: {}", error.message),
        position: None,
        location: Some(error.location),
    })
}

/// serde_json reports line and column (1-based; the column counts bytes);
/// turn them into one character offset into the whole text.
fn json_error_position(json: &str, error: &serde_json::Error) -> usize {
    let line_start: usize = json
        .split_inclusive('\n')
        .take(error.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let offset = floor_char_boundary(json, line_start + error.column().saturating_sub(1));
    json[..offset].chars().count()
}

/// Time range, types and filter together.
pub fn selection(params: &Params) -> Result<Selection, ApiError> {
    Ok(Selection {
        range: time_range(params)?,
        types: types(params)?,
        filter: filter(params)?,
    })
}

/// `sort=desc|asc` (default newest first).
pub fn sort(params: &Params) -> Result<SortOrder, ApiError> {
    match get(params, "sort") {
        None | Some("desc") => Ok(SortOrder::Desc),
        Some("asc") => Ok(SortOrder::Asc),
        Some(_) => Err(ApiError::BadRequest("`sort` is `asc` or `desc`".to_owned())),
    }
}

/// `cursor=` from a previous page's `next_cursor`.
pub fn cursor(params: &Params) -> Result<Option<Cursor>, ApiError> {
    get(params, "cursor")
        .map(|token| {
            Cursor::parse_token(token).ok_or_else(|| {
                ApiError::BadRequest("`cursor` is not one this server handed out".to_owned())
            })
        })
        .transpose()
}

/// A count parameter in `1..=max`, `default` when absent.
pub fn count(params: &Params, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(text) = get(params, name) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "`{name}` must be a number from 1 to {max}"
        ))),
    }
}

/// A required field path parameter (`field=user.plan`).
pub fn required_path(params: &Params, name: &str) -> Result<FieldPath, ApiError> {
    let text = get(params, name)
        .ok_or_else(|| ApiError::BadRequest(format!("`{name}` (a field path) is required")))?;
    path(name, text)
}

/// An optional field path parameter.
pub fn optional_path(params: &Params, name: &str) -> Result<Option<FieldPath>, ApiError> {
    get(params, name).map(|text| path(name, text)).transpose()
}

/// A comma-separated list of field paths (`fields=a,b.c`).
pub fn path_list(
    params: &Params,
    name: &str,
    max: usize,
) -> Result<Option<Vec<FieldPath>>, ApiError> {
    let Some(list) = get(params, name) else {
        return Ok(None);
    };
    let paths = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| path(name, p))
        .collect::<Result<Vec<_>, _>>()?;
    if paths.len() > max {
        return Err(ApiError::BadRequest(format!(
            "`{name}` lists {} fields, the limit is {max}",
            paths.len()
        )));
    }
    Ok(Some(paths))
}

fn path(name: &str, text: &str) -> Result<FieldPath, ApiError> {
    FieldPath::parse(text).map_err(|error| ApiError::BadRequest(format!("`{name}`: {error}")))
}

/// A plain text parameter.
pub fn text<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    get(params, name)
}

/// Bucket widths a histogram picks from: round numbers people read easily.
const NICE_BUCKETS_MS: [i64; 22] = [
    1,
    10,
    100,
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    2 * 60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
];

/// The histogram bucket width: `interval_ms` if given, else the smallest
/// round width that covers `range` in at most `buckets` bars. Always keeps
/// the bar count within the query layer's limit.
pub fn bucket_ms(params: &Params, range: TimeRange) -> Result<i64, ApiError> {
    let span = i128::from(range.to_ms) - i128::from(range.from_ms);
    let max = i128::try_from(MAX_HISTOGRAM_BUCKETS).unwrap_or(i128::MAX);
    if let Some(text) = get(params, "interval_ms") {
        let width = text.parse::<i64>().ok().filter(|w| *w > 0).ok_or_else(|| {
            ApiError::BadRequest("`interval_ms` must be a positive number".to_owned())
        })?;
        // +1: the range may straddle one more bucket boundary than span/width.
        if span / i128::from(width) + 1 > max {
            return Err(ApiError::BadRequest(format!(
                "that interval gives more than {MAX_HISTOGRAM_BUCKETS} buckets over this range"
            )));
        }
        return Ok(width);
    }
    let buckets = count(
        params,
        "buckets",
        DEFAULT_HISTOGRAM_BUCKETS,
        MAX_HISTOGRAM_BUCKETS - 1,
    )?;
    let target = span / i128::try_from(buckets).unwrap_or(1);
    let nice = NICE_BUCKETS_MS
        .iter()
        .copied()
        .find(|&w| i128::from(w) >= target);
    let width = match nice {
        Some(w) => w,
        // Longer than weeks per bar: whole days, enough of them.
        None => i64::try_from(target / 86_400_000 + 1)
            .unwrap_or(i64::MAX / 86_400_000)
            .saturating_mul(86_400_000),
    };
    if span / i128::from(width) + 1 > max {
        return Err(ApiError::BadRequest(
            "the time range is too wide for a histogram; give `from`".to_owned(),
        ));
    }
    Ok(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn times_read_as_epoch_ms_or_rfc3339() {
        let range =
            time_range(&params(&[("from", "1000"), ("to", "1970-01-01T00:00:02Z")])).unwrap();
        assert_eq!(range, TimeRange::new(1000, 2000));
    }

    #[test]
    fn an_empty_or_inverted_range_is_refused() {
        assert!(time_range(&params(&[("from", "5"), ("to", "5")])).is_err());
        assert!(time_range(&params(&[("from", "yesterday")])).is_err());
    }

    #[test]
    fn the_default_window_is_the_last_day() {
        let range = time_range(&Params::new()).unwrap();
        assert_eq!(range.to_ms - range.from_ms, DEFAULT_WINDOW_MS);
    }

    #[test]
    fn buckets_are_round_widths_within_the_limit() {
        let hour = TimeRange::new(0, 3_600_000);
        assert_eq!(bucket_ms(&Params::new(), hour).unwrap(), 60_000);
        let day = TimeRange::new(0, 86_400_000);
        assert_eq!(bucket_ms(&Params::new(), day).unwrap(), 30 * 60_000);
        let ages = TimeRange::new(0, i64::MAX);
        let width = bucket_ms(&Params::new(), ages).unwrap();
        assert!(i128::from(i64::MAX) / i128::from(width) < MAX_HISTOGRAM_BUCKETS as i128);
    }

    #[test]
    fn too_many_explicit_buckets_are_refused() {
        let day = TimeRange::new(0, 86_400_000);
        assert!(bucket_ms(&params(&[("interval_ms", "1")]), day).is_err());
        assert_eq!(
            bucket_ms(&params(&[("interval_ms", "3600000")]), day).unwrap(),
            3_600_000
        );
    }

    #[test]
    fn json_error_positions_count_characters_across_lines() {
        let json = "{\n  \"é\": ,}";
        let error = serde_json::from_str::<serde_json::Value>(json).unwrap_err();
        assert_eq!(json_error_position(json, &error), 9);
    }
}
