//! Arbitration between framers, in one place: every framer reports what it sees; a frame
//! with stronger evidence (`decode::evidence`) claims its bytes, and weaker frames that
//! overlap it are not reported (nor, since the engine diagnoses only what is released, their
//! events). Pure: time comes in with the frames.
//!
//! In a live stream a weak frame may be found before the stronger frame around it completes
//! (the `1F 1F` length bytes of an M-Bus telegram are two STM32 NACKs the moment they
//! arrive). So frames are **held**, not retracted: a frame is released when no framer that
//! could still produce a stronger frame has a candidate starting before the frame's end
//! (`Framer::pending_from`). Each framer holds at most its protocol's longest frame, so the
//! wait is bounded by bytes; [`HOLD_LIMIT`] bounds it in time on a line that goes quiet.
//! Frames leave in stream order.

use std::collections::VecDeque;
use std::ops::Range;

use crate::decode::{Frame, Framer, Protocol, Rank, StreamOffset, looks_like_mbus};
use crate::event::Timestamp;

/// Longest a frame is held for a candidate that may still cover it, in stream time. A slow
/// line (300 baud: 30 bytes a second) completes an M-Bus telegram within it.
pub const HOLD_LIMIT: Timestamp = Timestamp::from_millis(1500);

/// Released frames remembered to settle later overlaps with (a frame forced out by time).
const CLAIMS_KEPT: usize = 64;

/// What another framer may still produce: its candidate's first byte and the highest rank
/// that candidate can reach.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    pub from: StreamOffset,
    pub max_rank: Rank,
}

struct Held {
    frame: Frame,
    rank: Rank,
    at: Timestamp,
}

struct Claim {
    protocol: Protocol,
    span: Range<StreamOffset>,
    rank: Rank,
}

/// One direction's arbitration.
#[derive(Default)]
pub struct Arbiter {
    /// Frames waiting, in (start, end, arrival) order.
    held: VecDeque<Held>,
    /// Frames released lately: a frame released after them loses to a stronger one.
    claims: VecDeque<Claim>,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("held", &self.held.len())
            .field("claims", &self.claims.len())
            .finish()
    }
}

/// Whether `a` beats `b` for overlapping bytes: a higher rank (`decode::evidence::Rank`);
/// on a tie, the one FT1.2 reading (M-Bus or IEC 101) the content supports over the other
/// on the same bytes.
fn beats(a: (&Frame, Rank), b: (&Frame, Rank)) -> bool {
    let ((fa, ba), (fb, bb)) = (a, b);
    if ba != bb {
        return ba > bb;
    }
    if fa.span == fb.span {
        return match (fa.protocol, fb.protocol) {
            (Protocol::Mbus, Protocol::Iec101) => looks_like_mbus(fa),
            (Protocol::Iec101, Protocol::Mbus) => !looks_like_mbus(fb),
            _ => false,
        };
    }
    false
}

