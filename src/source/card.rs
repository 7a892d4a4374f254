//! The PC/SC card source: one thread owns the pcsc context and the card handle, watches the
//! readers (SCardGetStatusChange with the `\\?PnP?\Notification` pseudo reader for hotplug),
//! sends APDUs on command and follows T=0 procedure statuses up (61XX → GET RESPONSE,
//! 6CXX → resend with Le = XX), and recovers by itself: a foreign reset is acknowledged with
//! SCardReconnect(LEAVE_CARD), a restarted pcscd gets a new context.
//!
//! The card is never reset by accident: the `pcsc` crate's `Card` resets the card for every
//! other application when dropped, so every handle is let go with SCARD_LEAVE_CARD
//! ([`release`]); only `Command::Reconnect(Reset)` resets it.
//!
//! The blocking pcsc calls run on their own thread; commands reach it through a channel and
//! wake it with `SCardCancel`, so the UI never waits on a card.

use std::ffi::{CStr, CString};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Disposition, Protocols, ReaderState, Scope, State};

use crate::clock::Clock;
use crate::decode::iso7816::apdu::{ApduCase, parse_command};
use crate::event::{
    ApduExchange, ApduOrigin, CardDisposition, CardEvent, Command, ConnectionState, Event,
    ShareMode,
};
use crate::source::{EventSink, SourceHandle, channels};

/// Which protocols to ask for when connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolChoice {
    T0,
    T1,
    Any,
}

impl std::str::FromStr for ProtocolChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "t0" | "t=0" => Ok(ProtocolChoice::T0),
            "t1" | "t=1" => Ok(ProtocolChoice::T1),
            "any" => Ok(ProtocolChoice::Any),
            _ => Err(format!("invalid protocol '{s}': use t0, t1 or any")),
        }
    }
}

/// How `hsmon card` uses the reader.
#[derive(Debug, Clone)]
pub struct CardOptions {
    /// A reader name (exact, or a unique part of it) or its index in the list; None: the first
    /// reader with a card in it.
    pub reader: Option<String>,
    pub share: ShareMode,
    pub protocol: ProtocolChoice,
    /// Send GET RESPONSE after 61XX and resend with the right Le after 6CXX by itself.
    pub follow_up: bool,
}

impl Default for CardOptions {
    fn default() -> Self {
        CardOptions {
            reader: None,
            share: ShareMode::Shared,
            protocol: ProtocolChoice::Any,
            follow_up: true,
        }
    }
}

/// How long one SCardGetStatusChange waits before the thread looks at its commands again.
/// Commands also call SCardCancel, but on pcsc-lite 1.9.9 with vpcd that wake-up was not
/// prompt (measured: ~130 ms per APDU), so this bounds an idle card's first answer; a busy card
/// is served from the command channel (`BUSY_FOR`).
const STATUS_WAIT: Duration = Duration::from_millis(250);
/// After a command, the thread keeps waiting on the command channel this long...
const BUSY_FOR: Duration = Duration::from_secs(1);
/// ...in slices this long, looking at the readers between them.
const BUSY_WAIT: Duration = Duration::from_millis(100);
/// Between attempts to reach pcscd or connect to a held card.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// GET RESPONSE rounds after one command, at most (a card answering 61XX forever is a bug).
const MAX_GET_RESPONSE: usize = 64;
/// The largest response an extended-length APDU can have, plus SW1 SW2.
const RESPONSE_BUFFER: usize = 65_536 + 2;

/// The command named in the `CommandFailed` event that says a `--reader` matches no reader
/// (or several): "choose reader 'NAME'".
pub const CHOOSE_READER: &str = "choose reader";

