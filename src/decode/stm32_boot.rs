//! STM32 system-memory USART bootloader (AN3155): the 0x7F sync byte, ACK 0x79 / NACK 0x1F,
//! commands sent as opcode + complement, the operands that follow READ/GO/WRITE/ERASE in the
//! host's stream (address + XOR, count + complement, data + XOR), and the device's GET and
//! GET ID replies.
//!
//! Facts: ST AN3155 (AN3155 copy, stm32flash `stm32.c`); the operand layouts and the
//! GET reply (`N`, version, N command bytes) from stm32flash `stm32.c` (`stm32_init`,
//! `stm32_write_memory`, `stm32_pages_erase`, `stm32_mass_erase`).

use wide::u8x16;

use super::frame::{
    Description, Detail, Field, Frame, FrameStatus, Framer, Protocol, StreamOffset,
};
use super::stream::{
    Lanes, ParseStep, Streamer, WindowParser, byte_set, find_starts, framer_from_streamer,
    lanes_eq, span,
};
use crate::hex;

const SYNC: u8 = 0x7F;
const ACK: u8 = 0x79;
const NACK: u8 = 0x1F;

const GET: u8 = 0x00;
const READ_MEMORY: u8 = 0x11;
const GO: u8 = 0x21;
const WRITE_MEMORY: u8 = 0x31;
const ERASE: u8 = 0x43;
const EXTENDED_ERASE: u8 = 0x44;

/// Opcodes of ST AN3155 and their names.
fn command_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
        0x00 => "GET",
        0x01 => "GET VERSION",
        0x02 => "GET ID",
        0x11 => "READ MEMORY",
        0x21 => "GO",
        0x31 => "WRITE MEMORY",
        0x43 => "ERASE",
        0x44 => "EXTENDED ERASE",
        0x63 => "WRITE PROTECT",
        0x73 => "WRITE UNPROTECT",
        0x82 => "READOUT PROTECT",
        0x92 => "READOUT UNPROTECT",
        _ => return None,
    })
}

/// What the host sends next, right after a command frame ends at `at`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Operand {
    /// 4 address bytes (MSB first) + XOR, after READ/GO/WRITE.
    Address { command: u8 },
    /// N-1 + complement, after READ's address.
    ReadCount,
    /// N-1, N data bytes, XOR of all, after WRITE's address.
    WriteData,
    /// `FF 00` (global) or N-1, N page numbers, XOR, after ERASE.
    ErasePages,
    /// `FF FF 00` (mass) or N-1 (2 bytes), N 2-byte pages, XOR, after EXTENDED ERASE.
    ExtendedErasePages,
}

/// Streaming STM32 bootloader framer: kinds "sync", "ack", "nack", "command", "address",
/// "count", "data", "erase", "get-reply", "id". Pending input ≤ 260 bytes.
pub struct Stm32BootFramer {
    streamer: Streamer<Stm32Parser>,
}

impl Stm32BootFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        Stm32BootFramer {
            streamer: Streamer::new(Stm32Parser { expect: None }),
        }
    }
}

impl Default for Stm32BootFramer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(Stm32BootFramer);

struct Stm32Parser {
    /// The operand expected at exactly this stream offset (set by the frame before it).
    expect: Option<(StreamOffset, Operand)>,
}

/// Bytes worth a look on their own: sync, ACK, NACK and the opcodes.
const CANDIDATES: [bool; 256] = byte_set(&[
    SYNC, ACK, NACK, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x44, 0x63, 0x73, 0x82, 0x92,
]);

/// [`is_start`] for sixteen positions at a time (see [`find_starts`]): sync, ACK, NACK and
/// every opcode-like byte (low nibble 0-4, high nibble 0-9 but 5: every opcode is) whose
/// successor is its complement or one bit off it (their XOR, inverted, has at most one bit
/// set); the opcode table decides the rest.
fn start_hits(lanes: &Lanes<'_>) -> u8x16 {
    let first = lanes.at(0);
    let off = !(first ^ lanes.at(1));
    let near_complement = (off & (off - u8x16::splat(1))).simd_eq(u8x16::ZERO);
    let high = first & u8x16::splat(0xF0);
    let opcode_like = (first & u8x16::splat(0x0F))
        .saturating_sub(u8x16::splat(4))
        .simd_eq(u8x16::ZERO)
        & high.saturating_sub(u8x16::splat(0x90)).simd_eq(u8x16::ZERO)
        & !high.simd_eq(u8x16::splat(0x50));
    lanes_eq(first, SYNC)
        | lanes_eq(first, ACK)
        | lanes_eq(first, NACK)
        | (near_complement & opcode_like)
}

