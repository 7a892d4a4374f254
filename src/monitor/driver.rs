//! Drivers: what runs inside a session besides the user — the active baud scan, an APDU
//! script, a handshake profile. Each sees every event after the session took it, may be woken
//! at a time it names, sends commands, and reports what it did; the monitor loop serves them
//! all the same way, so every front end gets all of them.

use std::any::Any;
use std::time::Duration;

use crate::card::runner::RunnerUpdate;
use crate::diagnose::baud::live_scan::ScanUpdate;
use crate::event::{Command, TimedEvent, Timestamp};
use crate::session::Session;

/// What a driver did with an event or a wake-up.
#[derive(Debug, Default)]
pub struct DriverStep {
    pub commands: Vec<Command>,
    pub reports: Vec<Report>,
}

impl DriverStep {
    pub fn commands(commands: Vec<Command>) -> DriverStep {
        DriverStep {
            commands,
            reports: Vec::new(),
        }
    }
}

/// What a driver tells the front ends (headless writes records, the TUI updates its panes).
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A baud scan tried, scored, locked or gave up.
    Scan(ScanUpdate),
    /// The scan's one-line progress, for the status bar.
    ScanStatus(String),
    /// The scan stopped before its end (the user stopped it).
    ScanStopped,
    /// An APDU script step finished, or the script did.
    Script(RunnerUpdate),
    /// Handshake step `n` finished (its record is in the handshake driver).
    HandshakeStep(usize),
    /// A line for the user.
    Message(String),
}

/// Why a session ended: drivers and front ends turn it into an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The user quit (a key, `quit` on stdin).
    Quit,
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// `--duration` ran out.
    Deadline,
    /// The source closed (headless ends there; the TUI stays until quit).
    SourceStopped,
    /// The terminal's input ended.
    InputClosed,
    /// A driver that ends the run finished.
    DriverDone,
}

/// A finished driver's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverDone {
    /// How long the session keeps recording before it ends (late bytes, the peer's goodbye).
    pub linger: Duration,
}

/// A driver in the monitor loop.
pub trait Driver: Any {
    /// The loop starts (or the driver joins a running one): what it can do before any event.
    fn start(&mut self, _session: &Session, _at: Timestamp) -> DriverStep {
        DriverStep::default()
    }
    /// The session has taken `ev`.
    fn on_event(&mut self, session: &mut Session, ev: &TimedEvent) -> DriverStep;
    /// Woken at (or after) `next_wake`.
    fn poll(&mut self, session: &mut Session, now: Timestamp) -> DriverStep;
    /// When the driver wants `poll`; None while it only waits for events.
    fn next_wake(&self) -> Option<Timestamp>;
    /// Some once the driver has finished.
    fn done(&self) -> Option<DriverDone>;
    /// Whether its end ends the run (headless `--autobaud`, `--script`, a handshake).
    fn ends_run(&self) -> bool;
    /// Whether it stays after it finished (a script or handshake stays on screen; a scan goes).
    fn stays_when_done(&self) -> bool {
        true
    }
    /// Leaving early or after the end: the commands that put the device back.
    fn retire(&mut self) -> DriverStep {
        DriverStep::default()
    }
    /// The exit status it asks for when the session ends for `end`, if any.
    fn exit_status(&self, end: EndReason) -> Option<u8>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}
