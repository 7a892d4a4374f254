//! FT1.2 link-layer framing shared by M-Bus (EN 13757-2) and IEC 60870-5-101: recognises
//! `E5`, `10 C A CS 16` and `68 L L 68 C … CS 16` and checks length, checksum and stop byte;
//! `mbus.rs` and `iec101.rs` give the bytes their meaning.
//!
//! Source: EN 13757-2 (libmbus `mbus_parse`/`mbus_frame_verify`) and IEC 60870-5-1/-2 (lib60870
//! `link_layer.c`): CS is the byte sum modulo 256 from C to the end of user data; L is the
//! number of bytes from C to the end of user data, sent twice.

use wide::u8x16;

use super::frame::{Field, FrameStatus, StreamOffset};
use super::stream::{Lanes, find_starts, lanes_eq, span, sum8};

/// Single control character: positive acknowledgement.
pub(crate) const SINGLE_CHAR: u8 = 0xE5;
/// Start of a fixed-length (short) frame.
pub(crate) const START_FIXED: u8 = 0x10;
/// Start of a variable-length (long/control) frame, sent at offset 0 and 3.
pub(crate) const START_VARIABLE: u8 = 0x68;
/// End of every fixed and variable frame.
pub(crate) const STOP: u8 = 0x16;
/// Longest FT1.2 frame: 68 L L 68 + 255 bytes + CS 16.
pub(crate) const MAX_FRAME: usize = 4 + 255 + 2;

/// Which of the three FT1.2 formats a frame has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Single,
    Fixed,
    Variable,
}

/// How the framing checks came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Ok,
    /// Stop byte in place, checksum wrong.
    BadChecksum {
        expected: u8,
        found: u8,
    },
    /// Checksum right, but the byte where 0x16 belongs is something else.
    MissingStop {
        found: u8,
    },
    /// `68 L1 L2 68` with L1 != L2.
    LengthMismatch {
        first: u8,
        second: u8,
    },
    /// L is below what the format allows (`minimum` bytes from C on).
    LengthTooShort {
        length: u8,
        minimum: u8,
    },
    /// Header right, but neither checksum nor stop byte where L says: the frame was cut short
    /// or L is wrong. Only the header is reported.
    NoEnd,
    /// The stream ended inside the frame.
    Truncated,
}

/// One recognised FT1.2 frame, relative to the window it was found in.
pub(crate) struct RawFrame<'a> {
    pub shape: Shape,
    /// Bytes the frame's span covers (from the start byte).
    pub bytes: &'a [u8],
    /// Bytes from C to the end of user data that are present (may be short if truncated).
    pub user: &'a [u8],
    /// Index of `user[0]` in `bytes` (1 for fixed, 4 for variable).
    pub user_start: usize,
    pub check: Check,
    /// How far scanning moves on after this frame.
    pub consumed: usize,
}

pub(crate) enum Recognised<'a> {
    Need,
    Skip(usize),
    Frame(RawFrame<'a>),
}

/// Index of the next byte that can start an FT1.2 frame.
///
/// A 0x68 counts only when the byte three later is 0x68 too (or has not arrived yet): the
/// ASCII `h` of running text is dropped here instead of in `recognise`.
pub(crate) fn next_start(bytes: &[u8]) -> Option<usize> {
    find_starts(bytes, START_AHEAD, start_hits, is_start)
}

/// Bytes after a position [`start_hits`] reads.
const START_AHEAD: usize = 3;

/// [`is_start`] for sixteen positions at a time (see [`find_starts`]).
fn start_hits(lanes: &Lanes<'_>) -> u8x16 {
    let first = lanes.at(0);
    lanes_eq(first, SINGLE_CHAR)
        | lanes_eq(first, START_FIXED)
        | (lanes_eq(first, START_VARIABLE) & lanes_eq(lanes.at(3), START_VARIABLE))
}

/// Can a frame start at `rest[0]`? (68 only with 68 three bytes later, or too few bytes.)
fn is_start(rest: &[u8]) -> bool {
    match rest {
        [START_VARIABLE, _, _, fourth, ..] => *fourth == START_VARIABLE,
        [first, ..] => matches!(*first, SINGLE_CHAR | START_FIXED | START_VARIABLE),
        [] => false,
    }
}

