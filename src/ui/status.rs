//! The status bar: what port, with which settings, whether it is up, and the counters —
//! then the latest notice (a disconnect, a refused command, dropped bytes).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::event::{ConnectionState, on_off};
use crate::session::{NoticeLevel, Session};
use crate::ui::state::UiState;

/// "1.2 KiB", "3.4 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn modem(v: Option<bool>) -> &'static str {
    match v {
        Some(b) => on_off(b),
        None => "n/a",
    }
}

/// "● rec FILE" while recording; "recording stopped: disk full" when it had to stop.
fn recording(s: &Session, ui: &UiState) -> Span<'static> {
    match s.recorder() {
        None => Span::raw(""),
        Some(r) => match r.failed() {
            Some(why) => Span::styled(
                format!(" recording stopped: {} ", crate::sanitize::printable(&why)),
                ui.theme.status_bad,
            ),
            None => Span::styled(
                format!(" ● rec {} ", crate::sanitize::printable(r.name())),
                ui.theme.hint,
            ),
        },
    }
}

/// What a replay's end says beyond "N events played": damaged records skipped, a cut last
/// record ("end of the capture: 9 events played, 1 damaged record(s) skipped (at byte 213 …)").
fn replay_damage(reason: &str) -> Option<&str> {
    let (_, rest) = reason.split_once(" events played")?;
    let rest = rest.trim_start_matches([',', ';', ' ']);
    (!rest.is_empty()).then_some(rest)
}

/// A replay speed as shown: `4x`, or `max` for unpaced playback (speed 0, `--speed max`).
fn pace(speed: f64) -> String {
    if speed == crate::source::replay::UNPACED {
        "max".to_string()
    } else {
        format!("{speed}x")
    }
}

pub fn render(frame: &mut Frame, area: Rect, s: &Session, ui: &UiState) {
    let theme = &ui.theme;
    let (conn_text, conn_style) = match (&s.replay, &s.connection) {
        (Some(r), ConnectionState::Down { reason }) => match replay_damage(reason) {
            // Damaged or cut records are said where the user looks, not only in the log.
            Some(damage) => (
                format!(
                    "■ replay ended ({}) · {}",
                    pace(r.speed),
                    crate::sanitize::printable(damage)
                ),
                theme.status_bad,
            ),
            None => (format!("■ replay ended ({})", pace(r.speed)), theme.status),
        },
        (Some(r), _) if r.paused => (
            format!("⏸ replay paused ({}) · Space plays, . steps", pace(r.speed)),
            theme.status,
        ),
        (Some(r), _) => (format!("▶ replay {}", pace(r.speed)), theme.status_good),
        (None, ConnectionState::Up) => ("● connected".to_string(), theme.status_good),
        (None, ConnectionState::Down { .. }) => ("✖ disconnected".to_string(), theme.status_bad),
        (None, ConnectionState::Retrying { .. }) => {
            ("✖ disconnected — retrying".to_string(), theme.status_bad)
        }
    };
    let card = s.card();
    let settings = if card.is_active() {
        format!(
            "{} {}",
            card.reader.as_deref().map_or_else(
                || "no reader chosen".to_string(),
                crate::sanitize::printable
            ),
            crate::sanitize::printable(card.protocol.as_deref().unwrap_or(""))
        )
    } else {
        s.settings
            .map(|x| format!("{} {} flow {}", x.baud, x.format, x.flow.label()))
            .unwrap_or_else(|| "settings unknown".to_string())
    };
    let talking = s
        .engine()
        .and_then(|e| e.classifier.headline())
        .map(|h| format!(" {h}"))
        .unwrap_or_default();
    let line1 = Line::from(vec![
        Span::styled(
            if card.is_active() {
                format!(
                    " {} │ {} ",
                    crate::sanitize::printable(&s.source_name),
                    settings
                )
            } else {
                format!(
                    " {} │ {} │ DTR {} RTS {} ",
                    crate::sanitize::printable(&s.source_name),
                    settings,
                    modem(s.modem.dtr),
                    modem(s.modem.rts)
                )
            },
            theme.status,
        ),
        Span::styled(format!(" {conn_text} "), conn_style),
        Span::styled(talking, theme.hint_key),
        recording(s, ui),
        if ui.in_history {
            Span::styled(
                " ◀ older bytes read back from the capture · End: live ",
                theme.status_bad,
            )
        } else {
            Span::raw("")
        },
    ]);

    let c = &s.counters;
    let mut counters = if card.is_active() {
        format!(
            " APDUs {} │ errors {} │ resets {}",
            card.exchanges().len(),
            card.errors,
            card.resets
        )
    } else {
        format!(
            " RX {} {}/s │ TX {} {}/s",
            human_bytes(c.rx_bytes),
            human_bytes(s.rx_rate.rate(ui.now) as u64),
            human_bytes(c.tx_bytes),
            human_bytes(s.tx_rate.rate(ui.now) as u64),
        )
    };
    match c.line_errors {
        Some(Some(e)) => counters.push_str(&format!(
            " │ FE {} PE {} OE {} BRK {}",
            e.frame,
            e.parity,
            e.overrun + e.buf_overrun,
            e.brk
        )),
        Some(None) => counters.push_str(" │ line errors n/a"),
        None => {}
    }
    if c.reconnects > 0 {
        counters.push_str(&format!(" │ reconnects {}", c.reconnects));
    }
    let mut spans = vec![Span::styled(counters, theme.status)];
    if c.dropped_bytes > 0 {
        spans.push(Span::styled(
            format!(" dropped {} ", human_bytes(c.dropped_bytes)),
            theme.status_bad,
        ));
    }
    if c.evicted_bytes > 0 {
        spans.push(Span::styled(
            format!(" │ {} scrolled out of memory", human_bytes(c.evicted_bytes)),
            theme.status,
        ));
    }
    spans.push(Span::styled(" ", theme.status));
    let baud_hint = || {
        s.baud_watch().status_line().map(|l| {
            format!(
                " {l} — {} apply, {} scan",
                ui.key_label(crate::ui::action::Action::ApplyBaud),
                ui.key_label(crate::ui::action::Action::AutobaudScan)
            )
        })
    };
    if let Some(m) = &ui.message {
        spans.push(Span::styled(format!(" {m}"), theme.error));
    } else if let (Some(scan), true) = (&ui.scan_status, ui.scanning || ui.proposal.is_some()) {
        let apply = if ui.proposal.is_some() {
            format!(
                " — {} apply",
                ui.key_label(crate::ui::action::Action::ApplyBaud)
            )
        } else {
            String::new()
        };
        spans.push(Span::styled(format!(" {scan}{apply}"), theme.hint_key));
    } else if let Some(b) = baud_hint() {
        spans.push(Span::styled(b, theme.error));
    } else if let Some(n) = s.notices().back() {
        let style = match n.level {
            NoticeLevel::Info => theme.hint,
            NoticeLevel::Warning | NoticeLevel::Error => theme.error,
        };
        spans.push(Span::styled(
            format!(
                " {:.3}s {}",
                n.at.as_secs_f64(),
                crate::sanitize::printable(&n.text)
            ),
            style,
        ));
    }
    let line2 = Line::from(spans);
    frame.render_widget(Paragraph::new(vec![line1, line2]), area);
}
