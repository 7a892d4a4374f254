//! ISO/IEC 7816-3 Answer To Reset: TS convention (including an inverse-convention ATR read by
//! a direct-convention UART), T0, every TA/TB/TC/TD group, protocols offered, Fi/Di/fmax,
//! guard and waiting times, T=1 and T=15 parameters, historical bytes and TCK.
//!
//! Sources: ISO/IEC 7816-3/-4 (TS 3B/3F, 03 when read as direct); the Fi/Di/fmax
//! tables and interface-byte meanings of ISO 7816-3:2006 as implemented in Ludovic Rousseau's
//! parseATR (pyscard) and several reader drivers that agree with it. TCK: present unless only
//! T=0 is indicated; the XOR of T0..TCK is 00.

use super::{ascii, byte_span, from_inverse_convention, span};
use crate::decode::frame::{Field, Frame, FrameStatus, Protocol, StreamOffset};
use crate::hex;
use std::fmt;
use std::ops::Range;

/// An ATR is at most 33 bytes: TS and up to 32 more (ISO 7816-3).
pub const MAX_ATR_LEN: usize = 33;

/// Fi by TA1 high nibble; `None` = RFU.
const FI: [Option<u32>; 16] = [
    Some(372),
    Some(372),
    Some(558),
    Some(744),
    Some(1116),
    Some(1488),
    Some(1860),
    None,
    None,
    Some(512),
    Some(768),
    Some(1024),
    Some(1536),
    Some(2048),
    None,
    None,
];

/// fmax in kHz by TA1 high nibble (7.5 MHz needs kHz); `None` = RFU.
const FMAX_KHZ: [Option<u32>; 16] = [
    Some(4000),
    Some(5000),
    Some(6000),
    Some(8000),
    Some(12000),
    Some(16000),
    Some(20000),
    None,
    None,
    Some(5000),
    Some(7500),
    Some(10000),
    Some(15000),
    Some(20000),
    None,
    None,
];

/// Di by TA1 low nibble; `None` = RFU.
const DI: [Option<u32>; 16] = [
    None,
    Some(1),
    Some(2),
    Some(4),
    Some(8),
    Some(16),
    Some(32),
    Some(64),
    Some(12),
    Some(20),
    None,
    None,
    None,
    None,
    None,
    None,
];

/// Clock rate conversion integer Fi for a 4-bit FI code (TA1 or PPS1 high nibble).
pub fn fi_from_code(code: u8) -> Option<u32> {
    FI.get(usize::from(code & 0x0F)).copied().flatten()
}

/// Maximum clock frequency in kHz for a 4-bit FI code.
pub fn fmax_khz_from_code(code: u8) -> Option<u32> {
    FMAX_KHZ.get(usize::from(code & 0x0F)).copied().flatten()
}

/// Baud rate adjustment integer Di for a 4-bit DI code (TA1 or PPS1 low nibble).
pub fn di_from_code(code: u8) -> Option<u32> {
    DI.get(usize::from(code & 0x0F)).copied().flatten()
}

/// "Fi=372 Di=1 (372 clock cycles per ETU, fmax 5 MHz)" for a TA1/PPS1 byte.
pub fn describe_fidi(byte: u8) -> String {
    let (f, d) = (byte >> 4, byte & 0x0F);
    match (fi_from_code(f), di_from_code(d), fmax_khz_from_code(f)) {
        (Some(fi), Some(di), Some(fmax)) => {
            format!(
                "Fi={fi} Di={di} ({} clock cycles per ETU, fmax {} MHz)",
                cycles_text(fi, di),
                mhz_text(fmax)
            )
        }
        (fi, di, _) => format!(
            "Fi={} Di={} (RFU value: not usable)",
            fi.map_or_else(|| "RFU".to_string(), |v| v.to_string()),
            di.map_or_else(|| "RFU".to_string(), |v| v.to_string())
        ),
    }
}

fn cycles_text(fi: u32, di: u32) -> String {
    if di != 0 && fi % di == 0 {
        (fi / di).to_string()
    } else {
        format!("{:.1}", f64::from(fi) / f64::from(di.max(1)))
    }
}

fn mhz_text(khz: u32) -> String {
    if khz % 1000 == 0 {
        (khz / 1000).to_string()
    } else {
        format!("{}.{}", khz / 1000, (khz % 1000) / 100)
    }
}

/// Bit order and polarity of the card's characters, announced by TS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Convention {
    /// TS = 3B: high = 1, least significant bit first (a plain UART).
    Direct,
    /// TS = 3F: low = 1, most significant bit first.
    Inverse,
}

/// A transmission protocol number T from a TD byte or PPS0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransmissionProtocol(pub u8);

impl TransmissionProtocol {
    pub const T0: TransmissionProtocol = TransmissionProtocol(0);
    pub const T1: TransmissionProtocol = TransmissionProtocol(1);
    /// Not a transport protocol: T=15 introduces global interface bytes.
    pub const T15: TransmissionProtocol = TransmissionProtocol(15);
}

impl fmt::Display for TransmissionProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T={}", self.0)
    }
}

/// One interface byte and where it is in the ATR (byte index, TS = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceByte {
    pub value: u8,
    pub index: usize,
}

/// TAi, TBi, TCi, TDi of one group i.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceGroup {
    /// i, from 1.
    pub number: u8,
    /// The protocol TD(i-1) announced for this group; `None` for group 1 (global bytes).
    pub applies_to: Option<TransmissionProtocol>,
    pub ta: Option<InterfaceByte>,
    pub tb: Option<InterfaceByte>,
    pub tc: Option<InterfaceByte>,
    pub td: Option<InterfaceByte>,
}

/// Whether the check byte is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TckStatus {
    /// Only T=0 indicated: no TCK.
    NotPresent,
    Valid,
    /// `expected` is the value that would make T0..TCK XOR to 00.
    Invalid {
        found: u8,
        expected: u8,
    },
}

/// Error detection code of T=1 blocks (TC for T=1, bit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum T1Edc {
    /// One byte: XOR of the block (the default).
    Lrc,
    /// Two bytes.
    Crc,
}

