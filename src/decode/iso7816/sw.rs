//! ISO/IEC 7816-4 status words (SW1-SW2): the interindustry table with suggested fixes, the
//! proprietary families a monitor meets, and parsing of "6882" / "68 82" / "0x6882".
//!
//! Source: ISO/IEC 7816-3/-4 (ISO 7816-4:2005 Tables 5/6 as reproduced by gorferay,
//! OpenSC, pyscard, trussed). The hints are hsmon's own wording from that file's hint column.
//! Rows the reference marks unverified are phrased "likely".

use crate::decode::frame::{Field, StreamOffset};
use std::fmt;
use std::str::FromStr;

/// A status word as the card sends it: SW1 in the high byte, SW2 in the low byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// 9000: normal processing.
    pub const OK: StatusWord = StatusWord(0x9000);

    pub const fn from_bytes(sw1: u8, sw2: u8) -> StatusWord {
        StatusWord(((sw1 as u16) << 8) | sw2 as u16)
    }

    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub const fn sw2(self) -> u8 {
        (self.0 & 0xFF) as u8
    }

    /// Parse "6882", "68 82", "0x6882", "68:82" or "0x68 0x82" (exactly four hex digits).
    pub fn parse(text: &str) -> Result<StatusWord, SwParseError> {
        let mut value: u32 = 0;
        let mut digits = 0usize;
        for token in text.split(|c: char| c.is_whitespace() || c == ':' || c == '-') {
            let token = token
                .strip_prefix("0x")
                .or_else(|| token.strip_prefix("0X"))
                .unwrap_or(token);
            for c in token.chars() {
                let Some(d) = c.to_digit(16) else {
                    return Err(SwParseError::NotHex { found: c });
                };
                digits += 1;
                if digits > 4 {
                    // Keep counting for the error message, but stop accumulating.
                    continue;
                }
                value = (value << 4) | d;
            }
        }
        match digits {
            0 => Err(SwParseError::Empty),
            4 => Ok(StatusWord(value as u16)),
            _ => Err(SwParseError::WrongDigitCount { digits }),
        }
    }

    /// Whether the card says its non-volatile memory changed: SW1 63 or 65 mean changed,
    /// the other 6X mean unchanged (ISO 7816-4:2005 §5.1.3); `None` outside 6X.
    pub fn nv_memory_changed(self) -> Option<bool> {
        match self.sw1() {
            0x63 | 0x65 => Some(true),
            0x61..=0x6F => Some(false),
            _ => None,
        }
    }

    /// Stable knowledge-base id, e.g. "iso7816.sw.6882".
    pub fn knowledge_id(self) -> String {
        format!("iso7816.sw.{:04x}", self.0)
    }
}

impl fmt::Display for StatusWord {
    /// Four upper-case hex digits, e.g. "6882".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl FromStr for StatusWord {
    type Err = SwParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatusWord::parse(s)
    }
}

/// Why a status-word text did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwParseError {
    Empty,
    NotHex { found: char },
    WrongDigitCount { digits: usize },
}

impl SwParseError {
    /// The fix, for the user.
    pub fn hint(&self) -> &'static str {
        "write the status word as four hex digits: 6882, 68 82 or 0x6882"
    }
}

impl fmt::Display for SwParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwParseError::Empty => write!(f, "empty status word"),
            SwParseError::NotHex { found } => write!(f, "'{found}' is not a hex digit"),
            SwParseError::WrongDigitCount { digits } => {
                write!(f, "a status word has 4 hex digits, got {digits}")
            }
        }
    }
}

impl std::error::Error for SwParseError {}

/// How a status word should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwCategory {
    /// 9000 and 61XX: the command worked.
    Success,
    /// 62XX, 63XX: the command completed with a warning.
    Warning,
    /// 64XX-66XX: the card failed while executing.
    ExecutionError,
    /// 67XX-6FXX: the card refused the command as sent (length, class, parameters, state).
    CheckingError,
    /// Defined by an application or card family, not by ISO 7816-4 (9XXX other than 9000,
    /// 67XX/6BXX/6DXX/6EXX/6FXX other than XX=00).
    Proprietary,
    /// Not a status word at all: 60XX (the T=0 NULL procedure byte) or SW1 outside 6X/9X.
    Invalid,
    /// An interindustry SW1 with an SW2 the table does not define.
    Unknown,
}

