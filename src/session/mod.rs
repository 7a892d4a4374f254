//! The session model: ingests Events in order and keeps what the panes show — a bounded window
//! of bytes in both directions, line settings, connection state, counters and notices.
//! No terminal code and no clock: time comes in with each event.
//!
//! Split along its seams: `ingest` (events into the model, decoding, diagnosis), `window`
//! (the byte runs, their eviction and search), `memory` (what kept frames cost and their caps),
//! `streams` (the ports, sockets or readers the events come from, and the link each feeds).

mod ingest;
mod memory;
mod streams;
mod window;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::card::log::CardLog;
use crate::decode::{Frame, StreamOffset};
use crate::diagnose::baud::watch::BaudWatch;
use crate::diagnose::engine::{Diagnosis, Engine, Findings};
use crate::diagnose::knowledge::Knowledge;
use crate::event::{
    ConnectionState, Direction, LineErrorCounts, LineSettings, ModemLines, StreamId, TimedEvent,
    Timestamp,
};

use memory::DescriptionCosts;
pub use memory::{DIAGNOSES_CAP, FRAMES_BYTES_CAP, FRAMES_CAP, frame_heap_bytes};
pub use streams::{LinkId, StreamInfo};
pub use window::{RUN_CAPACITY, RateMeter, Run};

/// Default cap on the memory the scrollback window uses (both directions together): the
/// bytes themselves plus their arrival marks, so small reads cannot multiply it.
pub const DEFAULT_WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// Most notices kept (connection changes, refused commands, overruns).
const NOTICES_CAP: usize = 1000;

/// A decoded frame and where it came from.
#[derive(Debug, Clone)]
pub struct SessionFrame {
    /// Monotonic number (survives eviction of older frames).
    pub seq: u64,
    pub direction: Direction,
    /// The stream the frame's bytes came on (a tap: the port that heard that direction).
    pub stream: StreamId,
    pub at: Timestamp,
    pub frame: Frame,
    /// What the frame was charged against `FRAMES_BYTES_CAP` when kept (given back on eviction).
    heap: usize,
}

/// A diagnosis and its number.
#[derive(Debug, Clone)]
pub struct SessionDiagnosis {
    pub seq: u64,
    /// The stream it is about: the one that carried its direction's bytes, else the stream
    /// of the event that raised it.
    pub stream: StreamId,
    pub diagnosis: Diagnosis,
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
    /// The streams the events come from (at least the main one).
    streams: Vec<StreamInfo>,
    /// The session's other conversations (links 1, 2, …: each descriptor a traced program
    /// uses), each decoded on its own as a session of its own without a capture (their events
    /// are recorded once, here). Link 0 is this session itself.
    links: Vec<(streams::LinkId, Session)>,
    /// What a new link diagnoses with.
    knowledge: Option<Arc<Knowledge>>,
    /// The stream of the event being ingested (what a diagnosis without a direction is about).
    ingesting: StreamId,
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
        let source_name = source_name.into();
        Session {
            streams: vec![StreamInfo::main(source_name.clone())],
            links: Vec::new(),
            knowledge: knowledge.clone(),
            ingesting: StreamId::MAIN,
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
            source_name,
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
        self.notice(at, NoticeLevel::Error, detail);
    }

