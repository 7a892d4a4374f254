//! "What am I talking to?": ranks protocols by the evidence in the stream — valid frames for,
//! corrupt frames against — and says why, for the status bar and the overlay.

use std::collections::BTreeMap;

use crate::decode::{Frame, Protocol};

/// Evidence for one protocol in the current epoch (line setting).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub ok: u64,
    pub bad: u64,
    /// Frames seen in each direction (a conversation has both).
    pub rx: u64,
    pub tx: u64,
    /// Valid frames strong enough to count alone (at least `WEAK_BITS`).
    pub strong: u64,
    /// Chance bits the valid frames add up to, each net of the bytes it could have come
    /// from by chance (`Evidence::net_bits`): what "how sure" is computed from.
    pub bits: f64,
}

/// One ranked guess.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    pub protocol: Protocol,
    /// 0..=1: how sure, from the share of valid frames and their chance bits.
    pub confidence: f64,
    pub tally: Tally,
    /// "M-Bus: 14 frames, 14 ok".
    pub evidence: String,
}

/// How much of an earlier epoch's evidence is left after each setting change.
const FADE: f64 = 0.25;

/// Chance bits that make a guess about 50 % sure (twice as many: 75 %, and so on).
const HALF_SURE_BITS: f64 = 16.0;

/// Ranks protocols by the evidence of the frames the engine reports about the device.
///
/// Evidence belongs to the line setting it arrived under: a baud or format change starts a
/// new epoch, and what earlier epochs showed fades (garbage read at a wrong rate must not
/// outlive the change to the right one). What hsmon itself sent is never evidence about the
/// device: the engine reports only received frames here (both directions on a tap).
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    tallies: BTreeMap<Protocol, Tally>,
    /// Chance bits left from earlier epochs.
    faded: BTreeMap<Protocol, f64>,
    /// Bytes received and sent in this session (for "no answer").
    received: u64,
    sent: u64,
}

/// What a protocol's valid frames say about the device on the other end.
fn role(p: Protocol) -> &'static str {
    match p {
        Protocol::Mbus => "M-Bus meter or master",
        Protocol::Iec101 => "IEC 60870-5-101 station",
        Protocol::Iec104 => "IEC 60870-5-104 station",
        Protocol::Dlt645 => "DL/T 645 electricity meter",
        Protocol::MtkBrom => "MediaTek device (BootROM)",
        Protocol::Stm32Boot => "STM32 system bootloader",
        Protocol::EspSlip => "ESP8266/ESP32 ROM loader",
        Protocol::Tls => "TLS endpoint",
        Protocol::Http => "plaintext HTTP server",
        Protocol::Text => "text console (boot log, shell, AT commands)",
        Protocol::Apdu | Protocol::Atr | Protocol::Iso7816Line => "smart card",
    }
}

impl Classifier {
    /// Counts a frame the device sent. `offsets`: how many stream positions it could have
    /// come from by chance (the bytes of its direction in this epoch; 1 for a reply to a
    /// request of the same protocol).
    pub fn observe(&mut self, frame: &Frame, rx: bool, offsets: u64) {
        let t = self.tallies.entry(frame.protocol).or_default();
        if frame.status.is_ok() {
            let e = frame.evidence();
            t.ok += 1;
            t.strong += u64::from(!e.is_weak());
            t.bits += e.net_bits(offsets).max(0.0);
        } else {
            t.bad += 1;
        }
        if rx {
            t.rx += 1;
        } else {
            t.tx += 1;
        }
    }

    /// Counts bytes that crossed the line (received: from the device).
    pub fn count_bytes(&mut self, received: bool, n: usize) {
        if received {
            self.received += n as u64;
        } else {
            self.sent += n as u64;
        }
    }

    /// A new line setting: what was seen so far fades.
    pub fn new_epoch(&mut self) {
        for (&p, t) in &self.tallies {
            *self.faded.entry(p).or_default() += t.bits;
        }
        for bits in self.faded.values_mut() {
            *bits *= FADE;
        }
        self.faded.retain(|_, bits| *bits >= 1.0);
        self.tallies.clear();
    }

    pub fn tally(&self, p: Protocol) -> Tally {
        self.tallies.get(&p).copied().unwrap_or_default()
    }

    /// Whether this epoch holds a frame of `p` strong enough to count alone: the context in
    /// which a weak frame of the same protocol means something.
    pub fn supports(&self, p: Protocol) -> bool {
        self.tallies.get(&p).is_some_and(|t| t.strong > 0)
    }

