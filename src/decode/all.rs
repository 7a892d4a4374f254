//! The line-protocol framers as one set (`all_framers`, `decode_all`); the streaming machinery
//! they are built on lives in `stream.rs`.

use super::dlt645::Dlt645Framer;
use super::esp_slip::EspSlipFramer;
use super::frame::{Frame, Framer, StreamOffset};
use super::iec101::Iec101Framer;
use super::iec104::Iec104Framer;
use super::mbus::MbusFramer;
use super::mtk_brom::MtkBromFramer;
use super::stm32_boot::Stm32BootFramer;
use super::text::TextFramer;
use super::tls::{HttpFramer, TlsFramer};

/// One fresh instance of every line-protocol framer in this folder, in `Protocol::ALL` order.
///
/// Why: a session runs all of them over each direction and lets the classifier pick; the
/// ISO 7816 line framer lives elsewhere and is added by the caller.
pub fn all_framers() -> Vec<Box<dyn Framer>> {
    vec![
        Box::new(MbusFramer::new()),
        Box::new(Iec101Framer::new()),
        Box::new(Iec104Framer::new()),
        Box::new(Dlt645Framer::new()),
        Box::new(MtkBromFramer::new()),
        Box::new(Stm32BootFramer::new()),
        Box::new(EspSlipFramer::new()),
        Box::new(TlsFramer::new()),
        Box::new(HttpFramer::new()),
        Box::new(TextFramer::new()),
    ]
}

