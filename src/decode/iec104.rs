//! IEC 60870-5-104 APCI over TCP: `68 L CF1..CF4 [ASDU]` framing, I/S/U formats with their
//! sequence numbers and U functions, and a streaming framer that resyncs after garbage.
//!
//! Facts: IEC 60870-5-104 (lib60870 `cs104_connection.c`, Wireshark `packet-iec104.c`:
//! `APCI_START 0x68`, `APDU_MAX_LEN 253`). The standard 104 ASDU has a 2-octet COT, a 2-octet
//! common address and 3-octet object addresses (lib60870 defaults, IEC 60870-5-104 table).
//!
//! 104 has no checksum, so a 0x68 in garbage could pass for an I-frame and swallow up to 255
//! bytes. An I-frame is therefore accepted only when its ASDU length fits its type id and
//! object count (element sizes from Wireshark), or, for types whose size we cannot check,
//! when the next byte starts another APDU (0x68) or the stream ends right after it.

use super::frame::{
    Description, Detail, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset,
};
use super::iec101::{asdu_fields, cause_name, element_size, type_name};
use super::stream::{
    Lanes, ParseStep, Streamer, WindowParser, find_starts, framer_from_streamer, lanes_between,
    lanes_eq, lanes_masked_eq, span,
};
use crate::hex;
use wide::u8x16;

/// APCI start byte.
const START: u8 = 0x68;
/// Largest L (`APDU_MAX_LEN`).
const MAX_LENGTH: u8 = 253;
/// Standard 104 ASDU header: type, VSQ, COT (2), common address (2).
const ASDU_HEADER: usize = 6;
/// Standard 104 information object address size.
const IOA_SIZE: usize = 3;

/// Streaming IEC 104 framer: kinds "i", "s", "u". Pending input ≤ 256 bytes.
pub struct Iec104Framer {
    streamer: Streamer<Iec104Parser>,
}

impl Iec104Framer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        Iec104Framer {
            streamer: Streamer::new(Iec104Parser::default()),
        }
    }
}

impl Default for Iec104Framer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(Iec104Framer);

/// Where the last frame accepted on weak evidence ends: 104 has no checksum, so such a frame
/// moves scanning on by one byte only (a false start must not swallow a real APDU), and
/// without this every byte of a run of 68s would start another overlapping I-frame.
#[derive(Default)]
struct Iec104Parser {
    weak_until: StreamOffset,
}

impl WindowParser for Iec104Parser {
    const PROTOCOL: Protocol = Protocol::Iec104;
    // The longest APDU (255 bytes) plus one byte of look-ahead.
    const MAX_WINDOW: usize = 2 + MAX_LENGTH as usize + 1;

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        find_starts(bytes, 5, start_hits, is_start)
    }

    /// U and S frames are six bytes: where the pending window holds no 68 that is (or may
    /// still become) one, every candidate in it can only become an I-frame, which has no
    /// check. The window is undecided from its first byte on, so every 68 in it counts.
    fn pending_max_rank(&self, window: &[u8]) -> crate::decode::evidence::Rank {
        use crate::decode::evidence::{IEC104_I_BITS, Rank, Strength, max_rank};
        let u_or_s = memchr::memchr_iter(START, window).any(|p| match window.get(p..) {
            Some([START, 4, a, b, c, d, ..]) => {
                matches!(format_of([*a, *b, *c, *d]), Some(Format::U | Format::S))
            }
            Some(rest) => rest.len() < 6,
            None => false,
        });
        if u_or_s {
            max_rank(Protocol::Iec104)
        } else {
            Rank::of(Strength::Structural, IEC104_I_BITS)
        }
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        match decide(at, window, at_end) {
            Decision::Need => ParseStep::Need,
            Decision::Skip => ParseStep::Skip(1),
            // A weak candidate inside the previous weak one is not reported: one of the two
            // is a false start, and the first already shows those bytes. A frame that checks
            // out is always reported.
            Decision::Frame(_, 1) if at < self.weak_until => ParseStep::Skip(1),
            Decision::Frame(frame, consumed) => {
                if consumed == 1 {
                    self.weak_until = frame.span.end;
                }
                ParseStep::Frame { frame, consumed }
            }
        }
    }
}