/// Starts the card thread.
pub fn spawn(opts: CardOptions, clock: Clock) -> SourceHandle {
    let (etx, erx, ctx, mut crx) = channels();
    let (cmd_tx, cmd_rx) = std_mpsc::channel::<Command>();
    let waker: Arc<Mutex<Option<Context>>> = Arc::new(Mutex::new(None));
    let name = match &opts.reader {
        Some(r) => format!("card: {r}"),
        None => "card: first reader with a card".to_string(),
    };
    // Forwards commands to the blocking thread and wakes it from SCardGetStatusChange.
    let wake = waker.clone();
    std::thread::spawn(move || {
        while let Some(c) = crx.blocking_recv() {
            if cmd_tx.send(c).is_err() {
                return;
            }
            if let Ok(g) = wake.lock() {
                if let Some(ctx) = g.as_ref() {
                    let _ = ctx.cancel();
                }
            }
        }
        let _ = cmd_tx.send(Command::Shutdown);
        if let Ok(g) = wake.lock() {
            if let Some(ctx) = g.as_ref() {
                let _ = ctx.cancel();
            }
        }
    });
    std::thread::spawn(move || {
        let mut w = Worker {
            sink: EventSink::new(etx, clock),
            opts,
            commands: cmd_rx,
            waker,
            ctx: None,
            readers: Vec::new(),
            present: Vec::new(),
            pnp: None,
            held: None,
            context_error: None,
            said_ambiguous: false,
            said_missing: None,
            last_command: None,
        };
        w.run();
        w.drain();
    });
    SourceHandle {
        events: erx,
        commands: ctx,
        name,
        streams: Vec::new(),
    }
}

/// The card hsmon holds.
struct Held {
    card: Card,
    reader: CString,
    protocol: String,
}

struct Worker {
    sink: EventSink,
    opts: CardOptions,
    commands: std_mpsc::Receiver<Command>,
    waker: Arc<Mutex<Option<Context>>>,
    ctx: Option<Context>,
    readers: Vec<CString>,
    /// ATR of the card in each reader (same order as `readers`), None when empty.
    present: Vec<Option<Vec<u8>>>,
    /// The PnP pseudo reader's state, kept between rounds so no hotplug is missed; None where
    /// it does not work (readers are then re-listed each round).
    pnp: Option<ReaderState>,
    held: Option<Held>,
    /// The last context error said, so a pcscd that stays away is said once.
    context_error: Option<u32>,
    /// An ambiguous --reader was said.
    said_ambiguous: bool,
    /// The reader list when a --reader that matches none of it was last said (said again
    /// when the list changes).
    said_missing: Option<Vec<CString>>,
    /// When the last command arrived (a busy card is served from the command channel).
    last_command: Option<Instant>,
}

/// A pcsc error as its SCARD code.
fn code(e: pcsc::Error) -> u32 {
    e as u32
}

fn protocols(p: ProtocolChoice) -> Protocols {
    match p {
        ProtocolChoice::T0 => Protocols::T0,
        ProtocolChoice::T1 => Protocols::T1,
        ProtocolChoice::Any => Protocols::ANY,
    }
}

fn share(s: ShareMode) -> pcsc::ShareMode {
    match s {
        ShareMode::Shared => pcsc::ShareMode::Shared,
        ShareMode::Exclusive => pcsc::ShareMode::Exclusive,
    }
}

fn disposition(d: CardDisposition) -> Disposition {
    match d {
        CardDisposition::Leave => Disposition::LeaveCard,
        CardDisposition::Reset => Disposition::ResetCard,
        CardDisposition::Unpower => Disposition::UnpowerCard,
    }
}

fn protocol_name(p: Option<pcsc::Protocol>) -> String {
    match p {
        Some(pcsc::Protocol::T0) => "T=0",
        Some(pcsc::Protocol::T1) => "T=1",
        Some(pcsc::Protocol::RAW) => "raw",
        None => "none",
    }
    .to_string()
}

fn lossy(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

/// The PnP pseudo reader, synced to the current reader-list count; None where the resource
/// manager does not support it.
fn pnp_state(ctx: &Option<Context>) -> Option<ReaderState> {
    let ctx = ctx.as_ref()?;
    let mut s = [ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)];
    match ctx.get_status_change(Duration::ZERO, &mut s) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(_) => return None,
    }
    if s[0].event_state().contains(State::UNKNOWN) {
        return None;
    }
    let [mut p] = s;
    p.sync_current_state();
    Some(p)
}

/// Lets go of a card without resetting it. If the disconnect itself fails the handle is
/// forgotten rather than dropped: a leaked handle is cleaned up by pcscd when the context
/// goes, a dropped one would reset the card for every other application.
pub fn release(card: Card) {
    if let Err((card, _)) = card.disconnect(Disposition::LeaveCard) {
        std::mem::forget(card);
    }
}

const RESET_CARD: u32 = 0x8010_0068;
const REMOVED_CARD: u32 = 0x8010_0069;
const NO_SMARTCARD: u32 = 0x8010_000C;

/// `context_lost` by SCARD code.
fn context_lost_code(c: u32) -> bool {
    matches!(
        c,
        0x8010_001D | 0x8010_001E | 0x8010_0003 | 0x8010_0013 | 0x8010_0018
    )
}