/// Which part of an ATR is missing from a truncated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtrPart {
    T0,
    /// An interface byte, e.g. `Interface { kind: 'D', number: 2 }` = TD2.
    Interface {
        kind: char,
        number: u8,
    },
    /// Historical byte `index` (from 1) of `count`.
    Historical {
        index: usize,
        count: usize,
    },
    Tck,
}

impl fmt::Display for AtrPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtrPart::T0 => write!(f, "T0"),
            AtrPart::Interface { kind, number } => write!(f, "T{kind}{number}"),
            AtrPart::Historical { index, count } => {
                write!(f, "historical byte {index} of {count}")
            }
            AtrPart::Tck => write!(f, "TCK"),
        }
    }
}

/// Why bytes are not an ATR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtrError {
    Empty,
    /// TS is neither 3B, 3F nor 03 (3F read by a direct-convention UART).
    InvalidTs {
        found: u8,
    },
    /// The bytes end before the ATR does; `need` is the length known so far.
    Truncated {
        need: usize,
        got: usize,
        missing: AtrPart,
    },
    /// The interface-byte chain runs past 33 bytes.
    TooLong {
        len: usize,
    },
    /// A complete ATR of `atr_len` bytes is followed by `extra` more.
    TrailingBytes {
        atr_len: usize,
        extra: usize,
    },
}

impl AtrError {
    pub fn hint(&self) -> &'static str {
        match self {
            AtrError::Empty => {
                "no bytes: the card did not answer the reset (mute card, wrong voltage class, or no clock)"
            }
            AtrError::InvalidTs { .. } => {
                "TS must be 3B (direct) or 3F (inverse); anything else points to a wrong baud rate (the initial rate is f/372) or bytes that are not an ATR"
            }
            AtrError::Truncated { .. } => {
                "the ATR stopped early: bytes were lost (baud rate, parity or a short read timeout)"
            }
            AtrError::TooLong { .. } => {
                "the TD chain runs past 33 bytes: these are probably not ATR bytes, or the first bytes were misread"
            }
            AtrError::TrailingBytes { .. } => {
                "extra bytes after the ATR: a second ATR, a PPS, or noise; decode them separately"
            }
        }
    }
}

impl fmt::Display for AtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtrError::Empty => write!(f, "empty ATR"),
            AtrError::InvalidTs { found } => write!(f, "invalid TS 0x{found:02X}"),
            AtrError::Truncated { need, got, missing } => write!(
                f,
                "truncated ATR: {missing} missing (need at least {need} bytes, got {got})"
            ),
            AtrError::TooLong { len } => {
                write!(
                    f,
                    "ATR structure needs {len} bytes, more than the maximum 33"
                )
            }
            AtrError::TrailingBytes { atr_len, extra } => {
                write!(f, "{extra} bytes follow a complete {atr_len}-byte ATR")
            }
        }
    }
}

impl std::error::Error for AtrError {}

/// Where the parts of an ATR lie, found by walking T0 and the TD chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    historical: Range<usize>,
    tck: Option<usize>,
    len: usize,
}

/// Walk the structure of a logical (direct-convention) ATR prefix without allocating;
/// `on_group` sees each interface group. Reports the total length or why it is not known.
fn walk(bytes: &[u8], mut on_group: impl FnMut(InterfaceGroup)) -> Result<Shape, AtrError> {
    let got = bytes.len();
    let need = |index: usize, missing: AtrPart| -> Result<u8, AtrError> {
        if index >= MAX_ATR_LEN {
            return Err(AtrError::TooLong { len: index + 1 });
        }
        bytes.get(index).copied().ok_or(AtrError::Truncated {
            need: index + 1,
            got,
            missing,
        })
    };
    let ts = bytes.first().copied().ok_or(AtrError::Empty)?;
    if ts != 0x3B && ts != 0x3F {
        return Err(AtrError::InvalidTs { found: ts });
    }
    let t0 = need(1, AtrPart::T0)?;
    let historical_count = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut next = 2usize;
    let mut number: u8 = 1;
    let mut applies_to = None;
    let mut tck_required = false;
    loop {
        let mut group = InterfaceGroup {
            number,
            applies_to,
            ta: None,
            tb: None,
            tc: None,
            td: None,
        };
        for (bit, kind) in [(0x1u8, 'A'), (0x2, 'B'), (0x4, 'C'), (0x8, 'D')] {
            if y & bit == 0 {
                continue;
            }
            let value = need(next, AtrPart::Interface { kind, number })?;
            let byte = Some(InterfaceByte { value, index: next });
            match kind {
                'A' => group.ta = byte,
                'B' => group.tb = byte,
                'C' => group.tc = byte,
                _ => group.td = byte,
            }
            next += 1;
        }
        on_group(group);
        let Some(td) = group.td else { break };
        y = td.value >> 4;
        let protocol = TransmissionProtocol(td.value & 0x0F);
        if protocol != TransmissionProtocol::T0 {
            tck_required = true;
        }
        applies_to = Some(protocol);
        // Each TD consumed a byte and `need` stops at 33, so this loop ends; the saturating
        // add only guards the counter.
        number = number.saturating_add(1);
    }
    let historical = next..next + historical_count;
    for (k, index) in historical.clone().enumerate() {
        need(
            index,
            AtrPart::Historical {
                index: k + 1,
                count: historical_count,
            },
        )?;
    }
    let tck = if tck_required {
        need(historical.end, AtrPart::Tck)?;
        Some(historical.end)
    } else {
        None
    };
    let len = tck.map_or(historical.end, |i| i + 1);
    Ok(Shape {
        historical,
        tck,
        len,
    })
}

/// Result of looking for an ATR at the start of a growing buffer (streaming use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtrScan {
    /// A complete ATR of this many bytes starts the buffer (its TCK may still be wrong).
    Complete(usize),
    /// So far so good; more bytes are needed.
    Incomplete,
    /// Not an ATR (bad TS or longer than 33 bytes).
    NotAtr,
}

/// Check whether logical (direct-convention) `bytes` start with an ATR. Allocation-free.
pub fn scan(bytes: &[u8]) -> AtrScan {
    match walk(bytes, |_| {}) {
        Ok(shape) => AtrScan::Complete(shape.len),
        Err(AtrError::Truncated { .. } | AtrError::Empty) => AtrScan::Incomplete,
        Err(_) => AtrScan::NotAtr,
    }
}

