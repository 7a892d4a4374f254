//! The line framer against known exchanges, chunk boundaries, noise and its hunting filter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wide::u8x16;

use crate::decode::frame::{Field, Frame, FrameStatus, Protocol};
use crate::decode::iso7816::atr::T1Edc;
use crate::decode::iso7816::cla::{Cla, ClassKind};
use crate::decode::iso7816::{atr, from_inverse_convention, ins};

use super::hunt::{HuntDecision, Reading, cla_plausible, decode_as, is_printable, is_text, lrc_of};
use super::prefilter::{
    BAD_TA1, decode_as_branchless, lanes_cla_implausible, lanes_ins_invalid, lanes_sw1, printable,
};

use super::*;
use proptest::prelude::*;

fn h(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect()
}

fn run(bytes: &[u8]) -> Vec<Frame> {
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    framer.feed(0, bytes, &mut out);
    framer.flush(&mut out);
    out
}

fn run_split(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        framer.feed(start as u64, &bytes[start..cut], &mut out);
        assert!(framer.pending_len() <= MAX_PENDING);
        start = cut;
    }
    framer.flush(&mut out);
    out
}

fn kinds(frames: &[Frame]) -> Vec<&'static str> {
    frames.iter().map(|f| f.kind).collect()
}

fn with_lrc(mut block: Vec<u8>) -> Vec<u8> {
    let lrc = block.iter().fold(0u8, |a, b| a ^ b);
    block.push(lrc);
    block
}

fn field<'a>(frame: &'a Frame, name: &str) -> &'a Field {
    frame
        .fields()
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name} in {frame:?}"))
}

/// T=0-only ATR 3B 02 14 50 (no TCK), then SELECT with a 2-byte FID, ACK, data, 61 10,
/// then GET RESPONSE with Le=10 (the reference's 61XX procedure), 16 bytes, 90 00.
fn t0_session() -> Vec<u8> {
    let mut s = h("3B 02 14 50  00 A4 00 00 02  A4  3F 00  61 10");
    s.extend(h("00 C0 00 00 10  C0"));
    s.extend(0..16u8);
    s.extend(h("90 00"));
    s
}

#[test]
fn t0_exchange_with_get_response() {
    let frames = run(&t0_session());
    assert_eq!(
        kinds(&frames),
        [
            "atr",
            "header",
            "procedure",
            "data",
            "sw",
            "header",
            "procedure",
            "data",
            "sw"
        ]
    );
    assert!(frames.iter().all(|f| f.status.is_ok()));
    assert!(frames.iter().all(|f| f.protocol == Protocol::Iso7816Line));
    assert_eq!(frames[1].span, 4..9);
    assert!(frames[1].summary().starts_with("SELECT header 00 A4"));
    assert_eq!(frames[3].span, 10..12);
    assert!(
        frames[4]
            .summary()
            .starts_with("6110 16 more bytes available: send GET RESPONSE with Le=10")
    );
    assert_eq!(
        field(&frames[4], "next step").value,
        "send GET RESPONSE 00 C0 00 00 10 (same CLA and channel)"
    );
    assert_eq!(frames[7].span.end - frames[7].span.start, 16);
    assert!(frames[7].summary().contains("likely card → reader"));
    assert!(frames[8].summary().starts_with("9000"));
}

#[test]
fn sw1_68_is_decoded_as_a_status_word() {
    // CLA 0C (SM, header authenticated) answered 68 82 right after the header.
    let frames = run(&h("3B 02 14 50  0C A4 04 00 02  68 82"));
    assert_eq!(kinds(&frames), ["atr", "header", "sw"]);
    let sw = &frames[2];
    assert_eq!(sw.span, 9..11);
    assert!(
        sw.summary()
            .starts_with("6882 Secure messaging not supported (after SELECT, CLA 0C)"),
        "{}",
        sw.summary()
    );
    assert!(
        field(sw, "SW")
            .value
            .contains("Secure messaging not supported")
    );
    assert!(
        field(sw, "context")
            .value
            .contains("secure messaging bits set in CLA")
    );
    assert_eq!(field(sw, "command").span, 4..9);
}

#[test]
fn null_bytes_and_single_byte_acks() {
    // VERIFY with 2 data bytes sent one at a time (ACK = INS xor FF = DF), NULLs between.
    let frames = run(&h("3B 02 14 50  00 20 00 01 02  60 60 DF 31 DF 32 90 00"));
    assert_eq!(
        kinds(&frames),
        [
            "atr",
            "header",
            "procedure",
            "procedure",
            "procedure",
            "data",
            "procedure",
            "data",
            "sw"
        ]
    );
    assert!(frames[2].summary().starts_with("NULL 60"));
    assert!(frames[4].summary().contains("INS xor FF"));
    assert_eq!(frames[5].span, 12..13);
    assert!(frames[8].summary().starts_with("9000"));
}

