//! ESP8266/ESP32 ROM serial loader: SLIP framing (`C0 … C0`, `DB DC` → C0, `DB DD` → DB),
//! the command and response packet headers (direction, command, size, checksum/value), the
//! response status bytes, the SYNC payload, and the stub's `OHAI` greeting.
//!
//! Facts: Espressif, esptool documentation, "Serial Protocol"
//! <https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html>
//! (packet layout, command codes, status bytes, ROM error codes, data-command checksum), and
//! the opcodes the page does not list yet from esptool's `ESP_CMDS` table
//! <https://github.com/espressif/esptool/blob/master/esptool/loader.py> and the flasher stub
//! <https://github.com/espressif/esp-flasher-stub/blob/master/src/commands.h>.
//!
//! Every `C0` both ends the packet before it and may start the next one, so a `C0` inside
//! garbage never costs a real packet: bytes between two `C0`s that do not look like a loader
//! packet are dropped silently.
//!
//! Unknown is not absent: a packet with a direction byte, a full header and a size that
//! agrees with the packet is a loader packet whatever its opcode, and is shown as "unknown
//! opcode 0xNN" (a chip newer than our table, or a vendor stub). Only a known opcode lets a
//! packet that does not add up be reported as malformed; with an unknown one nothing but
//! the structure says "ESP", so such bytes stay unclaimed.

use super::frame::{Field, Frame, FrameStatus, Framer, Protocol, StreamOffset};
use crate::hex;

const END: u8 = 0xC0;
const ESCAPE: u8 = 0xDB;
const ESCAPED_END: u8 = 0xDC;
const ESCAPED_ESCAPE: u8 = 0xDD;
/// Request/response header: direction, command, size (LE16), checksum/value (LE32).
const HEADER: usize = 8;
/// Longest decoded packet kept: a 16 KiB data block (esptool's block size) with its 16-byte
/// data header, the packet header and slack. Longer packets are reported as malformed.
const MAX_PAYLOAD: usize = 0x4000 + 16 + HEADER + 64;
/// The SYNC command's data: 07 07 12 20 followed by 32 × 55.
const SYNC_PREFIX: [u8; 4] = [0x07, 0x07, 0x12, 0x20];
const SYNC_FILL: u8 = 0x55;
/// The stub loader's greeting.
const OHAI: &[u8] = b"OHAI";
/// Seed of the data-command checksum.
const CHECKSUM_SEED: u8 = 0xEF;
/// The data header of the `_DATA` commands: data length, sequence number, two zero words.
const DATA_HEADER: usize = 16;

/// Streaming ESP ROM-loader framer: kinds "command", "response", "ohai".
/// Holds at most one packet (≈16.5 KiB decoded) between calls.
pub struct EspSlipFramer {
    /// Inside a packet: offset of its opening C0.
    open_at: Option<StreamOffset>,
    /// Decoded bytes of the current packet.
    payload: Vec<u8>,
    /// Decoded indices whose byte arrived as a two-byte escape (maps decoded → stream).
    escaped: Vec<u32>,
    /// The previous byte was DB.
    escape_pending: bool,
    /// First bad escape in this packet: offset of the DB and the byte after it.
    bad_escape: Option<(StreamOffset, u8)>,
    /// The packet grew beyond MAX_PAYLOAD.
    overflow: bool,
    next_offset: Option<StreamOffset>,
}

impl EspSlipFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        EspSlipFramer {
            open_at: None,
            payload: Vec::new(),
            escaped: Vec::new(),
            escape_pending: false,
            bad_escape: None,
            overflow: false,
            next_offset: None,
        }
    }

    fn open(&mut self, at: StreamOffset) {
        self.open_at = Some(at);
        self.payload.clear();
        self.escaped.clear();
        self.escape_pending = false;
        self.bad_escape = None;
        self.overflow = false;
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_PAYLOAD.saturating_sub(self.payload.len());
        if bytes.len() > room {
            self.overflow = true;
        }
        self.payload
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
    }

    /// Close the open packet at the C0 at `end_at` (or, when `end_at` is `None`, because the
    /// stream ended).
    fn close(&mut self, end_at: Option<StreamOffset>, out: &mut Vec<Frame>) {
        let Some(open_at) = self.open_at else {
            return;
        };
        if self.payload.is_empty() && !self.escape_pending && self.bad_escape.is_none() {
            return;
        }
        let packet = Packet {
            open_at,
            end_at,
            payload: &self.payload,
            escaped: &self.escaped,
            bad_escape: self.bad_escape,
            overflow: self.overflow,
            stream_end: self.next_offset.unwrap_or(open_at + 1),
        };
        if let Some(frame) = packet.decode() {
            out.push(frame);
        }
    }
}

