//! Diagnosis: the knowledge base, what the session observed, the engine that matches the
//! two, and the "what am I talking to?" classifier. Pure: no I/O but reading a user's
//! knowledge file, no clock.

pub mod arbiter;
pub mod baud;
pub mod classify;
pub mod engine;
pub mod knowledge;
pub mod observation;
