//! Sources: one file per transport. Each runs as a task that owns its device, emits
//! [`TimedEvent`]s into a bounded channel and obeys [`Command`]s.
//!
//! A source never blocks on a slow consumer: [`EventSink`] coalesces received bytes while the
//! channel is full, up to a bound, and beyond it drops and counts them, reporting the count
//! as an `Overrun` event (one per stall) as soon as the channel has room (never a silent
//! loss). Only received bytes are ever dropped, and only from what goes on to the display:
//! the sink hands every event to the capture ([`Tee`]) before it queues or drops anything.

pub mod available;
pub mod card;
pub mod line_errors;
pub mod replay;
pub mod rfc2217;
pub mod serial;
pub mod tap;
pub mod tcp;
pub mod trace;

use std::collections::VecDeque;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::event::{Command, Event, Overrun, TimedEvent};

/// Capacity of a source's event channel, in events. Received bytes come one event per read
/// (at most 64 KiB, the sources' read buffer, or [`COALESCE_MAX`]), so the channel holds at
/// most 8 MiB of traffic; with 4096 it could hold 256 MiB of a fast TCP stream.
pub const EVENT_CHANNEL_CAPACITY: usize = 128;

/// Most bytes a source holds back while the consumer is stalled before it drops (8 MiB: 7 s
/// of a 12 Mbaud line, minutes at the usual rates). With the channel and the session's
/// window this is the process's memory budget: see `session::FRAMES_BYTES_CAP`.
pub const PENDING_BYTES_CAP: usize = 8 * 1024 * 1024;

/// Largest received-bytes event the sink builds by coalescing. A stall costs a few hundred
/// events instead of thousands, and no single event (one headless record, one decode call)
/// grows to the whole backlog.
pub const COALESCE_MAX: usize = 64 * 1024;

/// Capacity of a source's command channel.
pub const COMMAND_CHANNEL_CAPACITY: usize = 64;

/// What the session holds of a running source.
pub struct SourceHandle {
    pub events: EventRx,
    pub commands: mpsc::Sender<Command>,
    /// A human name: "/dev/ttyUSB0", "demo: boot log + M-Bus meter".
    pub name: String,
    /// The streams the source's events name (a tap: one per port). Empty: one stream,
    /// [`crate::event::StreamId::MAIN`], described by `name`.
    pub streams: Vec<crate::event::StreamDecl>,
}

