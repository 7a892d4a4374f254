//! Bytes older than the live session's memory window, read back from the session's own
//! capture through its index: a "history" session holding one window's worth from a chosen
//! place (the start, or around a search hit), which the TUI shows in place of the live one
//! until the user returns (End). The live session keeps running meanwhile.

use std::ops::Range;
use std::path::Path;

use crate::capture::reader::{CaptureError, CaptureReader};
use crate::event::{Direction, Event};
use crate::session::Session;

/// Where a history view starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The first bytes of the capture.
    Beginning,
    /// A little before this byte of that direction's stream (so the hit has context).
    Around(Direction, u64),
    /// The window's worth of bytes just before this byte of that direction's stream (paging up
    /// past the top of what is shown).
    Before(Direction, u64),
}

/// Bytes of context loaded before a search hit.
const CONTEXT: u64 = 64 * 1024;

/// A session rebuilt from the capture at `path`: events from `start` on, until the session's
/// memory (bytes plus per-read bookkeeping, as it counts it against `window`) nears `window`,
/// or the capture ends. Stream offsets are the live session's. For [`Start::Before`] the
/// byte named is always loaded (when the capture has it), with as much above it as fits.
pub fn load(path: &Path, start: &Start, window: usize) -> Result<Session, CaptureError> {
    // Stop short of the window so nothing loaded is evicted again.
    let budget = window.saturating_sub(window / 8);
    let mut reader = CaptureReader::open(path)?;
    match start {
        Start::Beginning => {
            let first = reader.next_record()?;
            fill(&mut reader, first, window, budget, None)
        }
        Start::Around(dir, off) => {
            let idx = reader.index()?;
            let first = reader.seek_stream(&idx, *dir, off.saturating_sub(CONTEXT))?;
            fill(&mut reader, first, window, budget, None)
        }
        Start::Before(dir, off) => {
            // Half a window of bytes back, then less while what fits in memory ends before
            // `off` (small reads cost more bookkeeping than their bytes): the view continues
            // from `off` whatever the traffic looks like.
            let idx = reader.index()?;
            let mut back = budget as u64 / 2;
            loop {
                let first = reader.seek_stream(&idx, *dir, off.saturating_sub(back))?;
                let s = fill(
                    &mut reader,
                    first,
                    window,
                    budget,
                    Some((*dir, off + CONTEXT)),
                )?;
                if s.run_holding(*dir, off.saturating_sub(1)).is_some() || back < 1024 {
                    return Ok(s);
                }
                back /= 4;
            }
        }
    }
}

/// Ingests records from `first` on until the budget, the capture's end, or (with `until`)
/// that byte of that direction.
fn fill(
    reader: &mut CaptureReader,
    first: Option<crate::capture::reader::Record>,
    window: usize,
    budget: usize,
    until: Option<(Direction, u64)>,
) -> Result<Session, CaptureError> {
    let mut s = Session::new("history (from the capture)", window);
    let Some(first) = first else {
        return Ok(s);
    };
    s.start_streams_at(first.rx, first.tx);
    let mut next = Some(first);
    while let Some(rec) = next {
        let past_until = until.is_some_and(|(dir, end)| {
            let at = if dir == Direction::Rx { rec.rx } else { rec.tx };
            at >= end
        });
        if past_until {
            break;
        }
        s.ingest(&rec.event);
        if s.window_mem() >= budget || s.counters.evicted_bytes > 0 {
            break;
        }
        next = reader.next_record()?;
    }
    s.flush_decoders();
    Ok(s)
}

