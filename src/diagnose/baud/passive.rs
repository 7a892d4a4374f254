//! The passive estimator: judges the current setting from its bytes alone. Wrong-rate garbage
//! has signatures read through fingerprints simulated with the UART line model (`uart_line`):
//! a stream of `00(FE)` means the device is far slower, `00/80/F8/E0`-type bytes give the speed
//! ratio from their run lengths, random bytes with many FE mean faster.

use std::cmp::Ordering;

use crate::event::{Baud, FrameFormat, Parity};
use crate::uart_line::{Receiver, Sender, Waveform};

use super::scoring::{
    COMMON_RATES, Candidate, Evidence, Ranked, SIGNIFICANT_BITS, Score, is_printable, is_step_byte,
    ratio, score, sort_ranking, text_stats,
};

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
        let (mismatch, mut reason) = if breaks {
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
                let agrees = match mismatch {
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
            verdict: SettingVerdict::Garbage(mismatch),
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
pub(super) fn describe_good(s: &Score, frames: usize) -> String {
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
pub(super) fn parity_as_stop(ev: &Evidence, s: &Score) -> bool {
    let n = ev.bytes.len();
    let even = ev.bytes.iter().filter(|b| b.count_ones() % 2 == 0).count();
    let fe = usize::try_from(ev.errors.frame.saturating_add(ev.errors.brk)).unwrap_or(usize::MAX);
    n >= 16 && (0.15..=0.85).contains(&s.fe_ratio) && fe.abs_diff(even) as f64 <= 0.2 * n as f64
}

/// Format-mismatch signatures at a plausible rate (§6.2): 7E1/7O1 read as 8N1 (bit 7 set
/// exactly on the bytes that need it for even/odd parity: 0x68 'h' arrives as 0xE8), 8E1 read as
/// 8N1 (framing errors on the even-popcount bytes only), parity errors on 8N1 data read with
/// parity. Returns the suggested format and why.
pub(super) fn format_hint(
    ev: &Evidence,
    m: Candidate,
    s: &Score,
) -> Option<(&'static str, String)> {
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
