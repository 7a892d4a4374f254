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

use super::apdu;
use super::atr::{self, AtrProbe, MAX_ATR_LEN, T1Edc, TckStatus, TransmissionProtocol};
use super::cla::{self, Cla, ClassKind};
use super::from_inverse_convention;
use super::ins::{self, DataDirection};
use super::sw::{self, StatusWord};
use crate::decode::frame::{Field, Frame, FrameStatus, Framer, Protocol, StreamOffset};
use crate::decode::stream::{lanes_at, lanes_between, lanes_eq, lanes_masked_eq};
use crate::hex;
use std::collections::VecDeque;
use std::ops::Range;
use wide::u8x16;

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

// Evidence, in bits, that bytes are card traffic and not noise: a check that noise passes
// with chance p is worth log2(1/p), for the worse of two kinds of noise, random bytes and
// printable text (boot logs: lowercase a-o are 61-6F, valid SW1 values, and a letter often
// repeats where an ACK would be). Hunting on a line that carries something else meets
// candidates all the time (a TS about every 85 random bytes, an ACK where it fits every 256)
// and every accepted one costs frames and time, so it commits only on enough evidence, and
// never on structure bytes that are all printable text.

/// A procedure byte that is NULL (60), INS or INS xor FF, when it is not text / when it is.
const ACK_BITS: u32 = 8;
const TEXT_ACK_BITS: u32 = 4;
/// SW1 in a procedure-byte slot (6X except 60, 9X): when it is not text / when it is.
const SW1_BITS: u32 = 4;
const TEXT_SW1_BITS: u32 = 1;
/// A T=1 NAD with bits 8 and 4 clear (1 in 4), a valid PCB (19 of 256), a matching LRC.
const NAD_BITS: u32 = 2;
const PCB_BITS: u32 = 4;
const LRC_BITS: u32 = 8;
/// FF then a PPS0 with bit 8 clear; a PCK that checks.
const PPS_BITS: u32 = 9;
const PCK_BITS: u32 = 8;
/// An ATR whose TCK checks is taken at once, as is one at the very start of the input or
/// right after `flush` (a reset after silence). Any other ATR (T=0 only, so no TCK, or a
/// wrong TCK) needs this much evidence after it: e.g. an ACK and a 9X SW1, a PPS whose PCK
/// checks, a T=1 block whose LRC checks, or two exchanges each with an ACK.
const WEAK_ATR_BITS: u32 = 11;
/// A T=0 exchange or T=1 block found without an ATR, with what follows it, must reach this
/// (e.g. an exchange ACK + 90, then the next header and its ACK or NULL). At the end of input
/// the complete unit alone is enough.
const UNIT_BITS: u32 = 20;

/// What hunting decides about the front of its window.
enum HuntDecision {
    /// An ATR of this many bytes.
    Atr(usize),
    /// The input ended inside an ATR.
    TruncatedAtr,
    /// A T=0 exchange or T=1 block: the state machine takes over from here.
    Unit(LineProtocol),
    /// Nothing is decided before the window holds this many bytes.
    Wait(usize),
    Reject,
}

/// What the bytes after a candidate say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    Enough,
    /// Consistent so far; the next look needs this many bytes in the window.
    Wait(usize),
    Against,
}

/// Evidence gathered for a candidate: bits, and whether any structure byte so far is
/// outside printable text (a candidate made only of text is never taken).
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    bits: u32,
    binary: bool,
}

impl Tally {
    fn is_enough(&self, needed: u32) -> bool {
        self.binary && self.bits >= needed
    }

    fn add_ack(&mut self, text: bool) {
        self.bits += if text { TEXT_ACK_BITS } else { ACK_BITS };
    }

    fn add_sw1(&mut self, text: bool) {
        self.bits += if text { TEXT_SW1_BITS } else { SW1_BITS };
    }
}

