//! Stepping through an APDU script: send the next step, resend, run to the next failure, run
//! it all (headless), replay from the start after a reset. Pure like `UiState::update`: it
//! returns Commands and learns results from the session's Events, so the TUI and the headless
//! loop drive it the same way.
//!
//! A step is done when its command's final status word is in: with automatic follow-ups the
//! card source answers 61XX with GET RESPONSE and 6CXX with a resend, so 61XX/6CXX are not final
//! then. `# expect` patterns are checked against that final status word.

use crate::card::script::{Script, ScriptStep, SwPattern};
use crate::event::{ApduOrigin, CardDisposition, CardEvent, Command, Event, TimedEvent};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// The final status word, and whether it met the step's expectation (None: none given).
    Sw { sw: u16, expected: Option<bool> },
    /// The card was reset as the script asked.
    Reset,
    /// The exchange failed: no response (the card was reset by another application, removed,
    /// or pcscd went away). The text says which.
    Failed(String),
}

impl StepResult {
    /// A failure for "run to the next failure": an unmet expectation, an error status word
    /// where no expectation was given, or no response at all.
    pub fn is_failure(&self) -> bool {
        match self {
            StepResult::Sw {
                expected: Some(ok), ..
            } => !ok,
            StepResult::Sw { sw, expected: None } => !matches!(sw >> 8, 0x90 | 0x61 | 0x62 | 0x63),
            StepResult::Reset => false,
            StepResult::Failed(_) => true,
        }
    }
}

/// What the runner reports as it goes (headless records, status line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerUpdate {
    /// Step `index` (script line `line`) finished.
    StepDone {
        index: usize,
        line: usize,
        result: StepResult,
        expect: Option<String>,
    },
    /// The script ran out of steps or reached `exit`; `failures` expectations or exchanges failed.
    Finished { failures: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One step per key press.
    Step,
    /// Until a step fails (or the end).
    ToFailure,
    /// Every step, failures included (scriptor's way; headless).
    All,
}

#[derive(Debug, Clone)]
pub struct ScriptRunner {
    script: Script,
    /// Path or name, for titles.
    pub name: String,
    /// The next step to send.
    pos: usize,
    /// The step in flight.
    waiting: Option<usize>,
    /// The last status word seen for the step in flight.
    last_sw: Option<u16>,
    results: Vec<Option<StepResult>>,
    mode: Mode,
    follow_up: bool,
    finished: bool,
    /// Wrap runs in SCardBeginTransaction / SCardEndTransaction.
    pub transaction: bool,
    in_transaction: bool,
    /// A step failed on an exchange with no response; the Pcsc event that follows it
    /// belongs to that step, not to the next one.
    skip_pcsc: bool,
}

impl ScriptRunner {
    pub fn new(script: Script, name: impl Into<String>, follow_up: bool) -> ScriptRunner {
        let n = script.steps.len();
        ScriptRunner {
            script,
            name: name.into(),
            pos: 0,
            waiting: None,
            last_sw: None,
            results: vec![None; n],
            mode: Mode::Step,
            follow_up,
            finished: false,
            transaction: false,
            in_transaction: false,
            skip_pcsc: false,
        }
    }

    pub fn steps(&self) -> &[ScriptStep] {
        &self.script.steps
    }

    pub fn result(&self, index: usize) -> Option<&StepResult> {
        self.results.get(index).and_then(|r| r.as_ref())
    }

