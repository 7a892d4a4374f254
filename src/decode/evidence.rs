//! Evidence strength: how unlikely a frame is to arise from random bytes, derived from what
//! its protocol lets a framer check (fixed bytes, lengths that must agree, a checksum or CRC
//! and its width), never from the bytes of one case.
//!
//! The measure is "chance bits": `b` bits means a random byte stream matches a frame of this
//! kind at a given offset with probability about 2^-b. A lone E5 is 8 bits (one offset in
//! 256 of any binary stream is E5); an M-Bus long frame — 68 L L 68 … CS 16 — is 40 bits
//! (start, repeated length, second start, an 8-bit checksum and the stop byte must all
//! agree). Arbitration (`diagnose::arbiter`) lets the stronger of two overlapping frames
//! claim the bytes; the classifier and auto-baud weigh frames by these bits against the
//! number of bytes they could have come from by chance.
//!
//! The figures are estimates of the structure each framer verifies (see the framer's own
//! file for what it checks); they are conservative: a structure only partly checked counts
//! for what is checked.

use std::fmt;

use super::frame::{Frame, FrameStatus, Protocol};

/// Frames below this many chance bits are weak: a random stream produces one every few
/// megabytes or more often. They never raise an error or decide "talking to" alone.
pub const WEAK_BITS: u16 = 24;

/// Frames below this many chance bits (a lone E5, 79, 1F or 7F, a byte and its complement,
/// a frame start that never completed) are tokens: they lose to any other frame over the same
/// bytes, and the engine reports them only in context.
pub const TOKEN_BITS: u16 = 16;

/// The order arbitration settles overlaps by: any frame beats a token, then the more chance
/// bits win, whether they come from a check or from structure (an IEC 104 U-frame's fixed
/// octets are as unlikely by chance as a checksum). A checked frame of fewer than
/// [`TOKEN_BITS`] (an STM32 command) ranks as a token. (A clean text line never holds a
/// whole checked frame: every FT1.2, DL/T 645, SLIP or STM32 frame has a control or
/// non-UTF-8 byte, which makes a line dirty and weak, `text::is_clean_line`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    class: u8,
    bits: u16,
}

impl Rank {
    /// The rank of a frame of this class and chance bits.
    pub fn of(strength: Strength, bits: u16) -> Rank {
        let class = match strength {
            _ if bits < TOKEN_BITS => 0,
            Strength::Token => 0,
            Strength::Structural | Strength::Checked => 1,
        };
        Rank { class, bits }
    }

    /// Lower than every frame's rank (nothing can be beaten by it).
    pub const NONE: Rank = Rank { class: 0, bits: 0 };

    /// A token (see [`TOKEN_BITS`]).
    pub fn is_token(self) -> bool {
        self.class == 0
    }
}

/// A text line with control or binary bytes in it (see `text::is_clean_line`).
const DIRTY_LINE_BITS: u16 = TOKEN_BITS;

/// The rank of a text line with control or binary bytes in it.
pub fn dirty_line_rank() -> Rank {
    Rank::of(Strength::Structural, DIRTY_LINE_BITS)
}

/// An IEC 104 I-frame: no check, only its start, length and a few bits that must agree.
pub const IEC104_I_BITS: u16 = 16;

/// An ISO 7816-3 T=1 block or PPS: an 8-bit LRC/PCK and a few structural bits (NAD, PCB,
/// LEN): a token, whose context is the card's ATR.
pub const ISO7816_BLOCK_BITS: u16 = 15;

/// What a frame's check is, when its protocol has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Arithmetic sum of the bytes modulo 256 (M-Bus, FT1.2, DL/T 645, ESP data).
    Sum8,
    /// XOR of the bytes (STM32 operands, ISO 7816-3 LRC and PCK).
    Xor8,
    /// A byte followed by its complement (STM32 commands).
    Complement8,
    /// A 16-bit CRC.
    Crc16,
    /// A 32-bit CRC.
    Crc32,
}

impl Check {
    /// Width of the check value in bits.
    pub fn bits(self) -> u16 {
        match self {
            Check::Sum8 | Check::Xor8 | Check::Complement8 => 8,
            Check::Crc16 => 16,
            Check::Crc32 => 32,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Check::Sum8 => "8-bit checksum",
            Check::Xor8 => "8-bit XOR check",
            Check::Complement8 => "8-bit complement",
            Check::Crc16 => "CRC-16",
            Check::Crc32 => "CRC-32",
        }
    }
}

