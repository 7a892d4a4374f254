//! The frames pane: one row per decoded frame (time, direction, protocol, kind, check mark,
//! summary), newest at the bottom; the selected frame's bytes are highlighted in the hex pane.

use ratatui::Frame as TermFrame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::decode::FrameStatus;
use crate::event::Direction;
use crate::session::{Session, SessionFrame};
use crate::ui::state::{Focus, UiState};

/// Frames that pass the protocol filter, ending at the selection (or the newest), oldest first;
/// when fewer than `h` come before the selection (it is near the oldest), the frames after it
/// fill the rows below, so no row is drawn blank.
pub fn window<'a>(s: &'a Session, ui: &UiState, h: usize) -> Vec<&'a SessionFrame> {
    let frames = s.frames();
    let passes = |f: &&SessionFrame| ui.protocol_filter.is_none_or(|p| f.frame.protocol == p);
    let end = match ui.frame_sel {
        Some(seq) => frames.partition_point(|f| f.seq <= seq),
        None => frames.len(),
    };
    let mut out: Vec<&SessionFrame> = frames.range(..end).rev().filter(passes).take(h).collect();
    out.reverse();
    if out.len() < h {
        let more = h - out.len();
        out.extend(frames.range(end..).filter(passes).take(more));
    }
    out
}

/// The frame `delta` rows from the selection among filtered frames (None: back to newest).
pub fn step(s: &Session, ui: &UiState, delta: isize) -> Option<u64> {
    let passes = |f: &&SessionFrame| ui.protocol_filter.is_none_or(|p| f.frame.protocol == p);
    let frames = s.frames();
    let cur = match ui.frame_sel {
        Some(seq) => frames.partition_point(|f| f.seq < seq),
        None => frames.len(),
    };
    if delta < 0 {
        frames
            .range(..cur.min(frames.len()))
            .rev()
            .filter(passes)
            .nth((-delta - 1) as usize)
            .or_else(|| frames.iter().find(passes))
            .map(|f| f.seq)
    } else {
        let after: Vec<&SessionFrame> = frames
            .range((cur + 1).min(frames.len())..)
            .filter(passes)
            .collect();
        // Moving past the newest frame returns to following.
        after.get(delta as usize - 1).map(|f| f.seq)
    }
}

pub fn status_mark(st: &FrameStatus) -> &'static str {
    match st {
        FrameStatus::Ok => "✓",
        FrameStatus::BadChecksum { .. } => "✗ checksum",
        FrameStatus::Truncated => "✗ truncated",
        FrameStatus::Malformed(_) => "✗ malformed",
    }
}

pub fn render(f: &mut TermFrame, area: Rect, s: &Session, ui: &UiState) {
    let theme = &ui.theme;
    let focused = ui.focus == Focus::Frames;
    let mut title = format!(" frames ({}) ", s.frames().len());
    if let Some(p) = ui.protocol_filter {
        title.push_str(&format!("· only {} ", p.name()));
    }
    if ui.frame_sel.is_some() {
        title.push_str("· selected ");
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
    let rows = window(s, ui, inner.height as usize);
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no frames decoded yet", theme.hint)),
            inner,
        );
        return;
    }
    let label_width = s.labels.as_ref().map_or(2, |l| {
        l.rx.chars().count().max(l.tx.chars().count()).clamp(2, 10)
    });
    let lines: Vec<Line> = rows
        .iter()
        .map(|sf| {
            let selected = ui.frame_sel == Some(sf.seq);
            let dir_style = match sf.direction {
                Direction::Rx => theme.rx,
                Direction::Tx => theme.tx,
            };
            let ok = sf.frame.status.is_ok();
            let mut l = Line::from(vec![
                Span::styled(format!("{:>9.3} ", sf.at.as_secs_f64()), theme.time),
                Span::styled(
                    match &s.labels {
                        // A tap names the sender; padded so the columns stay aligned.
                        Some(l) => format!(
                            "{:<w$.w$} ",
                            crate::sanitize::printable(l.get(sf.direction)),
                            w = label_width
                        ),
                        None => format!("{} ", sf.direction.label().to_uppercase()),
                    },
                    dir_style,
                ),
                Span::styled(format!("{:<8} ", sf.frame.protocol.id()), theme.title),
                Span::raw(format!("{:<8} ", sf.frame.kind)),
                Span::styled(
                    format!("{} ", status_mark(&sf.frame.status)),
                    if ok { theme.good } else { theme.error },
                ),
                Span::raw(crate::sanitize::printable(sf.frame.summary())),
            ]);
            if selected {
                l = l.style(theme.selected);
            }
            l
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}
