//! What the decoders' tests share: hex literals as the reference documents write them, a
//! framer run over a whole input, a frame's named field.
#![allow(clippy::unwrap_used)]

use crate::decode::frame::{Field, Frame, Framer};

/// "68 04 07 00" → the bytes.
pub fn h(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Every frame `framer` finds in `bytes` fed at once from offset 0, flushed at the end.
pub fn run_whole(framer: &mut impl Framer, bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    framer.feed(0, bytes, &mut out);
    framer.flush(&mut out);
    out
}

/// The top-level field called `name`; the test fails if there is none.
pub fn field<'a>(frame: &'a Frame, name: &str) -> &'a Field {
    frame.fields().iter().find(|f| f.name == name).unwrap()
}