/// Evidence classes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// One or two bytes with no check (E5, 79, 1F, 7F), or a frame start that did not
    /// complete (truncated, malformed).
    Token,
    /// A structural match only: start and end bytes, lengths that agree, no check value (a
    /// text line, a TLS record header, an IEC 104 APCI, a frame whose checksum failed).
    Structural,
    /// A check value over the frame verified.
    Checked,
}

impl Strength {
    /// Stable identifier for JSON records: "checked", "structural", "token".
    pub fn id(self) -> &'static str {
        match self {
            Strength::Token => "token",
            Strength::Structural => "structural",
            Strength::Checked => "checked",
        }
    }
}

/// A frame's evidence strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    pub strength: Strength,
    /// The check that was verified (`Checked` only).
    pub check: Option<Check>,
    /// Chance bits: random bytes match at a given offset with probability about 2^-bits.
    pub bits: u16,
    /// Bytes the frame covers.
    pub len: u64,
}

impl Evidence {
    /// Where the frame stands in arbitration.
    pub fn rank(&self) -> Rank {
        Rank::of(self.strength, self.bits)
    }

    /// Below [`WEAK_BITS`]: a random stream makes such frames often.
    pub fn is_weak(&self) -> bool {
        self.bits < WEAK_BITS
    }

    /// The chance bits left after looking for the frame at `offsets` positions: a match
    /// somewhere among n offsets has about n times the chance of one at a given offset.
    /// Positive: the frame is unlikely to be chance even among that many bytes.
    pub fn net_bits(&self, offsets: u64) -> f64 {
        f64::from(self.bits) - (offsets.max(1) as f64).log2()
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.strength, self.check) {
            (Strength::Checked, Some(check)) => write!(
                f,
                "verified {} over {} bytes (~{} bits)",
                check.name(),
                self.len,
                self.bits
            ),
            (Strength::Token, _) => write!(f, "single token (~{} bits)", self.bits),
            _ => write!(f, "structure only (~{} bits)", self.bits),
        }
    }
}

/// A structural match worth `bits`.
fn structural(bits: u16) -> (Strength, Option<Check>, u16) {
    (Strength::Structural, None, bits)
}

/// A verified `check` on top of `structure` bits of fixed bytes and agreeing lengths.
fn checked(check: Check, structure: u16) -> (Strength, Option<Check>, u16) {
    (Strength::Checked, Some(check), structure + check.bits())
}

fn token(bits: u16) -> (Strength, Option<Check>, u16) {
    (Strength::Token, None, bits)
}

/// Chance bits of `n` printable characters: about 97 of 256 byte values are printable text
/// (ASCII graphic, space, tab), so each is worth log2(256/97) ≈ 1.4 bits.
fn printable_bits(n: u64) -> u16 {
    u16::try_from(n.saturating_mul(14) / 10).unwrap_or(u16::MAX)
}