#[test]
fn six_c_suggests_resend() {
    let frames = run(&h("3B 02 14 50  00 B0 00 00 00  6C 10"));
    let sw = frames.last().unwrap();
    assert!(sw.summary().contains("Wrong Le field: 16 bytes"));
    assert_eq!(
        field(sw, "next step").value,
        "re-send 00 B0 00 00 with P3=10"
    );
}

#[test]
fn pps_then_t1_blocks() {
    // Storage-card ATR offers T=0 and T=1 (TCK valid); PPS to T=1 with PPS1=13:
    // PCK = FF ^ 11 ^ 13 = FD.
    let mut s = h("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68");
    s.extend(h("FF 11 13 FD  FF 11 13 FD"));
    s.extend(with_lrc(h("00 00 05 00 B0 00 00 10")));
    s.extend(with_lrc(h("00 40 04 AA BB 90 00")));
    s.extend(with_lrc(h("00 81 00")));
    s.extend(with_lrc(h("00 C3 01 02")));
    let frames = run(&s);
    assert_eq!(
        kinds(&frames),
        [
            "atr", "pps", "pps", "i-block", "i-block", "r-block", "s-block"
        ]
    );
    assert!(frames.iter().all(|f| f.status.is_ok()), "{frames:#?}");
    assert_eq!(frames[1].summary(), "PPS request T=1");
    assert!(frames[2].summary().contains("accepted"));
    assert!(field(&frames[1], "PPS1").value.contains("Fi=372 Di=4"));
    assert!(
        frames[3].summary().contains("READ BINARY"),
        "{}",
        frames[3].summary()
    );
    assert!(
        frames[4].summary().contains("9000"),
        "{}",
        frames[4].summary()
    );
    assert!(frames[5].summary().contains("EDC/parity error"));
    assert!(
        frames[6]
            .summary()
            .contains("WTX request (WTX multiplier = 2)")
    );
}

#[test]
fn corrupt_checksums_are_reported() {
    let mut s = h("3B 02 14 50  FF 10 13 FD"); // PCK should be FF^10^13 = FC
    s.truncate(8);
    let frames = run(&s);
    assert_eq!(
        frames[1].status,
        FrameStatus::BadChecksum {
            expected: 0xFC,
            found: 0xFD
        }
    );
    // T=1 (JCOP ATR) block with a wrong LRC.
    let mut s = h("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B7");
    let mut block = with_lrc(h("00 00 01 AA"));
    *block.last_mut().unwrap() ^= 0x01;
    s.extend(block);
    let frames = run(&s);
    assert_eq!(kinds(&frames), ["atr", "i-block"]);
    assert!(matches!(frames[1].status, FrameStatus::BadChecksum { .. }));
    // ATR with a bad TCK.
    let mut s = h("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B6");
    s.extend(with_lrc(h("00 00 00")));
    let frames = run(&s);
    assert!(matches!(
        frames[0].status,
        FrameStatus::BadChecksum {
            expected: 0xB7,
            found: 0xB6
        }
    ));
    assert_eq!(frames[1].kind, "i-block");
}

#[test]
fn inverse_convention_read_as_direct() {
    let logical = h("3F 02 14 50  00 A4 00 00 02  A4  3F 00  90 00");
    let raw: Vec<u8> = logical
        .iter()
        .map(|b| from_inverse_convention(*b))
        .collect();
    assert_eq!(raw[0], 0x03);
    let frames = run(&raw);
    assert_eq!(kinds(&frames), ["atr", "header", "procedure", "data", "sw"]);
    assert!(
        field(&frames[0], "TS")
            .value
            .contains("bit-reversing and inverting")
    );
    assert!(frames[1].summary().contains("SELECT header 00 A4 00 00 02"));
    assert!(frames[4].summary().starts_with("9000"));
    assert!(
        frames[4]
            .summary()
            .ends_with("[inverse convention, decoded]")
    );
}

