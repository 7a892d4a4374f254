//! `hsmon trace` on real programs nobody on the project wrote: a Python program using the
//! standard library's termios and os modules (https://docs.python.org/3/library/termios.html,
//! https://docs.python.org/3/library/os.html), curl (https://curl.se, exit code 35 =
//! CURLE_SSL_CONNECT_ERROR, https://curl.se/libcurl/c/libcurl-errors.html) against Python's
//! http.server, and stm32flash (Debian package; its serial_posix.c sets B57600 | CS8 | PARENB,
//! the 8E1 of ST's AN3155 bootloader protocol). Fails, never skips, when a tool is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Headless, PtyLink, hex, hsmon_command, path_str, require, wait_until};

/// The real python binary (not a pyenv shim script, whose shell plumbing would be traced too).
fn python() -> String {
    require("python3");
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `hsmon --headless --format json trace -- CMD...` to the end: (status, records, stderr).
fn trace_run(cmd: &[&str]) -> (i32, Vec<Value>, String) {
    let out = hsmon_command()
        .args([
            "--headless",
            "--format",
            "json",
            "--no-capture",
            "--config",
            "/dev/null",
            "trace",
            "--",
        ])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        records,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The bytes of all `kind` records (rx/tx) on `stream`, optionally of one pid.
fn bytes_of(records: &[Value], kind: &str, stream: &str, pid: Option<u64>) -> Vec<u8> {
    records
        .iter()
        .filter(|r| r["type"] == kind && r["stream"] == stream)
        .filter(|r| pid.is_none_or(|p| r["pid"] == p))
        .flat_map(|r| hex(r["hex"].as_str().unwrap()))
        .collect()
}

/// The one `exit` record (frames the decoders flush at the end may follow it).
fn exit_record(records: &[Value]) -> &Value {
    let exits: Vec<&Value> = records.iter().filter(|r| r["type"] == "exit").collect();
    assert_eq!(exits.len(), 1, "{records:#?}");
    exits[0]
}

const PROGRAM: &str = r#"
import os, sys, termios, threading
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
a = termios.tcgetattr(fd)
a[0] = 0; a[1] = 0; a[3] = 0
a[2] = (a[2] & ~(termios.CSIZE | termios.PARODD | termios.CSTOPB)) | termios.CS8 | termios.PARENB | termios.CLOCAL | termios.CREAD
a[4] = a[5] = termios.B9600
termios.tcsetattr(fd, termios.TCSANOW, a)
termios.tcflush(fd, termios.TCIOFLUSH)
os.write(fd, b"\x7f\x68PING")
got = b""
while len(got) < 4:
    got += os.read(fd, 4 - len(got))
pid = os.fork()
if pid == 0:
    os.write(fd, b"CHILD")
    os._exit(0)
os.waitpid(pid, 0)
fd2 = os.dup(fd)
os.write(fd2, b"DUP")
os.close(fd2)
t = threading.Thread(target=lambda: os.write(fd, b"THR"))
t.start()
t.join()
print("got", got.hex(), flush=True)
sys.exit(3)
"#;

#[test]
fn trace_python_pty_fork_dup_thread_settings_and_exit_status() {
    let py = python();
    let link = PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("prog.py");
    std::fs::write(&script, PROGRAM).unwrap();
    // The device: answers PONG to the 6-byte request, then takes what else comes.
    let mut dev = link.device();
    let device = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let end = Instant::now() + Duration::from_secs(20);
        while got.len() < 6 && Instant::now() < end {
            let n = dev.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        dev.write_all(b"PONG").unwrap();
        while got.len() < 6 + 5 + 3 + 3 && Instant::now() < end {
            let n = dev.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let a = path_str(&link.a()).to_string();
    let (status, records, stderr) = trace_run(&[&py, path_str(&script), &a]);
    assert_eq!(
        status, 3,
        "hsmon exits with the program's status; stderr: {stderr}"
    );
    assert!(
        stderr.contains("got 504f4e47"),
        "the program's stdout passes through: {stderr}"
    );
    let heard = device.join().unwrap();
    assert_eq!(heard, b"\x7f\x68PINGCHILDDUPTHR");

    let settings = records
        .iter()
        .find(|r| r["type"] == "settings" && r["stream"] == a.as_str())
        .unwrap_or_else(|| panic!("no settings record: {records:#?}"));
    assert_eq!(settings["baud"], 9600);
    assert_eq!(settings["format"], "8E1");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "flush" && r["queue"] == "both" && r["stream"] == a.as_str()),
        "tcflush(TCIOFLUSH) is a flush record"
    );

    // Both processes, each with its own bytes.
    let markers: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "stream" && r["stream"] == a.as_str())
        .collect();
    let mut pids: Vec<String> = markers.iter().map(|r| r["pid"].to_string()).collect();
    pids.dedup();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 2, "parent and child: {markers:#?}");
    let parent = records
        .iter()
        .find(|r| r["type"] == "tx" && r["stream"] == a.as_str())
        .unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert_eq!(
        bytes_of(&records, "tx", &a, Some(parent)),
        b"\x7f\x68PINGDUPTHR",
        "a thread's writes are its process's"
    );
    let child = records
        .iter()
        .find(|r| r["type"] == "tx" && r["pid"] != parent)
        .unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert_eq!(bytes_of(&records, "tx", &a, Some(child)), b"CHILD");
    assert_eq!(bytes_of(&records, "rx", &a, None), b"PONG");
    // The dup'ed descriptor is a stream of its own, up and down.
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "stream" && r["fd"] != markers[0]["fd"])
    );
    assert_eq!(exit_record(&records)["code"], 3);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "process" && r["parent"].as_u64() == Some(parent)),
        "the fork is a process record"
    );
}

