//! MediaTek BootROM/preloader start handshake: the host's `A0 0A 50 05`, the device's
//! complement answer `5F F5 AF FA`, an `A0` echoed back (device not waiting for the start
//! command), and the preloader's `READY` with the host's mode answer (`METAMETA`, …).
//!
//! Facts: mtkclient (github.com/bkerler/mtkclient) (mtkclient `Port.py`, `meta.py`; osmocom MT6227 trace).
//!
//! No "unknown opcode" here: every element is a fixed byte sequence (the start bytes, their
//! complements, `READY`, a mode word), so the sequence is the structure; the BROM commands
//! after the handshake carry no framing or check to tell them from data.

use wide::u8x16;

use super::frame::{Field, Frame, FrameStatus, Framer, Protocol, StreamOffset};
use super::stream::{
    Lanes, ParseStep, Streamer, WindowParser, find_starts, framer_from_streamer, lanes_eq, span,
};

/// What the host sends, one byte at a time.
const START_SEQUENCE: [u8; 4] = [0xA0, 0x0A, 0x50, 0x05];
/// What a BROM answers: the bitwise complement of each byte.
const ANSWER: [u8; 4] = [0x5F, 0xF5, 0xAF, 0xFA];
/// The preloader's greeting in META mode.
const READY: &[u8] = b"READY";
/// Host answers to READY (mtkclient `meta.py`).
const MODE_REQUESTS: [&[u8]; 3] = [b"METAMETA", b"FACTFACT", b"FASTBOOT"];
/// First bytes of everything this framer recognises.
const CANDIDATES: [u8; 5] = [0xA0, 0x5F, b'R', b'M', b'F'];
/// A run of repeated A0 is reported in pieces of at most this many bytes.
const MAX_RUN: usize = 64;

/// Streaming MediaTek handshake framer: kinds "sync" (host start sequence), "reply" (device
/// complement answer), "echo" (A0 repeated), "ready" and "mode". Pending input ≤ 68 bytes.
pub struct MtkBromFramer {
    streamer: Streamer<MtkParser>,
}

impl MtkBromFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        MtkBromFramer {
            streamer: Streamer::new(MtkParser),
        }
    }
}

impl Default for MtkBromFramer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(MtkBromFramer);

/// [`is_start`] for sixteen positions at a time (see [`find_starts`]): each start is a byte
/// pair, and both bytes are tested in the lanes.
fn start_hits(lanes: &Lanes<'_>) -> u8x16 {
    let (first, second) = (lanes.at(0), lanes.at(1));
    let second_e = lanes_eq(second, b'E');
    (lanes_eq(first, 0xA0) & (lanes_eq(second, 0xA0) | lanes_eq(second, 0x0A)))
        | (lanes_eq(first, 0x5F) & lanes_eq(second, 0xF5))
        | ((lanes_eq(first, b'R') | lanes_eq(first, b'M')) & second_e)
        | (lanes_eq(first, b'F') & lanes_eq(second, b'A'))
}

/// Can a handshake element start at `rest[0]`? (A candidate byte alone counts: the next one
/// has not arrived.)
fn is_start(rest: &[u8]) -> bool {
    match rest {
        [only] => CANDIDATES.contains(only),
        _ => matches!(
            rest,
            [0xA0, 0xA0 | 0x0A, ..] | [0x5F, 0xF5, ..] | [b'R' | b'M', b'E', ..] | [b'F', b'A', ..]
        ),
    }
}

struct MtkParser;

impl WindowParser for MtkParser {
    const PROTOCOL: Protocol = Protocol::MtkBrom;
    const MAX_WINDOW: usize = MAX_RUN + START_SEQUENCE.len();

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        find_starts(bytes, 1, start_hits, is_start)
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        let window = window.get(..Self::MAX_WINDOW).unwrap_or(window);
        match decide(at, window, at_end) {
            Decision::Need => ParseStep::Need,
            Decision::Skip => ParseStep::Skip(1),
            Decision::Frame(frame) => {
                let consumed = (frame.span.end - frame.span.start) as usize;
                ParseStep::Frame { frame, consumed }
            }
        }
    }
}

enum Decision {
    Need,
    Skip,
    Frame(Frame),
}

/// Decode the handshake element at the start of `bytes` (first byte at stream offset
/// `base`), treating the end of `bytes` as the end of the stream.
pub fn parse(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    let window = bytes.get(..MtkParser::MAX_WINDOW).unwrap_or(bytes);
    match decide(base, window, true) {
        Decision::Frame(frame) => Some(frame),
        _ => None,
    }
}

/// How many leading bytes of `bytes` match `pattern`.
fn matching_prefix(bytes: &[u8], pattern: &[u8]) -> usize {
    bytes
        .iter()
        .zip(pattern)
        .take_while(|(a, b)| a == b)
        .count()
}

