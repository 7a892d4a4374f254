//! What the session saw, described as plain data for the knowledge matcher (`knowledge.rs`).
//!
//! The session turns decoded frames, status words, PC/SC return codes, line counters, handshake
//! divergences and TLS probe results into [`Observation`]s; `Knowledge::matches` answers with the
//! knowledge entries whose `when` conditions hold. Nothing here decides what an observation
//! *means*: that lives in `assets/knowledge.toml`, so a user file can add or correct it.
//!
//! The only decoder type used is [`crate::decode::frame`] (protocol ids, frame status), so this
//! module does not depend on any particular decoder's API.

use crate::decode::frame::{Frame, FrameStatus, Protocol};
use crate::event::{Direction, LineErrorCounts};

/// The longest byte prefix an observation keeps (frame bytes, handshake replies, TLS replies).
/// Knowledge conditions match prefixes, and no pattern may be longer than this.
pub const MAX_OBSERVED_BYTES: usize = 64;

/// One thing the session noticed. Each variant is one `observation = "..."` kind in the
/// knowledge file (see [`ObservationKind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// An ISO 7816-4 status word returned by a card (`observation = "sw"`).
    StatusWord(StatusWordSeen),
    /// A PC/SC API return code (`observation = "pcsc"`), e.g. 0x80100068. Not a byte on the wire.
    Pcsc {
        /// The `LONG` return code as an unsigned 32-bit value.
        code: u32,
    },
    /// A decoded frame (`observation = "frame"`).
    Frame(FrameSeen),
    /// UART error counters over a window (`observation = "line_errors"`), e.g. `TIOCGICOUNT` deltas.
    LineErrors(LineErrorWindow),
    /// The baud estimator suspects the configured rate is wrong (`observation = "baud"`).
    Baud(BaudSuspect),
    /// Bytes that differ only in bit 7 were seen where the same character was meant, e.g. 0x68
    /// and 0xE8 (`observation = "bit7"`). `byte` is the 7-bit value (bit 7 cleared).
    SevenBitPair {
        /// The character with bit 7 cleared (0x68 for the 0x68/0xE8 pair).
        byte: u8,
    },
    /// A single byte that arrived alone on an otherwise idle line (`observation = "isolated_byte"`).
    IsolatedByte {
        /// The byte value read.
        byte: u8,
        /// Whether the UART flagged a framing error on it.
        framing_error: bool,
    },
    /// The same byte value seen again and again (`observation = "repeated_byte"`).
    RepeatedByte {
        /// The repeated byte value.
        byte: u8,
        /// How many times it was seen in the window.
        count: u64,
        /// How many of those occurrences carried a framing error.
        framing_errors: u64,
    },
    /// A handshake profile got something other than what it expected (`observation = "handshake"`).
    Handshake(HandshakeDivergence),
    /// The result of `hsmon probe tls` or of a TLS connection attempt (`observation = "tls_probe"`).
    TlsProbe(TlsProbeResult),
}

/// The observation kinds, one per [`Observation`] variant, with their knowledge-file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationKind {
    /// `"sw"`: [`Observation::StatusWord`].
    StatusWord,
    /// `"pcsc"`: [`Observation::Pcsc`].
    Pcsc,
    /// `"frame"`: [`Observation::Frame`].
    Frame,
    /// `"line_errors"`: [`Observation::LineErrors`].
    LineErrors,
    /// `"baud"`: [`Observation::Baud`].
    Baud,
    /// `"bit7"`: [`Observation::SevenBitPair`].
    SevenBitPair,
    /// `"isolated_byte"`: [`Observation::IsolatedByte`].
    IsolatedByte,
    /// `"repeated_byte"`: [`Observation::RepeatedByte`].
    RepeatedByte,
    /// `"handshake"`: [`Observation::Handshake`].
    Handshake,
    /// `"tls_probe"`: [`Observation::TlsProbe`].
    TlsProbe,
}

