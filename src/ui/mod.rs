//! Rendering only: one file per pane, each reading `&Session` and `&UiState`.

pub mod action;
pub mod apdu;
pub mod detail;
pub mod events;
pub mod frames;
pub mod handshake;
pub mod help;
pub mod hex;
pub mod keys;
pub mod layout;
pub mod sendline;
pub mod state;
pub mod status;
pub mod talking;
pub mod theme;

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::session::Session;
use crate::ui::action::Action;
use crate::ui::layout::Areas;
use crate::ui::sendline::SendMode;
use crate::ui::state::{Focus, InputMode, Overlay, UiState};

/// What the panes draw: a session (live, or read back from the capture) and the state of
/// the drivers that shows in them. A bare `&Session` is a view without drivers.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub session: &'a Session,
    /// The APDU script (`hsmon card --script`), for the card pane.
    pub script: Option<&'a crate::card::runner::ScriptRunner>,
}

impl<'a> From<&'a Session> for View<'a> {
    fn from(session: &'a Session) -> View<'a> {
        View {
            session,
            script: None,
        }
    }
}

/// Draws the whole screen.
pub fn render<'a>(frame: &mut Frame, v: impl Into<View<'a>>, ui: &UiState) {
    render_in(frame, frame.area(), v, ui);
}

/// Draws the panes, status and hints into `area` (the whole screen, or what a handshake pane
/// leaves of it).
pub fn render_in<'a>(
    frame: &mut Frame,
    area: ratatui::layout::Rect,
    v: impl Into<View<'a>>,
    ui: &UiState,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let v = v.into();
    let s = v.session;
    let areas = Areas::new(area);
    match (ui.focus, areas.frames, areas.events) {
        // Too small for three panes: the focused list takes the bytes pane's place.
        (Focus::Frames, None, _) => frames::render(frame, areas.hex, s, ui),
        (Focus::Events, _, None) => events::render(frame, areas.hex, s, ui),
        _ if s.card().is_active() => apdu::render(frame, areas.hex, s, ui, v.script),
        _ => hex::render(frame, areas.hex, s, ui),
    }
    if let Some(a) = areas.frames {
        if s.card().is_active() {
            apdu::render_atr(frame, a, s, ui);
        } else {
            frames::render(frame, a, s, ui);
        }
    }
    if let Some(a) = areas.events {
        events::render(frame, a, s, ui);
    }
    status::render(frame, areas.status, s, ui);
    match ui.mode {
        InputMode::Normal if s.card().is_active() => card_hints(frame, areas.bottom, ui),
        InputMode::Normal => hints(frame, areas.bottom, ui),
        InputMode::Send => {
            let prompt = match ui.send_mode {
                SendMode::Text => "send text› ",
                SendMode::Hex => "send hex› ",
            };
            sendline::render(
                frame,
                areas.bottom,
                prompt,
                &ui.input,
                ui.input_error.as_deref(),
                &ui.theme,
            );
        }
        InputMode::Search => sendline::render(
            frame,
            areas.bottom,
            "search (hex or text)› ",
            &ui.input,
            ui.input_error.as_deref(),
            &ui.theme,
        ),
        InputMode::Baud => sendline::render(
            frame,
            areas.bottom,
            "baud› ",
            &ui.input,
            ui.input_error.as_deref(),
            &ui.theme,
        ),
    }
    match ui.overlay {
        Some(Overlay::Help) => help::render(frame, area, ui),
        Some(Overlay::Detail(d)) => detail::render(frame, area, s, ui, d),
        Some(Overlay::TalkingTo) => talking::render(frame, area, s, ui),
        None => {}
    }
}

/// A key-hint line: each action's first key (as the user's key map binds it) and its label.
fn hint_line(
    frame: &mut ratatui::Frame,
    area: ratatui::layout::Rect,
    ui: &UiState,
    items: &[(Action, &str)],
) {
    let mut spans = Vec::new();
    for (a, label) in items {
        if let Some(k) = ui.keymap.keys_for(*a).first() {
            spans.push(Span::styled(format!(" {}", k.label()), ui.theme.hint_key));
            spans.push(Span::styled(format!(" {label} "), ui.theme.hint));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The key-hint line of a card session.
fn card_hints(frame: &mut ratatui::Frame, area: ratatui::layout::Rect, ui: &UiState) {
    let items: [(Action, &str); 11] = [
        (Action::ToggleHelp, "help"),
        (Action::Quit, "quit"),
        (Action::FocusNext, "pane"),
        (Action::Activate, "open"),
        (Action::OpenSend, "send APDU"),
        (Action::StepNext, "next"),
        (Action::Resend, "resend"),
        (Action::EditApdu, "edit"),
        (Action::RunToFailure, "run"),
        (Action::ReplayScript, "replay"),
        (Action::ResetCard, "reset card"),
    ];
    hint_line(frame, area, ui, &items);
}

/// The key-hint line.
fn hints(frame: &mut ratatui::Frame, area: ratatui::layout::Rect, ui: &UiState) {
    let items: [(Action, &str); 14] = [
        (Action::ToggleHelp, "help"),
        (Action::Quit, "quit"),
        (Action::FocusNext, "pane"),
        (Action::Activate, "open"),
        (Action::BaudUp, "baud+"),
        (Action::BaudDown, "baud-"),
        (Action::EnterBaud, "baud…"),
        (Action::CycleDataBits, "bits"),
        (Action::CycleParity, "parity"),
        (Action::ToggleStopBits, "stop"),
        (Action::CycleFlow, "flow"),
        (Action::ToggleDtr, "DTR"),
        (Action::OpenSend, "send"),
        (Action::Follow, "follow"),
    ];
    hint_line(frame, area, ui, &items);
}
