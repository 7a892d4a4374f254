//! `hsmon export`: a capture written by `CaptureWriter`, exported by the real binary, read back
//! by the real Wireshark (tshark): APDUs dissected as ISO 7816 with the right INS and SW, line
//! bytes with their direction; jsonl equal to the headless records; errors with exit status 2.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use hsmon::capture::{CaptureMeta, CaptureWriter};
use hsmon::event::{
    ApduExchange, ApduOrigin, CardEvent, ConnectionState, Event, LineSettings, ModemLines,
    ShareMode, TimedEvent,
};
use support::{hex, path_str, require, run_hsmon};

/// M-Bus REQ_UD2 and RSP_UD (reference/protocols.md), the storage-card ATR the ATR decoder's
/// tests use, a SELECT answered 6A82, a GET RESPONSE answered 9000, an SM-CLA command answered
/// 6882 (reference/iso7816.md's worked example) and a foreign reset (0x80100068).
const REQ_UD2: &str = "10 5B 01 5C 16";
const RSP_UD: &str =
    "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16";
const ATR: &str = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68";
const SELECT: &str = "00 A4 04 00 07 A0 00 00 00 04 10 10";
const GET_RESPONSE: &str = "00 C0 00 00 04";
const SM_SELECT: &str = "0C A4 04 00 02 3F 00";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn session() -> Vec<TimedEvent> {
    let settings = LineSettings {
        baud: "2400".parse().unwrap(),
        format: "8E1".parse().unwrap(),
        flow: "none".parse().unwrap(),
    };
    let apdu = |command: &str, response: &str, origin| {
        Event::Apdu(ApduExchange {
            command: hex(command),
            response: hex(response),
            duration: ms(2),
            origin,
        })
    };
    vec![
        (0, Event::Connection(ConnectionState::Up)),
        (
            1,
            Event::LineSettings {
                settings,
                modem: ModemLines {
                    dtr: Some(true),
                    rts: None,
                },
            },
        ),
        (10, Event::Tx(hex(REQ_UD2))),
        (60, Event::Rx(hex(RSP_UD))),
        (
            100,
            Event::Card(CardEvent::Inserted {
                reader: "Virtual PCD 00 00".into(),
                atr: hex(ATR),
            }),
        ),
        (
            110,
            Event::Card(CardEvent::Connected {
                reader: "Virtual PCD 00 00".into(),
                protocol: "T=1".into(),
                share: ShareMode::Shared,
                atr: hex(ATR),
            }),
        ),
        (120, apdu(SELECT, "6A 82", ApduOrigin::User)),
        (
            130,
            apdu(
                GET_RESPONSE,
                "01 02 03 04 90 00",
                ApduOrigin::Script { line: 3 },
            ),
        ),
        (140, apdu(SM_SELECT, "68 82", ApduOrigin::User)),
        (
            150,
            Event::Pcsc {
                operation: "SCardTransmit".into(),
                code: 0x8010_0068,
            },
        ),
    ]
    .into_iter()
    .map(|(t, event)| TimedEvent::new(ms(t), event))
    .collect()
}

fn write_capture(dir: &Path, events: &[TimedEvent]) -> PathBuf {
    write_capture_from(dir, "serial /dev/ttyUSB0", events)
}

