//! IEC 60870-5-101 over FT1.2: the meaning of FT1.2 frames as IEC 101 (control field with
//! PRM/FCB/FCV/ACD/DFC and function codes, link address of 0–2 octets, ASDU header), its
//! streaming framer, and the ASDU tables (type ids, element sizes, causes of transmission)
//! that `iec104.rs` shares.
//!
//! Facts: IEC 60870-5-1/-2 (FT1.2) (lib60870 `link_layer.c`, `link_layer_private.h`); type ids and
//! causes from lib60870 `iec60870_common.h`; COT bits T=0x80, P/N=0x40 from lib60870
//! `cs101_asdu.c`; information-element sizes from Wireshark `packet-iec104.c` (`asdu_length`).

use super::frame::{
    Description, Detail, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset,
};
use super::ft12::{self, Check, RawFrame, Recognised, Shape};
use super::stream::{ParseStep, Streamer, WindowParser, framer_from_streamer, push_status, span};
use crate::hex;

/// Streaming IEC 101 framer: `E5` ("ack"), `10 C A CS 16` ("fixed") and `68 L L 68 C A ASDU
/// CS 16` ("variable"). The link-address size is a configuration parameter of the link
/// (0, 1 or 2 octets); it must match the devices' setting. Pending input ≤ 261 bytes.
pub struct Iec101Framer {
    streamer: Streamer<Iec101Parser>,
}

impl Iec101Framer {
    /// A framer for links with a 1-octet link address (the lib60870 and reference default).
    pub fn new() -> Self {
        Self::with_link_address_size(1)
    }

    /// A framer for links whose link address has `octets` octets (values above 2 mean 2).
    pub fn with_link_address_size(octets: u8) -> Self {
        Iec101Framer {
            streamer: Streamer::new(Iec101Parser {
                address_len: usize::from(octets.min(2)),
                headers: ft12::HeaderRun::default(),
            }),
        }
    }
}

impl Default for Iec101Framer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(Iec101Framer);

struct Iec101Parser {
    address_len: usize,
    headers: ft12::HeaderRun,
}

impl WindowParser for Iec101Parser {
    const PROTOCOL: Protocol = Protocol::Iec101;
    const MAX_WINDOW: usize = ft12::MAX_FRAME;

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        ft12::next_start(bytes)
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        match ft12::recognise(
            window,
            self.address_len,
            min_length(self.address_len),
            at_end,
        ) {
            Recognised::Need => ParseStep::Need,
            Recognised::Skip(n) => ParseStep::Skip(n),
            Recognised::Frame(raw) if !self.headers.admit(at, &raw) => {
                ParseStep::Skip(raw.consumed)
            }
            Recognised::Frame(raw) => ParseStep::Frame {
                consumed: raw.consumed,
                frame: build_frame(at, &raw, self.address_len),
            },
        }
    }

    fn reset(&mut self) {
        self.headers.reset();
    }
}

/// L must cover C and the link address.
fn min_length(address_len: usize) -> u8 {
    1 + address_len as u8
}

/// Decode the IEC 101 frame at the start of `bytes` (first byte at stream offset `base`, link
/// address of `link_address_size` octets), treating the end of `bytes` as the end of the stream.
pub fn parse(base: StreamOffset, bytes: &[u8], link_address_size: u8) -> Option<Frame> {
    let address_len = usize::from(link_address_size.min(2));
    match ft12::recognise(bytes, address_len, min_length(address_len), true) {
        Recognised::Frame(raw) => Some(build_frame(base, &raw, address_len)),
        _ => None,
    }
}