impl Default for EspSlipFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for EspSlipFramer {
    fn protocol(&self) -> Protocol {
        Protocol::EspSlip
    }

    fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>) {
        if bytes.is_empty() {
            return;
        }
        if self.next_offset.is_some_and(|next| next != offset) {
            self.flush(out);
        }
        let mut pos = 0usize;
        while pos < bytes.len() {
            let at = offset + pos as u64;
            let rest = bytes.get(pos..).unwrap_or_default();
            if self.open_at.is_none() {
                match memchr::memchr(END, rest) {
                    Some(i) => {
                        self.open(at + i as u64);
                        pos += i + 1;
                    }
                    None => pos = bytes.len(),
                }
                continue;
            }
            if self.escape_pending {
                self.escape_pending = false;
                let Some(&b) = rest.first() else { break };
                match b {
                    ESCAPED_END | ESCAPED_ESCAPE => {
                        let index = self.payload.len() as u32;
                        self.escaped.push(index);
                        self.push(&[if b == ESCAPED_END { END } else { ESCAPE }]);
                        pos += 1;
                    }
                    _ => {
                        if self.bad_escape.is_none() {
                            self.bad_escape = Some((at.saturating_sub(1), b));
                        }
                        // The byte after a bad escape is handled normally (a C0 still ends).
                    }
                }
                continue;
            }
            // Copy a run of ordinary bytes in one go.
            let run = memchr::memchr2(END, ESCAPE, rest).unwrap_or(rest.len());
            if run > 0 {
                self.push(rest.get(..run).unwrap_or_default());
                pos += run;
                continue;
            }
            match rest.first() {
                Some(&END) => {
                    // Self-clean: this C0 ends the packet and opens the next one.
                    self.close(Some(at), out);
                    self.open(at);
                }
                _ => self.escape_pending = true,
            }
            pos += 1;
        }
        self.next_offset = Some(offset + bytes.len() as u64);
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        self.close(None, out);
        self.open_at = None;
        self.payload.clear();
        self.escaped.clear();
        self.escape_pending = false;
        self.bad_escape = None;
        self.overflow = false;
    }

    fn reset(&mut self) {
        self.flush(&mut Vec::new());
        self.next_offset = None;
    }

    fn pending_from(&self) -> Option<StreamOffset> {
        // An open packet with bytes in it may still close into a frame; a bare C0 is only
        // the end of the last one.
        self.open_at
            .filter(|_| !self.payload.is_empty() || self.escape_pending)
    }
}

/// Every loader opcode with its name as esptool spells it (`ESP_CMDS` in esptool's
/// `esptool/loader.py`; the flasher stub's `src/commands.h` names 0xD6/0xD7
/// `SPI_NAND_READ_BBM`/`SPI_NAND_WRITE_BBM`). ROM and stub commands share one number space:
/// 0x02–0x14 ROM loader (0x0E ROM only, 0x14 ESP32-S2 and later), 0x19–0x1E Secure Download
/// Controller, 0xD0–0xD4 stub, 0xD5–0xDE the stub's SPI NAND plugin.
const OPCODES: [(u8, &str); 39] = [
    (0x02, "FLASH_BEGIN"),
    (0x03, "FLASH_DATA"),
    (0x04, "FLASH_END"),
    (0x05, "MEM_BEGIN"),
    (0x06, "MEM_END"),
    (0x07, "MEM_DATA"),
    (0x08, "SYNC"),
    (0x09, "WRITE_REG"),
    (0x0A, "READ_REG"),
    (0x0B, "SPI_SET_PARAMS"),
    (0x0D, "SPI_ATTACH"),
    (0x0E, "READ_FLASH_SLOW"),
    (0x0F, "CHANGE_BAUDRATE"),
    (0x10, "FLASH_DEFL_BEGIN"),
    (0x11, "FLASH_DEFL_DATA"),
    (0x12, "FLASH_DEFL_END"),
    (0x13, "SPI_FLASH_MD5"),
    (0x14, "GET_SECURITY_INFO"),
    (0x19, "SDC_VERIF_BEGIN"),
    (0x1A, "SDC_VERIF_DATA"),
    (0x1B, "SDC_VERIF_END"),
    (0x1C, "SDC_GEN_BEGIN"),
    (0x1D, "SDC_GEN_DATA"),
    (0x1E, "SDC_GEN_END"),
    (0xD0, "ERASE_FLASH"),
    (0xD1, "ERASE_REGION"),
    (0xD2, "READ_FLASH"),
    (0xD3, "RUN_USER_CODE"),
    (0xD4, "FLASH_ENCRYPT_DATA"),
    (0xD5, "SPI_NAND_ATTACH"),
    (0xD6, "SPI_NAND_READ_SPARE"),
    (0xD7, "SPI_NAND_WRITE_SPARE"),
    (0xD8, "SPI_NAND_READ_FLASH"),
    (0xD9, "SPI_NAND_WRITE_FLASH_BEGIN"),
    (0xDA, "SPI_NAND_WRITE_FLASH_DATA"),
    (0xDB, "SPI_NAND_ERASE_FLASH"),
    (0xDC, "SPI_NAND_ERASE_REGION"),
    (0xDD, "SPI_NAND_READ_PAGE_DEBUG"),
    (0xDE, "SPI_NAND_WRITE_FLASH_END"),
];

