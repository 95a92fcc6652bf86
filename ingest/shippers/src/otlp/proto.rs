//! The OTLP logs messages, declared by hand from opentelemetry-proto
//! (`collector/logs/v1/logs_service.proto`, `logs/v1/logs.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`) and
//! `google/rpc/status.proto`, with the upstream field numbers.
//!
//! Each message derives both `prost::Message` (binary protobuf) and
//! `serde::Deserialize` (the OTLP/JSON mapping: lowerCamelCase names, the
//! proto's snake_case names as aliases, `null` as the default value, 64-bit
//! integers as numbers or strings, trace and span ids as hex): one set of
//! types, so both encodings yield the same events by construction.
//!
//! Fields the logs signal does not use are left out on purpose: protobuf
//! skips unknown fields and the JSON mapping ignores unknown names, as the
//! OTLP specification requires. `KeyValue.key_strindex` and
//! `AnyValue.string_value_strindex` belong to the profiling signal; the
//! specification says to process a log as if they were absent, so
//! `key_strindex` is not declared and `string_value_strindex` reads as an
//! empty value.

use serde::Deserialize;

use super::json::{hex_bytes, i32_field, nullable, u32_field, u64_field};

/// `ExportLogsServiceRequest`: the body of `POST /v1/logs`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportLogsServiceRequest {
    /// One entry per resource.
    #[prost(message, repeated, tag = "1")]
    #[serde(alias = "resource_logs", default, deserialize_with = "nullable")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `ResourceLogs`: the logs of one resource.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLogs {
    /// The entity that produced the logs (a service, a host).
    #[prost(message, optional, tag = "1")]
    #[serde(default)]
    pub resource: Option<Resource>,
    /// One entry per instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    #[serde(alias = "scope_logs", default, deserialize_with = "nullable")]
    pub scope_logs: Vec<ScopeLogs>,
    /// The schema of `resource`.
    #[prost(string, tag = "3")]
    #[serde(alias = "schema_url", default, deserialize_with = "nullable")]
    pub schema_url: String,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `service.name`, `host.name`, …
    #[prost(message, repeated, tag = "1")]
    #[serde(default, deserialize_with = "nullable")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped (limits).
    #[prost(uint32, tag = "2")]
    #[serde(
        alias = "dropped_attributes_count",
        default,
        deserialize_with = "u32_field"
    )]
    pub dropped_attributes_count: u32,
    /// The entities the resource describes (development status upstream).
    #[prost(message, repeated, tag = "3")]
    #[serde(alias = "entity_refs", default, deserialize_with = "nullable")]
    pub entity_refs: Vec<EntityRef>,
}

/// `EntityRef`: which resource attributes identify and describe an entity.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRef {
    /// The schema of the entity.
    #[prost(string, tag = "1")]
    #[serde(alias = "schema_url", default, deserialize_with = "nullable")]
    pub schema_url: String,
    /// The entity type (`service`, `k8s.pod`).
    #[prost(string, tag = "2")]
    #[serde(default, deserialize_with = "nullable")]
    pub r#type: String,
    /// Resource attribute keys that identify the entity.
    #[prost(string, repeated, tag = "3")]
    #[serde(alias = "id_keys", default, deserialize_with = "nullable")]
    pub id_keys: Vec<String>,
    /// Resource attribute keys that describe it.
    #[prost(string, repeated, tag = "4")]
    #[serde(alias = "description_keys", default, deserialize_with = "nullable")]
    pub description_keys: Vec<String>,
}

/// `ScopeLogs`: the logs of one instrumentation scope.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeLogs {
    /// The logger (library) that produced the records.
    #[prost(message, optional, tag = "1")]
    #[serde(default)]
    pub scope: Option<InstrumentationScope>,
    /// The records.
    #[prost(message, repeated, tag = "2")]
    #[serde(alias = "log_records", default, deserialize_with = "nullable")]
    pub log_records: Vec<LogRecord>,
    /// The schema of the records and the scope.
    #[prost(string, tag = "3")]
    #[serde(alias = "schema_url", default, deserialize_with = "nullable")]
    pub schema_url: String,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentationScope {
    /// Logger name.
    #[prost(string, tag = "1")]
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Logger version.
    #[prost(string, tag = "2")]
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    /// Scope attributes.
    #[prost(message, repeated, tag = "3")]
    #[serde(default, deserialize_with = "nullable")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    #[prost(uint32, tag = "4")]
    #[serde(
        alias = "dropped_attributes_count",
        default,
        deserialize_with = "u32_field"
    )]
    pub dropped_attributes_count: u32,
}