impl SwCategory {
    /// Short label for panes ("ok", "warning", ...).
    pub fn label(self) -> &'static str {
        match self {
            SwCategory::Success => "ok",
            SwCategory::Warning => "warning",
            SwCategory::ExecutionError => "execution error",
            SwCategory::CheckingError => "checking error",
            SwCategory::Proprietary => "proprietary",
            SwCategory::Invalid => "invalid",
            SwCategory::Unknown => "unknown",
        }
    }
}

/// What a status word means and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwInfo {
    pub sw: StatusWord,
    pub category: SwCategory,
    /// The meaning with the XX parameter filled in, e.g. "16 more bytes available: send GET
    /// RESPONSE with Le=10".
    pub meaning: String,
    /// The usual fix, when there is one worth saying.
    pub hint: Option<&'static str>,
}

impl SwInfo {
    /// One line: "6882 Secure messaging not supported".
    pub fn summary(&self) -> String {
        format!("{} {}", self.sw, self.meaning)
    }
}

const HINT_GET_RESPONSE: &str = "send GET RESPONSE (CLA C0 00 00 XX) with the same CLA / logical channel as the command; repeat while 61XX comes back";
const HINT_6CXX: &str =
    "re-issue the same command with Le = XX (T=0 procedure; also seen under T=1)";
const HINT_6700: &str =
    "check Lc against the data length, whether Le is present, and T=0 case-4 handling";
const HINT_6800: &str = "decode the CLA byte: the card refuses a function it asks for (logical channel, secure messaging or chaining)";
const HINT_6881: &str = "CLA channel bits are not 0 but that channel is not open (MANAGE CHANNEL) or the card has no logical channels (see the ATR card-capabilities byte); use channel 0";
const HINT_6882: &str = "CLA secure-messaging bits are set (0x04/0x08/0x0C, or 0x20 in 0x40-0x7F) without SM support or before the SM session: clear the SM bits or open the secure channel first";
const HINT_6883: &str =
    "a chain (CLA bit 0x10 set) was not closed: send the last command with the chaining bit clear";
const HINT_6884: &str = "CLA chaining bit 0x10 is set but the card does not support chaining: use extended length or smaller commands";
const HINT_6982: &str = "VERIFY / authenticate / open secure messaging first; a foreign reset (SCARD_W_RESET_CARD) may have cleared the PIN state";
const HINT_6988: &str =
    "secure-messaging keys or counter out of sync (e.g. after a reset): re-open the secure channel";
const HINT_63C0: &str = "counter at 0: the next failure blocks (or the reference data is already blocked); stop retrying";
const HINT_63CX: &str = "X tries left before the reference data (PIN) blocks";
const HINT_60: &str = "0x60 is the T=0 NULL procedure byte (the card asks for more time), not SW1; whatever reported it as a status word lost sync with the procedure bytes";

