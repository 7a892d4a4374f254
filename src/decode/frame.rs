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

use std::fmt;
use std::ops::Range;

use once_cell::race::OnceBox;

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

/// What a frame says in words: its one-line summary and its field tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description {
    /// One line for the frames pane, e.g. "SND_UD A=1 CI=51 (3 data bytes)".
    pub summary: String,
    pub fields: Vec<Field>,
}

/// How much of a description to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// The summary alone: what a printed record or a diagnosis text reads, once. A describe
    /// function may leave `fields` empty (and skip their cost) but must write the same summary
    /// as for `Full`; one that has no cheaper way may build everything.
    Summary,
    /// Summary and field tree.
    Full,
}

/// Builds a deferred frame's description from the frame, the bytes its framer kept, the
/// framer's note (see [`Frame::deferred`]) and how much is wanted.
pub(crate) type Describe = fn(&Frame, &[u8], u32, Detail) -> Description;

/// Bytes a deferred frame keeps to describe itself later: inline when short (most frames),
/// on the heap otherwise.
#[derive(Clone)]
enum KeptBytes {
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
    Heap(Box<[u8]>),
}

/// Longest byte run a frame keeps without a heap allocation (an M-Bus long frame with a
/// short record, a DL/T 645 reading, every IEC 104 U/S frame, a short log line). As many as
/// keep a `Frame` at 128 bytes: framers push one every few dozen bytes of a busy stream,
/// and up to 128 bytes a move is a few vector stores instead of a `memcpy` call.
const INLINE_BYTES: usize = 46;

impl KeptBytes {
    const EMPTY: KeptBytes = KeptBytes::Inline {
        len: 0,
        bytes: [0; INLINE_BYTES],
    };

    fn new(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE_BYTES => {
                let mut inline = [0u8; INLINE_BYTES];
                if let Some(head) = inline.get_mut(..bytes.len()) {
                    head.copy_from_slice(bytes);
                }
                KeptBytes::Inline { len, bytes: inline }
            }
            _ => KeptBytes::Heap(bytes.into()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            KeptBytes::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            KeptBytes::Heap(bytes) => bytes,
        }
    }

    /// Bytes on the heap (0 when inline).
    fn heap(&self) -> usize {
        match self {
            KeptBytes::Inline { .. } => 0,
            KeptBytes::Heap(bytes) => bytes.len(),
        }
    }
}

/// A decoded frame.
///
/// Why the description is deferred: framers run over every byte of every direction and most
/// frames are never looked at, so building their summaries and field trees (a dozen strings
/// each) would cost far more than finding them. A framer records what it decided (protocol,
/// span, kind, status) and the few bytes the description needs; [`Frame::summary`] and
/// [`Frame::fields`] build the description on first use and keep it. A describe function
/// reads the frame's span and status (field spans, " — truncated"), so code that changes
/// them on a frame not yet described changes its words too (`stream::truncate_frame`
/// describes first and builds a new frame).
#[derive(Clone)]
pub struct Frame {
    pub protocol: Protocol,
    /// Absolute stream offsets of the whole frame.
    pub span: Range<StreamOffset>,
    /// A short kind label, stable enough for knowledge conditions: "long", "short", "ack",
    /// "i", "s", "u", "command", "response", "atr", "pps", "line", ...
    pub kind: &'static str,
    pub status: FrameStatus,
    // How a deferred frame describes itself: the protocol's function (`None` for a frame
    // built with its description), the bytes it reads and a protocol-specific note (a check
    // result, a context flag). Kept flat, not in a struct of their own, for the 128 bytes.
    describe: Option<Describe>,
    kept: KeptBytes,
    note: u32,
    /// The description once built (at once for `Frame::new`).
    described: OnceBox<Description>,
}

