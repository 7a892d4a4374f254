//! The only way device bytes reach the terminal: every byte becomes a printable character,
//! so no control character or escape sequence from a device is ever written raw. Text that
//! carries device-controlled characters (a decoded line, a reader name, a reason read from a
//! capture) goes through [`printable`]; JSON lines through [`write_json_line`].

use std::io::{self, Write};

/// The ASCII-gutter character for one byte: printable ASCII as itself, everything else '.'.
pub fn gutter_char(b: u8) -> char {
    if (0x20..0x7f).contains(&b) {
        b as char
    } else {
        '.'
    }
}

/// Text that may contain device-controlled characters (a USB product string, a decoded line),
/// made safe for the terminal: control characters (C0, DEL, C1), bidirectional controls and
/// line/paragraph separators become `\xNN` / `\u{..}` escapes; other Unicode passes through.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02X}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:X}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// [`printable`] written straight to `out`: the same text, without building a String.
pub fn write_printable<W: Write + ?Sized>(out: &mut W, s: &str) -> io::Result<()> {
    // Printable ASCII (most summaries) is written as it is.
    if s.bytes().fold(true, |ok, b| ok & (0x20..0x7f).contains(&b)) {
        return out.write_all(s.as_bytes());
    }
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if is_unsafe(c) {
            out.write_all(s.as_bytes().get(start..i).unwrap_or_default())?;
            if (c as u32) < 0x100 {
                write!(out, "\\x{:02X}", c as u32)?;
            } else {
                write!(out, "\\u{{{:X}}}", c as u32)?;
            }
            start = i + c.len_utf8();
        }
    }
    out.write_all(s.as_bytes().get(start..).unwrap_or_default())
}

/// Bidirectional overrides can reorder what a user sees (the "trojan source" trick).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// A character that must not reach a terminal as itself: C0, DEL and C1 controls (C1 as
/// UTF-8 is a CSI or OSC to some terminals), bidi controls, and the line and paragraph
/// separators some terminals break lines at.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// serde_json escapes C0 controls, quotes and backslashes; this also escapes DEL, C1,
/// bidi controls and separators as `\uXXXX`, so a JSON line printed to a terminal is inert
/// and still the same JSON (a parser reads the same strings back).
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Hex strings and most text are ASCII below DEL: written as they are.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the Basic Multilingual Plane: one escape.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// One JSON value and a newline, with every string terminal-safe (see [`TerminalSafe`]).
pub fn write_json_line<W: Write + ?Sized>(out: &mut W, v: &serde_json::Value) -> io::Result<()> {
    use serde::Serialize;
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, TerminalSafe);
    v.serialize(&mut ser).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// One JSON object written as a line, member by member: the same bytes [`write_json_line`]
/// writes for the equal `serde_json::Value` (members in the order written, numbers and
/// string escapes as serde_json writes them, every string terminal-safe), without building
/// the value. The headless records of every read, frame and diagnosis go through it.
///
/// Keys are written as given: they must be plain ASCII names (the record formats' own).
pub struct JsonLine<'w, W: Write + ?Sized> {
    out: &'w mut W,
    first: bool,
}

impl<'w, W: Write + ?Sized> JsonLine<'w, W> {
    /// Opens the object.
    #[inline]
    pub fn begin(out: &'w mut W) -> io::Result<Self> {
        out.write_all(b"{")?;
        Ok(JsonLine { out, first: true })
    }

    /// `,"key":` (no comma before the first). Inlined, so a literal key is copied with a
    /// few stores rather than a `memcpy` call (a frame record has a dozen members).
    #[inline(always)]
    fn key(&mut self, key: &str) -> io::Result<()> {
        if self.first {
            self.first = false;
            self.out.write_all(b"\"")?;
        } else {
            self.out.write_all(b",\"")?;
        }
        self.out.write_all(key.as_bytes())?;
        self.out.write_all(b"\":")
    }

    /// A string member, escaped as serde_json does and terminal-safe.
    #[inline]
    pub fn str(&mut self, key: &str, value: &str) -> io::Result<&mut Self> {
        self.key(key)?;
        // Printable ASCII without quote or backslash (ids, names, most summaries) is written
        // as it is, as serde_json and `TerminalSafe` would write it.
        if is_plain_json(value) {
            self.out.write_all(b"\"")?;
            self.out.write_all(value.as_bytes())?;
            return self.out.write_all(b"\"").map(|()| self);
        }
        write_json_string(&mut *self.out, value)?;
        Ok(self)
    }

