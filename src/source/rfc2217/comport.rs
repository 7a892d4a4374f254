//! RFC 2217 COM-PORT-OPTION: the client's requests, the access server's answers (the
//! client's codes + 100), and the bookkeeping that turns answers into acknowledged line
//! settings — the remote port is the truth, so hsmon shows what the server confirms, never
//! what it asked for. Pure: time is passed in, events come out.
//!
//! A request the server leaves unanswered times out after [`ACK_TIMEOUT`] and is said once as
//! a `CommandFailed`; nothing waits on it. ser2net fronting a port without modem lines (a
//! pty, some USB bridges) never answers SET-CONTROL for DTR/RTS, which is why pyserial has
//! `ign_set_control`; here the data path never depended on the answer in the first place.

use std::collections::VecDeque;
use std::time::Duration;

use super::telnet::{COM_PORT_OPTION, subnegotiation};
use crate::event::{
    Baud, Command, DataBits, Event, FlowControl, FrameFormat, LineErrorCounts, LineSettings,
    ModemLines, Parity, StopBits, Timestamp,
};

/// How long an answer may take before the request counts as unanswered.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// Client-to-server command codes (RFC 2217 §3). The server answers with code + 100.
pub mod code {
    pub const SIGNATURE: u8 = 0;
    pub const SET_BAUDRATE: u8 = 1;
    pub const SET_DATASIZE: u8 = 2;
    pub const SET_PARITY: u8 = 3;
    pub const SET_STOPSIZE: u8 = 4;
    pub const SET_CONTROL: u8 = 5;
    pub const NOTIFY_LINESTATE: u8 = 6;
    pub const NOTIFY_MODEMSTATE: u8 = 7;
    pub const FLOWCONTROL_SUSPEND: u8 = 8;
    pub const FLOWCONTROL_RESUME: u8 = 9;
    pub const SET_LINESTATE_MASK: u8 = 10;
    pub const SET_MODEMSTATE_MASK: u8 = 11;
    pub const PURGE_DATA: u8 = 12;
    /// Added to a command code in the server's answer (SET-BAUDRATE 1 → 101).
    pub const SERVER_OFFSET: u8 = 100;
}

/// SET-CONTROL values (RFC 2217 §3, "SET-CONTROL").
pub mod control {
    pub const REQUEST_FLOW: u8 = 0;
    pub const FLOW_NONE: u8 = 1;
    pub const FLOW_XONXOFF: u8 = 2;
    pub const FLOW_HARDWARE: u8 = 3;
    pub const REQUEST_BREAK: u8 = 4;
    pub const BREAK_ON: u8 = 5;
    pub const BREAK_OFF: u8 = 6;
    pub const REQUEST_DTR: u8 = 7;
    pub const DTR_ON: u8 = 8;
    pub const DTR_OFF: u8 = 9;
    pub const REQUEST_RTS: u8 = 10;
    pub const RTS_ON: u8 = 11;
    pub const RTS_OFF: u8 = 12;
}

/// NOTIFY-LINESTATE bits (RFC 2217 §3) that are errors on the line.
pub mod linestate {
    pub const TIMEOUT: u8 = 0x80;
    pub const BREAK: u8 = 0x10;
    pub const FRAMING: u8 = 0x08;
    pub const PARITY: u8 = 0x04;
    pub const OVERRUN: u8 = 0x02;
    /// The mask hsmon asks to be notified of: the four error bits.
    pub const ERRORS: u8 = BREAK | FRAMING | PARITY | OVERRUN;
}

/// A client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Bits per second; 0 asks for the current rate.
    Baud(u32),
    /// 5..=8; 0 asks.
    DataSize(u8),
    /// 1 none, 2 odd, 3 even, 4 mark, 5 space; 0 asks.
    Parity(u8),
    /// 1 one, 2 two, 3 one and a half; 0 asks.
    StopSize(u8),
    Control(u8),
    LineStateMask(u8),
    ModemStateMask(u8),
}

impl Request {
    /// The whole telnet sub-negotiation: `IAC SB 44 code value… IAC SE`, 0xFF doubled.
    pub fn encode(&self) -> Vec<u8> {
        let payload: Vec<u8> = match *self {
            Request::Baud(bps) => {
                let mut p = vec![code::SET_BAUDRATE];
                p.extend_from_slice(&bps.to_be_bytes());
                p
            }
            Request::DataSize(v) => vec![code::SET_DATASIZE, v],
            Request::Parity(v) => vec![code::SET_PARITY, v],
            Request::StopSize(v) => vec![code::SET_STOPSIZE, v],
            Request::Control(v) => vec![code::SET_CONTROL, v],
            Request::LineStateMask(v) => vec![code::SET_LINESTATE_MASK, v],
            Request::ModemStateMask(v) => vec![code::SET_MODEMSTATE_MASK, v],
        };
        subnegotiation(COM_PORT_OPTION, &payload)
    }
}