    /// Appends an event to the capture without taking it into the model: at exit, what the
    /// source had already read must still reach the file, though nothing will show it.
    pub fn record_only(&mut self, ev: &TimedEvent) {
        if let Some(r) = self.recorder.as_mut() {
            r.append(ev);
        }
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

    pub fn notices(&self) -> &VecDeque<Notice> {
        &self.notices
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::ingest::{DECODE_SLICE, count_byte};
    use super::window::run_heap;
    use super::*;
    use crate::event::Event;
    use std::time::Duration;

    fn ev(ms: u64, event: Event) -> TimedEvent {
        TimedEvent::new(Duration::from_millis(ms), event)
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

    /// A tap: two streams of one link. Each keeps its own settings and counts, frames name
    /// the port that heard them, and the request on A still pairs with the answer on B.
    /// Two conversations in one session (two descriptors of a traced program): each link
    /// decodes on its own, so bytes of one never complete or break a frame of the other,
    /// "talking to" answers per link, and the records name the stream.
    #[test]
    fn each_link_decodes_on_its_own() {
        use crate::event::{StreamDecl, StreamKind};
        let (tty, sock) = (StreamId::MAIN, StreamId(1));
        let decl = |id, label: &str, link| StreamDecl {
            id,
            label: label.into(),
            kind: StreamKind::Serial,
            link,
            direction: None,
        };
        let mut s = Session::new("trace", DEFAULT_WINDOW_BYTES);
        s.set_streams(
            &[
                decl(tty, "/dev/ttyUSB0", 0),
                decl(sock, "tcp 10.0.0.5:2404", 1),
            ],
            None,
        );
        let mbus = chatter()[..27].to_vec();
        let text = b"boot: ok\r\nlogin: \r\n".repeat(4);
        // The frame's first half on the tty, text on the socket, the second half on the tty.
        s.ingest(&TimedEvent::on(
            tty,
            Duration::from_millis(1),
            Event::Rx(mbus[..12].to_vec()),
        ));
        s.ingest(&TimedEvent::on(
            sock,
            Duration::from_millis(2),
            Event::Rx(text.clone()),
        ));
        s.ingest(&TimedEvent::on(
            tty,
            Duration::from_millis(3),
            Event::Rx(mbus[12..].to_vec()),
        ));
        s.flush_decoders();
        let protocols = |l: &Session| -> Vec<crate::decode::Protocol> {
            l.frames().iter().map(|f| f.frame.protocol).collect()
        };
        assert_eq!(
            protocols(&s),
            vec![crate::decode::Protocol::Mbus],
            "link 0: the whole frame"
        );
        let link1 = s.link(1).unwrap();
        assert!(
            protocols(link1)
                .iter()
                .all(|p| *p == crate::decode::Protocol::Text),
            "link 1: text only, no M-Bus bytes mixed in: {:?}",
            protocols(link1)
        );
        assert_eq!(link1.frames().len(), 8);
        assert!(link1.frames().iter().all(|f| f.stream == sock));
        assert_eq!(s.links().count(), 2);
        // "Talking to" per stream.
        let top = |id| {
            s.talking_to(id)
                .unwrap()
                .ranking()
                .first()
                .map(|g| g.protocol)
        };
        assert_eq!(top(tty), Some(crate::decode::Protocol::Mbus));
        assert_eq!(top(sock), Some(crate::decode::Protocol::Text));
        // The records of both links, each naming its stream.
        let mut out = Vec::new();
        crate::record::stream::write_findings(&mut out, &mut s, crate::output::OutputFormat::Json)
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out.matches("\"stream\":\"/dev/ttyUSB0\"").count(),
            1,
            "{out}"
        );
        assert_eq!(
            out.matches("\"stream\":\"tcp 10.0.0.5:2404\"").count(),
            8,
            "{out}"
        );
        // The capture timer and the held frames of every link.
        assert_eq!(s.next_due(), None, "all flushed");
    }

    #[test]
    fn a_tap_is_two_streams_of_one_link() {
        use crate::event::{Baud, StreamDecl, StreamKind};
        let (a, b) = (StreamId::MAIN, StreamId(1));
        let decl = |id, label: &str, d| StreamDecl {
            id,
            label: label.into(),
            kind: StreamKind::Serial,
            link: 0,
            direction: Some(d),
        };
        let mut s = Session::new("tap", DEFAULT_WINDOW_BYTES);
        assert!(!s.is_multi_stream());
        assert_eq!(s.stream_label(StreamId::MAIN), None);
        s.set_streams(
            &[
                decl(a, "/dev/ttyA", Direction::Tx),
                decl(b, "/dev/ttyB", Direction::Rx),
            ],
            None,
        );
        assert!(s.is_multi_stream());
        let at = |bps| Event::LineSettings {
            settings: LineSettings {
                baud: Baud::new(bps).unwrap(),
                ..LineSettings::default()
            },
            modem: ModemLines::default(),
        };
        s.ingest(&TimedEvent::on(a, Duration::from_millis(1), at(2400)));
        s.ingest(&TimedEvent::on(b, Duration::from_millis(2), at(9600)));
        s.ingest(&TimedEvent::on(
            a,
            Duration::from_millis(10),
            Event::Tx(vec![0x10, 0x5B, 0x01, 0x5C, 0x16]),
        ));
        s.ingest(&TimedEvent::on(
            b,
            Duration::from_millis(300),
            Event::Rx(chatter()[..27].to_vec()),
        ));
        s.flush_decoders();
        let baud = |id| s.stream_info(id).unwrap().settings.unwrap().baud.bps();
        assert_eq!((baud(a), baud(b)), (2400, 9600));
        assert_eq!(s.stream_info(a).unwrap().bytes, 5);
        assert_eq!(s.stream_info(b).unwrap().bytes, 27);
        assert_eq!(s.stream_label(b), Some("/dev/ttyB"));
        let mbus: Vec<_> = s
            .frames()
            .iter()
            .filter(|f| f.frame.protocol == crate::decode::Protocol::Mbus)
            .map(|f| (f.direction, f.stream))
            .collect();
        assert_eq!(mbus, vec![(Direction::Tx, a), (Direction::Rx, b)]);
        assert!(s.talking_to(b).is_some());
        assert!(s.talking_to(StreamId(7)).is_none());
        // An event on a stream the source did not declare still has a home.
        s.ingest(&TimedEvent::on(
            StreamId(7),
            Duration::from_millis(400),
            Event::BreakSent,
        ));
        assert_eq!(s.stream_label(StreamId(7)), Some("stream 7"));
    }

    /// Each port of a tap keeps its own counters: a rise is judged against the same port's
    /// last report (not the other port's), and the link shows the two added up.
    #[test]
    fn line_errors_are_judged_per_port_and_added_for_the_link() {
        use crate::event::{StreamDecl, StreamKind};
        let (a, b) = (StreamId::MAIN, StreamId(1));
        let decl = |id, d| StreamDecl {
            id,
            label: format!("/dev/tty{id}"),
            kind: StreamKind::Serial,
            link: 0,
            direction: Some(d),
        };
        let mut s = Session::new("tap", DEFAULT_WINDOW_BYTES);
        s.set_streams(&[decl(a, Direction::Tx), decl(b, Direction::Rx)], None);
        let e = |frame| {
            Event::LineErrors(Some(LineErrorCounts {
                frame,
                ..Default::default()
            }))
        };
        s.ingest(&TimedEvent::on(a, Duration::from_millis(1), e(0)));
        s.ingest(&TimedEvent::on(b, Duration::from_millis(2), e(5)));
        assert!(s.notices().is_empty(), "first reports are no rise");
        s.ingest(&TimedEvent::on(a, Duration::from_millis(3), e(1)));
        let texts: Vec<&str> = s.notices().iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["line errors: +1 framing, +0 parity, +0 overrun, +0 break"]
        );
        assert_eq!(
            s.counters.line_errors,
            Some(Some(LineErrorCounts {
                frame: 6,
                ..Default::default()
            }))
        );
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