/// How to read a candidate: the window from its first byte on, the convention, the protocol
/// (T=0 also when none is known), the T=1 EDC, and whether a PPS may come first (right after
/// an ATR).
#[derive(Debug, Clone, Copy)]
struct Reading<'a> {
    window: &'a [u8],
    inverted: bool,
    protocol: LineProtocol,
    edc: T1Edc,
    pps: bool,
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

    // ---- hunting -------------------------------------------------------------------------
    //
    // Hunting judges one start position at a time, the earliest first. A judgement depends
    // only on the bytes from that position on that are already held (more bytes never turn
    // an accept into a reject or back), so judging in the caller's chunk, in the pending
    // window, or after every replayed byte all give the same frames. Positions the quick
    // filter (`dead_prefix`) rules out are never judged, and no position is judged twice
    // except to look again once the bytes it waits for have arrived.

    /// Hunt in `bytes` (stream offset `at`) with nothing pending, judging the positions
    /// before `limit` where they lie: only an undecided tail, or the bytes from an accepted
    /// start on (at most [`MAX_PENDING`]), are copied to `pending`. Returns how many bytes
    /// that consumed (at least `limit`, or all).
    fn hunt_in_place(
        &mut self,
        at: StreamOffset,
        bytes: &[u8],
        limit: usize,
        out: &mut Vec<Frame>,
    ) -> usize {
        let mut front = 0;
        loop {
            let start = at.saturating_add(front as u64);
            front += self.dead_prefix(bytes.get(front..).unwrap_or(&[]), start);
            let Some(window) = bytes.get(front..).filter(|w| !w.is_empty()) else {
                return bytes.len();
            };
            if front >= limit {
                return front;
            }
            let start = at.saturating_add(front as u64);
            match self.judge(window, start, false) {
                HuntDecision::Reject => front += 1,
                verdict => {
                    let take = window.len().min(MAX_PENDING);
                    self.pending.clear();
                    self.pending
                        .extend_from_slice(window.get(..take).unwrap_or(&[]));
                    self.pending_start = start;
                    self.settle(verdict, out);
                    return front + take;
                }
            }
        }
    }

    /// Hunt in the pending window (input that arrived while a candidate waited, or bytes
    /// replayed after the state machine lost track). Rejected bytes are dropped once, when
    /// the call ends.
    fn hunt(&mut self, out: &mut Vec<Frame>) {
        let mut front = 0;
        let verdict = loop {
            let held = self.pending.len().saturating_sub(front);
            if held == 0 {
                break HuntDecision::Wait(0);
            }
            let at_end = self.at_end();
            if !at_end && held < self.hunt_need {
                break HuntDecision::Wait(self.hunt_need);
            }
            let window = self.pending.get(front..).unwrap_or(&[]);
            let start = self.pending_start.saturating_add(front as u64);
            match self.judge(window, start, at_end) {
                HuntDecision::Reject => {
                    front += 1;
                    let start = self.pending_start.saturating_add(front as u64);
                    front += self.dead_prefix(self.pending.get(front..).unwrap_or(&[]), start);
                    self.hunt_need = 0;
                }
                verdict => break verdict,
            }
        };
        self.drop_front(front);
        self.settle(verdict, out);
    }

    /// Act on the verdict for the start at `pending[0]`.
    fn settle(&mut self, verdict: HuntDecision, out: &mut Vec<Frame>) {
        match verdict {
            HuntDecision::Atr(len) => {
                self.hunt_need = 0;
                self.accept_atr(len, out);
            }
            HuntDecision::TruncatedAtr => {
                if let Some(frame) = self.truncated_atr() {
                    out.push(frame);
                }
                self.pending.clear();
                self.hunt_need = 0;
            }
            HuntDecision::Unit(protocol) => {
                self.protocol = Some(protocol);
                self.state = State::Start;
                self.replay_pending_from(0);
            }
            HuntDecision::Wait(need) => self.hunt_need = need,
            HuntDecision::Reject => {}
        }
    }

    /// True while `flush` settles the hunting window and no replayed byte is left.
    fn at_end(&self) -> bool {
        self.draining && self.replay.is_empty()
    }

    fn drop_front(&mut self, count: usize) {
        let count = count.min(self.pending.len());
        if count > 0 {
            self.pending.drain(..count);
            self.pending_start = self.pending_start.saturating_add(count as u64);
        }
    }

    /// What to do with the start at `window[0]` (stream offset `start`). At the end of input
    /// nothing waits: what is consistent so far is accepted only if it is complete.
    fn judge(&self, window: &[u8], start: StreamOffset, at_end: bool) -> HuntDecision {
        let Some(&first) = window.first() else {
            return HuntDecision::Wait(1);
        };
        if is_ts(first) {
            match self.judge_atr(window, start, at_end) {
                HuntDecision::Reject => {}
                verdict => return verdict,
            }
        }
        let protocol = match self.protocol {
            Some(LineProtocol::T1) => LineProtocol::T1,
            _ => LineProtocol::T0,
        };
        let reading = Reading {
            window,
            inverted: self.inverted,
            protocol,
            edc: self.edc,
            pps: false,
        };
        let mut tally = Tally::default();
        let found = match protocol {
            LineProtocol::T1 => t1_block_start(reading, &mut tally),
            LineProtocol::T0 => t0_exchange_start(reading, &mut tally),
        };
        match found {
            Err(Evidence::Wait(need)) if !at_end => HuntDecision::Wait(need),
            Err(_) => HuntDecision::Reject,
            Ok(end) => match follow(reading, end, tally, UNIT_BITS) {
                Evidence::Enough => HuntDecision::Unit(protocol),
                // The unit itself is complete: at the end of input nothing can contradict it.
                Evidence::Wait(_) if at_end => HuntDecision::Unit(protocol),
                Evidence::Wait(need) => HuntDecision::Wait(need),
                Evidence::Against => HuntDecision::Reject,
            },
        }
    }

    /// An ATR at `window[0]` (a TS): `Reject` when there is none, so that the position can
    /// still start a T=0 exchange (03 is a valid CLA).
    fn judge_atr(&self, window: &[u8], start: StreamOffset, at_end: bool) -> HuntDecision {
        let inverse = window.first() == Some(&0x03);
        let held = window.get(..MAX_ATR_LEN).unwrap_or(window);
        let mut decoded = [0u8; MAX_ATR_LEN];
        let probe = if inverse {
            // Most candidates fail within a few bytes: decode those first.
            let mut done = 0;
            loop {
                let upto = held.len().min(if done == 0 { 8 } else { MAX_ATR_LEN });
                for (slot, raw) in decoded.iter_mut().zip(held).take(upto).skip(done) {
                    *slot = decode_as(*raw, true);
                }
                done = upto;
                match atr::probe(decoded.get(..done).unwrap_or(&[])) {
                    AtrProbe::Incomplete { .. } if done < held.len() => {}
                    probe => break probe,
                }
            }
        } else {
            atr::probe(held)
        };
        match probe {
            AtrProbe::Complete(outline) => {
                if self.fresh_at == Some(start) || outline.tck == TckStatus::Valid {
                    return HuntDecision::Atr(outline.len);
                }
                let reading = Reading {
                    window,
                    inverted: inverse,
                    protocol: match outline.first_protocol {
                        TransmissionProtocol::T1 => LineProtocol::T1,
                        _ => LineProtocol::T0,
                    },
                    edc: outline.t1_edc,
                    pps: true,
                };
                let tally = Tally {
                    bits: 0,
                    binary: window.iter().take(outline.len).any(|raw| !is_text(*raw)),
                };
                match follow(reading, outline.len, tally, WEAK_ATR_BITS) {
                    Evidence::Enough => HuntDecision::Atr(outline.len),
                    Evidence::Wait(_) if at_end => HuntDecision::Atr(outline.len),
                    Evidence::Wait(need) => HuntDecision::Wait(need),
                    Evidence::Against => HuntDecision::Reject,
                }
            }
            AtrProbe::Incomplete { need } if !at_end => HuntDecision::Wait(need),
            // The input ended inside an ATR: report it as truncated (if it is one).
            AtrProbe::Incomplete { .. } if truncated_atr_frame(start, window).is_some() => {
                HuntDecision::TruncatedAtr
            }
            AtrProbe::Incomplete { .. } | AtrProbe::NotAtr => HuntDecision::Reject,
        }
    }

    fn accept_atr(&mut self, len: usize, out: &mut Vec<Frame>) {
        let raw = self.pending.get(..len).unwrap_or(&[]);
        if let Ok(parsed) = atr::parse_prefix(raw) {
            let mut frame = parsed.to_frame(self.pending_start);
            frame.protocol = Protocol::Iso7816Line;
            out.push(frame);
            self.inverted = parsed.decoded_from_inverse;
            self.edc = parsed.t1_edc();
            self.protocol = match parsed.first_protocol() {
                TransmissionProtocol::T0 => Some(LineProtocol::T0),
                TransmissionProtocol::T1 => Some(LineProtocol::T1),
                _ => None,
            };
        }
        self.header = None;
        self.pps_request = None;
        self.t1_reader_turn = true;
        self.state = if self.protocol.is_some() {
            State::Start
        } else {
            State::Hunting
        };
        self.replay_pending_from(len);
    }

    /// How many positions at the start of `window` (stream offset `start`) hunting would
    /// reject without a real look. Stops at the first that needs one or more bytes, and at
    /// the first byte after silence (where an ATR is taken at once).
    fn dead_prefix(&self, window: &[u8], start: StreamOffset) -> usize {
        let dead = match (self.protocol, self.edc) {
            (Some(LineProtocol::T1), T1Edc::Crc) => window
                .iter()
                .enumerate()
                .position(|(p, raw)| is_ts(*raw) && atr_possible(window.get(p..).unwrap_or(&[])))
                .unwrap_or(window.len()),
            (Some(LineProtocol::T1), T1Edc::Lrc) => t1_dead_prefix(window, self.inverted),
            _ => t0_dead_prefix(window, self.inverted),
        };
        match self.fresh_at.and_then(|fresh| fresh.checked_sub(start)) {
            Some(fresh) => dead.min(usize::try_from(fresh).unwrap_or(usize::MAX)),
            None => dead,
        }
    }

    // ---- units -----------------------------------------------------------------------------

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

// ---- hunting helpers -------------------------------------------------------------------------

/// Logical value of the candidate's byte `index`, noting in `tally` whether the raw byte
/// lies outside printable text; or why hunting cannot have it: not arrived yet (`Wait`, with
/// the window length needed), or beyond what a window may hold (`Against`).
fn look(reading: Reading, index: usize, tally: &mut Tally) -> Result<u8, Evidence> {
    if index >= MAX_PENDING {
        return Err(Evidence::Against);
    }
    let raw = *reading.window.get(index).ok_or(Evidence::Wait(index + 1))?;
    tally.binary |= !is_text(raw);
    Ok(decode_as(raw, reading.inverted))
}

/// The candidate's raw byte `index` is printable text.
fn text_at(reading: Reading, index: usize) -> bool {
    reading.window.get(index).is_some_and(|raw| is_text(*raw))
}

/// A whole T=0 exchange whose first procedure byte is an ACK: plausible CLA and INS, a
/// header that is not all printable text, ACK = INS, all data, valid SW1, then SW2. Gives
/// its length.
fn t0_exchange_start(reading: Reading, tally: &mut Tally) -> Result<usize, Evidence> {
    let mut look = |index: usize| look(reading, index, tally);
    let cla = look(0)?;
    let ins_byte = look(1)?;
    // The ACK is the cheap, strong test (1 in 256): first.
    if look(5)? != ins_byte || !cla_plausible(cla) || !ins::is_valid(ins_byte) {
        return Err(Evidence::Against);
    }
    let n = data_len(look(4)?);
    // Text is not taken for a header: not one that is all printable (real ones have CLA 00,
    // 80 or A0, P1 or P2 00, ...), nor one whose raw CLA and INS are both 20-7F (CLA 20-3F
    // is reserved anyway; this gives up resyncing on channels 4-19 with a printable INS, so
    // that words in a log, a letter repeated 4 bytes later, are ruled out cheaply).
    let [raw_cla, raw_ins, ..] =
        <[u8; 2]>::try_from(reading.window.get(..2).unwrap_or(&[])).unwrap_or([0; 2]);
    if (is_printable(raw_cla) && is_printable(raw_ins))
        || reading.window.iter().take(5).all(|raw| is_text(*raw))
    {
        return Err(Evidence::Against);
    }
    // P1 and P2 (held, as P3 is) count as structure for `tally`.
    look(2)?;
    look(3)?;
    if !is_sw1(look(6 + n)?) {
        return Err(Evidence::Against);
    }
    look(7 + n)?;
    tally.add_ack(text_at(reading, 5));
    tally.add_sw1(text_at(reading, 6 + n));
    Ok(8 + n)
}