/// Look up a status word. Never fails: undefined codes come back as `Unknown`,
/// `Proprietary` or `Invalid` with a generic meaning.
pub fn lookup(sw: StatusWord) -> SwInfo {
    use SwCategory::*;
    let (sw1, sw2) = (sw.sw1(), sw.sw2());
    let info = |category, meaning: String, hint| SwInfo {
        sw,
        category,
        meaning,
        hint,
    };
    let fixed = |category, meaning: &str, hint| info(category, meaning.to_string(), hint);
    match (sw1, sw2) {
        (0x90, 0x00) => fixed(Success, "Normal processing, no further qualification", None),
        (0x61, 0x00) => fixed(
            Success,
            "256 or more bytes available: send GET RESPONSE with Le=00",
            Some(HINT_GET_RESPONSE),
        ),
        (0x61, n) => info(
            Success,
            format!("{n} more bytes available: send GET RESPONSE with Le={n:02X}"),
            Some(HINT_GET_RESPONSE),
        ),

        (0x62, 0x00) => fixed(
            Warning,
            "Warning, NV memory unchanged, no information",
            None,
        ),
        (0x62, 0x02..=0x80) => info(
            Warning,
            format!("Warning triggered by the card (query 0x{sw2:02X}), NV memory unchanged"),
            Some("the card wants a proprietary follow-up"),
        ),
        (0x62, 0x81) => fixed(
            Warning,
            "Part of returned data may be corrupted",
            Some("re-read"),
        ),
        (0x62, 0x82) => fixed(
            Warning,
            "End of file/record reached before reading Ne bytes",
            Some("reduce Le or the offset"),
        ),
        (0x62, 0x83) => fixed(
            Warning,
            "Selected file deactivated (1995: invalidated); after a GlobalPlatform SELECT: card life cycle CARD_LOCKED",
            None,
        ),
        (0x62, 0x84) => fixed(Warning, "FCI not formatted according to ISO 7816-4", None),
        (0x62, 0x85) => fixed(Warning, "Selected file in termination state", None),
        (0x62, 0x86) => fixed(
            Warning,
            "No input data available from a sensor on the card",
            None,
        ),
        (0x62, 0x87) => fixed(
            Warning,
            "Likely: at least one of the referenced records is deactivated (ISO 7816-4:2013, unverified)",
            None,
        ),
        (0x62, _) => info(
            Warning,
            format!("Warning, NV memory unchanged (SW2 0x{sw2:02X} not defined by ISO 7816-4)"),
            None,
        ),

        (0x63, 0x00) => fixed(
            Warning,
            "Warning, NV memory changed, no information (often: verification failed)",
            None,
        ),
        (0x63, 0x40) => fixed(
            Warning,
            "Likely: unsuccessful comparison (ISO 7816-4:2013, unverified)",
            None,
        ),
        (0x63, 0x81) => fixed(Warning, "File filled up by the last write", None),
        (0x63, 0xC0) => fixed(
            Warning,
            "Counter = 0 (after VERIFY: no tries left)",
            Some(HINT_63C0),
        ),
        (0x63, 0xC1..=0xCF) => {
            let left = sw2 & 0x0F;
            let tries = if left == 1 { "try" } else { "tries" };
            info(
                Warning,
                format!("Counter = {left} (after VERIFY: {left} {tries} left)"),
                Some(HINT_63CX),
            )
        }
        (0x63, _) => info(
            Warning,
            format!("Warning, NV memory changed (SW2 0x{sw2:02X} not defined by ISO 7816-4)"),
            None,
        ),

        (0x64, 0x00) => fixed(ExecutionError, "Execution error, NV memory unchanged", None),
        (0x64, 0x01) => fixed(
            ExecutionError,
            "Immediate response required by the card",
            None,
        ),
        (0x64, 0x02..=0x80) => info(
            ExecutionError,
            format!("Execution error triggered by the card (query 0x{sw2:02X})"),
            Some("the card wants a proprietary follow-up"),
        ),
        (0x64, _) => info(
            ExecutionError,
            format!(
                "Execution error, NV memory unchanged (SW2 0x{sw2:02X} not defined by ISO 7816-4)"
            ),
            None,
        ),

        (0x65, 0x00) => fixed(
            ExecutionError,
            "Execution error, NV memory changed, no information",
            None,
        ),
        (0x65, 0x81) => fixed(ExecutionError, "Memory failure", None),
        (0x65, _) => info(
            ExecutionError,
            format!(
                "Execution error, NV memory changed (SW2 0x{sw2:02X} not defined by ISO 7816-4)"
            ),
            None,
        ),

        (0x66, _) => info(
            ExecutionError,
            format!("Security-related issue (reserved by ISO 7816-4), SW2 0x{sw2:02X}"),
            None,
        ),

        (0x67, 0x00) => fixed(
            CheckingError,
            "Wrong length; no further indication",
            Some(HINT_6700),
        ),
        (0x67, _) => info(
            Proprietary,
            format!(
                "Wrong length (67{sw2:02X}: only 6700 is defined by ISO 7816-4; the rest is proprietary)"
            ),
            Some(HINT_6700),
        ),

        (0x68, 0x00) => fixed(
            CheckingError,
            "Functions in CLA not supported",
            Some(HINT_6800),
        ),
        (0x68, 0x81) => fixed(
            CheckingError,
            "Logical channel not supported",
            Some(HINT_6881),
        ),
        (0x68, 0x82) => fixed(
            CheckingError,
            "Secure messaging not supported",
            Some(HINT_6882),
        ),
        (0x68, 0x83) => fixed(
            CheckingError,
            "Last command of the chain expected",
            Some(HINT_6883),
        ),
        (0x68, 0x84) => fixed(
            CheckingError,
            "Command chaining not supported",
            Some(HINT_6884),
        ),
        (0x68, _) => info(
            Unknown,
            format!("Functions in CLA not supported (SW2 0x{sw2:02X} not defined by ISO 7816-4)"),
            Some(HINT_6800),
        ),

        (0x69, 0x00) => fixed(CheckingError, "Command not allowed, no information", None),
        (0x69, 0x81) => fixed(
            CheckingError,
            "Command incompatible with file structure",
            None,
        ),
        (0x69, 0x82) => fixed(
            CheckingError,
            "Security status not satisfied",
            Some(HINT_6982),
        ),
        (0x69, 0x83) => fixed(CheckingError, "Authentication method blocked", None),
        (0x69, 0x84) => fixed(
            CheckingError,
            "Reference data not usable (1995: referenced data invalidated)",
            None,
        ),
        (0x69, 0x85) => fixed(CheckingError, "Conditions of use not satisfied", None),
        (0x69, 0x86) => fixed(
            CheckingError,
            "Command not allowed (no current EF)",
            Some("SELECT an EF first"),
        ),
        (0x69, 0x87) => fixed(
            CheckingError,
            "Expected secure messaging data objects missing",
            None,
        ),
        (0x69, 0x88) => fixed(
            CheckingError,
            "Incorrect secure messaging data objects",
            Some(HINT_6988),
        ),
        (0x69, 0x99) => fixed(
            Proprietary,
            "Java Card: applet selection failed (not an ISO 7816-4 code)",
            None,
        ),
        (0x69, _) => info(
            Unknown,
            format!("Command not allowed (SW2 0x{sw2:02X} not defined by ISO 7816-4)"),
            None,
        ),

        (0x6A, 0x00) => fixed(
            CheckingError,
            "Wrong parameters P1-P2, no information",
            None,
        ),
        (0x6A, 0x80) => fixed(
            CheckingError,
            "Incorrect parameters in the command data field",
            None,
        ),
        (0x6A, 0x81) => fixed(CheckingError, "Function not supported", None),
        (0x6A, 0x82) => fixed(
            CheckingError,
            "File or application not found",
            Some("the AID/FID is wrong or the wrong applet is selected"),
        ),
        (0x6A, 0x83) => fixed(CheckingError, "Record not found", None),
        (0x6A, 0x84) => fixed(CheckingError, "Not enough memory space in the file", None),
        (0x6A, 0x85) => fixed(CheckingError, "Nc inconsistent with TLV structure", None),
        (0x6A, 0x86) => fixed(CheckingError, "Incorrect parameters P1-P2", None),
        (0x6A, 0x87) => fixed(CheckingError, "Nc inconsistent with parameters P1-P2", None),
        (0x6A, 0x88) => fixed(
            CheckingError,
            "Referenced data or reference data not found",
            None,
        ),
        (0x6A, 0x89) => fixed(CheckingError, "File already exists", None),
        (0x6A, 0x8A) => fixed(CheckingError, "DF name already exists", None),
        (0x6A, _) => info(
            Unknown,
            format!("Wrong parameters P1-P2 (SW2 0x{sw2:02X} not defined by ISO 7816-4)"),
            None,
        ),

        (0x6B, 0x00) => fixed(CheckingError, "Wrong parameters P1-P2", None),
        (0x6C, n) => {
            let available = if n == 0 { 256 } else { u16::from(n) };
            info(
                CheckingError,
                format!(
                    "Wrong Le field: {available} bytes available: re-send the same command with Le={n:02X}"
                ),
                Some(HINT_6CXX),
            )
        }
        (0x6D, 0x00) => fixed(
            CheckingError,
            "Instruction code not supported or invalid",
            Some("wrong applet selected, or a typo in INS"),
        ),
        (0x6E, 0x00) => fixed(
            CheckingError,
            "Class not supported",
            Some("proprietary CLA (0x80…) sent to an ISO-only applet, or vice-versa"),
        ),
        (0x6F, 0x00) => fixed(CheckingError, "No precise diagnosis", None),
        (0x6B | 0x6D | 0x6E | 0x6F, _) => info(
            Proprietary,
            format!(
                "{} (only {sw1:02X}00 is defined by ISO 7816-4; {sw}: proprietary)",
                sw1_meaning(sw1)
            ),
            None,
        ),

        (0x60, _) => fixed(
            Invalid,
            "Not a status word: 0x60 is the T=0 NULL procedure byte",
            Some(HINT_60),
        ),
        (0x91 | 0x92 | 0x93 | 0x94 | 0x98 | 0x9E | 0x9F, _) => info(
            Proprietary,
            format!(
                "Proprietary {sw1:02X}XX status (SIM/UICC family, GSM 11.11 / ETSI TS 102 221), SW2 0x{sw2:02X}"
            ),
            None,
        ),
        (0x90..=0x9F, _) => info(
            Proprietary,
            format!("Proprietary status {sw} (9XXX other than 9000 is not defined by ISO 7816-4)"),
            None,
        ),
        _ => info(
            Invalid,
            format!("Not a valid status word: SW1 must be 6X or 9X, got 0x{sw1:02X}"),
            None,
        ),
    }
}

