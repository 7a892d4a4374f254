//! Headless JSON for log pipelines (issue 18, item 4): a `session` record first, `ts` (RFC 3339,
//! UTC, microseconds) right after `t` in every record, `t` rounded to microseconds, the
//! `--label` members last, reads split at 4 KiB, and `type`, `t`, `ts` as the first members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsmon::capture::{CaptureMeta, CaptureWriter};
use hsmon::event::{Event, TimedEvent};
use serde_json::Value;
use support::{Headless, PtyLink, hex, path_str, run_hsmon};

const T: Duration = Duration::from_secs(10);

/// Nanoseconds since the epoch of `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly that shape: UTC,
/// microseconds), or a panic naming what is wrong.
fn parse_ts(ts: &str) -> i64 {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 27, "{ts}: not YYYY-MM-DDTHH:MM:SS.ffffffZ");
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        assert_eq!(b[i], c, "{ts}: byte {i}");
    }
    let n = |r: std::ops::Range<usize>| -> i64 { ts[r].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs * 1_000_000_000 + n(20..26) * 1000
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The member names of a JSON line in the order written (serde_json keeps order here).
fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The `"t":` number of a raw line as written.
fn raw_t(line: &str) -> &str {
    let from = line.find(",\"t\":").unwrap() + 5;
    let len = line[from..].find(',').unwrap();
    &line[from..from + len]
}

/// Every record's stamp: `type`, `t`, `ts` first, `ts` = the start + `t` (to the microsecond),
/// `t` with at most 6 decimals, the labels last. Returns the parsed records.
fn check_stamped(stdout: &str, labels: &[(&str, &str)], before: i64, after: i64) -> Vec<Value> {
    let mut records = Vec::new();
    let mut start: Option<i64> = None;
    let mut last_t = 0.0;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let k = keys(&v);
        assert_eq!(k[..3], ["type", "t", "ts"], "{line}");
        let t_text = raw_t(line);
        let decimals = t_text.split_once('.').map_or(0, |(_, f)| f.len());
        assert!(decimals <= 6, "t {t_text} has more than 6 decimals: {line}");
        let t = v["t"].as_f64().unwrap();
        assert!(
            t >= last_t - 1e-9 || v["type"] != "rx",
            "t goes back: {line}"
        );
        last_t = last_t.max(t);
        let ts = parse_ts(v["ts"].as_str().unwrap());
        assert!(
            ts >= before - 1_000_000_000 && ts <= after + 1_000_000_000,
            "ts {} is not now: {line}",
            v["ts"]
        );
        let t_ns = (t * 1e6).round() as i64 * 1000;
        let s = *start.get_or_insert(ts - t_ns);
        assert!((ts - t_ns - s).abs() <= 1000, "ts and t disagree: {line}");
        let tail = &k[k.len() - labels.len()..];
        for ((key, value), got) in labels.iter().zip(tail) {
            assert_eq!(got, key, "labels last: {line}");
            assert_eq!(v[*key], *value, "{line}");
        }
        records.push(v);
    }
    records
}

#[test]
fn demo_records_carry_session_ts_and_labels() {
    let before = now_ns();
    let (code, stdout, stderr) = run_hsmon(&[
        "--headless",
        "--format",
        "json",
        "--config",
        "/dev/null",
        "--no-capture",
        "--label",
        "site=lab",
        "--label",
        "port=meter1",
        "demo",
        "tour",
        "--duration",
        "2",
    ]);
    let after = now_ns();
    assert_eq!(code, 0, "{stderr}");
    let records = check_stamped(
        &stdout,
        &[("site", "lab"), ("port", "meter1")],
        before,
        after,
    );
    assert!(records.len() > 10, "{stdout}");
    let s = &records[0];
    assert_eq!(s["type"], "session", "{s}");
    assert_eq!(s["t"], 0.0);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["source"].as_str().unwrap().contains("tour"), "{s}");
    assert!(
        s["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "site=lab")
    );
    assert!(s["capture"].is_null(), "--no-capture: {s}");
    assert_eq!(
        keys(s),
        [
            "type", "t", "ts", "version", "host", "command", "source", "settings", "capture",
            "site", "port"
        ]
    );
    assert_eq!(records.iter().filter(|r| r["type"] == "session").count(), 1);
    assert!(records.iter().any(|r| r["type"] == "rx"));
}

