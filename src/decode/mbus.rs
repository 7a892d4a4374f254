//! Wired M-Bus link layer (EN 13757-2): the meaning of FT1.2 frames as M-Bus (C-field
//! functions, A-field, CI-field, secondary-address data), its streaming framer, and the
//! `looks_like_mbus` heuristic that tells M-Bus from IEC 60870-5-101 on the same bytes.
//!
//! Facts from EN 13757-2 (libmbus `mbus-protocol.h`/`.c`, commit f09d613) and the C-field tables of EN 13757-2 and IEC 60870-5-2.

use super::frame::{
    Description, Detail, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset,
};
use super::ft12::{self, Check, RawFrame, Recognised, Shape};
use super::stream::{ParseStep, Streamer, WindowParser, framer_from_streamer, push_status, span};
use crate::hex;

/// C-fields libmbus accepts in a short frame (`mbus_frame_verify`).
const SHORT_C_FIELDS: [u8; 5] = [0x40, 0x5A, 0x7A, 0x5B, 0x7B];
/// C-fields libmbus accepts in a control or long frame.
const LONG_C_FIELDS: [u8; 6] = [0x53, 0x73, 0x08, 0x18, 0x28, 0x38];
/// The smallest L of a control/long frame (C, A, CI).
const MIN_LENGTH: u8 = 3;

/// Streaming M-Bus framer: `E5` ("ack"), `10 C A CS 16` ("short"), `68 03 03 68 …` ("control")
/// and `68 L L 68 …` ("long"). Holds at most one frame (261 bytes) of pending input.
pub struct MbusFramer {
    streamer: Streamer<MbusParser>,
}

impl MbusFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        MbusFramer {
            streamer: Streamer::new(MbusParser::default()),
        }
    }
}

impl Default for MbusFramer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(MbusFramer);

#[derive(Default)]
struct MbusParser {
    headers: ft12::HeaderRun,
}

impl WindowParser for MbusParser {
    const PROTOCOL: Protocol = Protocol::Mbus;
    const MAX_WINDOW: usize = ft12::MAX_FRAME;

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        ft12::next_start(bytes)
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        match ft12::recognise(window, 1, MIN_LENGTH, at_end) {
            Recognised::Need => ParseStep::Need,
            Recognised::Skip(n) => ParseStep::Skip(n),
            Recognised::Frame(raw) if !self.headers.admit(at, &raw) => {
                ParseStep::Skip(raw.consumed)
            }
            Recognised::Frame(raw) => ParseStep::Frame {
                consumed: raw.consumed,
                frame: build_frame(at, &raw),
            },
        }
    }

    fn reset(&mut self) {
        self.headers.reset();
    }
}

/// Decode the M-Bus frame at the start of `bytes` (the first byte is at stream offset `base`),
/// treating the end of `bytes` as the end of the stream. `None` if no frame starts there.
pub fn parse(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    match ft12::recognise(bytes, 1, MIN_LENGTH, true) {
        Recognised::Frame(raw) => Some(build_frame(base, &raw)),
        _ => None,
    }
}

/// Does this FT1.2 frame (from the M-Bus or the IEC 101 framer) look like M-Bus rather than
/// IEC 60870-5-101? Heuristic of the C-field tables of EN 13757-2 and IEC 60870-5-2: a control/long frame is M-Bus when C is one
/// of 53/73/08/18/28/38 and the CI is a known M-Bus CI; a short frame when C is one libmbus
/// allows (40/5A/7A/5B/7B). `E5` is the same in both and answers `true`.
///
/// Short frames and `E5` are byte-identical in the two protocols (`10 40 01 41 16` is both
/// SND_NKE and "reset of remote link"), so `true` means "could be M-Bus", not "is M-Bus".
pub fn looks_like_mbus(frame: &Frame) -> bool {
    if !matches!(frame.protocol, Protocol::Mbus | Protocol::Iec101) {
        return false;
    }
    if frame.kind == "ack" {
        return true;
    }
    if frame.protocol == Protocol::Mbus {
        if let Some((bytes, note)) = frame.kept_bytes() {
            return looks_like_mbus_raw(frame.kind, bytes, note);
        }
    }
    looks_like_mbus_by_fields(frame)
}

