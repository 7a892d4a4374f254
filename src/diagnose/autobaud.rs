//! The baud-rate (and frame-format) estimator: scores what was received at a setting, judges the
//! current setting from its bytes alone (passive), and drives an active scan over candidate
//! settings (no I/O: the caller sets the port and feeds what it read).
//!
//! A setting scores only on evidence that random bytes would rarely produce (under 1 % per
//! dwell): printable-text statistics (as in devttys0 `baudrate.py`) whose printable share is
//! far above random bytes', checksummed frames weighed by their chance bits against the number
//! of bytes they could have come from (`decode::evidence`), and the line error counters (the
//! right rate gives ~0 framing errors). Single tokens (E5, 79, 1F) and weak frames never count:
//! wrong-rate garbage holds them as often as any other byte. Wrong-rate garbage has signatures the
//! passive estimator reads through fingerprints simulated with the UART line model
//! (`uart_line`): a stream of `00(FE)` means the device is far slower, `00/80/F8/E0`-type
//! bytes give the speed ratio from their run lengths, random bytes with many FE mean faster.

use std::cmp::Ordering;
use std::fmt;

use crate::decode::all::decode_all;
use crate::decode::evidence::{Strength, WEAK_BITS};
use crate::decode::{Protocol, StreamOffset};
use crate::event::{Baud, FrameFormat, LineErrorCounts, Parity};
use crate::uart_line::{Receiver, Sender, Waveform};

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

    fn with_format(self, s: &str) -> Candidate {
        match s.parse() {
            Ok(format) => Candidate { format, ..self },
            Err(_) => self,
        }
    }

    /// Tie-break rank: common rates first, 8N1 before other formats.
    fn prior(&self) -> u8 {
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

fn is_printable(b: u8) -> bool {
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

fn ratio(part: usize, whole: usize) -> f64 {
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
fn is_step_byte(b: u8) -> bool {
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
fn sort_ranking(r: &mut [Ranked]) {
    let key = |x: &Ranked| x.score - 0.02 * f64::from(x.candidate.prior());
    r.sort_by(|a, b| key(b).total_cmp(&key(a)));
}

/// Which way the true setting lies from the monitor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The device is slower than the monitor.
    Lower,
    /// The device is faster than the monitor.
    Higher,
    /// The rate looks right; the character format (7/8 bits, parity) does not.
    Format,
    Unclear,
}

/// The passive verdict on the current setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingVerdict {
    LooksRight,
    Garbage(Mismatch),
    /// Fewer than 8 bytes and no line errors: nothing to judge yet.
    NotEnoughData,
}

/// What the passive estimator makes of the current setting's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct PassiveEstimate {
    pub monitor: Candidate,
    pub verdict: SettingVerdict,
    /// The current setting's own score, 0..=1.
    pub current: Score,
    /// Candidate settings, best first (the monitor's own setting included).
    pub ranking: Vec<Ranked>,
    /// One sentence for the user.
    pub reason: String,
}

/// Shape features of received bytes, comparable between observed and simulated traffic.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Features {
    n: usize,
    fe: f64,
    zero: f64,
    step: f64,
    printable: f64,
    /// Histogram of trailing zero bits (the low run after the start bit), 0..=8.
    tz: [f64; 9],
    /// Histogram of level changes inside the 10-bit frame: 1, 2, 3, 4, 5, 6+.
    changes: [f64; 6],
}

impl Features {
    fn of(bytes: &[u8], fe_count: u64) -> Features {
        let n = bytes.len();
        let mut f = Features {
            n,
            ..Features::default()
        };
        if n == 0 {
            return f;
        }
        let w = 1.0 / n as f64;
        for &b in bytes {
            f.tz[b.trailing_zeros().min(8) as usize] += w;
            // Frame: start 0, d0..d7, stop 1; count level changes.
            let frame: u16 = (u16::from(b) << 1) | 0x200;
            let changes = ((frame ^ (frame >> 1)) & 0x1FF).count_ones() as usize;
            f.changes[changes.clamp(1, 6) - 1] += w;
            if b == 0 {
                f.zero += w;
            }
            if is_step_byte(b) {
                f.step += w;
            }
            if is_printable(b) {
                f.printable += w;
            }
        }
        f.fe = (fe_count as f64 / n as f64).min(1.5);
        f
    }

    fn distance(&self, o: &Features) -> f64 {
        if self.n == 0 || o.n == 0 {
            return if self.n == o.n { 0.0 } else { 2.0 };
        }
        let l1 = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>();
        0.5 * l1(&self.tz, &o.tz)
            + 0.5 * l1(&self.changes, &o.changes)
            + (self.fe - o.fe).abs()
            + (self.zero - o.zero).abs()
            + 0.5 * (self.step - o.step).abs()
            + 0.5 * (self.printable - o.printable).abs()
    }
}

/// Built-in payloads the fingerprints are simulated with: boot-log text and 0x68 frames.
const FINGERPRINT_TEXT: &[&str] = &[
    "boot: checking flash... ok\r\n",
    "The quick brown fox jumps over the lazy dog, twice.\r\n",
    "net: link up, 100 Mbps full duplex; dhcp: lease 10.0.0.17\r\n",
    "app: meter gateway ready, waiting for requests!\r\n",
    "warning: clock not set, using build time\r\n",
];
const FINGERPRINT_FRAMES: &[&[u8]] = &[
    &[
        0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07,
        0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
    ],
    &[0x68, 0x04, 0x07, 0x00, 0x00, 0x00],
    &[
        0x68, 0x0E, 0x00, 0x00, 0x02, 0x00, 0x64, 0x01, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x14,
    ],
    &[
        0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89,
        0x67, 0x45, 0x33, 0x9F, 0x16,
    ],
];

/// Simulated traffic stops after this many sent bytes (a device far faster than the monitor
/// yields few bytes; the fingerprint then stays sparse rather than costing seconds).
const FINGERPRINT_MAX_SENT: usize = 4096;
/// ...or once the monitor has received this many characters.
const FINGERPRINT_WANT_RX: usize = 256;

/// What `units` sent at `true_rate` (8N1, 3 idle character times between units) look like to
/// the monitor `m`.
fn fingerprint(true_rate: Baud, m: Candidate, units: &[&[u8]]) -> Features {
    let sender = Sender::new(true_rate, FrameFormat::default());
    let receiver = Receiver::new(m.baud, m.format);
    let mut wave = Waveform::new();
    let (mut t, mut sent, mut i) = (0.0, 0usize, 0usize);
    // Send every unit twice at least, then until the monitor had time for enough characters
    // (its character time bounds what it can receive).
    let min_sent = 2 * units.iter().map(|u| u.len()).sum::<usize>();
    let want_time = FINGERPRINT_WANT_RX as f64 * 10.0 / f64::from(m.baud.bps());
    while sent < FINGERPRINT_MAX_SENT && !(sent >= min_sent && t >= want_time) {
        let Some(unit) = units.get(i % units.len().max(1)) else {
            break;
        };
        t = sender.send(&mut wave, t, unit) + 3.0 * sender.char_time();
        sent += unit.len();
        i += 1;
    }
    let r = receiver.decode(&wave);
    Features::of(&r.bytes(), r.counts.frame + r.counts.brk)
}

/// Clock errors the drift fit tries, in percent.
/// A 16x-oversampling receiver tolerates about 3.5 % at 8N1 (reference §6.1): below that no
/// errors, and by 5-6 % most characters break, so the steps are fine where errors begin.
const DRIFT_STEPS_PCT: [f64; 13] = [
    2.5, 3.0, 3.25, 3.5, 3.75, 4.0, 4.25, 4.5, 4.75, 5.0, 5.5, 6.0, 7.0,
];

/// Estimates the true setting from the current setting's bytes alone. Build one per monitor
/// setting and keep it: construction simulates every candidate rate (a few ms in release).
#[derive(Debug, Clone)]
pub struct PassiveEstimator {
    monitor: Candidate,
    /// Per candidate rate: fingerprints for text and for binary frames.
    prints: Vec<(Baud, [Features; 2])>,
    /// Clock error (percent, device faster) → framing errors per byte of text read at the
    /// monitor's rate: what a drifting device looks like.
    drift: Vec<(f64, f64)>,
}

