//! The only way device bytes reach the terminal: every byte becomes a printable character,
//! so no control character or escape sequence from a device is ever written raw.

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
/// made safe for the terminal: control characters (C0, DEL, C1) become `\xNN` / `\u{..}`
/// escapes; other Unicode passes through.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_bidi_control(c) {
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
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
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
    fn hex_string_formats() {
        assert_eq!(hex_string(&[0x68, 0x04, 0x04, 0x68]), "68 04 04 68");
        assert_eq!(hex_string(&[]), "");
    }

    #[test]
    fn bytes_printable_escapes() {
        assert_eq!(bytes_printable(b"hi\r\n\x1b\\"), "hi\\r\\n\\x1B\\\\");
    }
}
