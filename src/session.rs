//! The session model: ingests Events in order and keeps what the panes show — a bounded window
//! of bytes in both directions, line settings, connection state, counters and notices.
//! No terminal code and no clock: time comes in with each event.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::card::log::CardLog;
use crate::decode::{Frame, StreamOffset};
use crate::diagnose::baud_watch::BaudWatch;
use crate::diagnose::engine::{Diagnosis, Engine, Findings};
use crate::diagnose::knowledge::Knowledge;
use crate::event::{
    ConnectionState, Direction, Event, LineErrorCounts, LineSettings, ModemLines, TimedEvent,
    Timestamp,
};

/// Default cap on the memory the scrollback window uses (both directions together): the
/// bytes themselves plus their arrival marks, so small reads cannot multiply it.
pub const DEFAULT_WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// Largest run of same-direction bytes kept in one piece. Divisible by every row width the
/// hex pane uses (multiples of 8 up to 64), so rows never break at a run boundary.
pub const RUN_CAPACITY: usize = 40_320;

/// Most notices kept (connection changes, refused commands, overruns).
const NOTICES_CAP: usize = 1000;

/// Most decoded frames kept in memory.
pub const FRAMES_CAP: usize = 200_000;

/// Most heap the kept frames may use, by [`frame_heap_bytes`] (estimated for frames not
/// described yet, see `DescriptionCosts`). A frame with its field tree takes from a few
/// hundred bytes to several KiB, so the count cap alone let 200k frames
/// grow the process past 500 MiB (measured by `examples/perf_suite.rs`). With the 64 MiB
/// byte window, a source's 8 MiB stall queue and its 128-event channel this keeps the process
/// under 100 MiB even if every kept frame gets described (a session alone: 79 MiB after
/// 1 GiB, `examples/session_memory.rs`); it holds ~4.4k–5.6k frames of busy M-Bus and log traffic.
pub const FRAMES_BYTES_CAP: usize = 8 * 1024 * 1024;

/// Largest piece of one event handed to the decoders at once. The frames found in a piece
/// are taken into the bounded list before the next piece is decoded, so a multi-megabyte
/// event (a source catching up after a stall) never holds all its frames in memory at once.
const DECODE_SLICE: usize = 64 * 1024;

/// How many times `needle` occurs in `bytes`. Counted in 255-byte pieces with a byte-wide
/// tally, which the compiler turns into wide vector compares (a plain `filter().count()`
/// widens every byte to 64 bits): it runs over every received byte.
fn count_byte(bytes: &[u8], needle: u8) -> u64 {
    bytes
        .chunks(255)
        .map(|piece| {
            u64::from(
                piece
                    .iter()
                    .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == needle))),
            )
        })
        .sum()
}

/// Heap one run's byte and mark buffers use (by capacity): what the window cap bounds, so a
/// session of one-byte reads (a slow line) stays as bounded as one of large reads.
fn run_heap(r: &Run) -> usize {
    r.bytes.capacity() + r.marks.capacity() * std::mem::size_of::<(u32, Timestamp)>()
}

/// Most diagnoses kept in memory (repeats are counted, not stored).
pub const DIAGNOSES_CAP: usize = 20_000;

/// Approximate heap bytes a kept frame uses once described: the record itself, its kept
/// bytes, its summary and its field tree (names, values, child lists), each allocation counted
/// as the allocator rounds it (16-byte granules with an 8-byte header, 32 at least): a frame
/// is mostly short strings, so counting only their lengths under-states it by about a third.
/// Describes the frame if nothing has yet.
pub fn frame_heap_bytes(f: &Frame) -> usize {
    record_heap(f) + description_heap(f.description())
}

fn chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// The frame's heap without its description: the record, a status text, kept bytes.
fn record_heap(f: &Frame) -> usize {
    let status = match &f.status {
        crate::decode::FrameStatus::Malformed(why) => chunk(why.capacity()),
        _ => 0,
    };
    std::mem::size_of::<SessionFrame>() + status + chunk(f.kept_heap())
}

/// Heap of a built description: its box, summary and field tree.
fn description_heap(d: &crate::decode::frame::Description) -> usize {
    fn fields(list: &[crate::decode::Field], cap: usize) -> usize {
        chunk(cap * std::mem::size_of::<crate::decode::Field>())
            + list
                .iter()
                .map(|x| {
                    chunk(x.name.capacity())
                        + chunk(x.value.capacity())
                        + fields(&x.children, x.children.capacity())
                })
                .sum::<usize>()
    }
    chunk(std::mem::size_of::<crate::decode::frame::Description>())
        + chunk(d.summary.len())
        + fields(&d.fields, d.fields.len())
}

/// Frames of each (protocol, kind) described in full before their cost is estimated, and
/// after that one in how many.
const COST_SAMPLES_FIRST: u64 = 16;
const COST_SAMPLE_EVERY: u64 = 64;

/// What a frame's description takes, learnt per (protocol, kind) from frames described in
/// full. Kept frames are charged as if described (the frames pane or detail view may describe
/// any of them), but describing every frame to measure it would cost more than decoding it:
/// a busy line brings tens of thousands a second, and a headless run prints their summaries
/// (`Frame::summary_once`) and never looks at them again. So the first frames of each kind
/// and then one in `COST_SAMPLE_EVERY` are described and measured, and the others are charged
/// the mean of their kind.
#[derive(Debug, Default)]
struct DescriptionCosts {
    kinds: Vec<KindCost>,
}

#[derive(Debug)]
struct KindCost {
    protocol: crate::decode::Protocol,
    kind: &'static str,
    frames: u64,
    sampled: u64,
    sum: u64,
}