/// [`looks_like_mbus`] read from the field tree: IEC 101 frames (their ASDU type may sit at
/// the CI position) and frames built with their description.
fn looks_like_mbus_by_fields(frame: &Frame) -> bool {
    let Some(c) = field_byte(frame.fields(), "C") else {
        return false;
    };
    match frame.kind {
        "short" | "fixed" => SHORT_C_FIELDS.contains(&c),
        "control" | "long" | "variable" => {
            // The byte after A: the M-Bus framer names it CI; the IEC 101 framer names it the
            // ASDU type, and it sits at the CI position only with a 1-octet link address.
            let ci = field_byte(frame.fields(), "CI").or_else(|| {
                let one_octet_address = frame
                    .fields()
                    .iter()
                    .find(|f| f.name == "A")
                    .is_some_and(|a| a.span.end - a.span.start == 1);
                let asdu = frame.fields().iter().find(|f| f.name == "ASDU")?;
                if one_octet_address {
                    field_byte(&asdu.children, "type")
                } else {
                    None
                }
            });
            LONG_C_FIELDS.contains(&c) && ci.is_some_and(|ci| ci_name(ci).is_some())
        }
        _ => false,
    }
}

/// [`looks_like_mbus`] for a frame of this framer, from the bytes it kept: the C and CI its
/// description would show (C where the frame has C and A, CI where it has a third user byte),
/// without building that description (the engine asks for every FT1.2 frame).
fn looks_like_mbus_raw(kind: &str, bytes: &[u8], note: u32) -> bool {
    let raw = RawFrame::from_kept(bytes, Check::from_note(note), 1);
    match (kind, raw.shape) {
        ("short", Shape::Fixed) => match (raw.user.first(), raw.user.get(1)) {
            (Some(c), Some(_)) => SHORT_C_FIELDS.contains(c),
            _ => false,
        },
        ("control" | "long", Shape::Variable) => match (raw.user.first(), raw.user.get(2)) {
            (Some(c), Some(&ci)) => LONG_C_FIELDS.contains(c) && ci_name(ci).is_some(),
            _ => false,
        },
        _ => false,
    }
}

/// The byte a field's value starts with ("0x53 …"), as the decoders here write them.
fn field_byte(fields: &[Field], name: &str) -> Option<u8> {
    let field = fields.iter().find(|f| f.name == name)?;
    let digits = field.value.strip_prefix("0x")?.get(..2)?;
    u8::from_str_radix(digits, 16).ok()
}

/// Name and flags of an M-Bus C-field, e.g. "REQ_UD2 (FCB=1)". `None` if libmbus does not know it.
pub(crate) fn c_field_name(c: u8) -> Option<String> {
    let fcb = (c >> 5) & 1;
    let name = match c {
        0x40 => "SND_NKE (link reset; the slave answers E5)".to_string(),
        0x53 | 0x73 => format!("SND_UD (send user data, FCB={fcb})"),
        0x5B | 0x7B => format!("REQ_UD2 (request class 2 data, FCB={fcb})"),
        0x5A | 0x7A => format!("REQ_UD1 (request class 1 / alarm data, FCB={fcb})"),
        0x08 | 0x18 | 0x28 | 0x38 => format!(
            "RSP_UD (response, ACD={}, DFC={})",
            (c >> 5) & 1,
            (c >> 4) & 1
        ),
        _ => return None,
    };
    Some(name)
}

/// Short name of the function alone, for summaries; an unknown C-field is named by its value.
fn push_c_function(summary: &mut String, c: u8) {
    summary.push_str(match c {
        0x40 => "SND_NKE",
        0x53 | 0x73 => "SND_UD",
        0x5B | 0x7B => "REQ_UD2",
        0x5A | 0x7A => "REQ_UD1",
        0x08 | 0x18 | 0x28 | 0x38 => "RSP_UD",
        _ => {
            summary.push_str("unknown C-field 0x");
            summary.push_str(&hex::spaced_at_most(&[c], 1));
            return;
        }
    });
}

