//! Printable text lines (boot logs, AT commands, shells): lines ending in `\n` or `\r\n` that
//! are mostly printable ASCII/UTF-8, with control bytes escaped as `\xNN` in the summary so no
//! device byte ever reaches the terminal raw.
//!
//! Why this matters for "unexpected 0x68": a 0x68 that is the `h` of `hello` means the other
//! side is printing text (a log, an application) instead of speaking the expected protocol
//! (README's 0x68 table).

use wide::u8x16;

use super::frame::{
    Description, Detail, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset,
};
use super::stream::{lanes_at, lanes_masked_eq};

/// Longest line kept; a longer one is reported in pieces of this size.
pub const MAX_LINE: usize = 4096;
/// Share of characters that must be printable for a line to count as text, in percent.
const MIN_PRINTABLE_PERCENT: usize = 80;
/// When a line fails as a whole, its clean tail after the last binary byte is reported if it
/// has at least this many printable characters (garbage followed by a log line).
const MIN_TAIL_CHARS: usize = 4;
/// Characters of a line shown in the summary.
const SUMMARY_CHARS: usize = 200;

/// Streaming text-line framer: kind "line". Holds at most one line (4 KiB) between calls.
pub struct TextFramer {
    /// Bytes of the current line (without its terminator).
    line: Vec<u8>,
    /// Stream offset of `line[0]` (or of the next byte when `line` is empty).
    line_at: StreamOffset,
    next_offset: Option<StreamOffset>,
}

impl TextFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        TextFramer {
            line: Vec::with_capacity(256),
            line_at: 0,
            next_offset: None,
        }
    }

    /// Finish the current line; `terminator` is the length of `\n` (1) when one ended it,
    /// 0 when it was cut at `MAX_LINE` or by the end of the stream.
    fn finish_line(&mut self, terminator: usize, status: FrameStatus, out: &mut Vec<Frame>) {
        if let Some(frame) = line_frame(self.line_at, &self.line, terminator, status) {
            out.push(frame);
        }
        self.line_at += (self.line.len() + terminator) as u64;
        self.line.clear();
    }

    /// [`finish_line`](Self::finish_line) for a line that was never buffered (`line` lies in
    /// the caller's chunk and starts at `line_at`).
    fn finish_line_in_place(&mut self, line: &[u8], terminator: usize, out: &mut Vec<Frame>) {
        if let Some(frame) = line_frame(self.line_at, line, terminator, FrameStatus::Ok) {
            out.push(frame);
        }
        self.line_at += (line.len() + terminator) as u64;
    }
}

impl Default for TextFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl TextFramer {
    /// Index of the pending line's last dirty byte.
    fn last_dirty(&self) -> Option<usize> {
        self.line.iter().rposition(|&b| is_dirty(b))
    }
}

impl Framer for TextFramer {
    fn protocol(&self) -> Protocol {
        Protocol::Text
    }

    fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>) {
        if bytes.is_empty() {
            return;
        }
        if self.next_offset != Some(offset) {
            if self.next_offset.is_some() {
                self.flush(out);
            }
            self.line.clear();
            self.line_at = offset;
        }
        self.next_offset = Some(offset + bytes.len() as u64);
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = MAX_LINE - self.line.len();
            let newline =
                memchr::memchr(b'\n', rest.get(..room.min(rest.len())).unwrap_or_default());
            match newline {
                // A whole line inside this chunk is judged where it lies, without a copy.
                Some(i) if self.line.is_empty() => {
                    self.finish_line_in_place(rest.get(..i).unwrap_or_default(), 1, out);
                    rest = rest.get(i + 1..).unwrap_or_default();
                }
                Some(i) => {
                    self.line
                        .extend_from_slice(rest.get(..i).unwrap_or_default());
                    rest = rest.get(i + 1..).unwrap_or_default();
                    self.finish_line(1, FrameStatus::Ok, out);
                }
                None if rest.len() >= room && self.line.is_empty() => {
                    // Bounded: report what we have and continue the line as a new piece.
                    self.finish_line_in_place(rest.get(..room).unwrap_or_default(), 0, out);
                    rest = rest.get(room..).unwrap_or_default();
                }
                None if rest.len() >= room => {
                    self.line
                        .extend_from_slice(rest.get(..room).unwrap_or_default());
                    rest = rest.get(room..).unwrap_or_default();
                    // Bounded: report what we have and continue the line as a new piece.
                    self.finish_line(0, FrameStatus::Ok, out);
                }
                None => {
                    self.line.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        if !self.line.is_empty() {
            self.finish_line(0, FrameStatus::Truncated, out);
        }
    }

    fn reset(&mut self) {
        self.line.clear();
        self.next_offset = None;
    }

    /// The pending line, from its start.
    fn pending_from(&self) -> Option<StreamOffset> {
        (!self.line.is_empty()).then_some(self.line_at)
    }

    /// A line already holding a control byte can only become a dirty line, which is weak
    /// (`evidence::is_clean_line`); its clean tail is the `pending_tail`. Cheap (one backward
    /// scan of at most one line) and run per read.
    fn pending_max_rank(&self) -> super::evidence::Rank {
        match self.last_dirty() {
            Some(_) => super::evidence::dirty_line_rank(),
            None => super::evidence::max_rank(Protocol::Text),
        }
    }

    fn pending_tail(&self) -> Option<(StreamOffset, super::evidence::Rank)> {
        let i = self.last_dirty()?;
        Some((
            self.line_at + i as u64 + 1,
            super::evidence::max_rank(Protocol::Text),
        ))
    }
}

/// A byte that makes a line "dirty" as evidence: a control byte other than tab, CR and the
/// ESC of a colour sequence, or DEL. A line with one is text only by the 80 % rule.
fn is_dirty(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\r' | 0x1B)) || b == 0x7F
}

/// Whether a text line frame is clean text: no dirty byte and no invalid UTF-8 in what it
/// kept (its first 801 bytes). A dirty line is weak evidence (`decode::evidence`): it may
/// hold the tail of a binary frame, and the stream is released as if it could not be text
/// before its last dirty byte (`TextFramer::pending_from`).
pub(crate) fn is_clean_line(frame: &Frame) -> bool {
    let Some((bytes, _)) = frame.kept_bytes() else {
        return true;
    };
    let mut chunks = bytes.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        if chunk.valid().bytes().any(is_dirty) {
            return false;
        }
        // An invalid sequence at the very end may be a character cut by the summary limit.
        if !chunk.invalid().is_empty() && chunks.peek().is_some() {
            return false;
        }
    }
    true
}

/// How the characters of a line count.
struct Census {
    /// Printable characters (ASCII 0x20..0x7E, tab, and non-control UTF-8 characters).
    printable: usize,
    /// Printable characters that are not whitespace.
    visible: usize,
    /// Control bytes and bytes that are not valid UTF-8.
    binary: usize,
    /// Index just past the last binary byte (0 if none).
    clean_from: usize,
}

fn census(line: &[u8]) -> Census {
    let mut counts = Census {
        printable: 0,
        visible: 0,
        binary: 0,
        clean_from: 0,
    };
    // Fast path: pure ASCII, the common case for logs, counted eight bytes at a time.
    if line.is_ascii() {
        let (controls, blanks) = ascii_counts(line);
        counts.binary = controls;
        counts.printable = line.len() - controls;
        counts.visible = counts.printable - blanks;
        if controls > 0 {
            counts.clean_from = last_control(line).map_or(0, |i| i + 1);
        }
        return counts;
    }
    let mut index = 0usize;
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            let width = c.len_utf8();
            if c == '\t' || !c.is_control() {
                counts.printable += 1;
                counts.visible += usize::from(!c.is_whitespace());
            } else {
                counts.binary += 1;
                counts.clean_from = index + width;
            }
            index += width;
        }
        let invalid = chunk.invalid().len();
        if invalid > 0 {
            counts.binary += invalid;
            index += invalid;
            counts.clean_from = index;
        }
    }
    counts
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const LOW_SEVEN_BITS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of an all-ASCII `word` that is below `limit` (at most 0x80).
/// Exact: with the high bits forced on, no byte's subtraction borrows from its neighbour.
fn ascii_below(word: u64, limit: u8) -> u64 {
    !((word | HIGH_BITS).wrapping_sub(LOW_BITS * u64::from(limit))) & HIGH_BITS
}

