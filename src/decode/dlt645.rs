//! DL/T 645-2007 meter frames: `[FE…] 68 A0..A5 68 C L DATA CS 16` with a BCD (or AA
//! wildcard) address, the control code bits and functions, data sent +0x33, and a streaming
//! framer that skips the wake-up preamble and resyncs after garbage.
//!
//! Facts: DL/T 645-2007 (gams/python-dlt645, 600888/dlt645, spec copy); names marked (unconfirmed)
//! there are phrased as likely here.

use wide::u8x16;

use super::frame::{
    Description, Detail, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset,
};
use super::stream::{
    Lanes, ParseStep, Streamer, WindowParser, find_starts, framer_from_streamer, lanes_eq,
    push_status, span, sum8,
};
use crate::hex;

const START: u8 = 0x68;
const STOP: u8 = 0x16;
const PREAMBLE: u8 = 0xFE;
/// At most this many FE wake-up bytes are counted as part of a frame.
const MAX_PREAMBLE: usize = 4;
/// 68 + address (6) + 68 + C + L.
const HEADER: usize = 10;
/// Every data byte is sent with this added.
const DATA_OFFSET: u8 = 0x33;
/// Longest frame: preamble + header + 255 data bytes + CS + 16.
const MAX_FRAME: usize = MAX_PREAMBLE + HEADER + 255 + 2;

/// Streaming DL/T 645 framer: kind "request" (master → meter) or "response" (meter → master,
/// C bit 7 set). Pending input ≤ 271 bytes.
pub struct Dlt645Framer {
    streamer: Streamer<Dlt645Parser>,
}

impl Dlt645Framer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        Dlt645Framer {
            streamer: Streamer::new(Dlt645Parser::default()),
        }
    }
}

impl Default for Dlt645Framer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(Dlt645Framer);

/// `weak_until`: where the last reported frame without checksum or end byte (a header
/// whose L points at neither) would have ended. A header found inside it is not reported:
/// one of the two is a false start, and a run of 68s would otherwise give one every seven
/// bytes. A frame that checks out is always reported (as `ft12::HeaderRun` does).
#[derive(Default)]
struct Dlt645Parser {
    weak_until: StreamOffset,
}

impl WindowParser for Dlt645Parser {
    const PROTOCOL: Protocol = Protocol::Dlt645;
    const MAX_WINDOW: usize = MAX_FRAME;

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        find_starts(bytes, START_AHEAD, start_hits, is_start)
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        match decide(at, window, at_end) {
            Decision::Need => ParseStep::Need,
            Decision::Skip => ParseStep::Skip(1),
            Decision::Frame(frame, consumed)
                if matches!(frame.status, FrameStatus::Malformed(_)) =>
            {
                if frame.span.start < self.weak_until {
                    return ParseStep::Skip(consumed.max(1));
                }
                // L is the tenth byte from the 68: the frame would have run 12 + L bytes.
                let skip = usize::try_from(frame.span.start.saturating_sub(at)).unwrap_or(0);
                let length = window.get(skip + 9).copied().map_or(0, u64::from);
                self.weak_until = frame.span.start + 12 + length;
                ParseStep::Frame { frame, consumed }
            }
            Decision::Frame(frame, consumed) => ParseStep::Frame { frame, consumed },
        }
    }

    fn reset(&mut self) {
        self.weak_until = 0;
    }
}

/// Bytes after a position [`start_hits`] reads.
const START_AHEAD: usize = 7;

/// [`is_start`] for sixteen positions at a time (see [`find_starts`]).
fn start_hits(lanes: &Lanes<'_>) -> u8x16 {
    let (first, second) = (lanes.at(0), lanes.at(1));
    (lanes_eq(first, START) & lanes_eq(lanes.at(7), START))
        | (lanes_eq(first, PREAMBLE) & (lanes_eq(second, PREAMBLE) | lanes_eq(second, START)))
}

/// Can a frame start at `rest[0]`? A 68 counts only with the second 68 seven bytes later, an
/// FE only before another FE or the 68: anything else is a position `decide` skips.
fn is_start(rest: &[u8]) -> bool {
    match rest {
        [START, _, _, _, _, _, _, seventh, ..] => *seventh == START,
        [START, ..] | [PREAMBLE] => true,
        [PREAMBLE, next, ..] => matches!(*next, PREAMBLE | START),
        _ => false,
    }
}

