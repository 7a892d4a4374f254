//! Headless `hsmon card` with a `--reader` or a `--script` does not wait for ever: if the
//! named reader is not there, or (with a script) no card is connected, within [`CARD_WAIT`],
//! it says why and the run ends with exit 3. Without either, headless `card` is a monitor
//! and waits for a card as long as it runs.

use std::any::Any;
use std::time::Duration;

use crate::event::{CardEvent, Event, TimedEvent, Timestamp};
use crate::exit;
use crate::monitor::{Driver, DriverDone, DriverStep, EndReason, Report};
use crate::session::Session;
use crate::source::card::CHOOSE_READER;

/// How long headless `card` waits for the named reader, or for a card to run the script on.
pub const CARD_WAIT: Duration = Duration::from_secs(5);

/// Ends a headless card run that has nothing to work with after [`CARD_WAIT`].
pub struct CardWaitDriver {
    reader: Option<String>,
    script: bool,
    /// The source's "choose reader" command when it said `--reader` matches no reader (or
    /// several), until a card connects; the reason was said at once.
    reader_problem: Option<String>,
    connected: bool,
    gave_up: bool,
    settled: bool,
}

impl CardWaitDriver {
    /// For headless runs with `--reader` (`reader`) or a script; None when there is neither.
    pub fn new(reader: Option<String>, script: bool) -> Option<CardWaitDriver> {
        (reader.is_some() || script).then_some(CardWaitDriver {
            reader,
            script,
            reader_problem: None,
            connected: false,
            gave_up: false,
            settled: false,
        })
    }
}

impl Driver for CardWaitDriver {
    fn on_event(&mut self, _session: &mut Session, ev: &TimedEvent) -> DriverStep {
        match &ev.event {
            Event::CommandFailed { command, reason } if command.starts_with(CHOOSE_READER) => {
                let first = self.reader_problem.is_none() && !self.gave_up;
                self.reader_problem = Some(command.clone());
                if first {
                    let text = format!(
                        "{command}: {reason}; waiting up to {} s for it (headless), then exit 3",
                        CARD_WAIT.as_secs()
                    );
                    return DriverStep {
                        commands: Vec::new(),
                        reports: vec![Report::Message(text)],
                    };
                }
            }
            Event::Card(CardEvent::Connected { .. }) => {
                self.connected = true;
                self.reader_problem = None;
            }
            _ => {}
        }
        DriverStep::default()
    }

    fn poll(&mut self, _session: &mut Session, now: Timestamp) -> DriverStep {
        if self.settled || self.gave_up || now < CARD_WAIT {
            return DriverStep::default();
        }
        let secs = CARD_WAIT.as_secs();
        let text = if self.connected {
            None
        } else if let Some(problem) = &self.reader_problem {
            Some(format!(
                "{problem}: still no one reader matches. Gave up after {secs} s (headless); exit 3"
            ))
        } else if self.script {
            let place = self
                .reader
                .as_deref()
                .map_or_else(|| "a reader".to_string(), |r| format!("reader '{r}'"));
            Some(format!(
                "no card was connected within {secs} s, so the script did not run: put a card in \
                 {place} (hsmon list shows the readers and their cards); exit 3"
            ))
        } else {
            // The reader is there and no script waits: a monitor waits for a card.
            None
        };
        match text {
            Some(t) => {
                self.gave_up = true;
                DriverStep {
                    commands: Vec::new(),
                    reports: vec![Report::Message(t)],
                }
            }
            None => {
                self.settled = true;
                DriverStep::default()
            }
        }
    }

    fn next_wake(&self) -> Option<Timestamp> {
        (!self.settled && !self.gave_up).then_some(CARD_WAIT)
    }

    fn done(&self) -> Option<DriverDone> {
        self.gave_up.then_some(DriverDone {
            linger: Duration::ZERO,
        })
    }

    fn ends_run(&self) -> bool {
        self.gave_up
    }

    fn stays_when_done(&self) -> bool {
        true
    }

    fn exit_status(&self, _end: EndReason) -> Option<u8> {
        self.gave_up.then_some(exit::DEVICE)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
