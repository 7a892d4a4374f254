//! `hsmon decode` and `hsmon explain` from the shell: answers, JSON records, exit statuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use serde_json::Value;
use support::run_hsmon;

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn explain_the_three_faces_of_0x68() {
    let (code, out, err) = run_hsmon(&["explain", "6882"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("iso7816.sw.6882"), "{out}");
    assert!(out.to_lowercase().contains("secure messaging"), "{out}");

    let (code, out, _) = run_hsmon(&["explain", "0x80100068"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("SCARD_W_RESET_CARD") && out.contains("SCardReconnect"),
        "{out}"
    );

    let (code, out, _) = run_hsmon(&["--format", "json", "explain", "68"]);
    assert_eq!(code, 0);
    let ids: Vec<String> = json_lines(&out)
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    for want in [
        "iso7816.sw1.68",
        "pcsc.w_reset_card",
        "mbus.long_frame_unexpected",
        "iec104.apci_start",
        "dlt645.frame_start",
        "uart.genuine_68",
    ] {
        assert!(
            ids.iter().any(|i| i == want),
            "explain 68 lacks {want}: {ids:?}"
        );
    }
}

#[test]
fn decode_guesses_and_forces_protocols() {
    let (code, out, _) = run_hsmon(&["decode", "--hex", "68 03 03 68 53 FE 50 A1 16"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("M-Bus control [0..9] ✓"), "{out}");
    assert!(out.contains("CS: 0xA1"), "{out}");

    let (code, out, _) = run_hsmon(&[
        "--format",
        "json",
        "decode",
        "--protocol",
        "atr",
        "--hex",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68",
    ]);
    assert_eq!(code, 0);
    let v = &json_lines(&out)[0];
    assert_eq!(v["type"], "frame");
    assert_eq!(v["protocol"], "atr");
    assert_eq!(v["protocols"], serde_json::json!(["T=0", "T=1"]));
    assert_eq!(v["fi"], 372);
    assert_eq!(v["di"], 1);
    assert_eq!(
        v["historical"],
        "80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00"
    );
    assert_eq!(v["status"], "ok", "TCK 68 is right");

    let (code, out, _) = run_hsmon(&[
        "--format",
        "json",
        "decode",
        "--hex",
        "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9E 16",
    ]);
    assert_eq!(code, 0);
    let recs = json_lines(&out);
    assert_eq!(recs[0]["status"], "bad_checksum");
    assert!(
        recs.iter()
            .any(|r| r["type"] == "event" && r["id"] == "mbus.checksum"),
        "{out}"
    );
}

/// Issue 14 item 7, "unknown is not absent". GET_SECURITY_INFO (0x14) is what esptool sends
/// during chip detection (esptool docs, "Serial Protocol":
/// https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html);
/// an opcode in no table is still a packet.
#[test]
fn decode_esp_get_security_info_and_an_unknown_opcode() {
    let (code, out, err) = run_hsmon(&[
        "decode",
        "--protocol",
        "esp-slip",
        "--hex",
        "C0 00 14 00 00 00 00 00 00 C0",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("command GET_SECURITY_INFO"), "{out}");
    assert!(out.contains("[0..10]"), "{out}");

    let (code, out, err) = run_hsmon(&[
        "--format",
        "json",
        "decode",
        "--protocol",
        "esp-slip",
        "--hex",
        "C0 00 42 00 00 00 00 00 00 C0",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["protocol"], "esp-slip");
    assert_eq!(v["status"], "ok");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("unknown opcode 0x42"),
        "{out}"
    );
}

#[test]
fn decode_from_a_file_and_nothing_found() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("frame.bin");
    std::fs::write(&f, [0x68, 0x04, 0x43, 0x00, 0x00, 0x00]).unwrap();
    let (code, out, _) = run_hsmon(&["decode", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("TESTFR act"), "{out}");
    let (code, out, _) = run_hsmon(&["decode", "--protocol", "mbus", "--hex", "01 02 03"]);
    assert_eq!(code, 1, "nothing decoded is exit 1");
    assert!(out.contains("no frame found in 3 bytes as M-Bus"), "{out}");
}

/// A long log decodes to every one of its lines, in order: `decode` reads and prints as it
/// goes, so the session's bounded frame list never drops the older ones (a 50 000-line file
/// used to start at line ~18 000), and a `y` inside a word is no STM32 ACK.
#[test]
fn decode_streams_every_line_of_a_long_log() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("boot.log");
    let mut log = String::new();
    for n in 0..50_000 {
        log.push_str(&format!("[{n:6}] every sensor ready, reply {n} ok\r\n"));
    }
    std::fs::write(&f, &log).unwrap();
    let (code, out, err) = run_hsmon(&["--format", "json", "decode", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let frames: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "frame")
        .collect();
    assert_eq!(frames.len(), 50_000);
    assert!(frames.iter().all(|v| v["protocol"] == "text"));
    let mut at = 0u64;
    for v in &frames {
        assert_eq!(v["start"].as_u64(), Some(at), "{v}");
        at = v["end"].as_u64().unwrap();
    }
    assert_eq!(at, log.len() as u64);
}

#[test]
fn bad_offline_input() {
    let table: [(&[&str], i32, &str); 5] = [
        (&["decode", "--hex", "68 0"], 2, "odd number of hex digits"),
        (&["decode", "--hex", "zz"], 2, "not a hex digit"),
        (
            &["decode", "--protocol", "modbus", "--hex", "01"],
            2,
            "unknown protocol 'modbus'",
        ),
        (
            &["decode", "/no/such/capture.bin"],
            2,
            "cannot read /no/such/capture.bin",
        ),
        (&["explain", "qqq"], 2, "no explanation for 'qqq'"),
    ];
    for (args, want, msg) in table {
        let (code, _, err) = run_hsmon(args);
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}