/// High bit set in each byte of an all-ASCII `word` that equals `value` (exact).
fn ascii_equal(word: u64, value: u8) -> u64 {
    let diff = word ^ (LOW_BITS * u64::from(value));
    !(((diff & LOW_SEVEN_BITS).wrapping_add(LOW_SEVEN_BITS)) | diff) & HIGH_BITS
}

// The counts below take sixteen bytes at a time in SIMD lanes (`wide`): every line of every
// text-looking stream passes through them. Each keeps a plain per-byte loop for the tail.

/// Zeros then all-ones: `RAMP[n..n + 16]` as lanes sets the last `n` lanes (n ≤ 16).
const RAMP: [u8; 32] = {
    let mut ramp = [0u8; 32];
    let mut i = 16;
    while i < 32 {
        ramp[i] = 0xFF;
        i += 1;
    }
    ramp
};

/// Lanes holding a control byte as [`is_control_byte`] has it (below 0x20 but tab, or DEL).
fn control_lanes(lanes: u8x16) -> u8x16 {
    (lanes_masked_eq(lanes, 0xE0, 0) & !lanes.simd_eq(u8x16::splat(b'\t')))
        | lanes.simd_eq(u8x16::splat(0x7F))
}

/// Adds one to each lane of `counts` that is set in `mask` (set lanes are 0xFF, that is -1):
/// counting in the lanes and summing now and then is cheaper than a population count per
/// mask on CPUs without one.
fn add_lanes(counts: u8x16, mask: u8x16) -> u8x16 {
    counts - mask
}

/// Sum of the lanes of `counts`, each at most 15 (so the byte sums below cannot carry).
fn sum_lanes(counts: u8x16) -> usize {
    let lanes = counts.to_array();
    let half = |from: usize| {
        let mut eight = [0u8; 8];
        if let Some(bytes) = lanes.get(from..from + 8) {
            eight.copy_from_slice(bytes);
        }
        u64::from_le_bytes(eight)
    };
    ((half(0) + half(8)).wrapping_mul(LOW_BITS) >> 56) as usize
}

/// For an all-ASCII line: (control bytes as `is_control_byte` counts them, blanks = spaces
/// and tabs).
fn ascii_counts(line: &[u8]) -> (usize, usize) {
    let mut controls = 0usize;
    let mut blanks = 0usize;
    let mut index = 0usize;
    // Fifteen groups of lanes at most between sums, so no lane count passes 15.
    while index + 16 <= line.len() {
        let (mut control_counts, mut blank_counts) = (u8x16::ZERO, u8x16::ZERO);
        let mut groups = 0;
        while groups < 15 && index + 16 <= line.len() {
            let lanes = lanes_at(line, index);
            control_counts = add_lanes(control_counts, control_lanes(lanes));
            blank_counts = add_lanes(
                blank_counts,
                lanes.simd_eq(u8x16::splat(b' ')) | lanes.simd_eq(u8x16::splat(b'\t')),
            );
            index += 16;
            groups += 1;
        }
        controls += sum_lanes(control_counts);
        blanks += sum_lanes(blank_counts);
    }
    let rest = line.len() - index;
    if rest > 0 && line.len() >= 16 {
        // Zeroed lanes count as neither: 00 is a control byte, so those are masked.
        let keep = lanes_at(&RAMP, rest);
        let lanes = lanes_at(line, line.len() - 16);
        controls += sum_lanes(add_lanes(u8x16::ZERO, control_lanes(lanes) & keep));
        blanks += sum_lanes(add_lanes(
            u8x16::ZERO,
            (lanes.simd_eq(u8x16::splat(b' ')) | lanes.simd_eq(u8x16::splat(b'\t'))) & keep,
        ));
    } else {
        for &b in line.get(index..).unwrap_or_default() {
            controls += usize::from(is_control_byte(b));
            blanks += usize::from(b == b' ' || b == b'\t');
        }
    }
    (controls, blanks)
}