impl ObservationKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [ObservationKind; 10] = [
        ObservationKind::StatusWord,
        ObservationKind::Pcsc,
        ObservationKind::Frame,
        ObservationKind::LineErrors,
        ObservationKind::Baud,
        ObservationKind::SevenBitPair,
        ObservationKind::IsolatedByte,
        ObservationKind::RepeatedByte,
        ObservationKind::Handshake,
        ObservationKind::TlsProbe,
    ];

    /// The stable name used as `observation = "..."` in knowledge conditions.
    pub fn id(self) -> &'static str {
        match self {
            ObservationKind::StatusWord => "sw",
            ObservationKind::Pcsc => "pcsc",
            ObservationKind::Frame => "frame",
            ObservationKind::LineErrors => "line_errors",
            ObservationKind::Baud => "baud",
            ObservationKind::SevenBitPair => "bit7",
            ObservationKind::IsolatedByte => "isolated_byte",
            ObservationKind::RepeatedByte => "repeated_byte",
            ObservationKind::Handshake => "handshake",
            ObservationKind::TlsProbe => "tls_probe",
        }
    }

    /// Parse an `id()` string.
    pub fn from_id(s: &str) -> Option<ObservationKind> {
        ObservationKind::ALL.into_iter().find(|k| k.id() == s)
    }

    /// Index into per-kind tables (0 ..= 9, in `ALL` order).
    pub(crate) fn index(self) -> usize {
        match self {
            ObservationKind::StatusWord => 0,
            ObservationKind::Pcsc => 1,
            ObservationKind::Frame => 2,
            ObservationKind::LineErrors => 3,
            ObservationKind::Baud => 4,
            ObservationKind::SevenBitPair => 5,
            ObservationKind::IsolatedByte => 6,
            ObservationKind::RepeatedByte => 7,
            ObservationKind::Handshake => 8,
            ObservationKind::TlsProbe => 9,
        }
    }
}

impl Observation {
    /// Which `observation = "..."` kind this is.
    pub fn kind(&self) -> ObservationKind {
        match self {
            Observation::StatusWord(_) => ObservationKind::StatusWord,
            Observation::Pcsc { .. } => ObservationKind::Pcsc,
            Observation::Frame(_) => ObservationKind::Frame,
            Observation::LineErrors(_) => ObservationKind::LineErrors,
            Observation::Baud(_) => ObservationKind::Baud,
            Observation::SevenBitPair { .. } => ObservationKind::SevenBitPair,
            Observation::IsolatedByte { .. } => ObservationKind::IsolatedByte,
            Observation::RepeatedByte { .. } => ObservationKind::RepeatedByte,
            Observation::Handshake(_) => ObservationKind::Handshake,
            Observation::TlsProbe(_) => ObservationKind::TlsProbe,
        }
    }

    /// Shorthand for a status word whose command is unknown.
    pub fn sw(sw: u16) -> Observation {
        Observation::StatusWord(StatusWordSeen {
            sw,
            cla: None,
            ins: None,
        })
    }
}

/// A status word and, when the session saw the command, its CLA and INS bytes (the CLA explains
/// most 68XX answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWordSeen {
    /// SW1 in the high byte, SW2 in the low byte (0x6882).
    pub sw: u16,
    /// CLA of the command this status word answers, if known.
    pub cla: Option<u8>,
    /// INS of the command this status word answers, if known.
    pub ins: Option<u8>,
}

/// A decoded frame as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSeen {
    /// The decoder that produced the frame (`protocol = "mbus"` in conditions).
    pub protocol: Protocol,
    /// The decoder's kind label (`Frame::kind`: "long", "short", "ack", "i", "u", "atr", ...).
    pub kind: String,
    /// How the frame checked out (`status = "ok" | "bad_checksum" | "truncated" | "malformed"`).
    pub status: FrameStatus,
    /// Which way the frame travelled.
    pub direction: Direction,
    /// The frame's first bytes (at most [`MAX_OBSERVED_BYTES`]); for DL/T 645 without the
    /// optional `FE` wake-up preamble, so that conditions can rely on `68` at offset 0.
    pub bytes: Vec<u8>,
    /// The frame is byte-for-byte what hsmon (or the master being watched) just transmitted.
    pub echo: bool,
    /// What a handshake profile expected at this point (e.g. `[0xE5]`), if one is running.
    pub expected: Option<Vec<u8>>,
}

