//! Exit statuses (DESIGN.md) and the errors that choose them. Every message names the cause
//! and the fix. A leaf: which other modules' errors map to which status is decided at the top
//! ([`crate::cli::exit_status_for`]), so any module can name a status here.

use std::process::ExitCode;

/// 0 ok.
pub const OK: u8 = 0;
/// A handshake or script expectation failed.
pub const EXPECTATION_FAILED: u8 = 1;
/// Usage or input error (bad argument, malformed file).
pub const USAGE: u8 = 2;
/// Device or connection error (no such port, permission, busy).
pub const DEVICE: u8 = 3;

/// A usage or input error: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A device or connection error: exit status 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeviceError(pub String);

pub fn code(n: u8) -> ExitCode {
    ExitCode::from(n)
}
