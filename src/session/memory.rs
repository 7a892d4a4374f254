//! What kept frames cost: heap accounting (measured or estimated per kind) and the caps that
//! evict the oldest frames and diagnoses.

use crate::decode::Frame;

use crate::event::{Direction, Timestamp};

use super::{Session, SessionFrame};

/// Most decoded frames kept in memory.
pub const FRAMES_CAP: usize = 200_000;

/// Most heap the kept frames may use, by [`frame_heap_bytes`] (estimated for frames not
/// described yet, see `DescriptionCosts`). A frame with its field tree takes from a few
/// hundred bytes to several KiB, so the count cap alone let 200k frames
/// grow the process past 500 MiB (measured by `examples/perf_suite.rs`). With the 64 MiB
/// byte window, a source's 8 MiB stall queue and its 128-event channel this keeps the process
/// under 100 MiB even if every kept frame gets described (a session alone: 79 MiB after
/// 1 GiB, `examples/session_memory.rs`); it holds ~4.4k–5.6k frames of busy M-Bus and log traffic.
pub const FRAMES_BYTES_CAP: usize = 8 * 1024 * 1024;

/// Most diagnoses kept in memory (repeats are counted, not stored).
pub const DIAGNOSES_CAP: usize = 20_000;

/// Approximate heap bytes a kept frame uses once described: the record itself, its kept
/// bytes, its summary and its field tree (names, values, child lists), each allocation counted
/// as the allocator rounds it (16-byte granules with an 8-byte header, 32 at least): a frame
/// is mostly short strings, so counting only their lengths under-states it by about a third.
/// Describes the frame if nothing has yet.
pub fn frame_heap_bytes(f: &Frame) -> usize {
    record_heap(f) + description_heap(f.description())
}

fn chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// The frame's heap without its description: the record, a status text, kept bytes.
fn record_heap(f: &Frame) -> usize {
    let status = match &f.status {
        crate::decode::FrameStatus::Malformed(why) => chunk(why.capacity()),
        _ => 0,
    };
    std::mem::size_of::<SessionFrame>() + status + chunk(f.kept_heap())
}

/// Heap of a built description: its box, summary and field tree.
fn description_heap(d: &crate::decode::frame::Description) -> usize {
    fn fields(list: &[crate::decode::Field], cap: usize) -> usize {
        chunk(cap * std::mem::size_of::<crate::decode::Field>())
            + list
                .iter()
                .map(|x| {
                    chunk(x.name.capacity())
                        + chunk(x.value.capacity())
                        + fields(&x.children, x.children.capacity())
                })
                .sum::<usize>()
    }
    chunk(std::mem::size_of::<crate::decode::frame::Description>())
        + chunk(d.summary.len())
        + fields(&d.fields, d.fields.len())
}

/// Frames of each (protocol, kind) described in full before their cost is estimated, and
/// after that one in how many.
const COST_SAMPLES_FIRST: u64 = 16;
const COST_SAMPLE_EVERY: u64 = 64;

/// What a frame's description takes, learnt per (protocol, kind) from frames described in
/// full. Kept frames are charged as if described (the frames pane or detail view may describe
/// any of them), but describing every frame to measure it would cost more than decoding it:
/// a busy line brings tens of thousands a second, and a headless run prints their summaries
/// (`Frame::summary_once`) and never looks at them again. So the first frames of each kind
/// and then one in `COST_SAMPLE_EVERY` are described and measured, and the others are charged
/// the mean of their kind.
#[derive(Debug, Default)]
pub(super) struct DescriptionCosts {
    kinds: Vec<KindCost>,
}

#[derive(Debug)]
struct KindCost {
    protocol: crate::decode::Protocol,
    kind: &'static str,
    frames: u64,
    sampled: u64,
    sum: u64,
}

impl DescriptionCosts {
    /// The heap a kept frame is charged: measured if it is described (or sampled now),
    /// else its record plus the mean description of its kind.
    fn charge(&mut self, f: &Frame) -> usize {
        let record = record_heap(f);
        if let Some(d) = f.built_description() {
            return record + description_heap(d);
        }
        let i = match self
            .kinds
            .iter()
            .position(|k| k.protocol == f.protocol && k.kind == f.kind)
        {
            Some(i) => i,
            None => {
                self.kinds.push(KindCost {
                    protocol: f.protocol,
                    kind: f.kind,
                    frames: 0,
                    sampled: 0,
                    sum: 0,
                });
                self.kinds.len() - 1
            }
        };
        let Some(k) = self.kinds.get_mut(i) else {
            return frame_heap_bytes(f);
        };
        k.frames += 1;
        if k.sampled < COST_SAMPLES_FIRST || k.frames % COST_SAMPLE_EVERY == 0 {
            let heap = description_heap(f.description());
            k.sampled += 1;
            k.sum += heap as u64;
            return record + heap;
        }
        record + k.sum.div_ceil(k.sampled.max(1)) as usize
    }
}

impl Session {
    /// Keeps a found frame, evicting the oldest while the count or heap cap would be passed.
    pub(super) fn keep_frame(&mut self, direction: Direction, frame: Frame, at: Timestamp) {
        let size = self.description_costs.charge(&frame);
        while self.frames.len() >= FRAMES_CAP
            || (!self.frames.is_empty() && self.frames_bytes + size > FRAMES_BYTES_CAP)
        {
            if let Some(old) = self.frames.pop_front() {
                self.frames_bytes = self.frames_bytes.saturating_sub(old.heap);
            }
        }
        self.frames_bytes += size;
        self.frames.push_back(SessionFrame {
            seq: self.next_frame_seq,
            direction,
            stream: self.stream_of(direction),
            at,
            frame,
            heap: size,
        });
        self.next_frame_seq += 1;
        self.pending_frames += 1;
    }
}
