//! The serial source end to end over real pseudo-terminals: hsmon --headless reads what a
//! "device" writes, sends what it is told to, reconfigures the port, and survives the port
//! vanishing and returning.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{Headless, PtyLink, path_str, wait_until};

const T: Duration = Duration::from_secs(20);

#[test]
fn one_megabyte_arrives_complete_and_in_order() {
    let link = PtyLink::new();
    let mut h = Headless::start(&["serial", path_str(&link.a()), "-b", "115200"]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    // Every byte value, in a pattern that shows reordering as well as loss.
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut dev = link.device();
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || dev.write_all(&data).unwrap())
    };
    h.wait_rx_len(data.len(), Duration::from_secs(60));
    writer.join().unwrap();
    let got = h.rx_bytes();
    assert_eq!(got.len(), data.len());
    assert!(
        got == data,
        "bytes differ at {:?}",
        got.iter().zip(&data).position(|(a, b)| a != b)
    );
    assert!(
        !h.records.iter().any(|r| r["id"] == "hsmon.overrun"),
        "nothing dropped"
    );
    let (code, _) = h.stop();
    assert_eq!(code, 0);
}

#[test]
fn transmit_reaches_the_device_and_is_recorded() {
    let link = PtyLink::new();
    let mut dev = link.device();
    let mut h = Headless::start(&["serial", path_str(&link.a())]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    h.control("send 68 04 04 68");
    h.control("send-text AT\\r");
    let tx = h.wait_for(T, |r| r["type"] == "tx");
    assert_eq!(tx["hex"], "68 04 04 68");
    h.wait_for(T, |r| r["type"] == "tx" && r["hex"] == "41 54 0D");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    wait_until(T, || {
        if let Ok(n) = dev.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.len() >= 7
    })
    .unwrap();
    assert_eq!(got, [0x68, 0x04, 0x04, 0x68, b'A', b'T', b'\r']);
}

/// Issue 20: `--line 7E1` at start on a pty (which keeps 8N1) is said, as the live `format`
/// command is, instead of a session that silently runs at 8N1.
#[test]
fn start_settings_the_port_kept_are_said() {
    let link = PtyLink::new();
    let mut h = Headless::start(&["serial", path_str(&link.a()), "--line", "7E1"]);
    let refused = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    let text = refused["text"].as_str().unwrap();
    assert!(
        text.contains("7E1") && text.contains("kept 115200 8N1"),
        "{refused}"
    );
    let settings = h.wait_for(T, |r| r["type"] == "settings");
    assert_eq!(
        settings["format"], "8N1",
        "the record says what the port has"
    );
}

#[test]
fn settings_commands_are_acknowledged_by_the_port() {
    let link = PtyLink::new();
    let mut h = Headless::start(&["serial", path_str(&link.a()), "-b", "115200"]);
    let first = h.wait_for(T, |r| r["type"] == "settings");
    assert_eq!(first["baud"], 115200);
    assert_eq!(first["format"], "8N1");
    // A pty keeps no UART error counters; that is said once, not left blank.
    let counters = h.wait_for(T, |r| r["id"] == "hsmon.line_errors");
    assert_eq!(counters["available"], false);
    h.control("baud 9600");
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 9600);
    h.control("baud 74880");
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 74880);
    // A Linux pty keeps 8N1 whatever is asked: hsmon must say so, not pretend.
    h.control("format 7E1");
    let refused = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    assert!(
        refused["text"].as_str().unwrap().contains("kept 74880 8N1"),
        "{refused}"
    );
    // A pty has no modem lines: the toggle is refused with a reason, never silently.
    h.control("dtr off");
    let dtr = h.wait_for(T, |r| {
        r["id"] == "hsmon.command_failed" && r["command"] == "set DTR off"
    });
    let text = dtr["text"].as_str().unwrap();
    assert!(text.contains("no modem control lines"), "{dtr}");
    // Issue 20: the OS's word for it (ENOTTY, "Not a typewriter") is not echoed.
    assert!(!text.contains("typewriter"), "{dtr}");
}

#[test]
fn vanished_port_reconnects_without_losing_bytes() {
    let mut link = PtyLink::new();
    let mut h = Headless::start(&["serial", path_str(&link.a())]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let before: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    link.device().write_all(&before).unwrap();
    h.wait_rx_len(before.len(), T);

    link.kill();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "down");
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "retrying");
    // While the port is away, a transmit is refused with a reason (not lost silently).
    h.control("send 01 02");
    h.wait_for(T, |r| {
        r["id"] == "hsmon.command_failed"
            && r["text"].as_str().unwrap_or("").contains("disconnected")
    });

    link.start();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let mut dev = link.device();
    let after: Vec<u8> = (0..5000u32).map(|i| (i % 241) as u8 ^ 0x68).collect();
    dev.write_all(&after).unwrap();
    h.wait_rx_len(before.len() + after.len(), T);
    let mut all = before.clone();
    all.extend_from_slice(&after);
    assert_eq!(h.rx_bytes(), all, "every byte before and after the gap");

    // And the send path works again on the new port.
    h.control("send 68 16");
    h.wait_for(T, |r| r["type"] == "tx" && r["hex"] == "68 16");
    let mut buf = [0u8; 2];
    dev.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [0x68, 0x16]);
}

#[test]
fn frames_and_diagnoses_are_records() {
    let link = PtyLink::new();
    let mut h = Headless::start(&["serial", path_str(&link.a())]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let mut dev = link.device();
    // A DL/T 645 normal reply, then an IEC 104 STARTDT con.
    dev.write_all(&[
        0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89,
        0x67, 0x45, 0x33, 0x9F, 0x16,
    ])
    .unwrap();
    let f = h.wait_for(T, |r| r["type"] == "frame");
    assert_eq!(f["protocol"], "dlt645");
    assert_eq!(f["status"], "ok");
    assert_eq!(
        (f["start"].as_u64(), f["end"].as_u64()),
        (Some(0), Some(20))
    );
    assert!(
        f["summary"].as_str().unwrap().contains("001234.56 kWh"),
        "{f}"
    );
    dev.write_all(&[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00])
        .unwrap();
    let e = h.wait_for(T, |r| {
        r["type"] == "event" && r["id"] == "iec104.apci_start"
    });
    assert_eq!(e["about_68"], true);
    assert_eq!(e["start"], 20);
}
