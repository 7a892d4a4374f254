//! Scoring a setting on what it received: candidate settings, the evidence a dwell gathers,
//! and the score that says how unlikely random bytes are to look like it.
//!
//! A setting scores only on evidence that random bytes would rarely produce (under 1 % per
//! dwell): printable-text statistics (as in devttys0 `baudrate.py`) whose printable share is
//! far above random bytes', checksummed frames weighed by their chance bits against the number
//! of bytes they could have come from (`decode::evidence`), and the line error counters (the
//! right rate gives ~0 framing errors). Single tokens (E5, 79, 1F) and weak frames never count:
//! wrong-rate garbage holds them as often as any other byte.

use std::fmt;

use crate::decode::all::decode_all;
use crate::decode::evidence::{Strength, WEAK_BITS};
use crate::decode::{Protocol, StreamOffset};
use crate::event::{Baud, FrameFormat, LineErrorCounts};

/// The rates devices commonly use: the standard ones, 14400 (modems, some meters) and 74880
/// (ESP8266 boot ROM). Rates outside this list lose ties to rates in it (74880 vs 76800 decode
/// each other cleanly).
pub const COMMON_RATES: [u32; 13] = [
    1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 74880, 115200, 230400, 460800, 921600,
];

/// A line setting to try: rate and character format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub baud: Baud,
    pub format: FrameFormat,
}

impl Candidate {
    pub fn new(baud: Baud, format: FrameFormat) -> Candidate {
        Candidate { baud, format }
    }

    /// `baud` with 8N1, the format almost everything uses.
    pub fn n81(baud: Baud) -> Candidate {
        Candidate::new(baud, FrameFormat::default())
    }

    /// 8N1 at each of `rates` that is a valid baud rate.
    pub fn n81_all(rates: &[u32]) -> Vec<Candidate> {
        rates
            .iter()
            .filter_map(|&r| Baud::new(r).ok())
            .map(Candidate::n81)
            .collect()
    }

    pub(super) fn with_format(self, s: &str) -> Candidate {
        match s.parse() {
            Ok(format) => Candidate { format, ..self },
            Err(_) => self,
        }
    }

    /// Tie-break rank: common rates first, 8N1 before other formats.
    pub(super) fn prior(&self) -> u8 {
        u8::from(!COMMON_RATES.contains(&self.baud.bps()))
            + u8::from(self.format != FrameFormat::default())
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.baud, self.format)
    }
}

/// What was received at one setting: the bytes, the line-error counter deltas over the same
/// time (Linux `TIOCGICOUNT`: `frame`, `parity`, `brk`), and the chance bits of each strong
/// checksummed frame found in those bytes ([`checked_frames`]; text is scored here).
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    pub bytes: &'a [u8],
    pub errors: LineErrorCounts,
    /// Chance bits of each checksummed frame at or above `WEAK_BITS`, not overlapping.
    pub frames: &'a [u16],
}

/// Below this many chance bits left after the search, evidence is not counted: random bytes
/// would show it more often than once per 100 dwells (log2 100 ≈ 6.6).
pub const SIGNIFICANT_BITS: f64 = 7.0;

/// The checksummed frames in `bytes` that random bytes would rarely make: verified checks at
/// or above [`WEAK_BITS`], one per span (where framers overlap, M-Bus and IEC 101 on the
/// same FT1.2 bytes, the stronger claims it). Returns their chance bits.
pub fn checked_frames(bytes: &[u8]) -> Vec<u16> {
    let mut found: Vec<(StreamOffset, StreamOffset, u16)> = decode_all(0, bytes)
        .iter()
        .filter(|f| f.protocol != Protocol::Text)
        .filter_map(|f| {
            let e = f.evidence();
            (e.strength == Strength::Checked && e.bits >= WEAK_BITS).then_some((
                f.span.start,
                f.span.end,
                e.bits,
            ))
        })
        .collect();
    found.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut claimed: Vec<(StreamOffset, StreamOffset)> = Vec::new();
    let mut bits = Vec::new();
    for (start, end, b) in found {
        if claimed.iter().all(|&(s, e)| end <= s || start >= e) {
            claimed.push((start, end));
            bits.push(b);
        }
    }
    bits
}

