//! Fuzzing the three parsers that face the network — the HTTP request
//! parser (heads and chunked bodies), the gzip decoder, and the event
//! validator — with proptest over arbitrary bytes and over mutations of a
//! seed corpus (`tests/corpus/{http,gzip,events}`), plus a replay of that
//! corpus. Properties: no panic, no hang (every call returns), and outputs
//! that stay inside their inputs and limits.

use std::path::Path;

use helios_ingest::decode::gunzip_limited;
use helios_ingest::events::{validate, BodyFormat, ValidateLimits, ValidateMode, Validation};
use helios_ingest::http::{parse_head, ChunkProgress, ChunkedDecoder, HttpLimits};
use proptest::prelude::*;

const LIMITS: HttpLimits = HttpLimits {
    max_header_bytes: 8192,
    max_headers: 64,
    max_body_bytes: 1 << 20,
};
const MAX_DECODED: usize = 1 << 20;
/// Inflate granularity in `decode.rs`: output may overshoot the limit by
/// at most this before the decoder refuses.
const INFLATE_SLACK: usize = 64 << 10;

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn http_target(data: &[u8]) {
    if let Ok(Some(head)) = parse_head(data, &LIMITS) {
        assert!(head.head_len <= data.len());
        if let Some(r) = &head.sent_at {
            assert!(r.end <= head.head_len);
        }
        let rest = &data[head.head_len..];
        // Feed the body in two pieces at every kind of split.
        let split = rest.len() / 2;
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        if let Ok(ChunkProgress::NeedMore(used)) =
            d.feed(&rest[..split], &mut out, LIMITS.max_body_bytes)
        {
            assert!(used <= split);
            let _ = d.feed(&rest[used..], &mut out, LIMITS.max_body_bytes);
        }
        assert!(out.len() <= LIMITS.max_body_bytes);
    }
}

fn gzip_target(data: &[u8]) {
    let mut out = Vec::new();
    let _ = gunzip_limited(data, MAX_DECODED, &mut out);
    assert!(out.len() <= MAX_DECODED + INFLATE_SLACK);
}

fn events_target(data: &[u8]) {
    let mut v = Validation::new();
    for format in [BodyFormat::Json, BodyFormat::Ndjson] {
        for relay in [false, true] {
            let limits = ValidateLimits::default();
            if validate(data, format, &limits, ValidateMode { relay }, &mut v).is_ok() {
                assert!(v
                    .accepted()
                    .iter()
                    .all(|r| r.start < r.end && r.end <= data.len()));
                assert!(v.accepted().len() + v.rejected().len() <= limits.max_events_per_request);
            }
        }
    }
}

/// Flips, inserts or deletes bytes of a seed.
fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for &(at, kind, byte) in edits {
        let at = if out.is_empty() {
            0
        } else {
            at % (out.len() + 1)
        };
        match kind % 3 {
            0 if at < out.len() => out[at] ^= byte | 1,
            1 => out.insert(at, byte),
            _ if at < out.len() => {
                out.remove(at);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_seed_corpus_runs_through_every_target() {
    for seed in corpus("http") {
        http_target(&seed);
    }
    for seed in corpus("gzip") {
        gzip_target(&seed);
    }
    for seed in corpus("events") {
        events_target(&seed);
    }
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn http_parser_survives_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        http_target(&data);
    }

    #[test]
    fn http_parser_survives_mutated_requests(seed in 0usize..6, e in edits()) {
        let seeds = corpus("http");
        http_target(&mutate(&seeds[seed % seeds.len()], &e));
    }

    #[test]
    fn chunked_bodies_round_trip(data in prop::collection::vec(any::<u8>(), 0..4096), sizes in prop::collection::vec(1usize..512, 1..16)) {
        let mut wire = Vec::new();
        let mut at = 0;
        for s in sizes.iter().cycle() {
            if at >= data.len() { break; }
            let end = (at + s).min(data.len());
            wire.extend_from_slice(format!("{:x}\r\n", end - at).as_bytes());
            wire.extend_from_slice(&data[at..end]);
            wire.extend_from_slice(b"\r\n");
            at = end;
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let progress = d.feed(&wire, &mut out, LIMITS.max_body_bytes).unwrap();
        prop_assert_eq!(progress, ChunkProgress::Done(wire.len()));
        prop_assert_eq!(out, data);
    }

    #[test]
    fn gzip_decoder_survives_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        gzip_target(&data);
    }

    #[test]
    fn gzip_decoder_survives_mutated_streams(seed in 0usize..4, e in edits()) {
        let seeds = corpus("gzip");
        gzip_target(&mutate(&seeds[seed % seeds.len()], &e));
    }

    #[test]
    fn validator_survives_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        events_target(&data);
    }

    #[test]
    fn validator_survives_mutated_events(seed in 0usize..6, e in edits()) {
        let seeds = corpus("events");
        events_target(&mutate(&seeds[seed % seeds.len()], &e));
    }
}