/// Errors after which the context is useless: pcscd stopped or restarted.
fn context_lost(e: pcsc::Error) -> bool {
    matches!(
        e,
        pcsc::Error::NoService
            | pcsc::Error::ServiceStopped
            | pcsc::Error::InvalidHandle
            | pcsc::Error::CommError
            | pcsc::Error::Shutdown
    )
}

impl Worker {
    fn emit(&mut self, ev: Event) -> bool {
        self.sink.emit(ev).is_ok()
    }

    fn drain(&mut self) {
        for _ in 0..200 {
            if !self.sink.has_pending() || self.sink.flush().is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits up to `d` for a command; handles it. False: shut down.
    fn wait_commands(&mut self, d: Duration) -> bool {
        match self.commands.recv_timeout(d) {
            Ok(c) => {
                self.last_command = Some(Instant::now());
                self.obey(c)
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => true,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => false,
        }
    }

    fn run(&mut self) {
        loop {
            let _ = self.sink.flush();
            if self.ctx.is_none() && !self.establish() {
                if !self.wait_commands(RETRY_EVERY) {
                    break;
                }
                continue;
            }
            // Commands first: they never wait behind a status change.
            loop {
                match self.commands.try_recv() {
                    Ok(c) => {
                        self.last_command = Some(Instant::now());
                        if !self.obey(c) {
                            self.shutdown();
                            return;
                        }
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => {
                        self.shutdown();
                        return;
                    }
                }
            }
            // While commands keep coming (a script run), wait on the command channel rather
            // than in SCardGetStatusChange: the next APDU goes out at once instead of after the
            // wake-up through SCardCancel. Reader changes are still looked at between waits.
            if self.last_command.is_some_and(|t| t.elapsed() < BUSY_FOR) {
                if !self.wait_commands(BUSY_WAIT) {
                    break;
                }
                if self.last_command.is_some_and(|t| t.elapsed() < BUSY_FOR) {
                    continue;
                }
            }
            if !self.watch() {
                // No reader or pcscd trouble: do not spin.
                if !self.wait_commands(RETRY_EVERY) {
                    break;
                }
            }
            self.connect_if_needed();
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(h) = self.held.take() {
            release(h.card);
            let reader = lossy(&h.reader);
            self.emit(Event::Card(CardEvent::Disconnected {
                reader,
                disposition: CardDisposition::Leave,
            }));
        }
        if let Ok(mut g) = self.waker.lock() {
            *g = None;
        }
    }

    /// Connects to pcscd. False when it is not there (said once until it changes).
    fn establish(&mut self) -> bool {
        match Context::establish(Scope::User) {
            Ok(ctx) => {
                if let Ok(mut g) = self.waker.lock() {
                    *g = Some(ctx.clone());
                }
                self.ctx = Some(ctx);
                if self.context_error.take().is_some() {
                    self.emit(Event::Connection(ConnectionState::Retrying {
                        reason: "pcscd is back: reading the readers again".to_string(),
                    }));
                }
                self.readers.clear();
                self.present.clear();
                self.pnp = pnp_state(&self.ctx);
                self.list_readers();
                true
            }
            Err(e) => {
                if self.context_error != Some(code(e)) {
                    self.context_error = Some(code(e));
                    self.emit(Event::Pcsc {
                        operation: "SCardEstablishContext".to_string(),
                        code: code(e),
                    });
                    self.emit(Event::Connection(ConnectionState::Retrying {
                        reason: "the PC/SC service (pcscd) is not running: start it (systemctl start pcscd.socket, or pcscd) — hsmon retries every second".to_string(),
                    }));
                }
                false
            }
        }
    }

    fn lose_context(&mut self, e: pcsc::Error, operation: &str) {
        self.emit(Event::Pcsc {
            operation: operation.to_string(),
            code: code(e),
        });
        self.drop_context(code(e));
    }

    /// Like `lose_context` when the Pcsc event was already emitted (by `exchange`).
    fn lose_context_code(&mut self, c: u32, _operation: &str) {
        self.drop_context(c);
    }

    fn drop_context(&mut self, c: u32) {
        if let Some(h) = self.held.take() {
            // The handle died with pcscd; there is nothing to disconnect.
            std::mem::forget(h.card);
        }
        self.ctx = None;
        if let Ok(mut g) = self.waker.lock() {
            *g = None;
        }
        self.context_error = Some(c);
        self.emit(Event::Connection(ConnectionState::Retrying {
            reason:
                "lost the PC/SC service (pcscd stopped or restarted): re-establishing the context"
                    .to_string(),
        }));
    }

    /// Re-reads the reader list; says it when it changed.
    fn list_readers(&mut self) {
        let Some(ctx) = self.ctx.as_ref() else { return };
        let names = match ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) if context_lost(e) => {
                self.lose_context(e, "SCardListReaders");
                return;
            }
            Err(_) => Vec::new(),
        };
        if names != self.readers || self.present.len() != names.len() {
            let old: Vec<(CString, Option<Vec<u8>>)> =
                self.readers.drain(..).zip(self.present.drain(..)).collect();
            self.present = names
                .iter()
                .map(|n| {
                    old.iter()
                        .find(|(o, _)| o == n)
                        .and_then(|(_, a)| a.clone())
                })
                .collect();
            self.readers = names;
            let list = self.readers.iter().map(|r| lossy(r)).collect();
            self.emit(Event::Card(CardEvent::Readers(list)));
            if let Some(h) = &self.held {
                if !self.readers.contains(&h.reader) {
                    let reader = lossy(&h.reader);
                    if let Some(h) = self.held.take() {
                        release(h.card);
                    }
                    self.emit(Event::Card(CardEvent::Removed { reader }));
                    self.emit(Event::Connection(ConnectionState::Down {
                        reason: "the reader was unplugged".to_string(),
                    }));
                }
            }
        }
    }

    /// One SCardGetStatusChange round over the readers and the PnP pseudo reader. False
    /// when nothing could be watched (the caller waits before trying again).
    fn watch(&mut self) -> bool {
        let Some(ctx) = self.ctx.clone() else {
            return false;
        };
        let mut states: Vec<ReaderState> = Vec::new();
        let has_pnp = self.pnp.is_some();
        if let Some(p) = self.pnp.take() {
            states.push(p);
        }
        for (r, p) in self.readers.iter().zip(&self.present) {
            let known = if p.is_some() {
                State::PRESENT
            } else {
                State::EMPTY
            };
            states.push(ReaderState::new(r.clone(), known));
        }
        if states.is_empty() {
            self.list_readers();
            return false;
        }
        let result = ctx.get_status_change(STATUS_WAIT, &mut states);
        if result.is_err() && has_pnp {
            // Keep the PnP state (its count is unchanged) for the next round.
            self.pnp = Some(states.remove(0));
        }
        match result {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) | Err(pcsc::Error::Cancelled) => return true,
            Err(pcsc::Error::UnknownReader) | Err(pcsc::Error::ReaderUnavailable) => {
                self.list_readers();
                return true;
            }
            Err(e) if context_lost(e) => {
                self.lose_context(e, "SCardGetStatusChange");
                return false;
            }
            Err(e) => {
                self.emit(Event::Pcsc {
                    operation: "SCardGetStatusChange".to_string(),
                    code: code(e),
                });
                return false;
            }
        }
        let mut relist = !has_pnp;
        if has_pnp {
            let mut p = states.remove(0);
            if p.event_state().contains(State::CHANGED) {
                relist = true;
            }
            p.sync_current_state();
            self.pnp = Some(p);
        }
        for s in &states {
            let Some(i) = self.readers.iter().position(|r| r.as_c_str() == s.name()) else {
                continue;
            };
            let ev = s.event_state();
            if ev.contains(State::UNKNOWN) || ev.contains(State::IGNORE) {
                relist = true;
                continue;
            }
            let reader = lossy(s.name());
            if ev.contains(State::PRESENT) && self.present[i].is_none() {
                let atr = s.atr().to_vec();
                self.present[i] = Some(atr.clone());
                self.emit(Event::Card(CardEvent::Inserted { reader, atr }));
            } else if ev.contains(State::EMPTY) && self.present[i].is_some() {
                self.present[i] = None;
                self.emit(Event::Card(CardEvent::Removed {
                    reader: reader.clone(),
                }));
                if self
                    .held
                    .as_ref()
                    .is_some_and(|h| h.reader.as_c_str() == s.name())
                {
                    if let Some(h) = self.held.take() {
                        release(h.card);
                    }
                    self.emit(Event::Connection(ConnectionState::Down {
                        reason: format!("the card was removed from {reader}"),
                    }));
                }
            }
        }
        if relist {
            self.list_readers();
        }
        true
    }

    /// The reader the user chose, if it is there. A name part that matches several readers
    /// takes the one with a card in it; still ambiguous, it is said once and none is taken.
    fn chosen(&mut self) -> Option<usize> {
        let want = match &self.opts.reader {
            None => return self.present.iter().position(|p| p.is_some()),
            Some(w) => w.clone(),
        };
        if let Ok(i) = want.parse::<usize>() {
            if i >= self.readers.len() {
                self.say_missing(&want);
            }
            return (i < self.readers.len()).then_some(i);
        }
        let names: Vec<String> = self.readers.iter().map(|r| lossy(r)).collect();
        if let Some(i) = names.iter().position(|n| *n == want) {
            return Some(i);
        }
        let hits: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.to_lowercase().contains(&want.to_lowercase()))
            .map(|(i, _)| i)
            .collect();
        let with_card: Vec<usize> = hits
            .iter()
            .copied()
            .filter(|&i| self.present.get(i).is_some_and(|p| p.is_some()))
            .collect();
        match (hits.as_slice(), with_card.as_slice()) {
            ([one], _) => Some(*one),
            (_, [one]) => Some(*one),
            ([], _) => {
                self.say_missing(&want);
                None
            }
            _ => {
                if !self.said_ambiguous {
                    self.said_ambiguous = true;
                    let list: Vec<&str> = hits.iter().map(|&i| names[i].as_str()).collect();
                    self.emit(Event::CommandFailed {
                        command: format!("{CHOOSE_READER} '{want}'"),
                        reason: format!(
                            "it matches {}: give the full name or the index (hsmon list)",
                            list.join(", ")
                        ),
                    });
                }
                None
            }
        }
    }

    /// Says once per reader list that `--reader want` names none of the readers, and which
    /// readers there are (a `CommandFailed` for [`CHOOSE_READER`]).
    fn say_missing(&mut self, want: &str) {
        if self.said_missing.as_ref() == Some(&self.readers) {
            return;
        }
        self.said_missing = Some(self.readers.clone());
        let reason = if self.readers.is_empty() {
            "no reader is connected (pcscd lists none): plug the reader in, or check that pcscd \
             runs and has its driver (hsmon list)"
                .to_string()
        } else {
            let list: Vec<String> = self
                .readers
                .iter()
                .enumerate()
                .map(|(i, r)| format!("{i} \"{}\"", lossy(r)))
                .collect();
            format!(
                "no reader has that name or index; the readers are: {} — give one of these names \
                 (or a unique part of it) or its index",
                list.join(", ")
            )
        };
        self.emit(Event::CommandFailed {
            command: format!("{CHOOSE_READER} '{want}'"),
            reason,
        });
    }

    fn connect_if_needed(&mut self) {
        if self.held.is_some() {
            return;
        }
        let Some(i) = self.chosen() else { return };
        if self.present.get(i).is_none_or(|p| p.is_none()) {
            return;
        }
        let Some(ctx) = self.ctx.clone() else { return };
        let reader = self.readers[i].clone();
        match ctx.connect(
            &reader,
            share(self.opts.share),
            protocols(self.opts.protocol),
        ) {
            Ok(card) => {
                let (protocol, atr) = match card.status2_owned() {
                    Ok(s) => (protocol_name(s.protocol2()), s.atr().to_vec()),
                    Err(_) => ("unknown".to_string(), Vec::new()),
                };
                self.held = Some(Held {
                    card,
                    reader: reader.clone(),
                    protocol: protocol.clone(),
                });
                self.emit(Event::Card(CardEvent::Connected {
                    reader: lossy(&reader),
                    protocol,
                    share: self.opts.share,
                    atr,
                }));
                self.emit(Event::Connection(ConnectionState::Up));
            }
            Err(e) if context_lost(e) => self.lose_context(e, "SCardConnect"),
            Err(e) => {
                self.emit(Event::Pcsc {
                    operation: format!("SCardConnect({})", lossy(&reader)),
                    code: code(e),
                });
                if e == pcsc::Error::SharingViolation {
                    let holders = pcsc_clients();
                    self.emit(Event::CommandFailed {
                        command: format!("connect to {}", lossy(&reader)),
                        reason: format!(
                            "another application holds the card exclusively{}: close it (or stop scdaemon: gpgconf --kill scdaemon); hsmon retries every second{}",
                            if holders.is_empty() {
                                String::new()
                            } else {
                                format!(" (processes using PC/SC: {})", holders.join(", "))
                            },
                            if self.opts.share == ShareMode::Exclusive {
                                "; or connect shared (without --exclusive)"
                            } else {
                                ""
                            }
                        ),
                    });
                }
                // Do not hammer the reader: wait before the next attempt.
                self.wait_commands(RETRY_EVERY);
            }
        }
    }

    /// Carries out one command. False: shut down.
    fn obey(&mut self, c: Command) -> bool {
        match c {
            Command::Shutdown => false,
            Command::SendApdu { apdu, origin } => {
                self.send_apdu(&apdu, origin);
                true
            }
            // The send line sends bytes; on a card they are an APDU.
            Command::Transmit(apdu) => {
                self.send_apdu(&apdu, ApduOrigin::User);
                true
            }
            Command::Reconnect(d) => {
                self.reconnect(d);
                true
            }
            Command::Transaction(true) => self.transaction(),
            Command::Transaction(false) => {
                self.emit(Event::CommandFailed {
                    command: "end transaction".to_string(),
                    reason: "no transaction is open".to_string(),
                });
                true
            }
            other => {
                self.emit(Event::CommandFailed {
                    command: other.describe(),
                    reason: "a card reader has no serial line settings".to_string(),
                });
                true
            }
        }
    }

    fn send_apdu(&mut self, apdu: &[u8], origin: ApduOrigin) {
        let Some(h) = self.held.take() else {
            self.emit(Event::Apdu(ApduExchange {
                command: apdu.to_vec(),
                response: Vec::new(),
                duration: Duration::ZERO,
                origin,
            }));
            self.emit(Event::Pcsc {
                operation: "SCardTransmit".to_string(),
                code: pcsc::Error::NoSmartcard as u32,
            });
            return;
        };
        let result = exchange(
            &mut pcsc_transmit(&h.card),
            &mut self.sink,
            apdu,
            origin,
            self.opts.follow_up,
        );
        self.held = Some(h);
        if let Err(e) = result {
            self.after_error(e);
        }
    }

    /// Recovers from a failed card call (by its SCARD code).
    fn after_error(&mut self, e: u32) {
        match e {
            // Another application (or a transaction end) reset the card. The APDU was not
            // sent; acknowledge with SCardReconnect(LEAVE_CARD), which resets nothing.
            RESET_CARD => self.reconnect(CardDisposition::Leave),
            REMOVED_CARD | NO_SMARTCARD => {
                if let Some(h) = self.held.take() {
                    let reader = lossy(&h.reader);
                    release(h.card);
                    self.emit(Event::Connection(ConnectionState::Down {
                        reason: format!("the card was removed from {reader}"),
                    }));
                }
            }
            e if context_lost_code(e) => self.lose_context_code(e, "SCardTransmit"),
            _ => {}
        }
    }

    fn reconnect(&mut self, d: CardDisposition) {
        let Some(mut h) = self.held.take() else {
            self.emit(Event::CommandFailed {
                command: format!("reconnect ({})", d.label()),
                reason: "no card is connected".to_string(),
            });
            return;
        };
        match h.card.reconnect(
            share(self.opts.share),
            protocols(self.opts.protocol),
            disposition(d),
        ) {
            Ok(()) => {
                if let Ok(s) = h.card.status2_owned() {
                    h.protocol = protocol_name(s.protocol2());
                }
                let ev = CardEvent::Reconnected {
                    reader: lossy(&h.reader),
                    disposition: d,
                    protocol: h.protocol.clone(),
                };
                self.held = Some(h);
                self.emit(Event::Card(ev));
            }
            Err(e) => {
                self.emit(Event::Pcsc {
                    operation: format!("SCardReconnect({})", d.label()),
                    code: code(e),
                });
                self.held = Some(h);
                if e != pcsc::Error::ResetCard {
                    self.after_error(code(e));
                }
            }
        }
    }

    /// Runs commands inside SCardBeginTransaction … SCardEndTransaction(LEAVE_CARD) until
    /// `Transaction(false)`. False: shut down.
    fn transaction(&mut self) -> bool {
        let Some(mut h) = self.held.take() else {
            self.emit(Event::CommandFailed {
                command: "begin transaction".to_string(),
                reason: "no card is connected".to_string(),
            });
            return true;
        };
        let follow_up = self.opts.follow_up;
        let mut keep_running = true;
        let mut failure = None;
        match h.card.transaction() {
            Err(e) => failure = Some((code(e), "SCardBeginTransaction")),
            Ok(tx) => {
                let _ = self
                    .sink
                    .emit(Event::Card(CardEvent::Transaction { begun: true }));
                loop {
                    let _ = self.sink.flush();
                    let c = match self.commands.recv_timeout(STATUS_WAIT) {
                        Ok(c) => c,
                        Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                            keep_running = false;
                            break;
                        }
                    };
                    match c {
                        Command::Transaction(false) => break,
                        Command::Shutdown => {
                            keep_running = false;
                            break;
                        }
                        Command::SendApdu { apdu, origin } => {
                            if let Err(e) = exchange(
                                &mut pcsc_transmit(&tx),
                                &mut self.sink,
                                &apdu,
                                origin,
                                follow_up,
                            ) {
                                failure = Some((e, "SCardTransmit"));
                                break;
                            }
                        }
                        Command::Transmit(apdu) => {
                            if let Err(e) = exchange(
                                &mut pcsc_transmit(&tx),
                                &mut self.sink,
                                &apdu,
                                ApduOrigin::User,
                                follow_up,
                            ) {
                                failure = Some((e, "SCardTransmit"));
                                break;
                            }
                        }
                        other => {
                            let _ = self.sink.emit(Event::CommandFailed {
                                command: other.describe(),
                                reason: "not inside a transaction: end it first".to_string(),
                            });
                        }
                    }
                }
                match tx.end(Disposition::LeaveCard) {
                    Ok(()) => {}
                    Err((tx, e)) => {
                        // Dropping ends it with LEAVE_CARD too; say that ending failed.
                        drop(tx);
                        let _ = self.sink.emit(Event::Pcsc {
                            operation: "SCardEndTransaction".to_string(),
                            code: code(e),
                        });
                    }
                }
                let _ = self
                    .sink
                    .emit(Event::Card(CardEvent::Transaction { begun: false }));
            }
        }
        self.held = Some(h);
        if let Some((e, op)) = failure {
            if op == "SCardBeginTransaction" {
                self.emit(Event::Pcsc {
                    operation: op.to_string(),
                    code: e,
                });
            }
            self.after_error(e);
        }
        keep_running
    }
}

