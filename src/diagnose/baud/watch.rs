//! The passive baud watch: what arrived since the port's setting last changed, judged by the
//! estimator ("garbage: likely baud mismatch — 9600 8N1 looks right"), with the suggestion the
//! apply key uses and the one observation per setting that raises the knowledge entry.
//!
//! Pure: the session feeds it received bytes, line-error counters, valid-frame counts and
//! settings; nothing here reads a clock or touches a port.

use crate::diagnose::baud::passive::{Mismatch, PassiveEstimate, PassiveEstimator, SettingVerdict};
use crate::diagnose::baud::scoring::{
    COMMON_RATES, Candidate, Evidence, Ranked, checked_frames, frame_net_bits,
};
use crate::diagnose::observation::{BaudSuspect, Observation};
use crate::event::{LineErrorCounts, LineSettings};

/// Bytes judged at once. After this many the window starts again, so the verdict follows
/// the line (a device that changes rate, a noisy burst that ends).
const WINDOW: usize = 512;
/// A passive candidate scoring below this is not offered (fingerprints are only a guess; the
/// active scan measures). Passive scores are low by nature: a break stream from a device 12x
/// slower gives its true rate ~0.13 and the next rate down ~0.12.
const SUGGEST_MIN: f64 = 0.1;
/// Bytes in the window before an observation is raised.
const RAISE_AFTER: usize = 64;
/// Bytes in the window before garbage with no better rate to name is raised: early on, a few
/// broken characters from a drifting clock look like that too, and only one observation is
/// raised per setting (measured on the drift demo: 1 run in 6 said "baud mismatch" at 64).
const RAISE_UNCLEAR_AFTER: usize = 256;
/// Net chance bits of the window's frames beyond which they are not weighed again.
const PROOF_BITS: f64 = 24.0;
/// Judge again after this many new bytes (and whenever the error counters move).
const JUDGE_EVERY: usize = 32;

/// The watch's conclusion about the current setting.
#[derive(Debug, Clone, PartialEq)]
pub enum BaudVerdict {
    /// Nothing (or too little) received at this setting yet.
    Unknown,
    LooksRight,
    /// The bytes are garbage at this setting; `suggestion` is the best candidate, if any.
    Garbage {
        mismatch: Mismatch,
        suggestion: Option<Ranked>,
    },
    /// Mostly text with some framing errors: the device's clock is likely this many percent
    /// off the configured rate.
    Drift {
        pct: f64,
    },
}

/// Passive baud estimation over the live stream.
#[derive(Debug, Default)]
pub struct BaudWatch {
    monitor: Option<Candidate>,
    estimator: Option<PassiveEstimator>,
    bytes: Vec<u8>,
    errors: LineErrorCounts,
    last_counts: Option<LineErrorCounts>,
    /// The session's framers found a valid frame since the window's frames were last
    /// weighed: weigh them again at the next judgement.
    frames_pending: bool,
    /// Chance bits of the checksummed frames in the window, as last weighed.
    frames: Vec<u16>,
    unjudged: usize,
    errors_moved: bool,
    estimate: Option<PassiveEstimate>,
    verdict: Option<BaudVerdict>,
    /// An observation was already raised for this setting (one per setting, not per byte).
    raised: bool,
}

impl BaudWatch {
    pub fn new() -> BaudWatch {
        BaudWatch::default()
    }

    /// The port confirmed a setting. A change starts the watch afresh.
    pub fn on_settings(&mut self, settings: &LineSettings) {
        let c = Candidate::new(settings.baud, settings.format);
        if self.monitor == Some(c) {
            return;
        }
        self.monitor = Some(c);
        if self.estimator.as_ref().is_some_and(|e| e.monitor() != c) {
            self.estimator = None;
        }
        self.restart_window();
        self.estimate = None;
        self.verdict = None;
        self.raised = false;
    }

    /// The port reconnected: counters restart from zero there.
    pub fn on_reconnect(&mut self) {
        self.last_counts = None;
    }

    pub fn on_rx(&mut self, bytes: &[u8]) {
        if self.monitor.is_none() {
            return;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.bytes.len() >= WINDOW {
                self.restart_window();
            }
            let take = rest.len().min(WINDOW - self.bytes.len());
            self.bytes.extend_from_slice(&rest[..take]);
            self.unjudged += take;
            rest = &rest[take..];
        }
    }