/// What a frame of this protocol and kind is worth when it checked out (`Ok`).
fn when_ok(frame: &Frame) -> (Strength, Option<Check>, u16) {
    let len = frame.span.end.saturating_sub(frame.span.start);
    match (frame.protocol, frame.kind) {
        // EN 13757-2 / IEC 60870-5-1 FT1.2: the single character E5.
        (Protocol::Mbus | Protocol::Iec101, "ack") => token(8),
        // 10 C A CS 16: start, checksum, stop; C must be a defined function (≈2 bits).
        (Protocol::Mbus | Protocol::Iec101, "short" | "fixed") => checked(Check::Sum8, 18),
        // 68 L L 68 … CS 16: start, repeated length, second start, stop.
        (Protocol::Mbus | Protocol::Iec101, _) => checked(Check::Sum8, 32),
        // IEC 60870-5-104 APCI (no check): U = 68 04, one of six control octets, 00 00 00.
        (Protocol::Iec104, "u") => structural(45),
        // S = 68 04 01 00 and an even receive-sequence octet.
        (Protocol::Iec104, "s") => structural(33),
        // I: 68, a length with room for an ASDU, two even control octets, a defined type
        // identification and cause of transmission.
        (Protocol::Iec104, _) => structural(IEC104_I_BITS),
        // DL/T 645: (FE…) 68 A0..A5 68 C L … CS 16.
        (Protocol::Dlt645, _) => checked(Check::Sum8, 24),
        // MediaTek BROM: the four-byte start sequence and its complemented answer, or a
        // fixed ASCII word; a run of A0 alone is next to nothing.
        (Protocol::MtkBrom, "sync" | "reply") => structural(8 * len.min(4) as u16),
        (Protocol::MtkBrom, "ready" | "mode") => structural(8 * len.min(8) as u16),
        (Protocol::MtkBrom, _) => token(8),
        // STM32 AN3155: one-byte replies and the sync byte.
        (Protocol::Stm32Boot, "sync" | "ack" | "nack") => token(8),
        // A command byte and its complement, the opcode one of ~18 defined ones.
        (Protocol::Stm32Boot, "command") => checked(Check::Complement8, 4),
        // Address, count, data, erase operands: an XOR check over a few bytes.
        (Protocol::Stm32Boot, "get-reply" | "id") => structural(16),
        (Protocol::Stm32Boot, _) => checked(Check::Xor8, 0),
        // ESP ROM loader over SLIP: the opening C0 (8), a direction byte of two values (7),
        // a 16-bit size that equals the data up to the closing C0 (16). The opcode is not
        // counted: a packet with an opcode in no table is framed too ("unknown opcode");
        // data commands add a checksum (not counted: not all have one).
        (Protocol::EspSlip, "ohai") => structural(48),
        (Protocol::EspSlip, _) => structural(31),
        // TLS record header: a content type (5 defined), 03, a minor version, a length in
        // range, and for a whole record the body that length announces.
        (Protocol::Tls, _) => structural(22),
        // An HTTP start line: a method or "HTTP/1.x", a target, the version, CRLF.
        (Protocol::Http, _) => structural(64),
        // A text line: its printable characters and the line end; at least a token's worth
        // more than one byte (a line "y" or "OK" is text, not a bootloader ACK).
        // A line with control or binary bytes in it is text only by the 80 % rule: it may
        // hold the tail of a binary frame, so it counts for no more than a short line.
        (Protocol::Text, _) if !super::text::is_clean_line(frame) => structural(DIRTY_LINE_BITS),
        (Protocol::Text, _) => structural((printable_bits(len.saturating_sub(1)) + 8).max(16)),
        // ISO 7816-3: an ATR is TS (3B/3F, 7 bits), T0 and interface bytes that agree with
        // the length (~5), and a TCK (8) when any protocol but T=0 is offered; without one it
        // is a token, which the card line's context (a reset) must carry. Blocks carry an
        // LRC, PPS a PCK. (ATRs are rare: reading the field tree here costs nothing.)
        (Protocol::Iso7816Line, "atr") if frame.fields().iter().any(|f| f.name == "TCK") => {
            checked(Check::Xor8, 12)
        }
        (Protocol::Iso7816Line, "atr") => structural(12),
        (Protocol::Iso7816Line, "i-block" | "r-block" | "s-block" | "pps") => {
            checked(Check::Xor8, ISO7816_BLOCK_BITS - 8)
        }
        (Protocol::Iso7816Line, _) => structural(8),
        // APDUs and ATRs from PC/SC come framed by the reader driver: no chance involved.
        (Protocol::Apdu | Protocol::Atr, _) => structural(64),
    }
}

/// The highest rank a frame of `protocol` can have (text: a line of 4 KiB). A frame ranked
/// this high or higher cannot be beaten by a candidate of that protocol.
pub fn max_rank(protocol: Protocol) -> Rank {
    use Strength::{Checked, Structural};
    match protocol {
        Protocol::Mbus | Protocol::Iec101 => Rank::of(Checked, 40),
        Protocol::Iec104 => Rank::of(Structural, 45),
        Protocol::Dlt645 => Rank::of(Checked, 32),
        Protocol::MtkBrom => Rank::of(Structural, 64),
        Protocol::Stm32Boot => Rank::of(Structural, 16),
        Protocol::EspSlip => Rank::of(Structural, 48),
        Protocol::Tls => Rank::of(Structural, 22),
        Protocol::Http => Rank::of(Structural, 64),
        Protocol::Text => Rank::of(Structural, printable_bits(super::text::MAX_LINE as u64) + 8),
        Protocol::Iso7816Line => Rank::of(Checked, 20),
        Protocol::Apdu | Protocol::Atr => Rank::of(Structural, 64),
    }
}

