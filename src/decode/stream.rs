//! Shared streaming machinery for the framers in this folder: pending-input handling, the
//! SIMD start search (`find_starts`, 16 positions per step), spans, and the small text
//! helpers (hex, escaping, checksums, status words) they share.
//!
//! Most protocols here are "find a start byte, then decide from a bounded window whether a
//! frame starts there". [`Streamer`] does the bookkeeping once: it scans each chunk in
//! place (no copy), keeps only the undecided tail (at most one window) between `feed` calls,
//! and skips long record bodies without buffering them.

use std::ops::Range;

use wide::u8x16;

use super::frame::{Description, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset};

/// What a [`WindowParser`] decided about the position at the start of its window.
pub(crate) enum ParseStep {
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
    /// The protocol of the frames this parser finds.
    const PROTOCOL: Protocol;
    /// Bytes needed to decide at any position (at least the longest frame header + body
    /// this parser buffers, plus any look-ahead).
    const MAX_WINDOW: usize;
    /// Index in `bytes` (which starts at stream offset `at`) of the first position where a
    /// frame might start, or `None` if there is none.
    fn next_candidate(&self, at: StreamOffset, bytes: &[u8]) -> Option<usize>;
    /// Decide whether a frame starts at `window[0]` (stream offset `at`). `at_end` means no
    /// more bytes will follow (flush).
    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep;
    /// Forget any context.
    fn reset(&mut self) {}
    /// The highest rank a frame starting at `window[0]` could still reach, with `window`
    /// all that arrived of it (see `Framer::pending_max_rank`).
    fn pending_max_rank(&self, _window: &[u8]) -> super::evidence::Rank {
        super::evidence::max_rank(Self::PROTOCOL)
    }
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
}

impl<P: WindowParser> Framer for Streamer<P> {
    fn protocol(&self) -> Protocol {
        P::PROTOCOL
    }

    fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>) {
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

    fn flush(&mut self, out: &mut Vec<Frame>) {
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

    fn reset(&mut self) {
        self.pending.clear();
        self.body = None;
        self.next_offset = None;
        self.parser.reset();
    }

    fn pending_max_rank(&self) -> super::evidence::Rank {
        let body = self.body.as_ref().map(|(frame, _)| frame.evidence().rank());
        let window =
            (!self.pending.is_empty()).then(|| self.parser.pending_max_rank(&self.pending));
        body.max(window).unwrap_or(super::evidence::Rank::NONE)
    }

    fn pending_from(&self) -> Option<StreamOffset> {
        let body = self.body.as_ref().map(|(frame, _)| frame.span.start);
        let window = (!self.pending.is_empty()).then_some(self.pending_at);
        match (body, window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `impl Framer` for a public framer type whose field `streamer` is a [`Streamer`]: the
/// public type keeps its own name, constructor and docs, the work is the streamer's. The
/// caller has `Framer`, `Frame`, `Protocol` and `StreamOffset` in scope.
macro_rules! framer_from_streamer {
    ($framer:ident) => {
        impl Framer for $framer {
            fn protocol(&self) -> Protocol {
                self.streamer.protocol()
            }
            fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>) {
                self.streamer.feed(offset, bytes, out);
            }
            fn flush(&mut self, out: &mut Vec<Frame>) {
                self.streamer.flush(out);
            }
            fn reset(&mut self) {
                self.streamer.reset();
            }
            fn pending_from(&self) -> Option<StreamOffset> {
                self.streamer.pending_from()
            }
            fn pending_max_rank(&self) -> $crate::decode::evidence::Rank {
                self.streamer.pending_max_rank()
            }
        }
    };
}
pub(crate) use framer_from_streamer;

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
            ParseStep::Need if decisive || more_follows => {
                // Contract breach (or a window that cannot grow here): never stall.
                pos += 1;
            }
            ParseStep::Need => return ScanEnd::Need(pos),
            ParseStep::Skip(n) => pos += n.max(1),
            ParseStep::Frame { frame, consumed } => {
                out.push(frame);
                pos += consumed.max(1);
            }
            ParseStep::FrameWithBody {
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
pub(crate) fn truncate_frame(frame: Frame, missing: u64) -> Frame {
    let end = frame.span.end.saturating_sub(missing).max(frame.span.start);
    let (protocol, start, kind) = (frame.protocol, frame.span.start, frame.kind);
    // Described as the frame was found: the summary keeps its words, spans are cut.
    let Description {
        summary,
        mut fields,
    } = frame.into_description();
    clamp_fields(&mut fields, end);
    Frame::new(
        protocol,
        start..end,
        kind,
        FrameStatus::Truncated,
        summary,
        fields,
    )
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

/// Sixteen consecutive search positions and the bytes after them, as SIMD lanes for
/// [`find_starts`].
pub(crate) struct Lanes<'a> {
    /// The group's sixteen bytes and the `ahead` after them (one length check per group, so
    /// the loads at constant offsets need none).
    group: &'a [u8],
}

impl Lanes<'_> {
    /// Lane `k` holds the byte `offset + k` after the first position of the group. Within the
    /// `ahead` bytes [`find_starts`] was given, the bytes are always there.
    #[inline(always)]
    pub(crate) fn at(&self, offset: usize) -> u8x16 {
        lanes_at(self.group, offset)
    }
}

/// The sixteen bytes of `bytes` from `index` as lanes (zeros if fewer are left: callers
/// check the length first).
#[inline(always)]
pub(crate) fn lanes_at(bytes: &[u8], index: usize) -> u8x16 {
    match bytes
        .get(index..index + 16)
        .and_then(|lanes| <[u8; 16]>::try_from(lanes).ok())
    {
        Some(lanes) => u8x16::new(lanes),
        None => u8x16::ZERO,
    }
}

/// Lane mask: all ones in the lanes where `lanes & mask == value`.
#[inline(always)]
pub(crate) fn lanes_masked_eq(lanes: u8x16, mask: u8, value: u8) -> u8x16 {
    (lanes & u8x16::splat(mask)).simd_eq(u8x16::splat(value))
}

/// Lane mask: all ones in the lanes of `lanes` equal to `value`.
#[inline(always)]
pub(crate) fn lanes_eq(lanes: u8x16, value: u8) -> u8x16 {
    lanes.simd_eq(u8x16::splat(value))
}

/// Lane mask: all ones in the lanes `b` of `lanes` with `above < b < below`.
#[inline(always)]
pub(crate) fn lanes_between(lanes: u8x16, above: u8, below: u8) -> u8x16 {
    let Some(width) = below.checked_sub(above).and_then(|gap| gap.checked_sub(1)) else {
        return u8x16::ZERO;
    };
    if width == 0 {
        return u8x16::ZERO;
    }
    // Shifted so the range starts at 0: in range when at most `width - 1`.
    let shifted = lanes - u8x16::splat(above.wrapping_add(1));
    shifted
        .saturating_sub(u8x16::splat(width - 1))
        .simd_eq(u8x16::ZERO)
}

/// First index `i` at which `is_start(&bytes[i..])` holds.
///
/// Sixteen positions at a time: `hits` reads SIMD lanes of the bytes at and after a group of
/// sixteen positions ([`Lanes::at`], offsets up to `ahead`) and returns a lane mask flagging
/// every position of the group where `is_start` could hold (a superset is fine; `is_start`
/// decides). Why: every framer looks at every byte of both directions, so its start test
/// must cost a fraction of an instruction per byte; and a test that needs two bytes (a 68
/// that comes back three bytes later, an opcode followed by its complement) rejects noise
/// inside the vector arithmetic instead of in a mispredicted branch per rejected byte. The
/// lanes are SSE2 on x86-64, NEON on aarch64 (`wide`), plain arrays elsewhere. The last
/// `ahead + 16` positions, whose look-ahead runs past the end, are tried one by one.
#[inline(always)]
pub(crate) fn find_starts(
    bytes: &[u8],
    ahead: usize,
    hits: impl Fn(&Lanes<'_>) -> u8x16,
    is_start: impl Fn(&[u8]) -> bool,
) -> Option<usize> {
    let mut base = 0usize;
    while let Some(group) = bytes.get(base..base + 16 + ahead) {
        let mut flagged = hits(&Lanes { group }).to_bitmask();
        while flagged != 0 {
            let i = base + flagged.trailing_zeros() as usize;
            if is_start(bytes.get(i..).unwrap_or_default()) {
                return Some(i);
            }
            flagged &= flagged - 1;
        }
        base += 16;
    }
    (base..bytes.len()).find(|&i| is_start(bytes.get(i..).unwrap_or_default()))
}

/// A set of bytes (a 256-entry table), built at compile time.
pub(crate) const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < members.len() {
        set[members[i] as usize] = true;
        i += 1;
    }
    set
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

/// The words a summary ends with when its frame did not check out: " — bad checksum …",
/// " — truncated", " — " and the reason a malformed frame gives.
pub(crate) fn push_status(summary: &mut String, status: &FrameStatus) {
    match status {
        FrameStatus::Ok => {}
        FrameStatus::BadChecksum { expected, found } => {
            summary.push_str(&format!(
                " — bad checksum 0x{found:02X}, expected 0x{expected:02X}"
            ));
        }
        FrameStatus::Truncated => summary.push_str(" — truncated"),
        FrameStatus::Malformed(why) => {
            summary.push_str(" — ");
            summary.push_str(why);
        }
    }
}

/// Sum of bytes modulo 256 (FT1.2 and DL/T 645 checksums).
pub(crate) fn sum8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes drawn mostly from `alphabet` (a protocol's start and marker bytes), with some
    /// arbitrary ones: where start searches have the most to get wrong.
    pub(crate) fn noisy_bytes(alphabet: &[u8]) -> impl Strategy<Value = Vec<u8>> {
        let alphabet = alphabet.to_vec();
        prop::collection::vec(
            prop_oneof![3 => prop::sample::select(alphabet), 1 => any::<u8>()],
            0..160,
        )
    }

    /// [`find_starts`] with `hits` agrees with a plain scan by `is_start`, from every position.
    pub(crate) fn assert_same_starts(
        bytes: &[u8],
        ahead: usize,
        hits: impl Fn(&Lanes<'_>) -> u8x16 + Copy,
        is_start: impl Fn(&[u8]) -> bool + Copy,
    ) {
        for from in 0..=bytes.len() {
            let rest = bytes.get(from..).unwrap();
            let plain = (0..rest.len()).find(|&i| is_start(rest.get(i..).unwrap()));
            assert_eq!(
                find_starts(rest, ahead, hits, is_start),
                plain,
                "{rest:02X?}"
            );
        }
    }

    proptest! {
        /// The lane masks flag exactly the bytes they name.
        #[test]
        fn masks_flag_the_right_bytes(bytes in prop::collection::vec(any::<u8>(), 16), value in any::<u8>(), above in any::<u8>(), below in any::<u8>()) {
            let lanes = u8x16::new(bytes.clone().try_into().unwrap());
            let eq = lanes_eq(lanes, value).to_bitmask();
            let between = lanes_between(lanes, above, below).to_bitmask();
            for (k, &b) in bytes.iter().enumerate() {
                prop_assert_eq!((eq >> k) & 1 == 1, b == value);
                prop_assert_eq!((between >> k) & 1 == 1, above < b && b < below, "{} < {} < {}", above, b, below);
            }
        }
    }
}