    /// The driver's cumulative counters (TIOCGICOUNT, or the simulated wire's).
    pub fn on_line_errors(&mut self, counts: &LineErrorCounts) {
        if let Some(old) = self.last_counts {
            let delta = counts.since(&old);
            if delta.frame + delta.parity + delta.brk > 0 {
                self.errors.frame += delta.frame;
                self.errors.parity += delta.parity;
                self.errors.brk += delta.brk;
                self.errors_moved = true;
            }
        }
        self.last_counts = Some(*counts);
    }

    /// A valid non-text frame was decoded from received bytes. The session does not say how
    /// strong it was (an E5 token or a 40-bit M-Bus frame), so the window is weighed again
    /// by chance bits at the next judgement ([`checked_frames`]).
    pub fn on_frame_ok(&mut self) {
        self.frames_pending = true;
    }

    /// Re-judges the setting when enough has changed. Returns an observation the first time
    /// the setting looks wrong (the caller hands it to the diagnosis engine).
    pub fn judge(&mut self) -> Option<(Observation, String)> {
        let monitor = self.monitor?;
        let errors_to_judge = self.errors_moved && !self.bytes.is_empty();
        if self.unjudged < JUDGE_EVERY && !errors_to_judge {
            return None;
        }
        self.unjudged = 0;
        self.errors_moved = false;
        let estimator = self
            .estimator
            .get_or_insert_with(|| PassiveEstimator::new(monitor, &COMMON_RATES));
        // Weighed again only while the window's frames are short of proof: once proven,
        // decoding the window again would not change the verdict.
        if self.frames_pending && frame_net_bits(&self.frames, self.bytes.len()) < PROOF_BITS {
            self.frames = checked_frames(&self.bytes);
        }
        self.frames_pending = false;
        let ev = Evidence {
            bytes: &self.bytes,
            errors: self.errors,
            frames: &self.frames,
        };
        let estimate = estimator.estimate(&ev);
        let drift = estimator.drift_pct(&ev);
        let verdict = match (estimate.verdict, drift) {
            (SettingVerdict::NotEnoughData, _) => BaudVerdict::Unknown,
            (SettingVerdict::LooksRight, None) => BaudVerdict::LooksRight,
            (_, Some(pct)) if !confident_elsewhere(&estimate) => BaudVerdict::Drift { pct },
            (SettingVerdict::LooksRight, Some(_)) => BaudVerdict::LooksRight,
            (SettingVerdict::Garbage(mismatch), _) => BaudVerdict::Garbage {
                mismatch,
                suggestion: estimate
                    .ranking
                    .iter()
                    .find(|r| r.candidate != monitor && r.score >= SUGGEST_MIN)
                    .cloned(),
            },
        };
        self.estimate = Some(estimate);
        self.verdict = Some(verdict.clone());
        // One observation per setting: wait until the window holds enough to tell a wrong
        // rate from a drifting clock.
        if self.raised || self.bytes.len() < RAISE_AFTER {
            return None;
        }
        let unclear = matches!(
            verdict,
            BaudVerdict::Garbage {
                suggestion: None,
                ..
            }
        );
        if unclear && self.bytes.len() < RAISE_UNCLEAR_AFTER {
            return None;
        }
        let configured = monitor.baud.bps();
        let (estimated, text) = match &verdict {
            BaudVerdict::Garbage {
                mismatch: Mismatch::Lower | Mismatch::Higher,
                suggestion: Some(s),
            } => (
                Some(s.candidate.baud.bps()),
                format!(
                    "garbage at {monitor}: likely baud mismatch, {} looks right (score {:.2})",
                    s.candidate, s.score
                ),
            ),
            BaudVerdict::Garbage {
                mismatch: Mismatch::Unclear | Mismatch::Lower | Mismatch::Higher,
                suggestion: None,
            } => (
                None,
                format!(
                    "garbage at {monitor}: likely a baud mismatch; {}",
                    self.estimate.as_ref().map_or("", |e| e.reason.as_str())
                ),
            ),
            BaudVerdict::Drift { pct } => (
                Some(drifted(configured, *pct)),
                format!(
                    "text with framing errors at {monitor}: the device's clock is likely about {pct:.1} % off"
                ),
            ),
            // Format mismatches are raised by the 7-bit and parity observations.
            _ => return None,
        };
        self.raised = true;
        Some((
            Observation::Baud(BaudSuspect {
                configured,
                estimated,
            }),
            text,
        ))
    }

    pub fn verdict(&self) -> &BaudVerdict {
        self.verdict.as_ref().unwrap_or(&BaudVerdict::Unknown)
    }