/// Meaning of an M-Bus CI-field (EN 13757-2; 78/7A are listed as M-Bus CIs in EN 13757-3
/// without a meaning, so theirs are phrased as likely).
pub(crate) fn ci_name(ci: u8) -> Option<&'static str> {
    Some(match ci {
        0x50 => "application reset",
        0x51 => "data send",
        0x55 => "data send (MSB first)",
        0x52 => "select slave by secondary address",
        0x56 => "select slave by secondary address (MSB first)",
        0x54 => "synchronise action",
        0xB8 => "set baud rate 300",
        0xB9 => "set baud rate 600",
        0xBA => "set baud rate 1200",
        0xBB => "set baud rate 2400",
        0xBC => "set baud rate 4800",
        0xBD => "set baud rate 9600",
        0xBE => "set baud rate 19200",
        0xBF => "set baud rate 38400",
        0x70 => "application error",
        0x71 => "alarm",
        0x72 => "variable data response",
        0x76 => "variable data response (MSB first)",
        0x73 => "fixed data response",
        0x77 => "fixed data response (MSB first)",
        0x78 => "likely a variable data response without header",
        0x7A => "likely a response with short header",
        _ => return None,
    })
}

fn address_name(a: u8) -> String {
    match a {
        0 => "0 (likely unconfigured)".to_string(),
        1..=250 => format!("{a} (primary address)"),
        0xFD => "0xFD (network layer: secondary addressing)".to_string(),
        0xFE => "0xFE (broadcast, slaves reply)".to_string(),
        0xFF => "0xFF (broadcast, no reply)".to_string(),
        _ => format!("{a} (reserved)"),
    }
}

/// "A=5", or "A=0xFE" for the special addresses.
fn push_address_short(out: &mut String, a: u8) {
    match a {
        0xFD..=0xFF => {
            out.push_str("A=0x");
            hex::push_pair(out, a);
        }
        _ => {
            out.push_str("A=");
            push_decimal(out, usize::from(a));
        }
    }
}

/// A number in decimal (as `{}`).
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// BCD digits of a little-endian identification number; an `F` nibble is a wildcard.
fn bcd_le(bytes: &[u8]) -> String {
    let mut digits = String::with_capacity(bytes.len() * 2);
    push_bcd_le(&mut digits, bytes);
    digits
}

fn push_bcd_le(digits: &mut String, bytes: &[u8]) {
    for &b in bytes.iter().rev() {
        for nibble in [b >> 4, b & 0x0F] {
            digits.push(match nibble {
                0..=9 => char::from(b'0' + nibble),
                0x0F => '*',
                _ => '?',
            });
        }
    }
}

/// Three-letter manufacturer code packed 5 bits per letter (EN 13757-3, as libmbus decodes it).
fn manufacturer_code(low: u8, high: u8) -> String {
    let packed = u16::from(low) | (u16::from(high) << 8);
    [10u16, 5, 0]
        .iter()
        .map(|shift| {
            let letter = ((packed >> shift) & 0x1F) as u8;
            if (1..=26).contains(&letter) {
                char::from(b'@' + letter)
            } else {
                '?'
            }
        })
        .collect()
}

/// The M-Bus frame `recognise` found at stream offset `at`: what it is and how it checked out
/// now, its words when first asked for (see [`describe`]).
fn build_frame(at: StreamOffset, raw: &RawFrame<'_>) -> Frame {
    let (kind, status) = kind_and_status(raw);
    Frame::deferred(
        Protocol::Mbus,
        span(at, 0, raw.bytes.len()),
        kind,
        status,
        describe,
        raw.bytes,
        raw.check.to_note(),
    )
}