/// `LogRecord`: one log record, one Helios event.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// When the event happened (0: unknown).
    #[prost(fixed64, tag = "1")]
    #[serde(alias = "time_unix_nano", default, deserialize_with = "u64_field")]
    pub time_unix_nano: u64,
    /// When the pipeline first saw it (0: unknown).
    #[prost(fixed64, tag = "11")]
    #[serde(
        alias = "observed_time_unix_nano",
        default,
        deserialize_with = "u64_field"
    )]
    pub observed_time_unix_nano: u64,
    /// `SeverityNumber` (an enum: integers only in OTLP/JSON).
    #[prost(int32, tag = "2")]
    #[serde(alias = "severity_number", default, deserialize_with = "i32_field")]
    pub severity_number: i32,
    /// The severity as the source wrote it (`WARNING`).
    #[prost(string, tag = "3")]
    #[serde(alias = "severity_text", default, deserialize_with = "nullable")]
    pub severity_text: String,
    /// The message (any value).
    #[prost(message, optional, tag = "5")]
    #[serde(default)]
    pub body: Option<AnyValue>,
    /// Record attributes.
    #[prost(message, repeated, tag = "6")]
    #[serde(default, deserialize_with = "nullable")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    #[prost(uint32, tag = "7")]
    #[serde(
        alias = "dropped_attributes_count",
        default,
        deserialize_with = "u32_field"
    )]
    pub dropped_attributes_count: u32,
    /// W3C trace flags in the low byte.
    #[prost(fixed32, tag = "8")]
    #[serde(default, deserialize_with = "u32_field")]
    pub flags: u32,
    /// 16 bytes, or empty.
    #[prost(bytes = "vec", tag = "9")]
    #[serde(alias = "trace_id", default, deserialize_with = "hex_bytes")]
    pub trace_id: Vec<u8>,
    /// 8 bytes, or empty.
    #[prost(bytes = "vec", tag = "10")]
    #[serde(alias = "span_id", default, deserialize_with = "hex_bytes")]
    pub span_id: Vec<u8>,
    /// The event's name, for records that are events.
    #[prost(string, tag = "12")]
    #[serde(alias = "event_name", default, deserialize_with = "nullable")]
    pub event_name: String,
}

/// `AnyValue`: a oneof (JSON: the member naming the case, e.g.
/// `{"stringValue": "x"}`; its `Deserialize` is in `json.rs`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value; `None` for an empty `AnyValue`.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub value: Option<Value>,
}

/// The cases of `AnyValue`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// `string_value`.
    #[prost(string, tag = "1")]
    String(String),
    /// `bool_value`.
    #[prost(bool, tag = "2")]
    Bool(bool),
    /// `int_value`.
    #[prost(int64, tag = "3")]
    Int(i64),
    /// `double_value`.
    #[prost(double, tag = "4")]
    Double(f64),
    /// `array_value`.
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    /// `kvlist_value`.
    #[prost(message, tag = "6")]
    Kvlist(KeyValueList),
    /// `bytes_value`.
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
    /// `string_value_strindex`: profiling only; read as an empty value.
    #[prost(int32, tag = "8")]
    StringIndex(i32),
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct ArrayValue {
    /// The elements.
    #[prost(message, repeated, tag = "1")]
    #[serde(default, deserialize_with = "nullable")]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`: a map whose keys may repeat (the last one wins here).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct KeyValueList {
    /// The pairs, in order.
    #[prost(message, repeated, tag = "1")]
    #[serde(default, deserialize_with = "nullable")]
    pub values: Vec<KeyValue>,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    #[serde(default, deserialize_with = "nullable")]
    pub key: String,
    /// The value (`None`: empty).
    #[prost(message, optional, tag = "2")]
    #[serde(default)]
    pub value: Option<AnyValue>,
}

/// `ExportLogsServiceResponse`: the success answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceResponse {
    /// Set only when some records were refused.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

/// `ExportLogsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsPartialSuccess {
    /// How many records were refused.
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    /// Why, for people.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`: the body of every 4xx/5xx answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// For developers.
    #[prost(string, tag = "2")]
    pub message: String,
}