fn decide(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    match window.first() {
        Some(0xA0) => start_sequence(at, window, at_end),
        Some(0x5F) => answer(at, window, at_end),
        Some(b'R') => text(at, window, at_end, &[READY]),
        Some(b'M' | b'F') => text(at, window, at_end, &MODE_REQUESTS),
        _ => Decision::Skip,
    }
}

fn start_sequence(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    let run = window
        .iter()
        .take_while(|&&b| b == 0xA0)
        .count()
        .min(MAX_RUN);
    if run == window.len() && run < MAX_RUN {
        return if at_end {
            echo(at, run)
        } else {
            Decision::Need
        };
    }
    let after = window.get(run..).unwrap_or_default();
    let matched = matching_prefix(after, START_SEQUENCE.get(1..).unwrap_or_default());
    if matched == 3 {
        return Decision::Frame(sync_frame(at, run, 3, FrameStatus::Ok));
    }
    if matched == after.len() && !at_end {
        // The sequence may still complete.
        return Decision::Need;
    }
    if matched == 0 {
        return echo(at, run);
    }
    Decision::Frame(sync_frame(at, run, matched, FrameStatus::Truncated))
}

/// A run of A0 that is not followed by the rest of the start sequence.
fn echo(at: StreamOffset, run: usize) -> Decision {
    // A single A0 is too common in other data to mean anything on its own.
    if run < 2 {
        return Decision::Skip;
    }
    Decision::Frame(Frame::new(
        Protocol::MtkBrom,
        span(at, 0, run),
        "echo",
        FrameStatus::Ok,
        format!(
            "A0 × {run}: if the device sent this, it echoes the start byte instead of answering 5F — it is not waiting for the BROM start command; if the host sent it, no 5F came back"
        ),
        vec![Field::new(
            "A0",
            format!("start byte, {run} times"),
            span(at, 0, run),
        )],
    ))
}

fn sync_frame(at: StreamOffset, run: usize, matched_after_a0: usize, status: FrameStatus) -> Frame {
    let len = run + matched_after_a0;
    let mut fields = Vec::new();
    if run > 1 {
        fields.push(Field::new(
            "retries",
            format!("A0 sent {} more time(s) before an answer", run - 1),
            span(at, 0, run - 1),
        ));
    }
    for (i, &byte) in START_SEQUENCE.iter().enumerate().take(matched_after_a0 + 1) {
        let answer = !byte;
        fields.push(Field::new(
            format!("byte {}", i + 1),
            format!("0x{byte:02X} (BROM answers 0x{answer:02X})"),
            span(at, run - 1 + i, 1),
        ));
    }
    let summary = if status.is_ok() {
        if run > 1 {
            format!("BROM start sequence A0 0A 50 05 (A0 sent {run} times before the answer)")
        } else {
            "BROM start sequence A0 0A 50 05".to_string()
        }
    } else {
        format!(
            "BROM start sequence stopped after {} of 4 bytes (the host likely restarted after a wrong answer)",
            matched_after_a0 + 1
        )
    };
    Frame::new(
        Protocol::MtkBrom,
        span(at, 0, len),
        "sync",
        status,
        summary,
        fields,
    )
}

fn answer(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    let matched = matching_prefix(window, &ANSWER);
    if matched == ANSWER.len() {
        return Decision::Frame(answer_frame(at, matched, FrameStatus::Ok));
    }
    if matched == window.len() && !at_end {
        return Decision::Need;
    }
    // "5F" alone is an ASCII '_'; two matching bytes in a row are needed to mean anything.
    if matched < 2 {
        return Decision::Skip;
    }
    Decision::Frame(answer_frame(at, matched, FrameStatus::Truncated))
}

fn answer_frame(at: StreamOffset, matched: usize, status: FrameStatus) -> Frame {
    let fields = ANSWER
        .iter()
        .zip(START_SEQUENCE)
        .take(matched)
        .enumerate()
        .map(|(i, (&reply, sent))| {
            Field::new(
                format!("byte {}", i + 1),
                format!("0x{reply:02X} = complement of 0x{sent:02X}"),
                span(at, i, 1),
            )
        })
        .collect();
    let summary = if status.is_ok() {
        "BROM handshake answer 5F F5 AF FA: the device is in BROM (or preloader) download mode"
            .to_string()
    } else {
        format!("BROM handshake answer stopped after {matched} of 4 bytes")
    };
    Frame::new(
        Protocol::MtkBrom,
        span(at, 0, matched),
        "reply",
        status,
        summary,
        fields,
    )
}

