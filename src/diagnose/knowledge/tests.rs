//! The embedded knowledge base checked entry by entry, the condition language, the loader's
//! errors and properties of the matcher.

use crate::decode::frame::{FrameStatus, Protocol};
use crate::diagnose::observation::{MAX_OBSERVED_BYTES, Observation};
use crate::event::Direction;

use super::condition::{HexPattern, glob_match};
use super::loader::valid_id;

use super::*;
use crate::diagnose::observation::{
    BaudSuspect, FrameSeen, HandshakeDivergence, LineErrorWindow, TlsProbeResult,
};
use proptest::prelude::*;

/// Parsed once: the proptests match thousands of observations against it.
static KB: std::sync::LazyLock<Knowledge> =
    std::sync::LazyLock::new(|| Knowledge::embedded().unwrap());

fn kb() -> Knowledge {
    KB.clone()
}

fn ids(entries: &[&Entry]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

fn sw(sw: u16) -> Observation {
    Observation::sw(sw)
}

fn pcsc(code: u32) -> Observation {
    Observation::Pcsc { code }
}

fn frame(p: Protocol, kind: &str, bytes: &[u8]) -> FrameSeen {
    FrameSeen::new(p, kind, bytes)
}

fn obs(f: FrameSeen) -> Observation {
    Observation::Frame(f)
}

fn bad_cs() -> FrameStatus {
    FrameStatus::BadChecksum {
        expected: 1,
        found: 2,
    }
}

fn malformed() -> FrameStatus {
    FrameStatus::Malformed("bad".to_string())
}

fn hs(profile: &str, step: &str, sent: &[u8], expected: &[u8], got: &[u8]) -> Observation {
    Observation::Handshake(HandshakeDivergence::new(profile, step, sent, expected, got))
}

fn tls(port: Option<u16>, scheme: Option<&str>, reply: &[u8]) -> Observation {
    Observation::TlsProbe(TlsProbeResult::new(port, scheme, reply))
}

fn baud(configured: u32, estimated: Option<u32>) -> Observation {
    Observation::Baud(BaudSuspect {
        configured,
        estimated,
    })
}

fn line(framing: u64, parity: u64, even_only: bool) -> Observation {
    Observation::LineErrors(LineErrorWindow {
        bytes: 1000,
        errors: crate::event::LineErrorCounts {
            frame: framing,
            parity,
            ..Default::default()
        },
        fe_even_popcount_only: even_only,
    })
}

const MBUS_SND_UD: &[u8] = &[0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0x50, 0xA4, 0x16];
const MBUS_RSP_UD: &[u8] = &[
    0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07, 0x13,
    0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
];
const DLT_READ: &[u8] = &[
    0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x11, 0x04, 0x33, 0x33,
    0x34, 0x33, 0xB3, 0x16,
];
const DLT_REPLY: &[u8] = &[
    0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89, 0x67,
    0x45, 0x33, 0x9F, 0x16,
];
const DLT_ABNORMAL: &[u8] = &[
    0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0xD1, 0x01, 0x35, 0xD8, 0x16,
];
const IEC104_STARTDT_CON: &[u8] = &[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00];
const IEC101_VAR: &[u8] = &[0x68, 0x09, 0x09, 0x68, 0x08, 0x01, 0x64, 0x01, 0x07];

/// For every entry of the built-in file, an observation the session could produce that
/// must raise it. The test below also fails when an entry has no row here.
fn reachability_table() -> Vec<(&'static str, Observation)> {
    use Protocol as P;
    vec![
        ("iso7816.sw1.68", sw(0x6885)),
        ("iso7816.sw.6800", sw(0x6800)),
        ("iso7816.sw.6881", sw(0x6881)),
        ("iso7816.sw.6882", sw(0x6882)),
        ("iso7816.sw.6883", sw(0x6883)),
        ("iso7816.sw.6884", sw(0x6884)),
        ("nist.bef.check_err_cla_function", sw(0x6881)),
        (
            "iso7816.t0.procedure_68",
            obs(frame(P::Iso7816Line, "procedure", &[0x68, 0x82])),
        ),
        ("iso7816.sw.9000", sw(0x9000)),
        ("iso7816.sw.61xx", sw(0x6110)),
        ("iso7816.sw.6cxx", sw(0x6C10)),
        ("iso7816.sw.62xx", sw(0x6282)),
        ("iso7816.sw.63cx", sw(0x63C2)),
        ("iso7816.sw.63xx", sw(0x6300)),
        ("iso7816.sw.execution_error", sw(0x6581)),
        ("iso7816.sw.6700", sw(0x6700)),
        ("iso7816.sw.6982", sw(0x6982)),
        ("iso7816.sw.6983", sw(0x6983)),
        ("iso7816.sw.69xx", sw(0x6985)),
        ("iso7816.sw.6988", sw(0x6988)),
        ("iso7816.sw.6a82", sw(0x6A82)),
        ("iso7816.sw.6axx", sw(0x6A86)),
        ("iso7816.sw.6b00", sw(0x6B00)),
        ("iso7816.sw.6d00", sw(0x6D00)),
        ("iso7816.sw.6e00", sw(0x6E00)),
        ("iso7816.sw.6f00", sw(0x6F00)),
        ("iso7816.sw.proprietary", sw(0x9110)),
        ("iso7816.sw.invalid", sw(0x6000)),
        ("iso7816.sw.unknown", sw(0x6A8F)),
        (
            "iso7816.t0.null_procedure",
            obs(frame(P::Iso7816Line, "procedure", &[0x60])),
        ),
        (
            "iso7816.atr.inverse_as_direct",
            obs(frame(P::Atr, "atr", &[0x03, 0x64, 0x00])),
        ),
        (
            "iso7816.atr.bad_tck",
            obs(frame(P::Atr, "atr", &[0x3B, 0x80, 0x80, 0x01, 0x00]).with_status(bad_cs())),
        ),
        (
            "iso7816.atr.malformed",
            obs(frame(P::Atr, "atr", &[0x3B, 0xF0]).with_status(FrameStatus::Truncated)),
        ),
        (
            "apdu.malformed",
            obs(
                frame(P::Apdu, "command", &[0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0])
                    .with_status(malformed())
                    .with_direction(Direction::Tx),
            ),
        ),
        (
            "apdu.short_response",
            obs(frame(P::Apdu, "response", &[0x90]).with_status(FrameStatus::Truncated)),
        ),
        ("pcsc.w_reset_card", pcsc(0x8010_0068)),
        ("pcsc.w_removed_card", pcsc(0x8010_0069)),
        ("pcsc.w_unpowered_card", pcsc(0x8010_0067)),
        ("pcsc.w_unresponsive_card", pcsc(0x8010_0066)),
        ("pcsc.w_unsupported_card", pcsc(0x8010_0065)),
        ("pcsc.e_no_smartcard", pcsc(0x8010_000C)),
        ("pcsc.e_sharing_violation", pcsc(0x8010_000B)),
        ("pcsc.e_no_service", pcsc(0x8010_001D)),
        ("pcsc.e_service_stopped", pcsc(0x8010_001E)),
        ("pcsc.e_reader_unavailable", pcsc(0x8010_0017)),
        ("pcsc.e_not_transacted", pcsc(0x8010_0016)),
        ("pcsc.e_proto_mismatch", pcsc(0x8010_000F)),
        ("pcsc.e_timeout", pcsc(0x8010_000A)),
        ("pcsc.e_no_readers_available", pcsc(0x8010_002E)),
        ("pcsc.e_unknown_reader", pcsc(0x8010_0009)),
        ("pcsc.e_invalid_handle", pcsc(0x8010_0003)),
        ("pcsc.e_insufficient_buffer", pcsc(0x8010_0008)),
        ("pcsc.e_cancelled", pcsc(0x8010_0012)),
        ("pcsc.f_comm_error", pcsc(0x8010_0013)),
        ("pcsc.e_comm_data_lost", pcsc(0x8010_002F)),
        ("pcsc.w_security_violation", pcsc(0x8010_006A)),
        ("pcsc.w_chv", pcsc(0x8010_006C)),
        ("pcsc.e_not_ready", pcsc(0x8010_0010)),
        ("pcsc.e_unsupported_feature", pcsc(0x8010_0022)),
        ("pcsc.e_invalid_parameter", pcsc(0x8010_0011)),
        ("pcsc.f_internal_error", pcsc(0x8010_0014)),
        ("pcsc.e_windows_only", pcsc(0x8010_0033)),
        ("pcsc.error_broken_pipe", pcsc(0x0000_0109)),
        ("pcsc.s_success", pcsc(0)),
        ("pcsc.unknown", pcsc(0x8010_0024)),
        (
            "mbus.echo",
            obs(frame(P::Mbus, "control", MBUS_SND_UD)
                .with_echo(true)
                .with_expected(&[0xE5])),
        ),
        (
            "mbus.stale_response",
            obs(frame(P::Mbus, "long", MBUS_RSP_UD).with_expected(&[0xE5])),
        ),
        (
            "mbus.long_frame_unexpected",
            obs(frame(P::Mbus, "long", MBUS_RSP_UD).with_expected(&[0xE5])),
        ),
        (
            "mbus.checksum",
            obs(frame(P::Mbus, "long", MBUS_RSP_UD).with_status(bad_cs())),
        ),
        (
            "mbus.malformed",
            obs(frame(P::Mbus, "long", &[0x68, 0x15, 0x14, 0x68]).with_status(malformed())),
        ),
        (
            "mbus.no_answer",
            hs(
                "mbus",
                "snd_nke",
                &[0x10, 0x40, 0x01, 0x41, 0x16],
                &[0xE5],
                &[],
            ),
        ),
        (
            "mbus.garbage_instead_of_e5",
            hs(
                "mbus",
                "snd_nke",
                &[0x10, 0x40, 0x01, 0x41, 0x16],
                &[0xE5],
                &[0x78, 0x80],
            ),
        ),
        (
            "iec101.echo",
            obs(frame(P::Iec101, "variable", IEC101_VAR).with_echo(true)),
        ),
        (
            "iec101.variable_frame_unexpected",
            obs(frame(P::Iec101, "variable", IEC101_VAR).with_expected(&[0x10])),
        ),
        (
            "iec101.checksum",
            obs(frame(P::Iec101, "variable", IEC101_VAR).with_status(bad_cs())),
        ),
        (
            "iec101.sync_error",
            obs(frame(P::Iec101, "variable", &[0x68, 0x09]).with_status(FrameStatus::Truncated)),
        ),
        (
            "iec104.apci_start",
            obs(frame(P::Iec104, "u", IEC104_STARTDT_CON)),
        ),
        (
            "iec104.message_error",
            obs(frame(P::Iec104, "i", &[0x68, 0x02]).with_status(malformed())),
        ),
        (
            "iec104.no_startdt_con",
            hs(
                "iec104",
                "startdt",
                &[0x68, 0x04, 0x07, 0, 0, 0],
                IEC104_STARTDT_CON,
                &[],
            ),
        ),
        (
            "iec104.tls_mismatch",
            tls(Some(2404), Some("tls"), IEC104_STARTDT_CON),
        ),
        (
            "dlt645.echo",
            obs(frame(P::Dlt645, "request", DLT_READ).with_expected(&[0x68])),
        ),
        (
            "dlt645.abnormal_reply",
            obs(frame(P::Dlt645, "reply", DLT_ABNORMAL)),
        ),
        (
            "dlt645.frame_start",
            obs(frame(P::Dlt645, "reply", DLT_REPLY).with_expected(&[0xFE])),
        ),
        (
            "dlt645.checksum",
            obs(frame(P::Dlt645, "reply", DLT_REPLY).with_status(bad_cs())),
        ),
        (
            "dlt645.not_dlt645",
            obs(frame(P::Dlt645, "reply", &[0x68, 0x05, 0x05, 0x68]).with_status(malformed())),
        ),
        (
            "text.ascii_h",
            obs(frame(P::Text, "line", b"hello world\r\n")),
        ),
        (
            "text.where_binary_expected",
            obs(frame(P::Text, "line", b"Booting...\r\n").with_expected(&[0x79])),
        ),
        (
            "link.echo",
            obs(frame(P::Stm32Boot, "command", &[0x11, 0xEE]).with_echo(true)),
        ),
        (
            "link.unexpected_reply",
            obs(frame(P::Stm32Boot, "ack", &[0x79]).with_expected(&[0x1F])),
        ),
        (
            "frame.checksum",
            obs(frame(P::MtkBrom, "command", &[0xD7]).with_status(bad_cs())),
        ),
        (
            "frame.truncated",
            obs(frame(P::EspSlip, "packet", &[0xC0, 0x01]).with_status(FrameStatus::Truncated)),
        ),
        (
            "frame.malformed",
            obs(frame(P::Http, "response", b"HTTP/9").with_status(malformed())),
        ),
        (
            "handshake.divergence",
            hs("custom-device", "hello", &[0x01], &[0x02], &[0x03]),
        ),
        (
            "uart.genuine_68",
            Observation::IsolatedByte {
                byte: 0x68,
                framing_error: false,
            },
        ),
        (
            "uart.68_with_framing_errors",
            Observation::RepeatedByte {
                byte: 0x68,
                count: 12,
                framing_errors: 7,
            },
        ),
        (
            "uart.seven_vs_eight_bit",
            Observation::SevenBitPair { byte: 0x68 },
        ),
        (
            "uart.noise_glitch",
            Observation::IsolatedByte {
                byte: 0xF8,
                framing_error: false,
            },
        ),
        (
            "uart.break",
            Observation::IsolatedByte {
                byte: 0x00,
                framing_error: true,
            },
        ),
        ("uart.baud_too_high", baud(115_200, Some(9600))),
        ("uart.baud_too_low", baud(9600, Some(115_200))),
        ("uart.baud_mismatch", baud(115_200, None)),
        ("uart.clock_drift", baud(115_200, Some(111_000))),
        ("uart.parity_mismatch", line(12, 0, true)),
        ("uart.framing_errors", line(40, 0, false)),
        (
            "mtk.brom_echo_a0",
            hs("mtk-brom", "start", &[0xA0], &[0x5F], &[0xA0]),
        ),
        (
            "mtk.no_reply",
            hs("mtk-brom", "start", &[0xA0], &[0x5F], &[]),
        ),
        (
            "mtk.text_reply",
            hs("mtk-brom", "start", &[0xA0], &[0x5F], b"READY"),
        ),
        (
            "mtk.handshake_failed",
            hs("mtk-brom", "start", &[0xA0], &[0x5F], &[0x12]),
        ),
        ("stm32.no_ack", hs("stm32", "init", &[0x7F], &[0x79], &[])),
        (
            "stm32.text_instead_of_ack",
            hs("stm32", "init", &[0x7F], &[0x79], b"h"),
        ),
        (
            "stm32.nack_on_init",
            hs("stm32", "init", &[0x7F], &[0x79], &[0x1F]),
        ),
        (
            "stm32.checksum",
            obs(frame(P::Stm32Boot, "command", &[0x11, 0xEF]).with_status(bad_cs())),
        ),
        (
            "esp.invalid_head",
            hs("esp32", "sync", &[0xC0, 0x00], &[0xC0, 0x01], &[0x68, 0x02]),
        ),
        (
            "esp.not_download_mode",
            hs(
                "esp32",
                "sync",
                &[0xC0],
                &[0xC0],
                b"rst:0x1 (POWERON_RESET),boot:0x13",
            ),
        ),
        ("esp.no_reply", hs("esp8266", "sync", &[0xC0], &[0xC0], &[])),
        (
            "esp.checksum",
            obs(frame(P::EspSlip, "response", &[0xC0, 0x01, 0x03]).with_status(bad_cs())),
        ),
        (
            "tls.wss_to_ws_server",
            tls(Some(8080), Some("wss"), b"HTTP/1.1 400 Bad Request"),
        ),
        ("tls.ws_to_tls_server", tls(Some(443), Some("ws"), b"")),
        (
            "tls.http_reply",
            tls(Some(443), None, b"HTTP/1.1 400 Bad Request"),
        ),
        ("tls.reply_68", tls(Some(443), None, b"hello")),
        ("tls.not_tls", tls(Some(22), None, b"SSH-2.0-OpenSSH")),
        ("tls.closed_without_reply", tls(Some(2404), None, b"")),
        (
            "asic.preamble_mismatch",
            hs(
                "bm1366",
                "chip-id",
                &[0x55, 0xAA, 0x52, 0x05, 0, 0, 0x0A],
                &[0xAA, 0x55],
                &[0x68, 0x13],
            ),
        ),
        (
            "asic.no_chips",
            hs("bm1366", "enumerate", &[0x55, 0xAA], &[0xAA, 0x55], &[]),
        ),
        (
            "asic.baud_switch",
            hs(
                "bm1366",
                "baud-switch",
                &[0x55, 0xAA],
                &[0xAA, 0x55],
                &[0x80, 0x00, 0xF8],
            ),
        ),
    ]
}

#[test]
fn embedded_file_parses_with_unique_valid_ids() {
    let k = kb();
    assert!(
        k.entries().len() >= 120,
        "only {} entries",
        k.entries().len()
    );
    let mut seen = std::collections::HashSet::new();
    for e in k.entries() {
        assert!(seen.insert(e.id.clone()), "duplicate id {}", e.id);
        assert!(valid_id(&e.id), "bad id {}", e.id);
        assert_eq!(e.source, EMBEDDED_SOURCE);
        assert!(!e.title.trim().is_empty(), "{} has no title", e.id);
        assert!(!e.meaning.trim().is_empty(), "{} has no meaning", e.id);
        assert!(!e.reference.trim().is_empty(), "{} has no reference", e.id);
        assert!(!e.when.is_empty(), "{} has no condition", e.id);
        if e.severity != Severity::Info {
            assert!(!e.causes.is_empty(), "{} has no causes", e.id);
            assert!(!e.fixes.is_empty(), "{} has no fixes", e.id);
        }
    }
}

#[test]
fn every_entry_is_raised_by_some_observation() {
    let k = kb();
    let table = reachability_table();
    let listed: std::collections::HashSet<&str> = table.iter().map(|(id, _)| *id).collect();
    for e in k.entries() {
        assert!(
            listed.contains(e.id.as_str()),
            "entry {} has no row in reachability_table: add an observation that raises it",
            e.id
        );
    }
    for (id, o) in &table {
        assert!(k.get(id).is_some(), "table row {id} names no entry");
        let got = ids(&k.matches(o));
        assert!(
            got.iter().any(|g| g == id),
            "{id} not raised by {o:?}; got {got:?}"
        );
    }
}

#[test]
fn ranking_puts_the_most_specific_entry_first() {
    let k = kb();
    let cases: Vec<(Observation, Vec<&str>)> = vec![
        (
            sw(0x6882),
            vec![
                "iso7816.sw.6882",
                "iso7816.sw1.68",
                "nist.bef.check_err_cla_function",
            ],
        ),
        (pcsc(0x8010_0068), vec!["pcsc.w_reset_card"]),
        (sw(0x9000), vec!["iso7816.sw.9000"]),
        // Fallbacks: only the best "otherwise" answer, never "unknown" next to "proprietary".
        (sw(0x6701), vec!["iso7816.sw.proprietary"]),
        (sw(0x6A8F), vec!["iso7816.sw.unknown"]),
        (baud(115_200, Some(111_000)), vec!["uart.clock_drift"]),
        (
            Observation::IsolatedByte {
                byte: 0x68,
                framing_error: false,
            },
            vec!["uart.genuine_68"],
        ),
    ];
    for (o, want) in cases {
        assert_eq!(ids(&k.matches(&o)), want, "for {o:?}");
    }
    let firsts: Vec<(Observation, &str)> = vec![
        (
            obs(FrameSeen::new(Protocol::Mbus, "control", MBUS_SND_UD)
                .with_echo(true)
                .with_expected(&[0xE5])),
            "mbus.echo",
        ),
        (
            obs(FrameSeen::new(Protocol::Mbus, "long", MBUS_RSP_UD).with_expected(&[0xE5])),
            "mbus.stale_response",
        ),
        (
            tls(Some(2404), None, IEC104_STARTDT_CON),
            "iec104.tls_mismatch",
        ),
        (
            tls(None, Some("wss"), b"HTTP/1.1 400"),
            "tls.wss_to_ws_server",
        ),
        (
            hs("mtk-brom", "start", &[0xA0], &[0x5F], &[0xA0]),
            "mtk.brom_echo_a0",
        ),
        (
            hs("stm32", "init", &[0x7F], &[0x79], &[0x68]),
            "stm32.text_instead_of_ack",
        ),
        (
            obs(FrameSeen::new(Protocol::Mbus, "long", MBUS_RSP_UD).with_status(bad_cs())),
            "mbus.checksum",
        ),
    ];
    for (o, want) in firsts {
        let got = ids(&k.matches(&o));
        assert_eq!(
            got.first().map(String::as_str),
            Some(want),
            "for {o:?}: {got:?}"
        );
    }
    // A noise glitch value never explains a 0x68, and 0x68 never reads as noise.
    let glitch = Observation::IsolatedByte {
        byte: 0x68,
        framing_error: false,
    };
    assert!(!ids(&k.matches(&glitch)).contains(&"uart.noise_glitch".to_string()));
    // The generic frame checksum entry is a fallback: hidden when a protocol one matched.
    let m = ids(&k.matches(&obs(
        FrameSeen::new(Protocol::Dlt645, "reply", DLT_REPLY).with_status(bad_cs())
    )));
    assert!(m.contains(&"dlt645.checksum".to_string()));
    assert!(!m.contains(&"frame.checksum".to_string()));
}

#[test]
fn cla_and_ins_conditions_use_the_command() {
    let ext = r#"
[[entry]]
id = "site.sm_on_select"
domain = "site"
severity = "error"
title = "SM bits on SELECT"
meaning = "m"
causes = ["c"]
fixes = ["f"]
reference = "r"
codes = []
when = [{ observation = "sw", sw = "6882", cla_any_bits = "0C", ins = "A4" }]
"#;
    let k = kb().with_extension(ext, "site.toml").unwrap();
    let with_cmd = Observation::StatusWord(crate::diagnose::observation::StatusWordSeen {
        sw: 0x6882,
        cla: Some(0x0C),
        ins: Some(0xA4),
    });
    assert_eq!(
        ids(&k.matches(&with_cmd)).first().map(String::as_str),
        Some("site.sm_on_select")
    );
    let plain_cla = Observation::StatusWord(crate::diagnose::observation::StatusWordSeen {
        sw: 0x6882,
        cla: Some(0x00),
        ins: Some(0xA4),
    });
    assert!(!ids(&k.matches(&plain_cla)).contains(&"site.sm_on_select".to_string()));
    assert!(!ids(&k.matches(&sw(0x6882))).contains(&"site.sm_on_select".to_string()));
}

#[test]
fn explain_6882_finds_secure_messaging() {
    let k = kb();
    for q in [
        "6882",
        "68 82",
        "0x6882",
        " 6882 ",
        "SW_SECURE_MESSAGING_NOT_SUPPORTED",
    ] {
        let got = k.explain(q);
        assert_eq!(
            got.first().map(|e| e.id.as_str()),
            Some("iso7816.sw.6882"),
            "query {q:?}"
        );
        assert!(
            got.first()
                .is_some_and(|e| e.render_text().contains("secure messaging"))
        );
    }
    // The SW1 family follows the exact entry (its "68XX" code covers 6882).
    assert_eq!(
        ids(&k.explain("6882")),
        vec!["iso7816.sw.6882", "iso7816.sw1.68"]
    );
    assert_eq!(ids(&k.explain("6885")), vec!["iso7816.sw1.68"]);
}

#[test]
fn explain_reset_card_in_every_spelling() {
    let k = kb();
    for q in [
        "0x80100068",
        "80100068",
        "SCARD_W_RESET_CARD",
        "scard_w_reset_card",
        "W_RESET_CARD",
        "-2146434968",
        "ResetCard",
        "Card was reset.",
    ] {
        let got = k.explain(q);
        assert_eq!(ids(&got), vec!["pcsc.w_reset_card"], "query {q:?}");
        let text = got.first().map(|e| e.render_text()).unwrap_or_default();
        assert!(text.contains("SCardReconnect"), "{text}");
        assert!(text.contains("SCARD_LEAVE_CARD"), "{text}");
    }
}

#[test]
fn explain_68_lists_every_context_in_order() {
    let k = kb();
    let got = ids(&k.explain("68"));
    assert_eq!(k.explain("0x68").len(), got.len());
    for id in [
        "iso7816.sw1.68",
        "nist.bef.check_err_cla_function",
        "iso7816.t0.procedure_68",
        "pcsc.w_reset_card",
        "mbus.long_frame_unexpected",
        "mbus.echo",
        "iec101.variable_frame_unexpected",
        "iec104.apci_start",
        "dlt645.frame_start",
        "text.ascii_h",
        "uart.genuine_68",
        "uart.68_with_framing_errors",
        "uart.seven_vs_eight_bit",
        "uart.noise_glitch",
        "tls.reply_68",
        "mtk.text_reply",
        "stm32.text_instead_of_ack",
        "esp.invalid_head",
        "asic.preamble_mismatch",
    ] {
        assert!(
            got.contains(&id.to_string()),
            "explain 68 lacks {id}: {got:?}"
        );
    }
    let pos = |id: &str| got.iter().position(|g| g == id).unwrap_or(usize::MAX);
    assert_eq!(pos("iso7816.sw1.68"), 0);
    assert!(pos("iso7816.sw1.68") < pos("pcsc.w_reset_card"));
    assert!(pos("pcsc.w_reset_card") < pos("mbus.long_frame_unexpected"));
    assert!(pos("mbus.long_frame_unexpected") < pos("iec104.apci_start"));
    assert!(pos("dlt645.frame_start") < pos("uart.genuine_68"));
    // The UART explanations carry the folklore corrections.
    let genuine = k
        .get("uart.genuine_68")
        .map(Entry::render_text)
        .unwrap_or_default();
    assert!(genuine.contains("never as 0x68"));
    let bit7 = k
        .get("uart.seven_vs_eight_bit")
        .map(Entry::render_text)
        .unwrap_or_default();
    assert!(bit7.contains("0xE8") && bit7.contains("7E1"));
}

#[test]
fn explain_by_id_and_misses() {
    let k = kb();
    assert_eq!(ids(&k.explain("mbus.echo")), vec!["mbus.echo"]);
    assert!(k.explain("").is_empty());
    assert!(k.explain("   ").is_empty());
    assert!(k.explain("no such code at all").is_empty());
    assert_eq!(
        ids(&k.explain("sharing violation.")),
        vec!["pcsc.e_sharing_violation"]
    );
    assert_eq!(
        ids(&k.explain("Got byte 0x68 instead of ACK")),
        vec!["stm32.text_instead_of_ack"]
    );
}

#[test]
fn render_text_has_sections_numbered_and_wrapped() {
    let k = kb();
    let text = k
        .get("pcsc.w_reset_card")
        .map(Entry::render_text)
        .unwrap_or_default();
    assert!(text.starts_with("pcsc.w_reset_card [error] 0x80100068 SCARD_W_RESET_CARD"));
    assert!(text.contains("\nLikely causes, most likely first:\n  1. Another application"));
    assert!(text.contains("\nWhat to do:\n  1. Call SCardReconnect"));
    assert!(text.contains("\n  2. "));
    assert!(text.contains("\nReference: pcsc-lite"));
    // Only a single unbreakable word (a source's URL) may run past the width.
    for l in text.lines() {
        let one_word = l.split_whitespace().count() == 1;
        assert!(
            l.chars().count() <= WRAP_WIDTH || one_word,
            "line too long: {l}"
        );
    }
    // An info entry without causes or fixes leaves those headings out.
    let ok = k
        .get("iso7816.sw.9000")
        .map(Entry::render_text)
        .unwrap_or_default();
    assert!(!ok.contains("Likely causes") && !ok.contains("What to do"));
}

const USER_FILE: &str = r#"
[[entry]]
id = "iso7816.sw.6882"
domain = "iso7816"
severity = "warning"
title = "Our applet: open the SCP03 channel first"
meaning = "Site-specific."
causes = ["The SCP03 channel was not opened."]
fixes = ["Run the site's open-channel script."]
reference = "site wiki"
codes = ["6882"]
when = [{ observation = "sw", sw = "6882" }]

[[entry]]
id = "site.meter.6a8f"
domain = "site"
severity = "error"
title = "Meter applet: tariff table locked"
meaning = "Vendor status word."
causes = ["Locked table."]
fixes = ["Unlock it."]
reference = "vendor manual"
codes = ["6A8F"]
when = [{ observation = "sw", sw = "6A8F" }]
"#;

#[test]
fn user_extension_overrides_and_adds() {
    let base = kb();
    let n = base.entries().len();
    let pos = base
        .entries()
        .iter()
        .position(|e| e.id == "iso7816.sw.6882");
    let k = base.with_extension(USER_FILE, "user.toml").unwrap();
    assert_eq!(k.entries().len(), n + 1);
    let replaced = k.get("iso7816.sw.6882").unwrap();
    assert_eq!(replaced.title, "Our applet: open the SCP03 channel first");
    assert_eq!(replaced.source, "user.toml");
    assert_eq!(
        k.entries().iter().position(|e| e.id == "iso7816.sw.6882"),
        pos
    );
    assert_eq!(
        k.entries().last().map(|e| e.id.as_str()),
        Some("site.meter.6a8f")
    );
    // The new ordinary entry hides the "unknown SW" fallback.
    assert_eq!(ids(&k.matches(&sw(0x6A8F))), vec!["site.meter.6a8f"]);
    assert_eq!(ids(&k.explain("6A8F")), vec!["site.meter.6a8f"]);
    assert_eq!(
        k.explain("6882").first().map(|e| e.title.as_str()),
        Some("Our applet: open the SCP03 channel first")
    );
}

#[test]
fn load_file_reads_and_merges_or_names_the_path() {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("hsmon-kb-test-{}.toml", std::process::id()));
    std::fs::write(&path, USER_FILE).unwrap();
    let k = kb().load_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(k.get("site.meter.6a8f").is_some());
    let missing = dir.join("hsmon-kb-test-does-not-exist.toml");
    let err = kb().load_file(&missing).unwrap_err();
    assert!(matches!(err, KnowledgeError::Read { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("hsmon-kb-test-does-not-exist.toml") && msg.contains("Hint:"),
        "{msg}"
    );
    // A malformed extension leaves the error pointing into the user's file.
    let bad = kb().with_extension("[[entry]\n", "mine.toml").unwrap_err();
    assert_eq!(bad.location().map(|l| l.0), Some("mine.toml"));
}

const GOOD: &str = r#"[[entry]]
id = "site.one"
domain = "site"
severity = "warning"
title = "t"
meaning = "m"
causes = ["c"]
fixes = ["f"]
reference = "r"
codes = ["X1"]
when = [{ observation = "sw", sw = "6A8F" }]
"#;

/// 1-based line and column of the first occurrence of `marker` in `text`.
fn pos_of(text: &str, marker: &str) -> (usize, usize) {
    let off = text.find(marker).unwrap();
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

#[test]
fn malformed_files_name_file_line_column_and_expectation() {
    assert!(Knowledge::parse(GOOD, "good.toml").is_ok());
    let dup = format!("{GOOD}\n{GOOD}");
    let dup_marker_off = GOOD.len() + 1;
    let (dup_line, _) = pos_of(&dup[dup_marker_off..], "site.one");
    // (what, file text, marker the error must point at, words the message must contain)
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "toml syntax",
            GOOD.replace("[[entry]]", "[[entry]"),
            (1, 9),
            "expected `]`",
        ),
        (
            "unknown field",
            GOOD.replace("domain", "colour = 1\ndomain"),
            pos_of(&GOOD.replace("domain", "colour = 1\ndomain"), "colour"),
            "unknown field `colour`, expected one of",
        ),
        (
            "missing field",
            GOOD.replace("title = \"t\"\n", ""),
            (1, 1),
            "missing field `title`",
        ),
        (
            "bad severity",
            GOOD.replace("\"warning\"", "\"fatal\""),
            pos_of(&GOOD.replace("\"warning\"", "\"fatal\""), "\"fatal\""),
            "expected one of `info`, `warning`, `error`",
        ),
        (
            "wrong type",
            GOOD.replace("causes = [\"c\"]", "causes = \"c\""),
            pos_of(&GOOD.replace("causes = [\"c\"]", "causes = \"c\""), "\"c\""),
            "expected a sequence",
        ),
        (
            "bad hex digit",
            GOOD.replace("\"6A8F\"", "\"68G2\""),
            pos_of(GOOD, "\"6A8F\""),
            "bad hex pattern \"68G2\" in `sw`",
        ),
        (
            "wrong pattern width",
            GOOD.replace("\"6A8F\"", "\"688\""),
            pos_of(GOOD, "\"6A8F\""),
            "expected whole bytes",
        ),
        (
            "too wide for sw",
            GOOD.replace("\"6A8F\"", "\"6A8F00\""),
            pos_of(GOOD, "\"6A8F\""),
            "expected exactly 4 hex digits",
        ),
        (
            "empty pattern list",
            GOOD.replace("\"6A8F\"", "[]"),
            pos_of(GOOD, "\"6A8F\""),
            "expected at least one pattern",
        ),
        (
            "duplicate id",
            dup.clone(),
            (dup_line + GOOD.matches('\n').count() + 1, 6),
            "duplicate id \"site.one\" (first defined on line 2)",
        ),
        (
            "unknown observation kind",
            GOOD.replace("\"sw\", sw = \"6A8F\"", "\"card\""),
            pos_of(GOOD, "\"sw\""),
            "unknown observation kind \"card\": expected one of sw, pcsc, frame",
        ),
        (
            "field of another kind",
            GOOD.replace("\"sw\"", "\"pcsc\""),
            pos_of(GOOD, "{ observation"),
            "`sw` does not apply to observation \"pcsc\": expected one of code",
        ),
        (
            "unknown condition field",
            GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", bogus = 1"),
            pos_of(
                &GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", bogus = 1"),
                "bogus",
            ),
            "unknown field `bogus`, expected one of `observation`",
        ),
        (
            "unknown protocol",
            GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", protocol = \"modbus\""),
            pos_of(
                &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", protocol = \"modbus\""),
                "\"modbus\"",
            ),
            "invalid value \"modbus\" for `protocol`: expected one of apdu, atr",
        ),
        (
            "bad status",
            GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", status = \"broken\""),
            pos_of(
                &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", status = \"broken\""),
                "\"broken\"",
            ),
            "expected one of ok, bad_checksum, truncated, malformed",
        ),
        (
            "bad direction",
            GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", direction = \"in\""),
            pos_of(
                &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"frame\", direction = \"in\""),
                "\"in\"",
            ),
            "expected rx or tx",
        ),
        (
            "port out of range",
            GOOD.replace("\"sw\", sw = \"6A8F\"", "\"tls_probe\", port = 70000"),
            pos_of(
                &GOOD.replace("\"sw\", sw = \"6A8F\"", "\"tls_probe\", port = 70000"),
                "70000",
            ),
            "port 70000 is outside 0-65535",
        ),
        (
            "negative percentage",
            GOOD.replace(
                "\"sw\", sw = \"6A8F\"",
                "\"baud\", deviation_min_pct = -1.0",
            ),
            pos_of(
                &GOOD.replace(
                    "\"sw\", sw = \"6A8F\"",
                    "\"baud\", deviation_min_pct = -1.0",
                ),
                "-1.0",
            ),
            "expected a non-negative percentage",
        ),
        (
            "empty when",
            GOOD.replace("[{ observation = \"sw\", sw = \"6A8F\" }]", "[]"),
            pos_of(GOOD, "[{ observation"),
            "entry \"site.one\" has an empty `when`: expected at least one condition",
        ),
        (
            "bad id",
            GOOD.replace("\"site.one\"", "\"NoDots\""),
            pos_of(GOOD, "\"site.one\""),
            "invalid value \"NoDots\" for `id`: expected a dotted lower-case id",
        ),
        (
            "zero cla mask",
            GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", cla_any_bits = \"00\""),
            pos_of(
                &GOOD.replace("sw = \"6A8F\"", "sw = \"6A8F\", cla_any_bits = \"00\""),
                "\"00\"",
            ),
            "expected one non-zero hex byte",
        ),
    ];
    for (what, text, (line, col), needle) in cases {
        let err = match Knowledge::parse(&text, "user-kb.toml") {
            Ok(_) => panic!("{what}: parsed, expected an error"),
            Err(e) => e,
        };
        let msg = err.to_string();
        let at = format!("user-kb.toml:{line}:{col}: ");
        assert!(msg.starts_with(&at), "{what}: expected {at:?}, got {msg}");
        assert!(msg.contains(needle), "{what}: {needle:?} not in {msg}");
        assert!(msg.contains("Hint: "), "{what}: no hint in {msg}");
        assert_eq!(err.location(), Some(("user-kb.toml", line, col)), "{what}");
    }
}