impl DescriptionCosts {
    /// The heap a kept frame is charged: measured if it is described (or sampled now),
    /// else its record plus the mean description of its kind.
    fn charge(&mut self, f: &Frame) -> usize {
        let record = record_heap(f);
        if let Some(d) = f.built_description() {
            return record + description_heap(d);
        }
        let i = match self
            .kinds
            .iter()
            .position(|k| k.protocol == f.protocol && k.kind == f.kind)
        {
            Some(i) => i,
            None => {
                self.kinds.push(KindCost {
                    protocol: f.protocol,
                    kind: f.kind,
                    frames: 0,
                    sampled: 0,
                    sum: 0,
                });
                self.kinds.len() - 1
            }
        };
        let Some(k) = self.kinds.get_mut(i) else {
            return frame_heap_bytes(f);
        };
        k.frames += 1;
        if k.sampled < COST_SAMPLES_FIRST || k.frames % COST_SAMPLE_EVERY == 0 {
            let heap = description_heap(f.description());
            k.sampled += 1;
            k.sum += heap as u64;
            return record + heap;
        }
        record + k.sum.div_ceil(k.sampled.max(1)) as usize
    }
}

/// A decoded frame and where it came from.
#[derive(Debug, Clone)]
pub struct SessionFrame {
    /// Monotonic number (survives eviction of older frames).
    pub seq: u64,
    pub direction: Direction,
    pub at: Timestamp,
    pub frame: Frame,
    /// What the frame was charged against `FRAMES_BYTES_CAP` when kept (given back on eviction).
    heap: usize,
}

/// A diagnosis and its number.
#[derive(Debug, Clone)]
pub struct SessionDiagnosis {
    pub seq: u64,
    pub diagnosis: Diagnosis,
}

/// A stretch of consecutive bytes in one direction.
#[derive(Debug, Clone)]
pub struct Run {
    /// Monotonic id, so a scroll anchor survives eviction of older runs.
    pub seq: u64,
    pub direction: Direction,
    /// Offset of `bytes[0]` in this direction's stream.
    pub start: StreamOffset,
    pub bytes: Vec<u8>,
    /// (index into `bytes`, arrival time) for each chunk that landed in this run.
    marks: Vec<(u32, Timestamp)>,
}

impl Run {
    /// Arrival time of the byte at `index` (the time of the chunk it came in).
    pub fn time_of(&self, index: usize) -> Timestamp {
        let i = self
            .marks
            .partition_point(|(at, _)| (*at as usize) <= index);
        self.marks
            .get(i.saturating_sub(1))
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
}

/// Something the user should read in the status line or notices list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: Timestamp,
    pub level: NoticeLevel,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

/// Bytes per second over the last second or so, from event timestamps.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    /// (time, bytes) of recent chunks, oldest first; only the last ~2 s are kept.
    samples: VecDeque<(Timestamp, u64)>,
}

impl RateMeter {
    const WINDOW: Timestamp = Timestamp::from_secs(1);

    fn add(&mut self, at: Timestamp, n: usize) {
        self.samples.push_back((at, n as u64));
        while let Some(&(t, _)) = self.samples.front() {
            if at.saturating_sub(t) > Self::WINDOW * 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Bytes per second in the second before `now`.
    pub fn rate(&self, now: Timestamp) -> f64 {
        let from = now.saturating_sub(Self::WINDOW);
        let sum: u64 = self
            .samples
            .iter()
            .filter(|(t, _)| *t > from && *t <= now)
            .map(|(_, n)| n)
            .sum();
        sum as f64 / Self::WINDOW.as_secs_f64()
    }

    /// True when the meter would show a non-zero rate at some time after `now`, i.e. the
    /// status bar needs one more redraw to fall to zero.
    pub fn settling(&self, now: Timestamp) -> bool {
        self.samples
            .back()
            .is_some_and(|(t, _)| now.saturating_sub(*t) <= Self::WINDOW)
    }
}

/// Counters shown in the status bar.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Bytes sources had to drop because the session fell behind.
    pub dropped_bytes: u64,
    /// Bytes pushed out of the in-memory window (still in the capture file, when recording).
    pub evicted_bytes: u64,
    pub reconnects: u64,
    pub commands_failed: u64,
    /// The driver's line error counters: None until known, Some(None) where the port keeps none.
    pub line_errors: Option<Option<LineErrorCounts>>,
}

/// What the user calls each direction when they are two ports of one link (`hsmon tap`):
/// the sender of the bytes ("master", "meter"). Without them, directions read rx/tx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionLabels {
    /// Who sent what arrives as `Rx` (the device, on a tap).
    pub rx: String,
    /// Who sent what arrives as `Tx` (the host or master, on a tap).
    pub tx: String,
}

impl DirectionLabels {
    pub fn get(&self, d: Direction) -> &str {
        match d {
            Direction::Rx => &self.rx,
            Direction::Tx => &self.tx,
        }
    }
}

/// Where a replay stands (from the replay source's `Replay` events).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayState {
    pub paused: bool,
    pub speed: f64,
}

