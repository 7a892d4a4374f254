//! Handshake profiles: declarative send/expect sequences in TOML. The built-in ones live in
//! `assets/profiles/*.toml` (embedded at build time); the user's in
//! `$XDG_CONFIG_HOME/hsmon/profiles/*.toml`, where a profile with a built-in's `name` replaces
//! it. Parsing is pure; every error names the file, line and column and what was expected.
//!
//! ```toml
//! name = "stm32"
//! description = "STM32 USART bootloader: 7F → ACK 79, then GET"
//! transport = "serial"              # serial | card | tcp
//! knowledge_profile = "stm32"       # optional: the `profile` knowledge conditions see
//! echo = "skip"                     # optional: skip a half-duplex echo (default) | divergence
//!
//! [serial]
//! baud = 57600
//! format = "8E1"
//!
//! [explain]                         # knowledge ids shown first for each kind of divergence
//! no_answer = ["stm32.no_ack"]      # no_answer | echo | text | mismatch | short
//!
//! [[step]]
//! name = "init"
//! send = "7F"
//! expect = "79"                     # exact bytes; X = any nibble
//! timeout_ms = 500
//! retries = 1
//!
//! [[step]]
//! name = "get"
//! send = "00 FF"
//! expect = { bytes = "79 XX XX", length = { byte = 1, add = 4 }, last = "79" }
//! ```
//!
//! A step does, in order: wait `delay_ms`, set `dtr`/`rts` (boot-mode entry), send `send`, and
//! wait up to `timeout_ms` for `expect` (a string, a table with `bytes`, `mask`, `last`, `sw`,
//! `length`, `preamble`, or an array of alternatives), resending `retries` times.
//! `send` may use the profile's `[vars]`: `{aid}` inserts its bytes, `{len:aid}` their count.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::expect::{Expect, Length, Matcher, Pattern};
use crate::diagnose::knowledge::Knowledge;
use crate::event::{Baud, FlowControl, FrameFormat, LineSettings};

/// The built-in profiles: (name in messages, text).
const BUILT_IN: [(&str, &str); 7] = [
    (
        "assets/profiles/mtk-brom.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/mtk-brom.toml"
        )),
    ),
    (
        "assets/profiles/stm32.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/stm32.toml"
        )),
    ),
    (
        "assets/profiles/esp32.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/esp32.toml"
        )),
    ),
    (
        "assets/profiles/mbus.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/mbus.toml"
        )),
    ),
    (
        "assets/profiles/iec104.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/iec104.toml"
        )),
    ),
    (
        "assets/profiles/dlt645.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/dlt645.toml"
        )),
    ),
    (
        "assets/profiles/iso7816-select.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/profiles/iso7816-select.toml"
        )),
    ),
];

/// Default time a step waits for its answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default quiet gap that ends a wrong reply (so the report shows all of it, not one byte).
pub const DEFAULT_IDLE: Duration = Duration::from_millis(50);
/// Bounds that keep a profile from stalling a run for hours.
const MAX_TIMEOUT_MS: u64 = 60_000;
const MAX_DELAY_MS: u64 = 60_000;
const MAX_RETRIES: u64 = 100;
const MAX_STEPS: usize = 256;
const MAX_SEND: usize = 4096;

/// Why a profile could not be used. Errors inside a file carry its name, line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Syntax, a missing or unknown field, or a value that does not fit.
    #[error("{file}:{line}:{column}: {message}. Hint: {hint}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
        hint: String,
    },
    #[error("cannot read profile {path}: {reason}. Hint: check the path and that you can read it")]
    Read { path: String, reason: String },
    #[error(
        "{file}: a profile named \"{name}\" is also defined in {other}. Hint: give each profile its own `name` (a user profile named like a built-in one replaces it)"
    )]
    Duplicate {
        file: String,
        name: String,
        other: String,
    },
    #[error(
        "no handshake profile named \"{name}\": use one of {available} (hsmon handshake --list)"
    )]
    Unknown { name: String, available: String },
    #[error("--set {given}: {reason}")]
    BadVar { given: String, reason: String },
}

impl ProfileError {
    /// `(file, line, column)` of errors that point into a file.
    pub fn location(&self) -> Option<(&str, usize, usize)> {
        match self {
            ProfileError::Invalid {
                file, line, column, ..
            } => Some((file, *line, *column)),
            _ => None,
        }
    }
}

/// How the device is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A serial port, opened with these settings (the command line may override them).
    Serial(LineSettings),
    /// A smart card in a PC/SC reader: each `send` is a command APDU.
    Card,
    /// A TCP socket; `default_port` when `--tcp` gives only a host.
    Tcp { default_port: Option<u16> },
}

impl Transport {
    pub fn label(&self) -> &'static str {
        match self {
            Transport::Serial(_) => "serial",
            Transport::Card => "card",
            Transport::Tcp { .. } => "tcp",
        }
    }
}

/// What to do when the line gives back what was just sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoPolicy {
    /// A half-duplex line (2-wire RS-485, M-Bus level converters): recognise the echo, say so,
    /// and match the answer after it.
    Skip,
    /// An echo is the divergence (a MediaTek BROM echoing A0 instead of answering 5F).
    Divergence,
}

/// The kinds of divergence a profile can attach knowledge ids to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DivergenceKind {
    /// Nothing (or only the line's echo) came back before the timeout.
    NoAnswer,
    /// What came back starts with what was sent, and the profile treats an echo as wrong.
    Echo,
    /// Printable text: a boot log or an application, not the expected protocol.
    Text,
    /// Other bytes than the expected ones.
    Mismatch,
    /// The right start, then the reply stopped short.
    Short,
}

impl DivergenceKind {
    pub const ALL: [DivergenceKind; 5] = [
        DivergenceKind::NoAnswer,
        DivergenceKind::Echo,
        DivergenceKind::Text,
        DivergenceKind::Mismatch,
        DivergenceKind::Short,
    ];

    /// The key in `[explain]` and in reports.
    pub fn id(self) -> &'static str {
        match self {
            DivergenceKind::NoAnswer => "no_answer",
            DivergenceKind::Echo => "echo",
            DivergenceKind::Text => "text",
            DivergenceKind::Mismatch => "mismatch",
            DivergenceKind::Short => "short",
        }
    }
}

