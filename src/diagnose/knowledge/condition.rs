//! The condition language of `when`: one alternative is an observation kind plus tests on its
//! fields (hex patterns with `X` nibbles and `!` negation, names and globs, numeric bounds,
//! flags), each scoring what it matched for the ranking.

use crate::decode::frame::{FrameStatus, Protocol};
use crate::diagnose::observation::{MAX_OBSERVED_BYTES, Observation, ObservationKind, is_text};
use crate::event::Direction;

use super::{FrameSlot, SCORE_BASE, SCORE_BOUND, SCORE_FLAG, SCORE_NAME, SCORE_NEGATED};

/// One alternative of an entry's `when`: an observation kind and constraints on its fields.
#[derive(Debug, Clone)]
pub struct Condition {
    pub(super) kind: ObservationKind,
    pub(super) tests: Vec<Test>,
}

impl Condition {
    /// The observation kind this alternative applies to.
    pub fn observation_kind(&self) -> ObservationKind {
        self.kind
    }

    /// Whether a frame observation in this slot could satisfy this alternative: it is a frame
    /// condition, and its `protocol`, `status`, `direction` and `echo` constraints allow the
    /// slot's, and it asks for an `expected` value only when the frame has one.
    pub(super) fn admits_frame(&self, slot: FrameSlot) -> bool {
        self.kind == ObservationKind::Frame
            && self.tests.iter().all(|t| match t {
                Test::Protocol(ps) => ps.contains(&slot.protocol),
                Test::Status(ss) => ss.contains(&slot.status),
                Test::Direction(d) => *d == slot.direction,
                Test::Echo(e) => *e == slot.echo,
                Test::Expected(_) => slot.expected,
                _ => true,
            })
    }

    /// The alternative's score if every constraint holds for `obs`.
    pub fn eval(&self, obs: &Observation) -> Option<i64> {
        if obs.kind() != self.kind {
            return None;
        }
        let mut score = SCORE_BASE;
        for test in &self.tests {
            score += test.eval(obs)?;
        }
        Some(score)
    }
}

/// Frame status names usable in `status = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StatusName {
    Ok,
    BadChecksum,
    Truncated,
    Malformed,
}

impl StatusName {
    pub(super) const NAMES: &'static str = "ok, bad_checksum, truncated, malformed";
    pub(super) const ALL: [StatusName; 4] = [
        StatusName::Ok,
        StatusName::BadChecksum,
        StatusName::Truncated,
        StatusName::Malformed,
    ];

    pub(super) fn parse(s: &str) -> Option<StatusName> {
        match s {
            "ok" => Some(StatusName::Ok),
            "bad_checksum" => Some(StatusName::BadChecksum),
            "truncated" => Some(StatusName::Truncated),
            "malformed" => Some(StatusName::Malformed),
            _ => None,
        }
    }

    pub(super) fn of(status: &FrameStatus) -> StatusName {
        match status {
            FrameStatus::Ok => StatusName::Ok,
            FrameStatus::BadChecksum { .. } => StatusName::BadChecksum,
            FrameStatus::Truncated => StatusName::Truncated,
            FrameStatus::Malformed(_) => StatusName::Malformed,
        }
    }
}

/// `rate = ...` on a baud observation: the configured rate compared with the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RateRelation {
    TooHigh,
    TooLow,
}

/// One constraint of a condition. Each applies to the observation kinds listed in `FIELDS`.
#[derive(Debug, Clone)]
pub(super) enum Test {
    Sw(Vec<HexPattern>),
    Cla(Vec<HexPattern>),
    Ins(Vec<HexPattern>),
    ClaAnyBits(u8),
    Code(Vec<HexPattern>),
    Protocol(Vec<Protocol>),
    FrameKind(Vec<String>),
    Status(Vec<StatusName>),
    Direction(Direction),
    Echo(bool),
    Bytes(Vec<HexPattern>),
    Text(bool),
    Expected(Vec<HexPattern>),
    FramingMin(u64),
    FramingMax(u64),
    ParityMin(u64),
    BreakMin(u64),
    OverrunMin(u64),
    FeEvenPopcountOnly(bool),
    Rate(RateRelation),
    DeviationMinPct(f64),
    DeviationMaxPct(f64),
    EstimateKnown(bool),
    Byte(Vec<HexPattern>),
    FramingError(bool),
    CountMin(u64),
    Profile(Vec<String>),
    Step(Vec<String>),
    Got(Vec<HexPattern>),
    GotLenMin(u64),
    GotLenMax(u64),
    GotText(bool),
    GotEcho(bool),
    Reply(Vec<HexPattern>),
    ReplyLenMin(u64),
    ReplyLenMax(u64),
    LooksTls(bool),
    Scheme(Vec<String>),
    Port(Vec<u16>),
}

pub(super) fn flag(holds: bool) -> Option<i64> {
    holds.then_some(SCORE_FLAG)
}

fn bound(holds: bool) -> Option<i64> {
    holds.then_some(SCORE_BOUND)
}

fn len_u64(b: &[u8]) -> u64 {
    u64::try_from(b.len()).unwrap_or(u64::MAX)
}

