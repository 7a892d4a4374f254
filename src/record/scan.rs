//! The records of runs hsmon drives: `baud` (an automatic baud scan) and the `script.*`
//! events of an APDU script.

use std::borrow::Cow;

use serde::Serialize;

use super::Record;
use super::event::EventRecord;
use crate::card::runner::{RunnerUpdate, StepResult};
use crate::diagnose::baud::live_scan::ScanUpdate;
use crate::diagnose::baud::scoring::Ranked as RankedCandidate;

/// One candidate setting with its score.
#[derive(Debug, Serialize)]
pub struct Ranked<'a> {
    pub baud: u32,
    pub format: String,
    /// 0..=1, rounded to three decimals.
    pub score: f64,
    pub bytes: usize,
    pub reason: &'a str,
}

fn ranked(r: &RankedCandidate) -> Ranked<'_> {
    Ranked {
        baud: r.candidate.baud.bps(),
        format: r.candidate.format.to_string(),
        score: (r.score * 1000.0).round() / 1000.0,
        bytes: r.bytes,
        reason: &r.reason,
    }
}

/// `baud`: `state` is `trying`, `scored`, `locked`, `none` or `ignored` (the port ignores the
/// rate); the members of the candidate it is about follow.
#[derive(Debug, Serialize)]
pub struct Baud<'a> {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baud: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<Vec<Ranked<'a>>>,
}

impl Record for Baud<'_> {
    fn kind(&self) -> &'static str {
        "baud"
    }
}

impl<'a> Baud<'a> {
    fn of(state: &'static str, r: Option<&'a RankedCandidate>) -> Baud<'a> {
        let r = r.map(ranked);
        Baud {
            state,
            baud: r.as_ref().map(|r| r.baud),
            score: r.as_ref().map(|r| r.score),
            bytes: r.as_ref().map(|r| r.bytes),
            reason: r.as_ref().map(|r| r.reason),
            format: r.map(|r| r.format),
            ranking: None,
        }
    }
}

/// The record of a scan update.
pub fn baud(u: &ScanUpdate) -> Baud<'_> {
    match u {
        ScanUpdate::Trying(c) => Baud {
            baud: Some(c.baud.bps()),
            format: Some(c.format.to_string()),
            ..Baud::of("trying", None)
        },
        ScanUpdate::Scored(r) => Baud::of("scored", Some(r)),
        ScanUpdate::Finished { locked, ranking } => Baud {
            ranking: Some(ranking.iter().map(ranked).collect()),
            ..Baud::of(
                if locked.is_some() { "locked" } else { "none" },
                locked.as_ref(),
            )
        },
        ScanUpdate::RateIgnored { ranking } => Baud {
            reason: Some(crate::diagnose::baud::live_scan::RATE_IGNORED_TEXT),
            ranking: Some(ranking.iter().map(ranked).collect()),
            ..Baud::of("ignored", None)
        },
    }
}

/// The members of the `script.*` events after `text`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ScriptMembers<'a> {
    /// `script.step`: the script line, the status word, the expectation, whether it held.
    Step {
        line: usize,
        sw: Option<String>,
        expect: Option<&'a str>,
        ok: bool,
    },
    /// `script.finished`.
    Finished { failures: usize },
}

/// A `script.step` or `script.finished` event.
pub type Script<'a> = EventRecord<'a, ScriptMembers<'a>>;

/// The event of a script update: `script.step` (info when it met its expectation or had none
/// and succeeded, error otherwise) or `script.finished`.
pub fn script(u: &RunnerUpdate) -> Script<'_> {
    match u {
        RunnerUpdate::StepDone {
            line,
            result,
            expect,
            ..
        } => {
            let failed = result.is_failure();
            let (sw, text) = match result {
                StepResult::Sw { sw, expected } => (
                    Some(format!("{sw:04X}")),
                    match (expected, expect) {
                        (Some(true), Some(e)) => format!("line {line}: {sw:04X} as expected ({e})"),
                        (Some(false), Some(e)) => format!("line {line}: {sw:04X}, expected {e}"),
                        _ => format!("line {line}: {sw:04X}"),
                    },
                ),
                StepResult::Reset => (None, format!("line {line}: card reset")),
                StepResult::Failed(why) => (None, format!("line {line}: {why}")),
            };
            EventRecord {
                id: "script.step",
                severity: if failed { "error" } else { "info" },
                title: None,
                text: Cow::Owned(text),
                more: ScriptMembers::Step {
                    line: *line,
                    sw,
                    expect: expect.as_deref(),
                    ok: !failed,
                },
            }
        }
        RunnerUpdate::Finished { failures } => EventRecord {
            id: "script.finished",
            severity: if *failures > 0 { "error" } else { "info" },
            title: None,
            text: Cow::Owned(format!("script finished: {failures} step(s) failed")),
            more: ScriptMembers::Finished {
                failures: *failures,
            },
        },
    }
}
