//! APDU scripts in the format of pcsc-tools' `scriptor`, with hsmon's `# expect` extension:
//! parsing into [`Script`] steps, the status-word patterns, and errors that name the line,
//! the column and the fix.
//!
//! The format (scriptor 1.x, read from its source; pcsc-tools `scriptor`):
//! - one command APDU per line, as hex: bytes separated by spaces (`00 A4 04 00`) or written
//!   together (`00A40400`); a `\` at the end of a line continues the APDU on the next line;
//! - a line starting with `#` is a comment, blank lines are skipped;
//! - `reset` resets the card (scriptor reconnects with SCARD_RESET_CARD), `exit` stops; scriptor
//!   reads nothing after `exit`, and neither does this parser.
//!
//! hsmon is slightly more lenient than scriptor and says so in [`Script::warnings`] where
//! scriptor would read a line differently: comments indented or with `exit` in them (scriptor
//! stops at any line containing "exit"), irregular spacing (scriptor wants two digits per byte
//! and single spaces), CRLF line ends.
//!
//! The extension: a comment line `# expect 9000` after a command applies to that command's
//! final status word (after any GET RESPONSE / Le retry the runner performs). A pattern has
//! four hex digits, `X` (or `x`) standing for any nibble (`61XX`); alternatives are separated
//! by `|` (`# expect 9000 | 61XX`); spaces inside a pattern are ignored (`90 00`) and `0x` may
//! prefix it. Blank lines and other comments may sit between the command and its `# expect`;
//! another command, `reset` or `exit` may not. scriptor treats the line as a comment, so a
//! script with expectations still runs there.

use std::fmt;
use std::str::FromStr;

use crate::decode::iso7816::apdu::{self, ApduError};

/// The longest command APDU: CLA INS P1 P2, extended Lc (3 bytes), 65 535 data bytes and an
/// extended Le (2 bytes).
pub const MAX_APDU_LEN: usize = 4 + 3 + 65_535 + 2;

/// Longest token quoted back in an error message.
const QUOTED_CHARS: usize = 24;

/// A parsed script: what to do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub steps: Vec<ScriptStep>,
    /// Lines hsmon accepts but scriptor would read differently (the script still runs here).
    pub warnings: Vec<ScriptWarning>,
}

/// One thing the script does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptStep {
    /// Send a command APDU. `line` is where it starts (1-based; a `\`-continued APDU spans
    /// more lines); `expect` applies to its final status word.
    Apdu {
        bytes: Vec<u8>,
        line: usize,
        expect: Option<SwPattern>,
    },
    /// Reset the card (SCardReconnect with SCARD_RESET_CARD, as scriptor does).
    Reset { line: usize },
    /// Stop the script.
    Exit { line: usize },
}

impl ScriptStep {
    /// The 1-based line the step starts on.
    pub fn line(&self) -> usize {
        match self {
            ScriptStep::Apdu { line, .. }
            | ScriptStep::Reset { line }
            | ScriptStep::Exit { line } => *line,
        }
    }
}

/// One status word with wildcard nibbles: `sw & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwMask {
    pub value: u16,
    /// 0xF in each nibble that must match, 0x0 in each wildcard nibble.
    pub mask: u16,
}

impl SwMask {
    pub fn matches(self, sw: u16) -> bool {
        sw & self.mask == self.value
    }
}

impl fmt::Display for SwMask {
    /// "61XX", "9000".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for shift in [12u16, 8, 4, 0] {
            if (self.mask >> shift) & 0xF == 0xF {
                write!(f, "{:X}", (self.value >> shift) & 0xF)?;
            } else {
                f.write_str("X")?;
            }
        }
        Ok(())
    }
}

/// What an `# expect` line accepts: one or more [`SwMask`] alternatives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SwPattern {
    alternatives: Vec<SwMask>,
}

/// Why an `# expect` pattern is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwPatternError {
    #[error("no status word given")]
    Empty,
    #[error("an alternative between two `|` is empty")]
    EmptyAlternative,
    #[error("{found:?} is neither a hex digit nor the wildcard X")]
    NotHex { found: char },
    #[error("{text:?} has {digits} digits, a status word has 4")]
    WrongLength { text: String, digits: usize },
}

impl SwPatternError {
    /// The likely fix.
    pub fn hint(&self) -> &'static str {
        match self {
            SwPatternError::Empty => "write the status word after `# expect`, e.g. `# expect 9000`",
            SwPatternError::EmptyAlternative => {
                "remove the extra `|`: alternatives look like `# expect 9000 | 61XX`"
            }
            SwPatternError::NotHex { .. } => {
                "use hex digits 0-9 A-F and X for any nibble, e.g. `# expect 61XX`"
            }
            SwPatternError::WrongLength { .. } => {
                "a status word is 4 hex digits (SW1 SW2); separate alternatives with `|`, e.g. `# expect 9000 | 6310`"
            }
        }
    }
}