#[test]
fn trace_curl_https_against_plain_http_exits_35() {
    require("curl");
    let py = python();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(&py)
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .expect("http.server listens");
    let url = format!("https://127.0.0.1:{port}/");
    let (status, records, stderr) = trace_run(&["curl", "-sS", &url]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 35, "curl's own status; stderr: {stderr}");
    let stream = format!("tcp 127.0.0.1:{port}");
    let tx = bytes_of(&records, "tx", &stream, None);
    // A TLS handshake record (RFC 8446 5.1: type 22, legacy version 3.x) with a ClientHello.
    assert!(
        tx.len() > 50 && tx[0] == 0x16 && tx[1] == 0x03 && tx[5] == 0x01,
        "{tx:02X?}"
    );
    // What curl read is the plain-HTTP server's error page (http.server answers a request line
    // it cannot parse in HTTP/0.9 style: the body only).
    let rx = bytes_of(&records, "rx", &stream, None);
    assert!(
        !rx.is_empty() && b"<!DOCTYPE HTML".starts_with(&rx[..rx.len().min(14)]),
        "{rx:02X?}"
    );
    assert!(records.iter().any(|r| r["type"] == "frame"
        && r["protocol"] == "tls"
        && r["summary"].as_str().unwrap_or("").contains("ClientHello")));
    assert_eq!(exit_record(&records)["code"], 35);
}

#[test]
fn trace_stm32flash_settings_on_a_pty() {
    require("stm32flash");
    let link = PtyLink::new();
    let a = path_str(&link.a()).to_string();
    let (status, records, stderr) = trace_run(&["stm32flash", "-b", "57600", &a]);
    let settings = records
        .iter()
        .find(|r| r["type"] == "settings")
        .unwrap_or_else(|| panic!("no settings record: {records:#?} {stderr}"));
    assert_eq!(settings["stream"], a.as_str());
    assert_eq!(settings["baud"], 57600);
    assert_eq!(settings["format"], "8E1");
    // A pty keeps no parity: stm32flash reads the flags back and gives up (its own words),
    // and hsmon says why in the program's terms.
    assert!(stderr.contains("Failed to set terminal flags"), "{stderr}");
    let said = records
        .iter()
        .find(|r| r["type"] == "event" && r["stream"] == a.as_str())
        .unwrap_or_else(|| panic!("no not-kept event: {records:#?}"));
    let text = said["text"].as_str().unwrap();
    assert!(
        text.contains("the program set 57600 8E1") && text.contains("kept 57600 8N1"),
        "{text}"
    );
    assert_eq!(status, 1);
    assert_eq!(exit_record(&records)["code"], 1);
}

/// A program that writes a tick to the port every 100 ms, then prints "done".
const TICKER: &str = r#"
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
for i in range(int(sys.argv[2])):
    os.write(fd, b"tick%d\n" % i)
    time.sleep(0.1)
