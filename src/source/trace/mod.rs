//! `hsmon trace`: the user's own program as a source. Its reads, writes and tty ioctls on
//! serial ports and sockets become the Events of per-descriptor streams.
//!
//! ```text
//!  hsmon ──spawns──▶ tracer helper (hsmon __hsmon-trace-helper) ──ptrace──▶ the program
//!    ▲                     │ tracer.rs: stops, fd tables (fds.rs), syscalls.rs, termios.rs
//!    └── source.rs ◀─wire──┘ wire.rs: one JSON line per message
//! ```
//!
//! The tracer is a process of its own because a launched program runs under a seccomp
//! filter whose SECCOMP_RET_TRACE calls fail with ENOSYS once no tracer is attached: when
//! hsmon quits or is killed, the helper stays, silent, and serves the filter until the
//! program ends (an attached program, which has no filter, is simply detached).
//!
//! Pure parts (fds, syscalls, termios) import no ptrace; `sys.rs` holds every `unsafe`.

pub mod fds;
pub mod source;
mod sys;
pub mod syscalls;
pub mod termios;
pub mod tracer;
pub mod wire;
