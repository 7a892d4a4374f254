//! Sources: one file per transport. Each runs as a task that owns its device, emits
//! [`TimedEvent`]s into a bounded channel and obeys [`Command`]s.
//!
//! A source never blocks on a slow consumer: [`EventSink`] coalesces received bytes while the
//! channel is full, up to a bound, and beyond it drops and counts them, reporting the count
//! as an `Overrun` event as soon as the channel has room (never a silent loss).

pub mod available;
pub mod card;
pub mod line_errors;
pub mod replay;
pub mod rfc2217;
pub mod serial;
pub mod tap;
pub mod tcp;

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
    pub events: mpsc::Receiver<TimedEvent>,
    pub commands: mpsc::Sender<Command>,
    /// A human name: "/dev/ttyUSB0", "demo: boot log + M-Bus meter".
    pub name: String,
    /// The streams the source's events name (a tap: one per port). Empty: one stream,
    /// [`crate::event::StreamId::MAIN`], described by `name`.
    pub streams: Vec<crate::event::StreamDecl>,
}

/// Makes the two channels of a source.
pub fn channels() -> (
    mpsc::Sender<TimedEvent>,
    mpsc::Receiver<TimedEvent>,
    mpsc::Sender<Command>,
    mpsc::Receiver<Command>,
) {
    let (etx, erx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (ctx, crx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    (etx, erx, ctx, crx)
}

/// The sending end of a source's event channel that never blocks the source.
pub struct EventSink {
    tx: mpsc::Sender<TimedEvent>,
    clock: Clock,
    /// Events waiting for room in the channel, oldest first.
    pending: VecDeque<TimedEvent>,
    pending_bytes: usize,
    dropped_bytes: u64,
    cap: usize,
}

/// The receiving side is gone: the session ended, so the source should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl EventSink {
    pub fn new(tx: mpsc::Sender<TimedEvent>, clock: Clock) -> EventSink {
        Self::with_cap(tx, clock, PENDING_BYTES_CAP)
    }

    /// A sink that holds at most `cap` bytes back while the channel is full.
    pub fn with_cap(tx: mpsc::Sender<TimedEvent>, clock: Clock, cap: usize) -> EventSink {
        EventSink {
            tx,
            clock,
            pending: VecDeque::new(),
            pending_bytes: 0,
            dropped_bytes: 0,
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
    pub fn emit_at(&mut self, ev: TimedEvent) -> Result<(), Closed> {
        self.flush()?;
        if self.pending.is_empty() {
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
        if len > 0 && self.pending_bytes + len > self.cap {
            self.dropped_bytes += len as u64;
            return;
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

    /// Moves queued events into the channel while it has room; reports drops first.
    pub fn flush(&mut self) -> Result<(), Closed> {
        if self.dropped_bytes > 0 {
            let ev = TimedEvent::new(
                self.clock.now(),
                Event::Overrun(Overrun {
                    dropped_bytes: self.dropped_bytes,
                }),
            );
            // The overrun record goes in order: after what was queued before the drop.
            match self.try_send_front_or_queue(ev) {
                Ok(true) => self.dropped_bytes = 0,
                Ok(false) => {}
                Err(Closed) => return Err(Closed),
            }
        }
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
        Ok(())
    }

    fn try_send_front_or_queue(&mut self, ev: TimedEvent) -> Result<bool, Closed> {
        if !self.pending.is_empty() {
            // Queued bytes came before the drop; the overrun is reported after them.
            self.pending.push_back(ev);
            return Ok(true);
        }
        match self.tx.try_send(ev) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Closed),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
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

    #[tokio::test]
    async fn closed_channel_is_reported() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut sink = EventSink::new(tx, Clock::start());
        assert_eq!(sink.emit(Event::Rx(vec![1])), Err(Closed));
    }
}
