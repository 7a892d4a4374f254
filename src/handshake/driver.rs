//! A handshake profile as a driver of the monitor loop: the runner sees every event the
//! session took, is woken for its delays and timeouts, sends the profile's bytes, and on a
//! divergence raises the explanation in the session. Headless, its end ends the run (after a
//! short linger for late bytes); in the TUI its pane stays until the user quits.

use std::any::Any;
use std::time::Duration;

use super::runner::{Outcome, Output, Runner, Update};
use crate::event::{TimedEvent, Timestamp};
use crate::exit;
use crate::monitor::{Driver, DriverDone, DriverStep, EndReason, Report};
use crate::session::Session;

/// How long the session keeps recording after the run ended (late bytes, the source's
/// goodbye), before a headless run ends and prints its report.
const LINGER: Duration = Duration::from_millis(300);

pub struct HandshakeDriver {
    runner: Runner,
    ends_run: bool,
}

impl HandshakeDriver {
    /// `ends_run`: headless, where the report and exit status follow the run.
    pub fn new(runner: Runner, ends_run: bool) -> HandshakeDriver {
        HandshakeDriver { runner, ends_run }
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// A runner's output: the divergence raised in the session, steps reported.
    fn step(&self, out: Output, session: &mut Session, at: Timestamp) -> DriverStep {
        if out.updates.contains(&Update::Finished) {
            if let Some(Outcome::Diverged(d)) = self.runner.outcome() {
                // A status word is already explained by the card log as the response arrives.
                if !matches!(
                    d.observation,
                    crate::diagnose::observation::Observation::StatusWord(_)
                ) {
                    let prefer = self.runner.profile().explain_ids(d.step, d.kind).to_vec();
                    session.observe(&d.observation, &prefer, at, d.text.clone());
                }
            }
        }
        DriverStep {
            commands: out.commands,
            reports: out
                .updates
                .iter()
                .filter_map(|u| match u {
                    Update::StepDone(i) => Some(Report::HandshakeStep(*i)),
                    Update::Finished => None,
                })
                .collect(),
        }
    }
}

impl Driver for HandshakeDriver {
    fn on_event(&mut self, session: &mut Session, ev: &TimedEvent) -> DriverStep {
        let out = self.runner.on_event(ev);
        self.step(out, session, ev.at)
    }

    fn poll(&mut self, session: &mut Session, now: Timestamp) -> DriverStep {
        let out = self.runner.poll(now);
        self.step(out, session, now)
    }

    fn next_wake(&self) -> Option<Timestamp> {
        if self.runner.is_finished() {
            return None;
        }
        self.runner.next_wake()
    }

    fn done(&self) -> Option<DriverDone> {
        self.runner
            .is_finished()
            .then_some(DriverDone { linger: LINGER })
    }

    fn ends_run(&self) -> bool {
        self.ends_run
    }

    fn exit_status(&self, end: EndReason) -> Option<u8> {
        Some(match self.runner.outcome() {
            Some(o) => o.exit_code(),
            // The source stopped before the run ended.
            None if end == EndReason::SourceStopped => exit::DEVICE,
            // Interrupted or quit before the end.
            None => exit::EXPECTATION_FAILED,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