/// An access-server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Signature(Vec<u8>),
    Baud(u32),
    DataSize(u8),
    Parity(u8),
    StopSize(u8),
    Control(u8),
    /// Line state bits (errors, data ready, transmitter empty).
    LineState(u8),
    /// Modem input lines and their changes: CD 0x80, RI 0x40, DSR 0x20, CTS 0x10.
    ModemState(u8),
    FlowSuspend,
    FlowResume,
    LineStateMask(u8),
    ModemStateMask(u8),
    Purge(u8),
}

/// A sub-negotiation that is not a server's COM-PORT-OPTION message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("sub-negotiation for telnet option {0}, not COM-PORT-OPTION")]
    OtherOption(u8),
    #[error("empty COM-PORT-OPTION sub-negotiation")]
    Empty,
    #[error("COM-PORT-OPTION code {0} is not a server answer (codes 100-112)")]
    NotAnAnswer(u8),
    #[error("COM-PORT-OPTION code {code}: {len} value bytes, {want} expected")]
    BadLength { code: u8, len: usize, want: usize },
}

impl Reply {
    /// Parses a sub-negotiation as the telnet layer delivers it: option byte, then payload.
    pub fn parse(sub: &[u8]) -> Result<Reply, ReplyError> {
        let Some((&option, rest)) = sub.split_first() else {
            return Err(ReplyError::Empty);
        };
        if option != COM_PORT_OPTION {
            return Err(ReplyError::OtherOption(option));
        }
        let Some((&c, value)) = rest.split_first() else {
            return Err(ReplyError::Empty);
        };
        let Some(command) = c.checked_sub(code::SERVER_OFFSET) else {
            return Err(ReplyError::NotAnAnswer(c));
        };
        let one = |f: fn(u8) -> Reply| match value {
            [v, ..] => Ok(f(*v)),
            [] => Err(ReplyError::BadLength {
                code: c,
                len: 0,
                want: 1,
            }),
        };
        match command {
            code::SIGNATURE => Ok(Reply::Signature(value.to_vec())),
            code::SET_BAUDRATE => match value {
                // sredird sends 4 extra zero bytes (pyserial's notes); the first four count.
                [a, b, c2, d, ..] => Ok(Reply::Baud(u32::from_be_bytes([*a, *b, *c2, *d]))),
                _ => Err(ReplyError::BadLength {
                    code: c,
                    len: value.len(),
                    want: 4,
                }),
            },
            code::SET_DATASIZE => one(Reply::DataSize),
            code::SET_PARITY => one(Reply::Parity),
            code::SET_STOPSIZE => one(Reply::StopSize),
            code::SET_CONTROL => one(Reply::Control),
            code::NOTIFY_LINESTATE => one(Reply::LineState),
            code::NOTIFY_MODEMSTATE => one(Reply::ModemState),
            code::FLOWCONTROL_SUSPEND => Ok(Reply::FlowSuspend),
            code::FLOWCONTROL_RESUME => Ok(Reply::FlowResume),
            code::SET_LINESTATE_MASK => one(Reply::LineStateMask),
            code::SET_MODEMSTATE_MASK => one(Reply::ModemStateMask),
            code::PURGE_DATA => one(Reply::Purge),
            _ => Err(ReplyError::NotAnAnswer(c)),
        }
    }
}

pub fn parity_value(p: Parity) -> u8 {
    match p {
        Parity::None => 1,
        Parity::Odd => 2,
        Parity::Even => 3,
        Parity::Mark => 4,
        Parity::Space => 5,
    }
}

fn parity_of(v: u8) -> Option<Parity> {
    Some(match v {
        1 => Parity::None,
        2 => Parity::Odd,
        3 => Parity::Even,
        4 => Parity::Mark,
        5 => Parity::Space,
        _ => return None,
    })
}

fn data_bits_of(v: u8) -> Option<DataBits> {
    Some(match v {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        8 => DataBits::Eight,
        _ => return None,
    })
}

