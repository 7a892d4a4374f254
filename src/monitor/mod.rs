//! The monitor: one loop, written once, under every front end. It owns the source handle,
//! the session (with its capture writer and the timer that flushes it and releases held
//! frames), the signals, the bounded drain of the source's channel, the read-back of older
//! bytes from the capture, and the drivers (baud scan, APDU script, handshake). Front ends
//! only consume it: the TUI ([`crate::tui`]) renders and maps keys to [`Effect`]s; headless
//! ([`crate::headless`]) writes records and turns stdin lines into effects.
//!
//! ```text
//!  source task ──events──▶ Monitor::run ──ingest──▶ Session ──frames, diagnoses──▶ FrontEnd
//!       ▲                    │  ▲   │                                              │
//!       └────commands────────┘  │   └──events──▶ drivers ──reports──────────────────┤
//!                               └──────────── effects (keys, stdin lines) ◀─────────┘
//! ```

pub mod driver;
pub mod effect;
pub mod history;
pub mod scan;
pub mod script;

use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use futures::{Stream, StreamExt};
use tokio::time::Instant;

pub use driver::{Driver, DriverDone, DriverStep, EndReason, Report};
pub use effect::{Effect, HistoryRequest, ScriptAction};
pub use history::HistoryReply;

use crate::clock::Clock;
use crate::event::{Command, TimedEvent, Timestamp};
use crate::session::Session;
use crate::source::SourceHandle;

/// Most events taken from the channel before the front end gets a chance to draw or flush.
const DRAIN_BATCH: usize = 4096;

/// Most time spent taking events before the loop looks at keys, signals and the screen
/// again. Without it a source far ahead of the decoders (a pty fed at 200 MB/s) kept the
/// loop in one batch for tens of seconds: no redraw, and SIGTERM went unanswered. Past this,
/// the source holds back (and past its bound drops and counts) instead.
pub const DRAIN_BUDGET: Duration = Duration::from_micros(1_000_000 / 60);

/// At exit, how long the source's last events (what it had read but the loop had not yet
/// taken) are waited for, to go into the capture: each wait, and all of them together.
const EXIT_DRAIN_IDLE: Duration = Duration::from_millis(100);
const EXIT_DRAIN_MAX: Duration = Duration::from_secs(3);

/// How long a command waits for room in a full command queue before it is reported as not
/// done (the queue holds 64; only a flood of stdin lines fills it).
const COMMAND_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// What a front end does with the monitor's news. Every method has the monitor at hand.
pub trait FrontEnd {
    /// What the user types: terminal events, or stdin control lines.
    type Input;

    /// The session has taken `ev` (headless writes its record and what the session found).
    fn on_event(&mut self, m: &mut Monitor, ev: &TimedEvent) -> Result<()>;
    /// A driver reported, at session time `at`.
    fn on_report(&mut self, m: &Monitor, at: Timestamp, report: &Report) -> Result<()>;
    /// The user typed something: what the monitor should do about it.
    fn on_input(&mut self, m: &Monitor, input: Self::Input) -> Result<Vec<Effect>>;
    /// The input ended: true ends the session.
    fn on_input_end(&mut self) -> bool;
    /// After a batch of events, a timer or a driver's wake-up: write or mark what the session
    /// found since; returns effects that follow from it (a replay step goes on).
    fn settle(&mut self, m: &mut Monitor) -> Result<Vec<Effect>>;
    /// A read-back of the capture finished; true shows `loaded` instead of the live session.
    fn on_history(&mut self, m: &Monitor, reply: &HistoryReply, loaded: Option<&Session>) -> bool;
    /// A line for the user (a command not taken, the source stopped).
    fn message(&mut self, text: String) -> Result<()>;
    /// When the next frame should be drawn (None: nothing to draw).
    fn next_draw(&self, m: &Monitor) -> Option<Instant>;
    fn draw(&mut self, m: &Monitor) -> Result<()>;
    /// Whether the session ends when the source closes (headless) or stays on screen (TUI).
    fn ends_with_source(&self) -> bool;
    /// Whether what the source still had queued at the end is decoded (headless: it becomes
    /// records) or only recorded into the capture (the TUI, whose screen is gone).
    fn decodes_at_exit(&self) -> bool;
}

/// The session and everything that feeds it.
pub struct Monitor {
    pub session: Session,
    handle: SourceHandle,
    clock: Clock,
    drivers: Vec<Box<dyn Driver>>,
    /// Bytes read back from the capture, shown instead of the live session (Home, a search).
    history: Option<Session>,
    source_open: bool,
    deadline: Option<Instant>,
    /// A driver that ends the run finished: the session ends then (after its linger).
    ending: Option<Instant>,
}

