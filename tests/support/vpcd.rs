//! The card side of vsmartcard's vpcd protocol: a [`SimCard`] served over TCP to the "Virtual
//! PCD" reader of the real pcscd, so tests drive hsmon (or the bare `pcsc` crate) against a
//! card whose behaviour they script — and whose received APDUs they can read back.
//!
//! Protocol (vsmartcard `virtualsmartcard/doc/api.rst`, and the issue): every message is a
//! 2-byte big-endian length then the payload. A 1-byte payload from vpcd is a control — 0x00
//! power off, 0x01 power on, 0x02 reset (no answer), 0x04 get ATR (answer: the ATR); any
//! other payload is a command APDU, answered with the response APDU. The card is the TCP
//! client: connecting is inserting it, closing the connection is removing it. vpcd polls the
//! card's presence with "get ATR" about every 400 ms.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hsmon::sim::card::SimCard;

use super::pcscd::{self, VPCD_ADDR};

/// What the virtual card saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VpcdEvent {
    /// The TCP connection to vpcd is up (the card is in the reader).
    Connected,
    /// vpcd closed the connection (pcscd stopped) or the test removed the card.
    Disconnected,
    PowerOff,
    PowerOn,
    Reset,
    GetAtr,
    /// A 1-byte payload that is not a known control.
    UnknownControl(u8),
    /// A command APDU and the answer sent back.
    Apdu {
        command: Vec<u8>,
        response: Vec<u8>,
    },
}

/// The serving thread of one insertion.
struct Insertion {
    stop: Arc<AtomicBool>,
    stream: Arc<Mutex<Option<TcpStream>>>,
    thread: JoinHandle<()>,
}

/// A simulated card in the vpcd reader. The [`SimCard`] is shared, so a test can change its
/// behaviour while pcscd talks to it (`vcard.card().respond_once(..)`). The reader has one
/// slot: one `VirtualCard` at a time, under `pcscd::pcsc_lock()`.
pub struct VirtualCard {
    card: Arc<Mutex<SimCard>>,
    log: Arc<Mutex<Vec<VpcdEvent>>>,
    reader: Option<CString>,
    insertion: Option<Insertion>,
}

impl VirtualCard {
    /// Inserts `card` and waits until pcscd shows it in the reader with its ATR. Call
    /// `pcscd::pcsc_test()` (lock + pcscd) first.
    pub fn insert(card: SimCard) -> VirtualCard {
        let mut vcard = VirtualCard::insert_nowait(card);
        vcard.wait_present();
        vcard
    }

    /// Inserts without waiting for pcscd (for tests where pcscd is not running yet: the card
    /// keeps trying to connect and goes in when vpcd listens).
    pub fn insert_nowait(card: SimCard) -> VirtualCard {
        let mut vcard = VirtualCard {
            card: Arc::new(Mutex::new(card)),
            log: Arc::new(Mutex::new(Vec::new())),
            reader: None,
            insertion: None,
        };
        vcard.start();
        vcard
    }

    /// Puts the same card (same state, same log) back in after [`VirtualCard::remove`]. The
    /// reader powers it on again, which resets its volatile state.
    pub fn reinsert(&mut self) {
        assert!(self.insertion.is_none(), "the card is already inserted");
        self.start();
        self.wait_present();
    }

    /// Takes the card out (closes the connection) and waits until pcscd shows an empty slot.
    pub fn remove(&mut self) {
        self.stop_serving();
        let reader = self.reader();
        pcscd::wait_card(&reader, None);
    }

    /// The shared simulated card, locked.
    pub fn card(&self) -> MutexGuard<'_, SimCard> {
        self.card
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shared simulated card itself, e.g. to hand to another thread.
    pub fn shared(&self) -> Arc<Mutex<SimCard>> {
        Arc::clone(&self.card)
    }

    pub fn is_inserted(&self) -> bool {
        self.insertion.is_some()
    }

    /// Everything seen so far.
    pub fn log(&self) -> Vec<VpcdEvent> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The command APDUs received, in order.
    pub fn apdus(&self) -> Vec<Vec<u8>> {
        self.exchanges().into_iter().map(|(c, _)| c).collect()
    }

    /// (command, response) pairs, in order.
    pub fn exchanges(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.log()
            .into_iter()
            .filter_map(|e| match e {
                VpcdEvent::Apdu { command, response } => Some((command, response)),
                _ => None,
            })
            .collect()
    }

    /// The log without the presence polls (GetAtr), which arrive every ~400 ms.
    pub fn log_without_polls(&self) -> Vec<VpcdEvent> {
        self.log()
            .into_iter()
            .filter(|e| *e != VpcdEvent::GetAtr)
            .collect()
    }