/// Length of the leading run of printable ASCII (0x20..=0x7E), at most `limit`.
fn printable_run(bytes: &[u8], limit: usize) -> usize {
    let bytes = bytes.get(..limit.min(bytes.len())).unwrap_or(bytes);
    let mut words = bytes.chunks_exact(8);
    let mut base = 0usize;
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let word = u64::from_le_bytes(eight);
        // Non-ASCII bytes, or ASCII below 0x20, or DEL.
        let ascii = !word & HIGH_BITS;
        let low7 = word & LOW_SEVEN_BITS;
        let odd = (word & HIGH_BITS)
            | (ascii_below(low7, 0x20) & ascii)
            | (ascii_equal(low7, 0x7F) & ascii);
        if odd != 0 {
            return base + (odd.trailing_zeros() / 8) as usize;
        }
        base += 8;
    }
    base + words
        .remainder()
        .iter()
        .take_while(|&&b| (0x20..0x7F).contains(&b))
        .count()
}

/// Index of the last ASCII control byte (`is_control_byte`) in `bytes`, sixteen bytes at a
/// time from the end.
fn last_control(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while end >= 16 {
        let controls = control_lanes(lanes_at(bytes, end - 16)).to_bitmask();
        if controls != 0 {
            return Some(end - 16 + (31 - controls.leading_zeros()) as usize);
        }
        end -= 16;
    }
    if end > 0 && bytes.len() >= 16 {
        // The first sixteen bytes again, keeping only the `end` not yet looked at.
        let keep = !lanes_at(&RAMP, 16 - end);
        let controls = (control_lanes(lanes_at(bytes, 0)) & keep).to_bitmask();
        return (controls != 0).then(|| (31 - controls.leading_zeros()) as usize);
    }
    bytes
        .get(..end)
        .unwrap_or_default()
        .iter()
        .rposition(|&b| is_control_byte(b))
}

/// True when one of the last `last` bytes of `bytes` is surely part of a binary unit as
/// `census` counts them: an ASCII control byte, a byte never valid in UTF-8 (C0, C1,
/// F5-FF), a continuation byte after an ASCII byte, or a lead byte not followed by a
/// continuation byte (or by nothing). Also true when `bytes` is shorter than `last`.
fn ends_in_binary(bytes: &[u8], last: usize) -> bool {
    let Some(from) = bytes.len().checked_sub(last) else {
        return true;
    };
    (from..bytes.len()).any(|i| {
        let b = bytes.get(i).copied().unwrap_or_default();
        let next_continues = bytes.get(i + 1).is_some_and(|&n| n & 0xC0 == 0x80);
        let after_ascii = i > 0 && bytes.get(i - 1).is_some_and(|&p| p < 0x80);
        is_control_byte(b)
            || matches!(b, 0xC0 | 0xC1 | 0xF5..=0xFF)
            || (b & 0xC0 == 0x80 && after_ascii)
            || (b >= 0xC2 && !next_continues)
    })
}

/// ASCII control bytes other than tab (CR and DEL included).
fn is_control_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

/// A lower bound on the binary units `census` would count: control bytes, UTF-8 lead bytes
/// not followed by a continuation byte, and continuation bytes after an ASCII byte. Sixteen
/// bytes at a time, so rejecting a binary line costs about an instruction per byte.
#[cfg(test)]
fn binary_lower_bound(line: &[u8]) -> usize {
    binary_lower_bound_until(line, usize::MAX)
}

/// [`binary_lower_bound`], stopping early (with a partial count) once the count passes
/// `stop_above`: the caller only asks whether it does, and garbage gets there quickly.
fn binary_lower_bound_until(line: &[u8], stop_above: usize) -> usize {
    let mut count = 0usize;
    let mut index = 0usize;
    // Each byte is paired with the one after it, so the lanes stop one byte early. Sums every
    // four groups (a lane counts at most 2 per group): garbage passes the bound early.
    while index + 17 <= line.len() {
        let mut counts = u8x16::ZERO;
        let mut groups = 0;
        while groups < 4 && index + 17 <= line.len() {
            let (first, next) = (lanes_at(line, index), lanes_at(line, index + 1));
            let ascii = lanes_masked_eq(first, 0x80, 0);
            let lead = lanes_masked_eq(first, 0xC0, 0xC0);
            let continuation = lanes_masked_eq(next, 0xC0, 0x80);
            let broken = (lead & !continuation) | (ascii & continuation);
            counts = add_lanes(add_lanes(counts, control_lanes(first)), broken);
            index += 16;
            groups += 1;
        }
        count += sum_lanes(counts);
        if count > stop_above {
            return count;
        }
    }
    for (i, &a) in line.iter().enumerate().skip(index) {
        let b = line.get(i + 1).copied().unwrap_or(0);
        let continuation = b & 0xC0 == 0x80;
        count += usize::from(is_control_byte(a));
        count += usize::from((a >= 0xC0 && !continuation) || (a < 0x80 && continuation));
    }
    count
}

