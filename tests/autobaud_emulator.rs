//! Auto-baud end to end against the independent UART emulator (`tests/uart_emulator.py`,
//! written from the UART specification, not from hsmon's line model): the emulator plays a
//! device at its true rate behind a pseudo-terminal and decodes the device's bit stream at
//! whatever rate hsmon sets on the pty (it reads the speed back with TCGETS2), as a UART
//! would. `hsmon serial PTY --autobaud --headless --format json` must name the true rate for
//! devices slower and faster than the starting setting, with text and M-Bus payloads; and a
//! pty that passes bytes unchanged whatever the rate must be called that, not locked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::Headless;

/// The emulator behind a pty; killed when dropped.
struct Emulator {
    child: Child,
    link: std::path::PathBuf,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Emulator {
    fn start(rate: u32, payload: &str, ignore_rate: bool) -> Emulator {
        support::require("python3");
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("port");
        let log = dir.path().join("emulator.log");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/uart_emulator.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(["pty", "--rate", &rate.to_string(), "--payload", payload])
            .args(["--duration", "90", "--quiet-until-set"])
            .arg("--link")
            .arg(&link)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if ignore_rate {
            cmd.arg("--ignore-rate");
        }
        let mut child = cmd.spawn().expect("python3 starts the emulator");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("ready "),
            "emulator did not start: {first:?}"
        );
        Emulator {
            child,
            link,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the scan from `start` against a device at `rate`; returns the final `baud` record and
/// every `baud` record for the failure message.
fn scan(rate: u32, payload: &str, start: u32, ignore_rate: bool) -> (Value, String) {
    let emu = Emulator::start(rate, payload, ignore_rate);
    let start = start.to_string();
    let mut h = Headless::start(&[
        "serial",
        emu.link.to_str().unwrap(),
        "-b",
        &start,
        "--autobaud",
    ]);
    let end = h.wait_for(Duration::from_secs(75), |r| {
        r["type"] == "baud"
            && ["locked", "none", "ignored"].contains(&r["state"].as_str().unwrap_or(""))
    });
    let trail: Vec<String> = h
        .records
        .iter()
        .filter(|r| r["type"] == "baud" && r["state"] != "trying")
        .map(|r| {
            format!(
                "{} {} {} ({} B: {})",
                r["state"], r["baud"], r["score"], r["bytes"], r["reason"]
            )
        })
        .collect();
    let tried = h
        .records
        .iter()
        .filter(|r| r["type"] == "baud" && r["state"] == "trying")
        .count();
    // One line per scan for the record (README's table is measured from these).
    println!(
        "device {rate} {payload} from {start}: {} {} score {} after {tried} settings, {:.1} s",
        end["state"],
        end["baud"],
        end["score"],
        end["t"].as_f64().unwrap_or(0.0)
    );
    let (code, err) = h.stop();
    let why = format!(
        "device {rate} {payload} from {start}: {end}\nscan:\n  {}\nhsmon exit {code}, stderr: {err}\nemulator:\n{}",
        trail.join("\n  "),
        emu.log()
    );
    (end, why)
}

fn assert_locks(rate: u32, payload: &str, start: u32) {
    let (end, why) = scan(rate, payload, start, false);
    if std::env::var_os("HSMON_TRAIL").is_some() {
        println!("{why}");
    }
    assert_eq!(end["state"], "locked", "{why}");
    assert_eq!(end["baud"], rate, "{why}");
    assert!(end["score"].as_f64().unwrap() >= 0.6, "{why}");
}

#[test]
fn text_at_9600_scanned_from_115200() {
    assert_locks(9600, "text", 115_200);
}

#[test]
fn text_at_115200_scanned_from_9600() {
    assert_locks(115_200, "text", 9600);
}

#[test]
fn esp_boot_text_at_74880_scanned_from_115200() {
    assert_locks(74_880, "text", 115_200);
}

#[test]
fn mbus_at_9600_scanned_from_115200() {
    assert_locks(9600, "mbus", 115_200);
}

#[test]
fn mbus_at_19200_scanned_from_2400() {
    assert_locks(19_200, "mbus", 2400);
}

#[test]
fn a_pty_that_ignores_the_rate_is_said_so() {
    let (end, why) = scan(9600, "text", 9600, true);
    assert_eq!(end["state"], "ignored", "{why}");
    assert!(
        end["reason"]
            .as_str()
            .unwrap()
            .contains("ignores the baud rate"),
        "{why}"
    );
}

/// README's table: every common rate as the device's, text and M-Bus, scanned from 115200
/// and from 9600. A measurement (about five minutes), not a check: run it with
/// `cargo test --release --test autobaud_emulator -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement for README (minutes): run with --ignored"]
fn measure_every_rate() {
    let mut lines = Vec::new();
    for payload in ["text", "mbus"] {
        for rate in [
            1200, 2400, 4800, 9600, 14_400, 19_200, 38_400, 57_600, 74_880, 115_200, 230_400,
            460_800, 921_600,
        ] {
            for start in [115_200, 9600] {
                let (end, _) = scan(rate, payload, start, false);
                let ok = end["state"] == "locked" && end["baud"] == rate;
                lines.push(format!(
                    "{payload} {rate} from {start}: {} {} {}",
                    if ok { "right" } else { "WRONG" },
                    end["state"],
                    end["baud"]
                ));
            }
        }
    }
    println!("{}", lines.join("\n"));
}
