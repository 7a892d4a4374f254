//! Running a handshake profile: a pure state machine. Time comes in (with each Event, or as
//! `now` to [`Runner::poll`]), Commands go out; it never sleeps or reads a clock, so the TUI,
//! the headless loop and the tests drive it the same way.
//!
//! For each step it waits the step's delay, sets DTR/RTS, sends, and collects what comes back
//! until the expectation is met, the reply is certainly wrong (then a short quiet gap lets the
//! rest of it arrive, so the report shows all of it), or the timeout passes; then it resends
//! up to `retries` times. A half-duplex echo of the bytes just sent is recognised and matched
//! past ("the line echoes what we send: matched past the echo") unless the profile says an echo
//! is the divergence. The first divergence stops the run with an [`Observation`] for the
//! diagnosis engine and an explanation from the knowledge base.

use std::sync::Arc;
use std::time::Duration;

use super::expect::{DiffByte, MAX_REPLY, ReplyMatch};
use super::profile::{DivergenceKind, EchoPolicy, ObservationChoice, Profile, Step, Transport};
use crate::diagnose::knowledge::{Knowledge, Severity};
use crate::diagnose::observation::{HandshakeDivergence, Observation, StatusWordSeen, is_text};
use crate::event::{
    ApduOrigin, CardEvent, Command, ConnectionState, Event, LineSettings, TimedEvent, Timestamp,
};
use crate::hex;

/// How long the device may take to be ready (port open, card connected, socket up).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a wrong reply collected for the report.
const MAX_GOT: usize = 256;

/// The text said when a half-duplex echo was matched past.
pub const ECHO_NOTE: &str = "the line echoes what we send: matched past the echo";

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Ok,
    Diverged,
}

/// What happened at one step, for the pane and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub name: String,
    pub status: StepStatus,
    pub sent: Vec<u8>,
    /// The expectation as written for people (`68 XX XX 68 … (L+6 bytes, L at offset 1)`).
    pub expected: Option<String>,
    /// The answer (on success) or what came instead (on divergence), after any skipped echo.
    pub got: Vec<u8>,
    /// The echo matched past, if the line echoed.
    pub echo: Option<Vec<u8>>,
    /// `got` compared with the expectation, byte by byte.
    pub diff: Vec<DiffByte>,
    /// Times the bytes were sent (1 + retries used).
    pub attempts: u32,
    /// When the last attempt was sent (session time).
    pub sent_at: Option<Timestamp>,
    /// From sending to the first byte back.
    pub latency: Option<Duration>,
    /// From sending to the answer being complete (or the step ending).
    pub elapsed: Option<Duration>,
    /// Which alternative matched.
    pub alternative: Option<usize>,
    /// Things worth knowing that did not stop the run (an echo, DTR refused, extra bytes).
    pub notes: Vec<String>,
}

impl StepRecord {
    fn new(step: &Step) -> StepRecord {
        StepRecord {
            name: step.name.clone(),
            status: StepStatus::Pending,
            sent: step.send.clone(),
            expected: step.expect.as_ref().map(|e| e.to_string()),
            got: Vec::new(),
            echo: None,
            diff: Vec::new(),
            attempts: 0,
            sent_at: None,
            latency: None,
            elapsed: None,
            alternative: None,
            notes: Vec::new(),
        }
    }
}

/// One knowledge entry explaining a divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub meaning: String,
    pub causes: Vec<String>,
    pub fixes: Vec<String>,
    /// Named by the profile for this kind of divergence (rather than found by matching).
    pub declared: bool,
}

/// The first divergence of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    pub step: usize,
    pub kind: DivergenceKind,
    /// One line: what was sent, expected and got, and when.
    pub text: String,
    /// What the diagnosis engine is given.
    pub observation: Observation,
    /// Best first: the profile's ids for this kind, then the knowledge base's matches.
    pub explanation: Vec<Explained>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    Diverged(Box<Divergence>),
    /// The device could not be used: not ready in time, lost, a command refused.
    DeviceError(String),
}

impl Outcome {
    /// The exit status DESIGN.md sets: 0 ok, 1 an expectation failed, 3 device error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Success => crate::exit::OK,
            Outcome::Diverged(_) => crate::exit::EXPECTATION_FAILED,
            Outcome::DeviceError(_) => crate::exit::DEVICE,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "ok",
            Outcome::Diverged(_) => "diverged",
            Outcome::DeviceError(_) => "device_error",
        }
    }
}

/// What the runner reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    StepDone(usize),
    Finished,
}

/// What one call returns: commands for the source and progress.
#[derive(Debug, Default)]
pub struct Output {
    pub commands: Vec<Command>,
    pub updates: Vec<Update>,
}

#[derive(Debug, Clone)]
struct Collect {
    step: usize,
    sent_at: Timestamp,
    deadline: Timestamp,
    buf: Vec<u8>,
    first_rx: Option<Timestamp>,
    /// A wrong reply is being let finish until then.
    settle_until: Option<Timestamp>,
    /// Card: exchanges seen for this attempt, the last response, and a failed transmit.
    exchanges: u32,
    last_response: Option<Vec<u8>>,
    card_failed: bool,
}

#[derive(Debug, Clone)]
enum State {
    WaitReady,
    Delay { step: usize, until: Timestamp },
    AwaitSent { step: usize, deadline: Timestamp },
    Collect(Collect),
    Done,
}

/// What a reply amounts to, echo taken into account.
struct Judged {
    verdict: ReplyMatch,
    /// Bytes of echo at the start (matched past).
    echo: usize,
}

/// Runs one profile against one device.
#[derive(Debug, Clone)]
pub struct Runner {
    profile: Profile,
    knowledge: Option<Arc<Knowledge>>,
    state: State,
    records: Vec<StepRecord>,
    outcome: Option<Outcome>,
    ready_deadline: Timestamp,
    /// The line settings the port confirmed (serial).
    pub settings: Option<LineSettings>,
    /// Readers PC/SC listed (for "no card" errors).
    readers: Vec<String>,
    /// The last complaint a source made before the run could start.
    last_problem: Option<String>,
    /// DTR/RTS commands sent: (step, how the source names the command).
    line_commands: Vec<(usize, String)>,
    /// Notes about the run as a whole (line settings differ from the profile's, ...).
    pub notes: Vec<String>,
    /// The card source follows 61XX/6CXX up by itself (GET RESPONSE, resend with Le).
    card_follow_up: bool,
}

