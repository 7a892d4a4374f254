//! The line-protocol framers as one set (`all_framers`, `decode_all`), and the shared streaming
//! machinery they are built on (`stream`): pending-input handling, fast start-byte search, spans.

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

/// Shared streaming machinery for the framers in this folder.
///
/// Most protocols here are "find a start byte, then decide from a bounded window whether a
/// frame starts there". [`stream::Streamer`] does the bookkeeping once: it scans each chunk in
/// place (no copy), keeps only the undecided tail (at most one window) between `feed` calls,
/// and skips long record bodies without buffering them.
pub(crate) mod stream {
    use std::ops::Range;

    use super::super::frame::{Field, Frame, FrameStatus, StreamOffset};

    /// What a [`WindowParser`] decided about the position at the start of its window.
    pub(crate) enum Step {
        /// The window is too short to decide; call again with more bytes.
        Need,
        /// No frame starts here; move on by this many bytes (at least 1).
        Skip(usize),
        /// A frame starts here. `consumed` (at least 1) is how far scanning moves on; it may be
        /// shorter than the frame's span when a damaged frame must not hide a real one behind it.
        Frame { frame: Frame, consumed: usize },
        /// A frame whose header is `consumed` bytes long and whose body runs `body` more bytes.
        /// The body is skipped without being buffered; the frame is emitted once it has passed
        /// (or as `Truncated`, cut to the bytes seen, if the stream ends first).
        FrameWithBody {
            frame: Frame,
            consumed: usize,
            body: u64,
        },
    }

    /// A protocol's "does a frame start here?" logic, driven by [`Streamer`].
    ///
    /// Contract (what the split-equals-whole property relies on):
    /// - `parse` decides from the first `MAX_WINDOW` bytes of its window at most, and never
    ///   returns `Need` when the window holds `MAX_WINDOW` bytes or `at_end` is set;
    /// - a decision made on a short window is the one a longer window would give;
    /// - state changes (context such as "an address comes next") happen only when a frame is
    ///   returned, never on `Need`.
    pub(crate) trait WindowParser: Send {
        /// Bytes needed to decide at any position (at least the longest frame header + body
        /// this parser buffers, plus any look-ahead).
        const MAX_WINDOW: usize;
        /// Index in `bytes` (which starts at stream offset `at`) of the first position where a
        /// frame might start, or `None` if there is none.
        fn next_candidate(&self, at: StreamOffset, bytes: &[u8]) -> Option<usize>;
        /// Decide whether a frame starts at `window[0]` (stream offset `at`). `at_end` means no
        /// more bytes will follow (flush).
        fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> Step;
        /// Forget any context.
        fn reset(&mut self) {}
    }

    /// Where a scan over one window stopped.
    enum ScanEnd {
        /// Scanning may continue at this index (at or beyond the scan limit).
        Continue(usize),
        /// The position at this index needs more bytes.
        Need(usize),
    }

    /// Streams bytes through a [`WindowParser`], holding at most one window of pending input.
    pub(crate) struct Streamer<P: WindowParser> {
        pub(crate) parser: P,
        /// Undecided input (starts at a candidate position), shorter than `P::MAX_WINDOW`.
        pending: Vec<u8>,
        pending_at: StreamOffset,
        /// A frame whose body is still being skipped, and how many body bytes remain.
        body: Option<(Frame, u64)>,
        /// Stream offset the next `feed` is expected to start at.
        next_offset: Option<StreamOffset>,
    }

    impl<P: WindowParser> Streamer<P> {
        pub(crate) fn new(parser: P) -> Self {
            Streamer {
                parser,
                pending: Vec::new(),
                pending_at: 0,
                body: None,
                next_offset: None,
            }
        }

