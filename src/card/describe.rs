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