/// Is `rest[0]` worth a look without context? Sync, ACK, NACK, or an opcode followed by its
/// complement (or one bit off it), or by nothing yet.
fn is_start(rest: &[u8]) -> bool {
    match rest {
        [SYNC | ACK | NACK, ..] => true,
        [only] => CANDIDATES[usize::from(*only)],
        [opcode, next, ..] => {
            CANDIDATES[usize::from(*opcode)] && (next ^ !opcode).count_ones() <= 1
        }
        [] => false,
    }
}

impl WindowParser for Stm32Parser {
    const PROTOCOL: Protocol = Protocol::Stm32Boot;
    // WRITE data: N-1, up to 256 bytes, XOR; plus slack for the longest GET reply.
    const MAX_WINDOW: usize = 1 + 256 + 1 + 2;

    fn next_candidate(&self, at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        let found = find_starts(bytes, 1, start_hits, is_start);
        match self.expect {
            Some((expected_at, _))
                if expected_at >= at && expected_at - at < bytes.len() as u64 =>
            {
                let expected = (expected_at - at) as usize;
                Some(found.map_or(expected, |f| f.min(expected)))
            }
            _ => found,
        }
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        let window = window.get(..Self::MAX_WINDOW).unwrap_or(window);
        let decision = match self.expect {
            Some((expected_at, operand)) if expected_at == at => {
                match operand_frame(at, window, at_end, operand) {
                    Decision::Skip => plain(at, window, at_end),
                    other => other,
                }
            }
            _ => plain(at, window, at_end),
        };
        match decision {
            Decision::Need => ParseStep::Need,
            Decision::Skip => ParseStep::Skip(1),
            Decision::Frame(frame, next) => {
                let end = frame.span.end;
                self.expect = next.map(|operand| (end, operand));
                // A frame that failed its check may be a false start: it must not hide the
                // bytes after its first one.
                let consumed = if frame.status.is_ok() {
                    (frame.span.end - frame.span.start) as usize
                } else {
                    1
                };
                ParseStep::Frame { frame, consumed }
            }
        }
    }

    fn reset(&mut self) {
        self.expect = None;
    }
}

enum Decision {
    Need,
    Skip,
    /// A frame, and the operand the host sends right after it (if any).
    Frame(Frame, Option<Operand>),
}

/// Decode the bootloader element at the start of `bytes` (first byte at stream offset
/// `base`), without context of earlier commands, treating the end of `bytes` as the end.
pub fn parse(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    let window = bytes.get(..Stm32Parser::MAX_WINDOW).unwrap_or(bytes);
    match plain(base, window, true) {
        Decision::Frame(frame, _) => Some(frame),
        _ => None,
    }
}

fn frame(
    at: StreamOffset,
    len: usize,
    kind: &'static str,
    summary: String,
    status: FrameStatus,
    fields: Vec<Field>,
) -> Frame {
    Frame::new(
        Protocol::Stm32Boot,
        span(at, 0, len),
        kind,
        status,
        summary,
        fields,
    )
}

/// Recognition without context: sync, ACK (maybe opening a GET/GET ID reply), NACK, commands.
fn plain(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    let Some(&first) = window.first() else {
        return Decision::Skip;
    };
    match first {
        SYNC => Decision::Frame(single(at, "sync"), None),
        NACK => Decision::Frame(single(at, "nack"), None),
        ACK => ack(at, window, at_end),
        opcode => command(at, window, at_end, opcode),
    }
}

fn ack_frame(at: StreamOffset) -> Decision {
    Decision::Frame(single(at, "ack"), None)
}

/// A sync, ACK or NACK byte. One byte says it all: no field tree, and the summary is only
/// written when asked for (these frames are frequent in any binary stream).
fn single(at: StreamOffset, kind: &'static str) -> Frame {
    Frame::deferred(
        Protocol::Stm32Boot,
        span(at, 0, 1),
        kind,
        FrameStatus::Ok,
        describe_single,
        &[],
        0,
    )
}

