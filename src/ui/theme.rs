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
    pub warning: Style,
    pub good: Style,
    pub input: Style,
    /// The border of the pane that has the keyboard.
    pub focus: Style,
    /// The selected row of a list.
    pub selected: Style,
    /// Bytes of the selected frame or event in the hex pane.
    pub span: Style,
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
        warning: Style::new().fg(Color::Yellow),
        good: Style::new().fg(Color::Green),
        input: Style::new().fg(Color::White),
        focus: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        selected: Style::new().add_modifier(Modifier::REVERSED),
        span: Style::new()
            .bg(Color::Blue)
            .add_modifier(Modifier::UNDERLINED),
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
        warning: Style::new().add_modifier(Modifier::BOLD),
        good: Style::new(),
        input: Style::new(),
        focus: Style::new().add_modifier(Modifier::BOLD),
        selected: Style::new().add_modifier(Modifier::REVERSED),
        span: Style::new().add_modifier(Modifier::UNDERLINED),
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
