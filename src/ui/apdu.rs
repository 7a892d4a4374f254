//! The card pane (in place of the bytes pane in a card session): the reader and ATR on top,
//! the script's steps when one is loaded, then the APDU exchanges — each command summarised
//! (CLA, INS named, P1 P2, Lc/Le), its response data, the status word with its meaning and
//! the time the card took; GET RESPONSE / Le retries indented under their command.
//!
//! ```text
//! ┌ card · Virtual PCD 00 00 · T=0 · shared ─────────────────────────────────┐
//! │ ATR 3B 02 14 50 — T=0, Fi 372 Di 1 …                                      │
//! │ script select.apdu: step 3 of 7 · n next · r resend · c run to failure    │
//! │  ✓ 2  00 A4 04 00 07 …                        # expect 9000 → 9000         │
//! │ ▶ 5  00 B0 00 00 10                                                        │
//! │ 1.204 script:2  00 A4 SELECT, P1 04 P2 00, Lc 7    → 61 10    0.8 ms       │
//! │        ↳ get-response 00 C0 00 00 10               ← 6F 0E …  9000  0.4 ms │
//! └────────────────────────────────────────────────────────────────────────────┘
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::card::log::CardExchange;
use crate::card::runner::{ScriptRunner, StepResult};
use crate::card::script::ScriptStep;
use crate::decode::iso7816::sw::{StatusWord, lookup};
use crate::hex;
use crate::sanitize::printable;
use crate::session::Session;
use crate::ui::state::{Focus, UiState};

/// Script steps shown around the cursor.
const SCRIPT_ROWS: usize = 5;

/// "9000" in the theme's colour for its class: success, warning (62/63/61), error.
fn sw_style(ui: &UiState, sw: Option<u16>) -> Style {
    match sw.map(|s| s >> 8) {
        Some(0x90) | Some(0x61) => ui.theme.status_good,
        Some(0x62) | Some(0x63) | Some(0x6C) => ui.theme.hint_key,
        _ => ui.theme.error,
    }
}

/// The header lines: reader, ATR, the last reset and what it lost.
pub fn header_lines(
    s: &Session,
    ui: &UiState,
    script: Option<&ScriptRunner>,
) -> Vec<Line<'static>> {
    let c = s.card();
    let mut out = Vec::new();
    match (&c.reader, c.connected) {
        (Some(r), true) => out.push(Line::from(vec![
            Span::styled(format!(" {} ", printable(r)), ui.theme.title),
            Span::raw(format!(
                "· {}{}",
                c.protocol.as_deref().unwrap_or("?"),
                if c.in_transaction {
                    " · in a transaction"
                } else {
                    ""
                }
            )),
        ])),
        (Some(r), false) => out.push(Line::styled(
            format!(" {} · no card connected", printable(r)),
            ui.theme.error,
        )),
        (None, _) => out.push(Line::styled(
            if c.readers.is_empty() {
                " waiting for a reader (plug one in, or start pcscd)".to_string()
            } else {
                format!(
                    " readers: {} · waiting for a card",
                    printable(&c.readers.join(", "))
                )
            },
            ui.theme.hint,
        )),
    }
    if let Some(atr) = &c.atr {
        let summary = crate::decode::iso7816::atr::parse(atr)
            .map(|a| a.summary())
            .unwrap_or_else(|e| format!("not a valid ATR: {e}"));
        out.push(Line::from(vec![
            Span::styled(" ATR ", ui.theme.hint_key),
            Span::raw(format!("{} — {}", hex::spaced(atr), printable(&summary))),
        ]));
        if let Some(name) = crate::card::describe::card_name(atr) {
            out.push(Line::raw(format!("     {}", printable(&name))));
        }
    }
    if let Some(r) = &c.last_reset {
        out.push(Line::styled(
            format!(
                " {:.3}s card reset {}",
                r.at.as_secs_f64(),
                if r.foreign {
                    "by another application (SCARD_W_RESET_CARD): the APDU was not sent; hsmon reconnected with SCARD_LEAVE_CARD"
                } else {
                    "as asked (SCARD_RESET_CARD)"
                },
            ),
            ui.theme.error,
        ));
        out.push(Line::styled(
            format!(
                "   lost: {}{}",
                r.lost.describe(),
                if script.is_some() && r.foreign {
                    format!(
                        " · {} replays the script from the start",
                        ui.key_label(crate::ui::action::Action::ReplayScript)
                    )
                } else {
                    String::new()
                }
            ),
            ui.theme.error,
        ));
    }
    out
}