fn stop_value(s: StopBits) -> u8 {
    match s {
        StopBits::One => 1,
        StopBits::Two => 2,
    }
}

/// 1.5 stop bits (value 3) has no place in [`StopBits`]; it reads as "not confirmed".
fn stop_of(v: u8) -> Option<StopBits> {
    match v {
        1 => Some(StopBits::One),
        2 => Some(StopBits::Two),
        _ => None,
    }
}

fn flow_value(f: FlowControl) -> u8 {
    match f {
        FlowControl::None => control::FLOW_NONE,
        FlowControl::Software => control::FLOW_XONXOFF,
        FlowControl::Hardware => control::FLOW_HARDWARE,
    }
}

/// What an answer is about, so it can be matched to the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Baud,
    DataSize,
    Parity,
    StopSize,
    Flow,
    Break,
    Dtr,
    Rts,
}

impl Topic {
    fn name(self) -> &'static str {
        match self {
            Topic::Baud => "SET-BAUDRATE",
            Topic::DataSize => "SET-DATASIZE",
            Topic::Parity => "SET-PARITY",
            Topic::StopSize => "SET-STOPSIZE",
            Topic::Flow => "SET-CONTROL (flow control)",
            Topic::Break => "SET-CONTROL (break)",
            Topic::Dtr => "SET-CONTROL (DTR)",
            Topic::Rts => "SET-CONTROL (RTS)",
        }
    }

    /// SET-CONTROL answers carry a value from the same group as the request. ser2net answers
    /// BREAK OFF with 5, so a break answer is matched by group, not by exact value.
    fn of_control(v: u8) -> Option<Topic> {
        match v {
            0..=3 | 13..=19 => Some(Topic::Flow),
            4..=6 => Some(Topic::Break),
            7..=9 => Some(Topic::Dtr),
            10..=12 => Some(Topic::Rts),
            _ => None,
        }
    }

    fn of_request(r: &Request) -> Option<Topic> {
        match r {
            Request::Baud(_) => Some(Topic::Baud),
            Request::DataSize(_) => Some(Topic::DataSize),
            Request::Parity(_) => Some(Topic::Parity),
            Request::StopSize(_) => Some(Topic::StopSize),
            Request::Control(v) => Topic::of_control(*v),
            Request::LineStateMask(_) | Request::ModemStateMask(_) => None,
        }
    }
}

/// What a group of requests was for, and so what its completion reports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Line settings: acknowledged by a `LineSettings` event; `want` is what was asked.
    Settings { want: LineSettings },
    /// DTR/RTS set or queried: acknowledged by a `LineSettings` event with the modem lines.
    Modem { automatic: bool },
    /// A break: acknowledged by `BreakSent`.
    Break,
}

#[derive(Debug, Clone)]
struct Group {
    id: u64,
    /// The command in words ("set baud 9600").
    what: String,
    purpose: Purpose,
    outstanding: usize,
    unanswered: Vec<Topic>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    group: u64,
    topic: Topic,
    deadline: Timestamp,
}

/// The remote port's state as its server confirmed it, and the requests still unanswered.
#[derive(Debug, Clone)]
pub struct ComPort {
    /// The line settings the server last confirmed (the requested ones until it answers).
    pub settings: LineSettings,
    pub modem: ModemLines,
    /// Modem input lines from the last NOTIFY-MODEMSTATE (CD, RI, DSR, CTS in the high nibble).
    pub modem_inputs: Option<u8>,
    pending: VecDeque<Pending>,
    groups: Vec<Group>,
    next_group: u64,
    /// The server was found not to answer DTR/RTS: said once, not asked again on reconnect.
    control_silent: bool,
    /// Line errors the server reported since the session started (one per notification).
    line_errors: Option<LineErrorCounts>,
}

impl ComPort {
    /// A port to be set to `settings` once the server agrees to COM-PORT-OPTION.
    pub fn new(settings: LineSettings) -> ComPort {
        ComPort {
            settings,
            modem: ModemLines::default(),
            modem_inputs: None,
            pending: VecDeque::new(),
            groups: Vec::new(),
            next_group: 0,
            control_silent: false,
            line_errors: None,
        }
    }

