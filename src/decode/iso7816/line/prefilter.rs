//! The quick filter in front of hunting: tests 8 (or 16) positions at a time on raw bytes and
//! skips those that cannot start an ATR, a T=0 exchange or a T=1 block, so only the rest are
//! judged.

use wide::u8x16;

use crate::decode::iso7816::atr::{AtrProbe, MAX_ATR_LEN, TckStatus, TransmissionProtocol};
use crate::decode::iso7816::{atr, ins};
use crate::decode::stream::{lanes_at, lanes_between, lanes_eq, lanes_masked_eq};

use super::hunt::{INVERSE, cla_plausible, data_len, decode_as, is_printable, is_text, is_ts};
use super::{is_sw1, nad_plausible, pcb_valid};

/// 0x01 in every byte of a `u64`.
const LANES: u64 = 0x0101_0101_0101_0101;

/// 0x80 in each byte of `x` that is zero; bytes above (more significant than) the lowest
/// zero byte may be flagged wrongly. So such masks are supersets: they may be or-ed and
/// and-ed with each other, and each flag gets a closer look.
fn some_zero_byte(x: u64) -> u64 {
    x.wrapping_sub(LANES) & !x & (LANES << 7)
}

/// 0x80 in each byte of `x` that is 20-7F ([`is_printable`]), exactly.
pub(super) fn printable(x: u64) -> u64 {
    let high = LANES << 7;
    // Bit 8 clear, and bit 6 or 7 set (adding 7F to x & 60 carries into bit 8 then).
    !x & (x & (0x60 * LANES)).wrapping_add(0x7F * LANES) & high
}

/// The 8 bytes of `window` from `at`, little-endian (byte `at` lowest).
pub(super) fn word(window: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = window.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Positions at the start of `window` that start no ATR and no T=0 exchange hunting would
/// take. Tests 8 positions at a time, in the bytes of a `u64`, for what every start needs: a
/// TS, or an INS equal to the byte 5 later (the ACK; equality survives inverse-convention
/// decoding, a bijection, so raw bytes do). The few positions that pass get a closer look
/// (`t0_position`). This is where hunting spends its time on a line without card traffic.
pub(super) fn t0_dead_prefix(window: &[u8], inverted: bool) -> usize {
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
pub(super) fn lanes_cla_implausible(cla: u8x16, inverted: bool) -> u8x16 {
    if inverted {
        // Logical 001x_xxxx: raw bits 0, 1, 2 = 1, 1, 0. Logical FF: raw 00.
        lanes_masked_eq(cla, 0x07, 0x03) | lanes_eq(cla, 0x00)
    } else {
        lanes_masked_eq(cla, 0xE0, 0x20) | lanes_eq(cla, 0xFF)
    }
}

/// Lanes whose INS `ins::is_valid` rejects (6X or 9X logical).
pub(super) fn lanes_ins_invalid(ins: u8x16, inverted: bool) -> u8x16 {
    if inverted {
        // Logical 0110: raw low nibble 1001; logical 1001: raw 0110.
        lanes_masked_eq(ins, 0x0F, 0x09) | lanes_masked_eq(ins, 0x0F, 0x06)
    } else {
        lanes_masked_eq(ins, 0xF0, 0x60) | lanes_masked_eq(ins, 0xF0, 0x90)
    }
}

/// Lanes that `is_sw1` accepts (61-6F or 90-9F logical).
pub(super) fn lanes_sw1(sw1: u8x16, inverted: bool) -> u8x16 {
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
pub(super) fn decode_as_branchless(raw: u8, inverted: bool) -> u8 {
    let decoded = INVERSE.get(usize::from(raw)).copied().unwrap_or(raw);
    if inverted { decoded } else { raw }
}

/// How many of TA, TB, TC a Y nibble announces, by its low three bits (TD comes after them):
/// a lookup, since baseline x86-64 has no population count instruction.
const INTERFACE_BYTES_BEFORE_TD: [u8; 8] = [0, 1, 1, 2, 1, 2, 2, 3];

/// TA1 values whose Fi or Di is RFU.
pub(super) const BAD_TA1: [bool; 256] = {
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
pub(super) fn atr_possible(window: &[u8]) -> bool {
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
pub(super) fn t1_dead_prefix(window: &[u8], inverted: bool) -> usize {
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