/// Chance bits left from `frames` (bits each) found among `n` bytes: each is looked for at
/// every offset, so each loses log2(n); what is left adds up (independent frames).
pub fn frame_net_bits(frames: &[u16], n: usize) -> f64 {
    let search = (n.max(1) as f64).log2();
    frames
        .iter()
        .map(|&b| (f64::from(b) - search).max(0.0))
        .sum()
}

/// Chance bits of `printable` printable bytes among `n` when random bytes are printable with
/// probability [`RANDOM_PRINTABLE`]: the Chernoff bound n·D(p̂‖p), in bits (0 when p̂ ≤ p).
pub fn printable_chance_bits(printable: usize, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let q = RANDOM_PRINTABLE;
    let p = (printable as f64 / n as f64).clamp(0.0, 1.0);
    if p <= q {
        return 0.0;
    }
    let term = |a: f64, b: f64| if a <= 0.0 { 0.0 } else { a * (a / b).log2() };
    n as f64 * (term(p, q) + term(1.0 - p, 1.0 - q))
}

/// Share of the 256 byte values that count as printable text (95 graphic and space, tab, CR,
/// LF).
pub const RANDOM_PRINTABLE: f64 = 98.0 / 256.0;

/// Maps chance bits to a score: 0 below [`SIGNIFICANT_BITS`], 0.5 at 10 bits, 0.95 at 20 bits.
fn bits_score(bits: f64) -> f64 {
    if bits < SIGNIFICANT_BITS {
        0.0
    } else {
        1.0 - (-(bits - SIGNIFICANT_BITS) / 3.0).exp2()
    }
}

/// Printable-text statistics of a byte run (devttys0 `baudrate.py` criteria and more).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TextStats {
    /// Fraction of bytes that are ASCII space…`~`, tab, CR or LF (0..=1).
    pub printable: f64,
    pub whitespace: usize,
    /// `. , : ; ? !`
    pub punctuation: usize,
    pub letters: usize,
    pub vowels: usize,
    /// CR or LF bytes.
    pub line_endings: usize,
    /// devttys0's acceptance: 25 consecutive printable bytes including a whitespace, a
    /// punctuation mark and a vowel (a non-printable byte resets the counters).
    pub devttys0_run: bool,
}

pub(super) fn is_printable(b: u8) -> bool {
    (0x20..=0x7E).contains(&b) || matches!(b, b'\t' | b'\r' | b'\n')
}

/// Computes [`TextStats`] over `bytes`.
pub fn text_stats(bytes: &[u8]) -> TextStats {
    let mut s = TextStats::default();
    let (mut run, mut run_ws, mut run_punct, mut run_vowel) = (0usize, false, false, false);
    let mut printable = 0usize;
    for &b in bytes {
        if !is_printable(b) {
            (run, run_ws, run_punct, run_vowel) = (0, false, false, false);
            continue;
        }
        printable += 1;
        run += 1;
        let lower = b.to_ascii_lowercase();
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            s.whitespace += 1;
            run_ws = true;
        }
        if matches!(b, b'\r' | b'\n') {
            s.line_endings += 1;
        }
        if matches!(b, b'.' | b',' | b':' | b';' | b'?' | b'!') {
            s.punctuation += 1;
            run_punct = true;
        }
        if lower.is_ascii_lowercase() {
            s.letters += 1;
            if matches!(lower, b'a' | b'e' | b'i' | b'o' | b'u') {
                s.vowels += 1;
                run_vowel = true;
            }
        }
        if run >= 25 && run_ws && run_punct && run_vowel {
            s.devttys0_run = true;
        }
    }
    s.printable = ratio(printable, bytes.len());
    s
}

pub(super) fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A setting's score (0..=1) and what it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    /// The overall score, 0..=1: `confidence × error_factor × max(text, frames)`.
    pub value: f64,
    /// How much the bytes look like text, 0..=1 (0 unless the printable share is one random
    /// bytes would show less than once in 100 dwells).
    pub text: f64,
    /// Chance bits of the printable share (see [`printable_chance_bits`]).
    pub text_bits: f64,
    /// Evidence from checksummed frames, 0..=1, from their net chance bits.
    pub frames: f64,
    /// Net chance bits of the checksummed frames (see [`frame_net_bits`]).
    pub frame_bits: f64,
    /// 1 with no line errors, falling towards 0 as framing/parity/break errors per byte rise.
    pub error_factor: f64,
    /// Grows with the number of bytes (few bytes prove little), 0..=1.
    pub confidence: f64,
    /// (frame + brk) errors per received byte.
    pub fe_ratio: f64,
    /// parity errors per received byte.
    pub pe_ratio: f64,
    pub stats: TextStats,
}

