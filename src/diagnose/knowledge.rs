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

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::observation::{MAX_OBSERVED_BYTES, Observation, ObservationKind, is_text};
use crate::decode::frame::{FrameStatus, Protocol};
use crate::event::Direction;

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
    /// The built-in knowledge base. It is checked by this module's tests, so an error here
    /// means a broken build; callers report it like any other error rather than panic.
    pub fn embedded() -> Result<Knowledge, KnowledgeError> {
        Knowledge::parse(EMBEDDED, EMBEDDED_SOURCE)
    }

    /// Parse one knowledge file. `source_name` is used in error messages and `Entry::source`.
    pub fn parse(text: &str, source_name: &str) -> Result<Knowledge, KnowledgeError> {
        let ctx = Ctx {
            file: source_name,
            text,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| ctx.syntax(&e))?;
        let mut entries = Vec::with_capacity(raw.entry.len());
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        for raw_entry in raw.entry {
            let id_span = raw_entry.id.span();
            let id = raw_entry.id.get_ref().clone();
            if let Some(&first_line) = first_seen.get(&id) {
                let (line, column) = ctx.line_col(id_span.start);
                return Err(KnowledgeError::DuplicateId {
                    file: ctx.file.to_string(),
                    line,
                    column,
                    id,
                    first_line,
                });
            }
            first_seen.insert(id, ctx.line_col(id_span.start).0);
            entries.push(build_entry(&ctx, raw_entry)?);
        }
        Ok(Knowledge::from_entries(entries))
    }

    /// Merge a user knowledge file into this one: an entry with an existing id replaces it in
    /// place, a new id is added at the end.
    pub fn with_extension(
        mut self,
        text: &str,
        source_name: &str,
    ) -> Result<Knowledge, KnowledgeError> {
        let ext = Knowledge::parse(text, source_name)?;
        for entry in ext.entries {
            match self.entries.iter().position(|e| e.id == entry.id) {
                Some(i) => {
                    if let Some(slot) = self.entries.get_mut(i) {
                        *slot = entry;
                    }
                }
                None => self.entries.push(entry),
            }
        }
        Ok(Knowledge::from_entries(self.entries))
    }

    /// Read the user's extension file at `path` and merge it (the only I/O in this module).
    pub fn load_file(self, path: &Path) -> Result<Knowledge, KnowledgeError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KnowledgeError::Read {
            path: name.clone(),
            source,
        })?;
        self.with_extension(&text, &name)
    }

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

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

/// One alternative of an entry's `when`: an observation kind and constraints on its fields.
#[derive(Debug, Clone)]
pub struct Condition {
    kind: ObservationKind,
    tests: Vec<Test>,
}

impl Condition {
    /// The observation kind this alternative applies to.
    pub fn observation_kind(&self) -> ObservationKind {
        self.kind
    }