/// One transmit: the card's response (data + SW1 SW2) or the SCARD error code.
pub type Transmit<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, u32> + 'a;

/// Sends `apdu` through `transmit` (the card's response, or its SCARD error code) and, with
/// `follow_up`, the T=0 follow-ups: GET RESPONSE while the card says 61XX, and one resend with
/// Le = XX after 6CXX. Each transmit is its own `Apdu` event. A failed transmit is an `Apdu`
/// with no response plus a `Pcsc` event, and its code returns. Shared by the PC/SC source and
/// the simulated reader.
pub fn exchange(
    transmit: &mut Transmit<'_>,
    sink: &mut EventSink,
    apdu: &[u8],
    origin: ApduOrigin,
    follow_up: bool,
) -> Result<(), u32> {
    let mut send = |cmd: &[u8], origin: ApduOrigin| -> Result<Vec<u8>, u32> {
        let t0 = Instant::now();
        let r = transmit(cmd);
        let duration = t0.elapsed();
        let response = r.clone().unwrap_or_default();
        let _ = sink.emit(Event::Apdu(ApduExchange {
            command: cmd.to_vec(),
            response: response.clone(),
            duration,
            origin,
        }));
        if let Err(code) = r {
            let _ = sink.emit(Event::Pcsc {
                operation: "SCardTransmit".to_string(),
                code,
            });
            return Err(code);
        }
        Ok(response)
    };
    let mut response = send(apdu, origin)?;
    if !follow_up {
        return Ok(());
    }
    if let Some(sw2) = sw_with(&response, 0x6C) {
        if let Some(again) = with_le(apdu, sw2) {
            response = send(&again, ApduOrigin::LeRetry)?;
        }
    }
    let cla = apdu.first().copied().unwrap_or(0);
    for _ in 0..MAX_GET_RESPONSE {
        let Some(sw2) = sw_with(&response, 0x61) else {
            break;
        };
        response = send(&get_response(cla, sw2), ApduOrigin::GetResponse)?;
    }
    Ok(())
}

