//! Writes the reference batch (`batch100.json`) as one OTLP/HTTP logs
//! request body, protobuf (or OTLP/JSON with `--json`), for load runs:
//!
//!     cargo run --release -p helios-benches --example otlp_body -- \
//!         ../shared/bench/batch100.json /tmp/otlp100.pb [--json]

#[path = "../support/otlp_reference.rs"]
mod otlp_reference;

use prost::Message as _;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: otlp_body BATCH_JSON OUTPUT [--json]".into());
    };
    let batch = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
    let request = otlp_reference::otlp_request(&batch);
    let body = if rest.iter().any(|a| a == "--json") {
        otlp_reference::otlp_json(&request)
    } else {
        request.encode_to_vec()
    };
    std::fs::write(output, &body).map_err(|e| format!("writing {output}: {e}"))?;
    eprintln!(
        "{} records, {} bytes -> {output}",
        request.resource_logs[0].scope_logs[0].log_records.len(),
        body.len()
    );
    Ok(())
}
