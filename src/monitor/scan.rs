//! The active baud scan as a driver: it starts once the port has reported its settings
//! (at once when it already has), tries each candidate, and reports `baud` updates. In the
//! TUI its end leaves a proposal and puts the port back; headless, its end ends the run
//! (exit 0 when it locked, 1 when nothing scored).

use std::any::Any;
use std::time::Duration;

use super::driver::{Driver, DriverDone, DriverStep, EndReason, Report};
use crate::diagnose::baud::live_scan::{BaudScan, ScanUpdate};
use crate::event::{Event, TimedEvent, Timestamp};
use crate::exit;
use crate::session::Session;

/// How often a running scan is polled: a dwell ends on time, not only on bytes.
pub const SCAN_TICK: Duration = Duration::from_millis(100);

pub struct ScanDriver {
    /// None until the port's settings are known.
    scan: Option<BaudScan>,
    ends_run: bool,
    last_poll: Timestamp,
    last_status: Option<String>,
}

impl ScanDriver {
    /// A scan; `ends_run`: headless `--autobaud`, whose exit status is the scan's.
    pub fn new(ends_run: bool) -> ScanDriver {
        ScanDriver {
            scan: None,
            ends_run,
            last_poll: Timestamp::ZERO,
            last_status: None,
        }
    }

    pub fn scan(&self) -> Option<&BaudScan> {
        self.scan.as_ref()
    }

    /// Starts the scan if the session knows the port's settings.
    fn try_start(&mut self, session: &Session, at: Timestamp) -> DriverStep {
        let Some(settings) = session.settings else {
            return DriverStep::default();
        };
        let (s, commands, ups) = BaudScan::start(settings, session.baud_watch().estimate());
        self.scan = Some(s);
        self.last_poll = at;
        self.step(commands, ups)
    }

    fn step(&mut self, commands: Vec<crate::event::Command>, ups: Vec<ScanUpdate>) -> DriverStep {
        // The status line first: a front end that reports the end says the final line.
        let mut reports = Vec::new();
        if let Some(s) = &self.scan {
            let line = s.status_line();
            if self.last_status.as_deref() != Some(line.as_str()) {
                self.last_status = Some(line.clone());
                reports.push(Report::ScanStatus(line));
            }
        }
        reports.extend(ups.into_iter().map(Report::Scan));
        DriverStep { commands, reports }
    }
}

impl Driver for ScanDriver {
    /// Starts at once when the session already knows the settings (a key press mid-session).
    fn start(&mut self, session: &Session, at: Timestamp) -> DriverStep {
        self.try_start(session, at)
    }

    fn on_event(&mut self, session: &mut Session, ev: &TimedEvent) -> DriverStep {
        match self.scan.as_mut() {
            None if matches!(ev.event, Event::LineSettings { .. }) => {
                self.try_start(session, ev.at)
            }
            None => DriverStep::default(),
            Some(s) => {
                let (c, ups) = s.on_event(ev);
                self.step(c, ups)
            }
        }
    }

    fn poll(&mut self, _session: &mut Session, now: Timestamp) -> DriverStep {
        self.last_poll = now;
        match self.scan.as_mut() {
            Some(s) if !s.is_finished() => {
                let (c, ups) = s.poll(now.as_secs_f64());
                self.step(c, ups)
            }
            _ => DriverStep::default(),
        }
    }

    fn next_wake(&self) -> Option<Timestamp> {
        self.scan
            .as_ref()
            .filter(|s| !s.is_finished())
            .map(|_| self.last_poll + SCAN_TICK)
    }

    fn done(&self) -> Option<DriverDone> {
        self.scan
            .as_ref()
            .filter(|s| s.is_finished())
            .map(|_| DriverDone {
                linger: Duration::ZERO,
            })
    }

    fn ends_run(&self) -> bool {
        self.ends_run
    }

    fn stays_when_done(&self) -> bool {
        false
    }

    fn retire(&mut self) -> DriverStep {
        match &self.scan {
            Some(s) => DriverStep::commands(s.restore()),
            None => DriverStep::default(),
        }
    }

    fn exit_status(&self, _end: EndReason) -> Option<u8> {
        if !self.ends_run {
            return None;
        }
        // Out of time (or stopped) before the scan finished: nothing locked.
        Some(match self.scan.as_ref().and_then(|s| s.result()) {
            Some(Some(_)) => exit::OK,
            _ => exit::EXPECTATION_FAILED,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