fn text(at: StreamOffset, window: &[u8], at_end: bool, words: &[&[u8]]) -> Decision {
    let mut may_complete = false;
    for &word in words {
        let matched = matching_prefix(window, word);
        if matched == word.len() {
            let (kind, summary, field) = if word == READY {
                (
                    "ready",
                    "READY: a MediaTek preloader offers META/factory mode".to_string(),
                    "preloader greeting",
                )
            } else {
                (
                    "mode",
                    format!(
                        "{}: host asks the preloader for a mode",
                        String::from_utf8_lossy(word)
                    ),
                    "mode request",
                )
            };
            return Decision::Frame(Frame::new(
                Protocol::MtkBrom,
                span(at, 0, word.len()),
                kind,
                FrameStatus::Ok,
                summary,
                vec![Field::new(
                    field,
                    String::from_utf8_lossy(word),
                    span(at, 0, word.len()),
                )],
            ));
        }
        may_complete |= matched == window.len();
    }
    if may_complete && !at_end {
        Decision::Need
    } else {
        Decision::Skip
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        let mut framer = MtkBromFramer::new();
        let mut out = Vec::new();
        framer.feed(0, bytes, &mut out);
        framer.flush(&mut out);
        out
    }

    /// mtkclient (github.com/bkerler/mtkclient): the host sequence and the complement answer.
    #[test]
    fn handshake_both_directions() {
        let host = run(&[0xA0, 0x0A, 0x50, 0x05]);
        assert_eq!(host.len(), 1);
        assert_eq!((host[0].kind, &host[0].status), ("sync", &FrameStatus::Ok));
        assert_eq!(host[0].fields()[1].value, "0x0A (BROM answers 0xF5)");
        let device = run(&[0x5F, 0xF5, 0xAF, 0xFA]);
        assert_eq!(
            (device[0].kind, &device[0].status),
            ("reply", &FrameStatus::Ok)
        );
        assert_eq!(device[0].span, 0..4);
    }

    #[test]
    fn repeated_a0_before_answer_is_one_sync() {
        // SP Flash Tool trace: A0 repeated until 5F arrived, then 0A 50 05.
        let frames = run(&[0xA0, 0xA0, 0xA0, 0x0A, 0x50, 0x05]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].span, 0..6);
        assert!(frames[0].summary().contains("A0 sent 3 times"));
        assert_eq!(frames[0].fields()[0].span, 0..2);
    }

    #[test]
    fn echoed_a0_means_not_in_brom() {
        let frames = run(&[0xA0, 0xA0, 0xA0, 0xA0, 0xA0, b'h']);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].kind, "echo");
        assert_eq!(frames[0].span, 0..5);
        assert!(
            frames[0]
                .summary()
                .contains("not waiting for the BROM start command")
        );
        // A single A0 is not reported.
        assert!(run(&[0x12, 0xA0, 0x13]).is_empty());
    }

    #[test]
    fn restarted_sequence_and_partial_answer() {
        // Host restarts after the second byte: the first try is cut short, the second completes.
        let frames = run(&[0xA0, 0x0A, 0xA0, 0x0A, 0x50, 0x05]);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            (frames[0].span.clone(), &frames[0].status),
            (0..2, &FrameStatus::Truncated)
        );
        assert_eq!(
            (frames[1].span.clone(), &frames[1].status),
            (2..6, &FrameStatus::Ok)
        );
        let frames = run(&[0x5F, 0xF5, 0x00]);
        assert_eq!(
            (frames[0].kind, &frames[0].status),
            ("reply", &FrameStatus::Truncated)
        );
        assert!(run(b"a_b").is_empty());
    }

    #[test]
    fn preloader_text() {
        let frames = run(b"xxREADYyyMETAMETA");
        let kinds: Vec<_> = frames.iter().map(|f| (f.kind, f.span.clone())).collect();
        assert_eq!(kinds, vec![("ready", 2..7), ("mode", 9..17)]);
        assert!(run(b"REA").is_empty());
    }

    #[test]
    fn long_runs_are_bounded() {
        let frames = run(&[0xA0; 200]);
        assert!(
            frames
                .iter()
                .all(|f| f.span.end - f.span.start <= MAX_RUN as u64)
        );
        assert_eq!(
            frames
                .iter()
                .map(|f| f.span.end - f.span.start)
                .sum::<u64>(),
            200
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        #[test]
        fn split_feeding_equals_whole(bytes in prop::collection::vec(prop::sample::select(vec![0xA0u8, 0x0A, 0x50, 0x05, 0x5F, 0xF5, 0xAF, 0xFA, b'R', b'E', b'A', b'D', b'Y']), 0..300), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut framer = MtkBromFramer::new();
            let mut split = Vec::new();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut start = 0;
            for cut in cuts {
                framer.feed(start as u64, &bytes[start..cut], &mut split);
                start = cut;
            }
            framer.feed(start as u64, &bytes[start..], &mut split);
            framer.flush(&mut split);
            prop_assert_eq!(split, run(&bytes));
        }
    }

    proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn start_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(&[0xA0, 0x0A, 0x5F, 0xF5, b'R', b'M', b'E', b'F', b'A', 0xA1])) {
            crate::decode::stream::tests::assert_same_starts(&bytes, 1, start_hits, is_start);
        }
    }
}
