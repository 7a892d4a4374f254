//! `hsmon handshake` in a real terminal (tmux): the handshake pane above the usual panes shows
//! the steps, the diffed reply and the explanation, while the hex and events panes show the
//! same run as ordinary traffic; q quits with the run's exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};

use support::peer::{Fault, Peer, Reply};
use support::tmux::Tmux;
use support::{PtyLink, hsmon_bin, path_str};

#[test]
fn the_pane_shows_the_divergence_over_the_ordinary_panes() {
    let link = PtyLink::new();
    let mut dev = link.device();
    std::thread::spawn(move || {
        let mut peer = Peer::new("mbus", Fault::LongFrame).unwrap();
        let mut buf = [0u8; 256];
        while let Ok(n) = dev.read(&mut buf) {
            if n == 0 {
                break;
            }
            for r in peer.on_bytes(&buf[..n]) {
                if let Reply::Bytes(b) = r {
                    let _ = dev.write_all(&b);
                }
            }
        }
    });
    let cfg = tempfile::tempdir().unwrap();
    let cmd = format!(
        // The exit status is printed by the shell and the pane kept open: reading it does not
        // race tmux's remain-on-exit against a fast exit.
        "env XDG_CONFIG_HOME={} {} --config /dev/null handshake mbus --port {}; echo EXIT=$?; sleep 30",
        cfg.path().display(),
        hsmon_bin(),
        path_str(&link.a())
    );
    let t = Tmux::start_sized(&cmd, 160, 40);
    let screen = t.wait_for("diverged at \"snd-nke\"");
    assert!(screen.contains("handshake mbus · serial"), "{screen}");
    assert!(screen.contains("✖ snd-nke"), "{screen}");
    assert!(screen.contains("expected E5"), "{screen}");
    assert!(screen.contains("got 68 15 15 68 08"), "{screen}");
    let screen = t.wait_for("mbus.stale_response");
    assert!(screen.contains("· req-ud2"), "{screen}");
    // The usual panes below: the same bytes in the hex view, and the session's events.
    assert!(screen.contains("10 40 FE 3E 16"), "{screen}");
    assert!(screen.contains(" events "), "{screen}");
    t.key("q");
    // A divergence exits 1.
    let screen = t.wait_for("EXIT=1");
    assert!(
        !screen.contains("handshake mbus · serial"),
        "the terminal is restored: {screen}"
    );
}

/// The handshake TUI is the ordinary monitor with a handshake driver: `--capture` records the
/// run, Home reads the start of the session back from the capture once memory (1 MiB here)
/// no longer holds it, PgUp pages the hex pane, and `A` runs the scan (which finds that a
/// pseudo-terminal ignores the baud rate).
#[test]
fn capture_history_paging_and_scan_work_in_the_handshake_tui() {
    let link = PtyLink::new();
    let mut dev = link.device();
    std::thread::spawn(move || {
        let mut peer = Peer::new("mbus", Fault::None).unwrap();
        let mut buf = [0u8; 256];
        let mut answers = 0;
        while let Ok(n) = dev.read(&mut buf) {
            if n == 0 {
                break;
            }
            for r in peer.on_bytes(&buf[..n]) {
                if let Reply::Bytes(b) = r {
                    let _ = dev.write_all(&b);
                    answers += 1;
                }
            }
            // After the run (SND_NKE → E5, REQ_UD2 → RSP_UD): 1.5 MiB of text, more than
            // memory holds.
            if answers == 2 {
                answers += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
                let mut text = Vec::new();
                let mut i = 0u32;
                while text.len() < 3 << 19 {
                    text.extend_from_slice(format!("boot line {i:07}\r\n").as_bytes());
                    i += 1;
                }
                if dev.write_all(&text).is_err() {
                    return;
                }
            }
        }
    });
    let cfg = tempfile::tempdir().unwrap();
    let config = cfg.path().join("hsmon.toml");
    std::fs::write(&config, "[ui]\nscrollback_mib = 1\n").unwrap();
    let capture = cfg.path().join("run.hscap");
    let cmd = format!(
        "env XDG_CONFIG_HOME={dir} XDG_STATE_HOME={dir} {bin} --config {config} --capture {capture} handshake mbus --port {port}; echo EXIT=$?; sleep 30",
        dir = cfg.path().display(),
        bin = hsmon_bin(),
        config = config.display(),
        capture = capture.display(),
        port = path_str(&link.a())
    );
    let t = Tmux::start_sized(&cmd, 160, 40);
    // The run ends ok; then the text floods in.
    t.wait_for("handshake mbus · serial · ok");
    t.wait_for("scrolled out of memory");
    // Home: older than memory, read back from the capture.
    t.key("Home");
    let screen = t.wait_for("read back from the capture");
    assert!(
        screen.contains("10 40 FE 3E 16"),
        "the run's first bytes: {screen}"
    );
    t.key("End");
    t.wait_until("live again", |s| !s.contains("End: live"));
    // PgUp pages the hex pane (follow pauses).
    t.key("PPage");
    t.wait_for("PAUSED");
    // A: the scan runs; Esc stops it and the port goes back to its setting.
    t.key("A");
    t.wait_for("scanning");
    t.key("Escape");
    t.wait_for("scan stopped; the port is back to its setting");
    t.key("q");
    t.wait_for("EXIT=0");
    // The capture holds the run: the handshake's request among its bytes.
    let out = std::process::Command::new(hsmon_bin())
        .args(["export"])
        .arg(&capture)
        .args(["--to", "jsonl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"hex\":\"10 40 FE 3E 16\""),
        "the request is in the capture"
    );
}