    /// A new connection: forget what was in flight and set the port up. Sends the line
    /// settings (one group, acknowledged together), the line-state mask (error bits only),
    /// and asks for DTR and RTS unless the server already proved it does not answer.
    pub fn open(&mut self, now: Timestamp) -> Vec<u8> {
        self.pending.clear();
        self.groups.clear();
        let want = self.settings;
        let mut out = self.group(
            format!("set line {want}"),
            Purpose::Settings { want },
            &settings_requests(&want, true, true, true),
            now,
        );
        out.extend(Request::LineStateMask(linestate::ERRORS).encode());
        if !self.control_silent {
            out.extend(self.group(
                "read DTR and RTS".to_string(),
                Purpose::Modem { automatic: true },
                &[
                    Request::Control(control::REQUEST_DTR),
                    Request::Control(control::REQUEST_RTS),
                ],
                now,
            ));
        }
        out
    }

    fn group(
        &mut self,
        what: String,
        purpose: Purpose,
        requests: &[Request],
        now: Timestamp,
    ) -> Vec<u8> {
        let id = self.next_group;
        self.next_group += 1;
        let mut out = Vec::new();
        let mut outstanding = 0;
        for r in requests {
            out.extend(r.encode());
            if let Some(topic) = Topic::of_request(r) {
                self.pending.push_back(Pending {
                    group: id,
                    topic,
                    deadline: now + ACK_TIMEOUT,
                });
                outstanding += 1;
            }
        }
        self.groups.push(Group {
            id,
            what,
            purpose,
            outstanding,
            unanswered: Vec::new(),
        });
        out
    }

    /// The requests for a command, to be sent now. Data and card commands are not ours
    /// (`Err` says why, for a `CommandFailed`).
    pub fn command(&mut self, cmd: &Command, now: Timestamp) -> Result<Vec<u8>, String> {
        let what = cmd.describe();
        let s = self.settings;
        Ok(match cmd {
            Command::SetBaud(b) => {
                let want = LineSettings { baud: *b, ..s };
                self.group(
                    what,
                    Purpose::Settings { want },
                    &[Request::Baud(b.bps())],
                    now,
                )
            }
            Command::SetFormat(f) => {
                let want = LineSettings { format: *f, ..s };
                let reqs = settings_requests(&want, false, true, false);
                self.group(what, Purpose::Settings { want }, &reqs, now)
            }
            Command::SetFlow(f) => {
                let want = LineSettings { flow: *f, ..s };
                let reqs = [Request::Control(flow_value(*f))];
                self.group(what, Purpose::Settings { want }, &reqs, now)
            }
            Command::SetDtr(on) => {
                let v = if *on {
                    control::DTR_ON
                } else {
                    control::DTR_OFF
                };
                let purpose = Purpose::Modem { automatic: false };
                self.group(what, purpose, &[Request::Control(v)], now)
            }
            Command::SetRts(on) => {
                let v = if *on {
                    control::RTS_ON
                } else {
                    control::RTS_OFF
                };
                let purpose = Purpose::Modem { automatic: false };
                self.group(what, purpose, &[Request::Control(v)], now)
            }
            Command::SendBreak(_) => self.group(
                what,
                Purpose::Break,
                &[Request::Control(control::BREAK_ON)],
                now,
            ),
            Command::Transmit(_) | Command::Shutdown => {
                return Err("not a COM-PORT-OPTION request".to_string());
            }
            Command::SendApdu { .. } | Command::Reconnect(_) | Command::Transaction(_) => {
                return Err("a serial port has no card: APDUs need `hsmon card`".to_string());
            }
            Command::Replay(_) => return Err("a live port is not a replay".to_string()),
        })
    }

    /// The request that ends a break (sent when the break's time is up; its answer is not
    /// waited for: the break was acknowledged when it began).
    pub fn break_off() -> Vec<u8> {
        Request::Control(control::BREAK_OFF).encode()
    }

