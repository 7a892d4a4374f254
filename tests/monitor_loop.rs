//! The real monitor loop (`hsmon::monitor::Monitor`) under the real TUI front end
//! (`hsmon::tui::Tui`) on ratatui's `TestBackend`, fed by a simulated source — the way gitui
//! tests its main loop: keys in, screens out, nothing mocked between them. The source is the
//! simulated board of `hsmon demo`: at the wrong rate (`wrong-baud`: 9600 8N1 behind a
//! bit-level model of the wire, read at 115200) `A` scans and `a` applies the proposal (a baud
//! change the device confirms); at the right one (`tour`), once lines typed and echoed have
//! pushed the start of the session out of memory, PgUp pages on into the capture and Home
//! reads the session's first bytes back from it; End returns to live.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures::channel::mpsc::{UnboundedSender, unbounded};
use hsmon::capture::meta::CaptureMeta;
use hsmon::capture::writer::CaptureWriter;
use hsmon::clock::Clock;
use hsmon::event::{TimedEvent, Timestamp};
use hsmon::monitor::{Effect, EndReason, FrontEnd, HistoryReply, Monitor, Report};
use hsmon::session::Session;
use hsmon::tui::Tui;
use hsmon::ui::keys::Keymap;
use hsmon::ui::sendline::LineEnding;
use hsmon::ui::state::UiState;
use hsmon::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The TUI, unchanged, with each drawn screen copied out as text for the test to read while
/// the loop runs.
struct Observed {
    tui: Tui<TestBackend>,
    screen: Rc<RefCell<String>>,
    draws: Rc<RefCell<usize>>,
}

impl FrontEnd for Observed {
    type Input = std::io::Result<TermEvent>;
    fn on_event(&mut self, m: &mut Monitor, ev: &TimedEvent) -> color_eyre::Result<()> {
        self.tui.on_event(m, ev)
    }
    fn on_report(&mut self, m: &Monitor, at: Timestamp, r: &Report) -> color_eyre::Result<()> {
        self.tui.on_report(m, at, r)
    }
    fn on_input(&mut self, m: &Monitor, i: Self::Input) -> color_eyre::Result<Vec<Effect>> {
        self.tui.on_input(m, i)
    }
    fn on_input_end(&mut self) -> bool {
        self.tui.on_input_end()
    }
    fn settle(&mut self, m: &mut Monitor) -> color_eyre::Result<Vec<Effect>> {
        self.tui.settle(m)
    }
    fn on_history(&mut self, m: &Monitor, r: &HistoryReply, l: Option<&Session>) -> bool {
        self.tui.on_history(m, r, l)
    }
    fn message(&mut self, text: String) -> color_eyre::Result<()> {
        self.tui.message(text)
    }
    fn next_draw(&self, m: &Monitor) -> Option<tokio::time::Instant> {
        self.tui.next_draw(m)
    }
    fn draw(&mut self, m: &Monitor) -> color_eyre::Result<()> {
        self.tui.draw(m)?;
        let buf = self.tui.terminal().backend().buffer();
        let mut text = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                text.push_str(buf[(x, y)].symbol());
            }
            text.push('\n');
        }
        *self.screen.borrow_mut() = text;
        *self.draws.borrow_mut() += 1;
        Ok(())
    }
    fn ends_with_source(&self) -> bool {
        self.tui.ends_with_source()
    }
    fn decodes_at_exit(&self) -> bool {
        self.tui.decodes_at_exit()
    }
}

fn key(code: KeyCode) -> std::io::Result<TermEvent> {
    let mods = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    Ok(TermEvent::Key(KeyEvent::new(code, mods)))
}