#[test]
fn patterns_globs_and_codes() {
    let p = HexPattern::parse("68 XX XX 68", None).unwrap();
    assert_eq!(p.score_prefix(&[0x68, 1, 1, 0x68, 0x53]), Some(4));
    assert_eq!(p.score_prefix(&[0x68, 1, 1]), None);
    assert_eq!(p.score_prefix(&[0x10, 1, 1, 0x68]), None);
    let n = HexPattern::parse("!C0", None).unwrap();
    assert_eq!(n.score_prefix(&[0x68]), Some(SCORE_NEGATED));
    assert_eq!(n.score_prefix(&[0xC0, 0x01]), None);
    let w = HexPattern::parse("68xX", Some(2)).unwrap();
    assert_eq!(w.score_exact(&[0x68, 0x82]), Some(2));
    assert_eq!(w.score_exact(&[0x68]), None);
    assert!(HexPattern::parse("", None).is_err());
    assert!(HexPattern::parse(&"00".repeat(MAX_OBSERVED_BYTES + 1), None).is_err());
    assert!(glob_match("mtk*", "MTK-BROM"));
    assert!(glob_match("*baud*", "baud-switch"));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
    assert!(!glob_match("stm32", "stm32f4"));
    assert!(glob_match("*", ""));
    assert_eq!(normalise_code(" 0x80100068 "), "80100068");
    assert_eq!(normalise_code("SCARD_W_RESET_CARD"), "W_RESET_CARD");
    assert_eq!(normalise_code("-2146434968"), "80100068");
    assert_eq!(normalise_code("0xZZ"), "0XZZ");
    let c = HexPattern::from_code("63CX").unwrap();
    assert!(c.covers_code("63C2"));
    assert!(!c.covers_code("6382"));
    assert!(!c.covers_code("63C"));
    assert!(HexPattern::from_code("EXEC").is_none());
    assert!(HexPattern::from_code("XX").is_none());
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..80)
}