/// Function of a control field, from its PRM bit and function code (IEC 60870-5-1/-2 (FT1.2)).
pub(crate) fn function_name(c: u8) -> &'static str {
    let code = c & 0x0F;
    if c & 0x40 != 0 {
        match code {
            0 => "reset of remote link",
            1 => "reset of user process",
            2 => "test function for link",
            3 => "user data, confirm expected",
            4 => "user data, no reply expected",
            7 => "reset frame count bit",
            8 => "request for access demand",
            9 => "request status of link",
            10 => "request user data class 1",
            11 => "request user data class 2",
            _ => "reserved primary function",
        }
    } else {
        match code {
            0 => "ACK",
            1 => "NACK: message not accepted, link busy",
            8 => "user data",
            9 => "NACK: requested data not available",
            11 => "status of link",
            14 => "link service not functioning",
            15 => "link service not implemented",
            _ => "reserved secondary function",
        }
    }
}

/// The control field with its bits folded into one value (one field instead of five: frames
/// are built for every match, so their field trees are kept lean).
fn control_field(at: StreamOffset, index: usize, c: u8) -> Field {
    let bit = |shift: u8| if (c >> shift) & 1 == 1 { '1' } else { '0' };
    let mut text = String::with_capacity(96);
    text.push_str("0x");
    text.push_str(&hex::spaced_at_most(&[c], 1));
    text.push(' ');
    text.push_str(function_name(c));
    if c & 0x40 != 0 {
        text.push_str(" · PRM=1 (primary station), FCB=");
        text.push(bit(5));
        text.push_str(", FCV=");
        text.push(bit(4));
    } else {
        text.push_str(" · PRM=0 (secondary station), ACD=");
        text.push(bit(5));
        text.push_str(" (class 1 data available), DFC=");
        text.push(bit(4));
        text.push_str(" (further messages cause overflow)");
    }
    if c & 0x80 != 0 {
        text.push_str(", DIR=1 (balanced mode)");
    }
    text.push_str(", function ");
    text.push_str(&(c & 0x0F).to_string());
    Field::new("C", text, span(at, index, 1))
}

/// lib60870 identifier and a short description of an ASDU type id.
pub(crate) fn type_name(type_id: u8) -> Option<&'static str> {
    Some(match type_id {
        1 => "M_SP_NA_1 single-point information",
        2 => "M_SP_TA_1 single-point information with time tag",
        3 => "M_DP_NA_1 double-point information",
        4 => "M_DP_TA_1 double-point information with time tag",
        5 => "M_ST_NA_1 step position information",
        6 => "M_ST_TA_1 step position information with time tag",
        7 => "M_BO_NA_1 bitstring of 32 bit",
        8 => "M_BO_TA_1 bitstring of 32 bit with time tag",
        9 => "M_ME_NA_1 measured value, normalized",
        10 => "M_ME_TA_1 measured value, normalized, with time tag",
        11 => "M_ME_NB_1 measured value, scaled",
        12 => "M_ME_TB_1 measured value, scaled, with time tag",
        13 => "M_ME_NC_1 measured value, short floating point",
        14 => "M_ME_TC_1 measured value, short floating point, with time tag",
        15 => "M_IT_NA_1 integrated totals",
        16 => "M_IT_TA_1 integrated totals with time tag",
        17 => "M_EP_TA_1 event of protection equipment with time tag",
        18 => "M_EP_TB_1 packed start events of protection equipment",
        19 => "M_EP_TC_1 packed output circuit information",
        20 => "M_PS_NA_1 packed single-point information with status change",
        21 => "M_ME_ND_1 measured value, normalized, without quality",
        30 => "M_SP_TB_1 single-point information with CP56Time2a",
        31 => "M_DP_TB_1 double-point information with CP56Time2a",
        32 => "M_ST_TB_1 step position information with CP56Time2a",
        33 => "M_BO_TB_1 bitstring of 32 bit with CP56Time2a",
        34 => "M_ME_TD_1 measured value, normalized, with CP56Time2a",
        35 => "M_ME_TE_1 measured value, scaled, with CP56Time2a",
        36 => "M_ME_TF_1 measured value, short floating point, with CP56Time2a",
        37 => "M_IT_TB_1 integrated totals with CP56Time2a",
        38 => "M_EP_TD_1 event of protection equipment with CP56Time2a",
        39 => "M_EP_TE_1 packed start events of protection equipment with CP56Time2a",
        40 => "M_EP_TF_1 packed output circuit information with CP56Time2a",
        45 => "C_SC_NA_1 single command",
        46 => "C_DC_NA_1 double command",
        47 => "C_RC_NA_1 regulating step command",
        48 => "C_SE_NA_1 set-point command, normalized",
        49 => "C_SE_NB_1 set-point command, scaled",
        50 => "C_SE_NC_1 set-point command, short floating point",
        51 => "C_BO_NA_1 bitstring of 32 bit command",
        58 => "C_SC_TA_1 single command with CP56Time2a",
        59 => "C_DC_TA_1 double command with CP56Time2a",
        60 => "C_RC_TA_1 regulating step command with CP56Time2a",
        61 => "C_SE_TA_1 set-point command, normalized, with CP56Time2a",
        62 => "C_SE_TB_1 set-point command, scaled, with CP56Time2a",
        63 => "C_SE_TC_1 set-point command, short floating point, with CP56Time2a",
        64 => "C_BO_TA_1 bitstring of 32 bit command with CP56Time2a",
        70 => "M_EI_NA_1 end of initialization",
        100 => "C_IC_NA_1 interrogation command",
        101 => "C_CI_NA_1 counter interrogation command",
        102 => "C_RD_NA_1 read command",
        103 => "C_CS_NA_1 clock synchronization command",
        104 => "C_TS_NA_1 test command",
        105 => "C_RP_NA_1 reset process command",
        106 => "C_CD_NA_1 delay acquisition command",
        107 => "C_TS_TA_1 test command with CP56Time2a",
        110 => "P_ME_NA_1 parameter of measured value, normalized",
        111 => "P_ME_NB_1 parameter of measured value, scaled",
        112 => "P_ME_NC_1 parameter of measured value, short floating point",
        113 => "P_AC_NA_1 parameter activation",
        120 => "F_FR_NA_1 file ready",
        121 => "F_SR_NA_1 section ready",
        122 => "F_SC_NA_1 call directory, select file, call file, call section",
        123 => "F_LS_NA_1 last section, last segment",
        124 => "F_AF_NA_1 ack file, ack section",
        125 => "F_SG_NA_1 segment",
        126 => "F_DR_TA_1 directory",
        127 => "F_SC_NB_1 query log, request archive file",
        _ => return None,
    })
}