        pub(crate) fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>) {
            if bytes.is_empty() {
                return;
            }
            // A gap or overlap in the stream: what was pending can no longer complete.
            if self.next_offset.is_some_and(|next| next != offset) {
                self.flush(out);
            }
            self.next_offset = Some(offset.saturating_add(bytes.len() as u64));

            let mut input = bytes;
            let mut at = offset;
            loop {
                if !self.skip_body(&mut input, &mut at, out) || input.is_empty() {
                    return;
                }
                if self.pending.is_empty() {
                    // Scan the chunk in place.
                    let end = scan(
                        &mut self.parser,
                        &mut self.body,
                        input,
                        at,
                        input.len(),
                        false,
                        false,
                        out,
                    );
                    match end {
                        ScanEnd::Need(pos) => {
                            let tail = input.get(pos..).unwrap_or_default();
                            self.pending.extend_from_slice(tail);
                            self.pending_at = at + pos as u64;
                            return;
                        }
                        ScanEnd::Continue(pos) => {
                            let pos = pos.min(input.len());
                            input = input.get(pos..).unwrap_or_default();
                            at += pos as u64;
                        }
                    }
                } else {
                    // Decide the pending candidates first: give them one window of new bytes.
                    let old_len = self.pending.len();
                    let take = input.len().min(P::MAX_WINDOW);
                    self.pending
                        .extend_from_slice(input.get(..take).unwrap_or_default());
                    let complete = take == input.len();
                    let mut pending = std::mem::take(&mut self.pending);
                    let end = scan(
                        &mut self.parser,
                        &mut self.body,
                        &pending,
                        self.pending_at,
                        old_len,
                        !complete,
                        false,
                        out,
                    );
                    match end {
                        ScanEnd::Need(pos) => {
                            // Only reachable when the whole chunk was appended.
                            pending.drain(..pos.min(pending.len()));
                            self.pending = pending;
                            self.pending_at += pos as u64;
                            return;
                        }
                        ScanEnd::Continue(pos) => {
                            let in_input = pos.saturating_sub(old_len).min(input.len());
                            pending.clear();
                            self.pending = pending;
                            input = input.get(in_input..).unwrap_or_default();
                            at += in_input as u64;
                        }
                    }
                }
            }
        }

        /// Skip body bytes of a pending record; returns false when the input is used up by it.
        fn skip_body(
            &mut self,
            input: &mut &[u8],
            at: &mut StreamOffset,
            out: &mut Vec<Frame>,
        ) -> bool {
            let Some((_, remaining)) = self.body.as_mut() else {
                return true;
            };
            let n = (*remaining).min(input.len() as u64);
            *remaining -= n;
            *input = input.get(n as usize..).unwrap_or_default();
            *at += n;
            if *remaining == 0 {
                if let Some((frame, _)) = self.body.take() {
                    out.push(frame);
                }
                true
            } else {
                false
            }
        }

        pub(crate) fn flush(&mut self, out: &mut Vec<Frame>) {
            if let Some((frame, remaining)) = self.body.take() {
                out.push(truncate_frame(frame, remaining));
            }
            if !self.pending.is_empty() {
                let pending = std::mem::take(&mut self.pending);
                let len = pending.len();
                scan(
                    &mut self.parser,
                    &mut self.body,
                    &pending,
                    self.pending_at,
                    len,
                    false,
                    true,
                    out,
                );
                if let Some((frame, remaining)) = self.body.take() {
                    out.push(truncate_frame(frame, remaining));
                }
                self.pending = pending;
                self.pending.clear();
            }
        }