print("done", flush=True)
"#;

fn tracer_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn trace_attach_pid_then_quit_the_program_runs_on() {
    let py = python();
    let link = PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ticker.py");
    std::fs::write(&script, TICKER).unwrap();
    let mut dev = link.device();
    std::thread::spawn(move || {
        let mut b = [0u8; 256];
        while matches!(dev.read(&mut b), Ok(n) if n > 0) {}
    });
    let mut program = Command::new(&py)
        .args([path_str(&script), path_str(&link.a()), "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = program.id();
    let mut cmd = hsmon_command();
    cmd.args([
        "--headless",
        "--format",
        "json",
        "--no-capture",
        "--config",
        "/dev/null",
        "trace",
        "--pid",
        &pid.to_string(),
    ]);
    let mut h = Headless::spawn(cmd);
    let tick = h.wait_for(Duration::from_secs(10), |r| r["type"] == "tx");
    assert!(
        String::from_utf8(hex(tick["hex"].as_str().unwrap()))
            .unwrap()
            .starts_with("tick")
    );
    assert_eq!(tick["pid"], pid);
    assert!(
        tracer_of(pid).is_some_and(|t| t != 0),
        "traced while hsmon runs"
    );
    let (code, _) = h.stop();
    assert_eq!(code, 0, "quit before the program ended");
    wait_until(Duration::from_secs(5), || tracer_of(pid) == Some(0))
        .expect("hsmon let go of the program");
    let status = program.wait().unwrap();
    let mut out = String::new();
    program
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(out, "done\n");
}

#[test]
fn trace_launched_program_runs_on_when_hsmon_is_killed() {
    let py = python();
    let link = PtyLink::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ticker.py");
    std::fs::write(&script, TICKER).unwrap();
    let mut dev = link.device();
    let heard = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut b = [0u8; 256];
        let end = Instant::now() + Duration::from_secs(20);
        while !all.ends_with(b"tick19\n") && Instant::now() < end {
            match dev.read(&mut b) {
                Ok(n) if n > 0 => all.extend_from_slice(&b[..n]),
                _ => break,
            }
        }
        all
    });
    let mut cmd = hsmon_command();
    cmd.args([
        "--headless",
        "--format",
        "json",
        "--no-capture",
        "--config",
        "/dev/null",
        "trace",
        "--",
        &py,
        path_str(&script),
        path_str(&link.a()),
        "20",
    ]);
    let mut h = Headless::spawn(cmd);
    h.wait_for(Duration::from_secs(10), |r| r["type"] == "tx");
    // SIGKILL: no chance to clean up. The program keeps its seccomp filter; the tracer
    // helper outlives hsmon and serves it, so its writes still work.
    // The program's stdout goes to hsmon's stderr (headless), which it still holds.
    let err = h.kill_hard();
    assert_eq!(
        err.trim(),
        "done",
        "the program finished with its normal output"
    );
    let all = heard.join().unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.ends_with("tick19\n"),
        "every write reached the port: {text}"
    );
}