impl Frame {
    /// A frame whose summary and fields are already known.
    pub fn new(
        protocol: Protocol,
        span: Range<StreamOffset>,
        kind: &'static str,
        status: FrameStatus,
        summary: String,
        fields: Vec<Field>,
    ) -> Self {
        Frame {
            protocol,
            span,
            kind,
            status,
            describe: None,
            kept: KeptBytes::EMPTY,
            note: 0,
            described: OnceBox::with_value(Box::new(Description { summary, fields })),
        }
    }

    /// A frame described on demand by `describe(&frame, bytes, note)`. `bytes` (copied) must
    /// hold everything the description reads; `describe` must not depend on anything else
    /// but the frame's public fields, so that equal inputs give equal descriptions.
    pub(crate) fn deferred(
        protocol: Protocol,
        span: Range<StreamOffset>,
        kind: &'static str,
        status: FrameStatus,
        describe: Describe,
        bytes: &[u8],
        note: u32,
    ) -> Self {
        Frame {
            protocol,
            span,
            kind,
            status,
            describe: Some(describe),
            kept: KeptBytes::new(bytes),
            note,
            described: OnceBox::new(),
        }
    }

    /// The summary and field tree, built on first use.
    pub fn description(&self) -> &Description {
        self.described
            .get_or_init(|| Box::new(self.describe(Detail::Full)))
    }

    /// The description if something already built it (nothing is built here).
    pub fn built_description(&self) -> Option<&Description> {
        self.described.get()
    }

    /// The summary for a reader that needs it once (a printed record, a diagnosis text): the
    /// kept description's if it is built, else the summary alone, built and not kept. A frame
    /// printed and never looked at again so costs neither its field tree nor the memory to
    /// hold it; the frames pane and detail view use [`Frame::summary`], which keeps it.
    pub fn summary_once(&self) -> std::borrow::Cow<'_, str> {
        match self.described.get() {
            Some(d) => std::borrow::Cow::Borrowed(d.summary.as_str()),
            None => std::borrow::Cow::Owned(self.describe(Detail::Summary).summary),
        }
    }

    /// The bytes a deferred frame kept for its description, and its framer's note (`None`
    /// for a frame built with its description). Lets a decoder decide from the bytes what it
    /// would otherwise read back from the field tree (`mbus::looks_like_mbus`).
    pub(crate) fn kept_bytes(&self) -> Option<(&[u8], u32)> {
        self.describe.map(|_| (self.kept.as_slice(), self.note))
    }

    /// Heap the frame's kept bytes take (0 when they are inline), for memory accounting.
    pub fn kept_heap(&self) -> usize {
        self.kept.heap()
    }

    /// One line for the frames pane, e.g. "SND_UD A=1 CI=51 (3 data bytes)".
    pub fn summary(&self) -> &str {
        &self.description().summary
    }

    /// The frame's named parts, with the bytes each covers.
    pub fn fields(&self) -> &[Field] {
        &self.description().fields
    }

    /// Summary and fields, taken out of the frame.
    pub fn into_description(self) -> Description {
        match self.described.get() {
            Some(described) => described.clone(),
            None => self.describe(Detail::Full),
        }
    }

    fn describe(&self, detail: Detail) -> Description {
        match self.describe {
            Some(describe) => describe(self, self.kept.as_slice(), self.note, detail),
            None => Description::default(),
        }
    }
}

/// Frames are equal when everything they say is: a deferred frame equals an eagerly built one
/// with the same description (comparing describes both).
impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.protocol == other.protocol
            && self.span == other.span
            && self.kind == other.kind
            && self.status == other.status
            && self.description() == other.description()
    }
}