/// Which observation a divergence is explained from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationChoice {
    /// `observation = "handshake"`: profile, step, sent, expected, got.
    Handshake,
    /// `observation = "sw"`: the status word the card answered (card profiles).
    StatusWord,
}

/// Knowledge ids to show first for each kind of divergence, and the observation to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explain {
    pub observation: ObservationChoice,
    pub ids: BTreeMap<DivergenceKind, Vec<String>>,
    /// Where each id was written (line, column), for "no such knowledge id" errors.
    id_spans: Vec<(String, usize, usize)>,
}

impl Explain {
    fn empty() -> Explain {
        Explain {
            observation: ObservationChoice::Handshake,
            ids: BTreeMap::new(),
            id_spans: Vec::new(),
        }
    }

    /// The ids for `kind` (a step's own list, else the profile's).
    pub fn ids_for(&self, kind: DivergenceKind) -> &[String] {
        self.ids.get(&kind).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A piece of a `send` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Bytes(Vec<u8>),
    Var(String),
    Len(String),
}

/// One step of a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    /// 1-based line of the step in its file (card APDUs carry it as their script line).
    pub line: usize,
    pub delay: Duration,
    pub dtr: Option<bool>,
    pub rts: Option<bool>,
    /// Bytes to send (resolved from the template and the vars); empty: send nothing.
    pub send: Vec<u8>,
    template: Vec<Piece>,
    pub expect: Option<Expect>,
    pub timeout: Duration,
    pub retries: u32,
    pub idle: Duration,
    pub echo: EchoPolicy,
    /// The step's `[step.explain]` merged over the profile's.
    pub explain: Explain,
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub transport: Transport,
    /// The `profile` that knowledge conditions match (`mtk*`, `stm32*`, `esp*`, ...).
    pub knowledge_profile: String,
    pub steps: Vec<Step>,
    /// Variables and their current values (defaults, or `--set`).
    pub vars: BTreeMap<String, Vec<u8>>,
    /// The file it came from (`assets/profiles/stm32.toml` or a path).
    pub source: String,
    pub built_in: bool,
    explain: Explain,
}

