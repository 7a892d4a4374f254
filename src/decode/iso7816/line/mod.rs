//! ISO/IEC 7816-3 traffic on a card's I/O line as one UART reads it (Phoenix/Smartmouse
//! readers, SIM sniffers): ATR (direct, inverse, or inverse read as direct), PPS, the T=0
//! procedure-byte state machine and T=1 blocks, with resync after confusion.
//!
//! One wire carries both directions interleaved, so the framer follows the protocol to know
//! who speaks: after a T=0 header (reader) come procedure bytes (card): 60 NULL, INS (ACK: all
//! remaining data), INS xor FF (one data byte), or SW1 (6X except 60, 9X) then SW2. A 68 in the
//! SW1 slot is therefore SW1 of a 68XX status word (ISO/IEC 7816-3/-4, T=0 facts).
//!
//! Resync: when the bytes stop making sense the framer "hunts" for a start: an ATR (TS 3B, 3F
//! or 03), or, with no ATR seen, a complete T=0 exchange (header, ACK, data, valid SW1, SW2),
//! or under T=1 a block whose LRC checks. A line often carries something else for a long time
//! (boot logs, other protocols, noise at a wrong baud rate) where such starts turn up by chance
//! all the time, so one is taken only on enough evidence in the bytes after it (`UNIT_BITS`,
//! `WEAK_ATR_BITS`), unless it is an ATR whose TCK checks or that follows silence. Hunting
//! works on whole chunks: a filter testing 8 positions at a time skips what cannot start
//! anything, the rest is judged once. It only accepts what the normal state machine then
//! accepts too, and every pass either emits a frame or drops a byte, so it cannot loop.
//! Pending input is bounded by [`MAX_PENDING`].

mod hunt;
mod prefilter;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::ops::Range;

use crate::decode::frame::{Field, Frame, FrameStatus, Framer, Protocol, StreamOffset};
use crate::decode::iso7816::atr::T1Edc;
use crate::decode::iso7816::cla::{Cla, ClassKind};
use crate::decode::iso7816::ins::DataDirection;
use crate::decode::iso7816::sw::StatusWord;
use crate::decode::iso7816::{apdu, atr, cla, from_inverse_convention, ins, sw};
use crate::hex;

use hunt::{is_ts, truncated_atr_frame};

/// Most raw bytes held at once, and how far hunting reads past the start of a candidate: a
/// T=0 exchange (5 + 1 + 256 + 2) or a T=1 block (3 + 254 + 2) and the start of the next.
pub const MAX_PENDING: usize = 300;

/// Most data bytes shown in a field value.
const SHOWN_DATA_BYTES: usize = 64;

/// The transmission protocol the line runs, once an ATR or PPS has said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineProtocol {
    T0,
    T1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for something recognisable (start, or after confusion).
    Hunting,
    /// Between units: the next byte starts a PPS, a T=0 header or a T=1 block.
    Start,
    Pps,
    T0Header,
    /// Header sent; waiting for a procedure byte. `remaining` = data bytes still expected.
    T0Procedure {
        remaining: usize,
    },
    /// Collecting `left` data bytes after an ACK; then `after` remain.
    T0Data {
        left: usize,
        after: usize,
    },
    T0Sw2,
    T1Block,
}

/// The last T=0 command header (logical bytes) and where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct T0Header {
    bytes: [u8; 5],
    at: StreamOffset,
}

impl T0Header {
    fn cla(&self) -> u8 {
        let [cla, ..] = self.bytes;
        cla
    }
    fn ins(&self) -> u8 {
        let [_, ins, ..] = self.bytes;
        ins
    }
    fn p3(&self) -> u8 {
        let [.., p3] = self.bytes;
        p3
    }
    fn name(&self) -> String {
        ins::name(self.ins())
            .map(str::to_string)
            .unwrap_or_else(|| format!("INS {:02X}", self.ins()))
    }
}