enum Decision {
    Need,
    Skip,
    Frame(Frame, usize),
}

/// Decode the DL/T 645 frame (with any FE preamble) at the start of `bytes` (first byte at
/// stream offset `base`), treating the end of `bytes` as the end of the stream.
pub fn parse(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    match decide(base, bytes, true) {
        Decision::Frame(frame, _) => Some(frame),
        _ => None,
    }
}

fn is_address_byte(b: u8) -> bool {
    b == 0xAA || (b >> 4 <= 9 && b & 0x0F <= 9)
}

/// Address as printed on the meter: A5 first (the wire carries A0 first).
fn address_text(address: &[u8]) -> String {
    if address.iter().all(|&b| b == 0xAA) {
        return "AAAAAAAAAAAA (broadcast / wildcard)".to_string();
    }
    address.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// Function name of a 2007 control code's low 5 bits (DL/T 645-2007); a code in no
/// table is named by its value.
fn function_name(function: u8) -> String {
    match known_function(function) {
        Some(name) => name.to_string(),
        None => format!("unknown function 0x{function:02X}"),
    }
}

fn known_function(function: u8) -> Option<&'static str> {
    Some(match function {
        0x08 => "broadcast time sync",
        0x11 => "read data",
        0x12 => "read follow-up data",
        0x13 => "read address",
        0x14 => "write data",
        0x15 => "write address",
        0x16 => "likely freeze",
        0x17 => "change baud rate",
        0x18 => "change password",
        0x19 => "likely demand clear",
        0x1A => "meter clear (likely; gams calls it RESET_PWR)",
        0x1B => "likely event clear",
        0x1C => "likely relay control",
        _ => return None,
    })
}

/// Meaning of a known data identifier (DI3..DI0 in reading order).
fn data_identifier_name(di: [u8; 4]) -> Option<&'static str> {
    match di {
        [0x00, 0x01, 0x00, 0x00] => Some("forward active energy, total"),
        _ => None,
    }
}

/// Bits of the error byte of an abnormal reply (DL/T 645-2007, tagged (unconfirmed)).
fn error_bits(error: u8) -> String {
    const BITS: [&str; 7] = [
        "other error",
        "no requested data",
        "password error or unauthorised",
        "baud rate cannot be changed",
        "yearly time-zone count exceeded",
        "daily period count exceeded",
        "tariff count exceeded",
    ];
    let names: Vec<&str> = BITS
        .iter()
        .enumerate()
        .filter(|(bit, _)| error & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "no bit set".to_string()
    } else {
        format!("likely: {}", names.join(", "))
    }
}

fn decide(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    let preamble = window.iter().take_while(|&&b| b == PREAMBLE).count();
    if preamble > MAX_PREAMBLE {
        // Extra wake-up bytes: the frame (if any) starts at a later FE.
        return Decision::Skip;
    }
    if preamble == window.len() {
        return if at_end || window.is_empty() {
            Decision::Skip
        } else {
            Decision::Need
        };
    }
    if window.get(preamble) != Some(&START) {
        return Decision::Skip;
    }
    let rest = window.get(preamble..).unwrap_or_default();
    // Address bytes and the second 68, checked as far as they have arrived.
    for (i, &b) in rest.iter().enumerate().take(8).skip(1) {
        let fits = if i == 7 {
            b == START
        } else {
            is_address_byte(b)
        };
        if !fits {
            return Decision::Skip;
        }
    }
    let Some(&[_, _, _, _, _, _, _, _, c, length]) = rest.get(..HEADER) else {
        return if at_end {
            Decision::Skip
        } else {
            Decision::Need
        };
    };
    let data_len = usize::from(length);
    let total = preamble + HEADER + data_len + 2;
    let Some(bytes) = window.get(..total) else {
        if at_end {
            let frame = build(at, window, c, Check::Truncated);
            return Decision::Frame(frame, preamble + 7);
        }
        return Decision::Need;
    };
    let summed = bytes
        .get(preamble..preamble + HEADER + data_len)
        .unwrap_or_default();
    let expected = sum8(summed);
    let found = bytes.get(total - 2).copied().unwrap_or_default();
    let stop = bytes.get(total - 1).copied().unwrap_or_default();
    // As for FT1.2: a damaged frame never hides what follows its second 68.
    let (check, covered, consumed) = match (stop == STOP, found == expected) {
        (true, true) => (Check::Ok, total, total),
        (true, false) => (Check::BadChecksum { expected, found }, total, total),
        (false, true) => (Check::MissingStop { found: stop }, total - 1, total - 1),
        (false, false) => (Check::NoEnd, preamble + HEADER, preamble + 7),
    };
    let frame = build(at, bytes.get(..covered).unwrap_or_default(), c, check);
    Decision::Frame(frame, consumed)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Ok,
    BadChecksum { expected: u8, found: u8 },
    MissingStop { found: u8 },
    NoEnd,
    Truncated,
}

