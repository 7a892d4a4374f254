//! The only way device bytes reach the terminal: every byte becomes a printable character,
//! so no control character or escape sequence from a device is ever written raw. Text that
//! carries device-controlled characters (a decoded line, a reader name, a reason read from a
//! capture) goes through [`printable`]; JSON strings through [`write_terminal_safe`] (the
//! records of `crate::record`, and [`write_json_line`] for a `serde_json::Value`).

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

/// [`printable`] line by line: a multi-line text (a report, an explanation) keeps its line
/// breaks, and nothing else unsafe.
pub fn printable_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&printable(line));
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

/// Zero-width characters hide text or make two different strings look the same.
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// A character that must not reach a terminal as itself: C0, DEL and C1 controls (C1 as
/// UTF-8 is a CSI or OSC to some terminals; U+009B is CSI), bidi controls, zero-width
/// characters, and the line and paragraph separators some terminals break lines at.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || is_zero_width(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// serde_json escapes C0 controls, quotes and backslashes; this also escapes DEL, C1,
/// bidi controls, zero-width characters and separators as `\uXXXX`, so a JSON line printed to
/// a terminal is inert and still the same JSON (a parser reads the same strings back).
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_terminal_safe(writer, fragment)
    }
}

/// A piece of a JSON string that serde_json has already escaped for JSON (no quote, backslash
/// or C0 control left in it), written with every other [`is_unsafe`] character as a `\uXXXX`
/// escape: the one escaping of JSON output (headless records, exports, `decode`).
#[inline]
pub fn write_terminal_safe<W: ?Sized + Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    // Hex strings and most text are ASCII below DEL: written as they are. Folded without an
    // early exit so the check runs many bytes a step.
    if fragment.bytes().fold(true, |ok, b| ok & (b < 0x7f)) {
        return writer.write_all(fragment.as_bytes());
    }
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if is_unsafe(c) {
            writer.write_all(fragment.as_bytes().get(start..i).unwrap_or_default())?;
            // Every such character is in the Basic Multilingual Plane: one escape.
            write!(writer, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
    }
    writer.write_all(fragment.as_bytes().get(start..).unwrap_or_default())
}

/// One JSON value and a newline, with every string terminal-safe (see [`TerminalSafe`]): the
/// outputs that are not records (`hsmon decode`, `hsmon explain`).
pub fn write_json_line<W: Write + ?Sized>(out: &mut W, v: &serde_json::Value) -> io::Result<()> {
    use serde::Serialize;
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, TerminalSafe);
    v.serialize(&mut ser).map_err(io::Error::from)?;
    out.write_all(b"\n")
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
    fn json_f64_is_what_serde_json_writes() {
        for v in [0.0123, 1.0, 1e-7, 123456.789, f64::MAX, f64::MIN_POSITIVE] {
            assert_eq!(
                JsonF64::new(v).as_bytes(),
                serde_json::to_string(&v).unwrap().as_bytes(),
                "{v}"
            );
        }
        assert_eq!(JsonF64::new(f64::NAN).as_bytes(), b"null");
        assert_eq!(JsonF64::new(f64::INFINITY).as_bytes(), b"null");
    }

    #[test]
    fn zero_width_characters_are_unsafe() {
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{9B}', '\u{7F}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
        }
        assert_eq!(printable("a\u{200B}b\u{FEFF}"), "a\\u{200B}b\\u{FEFF}");
    }

    #[test]
    fn printable_lines_keeps_line_breaks_only() {
        assert_eq!(
            printable_lines("a\u{1b}[2J\nb\u{200b}\r\n"),
            "a\\x1B[2J\nb\\u{200B}\\x0D\n"
        );
    }

    #[test]
    fn bytes_printable_escapes() {
        assert_eq!(bytes_printable(b"hi\r\n\x1b\\"), "hi\\r\\n\\x1B\\\\");
    }
}
