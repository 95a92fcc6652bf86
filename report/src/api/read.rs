//! The request/response endpoints: status, login, types, events, one
//! event, histogram, group-by, field names, value suggestions.

use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use helios_store::query::{
    DistinctRequest, Document, GroupByRequest, GroupCount, GroupKey, HistogramRequest,
    Query as PageQuery, Split, DEFAULT_PAGE_LIMIT, MAX_DISTINCT_LIMIT, MAX_FIELD_SAMPLE_DOCS,
    MAX_PAGE_LIMIT, MAX_TOP_N,
};
use helios_store::ObjectId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::security::TOKEN_COOKIE;

/// Group-by values when the caller does not say.
pub const DEFAULT_GROUP_TOP: usize = 10;
/// Histogram split series when the caller does not say.
pub const DEFAULT_SPLIT_TOP: usize = 5;
/// Documents sampled for field names when the caller does not say.
pub const DEFAULT_FIELD_SAMPLE: usize = 1_000;
/// Value suggestions when the caller does not say.
pub const DEFAULT_VALUE_LIMIT: usize = 20;
/// Most fields one projection (`fields=`) may list.
pub const MAX_PROJECTION_FIELDS: usize = 64;

type ApiResult = Result<Json<Value>, ApiError>;

/// `GET /api/events`'s answer.
#[derive(serde::Serialize)]
struct EventsPage<'a> {
    events: Vec<Document<'a>>,
    next_cursor: Option<String>,
}

/// `GET /api/events/{id}`'s answer.
#[derive(serde::Serialize)]
struct OneEvent<'a> {
    event: Document<'a>,
}

/// `GET /api/status`: version and whether a token is required.
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "auth_required": state.auth.required(),
    }))
}

/// Body of `POST /api/login`.
#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /api/login {"token": "..."}`: the right token gets an HttpOnly,
/// SameSite=Strict cookie (also `Secure` with `--secure-cookie`) the
/// browser then sends with every API request (including `EventSource` and
/// download links, which cannot set headers).
pub async fn login(State(state): State<AppState>, Json(login): Json<Login>) -> Response {
    if !state.auth.required() {
        return StatusCode::NO_CONTENT.into_response();
    }
    if !state.auth.accepts(login.token.as_bytes()) {
        return ApiError::Unauthorized.into_response();
    }
    // The token's characters were checked at startup (config), so it is a
    // valid cookie value.
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/api/; HttpOnly; SameSite=Strict{secure}",
        login.token
    );
    match HeaderValue::from_str(&cookie) {
        Ok(value) => (StatusCode::NO_CONTENT, [(header::SET_COOKIE, value)]).into_response(),
        Err(_) => ApiError::BadRequest("token cannot be a cookie".to_owned()).into_response(),
    }
}

/// `GET /api/types?from&to`: every type in the range with its count.
pub async fn types(State(state): State<AppState>, Query(params): Query<Params>) -> ApiResult {
    let range = params::time_range(&params)?;
    let types = state.backend.run(move |b| b.types(range)).await?;
    let total: u64 = types.iter().map(|t| t.count).sum();
    Ok(Json(json!({ "types": types, "total": total })))
}

/// `GET /api/events?from&to&types&q&filter&sort&limit&cursor&fields`: one
/// page of events and the cursor of the next.
pub async fn events(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let query = PageQuery {
        select: params::selection(&params)?,
        sort: params::sort(&params)?,
        limit: params::count(&params, "limit", DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT)?,
        after: params::cursor(&params)?,
        projection: params::path_list(&params, "fields", MAX_PROJECTION_FIELDS)?,
    };
    let page = state.backend.run(move |b| b.query(&query)).await?;
    let next = page.next.map(|c| c.to_token());
    // Serialized straight to the body, never through a `Value`: the stored
    // text goes out as it is (integers past 64 bits, `-0`), not re-rendered.
    let body = EventsPage {
        events: page.events.iter().map(|hit| hit.document()).collect(),
        next_cursor: next,
    };
    Ok(Json(body).into_response())
}

/// `GET /api/events/{id}`: one event by its 24-hex id.
pub async fn event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = ObjectId::parse_hex(&id)
        .map_err(|_| ApiError::BadRequest("an event id is 24 hex digits".to_owned()))?;
    let hit = state.backend.run(move |b| b.get(id)).await?;
    let hit = hit.ok_or(ApiError::NotFound)?;
    Ok(Json(OneEvent {
        event: hit.document(),
    })
    .into_response())
}

