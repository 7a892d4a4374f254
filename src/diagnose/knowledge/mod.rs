//! The knowledge base: explanations of unexpected bytes, status words and return codes, loaded
//! from `assets/knowledge.toml` (embedded at build time) plus an optional user file, and the
//! matcher that picks the entries whose `when` conditions hold for an [`Observation`].
//!
//! # The condition language (data, not code)
//!
//! Each entry's `when` is a list of alternatives (any may hold); each alternative is one inline
//! table naming an `observation` kind and constraining its fields (all must hold):
//!
//! ```toml
//! when = [
//!   { observation = "frame", protocol = "mbus", direction = "rx", bytes = "68 XX XX 68", expected = "E5" },
//!   { observation = "handshake", profile = "mbus*", expected = "E5", got = "68" },
//! ]
//! ```
//!
//! - Hex patterns: hex digits, `X` for any nibble, spaces ignored (`"68XX"`, `"68 XX XX 68"`).
//!   Fixed-width fields (`sw`: 2 bytes, `code`: 4 bytes, `byte`/`cla`/`ins`: 1 byte) must match
//!   exactly; byte sequences (`bytes`, `expected`, `got`, `reply`) match as a prefix. A leading
//!   `!` negates one pattern (`got = "!C0"`: the reply does not start with C0).
//! - Any pattern or name field takes one string or a list (any element may match).
//! - Names: `protocol` takes `Protocol::id()` strings; `profile` and `step` allow `*` globs.
//!
//! # Ranking
//!
//! An alternative scores 1, plus the number of fixed nibbles of each pattern that matched (1 for
//! a negated pattern), plus 2 per name or flag constraint and 1 per numeric bound; an entry's
//! rank is its best alternative plus its `priority`. Matches are returned best first, ties in file
//! order. Entries marked `fallback = true` are the "otherwise" answers: they are returned only
//! when no ordinary entry matched, and then only the best-scoring ones.

pub mod condition;
mod loader;
#[cfg(test)]
mod tests;

use serde::Deserialize;

use crate::decode::frame::{FrameStatus, Protocol};
use crate::diagnose::observation::{Observation, ObservationKind};
use crate::event::Direction;

use condition::{Condition, HexPattern, StatusName};

/// The name the built-in knowledge file goes by in error messages and `Entry::source`.
pub const EMBEDDED_SOURCE: &str = "assets/knowledge.toml";

/// The built-in knowledge file, embedded at build time.
const EMBEDDED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/knowledge.toml"
));

/// Terminal width `render_text` wraps to (leaves room for a two-column gutter at 80).
const WRAP_WIDTH: usize = 78;

/// Score weights (see the module docs).
const SCORE_BASE: i64 = 1;
const SCORE_NAME: i64 = 2;
const SCORE_FLAG: i64 = 2;
const SCORE_BOUND: i64 = 1;
const SCORE_NEGATED: i64 = 1;

