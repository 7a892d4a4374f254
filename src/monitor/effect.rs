//! What a front end asks of the monitor: the one way keys (TUI) and control lines (headless)
//! reach the source, the drivers and the capture. `UiState::update` returns these and
//! performs none; the monitor carries them out and reports results back.

use crate::event::{Command, Direction};

/// One thing for the monitor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to the source (a full queue is said, never ignored).
    Command(Command),
    /// Start an active baud scan (it waits for the port's settings when none are known yet).
    StartScan,
    /// Stop a running scan; the port goes back to its setting.
    StopScan,
    /// Read the capture behind the live session.
    History(HistoryRequest),
    /// Act on the loaded APDU script.
    Script(ScriptAction),
    /// End the session (the `q` key, `quit` on stdin).
    Quit,
}

impl From<Command> for Effect {
    fn from(c: Command) -> Effect {
        Effect::Command(c)
    }
}

/// What the user asked of the capture behind a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryRequest {
    /// Show the capture's first bytes (older than the memory window).
    Beginning,
    /// Search the whole capture for these bytes, after the last hit.
    Find(Vec<u8>, Option<(Direction, u64)>),
    /// The page above this byte of that direction (the first byte shown), which memory no
    /// longer holds.
    Above(Direction, u64),
    /// Back to the live session.
    Leave,
}

/// The APDU script keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptAction {
    /// Send the next step.
    Step,
    /// Run until a step fails its expectation.
    RunToFailure,
    /// From the top again, to the first failure.
    Restart,
    /// Send the current step's APDU again.
    Resend,
    /// Wrap (or stop wrapping) runs in a PC/SC transaction.
    ToggleTransaction,
}