/// The model behind every pane.
#[derive(Debug)]
pub struct Session {
    /// What the source is ("/dev/ttyUSB0", "demo").
    pub source_name: String,
    /// Names of the two directions, for a tap (None: rx/tx as seen from hsmon).
    pub labels: Option<DirectionLabels>,
    /// The wall-clock start and `--label` members every headless JSON record carries.
    pub stamp: crate::stamp::Stamp,
    pub settings: Option<LineSettings>,
    pub modem: ModemLines,
    pub connection: ConnectionState,
    pub counters: Counters,
    pub rx_rate: RateMeter,
    pub tx_rate: RateMeter,
    runs: VecDeque<Run>,
    next_seq: u64,
    window_bytes: usize,
    window_cap: usize,
    rx_offset: StreamOffset,
    tx_offset: StreamOffset,
    notices: VecDeque<Notice>,
    /// Heap the window uses: bytes and marks by capacity, plus the run records.
    window_mem: usize,
    frames: VecDeque<SessionFrame>,
    /// Heap charged for the kept frames (see [`DescriptionCosts`]).
    frames_bytes: usize,
    description_costs: DescriptionCosts,
    next_frame_seq: u64,
    diagnoses: VecDeque<SessionDiagnosis>,
    engine: Option<Engine>,
    findings: Findings,
    /// Frames and diagnoses not yet taken by `take_new` (headless output), as counts.
    pending_frames: usize,
    pending_diagnoses: usize,
    /// Received bytes since the last line-error report: (all, 0x68s, 0x00s).
    rx_window: (u64, u64, u64),
    /// Passive baud estimation over received bytes (serial sources only: it needs settings).
    baud: BaudWatch,
    card: CardLog,
    /// The replay's player state, when the source is a replay.
    pub replay: Option<ReplayState>,
    /// Every ingested event is appended here when the session is recorded.
    recorder: Option<crate::capture::writer::CaptureWriter>,
    /// Time of the last ingested event.
    pub last_at: Timestamp,
    /// Bumped on every change, so the UI can tell whether to redraw.
    pub generation: u64,
}

impl Session {
    /// A session with the embedded knowledge base (parsed once per process and shared).
    pub fn new(source_name: impl Into<String>, window_cap: usize) -> Session {
        static EMBEDDED: std::sync::OnceLock<Option<Arc<Knowledge>>> = std::sync::OnceLock::new();
        let knowledge = EMBEDDED
            .get_or_init(|| Knowledge::embedded().ok().map(Arc::new))
            .clone();
        Self::with_knowledge(source_name, window_cap, knowledge)
    }

    /// A session diagnosing with `knowledge` (None: decode nothing, diagnose nothing).
    pub fn with_knowledge(
        source_name: impl Into<String>,
        window_cap: usize,
        knowledge: Option<Arc<Knowledge>>,
    ) -> Session {
        Session {
            frames: VecDeque::new(),
            frames_bytes: 0,
            description_costs: DescriptionCosts::default(),
            window_mem: 0,
            next_frame_seq: 0,
            diagnoses: VecDeque::new(),
            engine: knowledge.map(Engine::new),
            findings: Findings::default(),
            pending_frames: 0,
            pending_diagnoses: 0,
            rx_window: (0, 0, 0),
            baud: BaudWatch::new(),
            card: CardLog::new(),
            recorder: None,
            replay: None,
            source_name: source_name.into(),
            labels: None,
            stamp: crate::stamp::Stamp::default(),
            settings: None,
            modem: ModemLines::default(),
            connection: ConnectionState::Down {
                reason: "not connected yet".to_string(),
            },
            counters: Counters::default(),
            rx_rate: RateMeter::default(),
            tx_rate: RateMeter::default(),
            runs: VecDeque::new(),
            next_seq: 0,
            window_bytes: 0,
            window_cap: window_cap.max(RUN_CAPACITY),
            rx_offset: 0,
            tx_offset: 0,
            notices: VecDeque::new(),
            last_at: Timestamp::ZERO,
            generation: 0,
        }
    }

    /// Starts an empty session's streams at these offsets: a history view loaded from the
    /// middle of a capture keeps the live session's offsets. No effect once bytes arrived.
    pub fn start_streams_at(&mut self, rx: StreamOffset, tx: StreamOffset) {
        if self.runs.is_empty() && self.counters.rx_bytes + self.counters.tx_bytes == 0 {
            self.rx_offset = rx;
            self.tx_offset = tx;
        }
    }

    /// The most bytes the session keeps in memory.
    pub fn window_cap(&self) -> usize {
        self.window_cap
    }

    /// Hands everything recorded so far to the file (before reading the capture back).
    pub fn flush_capture(&mut self) {
        if let Some(r) = self.recorder.as_mut() {
            r.flush();
        }
    }

    /// Records every event from now on into `writer` (a stopped writer just reports why).
    pub fn set_recorder(&mut self, writer: crate::capture::writer::CaptureWriter) {
        self.recorder = Some(writer);
    }

    /// The capture, if the session is recorded.
    pub fn recorder(&self) -> Option<&crate::capture::writer::CaptureWriter> {
        self.recorder.as_ref()
    }

    /// When the capture next needs `poll_capture` (None: nothing pending, no timer needed).
    pub fn capture_flush_due(&self) -> Option<Timestamp> {
        self.recorder.as_ref().and_then(|r| r.flush_due())
    }

    /// Writes what is due to the capture (records reach the file within 100 ms).
    pub fn poll_capture(&mut self, now: Timestamp) {
        if let Some(r) = self.recorder.as_mut() {
            let was = r.failed().is_none();
            r.poll_flush(now);
            self.note_capture_failure(was, now);
        }
    }

    /// Flushes and syncs the capture: the end of a session.
    pub fn finish_capture(&mut self) {
        if let Some(r) = self.recorder.as_mut() {
            r.sync();
        }
    }

    fn note_capture_failure(&mut self, was_ok: bool, at: Timestamp) {
        let detail = match self.recorder.as_ref().and_then(|r| r.failure()) {
            Some(f) if was_ok => f.detail.clone(),
            _ => return,
        };
        self.notice(
            at,
            NoticeLevel::Error,
            format!("recording stopped: {detail}"),
        );
    }

    /// Appends an event to the capture without taking it into the model: at exit, what the
    /// source had already read must still reach the file, though nothing will show it.
    pub fn record_only(&mut self, ev: &TimedEvent) {
        if let Some(r) = self.recorder.as_mut() {
            r.append(ev);
        }
    }