impl Monitor {
    pub fn new(handle: SourceHandle, mut session: Session, clock: Clock) -> Monitor {
        // Issue 20: the capture is written by the source's sink, before the event channel
        // and anything that may drop (the display, stdout); the session keeps the handle.
        handle.events.tee().attach(session.recorded_at_source());
        Monitor {
            session,
            handle,
            clock,
            drivers: Vec::new(),
            history: None,
            source_open: true,
            deadline: None,
            ending: None,
        }
    }

    /// Ends the session after `d` (`--duration`).
    pub fn set_deadline(&mut self, d: Option<Duration>) {
        self.deadline = d.map(|d| Instant::now() + d);
    }

    pub fn push_driver(&mut self, d: Box<dyn Driver>) {
        self.drivers.push(d);
    }

    /// The running driver of type `T`, if any (a pane shows its state).
    pub fn driver<T: Driver>(&self) -> Option<&T> {
        self.drivers.iter().find_map(|d| d.as_any().downcast_ref())
    }

    fn driver_mut<T: Driver>(&mut self) -> Option<&mut T> {
        self.drivers
            .iter_mut()
            .find_map(|d| d.as_any_mut().downcast_mut())
    }

    /// What the screen shows: the capture read back, or the live session.
    pub fn shown(&self) -> &Session {
        self.history.as_ref().unwrap_or(&self.session)
    }

