//! The send line: what the user types to transmit, in text (with escapes) or hex, and its
//! one-line rendering at the bottom of the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    Text,
    Hex,
}

/// What the text mode appends when Enter sends a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    None,
    #[default]
    Cr,
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::None => b"",
            LineEnding::Cr => b"\r",
            LineEnding::Lf => b"\n",
            LineEnding::CrLf => b"\r\n",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendParseError {
    #[error("odd number of hex digits ({0}): each byte needs two digits, e.g. 0A not A")]
    OddHex(usize),
    #[error("'{0}' is not a hex digit: use 0-9 and A-F, bytes separated by spaces if you like")]
    BadHexDigit(char),
    #[error("bad escape '\\{0}': use \\r \\n \\t \\\\ or \\xNN")]
    BadEscape(String),
}

/// Parses hex bytes: "68 04 04 68", "68040468", "0x68,0x04" (separators: space, comma, colon).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, SendParseError> {
    let mut digits = Vec::with_capacity(s.len());
    let cleaned = s.replace("0x", " ").replace("0X", " ");
    for c in cleaned.chars() {
        if c.is_whitespace() || c == ',' || c == ':' || c == '-' {
            continue;
        }
        let d = c.to_digit(16).ok_or(SendParseError::BadHexDigit(c))?;
        digits.push(d as u8);
    }
    if digits.len() % 2 != 0 {
        return Err(SendParseError::OddHex(digits.len()));
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Parses text with escapes: \r \n \t \0 \\ \xNN; other characters as UTF-8.
pub fn parse_text(s: &str) -> Result<Vec<u8>, SendParseError> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                let byte = (h.len() == 2)
                    .then(|| u8::from_str_radix(&h, 16).ok())
                    .flatten()
                    .ok_or_else(|| SendParseError::BadEscape(format!("x{h}")))?;
                out.push(byte);
            }
            Some(other) => return Err(SendParseError::BadEscape(other.to_string())),
            None => return Err(SendParseError::BadEscape(String::new())),
        }
    }
    Ok(out)
}

/// The bytes a send line stands for.
pub fn parse(s: &str, mode: SendMode, ending: LineEnding) -> Result<Vec<u8>, SendParseError> {
    match mode {
        SendMode::Hex => parse_hex(s),
        SendMode::Text => {
            let mut b = parse_text(s)?;
            b.extend_from_slice(ending.bytes());
            Ok(b)
        }
    }
}

/// Draws the line editor: a prompt, the text, and an error if the last Enter was refused.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    prompt: &str,
    text: &str,
    error: Option<&str>,
    theme: &Theme,
) {
    let mut spans = vec![
        Span::styled(prompt.to_string(), theme.hint_key),
        Span::styled(crate::sanitize::printable(text), theme.input),
        Span::styled("█", theme.input),
    ];
    if let Some(e) = error {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(e.to_string(), theme.error));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("68 04 04 68").unwrap(), vec![0x68, 4, 4, 0x68]);
        assert_eq!(parse_hex("68040468").unwrap(), vec![0x68, 4, 4, 0x68]);
        assert_eq!(parse_hex("0x68,0x0a").unwrap(), vec![0x68, 0x0a]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("68 0"), Err(SendParseError::OddHex(3)));
        assert_eq!(parse_hex("6G"), Err(SendParseError::BadHexDigit('G')));
    }

    #[test]
    fn text_escapes() {
        assert_eq!(parse_text("AT\\r\\n").unwrap(), b"AT\r\n");
        assert_eq!(parse_text("\\x68\\x00").unwrap(), vec![0x68, 0]);
        assert_eq!(parse_text("a\\\\b").unwrap(), b"a\\b");
        assert!(parse_text("\\q").is_err());
        assert!(parse_text("\\x6").is_err());
        assert!(parse_text("\\").is_err());
        assert_eq!(
            parse("AT", SendMode::Text, LineEnding::Cr).unwrap(),
            b"AT\r"
        );
        assert_eq!(parse("41", SendMode::Hex, LineEnding::CrLf).unwrap(), b"A");
    }
}
