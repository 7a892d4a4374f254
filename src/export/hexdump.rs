//! A readable dump for bug reports: a header naming the session, then one entry per event —
//! time since start, direction and a `hexdump -C`-style dump of its bytes (offsets are stream
//! offsets, as in the hex pane). Text from the file goes through `sanitize::printable`, so the
//! dump is safe to `cat` to a terminal even from a crafted capture.

use std::io::{self, Write};

use super::{Exporter, text_without_time};
use crate::capture::reader::{CaptureHeader, Record};
use crate::event::{CardEvent, Event};
use crate::sanitize::{gutter_char, printable};

pub struct HexdumpExporter;

/// Indent of dump lines under an entry (the width of the time column plus one).
const INDENT: &str = "             ";

impl Exporter for HexdumpExporter {
    fn begin(&mut self, h: &CaptureHeader, out: &mut dyn Write) -> io::Result<()> {
        let m = &h.meta;
        writeln!(out, "# hsmon capture")?;
        writeln!(out, "# source:   {}", printable(&m.source))?;
        writeln!(out, "# started:  {}", m.started_rfc3339())?;
        if let Some(s) = m.settings {
            writeln!(out, "# settings: {s}")?;
        }
        writeln!(
            out,
            "# written by hsmon {} (capture format {}.{})",
            printable(&m.hsmon_version),
            h.version.0,
            h.version.1
        )?;
        writeln!(
            out,
            "# time is seconds since the start; rx = from the device, tx = to it"
        )?;
        writeln!(out)
    }

    fn event(&mut self, rec: &Record, out: &mut dyn Write) -> io::Result<u64> {
        let t = rec.event.at.as_secs_f64();
        match &rec.event.event {
            Event::Rx(b) | Event::Tx(b) => {
                let (dir, off) = match rec.event.event {
                    Event::Rx(_) => ("rx", rec.rx),
                    _ => ("tx", rec.tx),
                };
                writeln!(
                    out,
                    "{t:12.6} {dir} {} bytes at {dir} offset {off}",
                    b.len()
                )?;
                dump(out, "", off, b)?;
            }
            Event::Apdu(x) => {
                writeln!(out, "{t:12.6} {}", printable(&text_without_time(rec)))?;
                dump(out, "> ", 0, &x.command)?;
                dump(out, "< ", 0, &x.response)?;
            }
            Event::Card(CardEvent::Inserted { atr, .. } | CardEvent::Connected { atr, .. }) => {
                writeln!(out, "{t:12.6} {}", printable(&text_without_time(rec)))?;
                dump(out, "ATR ", 0, atr)?;
            }
            _ => writeln!(out, "{t:12.6} {}", printable(&text_without_time(rec)))?,
        }
        Ok(1)
    }
}

/// `hexdump -C` lines: offset, 16 bytes in two groups of 8, and the printable-ASCII gutter.
fn dump(out: &mut dyn Write, mark: &str, start: u64, bytes: &[u8]) -> io::Result<()> {
    for (i, row) in bytes.chunks(16).enumerate() {
        let mut hex = String::with_capacity(50);
        for k in 0..16 {
            if k == 8 {
                hex.push(' ');
            }
            match row.get(k) {
                Some(&b) => {
                    let [h, l] = crate::hex::pair(b);
                    hex.push(h as char);
                    hex.push(l as char);
                    hex.push(' ');
                }
                None => hex.push_str("   "),
            }
        }
        let gutter: String = row.iter().map(|&b| gutter_char(b)).collect();
        writeln!(
            out,
            "{INDENT}{mark}{:08x}  {hex} |{gutter}|",
            start + (i * 16) as u64
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dump_lines_look_like_hexdump_c() {
        let mut out = Vec::new();
        let bytes: Vec<u8> = (0x60..0x72).collect();
        dump(&mut out, "", 0x10, &bytes).unwrap();
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "             00000010  60 61 62 63 64 65 66 67  68 69 6A 6B 6C 6D 6E 6F  |`abcdefghijklmno|",
                "             00000020  70 71                                             |pq|",
            ]
        );
    }
}