    /// A number member written as serde_json writes an `f64` (`null` if not finite).
    #[inline]
    pub fn f64(&mut self, key: &str, value: f64) -> io::Result<&mut Self> {
        use serde_json::ser::Formatter;
        self.key(key)?;
        if value.is_finite() {
            TerminalSafe.write_f64(&mut *self.out, value)?;
        } else {
            TerminalSafe.write_null(&mut *self.out)?;
        }
        Ok(self)
    }

    /// A number member already formatted (see [`JsonF64`]).
    #[inline]
    pub fn f64_text(&mut self, key: &str, value: &JsonF64) -> io::Result<&mut Self> {
        self.key(key)?;
        self.out.write_all(value.as_bytes())?;
        Ok(self)
    }

    /// An unsigned integer member.
    #[inline]
    pub fn u64(&mut self, key: &str, value: u64) -> io::Result<&mut Self> {
        use serde_json::ser::Formatter;
        self.key(key)?;
        TerminalSafe.write_u64(&mut *self.out, value)?;
        Ok(self)
    }

    /// A `true`/`false` member.
    #[inline]
    pub fn bool(&mut self, key: &str, value: bool) -> io::Result<&mut Self> {
        self.key(key)?;
        self.out.write_all(if value { b"true" } else { b"false" })?;
        Ok(self)
    }

    /// Bytes as a hex string member (`"68 04 04 68"`, see [`crate::hex::write_spaced`]): hex digits and
    /// spaces need no escape, so they are written as they are made.
    pub fn hex(&mut self, key: &str, bytes: &[u8]) -> io::Result<&mut Self> {
        self.key(key)?;
        self.out.write_all(b"\"")?;
        crate::hex::write_spaced(&mut *self.out, bytes)?;
        self.out.write_all(b"\"")?;
        Ok(self)
    }

    /// `"t"` (rounded to microseconds) and `"ts"` (wall clock) of a record `at` after the
    /// session start, as [`crate::stamp::stamp_value`] writes them.
    pub fn stamp(
        &mut self,
        at: std::time::Duration,
        stamp: &crate::stamp::Stamp,
    ) -> io::Result<&mut Self> {
        let (t, ts) = stamp.times(at);
        self.f64("t", t)?.str("ts", &ts)
    }

    /// [`JsonLine::stamp`] with the time already formatted (see [`JsonF64`]).
    pub fn stamp_text(&mut self, t: &JsonF64, ts: &str) -> io::Result<&mut Self> {
        self.f64_text("t", t)?.str("ts", ts)
    }

    /// The `--label` members, last in every record.
    pub fn labels(&mut self, stamp: &crate::stamp::Stamp) -> io::Result<&mut Self> {
        for (k, v) in &stamp.labels {
            self.str(k, v)?;
        }
        Ok(self)
    }

    /// Closes the object and the line.
    #[inline]
    pub fn end(&mut self) -> io::Result<()> {
        self.out.write_all(b"}\n")
    }
}

/// Printable ASCII without `"` or `\`: a JSON string that needs no escape, from serde_json
/// or [`TerminalSafe`]. Folded without an early exit so the check runs 16 or 32 bytes a step.
fn is_plain_json(s: &str) -> bool {
    s.bytes().fold(true, |plain, b| {
        plain & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
    })
}

/// A string as serde_json writes it (quoted, escaped), terminal-safe.
#[inline(never)]
fn write_json_string<W: Write + ?Sized>(out: &mut W, value: &str) -> io::Result<()> {
    use serde::Serialize;
    let mut ser = serde_json::Serializer::with_formatter(out, TerminalSafe);
    value.serialize(&mut ser).map_err(io::Error::other)
}

/// An `f64` formatted once as serde_json writes it (`null` if not finite), for a member many
/// records repeat: the frames found in one read share its time.
#[derive(Debug, Clone, Copy)]
pub struct JsonF64 {
    text: [u8; 32],
    len: usize,
}