impl SwPattern {
    /// Parse "9000", "61XX", "90 00", "0x9000", "9000 | 61XX".
    pub fn parse(text: &str) -> Result<SwPattern, SwPatternError> {
        if text.trim().is_empty() {
            return Err(SwPatternError::Empty);
        }
        let mut alternatives = Vec::new();
        for alternative in text.split('|') {
            let trimmed = alternative.trim();
            if trimmed.is_empty() {
                return Err(SwPatternError::EmptyAlternative);
            }
            // "0x" is a prefix only before four more digits: "0XXD" is 0, two wildcards, D.
            let significant = trimmed.chars().filter(|c| !c.is_whitespace()).count();
            let body = match trimmed
                .strip_prefix("0x")
                .or_else(|| trimmed.strip_prefix("0X"))
            {
                Some(rest) if significant == 6 => rest,
                _ => trimmed,
            };
            let mut value: u16 = 0;
            let mut mask: u16 = 0;
            let mut digits = 0usize;
            for c in body.chars().filter(|c| !c.is_whitespace()) {
                let nibble = match c {
                    'X' | 'x' => None,
                    _ => match c.to_digit(16) {
                        Some(d) => Some(d as u16),
                        None => return Err(SwPatternError::NotHex { found: c }),
                    },
                };
                digits += 1;
                if digits <= 4 {
                    value = value << 4 | nibble.unwrap_or(0);
                    mask = mask << 4 | if nibble.is_some() { 0xF } else { 0 };
                }
            }
            if digits != 4 {
                return Err(SwPatternError::WrongLength {
                    text: quote(trimmed),
                    digits,
                });
            }
            alternatives.push(SwMask { value, mask });
        }
        Ok(SwPattern { alternatives })
    }

    /// True when `sw` (SW1 in the high byte) matches any alternative.
    pub fn matches(&self, sw: u16) -> bool {
        self.alternatives.iter().any(|a| a.matches(sw))
    }

    pub fn alternatives(&self) -> &[SwMask] {
        &self.alternatives
    }
}

impl FromStr for SwPattern {
    type Err = SwPatternError;

    fn from_str(text: &str) -> Result<SwPattern, SwPatternError> {
        SwPattern::parse(text)
    }
}

impl fmt::Display for SwPattern {
    /// "9000 | 61XX".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alternative) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alternative}")?;
        }
        Ok(())
    }
}

/// A line that is fine for hsmon but that scriptor would read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScriptWarning {
    pub line: usize,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// scriptor stops at any line containing "exit", comments included.
    ExitInComment,
    /// scriptor takes `#` as a comment only in the first column.
    IndentedComment,
    /// scriptor wants each byte as two digits with single spaces between (or no spaces).
    IrregularSpacing,
    /// scriptor keeps the carriage return of a CRLF line and rejects the last byte.
    CrLf,
}

impl WarningKind {
    /// What scriptor would do, and the fix.
    pub fn message(self) -> &'static str {
        match self {
            WarningKind::ExitInComment => {
                "scriptor stops at any line containing \"exit\", even a comment: reword the comment"
            }
            WarningKind::IndentedComment => {
                "scriptor takes `#` as a comment only in the first column: remove the indentation"
            }
            WarningKind::IrregularSpacing => {
                "scriptor wants two hex digits per byte with single spaces between (or no spaces at all)"
            }
            WarningKind::CrLf => {
                "scriptor keeps the CR of CRLF line ends and rejects the last byte: save with LF line ends"
            }
        }
    }
}

impl fmt::Display for ScriptWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind.message())
    }
}

/// Why a script cannot be run. Every variant names the 1-based line (and column where one
/// character is to blame); [`ScriptError::hint`] gives the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("line {line}, column {column}: {token:?} has an odd number of hex digits")]
    OddHexDigits {
        line: usize,
        column: usize,
        token: String,
    },
    #[error("line {line}, column {column}: {found:?} is not a hex digit (in {token:?})")]
    NotHex {
        line: usize,
        column: usize,
        found: char,
        token: String,
    },
    #[error(
        "line {line}: the APDU starting here is longer than {MAX_APDU_LEN} bytes (the largest extended APDU), {len} bytes by line {at_line}"
    )]
    TooLong {
        line: usize,
        at_line: usize,
        len: usize,
    },
    #[error("line {line}: not a command APDU ({len} bytes): {source}")]
    InvalidApdu {
        line: usize,
        len: usize,
        source: ApduError,
    },
    #[error("line {line}, column {column}: bad expectation {text:?}: {source}")]
    BadExpectation {
        line: usize,
        column: usize,
        text: String,
        source: SwPatternError,
    },
    #[error("line {line}: `# expect` with no command before it")]
    ExpectWithoutCommand { line: usize },
    #[error("line {line}: a second `# expect` for the command on line {command_line}")]
    DuplicateExpectation { line: usize, command_line: usize },
    #[error("line {line}: `# expect` inside the APDU continued (`\\`) from line {start}")]
    ExpectInsideContinuation { line: usize, start: usize },
    #[error(
        "line {line}: `{word}` while the APDU continued (`\\`) from line {start} is unfinished"
    )]
    UnfinishedContinuation {
        line: usize,
        start: usize,
        word: &'static str,
    },
    #[error("line {line}: the line ends with `\\` but the file ends before the APDU does")]
    DanglingContinuation { line: usize },
}