    pub fn in_history(&self) -> bool {
        self.history.is_some()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The exit status the drivers ask for after `end` (the first that asks), if any.
    pub fn exit_status(&self, end: EndReason) -> Option<u8> {
        self.drivers.iter().find_map(|d| d.exit_status(end))
    }

    /// Runs until the user quits, a signal, `--duration`, a driver that ends the run, or (for
    /// a front end that says so) the source closing. Then stops the source, takes what it
    /// still had, and closes the capture.
    pub async fn run<F: FrontEnd>(
        &mut self,
        fe: &mut F,
        input: &mut (impl Stream<Item = F::Input> + Unpin),
    ) -> Result<EndReason> {
        let mut signals = Signals::new()?;
        let mut input_open = true;
        // Effects of the first driver steps (a scan that can start at once).
        self.start_drivers(fe)?;
        let end = loop {
            if let Some(at) = fe.next_draw(self) {
                if Instant::now() >= at {
                    fe.draw(self)?;
                }
            }
            let draw_at = fe.next_draw(self);
            let wake = self
                .drivers
                .iter()
                .filter_map(|d| d.next_wake())
                .min()
                .map(|t| Instant::from_std(self.clock.instant_at(t)));
            let mut end = None;
            tokio::select! {
                ev = self.handle.events.recv(), if self.source_open => match ev {
                    Some(ev) => self.take_batch(fe, ev)?,
                    None => {
                        self.source_open = false;
                        if fe.ends_with_source() {
                            end = Some(EndReason::SourceStopped);
                        } else {
                            fe.message("the source stopped".to_string())?;
                        }
                    }
                },
                item = input.next(), if input_open => match item {
                    Some(i) => {
                        let effects = fe.on_input(self, i)?;
                        end = self.apply(fe, effects).await?;
                    }
                    None => {
                        input_open = false;
                        if fe.on_input_end() {
                            end = Some(EndReason::InputClosed);
                        }
                    }
                },
                _ = session_timer(&self.session, &self.clock) => {
                    if self.session.poll(self.clock.now()) {
                        let effects = fe.settle(self)?;
                        end = self.apply(fe, effects).await?;
                    }
                }
                _ = sleep_until(wake), if wake.is_some() => self.on_wake(fe).await?,
                _ = sleep_until(draw_at), if draw_at.is_some() => {}
                _ = signals.recv() => end = Some(EndReason::Signal),
                _ = sleep_until(self.deadline), if self.deadline.is_some() => end = Some(EndReason::Deadline),
                _ = sleep_until(self.ending), if self.ending.is_some() => end = Some(EndReason::DriverDone),
            }
            if end.is_none() {
                self.check_drivers(fe).await?;
            }
            if let Some(e) = end {
                break e;
            }
        };
        self.finish(fe).await?;
        Ok(end)
    }

    /// What the drivers can do before any event (a scan on a session that knows its settings).
    fn start_drivers<F: FrontEnd>(&mut self, fe: &mut F) -> Result<()> {
        let at = self.clock.now();
        let mut steps = Vec::new();
        for d in self.drivers.iter_mut() {
            steps.push(d.start(&self.session, at));
        }
        for step in steps {
            self.carry_out_now(fe, step, at)?;
        }
        Ok(())
    }

    /// One event and what is already queued behind it, within [`DRAIN_BATCH`] and
    /// [`DRAIN_BUDGET`].
    fn take_batch<F: FrontEnd>(&mut self, fe: &mut F, first: TimedEvent) -> Result<()> {
        self.take_event(fe, &first)?;
        self.take_queued(fe)?;
        self.settle(fe)
    }

    /// What is queued already, within [`DRAIN_BATCH`] and [`DRAIN_BUDGET`].
    fn take_queued<F: FrontEnd>(&mut self, fe: &mut F) -> Result<()> {
        let budget = Instant::now() + DRAIN_BUDGET;
        for _ in 0..DRAIN_BATCH {
            if Instant::now() >= budget {
                break;
            }
            match self.handle.events.try_recv() {
                Ok(ev) => self.take_event(fe, &ev)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// The front end writes or marks what the session found; commands that follow from it
    /// (a replay step goes on) are queued.
    fn settle<F: FrontEnd>(&mut self, fe: &mut F) -> Result<()> {
        let effects = fe.settle(self)?;
        // Effects from settling (a replay step) are commands only: no await needed here.
        for e in effects {
            if let Effect::Command(c) = e {
                self.try_send(fe, c)?;
            }
        }
        Ok(())
    }

    /// One event into the session, the front end and every driver.
    fn take_event<F: FrontEnd>(&mut self, fe: &mut F, ev: &TimedEvent) -> Result<()> {
        self.session.ingest(ev);
        fe.on_event(self, ev)?;
        for i in 0..self.drivers.len() {
            let step = match self.drivers.get_mut(i) {
                Some(d) => d.on_event(&mut self.session, ev),
                None => continue,
            };
            self.carry_out_now(fe, step, ev.at)?;
        }
        Ok(())
    }

    /// Reports to the front end, commands to the source without waiting.
    fn carry_out_now<F: FrontEnd>(
        &mut self,
        fe: &mut F,
        step: DriverStep,
        at: Timestamp,
    ) -> Result<()> {
        for r in &step.reports {
            fe.on_report(self, at, r)?;
        }
        for c in step.commands {
            self.try_send(fe, c)?;
        }
        Ok(())
    }

    /// A driver's wake-up. Events already queued were read before it: they go first, so a
    /// driver's timeout is judged against what the device had sent by then. While a backlog
    /// remains (a source far ahead of the decoders), the time is the newest event's, not the
    /// clock's: a reply still in the queue is not a timeout.
    async fn on_wake<F: FrontEnd>(&mut self, fe: &mut F) -> Result<()> {
        self.take_queued(fe)?;
        let now = if self.source_open && !self.handle.events.is_empty() {
            self.session.last_at
        } else {
            self.clock.now()
        };
        self.poll_drivers(fe, now).await
    }

    async fn poll_drivers<F: FrontEnd>(&mut self, fe: &mut F, now: Timestamp) -> Result<()> {
        for i in 0..self.drivers.len() {
            let due = self
                .drivers
                .get(i)
                .and_then(|d| d.next_wake())
                .is_some_and(|w| w <= now);
            if !due {
                continue;
            }
            let step = match self.drivers.get_mut(i) {
                Some(d) => d.poll(&mut self.session, now),
                None => continue,
            };
            for r in &step.reports {
                fe.on_report(self, now, r)?;
            }
            for c in step.commands {
                self.send(fe, c).await?;
            }
        }
        let effects = fe.settle(self)?;
        self.apply(fe, effects).await?;
        Ok(())
    }

    /// Finished drivers: one that ends the run schedules the end; one that does not stay is
    /// retired (a scan puts the port back).
    async fn check_drivers<F: FrontEnd>(&mut self, fe: &mut F) -> Result<()> {
        let mut i = 0;
        while i < self.drivers.len() {
            let Some(d) = self.drivers.get(i) else { break };
            match d.done() {
                Some(done) if d.ends_run() => {
                    if self.ending.is_none() {
                        self.ending = Some(Instant::now() + done.linger);
                    }
                    i += 1;
                }
                Some(_) if !d.stays_when_done() => {
                    let mut d = self.drivers.remove(i);
                    let step = d.retire();
                    let at = self.clock.now();
                    for r in &step.reports {
                        fe.on_report(self, at, r)?;
                    }
                    for c in step.commands {
                        self.send(fe, c).await?;
                    }
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// Carries out effects; returns an end when one ends the session.
    async fn apply<F: FrontEnd>(
        &mut self,
        fe: &mut F,
        effects: Vec<Effect>,
    ) -> Result<Option<EndReason>> {
        let mut end = None;
        for e in effects {
            match e {
                Effect::Command(Command::Shutdown) | Effect::Quit => end = Some(EndReason::Quit),
                Effect::Command(c) => self.send(fe, c).await?,
                Effect::StartScan => {
                    if self.driver::<scan::ScanDriver>().is_none() {
                        let mut d = scan::ScanDriver::new(false);
                        let at = self.clock.now();
                        let step = d.start(&self.session, at);
                        self.drivers.push(Box::new(d));
                        self.carry_out_now(fe, step, at)?;
                    }
                }
                Effect::StopScan => {
                    if let Some(i) = self
                        .drivers
                        .iter()
                        .position(|d| d.as_any().is::<scan::ScanDriver>())
                    {
                        let mut d = self.drivers.remove(i);
                        let step = d.retire();
                        let at = self.clock.now();
                        fe.on_report(self, at, &Report::ScanStopped)?;
                        self.carry_out_now(fe, step, at)?;
                    }
                }
                Effect::Script(a) => {
                    let at = self.clock.now();
                    let step = match self.driver_mut::<script::ScriptDriver>() {
                        Some(d) => d.act(a),
                        None => DriverStep {
                            commands: Vec::new(),
                            reports: vec![Report::Message(
                                "no script loaded: start with hsmon card --script FILE (i sends one APDU)"
                                    .to_string(),
                            )],
                        },
                    };
                    self.carry_out_now(fe, step, at)?;
                }
                Effect::History(req) => {
                    let (reply, loaded) = history::serve(&mut self.session, req);
                    let show = fe.on_history(self, &reply, loaded.as_ref());
                    match (reply, loaded) {
                        (HistoryReply::Live, _) => self.history = None,
                        (_, Some(h)) if show => self.history = Some(h),
                        // Found in the live session's memory after all.
                        (HistoryReply::Found { .. }, None) if show => self.history = None,
                        _ => {}
                    }
                }
            }
        }
        Ok(end)
    }

    /// Queues a command; when the queue is full, waits a little; a command not taken is said.
    async fn send<F: FrontEnd>(&mut self, fe: &mut F, c: Command) -> Result<()> {
        match self.handle.commands.try_send(c) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Full(c)) => {
                let what = c.describe();
                match tokio::time::timeout(COMMAND_QUEUE_WAIT, self.handle.commands.send(c)).await {
                    Ok(Ok(())) => Ok(()),
                    _ => fe.message(not_taken(&what)),
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(c)) => {
                fe.message(not_taken(&c.describe()))
            }
        }
    }

    /// Queues a command without waiting (inside a drain, where awaiting would stall it).
    fn try_send<F: FrontEnd>(&mut self, fe: &mut F, c: Command) -> Result<()> {
        match self.handle.commands.try_send(c) {
            Ok(()) => Ok(()),
            Err(
                tokio::sync::mpsc::error::TrySendError::Full(c)
                | tokio::sync::mpsc::error::TrySendError::Closed(c),
            ) => fe.message(not_taken(&c.describe())),
        }
    }

    /// Stops the source and takes what it still had: decoded (headless) or into the capture
    /// only (TUI), so a quit or a signal under load loses no recorded byte and no drop count.
    async fn finish<F: FrontEnd>(&mut self, fe: &mut F) -> Result<()> {
        let _ = self.handle.commands.try_send(Command::Shutdown);
        let until = Instant::now() + EXIT_DRAIN_MAX;
        let decode = fe.decodes_at_exit();
        while self.source_open {
            let wait = EXIT_DRAIN_IDLE.min(until.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(wait, self.handle.events.recv()).await {
                Ok(Some(ev)) if decode => {
                    self.session.ingest(&ev);
                    fe.on_event(self, &ev)?;
                }
                Ok(Some(ev)) => self.session.record_only(&ev),
                Ok(None) => self.source_open = false,
                Err(_) => break,
            }
            if Instant::now() >= until {
                break;
            }
        }
        if decode {
            self.session.flush_decoders();
        }
        self.session.finish_capture();
        fe.settle(self).wrap_err("writing the last records")?;
        Ok(())
    }
}

fn not_taken(what: &str) -> String {
    format!("{what}: not done, the source is not taking commands (busy or gone)")
}

/// Sleeps until `at`; never wakes for None.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Fires when the session has work due (capture records for the file, frames held for
/// arbitration on a quiet line); never when it has none. Answer it with `Session::poll`.
async fn session_timer(session: &Session, clock: &Clock) {
    match session.next_due() {
        Some(due) => tokio::time::sleep_until(Instant::from_std(clock.instant_at(due))).await,
        None => std::future::pending().await,
    }
}

/// SIGINT, SIGTERM and SIGHUP as one stream: each ends a session cleanly.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).wrap_err("cannot watch SIGINT")?,
            term: signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?,
            hup: signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?,
        })
    }

    pub async fn recv(&mut self) {
        futures::future::select_all([
            Box::pin(self.int.recv()),
            Box::pin(self.term.recv()),
            Box::pin(self.hup.recv()),
        ])
        .await;
    }
}