impl JsonF64 {
    pub fn new(value: f64) -> JsonF64 {
        use serde_json::ser::Formatter;
        let mut text = [0u8; 32];
        let mut cursor = io::Cursor::new(&mut text[..]);
        let written = if value.is_finite() {
            TerminalSafe.write_f64(&mut cursor, value)
        } else {
            TerminalSafe.write_null(&mut cursor)
        };
        // An f64 takes at most 24 characters; should it not fit, `null` is still valid JSON.
        let len = match written {
            Ok(()) => usize::try_from(cursor.position()).unwrap_or(0),
            Err(_) => 0,
        };
        if len == 0 {
            text[..4].copy_from_slice(b"null");
            return JsonF64 { text, len: 4 };
        }
        JsonF64 { text, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.text.get(..self.len).unwrap_or(b"null")
    }
}

/// Raw device bytes as text for a one-line preview: printable ASCII kept, the rest escaped.
pub fn bytes_printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gutter_is_printable_for_every_byte() {
        for b in 0..=255u8 {
            let c = gutter_char(b);
            assert!(!c.is_control(), "byte {b:#04x} -> control {c:?}");
        }
        assert_eq!(gutter_char(0x68), 'h');
        assert_eq!(gutter_char(0x1b), '.');
    }

    #[test]
    fn printable_escapes_controls() {
        let s = printable("a\u{1b}[2Jb\u{9b}c\u{202e}d");
        assert_eq!(s, "a\\x1B[2Jb\\x9Bc\\u{202E}d");
        assert!(!s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn printable_escapes_every_unsafe_character() {
        let every: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        let p = printable(&every);
        assert!(!p.chars().any(is_unsafe));
        assert!(p.contains("\\x9B") && p.contains("\\u{2029}") && p.contains("\\u{61C}"));
        // Nothing else changes.
        assert_eq!(printable("68 04 ü ñ 日本"), "68 04 ü ñ 日本");
    }

    #[test]
    fn json_lines_are_inert_and_read_back_the_same() {
        let text: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        let v = serde_json::json!({"type": "frame", "summary": text, "hex": "68 04"});
        let mut out = Vec::new();
        write_json_line(&mut out, &v).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        let body = &line[..line.len() - 1];
        assert!(!body.chars().any(is_unsafe), "a raw control in {body:?}");
        assert!(body.contains(r#""hex":"68 04""#));
        let back: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn write_printable_equals_printable() {
        let every: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        for s in [
            "",
            "plain ascii",
            "a\u{1b}[2Jb\u{9b}c\u{202e}d",
            "68 04 ü ñ 日本",
            &every,
        ] {
            let mut out = Vec::new();
            write_printable(&mut out, s).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), printable(s));
        }
    }

    #[test]
    fn json_line_writes_what_the_value_writes() {
        let text: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        for (t, n, b) in [
            (0.0123, 7u64, true),
            (1.0, 0, false),
            (1e-7, u64::MAX, true),
            (123456.789, 42, false),
        ] {
            let mut fast = Vec::new();
            JsonLine::begin(&mut fast)
                .unwrap()
                .str("type", "frame")
                .unwrap()
                .f64("t", t)
                .unwrap()
                .u64("n", n)
                .unwrap()
                .bool("b", b)
                .unwrap()
                .hex("hex", &[0x68, 0x04, 0x00, 0xFF])
                .unwrap()
                .str("summary", &text)
                .unwrap()
                .str("quoted", "a \"b\" \\c\u{7f}")
                .unwrap()
                .str("a_key_longer_than_the_buffer_holds_in_one_piece", "x")
                .unwrap()
                .end()
                .unwrap();
            let v = serde_json::json!({
                "type": "frame", "t": t, "n": n, "b": b, "hex": "68 04 00 FF", "summary": text,
                "quoted": "a \"b\" \\c\u{7f}",
                "a_key_longer_than_the_buffer_holds_in_one_piece": "x",
            });
            let mut slow = Vec::new();
            write_json_line(&mut slow, &v).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
        let mut out = Vec::new();
        JsonLine::begin(&mut out)
            .unwrap()
            .f64("t", f64::NAN)
            .unwrap()
            .end()
            .unwrap();
        assert_eq!(out, b"{\"t\":null}\n");
        for v in [
            0.0123,
            1.0,
            1e-7,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            JsonLine::begin(&mut a)
                .unwrap()
                .f64("t", v)
                .unwrap()
                .end()
                .unwrap();
            JsonLine::begin(&mut b)
                .unwrap()
                .f64_text("t", &JsonF64::new(v))
                .unwrap()
                .end()
                .unwrap();
            assert_eq!(a, b, "{v}");
        }
    }

    #[test]
    fn bytes_printable_escapes() {
        assert_eq!(bytes_printable(b"hi\r\n\x1b\\"), "hi\\r\\n\\x1B\\\\");
    }
}
