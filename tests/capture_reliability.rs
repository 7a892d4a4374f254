//! Issue 20, "nothing lost": the capture holds every byte the source read and every byte
//! hsmon sent, whatever stdout does (a slow reader while the device floods); a stall is one
//! overrun record; and headless says when recording failed (a stderr line, an
//! `hsmon.recording_stopped` record, exit status 3).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hsmon::capture::CaptureReader;
use hsmon::event::Event;
use serde_json::Value;
use support::{hex, hsmon_command, path_str};

/// The byte at `i` of the flood: a pattern whose every prefix is known.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Headless with a slow reader on stdout while a TCP peer floods: a `send-text` on stdin
/// reaches the device, its `tx` record is on stdout and in the capture, the capture has
/// every byte the peer sent, the overrun count is received bytes only, in few records.
#[test]
fn a_flood_with_a_slow_stdout_loses_nothing_in_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("flood.hscap");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The peer: floods until it hears "hello", one more second, then closes.
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let mut sent = 0u64;
        let mut heard = Vec::new();
        let mut heard_at = None;
        let start = Instant::now();
        loop {
            // 16 KiB a millisecond for 3 s (past the sink's 8 MiB bound), then 1 KiB: still
            // five times what the slow reader takes, without filling the disk.
            let size = if start.elapsed() < Duration::from_secs(3) {
                16 * 1024
            } else {
                1024
            };
            let chunk: Vec<u8> = (sent..sent + size).map(pattern).collect();
            let mut off = 0;
            while off < chunk.len() {
                match s.write(&chunk[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => panic!("peer write: {e}"),
                }
            }
            sent += chunk.len() as u64;
            let mut buf = [0u8; 256];
            if let Ok(n) = s.read(&mut buf) {
                heard.extend_from_slice(&buf[..n]);
            }
            if heard_at.is_none() && heard.windows(5).any(|w| w == b"hello") {
                heard_at = Some(Instant::now());
            }
            if heard_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1))
                || start.elapsed() > Duration::from_secs(30)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (sent, heard)
    });
    let mut child = hsmon_command()
        .args(["--headless", "--format", "json", "--config", "/dev/null"])
        .args(["--capture", path_str(&cap)])
        .args(["tcp", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The slow reader: a line (up to 4 KiB of bytes) every 20 ms until told to hurry.
    let hurry = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().unwrap();
    let (records_tx, records_rx) = std::sync::mpsc::channel::<Value>();
    let reader = {
        let hurry = hurry.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(4096, stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = records_tx.send(serde_json::from_str::<Value>(&line).unwrap());
                    }
                }
                if !hurry.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    // Send while the sink is past its bound (8 MiB held back): at 16 MiB/s, after 2 s.
    std::thread::sleep(Duration::from_secs(2));
    writeln!(stdin, "send-text hello").unwrap();
    stdin.flush().unwrap();
    let (sent, heard) = peer.join().unwrap();
    assert!(
        heard.windows(5).any(|w| w == b"hello"),
        "the device got the text"
    );
    hurry.store(true, Ordering::Relaxed);
    // hsmon works through its backlog (a debug build decodes slowly): wait until every byte
    // sent is shown or counted, then end it.
    let bytes_of = |r: &Value| hex(r["hex"].as_str().unwrap()).len() as u64;
    let mut records = Vec::new();
    let mut accounted = 0u64;
    let until = Instant::now() + Duration::from_secs(120);
    while accounted < sent && Instant::now() < until {
        if let Ok(r) = records_rx.recv_timeout(Duration::from_secs(1)) {
            if r["type"] == "rx" {
                accounted += bytes_of(&r);
            }
            if r["id"] == "hsmon.overrun" {
                accounted += r["dropped_bytes"].as_u64().unwrap();
            }
            records.push(r);
        }
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    drop(stdin);
    reader.join().unwrap();
    records.extend(records_rx.try_iter());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");

    // The capture: every byte the peer sent, in order, and the tx.
    let mut r = CaptureReader::open(&cap).unwrap();
    let mut rx = Vec::new();
    let mut cap_tx = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        match rec.event.event {
            Event::Rx(b) => rx.extend(b),
            Event::Tx(b) => cap_tx.extend(b),
            _ => {}
        }
    }
    assert_eq!(cap_tx, b"hello", "the capture has the tx");
    assert_eq!(rx.len() as u64, sent, "the capture has every byte read");
    assert!(
        rx.iter().enumerate().all(|(i, &b)| b == pattern(i as u64)),
        "in order"
    );

    // stdout: the tx record is there; the overrun counts received bytes only, in few records.
    let tx: Vec<u8> = records
        .iter()
        .filter(|r| r["type"] == "tx")
        .flat_map(|r| hex(r["hex"].as_str().unwrap()))
        .collect();
    assert_eq!(tx, b"hello", "the tx record is on stdout");
    let rx_shown: u64 = records
        .iter()
        .filter(|r| r["type"] == "rx")
        .map(|r| hex(r["hex"].as_str().unwrap()).len() as u64)
        .sum();
    let overruns: Vec<u64> = records
        .iter()
        .filter(|r| r["id"] == "hsmon.overrun")
        .map(|r| r["dropped_bytes"].as_u64().unwrap())
        .collect();
    let dropped: u64 = overruns.iter().sum();
    eprintln!(
        "sent {sent}, shown {rx_shown}, not shown {dropped} in {} overrun records",
        overruns.len()
    );
    assert!(dropped > 0, "the test must make the sink drop: {sent} sent");
    assert_eq!(rx_shown + dropped, sent, "shown + not shown = read");
    assert!(
        overruns.len() <= 40,
        "one overrun record per gap (a stall), not per read: {}",
        overruns.len()
    );
}

/// Runs a short headless demo with `args`; returns (status, stdout records, stderr).
fn demo(env: &[(&str, &std::path::Path)], args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut cmd = hsmon_command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["--headless", "--format", "json", "--config", "/dev/null"])
        .args(args)
        .args(["demo", "tour", "--duration", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code(),
        records,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--capture /dev/full` opens but every write fails: recording stops during the session.
/// Headless says so on stderr and as a record, and exits 3.
#[test]
fn a_capture_that_cannot_be_written_is_loud_in_headless() {
    let (status, records, err) = demo(&[], &["--capture", "/dev/full"]);
    assert_eq!(status, Some(3), "{err}");
    assert!(err.contains("disk full"), "{err}");
    let stopped: Vec<&Value> = records
        .iter()
        .filter(|r| r["id"] == "hsmon.recording_stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "{records:#?}");
    assert_eq!(stopped[0]["type"], "event");
    assert_eq!(stopped[0]["severity"], "error");
    assert_eq!(stopped[0]["capture"], "/dev/full");
    assert_eq!(stopped[0]["reason"], "disk full");
}

/// The default capture folder cannot be made (XDG_STATE_HOME is a file): recording never
/// started. Headless says so on stderr and as a record, and exits 3.
#[test]
fn a_default_capture_that_cannot_start_is_loud_in_headless() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(&state, b"not a directory").unwrap();
    let (status, records, err) = demo(&[("XDG_STATE_HOME", &state)], &[]);
    assert_eq!(status, Some(3), "{err}");
    assert!(err.contains("not recording"), "{err}");
    assert_eq!(
        records
            .iter()
            .filter(|r| r["id"] == "hsmon.recording_stopped")
            .count(),
        1,
        "{records:#?}"
    );
}