/// What SW1 alone says (for a status word whose SW2 was lost, and for field trees).
pub fn sw1_meaning(sw1: u8) -> &'static str {
    match sw1 {
        0x60 => "NULL procedure byte (not a status word)",
        0x61 => "Normal processing, response bytes still available",
        0x62 => "Warning, NV memory unchanged",
        0x63 => "Warning, NV memory changed",
        0x64 => "Execution error, NV memory unchanged",
        0x65 => "Execution error, NV memory changed",
        0x66 => "Security-related issue (reserved)",
        0x67 => "Wrong length",
        0x68 => "Functions in CLA not supported",
        0x69 => "Command not allowed",
        0x6A | 0x6B => "Wrong parameters P1-P2",
        0x6C => "Wrong Le field",
        0x6D => "Instruction code not supported or invalid",
        0x6E => "Class not supported",
        0x6F => "No precise diagnosis",
        0x90 => "Normal processing (9000) or proprietary",
        0x91..=0x9F => "Proprietary",
        _ => "Not a status word (SW1 must be 6X or 9X)",
    }
}

/// The field tree for a status word whose SW1 is at stream offset `at` and SW2 at `at + 1`:
/// "SW" with SW1, SW2, category and (when there is one) the hint as children.
pub fn sw_field(sw: StatusWord, at: StreamOffset) -> Field {
    let info = lookup(sw);
    let whole = at..at.saturating_add(2);
    let mut children = vec![
        Field::new(
            "SW1",
            format!("0x{:02X} {}", sw.sw1(), sw1_meaning(sw.sw1())),
            at..at.saturating_add(1),
        ),
        Field::new(
            "SW2",
            format!("0x{:02X}", sw.sw2()),
            at.saturating_add(1)..at.saturating_add(2),
        ),
        Field::new("category", info.category.label(), whole.clone()),
    ];
    if let Some(hint) = info.hint {
        children.push(Field::new("hint", hint, whole.clone()));
    }
    Field::new(
        "SW",
        format!("{:02X} {:02X} {}", sw.sw1(), sw.sw2(), info.meaning),
        whole,
    )
    .with_children(children)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_spellings() {
        for text in [
            "6882",
            "68 82",
            "0x6882",
            "0X6882",
            "68:82",
            "0x68 0x82",
            " 6882 ",
        ] {
            assert_eq!(StatusWord::parse(text), Ok(StatusWord(0x6882)), "{text}");
        }
        assert_eq!("9000".parse::<StatusWord>(), Ok(StatusWord::OK));
        assert_eq!(StatusWord::parse(""), Err(SwParseError::Empty));
        assert_eq!(
            StatusWord::parse("688"),
            Err(SwParseError::WrongDigitCount { digits: 3 })
        );
        assert_eq!(
            StatusWord::parse("688200"),
            Err(SwParseError::WrongDigitCount { digits: 6 })
        );
        assert_eq!(
            StatusWord::parse("68g2"),
            Err(SwParseError::NotHex { found: 'g' })
        );
    }

    #[test]
    fn bytes_and_display() {
        let sw = StatusWord::from_bytes(0x68, 0x82);
        assert_eq!((sw.sw1(), sw.sw2()), (0x68, 0x82));
        assert_eq!(sw.to_string(), "6882");
        assert_eq!(sw.knowledge_id(), "iso7816.sw.6882");
    }

    #[test]
    fn sw1_68_family_from_reference() {
        let cases = [
            (0x6800, "Functions in CLA not supported"),
            (0x6881, "Logical channel not supported"),
            (0x6882, "Secure messaging not supported"),
            (0x6883, "Last command of the chain expected"),
            (0x6884, "Command chaining not supported"),
        ];
        for (code, meaning) in cases {
            let info = lookup(StatusWord(code));
            assert_eq!(info.meaning, meaning);
            assert_eq!(info.category, SwCategory::CheckingError);
            assert!(
                info.hint.is_some(),
                "{code:04X} has a hint in the reference"
            );
        }
        assert!(lookup(StatusWord(0x6882)).hint.unwrap().contains("SM bits"));
        assert_eq!(lookup(StatusWord(0x6885)).category, SwCategory::Unknown);
    }

    #[test]
    fn parameters_are_filled_in() {
        assert_eq!(
            lookup(StatusWord(0x6110)).meaning,
            "16 more bytes available: send GET RESPONSE with Le=10"
        );
        assert_eq!(lookup(StatusWord(0x6110)).category, SwCategory::Success);
        assert!(
            lookup(StatusWord(0x6100))
                .meaning
                .starts_with("256 or more")
        );
        assert_eq!(
            lookup(StatusWord(0x6C10)).meaning,
            "Wrong Le field: 16 bytes available: re-send the same command with Le=10"
        );
        assert!(lookup(StatusWord(0x6C00)).meaning.contains("256 bytes"));
        assert_eq!(
            lookup(StatusWord(0x63C2)).meaning,
            "Counter = 2 (after VERIFY: 2 tries left)"
        );
        assert!(lookup(StatusWord(0x63C1)).meaning.contains("1 try left"));
        assert_eq!(lookup(StatusWord(0x63C0)).hint, Some(HINT_63C0));
        assert!(lookup(StatusWord(0x6210)).meaning.contains("query 0x10"));
    }

    #[test]
    fn table_rows_from_reference() {
        let rows: &[(u16, SwCategory, &str)] = &[
            (0x9000, SwCategory::Success, "Normal processing"),
            (0x6200, SwCategory::Warning, "NV memory unchanged"),
            (0x6281, SwCategory::Warning, "corrupted"),
            (0x6282, SwCategory::Warning, "End of file/record"),
            (0x6283, SwCategory::Warning, "deactivated"),
            (0x6284, SwCategory::Warning, "FCI"),
            (0x6285, SwCategory::Warning, "termination state"),
            (0x6286, SwCategory::Warning, "sensor"),
            (0x6287, SwCategory::Warning, "Likely"),
            (0x6300, SwCategory::Warning, "NV memory changed"),
            (0x6340, SwCategory::Warning, "Likely"),
            (0x6381, SwCategory::Warning, "filled up"),
            (0x6400, SwCategory::ExecutionError, "NV memory unchanged"),
            (0x6401, SwCategory::ExecutionError, "Immediate response"),
            (0x6450, SwCategory::ExecutionError, "triggered by the card"),
            (0x6500, SwCategory::ExecutionError, "NV memory changed"),
            (0x6581, SwCategory::ExecutionError, "Memory failure"),
            (0x6612, SwCategory::ExecutionError, "Security-related"),
            (0x6700, SwCategory::CheckingError, "Wrong length"),
            (0x6710, SwCategory::Proprietary, "proprietary"),
            (0x6900, SwCategory::CheckingError, "Command not allowed"),
            (0x6981, SwCategory::CheckingError, "file structure"),
            (
                0x6982,
                SwCategory::CheckingError,
                "Security status not satisfied",
            ),
            (
                0x6983,
                SwCategory::CheckingError,
                "Authentication method blocked",
            ),
            (
                0x6984,
                SwCategory::CheckingError,
                "Reference data not usable",
            ),
            (0x6985, SwCategory::CheckingError, "Conditions of use"),
            (0x6986, SwCategory::CheckingError, "no current EF"),
            (0x6987, SwCategory::CheckingError, "missing"),
            (
                0x6988,
                SwCategory::CheckingError,
                "Incorrect secure messaging",
            ),
            (0x6999, SwCategory::Proprietary, "Java Card"),
            (0x6A00, SwCategory::CheckingError, "Wrong parameters"),
            (0x6A80, SwCategory::CheckingError, "data field"),
            (0x6A81, SwCategory::CheckingError, "Function not supported"),
            (
                0x6A82,
                SwCategory::CheckingError,
                "File or application not found",
            ),
            (0x6A83, SwCategory::CheckingError, "Record not found"),
            (0x6A84, SwCategory::CheckingError, "memory space"),
            (0x6A85, SwCategory::CheckingError, "TLV"),
            (
                0x6A86,
                SwCategory::CheckingError,
                "Incorrect parameters P1-P2",
            ),
            (
                0x6A87,
                SwCategory::CheckingError,
                "Nc inconsistent with parameters",
            ),
            (0x6A88, SwCategory::CheckingError, "not found"),
            (0x6A89, SwCategory::CheckingError, "File already exists"),
            (0x6A8A, SwCategory::CheckingError, "DF name already exists"),
            (0x6B00, SwCategory::CheckingError, "Wrong parameters P1-P2"),
            (0x6B01, SwCategory::Proprietary, "proprietary"),
            (0x6D00, SwCategory::CheckingError, "Instruction code"),
            (0x6E00, SwCategory::CheckingError, "Class not supported"),
            (0x6F00, SwCategory::CheckingError, "No precise diagnosis"),
            (0x6F12, SwCategory::Proprietary, "proprietary"),
            (0x6012, SwCategory::Invalid, "NULL procedure byte"),
            (0x9F10, SwCategory::Proprietary, "SIM/UICC"),
            (0x9001, SwCategory::Proprietary, "9XXX"),
            (0x1234, SwCategory::Invalid, "SW1 must be 6X or 9X"),
        ];
        for (code, category, fragment) in rows {
            let info = lookup(StatusWord(*code));
            assert_eq!(info.category, *category, "{code:04X}");
            assert!(
                info.meaning.contains(fragment),
                "{code:04X}: {:?} lacks {fragment:?}",
                info.meaning
            );
        }
    }

    #[test]
    fn nv_memory_rule() {
        assert_eq!(StatusWord(0x6300).nv_memory_changed(), Some(true));
        assert_eq!(StatusWord(0x6581).nv_memory_changed(), Some(true));
        assert_eq!(StatusWord(0x6882).nv_memory_changed(), Some(false));
        assert_eq!(StatusWord(0x9000).nv_memory_changed(), None);
    }

    #[test]
    fn field_tree_names_the_status() {
        let field = sw_field(StatusWord(0x6882), 10);
        assert_eq!(field.span, 10..12);
        assert!(field.value.contains("Secure messaging not supported"));
        assert_eq!(field.children[0].name, "SW1");
        assert_eq!(field.children[0].span, 10..11);
        assert!(field.children[0].value.contains("Functions in CLA"));
        assert_eq!(field.children[1].span, 11..12);
        assert!(field.children.iter().any(|c| c.name == "hint"));
    }

    proptest! {
        #[test]
        fn every_status_word_has_a_meaning(code in any::<u16>()) {
            let info = lookup(StatusWord(code));
            prop_assert!(!info.meaning.is_empty());
            prop_assert_eq!(info.sw, StatusWord(code));
            let text = format!("{code:04x}");
            prop_assert_eq!(StatusWord::parse(&text), Ok(StatusWord(code)));
        }

        #[test]
        fn parse_never_panics(text in ".{0,12}") {
            let _ = StatusWord::parse(&text);
        }
    }
}
