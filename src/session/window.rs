//! The byte window: runs of same-direction bytes with their arrival times, bounded by the heap
//! they use (oldest runs evicted first), and what reads them (search, a direction's bytes).

use std::collections::VecDeque;

use crate::decode::StreamOffset;
use crate::event::{Direction, Timestamp};

use super::Session;

/// Largest run of same-direction bytes kept in one piece. Divisible by every row width the
/// hex pane uses (multiples of 8 up to 64), so rows never break at a run boundary.
pub const RUN_CAPACITY: usize = 40_320;

/// Heap one run's byte and mark buffers use (by capacity): what the window cap bounds, so a
/// session of one-byte reads (a slow line) stays as bounded as one of large reads.
pub(super) fn run_heap(r: &Run) -> usize {
    r.bytes.capacity() + r.marks.capacity() * std::mem::size_of::<(u32, Timestamp)>()
}

/// A stretch of consecutive bytes in one direction.
#[derive(Debug, Clone)]
pub struct Run {
    /// Monotonic id, so a scroll anchor survives eviction of older runs.
    pub seq: u64,
    pub direction: Direction,
    /// Offset of `bytes[0]` in this direction's stream.
    pub start: StreamOffset,
    pub bytes: Vec<u8>,
    /// (index into `bytes`, arrival time) for each chunk that landed in this run.
    pub(super) marks: Vec<(u32, Timestamp)>,
}

impl Run {
    /// Arrival time of the byte at `index` (the time of the chunk it came in).
    pub fn time_of(&self, index: usize) -> Timestamp {
        let i = self
            .marks
            .partition_point(|(at, _)| (*at as usize) <= index);
        self.marks
            .get(i.saturating_sub(1))
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
}

/// Bytes per second over the last second or so, from event timestamps.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    /// (time, bytes) of recent chunks, oldest first; only the last ~2 s are kept.
    samples: VecDeque<(Timestamp, u64)>,
}

impl RateMeter {
    const WINDOW: Timestamp = Timestamp::from_secs(1);

