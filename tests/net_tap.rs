//! `hsmon tap PORT_A PORT_B` over two socat pty pairs: what the "master" writes on one far
//! end and the "meter" on the other arrive as one conversation — A as TX, B as RX, labelled,
//! in time order — decoded as request and response, with one baud control for both ports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::time::Duration;

use hsmon::event::{ConnectionState, Event, TimedEvent};
use hsmon::session::{DEFAULT_WINDOW_BYTES, DirectionLabels, Session};
use support::{Headless, PtyLink, hex, path_str, run_hsmon};

const T: Duration = Duration::from_secs(20);

/// M-Bus REQ_UD2 (A=1) and an RSP_UD long frame (libmbus manual_frame7), protocols.md §1.4.
const REQ: &str = "10 5B 01 5C 16";
const RSP: &str =
    "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16";

fn start(a: &PtyLink, b: &PtyLink) -> Headless {
    let mut h = Headless::start(&[
        "tap",
        path_str(&a.a()),
        path_str(&b.a()),
        "-b",
        "2400",
        "--label-a",
        "master",
        "--label-b",
        "meter",
    ]);
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    h
}

#[test]
fn each_direction_arrives_labelled_and_in_time_order() {
    let (a, b) = (PtyLink::new(), PtyLink::new());
    let mut h = start(&a, &b);
    let mut ends = [a.device(), b.device()];
    for (end, bytes) in [(0, b"Q1"), (1, b"R1"), (0, b"Q2"), (1, b"R2")] {
        ends[end].write_all(bytes).unwrap();
        std::thread::sleep(Duration::from_millis(80));
    }
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let r = h.wait_for(T, |r| r["type"] == "rx" || r["type"] == "tx");
        seen.push(r);
    }
    let got: Vec<(String, String, String)> = seen
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_string(),
                r["label"].as_str().unwrap().to_string(),
                String::from_utf8(hex(r["hex"].as_str().unwrap())).unwrap(),
            )
        })
        .collect();
    let want = [
        ("tx", "master", "Q1"),
        ("rx", "meter", "R1"),
        ("tx", "master", "Q2"),
        ("rx", "meter", "R2"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())),
        "{seen:#?}"
    );
    let times: Vec<f64> = seen.iter().map(|r| r["t"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn request_and_response_are_decoded_as_one_conversation() {
    let (a, b) = (PtyLink::new(), PtyLink::new());
    let mut h = start(&a, &b);
    a.device().write_all(&hex(REQ)).unwrap();
    let req = h.wait_for(T, |r| r["type"] == "frame");
    assert_eq!(
        (&req["protocol"], &req["dir"], &req["label"], &req["status"]),
        (&"mbus".into(), &"tx".into(), &"master".into(), &"ok".into()),
        "{req}"
    );
    b.device().write_all(&hex(RSP)).unwrap();
    let rsp = h.wait_for(T, |r| r["type"] == "frame");
    assert_eq!(
        (&rsp["protocol"], &rsp["dir"], &rsp["label"], &rsp["status"]),
        (&"mbus".into(), &"rx".into(), &"meter".into(), &"ok".into()),
        "{rsp}"
    );
}

#[test]
fn one_baud_control_sets_both_ports_and_sending_is_refused() {
    let (a, b) = (PtyLink::new(), PtyLink::new());
    let mut h = start(&a, &b);
    h.control("baud 9600");
    // Each port acknowledges for itself: two settings records at the new rate.
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 9600);
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 9600);
    h.control("send 01 02");
    let refused = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    assert!(
        refused["text"].as_str().unwrap().contains("only listens"),
        "{refused}"
    );
    // A pty has no modem lines: the refusal names the port it came from.
    h.control("dtr off");
    let dtr = h.wait_for(T, |r| {
        r["id"] == "hsmon.command_failed" && r["command"] == "master: set DTR off"
    });
    assert!(
        dtr["text"]
            .as_str()
            .unwrap()
            .contains("no modem control lines")
    );
}