/// A transmit function over a pcsc card handle.
fn pcsc_transmit(card: &Card) -> impl FnMut(&[u8]) -> Result<Vec<u8>, u32> + '_ {
    let mut buf = vec![0u8; RESPONSE_BUFFER];
    move |cmd| {
        card.transmit(cmd, &mut buf)
            .map(|b| b.to_vec())
            .map_err(code)
    }
}

/// SW2 when the response's SW1 is `sw1`.
fn sw_with(response: &[u8], sw1: u8) -> Option<u8> {
    match response {
        [.., a, b] if *a == sw1 => Some(*b),
        _ => None,
    }
}

/// GET RESPONSE on the command's logical channel (first interindustry CLA keeps bits 1-2,
/// further interindustry bits 1-4; a proprietary class asks on channel 0).
pub fn get_response(cla: u8, le: u8) -> [u8; 5] {
    let c = match cla {
        0x00..=0x3F => cla & 0x03,
        0x40..=0x7F => 0x40 | (cla & 0x0F),
        _ => 0x00,
    };
    [c, 0xC0, 0x00, 0x00, le]
}

/// The same short command with Le = `le` (6CXX). None for extended or unparsable commands.
pub fn with_le(apdu: &[u8], le: u8) -> Option<Vec<u8>> {
    let c = parse_command(apdu).ok()?;
    let mut v = apdu.to_vec();
    match c.case {
        ApduCase::Case1 | ApduCase::Case3Short => v.push(le),
        ApduCase::Case2Short | ApduCase::Case4Short => {
            if let Some(last) = v.last_mut() {
                *last = le;
            }
        }
        _ => return None,
    }
    Some(v)
}

