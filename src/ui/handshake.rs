//! The handshake pane: each step of a running profile — what was sent, what was expected, what
//! came back (byte by byte: right bytes in the good style, wrong ones in the error style, an
//! echo matched past dimmed), the timing — and on divergence the explanation. It sits above the
//! usual panes, which show the same run as ordinary traffic.
//!
//! ```text
//! ┌ handshake stm32 · serial · diverged at "init" ───────────────────────┐
//! │ ✓ init   sent 7F      expected 79        got 79             3.1 ms │
//! │ ✖ get    sent 00 FF   expected 79 XX XX… got 68 65 6C …     12 ms  │
//! │   the port runs at 57600 8N1 but this profile expects 57600 8E1    │
//! │ ✖ stm32.text_instead_of_ack  STM32: text (e.g. 0x68) instead of …  │
//! │   1. Hold BOOT0 high and reset, then retry.                        │
//! └────────────────────────────────────────────────────────────────────┘
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::handshake::expect::DiffByte;
use crate::handshake::runner::{Outcome, Runner, StepRecord, StepStatus};
use crate::hex;
use crate::sanitize::printable;
use crate::session::Session;
use crate::ui::state::UiState;
use crate::ui::theme::Theme;

/// Fixes shown under the explanation.
const FIXES_SHOWN: usize = 3;

/// Splits the screen: the handshake pane on top (at most half the height), the usual panes
/// below. `update` must use the lower area's size, so paging matches what is on screen.
pub fn split(area: Rect, run: &Runner) -> (Rect, Rect) {
    let want = u16::try_from(lines(run, area.width, &Theme::MONO).len() + 2).unwrap_or(u16::MAX);
    let h = want.min(area.height / 2);
    let [top, rest] = Layout::vertical([Constraint::Length(h), Constraint::Min(0)]).areas(area);
    (top, rest)
}

/// Draws the handshake pane and, below it, the usual screen.
pub fn render_screen(f: &mut Frame, s: &Session, ui: &UiState, run: &Runner) {
    let area = f.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let (top, rest) = split(area, run);
    render(f, top, run, &ui.theme);
    crate::ui::render_in(f, rest, s, ui);
}

/// Draws the pane into `area`.
pub fn render(f: &mut Frame, area: Rect, run: &Runner, theme: &Theme) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let p = run.profile();
    let state = match run.outcome() {
        None => match run.current_step().and_then(|i| run.records().get(i)) {
            Some(r) => format!("running \"{}\"", printable(&r.name)),
            None => "waiting for the device".to_string(),
        },
        Some(Outcome::Success) => "ok".to_string(),
        Some(Outcome::Diverged(d)) => format!(
            "diverged at \"{}\"",
            run.records()
                .get(d.step)
                .map_or(String::new(), |r| printable(&r.name))
        ),
        Some(Outcome::DeviceError(_)) => "device error".to_string(),
    };
    let title_style = match run.outcome() {
        Some(Outcome::Success) => theme.good,
        Some(_) => theme.error,
        None => theme.title,
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(
            format!(
                " handshake {} · {} · {state} ",
                printable(&p.name),
                p.transport.label()
            ),
            title_style,
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let all = lines(run, inner.width, theme);
    // Keep the running step and the explanation in view when the pane is short.
    let skip = match run.outcome() {
        Some(_) => 0,
        None => {
            let cur = run.current_step().unwrap_or(0);
            cur.saturating_sub(usize::from(inner.height).saturating_sub(1))
        }
    };
    let shown: Vec<Line> = all
        .into_iter()
        .skip(skip)
        .take(usize::from(inner.height))
        .collect();
    f.render_widget(Paragraph::new(shown), inner);
}

/// The pane's lines: each step (and its notes), the run's notes, then the explanation.
fn lines(run: &Runner, width: u16, theme: &Theme) -> Vec<Line<'static>> {
    let name_w = run
        .records()
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(20);
    let mut out = Vec::new();
    for r in run.records() {
        out.push(step_line(r, name_w, theme));
        for n in &r.notes {
            out.push(Line::styled(
                clip(&format!("    {}", printable(n)), width),
                theme.warning,
            ));
        }
    }
    for n in &run.notes {
        out.push(Line::styled(
            clip(&format!("  ⚠ {}", printable(n)), width),
            theme.warning,
        ));
    }
    match run.outcome() {
        Some(Outcome::Diverged(d)) => {
            out.push(Line::styled(clip(&printable(&d.text), width), theme.error));
            if let Some(e) = d.explanation.first() {
                out.push(Line::from(vec![
                    Span::styled(format!("✖ {} ", e.id), theme.error),
                    Span::styled(clip(&printable(&e.title), width), theme.title),
                ]));
                for (i, fix) in e.fixes.iter().take(FIXES_SHOWN).enumerate() {
                    out.push(Line::styled(
                        clip(&format!("  {}. {}", i + 1, printable(fix)), width),
                        theme.hint,
                    ));
                }
            }
            for e in d.explanation.iter().skip(1).take(2) {
                out.push(Line::styled(
                    clip(&format!("  also {}: {}", e.id, printable(&e.title)), width),
                    theme.hint,
                ));
            }
        }
        Some(Outcome::DeviceError(e)) => {
            out.push(Line::styled(clip(&printable(e), width), theme.error));
        }
        _ => {}
    }
    out
}