/// The script block: title and the steps around the cursor.
pub fn script_lines(ui: &UiState, script: Option<&ScriptRunner>) -> Vec<Line<'static>> {
    let Some(r) = script else {
        return Vec::new();
    };
    let n = r.steps().len();
    let pos = r.position();
    let state = if r.is_busy() {
        "waiting for the card".to_string()
    } else if r.is_finished() || pos >= n {
        format!("done, {} failed", r.failures())
    } else {
        format!("step {} of {n}", pos + 1)
    };
    let key = |a| ui.key_label(a);
    use crate::ui::action::Action as A;
    let mut out = vec![Line::from(vec![
        Span::styled(format!(" script {} ", printable(&r.name)), ui.theme.title),
        Span::raw(format!(
            "· {state}{} · {} next {} resend {} edit {} run {} replay",
            if r.transaction {
                " · in transactions"
            } else {
                ""
            },
            key(A::StepNext),
            key(A::Resend),
            key(A::EditApdu),
            key(A::RunToFailure),
            key(A::ReplayScript),
        )),
    ])];
    let first = pos
        .saturating_sub(SCRIPT_ROWS / 2)
        .min(n.saturating_sub(SCRIPT_ROWS));
    for (i, step) in r.steps().iter().enumerate().skip(first).take(SCRIPT_ROWS) {
        let mark = if i == pos && !r.is_finished() {
            "▶"
        } else {
            match r.result(i) {
                Some(res) if res.is_failure() => "✗",
                Some(_) => "✓",
                None => " ",
            }
        };
        let (what, expect) = match step {
            ScriptStep::Apdu { bytes, expect, .. } => (
                hex::spaced_cut(bytes, 16),
                expect
                    .as_ref()
                    .map(|e| format!("  # expect {e}"))
                    .unwrap_or_default(),
            ),
            ScriptStep::Reset { .. } => ("reset".to_string(), String::new()),
            ScriptStep::Exit { .. } => ("exit".to_string(), String::new()),
        };
        let result = match r.result(i) {
            Some(StepResult::Sw { sw, .. }) => format!(" → {sw:04X}"),
            Some(StepResult::Reset) => " → reset".to_string(),
            Some(StepResult::Failed(why)) => format!(" → {}", printable(why)),
            None => String::new(),
        };
        let style = match r.result(i) {
            Some(res) if res.is_failure() => ui.theme.error,
            Some(_) => ui.theme.status_good,
            None => Style::default(),
        };
        out.push(Line::from(vec![
            Span::styled(format!(" {mark} {:>4}  ", step.line()), style),
            Span::raw(what),
            Span::styled(expect, ui.theme.hint),
            Span::styled(result, style),
        ]));
    }
    out
}

/// One exchange as a line.
fn exchange_line(e: &CardExchange, selected: bool, ui: &UiState) -> Line<'static> {
    let x = &e.exchange;
    let sw = x.sw();
    let lead = if e.parent.is_some() {
        format!("        ↳ {:<12} ", x.origin.label())
    } else {
        format!("{:>9.3} {:<12} ", e.at.as_secs_f64(), x.origin.label())
    };
    let command = if e.parent.is_some() {
        hex::spaced_cut(&x.command, 8)
    } else {
        crate::card::describe::command_summary(&x.command)
    };
    let answer = match sw {
        None => "no response".to_string(),
        Some(w) => {
            let data = x.data();
            let meaning = lookup(StatusWord(w)).meaning;
            if data.is_empty() {
                format!("{w:04X} {meaning}")
            } else {
                format!("{} · {w:04X} {meaning}", hex::spaced_cut(data, 8))
            }
        }
    };
    let style = if selected {
        ui.theme.focus
    } else {
        Style::default()
    };
    Line::from(vec![
        Span::styled(lead, ui.theme.address),
        Span::styled(printable(&command), style),
        Span::raw("  → "),
        Span::styled(printable(&answer), sw_style(ui, sw)),
        Span::styled(
            format!("  {:.1} ms", x.duration.as_secs_f64() * 1000.0),
            ui.theme.hint,
        ),
    ])
}

