//! The card side of a session: readers, the card hsmon holds (ATR, protocol), the exchanges
//! with their T=0 follow-ups linked to the command they belong to, and the card state a reset
//! throws away (selected application, verified PIN, secure-messaging session), so a
//! SCARD_W_RESET_CARD can say what was lost.
//!
//! Pure: built only from Events; it returns the observations the diagnosis engine should see.

use std::collections::VecDeque;
use std::time::Duration;

use crate::decode::iso7816::apdu::parse_command;
use crate::decode::iso7816::cla::{Cla, SecureMessaging};
use crate::diagnose::observation::{Observation, StatusWordSeen};
use crate::event::{ApduExchange, CardDisposition, CardEvent, Event, Timestamp};
use crate::hex;

/// Exchanges kept in memory.
pub const EXCHANGES_CAP: usize = 20_000;

/// One exchange and where it belongs.
#[derive(Debug, Clone)]
pub struct CardExchange {
    pub seq: u64,
    pub at: Timestamp,
    pub exchange: ApduExchange,
    /// For a GET RESPONSE / Le retry: the command it follows up.
    pub parent: Option<u64>,
}

/// Card state that lives only until the next reset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardContext {
    /// AID of the application selected last (SELECT by name answered 9000/61XX).
    pub selected: Option<Vec<u8>>,
    /// A VERIFY was accepted.
    pub pin_verified: bool,
    /// A command with secure-messaging CLA bits, or an EXTERNAL AUTHENTICATE, succeeded.
    pub secure_messaging: bool,
}

impl CardContext {
    pub fn is_empty(&self) -> bool {
        *self == CardContext::default()
    }

