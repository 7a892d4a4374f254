//! Untrusted text through every output path of the real binary, besides device bytes on a
//! live port (tests/hostile_bytes.rs): a user's knowledge file and profiles (people share
//! them), command-line arguments echoed by error messages, device text given to `decode`
//! and to a replay. Each output must hold no character [`is_unsafe`] finds: C0/C1 controls
//! (ESC, OSC 52, U+009B), bidi controls (U+202E) and zero-width characters (U+200B, U+200D,
//! U+FEFF), and the JSON must still read back the same text.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, UNIX_EPOCH};

use hsmon::capture::{CaptureMeta, CaptureWriter};
use hsmon::event::{ConnectionState, Event, TimedEvent};
use hsmon::sanitize::is_unsafe;

/// The hostile set as a TOML basic string (TOML takes `\uXXXX` escapes).
const HOSTILE_TOML: &str = r"evil\u001b]52;c;cm0gLXJmIH4K\u0007\u001b[2J\u009b31m\u202erev\u2066\u200b\u200d\ufeff\u007fend";

/// The hostile set as device text: the same characters, raw.
const HOSTILE: &str = "evil\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\u{9b}31m\u{202e}rev\u{2066}\u{200b}\u{200d}\u{feff}\x7fend";

/// Runs hsmon with `args` and the environment `env`; (status, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut c = support::hsmon_command();
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    )
}

/// No unsafe character on any line of `text` (line breaks themselves are fine).
fn assert_clean(text: &str, what: &str) {
    for line in text.split('\n') {
        if let Some(c) = line.chars().find(|&c| is_unsafe(c)) {
            panic!("{what}: {c:?} raw in {line:?}");
        }
    }
}

/// A config home holding a hostile knowledge file and a hostile profile.
fn hostile_config_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hsmon = dir.path().join("hsmon");
    std::fs::create_dir_all(hsmon.join("profiles")).unwrap();
    let h = HOSTILE_TOML;
    std::fs::write(
        hsmon.join("knowledge.toml"),
        format!(
            "[[entry]]\nid = \"user.hostile\"\ndomain = \"iso7816\"\nseverity = \"error\"\n\
             title = \"{h}\"\nmeaning = \"{h}\"\ncauses = [\"{h}\"]\nfixes = [\"{h}\"]\n\
             reference = \"{h}\"\ncodes = [\"9F99\"]\nwhen = [{{ observation = \"sw\", sw = \"9F99\" }}]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        hsmon.join("profiles").join("evil.toml"),
        format!(
            "name = \"evil\"\ndescription = \"{h}\"\ntransport = \"serial\"\n\n\
             [serial]\nbaud = 9600\nformat = \"8N1\"\n\n\
             [[step]]\nname = \"init\"\nsend = \"10 40 FE 3E 16\"\nexpect = \"E5\"\ntimeout_ms = 100\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn an_argument_echoed_by_an_error_is_escaped() {
    let arg = "\x1b]0;X\x07\u{9b}2J\u{202e}\u{200b}";
    for args in [
        vec!["--config", "/dev/null", "explain", arg],
        vec!["--config", "/dev/null", arg],
        vec!["--config", "/dev/null", "decode", "--hex", arg],
        vec!["--config", "/dev/null", "serial", "/dev/null", "-b", arg],
    ] {
        let (code, out, err) = run(&args, &[]);
        assert_ne!(code, 0, "{args:?}");
        assert_clean(&out, "stdout");
        assert_clean(&err, &format!("stderr of {args:?}"));
        // Shown escaped (clap drops what it reads as an escape sequence, and escapes the rest).
        assert!(
            err.contains("\\x1B]0;X") || err.contains("\\x9B2J"),
            "the argument is shown, escaped: {err}"
        );
    }
}

#[test]
fn knowledge_file_text_is_escaped_by_explain() {
    let home = hostile_config_home();
    let env = [("XDG_CONFIG_HOME", home.path())];
    for format in ["text", "json"] {
        let (code, out, err) = run(&["--format", format, "explain", "user.hostile"], &env);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("evil"), "{out}");
        assert_clean(&out, format);
    }
}

#[test]
fn knowledge_file_text_is_escaped_by_decode() {
    let home = hostile_config_home();
    let env = [("XDG_CONFIG_HOME", home.path())];
    for format in ["text", "json"] {
        // An APDU answered 9F 99: the user's entry explains it.
        let (_, out, err) = run(
            &[
                "--format",
                format,
                "decode",
                "--hex",
                "00 A4 04 00 00 9F 99",
            ],
            &env,
        );
        assert_clean(&out, format);
        assert_clean(&err, format);
    }
}

#[test]
fn profile_text_is_escaped_by_handshake_list() {
    let home = hostile_config_home();
    let env = [("XDG_CONFIG_HOME", home.path())];
    for format in ["text", "json"] {
        let (code, out, err) = run(&["--format", format, "handshake", "--list"], &env);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("evil"), "{out}");
        assert_clean(&out, &format!("handshake --list --format {format}"));
        if format == "json" {
            let line = out.lines().find(|l| l.contains("\"evil\"")).unwrap();
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["description"], HOSTILE, "read back as written");
        }
    }
}

#[test]
fn profile_text_is_escaped_by_the_handshake_report() {
    let home = hostile_config_home();
    let link = support::PtyLink::new();
    let env = [("XDG_CONFIG_HOME", home.path())];
    for format in ["text", "json"] {
        let port = support::path_str(&link.a()).to_string();
        let (_, out, err) = run(
            &[
                "--headless",
                "--no-capture",
                "--config",
                "/dev/null",
                "--format",
                format,
                "handshake",
                "evil",
                "--port",
                &port,
            ],
            &env,
        );
        assert!(out.contains("evil"), "{out}\n{err}");
        assert_clean(&out, &format!("handshake report --format {format}"));
        assert_clean(&err, "stderr");
    }
}

#[test]
fn device_text_with_bidi_and_zero_width_is_escaped_by_decode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("boot.log");
    std::fs::write(&file, format!("boot: {HOSTILE}\r\nready {HOSTILE}\r\n")).unwrap();
    for format in ["text", "json"] {
        let (_, out, err) = run(
            &[
                "--config",
                "/dev/null",
                "--format",
                format,
                "decode",
                support::path_str(&file),
            ],
            &[],
        );
        assert!(out.contains("boot"), "{out}\n{err}");
        assert_clean(&out, &format!("decode --format {format}"));
    }
}

#[test]
fn device_text_with_zero_width_is_escaped_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zw.hscap");
    let meta = CaptureMeta::new(
        HOSTILE,
        None,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut w = CaptureWriter::create(&path, &meta).unwrap();
    let events = [
        Event::Connection(ConnectionState::Up),
        Event::Rx(format!("boot: {HOSTILE}\r\n").into_bytes()),
        Event::Connection(ConnectionState::Down {
            reason: HOSTILE.to_string(),
        }),
    ];
    for (i, e) in events.into_iter().enumerate() {
        w.append(&TimedEvent::new(Duration::from_millis(i as u64 * 10), e));
    }
    w.sync();
    drop(w);
    let p = support::path_str(&path);
    for format in ["text", "json"] {
        let (code, out, err) = run(
            &[
                "--config",
                "/dev/null",
                "--headless",
                "--format",
                format,
                "replay",
                "--speed",
                "max",
                p,
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("boot"), "{out}");
        assert_clean(&out, &format!("replay --format {format}"));
        assert_clean(&err, "replay stderr");
    }
    let (code, out, err) = run(
        &["--config", "/dev/null", "export", p, "--to", "jsonl"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_clean(&out, "export --to jsonl");
}
