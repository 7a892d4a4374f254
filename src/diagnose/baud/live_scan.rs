//! The active baud scan on a live port: drives [`ActiveScan`] from the session's Events and
//! answers with the Commands that set the port to each candidate in turn.
//!
//! Pure and synchronous like `UiState::update`: the TUI and the headless loop hand it every
//! Event and a periodic `poll`, and send the Commands it returns. A candidate's dwell starts
//! only when the port confirms the setting (the device is the truth); bytes that arrive before
//! that belong to the previous setting and are not counted.

use crate::diagnose::baud::passive::PassiveEstimate;
use crate::diagnose::baud::scan::{ActiveScan, Dwell, ScanAction};
use crate::diagnose::baud::scoring::{COMMON_RATES, Candidate, Ranked, checked_frames};
use crate::event::{Command, Event, LineErrorCounts, LineSettings, TimedEvent};

/// A scan result at or above this score locks (the best wrong rates score below 0.2).
pub const LOCK_SCORE: f64 = 0.6;

/// How long each candidate is listened to, at most: 256 bytes (enough for frames) or 2 s
/// (enough for a line of text at 1200 bps, and for a chatty device to speak).
pub const DWELL: Dwell = Dwell {
    bytes: 256,
    seconds: 2.0,
};

/// Bytes read this soon after the port confirmed a setting were most likely received at the
/// previous one (a UART's FIFO, the driver's buffer): they belong to no candidate. Seconds.
pub const SETTLE: f64 = 0.05;

/// What the scan says when the bytes do not change with the setting.
pub const RATE_IGNORED_TEXT: &str =
    "the port ignores the baud rate (a pseudo-terminal?): nothing to scan";

/// What happened in the scan, for the status bar and the `baud` records.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanUpdate {
    /// The port is being set to this candidate.
    Trying(Candidate),
    /// A candidate's dwell ended with this score.
    Scored(Ranked),
    /// The scan is over: the best candidate if it locked, and the ranking.
    Finished {
        locked: Option<Ranked>,
        ranking: Vec<Ranked>,
    },
    /// The scan is over: the bytes did not change with the setting (see
    /// [`RATE_IGNORED_TEXT`]); nothing locks.
    RateIgnored { ranking: Vec<Ranked> },
}

pub struct BaudScan {
    scan: ActiveScan,
    original: LineSettings,
    /// What the port was last confirmed to be.
    current: LineSettings,
    /// The candidate the port is being set to; its dwell has not begun yet.
    awaiting: Option<Candidate>,
    last_counts: Option<LineErrorCounts>,
    /// Error-counter rises since the last feed.
    errors_since_feed: LineErrorCounts,
    /// Candidates whose score was already reported.
    reported: Vec<Candidate>,
    /// When the current candidate's dwell began (seconds), for [`SETTLE`].
    began: Option<f64>,
    finished: Option<Option<Ranked>>,
    rate_ignored: bool,
}

impl std::fmt::Debug for BaudScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaudScan")
            .field("scan", &self.scan)
            .field("awaiting", &self.awaiting)
            .field("finished", &self.finished)
            .finish()
    }
}

impl BaudScan {
    /// A scan over the common rates at 8N1 (format variants are added when bytes suggest
    /// them), starting with what a passive estimate ranks high. Returns the first Commands.
    pub fn start(
        settings: LineSettings,
        estimate: Option<&PassiveEstimate>,
    ) -> (BaudScan, Vec<Command>, Vec<ScanUpdate>) {
        let mut scan = ActiveScan::new(Candidate::n81_all(&COMMON_RATES), DWELL)
            .with_frame_counter(Box::new(checked_frames));
        if let Some(e) = estimate {
            scan = scan.prioritize(e);
        }
        let mut s = BaudScan {
            scan,
            original: settings,
            current: settings,
            awaiting: None,
            last_counts: None,
            errors_since_feed: LineErrorCounts::default(),
            reported: Vec::new(),
            began: None,
            finished: None,
            rate_ignored: false,
        };
        let (cmds, ups) = match s.scan.current() {
            Some(c) => s.switch_to(c),
            None => (Vec::new(), Vec::new()),
        };
        (s, cmds, ups)
    }

    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// The setting the port had before the scan (the TUI goes back to it and proposes).
    pub fn original(&self) -> LineSettings {
        self.original
    }