/// Run every framer of [`all_framers`] over `bytes` (whose first byte is at stream offset
/// `base`) as one complete stream, flush them, and return all frames sorted by span start
/// (ties: shorter span first, then protocol order).
pub fn decode_all(base: StreamOffset, bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for mut framer in all_framers() {
        framer.feed(base, bytes, &mut frames);
        framer.flush(&mut frames);
    }
    frames.sort_by(|a, b| {
        (a.span.start, a.span.end, a.protocol).cmp(&(b.span.start, b.span.end, b.protocol))
    });
    frames
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::frame::{FrameStatus, Protocol};
    use crate::decode::stream::{byte_set, find_starts, lanes_between, lanes_eq};
    use proptest::prelude::*;
    use wide::u8x16;

    /// Worked frames from the public protocol documents, with the protocol and kind each
    /// must decode as (Ok).
    fn worked_frames() -> Vec<(Protocol, &'static str, Vec<u8>)> {
        fn h(s: &str) -> Vec<u8> {
            s.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect()
        }
        vec![
            // §1.4 M-Bus
            (Protocol::Mbus, "short", h("10 40 01 41 16")),
            (Protocol::Mbus, "short", h("10 5B 01 5C 16")),
            (Protocol::Mbus, "control", h("68 03 03 68 53 01 50 A4 16")),
            (
                Protocol::Mbus,
                "long",
                h(
                    "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16",
                ),
            ),
            // §2.1 IEC 101
            (Protocol::Iec101, "fixed", h("10 49 01 4A 16")),
            (
                Protocol::Iec101,
                "variable",
                h("68 09 09 68 73 01 64 01 06 01 00 00 14 F4 16"),
            ),
            // §2.2 IEC 104
            (Protocol::Iec104, "u", h("68 04 07 00 00 00")),
            (Protocol::Iec104, "s", h("68 04 01 00 02 00")),
            (
                Protocol::Iec104,
                "i",
                h("68 0E 00 00 00 00 64 01 06 00 01 00 00 00 00 14"),
            ),
            // §3.2 DL/T 645
            (
                Protocol::Dlt645,
                "request",
                h("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16"),
            ),
            (
                Protocol::Dlt645,
                "response",
                h("68 01 00 00 00 00 00 68 91 08 33 33 34 33 89 67 45 33 9F 16"),
            ),
            // §4.1 MediaTek
            (Protocol::MtkBrom, "sync", h("A0 0A 50 05")),
            (Protocol::MtkBrom, "reply", h("5F F5 AF FA")),
            // §5.1 STM32
            (Protocol::Stm32Boot, "command", h("11 EE")),
            // §5.2 ESP
            (
                Protocol::EspSlip,
                "response",
                h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0"),
            ),
            (Protocol::EspSlip, "ohai", h("C0 4F 48 41 49 C0")),
        ]
    }

    #[test]
    fn every_worked_frame_decodes_alone() {
        for (protocol, kind, bytes) in worked_frames() {
            let frames = decode_all(100, &bytes);
            let found = frames.iter().any(|f| {
                f.protocol == protocol
                    && f.kind == kind
                    && f.status == FrameStatus::Ok
                    && f.span == (100..100 + bytes.len() as u64)
            });
            assert!(
                found,
                "{protocol:?} {kind} {:02X?} not found in {frames:#?}",
                bytes
            );
        }
    }

    #[test]
    fn decode_all_sorts_by_span_start() {
        let mut bytes = vec![0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
        bytes.extend_from_slice(b"hello world\n");
        bytes.extend_from_slice(&[0x10, 0x5B, 0x01, 0x5C, 0x16]);
        let frames = decode_all(0, &bytes);
        assert!(
            frames
                .windows(2)
                .all(|w| w[0].span.start <= w[1].span.start)
        );
        assert!(frames.iter().any(|f| f.protocol == Protocol::Text));
        assert!(frames.iter().any(|f| f.protocol == Protocol::Iec104));
        assert!(
            frames
                .iter()
                .any(|f| f.protocol == Protocol::Mbus && f.span.start == 18)
        );
    }

    #[test]
    fn all_framers_are_distinct_protocols() {
        let framers = all_framers();
        let mut protocols: Vec<_> = framers.iter().map(|f| f.protocol()).collect();
        let count = protocols.len();
        protocols.sort();
        protocols.dedup();
        assert_eq!(protocols.len(), count);
        assert_eq!(count, 10);
    }

    /// The first byte equal to one of `needles`, by the lane search.
    fn find_any(bytes: &[u8], needles: &[u8]) -> Option<usize> {
        find_starts(
            bytes,
            0,
            |lanes| {
                let first = lanes.at(0);
                needles
                    .iter()
                    .fold(u8x16::ZERO, |hits, &needle| hits | lanes_eq(first, needle))
            },
            |rest| rest.first().is_some_and(|b| needles.contains(b)),
        )
    }

    /// The first byte strictly between `above` and `below`, by the lane search.
    fn find_between(bytes: &[u8], above: u8, below: u8) -> Option<usize> {
        find_starts(
            bytes,
            0,
            |lanes| lanes_between(lanes.at(0), above, below),
            |r| r.first().is_some_and(|&b| above < b && b < below),
        )
    }

    #[test]
    fn byte_searches_find_the_first_hit() {
        let mut bytes = vec![0u8; 100];
        assert_eq!(find_any(&bytes, &[0x68]), None);
        bytes[70] = 0x68;
        bytes[90] = 0x68;
        assert_eq!(find_any(&bytes, &[0x68]), Some(70));
        assert_eq!(find_any(&bytes[71..], &[0x16, 0x68]), Some(19));
        bytes[3] = 0x17;
        assert_eq!(find_between(&bytes, 0x13, 0x1B), Some(3));
        assert_eq!(find_between(&bytes[4..], 0x13, 0x1B), None);
        let set = byte_set(b"GH");
        assert_eq!(
            find_starts(
                b"xGxGEyH",
                1,
                |lanes| lanes_eq(lanes.at(0), b'G') & lanes_eq(lanes.at(1), b'E'),
                |r| set[usize::from(r[0])] && r.get(1) == Some(&b'E')
            ),
            Some(3)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Worked frames mixed with garbage: every worked frame is still found, whole.
        #[test]
        fn worked_frames_survive_garbage(
            picks in prop::collection::vec((0usize..16, prop::collection::vec(any::<u8>(), 0..40)), 1..8)
        ) {
            let table = worked_frames();
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (index, garbage) in &picks {
                stream.extend_from_slice(garbage);
                // A newline ends any text line the garbage started, as a real stream would.
                stream.push(b'\n');
                let (protocol, kind, bytes) = &table[index % table.len()];
                let start = stream.len() as u64;
                stream.extend_from_slice(bytes);
                expected.push((*protocol, *kind, start..stream.len() as u64));
            }
            let frames = decode_all(0, &stream);
            for (protocol, kind, span) in expected {
                prop_assert!(
                    frames.iter().any(|f| f.protocol == protocol && f.kind == kind && f.span == span),
                    "missing {:?} {} at {:?}", protocol, kind, span
                );
            }
        }

        /// The summary alone (`Frame::summary_once`, what printed records read) is the
        /// summary of the full description, for every protocol, worked frame or garbage.
        #[test]
        fn summary_alone_equals_full_summary(
            picks in prop::collection::vec((0usize..16, prop::collection::vec(any::<u8>(), 0..80)), 1..8)
        ) {
            let table = worked_frames();
            let mut stream = Vec::new();
            for (index, garbage) in &picks {
                stream.extend_from_slice(garbage);
                stream.extend_from_slice(&table[index % table.len()].2);
            }
            for frame in decode_all(0, &stream) {
                let built = frame.built_description().is_some();
                let once = frame.summary_once().into_owned();
                prop_assert_eq!(frame.built_description().is_some(), built, "summary_once keeps nothing");
                prop_assert_eq!(&once, frame.summary(), "{:?} {}", frame.protocol, frame.kind);
            }
        }

        /// The lane searches agree with a plain scan on any input.
        #[test]
        fn searches_agree_with_plain_scans(bytes in prop::collection::vec(any::<u8>(), 0..100), needles in prop::collection::vec(any::<u8>(), 1..4), above in 0u8..=128, below in 0u8..=128) {
            prop_assert_eq!(find_any(&bytes, &needles), bytes.iter().position(|b| needles.contains(b)));
            prop_assert_eq!(find_between(&bytes, above, below), bytes.iter().position(|&b| above < b && b < below));
        }

        #[test]
        fn decode_all_never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..600), base in 0u64..1_000_000) {
            let frames = decode_all(base, &bytes);
            for f in frames {
                prop_assert!(f.span.start >= base && f.span.end <= base + bytes.len() as u64);
                prop_assert!(f.span.start < f.span.end);
            }
        }
    }
}
