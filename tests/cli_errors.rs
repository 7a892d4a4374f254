//! Bad input, table by table: each gets a message naming the cause and the fix, and the exit
//! status DESIGN.md sets (2 usage/input, 3 device/connection).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::{Headless, PtyLink, path_str, require, run_hsmon};

fn check(args: &[&str], want_code: i32, want_msgs: &[&str]) {
    let (code, _out, err) = run_hsmon(args);
    assert_eq!(code, want_code, "{args:?}: stderr {err}");
    for m in want_msgs {
        assert!(err.contains(m), "{args:?}: stderr lacks {m:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

#[test]
fn bad_arguments_and_ports() {
    let link = PtyLink::new();
    let pty = path_str(&link.a()).to_string();
    let dir = tempfile::tempdir().unwrap();
    let bad_cfg = dir.path().join("bad.toml");
    std::fs::write(&bad_cfg, "[serial]\nbaud = \"fast\n").unwrap();
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(&unknown_key, "[serial]\nbaud = 9600\nsped = 1\n").unwrap();
    let bad_cfg = path_str(&bad_cfg).to_string();
    let unknown_key = path_str(&unknown_key).to_string();
    let table: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            vec!["serial", "/dev/ttyNOPE9"],
            3,
            vec!["/dev/ttyNOPE9: no such serial port"],
        ),
        (
            vec!["serial", "/dev/null"],
            3,
            vec!["not a serial port", "/dev/ttyUSB0"],
        ),
        (
            vec!["serial", &pty, "-b", "12"],
            2,
            vec!["invalid baud rate 12", "9600"],
        ),
        (
            vec!["serial", &pty, "-b", "fast"],
            2,
            vec!["invalid baud rate 'fast'"],
        ),
        (
            vec!["serial", &pty, "--format", "9Q1"],
            2,
            vec!["invalid frame format '9Q1'", "8N1"],
        ),
        (
            vec!["serial", &pty, "--line", "8N"],
            2,
            vec!["invalid frame format '8N'"],
        ),
        (
            vec!["serial", &pty, "--flow", "maybe"],
            2,
            vec!["invalid flow control 'maybe'", "hw"],
        ),
        (
            vec!["--config", &bad_cfg, "demo"],
            2,
            vec!["bad.toml:2:", "--config /dev/null"],
        ),
        (
            vec!["--config", &unknown_key, "demo"],
            2,
            vec!["unknown.toml:3:1", "unknown field `sped`"],
        ),
        (
            vec!["--config", "/no/such/file.toml", "demo"],
            2,
            vec!["cannot read config file /no/such/file.toml"],
        ),
        (
            vec!["demo", "nosuch"],
            2,
            vec!["unknown demo scenario 'nosuch'", "tour"],
        ),
        (
            vec!["demo", "--duration", "0"],
            2,
            vec!["positive number of seconds"],
        ),
        (vec!["serial"], 2, vec!["<PORT|NAME>"]),
        (vec!["frobnicate"], 2, vec!["unrecognized subcommand"]),
    ];
    for (args, code, msgs) in table {
        check(&args, code, &msgs);
    }
}

#[test]
fn permission_denied_names_the_dialout_group() {
    require("setpriv");
    let link = PtyLink::new();
    let target = std::fs::canonicalize(link.a()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("setpriv")
        .env("RUST_BACKTRACE", "0")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(support::hsmon_bin())
        .args(["--config", "/dev/null", "serial"])
        .arg(&target)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("usermod -aG dialout"), "{err}");
}

#[test]
fn busy_port_is_reported() {
    let link = PtyLink::new();
    let pty = path_str(&link.a()).to_string();
    let mut first = Headless::start(&["serial", &pty]);
    first.wait_for(Duration::from_secs(10), |r| r["type"] == "connection");
    check(
        &["serial", &pty],
        3,
        &["is busy", "another program has it open", "(hsmon)"],
    );
}

#[test]
fn bad_control_lines_are_reported_not_sent() {
    let link = PtyLink::new();
    let mut h = Headless::start(&["serial", path_str(&link.a())]);
    h.wait_for(Duration::from_secs(10), |r| r["type"] == "connection");
    h.control("send 68 0");
    h.control("send 68 16");
    h.wait_for(Duration::from_secs(10), |r| r["type"] == "tx");
    let (code, err) = h.stop();
    assert_eq!(code, 0);
    assert!(
        err.contains("stdin line 1: send: odd number of hex digits (3)"),
        "{err}"
    );
}
