//! `hsmon demo card`: a simulated PC/SC reader with the simulated card in it, behind the same
//! source interface as the real PC/SC thread — it emits the same Card, Apdu and Pcsc events
//! and follows 61XX / 6CXX up with the same code (`source::card::exchange`).
//!
//! The story it tells: the demo script meets 6882 on a CLA with secure-messaging bits, a
//! 61XX answered with GET RESPONSE, a 6CXX answered with the right Le — and, once, a reset by
//! "another application" in the middle of the script: the next transmit fails with
//! SCARD_W_RESET_CARD (the APDU is not sent), the card has lost its selected application and
//! verified PIN, and hsmon reconnects with SCARD_LEAVE_CARD.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::event::{
    ApduOrigin, CardDisposition, CardEvent, Command, ConnectionState, Event, ShareMode,
};
use crate::sim::card::{CardProfile, SimCard};
use crate::source::card::exchange;
use crate::source::{EventSink, SourceHandle, channels};

/// The demo reader's name (as pcsc-lite would list it).
pub const READER: &str = "hsmon simulated reader 00 00";

/// The demo script, embedded.
pub const DEMO_SCRIPT: &str = include_str!("../../assets/demo/card.apdu");

/// The foreign reset hits the command with this prefix (SELECT EF 0102), once.
const RESET_BEFORE: &[u8] = &[0x00, 0xA4, 0x02, 0x0C];

/// How long the simulated card takes per APDU (a real contact card: a few ms).
const CARD_TIME: Duration = Duration::from_millis(3);

/// Starts the simulated reader.
pub fn spawn(clock: Clock) -> SourceHandle {
    let (etx, erx, ctx, crx) = channels();
    tokio::spawn(async move {
        let mut r = Reader {
            sink: EventSink::new(etx, clock),
            commands: crx,
            card: SimCard::new(CardProfile::t0()),
            reset_pending: true,
            needs_reconnect: false,
        };
        r.run().await;
    });
    SourceHandle {
        events: erx,
        commands: ctx,
        name: format!("demo: card ({READER})"),
        streams: Vec::new(),
    }
}

struct Reader {
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
    card: SimCard,
    /// The foreign reset has not happened yet.
    reset_pending: bool,
    /// A reset happened and was not acknowledged with SCardReconnect.
    needs_reconnect: bool,
}

impl Reader {
    async fn run(&mut self) {
        let atr = self.card.atr().to_vec();
        let _ = self
            .sink
            .emit(Event::Card(CardEvent::Readers(vec![READER.to_string()])));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = self.sink.emit(Event::Card(CardEvent::Inserted {
            reader: READER.to_string(),
            atr: atr.clone(),
        }));
        let _ = self.sink.emit(Event::Card(CardEvent::Connected {
            reader: READER.to_string(),
            protocol: "T=0".to_string(),
            share: ShareMode::Shared,
            atr,
        }));
        let _ = self.sink.emit(Event::Connection(ConnectionState::Up));
        while let Some(c) = self.commands.recv().await {
            match c {
                Command::Shutdown => break,
                Command::SendApdu { apdu, origin } => self.apdu(&apdu, origin).await,
                Command::Transmit(apdu) => self.apdu(&apdu, ApduOrigin::User).await,
                Command::Reconnect(d) => {
                    if d != CardDisposition::Leave {
                        self.card.reset();
                    }
                    self.needs_reconnect = false;
                    let _ = self.sink.emit(Event::Card(CardEvent::Reconnected {
                        reader: READER.to_string(),
                        disposition: d,
                        protocol: "T=0".to_string(),
                    }));
                }
                Command::Transaction(begun) => {
                    let _ = self
                        .sink
                        .emit(Event::Card(CardEvent::Transaction { begun }));
                }
                other => {
                    let _ = self.sink.emit(Event::CommandFailed {
                        command: other.describe(),
                        reason: "a card reader has no serial line settings".to_string(),
                    });
                }
            }
            let _ = self.sink.flush();
        }
    }

    async fn apdu(&mut self, apdu: &[u8], origin: ApduOrigin) {
        if self.reset_pending && apdu.starts_with(RESET_BEFORE) {
            // Another application resets the card (SCardDisconnect with RESET_CARD, say):
            // the card loses its state, and this handle must acknowledge before it may send.
            self.reset_pending = false;
            self.card.reset();
            self.needs_reconnect = true;
        }
        tokio::time::sleep(CARD_TIME).await;
        let card = &mut self.card;
        let needs_reconnect = &mut self.needs_reconnect;
        let mut transmit = |cmd: &[u8]| -> Result<Vec<u8>, u32> {
            if *needs_reconnect {
                return Err(0x8010_0068);
            }
            Ok(card.transmit(cmd))
        };
        let failed = exchange(&mut transmit, &mut self.sink, apdu, origin, true).err();
        if failed == Some(0x8010_0068) {
            // What the real source does: acknowledge with SCardReconnect(LEAVE_CARD).
            self.needs_reconnect = false;
            let _ = self.sink.emit(Event::Card(CardEvent::Reconnected {
                reader: READER.to_string(),
                disposition: CardDisposition::Leave,
                protocol: "T=0".to_string(),
            }));
        }
    }
}
