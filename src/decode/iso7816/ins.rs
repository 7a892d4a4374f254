//! ISO/IEC 7816-4 instruction bytes (INS): names of the interindustry commands, INS values
//! that cannot be valid, and which way T=0 data usually flows for a command.
//!
//! Names: the ISO 7816-4:2005 / 7816-8 / 7816-9 command list as reproduced by several public
//! tools (pyscard-based scripts, a Go `iso7816` package, C# enums that agree with each other).
//! Under a proprietary CLA (0x80-0xFE) the same INS may mean something else.

use super::cla::{Cla, ClassKind};

/// Name of an interindustry instruction, e.g. `name(0xA4) == Some("SELECT")`.
pub fn name(ins: u8) -> Option<&'static str> {
    Some(match ins {
        0x04 => "DEACTIVATE FILE",
        0x0C => "ERASE RECORD(S)",
        0x0E | 0x0F => "ERASE BINARY",
        0x10 => "PERFORM SCQL OPERATION",
        0x12 => "PERFORM TRANSACTION OPERATION",
        0x14 => "PERFORM USER OPERATION",
        0x20 | 0x21 => "VERIFY",
        0x22 => "MANAGE SECURITY ENVIRONMENT",
        0x24 => "CHANGE REFERENCE DATA",
        0x26 => "DISABLE VERIFICATION REQUIREMENT",
        0x28 => "ENABLE VERIFICATION REQUIREMENT",
        0x2A => "PERFORM SECURITY OPERATION",
        0x2C => "RESET RETRY COUNTER",
        0x44 => "ACTIVATE FILE",
        0x46 => "GENERATE ASYMMETRIC KEY PAIR",
        0x70 => "MANAGE CHANNEL",
        0x82 => "EXTERNAL (MUTUAL) AUTHENTICATE",
        0x84 => "GET CHALLENGE",
        0x86 | 0x87 => "GENERAL AUTHENTICATE",
        0x88 => "INTERNAL AUTHENTICATE",
        0xA0 | 0xA1 => "SEARCH BINARY",
        0xA2 => "SEARCH RECORD",
        0xA4 => "SELECT",
        0xB0 | 0xB1 => "READ BINARY",
        0xB2 | 0xB3 => "READ RECORD(S)",
        0xC0 => "GET RESPONSE",
        0xC2 | 0xC3 => "ENVELOPE",
        0xCA | 0xCB => "GET DATA",
        0xD0 | 0xD1 => "WRITE BINARY",
        0xD2 => "WRITE RECORD",
        0xD6 | 0xD7 => "UPDATE BINARY",
        0xDA | 0xDB => "PUT DATA",
        0xDC | 0xDD => "UPDATE RECORD",
        0xE0 => "CREATE FILE",
        0xE2 => "APPEND RECORD",
        0xE4 => "DELETE FILE",
        0xE6 => "TERMINATE DF",
        0xE8 => "TERMINATE EF",
        0xFE => "TERMINATE CARD USAGE",
        _ => return None,
    })
}

/// False for INS 6X and 9X: under T=0 the card's procedure byte would be indistinguishable
/// from SW1 (6X/9X), so such an INS can never be acknowledged.
pub fn is_valid(ins: u8) -> bool {
    !matches!(ins & 0xF0, 0x60 | 0x90)
}

/// "A4 SELECT", "50 (not an ISO instruction)", "A4 SELECT (ISO name; CLA 80 is proprietary)".
pub fn describe(ins: u8, cla: &Cla) -> String {
    if !is_valid(ins) {
        return format!("{ins:02X} invalid INS (6X/9X collide with T=0 status bytes)");
    }
    match (name(ins), cla.kind) {
        (Some(n), ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry) => {
            format!("{ins:02X} {n}")
        }
        (Some(n), _) => format!(
            "{ins:02X} {n} (ISO name; CLA {:02X} is not interindustry, so the card may define it differently)",
            cla.byte
        ),
        (None, ClassKind::Proprietary) => format!("{ins:02X} proprietary instruction"),
        (None, _) => format!("{ins:02X} (not an ISO 7816-4 instruction)"),
    }
}

/// Which way the data after a T=0 ACK flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataDirection {
    /// Command data, reader to card (case 3, and case 4 sent as case 3 + GET RESPONSE).
    ToCard,
    /// Response data, card to reader (case 2).
    FromCard,
}

/// The usual T=0 data direction for a known interindustry INS. Commands that read (READ
/// BINARY, READ RECORD, GET RESPONSE, GET DATA, GET CHALLENGE) are case 2; under T=0 every
/// other data-carrying command sends its data to the card (T=0 runs case 4 as case 3 + GET
/// RESPONSE). A heuristic: `None` when the INS is unknown.
pub fn t0_data_direction(ins: u8) -> Option<DataDirection> {
    match ins {
        0xB0 | 0xB2 | 0xC0 | 0xCA | 0x84 => Some(DataDirection::FromCard),
        _ if name(ins).is_some() => Some(DataDirection::ToCard),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_brief_and_list() {
        let cases = [
            (0xA4, "SELECT"),
            (0xB0, "READ BINARY"),
            (0xC0, "GET RESPONSE"),
            (0x20, "VERIFY"),
            (0xCA, "GET DATA"),
            (0xD6, "UPDATE BINARY"),
            (0xB2, "READ RECORD(S)"),
            (0x82, "EXTERNAL (MUTUAL) AUTHENTICATE"),
            (0x88, "INTERNAL AUTHENTICATE"),
            (0x84, "GET CHALLENGE"),
            (0x70, "MANAGE CHANNEL"),
            (0xC2, "ENVELOPE"),
            (0xDA, "PUT DATA"),
            (0xFE, "TERMINATE CARD USAGE"),
        ];
        for (ins, n) in cases {
            assert_eq!(name(ins), Some(n), "{ins:02X}");
        }
        assert_eq!(name(0x50), None);
    }

    #[test]
    fn validity_and_description() {
        assert!(!is_valid(0x68));
        assert!(!is_valid(0x90));
        assert!(is_valid(0xA4));
        let iso = Cla::decode(0x00);
        assert_eq!(describe(0xA4, &iso), "A4 SELECT");
        assert!(describe(0x68, &iso).contains("invalid"));
        let gp = Cla::decode(0x80);
        assert!(describe(0xCA, &gp).contains("not interindustry"));
        assert_eq!(describe(0x50, &gp), "50 proprietary instruction");
        assert!(describe(0x50, &iso).contains("not an ISO"));
    }

    #[test]
    fn data_direction() {
        assert_eq!(t0_data_direction(0xB0), Some(DataDirection::FromCard));
        assert_eq!(t0_data_direction(0xC0), Some(DataDirection::FromCard));
        assert_eq!(t0_data_direction(0xA4), Some(DataDirection::ToCard));
        assert_eq!(t0_data_direction(0x50), None);
    }
}
