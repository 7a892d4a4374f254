//! `hsmon serial rfc2217://` against Debian's real ser2net fronting one end of a socat pty
//! link: bytes both ways (0xFF included, escaped as IAC IAC on the wire), a baud change that
//! reaches the pty ser2net holds, a SET-CONTROL that ser2net never answers (no modem lines on
//! a pty) timing out without stalling data, and ser2net restarted mid-session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use support::ser2net::{Mode, Ser2net};
use support::{Headless, PtyLink, hex, wait_until};

const T: Duration = Duration::from_secs(20);

/// Reads from the device side until `n` bytes have come.
fn read_n(dev: &mut std::fs::File, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < n {
        let k = dev.read(&mut buf).unwrap();
        assert!(k > 0, "the device side closed");
        got.extend_from_slice(&buf[..k]);
    }
    got
}

/// The output speed of the pty ser2net has open, read with tcgetattr from this side.
fn pty_speed(path: &std::path::Path) -> nix::sys::termios::BaudRate {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let t = nix::sys::termios::tcgetattr(f.as_raw_fd()).unwrap();
    nix::sys::termios::cfgetospeed(&t)
}

fn start() -> (PtyLink, Ser2net, Headless) {
    let link = PtyLink::new();
    let s2n = Ser2net::start(&link.a(), Mode::Rfc2217);
    let mut h = Headless::start(&["serial", &s2n.url(), "-b", "115200"]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    // The first settings record is ser2net's answer to SET-BAUDRATE and friends.
    let s = h.wait_for(T, |r| r["type"] == "settings");
    assert_eq!(s["baud"], 115200);
    assert_eq!(s["format"], "8N1");
    (link, s2n, h)
}

#[test]
fn bytes_both_ways_including_ff() {
    let (link, _s2n, mut h) = start();
    let mut dev = link.device();
    // Every byte value, 0xFF four times in a row among them.
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x68, 0xFF]);
    dev.write_all(&data).unwrap();
    h.wait_rx_len(data.len(), T);
    assert_eq!(h.rx_bytes(), data, "telnet escaping undone exactly");

    h.control("send FF 68 FF FF 00 0D 0A FF");
    let tx = h.wait_for(T, |r| r["type"] == "tx");
    assert_eq!(tx["hex"], "FF 68 FF FF 00 0D 0A FF");
    assert_eq!(
        read_n(&mut dev, 8),
        hex("FF 68 FF FF 00 0D 0A FF"),
        "IAC doubled on the wire, single on the port; binary mode keeps CR NUL LF as sent"
    );
}

#[test]
fn baud_change_reaches_the_remote_pty() {
    let (link, _s2n, mut h) = start();
    assert_eq!(pty_speed(&link.a()), nix::sys::termios::BaudRate::B115200);
    h.control("baud 9600");
    let s = h.wait_for(T, |r| r["type"] == "settings" && r["baud"] != 115200);
    assert_eq!(s["baud"], 9600, "what ser2net confirmed");
    assert_eq!(pty_speed(&link.a()), nix::sys::termios::BaudRate::B9600);
    h.control("baud 57600");
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 57600);
    assert_eq!(pty_speed(&link.a()), nix::sys::termios::BaudRate::B57600);
    // A break is acknowledged by the server's answer.
    h.control("break 50");
    h.wait_for(T, |r| r["id"] == "hsmon.break_sent");
}

#[test]
fn unanswered_set_control_times_out_without_stalling_data() {
    let (link, _s2n, mut h) = start();
    let mut dev = link.device();
    h.control("dtr off");
    // Right behind the unanswered request, data flows both ways at once.
    h.control("send 01 02 03");
    dev.write_all(b"ping").unwrap();
    h.wait_for(T, |r| r["type"] == "tx" && r["hex"] == "01 02 03");
    h.wait_rx_len(4, T);
    assert_eq!(read_n(&mut dev, 3), vec![1, 2, 3]);
    let data_done = h.records.len();
    assert!(
        !h.records.iter().any(|r| r["id"] == "hsmon.command_failed"),
        "data went through before the 1 s time-out: {:#?}",
        h.records
    );
    let failed = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    assert_eq!(failed["command"], "set DTR off");
    let text = failed["text"].as_str().unwrap();
    assert!(text.contains("did not answer SET-CONTROL (DTR)"), "{text}");
    assert!(text.contains("data flows on"), "{text}");
    assert!(h.records.len() > data_done);
    // The line stays usable, and the time-out was said once.
    dev.write_all(b"pong").unwrap();
    h.wait_rx_len(8, T);
    assert_eq!(h.rx_bytes(), b"pingpong");
    let said = h
        .records
        .iter()
        .filter(|r| r["id"] == "hsmon.command_failed")
        .count();
    assert_eq!(said, 1, "{:#?}", h.records);
}

#[test]
fn ser2net_restart_reconnects_and_restores_the_baud() {
    let (link, mut s2n, mut h) = start();
    h.control("baud 19200");
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 19200);

    s2n.stop();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "down");
    // Each attempt is refused while ser2net is away; that is said once, not every 500 ms.
    h.wait_for(T, |r| {
        r["type"] == "connection"
            && r["state"] == "retrying"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("connection refused by 127.0.0.1"))
    });
    std::thread::sleep(Duration::from_millis(1200));

    s2n.restart();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let refusals = h
        .records
        .iter()
        .filter(|r| r["state"] == "retrying" && r["reason"].as_str().unwrap().contains("refused"))
        .count();
    assert_eq!(refusals, 1, "{:#?}", h.records);
    // The session's rate is set again on the new connection and confirmed.
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 19200);
    wait_until(T, || {
        pty_speed(&link.a()) == nix::sys::termios::BaudRate::B19200
    })
    .unwrap();
    let mut dev = link.device();
    dev.write_all(&[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00])
        .unwrap();
    h.wait_rx_len(6, T);
    assert_eq!(h.rx_bytes(), hex("68 04 0B 00 00 00"));
    let (code, _) = h.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_raw_port_is_said_not_to_speak_rfc2217_and_still_carries_bytes() {
    let link = PtyLink::new();
    let s2n = Ser2net::start(&link.a(), Mode::Raw);
    let mut h = Headless::start(&["serial", &s2n.url()]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let said = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    let text = said["text"].as_str().unwrap();
    assert!(text.contains("did not agree to RFC 2217"), "{text}");
    assert!(text.contains("hsmon tcp"), "{text}");
    // hsmon's own negotiation bytes went to the raw port as data; the line still carries bytes.
    link.device().write_all(b"abc").unwrap();
    h.wait_rx_len(3, T);
    assert_eq!(h.rx_bytes(), b"abc");
}
