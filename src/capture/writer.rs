//! `CaptureWriter`: appends the session's events to a capture, flushing at least every 100 ms
//! and at once on connection, card and settings changes. It never panics and never returns an
//! error to the session: an I/O failure (disk full, unwritable path) stops the recording and
//! is kept as the reason, for the status bar to show.
//!
//! Pure apart from the writes: time is passed in (the session clock), nothing here reads a
//! clock.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use crate::event::{Event, TimedEvent, Timestamp};

use super::codec::{self, Kind};
use super::format::{self, MAX_PAYLOAD};
use super::meta::CaptureMeta;

/// Records reach the OS no later than this after they were appended (given `poll_flush` is
/// called when [`CaptureWriter::flush_due`] says).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Buffered bytes that trigger a write regardless of time (bounds memory at high rates).
pub const FLUSH_BYTES: usize = 256 << 10;

/// Why recording stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// Short, for the status bar: "disk full", "permission denied".
    pub reason: String,
    /// The whole story with the fix: what failed, where, how much was kept.
    pub detail: String,
}

/// Appends events to a capture. See the module doc for the guarantees.
#[derive(Debug)]
pub struct CaptureWriter<W: Write = File> {
    out: Option<W>,
    /// What the file is called in messages.
    name: String,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// The stream of the last record written (a switch record goes before a change).
    stream: crate::event::StreamId,
    /// Time of the oldest record in `buf` (None: nothing pending).
    pending_since: Option<Timestamp>,
    records: u64,
    /// Bytes handed to the OS so far (header included).
    written: u64,
    oversize_dropped: u64,
    failure: Option<WriteFailure>,
}

impl CaptureWriter<File> {
    /// Creates (or truncates) the capture at `path`, making its directory if it lies in
    /// [`default_capture_dir`](crate::capture::meta::default_capture_dir), and
    /// writes the header. An error here names the path, the cause and the fix; the caller may
    /// instead use [`CaptureWriter::create_or_stopped`] to keep the session running.
    pub fn create(path: &Path, meta: &CaptureMeta) -> Result<CaptureWriter<File>, WriteFailure> {
        let file = CaptureWriter::open(path)?;
        let mut w = CaptureWriter::new(file, path.display().to_string(), meta);
        match w.failure.take() {
            Some(f) => Err(f),
            None => Ok(w),
        }
    }

    /// As [`CaptureWriter::create`], but a failure gives a stopped writer carrying the reason
    /// (appends are then no-ops), so the session runs on and the status bar can say why.
    pub fn create_or_stopped(path: &Path, meta: &CaptureMeta) -> CaptureWriter<File> {
        match CaptureWriter::create(path, meta) {
            Ok(w) => w,
            Err(f) => CaptureWriter::stopped(path.display().to_string(), f),
        }
    }

    /// Creates (or truncates) the file at `path`, making its directory only if it lies in
    /// hsmon's own capture directory; nothing is written yet. The step of [`CaptureWriter::create`]
    /// that a `--capture` must pass at start (the header write after it may still fail).
    pub fn open(path: &Path) -> Result<File, WriteFailure> {
        let open = || -> io::Result<File> {
            // hsmon makes its own directory, never one a typo in --capture names: outside it a
            // missing directory is an error (NotFound from File::create).
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() && crate::capture::meta::is_in_capture_dir(dir) {
                    std::fs::create_dir_all(dir)?;
                }
            }
            File::create(path)
        };
        open().map_err(|e| failure(&path.display().to_string(), &e, 0, "cannot create"))
    }

    /// Flushes and asks the OS to put the data on the disk (fsync): for the end of a session.
    pub fn sync(&mut self) {
        self.flush();
        if let Some(f) = &self.out {
            if let Err(e) = f.sync_data() {
                self.fail(&e, "cannot sync");
            }
        }
    }
}

impl<W: Write> CaptureWriter<W> {
    /// A writer on `out` (named `name` in messages); writes the header at once.
    pub fn new(out: W, name: impl Into<String>, meta: &CaptureMeta) -> CaptureWriter<W> {
        let mut w = CaptureWriter {
            out: Some(out),
            name: name.into(),
            buf: format::encode_header(meta),
            scratch: Vec::new(),
            stream: crate::event::StreamId::MAIN,
            pending_since: None,
            records: 0,
            written: 0,
            oversize_dropped: 0,
            failure: None,
        };
        w.flush();
        w
    }

    /// A writer that records nothing and reports `failure`.
    pub fn stopped(name: impl Into<String>, failure: WriteFailure) -> CaptureWriter<W> {
        CaptureWriter {
            out: None,
            name: name.into(),
            buf: Vec::new(),
            scratch: Vec::new(),
            stream: crate::event::StreamId::MAIN,
            pending_since: None,
            records: 0,
            written: 0,
            oversize_dropped: 0,
            failure: Some(failure),
        }
    }