impl PassiveEstimator {
    /// Precomputes fingerprints of each of `rates` (bit/s; invalid ones skipped) as seen by
    /// `monitor`.
    pub fn new(monitor: Candidate, rates: &[u32]) -> PassiveEstimator {
        let text: Vec<&[u8]> = FINGERPRINT_TEXT.iter().map(|s| s.as_bytes()).collect();
        let prints = rates
            .iter()
            .filter_map(|&r| Baud::new(r).ok())
            .map(|r| {
                (
                    r,
                    [
                        fingerprint(r, monitor, &text),
                        fingerprint(r, monitor, FINGERPRINT_FRAMES),
                    ],
                )
            })
            .collect();
        let drift = DRIFT_STEPS_PCT
            .iter()
            .filter_map(|&pct| {
                let bps = f64::from(monitor.baud.bps()) * (1.0 + pct / 100.0);
                let rate = Baud::new(bps.round() as u32).ok()?;
                Some((pct, fingerprint(rate, monitor, &text).fe))
            })
            .collect();
        PassiveEstimator {
            monitor,
            prints,
            drift,
        }
    }

    /// For bytes that read partly as text with some framing errors: how far (percent,
    /// either way) the device's clock is likely off the monitor's rate, fitted to simulated
    /// text. `None` without framing errors, with too few bytes, or when the bytes are not
    /// mostly text (then it is a wrong rate, not drift).
    pub fn drift_pct(&self, ev: &Evidence) -> Option<f64> {
        let n = ev.bytes.len();
        if n < 64 {
            return None;
        }
        let fe = ev.errors.frame.saturating_add(ev.errors.brk) as f64 / n as f64;
        let stats = text_stats(ev.bytes);
        // Drifted text keeps most characters (a 4 % error leaves ~58 % printable where a wrong
        // standard rate leaves ~37 %, like random bytes).
        if !(0.004..=0.45).contains(&fe) || stats.printable < 0.5 {
            return None;
        }
        // Errors at all mean at least the receiver's tolerance: of the error-free steps only
        // the largest (the edge of the tolerance) is a candidate.
        let edge = self
            .drift
            .iter()
            .filter(|(_, sim_fe)| *sim_fe == 0.0)
            .map(|(pct, _)| *pct)
            .fold(f64::NEG_INFINITY, f64::max);
        self.drift
            .iter()
            .filter(|(pct, sim_fe)| *sim_fe > 0.0 || *pct == edge)
            .filter(|(_, sim_fe)| (sim_fe - fe).abs() <= 0.1)
            .min_by(|a, b| (a.1 - fe).abs().total_cmp(&(b.1 - fe).abs()))
            .map(|&(pct, _)| pct)
    }

    pub fn monitor(&self) -> Candidate {
        self.monitor
    }

    /// Judges the monitor's setting from `ev` and ranks candidate settings.
    pub fn estimate(&self, ev: &Evidence) -> PassiveEstimate {
        let m = self.monitor;
        let mbps = f64::from(m.baud.bps());
        let current = score(ev);
        let n = ev.bytes.len();
        let errors = ev
            .errors
            .frame
            .saturating_add(ev.errors.brk)
            .saturating_add(ev.errors.parity);
        let own = |score: f64, reason: String| Ranked {
            candidate: m,
            score,
            bytes: n,
            reason,
        };
        if n < 8 && errors == 0 {
            return PassiveEstimate {
                monitor: m,
                verdict: SettingVerdict::NotEnoughData,
                current,
                ranking: vec![own(current.value, "too few bytes to judge".into())],
                reason: format!("{n} bytes and no line errors at {m}: not enough to judge"),
            };
        }
        let obs = Features::of(ev.bytes, ev.errors.frame.saturating_add(ev.errors.brk));
        if current.value >= 0.6 {
            let why = describe_good(&current, ev.frames.len());
            return PassiveEstimate {
                monitor: m,
                verdict: SettingVerdict::LooksRight,
                current,
                ranking: vec![own(current.value, why.clone())],
                reason: format!("{m} looks right: {why}"),
            };
        }
        // A format mismatch at the right rate: fix the format, keep the rate.
        if let Some((format, why)) = format_hint(ev, m, &current) {
            let mut ranking = vec![Ranked {
                candidate: m.with_format(format),
                score: 0.8,
                bytes: 0,
                reason: why.clone(),
            }];
            ranking.push(own(current.value, "current setting".into()));
            return PassiveEstimate {
                monitor: m,
                verdict: SettingVerdict::Garbage(Mismatch::Format),
                current,
                ranking,
                reason: format!("{m}: {why}"),
            };
        }
        // Signatures of §6.2 decide the direction; fingerprints rank within it.
        let breaks = obs.zero >= 0.8 && obs.fe >= 0.5;
        let (direction, mut reason) = if breaks {
            (
                Mismatch::Lower,
                format!(
                    "a stream of 00 with framing errors (break-like): the device is at least \
                     10x slower than {} (try {} or below)",
                    m.baud,
                    snap_rate(mbps / 10.0)
                ),
            )
        } else if let Some(k) = faster_ratio(ev.bytes, &obs) {
            (
                Mismatch::Lower,
                format!(
                    "receiver-faster garbage (00/80/F8/E0-type bytes, low runs ~{k:.1} bits): \
                     the device runs at about {} bps",
                    snap_rate(mbps / k)
                ),
            )
        } else if obs.fe >= 0.08 || obs.printable < 0.6 {
            (
                Mismatch::Higher,
                format!(
                    "random-looking bytes with {:.0}% framing errors: the device is faster \
                     than {}",
                    obs.fe * 100.0,
                    m.baud
                ),
            )
        } else {
            (
                Mismatch::Unclear,
                "the bytes are neither clean text nor known frames".to_string(),
            )
        };
        // Per rate: the nearer of its two fingerprints (text, frames).
        let fits: Vec<(Baud, f64)> = self
            .prints
            .iter()
            .map(|(rate, fp)| {
                let d = fp
                    .iter()
                    .map(|f| obs.distance(f))
                    .fold(f64::INFINITY, f64::min);
                (*rate, d)
            })
            .collect();
        let mut ranking: Vec<Ranked> = fits
            .iter()
            .map(|&(rate, d)| {
                let mut s = (-d / 0.25).exp();
                let rel = f64::from(rate.bps()) / mbps;
                let agrees = match direction {
                    Mismatch::Lower => rel < 0.98,
                    Mismatch::Higher => rel > 1.02,
                    _ => true,
                };
                if !agrees {
                    s *= 0.2;
                }
                if breaks {
                    // A break stream looks the same for every rate ≥10x below: start just below
                    // M/10 and work down.
                    s *= 0.9f64.powf((mbps / 10.0 / f64::from(rate.bps())).log2().max(0.0));
                }
                if rate == m.baud {
                    s = s.min(current.value);
                }
                Ranked {
                    candidate: Candidate::new(rate, m.format),
                    score: s.clamp(0.0, 1.0),
                    bytes: 0,
                    reason: format!("fingerprint distance {d:.2}"),
                }
            })
            .collect();
        sort_ranking(&mut ranking);
        if let Some(best) = ranking.first() {
            reason.push_str(&format!("; closest fingerprint: {}", best.candidate.baud));
        }
        PassiveEstimate {
            monitor: m,
            verdict: SettingVerdict::Garbage(direction),
            current,
            ranking,
            reason: format!("{m} looks wrong: {reason}"),
        }
    }
}

/// The nearest common rate to `bps`.
fn snap_rate(bps: f64) -> u32 {
    COMMON_RATES
        .iter()
        .copied()
        .min_by(|&a, &b| {
            let d = |r: u32| (f64::from(r).ln() - bps.max(1.0).ln()).abs();
            d(a).partial_cmp(&d(b)).unwrap_or(Ordering::Equal)
        })
        .unwrap_or(9600)
}