impl ScriptError {
    /// The 1-based line to look at.
    pub fn line(&self) -> usize {
        match self {
            ScriptError::OddHexDigits { line, .. }
            | ScriptError::NotHex { line, .. }
            | ScriptError::TooLong { line, .. }
            | ScriptError::InvalidApdu { line, .. }
            | ScriptError::BadExpectation { line, .. }
            | ScriptError::ExpectWithoutCommand { line }
            | ScriptError::DuplicateExpectation { line, .. }
            | ScriptError::ExpectInsideContinuation { line, .. }
            | ScriptError::UnfinishedContinuation { line, .. }
            | ScriptError::DanglingContinuation { line } => *line,
        }
    }

    /// The 1-based column, where one character or token is to blame.
    pub fn column(&self) -> Option<usize> {
        match self {
            ScriptError::OddHexDigits { column, .. }
            | ScriptError::NotHex { column, .. }
            | ScriptError::BadExpectation { column, .. } => Some(*column),
            _ => None,
        }
    }

    /// The likely fix.
    pub fn hint(&self) -> &'static str {
        match self {
            ScriptError::OddHexDigits { .. } => {
                "every byte is two hex digits: a digit is missing or one too many (write 0A, not A)"
            }
            ScriptError::NotHex { .. } => {
                "an APDU line holds only hex bytes; comments go on their own line starting with #, and the only words are reset and exit"
            }
            ScriptError::TooLong { .. } => {
                "an extended APDU carries at most 65 535 data bytes; split the data over several commands (chaining, or UPDATE BINARY at successive offsets)"
            }
            ScriptError::InvalidApdu { source, .. } => source.hint(),
            ScriptError::BadExpectation { source, .. } => source.hint(),
            ScriptError::ExpectWithoutCommand { .. } => {
                "put `# expect` right after the command it checks (a reset or exit in between ends that command)"
            }
            ScriptError::DuplicateExpectation { .. } => {
                "combine the status words in one line with `|`, e.g. `# expect 9000 | 61XX`"
            }
            ScriptError::ExpectInsideContinuation { .. } => {
                "move `# expect` after the last line of the continued APDU"
            }
            ScriptError::UnfinishedContinuation { .. } => {
                "remove the `\\` at the end of the previous APDU line, or finish the APDU before reset/exit"
            }
            ScriptError::DanglingContinuation { .. } => {
                "remove the `\\` at the end of the last APDU line, or add the rest of the APDU"
            }
        }
    }
}

/// At most [`QUOTED_CHARS`] characters of `text`, with "…" when cut.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let mut quoted: String = chars.by_ref().take(QUOTED_CHARS).collect();
    if chars.next().is_some() {
        quoted.push('…');
    }
    quoted
}

/// An APDU being assembled over `\`-continued lines.
struct Pending {
    start: usize,
    /// The last line read into it (the one with the `\\` when it is still open).
    last: usize,
    bytes: Vec<u8>,
}

/// If `trimmed` (a comment line) is `# expect ...`, the pattern text and its byte offset.
fn expectation(trimmed: &str) -> Option<(&str, usize)> {
    let after_hash = trimmed.strip_prefix('#')?;
    let keyword_at = after_hash.len() - after_hash.trim_start().len();
    let rest = after_hash.get(keyword_at..)?;
    let keyword = rest.get(..6)?;
    if !keyword.eq_ignore_ascii_case("expect") {
        return None;
    }
    let tail = rest.get(6..)?;
    match tail.chars().next() {
        None => Some(("", trimmed.len())),
        Some(c) if c.is_whitespace() || c == ':' => {
            let pattern = tail.get(c.len_utf8()..)?;
            let offset = trimmed.len() - pattern.len();
            Some((pattern, offset))
        }
        Some(_) => None,
    }
}

