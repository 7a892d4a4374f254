//! `Recorder`: one capture writer shared by the source's sink, which appends every event
//! before anything downstream may drop it, and the session, which flushes it on its timer,
//! reads it back and ends it. A failed write stops it (never panics); the failure is kept for
//! the status bar, the headless `hsmon.recording_stopped` record and the exit status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::event::{TimedEvent, Timestamp};

use super::writer::{CaptureWriter, WriteFailure};

/// A shared [`CaptureWriter`]. Clones write to the same file.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Mutex<CaptureWriter>,
    /// Set once the writer stopped: read without the lock on every event.
    failed: AtomicBool,
    /// The file's name in messages (fixed at creation).
    name: String,
}

impl Recorder {
    pub fn new(writer: CaptureWriter) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                failed: AtomicBool::new(writer.failure().is_some()),
                name: writer.name().to_string(),
                writer: Mutex::new(writer),
            }),
        }
    }

    /// The writer, even if a holder panicked while writing (its state is still a writer).
    fn lock(&self) -> MutexGuard<'_, CaptureWriter> {
        self.inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` on the writer and notes whether it stopped.
    fn with(&self, work: impl FnOnce(&mut CaptureWriter)) {
        let mut w = self.lock();
        work(&mut w);
        if w.failure().is_some() {
            self.inner.failed.store(true, Ordering::Release);
        }
    }

    /// Appends one event (a no-op once recording stopped).
    pub fn append(&self, ev: &TimedEvent) {
        if !self.inner.failed.load(Ordering::Acquire) {
            self.with(|w| w.append(ev));
        }
    }

    pub fn poll_flush(&self, now: Timestamp) {
        self.with(|w| w.poll_flush(now));
    }

    pub fn flush_due(&self) -> Option<Timestamp> {
        self.lock().flush_due()
    }

    pub fn flush(&self) {
        self.with(CaptureWriter::flush);
    }

    /// Flushes and syncs: the end of a session.
    pub fn sync(&self) {
        self.with(|w| w.sync());
    }

    /// Why recording stopped, short ("disk full"), or None while it runs.
    pub fn failed(&self) -> Option<String> {
        if !self.inner.failed.load(Ordering::Acquire) {
            return None;
        }
        self.lock().failed().map(str::to_string)
    }

    /// Why recording stopped, in full with the fix.
    pub fn failure(&self) -> Option<WriteFailure> {
        if !self.inner.failed.load(Ordering::Acquire) {
            return None;
        }
        self.lock().failure().cloned()
    }

    /// The name the writer uses in messages (the path for files).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn records(&self) -> u64 {
        self.lock().records()
    }

    pub fn declare_streams(&self, streams: &[crate::event::StreamDecl]) {
        self.with(|w| w.declare_streams(streams));
    }
}
