//! The diagnosis engine: runs every framer over each direction's stream, turns what it sees
//! (frames, status words, echoes, line errors, 7-bit/8-bit signatures) into Observations, and
//! asks the knowledge base what they mean. Pure: time comes in with the bytes.
//!
//! Repeats of the same finding (same entry, same direction, same first bytes) are folded into
//! one diagnosis with a count, so a meter answering every second does not flood the pane.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::decode::{Frame, FrameStatus, Framer, Protocol, StreamOffset};
use crate::diagnose::classify::Classifier;
use crate::diagnose::knowledge::{Knowledge, Severity};
use crate::diagnose::observation::{self, FrameSeen, Observation, StatusWordSeen};
use crate::event::{Direction, Timestamp};

/// Bytes of recent history kept per direction, to read back the bytes of a frame that
/// spans several reads, and to recognise echoes.
const HISTORY: usize = 64 * 1024;

/// A finding for the events pane and the `event` records.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// Knowledge entry id (`mbus.long_frame_unexpected`, `iso7816.sw.6882`, ...).
    pub id: String,
    pub severity: Severity,
    pub title: String,
    /// What was seen, in this session's terms ("rx 68 15 15 68 … (M-Bus long frame)").
    pub context: String,
    pub direction: Option<Direction>,
    /// Bytes it is about, in that direction's stream.
    pub span: Option<Range<StreamOffset>>,
    /// Whether a 0x68 byte is at the heart of it (these sort first).
    pub about_68: bool,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    pub count: u64,
}

/// What one `feed` produced.
#[derive(Debug, Default)]
pub struct Findings {
    pub frames: Vec<(Direction, Frame)>,
    /// New diagnoses, and indices (into the engine's numbering) of repeats that were counted.
    pub diagnoses: Vec<Diagnosis>,
    pub repeats: Vec<(u64, Timestamp)>,
}

struct DirState {
    framers: Vec<Box<dyn Framer>>,
    /// A valid ATR was seen: from here on this direction may be a card's I/O line.
    card_line: bool,
    /// The last bytes of this direction and the stream offset of `history[0]`.
    history: Vec<u8>,
    history_start: StreamOffset,
}

impl DirState {
    fn new() -> DirState {
        DirState {
            framers: crate::decode::framers(),
            card_line: false,
            history: Vec::with_capacity(HISTORY),
            history_start: 0,
        }
    }

    fn remember(&mut self, offset: StreamOffset, bytes: &[u8]) {
        if self.history.is_empty() {
            self.history_start = offset;
        }
        self.history.extend_from_slice(bytes);
        if self.history.len() > HISTORY * 2 {
            let cut = self.history.len() - HISTORY;
            self.history.drain(..cut);
            self.history_start += cut as u64;
        }
    }