fn arb_observation() -> impl Strategy<Value = Observation> {
    let protocol = prop::sample::select(Protocol::ALL.to_vec());
    let status = prop_oneof![
        Just(FrameStatus::Ok),
        Just(FrameStatus::Truncated),
        Just(malformed()),
        Just(bad_cs()),
    ];
    prop_oneof![
        (any::<u16>(), any::<Option<u8>>(), any::<Option<u8>>()).prop_map(|(sw, cla, ins)| {
            Observation::StatusWord(crate::diagnose::observation::StatusWordSeen { sw, cla, ins })
        }),
        any::<u32>().prop_map(|code| Observation::Pcsc { code }),
        (
            protocol,
            status,
            arb_bytes(),
            any::<bool>(),
            prop::option::of(arb_bytes())
        )
            .prop_map(|(p, s, b, echo, exp)| {
                let mut f = FrameSeen::new(p, "x", &b).with_status(s).with_echo(echo);
                if let Some(e) = exp {
                    f = f.with_expected(&e);
                }
                Observation::Frame(f)
            }),
        (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(f, p, e)| line(f, p, e)),
        (any::<u32>(), any::<Option<u32>>()).prop_map(|(c, e)| baud(c, e)),
        any::<u8>().prop_map(|byte| Observation::SevenBitPair { byte }),
        (any::<u8>(), any::<bool>()).prop_map(|(byte, framing_error)| {
            Observation::IsolatedByte {
                byte,
                framing_error,
            }
        }),
        (any::<u8>(), any::<u64>(), any::<u64>()).prop_map(|(byte, count, framing_errors)| {
            Observation::RepeatedByte {
                byte,
                count,
                framing_errors,
            }
        }),
        (".{0,12}", ".{0,12}", arb_bytes(), arb_bytes(), arb_bytes())
            .prop_map(|(p, s, a, b, c)| hs(&p, &s, &a, &b, &c)),
        (
            any::<Option<u16>>(),
            prop::option::of(".{0,6}"),
            arb_bytes()
        )
            .prop_map(|(port, scheme, reply)| tls(port, scheme.as_deref(), &reply)),
    ]
}