/// [`is_start`] for sixteen positions at a time (see [`find_starts`]).
fn start_hits(lanes: &Lanes<'_>) -> u8x16 {
    let (cf1, cf2, cf3, cf4) = (lanes.at(2), lanes.at(3), lanes.at(4), lanes.at(5));
    let zero = |lanes: u8x16| lanes_eq(lanes, 0);
    let even = |lanes: u8x16| lanes_masked_eq(lanes, 0x01, 0);
    let u = lanes_masked_eq(cf1, 0x03, 0x03) & zero(cf2) & zero(cf3) & zero(cf4);
    let s = lanes_eq(cf1, 0x01) & zero(cf2) & even(cf3);
    // An I-frame needs an ASDU header and one object address: L from 13 to 253.
    let i = even(cf1) & even(cf3) & lanes_between(lanes.at(1), 12, 254);
    lanes_eq(lanes.at(0), START) & (u | s | i)
}

/// Can an APDU start at `rest[0]`? A 68 whose four control octets have an S or U format, or
/// an I format with an L that leaves room for an ASDU (or have not all arrived): anything
/// else is a position `decide` skips.
fn is_start(rest: &[u8]) -> bool {
    match rest {
        [START, length, cf1, cf2, cf3, cf4, ..] => match format_of([*cf1, *cf2, *cf3, *cf4]) {
            Some(Format::I) => (13..=MAX_LENGTH).contains(length),
            Some(_) => true,
            None => false,
        },
        [START, ..] => true,
        _ => false,
    }
}

enum Decision {
    Need,
    Skip,
    Frame(Frame, usize),
}

/// Decode the APDU at the start of `bytes` (first byte at stream offset `base`), treating the
/// end of `bytes` as the end of the stream. `None` if no APDU starts there.
pub fn parse(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    match decide(base, bytes, true) {
        Decision::Frame(frame, _) => Some(frame),
        _ => None,
    }
}

/// U-format function of a CF1 value (IEC 60870-5-104 table).
pub(crate) fn u_function(cf1: u8) -> Option<&'static str> {
    Some(match cf1 {
        0x07 => "STARTDT act",
        0x0B => "STARTDT con",
        0x13 => "STOPDT act",
        0x23 => "STOPDT con",
        0x43 => "TESTFR act",
        0x83 => "TESTFR con",
        _ => return None,
    })
}

/// The control-field format the four control octets have, if they look like APCI at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    I,
    S,
    U,
}

fn format_of(cf: [u8; 4]) -> Option<Format> {
    let [cf1, cf2, cf3, cf4] = cf;
    if cf1 & 0x01 == 0 {
        // N(R) is sent shifted left by one: its low bit is always 0.
        return (cf3 & 0x01 == 0).then_some(Format::I);
    }
    if cf1 == 0x01 {
        return (cf2 == 0 && cf3 & 0x01 == 0).then_some(Format::S);
    }
    (cf1 & 0x03 == 0x03 && cf2 == 0 && cf3 == 0 && cf4 == 0).then_some(Format::U)
}

fn decide(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    if window.first() != Some(&START) {
        return Decision::Skip;
    }
    let Some(&length) = window.get(1) else {
        return if at_end {
            Decision::Skip
        } else {
            Decision::Need
        };
    };
    let Some(&[cf1, cf2, cf3, cf4]) = window.get(2..6) else {
        if at_end {
            return truncated_short(at, window, length);
        }
        return Decision::Need;
    };
    let cf = [cf1, cf2, cf3, cf4];
    let Some(format) = format_of(cf) else {
        return Decision::Skip;
    };
    match format {
        Format::U | Format::S => {
            let frame = short_frame(at, window, length, format, cf);
            // A malformed one moves on by one byte only: 104 has no checksum to be sure with.
            let consumed = if frame.status.is_ok() { 6 } else { 1 };
            Decision::Frame(frame, consumed)
        }
        Format::I => i_frame(at, window, length, cf, at_end),
    }
}

