//! Request validation throughput on the reference events
//! (`../shared/bench/event.json`, `batch100.json`, and the same 100 events
//! as NDJSON), beside the JSON parsers it could have been built on, in the
//! same run:
//!
//! - `helios`: `helios_ingest::events::validate`, what the collector runs
//!   (serde_json: one structural scan for extents and depth, then one
//!   serde_json pass per event that reads the envelope members and skips the
//!   rest with `IgnoredAny`, plus the duplicate-name check and byte ranges).
//! - `serde_json_ignored_any`: serde_json syntax check of the whole body
//!   with `IgnoredAny`, no rules: the floor of any serde_json design.
//! - `simd_json_tape_reused`: simd-json with reused `Buffers`, tape and
//!   input copy (it unescapes in place, so it must parse a copy), walking
//!   the tape to apply the same event rules (type, ts, _id, recv, app). It
//!   does *not* produce byte ranges or check duplicate names — simd-json's
//!   tape has no input offsets, so a real design would need a separate
//!   splitting pass on top — so it is a lower bound for simd-json.
//! - `simd_json_tape_fresh`: the same with fresh buffers per body.
//!
//! `cargo bench -p helios-benches --bench validate` (inputs from
//! `HELIOS_BENCH_INPUTS`, default `../shared/bench`)
//!
//! Throughput is in bytes (criterion prints MB/s); events/s is bytes/s
//! divided by the event size printed at start.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use helios_ingest::events::{validate, BodyFormat, ValidateLimits, ValidateMode, Validation};
use serde::de::IgnoredAny;
use simd_json::{Buffers, Node, StaticNode, Tape};

/// Where the reference load lives; `HELIOS_BENCH_INPUTS` overrides it.
const SHARED_BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench");
const CLIENT: ValidateMode = ValidateMode { relay: false };

struct Input {
    name: &'static str,
    body: Vec<u8>,
    format: BodyFormat,
    events: usize,
}

fn inputs() -> Vec<Input> {
    let dir = std::env::var("HELIOS_BENCH_INPUTS").unwrap_or_else(|_| SHARED_BENCH_DIR.into());
    let read = |file: &str| {
        std::fs::read(format!("{dir}/{file}"))
            .unwrap_or_else(|error| panic!("{dir}/{file}: {error}"))
    };
    let event = read("event.json");
    let batch = read("batch100.json");
    // The same 100 events, one per line, byte-exact (RawValue keeps each
    // element's text).
    let elements: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(&batch).expect("batch100.json is a JSON array");
    let mut ndjson = Vec::with_capacity(batch.len());
    for element in &elements {
        ndjson.extend_from_slice(element.get().as_bytes());
        ndjson.push(b'\n');
    }
    let batch_events = elements.len();
    drop(elements);
    vec![
        Input {
            name: "event",
            body: event,
            format: BodyFormat::Json,
            events: 1,
        },
        Input {
            name: "batch100",
            body: batch,
            format: BodyFormat::Json,
            events: batch_events,
        },
        Input {
            name: "ndjson100",
            body: ndjson,
            format: BodyFormat::Ndjson,
            events: batch_events,
        },
    ]
}

