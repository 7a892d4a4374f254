//! ISO/IEC 7816-3/-4 command and response APDUs: case detection (1, 2S, 3S, 4S, 2E, 3E, 4E)
//! with short and extended Lc/Le, errors that carry sizes, and frames with field trees.
//!
//! Length rules (ISO 7816-3:2006 §12.1.3): after CLA INS P1 P2 comes nothing (case 1); one
//! byte Le (2S, 00 = 256); Lc (01-FF) + data [+ Le] (3S/4S); or 00 then a two-byte field:
//! alone it is Le (2E, 0000 = 65536), otherwise it is Lc (0001-FFFF) + data [+ two-byte Le]
//! (3E/4E).

use super::cla::{self, Cla};
use super::sw::{self, StatusWord};
use super::{byte_span, ins, span};
use crate::decode::frame::{Field, Frame, FrameStatus, Protocol, StreamOffset};
use crate::hex;
use std::fmt;
use std::ops::Range;

/// Largest data shown in a field value before it is cut short (the span still covers all).
const SHOWN_DATA_BYTES: usize = 64;

/// The command case: which of Lc/data and Le are present, and in which length form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApduCase {
    /// Header only: no data, no response data.
    Case1,
    /// Le only (one byte).
    Case2Short,
    /// Lc + data (one-byte Lc).
    Case3Short,
    /// Lc + data + Le (one byte each).
    Case4Short,
    /// Le only, extended (00 + two bytes).
    Case2Extended,
    /// Lc + data, extended (00 + two-byte Lc).
    Case3Extended,
    /// Lc + data + Le, extended (00 + two-byte Lc, two-byte Le).
    Case4Extended,
}

impl ApduCase {
    /// "1", "2S", "3S", "4S", "2E", "3E", "4E".
    pub fn label(self) -> &'static str {
        match self {
            ApduCase::Case1 => "1",
            ApduCase::Case2Short => "2S",
            ApduCase::Case3Short => "3S",
            ApduCase::Case4Short => "4S",
            ApduCase::Case2Extended => "2E",
            ApduCase::Case3Extended => "3E",
            ApduCase::Case4Extended => "4E",
        }
    }

    pub fn is_extended(self) -> bool {
        matches!(
            self,
            ApduCase::Case2Extended | ApduCase::Case3Extended | ApduCase::Case4Extended
        )
    }

    fn what(self) -> &'static str {
        match self {
            ApduCase::Case1 => "no command data, no response data",
            ApduCase::Case2Short | ApduCase::Case2Extended => "response data expected",
            ApduCase::Case3Short | ApduCase::Case3Extended => "command data, no response data",
            ApduCase::Case4Short | ApduCase::Case4Extended => {
                "command data, response data expected"
            }
        }
    }
}

impl fmt::Display for ApduCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A parsed command APDU. Ranges are byte indices into the slice that was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandApdu {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub case: ApduCase,
    /// Where the Lc field is (empty when absent; 1 or 3 bytes).
    pub lc_field: Range<usize>,
    /// Where the command data is (empty for cases 1 and 2); its length is Nc.
    pub data: Range<usize>,
    /// Where the Le field is (empty when absent; 1, 2 or 3 bytes).
    pub le_field: Range<usize>,
    /// Ne, the most response bytes the reader accepts: Le 00 means 256, extended 0000 65536.
    pub le: Option<u32>,
}

impl CommandApdu {
    /// Nc, the number of command data bytes.
    pub fn nc(&self) -> usize {
        self.data.len()
    }
}

/// A parsed response APDU: data then SW1 SW2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseApdu {
    /// Where the response data is (may be empty).
    pub data: Range<usize>,
    pub sw: StatusWord,
}

/// Why bytes are not a well-formed APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApduError {
    /// Fewer bytes than the smallest valid form (4 for a command, 7 once an extended length
    /// starts, 2 for a response).
    TooShort { need: usize, got: usize },
    /// Lc announces `declared` data bytes, but `present` bytes follow the Lc field and that is
    /// neither Nc (case 3) nor Nc + the Le length (case 4).
    LengthMismatch {
        declared: usize,
        present: usize,
        extended: bool,
    },
    /// An extended Lc of 0000 followed by more bytes (Lc must be 1-65535).
    ZeroExtendedLc,
}

