//! What the tracer helper tells hsmon, one JSON object a line on a pipe. The helper is a
//! process of its own so that it outlives hsmon (see `mod.rs`); this is their contract.

use serde::{Deserialize, Serialize};

/// One message from the helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum Wire {
    /// The program runs (launched, or every thread attached): its pid.
    Started { pid: u32 },
    /// The helper could not start tracing: `usage` (exit 2) or `device` (exit 3).
    Refused { usage: bool, message: String },
    /// A descriptor became a stream (opened, connected, accepted, dup'ed).
    Open { pid: u32, fd: i32, stream: String },
    /// The stream on this descriptor ended (closed, exec, the process exited).
    Close { pid: u32, fd: i32, stream: String },
    /// Bytes the program read (`rx: true`) or wrote on a stream, as hex.
    Bytes {
        pid: u32,
        fd: i32,
        stream: String,
        rx: bool,
        hex: String,
    },
    /// Bytes that moved but could not be read from the program's memory.
    Lost {
        pid: u32,
        fd: i32,
        stream: String,
        bytes: u64,
    },
    /// Line settings the program set: rate, `8E1`, `none|hw|sw`, and the modem lines it
    /// set so far (None: never touched).
    Settings {
        pid: u32,
        fd: i32,
        stream: String,
        baud: u32,
        format: String,
        flow: String,
        dtr: Option<bool>,
        rts: Option<bool>,
    },
    /// A TCGETS after the program's settings shows the port did not keep them.
    NotKept {
        pid: u32,
        fd: i32,
        stream: String,
        asked: String,
        text: String,
    },
    /// The program flushed the tty's queues: `input`, `output` or `both`.
    Flush {
        pid: u32,
        fd: i32,
        stream: String,
        queue: String,
    },
    /// The program sent a break.
    Break { pid: u32, fd: i32, stream: String },
    /// A new process of the program, or an exec.
    Process {
        pid: u32,
        parent: Option<u32>,
        exec: Option<String>,
    },
    /// The traced program ended: `code` or `signal`.
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The helper let go of the program, which runs on.
    Detached { pid: u32 },
}