/// What can go wrong reading a knowledge file. Every variant that points into a file names the
/// file, the line and the column (1-based, in characters), says what was expected, and ends
/// with a hint.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// TOML syntax, an unknown or missing field, or a value of the wrong type.
    #[error(
        "{file}:{line}:{column}: {message}. Hint: check the TOML syntax and field names; each \
         [[entry]] needs id, domain, severity (info, warning or error), title, meaning, causes, \
         fixes, reference, codes and when (see the top of the built-in assets/knowledge.toml)"
    )]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A hex pattern in a condition (or a code pattern) that cannot be parsed.
    #[error(
        "{file}:{line}:{column}: bad hex pattern \"{pattern}\" in `{field}`: {reason}. Hint: \
         write hex digits with X for any nibble, e.g. \"6882\", \"68XX\", \"68 XX XX 68\", or \
         \"!C0\" for \"does not start with C0\""
    )]
    BadPattern {
        file: String,
        line: usize,
        column: usize,
        field: String,
        pattern: String,
        reason: String,
    },
    /// `observation = "..."` names no known kind.
    #[error(
        "{file}:{line}:{column}: unknown observation kind \"{kind}\": expected one of {expected}. \
         Hint: the kind says what the session saw; pick the one whose fields your condition uses"
    )]
    UnknownObservation {
        file: String,
        line: usize,
        column: usize,
        kind: String,
        expected: String,
    },
    /// A condition field that the chosen observation kind does not have.
    #[error(
        "{file}:{line}:{column}: `{field}` does not apply to observation \"{observation}\": \
         expected one of {allowed}. Hint: move the field to a condition of a kind that has it, \
         or change the `observation` kind"
    )]
    FieldNotApplicable {
        file: String,
        line: usize,
        column: usize,
        field: String,
        observation: String,
        allowed: String,
    },
    /// A value outside the allowed set (protocol id, status, direction, id syntax, empty list...).
    #[error(
        "{file}:{line}:{column}: invalid value \"{value}\" for `{field}`: expected {expected}. \
         Hint: the allowed spellings are listed at the top of assets/knowledge.toml"
    )]
    BadValue {
        file: String,
        line: usize,
        column: usize,
        field: String,
        value: String,
        expected: String,
    },
    /// The same id twice in one file.
    #[error(
        "{file}:{line}:{column}: duplicate id \"{id}\" (first defined on line {first_line}): \
         expected each id once per file. Hint: rename one of them; to replace a built-in entry, \
         put an entry with its id in your extension file"
    )]
    DuplicateId {
        file: String,
        line: usize,
        column: usize,
        id: String,
        first_line: usize,
    },
    /// An entry with `when = []`: nothing could ever raise it.
    #[error(
        "{file}:{line}:{column}: entry \"{id}\" has an empty `when`: expected at least one \
         condition. Hint: an entry no observation can raise is never shown; add e.g. \
         when = [{{ observation = \"sw\", sw = \"6882\" }}]"
    )]
    EmptyWhen {
        file: String,
        line: usize,
        column: usize,
        id: String,
    },
    /// The user's extension file could not be read.
    #[error(
        "cannot read knowledge file {path}: {source}. Hint: check the path (your config dir or \
         --config) and that the file is readable by you"
    )]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl KnowledgeError {
    /// `(file, line, column)` for errors that point into a file.
    pub fn location(&self) -> Option<(&str, usize, usize)> {
        match self {
            KnowledgeError::Syntax {
                file, line, column, ..
            }
            | KnowledgeError::BadPattern {
                file, line, column, ..
            }
            | KnowledgeError::UnknownObservation {
                file, line, column, ..
            }
            | KnowledgeError::FieldNotApplicable {
                file, line, column, ..
            }
            | KnowledgeError::BadValue {
                file, line, column, ..
            }
            | KnowledgeError::DuplicateId {
                file, line, column, ..
            }
            | KnowledgeError::EmptyWhen {
                file, line, column, ..
            } => Some((file.as_str(), *line, *column)),
            KnowledgeError::Read { .. } => None,
        }
    }
}

/// How serious an entry is, for colour and sorting in the events pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Normal or expected traffic worth explaining.
    Info,
    /// Something is probably set up wrong, but the link may still work.
    Warning,
    /// The exchange failed.
    Error,
}

impl Severity {
    /// The spelling used in the knowledge file and in reports.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One explanation from the knowledge base.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stable dotted id, e.g. `iso7816.sw.6882`, `pcsc.w_reset_card`.
    pub id: String,
    /// Area: iso7816, pcsc, mbus, iec101, iec104, dlt645, uart, tls, mtk, stm32, esp, asic, ...
    pub domain: String,
    /// How serious it is.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What the observation means in this context.
    pub meaning: String,
    /// Causes, most likely first.
    pub causes: Vec<String>,
    /// Steps to take, in order.
    pub fixes: Vec<String>,
    /// Standard and clause, or source, the explanation rests on.
    pub reference: String,
    /// What `hsmon explain` matches (as written in the file).
    pub codes: Vec<String>,
    /// The alternatives under which the entry applies (any may hold).
    pub when: Vec<Condition>,
    /// Shown only when no ordinary entry matched.
    pub fallback: bool,
    /// Added to the match score (negative: rank below equally specific entries).
    pub priority: i32,
    /// The file the entry came from (`EMBEDDED_SOURCE` or the user's file name).
    pub source: String,
    /// `codes`, normalised for lookup.
    norm_codes: Vec<String>,
    /// `codes` that are hex patterns with trailing wildcards ("68XX", "61XX").
    code_patterns: Vec<HexPattern>,
}

impl Entry {
    /// The best score among this entry's alternatives for `obs`, plus its priority.
    fn score(&self, obs: &Observation) -> Option<i64> {
        self.when
            .iter()
            .filter_map(|c| c.eval(obs))
            .max()
            .map(|s| s + i64::from(self.priority))
    }

    /// The explanation as a person reads it in a terminal: title, meaning, causes ranked,
    /// fixes numbered, reference. Wrapped to 78 columns.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        push_wrapped(
            &mut out,
            &format!("{} [{}] {}", self.id, self.severity.label(), self.title),
            "",
            "  ",
        );
        for para in paragraphs(&self.meaning) {
            out.push('\n');
            push_wrapped(&mut out, &para, "  ", "  ");
        }
        if !self.causes.is_empty() {
            out.push_str("\nLikely causes, most likely first:\n");
            push_numbered(&mut out, &self.causes);
        }
        if !self.fixes.is_empty() {
            out.push_str("\nWhat to do:\n");
            push_numbered(&mut out, &self.fixes);
        }
        if !self.reference.trim().is_empty() {
            out.push('\n');
            push_wrapped(
                &mut out,
                &format!("Reference: {}", self.reference.trim()),
                "",
                "  ",
            );
        }
        out
    }
}