/// For receiver-faster garbage: the speed ratio k = monitor/device, from the low run at the
/// start of each non-zero byte (start bit + trailing zeros = one device bit ≈ k monitor bits).
/// `None` when the bytes do not have that shape.
fn faster_ratio(bytes: &[u8], obs: &Features) -> Option<f64> {
    if obs.n < 8 || obs.changes[0] + obs.changes[1] + obs.changes[2] < 0.7 {
        return None;
    }
    let mut runs: Vec<u32> = bytes
        .iter()
        .filter(|&&b| b != 0)
        .map(|&b| 1 + b.trailing_zeros())
        .collect();
    if runs.len() < 4 {
        return Some(10.0);
    }
    runs.sort_unstable();
    // The shortest device low bit dominates the lower runs: take the 25th percentile.
    let k = f64::from(runs.get(runs.len() / 4).copied().unwrap_or(1));
    (k >= 2.0).then_some(k)
}

/// One line on why a score is good.
fn describe_good(s: &Score, frames: usize) -> String {
    if s.frames >= s.text && frames > 0 {
        format!(
            "{frames} checksummed frame(s), {:.0} bits beyond chance, {:.0}% framing errors",
            s.frame_bits,
            s.fe_ratio * 100.0
        )
    } else {
        format!(
            "{:.0}% printable text, {:.0}% framing errors",
            s.stats.printable * 100.0,
            s.fe_ratio * 100.0
        )
    }
}

/// 8E1 read as 8N1: the receiver takes the parity bit for the stop bit, so framing errors hit
/// the even-popcount bytes (parity bit 0) and only those.
fn parity_as_stop(ev: &Evidence, s: &Score) -> bool {
    let n = ev.bytes.len();
    let even = ev.bytes.iter().filter(|b| b.count_ones() % 2 == 0).count();
    let fe = usize::try_from(ev.errors.frame.saturating_add(ev.errors.brk)).unwrap_or(usize::MAX);
    n >= 16 && (0.15..=0.85).contains(&s.fe_ratio) && fe.abs_diff(even) as f64 <= 0.2 * n as f64
}

/// Format-mismatch signatures at a plausible rate (§6.2): 7E1/7O1 read as 8N1 (bit 7 set
/// exactly on the bytes that need it for even/odd parity: 0x68 'h' arrives as 0xE8), 8E1 read as
/// 8N1 (framing errors on the even-popcount bytes only), parity errors on 8N1 data read with
/// parity. Returns the suggested format and why.
fn format_hint(ev: &Evidence, m: Candidate, s: &Score) -> Option<(&'static str, String)> {
    let n = ev.bytes.len();
    if n < 16 {
        return None;
    }
    let eight_n = m.format.data_bits.count() == 8 && m.format.parity == Parity::None;
    // A receiver switched mid-stream can stay misframed for a dozen back-to-back characters:
    // judge the bit-7 pattern on the settled part (all but the first quarter).
    let settled = if n >= 32 {
        &ev.bytes[n / 4..]
    } else {
        ev.bytes
    };
    let k = settled.len();
    let masked: Vec<u8> = settled.iter().map(|b| b & 0x7F).collect();
    let masked_text = text_stats(&masked).printable;
    let even = settled.iter().filter(|b| b.count_ones() % 2 == 0).count();
    let high = settled.iter().filter(|&&b| b & 0x80 != 0).count();
    // Thresholds leave room for the bytes misframed after a mid-stream setting change; random
    // bytes are ~50 % even-popcount, so ≥ 85 % over 16+ bytes is no accident.
    if eight_n && s.fe_ratio < 0.08 && masked_text >= 0.8 && ratio(high, k) >= 0.15 {
        if ratio(even, k) >= 0.85 {
            return Some((
                "7E1",
                "bytes are text with bit 7 set exactly where even parity needs it \
                 (0x68 'h' arrives as 0xE8): a 7E1 device read as 8N1"
                    .into(),
            ));
        }
        if ratio(k - even, k) >= 0.85 {
            return Some((
                "7O1",
                "bytes are text with bit 7 set exactly where odd parity needs it: a 7O1 device \
                 read as 8N1"
                    .into(),
            ));
        }
    }
    let structured = s.frame_bits >= SIGNIFICANT_BITS || s.stats.printable >= 0.85;
    if eight_n && structured && parity_as_stop(ev, s) {
        return Some((
            "8E1",
            "data look right but framing errors hit the even-popcount bytes: an 8E1 device \
             read as 8N1"
                .into(),
        ));
    }
    if m.format.parity != Parity::None && s.pe_ratio >= 0.1 && s.stats.printable >= 0.85 {
        return Some((
            "8N1",
            "data look right but with parity errors: the device sends without parity".into(),
        ));
    }
    None
}

/// When a dwell at one candidate ends: after `bytes` bytes or `seconds`, whichever is first.
/// Choose `seconds` ≥ `bytes` character times at the slowest candidate (≈ bytes × 10 / rate)
/// and long enough for a quiet device to speak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dwell {
    pub bytes: usize,
    /// Seconds.
    pub seconds: f64,
}

/// Finds checksummed frames in a byte run and returns their chance bits (the caller's
/// framers; [`checked_frames`] uses all of hsmon's).
pub type FrameCounter = Box<dyn Fn(&[u8]) -> Vec<u16> + Send>;

/// What the caller should do after feeding the scan.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanAction {
    /// Keep the port as it is and keep feeding.
    Stay,
    /// Set the port to this candidate, then call `begin` when the port confirms it.
    Switch(Candidate),
    /// The scan is over: the best candidate (if any candidate saw anything).
    Finished(Option<Ranked>),
    /// The scan is over: the bytes did not change with the setting (clean at rates far
    /// apart, or the same bytes at both), so the port ignores the rate (a pseudo-terminal).
    RateIgnored,
}

/// A control rate scoring at least this while the accepted one did too: the port ignores the
/// rate (no UART reads clean text or valid frames at two rates 4x apart).
pub const IGNORED_CONTROL_SCORE: f64 = 0.6;
/// Bytes a run must hold, with [`SAME_RUN_DISTINCT`] distinct values, to call the bytes at two
/// settings "the same": garbage at two rates far apart never repeats such a run.
const SAME_RUN: usize = 16;
const SAME_RUN_DISTINCT: usize = 8;
/// The control rate is at least this many times away from the accepted one.
const CONTROL_RATIO: f64 = 4.0;

/// Whether `a` and `b` share a run of [`SAME_RUN`] bytes with at least [`SAME_RUN_DISTINCT`]
/// distinct values (a stream of 00 from a far slower device looks the same at any rate: it
/// does not count).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() < SAME_RUN || b.len() < SAME_RUN {
        return false;
    }
    let distinct = |w: &[u8]| {
        let mut seen = [false; 256];
        w.iter()
            .filter(|&&x| !std::mem::replace(&mut seen[usize::from(x)], true))
            .count()
    };
    let runs: std::collections::HashSet<&[u8]> = a
        .windows(SAME_RUN)
        .filter(|w| distinct(w) >= SAME_RUN_DISTINCT)
        .collect();
    b.windows(SAME_RUN).any(|w| runs.contains(w))
}

/// The check that the port obeys the rate, once a candidate convinced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verify {
    /// No candidate convinced yet.
    Pending,
    /// The candidate at `done[accepted]` convinced; `control` is being listened to.
    Control { accepted: usize, control: Candidate },
    /// Over: the port obeys the rate, or ignores it.
    Done { ignored: bool },
}