/// A T=1 block with a valid NAD, PCB and LEN whose LRC checks (CRC is not checked, so a CRC
/// line resyncs only on an ATR). Gives its length.
fn t1_block_start(reading: Reading, tally: &mut Tally) -> Result<usize, Evidence> {
    if reading.edc == T1Edc::Crc {
        return Err(Evidence::Against);
    }
    let mut look = |index: usize| look(reading, index, tally);
    if !nad_plausible(look(0)?) || !pcb_valid(look(1)?) {
        return Err(Evidence::Against);
    }
    let len = look(2)?;
    if len == 0xFF {
        return Err(Evidence::Against);
    }
    let total = 4 + usize::from(len);
    look(total - 1)?;
    if lrc_of(reading, 0..total) != 0 {
        return Err(Evidence::Against);
    }
    tally.bits += NAD_BITS + PCB_BITS + LRC_BITS;
    Ok(total)
}

/// XOR of the candidate's logical bytes `range` (all held). Decoding from the inverse
/// convention is a bit reversal and an inversion, so the XOR of decoded bytes is the bit
/// reversal of the raw XOR, inverted when the count is odd: one pass over raw bytes that
/// the compiler vectorises.
fn lrc_of(reading: Reading, range: std::ops::Range<usize>) -> u8 {
    let count = range.len();
    let raw = reading
        .window
        .get(range)
        .unwrap_or(&[])
        .iter()
        .fold(0u8, |lrc, b| lrc ^ b);
    match (reading.inverted, count % 2 == 1) {
        (false, _) => raw,
        (true, false) => raw.reverse_bits(),
        (true, true) => !raw.reverse_bits(),
    }
}

/// Read on from the candidate's byte `from` as the state machine would after accepting the
/// candidate: a PPS where `reading` allows one, then T=0 exchanges or T=1 blocks, adding to
/// `tally` until it is enough for `needed` bits. `Against` as soon as a byte contradicts it,
/// or if the window limit comes first.
fn follow(reading: Reading, from: usize, tally: Tally, needed: u32) -> Evidence {
    let mut tally = tally;
    match follow_units(reading, from, &mut tally, needed) {
        Ok(()) => Evidence::Enough,
        Err(evidence) => evidence,
    }
}

fn follow_units(
    reading: Reading,
    from: usize,
    tally: &mut Tally,
    needed: u32,
) -> Result<(), Evidence> {
    let mut i = from;
    let mut pps_allowed = reading.pps;
    loop {
        if tally.is_enough(needed) {
            return Ok(());
        }
        let first = look(reading, i, tally)?;
        if first == 0xFF && pps_allowed {
            // PPS request or answer: PPS0 bit 8 is reserved, PPS1-3 as PPS0 says.
            let pps0 = look(reading, i + 1, tally)?;
            if pps0 & 0x80 != 0 {
                return Err(Evidence::Against);
            }
            tally.bits += PPS_BITS;
            if tally.is_enough(needed) {
                return Ok(());
            }
            let len = 3 + (pps0 & 0x70).count_ones() as usize;
            let mut pck = 0u8;
            for index in i..i + len {
                pck ^= look(reading, index, tally)?;
            }
            if pck == 0 {
                tally.bits += PCK_BITS;
            }
            i += len;
            continue;
        }
        pps_allowed = false;
        if reading.protocol == LineProtocol::T1 {
            if !nad_plausible(first) || !pcb_valid(look(reading, i + 1, tally)?) {
                return Err(Evidence::Against);
            }
            let len = look(reading, i + 2, tally)?;
            if len == 0xFF {
                return Err(Evidence::Against);
            }
            tally.bits += NAD_BITS + PCB_BITS;
            if tally.is_enough(needed) {
                return Ok(());
            }
            let total = 3 + usize::from(len);
            match reading.edc {
                T1Edc::Lrc => {
                    look(reading, i + total, tally)?;
                    if lrc_of(reading, i..i + total + 1) != 0 {
                        return Err(Evidence::Against);
                    }
                    tally.bits += LRC_BITS;
                    i += total + 1;
                }
                T1Edc::Crc => {
                    look(reading, i + total + 1, tally)?;
                    i += total + 2;
                }
            }
            continue;
        }
        // T=0 header, then procedure bytes exactly as `procedure_byte` reads them.
        if !cla_plausible(first) {
            return Err(Evidence::Against);
        }
        let ins_byte = look(reading, i + 1, tally)?;
        if !ins::is_valid(ins_byte) {
            return Err(Evidence::Against);
        }
        look(reading, i + 2, tally)?;
        look(reading, i + 3, tally)?;
        let mut remaining = data_len(look(reading, i + 4, tally)?);
        i += 5;
        loop {
            if tally.is_enough(needed) {
                return Ok(());
            }
            let procedure = look(reading, i, tally)?;
            let text = text_at(reading, i);
            i += 1;
            if procedure == 0x60 {
                tally.add_ack(text);
            } else if procedure == ins_byte {
                tally.add_ack(text);
                i += remaining;
                remaining = 0;
            } else if procedure == ins_byte ^ 0xFF {
                tally.add_ack(text);
                i += 1;
                remaining = remaining.saturating_sub(1);
            } else if is_sw1(procedure) {
                look(reading, i, tally)?;
                i += 1;
                tally.add_sw1(text);
                break;
            } else {
                return Err(Evidence::Against);
            }
        }
    }
}

/// The ATR cut short by the end of input at the start of `window`, as a frame.
fn truncated_atr_frame(start: StreamOffset, window: &[u8]) -> Option<Frame> {
    let first = *window.first()?;
    if !is_ts(first) || window.len() < 2 {
        return None;
    }
    let mut frame = atr::frame(start, window.get(..MAX_ATR_LEN).unwrap_or(window));
    if frame.status != FrameStatus::Truncated {
        return None;
    }
    frame.protocol = Protocol::Iso7816Line;
    Some(frame)
}

/// TS as a direct-convention UART reads it: 3B, 3F, or 03 (3F sent in inverse convention).
fn is_ts(raw: u8) -> bool {
    (raw == 0x3B) | (raw == 0x3F) | (raw == 0x03)
}

/// Printable ASCII, tab, CR or LF: what a boot log or a shell sends.
fn is_text(raw: u8) -> bool {
    TEXT.get(usize::from(raw)).copied().unwrap_or(false)
}

/// 20-7F: the raw CLA and INS of a header hunting does not take when both are.
fn is_printable(raw: u8) -> bool {
    (0x20..=0x7F).contains(&raw)
}

/// [`is_text`] of every byte value (a lookup is cheaper than the comparisons).
const TEXT: [bool; 256] = {
    let mut table = [false; 256];
    let mut raw = 0;
    while raw < 256 {
        table[raw] = matches!(raw as u8, 0x20..=0x7E | b'\t' | b'\r' | b'\n');
        raw += 1;
    }
    table
};

/// `raw` decoded from the inverse convention when `inverted`.
fn decode_as(raw: u8, inverted: bool) -> u8 {
    if inverted {
        INVERSE.get(usize::from(raw)).copied().unwrap_or(raw)
    } else {
        raw
    }
}

/// [`from_inverse_convention`] of every byte value: x86 has no bit-reverse instruction, and
/// hunting decodes at every 03 it meets.
const INVERSE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut raw = 0;
    while raw < 256 {
        table[raw] = (!(raw as u8)).reverse_bits();
        raw += 1;
    }
    table
};

/// A CLA the state machine reads as the start of a T=0 header (not reserved, not FF = PPS).
fn cla_plausible(cla: u8) -> bool {
    // Reserved (20-3F) and invalid (FF) classes, as `Cla::decode` has them.
    !matches!(cla, 0x20..=0x3F | 0xFF)
}

/// Data bytes a T=0 header announces in P3 (00 means 256).
fn data_len(p3: u8) -> usize {
    if p3 == 0 { 256 } else { usize::from(p3) }
}

/// 0x01 in every byte of a `u64`.
const LANES: u64 = 0x0101_0101_0101_0101;

/// 0x80 in each byte of `x` that is zero; bytes above (more significant than) the lowest
/// zero byte may be flagged wrongly. So such masks are supersets: they may be or-ed and
/// and-ed with each other, and each flag gets a closer look.
fn some_zero_byte(x: u64) -> u64 {
    x.wrapping_sub(LANES) & !x & (LANES << 7)
}