    /// Takes a server message in; what it settles comes out as events.
    pub fn on_reply(&mut self, reply: &Reply, out: &mut Vec<Event>) {
        let before = (self.settings, self.modem);
        let topic = match *reply {
            Reply::Baud(v) => {
                if let Ok(b) = Baud::new(v) {
                    self.settings.baud = b;
                }
                Some(Topic::Baud)
            }
            Reply::DataSize(v) => {
                if let Some(d) = data_bits_of(v) {
                    self.settings.format.data_bits = d;
                }
                Some(Topic::DataSize)
            }
            Reply::Parity(v) => {
                if let Some(p) = parity_of(v) {
                    self.settings.format.parity = p;
                }
                Some(Topic::Parity)
            }
            Reply::StopSize(v) => {
                if let Some(st) = stop_of(v) {
                    self.settings.format.stop_bits = st;
                }
                Some(Topic::StopSize)
            }
            Reply::Control(v) => {
                match v {
                    control::FLOW_NONE => self.settings.flow = FlowControl::None,
                    control::FLOW_XONXOFF => self.settings.flow = FlowControl::Software,
                    control::FLOW_HARDWARE => self.settings.flow = FlowControl::Hardware,
                    control::DTR_ON => self.modem.dtr = Some(true),
                    control::DTR_OFF => self.modem.dtr = Some(false),
                    control::RTS_ON => self.modem.rts = Some(true),
                    control::RTS_OFF => self.modem.rts = Some(false),
                    _ => {}
                }
                Topic::of_control(v)
            }
            Reply::LineState(bits) => {
                self.line_state(bits, out);
                None
            }
            Reply::ModemState(bits) => {
                self.modem_inputs = Some(bits);
                None
            }
            _ => None,
        };
        let Some(topic) = topic else { return };
        let Some(i) = self.pending.iter().position(|p| p.topic == topic) else {
            // Unasked (another client changed the port, or a server's own report): show a
            // change, stay quiet otherwise.
            if before != (self.settings, self.modem) {
                out.push(self.settings_event());
            }
            return;
        };
        let Some(p) = self.pending.remove(i) else {
            return;
        };
        self.settle(p.group, None, out);
    }

    /// Counts each notified error bit, and reports the totals when they change (the first
    /// notification says the server reports line state at all).
    fn line_state(&mut self, bits: u8, out: &mut Vec<Event>) {
        let first = self.line_errors.is_none();
        let c = self
            .line_errors
            .get_or_insert_with(LineErrorCounts::default);
        let before = *c;
        c.brk += u64::from(bits & linestate::BREAK != 0);
        c.frame += u64::from(bits & linestate::FRAMING != 0);
        c.parity += u64::from(bits & linestate::PARITY != 0);
        c.overrun += u64::from(bits & linestate::OVERRUN != 0);
        if first || *c != before {
            out.push(Event::LineErrors(Some(*c)));
        }
    }

    /// Requests whose answer is overdue are given up; their commands report.
    pub fn poll(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        while let Some(i) = self.pending.iter().position(|p| p.deadline <= now) {
            let Some(p) = self.pending.remove(i) else {
                break;
            };
            self.settle(p.group, Some(p.topic), out);
        }
    }

    /// When the next pending answer is due.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Whether any request is still waiting for its answer.
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    fn settings_event(&self) -> Event {
        Event::LineSettings {
            settings: self.settings,
            modem: self.modem,
        }
    }

    /// One request of `group` was answered (`missed` None) or timed out; when it was the
    /// last, the group reports.
    fn settle(&mut self, group: u64, missed: Option<Topic>, out: &mut Vec<Event>) {
        let Some(gi) = self.groups.iter().position(|g| g.id == group) else {
            return;
        };
        let g = &mut self.groups[gi];
        g.outstanding = g.outstanding.saturating_sub(1);
        if let Some(t) = missed {
            g.unanswered.push(t);
        }
        if g.outstanding > 0 {
            return;
        }
        let g = self.groups.remove(gi);
        self.report(g, out);
    }

    fn report(&mut self, g: Group, out: &mut Vec<Event>) {
        let unanswered: Vec<&str> = g.unanswered.iter().map(|t| t.name()).collect();
        let silence = format!(
            "the remote port did not answer {} within {} s",
            unanswered.join(", "),
            ACK_TIMEOUT.as_secs()
        );
        match g.purpose {
            Purpose::Settings { want } => {
                if !unanswered.is_empty() {
                    out.push(Event::CommandFailed {
                        command: g.what,
                        reason: format!("{silence}; showing what it last confirmed"),
                    });
                } else if self.settings != want {
                    out.push(Event::CommandFailed {
                        command: g.what,
                        reason: format!("the remote port kept {}", self.settings),
                    });
                }
                out.push(self.settings_event());
            }
            Purpose::Modem { automatic } => {
                if !unanswered.is_empty() {
                    for t in &g.unanswered {
                        match t {
                            Topic::Dtr => self.modem.dtr = None,
                            Topic::Rts => self.modem.rts = None,
                            _ => {}
                        }
                    }
                    // The automatic read at connect is said once per session; a command the
                    // user gave always gets its answer.
                    if !automatic || !self.control_silent {
                        out.push(Event::CommandFailed {
                            command: g.what,
                            reason: format!(
                                "{silence} (ser2net does not answer SET-CONTROL for a port without modem lines, such as a pty or some USB bridges); DTR/RTS shown as n/a, data flows on"
                            ),
                        });
                    }
                    self.control_silent = true;
                }
                // The read at connect reports only what it learnt (ser2net answers it for a
                // pty by echoing the question: nothing learnt, nothing to repeat).
                let learnt = self.modem.dtr.is_some() || self.modem.rts.is_some();
                if !automatic || learnt {
                    out.push(self.settings_event());
                }
            }
            Purpose::Break => {
                if unanswered.is_empty() {
                    out.push(Event::BreakSent);
                } else {
                    out.push(Event::CommandFailed {
                        command: g.what,
                        reason: format!("{silence}; the break may not have reached the line"),
                    });
                }
            }
        }
    }
}