impl Check {
    /// Packed into a deferred frame's note.
    fn to_note(self) -> u32 {
        let (tag, a, b) = match self {
            Check::Ok => (0u8, 0u8, 0u8),
            Check::BadChecksum { expected, found } => (1, expected, found),
            Check::MissingStop { found } => (2, found, 0),
            Check::NoEnd => (3, 0, 0),
            Check::Truncated => (4, 0, 0),
        };
        u32::from_le_bytes([tag, a, b, 0])
    }

    fn from_note(note: u32) -> Check {
        let [tag, a, b, _] = note.to_le_bytes();
        match tag {
            1 => Check::BadChecksum {
                expected: a,
                found: b,
            },
            2 => Check::MissingStop { found: a },
            3 => Check::NoEnd,
            4 => Check::Truncated,
            _ => Check::Ok,
        }
    }

    fn status(self) -> FrameStatus {
        match self {
            Check::Ok => FrameStatus::Ok,
            Check::BadChecksum { expected, found } => FrameStatus::BadChecksum {
                expected: u32::from(expected),
                found: u32::from(found),
            },
            Check::Truncated => FrameStatus::Truncated,
            Check::MissingStop { found } => FrameStatus::Malformed(format!(
                "missing end byte 0x16 (found 0x{found:02X}); checksum is right"
            )),
            Check::NoEnd => FrameStatus::Malformed(
                "no checksum or end byte 0x16 where L says: the frame was cut short, or L is wrong"
                    .to_string(),
            ),
        }
    }
}

/// The frame whose span covers `bytes` (from the first FE or 68, at least through L), with
/// control code `c`: what it is and how it checked out now, its words when first asked for.
fn build(at: StreamOffset, bytes: &[u8], c: u8, check: Check) -> Frame {
    Frame::deferred(
        Protocol::Dlt645,
        span(at, 0, bytes.len()),
        if c & 0x80 != 0 { "response" } else { "request" },
        check.status(),
        describe,
        bytes,
        check.to_note(),
    )
}

