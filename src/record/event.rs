//! The records of source events: `rx`/`tx` (reads and writes, split at [`RECORD_BYTES`]),
//! `settings`, `connection`, `event` (the `hsmon.*` events), `apdu` and `card`.
//! [`from_event`] builds the one record of an event, [`write_event`] writes it.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use super::{Hex, Record, Time};
use crate::event::{CardEvent, ConnectionState, Event, ShareMode, TimedEvent};
use crate::stamp::Stamp;

/// The most data bytes one `rx`/`tx` record carries: a longer read is split into records of
/// this many bytes, all with the read's time.
pub const RECORD_BYTES: usize = 4096;

/// `rx` or `tx`: bytes read from or written to the device.
#[derive(Debug, Serialize)]
pub struct Bytes<'a> {
    #[serde(skip)]
    pub kind: &'static str,
    pub hex: Hex<'a>,
}

/// `settings`: the line settings the device confirmed.
#[derive(Debug, Serialize)]
pub struct Settings {
    pub baud: u32,
    pub format: String,
    pub flow: &'static str,
    pub dtr: Option<bool>,
    pub rts: Option<bool>,
}

/// `connection`: the link came up, went down or is being retried (with the reason given).
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Connection<'a> {
    Up,
    Down { reason: &'a str },
    Retrying { reason: &'a str },
}

/// `event`: something hsmon noticed, a diagnosis from the knowledge base, a script or
/// handshake step. `M` holds the members of its id, after `text`.
#[derive(Debug, Serialize)]
pub struct EventRecord<'a, M: Serialize> {
    pub id: &'a str,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
    pub text: Cow<'a, str>,
    #[serde(flatten)]
    pub more: M,
}

/// The members of hsmon's own events (`hsmon.*`), by id.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum HsmonMembers {
    /// `hsmon.overrun`.
    Overrun { dropped_bytes: u64 },
    /// `hsmon.break_sent`.
    NoMembers,
    /// `hsmon.line_errors` without counters.
    LineErrorsUnavailable { available: bool },
    /// `hsmon.line_errors`.
    LineErrors {
        available: bool,
        frame: u64,
        overrun: u64,
        parity: u64,
        brk: u64,
        buf_overrun: u64,
    },
    /// `hsmon.command_failed`.
    CommandFailed { command: String },
    /// `hsmon.replay`.
    Replay { paused: bool, speed: f64 },
    /// `hsmon.recording_stopped`: the capture file and the short reason ("disk full").
    RecordingStopped { capture: String, reason: String },
}

/// The `event` record `hsmon.recording_stopped`: the capture could not be started or stopped
/// during the session (a full disk, an unwritable path); `detail` says what and the fix.
pub fn recording_stopped(capture: &str, reason: &str, detail: &str) -> FromEvent<'static> {
    hsmon_event(
        "hsmon.recording_stopped",
        "error",
        detail.to_string(),
        HsmonMembers::RecordingStopped {
            capture: capture.to_string(),
            reason: reason.to_string(),
        },
    )
}

/// `apdu`: one command/response exchange with a card.
#[derive(Debug, Serialize)]
pub struct Apdu<'a> {
    pub origin: String,
    pub command: Hex<'a>,
    pub response: Hex<'a>,
    pub sw: Option<String>,
    pub sw_text: Option<String>,
    pub summary: String,
    pub duration_ms: f64,
}

/// `card`: readers, card presence and connection, and raw PC/SC failures.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Card<'a> {
    Readers {
        readers: &'a [String],
    },
    Inserted {
        reader: &'a str,
        atr: Hex<'a>,
    },
    Removed {
        reader: &'a str,
    },
    Connected {
        reader: &'a str,
        protocol: &'a str,
        share: &'static str,
        atr: Hex<'a>,
    },
    Reconnected {
        reader: &'a str,
        disposition: &'static str,
        protocol: &'a str,
    },
    Disconnected {
        reader: &'a str,
        disposition: &'static str,
    },
    TransactionBegun,
    TransactionEnded,
    /// The raw PC/SC failure; the explanation comes as an `event` from the knowledge base.
    PcscError {
        operation: &'a str,
        code: String,
        name: Option<&'static str>,
    },
}