    /// "the selected application A0 00 00 00 03, the verified PIN" — what a reset loses.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(aid) = &self.selected {
            parts.push(format!("the selected application {}", hex::spaced(aid)));
        }
        if self.pin_verified {
            parts.push("the verified PIN".to_string());
        }
        if self.secure_messaging {
            parts.push("the secure-messaging session".to_string());
        }
        if parts.is_empty() {
            "no application state (nothing was selected, verified or opened yet)".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A reset that happened, and what it took away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetNote {
    pub at: Timestamp,
    /// True: another application (or a transaction end) reset it; false: the user asked.
    pub foreign: bool,
    pub lost: CardContext,
}

#[derive(Debug, Default)]
pub struct CardLog {
    pub readers: Vec<String>,
    /// The reader hsmon is connected to, with its protocol and the card's ATR.
    pub reader: Option<String>,
    pub protocol: Option<String>,
    pub atr: Option<Vec<u8>>,
    pub connected: bool,
    pub in_transaction: bool,
    exchanges: VecDeque<CardExchange>,
    next_seq: u64,
    /// The last command that was not a follow-up (what follow-ups link to).
    last_command: Option<u64>,
    pub context: CardContext,
    pub last_reset: Option<ResetNote>,
    pub resets: u64,
    /// Exchanges whose final status word was not 9000 / 61XX / 62XX / 63XX.
    pub errors: u64,
}

impl CardLog {
    pub fn new() -> CardLog {
        CardLog::default()
    }

    pub fn exchanges(&self) -> &VecDeque<CardExchange> {
        &self.exchanges
    }

    /// True once anything card-related happened (a card session, not a serial one).
    pub fn is_active(&self) -> bool {
        !self.readers.is_empty() || self.reader.is_some() || !self.exchanges.is_empty()
    }

    /// Takes one card Event; returns observations for the diagnosis engine with their text.
    pub fn ingest(&mut self, at: Timestamp, ev: &Event) -> Vec<(Observation, String)> {
        let mut out = Vec::new();
        match ev {
            Event::Apdu(x) => self.exchange(at, x, &mut out),
            Event::Card(c) => self.card_event(at, c),
            Event::Pcsc { operation, code } => {
                if *code == 0x8010_0068 {
                    let lost = std::mem::take(&mut self.context);
                    self.resets += 1;
                    let text = format!(
                        "{operation} returned SCARD_W_RESET_CARD: another application reset the card; lost: {}. The APDU was not sent; hsmon reconnects with SCARD_LEAVE_CARD",
                        lost.describe()
                    );
                    self.last_reset = Some(ResetNote {
                        at,
                        foreign: true,
                        lost,
                    });
                    out.push((Observation::Pcsc { code: *code }, text));
                } else {
                    out.push((
                        Observation::Pcsc { code: *code },
                        format!(
                            "{operation}: {}",
                            crate::card::describe::pcsc_error_text(*code)
                        ),
                    ));
                }
            }
            _ => {}
        }
        out
    }

    fn card_event(&mut self, at: Timestamp, c: &CardEvent) {
        match c {
            CardEvent::Readers(r) => self.readers = r.clone(),
            CardEvent::Inserted { .. } => {}
            CardEvent::Removed { reader } => {
                if self.reader.as_ref() == Some(reader) {
                    self.connected = false;
                    self.context = CardContext::default();
                }
            }
            CardEvent::Connected {
                reader,
                protocol,
                atr,
                ..
            } => {
                self.reader = Some(reader.clone());
                self.protocol = Some(protocol.clone());
                self.atr = Some(atr.clone());
                self.connected = true;
                self.context = CardContext::default();
            }
            CardEvent::Reconnected {
                disposition,
                protocol,
                ..
            } => {
                self.protocol = Some(protocol.clone());
                self.connected = true;
                if *disposition != CardDisposition::Leave {
                    let lost = std::mem::take(&mut self.context);
                    self.resets += 1;
                    self.last_reset = Some(ResetNote {
                        at,
                        foreign: false,
                        lost,
                    });
                }
            }
            CardEvent::Disconnected { .. } => self.connected = false,
            CardEvent::Transaction { begun } => self.in_transaction = *begun,
        }
    }

    fn exchange(&mut self, at: Timestamp, x: &ApduExchange, out: &mut Vec<(Observation, String)>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let parent = if x.origin.is_follow_up() {
            self.last_command
        } else {
            self.last_command = Some(seq);
            None
        };
        if self.exchanges.len() >= EXCHANGES_CAP {
            self.exchanges.pop_front();
        }
        self.exchanges.push_back(CardExchange {
            seq,
            at,
            exchange: x.clone(),
            parent,
        });
        let Some(sw) = x.sw() else { return };
        // The command this status word answers (a follow-up answers for its parent).
        let command = match parent.and_then(|p| self.get(p)) {
            Some(p) if x.origin.is_follow_up() => p.exchange.command.clone(),
            _ => x.command.clone(),
        };
        let ok = matches!(sw >> 8, 0x90 | 0x61 | 0x62 | 0x63);
        if ok {
            self.learn(&command, x, sw);
        } else if !matches!(sw >> 8, 0x6C) {
            self.errors += 1;
        }
        if sw != 0x9000 {
            let cla = x.command.first().copied();
            let ins = x.command.get(1).copied();
            let info =
                crate::decode::iso7816::sw::lookup(crate::decode::iso7816::sw::StatusWord(sw));
            out.push((
                Observation::StatusWord(StatusWordSeen { sw, cla, ins }),
                format!(
                    "{} → {}",
                    crate::card::describe::command_summary(&x.command),
                    info.summary()
                ),
            ));
        }
    }

    /// Updates what the card is known to hold after a successful command.
    fn learn(&mut self, command: &[u8], x: &ApduExchange, sw: u16) {
        let Ok(c) = parse_command(command) else {
            return;
        };
        let cla = Cla::decode(c.cla);
        match c.ins {
            // SELECT by DF name (AID).
            0xA4 if c.p1 == 0x04 && sw >> 8 != 0x62 && sw >> 8 != 0x63 => {
                self.context.selected = command.get(c.data.clone()).map(|d| d.to_vec());
                self.context.pin_verified = false;
                self.context.secure_messaging = false;
            }
            0x20 if sw == 0x9000 && c.nc() > 0 => self.context.pin_verified = true,
            0x82 if sw == 0x9000 => self.context.secure_messaging = true,
            _ => {}
        }
        if sw == 0x9000
            && cla
                .secure_messaging
                .is_some_and(|m| m != SecureMessaging::None)
        {
            self.context.secure_messaging = true;
        }
        let _ = x;
    }

    pub fn get(&self, seq: u64) -> Option<&CardExchange> {
        let first = self.exchanges.front()?.seq;
        self.exchanges
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    /// The final status word of the command `seq` (after its follow-ups), if it is complete.
    pub fn final_sw(&self, seq: u64) -> Option<u16> {
        let mut last = self.get(seq)?.exchange.sw();
        for e in self.exchanges.iter().filter(|e| e.parent == Some(seq)) {
            last = e.exchange.sw();
        }
        last
    }

    /// Total time the command `seq` and its follow-ups spent in the card.
    pub fn chain_duration(&self, seq: u64) -> Duration {
        self.exchanges
            .iter()
            .filter(|e| e.seq == seq || e.parent == Some(seq))
            .map(|e| e.exchange.duration)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::ApduOrigin;

    fn apdu(command: &[u8], response: &[u8], origin: ApduOrigin) -> Event {
        Event::Apdu(ApduExchange {
            command: command.to_vec(),
            response: response.to_vec(),
            duration: Duration::from_millis(2),
            origin,
        })
    }

    const SELECT: &[u8] = &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x03];

    #[test]
    fn follow_ups_link_to_their_command_and_give_the_final_sw() {
        let mut log = CardLog::new();
        log.ingest(
            Duration::ZERO,
            &apdu(SELECT, &[0x61, 0x02], ApduOrigin::User),
        );
        log.ingest(
            Duration::ZERO,
            &apdu(
                &[0x00, 0xC0, 0x00, 0x00, 0x02],
                &[0x6F, 0x00, 0x90, 0x00],
                ApduOrigin::GetResponse,
            ),
        );
        assert_eq!(log.exchanges()[1].parent, Some(0));
        assert_eq!(log.final_sw(0), Some(0x9000));
        assert_eq!(log.chain_duration(0), Duration::from_millis(4));
        assert_eq!(log.context.selected.as_deref(), Some(&SELECT[5..]));
    }

    #[test]
    fn a_foreign_reset_says_what_was_lost() {
        let mut log = CardLog::new();
        log.ingest(
            Duration::ZERO,
            &apdu(SELECT, &[0x90, 0x00], ApduOrigin::User),
        );
        log.ingest(
            Duration::ZERO,
            &apdu(
                &[0x00, 0x20, 0x00, 0x80, 0x04, 0x31, 0x32, 0x33, 0x34],
                &[0x90, 0x00],
                ApduOrigin::User,
            ),
        );
        let obs = log.ingest(
            Duration::from_secs(1),
            &Event::Pcsc {
                operation: "SCardTransmit".to_string(),
                code: 0x8010_0068,
            },
        );
        assert_eq!(obs[0].0, Observation::Pcsc { code: 0x8010_0068 });
        assert!(
            obs[0]
                .1
                .contains("the selected application A0 00 00 00 03, the verified PIN"),
            "{}",
            obs[0].1
        );
        let r = log.last_reset.as_ref().unwrap();
        assert!(r.foreign && r.lost.pin_verified);
        assert!(log.context.is_empty());
    }

    #[test]
    fn error_status_words_become_observations_with_the_command() {
        let mut log = CardLog::new();
        let obs = log.ingest(
            Duration::ZERO,
            &apdu(
                &[0x0C, 0xA4, 0x04, 0x00, 0x01, 0xA0],
                &[0x68, 0x82],
                ApduOrigin::User,
            ),
        );
        assert_eq!(
            obs[0].0,
            Observation::StatusWord(StatusWordSeen {
                sw: 0x6882,
                cla: Some(0x0C),
                ins: Some(0xA4)
            })
        );
        assert_eq!(log.errors, 1);
        // 9000 raises nothing.
        assert!(
            log.ingest(
                Duration::ZERO,
                &apdu(SELECT, &[0x90, 0x00], ApduOrigin::User)
            )
            .is_empty()
        );
    }
}
