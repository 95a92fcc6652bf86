//! The protobuf push body (`application/x-protobuf`): a `PushRequest`
//! (Loki's `pkg/push/push.proto`), snappy **block**-compressed (not the
//! framed format), with no `Content-Encoding` header.
//!
//! The messages are declared by hand with prost's derive. Text fields are
//! read as bytes (the wire format of `string` and `bytes` is the same):
//! Loki's Go decoder does not check UTF-8, so neither do we refuse a line
//! for it; invalid sequences become U+FFFD ([`crate::text_of`]). Fields a
//! pusher must not send or that Helios has no use for (`format`, `hash`,
//! `parsed`) are skipped as unknown fields.

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PushRequest {
    /// `streams = 1`.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct StreamAdapter {
    /// `labels = 1`: a selector, `{job="api", env="prod"}`.
    #[prost(bytes = "vec", tag = "1")]
    pub labels: Vec<u8>,
    /// `entries = 2`.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct EntryAdapter {
    /// `timestamp = 1`.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// `line = 2`.
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    /// `structuredMetadata = 3`.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub(super) struct Timestamp {
    /// `seconds = 1`.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// `nanos = 2`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LabelPairAdapter {
    /// `name = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// `value = 2`.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// Nanoseconds since the epoch of a protobuf `Timestamp`, or why it has
/// none Helios can store (before 1970, or `nanos` outside `0..1e9`, which
/// the protobuf spec forbids).
pub(super) fn nanos(ts: Timestamp) -> Result<u128, String> {
    if !(0..NANOS_PER_SECOND).contains(&ts.nanos) {
        return Err(format!(
            "entry timestamp has nanos {} outside 0..999999999",
            ts.nanos
        ));
    }
    let seconds = u128::try_from(ts.seconds)
        .map_err(|_| format!("entry timestamp {}s is before 1970", ts.seconds))?;
    // Both parts are non-negative: u128 holds i64::MAX * 1e9 + 1e9 with room.
    Ok(seconds * NANOS_PER_SECOND as u128 + ts.nanos as u128)
}

const NANOS_PER_SECOND: i32 = 1_000_000_000;