    pub(super) fn add(&mut self, at: Timestamp, n: usize) {
        self.samples.push_back((at, n as u64));
        while let Some(&(t, _)) = self.samples.front() {
            if at.saturating_sub(t) > Self::WINDOW * 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Bytes per second in the second before `now`.
    pub fn rate(&self, now: Timestamp) -> f64 {
        let from = now.saturating_sub(Self::WINDOW);
        let sum: u64 = self
            .samples
            .iter()
            .filter(|(t, _)| *t > from && *t <= now)
            .map(|(_, n)| n)
            .sum();
        sum as f64 / Self::WINDOW.as_secs_f64()
    }

    /// True when the meter would show a non-zero rate at some time after `now`, i.e. the
    /// status bar needs one more redraw to fall to zero.
    pub fn settling(&self, now: Timestamp) -> bool {
        self.samples
            .back()
            .is_some_and(|(t, _)| now.saturating_sub(*t) <= Self::WINDOW)
    }
}

impl Session {
    /// Starts an empty session's streams at these offsets: a history view loaded from the
    /// middle of a capture keeps the live session's offsets. No effect once bytes arrived.
    pub fn start_streams_at(&mut self, rx: StreamOffset, tx: StreamOffset) {
        if self.runs.is_empty() && self.counters.rx_bytes + self.counters.tx_bytes == 0 {
            self.rx_offset = rx;
            self.tx_offset = tx;
        }
    }

    pub(super) fn append(&mut self, dir: Direction, at: Timestamp, mut bytes: &[u8]) {
        let offset = match dir {
            Direction::Rx => &mut self.rx_offset,
            Direction::Tx => &mut self.tx_offset,
        };
        while !bytes.is_empty() {
            let fits = match self.runs.back() {
                Some(r) if r.direction == dir && r.bytes.len() < RUN_CAPACITY => {
                    RUN_CAPACITY - r.bytes.len()
                }
                _ => {
                    self.runs.push_back(Run {
                        seq: self.next_seq,
                        direction: dir,
                        start: *offset,
                        bytes: Vec::new(),
                        marks: Vec::new(),
                    });
                    self.window_mem += std::mem::size_of::<Run>();
                    self.next_seq += 1;
                    RUN_CAPACITY
                }
            };
            let take = fits.min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            if let Some(run) = self.runs.back_mut() {
                let before = run_heap(run);
                // Grow by doubling but never past the run's size: plain `extend` would round a
                // full run's 40 KiB up to a 64 KiB allocation, 60 % more heap than bytes.
                let need = run.bytes.len() + take;
                if need > run.bytes.capacity() {
                    let cap = (run.bytes.capacity() * 2).clamp(need, RUN_CAPACITY.max(need));
                    run.bytes.reserve_exact(cap - run.bytes.len());
                }
                run.marks.push((run.bytes.len() as u32, at));
                run.bytes.extend_from_slice(head);
                self.window_mem = self.window_mem + run_heap(run) - before;
            }
            *offset += take as u64;
            self.window_bytes += take;
            bytes = rest;
        }
        // The cap bounds the heap the window uses (bytes, arrival marks, run records), so a
        // stream of tiny alternating runs is held to the same memory as one long run.
        while self.window_mem > self.window_cap && self.runs.len() > 1 {
            match self.runs.pop_front() {
                Some(r) => {
                    self.window_bytes -= r.bytes.len();
                    self.window_mem -= run_heap(&r) + std::mem::size_of::<Run>();
                    self.counters.evicted_bytes += r.bytes.len() as u64;
                }
                None => break,
            }
        }
    }

    /// The runs in the window, oldest first.
    pub fn runs(&self) -> &VecDeque<Run> {
        &self.runs
    }

    /// The first occurrence of `pattern` in the bytes in memory that starts after `after`
    /// (a direction and stream offset: the previous match), in arrival order. Matches may
    /// span two runs of the same direction. Returns the direction and the match's offsets.
    pub fn find(
        &self,
        pattern: &[u8],
        after: Option<(Direction, StreamOffset)>,
    ) -> Option<(Direction, std::ops::Range<StreamOffset>)> {
        if pattern.is_empty() {
            return None;
        }
        let keep = pattern.len() - 1;
        // Per direction: the tail of the previous run of that direction and its end offset.
        let mut tails: [(Vec<u8>, StreamOffset); 2] = [(Vec::new(), 0), (Vec::new(), 0)];
        // Searching starts once the previous match is passed (by position in arrival order).
        let mut started = after.is_none();
        for run in &self.runs {
            let d = usize::from(run.direction == Direction::Tx);
            let (tail, tail_end) = &tails[d];
            let joined = if *tail_end == run.start && !tail.is_empty() {
                let mut j = tail.clone();
                j.extend_from_slice(&run.bytes);
                j
            } else {
                run.bytes.clone()
            };
            let base = run.start - (joined.len() - run.bytes.len()) as u64;
            let mut from = 0usize;
            if let Some((ad, aoff)) = after {
                if !started
                    && ad == run.direction
                    && aoff >= base
                    && aoff < run.start + run.bytes.len() as u64
                {
                    started = true;
                    from = (aoff - base + 1) as usize;
                } else if !started {
                    // Keep the tail and move on.
                    let t = joined[joined.len().saturating_sub(keep)..].to_vec();
                    tails[d] = (t, run.start + run.bytes.len() as u64);
                    continue;
                }
            }
            if let Some(i) = joined
                .get(from..)
                .and_then(|h| h.windows(pattern.len()).position(|w| w == pattern))
            {
                let start = base + (from + i) as u64;
                return Some((run.direction, start..start + pattern.len() as u64));
            }
            let t = joined[joined.len().saturating_sub(keep)..].to_vec();
            tails[d] = (t, run.start + run.bytes.len() as u64);
        }
        None
    }

    /// The run with sequence number `seq`, if still in the window.
    pub fn run_index(&self, seq: u64) -> Option<usize> {
        let first = self.runs.front()?.seq;
        let i = seq.checked_sub(first)? as usize;
        (i < self.runs.len()).then_some(i)
    }

    /// Bytes in the in-memory window.
    pub fn window_bytes(&self) -> usize {
        self.window_bytes
    }

    /// The run in the window holding byte `offset` of `dir`'s stream.
    pub fn run_holding(&self, dir: Direction, offset: StreamOffset) -> Option<&Run> {
        self.runs.iter().find(|r| {
            r.direction == dir && r.start <= offset && offset < r.start + r.bytes.len() as u64
        })
    }

    /// Memory the window uses as counted against its cap: bytes, per-read marks, run records.
    pub fn window_mem(&self) -> usize {
        self.window_mem
    }

    /// All bytes of one direction still in the window, with the offset of the first
    /// (for tests and exporters; the panes walk runs instead).
    pub fn stream(&self, dir: Direction) -> (StreamOffset, Vec<u8>) {
        let mut out = Vec::new();
        let mut first = None;
        for r in self.runs.iter().filter(|r| r.direction == dir) {
            first.get_or_insert(r.start);
            out.extend_from_slice(&r.bytes);
        }
        (first.unwrap_or(0), out)
    }
}
