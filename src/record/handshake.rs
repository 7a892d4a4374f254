//! The records of a handshake run: the `handshake.step` events while it runs, and the final
//! `handshake` report.

use std::borrow::Cow;

use serde::Serialize;

use super::event::EventRecord;
use super::{Hex, Record, millis};
use crate::diagnose::observation::Observation;
use crate::event::Timestamp;
use crate::handshake::expect::diff_text;
use crate::handshake::report::{status_label, step_line};
use crate::handshake::runner::{
    Divergence as RunDivergence, Explained, Outcome, Runner, StepRecord, StepStatus,
};

/// The members of a `handshake.step` event after `text`.
#[derive(Debug, Serialize)]
pub struct StepMembers<'a> {
    pub profile: &'a str,
    pub step: &'a str,
    pub ok: bool,
    pub sent: Hex<'a>,
    pub got: Hex<'a>,
    pub elapsed_ms: Option<f64>,
}

/// A `handshake.step` event.
pub type StepEvent<'a> = EventRecord<'a, StepMembers<'a>>;

/// The `handshake.step` event of the step `index` that just ended.
pub fn step_event(runner: &Runner, index: usize) -> Option<StepEvent<'_>> {
    let r = runner.records().get(index)?;
    let ok = r.status == StepStatus::Ok;
    Some(EventRecord {
        id: "handshake.step",
        severity: if ok { "info" } else { "error" },
        title: None,
        text: Cow::Owned(step_line(r)),
        more: StepMembers {
            profile: &runner.profile().name,
            step: &r.name,
            ok,
            sent: Hex(&r.sent),
            got: Hex(&r.got),
            elapsed_ms: millis(r.elapsed),
        },
    })
}

/// One step of the report.
#[derive(Debug, Serialize)]
pub struct Step<'a> {
    pub name: &'a str,
    pub status: &'static str,
    pub sent: Hex<'a>,
    pub expected: Option<&'a str>,
    pub got: Hex<'a>,
    pub echo: Option<Hex<'a>>,
    pub diff: String,
    pub alternative: Option<usize>,
    pub attempts: u32,
    pub sent_at: Option<f64>,
    pub latency_ms: Option<f64>,
    pub elapsed_ms: Option<f64>,
    pub notes: &'a [String],
}

/// A step of the report.
pub fn step(r: &StepRecord) -> Step<'_> {
    Step {
        name: &r.name,
        status: status_label(r.status),
        sent: Hex(&r.sent),
        expected: r.expected.as_deref(),
        got: Hex(&r.got),
        echo: r.echo.as_deref().map(Hex),
        diff: diff_text(&r.diff),
        alternative: r.alternative,
        attempts: r.attempts,
        sent_at: r.sent_at.map(|t| t.as_secs_f64()),
        latency_ms: millis(r.latency),
        elapsed_ms: millis(r.elapsed),
        notes: &r.notes,
    }
}

/// What was observed where the run diverged.
#[derive(Debug, Serialize)]
#[serde(tag = "observation")]
pub enum Seen<'a> {
    #[serde(rename = "handshake")]
    Handshake {
        profile: &'a str,
        step: &'a str,
        sent: Hex<'a>,
        expected: Hex<'a>,
        got: Hex<'a>,
    },
    #[serde(rename = "sw")]
    StatusWord {
        sw: String,
        cla: Option<String>,
        ins: Option<String>,
    },
    /// Any other observation: its kind only.
    #[serde(untagged)]
    Other { observation: &'static str },
}

fn seen(obs: &Observation) -> Seen<'_> {
    match obs {
        Observation::Handshake(h) => Seen::Handshake {
            profile: &h.profile,
            step: &h.step,
            sent: Hex(&h.sent),
            expected: Hex(&h.expected),
            got: Hex(&h.got),
        },
        Observation::StatusWord(sw) => Seen::StatusWord {
            sw: format!("{:04X}", sw.sw),
            cla: sw.cla.map(|c| format!("{c:02X}")),
            ins: sw.ins.map(|c| format!("{c:02X}")),
        },
        other => Seen::Other {
            observation: other.kind().id(),
        },
    }
}

/// A knowledge entry explaining the divergence.
#[derive(Debug, Serialize)]
pub struct Explanation<'a> {
    pub id: &'a str,
    pub severity: &'static str,
    pub title: &'a str,
    pub declared: bool,
    pub meaning: &'a str,
    pub causes: &'a [String],
    pub fixes: &'a [String],
}

fn explanation(e: &Explained) -> Explanation<'_> {
    Explanation {
        id: &e.id,
        severity: e.severity.label(),
        title: &e.title,
        declared: e.declared,
        meaning: &e.meaning,
        causes: &e.causes,
        fixes: &e.fixes,
    }
}

/// Where and how the run left the profile.
#[derive(Debug, Serialize)]
pub struct Divergence<'a> {
    pub step: Option<&'a str>,
    pub index: usize,
    pub kind: &'static str,
    pub text: &'a str,
    pub observation: Seen<'a>,
    pub explanation: Vec<Explanation<'a>>,
}

fn divergence<'a>(runner: &'a Runner, d: &'a RunDivergence) -> Divergence<'a> {
    Divergence {
        step: runner.records().get(d.step).map(|r| r.name.as_str()),
        index: d.step,
        kind: d.kind.id(),
        text: &d.text,
        observation: seen(&d.observation),
        explanation: d.explanation.iter().map(explanation).collect(),
    }
}

/// `handshake`: the final report of a run.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub profile: &'a str,
    pub transport: &'static str,
    pub source: &'a str,
    pub outcome: &'static str,
    pub ok: bool,
    pub exit: u8,
    pub steps: Vec<Step<'a>>,
    pub divergence: Option<Divergence<'a>>,
    pub error: Option<&'a str>,
    pub notes: &'a [String],
}

impl Record for Report<'_> {
    fn kind(&self) -> &'static str {
        "handshake"
    }
}

/// The final report. `error` is set when the run never started (the device could not be
/// opened).
pub fn report<'a>(runner: &'a Runner, error: Option<&'a str>) -> Report<'a> {
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
    Report {
        profile: &p.name,
        transport: p.transport.label(),
        source: &p.source,
        outcome: label,
        ok: matches!(outcome, Some(Outcome::Success)),
        exit: code,
        steps: runner.records().iter().map(step).collect(),
        divergence: match outcome {
            Some(Outcome::Diverged(d)) => Some(divergence(runner, d)),
            _ => None,
        },
        error,
        notes: &runner.notes,
    }
}

/// The report as a JSON line, at `at`.
pub fn write_report<W: std::io::Write + ?Sized>(
    out: &mut W,
    runner: &Runner,
    at: Timestamp,
    error: Option<&str>,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    super::write(
        out,
        &report(runner, error),
        &super::Time::at(at, stamp),
        None,
        stamp,
    )
}

/// The `handshake.step` event of step `index` as a JSON line (nothing for no such step).
pub fn write_step_event<W: std::io::Write + ?Sized>(
    out: &mut W,
    runner: &Runner,
    index: usize,
    at: Timestamp,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    match step_event(runner, index) {
        Some(e) => super::write(out, &e, &super::Time::at(at, stamp), None, stamp),
        None => Ok(()),
    }
}
/// The members of the `handshake.step` event of step `index` (see
/// [`step_event`]), for the text output: its `severity` and `text`.
pub fn step_event_json(runner: &Runner, index: usize) -> Option<serde_json::Value> {
    serde_json::to_value(step_event(runner, index)?).ok()
}
