//! Named ports end to end: a `[ports.NAME]` whose path is a socat pty opens at the named
//! settings (command-line flags win), `hsmon list` shows the name and where it is, and a
//! name that matches nothing exits 3 naming the rules tried.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Headless, PtyLink, hsmon_command, path_str, run_hsmon};

fn config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `hsmon --headless --format json --config CFG serial ARGS...` until its first
/// `settings` record, which it returns.
fn first_settings(cfg: &std::path::Path, args: &[&str]) -> Value {
    first_settings_in(cfg, args, &std::env::temp_dir().join("hsmon-test-state"))
}

/// [`first_settings`] with `XDG_STATE_HOME` (where sessions are recorded) at `state`.
fn first_settings_in(cfg: &std::path::Path, args: &[&str], state: &std::path::Path) -> Value {
    let mut cmd = hsmon_command();
    cmd.env("XDG_STATE_HOME", state)
        .args(["--headless", "--format", "json", "--config", path_str(cfg)])
        .arg("serial")
        .args(args);
    Headless::spawn(cmd).wait_for(Duration::from_secs(20), |v| v["type"] == "settings")
}

#[test]
fn a_named_port_opens_at_its_settings_and_flags_override_them() {
    let link = PtyLink::new();
    let cfg = config(
        link.dir.path(),
        &format!(
            "[serial]\nbaud = 115200\n\n[ports.bench]\npath = \"{}\"\nbaud = 9600\nlabel = \"bench 3\"\ncapture = false\n",
            path_str(&link.a())
        ),
    );
    // (A Linux pty keeps 8N1 whatever is asked, so the format is checked in config's unit
    // tests; the baud rate is what the port reports back.)
    let s = first_settings(&cfg, &["bench"]);
    assert_eq!(s["baud"], 9600, "{s}");
    let s = first_settings(&cfg, &["bench", "-b", "19200"]);
    assert_eq!(s["baud"], 19200, "{s}");
}

#[test]
fn capture_false_turns_recording_off_unless_asked() {
    let link = PtyLink::new();
    let cfg = config(
        link.dir.path(),
        &format!(
            "[ports.quiet]\npath = \"{0}\"\ncapture = false\n\n[ports.kept]\npath = \"{0}\"\n",
            path_str(&link.a())
        ),
    );
    let captures = |state: &std::path::Path| {
        std::fs::read_dir(state.join("hsmon/captures"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let state = tempfile::tempdir().unwrap();
    first_settings_in(&cfg, &["quiet"], state.path());
    assert_eq!(captures(state.path()), 0, "capture = false records nothing");
    first_settings_in(&cfg, &["kept"], state.path());
    assert_eq!(captures(state.path()), 1, "a port without the key records");
    let file = link.dir.path().join("asked.hscap");
    first_settings_in(&cfg, &["quiet", "--capture", path_str(&file)], state.path());
    assert!(file.exists(), "--capture FILE wins over capture = false");
}

#[test]
fn list_shows_the_names_in_text_and_json() {
    let link = PtyLink::new();
    let cfg = config(
        link.dir.path(),
        &format!(
            "[ports.bench]\npath = \"{}\"\nlabel = \"bench 3\"\n\n[ports.gone]\nusb = \"1a86:7523\"\n",
            path_str(&link.a())
        ),
    );
    let (code, out, err) = run_hsmon(&["--config", path_str(&cfg), "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Named ports"), "{out}");
    let bench = out.lines().find(|l| l.contains("bench ")).unwrap();
    assert!(bench.contains(path_str(&link.a())), "{bench}");
    assert!(bench.contains("(by path)"), "{bench}");
    let gone = out.lines().find(|l| l.contains("gone")).unwrap();
    assert!(gone.contains("usb 1a86:7523  -> not present"), "{gone}");

    let (code, out, err) = run_hsmon(&["--config", path_str(&cfg), "--format", "json", "list"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let named = v["named"].as_array().unwrap();
    assert_eq!(named[0]["name"], "bench");
    assert_eq!(named[0]["label"], "bench 3");
    assert_eq!(named[0]["resolves"]["status"], "present");
    assert_eq!(named[0]["resolves"]["path"], path_str(&link.a()));
    assert_eq!(named[1]["name"], "gone");
    assert_eq!(named[1]["resolves"]["status"], "not_present");
}

#[test]
fn a_name_that_matches_nothing_exits_3_naming_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "[ports.gone]\nusb = \"1a86:7523\"\nmatch_by_id = \"usb-1a86_USB_Serial*\"\npath = \"/dev/ttyUSB-hsmon-test-absent\"\n",
    );
    let (code, _, err) = run_hsmon(&["--headless", "--config", path_str(&cfg), "serial", "gone"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("named port 'gone' is not present"), "{err}");
    assert!(err.contains("usb = \"1a86:7523\""), "{err}");
    assert!(
        err.contains("match_by_id = \"usb-1a86_USB_Serial*\""),
        "{err}"
    );
    assert!(err.contains("/dev/ttyUSB-hsmon-test-absent"), "{err}");
}

#[test]
fn an_unknown_profile_is_a_usage_error_at_the_table() {
    let link = PtyLink::new();
    let cfg = config(
        link.dir.path(),
        &format!(
            "[ports.bench]\npath = \"{}\"\nprofile = \"no-such-profile\"\n",
            path_str(&link.a())
        ),
    );
    let (code, _, err) = run_hsmon(&["--headless", "--config", path_str(&cfg), "serial", "bench"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(":1:2: [ports.bench] profile = \"no-such-profile\""),
        "{err}"
    );
}
