//! A review with a value nested 100,000 deep in a field nobody reads (as in harness-guard's
//! `tests/hostile.rs`), read by the reader named on the command line, one reader per process: a
//! reader that recurses while skipping aborts the whole process (stack overflow), which a server
//! must never do on a request body. serde_json skips it without recursion and reads the rest.
//!
//!   cargo run --release --example deep_nesting -- serde_json|simd-json|sonic-rs

use json_readers::{Review, fixture};

fn main() {
    let reader = std::env::args().nth(1).unwrap_or_else(|| "serde_json".into());
    let body = String::from_utf8(fixture("agentharness-create.validating.json")).unwrap();
    let depth = 100_000;
    let deep = format!(r#"{{"unread":{}0{},"#, "[".repeat(depth), "]".repeat(depth));
    let body = body.replacen('{', &deep, 1);
    let read = match reader.as_str() {
        "serde_json" => serde_json::from_str::<Review>(&body).map(|_| ()).map_err(|e| e.to_string()),
        "simd-json" => {
            simd_json::serde::from_slice::<Review>(&mut body.into_bytes()).map(|_| ()).map_err(|e| e.to_string())
        }
        "sonic-rs" => sonic_rs::from_str::<Review>(&body).map(|_| ()).map_err(|e| e.to_string()),
        other => panic!("unknown reader {other}"),
    };
    println!("{reader}: {read:?}");
}
