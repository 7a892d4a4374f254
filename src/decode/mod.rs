//! Pure protocol decoders: bytes in, frames with field trees and byte spans out.
//! One file (or folder) per protocol; shared types live in `frame.rs`.

pub mod frame;
pub use frame::*;