/// Recognise the FT1.2 frame starting at `window[0]`, if any.
///
/// `fixed_address_len` is the link-address size of fixed frames (0, 1 or 2 octets; M-Bus 1).
/// `min_length` is the smallest L the protocol allows (M-Bus 3, IEC 101 1 + address size).
/// Decisions never depend on bytes past the frame, so they are the same however the stream
/// is split. A damaged frame moves scanning on only past its first start byte(s) when it
/// could be hiding a real frame (see `consumed`).
/// Where the last header-only frame (a long-frame header with neither checksum nor stop
/// byte where its L says) would have ended: a header found inside it is not reported. One of
/// the two is a false start, and the first already shows those bytes; without this a run of
/// 68s gives a "no end byte" frame every three bytes. A frame that checks out is always
/// reported. (The same rule as IEC 104's for its weak I-frames.)
#[derive(Default)]
pub(crate) struct HeaderRun {
    until: StreamOffset,
}

impl HeaderRun {
    /// Whether to report `raw`, found at stream offset `at`; remembers a reported header.
    pub(crate) fn admit(&mut self, at: StreamOffset, raw: &RawFrame<'_>) -> bool {
        if raw.check != Check::NoEnd {
            return true;
        }
        if at < self.until {
            return false;
        }
        let length = raw.bytes.get(1).copied().map_or(0, u64::from);
        self.until = at + length + 6;
        true
    }

    pub(crate) fn reset(&mut self) {
        self.until = 0;
    }
}

pub(crate) fn recognise(
    window: &[u8],
    fixed_address_len: usize,
    min_length: u8,
    at_end: bool,
) -> Recognised<'_> {
    match window.first() {
        Some(&SINGLE_CHAR) => Recognised::Frame(RawFrame {
            shape: Shape::Single,
            bytes: window.get(..1).unwrap_or_default(),
            user: &[],
            user_start: 1,
            check: Check::Ok,
            consumed: 1,
        }),
        Some(&START_FIXED) => recognise_fixed(window, fixed_address_len.min(2), at_end),
        Some(&START_VARIABLE) => recognise_variable(window, min_length, at_end),
        _ => Recognised::Skip(1),
    }
}

fn recognise_fixed(window: &[u8], address_len: usize, at_end: bool) -> Recognised<'_> {
    let user_len = 1 + address_len;
    let total = user_len + 3;
    let Some(user) = window.get(1..1 + user_len) else {
        return if at_end {
            Recognised::Skip(1)
        } else {
            Recognised::Need
        };
    };
    let expected = sum8(user);
    let Some(&found) = window.get(1 + user_len) else {
        return if at_end {
            Recognised::Skip(1)
        } else {
            Recognised::Need
        };
    };
    let Some(&stop) = window.get(total - 1) else {
        // Only the stop byte is missing: a right checksum makes the start believable.
        if at_end && found == expected {
            return Recognised::Frame(RawFrame {
                shape: Shape::Fixed,
                bytes: window,
                user,
                user_start: 1,
                check: Check::Truncated,
                consumed: window.len(),
            });
        }
        return if at_end {
            Recognised::Skip(1)
        } else {
            Recognised::Need
        };
    };
    let bytes = window.get(..total).unwrap_or_default();
    let (check, consumed) = match (stop == STOP, found == expected) {
        (true, true) => (Check::Ok, total),
        (true, false) => (Check::BadChecksum { expected, found }, total),
        // A right checksum over two or three bytes is a 1-in-256 coincidence in noise, and
        // any byte it covers may start the real frame (in `10 06 0A 10 40 01 41 16` the
        // "checksum" 10 does): move on by one byte only.
        (false, true) => (Check::MissingStop { found: stop }, 1),
        (false, false) => return Recognised::Skip(1),
    };
    let bytes = if matches!(check, Check::MissingStop { .. }) {
        window.get(..total - 1).unwrap_or_default()
    } else {
        bytes
    };
    Recognised::Frame(RawFrame {
        shape: Shape::Fixed,
        bytes,
        user,
        user_start: 1,
        check,
        consumed,
    })
}