/// 0x80 in each byte of `x` that is 20-7F ([`is_printable`]), exactly.
fn printable(x: u64) -> u64 {
    let high = LANES << 7;
    // Bit 8 clear, and bit 6 or 7 set (adding 7F to x & 60 carries into bit 8 then).
    !x & (x & (0x60 * LANES)).wrapping_add(0x7F * LANES) & high
}

/// The 8 bytes of `window` from `at`, little-endian (byte `at` lowest).
fn word(window: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = window.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Positions at the start of `window` that start no ATR and no T=0 exchange hunting would
/// take. Tests 8 positions at a time, in the bytes of a `u64`, for what every start needs: a
/// TS, or an INS equal to the byte 5 later (the ACK; equality survives inverse-convention
/// decoding, a bijection, so raw bytes do). The few positions that pass get a closer look
/// (`t0_position`). This is where hunting spends its time on a line without card traffic.
fn t0_dead_prefix(window: &[u8], inverted: bool) -> usize {
    let mut p = match t0_dead_lanes(window, inverted) {
        Ok(live) => return live,
        Err(stop) => stop,
    };
    'blocks: while let Some(block) = window.get(p..p + 16) {
        let (Some(starts), Some(ins), Some(acks)) =
            (word(block, 0), word(block, 1), word(block, 5))
        else {
            break;
        };
        let mut acked = some_zero_byte(ins ^ acks);
        if acked != 0 {
            // Text repeats letters 4 bytes apart all the time; random bytes rarely do.
            acked &= !(printable(starts) & printable(ins));
        }
        let mut live = some_zero_byte((starts | (0x04 * LANES)) ^ (0x3F * LANES))
            | some_zero_byte(starts ^ (0x03 * LANES))
            | acked;
        // Every real candidate is flagged; flags above the lowest may be false, which the
        // closer look sorts out. Little-endian: the earliest position is the lowest.
        while live != 0 {
            let k = (live.trailing_zeros() / 8) as usize;
            live &= live - 1;
            // Most flagged positions are text (a letter repeated 4 bytes later) or a TS with
            // an impossible TA1 or TD1: rule those out here, without a branch per test
            // (`t0_position` says the same, slower).
            if block
                .get(k..k + 6)
                .is_some_and(|head| quickly_dead(head, inverted))
            {
                continue;
            }
            let q = p + k;
            match t0_position(window, q, inverted) {
                Position::Dead(next) if next > q + 1 => {
                    p = next;
                    continue 'blocks;
                }
                Position::Dead(_) => {}
                Position::Live => return q,
            }
        }
        p += 8;
    }
    loop {
        match t0_position(window, p, inverted) {
            Position::Dead(next) => p = next,
            Position::Live => return p,
        }
    }
}

/// The branch-free first look `t0_dead_prefix` gives a flagged position: dead when `head`
/// (its first six bytes) is neither a TS that may start an ATR nor a plausible T=0 header
/// with its ACK.
fn quickly_dead(head: &[u8], inverted: bool) -> bool {
    let &[cla, ins, p1, p2, p3, ack] = head else {
        return false;
    };
    let ts = is_ts(cla);
    let no_atr = ts && atr_ruled_out([cla, ins, p1, p2, p3, ack]);
    let no_exchange = (ins != ack)
        | !cla_plausible(decode_as(cla, inverted))
        | !ins::is_valid(decode_as(ins, inverted))
        | (is_printable(cla) & is_printable(ins))
        | (is_text(cla) & is_text(ins) & is_text(p1) & is_text(p2) & is_text(p3));
    (!ts | no_atr) & no_exchange
}

/// `t0_dead_prefix` sixteen positions per step in SIMD lanes (`wide`): the header tests of
/// `quickly_dead` but the all-text one (rarely decisive, and the costliest in lanes), and
/// for P3 = 00 (256 data bytes: the runs of 00 binary protocols are full of) the SW1 test of
/// `t0_position` when the byte 262 later is held. A flagged TS gets the usual looks; a
/// flagged header only the rest of them (`quickly_dead`, SW1). The lanes hold raw bytes: in
/// the inverse convention each test is rewritten on the raw bits (`lanes_cla_implausible`,
/// `lanes_ins_invalid`, `lanes_sw1`).
/// `Ok(live)`: the first position that needs a real look; `Err(stop)`: where the lanes
/// stopped (too few bytes left for sixteen headers), all positions before it dead.
fn t0_dead_lanes(window: &[u8], inverted: bool) -> Result<usize, usize> {
    // Header, ACK and, for P3 = 00, SW1 after 256 data bytes.
    const SW1_AFTER_256: usize = 6 + 256;
    let mut p = 0;
    'groups: while let Some(group) = window.get(p..p + 16 + 5) {
        let lanes = |offset: usize| lanes_at(group, offset);
        let (cla, ins, p3) = (lanes(0), lanes(1), lanes(4));
        let ts = lanes_eq(cla, 0x3B) | lanes_eq(cla, 0x3F) | lanes_eq(cla, 0x03);
        let acked = ins.simd_eq(lanes(5));
        // Most groups hold neither a TS nor an INS repeated 4 bytes later: nothing to refine.
        if (ts | acked).to_bitmask() == 0 {
            p += 16;
            continue;
        }
        let printable = |x: u8x16| lanes_masked_eq(x, 0x80, 0) & !lanes_masked_eq(x, 0xE0, 0);
        let mut exchange = acked
            & !lanes_cla_implausible(cla, inverted)
            & !lanes_ins_invalid(ins, inverted)
            & !(printable(cla) & printable(ins));
        if let Some(far) = window.get(p + SW1_AFTER_256..p + SW1_AFTER_256 + 16) {
            let sw1 = lanes_at(far, 0);
            let no_data = lanes_eq(p3, if inverted { 0xFF } else { 0x00 });
            exchange &= !no_data | lanes_sw1(sw1, inverted);
        }
        // The lanes made every test of `quickly_dead` for a header but the all-text one, which
        // can hold only if CLA or INS is a tab or a line end (two printable bytes are out).
        let control_text = |x: u8x16| lanes_eq(x, b'\t') | lanes_eq(x, b'\n') | lanes_eq(x, b'\r');
        let settled = (exchange & !(control_text(cla) | control_text(ins))).to_bitmask();
        let ts = ts.to_bitmask();
        let mut live = ts | exchange.to_bitmask();
        while live != 0 {
            let k = live.trailing_zeros();
            let q = p + k as usize;
            live &= live - 1;
            if (ts | !settled) & (1 << k) != 0
                && window
                    .get(q..q + 6)
                    .is_some_and(|head| quickly_dead(head, inverted))
            {
                continue;
            }
            // Not a TS: what `t0_position` would add to `quickly_dead` is the SW1 test.
            let position = if ts & (1 << k) == 0 {
                t0_sw1_position(window, q, inverted)
            } else {
                t0_position(window, q, inverted)
            };
            match position {
                Position::Dead(next) if next > q + 1 => {
                    p = next;
                    continue 'groups;
                }
                Position::Dead(_) => {}
                Position::Live => return Ok(q),
            }
        }
        p += 16;
    }
    Err(p)
}

// Lane forms of `cla_plausible`, `ins::is_valid` and `is_sw1` on raw bytes. In the inverse
// convention a logical byte is the raw one inverted and bit-reversed, so logical bit 7-k is
// raw bit k inverted: a test on the logical high nibble becomes one on the raw low nibble.

/// Lanes whose CLA `cla_plausible` rejects (20-3F or FF logical).
fn lanes_cla_implausible(cla: u8x16, inverted: bool) -> u8x16 {
    if inverted {
        // Logical 001x_xxxx: raw bits 0, 1, 2 = 1, 1, 0. Logical FF: raw 00.
        lanes_masked_eq(cla, 0x07, 0x03) | lanes_eq(cla, 0x00)
    } else {
        lanes_masked_eq(cla, 0xE0, 0x20) | lanes_eq(cla, 0xFF)
    }
}

/// Lanes whose INS `ins::is_valid` rejects (6X or 9X logical).
fn lanes_ins_invalid(ins: u8x16, inverted: bool) -> u8x16 {
    if inverted {
        // Logical 0110: raw low nibble 1001; logical 1001: raw 0110.
        lanes_masked_eq(ins, 0x0F, 0x09) | lanes_masked_eq(ins, 0x0F, 0x06)
    } else {
        lanes_masked_eq(ins, 0xF0, 0x60) | lanes_masked_eq(ins, 0xF0, 0x90)
    }
}