impl Profile {
    /// Parses and validates one profile file. `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Profile, ProfileError> {
        let ctx = Ctx { file, text };
        let raw: RawProfile = toml::from_str(text).map_err(|e| ctx.syntax(&e))?;
        ctx.build(raw)
    }

    /// Replaces variable values (`--set aid=A000000003`): each `name=HEX`, name declared in
    /// `[vars]`.
    pub fn with_vars(mut self, sets: &[String]) -> Result<Profile, ProfileError> {
        for given in sets {
            let bad = |reason: String| ProfileError::BadVar {
                given: given.clone(),
                reason,
            };
            let (name, value) = given
                .split_once('=')
                .ok_or_else(|| bad("write NAME=HEX, e.g. --set aid=A000000003".to_string()))?;
            let name = name.trim();
            if !self.vars.contains_key(name) {
                let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                return Err(bad(if known.is_empty() {
                    format!("profile {} has no variables", self.name)
                } else {
                    format!(
                        "profile {} has no variable '{name}': it has {}",
                        self.name,
                        known.join(", ")
                    )
                }));
            }
            let bytes = crate::hex::parse(value)
                .map_err(|e| bad(format!("the value is not hex bytes: {e}")))?;
            if bytes.len() > 255 {
                return Err(bad("at most 255 bytes".to_string()));
            }
            self.vars.insert(name.to_string(), bytes);
        }
        for step in &mut self.steps {
            step.send =
                render(&step.template, &self.vars).map_err(|reason| ProfileError::BadVar {
                    given: sets.join(" "),
                    reason,
                })?;
        }
        Ok(self)
    }

    /// Checks that every knowledge id the profile names exists.
    pub fn check_knowledge(&self, knowledge: &Knowledge) -> Result<(), ProfileError> {
        let all = std::iter::once(&self.explain).chain(self.steps.iter().map(|s| &s.explain));
        for ex in all {
            for (id, line, column) in &ex.id_spans {
                if knowledge.get(id).is_none() {
                    return Err(ProfileError::Invalid {
                        file: self.source.clone(),
                        line: *line,
                        column: *column,
                        message: format!("no knowledge entry with id \"{id}\""),
                        hint: "use an id `hsmon explain` knows (e.g. stm32.no_ack), or add the \
                               entry to your knowledge.toml"
                            .to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The ids declared for a kind of divergence at a step (the step's, else the profile's).
    pub fn explain_ids(&self, step: usize, kind: DivergenceKind) -> &[String] {
        self.steps
            .get(step)
            .map_or(&[][..], |s| s.explain.ids_for(kind))
    }

    /// The observation a divergence at `step` is explained from.
    pub fn observation(&self, step: usize) -> ObservationChoice {
        self.steps
            .get(step)
            .map_or(self.explain.observation, |s| s.explain.observation)
    }

    /// The line settings a serial profile asks for.
    pub fn line_settings(&self) -> Option<LineSettings> {
        match self.transport {
            Transport::Serial(s) => Some(s),
            _ => None,
        }
    }

    /// One line for `--list`: name, transport, description.
    pub fn list_line(&self) -> String {
        format!(
            "{:<16} {:<6} {}{}",
            self.name,
            self.transport.label(),
            self.description,
            if self.built_in {
                String::new()
            } else {
                format!(" [{}]", self.source)
            }
        )
    }
}

/// Fills a template with variable values.
fn render(template: &[Piece], vars: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in template {
        match p {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Var(n) | Piece::Len(n) => {
                let v = vars
                    .get(n)
                    .ok_or_else(|| format!("no variable '{n}' in [vars]"))?;
                if matches!(p, Piece::Len(_)) {
                    out.push(u8::try_from(v.len()).map_err(|_| format!("{n} is longer than 255"))?);
                } else {
                    out.extend_from_slice(v);
                }
            }
        }
    }
    if out.len() > MAX_SEND {
        return Err(format!("the bytes to send exceed {MAX_SEND}"));
    }
    Ok(out)
}

/// The built-in and user profiles, by name.
#[derive(Debug, Clone)]
pub struct Profiles {
    list: Vec<Profile>,
    skipped: Vec<ProfileError>,
}

impl Profiles {
    /// The built-in profiles only.
    pub fn built_in() -> Result<Profiles, ProfileError> {
        let mut list = Vec::new();
        for (file, text) in BUILT_IN {
            let mut p = Profile::parse(text, file)?;
            p.built_in = true;
            list.push(p);
        }
        Ok(Profiles {
            list,
            skipped: Vec::new(),
        })
    }

    /// The built-in profiles, then every `*.toml` in `dir` (in name order): a user profile
    /// with a built-in's name replaces it. Ids are checked against `knowledge`. A user file
    /// that cannot be read, does not parse, names an unknown id or repeats another file's
    /// name is left out and kept in [`Profiles::skipped`], so one broken file costs only
    /// itself; an error in a built-in profile is an error.
    pub fn load(dir: Option<&Path>, knowledge: &Knowledge) -> Result<Profiles, ProfileError> {
        let mut set = Profiles::built_in()?;
        for p in &set.list {
            p.check_knowledge(knowledge)?;
        }
        let Some(dir) = dir.filter(|d| d.is_dir()) else {
            return Ok(set);
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                set.skipped.push(ProfileError::Read {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                });
                return Ok(set);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for path in files {
            let name = path.display().to_string();
            let loaded = std::fs::read_to_string(&path)
                .map_err(|e| ProfileError::Read {
                    path: name.clone(),
                    reason: e.to_string(),
                })
                .and_then(|text| Profile::parse(&text, &name))
                .and_then(|p| p.check_knowledge(knowledge).map(|()| p))
                .and_then(|p| match seen.get(&p.name) {
                    Some(other) => Err(ProfileError::Duplicate {
                        file: name.clone(),
                        name: p.name,
                        other: other.clone(),
                    }),
                    None => Ok(p),
                });
            match loaded {
                Ok(p) => {
                    seen.insert(p.name.clone(), name);
                    set.insert(p);
                }
                Err(e) => set.skipped.push(e),
            }
        }
        Ok(set)
    }

    /// The user profiles [`Profiles::load`] left out, each with its file and the problem.
    pub fn skipped(&self) -> &[ProfileError] {
        &self.skipped
    }

    fn insert(&mut self, p: Profile) {
        match self.list.iter_mut().find(|q| q.name == p.name) {
            Some(slot) => *slot = p,
            None => self.list.push(p),
        }
    }

    /// Where user profiles live: `$XDG_CONFIG_HOME/hsmon/profiles`.
    pub fn user_dir() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("hsmon").join("profiles"))
    }

    pub fn all(&self) -> &[Profile] {
        &self.list
    }

    pub fn get(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.list
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ProfileError::Unknown {
                name: name.to_string(),
                available: self
                    .list
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

// ---------------------------------------------------------------------------------------------
// The file format as deserialised, and its validation
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    description: Spanned<String>,
    transport: Spanned<String>,
    knowledge_profile: Option<Spanned<String>>,
    echo: Option<Spanned<String>>,
    serial: Option<Spanned<RawSerial>>,
    tcp: Option<RawTcp>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<String>>,
    explain: Option<Spanned<RawExplain>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSerial {
    baud: Spanned<u32>,
    format: Spanned<String>,
    flow: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExplain {
    observation: Option<Spanned<String>>,
    no_answer: Option<Spanned<IdList>>,
    echo: Option<Spanned<IdList>>,
    text: Option<Spanned<IdList>>,
    mismatch: Option<Spanned<IdList>>,
    short: Option<Spanned<IdList>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    delay_ms: Option<Spanned<u64>>,
    dtr: Option<Spanned<bool>>,
    rts: Option<Spanned<bool>>,
    send: Option<Spanned<String>>,
    expect: Option<Spanned<RawExpect>>,
    timeout_ms: Option<Spanned<u64>>,
    retries: Option<Spanned<u64>>,
    idle_ms: Option<Spanned<u64>>,
    echo: Option<Spanned<String>>,
    explain: Option<Spanned<RawExplain>>,
}

/// One id or a list of ids.
struct IdList(Vec<String>);

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IdList, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a knowledge id or an array of them, e.g. [\"stm32.no_ack\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdList, E> {
                Ok(IdList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(IdList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `expect`: a hex string, a table, or an array of either (alternatives).
struct RawExpect(Vec<RawAlt>);

enum RawAlt {
    Hex(String),
    Table(RawMatcher),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatcher {
    bytes: Option<String>,
    mask: Option<String>,
    last: Option<String>,
    sw: Option<String>,
    length: Option<RawLength>,
    preamble: Option<String>,
}

enum RawLength {
    Exact(u64),
    FromByte { byte: u64, add: u64 },
}

impl<'de> Deserialize<'de> for RawLength {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawLength, D::Error> {
        struct V;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FromByte {
            byte: u64,
            add: u64,
        }
        impl<'de> Visitor<'de> for V {
            type Value = RawLength;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes, or { byte = OFFSET, add = N } (the reply's length byte at OFFSET plus N)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawLength, E> {
                u64::try_from(v)
                    .map(RawLength::Exact)
                    .map_err(|_| E::custom("a length cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawLength, E> {
                Ok(RawLength::Exact(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawLength, A::Error> {
                let f = FromByte::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawLength::FromByte {
                    byte: f.byte,
                    add: f.add,
                })
            }
        }
        d.deserialize_any(V)
    }
}

struct AltVisitor;

impl<'de> Visitor<'de> for AltVisitor {
    type Value = RawAlt;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "hex bytes such as \"79\", or a table such as { bytes = \"68 XX XX 68\", length = 27 }",
        )
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAlt, E> {
        Ok(RawAlt::Hex(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAlt, A::Error> {
        RawMatcher::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawAlt::Table)
    }
}

impl<'de> Deserialize<'de> for RawAlt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawAlt, D::Error> {
        d.deserialize_any(AltVisitor)
    }
}

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawExpect, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("hex bytes such as \"79\", a table such as { bytes = \"68 XX XX 68\" }, or an array of alternatives")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawExpect, E> {
                AltVisitor.visit_str(v).map(|a| RawExpect(vec![a]))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawExpect, A::Error> {
                AltVisitor.visit_map(map).map(|a| RawExpect(vec![a]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawExpect, A::Error> {
                let mut out = Vec::new();
                while let Some(a) = seq.next_element::<RawAlt>()? {
                    out.push(a);
                }
                Ok(RawExpect(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The file being validated, for positions in errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    /// 1-based line and column (in characters) of a byte offset; clamped to the text.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        crate::toml_pos::line_col(self.text, offset)
    }

    fn syntax(&self, e: &toml::de::Error) -> ProfileError {
        let (line, column) = self.line_col(e.span().map_or(0, |s| s.start));
        ProfileError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            message: e.message().trim().trim_end_matches('.').to_string(),
            hint: "check the TOML syntax and field names; a profile needs name, description, \
                   transport and at least one [[step]] (see assets/profiles/stm32.toml)"
                .to_string(),
        }
    }

    fn invalid(&self, span: &Range<usize>, message: String, hint: &str) -> ProfileError {
        let (line, column) = self.line_col(span.start);
        ProfileError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            message,
            hint: hint.to_string(),
        }
    }

    fn build(&self, raw: RawProfile) -> Result<Profile, ProfileError> {
        let name = raw.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            return Err(self.invalid(
                &raw.name.span(),
                format!("`name` \"{name}\" is not a profile name: expected lower-case letters, digits and '-' (at most 40), e.g. \"stm32\""),
                "the name is what you type after `hsmon handshake`",
            ));
        }
        let description = raw.description.get_ref().trim().to_string();
        if description.is_empty() || description.contains('\n') || description.chars().count() > 120
        {
            return Err(self.invalid(
                &raw.description.span(),
                "`description` must be one non-empty line of at most 120 characters".to_string(),
                "`hsmon handshake --list` shows it next to the name",
            ));
        }
        let transport = match raw.transport.get_ref().as_str() {
            "serial" => {
                let Some(serial) = raw.serial else {
                    return Err(self.invalid(
                        &raw.transport.span(),
                        "a serial profile needs a [serial] table with baud and format".to_string(),
                        "add [serial] baud = 115200, format = \"8N1\"",
                    ));
                };
                Transport::Serial(self.line_settings(serial)?)
            }
            "card" | "tcp" => {
                if let Some(s) = &raw.serial {
                    return Err(self.invalid(
                        &s.span(),
                        format!(
                            "a [serial] table does not apply to transport \"{}\"",
                            raw.transport.get_ref()
                        ),
                        "remove it, or set transport = \"serial\"",
                    ));
                }
                if raw.transport.get_ref() == "card" {
                    Transport::Card
                } else {
                    Transport::Tcp {
                        default_port: raw.tcp.as_ref().and_then(|t| t.port),
                    }
                }
            }
            other => {
                return Err(self.invalid(
                    &raw.transport.span(),
                    format!("unknown transport \"{other}\": expected serial, card or tcp"),
                    "serial for a UART, card for a PC/SC reader, tcp for a socket",
                ));
            }
        };
        if raw.tcp.is_some() && !matches!(transport, Transport::Tcp { .. }) {
            return Err(self.invalid(
                &raw.transport.span(),
                "a [tcp] table only applies to transport \"tcp\"".to_string(),
                "remove the [tcp] table",
            ));
        }
        let knowledge_profile = match &raw.knowledge_profile {
            Some(k) if k.get_ref().trim().is_empty() => {
                return Err(self.invalid(
                    &k.span(),
                    "`knowledge_profile` is empty".to_string(),
                    "give the profile name knowledge conditions match, e.g. \"stm32\", or leave it out",
                ));
            }
            Some(k) => k.get_ref().trim().to_string(),
            None => name.clone(),
        };
        let echo = match &raw.echo {
            Some(e) => self.echo_policy(e)?,
            None => EchoPolicy::Skip,
        };
        let mut vars = BTreeMap::new();
        for (k, v) in &raw.vars {
            if !valid_var(k) {
                return Err(self.invalid(
                    &v.span(),
                    format!(
                        "variable name \"{k}\" is not allowed: expected letters, digits and '_'"
                    ),
                    "name variables like aid or address",
                ));
            }
            let bytes = crate::hex::parse(v.get_ref()).map_err(|e| {
                self.invalid(
                    &v.span(),
                    format!("variable {k}: not hex bytes: {e}"),
                    "write bytes as hex, e.g. \"A0 00 00 00 03\"",
                )
            })?;
            if bytes.len() > 255 {
                return Err(self.invalid(
                    &v.span(),
                    format!("variable {k} has {} bytes: at most 255", bytes.len()),
                    "shorten it",
                ));
            }
            vars.insert(k.clone(), bytes);
        }
        let explain = match raw.explain {
            Some(e) => self.explain(e, None)?,
            None => Explain::empty(),
        };
        if raw.step.is_empty() {
            return Err(ProfileError::Invalid {
                file: self.file.to_string(),
                line: 1,
                column: 1,
                message: "the profile has no steps: expected at least one [[step]]".to_string(),
                hint: "add [[step]] with name, send and expect".to_string(),
            });
        }
        if raw.step.len() > MAX_STEPS {
            return Err(self.invalid(
                &raw.step[MAX_STEPS].span(),
                format!("more than {MAX_STEPS} steps"),
                "split the handshake into several profiles",
            ));
        }
        let mut steps = Vec::with_capacity(raw.step.len());
        for s in raw.step {
            let step = self.step(s, &transport, echo, &explain, &vars)?;
            if steps.iter().any(|p: &Step| p.name == step.name) {
                return Err(ProfileError::Invalid {
                    file: self.file.to_string(),
                    line: step.line,
                    column: 1,
                    message: format!("a second step named \"{}\"", step.name),
                    hint: "give each step its own name: reports and knowledge conditions use it"
                        .to_string(),
                });
            }
            steps.push(step);
        }
        Ok(Profile {
            name,
            description,
            transport,
            knowledge_profile,
            steps,
            vars,
            source: self.file.to_string(),
            built_in: false,
            explain,
        })
    }

    fn line_settings(&self, s: Spanned<RawSerial>) -> Result<LineSettings, ProfileError> {
        let s = s.into_inner();
        let baud = Baud::new(*s.baud.get_ref()).map_err(|e| {
            self.invalid(
                &s.baud.span(),
                e.to_string(),
                "use a rate such as 9600 or 115200",
            )
        })?;
        let format =
            s.format.get_ref().parse::<FrameFormat>().map_err(|e| {
                self.invalid(&s.format.span(), e.to_string(), "e.g. format = \"8E1\"")
            })?;
        let flow = match &s.flow {
            Some(f) => f.get_ref().parse::<FlowControl>().map_err(|e| {
                self.invalid(
                    &f.span(),
                    e.to_string(),
                    "flow = \"none\" unless the device needs RTS/CTS",
                )
            })?,
            None => FlowControl::None,
        };
        Ok(LineSettings { baud, format, flow })
    }

    fn echo_policy(&self, e: &Spanned<String>) -> Result<EchoPolicy, ProfileError> {
        match e.get_ref().as_str() {
            "skip" => Ok(EchoPolicy::Skip),
            "divergence" => Ok(EchoPolicy::Divergence),
            other => Err(self.invalid(
                &e.span(),
                format!("`echo` \"{other}\": expected \"skip\" or \"divergence\""),
                "skip: a half-duplex line repeats what is sent, match past it; divergence: an echo means the device is in the wrong state",
            )),
        }
    }

    /// An `[explain]` table; a step's is merged over the profile's (`base`).
    fn explain(
        &self,
        raw: Spanned<RawExplain>,
        base: Option<&Explain>,
    ) -> Result<Explain, ProfileError> {
        let mut out = base.cloned().unwrap_or_else(Explain::empty);
        out.id_spans.clear();
        let raw = raw.into_inner();
        if let Some(o) = &raw.observation {
            out.observation = match o.get_ref().as_str() {
                "handshake" => ObservationChoice::Handshake,
                "sw" => ObservationChoice::StatusWord,
                other => {
                    return Err(self.invalid(
                        &o.span(),
                        format!("`observation` \"{other}\": expected \"handshake\" or \"sw\""),
                        "sw explains a card's status word; handshake the bytes of any other step",
                    ));
                }
            };
        }
        let lists = [
            (DivergenceKind::NoAnswer, raw.no_answer),
            (DivergenceKind::Echo, raw.echo),
            (DivergenceKind::Text, raw.text),
            (DivergenceKind::Mismatch, raw.mismatch),
            (DivergenceKind::Short, raw.short),
        ];
        for (kind, list) in lists {
            let Some(list) = list else { continue };
            let span = list.span();
            let ids = list.into_inner().0;
            for id in &ids {
                if !valid_knowledge_id(id) {
                    return Err(self.invalid(
                        &span,
                        format!("`{}`: \"{id}\" is not a knowledge id", kind.id()),
                        "ids are lower-case dotted names such as stm32.no_ack (hsmon explain lists them)",
                    ));
                }
                let (line, column) = self.line_col(span.start);
                out.id_spans.push((id.clone(), line, column));
            }
            out.ids.insert(kind, ids);
        }
        Ok(out)
    }

    fn step(
        &self,
        raw: Spanned<RawStep>,
        transport: &Transport,
        echo: EchoPolicy,
        explain: &Explain,
        vars: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Step, ProfileError> {
        let span = raw.span();
        let (line, _) = self.line_col(span.start);
        let s = raw.into_inner();
        let name = s.name.get_ref().trim().to_string();
        if name.is_empty() || name.chars().count() > 40 || name.contains('\n') {
            return Err(self.invalid(
                &s.name.span(),
                "a step `name` must be one line of 1 to 40 characters".to_string(),
                "e.g. name = \"init\"",
            ));
        }
        let ms = |v: &Option<Spanned<u64>>, field: &str, max: u64, default: Duration| match v {
            None => Ok(default),
            Some(x) if *x.get_ref() > max => Err(self.invalid(
                &x.span(),
                format!("`{field}` {} is more than {max}", x.get_ref()),
                "times are in milliseconds",
            )),
            Some(x) => Ok(Duration::from_millis(*x.get_ref())),
        };
        let delay = ms(&s.delay_ms, "delay_ms", MAX_DELAY_MS, Duration::ZERO)?;
        let timeout = ms(&s.timeout_ms, "timeout_ms", MAX_TIMEOUT_MS, DEFAULT_TIMEOUT)?;
        let idle = ms(&s.idle_ms, "idle_ms", MAX_TIMEOUT_MS, DEFAULT_IDLE)?;
        if timeout.is_zero() {
            if let Some(t) = &s.timeout_ms {
                return Err(self.invalid(
                    &t.span(),
                    "`timeout_ms` is 0: the step could never be answered".to_string(),
                    "give the device time to answer, e.g. 500",
                ));
            }
        }
        let retries = match &s.retries {
            Some(r) if *r.get_ref() > MAX_RETRIES => {
                return Err(self.invalid(
                    &r.span(),
                    format!("`retries` {} is more than {MAX_RETRIES}", r.get_ref()),
                    "retries counts resends after the first attempt",
                ));
            }
            Some(r) => u32::try_from(*r.get_ref()).unwrap_or(0),
            None => 0,
        };
        for (field, v) in [("dtr", &s.dtr), ("rts", &s.rts)] {
            if let (Some(v), false) = (v, matches!(transport, Transport::Serial(_))) {
                return Err(self.invalid(
                    &v.span(),
                    format!("`{field}` only applies to serial profiles"),
                    "modem lines exist on serial ports only",
                ));
            }
        }
        let template = match &s.send {
            Some(t) => parse_template(t.get_ref(), vars).map_err(|m| {
                self.invalid(
                    &t.span(),
                    format!("`send`: {m}"),
                    "write hex bytes (\"7F\", \"10 40 FE 3E 16\"); {name} inserts a [vars] value, {len:name} its length",
                )
            })?,
            None => Vec::new(),
        };
        let send = render(&template, vars).map_err(|m| {
            self.invalid(
                &s.send.as_ref().map_or(span.clone(), |t| t.span()),
                format!("`send`: {m}"),
                "shorten the bytes to send",
            )
        })?;
        if let (Some(t), true) = (&s.send, send.is_empty()) {
            return Err(self.invalid(
                &t.span(),
                "`send` is empty".to_string(),
                "leave `send` out for a step that only waits or sets lines",
            ));
        }
        let card = matches!(transport, Transport::Card);
        if card {
            if let Some(t) = &s.send {
                if send.len() < 4 {
                    return Err(self.invalid(
                        &t.span(),
                        format!(
                            "`send` has {} bytes: a command APDU has at least 4 (CLA INS P1 P2)",
                            send.len()
                        ),
                        "e.g. send = \"00 A4 04 00 {len:aid} {aid} 00\"",
                    ));
                }
            }
        }
        let expect = match &s.expect {
            Some(e) => Some(self.expect(e, card)?),
            None => None,
        };
        if card && expect.is_some() && send.is_empty() {
            return Err(self.invalid(
                &span,
                "a card step that expects an answer must send a command APDU".to_string(),
                "a card only answers commands: add `send`",
            ));
        }
        if send.is_empty()
            && expect.is_none()
            && s.dtr.is_none()
            && s.rts.is_none()
            && delay.is_zero()
        {
            return Err(self.invalid(
                &span,
                format!(
                    "step \"{name}\" does nothing: expected send, expect, dtr, rts or delay_ms"
                ),
                "remove the step or give it something to do",
            ));
        }
        let echo = match &s.echo {
            Some(e) => self.echo_policy(e)?,
            None => echo,
        };
        let explain = match s.explain {
            Some(e) => self.explain(e, Some(explain))?,
            None => {
                let mut e = explain.clone();
                e.id_spans.clear();
                e
            }
        };
        Ok(Step {
            name,
            line,
            delay,
            dtr: s.dtr.map(|v| *v.get_ref()),
            rts: s.rts.map(|v| *v.get_ref()),
            send,
            template,
            expect,
            timeout,
            retries,
            idle,
            echo,
            explain,
        })
    }

    fn expect(&self, e: &Spanned<RawExpect>, card: bool) -> Result<Expect, ProfileError> {
        let span = e.span();
        let alts = &e.get_ref().0;
        if alts.is_empty() {
            return Err(self.invalid(
                &span,
                "`expect` is an empty array: expected at least one alternative".to_string(),
                "leave `expect` out for a step that waits for nothing",
            ));
        }
        let mut out = Vec::with_capacity(alts.len());
        for (i, alt) in alts.iter().enumerate() {
            let which = if alts.len() > 1 {
                format!("`expect` alternative {}", i + 1)
            } else {
                "`expect`".to_string()
            };
            let m = self
                .matcher(alt, card)
                .map_err(|(m, hint)| self.invalid(&span, format!("{which}: {m}"), hint))?;
            out.push(m);
        }
        Ok(Expect { alternatives: out })
    }

    fn matcher(&self, alt: &RawAlt, card: bool) -> Result<Matcher, (String, &'static str)> {
        const HEX_HINT: &str =
            "write hex bytes with X for any nibble, e.g. \"79\" or \"68 XX XX 68 X8\"";
        let pattern = |s: &str| Pattern::parse(s).map_err(|e| (e.to_string(), HEX_HINT));
        match alt {
            RawAlt::Hex(s) => {
                let p = pattern(s)?;
                if p.is_empty() {
                    return Err(("no bytes given".to_string(), HEX_HINT));
                }
                Ok(Matcher {
                    preamble: None,
                    prefix: p,
                    suffix: Pattern::default(),
                    length: Length::Implied,
                })
            }
            RawAlt::Table(t) => {
                if t.bytes.is_none() && t.last.is_none() && t.sw.is_none() && t.length.is_none() {
                    return Err((
                        "the table gives none of bytes, last, sw or length".to_string(),
                        "e.g. { bytes = \"68 XX XX 68\", length = { byte = 1, add = 6 } } or { sw = \"9000\" }",
                    ));
                }
                let mut prefix = match &t.bytes {
                    Some(b) => pattern(b)?,
                    None => Pattern::default(),
                };
                if let Some(m) = &t.mask {
                    if t.bytes.is_none() {
                        return Err((
                            "`mask` needs `bytes` to apply to".to_string(),
                            "e.g. { bytes = \"08\", mask = \"0F\" }",
                        ));
                    }
                    let mask = crate::hex::parse(m).map_err(|e| {
                        (
                            format!("`mask` is not hex bytes: {e}"),
                            "one mask byte per pattern byte, e.g. \"FF 0F\"",
                        )
                    })?;
                    prefix = prefix
                        .with_mask(&mask)
                        .map_err(|e| (e.to_string(), "one mask byte per pattern byte"))?;
                }
                let suffix = match (&t.last, &t.sw) {
                    (Some(_), Some(_)) => {
                        return Err((
                            "give `last` or `sw`, not both".to_string(),
                            "sw = \"9000\" is last = \"90 00\" for a card",
                        ));
                    }
                    (Some(l), None) => pattern(l)?,
                    (None, Some(sw)) => {
                        if !card {
                            return Err((
                                "`sw` only applies to card profiles".to_string(),
                                "use `last` for the bytes a reply ends with",
                            ));
                        }
                        let p = pattern(sw)?;
                        if p.len() != 2 {
                            return Err((
                                format!(
                                    "`sw` \"{sw}\" is not a status word: expected 4 hex digits"
                                ),
                                "e.g. sw = \"9000\" or \"61XX\"",
                            ));
                        }
                        p
                    }
                    (None, None) => Pattern::default(),
                };
                let preamble = match &t.preamble {
                    Some(p) => match crate::hex::parse(p).as_deref() {
                        Ok([b]) => Some(*b),
                        _ => {
                            return Err((
                                format!("`preamble` \"{p}\" is not one hex byte"),
                                "e.g. preamble = \"FE\" (DL/T 645's wake-up bytes)",
                            ));
                        }
                    },
                    None => None,
                };
                let length = match &t.length {
                    None => Length::Implied,
                    Some(RawLength::Exact(n)) => {
                        let n = usize::try_from(*n).unwrap_or(usize::MAX);
                        if n == 0 || n > super::expect::MAX_REPLY {
                            return Err((
                                format!("`length` {n} is outside 1..={}", super::expect::MAX_REPLY),
                                "the number of bytes the reply has",
                            ));
                        }
                        if n < prefix.len() + suffix.len() {
                            return Err((
                                format!(
                                    "`length` {n} is shorter than the bytes the pattern fixes ({})",
                                    prefix.len() + suffix.len()
                                ),
                                "make the length at least as long as bytes + last",
                            ));
                        }
                        Length::Exact(n)
                    }
                    Some(RawLength::FromByte { byte, add }) => {
                        let (Ok(offset), Ok(add)) = (usize::try_from(*byte), usize::try_from(*add))
                        else {
                            return Err((
                                "`length` offset or add is too large".to_string(),
                                "offset < 4096",
                            ));
                        };
                        if offset >= super::expect::MAX_REPLY || add > super::expect::MAX_REPLY {
                            return Err((
                                format!("`length` byte {offset} / add {add} out of range"),
                                "offsets and additions below 4096",
                            ));
                        }
                        Length::FromByte { offset, add }
                    }
                };
                Ok(Matcher {
                    preamble,
                    prefix,
                    suffix,
                    length,
                })
            }
        }
    }
}

/// Parses a `send` string: hex bytes, `{name}` and `{len:name}` of declared vars.
fn parse_template(text: &str, vars: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('{') {
            None => {
                out.push(Piece::Bytes(hex_bytes(rest)?));
                break;
            }
            Some(i) => {
                let (head, tail) = rest.split_at(i);
                out.push(Piece::Bytes(hex_bytes(head)?));
                let close = tail
                    .find('}')
                    .ok_or_else(|| "a '{' without its '}'".to_string())?;
                let inner = tail[1..close].trim();
                let (piece, var) = match inner.strip_prefix("len:") {
                    Some(v) => (Piece::Len(v.trim().to_string()), v.trim()),
                    None => (Piece::Var(inner.to_string()), inner),
                };
                if !vars.contains_key(var) {
                    return Err(format!("{{{inner}}} names no variable in [vars]"));
                }
                out.push(piece);
                rest = &tail[close + 1..];
            }
        }
    }
    Ok(out)
}

fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    if s.contains('X') || s.contains('x') {
        return Err("X wildcards are for `expect`; `send` takes exact bytes".to_string());
    }
    crate::hex::parse(s).map_err(|e| format!("not hex bytes: {e}"))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 40
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-')
}

fn valid_var(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_knowledge_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
description = "a test"
transport = "serial"
[serial]
baud = 9600
format = "8E1"
[[step]]
name = "init"
send = "7F"
expect = "79"
"#;

    fn err(text: &str) -> (usize, usize, String) {
        match Profile::parse(text, "t.toml") {
            Err(ProfileError::Invalid {
                line,
                column,
                message,
                file,
                hint,
            }) => {
                assert_eq!(file, "t.toml");
                assert!(!hint.is_empty());
                (line, column, message)
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_profile_parses_with_defaults() {
        let p = Profile::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(p.name, "t");
        assert_eq!(p.knowledge_profile, "t");
        assert_eq!(p.line_settings().unwrap().to_string(), "9600 8E1 flow none");
        let s = &p.steps[0];
        assert_eq!(s.send, vec![0x7F]);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.retries, 0);
        assert_eq!(s.echo, EchoPolicy::Skip);
        assert_eq!(s.line, 8, "the line of [[step]]");
        assert_eq!(s.expect.as_ref().unwrap().to_string(), "79");
    }

    #[test]
    fn every_built_in_profile_parses_and_names_existing_knowledge() {
        let k = Knowledge::embedded().unwrap();
        let set = Profiles::load(None, &k).unwrap();
        let names: Vec<&str> = set.all().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mtk-brom",
                "stm32",
                "esp32",
                "mbus",
                "iec104",
                "dlt645",
                "iso7816-select"
            ]
        );
        for p in set.all() {
            assert!(p.built_in);
            assert!(p.list_line().starts_with(&p.name));
            assert!(!p.list_line().contains('\n'));
        }
    }

    #[test]
    fn vars_fill_templates_and_can_be_overridden() {
        let text = r#"
name = "sel"
description = "select"
transport = "card"
[vars]
aid = "F0 68 73"
[[step]]
name = "select"
send = "00 A4 04 00 {len:aid} {aid} 00"
expect = { sw = "9000" }
"#;
        let p = Profile::parse(text, "s.toml").unwrap();
        assert_eq!(p.steps[0].send, vec![0, 0xA4, 4, 0, 3, 0xF0, 0x68, 0x73, 0]);
        let p = p.with_vars(&["aid=A0000000041010".to_string()]).unwrap();
        assert_eq!(
            p.steps[0].send,
            vec![0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 0, 4, 0x10, 0x10, 0]
        );
        let e = p.clone().with_vars(&["pin=1234".to_string()]).unwrap_err();
        assert!(e.to_string().contains("no variable 'pin'"), "{e}");
        let e = p.with_vars(&["aid".to_string()]).unwrap_err();
        assert!(e.to_string().contains("NAME=HEX"), "{e}");
    }

    #[test]
    fn user_profiles_replace_built_ins_by_name_and_errors_name_the_file() {
        let k = Knowledge::embedded().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            MINIMAL.replace("name = \"t\"", "name = \"stm32\""),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a profile").unwrap();
        let set = Profiles::load(Some(dir.path()), &k).unwrap();
        let p = set.get("stm32").unwrap();
        assert!(!p.built_in);
        assert!(p.source.ends_with("mine.toml"));
        assert_eq!(set.all().len(), 7);
        assert!(
            set.get("nope")
                .unwrap_err()
                .to_string()
                .contains("mtk-brom, stm32")
        );

        std::fs::write(
            dir.path().join("zz.toml"),
            "name = \"x\"\ndescription = 5\n",
        )
        .unwrap();
        // The broken file is skipped with its place; the others still load.
        let set = Profiles::load(Some(dir.path()), &k).unwrap();
        assert!(set.get("stm32").is_ok_and(|p| !p.built_in));
        assert_eq!(set.all().len(), 7);
        assert_eq!(set.skipped().len(), 1);
        let (file, line, _) = set.skipped()[0].location().unwrap();
        assert!(file.ends_with("zz.toml"));
        assert_eq!(line, 2);

        // A second file with the same name is skipped; the first stays.
        std::fs::write(
            dir.path().join("zz.toml"),
            MINIMAL.replace("name = \"t\"", "name = \"stm32\""),
        )
        .unwrap();
        let set = Profiles::load(Some(dir.path()), &k).unwrap();
        assert!(set.get("stm32").unwrap().source.ends_with("mine.toml"));
        assert!(matches!(set.skipped(), [ProfileError::Duplicate { .. }]));
    }

    #[test]
    fn unknown_knowledge_ids_are_rejected_where_written() {
        let k = Knowledge::embedded().unwrap();
        let text = MINIMAL.to_string() + "[step.explain]\nno_answer = [\"stm32.no_such\"]\n";
        let p = Profile::parse(&text, "t.toml").unwrap();
        let e = p.check_knowledge(&k).unwrap_err();
        let (_, line, column) = e.location().unwrap();
        assert_eq!((line, column), (13, 13));
        assert!(
            e.to_string()
                .contains("no knowledge entry with id \"stm32.no_such\"")
        );
    }

    /// Malformed profiles: each is rejected at its line and column with a message that says
    /// what was expected.
    #[test]
    fn malformed_profiles_are_rejected_with_position_and_reason() {
        let base = |extra: &str| format!("{MINIMAL}{extra}");
        let cases: Vec<(String, (usize, usize), &str)> = vec![
            ("name = \"t\"\n".to_string(), (1, 1), "missing field `description`"),
            (MINIMAL.replace("transport = \"serial\"", "transport = \"usb\""), (4, 13), "unknown transport \"usb\": expected serial, card or tcp"),
            (MINIMAL.replace("name = \"t\"", "name = \"T 1\""), (2, 8), "is not a profile name"),
            (MINIMAL.replace("format = \"8E1\"", "format = \"8X1\""), (7, 10), "invalid frame format '8X1'"),
            (MINIMAL.replace("baud = 9600", "baud = 1"), (6, 8), "invalid baud rate 1"),
            (MINIMAL.replace("expect = \"79\"", "expect = \"7\""), (11, 10), "`expect`: an odd number of hex digits"),
            (MINIMAL.replace("expect = \"79\"", "expect = \"7G\""), (11, 10), "'G' is not a hex digit or X"),
            (MINIMAL.replace("send = \"7F\"", "send = \"7X\""), (10, 8), "X wildcards are for `expect`"),
            (MINIMAL.replace("send = \"7F\"", "send = \"{aid}\""), (10, 8), "{aid} names no variable"),
            (MINIMAL.replace("expect = \"79\"", "expect = []"), (11, 10), "empty array"),
            (MINIMAL.replace("expect = \"79\"", "expect = { lenght = 3 }"), (11, 12), "unknown field `lenght`"),
            (MINIMAL.replace("expect = \"79\"", "expect = { last = \"16\", length = 0 }"), (11, 10), "`length` 0 is outside"),
            (MINIMAL.replace("expect = \"79\"", "expect = { sw = \"9000\" }"), (11, 10), "`sw` only applies to card profiles"),
            (MINIMAL.replace("expect = \"79\"", "expect = [\"79\", { mask = \"0F\" }]"), (11, 10), "`expect` alternative 2: the table gives none of bytes"),
            (MINIMAL.replace("expect = \"79\"", "expect = { bytes = \"08\", mask = \"0F 0F\" }"), (11, 10), "the mask has 2 bytes but the pattern has 1"),
            (MINIMAL.replace("expect = \"79\"", "expect = { bytes = \"68\", length = \"x\" }"), (11, 35), "a number of bytes, or { byte = OFFSET, add = N }"),
            (base("timeout_ms = 0\n"), (12, 14), "`timeout_ms` is 0"),
            (base("retries = 1000\n"), (12, 11), "`retries` 1000 is more than 100"),
            (base("echo = \"maybe\"\n"), (12, 8), "expected \"skip\" or \"divergence\""),
            (base("[[step]]\nname = \"init\"\nsend = \"00\"\n"), (12, 1), "a second step named \"init\""),
            (base("[[step]]\nname = \"idle\"\n"), (12, 1), "does nothing"),
            (base("[explain]\nobservation = \"frame\"\n"), (13, 15), "expected \"handshake\" or \"sw\""),
            (base("[explain]\ntext = [\"Not An Id\"]\n"), (13, 8), "is not a knowledge id"),
            (base("[step.explain]\nwhat = 1\n"), (13, 1), "unknown field `what`"),
            (MINIMAL.replace("name = \"init\"", "name = \"init\"\ndtr = true").replace("transport = \"serial\"\n[serial]\nbaud = 9600\nformat = \"8E1\"", "transport = \"tcp\""), (7, 7), "`dtr` only applies to serial profiles"),
            ("name = \"c\"\ndescription = \"d\"\ntransport = \"card\"\n[[step]]\nname = \"s\"\nsend = \"00 A4\"\n".to_string(), (6, 8), "a command APDU has at least 4"),
            ("name = \"c\"\ndescription = \"d\"\ntransport = \"serial\"\n[[step]]\nname = \"s\"\nsend = \"00\"\n".to_string(), (3, 13), "needs a [serial] table"),
            ("name = \"c\"\ndescription = \"d\"\ntransport = \"tcp\"\n".to_string(), (1, 1), "no steps"),
            ("name = \"c\"\ndescription = \"d\"\ntransport = \"tcp\"\n[vars]\naid = \"0G\"\n".to_string(), (5, 7), "variable aid: not hex bytes"),
            (MINIMAL.replace("description = \"a test\"", "description = \"\"\"two\nlines\"\"\""), (3, 15), "one non-empty line"),
            ("name = \"c".to_string(), (1, 10), "invalid basic string"),
        ];
        let mut wrong = Vec::new();
        for (text, (line, column), want) in cases {
            let (l, c, message) = err(&text);
            if !message.contains(want) || (l, c) != (line, column) {
                wrong.push(format!(
                    "{l}:{c}: {message:?}, wanted {line}:{column}: {want:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
