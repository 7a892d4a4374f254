//! The TUI loop: one `tokio::select!` over source events, terminal input, signals and a
//! frame timer. It redraws only when something changed, at most ~60 times a second, and
//! sleeps otherwise (an idle monitor uses no CPU).

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::diagnose::baud::live_scan::BaudScan;
use crate::event::Command;
use crate::session::Session;
use crate::source::SourceHandle;
use crate::ui::state::UiState;

/// Shortest time between two frames (~60 fps).
pub const FRAME_INTERVAL: Duration = Duration::from_micros(1_000_000 / 60);

/// Most events taken from the channel before the screen gets a chance to redraw.
const DRAIN_BATCH: usize = 4096;

/// Most time spent taking events before the loop looks at keys, signals and the screen
/// again. Without it a source far ahead of the decoders (a pty fed at 200 MB/s) kept the
/// loop in one batch for tens of seconds: no redraw, and SIGTERM went unanswered. Past this,
/// the source holds back (and past its bound drops and counts) instead.
const DRAIN_BUDGET: Duration = FRAME_INTERVAL;

/// At exit, how long the source's last events (what it had read but the screen had not yet
/// taken) are waited for, to go into the capture: each wait, and all of them together.
const EXIT_DRAIN_IDLE: Duration = Duration::from_millis(100);
const EXIT_DRAIN_MAX: Duration = Duration::from_secs(3);

/// Names a file that receives, at exit, when each frame was drawn (`examples/perf_suite.rs`
/// reads it for frames per second and time to first frame). Unset: nothing is recorded.
pub const DRAW_STATS_ENV: &str = "HSMON_DRAW_STATS";

/// Draw times for the performance harness: the wall-clock time of the first draw (so it can
/// be compared with the launch time another process noted) and the offsets of the others.
struct DrawStats {
    path: std::path::PathBuf,
    first: Option<(std::time::SystemTime, Instant)>,
    /// Nanoseconds after the first draw; capped so a forgotten variable cannot grow memory.
    offsets_ns: Vec<u64>,
}

impl DrawStats {
    const CAP: usize = 1 << 20;

    fn from_env() -> Option<DrawStats> {
        let path = std::env::var_os(DRAW_STATS_ENV)?;
        Some(DrawStats {
            path: path.into(),
            first: None,
            offsets_ns: Vec::new(),
        })
    }

    fn drew(&mut self) {
        let now = Instant::now();
        let (_, first) = *self
            .first
            .get_or_insert_with(|| (std::time::SystemTime::now(), now));
        if self.offsets_ns.len() < Self::CAP {
            self.offsets_ns
                .push(now.duration_since(first).as_nanos() as u64);
        }
    }

