//! The records every source emits (`Event`) and the effects the UI asks of a source (`Command`),
//! plus the line-setting types they carry.
//!
//! Whatever a user sees can be rebuilt from the list of `TimedEvent`s: this is what capture files
//! store and what replay feeds back in.

use std::fmt;
use std::time::Duration;

/// Seconds since the session started, from a monotonic clock (never wall time).
pub type Timestamp = Duration;

/// Which way bytes travelled, seen from hsmon: received from the device or sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Rx,
    Tx,
}

impl Direction {
    pub fn label(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        }
    }

    /// The opposite direction.
    pub fn other(self) -> Direction {
        match self {
            Direction::Rx => Direction::Tx,
            Direction::Tx => Direction::Rx,
        }
    }
}

/// A baud rate in bits per second. Validated: 50 ..= 12 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Baud(u32);

impl Baud {
    pub const MIN: u32 = 50;
    pub const MAX: u32 = 12_000_000;

    /// The standard rates the baud keys step through (incl. the ESP8266 boot rate 74880).
    pub const STANDARD: [u32; 27] = [
        300, 600, 1200, 1800, 2400, 4800, 7200, 9600, 14400, 19200, 28800, 38400, 57600, 74880,
        76800, 115200, 230400, 250000, 460800, 500000, 576000, 921600, 1000000, 1500000, 2000000,
        3000000, 4000000,
    ];

    pub fn new(bps: u32) -> Result<Baud, SettingsError> {
        if (Self::MIN..=Self::MAX).contains(&bps) {
            Ok(Baud(bps))
        } else {
            Err(SettingsError::BaudOutOfRange(bps.to_string()))
        }
    }

    pub fn bps(self) -> u32 {
        self.0
    }

    /// The next standard rate above this one (saturates at the highest).
    pub fn step_up(self) -> Baud {
        Baud(
            Self::STANDARD
                .iter()
                .copied()
                .find(|&r| r > self.0)
                .unwrap_or(self.0),
        )
    }

    /// The next standard rate below this one (saturates at the lowest).
    pub fn step_down(self) -> Baud {
        Baud(
            Self::STANDARD
                .iter()
                .rev()
                .copied()
                .find(|&r| r < self.0)
                .unwrap_or(self.0),
        )
    }
}