    /// Protocols ranked by confidence, best first.
    pub fn ranking(&self) -> Vec<Guess> {
        let protocols: std::collections::BTreeSet<Protocol> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.ok + t.bad > 0)
            .map(|(p, _)| *p)
            .chain(self.faded.keys().copied())
            .collect();
        let mut out: Vec<Guess> = protocols
            .into_iter()
            .map(|p| {
                let t = self.tally(p);
                let faded = self.faded.get(&p).copied().unwrap_or(0.0);
                let bits = t.bits + faded;
                let share = if t.ok + t.bad == 0 {
                    1.0
                } else {
                    t.ok as f64 / (t.ok + t.bad) as f64
                };
                let mut confidence = share * (1.0 - (-bits / HALF_SURE_BITS).exp2());
                // Weak frames never decide alone: a protocol is named only with a frame strong
                // enough to count alone (in this epoch, or carried over from an earlier one),
                // and with more than the weak-frame bar in all.
                let weak_bar = f64::from(crate::decode::WEAK_BITS);
                if bits < weak_bar || (t.strong == 0 && faded < weak_bar) {
                    confidence = confidence.min(0.19);
                }
                // Text lines are what any device prints besides its protocol.
                if p == Protocol::Text {
                    confidence *= 0.6;
                }
                let n = t.ok + t.bad;
                let mut evidence = format!(
                    "{}: {} frame{}, {} {}",
                    p.name(),
                    n,
                    if n == 1 { "" } else { "s" },
                    t.ok,
                    if p == Protocol::Text { "lines" } else { "ok" },
                );
                if t.bad > 0 {
                    evidence += &format!(", {} bad", t.bad);
                }
                if faded > 0.0 && n == 0 {
                    evidence += " (before the last setting change)";
                }
                Guess {
                    protocol: p,
                    confidence,
                    tally: t,
                    evidence,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.confidence
                .partial_cmp(&a.confidence)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.tally.ok.cmp(&a.tally.ok))
        });
        out
    }

    /// One line for the status bar: "talking to: DL/T 645 electricity meter (DL/T 645: 3 frames, 3 ok)".
    pub fn headline(&self) -> Option<String> {
        let Some(best) = self.ranking().into_iter().next() else {
            if self.received == 0 && self.sent > 0 {
                return Some(format!(
                    "talking to: no answer ({} byte{} sent, nothing received)",
                    self.sent,
                    if self.sent == 1 { "" } else { "s" }
                ));
            }
            return None;
        };
        if best.confidence < 0.2 {
            return Some(format!("talking to: unsure ({})", best.evidence));
        }
        Some(format!(
            "talking to: {} ({})",
            role(best.protocol),
            best.evidence
        ))
    }

    pub fn describe(p: Protocol) -> &'static str {
        role(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::FrameStatus;

    /// A frame of `p` worth about 40 chance bits when valid.
    fn frame(p: Protocol, ok: bool) -> Frame {
        Frame::new(
            p,
            0..30,
            "long",
            if ok {
                FrameStatus::Ok
            } else {
                FrameStatus::Truncated
            },
            String::new(),
            vec![],
        )
    }

    #[test]
    fn valid_frames_outrank_corrupt_ones() {
        let mut c = Classifier::default();
        for _ in 0..14 {
            c.observe(&frame(Protocol::Mbus, true), true, 1000);
        }
        c.observe(&frame(Protocol::Iec104, true), true, 1000);
        c.observe(&frame(Protocol::Iec104, false), true, 1000);
        let r = c.ranking();
        assert_eq!(r[0].protocol, Protocol::Mbus);
        assert!(r[0].confidence > 0.9);
        assert_eq!(r[0].evidence, "M-Bus: 14 frames, 14 ok");
        assert!(r[1].evidence.contains("1 bad"));
        assert!(c.headline().unwrap().starts_with("talking to: M-Bus"));
    }

    #[test]
    fn nothing_seen_is_no_headline() {
        assert_eq!(Classifier::default().headline(), None);
    }

    #[test]
    fn what_was_only_sent_is_no_answer() {
        let mut c = Classifier::default();
        c.count_bytes(false, 3);
        assert_eq!(
            c.headline().unwrap(),
            "talking to: no answer (3 bytes sent, nothing received)"
        );
    }

    #[test]
    fn weak_frames_alone_name_nothing() {
        let mut c = Classifier::default();
        let ack = Frame::new(
            Protocol::Stm32Boot,
            0..1,
            "ack",
            FrameStatus::Ok,
            String::new(),
            vec![],
        );
        c.observe(&ack, true, 1);
        c.observe(&ack, true, 1);
        assert!(c.headline().unwrap().starts_with("talking to: unsure"));
        assert!(!c.supports(Protocol::Stm32Boot));
    }

    #[test]
    fn an_earlier_setting_fades() {
        let mut c = Classifier::default();
        for _ in 0..5 {
            c.observe(&frame(Protocol::Dlt645, true), true, 100);
        }
        assert!(c.supports(Protocol::Dlt645));
        let full = c.ranking()[0].confidence;
        c.new_epoch();
        assert!(!c.supports(Protocol::Dlt645));
        let before = c.ranking()[0].clone();
        assert!(before.evidence.contains("before the last setting change"));
        assert!(before.confidence < full, "{} < {full}", before.confidence);
        for _ in 0..3 {
            c.observe(&frame(Protocol::Mbus, true), true, 100);
        }
        let r = c.ranking();
        assert_eq!(r[0].protocol, Protocol::Mbus, "{r:?}");
        assert!(r[1].confidence < r[0].confidence);
        c.new_epoch();
        c.new_epoch();
        c.new_epoch();
        assert!(!c.ranking().is_empty());
        assert!(
            c.ranking().iter().all(|g| g.protocol == Protocol::Mbus),
            "the older epoch faded out first"
        );
    }
}
