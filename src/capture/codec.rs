//! Event ↔ record payload: one stable kind number per `Event` variant and a hand-written,
//! documented field layout for each (`docs/capture-format.md`, "Record kinds").
//!
//! Hand-written rather than serde + postcard/bincode: those number enum variants by their
//! position in the Rust source, so reordering or inserting a variant would silently change the
//! meaning of old files. Here the numbers are written down once and never reused, unknown kinds
//! are skippable, and event.rs needs no serde derives.

use std::time::Duration;

use crate::event::{
    ApduExchange, ApduOrigin, Baud, CardDisposition, CardEvent, ConnectionState, DataBits, Event,
    FlowControl, FrameFormat, LineErrorCounts, LineSettings, ModemLines, Overrun, Parity,
    ShareMode, StopBits,
};

/// Record kinds. Numbers are part of the file format: never renumber, never reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Kind {
    Rx = 1,
    Tx = 2,
    LineSettings = 3,
    Connection = 4,
    Overrun = 5,
    BreakSent = 6,
    LineErrors = 7,
    CommandFailed = 8,
    Apdu = 9,
    Card = 10,
    Pcsc = 11,
    Replay = 12,
    /// Not an event: the records after it belong to this stream (see [`STREAM_KIND`]).
    Stream = 13,
    /// Not an event: the session's streams as its source declared them (see [`STREAMS_KIND`]).
    Streams = 14,
    Trace = 15,
}

/// The kind of the stream-declaration record, written once before the first event of a
/// multi-stream session: count u16, then per stream id u16, kind u8 (0 serial, 1 tcp, 2 card,
/// 3 replay, 4 demo), link u16, direction u8 (0 both, 1 rx, 2 tx), label str.
pub const STREAMS_KIND: u16 = Kind::Streams as u16;

