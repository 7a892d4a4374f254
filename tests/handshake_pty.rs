//! `hsmon handshake` end to end: the hsmon binary runs a built-in profile headless against a
//! device played by a test thread over a real pseudo-terminal link (socat) or a TCP socket —
//! the good device and the faulty ones users meet — and the exit status, the report and the
//! session's own records are checked. Also: malformed user profiles, `--list`, device errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::peer::{
    APP_TEXT, DLT645_ADDRESS_REPLY, ESP_BOOT_LOG, Fault, MBUS_RSP_UD, Peer, Reply, STM32_GET_REPLY,
};
use support::{PtyLink, hex, hsmon_command, path_str};

/// Longest a single hsmon run may take before the test calls it hung.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What the device side heard.
type Heard = Arc<Mutex<Vec<u8>>>;

/// Plays `peer` on the device end of the link until the link goes away.
fn play(link: &PtyLink, mut peer: Peer) -> Heard {
    let mut dev = link.device();
    let heard: Heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = match dev.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            h.lock().unwrap().extend_from_slice(&buf[..n]);
            for r in peer.on_bytes(&buf[..n]) {
                if let Reply::Bytes(b) = r {
                    if dev.write_all(&b).is_err() {
                        return;
                    }
                }
            }
        }
    });
    heard
}

/// A finished `hsmon` run: exit status, records (JSON lines) and stderr.
struct Run {
    code: i32,
    records: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The final `handshake` record.
    fn report(&self) -> &Value {
        let last = self.records.last().expect("some output");
        assert_eq!(last["type"], "handshake", "the report comes last: {last}");
        last
    }

    fn first_id(&self) -> &str {
        self.report()["divergence"]["explanation"][0]["id"]
            .as_str()
            .unwrap_or("")
    }

    fn of_type(&self, t: &str) -> Vec<&Value> {
        self.records.iter().filter(|r| r["type"] == t).collect()
    }
}

/// Runs hsmon with `args` to the end (killed after RUN_LIMIT), with its own config dir.
/// `hsmon --headless --format json --config /dev/null handshake ARGS…`.
fn handshake_json(config_home: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec![
        "--headless",
        "--format",
        "json",
        "--config",
        "/dev/null",
        "handshake",
    ];
    all.extend_from_slice(args);
    hsmon(config_home, &all)
}

