//! `hsmon tcp HOST:PORT` over loopback: an IEC 60870-5-104 peer (a test thread playing the
//! station) whose APCI frames are decoded and recognised, a ser2net raw port fronting a pty,
//! a peer that drops and returns, and connect errors that name the cause and the fix.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use hsmon::event::{ConnectionState, Event};
use hsmon::session::Session;
use support::ser2net::{Mode, Ser2net, free_port};
use support::{Headless, PtyLink, hex, run_hsmon};

const T: Duration = Duration::from_secs(20);

/// STARTDT con, an I-frame (GI con, N(S)=0, N(R)=1) and TESTFR act: protocols.md §2.2.
const STATION: [&str; 3] = [
    "68 04 0B 00 00 00",
    "68 0E 00 00 02 00 64 01 07 00 01 00 00 00 00 14",
    "68 04 43 00 00 00",
];

/// A station on loopback: accepts one connection, waits for STARTDT act, then sends
/// [`STATION`] and returns what it received.
fn station() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut got = [0u8; 6];
        s.read_exact(&mut got).unwrap();
        for f in STATION {
            s.write_all(&hex(f)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stay until hsmon goes.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        got.to_vec()
    });
    (port, t)
}

#[test]
fn iec104_over_tcp_is_framed_both_ways() {
    let (port, st) = station();
    let mut h = Headless::start(&["tcp", &format!("127.0.0.1:{port}")]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    h.control("send 68 04 07 00 00 00"); // STARTDT act
    let sent = h.wait_for(T, |r| r["type"] == "frame" && r["dir"] == "tx");
    assert_eq!(sent["protocol"], "iec104");
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let f = h.wait_for(T, |r| r["type"] == "frame" && r["dir"] == "rx");
        frames.push(f);
    }
    for f in &frames {
        assert_eq!(f["protocol"], "iec104", "{f}");
        assert_eq!(f["status"], "ok", "{f}");
    }
    assert_eq!(
        frames
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["u", "i", "u"],
        "{frames:#?}"
    );
    assert_eq!(
        (frames[1]["start"].as_u64(), frames[1]["end"].as_u64()),
        (Some(6), Some(22))
    );
    // The 0x68 every APCI starts with is explained as the frame start it is.
    assert!(
        h.records
            .iter()
            .any(|r| r["id"] == "iec104.apci_start" && r["dir"] == "rx" && r["about_68"] == true),
        "{:#?}",
        h.records
    );
    // A line-settings command is refused with the way to a remote port with baud control.
    h.control("baud 9600");
    let refused = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    assert!(
        refused["text"].as_str().unwrap().contains("rfc2217://"),
        "{refused}"
    );
    let (code, _) = h.stop();
    assert_eq!(code, 0);
    assert_eq!(st.join().unwrap(), hex("68 04 07 00 00 00"));
}

#[test]
fn the_classifier_says_iec_104() {
    let (port, _st) = station();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let session = rt.block_on(async {
        let clock = hsmon::clock::Clock::start();
        let target = format!("127.0.0.1:{port}").parse().unwrap();
        let mut handle = hsmon::source::tcp::spawn(target, clock).await.unwrap();
        let mut s = Session::new(handle.name.clone(), 1 << 20);
        handle
            .commands
            .send(hsmon::event::Command::Transmit(hex("68 04 07 00 00 00")))
            .await
            .unwrap();
        let mut rx = 0;
        while rx < 28 {
            let ev = tokio::time::timeout(T, handle.events.recv())
                .await
                .unwrap()
                .unwrap();
            if let Event::Rx(b) = &ev.event {
                rx += b.len();
            }
            s.ingest(&ev);
        }
        // Frames held for arbitration leave when the line goes quiet (or at the end).
        s.flush_decoders();
        s
    });
    assert_eq!(session.connection, ConnectionState::Up);
    assert_eq!(session.source_name, format!("tcp 127.0.0.1:{port}"));
    let head = session.engine().unwrap().classifier.headline().unwrap();
    assert!(head.contains("IEC 60870-5-104"), "{head}");
    // Only what the station sent counts: STARTDT act is hsmon's own, never evidence about
    // the other end; three frames received.
    assert!(head.contains("3 frames, 3 ok"), "{head}");
}

#[test]
fn a_ser2net_raw_port_carries_bytes_both_ways() {
    let link = PtyLink::new();
    let s2n = Ser2net::start(&link.a(), Mode::Raw);
    let mut h = Headless::start(&["tcp", &s2n.addr()]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let mut dev = link.device();
    let data: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
    dev.write_all(&data).unwrap();
    h.wait_rx_len(data.len(), T);
    assert_eq!(h.rx_bytes(), data);
    h.control("send 68 FF 16");
    h.wait_for(T, |r| r["type"] == "tx" && r["hex"] == "68 FF 16");
    let mut got = [0u8; 3];
    dev.read_exact(&mut got).unwrap();
    assert_eq!(got, [0x68, 0xFF, 0x16], "raw: no telnet escaping");
}

#[test]
fn a_peer_that_drops_is_reconnected() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut h = Headless::start(&["tcp", &format!("127.0.0.1:{port}")]);
    let (mut first, _) = l.accept().unwrap();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    first.write_all(b"one").unwrap();
    h.wait_rx_len(3, T);
    // The peer goes away altogether: nothing listens until it returns.
    drop(l);
    drop(first);
    let down = h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "down");
    assert_eq!(down["reason"], "the peer closed the connection");
    h.wait_for(T, |r| {
        r["state"] == "retrying" && r["reason"].as_str().unwrap_or("").contains("refused")
    });
    h.control("send 01");
    h.wait_for(T, |r| {
        r["id"] == "hsmon.command_failed"
            && r["text"].as_str().unwrap_or("").contains("disconnected")
    });
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (mut second, _) = l.accept().unwrap();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    second.write_all(b"two").unwrap();
    h.wait_rx_len(6, T);
    assert_eq!(h.rx_bytes(), b"onetwo");
    h.control("send 02");
    let mut b = [0u8; 1];
    second.read_exact(&mut b).unwrap();
    assert_eq!(b, [2]);
}

#[test]
fn connect_errors_name_the_cause_and_exit_3() {
    let port = free_port();
    let (code, _, err) = run_hsmon(&["--config", "/dev/null", "tcp", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("connection refused") && err.contains("nothing listens"),
        "{err}"
    );

    let (code, _, err) = run_hsmon(&["--config", "/dev/null", "tcp", "nonexistent.invalid:2404"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("host not found: nonexistent.invalid"), "{err}");

    let (code, _, err) = run_hsmon(&["--config", "/dev/null", "tcp", "10.0.0.5"]);
    assert_eq!(code, 2, "a missing port is a usage error: {err}");
    assert!(err.contains("HOST:PORT"), "{err}");

    let (code, _, err) = run_hsmon(&[
        "--config",
        "/dev/null",
        "serial",
        &format!("rfc2217://127.0.0.1:{port}"),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn a_connected_socket_gets_the_same_bytes_hsmon_reports() {
    // A burst larger than one read, sent in pieces: all of it, in order.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut h = Headless::start(&["tcp", &format!("127.0.0.1:{port}")]);
    let (mut s, _) = l.accept().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for c in data.chunks(10_000) {
        s.write_all(c).unwrap();
    }
    h.wait_rx_len(data.len(), Duration::from_secs(60));
    assert!(h.rx_bytes() == data, "bytes differ");
}