/// The evidence strength of `frame`, from its protocol, kind, status and length.
pub fn evidence(frame: &Frame) -> Evidence {
    let len = frame.span.end.saturating_sub(frame.span.start);
    let (strength, check, bits) = match &frame.status {
        FrameStatus::Ok => when_ok(frame),
        // The structure matched, the check did not: what is left is the structure.
        FrameStatus::BadChecksum { .. } => {
            // A kind counted as structure alone (an ATR's TCK) loses a byte's worth too.
            let (_, check, bits) = when_ok(frame);
            structural(bits.saturating_sub(check.map_or(8, Check::bits)))
        }
        // A start that did not complete or did not fit: about one byte of evidence.
        FrameStatus::Truncated | FrameStatus::Malformed(_) => token(8.min(when_ok(frame).2)),
    };
    Evidence {
        strength,
        check,
        bits,
        len,
    }
}

impl Frame {
    /// How unlikely this frame is to arise from random bytes (see [`evidence`]).
    pub fn evidence(&self) -> Evidence {
        evidence(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::all::decode_all;
    use crate::decode::testing::h;

    fn strongest(hex: &str) -> (Protocol, &'static str, Evidence) {
        let frames = decode_all(0, &h(hex));
        // The first of the strongest (M-Bus before IEC 101 on the same FT1.2 bytes).
        let best = frames.iter().map(|f| f.evidence().bits).max().unwrap();
        let f = frames.iter().find(|f| f.evidence().bits == best).unwrap();
        (f.protocol, f.kind, f.evidence())
    }

    #[test]
    fn checked_frames_outweigh_tokens_and_structure() {
        // EN 13757-2 RSP_UD with a valid checksum: 40 bits.
        let (p, kind, e) = strongest(
            "68 1F 1F 68 08 00 72 31 77 67 17 2D 2C 01 02 00 00 00 00 2F 2F 04 83 3B 88 13 00 00 2F 2F 2F 2F 2F 2F 2F 00 16",
        );
        assert_eq!((p, kind), (Protocol::Mbus, "long"));
        assert_eq!(e.strength, Strength::Checked);
        assert_eq!(e.check, Some(Check::Sum8));
        assert_eq!(e.bits, 40);
        assert!(!e.is_weak());
        assert_eq!(
            e.to_string(),
            "verified 8-bit checksum over 37 bytes (~40 bits)"
        );
        let (p, kind, e) = strongest("E5");
        assert_eq!(
            (p, kind, e.strength),
            (Protocol::Mbus, "ack", Strength::Token)
        );
        assert!(e.is_weak());
        let (p, _, e) = strongest("79");
        assert_eq!((p, e.strength), (Protocol::Stm32Boot, Strength::Token));
    }

    #[test]
    fn a_failed_check_leaves_the_structure_and_a_truncation_one_byte() {
        let good = strongest("68 03 03 68 53 01 50 A4 16").2;
        let bad = strongest("68 03 03 68 53 01 50 A5 16").2;
        assert_eq!(bad.strength, Strength::Structural);
        assert_eq!(bad.bits, good.bits - 8);
        let frames = decode_all(0, &h("68 03 03 68 53"));
        let cut = frames
            .iter()
            .find(|f| f.protocol == Protocol::Mbus)
            .unwrap();
        assert_eq!(cut.status, FrameStatus::Truncated);
        assert_eq!(cut.evidence().strength, Strength::Token);
    }

    #[test]
    fn text_lines_weigh_by_their_characters() {
        let short = strongest("79 0A").2;
        let long = strongest(&crate::hex::spaced(b"system ready\r\n")).2;
        assert!(short.bits < long.bits);
        assert!(long.bits > 16);
    }

    #[test]
    fn net_bits_count_the_offsets_searched() {
        let e = strongest("68 03 03 68 53 01 50 A4 16").2;
        assert!((e.net_bits(1) - 40.0).abs() < 1e-9);
        assert!((e.net_bits(1024) - 30.0).abs() < 1e-9);
        assert!(strongest("E5").2.net_bits(1024) < 0.0);
    }
}