impl Runner {
    /// A run that starts when the device is ready; `now` is the session time at creation.
    pub fn new(profile: Profile, knowledge: Option<Arc<Knowledge>>, now: Timestamp) -> Runner {
        let records = profile.steps.iter().map(StepRecord::new).collect();
        Runner {
            profile,
            knowledge,
            state: State::WaitReady,
            records,
            outcome: None,
            ready_deadline: now + READY_TIMEOUT,
            settings: None,
            readers: Vec::new(),
            last_problem: None,
            line_commands: Vec::new(),
            notes: Vec::new(),
            card_follow_up: true,
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The step being run, if any.
    pub fn current_step(&self) -> Option<usize> {
        match &self.state {
            State::Delay { step, .. } | State::AwaitSent { step, .. } => Some(*step),
            State::Collect(c) => Some(c.step),
            State::WaitReady | State::Done => None,
        }
    }

    /// When `poll` next has something to do (a delay ends, a timeout passes).
    pub fn next_wake(&self) -> Option<Timestamp> {
        match &self.state {
            State::WaitReady => Some(self.ready_deadline),
            State::Delay { until, .. } => Some(*until),
            State::AwaitSent { deadline, .. } => Some(*deadline),
            State::Collect(c) => Some(c.settle_until.map_or(c.deadline, |s| s.min(c.deadline))),
            State::Done => None,
        }
    }

    /// Takes one session Event.
    pub fn on_event(&mut self, ev: &TimedEvent) -> Output {
        let mut out = Output::default();
        if self.outcome.is_some() {
            return out;
        }
        let now = ev.at;
        match &ev.event {
            Event::LineSettings { settings, .. } => {
                let first = self.settings.is_none();
                self.settings = Some(*settings);
                if first {
                    self.note_settings(*settings);
                }
                if matches!(self.profile.transport, Transport::Serial(_))
                    && matches!(self.state, State::WaitReady)
                {
                    self.start(0, now, &mut out);
                }
            }
            Event::Connection(ConnectionState::Up)
                if matches!(self.profile.transport, Transport::Tcp { .. })
                    && matches!(self.state, State::WaitReady) =>
            {
                self.start(0, now, &mut out);
            }
            Event::Connection(ConnectionState::Down { reason }) => self.lost(reason, now, &mut out),
            Event::Connection(ConnectionState::Retrying { reason }) => {
                self.last_problem = Some(reason.clone());
            }
            Event::Card(CardEvent::Readers(r)) => self.readers = r.clone(),
            Event::Card(CardEvent::Connected { .. })
                if matches!(self.profile.transport, Transport::Card)
                    && matches!(self.state, State::WaitReady) =>
            {
                self.start(0, now, &mut out);
            }
            Event::Card(CardEvent::Removed { reader })
                if !matches!(self.state, State::WaitReady) =>
            {
                self.fail_device(format!("the card was removed from {reader}"), &mut out);
            }
            Event::CommandFailed { command, reason } => {
                self.command_failed(command, reason, &mut out)
            }
            Event::Pcsc { operation, code } => {
                let text = format!(
                    "{operation}: {}",
                    crate::card::describe::pcsc_error_text(*code)
                );
                if matches!(self.state, State::Collect(_)) {
                    self.fail_device(format!("the exchange failed: {text}"), &mut out);
                } else {
                    self.last_problem = Some(text);
                }
            }
            Event::Tx(bytes) => {
                if let State::AwaitSent { step, .. } = self.state {
                    if self.step(step).is_some_and(|s| &s.send == bytes) {
                        self.begin_collect(step, now);
                    }
                }
            }
            Event::Rx(bytes) => {
                if let State::Collect(c) = &mut self.state {
                    if c.first_rx.is_none() {
                        c.first_rx = Some(now);
                    }
                    let room = (MAX_REPLY * 2).saturating_sub(c.buf.len());
                    c.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    self.judge(now, &mut out);
                }
                // Bytes between steps (before a send is confirmed) belong to no step: they
                // stay in the session, as the input flush a master does before a request.
            }
            Event::Apdu(x) => self.on_apdu(x, now, &mut out),
            _ => {}
        }
        out
    }

    /// Lets time pass: delays end, timeouts fire.
    pub fn poll(&mut self, now: Timestamp) -> Output {
        let mut out = Output::default();
        if self.outcome.is_some() {
            return out;
        }
        match self.state.clone() {
            State::WaitReady if now >= self.ready_deadline => {
                let why = self.not_ready_text();
                self.fail_device(why, &mut out);
            }
            State::Delay { step, until } if now >= until => self.act(step, now, &mut out),
            State::AwaitSent { deadline, .. } if now >= deadline => self.fail_device(
                "the port did not take the bytes to send in time (a stalled adapter or flow control?)"
                    .to_string(),
                &mut out,
            ),
            State::Collect(c) => {
                let settled = c.settle_until.is_some_and(|s| now >= s);
                if settled || now >= c.deadline {
                    self.finish(now, &mut out);
                }
            }
            _ => {}
        }
        out
    }

    fn step(&self, i: usize) -> Option<&Step> {
        self.profile.steps.get(i)
    }

    fn note_settings(&mut self, actual: LineSettings) {
        if let Some(want) = self.profile.line_settings() {
            if want.baud != actual.baud || want.format != actual.format {
                self.notes.push(format!(
                    "the port runs at {} {} but this profile expects {} {}{}",
                    actual.baud,
                    actual.format,
                    want.baud,
                    want.format,
                    if want.format != actual.format {
                        " (pseudo-terminals keep 8N1; a real adapter takes --line)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }

    fn not_ready_text(&self) -> String {
        let what = match self.profile.transport {
            Transport::Serial(_) => "the serial port did not report its settings".to_string(),
            Transport::Tcp { .. } => "the connection did not come up".to_string(),
            Transport::Card => {
                if self.readers.is_empty() {
                    "no card was connected: PC/SC lists no reader (is it plugged in? `hsmon list`)"
                        .to_string()
                } else {
                    format!(
                        "no card was connected: put a card in the reader, or name one of the readers PC/SC lists with --reader: {}",
                        self.readers.join(", ")
                    )
                }
            }
        };
        match &self.last_problem {
            Some(p) => format!("{what} within {} s ({p})", READY_TIMEOUT.as_secs()),
            None => format!("{what} within {} s", READY_TIMEOUT.as_secs()),
        }
    }

    /// Starts step `i` (or ends the run after the last one).
    fn start(&mut self, i: usize, now: Timestamp, out: &mut Output) {
        let Some(step) = self.step(i) else {
            self.state = State::Done;
            self.outcome = Some(Outcome::Success);
            out.updates.push(Update::Finished);
            return;
        };
        let delay = step.delay;
        if let Some(r) = self.records.get_mut(i) {
            r.status = StepStatus::Running;
        }
        if delay.is_zero() {
            self.act(i, now, out);
        } else {
            self.state = State::Delay {
                step: i,
                until: now + delay,
            };
        }
    }

    /// The step's actions after its delay: modem lines, then sending or listening.
    fn act(&mut self, i: usize, now: Timestamp, out: &mut Output) {
        let Some(step) = self.step(i).cloned() else {
            return;
        };
        if let Some(on) = step.dtr {
            let c = Command::SetDtr(on);
            self.line_commands.push((i, c.describe()));
            out.commands.push(c);
        }
        if let Some(on) = step.rts {
            let c = Command::SetRts(on);
            self.line_commands.push((i, c.describe()));
            out.commands.push(c);
        }
        if !step.send.is_empty() {
            self.send(i, now, out);
        } else if step.expect.is_some() {
            self.begin_collect(i, now);
        } else {
            if let Some(r) = self.records.get_mut(i) {
                r.status = StepStatus::Ok;
                r.elapsed = Some(Duration::ZERO);
            }
            out.updates.push(Update::StepDone(i));
            self.start(i + 1, now, out);
        }
    }

    /// Sends (or resends) the step's bytes.
    fn send(&mut self, i: usize, now: Timestamp, out: &mut Output) {
        let Some(step) = self.step(i).cloned() else {
            return;
        };
        if let Some(r) = self.records.get_mut(i) {
            r.attempts += 1;
        }
        match self.profile.transport {
            Transport::Card => {
                out.commands.push(Command::SendApdu {
                    apdu: step.send.clone(),
                    origin: ApduOrigin::Script {
                        line: u32::try_from(step.line).unwrap_or(u32::MAX),
                    },
                });
                self.begin_collect(i, now);
            }
            Transport::Serial(_) | Transport::Tcp { .. } => {
                out.commands.push(Command::Transmit(step.send.clone()));
                self.state = State::AwaitSent {
                    step: i,
                    deadline: now + step.timeout,
                };
            }
        }
    }

    fn begin_collect(&mut self, i: usize, sent_at: Timestamp) {
        let timeout = self.step(i).map_or(Duration::ZERO, |s| s.timeout);
        if let Some(r) = self.records.get_mut(i) {
            r.sent_at = Some(sent_at);
        }
        self.state = State::Collect(Collect {
            step: i,
            sent_at,
            deadline: sent_at + timeout,
            buf: Vec::new(),
            first_rx: None,
            settle_until: None,
            exchanges: 0,
            last_response: None,
            card_failed: false,
        });
    }

    /// How the collected bytes stand against the step's expectation.
    fn judged(&self, step: &Step, buf: &[u8]) -> Judged {
        let Some(expect) = &step.expect else {
            return Judged {
                verdict: ReplyMatch::Complete { alt: 0, len: 0 },
                echo: 0,
            };
        };
        let sent = &step.send;
        if step.echo == EchoPolicy::Skip && !sent.is_empty() {
            if buf.len() >= sent.len() && buf.starts_with(sent) {
                return Judged {
                    verdict: expect.judge(&buf[sent.len()..]),
                    echo: sent.len(),
                };
            }
            if sent.starts_with(buf) {
                // Maybe the start of an echo, maybe of the answer: wait unless it already is one.
                let v = expect.judge(buf);
                return Judged {
                    verdict: match v {
                        ReplyMatch::Complete { .. } => v,
                        _ => ReplyMatch::NeedMore,
                    },
                    echo: 0,
                };
            }
        }
        Judged {
            verdict: expect.judge(buf),
            echo: 0,
        }
    }

    /// After new bytes: complete the step, or let a wrong reply finish arriving.
    fn judge(&mut self, now: Timestamp, out: &mut Output) {
        let State::Collect(c) = &self.state else {
            return;
        };
        let Some(step) = self.step(c.step).cloned() else {
            return;
        };
        let j = self.judged(&step, &c.buf);
        match j.verdict {
            ReplyMatch::Complete { alt, len } => self.succeed(j.echo, alt, len, now, out),
            ReplyMatch::NeedMore => {}
            ReplyMatch::Wrong => {
                let full = c.buf.len() >= MAX_GOT;
                let until = (now + step.idle).min(c.deadline);
                if let State::Collect(c) = &mut self.state {
                    c.settle_until = Some(until);
                }
                if full {
                    self.finish(now, out);
                }
            }
        }
    }

    fn succeed(&mut self, echo: usize, alt: usize, len: usize, now: Timestamp, out: &mut Output) {
        let State::Collect(c) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        let step = self.step(c.step).cloned();
        let i = c.step;
        if let (Some(r), Some(step)) = (self.records.get_mut(i), step) {
            let answer_end = (echo + len).min(c.buf.len());
            r.got = c.buf[echo..answer_end].to_vec();
            r.echo = (echo > 0).then(|| c.buf[..echo].to_vec());
            if echo > 0 {
                r.notes.push(ECHO_NOTE.to_string());
            }
            let extra = c.buf.len() - answer_end;
            if extra > 0 {
                r.notes.push(format!(
                    "{extra} more byte{} after the answer (left to the session)",
                    if extra == 1 { "" } else { "s" }
                ));
            }
            r.diff = step
                .expect
                .as_ref()
                .map(|e| e.diff(&r.got))
                .unwrap_or_default();
            r.alternative = step.expect.as_ref().map(|_| alt);
            r.status = StepStatus::Ok;
            r.latency = c.first_rx.map(|t| t.saturating_sub(c.sent_at));
            r.elapsed = Some(now.saturating_sub(c.sent_at));
        }
        out.updates.push(Update::StepDone(i));
        self.start(i + 1, now, out);
    }

    /// The step's time is up (or a wrong reply has finished): retry or diverge.
    fn finish(&mut self, now: Timestamp, out: &mut Output) {
        let State::Collect(c) = self.state.clone() else {
            return;
        };
        let Some(step) = self.step(c.step).cloned() else {
            return;
        };
        if matches!(self.profile.transport, Transport::Card) {
            match (&c.last_response, c.card_failed) {
                (_, true) => {
                    self.fail_device(
                        "the card gave no response: the exchange failed (see the events)"
                            .to_string(),
                        out,
                    );
                    return;
                }
                (Some(resp), false) => {
                    // Only follow-ups (61XX) came back before the timeout: judge the last.
                    let resp = resp.clone();
                    self.card_final(&step, &c, resp, now, out);
                    return;
                }
                (None, false) => {}
            }
        }
        let j = self.judged(&step, &c.buf);
        if let ReplyMatch::Complete { alt, len } = j.verdict {
            self.succeed(j.echo, alt, len, now, out);
            return;
        }
        let rest = &c.buf[j.echo..];
        let got: Vec<u8> = rest.iter().take(MAX_GOT).copied().collect();
        let kind = classify(&step, &got);
        self.diverge(&step, &c, got, j.echo, kind, now, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn diverge(
        &mut self,
        step: &Step,
        c: &Collect,
        got: Vec<u8>,
        echo: usize,
        kind: DivergenceKind,
        now: Timestamp,
        out: &mut Output,
    ) {
        let i = c.step;
        let attempts = self.records.get(i).map_or(1, |r| r.attempts);
        if attempts <= step.retries && !step.send.is_empty() {
            if let Some(r) = self.records.get_mut(i) {
                note_attempt(&mut r.notes, attempts, &got_words(&got, kind, step.timeout));
            }
            self.send(i, now, out);
            return;
        }
        let observation = self.observation(step, &got);
        let explanation = self.explain(i, kind, &observation);
        if let Some(r) = self.records.get_mut(i) {
            r.got = got.clone();
            r.echo = (echo > 0).then(|| c.buf[..echo].to_vec());
            if echo > 0 {
                r.notes.push(format!(
                    "the line echoed what we sent ({}), then {}",
                    hex::spaced(&c.buf[..echo]),
                    if got.is_empty() {
                        "nothing came"
                    } else {
                        "this came"
                    }
                ));
            }
            r.diff = step
                .expect
                .as_ref()
                .map(|e| e.diff(&got))
                .unwrap_or_default();
            r.status = StepStatus::Diverged;
            r.latency = c.first_rx.map(|t| t.saturating_sub(c.sent_at));
            r.elapsed = Some(now.saturating_sub(c.sent_at));
        }
        let mut text = format!(
            "step \"{}\": sent {}, expected {}, {}",
            step.name,
            if step.send.is_empty() {
                "nothing".to_string()
            } else {
                hex::spaced(&step.send)
            },
            step.expect
                .as_ref()
                .map_or_else(|| "nothing".to_string(), |e| e.to_string()),
            got_words(&got, kind, step.timeout),
        );
        if let (Some(ms), false) = (
            c.first_rx.map(|t| t.saturating_sub(c.sent_at).as_millis()),
            got.is_empty(),
        ) {
            text.push_str(&format!(" after {ms} ms"));
        }
        if attempts > 1 {
            text.push_str(&format!(" ({attempts} attempts)"));
        }
        if matches!(
            kind,
            DivergenceKind::NoAnswer | DivergenceKind::Mismatch | DivergenceKind::Short
        ) {
            for n in &self.notes {
                text.push_str(&format!("; {n}"));
            }
        }
        self.state = State::Done;
        self.outcome = Some(Outcome::Diverged(Box::new(Divergence {
            step: i,
            kind,
            text,
            observation,
            explanation,
        })));
        out.updates.push(Update::StepDone(i));
        out.updates.push(Update::Finished);
    }

    fn observation(&self, step: &Step, got: &[u8]) -> Observation {
        let i = self
            .profile
            .steps
            .iter()
            .position(|s| s.name == step.name)
            .unwrap_or(0);
        if self.profile.observation(i) == ObservationChoice::StatusWord {
            if let [.., a, b] = got {
                return Observation::StatusWord(StatusWordSeen {
                    sw: u16::from_be_bytes([*a, *b]),
                    cla: step.send.first().copied(),
                    ins: step.send.get(1).copied(),
                });
            }
        }
        let expected = step
            .expect
            .as_ref()
            .map(|e| e.fixed_bytes())
            .unwrap_or_default();
        Observation::Handshake(HandshakeDivergence::new(
            &self.profile.knowledge_profile,
            &step.name,
            &step.send,
            &expected,
            got,
        ))
    }

    /// The profile's entries for this kind first, then what the knowledge base matches.
    fn explain(&self, i: usize, kind: DivergenceKind, obs: &Observation) -> Vec<Explained> {
        let Some(k) = self.knowledge.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<Explained> = Vec::new();
        let declared = self
            .profile
            .explain_ids(i, kind)
            .iter()
            .filter_map(|id| k.get(id))
            .map(|e| (e, true));
        let matched = k.matches(obs).into_iter().map(|e| (e, false));
        for (e, declared) in declared.chain(matched) {
            if out.iter().any(|x| x.id == e.id) {
                continue;
            }
            out.push(Explained {
                id: e.id.clone(),
                severity: e.severity,
                title: e.title.clone(),
                meaning: e.meaning.clone(),
                causes: e.causes.clone(),
                fixes: e.fixes.clone(),
                declared,
            });
        }
        out
    }

    fn on_apdu(&mut self, x: &crate::event::ApduExchange, now: Timestamp, out: &mut Output) {
        let State::Collect(c) = &mut self.state else {
            return;
        };
        let Some(step) = self.profile.steps.get(c.step).cloned() else {
            return;
        };
        let ours = match x.origin {
            ApduOrigin::Script { line } => line as usize == step.line,
            ApduOrigin::GetResponse | ApduOrigin::LeRetry => c.exchanges > 0,
            ApduOrigin::User => false,
        };
        if !ours {
            return;
        }
        c.exchanges += 1;
        if c.first_rx.is_none() {
            c.first_rx = Some(now);
        }
        let Some(sw) = x.sw() else {
            // No response at all: the Pcsc event that follows says why.
            c.card_failed = true;
            c.settle_until = Some(now + step.idle);
            return;
        };
        c.last_response = Some(x.response.clone());
        if self.card_follow_up && matches!(sw >> 8, 0x61 | 0x6C) {
            // The card source follows up by itself; wait for the final status word.
            return;
        }
        let c = c.clone();
        self.card_final(&step, &c, x.response.clone(), now, out);
    }

    /// A card's final response: done, or the divergence.
    fn card_final(
        &mut self,
        step: &Step,
        c: &Collect,
        response: Vec<u8>,
        now: Timestamp,
        out: &mut Output,
    ) {
        let alt = step.expect.as_ref().map(|e| e.judge_whole(&response));
        match alt {
            None | Some(Some(_)) => {
                if let State::Collect(cur) = &mut self.state {
                    cur.buf = response.clone();
                }
                self.succeed(0, alt.flatten().unwrap_or(0), response.len(), now, out);
            }
            Some(None) => {
                let kind = if is_text(&response) {
                    DivergenceKind::Text
                } else {
                    DivergenceKind::Mismatch
                };
                let mut c = c.clone();
                c.buf = response.clone();
                // A card answers once per command: retrying the same APDU is the profile's
                // choice (retries), like on a line.
                self.diverge(step, &c, response, 0, kind, now, out);
            }
        }
    }

    fn lost(&mut self, reason: &str, now: Timestamp, out: &mut Output) {
        match (&self.profile.transport, &self.state) {
            (_, State::WaitReady) => self.last_problem = Some(reason.to_string()),
            (_, State::Done) => {}
            // A peer that closes after our request has answered, in its way (a TLS 104
            // server closes on plaintext): the step diverges with what came before.
            (Transport::Tcp { .. }, State::Collect(c)) => {
                let c = c.clone();
                let Some(step) = self.step(c.step).cloned() else {
                    return;
                };
                let j = self.judged(&step, &c.buf);
                let got: Vec<u8> = c.buf[j.echo..].iter().take(MAX_GOT).copied().collect();
                let kind = classify(&step, &got);
                if let Some(r) = self.records.get_mut(c.step) {
                    r.notes
                        .push(format!("the peer closed the connection ({reason})"));
                    // A closed connection is not retried: the answer will not change.
                    r.attempts = r.attempts.max(step.retries + 1);
                }
                self.diverge(&step, &c, got, j.echo, kind, now, out);
            }
            _ => self.fail_device(format!("the connection was lost: {reason}"), out),
        }
    }

    fn command_failed(&mut self, command: &str, reason: &str, out: &mut Output) {
        if let Some(pos) = self.line_commands.iter().position(|(_, c)| c == command) {
            let (step, _) = self.line_commands.remove(pos);
            let note = format!("{command} was refused: {reason}");
            if let Some(r) = self.records.get_mut(step) {
                r.notes.push(note.clone());
            }
            if !self.notes.iter().any(|n| n.starts_with(command)) {
                self.notes.push(format!(
                    "{note} — enter the boot mode by hand if the adapter cannot"
                ));
            }
            return;
        }
        let ours = command.starts_with("transmit") || command.starts_with("send APDU");
        match &self.state {
            State::WaitReady => self.last_problem = Some(format!("{command}: {reason}")),
            State::AwaitSent { .. } | State::Collect(_) if ours => {
                self.fail_device(format!("{command}: {reason}"), out);
            }
            _ => {}
        }
    }

    fn fail_device(&mut self, why: String, out: &mut Output) {
        if let Some(i) = self.current_step() {
            if let Some(r) = self.records.get_mut(i) {
                r.status = StepStatus::Diverged;
                r.notes.push(why.clone());
            }
            out.updates.push(Update::StepDone(i));
        }
        self.state = State::Done;
        self.outcome = Some(Outcome::DeviceError(why));
        out.updates.push(Update::Finished);
    }
}

/// Notes a failed attempt; the same result again extends the previous note ("attempts 1-9:
/// got A0 ...") instead of adding a line per attempt.
fn note_attempt(notes: &mut Vec<String>, attempt: u32, what: &str) {
    let first = notes.last().and_then(|last| {
        let rest = last
            .strip_prefix("attempts ")
            .or_else(|| last.strip_prefix("attempt "))?;
        let (n, w) = rest.split_once(": ")?;
        (w == what).then(|| n.split('-').next()?.parse::<u32>().ok())?
    });
    match (first, notes.last_mut()) {
        (Some(first), Some(last)) => *last = format!("attempts {first}-{attempt}: {what}"),
        _ => notes.push(format!("attempt {attempt}: {what}")),
    }
}

/// What kind of divergence `got` is at `step`.
fn classify(step: &Step, got: &[u8]) -> DivergenceKind {
    if got.is_empty() {
        return DivergenceKind::NoAnswer;
    }
    if step
        .expect
        .as_ref()
        .is_some_and(|e| e.judge(got) == ReplyMatch::NeedMore)
        && (step.send.is_empty() || !step.send.starts_with(got))
    {
        return DivergenceKind::Short;
    }
    if !step.send.is_empty() && (got.starts_with(&step.send) || step.send.starts_with(got)) {
        return DivergenceKind::Echo;
    }
    if is_text(got) {
        return DivergenceKind::Text;
    }
    DivergenceKind::Mismatch
}

/// "got nothing within 500 ms", "got A0 (the echo of what was sent)", "got 68 65 … ("he…")".
fn got_words(got: &[u8], kind: DivergenceKind, timeout: Duration) -> String {
    if got.is_empty() {
        return format!("got nothing within {} ms", timeout.as_millis());
    }
    let shown = &got[..got.len().min(24)];
    let more = if got.len() > shown.len() { " …" } else { "" };
    let mut s = format!("got {}{more}", hex::spaced(shown));
    match kind {
        DivergenceKind::Echo => s.push_str(" (the echo of what was sent)"),
        DivergenceKind::Text => {
            let text = String::from_utf8_lossy(shown);
            s.push_str(&format!(
                " (text \"{}{more}\")",
                crate::sanitize::printable(&text)
            ));
        }
        DivergenceKind::Short => s.push_str(" (the start of the answer, then nothing)"),
        _ => {}
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::ApduExchange;
    use crate::handshake::profile::Profiles;

    fn h(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap()
    }

    fn ms(n: u64) -> Timestamp {
        Duration::from_millis(n)
    }

    fn ev(at: u64, event: Event) -> TimedEvent {
        TimedEvent::new(ms(at), event)
    }

    /// A device played by the test: the runner's commands in, events with times out.
    struct Bench {
        runner: Runner,
        now: u64,
        sent: Vec<Command>,
    }

    impl Bench {
        fn new(name: &str) -> Bench {
            let k = Arc::new(Knowledge::embedded().unwrap());
            let profile = Profiles::built_in().unwrap().get(name).unwrap().clone();
            Bench::with(profile, k)
        }

        fn with(profile: Profile, k: Arc<Knowledge>) -> Bench {
            Bench {
                runner: Runner::new(profile, Some(k), ms(0)),
                now: 0,
                sent: Vec::new(),
            }
        }

        fn feed(&mut self, event: Event) -> Vec<Command> {
            let out = self.runner.on_event(&ev(self.now, event));
            self.sent.extend(out.commands.clone());
            out.commands
        }

        /// The source confirms the commands: Transmit → Tx (what a port does).
        fn confirm(&mut self, cmds: Vec<Command>) {
            for c in cmds {
                if let Command::Transmit(b) = c {
                    let more = self.feed(Event::Tx(b));
                    self.confirm(more);
                }
            }
        }

        fn ready_serial(&mut self) {
            let s = self.runner.profile().line_settings().unwrap();
            let cmds = self.feed(Event::LineSettings {
                settings: s,
                modem: Default::default(),
            });
            self.confirm(cmds);
        }

        fn rx(&mut self, after: u64, bytes: &[u8]) {
            self.now += after;
            let cmds = self.feed(Event::Rx(bytes.to_vec()));
            self.confirm(cmds);
        }

        /// Advances time to the runner's next wake-up and polls.
        fn wait(&mut self) {
            let wake = self.runner.next_wake().unwrap();
            self.now = self.now.max(wake.as_millis() as u64);
            let out = self.runner.poll(ms(self.now));
            self.sent.extend(out.commands.clone());
            self.confirm(out.commands);
        }

        fn transmitted(&self) -> Vec<Vec<u8>> {
            self.sent
                .iter()
                .filter_map(|c| match c {
                    Command::Transmit(b) => Some(b.clone()),
                    _ => None,
                })
                .collect()
        }

        fn divergence(&self) -> &Divergence {
            match self.runner.outcome() {
                Some(Outcome::Diverged(d)) => d,
                other => panic!("expected a divergence, got {other:?}"),
            }
        }

        fn ids(&self) -> Vec<&str> {
            self.divergence()
                .explanation
                .iter()
                .map(|e| e.id.as_str())
                .collect()
        }
    }

    #[test]
    fn mtk_brom_succeeds_byte_by_byte() {
        let mut b = Bench::new("mtk-brom");
        b.ready_serial();
        for (sent, answer) in [(0xA0, 0x5F), (0x0A, 0xF5), (0x50, 0xAF), (0x05, 0xFA)] {
            assert_eq!(b.transmitted().last().unwrap(), &vec![sent]);
            b.rx(3, &[answer]);
        }
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        assert_eq!(
            b.transmitted(),
            vec![vec![0xA0], vec![0x0A], vec![0x50], vec![0x05]]
        );
        let r = &b.runner.records()[0];
        assert_eq!((r.got.clone(), r.latency), (vec![0x5F], Some(ms(3))));
        assert!(
            b.runner
                .records()
                .iter()
                .all(|r| r.status == StepStatus::Ok)
        );
    }

    #[test]
    fn mtk_echo_of_a0_is_the_divergence_after_every_retry() {
        let mut b = Bench::new("mtk-brom");
        b.ready_serial();
        for _ in 0..10 {
            b.rx(1, &[0xA0]);
            b.wait(); // the quiet gap after a wrong reply
        }
        assert_eq!(
            b.transmitted(),
            vec![vec![0xA0]; 10],
            "A0 sent 1 + 9 retries"
        );
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::Echo);
        assert_eq!(d.step, 0);
        assert_eq!(
            d.observation,
            Observation::Handshake(HandshakeDivergence::new(
                "mtk-brom",
                "start-a0",
                &[0xA0],
                &[0x5F],
                &[0xA0]
            ))
        );
        assert_eq!(b.ids()[0], "mtk.brom_echo_a0");
        assert!(
            d.text.contains("got A0 (the echo of what was sent)"),
            "{}",
            d.text
        );
        assert!(d.text.contains("(10 attempts)"), "{}", d.text);
        let r = &b.runner.records()[0];
        assert_eq!(r.status, StepStatus::Diverged);
        assert_eq!(super::super::expect::diff_text(&r.diff), "A0≠5F");
        assert_eq!(b.runner.outcome().unwrap().exit_code(), 1);
    }

    #[test]
    fn repeated_attempts_share_one_note() {
        let mut notes = Vec::new();
        note_attempt(&mut notes, 1, "got A0");
        note_attempt(&mut notes, 2, "got A0");
        note_attempt(&mut notes, 3, "got A0");
        note_attempt(&mut notes, 4, "got nothing within 100 ms");
        assert_eq!(
            notes,
            [
                "attempts 1-3: got A0",
                "attempt 4: got nothing within 100 ms"
            ]
        );
    }

    #[test]
    fn stm32_succeeds_with_get() {
        let mut b = Bench::new("stm32");
        b.ready_serial();
        assert_eq!(b.transmitted(), vec![vec![0x7F]]);
        b.rx(2, &[0x79]);
        assert_eq!(b.transmitted()[1], vec![0x00, 0xFF]);
        // The GET reply in two chunks (ST AN3155 via stm32flash; decoder's worked reply).
        let get = h("79 0B 31 00 01 02 11 21 31 43 63 73 82 92 79");
        b.rx(2, &get[..6]);
        assert!(!b.runner.is_finished());
        b.rx(2, &get[6..]);
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        assert_eq!(b.runner.records()[1].got, get);
        assert_eq!(b.runner.records()[1].elapsed, Some(ms(4)));
    }

    #[test]
    fn stm32_text_instead_of_79_means_the_application_runs() {
        let mut b = Bench::new("stm32");
        b.ready_serial();
        b.rx(5, b"hello");
        b.rx(5, b" world\r\n");
        b.wait();
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::Text);
        assert_eq!(b.ids()[0], "stm32.text_instead_of_ack");
        assert_eq!(b.runner.records()[0].got, b"hello world\r\n".to_vec());
        assert!(
            d.text.contains("(text \"hello world\\x0D\\x0A\")"),
            "{}",
            d.text
        );
        assert!(d.text.contains("after 5 ms"), "{}", d.text);
    }

    #[test]
    fn stm32_silent_at_8n1_says_no_ack_and_the_parity() {
        let mut b = Bench::new("stm32");
        let mut s = b.runner.profile().line_settings().unwrap();
        s.format = "8N1".parse().unwrap();
        let cmds = b.feed(Event::LineSettings {
            settings: s,
            modem: Default::default(),
        });
        b.confirm(cmds);
        b.wait();
        assert_eq!(b.now, 500, "the step's timeout");
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::NoAnswer);
        assert_eq!(b.ids()[0], "stm32.no_ack");
        assert!(d.text.contains("got nothing within 500 ms"), "{}", d.text);
        assert!(
            d.text
                .contains("the port runs at 57600 8N1 but this profile expects 57600 8E1"),
            "{}",
            d.text
        );
        let fixes = &d.explanation[0].fixes;
        assert!(fixes.iter().any(|f| f.contains("8E1")));
        assert!(fixes.iter().any(|f| f.contains("BOOT0")));
    }

    #[test]
    fn stm32_nack_is_explained_from_the_knowledge_base() {
        let mut b = Bench::new("stm32");
        b.ready_serial();
        b.rx(1, &[0x1F]);
        b.wait();
        assert_eq!(b.divergence().kind, DivergenceKind::Mismatch);
        assert_eq!(b.ids()[0], "stm32.nack_on_init");
    }

    #[test]
    fn mbus_succeeds_and_a_long_frame_where_e5_was_expected_diverges() {
        let rsp =
            h("68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16");
        let mut b = Bench::new("mbus");
        b.ready_serial();
        assert_eq!(b.transmitted(), vec![h("10 40 FE 3E 16")]);
        b.rx(20, &[0xE5]);
        assert_eq!(b.transmitted()[1], h("10 5B FE 59 16"));
        b.rx(100, &rsp);
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        assert_eq!(b.runner.records()[1].got, rsp);
    }

    #[test]
    fn mbus_long_frame_where_e5_was_expected_diverges_after_the_retry() {
        // libmbus manual_frame2 (EN 13757-2): an RSP_UD, C = 08.
        let rsp = h("68 13 13 68 08 05 73 78 56 34 12 0A 00 E9 7E 01 00 00 00 35 01 00 00 3C 16");
        let mut b = Bench::new("mbus");
        b.ready_serial();
        b.rx(20, &rsp);
        b.wait();
        assert!(!b.runner.is_finished(), "retries = 1: sent again");
        b.rx(20, &rsp);
        b.wait();
        assert_eq!(b.transmitted(), vec![h("10 40 FE 3E 16"); 2]);
        assert_eq!(b.runner.records()[0].attempts, 2);
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::Mismatch);
        assert_eq!(d.step, 0);
        let Observation::Handshake(hd) = &d.observation else {
            panic!()
        };
        assert_eq!(
            (hd.expected.clone(), hd.got.clone()),
            (vec![0xE5], rsp.clone())
        );
        assert_eq!(b.ids()[0], "mbus.stale_response");
        assert!(b.ids().contains(&"mbus.long_frame_unexpected"));
        assert!(d.text.contains("(2 attempts)"), "{}", d.text);
        assert!(
            d.text
                .starts_with("step \"snd-nke\": sent 10 40 FE 3E 16, expected E5, got 68 13 13 68"),
            "{}",
            d.text
        );
    }

    #[test]
    fn mbus_rs485_echo_is_matched_past() {
        let mut b = Bench::new("mbus");
        b.ready_serial();
        // The echo arrives in pieces, then the meter's E5.
        b.rx(5, &h("10 40"));
        b.rx(5, &h("FE 3E 16"));
        assert!(!b.runner.is_finished());
        assert_eq!(b.transmitted().len(), 1, "still waiting after the echo");
        b.rx(30, &[0xE5]);
        let r = &b.runner.records()[0];
        assert_eq!(r.status, StepStatus::Ok);
        assert_eq!(r.echo, Some(h("10 40 FE 3E 16")));
        assert_eq!(r.got, vec![0xE5]);
        assert_eq!(r.notes, vec![ECHO_NOTE.to_string()]);
        assert_eq!(r.latency, Some(ms(5)));
        b.rx(5, &h("10 5B FE 59 16 68 03 03 68 08 FE 72 78 16"));
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        assert_eq!(b.runner.records()[1].got, h("68 03 03 68 08 FE 72 78 16"));
    }

    #[test]
    fn mbus_echo_then_nothing_is_no_answer() {
        let mut b = Bench::new("mbus");
        b.ready_serial();
        b.rx(5, &h("10 40 FE 3E 16"));
        b.wait();
        b.rx(5, &h("10 40 FE 3E 16"));
        b.wait();
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::NoAnswer);
        assert_eq!(b.ids()[0], "mbus.no_answer");
        let r = &b.runner.records()[0];
        assert!(
            r.notes
                .iter()
                .any(|n| n
                    .contains("the line echoed what we sent (10 40 FE 3E 16), then nothing came")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn mbus_baud_garbage_is_explained() {
        let mut b = Bench::new("mbus");
        b.ready_serial();
        // EN 13757-2 (simulated): E5 sent at 2400 and read at 9600.
        b.rx(5, &[0x78, 0x80]);
        b.wait();
        b.rx(5, &[0x78, 0x80]);
        b.wait();
        assert_eq!(b.ids()[0], "mbus.garbage_instead_of_e5");
    }

    #[test]
    fn esp32_resets_then_syncs() {
        let mut b = Bench::new("esp32");
        b.ready_serial();
        assert_eq!(
            b.sent,
            vec![Command::SetDtr(false), Command::SetRts(true)],
            "EN low first"
        );
        b.wait();
        assert_eq!(b.now, 100);
        assert_eq!(
            &b.sent[2..],
            &[Command::SetDtr(true), Command::SetRts(false)]
        );
        b.wait();
        assert_eq!(b.now, 150);
        assert_eq!(b.sent[4], Command::SetDtr(false));
        let sync = &b.transmitted()[0];
        assert_eq!(sync.len(), 46);
        // A pty has no modem lines: said, not fatal.
        let more = b.feed(Event::CommandFailed {
            command: "set DTR off".to_string(),
            reason: "this port has no modem control lines".to_string(),
        });
        assert!(more.is_empty());
        let reply = h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0");
        let mut eight = Vec::new();
        for _ in 0..8 {
            eight.extend_from_slice(&reply);
        }
        b.rx(10, &eight);
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        let r = &b.runner.records()[3];
        assert_eq!(r.got, reply);
        assert!(
            r.notes.iter().any(|n| n.contains("98 more bytes")),
            "{:?}",
            r.notes
        );
        // Refusals come back in the order the commands went: the first DTR off was step 0's.
        assert!(b.runner.records()[0].notes[0].contains("set DTR off was refused"));
        assert!(b.runner.records()[2].notes.is_empty());
        assert!(
            b.runner
                .notes
                .iter()
                .any(|n| n.contains("set DTR off was refused")),
            "{:?}",
            b.runner.notes
        );
    }

    #[test]
    fn esp32_boot_log_means_not_in_download_mode() {
        let mut b = Bench::new("esp32");
        b.ready_serial();
        b.wait();
        b.wait();
        for _ in 0..5 {
            b.rx(
                10,
                b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
            );
            b.wait();
        }
        assert_eq!(b.transmitted().len(), 5, "SYNC sent 1 + 4 retries");
        assert_eq!(b.divergence().kind, DivergenceKind::Text);
        assert_eq!(b.ids()[0], "esp.not_download_mode");
        assert!(b.ids().contains(&"esp.invalid_head"));
    }

    #[test]
    fn esp32_cut_short_reply_is_short() {
        let mut b = Bench::new("esp32");
        b.ready_serial();
        b.wait();
        b.wait();
        for _ in 0..5 {
            b.rx(10, &h("C0 01 08 04"));
            b.wait();
        }
        assert_eq!(b.divergence().kind, DivergenceKind::Short);
        assert!(b.divergence().text.contains("the start of the answer"));
    }

    #[test]
    fn dlt645_with_echo_and_preamble_succeeds() {
        let mut b = Bench::new("dlt645");
        b.ready_serial();
        let req = h("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16");
        assert_eq!(b.transmitted(), vec![req.clone()]);
        let reply = h("FE FE 68 01 00 00 00 00 00 68 93 06 34 33 33 33 33 33 9D 16");
        let mut line = req.clone();
        line.extend_from_slice(&reply);
        b.rx(40, &line);
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        let r = &b.runner.records()[0];
        assert_eq!(r.got, reply);
        assert_eq!(r.echo, Some(req));
        // The decoder agrees this is a valid read-address reply.
        let frame = crate::decode::dlt645::parse(0, &reply).unwrap();
        assert!(frame.status.is_ok(), "{frame:?}");
        assert_eq!(frame.span, 0..20);
    }

    #[test]
    fn dlt645_mbus_device_answering_is_a_mismatch() {
        let mut b = Bench::new("dlt645");
        b.ready_serial();
        b.rx(40, &h("68 03 03 68 08 01 72 7B 16"));
        b.wait();
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::Mismatch);
        assert_eq!(b.ids(), vec!["handshake.divergence"]);
    }

    fn tcp_ready(b: &mut Bench) {
        let cmds = b.feed(Event::Connection(ConnectionState::Up));
        b.confirm(cmds);
    }

    #[test]
    fn iec104_startdt_con() {
        let mut b = Bench::new("iec104");
        tcp_ready(&mut b);
        assert_eq!(b.transmitted(), vec![h("68 04 07 00 00 00")]);
        b.rx(3, &h("68 04 0B 00 00 00"));
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
    }

    #[test]
    fn iec104_closed_connection_is_no_startdt_con() {
        let mut b = Bench::new("iec104");
        tcp_ready(&mut b);
        b.now += 2;
        b.feed(Event::Connection(ConnectionState::Down {
            reason: "closed by the peer".to_string(),
        }));
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::NoAnswer);
        assert_eq!(b.ids()[0], "iec104.no_startdt_con");
        assert!(
            b.runner.records()[0]
                .notes
                .iter()
                .any(|n| n.contains("the peer closed the connection"))
        );
    }

    fn card_ready(b: &mut Bench) -> Vec<Command> {
        b.feed(Event::Card(CardEvent::Connected {
            reader: "r".to_string(),
            protocol: "T=0".to_string(),
            share: crate::event::ShareMode::Shared,
            atr: vec![0x3B],
        }))
    }

    fn exchange(cmd: &Command, response: &[u8], origin: Option<ApduOrigin>) -> Event {
        let Command::SendApdu { apdu, origin: o } = cmd else {
            panic!("not an APDU: {cmd:?}")
        };
        Event::Apdu(ApduExchange {
            command: apdu.clone(),
            response: response.to_vec(),
            duration: Duration::from_millis(4),
            origin: origin.unwrap_or(*o),
        })
    }

    #[test]
    fn iso7816_select_follows_61xx_to_9000() {
        let mut b = Bench::new("iso7816-select");
        let cmds = card_ready(&mut b);
        assert_eq!(
            cmds,
            vec![Command::SendApdu {
                apdu: h("00 A4 04 00 07 F0 68 73 6D 6F 6E 01"),
                origin: ApduOrigin::Script {
                    line: b.runner.profile().steps[0].line as u32
                },
            }]
        );
        b.now = 5;
        b.feed(exchange(&cmds[0], &h("61 0B"), None));
        assert!(!b.runner.is_finished());
        let get = Command::SendApdu {
            apdu: h("00 C0 00 00 0B"),
            origin: ApduOrigin::GetResponse,
        };
        b.now = 9;
        b.feed(exchange(
            &get,
            &h("6F 09 84 07 F0 68 73 6D 6F 6E 01 90 00"),
            None,
        ));
        assert_eq!(b.runner.outcome(), Some(&Outcome::Success));
        assert_eq!(b.runner.records()[0].elapsed, Some(ms(9)));
    }

    #[test]
    fn iso7816_select_not_found_is_explained_as_a_status_word() {
        let mut b = Bench::new("iso7816-select");
        let cmds = card_ready(&mut b);
        b.feed(exchange(&cmds[0], &h("6A 82"), None));
        let d = b.divergence();
        assert_eq!(d.kind, DivergenceKind::Mismatch);
        assert_eq!(
            d.observation,
            Observation::StatusWord(StatusWordSeen {
                sw: 0x6A82,
                cla: Some(0),
                ins: Some(0xA4)
            })
        );
        assert_eq!(b.ids()[0], "iso7816.sw.6a82");
    }

    #[test]
    fn a_card_that_never_connects_is_a_device_error() {
        let mut b = Bench::new("iso7816-select");
        b.feed(Event::Card(CardEvent::Readers(vec![
            "Virtual PCD 00 00".into(),
        ])));
        b.wait();
        assert_eq!(b.now, READY_TIMEOUT.as_millis() as u64);
        let Some(Outcome::DeviceError(why)) = b.runner.outcome() else {
            panic!("{:?}", b.runner.outcome())
        };
        assert!(why.contains("Virtual PCD 00 00"), "{why}");
        assert_eq!(b.runner.outcome().unwrap().exit_code(), 3);
    }

    #[test]
    fn a_write_failure_is_a_device_error() {
        let mut b = Bench::new("stm32");
        let s = b.runner.profile().line_settings().unwrap();
        b.feed(Event::LineSettings {
            settings: s,
            modem: Default::default(),
        });
        b.feed(Event::CommandFailed {
            command: "transmit 1 bytes".to_string(),
            reason: "not sent: input/output error".to_string(),
        });
        assert!(
            matches!(b.runner.outcome(), Some(Outcome::DeviceError(w)) if w.contains("input/output"))
        );
        assert_eq!(b.runner.records()[0].status, StepStatus::Diverged);
    }

    #[test]
    fn bytes_before_the_send_is_confirmed_belong_to_no_step() {
        let mut b = Bench::new("stm32");
        let s = b.runner.profile().line_settings().unwrap();
        b.feed(Event::LineSettings {
            settings: s,
            modem: Default::default(),
        });
        b.feed(Event::Rx(b"boot noise".to_vec()));
        b.feed(Event::Tx(vec![0x7F]));
        b.rx(1, &[0x79]);
        assert!(b.runner.records()[0].status == StepStatus::Ok);
        assert_eq!(b.runner.records()[0].got, vec![0x79]);
    }
}
