//! The TUI front end of the monitor: it renders the session (and the handshake pane when a
//! handshake runs) and maps keys to effects; the monitor loop does everything else. It redraws
//! only when something changed, at most ~60 times a second, and sleeps otherwise (an idle
//! monitor uses no CPU).

use std::time::Duration;

use color_eyre::eyre::Result;
use crossterm::event::{Event as TermEvent, EventStream};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use tokio::time::Instant;

use crate::event::{TimedEvent, Timestamp};
use crate::handshake::driver::HandshakeDriver;
use crate::monitor::script::ScriptDriver;
use crate::monitor::{Effect, EndReason, FrontEnd, HistoryReply, Monitor, Report};
use crate::session::Session;
use crate::ui::View;
use crate::ui::state::UiState;

/// Shortest time between two frames (~60 fps).
pub const FRAME_INTERVAL: Duration = Duration::from_micros(1_000_000 / 60);

/// While byte rates are non-zero the status bar ticks them down to zero, once a second.
const RATE_TICK: Duration = Duration::from_secs(1);

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

/// The TUI over any ratatui backend (the real terminal, or `TestBackend` in tests).
pub struct Tui<B: Backend> {
    terminal: Terminal<B>,
    pub ui: UiState,
    dirty: bool,
    next_frame: Instant,
    last_draw: Instant,
    draw_stats: Option<DrawStats>,
}

impl<B: Backend> Tui<B>
where
    B::Error: Send + Sync + 'static,
{
    pub fn new(terminal: Terminal<B>, ui: UiState) -> Result<Tui<B>> {
        let mut tui = Tui {
            terminal,
            ui,
            dirty: true,
            next_frame: Instant::now(),
            last_draw: Instant::now(),
            draw_stats: DrawStats::from_env(),
        };
        let size = tui.terminal.size()?;
        tui.ui.size = (size.width, size.height);
        Ok(tui)
    }

    pub fn terminal(&self) -> &Terminal<B> {
        &self.terminal
    }

    /// The area the ordinary panes get: the screen, less the handshake pane when one runs
    /// (keys page by what the panes show).
    fn panes_area(&self, m: &Monitor, screen: Rect) -> Rect {
        match m.driver::<HandshakeDriver>() {
            Some(h) => crate::ui::handshake::split(screen, h.runner()).1,
            None => screen,
        }
    }

    fn resize(&mut self, m: &Monitor, w: u16, h: u16) {
        let rest = self.panes_area(m, Rect::new(0, 0, w, h));
        self.ui.size = (rest.width, rest.height);
    }
}

/// The view the panes and keys see: what is shown, and the script driver's runner.
fn view(m: &Monitor) -> View<'_> {
    View {
        session: m.shown(),
        script: m.driver::<ScriptDriver>().map(|d| d.runner()),
    }
}

impl<B: Backend> FrontEnd for Tui<B>
where
    B::Error: Send + Sync + 'static,
{
    type Input = std::io::Result<TermEvent>;

    fn on_event(&mut self, _m: &mut Monitor, _ev: &TimedEvent) -> Result<()> {
        self.dirty = true;
        Ok(())
    }

    fn on_report(&mut self, _m: &Monitor, _at: Timestamp, report: &Report) -> Result<()> {
        self.ui.on_report(report);
        self.dirty = true;
        Ok(())
    }

    fn on_input(&mut self, m: &Monitor, input: Self::Input) -> Result<Vec<Effect>> {
        let effects = match input? {
            TermEvent::Key(key) => {
                self.dirty = true;
                self.ui.on_key(view(m), key)
            }
            TermEvent::Resize(w, h) => {
                self.resize(m, w, h);
                self.dirty = true;
                Vec::new()
            }
            _ => Vec::new(),
        };
        Ok(effects)
    }

    fn on_input_end(&mut self) -> bool {
        true
    }

    fn settle(&mut self, m: &mut Monitor) -> Result<Vec<Effect>> {
        self.dirty = true;
        Ok(self.ui.after_events(&m.session))
    }

    fn on_history(&mut self, m: &Monitor, reply: &HistoryReply, loaded: Option<&Session>) -> bool {
        self.dirty = true;
        self.ui.on_history(reply, loaded, &m.session)
    }

    fn message(&mut self, text: String) -> Result<()> {
        self.ui.message = Some(text);
        self.dirty = true;
        Ok(())
    }

    fn next_draw(&self, m: &Monitor) -> Option<Instant> {
        if self.dirty {
            return Some(self.next_frame);
        }
        let now = m.now();
        let settling = m.session.rx_rate.settling(now) || m.session.tx_rate.settling(now);
        settling.then_some(self.last_draw + RATE_TICK)
    }

    fn draw(&mut self, m: &Monitor) -> Result<()> {
        self.ui.now = m.now();
        let size = self.terminal.size()?;
        self.resize(m, size.width, size.height);
        let ui = &self.ui;
        let v = view(m);
        match m.driver::<HandshakeDriver>() {
            Some(h) => self
                .terminal
                .draw(|f| crate::ui::handshake::render_screen(f, v.session, ui, h.runner()))?,
            None => self.terminal.draw(|f| crate::ui::render(f, v, ui))?,
        };
        if let Some(d) = self.draw_stats.as_mut() {
            d.drew();
        }
        self.dirty = false;
        self.last_draw = Instant::now();
        self.next_frame = self.last_draw + FRAME_INTERVAL;
        Ok(())
    }

    fn ends_with_source(&self) -> bool {
        false
    }

    fn decodes_at_exit(&self) -> bool {
        false
    }
}

/// Runs the monitor in the terminal until the user quits, a signal arrives, or `--duration`
/// passes.
pub async fn run(monitor: &mut Monitor, ui: UiState) -> Result<EndReason> {
    let terminal = ratatui::try_init()?;
    let guard = TerminalGuard;
    let quit_watch = sigquit_as_sigterm()?;
    let mut tui = Tui::new(terminal, ui)?;
    let mut input = EventStream::new();
    let end = monitor.run(&mut tui, &mut input).await;
    quit_watch.abort();
    drop(guard);
    if let Some(d) = tui.draw_stats.take() {
        d.write();
    }
    end
}

/// SIGQUIT (from outside: raw mode turns Ctrl-\ into a key) would end the process at once,
/// leaving the terminal raw on the alternate screen with the cursor hidden. While the TUI runs
/// it is taken as SIGTERM, which the monitor answers by ending the session cleanly: terminal
/// restored, capture complete.
fn sigquit_as_sigterm() -> Result<tokio::task::JoinHandle<()>> {
    use color_eyre::eyre::WrapErr;
    use tokio::signal::unix::{SignalKind, signal};
    let mut quit = signal(SignalKind::quit()).wrap_err("cannot watch SIGQUIT")?;
    Ok(tokio::spawn(async move {
        while quit.recv().await.is_some() {
            if nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).is_err() {
                // No SIGTERM to be had: restore the terminal and leave as SIGQUIT would.
                ratatui::restore();
                std::process::exit(128 + 3);
            }
        }
    }))
}