/// Lanes that `is_sw1` accepts (61-6F or 90-9F logical).
fn lanes_sw1(sw1: u8x16, inverted: bool) -> u8x16 {
    if inverted {
        // Logical 6X with X not 0: raw low nibble 1001, raw high nibble not 1111.
        (lanes_masked_eq(sw1, 0x0F, 0x09) & !lanes_masked_eq(sw1, 0xF0, 0xF0))
            | lanes_masked_eq(sw1, 0x0F, 0x06)
    } else {
        lanes_between(sw1, 0x60, 0x70) | lanes_between(sw1, 0x8F, 0xA0)
    }
}

/// What `t0_dead_prefix` finds at one position.
enum Position {
    /// Dead, as is every position before this one.
    Dead(usize),
    /// Needs a real look, or more bytes.
    Live,
}

/// One position of `t0_dead_prefix`, exactly: dead unless it may start an ATR, or it has a
/// plausible CLA and INS, a header not all text, the ACK in place and (once it has arrived)
/// SW1 where P3 puts it.
fn t0_position(window: &[u8], p: usize, inverted: bool) -> Position {
    let Some(header) = window.get(p..p + 6) else {
        return Position::Live;
    };
    let [cla, ins, p1, p2, p3, ack] = <[u8; 6]>::try_from(header).unwrap_or([0; 6]);
    // 3B and 3F are reserved CLAs; 03 may still start an exchange.
    if is_ts(cla) && atr_possible(window.get(p..).unwrap_or(&[])) {
        return Position::Live;
    }
    // Most positions that get here are text (a letter repeated 4 bytes later): decide
    // without a branch per test.
    let dead = (ins != ack)
        | !cla_plausible(decode_as(cla, inverted))
        | !ins::is_valid(decode_as(ins, inverted))
        | (is_printable(cla) & is_printable(ins))
        | (is_text(cla) & is_text(ins) & is_text(p1) & is_text(p2) & is_text(p3));
    if dead {
        return Position::Dead(p + 1);
    }
    t0_sw1_position(window, p, inverted)
}

/// The rest of `t0_position`: SW1 where P3 puts it.
fn t0_sw1_position(window: &[u8], p: usize, inverted: bool) -> Position {
    let byte = |i: usize| window.get(i).copied();
    let (Some(cla), Some(ins), Some(p3)) = (byte(p), byte(p + 1), byte(p + 4)) else {
        return Position::Live;
    };
    let n = data_len(decode_as(p3, inverted));
    match byte(p + 6 + n) {
        Some(sw1) if is_sw1(decode_as(sw1, inverted)) => Position::Live,
        Some(sw1) if cla == ins && sw1 == cla => {
            // Inside a run of one byte value b (an idle line: 00...), every start whose SW1
            // slot is still in the run is dead: b is a valid INS, so it is not SW1.
            let run = window
                .get(p..)
                .unwrap_or(&[])
                .iter()
                .take_while(|raw| **raw == cla)
                .count();
            Position::Dead((p + run).saturating_sub(6 + n).max(p + 1))
        }
        Some(_) => Position::Dead(p + 1),
        None => Position::Live,
    }
}

/// True when the TS `head[0]` starts no ATR, judged from T0, TA1 and TD1 alone (TD1 is
/// within the first 6 bytes): TA1 codes an RFU Fi or Di, or TD1 a reserved protocol.
/// Branch-free, for `t0_dead_prefix`; [`atr::probe`] rules the same and more.
fn atr_ruled_out(head: [u8; 6]) -> bool {
    let [ts, t0, ta1, ..] = head;
    let decode = |raw: u8| decode_as_branchless(raw, ts == 0x03);
    let (t0, ta1) = (decode(t0), decode(ta1));
    let td1 = decode(
        head.get(2 + usize::from(INTERFACE_BYTES_BEFORE_TD[usize::from((t0 >> 4) & 0x07)]))
            .copied()
            .unwrap_or(0),
    );
    let bad_ta1 = (t0 & 0x10 != 0) & BAD_TA1.get(usize::from(ta1)).copied().unwrap_or(false);
    let bad_td1 = (t0 & 0x80 != 0) & ((BAD_TD1_PROTOCOLS >> (td1 & 0x0F)) & 1 != 0);
    bad_ta1 | bad_td1
}

/// [`decode_as`] with a select instead of a branch.
fn decode_as_branchless(raw: u8, inverted: bool) -> u8 {
    let decoded = INVERSE.get(usize::from(raw)).copied().unwrap_or(raw);
    if inverted { decoded } else { raw }
}

/// How many of TA, TB, TC a Y nibble announces, by its low three bits (TD comes after them):
/// a lookup, since baseline x86-64 has no population count instruction.
const INTERFACE_BYTES_BEFORE_TD: [u8; 8] = [0, 1, 1, 2, 1, 2, 2, 3];

/// TA1 values whose Fi or Di is RFU.
const BAD_TA1: [bool; 256] = {
    let mut table = [false; 256];
    let mut ta1 = 0;
    while ta1 < 256 {
        let fi_rfu = matches!(ta1 >> 4, 7 | 8 | 14 | 15);
        let di_rfu = matches!(ta1 & 0x0F, 0 | 10..=15);
        table[ta1] = fi_rfu || di_rfu;
        ta1 += 1;
    }
    table
};

/// Bit T set for the protocols no TD1 announces: reserved and RFU (2-13), and T=15.
const BAD_TD1_PROTOCOLS: u16 = 0b1011_1111_1111_1100;

/// False when the TS at `window[0]` starts no ATR hunting would take: none that
/// [`atr::probe`] accepts, or a weak one (no or a wrong TCK) whose next byte(s) already
/// contradict it the way `follow` would. True when unsure (bytes missing).
#[cold]
fn atr_possible(window: &[u8]) -> bool {
    let inverted = window.first() == Some(&0x03);
    // The convention follows TS, so it is not predictable: decode without branching.
    let byte = |i: usize| {
        window
            .get(i)
            .map(|raw| decode_as_branchless(*raw, inverted))
    };
    // Most TS bytes in noise fail on TA1 or TD1: check those before a whole probe.
    if let Some(head) = window
        .get(..6)
        .and_then(|head| <[u8; 6]>::try_from(head).ok())
    {
        if atr_ruled_out(head) {
            return false;
        }
    }
    let held = window.get(..MAX_ATR_LEN).unwrap_or(window);
    let mut decoded = [0u8; MAX_ATR_LEN];
    let logical = if inverted {
        for (slot, raw) in decoded.iter_mut().zip(held) {
            *slot = decode_as(*raw, true);
        }
        decoded.get(..held.len()).unwrap_or(&[])
    } else {
        held
    };
    let outline = match atr::probe(logical) {
        AtrProbe::NotAtr => return false,
        AtrProbe::Incomplete { .. } => return true,
        AtrProbe::Complete(outline) => outline,
    };
    if outline.tck == TckStatus::Valid {
        return true;
    }
    // A weak ATR needs evidence after it; the first unit must at least start right.
    let byte = |i: usize| byte(outline.len + i);
    let Some(first) = byte(0) else {
        return true;
    };
    let second = byte(1);
    if first == 0xFF {
        // PPS0 bit 8 is reserved.
        return second.is_none_or(|pps0| pps0 & 0x80 == 0);
    }
    if outline.first_protocol == TransmissionProtocol::T1 {
        return nad_plausible(first)
            && second.is_none_or(pcb_valid)
            && byte(2).is_none_or(|len| len != 0xFF);
    }
    let Some(ins_byte) = second else {
        return cla_plausible(first);
    };
    if !cla_plausible(first) || !ins::is_valid(ins_byte) {
        return false;
    }
    byte(5).is_none_or(|procedure| {
        procedure == 0x60
            || procedure == ins_byte
            || procedure == ins_byte ^ 0xFF
            || is_sw1(procedure)
    })
}

