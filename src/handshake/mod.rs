//! Handshake profiles: declarative send/expect sequences (`profile`, `expect`), run against a
//! live device by a pure state machine (`runner`) whose first divergence is explained from the
//! knowledge base; simulated peers for every built-in profile (`peer`); the report (`report`);
//! and the loops that drive a run through an ordinary session, headless or in the TUI (`live`).

pub mod driver;
pub mod expect;
pub mod live;
pub mod peer;
pub mod profile;
pub mod report;
pub mod runner;