/// What a streaming hunter needs to know about a complete ATR, found without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtrOutline {
    /// Length in bytes, TS to TCK ([`Atr::len`]).
    pub len: usize,
    pub tck: TckStatus,
    /// The protocol the card starts in ([`Atr::first_protocol`]).
    pub first_protocol: TransmissionProtocol,
    /// [`Atr::t1_edc`].
    pub t1_edc: T1Edc,
}

/// Result of [`probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtrProbe {
    /// A complete ATR of a shape cards send starts the buffer (its TCK may still be wrong).
    Complete(AtrOutline),
    /// Consistent so far; nothing is decided before the buffer holds `need` bytes.
    Incomplete { need: usize },
    /// Not an ATR a card sends: TS not 3B/3F, structure longer than 33 bytes, TA1 coding an
    /// RFU Fi or Di, a TD announcing T=2..13 (reserved or RFU), or TD1 announcing T=15.
    NotAtr,
}

/// Stricter, faster [`scan`] for hunting in a stream that is mostly not card traffic: looks
/// at logical (direct-convention) `bytes`, never allocates, and says `NotAtr` at the first
/// byte no real ATR has (where `scan` waits for the whole structure). Agrees with
/// [`parse_prefix`] on every ATR it calls complete.
pub fn probe(bytes: &[u8]) -> AtrProbe {
    // Index of a byte the structure needs: its value, or why it is not there (yet).
    let need = |index: usize| -> Result<u8, AtrProbe> {
        if index >= MAX_ATR_LEN {
            return Err(AtrProbe::NotAtr);
        }
        bytes
            .get(index)
            .copied()
            .ok_or(AtrProbe::Incomplete { need: index + 1 })
    };
    let outline = || -> Result<AtrOutline, AtrProbe> {
        let ts = need(0)?;
        if ts != 0x3B && ts != 0x3F {
            return Err(AtrProbe::NotAtr);
        }
        let t0 = need(1)?;
        let mut y = t0 >> 4;
        let mut next = 2usize;
        let mut number: u8 = 1;
        let mut applies_to: Option<u8> = None;
        let mut tck_required = false;
        let mut ta2 = None;
        let mut first_offered = None;
        let mut t1_group_seen = false;
        let mut t1_edc = T1Edc::Lrc;
        loop {
            // Same rule as `Atr::first_group_for(T1)`: the first group i ≥ 3 for T=1.
            let first_t1_group = number >= 3 && applies_to == Some(1) && !t1_group_seen;
            t1_group_seen |= first_t1_group;
            // Which of TA, TB, TC are there is data, not worth a branch each: count them.
            let ta_at = next;
            let tc_at = ta_at + usize::from(y & 0x1) + usize::from((y >> 1) & 0x1);
            let td_at = tc_at + usize::from((y >> 2) & 0x1);
            if y & 0x1 != 0 && number <= 2 {
                // TA1 is judged as soon as it is there; TA2 gives specific mode.
                let ta = need(ta_at)?;
                if number == 1 && (fi_from_code(ta >> 4).is_none() || di_from_code(ta).is_none()) {
                    return Err(AtrProbe::NotAtr);
                }
                if number == 2 {
                    ta2 = Some(ta);
                }
            }
            if td_at > next {
                // The group's TA, TB and TC are consecutive: all there once the last is.
                let last = need(td_at - 1)?;
                if first_t1_group && y & 0x4 != 0 && last & 0x01 != 0 {
                    t1_edc = T1Edc::Crc;
                }
            }
            next = td_at;
            if y & 0x8 == 0 {
                break;
            }
            let td = need(next)?;
            next += 1;
            let protocol = td & 0x0F;
            if matches!(protocol, 2..=13) || (number == 1 && protocol == 15) {
                return Err(AtrProbe::NotAtr);
            }
            tck_required |= protocol != 0;
            if protocol != 15 && first_offered.is_none() {
                first_offered = Some(protocol);
            }
            applies_to = Some(protocol);
            y = td >> 4;
            // `need` stops at 33 and every TD takes a byte, so this ends.
            number = number.saturating_add(1);
        }
        let historical_end = next + usize::from(t0 & 0x0F);
        if historical_end > MAX_ATR_LEN || (tck_required && historical_end >= MAX_ATR_LEN) {
            return Err(AtrProbe::NotAtr);
        }
        let tck = if tck_required {
            let found = need(historical_end)?;
            let before = bytes
                .get(1..historical_end)
                .unwrap_or(&[])
                .iter()
                .fold(0u8, |acc, b| acc ^ b);
            if before == found {
                TckStatus::Valid
            } else {
                TckStatus::Invalid {
                    found,
                    expected: before,
                }
            }
        } else {
            // The last historical byte (or T0 when there are none) ends the ATR.
            need(historical_end - 1)?;
            TckStatus::NotPresent
        };
        let first_protocol = match (ta2, first_offered) {
            (Some(ta2), _) => ta2 & 0x0F,
            (None, Some(t)) => t,
            (None, None) => 0,
        };
        Ok(AtrOutline {
            len: historical_end + usize::from(tck_required),
            tck,
            first_protocol: TransmissionProtocol(first_protocol),
            t1_edc,
        })
    };
    match outline() {
        Ok(outline) => AtrProbe::Complete(outline),
        Err(probe) => probe,
    }
}

/// A parsed ATR. `bytes` are the logical values (decoded when the ATR was read inverted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atr {
    pub bytes: Vec<u8>,
    pub convention: Convention,
    /// True when a direct-convention UART read an inverse-convention card (TS seen as 03)
    /// and the bytes were decoded here by bit-reversing and inverting.
    pub decoded_from_inverse: bool,
    pub groups: Vec<InterfaceGroup>,
    /// Byte range of the historical bytes.
    pub historical: Range<usize>,
    pub tck: TckStatus,
    tck_index: Option<usize>,
}

/// Parse a complete ATR (nothing after it). Accepts TS 3B, 3F, and 03 (an inverse-convention
/// ATR read by a direct-convention UART: every byte is decoded). A wrong TCK is not an error:
/// it shows in [`Atr::tck`] and as `BadChecksum` in the frame.
pub fn parse(bytes: &[u8]) -> Result<Atr, AtrError> {
    let atr = parse_prefix(bytes)?;
    if atr.bytes.len() < bytes.len() {
        return Err(AtrError::TrailingBytes {
            atr_len: atr.bytes.len(),
            extra: bytes.len() - atr.bytes.len(),
        });
    }
    Ok(atr)
}