/// Waits until the screen shows `want` (checked after every draw), or fails with the screen.
async fn wait_for(screen: &Rc<RefCell<String>>, want: &str, within: Duration) -> String {
    let until = tokio::time::Instant::now() + within;
    loop {
        let now = screen.borrow().clone();
        if now.contains(want) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the screen never showed {want:?} within {within:?}:\n{now}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn press(keys: &UnboundedSender<std::io::Result<TermEvent>>, code: KeyCode) {
    keys.unbounded_send(key(code)).unwrap();
    // Let the loop take it before the next look at the screen.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A monitor on the demo board `scenario` with a capture in `dir`, memory `window` bytes, in a
/// 120×40 test terminal; the screen and the draw count are shared with the test.
fn start(
    scenario: &str,
    dir: &std::path::Path,
    window: usize,
) -> (Monitor, Observed, Rc<RefCell<String>>, Rc<RefCell<usize>>) {
    let clock = Clock::start();
    let handle = hsmon::sim::devices::spawn(scenario, clock).unwrap();
    let path = dir.join("loop.hscap");
    let mut session = Session::new(handle.name.clone(), window);
    let file = CaptureWriter::open(&path).unwrap();
    let meta = CaptureMeta::new(&handle.name, None, std::time::SystemTime::now());
    session.set_recorder(CaptureWriter::new(file, path.display().to_string(), &meta));
    let monitor = Monitor::new(handle, session, clock);
    let ui = UiState::new(
        Keymap::default(),
        Theme::select(None, true),
        LineEnding::default(),
        (120, 40),
    );
    let tui = Tui::new(Terminal::new(TestBackend::new(120, 40)).unwrap(), ui).unwrap();
    let screen = Rc::new(RefCell::new(String::new()));
    let draws = Rc::new(RefCell::new(0));
    let fe = Observed {
        tui,
        screen: screen.clone(),
        draws: draws.clone(),
    };
    (monitor, fe, screen, draws)
}

#[tokio::test(flavor = "current_thread")]
async fn a_scan_then_its_proposal_changes_the_baud() {
    let dir = tempfile::tempdir().unwrap();
    let (mut monitor, mut fe, screen, draws) = start(
        "wrong-baud",
        dir.path(),
        hsmon::session::DEFAULT_WINDOW_BYTES,
    );
    let (keys, mut input) = unbounded();
    let user = async move {
        // The port opened at its default rate: garbage.
        wait_for(&screen, "115200 8N1", Duration::from_secs(10)).await;
        // Before the port reported its settings, `+` would have been refused; now `A` scans,
        // locks at 9600 and proposes it ("a apply").
        press(&keys, KeyCode::Char('A')).await;
        wait_for(&screen, "scanning", Duration::from_secs(10)).await;
        let proposed = wait_for(&screen, "apply", Duration::from_secs(60)).await;
        assert!(proposed.contains("9600"), "{proposed}");
        // The scan put the port back before proposing.
        wait_for(&screen, "115200 8N1", Duration::from_secs(5)).await;
        // `a`: the baud change; the status bar shows it once the device confirms it.
        press(&keys, KeyCode::Char('a')).await;
        wait_for(&screen, "9600 8N1", Duration::from_secs(5)).await;
        // Readable text at the right rate.
        wait_for(&screen, "heartbeat", Duration::from_secs(15)).await;
        press(&keys, KeyCode::Char('q')).await;
    };
    let (end, ()) = tokio::join!(monitor.run(&mut fe, &mut input), user);
    assert_eq!(end.unwrap(), EndReason::Quit);
    assert_eq!(
        monitor.session.settings.map(|s| s.to_string()),
        Some("9600 8N1 flow none".to_string()),
        "the device confirmed the applied rate"
    );
    assert!(
        monitor
            .driver::<hsmon::monitor::scan::ScanDriver>()
            .is_none(),
        "the scan retired"
    );
    assert!(*draws.borrow() > 10);
}

#[tokio::test(flavor = "current_thread")]
async fn paging_and_home_read_older_bytes_back_from_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    // A small memory window (a quarter of the smallest the config file allows), so typed
    // lines and their echoes soon push the start of the session out.
    let (mut monitor, mut fe, screen, _) = start("tour", dir.path(), 256 << 10);
    let (keys, mut input) = unbounded();
    let user = async move {
        wait_for(&screen, "115200 8N1", Duration::from_secs(10)).await;
        // `i`, then lines the board echoes ("you typed: …").
        keys.unbounded_send(key(KeyCode::Char('i'))).unwrap();
        for n in 0..60 {
            for c in format!("line {n:02} {}", "x".repeat(3000)).chars() {
                keys.unbounded_send(key(KeyCode::Char(c))).unwrap();
            }
            press(&keys, KeyCode::Enter).await;
        }
        press(&keys, KeyCode::Esc).await;
        wait_for(&screen, "scrolled out of memory", Duration::from_secs(15)).await;
        // PgUp past the oldest row in memory pages on into the capture.
        for _ in 0..1000 {
            keys.unbounded_send(key(KeyCode::PageUp)).unwrap();
        }
        let older = wait_for(
            &screen,
            "history (from the capture)",
            Duration::from_secs(10),
        )
        .await;
        assert!(older.contains("PAUSED"), "{older}");
        press(&keys, KeyCode::End).await;
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while screen.borrow().contains("history (from the capture)") {
            assert!(
                tokio::time::Instant::now() < until,
                "End did not leave the history view"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Home: the session's first bytes, read back from the capture.
        press(&keys, KeyCode::Home).await;
        let first = wait_for(&screen, "the start of the session", Duration::from_secs(5)).await;
        assert!(first.contains("00000000"), "offset 0 is shown: {first}");
        press(&keys, KeyCode::Char('q')).await;
    };
    let (end, ()) = tokio::join!(monitor.run(&mut fe, &mut input), user);
    assert_eq!(end.unwrap(), EndReason::Quit);
    assert!(monitor.session.counters.evicted_bytes > 0);
    assert!(monitor.session.counters.tx_bytes > 60 * 3000);
    assert!(monitor.in_history(), "quit while showing the capture");
}