fn recognise_variable(window: &[u8], min_length: u8, at_end: bool) -> Recognised<'_> {
    let Some(header) = window.get(..4) else {
        return if at_end {
            Recognised::Skip(1)
        } else {
            Recognised::Need
        };
    };
    let &[_, first, second, start2] = header else {
        return Recognised::Skip(1);
    };
    if start2 != START_VARIABLE {
        return Recognised::Skip(1);
    }
    // A damaged header is reported, but scanning resumes at the second 68, which may be the
    // real start of a frame that follows a false one.
    if first != second {
        return Recognised::Frame(RawFrame {
            shape: Shape::Variable,
            bytes: header,
            user: &[],
            user_start: 4,
            check: Check::LengthMismatch { first, second },
            consumed: 3,
        });
    }
    if first < min_length.max(1) {
        return Recognised::Frame(RawFrame {
            shape: Shape::Variable,
            bytes: header,
            user: &[],
            user_start: 4,
            check: Check::LengthTooShort {
                length: first,
                minimum: min_length.max(1),
            },
            consumed: 3,
        });
    }
    let length = usize::from(first);
    let total = length + 6;
    let Some(bytes) = window.get(..total) else {
        if at_end {
            return Recognised::Frame(RawFrame {
                shape: Shape::Variable,
                bytes: window,
                user: window.get(4..).unwrap_or_default(),
                user_start: 4,
                check: Check::Truncated,
                consumed: 3,
            });
        }
        return Recognised::Need;
    };
    let user = bytes.get(4..4 + length).unwrap_or_default();
    let expected = sum8(user);
    let found = bytes.get(4 + length).copied().unwrap_or_default();
    let stop = bytes.get(5 + length).copied().unwrap_or_default();
    let (check, bytes, consumed) = match (stop == STOP, found == expected) {
        (true, true) => (Check::Ok, bytes, total),
        (true, false) => (Check::BadChecksum { expected, found }, bytes, total),
        (false, true) => (
            Check::MissingStop { found: stop },
            bytes.get(..total - 1).unwrap_or_default(),
            total - 1,
        ),
        (false, false) => (Check::NoEnd, header, 3),
    };
    Recognised::Frame(RawFrame {
        shape: Shape::Variable,
        bytes,
        user: if check == Check::NoEnd { &[] } else { user },
        user_start: 4,
        check,
        consumed,
    })
}

impl Check {
    /// The check packed into a deferred frame's note (low 24 bits; see [`RawFrame::from_kept`]).
    pub(crate) fn to_note(self) -> u32 {
        let (tag, a, b) = match self {
            Check::Ok => (0u8, 0, 0),
            Check::BadChecksum { expected, found } => (1, expected, found),
            Check::MissingStop { found } => (2, found, 0),
            Check::LengthMismatch { first, second } => (3, first, second),
            Check::LengthTooShort { length, minimum } => (4, length, minimum),
            Check::NoEnd => (5, 0, 0),
            Check::Truncated => (6, 0, 0),
        };
        u32::from(tag) | u32::from(a) << 8 | u32::from(b) << 16
    }

    /// The check [`Check::to_note`] packed.
    pub(crate) fn from_note(note: u32) -> Check {
        let [tag, a, b, _] = note.to_le_bytes();
        match tag {
            1 => Check::BadChecksum {
                expected: a,
                found: b,
            },
            2 => Check::MissingStop { found: a },
            3 => Check::LengthMismatch {
                first: a,
                second: b,
            },
            4 => Check::LengthTooShort {
                length: a,
                minimum: b,
            },
            5 => Check::NoEnd,
            6 => Check::Truncated,
            _ => Check::Ok,
        }
    }

    /// The frame status a check gives before the protocol looks at the user data.
    pub(crate) fn status(self) -> FrameStatus {
        match self {
            Check::Ok => FrameStatus::Ok,
            Check::BadChecksum { expected, found } => FrameStatus::BadChecksum {
                expected: u32::from(expected),
                found: u32::from(found),
            },
            Check::Truncated => FrameStatus::Truncated,
            other => FrameStatus::Malformed(problem(other).unwrap_or_default()),
        }
    }
}