/// Streaming framer for a raw ISO 7816-3 I/O line (`Protocol::Iso7816Line`). Frame kinds:
/// "atr", "pps", "header", "procedure", "data", "sw", "i-block", "r-block", "s-block".
#[derive(Debug, Clone)]
pub struct LineFramer {
    state: State,
    /// Raw bytes of the unit being collected; `pending_start` is the offset of the first.
    pending: Vec<u8>,
    pending_start: StreamOffset,
    /// Bytes to process again (after a state change) before new input, with their offsets.
    replay: VecDeque<(StreamOffset, u8)>,
    next_offset: Option<StreamOffset>,
    /// True after an ATR read as 03: every byte is decoded from the inverse convention.
    inverted: bool,
    protocol: Option<LineProtocol>,
    edc: T1Edc,
    header: Option<T0Header>,
    /// Logical bytes and length of a PPS request waiting for the card's answer.
    pps_request: Option<([u8; 6], usize)>,
    /// T=1: true when the next I-block is the reader's (turns change after a block with M=0).
    t1_reader_turn: bool,
    /// Set by `flush`: no more input is coming, so hunting stops waiting for candidates to
    /// complete and settles what it holds.
    draining: bool,
    /// Hunting: the front candidate cannot be judged before `pending` holds this many bytes.
    hunt_need: usize,
    /// True from `new`, `reset` or `flush` until the next byte arrives: that byte follows
    /// silence, where a card's ATR starts.
    after_silence: bool,
    /// Offset of the first byte after silence: an ATR starting there is taken at once.
    fresh_at: Option<StreamOffset>,
    /// Scratch for hunting across a chunk boundary: the pending window, then new input.
    joined: Vec<u8>,
}

impl Default for LineFramer {
    fn default() -> Self {
        LineFramer::new()
    }
}

impl LineFramer {
    pub fn new() -> LineFramer {
        LineFramer {
            state: State::Hunting,
            pending: Vec::with_capacity(64),
            pending_start: 0,
            replay: VecDeque::new(),
            next_offset: None,
            inverted: false,
            protocol: None,
            edc: T1Edc::Lrc,
            header: None,
            pps_request: None,
            t1_reader_turn: true,
            draining: false,
            hunt_need: 0,
            after_silence: true,
            fresh_at: None,
            joined: Vec::new(),
        }
    }

    /// The protocol in use, once an ATR, PPS or a recognised exchange has shown it.
    pub fn line_protocol(&self) -> Option<LineProtocol> {
        self.protocol
    }

    /// True when bytes are being decoded from the inverse convention (ATR read as 03).
    pub fn is_inverted(&self) -> bool {
        self.inverted
    }

