//! `hsmon card` against the real stack: Debian's pcscd with vsmartcard-vpcd, and our simulated
//! card behind it (tests/support/vpcd.rs). Scripts stepped end to end with their expectations,
//! the automatic GET RESPONSE / Le retry, a foreign reset (0x80100068) reported and recovered,
//! removal and reinsertion, pcscd restarted under hsmon, and malformed scripts rejected with
//! their line numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use hsmon::sim::card::SimCard;
use serde_json::Value;
use support::pcscd::{self, connect_shared, pcsc_test};
use support::vpcd::VirtualCard;
use support::{Headless, hsmon_command};

const T: Duration = Duration::from_secs(20);

const SELECT_DEMO: &str = "00 A4 04 00 07 F0 68 73 6D 6F 6E 01 00";

fn script_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".apdu").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// Runs `hsmon card --headless` to its end; returns the exit code and the records.
fn run_card(args: &[&str]) -> (i32, Vec<Value>, String) {
    let child = hsmon_command()
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "card",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A run that does not end by itself is a failure, not a hung test.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(T);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        records,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apdus(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "apdu").collect()
}

#[test]
fn a_script_runs_with_get_response_and_le_retry_and_exits_0() {
    let (_lock, _reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let script = script_file(&format!(
        "# the demo application\n{SELECT_DEMO}\n# expect 9000\n\
         # GET CHALLENGE with the wrong Le: 6C08, then the right one\n00 84 00 00 00\n# expect 9000\n\
         00 20 00 80 04 31 32 33 34\n# expect 9000 | 63CX\n"
    ));
    let (code, records, err) = run_card(&[
        "--reader",
        "Virtual PCD",
        "--script",
        script.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stderr: {err}\nrecords: {records:#?}");
    let a = apdus(&records);
    let origins: Vec<&str> = a.iter().map(|r| r["origin"].as_str().unwrap()).collect();
    assert_eq!(
        origins,
        [
            "script:2",
            "get-response",
            "script:5",
            "le-retry",
            "script:7"
        ],
        "{a:#?}"
    );
    assert_eq!(a[0]["sw"], "610B");
    assert_eq!(a[1]["command"], "00 C0 00 00 0B");
    assert_eq!(a[1]["sw"], "9000");
    assert_eq!(a[3]["command"], "00 84 00 00 08");
    assert_eq!(a[3]["response"].as_str().unwrap().split(' ').count(), 8);
    let fin = records
        .iter()
        .find(|r| r["id"] == "script.finished")
        .expect("a script.finished record");
    assert_eq!(fin["failures"], 0);
    // The card saw exactly these commands, follow-ups included.
    let seen: Vec<String> = vcard
        .apdus()
        .iter()
        .map(|c| hsmon::hex::spaced(c))
        .collect();
    let sent: Vec<&str> = a.iter().map(|r| r["command"].as_str().unwrap()).collect();
    assert_eq!(seen, sent);
}

#[test]
fn an_unmet_expectation_exits_1_and_names_the_line() {
    let (_lock, _reader) = pcsc_test();
    let _vcard = VirtualCard::insert(SimCard::default());
    let script = script_file("00 A4 04 00 02 A0 00\n# expect 9000\n");
    let (code, records, _) = run_card(&[
        "--reader",
        "Virtual PCD",
        "--script",
        script.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let step = records.iter().find(|r| r["id"] == "script.step").unwrap();
    assert_eq!(step["line"], 1);
    assert_eq!(step["sw"], "6A82");
    assert_eq!(step["ok"], false);
    // The knowledge base explains the status word.
    assert!(
        records.iter().any(|r| r["id"] == "iso7816.sw.6a82"),
        "{records:#?}"
    );
}

/// Waits for a record; panics with the recent records otherwise.
fn wait(h: &mut Headless, what: impl Fn(&Value) -> bool) -> Value {
    h.wait_for(T, what)
}

#[test]
fn a_foreign_reset_is_reported_with_what_was_lost_and_recovered() {
    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let mut h = Headless::start(&["card", "--reader", "Virtual PCD"]);
    wait(&mut h, |r| r["state"] == "connected");
    h.control(&format!("send {SELECT_DEMO}"));
    wait(&mut h, |r| r["type"] == "apdu" && r["sw"] == "9000");

    // Another application connects shared and disconnects with SCARD_RESET_CARD.
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let other = connect_shared(&ctx, &reader);
    other
        .disconnect(pcsc::Disposition::ResetCard)
        .map_err(|(_, e)| e)
        .unwrap();
    vcard.clear_log();

    h.control("send 00 84 00 00 08");
    let err = wait(&mut h, |r| r["state"] == "pcsc_error");
    assert_eq!(err["code"], "0x80100068");
    assert_eq!(err["name"], "SCARD_W_RESET_CARD");
    let ev = wait(&mut h, |r| r["id"] == "pcsc.w_reset_card");
    let text = ev["text"].as_str().unwrap();
    assert!(
        text.contains("lost: the selected application F0 68 73 6D 6F 6E 01"),
        "{text}"
    );
    assert!(text.contains("not sent"), "{text}");
    let re = wait(&mut h, |r| r["state"] == "reconnected");
    assert_eq!(re["disposition"], "SCARD_LEAVE_CARD");
    // The APDU did not reach the card.
    assert!(vcard.apdus().is_empty(), "{:?}", vcard.apdus());

    // The handle works again, without hsmon resetting anything.
    h.control("send 00 84 00 00 08");
    let ok = wait(&mut h, |r| r["type"] == "apdu" && r["sw"] == "9000");
    assert_eq!(ok["command"], "00 84 00 00 08");
    assert_eq!(vcard.apdus(), vec![vec![0x00, 0x84, 0x00, 0x00, 0x08]]);
    assert!(
        !vcard
            .log()
            .iter()
            .any(|e| matches!(e, support::vpcd::VpcdEvent::Reset)),
        "hsmon must never reset the card itself"
    );
}

#[test]
fn removal_and_reinsertion_are_followed() {
    let (_lock, _reader) = pcsc_test();
    let mut vcard = VirtualCard::insert(SimCard::default());
    let mut h = Headless::start(&["card", "--reader", "Virtual PCD"]);
    wait(&mut h, |r| r["state"] == "connected");
    vcard.remove();
    wait(&mut h, |r| r["state"] == "removed");
    wait(&mut h, |r| {
        r["type"] == "connection" && r["state"] == "down"
    });
    // An APDU while the card is out is refused with a reason, not lost.
    h.control("send 00 84 00 00 08");
    let e = wait(&mut h, |r| r["state"] == "pcsc_error");
    assert_eq!(e["name"], "SCARD_E_NO_SMARTCARD");
    vcard.reinsert();
    wait(&mut h, |r| r["state"] == "inserted");
    wait(&mut h, |r| r["state"] == "connected");
    h.control("send 00 84 00 00 08");
    wait(&mut h, |r| r["type"] == "apdu" && r["sw"] == "9000");
}

#[test]
fn pcscd_restarted_under_hsmon_is_survived() {
    let (_lock, _reader) = pcsc_test();
    let _vcard = VirtualCard::insert(SimCard::default());
    let mut h = Headless::start(&["card", "--reader", "Virtual PCD"]);
    wait(&mut h, |r| r["state"] == "connected");
    let t0 = Instant::now();
    pcscd::restart_pcscd();
    wait(&mut h, |r| {
        r["type"] == "connection" && r["state"] == "retrying"
    });
    // A new context, the reader again, the card again.
    wait(&mut h, |r| {
        r["state"] == "connected" && r["t"].as_f64().is_some()
    });
    h.control("send 00 84 00 00 08");
    wait(&mut h, |r| r["type"] == "apdu" && r["sw"] == "9000");
    assert!(t0.elapsed() < T);
}

#[test]
fn list_shows_the_reader_and_the_card() {
    let (_lock, _reader) = pcsc_test();
    let _vcard = VirtualCard::insert(SimCard::default());
    let out = hsmon_command()
        .args(["--config", "/dev/null", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Card readers:"), "{text}");
    assert!(text.contains("Virtual PCD"), "{text}");
    assert!(text.contains("card ATR 3B 15 11 48 53 4D 4F 4E"), "{text}");
}

#[test]
fn malformed_scripts_are_rejected_with_their_line() {
    // No pcscd needed: the script is read before anything opens.
    let cases: [(&str, &str, &str); 4] = [
        ("# ok\n00 A4 04 0\n", ":2:", "odd"),
        ("00 A4 04 00\n00 ZZ 00 00\n", ":2:", "hex"),
        ("00 A4 04 00 05 01\n", ":1:", ""),
        ("00 A4 04 00\n# expect 9G00\n", ":2:", "expect"),
    ];
    for (text, line, word) in cases {
        let script = script_file(text);
        let out = hsmon_command()
            .args(["--headless", "--config", "/dev/null", "card", "--script"])
            .arg(script.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(err.contains(line), "{text:?}: no {line} in {err}");
        assert!(
            err.to_lowercase().contains(word),
            "{text:?}: no {word} in {err}"
        );
    }
}

#[test]
fn a_card_held_exclusively_names_the_holder_and_is_taken_when_released() {
    let (_lock, reader) = pcsc_test();
    let _vcard = VirtualCard::insert(SimCard::default());
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let holder = ctx
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();
    let mut h = Headless::start(&["card", "--reader", "Virtual PCD"]);
    let e = wait(&mut h, |r| r["state"] == "pcsc_error");
    assert_eq!(e["name"], "SCARD_E_SHARING_VIOLATION");
    let why = wait(&mut h, |r| r["id"] == "hsmon.command_failed");
    let text = why["text"].as_str().unwrap();
    assert!(text.contains("holds the card exclusively"), "{text}");
    // This test process holds it: its pid is named.
    assert!(text.contains(&std::process::id().to_string()), "{text}");
    support::pcscd::leave(holder);
    wait(&mut h, |r| r["state"] == "connected");
}

#[test]
fn a_script_in_a_transaction_begins_and_ends_it() {
    let (_lock, _reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let script = script_file(&format!(
        "{SELECT_DEMO}\n# expect 9000\n00 84 00 00 08\n# expect 9000\n"
    ));
    let (code, records, err) = run_card(&[
        "--reader",
        "Virtual PCD",
        "--transaction",
        "--script",
        script.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err} {records:#?}");
    let states: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "card")
        .filter_map(|r| r["state"].as_str())
        .filter(|s| s.starts_with("transaction"))
        .collect();
    assert_eq!(states, ["transaction_begun", "transaction_ended"]);
    assert_eq!(
        vcard.apdus().len(),
        3,
        "SELECT, GET RESPONSE, GET CHALLENGE"
    );
}

/// Headless `card` that has nothing to work with ends with exit 3 after its stated wait
/// (5 s), saying why; on main each of these ran until killed.
fn assert_gives_up(args: &[&str], want: &[&str]) {
    let started = Instant::now();
    let (code, records, err) = run_card(args);
    let took = started.elapsed();
    assert_eq!(code, 3, "{args:?}: stderr {err}\nrecords {records:#?}");
    assert!(took < Duration::from_secs(12), "{args:?} took {took:?}");
    for w in want {
        assert!(err.contains(w), "{args:?}: {w:?} not in stderr {err}");
    }
}

#[test]
fn a_reader_that_does_not_exist_is_said_with_the_ones_that_do_and_exits_3() {
    let (_lock, reader) = pcsc_test();
    let name = reader.to_str().unwrap().to_string();
    let script = script_file(&format!("{SELECT_DEMO}\n"));
    let script = script.path().to_str().unwrap();
    for args in [
        vec!["--reader", "nosuch"],
        vec!["--reader", "99"],
        vec!["--reader", "nosuch", "--script", script],
        vec!["--reader", "99", "--script", script],
    ] {
        assert_gives_up(
            &args,
            &[
                "no reader has that name or index",
                &format!("\"{name}\""),
                "Gave up after 5 s",
            ],
        );
    }
}

#[test]
fn a_script_with_no_card_in_the_reader_is_said_and_exits_3() {
    let (_lock, reader) = pcsc_test();
    pcscd::wait_card(&reader, None);
    let script = script_file(&format!("{SELECT_DEMO}\n"));
    let script = script.path().to_str().unwrap();
    let name = reader.to_str().unwrap();
    for args in [
        vec!["--script", script],
        vec!["--reader", name, "--script", script],
    ] {
        assert_gives_up(&args, &["no card was connected within 5 s", "exit 3"]);
    }
}
