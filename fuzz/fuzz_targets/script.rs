//! APDU script parser (`card::script`): never panics on any text, errors point at a line of
//! the input, and an accepted script written back with `to_text` parses to the same steps.
#![no_main]

use hsmon::card::script::{Script, Step};
use libfuzzer_sys::fuzz_target;

fn shape(steps: &[Step]) -> Vec<(u8, Vec<u8>, Option<String>)> {
    steps
        .iter()
        .map(|s| match s {
            Step::Apdu { bytes, expect, .. } => {
                (0, bytes.clone(), expect.as_ref().map(|e| e.to_string()))
            }
            Step::Reset { .. } => (1, Vec::new(), None),
            Step::Exit { .. } => (2, Vec::new(), None),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Script::parse(&text) {
        Ok(script) => {
            let again = Script::parse(&script.to_text());
            assert!(again.is_ok(), "to_text output does not parse: {again:?}");
            if let Ok(again) = again {
                assert_eq!(shape(&again.steps), shape(&script.steps));
            }
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line() >= 1 && e.line() <= lines, "{e} (of {lines} lines)");
            let _ = e.hint();
        }
    }
});
