//! Finding the baud rate and frame format: scoring what a setting received, the passive
//! estimate from the current setting's bytes, the active scan over candidates, and the two
//! drivers the session and the loops use (the passive watch, the scan on a live port).
//!
//! Pure: no I/O, no clock (time is a parameter); the caller sets the port and feeds what it
//! read.

pub mod live_scan;
pub mod passive;
pub mod scan;
pub mod scoring;
pub mod watch;

#[cfg(test)]
mod tests;