pub fn render(
    frame: &mut Frame,
    area: Rect,
    s: &Session,
    ui: &UiState,
    script: Option<&ScriptRunner>,
) {
    let focused = ui.focus == Focus::Hex;
    let c = s.card();
    let title = format!(
        " card · {}{} ",
        counted(c.exchanges().len() as u64, "exchange"),
        if c.errors > 0 {
            format!(" · {}", counted(c.errors, "error"))
        } else {
            String::new()
        }
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if focused {
            ui.theme.focus
        } else {
            ui.theme.border
        })
        .title(Span::styled(title, ui.theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let mut lines = header_lines(s, ui, script);
    lines.extend(script_lines(ui, script));
    let room = (inner.height as usize).saturating_sub(lines.len());
    let list = c.exchanges();
    // The selected exchange stays in view; otherwise the newest are shown.
    let end = match ui
        .apdu_sel
        .and_then(|seq| list.iter().position(|e| e.seq == seq))
    {
        Some(i) => (i + 1).max(room.min(list.len())).min(list.len()),
        None => list.len(),
    };
    let start = end.saturating_sub(room);
    for e in list.range(start..end) {
        lines.push(exchange_line(e, ui.apdu_sel == Some(e.seq), ui));
    }
    if list.is_empty() && room > 0 {
        lines.push(Line::styled(
            format!(
                " no exchanges yet · {} sends an APDU (hex){}",
                ui.key_label(crate::ui::action::Action::OpenSend),
                if script.is_some() {
                    format!(
                        " · {} sends the script's next step",
                        ui.key_label(crate::ui::action::Action::StepNext)
                    )
                } else {
                    String::new()
                }
            ),
            ui.theme.hint,
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The detail overlay of one exchange: the parsed command, the response, the status word's
/// meaning and fix, and the knowledge base's explanation for an error.
pub fn detail_lines(s: &Session, ui: &UiState, seq: u64) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(e) = s.card().get(seq) else {
        return vec![Line::raw("this exchange left memory")];
    };
    let x = &e.exchange;
    out.push(Line::styled(
        format!(
            "{:.3}s · {} · {:.2} ms in the card",
            e.at.as_secs_f64(),
            x.origin.label(),
            x.duration.as_secs_f64() * 1000.0
        ),
        ui.theme.title,
    ));
    out.push(Line::raw(format!("command  {}", hex::spaced(&x.command))));
    let frame = crate::decode::iso7816::apdu::command_frame(0, &x.command);
    out.push(Line::raw(format!(
        "         {}",
        printable(frame.summary())
    )));
    for f in frame.fields() {
        out.push(Line::from(vec![
            Span::styled(format!("  {}", printable(&f.name)), ui.theme.hint_key),
            Span::raw(format!(": {}", printable(&f.value))),
        ]));
        for ch in &f.children {
            out.push(Line::raw(format!(
                "      {}: {}",
                printable(&ch.name),
                printable(&ch.value)
            )));
        }
    }
    out.push(Line::raw(""));
    match x.sw() {
        None => out.push(Line::styled(
            "no response: the transmit failed (the PC/SC error is in the events pane)",
            ui.theme.error,
        )),
        Some(w) => {
            let data = x.data();
            out.push(Line::raw(format!(
                "response {} data bytes{}",
                data.len(),
                if data.is_empty() {
                    String::new()
                } else {
                    format!(": {}", hex::spaced(data))
                }
            )));
            let info = lookup(StatusWord(w));
            out.push(Line::styled(
                format!("SW {}", printable(&info.summary())),
                sw_style(ui, Some(w)),
            ));
            if let Some(h) = info.hint {
                out.push(Line::raw(format!("fix: {h}")));
            }
            if w != 0x9000 {
                let id = StatusWord(w).knowledge_id();
                if let Some(entry) = s.engine().and_then(|en| en.knowledge().get(&id)) {
                    out.push(Line::raw(""));
                    for l in entry.render_text().lines() {
                        out.push(Line::raw(printable(l)));
                    }
                }
            }
        }
    }
    out
}

/// The ATR panel (the frames pane's place in a card session): the full parse as a field tree,
/// and the card's name where pcsc-tools' list knows it.
pub fn render_atr(frame: &mut Frame, area: Rect, s: &Session, ui: &UiState) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(ui.theme.border)
        .title(Span::styled(" ATR ", ui.theme.title));
    let mut lines = Vec::new();
    match &s.card().atr {
        None => lines.push(Line::styled("no card yet", ui.theme.hint)),
        Some(atr) => {
            lines.push(Line::raw(hex::spaced(atr)));
            if let Some(name) = crate::card::describe::card_name(atr) {
                lines.push(Line::styled(printable(&name), ui.theme.title));
            }
            let f = crate::decode::iso7816::atr::frame(0, atr);
            lines.push(Line::raw(printable(f.summary())));
            fn walk(fields: &[crate::decode::Field], depth: usize, out: &mut Vec<Line<'static>>) {
                for fl in fields {
                    out.push(Line::raw(format!(
                        "{}{}: {}",
                        "  ".repeat(depth),
                        printable(&fl.name),
                        printable(&fl.value)
                    )));
                    walk(&fl.children, depth + 1, out);
                }
            }
            walk(f.fields(), 0, &mut lines);
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: false }),
        area,
    );
}

/// "1 error", "2 errors".
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_said_in_the_singular_for_one() {
        assert_eq!(super::counted(1, "error"), "1 error");
        assert_eq!(super::counted(2, "error"), "2 errors");
        assert_eq!(super::counted(0, "exchange"), "0 exchanges");
    }
}