    fn bytes(&self, span: &Range<StreamOffset>) -> &[u8] {
        let s = span.start.saturating_sub(self.history_start) as usize;
        let e = span.end.saturating_sub(self.history_start) as usize;
        if span.start < self.history_start {
            return &[];
        }
        self.history
            .get(s..e.min(self.history.len()))
            .unwrap_or(&[])
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("knowledge_entries", &self.knowledge.entries().len())
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}

pub struct Engine {
    knowledge: Arc<Knowledge>,
    rx: DirState,
    tx: DirState,
    /// The last transmitted chunk, to recognise a half-duplex echo.
    last_tx: Vec<u8>,
    pub classifier: Classifier,
    /// (id, direction, first bytes) → diagnosis number, for folding repeats.
    seen: HashMap<(String, Option<Direction>, Vec<u8>), u64>,
    next: u64,
    scratch: Vec<Frame>,
}

fn obs_dir(d: Direction) -> observation::Direction {
    match d {
        Direction::Rx => observation::Direction::Rx,
        Direction::Tx => observation::Direction::Tx,
    }
}

impl Engine {
    pub fn new(knowledge: Arc<Knowledge>) -> Engine {
        Engine {
            knowledge,
            rx: DirState::new(),
            tx: DirState::new(),
            last_tx: Vec::new(),
            classifier: Classifier::default(),
            seen: HashMap::new(),
            next: 0,
            scratch: Vec::new(),
        }
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// Feeds bytes of one direction; `offset` is the stream offset of `bytes[0]`.
    pub fn feed(
        &mut self,
        dir: Direction,
        offset: StreamOffset,
        at: Timestamp,
        bytes: &[u8],
        out: &mut Findings,
    ) {
        if dir == Direction::Tx {
            self.last_tx.clear();
            self.last_tx
                .extend_from_slice(&bytes[..bytes.len().min(256)]);
        }
        let state = match dir {
            Direction::Rx => &mut self.rx,
            Direction::Tx => &mut self.tx,
        };
        state.remember(offset, bytes);
        self.scratch.clear();
        for f in state.framers.iter_mut() {
            f.feed(offset, bytes, &mut self.scratch);
        }
        let frames = resolve_overlaps(std::mem::take(&mut self.scratch));
        for frame in frames {
            let state = match dir {
                Direction::Rx => &mut self.rx,
                Direction::Tx => &mut self.tx,
            };
            if !plausible(&frame, state) || !self.corroborated(&frame) {
                continue;
            }
            self.classifier.observe(&frame, dir == Direction::Rx);
            self.diagnose_frame(dir, at, &frame, out);
            out.frames.push((dir, frame));
        }
        if dir == Direction::Rx {
            self.diagnose_bytes(offset, at, bytes, out);
        }
    }

    /// A corrupt bootloader frame (a 2-byte command with a bad complement, a damaged MTK
    /// reply) is more often line noise (00 FE is a glitch) than a bootloader: it counts
    /// only once a valid frame of that protocol was seen.
    fn corroborated(&self, frame: &Frame) -> bool {
        match frame.protocol {
            Protocol::Stm32Boot | Protocol::MtkBrom if !frame.status.is_ok() => {
                self.classifier.tally(frame.protocol).ok > 0
            }
            _ => true,
        }
    }

    /// Reports frames still pending (a long idle gap, or the end of a capture).
    pub fn flush(&mut self, at: Timestamp, out: &mut Findings) {
        for dir in [Direction::Rx, Direction::Tx] {
            let state = match dir {
                Direction::Rx => &mut self.rx,
                Direction::Tx => &mut self.tx,
            };
            let mut frames = Vec::new();
            for f in state.framers.iter_mut() {
                f.flush(&mut frames);
            }
            for frame in resolve_overlaps(frames) {
                let state = match dir {
                    Direction::Rx => &mut self.rx,
                    Direction::Tx => &mut self.tx,
                };
                if !plausible(&frame, state) || !self.corroborated(&frame) {
                    continue;
                }
                self.classifier.observe(&frame, dir == Direction::Rx);
                self.diagnose_frame(dir, at, &frame, out);
                out.frames.push((dir, frame));
            }
        }
    }

    /// Forgets partial frames (after a reconnect or a settings change).
    pub fn reset(&mut self) {
        for f in self.rx.framers.iter_mut().chain(self.tx.framers.iter_mut()) {
            f.reset();
        }
    }

    fn diagnose_frame(&mut self, dir: Direction, at: Timestamp, frame: &Frame, out: &mut Findings) {
        let state = match dir {
            Direction::Rx => &self.rx,
            Direction::Tx => &self.tx,
        };
        let bytes = state.bytes(&frame.span).to_vec();
        // The bytes just sent coming back (the whole transmission, or its tail).
        let echo = dir == Direction::Rx && !bytes.is_empty() && self.last_tx.ends_with(&bytes);
        let seen = FrameSeen::from_frame(frame, obs_dir(dir), &bytes).with_echo(echo);
        let mut observations = vec![Observation::Frame(seen)];
        if let Some(sw) = status_word(frame, &bytes) {
            observations.push(Observation::StatusWord(StatusWordSeen {
                sw,
                cla: None,
                ins: None,
            }));
        }
        let about_68 = bytes.first() == Some(&0x68)
            || bytes.iter().find(|&&b| b != 0xFE) == Some(&0x68)
            || status_word(frame, &bytes).is_some_and(|sw| sw >> 8 == 0x68);
        let context = format!(
            "{} {}{} — {} {}",
            dir.label(),
            crate::sanitize::hex_string(&bytes[..bytes.len().min(12)]),
            if bytes.len() > 12 { " …" } else { "" },
            frame.protocol.name(),
            crate::sanitize::printable(frame.summary()),
        );
        for obs in observations {
            // Valid, unremarkable frames only raise info entries the knowledge base has for
            // them; corrupt frames always raise something (the fallback entries).
            let best = self.knowledge.matches(&obs).into_iter().next();
            let Some(entry) = best else { continue };
            if frame.status.is_ok() && entry.severity == Severity::Info && !about_68 {
                continue;
            }
            // Info entries are said once per direction; warnings and errors once per kind of
            // frame (its first bytes), so distinct faults stay apart.
            let key_bytes: Vec<u8> = if entry.severity == Severity::Info {
                Vec::new()
            } else {
                bytes.iter().take(4).copied().collect()
            };
            self.raise(
                entry.id.clone(),
                entry.severity,
                entry.title.clone(),
                context.clone(),
                Some(dir),
                Some(frame.span.clone()),
                about_68,
                at,
                key_bytes,
                out,
            );
        }
    }

    /// Byte-level evidence with no frame around it: the 7-bit/8-bit signature.
    fn diagnose_bytes(
        &mut self,
        offset: StreamOffset,
        at: Timestamp,
        bytes: &[u8],
        out: &mut Findings,
    ) {
        let printable = bytes
            .iter()
            .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            .count();
        let high: Vec<(usize, u8)> = bytes
            .iter()
            .enumerate()
            // The values a noise glitch produces (FF, FE, … 80) are not a bit-7 signature.
            .filter(|(_, b)| {
                **b >= 0xA0
                    && (**b & 0x7F).is_ascii_graphic()
                    && !matches!(**b, 0xFF | 0xFE | 0xFC | 0xF8 | 0xF0 | 0xE0 | 0xC0)
            })
            .map(|(i, b)| (i, *b))
            .collect();
        let other = bytes.len() - printable - high.len();
        // Text whose only oddities are printable characters with bit 7 set: 7E1 read as 8N1.
        if printable >= 4 && !high.is_empty() && other == 0 && high.len() * 2 <= bytes.len() {
            let (i, b) = high[0];
            let obs = Observation::SevenBitPair { byte: b & 0x7F };
            if let Some(entry) = self.knowledge.matches(&obs).into_iter().next() {
                let start = offset + i as u64;
                let context = format!(
                    "rx {:02X} where text has '{}' ({:02X}): bit 7 set on some characters",
                    b,
                    (b & 0x7F) as char,
                    b & 0x7F
                );
                self.raise(
                    entry.id.clone(),
                    entry.severity,
                    entry.title.clone(),
                    context,
                    Some(Direction::Rx),
                    Some(start..start + 1),
                    b & 0x7F == 0x68,
                    at,
                    vec![b],
                    out,
                );
            }
        }
    }

    /// Raises an observation that does not come from the byte stream (PC/SC codes, line
    /// counters, handshake divergences): the best entry, if any.
    pub fn observe(
        &mut self,
        obs: &Observation,
        at: Timestamp,
        context: String,
        out: &mut Findings,
    ) {
        if let Some(entry) = self.knowledge.matches(obs).into_iter().next() {
            let about_68 = match obs {
                Observation::RepeatedByte { byte, .. } | Observation::IsolatedByte { byte, .. } => {
                    *byte == 0x68
                }
                Observation::SevenBitPair { byte } => *byte == 0x68,
                Observation::Pcsc { code } => code & 0xFF == 0x68,
                Observation::StatusWord(sw) => sw.sw >> 8 == 0x68,
                Observation::Handshake(h) => h.got.first() == Some(&0x68),
                _ => false,
            };
            self.raise(
                entry.id.clone(),
                entry.severity,
                entry.title.clone(),
                context,
                None,
                None,
                about_68,
                at,
                Vec::new(),
                out,
            );
        }
    }

    /// Raises the entry `id` for an observation made outside the byte stream, when something
    /// other than matching chose it (a handshake profile names the entry for its divergence).
    /// False if the knowledge base has no such entry.
    pub fn raise_entry(
        &mut self,
        id: &str,
        about_68: bool,
        at: Timestamp,
        context: String,
        out: &mut Findings,
    ) -> bool {
        let Some(entry) = self.knowledge.get(id) else {
            return false;
        };
        let (id, severity, title) = (entry.id.clone(), entry.severity, entry.title.clone());
        self.raise(
            id,
            severity,
            title,
            context,
            None,
            None,
            about_68,
            at,
            Vec::new(),
            out,
        );
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        id: String,
        severity: Severity,
        title: String,
        context: String,
        direction: Option<Direction>,
        span: Option<Range<StreamOffset>>,
        about_68: bool,
        at: Timestamp,
        key_bytes: Vec<u8>,
        out: &mut Findings,
    ) {
        let key = (id.clone(), direction, key_bytes);
        if let Some(&n) = self.seen.get(&key) {
            out.repeats.push((n, at));
            return;
        }
        let n = self.next;
        self.next += 1;
        if self.seen.len() < 100_000 {
            self.seen.insert(key, n);
        }
        out.diagnoses.push(Diagnosis {
            id,
            severity,
            title,
            context,
            direction,
            span,
            about_68,
            first_at: at,
            last_at: at,
            count: 1,
        });
    }
}

fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || matches!(b, b'\r' | b'\n' | b'\t')
}

/// The frame's bytes are printable and so is the byte before: it is a piece of text.
fn in_text(frame: &Frame, state: &DirState) -> bool {
    let bytes = state.bytes(&frame.span);
    let before = frame
        .span
        .start
        .checked_sub(1)
        .and_then(|b| state.bytes(&(b..b + 1)).first().copied());
    !bytes.is_empty() && bytes.iter().all(|&b| printable(b)) && before.is_some_and(printable)
}

/// Weak evidence is dropped before it can mislead the classifier or raise an event:
/// - one- or two-byte bootloader replies (STM32 79/1F, MediaTek 5F…) inside running text
///   (the 'y' of "every" is 0x79);
/// - ISO 7816-3 line traffic before a valid ATR was seen on that direction (any binary
///   stream contains a 3B or a 03 somewhere); a corrupt ATR counts only at the very start
///   of the stream, where a card's answer to reset would be.
fn plausible(frame: &Frame, state: &mut DirState) -> bool {
    match frame.protocol {
        Protocol::Stm32Boot | Protocol::MtkBrom => !in_text(frame, state),
        Protocol::Iso7816Line => {
            if frame.kind == "atr" {
                if in_text(frame, state) {
                    return false;
                }
                if frame.status.is_ok() {
                    state.card_line = true;
                    return true;
                }
                return frame.span.start == 0;
            }
            state.card_line
        }
        _ => true,
    }
}

/// The status word of a response APDU or of an ISO 7816-3 line "sw" frame: its last two bytes.
fn status_word(frame: &Frame, bytes: &[u8]) -> Option<u16> {
    let is_sw = matches!(
        (frame.protocol, frame.kind),
        (Protocol::Apdu, "response") | (Protocol::Iso7816Line, "sw")
    );
    if !is_sw || !frame.status.is_ok() {
        return None;
    }
    match bytes {
        [.., a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// M-Bus and IEC 101 share FT1.2 framing, so both framers claim the same bytes; keep the
/// reading the content supports (the M-Bus heuristic of reference §10), and drop text lines
/// that merely overlap a checksummed frame.
fn resolve_overlaps(mut frames: Vec<Frame>) -> Vec<Frame> {
    if frames.len() < 2 {
        return frames;
    }
    frames.sort_by_key(|f| (f.span.start, f.span.end));
    let mut keep = vec![true; frames.len()];
    for i in 0..frames.len() {
        for j in i + 1..frames.len() {
            let (a, b) = (&frames[i], &frames[j]);
            if b.span.start >= a.span.end {
                break;
            }
            let same = a.span == b.span;
            let pair = (a.protocol, b.protocol);
            if same
                && matches!(
                    pair,
                    (Protocol::Mbus, Protocol::Iec101) | (Protocol::Iec101, Protocol::Mbus)
                )
            {
                let mbus = if a.protocol == Protocol::Mbus { i } else { j };
                let iec = if a.protocol == Protocol::Iec101 { i } else { j };
                if crate::decode::looks_like_mbus(&frames[mbus]) {
                    keep[iec] = false;
                } else {
                    keep[mbus] = false;
                }
            } else if a.protocol == Protocol::Text
                && b.protocol != Protocol::Text
                && b.status == FrameStatus::Ok
            {
                keep[i] = false;
            } else if b.protocol == Protocol::Text
                && a.protocol != Protocol::Text
                && a.status == FrameStatus::Ok
            {
                keep[j] = false;
            }
        }
    }
    frames
        .into_iter()
        .zip(keep)
        .filter_map(|(f, k)| k.then_some(f))
        .collect()
}