#[test]
fn garbage_before_and_between() {
    let mut s = h("11 22 55 FF 00");
    s.extend(t0_session());
    let clean = run(&t0_session());
    let frames = run(&s);
    assert_eq!(kinds(&frames), kinds(&clean));
    assert_eq!(frames[0].span, 5..9);
    // Garbage between exchanges: an invalid INS (68) breaks the header; the framer hunts
    // and resyncs on the next whole exchange.
    let mut s = h("3B 02 14 50  00 68 00 00 00 00 00");
    s.extend(h("00 B0 00 00 02  B0  AA BB  90 00"));
    let frames = run(&s);
    assert_eq!(kinds(&frames), ["atr", "header", "procedure", "data", "sw"]);
    assert_eq!(frames[1].span, 11..16);
}

#[test]
fn unexpected_procedure_byte_is_malformed_then_resyncs() {
    let mut s = h("3B 02 14 50  00 A4 00 00 02  12");
    s.extend(h("00 B0 00 00 02  B0  AA BB  90 00"));
    let frames = run(&s);
    assert_eq!(
        kinds(&frames),
        [
            "atr",
            "header",
            "procedure",
            "header",
            "procedure",
            "data",
            "sw"
        ]
    );
    assert!(matches!(frames[2].status, FrameStatus::Malformed(_)));
}

#[test]
fn card_reset_mid_session_gives_a_new_atr() {
    let mut s = t0_session();
    s.extend(h("00 A4 00 00 02")); // header, then the card is reset
    s.extend(h("3B 02 14 50  00 B0 00 00 01  B0  AA  90 00"));
    let frames = run(&s);
    let k = kinds(&frames);
    assert_eq!(k.iter().filter(|x| **x == "atr").count(), 2, "{k:?}");
    assert_eq!(k.last(), Some(&"sw"));
}

#[test]
fn starting_mid_session_without_atr() {
    let frames = run(&h("A4 00 00 02 00 A4 00 00 02  A4  3F 00  90 00"));
    assert_eq!(kinds(&frames), ["header", "procedure", "data", "sw"]);
    assert_eq!(frames[0].span, 4..9);
}

#[test]
fn truncated_units_at_flush() {
    let f = run(&h("3B F8 13 00"));
    assert_eq!(kinds(&f), ["atr"]);
    assert_eq!(f[0].status, FrameStatus::Truncated);
    let f = run(&h("3B 02 14 50  00 A4 00"));
    assert_eq!(f[1].kind, "header");
    assert_eq!(f[1].status, FrameStatus::Truncated);
    assert_eq!(f[1].span, 4..7);
    let f = run(&h("3B 02 14 50  00 A4 00 00 02  68"));
    let last = f.last().unwrap();
    assert_eq!(last.kind, "sw");
    assert_eq!(last.status, FrameStatus::Truncated);
    assert!(
        last.summary()
            .contains("Functions in CLA not supported (SW2 missing)")
    );
    let f = run(&h("3B 02 14 50  00 A4 00 00 02  A4  3F"));
    assert_eq!(f.last().unwrap().kind, "data");
    assert_eq!(f.last().unwrap().status, FrameStatus::Truncated);
    let f = run(&h("3B 02 14 50  FF 11"));
    assert_eq!(f.last().unwrap().kind, "pps");
    assert_eq!(f.last().unwrap().status, FrameStatus::Truncated);
}

#[test]
fn reset_forgets_state() {
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    framer.feed(0, &h("3F 02 14 50"), &mut out);
    assert_eq!(framer.line_protocol(), Some(LineProtocol::T0));
    framer.reset();
    assert_eq!(framer.line_protocol(), None);
    assert_eq!(framer.pending_len(), 0);
    assert!(!framer.is_inverted());
}

#[test]
fn gap_in_offsets_resyncs() {
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    assert_eq!(framer.protocol(), Protocol::Iso7816Line);
    framer.feed(0, &h("3B 02 14 50  00 B0 00 00 10  B0  01 02"), &mut out);
    // 14 data bytes never arrive; the next chunk starts 100 bytes later.
    framer.feed(112, &h("00 B0 00 00 01  B0  AA  90 00"), &mut out);
    framer.flush(&mut out);
    assert_eq!(
        kinds(&out),
        [
            "atr",
            "header",
            "procedure",
            "header",
            "procedure",
            "data",
            "sw"
        ]
    );
    assert_eq!(out[3].span, 112..117);
    assert!(out.iter().all(|f| f.status.is_ok()));
}

