//! The demo's simulated wire: at the wrong rate the board's text arrives as garbage with line
//! errors; turning the baud to the board's rate turns it back into text.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::Headless;

const T: Duration = Duration::from_secs(20);

#[test]
fn wrong_baud_turns_into_text_at_the_right_rate() {
    let mut h = Headless::start(&["demo", "wrong-baud"]);
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 115200);
    // Read 12 times too fast, the 9600 board's bytes are breaks: 00 with errors.
    let garbage = h.wait_for(T, |r| r["type"] == "rx");
    assert!(
        garbage["hex"]
            .as_str()
            .unwrap()
            .split(' ')
            .all(|b| b == "00"),
        "{garbage}"
    );
    h.wait_for(T, |r| {
        r["id"] == "hsmon.line_errors" && r["brk"].as_u64().unwrap_or(0) > 0
    });
    assert!(
        !h.records
            .iter()
            .any(|r| r["type"] == "frame" && r["protocol"] == "text")
    );
    h.control("baud 9600");
    h.wait_for(T, |r| r["type"] == "settings" && r["baud"] == 9600);
    let line = h.wait_for(T, |r| r["type"] == "frame" && r["protocol"] == "text");
    assert!(line["status"] == "ok", "{line}");
}

#[test]
fn noise_adds_phantoms_but_never_a_0x68() {
    // The board sent 0x68s as frame starts and as 'h'; noise must not add any (a glitch
    // landing inside a character may spoil one, so only "no more than clean" is asserted).
    // Counted up to the first IEC 104 frame's start: the same stretch of the board's script
    // in both runs, however long arbitration held the frame.
    let before_first_104 = |h: &mut Headless| {
        let frame = h.wait_for(T, |r| r["type"] == "frame" && r["protocol"] == "iec104");
        let start = frame["start"].as_u64().expect("frame start") as usize;
        let rx = h.rx_bytes();
        rx[..start.min(rx.len())]
            .iter()
            .filter(|&&b| b == 0x68)
            .count()
    };
    let mut h = Headless::start(&["demo", "noisy", "--duration", "4"]);
    let noisy = before_first_104(&mut h);
    let mut clean = Headless::start(&["demo", "tour"]);
    let clean_68 = before_first_104(&mut clean);
    assert!(noisy <= clean_68, "noise made a 0x68: {noisy} > {clean_68}");
    assert!(clean_68 >= 5, "the clean run has the board's 0x68s");
    assert!(
        h.rx_bytes().len() > clean.rx_bytes().len(),
        "noise adds phantom bytes"
    );
}

#[test]
fn autobaud_on_the_wrong_baud_demo_locks_at_9600() {
    let mut h = Headless::start(&["demo", "wrong-baud", "--autobaud"]);
    let end = h.wait_for(Duration::from_secs(40), |r| {
        r["type"] == "baud" && (r["state"] == "locked" || r["state"] == "none")
    });
    assert_eq!(end["state"], "locked", "{end}");
    assert_eq!(end["baud"], 9600, "{end}");
    let (code, _) = h.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_drifting_clock_is_diagnosed_as_drift_not_a_wrong_rate() {
    // The estimate needs a few hundred characters; on a loaded machine the simulated board
    // sends fewer per second, so the demo runs long enough and the wait ends at the event.
    let mut h = Headless::start(&["demo", "drift", "--duration", "15"]);
    let ev = h.wait_for(T, |r| r["type"] == "event" && r["id"] == "uart.clock_drift");
    assert!(ev["text"].as_str().unwrap().contains("% off"), "{ev}");
    assert!(
        !h.records
            .iter()
            .any(|r| r["id"] == "uart.baud_too_high" || r["id"] == "uart.baud_too_low"),
        "drift is not a wrong standard rate"
    );
}