/// Name of a loader command, `None` for an opcode in no table.
fn command_name(command: u8) -> Option<&'static str> {
    OPCODES
        .iter()
        .find(|&&(code, _)| code == command)
        .map(|&(_, name)| name)
}

/// Where a command's checksum field covers its data: how many header bytes precede the
/// checksummed block in the data field.
/// - MEM_DATA, FLASH_DATA, FLASH_DEFL_DATA: the 16-byte data header (serial-protocol page,
///   "Checksum"); FLASH_ENCRYPT_DATA and SPI_NAND_WRITE_FLASH_DATA use the same layout
///   (esptool `flash_block`/`write_flash_nand_block`, the stub's data handler);
/// - SDC_VERIF_DATA, SDC_GEN_DATA: a 4-byte length word (esptool `sdc_verify_data`,
///   `sdc_gen_data`);
/// - an unknown opcode whose data opens with the 16-byte data header every `_DATA` command
///   shares (its length word equal to the bytes after it, then a sequence number and two
///   zero words): the layout itself says a checksummed block follows;
/// - anything else: the field is unused.
fn checksummed_from(command: u8, data: &[u8]) -> Option<usize> {
    match command {
        0x03 | 0x07 | 0x11 | 0xD4 | 0xDA => Some(DATA_HEADER),
        0x1A | 0x1D => Some(4),
        _ if command_name(command).is_none() => {
            let (Some(&[l0, l1, l2, l3]), Some(zeros)) = (data.get(..4), data.get(8..16)) else {
                return None;
            };
            let announced = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
            (announced == data.len().saturating_sub(DATA_HEADER) && zeros.iter().all(|&b| b == 0))
                .then_some(DATA_HEADER)
        }
        _ => None,
    }
}

/// ROM loader error codes (esptool serial-protocol.rst, "ROM Loader Errors").
fn rom_error(code: u8) -> &'static str {
    match code {
        0x05 => "received message is invalid (parameters or length field)",
        0x06 => "failed to act on received message",
        0x07 => "invalid CRC in message",
        0x08 => "flash write error",
        0x09 => "flash read error",
        0x0A => "flash read length error",
        0x0B => "deflate error",
        0xC0..=0xCF => "stub loader error",
        0xFF => "unimplemented command (stub loader)",
        _ => "error code not in our table",
    }
}

/// A closed SLIP packet and where its bytes lie in the stream.
struct Packet<'a> {
    open_at: StreamOffset,
    /// Offset of the closing C0; `None` when the stream ended first.
    end_at: Option<StreamOffset>,
    payload: &'a [u8],
    escaped: &'a [u32],
    bad_escape: Option<(StreamOffset, u8)>,
    overflow: bool,
    /// Offset just past the last byte seen (for packets cut off by the end of the stream).
    stream_end: StreamOffset,
}