impl Trial {
    /// The evidence at this candidate. One framing error is forgiven: the character in flight
    /// when the port changed setting is usually cut (on real ports as in the line model).
    fn evidence(&self) -> Evidence<'_> {
        let mut errors = self.errors;
        if errors.frame > 0 {
            errors.frame -= 1;
        } else if errors.brk > 0 {
            errors.brk -= 1;
        }
        Evidence {
            bytes: &self.bytes,
            errors,
            frames: &self.frames,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Trial {
    candidate: Candidate,
    bytes: Vec<u8>,
    errors: LineErrorCounts,
    /// Chance bits of the checksummed frames in `bytes` (see [`checked_frames`]).
    frames: Vec<u16>,
    started: Option<f64>,
    score: Option<Score>,
}

/// An active scan: tries candidate settings one after another, scores each from what arrives
/// while it is set, stops early on a convincing one, and adds format variants (7E1, 8E1, 8N1)
/// at a rate whose bytes show a 7/8-bit or parity mismatch. No I/O: the caller sets the port
/// to [`current`](ActiveScan::current), calls [`begin`](ActiveScan::begin) when the port
/// confirms it, and feeds bytes and error-counter deltas.
pub struct ActiveScan {
    queue: Vec<Candidate>,
    done: Vec<Trial>,
    now: Option<Trial>,
    dwell: Dwell,
    accept_score: f64,
    accept_bytes: usize,
    good_enough: f64,
    frame_counter: Option<FrameCounter>,
    finished: bool,
    verify: Verify,
}

impl fmt::Debug for ActiveScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveScan")
            .field("queue", &self.queue)
            .field("done", &self.done.len())
            .field("now", &self.now.as_ref().map(|t| t.candidate))
            .field("finished", &self.finished)
            .finish()
    }
}

impl ActiveScan {
    /// A scan over `candidates` in order (duplicates dropped), dwelling `dwell` at each.
    /// Stops early at a candidate scoring ≥ 0.95 on ≥ min(32, dwell.bytes) bytes, or scoring
    /// ≥ 0.8 at the end of its full dwell (wrong rates score below 0.2 in practice).
    pub fn new(candidates: impl IntoIterator<Item = Candidate>, dwell: Dwell) -> ActiveScan {
        let mut queue: Vec<Candidate> = Vec::new();
        for c in candidates {
            if !queue.contains(&c) {
                queue.push(c);
            }
        }
        let mut scan = ActiveScan {
            queue,
            done: Vec::new(),
            now: None,
            dwell,
            accept_score: 0.95,
            accept_bytes: dwell.bytes.min(32),
            good_enough: 0.8,
            frame_counter: None,
            finished: false,
            verify: Verify::Pending,
        };
        scan.advance();
        scan
    }

    /// Uses `counter` to find valid frames in each candidate's bytes (decoder evidence).
    pub fn with_frame_counter(mut self, counter: FrameCounter) -> ActiveScan {
        self.frame_counter = Some(counter);
        self
    }

    /// Early stop at `score` (0..=1) once `min_bytes` bytes were seen at the candidate.
    pub fn with_accept(mut self, score: f64, min_bytes: usize) -> ActiveScan {
        self.accept_score = score;
        self.accept_bytes = min_bytes;
        self
    }

    /// Stops at the end of a full dwell on a candidate scoring at least `score` (0..=1; above
    /// 1 never).
    pub fn with_good_enough(mut self, score: f64) -> ActiveScan {
        self.good_enough = score;
        self
    }

    /// Tries first what a passive estimate ranks high: its ranked candidates that are in the
    /// scan (or format variants it suggests) move to the front, in its order.
    pub fn prioritize(mut self, estimate: &PassiveEstimate) -> ActiveScan {
        if self.finished {
            return self;
        }
        let mut front: Vec<Candidate> = Vec::new();
        for r in &estimate.ranking {
            let in_scan = self.queue.contains(&r.candidate)
                || self
                    .now
                    .as_ref()
                    .is_some_and(|t| t.candidate == r.candidate);
            let variant = r.candidate.format != FrameFormat::default();
            if (in_scan || variant) && !front.contains(&r.candidate) {
                front.push(r.candidate);
            }
        }
        // Nothing was fed yet (prioritize is called before the first begin): restart the order.
        if let Some(t) = self.now.take() {
            if t.bytes.is_empty() && t.started.is_none() {
                self.queue.insert(0, t.candidate);
            } else {
                self.now = Some(t);
            }
        }
        self.queue.retain(|c| !front.contains(c));
        front.append(&mut self.queue);
        self.queue = front;
        if self.now.is_none() {
            self.advance();
        }
        self
    }

