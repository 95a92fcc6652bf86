//! Request bytes: a [`RequestTemplate`] built once per run, and a per
//! connection [`Renderer`] for `--ids-out` runs, which writes each batch into
//! a reused buffer with fresh ids patched in.
//!
//! Without ids every request is identical, so the whole pipelined batch is
//! rendered once ([`RequestTemplate::render_fixed`]) and only ever sliced.

use std::io::Write as _;
use std::sync::Arc;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::body::Payload;
use crate::config::Target;
use crate::object_id::{IdMinter, ID_HEX_LEN};

/// One id as hex text.
pub type IdHex = [u8; ID_HEX_LEN];

/// Everything about a request except per-request ids.
#[derive(Debug)]
pub struct RequestTemplate {
    /// Request line and headers up to (not including) Content-Length.
    head_prefix: Vec<u8>,
    payload: Payload,
    gzip: bool,
}

impl RequestTemplate {
    /// Builds the request head for `target`: the POST line, `Host` and
    /// `Content-Type` unless `headers` sets them, `Content-Encoding: gzip` with
    /// `gzip`, then `headers`.
    pub fn new(target: &Target, payload: Payload, gzip: bool, headers: &[String]) -> Self {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"POST ");
        head.extend_from_slice(target.path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        let has = |name: &str| {
            headers.iter().any(|h| {
                h.split_once(':')
                    .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
            })
        };
        if !has("host") {
            head.extend_from_slice(format!("Host: {}\r\n", target.authority).as_bytes());
        }
        if !has("content-type") {
            head.extend_from_slice(
                format!("Content-Type: {}\r\n", payload.content_type).as_bytes(),
            );
        }
        if gzip {
            head.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        for h in headers {
            head.extend_from_slice(h.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        RequestTemplate {
            head_prefix: head,
            payload,
            gzip,
        }
    }

    /// Events in each request body.
    pub fn events(&self) -> usize {
        self.payload.events
    }

    /// Whether the body has `_id` slots, so requests must be rendered per batch
    /// by a [`Renderer`] rather than with [`RequestTemplate::render_fixed`].
    pub fn mints_ids(&self) -> bool {
        !self.payload.id_offsets.is_empty()
    }

    /// `depth` copies of the one fixed request (the body compressed once).
    pub fn render_fixed(&self, depth: usize) -> Vec<u8> {
        assert!(
            !self.mints_ids(),
            "a request with id slots is rendered per request"
        );
        let mut one = Vec::new();
        if self.gzip {
            let mut gz = GzipEncoder::new();
            let mut compressed = Vec::new();
            gz.encode(&self.payload.body, &mut compressed);
            self.write_request(&compressed, &mut one);
        } else {
            self.write_request(&self.payload.body, &mut one);
        }
        one.repeat(depth)
    }

    /// The uncompressed body of one request, as rendered with no ids.
    pub fn body(&self) -> &[u8] {
        &self.payload.body
    }

    fn write_request(&self, body: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head_prefix);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
    }
}

/// Renders batches of requests with fresh ids, reusing every buffer.
pub struct Renderer {
    template: Arc<RequestTemplate>,
    body: Vec<u8>,
    compressed: Vec<u8>,
    gzip: Option<GzipEncoder>,
    /// Ids of the last rendered batch, request-major.
    ids: Vec<IdHex>,
}

impl Renderer {
    /// A renderer over `template`; panics unless the template mints ids.
    pub fn new(template: Arc<RequestTemplate>) -> Self {
        assert!(template.mints_ids());
        Renderer {
            body: template.payload.body.clone(),
            gzip: template.gzip.then(GzipEncoder::new),
            template,
            compressed: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// Clears `out` and writes `n` requests into it, each with new ids
    /// from `minter` (one per thread, so ids are unique across connections).
    pub fn render_batch(&mut self, n: usize, minter: &mut IdMinter, out: &mut Vec<u8>) {
        out.clear();
        self.ids.clear();
        for _ in 0..n {
            for &offset in &self.template.payload.id_offsets {
                let mut id = [0u8; ID_HEX_LEN];
                minter.mint_into(&mut id);
                self.body[offset..offset + ID_HEX_LEN].copy_from_slice(&id);
                self.ids.push(id);
            }
            match &mut self.gzip {
                Some(gz) => {
                    gz.encode(&self.body, &mut self.compressed);
                    self.template.write_request(&self.compressed, out);
                }
                None => self.template.write_request(&self.body, out),
            }
        }
    }

    /// Ids of request `index` of the last batch, in event order.
    pub fn ids_of(&self, index: usize) -> &[IdHex] {
        let per = self.template.payload.id_offsets.len();
        &self.ids[index * per..(index + 1) * per]
    }
}

/// Gzip (RFC 1952) around a reused raw-deflate stream, so per-request
/// compression allocates nothing once warm.
pub struct GzipEncoder {
    deflate: Compress,
}

/// Header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl GzipEncoder {
    /// An encoder at the default compression level.
    pub fn new() -> Self {
        GzipEncoder {
            deflate: Compress::new(Compression::default(), false),
        }
    }

    /// Replaces `out` with the gzip member of `input`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&GZIP_HEADER);
        self.deflate.reset();
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() / 2 + 64);
            }
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(&input[consumed..], out, FlushCompress::Finish)
                .expect("deflate of an in-memory buffer cannot fail");
            consumed += (self.deflate.total_in() - before) as usize;
            if status == Status::StreamEnd {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    }
}

impl Default for GzipEncoder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::synthesize;
    use crate::config::parse_url;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn split_requests(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            out.push((head, bytes[end..end + len].to_vec()));
            bytes = &bytes[end + len..];
        }
        out
    }

    #[test]
    fn gzip_round_trips_every_size() {
        let mut gz = GzipEncoder::new();
        let mut out = Vec::new();
        for len in [0usize, 1, 300, 70_000] {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            gz.encode(&input, &mut out);
            assert_eq!(gunzip(&out), input);
        }
    }

    #[test]
    fn fixed_batch_is_depth_identical_requests() {
        let target = parse_url("http://127.0.0.1:9/v1/events").unwrap();
        let t = RequestTemplate::new(
            &target,
            synthesize(2, 100, false, false),
            true,
            &["X-Key: k".into()],
        );
        let reqs = split_requests(&t.render_fixed(3));
        assert_eq!(reqs.len(), 3);
        for (head, body) in &reqs {
            assert!(head.starts_with("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
            assert!(head.contains("Content-Encoding: gzip\r\nX-Key: k\r\n"));
            assert_eq!(gunzip(body), t.body());
        }
    }

    #[test]
    fn rendered_batches_carry_fresh_ids() {
        let target = parse_url("http://127.0.0.1:9/").unwrap();
        let t = RequestTemplate::new(&target, synthesize(2, 100, false, true), false, &[]);
        let mut r = Renderer::new(Arc::new(t));
        let mut minter = IdMinter::new(1, 2, 3);
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            r.render_batch(2, &mut minter, &mut out);
            for (i, (_, body)) in split_requests(&out).iter().enumerate() {
                let v: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
                for (e, id) in v.iter().zip(r.ids_of(i)) {
                    assert_eq!(e["_id"].as_str().unwrap().as_bytes(), id);
                    assert!(seen.insert(*id));
                }
            }
        }
        assert_eq!(seen.len(), 12);
    }
}