        pub(crate) fn reset(&mut self) {
            self.pending.clear();
            self.body = None;
            self.next_offset = None;
            self.parser.reset();
        }
    }

    /// Scan candidate positions of `window` (stream offset `at`) below `limit`.
    ///
    /// `more_follows`: bytes beyond the window exist (so a short remainder is not the end);
    /// `at_end`: nothing follows at all (flush).
    #[allow(clippy::too_many_arguments)]
    fn scan<P: WindowParser>(
        parser: &mut P,
        body: &mut Option<(Frame, u64)>,
        window: &[u8],
        at: StreamOffset,
        limit: usize,
        more_follows: bool,
        at_end: bool,
        out: &mut Vec<Frame>,
    ) -> ScanEnd {
        let mut pos = 0usize;
        while pos < limit {
            let rest = window.get(pos..).unwrap_or_default();
            match parser.next_candidate(at + pos as u64, rest) {
                None => return ScanEnd::Continue(window.len()),
                Some(i) => pos += i,
            }
            if pos >= limit {
                break;
            }
            let rest = window.get(pos..).unwrap_or_default();
            let decisive = at_end || rest.len() >= P::MAX_WINDOW;
            let step = parser.parse(at + pos as u64, rest, at_end);
            match step {
                Step::Need if decisive || more_follows => {
                    // Contract breach (or a window that cannot grow here): never stall.
                    pos += 1;
                }
                Step::Need => return ScanEnd::Need(pos),
                Step::Skip(n) => pos += n.max(1),
                Step::Frame { frame, consumed } => {
                    out.push(frame);
                    pos += consumed.max(1);
                }
                Step::FrameWithBody {
                    frame,
                    consumed,
                    body: body_len,
                } => {
                    pos += consumed.max(1);
                    let available = window.len().saturating_sub(pos) as u64;
                    if body_len <= available {
                        out.push(frame);
                        pos += body_len as usize;
                    } else if at_end {
                        out.push(truncate_frame(frame, body_len - available));
                        pos = window.len();
                    } else {
                        *body = Some((frame, body_len - available));
                        return ScanEnd::Continue(window.len());
                    }
                }
            }
        }
        ScanEnd::Continue(pos)
    }

    /// Mark a frame whose last `missing` bytes never arrived as `Truncated`, cutting its span and
    /// every field span to the bytes seen.
    pub(crate) fn truncate_frame(mut frame: Frame, missing: u64) -> Frame {
        let end = frame.span.end.saturating_sub(missing).max(frame.span.start);
        frame.span.end = end;
        clamp_fields(&mut frame.fields, end);
        frame.status = FrameStatus::Truncated;
        frame
    }

    fn clamp_fields(fields: &mut [Field], end: StreamOffset) {
        for field in fields {
            field.span.end = field.span.end.min(end);
            field.span.start = field.span.start.min(field.span.end);
            clamp_fields(&mut field.children, end);
        }
    }

    /// Absolute span of `len` bytes starting `start` bytes after stream offset `at`.
    pub(crate) fn span(at: StreamOffset, start: usize, len: usize) -> Range<StreamOffset> {
        let from = at + start as u64;
        from..from + len as u64
    }

    const LOW_BITS: u64 = 0x0101_0101_0101_0101;
    const LOW_SEVEN_BITS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

    /// High bit set in exactly those bytes of `word` that equal `value`. Exact for every
    /// byte: no arithmetic carries from one byte into the next.
    #[inline(always)]
    fn bytes_equal(word: u64, value: u8) -> u64 {
        let diff = word ^ (LOW_BITS * u64::from(value));
        !(((diff & LOW_SEVEN_BITS).wrapping_add(LOW_SEVEN_BITS)) | diff) & HIGH_BITS
    }

    /// High bit set in exactly those bytes `b` of `word` with `above < b < below` (`above` at
    /// most 127, `below` at most 128): the "has between" bit trick, exact per byte.
    #[inline(always)]
    fn bytes_between(word: u64, above: u64, below: u64) -> u64 {
        let low7 = word & LOW_SEVEN_BITS;
        (LOW_BITS * (127 + below)).wrapping_sub(low7)
            & !word
            & low7.wrapping_add(LOW_BITS * (127 - above))
            & HIGH_BITS
    }

    /// The search loop behind the `find_*` functions: eight bytes at a time as one `u64`
    /// (SWAR, as memchr's portable fallback does; no `unsafe`). `word_hits` flags candidate
    /// bytes of a word (high bit per byte, exact), `byte_hit` says the same for one byte (the
    /// tail), and `is_start` (given the bytes from the candidate on) confirms a candidate. A
    /// rejected candidate costs no rescan: the next one comes from the same mask.
    #[inline(always)]
    fn find_in_words(
        bytes: &[u8],
        word_hits: impl Fn(u64) -> u64,
        byte_hit: impl Fn(u8) -> bool,
        is_start: impl Fn(&[u8]) -> bool,
    ) -> Option<usize> {
        let mut words = bytes.chunks_exact(8);
        let mut base = 0usize;
        for word in &mut words {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            let mut hits = word_hits(u64::from_le_bytes(eight));
            while hits != 0 {
                let i = base + (hits.trailing_zeros() / 8) as usize;
                if is_start(bytes.get(i..).unwrap_or_default()) {
                    return Some(i);
                }
                hits &= hits - 1;
            }
            base += 8;
        }
        for (k, &b) in words.remainder().iter().enumerate() {
            if byte_hit(b) && is_start(bytes.get(base + k..).unwrap_or_default()) {
                return Some(base + k);
            }
        }
        None
    }

    /// Index of the first byte equal to any of `needles` (a handful at most: each costs about
    /// half an instruction per byte).
    #[inline]
    pub(crate) fn find_any(bytes: &[u8], needles: &[u8]) -> Option<usize> {
        find_any_where(bytes, needles, |_| true)
    }

    /// First byte equal to one of `needles` at which `is_start` (given the bytes from there
    /// on) also holds. `is_start` is a cheap second-byte test that keeps common bytes
    /// (letters, opcodes that are also ASCII) from costing a full parse each.
    #[inline]
    pub(crate) fn find_any_where(
        bytes: &[u8],
        needles: &[u8],
        is_start: impl Fn(&[u8]) -> bool,
    ) -> Option<usize> {
        find_in_words(
            bytes,
            |word| {
                needles
                    .iter()
                    .fold(0, |hits, &needle| hits | bytes_equal(word, needle))
            },
            |b| needles.contains(&b),
            is_start,
        )
    }

    /// Like [`find_any_where`], for the bytes strictly between `above` (at most 127) and
    /// `below` (at most 128).
    #[inline]
    pub(crate) fn find_between_where(
        bytes: &[u8],
        above: u8,
        below: u8,
        is_start: impl Fn(&[u8]) -> bool,
    ) -> Option<usize> {
        let (above, below) = (above.min(127), below.min(128));
        find_in_words(
            bytes,
            |word| bytes_between(word, u64::from(above), u64::from(below)),
            |b| above < b && b < below,
            is_start,
        )
    }

    /// A set of bytes for [`find_in_set`], built at compile time.
    pub(crate) const fn byte_set(members: &[u8]) -> [bool; 256] {
        let mut set = [false; 256];
        let mut i = 0;
        while i < members.len() {
            set[members[i] as usize] = true;
            i += 1;
        }
        set
    }

    /// Index of the first byte that is in `set`.
    ///
    /// For sets too large for [`find_any`] (STM32's fifteen opcodes and markers) a table
    /// lookup per byte is cheaper than one SWAR compare per member.
    #[inline]
    pub(crate) fn find_in_set(bytes: &[u8], set: &[bool; 256]) -> Option<usize> {
        // Indexing a 256-entry table with a u8 cannot go out of bounds.
        bytes.iter().position(|&b| set[usize::from(b)])
    }

    /// Index of the first byte in `set` at which `is_start` (given the bytes from there on)
    /// also holds. `is_start` is a cheap second-byte test that keeps common bytes (letters,
    /// opcodes that are also ASCII) from costing a full parse each.
    #[inline]
    pub(crate) fn find_in_set_where(
        bytes: &[u8],
        set: &[bool; 256],
        is_start: impl Fn(&[u8]) -> bool,
    ) -> Option<usize> {
        let mut from = 0usize;
        loop {
            let rest = bytes.get(from..)?;
            let i = from + find_in_set(rest, set)?;
            if is_start(bytes.get(i..).unwrap_or_default()) {
                return Some(i);
            }
            from = i + 1;
        }
    }

    /// Bytes as upper-case hex pairs separated by spaces ("68 04 07"), at most `max_bytes` of
    /// them, with " …" when cut.
    pub(crate) fn hex(bytes: &[u8], max_bytes: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let shown = bytes.get(..max_bytes).unwrap_or(bytes);
        let mut text = String::with_capacity(shown.len() * 3 + 2);
        for (i, &b) in shown.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push(char::from(DIGITS[usize::from(b >> 4)]));
            text.push(char::from(DIGITS[usize::from(b & 0x0F)]));
        }
        if shown.len() < bytes.len() {
            text.push_str(" …");
        }
        text
    }

    /// Printable form of bytes for summaries: ASCII printable as is, everything else `\xNN`
    /// (so no control byte from a device ever reaches a terminal), at most `max_chars` bytes.
    pub(crate) fn escape_ascii(bytes: &[u8], max_chars: usize) -> String {
        let shown = bytes.get(..max_chars).unwrap_or(bytes);
        let mut text = String::with_capacity(shown.len() + 2);
        for &b in shown {
            if (0x20..0x7F).contains(&b) {
                text.push(char::from(b));
            } else {
                text.push_str(&format!("\\x{b:02X}"));
            }
        }
        if shown.len() < bytes.len() {
            text.push('…');
        }
        text
    }

    /// Sum of bytes modulo 256 (FT1.2 and DL/T 645 checksums).
    pub(crate) fn sum8(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::stream::{byte_set, find_any, find_between_where, find_in_set_where, hex};
    use super::*;
    use crate::decode::frame::{FrameStatus, Protocol};
    use proptest::prelude::*;

    /// Worked frames from `shared/reference/protocols.md`, with the protocol and kind each
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

    #[test]
    fn byte_searches_find_the_first_hit() {
        let mut bytes = vec![0u8; 100];
        assert_eq!(find_any(&bytes, &[0x68]), None);
        bytes[70] = 0x68;
        bytes[90] = 0x68;
        assert_eq!(find_any(&bytes, &[0x68]), Some(70));
        assert_eq!(find_any(&bytes[71..], &[0x16, 0x68]), Some(19));
        bytes[3] = 0x17;
        assert_eq!(find_between_where(&bytes, 0x13, 0x1B, |_| true), Some(3));
        assert_eq!(find_between_where(&bytes[4..], 0x13, 0x1B, |_| true), None);
        let set = byte_set(b"GH");
        assert_eq!(
            find_in_set_where(b"xGxGEyH", &set, |r| r.get(1) == Some(&b'E')),
            Some(3)
        );
        assert_eq!(hex(&[0x68, 0x0A], 8), "68 0A");
        assert_eq!(hex(&[1, 2, 3], 2), "01 02 …");
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

        /// The SWAR searches agree with a plain scan on any input.
        #[test]
        fn searches_agree_with_plain_scans(bytes in prop::collection::vec(any::<u8>(), 0..100), needles in prop::collection::vec(any::<u8>(), 1..4), above in 0u8..=128, below in 0u8..=128) {
            prop_assert_eq!(find_any(&bytes, &needles), bytes.iter().position(|b| needles.contains(b)));
            prop_assert_eq!(find_between_where(&bytes, above, below, |_| true), bytes.iter().position(|&b| above < b && b < below));
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
