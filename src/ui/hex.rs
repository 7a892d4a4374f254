//! The hex pane: one row per up to N bytes of one direction, with stream address, arrival
//! time, an RX/TX marker, hex bytes and an ASCII gutter; every 0x68 highlighted.
//!
//! ```text
//! 00000010 12.345 RX▸ 68 04 04 68 53 FE 50 A1 16 ...  h..hS.P..
//! ```
//! Rows never mix directions. Row navigation here is pure (session + width), so `update`
//! and `render` agree on where a row is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::event::Direction;
use crate::sanitize::gutter_char;
use crate::session::{Run, Session};
use crate::ui::state::{Scroll, UiState};
use crate::ui::theme::Theme;

/// Characters before the hex bytes: address (8) + space + time (10) + space + marker (3) + space.
const PREFIX_WIDE: u16 = 8 + 1 + 10 + 1 + 3 + 1;
/// On narrow terminals the time column is dropped.
const PREFIX_NARROW: u16 = 8 + 1 + 3 + 1;

/// The byte that matters most to our users.
pub const HIGHLIGHT_BYTE: u8 = 0x68;

/// How rows are laid out for a pane of a given inner width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per row: a multiple of 8 from 8 to 64 (divides `session::RUN_CAPACITY`).
    pub bytes_per_row: usize,
    pub show_time: bool,
}

impl Geometry {
    /// Fits as many 8-byte groups as the width allows: each byte takes 3 columns of hex and
    /// 1 of gutter, plus a space before the gutter.
    pub fn for_width(inner_width: u16) -> Geometry {
        let fit = |prefix: u16| (inner_width.saturating_sub(prefix + 1) / 4) as usize / 8 * 8;
        let wide = fit(PREFIX_WIDE);
        if wide >= 16 {
            Geometry {
                bytes_per_row: wide.min(64),
                show_time: true,
            }
        } else {
            Geometry {
                bytes_per_row: fit(PREFIX_NARROW).clamp(8, 64),
                show_time: false,
            }
        }
    }
}

/// A row: which run, and which row within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef {
    pub run: usize,
    pub row: usize,
}

fn rows_in(run: &Run, w: usize) -> usize {
    run.bytes.len().div_ceil(w)
}

/// The last `h` rows of the session (follow mode), oldest first.
pub fn tail_rows(s: &Session, w: usize, h: usize) -> Vec<RowRef> {
    let mut out = Vec::with_capacity(h);
    for (ri, run) in s.runs().iter().enumerate().rev() {
        for row in (0..rows_in(run, w)).rev() {
            if out.len() == h {
                out.reverse();
                return out;
            }
            out.push(RowRef { run: ri, row });
        }
    }
    out.reverse();
    out
}

/// Up to `h` rows starting at `from`, oldest first.
pub fn rows_from(s: &Session, w: usize, from: RowRef, h: usize) -> Vec<RowRef> {
    let mut out = Vec::with_capacity(h);
    let mut cur = Some(from);
    while let Some(r) = cur {
        if out.len() == h {
            break;
        }
        out.push(r);
        cur = step(s, w, r, 1);
    }
    out
}

/// The row `delta` rows after (or before, if negative) `r`, or None past either end.
pub fn step(s: &Session, w: usize, r: RowRef, delta: isize) -> Option<RowRef> {
    let runs = s.runs();
    let mut run = r.run;
    let mut row = r.row as isize + delta;
    loop {
        let n = rows_in(runs.get(run)?, w) as isize;
        if row < 0 {
            run = run.checked_sub(1)?;
            row += rows_in(runs.get(run)?, w) as isize;
        } else if row >= n {
            row -= n;
            run += 1;
        } else {
            return Some(RowRef {
                run,
                row: row as usize,
            });
        }
    }
}

/// Like `step` but stops at the first/last row instead of running off the end.
pub fn step_clamped(s: &Session, w: usize, r: RowRef, delta: isize) -> RowRef {
    step(s, w, r, delta).unwrap_or_else(|| {
        if delta < 0 {
            RowRef { run: 0, row: 0 }
        } else {
            last_row(s, w).unwrap_or(r)
        }
    })
}

pub fn last_row(s: &Session, w: usize) -> Option<RowRef> {
    let (i, run) = s
        .runs()
        .iter()
        .enumerate()
        .rev()
        .find(|(_, r)| !r.bytes.is_empty())?;
    Some(RowRef {
        run: i,
        row: rows_in(run, w) - 1,
    })
}

/// The rows the pane shows for the current scroll state.
pub fn visible_rows(s: &Session, ui: &UiState, w: usize, h: usize) -> Vec<RowRef> {
    match ui.scroll {
        Scroll::Follow => tail_rows(s, w, h),
        Scroll::Anchor { seq, row } => {
            let from = match s.run_index(seq) {
                Some(run) => RowRef {
                    run,
                    row: row.min(s.runs().get(run).map_or(0, |r| rows_in(r, w).max(1) - 1)),
                },
                // The anchored run left the in-memory window: show the oldest we have.
                None => RowRef { run: 0, row: 0 },
            };
            rows_from(s, w, from, h)
        }
    }
}

