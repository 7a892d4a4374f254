//! "What am I talking to?": ranks protocols by the evidence in the stream — valid frames for,
//! corrupt frames against — and says why, for the status bar and the overlay.

use std::collections::BTreeMap;

use crate::decode::{Frame, Protocol};

/// Evidence for one protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: u64,
    pub bad: u64,
    /// Frames seen in each direction (a conversation has both).
    pub rx: u64,
    pub tx: u64,
}

/// One ranked guess.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    pub protocol: Protocol,
    /// 0..=1: how sure, from the share of valid frames and their number.
    pub confidence: f64,
    pub tally: Tally,
    /// "M-Bus: 14 frames, 14 checksums ok".
    pub evidence: String,
}

#[derive(Debug, Clone, Default)]
pub struct Classifier {
    tallies: BTreeMap<Protocol, Tally>,
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
    pub fn observe(&mut self, frame: &Frame, rx: bool) {
        let t = self.tallies.entry(frame.protocol).or_default();
        if frame.status.is_ok() {
            t.ok += 1;
        } else {
            t.bad += 1;
        }
        if rx {
            t.rx += 1;
        } else {
            t.tx += 1;
        }
    }

    pub fn tally(&self, p: Protocol) -> Tally {
        self.tallies.get(&p).copied().unwrap_or_default()
    }

    /// Protocols ranked by confidence, best first.
    pub fn ranking(&self) -> Vec<Guess> {
        let mut out: Vec<Guess> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.ok + t.bad > 0)
            .map(|(&p, &t)| {
                let total = (t.ok + t.bad) as f64;
                let share = t.ok as f64 / total;
                // Three valid frames make a protocol likely, ten make it near certain.
                let volume = 1.0 - (-(t.ok as f64) / 4.0).exp();
                let mut confidence = share * volume;
                // Text lines are weak evidence next to checksummed frames.
                if p == Protocol::Text {
                    confidence *= 0.6;
                }
                Guess {
                    protocol: p,
                    confidence,
                    tally: t,
                    evidence: format!(
                        "{}: {} frame{}, {} {}",
                        p.name(),
                        t.ok + t.bad,
                        if t.ok + t.bad == 1 { "" } else { "s" },
                        t.ok,
                        if p == Protocol::Text { "lines" } else { "ok" },
                    ) + &if t.bad > 0 {
                        format!(", {} bad", t.bad)
                    } else {
                        String::new()
                    },
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
        let best = self.ranking().into_iter().next()?;
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

    fn frame(p: Protocol, ok: bool) -> Frame {
        Frame::new(
            p,
            0..1,
            "x",
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
            c.observe(&frame(Protocol::Mbus, true), true);
        }
        c.observe(&frame(Protocol::Iec104, true), true);
        c.observe(&frame(Protocol::Iec104, false), true);
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
}
