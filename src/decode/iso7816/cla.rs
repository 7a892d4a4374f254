//! The ISO/IEC 7816-4 class byte (CLA): interindustry layouts (chaining, secure messaging,
//! logical channel), the proprietary and invalid ranges, and what a 68XX/6E00 status means
//! for the CLA that was sent ("6882 on CLA 0C: secure messaging bits set in CLA").
//!
//! Source: ISO/IEC 7816-3/-4 (ISO 7816-4:2005 Tables 2/3 via
//! gorferay, Oracle Java Card "Interindustry Space").

use super::sw::StatusWord;
use crate::decode::frame::{Field, StreamOffset};
use std::fmt;

/// Which part of the CLA space a byte falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassKind {
    /// 0x00-0x1F: chaining bit, two secure-messaging bits, logical channel 0-3.
    FirstInterindustry,
    /// 0x40-0x7F: SM bit, chaining bit, logical channel 4-19.
    FurtherInterindustry,
    /// 0x20-0x3F: reserved for future use.
    Reserved,
    /// 0x80-0xFE: coding defined by the card's application (GlobalPlatform, SIMs, ...).
    Proprietary,
    /// 0xFF: not a class byte; reserved for PPS (ISO 7816-3).
    Invalid,
}

/// Command chaining (CLA bit b5, 0x10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chaining {
    LastOrOnly,
    NotLast,
}

/// Secure-messaging indication in the CLA byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecureMessaging {
    /// No SM or no indication.
    None,
    /// Proprietary SM format (first interindustry 01).
    Proprietary,
    /// SM per ISO 7816-4 §6, command header not processed (not authenticated).
    HeaderNotProcessed,
    /// SM per ISO 7816-4 §6, command header authenticated.
    HeaderAuthenticated,
}

impl SecureMessaging {
    pub fn describe(self) -> &'static str {
        match self {
            SecureMessaging::None => "no secure messaging",
            SecureMessaging::Proprietary => "proprietary secure messaging",
            SecureMessaging::HeaderNotProcessed => {
                "secure messaging per ISO 7816-4 §6, header not processed"
            }
            SecureMessaging::HeaderAuthenticated => {
                "secure messaging per ISO 7816-4 §6, header authenticated"
            }
        }
    }
}

/// A decoded CLA byte. The ISO fields are `None` where the class has no ISO layout
/// (proprietary, reserved, invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cla {
    pub byte: u8,
    pub kind: ClassKind,
    pub chaining: Option<Chaining>,
    pub secure_messaging: Option<SecureMessaging>,
    /// Logical channel number, 0-19.
    pub channel: Option<u8>,
}

impl Cla {
    pub fn decode(byte: u8) -> Cla {
        let chaining = if byte & 0x10 != 0 {
            Chaining::NotLast
        } else {
            Chaining::LastOrOnly
        };
        match byte {
            0x00..=0x1F => Cla {
                byte,
                kind: ClassKind::FirstInterindustry,
                chaining: Some(chaining),
                secure_messaging: Some(match (byte >> 2) & 0x03 {
                    0 => SecureMessaging::None,
                    1 => SecureMessaging::Proprietary,
                    2 => SecureMessaging::HeaderNotProcessed,
                    _ => SecureMessaging::HeaderAuthenticated,
                }),
                channel: Some(byte & 0x03),
            },
            0x40..=0x7F => Cla {
                byte,
                kind: ClassKind::FurtherInterindustry,
                chaining: Some(chaining),
                secure_messaging: Some(if byte & 0x20 != 0 {
                    SecureMessaging::HeaderNotProcessed
                } else {
                    SecureMessaging::None
                }),
                channel: Some((byte & 0x0F) + 4),
            },
            0x20..=0x3F => Cla::without_layout(byte, ClassKind::Reserved),
            0xFF => Cla::without_layout(byte, ClassKind::Invalid),
            0x80..=0xFE => Cla::without_layout(byte, ClassKind::Proprietary),
        }
    }

    fn without_layout(byte: u8, kind: ClassKind) -> Cla {
        Cla {
            byte,
            kind,
            chaining: None,
            secure_messaging: None,
            channel: None,
        }
    }

    /// True when the CLA asks for secure messaging of any kind.
    pub fn uses_secure_messaging(&self) -> bool {
        matches!(self.secure_messaging, Some(sm) if sm != SecureMessaging::None)
    }

    /// One line, e.g. "first interindustry class: last or only command, secure messaging per
    /// ISO 7816-4 §6, header authenticated, logical channel 0".
    pub fn describe(&self) -> String {
        match (
            self.kind,
            self.chaining,
            self.secure_messaging,
            self.channel,
        ) {
            (
                ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry,
                Some(c),
                Some(sm),
                Some(ch),
            ) => {
                let which = if self.kind == ClassKind::FirstInterindustry {
                    "first"
                } else {
                    "further"
                };
                let chain = match c {
                    Chaining::LastOrOnly => "last or only command",
                    Chaining::NotLast => "not the last command of a chain",
                };
                format!(
                    "{which} interindustry class: {chain}, {}, logical channel {ch}",
                    sm.describe()
                )
            }
            (ClassKind::Reserved, ..) => {
                "reserved for future use (0x20-0x3F); not a valid interindustry class".to_string()
            }
            (ClassKind::Invalid, ..) => {
                "invalid class 0xFF: reserved for PPS (ISO 7816-3)".to_string()
            }
            _ => format!(
                "proprietary class (0x80-0xFE): {}",
                proprietary_note(self.byte)
            ),
        }
    }

