//! The active scan over candidate settings: which candidate to try next, when a dwell ends, and
//! when the scan is over (no I/O: the caller sets the port and feeds what it read).

use std::cmp::Ordering;
use std::fmt;

use crate::event::{Baud, FrameFormat, LineErrorCounts};

use super::passive::{PassiveEstimate, describe_good, format_hint, parity_as_stop};
use super::scoring::{COMMON_RATES, Candidate, Evidence, Ranked, Score, score, sort_ranking};

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
/// framers; [`checked_frames`](super::scoring::checked_frames) uses all of hsmon's).
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
    /// Chance bits of the checksummed frames in `bytes` (see [`checked_frames`](super::scoring::checked_frames)).
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
