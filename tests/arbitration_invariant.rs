//! The arbitration invariant over arbitrary traffic: whatever the bytes and the read splits,
//! no two reported frames of one direction overlap where one outranks the other (the
//! stronger claims the bytes), no token is reported without context in a one-way stream,
//! and split reads report what one read does. Bytes are drawn from the values framers
//! start and end on (68, 16, 10, E5, C0, 7F, 79, 1F, 3B, FE, text, line ends), so candidates
//! overlap all the time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use hsmon::decode::Rank;
use hsmon::event::{Event, TimedEvent};
use hsmon::session::Session;
use proptest::prelude::*;

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0x68u8, 0x16, 0x10, 0xE5, 0xC0, 0x7F, 0x79, 0x1F, 0x3B, 0xFE, 0x04, 0x00, 0x03,
            0x0A, 0x0D, 0xA0, 0x5F,
        ]),
        3 => prop::sample::select(b"abcdefghij klmnop.:0123456789".to_vec()),
        1 => any::<u8>(),
    ]
}

/// (frame start, end, protocol id, kind, rank) of every reported Rx frame.
fn reported(reads: &[Vec<u8>]) -> Vec<(u64, u64, &'static str, &'static str, Rank)> {
    let mut s = Session::new("invariant", 1 << 20);
    for r in reads {
        s.ingest(&TimedEvent::new(Duration::ZERO, Event::Rx(r.clone())));
    }
    s.flush_decoders();
    s.frames()
        .iter()
        .map(|f| {
            (
                f.frame.span.start,
                f.frame.span.end,
                f.frame.protocol.id(),
                f.frame.kind,
                f.frame.evidence().rank(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_stronger_frame_claims_the_bytes(
        bytes in prop::collection::vec(byte(), 1..400),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let whole = reported(std::slice::from_ref(&bytes));
        for (i, a) in whole.iter().enumerate() {
            for b in whole.iter().skip(i + 1) {
                let overlap = a.0 < b.1 && b.0 < a.1;
                prop_assert!(
                    !overlap || a.4 == b.4,
                    "{a:?} and {b:?} overlap and one outranks the other"
                );
            }
            // Received bytes alone give a token no context but a strong frame of its
            // protocol; with none reported, no token is either.
            if a.4.is_token() && a.2 != "iso7816-3" {
                prop_assert!(
                    whole.iter().any(|o| o.2 == a.2 && !o.4.is_token()),
                    "token {a:?} reported without context in {whole:?}"
                );
            }
        }
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        at.extend([0, bytes.len()]);
        at.sort_unstable();
        at.dedup();
        let reads: Vec<Vec<u8>> = at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect();
        let mut split = reported(&reads);
        let mut one = whole.clone();
        split.sort_by_key(|f| (f.0, f.1, f.2));
        one.sort_by_key(|f| (f.0, f.1, f.2));
        prop_assert_eq!(one, split, "split reads report other frames");
    }
}
