//! The events pane: every diagnosis, the meaningful 0x68s first, then by severity; repeats
//! are counted (×14) instead of listed again. Enter opens the explanation.

use ratatui::Frame as TermFrame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::diagnose::knowledge::Severity;
use crate::session::{Session, SessionDiagnosis};
use crate::ui::state::{Focus, UiState};
use crate::ui::theme::Theme;

/// Diagnoses passing the severity filter, in display order: about 0x68 first, then the most
/// severe, then oldest first.
pub fn ordered<'a>(s: &'a Session, ui: &UiState) -> Vec<&'a SessionDiagnosis> {
    let mut v: Vec<&SessionDiagnosis> = s
        .diagnoses()
        .iter()
        .filter(|d| {
            ui.severity_filter
                .is_none_or(|min| d.diagnosis.severity >= min)
        })
        .collect();
    v.sort_by(|a, b| {
        b.diagnosis
            .about_68
            .cmp(&a.diagnosis.about_68)
            .then(b.diagnosis.severity.cmp(&a.diagnosis.severity))
            .then(a.seq.cmp(&b.seq))
    });
    v
}

pub fn severity_style(theme: &Theme, s: Severity) -> ratatui::style::Style {
    match s {
        Severity::Info => theme.hint,
        Severity::Warning => theme.warning,
        Severity::Error => theme.error,
    }
}

pub fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Info => "ℹ",
        Severity::Warning => "⚠",
        Severity::Error => "✖",
    }
}

pub fn render(f: &mut TermFrame, area: Rect, s: &Session, ui: &UiState) {
    let theme = &ui.theme;
    let focused = ui.focus == Focus::Events;
    let list = ordered(s, ui);
    let mut title = format!(" events ({}) ", list.len());
    if let Some(min) = ui.severity_filter {
        title.push_str(&format!("· {}+ ", min.label()));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { theme.focus } else { theme.border })
        .title(Span::styled(title, theme.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    if list.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("nothing to explain yet", theme.hint)),
            inner,
        );
        return;
    }
    let h = inner.height as usize;
    let sel = ui
        .event_sel
        .and_then(|seq| list.iter().position(|d| d.seq == seq));
    // Keep the selection in view; without one, show the top of the list (most important).
    let start = match sel {
        Some(i) if i >= h => i + 1 - h,
        _ => 0,
    };
    let lines: Vec<Line> = list
        .iter()
        .skip(start)
        .take(h)
        .map(|d| {
            let dg = &d.diagnosis;
            let mut spans = vec![
                Span::styled(
                    format!("{} ", severity_mark(dg.severity)),
                    severity_style(theme, dg.severity),
                ),
                Span::styled(format!("{:>8.3} ", dg.first_at.as_secs_f64()), theme.time),
            ];
            if dg.about_68 {
                spans.push(Span::styled("68", theme.highlight_68));
                spans.push(Span::raw(" "));
            }
            spans.push(Span::raw(crate::sanitize::printable(&dg.title)));
            if dg.count > 1 {
                spans.push(Span::styled(format!(" ×{}", dg.count), theme.hint_key));
            }
            let mut l = Line::from(spans);
            if ui.event_sel == Some(d.seq) {
                l = l.style(theme.selected);
            }
            l
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}