#[test]
fn trace_refusals_name_the_cause() {
    let (status, _, stderr) = trace_run(&["hsmon-no-such-program"]);
    assert_eq!(status, 2);
    assert!(
        stderr.contains("program not found: hsmon-no-such-program"),
        "{stderr}"
    );
    let out = hsmon_command()
        .args(["--headless", "--no-capture", "trace", "--pid", "999999999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such process"));
    let out = hsmon_command()
        .args(["--headless", "--no-capture", "trace"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name the program after --"));
}

#[test]
fn trace_udp_sendto_names_the_peer() {
    // Python's socket module (https://docs.python.org/3/library/socket.html): sendto on an
    // unconnected datagram socket.
    let py = python();
    let (status, records, stderr) = trace_run(&[
        &py,
        "-c",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.sendto(b'hello', ('127.0.0.1', 9))\ns.sendto(b'again', ('127.0.0.1', 9))",
    ]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(
        bytes_of(&records, "tx", "udp 127.0.0.1:9", None),
        b"helloagain",
        "{records:#?}"
    );
}

#[test]
fn trace_another_users_process_is_refused_with_the_causes() {
    // util-linux setpriv runs hsmon as nobody; the target runs as root: ptrace says EPERM.
    require("setpriv");
    let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
    let out = Command::new("setpriv")
        .env("RUST_BACKTRACE", "0")
        .env("XDG_STATE_HOME", "/tmp")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(support::hsmon_bin())
        .args([
            "--headless",
            "--no-capture",
            "--config",
            "/dev/null",
            "trace",
            "--pid",
        ])
        .arg(victim.id().to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("ptrace is not permitted"), "{err}");
    assert!(err.contains("kernel.yama.ptrace_scope"), "{err}");
    assert!(
        err.contains("belongs to uid 0 and hsmon runs as uid 65534"),
        "{err}"
    );
    assert_eq!(
        tracer_of(victim.id()),
        Some(0),
        "the process was left alone"
    );
    let _ = victim.kill();
    let _ = victim.wait();
}

#[test]
fn trace_a_process_strace_already_traces_is_refused() {
    require("strace");
    let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
    let mut strace = Command::new("strace")
        .args(["-o", "/dev/null", "-p"])
        .arg(victim.id().to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(5), || {
        tracer_of(victim.id()).is_some_and(|t| t != 0)
    })
    .expect("strace attaches");
    let out = hsmon_command()
        .args([
            "--headless",
            "--no-capture",
            "--config",
            "/dev/null",
            "trace",
            "--pid",
        ])
        .arg(victim.id().to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is already traced by process"), "{err}");
    let _ = strace.kill();
    let _ = strace.wait();
    let _ = victim.kill();
    let _ = victim.wait();
}

#[test]
fn trace_a_killed_program_gives_128_plus_the_signal() {
    let (status, records, _) = trace_run(&["sh", "-c", "kill -9 $$"]);
    assert_eq!(status, 128 + 9);
    assert_eq!(exit_record(&records)["signal"], 9);
}

#[test]
fn trace_the_program_keeps_its_stdin() {
    // Headless hsmon reads control lines from stdin; under trace, stdin is the program's.
    let mut child = hsmon_command()
        .args([
            "--headless",
            "--no-capture",
            "--config",
            "/dev/null",
            "trace",
            "--",
        ])
        .args(["sh", "-c", "read line; echo \"program read: $line\""])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"send 68\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("program read: send 68"), "{err}");
}

#[test]
fn trace_capture_exports_and_replays_with_its_streams() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("udp.hscap");
    let out = hsmon_command()
        .args(["--headless", "--format", "json", "--config", "/dev/null", "--capture"])
        .arg(&cap)
        .args(["trace", "--", &py, "-c"])
        .arg("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'68', ('127.0.0.1', 9))")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let export = hsmon_command()
        .args(["export", "--to", "jsonl"])
        .arg(&cap)
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|r| r["type"] == "stream" && r["stream"] == "udp 127.0.0.1:9")
    );
    assert!(
        lines
            .iter()
            .any(|r| r["type"] == "tx" && r["hex"] == "36 38")
    );
    assert!(lines.iter().any(|r| r["type"] == "exit" && r["code"] == 0));
    let replay = hsmon_command()
        .args([
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "replay",
            "--speed",
            "max",
        ])
        .arg(&cap)
        .output()
        .unwrap();
    let replayed: Vec<Value> = String::from_utf8_lossy(&replay.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A replay gives the records the export does (tests/export_equals_replay.rs).
    assert!(
        replayed
            .iter()
            .any(|r| r["type"] == "stream" && r["stream"] == "udp 127.0.0.1:9")
    );
    assert!(
        replayed
            .iter()
            .any(|r| r["type"] == "tx" && r["hex"] == "36 38")
    );
}

#[test]
fn trace_the_program_gets_the_signal_state_it_would_get_untraced() {
    // proc(5): SigIgn and SigBlk are the ignored and blocked signal masks.
    // grep reads its own status (a shell's mask changes while it waits for a child).
    let probe = "exec grep -E '^Sig(Ign|Blk)' /proc/self/status";
    // Untraced, as hsmon's own children start (std's Command resets SIGPIPE).
    let untraced = Command::new("sh").args(["-c", probe]).output().unwrap();
    let out = hsmon_command()
        .args([
            "--headless",
            "--no-capture",
            "--config",
            "/dev/null",
            "trace",
            "--",
            "sh",
            "-c",
            probe,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&untraced.stdout).trim()
    );
}