/// Parse the ATR at the start of `bytes`, ignoring whatever follows (see [`Atr::len`]).
pub fn parse_prefix(bytes: &[u8]) -> Result<Atr, AtrError> {
    let decoded_from_inverse = bytes.first() == Some(&0x03);
    let window = bytes.get(..MAX_ATR_LEN).unwrap_or(bytes);
    let logical: Vec<u8> = if decoded_from_inverse {
        window.iter().map(|b| from_inverse_convention(*b)).collect()
    } else {
        window.to_vec()
    };
    let mut groups = Vec::new();
    let shape = walk(&logical, |g| groups.push(g))?;
    let mut logical = logical;
    logical.truncate(shape.len);
    let tck = match shape.tck {
        None => TckStatus::NotPresent,
        Some(index) => {
            let found = logical.get(index).copied().unwrap_or(0);
            let before = logical
                .get(1..index)
                .unwrap_or(&[])
                .iter()
                .fold(0u8, |acc, b| acc ^ b);
            if before ^ found == 0 {
                TckStatus::Valid
            } else {
                TckStatus::Invalid {
                    found,
                    expected: before,
                }
            }
        }
    };
    let convention = if logical.first() == Some(&0x3F) {
        Convention::Inverse
    } else {
        Convention::Direct
    };
    Ok(Atr {
        bytes: logical,
        convention,
        decoded_from_inverse,
        groups,
        historical: shape.historical,
        tck,
        tck_index: shape.tck,
    })
}