/// The payload of a stream-declaration record.
pub fn encode_streams(streams: &[crate::event::StreamDecl], out: &mut Vec<u8>) {
    use crate::event::{Direction, StreamKind};
    out.extend_from_slice(&(streams.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    for s in streams.iter().take(usize::from(u16::MAX)) {
        out.extend_from_slice(&s.id.0.to_le_bytes());
        out.push(match s.kind {
            StreamKind::Serial => 0,
            StreamKind::Tcp => 1,
            StreamKind::Card => 2,
            StreamKind::Replay => 3,
            StreamKind::Demo => 4,
        });
        out.extend_from_slice(&s.link.to_le_bytes());
        out.push(match s.direction {
            None => 0,
            Some(Direction::Rx) => 1,
            Some(Direction::Tx) => 2,
        });
        put_str(out, &s.label);
    }
}

/// The streams a stream-declaration record declares.
pub fn decode_streams(p: &[u8]) -> Result<Vec<crate::event::StreamDecl>, PayloadError> {
    use crate::event::{Direction, StreamDecl, StreamId, StreamKind};
    let mut c = Cur {
        b: p,
        kind: "streams",
    };
    let n = u16::from_le_bytes(c.array()?);
    let mut out = Vec::with_capacity(usize::from(n).min(64));
    for _ in 0..n {
        let id = StreamId(u16::from_le_bytes(c.array()?));
        let kind = match c.u8()? {
            0 => StreamKind::Serial,
            1 => StreamKind::Tcp,
            2 => StreamKind::Card,
            3 => StreamKind::Replay,
            4 => StreamKind::Demo,
            k => return Err(c.bad(format!("stream kind {k}"))),
        };
        let link = u16::from_le_bytes(c.array()?);
        let direction = match c.u8()? {
            0 => None,
            1 => Some(Direction::Rx),
            2 => Some(Direction::Tx),
            d => return Err(c.bad(format!("direction {d}"))),
        };
        let label = c.str()?;
        out.push(StreamDecl {
            id,
            label,
            kind,
            link,
            direction,
        });
    }
    Ok(out)
}

/// The kind of the stream-switch record: payload the stream id (u16). A writer puts one before
/// the first record of a stream other than the previous record's, so single-stream captures
/// (and every capture written before streams) have none and read as the main stream.
pub const STREAM_KIND: u16 = Kind::Stream as u16;

/// The payload of a stream-switch record.
pub fn encode_stream(id: crate::event::StreamId) -> [u8; 2] {
    id.0.to_le_bytes()
}

/// The stream a stream-switch record names.
pub fn decode_stream(p: &[u8]) -> Result<crate::event::StreamId, PayloadError> {
    match p {
        [a, b, ..] => Ok(crate::event::StreamId(u16::from_le_bytes([*a, *b]))),
        _ => Err(PayloadError::Malformed {
            kind: "stream",
            reason: format!("{} payload bytes, need 2", p.len()),
        }),
    }
}

impl Kind {
    /// Every kind this version writes and reads.
    pub const ALL: [Kind; 13] = [
        Kind::Rx,
        Kind::Tx,
        Kind::LineSettings,
        Kind::Connection,
        Kind::Overrun,
        Kind::BreakSent,
        Kind::LineErrors,
        Kind::CommandFailed,
        Kind::Apdu,
        Kind::Card,
        Kind::Pcsc,
        Kind::Replay,
        Kind::Trace,
    ];

    pub fn of(ev: &Event) -> Kind {
        match ev {
            Event::Rx(_) => Kind::Rx,
            Event::Tx(_) => Kind::Tx,
            Event::LineSettings { .. } => Kind::LineSettings,
            Event::Connection(_) => Kind::Connection,
            Event::Overrun(_) => Kind::Overrun,
            Event::BreakSent => Kind::BreakSent,
            Event::LineErrors(_) => Kind::LineErrors,
            Event::CommandFailed { .. } => Kind::CommandFailed,
            Event::Apdu(_) => Kind::Apdu,
            Event::Card(_) => Kind::Card,
            Event::Pcsc { .. } => Kind::Pcsc,
            Event::Replay { .. } => Kind::Replay,
            Event::Trace(_) => Kind::Trace,
        }
    }
}

/// Why a payload with a good CRC still gave no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Written by a newer hsmon (a new event type): skipped.
    #[error("unknown record kind {0} (written by a newer hsmon?): skipped")]
    UnknownKind(u16),
    #[error("malformed {kind} record: {reason}")]
    Malformed { kind: &'static str, reason: String },
}

/// Appends the payload of `ev` to `out` and returns its kind.
/// Record time as stored: nanoseconds since the session start, saturating at u64::MAX
/// (584 years).
pub fn duration_to_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub fn encode_payload(ev: &Event, out: &mut Vec<u8>) -> Kind {
    match ev {
        Event::Rx(b) | Event::Tx(b) => out.extend_from_slice(b),
        Event::LineSettings { settings, modem } => encode_settings(settings, modem, out),
        Event::Connection(c) => match c {
            ConnectionState::Up => out.push(0),
            ConnectionState::Down { reason } => {
                out.push(1);
                put_str(out, reason);
            }
            ConnectionState::Retrying { reason } => {
                out.push(2);
                put_str(out, reason);
            }
        },
        Event::Overrun(o) => out.extend_from_slice(&o.dropped_bytes.to_le_bytes()),
        Event::BreakSent => {}
        Event::LineErrors(None) => out.push(0),
        Event::LineErrors(Some(c)) => {
            out.push(1);
            for n in [c.frame, c.overrun, c.parity, c.brk, c.buf_overrun] {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        Event::CommandFailed { command, reason } => {
            put_str(out, command);
            put_str(out, reason);
        }
        Event::Apdu(x) => {
            put_bytes(out, &x.command);
            put_bytes(out, &x.response);
            out.extend_from_slice(&duration_to_ns(x.duration).to_le_bytes());
            match x.origin {
                ApduOrigin::User => out.push(0),
                ApduOrigin::Script { line } => {
                    out.push(1);
                    out.extend_from_slice(&line.to_le_bytes());
                }
                ApduOrigin::GetResponse => out.push(2),
                ApduOrigin::LeRetry => out.push(3),
            }
        }
        Event::Card(c) => encode_card(c, out),
        Event::Pcsc { operation, code } => {
            put_str(out, operation);
            out.extend_from_slice(&code.to_le_bytes());
        }
        Event::Replay {
            paused,
            speed,
            text,
        } => {
            out.push(u8::from(*paused));
            out.extend_from_slice(&speed.to_le_bytes());
            put_str(out, text);
        }
        // The trace news as JSON text: rare records, and the shape is still settling.
        Event::Trace(t) => put_str(out, &serde_json::to_string(t).unwrap_or_default()),
    }
    Kind::of(ev)
}

/// LineSettings payload: baud u32, data bits u8 (5-8), parity u8 (0 N, 1 E, 2 O, 3 M, 4 S),
/// stop bits u8 (1, 2), flow u8 (0 none, 1 hw, 2 sw), DTR u8, RTS u8 (0 off, 1 on, 2 unknown).
pub fn encode_settings(s: &LineSettings, m: &ModemLines, out: &mut Vec<u8>) {
    out.extend_from_slice(&s.baud.bps().to_le_bytes());
    out.push(s.format.data_bits.count());
    out.push(match s.format.parity {
        Parity::None => 0,
        Parity::Even => 1,
        Parity::Odd => 2,
        Parity::Mark => 3,
        Parity::Space => 4,
    });
    out.push(s.format.stop_bits.count());
    out.push(match s.flow {
        FlowControl::None => 0,
        FlowControl::Hardware => 1,
        FlowControl::Software => 2,
    });
    for line in [m.dtr, m.rts] {
        out.push(match line {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        });
    }
}

fn encode_card(c: &CardEvent, out: &mut Vec<u8>) {
    match c {
        CardEvent::Readers(names) => {
            out.push(1);
            out.extend_from_slice(&(names.len() as u32).to_le_bytes());
            for n in names {
                put_str(out, n);
            }
        }
        CardEvent::Inserted { reader, atr } => {
            out.push(2);
            put_str(out, reader);
            put_bytes(out, atr);
        }
        CardEvent::Removed { reader } => {
            out.push(3);
            put_str(out, reader);
        }
        CardEvent::Connected {
            reader,
            protocol,
            share,
            atr,
        } => {
            out.push(4);
            put_str(out, reader);
            put_str(out, protocol);
            out.push(match share {
                ShareMode::Shared => 0,
                ShareMode::Exclusive => 1,
            });
            put_bytes(out, atr);
        }
        CardEvent::Reconnected {
            reader,
            disposition,
            protocol,
        } => {
            out.push(5);
            put_str(out, reader);
            out.push(disposition_code(*disposition));
            put_str(out, protocol);
        }
        CardEvent::Disconnected {
            reader,
            disposition,
        } => {
            out.push(6);
            put_str(out, reader);
            out.push(disposition_code(*disposition));
        }
        CardEvent::Transaction { begun } => {
            out.push(7);
            out.push(u8::from(*begun));
        }
    }
}

fn disposition_code(d: CardDisposition) -> u8 {
    match d {
        CardDisposition::Leave => 0,
        CardDisposition::Reset => 1,
        CardDisposition::Unpower => 2,
    }
}

/// Byte strings and UTF-8 strings: u32 length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// The event a payload of `kind` holds. Fixed-layout kinds ignore trailing bytes, so a later
/// minor version may append fields without breaking older readers.
pub fn decode_payload(kind: u16, p: &[u8]) -> Result<Event, PayloadError> {
    let Some(k) = Kind::ALL.iter().copied().find(|k| *k as u16 == kind) else {
        return Err(PayloadError::UnknownKind(kind));
    };
    let mut c = Cur {
        b: p,
        kind: kind_name(k),
    };
    Ok(match k {
        Kind::Rx => Event::Rx(p.to_vec()),
        Kind::Tx => Event::Tx(p.to_vec()),
        Kind::LineSettings => {
            let bps = c.u32()?;
            let baud = Baud::new(bps).map_err(|_| c.bad(format!("baud {bps} out of range")))?;
            let data_bits = match c.u8()? {
                5 => DataBits::Five,
                6 => DataBits::Six,
                7 => DataBits::Seven,
                8 => DataBits::Eight,
                n => return Err(c.bad(format!("{n} data bits"))),
            };
            let parity = match c.u8()? {
                0 => Parity::None,
                1 => Parity::Even,
                2 => Parity::Odd,
                3 => Parity::Mark,
                4 => Parity::Space,
                n => return Err(c.bad(format!("parity code {n}"))),
            };
            let stop_bits = match c.u8()? {
                1 => StopBits::One,
                2 => StopBits::Two,
                n => return Err(c.bad(format!("{n} stop bits"))),
            };
            let flow = match c.u8()? {
                0 => FlowControl::None,
                1 => FlowControl::Hardware,
                2 => FlowControl::Software,
                n => return Err(c.bad(format!("flow code {n}"))),
            };
            let dtr = c.tristate()?;
            let rts = c.tristate()?;
            Event::LineSettings {
                settings: LineSettings {
                    baud,
                    format: FrameFormat {
                        data_bits,
                        parity,
                        stop_bits,
                    },
                    flow,
                },
                modem: ModemLines { dtr, rts },
            }
        }
        Kind::Connection => Event::Connection(match c.u8()? {
            0 => ConnectionState::Up,
            1 => ConnectionState::Down { reason: c.str()? },
            2 => ConnectionState::Retrying { reason: c.str()? },
            n => return Err(c.bad(format!("connection state {n}"))),
        }),
        Kind::Overrun => Event::Overrun(Overrun {
            dropped_bytes: c.u64()?,
        }),
        Kind::BreakSent => Event::BreakSent,
        Kind::LineErrors => Event::LineErrors(match c.u8()? {
            0 => None,
            1 => Some(LineErrorCounts {
                frame: c.u64()?,
                overrun: c.u64()?,
                parity: c.u64()?,
                brk: c.u64()?,
                buf_overrun: c.u64()?,
            }),
            n => return Err(c.bad(format!("line-error flag {n}"))),
        }),
        Kind::CommandFailed => Event::CommandFailed {
            command: c.str()?,
            reason: c.str()?,
        },
        Kind::Apdu => {
            let command = c.bytes()?;
            let response = c.bytes()?;
            let duration = Duration::from_nanos(c.u64()?);
            let origin = match c.u8()? {
                0 => ApduOrigin::User,
                1 => ApduOrigin::Script { line: c.u32()? },
                2 => ApduOrigin::GetResponse,
                3 => ApduOrigin::LeRetry,
                n => return Err(c.bad(format!("APDU origin {n}"))),
            };
            Event::Apdu(ApduExchange {
                command,
                response,
                duration,
                origin,
            })
        }
        Kind::Card => Event::Card(decode_card(&mut c)?),
        Kind::Pcsc => Event::Pcsc {
            operation: c.str()?,
            code: c.u32()?,
        },
        Kind::Replay => Event::Replay {
            paused: c.u8()? != 0,
            speed: f64::from_bits(c.u64()?),
            text: c.str()?,
        },
        Kind::Trace => {
            let text = c.str()?;
            Event::Trace(serde_json::from_str(&text).map_err(|e| c.bad(format!("trace: {e}")))?)
        }
        // The reader takes stream switches itself; they carry no event.
        Kind::Stream | Kind::Streams => {
            return Err(c.bad("a stream record is not an event".to_string()));
        }
    })
}

fn decode_card(c: &mut Cur<'_>) -> Result<CardEvent, PayloadError> {
    Ok(match c.u8()? {
        1 => {
            let n = c.u32()?;
            // No capacity from an untrusted count: each name needs at least 4 bytes anyway.
            let mut names = Vec::new();
            for _ in 0..n {
                names.push(c.str()?);
            }
            CardEvent::Readers(names)
        }
        2 => CardEvent::Inserted {
            reader: c.str()?,
            atr: c.bytes()?,
        },
        3 => CardEvent::Removed { reader: c.str()? },
        4 => CardEvent::Connected {
            reader: c.str()?,
            protocol: c.str()?,
            share: match c.u8()? {
                0 => ShareMode::Shared,
                1 => ShareMode::Exclusive,
                n => return Err(c.bad(format!("share mode {n}"))),
            },
            atr: c.bytes()?,
        },
        5 => CardEvent::Reconnected {
            reader: c.str()?,
            disposition: c.disposition()?,
            protocol: c.str()?,
        },
        6 => CardEvent::Disconnected {
            reader: c.str()?,
            disposition: c.disposition()?,
        },
        7 => CardEvent::Transaction {
            begun: match c.u8()? {
                0 => false,
                1 => true,
                n => return Err(c.bad(format!("transaction flag {n}"))),
            },
        },
        n => return Err(c.bad(format!("card event {n}"))),
    })
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Rx => "rx",
        Kind::Tx => "tx",
        Kind::LineSettings => "settings",
        Kind::Connection => "connection",
        Kind::Overrun => "overrun",
        Kind::BreakSent => "break",
        Kind::LineErrors => "line-errors",
        Kind::CommandFailed => "command-failed",
        Kind::Apdu => "apdu",
        Kind::Card => "card",
        Kind::Pcsc => "pcsc",
        Kind::Replay => "replay",
        Kind::Trace => "trace",
        Kind::Stream => "stream",
        Kind::Streams => "streams",
    }
}

/// A bounds-checked cursor over a payload: every read can fail, none can panic.
struct Cur<'a> {
    b: &'a [u8],
    kind: &'static str,
}

impl<'a> Cur<'a> {
    fn bad(&self, reason: String) -> PayloadError {
        PayloadError::Malformed {
            kind: self.kind,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        if self.b.len() < n {
            return Err(self.bad(format!("needs {n} more bytes, {} left", self.b.len())));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PayloadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, PayloadError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, PayloadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, PayloadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn tristate(&mut self) -> Result<Option<bool>, PayloadError> {
        match self.u8()? {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            2 => Ok(None),
            n => Err(self.bad(format!("modem line state {n}"))),
        }
    }

    fn disposition(&mut self) -> Result<CardDisposition, PayloadError> {
        match self.u8()? {
            0 => Ok(CardDisposition::Leave),
            1 => Ok(CardDisposition::Reset),
            2 => Ok(CardDisposition::Unpower),
            n => Err(self.bad(format!("disposition {n}"))),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, PayloadError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn str(&mut self) -> Result<String, PayloadError> {
        let b = self.bytes()?;
        String::from_utf8(b).map_err(|e| self.bad(format!("text is not UTF-8: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// One event of every variant (and every sub-variant of the enums they carry).
    pub(crate) fn every_event() -> Vec<Event> {
        let settings = LineSettings {
            baud: Baud::new(74_880).unwrap(),
            format: "7E2".parse().unwrap(),
            flow: FlowControl::Hardware,
        };
        let mut v = vec![
            Event::Rx(hex("68 03 03 68 53 01 50 A4 16")),
            Event::Rx(vec![]),
            Event::Tx(vec![0x10, 0x5B, 0x01, 0x5C, 0x16]),
            Event::LineSettings {
                settings,
                modem: ModemLines {
                    dtr: Some(true),
                    rts: None,
                },
            },
            Event::LineSettings {
                settings: LineSettings {
                    baud: Baud::new(9600).unwrap(),
                    format: "5S1".parse().unwrap(),
                    flow: FlowControl::Software,
                },
                modem: ModemLines {
                    dtr: Some(false),
                    rts: Some(true),
                },
            },
            Event::LineSettings {
                settings: LineSettings {
                    baud: Baud::new(300).unwrap(),
                    format: "6O1".parse().unwrap(),
                    flow: FlowControl::None,
                },
                modem: ModemLines::default(),
            },
            Event::LineSettings {
                settings: LineSettings {
                    baud: Baud::new(12_000_000).unwrap(),
                    format: "8M1".parse().unwrap(),
                    flow: FlowControl::None,
                },
                modem: ModemLines::default(),
            },
            Event::LineSettings {
                settings: LineSettings {
                    baud: Baud::new(115_200).unwrap(),
                    format: "8N1".parse().unwrap(),
                    flow: FlowControl::None,
                },
                modem: ModemLines::default(),
            },
            Event::Connection(ConnectionState::Up),
            Event::Connection(ConnectionState::Down {
                reason: "device unplugged: /dev/ttyUSB0 vanished".into(),
            }),
            Event::Connection(ConnectionState::Retrying {
                reason: "würde wieder öffnen".into(),
            }),
            Event::Overrun(Overrun {
                dropped_bytes: u64::MAX,
            }),
            Event::BreakSent,
            Event::LineErrors(None),
            Event::LineErrors(Some(LineErrorCounts {
                frame: 1,
                overrun: 2,
                parity: 3,
                brk: 4,
                buf_overrun: 5,
            })),
            Event::CommandFailed {
                command: "set baud 74880".into(),
                reason: "the adapter refused it".into(),
            },
            Event::Pcsc {
                operation: "SCardTransmit".into(),
                code: 0x8010_0068,
            },
            Event::Card(CardEvent::Readers(vec![
                "Virtual PCD 00 00".into(),
                "Virtual PCD 00 01".into(),
            ])),
            Event::Card(CardEvent::Readers(vec![])),
            Event::Card(CardEvent::Inserted {
                reader: "Virtual PCD 00 00".into(),
                atr: hex("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68"),
            }),
            Event::Card(CardEvent::Removed {
                reader: "Virtual PCD 00 00".into(),
            }),
            Event::Card(CardEvent::Connected {
                reader: "Virtual PCD 00 00".into(),
                protocol: "T=1".into(),
                share: ShareMode::Exclusive,
                atr: hex("3B 02 14 50"),
            }),
            Event::Card(CardEvent::Connected {
                reader: "r".into(),
                protocol: "T=0".into(),
                share: ShareMode::Shared,
                atr: vec![],
            }),
            Event::Card(CardEvent::Transaction { begun: true }),
            Event::Card(CardEvent::Transaction { begun: false }),
        ];
        for d in [
            CardDisposition::Leave,
            CardDisposition::Reset,
            CardDisposition::Unpower,
        ] {
            v.push(Event::Card(CardEvent::Reconnected {
                reader: "Virtual PCD 00 00".into(),
                disposition: d,
                protocol: "T=1".into(),
            }));
            v.push(Event::Card(CardEvent::Disconnected {
                reader: "Virtual PCD 00 00".into(),
                disposition: d,
            }));
        }
        for origin in [
            ApduOrigin::User,
            ApduOrigin::Script { line: 12 },
            ApduOrigin::GetResponse,
            ApduOrigin::LeRetry,
        ] {
            v.push(Event::Apdu(ApduExchange {
                command: hex("00 A4 04 00 07 A0 00 00 00 04 10 10"),
                response: hex("6A 82"),
                duration: Duration::from_micros(1234),
                origin,
            }));
        }
        v.push(Event::Apdu(ApduExchange {
            command: hex("0C A4 04 00"),
            response: vec![],
            duration: Duration::ZERO,
            origin: ApduOrigin::User,
        }));
        v.push(Event::Replay {
            paused: true,
            speed: 0.25,
            text: "paused at 0.25x".to_string(),
        });
        use crate::event::{ProgramExit, TraceEvent};
        v.push(Event::Trace(TraceEvent::Stream {
            name: "/dev/ttyUSB0".to_string(),
            pid: 4242,
            fd: 3,
        }));
        v.push(Event::Trace(TraceEvent::Process {
            pid: 4243,
            parent: Some(4242),
            exec: None,
        }));
        v.push(Event::Trace(TraceEvent::Exit(ProgramExit::Signal(9))));
        v.push(Event::Trace(TraceEvent::Flush {
            queue: "both".to_string(),
        }));
        v
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap()
    }

    #[test]
    fn every_variant_round_trips() {
        let events = every_event();
        let kinds: std::collections::HashSet<Kind> = events.iter().map(Kind::of).collect();
        for k in Kind::ALL {
            assert!(kinds.contains(&k), "no sample of {k:?}");
        }
        for ev in &events {
            let mut p = Vec::new();
            let k = encode_payload(ev, &mut p);
            assert_eq!(decode_payload(k as u16, &p).as_ref(), Ok(ev), "{ev:?}");
        }
    }

    #[test]
    fn cut_payloads_are_errors_not_panics() {
        for ev in every_event() {
            let mut p = Vec::new();
            let k = encode_payload(&ev, &mut p) as u16;
            for cut in 0..p.len() {
                // Rx/Tx take any length; the rest must notice the missing bytes.
                let r = decode_payload(k, &p[..cut]);
                if !matches!(ev, Event::Rx(_) | Event::Tx(_)) {
                    assert!(r.is_err(), "{ev:?} cut at {cut} decoded as {r:?}");
                }
            }
        }
        assert_eq!(
            decode_payload(999, b"x"),
            Err(PayloadError::UnknownKind(999))
        );
        // A huge count or length is refused, not allocated.
        let mut p = vec![1];
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_payload(Kind::Card as u16, &p).is_err());
    }

    #[test]
    fn kind_numbers_are_the_documented_ones() {
        // docs/capture-format.md lists these; files on disk depend on them.
        let want = [
            (Kind::Rx, 1),
            (Kind::Tx, 2),
            (Kind::LineSettings, 3),
            (Kind::Connection, 4),
            (Kind::Overrun, 5),
            (Kind::BreakSent, 6),
            (Kind::LineErrors, 7),
            (Kind::CommandFailed, 8),
            (Kind::Apdu, 9),
            (Kind::Card, 10),
            (Kind::Pcsc, 11),
            (Kind::Replay, 12),
            (Kind::Trace, 15),
        ];
        for (k, n) in want {
            assert_eq!(k as u16, n);
        }
    }
}
