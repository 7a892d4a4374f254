//! hsmon as a Unix tool: a reader that closes early (`| head -1`) ends every command quietly
//! with status 0, a full disk (`> /dev/full`) is one line on stderr and exit status 3, and no
//! path panics on a closed stream. Also the bad inputs found with them: a negative code for
//! `explain`, `--capture` into a missing directory, a broken user profile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{PtyLink, hsmon_command, path_str};

/// Waits for the child, failing the test after `timeout`.
fn wait(child: &mut Child, timeout: Duration) -> ExitStatus {
    let until = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("hsmon did not end within {timeout:?} after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads stderr to its end on a thread (a full stderr pipe must not block the child).
fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    })
}

fn assert_quiet(what: &str, status: ExitStatus, stderr: &str) {
    assert_eq!(
        status.code(),
        Some(0),
        "{what}: exit status {status:?} (signal {:?}), stderr: {stderr}",
        status.signal()
    );
    for bad in ["panicked", "backtrace", "Backtrace", "Broken pipe", "\x1b["] {
        assert!(
            !stderr.contains(bad),
            "{what}: stderr has {bad:?}: {stderr}"
        );
    }
}

/// `hsmon ARGS | head -1`: reads one line, closes the pipe, expects exit 0 and a quiet stderr.
/// `feed` runs while waiting (a device that keeps talking).
fn head_one(args: &[&str], envs: &[(&str, &Path)], mut feed: impl FnMut()) {
    let mut child = hsmon_command()
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = collect_stderr(&mut child);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "{args:?}: no output at all");
    drop(out);
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "{args:?}: still running");
        feed();
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_quiet(&format!("{args:?} | head -1"), status, &err.join().unwrap());
}

/// `hsmon ARGS` with its stdout pipe closed before it writes anything: the first write fails.
fn closed_before(args: &[&str], envs: &[(&str, &Path)]) {
    let mut child = hsmon_command()
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let err = collect_stderr(&mut child);
    let status = wait(&mut child, Duration::from_secs(30));
    assert_quiet(
        &format!("{args:?} | (closed)"),
        status,
        &err.join().unwrap(),
    );
}

/// `hsmon ARGS > /dev/full`: exit 3 and one line on stderr saying so.
fn to_dev_full(args: &[&str], envs: &[(&str, &Path)]) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = hsmon_command()
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{args:?} > /dev/full: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?} > /dev/full: {stderr}");
    assert!(
        stderr.starts_with("hsmon: cannot write to standard output: No space left on device"),
        "{args:?} > /dev/full: {stderr}"
    );
    assert!(!stderr.contains("\x1b["), "{stderr}");
}

/// A capture of a short demo session, for export and replay.
fn demo_capture(dir: &Path) -> PathBuf {
    let cap = dir.join("demo.hscap");
    let out = hsmon_command()
        .args(["--headless", "--config", "/dev/null", "--capture"])
        .arg(&cap)
        .args(["demo", "tour", "--duration", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    cap
}

/// A listener that accepts and closes: `probe tls` gets a report to print.
fn closing_listener() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    addr
}

const ONE_SHOT: &[&[&str]] = &[
    &["list"],
    &["--format", "json", "list"],
    &["explain", "6882", "68", "SCARD_W_RESET_CARD"],
    &["--format", "json", "explain", "6882"],
    &["decode", "--hex", "68 03 03 68 53 FE 50 A1 16"],
    &["handshake", "--list"],
    &["--format", "json", "handshake", "--list"],
];

#[test]
fn one_shot_commands_end_quietly_when_the_reader_goes_away() {
    let cfg = tempfile::tempdir().unwrap();
    let env = [("XDG_CONFIG_HOME", cfg.path())];
    for args in ONE_SHOT {
        head_one(args, &env, || {});
        closed_before(args, &env);
    }
    let probe = closing_listener();
    // A probe's report fits the pipe whole if read at all (its exit status is then the
    // probe's own): only the pipe closed before it prints tests EPIPE.
    closed_before(&["probe", "tls", probe.as_str(), "--timeout", "5"], &env);
}

#[test]
fn one_shot_commands_to_a_full_disk_exit_3_with_one_line() {
    let cfg = tempfile::tempdir().unwrap();
    let env = [("XDG_CONFIG_HOME", cfg.path())];
    for args in ONE_SHOT {
        to_dev_full(args, &env);
    }
    let probe = closing_listener();
    to_dev_full(&["probe", "tls", probe.as_str(), "--timeout", "5"], &env);
}

#[test]
fn a_long_decode_ends_quietly_when_the_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frames.bin");
    let frame = [0x10u8, 0x40, 0x01, 0x41, 0x16];
    std::fs::write(&file, frame.repeat(200_000)).unwrap();
    head_one(&["decode", path_str(&file)], &[], || {});
    to_dev_full(&["decode", path_str(&file)], &[]);
}