fn describe_single(frame: &Frame, _bytes: &[u8], _note: u32, _detail: Detail) -> Description {
    let summary = match frame.kind {
        "sync" => "0x7F sync: the bootloader measures the baud rate from it and answers ACK 0x79",
        "nack" => "NACK (0x1F)",
        _ => "ACK (0x79)",
    };
    Description {
        summary: summary.to_string(),
        fields: Vec::new(),
    }
}

/// An ACK, or the ACK that opens a GET reply (`79 N version cmd×N 79`) or a GET ID reply
/// (`79 01 PID_hi PID_lo 79`).
fn ack(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    let Some(&n) = window.get(1) else {
        return if at_end {
            ack_frame(at)
        } else {
            Decision::Need
        };
    };
    let n = usize::from(n);
    if n == 1 {
        return get_id_reply(at, window, at_end);
    }
    // A GET reply lists at least the basic commands; the bound keeps the window small.
    if !(5..=20).contains(&n) {
        return ack_frame(at);
    }
    let total = 1 + 1 + 1 + n + 1;
    // The structure: the list opens with GET, GET VERSION and GET ID (AN3155 §3.1, "Get
    // command": bytes 4-6 are 0x00, 0x01, 0x02, the commands every bootloader version and
    // read-protection level accepts) and the closing ACK sits where N says. Past those three
    // a command byte may be one no table of ours names (a newer bootloader's): it is shown
    // as unknown, the reply is not reduced to its ACK. Decide as soon as a byte does not fit.
    for i in 3..total.min(window.len()) {
        let b = window.get(i).copied().unwrap_or_default();
        let fits = match i {
            _ if i == total - 1 => b == ACK,
            3..=5 => usize::from(b) == i - 3,
            _ => true,
        };
        if !fits {
            return ack_frame(at);
        }
    }
    if window.len() < total {
        return if at_end {
            ack_frame(at)
        } else {
            Decision::Need
        };
    }
    let version = window.get(2).copied().unwrap_or_default();
    let commands = window.get(3..3 + n).unwrap_or_default();
    let names: Vec<String> = commands
        .iter()
        .map(|&c| match command_name(c) {
            Some(name) => name.to_string(),
            None => format!("unknown opcode 0x{c:02X}"),
        })
        .collect();
    let unknown = commands
        .iter()
        .filter(|&&c| command_name(c).is_none())
        .count();
    let fields = vec![
        Field::new("ACK", "0x79", span(at, 0, 1)),
        Field::new(
            "N",
            format!("{n} command bytes follow the version"),
            span(at, 1, 1),
        ),
        Field::new(
            "version",
            format!(
                "0x{version:02X} (bootloader {}.{})",
                version >> 4,
                version & 0x0F
            ),
            span(at, 2, 1),
        ),
        Field::new(
            "commands",
            format!(
                "{} ({})",
                hex::spaced_at_most(commands, 32),
                names.join(", ")
            ),
            span(at, 3, n),
        ),
        Field::new("ACK", "0x79", span(at, 3 + n, 1)),
    ];
    Decision::Frame(
        frame(
            at,
            total,
            "get-reply",
            if unknown == 0 {
                format!(
                    "GET reply: bootloader {}.{}, {n} commands",
                    version >> 4,
                    version & 0x0F
                )
            } else {
                format!(
                    "GET reply: bootloader {}.{}, {n} commands ({unknown} unknown)",
                    version >> 4,
                    version & 0x0F
                )
            },
            FrameStatus::Ok,
            fields,
        ),
        None,
    )
}

fn get_id_reply(at: StreamOffset, window: &[u8], at_end: bool) -> Decision {
    let Some(&[_, _, high, low, end]) = window.get(..5) else {
        return if at_end {
            ack_frame(at)
        } else {
            Decision::Need
        };
    };
    if end != ACK {
        return ack_frame(at);
    }
    let pid = u16::from(high) << 8 | u16::from(low);
    let fields = vec![
        Field::new("ACK", "0x79", span(at, 0, 1)),
        Field::new("N", "1 (two ID bytes follow)", span(at, 1, 1)),
        Field::new("PID", format!("0x{pid:04X}"), span(at, 2, 2)),
        Field::new("ACK", "0x79", span(at, 4, 1)),
    ];
    Decision::Frame(
        frame(
            at,
            5,
            "id",
            format!("GET ID reply (likely): product ID 0x{pid:04X}"),
            FrameStatus::Ok,
            fields,
        ),
        None,
    )
}

