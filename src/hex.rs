//! Bytes as hex text and back: the one place hsmon formats (`68 04 04 68`, upper case, one
//! space between bytes) and parses hex. Every pane, record and decoder summary uses these, so
//! the same bytes always read the same.

use std::io::{self, Write};

const DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Two upper-case hex digits for a byte, without allocation.
pub fn pair(b: u8) -> [u8; 2] {
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]
}

/// Appends two upper-case hex digits (as `{:02X}`): decoder summaries are written by hand,
/// because every frame's is printed and `write!` costs more than the rest of the summary.
pub fn push_pair(out: &mut String, b: u8) {
    let [h, l] = pair(b);
    out.push(char::from(h));
    out.push(char::from(l));
}

/// Bytes as `68 04 04 68` (the headless, JSON and decoder form).
pub fn spaced(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().saturating_mul(3));
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        push_pair(&mut s, b);
    }
    s
}

/// Bytes as `68 04 04 68` written straight to `out` (what [`spaced`] returns), a few hundred
/// bytes at a time: a 4 KiB read becomes 12 KiB of text without a String.
pub fn write_spaced<W: Write + ?Sized>(out: &mut W, bytes: &[u8]) -> io::Result<()> {
    const PER_WRITE: usize = 256;
    let mut buf = [0u8; PER_WRITE * 3];
    for (n, piece) in bytes.chunks(PER_WRITE).enumerate() {
        let mut len = 0;
        for (slot, &b) in buf.chunks_exact_mut(3).zip(piece) {
            let [h, l] = pair(b);
            slot.copy_from_slice(&[b' ', h, l]);
            len += 3;
        }
        // Each byte was written as " XY": the very first space is dropped.
        let from = usize::from(n == 0);
        out.write_all(buf.get(from..len).unwrap_or_default())?;
    }
    Ok(())
}

/// Like [`spaced`] but at most `max_bytes` bytes, then " …" when cut (decoded field values).
pub fn spaced_at_most(bytes: &[u8], max_bytes: usize) -> String {
    let shown = bytes.get(..max_bytes).unwrap_or(bytes);
    let mut text = spaced(shown);
    if shown.len() < bytes.len() {
        text.push_str(" …");
    }
    text
}

/// Like [`spaced`] but at most `limit` bytes, then how many there were in all, so a 64 KiB
/// extended APDU does not become a 200 KiB field value.
pub fn spaced_limited(bytes: &[u8], limit: usize) -> String {
    match bytes.get(..limit) {
        Some(shown) if bytes.len() > limit => {
            format!("{} … ({} bytes in all)", spaced(shown), bytes.len())
        }
        _ => spaced(bytes),
    }
}

/// Like [`spaced`] but cut to `max` bytes with the total length, for narrow panes.
pub fn spaced_cut(bytes: &[u8], max: usize) -> String {
    match bytes.get(..max) {
        Some(shown) if bytes.len() > max => {
            format!("{} … ({} bytes)", spaced(shown), bytes.len())
        }
        _ => spaced(bytes),
    }
}

/// Why typed hex is not bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HexError {
    #[error("odd number of hex digits ({0}): each byte needs two digits, e.g. 0A not A")]
    OddDigits(usize),
    #[error("'{0}' is not a hex digit: use 0-9 and A-F, bytes separated by spaces if you like")]
    BadDigit(char),
}

/// Parses hex bytes: "68 04 04 68", "68040468", "0x68,0x04" (separators: space, comma, colon,
/// hyphen).
pub fn parse(s: &str) -> Result<Vec<u8>, HexError> {
    let mut digits = Vec::with_capacity(s.len());
    let cleaned = s.replace("0x", " ").replace("0X", " ");
    for c in cleaned.chars() {
        if c.is_whitespace() || c == ',' || c == ':' || c == '-' {
            continue;
        }
        let d = c.to_digit(16).ok_or(HexError::BadDigit(c))?;
        digits.push(d as u8);
    }
    if digits.len() % 2 != 0 {
        return Err(HexError::OddDigits(digits.len()));
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spaced_formats() {
        assert_eq!(spaced(&[0x68, 0x04, 0x04, 0x68]), "68 04 04 68");
        assert_eq!(spaced(&[0x68, 0x82, 0x0C]), "68 82 0C");
        assert_eq!(spaced(&[]), "");
    }

    #[test]
    fn write_spaced_equals_spaced_at_every_length() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 256) as u8).collect();
        for len in [0, 1, 2, 255, 256, 257, 511, 512, 513, 1000] {
            let mut out = Vec::new();
            write_spaced(&mut out, &bytes[..len]).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                spaced(&bytes[..len]),
                "{len}"
            );
        }
    }

    #[test]
    fn shortened_forms() {
        assert_eq!(spaced_at_most(&[0x68, 0x0A], 8), "68 0A");
        assert_eq!(spaced_at_most(&[1, 2, 3], 2), "01 02 …");
        assert_eq!(spaced_limited(&[1, 2, 3], 2), "01 02 … (3 bytes in all)");
        assert_eq!(spaced_limited(&[1, 2], 2), "01 02");
        assert_eq!(spaced_cut(&[1, 2, 3], 2), "01 02 … (3 bytes)");
        assert_eq!(spaced_cut(&[1, 2], 2), "01 02");
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse("68 04 04 68").unwrap(), vec![0x68, 4, 4, 0x68]);
        assert_eq!(parse("68040468").unwrap(), vec![0x68, 4, 4, 0x68]);
        assert_eq!(parse("0x68,0x0a").unwrap(), vec![0x68, 0x0a]);
        assert_eq!(parse("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse("68 0"), Err(HexError::OddDigits(3)));
        assert_eq!(parse("6G"), Err(HexError::BadDigit('G')));
    }

    #[test]
    fn parse_reads_what_spaced_writes() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(parse(&spaced(&bytes)).unwrap(), bytes);
    }
}
