//! One-line descriptions of card exchanges, card events and PC/SC return codes, shared by the
//! headless output, the APDU pane and the status bar.

use crate::decode::iso7816::apdu;
use crate::decode::iso7816::{cla::Cla, ins};
use crate::decode::pcsc_codes;
use crate::event::{CardEvent, ShareMode};
use crate::sanitize::hex_string;

/// "00 A4 SELECT, P1 04 P2 00, Lc 7, Le 256" — or why the bytes are not a command APDU.
pub fn command_summary(command: &[u8]) -> String {
    match apdu::parse_command(command) {
        Ok(c) => {
            let cla = Cla::decode(c.cla);
            let mut s = format!(
                "{:02X} {}, P1 {:02X} P2 {:02X}",
                c.cla,
                ins::describe(c.ins, &cla),
                c.p1,
                c.p2
            );
            if c.nc() > 0 {
                s.push_str(&format!(", Lc {}", c.nc()));
            }
            if let Some(le) = c.le {
                s.push_str(&format!(", Le {le}"));
            }
            if c.case.is_extended() {
                s.push_str(" (extended)");
            }
            s
        }
        Err(e) => format!("not a valid command APDU: {e}"),
    }
}

/// "SCARD_W_RESET_CARD (0x80100068): Card has been reset; ..." for any code, known or not.
pub fn pcsc_error_text(code: u32) -> String {
    match pcsc_codes::lookup_code(code) {
        Some(k) => format!("{} (0x{:08X}): {}", k.name, k.code, k.meaning),
        None => format!("unknown PC/SC return code 0x{code:08X}"),
    }
}

/// "inserted in Virtual PCD 00 00, ATR 3B 02 14 50".
pub fn card_event_text(ev: &CardEvent) -> String {
    match ev {
        CardEvent::Readers(r) if r.is_empty() => "no readers".to_string(),
        CardEvent::Readers(r) => format!("readers: {}", r.join(", ")),
        CardEvent::Inserted { reader, atr } => {
            format!("inserted in {reader}, ATR {}", hex_string(atr))
        }
        CardEvent::Removed { reader } => format!("removed from {reader}"),
        CardEvent::Connected {
            reader,
            protocol,
            share,
            ..
        } => format!(
            "connected to {reader}, {protocol}, {}",
            match share {
                ShareMode::Shared => "shared",
                ShareMode::Exclusive => "exclusive",
            }
        ),
        CardEvent::Reconnected {
            reader,
            disposition,
            protocol,
        } => format!(
            "reconnected to {reader} with {} ({protocol})",
            disposition.label()
        ),
        CardEvent::Disconnected {
            reader,
            disposition,
        } => format!("disconnected from {reader} with {}", disposition.label()),
        CardEvent::Transaction { begun: true } => "transaction begun".to_string(),
        CardEvent::Transaction { begun: false } => "transaction ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_by_aid_is_summarised() {
        let cmd = [0x00, 0xA4, 0x04, 0x00, 0x03, 0xA0, 0x00, 0x01, 0x00];
        let s = command_summary(&cmd);
        assert!(
            s.starts_with("00 A4 SELECT, P1 04 P2 00, Lc 3, Le 256"),
            "{s}"
        );
    }

    #[test]
    fn garbage_is_named_not_a_command() {
        assert!(command_summary(&[0x00]).starts_with("not a valid command APDU"));
    }

    #[test]
    fn reset_card_code_is_named() {
        let s = pcsc_error_text(0x8010_0068);
        assert!(s.starts_with("SCARD_W_RESET_CARD (0x80100068)"), "{s}");
        assert_eq!(
            pcsc_error_text(0x1234),
            "unknown PC/SC return code 0x00001234"
        );
    }
}

/// Where pcsc-tools installs its list of known ATRs.
pub const SMARTCARD_LIST: &str = "/usr/share/pcsc/smartcard_list.txt";

/// The card's name from pcsc-tools' smartcard_list.txt, where it is installed and knows the
/// ATR ("Schlumberger Multiflex 3k"). Several descriptions are joined with "; ".
pub fn card_name(atr: &[u8]) -> Option<String> {
    static LIST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let text = LIST
        .get_or_init(|| std::fs::read_to_string(SMARTCARD_LIST).ok())
        .as_deref()?;
    card_name_in(text, atr)
}

/// `card_name` over the text of a smartcard_list.txt.
pub fn card_name_in(list: &str, atr: &[u8]) -> Option<String> {
    let want = hex_string(atr).to_ascii_uppercase();
    let mut lines = list.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('\t') || line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut names = Vec::new();
        while let Some(next) = lines.peek() {
            if let Some(n) = next.strip_prefix('\t') {
                names.push(n.trim().to_string());
                lines.next();
            } else {
                break;
            }
        }
        if atr_pattern_matches(line.trim(), &want) && !names.is_empty() {
            return Some(names.join("; "));
        }
    }
    None
}

/// The list's patterns are regular expressions over "3B 02 14 50"; nearly all use only `.`
/// for a wildcard digit. Patterns with other operators are skipped rather than misread.
fn atr_pattern_matches(pattern: &str, atr: &str) -> bool {
    if pattern.contains(['[', '(', '|', '*', '+', '?', '\\']) {
        return false;
    }
    pattern.len() == atr.len()
        && pattern
            .bytes()
            .zip(atr.bytes())
            .all(|(p, a)| p == b'.' || p.eq_ignore_ascii_case(&a))
}

#[cfg(test)]
mod list_tests {
    use super::*;

    const LIST: &str = "# comment\n3B 02 14 50\n\tSchlumberger Multiflex 3k\n\n3B 02 14 5.\n\tAny 5x\n\tsecond line\n3B 0[0-9] 14\n\tregex\n";

    #[test]
    fn names_come_from_exact_and_wildcard_patterns() {
        assert_eq!(
            card_name_in(LIST, &[0x3B, 0x02, 0x14, 0x50]).as_deref(),
            Some("Schlumberger Multiflex 3k")
        );
        assert_eq!(
            card_name_in(LIST, &[0x3B, 0x02, 0x14, 0x57]).as_deref(),
            Some("Any 5x; second line")
        );
        assert_eq!(card_name_in(LIST, &[0x3B, 0x02, 0x14]), None);
        assert_eq!(card_name_in(LIST, &[0x3B, 0x02, 0x15, 0x50]), None);
    }
}
