//! Shared decoder types: protocols, frames, fields with byte spans, and the streaming `Framer` trait.
//!
//! Rules every decoder here follows (they are what the fuzz targets and proptests check):
//! - no I/O, no clock, no tokio/crossterm/ratatui; time is passed in by the caller;
//! - never panic on any input, never index out of bounds;
//! - streaming framers carry partial input across `feed` calls, so feeding a stream in
//!   pieces yields the same frames as feeding it whole;
//! - spans are absolute offsets into the session's byte stream of one direction
//!   ([`StreamOffset`]), so any frame can highlight its bytes in the hex pane;
//! - framers report only frames they recognise (valid, or plausibly started but corrupt);
//!   bytes that belong to no frame are skipped silently; the session works out gaps.

use std::ops::Range;

/// Absolute byte position in one direction's stream of a session (0 = first byte received).
pub type StreamOffset = u64;

/// Which protocol a frame belongs to. The `id()` string is stable: it appears in the
/// headless JSON output, in `--protocol` arguments and in knowledge-file conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// ISO 7816-4 command or response APDU (from PC/SC or a T=0/T=1 line).
    Apdu,
    /// ISO 7816-3 Answer To Reset.
    Atr,
    /// ISO 7816-3 character-level traffic on a raw serial line (T=0 procedure bytes, PPS, T=1 blocks).
    Iso7816Line,
    /// EN 13757-2 wired M-Bus link layer.
    Mbus,
    /// IEC 60870-5-101 FT1.2 framing.
    Iec101,
    /// IEC 60870-5-104 APCI over TCP.
    Iec104,
    /// DL/T 645-2007 meter protocol.
    Dlt645,
    /// MediaTek BootROM start handshake.
    MtkBrom,
    /// STM32 system-memory USART bootloader (AN3155).
    Stm32Boot,
    /// ESP8266/ESP32 ROM loader, SLIP-framed.
    EspSlip,
    /// TLS record layer header.
    Tls,
    /// Plain HTTP (often met where TLS was expected).
    Http,
    /// Printable text lines (boot logs, AT commands, shells).
    Text,
}

impl Protocol {
    /// Every protocol, in the order `--protocol` help and tables list them.
    pub const ALL: [Protocol; 13] = [
        Protocol::Apdu,
        Protocol::Atr,
        Protocol::Iso7816Line,
        Protocol::Mbus,
        Protocol::Iec101,
        Protocol::Iec104,
        Protocol::Dlt645,
        Protocol::MtkBrom,
        Protocol::Stm32Boot,
        Protocol::EspSlip,
        Protocol::Tls,
        Protocol::Http,
        Protocol::Text,
    ];

    /// Stable identifier (lower case, no spaces).
    pub fn id(self) -> &'static str {
        match self {
            Protocol::Apdu => "apdu",
            Protocol::Atr => "atr",
            Protocol::Iso7816Line => "iso7816-3",
            Protocol::Mbus => "mbus",
            Protocol::Iec101 => "iec101",
            Protocol::Iec104 => "iec104",
            Protocol::Dlt645 => "dlt645",
            Protocol::MtkBrom => "mtk-brom",
            Protocol::Stm32Boot => "stm32",
            Protocol::EspSlip => "esp-slip",
            Protocol::Tls => "tls",
            Protocol::Http => "http",
            Protocol::Text => "text",
        }
    }

    /// Human name for panes and reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Apdu => "ISO 7816-4 APDU",
            Protocol::Atr => "ISO 7816-3 ATR",
            Protocol::Iso7816Line => "ISO 7816-3 line",
            Protocol::Mbus => "M-Bus",
            Protocol::Iec101 => "IEC 60870-5-101",
            Protocol::Iec104 => "IEC 60870-5-104",
            Protocol::Dlt645 => "DL/T 645",
            Protocol::MtkBrom => "MediaTek BROM",
            Protocol::Stm32Boot => "STM32 bootloader",
            Protocol::EspSlip => "ESP ROM (SLIP)",
            Protocol::Tls => "TLS",
            Protocol::Http => "HTTP",
            Protocol::Text => "text",
        }
    }

    /// Parse an `id()` string (as given to `--protocol`).
    pub fn from_id(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.id() == s)
    }
}

/// How well a frame checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameStatus {
    /// Structure and checksum (where the protocol has one) are right.
    Ok,
    /// Structure is right, the checksum is not.
    BadChecksum { expected: u32, found: u32 },
    /// A plausible start was seen but the stream ended or was interrupted before the frame did.
    Truncated,
    /// A plausible start with a structural error (wrong length byte, missing end byte, ...).
    Malformed(String),
}

impl FrameStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, FrameStatus::Ok)
    }
}

/// One named piece of a frame, with the bytes it covers and optional sub-fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Short label, e.g. "C", "L", "SW1", "CI".
    pub name: String,
    /// Decoded value for humans, e.g. "0x53 SND_UD (FCB=0)".
    pub value: String,
    /// Absolute stream offsets of the bytes this field covers (may be empty for derived fields).
    pub span: Range<StreamOffset>,
    pub children: Vec<Field>,
}

impl Field {
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
        span: Range<StreamOffset>,
    ) -> Self {
        Field {
            name: name.into(),
            value: value.into(),
            span,
            children: Vec::new(),
        }
    }

    pub fn with_children(mut self, children: Vec<Field>) -> Self {
        self.children = children;
        self
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub protocol: Protocol,
    /// Absolute stream offsets of the whole frame.
    pub span: Range<StreamOffset>,
    /// A short kind label, stable enough for knowledge conditions: "long", "short", "ack",
    /// "i", "s", "u", "command", "response", "atr", "pps", "line", ...
    pub kind: &'static str,
    /// One line for the frames pane, e.g. "SND_UD A=1 CI=51 (3 data bytes)".
    pub summary: String,
    pub status: FrameStatus,
    pub fields: Vec<Field>,
}

/// A streaming framer: one instance per protocol and per direction of a session.
///
/// `feed` is given consecutive chunks of one direction's stream; `offset` is the stream
/// offset of `bytes[0]`. A framer holds at most a bounded amount of pending input (the
/// longest frame of its protocol) and drops the oldest when a start turns out false.
pub trait Framer: Send {
    fn protocol(&self) -> Protocol;
    fn feed(&mut self, offset: StreamOffset, bytes: &[u8], out: &mut Vec<Frame>);
    /// Report a frame that is still pending as `Truncated` (end of input, or a long idle gap).
    fn flush(&mut self, out: &mut Vec<Frame>);
    /// Forget all pending input (after a reconnect or a settings change).
    fn reset(&mut self);
}