    pub fn estimate(&self) -> Option<&PassiveEstimate> {
        self.estimate.as_ref()
    }

    /// The setting the apply key switches to, if the watch has one.
    pub fn suggestion(&self) -> Option<&Ranked> {
        match self.verdict.as_ref()? {
            BaudVerdict::Garbage { suggestion, .. } => suggestion.as_ref(),
            _ => None,
        }
    }

    /// One line for the status bar, when there is something to say.
    pub fn status_line(&self) -> Option<String> {
        let m = self.monitor?;
        match self.verdict.as_ref()? {
            BaudVerdict::Unknown | BaudVerdict::LooksRight => None,
            BaudVerdict::Garbage {
                mismatch: Mismatch::Format,
                suggestion: Some(s),
            } => Some(format!(
                "garbage: likely format mismatch — {} looks right (score {:.2})",
                s.candidate, s.score
            )),
            BaudVerdict::Garbage {
                suggestion: Some(s),
                ..
            } => Some(format!(
                "garbage: likely baud mismatch — {} looks right (score {:.2})",
                s.candidate, s.score
            )),
            BaudVerdict::Garbage { .. } => Some(format!(
                "garbage: likely baud mismatch — {}; try an active scan",
                self.estimate
                    .as_ref()
                    .map_or_else(|| format!("{m} looks wrong"), |e| e.reason.clone())
            )),
            BaudVerdict::Drift { pct } => Some(format!(
                "framing errors in text: the device's clock is likely ~{pct:.1} % off {}",
                m.baud
            )),
        }
    }

    fn restart_window(&mut self) {
        self.bytes.clear();
        self.errors = LineErrorCounts::default();
        self.frames.clear();
        self.frames_pending = false;
        self.unjudged = 0;
        self.errors_moved = false;
    }
}

/// A different standard rate explains the bytes well: a wrong rate, not a drifting clock.
fn confident_elsewhere(e: &PassiveEstimate) -> bool {
    e.ranking
        .first()
        .is_some_and(|r| r.candidate != e.monitor && r.score >= 0.5)
}

