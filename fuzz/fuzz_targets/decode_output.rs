//! `hsmon decode FILE` over arbitrary bytes: the whole pipeline (every framer, the session,
//! the diagnosis) and both printers. Never panics, and the text it prints holds no control
//! character or escape sequence from the input, only line ends.
#![no_main]

use std::sync::{Arc, OnceLock};

use hsmon::cli::OutputFormat;
use hsmon::diagnose::knowledge::Knowledge;
use libfuzzer_sys::fuzz_target;

fn knowledge() -> Arc<Knowledge> {
    static K: OnceLock<Arc<Knowledge>> = OnceLock::new();
    K.get_or_init(|| Arc::new(Knowledge::embedded().expect("the embedded knowledge base parses")))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let (_, text) = hsmon::offline::decode(data, None, knowledge(), OutputFormat::Text);
    for line in text.lines() {
        assert!(
            !line.chars().any(hsmon::sanitize::is_unsafe),
            "unsafe character in {line:?}"
        );
    }
    let (_, json) = hsmon::offline::decode(data, None, knowledge(), OutputFormat::Json);
    for line in json.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line:?}"
        );
    }
    if let Some((&p, rest)) = data.split_first() {
        let protocol =
            hsmon::decode::Protocol::ALL[p as usize % hsmon::decode::Protocol::ALL.len()];
        let _ = hsmon::offline::decode(rest, Some(protocol), knowledge(), OutputFormat::Text);
    }
});