/// The first occurrence of `pattern` in the capture's bytes of either direction, after
/// `after` (a previous hit: only later offsets of that direction count). Matches may span two
/// records of a direction.
pub fn find(
    path: &Path,
    pattern: &[u8],
    after: Option<(Direction, u64)>,
) -> Result<Option<(Direction, Range<u64>)>, CaptureError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    let mut reader = CaptureReader::open(path)?;
    let keep = pattern.len() - 1;
    let mut tails: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(rec) = reader.next_record()? {
        let (dir, bytes, start) = match &rec.event.event {
            Event::Rx(b) => (Direction::Rx, b, rec.rx),
            Event::Tx(b) => (Direction::Tx, b, rec.tx),
            _ => continue,
        };
        let i = usize::from(dir == Direction::Tx);
        let mut hay = std::mem::take(&mut tails[i]);
        let base = start - hay.len() as u64;
        hay.extend_from_slice(bytes);
        let mut from = 0;
        while let Some(p) = hay
            .get(from..)
            .and_then(|h| h.windows(pattern.len()).position(|w| w == pattern))
        {
            let at = base + (from + p) as u64;
            let later = match after {
                Some((d, off)) if d == dir => at > off,
                _ => true,
            };
            if later {
                return Ok(Some((dir, at..at + pattern.len() as u64)));
            }
            from += p + 1;
        }
        tails[i] = hay[hay.len().saturating_sub(keep)..].to_vec();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::capture::meta::CaptureMeta;
    use crate::capture::writer::CaptureWriter;
    use crate::event::TimedEvent;
    use std::time::Duration;

    fn capture(chunks: &[(Direction, &[u8])]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.hscap");
        let meta = CaptureMeta::new("t", None, std::time::SystemTime::now());
        let mut w = CaptureWriter::create(&path, &meta).unwrap();
        for (i, (d, b)) in chunks.iter().enumerate() {
            let event = match d {
                Direction::Rx => Event::Rx(b.to_vec()),
                Direction::Tx => Event::Tx(b.to_vec()),
            };
            w.append(&TimedEvent::new(Duration::from_millis(i as u64), event));
        }
        w.sync();
        (dir, path)
    }

    #[test]
    fn find_spans_records_and_skips_earlier_hits() {
        let (_d, p) = capture(&[
            (Direction::Rx, b"hello wor"),
            (Direction::Tx, b"AT\r"),
            (Direction::Rx, b"ld; hello world"),
        ]);
        let hit = find(&p, b"world", None).unwrap();
        assert_eq!(hit, Some((Direction::Rx, 6..11)));
        let next = find(&p, b"world", Some((Direction::Rx, 6))).unwrap();
        assert_eq!(next, Some((Direction::Rx, 19..24)));
        assert_eq!(find(&p, b"AT", None).unwrap(), Some((Direction::Tx, 0..2)));
        assert_eq!(find(&p, b"nope", None).unwrap(), None);
    }

    #[test]
    fn load_keeps_the_live_stream_offsets() {
        let big = vec![b'x'; 100_000];
        let (_d, p) = capture(&[
            (Direction::Rx, &big),
            (Direction::Rx, b"the needle"),
            (Direction::Rx, &big),
        ]);
        let s = load(&p, &Start::Around(Direction::Rx, 100_004), 64 << 20).unwrap();
        let (d, r) = s.find(b"needle", None).unwrap();
        assert_eq!((d, r), (Direction::Rx, 100_004..100_010));
        let b = load(&p, &Start::Beginning, 64 << 20).unwrap();
        assert_eq!(b.runs().front().unwrap().start, 0);
    }

    /// Small reads cost the window far more than their bytes (marks, a run per turn): the
    /// byte asked about is still loaded, with the bytes just above it.
    #[test]
    fn before_holds_the_offset_with_small_alternating_reads() {
        let ping = [b'p'; 16];
        let pong = [b'q'; 16];
        let chunks: Vec<(Direction, &[u8])> = (0..20_000)
            .map(|i| {
                if i % 2 == 0 {
                    (Direction::Tx, &ping[..])
                } else {
                    (Direction::Rx, &pong[..])
                }
            })
            .collect();
        let (_d, p) = capture(&chunks);
        let off = 9_000 * 16;
        let s = load(&p, &Start::Before(Direction::Rx, off), 256 << 10).unwrap();
        assert!(
            s.run_holding(Direction::Rx, off - 1).is_some(),
            "the byte above the old top"
        );
        assert!(
            s.run_holding(Direction::Rx, off).is_some(),
            "the old top itself"
        );
        let first = s.runs().front().unwrap().start;
        assert!(
            first < off - 1024,
            "bytes above it too (window starts at {first})"
        );
        assert_eq!(
            s.counters.evicted_bytes, 0,
            "nothing loaded was evicted again"
        );
    }

    #[test]
    fn before_loads_the_bytes_above_and_keeps_the_offset() {
        let chunk = vec![b'.'; 4096];
        let mut chunks: Vec<(Direction, &[u8])> = vec![(Direction::Rx, &chunk); 64];
        chunks[10] = (Direction::Rx, b"EARLIER");
        let (_d, p) = capture(&chunks);
        // What precedes byte 40 * 4096 + 7, in a 128 KiB window: half of it above.
        let off = 40 * 4096 + 7;
        let s = load(&p, &Start::Before(Direction::Rx, off), 128 << 10).unwrap();
        let first = s.runs().front().unwrap().start;
        let end = s
            .runs()
            .back()
            .map(|r| r.start + r.bytes.len() as u64)
            .unwrap();
        assert!(
            first < off - 32 * 1024 && first > 4096,
            "window starts at {first}"
        );
        assert!(
            end > off,
            "the offset itself stays loaded (window ends at {end})"
        );
        // Far enough back, the window reaches the capture's start.
        let s = load(&p, &Start::Before(Direction::Rx, 20_000), 128 << 10).unwrap();
        assert_eq!(s.runs().front().unwrap().start, 0);
        assert!(s.find(b"EARLIER", None).is_some());
    }
}