/// Frame observations as a session makes them: every protocol and status, the kinds the
/// decoders write, bytes that often start with a frame start.
fn arb_frame_observation() -> impl Strategy<Value = Observation> {
    let kind = prop::sample::select(vec![
        "long", "short", "control", "ack", "fixed", "variable", "line", "i", "s", "u", "atr",
        "pps", "sw", "header", "response", "command", "request", "sync", "nack", "echo", "reply",
        "record", "x",
    ]);
    let status = prop_oneof![
        Just(FrameStatus::Ok),
        Just(FrameStatus::Truncated),
        Just(malformed()),
        Just(bad_cs()),
    ];
    let start = prop::sample::select(vec![
        0x68u8, 0x10, 0xE5, 0x3B, 0x16, 0x7F, 0x79, 0x1F, 0xC0, 0x00,
    ]);
    (
        prop::sample::select(Protocol::ALL.to_vec()),
        kind,
        status,
        start,
        arb_bytes(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(arb_bytes()),
    )
        .prop_map(|(p, kind, s, start, rest, echo, tx, exp)| {
            let mut bytes = vec![start];
            bytes.extend(rest);
            let mut f = FrameSeen::new(p, kind, &bytes)
                .with_status(s)
                .with_echo(echo);
            if tx {
                f = f.with_direction(Direction::Tx);
            }
            if let Some(e) = exp {
                f = f.with_expected(&e);
            }
            Observation::Frame(f)
        })
}

/// `ranked` without any index: every entry scored.
fn ranked_by_scanning<'k>(k: &'k Knowledge, obs: &Observation) -> Vec<(i64, &'k str)> {
    let scored: Vec<(i64, usize, bool)> = k
        .entries()
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.score(obs).map(|s| (s, i, e.fallback)))
        .collect();
    let mut chosen: Vec<(i64, usize)> = if scored.iter().any(|x| !x.2) {
        scored.iter().filter(|x| !x.2).map(|x| (x.0, x.1)).collect()
    } else {
        let best = scored.iter().map(|x| x.0).max();
        scored
            .iter()
            .filter(|x| Some(x.0) == best)
            .map(|x| (x.0, x.1))
            .collect()
    };
    chosen.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    chosen
        .into_iter()
        .map(|(s, i)| (s, k.entries()[i].id.as_str()))
        .collect()
}