/// Summary and fields of a frame (`bytes`: its span, from the first FE or 68, at least through
/// L; `note`: its check).
fn describe(frame: &Frame, bytes: &[u8], note: u32, _detail: Detail) -> Description {
    let at = frame.span.start;
    let check = Check::from_note(note);
    let preamble = bytes.iter().take_while(|&&b| b == PREAMBLE).count();
    let c = bytes.get(preamble + 8).copied().unwrap_or_default();
    let length = bytes.get(preamble + 9).copied().unwrap_or_default();
    let p = preamble;
    let mut fields = Vec::new();
    if p > 0 {
        fields.push(Field::new(
            "preamble",
            format!("{p} × FE (wake-up)"),
            span(at, 0, p),
        ));
    }
    fields.push(Field::new("start", "0x68", span(at, p, 1)));
    let address = bytes.get(p + 1..p + 7).unwrap_or_default();
    let address_text = address_text(address);
    fields.push(Field::new(
        "address",
        format!("{address_text} (A0 first on the wire)"),
        span(at, p + 1, 6),
    ));
    fields.push(Field::new("start'", "0x68", span(at, p + 7, 1)));

    let response = c & 0x80 != 0;
    let abnormal = c & 0x40 != 0;
    let follow_up = c & 0x20 != 0;
    let function = c & 0x1F;
    let here = span(at, p + 8, 1);
    fields.push(
        Field::new(
            "C",
            format!("0x{c:02X} {}", function_name(function)),
            here.clone(),
        )
        .with_children(vec![
            Field::new(
                "direction",
                if response {
                    "1: meter → master (reply)"
                } else {
                    "0: master → meter"
                },
                here.clone(),
            ),
            Field::new(
                "abnormal",
                if abnormal { "1: abnormal reply" } else { "0" },
                here.clone(),
            ),
            Field::new(
                "follow-up",
                if follow_up {
                    "1: more frames follow"
                } else {
                    "0"
                },
                here.clone(),
            ),
            Field::new(
                "function",
                format!("0x{function:02X} {}", function_name(function)),
                here,
            ),
        ]),
    );
    fields.push(Field::new(
        "L",
        format!("{length} data bytes"),
        span(at, p + 9, 1),
    ));

    let mut summary = format!(
        "{}{} {}",
        if response { "reply to " } else { "" },
        function_name(function),
        address_text.split(' ').next().unwrap_or_default()
    );
    if abnormal {
        summary.push_str(" ABNORMAL");
    }
    if follow_up {
        summary.push_str(" (follow-up)");
    }

    let data_start = p + HEADER;
    let data_end = (data_start + usize::from(length)).min(bytes.len());
    let raw_data = bytes.get(data_start..data_end).unwrap_or_default();
    if !raw_data.is_empty() {
        let data: Vec<u8> = raw_data
            .iter()
            .map(|b| b.wrapping_sub(DATA_OFFSET))
            .collect();
        let mut children = Vec::new();
        if abnormal {
            if let Some(&error) = data.first() {
                children.push(Field::new(
                    "error",
                    format!("0x{error:02X} {}", error_bits(error)),
                    span(at, data_start, 1),
                ));
                summary.push_str(&format!(", error 0x{error:02X}"));
            }
        } else if matches!(function, 0x11 | 0x12 | 0x14) {
            if let Some(&[di0, di1, di2, di3]) = data.get(..4) {
                let di = [di3, di2, di1, di0];
                let meaning = data_identifier_name(di).unwrap_or("identifier not in our table");
                children.push(Field::new(
                    "DI",
                    format!("{di3:02X} {di2:02X} {di1:02X} {di0:02X} {meaning} (sent DI0 first)"),
                    span(at, data_start, 4),
                ));
                summary.push_str(&format!(" DI {di3:02X}{di2:02X}{di1:02X}{di0:02X}"));
                if let Some(value) = data.get(4..).filter(|v| !v.is_empty()) {
                    let text = if di == [0x00, 0x01, 0x00, 0x00] && value.len() == 4 {
                        // BCD XXXXXX.XX kWh, least significant byte first.
                        let digits: String =
                            value.iter().rev().map(|b| format!("{b:02X}")).collect();
                        let (whole, fraction) = digits.split_at(6);
                        summary.push_str(&format!(" = {whole}.{fraction} kWh"));
                        format!("{whole}.{fraction} kWh (BCD, LSB first)")
                    } else {
                        hex::spaced_at_most(value, 48)
                    };
                    children.push(Field::new(
                        "value",
                        text,
                        span(at, data_start + 4, value.len()),
                    ));
                }
            }
        } else if function == 0x13
            && response
            && let Some(meter) = data.get(..6)
        {
            children.push(Field::new(
                "meter address",
                address_text_plain(meter),
                span(at, data_start, 6),
            ));
        }
        fields.push(
            Field::new(
                "data",
                format!("{} (after −0x33)", hex::spaced_at_most(&data, 48)),
                span(at, data_start, raw_data.len()),
            )
            .with_children(children),
        );
    }

    let cs_index = data_start + usize::from(length);
    if let Some(&cs) = bytes.get(cs_index) {
        let value = match check {
            Check::BadChecksum { expected, .. } => {
                format!("0x{cs:02X}, but the byte sum is 0x{expected:02X}")
            }
            _ => format!("0x{cs:02X} (sum from the first 68 to the end of data)"),
        };
        fields.push(Field::new("CS", value, span(at, cs_index, 1)));
    }
    if let Some(&stop) = bytes.get(cs_index + 1) {
        fields.push(Field::new(
            "stop",
            format!("0x{stop:02X}"),
            span(at, cs_index + 1, 1),
        ));
    }
    push_status(&mut summary, &frame.status);
    Description { summary, fields }
}