fn validate_group(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("validate");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(30);
    for input in &inputs {
        eprintln!(
            "{}: {} bytes, {} events, {} bytes/event",
            input.name,
            input.body.len(),
            input.events,
            input.body.len() / input.events
        );
        group.throughput(Throughput::Bytes(input.body.len() as u64));

        let limits = ValidateLimits::default();
        let mut out = Validation::new();
        group.bench_with_input(BenchmarkId::new("helios", input.name), input, |b, input| {
            b.iter(|| {
                validate(&input.body, input.format, &limits, CLIENT, &mut out)
                    .expect("reference body is valid");
                assert_eq!(out.accepted().len(), input.events);
            });
        });

        group.bench_with_input(
            BenchmarkId::new("serde_json_ignored_any", input.name),
            input,
            |b, input| {
                b.iter(|| {
                    for document in documents(input) {
                        serde_json::from_slice::<IgnoredAny>(document).expect("valid JSON");
                    }
                });
            },
        );

        let mut simd = SimdScratch::default();
        group.bench_with_input(
            BenchmarkId::new("simd_json_tape_reused", input.name),
            input,
            |b, input| {
                b.iter(|| {
                    let mut accepted = 0;
                    for document in documents(input) {
                        accepted += simd.validate(document);
                    }
                    assert_eq!(accepted, input.events);
                });
            },
        );

        group.bench_with_input(
            BenchmarkId::new("simd_json_tape_fresh", input.name),
            input,
            |b, input| {
                b.iter(|| {
                    let mut accepted = 0;
                    for document in documents(input) {
                        let mut copy = document.to_vec();
                        let tape = simd_json::to_tape(&mut copy).expect("valid JSON");
                        accepted += accepted_events(&tape.0);
                    }
                    assert_eq!(accepted, input.events);
                });
            },
        );
    }
    group.finish();
}

/// The JSON documents of a body: the body itself, or its non-empty lines.
fn documents(input: &Input) -> impl Iterator<Item = &[u8]> {
    let whole = matches!(input.format, BodyFormat::Json);
    let lines = input
        .body
        .split(|&byte| byte == b'\n')
        .filter(move |line| !whole && !line.is_empty());
    std::iter::once(&input.body[..])
        .filter(move |_| whole)
        .chain(lines)
}

/// Buffers simd-json reuses from body to body, as a core would keep them.
struct SimdScratch {
    copy: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
}

impl Default for SimdScratch {
    fn default() -> Self {
        Self {
            copy: Vec::new(),
            buffers: Buffers::new(64 << 10),
            tape: Tape::null(),
        }
    }
}

impl SimdScratch {
    fn validate(&mut self, document: &[u8]) -> usize {
        self.copy.clear();
        self.copy.extend_from_slice(document);
        let mut tape = std::mem::replace(&mut self.tape, Tape::null()).reset();
        simd_json::fill_tape(&mut self.copy, &mut self.buffers, &mut tape).expect("valid JSON");
        let accepted = accepted_events(&tape.0);
        self.tape = tape.reset();
        accepted
    }
}

/// Applies the event rules to a tape holding one object or an array of
/// them; returns how many pass.
fn accepted_events(nodes: &[Node<'_>]) -> usize {
    match nodes.first() {
        Some(Node::Object { .. }) => usize::from(event_ok(nodes)),
        Some(Node::Array { len, .. }) => {
            let mut at = 1;
            let mut accepted = 0;
            for _ in 0..*len {
                accepted += usize::from(event_ok(&nodes[at..]));
                at += 1 + node_count(&nodes[at]);
            }
            accepted
        }
        _ => 0,
    }
}

/// Nodes nested under `node` (not counting itself).
fn node_count(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => *count,
        Node::String(_) | Node::Static(_) => 0,
    }
}

fn event_ok(nodes: &[Node<'_>]) -> bool {
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return false;
    };
    let mut at = 1;
    let mut type_ok = false;
    for _ in 0..*len {
        let (Some(Node::String(key)), Some(value)) = (nodes.get(at), nodes.get(at + 1)) else {
            return false;
        };
        let ok = match *key {
            "type" => {
                type_ok = matches!(value, Node::String(text) if !text.is_empty());
                type_ok
            }
            "ts" => match value {
                Node::String(text) => helios_store::parse_rfc3339_ms(text).is_some(),
                Node::Static(StaticNode::I64(_) | StaticNode::U64(_)) => true,
                _ => false,
            },
            "_id" => {
                matches!(value, Node::String(text) if helios_store::ObjectId::parse_hex(text).is_ok())
            }
            "recv" => false,
            "app" => matches!(value, Node::String(_)),
            _ => true,
        };
        if !ok {
            return false;
        }
        at += 2 + node_count(value);
    }
    type_ok
}

criterion_group!(benches, validate_group);
criterion_main!(benches);