impl FrameSeen {
    /// Describe a decoded frame. `bytes` are the frame's bytes (its span in the stream); `echo`
    /// and `expected` start unset, see [`FrameSeen::with_echo`] and [`FrameSeen::with_expected`].
    pub fn from_frame(frame: &Frame, direction: Direction, bytes: &[u8]) -> FrameSeen {
        FrameSeen {
            protocol: frame.protocol,
            kind: frame.kind.to_string(),
            status: frame.status.clone(),
            direction,
            bytes: observed_frame_bytes(frame.protocol, bytes),
            echo: false,
            expected: None,
        }
    }

    /// A frame built field by field (tests, replayed diagnoses). Status `Ok`, direction rx.
    pub fn new(protocol: Protocol, kind: &str, bytes: &[u8]) -> FrameSeen {
        FrameSeen {
            protocol,
            kind: kind.to_string(),
            status: FrameStatus::Ok,
            direction: Direction::Rx,
            bytes: observed_frame_bytes(protocol, bytes),
            echo: false,
            expected: None,
        }
    }

    /// Set the frame's check status.
    pub fn with_status(mut self, status: FrameStatus) -> FrameSeen {
        self.status = status;
        self
    }

    /// Set the direction.
    pub fn with_direction(mut self, direction: Direction) -> FrameSeen {
        self.direction = direction;
        self
    }

    /// Mark the frame as an echo of the last transmitted bytes (or not).
    pub fn with_echo(mut self, echo: bool) -> FrameSeen {
        self.echo = echo;
        self
    }

    /// Record what a handshake profile expected at this point.
    pub fn with_expected(mut self, expected: &[u8]) -> FrameSeen {
        self.expected = Some(truncated(expected));
        self
    }
}

/// DL/T 645 frames may carry 0–4 `FE` wake-up bytes; conditions are written against the `68`
/// start, so drop them here rather than in every pattern.
fn observed_frame_bytes(protocol: Protocol, bytes: &[u8]) -> Vec<u8> {
    let start = if protocol == Protocol::Dlt645 {
        bytes.iter().take_while(|&&b| b == 0xFE).count()
    } else {
        0
    };
    truncated(bytes.get(start..).unwrap_or(&[]))
}

fn truncated(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().take(MAX_OBSERVED_BYTES).copied().collect()
}

/// UART error counters accumulated over a window of received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineErrorWindow {
    /// Bytes received in the window.
    pub bytes: u64,
    /// How many of each error the driver counted over the window (a difference of two
    /// readings of its counters).
    pub errors: LineErrorCounts,
    /// Every framing error fell on a byte with an even number of 1 bits: the signature of an
    /// 8E1 sender read at 8N1.
    pub fe_even_popcount_only: bool,
}

/// A suspicion that the configured baud rate is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaudSuspect {
    /// The rate the port is set to, in bit/s.
    pub configured: u32,
    /// The estimator's best guess of the sender's real rate, in bit/s, if it has one.
    pub estimated: Option<u32>,
}

impl BaudSuspect {
    /// How far the configured rate is from the estimated one, in percent of the estimate.
    pub fn deviation_pct(&self) -> Option<f64> {
        let est = self.estimated.filter(|&e| e > 0)?;
        let diff = f64::from(self.configured.abs_diff(est));
        Some(diff * 100.0 / f64::from(est))
    }
}

/// A handshake profile step whose answer was not the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeDivergence {
    /// The profile id, e.g. "mtk-brom", "stm32", "esp", "mbus", "iec104", "bm13xx".
    pub profile: String,
    /// The step name within the profile, e.g. "start", "init", "sync", "baud-switch".
    pub step: String,
    /// What hsmon sent in this step.
    pub sent: Vec<u8>,
    /// What the profile expected back.
    pub expected: Vec<u8>,
    /// What actually came back before the step's timeout (empty: nothing).
    pub got: Vec<u8>,
}