fn assert_index_agrees(k: &Knowledge, obs: &Observation) {
    let want = ranked_by_scanning(k, obs);
    let got: Vec<(i64, &str)> = k
        .ranked(obs)
        .iter()
        .map(|m| (m.score, m.entry.id.as_str()))
        .collect();
    assert_eq!(got, want, "{obs:?}");
    assert_eq!(
        k.best(obs).map(|e| e.id.as_str()),
        want.first().map(|w| w.1),
        "{obs:?}"
    );
    if let Observation::Frame(f) = obs {
        let may = k.may_match_frame(
            f.protocol,
            &f.status,
            f.direction,
            f.echo,
            f.expected.is_some(),
        );
        assert!(may || want.is_empty(), "{obs:?}");
    }
}

#[test]
fn indexed_matching_equals_scanning_every_entry_on_the_reachability_table() {
    for (_, obs) in reachability_table() {
        assert_index_agrees(&KB, &obs);
    }
}

#[test]
fn frame_slots_are_distinct_and_a_plain_frame_has_few_candidates() {
    let mut seen = vec![false; FrameSlot::COUNT];
    for slot in FrameSlot::all() {
        let i = slot.index();
        assert!(i < FrameSlot::COUNT && !seen[i], "{slot:?}");
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s));
    // A valid received M-Bus frame, no echo, nothing expected: nothing to score.
    let plain = FrameSeen::new(Protocol::Mbus, "long", &[0x68, 0x03, 0x03, 0x68]);
    assert!(KB.candidates(&Observation::Frame(plain)).is_empty());
}