fn overlap(a: &Range<StreamOffset>, b: &Range<StreamOffset>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Where `framers`' pending candidates start, and how strong each could still become.
pub fn horizons(framers: &[Box<dyn Framer>]) -> Vec<Horizon> {
    let mut out = Vec::new();
    for f in framers {
        if let Some(from) = f.pending_from() {
            out.push(Horizon {
                from,
                max_rank: f.pending_max_rank(),
            });
        }
        if let Some((from, max_rank)) = f.pending_tail() {
            out.push(Horizon { from, max_rank });
        }
    }
    out
}

impl Arbiter {
    /// Takes new frames (any order) to hold.
    ///
    /// Each framer's frames come in stream order, one framer after the other, so a read
    /// brings a few sorted runs: they are sorted once (a stable sort merges runs) and merged
    /// with what is held, never inserted one by one (a run of 0x68s brings thousands of
    /// frames a read).
    pub fn push(&mut self, frames: impl IntoIterator<Item = Frame>, at: Timestamp) {
        let key = |h: &Held| (h.frame.span.start, h.frame.span.end);
        let mut new: Vec<Held> = frames
            .into_iter()
            .map(|frame| Held {
                rank: frame.evidence().rank(),
                frame,
                at,
            })
            .collect();
        if new.is_empty() {
            return;
        }
        new.sort_by_key(key);
        let in_order = match (self.held.back(), new.first()) {
            (Some(last), Some(first)) => key(last) <= key(first),
            _ => true,
        };
        if in_order {
            self.held.extend(new);
            return;
        }
        let old = std::mem::take(&mut self.held);
        let mut merged = VecDeque::with_capacity(old.len() + new.len());
        let mut a = old.into_iter().peekable();
        let mut b = new.into_iter().peekable();
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => key(x) <= key(y),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            merged.extend(next);
        }
        self.held = merged;
    }

    /// Frames held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When the oldest held frame is released by time (None: nothing held).
    pub fn due(&self) -> Option<Timestamp> {
        self.held.iter().map(|h| h.at + HOLD_LIMIT).min()
    }

    /// Releases, in stream order, the frames nothing can still beat, each with its arrival
    /// time, dropping those a stronger overlapping frame beats. `horizons` are the other
    /// framers' pending candidates; `force` releases everything (end of input).
    pub fn release(
        &mut self,
        horizons: &[Horizon],
        now: Timestamp,
        force: bool,
        out: &mut Vec<(Frame, Timestamp)>,
    ) {
        while let Some(front) = self.held.front() {
            let settled = force
                || now.saturating_sub(front.at) >= HOLD_LIMIT
                || horizons
                    .iter()
                    .all(|h| h.from >= front.frame.span.end || h.max_rank <= front.rank);
            if !settled {
                break;
            }
            let Some(h) = self.held.pop_front() else {
                break;
            };
            let me = (&h.frame, h.rank);
            let beaten_by_held = self
                .held
                .iter()
                .take_while(|o| o.frame.span.start < h.frame.span.end)
                .any(|o| overlap(&o.frame.span, &h.frame.span) && beats((&o.frame, o.rank), me));
            let beaten_by_claim = self.claims.iter().any(|c| {
                overlap(&c.span, &h.frame.span)
                    && (c.rank > h.rank
                        || (c.rank == h.rank
                            && c.span == h.frame.span
                            && matches!(
                                (c.protocol, h.frame.protocol),
                                (Protocol::Mbus, Protocol::Iec101)
                                    | (Protocol::Iec101, Protocol::Mbus)
                            )))
            });
            if beaten_by_held || beaten_by_claim {
                continue;
            }
            if self.claims.len() >= CLAIMS_KEPT {
                self.claims.pop_front();
            }
            self.claims.push_back(Claim {
                protocol: h.frame.protocol,
                span: h.frame.span.clone(),
                rank: h.rank,
            });
            out.push((h.frame, h.at));
        }
        // Every frame still to come starts at or after a framer's pending candidate or a
        // held frame (a weak candidate may be released after stronger frames beyond it): a
        // claim that ends before all of them can meet none.
        let low = horizons
            .iter()
            .map(|h| h.from)
            .chain(self.held.front().map(|h| h.frame.span.start))
            .min();
        match low {
            Some(low) => self.claims.retain(|c| c.span.end > low),
            None if force => self.claims.clear(),
            None => {}
        }
    }

    /// Forgets everything held and claimed (a reset of the stream).
    pub fn clear(&mut self) {
        self.held.clear();
        self.claims.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::framers;
    use crate::decode::testing::h;

    /// Runs every framer over `reads` as a live session would, releasing after each read.
    fn arbitrate(reads: &[Vec<u8>]) -> Vec<Frame> {
        let mut fs = framers();
        let mut a = Arbiter::default();
        let mut out = Vec::new();
        let mut offset = 0u64;
        let mut scratch = Vec::new();
        for r in reads {
            scratch.clear();
            for f in fs.iter_mut() {
                f.feed(offset, r, &mut scratch);
            }
            offset += r.len() as u64;
            a.push(scratch.drain(..), Timestamp::ZERO);
            let horizons = horizons(&fs);
            a.release(&horizons, Timestamp::ZERO, false, &mut out);
        }
        for f in fs.iter_mut() {
            f.flush(&mut scratch);
        }
        a.push(scratch.drain(..), Timestamp::ZERO);
        a.release(&[], Timestamp::ZERO, true, &mut out);
        out.into_iter().map(|(f, _)| f).collect()
    }

    const RSP_UD: &str = "68 1F 1F 68 08 00 72 31 77 67 17 2D 2C 01 02 00 00 00 00 2F 2F 04 83 3B 88 13 00 00 2F 2F 2F 2F 2F 2F 2F 00 16";

    #[test]
    fn a_checked_telegram_claims_its_length_bytes_whatever_the_reads() {
        let bytes = h(RSP_UD);
        for cut in 1..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let frames = arbitrate(&[a.to_vec(), b.to_vec()]);
            let kinds: Vec<_> = frames.iter().map(|f| (f.protocol, f.kind)).collect();
            assert_eq!(kinds, vec![(Protocol::Mbus, "long")], "cut at {cut}");
        }
    }

    /// A dirty line (control bytes in it) is weak but still beats a token, whether the
    /// token's read ends before the line does or not (found by the public-corpus proptest:
    /// SND_NKE, CR LF, then E5 00 and a boot-log line).
    #[test]
    fn a_token_at_the_start_of_a_dirty_line_loses_in_any_split() {
        let mut bytes = h("0D 0A 10 40 FE 3E 16 0D 0A E5 00");
        bytes.extend_from_slice(b"[    1.104] usb 1-1: new high-speed USB device\r\n");
        let whole = arbitrate(&[bytes.clone()]);
        for cut in 1..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(arbitrate(&[a.to_vec(), b.to_vec()]), whole, "cut at {cut}");
        }
        assert!(!whole.iter().any(|f| f.kind == "ack"), "{whole:#?}");
    }

    /// An I-frame candidate (16 bits) decided only at the end lets the stronger frames
    /// after it go first; when it comes, the checked frames it overlaps still beat it
    /// (found by the public-corpus proptest: two DL/T 645 requests, a log line after them).
    #[test]
    fn a_late_weak_frame_still_meets_the_claims_it_overlaps() {
        let dlt = h("68 AA AA AA AA AA AA 68 11 04 33 34 34 35 B1 16");
        let mut bytes = dlt.clone();
        bytes.extend_from_slice(&h("00 0D 0A"));
        bytes.extend_from_slice(&dlt);
        bytes.extend_from_slice(b"\r\n[    0.000000] Booting Linux on physical CPU 0x0\r\n");
        let frames = arbitrate(&[bytes]);
        assert!(
            !frames.iter().any(|f| f.protocol == Protocol::Iec104),
            "{frames:#?}"
        );
        assert_eq!(
            frames
                .iter()
                .filter(|f| f.protocol == Protocol::Dlt645)
                .count(),
            2
        );
    }

    /// A candidate pending at the DL/T 645 frame's 68 (as an I-frame of L=0xAA) keeps the
    /// whole window behind it undecided, the U-frame in it too: the dirty line around the
    /// U-frame must wait for it, whatever the reads (public-corpus proptest, cut at 153).
    #[test]
    fn every_candidate_in_a_pending_window_counts() {
        let mut bytes =
            h("0D 0A 68 AA AA AA AA AA AA 68 11 04 33 34 34 35 B1 16 0D 0A 68 04 07 00 00 00");
        bytes.extend_from_slice(b"[    9.099958] Mali: ERR: drivers/gpu/arm/midgard/backend\r\n");
        bytes.extend_from_slice(b"[    9.100000] random: crng init done\r\n");
        let whole = arbitrate(&[bytes.clone()]);
        assert!(
            !whole
                .iter()
                .any(|f| f.protocol == Protocol::Text && f.span.start == 20)
        );
        for cut in 1..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(arbitrate(&[a.to_vec(), b.to_vec()]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn text_outweighs_a_letter_that_looks_like_a_token() {
        let frames = arbitrate(&[b"system ready\r\n".to_vec()]);
        let kinds: Vec<_> = frames.iter().map(|f| (f.protocol, f.kind)).collect();
        assert_eq!(kinds, vec![(Protocol::Text, "line")]);
    }

    #[test]
    fn a_held_frame_is_released_by_time() {
        let mut fs = framers();
        let mut a = Arbiter::default();
        let mut scratch = Vec::new();
        // An M-Bus start whose telegram never completes, then a text line inside it.
        let bytes = b"\x68\x40\x40\x68hello there\n";
        for f in fs.iter_mut() {
            f.feed(0, bytes, &mut scratch);
        }
        a.push(scratch.drain(..), Timestamp::ZERO);
        let horizons = [Horizon {
            from: 0,
            max_rank: crate::decode::evidence::max_rank(Protocol::Mbus),
        }];
        let mut out = Vec::new();
        a.release(&horizons, Timestamp::from_millis(10), false, &mut out);
        assert!(out.is_empty(), "held while the telegram may complete");
        assert_eq!(a.due(), Some(HOLD_LIMIT));
        a.release(&horizons, HOLD_LIMIT, false, &mut out);
        assert!(out.iter().any(|(f, _)| f.protocol == Protocol::Text));
        assert_eq!(a.held(), 0);
    }
}