/// Size in octets of one information element (without its object address) of a type id, as
/// Wireshark's `asdu_length` table gives it; `None` where it varies or is not listed.
pub(crate) fn element_size(type_id: u8) -> Option<usize> {
    Some(match type_id {
        1 | 3 | 45 | 46 | 47 | 70 | 100 | 101 | 105 | 113 => 1,
        2 | 4 | 51 => 4,
        5 | 21 => 2,
        6 | 7 | 13 | 15 | 20 | 50 | 112 => 5,
        8 | 14 | 16 | 30 | 31 | 58 | 59 | 60 => 8,
        9 | 11 | 48 | 49 | 110 | 111 => 3,
        10 | 12 | 120 => 6,
        32 | 107 => 9,
        33 | 36 | 37 | 63 => 12,
        34 | 35 | 38 | 61 | 62 => 10,
        39 | 40 | 64 => 11,
        102 => 0,
        103 | 121 => 7,
        122 | 124 => 4,
        123 => 5,
        126 => 13,
        127 => 16,
        _ => return None,
    })
}

/// Cause of transmission (low 6 bits of the first COT octet), lib60870 names.
pub(crate) fn cause_name(cause: u8) -> Option<&'static str> {
    Some(match cause {
        1 => "periodic",
        2 => "background scan",
        3 => "spontaneous",
        4 => "initialized",
        5 => "request",
        6 => "activation",
        7 => "activation confirmation",
        8 => "deactivation",
        9 => "deactivation confirmation",
        10 => "activation termination",
        11 => "return information, remote command",
        12 => "return information, local command",
        13 => "file transfer",
        14 => "authentication",
        15 => "maintenance of authentication session key",
        16 => "maintenance of user role and update key",
        20 => "interrogated by station interrogation",
        21..=36 => "interrogated by group interrogation",
        37 => "requested by general counter request",
        38..=41 => "requested by group counter request",
        44 => "unknown type identification",
        45 => "unknown cause of transmission",
        46 => "unknown common address of ASDU",
        47 => "unknown information object address",
        _ => return None,
    })
}

