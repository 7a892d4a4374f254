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

mod loader;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnose::knowledge::Knowledge;
use crate::event::LineSettings;
use crate::handshake::expect::Expect;

use loader::{Ctx, RawProfile};

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
            let loaded = crate::textfile::read_text(&path)
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