    /// Waits until `f(log)` holds; panics after `timeout` with the log.
    pub fn wait_log(&self, timeout: Duration, what: &str, f: impl Fn(&[VpcdEvent]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if f(&log) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "virtual card: {what} not seen within {timeout:?}; log: {log:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn reader(&mut self) -> CString {
        if let Some(reader) = &self.reader {
            return reader.clone();
        }
        let reader = pcscd::wait_for_reader();
        self.reader = Some(reader.clone());
        reader
    }

    /// Waits until vpcd has accepted this connection and polled it (so a card that was in
    /// the reader just before cannot be mistaken for this one), then until pcscd shows it.
    fn wait_present(&mut self) {
        self.wait_log(pcscd::STACK_TIMEOUT, "vpcd accepting the card", |log| {
            let last_connect = log.iter().rposition(|e| *e == VpcdEvent::Connected);
            last_connect.is_some_and(|i| log[i..].contains(&VpcdEvent::GetAtr))
        });
        let reader = self.reader();
        let atr = self.card().atr().to_vec();
        pcscd::wait_card(&reader, Some(&atr));
    }

    fn start(&mut self) {
        let stop = Arc::new(AtomicBool::new(false));
        let stream = Arc::new(Mutex::new(None));
        let thread = {
            let (card, log, stop, stream) = (
                Arc::clone(&self.card),
                Arc::clone(&self.log),
                Arc::clone(&stop),
                Arc::clone(&stream),
            );
            std::thread::Builder::new()
                .name("vpcd-card".into())
                .spawn(move || serve(&card, &log, &stop, &stream))
                .expect("spawn the virtual card thread")
        };
        self.insertion = Some(Insertion {
            stop,
            stream,
            thread,
        });
    }

    fn stop_serving(&mut self) {
        let Some(insertion) = self.insertion.take() else {
            return;
        };
        insertion.stop.store(true, Ordering::SeqCst);
        if let Some(stream) = insertion
            .stream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = insertion.thread.join();
    }
}

impl Drop for VirtualCard {
    /// Removes the card and, when pcscd can tell, waits for the empty slot so the next test
    /// does not meet this card's ghost. Never panics (it may run during a failing test).
    fn drop(&mut self) {
        let was_inserted = self.insertion.is_some();
        self.stop_serving();
        if !was_inserted {
            return;
        }
        let Some(reader) = self.reader.clone() else {
            return;
        };
        if let Err(e) = pcscd::try_wait_card(&reader, None) {
            eprintln!("virtual card removed, but {e}");
        }
    }
}

/// Connects (again and again while pcscd is away) and answers vpcd until told to stop.
fn serve(
    card: &Mutex<SimCard>,
    log: &Mutex<Vec<VpcdEvent>>,
    stop: &AtomicBool,
    slot: &Mutex<Option<TcpStream>>,
) {
    let addr: SocketAddr = VPCD_ADDR.parse().expect("vpcd address");
    let record = |event: VpcdEvent| log.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Short read timeouts so a removal is noticed promptly.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
        match stream.try_clone() {
            Ok(clone) => *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(clone),
            Err(_) => continue,
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        record(VpcdEvent::Connected);
        let mut buffer = Vec::new();
        while let Some(payload) = read_message(&mut stream, &mut buffer, stop) {
            if !answer(&mut stream, &payload, card, &record) {
                break;
            }
        }
        record(VpcdEvent::Disconnected);
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// The next length-prefixed payload; `None` at end of stream, on an error, or when stopped.
fn read_message(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    stop: &AtomicBool,
) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let [hi, lo, ..] = buffer[..] {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if buffer.len() >= 2 + len {
                let payload = buffer[2..2 + len].to_vec();
                buffer.drain(..2 + len);
                return Some(payload);
            }
        }
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return None,
        }
    }
}

/// Acts on one message; false when the answer could not be written.
fn answer(
    stream: &mut TcpStream,
    payload: &[u8],
    card: &Mutex<SimCard>,
    record: &impl Fn(VpcdEvent),
) -> bool {
    let lock = || card.lock().unwrap_or_else(|p| p.into_inner());
    match payload {
        [0x00] => {
            lock().power_off();
            record(VpcdEvent::PowerOff);
            true
        }
        [0x01] => {
            lock().power_on();
            record(VpcdEvent::PowerOn);
            true
        }
        [0x02] => {
            lock().reset();
            record(VpcdEvent::Reset);
            true
        }
        [0x04] => {
            let atr = lock().atr().to_vec();
            record(VpcdEvent::GetAtr);
            send(stream, &atr)
        }
        [other] => {
            record(VpcdEvent::UnknownControl(*other));
            true
        }
        command => {
            let (response, delay) = {
                let mut card = lock();
                (card.transmit(command), card.delay())
            };
            // Outside the lock: a slow card must not block the test reading its state.
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            record(VpcdEvent::Apdu {
                command: command.to_vec(),
                response: response.clone(),
            });
            send(stream, &response)
        }
    }
}

fn send(stream: &mut TcpStream, payload: &[u8]) -> bool {
    let payload = payload.get(..usize::from(u16::MAX)).unwrap_or(payload);
    let mut message = Vec::with_capacity(payload.len() + 2);
    message.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    message.extend_from_slice(payload);
    stream
        .write_all(&message)
        .and_then(|()| stream.flush())
        .is_ok()
}
