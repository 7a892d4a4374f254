//! Profile files as deserialised and their validation: every error names the file, line and
//! column and what was expected; templates, hex and names are checked here.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};
use toml::Spanned;

use crate::event::{Baud, FlowControl, FrameFormat, LineSettings};
use crate::handshake::expect::{Expect, Length, Matcher, Pattern};

use super::{
    DEFAULT_IDLE, DEFAULT_TIMEOUT, DivergenceKind, EchoPolicy, Explain, MAX_DELAY_MS, MAX_RETRIES,
    MAX_STEPS, MAX_TIMEOUT_MS, ObservationChoice, Piece, Profile, ProfileError, Step, Transport,
    render,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
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
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    /// 1-based line and column (in characters) of a byte offset; clamped to the text.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        crate::toml_pos::line_col(self.text, offset)
    }

    pub(super) fn syntax(&self, e: &toml::de::Error) -> ProfileError {
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

    pub(super) fn build(&self, raw: RawProfile) -> Result<Profile, ProfileError> {
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
                        if n == 0 || n > crate::handshake::expect::MAX_REPLY {
                            return Err((
                                format!(
                                    "`length` {n} is outside 1..={}",
                                    crate::handshake::expect::MAX_REPLY
                                ),
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
                        if offset >= crate::handshake::expect::MAX_REPLY
                            || add > crate::handshake::expect::MAX_REPLY
                        {
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
