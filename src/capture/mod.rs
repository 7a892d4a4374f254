//! Capture files (`.hscap`): every session's Events recorded safely, read back for replay, and
//! exported for Wireshark (pcapng), scripts (JSON lines) and bug reports (hexdump).
//!
//! - [`format`]: the bytes on disk (header, framed records with CRC); `docs/capture-format.md`.
//! - [`codec`]: Event ↔ record payload, one stable kind number per Event variant.
//! - [`meta`]: the session metadata in the header, and the default capture path.
//! - [`writer`]: [`CaptureWriter`], append + timed flush, stops (never panics) on I/O errors.
//! - [`recorder`]: [`recorder::Recorder`], the writer shared by a source's sink (fed first,
//!   before any queue that may drop) and the session (flush, read-back, end).
//! - [`reader`]: [`CaptureReader`] with resync over damage, torn-tail report and an index.
//! - [`cleanup`]: keeps the default capture directory within the `[capture]` limits.
//!
//! The exports (pcapng, jsonl, hexdump) live in [`crate::export`].

pub mod cleanup;
pub mod codec;
pub mod format;
pub mod meta;
pub mod reader;
pub mod recorder;
pub mod writer;

pub use meta::{CaptureMeta, default_capture_dir, default_capture_path};
pub use reader::{
    CaptureError, CaptureHeader, CaptureIndex, CaptureReader, ReadWarning, Record, TornTail,
};
pub use writer::{CaptureWriter, WriteFailure};