    /// Raw bytes currently held (never more than [`MAX_PENDING`]).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn decode(&self, raw: u8) -> u8 {
        if self.inverted {
            from_inverse_convention(raw)
        } else {
            raw
        }
    }

    /// Logical value of pending byte `index`.
    fn at(&self, index: usize) -> Option<u8> {
        self.pending.get(index).map(|b| self.decode(*b))
    }

    fn offset_of(&self, index: usize) -> StreamOffset {
        self.pending_start.saturating_add(index as u64)
    }

    fn pending_span(&self) -> Range<StreamOffset> {
        self.pending_start..self.offset_of(self.pending.len())
    }

    fn logical_pending(&self) -> Vec<u8> {
        self.pending.iter().map(|b| self.decode(*b)).collect()
    }

    fn push(&mut self, at: StreamOffset, raw: u8) {
        if self.pending.is_empty() {
            self.pending_start = at;
        }
        self.pending.push(raw);
    }

    /// Put pending bytes from `from` on back on the replay queue (ahead of what is already
    /// there: they come earlier in the stream) and forget the pending unit.
    fn replay_pending_from(&mut self, from: usize) {
        let start = self.pending_start;
        for (i, raw) in self.pending.iter().enumerate().skip(from).rev() {
            self.replay
                .push_front((start.saturating_add(i as u64), *raw));
        }
        self.pending.clear();
        self.hunt_need = 0;
    }

    fn start_hunting(&mut self) {
        self.state = State::Hunting;
        self.replay_pending_from(0);
    }

    fn suffix(&self) -> &'static str {
        if self.inverted {
            " [inverse convention, decoded]"
        } else {
            ""
        }
    }

    fn frame(
        &self,
        span: Range<StreamOffset>,
        kind: &'static str,
        status: FrameStatus,
        summary: String,
        fields: Vec<Field>,
    ) -> Frame {
        Frame::new(
            Protocol::Iso7816Line,
            span,
            kind,
            status,
            format!("{summary}{}", self.suffix()),
            fields,
        )
    }

    fn step(&mut self, at: StreamOffset, raw: u8, out: &mut Vec<Frame>) {
        match self.state {
            State::Hunting => {
                self.push(at, raw);
                self.hunt(out);
                if self.pending.len() > MAX_PENDING {
                    // Cannot happen with the candidate sizes above; keeps the bound explicit.
                    self.pending.remove(0);
                    self.pending_start = self.pending_start.saturating_add(1);
                }
            }
            State::Start => self.start_unit(at, raw),
            State::Pps => {
                self.push(at, raw);
                self.continue_pps(out);
            }
            State::T0Header => {
                self.push(at, raw);
                self.continue_header(out);
            }
            State::T0Procedure { remaining } => self.procedure_byte(at, raw, remaining, out),
            State::T0Data { left, after } => {
                self.push(at, raw);
                if self.pending.len() >= left {
                    out.push(self.data_frame());
                    self.pending.clear();
                    self.state = State::T0Procedure { remaining: after };
                }
            }
            State::T0Sw2 => {
                self.push(at, raw);
                out.push(self.sw_frame(FrameStatus::Ok));
                self.pending.clear();
                self.state = State::Start;
            }
            State::T1Block => {
                self.push(at, raw);
                self.continue_block(out);
            }
        }
    }

    fn start_unit(&mut self, at: StreamOffset, raw: u8) {
        let logical = self.decode(raw);
        self.push(at, raw);
        if logical == 0xFF {
            self.state = State::Pps;
            return;
        }
        match self.protocol {
            // CLA 0x20-0x3F is reserved, so 3B/3F here is a new ATR (card reset), not a header.
            Some(LineProtocol::T0) if Cla::decode(logical).kind != ClassKind::Reserved => {
                self.state = State::T0Header;
            }
            Some(LineProtocol::T1) if nad_plausible(logical) => self.state = State::T1Block,
            _ => self.start_hunting(),
        }
    }

    fn continue_pps(&mut self, out: &mut Vec<Frame>) {
        let Some(pps0) = self.at(1) else { return };
        if pps0 & 0x80 != 0 {
            // PPS0 bit 8 is reserved: this FF was not a PPS.
            self.start_hunting();
            return;
        }
        let need = 3 + (pps0 & 0x70).count_ones() as usize;
        if self.pending.len() < need {
            return;
        }
        out.push(self.pps_frame(FrameStatus::Ok));
        self.pending.clear();
        self.state = State::Start;
    }

    fn pps_frame(&mut self, truncated: FrameStatus) -> Frame {
        let logical = self.logical_pending();
        let pps0 = logical.get(1).copied().unwrap_or(0);
        let protocol = pps0 & 0x0F;
        let mut fields = vec![Field::new(
            "PPSS",
            "0xFF PPS start",
            self.pending_start..self.offset_of(1),
        )];
        if logical.len() >= 2 {
            fields.push(Field::new(
                "PPS0",
                format!(
                    "0x{pps0:02X} T={protocol}{}{}{}",
                    if pps0 & 0x10 != 0 { ", PPS1" } else { "" },
                    if pps0 & 0x20 != 0 { ", PPS2" } else { "" },
                    if pps0 & 0x40 != 0 { ", PPS3" } else { "" },
                ),
                self.offset_of(1)..self.offset_of(2),
            ));
        }
        let mut index = 2;
        for (bit, name) in [(0x10u8, "PPS1"), (0x20, "PPS2"), (0x40, "PPS3")] {
            if pps0 & bit == 0 {
                continue;
            }
            if let Some(v) = logical.get(index) {
                let value = if bit == 0x10 {
                    format!("0x{v:02X} {}", atr::describe_fidi(*v))
                } else {
                    format!("0x{v:02X}")
                };
                fields.push(Field::new(
                    name,
                    value,
                    self.offset_of(index)..self.offset_of(index + 1),
                ));
            }
            index += 1;
        }
        let is_response = self.pps_request.is_some();
        let mut status = truncated;
        if status.is_ok() {
            let pck_index = logical.len().saturating_sub(1);
            let found = logical.get(pck_index).copied().unwrap_or(0);
            let expected = logical
                .get(..pck_index)
                .unwrap_or(&[])
                .iter()
                .fold(0u8, |a, b| a ^ b);
            let valid = expected == found;
            fields.push(Field::new(
                "PCK",
                if valid {
                    format!("0x{found:02X} valid (XOR of PPSS..PCK = 00)")
                } else {
                    format!("0x{found:02X} wrong: expected 0x{expected:02X}")
                },
                self.offset_of(pck_index)..self.offset_of(pck_index + 1),
            ));
            if !valid {
                status = FrameStatus::BadChecksum {
                    expected: u32::from(expected),
                    found: u32::from(found),
                };
            }
        }
        let summary = if is_response {
            let same = self
                .pps_request
                .as_ref()
                .and_then(|(bytes, len)| bytes.get(..*len))
                .is_some_and(|req| req == logical.as_slice());
            if status.is_ok() {
                match protocol {
                    0 => self.protocol = Some(LineProtocol::T0),
                    1 => self.protocol = Some(LineProtocol::T1),
                    _ => {}
                }
                self.t1_reader_turn = true;
            }
            self.pps_request = None;
            if same {
                format!("PPS response T={protocol}: matches the request (accepted)")
            } else {
                format!("PPS response T={protocol}: differs from the request")
            }
        } else {
            let mut stored = [0u8; 6];
            for (slot, b) in stored.iter_mut().zip(logical.iter()) {
                *slot = *b;
            }
            if status.is_ok() {
                self.pps_request = Some((stored, logical.len().min(6)));
            }
            format!("PPS request T={protocol}")
        };
        self.frame(self.pending_span(), "pps", status, summary, fields)
    }

    fn continue_header(&mut self, out: &mut Vec<Frame>) {
        if self.pending.len() == 2 && !self.at(1).is_some_and(ins::is_valid) {
            self.start_hunting();
            return;
        }
        if self.pending.len() < 5 {
            return;
        }
        let mut bytes = [0u8; 5];
        for (i, slot) in bytes.iter_mut().enumerate() {
            *slot = self.at(i).unwrap_or(0);
        }
        let header = T0Header {
            bytes,
            at: self.pending_start,
        };
        out.push(self.header_frame(&header, FrameStatus::Ok));
        self.header = Some(header);
        self.pending.clear();
        let p3 = usize::from(header.p3());
        self.state = State::T0Procedure {
            remaining: if p3 == 0 { 256 } else { p3 },
        };
    }

    fn header_frame(&self, header: &T0Header, status: FrameStatus) -> Frame {
        let available = self.pending.len().min(5);
        let at = |i: usize| header.at.saturating_add(i as u64);
        let cla = Cla::decode(header.cla());
        let mut fields = vec![cla.field(at(0))];
        let names = ["CLA", "INS", "P1", "P2", "P3"];
        for (i, name) in names.iter().enumerate().take(available).skip(1) {
            let v = header.bytes.get(i).copied().unwrap_or(0);
            let value = match i {
                1 => ins::describe(v, &cla),
                4 => format!(
                    "0x{v:02X}: {} data bytes (Lc or Le; 00 means 256 when the card sends data)",
                    if v == 0 { 256 } else { u16::from(v) }
                ),
                _ => format!("0x{v:02X}"),
            };
            fields.push(Field::new(*name, value, at(i)..at(i + 1)));
        }
        let shown = header.bytes.get(..available).unwrap_or(&[]);
        self.frame(
            header.at..at(available),
            "header",
            status,
            format!("{} header {}", header.name(), hex::spaced(shown)),
            fields,
        )
    }

    fn procedure_byte(
        &mut self,
        at: StreamOffset,
        raw: u8,
        remaining: usize,
        out: &mut Vec<Frame>,
    ) {
        let logical = self.decode(raw);
        let Some(header) = self.header else {
            self.push(at, raw);
            self.start_hunting();
            return;
        };
        let ins_byte = header.ins();
        let span = at..at.saturating_add(1);
        let procedure = |this: &Self, summary: String, value: String| {
            this.frame(
                span.clone(),
                "procedure",
                FrameStatus::Ok,
                summary,
                vec![Field::new("procedure byte", value, span.clone())],
            )
        };
        if logical == 0x60 {
            out.push(procedure(
                self,
                "NULL 60: card asks for more time".to_string(),
                "0x60 NULL: wait for the next procedure byte".to_string(),
            ));
        } else if logical == ins_byte {
            out.push(procedure(
                self,
                format!("ACK {logical:02X}: all {remaining} remaining data bytes follow"),
                format!("0x{logical:02X} = INS: transfer all remaining data ({remaining} bytes)"),
            ));
            if remaining > 0 {
                self.state = State::T0Data {
                    left: remaining,
                    after: 0,
                };
            }
        } else if logical == ins_byte ^ 0xFF {
            out.push(procedure(
                self,
                format!("ACK {logical:02X} (INS xor FF): next data byte only"),
                format!("0x{logical:02X} = INS xor FF: transfer one data byte"),
            ));
            self.state = State::T0Data {
                left: 1,
                after: remaining.saturating_sub(1),
            };
        } else if is_sw1(logical) {
            self.push(at, raw);
            self.state = State::T0Sw2;
        } else if matches!(raw, 0x3B | 0x3F | 0x03) {
            // Probably the card was reset and this is a new ATR.
            self.push(at, raw);
            self.start_hunting();
        } else {
            let mut frame = procedure(
                self,
                format!(
                    "unexpected procedure byte {logical:02X} after {}",
                    header.name()
                ),
                format!(
                    "0x{logical:02X}: expected 60, {ins_byte:02X}, {:02X}, 6X or 9X",
                    ins_byte ^ 0xFF
                ),
            );
            frame.status = FrameStatus::Malformed(format!(
                "procedure byte 0x{logical:02X} is neither NULL (60), ACK ({ins_byte:02X} / {:02X}) nor SW1 (6X, 9X): the line lost sync (baud rate, convention or a missed byte)",
                ins_byte ^ 0xFF
            ));
            out.push(frame);
            self.state = State::Hunting;
        }
    }

    fn data_frame(&self) -> Frame {
        let logical = self.logical_pending();
        let direction = self
            .header
            .and_then(|h| ins::t0_data_direction(h.ins()))
            .map(|d| match d {
                DataDirection::ToCard => " (likely reader → card)",
                DataDirection::FromCard => " (likely card → reader)",
            })
            .unwrap_or("");
        let span = self.pending_span();
        self.frame(
            span.clone(),
            "data",
            FrameStatus::Ok,
            format!("{} data bytes{direction}", logical.len()),
            vec![Field::new(
                "data",
                hex::spaced_limited(&logical, SHOWN_DATA_BYTES),
                span,
            )],
        )
    }

    fn sw_frame(&self, status: FrameStatus) -> Frame {
        let sw1 = self.at(0).unwrap_or(0);
        let span = self.pending_span();
        let after = self
            .header
            .map(|h| format!(" (after {}, CLA {:02X})", h.name(), h.cla()))
            .unwrap_or_default();
        let mut fields = Vec::new();
        let summary;
        match self.at(1) {
            Some(sw2) if status.is_ok() => {
                let sw = StatusWord::from_bytes(sw1, sw2);
                summary = format!("{}{after}", sw::lookup(sw).summary());
                fields.push(sw::sw_field(sw, self.pending_start));
                if let Some(h) = self.header {
                    fields.push(Field::new(
                        "command",
                        format!("{} {}", h.name(), hex::spaced(&h.bytes)),
                        h.at..h.at.saturating_add(5),
                    ));
                    if let Some(text) = cla::explain_status(&Cla::decode(h.cla()), sw) {
                        fields.push(Field::new("context", text, span.clone()));
                    }
                    let next = match sw1 {
                        0x61 => Some(format!(
                            "send GET RESPONSE {:02X} C0 00 00 {sw2:02X} (same CLA and channel)",
                            h.cla()
                        )),
                        0x6C => Some(format!(
                            "re-send {} with P3={sw2:02X}",
                            hex::spaced(h.bytes.get(..4).unwrap_or(&[]))
                        )),
                        _ => None,
                    };
                    if let Some(next) = next {
                        fields.push(Field::new("next step", next, span.clone()));
                    }
                }
            }
            _ => {
                summary = format!(
                    "SW1 {sw1:02X} {} (SW2 missing){after}",
                    sw::sw1_meaning(sw1)
                );
                fields.push(Field::new(
                    "SW1",
                    format!("0x{sw1:02X} {}", sw::sw1_meaning(sw1)),
                    span.clone(),
                ));
            }
        }
        self.frame(span, "sw", status, summary, fields)
    }

    fn edc_len(&self) -> usize {
        match self.edc {
            T1Edc::Lrc => 1,
            T1Edc::Crc => 2,
        }
    }

    fn continue_block(&mut self, out: &mut Vec<Frame>) {
        match self.pending.len() {
            2 if !self.at(1).is_some_and(pcb_valid) => {
                self.start_hunting();
                return;
            }
            3 if self.at(2) == Some(0xFF) => {
                self.start_hunting();
                return;
            }
            _ => {}
        }
        let Some(len) = self.at(2) else { return };
        if self.pending.len() < 3 + usize::from(len) + self.edc_len() {
            return;
        }
        let frame = self.block_frame(FrameStatus::Ok);
        out.push(frame);
        self.pending.clear();
        self.state = State::Start;
    }

    fn block_frame(&mut self, truncated: FrameStatus) -> Frame {
        let logical = self.logical_pending();
        let nad = logical.first().copied().unwrap_or(0);
        let pcb = logical.get(1).copied();
        let len = logical.get(2).copied();
        let start = self.pending_start;
        let off = |i: usize| start.saturating_add(i as u64);
        let mut fields = vec![Field::new(
            "NAD",
            format!("0x{nad:02X} SAD={} DAD={}", nad & 0x07, (nad >> 4) & 0x07),
            off(0)..off(1),
        )];
        let (kind, mut summary) = match pcb {
            Some(p) if p & 0x80 == 0 => (
                "i-block",
                format!(
                    "I-block N(S)={}{}",
                    (p >> 6) & 1,
                    if p & 0x20 != 0 {
                        " M=1 (more follows)"
                    } else {
                        ""
                    }
                ),
            ),
            Some(p) if p & 0xC0 == 0x80 => (
                "r-block",
                format!(
                    "R-block N(R)={} {}",
                    (p >> 4) & 1,
                    match p & 0x0F {
                        0 => "ok",
                        1 => "EDC/parity error",
                        _ => "other error",
                    }
                ),
            ),
            Some(p) => (
                "s-block",
                format!(
                    "S-block {} {}",
                    match p & 0x1F {
                        0 => "RESYNCH",
                        1 => "IFS",
                        2 => "ABORT",
                        3 => "WTX",
                        _ => "VPP error",
                    },
                    if p & 0x20 != 0 { "response" } else { "request" }
                ),
            ),
            None => ("i-block", "T=1 block".to_string()),
        };
        if let Some(p) = pcb {
            fields.push(Field::new(
                "PCB",
                format!("0x{p:02X} {summary}"),
                off(1)..off(2),
            ));
        }
        if let Some(l) = len {
            fields.push(Field::new("LEN", format!("{l} bytes"), off(2)..off(3)));
        }
        let inf_len = usize::from(len.unwrap_or(0));
        let inf_range = 3..(3 + inf_len).min(logical.len());
        let inf = logical.get(inf_range.clone()).unwrap_or(&[]);
        if !inf.is_empty() {
            let mut inf_field = Field::new(
                "INF",
                hex::spaced_limited(inf, SHOWN_DATA_BYTES),
                off(inf_range.start)..off(inf_range.end),
            );
            let complete = inf.len() == inf_len;
            match (kind, pcb) {
                ("i-block", Some(p)) if complete => {
                    let chained = p & 0x20 != 0;
                    let reader = self.t1_reader_turn;
                    if !chained && truncated.is_ok() {
                        let apdu = if reader {
                            apdu::command_frame(off(3), inf)
                        } else {
                            apdu::response_frame(off(3), inf)
                        };
                        if apdu.status.is_ok() {
                            summary.push_str(&format!(": {}", apdu.summary()));
                            let apdu_span = apdu.span.clone();
                            let described = apdu.into_description();
                            inf_field.children = vec![
                                Field::new(
                                    if reader {
                                        "APDU (command, by turn order)"
                                    } else {
                                        "APDU (response, by turn order)"
                                    },
                                    described.summary,
                                    apdu_span,
                                )
                                .with_children(described.fields),
                            ];
                        }
                        self.t1_reader_turn = !reader;
                    }
                }
                ("s-block", Some(p)) => {
                    let v = inf.first().copied().unwrap_or(0);
                    let text = match p & 0x1F {
                        1 => format!("IFS = {v} bytes"),
                        3 => format!("WTX multiplier = {v}"),
                        _ => hex::spaced(inf),
                    };
                    summary.push_str(&format!(" ({text})"));
                }
                _ => {}
            }
            fields.push(inf_field);
        }
        let mut status = truncated;
        if status.is_ok() {
            let edc_at = 3 + inf_len;
            match self.edc {
                T1Edc::Lrc => {
                    let found = logical.get(edc_at).copied().unwrap_or(0);
                    let expected = logical
                        .get(..edc_at)
                        .unwrap_or(&[])
                        .iter()
                        .fold(0u8, |a, b| a ^ b);
                    let valid = found == expected;
                    fields.push(Field::new(
                        "LRC",
                        if valid {
                            format!("0x{found:02X} valid")
                        } else {
                            format!("0x{found:02X} wrong: expected 0x{expected:02X}")
                        },
                        off(edc_at)..off(edc_at + 1),
                    ));
                    if !valid {
                        status = FrameStatus::BadChecksum {
                            expected: u32::from(expected),
                            found: u32::from(found),
                        };
                    }
                }
                T1Edc::Crc => {
                    let crc = logical.get(edc_at..edc_at + 2).unwrap_or(&[]);
                    fields.push(Field::new(
                        "CRC",
                        format!("{} (not checked)", hex::spaced(crc)),
                        off(edc_at)..off(edc_at + 2),
                    ));
                }
            }
        }
        self.frame(self.pending_span(), kind, status, summary, fields)
    }

    fn truncated_atr(&self) -> Option<Frame> {
        truncated_atr_frame(self.pending_start, &self.pending)
    }
}