/// Text for the first COT octet: cause, negative and test bits.
pub(crate) fn cot_text(cot: u8) -> String {
    let cause = cot & 0x3F;
    let mut text = format!(
        "0x{cot:02X} {}",
        cause_name(cause).unwrap_or("unknown cause")
    );
    if (21..=36).contains(&cause) {
        text.push_str(&format!(" {}", cause - 20));
    }
    if (38..=41).contains(&cause) {
        text.push_str(&format!(" {}", cause - 37));
    }
    if cot & 0x40 != 0 {
        text.push_str(", negative (P/N=1)");
    }
    if cot & 0x80 != 0 {
        text.push_str(", test (T=1)");
    }
    text
}

/// Fields for the ASDU header octets whose position does not depend on configuration (type
/// id, VSQ, first COT octet) and the rest as hex. `start` is the ASDU's index after `at`.
/// Returns the fields and a short summary ("C_IC_NA_1 interrogation command, activation").
pub(crate) fn asdu_fields(
    at: StreamOffset,
    start: usize,
    asdu: &[u8],
    rest_note: &str,
) -> (Vec<Field>, String) {
    let mut fields = Vec::new();
    let Some(&type_id) = asdu.first() else {
        return (fields, "empty ASDU".to_string());
    };
    let name = type_name(type_id).unwrap_or("unknown type identification");
    fields.push(Field::new(
        "type",
        format!("0x{type_id:02X} ({type_id}) {name}"),
        span(at, start, 1),
    ));
    let mut summary = match type_name(type_id) {
        Some(name) => name.to_string(),
        None => format!("unknown type 0x{type_id:02X} ({type_id})"),
    };
    if let Some(&vsq) = asdu.get(1) {
        let count = vsq & 0x7F;
        let layout = if vsq & 0x80 != 0 {
            "SQ=1: one address, consecutive elements"
        } else {
            "SQ=0: each object has its address"
        };
        fields.push(Field::new(
            "VSQ",
            format!("0x{vsq:02X} {count} object(s), {layout}"),
            span(at, start + 1, 1),
        ));
    }
    if let Some(&cot) = asdu.get(2) {
        fields.push(Field::new("COT", cot_text(cot), span(at, start + 2, 1)));
        if let Some(cause) = cause_name(cot & 0x3F) {
            summary.push_str(", ");
            summary.push_str(cause);
        }
        if cot & 0x40 != 0 {
            summary.push_str(" (negative)");
        }
    }
    if let Some(rest) = asdu.get(3..).filter(|r| !r.is_empty()) {
        fields.push(Field::new(
            "rest",
            format!("{} ({rest_note})", hex::spaced_at_most(rest, 48)),
            span(at, start + 3, rest.len()),
        ));
    }
    (fields, summary)
}

/// The IEC 101 frame `recognise` found at stream offset `at`: what it is and how it checked
/// out now, its words when first asked for (see [`describe`]).
fn build_frame(at: StreamOffset, raw: &RawFrame<'_>, address_len: usize) -> Frame {
    let mut status = raw.check.status();
    let kind = match raw.shape {
        Shape::Single => "ack",
        Shape::Fixed => "fixed",
        Shape::Variable => {
            let asdu = raw.user.get(1 + address_len..).unwrap_or_default();
            if asdu.is_empty() && status.is_ok() {
                status = FrameStatus::Malformed("variable frame without ASDU".to_string());
            }
            "variable"
        }
    };
    // The link-address size is the framer's setting: the note carries it with the check.
    let note = raw.check.to_note() | (address_len as u32) << 24;
    Frame::deferred(
        Protocol::Iec101,
        span(at, 0, raw.bytes.len()),
        kind,
        status,
        describe,
        raw.bytes,
        note,
    )
}