    /// The "CLA" field with the decoded parts as children; the byte is at stream offset `at`.
    pub fn field(&self, at: StreamOffset) -> Field {
        let span = at..at.saturating_add(1);
        let mut children = Vec::new();
        if let Some(c) = self.chaining {
            let value = match c {
                Chaining::LastOrOnly => "0: last or only command",
                Chaining::NotLast => "1: not the last command of a chain",
            };
            children.push(Field::new("chaining", value, span.clone()));
        }
        if let Some(sm) = self.secure_messaging {
            children.push(Field::new("secure messaging", sm.describe(), span.clone()));
        }
        if let Some(ch) = self.channel {
            children.push(Field::new("logical channel", ch.to_string(), span.clone()));
        }
        Field::new(
            "CLA",
            format!("0x{:02X} {}", self.byte, self.describe()),
            span,
        )
        .with_children(children)
    }
}

impl fmt::Display for Cla {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.byte)
    }
}

/// What is known about the layout of a proprietary CLA (from the reference's notes on
/// GlobalPlatform and Wireshark's legacy table, hence "often"/"likely").
fn proprietary_note(byte: u8) -> &'static str {
    match byte {
        0x80 => "GlobalPlatform commands use 0x80",
        0x84 => "GlobalPlatform uses 0x84 = 0x80 + secure-messaging bit 0x04",
        0x81..=0x9F => "structure likely per ISO, coding proprietary",
        0xA0 => "GSM 11.11 SIM commands use 0xA0",
        0xA1..=0xAF => "proprietary (0xA0-0xAF: the range GSM 11.11 uses)",
        0xB0..=0xCF => "structure likely per ISO",
        _ => "coding defined by the application",
    }
}

