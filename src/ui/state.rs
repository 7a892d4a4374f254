//! UI state and the pure `update`: keys become Actions, Actions change UI state or return
//! Commands for the source. Nothing here performs I/O, so it is tested without tokio.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::event::{Baud, Command, ReplayControl, Timestamp};
pub use crate::monitor::HistoryRequest;
use crate::monitor::{Effect, HistoryReply, Report, ScriptAction};
use crate::session::Session;
use crate::ui::View;
use crate::ui::action::Action;
use crate::ui::hex::{self, Geometry, RowRef};
use crate::ui::keys::Keymap;
use crate::ui::layout::Areas;
use crate::ui::sendline::{self, LineEnding, SendMode};
use crate::ui::theme::Theme;

/// How long a break holds the line low.
pub const BREAK_DURATION: Duration = Duration::from_millis(250);

/// Most lines kept in the send history.
const HISTORY_CAP: usize = 100;

/// Where the hex pane is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// Tail: always show the newest bytes.
    Follow,
    /// Paused: the top row is row `row` of the run with sequence number `seq`.
    Anchor { seq: u64, row: usize },
}

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Hex,
    Frames,
    Events,
}

/// What the detail overlay shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Frame(u64),
    Event(u64),
    /// A card exchange, by its seq in the card log.
    Exchange(u64),
}

/// Overlays drawn over the panes (any key closes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Detail(Detail),
    TalkingTo,
}

/// Which line editor, if any, has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    Normal,
    Send,
    Baud,
    /// The search line (`/`).
    Search,
}

/// The last search: the bytes, and where they were last found (direction, stream offset).
pub type Search = (Vec<u8>, Option<(crate::event::Direction, u64)>);

/// What a replay plays on to, one event at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayGoal {
    /// A frame newer than this seq (None: any frame).
    Frame(Option<u64>),
    /// More card exchanges than this.
    Exchange(usize),
    /// A diagnosis newer than this seq.
    Event(Option<u64>),
}

#[derive(Debug, Clone)]
pub struct UiState {
    pub keymap: Keymap,
    pub theme: Theme,
    pub line_ending: LineEnding,
    pub scroll: Scroll,
    pub overlay: Option<Overlay>,
    pub focus: Focus,
    /// Selected frame (by seq); None follows the newest.
    pub frame_sel: Option<u64>,
    /// Selected diagnosis (by seq).
    pub event_sel: Option<u64>,
    pub protocol_filter: Option<crate::decode::Protocol>,
    pub severity_filter: Option<crate::diagnose::knowledge::Severity>,
    /// Bytes to mark in the hex pane: the selected frame's or event's.
    pub marked: Option<(crate::event::Direction, std::ops::Range<u64>)>,
    pub mode: InputMode,
    pub send_mode: SendMode,
    pub input: String,
    /// Why the last Enter was refused (odd hex, bad escape, bad baud).
    pub input_error: Option<String>,
    history: Vec<String>,
    history_pos: Option<usize>,
    /// Terminal size, as of the last resize.
    pub size: (u16, u16),
    /// Session time of the current frame (for rates).
    pub now: Timestamp,
    /// A message from the UI itself (a command that could not be queued).
    pub message: Option<String>,
    /// A scan is running (as the scan reported).
    pub scanning: bool,
    /// The scan's progress or result, for the status bar.
    pub scan_status: Option<String>,
    /// The setting a finished scan proposes; the apply key takes it.
    pub proposal: Option<crate::diagnose::baud::scoring::Candidate>,
    /// Selected card exchange (by seq); None follows the newest.
    pub apdu_sel: Option<u64>,
    /// A replay step in progress (`,` or `N`).
    pub replay_goal: Option<ReplayGoal>,
    /// The last search: the bytes, and where they were last found.
    pub search: Option<Search>,
    /// The replay source is searching the capture for `search`.
    pub search_pending: bool,
    /// The screen shows bytes read back from the capture, not the live session.
    pub in_history: bool,
}