fn step_line(r: &StepRecord, name_w: usize, theme: &Theme) -> Line<'static> {
    let (mark, style) = match r.status {
        StepStatus::Ok => ("✓", theme.good),
        StepStatus::Diverged => ("✖", theme.error),
        StepStatus::Running => ("▸", theme.title),
        StepStatus::Pending => ("·", theme.hint),
    };
    let mut spans = vec![
        Span::styled(format!("{mark} "), style),
        Span::raw(format!("{:<name_w$} ", printable(&r.name))),
    ];
    if !r.sent.is_empty() {
        spans.push(Span::styled("sent ", theme.hint));
        spans.push(Span::styled(
            format!("{} ", hex::spaced_cut(&r.sent, 8)),
            theme.tx,
        ));
    }
    if let Some(e) = &r.expected {
        spans.push(Span::styled("expected ", theme.hint));
        spans.push(Span::raw(format!("{} ", short_text(e, 28))));
    }
    let answered = matches!(r.status, StepStatus::Ok | StepStatus::Diverged);
    if answered && r.expected.is_some() {
        spans.push(Span::styled("got ", theme.hint));
        if let Some(echo) = &r.echo {
            spans.push(Span::styled(
                format!("[echo {}] ", hex::spaced_cut(echo, 4)),
                theme.hint,
            ));
        }
        if r.diff.is_empty() && r.got.is_empty() {
            spans.push(Span::styled("nothing ", theme.error));
        }
        spans.extend(diff_spans(&r.diff, theme));
    }
    if let Some(e) = r.elapsed {
        spans.push(Span::styled(
            format!(" {:.1} ms", e.as_secs_f64() * 1000.0),
            theme.time,
        ));
    }
    if r.attempts > 1 {
        spans.push(Span::styled(format!(" ×{}", r.attempts), theme.hint_key));
    }
    Line::from(spans)
}

/// Diffed bytes: right ones in the good style, wrong ones in the error style (0x68 in its own
/// highlight), missing ones as `__`; at most 12 shown.
fn diff_spans(diff: &[DiffByte], theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for d in diff.iter().take(12) {
        let (text, style): (String, Style) = match d.got {
            Some(b) if d.ok => (format!("{b:02X} "), theme.good),
            Some(0x68) => ("68 ".to_string(), theme.highlight_68),
            Some(b) => (format!("{b:02X} "), theme.error),
            None => ("__ ".to_string(), theme.error),
        };
        spans.push(Span::styled(text, style));
    }
    if diff.len() > 12 {
        spans.push(Span::styled(
            format!("… ({} bytes)", diff.len()),
            theme.hint,
        ));
    }
    spans
}

fn short_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn clip(s: &str, width: u16) -> String {
    short_text(s, usize::from(width.max(2)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::diagnose::knowledge::Knowledge;
    use crate::event::{Event, TimedEvent};
    use crate::handshake::profile::Profiles;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use std::sync::Arc;
    use std::time::Duration;

    fn ev(ms: u64, event: Event) -> TimedEvent {
        TimedEvent::new(Duration::from_millis(ms), event)
    }

    /// An MTK run whose first step got its A0 back ten times.
    fn mtk_echo() -> Runner {
        let k = Arc::new(Knowledge::embedded().unwrap());
        let p = Profiles::built_in()
            .unwrap()
            .get("mtk-brom")
            .unwrap()
            .clone();
        let settings = p.line_settings().unwrap();
        let mut r = Runner::new(p, Some(k), Duration::ZERO);
        r.on_event(&ev(
            0,
            Event::LineSettings {
                settings,
                modem: Default::default(),
            },
        ));
        let mut t = 0;
        while !r.is_finished() {
            t += 1;
            r.on_event(&ev(t, Event::Tx(vec![0xA0])));
            t += 1;
            r.on_event(&ev(t, Event::Rx(vec![0xA0])));
            t = r.next_wake().unwrap().as_millis() as u64;
            r.poll(Duration::from_millis(t));
        }
        r
    }

    fn draw(run: &Runner, w: u16, h: u16) -> ratatui::buffer::Buffer {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| render(f, f.area(), run, &Theme::COLOR))
            .unwrap();
        term.backend().buffer().clone()
    }

    fn text(buf: &ratatui::buffer::Buffer) -> String {
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn a_divergence_shows_the_diff_and_the_explanation() {
        let run = mtk_echo();
        let buf = draw(&run, 100, 16);
        let t = text(&buf);
        assert!(
            t.contains("handshake mtk-brom · serial · diverged at \"start-a0\""),
            "{t}"
        );
        assert!(t.contains("✖ start-a0 sent A0 expected 5F got A0"), "{t}");
        assert!(t.contains("· start-0a sent 0A expected F5"), "{t}");
        assert!(t.contains("✖ mtk.brom_echo_a0"), "{t}");
        assert!(t.contains("1. Unplug"), "{t}");
        // The wrong byte is drawn in the error style.
        let line = (0..16)
            .find(|&y| {
                (0..100)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .contains("✖ start-a0")
            })
            .unwrap();
        let row: String = (0..100).map(|x| buf[(x, line)].symbol()).collect();
        let col = row.find("got A0").unwrap() + 4;
        let col = row[..col].chars().count() as u16;
        assert_eq!(buf[(col, line)].symbol(), "A");
        assert_eq!(buf[(col, line)].style().fg, Theme::COLOR.error.fg);
    }

    #[test]
    fn small_and_zero_sizes_do_not_panic() {
        let run = mtk_echo();
        for (w, h) in [(0, 0), (1, 1), (10, 3), (40, 5), (200, 60)] {
            draw(&run, w, h);
        }
        let (top, rest) = split(Rect::new(0, 0, 80, 24), &run);
        assert!(top.height <= 12 && top.height > 2);
        assert_eq!(top.height + rest.height, 24);
    }
}
