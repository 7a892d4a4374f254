//! What a handshake step expects back, and how a reply is judged against it: hex patterns with
//! wildcard nibbles and bit masks, lengths (fixed, or read from a length byte of the reply),
//! an optional preamble to skip, a suffix the reply ends with, and alternatives. Pure.
//!
//! Streaming replies are judged as they arrive: every expectation is prefix-monotonic, so once
//! a reply is [`ReplyMatch::Wrong`] no later byte can make it right, and [`ReplyMatch::Complete`]
//! says how many bytes the answer took (bytes after it belong to no step).

use std::fmt;

/// The longest reply a step waits for when the expectation gives no length (bytes).
pub const MAX_REPLY: usize = 4096;

/// One expected byte: `value` where `mask` has 1 bits; 0 bits are "any".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatByte {
    pub value: u8,
    pub mask: u8,
}

impl PatByte {
    pub const fn exact(value: u8) -> PatByte {
        PatByte { value, mask: 0xFF }
    }

    pub fn matches(self, b: u8) -> bool {
        b & self.mask == self.value & self.mask
    }
}

impl fmt::Display for PatByte {
    /// `68`, `XX`, `X8`; a mask that is not whole nibbles shows the values it allows when
    /// they are few (`{08|18|28|38}`), else as `value/mask` (`08/0F`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nib = |shift: u8| {
            let m = (self.mask >> shift) & 0x0F;
            match m {
                0x0F => Some(char::from_digit(
                    u32::from((self.value >> shift) & 0x0F),
                    16,
                )),
                0 => Some(Some('X')),
                _ => None,
            }
        };
        match (nib(4), nib(0)) {
            (Some(Some(h)), Some(Some(l))) => {
                write!(f, "{}{}", h.to_ascii_uppercase(), l.to_ascii_uppercase())
            }
            _ if (!self.mask).count_ones() <= 2 => {
                let values: Vec<String> = (0..=255u8)
                    .filter(|&v| self.matches(v))
                    .map(|v| format!("{v:02X}"))
                    .collect();
                write!(f, "{{{}}}", values.join("|"))
            }
            _ => write!(f, "{:02X}/{:02X}", self.value & self.mask, self.mask),
        }
    }
}

/// A byte pattern: hex digits, `X` for any nibble (`68 XX XX 68 X8`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern(pub Vec<PatByte>);

/// Why a hex pattern could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("'{0}' is not a hex digit or X")]
    BadDigit(char),
    #[error("an odd number of hex digits ({0}): every byte takes two, e.g. 05 not 5")]
    Odd(usize),
    #[error("the mask has {mask} bytes but the pattern has {pattern}: give one mask byte per byte")]
    MaskLength { mask: usize, pattern: usize },
    #[error("the pattern is longer than {MAX_REPLY} bytes")]
    TooLong,
}