/// The requests that set `s`: baud, then data size, parity and stop size, then flow.
fn settings_requests(s: &LineSettings, baud: bool, format: bool, flow: bool) -> Vec<Request> {
    let mut r = Vec::new();
    if baud {
        r.push(Request::Baud(s.baud.bps()));
    }
    if format {
        let FrameFormat {
            data_bits,
            parity,
            stop_bits,
        } = s.format;
        r.push(Request::DataSize(data_bits.count()));
        r.push(Request::Parity(parity_value(parity)));
        r.push(Request::StopSize(stop_value(stop_bits)));
    }
    if flow {
        r.push(Request::Control(flow_value(s.flow)));
    }
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::telnet::{IAC, SB, SE};
    use super::*;

    fn ms(n: u64) -> Timestamp {
        Duration::from_millis(n)
    }

    /// The server's answer as the telnet layer hands it over: option 44, code + 100, value.
    fn answer(bytes: &[u8]) -> Reply {
        let mut sub = vec![44];
        sub.extend_from_slice(bytes);
        Reply::parse(&sub).unwrap()
    }

    #[test]
    fn requests_are_byte_exact() {
        // RFC 2217 SET-BAUDRATE carries the rate as 4 bytes, network order.
        assert_eq!(
            Request::Baud(115_200).encode(),
            vec![IAC, SB, 44, 1, 0x00, 0x01, 0xC2, 0x00, IAC, SE]
        );
        assert_eq!(
            Request::DataSize(7).encode(),
            vec![IAC, SB, 44, 2, 7, IAC, SE]
        );
        assert_eq!(
            Request::Parity(parity_value(Parity::Even)).encode(),
            vec![IAC, SB, 44, 3, 3, IAC, SE]
        );
        assert_eq!(
            Request::StopSize(2).encode(),
            vec![IAC, SB, 44, 4, 2, IAC, SE]
        );
        assert_eq!(
            Request::Control(control::DTR_OFF).encode(),
            vec![IAC, SB, 44, 5, 9, IAC, SE]
        );
        assert_eq!(
            Request::LineStateMask(linestate::ERRORS).encode(),
            vec![IAC, SB, 44, 10, 0x1E, IAC, SE]
        );
    }

    #[test]
    fn answers_parse_and_junk_is_refused() {
        assert_eq!(answer(&[101, 0, 0, 0x25, 0x80]), Reply::Baud(9600));
        // sredird's 8-byte baud answer: the first four count.
        assert_eq!(
            answer(&[101, 0, 0, 0x25, 0x80, 0, 0, 0, 0]),
            Reply::Baud(9600)
        );
        assert_eq!(answer(&[105, 1]), Reply::Control(1));
        assert_eq!(answer(&[106, 0x08]), Reply::LineState(0x08));
        assert_eq!(answer(&[107, 0x30]), Reply::ModemState(0x30));
        assert_eq!(answer(&[100, b'h', b'i']), Reply::Signature(b"hi".to_vec()));
        assert_eq!(Reply::parse(&[]), Err(ReplyError::Empty));
        assert_eq!(Reply::parse(&[44]), Err(ReplyError::Empty));
        assert_eq!(Reply::parse(&[24, 0]), Err(ReplyError::OtherOption(24)));
        assert_eq!(Reply::parse(&[44, 1, 0]), Err(ReplyError::NotAnAnswer(1)));
        assert_eq!(Reply::parse(&[44, 113]), Err(ReplyError::NotAnAnswer(113)));
        assert!(matches!(
            Reply::parse(&[44, 101, 0, 0]),
            Err(ReplyError::BadLength { .. })
        ));
        assert!(matches!(
            Reply::parse(&[44, 102]),
            Err(ReplyError::BadLength { .. })
        ));
    }

    fn settings(s: &str) -> LineSettings {
        let mut parts = s.split(' ');
        LineSettings {
            baud: parts.next().unwrap().parse().unwrap(),
            format: parts.next().unwrap().parse().unwrap(),
            flow: FlowControl::None,
        }
    }

    /// The answers ser2net gives to an open with 115200 8N1, no flow (its DTR/RTS stay silent).
    fn answer_open(p: &mut ComPort, out: &mut Vec<Event>) {
        for a in [
            &[101u8, 0x00, 0x01, 0xC2, 0x00][..],
            &[102, 8],
            &[103, 1],
            &[104, 1],
            &[105, 1],
        ] {
            p.on_reply(&answer(a), out);
        }
    }

    #[test]
    fn open_is_acknowledged_by_the_servers_answers() {
        let mut p = ComPort::new(settings("115200 8N1"));
        let bytes = p.open(ms(0));
        // Baud, size, parity, stop, flow, line-state mask, DTR query, RTS query.
        let mut expect = Request::Baud(115_200).encode();
        for r in [
            Request::DataSize(8),
            Request::Parity(1),
            Request::StopSize(1),
            Request::Control(1),
            Request::LineStateMask(0x1E),
            Request::Control(7),
            Request::Control(10),
        ] {
            expect.extend(r.encode());
        }
        assert_eq!(bytes, expect);
        let mut out = Vec::new();
        answer_open(&mut p, &mut out);
        assert_eq!(
            out,
            vec![Event::LineSettings {
                settings: settings("115200 8N1"),
                modem: ModemLines::default()
            }]
        );
        // DTR/RTS never answered: said once at the deadline, with the reason, data unaffected.
        out.clear();
        p.poll(ms(999), &mut out);
        assert!(out.is_empty());
        p.poll(ms(1000), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let Event::CommandFailed { command, reason } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(command, "read DTR and RTS");
        assert!(
            reason.contains("SET-CONTROL (DTR), SET-CONTROL (RTS)"),
            "{reason}"
        );
        assert!(reason.contains("data flows on"), "{reason}");
        assert!(!p.is_waiting());
        // A reconnect does not ask (nor say) it again.
        let again = p.open(ms(5000));
        assert!(!again.ends_with(&Request::Control(10).encode()));
        out.clear();
        answer_open(&mut p, &mut out);
        p.poll(ms(10_000), &mut out);
        assert!(
            !out.iter().any(|e| matches!(e, Event::CommandFailed { .. })),
            "{out:?}"
        );
    }

    #[test]
    fn a_question_answered_with_the_question_learns_nothing() {
        // ser2net on a pty answers REQUEST-DTR (7) with 7 and REQUEST-RTS (10) with 10.
        let mut p = ComPort::new(settings("115200 8N1"));
        p.open(ms(0));
        let mut out = Vec::new();
        answer_open(&mut p, &mut out);
        out.clear();
        p.on_reply(&answer(&[105, control::REQUEST_DTR]), &mut out);
        p.on_reply(&answer(&[105, control::REQUEST_RTS]), &mut out);
        assert!(!p.is_waiting(), "both answered");
        assert!(out.is_empty(), "no repeat of unchanged settings: {out:?}");
        assert_eq!(p.modem, ModemLines::default(), "n/a, not a guess");
    }

    #[test]
    fn baud_change_shows_what_the_server_confirmed() {
        let mut p = ComPort::new(settings("115200 8N1"));
        p.open(ms(0));
        let mut out = Vec::new();
        answer_open(&mut p, &mut out);
        out.clear();
        let bytes = p
            .command(&Command::SetBaud(Baud::new(9600).unwrap()), ms(10))
            .unwrap();
        assert_eq!(bytes, vec![IAC, SB, 44, 1, 0, 0, 0x25, 0x80, IAC, SE]);
        // Until the answer comes, nothing is claimed.
        assert_eq!(p.settings.baud.bps(), 115_200);
        p.on_reply(&answer(&[101, 0, 0, 0x25, 0x80]), &mut out);
        assert_eq!(
            out,
            vec![Event::LineSettings {
                settings: settings("9600 8N1"),
                modem: ModemLines::default()
            }]
        );
        // A server that keeps another rate is believed, and the difference is said.
        out.clear();
        p.command(&Command::SetBaud(Baud::new(74880).unwrap()), ms(20))
            .unwrap();
        p.on_reply(&answer(&[101, 0, 0, 0x25, 0x80]), &mut out);
        assert!(
            matches!(&out[0], Event::CommandFailed { reason, .. } if reason.contains("kept 9600 8N1")),
            "{out:?}"
        );
        assert!(
            matches!(&out[1], Event::LineSettings { settings, .. } if settings.baud.bps() == 9600)
        );
    }

    #[test]
    fn format_waits_for_all_three_answers() {
        let mut p = ComPort::new(settings("9600 8N1"));
        p.open(ms(0));
        let mut out = Vec::new();
        answer_open(&mut p, &mut out);
        p.poll(ms(2000), &mut out);
        out.clear();
        p.command(&Command::SetFormat("7E2".parse().unwrap()), ms(2000))
            .unwrap();
        p.on_reply(&answer(&[102, 7]), &mut out);
        p.on_reply(&answer(&[103, 3]), &mut out);
        assert!(out.is_empty(), "one answer still missing: {out:?}");
        p.on_reply(&answer(&[104, 2]), &mut out);
        // The open's answers said 115200 (not the 9600 asked for): the server is the truth.
        assert_eq!(
            out,
            vec![Event::LineSettings {
                settings: settings("115200 7E2"),
                modem: ModemLines::default()
            }]
        );
    }

    #[test]
    fn user_dtr_is_acknowledged_or_said_unanswered() {
        let mut p = ComPort::new(settings("9600 8N1"));
        p.open(ms(0));
        let mut out = Vec::new();
        answer_open(&mut p, &mut out);
        p.on_reply(&answer(&[105, control::DTR_ON]), &mut out);
        p.on_reply(&answer(&[105, control::RTS_ON]), &mut out);
        assert_eq!(p.modem.dtr, Some(true));
        assert_eq!(p.modem.rts, Some(true));
        out.clear();
        p.command(&Command::SetDtr(false), ms(100)).unwrap();
        p.on_reply(&answer(&[105, control::DTR_OFF]), &mut out);
        assert_eq!(p.modem.dtr, Some(false));
        assert!(
            matches!(out.last(), Some(Event::LineSettings { modem, .. }) if modem.dtr == Some(false))
        );
        out.clear();
        p.command(&Command::SetRts(false), ms(200)).unwrap();
        p.poll(ms(1200), &mut out);
        assert!(
            matches!(&out[0], Event::CommandFailed { command, .. } if command == "set RTS off"),
            "{out:?}"
        );
        assert_eq!(p.modem.rts, None, "unconfirmed: n/a, not a guess");
    }

    #[test]
    fn break_is_acknowledged_by_its_answer_whatever_the_value() {
        let mut p = ComPort::new(settings("9600 8N1"));
        let mut out = Vec::new();
        p.command(&Command::SendBreak(Duration::from_millis(250)), ms(0))
            .unwrap();
        p.on_reply(&answer(&[105, control::BREAK_ON]), &mut out);
        assert_eq!(out, vec![Event::BreakSent]);
        // The off request's answer (ser2net says 5 again) is not waited for and changes nothing.
        out.clear();
        p.on_reply(&answer(&[105, control::BREAK_ON]), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn line_state_errors_are_counted() {
        let mut p = ComPort::new(settings("9600 8N1"));
        let mut out = Vec::new();
        p.on_reply(&answer(&[106, 0x00]), &mut out);
        assert_eq!(
            out,
            vec![Event::LineErrors(Some(LineErrorCounts::default()))]
        );
        out.clear();
        p.on_reply(&answer(&[106, linestate::FRAMING | 0x60]), &mut out);
        p.on_reply(
            &answer(&[106, linestate::FRAMING | linestate::PARITY]),
            &mut out,
        );
        p.on_reply(&answer(&[106, 0x60]), &mut out);
        assert_eq!(out.len(), 2, "no event when nothing changed: {out:?}");
        assert_eq!(
            out[1],
            Event::LineErrors(Some(LineErrorCounts {
                frame: 2,
                parity: 1,
                ..Default::default()
            }))
        );
    }

    #[test]
    fn data_commands_are_not_requests() {
        let mut p = ComPort::new(LineSettings::default());
        assert!(p.command(&Command::Transmit(vec![1]), ms(0)).is_err());
        assert!(p.next_deadline().is_none());
    }
}