/// Processes that have the PC/SC client library mapped (who may hold a reader), as
/// "4242 scdaemon". The approach of pcsc-contrib's list_pcsc_applications.sh.
pub fn pcsc_clients() -> Vec<String> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        if maps.contains("libpcsclite") {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            out.push(format!("{pid} {}", crate::sanitize::printable(comm.trim())));
        }
    }
    out
}

/// A reader and the ATR of the card in it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    pub name: String,
    pub atr: Option<Vec<u8>>,
}

/// The readers PC/SC knows, for `hsmon list`. Err says why there are none to list.
pub fn list_readers() -> Result<Vec<ReaderInfo>, String> {
    let ctx = Context::establish(Scope::User).map_err(|e| {
        format!(
            "cannot reach the PC/SC service: {} — start pcscd (systemctl start pcscd.socket)",
            crate::card::describe::pcsc_error_text(code(e))
        )
    })?;
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(crate::card::describe::pcsc_error_text(code(e))),
    };
    let mut states: Vec<ReaderState> = names
        .iter()
        .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
        .collect();
    let _ = ctx.get_status_change(Duration::ZERO, &mut states);
    Ok(states
        .iter()
        .map(|s| {
            let atr = s
                .event_state()
                .contains(State::PRESENT)
                .then(|| s.atr().to_vec());
            ReaderInfo {
                name: lossy(s.name()),
                atr,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_response_keeps_the_logical_channel() {
        assert_eq!(get_response(0x00, 0x10), [0x00, 0xC0, 0x00, 0x00, 0x10]);
        assert_eq!(get_response(0x0D, 0x10), [0x01, 0xC0, 0x00, 0x00, 0x10]);
        assert_eq!(get_response(0x43, 0x08), [0x43, 0xC0, 0x00, 0x00, 0x08]);
        assert_eq!(get_response(0x80, 0x08), [0x00, 0xC0, 0x00, 0x00, 0x08]);
    }

    #[test]
    fn le_retry_sets_or_adds_le() {
        // GET CHALLENGE with Le 00 → 6C08 → Le 08.
        assert_eq!(
            with_le(&[0x00, 0x84, 0x00, 0x00, 0x00], 0x08),
            Some(vec![0x00, 0x84, 0x00, 0x00, 0x08])
        );
        // Case 1 gains an Le.
        assert_eq!(
            with_le(&[0x00, 0xB0, 0x00, 0x00], 0x10),
            Some(vec![0x00, 0xB0, 0x00, 0x00, 0x10])
        );
        // Case 3 becomes case 4.
        assert_eq!(
            with_le(&[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0], 0x20),
            Some(vec![0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0, 0x20])
        );
        assert_eq!(with_le(&[0x00], 0x10), None);
    }

    #[test]
    fn sw_with_reads_the_last_two_bytes() {
        assert_eq!(sw_with(&[0x61, 0x10], 0x61), Some(0x10));
        assert_eq!(sw_with(&[0x01, 0x02, 0x6C, 0x08], 0x6C), Some(0x08));
        assert_eq!(sw_with(&[0x90, 0x00], 0x61), None);
        assert_eq!(sw_with(&[0x61], 0x61), None);
    }
}