    /// Takes one session Event.
    pub fn on_event(&mut self, ev: &TimedEvent) -> (Vec<Command>, Vec<ScanUpdate>) {
        if self.finished.is_some() {
            return (Vec::new(), Vec::new());
        }
        let now = ev.at.as_secs_f64();
        match &ev.event {
            Event::LineSettings { settings, .. } => {
                self.current = *settings;
                let Some(want) = self.awaiting else {
                    return (Vec::new(), Vec::new());
                };
                let got = Candidate::new(settings.baud, settings.format);
                if got == want {
                    self.awaiting = None;
                    // Errors counted while the port was changing belong to no candidate.
                    self.errors_since_feed = LineErrorCounts::default();
                    self.scan.begin(now);
                    self.began = Some(now);
                    (Vec::new(), Vec::new())
                } else if settings.baud == want.baud && want.format != settings.format {
                    // The port cannot take this format (a pty keeps 8N1): the candidate
                    // cannot be heard, so its dwell ends at once with nothing.
                    self.awaiting = None;
                    self.scan.begin(now);
                    let step = self.scan.poll(now + DWELL.seconds + 1.0);
                    self.after(step)
                } else {
                    (Vec::new(), Vec::new())
                }
            }
            // Bytes of the previous setting still in the port's buffers.
            Event::Rx(_) if self.began.is_some_and(|b| now - b < SETTLE) => {
                (Vec::new(), Vec::new())
            }
            Event::Rx(bytes) if self.awaiting.is_none() => {
                let errors = std::mem::take(&mut self.errors_since_feed);
                let step = self.scan.feed(now, bytes, errors);
                self.after(step)
            }
            Event::LineErrors(Some(c)) => {
                self.note_counts(c);
                (Vec::new(), Vec::new())
            }
            Event::Connection(_) => {
                self.last_counts = None;
                (Vec::new(), Vec::new())
            }
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// Time passed: ends a dwell that is over.
    pub fn poll(&mut self, now: f64) -> (Vec<Command>, Vec<ScanUpdate>) {
        if self.finished.is_some() || self.awaiting.is_some() {
            return (Vec::new(), Vec::new());
        }
        let step = self.scan.poll(now);
        self.after(step)
    }

    /// "scanning 9600 8N1 (3 of 12 tried)" or the result.
    pub fn status_line(&self) -> String {
        match &self.finished {
            Some(_) if self.rate_ignored => format!("scan: {RATE_IGNORED_TEXT}"),
            Some(Some(best)) => format!(
                "scan: {} looks right (score {:.2}, {} bytes)",
                best.candidate, best.score, best.bytes
            ),
            Some(None) => "scan: no setting scored — is the device sending?".to_string(),
            None => match self.awaiting.or(self.scan.current()) {
                Some(c) => format!(
                    "scanning {c} ({} tried, {} bytes so far) — Esc stops",
                    self.reported.len(),
                    self.scan.bytes_seen()
                ),
                None => "scanning".to_string(),
            },
        }
    }

    /// The port did not change its bytes with the setting: the scan ended without a lock.
    pub fn rate_ignored(&self) -> bool {
        self.rate_ignored
    }

    /// The scan's result: Some(Some(best)) locked, Some(None) nothing scored (or the port
    /// ignores the rate), None running.
    pub fn result(&self) -> Option<Option<&Ranked>> {
        self.finished.as_ref().map(|r| r.as_ref())
    }

    pub fn ranking(&self) -> Vec<Ranked> {
        self.scan.ranking()
    }

    /// Commands that put the port back to where it was before the scan.
    pub fn restore(&self) -> Vec<Command> {
        settings_commands(&self.current, self.original.baud, self.original.format)
    }

    fn note_counts(&mut self, c: &LineErrorCounts) {
        if let Some(old) = self.last_counts {
            self.errors_since_feed.frame += c.frame.saturating_sub(old.frame);
            self.errors_since_feed.parity += c.parity.saturating_sub(old.parity);
            self.errors_since_feed.brk += c.brk.saturating_sub(old.brk);
        }
        self.last_counts = Some(*c);
    }

    fn after(&mut self, step: ScanAction) -> (Vec<Command>, Vec<ScanUpdate>) {
        match step {
            ScanAction::Stay => (Vec::new(), Vec::new()),
            ScanAction::Switch(c) => {
                let mut ups = self.newly_scored();
                let (cmds, more) = self.switch_to(c);
                ups.extend(more);
                (cmds, ups)
            }
            ScanAction::Finished(best) => {
                let mut ups = self.newly_scored();
                let locked = best.filter(|b| b.score >= LOCK_SCORE);
                self.finished = Some(locked.clone());
                ups.push(ScanUpdate::Finished {
                    locked,
                    ranking: self.scan.ranking(),
                });
                (Vec::new(), ups)
            }
            ScanAction::RateIgnored => {
                let mut ups = self.newly_scored();
                self.finished = Some(None);
                self.rate_ignored = true;
                ups.push(ScanUpdate::RateIgnored {
                    ranking: self.scan.ranking(),
                });
                (Vec::new(), ups)
            }
        }
    }

    /// Scores of candidates whose dwell ended since the last call.
    fn newly_scored(&mut self) -> Vec<ScanUpdate> {
        let current = self.scan.current();
        let mut out = Vec::new();
        for r in self.scan.ranking() {
            if Some(r.candidate) != current && !self.reported.contains(&r.candidate) {
                self.reported.push(r.candidate);
                out.push(ScanUpdate::Scored(r));
            }
        }
        out
    }

    fn switch_to(&mut self, c: Candidate) -> (Vec<Command>, Vec<ScanUpdate>) {
        self.errors_since_feed = LineErrorCounts::default();
        self.began = None;
        let cmds = settings_commands(&self.current, c.baud, c.format);
        if cmds.is_empty() {
            // Already there: the dwell starts now (the caller's next poll or bytes feed it).
            self.awaiting = None;
        } else {
            self.awaiting = Some(c);
        }
        (cmds, vec![ScanUpdate::Trying(c)])
    }
}

/// Commands that take a port from `current` to `baud`/`format` (nothing when already there).
fn settings_commands(
    current: &LineSettings,
    baud: crate::event::Baud,
    format: crate::event::FrameFormat,
) -> Vec<Command> {
    let mut cmds = Vec::new();
    if current.format != format {
        cmds.push(Command::SetFormat(format));
    }
    if current.baud != baud {
        cmds.push(Command::SetBaud(baud));
    }
    cmds
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::{Baud, FrameFormat, ModemLines};
    use crate::uart_line::{Receiver, Sender, UartLink};
    use std::time::Duration;

    /// A port with a device on the far end of a modelled wire: Commands retune the receiver
    /// and are acknowledged like a real source; `run` returns the scan's updates.
    struct Bench {
        link: UartLink,
        settings: LineSettings,
        counts: LineErrorCounts,
        t: f64,
        sent_until: f64,
        accepts_formats: bool,
    }

    impl Bench {
        fn new(true_bps: u32, monitor_bps: u32) -> Bench {
            let b = Baud::new(monitor_bps).unwrap();
            Bench {
                link: UartLink::new(
                    Sender::new(Baud::new(true_bps).unwrap(), FrameFormat::default()),
                    Receiver::new(b, FrameFormat::default()),
                ),
                settings: LineSettings {
                    baud: b,
                    ..LineSettings::default()
                },
                counts: LineErrorCounts::default(),
                t: 0.0,
                sent_until: 0.0,
                accepts_formats: true,
            }
        }

        fn ev(&self, event: Event) -> TimedEvent {
            TimedEvent::new(Duration::from_secs_f64(self.t), event)
        }

        fn obey(&mut self, cmds: Vec<Command>) -> Vec<TimedEvent> {
            let mut out = Vec::new();
            for c in cmds {
                match c {
                    Command::SetBaud(b) => self.settings.baud = b,
                    Command::SetFormat(f) if self.accepts_formats => self.settings.format = f,
                    Command::SetFormat(_) => {}
                    other => panic!("unexpected command {other:?}"),
                }
                self.link.set_receiver(
                    Receiver::new(self.settings.baud, self.settings.format),
                    self.t,
                );
                out.push(self.ev(Event::LineSettings {
                    settings: self.settings,
                    modem: ModemLines::default(),
                }));
            }
            out
        }

        /// Runs the scan to its end (or 60 simulated seconds) in 50 ms steps.
        fn run(&mut self, scan: &mut BaudScan, first: Vec<Command>) -> Vec<ScanUpdate> {
            let mut updates = Vec::new();
            let mut queue = self.obey(first);
            while !scan.is_finished() && self.t < 60.0 {
                for ev in std::mem::take(&mut queue) {
                    let (c, u) = scan.on_event(&ev);
                    updates.extend(u);
                    queue.extend(self.obey(c));
                }
                self.t += 0.05;
                while self.sent_until < self.t + 0.1 {
                    self.sent_until = self
                        .link
                        .send(self.sent_until, b"boot: hello from the device\r\n")
                        + 0.002;
                }
                let r = self.link.receive_until(self.t);
                let c = r.counts;
                self.counts.frame += c.frame;
                self.counts.brk += c.brk;
                self.counts.parity += c.parity;
                queue.push(self.ev(Event::LineErrors(Some(self.counts))));
                let bytes = r.bytes();
                if !bytes.is_empty() {
                    queue.push(self.ev(Event::Rx(bytes)));
                }
                let (c, u) = scan.poll(self.t);
                updates.extend(u);
                queue.extend(self.obey(c));
            }
            updates
        }
    }

    #[test]
    fn the_scan_locks_on_the_device_rate() {
        let mut bench = Bench::new(9600, 115_200);
        let (mut scan, first, ups) = BaudScan::start(bench.settings, None);
        assert!(matches!(ups[0], ScanUpdate::Trying(_)));
        let updates = bench.run(&mut scan, first);
        let Some(Some(best)) = scan.result() else {
            panic!("no lock: {updates:?}");
        };
        assert_eq!(best.candidate, Candidate::n81(Baud::new(9600).unwrap()));
        assert!(best.score >= LOCK_SCORE);
        assert!(updates.iter().any(|u| matches!(
            u,
            ScanUpdate::Finished {
                locked: Some(_),
                ..
            }
        )));
        assert!(scan.status_line().starts_with("scan: 9600 8N1 looks right"));
        // Back to where it started.
        assert_eq!(
            scan.restore(),
            vec![Command::SetBaud(Baud::new(115_200).unwrap())]
        );
    }

    #[test]
    fn a_silent_line_finishes_without_a_lock() {
        let mut bench = Bench::new(9600, 9600);
        bench.sent_until = 1e9; // the device never speaks
        let (mut scan, first, _) = BaudScan::start(bench.settings, None);
        let updates = bench.run(&mut scan, first);
        assert_eq!(scan.result(), Some(None), "{updates:?}");
        let scored = updates
            .iter()
            .filter(|u| matches!(u, ScanUpdate::Scored(_)))
            .count();
        assert_eq!(scored, COMMON_RATES.len(), "every rate tried once");
    }

    #[test]
    fn a_port_that_keeps_its_format_does_not_stall_the_scan() {
        // 7E1 text read at 8N1 suggests a 7E1 variant; this port refuses formats.
        let mut bench = Bench::new(9600, 9600);
        bench.accepts_formats = false;
        bench.link.set_sender(Sender::new(
            Baud::new(9600).unwrap(),
            "7E1".parse().unwrap(),
        ));
        let (mut scan, first, _) = BaudScan::start(bench.settings, None);
        bench.run(&mut scan, first);
        assert!(scan.is_finished(), "{scan:?}");
    }
}
