//! Telnet (RFC 854, RFC 855) as an RFC 2217 client needs it: separating data from commands,
//! IAC escaping both ways, option negotiation (BINARY, SUPPRESS-GO-AHEAD, COM-PORT-OPTION),
//! and sub-negotiation framing. Pure: bytes in, bytes and items out; no I/O, no clock.
//!
//! Negotiation follows RFC 854's rule against loops: a request is answered only when it
//! changes an option's state, and an answer to our own request is not answered again.

/// Interpret As Command: starts every telnet command; doubled to send a data byte 0xFF.
pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
/// Sub-negotiation begin (IAC SB option ... IAC SE).
pub const SB: u8 = 250;
pub const GA: u8 = 249;
pub const NOP: u8 = 241;
/// Sub-negotiation end.
pub const SE: u8 = 240;

/// RFC 856: an 8-bit data path (no NVT CR NUL rules).
pub const BINARY: u8 = 0;
/// RFC 857: the server echoes what it receives (refused: it would mix our sent bytes into
/// the received stream).
pub const ECHO: u8 = 1;
/// RFC 858: no GO-AHEAD signals (full duplex).
pub const SGA: u8 = 3;
/// RFC 2217: remote serial port control.
pub const COM_PORT_OPTION: u8 = 44;

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// Longest sub-negotiation payload kept; the rest of a longer one is dropped (a peer's bytes
/// are untrusted, and RFC 2217 messages are at most a few bytes, a signature a few dozen).
pub const MAX_SUBNEGOTIATION: usize = 512;

/// The four negotiation verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Will,
    Wont,
    Do,
    Dont,
}

impl Verb {
    fn byte(self) -> u8 {
        match self {
            Verb::Will => WILL,
            Verb::Wont => WONT,
            Verb::Do => DO,
            Verb::Dont => DONT,
        }
    }
}

/// One side of one option: in effect, and whether we asked and await the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Side {
    enabled: bool,
    asked: bool,
}

/// The options we take part in, on each side: ours (WILL/WONT from us) and theirs.
const OURS: [u8; 3] = [BINARY, SGA, COM_PORT_OPTION];
const THEIRS: [u8; 3] = [BINARY, SGA, COM_PORT_OPTION];

fn index(table: &[u8; 3], option: u8) -> Option<usize> {
    table.iter().position(|&o| o == option)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    Verb(Verb),
    Sub,
    SubIac,
}

/// A telnet client connection's protocol state.
#[derive(Debug, Clone)]
pub struct Telnet {
    state: State,
    sub: Vec<u8>,
    ours: [Side; 3],
    theirs: [Side; 3],
    /// Replies and requests waiting to be sent.
    out: Vec<u8>,
    /// The last data byte was a CR in a non-binary stream (a following NUL is padding).
    after_cr: bool,
}

impl Default for Telnet {
    fn default() -> Self {
        Self::new()
    }
}

impl Telnet {
    pub fn new() -> Telnet {
        Telnet {
            state: State::Data,
            sub: Vec::new(),
            ours: [Side::default(); 3],
            theirs: [Side::default(); 3],
            out: Vec::new(),
            after_cr: false,
        }
    }

    /// Our opening requests: an 8-bit path both ways, no go-aheads both ways, and
    /// COM-PORT-OPTION on our side (RFC 2217 §2: the client sends WILL COM-PORT-OPTION).
    pub fn start(&mut self) -> Vec<u8> {
        for (verb, option) in [
            (Verb::Will, BINARY),
            (Verb::Do, BINARY),
            (Verb::Will, SGA),
            (Verb::Do, SGA),
            (Verb::Will, COM_PORT_OPTION),
        ] {
            let side = match verb {
                Verb::Will => index(&OURS, option).map(|i| &mut self.ours[i]),
                _ => index(&THEIRS, option).map(|i| &mut self.theirs[i]),
            };
            if let Some(s) = side {
                s.asked = true;
            }
            self.send(verb, option);
        }
        self.take_output()
    }