/// 1-based character column of byte offset `at` in `line`.
fn column_of(line: &str, at: usize) -> usize {
    line.get(..at)
        .map_or(1, |before| before.chars().count() + 1)
}

/// Whether scriptor splits `body` (an APDU line without its `\`) the same way: no spaces at
/// all, or two-digit bytes separated by single spaces.
fn scriptor_spacing(body: &str) -> bool {
    let body = body.trim_end_matches(' ');
    if !body.contains(char::is_whitespace) {
        return true;
    }
    body.split(' ').all(|t| t.len() == 2)
}

impl Script {
    /// Parse a whole script. Lines after `exit` are not read (scriptor stops there too).
    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let mut script = Script::default();
        let mut pending: Option<Pending> = None;
        // Index in `steps` of the APDU an `# expect` would apply to.
        let mut last_apdu: Option<usize> = None;
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let (raw, crlf) = match raw.strip_suffix('\r') {
                Some(stripped) => (stripped, true),
                None => (raw, false),
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let warn =
                |script: &mut Script, kind| script.warnings.push(ScriptWarning { line, kind });
            if trimmed.starts_with('#') {
                if trimmed.to_ascii_lowercase().contains("exit") {
                    warn(&mut script, WarningKind::ExitInComment);
                }
                if !raw.starts_with('#') {
                    warn(&mut script, WarningKind::IndentedComment);
                }
                let Some((pattern, offset)) = expectation(trimmed) else {
                    continue;
                };
                if let Some(p) = &pending {
                    return Err(ScriptError::ExpectInsideContinuation {
                        line,
                        start: p.start,
                    });
                }
                let Some(ScriptStep::Apdu {
                    expect,
                    line: command_line,
                    ..
                }) = last_apdu.and_then(|i| script.steps.get_mut(i))
                else {
                    return Err(ScriptError::ExpectWithoutCommand { line });
                };
                if expect.is_some() {
                    return Err(ScriptError::DuplicateExpectation {
                        line,
                        command_line: *command_line,
                    });
                }
                let indent = raw.len() - raw.trim_start().len();
                let skipped = pattern.len() - pattern.trim_start().len();
                let column = column_of(raw, indent + offset + skipped);
                *expect = Some(SwPattern::parse(pattern).map_err(|source| {
                    ScriptError::BadExpectation {
                        line,
                        column,
                        text: quote(pattern.trim()),
                        source,
                    }
                })?);
                continue;
            }
            let word = if trimmed.eq_ignore_ascii_case("reset") {
                Some("reset")
            } else if trimmed.eq_ignore_ascii_case("exit") {
                Some("exit")
            } else {
                None
            };
            if let Some(word) = word {
                if let Some(p) = &pending {
                    return Err(ScriptError::UnfinishedContinuation {
                        line,
                        start: p.start,
                        word,
                    });
                }
                last_apdu = None;
                if word == "exit" {
                    script.steps.push(ScriptStep::Exit { line });
                    return Ok(script);
                }
                script.steps.push(ScriptStep::Reset { line });
                continue;
            }
            if crlf {
                warn(&mut script, WarningKind::CrLf);
            }
            let (body, continues) = match raw.trim_end().strip_suffix('\\') {
                Some(body) => (body, true),
                None => (raw, false),
            };
            // scriptor sees a continuation only when `\` is the very last character.
            let stray_space = continues && !raw.ends_with('\\');
            if raw.starts_with(char::is_whitespace) || stray_space || !scriptor_spacing(body) {
                warn(&mut script, WarningKind::IrregularSpacing);
            }
            let mut apdu = pending.take().unwrap_or(Pending {
                start: line,
                last: line,
                bytes: Vec::new(),
            });
            apdu.last = line;
            append_hex(raw, body, line, &mut apdu)?;
            if continues {
                pending = Some(apdu);
                continue;
            }
            apdu::parse_command(&apdu.bytes).map_err(|source| ScriptError::InvalidApdu {
                line: apdu.start,
                len: apdu.bytes.len(),
                source,
            })?;
            last_apdu = Some(script.steps.len());
            script.steps.push(ScriptStep::Apdu {
                bytes: apdu.bytes,
                line: apdu.start,
                expect: None,
            });
        }
        if let Some(p) = pending {
            return Err(ScriptError::DanglingContinuation { line: p.last });
        }
        Ok(script)
    }

    /// The script written back in scriptor's format (bytes as spaced hex, `# expect` lines,
    /// `reset`, `exit`): parsing it gives the same steps.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for step in &self.steps {
            match step {
                ScriptStep::Apdu { bytes, expect, .. } => {
                    text.push_str(&crate::hex::spaced(bytes));
                    text.push('\n');
                    if let Some(pattern) = expect {
                        text.push_str(&format!("# expect {pattern}\n"));
                    }
                }
                ScriptStep::Reset { .. } => text.push_str("reset\n"),
                ScriptStep::Exit { .. } => text.push_str("exit\n"),
            }
        }
        text
    }

    /// Number of APDU steps.
    pub fn apdu_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, ScriptStep::Apdu { .. }))
            .count()
    }
}

