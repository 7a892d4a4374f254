//! `hsmon handshake iso7816-select` against the real PC/SC stack: Debian's pcscd with
//! vsmartcard-vpcd and our simulated card behind it. The demo application is selected (61XX,
//! GET RESPONSE by the card source, 9000); an AID the card lacks diverges with 6A82, explained
//! as a status word; a reader with no card is a device error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use hsmon::sim::card::{CardProfile, CardProtocol, DEMO_AID, SimCard};
use serde_json::Value;
use support::hsmon_command;
use support::pcscd::pcsc_test;
use support::vpcd::VirtualCard;

const READER: &str = "Virtual PCD 00 00";

/// Runs `hsmon handshake iso7816-select --headless` to its end (killed after 40 s).
fn run(extra: &[&str]) -> (i32, Vec<Value>, String) {
    let cfg = tempfile::tempdir().unwrap();
    let child = hsmon_command()
        .env("XDG_CONFIG_HOME", cfg.path())
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "handshake",
            "iso7816-select",
            "--reader",
            READER,
        ])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(40)).is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
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

fn report(records: &[Value]) -> &Value {
    let last = records.last().expect("output");
    assert_eq!(last["type"], "handshake", "{last}");
    last
}

fn select(aid: &[u8]) -> Vec<u8> {
    let mut v = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
    v.extend_from_slice(aid);
    v
}

#[test]
fn select_by_aid_on_the_virtual_card() {
    let (_lock, _reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    vcard.clear_log();

    // The demo application: 61XX, GET RESPONSE (sent by the card source), 9000.
    let (code, records, err) = run(&[]);
    assert_eq!(code, 0, "{err}\n{records:#?}");
    let rep = report(&records);
    assert_eq!(rep["outcome"], "ok");
    assert!(rep["steps"][0]["got"].as_str().unwrap().ends_with("90 00"));
    let apdus: Vec<&Value> = records.iter().filter(|r| r["type"] == "apdu").collect();
    assert_eq!(apdus.len(), 2, "SELECT and its GET RESPONSE: {apdus:#?}");
    assert_eq!(apdus[0]["sw"], "610B");
    assert_eq!(apdus[1]["origin"], "get-response");
    let sent = vcard.apdus();
    assert_eq!(sent[0], select(&DEMO_AID), "the card got the SELECT");
    assert_eq!(&sent[1][..4], &[0x00, 0xC0, 0x00, 0x00]);

    // An AID the card does not have: 6A82, explained as a status word.
    vcard.clear_log();
    let (code, records, err) = run(&["--set", "aid=A0000000041010"]);
    assert_eq!(code, 1, "{err}");
    let d = &report(&records)["divergence"];
    assert_eq!(d["observation"]["observation"], "sw");
    assert_eq!(d["observation"]["sw"], "6A82");
    assert_eq!(d["explanation"][0]["id"], "iso7816.sw.6a82");
    assert_eq!(vcard.apdus()[0], select(&[0xA0, 0, 0, 0, 0x04, 0x10, 0x10]));
    // The session's card log explained the same status word (once).
    let events: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "event" && r["id"] == "iso7816.sw.6a82")
        .collect();
    assert_eq!(events.len(), 1, "{records:#?}");
}

#[test]
fn a_card_without_the_application_and_an_empty_reader() {
    let (_lock, _reader) = pcsc_test();
    let mut vcard = VirtualCard::insert(SimCard::new(CardProfile::bare(CardProtocol::T1)));
    let (code, records, _) = run(&[]);
    assert_eq!(code, 1);
    assert_eq!(report(&records)["divergence"]["observation"]["sw"], "6A82");

    // No card in the reader: the run cannot start, a device error.
    vcard.remove();
    let (code, records, err) = run(&[]);
    assert_eq!(code, 3, "{err}");
    let rep = report(&records);
    assert_eq!(rep["outcome"], "device_error");
    let why = rep["error"].as_str().unwrap();
    assert!(why.contains("no card was connected"), "{why}");
    assert!(why.contains(READER), "{why}");
}