/// A tap is two streams: every record names its port (`"stream"`), the two confirmations of
/// one baud command among them, and the change raises no "different settings" warning.
#[test]
fn records_name_their_port_and_a_baud_change_is_no_difference() {
    let (a, b) = (PtyLink::new(), PtyLink::new());
    let (pa, pb) = (a.a().display().to_string(), b.a().display().to_string());
    let mut h = start(&a, &b);
    h.control("baud 9600");
    let mut ports = vec![
        h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 9600)["stream"].clone(),
        h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 9600)["stream"].clone(),
    ];
    ports.sort_by_key(|p| p.to_string());
    let mut want = vec![pa.clone(), pb.clone()];
    want.sort();
    assert_eq!(ports, want);
    a.device().write_all(&hex(REQ)).unwrap();
    let tx = h.wait_for(T, |r| r["type"] == "tx");
    assert_eq!(tx["stream"], pa.as_str(), "{tx}");
    let frame = h.wait_for(T, |r| r["type"] == "frame");
    assert_eq!(frame["stream"], pa.as_str(), "{frame}");
    b.device().write_all(&hex(RSP)).unwrap();
    let frame = h.wait_for(T, |r| r["type"] == "frame" && r["dir"] == "rx");
    assert_eq!(frame["stream"], pb.as_str(), "{frame}");
    // Nothing between: the first warning is the refusal to send.
    h.control("send 01 02");
    let first = h.wait_for(T, |r| r["id"] == "hsmon.command_failed");
    assert!(
        first["text"].as_str().unwrap().contains("only listens"),
        "{first}"
    );
    assert!(first["stream"].is_string(), "{first}");
}

#[test]
fn a_vanished_port_is_named_and_returns() {
    let (mut a, b) = (PtyLink::new(), PtyLink::new());
    let mut h = start(&a, &b);
    b.device().write_all(b"before").unwrap();
    h.wait_rx_len(6, T);
    a.kill();
    let down = h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "down");
    assert!(
        down["reason"].as_str().unwrap().starts_with("master: "),
        "{down}"
    );
    a.start();
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    a.device().write_all(b"after").unwrap();
    h.wait_for(T, |r| r["type"] == "tx" && r["hex"] == "61 66 74 65 72");
}

#[test]
fn the_same_port_twice_is_a_usage_error() {
    let a = PtyLink::new();
    let path = a.a();
    let p = path_str(&path);
    let (code, _, err) = run_hsmon(&["--config", "/dev/null", "--headless", "tap", p, p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("same port"), "{err}");
    let (code, _, err) = run_hsmon(&[
        "--config",
        "/dev/null",
        "--headless",
        "tap",
        p,
        "/dev/ttyNOPE-hsmon",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("device port") && err.contains("no such serial port"),
        "{err}"
    );
}

#[test]
fn the_tui_shows_whose_bytes_are_whose() {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut s = Session::new(
        "tap master /dev/ttyUSB0 → meter /dev/ttyUSB1",
        DEFAULT_WINDOW_BYTES,
    );
    s.labels = Some(DirectionLabels {
        tx: "master".into(),
        rx: "meter".into(),
    });
    for (ms, ev) in [
        (0, Event::Connection(ConnectionState::Up)),
        (10, Event::Tx(hex(REQ))),
        (300, Event::Rx(hex(RSP))),
    ] {
        s.ingest(&TimedEvent::new(Duration::from_millis(ms), ev));
    }
    let ui = hsmon::ui::state::UiState::new(
        hsmon::ui::keys::Keymap::default(),
        hsmon::ui::theme::Theme::COLOR,
        hsmon::ui::sendline::LineEnding::Cr,
        (120, 30),
    );
    let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
    t.draw(|f| hsmon::ui::render(f, &s, &ui)).unwrap();
    let buf = t.backend().buffer();
    let text: String = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                + "\n"
        })
        .collect();
    assert!(text.contains("TX◂ master"), "{text}");
    assert!(text.contains("RX▸ meter"), "{text}");
    assert!(text.contains("tap master /dev/ttyUSB0 → meter"), "{text}");
    // The frames pane names the sender of each frame.
    assert!(
        text.lines()
            .any(|l| l.contains("master") && l.contains("mbus")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("meter ") && l.contains("mbus")),
        "{text}"
    );
    // And the frame detail says whose it is.
    let rsp = s
        .frames()
        .iter()
        .find(|f| f.direction == hsmon::event::Direction::Rx)
        .unwrap();
    let (_, lines) = hsmon::ui::detail::lines(&s, &ui, hsmon::ui::state::Detail::Frame(rsp.seq));
    assert!(
        lines[0].to_string().starts_with("RX (meter) M-Bus"),
        "{}",
        lines[0]
    );
}