/// `stream`, `process`, `exit`, `detached`, `flush`: a traced program's news (`hsmon trace`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Trace<'a> {
    /// A descriptor the program uses, seen for the first time: its `fd` (the writer adds the
    /// stream's name and process, as on every record of the stream).
    Stream {
        fd: i32,
    },
    Process {
        pid: u32,
        parent: Option<u32>,
        exec: Option<&'a str>,
    },
    ExitCode {
        code: i32,
    },
    ExitSignal {
        signal: i32,
    },
    Detached {
        pid: u32,
    },
    Flush {
        queue: &'a str,
    },
}

/// The record of one source event.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FromEvent<'a> {
    Trace(Trace<'a>),
    Bytes(Bytes<'a>),
    Settings(Settings),
    Connection(Connection<'a>),
    Event(EventRecord<'a, HsmonMembers>),
    Apdu(Apdu<'a>),
    Card(Card<'a>),
}

impl Record for FromEvent<'_> {
    fn kind(&self) -> &'static str {
        match self {
            FromEvent::Bytes(b) => b.kind,
            FromEvent::Settings(_) => "settings",
            FromEvent::Connection(_) => "connection",
            FromEvent::Event(_) => "event",
            FromEvent::Apdu(_) => "apdu",
            FromEvent::Card(_) => "card",
            FromEvent::Trace(t) => match t {
                Trace::Stream { .. } => "stream",
                Trace::Process { .. } => "process",
                Trace::ExitCode { .. } | Trace::ExitSignal { .. } => "exit",
                Trace::Detached { .. } => "detached",
                Trace::Flush { .. } => "flush",
            },
        }
    }
}

fn hsmon_event(
    id: &'static str,
    severity: &'static str,
    text: impl Into<Cow<'static, str>>,
    more: HsmonMembers,
) -> FromEvent<'static> {
    FromEvent::Event(EventRecord {
        id,
        severity,
        title: None,
        text: text.into(),
        more,
    })
}

/// The record of `ev` (a read or write whole: [`write_event`] splits it).
pub fn from_event(ev: &Event) -> FromEvent<'_> {
    match ev {
        Event::Rx(b) => FromEvent::Bytes(Bytes {
            kind: "rx",
            hex: Hex(b),
        }),
        Event::Tx(b) => FromEvent::Bytes(Bytes {
            kind: "tx",
            hex: Hex(b),
        }),
        Event::LineSettings { settings, modem } => FromEvent::Settings(Settings {
            baud: settings.baud.bps(),
            format: settings.format.to_string(),
            flow: settings.flow.label(),
            dtr: modem.dtr,
            rts: modem.rts,
        }),
        Event::Connection(c) => FromEvent::Connection(match c {
            ConnectionState::Up => Connection::Up,
            ConnectionState::Down { reason } => Connection::Down { reason },
            ConnectionState::Retrying { reason } => Connection::Retrying { reason },
        }),
        Event::Overrun(o) => hsmon_event(
            "hsmon.overrun",
            "error",
            format!(
                "{} received bytes not shown: the output fell behind the port (a capture being recorded has them)",
                o.dropped_bytes
            ),
            HsmonMembers::Overrun {
                dropped_bytes: o.dropped_bytes,
            },
        ),
        Event::BreakSent => hsmon_event(
            "hsmon.break_sent",
            "info",
            "break sent",
            HsmonMembers::NoMembers,
        ),
        Event::LineErrors(None) => hsmon_event(
            "hsmon.line_errors",
            "info",
            "this port keeps no line error counters (TIOCGICOUNT unsupported)",
            HsmonMembers::LineErrorsUnavailable { available: false },
        ),
        Event::LineErrors(Some(c)) => hsmon_event(
            "hsmon.line_errors",
            if c.total() > 0 { "warning" } else { "info" },
            format!(
                "line errors: framing {} parity {} overrun {} break {} buffer {}",
                c.frame, c.parity, c.overrun, c.brk, c.buf_overrun
            ),
            HsmonMembers::LineErrors {
                available: true,
                frame: c.frame,
                overrun: c.overrun,
                parity: c.parity,
                brk: c.brk,
                buf_overrun: c.buf_overrun,
            },
        ),
        Event::CommandFailed { command, reason } => hsmon_event(
            "hsmon.command_failed",
            "warning",
            format!("{command}: {reason}"),
            HsmonMembers::CommandFailed {
                command: command.clone(),
            },
        ),
        Event::Replay {
            paused,
            speed,
            text,
        } => FromEvent::Event(EventRecord {
            id: "hsmon.replay",
            severity: "info",
            title: None,
            text: Cow::Borrowed(text),
            more: HsmonMembers::Replay {
                paused: *paused,
                speed: *speed,
            },
        }),
        Event::Apdu(x) => {
            use crate::decode::iso7816::sw;
            let word = x.sw().map(sw::StatusWord);
            FromEvent::Apdu(Apdu {
                origin: x.origin.label(),
                command: Hex(&x.command),
                response: Hex(x.data()),
                sw: word.map(|s| s.to_string()),
                sw_text: word.map(|s| sw::lookup(s).meaning),
                summary: crate::card::describe::command_summary(&x.command),
                duration_ms: x.duration.as_secs_f64() * 1000.0,
            })
        }
        Event::Card(c) => FromEvent::Card(card(c)),
        Event::Pcsc { operation, code } => FromEvent::Card(Card::PcscError {
            operation,
            code: format!("0x{code:08X}"),
            name: crate::decode::pcsc_codes::lookup_code(*code).map(|k| k.name),
        }),
        Event::Trace(t) => FromEvent::Trace(trace(t)),
    }
}

fn trace(t: &crate::event::TraceEvent) -> Trace<'_> {
    use crate::event::{ProgramExit, TraceEvent};
    match t {
        TraceEvent::Stream { fd, .. } => Trace::Stream { fd: *fd },
        TraceEvent::Process { pid, parent, exec } => Trace::Process {
            pid: *pid,
            parent: *parent,
            exec: exec.as_deref(),
        },
        TraceEvent::Exit(ProgramExit::Code(code)) => Trace::ExitCode { code: *code },
        TraceEvent::Exit(ProgramExit::Signal(signal)) => Trace::ExitSignal { signal: *signal },
        TraceEvent::Detached { pid } => Trace::Detached { pid: *pid },
        TraceEvent::Flush { queue } => Trace::Flush { queue },
    }
}