impl fmt::Display for Baud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Baud {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<Baud, SettingsError> {
        let t = s.trim().replace('_', "");
        match t.parse::<u32>() {
            Ok(n) => Baud::new(n),
            // A whole number too large or negative (`-b 99999999999`, `-b -1`) is out of range,
            // not "not a number".
            Err(_)
                if t.parse::<i128>().is_ok()
                    || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())) =>
            {
                Err(SettingsError::BaudOutOfRange(t))
            }
            Err(_) => Err(SettingsError::BaudNotNumber(s.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataBits {
    Five,
    Six,
    Seven,
    Eight,
}

impl DataBits {
    pub fn count(self) -> u8 {
        match self {
            DataBits::Five => 5,
            DataBits::Six => 6,
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        }
    }
    fn from_count(n: u8) -> Option<DataBits> {
        Some(match n {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            8 => DataBits::Eight,
            _ => return None,
        })
    }
    /// Cycles 8 → 7 → 6 → 5 → 8.
    pub fn next(self) -> DataBits {
        match self {
            DataBits::Eight => DataBits::Seven,
            DataBits::Seven => DataBits::Six,
            DataBits::Six => DataBits::Five,
            DataBits::Five => DataBits::Eight,
        }
    }
}

/// Parity. Mark and space are set with CMSPAR on Linux; other systems refuse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parity {
    None,
    Even,
    Odd,
    Mark,
    Space,
}

impl Parity {
    pub fn letter(self) -> char {
        match self {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
            Parity::Mark => 'M',
            Parity::Space => 'S',
        }
    }
    /// Cycles N → E → O → M → S → N.
    pub fn next(self) -> Parity {
        match self {
            Parity::None => Parity::Even,
            Parity::Even => Parity::Odd,
            Parity::Odd => Parity::Mark,
            Parity::Mark => Parity::Space,
            Parity::Space => Parity::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopBits {
    One,
    Two,
}

impl StopBits {
    pub fn count(self) -> u8 {
        match self {
            StopBits::One => 1,
            StopBits::Two => 2,
        }
    }
    pub fn toggled(self) -> StopBits {
        match self {
            StopBits::One => StopBits::Two,
            StopBits::Two => StopBits::One,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowControl {
    None,
    /// RTS/CTS.
    Hardware,
    /// XON/XOFF.
    Software,
}

impl FlowControl {
    pub fn label(self) -> &'static str {
        match self {
            FlowControl::None => "none",
            FlowControl::Hardware => "hw",
            FlowControl::Software => "sw",
        }
    }
    pub fn next(self) -> FlowControl {
        match self {
            FlowControl::None => FlowControl::Hardware,
            FlowControl::Hardware => FlowControl::Software,
            FlowControl::Software => FlowControl::None,
        }
    }
}

impl std::str::FromStr for FlowControl {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<FlowControl, SettingsError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(FlowControl::None),
            "hw" | "hardware" | "rtscts" => Ok(FlowControl::Hardware),
            "sw" | "software" | "xonxoff" => Ok(FlowControl::Software),
            _ => Err(SettingsError::BadFlow(s.to_string())),
        }
    }
}

/// Character format: data bits, parity, stop bits — written `8N1`, `7E1`, `8E2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    pub data_bits: DataBits,
    pub parity: Parity,
    pub stop_bits: StopBits,
}

impl Default for FrameFormat {
    fn default() -> Self {
        FrameFormat {
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
        }
    }
}

impl fmt::Display for FrameFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.data_bits.count(),
            self.parity.letter(),
            self.stop_bits.count()
        )
    }
}

impl std::str::FromStr for FrameFormat {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<FrameFormat, SettingsError> {
        let bad = || SettingsError::BadFormat(s.to_string());
        let b = s.trim().as_bytes();
        let [d, p, st] = b else {
            return Err(bad());
        };
        let data_bits = DataBits::from_count(d.wrapping_sub(b'0')).ok_or_else(bad)?;
        let parity = match p.to_ascii_uppercase() {
            b'N' => Parity::None,
            b'E' => Parity::Even,
            b'O' => Parity::Odd,
            b'M' => Parity::Mark,
            b'S' => Parity::Space,
            _ => return Err(bad()),
        };
        let stop_bits = match st {
            b'1' => StopBits::One,
            b'2' => StopBits::Two,
            _ => return Err(bad()),
        };
        Ok(FrameFormat {
            data_bits,
            parity,
            stop_bits,
        })
    }
}

/// Everything that configures a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineSettings {
    pub baud: Baud,
    pub format: FrameFormat,
    pub flow: FlowControl,
}

impl Default for LineSettings {
    fn default() -> Self {
        LineSettings {
            baud: Baud(115_200),
            format: FrameFormat::default(),
            flow: FlowControl::None,
        }
    }
}

impl fmt::Display for LineSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} flow {}",
            self.baud,
            self.format,
            self.flow.label()
        )
    }
}

/// Modem control outputs as last confirmed by the port (`None` where the port has none, e.g. a pty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModemLines {
    pub dtr: Option<bool>,
    pub rts: Option<bool>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SettingsError {
    #[error(
        "invalid baud rate {0}: use a rate between 50 and 12000000 bps (e.g. 9600, 115200, 74880)"
    )]
    BaudOutOfRange(String),
    #[error("invalid baud rate '{0}': give a whole number of bits per second, e.g. -b 115200")]
    BaudNotNumber(String),
    #[error(
        "invalid frame format '{0}': write data bits (5-8), parity (N, E, O, M, S) and stop bits (1, 2), e.g. 8N1 or 7E1"
    )]
    BadFormat(String),
    #[error("invalid flow control '{0}': use none, hw (RTS/CTS) or sw (XON/XOFF)")]
    BadFlow(String),
}

/// Why a connection changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Up,
    Down { reason: String },
    Retrying { reason: String },
}

/// Bytes dropped because a consumer fell behind (counted, never silent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun {
    pub dropped_bytes: u64,
}

/// Error counts the UART driver keeps since the port was opened (Linux TIOCGICOUNT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineErrorCounts {
    /// Stop bit not found where expected: typically a wrong baud rate or noise.
    pub frame: u64,
    /// The UART's receive register was overwritten before it was read.
    pub overrun: u64,
    pub parity: u64,
    /// Break conditions seen (line held low longer than a character).
    pub brk: u64,
    /// The driver's buffer was full (the reader was too slow).
    pub buf_overrun: u64,
}