impl HandshakeDivergence {
    /// Build a divergence record; byte sequences are cut to [`MAX_OBSERVED_BYTES`].
    pub fn new(
        profile: &str,
        step: &str,
        sent: &[u8],
        expected: &[u8],
        got: &[u8],
    ) -> HandshakeDivergence {
        HandshakeDivergence {
            profile: profile.to_string(),
            step: step.to_string(),
            sent: truncated(sent),
            expected: truncated(expected),
            got: truncated(got),
        }
    }
}

/// What a peer answered when hsmon (or the user's client) spoke TLS to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsProbeResult {
    /// The TCP port probed, if known.
    pub port: Option<u16>,
    /// The URL scheme the user's client used ("https", "wss", "ws", ...), if known.
    pub scheme: Option<String>,
    /// The first bytes the peer sent back (empty: it closed or stayed silent).
    pub reply: Vec<u8>,
}

impl TlsProbeResult {
    /// Build a probe result; the reply is cut to [`MAX_OBSERVED_BYTES`].
    pub fn new(port: Option<u16>, scheme: Option<&str>, reply: &[u8]) -> TlsProbeResult {
        TlsProbeResult {
            port,
            scheme: scheme.map(str::to_string),
            reply: truncated(reply),
        }
    }

    /// The reply starts like a TLS record: content type 0x14–0x1A, then major version 3.
    pub fn looks_tls(&self) -> bool {
        match self.reply.as_slice() {
            [] => false,
            [t] => (0x14..=0x1A).contains(t),
            [t, major, ..] => (0x14..=0x1A).contains(t) && *major == 0x03,
        }
    }
}

/// Printable ASCII (space to `~`) plus tab, CR and LF, and at least one byte: what a boot log,
/// a shell or an application prints.
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7E).contains(&b) || matches!(b, b'\t' | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_index_in_order() {
        for (i, k) in ObservationKind::ALL.into_iter().enumerate() {
            assert_eq!(ObservationKind::from_id(k.id()), Some(k));
            assert_eq!(k.index(), i);
        }
        assert_eq!(ObservationKind::from_id("nope"), None);
    }

    #[test]
    fn dlt645_preamble_is_stripped_and_bytes_are_bounded() {
        let f = FrameSeen::new(Protocol::Dlt645, "frame", &[0xFE, 0xFE, 0x68, 0x01]);
        assert_eq!(f.bytes, vec![0x68, 0x01]);
        let m = FrameSeen::new(Protocol::Mbus, "long", &[0xFE, 0x68]);
        assert_eq!(m.bytes, vec![0xFE, 0x68]);
        let long = FrameSeen::new(Protocol::Text, "line", &[b'h'; 500]);
        assert_eq!(long.bytes.len(), MAX_OBSERVED_BYTES);
    }

    #[test]
    fn tls_shape_and_text_predicates() {
        assert!(TlsProbeResult::new(None, None, &[0x16, 0x03, 0x03]).looks_tls());
        assert!(!TlsProbeResult::new(None, None, b"HTTP/1.1 400").looks_tls());
        assert!(!TlsProbeResult::new(None, None, &[0x68, 0x04]).looks_tls());
        assert!(!TlsProbeResult::new(None, None, &[]).looks_tls());
        assert!(is_text(b"hello\r\n"));
        assert!(!is_text(&[0x68, 0x04, 0x0B]));
        assert!(!is_text(&[]));
    }

    #[test]
    fn baud_deviation_is_relative_to_the_estimate() {
        let b = BaudSuspect {
            configured: 115_200,
            estimated: Some(9600),
        };
        assert_eq!(b.deviation_pct(), Some(1100.0));
        let none = BaudSuspect {
            configured: 9600,
            estimated: None,
        };
        assert_eq!(none.deviation_pct(), None);
    }
}