    /// The setting the port should have now; `None` once the scan is finished.
    pub fn current(&self) -> Option<Candidate> {
        self.now.as_ref().map(|t| t.candidate)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes taken into account so far, over all candidates.
    pub fn bytes_seen(&self) -> usize {
        self.done
            .iter()
            .chain(self.now.as_ref())
            .map(|t| t.bytes.len())
            .sum()
    }

    /// The port confirmed the current setting at `now` seconds: the dwell starts.
    pub fn begin(&mut self, now: f64) {
        if let Some(t) = self.now.as_mut() {
            t.started = Some(now);
        }
    }

    /// Bytes read at the current setting and the line-error counter deltas since the last
    /// feed, at `now` seconds.
    pub fn feed(&mut self, now: f64, bytes: &[u8], errors: LineErrorCounts) -> ScanAction {
        let Some(t) = self.now.as_mut() else {
            return self.finished_step();
        };
        if t.started.is_none() {
            t.started = Some(now);
        }
        let room = self.dwell.bytes.saturating_sub(t.bytes.len());
        t.bytes.extend_from_slice(&bytes[..bytes.len().min(room)]);
        t.errors.frame = t.errors.frame.saturating_add(errors.frame);
        t.errors.parity = t.errors.parity.saturating_add(errors.parity);
        t.errors.brk = t.errors.brk.saturating_add(errors.brk);
        if !bytes.is_empty() {
            t.frames = self
                .frame_counter
                .as_ref()
                .map_or_else(Vec::new, |f| f(&t.bytes));
        }
        self.poll(now)
    }

    /// Time passed without bytes: ends the dwell when it is over.
    pub fn poll(&mut self, now: f64) -> ScanAction {
        let Some(t) = self.now.as_mut() else {
            return self.finished_step();
        };
        let s = score(&t.evidence());
        t.score = Some(s);
        let n = t.bytes.len();
        let elapsed = t.started.map_or(0.0, |s| now - s);
        let accepted = s.value >= self.accept_score && n >= self.accept_bytes;
        // Obvious garbage needs no full dwell: many line errors after 16 bytes, or nothing
        // text- or frame-like once a quarter of the dwell (at least 64 bytes) had time to hold
        // a few lines or frames.
        // (Not when the errors look like 8E1 read as 8N1: frames need time to show that.)
        let erroneous = n >= 16
            && s.value < 0.1
            && s.fe_ratio + s.pe_ratio >= 0.25
            && !(t.candidate.format == FrameFormat::default() && parity_as_stop(&t.evidence(), &s));
        let shapeless = n >= (self.dwell.bytes / 4).max(64) && s.value < 0.2;
        let garbage = erroneous || shapeless;
        // A NaN dwell time or clock counts as over: a scan must always move on.
        let over = n >= self.dwell.bytes
            || elapsed.partial_cmp(&self.dwell.seconds) != Some(Ordering::Less);
        if !(accepted || garbage || over) {
            return ScanAction::Stay;
        }
        let good = over && s.value >= self.good_enough;
        let convinced = accepted || good;
        let mut variant = false;
        if let Some(t) = self.now.take() {
            if let Verify::Control { accepted, control } = self.verify {
                if t.candidate == control {
                    // The control dwell is over: the port ignores the rate if the control
                    // setting convinced too, or showed the very same bytes.
                    let same = self
                        .done
                        .get(accepted)
                        .is_some_and(|a| same_bytes(&a.bytes, &t.bytes));
                    let ignored = same || s.value >= IGNORED_CONTROL_SCORE;
                    self.verify = Verify::Done { ignored };
                    self.done.push(t);
                    self.queue.clear();
                    self.advance();
                    return self.finished_step();
                }
            }
            variant = self.queue_variants(&t, &s);
            self.done.push(t);
        }
        // A suggested format variant is still tried; otherwise a convincing score ends the
        // scan, once a control rate far away shows the port obeys the setting.
        if convinced && !variant {
            self.queue.clear();
            if self.verify == Verify::Pending {
                let accepted = self.done.len() - 1;
                self.verify = match self.control_for(accepted) {
                    Ok(control) => {
                        self.queue.push(control);
                        Verify::Control { accepted, control }
                    }
                    Err(ignored) => Verify::Done { ignored },
                };
            }
        }
        self.advance();
        match self.now.as_ref() {
            Some(t) => ScanAction::Switch(t.candidate),
            None => self.finished_step(),
        }
    }

    /// For the candidate at `done[accepted]`: a rate already heard at least
    /// [`CONTROL_RATIO`] away answers whether the port obeys the setting (`Err(ignored)`);
    /// otherwise the untried common rate nearest 8x away (or 1/8) is the control to listen
    /// to. No control at all (a scan over one rate): the port is taken to obey.
    fn control_for(&self, accepted: usize) -> Result<Candidate, bool> {
        let Some(a) = self.done.get(accepted) else {
            return Err(false);
        };
        let rate = f64::from(a.candidate.baud.bps());
        let far = |bps: u32| {
            let r = f64::from(bps) / rate;
            r >= CONTROL_RATIO || r <= 1.0 / CONTROL_RATIO
        };
        for d in self.done.iter().filter(|d| far(d.candidate.baud.bps())) {
            if d.bytes.len() >= 32 {
                let convinced = d.score.is_some_and(|s| s.value >= IGNORED_CONTROL_SCORE);
                return Err(convinced || same_bytes(&a.bytes, &d.bytes));
            }
        }
        let target = if rate * 8.0 <= 921_600.0 {
            rate * 8.0
        } else {
            rate / 8.0
        };
        COMMON_RATES
            .iter()
            .copied()
            .filter(|&r| far(r))
            .filter(|&r| !self.done.iter().any(|d| d.candidate.baud.bps() == r))
            .filter_map(|r| Baud::new(r).ok())
            .min_by(|x, y| {
                let d = |b: &Baud| (f64::from(b.bps()).ln() - target.ln()).abs();
                d(x).total_cmp(&d(y))
            })
            .map(|b| Candidate::new(b, a.candidate.format))
            .ok_or(false)
    }

    /// The port did not change its bytes with the setting (see [`ScanAction::RateIgnored`]): the
    /// control rate convinced as well as the accepted one, or, with nothing convincing, two
    /// settings at least [`CONTROL_RATIO`] apart showed the same bytes.
    pub fn rate_ignored(&self) -> bool {
        match self.verify {
            Verify::Done { ignored } => ignored,
            Verify::Control { .. } => false,
            Verify::Pending => {
                self.finished
                    && self.done.iter().enumerate().any(|(i, a)| {
                        self.done[i + 1..].iter().any(|b| {
                            let r = f64::from(a.candidate.baud.bps())
                                / f64::from(b.candidate.baud.bps());
                            (r >= CONTROL_RATIO || r <= 1.0 / CONTROL_RATIO)
                                && same_bytes(&a.bytes, &b.bytes)
                        })
                    })
            }
        }
    }

    /// Candidates scored so far, best first.
    pub fn ranking(&self) -> Vec<Ranked> {
        let mut r: Vec<Ranked> = self
            .done
            .iter()
            .chain(self.now.as_ref())
            .filter_map(|t| {
                let s = t.score?;
                Some(Ranked {
                    candidate: t.candidate,
                    score: s.value,
                    bytes: t.bytes.len(),
                    reason: if s.value >= 0.5 {
                        describe_good(&s, t.frames.len())
                    } else if t.bytes.is_empty() {
                        "no bytes".to_string()
                    } else {
                        format!(
                            "{:.0}% printable, {:.0}% framing and {:.0}% parity errors",
                            s.stats.printable * 100.0,
                            s.fe_ratio * 100.0,
                            s.pe_ratio * 100.0
                        )
                    },
                })
            })
            .collect();
        sort_ranking(&mut r);
        r
    }

    /// The best candidate so far.
    pub fn best(&self) -> Option<Ranked> {
        self.ranking().into_iter().next()
    }

    fn finished_step(&self) -> ScanAction {
        if self.rate_ignored() {
            return ScanAction::RateIgnored;
        }
        ScanAction::Finished(self.best())
    }

    fn advance(&mut self) {
        if self.queue.is_empty() {
            self.now = None;
            self.finished = true;
        } else {
            let c = self.queue.remove(0);
            self.now = Some(Trial {
                candidate: c,
                bytes: Vec::new(),
                errors: LineErrorCounts::default(),
                frames: Vec::new(),
                started: None,
                score: None,
            });
        }
    }

    /// Puts a format variant suggested by `t`'s bytes at the front of the queue; true if it did.
    fn queue_variants(&mut self, t: &Trial, s: &Score) -> bool {
        if let Some((format, _)) = format_hint(&t.evidence(), t.candidate, s) {
            let v = t.candidate.with_format(format);
            let tried = self.done.iter().any(|d| d.candidate == v);
            if !tried && v != t.candidate {
                self.queue.retain(|c| *c != v);
                self.queue.insert(0, v);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::uart_line::{Noise, SplitMix64, UartLink};
    use std::collections::HashMap;

    fn baud(b: u32) -> Baud {
        Baud::new(b).unwrap()
    }

    fn fmt(s: &str) -> FrameFormat {
        s.parse().unwrap()
    }

    fn errs(frame: u64, parity: u64, brk: u64) -> LineErrorCounts {
        LineErrorCounts {
            frame,
            parity,
            brk,
            ..LineErrorCounts::default()
        }
    }

    /// Boot-log lines from a device whose clock runs `pct` percent fast, read at 9600.
    fn drifting_text(pct: f64) -> (Vec<u8>, LineErrorCounts) {
        let sender = Sender::new(baud(9600), FrameFormat::default()).with_clock_ppm(pct * 1e4);
        let mut link = UartLink::new(sender, Receiver::new(baud(9600), FrameFormat::default()));
        let mut t = 0.0;
        for i in 0..40 {
            let line = TEXT[i % TEXT.len()].as_bytes();
            t = link.send(t, line) + 0.01;
        }
        let r = link.receive_until(t + 1.0);
        let c = r.counts;
        (r.bytes(), c)
    }

    #[test]
    fn drift_is_fitted_from_framing_errors_on_clean_text() {
        let est = PassiveEstimator::new(Candidate::n81(baud(9600)), &COMMON_RATES);
        // No errors: no drift claimed.
        let (clean, c0) = drifting_text(0.0);
        assert_eq!(c0.frame, 0);
        let ev = Evidence {
            bytes: &clean,
            errors: c0,
            frames: &[],
        };
        assert_eq!(est.drift_pct(&ev), None);
        // 4 % fast: framing errors on some characters; the fit lands near 4 %.
        let (bytes, c) = drifting_text(4.0);
        assert!(c.frame > 0, "a 4 % clock error gives framing errors");
        let ev = Evidence {
            bytes: &bytes,
            errors: c,
            frames: &[],
        };
        let pct = est.drift_pct(&ev).unwrap();
        assert!((3.5..=4.5).contains(&pct), "fitted {pct} %");
    }

    // ---- the test corpus -------------------------------------------------------------------

    const TEXT: &[&str] = &[
        "U-Boot 2021.07 (Mar 12 2024 - 10:31:07 +0000)\r\n",
        "DRAM:  256 MiB\r\n",
        "boot: checking flash... ok\r\n",
        "Hit any key to stop autoboot:  0\r\n",
        "Starting kernel ...\r\n",
        "[    0.000000] Booting Linux on physical CPU 0x0\r\n",
        "[    1.234567] serial: ttyS0 at MMIO 0x1c28000 (irq = 32) is a U6_16550A\r\n",
        "Welcome to the meter gateway. Please log in, or press enter for help.\r\n",
        "She sells sea shells by the sea shore, and the shells she sells are surely seashells.\r\n",
        "app: heartbeat ok; uptime 3 days, load 0.42\r\n",
        "net: link up at 100 Mbps, full duplex\r\n",
        "It was the best of times, it was the worst of times; it was the age of wisdom.\r\n",
    ];

    const MBUS_RSP_UD: &[u8] = &[
        0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07,
        0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
    ];
    const IEC104_STARTDT: &[u8] = &[0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
    const IEC104_I: &[u8] = &[
        0x68, 0x0E, 0x00, 0x00, 0x02, 0x00, 0x64, 0x01, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x14,
    ];
    const DLT645: &[u8] = &[
        0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89,
        0x67, 0x45, 0x33, 0x9F, 0x16,
    ];
    const FRAMES: &[&[u8]] = &[MBUS_RSP_UD, IEC104_STARTDT, IEC104_I, DLT645];

    #[test]
    fn checked_frames_count_checks_not_tokens() {
        // M-Bus RSP_UD (EN 13757-2 long frame, 40 bits) and DL/T 645 (32 bits) are checked;
        // the IEC 104 APCIs carry no check.
        let all: Vec<u8> = FRAMES.concat();
        assert_eq!(checked_frames(&all), vec![40, 32]);
        let mut bad = MBUS_RSP_UD.to_vec();
        bad[10] ^= 1;
        assert!(checked_frames(&bad).is_empty());
        assert!(checked_frames(b"hello world").is_empty());
        // Lone E5 acks (8 bits each) never count, however many.
        assert!(checked_frames(&[0xE5; 40]).is_empty());
        // One 40-bit frame among 256 bytes leaves 32 bits; E5s leave nothing.
        assert!((frame_net_bits(&[40], 256) - 32.0).abs() < 1e-9);
        assert_eq!(frame_net_bits(&[8, 8, 8, 8], 256), 0.0);
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Kind {
        Text,
        Binary,
    }

    /// A device writing lines or frames at its rate, idle 2–10 character times plus up to
    /// 0.5 ms between them.
    struct Device {
        units: Vec<Vec<u8>>,
        next: usize,
        rng: SplitMix64,
    }

    impl Device {
        fn new(kind: Kind, seed: u64) -> Device {
            let units: Vec<Vec<u8>> = match kind {
                Kind::Text => TEXT.iter().map(|s| s.as_bytes().to_vec()).collect(),
                Kind::Binary => FRAMES.iter().map(|f| f.to_vec()).collect(),
            };
            let mut rng = SplitMix64::new(seed);
            let next = rng.below(units.len() as u64) as usize;
            Device { units, next, rng }
        }

        fn pump(&mut self, link: &mut UartLink, until: f64) {
            let char_time = link.sender().char_time();
            while link.line_free_at() < until {
                let unit = &self.units[self.next % self.units.len()];
                self.next += 1;
                let end = link.send(link.line_free_at(), unit);
                let gap =
                    (2.0 + 8.0 * self.rng.next_f64()) * char_time + 0.0005 * self.rng.next_f64();
                link.send(end + gap, &[]);
            }
        }
    }

    fn dwell(kind: Kind) -> Dwell {
        let bytes = match kind {
            Kind::Text => 64,
            Kind::Binary => 256,
        };
        // Enough for `bytes` characters at 1200, the slowest candidate.
        Dwell {
            bytes,
            seconds: 1.5 * bytes as f64 * 10.0 / 1200.0,
        }
    }

    /// How often the harness reads the simulated port: every 8 characters at the monitor's rate
    /// (at least every 4 of the device's).
    fn read_period(c: Candidate, true_rate: u32) -> f64 {
        (80.0 / f64::from(c.baud.bps())).max(40.0 / f64::from(true_rate))
    }

    struct Outcome {
        best: Option<Candidate>,
        ranking: Vec<Ranked>,
        bytes: usize,
        passive_top: Option<Candidate>,
    }

    fn run_trial(
        kind: Kind,
        true_rate: u32,
        true_format: &str,
        noisy: bool,
        start: Candidate,
        estimators: &mut HashMap<Candidate, PassiveEstimator>,
        seed: u64,
    ) -> Outcome {
        // Device clocks are off by up to ±1.5 % (an RC oscillator; crystals do far better).
        let ppm = (SplitMix64::new(seed ^ 0xC10C).next_f64() - 0.5) * 30_000.0;
        let sender = Sender::new(baud(true_rate), fmt(true_format)).with_clock_ppm(ppm);
        let mut link = UartLink::new(sender, Receiver::new(start.baud, start.format));
        if noisy {
            // Light: one glitch per ~2000 bit times, 0.1–1 bit wide.
            let n = Noise::in_bit_times(
                f64::from(true_rate) / 2000.0,
                0.1,
                1.0,
                baud(true_rate),
                seed,
            );
            link = link.with_noise(n);
        }
        let mut dev = Device::new(kind, seed);
        let dwell = dwell(kind);
        // Passive look at the starting setting.
        let mut t = 0.0;
        let (mut seen, mut counts) = (Vec::new(), LineErrorCounts::default());
        while seen.len() < dwell.bytes && t < dwell.seconds {
            t += read_period(start, true_rate);
            dev.pump(&mut link, t);
            let r = link.receive_until(t);
            seen.extend(r.bytes());
            let c = r.counts;
            counts.frame += c.frame;
            counts.parity += c.parity;
            counts.brk += c.brk;
        }
        seen.truncate(dwell.bytes);
        let est = estimators
            .entry(start)
            .or_insert_with(|| PassiveEstimator::new(start, &COMMON_RATES))
            .estimate(&Evidence {
                bytes: &seen,
                errors: counts,
                frames: &checked_frames(&seen),
            });
        let mut scan = ActiveScan::new(Candidate::n81_all(&COMMON_RATES), dwell)
            .with_frame_counter(Box::new(checked_frames))
            .prioritize(&est);
        while let Some(c) = scan.current() {
            link.set_receiver(Receiver::new(c.baud, c.format), t);
            scan.begin(t);
            loop {
                t += read_period(c, true_rate);
                dev.pump(&mut link, t);
                let r = link.receive_until(t);
                match scan.feed(t, &r.bytes(), r.counts) {
                    ScanAction::Stay => {}
                    _ => break,
                }
            }
        }
        Outcome {
            best: scan.best().map(|r| r.candidate),
            ranking: scan.ranking(),
            bytes: scan.bytes_seen(),
            passive_top: est.ranking.first().map(|r| r.candidate),
        }
    }

    #[test]
    fn accuracy_over_generated_corpus() {
        let mut estimators = HashMap::new();
        let mut table = String::new();
        let mut seed = 1u64;
        let mut misses = Vec::new();
        let mut results = Vec::new();
        for kind in [Kind::Text, Kind::Binary] {
            let (mut hits, mut total) = (0usize, 0usize);
            table.push_str(&format!(
                "\n{kind:?} (dwell {} bytes)\n true rate   top-1   mean bytes   passive top-1\n",
                dwell(kind).bytes
            ));
            for &rate in &COMMON_RATES {
                let (mut ok, mut n, mut bytes, mut ptop) = (0, 0, 0, 0);
                for noisy in [false, true] {
                    for &m in &COMMON_RATES {
                        seed += 1;
                        let start = Candidate::n81(baud(m));
                        let o = run_trial(kind, rate, "8N1", noisy, start, &mut estimators, seed);
                        n += 1;
                        bytes += o.bytes;
                        if o.best.map(|c| c.baud.bps()) == Some(rate) {
                            ok += 1;
                        } else {
                            misses.push(format!(
                                "{kind:?} {rate} noise={noisy} start={m}: got {:?}; {}",
                                o.best.map(|c| c.to_string()),
                                o.ranking
                                    .iter()
                                    .take(3)
                                    .map(|r| format!(
                                        "{} {:.2} ({} B: {})",
                                        r.candidate, r.score, r.bytes, r.reason
                                    ))
                                    .collect::<Vec<_>>()
                                    .join(" | ")
                            ));
                        }
                        if o.passive_top.map(|c| c.baud.bps()) == Some(rate) {
                            ptop += 1;
                        }
                    }
                }
                table.push_str(&format!(
                    " {rate:>9}   {:>4.0}%   {:>10.0}   {:>5.0}%\n",
                    100.0 * ok as f64 / n as f64,
                    bytes as f64 / n as f64,
                    100.0 * ptop as f64 / n as f64
                ));
                hits += ok;
                total += n;
            }
            let acc = hits as f64 / total as f64;
            table.push_str(&format!(" all         {:>4.1}%\n", acc * 100.0));
            let floor = if kind == Kind::Text { 0.95 } else { 0.90 };
            for m in &misses {
                table.push_str(&format!("miss: {m}\n"));
            }
            misses.clear();
            results.push((kind, acc, floor));
        }
        println!("{table}");
        for (kind, acc, floor) in results {
            assert!(acc >= floor, "{kind:?}: top-1 {acc:.3} < {floor}");
        }
    }

    // ---- scoring ---------------------------------------------------------------------------

    #[test]
    fn text_stats_follow_devttys0() {
        let s = text_stats(b"boot: checking flash... ok\r\n");
        assert!(s.devttys0_run && s.printable == 1.0 && s.line_endings == 2);
        // A non-printable byte resets the run; no punctuation, no acceptance.
        assert!(!text_stats(b"abcdefghij klmnopqrstuvwxyz\x00ab").devttys0_run);
        assert!(!text_stats(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").devttys0_run);
        assert_eq!(text_stats(b"").printable, 0.0);
    }

    #[test]
    fn score_separates_text_frames_and_garbage() {
        let text = TEXT.concat();
        let text = &text.as_bytes()[..64];
        let clean = score(&Evidence {
            bytes: text,
            ..Evidence::default()
        });
        assert!(clean.value >= 0.95, "{clean:?}");
        // The same bytes with 40 % framing errors are not believed.
        let fe = score(&Evidence {
            bytes: text,
            errors: errs(26, 0, 0),
            frames: &[],
        });
        assert!(fe.value < 0.2, "{fe:?}");
        // A break stream (much slower device) and random bytes score ~0.
        let zeros = [0u8; 64];
        assert!(
            score(&Evidence {
                bytes: &zeros,
                errors: errs(0, 0, 64),
                frames: &[]
            })
            .value
                < 0.01
        );
        let mut rng = SplitMix64::new(5);
        let random: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
        assert!(
            score(&Evidence {
                bytes: &random,
                errors: errs(20, 0, 0),
                frames: &[]
            })
            .value
                < 0.1
        );
        // Frames: three valid ones on a clean line are proof.
        let bin = FRAMES.concat();
        let f = score(&Evidence {
            bytes: &bin,
            errors: errs(0, 0, 0),
            frames: &checked_frames(&bin),
        });
        assert!(f.value >= 0.95, "{f:?}");
        // Nothing received: 0, and no division by zero with errors but no bytes.
        assert_eq!(score(&Evidence::default()).value, 0.0);
        assert_eq!(
            score(&Evidence {
                bytes: &[],
                errors: errs(5, 5, 5),
                frames: &[40; 9]
            })
            .value,
            0.0
        );
    }

    // ---- passive estimation ----------------------------------------------------------------

    fn observe(
        tx: Sender,
        rx: Candidate,
        payload: &[u8],
        max: usize,
    ) -> (Vec<u8>, LineErrorCounts) {
        let wave = tx.waveform(0.0, payload);
        let r = Receiver::new(rx.baud, rx.format).decode(&wave);
        let chars = &r.chars[..r.chars.len().min(max)];
        let mut e = LineErrorCounts::default();
        for c in chars {
            if c.brk {
                e.brk += 1;
            } else if c.parity_error {
                e.parity += 1;
            } else if c.framing_error {
                e.frame += 1;
            }
        }
        (chars.iter().map(|c| c.byte).collect(), e)
    }

    fn passive(tx_rate: u32, tx_fmt: &str, m: Candidate, payload: &[u8]) -> PassiveEstimate {
        let tx = Sender::new(baud(tx_rate), fmt(tx_fmt)).with_gap_bits(1.0);
        let (bytes, errors) = observe(tx, m, payload, 64);
        PassiveEstimator::new(m, &COMMON_RATES).estimate(&Evidence {
            bytes: &bytes,
            errors,
            frames: &checked_frames(&bytes),
        })
    }

    #[test]
    fn passive_reads_the_reference_signatures() {
        let text = TEXT.concat().into_bytes();
        let at = |r| Candidate::n81(baud(r));
        // Right setting.
        let e = passive(9600, "8N1", at(9600), &text);
        assert_eq!(e.verdict, SettingVerdict::LooksRight, "{}", e.reason);
        assert_eq!(e.ranking[0].candidate, at(9600));
        // 9600 read at 115200: a stream of 00(FE): much lower.
        let e = passive(9600, "8N1", at(115200), &text);
        assert_eq!(
            e.verdict,
            SettingVerdict::Garbage(Mismatch::Lower),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("00 with framing errors"), "{}", e.reason);
        assert!(e.ranking[0].candidate.baud.bps() <= 11520);
        // 2400 read at 9600: receiver-faster garbage, ratio 4 → 2400 first.
        let e = passive(2400, "8N1", at(9600), &text);
        assert_eq!(
            e.verdict,
            SettingVerdict::Garbage(Mismatch::Lower),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("about 2400"), "{}", e.reason);
        assert_eq!(e.ranking[0].candidate, at(2400));
        // 115200 read at 9600: random with FE: higher, and higher rates ranked first.
        let e = passive(115200, "8N1", at(9600), &text);
        assert_eq!(
            e.verdict,
            SettingVerdict::Garbage(Mismatch::Higher),
            "{}",
            e.reason
        );
        assert!(e.ranking[..3].iter().all(|r| r.candidate.baud.bps() > 9600));
        // 7E1 text read as 8N1 ('h' arrives as E8): the format, not the rate.
        let e = passive(9600, "7E1", at(9600), &text);
        assert_eq!(
            e.verdict,
            SettingVerdict::Garbage(Mismatch::Format),
            "{}",
            e.reason
        );
        assert_eq!(e.ranking[0].candidate, at(9600).with_format("7E1"));
        // M-Bus at 2400 8E1 read as 8N1: FE on even-popcount bytes, frames intact.
        let mbus = FRAMES.concat().repeat(3);
        let tx = Sender::new(baud(2400), fmt("8E1"));
        let (bytes, errors) = observe(tx, at(2400), &mbus, 256);
        let e = PassiveEstimator::new(at(2400), &COMMON_RATES).estimate(&Evidence {
            bytes: &bytes,
            errors,
            frames: &checked_frames(&bytes),
        });
        assert_eq!(
            e.verdict,
            SettingVerdict::Garbage(Mismatch::Format),
            "{}",
            e.reason
        );
        assert_eq!(e.ranking[0].candidate, at(2400).with_format("8E1"));
        // Too little to judge.
        let e = PassiveEstimator::new(at(9600), &[9600]).estimate(&Evidence {
            bytes: b"hi",
            ..Evidence::default()
        });
        assert_eq!(e.verdict, SettingVerdict::NotEnoughData);
    }

    // ---- the active scan -------------------------------------------------------------------

    #[test]
    fn scan_finds_7e1_and_8e1_devices() {
        // 7E1 text read as 8N1 shows the 0x68/0xE8 signature; M-Bus at 2400 8E1 read as 8N1
        // shows framing errors on even-popcount bytes: both queue the variant at that rate.
        let mut estimators = HashMap::new();
        for (kind, rate, format, start) in [
            (Kind::Text, 9600, "7E1", 115200),
            (Kind::Text, 9600, "7E1", 9600),
            (Kind::Binary, 2400, "8E1", 2400),
            (Kind::Binary, 2400, "8E1", 9600),
        ] {
            let start = Candidate::n81(baud(start));
            let want = Candidate::new(baud(rate), fmt(format));
            // Ten device start points, with and without light noise.
            for seed in 0..10u64 {
                let noisy = seed % 2 == 1;
                let o = run_trial(kind, rate, format, noisy, start, &mut estimators, seed);
                assert_eq!(
                    o.best,
                    Some(want),
                    "{kind:?} {rate} {format} from {start}, seed {seed}"
                );
            }
        }
    }

    #[test]
    fn scan_state_machine() {
        let d = Dwell {
            bytes: 64,
            seconds: 1.0,
        };
        let cands = Candidate::n81_all(&[9600, 115200, 9600, 1200]);
        let mut scan = ActiveScan::new(cands, d);
        assert_eq!(scan.current(), Some(Candidate::n81(baud(9600))));
        scan.begin(0.0);
        // Nothing arrives: the dwell ends by time.
        assert_eq!(scan.poll(0.5), ScanAction::Stay);
        assert_eq!(
            scan.poll(1.0),
            ScanAction::Switch(Candidate::n81(baud(115200)))
        );
        // A break stream: rejected after 16 bytes, long before the dwell ends.
        scan.begin(1.0);
        assert_eq!(scan.feed(1.01, &[0; 8], errs(0, 0, 8)), ScanAction::Stay);
        assert_eq!(
            scan.feed(1.02, &[0; 8], errs(0, 0, 8)),
            ScanAction::Switch(Candidate::n81(baud(1200)))
        );
        // Clean text: accepted as soon as 32 bytes are in; the duplicate 9600 was dropped.
        // Before the scan ends, a control rate at least 4x away (no rate that far was heard
        // with 32 bytes) must not read the same: 14400, the untried rate nearest 8x (9600).
        scan.begin(2.0);
        let text = TEXT.concat();
        let step = scan.feed(2.5, &text.as_bytes()[..40], LineErrorCounts::default());
        assert_eq!(step, ScanAction::Switch(Candidate::n81(baud(14_400))));
        scan.begin(2.6);
        let garbage: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(97) | 0x80).collect();
        let step = scan.feed(2.7, &garbage, errs(20, 0, 0));
        let ScanAction::Finished(Some(best)) = step else {
            panic!("{step:?}");
        };
        assert_eq!(best.candidate, Candidate::n81(baud(1200)));
        assert!(scan.is_finished() && scan.current().is_none());
        assert!(!scan.rate_ignored());
        assert_eq!(scan.bytes_seen(), 16 + 40 + 64);
        // Feeding a finished scan is harmless.
        assert!(matches!(
            scan.feed(3.0, b"x", errs(1, 1, 1)),
            ScanAction::Finished(_)
        ));
        assert_eq!(scan.ranking().len(), 4);
        // No candidates: finished at once.
        let mut empty = ActiveScan::new(Vec::new(), d);
        assert!(empty.is_finished());
        assert_eq!(empty.poll(0.0), ScanAction::Finished(None));
    }

    /// A pseudo-terminal passes the same bytes whatever the setting: text at the first rate
    /// and at the control rate means the port ignores the rate, never a lock.
    #[test]
    fn a_port_that_ignores_the_rate_is_said_not_locked() {
        let d = Dwell {
            bytes: 64,
            seconds: 1.0,
        };
        let text = TEXT.concat();
        let mut scan = ActiveScan::new(Candidate::n81_all(&[115_200, 9600, 1200]), d);
        scan.begin(0.0);
        let step = scan.feed(0.1, &text.as_bytes()[..40], LineErrorCounts::default());
        let ScanAction::Switch(control) = step else {
            panic!("{step:?}");
        };
        assert_eq!(
            control.baud.bps(),
            921_600,
            "the untried rate nearest 8x 115200"
        );
        scan.begin(0.2);
        assert_eq!(
            scan.feed(0.3, &text.as_bytes()[40..80], LineErrorCounts::default()),
            ScanAction::RateIgnored
        );
        assert!(scan.rate_ignored() && scan.is_finished());
        // The same bytes at both, even bytes that do not score (unknown binary): ignored too.
        let mut rng = SplitMix64::new(9);
        let blob: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
        let mut scan = ActiveScan::new(Candidate::n81_all(&[115_200, 9600]), d);
        for c in [0.0, 2.0] {
            scan.begin(c);
            scan.feed(c + 0.1, &blob, LineErrorCounts::default());
            scan.poll(c + 1.5);
        }
        assert!(scan.is_finished());
        assert!(scan.rate_ignored());
        // ...but a far slower device's 00 stream is the same at any rate and proves nothing.
        let mut scan = ActiveScan::new(Candidate::n81_all(&[115_200, 9600]), d);
        for c in [0.0, 2.0] {
            scan.begin(c);
            scan.feed(c + 0.1, &[0; 64], errs(0, 0, 64));
            scan.poll(c + 1.5);
        }
        assert!(scan.is_finished() && !scan.rate_ignored());
    }

    #[test]
    fn prioritize_puts_the_passive_ranking_first() {
        let d = Dwell {
            bytes: 64,
            seconds: 1.0,
        };
        let m = Candidate::n81(baud(9600));
        let est = PassiveEstimate {
            monitor: m,
            verdict: SettingVerdict::Garbage(Mismatch::Format),
            current: Score::default(),
            ranking: vec![
                Ranked {
                    candidate: m.with_format("7E1"),
                    score: 0.8,
                    bytes: 0,
                    reason: String::new(),
                },
                Ranked {
                    candidate: Candidate::n81(baud(1200)),
                    score: 0.5,
                    bytes: 0,
                    reason: String::new(),
                },
            ],
            reason: String::new(),
        };
        let mut scan = ActiveScan::new(Candidate::n81_all(&[9600, 1200, 2400]), d).prioritize(&est);
        let mut order = Vec::new();
        while let Some(c) = scan.current() {
            order.push(c.to_string());
            scan.begin(0.0);
            scan.poll(2.0);
        }
        assert_eq!(order, ["9600 7E1", "1200 8N1", "9600 8N1", "2400 8N1"]);
    }

    #[test]
    fn common_rates_win_ties() {
        // 74880 and 76800 decode each other cleanly: the common one ranks first.
        let mut r = vec![
            Ranked {
                candidate: Candidate::n81(baud(76800)),
                score: 0.99,
                bytes: 64,
                reason: String::new(),
            },
            Ranked {
                candidate: Candidate::n81(baud(74880)),
                score: 0.985,
                bytes: 64,
                reason: String::new(),
            },
        ];
        sort_ranking(&mut r);
        assert_eq!(r[0].candidate.baud.bps(), 74880);
    }

    fn estimator_9600() -> &'static PassiveEstimator {
        static E: std::sync::OnceLock<PassiveEstimator> = std::sync::OnceLock::new();
        E.get_or_init(|| PassiveEstimator::new(Candidate::n81(baud(9600)), &Baud::STANDARD))
    }

    proptest::proptest! {
        #[test]
        fn scoring_and_estimating_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            frame in 0u64..1000,
            parity in 0u64..1000,
            brk in proptest::prop_oneof![proptest::strategy::Just(u64::MAX), 0u64..1000],
            frames in proptest::collection::vec(proptest::prelude::any::<u16>(), 0..20),
        ) {
            let ev = Evidence { bytes: &bytes, errors: errs(frame, parity, brk), frames: &frames };
            let s = score(&ev);
            proptest::prop_assert!((0.0..=1.0).contains(&s.value));
            let e = estimator_9600().estimate(&ev);
            proptest::prop_assert!(!e.ranking.is_empty());
            proptest::prop_assert!(e.ranking.iter().all(|r| (0.0..=1.0).contains(&r.score)));
            let mut scan = ActiveScan::new(Candidate::n81_all(&[9600, 19200]), Dwell { bytes: 32, seconds: f64::NAN })
                .prioritize(&e);
            let _ = scan.feed(0.0, &bytes, errs(frame, parity, brk));
            let _ = scan.feed(f64::INFINITY, &bytes, errs(frame, parity, brk));
            proptest::prop_assert!(scan.ranking().iter().all(|r| (0.0..=1.0).contains(&r.score)));
        }
    }
}