/// Append the hex bytes of `body` (a prefix of `raw`) to `apdu`.
fn append_hex(raw: &str, body: &str, line: usize, apdu: &mut Pending) -> Result<(), ScriptError> {
    let mut token_start: Option<usize> = None;
    // Walk characters plus one final separator so the last token is closed too.
    let ends = body
        .char_indices()
        .chain(std::iter::once((body.len(), ' ')));
    for (at, c) in ends {
        if !c.is_whitespace() {
            if token_start.is_none() {
                token_start = Some(at);
            }
            continue;
        }
        let Some(start) = token_start.take() else {
            continue;
        };
        let token = body.get(start..at).unwrap_or("");
        if let Some((offset, bad)) = token.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(ScriptError::NotHex {
                line,
                column: column_of(raw, start + offset),
                found: bad,
                token: quote(token),
            });
        }
        if token.len() % 2 != 0 {
            return Err(ScriptError::OddHexDigits {
                line,
                column: column_of(raw, start),
                token: quote(token),
            });
        }
        let room = MAX_APDU_LEN.saturating_sub(apdu.bytes.len());
        if token.len() / 2 > room {
            return Err(ScriptError::TooLong {
                line: apdu.start,
                at_line: line,
                len: apdu.bytes.len() + token.len() / 2,
            });
        }
        let digits = token.as_bytes();
        for pair in digits.chunks_exact(2) {
            let [hi, lo] = pair else { continue };
            apdu.bytes.push(hex_value(*hi) << 4 | hex_value(*lo));
        }
    }
    Ok(())
}