fn dir_style(theme: &Theme, d: Direction) -> Style {
    match d {
        Direction::Rx => theme.rx,
        Direction::Tx => theme.tx,
    }
}

fn marker(d: Direction) -> &'static str {
    match d {
        Direction::Rx => "RX▸",
        Direction::Tx => "TX◂",
    }
}

/// Builds one row as styled text. Every character comes from `hex_pair` or `gutter_char`,
/// so nothing a device sends reaches the terminal unfiltered.
fn row_line(
    run: &Run,
    row: usize,
    g: Geometry,
    theme: &Theme,
    marked: Option<&std::ops::Range<u64>>,
) -> Line<'static> {
    let w = g.bytes_per_row;
    let start = row * w;
    let end = (start + w).min(run.bytes.len());
    let bytes = run.bytes.get(start..end).unwrap_or(&[]);
    let style = dir_style(theme, run.direction);
    let first = run.start + start as u64;
    let is_marked = |i: usize| marked.is_some_and(|m| m.contains(&(first + i as u64)));
    let mut spans = Vec::with_capacity(8 + bytes.len() * 2);
    spans.push(Span::styled(
        format!("{:08X} ", run.start + start as u64),
        theme.address,
    ));
    if g.show_time {
        let t = run.time_of(start).as_secs_f64();
        spans.push(Span::styled(format!("{t:>10.3} "), theme.time));
    }
    spans.push(Span::styled(format!("{} ", marker(run.direction)), style));

    // Hex: plain stretches are grouped into one span; each 0x68 gets its own.
    let mut hex = String::with_capacity(w * 3);
    for (i, &b) in bytes.iter().enumerate() {
        let [h, l] = crate::hex::pair(b);
        if b == HIGHLIGHT_BYTE || is_marked(i) {
            if !hex.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut hex), style));
            }
            let st = if b == HIGHLIGHT_BYTE {
                theme.highlight_68
            } else {
                theme.span
            };
            let st = if is_marked(i) {
                st.patch(theme.span)
            } else {
                st
            };
            spans.push(Span::styled(format!("{}{}", h as char, l as char), st));
            hex.push(' ');
        } else {
            hex.push(h as char);
            hex.push(l as char);
            hex.push(' ');
        }
        if i + 1 == bytes.len() {
            // Pad a short last row so the gutter lines up.
            for _ in bytes.len()..w {
                hex.push_str("   ");
            }
        }
    }
    hex.push(' ');
    spans.push(Span::styled(hex, style));

    let mut gutter = String::with_capacity(w);
    for &b in bytes {
        if b == HIGHLIGHT_BYTE {
            if !gutter.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut gutter), theme.gutter));
            }
            spans.push(Span::styled("h", theme.highlight_68));
        } else {
            gutter.push(gutter_char(b));
        }
    }
    if !gutter.is_empty() {
        spans.push(Span::styled(gutter, theme.gutter));
    }
    Line::from(spans)
}

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, s: &Session, ui: &UiState) {
    let theme = &ui.theme;
    let follow = matches!(ui.scroll, Scroll::Follow);
    let title = if follow {
        " bytes · following ".to_string()
    } else {
        format!(
            " bytes · PAUSED ({} to follow) ",
            ui.key_label(crate::ui::action::Action::Follow)
        )
    };
    let mut title_spans = vec![Span::styled(title, theme.title)];
    if let Some(l) = &s.labels {
        // A tap: which marker is whose ("TX◂ master  RX▸ meter").
        title_spans.extend([
            Span::styled(
                format!(
                    "{} {}",
                    marker(Direction::Tx),
                    crate::sanitize::printable(&l.tx)
                ),
                theme.tx,
            ),
            Span::styled("  ", theme.title),
            Span::styled(
                format!(
                    "{} {}",
                    marker(Direction::Rx),
                    crate::sanitize::printable(&l.rx)
                ),
                theme.rx,
            ),
            Span::styled(" ", theme.title),
        ]);
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Line::from(title_spans));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let g = Geometry::for_width(inner.width);
    let rows = visible_rows(s, ui, g.bytes_per_row, inner.height as usize);
    let lines: Vec<Line> = if rows.is_empty() {
        vec![Line::styled("waiting for bytes…", theme.hint)]
    } else {
        rows.iter()
            .filter_map(|r| {
                s.runs().get(r.run).map(|run| {
                    let marked = ui
                        .marked
                        .as_ref()
                        .filter(|(d, _)| *d == run.direction)
                        .map(|(_, m)| m);
                    row_line(run, r.row, g, theme, marked)
                })
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_adapts_to_width() {
        assert_eq!(Geometry::for_width(200).bytes_per_row, 40);
        assert_eq!(Geometry::for_width(120).bytes_per_row, 16);
        assert!(Geometry::for_width(120).show_time);
        let narrow = Geometry::for_width(60);
        assert_eq!(narrow.bytes_per_row, 8);
        assert!(!narrow.show_time);
        assert_eq!(Geometry::for_width(0).bytes_per_row, 8);
        for w in 0..400 {
            let g = Geometry::for_width(w);
            assert_eq!(crate::session::RUN_CAPACITY % g.bytes_per_row, 0);
        }
    }
}
