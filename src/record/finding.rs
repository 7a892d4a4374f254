//! The records of what the session found in the bytes: `frame` (a decoded frame) and `event`
//! (a diagnosis from the knowledge base, with its knowledge id).

use std::borrow::Cow;

use serde::Serialize;

use super::Record;
use super::event::EventRecord;
use crate::decode::FrameStatus;
use crate::session::{SessionDiagnosis, SessionFrame};

/// `frame`: one decoded frame, where it lies in its direction's stream and what it says.
#[derive(Debug, Serialize)]
pub struct Frame<'a> {
    pub dir: &'static str,
    pub protocol: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub evidence: &'static str,
    pub bits: u16,
    pub start: u64,
    pub end: u64,
    pub summary: Cow<'a, str>,
    /// The frame's bytes, where the writer has them at hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<super::Hex<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_expected: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_found: Option<u32>,
}

impl Record for Frame<'_> {
    fn kind(&self) -> &'static str {
        "frame"
    }
}

/// The stable id of a frame status (`ok`, `bad_checksum`, `truncated`, `malformed`).
pub fn status_id(s: &FrameStatus) -> &'static str {
    match s {
        FrameStatus::Ok => "ok",
        FrameStatus::BadChecksum { .. } => "bad_checksum",
        FrameStatus::Truncated => "truncated",
        FrameStatus::Malformed(_) => "malformed",
    }
}

/// The record of a session frame. Its summary is read with `Frame::summary_once`, so
/// printing a frame does not keep its description.
pub fn frame(sf: &SessionFrame) -> Frame<'_> {
    let f = &sf.frame;
    let evidence = f.evidence();
    let (checksum_expected, checksum_found) = match f.status {
        FrameStatus::BadChecksum { expected, found } => (Some(expected), Some(found)),
        _ => (None, None),
    };
    Frame {
        dir: sf.direction.label(),
        protocol: f.protocol.id(),
        kind: f.kind,
        status: status_id(&f.status),
        evidence: evidence.strength.id(),
        bits: evidence.bits,
        start: f.span.start,
        end: f.span.end,
        summary: f.summary_once(),
        hex: None,
        checksum_expected,
        checksum_found,
    }
}

/// The members of a diagnosis `event` after `text`.
#[derive(Debug, Serialize)]
pub struct DiagnosisMembers {
    pub about_68: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
}

/// A diagnosis: an `event` with its knowledge id, title and what was seen.
pub type Diagnosis<'a> = EventRecord<'a, DiagnosisMembers>;

impl<M: Serialize> Record for EventRecord<'_, M> {
    fn kind(&self) -> &'static str {
        "event"
    }
}

/// The record of a session diagnosis (its time is its `first_at`).
pub fn diagnosis(d: &SessionDiagnosis) -> Diagnosis<'_> {
    let g = &d.diagnosis;
    EventRecord {
        id: &g.id,
        severity: g.severity.label(),
        title: Some(&g.title),
        text: Cow::Borrowed(&g.context),
        more: DiagnosisMembers {
            about_68: g.about_68,
            dir: g.direction.map(|d| d.label()),
            start: g.span.as_ref().map(|s| s.start),
            end: g.span.as_ref().map(|s| s.end),
        },
    }
}