impl LineErrorCounts {
    pub fn total(&self) -> u64 {
        self.frame + self.overrun + self.parity + self.brk + self.buf_overrun
    }

    /// What the counters grew by since `earlier` (a counter that went down, after the driver
    /// reset it, counts as zero).
    pub fn since(&self, earlier: &LineErrorCounts) -> LineErrorCounts {
        LineErrorCounts {
            frame: self.frame.saturating_sub(earlier.frame),
            overrun: self.overrun.saturating_sub(earlier.overrun),
            parity: self.parity.saturating_sub(earlier.parity),
            brk: self.brk.saturating_sub(earlier.brk),
            buf_overrun: self.buf_overrun.saturating_sub(earlier.buf_overrun),
        }
    }
}

/// What happened. Sources emit these; the session ingests them in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Rx(Vec<u8>),
    Tx(Vec<u8>),
    /// The line settings the port now has (an acknowledgement of a `Command`, or the initial state).
    LineSettings {
        settings: LineSettings,
        modem: ModemLines,
    },
    Connection(ConnectionState),
    /// Bytes the source had to drop because the session was not draining its channel.
    Overrun(Overrun),
    /// A break condition was sent on the line.
    BreakSent,
    /// The driver's line error counters changed (`None`: this port keeps none, e.g. a pty).
    LineErrors(Option<LineErrorCounts>),
    /// A command the source could not carry out (the port refused a setting, ...).
    CommandFailed {
        command: String,
        reason: String,
    },
    /// One command/response exchange with a smart card.
    Apdu(ApduExchange),
    /// A reader or card changed state (inserted, removed, connected, reset, ...).
    Card(CardEvent),
    /// A PC/SC call failed: the operation and its raw SCARD return code (e.g. 0x80100068).
    Pcsc {
        operation: String,
        code: u32,
    },
    /// A replay's player state changed (paused or playing, at which speed; 0 = unpaced,
    /// `--speed max`).
    Replay {
        paused: bool,
        speed: f64,
        text: String,
    },
    /// What a traced program did besides moving bytes (`hsmon trace`).
    Trace(TraceEvent),
}

/// A traced program's news that is not bytes or line settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A descriptor of the traced program, seen for the first time, on the session stream
    /// the tracer gave it: the path as the program opened it, `tcp HOST:PORT`, `udp
    /// HOST:PORT` or `unix PATH`, on this descriptor of this process. The session declares
    /// the stream from it (`Session::declare_traced`); every record of the stream then
    /// carries `stream` and `pid`.
    Stream { name: String, pid: u32, fd: i32 },
    /// A process of the traced program started (fork, vfork, clone of a process) or ran a
    /// new program (exec).
    Process {
        pid: u32,
        parent: Option<u32>,
        exec: Option<String>,
    },
    /// The program discarded what waited in the tty's queues (TCFLSH): `input`, `output` or
    /// `both`.
    Flush { queue: String },
    /// The traced program (the process hsmon started or attached to) ended.
    Exit(ProgramExit),
    /// hsmon stopped watching a program that runs on (quit, or detached after `--pid`).
    Detached { pid: u32 },
}

/// How a traced program ended: its exit status, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramExit {
    Code(i32),
    Signal(i32),
}

impl ProgramExit {
    /// The status a shell reports for it: the code, or 128 + the signal number.
    pub fn shell_status(self) -> u8 {
        match self {
            ProgramExit::Code(c) => (c & 0xff) as u8,
            ProgramExit::Signal(s) => (128 + (s & 0x7f)) as u8,
        }
    }
}

/// What the replay keys ask of the replay source.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayControl {
    TogglePause,
    /// Twice as fast.
    Faster,
    /// Half as fast.
    Slower,
    /// Pause and play exactly one event.
    Step,
    /// Play on at full speed until these bytes have arrived (in either direction), then pause.
    Find(Vec<u8>),
}

/// Why an APDU was sent: the user or script asked, or hsmon followed up a T=0 procedure status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApduOrigin {
    /// Typed by the user or sent from the control input.
    User,
    /// A script command, by its (1-based) line number.
    Script { line: u32 },
    /// GET RESPONSE (00 C0 00 00 XX) sent automatically after a 61XX.
    GetResponse,
    /// The previous command resent with Le = XX after a 6CXX.
    LeRetry,
}