/// Summary and fields of an IEC 101 frame (`bytes`: its span, `note`: its FT1.2 check and
/// the link-address size).
fn describe(frame: &Frame, bytes: &[u8], note: u32, _detail: Detail) -> Description {
    let at = frame.span.start;
    let address_len = (note >> 24) as usize;
    let raw = RawFrame::from_kept(bytes, Check::from_note(note & 0x00FF_FFFF), address_len);
    let raw = &raw;
    let mut inner = Vec::new();
    let mut summary = match raw.shape {
        Shape::Single => "ACK (single character E5)".to_string(),
        Shape::Fixed | Shape::Variable => {
            let mut summary = String::new();
            if let Some(&c) = raw.user.first() {
                inner.push(control_field(at, raw.user_start, c));
                let name = function_name(c);
                summary.push_str(name);
                if name.starts_with("reserved") {
                    // Shown, not dropped: the code a table of ours does not name.
                    summary.push_str(&format!(" 0x{:02X}", c & 0x0F));
                }
                if c & 0x40 != 0 && c & 0x10 != 0 {
                    summary.push_str(&format!(" (FCB={})", (c >> 5) & 1));
                }
            }
            let address_index = raw.user_start + 1;
            if let Some(address) = raw.user.get(1..1 + address_len) {
                let value = address
                    .iter()
                    .rev()
                    .fold(0u32, |v, &b| (v << 8) | u32::from(b));
                if address_len > 0 {
                    inner.push(Field::new(
                        "A",
                        format!("{value} ({address_len}-octet link address)"),
                        span(at, address_index, address_len),
                    ));
                    summary.push_str(&format!(" A={value}"));
                }
            }
            if raw.shape == Shape::Variable {
                let asdu_start = address_index + address_len;
                let asdu = raw.user.get(1 + address_len..).unwrap_or_default();
                if !asdu.is_empty() {
                    let (children, asdu_summary) = asdu_fields(
                        at,
                        asdu_start,
                        asdu,
                        "COT, common address and object sizes depend on the link's configuration",
                    );
                    inner.push(
                        Field::new(
                            "ASDU",
                            hex::spaced_at_most(asdu, 48),
                            span(at, asdu_start, asdu.len()),
                        )
                        .with_children(children),
                    );
                    summary.push_str(": ");
                    summary.push_str(&asdu_summary);
                }
            }
            summary
        }
    };
    push_status(&mut summary, &frame.status);
    Description {
        summary,
        fields: ft12::framing_fields(at, raw, inner),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{h, run_whole};
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        run_whole(&mut Iec101Framer::new(), bytes)
    }

    /// IEC 60870-5-2 reserves primary function 5: the frame is shown with the code.
    #[test]
    fn reserved_function_is_shown_with_its_code() {
        let frames = run(&h("10 45 01 46 16"));
        assert_eq!(frames.len(), 1, "{frames:#?}");
        assert!(
            frames[0]
                .summary()
                .starts_with("reserved primary function 0x05"),
            "{frames:#?}"
        );
    }

    /// IEC 60870-5-1/-2 (FT1.2) unbalanced start-up with link address 1.
    #[test]
    fn link_handshake_worked_frames() {
        let cases: &[(&str, &str, &str)] = &[
            ("10 49 01 4A 16", "fixed", "request status of link A=1"),
            ("10 0B 01 0C 16", "fixed", "status of link A=1"),
            ("10 40 01 41 16", "fixed", "reset of remote link A=1"),
            ("E5", "ack", "ACK (single character E5)"),
            ("10 00 01 01 16", "fixed", "ACK A=1"),
            (
                "10 7A 01 7B 16",
                "fixed",
                "request user data class 1 (FCB=1) A=1",
            ),
            (
                "10 5B 01 5C 16",
                "fixed",
                "request user data class 2 (FCB=0) A=1",
            ),
            (
                "68 09 09 68 73 01 64 01 06 01 00 00 14 F4 16",
                "variable",
                "user data, confirm expected (FCB=1) A=1: C_IC_NA_1 interrogation command, activation",
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
    fn asdu_fields_have_spans() {
        let frames = run(&h("68 09 09 68 73 01 64 01 06 01 00 00 14 F4 16"));
        let asdu = frames[0]
            .fields()
            .iter()
            .find(|f| f.name == "ASDU")
            .unwrap();
        assert_eq!(asdu.span, 6..13);
        assert_eq!(
            asdu.children[0].value,
            "0x64 (100) C_IC_NA_1 interrogation command"
        );
        assert_eq!(asdu.children[2].value, "0x06 activation");
        assert_eq!(asdu.children[2].span, 8..9);
        let c = frames[0].fields().iter().find(|f| f.name == "C").unwrap();
        assert_eq!(
            c.value,
            "0x73 user data, confirm expected · PRM=1 (primary station), FCB=1, FCV=1, function 3"
        );
    }

    #[test]
    fn two_octet_link_address() {
        // 10 49 01 00 4A 16 and a variable frame 68 0A 0A 68 73 01 00 64 01 06 01 00 00 14 CS 16.
        let mut framer = Iec101Framer::with_link_address_size(2);
        let mut bytes = h("10 49 01 00 4A 16");
        let body = h("73 01 00 64 01 06 01 00 00 14");
        let cs = body.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        bytes.extend(h("68 0A 0A 68"));
        bytes.extend(&body);
        bytes.extend([cs, 0x16]);
        let frames = run_whole(&mut framer, &bytes);
        assert_eq!(frames.len(), 2, "{frames:#?}");
        assert!(frames.iter().all(|f| f.status.is_ok()));
        assert_eq!(frames[0].summary(), "request status of link A=1");
        assert!(frames[1].summary().contains("A=1: C_IC_NA_1"));
        let a = frames[1].fields().iter().find(|f| f.name == "A").unwrap();
        assert_eq!(a.span, 11..13);
    }

    #[test]
    fn corruptions() {
        let frames = run(&h("10 49 01 4B 16"));
        assert_eq!(
            frames[0].status,
            FrameStatus::BadChecksum {
                expected: 0x4A,
                found: 0x4B
            }
        );
        let frames = run(&h("68 09 08 68"));
        assert!(matches!(frames[0].status, FrameStatus::Malformed(_)));
        let frames = run(&h("68 09 09 68 73 01 64 01 06 01 00 00 14 F4 00"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("missing end byte"))
        );
        let frames = run(&h("68 09 09 68 73 01 64 01"));
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        // Frame without ASDU: L = 2 (C + A) is allowed by the length but carries nothing.
        let frames = run(&h("68 02 02 68 73 01 74 16"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("without ASDU"))
        );
    }

    #[test]
    fn secondary_function_names() {
        assert_eq!(function_name(0x0B), "status of link");
        assert_eq!(function_name(0x09), "NACK: requested data not available");
        assert_eq!(function_name(0x4B), "request user data class 2");
        assert_eq!(
            cot_text(0x47),
            "0x47 activation confirmation, negative (P/N=1)"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..600), size in 0u8..4) {
            let mut framer = Iec101Framer::with_link_address_size(size);
            for frame in run_whole(&mut framer, &bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        #[test]
        fn split_feeding_equals_whole(garbage in prop::collection::vec(any::<u8>(), 0..200), cut in any::<usize>()) {
            let mut bytes = garbage;
            bytes.extend(h("68 09 09 68 73 01 64 01 06 01 00 00 14 F4 16 10 49 01 4A 16"));
            let cut = cut % (bytes.len() + 1);
            let mut framer = Iec101Framer::new();
            let mut split = Vec::new();
            framer.feed(0, &bytes[..cut], &mut split);
            framer.feed(cut as u64, &bytes[cut..], &mut split);
            framer.flush(&mut split);
            prop_assert_eq!(split, run(&bytes));
        }
    }
}