    /// One JSON object: `first_draw_unix_ns` and `draws_ns` (offsets from the first draw).
    fn write(&self) {
        let first = self.first.map(|(wall, _)| {
            wall.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let v = serde_json::json!({ "first_draw_unix_ns": first, "draws_ns": self.offsets_ns });
        if let Err(e) = std::fs::write(&self.path, v.to_string()) {
            tracing::warn!(path = %self.path.display(), %e, "cannot write draw stats");
        }
    }
}

/// Restores the terminal however the loop ends (error, early return); the panic hook
/// installed by `ratatui::try_init` covers panics.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the TUI until the user quits, a signal arrives, or `deadline` passes.
pub async fn run(
    handle: SourceHandle,
    session: Session,
    ui: UiState,
    clock: Clock,
    deadline: Option<Duration>,
    autobaud: bool,
) -> color_eyre::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    let mut ui = ui;
    ui.scan_request = autobaud.then_some(true);
    let result = event_loop(&mut terminal, handle, session, ui, clock, deadline).await;
    drop(_guard);
    result
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    mut handle: SourceHandle,
    mut session: Session,
    mut ui: UiState,
    clock: Clock,
    deadline: Option<Duration>,
) -> color_eyre::Result<()> {
    let mut input = EventStream::new();
    let mut signals = crate::run::Signals::new()?;
    let stop_at = deadline.map(|d| Instant::now() + d);
    let size = terminal.size()?;
    ui.size = (size.width, size.height);
    let mut dirty = true;
    let mut next_frame = Instant::now();
    let mut source_open = true;
    let mut scan: Option<BaudScan> = None;
    // Bytes read back from the capture, shown instead of the live session (Home, a search).
    let mut history: Option<Session> = None;
    let mut scan_tick = tokio::time::interval(crate::headless::SCAN_TICK);
    let mut draw_stats = DrawStats::from_env();

    loop {
        if dirty && Instant::now() >= next_frame {
            ui.now = clock.now();
            let shown = history.as_ref().unwrap_or(&session);
            terminal.draw(|f| crate::ui::render(f, shown, &ui))?;
            if let Some(d) = draw_stats.as_mut() {
                d.drew();
            }
            dirty = false;
            next_frame = Instant::now() + FRAME_INTERVAL;
        }
        // While rates are non-zero the status bar must tick down to zero, once a second.
        let settling =
            session.rx_rate.settling(clock.now()) || session.tx_rate.settling(clock.now());
        tokio::select! {
            ev = handle.events.recv(), if source_open => match ev {
                Some(ev) => {
                    let mut commands = Vec::new();
                    let budget = Instant::now() + DRAIN_BUDGET;
                    take_event(&mut session, &mut scan, &mut ui, &ev, &mut commands);
                    for _ in 0..DRAIN_BATCH {
                        if Instant::now() >= budget {
                            break;
                        }
                        match handle.events.try_recv() {
                            Ok(ev) => take_event(&mut session, &mut scan, &mut ui, &ev, &mut commands),
                            Err(_) => break,
                        }
                    }
                    commands.extend(ui.after_events(&session));
                    send_all(&handle, &mut ui, commands);
                    dirty = true;
                }
                None => {
                    source_open = false;
                    ui.message = Some("the source stopped".to_string());
                    dirty = true;
                }
            },
            term = input.next() => match term {
                Some(Ok(TermEvent::Key(key))) => {
                    let commands = ui.on_key(history.as_ref().unwrap_or(&session), key);
                    send_all(&handle, &mut ui, commands);
                    if let Some(req) = ui.history_request.take() {
                        history = serve_history(&mut session, &mut ui, req, history);
                    }
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    ui.size = (w, h);
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            _ = scan_tick.tick(), if scan.is_some() => {
                if let Some(s) = scan.as_mut() {
                    let (commands, _) = s.poll(clock.now().as_secs_f64());
                    send_all(&handle, &mut ui, commands);
                    dirty = true;
                }
            }
            _ = crate::headless::session_timer(&session, &clock) => dirty |= session.poll(clock.now()),
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
            _ = tokio::time::sleep(Duration::from_secs(1)), if settling && !dirty => dirty = true,
            _ = signals.recv() => break,
            _ = async { match stop_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => break,
        }
        // Scan requests from the keys (or --autobaud), and a scan's progress or end.
        match ui.scan_request.take() {
            Some(true) if scan.is_none() => match session.settings {
                Some(settings) => {
                    let (s, commands, _) =
                        BaudScan::start(settings, session.baud_watch().estimate());
                    send_all(&handle, &mut ui, commands);
                    ui.proposal = None;
                    scan = Some(s);
                }
                // Not yet known: ask again once the port reports its settings.
                None => ui.scan_request = Some(true),
            },
            Some(false) => {
                if let Some(s) = scan.take() {
                    let commands = s.restore();
                    send_all(&handle, &mut ui, commands);
                    ui.scan_status = Some("scan stopped; the port is back to its setting".into());
                }
            }
            _ => {}
        }
        if let Some(s) = scan.as_ref() {
            ui.scan_status = Some(s.status_line());
            if let Some(result) = s.result() {
                ui.proposal = result.map(|r| r.candidate);
                if result.is_none() {
                    ui.message = Some(s.status_line());
                }
                let commands = s.restore();
                send_all(&handle, &mut ui, commands);
                scan = None;
            }
        }
        ui.scanning = scan.is_some();
        if ui.quit {
            break;
        }
    }
    let _ = handle.commands.try_send(Command::Shutdown);
    // What the source read before the end (queued, or still in its sink) goes into the
    // capture, so a quit or a signal under load loses no recorded byte and no drop count.
    let until = Instant::now() + EXIT_DRAIN_MAX;
    if source_open {
        while let Ok(Some(ev)) = tokio::time::timeout(
            EXIT_DRAIN_IDLE.min(until.saturating_duration_since(Instant::now())),
            handle.events.recv(),
        )
        .await
        {
            session.record_only(&ev);
            if Instant::now() >= until {
                break;
            }
        }
    }
    session.finish_capture();
    if let Some(d) = draw_stats {
        d.write();
    }
    Ok(())
}

/// Carries out a request for the capture behind the live session: the history view to show
/// next (None: the live session).
fn serve_history(
    session: &mut Session,
    ui: &mut UiState,
    req: crate::ui::state::HistoryRequest,
    current: Option<Session>,
) -> Option<Session> {
    use crate::history::{self, Start};
    use crate::ui::state::HistoryRequest;
    if req == HistoryRequest::Leave {
        ui.in_history = false;
        return None;
    }
    session.flush_capture();
    let Some(path) = session
        .recorder()
        .map(|r| std::path::PathBuf::from(r.name()))
    else {
        ui.message = Some("this session is not recorded: no older bytes to read".to_string());
        return current;
    };
    let window = session.window_cap();
    let fail = |ui: &mut UiState, e: &dyn std::fmt::Display| {
        ui.message = Some(format!("cannot read the capture {}: {e}", path.display()));
    };
    match req {
        HistoryRequest::Beginning => match history::load(&path, &Start::Beginning, window) {
            Ok(h) => {
                ui.in_history = true;
                if let Some(first) = h.runs().front() {
                    ui.scroll = crate::ui::state::Scroll::Anchor {
                        seq: first.seq,
                        row: 0,
                    };
                }
                ui.message = Some(
                    "the start of the session, read back from the capture · End returns to live"
                        .to_string(),
                );
                Some(h)
            }
            Err(e) => {
                fail(ui, &e);
                current
            }
        },
        HistoryRequest::Above(dir, offset) => {
            match history::load(&path, &Start::Before(dir, offset), window) {
                Ok(h) => {
                    if !ui.page_above(&h, dir, offset) {
                        return current;
                    }
                    ui.in_history = true;
                    ui.message = Some(
                        "older bytes, read back from the capture · End returns to live".to_string(),
                    );
                    Some(h)
                }
                Err(e) => {
                    fail(ui, &e);
                    current
                }
            }
        }
        HistoryRequest::Find(pattern, last) => match history::find(&path, &pattern, last) {
            Ok(Some((dir, range))) => {
                // Still in memory after all (it arrived while searching)?
                if session.run_holding(dir, range.start).is_some() {
                    ui.in_history = false;
                    ui.found(session, &pattern, dir, range);
                    return None;
                }
                match history::load(&path, &Start::Around(dir, range.start), window) {
                    Ok(h) => {
                        ui.in_history = true;
                        ui.found(&h, &pattern, dir, range);
                        if let Some(m) = ui.message.as_mut() {
                            m.push_str(" (read back from the capture · End returns to live)");
                        }
                        Some(h)
                    }
                    Err(e) => {
                        fail(ui, &e);
                        current
                    }
                }
            }
            Ok(None) => {
                ui.message = Some(format!(
                    "{} is not in the session's capture",
                    crate::hex::spaced(&pattern)
                ));
                current
            }
            Err(e) => {
                fail(ui, &e);
                current
            }
        },
        HistoryRequest::Leave => None,
    }
}

/// One source Event into the session, a running baud scan and a loaded APDU script.
fn take_event(
    session: &mut Session,
    scan: &mut Option<BaudScan>,
    ui: &mut UiState,
    ev: &crate::event::TimedEvent,
    commands: &mut Vec<Command>,
) {
    session.ingest(ev);
    if let Some(s) = scan.as_mut() {
        commands.extend(s.on_event(ev).0);
    }
    commands.extend(ui.on_card_event(ev));
}

/// Queues commands for the source; a full queue is said, never ignored.
fn send_all(handle: &SourceHandle, ui: &mut UiState, commands: Vec<Command>) {
    for c in commands {
        if handle.commands.try_send(c.clone()).is_err() {
            ui.message = Some(format!(
                "{}: not done, the port is not taking commands (busy or gone)",
                c.describe()
            ));
        }
    }
}