impl ApduOrigin {
    pub fn label(self) -> String {
        match self {
            ApduOrigin::User => "user".to_string(),
            ApduOrigin::Script { line } => format!("script:{line}"),
            ApduOrigin::GetResponse => "get-response".to_string(),
            ApduOrigin::LeRetry => "le-retry".to_string(),
        }
    }

    /// True for the exchanges hsmon adds on its own (shown linked to the one before).
    pub fn is_follow_up(self) -> bool {
        matches!(self, ApduOrigin::GetResponse | ApduOrigin::LeRetry)
    }
}

/// A command APDU and the card's response (data followed by SW1 SW2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApduExchange {
    pub command: Vec<u8>,
    /// The response as the card returned it, SW1 SW2 last (empty if transmit failed).
    pub response: Vec<u8>,
    /// Time spent in the transmit call.
    pub duration: Duration,
    pub origin: ApduOrigin,
}

impl ApduExchange {
    /// SW1 SW2 as one number (0x9000), if the response has at least two bytes.
    pub fn sw(&self) -> Option<u16> {
        let n = self.response.len();
        (n >= 2).then(|| u16::from_be_bytes([self.response[n - 2], self.response[n - 1]]))
    }

    /// The response data without the status word.
    pub fn data(&self) -> &[u8] {
        &self.response[..self.response.len().saturating_sub(2)]
    }
}

/// How hsmon shares a card with other PC/SC applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareMode {
    Shared,
    Exclusive,
}

/// What to do with the card when a handle lets go of it (SCardDisconnect/SCardReconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardDisposition {
    /// Leave it as it is: other applications keep their state.
    Leave,
    /// Warm reset: every other handle gets SCARD_W_RESET_CARD.
    Reset,
    Unpower,
}

impl CardDisposition {
    pub fn label(self) -> &'static str {
        match self {
            CardDisposition::Leave => "SCARD_LEAVE_CARD",
            CardDisposition::Reset => "SCARD_RESET_CARD",
            CardDisposition::Unpower => "SCARD_UNPOWER_CARD",
        }
    }
}

/// A change of reader or card state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// The readers PC/SC knows about now (on start and on every hotplug).
    Readers(Vec<String>),
    /// A card is present in the reader, with its ATR.
    Inserted {
        reader: String,
        atr: Vec<u8>,
    },
    Removed {
        reader: String,
    },
    /// hsmon holds the card: the negotiated protocol ("T=0", "T=1", ...) and share mode.
    Connected {
        reader: String,
        protocol: String,
        share: ShareMode,
        atr: Vec<u8>,
    },
    /// hsmon reconnected its handle (after a foreign reset, or a reset the user asked for).
    Reconnected {
        reader: String,
        disposition: CardDisposition,
        protocol: String,
    },
    Disconnected {
        reader: String,
        disposition: CardDisposition,
    },
    /// A PC/SC transaction was begun or ended around a script run.
    Transaction {
        begun: bool,
    },
}

/// Which stream of a session an event belongs to: a port, each side of a tap, later each
/// socket or port a traced program opens. Numbered by the source, from 0; a source with one
/// stream uses [`StreamId::MAIN`] only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(pub u16);

impl StreamId {
    /// The only stream of a single-stream source (a port, a socket, a reader, a demo).
    pub const MAIN: StreamId = StreamId(0);
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What carries a stream's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Serial,
    Tcp,
    Card,
    Replay,
    Demo,
}

impl StreamKind {
    pub fn label(self) -> &'static str {
        match self {
            StreamKind::Serial => "serial",
            StreamKind::Tcp => "tcp",
            StreamKind::Card => "card",
            StreamKind::Replay => "replay",
            StreamKind::Demo => "demo",
        }
    }
}

/// A stream as its source declares it: what the user calls it and how its bytes join a
/// conversation. `direction` is `Some` when the stream carries one direction of a link (each
/// port of a tap: its bytes arrive already as that direction), `None` when it carries both
/// (one port, one socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDecl {
    pub id: StreamId,
    /// The port path, peer address or reader name.
    pub label: String,
    pub kind: StreamKind,
    /// Streams with the same link are one conversation (a tap's two ports): the engine pairs
    /// the requests of one with the answers of the other.
    pub link: u16,
    pub direction: Option<Direction>,
}

