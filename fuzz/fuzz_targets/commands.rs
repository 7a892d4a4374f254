//! What a user or a script types: headless control lines (stdin), the send line in every
//! mode, `hsmon explain` queries, baud/format/flow words, and config files down to the key
//! map and line settings. Errors, never panics; accepted hex gives the bytes it names.
#![no_main]

use std::sync::OnceLock;

use hsmon::cli::OutputFormat;
use hsmon::config::Config;
use hsmon::diagnose::knowledge::Knowledge;
use hsmon::ui::sendline::{self, LineEnding, SendMode};
use libfuzzer_sys::fuzz_target;

fn knowledge() -> &'static Knowledge {
    static K: OnceLock<Knowledge> = OnceLock::new();
    K.get_or_init(|| Knowledge::embedded().expect("the embedded knowledge base parses"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(64) {
        let _ = hsmon::headless::parse_control(line);
        if let Ok(bytes) = sendline::parse_hex(line) {
            // Two hex digits a byte: never more bytes than digits allow.
            assert!(bytes.len() * 2 <= line.len());
        }
        for mode in [SendMode::Text, SendMode::Hex] {
            for ending in [LineEnding::None, LineEnding::CrLf] {
                let _ = sendline::parse(line, mode, ending);
            }
        }
        let _ = line.parse::<hsmon::event::Baud>();
        let _ = line.parse::<hsmon::event::FrameFormat>();
        let _ = line.parse::<hsmon::event::FlowControl>();
        let _ = hsmon::decode::iso7816::sw::StatusWord::parse(line);
        let _ = hsmon::decode::pcsc_codes::explain(line);
        let _ = knowledge().explain(line);
    }
    let queries: Vec<String> = text
        .split_whitespace()
        .take(8)
        .map(str::to_string)
        .collect();
    for format in [OutputFormat::Text, OutputFormat::Json] {
        if let Ok(out) = hsmon::offline::explain(&queries, knowledge(), format) {
            let _ = out.len();
        }
    }
    if let Ok(c) = Config::parse(&text, "fuzz.toml") {
        let _ = c.keymap("fuzz.toml");
        let _ = c.line_settings("fuzz.toml");
        let _ = c.window_bytes();
    }
});
