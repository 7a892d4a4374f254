//! The JSON records hsmon prints, defined once: one serde-derived struct per record type
//! (members in the order they are written), built from the domain value by one function, and
//! written by one writer ([`write`]) that puts `type`, `t` and `ts` first and a tap's `label`
//! and the `--label` members last. Headless output, `hsmon export --to jsonl`, handshake runs
//! all print through it (and trace, when it comes, should too); `docs/records.schema.json` describes the result.
//!
//! Every string member is written terminal-safe (see [`crate::sanitize::is_unsafe`]): a
//! control, bidi or zero-width character from a device, an OS or a file becomes a `\uXXXX`
//! escape, never the raw character, and a JSON parser still reads the original text back.
//!
//! Adding an optional member to a record is one line in its struct:
//! `#[serde(skip_serializing_if = "Option::is_none")] pub member: Option<&'a str>,`. The
//! members every record may carry (a tap's `label`, the `stream` of a multi-stream session,
//! the `--label`s) are the writer's ([`write_on`]).

pub mod event;
pub mod finding;
pub mod handshake;
pub mod json;
pub mod scan;
pub mod session;
pub mod stream;

use std::io::{self, Write};
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::sanitize::JsonF64;
use crate::stamp::Stamp;

/// A record type: its members (serde-derived) and the `type` it is written with.
pub trait Record: Serialize {
    /// The record's `"type"`.
    fn kind(&self) -> &'static str;
}

/// When a record happened: `t` (seconds since the session start, rounded to microseconds)
/// formatted once, and the wall-clock `ts`. Records of one read share one.
#[derive(Debug, Clone)]
pub struct Time {
    t: JsonF64,
    ts: String,
}

impl Time {
    /// The time of a record `at` after the session start.
    pub fn at(at: Duration, stamp: &Stamp) -> Time {
        let (t, ts) = stamp.times(at);
        Time {
            t: JsonF64::new(t),
            ts,
        }
    }
}

/// Writes one record as a JSON line: `type`, `t`, `ts`, the record's own members, `label` (a
/// tap's name for who sent the bytes) when given, then the `--label` members of `stamp`.
pub fn write<W: Write + ?Sized, R: Record + ?Sized>(
    out: &mut W,
    record: &R,
    time: &Time,
    label: Option<&str>,
    stamp: &Stamp,
) -> io::Result<()> {
    write_on(out, record, time, label, None, stamp)
}

/// [`write`] with the `stream` member every record of a multi-stream session carries (the
/// stream's label: a tap's port path), after `label` and before the `--label` members.
pub fn write_on<W: Write + ?Sized, R: Record + ?Sized>(
    out: &mut W,
    record: &R,
    time: &Time,
    label: Option<&str>,
    stream: Option<&str>,
    stamp: &Stamp,
) -> io::Result<()> {
    out.write_all(b"{\"type\":\"")?;
    out.write_all(record.kind().as_bytes())?;
    out.write_all(b"\",\"t\":")?;
    out.write_all(time.t.as_bytes())?;
    // `ts` is digits and punctuation: no escape needed.
    out.write_all(b",\"ts\":\"")?;
    out.write_all(time.ts.as_bytes())?;
    out.write_all(b"\"")?;
    members(out, record)?;
    if let Some(l) = label {
        out.write_all(b",\"label\":")?;
        string(out, l)?;
    }
    if let Some(s) = stream {
        out.write_all(b",\"stream\":")?;
        string(out, s)?;
    }
    labels(out, stamp)?;
    out.write_all(b"}\n")
}

/// [`write`] for a record with no time (`hsmon decode`, `hsmon explain`: nothing happened at
/// a moment): `type`, the members, the `--label` members.
pub fn write_untimed<W: Write + ?Sized, R: Record + ?Sized>(
    out: &mut W,
    record: &R,
    stamp: &Stamp,
) -> io::Result<()> {
    out.write_all(b"{\"type\":\"")?;
    out.write_all(record.kind().as_bytes())?;
    out.write_all(b"\"")?;
    members(out, record)?;
    labels(out, stamp)?;
    out.write_all(b"}\n")
}