fn is_mostly_printable(counts: &Census) -> bool {
    let total = counts.printable + counts.binary;
    counts.visible > 0 && total > 0 && counts.printable * 100 >= total * MIN_PRINTABLE_PERCENT
}

/// Summary text: printable characters as they are, everything else `\xNN` (per byte),
/// `\r` and `\t` as `\r` and `\t`, at most `SUMMARY_CHARS` characters.
fn sanitize(line: &[u8]) -> String {
    let mut text = String::with_capacity(line.len().min(SUMMARY_CHARS) + 16);
    let mut shown = 0usize;
    let mut rest = line;
    while let Some(&first) = rest.first() {
        if shown >= SUMMARY_CHARS {
            text.push('…');
            break;
        }
        // Runs of printable ASCII are copied in one go.
        let run = printable_run(rest, SUMMARY_CHARS - shown);
        if run > 0 {
            let ascii = rest.get(..run).unwrap_or_default();
            text.push_str(std::str::from_utf8(ascii).unwrap_or_default());
            shown += run;
            rest = rest.get(run..).unwrap_or_default();
            continue;
        }
        // One character that needs care: a control, a multi-byte character, or a bad byte.
        let width = utf8_width(first);
        let character = rest
            .get(..width)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|s| s.chars().next());
        match character {
            Some('\t') => text.push_str("\\t"),
            Some('\r') => text.push_str("\\r"),
            Some(c) if !c.is_control() => text.push(c),
            Some(c) => {
                let mut buffer = [0u8; 4];
                for &b in c.encode_utf8(&mut buffer).as_bytes() {
                    push_escape(&mut text, b);
                }
            }
            None => push_escape(&mut text, first),
        }
        let used = if character.is_some() { width } else { 1 };
        rest = rest.get(used..).unwrap_or_default();
        shown += 1;
    }
    text
}

/// Length of the UTF-8 sequence a lead byte announces (1 for anything that is not a lead).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

fn push_escape(text: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    text.push_str("\\x");
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
}

/// A frame for `line` (starting at `at`, followed by `terminator` newline bytes), or `None`
/// when it is not text: empty, blank, or mostly binary without a clean tail.
fn line_frame(
    at: StreamOffset,
    line: &[u8],
    terminator: usize,
    status: FrameStatus,
) -> Option<Frame> {
    let content = line.strip_suffix(b"\r").unwrap_or(line);
    // Binary lines are the common case in garbage: reject them with a cheap bound before the
    // exact (slower) character census.
    // (For an ASCII line the bound is the census's own binary count, so a line it rejects
    // would fail the census too: no need to tell ASCII lines apart first.)
    let most_binary = content.len() * (100 - MIN_PRINTABLE_PERCENT) / 100;
    let counts = if binary_lower_bound_until(content, most_binary) > most_binary {
        None
    } else {
        Some(census(content))
    };
    let (start, text, counts) = match counts {
        Some(counts) if is_mostly_printable(&counts) => (0, content, counts),
        _ => {
            // Binary garbage, then text: report the text after the last binary byte.
            let after_control = last_control(content).map_or(0, |i| i + 1);
            let tail = content.get(after_control..).unwrap_or_default();
            // The text kept starts after the tail's last binary unit and needs at least
            // MIN_TAIL_CHARS bytes: a byte surely binary among the tail's last ones rules it
            // out without the census (garbage tails, the common case).
            if ends_in_binary(tail, MIN_TAIL_CHARS) {
                return None;
            }
            let mut tail_counts = census(tail);
            let start = after_control + tail_counts.clean_from;
            let tail = content.get(start..).unwrap_or_default();
            if start != after_control {
                tail_counts = census(tail);
            }
            if tail_counts.printable < MIN_TAIL_CHARS || !is_mostly_printable(&tail_counts) {
                return None;
            }
            (start, tail, tail_counts)
        }
    };
    let from = at + start as u64;
    let to = at + (line.len() + terminator) as u64;
    // The summary carries the text itself, the one field a fixed description; both are written
    // when first asked for (one frame per line of every text stream).
    let clean = start == 0 && counts.binary == 0;
    let description = match (terminator, line.len() != content.len(), clean) {
        (1, true, true) => 0,
        (1, true, false) => 1,
        (1, false, true) => 2,
        (1, false, false) => 3,
        _ if status == FrameStatus::Truncated => 4,
        _ => 5,
    };
    Some(Frame::deferred(
        Protocol::Text,
        from..to,
        "line",
        status,
        describe,
        text.get(..SUMMARY_BYTES).unwrap_or(text),
        description,
    ))
}