impl ApduError {
    /// The likely fix.
    pub fn hint(&self) -> &'static str {
        match self {
            ApduError::TooShort { need: 2, .. } => {
                "a response APDU ends with SW1 SW2; fewer than 2 bytes means the reader or driver lost the status word"
            }
            ApduError::TooShort { need: 7, .. } => {
                "a 00 after the header starts an extended length (00 + two bytes); for case 2S with Le=256 send exactly 5 bytes"
            }
            ApduError::TooShort { .. } => "a command APDU needs at least CLA INS P1 P2",
            ApduError::LengthMismatch { .. } => {
                "make Lc equal the data length; case 4 adds Le after the data (1 byte short form, 2 bytes extended)"
            }
            ApduError::ZeroExtendedLc => {
                "an extended Lc must be 0001-FFFF; use case 2E (00 + Le) if no data is sent"
            }
        }
    }
}

impl fmt::Display for ApduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApduError::TooShort { need, got } => {
                write!(f, "too short: need at least {need} bytes, got {got}")
            }
            ApduError::LengthMismatch {
                declared,
                present,
                extended,
            } => {
                let le_len = if *extended { 2 } else { 1 };
                write!(
                    f,
                    "length mismatch: Lc declares {declared} data bytes but {present} follow it (expected {declared}, or {} with Le)",
                    declared.saturating_add(le_len)
                )
            }
            ApduError::ZeroExtendedLc => write!(f, "extended Lc is 0000 but data follows"),
        }
    }
}

impl std::error::Error for ApduError {}

fn byte_at(bytes: &[u8], index: usize) -> u8 {
    bytes.get(index).copied().unwrap_or(0)
}

fn u16_at(bytes: &[u8], index: usize) -> usize {
    usize::from(byte_at(bytes, index)) << 8 | usize::from(byte_at(bytes, index.saturating_add(1)))
}

/// Parse a command APDU (the whole slice is one command).
pub fn parse_command(bytes: &[u8]) -> Result<CommandApdu, ApduError> {
    let len = bytes.len();
    let [cla, ins, p1, p2] = match bytes.get(..4) {
        Some(&[a, b, c, d]) => [a, b, c, d],
        _ => return Err(ApduError::TooShort { need: 4, got: len }),
    };
    let command = |case, lc_field, data, le_field, le| CommandApdu {
        cla,
        ins,
        p1,
        p2,
        case,
        lc_field,
        data,
        le_field,
        le,
    };
    if len == 4 {
        return Ok(command(ApduCase::Case1, 4..4, 4..4, 4..4, None));
    }
    let b4 = byte_at(bytes, 4);
    if len == 5 {
        let ne = if b4 == 0 { 256 } else { u32::from(b4) };
        return Ok(command(ApduCase::Case2Short, 5..5, 5..5, 4..5, Some(ne)));
    }
    if b4 != 0 {
        let nc = usize::from(b4);
        let present = len - 5;
        let data = 5..5 + nc;
        if present == nc {
            return Ok(command(ApduCase::Case3Short, 4..5, data, len..len, None));
        }
        if present == nc + 1 {
            let le = byte_at(bytes, len - 1);
            let ne = if le == 0 { 256 } else { u32::from(le) };
            return Ok(command(
                ApduCase::Case4Short,
                4..5,
                data,
                len - 1..len,
                Some(ne),
            ));
        }
        return Err(ApduError::LengthMismatch {
            declared: nc,
            present,
            extended: false,
        });
    }
    // b4 == 00 with more bytes: an extended length field 00 XX XX.
    if len < 7 {
        return Err(ApduError::TooShort { need: 7, got: len });
    }
    let n = u16_at(bytes, 5);
    if len == 7 {
        let ne = if n == 0 { 65536 } else { n as u32 };
        return Ok(command(ApduCase::Case2Extended, 7..7, 7..7, 4..7, Some(ne)));
    }
    if n == 0 {
        return Err(ApduError::ZeroExtendedLc);
    }
    let present = len - 7;
    let data = 7..7 + n;
    if present == n {
        return Ok(command(ApduCase::Case3Extended, 4..7, data, len..len, None));
    }
    if present == n + 2 {
        let le = u16_at(bytes, len - 2);
        let ne = if le == 0 { 65536 } else { le as u32 };
        return Ok(command(
            ApduCase::Case4Extended,
            4..7,
            data,
            len - 2..len,
            Some(ne),
        ));
    }
    Err(ApduError::LengthMismatch {
        declared: n,
        present,
        extended: true,
    })
}

/// Parse a response APDU: response data followed by SW1 SW2.
pub fn parse_response(bytes: &[u8]) -> Result<ResponseApdu, ApduError> {
    let len = bytes.len();
    if len < 2 {
        return Err(ApduError::TooShort { need: 2, got: len });
    }
    let sw = StatusWord::from_bytes(byte_at(bytes, len - 2), byte_at(bytes, len - 1));
    Ok(ResponseApdu {
        data: 0..len - 2,
        sw,
    })
}

