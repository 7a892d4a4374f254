//! End to end as a person uses it: `hsmon demo` in a real terminal (tmux), keys typed with
//! send-keys, the screen read with capture-pane.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::tmux::Tmux;
use support::wait_until;

#[test]
fn demo_in_a_real_terminal() {
    let cmd = format!(
        "{} --config /dev/null demo; echo EXIT=$?; sleep 30",
        support::hsmon_bin()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("● connected");
    t.wait_for("hsmon demo boa");
    // The M-Bus long frame arrives with its 0x68 start bytes.
    t.wait_for("68 15 15 68");

    t.keys(&["+"]);
    t.wait_for("230400 8N1");
    t.keys(&["p"]);
    t.wait_for("230400 8E1");

    t.keys(&["i", "AT", "Enter"]);
    let s = t.wait_for("you typed: AT");
    assert!(s.contains("TX◂ 41 54 0D"), "{s}");
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(100));

    t.keys(&["?"]);
    t.wait_for("hsmon keys");
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(100));
    t.keys(&["PPage"]);
    t.wait_for("PAUSED");
    t.keys(&["End"]);
    t.wait_for("following");

    t.keys(&["q"]);
    let s = t.wait_for("EXIT=0");
    // The terminal is back: no pane border left on the restored screen.
    assert!(!s.contains("┌ bytes"), "alternate screen left behind:\n{s}");
}

#[test]
fn active_scan_in_a_real_terminal_finds_the_rate_and_a_applies_it() {
    let cmd = format!(
        "{} --config /dev/null demo wrong-baud; echo EXIT=$?; sleep 30",
        support::hsmon_bin()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("115200 8N1");
    t.keys(&["A"]);
    // The scan sets the port to each candidate, then goes back and proposes.
    t.wait_for("scan: 9600 8N1 looks right");
    let s = t.wait_for("115200 8N1 flow none");
    assert!(s.contains("a apply"), "{s}");
    t.keys(&["a"]);
    t.wait_for("9600 8N1 flow none");
    t.wait_for("heartbeat ok");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

#[test]
fn replay_steps_and_searches_a_capture_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("tour.hscap");
    let ok = support::hsmon_command()
        .args(["--headless", "--config", "/dev/null", "--capture"])
        .arg(&cap)
        .args(["demo", "tour", "--duration", "5"])
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok);
    let cmd = format!(
        "{} --config /dev/null replay {} --paused; echo EXIT=$?; sleep 30",
        support::hsmon_bin(),
        cap.display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("replay paused");
    // One event at a time: the first chunk of the boot log.
    t.keys(&["."]);
    t.wait_for("RX▸");
    // On to the next frame, then search the whole capture for the heartbeat line.
    t.keys(&["/", "heartbeat", "Enter"]);
    let s = t.wait_for("found at rx offset");
    assert!(s.contains("heartbeat"), "{s}");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

#[test]
fn the_card_demo_runs_to_the_foreign_reset_and_replays_clean() {
    let cmd = format!(
        "{} --config /dev/null --no-capture demo card; echo EXIT=$?; sleep 30",
        support::hsmon_bin()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("hsmon simulated reader");
    // Run to the first failure: the reset by "another application".
    t.keys(&["c"]);
    let s = t.wait_for("card reset by another application");
    assert!(
        s.contains("lost: the selected application F0 68 73 6D 6F 6E 01"),
        "{s}"
    );
    assert!(s.contains("6882"), "{s}");
    // Replay from the start: every step passes now.
    t.keys(&["z"]);
    t.wait_for("done, 0 failed");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

#[test]
fn bytes_older_than_memory_are_read_back_from_the_capture() {
    use std::io::Write;
    let link = support::PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    // A 1 MiB window, so 3 MiB push the first bytes out of memory.
    std::fs::write(&cfg, "[ui]\nscrollback_mib = 1\n").unwrap();
    let cap = dir.path().join("s.hscap");
    let cmd = format!(
        "{} --config {} --capture {} serial {}; echo EXIT=$?; sleep 30",
        support::hsmon_bin(),
        cfg.display(),
        cap.display(),
        link.a().display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("connected");
    let mut dev = link.device();
    dev.write_all(b"FIRST-MARKER....").unwrap();
    let filler = vec![b'.'; 64 * 1024];
    for i in 0..48 {
        if i == 24 {
            dev.write_all(b"MIDDLE-MARKER...").unwrap();
        }
        dev.write_all(&filler).unwrap();
    }
    dev.write_all(b"LAST-MARKER.....").unwrap();
    t.wait_for("LAST-MARKER");
    t.wait_for("scrolled out of memory");
    // Home: the oldest bytes, read back from the capture.
    t.keys(&["Home"]);
    let s = t.wait_for("read back from the capture");
    assert!(s.contains("FIRST-MARKER"), "{s}");
    t.keys(&["End"]);
    t.wait_for("LAST-MARKER");
    // A search that memory cannot answer goes through the capture.
    t.keys(&["/", "FIRST-MARK", "Enter"]);
    let s = t.wait_for("found at rx offset 0x0");
    assert!(s.contains("FIRST-MARKER"), "{s}");
    // Paging up past the top of a window read back from the capture reads the page above it.
    t.keys(&["End"]);
    t.wait_for("LAST-MARKER");
    t.keys(&["/", "MIDDLE-MARK", "Enter"]);
    t.wait_for("found at rx offset 0x180010");
    t.keys(&["Home"]);
    let mut top = 0;
    wait_until(Duration::from_secs(10), || {
        top = hex_row_offsets(&t.screen()).first().copied().unwrap_or(0);
        top > 0 && top < 0x180010
    })
    .expect("Home shows the top of the window read back around the hit");
    t.keys(&["PageUp"]);
    let s = t.wait_for("older bytes, read back from the capture");
    let rows = hex_row_offsets(&s);
    let width = rows[1] - rows[0];
    // Rows of the reloaded window may be cut at other places (runs start where reads did),
    // so the last row is the one holding the byte just above the old top.
    let last = *rows.last().unwrap();
    assert!(
        last < top && top <= last + width,
        "the page above ends where the window began ({top:#X}), last row {last:#X}:\n{s}"
    );
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

/// The byte offsets the hex pane's rows start with ("00180010 2E 2E ..."), top to bottom.
fn hex_row_offsets(screen: &str) -> Vec<u64> {
    screen
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let (head, rest) = l.split_at_checked(8)?;
            rest.starts_with(' ').then_some(())?;
            u64::from_str_radix(head, 16).ok()
        })
        .collect()
}