fn command(at: StreamOffset, window: &[u8], at_end: bool, opcode: u8) -> Decision {
    // Unknown is not absent, except here: a bare opcode + complement pair is the whole
    // structure of a command (AN3155 §2), and one random byte pair in 256 is a byte and its
    // complement. With the opcode table that is ~12 pairs in 65536 (a weak token already);
    // without it every 256th pair of any binary stream would be a "command", so an opcode
    // in no table is not framed on its own. Where more structure is verified (the command
    // list of a GET reply) an unknown opcode is shown.
    if command_name(opcode).is_none() {
        return Decision::Skip;
    }
    let Some(&check) = window.get(1) else {
        return if at_end {
            Decision::Skip
        } else {
            Decision::Need
        };
    };
    let complement = !opcode;
    let bytes = [opcode, check];
    if check == complement {
        let next = match opcode {
            READ_MEMORY | GO | WRITE_MEMORY => Some(Operand::Address { command: opcode }),
            ERASE => Some(Operand::ErasePages),
            EXTENDED_ERASE => Some(Operand::ExtendedErasePages),
            _ => None,
        };
        let frame = Frame::deferred(
            Protocol::Stm32Boot,
            span(at, 0, 2),
            "command",
            FrameStatus::Ok,
            describe_command,
            &bytes,
            0,
        );
        return Decision::Frame(frame, next);
    }
    // A corrupted complement differs from the right one in a single bit; anything else after
    // an opcode-like byte is unrelated data (e.g. 00 00 from a break).
    if (check ^ complement).count_ones() == 1 {
        let frame = Frame::deferred(
            Protocol::Stm32Boot,
            span(at, 0, 2),
            "command",
            FrameStatus::BadChecksum {
                expected: u32::from(complement),
                found: u32::from(check),
            },
            describe_command,
            &bytes,
            0,
        );
        return Decision::Frame(frame, None);
    }
    Decision::Skip
}

/// Summary and fields of a command (`bytes`: opcode and the byte sent as its complement).
fn describe_command(frame: &Frame, bytes: &[u8], _note: u32, _detail: Detail) -> Description {
    let at = frame.span.start;
    let opcode = bytes.first().copied().unwrap_or_default();
    let check = bytes.get(1).copied().unwrap_or_default();
    let name = command_name(opcode).unwrap_or("unknown command");
    let complement = !opcode;
    let summary = if check != complement {
        format!(
            "{name} with a corrupted complement 0x{check:02X} (expected 0x{complement:02X}): the bootloader NACKs it"
        )
    } else if opcode == GET {
        "GET (00 FF): asks for the bootloader version and command list".to_string()
    } else {
        format!("{name} ({opcode:02X} {complement:02X})")
    };
    Description {
        summary,
        fields: vec![
            Field::new("opcode", format!("0x{opcode:02X} {name}"), span(at, 0, 1)),
            Field::new("complement", format!("0x{check:02X}"), span(at, 1, 1)),
        ],
    }
}

fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |x, &b| x ^ b)
}