/// Explain a status word in the light of the CLA byte it answered, when the CLA is the
/// likely cause (68XX, 6E00). `None` when the CLA has nothing to add.
pub fn explain_status(cla: &Cla, sw: StatusWord) -> Option<String> {
    let byte = cla.byte;
    match (sw.sw1(), sw.sw2()) {
        (0x68, 0x81) => Some(match cla.channel {
            Some(0) => format!(
                "{sw} on CLA {byte:02X}: the CLA uses the basic channel 0, so the card rejects logical channels altogether (unusual)"
            ),
            Some(ch) => format!(
                "{sw} on CLA {byte:02X}: logical channel {ch} selected in CLA; open it with MANAGE CHANNEL first, or use channel 0 if the card has no logical channels"
            ),
            None => format!(
                "{sw} on CLA {byte:02X}: the CLA is not interindustry, so its channel bits are card-specific"
            ),
        }),
        (0x68, 0x82) => Some(match cla.secure_messaging {
            Some(SecureMessaging::None) => format!(
                "{sw} on CLA {byte:02X}: the CLA does not ask for secure messaging, so the card refuses SM for another reason (SM data objects in the data field?)"
            ),
            Some(sm) => format!(
                "{sw} on CLA {byte:02X}: secure messaging bits set in CLA ({}); clear them or open the secure channel first",
                sm.describe()
            ),
            None if byte == 0x84 => format!(
                "{sw} on CLA {byte:02X}: GlobalPlatform marks secure messaging with 0x84; open the GlobalPlatform secure channel first"
            ),
            None => format!(
                "{sw} on CLA {byte:02X}: proprietary CLA; its SM bits (if any) are card-specific"
            ),
        }),
        (0x68, 0x83) => Some(match cla.chaining {
            Some(Chaining::NotLast) => format!(
                "{sw} on CLA {byte:02X}: this command is itself marked 'not last' (0x10); the card wants the chain closed with the chaining bit clear"
            ),
            _ => format!(
                "{sw} on CLA {byte:02X}: an earlier command opened a chain (CLA bit 0x10) that was never closed"
            ),
        }),
        (0x68, 0x84) => Some(match cla.chaining {
            Some(Chaining::NotLast) => format!(
                "{sw} on CLA {byte:02X}: chaining bit 0x10 set in CLA but the card does not support chaining; use extended length or smaller commands"
            ),
            _ => format!(
                "{sw} on CLA {byte:02X}: the CLA does not set the chaining bit; the card may refuse an earlier chained command"
            ),
        }),
        (0x68, _) => Some(format!(
            "{sw} on CLA {byte:02X}: the card refuses a function this CLA asks for: {}",
            cla.describe()
        )),
        (0x6E, 0x00) => Some(match cla.kind {
            ClassKind::Proprietary => format!(
                "{sw} on CLA {byte:02X}: proprietary CLA sent to an applet that only knows ISO classes (or the wrong applet is selected)"
            ),
            ClassKind::Reserved | ClassKind::Invalid => {
                format!("{sw} on CLA {byte:02X}: {}", cla.describe())
            }
            _ => format!(
                "{sw} on CLA {byte:02X}: interindustry CLA refused; the applet may expect a proprietary class (0x80…)"
            ),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_examples_from_reference() {
        // 0x0C = channel 0 + SM header-authenticated.
        let c = Cla::decode(0x0C);
        assert_eq!(c.kind, ClassKind::FirstInterindustry);
        assert_eq!(c.channel, Some(0));
        assert_eq!(
            c.secure_messaging,
            Some(SecureMessaging::HeaderAuthenticated)
        );
        assert_eq!(c.chaining, Some(Chaining::LastOrOnly));
        // 0x10 = chained.
        assert_eq!(Cla::decode(0x10).chaining, Some(Chaining::NotLast));
        // 0x41 = channel 5, no SM.
        let c = Cla::decode(0x41);
        assert_eq!(c.kind, ClassKind::FurtherInterindustry);
        assert_eq!(c.channel, Some(5));
        assert_eq!(c.secure_messaging, Some(SecureMessaging::None));
        // 0x61 = channel 5 with SM.
        let c = Cla::decode(0x61);
        assert_eq!(c.channel, Some(5));
        assert_eq!(
            c.secure_messaging,
            Some(SecureMessaging::HeaderNotProcessed)
        );
        // 0x7F = channel 19, SM, chained.
        let c = Cla::decode(0x7F);
        assert_eq!(c.channel, Some(19));
        assert!(c.uses_secure_messaging());
        assert_eq!(c.chaining, Some(Chaining::NotLast));
    }

    #[test]
    fn first_interindustry_sm_codings() {
        assert_eq!(
            Cla::decode(0x00).secure_messaging,
            Some(SecureMessaging::None)
        );
        assert_eq!(
            Cla::decode(0x04).secure_messaging,
            Some(SecureMessaging::Proprietary)
        );
        assert_eq!(
            Cla::decode(0x08).secure_messaging,
            Some(SecureMessaging::HeaderNotProcessed)
        );
        assert_eq!(Cla::decode(0x03).channel, Some(3));
    }

    #[test]
    fn other_ranges() {
        assert_eq!(Cla::decode(0x20).kind, ClassKind::Reserved);
        assert_eq!(Cla::decode(0x3F).kind, ClassKind::Reserved);
        assert_eq!(Cla::decode(0x80).kind, ClassKind::Proprietary);
        assert_eq!(Cla::decode(0xFE).kind, ClassKind::Proprietary);
        assert_eq!(Cla::decode(0xFF).kind, ClassKind::Invalid);
        assert!(Cla::decode(0xFF).describe().contains("PPS"));
        assert!(Cla::decode(0x80).describe().contains("proprietary"));
        assert!(Cla::decode(0xA0).describe().contains("GSM 11.11"));
        assert_eq!(Cla::decode(0x80).channel, None);
    }

    #[test]
    fn describe_and_field() {
        let d = Cla::decode(0x0C).describe();
        assert!(
            d.contains("header authenticated") && d.contains("channel 0"),
            "{d}"
        );
        let f = Cla::decode(0x0C).field(3);
        assert_eq!(f.span, 3..4);
        assert_eq!(f.children.len(), 3);
        assert!(f.value.starts_with("0x0C"));
        assert!(Cla::decode(0xFF).field(0).children.is_empty());
    }

    #[test]
    fn explains_6882_on_cla_0c() {
        let text = explain_status(&Cla::decode(0x0C), StatusWord(0x6882)).unwrap();
        assert!(
            text.starts_with("6882 on CLA 0C: secure messaging bits set in CLA"),
            "{text}"
        );
        let text = explain_status(&Cla::decode(0x00), StatusWord(0x6882)).unwrap();
        assert!(text.contains("does not ask for secure messaging"));
        let text = explain_status(&Cla::decode(0x84), StatusWord(0x6882)).unwrap();
        assert!(text.contains("GlobalPlatform"));
    }

    #[test]
    fn explains_other_cla_statuses() {
        let t = explain_status(&Cla::decode(0x01), StatusWord(0x6881)).unwrap();
        assert!(t.contains("logical channel 1"));
        let t = explain_status(&Cla::decode(0x10), StatusWord(0x6884)).unwrap();
        assert!(t.contains("chaining bit 0x10 set"));
        let t = explain_status(&Cla::decode(0x10), StatusWord(0x6883)).unwrap();
        assert!(t.contains("not last"));
        let t = explain_status(&Cla::decode(0x80), StatusWord(0x6E00)).unwrap();
        assert!(t.contains("proprietary CLA"));
        assert_eq!(explain_status(&Cla::decode(0x00), StatusWord(0x9000)), None);
    }

    proptest! {
        #[test]
        fn every_byte_decodes(byte in any::<u8>()) {
            let c = Cla::decode(byte);
            prop_assert_eq!(c.byte, byte);
            prop_assert!(!c.describe().is_empty());
            if let Some(ch) = c.channel {
                prop_assert!(ch <= 19);
            }
            let f = c.field(5);
            prop_assert_eq!(f.span, 5..6);
        }
    }
}