impl Pattern {
    /// Parses `"68 XX XX 68"` / `"68xxxx68"`: spaces ignored, `X` any nibble.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let mut nibbles: Vec<Option<u8>> = Vec::new();
        for c in text.chars() {
            if c.is_whitespace() {
                continue;
            }
            if c == 'X' || c == 'x' {
                nibbles.push(None);
                continue;
            }
            let d = c.to_digit(16).ok_or(PatternError::BadDigit(c))?;
            nibbles.push(Some(d as u8));
            if nibbles.len() > MAX_REPLY * 2 {
                return Err(PatternError::TooLong);
            }
        }
        if nibbles.len() % 2 != 0 {
            return Err(PatternError::Odd(nibbles.len()));
        }
        Ok(Pattern(
            nibbles
                .chunks(2)
                .map(|p| {
                    let (h, hm) = p.first().copied().flatten().map_or((0, 0), |v| (v, 0x0F));
                    let (l, lm) = p.get(1).copied().flatten().map_or((0, 0), |v| (v, 0x0F));
                    PatByte {
                        value: (h << 4) | l,
                        mask: (hm << 4) | lm,
                    }
                })
                .collect(),
        ))
    }

    /// Narrows the pattern with a bit mask, one mask byte per pattern byte.
    pub fn with_mask(mut self, mask: &[u8]) -> Result<Pattern, PatternError> {
        if mask.len() != self.0.len() {
            return Err(PatternError::MaskLength {
                mask: mask.len(),
                pattern: self.0.len(),
            });
        }
        for (p, m) in self.0.iter_mut().zip(mask) {
            p.mask &= m;
        }
        Ok(self)
    }

    pub fn exact(bytes: &[u8]) -> Pattern {
        Pattern(bytes.iter().map(|&b| PatByte::exact(b)).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `bytes` (at most as long as the pattern) match its first bytes.
    fn matches_start(&self, bytes: &[u8]) -> bool {
        self.0.iter().zip(bytes).all(|(p, &b)| p.matches(b))
    }

    /// The leading bytes that are fully fixed (up to the first wildcard bit).
    pub fn fixed_prefix(&self) -> Vec<u8> {
        self.0
            .iter()
            .take_while(|p| p.mask == 0xFF)
            .map(|p| p.value)
            .collect()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// How long a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// As long as the pattern; with a suffix, up to the first place the suffix matches.
    Implied,
    /// Exactly this many bytes (after any preamble).
    Exact(usize),
    /// The byte at `offset` (after any preamble) plus `add`: M-Bus `68 L L 68 …` is L + 6.
    FromByte { offset: usize, add: usize },
}

/// One acceptable reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Leading bytes of this value are skipped before matching (DL/T 645's optional `FE`s).
    pub preamble: Option<u8>,
    /// What the reply starts with.
    pub prefix: Pattern,
    /// What the reply ends with (a SLIP `C0`, a status word `90 00`).
    pub suffix: Pattern,
    pub length: Length,
}

/// How a reply stands against an expectation so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMatch {
    /// The first `len` bytes are a whole answer that matches (alternative `alt`).
    Complete { alt: usize, len: usize },
    /// Could still match with more bytes.
    NeedMore,
    /// Cannot match whatever follows.
    Wrong,
}

impl Matcher {
    /// Exactly these bytes.
    pub fn exact(bytes: &[u8]) -> Matcher {
        Matcher {
            preamble: None,
            prefix: Pattern::exact(bytes),
            suffix: Pattern::default(),
            length: Length::Implied,
        }
    }

    /// Judges a reply that may still grow.
    pub fn judge(&self, reply: &[u8]) -> ReplyMatch {
        let skip = self.preamble_len(reply);
        let body = &reply[skip..];
        if body.is_empty() {
            return ReplyMatch::NeedMore;
        }
        let n = body.len().min(self.prefix.len());
        if !self.prefix.matches_start(&body[..n]) {
            return ReplyMatch::Wrong;
        }
        match self.needed(body) {
            Need::Bytes(need) => {
                if need < self.prefix.len().max(self.suffix.len()) {
                    // A length byte that leaves no room for the fixed part.
                    return if body.len() >= self.prefix.len() {
                        ReplyMatch::Wrong
                    } else {
                        ReplyMatch::NeedMore
                    };
                }
                if body.len() < need {
                    return ReplyMatch::NeedMore;
                }
                if self.suffix_at(body, need) {
                    ReplyMatch::Complete {
                        alt: 0,
                        len: skip + need,
                    }
                } else {
                    ReplyMatch::Wrong
                }
            }
            Need::Unknown => ReplyMatch::NeedMore,
            Need::UntilSuffix => {
                let min = (self.prefix.len() + self.suffix.len()).max(1);
                match (min..=body.len()).find(|&end| self.suffix_at(body, end)) {
                    Some(end) => ReplyMatch::Complete {
                        alt: 0,
                        len: skip + end,
                    },
                    None if body.len() >= MAX_REPLY => ReplyMatch::Wrong,
                    None => ReplyMatch::NeedMore,
                }
            }
        }
    }

