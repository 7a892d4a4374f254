//! The diagnosis engine: runs every framer over each direction's stream, turns what it sees
//! (frames, status words, echoes, line errors, 7-bit/8-bit signatures) into Observations, and
//! asks the knowledge base what they mean. Pure: time comes in with the bytes.
//!
//! Repeats of the same finding (same entry, same direction, same first bytes) are folded into
//! one diagnosis with a count, so a meter answering every second does not flood the pane.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use std::collections::VecDeque;

use crate::decode::{Frame, Framer, Protocol, StreamOffset, WEAK_BITS};
use crate::diagnose::arbiter::Arbiter;
use crate::diagnose::classify::Classifier;
use crate::diagnose::knowledge::{Entry, Knowledge, Severity};
use crate::diagnose::observation::{FrameSeen, Observation, StatusWordSeen};
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

// Tokens (`decode::TOKEN_BITS`: a lone E5, 79, 1F or 7F, a byte and its complement, a frame
// start that never completed) are reported only in context: answering, or answered by, a
// frame of the same protocol in the other direction within `REPLY_WINDOW`, or in an epoch
// where that protocol already showed a frame strong enough to count alone.

/// How long after a request its answer may come, and how long a token waits for one. The
/// slowest answers hsmon knows are about a second (an STM32 bootloader's erase ACK comes
/// later, but follows an ACKed command, so the pair is already in context).
pub const REPLY_WINDOW: Timestamp = Timestamp::from_millis(1000);

/// Most tokens waiting for context per direction.
const PARKED_CAP: usize = 64;

/// What one `feed` produced.
#[derive(Debug, Default)]
pub struct Findings {
    /// Arbitrated frames with the time their last byte arrived.
    pub frames: Vec<(Direction, Frame, Timestamp)>,
    /// New diagnoses, and indices (into the engine's numbering) of repeats that were counted.
    pub diagnoses: Vec<Diagnosis>,
    pub repeats: Vec<(u64, Timestamp)>,
}

struct DirState {
    framers: Vec<Box<dyn Framer>>,
    /// Frames found but not yet reported (see `arbiter.rs`).
    arbiter: Arbiter,
    /// Tokens waiting for a frame of their protocol in the other direction.
    parked: VecDeque<(Frame, Timestamp)>,
    /// When a frame of each protocol was last reported in this direction.
    last_reported: [Option<Timestamp>; Protocol::ALL.len()],
    /// Bytes of this direction since the line setting last changed: the positions a frame
    /// could have come from by chance.
    epoch_bytes: u64,
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
            arbiter: Arbiter::default(),
            parked: VecDeque::new(),
            last_reported: [None; Protocol::ALL.len()],
            epoch_bytes: 0,
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
    raised: Raised,
    scratch: Vec<Frame>,
    released: Vec<(Frame, Timestamp)>,
    /// The Tx direction is traffic hsmon observes (a tap), not what it sent itself: only
    /// then is it evidence about a device.
    tx_observed: bool,
}

/// The first bytes a finding is told apart by (at most four): warnings and errors about
/// frames that start differently are distinct findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct KeyBytes {
    len: u8,
    bytes: [u8; 4],
}

impl KeyBytes {
    const NONE: KeyBytes = KeyBytes {
        len: 0,
        bytes: [0; 4],
    };

    /// The first four of `bytes` (or all, when fewer).
    fn of(bytes: &[u8]) -> KeyBytes {
        let mut key = KeyBytes::NONE;
        for (slot, &b) in key.bytes.iter_mut().zip(bytes) {
            *slot = b;
            key.len += 1;
        }
        key
    }
}

/// The findings raised so far, to fold repeats into a count: id → (direction, first bytes) →
/// diagnosis number. Keyed by id first so a repeat (the common case: a meter answering every
/// second) is found by borrowing the entry's id, with nothing allocated.
#[derive(Default)]
struct Raised {
    seen: HashMap<String, HashMap<(Option<Direction>, KeyBytes), u64>>,
    /// Keys in `seen`, all ids together.
    len: usize,
    next: u64,
}

