//! Every style the panes use, in one place. `NO_COLOR` (or `theme = "mono"`) picks a theme
//! that tells things apart by modifiers alone.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub rx: Style,
    pub tx: Style,
    /// Every 0x68 byte, in hex and in the gutter.
    pub highlight_68: Style,
    pub address: Style,
    pub time: Style,
    pub gutter: Style,
    pub status: Style,
    pub status_bad: Style,
    pub status_good: Style,
    pub hint: Style,
    pub hint_key: Style,
    pub border: Style,
    pub title: Style,
    pub error: Style,
    pub input: Style,
}

impl Theme {
    pub const COLOR: Theme = Theme {
        rx: Style::new().fg(Color::Cyan),
        tx: Style::new().fg(Color::Magenta),
        highlight_68: Style::new()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        address: Style::new().fg(Color::DarkGray),
        time: Style::new().fg(Color::DarkGray),
        gutter: Style::new().fg(Color::Gray),
        status: Style::new().fg(Color::White).bg(Color::Blue),
        status_bad: Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        status_good: Style::new().fg(Color::Black).bg(Color::Green),
        hint: Style::new().fg(Color::Gray),
        hint_key: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        border: Style::new().fg(Color::DarkGray),
        title: Style::new().add_modifier(Modifier::BOLD),
        error: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        input: Style::new().fg(Color::White),
    };

    pub const MONO: Theme = Theme {
        rx: Style::new(),
        tx: Style::new().add_modifier(Modifier::ITALIC),
        highlight_68: Style::new().add_modifier(Modifier::REVERSED.union(Modifier::BOLD)),
        address: Style::new().add_modifier(Modifier::DIM),
        time: Style::new().add_modifier(Modifier::DIM),
        gutter: Style::new(),
        status: Style::new().add_modifier(Modifier::REVERSED),
        status_bad: Style::new().add_modifier(Modifier::REVERSED.union(Modifier::BOLD)),
        status_good: Style::new().add_modifier(Modifier::REVERSED),
        hint: Style::new(),
        hint_key: Style::new().add_modifier(Modifier::BOLD),
        border: Style::new(),
        title: Style::new().add_modifier(Modifier::BOLD),
        error: Style::new().add_modifier(Modifier::BOLD),
        input: Style::new(),
    };

    /// The theme for a config name, honouring `NO_COLOR` (https://no-color.org).
    pub fn select(name: Option<&str>, no_color: bool) -> Theme {
        if no_color {
            return Theme::MONO;
        }
        match name {
            Some("mono") => Theme::MONO,
            _ => Theme::COLOR,
        }
    }
}