fn names_match(names: &[String], value: &str) -> Option<i64> {
    names
        .iter()
        .any(|n| n.eq_ignore_ascii_case(value))
        .then_some(SCORE_NAME)
}

/// Best score among glob alternatives: 2 for an exact name, 1 for a `*` glob.
fn globs_match(globs: &[String], value: &str) -> Option<i64> {
    globs
        .iter()
        .filter(|g| glob_match(g, value))
        .map(|g| if g.contains('*') { 1 } else { SCORE_NAME })
        .max()
}

/// Case-insensitive match where `*` stands for any run of characters.
pub(super) fn glob_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let v: Vec<char> = value.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut vi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match (p.get(pi), v.get(vi)) {
            (Some('*'), _) => {
                star = Some((pi, vi));
                pi += 1;
            }
            (Some(pc), Some(vc)) if pc == vc => {
                pi += 1;
                vi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

impl Test {
    pub(super) fn eval(&self, obs: &Observation) -> Option<i64> {
        use Observation as O;
        match (self, obs) {
            (Test::Sw(p), O::StatusWord(s)) => any_exact(p, &s.sw.to_be_bytes()),
            (Test::Cla(p), O::StatusWord(s)) => any_exact(p, &[s.cla?]),
            (Test::Ins(p), O::StatusWord(s)) => any_exact(p, &[s.ins?]),
            (Test::ClaAnyBits(mask), O::StatusWord(s)) => flag(s.cla? & mask != 0),
            (Test::Code(p), O::Pcsc { code }) => any_exact(p, &code.to_be_bytes()),
            (Test::Protocol(ps), O::Frame(f)) => ps.contains(&f.protocol).then_some(SCORE_NAME),
            (Test::FrameKind(ks), O::Frame(f)) => names_match(ks, &f.kind),
            (Test::Status(ss), O::Frame(f)) => ss
                .contains(&StatusName::of(&f.status))
                .then_some(SCORE_NAME),
            (Test::Direction(d), O::Frame(f)) => flag(f.direction == *d),
            (Test::Echo(e), O::Frame(f)) => flag(f.echo == *e),
            (Test::Bytes(p), O::Frame(f)) => any_prefix(p, &f.bytes),
            (Test::Text(t), O::Frame(f)) => flag(is_text(&f.bytes) == *t),
            (Test::Expected(p), O::Frame(f)) => any_prefix(p, f.expected.as_deref()?),
            (Test::Expected(p), O::Handshake(h)) => any_prefix(p, &h.expected),
            (Test::FramingMin(n), O::LineErrors(l)) => bound(l.errors.frame >= *n),
            (Test::FramingMax(n), O::LineErrors(l)) => bound(l.errors.frame <= *n),
            (Test::FramingMin(n), O::RepeatedByte { framing_errors, .. }) => {
                bound(*framing_errors >= *n)
            }
            (Test::FramingMax(n), O::RepeatedByte { framing_errors, .. }) => {
                bound(*framing_errors <= *n)
            }
            (Test::ParityMin(n), O::LineErrors(l)) => bound(l.errors.parity >= *n),
            (Test::BreakMin(n), O::LineErrors(l)) => bound(l.errors.brk >= *n),
            (Test::OverrunMin(n), O::LineErrors(l)) => {
                bound(l.errors.overrun + l.errors.buf_overrun >= *n)
            }
            (Test::FeEvenPopcountOnly(b), O::LineErrors(l)) => flag(l.fe_even_popcount_only == *b),
            (Test::Rate(r), O::Baud(b)) => {
                let est = b.estimated?;
                let rel = if b.configured > est {
                    RateRelation::TooHigh
                } else if b.configured < est {
                    RateRelation::TooLow
                } else {
                    return None;
                };
                flag(rel == *r)
            }
            (Test::DeviationMinPct(m), O::Baud(b)) => bound(b.deviation_pct()? >= *m),
            (Test::DeviationMaxPct(m), O::Baud(b)) => bound(b.deviation_pct()? <= *m),
            (Test::EstimateKnown(k), O::Baud(b)) => flag(b.estimated.is_some() == *k),
            (Test::Byte(p), O::SevenBitPair { byte }) => any_exact(p, &[*byte]),
            (Test::Byte(p), O::IsolatedByte { byte, .. }) => any_exact(p, &[*byte]),
            (Test::Byte(p), O::RepeatedByte { byte, .. }) => any_exact(p, &[*byte]),
            (Test::FramingError(e), O::IsolatedByte { framing_error, .. }) => {
                flag(*framing_error == *e)
            }
            (Test::CountMin(n), O::RepeatedByte { count, .. }) => bound(*count >= *n),
            (Test::Profile(g), O::Handshake(h)) => globs_match(g, &h.profile),
            (Test::Step(g), O::Handshake(h)) => globs_match(g, &h.step),
            (Test::Got(p), O::Handshake(h)) => any_prefix(p, &h.got),
            (Test::GotLenMin(n), O::Handshake(h)) => bound(len_u64(&h.got) >= *n),
            (Test::GotLenMax(n), O::Handshake(h)) => bound(len_u64(&h.got) <= *n),
            (Test::GotText(t), O::Handshake(h)) => flag(is_text(&h.got) == *t),
            (Test::GotEcho(e), O::Handshake(h)) => {
                let echo = !h.sent.is_empty() && h.got.starts_with(&h.sent);
                flag(echo == *e)
            }
            (Test::Reply(p), O::TlsProbe(t)) => any_prefix(p, &t.reply),
            (Test::ReplyLenMin(n), O::TlsProbe(t)) => bound(len_u64(&t.reply) >= *n),
            (Test::ReplyLenMax(n), O::TlsProbe(t)) => bound(len_u64(&t.reply) <= *n),
            (Test::LooksTls(b), O::TlsProbe(t)) => flag(t.looks_tls() == *b),
            (Test::Scheme(s), O::TlsProbe(t)) => names_match(s, t.scheme.as_deref()?),
            (Test::Port(ps), O::TlsProbe(t)) => ps.contains(&t.port?).then_some(SCORE_NAME),
            // Validation only builds tests for the kinds that have the field.
            _ => None,
        }
    }
}

fn any_exact(patterns: &[HexPattern], bytes: &[u8]) -> Option<i64> {
    patterns.iter().filter_map(|p| p.score_exact(bytes)).max()
}

fn any_prefix(patterns: &[HexPattern], bytes: &[u8]) -> Option<i64> {
    patterns.iter().filter_map(|p| p.score_prefix(bytes)).max()
}

/// A hex pattern: nibbles, `None` where the pattern has `X`; optionally negated with `!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HexPattern {
    pub(super) nibbles: Vec<Option<u8>>,
    pub(super) negated: bool,
}

fn nibbles_of(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    bytes.iter().flat_map(|b| [b >> 4, b & 0x0F])
}

impl HexPattern {
    /// Parse `text`; `width` is the exact byte count for fixed-width fields.
    pub(super) fn parse(text: &str, width: Option<usize>) -> Result<HexPattern, String> {
        let trimmed = text.trim();
        let (negated, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut nibbles = Vec::new();
        for c in body.chars().filter(|c| !c.is_whitespace()) {
            match c {
                'x' | 'X' => nibbles.push(None),
                _ => match c.to_digit(16) {
                    Some(d) => nibbles.push(u8::try_from(d).ok()),
                    None => return Err(format!("'{c}' is not a hex digit or X")),
                },
            }
        }
        if nibbles.is_empty() {
            return Err("expected at least one byte (two hex digits)".to_string());
        }
        if nibbles.len() % 2 != 0 {
            return Err(format!(
                "expected whole bytes (an even number of digits), found {} digits",
                nibbles.len()
            ));
        }
        let bytes = nibbles.len() / 2;
        match width {
            Some(w) if bytes != w => {
                return Err(format!(
                    "expected exactly {} hex digits, found {}",
                    w * 2,
                    nibbles.len()
                ));
            }
            None if bytes > MAX_OBSERVED_BYTES => {
                return Err(format!(
                    "expected at most {MAX_OBSERVED_BYTES} bytes (observations keep no more)"
                ));
            }
            _ => {}
        }
        Ok(HexPattern { nibbles, negated })
    }

    pub(super) fn fixed(&self) -> i64 {
        let n = self.nibbles.iter().filter(|n| n.is_some()).count();
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    pub(super) fn nibbles_match(&self, bytes: &[u8]) -> bool {
        self.nibbles.len() <= bytes.len() * 2
            && self
                .nibbles
                .iter()
                .zip(nibbles_of(bytes))
                .all(|(p, n)| p.is_none_or(|p| p == n))
    }

    pub(super) fn score(&self, raw_match: bool) -> Option<i64> {
        match (self.negated, raw_match) {
            (false, true) => Some(self.fixed()),
            (true, false) => Some(SCORE_NEGATED),
            _ => None,
        }
    }

    pub(super) fn score_prefix(&self, bytes: &[u8]) -> Option<i64> {
        self.score(self.nibbles_match(bytes))
    }

    pub(super) fn score_exact(&self, bytes: &[u8]) -> Option<i64> {
        self.score(self.nibbles.len() == bytes.len() * 2 && self.nibbles_match(bytes))
    }

    /// A code written as hex with trailing wildcards ("68XX", "63CX", "8010XXXX").
    pub(super) fn from_code(norm: &str) -> Option<HexPattern> {
        let hex_part = norm.trim_end_matches('X');
        let is_pattern = norm.len() % 2 == 0
            && hex_part.len() < norm.len()
            && !hex_part.is_empty()
            && hex_part.chars().all(|c| c.is_ascii_hexdigit());
        if is_pattern {
            HexPattern::parse(norm, None).ok()
        } else {
            None
        }
    }

    /// Does this code pattern cover the normalised query (all hex, same length)?
    pub(super) fn covers_code(&self, query: &str) -> bool {
        query.len() == self.nibbles.len()
            && self
                .nibbles
                .iter()
                .zip(query.chars())
                .all(|(p, c)| match (p, c.to_digit(16)) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(p), Some(d)) => u32::from(*p) == d,
                })
    }
}