    /// The next step to send (the cursor).
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_busy(&self) -> bool {
        self.waiting.is_some()
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn failures(&self) -> usize {
        self.results
            .iter()
            .flatten()
            .filter(|r| r.is_failure())
            .count()
    }

    /// Steps whose expectation was not met or whose exchange failed (what makes a headless
    /// run exit 1; an error status word with no expectation is the script's business).
    pub fn expectation_failures(&self) -> usize {
        self.results
            .iter()
            .flatten()
            .filter(|r| {
                matches!(
                    r,
                    StepResult::Sw {
                        expected: Some(false),
                        ..
                    } | StepResult::Failed(_)
                )
            })
            .count()
    }

    /// Sends the next step.
    pub fn step(&mut self) -> Vec<Command> {
        self.mode = Mode::Step;
        self.send_next()
    }

    /// Sends steps until one fails.
    pub fn run_to_failure(&mut self) -> Vec<Command> {
        self.mode = Mode::ToFailure;
        self.send_next()
    }

    /// Sends every step, failures or not.
    pub fn run_all(&mut self) -> Vec<Command> {
        self.mode = Mode::All;
        self.send_next()
    }

    /// Sends the last step again (or the current one if none was sent).
    pub fn resend(&mut self) -> Vec<Command> {
        if self.waiting.is_some() {
            return Vec::new();
        }
        self.mode = Mode::Step;
        let i = self.pos.saturating_sub(1);
        self.pos = i;
        self.finished = false;
        self.send_next()
    }

    /// Back to the first step (after a reset lost the card's state): results cleared.
    pub fn restart(&mut self) {
        self.pos = 0;
        self.waiting = None;
        self.last_sw = None;
        self.results = vec![None; self.script.steps.len()];
        self.finished = false;
        self.mode = Mode::Step;
    }

    /// The APDU of the step at the cursor (the last one once the script is done), to edit.
    pub fn current_apdu(&self) -> Option<&[u8]> {
        let n = self.script.steps.len();
        let i = if self.pos < n {
            self.pos
        } else {
            n.checked_sub(1)?
        };
        match self.script.steps.get(i) {
            Some(ScriptStep::Apdu { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }

    fn send_next(&mut self) -> Vec<Command> {
        if self.waiting.is_some() {
            return Vec::new();
        }
        let mut cmds = Vec::new();
        let Some(step) = self.script.steps.get(self.pos).cloned() else {
            self.finished = true;
            self.end_transaction(&mut cmds);
            return cmds;
        };
        if self.transaction && !self.in_transaction {
            self.in_transaction = true;
            cmds.push(Command::Transaction(true));
        }
        match step {
            ScriptStep::Apdu { bytes, line, .. } => {
                self.waiting = Some(self.pos);
                self.last_sw = None;
                cmds.push(Command::SendApdu {
                    apdu: bytes,
                    origin: ApduOrigin::Script {
                        line: u32::try_from(line).unwrap_or(u32::MAX),
                    },
                });
            }
            ScriptStep::Reset { .. } => {
                // A reset inside a transaction would block other applications' view of it;
                // end the transaction first (as scriptor has none).
                self.end_transaction(&mut cmds);
                self.waiting = Some(self.pos);
                cmds.push(Command::Reconnect(CardDisposition::Reset));
            }
            ScriptStep::Exit { .. } => {
                self.finished = true;
                self.pos = self.script.steps.len();
                self.end_transaction(&mut cmds);
            }
        }
        cmds
    }

    fn end_transaction(&mut self, cmds: &mut Vec<Command>) {
        if self.in_transaction {
            self.in_transaction = false;
            cmds.push(Command::Transaction(false));
        }
    }

    /// Takes a session Event: completes the step in flight, and keeps running in the
    /// run modes. Returns Commands to send and what happened.
    pub fn on_event(&mut self, ev: &TimedEvent) -> (Vec<Command>, Vec<RunnerUpdate>) {
        if let Event::Pcsc { .. } = ev.event {
            if std::mem::take(&mut self.skip_pcsc) {
                return (Vec::new(), Vec::new());
            }
        }
        let Some(i) = self.waiting else {
            return (Vec::new(), Vec::new());
        };
        let step = self.script.steps.get(i).cloned();
        let result = match (&ev.event, &step) {
            (Event::Apdu(x), Some(ScriptStep::Apdu { line, .. })) => {
                let ours = match x.origin {
                    ApduOrigin::Script { line: l } => l as usize == *line,
                    ApduOrigin::GetResponse | ApduOrigin::LeRetry => self.last_sw.is_some(),
                    ApduOrigin::User => false,
                };
                if !ours {
                    return (Vec::new(), Vec::new());
                }
                match x.sw() {
                    None => {
                        self.skip_pcsc = true;
                        Some(StepResult::Failed(
                            "no response: the exchange failed (see the events)".to_string(),
                        ))
                    }
                    Some(sw) => {
                        self.last_sw = Some(sw);
                        let more = self.follow_up && matches!(sw >> 8, 0x61 | 0x6C);
                        // After a 6CXX retry and more 61XX the source keeps going; a
                        // 61XX at the GET RESPONSE limit ends it, seen as final below.
                        if more {
                            None
                        } else {
                            Some(self.sw_result(i, sw))
                        }
                    }
                }
            }
            (
                Event::Card(CardEvent::Reconnected { disposition, .. }),
                Some(ScriptStep::Reset { .. }),
            ) if *disposition != CardDisposition::Leave => Some(StepResult::Reset),
            (Event::Pcsc { operation, code }, Some(_)) => Some(StepResult::Failed(format!(
                "{operation}: {}",
                crate::card::describe::pcsc_error_text(*code)
            ))),
            (Event::CommandFailed { reason, .. }, Some(ScriptStep::Reset { .. })) => {
                Some(StepResult::Failed(reason.clone()))
            }
            _ => None,
        };
        let Some(result) = result else {
            return (Vec::new(), Vec::new());
        };
        self.waiting = None;
        self.last_sw = None;
        self.pos = i + 1;
        let failed = result.is_failure();
        if let Some(r) = self.results.get_mut(i) {
            *r = Some(result.clone());
        }
        let mut ups = vec![RunnerUpdate::StepDone {
            index: i,
            line: step.as_ref().map_or(0, |s| s.line()),
            result,
            expect: match &step {
                Some(ScriptStep::Apdu {
                    expect: Some(p), ..
                }) => Some(p.to_string()),
                _ => None,
            },
        }];
        let mut cmds = Vec::new();
        // Running everything goes on past unmet expectations (scriptor's way), but not past
        // an exchange that failed outright: after a reset or a removal the card's state is
        // gone and later steps would only fail for that reason.
        let broken = matches!(self.results.get(i), Some(Some(StepResult::Failed(_))));
        let go_on = match self.mode {
            Mode::Step => false,
            Mode::ToFailure => !failed,
            Mode::All => !broken,
        };
        if broken && self.mode == Mode::All {
            self.finished = true;
        }
        if go_on {
            cmds = self.send_next();
        }
        if self.pos >= self.script.steps.len() || self.finished {
            if !self.finished {
                self.finished = true;
                self.end_transaction(&mut cmds);
            }
            if self.mode != Mode::Step || self.pos >= self.script.steps.len() {
                ups.push(RunnerUpdate::Finished {
                    failures: self.failures(),
                });
            }
        } else if !go_on {
            self.end_transaction(&mut cmds);
        }
        (cmds, ups)
    }

    fn sw_result(&self, i: usize, sw: u16) -> StepResult {
        let expected = match self.script.steps.get(i) {
            Some(ScriptStep::Apdu {
                expect: Some(p), ..
            }) => Some(SwPattern::matches(p, sw)),
            _ => None,
        };
        StepResult::Sw { sw, expected }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::ApduExchange;
    use std::time::Duration;

    fn ev(event: Event) -> TimedEvent {
        TimedEvent::new(Duration::ZERO, event)
    }

    fn answer(cmd: &Command, response: &[u8]) -> TimedEvent {
        let Command::SendApdu { apdu, origin } = cmd else {
            panic!("not an APDU: {cmd:?}")
        };
        ev(Event::Apdu(ApduExchange {
            command: apdu.clone(),
            response: response.to_vec(),
            duration: Duration::from_millis(1),
            origin: *origin,
        }))
    }

    fn follow(origin: ApduOrigin, response: &[u8]) -> TimedEvent {
        ev(Event::Apdu(ApduExchange {
            command: vec![0x00, 0xC0, 0x00, 0x00, 0x02],
            response: response.to_vec(),
            duration: Duration::from_millis(1),
            origin,
        }))
    }

    const SCRIPT: &str = "# select, then read\n\
        00 A4 04 00 05 A0 00 00 00 03\n\
        # expect 9000\n\
        00 B0 00 00 02\n\
        # expect 9000\n\
        reset\n\
        00 84 00 00 08\n";

    fn runner() -> ScriptRunner {
        ScriptRunner::new(Script::parse(SCRIPT).unwrap(), "t.apdu", true)
    }

    #[test]
    fn stepping_waits_for_the_final_status_word() {
        let mut r = runner();
        let c = r.step();
        assert_eq!(c.len(), 1);
        // 61XX is not final with follow-ups on: the GET RESPONSE answer is.
        let (more, ups) = r.on_event(&answer(&c[0], &[0x61, 0x02]));
        assert!(more.is_empty() && ups.is_empty() && r.is_busy());
        let (_, ups) = r.on_event(&follow(ApduOrigin::GetResponse, &[0x6F, 0x00, 0x90, 0x00]));
        assert_eq!(
            ups[0],
            RunnerUpdate::StepDone {
                index: 0,
                line: 2,
                result: StepResult::Sw {
                    sw: 0x9000,
                    expected: Some(true)
                },
                expect: Some("9000".to_string())
            }
        );
        assert_eq!(r.position(), 1);
        assert!(!r.is_busy());
    }

    #[test]
    fn run_to_failure_stops_at_an_unmet_expectation() {
        let mut r = runner();
        let c = r.run_to_failure();
        let (c, _) = r.on_event(&answer(&c[0], &[0x90, 0x00]));
        // Step 2 sent at once; the card says 6982.
        let (c, ups) = r.on_event(&answer(&c[0], &[0x69, 0x82]));
        assert!(c.is_empty(), "stopped: {c:?}");
        assert!(matches!(
            &ups[0],
            RunnerUpdate::StepDone {
                result: StepResult::Sw {
                    sw: 0x6982,
                    expected: Some(false)
                },
                ..
            }
        ));
        assert_eq!(r.failures(), 1);
        // Resend sends step 2 again.
        let c = r.resend();
        assert_eq!(
            c,
            vec![Command::SendApdu {
                apdu: vec![0x00, 0xB0, 0x00, 0x00, 0x02],
                origin: ApduOrigin::Script { line: 4 }
            }]
        );
    }

    #[test]
    fn run_all_resets_and_finishes() {
        let mut r = runner();
        let c = r.run_all();
        let (c, _) = r.on_event(&answer(&c[0], &[0x90, 0x00]));
        let (c, _) = r.on_event(&answer(&c[0], &[0x6A, 0x82]));
        // The reset step asks for SCardReconnect(RESET_CARD).
        assert_eq!(c, vec![Command::Reconnect(CardDisposition::Reset)]);
        let (c, _) = r.on_event(&ev(Event::Card(CardEvent::Reconnected {
            reader: "r".into(),
            disposition: CardDisposition::Reset,
            protocol: "T=0".into(),
        })));
        let (c, ups) = r.on_event(&answer(&c[0], &[0x6C, 0x08]));
        assert!(c.is_empty() && ups.is_empty(), "6CXX is not final");
        let (_, ups) = r.on_event(&follow(
            ApduOrigin::LeRetry,
            &[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00],
        ));
        assert_eq!(ups.last(), Some(&RunnerUpdate::Finished { failures: 1 }));
        assert!(r.is_finished());
    }

    #[test]
    fn a_foreign_reset_fails_the_step_and_restart_goes_back() {
        let mut r = runner();
        let c = r.step();
        let Command::SendApdu { apdu, origin } = &c[0] else {
            panic!()
        };
        let (_, ups) = r.on_event(&ev(Event::Apdu(ApduExchange {
            command: apdu.clone(),
            response: vec![],
            duration: Duration::ZERO,
            origin: *origin,
        })));
        assert!(matches!(
            &ups[0],
            RunnerUpdate::StepDone {
                result: StepResult::Failed(_),
                ..
            }
        ));
        // The Pcsc event that follows does not count twice.
        let (_, ups) = r.on_event(&ev(Event::Pcsc {
            operation: "SCardTransmit".into(),
            code: 0x8010_0068,
        }));
        assert!(ups.is_empty());
        r.restart();
        assert_eq!(r.position(), 0);
        assert_eq!(r.failures(), 0);
    }

    #[test]
    fn transactions_wrap_a_run() {
        let mut r = runner();
        r.transaction = true;
        let c = r.run_to_failure();
        assert_eq!(c[0], Command::Transaction(true));
        let (c, _) = r.on_event(&answer(&c[1], &[0x90, 0x00]));
        let (c, _) = r.on_event(&answer(&c[0], &[0x69, 0x82]));
        assert_eq!(
            c,
            vec![Command::Transaction(false)],
            "the run stops: the transaction ends"
        );
    }
}
