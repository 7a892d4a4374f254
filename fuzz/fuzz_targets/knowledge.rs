//! Knowledge files and config files as untrusted text: errors, never panics.
#![no_main]

use hsmon::config::Config;
use hsmon::diagnose::knowledge::Knowledge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(k) = Knowledge::parse(text, "fuzz.toml") {
            let _ = k.explain("68");
        }
        let _ = Config::parse(text, "fuzz.toml");
    }
});