impl UiState {
    pub fn new(keymap: Keymap, theme: Theme, line_ending: LineEnding, size: (u16, u16)) -> Self {
        UiState {
            keymap,
            theme,
            line_ending,
            scroll: Scroll::Follow,
            overlay: None,
            focus: Focus::Hex,
            frame_sel: None,
            event_sel: None,
            protocol_filter: None,
            severity_filter: None,
            marked: None,
            mode: InputMode::Normal,
            send_mode: SendMode::Text,
            input: String::new(),
            input_error: None,
            history: Vec::new(),
            history_pos: None,
            size,
            now: Timestamp::ZERO,
            message: None,
            scanning: false,
            scan_status: None,
            proposal: None,
            apdu_sel: None,
            replay_goal: None,
            search: None,
            search_pending: false,
            in_history: false,
        }
    }

    /// "End / f" — for hints.
    pub fn key_label(&self, a: Action) -> String {
        self.keymap
            .keys_for(a)
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn hex_geometry(&self) -> (Geometry, usize) {
        let areas = Areas::new(ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1));
        let inner_w = areas.hex.width.saturating_sub(2);
        let inner_h = areas.hex.height.saturating_sub(2) as usize;
        (Geometry::for_width(inner_w), inner_h.max(1))
    }

    /// A terminal key press. Releases and repeats-as-release are ignored (Windows sends both).
    pub fn on_key<'a>(&mut self, v: impl Into<View<'a>>, key: KeyEvent) -> Vec<Effect> {
        let v = v.into();
        let s = v.session;
        if key.kind != KeyEventKind::Press {
            return Vec::new();
        }
        match self.mode {
            InputMode::Normal => {
                if let Some(ov) = self.overlay {
                    // Any key closes an overlay; q still quits, and g in a detail view jumps.
                    let a = self.keymap.action_for(&key);
                    self.overlay = None;
                    match a {
                        Some(Action::Quit) => return vec![Effect::Quit],
                        Some(Action::JumpToBytes) if matches!(ov, Overlay::Detail(_)) => {
                            return self.update(s, Action::JumpToBytes);
                        }
                        _ => {}
                    }
                    return Vec::new();
                }
                // The scan's status line offers Esc to stop it (as well as its own key).
                if key.code == KeyCode::Esc && self.scanning {
                    return vec![Effect::StopScan];
                }
                match self.keymap.action_for(&key) {
                    Some(a) => self.update(v, a),
                    None => Vec::new(),
                }
            }
            InputMode::Send | InputMode::Baud | InputMode::Search => self.edit(s, key),
        }
    }

    /// Applies one Action. Returns what the monitor must carry out (commands for the source,
    /// a scan, a read-back of the capture, a script step); performs none of it.
    pub fn update<'a>(&mut self, v: impl Into<View<'a>>, action: Action) -> Vec<Effect> {
        let v = v.into();
        let s = v.session;
        self.message = None;
        // Keys that change line settings need the settings the port reported: a rate made up
        // from a default would be a guess sent to the device.
        let Some(settings) = s.settings.or_else(|| {
            if changes_settings(action) {
                self.message = Some(format!(
                    "{}: refused, the source has not reported its line settings{}",
                    action.describe(),
                    if s.card().is_active() || s.replay.is_some() {
                        " (this source has none)"
                    } else {
                        " yet: wait for the port to open, or it has none (TCP, a card reader)"
                    }
                ));
                None
            } else {
                Some(Default::default())
            }
        }) else {
            return vec![];
        };
        match action {
            Action::Quit => vec![Effect::Quit],
            Action::ToggleHelp => {
                self.overlay = Some(Overlay::Help);
                vec![]
            }
            Action::ScrollUp => self.move_by(s, -1),
            Action::ScrollDown => self.move_by(s, 1),
            Action::PageUp if self.focus == Focus::Hex => self.page_up_hex(s),
            Action::PageUp => {
                let (_, h) = self.hex_geometry();
                self.move_by(s, -(h as isize))
            }
            Action::PageDown => {
                let (_, h) = self.hex_geometry();
                self.move_by(s, h as isize)
            }
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::Hex => Focus::Frames,
                    Focus::Frames => Focus::Events,
                    Focus::Events => Focus::Hex,
                };
                if self.focus == Focus::Events && self.event_sel.is_none() {
                    self.event_sel = crate::ui::events::ordered(s, self).first().map(|d| d.seq);
                }
                self.update_marked(s);
                vec![]
            }
            Action::Activate => match self.focus {
                Focus::Hex if s.card().is_active() => {
                    let sel = self
                        .apdu_sel
                        .or_else(|| s.card().exchanges().back().map(|e| e.seq));
                    match sel {
                        Some(seq) => self.overlay = Some(Overlay::Detail(Detail::Exchange(seq))),
                        None => return self.update(s, Action::OpenSend),
                    }
                    vec![]
                }
                Focus::Hex => self.update(s, Action::OpenSend),
                Focus::Frames => {
                    let sel = self
                        .frame_sel
                        .or_else(|| crate::ui::frames::window(s, self, 1).first().map(|f| f.seq));
                    if let Some(seq) = sel {
                        self.frame_sel = Some(seq);
                        self.overlay = Some(Overlay::Detail(Detail::Frame(seq)));
                        self.update_marked(s);
                    }
                    vec![]
                }
                Focus::Events => {
                    if let Some(seq) = self.event_sel {
                        self.overlay = Some(Overlay::Detail(Detail::Event(seq)));
                    }
                    vec![]
                }
            },
            Action::JumpToBytes => {
                self.update_marked(s);
                if let Some((dir, range)) = self.marked.clone() {
                    self.scroll_to(s, dir, range.start);
                }
                vec![]
            }
            Action::FilterProtocol => {
                let seen = s
                    .engine()
                    .map(|e| e.classifier.ranking())
                    .unwrap_or_default();
                let mut protos: Vec<crate::decode::Protocol> =
                    seen.iter().map(|g| g.protocol).collect();
                protos.sort();
                self.protocol_filter = match self.protocol_filter {
                    None => protos.first().copied(),
                    Some(p) => protos.iter().copied().find(|q| *q > p),
                };
                self.frame_sel = None;
                vec![]
            }
            Action::FilterSeverity => {
                use crate::diagnose::knowledge::Severity;
                self.severity_filter = match self.severity_filter {
                    None => Some(Severity::Warning),
                    Some(Severity::Warning) => Some(Severity::Error),
                    _ => None,
                };
                vec![]
            }
            Action::TalkingTo => {
                self.overlay = Some(Overlay::TalkingTo);
                vec![]
            }
            Action::Top => {
                // Older bytes than memory holds are in the capture: read them back.
                if !self.in_history
                    && s.counters.evicted_bytes > 0
                    && s.recorder().is_some_and(|r| r.failed().is_none())
                {
                    return vec![Effect::History(HistoryRequest::Beginning)];
                }
                if let Some(first) = s.runs().front() {
                    self.scroll = Scroll::Anchor {
                        seq: first.seq,
                        row: 0,
                    };
                }
                vec![]
            }
            Action::Follow => {
                self.scroll = Scroll::Follow;
                if self.in_history {
                    vec![Effect::History(HistoryRequest::Leave)]
                } else {
                    vec![]
                }
            }
            Action::ApplyBaud => {
                let suggested = self
                    .proposal
                    .take()
                    .or_else(|| s.baud_watch().suggestion().map(|r| r.candidate));
                match suggested {
                    Some(c) => {
                        self.scan_status = None;
                        let mut cmds = Vec::new();
                        if c.format != settings.format {
                            cmds.push(Command::SetFormat(c.format).into());
                        }
                        if c.baud != settings.baud {
                            cmds.push(Command::SetBaud(c.baud).into());
                        }
                        cmds
                    }
                    None => {
                        self.message = Some(format!(
                            "no baud suggestion yet: the bytes look right, or press {} to scan",
                            self.key_label(Action::AutobaudScan)
                        ));
                        vec![]
                    }
                }
            }
            Action::AutobaudScan => {
                if self.scanning {
                    vec![Effect::StopScan]
                } else {
                    self.proposal = None;
                    vec![Effect::StartScan]
                }
            }
            Action::BaudUp => vec![Command::SetBaud(settings.baud.step_up()).into()],
            Action::BaudDown => vec![Command::SetBaud(settings.baud.step_down()).into()],
            Action::EnterBaud => {
                self.mode = InputMode::Baud;
                self.input.clear();
                self.input_error = None;
                vec![]
            }
            Action::CycleDataBits => {
                let mut f = settings.format;
                f.data_bits = f.data_bits.next();
                vec![Command::SetFormat(f).into()]
            }
            Action::CycleParity => {
                let mut f = settings.format;
                f.parity = f.parity.next();
                vec![Command::SetFormat(f).into()]
            }
            Action::ToggleStopBits => {
                let mut f = settings.format;
                f.stop_bits = f.stop_bits.toggled();
                vec![Command::SetFormat(f).into()]
            }
            Action::CycleFlow => vec![Command::SetFlow(settings.flow.next()).into()],
            // Unknown line state (a pty) toggles from "on", the Linux default after open.
            Action::ToggleDtr => vec![Command::SetDtr(!s.modem.dtr.unwrap_or(true)).into()],
            Action::ToggleRts => vec![Command::SetRts(!s.modem.rts.unwrap_or(true)).into()],
            Action::SendBreak => vec![Command::SendBreak(BREAK_DURATION).into()],
            Action::OpenSend => {
                self.mode = InputMode::Send;
                self.input.clear();
                self.input_error = None;
                self.history_pos = None;
                // A card takes APDUs: hex.
                if s.card().is_active() {
                    self.send_mode = crate::ui::sendline::SendMode::Hex;
                }
                vec![]
            }
            Action::ReplayPause => self.replay(s, ReplayControl::TogglePause),
            Action::ReplayFaster => self.replay(s, ReplayControl::Faster),
            Action::ReplaySlower => self.replay(s, ReplayControl::Slower),
            Action::ReplayStep => self.replay(s, ReplayControl::Step),
            Action::ReplayStepFrame => {
                self.replay_goal = Some(if s.card().is_active() {
                    ReplayGoal::Exchange(s.card().exchanges().len())
                } else {
                    ReplayGoal::Frame(s.frames().back().map(|f| f.seq))
                });
                self.replay(s, ReplayControl::Step)
            }
            Action::ReplayNextEvent => {
                self.replay_goal = Some(ReplayGoal::Event(s.diagnoses().back().map(|d| d.seq)));
                self.replay(s, ReplayControl::Step)
            }
            Action::Search => {
                self.mode = InputMode::Search;
                self.input.clear();
                self.input_error = None;
                vec![]
            }
            Action::StepNext => self.script_action(v, ScriptAction::Step),
            Action::RunToFailure => self.script_action(v, ScriptAction::RunToFailure),
            Action::ReplayScript => self.script_action(v, ScriptAction::Restart),
            Action::Resend if v.script.is_some() => vec![Effect::Script(ScriptAction::Resend)],
            Action::Resend => match last_command(s) {
                Some(apdu) => vec![
                    Command::SendApdu {
                        apdu,
                        origin: crate::event::ApduOrigin::User,
                    }
                    .into(),
                ],
                None => {
                    self.message = Some("nothing sent yet to resend".to_string());
                    vec![]
                }
            },
            Action::EditApdu => {
                let apdu = v
                    .script
                    .and_then(|r| r.current_apdu().map(|b| b.to_vec()))
                    .or_else(|| last_command(s));
                self.update(s, Action::OpenSend);
                self.send_mode = crate::ui::sendline::SendMode::Hex;
                if let Some(a) = apdu {
                    self.input = crate::hex::spaced(&a);
                }
                vec![]
            }
            Action::ResetCard => {
                if s.card().is_active() {
                    vec![Command::Reconnect(crate::event::CardDisposition::Reset).into()]
                } else {
                    self.message = Some("no card: reset applies to `hsmon card`".to_string());
                    vec![]
                }
            }
            Action::ToggleTransaction => match v.script {
                Some(_) => vec![Effect::Script(ScriptAction::ToggleTransaction)],
                None => {
                    self.message = Some("no script loaded: hsmon card --script FILE".to_string());
                    vec![]
                }
            },
        }
    }

    /// A replay command, or a message that this is not a replay.
    fn replay(&mut self, s: &Session, c: ReplayControl) -> Vec<Effect> {
        if s.replay.is_some() {
            vec![Command::Replay(c).into()]
        } else {
            self.replay_goal = None;
            self.message = Some("not a replay: hsmon replay FILE plays a capture back".to_string());
            vec![]
        }
    }

    /// After the session took new events: a replay step goes on until its goal is met; a
    /// search waiting on the replay looks again.
    pub fn after_events(&mut self, s: &Session) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.search_pending {
            if let Some((pattern, last)) = self.search.clone() {
                if let Some((dir, range)) = s.find(&pattern, last) {
                    self.search_pending = false;
                    self.found(s, &pattern, dir, range);
                } else if s.replay.is_some_and(|r| r.paused) {
                    // The replay stopped at a match spanning what `find` saw: look no further.
                    self.search_pending = false;
                }
            }
        }
        if let Some(goal) = self.replay_goal {
            let reached = match goal {
                ReplayGoal::Frame(last) => s.frames().back().map(|f| f.seq) != last,
                ReplayGoal::Exchange(n) => s.card().exchanges().len() > n,
                ReplayGoal::Event(last) => s.diagnoses().back().map(|d| d.seq) != last,
            };
            let ended = matches!(s.connection, crate::event::ConnectionState::Down { .. });
            if reached || ended {
                self.replay_goal = None;
                if ended && !reached {
                    self.message = Some("the end of the capture".to_string());
                }
            } else {
                out.push(Command::Replay(ReplayControl::Step).into());
            }
        }
        out
    }

    pub fn found(
        &mut self,
        s: &Session,
        pattern: &[u8],
        dir: crate::event::Direction,
        range: std::ops::Range<u64>,
    ) {
        self.search = Some((pattern.to_vec(), Some((dir, range.start))));
        self.marked = Some((dir, range.clone()));
        self.focus = Focus::Hex;
        self.scroll_to(s, dir, range.start);
        self.message = Some(format!(
            "found at {} offset {:#X}; / Enter finds the next",
            dir.label(),
            range.start
        ));
    }

    /// A script key for the monitor, or a message that no script is loaded.
    fn script_action(&mut self, v: View<'_>, a: ScriptAction) -> Vec<Effect> {
        if v.script.is_some() {
            vec![Effect::Script(a)]
        } else {
            self.message = Some(
                "no script loaded: start with hsmon card --script FILE (i sends one APDU)"
                    .to_string(),
            );
            vec![]
        }
    }

    /// What a driver reported: the scan's progress and result, a line for the user.
    pub fn on_report(&mut self, r: &Report) {
        use crate::diagnose::baud::live_scan::ScanUpdate;
        match r {
            Report::ScanStatus(line) => self.scan_status = Some(line.clone()),
            Report::Scan(ScanUpdate::Trying(_) | ScanUpdate::Scored(_)) => self.scanning = true,
            Report::Scan(ScanUpdate::Finished { locked, .. }) => {
                self.scanning = false;
                self.proposal = locked.as_ref().map(|r| r.candidate);
                if locked.is_none() {
                    self.message = self.scan_status.clone();
                }
            }
            Report::Scan(ScanUpdate::RateIgnored { .. }) => {
                self.scanning = false;
                self.proposal = None;
                self.message = self.scan_status.clone();
            }
            Report::ScanStopped => {
                self.scanning = false;
                self.scan_status = None;
                self.message = Some("scan stopped; the port is back to its setting".into());
            }
            Report::Message(m) => self.message = Some(m.clone()),
            Report::Script(_) | Report::HandshakeStep(_) => {}
        }
    }

    /// A read-back of the capture finished: where to look in `loaded` (or in `live`, when the
    /// bytes were in memory after all). True shows `loaded`.
    pub fn on_history(
        &mut self,
        reply: &HistoryReply,
        loaded: Option<&Session>,
        live: &Session,
    ) -> bool {
        let back = " (read back from the capture · End returns to live)";
        match (reply, loaded) {
            (HistoryReply::Live, _) => {
                self.in_history = false;
                true
            }
            (HistoryReply::Beginning, Some(h)) => {
                self.in_history = true;
                if let Some(first) = h.runs().front() {
                    self.scroll = Scroll::Anchor {
                        seq: first.seq,
                        row: 0,
                    };
                }
                self.message = Some(
                    "the start of the session, read back from the capture · End returns to live"
                        .to_string(),
                );
                true
            }
            (HistoryReply::Above(dir, offset), Some(h)) => {
                if !self.page_above(h, *dir, *offset) {
                    return false;
                }
                self.in_history = true;
                self.message =
                    Some("older bytes, read back from the capture · End returns to live".into());
                true
            }
            (
                HistoryReply::Found {
                    pattern,
                    dir,
                    range,
                },
                found_in,
            ) => {
                self.in_history = found_in.is_some();
                self.found(found_in.unwrap_or(live), pattern, *dir, range.clone());
                if found_in.is_some() {
                    if let Some(m) = self.message.as_mut() {
                        m.push_str(back);
                    }
                }
                true
            }
            (HistoryReply::NotFound(pattern), _) => {
                self.message = Some(format!(
                    "{} is not in the session's capture",
                    crate::hex::spaced(pattern)
                ));
                false
            }
            (HistoryReply::Unavailable(why), _) => {
                self.message = Some(why.clone());
                false
            }
            (HistoryReply::Beginning | HistoryReply::Above(..), None) => false,
        }
    }

    /// Up/down in the focused pane.
    fn move_by(&mut self, s: &Session, delta: isize) -> Vec<Effect> {
        match self.focus {
            Focus::Hex if s.card().is_active() => {
                let list = s.card().exchanges();
                let cur = self
                    .apdu_sel
                    .and_then(|seq| list.iter().position(|e| e.seq == seq))
                    .unwrap_or(list.len()) as isize;
                let i = (cur + delta).clamp(0, list.len() as isize);
                // Past the newest: follow again.
                self.apdu_sel = list.get(i as usize).map(|e| e.seq);
                vec![]
            }
            Focus::Hex => self.scroll_by(s, delta),
            Focus::Frames => {
                self.frame_sel = crate::ui::frames::step(s, self, delta);
                self.update_marked(s);
                vec![]
            }
            Focus::Events => {
                let list = crate::ui::events::ordered(s, self);
                let cur = self
                    .event_sel
                    .and_then(|seq| list.iter().position(|d| d.seq == seq))
                    .unwrap_or(0) as isize;
                let i = (cur + delta).clamp(0, list.len().saturating_sub(1) as isize) as usize;
                self.event_sel = list.get(i).map(|d| d.seq);
                self.update_marked(s);
                vec![]
            }
        }
    }

    /// The bytes of the selected frame (frames pane) or event (events pane) get marked.
    fn update_marked(&mut self, s: &Session) {
        self.marked = match self.focus {
            Focus::Frames => self.frame_sel.and_then(|seq| {
                s.frames()
                    .iter()
                    .find(|f| f.seq == seq)
                    .map(|f| (f.direction, f.frame.span.clone()))
            }),
            Focus::Events => self.event_sel.and_then(|seq| {
                s.diagnoses()
                    .iter()
                    .find(|d| d.seq == seq)
                    .and_then(|d| Some((d.diagnosis.direction?, d.diagnosis.span.clone()?)))
            }),
            Focus::Hex => self.marked.clone(),
        };
    }

    /// Pauses the hex pane with the row holding `offset` of `dir` near the top.
    fn scroll_to(&mut self, s: &Session, dir: crate::event::Direction, offset: u64) {
        let (g, _) = self.hex_geometry();
        let w = g.bytes_per_row as u64;
        if let Some(run) = s.run_holding(dir, offset) {
            self.scroll = Scroll::Anchor {
                seq: run.seq,
                row: ((offset - run.start) / w) as usize,
            };
        } else {
            self.message = Some("those bytes are no longer in memory".to_string());
        }
    }

    /// Moves the pane by `delta` rows; any move pauses follow mode.
    fn scroll_by(&mut self, s: &Session, delta: isize) -> Vec<Effect> {
        let (g, h) = self.hex_geometry();
        let w = g.bytes_per_row;
        let top = match self.scroll {
            Scroll::Follow => match hex::tail_rows(s, w, h).first() {
                Some(r) => *r,
                None => return vec![],
            },
            Scroll::Anchor { .. } => match hex::visible_rows(s, self, w, 1).first() {
                Some(r) => *r,
                None => return vec![],
            },
        };
        // The top row may go no further than one page before the last row.
        let last = hex::last_row(s, w).unwrap_or(top);
        let max_top = hex::step_clamped(s, w, last, -(h as isize - 1));
        let mut new_top = hex::step_clamped(s, w, top, delta);
        if delta > 0 && (new_top.run, new_top.row) > (max_top.run, max_top.row) {
            new_top = max_top;
        }
        self.scroll = self.anchor_of(s, new_top);
        vec![]
    }

    /// PgUp in the hex pane: a page up, or, already at the oldest row shown, a request for the
    /// page above it from the capture when older bytes were recorded.
    fn page_up_hex(&mut self, s: &Session) -> Vec<Effect> {
        let (g, h) = self.hex_geometry();
        let top = match self.scroll {
            Scroll::Follow => hex::tail_rows(s, g.bytes_per_row, h).first().copied(),
            Scroll::Anchor { .. } => hex::visible_rows(s, self, g.bytes_per_row, 1)
                .first()
                .copied(),
        };
        if top.is_some_and(|t| (t.run, t.row) == (0, 0)) {
            let readable = if self.in_history {
                true
            } else {
                s.counters.evicted_bytes > 0 && s.recorder().is_some_and(|r| r.failed().is_none())
            };
            if let Some((dir, start)) = oldest_shown_start(s).filter(|_| readable) {
                return vec![Effect::History(HistoryRequest::Above(dir, start))];
            }
        }
        self.scroll_by(s, -(h as isize))
    }

    /// Shows the page above byte `offset` of `dir` in `s` (a history window just loaded to
    /// continue paging up); false, with a message, if `s` does not hold that byte.
    pub fn page_above(&mut self, s: &Session, dir: crate::event::Direction, offset: u64) -> bool {
        self.focus = Focus::Hex;
        let (g, h) = self.hex_geometry();
        let w = g.bytes_per_row as u64;
        let Some(run) = s.run_holding(dir, offset) else {
            self.message = Some("the capture holds nothing older to show".to_string());
            return false;
        };
        // The page ends just above the old top: above the row starting there (which may
        // follow a run of the other direction), or, when the reloaded runs cut rows elsewhere,
        // at the row holding the byte just above it.
        let into = offset - run.start;
        self.scroll = Scroll::Anchor {
            seq: run.seq,
            row: (into / w) as usize,
        };
        let back = if into % w == 0 {
            h
        } else {
            h.saturating_sub(1)
        };
        self.scroll_by(s, -(back as isize));
        true
    }

    fn anchor_of(&self, s: &Session, r: RowRef) -> Scroll {
        match s.runs().get(r.run) {
            Some(run) => Scroll::Anchor {
                seq: run.seq,
                row: r.row,
            },
            None => Scroll::Follow,
        }
    }

    /// Keys while a line editor is open.
    fn edit(&mut self, s: &Session, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => {
                self.mode = InputMode::Normal;
                self.input_error = None;
            }
            KeyCode::Char('c') if ctrl => {
                self.mode = InputMode::Normal;
                self.input_error = None;
            }
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Tab if self.mode == InputMode::Send => {
                self.send_mode = match self.send_mode {
                    SendMode::Text => SendMode::Hex,
                    SendMode::Hex => SendMode::Text,
                };
                self.input_error = None;
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Up if self.mode == InputMode::Send => self.history_move(-1),
            KeyCode::Down if self.mode == InputMode::Send => self.history_move(1),
            KeyCode::Enter => return self.submit(s),
            KeyCode::Char(c) if !ctrl => {
                if self.input.len() < 4096 {
                    self.input.push(c);
                }
                self.input_error = None;
            }
            _ => {}
        }
        Vec::new()
    }

    fn history_move(&mut self, delta: isize) {
        if self.history.is_empty() {
            return;
        }
        let len = self.history.len() as isize;
        let pos = match self.history_pos {
            None if delta < 0 => len - 1,
            None => return,
            Some(p) => p as isize + delta,
        };
        if pos >= len {
            self.history_pos = None;
            self.input.clear();
        } else {
            let p = pos.clamp(0, len - 1) as usize;
            self.history_pos = Some(p);
            self.input = self.history.get(p).cloned().unwrap_or_default();
        }
    }

    fn submit(&mut self, s: &Session) -> Vec<Effect> {
        match self.mode {
            InputMode::Search => {
                let text = self.input.trim().to_string();
                if text.is_empty() {
                    // Enter on an empty line: the same search again, from the last match.
                    if self.search.is_none() {
                        self.mode = InputMode::Normal;
                        return vec![];
                    }
                } else {
                    let pattern = search_pattern(&text);
                    self.search = Some((pattern, None));
                }
                self.mode = InputMode::Normal;
                self.input.clear();
                let Some((pattern, last)) = self.search.clone() else {
                    return vec![];
                };
                match s.find(&pattern, last) {
                    Some((dir, range)) => {
                        self.found(s, &pattern, dir, range);
                        vec![]
                    }
                    None if s.replay.is_some() => {
                        self.search_pending = true;
                        self.message = Some(format!(
                            "searching the capture for {}…",
                            crate::hex::spaced(&pattern)
                        ));
                        vec![Command::Replay(ReplayControl::Find(pattern)).into()]
                    }
                    None if s.recorder().is_some_and(|r| r.failed().is_none()) => {
                        // The capture holds the whole session: search it through the file.
                        self.message = Some(format!(
                            "searching the capture for {}…",
                            crate::hex::spaced(&pattern)
                        ));
                        vec![Effect::History(HistoryRequest::Find(pattern, last))]
                    }
                    None => {
                        self.message = Some(format!(
                            "{} not found in the bytes in memory{}",
                            crate::hex::spaced(&pattern),
                            if self.in_history {
                                " (this part of the capture); End returns to live"
                            } else {
                                ""
                            }
                        ));
                        vec![]
                    }
                }
            }
            InputMode::Baud => match self.input.parse::<Baud>() {
                Ok(b) => {
                    self.mode = InputMode::Normal;
                    self.input.clear();
                    vec![Command::SetBaud(b).into()]
                }
                Err(e) => {
                    self.input_error = Some(e.to_string());
                    vec![]
                }
            },
            InputMode::Send => {
                match sendline::parse(&self.input, self.send_mode, self.line_ending) {
                    Ok(bytes) if bytes.is_empty() => {
                        self.mode = InputMode::Normal;
                        vec![]
                    }
                    Ok(bytes) => {
                        let line = std::mem::take(&mut self.input);
                        if self.history.last() != Some(&line) {
                            self.history.push(line);
                            if self.history.len() > HISTORY_CAP {
                                self.history.remove(0);
                            }
                        }
                        self.history_pos = None;
                        // The line stays open for the next command, like a terminal prompt.
                        vec![Command::Transmit(bytes).into()]
                    }
                    Err(e) => {
                        self.input_error = Some(e.to_string());
                        vec![]
                    }
                }
            }
            InputMode::Normal => vec![],
        }
    }
}