fn hsmon(config_home: &std::path::Path, args: &[&str]) -> Run {
    let child = hsmon_command()
        .env("XDG_CONFIG_HOME", config_home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hsmon starts");
    let pid = child.id();
    let done = Arc::new(Mutex::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let end = Instant::now() + RUN_LIMIT;
        while Instant::now() < end {
            if *d.lock().unwrap() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    let out = child.wait_with_output().unwrap();
    *done.lock().unwrap() = true;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = args.windows(2).any(|w| w == ["--format", "json"]);
    let records = if json {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    } else {
        Vec::new()
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        records,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a serial profile headless (JSON) against `fault`, with `extra` arguments.
fn serial_run(profile: &str, fault: Fault, extra: &[&str]) -> (Run, Vec<u8>) {
    let cfg = tempfile::tempdir().unwrap();
    let link = PtyLink::new();
    let heard = play(&link, Peer::new(profile, fault).unwrap());
    let port = path_str(&link.a()).to_string();
    let mut args = vec![
        "--headless",
        "--format",
        "json",
        "--config",
        "/dev/null",
        "handshake",
        profile,
        "--port",
        &port,
    ];
    args.extend_from_slice(extra);
    let run = hsmon(cfg.path(), &args);
    let heard = heard.lock().unwrap().clone();
    (run, heard)
}

fn h(s: &str) -> Vec<u8> {
    hex(s)
}

/// All bytes of one direction in the session's records.
fn stream(run: &Run, dir: &str) -> Vec<u8> {
    run.of_type(dir)
        .iter()
        .flat_map(|r| hex(r["hex"].as_str().unwrap()))
        .collect()
}

#[test]
fn stm32_good_bootloader_passes_and_the_run_is_ordinary_traffic() {
    let (run, heard) = serial_run("stm32", Fault::None, &[]);
    assert_eq!(run.code, 0, "stderr: {}\n{}", run.stderr, run.stdout);
    let rep = run.report();
    assert_eq!(rep["outcome"], "ok");
    assert_eq!(rep["steps"][0]["got"], "79");
    assert_eq!(
        rep["steps"][1]["got"],
        "79 0B 31 00 01 02 11 21 31 43 63 73 82 92 79"
    );
    assert!(rep["steps"][1]["elapsed_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(heard, h("7F 00 FF"), "the device got 7F, then GET");
    // The same bytes are in the session's records, and decoded like any traffic.
    assert_eq!(stream(&run, "tx"), h("7F 00 FF"));
    let mut rx = vec![0x79];
    rx.extend_from_slice(&STM32_GET_REPLY);
    assert_eq!(stream(&run, "rx"), rx);
    assert!(
        run.of_type("frame")
            .iter()
            .any(|f| f["protocol"] == "stm32" && f["kind"] == "get-reply"),
        "{:#?}",
        run.of_type("frame")
    );
    let steps: Vec<_> = run
        .of_type("event")
        .into_iter()
        .filter(|e| e["id"] == "handshake.step")
        .collect();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s["ok"] == true));
}

#[test]
fn stm32_text_instead_of_79() {
    let (run, _) = serial_run("stm32", Fault::NotInBootMode, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let d = &run.report()["divergence"];
    assert_eq!(d["kind"], "text");
    assert_eq!(d["step"], "init");
    assert_eq!(run.first_id(), "stm32.text_instead_of_ack");
    assert_eq!(
        run.report()["steps"][0]["got"],
        hsmon::hex::spaced(APP_TEXT)
    );
    // The session raised the same explanation, about the 0x68 ('h') that came back.
    let ev = run
        .of_type("event")
        .into_iter()
        .find(|e| e["id"] == "stm32.text_instead_of_ack")
        .expect("the divergence is an event in the session");
    assert_eq!(ev["about_68"], true);
}

#[test]
fn stm32_nothing_at_8n1() {
    let (run, heard) = serial_run("stm32", Fault::Silent, &["--line", "8N1"]);
    assert_eq!(run.code, 1);
    assert_eq!(heard, vec![0x7F], "7F once: a second 7F would be a command");
    let d = &run.report()["divergence"];
    assert_eq!(d["kind"], "no_answer");
    assert_eq!(run.first_id(), "stm32.no_ack");
    let text = d["text"].as_str().unwrap();
    assert!(text.contains("got nothing within 500 ms"), "{text}");
    assert!(
        text.contains("57600 8N1 but this profile expects 57600 8E1"),
        "{text}"
    );
    let fixes = d["explanation"][0]["fixes"].to_string();
    assert!(fixes.contains("BOOT0") && fixes.contains("8E1"), "{fixes}");
}

#[test]
fn mtk_brom_good_and_echoing_a0() {
    let (run, heard) = serial_run("mtk-brom", Fault::None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(heard, h("A0 0A 50 05"));
    assert_eq!(stream(&run, "rx"), h("5F F5 AF FA"));

    let (run, heard) = serial_run("mtk-brom", Fault::Echo, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(heard, vec![0xA0; 10], "A0, then 9 retries");
    let d = &run.report()["divergence"];
    assert_eq!(d["kind"], "echo");
    assert_eq!(run.first_id(), "mtk.brom_echo_a0");
    assert_eq!(d["observation"]["got"], "A0");
    assert_eq!(run.report()["steps"][0]["diff"], "A0≠5F");
    assert_eq!(run.report()["steps"][0]["attempts"], 10);
    let fixes = d["explanation"][0]["fixes"].to_string();
    assert!(fixes.contains("volume"), "{fixes}");
}

#[test]
fn mbus_good_meter() {
    let (run, heard) = serial_run("mbus", Fault::None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(heard, h("10 40 FE 3E 16 10 5B FE 59 16"));
    assert_eq!(
        run.report()["steps"][1]["got"],
        hsmon::hex::spaced(&MBUS_RSP_UD)
    );
    assert!(
        run.of_type("frame")
            .iter()
            .any(|f| f["protocol"] == "mbus" && f["dir"] == "rx" && f["kind"] == "long")
    );
}

#[test]
fn mbus_long_frame_where_e5_was_expected() {
    let (run, heard) = serial_run("mbus", Fault::LongFrame, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        heard,
        h("10 40 FE 3E 16 10 40 FE 3E 16"),
        "SND_NKE and its one retry"
    );
    let d = &run.report()["divergence"];
    assert_eq!(
        (d["kind"].as_str(), d["step"].as_str()),
        (Some("mismatch"), Some("snd-nke"))
    );
    assert_eq!(d["observation"]["expected"], "E5");
    assert!(
        d["observation"]["got"]
            .as_str()
            .unwrap()
            .starts_with("68 15 15 68 08")
    );
    assert_eq!(run.first_id(), "mbus.stale_response");
    let ids: Vec<&str> = d["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"mbus.long_frame_unexpected"), "{ids:?}");
    assert_eq!(
        run.report()["steps"][0]["diff"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("68≠E5")
    );
}

#[test]
fn mbus_half_duplex_echo_is_matched_past() {
    let (run, _) = serial_run("mbus", Fault::HalfDuplexEcho, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s0 = &run.report()["steps"][0];
    assert_eq!(s0["echo"], "10 40 FE 3E 16");
    assert_eq!(s0["got"], "E5");
    assert!(
        s0["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "the line echoes what we send: matched past the echo"),
        "{s0}"
    );
    // The session saw the echo as an echo, too.
    assert!(
        run.of_type("event")
            .iter()
            .any(|e| e["id"] == "mbus.echo" || e["id"] == "link.echo")
    );
}

#[test]
fn mbus_wrong_baud_garbage() {
    let (run, _) = serial_run("mbus", Fault::WrongBaud, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.first_id(), "mbus.garbage_instead_of_e5");
}

#[test]
fn esp32_reset_dance_then_sync_and_the_boot_log_case() {
    let (run, heard) = serial_run("esp32", Fault::None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(heard.len(), 46, "one SYNC packet");
    // A pty has no modem lines: the reset dance is refused and said, the run goes on.
    let notes = run.report()["notes"].to_string();
    assert!(notes.contains("set DTR off was refused"), "{notes}");
    let s = &run.report()["steps"][3];
    assert_eq!(s["got"], "C0 01 08 04 00 07 07 12 20 00 00 00 00 C0");

    let (run, _) = serial_run("esp32", Fault::NotInBootMode, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.report()["divergence"]["kind"], "text");
    assert_eq!(run.first_id(), "esp.not_download_mode");
    assert_eq!(
        run.report()["steps"][3]["got"],
        hsmon::hex::spaced(ESP_BOOT_LOG)
    );
}

#[test]
fn dlt645_read_address_with_and_without_echo() {
    for fault in [Fault::None, Fault::HalfDuplexEcho] {
        let (run, heard) = serial_run("dlt645", fault, &[]);
        assert_eq!(run.code, 0, "{fault:?}: {}", run.stderr);
        assert_eq!(heard, h("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16"));
        assert_eq!(
            run.report()["steps"][0]["got"],
            hsmon::hex::spaced(&DLT645_ADDRESS_REPLY)
        );
    }
}

#[test]
fn text_output_is_a_readable_report() {
    let cfg = tempfile::tempdir().unwrap();
    let link = PtyLink::new();
    let _heard = play(&link, Peer::new("stm32", Fault::NotInBootMode).unwrap());
    let run = hsmon(
        cfg.path(),
        &[
            "--headless",
            "--config",
            "/dev/null",
            "handshake",
            "stm32",
            "--port",
            path_str(&link.a()),
        ],
    );
    assert_eq!(run.code, 1);
    let out = &run.stdout;
    assert!(out.contains(" tx 7F\n"), "{out}");
    assert!(
        out.contains("handshake stm32: diverged at step \"init\" (text)"),
        "{out}"
    );
    assert!(out.contains("→ stm32.text_instead_of_ack [error]"), "{out}");
    assert!(out.contains("What to do:"), "{out}");
}

/// An IEC 104 station played on a real socket: answers, or closes as a TLS server would.
fn station(fault: Fault) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut peer = Peer::new("iec104", fault).unwrap();
        let mut heard = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            heard.extend_from_slice(&buf[..n]);
            for r in peer.on_bytes(&buf[..n]) {
                match r {
                    Reply::Bytes(b) => s.write_all(&b).unwrap(),
                    Reply::Close => return heard,
                }
            }
        }
        heard
    });
    (addr, t)
}

#[test]
fn iec104_over_tcp_good_and_closing() {
    let cfg = tempfile::tempdir().unwrap();
    let (addr, station_thread) = station(Fault::None);
    let run = handshake_json(cfg.path(), &["iec104", "--tcp", &addr]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report()["steps"][0]["got"], "68 04 0B 00 00 00");
    assert!(
        run.of_type("frame")
            .iter()
            .any(|f| f["protocol"] == "iec104" && f["dir"] == "rx")
    );
    assert_eq!(station_thread.join().unwrap(), h("68 04 07 00 00 00"));

    let (addr, _) = station(Fault::Closes);
    let run = handshake_json(cfg.path(), &["iec104", "--tcp", &addr]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.report()["divergence"]["kind"], "no_answer");
    assert_eq!(run.first_id(), "iec104.no_startdt_con");
    assert!(
        run.report()["steps"][0]["notes"]
            .to_string()
            .contains("the peer closed the connection")
    );
}

#[test]
fn device_errors_exit_3_with_a_report() {
    let cfg = tempfile::tempdir().unwrap();
    let run = handshake_json(cfg.path(), &["mbus", "--port", "/dev/hsmon-no-such-port"]);
    assert_eq!(run.code, 3);
    assert_eq!(run.report()["outcome"], "device_error");
    assert!(run.stderr.contains("no such serial port"), "{}", run.stderr);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let run = handshake_json(cfg.path(), &["iec104", "--tcp", &addr]);
    assert_eq!(run.code, 3);
    assert!(
        run.report()["error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
}

#[test]
fn list_shows_every_profile_on_one_line() {
    let cfg = tempfile::tempdir().unwrap();
    let run = hsmon(
        cfg.path(),
        &["--config", "/dev/null", "handshake", "--list"],
    );
    assert_eq!(run.code, 0);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "mtk-brom",
            "stm32",
            "esp32",
            "mbus",
            "iec104",
            "dlt645",
            "iso7816-select"
        ]
    );
}

#[test]
fn user_profiles_replace_built_ins_and_malformed_ones_are_skipped_with_position() {
    let cfg = tempfile::tempdir().unwrap();
    let dir = cfg.path().join("hsmon").join("profiles");
    std::fs::create_dir_all(&dir).unwrap();
    // A user's stm32 variant at 115200 with one step: it replaces the built-in.
    std::fs::write(
        dir.join("stm32.toml"),
        "name = \"stm32\"\ndescription = \"mine\"\ntransport = \"serial\"\n[serial]\nbaud = 115200\nformat = \"8E1\"\n[[step]]\nname = \"init\"\nsend = \"7F\"\nexpect = \"79\"\n",
    )
    .unwrap();
    let run = hsmon(
        cfg.path(),
        &["--config", "/dev/null", "handshake", "--list"],
    );
    assert!(
        run.stdout.contains("stm32            serial mine ["),
        "{}",
        run.stdout
    );
    let link = PtyLink::new();
    let _heard = play(&link, Peer::new("stm32", Fault::None).unwrap());
    let run = handshake_json(cfg.path(), &["stm32", "--port", path_str(&link.a())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report()["steps"].as_array().unwrap().len(), 1);
    let settings = run.of_type("settings");
    assert_eq!(settings[0]["baud"], 115200);

    // Malformed: one stderr line with the file, line and column and what was expected; the
    // file is skipped and the other profiles still work.
    std::fs::write(dir.join("zz-bad.toml"), "name = \"bad\"\ndescription = \"x\"\ntransport = \"serial\"\n[serial]\nbaud = 9600\nformat = \"8E1\"\n[[step]]\nname = \"a\"\nsend = \"7F\"\nexpect = { bytes = \"7\" }\n").unwrap();
    let run = hsmon(
        cfg.path(),
        &["--config", "/dev/null", "handshake", "--list"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("stm32            serial mine ["),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("bad "), "{}", run.stdout);
    let want = format!(
        "{}:10:10: `expect`: an odd number of hex digits",
        dir.join("zz-bad.toml").display()
    );
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    // Naming an unknown knowledge id is a bad profile too.
    std::fs::write(dir.join("zz-bad.toml"), "name = \"bad\"\ndescription = \"x\"\ntransport = \"tcp\"\n[explain]\nno_answer = \"iec104.nope\"\n[[step]]\nname = \"a\"\nsend = \"68 04 07 00 00 00\"\n").unwrap();
    let run = hsmon(
        cfg.path(),
        &["--config", "/dev/null", "handshake", "--list"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("zz-bad.toml:5:13: no knowledge entry with id \"iec104.nope\""),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let cfg = tempfile::tempdir().unwrap();
    let run = hsmon(
        cfg.path(),
        &[
            "--config",
            "/dev/null",
            "handshake",
            "nope",
            "--port",
            "/dev/null",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no handshake profile named \"nope\""),
        "{}",
        run.stderr
    );
    let run = hsmon(
        cfg.path(),
        &[
            "--config",
            "/dev/null",
            "handshake",
            "stm32",
            "--tcp",
            "h:1",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("give --port"), "{}", run.stderr);
    let run = hsmon(
        cfg.path(),
        &[
            "--config",
            "/dev/null",
            "handshake",
            "iso7816-select",
            "--set",
            "pin=00",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no variable 'pin'"), "{}", run.stderr);
}

/// `--capture` records a handshake run like any other session: the capture replays to the
/// same bytes, both ways, as the run's own records.
#[test]
fn capture_records_a_headless_handshake() {
    let link = PtyLink::new();
    play(&link, Peer::new("mbus", Fault::None).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("hs.hscap");
    let cap_s = path_str(&cap).to_string();
    let run = hsmon(
        dir.path(),
        &[
            "--headless",
            "--format",
            "json",
            "--config",
            "/dev/null",
            "--capture",
            &cap_s,
            "handshake",
            "mbus",
            "--port",
            path_str(&link.a()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("recording to"), "{}", run.stderr);
    assert_eq!(
        run.records[0]["capture"],
        cap_s.as_str(),
        "the session record names it"
    );
    let bytes = |records: &[Value], dir: &str| -> Vec<u8> {
        records
            .iter()
            .filter(|r| r["type"] == dir)
            .flat_map(|r| hex(r["hex"].as_str().unwrap()))
            .collect()
    };
    let replayed = hsmon(
        dir.path(),
        &[
            "--headless",
            "--format",
            "json",
            "replay",
            &cap_s,
            "--speed",
            "max",
        ],
    );
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert_eq!(
        bytes(&replayed.records, "tx"),
        h("10 40 FE 3E 16 10 5B FE 59 16")
    );
    assert_eq!(bytes(&replayed.records, "tx"), bytes(&run.records, "tx"));
    assert_eq!(bytes(&replayed.records, "rx"), bytes(&run.records, "rx"));
}
