//! Handshake profiles: declarative send/expect sequences (`profile`, `expect`), run against a
//! live device by a pure state machine (`runner`) whose first divergence is explained from the
//! knowledge base; the report (`report`); and the loops that drive a run through an ordinary
//! session, headless or in the TUI (`live`). The simulated peers for the built-in profiles are
//! test support (`tests/support/peer.rs`).

pub mod driver;
pub mod expect;
pub mod profile;
pub mod report;
pub mod runner;
