//! The session clock: monotonic time since the session started, shared by every source.

use std::time::Instant;

use crate::event::Timestamp;

/// Cheap to clone; every clone measures from the same start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Time since the session started.
    pub fn now(&self) -> Timestamp {
        self.start.elapsed()
    }

    /// The instant of session time `t` (for timers).
    pub fn instant_at(&self, t: Timestamp) -> Instant {
        self.start + t
    }
}
