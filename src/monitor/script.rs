//! An APDU script (`hsmon card --script`) as a driver. In the TUI the keys step it
//! ([`ScriptAction`]); headless it runs whole once a card is connected and its end ends the
//! run (exit 1 when an expectation failed).

use std::any::Any;
use std::time::Duration;

use super::driver::{Driver, DriverDone, DriverStep, EndReason, Report};
use super::effect::ScriptAction;
use crate::card::runner::ScriptRunner;
use crate::event::{CardEvent, Event, TimedEvent, Timestamp};
use crate::exit;
use crate::session::Session;

pub struct ScriptDriver {
    runner: ScriptRunner,
    /// Headless: run every step once a card is connected, and end the run after.
    autorun: bool,
    started: bool,
}

impl ScriptDriver {
    pub fn new(runner: ScriptRunner, autorun: bool) -> ScriptDriver {
        ScriptDriver {
            runner,
            autorun,
            started: false,
        }
    }

    pub fn runner(&self) -> &ScriptRunner {
        &self.runner
    }

    /// A script key: the commands to send.
    pub fn act(&mut self, action: ScriptAction) -> DriverStep {
        let r = &mut self.runner;
        let commands = match action {
            ScriptAction::Step => r.step(),
            ScriptAction::RunToFailure => r.run_to_failure(),
            ScriptAction::Restart => {
                r.restart();
                r.run_to_failure()
            }
            ScriptAction::Resend => r.resend(),
            ScriptAction::ToggleTransaction => {
                r.transaction = !r.transaction;
                return DriverStep {
                    commands: Vec::new(),
                    reports: vec![Report::Message(if r.transaction {
                        "script runs are wrapped in SCardBeginTransaction / SCardEndTransaction"
                            .to_string()
                    } else {
                        "script runs are no longer wrapped in a transaction".to_string()
                    })],
                };
            }
        };
        DriverStep::commands(commands)
    }
}

impl Driver for ScriptDriver {
    fn on_event(&mut self, _session: &mut Session, ev: &TimedEvent) -> DriverStep {
        if self.autorun
            && !self.started
            && matches!(ev.event, Event::Card(CardEvent::Connected { .. }))
        {
            self.started = true;
            return DriverStep::commands(self.runner.run_all());
        }
        let (commands, ups) = self.runner.on_event(ev);
        DriverStep {
            commands,
            reports: ups.into_iter().map(Report::Script).collect(),
        }
    }

    fn poll(&mut self, _session: &mut Session, _now: Timestamp) -> DriverStep {
        DriverStep::default()
    }

    fn next_wake(&self) -> Option<Timestamp> {
        None
    }

    fn done(&self) -> Option<DriverDone> {
        (self.autorun && self.runner.is_finished() && !self.runner.is_busy()).then_some(
            DriverDone {
                linger: Duration::ZERO,
            },
        )
    }

    fn ends_run(&self) -> bool {
        self.autorun
    }

    fn exit_status(&self, _end: EndReason) -> Option<u8> {
        if !self.autorun || !self.runner.is_finished() || self.runner.is_busy() {
            return None;
        }
        Some(if self.runner.expectation_failures() > 0 {
            exit::EXPECTATION_FAILED
        } else {
            exit::OK
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
