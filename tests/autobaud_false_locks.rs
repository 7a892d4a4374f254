//! Auto-baud must not lock on garbage: what a receiver reads from a device at another rate,
//! at every pair of the common rates (1200 … 921600, 14400 and 74880 included), devices
//! faster and slower than the receiver, text and binary (M-Bus) payloads. A dwell "locks
//! falsely" when the scan would stop on it (a prefix of 32+ bytes scoring at the early-accept
//! level) or propose it (its final score at the lock level).
//!
//! The garbage comes from two sources: hsmon's own line model (`uart_line`) and the
//! independent emulator `tests/uart_emulator.py`, written from the UART specification. The
//! error counters are left out (a pty or a USB bridge reports none): with them, garbage only
//! scores lower.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::process::Command;

use hsmon::diagnose::baud::live_scan::LOCK_SCORE;
use hsmon::diagnose::baud::scoring::{COMMON_RATES, Evidence, checked_frames, score};
use hsmon::event::{Baud, FrameFormat, LineErrorCounts};
use hsmon::uart_line::{Receiver, Sender, SplitMix64, UartLink};

/// Bytes a dwell holds at most (`baud::live_scan::DWELL`).
const DWELL_BYTES: usize = 256;
/// The early-accept score of the scan (`ActiveScan::new`) and the bytes it needs.
const ACCEPT_SCORE: f64 = 0.95;
const ACCEPT_BYTES: usize = 32;
/// Allowed share of false locks.
const MAX_FALSE: f64 = 0.01;

const LOG_LINES: &[&str] = &[
    "U-Boot 2021.07 (Mar 12 2024 - 10:31:07 +0000)\r\n",
    "DRAM:  256 MiB\r\n",
    "Hit any key to stop autoboot:  0\r\n",
    "[    1.234567] serial: ttyS0 at MMIO 0x1c28000 (irq = 32) is a 16550A\r\n",
    "ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n",
    "app: heartbeat ok; uptime 3 days, load 0.42\r\n",
];

/// EN 13757-2 long frame with its checksum.
fn mbus_long(c: u8, a: u8, ci: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![c, a, ci];
    body.extend_from_slice(data);
    let cs = body.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    let l = body.len() as u8;
    let mut f = vec![0x68, l, l, 0x68];
    f.extend(body);
    f.extend([cs, 0x16]);
    f
}

/// A meter polled for data: REQ_UD2 short frames, RSP_UD telegrams, E5 acks.
fn mbus_units(rng: &mut SplitMix64) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    for i in 0..12u8 {
        let e = rng.next_u64().to_le_bytes();
        let data = [
            0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07, i, 0, 0, 0, 0x04, 0x06, e[0], e[1],
            e[2], 0, 0x02, 0x13, e[3], e[4],
        ];
        let poll = [0x10, 0x5B, 0x02, 0x5D, 0x16];
        units.push(poll.to_vec());
        units.push(mbus_long(0x08, 0x02, 0x72, &data));
        units.push(vec![0xE5]);
    }
    units
}

#[derive(Clone, Copy, Debug)]
enum Payload {
    Text,
    Mbus,
    Mixed,
}

fn units(p: Payload, rng: &mut SplitMix64) -> Vec<Vec<u8>> {
    let text = || LOG_LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
    match p {
        Payload::Text => text(),
        Payload::Mbus => mbus_units(rng),
        Payload::Mixed => {
            let mut u: Vec<Vec<u8>> = text();
            u.extend(mbus_units(rng));
            u
        }
    }
}

/// Whether the scan would stop on or propose a dwell holding `bytes` (no error counters).
fn locks(bytes: &[u8]) -> Option<f64> {
    let bytes = &bytes[..bytes.len().min(DWELL_BYTES)];
    let at = |n: usize| {
        let frames = checked_frames(&bytes[..n]);
        score(&Evidence {
            bytes: &bytes[..n],
            errors: LineErrorCounts::default(),
            frames: &frames,
        })
        .value
    };
    let mut n = ACCEPT_BYTES;
    while n < bytes.len() {
        let s = at(n);
        if s >= ACCEPT_SCORE {
            return Some(s);
        }
        n += 16;
    }
    let s = at(bytes.len());
    (s >= LOCK_SCORE).then_some(s)
}

