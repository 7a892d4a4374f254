//! Every session is recorded; `hsmon replay` plays it back through the same session, so the
//! frames and events come out as they did live. A capture cut by kill -9 still replays, a
//! full disk stops recording without stopping the session, and bad files are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Headless, hsmon_command};

fn records(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn frames(r: &[Value]) -> Vec<(String, u64, u64, String)> {
    r.iter()
        .filter(|x| x["type"] == "frame")
        .map(|x| {
            (
                x["protocol"].as_str().unwrap().to_string(),
                x["start"].as_u64().unwrap(),
                x["end"].as_u64().unwrap(),
                x["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_replay_gives_the_frames_and_events_of_the_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("tour.hscap");
    let live = hsmon_command()
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "--capture",
        ])
        .arg(&cap)
        .args(["demo", "tour", "--duration", "4"])
        .output()
        .unwrap();
    assert!(live.status.success());
    let live = records(&live.stdout);
    let replay = hsmon_command()
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "replay",
        ])
        .arg(&cap)
        .args(["--speed", "100"])
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(0));
    let replay = records(&replay.stdout);
    let f = frames(&live);
    assert!(f.len() >= 4, "the tour decodes frames: {f:?}");
    assert_eq!(frames(&replay), f);
    let ids = |r: &[Value]| -> Vec<String> {
        r.iter()
            .filter(|x| {
                x["type"] == "event" && x["id"].as_str().is_some_and(|i| !i.starts_with("hsmon."))
            })
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&replay), ids(&live));
    // The recorded times are kept.
    let t = |r: &[Value]| -> Vec<f64> {
        r.iter()
            .filter(|x| x["type"] == "rx")
            .map(|x| x["t"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(t(&replay), t(&live));
}

#[test]
fn a_capture_cut_by_kill_9_replays_what_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("killed.hscap");
    let mut h = Headless::start(&["--capture", cap.to_str().unwrap(), "demo", "tour"]);
    h.wait_for(Duration::from_secs(20), |r| {
        r["type"] == "frame" && r["protocol"] == "dlt645"
    });
    // Records reach the file within 100 ms; give them that, then pull the plug.
    std::thread::sleep(Duration::from_millis(300));
    let live_rx = h.rx_bytes();
    drop(h); // SIGKILL
    let out = hsmon_command()
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "replay",
        ])
        .arg(&cap)
        .args(["--speed", "100"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = records(&out.stdout);
    let replay_rx: Vec<u8> = r
        .iter()
        .filter(|x| x["type"] == "rx")
        .flat_map(|x| support::hex(x["hex"].as_str().unwrap()))
        .collect();
    assert!(
        replay_rx.len() >= live_rx.len() && replay_rx.starts_with(&live_rx),
        "replayed {} bytes, live showed {}",
        replay_rx.len(),
        live_rx.len()
    );
    let end = r
        .iter()
        .find(|x| x["type"] == "connection" && x["state"] == "down")
        .unwrap();
    assert!(
        end["reason"]
            .as_str()
            .unwrap()
            .starts_with("end of the capture"),
        "{end}"
    );
}

#[test]
fn a_full_disk_stops_recording_but_not_the_session() {
    let out = hsmon_command()
        .args(["--headless", "--format", "json", "--config", "/dev/null"])
        .args(["--capture", "/dev/full", "demo", "tour", "--duration", "2"])
        .output()
        .unwrap();
    // Issue 20: the session runs on, and the failure is loud: exit 3 (the device/I/O class),
    // an `hsmon.recording_stopped` record.
    assert_eq!(out.status.code(), Some(3));
    let r = records(&out.stdout);
    assert!(r.iter().any(|x| x["type"] == "frame"), "the session ran on");
    assert!(r.iter().any(|x| x["id"] == "hsmon.recording_stopped"));
}

#[test]
fn replay_refuses_what_is_not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.txt");
    std::fs::write(&f, "hello, not a capture\n").unwrap();
    for (path, word) in [
        (f.as_path(), "not"),
        (dir.path().join("missing").as_path(), ""),
    ] {
        let out = hsmon_command()
            .args(["--headless", "--config", "/dev/null", "replay"])
            .arg(path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(word), "{err}");
    }
    let out = hsmon_command()
        .args(["--headless", "replay", "x", "--speed=-2"])
        .output()
        .unwrap();
    // 0 is `--speed max` now; a negative speed is refused before the file is opened.
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max"));
}

/// Issue 20: a paced replay of a damaged capture gave a count of skipped records without
/// where they are; the end now names their offsets.
#[test]
fn paced_replay_names_the_offsets_of_damaged_records() {
    use hsmon::capture::{CaptureMeta, CaptureWriter};
    use hsmon::event::{ConnectionState, Event, TimedEvent};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.hscap");
    let meta = CaptureMeta::new(
        "t",
        None,
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut w = CaptureWriter::create(&path, &meta).unwrap();
    w.append(&TimedEvent::new(
        Duration::ZERO,
        Event::Connection(ConnectionState::Up),
    ));
    for i in 0..10u64 {
        w.append(&TimedEvent::new(
            Duration::from_millis(1 + i),
            Event::Rx(vec![b'a' + i as u8; 200]),
        ));
    }
    w.sync();
    drop(w);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let out = hsmon_command()
        .args(["--config", "/dev/null", "--headless", "--format", "json"])
        .args(["replay", "--speed", "1000"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let end = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| r["reason"].as_str().map(str::to_string))
        .find(|r| r.contains("end of the capture"))
        .unwrap_or_else(|| panic!("no end record: {stdout}"));
    assert!(end.contains("damaged record(s) skipped"), "{end}");
    assert!(end.contains("at byte "), "the offsets are named: {end}");
}