impl Packet<'_> {
    /// Stream offset where decoded byte `index` starts.
    fn offset_of(&self, index: usize) -> StreamOffset {
        let escapes_before = self.escaped.partition_point(|&e| (e as usize) < index);
        self.open_at + 1 + (index + escapes_before) as u64
    }

    /// Stream span of decoded bytes `start..end`.
    fn span_of(&self, start: usize, end: usize) -> std::ops::Range<StreamOffset> {
        let from = self.offset_of(start);
        let to = if end >= self.payload.len() {
            self.end_at.unwrap_or(self.stream_end).max(from)
        } else {
            self.offset_of(end)
        };
        from..to
    }

    fn decode(&self) -> Option<Frame> {
        let frame_end = match self.end_at {
            Some(end) => end + 1,
            None => self.stream_end,
        };
        let frame_span = self.open_at..frame_end.max(self.open_at + 1);
        if self.payload == OHAI && self.bad_escape.is_none() {
            let status = if self.end_at.is_some() {
                FrameStatus::Ok
            } else {
                FrameStatus::Truncated
            };
            return Some(Frame::new(
                Protocol::EspSlip,
                frame_span,
                "ohai",
                status,
                "OHAI: esptool's stub loader is running".to_string(),
                vec![Field::new("greeting", "OHAI", self.span_of(0, OHAI.len()))],
            ));
        }
        let (&direction, &command) = (self.payload.first()?, self.payload.get(1)?);
        let kind = match direction {
            0x00 => "command",
            0x01 => "response",
            _ => return None,
        };
        let known = command_name(command);
        if known.is_none() && !self.well_formed() {
            return None;
        }
        let (name, command_text) = match known {
            Some(name) => (name.to_string(), format!("0x{command:02X} {name}")),
            None => (
                format!("unknown opcode 0x{command:02X}"),
                format!("0x{command:02X} unknown opcode (in no table of esptool's)"),
            ),
        };
        let mut fields = vec![
            Field::new(
                "start",
                "0xC0 SLIP frame start",
                self.open_at..self.open_at + 1,
            ),
            Field::new(
                "direction",
                if kind == "command" {
                    "0x00 request"
                } else {
                    "0x01 response"
                },
                self.span_of(0, 1),
            ),
            Field::new("command", command_text, self.span_of(1, 2)),
        ];
        let mut summary = format!(
            "{} {name}",
            match (kind, known) {
                ("command", Some(_)) => "command",
                ("command", None) => "command with",
                _ => "response to",
            }
        );
        let mut problems: Vec<String> = Vec::new();
        let mut bad_checksum = None;

        let Some(&[s0, s1, v0, v1, v2, v3]) = self.payload.get(2..HEADER) else {
            problems.push(format!(
                "packet is {} bytes, shorter than the 8-byte header",
                self.payload.len()
            ));
            return Some(self.finish(frame_span, kind, summary, fields, problems, None));
        };
        let size = usize::from(u16::from_le_bytes([s0, s1]));
        let value = u32::from_le_bytes([v0, v1, v2, v3]);
        let data = self.payload.get(HEADER..).unwrap_or_default();
        fields.push(Field::new(
            "size",
            format!("{size} data bytes"),
            self.span_of(2, 4),
        ));
        // A packet cut off by the end of the stream cannot be judged by its size or content.
        let complete = self.end_at.is_some();
        if complete && size != data.len() && !self.overflow {
            problems.push(format!(
                "size field says {size} data bytes, the packet carries {}",
                data.len()
            ));
        }
        if kind == "command" {
            let mut checksum_text = format!("0x{value:08X}");
            if let Some(from) = checksummed_from(command, data) {
                // Data commands: XOR of the data after the block header, seeded 0xEF.
                if let Some(block) = data.get(from..).filter(|_| complete) {
                    let expected = block.iter().fold(CHECKSUM_SEED, |x, &b| x ^ b);
                    if value == u32::from(expected) {
                        checksum_text.push_str(" (matches the data)");
                    } else {
                        checksum_text.push_str(&format!(" (the data gives 0x{expected:02X})"));
                        bad_checksum = Some((u32::from(expected), value));
                    }
                }
            } else if known.is_some() {
                checksum_text.push_str(" (unused for this command)");
            } else {
                checksum_text.push_str(" (not checked: unknown opcode, no data block)");
            }
            fields.push(Field::new("checksum", checksum_text, self.span_of(4, 8)));
            if !data.is_empty() {
                let mut children = Vec::new();
                if command == 0x08 {
                    let expected_sync = data.len() == 36
                        && data.get(..4) == Some(&SYNC_PREFIX[..])
                        && data
                            .get(4..)
                            .is_some_and(|fill| fill.iter().all(|&b| b == SYNC_FILL));
                    if expected_sync {
                        summary.push_str(" (07 07 12 20 + 32 × 55)");
                        children.push(Field::new(
                            "pattern",
                            "07 07 12 20 + 32 × 55: the ROM detects the baud rate from it",
                            self.span_of(HEADER, HEADER + 36),
                        ));
                    } else if complete {
                        problems
                            .push("SYNC data is not 07 07 12 20 followed by 32 × 55".to_string());
                    }
                }
                if command == 0x0A
                    && let Some(&[a0, a1, a2, a3]) = data.get(..4)
                {
                    let address = u32::from_le_bytes([a0, a1, a2, a3]);
                    summary.push_str(&format!(" 0x{address:08X}"));
                    children.push(Field::new(
                        "address",
                        format!("0x{address:08X}"),
                        self.span_of(HEADER, HEADER + 4),
                    ));
                }
                fields.push(
                    Field::new(
                        "data",
                        hex::spaced_at_most(data, 48),
                        self.span_of(HEADER, self.payload.len()),
                    )
                    .with_children(children),
                );
            }
        } else {
            let mut value_text = format!("0x{value:08X}");
            if command == 0x0A {
                value_text.push_str(" (register value)");
                summary.push_str(&format!(" = 0x{value:08X}"));
            }
            fields.push(Field::new("value", value_text, self.span_of(4, 8)));
            if !data.is_empty() {
                fields.push(Field::new(
                    "data",
                    hex::spaced_at_most(data, 48),
                    self.span_of(HEADER, self.payload.len()),
                ));
            }
            if let Some((status_text, failed)) = self.status(data) {
                summary.push_str(&format!(": {status_text}"));
                let status_start =
                    self.payload
                        .len()
                        .saturating_sub(if data.len() == 2 { 2 } else { 4 });
                fields.push(Field::new(
                    "status",
                    status_text,
                    self.span_of(status_start, self.payload.len()),
                ));
                if failed {
                    summary.push_str(" (the command failed)");
                }
            }
        }
        Some(self.finish(frame_span, kind, summary, fields, problems, bad_checksum))
    }

    /// Closed by a C0, no bad escape, within the length limit, a whole header and a size
    /// field equal to the data the packet carries: the structure alone says "loader packet".
    fn well_formed(&self) -> bool {
        let size = match self.payload.get(2..4) {
            Some(&[s0, s1]) => usize::from(u16::from_le_bytes([s0, s1])),
            _ => return false,
        };
        self.end_at.is_some()
            && self.bad_escape.is_none()
            && !self.overflow
            && self.payload.len() >= HEADER
            && self.payload.len() - HEADER == size
    }

    /// Status bytes at the end of a response: 2 from the stub (and ESP8266 ROM), 4 from an
    /// ESP32-class ROM (the last two reserved). Which one it is can only be guessed from the
    /// size, so a guess is phrased as likely.
    fn status(&self, data: &[u8]) -> Option<(String, bool)> {
        let (status, error, certain) = match data.len() {
            0 | 1 => return None,
            2 => (data.first()?, data.get(1)?, true),
            4 => (data.first()?, data.get(1)?, true),
            n => {
                let rom_tail = data.get(n.saturating_sub(4)..).filter(|_| n >= 4);
                let stub_tail = data.get(n.saturating_sub(2)..)?;
                match rom_tail {
                    Some(tail)
                        if tail.get(2..) == Some(&[0, 0][..])
                            && tail.first().is_some_and(|&s| s <= 1) =>
                    {
                        (tail.first()?, tail.get(1)?, false)
                    }
                    _ => (stub_tail.first()?, stub_tail.get(1)?, false),
                }
            }
        };
        let likely = if certain { "" } else { "likely " };
        Some(match status {
            0 => (format!("{likely}success"), false),
            1 => (
                format!("{likely}failure, error 0x{error:02X} {}", rom_error(*error)),
                true,
            ),
            other => (format!("{likely}status byte 0x{other:02X}"), false),
        })
    }

    fn finish(
        &self,
        frame_span: std::ops::Range<StreamOffset>,
        kind: &'static str,
        mut summary: String,
        mut fields: Vec<Field>,
        mut problems: Vec<String>,
        bad_checksum: Option<(u32, u32)>,
    ) -> Frame {
        if let Some((at, byte)) = self.bad_escape {
            problems.insert(
                0,
                format!(
                    "bad SLIP escape DB {byte:02X} at offset {at} (only DB DC and DB DD are valid)"
                ),
            );
        }
        if self.overflow {
            problems.push(format!("packet longer than {MAX_PAYLOAD} bytes"));
        }
        if let Some(end) = self.end_at {
            fields.push(Field::new("end", "0xC0 SLIP frame end", end..end + 1));
        }
        let status = if !problems.is_empty() {
            FrameStatus::Malformed(problems.join("; "))
        } else if self.end_at.is_none() {
            FrameStatus::Truncated
        } else if let Some((expected, found)) = bad_checksum {
            FrameStatus::BadChecksum { expected, found }
        } else {
            FrameStatus::Ok
        };
        match &status {
            FrameStatus::Ok => {}
            FrameStatus::BadChecksum { expected, found } => {
                summary.push_str(&format!(
                    " — bad data checksum 0x{found:02X}, expected 0x{expected:02X}"
                ));
            }
            FrameStatus::Truncated => summary.push_str(" — truncated"),
            FrameStatus::Malformed(why) => {
                summary.push_str(" — ");
                summary.push_str(why);
            }
        }
        Frame::new(Protocol::EspSlip, frame_span, kind, status, summary, fields)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{field, h, run_whole};
    use proptest::prelude::*;

    fn run(bytes: &[u8]) -> Vec<Frame> {
        run_whole(&mut EspSlipFramer::new(), bytes)
    }

    /// Espressif's esptool serial-protocol docs: the 46-byte SYNC command on the wire.
    fn sync_command() -> Vec<u8> {
        let mut bytes = h("C0 00 08 24 00 00 00 00 00 07 07 12 20");
        bytes.extend([0x55; 32]);
        bytes.push(0xC0);
        bytes
    }

    #[test]
    fn sync_command_and_reply() {
        let bytes = sync_command();
        assert_eq!(bytes.len(), 46);
        let frames = run(&bytes);
        assert_eq!(frames.len(), 1, "{frames:#?}");
        assert_eq!(frames[0].kind, "command");
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert_eq!(frames[0].summary(), "command SYNC (07 07 12 20 + 32 × 55)");
        assert_eq!(frames[0].span, 0..46);

        let reply = h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0");
        let frames = run(&reply);
        assert_eq!(frames[0].kind, "response");
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert_eq!(frames[0].summary(), "response to SYNC: success");
        let value = frames[0]
            .fields()
            .iter()
            .find(|f| f.name == "value")
            .unwrap();
        assert_eq!(value.value, "0x20120707");
        assert_eq!(value.span, 5..9);
    }

    #[test]
    fn ohai_and_back_to_back_packets() {
        let mut bytes = h("C0 4F 48 41 49 C0");
        bytes.extend(h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0"));
        // Packets sharing one C0 as separator.
        bytes.extend(h("01 08 04 00 07 07 12 20 00 00 00 00 C0"));
        let frames = run(&bytes);
        let kinds: Vec<_> = frames.iter().map(|f| (f.kind, f.span.clone())).collect();
        assert_eq!(
            kinds,
            vec![("ohai", 0..6), ("response", 6..20), ("response", 19..33)]
        );
    }

    #[test]
    fn escapes_decode_and_map_offsets() {
        // READ_REG response whose value bytes contain C0 and DB (escaped).
        let bytes = h("C0 01 0A 02 00 DB DC DB DD 00 00 00 00 C0");
        let frames = run(&bytes);
        assert_eq!(frames[0].status, FrameStatus::Ok, "{frames:#?}");
        assert_eq!(
            frames[0].summary(),
            "response to READ_REG = 0x0000DBC0: success"
        );
        let value = frames[0]
            .fields()
            .iter()
            .find(|f| f.name == "value")
            .unwrap();
        assert_eq!(value.span, 5..11);
        let status = frames[0]
            .fields()
            .iter()
            .find(|f| f.name == "status")
            .unwrap();
        assert_eq!(status.span, 11..13);
    }

    #[test]
    fn bad_escape_is_malformed() {
        let frames = run(&h("C0 01 08 04 00 DB 01 07 12 20 00 00 00 00 C0"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("bad SLIP escape DB 01"))
        );
    }

    #[test]
    fn size_mismatch_truncation_and_failure_status() {
        let frames = run(&h("C0 01 08 05 00 07 07 12 20 00 00 00 00 C0"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("size field says 5"))
        );
        let frames = run(&h("C0 00 08 24 00 00 00 00 00 07 07"));
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        assert_eq!(frames[0].span, 0..11);
        let frames = run(&h("C0 01 02 04 00 00 00 00 00 01 05 00 00 C0"));
        assert!(
            frames[0]
                .summary()
                .contains("failure, error 0x05 received message is invalid")
        );
    }

    #[test]
    fn data_command_checksum() {
        // FLASH_DATA with 4 data bytes 01 02 03 04: checksum = EF^01^02^03^04 = EB.
        let mut payload = h("00 03 14 00 EB 00 00 00");
        payload.extend(h(
            "04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 02 03 04",
        ));
        let mut bytes = vec![0xC0];
        bytes.extend(&payload);
        bytes.push(0xC0);
        assert_eq!(run(&bytes)[0].status, FrameStatus::Ok);
        bytes[5] = 0xEC;
        assert_eq!(
            run(&bytes)[0].status,
            FrameStatus::BadChecksum {
                expected: 0xEB,
                found: 0xEC
            }
        );
    }

    #[test]
    fn text_and_stray_c0_do_not_hide_packets() {
        // The ESP's boot log ("invalid header") with a stray C0, then a real reply.
        let mut bytes = b"invalid header: 0xffffffff\r\n\xC0junk".to_vec();
        bytes.extend(h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0"));
        let frames = run(&bytes);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].span.start, 33);
    }

    /// SLIP-encode one packet: C0, the payload with C0/DB escaped, C0.
    fn slip(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![END];
        for &b in payload {
            match b {
                END => bytes.extend([ESCAPE, ESCAPED_END]),
                ESCAPE => bytes.extend([ESCAPE, ESCAPED_ESCAPE]),
                _ => bytes.push(b),
            }
        }
        bytes.push(END);
        bytes
    }

    /// A loader packet: direction, opcode, size, checksum/value, data.
    fn packet(direction: u8, opcode: u8, value: u32, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![direction, opcode];
        payload.extend((data.len() as u16).to_le_bytes());
        payload.extend(value.to_le_bytes());
        payload.extend(data);
        slip(&payload)
    }

    /// Every opcode with its name, copied from the public sources rather than from the
    /// decoder's table:
    /// - esptool docs, "Serial Protocol", tables "Supported by Stub Loader and ROM Loader"
    ///   and "Supported by Stub Loader Only":
    ///   https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html
    /// - the rest (READ_FLASH_SLOW, the SDC family, FLASH_ENCRYPT_DATA, the SPI NAND family):
    ///   `ESP_CMDS` in https://github.com/espressif/esptool/blob/master/esptool/loader.py,
    ///   the same numbers as https://github.com/espressif/esp-flasher-stub/blob/master/src/commands.h
    const PUBLISHED_OPCODES: &[(u8, &str)] = &[
        // Serial Protocol page.
        (0x02, "FLASH_BEGIN"),
        (0x03, "FLASH_DATA"),
        (0x04, "FLASH_END"),
        (0x05, "MEM_BEGIN"),
        (0x06, "MEM_END"),
        (0x07, "MEM_DATA"),
        (0x08, "SYNC"),
        (0x09, "WRITE_REG"),
        (0x0a, "READ_REG"),
        (0x0b, "SPI_SET_PARAMS"),
        (0x0d, "SPI_ATTACH"),
        (0x0f, "CHANGE_BAUDRATE"),
        (0x10, "FLASH_DEFL_BEGIN"),
        (0x11, "FLASH_DEFL_DATA"),
        (0x12, "FLASH_DEFL_END"),
        (0x13, "SPI_FLASH_MD5"),
        (0x14, "GET_SECURITY_INFO"),
        (0xd0, "ERASE_FLASH"),
        (0xd1, "ERASE_REGION"),
        (0xd2, "READ_FLASH"),
        (0xd3, "RUN_USER_CODE"),
        // esptool loader.py ESP_CMDS.
        (0x0E, "READ_FLASH_SLOW"),
        (0x19, "SDC_VERIF_BEGIN"),
        (0x1A, "SDC_VERIF_DATA"),
        (0x1B, "SDC_VERIF_END"),
        (0x1C, "SDC_GEN_BEGIN"),
        (0x1D, "SDC_GEN_DATA"),
        (0x1E, "SDC_GEN_END"),
        (0xD4, "FLASH_ENCRYPT_DATA"),
        (0xD5, "SPI_NAND_ATTACH"),
        (0xD6, "SPI_NAND_READ_SPARE"),
        (0xD7, "SPI_NAND_WRITE_SPARE"),
        (0xD8, "SPI_NAND_READ_FLASH"),
        (0xD9, "SPI_NAND_WRITE_FLASH_BEGIN"),
        (0xDA, "SPI_NAND_WRITE_FLASH_DATA"),
        (0xDB, "SPI_NAND_ERASE_FLASH"),
        (0xDC, "SPI_NAND_ERASE_REGION"),
        (0xDD, "SPI_NAND_READ_PAGE_DEBUG"),
        (0xDE, "SPI_NAND_WRITE_FLASH_END"),
    ];

    #[test]
    fn every_published_opcode_is_named_in_command_and_response() {
        assert_eq!(PUBLISHED_OPCODES.len(), OPCODES.len());
        for &(opcode, name) in PUBLISHED_OPCODES {
            let frames = run(&packet(0x00, opcode, 0, &[]));
            assert_eq!(frames.len(), 1, "0x{opcode:02X}: {frames:#?}");
            assert_eq!(frames[0].kind, "command");
            assert_eq!(frames[0].status, FrameStatus::Ok, "0x{opcode:02X}");
            assert_eq!(frames[0].summary(), format!("command {name}"));
            assert_eq!(
                field(&frames[0], "command").value,
                format!("0x{opcode:02X} {name}")
            );
            let frames = run(&packet(0x01, opcode, 0, &[0, 0]));
            let value = if opcode == 0x0A { " = 0x00000000" } else { "" };
            assert_eq!(
                frames[0].summary(),
                format!("response to {name}{value}: success")
            );
        }
    }

    #[test]
    fn get_security_info_is_a_frame() {
        // What esptool sends during chip detection (serial-protocol page: 0x14
        // GET_SECURITY_INFO, no input data).
        let frames = run(&h("C0 00 14 00 00 00 00 00 00 C0"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert_eq!(frames[0].summary(), "command GET_SECURITY_INFO");
        assert_eq!(frames[0].span, 0..10);
    }

    #[test]
    fn unknown_opcode_is_shown_not_dropped() {
        let frames = run(&h("C0 00 42 04 00 00 00 00 00 01 02 03 04 C0"));
        assert_eq!(frames.len(), 1, "{frames:#?}");
        assert_eq!(frames[0].kind, "command");
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert_eq!(frames[0].summary(), "command with unknown opcode 0x42");
        assert!(
            field(&frames[0], "command")
                .value
                .starts_with("0x42 unknown opcode")
        );
        let frames = run(&h("C0 01 42 02 00 00 00 00 00 01 05 C0"));
        assert_eq!(
            frames[0].summary(),
            "response to unknown opcode 0x42: failure, error 0x05 received message is invalid (parameters or length field) (the command failed)"
        );
        // Nothing but the structure says "ESP": a size that does not agree, a bad escape or
        // a cut-off packet with an unknown opcode is not claimed.
        for bytes in [
            "C0 00 42 05 00 00 00 00 00 01 02 03 04 C0",
            "C0 00 42 00 00 00 00 C0",
            "C0 00 42 01 00 00 00 00 00 DB 01 C0",
            "C0 00 42 04 00 00 00 00 00 01 02",
        ] {
            assert!(run(&h(bytes)).is_empty(), "{bytes}");
        }
        // A known opcode that does not add up is still reported, as malformed.
        let frames = run(&h("C0 00 14 01 00 00 00 00 00 C0"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("size field says 1"))
        );
    }

    /// The `_DATA` block: length, sequence number, two zero words, then the data.
    fn data_block(data: &[u8]) -> Vec<u8> {
        let mut block = (data.len() as u32).to_le_bytes().to_vec();
        block.extend([0; 12]);
        block.extend(data);
        block
    }

    #[test]
    fn data_checksums_of_the_newer_data_commands_and_of_unknown_data_blocks() {
        // EF ^ 01 ^ 02 ^ 03 ^ 04 = EB (serial-protocol page, "Checksum").
        let data = [1, 2, 3, 4];
        let with_len = |d: &[u8]| {
            let mut v = (d.len() as u32).to_le_bytes().to_vec();
            v.extend(d);
            v
        };
        for (opcode, body) in [
            (0xD4, data_block(&data)),
            (0xDA, data_block(&data)),
            (0x42, data_block(&data)),
            (0x1A, with_len(&data)),
            (0x1D, with_len(&data)),
        ] {
            assert_eq!(
                run(&packet(0, opcode, 0xEB, &body))[0].status,
                FrameStatus::Ok,
                "0x{opcode:02X}"
            );
            let frames = run(&packet(0, opcode, 0xEC, &body));
            assert_eq!(
                frames[0].status,
                FrameStatus::BadChecksum {
                    expected: 0xEB,
                    found: 0xEC
                },
                "0x{opcode:02X}"
            );
        }
        // An unknown opcode without the data-block layout: the field is shown, not judged.
        let frames = run(&packet(0, 0x42, 0xEC, &data));
        assert_eq!(frames[0].status, FrameStatus::Ok);
        assert!(field(&frames[0], "checksum").value.contains("not checked"));
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(prop::sample::select(vec![0xC0u8, 0xDB, 0xDC, 0xDD, 0x00, 0x01, 0x08, 0x04, 0x0A, 0x55, 0x42, 0x14, 0x10]), 0..400)) {
            for frame in run(&bytes) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
                for field in frame.fields() {
                    prop_assert!(field.span.start >= frame.span.start && field.span.end <= frame.span.end);
                }
            }
        }

        #[test]
        fn split_feeding_equals_whole(garbage in prop::collection::vec(prop::sample::select(vec![0xC0u8, 0xDB, 0xDC, 0x00, 0x01, 0x08, 0x04]), 0..120), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut bytes = garbage;
            bytes.extend(sync_command());
            bytes.extend(h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0"));
            bytes.extend(packet(0, 0x42, 0xEB, &data_block(&[1, 2, 3, 4])));
            bytes.extend(h("C0 01 42 02 00 00 00 00 00 00 00 C0"));
            let mut framer = EspSlipFramer::new();
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
}