    /// The server agreed to COM-PORT-OPTION (sent DO 44): settings requests may go out.
    pub fn com_port_ready(&self) -> bool {
        index(&OURS, COM_PORT_OPTION).is_some_and(|i| self.ours[i].enabled)
    }

    /// Whether we send binary (the server said DO BINARY) and it does (it said WILL BINARY).
    pub fn binary(&self) -> (bool, bool) {
        let on =
            |t: &[Side; 3], table: &[u8; 3]| index(table, BINARY).is_some_and(|i| t[i].enabled);
        (on(&self.ours, &OURS), on(&self.theirs, &THEIRS))
    }

    /// Bytes the protocol wants sent (answers to the peer's negotiation).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, verb: Verb, option: u8) {
        self.out.extend_from_slice(&[IAC, verb.byte(), option]);
    }

    /// Splits received bytes into data (appended to `data`, unescaped) and sub-negotiations
    /// (each pushed to `subs` as option byte + payload, unescaped). Negotiation answers are
    /// queued for [`Telnet::take_output`]. Input may be cut anywhere: state carries over.
    pub fn receive(&mut self, input: &[u8], data: &mut Vec<u8>, subs: &mut Vec<Vec<u8>>) {
        for &b in input {
            self.step(b, data, subs);
        }
    }

    fn step(&mut self, b: u8, data: &mut Vec<u8>, subs: &mut Vec<Vec<u8>>) {
        match self.state {
            State::Data => {
                if b == IAC {
                    self.state = State::Iac;
                } else {
                    self.data_byte(b, data);
                }
            }
            State::Iac => {
                self.state = State::Data;
                match b {
                    IAC => self.data_byte(IAC, data),
                    WILL => self.state = State::Verb(Verb::Will),
                    WONT => self.state = State::Verb(Verb::Wont),
                    DO => self.state = State::Verb(Verb::Do),
                    DONT => self.state = State::Verb(Verb::Dont),
                    SB => {
                        self.sub.clear();
                        self.state = State::Sub;
                    }
                    // NOP, GA, DM, BRK, AYT, ... carry nothing an RFC 2217 client uses.
                    _ => {}
                }
            }
            State::Verb(v) => {
                self.state = State::Data;
                self.negotiate(v, b);
            }
            State::Sub => {
                if b == IAC {
                    self.state = State::SubIac;
                } else {
                    self.sub_byte(b);
                }
            }
            State::SubIac => match b {
                IAC => {
                    self.sub_byte(IAC);
                    self.state = State::Sub;
                }
                SE => {
                    subs.push(std::mem::take(&mut self.sub));
                    self.state = State::Data;
                }
                _ => {
                    // A command inside a sub-negotiation: the SE was lost. End the
                    // sub-negotiation here and take the command as a command (RFC 855 leaves
                    // this to the receiver; this keeps data from being swallowed).
                    subs.push(std::mem::take(&mut self.sub));
                    self.state = State::Iac;
                    self.step(b, data, subs);
                }
            },
        }
    }

    fn sub_byte(&mut self, b: u8) {
        if self.sub.len() < MAX_SUBNEGOTIATION {
            self.sub.push(b);
        }
    }

    fn data_byte(&mut self, b: u8, data: &mut Vec<u8>) {
        let (_, they_binary) = self.binary();
        if !they_binary {
            // NVT: CR is sent as CR NUL or CR LF; the NUL is padding, not data.
            if self.after_cr && b == 0 {
                self.after_cr = false;
                return;
            }
            self.after_cr = b == CR;
        }
        data.push(b);
    }

    fn negotiate(&mut self, verb: Verb, option: u8) {
        match verb {
            Verb::Will | Verb::Wont => {
                let Some(i) = index(&THEIRS, option) else {
                    // Not an option we take part in: refuse it (ECHO among them), once per offer.
                    if verb == Verb::Will {
                        self.send(Verb::Dont, option);
                    }
                    return;
                };
                let s = &mut self.theirs[i];
                let was_asked = std::mem::take(&mut s.asked);
                let want = verb == Verb::Will;
                if s.enabled != want {
                    s.enabled = want;
                    if !was_asked {
                        self.send(if want { Verb::Do } else { Verb::Dont }, option);
                    }
                }
            }
            Verb::Do | Verb::Dont => {
                let Some(i) = index(&OURS, option) else {
                    if verb == Verb::Do {
                        self.send(Verb::Wont, option);
                    }
                    return;
                };
                let s = &mut self.ours[i];
                let was_asked = std::mem::take(&mut s.asked);
                let want = verb == Verb::Do;
                if s.enabled != want {
                    s.enabled = want;
                    if !was_asked {
                        self.send(if want { Verb::Will } else { Verb::Wont }, option);
                    }
                }
            }
        }
    }

    /// Escapes data for sending: 0xFF doubled; outside binary mode a lone CR becomes CR NUL
    /// (RFC 854's NVT rule).
    pub fn encode_data(&self, data: &[u8], out: &mut Vec<u8>) {
        let (we_binary, _) = self.binary();
        out.reserve(data.len() + data.len() / 64 + 2);
        for (i, &b) in data.iter().enumerate() {
            match b {
                IAC => out.extend_from_slice(&[IAC, IAC]),
                CR if !we_binary => {
                    out.push(CR);
                    if data.get(i + 1) != Some(&LF) {
                        out.push(0);
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

/// `IAC SB option payload IAC SE`, with every 0xFF in the payload doubled.
pub fn subnegotiation(option: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    out.extend_from_slice(&[IAC, SB]);
    for &b in std::iter::once(&option).chain(payload) {
        if b == IAC {
            out.push(IAC);
        }
        out.push(b);
    }
    out.extend_from_slice(&[IAC, SE]);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn feed(t: &mut Telnet, bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut data = Vec::new();
        let mut subs = Vec::new();
        t.receive(bytes, &mut data, &mut subs);
        (data, subs)
    }

    #[test]
    fn opening_requests_are_byte_exact() {
        let mut t = Telnet::new();
        assert_eq!(
            t.start(),
            vec![
                IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, 44
            ]
        );
        assert!(!t.com_port_ready());
    }

    /// The greeting ser2net 4.3 sends on a telnet(rfc2217) accepter, recorded on this
    /// machine: WILL SGA, DO SGA, WILL ECHO, DONT ECHO, DO BINARY, WILL BINARY, DO 44.
    const SER2NET_GREETING: [u8; 21] = [
        0xFF, 0xFB, 0x03, 0xFF, 0xFD, 0x03, 0xFF, 0xFB, 0x01, 0xFF, 0xFE, 0x01, 0xFF, 0xFD, 0x00,
        0xFF, 0xFB, 0x00, 0xFF, 0xFD, 0x2C,
    ];

    #[test]
    fn ser2net_greeting_is_accepted_without_loops() {
        let mut t = Telnet::new();
        t.start();
        let (data, subs) = feed(&mut t, &SER2NET_GREETING);
        assert!(data.is_empty() && subs.is_empty());
        // Everything it offered we had asked for, except ECHO, which we refuse once.
        assert_eq!(t.take_output(), vec![IAC, DONT, ECHO]);
        assert!(t.com_port_ready());
        assert_eq!(t.binary(), (true, true));
        // The same offers again change nothing, so nothing is answered (RFC 854 loop rule).
        feed(&mut t, &[IAC, WILL, SGA, IAC, DO, BINARY]);
        assert!(t.take_output().is_empty());
    }

    #[test]
    fn unrequested_offers_are_agreed_once_and_withdrawals_acknowledged() {
        let mut t = Telnet::new();
        feed(&mut t, &[IAC, DO, 44]);
        assert_eq!(t.take_output(), vec![IAC, WILL, 44]);
        assert!(t.com_port_ready());
        feed(&mut t, &[IAC, DONT, 44]);
        assert_eq!(t.take_output(), vec![IAC, WONT, 44]);
        assert!(!t.com_port_ready());
        // Options we do not implement are refused.
        feed(&mut t, &[IAC, DO, 24, IAC, WILL, 31]);
        assert_eq!(t.take_output(), vec![IAC, WONT, 24, IAC, DONT, 31]);
        // A refusal of an option that is already off is not answered.
        feed(&mut t, &[IAC, WONT, 5, IAC, DONT, 5]);
        assert!(t.take_output().is_empty());
    }

    #[test]
    fn doubled_iac_is_one_data_byte_and_commands_vanish() {
        let mut t = Telnet::new();
        t.start();
        feed(&mut t, &SER2NET_GREETING);
        let (data, subs) = feed(
            &mut t,
            &[0x68, IAC, IAC, 0x01, IAC, NOP, 0x02, IAC, GA, IAC, IAC],
        );
        assert_eq!(data, vec![0x68, 0xFF, 0x01, 0x02, 0xFF]);
        assert!(subs.is_empty());
    }

    #[test]
    fn subnegotiation_is_framed_and_unescaped_across_chunks() {
        let mut t = Telnet::new();
        // RFC 2217 SET-BAUDRATE answer for 9600 as ser2net sends it, cut in three reads,
        // then a NOTIFY-LINESTATE whose value byte is 0xFF (doubled inside SB).
        let stream = [
            IAC, SB, 44, 101, 0x00, 0x00, 0x25, 0x80, IAC, SE, b'o', b'k', IAC, SB, 44, 106, IAC,
            IAC, IAC, SE,
        ];
        let mut data = Vec::new();
        let mut subs = Vec::new();
        for chunk in [&stream[..3], &stream[3..9], &stream[9..]] {
            t.receive(chunk, &mut data, &mut subs);
        }
        assert_eq!(
            subs,
            vec![vec![44, 101, 0, 0, 0x25, 0x80], vec![44, 106, 0xFF]]
        );
        assert_eq!(data, b"ok");
    }

    #[test]
    fn a_lost_se_does_not_swallow_what_follows() {
        let mut t = Telnet::new();
        let (data, subs) = feed(&mut t, &[IAC, SB, 44, 107, 0x30, IAC, WILL, SGA, b'x']);
        assert_eq!(subs, vec![vec![44, 107, 0x30]]);
        assert_eq!(data, b"x");
        assert_eq!(t.take_output(), vec![IAC, DO, SGA]);
    }

    #[test]
    fn oversized_subnegotiation_is_bounded() {
        let mut t = Telnet::new();
        let mut input = vec![IAC, SB, 44, 0];
        input.extend(std::iter::repeat_n(b'a', 10_000));
        input.extend_from_slice(&[IAC, SE, b'z']);
        let (data, subs) = feed(&mut t, &input);
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].len(), MAX_SUBNEGOTIATION);
        assert_eq!(data, b"z");
    }

    #[test]
    fn sending_doubles_iac_and_keeps_binary_bytes() {
        let mut t = Telnet::new();
        t.start();
        feed(&mut t, &SER2NET_GREETING);
        let mut out = Vec::new();
        t.encode_data(&[0xFF, 0x68, b'\r', 0x00, 0xFF], &mut out);
        assert_eq!(out, vec![0xFF, 0xFF, 0x68, b'\r', 0x00, 0xFF, 0xFF]);
    }

    #[test]
    fn nvt_mode_pads_lone_cr_and_strips_the_padding() {
        // Before (or without) BINARY, RFC 854: CR is followed by LF or NUL.
        let mut t = Telnet::new();
        let mut out = Vec::new();
        t.encode_data(b"a\rb\r\n", &mut out);
        assert_eq!(out, b"a\r\0b\r\n");
        let (data, _) = feed(&mut t, b"x\r\0y\r\n");
        assert_eq!(data, b"x\ry\r\n");
    }

    #[test]
    fn subnegotiation_encoding_doubles_iac_in_the_payload() {
        assert_eq!(
            subnegotiation(44, &[1, 0x00, 0x00, 0x25, 0x80]),
            vec![IAC, SB, 44, 1, 0, 0, 0x25, 0x80, IAC, SE]
        );
        // 16 777 215 bps has 0xFF bytes: each is doubled.
        assert_eq!(
            subnegotiation(44, &[1, 0x00, 0xFF, 0xFF, 0xFF]),
            vec![
                IAC, SB, 44, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, IAC, SE
            ]
        );
    }
}