/// Kind and status: the framing check, then whether C is a function M-Bus has in this format.
fn kind_and_status(raw: &RawFrame<'_>) -> (&'static str, FrameStatus) {
    let status = raw.check.status();
    let c = raw.user.first().copied();
    match raw.shape {
        Shape::Single => ("ack", status),
        Shape::Fixed => {
            let status = match (c, raw.user.get(1)) {
                (Some(c), Some(_)) if status.is_ok() && !SHORT_C_FIELDS.contains(&c) => {
                    FrameStatus::Malformed(format!(
                        "C-field 0x{c:02X} is not an M-Bus short-frame function (\"Unknown Control Code\"; allowed: 40, 5A, 7A, 5B, 7B)"
                    ))
                }
                _ => status,
            };
            ("short", status)
        }
        Shape::Variable => {
            let length = raw.bytes.get(1).copied().unwrap_or_default();
            let kind = if length == MIN_LENGTH {
                "control"
            } else {
                "long"
            };
            let status = match c {
                Some(c) if status.is_ok() && !LONG_C_FIELDS.contains(&c) => {
                    FrameStatus::Malformed(format!(
                        "C-field 0x{c:02X} is not an M-Bus control/long-frame function (\"Unknown Control Code\"; allowed: 53, 73, 08, 18, 28, 38)"
                    ))
                }
                _ => status,
            };
            (kind, status)
        }
    }
}

/// Summary and fields of an M-Bus frame (`bytes`: its span, `note`: its FT1.2 check). With
/// `Detail::Summary` no field is built: a printed record reads the summary of every frame.
fn describe(frame: &Frame, bytes: &[u8], note: u32, detail: Detail) -> Description {
    let at = frame.span.start;
    let raw = RawFrame::from_kept(bytes, Check::from_note(note), 1);
    let full = detail == Detail::Full;
    let (mut summary, inner) = match raw.shape {
        Shape::Single => ("ACK (E5)".to_string(), Vec::new()),
        Shape::Fixed => short_frame(at, &raw, full),
        Shape::Variable => long_frame(at, &raw, full),
    };
    push_status(&mut summary, &frame.status);
    Description {
        summary,
        fields: if full {
            ft12::framing_fields(at, &raw, inner)
        } else {
            Vec::new()
        },
    }
}

fn short_frame(at: StreamOffset, raw: &RawFrame<'_>, full: bool) -> (String, Vec<Field>) {
    let mut fields = Vec::new();
    let (Some(&c), Some(&a)) = (raw.user.first(), raw.user.get(1)) else {
        return ("short frame".to_string(), fields);
    };
    if full {
        let c_text = match c_field_name(c).filter(|_| SHORT_C_FIELDS.contains(&c)) {
            Some(name) => format!("0x{c:02X} {name}"),
            None => format!("0x{c:02X} not an M-Bus short-frame C-field"),
        };
        fields.push(c_field(at, raw.user_start, c, c_text));
        fields.push(Field::new(
            "A",
            address_name(a),
            span(at, raw.user_start + 1, 1),
        ));
    }
    let mut summary = String::with_capacity(32);
    push_c_function(&mut summary, c);
    summary.push(' ');
    push_address_short(&mut summary, a);
    push_fcb_suffix(&mut summary, c);
    (summary, fields)
}

/// " (FCB=n)" for the functions that carry a frame count bit.
fn push_fcb_suffix(summary: &mut String, c: u8) {
    if matches!(c, 0x5A | 0x7A | 0x5B | 0x7B | 0x53 | 0x73) {
        summary.push_str(if (c >> 5) & 1 == 1 {
            " (FCB=1)"
        } else {
            " (FCB=0)"
        });
    }
}

/// The C-field with its bits folded into one value (one field instead of five: frames are
/// built for every match, so their field trees are kept lean).
fn c_field(at: StreamOffset, index: usize, c: u8, mut text: String) -> Field {
    let bit = |shift: u8| if (c >> shift) & 1 == 1 { '1' } else { '0' };
    if c & 0x40 != 0 {
        text.push_str(" · DIR master → slave, FCV=");
        text.push(bit(4));
    } else {
        text.push_str(" · DIR slave → master");
    }
    text.push_str(", function ");
    text.push_str(&(c & 0x0F).to_string());
    Field::new("C", text, span(at, index, 1))
}

