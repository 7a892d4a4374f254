//! The diagnosis engine fed real streams (and line-counter changes) through the session, as
//! a live port would: each case asserts the knowledge entry it must raise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use hsmon::event::{Event, LineErrorCounts, TimedEvent};
use hsmon::hex;
use hsmon::session::Session;

fn feed(events: Vec<Event>) -> Session {
    let mut s = Session::new("test", 1 << 20);
    for (i, e) in events.into_iter().enumerate() {
        s.ingest(&TimedEvent::new(Duration::from_millis(i as u64 * 10), e));
    }
    s.flush_decoders();
    s
}

fn ids(s: &Session) -> Vec<String> {
    s.diagnoses()
        .iter()
        .map(|d| d.diagnosis.id.clone())
        .collect()
}

fn rx(h: &str) -> Event {
    Event::Rx(hex::parse(h).unwrap())
}

fn tx(h: &str) -> Event {
    Event::Tx(hex::parse(h).unwrap())
}

#[test]
fn stream_cases_raise_their_entries() {
    let errs = |frame: u64| {
        Event::LineErrors(Some(LineErrorCounts {
            frame,
            ..Default::default()
        }))
    };
    let cases: Vec<(&str, Vec<Event>, &str)> = vec![
        (
            "IEC 104 APCI",
            vec![rx("68 04 0B 00 00 00")],
            "iec104.apci_start",
        ),
        (
            "M-Bus long frame with a wrong checksum",
            vec![rx(
                "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9E 16",
            )],
            "mbus.checksum",
        ),
        (
            "M-Bus echo on a half-duplex line",
            vec![
                tx("68 03 03 68 53 FE 50 A1 16"),
                rx("68 03 03 68 53 FE 50 A1 16"),
            ],
            "mbus.echo",
        ),
        (
            "DL/T 645 abnormal reply",
            vec![rx("68 01 00 00 00 00 00 68 D1 01 35 D8 16")],
            "dlt645.abnormal_reply",
        ),
        (
            "0x68 as ASCII 'h' in a boot log",
            vec![Event::Rx(b"hello from the bootloader\r\n".to_vec())],
            "text.ascii_h",
        ),
        (
            "7E1 text read as 8N1: 'h' arrives as E8",
            vec![rx("E8 65 6C 6C 6F 20 77 6F 72 6C 64 0D 0A")],
            "uart.seven_vs_eight_bit",
        ),
        (
            "0x68 amid framing errors",
            vec![errs(0), rx("D7 68 13 F1 68 9A"), errs(4)],
            "uart.68_with_framing_errors",
        ),
        (
            "a run of 00 with framing errors: the port is far too fast",
            vec![errs(0), rx("00 00 00 00 00 00 00 00 00 00 00 00"), errs(12)],
            "uart.baud_too_high",
        ),
    ];
    for (name, events, want) in cases {
        let s = feed(events);
        assert!(
            ids(&s).iter().any(|i| i == want),
            "{name}: expected {want}, got {:?}",
            ids(&s)
        );
    }
}

#[test]
fn a_card_line_with_sw_6882_is_explained() {
    // ATR (T=0), then READ BINARY with CLA 0C answered straight away with 68 82.
    let s = feed(vec![rx("3B 02 14 50"), rx("0C B0 00 00 10"), rx("68 82")]);
    assert!(
        ids(&s).iter().any(|i| i == "iso7816.sw.6882"),
        "got {:?}",
        ids(&s)
    );
    let d = s
        .diagnoses()
        .iter()
        .find(|d| d.diagnosis.id == "iso7816.sw.6882")
        .unwrap();
    assert!(d.diagnosis.about_68, "SW1 = 68 sorts among the 0x68s");
}

#[test]
fn repeats_are_counted_not_listed() {
    let frame = "68 04 0B 00 00 00";
    let s = feed((0..14).map(|_| rx(frame)).collect());
    let apci: Vec<_> = s
        .diagnoses()
        .iter()
        .filter(|d| d.diagnosis.id == "iec104.apci_start")
        .collect();
    assert_eq!(apci.len(), 1);
    assert_eq!(apci[0].diagnosis.count, 14);
    let head = s.engine().unwrap().classifier.headline().unwrap();
    assert!(
        head.contains("IEC 60870-5-104") && head.contains("14 frames, 14 ok"),
        "{head}"
    );
}

#[test]
fn text_does_not_pass_for_a_bootloader_or_a_card() {
    // "every" contains 0x79 (STM32 ACK) and the log has 0x3B (';', an ATR's TS).
    let s = feed(vec![Event::Rx(
        b"boot: every device; ready; 'h' is 0x68\r\nnet: link up\r\n".to_vec(),
    )]);
    let protocols: Vec<_> = s.frames().iter().map(|f| f.frame.protocol.id()).collect();
    assert!(protocols.iter().all(|p| *p == "text"), "{protocols:?}");
}