/// The operand expected right after a command (or address) frame.
fn operand_frame(at: StreamOffset, window: &[u8], at_end: bool, operand: Operand) -> Decision {
    match operand {
        Operand::Address { command } => {
            let Some(&[a3, a2, a1, a0, check]) = window.get(..5) else {
                return if at_end {
                    Decision::Skip
                } else {
                    Decision::Need
                };
            };
            let address = u32::from_be_bytes([a3, a2, a1, a0]);
            let expected = a3 ^ a2 ^ a1 ^ a0;
            let name = command_name(command).unwrap_or("command");
            let fields = vec![
                Field::new(
                    "address",
                    format!("0x{address:08X} (MSB first)"),
                    span(at, 0, 4),
                ),
                Field::new(
                    "checksum",
                    format!("0x{check:02X} (XOR of the address bytes)"),
                    span(at, 4, 1),
                ),
            ];
            let (status, summary) = if check == expected {
                (FrameStatus::Ok, format!("{name} address 0x{address:08X}"))
            } else {
                (
                    FrameStatus::BadChecksum {
                        expected: u32::from(expected),
                        found: u32::from(check),
                    },
                    format!(
                        "{name} address 0x{address:08X} with a wrong XOR 0x{check:02X} (expected 0x{expected:02X})"
                    ),
                )
            };
            let next = match command {
                READ_MEMORY if status.is_ok() => Some(Operand::ReadCount),
                WRITE_MEMORY if status.is_ok() => Some(Operand::WriteData),
                _ => None,
            };
            Decision::Frame(frame(at, 5, "address", summary, status, fields), next)
        }
        Operand::ReadCount => {
            let Some(&[count, check]) = window.get(..2) else {
                return if at_end {
                    Decision::Skip
                } else {
                    Decision::Need
                };
            };
            let fields = vec![
                Field::new(
                    "N-1",
                    format!("{count} (read {} bytes)", usize::from(count) + 1),
                    span(at, 0, 1),
                ),
                Field::new("complement", format!("0x{check:02X}"), span(at, 1, 1)),
            ];
            let status = if check == !count {
                FrameStatus::Ok
            } else {
                FrameStatus::BadChecksum {
                    expected: u32::from(!count),
                    found: u32::from(check),
                }
            };
            Decision::Frame(
                frame(
                    at,
                    2,
                    "count",
                    format!("READ MEMORY count: {} bytes", usize::from(count) + 1),
                    status,
                    fields,
                ),
                None,
            )
        }
        Operand::WriteData => {
            let Some(&count) = window.first() else {
                return Decision::Skip;
            };
            let n = usize::from(count) + 1;
            let total = 1 + n + 1;
            let Some(block) = window.get(..total) else {
                return if at_end {
                    Decision::Skip
                } else {
                    Decision::Need
                };
            };
            let data = block.get(1..1 + n).unwrap_or_default();
            let found = block.get(1 + n).copied().unwrap_or_default();
            let expected = count ^ xor(data);
            let fields = vec![
                Field::new("N-1", format!("{count} ({n} bytes)"), span(at, 0, 1)),
                Field::new("data", hex::spaced_at_most(data, 32), span(at, 1, n)),
                Field::new(
                    "checksum",
                    format!("0x{found:02X} (XOR of N-1 and the data)"),
                    span(at, 1 + n, 1),
                ),
            ];
            let status = if found == expected {
                FrameStatus::Ok
            } else {
                FrameStatus::BadChecksum {
                    expected: u32::from(expected),
                    found: u32::from(found),
                }
            };
            Decision::Frame(
                frame(
                    at,
                    total,
                    "data",
                    format!("WRITE MEMORY data: {n} bytes"),
                    status,
                    fields,
                ),
                None,
            )
        }
        Operand::ErasePages => {
            let Some(&count) = window.first() else {
                return Decision::Skip;
            };
            if count == 0xFF {
                let Some(&check) = window.get(1) else {
                    return if at_end {
                        Decision::Skip
                    } else {
                        Decision::Need
                    };
                };
                if check != 0x00 {
                    return Decision::Skip;
                }
                let fields = vec![Field::new("global erase", "FF 00", span(at, 0, 2))];
                return Decision::Frame(
                    frame(
                        at,
                        2,
                        "erase",
                        "ERASE: global (mass) erase".to_string(),
                        FrameStatus::Ok,
                        fields,
                    ),
                    None,
                );
            }
            page_list(at, window, at_end, 1, usize::from(count) + 1, "ERASE")
        }
        Operand::ExtendedErasePages => {
            let Some(&[high, low]) = window.get(..2) else {
                return if at_end {
                    Decision::Skip
                } else {
                    Decision::Need
                };
            };
            if high == 0xFF && low == 0xFF {
                let Some(&check) = window.get(2) else {
                    return if at_end {
                        Decision::Skip
                    } else {
                        Decision::Need
                    };
                };
                if check != 0x00 {
                    return Decision::Skip;
                }
                let fields = vec![Field::new("mass erase", "FF FF 00", span(at, 0, 3))];
                return Decision::Frame(
                    frame(
                        at,
                        3,
                        "erase",
                        "EXTENDED ERASE: mass erase".to_string(),
                        FrameStatus::Ok,
                        fields,
                    ),
                    None,
                );
            }
            let count = (usize::from(high) << 8 | usize::from(low)) + 1;
            // Only lists that fit the window are framed (stm32flash sends at most 512 pages,
            // but such long lists are not needed to diagnose a handshake).
            page_list(at, window, at_end, 2, count, "EXTENDED ERASE")
        }
    }
}

