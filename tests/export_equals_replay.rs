//! One record schema (issue 15, item 3): `hsmon export CAPTURE --to jsonl` is exactly what
//! `hsmon --headless --format json replay CAPTURE --speed max` prints, record for record,
//! frames and events included; and a capture's strings reach neither output raw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use hsmon::capture::{CaptureMeta, CaptureWriter};
use hsmon::event::{ConnectionState, Event, TimedEvent};
use hsmon::sanitize::is_unsafe;
use serde_json::Value;
use support::{path_str, run_hsmon};

/// The replay's and the export's JSON lines of `capture`, both with a label.
fn replay_and_export(capture: &std::path::Path) -> (String, String) {
    let (code, replay, stderr) = run_hsmon(&[
        "--headless",
        "--format",
        "json",
        "--config",
        "/dev/null",
        "--label",
        "site=lab",
        "replay",
        path_str(capture),
        "--speed",
        "max",
    ]);
    assert_eq!(code, 0, "replay: {stderr}");
    let (code, export, stderr) = run_hsmon(&[
        "export",
        path_str(capture),
        "--to",
        "jsonl",
        "--label",
        "site=lab",
    ]);
    assert_eq!(code, 0, "export: {stderr}");
    (replay, export)
}

fn assert_same_lines(replay: &str, export: &str) {
    for (n, (r, e)) in replay.lines().zip(export.lines()).enumerate() {
        assert_eq!(r, e, "record {n} differs");
    }
    assert_eq!(replay.lines().count(), export.lines().count());
}

#[test]
fn jsonl_export_equals_the_headless_replay_record_for_record() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("tour.hscap");
    // A real capture: the tour demo (boot log, M-Bus, IEC 104 and DL/T 645 frames) recorded
    // by a headless run.
    let (code, live, stderr) = run_hsmon(&[
        "--headless",
        "--format",
        "json",
        "--config",
        "/dev/null",
        "--capture",
        path_str(&capture),
        "demo",
        "tour",
        "--duration",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(live.contains("\"type\":\"frame\""), "{live}");

    let (replay, export) = replay_and_export(&capture);
    assert_same_lines(&replay, &export);

    let records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |ty: &str| records.iter().filter(|r| r["type"] == ty).count();
    assert_eq!(records[0]["type"], "session");
    assert_eq!(count("session"), 1);
    assert!(count("rx") > 0, "{export}");
    assert!(count("frame") > 0, "frames: {export}");
    assert!(count("event") > 0, "events: {export}");
    assert!(records.iter().all(|r| r["site"] == "lab"));
    // `ts` counts from the capture's start: the session record says when the demo started.
    let live_start = live
        .lines()
        .next()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["ts"].clone())
        .unwrap();
    assert_eq!(records[0]["ts"], live_start);
    // The live run's frames are the replay's, time for time.
    let frames = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["type"] == "frame")
            .map(|r| (r["t"].to_string(), r["summary"].to_string()))
            .collect()
    };
    assert_eq!(frames(&live), frames(&export));
}

#[test]
fn a_captures_strings_reach_neither_output_raw() {
    let hostile = "evil\x1b]52;c;eA==\x07\x1b[2J\u{9b}31m\u{202e}rev\u{2066}\u{200b}\u{200e}\u{61c}\u{feff}\u{2060}\u{7f}\u{85}end";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.hscap");
    let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let meta = CaptureMeta::new(hostile, None, start);
    let mut w = CaptureWriter::create(&path, &meta).unwrap();
    let events = [
        Event::Connection(ConnectionState::Up),
        Event::Rx(format!("boot: {hostile}\r\n").into_bytes()),
        Event::Connection(ConnectionState::Down {
            reason: hostile.to_string(),
        }),
    ];
    for (i, event) in events.into_iter().enumerate() {
        w.append(&TimedEvent::new(
            Duration::from_millis(i as u64 * 10),
            event,
        ));
    }
    w.sync();
    drop(w);
    let (replay, export) = replay_and_export(&path);
    assert_same_lines(&replay, &export);
    let mut reasons = 0;
    for line in export.lines() {
        if let Some(c) = line.chars().find(|&c| is_unsafe(c)) {
            panic!("{c:?} raw in {line}");
        }
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "session" {
            assert_eq!(v["source"], hostile, "read back as recorded");
        }
        if v["reason"] == hostile {
            reasons += 1;
        }
    }
    assert_eq!(reasons, 1, "{export}");
    assert!(export.contains("\\u009b") && export.contains("\\u200b") && export.contains("\\ufeff"));
}