/// Value of an ASCII hex digit (already checked).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn apdu(bytes: &[u8], line: usize, expect: Option<&str>) -> ScriptStep {
        ScriptStep::Apdu {
            bytes: bytes.to_vec(),
            line,
            expect: expect.map(|e| SwPattern::parse(e).unwrap()),
        }
    }

    fn err(text: &str) -> ScriptError {
        Script::parse(text).unwrap_err()
    }

    #[test]
    fn sw_patterns() {
        let p = SwPattern::parse("9000").unwrap();
        assert!(p.matches(0x9000));
        assert!(!p.matches(0x9001));
        let p = SwPattern::parse("61XX").unwrap();
        assert!(p.matches(0x6100) && p.matches(0x61FF));
        assert!(!p.matches(0x6200));
        let p = SwPattern::parse("63cx").unwrap();
        assert!(p.matches(0x63C2) && !p.matches(0x6302));
        let p = SwPattern::parse(" 9000 | 61XX |6cxx").unwrap();
        assert_eq!(p.alternatives().len(), 3);
        assert!(p.matches(0x9000) && p.matches(0x6110) && p.matches(0x6C08));
        assert!(!p.matches(0x6A82));
        assert_eq!(p.to_string(), "9000 | 61XX | 6CXX");
        assert!(SwPattern::parse("90 00").unwrap().matches(0x9000));
        assert!(SwPattern::parse("0x6882").unwrap().matches(0x6882));
        let p = SwPattern::parse("0XXD").unwrap();
        assert!(p.matches(0x0A0D) && !p.matches(0x1A0D));
        assert!(SwPattern::parse("XXXX").unwrap().matches(0x1234));
        assert_eq!("9000".parse::<SwPattern>().unwrap().to_string(), "9000");
    }

    #[test]
    fn sw_pattern_errors() {
        assert_eq!(SwPattern::parse(""), Err(SwPatternError::Empty));
        assert_eq!(SwPattern::parse("  "), Err(SwPatternError::Empty));
        assert_eq!(
            SwPattern::parse("9G00"),
            Err(SwPatternError::NotHex { found: 'G' })
        );
        assert_eq!(
            SwPattern::parse("900"),
            Err(SwPatternError::WrongLength {
                text: "900".into(),
                digits: 3
            })
        );
        assert_eq!(
            SwPattern::parse("9000 6310"),
            Err(SwPatternError::WrongLength {
                text: "9000 6310".into(),
                digits: 8
            })
        );
        assert_eq!(
            SwPattern::parse("9000||6310"),
            Err(SwPatternError::EmptyAlternative)
        );
        assert_eq!(
            SwPattern::parse("9000|"),
            Err(SwPatternError::EmptyAlternative)
        );
    }

    #[test]
    fn known_answer_script() {
        let text = "\
# select the demo application
00 A4 04 00 07 F0 68 73 6D 6F 6E 01
# expect 61XX

00C000000B
#expect: 9000
reset
00 A4 04 00 07 \\
  F0 68 73 \\
# a comment inside the continuation is skipped, as scriptor does
6D 6F 6E 01
# EXPECT 9000 | 61xx
00 84 00 00 08
exit
this line is never read
";
        let script = Script::parse(text).unwrap();
        assert_eq!(
            script.steps,
            vec![
                apdu(
                    &[
                        0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x68, 0x73, 0x6D, 0x6F, 0x6E, 0x01
                    ],
                    2,
                    Some("61XX")
                ),
                apdu(&[0x00, 0xC0, 0x00, 0x00, 0x0B], 5, Some("9000")),
                ScriptStep::Reset { line: 7 },
                apdu(
                    &[
                        0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x68, 0x73, 0x6D, 0x6F, 0x6E, 0x01
                    ],
                    8,
                    Some("9000|61XX")
                ),
                apdu(&[0x00, 0x84, 0x00, 0x00, 0x08], 13, None),
                ScriptStep::Exit { line: 14 },
            ]
        );
        assert_eq!(script.apdu_count(), 4);
        assert_eq!(
            script.warnings,
            vec![ScriptWarning {
                line: 9,
                kind: WarningKind::IrregularSpacing
            }]
        );
    }

    #[test]
    fn reset_and_exit_are_case_insensitive_and_trimmed() {
        let script = Script::parse("  RESET \r\n00 B0 00 00 10\nExit\n").unwrap();
        assert_eq!(
            script.steps,
            vec![
                ScriptStep::Reset { line: 1 },
                apdu(&[0x00, 0xB0, 0x00, 0x00, 0x10], 2, None),
                ScriptStep::Exit { line: 3 },
            ]
        );
    }

    #[test]
    fn ordinary_comments_mentioning_expect_are_comments() {
        let script =
            Script::parse("00 84 00 00 08\n# expected: a challenge\n# expectation 9000\n").unwrap();
        assert_eq!(
            script.steps,
            vec![apdu(&[0x00, 0x84, 0x00, 0x00, 0x08], 1, None)]
        );
    }

    #[test]
    fn empty_script_has_no_steps() {
        assert_eq!(Script::parse("").unwrap(), Script::default());
        assert_eq!(
            Script::parse("\n\n# only a comment\n").unwrap().steps,
            vec![]
        );
    }

    #[test]
    fn expectation_may_follow_blank_lines_and_comments() {
        let script = Script::parse("00 84 00 00 08\n\n# the challenge\n# expect 9000\n").unwrap();
        assert_eq!(
            script.steps,
            vec![apdu(&[0x00, 0x84, 0x00, 0x00, 0x08], 1, Some("9000"))]
        );
    }

    #[test]
    fn warnings_for_scriptor_differences() {
        let script = Script::parse(
            "# exit code is checked later\n  # indented\n00  A4 04 00 01 3F\n00A4 04 00 01 3F\n00 84 00 00 08\r\n00 84 \\ \n00 00 08\n",
        )
        .unwrap();
        let kinds: Vec<(usize, WarningKind)> =
            script.warnings.iter().map(|w| (w.line, w.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, WarningKind::ExitInComment),
                (2, WarningKind::IndentedComment),
                (3, WarningKind::IrregularSpacing),
                (4, WarningKind::IrregularSpacing),
                (5, WarningKind::CrLf),
                (6, WarningKind::IrregularSpacing),
            ]
        );
        assert_eq!(
            script.apdu_count(),
            4,
            "the warnings do not stop the script"
        );
        assert!(
            script.warnings[0]
                .to_string()
                .starts_with("line 1: scriptor stops")
        );
    }

    #[test]
    fn odd_hex_digits() {
        let e = err("# header\n00 A4 04 0 07\n");
        assert_eq!(
            e,
            ScriptError::OddHexDigits {
                line: 2,
                column: 10,
                token: "0".into()
            }
        );
        assert_eq!(e.column(), Some(10));
        assert!(e.to_string().starts_with("line 2, column 10:"), "{e}");
        let e = err("00A40400070\n");
        assert!(matches!(
            e,
            ScriptError::OddHexDigits {
                line: 1,
                column: 1,
                ..
            }
        ));
    }

    #[test]
    fn non_hex_byte() {
        assert_eq!(
            err("00 A4 04 00\n00 A4 0G 00\n"),
            ScriptError::NotHex {
                line: 2,
                column: 8,
                found: 'G',
                token: "0G".into()
            }
        );
        // A trailing comment is not allowed on an APDU line.
        let e = err("00 84 00 00 08 # challenge\n");
        assert!(matches!(
            e,
            ScriptError::NotHex {
                line: 1,
                column: 16,
                found: '#',
                ..
            }
        ));
        assert!(e.hint().contains("own line"));
        // A word that is neither reset nor exit.
        assert!(matches!(
            err("select\n"),
            ScriptError::NotHex {
                line: 1,
                column: 1,
                found: 's',
                ..
            }
        ));
        // Columns count characters, not bytes.
        assert!(matches!(
            err("00 é4\n"),
            ScriptError::NotHex {
                line: 1,
                column: 4,
                found: 'é',
                ..
            }
        ));
    }

    #[test]
    fn apdu_too_long() {
        let data = "AB".repeat(65_535);
        // Largest legal APDU: case 4E with 65 535 data bytes, 65 544 bytes in all.
        let ok = format!("00 D6 00 00 00 FF FF {data} 00 00\n");
        let script = Script::parse(&ok).unwrap();
        let ScriptStep::Apdu { bytes, .. } = &script.steps[0] else {
            panic!()
        };
        assert_eq!(bytes.len(), MAX_APDU_LEN);
        let long = format!("# big\n00 D6 00 00 00 FF FF \\\n{data} 00 00 00\n");
        assert_eq!(
            err(&long),
            ScriptError::TooLong {
                line: 2,
                at_line: 3,
                len: MAX_APDU_LEN + 1
            }
        );
        // Short enough, but the lengths do not add up under the extended rules.
        let e = err(&format!("00 D6 00 00 00 FF FF {data} 00\n"));
        assert!(
            matches!(
                e,
                ScriptError::InvalidApdu {
                    line: 1,
                    len: 65_543,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn invalid_apdu_reports_parse_command_error() {
        let e = err("\n\n00 A4 04 00 05 01 02\n");
        assert_eq!(
            e,
            ScriptError::InvalidApdu {
                line: 3,
                len: 7,
                source: ApduError::LengthMismatch {
                    declared: 5,
                    present: 2,
                    extended: false
                }
            }
        );
        assert!(e.to_string().contains("Lc declares 5"), "{e}");
        assert!(e.hint().contains("Lc"));
        assert!(matches!(
            err("00 A4\n"),
            ScriptError::InvalidApdu {
                line: 1,
                len: 2,
                ..
            }
        ));
        // The error names the line where a continued APDU starts.
        assert!(matches!(
            err("00 A4 \\\n04\n"),
            ScriptError::InvalidApdu {
                line: 1,
                len: 3,
                ..
            }
        ));
    }

    #[test]
    fn bad_expectation() {
        let e = err("00 84 00 00 08\n# expect 9G00\n");
        assert_eq!(
            e,
            ScriptError::BadExpectation {
                line: 2,
                column: 10,
                text: "9G00".into(),
                source: SwPatternError::NotHex { found: 'G' }
            }
        );
        assert!(e.hint().contains("X for any nibble"));
        assert!(matches!(
            err("00 84 00 00 08\n  #  expect:  900\n"),
            ScriptError::BadExpectation {
                line: 2,
                column: 15,
                ..
            }
        ));
        assert!(matches!(
            err("00 84 00 00 08\n# expect\n"),
            ScriptError::BadExpectation {
                line: 2,
                source: SwPatternError::Empty,
                ..
            }
        ));
    }

    #[test]
    fn expectation_without_command() {
        assert_eq!(
            err("# expect 9000\n00 84 00 00 08\n"),
            ScriptError::ExpectWithoutCommand { line: 1 }
        );
        assert_eq!(
            err("00 84 00 00 08\nreset\n# expect 9000\n"),
            ScriptError::ExpectWithoutCommand { line: 3 }
        );
    }

    #[test]
    fn duplicate_expectation() {
        let e = err("00 84 00 00 08\n# expect 9000\n# expect 6C08\n");
        assert_eq!(
            e,
            ScriptError::DuplicateExpectation {
                line: 3,
                command_line: 1
            }
        );
        assert!(e.hint().contains('|'));
    }

    #[test]
    fn continuation_errors() {
        assert_eq!(
            err("00 84 00 \\\n# expect 9000\n00 08\n"),
            ScriptError::ExpectInsideContinuation { line: 2, start: 1 }
        );
        assert_eq!(
            err("00 84 00 \\\nreset\n"),
            ScriptError::UnfinishedContinuation {
                line: 2,
                start: 1,
                word: "reset"
            }
        );
        assert_eq!(
            err("00 84 00 \\\n\n# more\nexit\n"),
            ScriptError::UnfinishedContinuation {
                line: 4,
                start: 1,
                word: "exit"
            }
        );
        let e = err("00 84 00 00 08\n00 84 \\\n00 00 \\\n\n");
        assert_eq!(e, ScriptError::DanglingContinuation { line: 3 });
        assert_eq!(e.line(), 3);
        assert!(e.to_string().starts_with("line 3:"));
    }

    #[test]
    fn every_error_has_a_hint() {
        let samples = [
            "0\n",
            "0G\n",
            "00 A4\n",
            "# expect 9000\n",
            "00 84 00 00 08\n# expect 9\n",
            "00 84 00 00 08\n# expect 9000\n# expect 9000\n",
            "00 \\\n# expect 9000\n",
            "00 \\\nreset\n",
            "00 \\\n",
        ];
        for sample in samples {
            let e = err(sample);
            assert!(!e.hint().is_empty(), "{e}");
            assert!(
                e.to_string().starts_with(&format!("line {}", e.line())),
                "{e}"
            );
        }
    }

    #[test]
    fn to_text_round_trips() {
        let text = "00A4040007F068736D6F6E01\n# expect 61xx\nreset\n00 84 00 00 08\nexit\n";
        let script = Script::parse(text).unwrap();
        assert_eq!(
            script.to_text(),
            "00 A4 04 00 07 F0 68 73 6D 6F 6E 01\n# expect 61XX\nreset\n00 84 00 00 08\nexit\n"
        );
        let again = Script::parse(&script.to_text()).unwrap();
        assert_eq!(again.steps, script.steps);
    }

    fn strip_lines(steps: &[ScriptStep]) -> Vec<(u8, Vec<u8>, Option<SwPattern>)> {
        steps
            .iter()
            .map(|s| match s {
                ScriptStep::Apdu { bytes, expect, .. } => (0, bytes.clone(), expect.clone()),
                ScriptStep::Reset { .. } => (1, vec![], None),
                ScriptStep::Exit { .. } => (2, vec![], None),
            })
            .collect()
    }

    /// Valid command APDUs of every case.
    fn command() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<[u8; 4]>(),
            prop_oneof![Just(None), (1u8..=255).prop_map(|le| Some(vec![le])),],
            proptest::collection::vec(any::<u8>(), 0..20),
        )
            .prop_map(|(header, le, data)| {
                let mut c = header.to_vec();
                if !data.is_empty() {
                    c.push(data.len() as u8);
                    c.extend(&data);
                }
                if let Some(le) = le {
                    c.extend(le);
                }
                c
            })
    }

    fn pattern() -> impl Strategy<Value = SwPattern> {
        proptest::collection::vec((any::<u16>(), any::<u16>()), 1..3).prop_map(|alts| {
            let text: Vec<String> = alts
                .iter()
                .map(|(v, m)| {
                    SwMask {
                        value: v & nibble_mask(*m),
                        mask: nibble_mask(*m),
                    }
                    .to_string()
                })
                .collect();
            SwPattern::parse(&text.join("|")).unwrap()
        })
    }

    /// A mask with each nibble all-ones or all-zeros.
    fn nibble_mask(bits: u16) -> u16 {
        (0..4).fold(0, |m, i| {
            if bits >> i & 1 == 1 {
                m | 0xF << (4 * i)
            } else {
                m
            }
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "[0-9A-Fa-fxX #\\\\|:\\r\\n\\t]{0,200}|(reset|exit|# expect|00 A4|\\\\|\n|61XX| |\\|){0,40}") {
            match Script::parse(&text) {
                Ok(script) => {
                    for step in &script.steps {
                        prop_assert!(step.line() >= 1);
                    }
                }
                Err(e) => {
                    let lines = text.split('\n').count();
                    prop_assert!(e.line() >= 1 && e.line() <= lines, "{} of {}", e, lines);
                    prop_assert!(!e.hint().is_empty());
                }
            }
        }

        #[test]
        fn parser_never_panics_on_any_text(text in any::<String>()) {
            let _ = Script::parse(&text);
        }

        #[test]
        fn rendered_scripts_parse_back(
            steps in proptest::collection::vec(
                prop_oneof![
                    4 => (command(), proptest::option::of(pattern())).prop_map(|(bytes, expect)| ScriptStep::Apdu { bytes, line: 0, expect }),
                    1 => Just(ScriptStep::Reset { line: 0 }),
                ],
                0..12,
            ),
            exit in any::<bool>(),
        ) {
            let mut steps = steps;
            if exit {
                steps.push(ScriptStep::Exit { line: 0 });
            }
            let script = Script { steps, warnings: vec![] };
            let parsed = Script::parse(&script.to_text()).unwrap();
            prop_assert_eq!(strip_lines(&parsed.steps), strip_lines(&script.steps));
            prop_assert!(parsed.warnings.is_empty());
        }
    }
}
