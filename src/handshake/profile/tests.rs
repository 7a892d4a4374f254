//! Profiles: the built-in ones, the file format's errors, vars and templates.
#![allow(clippy::unwrap_used)]

use crate::diagnose::knowledge::Knowledge;

use super::*;

const MINIMAL: &str = r#"
name = "t"
description = "a test"
transport = "serial"
[serial]
baud = 9600
format = "8E1"
[[step]]
name = "init"
send = "7F"
expect = "79"
"#;

fn err(text: &str) -> (usize, usize, String) {
    match Profile::parse(text, "t.toml") {
        Err(ProfileError::Invalid {
            line,
            column,
            message,
            file,
            hint,
        }) => {
            assert_eq!(file, "t.toml");
            assert!(!hint.is_empty());
            (line, column, message)
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_minimal_profile_parses_with_defaults() {
    let p = Profile::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(p.name, "t");
    assert_eq!(p.knowledge_profile, "t");
    assert_eq!(p.line_settings().unwrap().to_string(), "9600 8E1 flow none");
    let s = &p.steps[0];
    assert_eq!(s.send, vec![0x7F]);
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    assert_eq!(s.retries, 0);
    assert_eq!(s.echo, EchoPolicy::Skip);
    assert_eq!(s.line, 8, "the line of [[step]]");
    assert_eq!(s.expect.as_ref().unwrap().to_string(), "79");
}

#[test]
fn every_built_in_profile_parses_and_names_existing_knowledge() {
    let k = Knowledge::embedded().unwrap();
    let set = Profiles::load(None, &k).unwrap();
    let names: Vec<&str> = set.all().iter().map(|p| p.name.as_str()).collect();
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
    for p in set.all() {
        assert!(p.built_in);
        assert!(p.list_line().starts_with(&p.name));
        assert!(!p.list_line().contains('\n'));
    }
}

#[test]
fn vars_fill_templates_and_can_be_overridden() {
    let text = r#"
name = "sel"
description = "select"
transport = "card"
[vars]
aid = "F0 68 73"
[[step]]
name = "select"
send = "00 A4 04 00 {len:aid} {aid} 00"
expect = { sw = "9000" }
"#;
    let p = Profile::parse(text, "s.toml").unwrap();
    assert_eq!(p.steps[0].send, vec![0, 0xA4, 4, 0, 3, 0xF0, 0x68, 0x73, 0]);
    let p = p.with_vars(&["aid=A0000000041010".to_string()]).unwrap();
    assert_eq!(
        p.steps[0].send,
        vec![0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 0, 4, 0x10, 0x10, 0]
    );
    let e = p.clone().with_vars(&["pin=1234".to_string()]).unwrap_err();
    assert!(e.to_string().contains("no variable 'pin'"), "{e}");
    let e = p.with_vars(&["aid".to_string()]).unwrap_err();
    assert!(e.to_string().contains("NAME=HEX"), "{e}");
}

#[test]
fn user_profiles_replace_built_ins_by_name_and_errors_name_the_file() {
    let k = Knowledge::embedded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        MINIMAL.replace("name = \"t\"", "name = \"stm32\""),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a profile").unwrap();
    let set = Profiles::load(Some(dir.path()), &k).unwrap();
    let p = set.get("stm32").unwrap();
    assert!(!p.built_in);
    assert!(p.source.ends_with("mine.toml"));
    assert_eq!(set.all().len(), 7);
    assert!(
        set.get("nope")
            .unwrap_err()
            .to_string()
            .contains("mtk-brom, stm32")
    );

    std::fs::write(
        dir.path().join("zz.toml"),
        "name = \"x\"\ndescription = 5\n",
    )
    .unwrap();
    // The broken file is skipped with its place; the others still load.
    let set = Profiles::load(Some(dir.path()), &k).unwrap();
    assert!(set.get("stm32").is_ok_and(|p| !p.built_in));
    assert_eq!(set.all().len(), 7);
    assert_eq!(set.skipped().len(), 1);
    let (file, line, _) = set.skipped()[0].location().unwrap();
    assert!(file.ends_with("zz.toml"));
    assert_eq!(line, 2);

    // A second file with the same name is skipped; the first stays.
    std::fs::write(
        dir.path().join("zz.toml"),
        MINIMAL.replace("name = \"t\"", "name = \"stm32\""),
    )
    .unwrap();
    let set = Profiles::load(Some(dir.path()), &k).unwrap();
    assert!(set.get("stm32").unwrap().source.ends_with("mine.toml"));
    assert!(matches!(set.skipped(), [ProfileError::Duplicate { .. }]));
}

#[test]
fn unknown_knowledge_ids_are_rejected_where_written() {
    let k = Knowledge::embedded().unwrap();
    let text = MINIMAL.to_string() + "[step.explain]\nno_answer = [\"stm32.no_such\"]\n";
    let p = Profile::parse(&text, "t.toml").unwrap();
    let e = p.check_knowledge(&k).unwrap_err();
    let (_, line, column) = e.location().unwrap();
    assert_eq!((line, column), (13, 13));
    assert!(
        e.to_string()
            .contains("no knowledge entry with id \"stm32.no_such\"")
    );
}

/// Malformed profiles: each is rejected at its line and column with a message that says
/// what was expected.
#[test]
fn malformed_profiles_are_rejected_with_position_and_reason() {
    let base = |extra: &str| format!("{MINIMAL}{extra}");
    let cases: Vec<(String, (usize, usize), &str)> = vec![
        ("name = \"t\"\n".to_string(), (1, 1), "missing field `description`"),
        (MINIMAL.replace("transport = \"serial\"", "transport = \"usb\""), (4, 13), "unknown transport \"usb\": expected serial, card or tcp"),
        (MINIMAL.replace("name = \"t\"", "name = \"T 1\""), (2, 8), "is not a profile name"),
        (MINIMAL.replace("format = \"8E1\"", "format = \"8X1\""), (7, 10), "invalid frame format '8X1'"),
        (MINIMAL.replace("baud = 9600", "baud = 1"), (6, 8), "invalid baud rate 1"),
        (MINIMAL.replace("expect = \"79\"", "expect = \"7\""), (11, 10), "`expect`: an odd number of hex digits"),
        (MINIMAL.replace("expect = \"79\"", "expect = \"7G\""), (11, 10), "'G' is not a hex digit or X"),
        (MINIMAL.replace("send = \"7F\"", "send = \"7X\""), (10, 8), "X wildcards are for `expect`"),
        (MINIMAL.replace("send = \"7F\"", "send = \"{aid}\""), (10, 8), "{aid} names no variable"),
        (MINIMAL.replace("expect = \"79\"", "expect = []"), (11, 10), "empty array"),
        (MINIMAL.replace("expect = \"79\"", "expect = { lenght = 3 }"), (11, 12), "unknown field `lenght`"),
        (MINIMAL.replace("expect = \"79\"", "expect = { last = \"16\", length = 0 }"), (11, 10), "`length` 0 is outside"),
        (MINIMAL.replace("expect = \"79\"", "expect = { sw = \"9000\" }"), (11, 10), "`sw` only applies to card profiles"),
        (MINIMAL.replace("expect = \"79\"", "expect = [\"79\", { mask = \"0F\" }]"), (11, 10), "`expect` alternative 2: the table gives none of bytes"),
        (MINIMAL.replace("expect = \"79\"", "expect = { bytes = \"08\", mask = \"0F 0F\" }"), (11, 10), "the mask has 2 bytes but the pattern has 1"),
        (MINIMAL.replace("expect = \"79\"", "expect = { bytes = \"68\", length = \"x\" }"), (11, 35), "a number of bytes, or { byte = OFFSET, add = N }"),
        (base("timeout_ms = 0\n"), (12, 14), "`timeout_ms` is 0"),
        (base("retries = 1000\n"), (12, 11), "`retries` 1000 is more than 100"),
        (base("echo = \"maybe\"\n"), (12, 8), "expected \"skip\" or \"divergence\""),
        (base("[[step]]\nname = \"init\"\nsend = \"00\"\n"), (12, 1), "a second step named \"init\""),
        (base("[[step]]\nname = \"idle\"\n"), (12, 1), "does nothing"),
        (base("[explain]\nobservation = \"frame\"\n"), (13, 15), "expected \"handshake\" or \"sw\""),
        (base("[explain]\ntext = [\"Not An Id\"]\n"), (13, 8), "is not a knowledge id"),
        (base("[step.explain]\nwhat = 1\n"), (13, 1), "unknown field `what`"),
        (MINIMAL.replace("name = \"init\"", "name = \"init\"\ndtr = true").replace("transport = \"serial\"\n[serial]\nbaud = 9600\nformat = \"8E1\"", "transport = \"tcp\""), (7, 7), "`dtr` only applies to serial profiles"),
        ("name = \"c\"\ndescription = \"d\"\ntransport = \"card\"\n[[step]]\nname = \"s\"\nsend = \"00 A4\"\n".to_string(), (6, 8), "a command APDU has at least 4"),
        ("name = \"c\"\ndescription = \"d\"\ntransport = \"serial\"\n[[step]]\nname = \"s\"\nsend = \"00\"\n".to_string(), (3, 13), "needs a [serial] table"),
        ("name = \"c\"\ndescription = \"d\"\ntransport = \"tcp\"\n".to_string(), (1, 1), "no steps"),
        ("name = \"c\"\ndescription = \"d\"\ntransport = \"tcp\"\n[vars]\naid = \"0G\"\n".to_string(), (5, 7), "variable aid: not hex bytes"),
        (MINIMAL.replace("description = \"a test\"", "description = \"\"\"two\nlines\"\"\""), (3, 15), "one non-empty line"),
        ("name = \"c".to_string(), (1, 10), "invalid basic string"),
    ];
    let mut wrong = Vec::new();
    for (text, (line, column), want) in cases {
        let (l, c, message) = err(&text);
        if !message.contains(want) || (l, c) != (line, column) {
            wrong.push(format!(
                "{l}:{c}: {message:?}, wanted {line}:{column}: {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