/// The header fields CLA (decoded), INS (named), P1, P2 for whatever of the first four bytes
/// is present.
fn header_fields(base: StreamOffset, bytes: &[u8]) -> Vec<Field> {
    let mut fields = Vec::with_capacity(8);
    let cla = bytes.first().map(|b| Cla::decode(*b));
    if let Some(cla) = &cla {
        fields.push(cla.field(base));
    }
    if let (Some(cla), Some(ins_byte)) = (&cla, bytes.get(1)) {
        fields.push(Field::new(
            "INS",
            ins::describe(*ins_byte, cla),
            byte_span(base, 1),
        ));
    }
    for (index, name) in [(2usize, "P1"), (3, "P2")] {
        if let Some(b) = bytes.get(index) {
            fields.push(Field::new(
                name,
                format!("0x{b:02X}"),
                byte_span(base, index),
            ));
        }
    }
    fields
}

fn length_value(field: &[u8], meaning: String) -> String {
    format!("{} ({meaning})", hex::spaced(field))
}

/// Decode a command APDU into a frame (kind "command"). Malformed input gives a frame with
/// `FrameStatus::Malformed` (the header fields that are present, the rest as raw bytes).
pub fn command_frame(base: StreamOffset, bytes: &[u8]) -> Frame {
    let whole = span(base, 0..bytes.len());
    let mut fields = header_fields(base, bytes);
    match parse_command(bytes) {
        Ok(cmd) => {
            let slice = |r: &Range<usize>| bytes.get(r.clone()).unwrap_or(&[]);
            if !cmd.lc_field.is_empty() {
                fields.push(Field::new(
                    "Lc",
                    length_value(
                        slice(&cmd.lc_field),
                        format!("Nc = {} data bytes", cmd.nc()),
                    ),
                    span(base, cmd.lc_field.clone()),
                ));
            }
            if !cmd.data.is_empty() {
                fields.push(Field::new(
                    "data",
                    hex::spaced_limited(slice(&cmd.data), SHOWN_DATA_BYTES),
                    span(base, cmd.data.clone()),
                ));
            }
            if let Some(ne) = cmd.le {
                fields.push(Field::new(
                    "Le",
                    length_value(slice(&cmd.le_field), format!("Ne = {ne}")),
                    span(base, cmd.le_field.clone()),
                ));
            }
            fields.push(Field::new(
                "case",
                format!("{} ({})", cmd.case, cmd.case.what()),
                whole.clone(),
            ));
            let name = ins::name(cmd.ins)
                .map(str::to_string)
                .unwrap_or_else(|| format!("INS {:02X}", cmd.ins));
            let mut summary = format!(
                "{name} CLA={:02X} P1={:02X} P2={:02X}",
                cmd.cla, cmd.p1, cmd.p2
            );
            if !cmd.data.is_empty() {
                summary.push_str(&format!(" Lc={}", cmd.nc()));
            }
            if let Some(ne) = cmd.le {
                summary.push_str(&format!(" Le={ne}"));
            }
            summary.push_str(&format!(" (case {})", cmd.case));
            Frame::new(
                Protocol::Apdu,
                whole,
                "command",
                FrameStatus::Ok,
                summary,
                fields,
            )
        }
        Err(err) => {
            if bytes.len() > 4 {
                fields.push(Field::new(
                    "rest",
                    hex::spaced_limited(bytes.get(4..).unwrap_or(&[]), SHOWN_DATA_BYTES),
                    span(base, 4..bytes.len()),
                ));
            }
            Frame::new(
                Protocol::Apdu,
                whole,
                "command",
                FrameStatus::Malformed(format!("{err}; {}", err.hint())),
                format!("malformed command APDU: {err}"),
                fields,
            )
        }
    }
}

/// Decode a response APDU into a frame (kind "response"): data and the SW with its meaning.
pub fn response_frame(base: StreamOffset, bytes: &[u8]) -> Frame {
    response_frame_inner(base, bytes, None)
}

/// Like [`response_frame`], for a response to a command sent with class byte `command_cla`:
/// adds a "context" field when the CLA explains the status (68XX, 6E00).
pub fn response_frame_for(base: StreamOffset, bytes: &[u8], command_cla: u8) -> Frame {
    response_frame_inner(base, bytes, Some(Cla::decode(command_cla)))
}