    /// Judges a reply that arrived whole (a card's response): all of it must be the answer.
    pub fn judge_whole(&self, reply: &[u8]) -> bool {
        let skip = self.preamble_len(reply);
        let body = &reply[skip..];
        if body.len() < self.prefix.len() || !self.prefix.matches_start(body) {
            return false;
        }
        match self.needed(body) {
            Need::Bytes(need) => need == body.len() && self.suffix_at(body, need),
            Need::Unknown => false,
            Need::UntilSuffix => {
                body.len() >= self.prefix.len() + self.suffix.len()
                    && self.suffix_at(body, body.len())
            }
        }
    }

    fn preamble_len(&self, reply: &[u8]) -> usize {
        match self.preamble {
            Some(p) => reply.iter().take_while(|&&b| b == p).count(),
            None => 0,
        }
    }

    fn needed(&self, body: &[u8]) -> Need {
        match self.length {
            Length::Exact(n) => Need::Bytes(n),
            Length::FromByte { offset, add } => match body.get(offset) {
                Some(&l) => Need::Bytes(usize::from(l) + add),
                None => Need::Unknown,
            },
            Length::Implied if self.suffix.is_empty() => Need::Bytes(self.prefix.len()),
            Length::Implied => Need::UntilSuffix,
        }
    }

    /// Whether `body[..end]` ends with the suffix.
    fn suffix_at(&self, body: &[u8], end: usize) -> bool {
        let Some(start) = end.checked_sub(self.suffix.len()) else {
            return false;
        };
        body.get(start..end)
            .is_some_and(|tail| self.suffix.matches_start(tail))
    }

    /// The expected byte at `index` of the body (after the preamble) of a reply of `total`
    /// body bytes, if the expectation fixes one there.
    fn expected_at(&self, index: usize, total: usize) -> Option<PatByte> {
        if let Some(p) = self.prefix.0.get(index) {
            return Some(*p);
        }
        let from_end = total.checked_sub(index + 1)?;
        let si = self.suffix.len().checked_sub(from_end + 1)?;
        self.suffix.0.get(si).copied()
    }
}

enum Need {
    Bytes(usize),
    /// The length byte has not arrived yet.
    Unknown,
    UntilSuffix,
}

impl fmt::Display for Matcher {
    /// `68 XX XX 68 X8 … (L+6 bytes, L at offset 1)`, `[FE…] 68 …`, `C0 01 08 … C0`, `… 90 00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.preamble {
            parts.push(format!("[{p:02X}…]"));
        }
        if !self.prefix.is_empty() {
            parts.push(self.prefix.to_string());
        }
        let open = match self.length {
            Length::Implied => !self.suffix.is_empty(),
            Length::Exact(n) => n > self.prefix.len() + self.suffix.len(),
            Length::FromByte { .. } => true,
        };
        if open {
            parts.push("…".to_string());
        }
        if !self.suffix.is_empty() {
            parts.push(self.suffix.to_string());
        }
        let mut s = parts.join(" ");
        match self.length {
            Length::Exact(n) if self.prefix.is_empty() && self.suffix.is_empty() => {
                s = format!("any {n} byte{}", if n == 1 { "" } else { "s" });
            }
            Length::Exact(n) if n != self.prefix.len() + self.suffix.len() => {
                s.push_str(&format!(" ({n} bytes)"));
            }
            Length::FromByte { offset, add } => {
                s.push_str(&format!(" (L+{add} bytes, L at offset {offset})"));
            }
            _ => {}
        }
        f.write_str(&s)
    }
}

/// What a step accepts: one or more alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub alternatives: Vec<Matcher>,
}

impl Expect {
    pub fn judge(&self, reply: &[u8]) -> ReplyMatch {
        let mut need_more = false;
        for (i, m) in self.alternatives.iter().enumerate() {
            match m.judge(reply) {
                ReplyMatch::Complete { len, .. } => return ReplyMatch::Complete { alt: i, len },
                ReplyMatch::NeedMore => need_more = true,
                ReplyMatch::Wrong => {}
            }
        }
        if need_more {
            ReplyMatch::NeedMore
        } else {
            ReplyMatch::Wrong
        }
    }