/// Split text into paragraphs at blank lines; single newlines become spaces.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

fn push_numbered(out: &mut String, items: &[String]) {
    for (i, item) in items.iter().enumerate() {
        let first = format!("  {}. ", i + 1);
        let rest = " ".repeat(first.len());
        push_wrapped(out, item, &first, &rest);
    }
}

/// Greedy word wrap: `first` prefixes the first line, `rest` the others; ends with a newline.
fn push_wrapped(out: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = String::from(first);
    let mut line_has_word = false;
    for word in text.split_whitespace() {
        let needed = line.chars().count() + usize::from(line_has_word) + word.chars().count();
        if line_has_word && needed > WRAP_WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            line_has_word = false;
        }
        if line_has_word {
            line.push(' ');
        }
        line.push_str(word);
        line_has_word = true;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// An entry that matched an observation, with its rank score.
#[derive(Debug, Clone, Copy)]
pub struct Match<'a> {
    /// The matching entry.
    pub entry: &'a Entry,
    /// Specificity of the best matching alternative plus the entry's priority.
    pub score: i64,
}

/// The loaded knowledge base.
#[derive(Debug, Clone)]
pub struct Knowledge {
    entries: Vec<Entry>,
    /// For each observation kind (by `ObservationKind::index`), the entries with a condition of
    /// that kind, in file order: `matches` looks only at these.
    by_kind: Vec<Vec<usize>>,
    /// For frame observations, by [`FrameSlot`] (protocol, status, direction, echo, whether a
    /// profile expected something): the entries with a frame condition a frame with those can
    /// satisfy, in file order. A session matches every frame it decodes, and most entries are
    /// about one protocol, a direction, an echo or an expectation, so for most frames this
    /// list is short or empty; an entry left out could not have matched.
    by_frame: Vec<Vec<usize>>,
}

/// What a frame observation is indexed by in `Knowledge::by_frame`: the fields its
/// conditions most often constrain, each with few values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameSlot {
    protocol: Protocol,
    status: StatusName,
    direction: Direction,
    echo: bool,
    expected: bool,
}

impl FrameSlot {
    const COUNT: usize = Protocol::ALL.len() * StatusName::ALL.len() * 2 * 2 * 2;

    fn of(f: &super::observation::FrameSeen) -> FrameSlot {
        FrameSlot {
            protocol: f.protocol,
            status: StatusName::of(&f.status),
            direction: f.direction,
            echo: f.echo,
            expected: f.expected.is_some(),
        }
    }

    fn index(self) -> usize {
        let direction = usize::from(self.direction == Direction::Tx);
        (((self.protocol as usize * StatusName::ALL.len() + self.status as usize) * 2 + direction)
            * 2
            + usize::from(self.echo))
            * 2
            + usize::from(self.expected)
    }

    /// Every slot, each once.
    fn all() -> impl Iterator<Item = FrameSlot> {
        Protocol::ALL.into_iter().flat_map(|protocol| {
            StatusName::ALL.into_iter().flat_map(move |status| {
                [Direction::Rx, Direction::Tx]
                    .into_iter()
                    .flat_map(move |direction| {
                        [false, true].into_iter().flat_map(move |echo| {
                            [false, true].into_iter().map(move |expected| FrameSlot {
                                protocol,
                                status,
                                direction,
                                echo,
                                expected,
                            })
                        })
                    })
            })
        })
    }
}

impl Knowledge {
    fn from_entries(entries: Vec<Entry>) -> Knowledge {
        let mut by_kind = vec![Vec::new(); ObservationKind::ALL.len()];
        for (i, entry) in entries.iter().enumerate() {
            for kind in ObservationKind::ALL {
                if !entry.when.iter().any(|c| c.kind == kind) {
                    continue;
                }
                if let Some(list) = by_kind.get_mut(kind.index()) {
                    list.push(i);
                }
            }
        }
        let mut by_frame = vec![Vec::new(); FrameSlot::COUNT];
        for slot in FrameSlot::all() {
            let Some(list) = by_frame.get_mut(slot.index()) else {
                continue;
            };
            for (i, entry) in entries.iter().enumerate() {
                if entry.when.iter().any(|c| c.admits_frame(slot)) {
                    list.push(i);
                }
            }
        }
        Knowledge {
            entries,
            by_kind,
            by_frame,
        }
    }

    /// Whether any entry could match a frame with this protocol, status, direction and echo
    /// flag (`expected`: whether a profile expected something). False means `matches` and
    /// `best` would find nothing for it, so a caller can skip building the observation (the
    /// engine asks for every frame it decodes).
    pub fn may_match_frame(
        &self,
        protocol: Protocol,
        status: &FrameStatus,
        direction: Direction,
        echo: bool,
        expected: bool,
    ) -> bool {
        let slot = FrameSlot {
            protocol,
            status: StatusName::of(status),
            direction,
            echo,
            expected,
        };
        self.by_frame
            .get(slot.index())
            .is_some_and(|list| !list.is_empty())
    }