/// Keys that change the line's settings: refused until the source has reported them.
fn changes_settings(a: Action) -> bool {
    matches!(
        a,
        Action::BaudUp
            | Action::BaudDown
            | Action::EnterBaud
            | Action::ApplyBaud
            | Action::AutobaudScan
            | Action::CycleDataBits
            | Action::CycleParity
            | Action::ToggleStopBits
            | Action::CycleFlow
    )
}

/// The last command the user or script sent (not a follow-up), to resend or edit.
/// Where the bytes shown begin, for asking the capture what came before: the oldest run's
/// start, or, when that run is the first of its direction (offset 0), where the other
/// direction's first run in memory starts (older bytes of that direction came before).
fn oldest_shown_start(s: &Session) -> Option<(crate::event::Direction, u64)> {
    let front = s.runs().front()?;
    if front.start > 0 {
        return Some((front.direction, front.start));
    }
    s.runs()
        .iter()
        .find(|r| r.direction != front.direction)
        .filter(|r| r.start > 0)
        .map(|r| (r.direction, r.start))
}

fn last_command(s: &Session) -> Option<Vec<u8>> {
    s.card()
        .exchanges()
        .iter()
        .rev()
        .find(|e| e.parent.is_none())
        .map(|e| e.exchange.command.clone())
}

/// A search line as bytes: hex when it is only hex digit pairs (spaces allowed: "68 04",
/// "6804"), else the text itself ("boot", "AT").
pub fn search_pattern(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let hex_only = !digits.is_empty()
        && digits.len() % 2 == 0
        && digits.chars().all(|c| c.is_ascii_hexdigit())
        && text.split_whitespace().all(|w| w.len() % 2 == 0);
    if hex_only {
        if let Ok(b) = crate::hex::parse(text) {
            return b;
        }
    }
    text.as_bytes().to_vec()
}