fn drifted(configured: u32, pct: f64) -> u32 {
    (f64::from(configured) * (1.0 + pct / 100.0)).round() as u32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::{Baud, FrameFormat};
    use crate::uart_line::{Receiver, Sender, UartLink};

    fn settings(bps: u32) -> LineSettings {
        LineSettings {
            baud: Baud::new(bps).unwrap(),
            ..LineSettings::default()
        }
    }

    /// Boot-log text sent at `true_bps` (clock off by `pct`) and read at `monitor_bps`.
    fn wire(true_bps: u32, pct: f64, monitor_bps: u32) -> (Vec<u8>, LineErrorCounts) {
        let sender = Sender::new(Baud::new(true_bps).unwrap(), FrameFormat::default())
            .with_clock_ppm(pct * 1e4);
        let rx = Receiver::new(Baud::new(monitor_bps).unwrap(), FrameFormat::default());
        let mut link = UartLink::new(sender, rx);
        let mut t = 0.0;
        for _ in 0..12 {
            t = link.send(t, b"boot: checking flash... ok, hello there\r\n") + 0.005;
        }
        let r = link.receive_until(t + 0.5);
        (r.bytes(), r.counts)
    }

    fn watch_through(monitor_bps: u32, bytes: &[u8], counts: LineErrorCounts) -> BaudWatch {
        let mut w = BaudWatch::new();
        w.on_settings(&settings(monitor_bps));
        w.on_line_errors(&LineErrorCounts::default());
        let mut raised = Vec::new();
        for chunk in bytes.chunks(40) {
            w.on_rx(chunk);
            raised.extend(w.judge());
        }
        w.on_line_errors(&counts);
        raised.extend(w.judge());
        assert!(raised.len() <= 1, "one observation per setting: {raised:?}");
        w
    }

    #[test]
    fn clean_text_looks_right_and_raises_nothing() {
        let (b, c) = wire(115_200, 0.0, 115_200);
        let w = watch_through(115_200, &b, c);
        assert_eq!(w.verdict(), &BaudVerdict::LooksRight);
        assert_eq!(w.status_line(), None);
        assert!(w.suggestion().is_none());
    }

    #[test]
    fn device_slower_than_monitor_suggests_its_rate() {
        let (b, c) = wire(9600, 0.0, 115_200);
        let mut w = watch_through(115_200, &b, c);
        let s = w.suggestion().expect("a suggestion").candidate;
        assert_eq!(s.baud.bps(), 9600, "{:?}", w.estimate());
        let line = w.status_line().unwrap();
        assert!(
            line.starts_with("garbage: likely baud mismatch — 9600 8N1"),
            "{line}"
        );
        // Already raised for this setting: nothing more.
        w.on_rx(&b);
        assert!(w.judge().is_none());
    }

    #[test]
    fn the_first_judgement_raises_a_baud_observation() {
        let (b, c) = wire(9600, 0.0, 115_200);
        let mut w = BaudWatch::new();
        w.on_settings(&settings(115_200));
        w.on_line_errors(&LineErrorCounts::default());
        w.on_line_errors(&c);
        w.on_rx(&b[..b.len().min(WINDOW)]);
        let (obs, text) = w.judge().unwrap();
        assert_eq!(
            obs,
            Observation::Baud(BaudSuspect {
                configured: 115_200,
                estimated: Some(9600)
            })
        );
        assert!(text.contains("9600 8N1 looks right"), "{text}");
    }

    #[test]
    fn a_drifting_clock_is_told_apart_from_a_wrong_rate() {
        let (b, c) = wire(9600, 4.0, 9600);
        assert!(c.frame > 0);
        let w = watch_through(9600, &b, c);
        match w.verdict() {
            BaudVerdict::Drift { pct } => assert!((3.0..=5.0).contains(pct), "{pct}"),
            v => panic!("expected drift, got {v:?}"),
        }
        assert!(w.status_line().unwrap().contains("% off 9600"));
    }

    /// Live, the error counters move while the bytes arrive and reads come in any size:
    /// judged as it arrives, a drifting clock (the demo board's boot text and meter frames,
    /// 4 % fast) is raised as drift, never first as a baud mismatch.
    #[test]
    fn a_drift_judged_as_it_arrives_is_raised_as_drift() {
        let sender = Sender::new(Baud::new(115_200).unwrap(), FrameFormat::default())
            .with_clock_ppm(4.0 * 1e4);
        let rx = Receiver::new(Baud::new(115_200).unwrap(), FrameFormat::default());
        let mut link = UartLink::new(sender, rx);
        let mut t = 0.0;
        for text in [
            &b"\r\nhsmon demo board v1.2 (simulated)\r\nboot: checking flash... ok\r\n"[..],
            b"boot: hello, this is the boot log: every 'h' is a 0x68 byte\r\n",
            &[
                0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
                0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
            ],
            b"net: link down\r\napp: heartbeat ok\r\n",
            &[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00],
            b"meter: RSP_UD from address 2, 18 data bytes\r\n",
        ]
        .iter()
        .cycle()
        .take(24)
        {
            t = link.send(t, text) + 0.005;
        }
        let r = link.receive_until(t + 0.5);
        let (b, c) = (r.bytes(), r.counts);
        // Counters polled after every read, or every 200 bytes (a driver's counters are read
        // on a timer), with reads of any size. (Polled more rarely than every 256 bytes, the
        // early verdict can still be a mismatch: the bytes alone do not tell drift apart.)
        for (size, poll_every) in (1..=48).flat_map(|size| [(size, 1), (size, 200)]) {
            let mut w = BaudWatch::new();
            w.on_settings(&settings(115_200));
            w.on_line_errors(&LineErrorCounts::default());
            let mut raised = Vec::new();
            let mut fed = 0usize;
            let mut polled = 0usize;
            for chunk in b.chunks(size) {
                fed += chunk.len();
                w.on_rx(chunk);
                if fed - polled >= poll_every {
                    polled = fed;
                    let share = |n: u64| n * fed as u64 / b.len() as u64;
                    w.on_line_errors(&LineErrorCounts {
                        frame: share(c.frame),
                        parity: share(c.parity),
                        brk: share(c.brk),
                        ..c
                    });
                }
                raised.extend(w.judge());
            }
            assert!(raised.len() <= 1, "{raised:?}");
            if let Some((_, text)) = raised.first() {
                assert!(
                    text.contains("clock"),
                    "reads of {size}, counters every {poll_every} bytes: {text}"
                );
            }
        }
    }

    #[test]
    fn a_new_setting_starts_afresh() {
        let (b, c) = wire(9600, 0.0, 115_200);
        let mut w = watch_through(115_200, &b, c);
        assert!(w.suggestion().is_some());
        w.on_settings(&settings(9600));
        assert_eq!(w.verdict(), &BaudVerdict::Unknown);
        assert!(w.suggestion().is_none());
    }
}