    /// The entries that may match `obs`, in file order (see `by_kind` and `by_frame`).
    fn candidates(&self, obs: &Observation) -> &[usize] {
        let list = match obs {
            Observation::Frame(f) => self.by_frame.get(FrameSlot::of(f).index()),
            _ => self.by_kind.get(obs.kind().index()),
        };
        list.map(Vec::as_slice).unwrap_or(&[])
    }

    /// All entries, in file order (extension entries after the built-in ones).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The entries that apply to `obs`, most specific first.
    pub fn matches(&self, obs: &Observation) -> Vec<&Entry> {
        self.ranked(obs).into_iter().map(|m| m.entry).collect()
    }

    /// The first of [`Knowledge::matches`], without building the list: the best-scoring
    /// ordinary entry (ties: the first in the file), else the best fallback entry.
    pub fn best(&self, obs: &Observation) -> Option<&Entry> {
        let mut ordinary: Option<(i64, &Entry)> = None;
        let mut fallback: Option<(i64, &Entry)> = None;
        for &i in self.candidates(obs) {
            let Some(entry) = self.entries.get(i) else {
                continue;
            };
            if ordinary.is_some() && entry.fallback {
                continue;
            }
            let Some(score) = entry.score(obs) else {
                continue;
            };
            let slot = if entry.fallback {
                &mut fallback
            } else {
                &mut ordinary
            };
            // Candidates come in file order: only a higher score displaces the one held.
            if slot.is_none_or(|(best, _)| score > best) {
                *slot = Some((score, entry));
            }
        }
        ordinary.or(fallback).map(|(_, entry)| entry)
    }

    /// Like [`Knowledge::matches`], with the scores.
    pub fn ranked(&self, obs: &Observation) -> Vec<Match<'_>> {
        let mut ordinary: Vec<(i64, usize)> = Vec::new();
        let mut fallback: Vec<(i64, usize)> = Vec::new();
        for &i in self.candidates(obs) {
            let Some(entry) = self.entries.get(i) else {
                continue;
            };
            if let Some(score) = entry.score(obs) {
                if entry.fallback {
                    fallback.push((score, i));
                } else {
                    ordinary.push((score, i));
                }
            }
        }
        let mut chosen = if ordinary.is_empty() {
            // Only the best "otherwise" answers: a proprietary-SW entry beats "unknown SW".
            let best = fallback.iter().map(|&(s, _)| s).max();
            fallback.retain(|&(s, _)| Some(s) == best);
            fallback
        } else {
            ordinary
        };
        chosen.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        chosen
            .into_iter()
            .filter_map(|(score, i)| self.entries.get(i).map(|entry| Match { entry, score }))
            .collect()
    }

    /// Entries for `hsmon explain QUERY`: an exact entry id; otherwise every entry with a code
    /// equal to the query (case-insensitive; "0x", spaces, punctuation and "SCARD_" ignored;
    /// a negative decimal is read as a 32-bit return code), then entries whose code pattern
    /// ("68XX") covers it. Each group in file order: ISO 7816, PC/SC, frame starts, UART, ...
    pub fn explain(&self, query: &str) -> Vec<&Entry> {
        if let Some(entry) = self.get(query.trim()) {
            return vec![entry];
        }
        let q = normalise_code(query);
        if q.is_empty() {
            return Vec::new();
        }
        let exact = self.entries.iter().filter(|e| e.norm_codes.contains(&q));
        let covered = self.entries.iter().filter(|e| {
            !e.norm_codes.contains(&q) && e.code_patterns.iter().any(|p| p.covers_code(&q))
        });
        exact.chain(covered).collect()
    }
}

/// Normalise a code or query: negative decimals become 8 hex digits (PC/SC codes printed as
/// signed `LONG`), then upper case, only letters, digits and `_`, without a leading `0x`
/// before hex digits or a leading `SCARD_`.
fn normalise_code(s: &str) -> String {
    let t = s.trim();
    // A signed `LONG` as printed by C and .NET code: -2146434968 is 0x80100068.
    let negative = t.parse::<i64>().ok().filter(|&n| n < 0);
    if let Some(v) = negative.and_then(|n| i32::try_from(n).ok()) {
        return format!("{:08X}", v as u32);
    }
    let mut u: String = t
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let hex_after_0x = u
        .strip_prefix("0X")
        .filter(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string);
    if let Some(rest) = hex_after_0x {
        u = rest;
    }
    if let Some(rest) = u.strip_prefix("SCARD_") {
        u = rest.to_string();
    }
    u
}