/// Bytes whose frame is a single run of zeros then ones (FF FE FC F8 F0 E0 C0 80 00): what a
/// glitch or a much slower device looks like.
pub(super) fn is_step_byte(b: u8) -> bool {
    // LSB first: zeros then ones  <=>  b is all ones above its lowest set bit (or zero).
    b == 0 || (b | (b - 1)) == 0xFF
}

/// Scores a setting from what was received at it. Only evidence that random bytes would show
/// less than once in 100 dwells counts: a printable share far above random bytes' (with the
/// spaces, vowels and line ends of text), checksummed frames whose chance bits exceed the
/// search over the dwell's bytes. Nothing else (error-free binary, tokens, weak frames) can
/// lift a score: a wrong rate shows those too.
pub fn score(ev: &Evidence) -> Score {
    let n = ev.bytes.len();
    let stats = text_stats(ev.bytes);
    let fe_ratio = ratio(
        usize::try_from(ev.errors.frame.saturating_add(ev.errors.brk)).unwrap_or(usize::MAX),
        n.max(1),
    );
    let pe_ratio = ratio(
        usize::try_from(ev.errors.parity).unwrap_or(usize::MAX),
        n.max(1),
    );
    if n == 0 {
        return Score {
            fe_ratio,
            pe_ratio,
            ..Score::default()
        };
    }
    // Text: random bytes are ~38 % printable, 7E1 read as 8N1 ~50 %; real text ~100 %, less a
    // few characters cut or misframed when the port changed setting mid-stream.
    let printable = (stats.printable * n as f64).round() as usize;
    let text_bits = printable_chance_bits(printable, n);
    let base = ((stats.printable - 0.5) / 0.4).clamp(0.0, 1.0).powf(1.5);
    let ws_ok = ratio(stats.whitespace, n) >= 0.02;
    let vowel_ok = stats.letters < 8 || (0.15..=0.65).contains(&ratio(stats.vowels, stats.letters));
    let lines_ok = stats.line_endings > 0 || stats.devttys0_run;
    let structure = (f64::from(u8::from(ws_ok))
        + f64::from(u8::from(vowel_ok))
        + f64::from(u8::from(lines_ok)))
        / 3.0;
    // Printable bytes without the shape of text (no spaces, no vowels, no line ends) are
    // not enough to lock: one check of three missing still is.
    let text = if text_bits >= SIGNIFICANT_BITS {
        base * (0.3 + 0.7 * structure)
    } else {
        0.0
    };
    let frame_bits = frame_net_bits(ev.frames, n);
    let frames = bits_score(frame_bits);
    // Errors: the right setting gives ~0 %, wrong rates 15–100 %. Up to 3 % is free (a glitch,
    // a character misframed after the setting changed mid-stream); beyond that it costs fast.
    let e = 8.0 * (fe_ratio + pe_ratio - 0.03).max(0.0);
    let error_factor = 1.0 / (1.0 + e * e.sqrt());
    let confidence = 1.0 - (-(n as f64) / 8.0).exp();
    let value = (confidence * error_factor * text.max(frames)).clamp(0.0, 1.0);
    Score {
        value,
        text,
        text_bits,
        frames,
        frame_bits,
        error_factor,
        confidence,
        fe_ratio,
        pe_ratio,
        stats,
    }
}

/// A candidate with its score and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidate: Candidate,
    /// 0..=1.
    pub score: f64,
    /// Bytes the score rests on (0 for a passive guess).
    pub bytes: usize,
    pub reason: String,
}

/// Sorts best first. Each step of prior (uncommon rate, format other than 8N1) costs 0.02, so
/// near-ties go to the common setting (74880 and 76800 decode each other cleanly); the sort is
/// stable, so exact ties keep the original order.
pub(super) fn sort_ranking(r: &mut [Ranked]) {
    let key = |x: &Ranked| x.score - 0.02 * f64::from(x.candidate.prior());
    r.sort_by(|a, b| key(b).total_cmp(&key(a)));
}