/// `N-1` (1 or 2 bytes), `count` page numbers of `width` bytes, XOR of everything before.
fn page_list(
    at: StreamOffset,
    window: &[u8],
    at_end: bool,
    width: usize,
    count: usize,
    name: &str,
) -> Decision {
    let total = width + count * width + 1;
    if total > Stm32Parser::MAX_WINDOW {
        return Decision::Skip;
    }
    let Some(block) = window.get(..total) else {
        return if at_end {
            Decision::Skip
        } else {
            Decision::Need
        };
    };
    let body = block.get(..total - 1).unwrap_or_default();
    let found = block.get(total - 1).copied().unwrap_or_default();
    let expected = xor(body);
    let fields = vec![
        Field::new(
            "N-1",
            format!("{} ({count} pages)", count - 1),
            span(at, 0, width),
        ),
        Field::new(
            "pages",
            hex::spaced_at_most(body.get(width..).unwrap_or_default(), 32),
            span(at, width, count * width),
        ),
        Field::new(
            "checksum",
            format!("0x{found:02X} (XOR)"),
            span(at, total - 1, 1),
        ),
    ];
    let status = if found == expected {
        FrameStatus::Ok
    } else {
        FrameStatus::BadChecksum {
            expected: u32::from(expected),
            found: u32::from(found),
        }
    };
    Decision::Frame(
        frame(
            at,
            total,
            "erase",
            format!("{name}: {count} page(s)"),
            status,
            fields,
        ),
        None,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{field, h, run_whole};
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        run_whole(&mut Stm32BootFramer::new(), bytes)
    }

    fn kinds(frames: &[Frame]) -> Vec<(&'static str, std::ops::Range<u64>)> {
        frames.iter().map(|f| (f.kind, f.span.clone())).collect()
    }

    /// ST AN3155 command table: every opcode with its complement.
    #[test]
    fn command_table() {
        for (bytes, name) in [
            ("00 FF", "GET"),
            ("01 FE", "GET VERSION"),
            ("02 FD", "GET ID"),
            ("11 EE", "READ MEMORY"),
            ("21 DE", "GO"),
            ("31 CE", "WRITE MEMORY"),
            ("43 BC", "ERASE"),
            ("44 BB", "EXTENDED ERASE"),
            ("63 9C", "WRITE PROTECT"),
            ("73 8C", "WRITE UNPROTECT"),
            ("82 7D", "READOUT PROTECT"),
            ("92 6D", "READOUT UNPROTECT"),
        ] {
            let frames = run(&h(bytes));
            assert_eq!(frames.len(), 1, "{bytes}");
            assert_eq!(frames[0].kind, "command");
            assert_eq!(frames[0].status, FrameStatus::Ok);
            assert!(frames[0].fields()[0].value.ends_with(name), "{bytes}");
        }
    }

    #[test]
    fn sync_ack_nack() {
        assert_eq!(kinds(&run(&h("7F"))), vec![("sync", 0..1)]);
        assert_eq!(kinds(&run(&h("79"))), vec![("ack", 0..1)]);
        assert_eq!(kinds(&run(&h("1F"))), vec![("nack", 0..1)]);
    }

    /// ST AN3155 worked example: read 256 bytes at 0x08000000 (host stream).
    #[test]
    fn read_memory_sequence() {
        let frames = run(&h("7F 11 EE 08 00 00 00 08 FF 00"));
        assert_eq!(
            kinds(&frames),
            vec![
                ("sync", 0..1),
                ("command", 1..3),
                ("address", 3..8),
                ("count", 8..10)
            ]
        );
        assert!(frames.iter().all(|f| f.status.is_ok()));
        assert_eq!(frames[2].summary(), "READ MEMORY address 0x08000000");
        assert_eq!(frames[3].summary(), "READ MEMORY count: 256 bytes");
    }

    #[test]
    fn bad_complement_and_bad_address_xor() {
        let frames = run(&h("11 EF"));
        assert_eq!(
            frames[0].status,
            FrameStatus::BadChecksum {
                expected: 0xEE,
                found: 0xEF
            }
        );
        // 00 00 (a break) is not a GET with a bad complement.
        assert!(run(&h("00 00 00")).is_empty());
        let frames = run(&h("11 EE 08 00 00 00 09"));
        assert_eq!(
            frames[1].status,
            FrameStatus::BadChecksum {
                expected: 0x08,
                found: 0x09
            }
        );
    }

    #[test]
    fn write_and_erase_operands() {
        // WRITE 4 bytes at 0x20000000: N-1 = 3, XOR = 03 ^ 01 ^ 02 ^ 03 ^ 04 = 07.
        let frames = run(&h("31 CE 20 00 00 00 20 03 01 02 03 04 07"));
        assert_eq!(
            kinds(&frames),
            vec![("command", 0..2), ("address", 2..7), ("data", 7..13)]
        );
        assert!(frames.iter().all(|f| f.status.is_ok()), "{frames:#?}");
        let frames = run(&h("43 BC FF 00"));
        assert_eq!(frames[1].summary(), "ERASE: global (mass) erase");
        // Pages 0 and 1: N-1 = 1, XOR = 01 ^ 00 ^ 01 = 00.
        let frames = run(&h("43 BC 01 00 01 00"));
        assert_eq!(
            (frames[1].kind, &frames[1].status),
            ("erase", &FrameStatus::Ok)
        );
        let frames = run(&h("44 BB FF FF 00"));
        assert_eq!(frames[1].summary(), "EXTENDED ERASE: mass erase");
    }

    #[test]
    fn get_and_get_id_replies() {
        // 79, N=11, version 3.1, 11 commands, 79.
        let frames = run(&h("79 0B 31 00 01 02 11 21 31 43 63 73 82 92 79"));
        assert_eq!(kinds(&frames), vec![("get-reply", 0..15)]);
        assert_eq!(
            frames[0].summary(),
            "GET reply: bootloader 3.1, 11 commands"
        );
        let frames = run(&h("79 01 04 10 79"));
        assert_eq!(kinds(&frames), vec![("id", 0..5)]);
        // An ACK followed by something else stays an ACK.
        let frames = run(&h("79 0B 31 00 55"));
        assert_eq!(kinds(&frames)[0], ("ack", 0..1));
        let frames = run(&h("79 0B 31 01 00 02 11 21 31 43 63 73 82 92 79"));
        assert_eq!(
            kinds(&frames)[0],
            ("ack", 0..1),
            "GET, GET VERSION, GET ID first"
        );
    }

    /// AN3155 §3.1: a bootloader newer than our table lists a command we cannot name (here
    /// 0xA1, after the eleven of version 3.1): the reply is still a GET reply, the command
    /// shown as unknown.
    #[test]
    fn get_reply_with_an_unknown_command_keeps_it_visible() {
        let frames = run(&h("79 0C 31 00 01 02 11 21 31 44 63 73 82 92 A1 79"));
        assert_eq!(kinds(&frames), vec![("get-reply", 0..16)]);
        assert_eq!(
            frames[0].summary(),
            "GET reply: bootloader 3.1, 12 commands (1 unknown)"
        );
        assert!(
            field(&frames[0], "commands")
                .value
                .ends_with("READOUT UNPROTECT, unknown opcode 0xA1)"),
            "{frames:#?}"
        );
        // A bare unknown opcode with its complement is not a frame (see `command`).
        assert!(run(&h("A1 5E")).is_empty());
    }

    #[test]
    fn h_instead_of_ack_is_nothing() {
        // "Got byte 0x68 instead of ACK": 0x68 is no bootloader byte.
        assert!(run(b"hello").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        #[test]
        fn split_feeding_equals_whole(garbage in prop::collection::vec(prop::sample::select(vec![0x79u8, 0x11, 0xEE, 0x08, 0x00, 0xFF, 0x0B, 0x31, 0x01, 0x7F]), 0..200), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut bytes = garbage;
            bytes.extend(h("7F 11 EE 08 00 00 00 08 FF 00 79 0B 31 00 01 02 11 21 31 43 63 73 82 92 79"));
            let mut framer = Stm32BootFramer::new();
            let mut split = Vec::new();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut start = 0;
            for cut in cuts {
                framer.feed(start as u64, &bytes[start..cut], &mut split);
                start = cut;
            }
            framer.feed(start as u64, &bytes[start..], &mut split);
            framer.flush(&mut split);
            prop_assert_eq!(split, run(&bytes));
        }
    }

    proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn start_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(&[0x7F, 0x79, 0x1F, 0x00, 0xFF, 0x11, 0xEE, 0xEF, 0x44, 0xBB, 0xBF])) {
            crate::decode::stream::tests::assert_same_starts(&bytes, 1, start_hits, is_start);
        }
    }
}