#[test]
fn split_known_session_everywhere() {
    let s = t0_session();
    let whole = run(&s);
    for cut in 0..=s.len() {
        assert_eq!(run_split(&s, &[cut]), whole, "cut at {cut}");
    }
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(h("3B 02 14 50")),
        Just(h("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B7")),
        Just(h(
            "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68"
        )),
        Just(h("00 A4 04 00 02  A4  3F 00  61 10")),
        Just(h("0C A4 04 00 02  68 82")),
        Just(h("00 20 00 01 02  60 DF 31 DF 32 90 00")),
        Just(h("FF 11 13 FD")),
        Just(with_lrc(h("00 00 05 00 B0 00 00 10"))),
        Just(with_lrc(h("00 40 04 AA BB 90 00"))),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

fn check_spans(frames: &[Frame], end: u64) {
    fn walk(fields: &[Field], end: u64) {
        for f in fields {
            assert!(f.span.start <= f.span.end && f.span.end <= end, "{f:?}");
            walk(&f.children, end);
        }
    }
    for f in frames {
        assert!(f.span.start <= f.span.end && f.span.end <= end, "{f:?}");
        walk(f.fields(), end);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_split_is_stable(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let whole = run(&bytes);
        check_spans(&whole, bytes.len() as u64);
        prop_assert_eq!(run_split(&bytes, &cuts), whole);
    }

    #[test]
    fn structured_streams_split_stable(
        parts in proptest::collection::vec(fragment(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        inverse in any::<bool>(),
    ) {
        let mut bytes: Vec<u8> = parts.concat();
        if inverse {
            bytes = bytes.iter().map(|b| from_inverse_convention(*b)).collect();
        }
        let whole = run(&bytes);
        check_spans(&whole, bytes.len() as u64);
        prop_assert_eq!(run_split(&bytes, &cuts), whole);
    }
}
// ---- hunting on lines without card traffic -----------------------------------------

fn xorshift(state: &mut u32) -> u8 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state as u8
}

/// M-Bus frames, a boot log and idle runs: the kinds of traffic hunting sees most.
fn non_card_traffic() -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..100 {
        s.extend(b"boot: hello, this is the boot log of a device\r\n");
        s.extend(b"[    0.000000] Linux version 6.1.0 (gcc 12.2.0) #1 SMP PREEMPT\r\n");
        s.extend(h("68 04 0B 00 00 00"));
        s.extend(h(
            "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16",
        ));
    }
    s.extend([0x00; 2000]);
    s.extend([0xFF; 2000]);
    s
}

#[test]
fn non_card_traffic_gives_no_frames_and_a_session_after_it_is_found() {
    let noise = non_card_traffic();
    assert_eq!(run(&noise), []);
    let mut s = noise.clone();
    s.extend(t0_session());
    let frames = run(&s);
    assert_eq!(kinds(&frames), kinds(&run(&t0_session())));
    assert_eq!(frames[0].span.start, noise.len() as u64);
}

#[test]
fn random_bytes_give_few_frames() {
    // Every 85 random bytes hold a TS and every 256 an ACK where one fits: hunting must
    // not take them (each costs frames and time).
    let mut state = 1;
    let noise: Vec<u8> = (0..1 << 18).map(|_| xorshift(&mut state)).collect();
    let frames = run(&noise);
    assert!(frames.len() < 60, "{} frames", frames.len());
}

#[test]
fn weak_atr_after_noise_needs_what_follows() {
    // A T=0-only ATR (no TCK) after noise is taken once an exchange confirms it...
    let mut s = h("12 34 56");
    s.extend(t0_session());
    assert_eq!(run(&s)[0].span, 3..7);
    // ...but not when the bytes after it make no sense.
    let frames = run(&h("12 34 56  3B 02 14 50  22 44 66 88 AA CC EE 11 33 55"));
    assert!(frames.iter().all(|f| f.kind != "atr"), "{frames:#?}");
    // At the very start of the input (or after `flush`) it is taken at once.
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    framer.feed(0, &h("3B 02 14 50"), &mut out);
    assert_eq!(kinds(&out), ["atr"]);
}

#[test]
fn lookup_tables_match_their_definitions() {
    for byte in 0..=255u8 {
        assert_eq!(
            cla_plausible(byte),
            !matches!(
                Cla::decode(byte).kind,
                ClassKind::Reserved | ClassKind::Invalid
            ),
            "{byte:02X}"
        );
        assert_eq!(decode_as(byte, true), from_inverse_convention(byte));
        assert_eq!(
            decode_as_branchless(byte, true),
            from_inverse_convention(byte)
        );
        assert_eq!(decode_as_branchless(byte, false), byte);
        assert_eq!(
            is_text(byte),
            matches!(byte, 0x20..=0x7E | b'\t' | b'\r' | b'\n')
        );
        assert_eq!(
            BAD_TA1[usize::from(byte)],
            atr::fi_from_code(byte >> 4).is_none() || atr::di_from_code(byte).is_none()
        );
        let word = u64::from_le_bytes([byte, 0x20, 0x7F, 0x1F, 0x80, byte ^ 0x40, 0, 0xFF]);
        for (k, raw) in word.to_le_bytes().into_iter().enumerate() {
            assert_eq!(printable(word) >> (8 * k + 7) & 1 == 1, is_printable(raw));
        }
    }
}

/// A framer in the hunting state with the given line settings.
fn hunting_framer(protocol: Option<LineProtocol>, edc: T1Edc, inverted: bool) -> LineFramer {
    let mut framer = LineFramer::new();
    framer.protocol = protocol;
    framer.edc = edc;
    framer.inverted = inverted;
    framer.after_silence = false;
    framer
}

/// Bytes that often start candidates: TS, ACK-able headers, SW1, runs.
fn candidate_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => proptest::sample::select(vec![
            0x3B, 0x3F, 0x03, 0x00, 0xFF, 0x60, 0x61, 0x90, 0x9F, 0xA4, 0x5B, 0x20, 0x73, 0x81,
            0x11, 0x13, 0x80, 0x02, 0x40, 0xC3,
        ]),
    ];
    prop_oneof![
        proptest::collection::vec(byte, 0..90),
        (
            proptest::collection::vec(fragment(), 1..6),
            any::<u8>(),
            0usize..300
        )
            .prop_map(|(parts, fill, run)| {
                let mut bytes = vec![fill; run % 40];
                bytes.extend(parts.concat());
                bytes
            }),
    ]
}

