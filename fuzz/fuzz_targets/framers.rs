//! Every streaming framer over arbitrary bytes, fed whole and split at a fuzzer-chosen
//! point: no panic, spans inside the input, and the same frames either way.
#![no_main]

use hsmon::decode::{Frame, framers};
use libfuzzer_sys::fuzz_target;

fn run(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut out = Vec::new();
    for mut f in framers() {
        let mut off = 0u64;
        for c in chunks {
            f.feed(off, c, &mut out);
            off += c.len() as u64;
        }
        f.flush(&mut out);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = (cut as usize * rest.len()) / 256;
    let whole = run(&[rest]);
    let split = run(&[&rest[..at], &rest[at..]]);
    for f in &whole {
        assert!(f.span.start <= f.span.end && f.span.end <= rest.len() as u64);
    }
    assert_eq!(whole, split);
});