    /// Takes one event into the model.
    pub fn ingest(&mut self, ev: &TimedEvent) {
        if let Some(r) = self.recorder.as_mut() {
            let was = r.failed().is_none();
            r.append(ev);
            self.note_capture_failure(was, ev.at);
        }
        self.generation += 1;
        self.last_at = self.last_at.max(ev.at);
        match &ev.event {
            Event::Rx(b) => {
                self.counters.rx_bytes += b.len() as u64;
                self.rx_rate.add(ev.at, b.len());
                let offset = self.rx_offset;
                self.rx_window.0 += b.len() as u64;
                self.rx_window.1 += count_byte(b, 0x68);
                self.rx_window.2 += count_byte(b, 0x00);
                self.append(Direction::Rx, ev.at, b);
                self.baud.on_rx(b);
                self.decode(Direction::Rx, offset, ev.at, b);
                self.judge_baud(ev.at);
            }
            Event::Tx(b) => {
                self.counters.tx_bytes += b.len() as u64;
                self.tx_rate.add(ev.at, b.len());
                let offset = self.tx_offset;
                self.append(Direction::Tx, ev.at, b);
                // On a tap both directions are devices talking: what arrives as Tx is
                // evidence too. Otherwise it is what hsmon sent, and never evidence.
                let observed = self.labels.is_some();
                if let Some(e) = self.engine.as_mut() {
                    e.set_tx_observed(observed);
                }
                self.decode(Direction::Tx, offset, ev.at, b);
            }
            Event::LineSettings { settings, modem } => {
                if let Some(old) = self.settings {
                    if old != *settings {
                        self.notice(ev.at, NoticeLevel::Info, format!("port set to {settings}"));
                        // Bytes before and after a settings change never belong to one frame,
                        // and what was seen at the old setting says little about the new.
                        self.with_engine(|e, f| e.new_epoch(ev.at, f));
                    }
                }
                self.settings = Some(*settings);
                self.modem = *modem;
                self.baud.on_settings(settings);
            }
            Event::Connection(state) => {
                match state {
                    ConnectionState::Up => {
                        self.with_engine(|e, f| e.reset(ev.at, f));
                        self.baud.on_reconnect();
                        if !matches!(self.connection, ConnectionState::Up)
                            && self.counters.rx_bytes + self.counters.tx_bytes > 0
                        {
                            self.counters.reconnects += 1;
                            self.notice(ev.at, NoticeLevel::Info, "reconnected".to_string());
                        }
                    }
                    ConnectionState::Down { reason } => {
                        self.notice(ev.at, NoticeLevel::Error, format!("disconnected: {reason}"))
                    }
                    ConnectionState::Retrying { reason } => {
                        self.notice(ev.at, NoticeLevel::Warning, format!("retrying: {reason}"))
                    }
                }
                self.connection = state.clone();
            }
            Event::Overrun(o) => {
                self.counters.dropped_bytes += o.dropped_bytes;
                self.notice(
                    ev.at,
                    NoticeLevel::Error,
                    format!(
                        "{} bytes dropped: the display fell behind the port",
                        o.dropped_bytes
                    ),
                );
            }
            Event::BreakSent => self.notice(ev.at, NoticeLevel::Info, "break sent".to_string()),
            Event::Apdu(_) | Event::Card(_) | Event::Pcsc { .. } => self.ingest_card(ev),
            // Nothing for the byte window: headless writes its record, the capture keeps it.
            Event::Trace(_) => {}
            Event::Replay {
                paused,
                speed,
                text,
            } => {
                self.replay = Some(ReplayState {
                    paused: *paused,
                    speed: *speed,
                });
                self.notice(ev.at, NoticeLevel::Info, format!("replay {text}"));
            }
            Event::LineErrors(counts) => {
                if let (Some(Some(old)), Some(new)) = (self.counters.line_errors, counts) {
                    if new.total() > old.total() {
                        self.notice(
                            ev.at,
                            NoticeLevel::Warning,
                            format!(
                                "line errors: +{} framing, +{} parity, +{} overrun, +{} break",
                                new.frame.saturating_sub(old.frame),
                                new.parity.saturating_sub(old.parity),
                                (new.overrun + new.buf_overrun)
                                    .saturating_sub(old.overrun + old.buf_overrun),
                                new.brk.saturating_sub(old.brk)
                            ),
                        );
                    }
                }
                if let (Some(Some(old)), Some(new)) = (self.counters.line_errors, counts) {
                    self.diagnose_line_errors(ev.at, old, *new);
                }
                self.counters.line_errors = Some(*counts);
                self.rx_window = (0, 0, 0);
                if let Some(c) = counts {
                    self.baud.on_line_errors(c);
                    self.judge_baud(ev.at);
                }
            }
            Event::CommandFailed { command, reason } => {
                self.counters.commands_failed += 1;
                self.notice(ev.at, NoticeLevel::Warning, format!("{command}: {reason}"));
            }
        }
    }

