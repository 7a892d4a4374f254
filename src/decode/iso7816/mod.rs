//! ISO/IEC 7816 smart-card decoding: status words, CLA and INS bytes, command/response APDUs,
//! the Answer To Reset, and raw I/O-line traffic (PPS, T=0 procedure bytes, T=1 blocks).
//!
//! Facts and their sources are in ISO/IEC 7816-3/-4 and pcsc-lite's documentation; each submodule
//! names the parts it relies on.

pub mod apdu;
pub mod atr;
pub mod cla;
pub mod ins;
pub mod line;
pub mod sw;

use crate::decode::frame::StreamOffset;
use std::ops::Range;

/// Turn a byte sent in the inverse convention and read by a direct-convention UART back into
/// its logical value: inverse convention sends the complement of each bit, most significant
/// bit first, so the UART sees the value bit-reversed and inverted. The transform is its own
/// inverse: `0x03` (an inverse-convention TS read as direct) becomes `0x3F` and back.
pub fn from_inverse_convention(raw: u8) -> u8 {
    (!raw).reverse_bits()
}

/// Printable ASCII rendering ('.' for the rest), for historical bytes and data fields.
pub(crate) fn ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '.'
            }
        })
        .collect()
}

/// Absolute span of `range` (byte indices into a buffer that starts at stream offset `base`).
pub(crate) fn span(base: StreamOffset, range: Range<usize>) -> Range<StreamOffset> {
    let start = base.saturating_add(range.start as u64);
    let end = base.saturating_add(range.end as u64).max(start);
    start..end
}

/// Absolute span of the single byte at index `index`.
pub(crate) fn byte_span(base: StreamOffset, index: usize) -> Range<StreamOffset> {
    span(base, index..index.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_convention_maps_ts_both_ways() {
        assert_eq!(from_inverse_convention(0x03), 0x3F);
        assert_eq!(from_inverse_convention(0x3F), 0x03);
        for b in 0..=255u8 {
            assert_eq!(from_inverse_convention(from_inverse_convention(b)), b);
        }
    }

    #[test]
    fn ascii_renders() {
        assert_eq!(ascii(b"JC\x00P"), "JC.P");
    }

    #[test]
    fn spans_offset_from_base() {
        assert_eq!(span(100, 2..5), 102..105);
        assert_eq!(byte_span(7, 0), 7..8);
    }
}
