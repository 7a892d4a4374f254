//! Simulated devices behind the same source interface as a real port, so `hsmon demo`, the
//! tests and real hardware run the same code path.

pub mod card;
pub mod card_reader;
pub mod devices;