/// The rates the scan tries plus 14400 (all of them common rates).
fn rates() -> Vec<u32> {
    let mut r = COMMON_RATES.to_vec();
    if !r.contains(&14_400) {
        r.push(14_400);
    }
    r
}

/// What a receiver at `rx` reads in one dwell from a device at `dev` sending `p`, through
/// hsmon's line model.
fn model_dwell(p: Payload, dev: u32, rx: u32, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let ppm = (rng.next_f64() - 0.5) * 30_000.0;
    let sender = Sender::new(Baud::new(dev).unwrap(), FrameFormat::default()).with_clock_ppm(ppm);
    let char_time = sender.char_time();
    let mut link = UartLink::new(
        sender,
        Receiver::new(Baud::new(rx).unwrap(), FrameFormat::default()),
    );
    let units = units(p, &mut rng);
    let span = (DWELL_BYTES as f64 * 10.0 / f64::from(rx) * 1.5).min(2.0);
    let mut i = rng.below(units.len() as u64) as usize;
    let mut t = rng.next_f64() * 0.01;
    while t < span {
        t = link.send(t, &units[i % units.len()]);
        i += 1;
        t += (2.0 + 8.0 * rng.next_f64()) * char_time;
    }
    link.receive_until(span).bytes()
}

#[test]
fn garbage_from_the_line_model_at_every_wrong_rate_pair_does_not_lock() {
    let rates = rates();
    let (mut dwells, mut falses) = (0usize, Vec::new());
    for p in [Payload::Text, Payload::Mbus, Payload::Mixed] {
        for seed in 0..3u64 {
            for &dev in &rates {
                for &rx in &rates {
                    if (f64::from(dev) / f64::from(rx) - 1.0).abs() < 0.05 {
                        continue;
                    }
                    let bytes = model_dwell(p, dev, rx, seed * 1_000_003 + u64::from(dev ^ rx));
                    dwells += 1;
                    if let Some(s) = locks(&bytes) {
                        falses.push(format!("{p:?} device {dev} read at {rx}: {s:.2}"));
                    }
                }
            }
        }
    }
    let share = falses.len() as f64 / dwells as f64;
    println!(
        "line model: {} false locks in {dwells} dwells",
        falses.len()
    );
    assert!(
        share < MAX_FALSE,
        "line model: {} false locks in {dwells} dwells ({:.2} %): {falses:#?}",
        falses.len(),
        share * 100.0
    );
}

#[test]
fn garbage_from_the_independent_emulator_at_every_wrong_rate_pair_does_not_lock() {
    support::require("python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/uart_emulator.py");
    let out = Command::new("python3")
        .args([script, "corpus", "--payloads", "text,mbus", "--seeds", "2"])
        .output()
        .expect("python3 runs the emulator");
    assert!(
        out.status.success(),
        "uart_emulator.py corpus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut dwells, mut falses) = (0usize, Vec::new());
    let mut pairs = std::collections::HashSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let hex = v["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        dwells += 1;
        pairs.insert((
            v["device"].as_u64().unwrap(),
            v["receiver"].as_u64().unwrap(),
        ));
        if let Some(s) = locks(&bytes) {
            falses.push(format!(
                "{} device {} read at {}: {s:.2}",
                v["payload"], v["device"], v["receiver"]
            ));
        }
    }
    let n = rates().len();
    assert_eq!(pairs.len(), n * (n - 1), "every wrong rate pair");
    let share = falses.len() as f64 / dwells as f64;
    println!("emulator: {} false locks in {dwells} dwells", falses.len());
    assert!(
        share < MAX_FALSE,
        "emulator: {} false locks in {dwells} dwells ({:.2} %): {falses:#?}",
        falses.len(),
        share * 100.0
    );
}
