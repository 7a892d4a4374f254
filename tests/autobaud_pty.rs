//! End to end over a real pseudo-terminal: a peer plays a 9600 8N1 device whose bytes pass
//! through the bit-level line model at whatever rate hsmon has set (a pty carries bytes, not
//! bits, so the peer garbles them as a real UART at that rate would). `hsmon serial
//! --autobaud --headless` must name the true rate and exit 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hsmon::event::{Baud, FrameFormat};
use hsmon::uart_line::{Receiver, Sender, UartLink};
use support::{Headless, PtyLink, path_str};

const BOOT_LOG: &[&str] = &[
    "U-Boot 2021.07 (Mar 12 2024 - 10:31:07 +0000)\r\n",
    "DRAM:  256 MiB\r\n",
    "Hit any key to stop autoboot:  0\r\n",
    "Starting kernel ...\r\n",
];

/// The device: text at 9600 8N1, read through the line model at `monitor` bps.
fn play_device(
    link: &PtyLink,
    monitor: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let mut dev = link.device();
    std::thread::spawn(move || {
        let rate = |bps: u32| Baud::new(bps).unwrap();
        let mut heard = monitor.load(Ordering::SeqCst);
        let mut wire = UartLink::new(
            Sender::new(rate(9600), FrameFormat::default()),
            Receiver::new(rate(heard), FrameFormat::default()),
        );
        let start = Instant::now();
        let (mut sent_until, mut line) = (0.0, 0usize);
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            let now = start.elapsed().as_secs_f64();
            let m = monitor.load(Ordering::SeqCst);
            if m != heard {
                heard = m;
                wire.set_receiver(Receiver::new(rate(m), FrameFormat::default()), now);
            }
            while sent_until < now + 0.1 {
                let text = BOOT_LOG[line % BOOT_LOG.len()].as_bytes();
                sent_until = wire.send(sent_until, text) + 0.01;
                line += 1;
            }
            let bytes = wire.receive_until(now).bytes();
            if !bytes.is_empty() && dev.write_all(&bytes).is_err() {
                break;
            }
        }
    })
}

#[test]
fn autobaud_names_the_device_rate_over_a_pty() {
    let link = PtyLink::new();
    let monitor = Arc::new(AtomicU32::new(115_200));
    let stop = Arc::new(AtomicBool::new(false));
    let peer = play_device(&link, monitor.clone(), stop.clone());
    let mut h = Headless::start(&["serial", path_str(&link.a()), "-b", "115200", "--autobaud"]);
    // Every settings record retunes the peer's model of the wire.
    let end = h.wait_for(Duration::from_secs(60), |r| {
        if r["type"] == "settings" {
            monitor.store(r["baud"].as_u64().unwrap() as u32, Ordering::SeqCst);
        }
        r["type"] == "baud" && (r["state"] == "locked" || r["state"] == "none")
    });
    stop.store(true, Ordering::SeqCst);
    assert_eq!(end["state"], "locked", "{end}");
    assert_eq!(end["baud"], 9600, "{end}");
    assert_eq!(end["format"], "8N1");
    assert!(end["score"].as_f64().unwrap() >= 0.6, "{end}");
    // The scan reported the candidates it tried, with the garbage rates scored low.
    let tried: Vec<u64> = h
        .records
        .iter()
        .filter(|r| r["type"] == "baud" && r["state"] == "trying")
        .map(|r| r["baud"].as_u64().unwrap())
        .collect();
    assert!(tried.contains(&9600), "{tried:?}");
    for r in h.records.iter().filter(|r| r["state"] == "scored") {
        if r["baud"] != 9600 {
            assert!(r["score"].as_f64().unwrap() < 0.6, "{r}");
        }
    }
    let (code, err) = h.stop();
    assert_eq!(code, 0, "exit 0 once the scan locks; stderr: {err}");
    peer.join().unwrap();
}
