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

/// Two upper-case hex digits for a byte, without allocation.
pub fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [DIGITS[(b >> 4) as usize], DIGITS[(b & 0x0f) as usize]]
}

/// Bytes as `68 04 04 68` (the headless and JSON hex form).
pub fn hex_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let [h, l] = hex_pair(b);
        s.push(h as char);
        s.push(l as char);
    }
    s
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
pub fn write_json_line<W: Write>(out: &mut W, v: &serde_json::Value) -> io::Result<()> {
    use serde::Serialize;
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, TerminalSafe);
    v.serialize(&mut ser).map_err(io::Error::other)?;
    out.write_all(b"\n")
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
    fn hex_string_formats() {
        assert_eq!(hex_string(&[0x68, 0x04, 0x04, 0x68]), "68 04 04 68");
        assert_eq!(hex_string(&[]), "");
    }

    #[test]
    fn bytes_printable_escapes() {
        assert_eq!(bytes_printable(b"hi\r\n\x1b\\"), "hi\\r\\n\\x1B\\\\");
    }
}
