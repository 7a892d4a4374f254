//! The script format is scriptor's: pcsc-tools' own `scriptor` runs a script with hsmon's
//! `# expect` lines against the virtual card, and the card receives exactly the APDUs (and
//! the reset) that `card::script` parses from the same file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};

use hsmon::card::script::{Script, ScriptStep};
use hsmon::sim::card::SimCard;
use support::pcscd::pcsc_test;
use support::vpcd::{VirtualCard, VpcdEvent};

/// Every feature scriptor knows, plus expectations, written the way scriptor wants them.
const SCRIPT: &str = "\
# Select the demo application (T=0: 61XX, then GET RESPONSE)
00 A4 04 00 07 F0 68 73 6D 6F 6E 01
# expect 61XX

00C000000B
# expect 9000
reset
# the same SELECT, split over lines
00 A4 04 00 07 \\
F0 68 73 6D \\
6F 6E 01
# expect 61XX | 9000
00 84 00 00 04
# expect 6C08
exit
00 84 00 00 08
";

fn require_scriptor() {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v scriptor")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "scriptor is required: apt-get install -y --no-install-recommends pcsc-tools (scripts/setup.sh does this)"
    );
}

#[test]
fn scriptor_sends_what_the_parser_reads() {
    require_scriptor();
    let script = Script::parse(SCRIPT).unwrap();
    assert!(script.warnings.is_empty(), "{:?}", script.warnings);
    let expected: Vec<Vec<u8>> = script
        .steps
        .iter()
        .filter_map(|s| match s {
            ScriptStep::Apdu { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(expected.len(), 4, "nothing after exit");

    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    vcard.clear_log();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("select.apdu");
    std::fs::write(&path, SCRIPT).unwrap();
    let output = Command::new("scriptor")
        .arg("-r")
        .arg(reader.to_str().unwrap())
        .arg(&path)
        .output()
        .expect("scriptor runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scriptor failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(vcard.apdus(), expected, "scriptor output:\n{stdout}");

    // The reset came between the GET RESPONSE and the second SELECT, and every final status
    // word met its expectation.
    let log = vcard.log_without_polls();
    let reset_at = log.iter().position(|e| *e == VpcdEvent::Reset).unwrap();
    let apdus_before_reset = log[..reset_at]
        .iter()
        .filter(|e| matches!(e, VpcdEvent::Apdu { .. }))
        .count();
    assert_eq!(apdus_before_reset, 2, "{log:?}");
    let patterns = script.steps.iter().filter_map(|s| match s {
        ScriptStep::Apdu { expect, .. } => Some(expect.clone().unwrap()),
        _ => None,
    });
    for ((command, response), pattern) in vcard.exchanges().into_iter().zip(patterns) {
        let [.., sw1, sw2] = response[..] else {
            panic!("short response {response:02X?}")
        };
        let sw = u16::from_be_bytes([sw1, sw2]);
        assert!(
            pattern.matches(sw),
            "{command:02X?} answered {sw:04X}, expected {pattern}"
        );
    }
}
