//! The detail overlay: a frame's field tree with byte ranges, or a diagnosis with its
//! explanation from the knowledge base (meaning, likely causes ranked, fixes, reference).

use ratatui::Frame as TermFrame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::decode::Field;
use crate::session::Session;
use crate::ui::state::{Detail, UiState};

fn field_lines(fields: &[Field], depth: usize, ui: &UiState, out: &mut Vec<Line<'static>>) {
    for fl in fields {
        let span = if fl.span.is_empty() {
            String::new()
        } else {
            format!("  [{:X}..{:X}]", fl.span.start, fl.span.end)
        };
        out.push(Line::from(vec![
            Span::raw("  ".repeat(depth + 1)),
            Span::styled(crate::sanitize::printable(&fl.name), ui.theme.hint_key),
            Span::raw(": "),
            Span::raw(crate::sanitize::printable(&fl.value)),
            Span::styled(span, ui.theme.address),
        ]));
        field_lines(&fl.children, depth + 1, ui, out);
    }
}

/// The text of the overlay, also used by tests.
pub fn lines(s: &Session, ui: &UiState, d: Detail) -> (String, Vec<Line<'static>>) {
    let mut out = Vec::new();
    match d {
        Detail::Frame(seq) => {
            let Some(sf) = s.frames().iter().find(|f| f.seq == seq) else {
                return (" frame ".into(), vec![Line::raw("this frame left memory")]);
            };
            let fr = &sf.frame;
            out.push(Line::styled(
                format!(
                    "{}{} {} · {} · {} · bytes {:X}..{:X} ({} bytes) · {:.3}s",
                    sf.direction.label().to_uppercase(),
                    // A tap names the sender: "TX (master)".
                    s.labels.as_ref().map_or_else(String::new, |l| format!(
                        " ({})",
                        crate::sanitize::printable(l.get(sf.direction))
                    )),
                    fr.protocol.name(),
                    fr.kind,
                    crate::ui::frames::status_mark(&fr.status),
                    fr.span.start,
                    fr.span.end,
                    fr.span.end.saturating_sub(fr.span.start),
                    sf.at.as_secs_f64()
                ),
                ui.theme.title,
            ));
            out.push(Line::raw(crate::sanitize::printable(fr.summary())));
            out.push(Line::raw(format!("evidence: {}", fr.evidence())));
            match &fr.status {
                crate::decode::FrameStatus::BadChecksum { expected, found } => {
                    out.push(Line::styled(
                        format!("checksum: expected {expected:02X}, found {found:02X}"),
                        ui.theme.error,
                    ))
                }
                crate::decode::FrameStatus::Malformed(why) => out.push(Line::styled(
                    format!("malformed: {}", crate::sanitize::printable(why)),
                    ui.theme.error,
                )),
                _ => {}
            }
            out.push(Line::raw(""));
            field_lines(fr.fields(), 0, ui, &mut out);
            (" frame ".into(), out)
        }
        Detail::Event(seq) => {
            let Some(sd) = s.diagnoses().iter().find(|x| x.seq == seq) else {
                return (" event ".into(), vec![Line::raw("this event left memory")]);
            };
            let dg = &sd.diagnosis;
            out.push(Line::styled(
                format!(
                    "{} {} · {} · seen {}× ({:.3}s … {:.3}s)",
                    crate::ui::events::severity_mark(dg.severity),
                    dg.severity.label(),
                    dg.id,
                    dg.count,
                    dg.first_at.as_secs_f64(),
                    dg.last_at.as_secs_f64()
                ),
                ui.theme.title,
            ));
            out.push(Line::raw(format!(
                "here: {}",
                crate::sanitize::printable(&dg.context)
            )));
            out.push(Line::raw(""));
            if let Some(entry) = s.engine().and_then(|e| e.knowledge().get(&dg.id)) {
                for l in entry.render_text().lines() {
                    out.push(Line::raw(crate::sanitize::printable(l)));
                }
            }
            (" explanation ".into(), out)
        }
        Detail::Exchange(seq) => (
            " APDU exchange ".into(),
            crate::ui::apdu::detail_lines(s, ui, seq),
        ),
    }
}

pub fn render(f: &mut TermFrame, area: Rect, s: &Session, ui: &UiState, d: Detail) {
    let (title, body) = lines(s, ui, d);
    let width = 100.min(area.width);
    let height = (body.len() as u16 + 4)
        .min(area.height.saturating_sub(2))
        .max(3.min(area.height));
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
        .title(Span::styled(title, ui.theme.title))
        .title_bottom(Span::styled(
            " g: show the bytes · Esc: close ",
            ui.theme.hint,
        ));
    f.render_widget(
        Paragraph::new(body).block(block).wrap(Wrap { trim: false }),
        popup,
    );
}