fn response_frame_inner(base: StreamOffset, bytes: &[u8], cla: Option<Cla>) -> Frame {
    let whole = span(base, 0..bytes.len());
    match parse_response(bytes) {
        Ok(resp) => {
            let mut fields = Vec::with_capacity(3);
            if !resp.data.is_empty() {
                fields.push(Field::new(
                    "data",
                    hex::spaced_limited(
                        bytes.get(resp.data.clone()).unwrap_or(&[]),
                        SHOWN_DATA_BYTES,
                    ),
                    span(base, resp.data.clone()),
                ));
            }
            let sw_at = base.saturating_add(resp.data.end as u64);
            fields.push(sw::sw_field(resp.sw, sw_at));
            if let Some(text) = cla.and_then(|c| cla::explain_status(&c, resp.sw)) {
                fields.push(Field::new("context", text, whole.clone()));
            }
            let info = sw::lookup(resp.sw);
            let mut summary = info.summary();
            if !resp.data.is_empty() {
                summary.push_str(&format!(" (+{} data bytes)", resp.data.len()));
            }
            Frame::new(
                Protocol::Apdu,
                whole,
                "response",
                FrameStatus::Ok,
                summary,
                fields,
            )
        }
        Err(err) => {
            let mut fields = Vec::new();
            if let Some(sw1) = bytes.first() {
                fields.push(Field::new(
                    "SW1",
                    format!("0x{sw1:02X} {} (SW2 missing)", sw::sw1_meaning(*sw1)),
                    byte_span(base, 0),
                ));
            }
            Frame::new(
                Protocol::Apdu,
                whole,
                "response",
                FrameStatus::Malformed(format!("{err}; {}", err.hint())),
                format!("malformed response APDU: {err}"),
                fields,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn check_spans(frame: &Frame, lo: u64, hi: u64) {
        fn walk(fields: &[Field], lo: u64, hi: u64) {
            for f in fields {
                assert!(
                    f.span.start >= lo && f.span.end <= hi,
                    "{f:?} outside {lo}..{hi}"
                );
                walk(&f.children, lo, hi);
            }
        }
        assert!(frame.span.start >= lo && frame.span.end <= hi);
        walk(frame.fields(), lo, hi);
    }

    #[test]
    fn case_1() {
        let c = parse_command(&[0x00, 0x70, 0x80, 0x01]).unwrap();
        assert_eq!(c.case, ApduCase::Case1);
        assert_eq!((c.cla, c.ins, c.p1, c.p2), (0x00, 0x70, 0x80, 0x01));
        assert_eq!(c.le, None);
        assert_eq!(c.nc(), 0);
    }

    #[test]
    fn case_2s_le_00_is_256() {
        let c = parse_command(&[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(c.case, ApduCase::Case2Short);
        assert_eq!(c.le, Some(256));
        // GET RESPONSE after 61 10 (reference: CLA C0 00 00 XX).
        let c = parse_command(&[0x00, 0xC0, 0x00, 0x00, 0x10]).unwrap();
        assert_eq!(c.le, Some(16));
        assert_eq!(c.le_field, 4..5);
    }

    #[test]
    fn case_3s_and_4s() {
        let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
        let c = parse_command(&select).unwrap();
        assert_eq!(c.case, ApduCase::Case3Short);
        assert_eq!(c.data, 5..7);
        assert_eq!(c.le, None);
        let mut with_le = select.to_vec();
        with_le.push(0x00);
        let c = parse_command(&with_le).unwrap();
        assert_eq!(c.case, ApduCase::Case4Short);
        assert_eq!(c.le, Some(256));
        assert_eq!(c.le_field, 7..8);
    }

    #[test]
    fn extended_cases() {
        let c = parse_command(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(c.case, ApduCase::Case2Extended);
        assert_eq!(c.le, Some(65536));
        let c = parse_command(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]).unwrap();
        assert_eq!(c.le, Some(256));

        let mut cmd = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x00];
        cmd.extend(std::iter::repeat_n(0xAB, 256));
        let c = parse_command(&cmd).unwrap();
        assert_eq!(c.case, ApduCase::Case3Extended);
        assert_eq!(c.nc(), 256);
        assert_eq!(c.lc_field, 4..7);
        cmd.extend([0x00, 0x00]);
        let c = parse_command(&cmd).unwrap();
        assert_eq!(c.case, ApduCase::Case4Extended);
        assert_eq!(c.le, Some(65536));
        assert_eq!(c.le_field, 263..265);
    }

    #[test]
    fn errors_carry_sizes() {
        assert_eq!(
            parse_command(&[0x00, 0xA4]),
            Err(ApduError::TooShort { need: 4, got: 2 })
        );
        assert_eq!(
            parse_command(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0x01, 0x02]),
            Err(ApduError::LengthMismatch {
                declared: 5,
                present: 2,
                extended: false
            })
        );
        assert_eq!(
            parse_command(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x01]),
            Err(ApduError::TooShort { need: 7, got: 6 })
        );
        assert_eq!(
            parse_command(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01]),
            Err(ApduError::ZeroExtendedLc)
        );
        assert_eq!(
            parse_command(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x02, 0x01]),
            Err(ApduError::LengthMismatch {
                declared: 2,
                present: 1,
                extended: true
            })
        );
        let err = parse_command(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0x01]).unwrap_err();
        assert!(err.to_string().contains("Lc declares 5"));
        assert!(err.hint().contains("Lc"));
        assert_eq!(
            parse_response(&[0x90]),
            Err(ApduError::TooShort { need: 2, got: 1 })
        );
    }

    #[test]
    fn responses() {
        let r = parse_response(&[0x01, 0x02, 0x90, 0x00]).unwrap();
        assert_eq!(r.sw, StatusWord::OK);
        assert_eq!(r.data, 0..2);
        let r = parse_response(&[0x68, 0x82]).unwrap();
        assert_eq!(r.sw, StatusWord(0x6882));
        assert!(r.data.is_empty());
    }

    #[test]
    fn command_frame_fields() {
        // The reference's worked example: CLA 0C (SM header authenticated) answered 6882.
        let bytes = [0x0C, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00];
        let f = command_frame(100, &bytes);
        assert_eq!(f.protocol, Protocol::Apdu);
        assert_eq!(f.kind, "command");
        assert!(f.status.is_ok());
        assert_eq!(f.span, 100..108);
        let names: Vec<&str> = f.fields().iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["CLA", "INS", "P1", "P2", "Lc", "data", "Le", "case"]
        );
        assert!(f.fields()[0].value.contains("header authenticated"));
        assert_eq!(f.fields()[1].value, "A4 SELECT");
        assert_eq!(f.fields()[5].span, 105..107);
        assert!(f.summary().starts_with("SELECT CLA=0C"), "{}", f.summary());
        assert!(f.summary().ends_with("(case 4S)"));
        check_spans(&f, 100, 108);
    }

    #[test]
    fn malformed_command_frame() {
        let f = command_frame(0, &[0x00, 0xA4, 0x04, 0x00, 0x05, 0x01]);
        assert!(matches!(f.status, FrameStatus::Malformed(ref m) if m.contains("Lc declares 5")));
        assert_eq!(f.fields().last().unwrap().name, "rest");
        let f = command_frame(0, &[]);
        assert!(matches!(f.status, FrameStatus::Malformed(_)));
        assert!(f.fields().is_empty());
        assert_eq!(f.span, 0..0);
    }

    #[test]
    fn response_frames() {
        let f = response_frame(20, &[0xAA, 0x90, 0x00]);
        assert_eq!(f.kind, "response");
        assert!(f.summary().starts_with("9000 Normal processing"));
        assert_eq!(f.fields()[1].span, 21..23);
        let f = response_frame_for(0, &[0x68, 0x82], 0x0C);
        let ctx = f.fields().iter().find(|x| x.name == "context").unwrap();
        assert!(ctx.value.contains("secure messaging bits set in CLA"));
        let f = response_frame(0, &[0x68]);
        assert!(matches!(f.status, FrameStatus::Malformed(_)));
        assert!(
            f.fields()[0]
                .value
                .contains("Functions in CLA not supported")
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_bounds(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            base in 0u64..1_000_000,
        ) {
            let end = base + bytes.len() as u64;
            let f = command_frame(base, &bytes);
            check_spans(&f, base, end);
            let f = response_frame_for(base, &bytes, 0x0C);
            check_spans(&f, base, end);
            if let Ok(c) = parse_command(&bytes) {
                prop_assert!(c.data.end <= bytes.len());
                prop_assert!(c.le_field.end <= bytes.len());
                if let Some(ne) = c.le {
                    prop_assert!((1..=65536).contains(&ne));
                }
            }
        }

        #[test]
        fn short_case_4_round_trip(
            header in any::<[u8; 4]>(),
            data in proptest::collection::vec(any::<u8>(), 1..=255),
            le in any::<u8>(),
        ) {
            let mut bytes = header.to_vec();
            bytes.push(data.len() as u8);
            bytes.extend(&data);
            bytes.push(le);
            let c = parse_command(&bytes).unwrap();
            prop_assert_eq!(c.case, ApduCase::Case4Short);
            prop_assert_eq!(bytes.get(c.data.clone()).unwrap(), &data[..]);
            prop_assert_eq!(c.le, Some(if le == 0 { 256 } else { u32::from(le) }));
        }
    }
}
