//! Hunting for a start when the bytes stop making sense: an ATR, or a whole T=0 exchange or
//! T=1 block, taken only on enough evidence in the bytes after it (chance bits, `UNIT_BITS`,
//! `WEAK_ATR_BITS`), judged once per position.

use crate::decode::frame::{Frame, FrameStatus, Protocol, StreamOffset};
use crate::decode::iso7816::atr::{AtrProbe, MAX_ATR_LEN, T1Edc, TckStatus, TransmissionProtocol};
use crate::decode::iso7816::{atr, ins};

use super::prefilter::{atr_possible, t0_dead_prefix, t1_dead_prefix};
use super::{LineFramer, LineProtocol, MAX_PENDING, State, is_sw1, nad_plausible, pcb_valid};

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
pub(super) enum HuntDecision {
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
pub(super) struct Reading<'a> {
    pub(super) window: &'a [u8],
    pub(super) inverted: bool,
    pub(super) protocol: LineProtocol,
    pub(super) edc: T1Edc,
    pub(super) pps: bool,
}
impl LineFramer {
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
    pub(super) fn hunt_in_place(
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
    pub(super) fn hunt(&mut self, out: &mut Vec<Frame>) {
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
    pub(super) fn settle(&mut self, verdict: HuntDecision, out: &mut Vec<Frame>) {
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
    pub(super) fn at_end(&self) -> bool {
        self.draining && self.replay.is_empty()
    }

    pub(super) fn drop_front(&mut self, count: usize) {
        let count = count.min(self.pending.len());
        if count > 0 {
            self.pending.drain(..count);
            self.pending_start = self.pending_start.saturating_add(count as u64);
        }
    }

    /// What to do with the start at `window[0]` (stream offset `start`). At the end of input
    /// nothing waits: what is consistent so far is accepted only if it is complete.
    pub(super) fn judge(&self, window: &[u8], start: StreamOffset, at_end: bool) -> HuntDecision {
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
    pub(super) fn judge_atr(
        &self,
        window: &[u8],
        start: StreamOffset,
        at_end: bool,
    ) -> HuntDecision {
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

    pub(super) fn accept_atr(&mut self, len: usize, out: &mut Vec<Frame>) {
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
    pub(super) fn dead_prefix(&self, window: &[u8], start: StreamOffset) -> usize {
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
pub(super) fn lrc_of(reading: Reading, range: std::ops::Range<usize>) -> u8 {
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
pub(super) fn truncated_atr_frame(start: StreamOffset, window: &[u8]) -> Option<Frame> {
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
pub(super) fn is_ts(raw: u8) -> bool {
    (raw == 0x3B) | (raw == 0x3F) | (raw == 0x03)
}

/// Printable ASCII, tab, CR or LF: what a boot log or a shell sends.
pub(super) fn is_text(raw: u8) -> bool {
    TEXT.get(usize::from(raw)).copied().unwrap_or(false)
}

/// 20-7F: the raw CLA and INS of a header hunting does not take when both are.
pub(super) fn is_printable(raw: u8) -> bool {
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
pub(super) fn decode_as(raw: u8, inverted: bool) -> u8 {
    if inverted {
        INVERSE.get(usize::from(raw)).copied().unwrap_or(raw)
    } else {
        raw
    }
}

/// [`from_inverse_convention`] of every byte value: x86 has no bit-reverse instruction, and
/// hunting decodes at every 03 it meets.
pub(super) const INVERSE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut raw = 0;
    while raw < 256 {
        table[raw] = (!(raw as u8)).reverse_bits();
        raw += 1;
    }
    table
};

/// A CLA the state machine reads as the start of a T=0 header (not reserved, not FF = PPS).
pub(super) fn cla_plausible(cla: u8) -> bool {
    // Reserved (20-3F) and invalid (FF) classes, as `Cla::decode` has them.
    !matches!(cla, 0x20..=0x3F | 0xFF)
}

/// Data bytes a T=0 header announces in P3 (00 means 256).
pub(super) fn data_len(p3: u8) -> usize {
    if p3 == 0 { 256 } else { usize::from(p3) }
}