/// Positions at the start of `window` that start no ATR and no T=1 block hunting would
/// take: not a TS, and no plausible NAD, valid PCB and LEN other than FF. Tests 8 positions
/// at a time first (on bytes decoded from the inverse convention when `inverted`): a TS, or
/// NAD bits 8 and 4 clear with a PCB of a valid class; `t1_position` looks closer.
fn t1_dead_prefix(window: &[u8], inverted: bool) -> usize {
    let mut p = 0;
    while let Some(block) = window.get(p..p + 16) {
        let Some(starts) = word(block, 0) else {
            break;
        };
        let (nads, pcbs) = if inverted {
            let mut logical = [0u8; 9];
            for (slot, raw) in logical.iter_mut().zip(block) {
                *slot = decode_as(*raw, true);
            }
            (word(&logical, 0), word(&logical, 1))
        } else {
            (Some(starts), word(block, 1))
        };
        let (Some(nads), Some(pcbs)) = (nads, pcbs) else {
            break;
        };
        // Or-ed and and-ed supersets: every real candidate is flagged, some flags are false.
        // PCB: I-block (0 N(S) M 00000), R-block (100 N(R) 00xx), S-block (11 x 000yy), E4.
        let pcb = some_zero_byte(pcbs & (0x9F * LANES))
            | some_zero_byte((pcbs & (0xEC * LANES)) ^ (0x80 * LANES))
            | some_zero_byte((pcbs & (0xDC * LANES)) ^ (0xC0 * LANES))
            | some_zero_byte(pcbs ^ (0xE4 * LANES));
        let mut live = some_zero_byte((starts | (0x04 * LANES)) ^ (0x3F * LANES))
            | some_zero_byte(starts ^ (0x03 * LANES))
            | (some_zero_byte(nads & (0x88 * LANES)) & pcb);
        while live != 0 {
            let q = p + (live.trailing_zeros() / 8) as usize;
            live &= live - 1;
            if t1_position_live(window, q, inverted) {
                return q;
            }
        }
        p += 8;
    }
    while !t1_position_live(window, p, inverted) {
        p += 1;
    }
    p
}