/// An Event, when it happened and on which stream.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    pub at: Timestamp,
    pub stream: StreamId,
    pub event: Event,
}

impl TimedEvent {
    /// An event on the main stream (every single-stream source).
    pub fn new(at: Timestamp, event: Event) -> TimedEvent {
        TimedEvent {
            at,
            stream: StreamId::MAIN,
            event,
        }
    }

    /// An event on `stream` (a tap's port, one of a trace's descriptors).
    pub fn on(stream: StreamId, at: Timestamp, event: Event) -> TimedEvent {
        TimedEvent { at, stream, event }
    }
}

/// An effect on a source, requested by the UI or the headless control input.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    SetBaud(Baud),
    SetFormat(FrameFormat),
    SetFlow(FlowControl),
    SetDtr(bool),
    SetRts(bool),
    /// Hold the line in break for the given time.
    SendBreak(Duration),
    Transmit(Vec<u8>),
    /// Send a command APDU to the card (a card source follows 61XX/6CXX up when enabled).
    SendApdu {
        apdu: Vec<u8>,
        origin: ApduOrigin,
    },
    /// Reconnect to the card: `Leave` only acknowledges a foreign reset, `Reset` resets it.
    Reconnect(CardDisposition),
    /// Begin (true) or end (false) a PC/SC transaction (exclusive use of the card meanwhile).
    Transaction(bool),
    /// Control a replay.
    Replay(ReplayControl),
    /// Stop the source and release the device.
    Shutdown,
}

impl Command {
    /// Short name for messages ("set baud 9600").
    pub fn describe(&self) -> String {
        match self {
            Command::SetBaud(b) => format!("set baud {b}"),
            Command::SetFormat(f) => format!("set format {f}"),
            Command::SetFlow(f) => format!("set flow {}", f.label()),
            Command::SetDtr(on) => format!("set DTR {}", on_off(*on)),
            Command::SetRts(on) => format!("set RTS {}", on_off(*on)),
            Command::SendBreak(d) => format!("send break {} ms", d.as_millis()),
            Command::Transmit(b) => format!("transmit {} bytes", b.len()),
            Command::SendApdu { apdu, .. } => format!("send APDU of {} bytes", apdu.len()),
            Command::Reconnect(d) => format!("reconnect ({})", d.label()),
            Command::Transaction(true) => "begin transaction".to_string(),
            Command::Transaction(false) => "end transaction".to_string(),
            Command::Replay(r) => format!("replay {r:?}").to_lowercase(),
            Command::Shutdown => "shut down".to_string(),
        }
    }
}

pub fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frame_format_round_trips() {
        for s in ["8N1", "7E1", "8E2", "5O1", "8M1", "8S2"] {
            let f: FrameFormat = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!("7e1".parse::<FrameFormat>().unwrap().to_string(), "7E1");
    }

    #[test]
    fn frame_format_rejects_nonsense() {
        for s in ["", "8N", "9N1", "8X1", "8N3", "8N11", "N81"] {
            assert!(s.parse::<FrameFormat>().is_err(), "{s} accepted");
        }
    }

    #[test]
    fn baud_steps_through_standard_rates() {
        let b = Baud::new(9600).unwrap();
        assert_eq!(b.step_up().bps(), 14400);
        assert_eq!(b.step_down().bps(), 7200);
        assert_eq!(Baud::new(57600).unwrap().step_up().bps(), 74880);
        assert_eq!(Baud::new(4_000_000).unwrap().step_up().bps(), 4_000_000);
        assert_eq!(Baud::new(300).unwrap().step_down().bps(), 300);
        // A custom rate steps to its standard neighbours.
        assert_eq!(Baud::new(100_000).unwrap().step_up().bps(), 115200);
        assert_eq!(Baud::new(100_000).unwrap().step_down().bps(), 76800);
    }

    #[test]
    fn baud_validates() {
        assert!("0".parse::<Baud>().is_err());
        assert!("abc".parse::<Baud>().is_err());
        assert!("20000000".parse::<Baud>().is_err());
        assert_eq!("921_600".parse::<Baud>().unwrap().bps(), 921600);
    }
}
