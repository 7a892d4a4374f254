//! Captures at start: the default directory pruned to the `[capture]` limits (only hsmon's own
//! captures, never the current one, nothing outside), `--capture` paths that cannot be created
//! refused with exit 2, and headless mode saying where it records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use support::{hsmon_command, path_str};

const DAY: Duration = Duration::from_secs(86_400);
/// The capture magic (docs/capture-format.md): what makes a file an hsmon capture.
const MAGIC: [u8; 8] = [0x89, b'H', b'S', b'C', b'A', b'P', b'\r', b'\n'];

/// Writes `bytes` to `path`, last modified `age` ago.
fn write_aged(path: &Path, bytes: &[u8], age: Duration) {
    std::fs::write(path, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

fn capture_bytes(size: usize) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.resize(size, 0);
    b
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn old_and_excess_captures_go_at_start_and_nothing_else() {
    let state = tempfile::tempdir().unwrap();
    let caps = state.path().join("hsmon").join("captures");
    std::fs::create_dir_all(&caps).unwrap();
    let kib = 1 << 10;
    // Past max_age_days: goes.
    write_aged(&caps.join("a-old.hscap"), &capture_bytes(kib), 60 * DAY);
    // 700 KiB each under a 1 MiB budget: the older one goes, the newer stays.
    write_aged(
        &caps.join("b-big.hscap"),
        &capture_bytes(700 * kib),
        3 * DAY,
    );
    write_aged(
        &caps.join("c-big.hscap"),
        &capture_bytes(700 * kib),
        2 * DAY,
    );
    // Not captures, old and big: stay.
    write_aged(
        &caps.join("foreign.hscap"),
        &vec![b'x'; 900 * kib],
        90 * DAY,
    );
    write_aged(&caps.join("notes.txt"), &capture_bytes(kib), 90 * DAY);
    // A capture outside the captures directory: stays.
    let outside = state.path().join("hsmon").join("kept.hscap");
    write_aged(&outside, &capture_bytes(kib), 90 * DAY);
    let config = state.path().join("config.toml");
    std::fs::write(
        &config,
        "[capture]\nmax_total_mib = 1\nmax_age_days = 30\nmax_files = 500\n",
    )
    .unwrap();

    let out = hsmon_command()
        .env("XDG_STATE_HOME", state.path())
        .args(["--headless", "--config", path_str(&config)])
        .args(["demo", "tour", "--duration", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");

    let left = names(&caps);
    let new: Vec<&String> = left.iter().filter(|n| n.contains("demo")).collect();
    assert_eq!(new.len(), 1, "{left:?}");
    assert_eq!(
        left.iter()
            .filter(|n| !n.contains("demo"))
            .collect::<Vec<_>>(),
        ["c-big.hscap", "foreign.hscap", "notes.txt"]
    );
    assert!(outside.exists());
    // The stderr line names the file it records to.
    let line = format!(
        "hsmon: recording to {} (--no-capture to turn off)",
        caps.join(new[0]).display()
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("recording")).count(),
        1,
        "{err}"
    );
    assert!(err.lines().any(|l| l == line), "{err}");
}

#[test]
fn headless_says_where_it_records_once_and_nothing_with_no_capture() {
    let state = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = hsmon_command()
            .env("XDG_STATE_HOME", state.path())
            .args(["--headless", "--config", "/dev/null"])
            .args(extra)
            .args(["demo", "tour", "--duration", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&[]);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("recording")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let caps = state.path().join("hsmon").join("captures");
    assert!(lines[0].starts_with(&format!("hsmon: recording to {}/", caps.display())));
    assert!(
        lines[0].ends_with(".hscap (--no-capture to turn off)"),
        "{err}"
    );

    let err = run(&["--no-capture"]);
    assert!(!err.contains("recording"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("mine.hscap");
    let err = run(&["--capture", path_str(&cap)]);
    assert!(
        err.contains(&format!("hsmon: recording to {} (", cap.display())),
        "{err}"
    );
}

#[test]
fn a_capture_path_that_cannot_be_created_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path()).to_string();
    let cases = [
        (d.as_str(), "the path is a directory"),
        ("/proc/x.hscap", "cannot create /proc/x.hscap"),
        // sysfs refuses new files, to root as well.
        ("/sys/x.hscap", "permission denied"),
    ];
    for (path, why) in cases {
        let out = hsmon_command()
            .args(["--headless", "--config", "/dev/null", "--capture", path])
            .args(["demo", "tour", "--duration", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert_eq!(err.lines().count(), 1, "{path}: {err}");
        assert!(
            err.starts_with(&format!("hsmon: --capture {path}: ")),
            "{err}"
        );
        assert!(err.contains(why), "{path}: {err}");
        assert!(out.stdout.is_empty(), "{path}: the session did not start");
    }
    // An unwritable directory, where permissions apply (not as root).
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_err() {
        let cap = ro.join("x.hscap");
        let out = hsmon_command()
            .args(["--headless", "--config", "/dev/null", "--capture"])
            .arg(&cap)
            .args(["demo", "tour", "--duration", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("permission denied"), "{err}");
    }
}