fn long_frame(at: StreamOffset, raw: &RawFrame<'_>, full: bool) -> (String, Vec<Field>) {
    let length = raw.bytes.get(1).copied().unwrap_or_default();
    let kind = if length == MIN_LENGTH {
        "control"
    } else {
        "long"
    };
    let mut fields = Vec::new();
    let Some(&c) = raw.user.first() else {
        return (format!("{kind} frame, L={length}"), fields);
    };
    if full {
        let c_text = match c_field_name(c).filter(|_| LONG_C_FIELDS.contains(&c)) {
            Some(name) => format!("0x{c:02X} {name}"),
            None => format!("0x{c:02X} not an M-Bus long-frame C-field"),
        };
        fields.push(c_field(at, raw.user_start, c, c_text));
    }
    // Written in place (no `format!` pieces): the summary of every frame is printed.
    let mut summary = String::with_capacity(96);
    push_c_function(&mut summary, c);
    if let Some(&a) = raw.user.get(1) {
        if full {
            fields.push(Field::new(
                "A",
                address_name(a),
                span(at, raw.user_start + 1, 1),
            ));
        }
        summary.push(' ');
        push_address_short(&mut summary, a);
    }
    if let Some(&ci) = raw.user.get(2) {
        if full {
            let meaning = ci_name(ci).unwrap_or("not a CI in our M-Bus table");
            fields.push(Field::new(
                "CI",
                format!("0x{ci:02X} {meaning}"),
                span(at, raw.user_start + 2, 1),
            ));
        }
        summary.push_str(" CI=0x");
        hex::push_pair(&mut summary, ci);
        if let Some(name) = ci_name(ci) {
            summary.push(' ');
            summary.push_str(name);
        }
    }
    let data_start = raw.user_start + 3;
    let data = raw.user.get(3..).unwrap_or_default();
    if !data.is_empty() {
        let ci = raw.user.get(2).copied().unwrap_or_default();
        if full {
            let (children, note) = data_children(at, data_start, ci, data);
            if let Some(note) = note {
                summary.push_str(", ");
                summary.push_str(&note);
            }
            fields.push(
                Field::new(
                    "data",
                    hex::spaced_at_most(data, 64),
                    span(at, data_start, data.len()),
                )
                .with_children(children),
            );
        } else if let Some(id) = id_of(ci, data) {
            summary.push_str(", ID ");
            push_bcd_le(&mut summary, id);
        }
        summary.push_str(", ");
        push_decimal(&mut summary, data.len());
        summary.push_str(" data bytes");
    }
    push_fcb_suffix(&mut summary, c);
    (summary, fields)
}

/// The identification number bytes the summary names ("ID 12345678"): those of a
/// secondary-address selection (CI 52/56) or of a variable data response's header (CI 72/76,
/// at least 12 bytes). [`data_children`] writes the same note.
fn id_of(ci: u8, data: &[u8]) -> Option<&[u8]> {
    match ci {
        0x52 | 0x56 => data.get(..4),
        0x72 | 0x76 if data.len() >= 12 => data.get(..4),
        _ => None,
    }
}