#[test]
fn a_burst_gives_rx_records_of_at_most_4_kib() {
    let link = PtyLink::new();
    let mut h = Headless::start(&[
        "--no-capture",
        "--label",
        "port=meter1",
        "serial",
        path_str(&link.a()),
        "-b",
        "115200",
    ]);
    let first = h.wait_for(T, |_| true);
    assert_eq!(first["type"], "session", "{first}");
    assert_eq!(first["port"], "meter1");
    h.wait_for(T, |r| r["type"] == "connection" && r["state"] == "up");
    let data: Vec<u8> = (0..65_536u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut dev = link.device();
    dev.write_all(&data).unwrap();
    dev.flush().unwrap();
    h.wait_rx_len(data.len(), T);
    assert_eq!(h.rx_bytes(), data);
    for r in h.records.iter().filter(|r| r["type"] == "rx") {
        let n = hex(r["hex"].as_str().unwrap()).len();
        assert!(n <= 4096, "an rx record with {n} bytes");
        assert_eq!(r["port"], "meter1");
        assert!(r["ts"].is_string());
    }
    let (code, err) = h.stop();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_bad_label_is_a_usage_error() {
    for (arg, says) in [
        ("ts=now", "hsmon writes itself"),
        ("hex=1", "hsmon writes itself"),
        ("type=x", "hsmon writes itself"),
        ("si te=lab", "letters, digits"),
        ("=lab", "letters, digits"),
        ("site", "KEY=VALUE"),
    ] {
        let (code, stdout, stderr) = run_hsmon(&[
            "--headless",
            "--format",
            "json",
            "--no-capture",
            "--label",
            arg,
            "demo",
            "tour",
            "--duration",
            "1",
        ]);
        assert_eq!(code, 2, "--label {arg}: {stderr}");
        assert!(stderr.contains(says), "--label {arg}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
}

#[test]
fn jsonl_export_starts_with_the_session_and_stamps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("burst.hscap");
    let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let meta = CaptureMeta::new("serial /dev/ttyUSB0", None, start);
    let mut w = CaptureWriter::create(&path, &meta).unwrap();
    let burst: Vec<u8> = (0..65_536u32).map(|i| (i % 253) as u8).collect();
    w.append(&TimedEvent::new(
        Duration::from_nanos(2_507_707_684),
        Event::Rx(burst.clone()),
    ));
    w.append(&TimedEvent::new(
        Duration::from_millis(3000),
        Event::Tx(vec![0x10, 0x5b]),
    ));
    w.sync();
    assert_eq!(w.failed(), None);
    drop(w);
    let (code, stdout, stderr) = run_hsmon(&[
        "export",
        path_str(&path),
        "--to",
        "jsonl",
        "--label",
        "site=lab",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let s0 = parse_ts("2023-11-14T22:13:20.123456Z");
    let records = check_stamped(&stdout, &[("site", "lab")], s0, s0 + 4_000_000_000);
    assert_eq!(records[0]["type"], "session");
    assert_eq!(records[0]["ts"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(records[0]["source"], "serial /dev/ttyUSB0");
    assert_eq!(records[0]["version"], env!("CARGO_PKG_VERSION"));
    let rx: Vec<&Value> = records.iter().filter(|r| r["type"] == "rx").collect();
    assert_eq!(rx.len(), 16, "64 KiB in 4 KiB records");
    let mut got = Vec::new();
    for r in &rx {
        assert_eq!(r["t"], 2.507708);
        assert_eq!(r["ts"], "2023-11-14T22:13:22.631164Z");
        got.extend(hex(r["hex"].as_str().unwrap()));
    }
    assert_eq!(got, burst);
    assert_eq!(records.last().unwrap()["type"], "tx");
    assert_eq!(records.last().unwrap()["ts"], "2023-11-14T22:13:23.123456Z");
}

/// docs/records.schema.json knows every record type the demo prints, and each record has its
/// type's required members, in the schema's order, and nothing else but string labels.
#[test]
fn records_follow_docs_records_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/records.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let branches = schema["oneOf"].as_array().unwrap();
    let mut stdout = String::new();
    for scenario in ["tour", "card"] {
        let (code, out, stderr) = run_hsmon(&[
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "--no-capture",
            "--label",
            "site=lab",
            "demo",
            scenario,
            "--duration",
            "2",
        ]);
        // The demo card script has a step that fails on purpose: status 1.
        let want = if scenario == "card" { 1 } else { 0 };
        assert_eq!(code, want, "{scenario}: {stderr}");
        stdout.push_str(&out);
    }
    for ty in ["session", "rx", "frame", "event", "apdu", "card"] {
        assert!(
            stdout.contains(&format!("{{\"type\":\"{ty}\"")),
            "no {ty} record"
        );
    }
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let ty = v["type"].as_str().unwrap();
        let branch = branches
            .iter()
            .find(|b| b["properties"]["type"]["const"] == ty)
            .unwrap_or_else(|| panic!("no schema for type {ty}"));
        let props: Vec<&String> = branch["properties"].as_object().unwrap().keys().collect();
        for req in branch["required"].as_array().unwrap() {
            assert!(
                v.get(req.as_str().unwrap()).is_some(),
                "{req} missing: {line}"
            );
        }
        // Own members in the schema's order, then labels.
        let mut last = 0;
        for k in keys(&v) {
            match props.iter().position(|p| **p == k) {
                Some(i) => {
                    assert!(i >= last, "{k} out of order: {line}");
                    last = i;
                }
                None => assert!(v[&k].is_string() && k == "site", "{k}: {line}"),
            }
        }
    }
}