    /// Runs `work` on the engine and takes what it found into the lists.
    fn with_engine(&mut self, work: impl FnOnce(&mut Engine, &mut Findings)) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        work(engine, &mut f);
        self.absorb(&mut f);
        self.findings = f;
    }

    /// When frames held for arbitration or records for the capture are next due (None:
    /// nothing pending, no timer needed).
    pub fn next_due(&self) -> Option<Timestamp> {
        let held = self.engine.as_ref().and_then(Engine::due);
        match (self.capture_flush_due(), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does what is due at `now`: writes the capture, releases frames held long enough on a
    /// quiet line. True when the model changed (something to show).
    pub fn poll(&mut self, now: Timestamp) -> bool {
        self.poll_capture(now);
        let before = self.generation;
        if self
            .engine
            .as_ref()
            .and_then(Engine::due)
            .is_some_and(|due| due <= now)
        {
            let frames = self.next_frame_seq;
            let diagnoses = self.pending_diagnoses;
            self.with_engine(|e, f| e.poll(now, f));
            if self.next_frame_seq != frames || self.pending_diagnoses != diagnoses {
                self.generation += 1;
            }
        }
        self.generation != before
    }

    fn decode(&mut self, dir: Direction, offset: StreamOffset, at: Timestamp, bytes: &[u8]) {
        if self.engine.is_none() {
            return;
        }
        let mut f = std::mem::take(&mut self.findings);
        let mut offset = offset;
        for piece in bytes.chunks(DECODE_SLICE) {
            if let Some(engine) = self.engine.as_mut() {
                engine.feed(dir, offset, at, piece, &mut f);
            }
            offset += piece.len() as u64;
            self.absorb(&mut f);
        }
        self.findings = f;
    }

    /// Lets the baud watch judge what arrived; a setting that looks wrong becomes one
    /// observation per setting (baud mismatch, too high/low, clock drift).
    fn judge_baud(&mut self, at: Timestamp) {
        let Some((obs, text)) = self.baud.judge() else {
            return;
        };
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        engine.observe(&obs, at, text, &mut f);
        self.absorb(&mut f);
        self.findings = f;
    }

    /// Raises an observation made outside the byte stream (a handshake divergence): the first
    /// entry of `prefer` the knowledge base has (a profile's choice), else the best match.
    pub fn observe(
        &mut self,
        obs: &crate::diagnose::observation::Observation,
        prefer: &[String],
        at: Timestamp,
        context: String,
    ) {
        self.generation += 1;
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        let about_68 = match obs {
            crate::diagnose::observation::Observation::Handshake(h) => h.got.first() == Some(&0x68),
            _ => false,
        };
        let raised = prefer
            .iter()
            .any(|id| engine.raise_entry(id, about_68, at, context.clone(), &mut f));
        if !raised {
            engine.observe(obs, at, context, &mut f);
        }
        self.absorb(&mut f);
        self.findings = f;
    }

    /// What the passive baud estimation makes of the current setting.
    pub fn baud_watch(&self) -> &BaudWatch {
        &self.baud
    }

    /// Takes what the engine found into the bounded lists.
    fn absorb(&mut self, f: &mut Findings) {
        for (direction, frame, frame_at) in f.frames.drain(..) {
            if direction == Direction::Rx
                && frame.status == crate::decode::FrameStatus::Ok
                && frame.protocol != crate::decode::Protocol::Text
            {
                self.baud.on_frame_ok();
            }
            let size = self.description_costs.charge(&frame);
            while self.frames.len() >= FRAMES_CAP
                || (!self.frames.is_empty() && self.frames_bytes + size > FRAMES_BYTES_CAP)
            {
                if let Some(old) = self.frames.pop_front() {
                    self.frames_bytes = self.frames_bytes.saturating_sub(old.heap);
                }
            }
            self.frames_bytes += size;
            self.frames.push_back(SessionFrame {
                seq: self.next_frame_seq,
                direction,
                at: frame_at,
                frame,
                heap: size,
            });
            self.next_frame_seq += 1;
            self.pending_frames += 1;
        }
        let first = self.diagnoses.front().map_or(0, |d| d.seq);
        for (n, when) in f.repeats.drain(..) {
            if let Some(d) = n
                .checked_sub(first)
                .and_then(|i| self.diagnoses.get_mut(i as usize))
            {
                d.diagnosis.count += 1;
                d.diagnosis.last_at = when;
            }
        }
        let next = self.diagnoses.back().map_or(0, |d| d.seq + 1);
        for (i, d) in f.diagnoses.drain(..).enumerate() {
            if self.diagnoses.len() >= DIAGNOSES_CAP {
                self.diagnoses.pop_front();
            }
            self.diagnoses.push_back(SessionDiagnosis {
                seq: next + i as u64,
                diagnosis: d,
            });
            self.pending_diagnoses += 1;
        }
    }

    /// A rise in the driver's error counters, with what arrived meanwhile, becomes
    /// observations: the counters themselves, a 0x68 amid framing errors (likely garbage, not
    /// a frame start), and a run of 00 with framing errors (the port is far too fast).
    fn diagnose_line_errors(&mut self, at: Timestamp, old: LineErrorCounts, new: LineErrorCounts) {
        use crate::diagnose::observation::{LineErrorCounts as Seen, Observation};
        if new.total() <= old.total() {
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let (bytes, n68, n00) = self.rx_window;
        let framing = new.frame.saturating_sub(old.frame);
        let seen = Seen {
            bytes,
            framing,
            parity: new.parity.saturating_sub(old.parity),
            breaks: new.brk.saturating_sub(old.brk),
            overrun: (new.overrun + new.buf_overrun).saturating_sub(old.overrun + old.buf_overrun),
            fe_even_popcount_only: false,
        };
        let mut f = std::mem::take(&mut self.findings);
        let text = format!(
            "{framing} framing, {} parity, {} break errors over {bytes} received bytes",
            seen.parity, seen.breaks
        );
        engine.observe(&Observation::LineErrors(seen), at, text, &mut f);
        if framing > 0 && n68 > 0 {
            engine.observe(
                &Observation::RepeatedByte {
                    byte: 0x68,
                    count: n68,
                    framing_errors: framing,
                },
                at,
                format!("{n68} × 68 among {bytes} bytes with {framing} framing errors"),
                &mut f,
            );
        }
        if framing >= 3 && n00 * 2 >= bytes {
            engine.observe(
                &Observation::RepeatedByte {
                    byte: 0x00,
                    count: n00,
                    framing_errors: framing,
                },
                at,
                format!("{n00} × 00 among {bytes} bytes with {framing} framing errors"),
                &mut f,
            );
        }
        self.absorb(&mut f);
        self.findings = f;
    }

    /// Frames still pending in the framers are reported (end of input).
    pub fn flush_decoders(&mut self) {
        let at = self.last_at;
        self.with_engine(|e, f| e.flush(at, f));
    }

    /// Frames and diagnoses added since the last call (for headless output), oldest first.
    pub fn take_new(&mut self) -> (Vec<&SessionFrame>, Vec<&SessionDiagnosis>) {
        let (nf, nd) = self.take_new_counts();
        (
            self.frames.range(self.frames.len() - nf..).collect(),
            self.diagnoses.range(self.diagnoses.len() - nd..).collect(),
        )
    }

    /// How many frames and diagnoses were added since the last call (to this or `take_new`):
    /// the last that many of [`Session::frames`] and [`Session::diagnoses`]. Marks them taken.
    pub fn take_new_counts(&mut self) -> (usize, usize) {
        (
            std::mem::take(&mut self.pending_frames).min(self.frames.len()),
            std::mem::take(&mut self.pending_diagnoses).min(self.diagnoses.len()),
        )
    }

    pub fn frames(&self) -> &VecDeque<SessionFrame> {
        &self.frames
    }

    pub fn diagnoses(&self) -> &VecDeque<SessionDiagnosis> {
        &self.diagnoses
    }

    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Card events: kept in the card log for the APDU pane, not mixed into the byte stream;
    /// status words and PC/SC codes go to the diagnosis engine.
    fn ingest_card(&mut self, ev: &TimedEvent) {
        let observations = self.card.ingest(ev.at, &ev.event);
        match &ev.event {
            Event::Card(c) => {
                let text = crate::card::describe::card_event_text(c);
                self.notice(ev.at, NoticeLevel::Info, format!("card {text}"));
            }
            Event::Pcsc { operation, code } => self.notice(
                ev.at,
                NoticeLevel::Error,
                format!(
                    "{operation}: {}",
                    crate::card::describe::pcsc_error_text(*code)
                ),
            ),
            _ => {}
        }
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        for (obs, text) in observations {
            engine.observe(&obs, ev.at, text, &mut f);
        }
        self.absorb(&mut f);
        self.findings = f;
    }

    /// The card side of the session (readers, ATR, exchanges).
    pub fn card(&self) -> &CardLog {
        &self.card
    }

    fn notice(&mut self, at: Timestamp, level: NoticeLevel, text: String) {
        if self.notices.len() >= NOTICES_CAP {
            self.notices.pop_front();
        }
        self.notices.push_back(Notice { at, level, text });
    }

    fn append(&mut self, dir: Direction, at: Timestamp, mut bytes: &[u8]) {
        let offset = match dir {
            Direction::Rx => &mut self.rx_offset,
            Direction::Tx => &mut self.tx_offset,
        };
        while !bytes.is_empty() {
            let fits = match self.runs.back() {
                Some(r) if r.direction == dir && r.bytes.len() < RUN_CAPACITY => {
                    RUN_CAPACITY - r.bytes.len()
                }
                _ => {
                    self.runs.push_back(Run {
                        seq: self.next_seq,
                        direction: dir,
                        start: *offset,
                        bytes: Vec::new(),
                        marks: Vec::new(),
                    });
                    self.window_mem += std::mem::size_of::<Run>();
                    self.next_seq += 1;
                    RUN_CAPACITY
                }
            };
            let take = fits.min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            if let Some(run) = self.runs.back_mut() {
                let before = run_heap(run);
                // Grow by doubling but never past the run's size: plain `extend` would round a
                // full run's 40 KiB up to a 64 KiB allocation, 60 % more heap than bytes.
                let need = run.bytes.len() + take;
                if need > run.bytes.capacity() {
                    let cap = (run.bytes.capacity() * 2).clamp(need, RUN_CAPACITY.max(need));
                    run.bytes.reserve_exact(cap - run.bytes.len());
                }
                run.marks.push((run.bytes.len() as u32, at));
                run.bytes.extend_from_slice(head);
                self.window_mem = self.window_mem + run_heap(run) - before;
            }
            *offset += take as u64;
            self.window_bytes += take;
            bytes = rest;
        }
        // The cap bounds the heap the window uses (bytes, arrival marks, run records), so a
        // stream of tiny alternating runs is held to the same memory as one long run.
        while self.window_mem > self.window_cap && self.runs.len() > 1 {
            match self.runs.pop_front() {
                Some(r) => {
                    self.window_bytes -= r.bytes.len();
                    self.window_mem -= run_heap(&r) + std::mem::size_of::<Run>();
                    self.counters.evicted_bytes += r.bytes.len() as u64;
                }
                None => break,
            }
        }
    }

    /// The runs in the window, oldest first.
    pub fn runs(&self) -> &VecDeque<Run> {
        &self.runs
    }

    /// The first occurrence of `pattern` in the bytes in memory that starts after `after`
    /// (a direction and stream offset: the previous match), in arrival order. Matches may
    /// span two runs of the same direction. Returns the direction and the match's offsets.
    pub fn find(
        &self,
        pattern: &[u8],
        after: Option<(Direction, StreamOffset)>,
    ) -> Option<(Direction, std::ops::Range<StreamOffset>)> {
        if pattern.is_empty() {
            return None;
        }
        let keep = pattern.len() - 1;
        // Per direction: the tail of the previous run of that direction and its end offset.
        let mut tails: [(Vec<u8>, StreamOffset); 2] = [(Vec::new(), 0), (Vec::new(), 0)];
        // Searching starts once the previous match is passed (by position in arrival order).
        let mut started = after.is_none();
        for run in &self.runs {
            let d = usize::from(run.direction == Direction::Tx);
            let (tail, tail_end) = &tails[d];
            let joined = if *tail_end == run.start && !tail.is_empty() {
                let mut j = tail.clone();
                j.extend_from_slice(&run.bytes);
                j
            } else {
                run.bytes.clone()
            };
            let base = run.start - (joined.len() - run.bytes.len()) as u64;
            let mut from = 0usize;
            if let Some((ad, aoff)) = after {
                if !started
                    && ad == run.direction
                    && aoff >= base
                    && aoff < run.start + run.bytes.len() as u64
                {
                    started = true;
                    from = (aoff - base + 1) as usize;
                } else if !started {
                    // Keep the tail and move on.
                    let t = joined[joined.len().saturating_sub(keep)..].to_vec();
                    tails[d] = (t, run.start + run.bytes.len() as u64);
                    continue;
                }
            }
            if let Some(i) = joined
                .get(from..)
                .and_then(|h| h.windows(pattern.len()).position(|w| w == pattern))
            {
                let start = base + (from + i) as u64;
                return Some((run.direction, start..start + pattern.len() as u64));
            }
            let t = joined[joined.len().saturating_sub(keep)..].to_vec();
            tails[d] = (t, run.start + run.bytes.len() as u64);
        }
        None
    }

    /// The run with sequence number `seq`, if still in the window.
    pub fn run_index(&self, seq: u64) -> Option<usize> {
        let first = self.runs.front()?.seq;
        let i = seq.checked_sub(first)? as usize;
        (i < self.runs.len()).then_some(i)
    }

    pub fn notices(&self) -> &VecDeque<Notice> {
        &self.notices
    }

    /// Bytes in the in-memory window.
    pub fn window_bytes(&self) -> usize {
        self.window_bytes
    }

    /// The run in the window holding byte `offset` of `dir`'s stream.
    pub fn run_holding(&self, dir: Direction, offset: StreamOffset) -> Option<&Run> {
        self.runs.iter().find(|r| {
            r.direction == dir && r.start <= offset && offset < r.start + r.bytes.len() as u64
        })
    }

    /// Memory the window uses as counted against its cap: bytes, per-read marks, run records.
    pub fn window_mem(&self) -> usize {
        self.window_mem
    }

    /// All bytes of one direction still in the window, with the offset of the first
    /// (for tests and exporters; the panes walk runs instead).
    pub fn stream(&self, dir: Direction) -> (StreamOffset, Vec<u8>) {
        let mut out = Vec::new();
        let mut first = None;
        for r in self.runs.iter().filter(|r| r.direction == dir) {
            first.get_or_insert(r.start);
            out.extend_from_slice(&r.bytes);
        }
        (first.unwrap_or(0), out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn ev(ms: u64, event: Event) -> TimedEvent {
        TimedEvent {
            at: Duration::from_millis(ms),
            event,
        }
    }

    #[test]
    fn bytes_keep_order_and_direction() {
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        s.ingest(&ev(1, Event::Rx(b"hello".to_vec())));
        s.ingest(&ev(2, Event::Rx(b" world".to_vec())));
        s.ingest(&ev(3, Event::Tx(vec![0x68, 0x04])));
        s.ingest(&ev(4, Event::Rx(vec![0xE5])));
        assert_eq!(
            s.runs().len(),
            3,
            "rx runs merge; a direction change starts a new run"
        );
        assert_eq!(s.stream(Direction::Rx).1, b"hello world\xE5");
        assert_eq!(s.stream(Direction::Tx).1, vec![0x68, 0x04]);
        assert_eq!(s.runs()[2].start, 11, "rx offsets continue across runs");
        assert_eq!(s.runs()[0].time_of(0), Duration::from_millis(1));
        assert_eq!(s.runs()[0].time_of(5), Duration::from_millis(2));
        assert_eq!(s.counters.rx_bytes, 12);
        assert_eq!(s.counters.tx_bytes, 2);
    }

    #[test]
    fn window_is_bounded_and_eviction_counted() {
        let cap = RUN_CAPACITY * 3;
        let mut s = Session::new("t", cap);
        for i in 0..100u64 {
            s.ingest(&ev(i, Event::Rx(vec![i as u8; 10_000])));
        }
        assert!(s.window_bytes() <= cap);
        assert_eq!(
            s.window_bytes() as u64 + s.counters.evicted_bytes,
            1_000_000,
            "every byte is either in the window or counted as evicted"
        );
        let (first, bytes) = s.stream(Direction::Rx);
        assert_eq!(first + bytes.len() as u64, 1_000_000);
        assert!(s.run_index(0).is_none());
        let last = s.runs().back().unwrap().seq;
        assert_eq!(s.run_index(last), Some(s.runs().len() - 1));
    }

    #[test]
    fn rate_meter_falls_to_zero() {
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        s.ingest(&ev(100, Event::Rx(vec![0; 500])));
        s.ingest(&ev(600, Event::Rx(vec![0; 500])));
        assert_eq!(s.rx_rate.rate(Duration::from_millis(700)), 1000.0);
        assert!(s.rx_rate.settling(Duration::from_millis(1500)));
        assert_eq!(s.rx_rate.rate(Duration::from_millis(1700)), 0.0);
        assert!(!s.rx_rate.settling(Duration::from_millis(1700)));
    }

    #[test]
    fn line_error_increase_is_noticed() {
        use crate::event::LineErrorCounts;
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        s.ingest(&ev(0, Event::LineErrors(Some(LineErrorCounts::default()))));
        assert!(s.notices().is_empty());
        let more = LineErrorCounts {
            frame: 3,
            parity: 1,
            ..Default::default()
        };
        s.ingest(&ev(1, Event::LineErrors(Some(more))));
        assert_eq!(s.counters.line_errors, Some(Some(more)));
        assert!(
            s.notices()
                .back()
                .unwrap()
                .text
                .contains("+3 framing, +1 parity")
        );
    }

    #[test]
    fn reconnect_is_counted_and_noticed() {
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        s.ingest(&ev(0, Event::Connection(ConnectionState::Up)));
        s.ingest(&ev(1, Event::Rx(vec![1, 2, 3])));
        s.ingest(&ev(
            2,
            Event::Connection(ConnectionState::Down {
                reason: "EIO".into(),
            }),
        ));
        s.ingest(&ev(3, Event::Connection(ConnectionState::Up)));
        assert_eq!(s.counters.reconnects, 1);
        assert!(
            s.notices()
                .iter()
                .any(|n| n.text.contains("disconnected: EIO"))
        );
        assert_eq!(s.stream(Direction::Rx).1, vec![1, 2, 3], "nothing lost");
    }

    /// The M-Bus long frame of tests/ui_render.rs, then a text line.
    fn chatter() -> Vec<u8> {
        let mut b = vec![
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
        ];
        b.extend_from_slice(b"boot: step ok\r\n");
        b
    }

    #[test]
    fn kept_frames_are_bounded_by_memory_not_only_count() {
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        let one: Vec<u8> = chatter().repeat(1000);
        for i in 0..30u64 {
            s.ingest(&ev(i, Event::Rx(one.clone())));
        }
        let held: usize = s.frames().iter().map(|f| frame_heap_bytes(&f.frame)).sum();
        assert!(held <= FRAMES_BYTES_CAP, "{held} bytes of frames kept");
        assert!(s.frames().len() < FRAMES_CAP);
        // The newest frames are the ones kept, numbered on from the evicted ones.
        let last = s.frames().back().unwrap();
        assert_eq!(last.seq + 1, s.next_frame_seq);
        assert!(
            s.frames().front().unwrap().seq > 0,
            "old frames were evicted"
        );
    }

    #[test]
    fn count_byte_counts() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        for len in [0, 1, 254, 255, 256, 600, 5000] {
            let b = &bytes[..len];
            for needle in [0x00, 0x68, 0xFF] {
                let want = b.iter().filter(|&&x| x == needle).count() as u64;
                assert_eq!(count_byte(b, needle), want);
            }
        }
        assert_eq!(count_byte(&[0x68; 1000], 0x68), 1000);
    }

    #[test]
    fn kept_frames_are_charged_as_described_without_each_being_described() {
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        // 3 600 frames: all fit the frames' 8 MiB budget.
        let one: Vec<u8> = chatter().repeat(900);
        for i in 0..2u64 {
            s.ingest(&ev(i, Event::Rx(one.clone())));
        }
        let kept = s.frames().len();
        let described = s
            .frames()
            .iter()
            .filter(|f| f.frame.built_description().is_some())
            .count();
        assert!(kept >= 3600, "{kept} frames kept");
        assert!(
            described * 20 < kept,
            "{described} of {kept} frames described: only samples should be"
        );
        // Frames of one kind are alike here, so each is charged exactly what describing it
        // takes, and the total is what the cap is held against.
        for f in s.frames() {
            assert_eq!(f.heap, frame_heap_bytes(&f.frame), "{:?}", f.frame);
        }
        assert_eq!(
            s.frames_bytes,
            s.frames().iter().map(|f| f.heap).sum::<usize>()
        );
    }

    #[test]
    fn one_large_event_decodes_as_its_pieces_do() {
        let stream = chatter().repeat(5000);
        let mut whole = Session::new("t", DEFAULT_WINDOW_BYTES);
        whole.ingest(&ev(1, Event::Rx(stream.clone())));
        let mut pieces = Session::new("t", DEFAULT_WINDOW_BYTES);
        for c in stream.chunks(4096) {
            pieces.ingest(&ev(1, Event::Rx(c.to_vec())));
        }
        let spans = |s: &Session| -> Vec<_> {
            s.frames()
                .iter()
                .map(|f| {
                    (
                        f.frame.protocol,
                        f.frame.span.clone(),
                        f.frame.status.clone(),
                    )
                })
                .collect()
        };
        assert!(
            stream.len() > 2 * DECODE_SLICE,
            "the event spans several slices"
        );
        assert_eq!(spans(&whole), spans(&pieces));
        // 10 000 frames found; the frames' 8 MiB budget keeps the newest ~4 400 of them.
        assert!(
            whole.frames().len() >= 4000,
            "{} frames",
            whole.frames().len()
        );
    }

    #[test]
    fn tiny_alternating_runs_are_bounded_by_memory() {
        let cap = 1 << 20;
        let mut s = Session::new("t", cap);
        for i in 0..200_000u64 {
            let e = if i % 2 == 0 {
                Event::Tx(vec![0x10, 0x5B])
            } else {
                Event::Rx(vec![0xE5])
            };
            s.ingest(&ev(i, e));
        }
        let heap: usize = s
            .runs()
            .iter()
            .map(|r| run_heap(r) + std::mem::size_of::<Run>())
            .sum();
        assert!(
            heap <= cap,
            "the window uses {heap} bytes of heap, cap {cap}"
        );
        assert_eq!(
            s.window_bytes() as u64 + s.counters.evicted_bytes,
            300_000,
            "every byte is in the window or counted as evicted"
        );
        let last = s.runs().back().unwrap();
        assert_eq!(last.bytes, vec![0xE5], "the newest bytes are kept");
    }

    #[test]
    fn full_runs_do_not_round_their_allocation_up() {
        let mut s = Session::new("t", DEFAULT_WINDOW_BYTES);
        for i in 0..100u64 {
            s.ingest(&ev(i, Event::Rx(vec![0x41; 4000])));
        }
        let first = &s.runs()[0];
        assert_eq!(first.bytes.len(), RUN_CAPACITY);
        assert_eq!(first.bytes.capacity(), RUN_CAPACITY);
    }
}