fn address_text_plain(address: &[u8]) -> String {
    address.iter().rev().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{field, h, run_whole};
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        run_whole(&mut Dlt645Framer::new(), bytes)
    }

    /// DL/T 645-2007 worked frames.
    #[test]
    fn worked_frames() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16",
                "request",
                "read address AAAAAAAAAAAA",
            ),
            (
                "FE FE FE FE 68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16",
                "request",
                "read data 000000000001 DI 00010000",
            ),
            (
                "68 01 00 00 00 00 00 68 91 08 33 33 34 33 89 67 45 33 9F 16",
                "response",
                "reply to read data 000000000001 DI 00010000 = 001234.56 kWh",
            ),
            (
                "68 01 00 00 00 00 00 68 D1 01 35 D8 16",
                "response",
                "reply to read data 000000000001 ABNORMAL, error 0x02",
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

    /// Unknown is not absent: a frame whose checksum and structure hold but whose function
    /// code is in no table of ours is shown with the code.
    #[test]
    fn unknown_function_is_shown_with_its_code() {
        // The read-address request above with function 0x03: CS = DF - 10 = CF.
        let frames = run(&h("68 AA AA AA AA AA AA 68 03 00 CF 16"));
        assert_eq!(frames.len(), 1, "{frames:#?}");
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert_eq!(frames[0].summary(), "unknown function 0x03 AAAAAAAAAAAA");
    }

    #[test]
    fn fields_decode_data_minus_33() {
        let frames = run(&h(
            "FE FE FE FE 68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16",
        ));
        let frame = &frames[0];
        assert_eq!(field(frame, "preamble").span, 0..4);
        assert_eq!(
            field(frame, "address").value,
            "000000000001 (A0 first on the wire)"
        );
        assert_eq!(field(frame, "address").span, 5..11);
        let data = field(frame, "data");
        assert_eq!(data.value, "00 00 01 00 (after −0x33)");
        assert_eq!(
            data.children[0].value,
            "00 01 00 00 forward active energy, total (sent DI0 first)"
        );
        assert_eq!(field(frame, "CS").span, 18..19);
        let abnormal = run(&h("68 01 00 00 00 00 00 68 D1 01 35 D8 16"));
        let data = field(&abnormal[0], "data");
        assert_eq!(data.children[0].value, "0x02 likely: no requested data");
    }

    #[test]
    fn corruptions() {
        let frames = run(&h("68 01 00 00 00 00 00 68 D1 01 35 D9 16"));
        assert_eq!(
            frames[0].status,
            FrameStatus::BadChecksum {
                expected: 0xD8,
                found: 0xD9
            }
        );
        let frames = run(&h("68 01 00 00 00 00 00 68 D1 01 35 D8 17"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("missing end byte"))
        );
        let frames = run(&h("FE FE 68 01 00 00 00 00 00 68 11 04 33 33"));
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        assert_eq!(frames[0].span, 0..14);
        // Wrong L: checksum and stop are not where L says.
        let frames = run(&h("68 01 00 00 00 00 00 68 D1 02 35 D8 16 00 00"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("no checksum"))
        );
    }

    #[test]
    fn garbage_and_extra_preamble() {
        let mut bytes = h("68 12 34 68 FE FE FE FE FE FE");
        bytes.extend(h("68 AA AA AA AA AA AA 68 13 00 DF 16"));
        bytes.extend(h("68 99 68"));
        bytes.extend(h("68 01 00 00 00 00 00 68 D1 01 35 D8 16"));
        let frames = run(&bytes);
        let spans: Vec<_> = frames
            .iter()
            .map(|f| (f.status.is_ok(), f.span.clone()))
            .collect();
        // Only four of the six FEs belong to the frame.
        assert_eq!(spans, vec![(true, 6..22), (true, 25..38)]);
    }

    #[test]
    fn non_bcd_address_is_not_a_frame() {
        assert!(run(&h("68 1A 00 00 00 00 00 68 13 00 DF 16")).is_empty());
    }

    proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn start_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(&[0x68, 0xFE, 0x00, 0x33])) {
            crate::decode::stream::tests::assert_same_starts(&bytes, START_AHEAD, start_hits, is_start);
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        #[test]
        fn split_feeding_equals_whole(garbage in prop::collection::vec(prop::sample::select(vec![0x68u8, 0xFE, 0x00, 0x01, 0xAA, 0x16, 0x13]), 0..150), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut bytes = garbage;
            bytes.extend(h("FE FE 68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16"));
            let mut framer = Dlt645Framer::new();
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
}
