//! The "what am I talking to?" overlay: the classifier's ranking with its evidence.

use ratatui::Frame as TermFrame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::diagnose::classify::Classifier;
use crate::session::Session;
use crate::ui::state::UiState;

pub fn render(f: &mut TermFrame, area: Rect, s: &Session, ui: &UiState) {
    let ranking = s
        .engine()
        .map(|e| e.classifier.ranking())
        .unwrap_or_default();
    let mut lines = Vec::new();
    if ranking.is_empty() {
        lines.push(Line::raw("No frame decoded yet: no evidence either way."));
    }
    for g in ranking.iter().take(12) {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:>4.0}%  ", g.confidence * 100.0),
                ui.theme.hint_key,
            ),
            Span::styled(Classifier::describe(g.protocol), ui.theme.title),
        ]));
        lines.push(Line::raw(format!(
            "       {} (rx {}, tx {})",
            g.evidence, g.tally.rx, g.tally.tx
        )));
    }
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 80.min(area.width);
    let [v] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(v);
    f.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(ui.theme.focus)
        .title(Span::styled(" what am I talking to? ", ui.theme.title));
    f.render_widget(Paragraph::new(lines).block(block), popup);
}