/// `GET /api/histogram?...&buckets|interval_ms&split&top`: counts per time
/// bucket, optionally split by a field's top values.
pub async fn histogram(State(state): State<AppState>, Query(params): Query<Params>) -> ApiResult {
    let select = params::selection(&params)?;
    let bucket_ms = params::bucket_ms(&params, select.range)?;
    let split_by = params::optional_path(&params, "split")?
        .map(|path| {
            Ok::<_, ApiError>(Split {
                path,
                top_n: params::count(&params, "top", DEFAULT_SPLIT_TOP, MAX_TOP_N)?,
            })
        })
        .transpose()?;
    let split = split_by.is_some();
    let range = select.range;
    let request = HistogramRequest {
        select,
        bucket_ms,
        split_by,
    };
    let histogram = state.backend.run(move |b| b.histogram(&request)).await?;
    let series: Vec<Value> = if split {
        histogram
            .series
            .iter()
            .map(|key| json!({ "label": label(key), "key": key }))
            .collect()
    } else {
        vec![json!({ "label": "count" })]
    };
    let buckets: Vec<Value> = histogram
        .buckets
        .iter()
        .map(|bucket| {
            let counts = if split {
                bucket.split_counts.clone()
            } else {
                vec![bucket.count]
            };
            json!({ "start": bucket.start_ms, "count": bucket.count, "counts": counts })
        })
        .collect();
    Ok(Json(json!({
        "from": range.from_ms,
        "to": range.to_ms,
        "interval_ms": histogram.bucket_ms,
        "series": series,
        "buckets": buckets,
    })))
}

/// `GET /api/groups?...&field&top`: a field's most frequent values, with
/// `column: false` when some columnar file read holds it only inside
/// documents (a slower count; `true` when every file has it as a column).
pub async fn groups(State(state): State<AppState>, Query(params): Query<Params>) -> ApiResult {
    let request = GroupByRequest {
        select: params::selection(&params)?,
        path: params::required_path(&params, "field")?,
        top_n: params::count(&params, "top", DEFAULT_GROUP_TOP, MAX_TOP_N)?,
    };
    let field = request.path.dotted();
    let result = state.backend.run(move |b| b.group_by(&request)).await?;
    let groups: Vec<Value> = result.groups.iter().map(group_json).collect();
    let mut body = json!({
        "field": field,
        "groups": groups,
        "other_count": result.other_count,
        "total": result.total,
    });
    // Said only where the store has a columnar tier in the range: `false`
    // tells the UI this answer was counted from whole documents (slower).
    if let Some(column) = result.column {
        body["column"] = Value::Bool(column);
    }
    Ok(Json(body))
}

/// `GET /api/fields?from&to&sample`: field names seen in recent events,
/// each with `column` where the range has columnar files (whether top
/// values of it are counted from a column in every file).
pub async fn fields(State(state): State<AppState>, Query(params): Query<Params>) -> ApiResult {
    let range = params::time_range(&params)?;
    let sample = params::count(
        &params,
        "sample",
        DEFAULT_FIELD_SAMPLE,
        MAX_FIELD_SAMPLE_DOCS,
    )?;
    let names = state
        .backend
        .run(move |b| b.field_names(range, sample))
        .await?;
    let fields: Vec<Value> = names
        .iter()
        .map(|f| {
            let mut field = json!({ "name": f.path, "count": f.count });
            // As for `/api/groups`: only where columnar files were read.
            if let Some(column) = f.column {
                field["column"] = Value::Bool(column);
            }
            field
        })
        .collect();
    Ok(Json(json!({ "fields": fields })))
}

/// `GET /api/values?...&field&prefix&limit`: value suggestions for a field.
pub async fn values(State(state): State<AppState>, Query(params): Query<Params>) -> ApiResult {
    let request = DistinctRequest {
        select: params::selection(&params)?,
        path: params::required_path(&params, "field")?,
        prefix: params::text(&params, "prefix").map(str::to_owned),
        limit: params::count(&params, "limit", DEFAULT_VALUE_LIMIT, MAX_DISTINCT_LIMIT)?,
    };
    let field = request.path.dotted();
    let values = state.backend.run(move |b| b.distinct(&request)).await?;
    let values: Vec<Value> = values.iter().map(group_json).collect();
    Ok(Json(json!({ "field": field, "values": values })))
}

/// A group as the UI wants it: a display label, the raw value (to filter
/// on) when there is one, and the count.
fn group_json(group: &GroupCount) -> Value {
    let value = match &group.key {
        GroupKey::Value(v) => v.clone(),
        GroupKey::Missing | GroupKey::Other => Value::Null,
    };
    json!({
        "key": group.key,
        "label": label(&group.key),
        "value": value,
        "count": group.count,
    })
}

/// How a group key reads in the UI.
fn label(key: &GroupKey) -> String {
    match key {
        GroupKey::Value(Value::String(s)) => s.clone(),
        GroupKey::Value(other) => other.to_string(),
        GroupKey::Missing => "(missing)".to_owned(),
        GroupKey::Other => "(other)".to_owned(),
    }
}