/// At the end of the stream with fewer than six bytes: report a cut-short U or S frame when
/// what arrived is consistent with one (L = 4 and a U/S first control octet).
fn truncated_short(at: StreamOffset, window: &[u8], length: u8) -> Decision {
    let Some(&cf1) = window.get(2) else {
        return Decision::Skip;
    };
    let rest_zero = window.get(3..).unwrap_or_default().iter().all(|&b| b == 0);
    let kind = if u_function(cf1).is_some() && rest_zero {
        "u"
    } else if cf1 == 0x01 && window.get(3).is_none_or(|&b| b == 0) {
        "s"
    } else {
        return Decision::Skip;
    };
    if length != 4 {
        return Decision::Skip;
    }
    let frame = Frame::new(
        Protocol::Iec104,
        span(at, 0, window.len()),
        kind,
        FrameStatus::Truncated,
        format!("{}-frame — truncated", kind.to_uppercase()),
        apci_fields(at, window, length),
    );
    Decision::Frame(frame, window.len())
}

fn apci_fields(at: StreamOffset, window: &[u8], length: u8) -> Vec<Field> {
    let mut fields = vec![Field::new("start", "0x68 APCI start", span(at, 0, 1))];
    if window.len() > 1 {
        fields.push(Field::new(
            "L",
            format!("{length} bytes after L (control field + ASDU; 4..=253)"),
            span(at, 1, 1),
        ));
    }
    fields
}

/// A U or S frame (`window` holds its six bytes): what it is and how it checked out now, its
/// words when first asked for (see [`describe_short`]).
fn short_frame(at: StreamOffset, window: &[u8], length: u8, format: Format, cf: [u8; 4]) -> Frame {
    let kind = if format == Format::U { "u" } else { "s" };
    let status = if length != 4 {
        FrameStatus::Malformed(format!(
            "L = {length}, but a {}-frame has L = 4",
            kind.to_uppercase()
        ))
    } else if format == Format::U && u_function(cf[0]).is_none() {
        FrameStatus::Malformed(format!(
            "U-format control octet 0x{:02X} is not one of STARTDT/STOPDT/TESTFR act/con (07, 0B, 13, 23, 43, 83)",
            cf[0]
        ))
    } else {
        FrameStatus::Ok
    };
    Frame::deferred(
        Protocol::Iec104,
        span(at, 0, 6),
        kind,
        status,
        describe_short,
        window.get(..6).unwrap_or_default(),
        0,
    )
}

/// Summary and fields of a U or S frame (`bytes`: its six bytes).
fn describe_short(frame: &Frame, bytes: &[u8], _note: u32, _detail: Detail) -> Description {
    let at = frame.span.start;
    let length = bytes.get(1).copied().unwrap_or_default();
    let cf1 = bytes.get(2).copied().unwrap_or_default();
    let cf3 = bytes.get(4).copied().unwrap_or_default();
    let cf4 = bytes.get(5).copied().unwrap_or_default();
    let mut fields = apci_fields(at, bytes, length);
    let control_span = span(at, 2, 4);
    let (mut summary, control) = if frame.kind == "u" {
        match u_function(cf1) {
            Some(name) => (
                format!("U-frame {name}"),
                Field::new("control", format!("U-format, {name}"), control_span),
            ),
            None => (
                format!("U-frame with unknown function 0x{cf1:02X}"),
                Field::new(
                    "control",
                    format!("U-format, unknown function 0x{cf1:02X}"),
                    control_span,
                ),
            ),
        }
    } else {
        let receive = (u16::from(cf3) | (u16::from(cf4) << 8)) >> 1;
        (
            format!("S-frame N(R)={receive}"),
            Field::new("control", format!("S-format, N(R)={receive}"), control_span).with_children(
                vec![Field::new("N(R)", format!("{receive}"), span(at, 4, 2))],
            ),
        )
    };
    fields.push(control);
    // A wrong L is named in the summary; an unknown U function already is.
    if length != 4
        && let FrameStatus::Malformed(why) = &frame.status
    {
        summary.push_str(" — ");
        summary.push_str(why);
    }
    Description { summary, fields }
}

/// The ASDU length a known type needs for `count` objects, standard 104 sizes.
fn expected_asdu_len(type_id: u8, vsq: u8) -> Option<usize> {
    let size = element_size(type_id)?;
    let count = usize::from(vsq & 0x7F);
    if count == 0 {
        return None;
    }
    Some(if vsq & 0x80 != 0 {
        ASDU_HEADER + IOA_SIZE + count * size
    } else {
        ASDU_HEADER + count * (IOA_SIZE + size)
    })
}

