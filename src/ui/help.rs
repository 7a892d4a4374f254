//! The help overlay (`?`): every key, produced from the keymap itself.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::ui::keys::EDITOR_KEYS;
use crate::ui::state::UiState;

pub fn render(frame: &mut Frame, area: Rect, ui: &UiState) {
    let theme = &ui.theme;
    let rows = ui.keymap.help_rows();
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .chain(EDITOR_KEYS.iter().map(|(k, _)| k.chars().count()))
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$}  "), theme.hint_key),
                Span::raw(*d),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " In the send line and baud entry:",
        theme.title,
    ));
    for (k, d) in EDITOR_KEYS {
        lines.push(Line::from(vec![
            Span::styled(format!(" {k:<key_w$}  "), theme.hint_key),
            Span::raw(*d),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " Every 0x68 byte is highlighted. Any key closes this help.",
        theme.hint,
    ));
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 78.min(area.width);
    let [v] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(v);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(" hsmon keys ", theme.title));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