impl Eq for Frame {}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("protocol", &self.protocol)
            .field("span", &self.span)
            .field("kind", &self.kind)
            .field("summary", &self.summary())
            .field("status", &self.status)
            .field("fields", &self.fields())
            .finish()
    }
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
    /// Stream offset of the first byte this framer still holds as the possible start of a
    /// frame (None: nothing pending). Every frame it reports later starts at or after it,
    /// so arbitration knows which held frames a longer candidate may still cover.
    fn pending_from(&self) -> Option<StreamOffset> {
        None
    }
    /// The highest rank the pending candidate could still reach (see `decode::evidence`):
    /// by default the strongest frame of the protocol; a framer that knows its candidate can
    /// only become a weaker kind says so, and frames ranked above that need not wait for it.
    fn pending_max_rank(&self) -> super::evidence::Rank {
        super::evidence::max_rank(self.protocol())
    }
    /// A second candidate inside the pending one that may reach a higher rank, from a later
    /// offset (a text line's clean tail after its last control byte).
    fn pending_tail(&self) -> Option<(StreamOffset, super::evidence::Rank)> {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn describe_two(frame: &Frame, bytes: &[u8], note: u32, detail: Detail) -> Description {
        Description {
            summary: format!("{} bytes, note {note}", bytes.len()),
            fields: match detail {
                Detail::Summary => Vec::new(),
                Detail::Full => vec![Field::new("all", "the frame", frame.span.clone())],
            },
        }
    }

    /// The frame stays within 128 bytes (see `INLINE_BYTES`): a field added to it should be
    /// a decision, not an accident.
    /// The knowledge index numbers slots by `protocol as usize`, counting on `ALL` listing
    /// every variant in declaration order.
    #[test]
    fn protocol_numbers_are_their_places_in_all() {
        for (i, p) in Protocol::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?}");
        }
        // A variant added after the last one would be numbered ALL.len(): none is.
        assert!(
            Protocol::ALL
                .iter()
                .all(|p| (*p as usize) < Protocol::ALL.len())
        );
    }

    #[test]
    fn frame_is_at_most_128_bytes() {
        assert!(std::mem::size_of::<Frame>() <= 128);
    }

    #[test]
    fn deferred_frames_describe_themselves_and_equal_built_ones() {
        for len in [0usize, 3, INLINE_BYTES, INLINE_BYTES + 1, 300] {
            let bytes = vec![0x68u8; len];
            let deferred = Frame::deferred(
                Protocol::Mbus,
                5..9,
                "long",
                FrameStatus::Ok,
                describe_two,
                &bytes,
                7,
            );
            let built = Frame::new(
                Protocol::Mbus,
                5..9,
                "long",
                FrameStatus::Ok,
                format!("{len} bytes, note 7"),
                vec![Field::new("all", "the frame", 5..9)],
            );
            assert_eq!(deferred.summary(), format!("{len} bytes, note 7"));
            assert_eq!(deferred, built);
            assert_eq!(
                deferred.clone().into_description(),
                built.into_description()
            );
            assert_eq!(format!("{deferred:?}"), format!("{:?}", deferred.clone()));
        }
    }

    #[test]
    fn summary_once_builds_nothing_it_keeps() {
        let bytes = vec![0x68u8; INLINE_BYTES + 10];
        let frame = Frame::deferred(
            Protocol::Mbus,
            5..9,
            "long",
            FrameStatus::Ok,
            describe_two,
            &bytes,
            7,
        );
        assert_eq!(frame.kept_heap(), bytes.len());
        assert_eq!(frame.kept_bytes(), Some((&bytes[..], 7)));
        assert_eq!(
            frame.summary_once(),
            format!("{} bytes, note 7", bytes.len())
        );
        assert!(frame.built_description().is_none(), "nothing kept");
        // Once described, the kept summary is the one read.
        assert_eq!(frame.fields().len(), 1);
        assert!(matches!(
            frame.summary_once(),
            std::borrow::Cow::Borrowed(s) if s == frame.summary()
        ));
        let built = Frame::new(
            Protocol::Text,
            0..1,
            "line",
            FrameStatus::Ok,
            "x".into(),
            vec![],
        );
        assert_eq!(built.kept_bytes(), None);
        assert_eq!(built.kept_heap(), 0);
        assert_eq!(built.summary_once(), "x");
    }
}