/// Pieces of knowledge files, so random files get past the TOML parser into validation.
fn arb_kb_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("[[entry]]\n".to_string()),
        Just(GOOD.to_string()),
        Just("id = \"a.b\"\n".to_string()),
        Just("when = [{ observation = \"frame\", bytes = \"68 XX\" }]\n".to_string()),
        Just(
            "when = [{ observation = \"handshake\", profile = [\"*\"], got = \"!C0\" }]\n"
                .to_string()
        ),
        Just("{ observation = \"baud\", deviation_min_pct = 1e309 }".to_string()),
        Just("port = [1, 2, 65536]\n".to_string()),
        Just("sw = \"".to_string()),
        "[0-9A-Fa-fXx! ]{0,10}".prop_map(|s| format!("\"{s}\"\n")),
        ".{0,20}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parsing_arbitrary_text_never_panics(s in "\\PC{0,400}") {
        let _ = Knowledge::parse(&s, "fuzz.toml");
    }

    #[test]
    fn parsing_knowledge_like_text_never_panics_and_errors_point_inside(s in arb_kb_text()) {
        if let Err(e) = Knowledge::parse(&s, "fuzz.toml") {
            let (file, line, col) = e.location().unwrap();
            prop_assert_eq!(file, "fuzz.toml");
            prop_assert!(line >= 1 && line <= s.lines().count().max(1) + 1);
            prop_assert!(col >= 1);
        }
    }

    #[test]
    fn matching_and_explaining_never_panic(o in arb_observation(), q in "\\PC{0,40}") {
        let k = &*KB;
        let ranked = k.ranked(&o);
        // Ranked best first, and all of the observation's kind.
        prop_assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
        prop_assert!(ranked.iter().all(|m| m.entry.when.iter().any(|c| c.observation_kind() == o.kind())));
        let _ = k.explain(&q);
    }

    /// The per-(protocol, status) index and `best` answer exactly as scoring every
    /// entry does.
    #[test]
    fn indexed_matching_equals_scanning_every_entry(
        o in prop_oneof![arb_frame_observation(), arb_observation()]
    ) {
        assert_index_agrees(&KB, &o);
    }

    #[test]
    fn hex_patterns_never_panic(s in "\\PC{0,40}", b in arb_bytes()) {
        if let Ok(p) = HexPattern::parse(&s, None) {
            let _ = p.score_prefix(&b);
            let _ = p.score_exact(&b);
        }
        let _ = glob_match(&s, "mtk-brom");
    }
}
