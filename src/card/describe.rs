//! One-line descriptions of card exchanges, card events and PC/SC return codes, shared by the
//! headless output, the APDU pane and the status bar.

use crate::decode::iso7816::apdu;
use crate::decode::iso7816::{cla::Cla, ins};
use crate::decode::pcsc_codes;
use crate::event::{CardEvent, ShareMode};
use crate::hex;

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
            format!("inserted in {reader}, ATR {}", hex::spaced(atr))
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

/// Where pcsc-tools installs its list of known ATRs (Debian's copy can be years old).
pub const SMARTCARD_LIST: &str = "/usr/share/pcsc/smartcard_list.txt";

/// The lists to read, freshest first: the copy `pcsc_scan` and `ATR_analysis` keep up to date
/// in the user's cache (`~/.cache/smartcard_list.txt`), then the system's.
pub fn smartcard_lists() -> Vec<std::path::PathBuf> {
    dirs::cache_dir()
        .map(|d| d.join("smartcard_list.txt"))
        .into_iter()
        .chain(std::iter::once(std::path::PathBuf::from(SMARTCARD_LIST)))
        .collect()
}

/// The card's name from pcsc-tools' smartcard_list.txt ("Schlumberger Multiflex 3k"), from
/// the first list (see [`smartcard_lists`]) that knows the ATR. Several descriptions are
/// joined with "; ".
pub fn card_name(atr: &[u8]) -> Option<String> {
    static LISTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LISTS
        .get_or_init(|| {
            smartcard_lists()
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .collect()
        })
        .iter()
        .find_map(|text| card_name_in(text, atr))
}

/// `card_name` over the text of a smartcard_list.txt.
pub fn card_name_in(list: &str, atr: &[u8]) -> Option<String> {
    let want = hex::spaced(atr).to_ascii_uppercase();
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

/// The list's patterns are regular expressions over "3B 02 14 50" (as pcsc-tools matches
/// them: the whole ATR, case-insensitive). Nearly all use only `.` for a wildcard digit, which
/// is matched directly; the others go through the `regex` crate. A pattern that is no valid
/// expression matches nothing.
fn atr_pattern_matches(pattern: &str, atr: &str) -> bool {
    if !pattern.contains(['[', '(', '|', '*', '+', '?', '{', '\\']) {
        return pattern.len() == atr.len()
            && pattern
                .bytes()
                .zip(atr.bytes())
                .all(|(p, a)| p == b'.' || p.eq_ignore_ascii_case(&a));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .is_ok_and(|re| re.is_match(atr))
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
        // "3B 0[0-9] 14" is a regular expression: it matches.
        assert_eq!(
            card_name_in(LIST, &[0x3B, 0x02, 0x14]).as_deref(),
            Some("regex")
        );
        assert_eq!(card_name_in(LIST, &[0x3B, 0x02, 0x15, 0x50]), None);
    }

    /// Entries written as regular expressions (smartcard_list.txt has a few hundred, e.g.
    /// `3B 6F 00 00 80 5A 0. 0. 0[1-9] ..`) match as pcsc-tools matches them, whole-ATR.
    #[test]
    fn regular_expression_entries_match_the_whole_atr() {
        let list = "3B 0[0-9] 14\n\tregex\n3B (02|03) 14 50\n\talternation\n3B 02 1[\n\tbroken\n";
        assert_eq!(
            card_name_in(list, &[0x3B, 0x05, 0x14]).as_deref(),
            Some("regex")
        );
        assert_eq!(
            card_name_in(list, &[0x3B, 0x03, 0x14, 0x50]).as_deref(),
            Some("alternation")
        );
        // Anchored: a longer ATR that starts the same is another card.
        assert_eq!(card_name_in(list, &[0x3B, 0x05, 0x14, 0x00]), None);
        assert_eq!(card_name_in(list, &[0x3B, 0x02, 0x1A]), None);
    }

    #[test]
    fn the_users_fresh_list_comes_before_the_systems() {
        let lists = smartcard_lists();
        assert_eq!(
            lists.last().map(|p| p.as_os_str()),
            Some(SMARTCARD_LIST.as_ref())
        );
        if let Some(cache) = dirs::cache_dir() {
            assert_eq!(
                lists,
                vec![cache.join("smartcard_list.txt"), SMARTCARD_LIST.into()]
            );
        }
    }
}