    /// Records the session's streams (a multi-stream session, before its first event), so a
    /// replay or export of the capture knows what each stream was.
    pub fn declare_streams(&mut self, streams: &[crate::event::StreamDecl]) {
        if self.out.is_none() || streams.is_empty() {
            return;
        }
        self.scratch.clear();
        codec::encode_streams(streams, &mut self.scratch);
        if self.scratch.len() <= MAX_PAYLOAD {
            format::push_record(&mut self.buf, codec::STREAMS_KIND, 0, &self.scratch);
            self.flush();
        }
    }

    /// Appends one event. Connection, card and settings changes are flushed at once; other
    /// events when the oldest pending one is [`FLUSH_INTERVAL`] old (by `ev.at`) or the buffer
    /// is large. A no-op once recording has stopped.
    pub fn append(&mut self, ev: &TimedEvent) {
        if self.out.is_none() {
            return;
        }
        let at_ns = codec::duration_to_ns(ev.at);
        if ev.stream != self.stream {
            self.stream = ev.stream;
            let id = codec::encode_stream(ev.stream);
            format::push_record(&mut self.buf, codec::STREAM_KIND, at_ns, &id);
        }
        match &ev.event {
            // Rx/Tx are written straight from the event, split under the record size limit.
            Event::Rx(b) | Event::Tx(b) => {
                let kind = Kind::of(&ev.event) as u16;
                if b.is_empty() {
                    format::push_record(&mut self.buf, kind, at_ns, b);
                    self.records += 1;
                }
                for chunk in b.chunks(MAX_PAYLOAD) {
                    format::push_record(&mut self.buf, kind, at_ns, chunk);
                    self.records += 1;
                }
            }
            other => {
                self.scratch.clear();
                let kind = codec::encode_payload(other, &mut self.scratch) as u16;
                if self.scratch.len() > MAX_PAYLOAD {
                    // Only a pathological multi-megabyte reason string gets here.
                    self.oversize_dropped += 1;
                } else {
                    format::push_record(&mut self.buf, kind, at_ns, &self.scratch);
                    self.records += 1;
                }
            }
        }
        let since = *self.pending_since.get_or_insert(ev.at);
        let urgent = matches!(
            ev.event,
            Event::Connection(_) | Event::LineSettings { .. } | Event::Card(_)
        );
        if urgent || self.buf.len() >= FLUSH_BYTES || ev.at.saturating_sub(since) >= FLUSH_INTERVAL
        {
            self.flush();
        }
    }

    /// Writes pending records if the oldest is [`FLUSH_INTERVAL`] old at `now`. Call it from
    /// the session loop's timer (at [`CaptureWriter::flush_due`]).
    pub fn poll_flush(&mut self, now: Timestamp) {
        if self
            .pending_since
            .is_some_and(|t| now.saturating_sub(t) >= FLUSH_INTERVAL)
        {
            self.flush();
        }
    }

    /// When `poll_flush` next has work: None when nothing is pending (an idle session needs
    /// no timer).
    pub fn flush_due(&self) -> Option<Timestamp> {
        self.pending_since.map(|t| t + FLUSH_INTERVAL)
    }

    /// Hands every pending byte to the OS now.
    pub fn flush(&mut self) {
        self.pending_since = None;
        let Some(out) = self.out.as_mut() else {
            self.buf.clear();
            return;
        };
        if self.buf.is_empty() {
            return;
        }
        let r = out.write_all(&self.buf).and_then(|()| out.flush());
        match r {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.buf.clear();
            }
            Err(e) => self.fail(&e, "cannot write"),
        }
        // Don't keep a burst's worth of capacity around forever.
        if self.buf.capacity() > 4 * FLUSH_BYTES {
            self.buf.shrink_to(FLUSH_BYTES);
        }
    }

    fn fail(&mut self, e: &io::Error, doing: &str) {
        self.failure = Some(failure(&self.name, e, self.records, doing));
        self.out = None;
        self.buf = Vec::new();
        self.pending_since = None;
    }

    /// Why recording stopped, short ("disk full"), or None while it runs.
    pub fn failed(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| f.reason.as_str())
    }

    /// Why recording stopped, in full with the fix.
    pub fn failure(&self) -> Option<&WriteFailure> {
        self.failure.as_ref()
    }

    /// True while events are being recorded.
    pub fn is_recording(&self) -> bool {
        self.out.is_some()
    }

    /// Records appended so far (a split Rx/Tx chunk counts once per record).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes handed to the OS so far, header included.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Events too large for one record that were left out (never Rx/Tx bytes: those are split).
    pub fn oversize_dropped(&self) -> u64 {
        self.oversize_dropped
    }

    /// The name the writer uses in messages (the path for files).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Flushes and gives back the output (None if recording had stopped).
    pub fn into_inner(mut self) -> Option<W> {
        self.flush();
        self.out.take()
    }
}