impl<'a> RawFrame<'a> {
    /// The frame `recognise` found, rebuilt from the bytes its span covers (`bytes`, kept by
    /// a deferred frame) and its check: the shape follows from the first byte, the user data
    /// from the shape, L and the check, exactly as `recognise` cut them.
    pub(crate) fn from_kept(bytes: &'a [u8], check: Check, fixed_address_len: usize) -> Self {
        let (shape, user_start, user) = match bytes.first() {
            Some(&START_FIXED) => {
                let user_len = 1 + fixed_address_len.min(2);
                (
                    Shape::Fixed,
                    1,
                    bytes.get(1..1 + user_len).unwrap_or_default(),
                )
            }
            Some(&START_VARIABLE) => {
                let length = usize::from(bytes.get(1).copied().unwrap_or_default());
                let user = match check {
                    Check::LengthMismatch { .. } | Check::LengthTooShort { .. } | Check::NoEnd => {
                        &[]
                    }
                    Check::Truncated => bytes.get(4..).unwrap_or_default(),
                    _ => bytes.get(4..4 + length).unwrap_or_default(),
                };
                (Shape::Variable, 4, user)
            }
            _ => (Shape::Single, 1, &[][..]),
        };
        RawFrame {
            shape,
            bytes,
            user,
            user_start,
            check,
            consumed: bytes.len(),
        }
    }
}

/// Fields common to both protocols: start, L (twice), CS and stop, placed around the
/// protocol's own fields (`inner`, already built with absolute spans).
pub(crate) fn framing_fields(
    at: StreamOffset,
    raw: &RawFrame<'_>,
    inner: Vec<Field>,
) -> Vec<Field> {
    let mut fields = Vec::with_capacity(inner.len() + 8);
    match raw.shape {
        // One byte says it all: no field tree (E5 is frequent in any binary stream).
        Shape::Single => return Vec::new(),
        Shape::Fixed => {
            fields.push(Field::new(
                "start",
                "0x10 fixed-length frame",
                span(at, 0, 1),
            ));
        }
        Shape::Variable => {
            fields.push(Field::new(
                "start",
                "0x68 variable-length frame",
                span(at, 0, 1),
            ));
            if let (Some(&l1), Some(&l2)) = (raw.bytes.get(1), raw.bytes.get(2)) {
                fields.push(Field::new(
                    "L",
                    format!("{l1} bytes from C to the end of user data"),
                    span(at, 1, 1),
                ));
                let second = if l1 == l2 {
                    format!("{l2} (matches)")
                } else {
                    format!("{l2} (differs from the first L = {l1})")
                };
                fields.push(Field::new("L'", second, span(at, 2, 1)));
            }
            if raw.bytes.len() > 3 {
                fields.push(Field::new("start'", "0x68", span(at, 3, 1)));
            }
        }
    }
    fields.extend(inner);
    let cs_index = raw.user_start + raw.user.len();
    let user_complete = match raw.shape {
        Shape::Variable => raw
            .bytes
            .get(1)
            .is_some_and(|&l| usize::from(l) == raw.user.len()),
        _ => true,
    };
    if user_complete {
        if let Some(&found) = raw.bytes.get(cs_index) {
            let value = match raw.check {
                Check::BadChecksum { expected, found } => {
                    format!("0x{found:02X}, but the byte sum is 0x{expected:02X}")
                }
                _ => format!("0x{found:02X} (sum of C..data mod 256)"),
            };
            fields.push(Field::new("CS", value, span(at, cs_index, 1)));
        }
        if let Some(&stop) = raw.bytes.get(cs_index + 1) {
            fields.push(Field::new(
                "stop",
                format!("0x{stop:02X}"),
                span(at, cs_index + 1, 1),
            ));
        }
    }
    fields
}