#[test]
fn headless_demo_replay_and_export_end_quietly_or_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let cap = demo_capture(dir.path());
    let cap = path_str(&cap);
    let runs: &[&[&str]] = &[
        &["--headless", "--no-capture", "demo", "tour"],
        &[
            "--headless",
            "--format",
            "json",
            "--no-capture",
            "demo",
            "noisy",
        ],
        &["--headless", "replay", cap, "--speed", "1000"],
        &["export", cap, "--to", "jsonl"],
        &["export", cap, "--to", "hexdump"],
    ];
    for args in runs {
        head_one(args, &[], || {});
        closed_before(args, &[]);
        to_dev_full(args, &[]);
    }
}

/// `hsmon serial P --headless 2>&1 | head -3` died with SIGABRT: stdout failed, then the
/// message on the same closed pipe panicked, then the panic message failed too.
#[test]
fn headless_serial_with_stderr_on_the_same_closed_pipe_ends_with_status_0() {
    let link = PtyLink::new();
    let mut dev = link.device();
    let cmd = format!(
        "exec '{}' --headless --no-capture --config /dev/null serial '{}' 2>&1",
        support::hsmon_bin(),
        link.a().display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &cmd])
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(!line.contains("panicked"), "{line}");
    }
    drop(out);
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "hsmon still running");
        let _ = dev.write_all(b"hello 68 world\r\n");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?} (signal {:?})",
        status.signal()
    );
}

#[test]
fn headless_serial_ends_quietly_when_the_reader_goes_away() {
    let link = PtyLink::new();
    let mut dev = link.device();
    let a = link.a();
    head_one(
        &[
            "--headless",
            "--no-capture",
            "--config",
            "/dev/null",
            "serial",
            path_str(&a),
        ],
        &[],
        || {
            let _ = dev.write_all(b"hello 68 world\r\n");
        },
    );
}

#[test]
fn explain_takes_a_negative_pcsc_code() {
    let (code, out, err) = support::run_hsmon(&["explain", "-2146434968"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SCARD_W_RESET_CARD"), "{out}");
}

#[test]
fn capture_into_a_missing_directory_is_refused_and_nothing_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no").join("such");
    let cap = missing.join("x.hscap");
    let (code, _, err) = support::run_hsmon(&[
        "--headless",
        "--capture",
        path_str(&cap),
        "demo",
        "tour",
        "--duration",
        "1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("mkdir -p"), "{err}");
    assert!(!dir.path().join("no").exists());
}

#[test]
fn a_broken_user_profile_is_reported_and_skipped() {
    let cfg = tempfile::tempdir().unwrap();
    let profiles = cfg.path().join("hsmon").join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("bad.toml"), "name = \"x\"\ndescription = 5\n").unwrap();
    std::fs::write(
        profiles.join("good.toml"),
        "name = \"mine\"\ndescription = \"a test\"\ntransport = \"serial\"\n\
         [serial]\nbaud = 9600\nformat = \"8E1\"\n[[step]]\nname = \"init\"\nsend = \"7F\"\nexpect = \"79\"\n",
    )
    .unwrap();
    let out = hsmon_command()
        .args(["handshake", "--list"])
        .env("XDG_CONFIG_HOME", cfg.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("stm32"), "{stdout}");
    assert!(stdout.contains("mine"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.toml:2:15"), "{stderr}");
    assert!(stderr.contains("expected a string"), "{stderr}");

    // A run of another profile gets as far as its own arguments.
    let out = hsmon_command()
        .args(["handshake", "mine"])
        .env("XDG_CONFIG_HOME", cfg.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("give --port PORT"), "{stderr}");
}

#[test]
fn headless_handshake_ends_quietly_or_exits_3() {
    let link = PtyLink::new();
    let a = link.a();
    // Like every monitor run here: without recording (a handshake records as the others do).
    let args = [
        "--headless",
        "--no-capture",
        "--config",
        "/dev/null",
        "handshake",
        "stm32",
        "--port",
        path_str(&a),
    ];
    closed_before(&args, &[]);
    to_dev_full(&args, &[]);
}