proptest! {
    #[test]
    fn quick_filter_never_skips_a_start_hunting_would_take(
        window in candidate_bytes(),
        protocol in prop_oneof![
            Just(None),
            Just(Some(LineProtocol::T0)),
            Just(Some(LineProtocol::T1)),
        ],
        crc in any::<bool>(),
        inverted in any::<bool>(),
    ) {
        let edc = if crc { T1Edc::Crc } else { T1Edc::Lrc };
        let framer = hunting_framer(protocol, edc, inverted);
        let dead = framer.dead_prefix(&window, 1000);
        prop_assert!(dead <= window.len());
        for p in 0..dead {
            let rest = &window[p..];
            for at_end in [false, true] {
                let verdict = framer.judge(rest, 1000 + p as u64, at_end);
                prop_assert!(matches!(verdict, HuntDecision::Reject), "position {p}, end {at_end}");
            }
        }
    }

    #[test]
    fn lrc_of_matches_the_logical_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        for inverted in [false, true] {
            let reading = Reading {
                window: &bytes,
                inverted,
                protocol: LineProtocol::T1,
                edc: T1Edc::Lrc,
                pps: false,
            };
            let expected = bytes.iter().fold(0u8, |a, b| a ^ decode_as(*b, inverted));
            prop_assert_eq!(lrc_of(reading, 0..bytes.len()), expected);
        }
    }

    #[test]
    fn noisy_sessions_split_stable(
        parts in proptest::collection::vec(
            prop_oneof![
                3 => fragment(),
                1 => Just(b"boot: hello, this is the boot log\r\n".to_vec()),
                1 => (any::<u8>(), 0usize..400).prop_map(|(b, n)| vec![b; n]),
            ],
            0..10,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let whole = run(&bytes);
        check_spans(&whole, bytes.len() as u64);
        prop_assert_eq!(run_split(&bytes, &cuts), whole.clone());
        // Byte by byte goes through the pending window and replays only.
        let every: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(run_split(&bytes, &every), whole);
    }
}

/// The lane forms of the header tests agree with the byte tests, in both conventions,
/// for every byte value.
#[test]
fn lane_header_tests_match_byte_tests() {
    for inverted in [false, true] {
        for first in (0u8..=255).step_by(16) {
            let raw: [u8; 16] = std::array::from_fn(|k| first + k as u8);
            let lanes = u8x16::new(raw);
            let cla = lanes_cla_implausible(lanes, inverted).to_bitmask();
            let ins = lanes_ins_invalid(lanes, inverted).to_bitmask();
            let sw1 = lanes_sw1(lanes, inverted).to_bitmask();
            for (k, &b) in raw.iter().enumerate() {
                let logical = decode_as(b, inverted);
                assert_eq!((cla >> k) & 1 == 1, !cla_plausible(logical), "CLA {b:02X}");
                assert_eq!((ins >> k) & 1 == 1, !ins::is_valid(logical), "INS {b:02X}");
                assert_eq!((sw1 >> k) & 1 == 1, is_sw1(logical), "SW1 {b:02X}");
            }
        }
    }
}