/// The text field's value, by the note a line frame carries.
const DESCRIPTIONS: [&str; 6] = [
    "printable text, ends with \\r\\n",
    "text with control or binary bytes (shown as \\xNN), ends with \\r\\n",
    "printable text, ends with \\n",
    "text with control or binary bytes (shown as \\xNN), ends with \\n",
    "text without a line end (the stream ended or paused)",
    "text longer than 4096 bytes, continued in the next line frame",
];

/// Bytes of a line a frame keeps for its summary: `SUMMARY_CHARS` characters take at most four
/// bytes each, and one byte more tells whether the summary ends in "…".
const SUMMARY_BYTES: usize = SUMMARY_CHARS * 4 + 1;

/// Summary (the text, escaped) and the one field of a line frame.
fn describe(frame: &Frame, text: &[u8], note: u32, detail: Detail) -> Description {
    let summary = sanitize(text);
    if detail == Detail::Summary {
        return Description {
            summary,
            fields: Vec::new(),
        };
    }
    let description = usize::try_from(note)
        .ok()
        .and_then(|i| DESCRIPTIONS.get(i))
        .copied()
        .unwrap_or_default();
    Description {
        summary,
        fields: vec![Field::new("text", description, frame.span.clone())],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        let mut framer = TextFramer::new();
        let mut out = Vec::new();
        framer.feed(0, bytes, &mut out);
        framer.flush(&mut out);
        out
    }

    #[test]
    fn lines_with_lf_and_crlf() {
        let frames =
            run(b"hello world\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\n");
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].summary(), "hello world");
        assert_eq!(frames[0].span, 0..13);
        assert_eq!(
            frames[0].fields()[0].value,
            "printable text, ends with \\r\\n"
        );
        assert_eq!(
            frames[1].summary(),
            "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
        );
        assert!(frames.iter().all(|f| f.status.is_ok() && f.kind == "line"));
    }

    #[test]
    fn control_bytes_are_escaped() {
        // An ANSI colour sequence in an ESP-IDF log line.
        let frames = run(b"\x1b[0;32mI (312) cpu_start: Starting scheduler\x1b[0m\n");
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].summary(),
            "\\x1B[0;32mI (312) cpu_start: Starting scheduler\\x1B[0m"
        );
        assert!(!frames[0].summary().bytes().any(|b| b < 0x20));
    }

    #[test]
    fn utf8_is_text() {
        let frames = run("Zählerstand: 1234 kWh\n".as_bytes());
        assert_eq!(frames[0].summary(), "Zählerstand: 1234 kWh");
    }

    #[test]
    fn binary_is_not_text_but_a_clean_tail_is() {
        assert!(run(&[0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0x50, 0xA4, 0x16, b'\n']).is_empty());
        let mut bytes = vec![0x00, 0xFE, 0x01, 0x80, 0x02, 0x90, 0x03];
        bytes.extend(b"invalid header: 0xffffffff\r\n");
        let frames = run(&bytes);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].summary(), "invalid header: 0xffffffff");
        assert_eq!(frames[0].span, 7..35);
        // A few stray characters after binary are not a line.
        assert!(run(&[0x00, 0x01, 0x02, b'h', b'i', b'\n']).is_empty());
    }

    #[test]
    fn blank_lines_are_skipped() {
        assert!(run(b"\r\n\n   \n").is_empty());
    }

    #[test]
    fn long_lines_are_split_and_unfinished_lines_truncated() {
        let mut bytes = vec![b'a'; MAX_LINE + 10];
        bytes.push(b'\n');
        bytes.extend(b"login: ");
        let frames = run(&bytes);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].span, 0..MAX_LINE as u64);
        assert!(
            frames[0]
                .fields()
                .last()
                .unwrap()
                .value
                .contains("continued")
        );
        assert_eq!(frames[1].span, MAX_LINE as u64..MAX_LINE as u64 + 11);
        assert_eq!(frames[2].status, FrameStatus::Truncated);
        assert_eq!(frames[2].summary(), "login: ");
    }

    #[test]
    fn h_for_hello() {
        // 68 65 6C 6C 6F = "hello".
        let frames = run(&[0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x0A]);
        assert_eq!(frames[0].summary(), "hello");
    }

    proptest! {
        /// The eight-at-a-time helpers agree with plain per-byte counts.
        #[test]
        fn word_helpers_agree_with_plain_scans(bytes in prop::collection::vec(0u8..0x80, 0..80), high in prop::collection::vec(any::<u8>(), 0..40), limit in 0usize..100) {
            let plain_bound = |line: &[u8]| {
                let controls = line.iter().filter(|&&b| is_control_byte(b)).count();
                let broken = line.iter().zip(line.iter().skip(1).chain(std::iter::once(&0u8))).filter(|&(&a, &b)| {
                    let continuation = b & 0xC0 == 0x80;
                    (a >= 0xC0 && !continuation) || (a < 0x80 && continuation)
                }).count();
                controls + broken
            };
            prop_assert_eq!(binary_lower_bound(&high), plain_bound(&high));
            prop_assert_eq!(binary_lower_bound(&bytes), plain_bound(&bytes));
            let plain_controls = bytes.iter().filter(|&&b| is_control_byte(b)).count();
            let plain_blanks = bytes.iter().filter(|&&b| b == b' ' || b == b'\t').count();
            prop_assert_eq!(ascii_counts(&bytes), (plain_controls, plain_blanks));
            let plain_run = |b: &[u8]| b.iter().take(limit).take_while(|&&c| (0x20..0x7F).contains(&c)).count();
            prop_assert_eq!(printable_run(&bytes, limit), plain_run(&bytes));
            prop_assert_eq!(printable_run(&high, limit), plain_run(&high));
        }

        #[test]
        fn never_panics_spans_in_range_and_no_raw_controls(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
                prop_assert!(!frame.summary().chars().any(|c| c.is_control()));
            }
        }

        #[test]
        fn split_feeding_equals_whole(
            bytes in prop::collection::vec(prop::sample::select(vec![b'a', b' ', b'\n', b'\r', 0x00, 0xC3, 0xA4, 0xFF]), 0..6000),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut framer = TextFramer::new();
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
        /// `ends_in_binary` only claims what the census confirms: a binary unit ends within
        /// the last bytes it looked at.
        #[test]
        fn ends_in_binary_agrees_with_census(bytes in prop::collection::vec(prop_oneof![any::<u8>(), 0x20u8..0x7F, 0x80u8..0xC0], 0..24), last in 1usize..6) {
            if ends_in_binary(&bytes, last) && bytes.len() >= last {
                prop_assert!(census(&bytes).clean_from > bytes.len() - last);
            }
        }

        /// The lane counts agree with byte-by-byte ones at every length (remainders included).
        #[test]
        fn lane_counts_match_plain_counts(bytes in prop::collection::vec(prop_oneof![0u8..0x80, any::<u8>()], 0..80)) {
            let plain = bytes.iter().rposition(|&b| is_control_byte(b));
            prop_assert_eq!(last_control(&bytes), plain);
            if bytes.is_ascii() {
                let controls = bytes.iter().filter(|&&b| is_control_byte(b)).count();
                let blanks = bytes.iter().filter(|&&b| b == b' ' || b == b'\t').count();
                prop_assert_eq!(ascii_counts(&bytes), (controls, blanks));
            }
        }
    }
}
