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
    #[error(transparent)]
    Hex(#[from] crate::hex::HexError),
    #[error("bad escape '\\{0}': use \\r \\n \\t \\\\ or \\xNN")]
    BadEscape(String),
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
        SendMode::Hex => Ok(crate::hex::parse(s)?),
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