/// Sub-fields of the data for CIs whose layout the reference shows: the secondary-address
/// selection (CI 52/56) and the 12-byte header of a variable data response (CI 72/76).
fn data_children(
    at: StreamOffset,
    start: usize,
    ci: u8,
    data: &[u8],
) -> (Vec<Field>, Option<String>) {
    let mut children = Vec::new();
    let id_fields = |children: &mut Vec<Field>| -> Option<String> {
        let id = data.get(..4)?;
        let digits = bcd_le(id);
        children.push(Field::new(
            "ID",
            format!("{digits} (BCD, LSB first; * = wildcard)"),
            span(at, start, 4),
        ));
        if let (Some(&low), Some(&high)) = (data.get(4), data.get(5)) {
            let value = if low == 0xFF && high == 0xFF {
                "FF FF (wildcard)".to_string()
            } else {
                format!(
                    "0x{:04X} ({}, likely)",
                    u16::from(low) | (u16::from(high) << 8),
                    manufacturer_code(low, high)
                )
            };
            children.push(Field::new("manufacturer", value, span(at, start + 4, 2)));
        }
        if let Some(&version) = data.get(6) {
            children.push(Field::new(
                "version",
                format!("0x{version:02X}"),
                span(at, start + 6, 1),
            ));
        }
        if let Some(&medium) = data.get(7) {
            children.push(Field::new(
                "medium",
                format!("0x{medium:02X}"),
                span(at, start + 7, 1),
            ));
        }
        Some(format!("ID {digits}"))
    };
    let note = match ci {
        0x52 | 0x56 => id_fields(&mut children),
        0x72 | 0x76 if data.len() >= 12 => {
            let note = id_fields(&mut children);
            if let Some(&access) = data.get(8) {
                children.push(Field::new(
                    "access number",
                    format!("{access}"),
                    span(at, start + 8, 1),
                ));
            }
            if let Some(&status) = data.get(9) {
                children.push(Field::new(
                    "status",
                    format!("0x{status:02X}"),
                    span(at, start + 9, 1),
                ));
            }
            if let Some(signature) = data.get(10..12) {
                children.push(Field::new(
                    "signature",
                    hex::spaced_at_most(signature, 2),
                    span(at, start + 10, 2),
                ));
            }
            if let Some(records) = data.get(12..).filter(|r| !r.is_empty()) {
                children.push(Field::new(
                    "records",
                    hex::spaced_at_most(records, 64),
                    span(at, start + 12, records.len()),
                ));
            }
            note
        }
        _ => None,
    };
    (children, note)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{field, h, run_whole};
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        run_whole(&mut MbusFramer::new(), bytes)
    }

    /// EN 13757-2 worked frames (checksums verified there).
    #[test]
    fn worked_frames_decode() {
        let cases: &[(&str, &str, &str)] = &[
            ("E5", "ack", "ACK (E5)"),
            ("10 40 01 41 16", "short", "SND_NKE A=1"),
            ("10 40 FE 3E 16", "short", "SND_NKE A=0xFE"),
            ("10 40 FF 3F 16", "short", "SND_NKE A=0xFF"),
            ("10 5B 01 5C 16", "short", "REQ_UD2 A=1 (FCB=0)"),
            ("10 7B 01 7C 16", "short", "REQ_UD2 A=1 (FCB=1)"),
            ("10 5B FE 59 16", "short", "REQ_UD2 A=0xFE (FCB=0)"),
            ("10 5B FD 58 16", "short", "REQ_UD2 A=0xFD (FCB=0)"),
            (
                "68 03 03 68 53 01 50 A4 16",
                "control",
                "SND_UD A=1 CI=0x50 application reset (FCB=0)",
            ),
            (
                "68 03 03 68 53 01 BB 0F 16",
                "control",
                "SND_UD A=1 CI=0xBB set baud rate 2400 (FCB=0)",
            ),
            (
                "68 0B 0B 68 53 FD 52 78 56 34 12 FF FF FF FF B2 16",
                "long",
                "SND_UD A=0xFD CI=0x52 select slave by secondary address, ID 12345678, 8 data bytes (FCB=0)",
            ),
            (
                "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16",
                "long",
                "RSP_UD A=2 CI=0x72 variable data response, ID 12345678, 18 data bytes",
            ),
            (
                "68 13 13 68 08 05 73 78 56 34 12 0A 00 E9 7E 01 00 00 00 35 01 00 00 3C 16",
                "long",
                "RSP_UD A=5 CI=0x73 fixed data response, 16 data bytes",
            ),
        ];
        for (bytes, kind, summary) in cases {
            let bytes = h(bytes);
            let frames = run(&bytes);
            assert_eq!(frames.len(), 1, "{bytes:02X?}: {frames:#?}");
            let frame = &frames[0];
            assert_eq!(frame.status, FrameStatus::Ok, "{summary}");
            assert_eq!(frame.kind, *kind);
            assert_eq!(frame.summary(), *summary);
            assert_eq!(frame.span, 0..bytes.len() as u64);
        }
    }

    #[test]
    fn control_frame_from_brief_decodes() {
        // 68 03 03 68 53 FE 50 A1 16: application reset, broadcast with reply (CS 53+FE+50 = A1).
        let frames = run(&h("68 03 03 68 53 FE 50 A1 16"));
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert_eq!(frames[0].kind, "control");
        assert_eq!(field(&frames[0], "CI").value, "0x50 application reset");
        assert_eq!(
            field(&frames[0], "A").value,
            "0xFE (broadcast, slaves reply)"
        );
        assert_eq!(field(&frames[0], "A").span, 5..6);
    }

    #[test]
    fn field_spans_and_c_bits() {
        let frames = run(&h(
            "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16",
        ));
        let frame = &frames[0];
        let c = field(frame, "C");
        assert_eq!(c.span, 4..5);
        assert!(c.value.starts_with("0x08 RSP_UD"));
        assert!(
            c.value
                .ends_with("ACD=0, DFC=0) · DIR slave → master, function 8"),
            "{}",
            c.value
        );
        let data = field(frame, "data");
        assert_eq!(data.span, 7..25);
        assert_eq!(data.children[0].name, "ID");
        assert_eq!(data.children[0].span, 7..11);
        assert_eq!(field(frame, "CS").span, 25..26);
        assert_eq!(field(frame, "stop").span, 26..27);
    }

    #[test]
    fn bad_checksum_reports_expected_and_found() {
        let frames = run(&h("68 03 03 68 53 01 50 A5 16"));
        assert_eq!(
            frames[0].status,
            FrameStatus::BadChecksum {
                expected: 0xA4,
                found: 0xA5
            }
        );
        let frames = run(&h("10 5B 01 5D 16"));
        assert_eq!(
            frames[0].status,
            FrameStatus::BadChecksum {
                expected: 0x5C,
                found: 0x5D
            }
        );
        assert_eq!(frames[0].kind, "short");
    }

    #[test]
    fn length_mismatch_is_malformed_and_does_not_hide_the_next_frame() {
        // L=3, L'=4, then a real control frame starting at the second 68.
        let mut bytes = h("68 03 04");
        bytes.extend(h("68 03 03 68 53 01 50 A4 16"));
        let frames = run(&bytes);
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(why) if why.contains("L = 3, L' = 4"))
        );
        assert_eq!(frames[1].status, FrameStatus::Ok);
        assert_eq!(frames[1].span, 3..12);
    }

    #[test]
    fn missing_stop_is_malformed() {
        let frames = run(&h("68 03 03 68 53 01 50 A4 17"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(why) if why.contains("missing end byte"))
        );
        assert_eq!(frames[0].span, 0..8);
    }

    #[test]
    fn short_length_and_unknown_c_are_malformed() {
        let frames = run(&h("68 02 02 68 53 01 54 16"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(why) if why.contains("below the minimum 3"))
        );
        // IEC 101 "request status of link" is not an M-Bus short frame.
        let frames = run(&h("10 49 01 4A 16"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(why) if why.contains("Unknown Control Code"))
        );
    }

    #[test]
    fn unknown_c_field_is_named_by_its_value() {
        let frames = run(&h("10 49 01 4A 16"));
        assert!(
            frames[0].summary().starts_with("unknown C-field 0x49"),
            "{frames:#?}"
        );
    }

    #[test]
    fn truncated_at_end_of_stream() {
        let frames = run(&h("68 15 15 68 08 02 72 78 56"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        assert_eq!(frames[0].span, 0..9);
        // Nothing is reported before the flush: the frame may still complete.
        let mut framer = MbusFramer::new();
        let mut out = Vec::new();
        framer.feed(0, &h("68 15 15 68 08"), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn lone_68_in_garbage_does_not_swallow_a_frame() {
        let mut bytes = h("00 68 22 31 9A");
        bytes.extend(h("10 5B 01 5C 16"));
        bytes.extend(h("77 68"));
        bytes.extend(h("68 03 03 68 53 01 50 A4 16"));
        let frames = run(&bytes);
        let ok: Vec<_> = frames
            .iter()
            .filter(|f| f.status.is_ok())
            .map(|f| f.span.clone())
            .collect();
        assert_eq!(ok, vec![5..10, 12..21]);
    }

    #[test]
    fn summary_numbers_written_by_hand_match_format() {
        for n in [0usize, 7, 10, 99, 100, 255, 4096, usize::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for b in 0..=255u8 {
            let (mut hex, mut short) = (String::new(), String::new());
            hex::push_pair(&mut hex, b);
            push_address_short(&mut short, b);
            assert_eq!(hex, format!("{b:02X}"));
            let want = match b {
                0xFD..=0xFF => format!("A=0x{b:02X}"),
                _ => format!("A={b}"),
            };
            assert_eq!(short, want);
        }
    }

    #[test]
    fn looks_like_mbus_heuristic() {
        let mbus = |s: &str| run(&h(s)).remove(0);
        assert!(looks_like_mbus(&mbus("68 03 03 68 53 01 50 A4 16")));
        assert!(looks_like_mbus(&mbus(
            "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16"
        )));
        assert!(looks_like_mbus(&mbus("10 5B 01 5C 16")));
        // IEC 101 general interrogation: C=73 is allowed, but 64 is no M-Bus CI.
        assert!(!looks_like_mbus(&mbus(
            "68 09 09 68 73 01 64 01 06 01 00 00 14 F4 16"
        )));
        assert!(!looks_like_mbus(&mbus("10 49 01 4A 16")));
    }

    #[test]
    fn parse_is_the_first_frame() {
        let frame = parse(40, &h("10 40 01 41 16 E5")).unwrap();
        assert_eq!(frame.span, 40..45);
        assert_eq!(frame.summary(), "SND_NKE A=1");
        assert!(parse(0, &h("00 10")).is_none());
    }

    fn feed_split(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
        let mut framer = MbusFramer::new();
        let mut out = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            framer.feed(start as u64, &bytes[start..cut], &mut out);
            start = cut;
        }
        framer.feed(start as u64, &bytes[start..], &mut out);
        framer.flush(&mut out);
        out
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        /// Deciding from the kept bytes answers as the field tree does, for every frame.
        #[test]
        fn raw_heuristic_equals_field_heuristic(bytes in prop::collection::vec(any::<u8>(), 0..700), c in prop::sample::select(vec![0x08u8, 0x53, 0x73, 0x40, 0x5B, 0x49, 0x18]), ci in any::<u8>()) {
            // Random bytes, then a long, a control and a short frame with chosen C and CI.
            let mut stream = bytes;
            let long = [0x68, 0x05, 0x05, 0x68, c, 0x01, ci, 0x11, 0x22];
            let sum = long[4..].iter().fold(0u8, |a, &b| a.wrapping_add(b));
            stream.extend_from_slice(&long);
            stream.extend_from_slice(&[sum, 0x16]);
            let sum = c.wrapping_add(0x01).wrapping_add(ci);
            stream.extend_from_slice(&[0x68, 0x03, 0x03, 0x68, c, 0x01, ci, sum, 0x16]);
            stream.extend_from_slice(&[0x10, c, 0x01, c.wrapping_add(1), 0x16, 0x68, 0x04]);
            for frame in run(&stream) {
                let once = frame.summary_once().into_owned();
                let raw = looks_like_mbus(&frame);
                prop_assert!(frame.built_description().is_none(), "nothing described yet");
                let by_fields = looks_like_mbus_by_fields(&frame) || frame.kind == "ack";
                prop_assert_eq!(raw, by_fields, "{:?}", frame);
                prop_assert_eq!(once, frame.summary());
            }
        }

        #[test]
        fn split_feeding_equals_whole(
            prefix in prop::collection::vec(prop::sample::select(vec![0x68u8, 0x10, 0xE5, 0x16, 0x03, 0x00]), 0..30),
            garbage in prop::collection::vec(any::<u8>(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut bytes = prefix;
            bytes.extend(h("68 03 03 68 53 01 50 A4 16"));
            bytes.extend(&garbage);
            bytes.extend(h("10 5B 01 5C 16"));
            prop_assert_eq!(feed_split(&bytes, &cuts), run(&bytes));
        }
    }
}