    /// Whether a frame observation in this slot could satisfy this alternative: it is a frame
    /// condition, and its `protocol`, `status`, `direction` and `echo` constraints allow the
    /// slot's, and it asks for an `expected` value only when the frame has one.
    fn admits_frame(&self, slot: FrameSlot) -> bool {
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
enum StatusName {
    Ok,
    BadChecksum,
    Truncated,
    Malformed,
}

impl StatusName {
    const NAMES: &'static str = "ok, bad_checksum, truncated, malformed";
    const ALL: [StatusName; 4] = [
        StatusName::Ok,
        StatusName::BadChecksum,
        StatusName::Truncated,
        StatusName::Malformed,
    ];

    fn parse(s: &str) -> Option<StatusName> {
        match s {
            "ok" => Some(StatusName::Ok),
            "bad_checksum" => Some(StatusName::BadChecksum),
            "truncated" => Some(StatusName::Truncated),
            "malformed" => Some(StatusName::Malformed),
            _ => None,
        }
    }

    fn of(status: &FrameStatus) -> StatusName {
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
enum RateRelation {
    TooHigh,
    TooLow,
}

/// One constraint of a condition. Each applies to the observation kinds listed in `FIELDS`.
#[derive(Debug, Clone)]
enum Test {
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

fn flag(holds: bool) -> Option<i64> {
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
fn glob_match(pattern: &str, value: &str) -> bool {
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
    fn eval(&self, obs: &Observation) -> Option<i64> {
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
struct HexPattern {
    nibbles: Vec<Option<u8>>,
    negated: bool,
}

fn nibbles_of(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    bytes.iter().flat_map(|b| [b >> 4, b & 0x0F])
}

impl HexPattern {
    /// Parse `text`; `width` is the exact byte count for fixed-width fields.
    fn parse(text: &str, width: Option<usize>) -> Result<HexPattern, String> {
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

    fn fixed(&self) -> i64 {
        let n = self.nibbles.iter().filter(|n| n.is_some()).count();
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    fn nibbles_match(&self, bytes: &[u8]) -> bool {
        self.nibbles.len() <= bytes.len() * 2
            && self
                .nibbles
                .iter()
                .zip(nibbles_of(bytes))
                .all(|(p, n)| p.is_none_or(|p| p == n))
    }

    fn score(&self, raw_match: bool) -> Option<i64> {
        match (self.negated, raw_match) {
            (false, true) => Some(self.fixed()),
            (true, false) => Some(SCORE_NEGATED),
            _ => None,
        }
    }

    fn score_prefix(&self, bytes: &[u8]) -> Option<i64> {
        self.score(self.nibbles_match(bytes))
    }

    fn score_exact(&self, bytes: &[u8]) -> Option<i64> {
        self.score(self.nibbles.len() == bytes.len() * 2 && self.nibbles_match(bytes))
    }

    /// A code written as hex with trailing wildcards ("68XX", "63CX", "8010XXXX").
    fn from_code(norm: &str) -> Option<HexPattern> {
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
    fn covers_code(&self, query: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// The file format (raw, as deserialised) and its validation
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: Spanned<String>,
    domain: String,
    severity: Severity,
    title: String,
    meaning: String,
    causes: Vec<String>,
    fixes: Vec<String>,
    reference: String,
    codes: Vec<String>,
    when: Spanned<Vec<Spanned<RawCondition>>>,
    #[serde(default)]
    fallback: bool,
    #[serde(default)]
    priority: i32,
}

/// Every field any condition may carry; `FIELDS` says which kinds have which.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    observation: Spanned<String>,
    sw: Option<Spanned<StrList>>,
    cla: Option<Spanned<StrList>>,
    ins: Option<Spanned<StrList>>,
    cla_any_bits: Option<Spanned<String>>,
    code: Option<Spanned<StrList>>,
    protocol: Option<Spanned<StrList>>,
    kind: Option<Spanned<StrList>>,
    status: Option<Spanned<StrList>>,
    direction: Option<Spanned<String>>,
    echo: Option<bool>,
    bytes: Option<Spanned<StrList>>,
    text: Option<bool>,
    expected: Option<Spanned<StrList>>,
    framing_min: Option<u64>,
    framing_max: Option<u64>,
    parity_min: Option<u64>,
    break_min: Option<u64>,
    overrun_min: Option<u64>,
    fe_even_popcount_only: Option<bool>,
    rate: Option<Spanned<String>>,
    deviation_min_pct: Option<Spanned<f64>>,
    deviation_max_pct: Option<Spanned<f64>>,
    estimate_known: Option<bool>,
    byte: Option<Spanned<StrList>>,
    framing_error: Option<bool>,
    count_min: Option<u64>,
    profile: Option<Spanned<StrList>>,
    step: Option<Spanned<StrList>>,
    got: Option<Spanned<StrList>>,
    got_len_min: Option<u64>,
    got_len_max: Option<u64>,
    got_text: Option<bool>,
    got_echo: Option<bool>,
    reply: Option<Spanned<StrList>>,
    reply_len_min: Option<u64>,
    reply_len_max: Option<u64>,
    looks_tls: Option<bool>,
    scheme: Option<Spanned<StrList>>,
    port: Option<Spanned<PortList>>,
}

/// Which observation kinds have which condition field.
const FIELDS: &[(&str, &[ObservationKind])] = {
    use ObservationKind as K;
    &[
        ("sw", &[K::StatusWord]),
        ("cla", &[K::StatusWord]),
        ("ins", &[K::StatusWord]),
        ("cla_any_bits", &[K::StatusWord]),
        ("code", &[K::Pcsc]),
        ("protocol", &[K::Frame]),
        ("kind", &[K::Frame]),
        ("status", &[K::Frame]),
        ("direction", &[K::Frame]),
        ("echo", &[K::Frame]),
        ("bytes", &[K::Frame]),
        ("text", &[K::Frame]),
        ("expected", &[K::Frame, K::Handshake]),
        ("framing_min", &[K::LineErrors, K::RepeatedByte]),
        ("framing_max", &[K::LineErrors, K::RepeatedByte]),
        ("parity_min", &[K::LineErrors]),
        ("break_min", &[K::LineErrors]),
        ("overrun_min", &[K::LineErrors]),
        ("fe_even_popcount_only", &[K::LineErrors]),
        ("rate", &[K::Baud]),
        ("deviation_min_pct", &[K::Baud]),
        ("deviation_max_pct", &[K::Baud]),
        ("estimate_known", &[K::Baud]),
        ("byte", &[K::SevenBitPair, K::IsolatedByte, K::RepeatedByte]),
        ("framing_error", &[K::IsolatedByte]),
        ("count_min", &[K::RepeatedByte]),
        ("profile", &[K::Handshake]),
        ("step", &[K::Handshake]),
        ("got", &[K::Handshake]),
        ("got_len_min", &[K::Handshake]),
        ("got_len_max", &[K::Handshake]),
        ("got_text", &[K::Handshake]),
        ("got_echo", &[K::Handshake]),
        ("reply", &[K::TlsProbe]),
        ("reply_len_min", &[K::TlsProbe]),
        ("reply_len_max", &[K::TlsProbe]),
        ("looks_tls", &[K::TlsProbe]),
        ("scheme", &[K::TlsProbe]),
        ("port", &[K::TlsProbe]),
    ]
};

/// A string or an array of strings.
struct StrList(Vec<String>);

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrList, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StrList, E> {
                Ok(StrList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StrList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A port number or an array of them.
struct PortList(Vec<u16>);

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortList, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (0-65535) or an array of them")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PortList, E> {
                u16::try_from(v)
                    .map(|p| PortList(vec![p]))
                    .map_err(|_| E::custom(format!("port {v} is outside 0-65535")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PortList, E> {
                u16::try_from(v)
                    .map(|p| PortList(vec![p]))
                    .map_err(|_| E::custom(format!("port {v} is outside 0-65535")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortList, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<u16>()? {
                    out.push(p);
                }
                Ok(PortList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The file being parsed, for positions in errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    /// 1-based line and column (in characters) of a byte offset; clamped to the text.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        crate::toml_pos::line_col(self.text, offset)
    }

    fn syntax(&self, e: &toml::de::Error) -> KnowledgeError {
        let (line, column) = self.line_col(e.span().map_or(0, |s| s.start));
        KnowledgeError::Syntax {
            file: self.file.to_string(),
            line,
            column,
            message: e.message().trim().trim_end_matches('.').to_string(),
        }
    }

    fn bad_value(
        &self,
        span: &Range<usize>,
        field: &str,
        value: &str,
        expected: &str,
    ) -> KnowledgeError {
        let (line, column) = self.line_col(span.start);
        KnowledgeError::BadValue {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    fn patterns(
        &self,
        field: &str,
        value: Spanned<StrList>,
        width: Option<usize>,
    ) -> Result<Vec<HexPattern>, KnowledgeError> {
        let span = value.span();
        let list = value.into_inner().0;
        if list.is_empty() {
            return Err(self.bad_value(&span, field, "[]", "at least one pattern"));
        }
        list.iter()
            .map(|text| {
                HexPattern::parse(text, width).map_err(|reason| {
                    let (line, column) = self.line_col(span.start);
                    KnowledgeError::BadPattern {
                        file: self.file.to_string(),
                        line,
                        column,
                        field: field.to_string(),
                        pattern: text.clone(),
                        reason,
                    }
                })
            })
            .collect()
    }

    fn names(&self, field: &str, value: Spanned<StrList>) -> Result<Vec<String>, KnowledgeError> {
        let span = value.span();
        let list = value.into_inner().0;
        if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
            return Err(self.bad_value(
                &span,
                field,
                &list.join(","),
                "at least one non-empty name",
            ));
        }
        Ok(list)
    }
}

/// Collects a condition's tests, checking that each field applies to the condition's kind.
struct CondBuilder<'c, 'a> {
    ctx: &'c Ctx<'a>,
    kind: ObservationKind,
    span: Range<usize>,
    tests: Vec<Test>,
}

impl CondBuilder<'_, '_> {
    fn allow(&self, field: &str) -> Result<(), KnowledgeError> {
        let kinds = FIELDS
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(&[][..], |(_, kinds)| *kinds);
        if kinds.contains(&self.kind) {
            return Ok(());
        }
        let allowed: Vec<&str> = FIELDS
            .iter()
            .filter(|(_, kinds)| kinds.contains(&self.kind))
            .map(|(name, _)| *name)
            .collect();
        let (line, column) = self.ctx.line_col(self.span.start);
        Err(KnowledgeError::FieldNotApplicable {
            file: self.ctx.file.to_string(),
            line,
            column,
            field: field.to_string(),
            observation: self.kind.id().to_string(),
            allowed: allowed.join(", "),
        })
    }

    fn push(&mut self, field: &str, test: Test) -> Result<(), KnowledgeError> {
        self.allow(field)?;
        self.tests.push(test);
        Ok(())
    }

    fn pattern(
        &mut self,
        field: &str,
        value: Option<Spanned<StrList>>,
        width: Option<usize>,
        make: fn(Vec<HexPattern>) -> Test,
    ) -> Result<(), KnowledgeError> {
        if let Some(v) = value {
            self.allow(field)?;
            let ps = self.ctx.patterns(field, v, width)?;
            self.tests.push(make(ps));
        }
        Ok(())
    }

    fn number(
        &mut self,
        field: &str,
        value: Option<u64>,
        make: fn(u64) -> Test,
    ) -> Result<(), KnowledgeError> {
        match value {
            Some(n) => self.push(field, make(n)),
            None => Ok(()),
        }
    }

    fn boolean(
        &mut self,
        field: &str,
        value: Option<bool>,
        make: fn(bool) -> Test,
    ) -> Result<(), KnowledgeError> {
        match value {
            Some(b) => self.push(field, make(b)),
            None => Ok(()),
        }
    }

    fn percent(
        &mut self,
        field: &str,
        value: Option<Spanned<f64>>,
        make: fn(f64) -> Test,
    ) -> Result<(), KnowledgeError> {
        let Some(v) = value else { return Ok(()) };
        let span = v.span();
        let pct = *v.get_ref();
        if !pct.is_finite() || pct < 0.0 {
            return Err(self.ctx.bad_value(
                &span,
                field,
                &pct.to_string(),
                "a non-negative percentage",
            ));
        }
        self.push(field, make(pct))
    }
}

fn build_condition(ctx: &Ctx<'_>, raw: Spanned<RawCondition>) -> Result<Condition, KnowledgeError> {
    let span = raw.span();
    let r = raw.into_inner();
    let kind_span = r.observation.span();
    let kind_name = r.observation.into_inner();
    let Some(kind) = ObservationKind::from_id(&kind_name) else {
        let (line, column) = ctx.line_col(kind_span.start);
        let expected: Vec<&str> = ObservationKind::ALL.iter().map(|k| k.id()).collect();
        return Err(KnowledgeError::UnknownObservation {
            file: ctx.file.to_string(),
            line,
            column,
            kind: kind_name,
            expected: expected.join(", "),
        });
    };
    let mut b = CondBuilder {
        ctx,
        kind,
        span,
        tests: Vec::new(),
    };

    b.pattern("sw", r.sw, Some(2), Test::Sw)?;
    b.pattern("cla", r.cla, Some(1), Test::Cla)?;
    b.pattern("ins", r.ins, Some(1), Test::Ins)?;
    if let Some(v) = r.cla_any_bits {
        let s = v.span();
        let text = v.into_inner();
        let mask = HexPattern::parse(&text, Some(1))
            .ok()
            .filter(|p| !p.negated)
            .and_then(|p| match p.nibbles.as_slice() {
                [Some(h), Some(l)] => Some(h << 4 | l),
                _ => None,
            })
            .filter(|&m| m != 0)
            .ok_or_else(|| {
                ctx.bad_value(
                    &s,
                    "cla_any_bits",
                    &text,
                    "one non-zero hex byte, e.g. \"0C\"",
                )
            })?;
        b.push("cla_any_bits", Test::ClaAnyBits(mask))?;
    }
    b.pattern("code", r.code, Some(4), Test::Code)?;

    if let Some(v) = r.protocol {
        b.allow("protocol")?;
        let span = v.span();
        let mut protocols = Vec::new();
        for name in ctx.names("protocol", v)? {
            let p = Protocol::from_id(&name).ok_or_else(|| {
                let ids: Vec<&str> = Protocol::ALL.iter().map(|p| p.id()).collect();
                ctx.bad_value(
                    &span,
                    "protocol",
                    &name,
                    &format!("one of {}", ids.join(", ")),
                )
            })?;
            protocols.push(p);
        }
        b.tests.push(Test::Protocol(protocols));
    }
    if let Some(v) = r.kind {
        b.allow("kind")?;
        let names = ctx.names("kind", v)?;
        b.tests.push(Test::FrameKind(names));
    }
    if let Some(v) = r.status {
        b.allow("status")?;
        let span = v.span();
        let mut statuses = Vec::new();
        for name in ctx.names("status", v)? {
            let s = StatusName::parse(&name).ok_or_else(|| {
                ctx.bad_value(
                    &span,
                    "status",
                    &name,
                    &format!("one of {}", StatusName::NAMES),
                )
            })?;
            statuses.push(s);
        }
        b.tests.push(Test::Status(statuses));
    }
    if let Some(v) = r.direction {
        let span = v.span();
        let d = match v.get_ref().as_str() {
            "rx" => Direction::Rx,
            "tx" => Direction::Tx,
            other => return Err(ctx.bad_value(&span, "direction", other, "rx or tx")),
        };
        b.push("direction", Test::Direction(d))?;
    }
    b.boolean("echo", r.echo, Test::Echo)?;
    b.pattern("bytes", r.bytes, None, Test::Bytes)?;
    b.boolean("text", r.text, Test::Text)?;
    b.pattern("expected", r.expected, None, Test::Expected)?;

    b.number("framing_min", r.framing_min, Test::FramingMin)?;
    b.number("framing_max", r.framing_max, Test::FramingMax)?;
    b.number("parity_min", r.parity_min, Test::ParityMin)?;
    b.number("break_min", r.break_min, Test::BreakMin)?;
    b.number("overrun_min", r.overrun_min, Test::OverrunMin)?;
    b.boolean(
        "fe_even_popcount_only",
        r.fe_even_popcount_only,
        Test::FeEvenPopcountOnly,
    )?;

    if let Some(v) = r.rate {
        let span = v.span();
        let rel = match v.get_ref().as_str() {
            "too_high" => RateRelation::TooHigh,
            "too_low" => RateRelation::TooLow,
            other => return Err(ctx.bad_value(&span, "rate", other, "too_high or too_low")),
        };
        b.push("rate", Test::Rate(rel))?;
    }
    b.percent(
        "deviation_min_pct",
        r.deviation_min_pct,
        Test::DeviationMinPct,
    )?;
    b.percent(
        "deviation_max_pct",
        r.deviation_max_pct,
        Test::DeviationMaxPct,
    )?;
    b.boolean("estimate_known", r.estimate_known, Test::EstimateKnown)?;

    b.pattern("byte", r.byte, Some(1), Test::Byte)?;
    b.boolean("framing_error", r.framing_error, Test::FramingError)?;
    b.number("count_min", r.count_min, Test::CountMin)?;

    if let Some(v) = r.profile {
        b.allow("profile")?;
        let names = ctx.names("profile", v)?;
        b.tests.push(Test::Profile(names));
    }
    if let Some(v) = r.step {
        b.allow("step")?;
        let names = ctx.names("step", v)?;
        b.tests.push(Test::Step(names));
    }
    b.pattern("got", r.got, None, Test::Got)?;
    b.number("got_len_min", r.got_len_min, Test::GotLenMin)?;
    b.number("got_len_max", r.got_len_max, Test::GotLenMax)?;
    b.boolean("got_text", r.got_text, Test::GotText)?;
    b.boolean("got_echo", r.got_echo, Test::GotEcho)?;

    b.pattern("reply", r.reply, None, Test::Reply)?;
    b.number("reply_len_min", r.reply_len_min, Test::ReplyLenMin)?;
    b.number("reply_len_max", r.reply_len_max, Test::ReplyLenMax)?;
    b.boolean("looks_tls", r.looks_tls, Test::LooksTls)?;
    if let Some(v) = r.scheme {
        b.allow("scheme")?;
        let names = ctx.names("scheme", v)?;
        b.tests.push(Test::Scheme(names));
    }
    if let Some(v) = r.port {
        b.allow("port")?;
        let span = v.span();
        let ports = v.into_inner().0;
        if ports.is_empty() {
            return Err(ctx.bad_value(&span, "port", "[]", "at least one port"));
        }
        b.tests.push(Test::Port(ports));
    }

    Ok(Condition {
        kind,
        tests: b.tests,
    })
}

/// Ids are stable dotted names: lower-case letters, digits, `_` and `-`, in at least two
/// dot-separated parts ("iso7816.sw.6882").
fn valid_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

fn build_entry(ctx: &Ctx<'_>, raw: RawEntry) -> Result<Entry, KnowledgeError> {
    let id_span = raw.id.span();
    let id = raw.id.into_inner();
    if !valid_id(&id) {
        return Err(ctx.bad_value(
            &id_span,
            "id",
            &id,
            "a dotted lower-case id such as \"iso7816.sw.6882\" (letters, digits, _ and -)",
        ));
    }
    let when_span = raw.when.span();
    let raw_when = raw.when.into_inner();
    if raw_when.is_empty() {
        let (line, column) = ctx.line_col(when_span.start);
        return Err(KnowledgeError::EmptyWhen {
            file: ctx.file.to_string(),
            line,
            column,
            id,
        });
    }
    let when = raw_when
        .into_iter()
        .map(|c| build_condition(ctx, c))
        .collect::<Result<Vec<_>, _>>()?;
    let norm_codes: Vec<String> = raw.codes.iter().map(|c| normalise_code(c)).collect();
    let code_patterns = norm_codes
        .iter()
        .filter_map(|c| HexPattern::from_code(c))
        .collect();
    Ok(Entry {
        id,
        domain: raw.domain,
        severity: raw.severity,
        title: raw.title,
        meaning: raw.meaning,
        causes: raw.causes,
        fixes: raw.fixes,
        reference: raw.reference,
        codes: raw.codes,
        when,
        fallback: raw.fallback,
        priority: raw.priority,
        source: ctx.file.to_string(),
        norm_codes,
        code_patterns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::observation::{
        BaudSuspect, FrameSeen, HandshakeDivergence, LineErrorWindow, TlsProbeResult,
    };
    use proptest::prelude::*;

    /// Parsed once: the proptests match thousands of observations against it.
    static KB: std::sync::LazyLock<Knowledge> =
        std::sync::LazyLock::new(|| Knowledge::embedded().unwrap());

    fn kb() -> Knowledge {
        KB.clone()
    }

    fn ids(entries: &[&Entry]) -> Vec<String> {
        entries.iter().map(|e| e.id.clone()).collect()
    }

    fn sw(sw: u16) -> Observation {
        Observation::sw(sw)
    }

    fn pcsc(code: u32) -> Observation {
        Observation::Pcsc { code }
    }

    fn frame(p: Protocol, kind: &str, bytes: &[u8]) -> FrameSeen {
        FrameSeen::new(p, kind, bytes)
    }

    fn obs(f: FrameSeen) -> Observation {
        Observation::Frame(f)
    }

    fn bad_cs() -> FrameStatus {
        FrameStatus::BadChecksum {
            expected: 1,
            found: 2,
        }
    }

    fn malformed() -> FrameStatus {
        FrameStatus::Malformed("bad".to_string())
    }

    fn hs(profile: &str, step: &str, sent: &[u8], expected: &[u8], got: &[u8]) -> Observation {
        Observation::Handshake(HandshakeDivergence::new(profile, step, sent, expected, got))
    }

    fn tls(port: Option<u16>, scheme: Option<&str>, reply: &[u8]) -> Observation {
        Observation::TlsProbe(TlsProbeResult::new(port, scheme, reply))
    }

    fn baud(configured: u32, estimated: Option<u32>) -> Observation {
        Observation::Baud(BaudSuspect {
            configured,
            estimated,
        })
    }

    fn line(framing: u64, parity: u64, even_only: bool) -> Observation {
        Observation::LineErrors(LineErrorWindow {
            bytes: 1000,
            errors: crate::event::LineErrorCounts {
                frame: framing,
                parity,
                ..Default::default()
            },
            fe_even_popcount_only: even_only,
        })
    }

    const MBUS_SND_UD: &[u8] = &[0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0x50, 0xA4, 0x16];
    const MBUS_RSP_UD: &[u8] = &[
        0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07,
        0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
    ];
    const DLT_READ: &[u8] = &[
        0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x11, 0x04, 0x33,
        0x33, 0x34, 0x33, 0xB3, 0x16,
    ];
    const DLT_REPLY: &[u8] = &[
        0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89,
        0x67, 0x45, 0x33, 0x9F, 0x16,
    ];
    const DLT_ABNORMAL: &[u8] = &[
        0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0xD1, 0x01, 0x35, 0xD8, 0x16,
    ];
    const IEC104_STARTDT_CON: &[u8] = &[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00];
    const IEC101_VAR: &[u8] = &[0x68, 0x09, 0x09, 0x68, 0x08, 0x01, 0x64, 0x01, 0x07];

    /// For every entry of the built-in file, an observation the session could produce that
    /// must raise it. The test below also fails when an entry has no row here.
    fn reachability_table() -> Vec<(&'static str, Observation)> {
        use Protocol as P;
        vec![
            ("iso7816.sw1.68", sw(0x6885)),
            ("iso7816.sw.6800", sw(0x6800)),
            ("iso7816.sw.6881", sw(0x6881)),
            ("iso7816.sw.6882", sw(0x6882)),
            ("iso7816.sw.6883", sw(0x6883)),
            ("iso7816.sw.6884", sw(0x6884)),
            ("nist.bef.check_err_cla_function", sw(0x6881)),
            (
                "iso7816.t0.procedure_68",
                obs(frame(P::Iso7816Line, "procedure", &[0x68, 0x82])),
            ),
            ("iso7816.sw.9000", sw(0x9000)),
            ("iso7816.sw.61xx", sw(0x6110)),
            ("iso7816.sw.6cxx", sw(0x6C10)),
            ("iso7816.sw.62xx", sw(0x6282)),
            ("iso7816.sw.63cx", sw(0x63C2)),
            ("iso7816.sw.63xx", sw(0x6300)),
            ("iso7816.sw.execution_error", sw(0x6581)),
            ("iso7816.sw.6700", sw(0x6700)),
            ("iso7816.sw.6982", sw(0x6982)),
            ("iso7816.sw.6983", sw(0x6983)),
            ("iso7816.sw.69xx", sw(0x6985)),
            ("iso7816.sw.6988", sw(0x6988)),
            ("iso7816.sw.6a82", sw(0x6A82)),
            ("iso7816.sw.6axx", sw(0x6A86)),
            ("iso7816.sw.6b00", sw(0x6B00)),
            ("iso7816.sw.6d00", sw(0x6D00)),
            ("iso7816.sw.6e00", sw(0x6E00)),
            ("iso7816.sw.6f00", sw(0x6F00)),
            ("iso7816.sw.proprietary", sw(0x9110)),
            ("iso7816.sw.invalid", sw(0x6000)),
            ("iso7816.sw.unknown", sw(0x6A8F)),
            (
                "iso7816.t0.null_procedure",
                obs(frame(P::Iso7816Line, "procedure", &[0x60])),
            ),
            (
                "iso7816.atr.inverse_as_direct",
                obs(frame(P::Atr, "atr", &[0x03, 0x64, 0x00])),
            ),
            (
                "iso7816.atr.bad_tck",
                obs(frame(P::Atr, "atr", &[0x3B, 0x80, 0x80, 0x01, 0x00]).with_status(bad_cs())),
            ),
            (
                "iso7816.atr.malformed",
                obs(frame(P::Atr, "atr", &[0x3B, 0xF0]).with_status(FrameStatus::Truncated)),
            ),
            (
                "apdu.malformed",
                obs(
                    frame(P::Apdu, "command", &[0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0])
                        .with_status(malformed())
                        .with_direction(Direction::Tx),
                ),
            ),
            (
                "apdu.short_response",
                obs(frame(P::Apdu, "response", &[0x90]).with_status(FrameStatus::Truncated)),
            ),
            ("pcsc.w_reset_card", pcsc(0x8010_0068)),
            ("pcsc.w_removed_card", pcsc(0x8010_0069)),
            ("pcsc.w_unpowered_card", pcsc(0x8010_0067)),
            ("pcsc.w_unresponsive_card", pcsc(0x8010_0066)),
            ("pcsc.w_unsupported_card", pcsc(0x8010_0065)),
            ("pcsc.e_no_smartcard", pcsc(0x8010_000C)),
            ("pcsc.e_sharing_violation", pcsc(0x8010_000B)),
            ("pcsc.e_no_service", pcsc(0x8010_001D)),
            ("pcsc.e_service_stopped", pcsc(0x8010_001E)),
            ("pcsc.e_reader_unavailable", pcsc(0x8010_0017)),
            ("pcsc.e_not_transacted", pcsc(0x8010_0016)),
            ("pcsc.e_proto_mismatch", pcsc(0x8010_000F)),
            ("pcsc.e_timeout", pcsc(0x8010_000A)),
            ("pcsc.e_no_readers_available", pcsc(0x8010_002E)),
            ("pcsc.e_unknown_reader", pcsc(0x8010_0009)),
            ("pcsc.e_invalid_handle", pcsc(0x8010_0003)),
            ("pcsc.e_insufficient_buffer", pcsc(0x8010_0008)),
            ("pcsc.e_cancelled", pcsc(0x8010_0012)),
            ("pcsc.f_comm_error", pcsc(0x8010_0013)),
            ("pcsc.e_comm_data_lost", pcsc(0x8010_002F)),
            ("pcsc.w_security_violation", pcsc(0x8010_006A)),
            ("pcsc.w_chv", pcsc(0x8010_006C)),
            ("pcsc.e_not_ready", pcsc(0x8010_0010)),
            ("pcsc.e_unsupported_feature", pcsc(0x8010_0022)),
            ("pcsc.e_invalid_parameter", pcsc(0x8010_0011)),
            ("pcsc.f_internal_error", pcsc(0x8010_0014)),
            ("pcsc.e_windows_only", pcsc(0x8010_0033)),
            ("pcsc.error_broken_pipe", pcsc(0x0000_0109)),
            ("pcsc.s_success", pcsc(0)),
            ("pcsc.unknown", pcsc(0x8010_0024)),
            (
                "mbus.echo",
                obs(frame(P::Mbus, "control", MBUS_SND_UD)
                    .with_echo(true)
                    .with_expected(&[0xE5])),
            ),
            (
                "mbus.stale_response",
                obs(frame(P::Mbus, "long", MBUS_RSP_UD).with_expected(&[0xE5])),
            ),
            (
                "mbus.long_frame_unexpected",
                obs(frame(P::Mbus, "long", MBUS_RSP_UD).with_expected(&[0xE5])),
            ),
            (
                "mbus.checksum",
                obs(frame(P::Mbus, "long", MBUS_RSP_UD).with_status(bad_cs())),
            ),
            (
                "mbus.malformed",
                obs(frame(P::Mbus, "long", &[0x68, 0x15, 0x14, 0x68]).with_status(malformed())),
            ),
            (
                "mbus.no_answer",
                hs(
                    "mbus",
                    "snd_nke",
                    &[0x10, 0x40, 0x01, 0x41, 0x16],
                    &[0xE5],
                    &[],
                ),
            ),
            (
                "mbus.garbage_instead_of_e5",
                hs(
                    "mbus",
                    "snd_nke",
                    &[0x10, 0x40, 0x01, 0x41, 0x16],
                    &[0xE5],
                    &[0x78, 0x80],
                ),
            ),
            (
                "iec101.echo",
                obs(frame(P::Iec101, "variable", IEC101_VAR).with_echo(true)),
            ),
            (
                "iec101.variable_frame_unexpected",
                obs(frame(P::Iec101, "variable", IEC101_VAR).with_expected(&[0x10])),
            ),
            (
                "iec101.checksum",
                obs(frame(P::Iec101, "variable", IEC101_VAR).with_status(bad_cs())),
            ),
            (
                "iec101.sync_error",
                obs(frame(P::Iec101, "variable", &[0x68, 0x09]).with_status(FrameStatus::Truncated)),
            ),
            (
                "iec104.apci_start",
                obs(frame(P::Iec104, "u", IEC104_STARTDT_CON)),
            ),
            (
                "iec104.message_error",
                obs(frame(P::Iec104, "i", &[0x68, 0x02]).with_status(malformed())),
            ),
            (
                "iec104.no_startdt_con",
                hs(
                    "iec104",
                    "startdt",
                    &[0x68, 0x04, 0x07, 0, 0, 0],
                    IEC104_STARTDT_CON,
                    &[],
                ),
            ),
            (
                "iec104.tls_mismatch",
                tls(Some(2404), Some("tls"), IEC104_STARTDT_CON),
            ),
            (
                "dlt645.echo",
                obs(frame(P::Dlt645, "request", DLT_READ).with_expected(&[0x68])),
            ),
            (
                "dlt645.abnormal_reply",
                obs(frame(P::Dlt645, "reply", DLT_ABNORMAL)),
            ),
            (
                "dlt645.frame_start",
                obs(frame(P::Dlt645, "reply", DLT_REPLY).with_expected(&[0xFE])),
            ),
            (
                "dlt645.checksum",
                obs(frame(P::Dlt645, "reply", DLT_REPLY).with_status(bad_cs())),
            ),
            (
                "dlt645.not_dlt645",
                obs(frame(P::Dlt645, "reply", &[0x68, 0x05, 0x05, 0x68]).with_status(malformed())),
            ),
            (
                "text.ascii_h",
                obs(frame(P::Text, "line", b"hello world\r\n")),
            ),
            (
                "text.where_binary_expected",
                obs(frame(P::Text, "line", b"Booting...\r\n").with_expected(&[0x79])),
            ),
            (
                "link.echo",
                obs(frame(P::Stm32Boot, "command", &[0x11, 0xEE]).with_echo(true)),
            ),
            (
                "link.unexpected_reply",
                obs(frame(P::Stm32Boot, "ack", &[0x79]).with_expected(&[0x1F])),
            ),
            (
                "frame.checksum",
                obs(frame(P::MtkBrom, "command", &[0xD7]).with_status(bad_cs())),
            ),
            (
                "frame.truncated",
                obs(frame(P::EspSlip, "packet", &[0xC0, 0x01]).with_status(FrameStatus::Truncated)),
            ),
            (
                "frame.malformed",
                obs(frame(P::Http, "response", b"HTTP/9").with_status(malformed())),
            ),
            (
                "handshake.divergence",
                hs("custom-device", "hello", &[0x01], &[0x02], &[0x03]),
            ),
            (
                "uart.genuine_68",
                Observation::IsolatedByte {
                    byte: 0x68,
                    framing_error: false,
                },
            ),
            (
                "uart.68_with_framing_errors",
                Observation::RepeatedByte {
                    byte: 0x68,
                    count: 12,
                    framing_errors: 7,
                },
            ),
            (
                "uart.seven_vs_eight_bit",
                Observation::SevenBitPair { byte: 0x68 },
            ),
            (
                "uart.noise_glitch",
                Observation::IsolatedByte {
                    byte: 0xF8,
                    framing_error: false,
                },
            ),
            (
                "uart.break",
                Observation::IsolatedByte {
                    byte: 0x00,
                    framing_error: true,
                },
            ),
            ("uart.baud_too_high", baud(115_200, Some(9600))),
            ("uart.baud_too_low", baud(9600, Some(115_200))),
            ("uart.baud_mismatch", baud(115_200, None)),
            ("uart.clock_drift", baud(115_200, Some(111_000))),
            ("uart.parity_mismatch", line(12, 0, true)),
            ("uart.framing_errors", line(40, 0, false)),
            (
                "mtk.brom_echo_a0",
                hs("mtk-brom", "start", &[0xA0], &[0x5F], &[0xA0]),
            ),
            (
                "mtk.no_reply",
                hs("mtk-brom", "start", &[0xA0], &[0x5F], &[]),
            ),
            (
                "mtk.text_reply",
                hs("mtk-brom", "start", &[0xA0], &[0x5F], b"READY"),
            ),
            (
                "mtk.handshake_failed",
                hs("mtk-brom", "start", &[0xA0], &[0x5F], &[0x12]),
            ),
            ("stm32.no_ack", hs("stm32", "init", &[0x7F], &[0x79], &[])),
            (
                "stm32.text_instead_of_ack",
                hs("stm32", "init", &[0x7F], &[0x79], b"h"),
            ),
            (
                "stm32.nack_on_init",
                hs("stm32", "init", &[0x7F], &[0x79], &[0x1F]),
            ),
            (
                "stm32.checksum",
                obs(frame(P::Stm32Boot, "command", &[0x11, 0xEF]).with_status(bad_cs())),
            ),
            (
                "esp.invalid_head",
                hs("esp32", "sync", &[0xC0, 0x00], &[0xC0, 0x01], &[0x68, 0x02]),
            ),
            (
                "esp.not_download_mode",
                hs(
                    "esp32",
                    "sync",
                    &[0xC0],
                    &[0xC0],
                    b"rst:0x1 (POWERON_RESET),boot:0x13",
                ),
            ),
            ("esp.no_reply", hs("esp8266", "sync", &[0xC0], &[0xC0], &[])),
            (
                "esp.checksum",
                obs(frame(P::EspSlip, "response", &[0xC0, 0x01, 0x03]).with_status(bad_cs())),
            ),
            (
                "tls.wss_to_ws_server",
                tls(Some(8080), Some("wss"), b"HTTP/1.1 400 Bad Request"),
            ),
            ("tls.ws_to_tls_server", tls(Some(443), Some("ws"), b"")),
            (
                "tls.http_reply",
                tls(Some(443), None, b"HTTP/1.1 400 Bad Request"),
            ),
            ("tls.reply_68", tls(Some(443), None, b"hello")),
            ("tls.not_tls", tls(Some(22), None, b"SSH-2.0-OpenSSH")),
            ("tls.closed_without_reply", tls(Some(2404), None, b"")),
            (
                "asic.preamble_mismatch",
                hs(
                    "bm1366",
                    "chip-id",
                    &[0x55, 0xAA, 0x52, 0x05, 0, 0, 0x0A],
                    &[0xAA, 0x55],
                    &[0x68, 0x13],
                ),
            ),
            (
                "asic.no_chips",
                hs("bm1366", "enumerate", &[0x55, 0xAA], &[0xAA, 0x55], &[]),
            ),
            (
                "asic.baud_switch",
                hs(
                    "bm1366",
                    "baud-switch",
                    &[0x55, 0xAA],
                    &[0xAA, 0x55],
                    &[0x80, 0x00, 0xF8],
                ),
            ),
        ]
    }

    #[test]
    fn embedded_file_parses_with_unique_valid_ids() {
        let k = kb();
        assert!(
            k.entries().len() >= 120,
            "only {} entries",
            k.entries().len()
        );
        let mut seen = std::collections::HashSet::new();
        for e in k.entries() {
            assert!(seen.insert(e.id.clone()), "duplicate id {}", e.id);
            assert!(valid_id(&e.id), "bad id {}", e.id);
            assert_eq!(e.source, EMBEDDED_SOURCE);
            assert!(!e.title.trim().is_empty(), "{} has no title", e.id);
            assert!(!e.meaning.trim().is_empty(), "{} has no meaning", e.id);
            assert!(!e.reference.trim().is_empty(), "{} has no reference", e.id);
            assert!(!e.when.is_empty(), "{} has no condition", e.id);
            if e.severity != Severity::Info {
                assert!(!e.causes.is_empty(), "{} has no causes", e.id);
                assert!(!e.fixes.is_empty(), "{} has no fixes", e.id);
            }
        }
    }

    #[test]
    fn every_entry_is_raised_by_some_observation() {
        let k = kb();
        let table = reachability_table();
        let listed: std::collections::HashSet<&str> = table.iter().map(|(id, _)| *id).collect();
        for e in k.entries() {
            assert!(
                listed.contains(e.id.as_str()),
                "entry {} has no row in reachability_table: add an observation that raises it",
                e.id
            );
        }
        for (id, o) in &table {
            assert!(k.get(id).is_some(), "table row {id} names no entry");
            let got = ids(&k.matches(o));
            assert!(
                got.iter().any(|g| g == id),
                "{id} not raised by {o:?}; got {got:?}"
            );
        }
    }

    #[test]
    fn ranking_puts_the_most_specific_entry_first() {
        let k = kb();
        let cases: Vec<(Observation, Vec<&str>)> = vec![
            (
                sw(0x6882),
                vec![
                    "iso7816.sw.6882",
                    "iso7816.sw1.68",
                    "nist.bef.check_err_cla_function",
                ],
            ),
            (pcsc(0x8010_0068), vec!["pcsc.w_reset_card"]),
            (sw(0x9000), vec!["iso7816.sw.9000"]),
            // Fallbacks: only the best "otherwise" answer, never "unknown" next to "proprietary".
            (sw(0x6701), vec!["iso7816.sw.proprietary"]),
            (sw(0x6A8F), vec!["iso7816.sw.unknown"]),
            (baud(115_200, Some(111_000)), vec!["uart.clock_drift"]),
            (
                Observation::IsolatedByte {
                    byte: 0x68,
                    framing_error: false,
                },
                vec!["uart.genuine_68"],
            ),
        ];
        for (o, want) in cases {
            assert_eq!(ids(&k.matches(&o)), want, "for {o:?}");
        }
        let firsts: Vec<(Observation, &str)> = vec![
            (
                obs(FrameSeen::new(Protocol::Mbus, "control", MBUS_SND_UD)
                    .with_echo(true)
                    .with_expected(&[0xE5])),
                "mbus.echo",
            ),
            (
                obs(FrameSeen::new(Protocol::Mbus, "long", MBUS_RSP_UD).with_expected(&[0xE5])),
                "mbus.stale_response",
            ),
            (
                tls(Some(2404), None, IEC104_STARTDT_CON),
                "iec104.tls_mismatch",
            ),
            (
                tls(None, Some("wss"), b"HTTP/1.1 400"),
                "tls.wss_to_ws_server",
            ),
            (
                hs("mtk-brom", "start", &[0xA0], &[0x5F], &[0xA0]),
                "mtk.brom_echo_a0",
            ),
            (
                hs("stm32", "init", &[0x7F], &[0x79], &[0x68]),
                "stm32.text_instead_of_ack",
            ),
            (
                obs(FrameSeen::new(Protocol::Mbus, "long", MBUS_RSP_UD).with_status(bad_cs())),
                "mbus.checksum",
            ),
        ];
        for (o, want) in firsts {
            let got = ids(&k.matches(&o));
            assert_eq!(
                got.first().map(String::as_str),
                Some(want),
                "for {o:?}: {got:?}"
            );
        }
        // A noise glitch value never explains a 0x68, and 0x68 never reads as noise.
        let glitch = Observation::IsolatedByte {
            byte: 0x68,
            framing_error: false,
        };
        assert!(!ids(&k.matches(&glitch)).contains(&"uart.noise_glitch".to_string()));
        // The generic frame checksum entry is a fallback: hidden when a protocol one matched.
        let m = ids(&k.matches(&obs(
            FrameSeen::new(Protocol::Dlt645, "reply", DLT_REPLY).with_status(bad_cs())
        )));
        assert!(m.contains(&"dlt645.checksum".to_string()));
        assert!(!m.contains(&"frame.checksum".to_string()));
    }

    #[test]
    fn cla_and_ins_conditions_use_the_command() {
        let ext = r#"
[[entry]]
id = "site.sm_on_select"
domain = "site"
severity = "error"
title = "SM bits on SELECT"
meaning = "m"
causes = ["c"]
fixes = ["f"]
reference = "r"
codes = []
when = [{ observation = "sw", sw = "6882", cla_any_bits = "0C", ins = "A4" }]
"#;
        let k = kb().with_extension(ext, "site.toml").unwrap();
        let with_cmd = Observation::StatusWord(crate::diagnose::observation::StatusWordSeen {
            sw: 0x6882,
            cla: Some(0x0C),
            ins: Some(0xA4),
        });
        assert_eq!(
            ids(&k.matches(&with_cmd)).first().map(String::as_str),
            Some("site.sm_on_select")
        );
        let plain_cla = Observation::StatusWord(crate::diagnose::observation::StatusWordSeen {
            sw: 0x6882,
            cla: Some(0x00),
            ins: Some(0xA4),
        });
        assert!(!ids(&k.matches(&plain_cla)).contains(&"site.sm_on_select".to_string()));
        assert!(!ids(&k.matches(&sw(0x6882))).contains(&"site.sm_on_select".to_string()));
    }

    #[test]
    fn explain_6882_finds_secure_messaging() {
        let k = kb();
        for q in [
            "6882",
            "68 82",
            "0x6882",
            " 6882 ",
            "SW_SECURE_MESSAGING_NOT_SUPPORTED",
        ] {
            let got = k.explain(q);
            assert_eq!(
                got.first().map(|e| e.id.as_str()),
                Some("iso7816.sw.6882"),
                "query {q:?}"
            );
            assert!(
                got.first()
                    .is_some_and(|e| e.render_text().contains("secure messaging"))
            );
        }
        // The SW1 family follows the exact entry (its "68XX" code covers 6882).
        assert_eq!(
            ids(&k.explain("6882")),
            vec!["iso7816.sw.6882", "iso7816.sw1.68"]
        );
        assert_eq!(ids(&k.explain("6885")), vec!["iso7816.sw1.68"]);
    }

    #[test]
    fn explain_reset_card_in_every_spelling() {
        let k = kb();
        for q in [
            "0x80100068",
            "80100068",
            "SCARD_W_RESET_CARD",
            "scard_w_reset_card",
            "W_RESET_CARD",
            "-2146434968",
            "ResetCard",
            "Card was reset.",
        ] {
            let got = k.explain(q);
            assert_eq!(ids(&got), vec!["pcsc.w_reset_card"], "query {q:?}");
            let text = got.first().map(|e| e.render_text()).unwrap_or_default();
            assert!(text.contains("SCardReconnect"), "{text}");
            assert!(text.contains("SCARD_LEAVE_CARD"), "{text}");
        }
    }

    #[test]
    fn explain_68_lists_every_context_in_order() {
        let k = kb();
        let got = ids(&k.explain("68"));
        assert_eq!(k.explain("0x68").len(), got.len());
        for id in [
            "iso7816.sw1.68",
            "nist.bef.check_err_cla_function",
            "iso7816.t0.procedure_68",
            "pcsc.w_reset_card",
            "mbus.long_frame_unexpected",
            "mbus.echo",
            "iec101.variable_frame_unexpected",
            "iec104.apci_start",
            "dlt645.frame_start",
            "text.ascii_h",
            "uart.genuine_68",
            "uart.68_with_framing_errors",
            "uart.seven_vs_eight_bit",
            "uart.noise_glitch",
            "tls.reply_68",
            "mtk.text_reply",
            "stm32.text_instead_of_ack",
            "esp.invalid_head",
            "asic.preamble_mismatch",
        ] {
            assert!(
                got.contains(&id.to_string()),
                "explain 68 lacks {id}: {got:?}"
            );
        }
        let pos = |id: &str| got.iter().position(|g| g == id).unwrap_or(usize::MAX);
        assert_eq!(pos("iso7816.sw1.68"), 0);
        assert!(pos("iso7816.sw1.68") < pos("pcsc.w_reset_card"));
        assert!(pos("pcsc.w_reset_card") < pos("mbus.long_frame_unexpected"));
        assert!(pos("mbus.long_frame_unexpected") < pos("iec104.apci_start"));
        assert!(pos("dlt645.frame_start") < pos("uart.genuine_68"));
        // The UART explanations carry the folklore corrections.
        let genuine = k
            .get("uart.genuine_68")
            .map(Entry::render_text)
            .unwrap_or_default();
        assert!(genuine.contains("never as 0x68"));
        let bit7 = k
            .get("uart.seven_vs_eight_bit")
            .map(Entry::render_text)
            .unwrap_or_default();
        assert!(bit7.contains("0xE8") && bit7.contains("7E1"));
    }

    #[test]
    fn explain_by_id_and_misses() {
        let k = kb();
        assert_eq!(ids(&k.explain("mbus.echo")), vec!["mbus.echo"]);
        assert!(k.explain("").is_empty());
        assert!(k.explain("   ").is_empty());
        assert!(k.explain("no such code at all").is_empty());
        assert_eq!(
            ids(&k.explain("sharing violation.")),
            vec!["pcsc.e_sharing_violation"]
        );
        assert_eq!(
            ids(&k.explain("Got byte 0x68 instead of ACK")),
            vec!["stm32.text_instead_of_ack"]
        );
    }

    #[test]
    fn render_text_has_sections_numbered_and_wrapped() {
        let k = kb();
        let text = k
            .get("pcsc.w_reset_card")
            .map(Entry::render_text)
            .unwrap_or_default();
        assert!(text.starts_with("pcsc.w_reset_card [error] 0x80100068 SCARD_W_RESET_CARD"));
        assert!(text.contains("\nLikely causes, most likely first:\n  1. Another application"));
        assert!(text.contains("\nWhat to do:\n  1. Call SCardReconnect"));
        assert!(text.contains("\n  2. "));
        assert!(text.contains("\nReference: pcsc-lite"));
        // Only a single unbreakable word (a source's URL) may run past the width.
        for l in text.lines() {
            let one_word = l.split_whitespace().count() == 1;
            assert!(
                l.chars().count() <= WRAP_WIDTH || one_word,
                "line too long: {l}"
            );
        }
        // An info entry without causes or fixes leaves those headings out.
        let ok = k
            .get("iso7816.sw.9000")
            .map(Entry::render_text)
            .unwrap_or_default();
        assert!(!ok.contains("Likely causes") && !ok.contains("What to do"));
    }

    const USER_FILE: &str = r#"
[[entry]]
id = "iso7816.sw.6882"
domain = "iso7816"
severity = "warning"
title = "Our applet: open the SCP03 channel first"
meaning = "Site-specific."
causes = ["The SCP03 channel was not opened."]
fixes = ["Run the site's open-channel script."]
reference = "site wiki"
codes = ["6882"]
when = [{ observation = "sw", sw = "6882" }]

[[entry]]
id = "site.meter.6a8f"
domain = "site"
severity = "error"
title = "Meter applet: tariff table locked"
meaning = "Vendor status word."
causes = ["Locked table."]
fixes = ["Unlock it."]
reference = "vendor manual"
codes = ["6A8F"]
when = [{ observation = "sw", sw = "6A8F" }]
"#;

    #[test]
    fn user_extension_overrides_and_adds() {
        let base = kb();
        let n = base.entries().len();
        let pos = base
            .entries()
            .iter()
            .position(|e| e.id == "iso7816.sw.6882");
        let k = base.with_extension(USER_FILE, "user.toml").unwrap();
        assert_eq!(k.entries().len(), n + 1);
        let replaced = k.get("iso7816.sw.6882").unwrap();
        assert_eq!(replaced.title, "Our applet: open the SCP03 channel first");
        assert_eq!(replaced.source, "user.toml");
        assert_eq!(
            k.entries().iter().position(|e| e.id == "iso7816.sw.6882"),
            pos
        );
        assert_eq!(
            k.entries().last().map(|e| e.id.as_str()),
            Some("site.meter.6a8f")
        );
        // The new ordinary entry hides the "unknown SW" fallback.
        assert_eq!(ids(&k.matches(&sw(0x6A8F))), vec!["site.meter.6a8f"]);
        assert_eq!(ids(&k.explain("6A8F")), vec!["site.meter.6a8f"]);
        assert_eq!(
            k.explain("6882").first().map(|e| e.title.as_str()),
            Some("Our applet: open the SCP03 channel first")
        );
    }

    #[test]
    fn load_file_reads_and_merges_or_names_the_path() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("hsmon-kb-test-{}.toml", std::process::id()));
        std::fs::write(&path, USER_FILE).unwrap();
        let k = kb().load_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(k.get("site.meter.6a8f").is_some());
        let missing = dir.join("hsmon-kb-test-does-not-exist.toml");
        let err = kb().load_file(&missing).unwrap_err();
        assert!(matches!(err, KnowledgeError::Read { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("hsmon-kb-test-does-not-exist.toml") && msg.contains("Hint:"),
            "{msg}"
        );
        // A malformed extension leaves the error pointing into the user's file.
        let bad = kb().with_extension("[[entry]\n", "mine.toml").unwrap_err();
        assert_eq!(bad.location().map(|l| l.0), Some("mine.toml"));
    }

    const GOOD: &str = r#"[[entry]]
id = "site.one"
domain = "site"
severity = "warning"
title = "t"
meaning = "m"
causes = ["c"]
fixes = ["f"]
reference = "r"
codes = ["X1"]
when = [{ observation = "sw", sw = "6A8F" }]
"#;

    /// 1-based line and column of the first occurrence of `marker` in `text`.
    fn pos_of(text: &str, marker: &str) -> (usize, usize) {
        let off = text.find(marker).unwrap();
        let before = &text[..off];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
        (line, col)
    }

    #[test]
    fn malformed_files_name_file_line_column_and_expectation() {
        assert!(Knowledge::parse(GOOD, "good.toml").is_ok());
        let dup = format!("{GOOD}\n{GOOD}");
        let dup_marker_off = GOOD.len() + 1;
        let (dup_line, _) = pos_of(&dup[dup_marker_off..], "site.one");
        // (what, file text, marker the error must point at, words the message must contain)
        let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
            (
                "toml syntax",
                GOOD.replace("[[entry]]", "[[entry]"),
                (1, 9),
                "expected `]`",
            ),
            (
                "unknown field",
                GOOD.replace("domain", "colour = 1\ndomain"),
                pos_of(&GOOD.replace("domain", "colour = 1\ndomain"), "colour"),
                "unknown field `colour`, expected one of",
            ),
            (
                "missing field",
                GOOD.replace("title = \"t\"\n", ""),
                (1, 1),
                "missing field `title`",
            ),
            (
                "bad severity",
                GOOD.replace("\"warning\"", "\"fatal\""),
                pos_of(&GOOD.replace("\"warning\"", "\"fatal\""), "\"fatal\""),
                "expected one of `info`, `warning`, `error`",
            ),
            (
                "wrong type",
                GOOD.replace("causes = [\"c\"]", "causes = \"c\""),
                pos_of(&GOOD.replace("causes = [\"c\"]", "causes = \"c\""), "\"c\""),
                "expected a sequence",
            ),
            (
                "bad hex digit",
                GOOD.replace("\"6A8F\"", "\"68G2\""),
                pos_of(GOOD, "\"6A8F\""),
                "bad hex pattern \"68G2\" in `sw`",
            ),
            (
                "wrong pattern width",
                GOOD.replace("\"6A8F\"", "\"688\""),
                pos_of(GOOD, "\"6A8F\""),
                "expected whole bytes",
            ),
            (
                "too wide for sw",
                GOOD.replace("\"6A8F\"", "\"6A8F00\""),
                pos_of(GOOD, "\"6A8F\""),
                "expected exactly 4 hex digits",
            ),
            (
                "empty pattern list",
                GOOD.replace("\"6A8F\"", "[]"),
                pos_of(GOOD, "\"6A8F\""),
                "expected at least one pattern",
            ),
            (
                "duplicate id",
                dup.clone(),
                (dup_line + GOOD.matches('\n').count() + 1, 6),
                "duplicate id \"site.one\" (first defined on line 2)",
            ),
            (
                "unknown observation kind",
                GOOD.replace("\"sw\", sw = \"6A8F\"", "\"card\""),
                pos_of(GOOD, "\"sw\""),
                "unknown observation kind \"card\": expected one of sw, pcsc, frame",
            ),
            (
                "field of another kind",
                GOOD.replace("\"sw\"", "\"pcsc\""),
                pos_of(GOOD, "{ observation"),
                "`sw` does not apply to observation \"pcsc\": expected one of code",
            ),
            (
                "unknown condition field",
                GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", bogus = 1"),
                pos_of(
                    &GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", bogus = 1"),
                    "bogus",
                ),
                "unknown field `bogus`, expected one of `observation`",
            ),
            (
                "unknown protocol",
                GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", protocol = \"modbus\""),
                pos_of(
                    &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", protocol = \"modbus\""),
                    "\"modbus\"",
                ),
                "invalid value \"modbus\" for `protocol`: expected one of apdu, atr",
            ),
            (
                "bad status",
                GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", status = \"broken\""),
                pos_of(
                    &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", status = \"broken\""),
                    "\"broken\"",
                ),
                "expected one of ok, bad_checksum, truncated, malformed",
            ),
            (
                "bad direction",
                GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", direction = \"in\""),
                pos_of(
                    &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", direction = \"in\""),
                    "\"in\"",
                ),
                "expected rx or tx",
            ),
            (
                "port out of range",
                GOOD.replace("\"sw\", sw = \"6A8F\"", "\"tls_probe\", port = 70000"),
                pos_of(
                    &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"tls_probe\", port = 70000"),
                    "70000",
                ),
                "port 70000 is outside 0-65535",
            ),
            (
                "negative percentage",
                GOOD.replace(
                    "\"sw\", sw = \"6A8F\"",
                    "\"baud\", deviation_min_pct = -1.0",
                ),
                pos_of(
                    &GOOD.replace(
                        "\"sw\", sw = \"6A8F\"",
                        "\"baud\", deviation_min_pct = -1.0",
                    ),
                    "-1.0",
                ),
                "expected a non-negative percentage",
            ),
            (
                "empty when",
                GOOD.replace("[{ observation = \"sw\", sw = \"6A8F\" }]", "[]"),
                pos_of(GOOD, "[{ observation"),
                "entry \"site.one\" has an empty `when`: expected at least one condition",
            ),
            (
                "bad id",
                GOOD.replace("\"site.one\"", "\"NoDots\""),
                pos_of(GOOD, "\"site.one\""),
                "invalid value \"NoDots\" for `id`: expected a dotted lower-case id",
            ),
            (
                "zero cla mask",
                GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", cla_any_bits = \"00\""),
                pos_of(
                    &GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", cla_any_bits = \"00\""),
                    "\"00\"",
                ),
                "expected one non-zero hex byte",
            ),
        ];
        for (what, text, (line, col), needle) in cases {
            let err = match Knowledge::parse(&text, "user-kb.toml") {
                Ok(_) => panic!("{what}: parsed, expected an error"),
                Err(e) => e,
            };
            let msg = err.to_string();
            let at = format!("user-kb.toml:{line}:{col}: ");
            assert!(msg.starts_with(&at), "{what}: expected {at:?}, got {msg}");
            assert!(msg.contains(needle), "{what}: {needle:?} not in {msg}");
            assert!(msg.contains("Hint: "), "{what}: no hint in {msg}");
            assert_eq!(err.location(), Some(("user-kb.toml", line, col)), "{what}");
        }
    }

    #[test]
    fn patterns_globs_and_codes() {
        let p = HexPattern::parse("68 XX XX 68", None).unwrap();
        assert_eq!(p.score_prefix(&[0x68, 1, 1, 0x68, 0x53]), Some(4));
        assert_eq!(p.score_prefix(&[0x68, 1, 1]), None);
        assert_eq!(p.score_prefix(&[0x10, 1, 1, 0x68]), None);
        let n = HexPattern::parse("!C0", None).unwrap();
        assert_eq!(n.score_prefix(&[0x68]), Some(SCORE_NEGATED));
        assert_eq!(n.score_prefix(&[0xC0, 0x01]), None);
        let w = HexPattern::parse("68xX", Some(2)).unwrap();
        assert_eq!(w.score_exact(&[0x68, 0x82]), Some(2));
        assert_eq!(w.score_exact(&[0x68]), None);
        assert!(HexPattern::parse("", None).is_err());
        assert!(HexPattern::parse(&"00".repeat(MAX_OBSERVED_BYTES + 1), None).is_err());
        assert!(glob_match("mtk*", "MTK-BROM"));
        assert!(glob_match("*baud*", "baud-switch"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(!glob_match("stm32", "stm32f4"));
        assert!(glob_match("*", ""));
        assert_eq!(normalise_code(" 0x80100068 "), "80100068");
        assert_eq!(normalise_code("SCARD_W_RESET_CARD"), "W_RESET_CARD");
        assert_eq!(normalise_code("-2146434968"), "80100068");
        assert_eq!(normalise_code("0xZZ"), "0XZZ");
        let c = HexPattern::from_code("63CX").unwrap();
        assert!(c.covers_code("63C2"));
        assert!(!c.covers_code("6382"));
        assert!(!c.covers_code("63C"));
        assert!(HexPattern::from_code("EXEC").is_none());
        assert!(HexPattern::from_code("XX").is_none());
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..80)
    }

    fn arb_observation() -> impl Strategy<Value = Observation> {
        let protocol = prop::sample::select(Protocol::ALL.to_vec());
        let status = prop_oneof![
            Just(FrameStatus::Ok),
            Just(FrameStatus::Truncated),
            Just(malformed()),
            Just(bad_cs()),
        ];
        prop_oneof![
            (any::<u16>(), any::<Option<u8>>(), any::<Option<u8>>()).prop_map(|(sw, cla, ins)| {
                Observation::StatusWord(crate::diagnose::observation::StatusWordSeen {
                    sw,
                    cla,
                    ins,
                })
            }),
            any::<u32>().prop_map(|code| Observation::Pcsc { code }),
            (
                protocol,
                status,
                arb_bytes(),
                any::<bool>(),
                prop::option::of(arb_bytes())
            )
                .prop_map(|(p, s, b, echo, exp)| {
                    let mut f = FrameSeen::new(p, "x", &b).with_status(s).with_echo(echo);
                    if let Some(e) = exp {
                        f = f.with_expected(&e);
                    }
                    Observation::Frame(f)
                }),
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(f, p, e)| line(f, p, e)),
            (any::<u32>(), any::<Option<u32>>()).prop_map(|(c, e)| baud(c, e)),
            any::<u8>().prop_map(|byte| Observation::SevenBitPair { byte }),
            (any::<u8>(), any::<bool>()).prop_map(|(byte, framing_error)| {
                Observation::IsolatedByte {
                    byte,
                    framing_error,
                }
            }),
            (any::<u8>(), any::<u64>(), any::<u64>()).prop_map(|(byte, count, framing_errors)| {
                Observation::RepeatedByte {
                    byte,
                    count,
                    framing_errors,
                }
            }),
            (".{0,12}", ".{0,12}", arb_bytes(), arb_bytes(), arb_bytes())
                .prop_map(|(p, s, a, b, c)| hs(&p, &s, &a, &b, &c)),
            (
                any::<Option<u16>>(),
                prop::option::of(".{0,6}"),
                arb_bytes()
            )
                .prop_map(|(port, scheme, reply)| tls(port, scheme.as_deref(), &reply)),
        ]
    }

    /// Frame observations as a session makes them: every protocol and status, the kinds the
    /// decoders write, bytes that often start with a frame start.
    fn arb_frame_observation() -> impl Strategy<Value = Observation> {
        let kind = prop::sample::select(vec![
            "long", "short", "control", "ack", "fixed", "variable", "line", "i", "s", "u", "atr",
            "pps", "sw", "header", "response", "command", "request", "sync", "nack", "echo",
            "reply", "record", "x",
        ]);
        let status = prop_oneof![
            Just(FrameStatus::Ok),
            Just(FrameStatus::Truncated),
            Just(malformed()),
            Just(bad_cs()),
        ];
        let start = prop::sample::select(vec![
            0x68u8, 0x10, 0xE5, 0x3B, 0x16, 0x7F, 0x79, 0x1F, 0xC0, 0x00,
        ]);
        (
            prop::sample::select(Protocol::ALL.to_vec()),
            kind,
            status,
            start,
            arb_bytes(),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(arb_bytes()),
        )
            .prop_map(|(p, kind, s, start, rest, echo, tx, exp)| {
                let mut bytes = vec![start];
                bytes.extend(rest);
                let mut f = FrameSeen::new(p, kind, &bytes)
                    .with_status(s)
                    .with_echo(echo);
                if tx {
                    f = f.with_direction(Direction::Tx);
                }
                if let Some(e) = exp {
                    f = f.with_expected(&e);
                }
                Observation::Frame(f)
            })
    }

    /// `ranked` without any index: every entry scored.
    fn ranked_by_scanning<'k>(k: &'k Knowledge, obs: &Observation) -> Vec<(i64, &'k str)> {
        let scored: Vec<(i64, usize, bool)> = k
            .entries()
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.score(obs).map(|s| (s, i, e.fallback)))
            .collect();
        let mut chosen: Vec<(i64, usize)> = if scored.iter().any(|x| !x.2) {
            scored.iter().filter(|x| !x.2).map(|x| (x.0, x.1)).collect()
        } else {
            let best = scored.iter().map(|x| x.0).max();
            scored
                .iter()
                .filter(|x| Some(x.0) == best)
                .map(|x| (x.0, x.1))
                .collect()
        };
        chosen.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        chosen
            .into_iter()
            .map(|(s, i)| (s, k.entries()[i].id.as_str()))
            .collect()
    }

    fn assert_index_agrees(k: &Knowledge, obs: &Observation) {
        let want = ranked_by_scanning(k, obs);
        let got: Vec<(i64, &str)> = k
            .ranked(obs)
            .iter()
            .map(|m| (m.score, m.entry.id.as_str()))
            .collect();
        assert_eq!(got, want, "{obs:?}");
        assert_eq!(
            k.best(obs).map(|e| e.id.as_str()),
            want.first().map(|w| w.1),
            "{obs:?}"
        );
        if let Observation::Frame(f) = obs {
            let may = k.may_match_frame(
                f.protocol,
                &f.status,
                f.direction,
                f.echo,
                f.expected.is_some(),
            );
            assert!(may || want.is_empty(), "{obs:?}");
        }
    }

    #[test]
    fn indexed_matching_equals_scanning_every_entry_on_the_reachability_table() {
        for (_, obs) in reachability_table() {
            assert_index_agrees(&KB, &obs);
        }
    }

    #[test]
    fn frame_slots_are_distinct_and_a_plain_frame_has_few_candidates() {
        let mut seen = vec![false; FrameSlot::COUNT];
        for slot in FrameSlot::all() {
            let i = slot.index();
            assert!(i < FrameSlot::COUNT && !seen[i], "{slot:?}");
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s));
        // A valid received M-Bus frame, no echo, nothing expected: nothing to score.
        let plain = FrameSeen::new(Protocol::Mbus, "long", &[0x68, 0x03, 0x03, 0x68]);
        assert!(KB.candidates(&Observation::Frame(plain)).is_empty());
    }

    /// Pieces of knowledge files, so random files get past the TOML parser into validation.
    fn arb_kb_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("[[entry]]\n".to_string()),
            Just(GOOD.to_string()),
            Just("id = \"a.b\"\n".to_string()),
            Just("when = [{ observation = \"frame\", bytes = \"68 XX\" }]\n".to_string()),
            Just(
                "when = [{ observation = \"handshake\", profile = [\"*\"], got = \"!C0\" }]\n"
                    .to_string()
            ),
            Just("{ observation = \"baud\", deviation_min_pct = 1e309 }".to_string()),
            Just("port = [1, 2, 65536]\n".to_string()),
            Just("sw = \"".to_string()),
            "[0-9A-Fa-fXx! ]{0,10}".prop_map(|s| format!("\"{s}\"\n")),
            ".{0,20}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,400}") {
            let _ = Knowledge::parse(&s, "fuzz.toml");
        }

        #[test]
        fn parsing_knowledge_like_text_never_panics_and_errors_point_inside(s in arb_kb_text()) {
            if let Err(e) = Knowledge::parse(&s, "fuzz.toml") {
                let (file, line, col) = e.location().unwrap();
                prop_assert_eq!(file, "fuzz.toml");
                prop_assert!(line >= 1 && line <= s.lines().count().max(1) + 1);
                prop_assert!(col >= 1);
            }
        }

        #[test]
        fn matching_and_explaining_never_panic(o in arb_observation(), q in "\\PC{0,40}") {
            let k = &*KB;
            let ranked = k.ranked(&o);
            // Ranked best first, and all of the observation's kind.
            prop_assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
            prop_assert!(ranked.iter().all(|m| m.entry.when.iter().any(|c| c.observation_kind() == o.kind())));
            let _ = k.explain(&q);
        }

        /// The per-(protocol, status) index and `best` answer exactly as scoring every
        /// entry does.
        #[test]
        fn indexed_matching_equals_scanning_every_entry(
            o in prop_oneof![arb_frame_observation(), arb_observation()]
        ) {
            assert_index_agrees(&KB, &o);
        }

        #[test]
        fn hex_patterns_never_panic(s in "\\PC{0,40}", b in arb_bytes()) {
            if let Ok(p) = HexPattern::parse(&s, None) {
                let _ = p.score_prefix(&b);
                let _ = p.score_exact(&b);
            }
            let _ = glob_match(&s, "mtk-brom");
        }
    }
}