fn card(c: &CardEvent) -> Card<'_> {
    match c {
        CardEvent::Readers(readers) => Card::Readers { readers },
        CardEvent::Inserted { reader, atr } => Card::Inserted {
            reader,
            atr: Hex(atr),
        },
        CardEvent::Removed { reader } => Card::Removed { reader },
        CardEvent::Connected {
            reader,
            protocol,
            share,
            atr,
        } => Card::Connected {
            reader,
            protocol,
            share: match share {
                ShareMode::Shared => "shared",
                ShareMode::Exclusive => "exclusive",
            },
            atr: Hex(atr),
        },
        CardEvent::Reconnected {
            reader,
            disposition,
            protocol,
        } => Card::Reconnected {
            reader,
            disposition: disposition.label(),
            protocol,
        },
        CardEvent::Disconnected {
            reader,
            disposition,
        } => Card::Disconnected {
            reader,
            disposition: disposition.label(),
        },
        CardEvent::Transaction { begun: true } => Card::TransactionBegun,
        CardEvent::Transaction { begun: false } => Card::TransactionEnded,
    }
}

/// The JSON lines of one event, stamped: a read or write as `rx`/`tx` records of at most
/// [`RECORD_BYTES`] each, all with the event's time (an empty read is still one record), any
/// other event as its one record. `label` is a tap's name for the direction. Returns the
/// lines written.
pub fn write_event<W: Write + ?Sized>(
    out: &mut W,
    ev: &TimedEvent,
    label: Option<&str>,
    stamp: &Stamp,
) -> io::Result<u64> {
    write_event_on(out, ev, label, None, stamp)
}

/// [`write_event`] with the `stream` member of a multi-stream session.
pub fn write_event_on<W: Write + ?Sized>(
    out: &mut W,
    ev: &TimedEvent,
    label: Option<&str>,
    stream: Option<crate::session::StreamTag<'_>>,
    stamp: &Stamp,
) -> io::Result<u64> {
    let time = Time::at(ev.at, stamp);
    let (kind, b) = match &ev.event {
        Event::Rx(b) => ("rx", b),
        Event::Tx(b) => ("tx", b),
        other => {
            super::write_on(out, &from_event(other), &time, label, stream, stamp)?;
            return Ok(1);
        }
    };
    let mut pieces = b.chunks(RECORD_BYTES);
    let first = pieces.next().unwrap_or_default();
    let mut n = 0;
    for piece in std::iter::once(first).chain(pieces) {
        let r = Bytes {
            kind,
            hex: Hex(piece),
        };
        super::write_on(out, &r, &time, label, stream, stamp)?;
        n += 1;
    }
    Ok(n)
}

impl Record for Bytes<'_> {
    fn kind(&self) -> &'static str {
        self.kind
    }
}