/// SW1 values a card may send as a procedure byte: 6X except 60 (NULL), and 9X.
fn is_sw1(byte: u8) -> bool {
    matches!(byte, 0x61..=0x6F | 0x90..=0x9F)
}

/// NAD bits 8 and 4 (VPP control, deprecated) are 0 in practice; a NAD with them set is taken
/// as a sign of lost sync (and keeps TS 3B/3F from passing as a NAD).
fn nad_plausible(nad: u8) -> bool {
    nad & 0x88 == 0
}

/// PCB codings of ISO 7816-3 §11.3.2: I (0 N(S) M 00000), R (100 N(R) error 0/1/2),
/// S (11 response type 0-3, or E4 VPP error).
fn pcb_valid(pcb: u8) -> bool {
    match pcb & 0xC0 {
        0x00 | 0x40 => pcb & 0x1F == 0,
        0x80 => pcb & 0x20 == 0 && pcb & 0x0F <= 2,
        _ => pcb & 0x1F <= 3 || pcb == 0xE4,
    }
}

impl Framer for LineFramer {
    fn protocol(&self) -> Protocol {
        Protocol::Iso7816Line
    }

    fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>) {
        if self.next_offset.is_some_and(|expected| expected != offset) {
            // A gap in the stream: a partial unit cannot be finished and the position in the
            // protocol is lost, so drop what is pending and hunt (ATR, or a whole exchange).
            self.pending.clear();
            self.hunt_need = 0;
            self.state = State::Hunting;
        }
        if self.after_silence && !bytes.is_empty() {
            self.after_silence = false;
            self.fresh_at = Some(offset);
        }
        let mut i = 0;
        while let Some(&raw) = bytes.get(i) {
            let at = offset.saturating_add(i as u64);
            let rest = bytes.get(i..).unwrap_or(&[]);
            if self.state == State::Hunting && self.pending.is_empty() {
                i += self.hunt_in_place(at, rest, rest.len(), out);
            } else if self.state == State::Hunting
                && self.pending.len() + rest.len() < self.hunt_need
            {
                // Still not what the waiting candidate needs (fewer than MAX_PENDING bytes).
                self.pending.extend_from_slice(rest);
                i = bytes.len();
            } else if self.state == State::Hunting {
                // A candidate waits for more bytes: judge the held positions in the window
                // joined with enough new input (a buffer kept for this, so no allocation once
                // it has grown); the rest of the input is hunted where it lies.
                let mut joined = std::mem::take(&mut self.joined);
                joined.clear();
                joined.extend_from_slice(&self.pending);
                joined.extend_from_slice(rest.get(..MAX_PENDING).unwrap_or(rest));
                let held = self.pending.len();
                let start = self.pending_start;
                self.pending.clear();
                // Consumes at least the held bytes: an accepted start copies up to
                // MAX_PENDING bytes from itself on, and the held ones are fewer.
                let consumed = self.hunt_in_place(start, &joined, held, out);
                self.joined = joined;
                i += consumed.saturating_sub(held);
            } else {
                self.step(at, raw, out);
                i += 1;
            }
            while let Some((at, replayed)) = self.replay.pop_front() {
                self.step(at, replayed, out);
            }
        }
        self.next_offset = Some(offset.saturating_add(bytes.len() as u64));
    }

    fn pending_from(&self) -> Option<StreamOffset> {
        (!self.pending.is_empty()).then_some(self.pending_start)
    }

    /// Only a candidate that starts with TS can become an ATR; anything else is at most a
    /// block with its LRC. Every position of the pending window is undecided.
    fn pending_max_rank(&self) -> crate::decode::evidence::Rank {
        use crate::decode::evidence::{ISO7816_BLOCK_BITS, Rank, Strength, max_rank};
        if self.pending.iter().any(|&b| is_ts(b)) {
            max_rank(Protocol::Iso7816Line)
        } else {
            Rank::of(Strength::Checked, ISO7816_BLOCK_BITS)
        }
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        if self.state == State::Hunting && !self.pending.is_empty() {
            // Settle the hunting window: candidates that were waiting for more bytes are
            // rejected, so whatever real unit lies behind them is still found.
            self.draining = true;
            self.start_hunting();
            while let Some((at, replayed)) = self.replay.pop_front() {
                self.step(at, replayed, out);
            }
            self.draining = false;
        }
        match self.state {
            State::Pps if !self.pending.is_empty() => {
                let frame = self.pps_frame(FrameStatus::Truncated);
                out.push(frame);
            }
            State::T0Header if !self.pending.is_empty() => {
                let mut bytes = [0u8; 5];
                for (i, slot) in bytes.iter_mut().enumerate() {
                    *slot = self.at(i).unwrap_or(0);
                }
                let header = T0Header {
                    bytes,
                    at: self.pending_start,
                };
                out.push(self.header_frame(&header, FrameStatus::Truncated));
            }
            State::T0Data { .. } if !self.pending.is_empty() => {
                let mut frame = self.data_frame();
                frame.status = FrameStatus::Truncated;
                out.push(frame);
            }
            State::T0Sw2 if !self.pending.is_empty() => {
                out.push(self.sw_frame(FrameStatus::Truncated));
            }
            State::T1Block if !self.pending.is_empty() => {
                let frame = self.block_frame(FrameStatus::Truncated);
                out.push(frame);
            }
            _ => {}
        }
        self.pending.clear();
        self.hunt_need = 0;
        self.after_silence = true;
        if !matches!(self.state, State::Hunting | State::T0Procedure { .. }) {
            self.state = State::Start;
        }
    }

    fn reset(&mut self) {
        *self = LineFramer::new();
    }
}