fn i_frame(at: StreamOffset, window: &[u8], length: u8, cf: [u8; 4], at_end: bool) -> Decision {
    let asdu_len = usize::from(length).saturating_sub(4);
    // Shorter than a header plus one object address, or longer than allowed: not an I-frame
    // we can tell from garbage.
    if !(ASDU_HEADER + IOA_SIZE..=usize::from(MAX_LENGTH) - 4).contains(&asdu_len) {
        return Decision::Skip;
    }
    let total = usize::from(length) + 2;
    let Some(bytes) = window.get(..total) else {
        if at_end {
            return truncated_i_frame(at, window, length, cf);
        }
        return Decision::Need;
    };
    let asdu = bytes.get(6..).unwrap_or_default();
    let type_id = asdu.first().copied().unwrap_or_default();
    let vsq = asdu.get(1).copied().unwrap_or_default();
    let cause = asdu.get(2).copied().unwrap_or_default() & 0x3F;
    let structure_fits = expected_asdu_len(type_id, vsq) == Some(asdu.len());
    let known = type_name(type_id).is_some() && cause_name(cause).is_some();
    // Weak candidates need the next APDU (or the end of the stream) right behind them.
    let followed_by_apdu = match window.get(total) {
        Some(&next) => next == START,
        None if at_end => true,
        None => {
            return if known && structure_fits {
                accept(at, bytes, true, None)
            } else {
                Decision::Need
            };
        }
    };
    if known && structure_fits {
        return accept(at, bytes, true, None);
    }
    if !followed_by_apdu {
        return Decision::Skip;
    }
    let problem = match expected_asdu_len(type_id, vsq) {
        Some(expected) if type_name(type_id).is_some() => Some(format!(
            "ASDU is {} bytes, but type {type_id} with {} object(s) needs {expected} (standard sizes: COT 2, CA 2, IOA 3)",
            asdu.len(),
            vsq & 0x7F
        )),
        _ => None,
    };
    accept(at, bytes, false, problem)
}

fn sequence_numbers(cf: [u8; 4]) -> (u16, u16) {
    let [cf1, cf2, cf3, cf4] = cf;
    let send = (u16::from(cf1) | (u16::from(cf2) << 8)) >> 1;
    let receive = (u16::from(cf3) | (u16::from(cf4) << 8)) >> 1;
    (send, receive)
}

/// An I-frame (`bytes`: the whole APDU) whose ASDU layout was `checked` against its type, or
/// that was accepted on weaker evidence, with the `problem` found if any: what it is now, its
/// words when first asked for (see [`describe_i`]).
fn accept(at: StreamOffset, bytes: &[u8], checked: bool, problem: Option<String>) -> Decision {
    let status = match problem {
        Some(why) => FrameStatus::Malformed(why),
        None => FrameStatus::Ok,
    };
    // Only a frame whose ASDU checked out hides its bytes from further scanning; one accepted
    // on weaker evidence (or malformed) moves scanning on by one byte, so that a false start
    // never swallows a real APDU.
    let consumed = if status.is_ok() && checked {
        bytes.len()
    } else {
        1
    };
    let frame = Frame::deferred(
        Protocol::Iec104,
        span(at, 0, bytes.len()),
        "i",
        status,
        describe_i,
        bytes,
        u32::from(checked),
    );
    Decision::Frame(frame, consumed)
}

/// Summary and fields of an I-frame (`bytes`: the whole APDU; `note`: 1 when its ASDU layout
/// was checked).
fn describe_i(frame: &Frame, bytes: &[u8], note: u32, _detail: Detail) -> Description {
    let at = frame.span.start;
    let length = bytes.get(1).copied().unwrap_or_default();
    let cf = [2, 3, 4, 5].map(|i| bytes.get(i).copied().unwrap_or_default());
    let (send, receive) = sequence_numbers(cf);
    let mut fields = apci_fields(at, bytes, length);
    fields.push(
        Field::new(
            "control",
            format!("I-format, N(S)={send} N(R)={receive}"),
            span(at, 2, 4),
        )
        .with_children(vec![
            Field::new("N(S)", format!("{send}"), span(at, 2, 2)),
            Field::new("N(R)", format!("{receive}"), span(at, 4, 2)),
        ]),
    );
    let asdu = bytes.get(6..).unwrap_or_default();
    let (mut children, asdu_summary) = asdu_fields(
        at,
        6,
        asdu,
        "COT octet 2 = originator, CA 2 octets, then objects",
    );
    if let Some(&[ca_low, ca_high]) = asdu.get(4..6) {
        let ca_value = u16::from(ca_low) | (u16::from(ca_high) << 8);
        children.push(Field::new(
            "CA",
            format!("{ca_value} (common address)"),
            span(at, 10, 2),
        ));
    }
    let checked = if note == 1 {
        ""
    } else {
        " (ASDU layout not checked)"
    };
    fields.push(
        Field::new(
            "ASDU",
            hex::spaced_at_most(asdu, 48),
            span(at, 6, asdu.len()),
        )
        .with_children(children),
    );
    let mut summary = format!("I-frame N(S)={send} N(R)={receive}: {asdu_summary}{checked}");
    if let FrameStatus::Malformed(why) = &frame.status {
        summary.push_str(" — ");
        summary.push_str(why);
    }
    Description { summary, fields }
}

