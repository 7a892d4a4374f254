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

/// Permission denied: joining the device's group helps only when its group may read and
/// write it; a 0600 device (root only) needs a udev rule instead.
#[test]
fn permission_denied_gives_the_fix_the_mode_allows() {
    require("setpriv");
    let link = PtyLink::new();
    let target = std::fs::canonicalize(link.a()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let open_as_nobody = || {
        let out = std::process::Command::new("setpriv")
            .env("RUST_BACKTRACE", "0")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(support::hsmon_bin())
            .args(["--config", "/dev/null", "serial"])
            .arg(&target)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("permission denied"), "{err}");
        err
    };
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = open_as_nobody();
    assert!(
        !err.contains("usermod"),
        "a group cannot help at 0600: {err}"
    );
    assert!(
        err.contains("mode 0600") && err.contains("udev rule"),
        "{err}"
    );
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o660)).unwrap();
    let err = open_as_nobody();
    assert!(err.contains("sudo usermod -aG "), "{err}");
}

/// Each message says the true cause, once, and a fix that works (issue 20, item 6).
#[test]
fn messages_say_the_true_cause_once_with_a_fix_that_works() {
    let link = PtyLink::new();
    let pty = path_str(&link.a()).to_string();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.apdu");
    std::fs::write(&script, "00 A4 04 0\n").unwrap();
    let script = path_str(&script).to_string();
    let missing = dir.path().join("nosuch.hscap");
    let missing = path_str(&missing).to_string();
    let dir_path = path_str(dir.path()).to_string();
    // (arguments, exit status, what stderr says, what it must no longer say)
    type Case<'a> = (Vec<&'a str>, i32, Vec<&'a str>, Vec<&'a str>);
    let table: Vec<Case> = vec![
        (
            vec!["serial", &pty, "-b", "99999999999"],
            2,
            vec!["invalid baud rate 99999999999: use a rate between 50 and 12000000"],
            vec!["whole number"],
        ),
        (
            // `-b -1` reaches the baud check (clap's "use -- -1" tip did not work).
            vec!["serial", &pty, "-b", "-1"],
            2,
            vec!["invalid baud rate -1: use a rate between 50"],
            vec!["-- -1"],
        ),
        (
            vec!["serial", &dir_path],
            3,
            vec!["is not a serial port (it is a directory)", "/dev/ttyUSB0"],
            vec![],
        ),
        (
            vec![
                "--headless",
                "--capture",
                "/proc/x.hscap",
                "demo",
                "--duration",
                "0.2",
            ],
            2,
            vec!["the folder takes no new files", "--no-capture"],
            vec!["no such directory"],
        ),
        (
            vec!["--headless", "card", "--script", &script],
            2,
            vec!["bad.apdu:1:10: \"0\" has an odd number of hex digits"],
            vec!["line 1"],
        ),
        (
            vec!["--headless", "replay", &missing],
            2,
            vec!["nosuch.hscap: no such file"],
            vec!["nosuch.hscap: /"],
        ),
        (
            vec!["--headless", "replay", "--speed", "10", &missing],
            2,
            vec!["nosuch.hscap: no such file"],
            vec!["nosuch.hscap: /"],
        ),
    ];
    for (args, code, wants, not) in table {
        let mut full = vec!["--config", "/dev/null"];
        full.extend(args.iter().copied());
        check(&full, code, &wants);
        let (_, _, err) = run_hsmon(&full);
        for n in not {
            assert!(!err.contains(n), "{args:?}: stderr still says {n:?}: {err}");
        }
    }
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