impl<W: Write> Drop for CaptureWriter<W> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A reason short enough for the status bar, from the OS error.
fn short_reason(e: &io::Error) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::StorageFull => "disk full".into(),
        K::QuotaExceeded => "disk quota exceeded".into(),
        K::PermissionDenied => "permission denied".into(),
        K::ReadOnlyFilesystem => "read-only file system".into(),
        K::NotFound => "no such directory".into(),
        K::NotADirectory => "a path component is not a directory".into(),
        K::IsADirectory => "the path is a directory".into(),
        K::FileTooLarge => "file too large".into(),
        _ => e.to_string(),
    }
}

fn failure(name: &str, e: &io::Error, records: u64, doing: &str) -> WriteFailure {
    use io::ErrorKind as K;
    let folder_exists = Path::new(name)
        .parent()
        .is_some_and(|d| d.as_os_str().is_empty() || d.is_dir());
    let reason = if e.kind() == K::NotFound && folder_exists {
        // /proc, /sys: the folder is there, its file system makes no new files.
        "the folder takes no new files".into()
    } else {
        short_reason(e)
    };
    let fix = match e.kind() {
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge => {
            "free some space, or choose another place with --capture FILE"
        }
        K::PermissionDenied | K::ReadOnlyFilesystem | K::NotFound | K::NotADirectory => {
            "choose a writable path with --capture FILE, or turn recording off with --no-capture"
        }
        K::IsADirectory => "give a file name, not a directory, to --capture",
        _ => "check the disk, or choose another place with --capture FILE",
    };
    let kept = if records == 0 {
        String::new()
    } else {
        format!("; the {records} records before it are kept and replay")
    };
    WriteFailure {
        detail: format!("recording stopped: {doing} {name}: {reason} ({e}){kept}: {fix}"),
        reason,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::capture::reader::CaptureReader;
    use std::time::UNIX_EPOCH;

    fn meta() -> CaptureMeta {
        CaptureMeta::new(
            "test",
            None,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    fn rx(ms: u64, b: &[u8]) -> TimedEvent {
        TimedEvent::new(Duration::from_millis(ms), Event::Rx(b.to_vec()))
    }

    fn read_all(path: &Path) -> Vec<TimedEvent> {
        let mut r = CaptureReader::open(path).unwrap();
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push(rec.event);
        }
        v
    }

    /// A tap's capture replays with its streams; the reader counts the switch records as
    /// no events, so numbering and offsets stay those of the events.
    #[test]
    fn each_record_keeps_its_stream() {
        use crate::event::StreamId;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tap.hscap");
        let mut w = CaptureWriter::create(&path, &meta()).unwrap();
        let b = StreamId(1);
        let events = vec![
            rx(1, b"a"),
            TimedEvent::on(b, Duration::from_millis(2), Event::Rx(b"b".to_vec())),
            TimedEvent::on(b, Duration::from_millis(3), Event::BreakSent),
            rx(4, b"c"),
        ];
        for e in &events {
            w.append(e);
        }
        assert_eq!(w.records(), 4, "switch records are not events");
        w.sync();
        assert_eq!(read_all(&path), events);
        let mut r = CaptureReader::open(&path).unwrap();
        let numbers: Vec<u64> = std::iter::from_fn(|| r.next_record().unwrap())
            .map(|rec| rec.number)
            .collect();
        assert_eq!(numbers, vec![0, 1, 2, 3]);
        assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    }

    /// A tap's capture names its ports: the declaration record comes back from the reader
    /// (and takes no event number).
    #[test]
    fn declared_streams_come_back() {
        use crate::event::{Direction, StreamDecl, StreamId, StreamKind};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tap.hscap");
        let mut w = CaptureWriter::create(&path, &meta()).unwrap();
        let decls = vec![
            StreamDecl {
                id: StreamId::MAIN,
                label: "/dev/ttyUSB0".into(),
                kind: StreamKind::Serial,
                link: 0,
                direction: Some(Direction::Tx),
            },
            StreamDecl {
                id: StreamId(1),
                label: "/dev/ttyUSB1".into(),
                kind: StreamKind::Serial,
                link: 0,
                direction: Some(Direction::Rx),
            },
        ];
        w.declare_streams(&decls);
        w.append(&rx(1, b"a"));
        w.sync();
        let mut r = CaptureReader::open(&path).unwrap();
        assert!(r.streams().is_empty());
        assert_eq!(r.next_record().unwrap().unwrap().number, 0);
        assert_eq!(r.streams(), decls.as_slice());
        assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    }

    #[test]
    fn records_reach_the_file_after_poll_flush_while_the_writer_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.hscap");
        let mut w = CaptureWriter::create(&path, &meta()).unwrap();
        // The header is on disk at once: a reader can open the file.
        assert!(read_all(&path).is_empty());

        w.append(&rx(1000, b"\x68\x04"));
        w.append(&rx(1050, b"\x04\x68"));
        assert_eq!(w.flush_due(), Some(Duration::from_millis(1100)));
        assert!(read_all(&path).is_empty(), "flushed before 100 ms");
        w.poll_flush(Duration::from_millis(1099));
        assert!(read_all(&path).is_empty(), "flushed before 100 ms");
        w.poll_flush(Duration::from_millis(1100));
        assert_eq!(
            read_all(&path),
            vec![rx(1000, b"\x68\x04"), rx(1050, b"\x04\x68")]
        );
        assert_eq!(w.flush_due(), None, "nothing pending, no timer needed");

        // An event 100 ms after the oldest pending one flushes by itself.
        w.append(&rx(2000, b"\x01"));
        w.append(&rx(2100, b"\x02"));
        assert_eq!(read_all(&path).len(), 4);

        // A settings or connection change is written at once.
        w.append(&rx(3000, b"\x03"));
        w.append(&TimedEvent::new(
            Duration::from_millis(3001),
            Event::Connection(crate::event::ConnectionState::Up),
        ));
        assert_eq!(read_all(&path).len(), 6);
        assert!(w.failed().is_none());
        drop(w);
    }

    #[test]
    fn disk_full_stops_recording_with_the_reason() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux");
        let mut w = CaptureWriter::new(f, "/dev/full", &meta());
        assert_eq!(w.failed(), Some("disk full"));
        assert!(!w.is_recording());
        let detail = &w.failure().unwrap().detail;
        assert!(detail.contains("/dev/full"), "{detail}");
        assert!(detail.contains("--capture"), "{detail}");
        // Later appends and flushes are harmless no-ops.
        for i in 0..1000 {
            w.append(&rx(i, &[0x68; 100]));
            w.poll_flush(Duration::from_millis(i + 200));
        }
        w.flush();
        assert_eq!(w.failed(), Some("disk full"));
        assert_eq!(w.records(), 0);
    }

    #[test]
    fn disk_full_mid_session_keeps_what_was_written() {
        /// Accepts `room` bytes, then fails like a full disk.
        struct Tight {
            data: Vec<u8>,
            room: usize,
        }
        impl Write for Tight {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.data.len() >= self.room {
                    return Err(io::Error::from(io::ErrorKind::StorageFull));
                }
                let n = b.len().min(self.room - self.data.len());
                self.data.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = CaptureWriter::new(
            Tight {
                data: Vec::new(),
                room: 300,
            },
            "mem",
            &meta(),
        );
        for i in 0..20 {
            w.append(&rx(i * 200, &[i as u8; 10]));
        }
        assert_eq!(w.failed(), Some("disk full"));
        assert!(
            w.failure()
                .unwrap()
                .detail
                .contains("records before it are kept")
        );
    }

    #[test]
    fn unwritable_path_is_an_error_or_a_stopped_writer() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        // A directory under a regular file cannot exist.
        let bad = file.join("sub").join("c.hscap");
        let e = CaptureWriter::create(&bad, &meta()).unwrap_err();
        assert!(e.detail.contains("cannot create"), "{}", e.detail);
        assert!(e.detail.contains("--capture"), "{}", e.detail);
        let mut w = CaptureWriter::create_or_stopped(&bad, &meta());
        assert!(w.failed().is_some());
        w.append(&rx(0, b"\x68"));
        w.sync();
        // A directory as the path.
        let e = CaptureWriter::create(dir.path(), &meta()).unwrap_err();
        assert_eq!(e.reason, "the path is a directory");
    }

    #[test]
    fn a_huge_chunk_is_split_not_lost() {
        let mut w = CaptureWriter::new(Vec::new(), "mem", &meta());
        let big = vec![0x68u8; MAX_PAYLOAD + 10];
        w.append(&rx(0, &big));
        assert_eq!(w.records(), 2);
        let bytes = w.into_inner().unwrap();
        let mut r = CaptureReader::new(std::io::Cursor::new(bytes), "mem").unwrap();
        let mut got = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            if let Event::Rx(b) = rec.event.event {
                got.extend(b);
            }
        }
        assert_eq!(got, big);
    }
}
