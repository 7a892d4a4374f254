//! Pure protocol decoders: bytes in, frames with field trees and byte spans out.
//! One file (or folder) per protocol; shared types live in `frame.rs`, the set of streaming
//! framers in `all.rs`, the streaming machinery they share in `stream.rs`.

pub mod all;
pub mod dlt645;
pub mod esp_slip;
pub mod evidence;
pub mod frame;
pub mod ft12;
pub mod iec101;
pub mod iec104;
pub mod iso7816;
pub mod mbus;
pub mod mtk_brom;
pub mod pcsc_codes;
pub mod stm32_boot;
pub(crate) mod stream;
#[cfg(test)]
pub(crate) mod testing;
pub mod text;
pub mod tls;

pub use evidence::{Check, Evidence, Rank, Strength, TOKEN_BITS, WEAK_BITS};
pub use frame::*;
pub use mbus::looks_like_mbus;

/// Every streaming framer a session runs over each direction: the line protocols of
/// `all.rs` plus the ISO 7816-3 line framer (a card's I/O line read by a UART).
pub fn framers() -> Vec<Box<dyn Framer>> {
    let mut v = all::all_framers();
    v.push(Box::new(iso7816::line::LineFramer::new()));
    v
}