    /// The alternative a whole reply matches, if any.
    pub fn judge_whole(&self, reply: &[u8]) -> Option<usize> {
        self.alternatives.iter().position(|m| m.judge_whole(reply))
    }

    /// The bytes the expectation fixes at its start (for knowledge conditions such as
    /// `expected = "E5"`): the first alternative's fixed prefix, else its fixed suffix.
    pub fn fixed_bytes(&self) -> Vec<u8> {
        let Some(m) = self.alternatives.first() else {
            return Vec::new();
        };
        let p = m.prefix.fixed_prefix();
        if p.is_empty() && m.prefix.is_empty() {
            m.suffix.0.iter().map(|b| b.value & b.mask).collect()
        } else {
            p
        }
    }

    /// Byte-by-byte comparison of `got` with the alternative that matches it best (the one
    /// whose pattern agrees with the most leading bytes).
    pub fn diff(&self, got: &[u8]) -> Vec<DiffByte> {
        let best = self
            .alternatives
            .iter()
            .max_by_key(|m| {
                let body = &got[m.preamble_len(got)..];
                m.prefix
                    .0
                    .iter()
                    .zip(body)
                    .take_while(|(p, b)| p.matches(**b))
                    .count()
            })
            .or(self.alternatives.first());
        let Some(m) = best else {
            return got.iter().map(|&b| DiffByte::extra(b)).collect();
        };
        let skip = m.preamble_len(got);
        let body = &got[skip..];
        // The length the answer should have, where the expectation says.
        let total = match m.needed(body) {
            Need::Bytes(n) => Some(n),
            _ => None,
        };
        let shown = total
            .unwrap_or(body.len())
            .max(body.len())
            .max(m.prefix.len());
        let mut out: Vec<DiffByte> = got[..skip]
            .iter()
            .map(|&b| DiffByte {
                got: Some(b),
                expected: m.preamble.map(PatByte::exact),
                ok: true,
            })
            .collect();
        for i in 0..shown.min(MAX_REPLY) {
            let g = body.get(i).copied();
            let within = total.is_none_or(|t| i < t);
            let e = if within {
                m.expected_at(i, total.unwrap_or(body.len()))
            } else {
                None
            };
            let ok = match (g, e) {
                (Some(b), Some(p)) => p.matches(b),
                (Some(_), None) => within,
                (None, _) => false,
            };
            out.push(DiffByte {
                got: g,
                expected: e,
                ok,
            });
        }
        out
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// One position of a reply compared with what was expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffByte {
    /// What arrived (None: missing).
    pub got: Option<u8>,
    /// What the expectation fixes here (None: any byte, or past the expected end).
    pub expected: Option<PatByte>,
    pub ok: bool,
}

impl DiffByte {
    fn extra(b: u8) -> DiffByte {
        DiffByte {
            got: Some(b),
            expected: None,
            ok: false,
        }
    }
}

/// A diff as text: matching bytes as they are, a wrong byte as `A0≠5F`, a missing one as
/// `__≠5F`, an extra one as `+68`.
pub fn diff_text(diff: &[DiffByte]) -> String {
    diff.iter()
        .map(|d| match (d.got, d.expected, d.ok) {
            (Some(g), _, true) => format!("{g:02X}"),
            (Some(g), Some(e), false) => format!("{g:02X}≠{e}"),
            (Some(g), None, false) => format!("+{g:02X}"),
            (None, Some(e), _) => format!("__≠{e}"),
            (None, None, _) => "__".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap()
    }

    fn pat(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn patterns_parse_with_wildcards_and_masks() {
        let p = pat("68 XX xx 68 X8");
        assert_eq!(p.len(), 5);
        assert_eq!(p.to_string(), "68 XX XX 68 X8");
        assert!(p.0[4].matches(0x08) && p.0[4].matches(0x38) && !p.0[4].matches(0x53));
        assert_eq!(p.fixed_prefix(), vec![0x68]);
        let m = pat("08").with_mask(&[0x0F]).unwrap();
        assert!(m.0[0].matches(0x18) && !m.0[0].matches(0x09));
        assert_eq!(m.0[0].to_string(), "X8");
        let odd = pat("70").with_mask(&[0x70]).unwrap();
        assert_eq!(odd.0[0].to_string(), "70/70");
        // M-Bus RSP_UD's C-field: 08 with the ACD and DFC bits free.
        let c = pat("08").with_mask(&[0xCF]).unwrap();
        assert_eq!(c.0[0].to_string(), "{08|18|28|38}");
        assert_eq!(Pattern::parse("6"), Err(PatternError::Odd(1)));
        assert_eq!(Pattern::parse("6G"), Err(PatternError::BadDigit('G')));
        assert_eq!(
            pat("68").with_mask(&[1, 2]),
            Err(PatternError::MaskLength {
                mask: 2,
                pattern: 1
            })
        );
    }

    #[test]
    fn exact_bytes_complete_at_their_length() {
        let m = Matcher::exact(&[0x79]);
        assert_eq!(m.judge(&[]), ReplyMatch::NeedMore);
        assert_eq!(m.judge(&[0x79]), ReplyMatch::Complete { alt: 0, len: 1 });
        assert_eq!(
            m.judge(&[0x79, 0x00]),
            ReplyMatch::Complete { alt: 0, len: 1 }
        );
        assert_eq!(m.judge(b"h"), ReplyMatch::Wrong);
    }

    #[test]
    fn length_from_a_length_byte_reads_an_mbus_long_frame() {
        // EN 13757-2: RSP_UD, L = 0x15, 27 bytes.
        let rsp =
            h("68 15 15 68 08 02 72 78 56 34 12 24 40 01 07 13 00 00 00 0C 78 04 03 02 01 9D 16");
        let m = Matcher {
            preamble: None,
            prefix: pat("68 XX XX 68 X8"),
            suffix: pat("16"),
            length: Length::FromByte { offset: 1, add: 6 },
        };
        assert_eq!(m.judge(&rsp[..1]), ReplyMatch::NeedMore);
        assert_eq!(m.judge(&rsp[..26]), ReplyMatch::NeedMore);
        assert_eq!(m.judge(&rsp), ReplyMatch::Complete { alt: 0, len: 27 });
        assert!(m.judge_whole(&rsp));
        // SND_UD (C = 53) is a master's frame: wrong at byte 4.
        assert_eq!(m.judge(&h("68 03 03 68 53")), ReplyMatch::Wrong);
        // E5 where a long frame was expected.
        assert_eq!(m.judge(&[0xE5]), ReplyMatch::Wrong);
        assert_eq!(
            m.to_string(),
            "68 XX XX 68 X8 … 16 (L+6 bytes, L at offset 1)"
        );
    }

    #[test]
    fn a_suffix_ends_an_open_reply_at_its_first_match() {
        // Espressif's esptool serial-protocol docs: the ROM's SYNC reply, sent several times in a row.
        let one = h("C0 01 08 04 00 07 07 12 20 00 00 00 00 C0");
        let m = Matcher {
            preamble: None,
            prefix: pat("C0 01 08"),
            suffix: pat("C0"),
            length: Length::Implied,
        };
        let mut twice = one.clone();
        twice.extend_from_slice(&one);
        assert_eq!(m.judge(&one[..13]), ReplyMatch::NeedMore);
        assert_eq!(m.judge(&twice), ReplyMatch::Complete { alt: 0, len: 14 });
        assert_eq!(m.judge(b"rst:0x1"), ReplyMatch::Wrong);
    }

    #[test]
    fn a_preamble_is_skipped() {
        let m = Matcher {
            preamble: Some(0xFE),
            prefix: pat("68"),
            suffix: Pattern::default(),
            length: Length::Implied,
        };
        assert_eq!(m.judge(&[0xFE, 0xFE]), ReplyMatch::NeedMore);
        assert_eq!(
            m.judge(&[0xFE, 0xFE, 0x68]),
            ReplyMatch::Complete { alt: 0, len: 3 }
        );
        assert_eq!(m.judge(&[0x68]), ReplyMatch::Complete { alt: 0, len: 1 });
        assert_eq!(m.to_string(), "[FE…] 68");
    }

    #[test]
    fn a_length_byte_too_small_for_the_pattern_is_wrong() {
        let m = Matcher {
            preamble: None,
            prefix: pat("68 XX XX 68"),
            suffix: Pattern::default(),
            length: Length::FromByte { offset: 1, add: 0 },
        };
        assert_eq!(m.judge(&[0x68, 0x01]), ReplyMatch::NeedMore);
        assert_eq!(m.judge(&[0x68, 0x01, 0x01, 0x68]), ReplyMatch::Wrong);
    }

    #[test]
    fn alternatives_take_the_first_complete_one() {
        let e = Expect {
            alternatives: vec![
                Matcher::exact(&[0xE5]),
                Matcher::exact(&h("10 00 01 01 16")),
            ],
        };
        assert_eq!(e.judge(&[0xE5]), ReplyMatch::Complete { alt: 0, len: 1 });
        assert_eq!(e.judge(&[0x10, 0x00]), ReplyMatch::NeedMore);
        assert_eq!(
            e.judge(&h("10 00 01 01 16")),
            ReplyMatch::Complete { alt: 1, len: 5 }
        );
        assert_eq!(e.judge(&[0x68]), ReplyMatch::Wrong);
        assert_eq!(e.to_string(), "E5 or 10 00 01 01 16");
        assert_eq!(e.fixed_bytes(), vec![0xE5]);
    }

    #[test]
    fn whole_replies_must_match_entirely() {
        let sw = Expect {
            alternatives: vec![Matcher {
                preamble: None,
                prefix: Pattern::default(),
                suffix: pat("90 00"),
                length: Length::Implied,
            }],
        };
        assert_eq!(sw.judge_whole(&h("6F 10 84 07 90 00")), Some(0));
        assert_eq!(sw.judge_whole(&h("90 00")), Some(0));
        assert_eq!(sw.judge_whole(&h("6A 82")), None);
        assert_eq!(sw.to_string(), "… 90 00");
        assert_eq!(sw.fixed_bytes(), vec![0x90, 0x00]);
        let any4 = Matcher {
            preamble: None,
            prefix: Pattern::default(),
            suffix: Pattern::default(),
            length: Length::Exact(4),
        };
        assert!(any4.judge_whole(&[1, 2, 3, 4]));
        assert!(!any4.judge_whole(&[1, 2, 3]));
        assert_eq!(
            any4.judge(&[1, 2, 3, 4, 5]),
            ReplyMatch::Complete { alt: 0, len: 4 }
        );
        assert_eq!(any4.to_string(), "any 4 bytes");
    }

    #[test]
    fn diffs_mark_wrong_missing_and_extra_bytes() {
        let e = Expect {
            alternatives: vec![Matcher::exact(&[0x5F])],
        };
        assert_eq!(diff_text(&e.diff(&[0xA0])), "A0≠5F");
        assert_eq!(diff_text(&e.diff(&[])), "__≠5F");
        assert_eq!(diff_text(&e.diff(&[0x5F, 0x68])), "5F +68");
        let long = Expect {
            alternatives: vec![Matcher {
                preamble: None,
                prefix: pat("68 XX XX 68 X8"),
                suffix: pat("16"),
                length: Length::FromByte { offset: 1, add: 6 },
            }],
        };
        assert_eq!(
            diff_text(&long.diff(&h("68 03 03 68 53 FE 50 A1 16"))),
            "68 03 03 68 53≠X8 FE 50 A1 16"
        );
        assert_eq!(
            diff_text(&long.diff(&h("68 01"))),
            "68 01 __≠XX __≠68 __≠X8 __ __≠16"
        );
    }
}