/// Most (id, direction, first bytes) keys remembered; past it new findings are still raised,
/// only no longer folded.
const RAISED_KEYS_CAP: usize = 100_000;

impl Raised {
    /// A new diagnosis from `entry`, or a repeat of the one raised with the same key. The
    /// context is written only for a new one.
    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        entry: &Entry,
        severity: Severity,
        context: impl FnOnce() -> String,
        direction: Option<Direction>,
        span: Option<Range<StreamOffset>>,
        about_68: bool,
        at: Timestamp,
        key_bytes: KeyBytes,
        out: &mut Findings,
    ) {
        let key = (direction, key_bytes);
        if let Some(&n) = self
            .seen
            .get(entry.id.as_str())
            .and_then(|keys| keys.get(&key))
        {
            out.repeats.push((n, at));
            return;
        }
        let n = self.next;
        self.next += 1;
        if self.len < RAISED_KEYS_CAP {
            self.seen
                .entry(entry.id.clone())
                .or_default()
                .insert(key, n);
            self.len += 1;
        }
        out.diagnoses.push(Diagnosis {
            id: entry.id.clone(),
            severity,
            title: entry.title.clone(),
            context: context(),
            direction,
            span,
            about_68,
            first_at: at,
            last_at: at,
            count: 1,
        });
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
            raised: Raised::default(),
            scratch: Vec::new(),
            released: Vec::new(),
            tx_observed: false,
        }
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// Both directions are traffic between other parties (a tap): frames sent in the Tx
    /// direction count as evidence too.
    pub fn set_tx_observed(&mut self, observed: bool) {
        self.tx_observed = observed;
    }

    fn dir_mut(&mut self, dir: Direction) -> &mut DirState {
        match dir {
            Direction::Rx => &mut self.rx,
            Direction::Tx => &mut self.tx,
        }
    }

    fn dir(&self, dir: Direction) -> &DirState {
        match dir {
            Direction::Rx => &self.rx,
            Direction::Tx => &self.tx,
        }
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
        self.classifier
            .count_bytes(dir == Direction::Rx, bytes.len());
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let state = self.dir_mut(dir);
        state.remember(offset, bytes);
        state.epoch_bytes += bytes.len() as u64;
        for f in state.framers.iter_mut() {
            f.feed(offset, bytes, &mut scratch);
        }
        // What cannot be reported here does not compete for the bytes either.
        scratch.retain(|f| plausible(f, state));
        state.arbiter.push(scratch.drain(..), at);
        self.scratch = scratch;
        self.release(dir, at, false, out);
        // The other direction's held frames may have waited long enough.
        self.release(dir.other(), at, false, out);
        if dir == Direction::Rx {
            self.diagnose_bytes(offset, at, bytes, out);
        }
    }

    /// Releases what arbitration lets go in `dir` and reports it.
    fn release(&mut self, dir: Direction, now: Timestamp, force: bool, out: &mut Findings) {
        let mut released = std::mem::take(&mut self.released);
        let state = self.dir_mut(dir);
        if state.arbiter.held() > 0 {
            let horizons = if force {
                Vec::new()
            } else {
                crate::diagnose::arbiter::horizons(&state.framers)
            };
            state.arbiter.release(&horizons, now, force, &mut released);
        }
        for (frame, at) in released.drain(..) {
            self.settle(dir, frame, at, out);
        }
        self.released = released;
        self.expire_parked(now);
    }

    /// Tokens that waited a reply window in vain are dropped.
    fn expire_parked(&mut self, now: Timestamp) {
        for state in [&mut self.rx, &mut self.tx] {
            while state
                .parked
                .front()
                .is_some_and(|(_, at)| now.saturating_sub(*at) > REPLY_WINDOW)
            {
                state.parked.pop_front();
            }
        }
    }

    /// An arbitrated frame: checked for context, then counted, diagnosed and reported.
    fn settle(&mut self, dir: Direction, frame: Frame, at: Timestamp, out: &mut Findings) {
        if !frame.evidence().rank().is_token() {
            let offsets = self.dir(dir).epoch_bytes;
            self.report(dir, frame, at, offsets, false, out);
            return;
        }
        // Card-line units after a valid ATR: the ATR is their context (`plausible`).
        if frame.protocol == Protocol::Iso7816Line {
            let offsets = self.dir(dir).epoch_bytes;
            self.report(dir, frame, at, offsets, true, out);
            return;
        }
        // A token: in context only.
        let p = frame.protocol;
        let other = dir.other();
        let answers = self.dir(other).last_reported[p as usize]
            .is_some_and(|t| at.saturating_sub(t) <= REPLY_WINDOW);
        let answered_parked = self
            .dir(other)
            .parked
            .iter()
            .any(|(f, t)| f.protocol == p && at.saturating_sub(*t) <= REPLY_WINDOW);
        if answered_parked {
            // The two waited for each other (a request and its answer; either may have left
            // arbitration first): both are reported, in the order they arrived.
            let parked = std::mem::take(&mut self.dir_mut(other).parked);
            let (mine, rest): (VecDeque<_>, VecDeque<_>) =
                parked.into_iter().partition(|(f, _)| f.protocol == p);
            self.dir_mut(other).parked = rest;
            let mut pair: Vec<_> = mine.into_iter().map(|(f, t)| (other, f, t)).collect();
            pair.push((dir, frame, at));
            pair.sort_by_key(|(_, _, t)| *t);
            for (d, f, t) in pair {
                self.report(d, f, t, 1, true, out);
            }
        } else if answers {
            self.report(dir, frame, at, 1, true, out);
        } else if self.classifier.supports(p) {
            let offsets = self.dir(dir).epoch_bytes;
            self.report(dir, frame, at, offsets, true, out);
        } else {
            let parked = &mut self.dir_mut(dir).parked;
            // Bounded: a run of garbage parks a token every few bytes, and only the last
            // ones can still meet an answer.
            if parked.len() >= PARKED_CAP {
                parked.pop_front();
            }
            parked.push_back((frame, at));
        }
    }

    /// Counts, diagnoses and reports a frame. `in_context`: a weak frame that answers or is
    /// answered by its protocol, or whose protocol this epoch already showed; only such a
    /// weak frame may raise an error.
    fn report(
        &mut self,
        dir: Direction,
        frame: Frame,
        at: Timestamp,
        offsets: u64,
        in_context: bool,
        out: &mut Findings,
    ) {
        if dir == Direction::Rx || self.tx_observed {
            self.classifier
                .observe(&frame, dir == Direction::Rx, offsets);
        }
        self.dir_mut(dir).last_reported[frame.protocol as usize] = Some(at);
        self.diagnose_frame(dir, at, &frame, in_context, out);
        out.frames.push((dir, frame, at));
    }

    /// When held frames are next due for release by time (None: nothing held).
    pub fn due(&self) -> Option<Timestamp> {
        match (self.rx.arbiter.due(), self.tx.arbiter.due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Releases frames held long enough on a line that went quiet.
    pub fn poll(&mut self, now: Timestamp, out: &mut Findings) {
        for dir in [Direction::Rx, Direction::Tx] {
            self.release(dir, now, false, out);
        }
    }

    /// Reports frames still pending (a long idle gap, or the end of a capture).
    pub fn flush(&mut self, at: Timestamp, out: &mut Findings) {
        for dir in [Direction::Rx, Direction::Tx] {
            let mut frames = std::mem::take(&mut self.scratch);
            frames.clear();
            let state = self.dir_mut(dir);
            for f in state.framers.iter_mut() {
                f.flush(&mut frames);
            }
            frames.retain(|f| plausible(f, state));
            state.arbiter.push(frames.drain(..), at);
            self.scratch = frames;
            self.release(dir, at, true, out);
        }
    }

    /// Forgets partial frames (after a reconnect): frames already complete are reported
    /// first, as they were found.
    pub fn reset(&mut self, at: Timestamp, out: &mut Findings) {
        for dir in [Direction::Rx, Direction::Tx] {
            self.release(dir, at, true, out);
        }
        for f in self.rx.framers.iter_mut().chain(self.tx.framers.iter_mut()) {
            f.reset();
        }
        for state in [&mut self.rx, &mut self.tx] {
            state.arbiter.clear();
        }
    }

    /// A new line setting (baud rate, format): partial frames are forgotten, and evidence
    /// from here on belongs to the new epoch (see [`Classifier::new_epoch`]).
    pub fn new_epoch(&mut self, at: Timestamp, out: &mut Findings) {
        self.reset(at, out);
        self.classifier.new_epoch();
        for state in [&mut self.rx, &mut self.tx] {
            state.epoch_bytes = 0;
            state.parked.clear();
            state.last_reported = [None; Protocol::ALL.len()];
        }
    }

    fn diagnose_frame(
        &mut self,
        dir: Direction,
        at: Timestamp,
        frame: &Frame,
        in_context: bool,
        out: &mut Findings,
    ) {
        let state = match dir {
            Direction::Rx => &self.rx,
            Direction::Tx => &self.tx,
        };
        // Everything read from the frame's bytes is taken here, while they are borrowed from
        // the history: the observation, the first bytes for the key and the context.
        let bytes = state.bytes(&frame.span);
        // The bytes just sent coming back (the whole transmission, or its tail).
        let echo = dir == Direction::Rx && !bytes.is_empty() && self.last_tx.ends_with(bytes);
        // The frame observation is built only if some entry could match it (copying the
        // bytes and kind for nothing was most of what a plain frame cost here).
        let frame_obs = self
            .knowledge
            .may_match_frame(frame.protocol, &frame.status, dir, echo, false)
            .then(|| Observation::Frame(FrameSeen::from_frame(frame, dir, bytes).with_echo(echo)));
        let sw = status_word(frame, bytes);
        let about_68 = bytes.first() == Some(&0x68)
            || bytes.iter().find(|&&b| b != 0xFE) == Some(&0x68)
            || sw.is_some_and(|sw| sw >> 8 == 0x68);
        let key = KeyBytes::of(bytes);
        let mut head = [0u8; 12];
        let head_len = bytes.len().min(head.len());
        if let (Some(to), Some(from)) = (head.get_mut(..head_len), bytes.get(..head_len)) {
            to.copy_from_slice(from);
        }
        let more = bytes.len() > head.len();
        // Written only for a new finding: repeats are counted, and most frames raise nothing.
        let context = || {
            format!(
                "{} {}{} — {} {}",
                dir.label(),
                crate::hex::spaced(head.get(..head_len).unwrap_or_default()),
                if more { " …" } else { "" },
                frame.protocol.name(),
                crate::sanitize::printable(&frame.summary_once()),
            )
        };
        let sw_obs = sw.map(|sw| {
            Observation::StatusWord(StatusWordSeen {
                sw,
                cla: None,
                ins: None,
            })
        });
        for obs in frame_obs.iter().chain(sw_obs.as_ref()) {
            // Valid, unremarkable frames only raise info entries the knowledge base has for
            // them; corrupt frames always raise something (the fallback entries).
            let Some(entry) = self.knowledge.best(obs) else {
                continue;
            };
            if frame.status.is_ok() && entry.severity == Severity::Info && !about_68 {
                continue;
            }
            // A weak frame is evidence of little: it may warn, never raise an error (a
            // glitch's 00 FE is not a reason to change the line format).
            let severity = if !in_context && frame.evidence().bits < WEAK_BITS {
                entry.severity.min(Severity::Warning)
            } else {
                entry.severity
            };
            // Info entries are said once per direction; warnings and errors once per kind of
            // frame (its first bytes), so distinct faults stay apart.
            let key_bytes = if entry.severity == Severity::Info {
                KeyBytes::NONE
            } else {
                key
            };
            self.raised.raise(
                entry,
                severity,
                context,
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
        // The signature needs every byte to be text or bit-7 text: the first other byte ends
        // the look (at once, on binary data). Nothing is collected; this runs on every read.
        let mut printable = 0usize;
        let mut high = 0usize;
        let mut first_high = None;
        for (i, &b) in bytes.iter().enumerate() {
            match byte_class(b) {
                ByteClass::Text => printable += 1,
                ByteClass::HighText => {
                    high += 1;
                    first_high.get_or_insert((i, b));
                }
                ByteClass::Other => return,
            }
        }
        // Text whose only oddities are printable characters with bit 7 set: 7E1 read as 8N1.
        if printable < 4 || high * 2 > bytes.len() {
            return;
        }
        // UTF-8 text (a log's "µs" or "°C") has bytes with bit 7 set too, always in valid
        // sequences; a parity bit read as data breaks them (E8 65 6C is no UTF-8).
        if first_high.is_some() && utf8_but_for_cut_ends(bytes) {
            return;
        }
        if let Some((i, b)) = first_high {
            let obs = Observation::SevenBitPair { byte: b & 0x7F };
            if let Some(entry) = self.knowledge.best(&obs) {
                let start = offset + i as u64;
                let context = || {
                    format!(
                        "rx {:02X} where text has '{}' ({:02X}): bit 7 set on some characters",
                        b,
                        (b & 0x7F) as char,
                        b & 0x7F
                    )
                };
                self.raised.raise(
                    entry,
                    entry.severity,
                    context,
                    Some(Direction::Rx),
                    Some(start..start + 1),
                    b & 0x7F == 0x68,
                    at,
                    KeyBytes::of(&[b]),
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
        if let Some(entry) = self.knowledge.best(obs) {
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
            self.raised.raise(
                entry,
                entry.severity,
                || context,
                None,
                None,
                about_68,
                at,
                KeyBytes::NONE,
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
        self.raised.raise(
            entry,
            entry.severity,
            || context,
            None,
            None,
            about_68,
            at,
            KeyBytes::NONE,
            out,
        );
        true
    }
}

/// Whether `bytes` are valid UTF-8 but for a character cut at either end (a read may start
/// or stop inside one).
fn utf8_but_for_cut_ends(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    for chunk in bytes.utf8_chunks() {
        at += chunk.valid().len();
        let bad = chunk.invalid().len();
        // A cut character: continuation bytes at the very start, or an incomplete lead at
        // the very end (at most three bytes either way).
        let at_start = at == 0 && bad <= 3 && chunk.invalid().iter().all(|b| b & 0xC0 == 0x80);
        let at_end = at + bad == bytes.len() && bad <= 3;
        if bad > 0 && !at_start && !at_end {
            return false;
        }
        at += bad;
    }
    true
}

/// What a received byte is to the 7-bit/8-bit signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// Printable ASCII or whitespace.
    Text,
    /// A printable character with bit 7 set (0xA1..=0xFE), except the values a noise glitch
    /// produces (FE, FC, F8, F0, E0, C0: runs of 1 bits from the top).
    HighText,
    Other,
}

fn byte_class(b: u8) -> ByteClass {
    if b.is_ascii_graphic() || b.is_ascii_whitespace() {
        ByteClass::Text
    } else if b >= 0xA0
        && (b & 0x7F).is_ascii_graphic()
        && !matches!(b, 0xFF | 0xFE | 0xFC | 0xF8 | 0xF0 | 0xE0 | 0xC0)
    {
        ByteClass::HighText
    } else {
        ByteClass::Other
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

/// Weak evidence is dropped before it competes for bytes, misleads the classifier or raises
/// an event:
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