impl Atr {
    /// Length of the ATR in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true for a parsed ATR (TS and T0 are always there); for clippy's len rule.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn t0(&self) -> u8 {
        self.bytes.get(1).copied().unwrap_or(0)
    }

    pub fn historical_bytes(&self) -> &[u8] {
        self.bytes.get(self.historical.clone()).unwrap_or(&[])
    }

    pub fn tck_ok(&self) -> bool {
        !matches!(self.tck, TckStatus::Invalid { .. })
    }

    fn group(&self, number: u8) -> Option<&InterfaceGroup> {
        self.groups.iter().find(|g| g.number == number)
    }

    /// TAi/TBi/TCi value for group i (`kind` 'A', 'B', 'C' or 'D').
    pub fn interface_byte(&self, kind: char, number: u8) -> Option<u8> {
        let g = self.group(number)?;
        let b = match kind {
            'A' => g.ta,
            'B' => g.tb,
            'C' => g.tc,
            'D' => g.td,
            _ => None,
        }?;
        Some(b.value)
    }

    /// Protocols offered, in TD order without repeats; T=0 when no TD1 (the default).
    pub fn protocols(&self) -> Vec<TransmissionProtocol> {
        let mut out: Vec<TransmissionProtocol> = Vec::new();
        for g in &self.groups {
            if let Some(td) = g.td {
                let t = TransmissionProtocol(td.value & 0x0F);
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        if out.is_empty() {
            out.push(TransmissionProtocol::T0);
        }
        out
    }

    /// The protocol the card starts in: TA2's in specific mode, else the first offered
    /// (skipping T=15, which is not a transport protocol).
    pub fn first_protocol(&self) -> TransmissionProtocol {
        if let Some((t, _)) = self.specific_mode() {
            return t;
        }
        self.protocols()
            .into_iter()
            .find(|t| *t != TransmissionProtocol::T15)
            .unwrap_or(TransmissionProtocol::T0)
    }

    /// TA1, or the default 0x11 (Fi 372, Di 1, fmax 5 MHz) when absent.
    fn ta1(&self) -> u8 {
        self.interface_byte('A', 1).unwrap_or(0x11)
    }

    /// Fi, clock cycles per ETU before dividing by Di: 372 when TA1 is absent; `None` when
    /// TA1 codes an RFU value.
    pub fn fi(&self) -> Option<u32> {
        fi_from_code(self.ta1() >> 4)
    }

    /// Di: 1 when TA1 is absent; `None` when TA1 codes an RFU value.
    pub fn di(&self) -> Option<u32> {
        di_from_code(self.ta1() & 0x0F)
    }

    /// Maximum clock frequency in kHz (5000 when TA1 is absent).
    pub fn fmax_khz(&self) -> Option<u32> {
        fmax_khz_from_code(self.ta1() >> 4)
    }

    /// Bit rate in bit/s with clock `clock_hz` once Fi/Di apply (after PPS or in specific
    /// mode): clock × Di / Fi. The ATR itself always runs at clock / 372.
    pub fn bit_rate_at(&self, clock_hz: u32) -> Option<u32> {
        let (fi, di) = (self.fi()?, self.di()?);
        let rate = u64::from(clock_hz) * u64::from(di) / u64::from(fi);
        u32::try_from(rate).ok()
    }

    /// TC1, the extra guard time N in ETU (0 when absent; 255 = minimum character spacing).
    pub fn extra_guard_time(&self) -> u8 {
        self.interface_byte('C', 1).unwrap_or(0)
    }

    /// TC2, the T=0 work waiting integer WI (default 10): WT = 960 × WI × Fi / f.
    pub fn work_waiting_integer(&self) -> u8 {
        self.interface_byte('C', 2).unwrap_or(10)
    }

    /// TA2 (specific mode): the protocol to use and whether the card can change mode.
    pub fn specific_mode(&self) -> Option<(TransmissionProtocol, bool)> {
        let ta2 = self.interface_byte('A', 2)?;
        Some((TransmissionProtocol(ta2 & 0x0F), ta2 & 0x80 == 0))
    }

    /// The first group i ≥ 3 whose bytes are for protocol `t` (where T=1 and T=15
    /// parameters live).
    fn first_group_for(&self, t: TransmissionProtocol) -> Option<&InterfaceGroup> {
        self.groups
            .iter()
            .find(|g| g.number >= 3 && g.applies_to == Some(t))
    }

    /// T=1 IFSC in bytes (first TA for T=1; default 32).
    pub fn t1_ifsc(&self) -> u8 {
        self.first_group_for(TransmissionProtocol::T1)
            .and_then(|g| g.ta)
            .map_or(32, |b| b.value)
    }

    /// T=1 character waiting integer CWI (first TB for T=1, low nibble; default 13).
    pub fn t1_cwi(&self) -> u8 {
        self.first_group_for(TransmissionProtocol::T1)
            .and_then(|g| g.tb)
            .map_or(13, |b| b.value & 0x0F)
    }

    /// T=1 block waiting integer BWI (first TB for T=1, high nibble; default 4).
    pub fn t1_bwi(&self) -> u8 {
        self.first_group_for(TransmissionProtocol::T1)
            .and_then(|g| g.tb)
            .map_or(4, |b| b.value >> 4)
    }

    /// T=1 error detection code (first TC for T=1, bit 1; LRC by default).
    pub fn t1_edc(&self) -> T1Edc {
        match self
            .first_group_for(TransmissionProtocol::T1)
            .and_then(|g| g.tc)
        {
            Some(b) if b.value & 0x01 != 0 => T1Edc::Crc,
            _ => T1Edc::Lrc,
        }
    }

    /// One line for the frames pane.
    pub fn summary(&self) -> String {
        let protocols: Vec<String> = self.protocols().iter().map(|t| t.to_string()).collect();
        let mut text = format!(
            "ATR {} {}",
            protocols.join(","),
            describe_fidi(self.ta1())
                .split(" (")
                .next()
                .unwrap_or_default()
        );
        text.push_str(&format!(", {} historical bytes", self.historical.len()));
        if self.convention == Convention::Inverse {
            text.push_str(", inverse convention");
        }
        if self.decoded_from_inverse {
            text.push_str(" (read inverted, decoded)");
        }
        if let TckStatus::Invalid { found, expected } = self.tck {
            text.push_str(&format!(", bad TCK {found:02X} (expected {expected:02X})"));
        }
        text
    }

    /// The ATR as a frame (kind "atr") whose TS byte is at stream offset `base`.
    pub fn to_frame(&self, base: StreamOffset) -> Frame {
        let mut fields = Vec::with_capacity(8 + self.groups.len() * 4);
        let ts = self.bytes.first().copied().unwrap_or(0);
        let mut ts_text = match self.convention {
            Convention::Direct => format!("0x{ts:02X} direct convention"),
            Convention::Inverse => format!("0x{ts:02X} inverse convention"),
        };
        if self.decoded_from_inverse {
            ts_text.push_str(
                " (read as 0x03 by a direct-convention UART: every byte decoded by bit-reversing and inverting)",
            );
        }
        fields.push(Field::new("TS", ts_text, byte_span(base, 0)));
        let t0 = self.t0();
        fields.push(
            Field::new(
                "T0",
                format!("0x{t0:02X} Y1={:04b}, K={}", t0 >> 4, t0 & 0x0F),
                byte_span(base, 1),
            )
            .with_children(vec![
                Field::new("Y1", presence_text(t0 >> 4, 1), byte_span(base, 1)),
                Field::new(
                    "K",
                    format!("{} historical bytes", t0 & 0x0F),
                    byte_span(base, 1),
                ),
            ]),
        );
        for g in &self.groups {
            for (kind, byte) in [('A', g.ta), ('B', g.tb), ('C', g.tc), ('D', g.td)] {
                if let Some(b) = byte {
                    fields.push(Field::new(
                        format!("T{kind}{}", g.number),
                        format!(
                            "0x{:02X} {}",
                            b.value,
                            self.describe_interface(kind, g, b.value)
                        ),
                        byte_span(base, b.index),
                    ));
                }
            }
        }
        if !self.historical.is_empty() {
            let h = self.historical_bytes();
            fields.push(Field::new(
                "historical bytes",
                format!("{} \"{}\"", hex::spaced(h), ascii(h)),
                span(base, self.historical.clone()),
            ));
        }
        let status = match (self.tck, self.tck_index) {
            (TckStatus::Invalid { found, expected }, Some(i)) => {
                fields.push(Field::new(
                    "TCK",
                    format!(
                        "0x{found:02X} wrong: expected 0x{expected:02X} (XOR of T0..TCK must be 00)"
                    ),
                    byte_span(base, i),
                ));
                FrameStatus::BadChecksum {
                    expected: u32::from(expected),
                    found: u32::from(found),
                }
            }
            (_, Some(i)) => {
                let v = self.bytes.get(i).copied().unwrap_or(0);
                fields.push(Field::new(
                    "TCK",
                    format!("0x{v:02X} valid (XOR of T0..TCK = 00)"),
                    byte_span(base, i),
                ));
                FrameStatus::Ok
            }
            _ => FrameStatus::Ok,
        };
        let whole = span(base, 0..self.bytes.len());
        let protocols: Vec<String> = self.protocols().iter().map(|t| t.to_string()).collect();
        fields.push(Field::new("protocols", protocols.join(", "), whole.clone()));
        let mut speed = describe_fidi(self.ta1());
        if self.interface_byte('A', 1).is_none() {
            speed.push_str(" [defaults: TA1 absent]");
        }
        fields.push(Field::new("Fi/Di", speed, whole.clone()));
        Frame::new(Protocol::Atr, whole, "atr", status, self.summary(), fields)
    }

    fn describe_interface(&self, kind: char, group: &InterfaceGroup, value: u8) -> String {
        let t1 = Some(TransmissionProtocol::T1);
        let t15 = Some(TransmissionProtocol::T15);
        match (kind, group.number, group.applies_to) {
            ('D', i, _) => format!(
                "Y{}={:04b} ({}), T={}",
                i.saturating_add(1),
                value >> 4,
                presence_text(value >> 4, i.saturating_add(1)),
                value & 0x0F
            ),
            ('A', 1, _) => describe_fidi(value),
            ('B', 1, _) if value == 0 => "VPP not connected".to_string(),
            ('B', 1, _) => format!(
                "VPP programming PI1={} II={} (deprecated since ISO 7816-3:2006)",
                value & 0x1F,
                (value >> 5) & 0x03
            ),
            ('C', 1, _) if value == 255 => {
                "extra guard time N=255: minimum character spacing (likely 12 ETU under T=0, 11 ETU under T=1)"
                    .to_string()
            }
            ('C', 1, _) => format!("extra guard time N={value} ETU"),
            ('A', 2, _) => format!(
                "specific mode: use T={}; {}; {}",
                value & 0x0F,
                if value & 0x80 != 0 {
                    "unable to change mode"
                } else {
                    "capable to change mode"
                },
                if value & 0x10 != 0 {
                    "parameters implicit"
                } else {
                    "parameters defined by interface bytes"
                }
            ),
            ('B', 2, _) => format!("VPP programming PI2={value} (deprecated)"),
            ('C', 2, Some(TransmissionProtocol::T0)) => format!(
                "T=0 work waiting integer WI={value} (WT = 960 × {value} × Fi/f)"
            ),
            ('A', i, t) if i >= 3 && t == t1 => format!("T=1 IFSC = {value} bytes"),
            ('B', i, t) if i >= 3 && t == t1 => format!(
                "T=1 BWI={} CWI={}",
                value >> 4,
                value & 0x0F
            ),
            ('C', i, t) if i >= 3 && t == t1 => {
                if value & 0x01 != 0 {
                    "T=1 error detection: CRC".to_string()
                } else {
                    "T=1 error detection: LRC".to_string()
                }
            }
            ('A', i, t) if i >= 3 && t == t15 => {
                let clock_stop = match value >> 6 {
                    0 => "clock stop not supported",
                    1 => "clock stop in state L",
                    2 => "clock stop in state H",
                    _ => "clock stop, no preference",
                };
                let mut classes = Vec::new();
                for (bit, name) in [(0x01u8, "A (5 V)"), (0x02, "B (3 V)"), (0x04, "C (1.8 V)")] {
                    if value & bit != 0 {
                        classes.push(name);
                    }
                }
                let classes = if classes.is_empty() {
                    "none indicated".to_string()
                } else {
                    classes.join(", ")
                };
                format!("global: {clock_stop}; classes {classes}")
            }
            (_, _, Some(t)) => format!("specific to {t}, not decoded"),
            _ => "not decoded".to_string(),
        }
    }
}

/// "TA2 TD2 present" for a Y nibble announcing the bytes of group `number`.
fn presence_text(y: u8, number: u8) -> String {
    let names: Vec<String> = [(0x1u8, 'A'), (0x2, 'B'), (0x4, 'C'), (0x8, 'D')]
        .iter()
        .filter(|(bit, _)| y & bit != 0)
        .map(|(_, k)| format!("T{k}{number}"))
        .collect();
    if names.is_empty() {
        "no interface bytes follow".to_string()
    } else {
        format!("{} present", names.join(" "))
    }
}

/// Decode `bytes` as one ATR at stream offset `base` for `hsmon decode --protocol atr`:
/// a wrong TCK gives `BadChecksum`, a short ATR `Truncated`, anything else `Malformed`.
pub fn frame(base: StreamOffset, bytes: &[u8]) -> Frame {
    match parse(bytes) {
        Ok(atr) => atr.to_frame(base),
        Err(err) => {
            let status = match err {
                AtrError::Truncated { .. } => FrameStatus::Truncated,
                _ => FrameStatus::Malformed(format!("{err}; {}", err.hint())),
            };
            let mut fields = Vec::new();
            if !bytes.is_empty() {
                fields.push(Field::new(
                    "bytes",
                    hex::spaced(bytes.get(..64).unwrap_or(bytes)),
                    span(base, 0..bytes.len()),
                ));
            }
            Frame::new(
                Protocol::Atr,
                span(base, 0..bytes.len()),
                "atr",
                status,
                format!("{err}"),
                fields,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn h(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|t| u8::from_str_radix(t, 16).unwrap())
            .collect()
    }

    fn xor_t0_to_end(bytes: &[u8]) -> u8 {
        bytes[1..].iter().fold(0, |a, b| a ^ b)
    }

    fn t(n: u8) -> TransmissionProtocol {
        TransmissionProtocol(n)
    }

    /// PC/SC storage-card ATR. Checked by hand: T0=8F (TD1, K=15), TD1=80 (TD2, T=0),
    /// TD2=01 (T=1), so TCK is required; XOR of T0..TCK is 00 (computed separately).
    const STORAGE: &str = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68";
    /// JCOP ATR: TA1=13, TB1, TC1, TD1=81 (T=1), TD2=31 (TA3 TB3, T=1), K=8 "JCOPv241".
    const JCOP: &str = "3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B7";

    #[test]
    fn storage_card_atr() {
        let bytes = h(STORAGE);
        assert_eq!(xor_t0_to_end(&bytes), 0, "hand-computed TCK check");
        let atr = parse(&bytes).unwrap();
        assert_eq!(atr.tck, TckStatus::Valid);
        assert!(atr.tck_ok());
        assert_eq!(atr.protocols(), vec![t(0), t(1)]);
        assert_eq!(atr.first_protocol(), t(0));
        assert_eq!((atr.fi(), atr.di()), (Some(372), Some(1)));
        assert_eq!(atr.fmax_khz(), Some(5000));
        assert_eq!(atr.historical_bytes().len(), 15);
        assert_eq!(atr.historical_bytes()[0], 0x80);
        assert_eq!(atr.historical, 4..19);
        assert_eq!(atr.len(), 20);
        let frame = atr.to_frame(0);
        assert!(frame.status.is_ok());
        assert_eq!(frame.kind, "atr");
        assert!(frame.summary().contains("T=0,T=1"), "{}", frame.summary());
    }

    #[test]
    fn jcop_atr_with_t1_parameters() {
        let bytes = h(JCOP);
        assert_eq!(xor_t0_to_end(&bytes), 0, "hand-computed TCK check");
        let atr = parse(&bytes).unwrap();
        assert_eq!(atr.tck, TckStatus::Valid);
        assert_eq!(atr.protocols(), vec![t(1)]);
        assert_eq!(atr.first_protocol(), t(1));
        assert_eq!((atr.fi(), atr.di()), (Some(372), Some(4)));
        assert_eq!(atr.extra_guard_time(), 0);
        assert_eq!(atr.t1_ifsc(), 254);
        assert_eq!((atr.t1_bwi(), atr.t1_cwi()), (4, 5));
        assert_eq!(atr.t1_edc(), T1Edc::Lrc);
        assert_eq!(atr.historical_bytes(), b"JCOPv241");
        let frame = atr.to_frame(1000);
        assert_eq!(frame.span, 1000..1018);
        let ta3 = frame.fields().iter().find(|f| f.name == "TA3").unwrap();
        assert!(ta3.value.contains("IFSC = 254"));
        assert_eq!(ta3.span, 1007..1008);
        let ta1 = frame.fields().iter().find(|f| f.name == "TA1").unwrap();
        assert!(
            ta1.value.contains("Fi=372 Di=4 (93 clock cycles per ETU"),
            "{}",
            ta1.value
        );
    }

    #[test]
    fn short_t0_only_atrs_have_no_tck() {
        let atr = parse(&h("3B 02 14 50")).unwrap();
        assert_eq!(atr.tck, TckStatus::NotPresent);
        assert_eq!(atr.protocols(), vec![t(0)]);
        assert_eq!(atr.historical_bytes(), &[0x14, 0x50]);
        assert_eq!((atr.fi(), atr.di()), (Some(372), Some(1)));
        assert_eq!(atr.bit_rate_at(3_571_200), Some(9600));

        let atr = parse(&h("3B 65 00 00 9C 11 01 01 03")).unwrap();
        assert_eq!(atr.tck, TckStatus::NotPresent);
        assert_eq!(atr.interface_byte('B', 1), Some(0x00));
        assert_eq!(atr.interface_byte('C', 1), Some(0x00));
        assert_eq!(atr.historical_bytes(), &[0x9C, 0x11, 0x01, 0x01, 0x03]);
        assert_eq!(atr.work_waiting_integer(), 10);
    }

    #[test]
    fn bad_tck_is_bad_checksum() {
        let mut bytes = h(JCOP);
        *bytes.last_mut().unwrap() = 0xB6;
        let atr = parse(&bytes).unwrap();
        assert_eq!(
            atr.tck,
            TckStatus::Invalid {
                found: 0xB6,
                expected: 0xB7
            }
        );
        assert!(!atr.tck_ok());
        let frame = atr.to_frame(0);
        assert_eq!(
            frame.status,
            FrameStatus::BadChecksum {
                expected: 0xB7,
                found: 0xB6
            }
        );
        // A corrupted historical byte also breaks the TCK.
        let mut bytes = h(STORAGE);
        bytes[5] ^= 0x01;
        assert!(!parse(&bytes).unwrap().tck_ok());
    }

    #[test]
    fn truncated_atrs_name_the_missing_part() {
        let bytes = h(JCOP);
        assert_eq!(
            parse(&bytes[..17]),
            Err(AtrError::Truncated {
                need: 18,
                got: 17,
                missing: AtrPart::Tck
            })
        );
        assert_eq!(
            parse(&bytes[..6]),
            Err(AtrError::Truncated {
                need: 7,
                got: 6,
                missing: AtrPart::Interface {
                    kind: 'D',
                    number: 2
                }
            })
        );
        let err = parse(&bytes[..10]).unwrap_err();
        assert!(err.to_string().contains("historical byte 2 of 8"), "{err}");
        assert_eq!(
            parse(&[0x3B]),
            Err(AtrError::Truncated {
                need: 2,
                got: 1,
                missing: AtrPart::T0
            })
        );
        assert_eq!(parse(&[]), Err(AtrError::Empty));
        assert_eq!(frame(0, &bytes[..10]).status, FrameStatus::Truncated);
    }

    #[test]
    fn other_errors() {
        assert_eq!(
            parse(&[0x68, 0x00]),
            Err(AtrError::InvalidTs { found: 0x68 })
        );
        assert_eq!(
            parse(&h("3B 02 14 50 00")),
            Err(AtrError::TrailingBytes {
                atr_len: 4,
                extra: 1
            })
        );
        assert_eq!(parse_prefix(&h("3B 02 14 50 00")).unwrap().len(), 4);
        // A TD chain that never ends runs past 33 bytes.
        let endless = [0x3B, 0x80]
            .into_iter()
            .chain([0x80; 40])
            .collect::<Vec<_>>();
        assert!(matches!(parse(&endless), Err(AtrError::TooLong { .. })));
        assert_eq!(scan(&endless), AtrScan::NotAtr);
        assert!(matches!(
            frame(0, &[0x68]).status,
            FrameStatus::Malformed(_)
        ));
    }

    #[test]
    fn inverse_convention() {
        // The same ATR as a 3F card would send it, read by a direct-convention UART.
        let logical = [0x3F, 0x02, 0x14, 0x50];
        let raw: Vec<u8> = logical
            .iter()
            .map(|b| from_inverse_convention(*b))
            .collect();
        assert_eq!(raw[0], 0x03);
        let atr = parse(&raw).unwrap();
        assert!(atr.decoded_from_inverse);
        assert_eq!(atr.convention, Convention::Inverse);
        assert_eq!(atr.historical_bytes(), &[0x14, 0x50]);
        let frame = atr.to_frame(0);
        assert!(
            frame.fields()[0]
                .value
                .contains("bit-reversing and inverting")
        );
        // Already decoded by the reader: TS 3F.
        let atr = parse(&logical).unwrap();
        assert!(!atr.decoded_from_inverse);
        assert_eq!(atr.convention, Convention::Inverse);
    }

    #[test]
    fn fi_di_tables() {
        let fi: Vec<Option<u32>> = (0..16).map(fi_from_code).collect();
        assert_eq!(
            fi,
            [
                Some(372),
                Some(372),
                Some(558),
                Some(744),
                Some(1116),
                Some(1488),
                Some(1860),
                None,
                None,
                Some(512),
                Some(768),
                Some(1024),
                Some(1536),
                Some(2048),
                None,
                None
            ]
        );
        let di: Vec<Option<u32>> = (0..16).map(di_from_code).collect();
        assert_eq!(
            &di[..10],
            [
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(64),
                Some(12),
                Some(20)
            ]
        );
        assert!(di[10..].iter().all(Option::is_none));
        assert_eq!(fmax_khz_from_code(0xA), Some(7500));
        assert!(describe_fidi(0x96).starts_with("Fi=512 Di=32 (16 clock cycles"));
        assert!(describe_fidi(0x70).contains("RFU"));
    }

    #[test]
    fn specific_mode_and_t15() {
        // TS T0=90 (TA1, TD1) TA1=11 TD1=F0 (TA2 TB2 TC2 TD2, T=0)... built by hand:
        // 3B 90 11 80 ... keep it simple: T0=80 -> TD1=10 (TA2, T=0): TA2=01 => specific T=1.
        let mut bytes = vec![0x3B, 0x80, 0x10, 0x01];
        // Only T=0 indicated in TD1, so no TCK.
        let atr = parse(&bytes).unwrap();
        assert_eq!(atr.specific_mode(), Some((t(1), true)));
        assert_eq!(atr.first_protocol(), t(1));
        // T=15 global byte: TD1=8F (TD2, T=15)? TD1 low nibble 0 then TD2=1F (TA3, T=15).
        bytes = vec![0x3B, 0x80, 0x80, 0x1F, 0xC3];
        let tck = bytes[1..].iter().fold(0u8, |a, b| a ^ b);
        bytes.push(tck);
        let atr = parse(&bytes).unwrap();
        assert_eq!(atr.tck, TckStatus::Valid);
        assert_eq!(atr.protocols(), vec![t(0), t(15)]);
        assert_eq!(atr.first_protocol(), t(0));
        let frame = atr.to_frame(0);
        let ta3 = frame.fields().iter().find(|f| f.name == "TA3").unwrap();
        assert!(
            ta3.value.contains("no preference") && ta3.value.contains("B (3 V)"),
            "{}",
            ta3.value
        );
    }

    #[test]
    fn scan_streams() {
        let bytes = h(JCOP);
        for n in 0..bytes.len() {
            assert_eq!(scan(&bytes[..n]), AtrScan::Incomplete, "{n}");
        }
        assert_eq!(scan(&bytes), AtrScan::Complete(18));
        assert_eq!(scan(&[0x12]), AtrScan::NotAtr);
    }

    /// ATR-like bytes: TS 3B/3F (sometimes not), then structure-ish bytes.
    fn atr_like() -> impl Strategy<Value = Vec<u8>> {
        let ts = prop_oneof![4 => Just(0x3Bu8), 4 => Just(0x3F), 1 => any::<u8>()];
        let byte = prop_oneof![
            3 => any::<u8>(),
            1 => proptest::sample::select(vec![0x00, 0x01, 0x11, 0x13, 0x80, 0x81, 0x31, 0x1F, 0xF0, 0x0F]),
        ];
        (ts, proptest::collection::vec(byte, 0..40)).prop_map(|(ts, mut rest)| {
            rest.insert(0, ts);
            rest
        })
    }

    /// What `probe` rules out beyond the structure: TA1 with an RFU Fi or Di, a TD with
    /// T=2..13, TD1 with T=15.
    fn implausible(atr: &Atr) -> bool {
        let ta1_rfu =
            atr.interface_byte('A', 1).is_some() && (atr.fi().is_none() || atr.di().is_none());
        let td_rfu = atr
            .groups
            .iter()
            .filter_map(|g| g.td.map(|td| (g.number, td.value & 0x0F)))
            .any(|(number, t)| matches!(t, 2..=13) || (number == 1 && t == 15));
        ta1_rfu || td_rfu
    }

    proptest! {
        #[test]
        fn probe_agrees_with_scan_and_parse(bytes in atr_like()) {
            match probe(&bytes) {
                AtrProbe::Complete(outline) => {
                    prop_assert_eq!(scan(&bytes), AtrScan::Complete(outline.len));
                    let atr = parse_prefix(&bytes).unwrap();
                    prop_assert!(!implausible(&atr));
                    prop_assert_eq!(atr.len(), outline.len);
                    prop_assert_eq!(atr.tck, outline.tck);
                    prop_assert_eq!(atr.first_protocol(), outline.first_protocol);
                    prop_assert_eq!(atr.t1_edc(), outline.t1_edc);
                }
                AtrProbe::Incomplete { need } => {
                    prop_assert!(need > bytes.len());
                    prop_assert_eq!(scan(&bytes), AtrScan::Incomplete);
                    // Nothing is decided before `need` bytes, whatever they are.
                    for fill in [0x00u8, 0x11, 0xFF] {
                        let mut more = bytes.clone();
                        more.resize(need - 1, fill);
                        let later = probe(&more);
                        prop_assert!(matches!(later, AtrProbe::Incomplete { .. }), "{:?}", later);
                    }
                }
                AtrProbe::NotAtr => match scan(&bytes) {
                    AtrScan::NotAtr => {}
                    AtrScan::Complete(_) => prop_assert!(implausible(&parse_prefix(&bytes).unwrap())),
                    // Ruled out early on a byte seen so far, or too long for 33 bytes.
                    AtrScan::Incomplete => {}
                },
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..40), base in 0u64..1000) {
            let f = frame(base, &bytes);
            let end = base + bytes.len() as u64;
            prop_assert!(f.span.start >= base && f.span.end <= end);
            for field in f.fields() {
                prop_assert!(field.span.start >= base && field.span.end <= end);
            }
            let _ = scan(&bytes);
            if let Ok(atr) = parse_prefix(&bytes) {
                prop_assert!(atr.len() <= MAX_ATR_LEN);
                prop_assert!(atr.len() <= bytes.len());
            }
        }

        #[test]
        fn tck_detects_any_single_byte_change(
            hist in proptest::collection::vec(any::<u8>(), 0..8),
            index in 1usize..20,
            flip in 1u8..=255,
        ) {
            let mut bytes = vec![0x3B, 0x80 | hist.len() as u8, 0x01];
            bytes.extend(&hist);
            let tck = bytes[1..].iter().fold(0u8, |a, b| a ^ b);
            bytes.push(tck);
            prop_assert!(parse(&bytes).unwrap().tck_ok());
            // Flip bits in a historical byte or the TCK (structure bytes would change the shape).
            let target = 3 + index % (hist.len() + 1);
            bytes[target] ^= flip;
            prop_assert!(!parse(&bytes).unwrap().tck_ok());
        }
    }
}
