//! The capture reader on hostile files: never panics, always terminates, and the index agrees
//! with a plain read. The first byte picks how the rest is used, so the fuzzer reaches past the
//! header and record CRCs: 0 = the whole file, 1 = records after a valid header, 2 = payloads
//! of any kind wrapped in valid records (the payload decoders), 3 = a valid capture of events
//! made from the input, then damaged at input-chosen places (the resync paths).
#![no_main]

use std::io::Cursor;
use std::time::{Duration, UNIX_EPOCH};

use hsmon::capture::format;
use hsmon::capture::{CaptureMeta, CaptureReader, CaptureWriter};
use hsmon::event::{Direction, Event, TimedEvent};
use libfuzzer_sys::fuzz_target;

fn meta() -> CaptureMeta {
    CaptureMeta::new("fuzz", None, UNIX_EPOCH)
}

fn check(bytes: &[u8]) {
    let Ok(mut r) = CaptureReader::new(Cursor::new(bytes), "fuzz") else {
        return;
    };
    let mut n = 0u64;
    let mut rx = 0u64;
    while let Ok(Some(rec)) = r.next_record() {
        assert_eq!(rec.number, n);
        assert_eq!(rec.rx, rx);
        if let Event::Rx(b) = &rec.event.event {
            rx += b.len() as u64;
        }
        n += 1;
    }
    let Ok(idx) = r.index() else { return };
    assert_eq!(idx.events, n);
    assert_eq!(idx.rx_bytes, rx);
    if n > 0 {
        let last = r.seek_event(&idx, n - 1).ok().flatten();
        assert_eq!(last.map(|r| r.number), Some(n - 1));
    }
    if rx > 0 {
        let got = r.read_stream(&idx, Direction::Rx, 0..rx).unwrap_or_default();
        assert_eq!(got.len() as u64, rx);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check(rest),
        1 => {
            let mut b = format::encode_header(&meta());
            b.extend_from_slice(rest);
            check(&b);
        }
        2 => {
            let mut b = format::encode_header(&meta());
            for (i, chunk) in rest.chunks(41).enumerate() {
                let kind = chunk.first().map_or(0, |&k| u16::from(k % 16));
                format::push_record(&mut b, kind, i as u64, chunk.get(1..).unwrap_or(&[]));
            }
            check(&b);
        }
        _ => {
            // Events from the first half, damage (offset, xor) pairs from the second.
            let (events, damage) = rest.split_at(rest.len() / 2);
            let mut w = CaptureWriter::new(Vec::new(), "fuzz", &meta());
            for (i, chunk) in events.chunks(23).enumerate() {
                let event = match chunk.first().map_or(0, |b| b % 3) {
                    0 => Event::Rx(chunk.to_vec()),
                    1 => Event::Tx(chunk.to_vec()),
                    _ => Event::BreakSent,
                };
                w.append(&TimedEvent::new(Duration::from_micros(i as u64), event));
            }
            let Some(mut b) = w.into_inner() else { return };
            for d in damage.chunks(3) {
                if let [hi, lo, x] = d {
                    let at = (usize::from(*hi) << 8 | usize::from(*lo)) % b.len();
                    b[at] ^= x;
                }
            }
            if let Some(&cut) = damage.last() {
                let keep = b.len() - usize::from(cut) % 8;
                b.truncate(keep);
            }
            check(&b);
        }
    }
});