/// One position of `t1_dead_prefix`, exactly: live when it may start an ATR, or has a
/// plausible NAD, a valid PCB and a LEN other than FF (or the bytes to tell are missing).
fn t1_position_live(window: &[u8], p: usize, inverted: bool) -> bool {
    let Some(&raw) = window.get(p) else {
        return true;
    };
    if is_ts(raw) && atr_possible(window.get(p..).unwrap_or(&[])) {
        return true;
    }
    let logical = |i: usize| window.get(i).map(|raw| decode_as(*raw, inverted));
    nad_plausible(decode_as(raw, inverted))
        && logical(p + 1).is_none_or(pcb_valid)
        && logical(p + 2) != Some(0xFF)
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

    fn run(bytes: &[u8]) -> Vec<Frame> {
        let mut framer = LineFramer::new();
        let mut out = Vec::new();
        framer.feed(0, bytes, &mut out);
        framer.flush(&mut out);
        out
    }

    fn run_split(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
        let mut framer = LineFramer::new();
        let mut out = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            framer.feed(start as u64, &bytes[start..cut], &mut out);
            assert!(framer.pending_len() <= MAX_PENDING);
            start = cut;
        }
        framer.flush(&mut out);
        out
    }

    fn kinds(frames: &[Frame]) -> Vec<&'static str> {
        frames.iter().map(|f| f.kind).collect()
    }

    fn with_lrc(mut block: Vec<u8>) -> Vec<u8> {
        let lrc = block.iter().fold(0u8, |a, b| a ^ b);
        block.push(lrc);
        block
    }

    fn field<'a>(frame: &'a Frame, name: &str) -> &'a Field {
        frame
            .fields()
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name} in {frame:?}"))
    }

    /// T=0-only ATR 3B 02 14 50 (no TCK), then SELECT with a 2-byte FID, ACK, data, 61 10,
    /// then GET RESPONSE with Le=10 (the reference's 61XX procedure), 16 bytes, 90 00.
    fn t0_session() -> Vec<u8> {
        let mut s = h("3B 02 14 50  00 A4 00 00 02  A4  3F 00  61 10");
        s.extend(h("00 C0 00 00 10  C0"));
        s.extend(0..16u8);
        s.extend(h("90 00"));
        s
    }

    #[test]
    fn t0_exchange_with_get_response() {
        let frames = run(&t0_session());
        assert_eq!(
            kinds(&frames),
            [
                "atr",
                "header",
                "procedure",
                "data",
                "sw",
                "header",
                "procedure",
                "data",
                "sw"
            ]
        );
        assert!(frames.iter().all(|f| f.status.is_ok()));
        assert!(frames.iter().all(|f| f.protocol == Protocol::Iso7816Line));
        assert_eq!(frames[1].span, 4..9);
        assert!(frames[1].summary().starts_with("SELECT header 00 A4"));
        assert_eq!(frames[3].span, 10..12);
        assert!(
            frames[4]
                .summary()
                .starts_with("6110 16 more bytes available: send GET RESPONSE with Le=10")
        );
        assert_eq!(
            field(&frames[4], "next step").value,
            "send GET RESPONSE 00 C0 00 00 10 (same CLA and channel)"
        );
        assert_eq!(frames[7].span.end - frames[7].span.start, 16);
        assert!(frames[7].summary().contains("likely card → reader"));
        assert!(frames[8].summary().starts_with("9000"));
    }

    #[test]
    fn sw1_68_is_decoded_as_a_status_word() {
        // CLA 0C (SM, header authenticated) answered 68 82 right after the header.
        let frames = run(&h("3B 02 14 50  0C A4 04 00 02  68 82"));
        assert_eq!(kinds(&frames), ["atr", "header", "sw"]);
        let sw = &frames[2];
        assert_eq!(sw.span, 9..11);
        assert!(
            sw.summary()
                .starts_with("6882 Secure messaging not supported (after SELECT, CLA 0C)"),
            "{}",
            sw.summary()
        );
        assert!(
            field(sw, "SW")
                .value
                .contains("Secure messaging not supported")
        );
        assert!(
            field(sw, "context")
                .value
                .contains("secure messaging bits set in CLA")
        );
        assert_eq!(field(sw, "command").span, 4..9);
    }

    #[test]
    fn null_bytes_and_single_byte_acks() {
        // VERIFY with 2 data bytes sent one at a time (ACK = INS xor FF = DF), NULLs between.
        let frames = run(&h("3B 02 14 50  00 20 00 01 02  60 60 DF 31 DF 32 90 00"));
        assert_eq!(
            kinds(&frames),
            [
                "atr",
                "header",
                "procedure",
                "procedure",
                "procedure",
                "data",
                "procedure",
                "data",
                "sw"
            ]
        );
        assert!(frames[2].summary().starts_with("NULL 60"));
        assert!(frames[4].summary().contains("INS xor FF"));
        assert_eq!(frames[5].span, 12..13);
        assert!(frames[8].summary().starts_with("9000"));
    }

    #[test]
    fn six_c_suggests_resend() {
        let frames = run(&h("3B 02 14 50  00 B0 00 00 00  6C 10"));
        let sw = frames.last().unwrap();
        assert!(sw.summary().contains("Wrong Le field: 16 bytes"));
        assert_eq!(
            field(sw, "next step").value,
            "re-send 00 B0 00 00 with P3=10"
        );
    }

    #[test]
    fn pps_then_t1_blocks() {
        // Storage-card ATR offers T=0 and T=1 (TCK valid); PPS to T=1 with PPS1=13:
        // PCK = FF ^ 11 ^ 13 = FD.
        let mut s = h("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68");
        s.extend(h("FF 11 13 FD  FF 11 13 FD"));
        s.extend(with_lrc(h("00 00 05 00 B0 00 00 10")));
        s.extend(with_lrc(h("00 40 04 AA BB 90 00")));
        s.extend(with_lrc(h("00 81 00")));
        s.extend(with_lrc(h("00 C3 01 02")));
        let frames = run(&s);
        assert_eq!(
            kinds(&frames),
            [
                "atr", "pps", "pps", "i-block", "i-block", "r-block", "s-block"
            ]
        );
        assert!(frames.iter().all(|f| f.status.is_ok()), "{frames:#?}");
        assert_eq!(frames[1].summary(), "PPS request T=1");
        assert!(frames[2].summary().contains("accepted"));
        assert!(field(&frames[1], "PPS1").value.contains("Fi=372 Di=4"));
        assert!(
            frames[3].summary().contains("READ BINARY"),
            "{}",
            frames[3].summary()
        );
        assert!(
            frames[4].summary().contains("9000"),
            "{}",
            frames[4].summary()
        );
        assert!(frames[5].summary().contains("EDC/parity error"));
        assert!(
            frames[6]
                .summary()
                .contains("WTX request (WTX multiplier = 2)")
        );
    }

    #[test]
    fn corrupt_checksums_are_reported() {
        let mut s = h("3B 02 14 50  FF 10 13 FD"); // PCK should be FF^10^13 = FC
        s.truncate(8);
        let frames = run(&s);
        assert_eq!(
            frames[1].status,
            FrameStatus::BadChecksum {
                expected: 0xFC,
                found: 0xFD
            }
        );
        // T=1 (JCOP ATR) block with a wrong LRC.
        let mut s = h("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B7");
        let mut block = with_lrc(h("00 00 01 AA"));
        *block.last_mut().unwrap() ^= 0x01;
        s.extend(block);
        let frames = run(&s);
        assert_eq!(kinds(&frames), ["atr", "i-block"]);
        assert!(matches!(frames[1].status, FrameStatus::BadChecksum { .. }));
        // ATR with a bad TCK.
        let mut s = h("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B6");
        s.extend(with_lrc(h("00 00 00")));
        let frames = run(&s);
        assert!(matches!(
            frames[0].status,
            FrameStatus::BadChecksum {
                expected: 0xB7,
                found: 0xB6
            }
        ));
        assert_eq!(frames[1].kind, "i-block");
    }

    #[test]
    fn inverse_convention_read_as_direct() {
        let logical = h("3F 02 14 50  00 A4 00 00 02  A4  3F 00  90 00");
        let raw: Vec<u8> = logical
            .iter()
            .map(|b| from_inverse_convention(*b))
            .collect();
        assert_eq!(raw[0], 0x03);
        let frames = run(&raw);
        assert_eq!(kinds(&frames), ["atr", "header", "procedure", "data", "sw"]);
        assert!(
            field(&frames[0], "TS")
                .value
                .contains("bit-reversing and inverting")
        );
        assert!(frames[1].summary().contains("SELECT header 00 A4 00 00 02"));
        assert!(frames[4].summary().starts_with("9000"));
        assert!(
            frames[4]
                .summary()
                .ends_with("[inverse convention, decoded]")
        );
    }

    #[test]
    fn garbage_before_and_between() {
        let mut s = h("11 22 55 FF 00");
        s.extend(t0_session());
        let clean = run(&t0_session());
        let frames = run(&s);
        assert_eq!(kinds(&frames), kinds(&clean));
        assert_eq!(frames[0].span, 5..9);
        // Garbage between exchanges: an invalid INS (68) breaks the header; the framer hunts
        // and resyncs on the next whole exchange.
        let mut s = h("3B 02 14 50  00 68 00 00 00 00 00");
        s.extend(h("00 B0 00 00 02  B0  AA BB  90 00"));
        let frames = run(&s);
        assert_eq!(kinds(&frames), ["atr", "header", "procedure", "data", "sw"]);
        assert_eq!(frames[1].span, 11..16);
    }

    #[test]
    fn unexpected_procedure_byte_is_malformed_then_resyncs() {
        let mut s = h("3B 02 14 50  00 A4 00 00 02  12");
        s.extend(h("00 B0 00 00 02  B0  AA BB  90 00"));
        let frames = run(&s);
        assert_eq!(
            kinds(&frames),
            [
                "atr",
                "header",
                "procedure",
                "header",
                "procedure",
                "data",
                "sw"
            ]
        );
        assert!(matches!(frames[2].status, FrameStatus::Malformed(_)));
    }

    #[test]
    fn card_reset_mid_session_gives_a_new_atr() {
        let mut s = t0_session();
        s.extend(h("00 A4 00 00 02")); // header, then the card is reset
        s.extend(h("3B 02 14 50  00 B0 00 00 01  B0  AA  90 00"));
        let frames = run(&s);
        let k = kinds(&frames);
        assert_eq!(k.iter().filter(|x| **x == "atr").count(), 2, "{k:?}");
        assert_eq!(k.last(), Some(&"sw"));
    }

    #[test]
    fn starting_mid_session_without_atr() {
        let frames = run(&h("A4 00 00 02 00 A4 00 00 02  A4  3F 00  90 00"));
        assert_eq!(kinds(&frames), ["header", "procedure", "data", "sw"]);
        assert_eq!(frames[0].span, 4..9);
    }

    #[test]
    fn truncated_units_at_flush() {
        let f = run(&h("3B F8 13 00"));
        assert_eq!(kinds(&f), ["atr"]);
        assert_eq!(f[0].status, FrameStatus::Truncated);
        let f = run(&h("3B 02 14 50  00 A4 00"));
        assert_eq!(f[1].kind, "header");
        assert_eq!(f[1].status, FrameStatus::Truncated);
        assert_eq!(f[1].span, 4..7);
        let f = run(&h("3B 02 14 50  00 A4 00 00 02  68"));
        let last = f.last().unwrap();
        assert_eq!(last.kind, "sw");
        assert_eq!(last.status, FrameStatus::Truncated);
        assert!(
            last.summary()
                .contains("Functions in CLA not supported (SW2 missing)")
        );
        let f = run(&h("3B 02 14 50  00 A4 00 00 02  A4  3F"));
        assert_eq!(f.last().unwrap().kind, "data");
        assert_eq!(f.last().unwrap().status, FrameStatus::Truncated);
        let f = run(&h("3B 02 14 50  FF 11"));
        assert_eq!(f.last().unwrap().kind, "pps");
        assert_eq!(f.last().unwrap().status, FrameStatus::Truncated);
    }

    #[test]
    fn reset_forgets_state() {
        let mut framer = LineFramer::new();
        let mut out = Vec::new();
        framer.feed(0, &h("3F 02 14 50"), &mut out);
        assert_eq!(framer.line_protocol(), Some(LineProtocol::T0));
        framer.reset();
        assert_eq!(framer.line_protocol(), None);
        assert_eq!(framer.pending_len(), 0);
        assert!(!framer.is_inverted());
    }

    #[test]
    fn gap_in_offsets_resyncs() {
        let mut framer = LineFramer::new();
        let mut out = Vec::new();
        assert_eq!(framer.protocol(), Protocol::Iso7816Line);
        framer.feed(0, &h("3B 02 14 50  00 B0 00 00 10  B0  01 02"), &mut out);
        // 14 data bytes never arrive; the next chunk starts 100 bytes later.
        framer.feed(112, &h("00 B0 00 00 01  B0  AA  90 00"), &mut out);
        framer.flush(&mut out);
        assert_eq!(
            kinds(&out),
            [
                "atr",
                "header",
                "procedure",
                "header",
                "procedure",
                "data",
                "sw"
            ]
        );
        assert_eq!(out[3].span, 112..117);
        assert!(out.iter().all(|f| f.status.is_ok()));
    }

    #[test]
    fn split_known_session_everywhere() {
        let s = t0_session();
        let whole = run(&s);
        for cut in 0..=s.len() {
            assert_eq!(run_split(&s, &[cut]), whole, "cut at {cut}");
        }
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(h("3B 02 14 50")),
            Just(h("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B7")),
            Just(h(
                "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68"
            )),
            Just(h("00 A4 04 00 02  A4  3F 00  61 10")),
            Just(h("0C A4 04 00 02  68 82")),
            Just(h("00 20 00 01 02  60 DF 31 DF 32 90 00")),
            Just(h("FF 11 13 FD")),
            Just(with_lrc(h("00 00 05 00 B0 00 00 10"))),
            Just(with_lrc(h("00 40 04 AA BB 90 00"))),
            proptest::collection::vec(any::<u8>(), 0..12),
        ]
    }

    fn check_spans(frames: &[Frame], end: u64) {
        fn walk(fields: &[Field], end: u64) {
            for f in fields {
                assert!(f.span.start <= f.span.end && f.span.end <= end, "{f:?}");
                walk(&f.children, end);
            }
        }
        for f in frames {
            assert!(f.span.start <= f.span.end && f.span.end <= end, "{f:?}");
            walk(f.fields(), end);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_split_is_stable(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let whole = run(&bytes);
            check_spans(&whole, bytes.len() as u64);
            prop_assert_eq!(run_split(&bytes, &cuts), whole);
        }

        #[test]
        fn structured_streams_split_stable(
            parts in proptest::collection::vec(fragment(), 0..12),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            inverse in any::<bool>(),
        ) {
            let mut bytes: Vec<u8> = parts.concat();
            if inverse {
                bytes = bytes.iter().map(|b| from_inverse_convention(*b)).collect();
            }
            let whole = run(&bytes);
            check_spans(&whole, bytes.len() as u64);
            prop_assert_eq!(run_split(&bytes, &cuts), whole);
        }
    }
    // ---- hunting on lines without card traffic -----------------------------------------

    fn xorshift(state: &mut u32) -> u8 {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        *state as u8
    }

    /// M-Bus frames, a boot log and idle runs: the kinds of traffic hunting sees most.
    fn non_card_traffic() -> Vec<u8> {
        let mut s = Vec::new();
        for _ in 0..100 {
            s.extend(b"boot: hello, this is the boot log of a device\r\n");
            s.extend(b"[    0.000000] Linux version 6.1.0 (gcc 12.2.0) #1 SMP PREEMPT\r\n");
            s.extend(h("68 04 0B 00 00 00"));
            s.extend(h(
                "68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16",
            ));
        }
        s.extend([0x00; 2000]);
        s.extend([0xFF; 2000]);
        s
    }

    #[test]
    fn non_card_traffic_gives_no_frames_and_a_session_after_it_is_found() {
        let noise = non_card_traffic();
        assert_eq!(run(&noise), []);
        let mut s = noise.clone();
        s.extend(t0_session());
        let frames = run(&s);
        assert_eq!(kinds(&frames), kinds(&run(&t0_session())));
        assert_eq!(frames[0].span.start, noise.len() as u64);
    }

    #[test]
    fn random_bytes_give_few_frames() {
        // Every 85 random bytes hold a TS and every 256 an ACK where one fits: hunting must
        // not take them (each costs frames and time).
        let mut state = 1;
        let noise: Vec<u8> = (0..1 << 18).map(|_| xorshift(&mut state)).collect();
        let frames = run(&noise);
        assert!(frames.len() < 60, "{} frames", frames.len());
    }

    #[test]
    fn weak_atr_after_noise_needs_what_follows() {
        // A T=0-only ATR (no TCK) after noise is taken once an exchange confirms it...
        let mut s = h("12 34 56");
        s.extend(t0_session());
        assert_eq!(run(&s)[0].span, 3..7);
        // ...but not when the bytes after it make no sense.
        let frames = run(&h("12 34 56  3B 02 14 50  22 44 66 88 AA CC EE 11 33 55"));
        assert!(frames.iter().all(|f| f.kind != "atr"), "{frames:#?}");
        // At the very start of the input (or after `flush`) it is taken at once.
        let mut framer = LineFramer::new();
        let mut out = Vec::new();
        framer.feed(0, &h("3B 02 14 50"), &mut out);
        assert_eq!(kinds(&out), ["atr"]);
    }

    #[test]
    fn lookup_tables_match_their_definitions() {
        for byte in 0..=255u8 {
            assert_eq!(
                cla_plausible(byte),
                !matches!(
                    Cla::decode(byte).kind,
                    ClassKind::Reserved | ClassKind::Invalid
                ),
                "{byte:02X}"
            );
            assert_eq!(decode_as(byte, true), from_inverse_convention(byte));
            assert_eq!(
                decode_as_branchless(byte, true),
                from_inverse_convention(byte)
            );
            assert_eq!(decode_as_branchless(byte, false), byte);
            assert_eq!(
                is_text(byte),
                matches!(byte, 0x20..=0x7E | b'\t' | b'\r' | b'\n')
            );
            assert_eq!(
                BAD_TA1[usize::from(byte)],
                atr::fi_from_code(byte >> 4).is_none() || atr::di_from_code(byte).is_none()
            );
            let word = u64::from_le_bytes([byte, 0x20, 0x7F, 0x1F, 0x80, byte ^ 0x40, 0, 0xFF]);
            for (k, raw) in word.to_le_bytes().into_iter().enumerate() {
                assert_eq!(printable(word) >> (8 * k + 7) & 1 == 1, is_printable(raw));
            }
        }
    }

    /// A framer in the hunting state with the given line settings.
    fn hunting_framer(protocol: Option<LineProtocol>, edc: T1Edc, inverted: bool) -> LineFramer {
        let mut framer = LineFramer::new();
        framer.protocol = protocol;
        framer.edc = edc;
        framer.inverted = inverted;
        framer.after_silence = false;
        framer
    }

    /// Bytes that often start candidates: TS, ACK-able headers, SW1, runs.
    fn candidate_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => any::<u8>(),
            1 => proptest::sample::select(vec![
                0x3B, 0x3F, 0x03, 0x00, 0xFF, 0x60, 0x61, 0x90, 0x9F, 0xA4, 0x5B, 0x20, 0x73, 0x81,
                0x11, 0x13, 0x80, 0x02, 0x40, 0xC3,
            ]),
        ];
        prop_oneof![
            proptest::collection::vec(byte, 0..90),
            (
                proptest::collection::vec(fragment(), 1..6),
                any::<u8>(),
                0usize..300
            )
                .prop_map(|(parts, fill, run)| {
                    let mut bytes = vec![fill; run % 40];
                    bytes.extend(parts.concat());
                    bytes
                }),
        ]
    }

    proptest! {
        #[test]
        fn quick_filter_never_skips_a_start_hunting_would_take(
            window in candidate_bytes(),
            protocol in prop_oneof![
                Just(None),
                Just(Some(LineProtocol::T0)),
                Just(Some(LineProtocol::T1)),
            ],
            crc in any::<bool>(),
            inverted in any::<bool>(),
        ) {
            let edc = if crc { T1Edc::Crc } else { T1Edc::Lrc };
            let framer = hunting_framer(protocol, edc, inverted);
            let dead = framer.dead_prefix(&window, 1000);
            prop_assert!(dead <= window.len());
            for p in 0..dead {
                let rest = &window[p..];
                for at_end in [false, true] {
                    let verdict = framer.judge(rest, 1000 + p as u64, at_end);
                    prop_assert!(matches!(verdict, HuntDecision::Reject), "position {p}, end {at_end}");
                }
            }
        }

        #[test]
        fn lrc_of_matches_the_logical_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            for inverted in [false, true] {
                let reading = Reading {
                    window: &bytes,
                    inverted,
                    protocol: LineProtocol::T1,
                    edc: T1Edc::Lrc,
                    pps: false,
                };
                let expected = bytes.iter().fold(0u8, |a, b| a ^ decode_as(*b, inverted));
                prop_assert_eq!(lrc_of(reading, 0..bytes.len()), expected);
            }
        }

        #[test]
        fn noisy_sessions_split_stable(
            parts in proptest::collection::vec(
                prop_oneof![
                    3 => fragment(),
                    1 => Just(b"boot: hello, this is the boot log\r\n".to_vec()),
                    1 => (any::<u8>(), 0usize..400).prop_map(|(b, n)| vec![b; n]),
                ],
                0..10,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let bytes: Vec<u8> = parts.concat();
            let whole = run(&bytes);
            check_spans(&whole, bytes.len() as u64);
            prop_assert_eq!(run_split(&bytes, &cuts), whole.clone());
            // Byte by byte goes through the pending window and replays only.
            let every: Vec<usize> = (0..bytes.len()).collect();
            prop_assert_eq!(run_split(&bytes, &every), whole);
        }
    }

    /// The lane forms of the header tests agree with the byte tests, in both conventions,
    /// for every byte value.
    #[test]
    fn lane_header_tests_match_byte_tests() {
        for inverted in [false, true] {
            for first in (0u8..=255).step_by(16) {
                let raw: [u8; 16] = std::array::from_fn(|k| first + k as u8);
                let lanes = u8x16::new(raw);
                let cla = lanes_cla_implausible(lanes, inverted).to_bitmask();
                let ins = lanes_ins_invalid(lanes, inverted).to_bitmask();
                let sw1 = lanes_sw1(lanes, inverted).to_bitmask();
                for (k, &b) in raw.iter().enumerate() {
                    let logical = decode_as(b, inverted);
                    assert_eq!((cla >> k) & 1 == 1, !cla_plausible(logical), "CLA {b:02X}");
                    assert_eq!((ins >> k) & 1 == 1, !ins::is_valid(logical), "INS {b:02X}");
                    assert_eq!((sw1 >> k) & 1 == 1, is_sw1(logical), "SW1 {b:02X}");
                }
            }
        }
    }
}