/// End of stream inside an I-frame whose header (type id and cause) looks right.
fn truncated_i_frame(at: StreamOffset, window: &[u8], length: u8, cf: [u8; 4]) -> Decision {
    let type_id = window.get(6).copied();
    let cause = window.get(8).copied();
    let plausible = type_id.is_some_and(|t| type_name(t).is_some())
        && cause.is_none_or(|c| cause_name(c & 0x3F).is_some());
    if !plausible {
        return Decision::Skip;
    }
    let (send, receive) = sequence_numbers(cf);
    let mut fields = apci_fields(at, window, length);
    fields.push(Field::new(
        "control",
        format!("I-format, N(S)={send} N(R)={receive}"),
        span(at, 2, 4),
    ));
    let frame = Frame::new(
        Protocol::Iec104,
        span(at, 0, window.len()),
        "i",
        FrameStatus::Truncated,
        format!("I-frame N(S)={send} N(R)={receive} — truncated"),
        fields,
    );
    Decision::Frame(frame, 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{h, run_whole};
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        run_whole(&mut Iec104Framer::new(), bytes)
    }

    /// IEC 60870-5-104 worked frames.
    #[test]
    fn worked_frames() {
        let cases: &[(&str, &str, &str)] = &[
            ("68 04 07 00 00 00", "u", "U-frame STARTDT act"),
            ("68 04 0B 00 00 00", "u", "U-frame STARTDT con"),
            ("68 04 13 00 00 00", "u", "U-frame STOPDT act"),
            ("68 04 23 00 00 00", "u", "U-frame STOPDT con"),
            ("68 04 43 00 00 00", "u", "U-frame TESTFR act"),
            ("68 04 83 00 00 00", "u", "U-frame TESTFR con"),
            ("68 04 01 00 02 00", "s", "S-frame N(R)=1"),
            (
                "68 0E 00 00 00 00 64 01 06 00 01 00 00 00 00 14",
                "i",
                "I-frame N(S)=0 N(R)=0: C_IC_NA_1 interrogation command, activation",
            ),
            (
                "68 0E 00 00 02 00 64 01 07 00 01 00 00 00 00 14",
                "i",
                "I-frame N(S)=0 N(R)=1: C_IC_NA_1 interrogation command, activation confirmation",
            ),
        ];
        for (bytes, kind, summary) in cases {
            let bytes = h(bytes);
            let frames = run(&bytes);
            assert_eq!(frames.len(), 1, "{frames:#?}");
            assert_eq!(frames[0].status, FrameStatus::Ok);
            assert_eq!(frames[0].kind, *kind);
            assert_eq!(frames[0].summary(), *summary);
            assert_eq!(frames[0].span, 0..bytes.len() as u64);
        }
    }

    #[test]
    fn sequence_number_fields() {
        // N(S)=5 (0A 00), N(R)=300 (58 02): M_ME_NC_1, one object: 6 + 3 + 5 = 14 ASDU bytes.
        let bytes = h("68 12 0A 00 58 02 0D 01 03 00 01 00 01 00 00 00 00 80 3F 00");
        let frames = run(&bytes);
        assert_eq!(frames[0].status, FrameStatus::Ok, "{frames:#?}");
        assert_eq!(
            frames[0].summary(),
            "I-frame N(S)=5 N(R)=300: M_ME_NC_1 measured value, short floating point, spontaneous"
        );
        let control = frames[0]
            .fields()
            .iter()
            .find(|f| f.name == "control")
            .unwrap();
        assert_eq!(control.children[1].span, 4..6);
    }

    #[test]
    fn malformed_length_and_u_code() {
        let frames = run(&h("68 05 07 00 00 00"));
        assert!(matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("L = 5")));
        let frames = run(&h("68 04 0F 00 00 00"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("not one of STARTDT"))
        );
        // I-frame, known type, wrong ASDU length, followed by another APDU.
        let mut bytes = h("68 0F 00 00 00 00 64 01 06 00 01 00 00 00 00 14 00");
        bytes.extend(h("68 04 43 00 00 00"));
        let frames = run(&bytes);
        assert!(matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("needs 10")));
        assert!(
            frames
                .iter()
                .any(|f| f.summary() == "U-frame TESTFR act" && f.span == (17..23))
        );
    }

    #[test]
    fn truncated_at_end() {
        let frames = run(&h("68 0E 00 00 00 00 64 01 06"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        let frames = run(&h("68 04 07 00"));
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        assert_eq!(frames[0].kind, "u");
    }

    #[test]
    fn false_start_in_garbage_does_not_swallow() {
        // "68 20 00 00 00 00" looks like an I-frame header with L=32 but the ASDU is garbage.
        let mut bytes = h("68 20 00 00 00 00 99 99 99");
        bytes.extend(h("68 04 07 00 00 00"));
        bytes.extend(h("AA 68"));
        bytes.extend(h("68 04 0B 00 00 00"));
        let frames = run(&bytes);
        let spans: Vec<_> = frames.iter().map(|f| (f.kind, f.span.clone())).collect();
        assert_eq!(spans, vec![("u", 9..15), ("u", 17..23)]);
    }

    /// Nothing but 68s: every offset looks like the start of an I-frame with L = 0x68 and an
    /// unknown ASDU followed by another 68. One is reported per 106 bytes, not one per byte.
    #[test]
    fn a_run_of_68s_gives_back_to_back_weak_frames_not_one_per_byte() {
        let frames = run(&[0x68; 1060]);
        let spans: Vec<_> = frames.iter().map(|f| f.span.clone()).collect();
        let want: Vec<_> = (0..10u64).map(|i| i * 106..(i + 1) * 106).collect();
        assert_eq!(spans, want);
    }

    #[test]
    fn unknown_type_accepted_only_before_next_apdu() {
        // Private type 0x88 with 4 ASDU bytes of payload: L = 4 + 10.
        let frame = h("68 0E 00 00 00 00 88 01 03 00 01 00 00 00 00 00");
        let mut bytes = frame.clone();
        bytes.extend(h("68 04 43 00 00 00"));
        let frames = run(&bytes);
        let i = frames
            .iter()
            .find(|f| f.kind == "i" && f.span == (0..16) && f.status.is_ok())
            .unwrap();
        assert!(
            i.summary().contains("unknown type 0x88 (136)"),
            "{}",
            i.summary()
        );
        let mut bytes = frame.clone();
        bytes.extend(h("12 34"));
        let frames = run(&bytes);
        assert!(frames.iter().all(|f| f.kind != "i"));
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        #[test]
        fn split_feeding_equals_whole(garbage in prop::collection::vec(prop::sample::select(vec![0x68u8, 0x04, 0x00, 0x07, 0x0E, 0x64, 0x01, 0x06]), 0..200), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut bytes = garbage;
            bytes.extend(h("68 0E 00 00 00 00 64 01 06 00 01 00 00 00 00 14 68 04 01 00 02 00"));
            let mut framer = Iec104Framer::new();
            let mut split = Vec::new();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut start = 0;
            for cut in cuts {
                framer.feed(start as u64, &bytes[start..cut], &mut split);
                start = cut;
            }
            framer.feed(start as u64, &bytes[start..], &mut split);
            framer.flush(&mut split);
            prop_assert_eq!(split, run(&bytes));
        }
    }

    proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn start_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(&[0x68, 0x04, 0x00, 0x01, 0x03, 0x07, 0x0B, 0x02])) {
            crate::decode::stream::tests::assert_same_starts(&bytes, 5, start_hits, is_start);
        }
    }
}
