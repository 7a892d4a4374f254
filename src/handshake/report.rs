//! A handshake run for people: the step lines and the final text report. Pure formatting. The
//! JSON records (`handshake.step` events, the `handshake` report) are
//! [`crate::record::handshake`]'s.

use super::expect::diff_text;
use super::runner::{Outcome, Runner, StepRecord, StepStatus};
use crate::hex;
use crate::sanitize::printable;

/// Most fixes printed per explanation in the text report (the JSON carries them all).
const TEXT_FIXES: usize = 4;

pub fn status_label(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Pending => "pending",
        StepStatus::Running => "running",
        StepStatus::Ok => "ok",
        StepStatus::Diverged => "diverged",
    }
}

/// One line per step: `✓ init: sent 7F, expected 79, got 79 in 3 ms`.
pub fn step_line(r: &StepRecord) -> String {
    let mark = match r.status {
        StepStatus::Ok => "✓",
        StepStatus::Diverged => "✖",
        StepStatus::Running => "▸",
        StepStatus::Pending => "·",
    };
    let mut s = format!("{mark} {}", printable(&r.name));
    if !r.sent.is_empty() {
        s.push_str(&format!(": sent {}", shorten(&hex::spaced(&r.sent), 48)));
    }
    if let Some(e) = &r.expected {
        s.push_str(&format!(", expected {}", shorten(e, 60)));
        match r.status {
            StepStatus::Ok | StepStatus::Diverged if r.got.is_empty() => {
                s.push_str(", got nothing");
            }
            StepStatus::Ok | StepStatus::Diverged => {
                s.push_str(&format!(", got {}", shorten(&diff_text(&r.diff), 72)));
            }
            _ => {}
        }
    }
    if let Some(e) = r.elapsed {
        s.push_str(&format!(" in {:.1} ms", e.as_secs_f64() * 1000.0));
    }
    if r.attempts > 1 {
        s.push_str(&format!(" ({} attempts)", r.attempts));
    }
    s
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The final report as text: a headline, one line per step with its notes, then the
/// divergence and its explanation (the best entry in full, the others by title).
pub fn text_report(runner: &Runner, error: Option<&str>) -> String {
    let p = runner.profile();
    let mut out = String::new();
    let head = match (runner.outcome(), error) {
        (Some(Outcome::Success), _) => "ok".to_string(),
        (Some(Outcome::Diverged(d)), _) => format!(
            "diverged at step \"{}\" ({})",
            runner
                .records()
                .get(d.step)
                .map_or("?", |r| r.name.as_str()),
            d.kind.id()
        ),
        (Some(Outcome::DeviceError(e)), _) => format!("device error: {e}"),
        (None, Some(e)) => format!("device error: {e}"),
        (None, None) => "interrupted before the end".to_string(),
    };
    out.push_str(&format!("handshake {}: {head}\n", p.name));
    for r in runner.records() {
        out.push_str(&format!("  {}\n", step_line(r)));
        for n in &r.notes {
            out.push_str(&format!("      {}\n", printable(n)));
        }
    }
    for n in &runner.notes {
        out.push_str(&format!("  note: {}\n", printable(n)));
    }
    if let Some(Outcome::Diverged(d)) = runner.outcome() {
        out.push_str(&format!("{}\n", printable(&d.text)));
        for (i, e) in d.explanation.iter().enumerate() {
            out.push_str(&format!(
                "{} {} [{}] {}\n",
                if i == 0 { "→" } else { " also:" },
                e.id,
                e.severity.label(),
                e.title
            ));
            if i == 0 {
                for para in e.meaning.split("\n\n") {
                    let para: Vec<&str> = para.split_whitespace().collect();
                    out.push_str(&format!("  {}\n", para.join(" ")));
                }
                if !e.fixes.is_empty() {
                    out.push_str("  What to do:\n");
                    for (n, f) in e.fixes.iter().take(TEXT_FIXES).enumerate() {
                        out.push_str(&format!("    {}. {f}\n", n + 1));
                    }
                }
            }
        }
    }
    // Profile and knowledge text may come from the user's files, an error from the OS.
    crate::sanitize::printable_lines(&out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::diagnose::knowledge::Knowledge;
    use crate::event::{Event, TimedEvent};
    use crate::handshake::profile::Profiles;
    use std::sync::Arc;
    use std::time::Duration;

    /// The records as they were built before `crate::record` (as `serde_json::Value`s): the
    /// reference the record structs must match byte for byte.
    mod reference {
        use crate::diagnose::observation::Observation;
        use crate::event::Timestamp;
        use crate::handshake::expect::diff_text;
        use crate::handshake::report::{status_label, step_line};
        use crate::handshake::runner::{
            Divergence, Explained, Outcome, Runner, StepRecord, StepStatus,
        };
        use crate::hex::spaced as hex_string;
        use serde_json::{Value, json};

        pub fn millis(d: Option<std::time::Duration>) -> Option<f64> {
            d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
        }

        /// One step as JSON.
        pub fn step_json(r: &StepRecord) -> Value {
            json!({
                "name": r.name,
                "status": status_label(r.status),
                "sent": hex_string(&r.sent),
                "expected": r.expected,
                "got": hex_string(&r.got),
                "echo": r.echo.as_ref().map(|e| hex_string(e)),
                "diff": diff_text(&r.diff),
                "alternative": r.alternative,
                "attempts": r.attempts,
                "sent_at": r.sent_at.map(|t| t.as_secs_f64()),
                "latency_ms": millis(r.latency),
                "elapsed_ms": millis(r.elapsed),
                "notes": r.notes,
            })
        }

        pub fn observation_json(obs: &Observation) -> Value {
            match obs {
                Observation::Handshake(h) => json!({
                    "observation": "handshake",
                    "profile": h.profile, "step": h.step,
                    "sent": hex_string(&h.sent), "expected": hex_string(&h.expected),
                    "got": hex_string(&h.got),
                }),
                Observation::StatusWord(sw) => json!({
                    "observation": "sw",
                    "sw": format!("{:04X}", sw.sw),
                    "cla": sw.cla.map(|c| format!("{c:02X}")),
                    "ins": sw.ins.map(|c| format!("{c:02X}")),
                }),
                other => json!({ "observation": other.kind().id() }),
            }
        }

        pub fn explained_json(e: &Explained) -> Value {
            json!({
                "id": e.id, "severity": e.severity.label(), "title": e.title,
                "declared": e.declared, "meaning": e.meaning,
                "causes": e.causes, "fixes": e.fixes,
            })
        }

        pub fn divergence_json(runner: &Runner, d: &Divergence) -> Value {
            json!({
                "step": runner.records().get(d.step).map(|r| r.name.clone()),
                "index": d.step,
                "kind": d.kind.id(),
                "text": d.text,
                "observation": observation_json(&d.observation),
                "explanation": d.explanation.iter().map(explained_json).collect::<Vec<_>>(),
            })
        }

        /// The final report as one JSON record. `error` is set when the run never started (the
        /// device could not be opened).
        pub fn json_report(runner: &Runner, at: Timestamp, error: Option<&str>) -> Value {
            let p = runner.profile();
            let outcome = runner.outcome();
            let (label, code) = match (outcome, error) {
                (Some(o), _) => (o.label(), o.exit_code()),
                (None, Some(_)) => ("device_error", crate::exit::DEVICE),
                (None, None) => ("interrupted", crate::exit::EXPECTATION_FAILED),
            };
            let error = match outcome {
                Some(Outcome::DeviceError(e)) => Some(e.as_str()),
                _ => error,
            };
            json!({
                "type": "handshake",
                "t": at.as_secs_f64(),
                "profile": p.name,
                "transport": p.transport.label(),
                "source": p.source,
                "outcome": label,
                "ok": matches!(outcome, Some(Outcome::Success)),
                "exit": code,
                "steps": runner.records().iter().map(step_json).collect::<Vec<_>>(),
                "divergence": match outcome {
                    Some(Outcome::Diverged(d)) => divergence_json(runner, d),
                    _ => Value::Null,
                },
                "error": error,
                "notes": runner.notes,
            })
        }

        /// A `handshake.step` event record for a step that just ended.
        pub fn step_event_json(runner: &Runner, index: usize, at: Timestamp) -> Option<Value> {
            let r = runner.records().get(index)?;
            let ok = r.status == StepStatus::Ok;
            Some(json!({
                "type": "event", "t": at.as_secs_f64(), "id": "handshake.step",
                "severity": if ok { "info" } else { "error" },
                "text": step_line(r),
                "profile": runner.profile().name,
                "step": r.name, "ok": ok,
                "sent": hex_string(&r.sent), "got": hex_string(&r.got),
                "elapsed_ms": millis(r.elapsed),
            }))
        }
    }

    /// The report and step event as the record writer writes them and as the reference
    /// `Value`s, stamped, wrote them.
    fn both_ways(r: &Runner, error: Option<&str>) -> [(String, String); 2] {
        let stamp = crate::stamp::Stamp {
            start_unix_ns: 1_700_000_000_000_000_000,
            labels: vec![("site".into(), "lab\u{202e}".into())],
        };
        let at = Duration::from_millis(100);
        let line = |v: serde_json::Value| {
            let mut out = Vec::new();
            crate::sanitize::write_json_line(&mut out, &crate::stamp::stamp_value(v, &stamp))
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        let mut report = Vec::new();
        crate::record::handshake::write_report(&mut report, r, at, error, &stamp).unwrap();
        let mut step = Vec::new();
        crate::record::handshake::write_step_event(&mut step, r, 0, at, &stamp).unwrap();
        [
            (
                String::from_utf8(report).unwrap(),
                line(reference::json_report(r, at, error)),
            ),
            (
                String::from_utf8(step).unwrap(),
                reference::step_event_json(r, 0, at)
                    .map(line)
                    .unwrap_or_default(),
            ),
        ]
    }

    fn ev(ms: u64, event: Event) -> TimedEvent {
        TimedEvent::new(Duration::from_millis(ms), event)
    }

    fn stm32_text_run() -> Runner {
        let k = Arc::new(Knowledge::embedded().unwrap());
        let p = Profiles::built_in().unwrap().get("stm32").unwrap().clone();
        let settings = p.line_settings().unwrap();
        let mut r = Runner::new(p, Some(k), Duration::ZERO);
        r.on_event(&ev(
            0,
            Event::LineSettings {
                settings,
                modem: Default::default(),
            },
        ));
        r.on_event(&ev(1, Event::Tx(vec![0x7F])));
        r.on_event(&ev(4, Event::Rx(b"hello\r\n".to_vec())));
        r.poll(Duration::from_millis(100));
        r
    }

    #[test]
    fn the_json_report_carries_steps_divergence_and_explanation() {
        let r = stm32_text_run();
        for (got, want) in both_ways(&r, None) {
            assert_eq!(got, want);
        }
        let v: serde_json::Value =
            serde_json::from_str(both_ways(&r, None)[0].0.trim_end()).unwrap();
        assert_eq!(v["type"], "handshake");
        assert_eq!(v["outcome"], "diverged");
        assert_eq!(v["exit"], 1);
        assert_eq!(v["ok"], false);
        assert_eq!(v["steps"][0]["status"], "diverged");
        assert_eq!(v["steps"][0]["got"], "68 65 6C 6C 6F 0D 0A");
        assert_eq!(v["steps"][0]["diff"], "68≠79 +65 +6C +6C +6F +0D +0A");
        assert_eq!(v["steps"][0]["latency_ms"], 3.0);
        assert_eq!(v["steps"][1]["status"], "pending");
        assert_eq!(v["divergence"]["kind"], "text");
        assert_eq!(v["divergence"]["step"], "init");
        assert_eq!(
            v["divergence"]["observation"]["got"],
            "68 65 6C 6C 6F 0D 0A"
        );
        assert_eq!(v["divergence"]["observation"]["expected"], "79");
        assert_eq!(
            v["divergence"]["explanation"][0]["id"],
            "stm32.text_instead_of_ack"
        );
        assert_eq!(v["divergence"]["explanation"][0]["declared"], true);
        let e = crate::record::handshake::step_event_json(&r, 0).unwrap();
        assert_eq!(
            (e["id"].as_str(), e["ok"].as_bool()),
            (Some("handshake.step"), Some(false))
        );
    }

    #[test]
    fn the_text_report_explains_the_divergence() {
        let r = stm32_text_run();
        let t = text_report(&r, None);
        assert!(
            t.starts_with("handshake stm32: diverged at step \"init\" (text)\n"),
            "{t}"
        );
        assert!(
            t.contains("✖ init: sent 7F, expected 79, got 68≠79 +65"),
            "{t}"
        );
        assert!(t.contains("· get: sent 00 FF"), "{t}");
        assert!(t.contains("→ stm32.text_instead_of_ack [error]"), "{t}");
        assert!(t.contains("Hold BOOT0 high and reset"), "{t}");
    }

    #[test]
    fn a_run_that_never_started_reports_the_device_error() {
        let k = Arc::new(Knowledge::embedded().unwrap());
        let p = Profiles::built_in().unwrap().get("mbus").unwrap().clone();
        let r = Runner::new(p, Some(k), Duration::ZERO);
        let [(got, want), _] = both_ways(&r, Some("/dev/ttyX: no such serial port"));
        assert_eq!(got, want);
        let v: serde_json::Value = serde_json::from_str(got.trim_end()).unwrap();
        assert_eq!(
            (v["outcome"].as_str(), v["exit"].as_u64()),
            (Some("device_error"), Some(3))
        );
        assert_eq!(v["error"], "/dev/ttyX: no such serial port");
        assert!(text_report(&r, Some("gone")).contains("device error: gone"));
    }
}
