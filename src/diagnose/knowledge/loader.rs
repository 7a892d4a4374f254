//! Reading knowledge files: the TOML as deserialised, its validation with file:line:column
//! errors, and the constructors of [`Knowledge`] (the embedded base, a user extension).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use crate::decode::frame::Protocol;
use crate::diagnose::observation::ObservationKind;
use crate::event::Direction;

use super::condition::{Condition, HexPattern, RateRelation, StatusName, Test};
use super::{
    EMBEDDED, EMBEDDED_SOURCE, Entry, Knowledge, KnowledgeError, Severity, normalise_code,
};

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
pub(super) const FIELDS: &[(&str, &[ObservationKind])] = {
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
pub(super) fn valid_id(id: &str) -> bool {
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

    /// The built-in knowledge base, extended by `$XDG_CONFIG_HOME/hsmon/knowledge.toml` when
    /// that file exists (same id replaces, new ids add); what every command explains with.
    /// The error is the sentence to show, with the fix.
    pub fn with_user_file() -> Result<Knowledge, String> {
        let k = Knowledge::embedded().map_err(|e| format!("built-in knowledge: {e}"))?;
        match Knowledge::user_file() {
            Some(p) if p.exists() => k
                .load_file(&p)
                .map_err(|e| format!("{e}\n  fix the file or move it aside")),
            _ => Ok(k),
        }
    }

    /// Where the user's extension file is (whether or not it exists).
    pub fn user_file() -> Option<std::path::PathBuf> {
        dirs::config_dir().map(|d| d.join("hsmon").join("knowledge.toml"))
    }

    /// Read the user's extension file at `path` and merge it (with [`Knowledge::with_user_file`]
    /// the only I/O in this module).
    pub fn load_file(self, path: &Path) -> Result<Knowledge, KnowledgeError> {
        let name = path.display().to_string();
        let text = crate::textfile::read_text(path).map_err(|source| KnowledgeError::Read {
            path: name.clone(),
            source,
        })?;
        self.with_extension(&text, &name)
    }
}