/// Makes the two channels of a source (the event channel with its [`Tee`] to the capture).
pub fn channels() -> (
    EventTx,
    EventRx,
    mpsc::Sender<Command>,
    mpsc::Receiver<Command>,
) {
    let (etx, erx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (ctx, crx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let tee = Tee::waiting();
    (
        EventTx {
            tx: etx,
            tee: tee.clone(),
        },
        EventRx { rx: erx, tee },
        ctx,
        crx,
    )
}

/// Most bytes of events a [`Tee`] holds for the capture before the monitor says whether the
/// session records (the moments between opening the source and starting the loop).
pub const TEE_WAITING_CAP: usize = 4 * 1024 * 1024;

/// Where a source's events go to be recorded, before the channel (which may fill, and past
/// the sink's bound drop received bytes): every event the source produced reaches the
/// capture, whatever the display or stdout does. Shared by the sink and the receiving end.
#[derive(Debug, Clone)]
pub struct Tee(std::sync::Arc<std::sync::Mutex<TeeState>>);

#[derive(Debug)]
enum TeeState {
    /// The monitor has not said yet: events are held for the capture (bounded; beyond the
    /// bound, counted in `missed`).
    Waiting {
        held: Vec<TimedEvent>,
        bytes: usize,
        missed: u64,
    },
    To(crate::capture::recorder::Recorder),
    Off,
}

impl Tee {
    fn waiting() -> Tee {
        Tee(std::sync::Arc::new(std::sync::Mutex::new(
            TeeState::Waiting {
                held: Vec::new(),
                bytes: 0,
                missed: 0,
            },
        )))
    }

    /// A tee that records nothing (a channel made without [`channels`], in tests).
    pub fn off() -> Tee {
        Tee(std::sync::Arc::new(std::sync::Mutex::new(TeeState::Off)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TeeState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `ev` (or holds it until the monitor says where).
    fn record(&self, ev: &TimedEvent) {
        // An overrun is about the display, not the device: the capture has the bytes.
        if matches!(ev.event, Event::Overrun(_)) {
            return;
        }
        match &mut *self.lock() {
            TeeState::To(r) => r.append(ev),
            TeeState::Off => {}
            TeeState::Waiting {
                held,
                bytes,
                missed,
            } => {
                let len = match &ev.event {
                    Event::Rx(b) | Event::Tx(b) => b.len(),
                    _ => 0,
                };
                if *bytes + len > TEE_WAITING_CAP {
                    *missed += 1;
                } else {
                    *bytes += len;
                    held.push(ev.clone());
                }
            }
        }
    }

    /// From now on every event goes to `recorder` (what was held first), or, with None,
    /// nowhere. Returns how many events were held beyond the waiting bound and not recorded.
    pub fn attach(&self, recorder: Option<crate::capture::recorder::Recorder>) -> u64 {
        let mut state = self.lock();
        let was = std::mem::replace(&mut *state, TeeState::Off);
        let (held, missed) = match was {
            TeeState::Waiting { held, missed, .. } => (held, missed),
            _ => (Vec::new(), 0),
        };
        if let Some(r) = recorder {
            for ev in &held {
                r.append(ev);
            }
            *state = TeeState::To(r);
        }
        missed
    }
}

/// The sending end of a source's event channel, with its [`Tee`].
#[derive(Debug, Clone)]
pub struct EventTx {
    tx: mpsc::Sender<TimedEvent>,
    tee: Tee,
}

impl EventTx {
    /// Records `ev`, then waits for room in the channel: for a source that must lose
    /// nothing and may stall its producer instead (a traced program waits for hsmon).
    pub fn blocking_send(&self, ev: TimedEvent) -> Result<(), Closed> {
        self.tee.record(&ev);
        self.tx.blocking_send(ev).map_err(|_| Closed)
    }

    /// Records `ev` and queues it if there is room (a refusal the source reports, which
    /// may be lost when the monitor is far behind; the capture still has it).
    pub fn try_send(&self, ev: TimedEvent) -> Result<(), Closed> {
        self.tee.record(&ev);
        self.tx.try_send(ev).map_err(|_| Closed)
    }
}

impl From<mpsc::Sender<TimedEvent>> for EventTx {
    /// A channel that records nothing (tests).
    fn from(tx: mpsc::Sender<TimedEvent>) -> EventTx {
        EventTx {
            tx,
            tee: Tee::off(),
        }
    }
}

/// The receiving end of a source's event channel (what the monitor drains), with the
/// [`Tee`] the monitor points at the session's capture.
#[derive(Debug)]
pub struct EventRx {
    rx: mpsc::Receiver<TimedEvent>,
    tee: Tee,
}

impl EventRx {
    pub async fn recv(&mut self) -> Option<TimedEvent> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Result<TimedEvent, mpsc::error::TryRecvError> {
        self.rx.try_recv()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Where the source's events are recorded.
    pub fn tee(&self) -> &Tee {
        &self.tee
    }
}

/// The sending end of a source's event channel that never blocks the source.
pub struct EventSink {
    tx: mpsc::Sender<TimedEvent>,
    /// The capture, fed with every event before the channel (see [`Tee`]).
    tee: Tee,
    clock: Clock,
    /// Events waiting for room in the channel, oldest first.
    pending: VecDeque<TimedEvent>,
    pending_bytes: usize,
    dropped_bytes: u64,
    /// Dropping received bytes until the backlog is down to half the bound (one gap).
    dropping: bool,
    cap: usize,
}

/// The receiving side is gone: the session ended, so the source should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl EventSink {
    pub fn new(tx: impl Into<EventTx>, clock: Clock) -> EventSink {
        Self::with_cap(tx, clock, PENDING_BYTES_CAP)
    }

    /// A sink that holds at most `cap` bytes back while the channel is full.
    pub fn with_cap(tx: impl Into<EventTx>, clock: Clock, cap: usize) -> EventSink {
        let EventTx { tx, tee } = tx.into();
        EventSink {
            tx,
            tee,
            clock,
            pending: VecDeque::new(),
            pending_bytes: 0,
            dropped_bytes: 0,
            dropping: false,
            cap,
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Emits an event stamped now.
    pub fn emit(&mut self, event: Event) -> Result<(), Closed> {
        let at = self.clock.now();
        self.emit_at(TimedEvent::new(at, event))
    }

    /// Emits an event; if the channel is full, queues it (coalescing received bytes into the
    /// previous queued `Rx`) or, past the cap, drops its bytes and counts them.
    /// The capture gets the event first, before anything here may drop it.
    pub fn emit_at(&mut self, ev: TimedEvent) -> Result<(), Closed> {
        self.tee.record(&ev);
        self.flush()?;
        // Straight into the channel only with nothing ahead of it (no queue, no gap to report).
        if self.pending.is_empty() && self.dropped_bytes == 0 {
            match self.tx.try_send(ev) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
                Err(mpsc::error::TrySendError::Full(ev)) => self.queue(ev),
            }
        } else {
            self.queue(ev);
        }
        Ok(())
    }

    fn queue(&mut self, ev: TimedEvent) {
        let len = match &ev.event {
            Event::Rx(b) | Event::Tx(b) => b.len(),
            _ => 0,
        };
        // Only received bytes may be dropped: hsmon's own transmissions (bounded by the
        // command queue) and every other event are always held, so a `tx` record is never
        // lost and never counted as a dropped received byte.
        if matches!(ev.event, Event::Rx(_)) && len > 0 {
            // Once dropping, go on until the backlog is down to half the bound: a slow
            // consumer then costs one overrun per half-bound it takes, not one per read.
            let limit = if self.dropping {
                self.cap / 2
            } else {
                self.cap
            };
            if self.pending_bytes + len > limit {
                self.dropping = true;
                self.dropped_bytes += len as u64;
                return;
            }
            self.end_gap();
        }
        self.pending_bytes += len;
        // Coalesce consecutive received chunks so a long stall costs few events, not thousands.
        if let (
            Some(TimedEvent {
                event: Event::Rx(last),
                stream,
                ..
            }),
            Event::Rx(new),
        ) = (self.pending.back_mut(), &ev.event)
        {
            // Only within one stream: a tap's two ports are two streams.
            if *stream == ev.stream && last.len() + new.len() <= COALESCE_MAX {
                last.extend_from_slice(new);
                return;
            }
        }
        self.pending.push_back(ev);
    }

    /// Moves queued events into the channel while it has room, then reports what was
    /// dropped. Each gap is one `Overrun` with its whole count, in order: queued before the
    /// first bytes kept after it, or sent when the backlog is out — never one per read.
    pub fn flush(&mut self) -> Result<(), Closed> {
        while let Some(ev) = self.pending.pop_front() {
            let len = match &ev.event {
                Event::Rx(b) | Event::Tx(b) => b.len(),
                _ => 0,
            };
            match self.tx.try_send(ev) {
                Ok(()) => self.pending_bytes -= len,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.pending.push_front(ev);
                    break;
                }
            }
        }
        if self.dropped_bytes > 0 && self.pending.is_empty() {
            // The consumer caught up: the gap's one report, after the bytes before it.
            let ev = TimedEvent::new(
                self.clock.now(),
                Event::Overrun(Overrun {
                    dropped_bytes: self.dropped_bytes,
                }),
            );
            match self.tx.try_send(ev) {
                Ok(()) => {
                    self.dropped_bytes = 0;
                    self.dropping = false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
                Err(mpsc::error::TrySendError::Full(_)) => {}
            }
        }
        Ok(())
    }

    /// Bytes are kept again after a gap: its one `Overrun` goes in the queue, in order,
    /// before them.
    fn end_gap(&mut self) {
        self.dropping = false;
        if self.dropped_bytes > 0 {
            let ev = TimedEvent::new(
                self.clock.now(),
                Event::Overrun(Overrun {
                    dropped_bytes: self.dropped_bytes,
                }),
            );
            self.pending.push_back(ev);
            self.dropped_bytes = 0;
        }
    }

    /// True while events wait for room; the source should call `flush` again soon.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.dropped_bytes > 0
    }

    /// Waits until everything queued is in the channel (used at shutdown and in tests).
    pub async fn drain(&mut self) -> Result<(), Closed> {
        while self.has_pending() {
            self.flush()?;
            if self.has_pending() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rx_bytes(events: &[TimedEvent]) -> (Vec<u8>, u64) {
        let mut bytes = Vec::new();
        let mut dropped = 0;
        for e in events {
            match &e.event {
                Event::Rx(b) => bytes.extend_from_slice(b),
                Event::Overrun(o) => dropped += o.dropped_bytes,
                _ => {}
            }
        }
        (bytes, dropped)
    }

    /// Everything the sink holds and the channel carries, emptying the channel as a
    /// consumer would until the sink has nothing left.
    fn drain_all(sink: &mut EventSink, rx: &mut mpsc::Receiver<TimedEvent>) -> Vec<TimedEvent> {
        let mut got = Vec::new();
        while sink.has_pending() {
            while let Ok(e) = rx.try_recv() {
                got.push(e);
            }
            sink.flush().unwrap();
        }
        while let Ok(e) = rx.try_recv() {
            got.push(e);
        }
        got
    }

    #[tokio::test]
    async fn stalled_consumer_never_blocks_and_loses_nothing_below_cap() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut sink = EventSink::with_cap(tx, Clock::start(), 1 << 20);
        let mut sent = Vec::new();
        for i in 0..1000u32 {
            let chunk = i.to_le_bytes().to_vec();
            sent.extend_from_slice(&chunk);
            sink.emit(Event::Rx(chunk)).unwrap(); // never waits: the channel holds only 2
        }
        assert!(sink.has_pending());
        let got = drain_all(&mut sink, &mut rx);
        let (bytes, dropped) = rx_bytes(&got);
        assert_eq!(dropped, 0);
        assert_eq!(bytes, sent);
        assert!(
            got.len() < 10,
            "coalesced into few events, got {}",
            got.len()
        );
    }

    #[tokio::test]
    async fn coalesced_events_stay_small() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = EventSink::with_cap(tx, Clock::start(), 1 << 22);
        let mut sent = Vec::new();
        for i in 0..1000u32 {
            let chunk = vec![i as u8; 1000];
            sent.extend_from_slice(&chunk);
            sink.emit(Event::Rx(chunk)).unwrap();
        }
        let got = drain_all(&mut sink, &mut rx);
        let (bytes, dropped) = rx_bytes(&got);
        assert_eq!((bytes, dropped), (sent, 0), "nothing lost, in order");
        let largest = got
            .iter()
            .map(|e| match &e.event {
                Event::Rx(b) => b.len(),
                _ => 0,
            })
            .max()
            .unwrap();
        assert!(largest <= COALESCE_MAX, "an event of {largest} bytes");
        assert!(got.len() <= 1_000_000 / 60_000 + 3, "{} events", got.len());
    }

    #[tokio::test]
    async fn overflow_is_counted_and_reported() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = EventSink::with_cap(tx, Clock::start(), 100);
        for _ in 0..50 {
            sink.emit(Event::Rx(vec![0x68; 10])).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..100 {
            while let Ok(e) = rx.try_recv() {
                got.push(e);
            }
            sink.flush().unwrap();
        }
        let (bytes, dropped) = rx_bytes(&got);
        assert_eq!(
            bytes.len() as u64 + dropped,
            500,
            "every byte delivered or counted"
        );
        assert!(dropped >= 390, "dropped {dropped}");
        assert!(matches!(got.last().unwrap().event, Event::Overrun(_)));
    }

    /// Issue 20: hsmon's own transmissions went missing under a flood (a `send-text` reached
    /// the device, its `tx` record did not) and their length was counted as dropped
    /// received bytes. Only received bytes may be dropped; everything else is held.
    #[tokio::test]
    async fn transmissions_are_never_dropped_nor_counted_as_received() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = EventSink::with_cap(tx, Clock::start(), 100);
        for _ in 0..50 {
            sink.emit(Event::Rx(vec![0x68; 10])).unwrap();
        }
        sink.emit(Event::Tx(b"hello".to_vec())).unwrap();
        for _ in 0..50 {
            sink.emit(Event::Rx(vec![0x68; 10])).unwrap();
        }
        let got = drain_all(&mut sink, &mut rx);
        let (bytes, dropped) = rx_bytes(&got);
        let sent: Vec<&Vec<u8>> = got
            .iter()
            .filter_map(|e| match &e.event {
                Event::Tx(b) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(sent, vec![&b"hello".to_vec()], "the tx event survives");
        assert_eq!(
            bytes.len() as u64 + dropped,
            1000,
            "dropped counts received bytes only"
        );
    }

    /// Issue 20: a 15 s stall wrote one overrun record per 4 KiB read (267 822 records).
    /// A stall gives one `Overrun` with the whole count, in order.
    #[tokio::test]
    async fn a_stall_is_one_overrun_with_the_count() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = EventSink::with_cap(tx, Clock::start(), 64 * 1024);
        for _ in 0..2000 {
            sink.emit(Event::Rx(vec![0x55; 4096])).unwrap();
        }
        let got = drain_all(&mut sink, &mut rx);
        let overruns: Vec<u64> = got
            .iter()
            .filter_map(|e| match &e.event {
                Event::Overrun(o) => Some(o.dropped_bytes),
                _ => None,
            })
            .collect();
        let (bytes, dropped) = rx_bytes(&got);
        assert_eq!(bytes.len() as u64 + dropped, 2000 * 4096);
        assert_eq!(overruns.len(), 1, "one record per stall: {overruns:?}");
        assert!(matches!(got.last().unwrap().event, Event::Overrun(_)));
    }

    /// A consumer slower than the source: each gap is one `Overrun`, in its place in the
    /// stream (the bytes after it follow the count), and gaps are few, not one per read.
    #[tokio::test]
    async fn a_slow_consumer_gives_few_overruns_each_in_place() {
        let (tx, mut rx) = mpsc::channel(1);
        let cap = 64 * 1024;
        let mut sink = EventSink::with_cap(tx, Clock::start(), cap);
        let mut got = Vec::new();
        let mut next = 0u32;
        for i in 0..4000 {
            let chunk: Vec<u8> = (0..1024)
                .map(|_| {
                    next += 1;
                    (next % 251) as u8
                })
                .collect();
            sink.emit(Event::Rx(chunk)).unwrap();
            if i % 128 == 0 {
                if let Ok(e) = rx.try_recv() {
                    got.push(e);
                }
            }
        }
        got.extend(drain_all(&mut sink, &mut rx));
        let mut pos = 0u64;
        let mut overruns = 0;
        for e in &got {
            match &e.event {
                Event::Rx(b) => {
                    for &x in b {
                        pos += 1;
                        assert_eq!(x, (pos % 251) as u8, "byte {pos} out of place");
                    }
                }
                Event::Overrun(o) => {
                    pos += o.dropped_bytes;
                    overruns += 1;
                }
                _ => {}
            }
        }
        assert_eq!(pos, 4000 * 1024);
        assert!(overruns >= 1);
        assert!(
            overruns <= 4000 * 1024 / (cap / 2) + 1,
            "{overruns} overruns"
        );
    }

    #[tokio::test]
    async fn closed_channel_is_reported() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut sink = EventSink::new(tx, Clock::start());
        assert_eq!(sink.emit(Event::Rx(vec![1])), Err(Closed));
    }
}