/// Text for a check that failed, phrased for the frames pane; `None` for `Ok`.
pub(crate) fn problem(check: Check) -> Option<String> {
    match check {
        Check::Ok | Check::BadChecksum { .. } | Check::Truncated => None,
        Check::MissingStop { found } => Some(format!(
            "missing end byte 0x16 (found 0x{found:02X}); checksum is right"
        )),
        Check::LengthMismatch { first, second } => Some(format!(
            "length bytes differ: L = {first}, L' = {second} (\"Frame length 1 != 2\")"
        )),
        Check::LengthTooShort { length, minimum } => {
            Some(format!("L = {length} is below the minimum {minimum}"))
        }
        Check::NoEnd => Some(
            "no checksum or end byte 0x16 where L says: the frame was cut short, or L is wrong"
                .to_string(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn start_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(&[0x68, 0x10, 0xE5, 0x16])) {
            crate::decode::stream::tests::assert_same_starts(&bytes, START_AHEAD, start_hits, is_start);
        }
    }

    #[test]
    fn recognises_the_three_shapes() {
        let Recognised::Frame(ack) = recognise(&[0xE5, 0x00], 1, 3, false) else {
            panic!("ack")
        };
        assert_eq!(
            (ack.shape, ack.check, ack.consumed),
            (Shape::Single, Check::Ok, 1)
        );

        let Recognised::Frame(short) = recognise(&[0x10, 0x40, 0x01, 0x41, 0x16], 1, 3, false)
        else {
            panic!("short")
        };
        assert_eq!(
            (short.shape, short.check, short.user),
            (Shape::Fixed, Check::Ok, &[0x40, 0x01][..])
        );

        let frame = [0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0xBB, 0x0F, 0x16];
        let Recognised::Frame(long) = recognise(&frame, 1, 3, false) else {
            panic!("control")
        };
        assert_eq!(
            (long.shape, long.check, long.consumed),
            (Shape::Variable, Check::Ok, 9)
        );
    }

    #[test]
    fn two_octet_link_address() {
        // IEC 101 fixed frame with a 2-octet address: 10 C A1 A2 CS 16 (CS = 49+01+00 = 4A).
        let Recognised::Frame(raw) = recognise(&[0x10, 0x49, 0x01, 0x00, 0x4A, 0x16], 2, 3, false)
        else {
            panic!("fixed")
        };
        assert_eq!(raw.check, Check::Ok);
        assert_eq!(raw.bytes.len(), 6);
    }

    #[test]
    fn needs_more_then_decides() {
        assert!(matches!(
            recognise(&[0x68, 0x03, 0x03], 1, 3, false),
            Recognised::Need
        ));
        assert!(matches!(
            recognise(&[0x68, 0x03, 0x03, 0x68, 0x53], 1, 3, false),
            Recognised::Need
        ));
        let Recognised::Frame(raw) = recognise(&[0x68, 0x03, 0x03, 0x68, 0x53], 1, 3, true) else {
            panic!("truncated")
        };
        assert_eq!(raw.check, Check::Truncated);
        assert_eq!(raw.consumed, 3);
    }

    #[test]
    fn damaged_variable_frames() {
        let Recognised::Frame(raw) = recognise(&[0x68, 0x03, 0x04, 0x68], 1, 3, false) else {
            panic!()
        };
        assert_eq!(
            raw.check,
            Check::LengthMismatch {
                first: 3,
                second: 4
            }
        );
        let bad_cs = [0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0x50, 0xA5, 0x16];
        let Recognised::Frame(raw) = recognise(&bad_cs, 1, 3, false) else {
            panic!()
        };
        assert_eq!(
            raw.check,
            Check::BadChecksum {
                expected: 0xA4,
                found: 0xA5
            }
        );
        let no_stop = [0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0x50, 0xA4, 0x17];
        let Recognised::Frame(raw) = recognise(&no_stop, 1, 3, false) else {
            panic!()
        };
        assert_eq!(raw.check, Check::MissingStop { found: 0x17 });
        assert_eq!(raw.consumed, 8);
        let cut = [0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0x10, 0x5B, 0x01];
        let Recognised::Frame(raw) = recognise(&cut, 1, 3, false) else {
            panic!()
        };
        assert_eq!((raw.check, raw.consumed), (Check::NoEnd, 3));
        assert!(matches!(
            recognise(&[0x68, 0x03, 0x03, 0x69], 1, 3, false),
            Recognised::Skip(1)
        ));
    }
}