/// The `--label` members, each `,"key":"value"`.
fn labels<W: Write + ?Sized>(out: &mut W, stamp: &Stamp) -> io::Result<()> {
    for (k, v) in &stamp.labels {
        out.write_all(b",")?;
        string(out, k)?;
        out.write_all(b":")?;
        string(out, v)?;
    }
    Ok(())
}

use json::members;
pub use json::string;

/// Bytes as a hex string member (`"68 04 04 68"`, see [`crate::hex::write_spaced`]),
/// formatted straight into the output: a 4 KiB read is 12 KiB of text without a String or
/// an escape scan (hex digits and spaces need none). It serializes as bytes, which the
/// record serializer ([`json`]) writes as that string; another serializer
/// (`serde_json::to_value`) sees the bytes. `Display` gives the same text.
#[derive(Debug, Clone, Copy)]
pub struct Hex<'a>(pub &'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const PER_WRITE: usize = 256;
        let mut buf = [0u8; PER_WRITE * 3];
        for (n, piece) in self.0.chunks(PER_WRITE).enumerate() {
            let mut len = 0;
            for (slot, &b) in buf.chunks_exact_mut(3).zip(piece) {
                let [h, l] = crate::hex::pair(b);
                slot.copy_from_slice(&[b' ', h, l]);
                len += 3;
            }
            // Each byte was written as " XY": the very first space is dropped.
            let from = usize::from(n == 0);
            let text = std::str::from_utf8(buf.get(from..len).unwrap_or_default())
                .map_err(|_| std::fmt::Error)?;
            f.write_str(text)?;
        }
        Ok(())
    }
}

/// Milliseconds with microsecond resolution (`latency_ms`, `elapsed_ms`), or None.
pub fn millis(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Serialize)]
    struct Sample<'a> {
        text: &'a str,
        n: u64,
        hex: Hex<'a>,
        nested: Vec<Nested>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<u8>,
        null: Option<u8>,
    }

    #[derive(Serialize)]
    struct Nested {
        a: u8,
        b: bool,
    }

    impl Record for Sample<'_> {
        fn kind(&self) -> &'static str {
            "sample"
        }
    }

    #[test]
    fn a_record_is_one_line_with_type_time_members_and_labels() {
        let stamp = Stamp {
            start_unix_ns: 0,
            labels: vec![("site".into(), "lab \u{1b}[2J".into())],
        };
        let r = Sample {
            text: "a\u{1b}b\u{9b}c\u{202e}d\u{200b}e\u{feff}\"",
            n: 7,
            hex: Hex(&[0x68, 0x04]),
            nested: vec![Nested { a: 1, b: true }, Nested { a: 2, b: false }],
            gone: None,
            null: None,
        };
        let mut out = Vec::new();
        write(
            &mut out,
            &r,
            &Time::at(Duration::from_micros(12_300), &stamp),
            Some("meter"),
            &stamp,
        )
        .unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"sample\",\"t\":0.0123,\"ts\":\"1970-01-01T00:00:00.012300Z\",\
             \"text\":\"a\\u001bb\\u009bc\\u202ed\\u200be\\ufeff\\\"\",\"n\":7,\"hex\":\"68 04\",\
             \"nested\":[{\"a\":1,\"b\":true},{\"a\":2,\"b\":false}],\"null\":null,\
             \"label\":\"meter\",\"site\":\"lab \\u001b[2J\"}\n"
        );
        let back: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back["text"], "a\u{1b}b\u{9b}c\u{202e}d\u{200b}e\u{feff}\"");
    }

    #[test]
    fn hex_members_equal_hex_string_at_every_length() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 256) as u8).collect();
        for len in [0, 1, 2, 255, 256, 257, 513, 1000] {
            let b = &bytes[..len];
            assert_eq!(Hex(b).to_string(), crate::hex::spaced(b));
        }
    }
}