fn write_capture_from(dir: &Path, source: &str, events: &[TimedEvent]) -> PathBuf {
    let path = dir.join("session.hscap");
    let meta = CaptureMeta::new(
        source,
        None,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut w = CaptureWriter::create(&path, &meta).unwrap();
    for e in events {
        w.append(e);
    }
    w.sync();
    assert_eq!(w.failed(), None);
    path
}

/// `hsmon export CAP --to pcapng -o OUT`, checked to succeed.
fn export_pcapng(cap: &Path, out: &Path) -> String {
    let (code, _, stderr) = run_hsmon(&[
        "export",
        path_str(cap),
        "--to",
        "pcapng",
        "-o",
        path_str(out),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    stderr
}

/// tshark on `file` with `args`, its stdout; fails on an error or a damaged file.
fn tshark(file: &Path, args: &[&str]) -> String {
    require("tshark");
    let out = Command::new("tshark")
        .args(["-r", path_str(file)])
        .args(args)
        .output()
        .expect("tshark runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("appears to be damaged"),
        "tshark: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// tshark's fields for every packet, one Vec per packet.
fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    require("tshark");
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", path_str(file), "-T", "fields", "-E", "separator=/t"]);
    cmd.args(["-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("appears to be damaged") && !stderr.contains("isn't a capture file"),
        "tshark: {stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn pcapng_export_opens_in_tshark_with_apdus_and_directions() {
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture(dir.path(), &session());
    let out = dir.path().join("session.pcapng");
    let (code, stdout, stderr) = run_hsmon(&[
        "export",
        path_str(&cap),
        "--to",
        "pcapng",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.is_empty(), "pcapng went to stdout: {stdout}");
    assert!(
        stderr.contains("exported 10 events") && stderr.contains("(13 packets)"),
        "{stderr}"
    );

    let rows = tshark_fields(
        &out,
        &[
            "frame.time_epoch",
            "frame.packet_flags_direction",
            "_ws.col.Protocol",
            "iso7816.apdu.ins",
            "iso7816.apdu.sw1",
            "iso7816.apdu.sw2",
            "iso7816.atr.init_char",
            "data.data",
            "frame.comment",
        ],
    );
    let summary: Vec<String> = rows.iter().map(|r| r.join(" | ")).collect();
    let all = summary.join("\n");
    assert_eq!(rows.len(), 13, "{all}");
    let col = |i: usize, name: &str| -> &str {
        let k = [
            "time", "dir", "proto", "ins", "sw1", "sw2", "ts", "data", "comment",
        ]
        .iter()
        .position(|n| *n == name)
        .unwrap();
        rows[i].get(k).map_or("", |s| s.as_str())
    };
    let compact = |h: &str| h.replace(' ', "").to_lowercase();
    // EPB direction flags as tshark prints them.
    const IN: &str = "0x00000001";
    const OUT: &str = "0x00000002";

    // Connection and settings: text packets in time order, with the wall-clock start.
    assert_eq!(col(0, "proto"), "hsmon", "{all}");
    assert!(col(0, "comment").contains("connection up"), "{all}");
    assert!(col(0, "time").starts_with("1700000000.000000000"), "{all}");
    assert!(col(1, "comment").contains("2400 8E1"), "{all}");
    // Line bytes: RTAC serial (a serial capture), tx outbound, rx inbound, the bytes
    // themselves, 50 ms apart.
    assert_eq!(col(2, "proto"), "RTAC Serial", "{all}");
    assert_eq!(col(2, "dir"), OUT, "{all}");
    assert_eq!(col(2, "data"), compact(REQ_UD2), "{all}");
    assert!(col(2, "time").starts_with("1700000000.010"), "{all}");
    assert_eq!(col(3, "dir"), IN, "{all}");
    assert_eq!(col(3, "data"), compact(RSP_UD), "{all}");
    // RTAC serial's control lines follow the line settings before them: DTR on, RTS unknown.
    let lines = tshark(
        &out,
        &["-Y", "rtacser", "-T", "fields", "-e", "rtacser.dtr"],
    );
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines, ["1", "1"], "DTR as tshark reads it");
    // The ATR, dissected as one (TS 0x3B), once: on insertion. The connect that reports the
    // same ATR again is a text packet.
    assert_eq!(col(4, "proto"), "ISO 7816", "{all}");
    assert_eq!(col(4, "ts"), "0x3b", "{all}");
    assert_eq!(col(4, "dir"), IN, "{all}");
    assert!(col(4, "comment").contains("Virtual PCD 00 00"), "{all}");
    assert_eq!(col(5, "proto"), "hsmon", "{all}");
    assert!(col(5, "comment").contains("T=1"), "{all}");
    let atrs = (0..rows.len()).filter(|&i| col(i, "ts") == "0x3b").count();
    assert_eq!(atrs, 1, "the ATR went out {atrs} times: {all}");
    // APDUs: command (outbound) and response (inbound), INS and SW as Wireshark reads them.
    let apdus = [
        (6, "0xa4", "0x6a", "0x82"),
        (8, "0xc0", "0x90", "0x00"),
        (10, "0xa4", "0x68", "0x82"),
    ];
    for (i, ins, sw1, sw2) in apdus {
        assert_eq!(col(i, "proto"), "ISO 7816", "{all}");
        assert_eq!(col(i, "dir"), OUT, "{all}");
        assert_eq!(col(i, "ins"), ins, "packet {i}: {all}");
        assert_eq!(col(i + 1, "dir"), IN, "{all}");
        assert_eq!(col(i + 1, "sw1"), sw1, "packet {}: {all}", i + 1);
        assert_eq!(col(i + 1, "sw2"), sw2, "packet {}: {all}", i + 1);
    }
    // The command is stamped `duration` (2 ms) before the response.
    assert!(col(6, "time").starts_with("1700000000.118"), "{all}");
    assert!(col(7, "time").starts_with("1700000000.120"), "{all}");
    assert!(col(8, "comment").contains("script:3"), "{all}");
    // The PC/SC error as text, naming the code.
    assert_eq!(col(12, "proto"), "hsmon", "{all}");
    assert!(col(12, "comment").contains("SCARD_W_RESET_CARD"), "{all}");
}

#[test]
fn pcapng_to_a_pipe_works_and_tcp_bytes_not_iec104_take_a_user_dissector() {
    require("tshark");
    let dir = tempfile::tempdir().unwrap();
    // M-Bus over a TCP serial server: no serial line here and not IEC 104, so USER0.
    let cap = write_capture_from(dir.path(), "tcp 10.0.0.5:4001", &session());
    let out = support::hsmon_command()
        .args(["export", path_str(&cap), "--to", "pcapng"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let file = dir.path().join("piped.pcapng");
    std::fs::write(&file, &out.stdout).unwrap();
    // DLT_USER mapping, as README tells users: USER0 → a dissector by name (`data` here).
    let text = tshark(
        &file,
        &[
            "-V",
            "-Y",
            "frame.interface_id == 1",
            "-o",
            r#"uat:user_dlts:"User 0 (DLT=147)","data","0","","0","""#,
        ],
    );
    assert!(text.contains("DLT: 147, Payload: data"), "{text}");
    assert!(!text.contains("User encapsulation not handled"), "{text}");
}

/// IEC 104 (reference/protocols.md §2.2): STARTDT act/con, a general interrogation
/// (C_IC_NA_1, COT 6) and its confirmation (COT 7, the response cut across two reads),
/// a single point (M_SP_NA_1, COT 20), then the connection drops and comes back.
fn iec104_session() -> Vec<TimedEvent> {
    vec![
        (0, Event::Connection(ConnectionState::Up)),
        (10, Event::Tx(hex("68 04 07 00 00 00"))),
        (20, Event::Rx(hex("68 04 0B 00 00 00"))),
        (
            30,
            Event::Tx(hex("68 0E 00 00 00 00 64 01 06 00 01 00 00 00 00 14")),
        ),
        (40, Event::Rx(hex("68 0E 00 00 02 00 64"))),
        (41, Event::Rx(hex("01 07 00 01 00 00 00 00 14"))),
        (
            50,
            Event::Rx(hex("68 0E 02 00 02 00 01 01 14 00 01 00 01 00 00 01")),
        ),
        (
            60,
            Event::Connection(ConnectionState::Down {
                reason: "the peer closed the connection".into(),
            }),
        ),
        (70, Event::Connection(ConnectionState::Up)),
        (80, Event::Tx(hex("68 04 43 00 00 00"))),
        (90, Event::Rx(hex("68 04 83 00 00 00"))),
    ]
    .into_iter()
    .map(|(t, event)| TimedEvent::new(ms(t), event))
    .collect()
}

#[test]
fn iec104_goes_out_as_tcp_port_2404_that_tshark_dissects_with_no_options() {
    // By the session (hsmon tcp to port 2404) and by the bytes (a serial capture of 104).
    for source in ["tcp 10.0.0.5:2404", "serial /dev/ttyUSB0"] {
        let dir = tempfile::tempdir().unwrap();
        let cap = write_capture_from(dir.path(), source, &iec104_session());
        let out = dir.path().join("iec104.pcapng");
        export_pcapng(&cap, &out);
        let rows = tshark(
            &out,
            &[
                "-Y",
                "iec60870_104",
                "-T",
                "fields",
                "-E",
                "separator=/t",
                "-e",
                "ip.src",
                "-e",
                "tcp.dstport",
                "-e",
                "iec60870_104.type",
                "-e",
                "iec60870_104.utype",
                "-e",
                "iec60870_asdu.typeid",
                "-e",
                "iec60870_asdu.causetx",
            ],
        );
        let rows: Vec<&str> = rows.lines().collect();
        let all = rows.join("\n");
        println!("{source}: tshark -Y iec60870_104:\n{all}");
        // STARTDT act/con, C_IC_NA_1 act, its con (reassembled), M_SP_NA_1, TESTFR act/con;
        // type 0 = I, 3 = U; U functions 0x01 STARTDT act, 0x02 con, 0x10/0x20 TESTFR act/con.
        assert_eq!(rows.len(), 7, "{source}: {all}");
        assert_eq!(
            rows[0], "192.0.2.1\t2404\t0x00000003\t0x00000001\t\t",
            "{source}: {all}"
        );
        assert!(rows[1].starts_with("192.0.2.2\t"), "{source}: {all}");
        assert!(
            rows[1].ends_with("\t0x00000003\t0x00000002\t\t"),
            "{source}: {all}"
        );
        assert!(
            rows[2].ends_with("\t0x00000000\t\t100\t6"),
            "{source}: {all}"
        );
        assert!(
            rows[3].ends_with("\t0x00000000\t\t100\t7"),
            "{source}: {all}"
        );
        assert!(
            rows[4].ends_with("\t0x00000000\t\t1\t20"),
            "{source}: {all}"
        );
        assert!(
            rows[5].ends_with("\t0x00000003\t0x00000010\t\t"),
            "{source}: {all}"
        );
        assert!(
            rows[6].ends_with("\t0x00000003\t0x00000020\t\t"),
            "{source}: {all}"
        );
        // Handshakes, sequence and ack numbers right: TCP analysis finds nothing to say.
        let flagged = tshark(&out, &["-Y", "tcp.analysis.flags"]);
        assert!(flagged.is_empty(), "{source}: TCP analysis: {flagged}");
        let syns = tshark(&out, &["-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0"]);
        assert_eq!(syns.lines().count(), 2, "{source}: {syns}");
        let streams = tshark(&out, &["-T", "fields", "-e", "tcp.stream", "-Y", "tcp"]);
        let mut ids: Vec<&str> = streams.lines().collect();
        ids.dedup();
        assert_eq!(ids, ["0", "1"], "{source}: a reconnection is a new stream");
    }
}

/// IEC 101 / FT1.2 (reference/protocols.md §2.1): request link status, its answer, and a
/// general interrogation (C_IC_NA_1) in a variable-length frame.
#[test]
fn serial_bytes_go_out_as_rtac_serial_and_iec101_dissects_with_decode_as() {
    let events: Vec<TimedEvent> = vec![
        (0, Event::Connection(ConnectionState::Up)),
        (10, Event::Tx(hex("10 49 01 4A 16"))),
        (20, Event::Rx(hex("10 0B 01 0C 16"))),
        (
            30,
            Event::Tx(hex("68 09 09 68 73 01 64 01 06 01 00 00 14 F4 16")),
        ),
    ]
    .into_iter()
    .map(|(t, event)| TimedEvent::new(ms(t), event))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture_from(dir.path(), "serial /dev/ttyS0", &events);
    let out = dir.path().join("iec101.pcapng");
    export_pcapng(&cap, &out);
    let fields = [
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-Y",
        "rtacser",
        "-e",
        "rtacser.eventtype",
        "-e",
        "iec60870_101.linkaddr",
        "-e",
        "iec60870_asdu.typeid",
        "-e",
        "data.data",
    ];
    // With no options: RTAC serial, TX and RX, the bytes as data.
    let plain = tshark(&out, &fields);
    let plain: Vec<&str> = plain.lines().collect();
    assert_eq!(plain.len(), 3, "{plain:?}");
    assert_eq!(plain[0], "0x01\t\t\t1049014a16", "{plain:?}");
    assert_eq!(plain[1], "0x02\t\t\t100b010c16", "{plain:?}");
    // With README's Decode As: IEC 60870-5-101, link address 1, C_IC_NA_1 (100).
    let mut args = vec!["-d", "rtacser.data,iec60870_101"];
    args.extend_from_slice(&fields);
    let decoded = tshark(&out, &args);
    let decoded: Vec<&str> = decoded.lines().collect();
    println!("rtacser as data: {plain:?}\nwith -d rtacser.data,iec60870_101: {decoded:?}");
    assert_eq!(
        decoded,
        ["0x01\t1\t\t", "0x02\t1\t\t", "0x01\t1\t100\t"],
        "{decoded:?}"
    );
}

#[test]
fn jsonl_export_matches_the_headless_records() {
    let dir = tempfile::tempdir().unwrap();
    let events = session();
    let cap = write_capture(dir.path(), &events);
    let (code, stdout, stderr) = run_hsmon(&["export", path_str(&cap), "--to", "jsonl"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // First the session, from the capture header; then each event's headless record, with
    // `ts` counted from the capture's start.
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines[0]["source"], "serial /dev/ttyUSB0");
    assert_eq!(lines[0]["ts"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(lines[0]["version"], env!("CARGO_PKG_VERSION"));
    let stamp = hsmon::stamp::Stamp {
        start_unix_ns: 1_700_000_000_000_000_000,
        labels: Vec::new(),
    };
    let want: Vec<serde_json::Value> = events
        .iter()
        .flat_map(|e| {
            let mut out = Vec::new();
            hsmon::record::event::write_event(&mut out, e, None, &stamp).unwrap();
            String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect();
    // The events' own records, in order, between the frames and diagnoses the session found
    // in them (diagnoses are the `event` records with a knowledge title).
    let own: Vec<serde_json::Value> = lines[1..]
        .iter()
        .filter(|r| r["type"] != "frame" && r.get("title").is_none())
        .cloned()
        .collect();
    assert_eq!(own, want);
    assert!(lines.iter().any(|r| r["type"] == "frame"), "{stdout}");
    assert_eq!(own[6]["type"], "apdu");
    assert_eq!(own[6]["sw"], "6A82");
}

#[test]
fn hexdump_export_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture(dir.path(), &session());
    let out = dir.path().join("dump.txt");
    let (code, _, stderr) = run_hsmon(&[
        "export",
        path_str(&cap),
        "--to",
        "hexdump",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    for want in [
        "# source:   serial /dev/ttyUSB0",
        "# started:  2023-11-14T22:13:20.000000000Z",
        "    0.010000 tx 5 bytes at tx offset 0",
        "00000000  10 5B 01 5C 16",
        "    0.060000 rx 27 bytes at rx offset 0",
        "00000010  00 00 00 0C 78 04 03 02  01 9D 16",
        "|h..h..rxV4.$@...|",
        "> 00000000  00 A4 04 00 07 A0 00 00  00 04 10 10",
        "< 00000000  6A 82",
        "ATR 00000000  3B 8F 80 01",
        "SCARD_W_RESET_CARD",
    ] {
        assert!(text.contains(want), "hexdump lacks {want:?}:\n{text}");
    }
}

#[test]
fn a_torn_capture_exports_what_it_holds_and_says_where_it_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture(dir.path(), &session());
    let full = std::fs::read(&cap).unwrap();
    std::fs::write(&cap, &full[..full.len() - 3]).unwrap();
    let (code, stdout, stderr) = run_hsmon(&["export", path_str(&cap), "--to", "jsonl"]);
    assert_eq!(code, 0, "{stderr}");
    // The session record and the events before the cut (besides the frames and diagnoses
    // found in them).
    let own = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] != "frame" && r.get("title").is_none())
        .count();
    assert_eq!(own, 10, "{stdout}");
    assert!(
        stderr.contains("ends with an incomplete record at byte"),
        "{stderr}"
    );
}

#[test]
fn export_errors_exit_2_with_the_cause_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cap = write_capture(dir.path(), &session());
    let not_cap = dir.path().join("notes.txt");
    std::fs::write(&not_cap, "just some text, not a capture\n").unwrap();
    let empty = dir.path().join("empty.hscap");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("nope.hscap");
    let unwritable = dir.path().join("no-such-dir").join("out.pcapng");
    let cap_s = path_str(&cap);
    let table: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["export", path_str(&missing), "--to", "pcapng"],
            vec!["nope.hscap: no such file", "--capture"],
        ),
        (
            vec!["export", path_str(&not_cap), "--to", "jsonl"],
            vec!["not an hsmon capture", "hsmon decode"],
        ),
        (
            vec!["export", path_str(&empty), "--to", "jsonl"],
            vec!["ends inside its header", "nothing to read"],
        ),
        (
            vec![
                "export",
                cap_s,
                "--to",
                "pcapng",
                "-o",
                path_str(&unwritable),
            ],
            vec!["cannot create", "No such file or directory", "-o FILE"],
        ),
        (
            vec!["export", cap_s, "--to", "jsonl", "-o", cap_s],
            vec!["is the capture itself"],
        ),
        (
            vec!["export", cap_s, "--to", "hexdump", "-o", "/dev/full"],
            vec![
                "cannot write the export",
                "No space left on device",
                "free space",
            ],
        ),
        (
            vec!["export", cap_s, "--to", "pdf"],
            vec!["invalid value 'pdf'", "pcapng"],
        ),
    ];
    for (args, msgs) in table {
        let (code, _, err) = run_hsmon(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        for m in msgs {
            assert!(err.contains(m), "{args:?}: stderr lacks {m:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // The refused export left the capture untouched and made no half-written output.
    assert!(!unwritable.exists());
    assert!(
        Path::new("/dev/full").exists(),
        "a failed export removed a device"
    );
    let mut r = hsmon::capture::CaptureReader::open(&cap).unwrap();
    assert_eq!(r.index().unwrap().events, 10);
}
