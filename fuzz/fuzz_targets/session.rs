//! Arbitrary traffic in both directions through the whole session (framers, diagnosis,
//! byte window): never panics.
#![no_main]

use std::time::Duration;

use hsmon::event::{Event, TimedEvent};
use hsmon::session::Session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = Session::new("fuzz", 1 << 20);
    for (i, chunk) in data.chunks(37).enumerate() {
        let event = if chunk.first().is_some_and(|b| b & 1 == 1) {
            Event::Tx(chunk.to_vec())
        } else {
            Event::Rx(chunk.to_vec())
        };
        s.ingest(&TimedEvent::new(Duration::from_millis(i as u64), event));
    }
    s.flush_decoders();
});
