//! `hsmon replay --speed max` (and `--speed 0`) headless: a capture spanning seconds plays in
//! well under one, every record in order; `--speed` refuses what is not a speed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant, UNIX_EPOCH};

use hsmon::capture::{CaptureMeta, CaptureWriter};
use hsmon::event::{ConnectionState, Event, TimedEvent};
use serde_json::Value;
use support::{path_str, run_hsmon};

/// 200 received chunks over 6 s (one every 30 ms), between a connection up and down.
fn write_capture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("six-seconds.hscap");
    let meta = CaptureMeta::new(
        "serial /dev/ttyUSB0",
        None,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut w = CaptureWriter::create(&path, &meta).unwrap();
    let mut events = vec![TimedEvent::new(
        Duration::ZERO,
        Event::Connection(ConnectionState::Up),
    )];
    for i in 0..200u64 {
        events.push(TimedEvent::new(
            Duration::from_millis(30 * (i + 1)),
            Event::Rx(vec![(i % 256) as u8, 0x16]),
        ));
    }
    for e in &events {
        w.append(e);
    }
    w.sync();
    assert_eq!(w.failed(), None);
    path
}

#[test]
fn speed_max_and_0_replay_seconds_in_well_under_one_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture(dir.path());
    for speed in ["max", "0"] {
        let t0 = Instant::now();
        let (code, out, err) = run_hsmon(&[
            "--config",
            "/dev/null",
            "--headless",
            "--format",
            "json",
            "replay",
            path_str(&cap),
            "--speed",
            speed,
        ]);
        let took = t0.elapsed();
        assert_eq!(code, 0, "--speed {speed}: {err}");
        let recs: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let rx: Vec<u64> = recs
            .iter()
            .filter(|r| r["type"] == "rx")
            .map(|r| u64::from_str_radix(&r["hex"].as_str().unwrap()[..2], 16).unwrap())
            .collect();
        assert_eq!(rx, (0..200).collect::<Vec<_>>(), "--speed {speed}: {out}");
        assert!(
            took < Duration::from_millis(900),
            "--speed {speed}: a 6 s capture took {took:?}"
        );
    }
}

#[test]
fn speed_refuses_what_is_not_a_speed() {
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture(dir.path());
    for bad in ["-1", "fast", "inf", "NaN"] {
        let arg = format!("--speed={bad}");
        let (code, _, err) = run_hsmon(&["--headless", "replay", path_str(&cap), &arg]);
        assert_eq!(code, 2, "--speed {bad}: {err}");
        assert!(err.contains("max"), "--speed {bad}: {err}");
    }
}
