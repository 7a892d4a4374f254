//! `CaptureReader`: reads a capture's header and its records in order, surviving damage — a
//! torn tail (kill -9, power loss, full disk) ends the reading with its byte offset reported,
//! a damaged record in the middle is skipped with a warning and reading resumes at the next
//! good one. `CaptureIndex` (built by one pass, extendable while the file grows) lets a replay
//! seek to an event number or a byte-stream offset without reading the file from the start.
//!
//! Bytes from the file are untrusted: every length is checked before use, nothing allocates
//! from a length field beyond [`format::MAX_BODY`], and nothing panics.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use crate::event::{Direction, Event, TimedEvent};

use super::codec::{self, Kind};
use super::format::{self, HeaderProblem, Probe, RECORD_PREFIX};
use super::meta::CaptureMeta;

/// At most this many warnings are kept (the rest are counted).
pub const MAX_WARNINGS: usize = 1000;

/// A checkpoint every this many events ...
pub const INDEX_EVERY_EVENTS: u64 = 1024;
/// ... or this many file bytes, whichever comes first: a seek reads at most about this much.
pub const INDEX_EVERY_BYTES: u64 = 64 << 10;

/// The most `read_stream` returns in one call.
pub const MAX_STREAM_READ: u64 = 64 << 20;

/// What the reader read from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureHeader {
    pub meta: CaptureMeta,
    /// Format version (major, minor) the file was written with.
    pub version: (u16, u16),
    /// File offset of the first record.
    pub len: u64,
}

/// A capture that cannot be opened (or read), with the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "{path}: no such file: check the name (hsmon records to {dir} unless --capture chose another place)"
    )]
    NotFound { path: String, dir: String },
    #[error("cannot read {path}: {source}: {hint}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
        hint: &'static str,
    },
    #[error(
        "{path}: not an hsmon capture (it lacks the .hscap signature): give a file recorded by hsmon (--capture), or look at raw bytes with `hsmon decode {path}`"
    )]
    NotACapture { path: String },
    #[error(
        "{path}: an hsmon capture whose line endings were converted (CR LF changed by a text-mode copy): copy it again in binary mode (scp, rsync, or FTP `binary`)"
    )]
    LineEndings { path: String },
    #[error(
        "{path}: written by a newer hsmon (capture format {major}.{minor}; hsmon {ours} reads format {supported}.x): upgrade hsmon to open it"
    )]
    NewerVersion {
        path: String,
        major: u16,
        minor: u16,
        supported: u16,
        ours: &'static str,
    },
    #[error(
        "{path}: the capture ends inside its header ({have} bytes, the header needs {need}): the recording stopped before anything was stored; there is nothing to read"
    )]
    TruncatedHeader {
        path: String,
        have: usize,
        need: usize,
    },
    #[error(
        "{path}: the capture header is damaged ({reason}): the file was changed after hsmon wrote it; restore it from where it was recorded"
    )]
    CorruptHeader { path: String, reason: String },
}

impl CaptureError {
    fn io(path: &str, source: io::Error) -> CaptureError {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                "make the file readable (chmod) or copy it somewhere you can read"
            }
            io::ErrorKind::IsADirectory => "give the capture file, not a directory",
            _ => "check the file and the disk",
        };
        CaptureError::Io {
            path: path.to_string(),
            source,
            hint,
        }
    }
}

/// Something the reader skipped, and why. Reading goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadWarning {
    /// Bytes holding no readable record (damaged marker, length or CRC) were skipped.
    Damaged {
        offset: u64,
        skipped: u64,
        reason: &'static str,
    },
    /// A complete record this hsmon cannot use (a newer kind, or a malformed payload).
    Skipped {
        offset: u64,
        kind: u16,
        reason: String,
    },
}

impl ReadWarning {
    pub fn offset(&self) -> u64 {
        match self {
            ReadWarning::Damaged { offset, .. } | ReadWarning::Skipped { offset, .. } => *offset,
        }
    }
}

impl std::fmt::Display for ReadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadWarning::Damaged {
                offset,
                skipped,
                reason,
            } => write!(
                f,
                "byte {offset}: {skipped} damaged bytes skipped ({reason}); reading resumed at byte {}",
                offset + skipped
            ),
            ReadWarning::Skipped { offset, reason, .. } => {
                write!(f, "byte {offset}: record skipped: {reason}")
            }
        }
    }
}

/// Where the skipped records were, for a one-line summary: "at bytes 120, 4096 and 9000"
/// (the first few; `hsmon export FILE --to jsonl` lists each on stderr).
pub fn warning_offsets(warnings: &[ReadWarning]) -> String {
    const SHOWN: usize = 5;
    let offsets: Vec<String> = warnings
        .iter()
        .take(SHOWN)
        .map(|w| w.offset().to_string())
        .collect();
    let more = warnings.len().saturating_sub(SHOWN);
    let list = match offsets.as_slice() {
        [] => return String::new(),
        [one] => one.clone(),
        [init @ .., last] if more == 0 => format!("{} and {last}", init.join(", ")),
        all => format!("{}, …", all.join(", ")),
    };
    let s = if warnings.len() == 1 { "" } else { "s" };
    format!("at byte{s} {list}")
}

/// The incomplete end of a capture: the bytes after the last good record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where the incomplete record starts (= where a growing file will continue).
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub len: u64,
    pub reason: &'static str,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the capture ends with an incomplete record at byte {} ({} bytes, {}): the recording was cut (crash, kill, power loss or full disk); every complete record before it was read",
            self.offset, self.len, self.reason
        )
    }
}

/// One event read back, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 0-based among the events of the file (skipped records take no number).
    pub number: u64,
    /// File offset of the record.
    pub offset: u64,
    /// Received and sent stream offsets before this event (the session's `StreamOffset`s).
    pub rx: u64,
    pub tx: u64,
    pub event: TimedEvent,
}

/// A place in the file the reader can restart from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The number of the event at `offset`.
    pub number: u64,
    pub offset: u64,
    pub at: Duration,
    /// Stream offsets before that event.
    pub rx: u64,
    pub tx: u64,
}

/// A sparse index of a capture: a checkpoint every [`INDEX_EVERY_EVENTS`] events or
/// [`INDEX_EVERY_BYTES`] bytes, so memory stays small (48 bytes per checkpoint: 0.8 MB per GB of
/// capture, up to ~2 MB when events are a few bytes each) and a seek reads at most one stride.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureIndex {
    checkpoints: Vec<Checkpoint>,
    /// Events indexed so far.
    pub events: u64,
    /// File offset after the last good record (where indexing continues).
    pub end: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Time of the last event.
    pub last_at: Duration,
}

impl CaptureIndex {
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The last checkpoint at or before event `n`.
    fn for_event(&self, n: u64) -> Option<Checkpoint> {
        let i = self.checkpoints.partition_point(|c| c.number <= n);
        i.checked_sub(1).map(|i| self.checkpoints[i])
    }

    /// The last checkpoint whose `dir` stream offset is at or before `off`.
    fn for_stream(&self, dir: Direction, off: u64) -> Option<Checkpoint> {
        let i = self.checkpoints.partition_point(|c| match dir {
            Direction::Rx => c.rx <= off,
            Direction::Tx => c.tx <= off,
        });
        i.checked_sub(1).map(|i| self.checkpoints[i])
    }
}

/// Reads file bytes through a movable window, so scanning and seeking never hold the whole
/// file. `src` is always positioned at `base + buf.len()`.
#[derive(Debug, Default)]
struct Window {
    buf: Vec<u8>,
    base: u64,
}

const READ_CHUNK: usize = 256 << 10;

impl Window {
    /// Up to `want` bytes starting at file offset `start` (fewer only at the end of the file).
    fn get<R: Read + Seek>(&mut self, src: &mut R, start: u64, want: usize) -> io::Result<&[u8]> {
        let end = self.base + self.buf.len() as u64;
        if start < self.base || start > end {
            src.seek(SeekFrom::Start(start))?;
            self.buf.clear();
            self.base = start;
        } else if start - self.base > (1 << 20) {
            // Drop what lies behind: the window slides forward through the file.
            let n = (start - self.base) as usize;
            self.buf.drain(..n);
            self.base = start;
        }
        let from = (start - self.base) as usize;
        while self.buf.len() - from < want {
            let chunk = (want - (self.buf.len() - from)).max(READ_CHUNK);
            // read_to_end appends without zero-filling first, keeps whatever it read before an
            // error (so `src` stays at the window's end) and retries on EINTR.
            let n = (&mut *src).take(chunk as u64).read_to_end(&mut self.buf)?;
            if n == 0 {
                break;
            }
        }
        let to = self.buf.len().min(from.saturating_add(want));
        Ok(&self.buf[from..to])
    }

    /// The file offset just past the bytes read so far.
    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }
}

/// A record found by the framing layer, before its payload is decoded.
struct Raw {
    offset: u64,
    kind: u16,
    at_ns: u64,
    len: usize,
}

/// What `step` found.
struct Found {
    offset: u64,
    at: Duration,
    /// Rx/Tx and the chunk length.
    bytes: Option<(Direction, u64)>,
    /// The stream the record belongs to (the last stream-switch record's).
    stream: crate::event::StreamId,
    /// The decoded event (None when only the shape was asked for).
    event: Option<Event>,
}

/// Reads one capture. See the module doc.
#[derive(Debug)]
pub struct CaptureReader<R: Read + Seek = File> {
    src: R,
    name: String,
    header: CaptureHeader,
    win: Window,
    pos: u64,
    next_number: u64,
    rx: u64,
    tx: u64,
    /// The stream named by the last stream-switch record (main until one).
    stream: crate::event::StreamId,
    /// The streams the capture declares (none: a single-stream capture).
    streams: Vec<crate::event::StreamDecl>,
    warnings: Vec<ReadWarning>,
    warnings_dropped: u64,
    /// Warnings at or below this offset were given already (seeks re-read damage).
    warned_upto: Option<u64>,
    torn: Option<TornTail>,
}

impl CaptureReader<File> {
    /// Opens the capture at `path` and reads its header.
    pub fn open(path: &Path) -> Result<CaptureReader<File>, CaptureError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                CaptureError::NotFound {
                    path: name.clone(),
                    dir: super::meta::default_capture_dir().map_or_else(
                        || "the state directory".to_string(),
                        |d| d.display().to_string(),
                    ),
                }
            } else {
                CaptureError::io(&name, e)
            }
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(CaptureError::io(
                &name,
                io::Error::from(io::ErrorKind::IsADirectory),
            ));
        }
        CaptureReader::new(file, name)
    }
}

impl<R: Read + Seek> CaptureReader<R> {
    /// A reader on `src` (called `name` in messages), positioned at the first record.
    pub fn new(mut src: R, name: impl Into<String>) -> Result<CaptureReader<R>, CaptureError> {
        let name = name.into();
        let mut win = Window::default();
        let io = |e| CaptureError::io(&name, e);
        // The window assumes `src` sits at its end; start both at 0.
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        let fixed = win.get(&mut src, 0, format::HEADER_FIXED).map_err(io)?;
        let need = match format::header_len(fixed) {
            Ok(n) => n,
            Err(format::HeaderProblem::NewerVersion { major, minor }) => {
                // A flipped version byte is damage, not a newer hsmon: say so when the
                // checksum matches only with our version.
                let damaged = format::len_ignoring_version(fixed)
                    .and_then(|n| win.get(&mut src, 0, n).ok())
                    .is_some_and(format::version_damaged);
                let p = if damaged {
                    format::HeaderProblem::Corrupt(format!(
                        "its format version reads {major}.{minor}, but the header checksum matches only with version {}.x: a damaged byte, not a newer hsmon",
                        format::VERSION_MAJOR
                    ))
                } else {
                    format::HeaderProblem::NewerVersion { major, minor }
                };
                return Err(header_error(&name, p));
            }
            Err(p) => return Err(header_error(&name, p)),
        };
        let h = win.get(&mut src, 0, need).map_err(io)?;
        let (meta, version) = format::decode_header(h).map_err(|p| header_error(&name, p))?;
        let len = need as u64;
        Ok(CaptureReader {
            src,
            name,
            header: CaptureHeader { meta, version, len },
            win,
            pos: len,
            next_number: 0,
            rx: 0,
            tx: 0,
            stream: crate::event::StreamId::MAIN,
            streams: Vec::new(),
            warnings: Vec::new(),
            warnings_dropped: 0,
            warned_upto: None,
            torn: None,
        })
    }

    pub fn header(&self) -> &CaptureHeader {
        &self.header
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Warnings so far (at most [`MAX_WARNINGS`]).
    pub fn warnings(&self) -> &[ReadWarning] {
        &self.warnings
    }

    /// Warnings beyond [`MAX_WARNINGS`], counted only.
    pub fn warnings_dropped(&self) -> u64 {
        self.warnings_dropped
    }

    /// The warnings so far, handing them over (later ones accumulate afresh).
    pub fn take_warnings(&mut self) -> Vec<ReadWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// Set when the last read stopped at an incomplete record. A file still being written
    /// may complete it: the next read tries again from [`TornTail::offset`].
    pub fn torn_tail(&self) -> Option<TornTail> {
        self.torn
    }

    /// The number of the next event and the file offset reading continues at.
    pub fn position(&self) -> (u64, u64) {
        (self.next_number, self.pos)
    }

    /// The streams the capture declares, once the reader has passed their record (the first
    /// of a multi-stream capture: after the first `next_record`). Empty: one stream.
    pub fn streams(&self) -> &[crate::event::StreamDecl] {
        &self.streams
    }

    /// Back to the first record.
    pub fn rewind(&mut self) {
        self.pos = self.header.len;
        self.next_number = 0;
        self.rx = 0;
        self.tx = 0;
        self.stream = crate::event::StreamId::MAIN;
        self.torn = None;
    }

    /// The next event, or None at the end of the good records (see [`Self::torn_tail`]).
    /// Damage and unusable records are skipped into [`Self::warnings`]; an error is only an
    /// I/O failure of the file itself.
    pub fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        let (number, rx, tx) = (self.next_number, self.rx, self.tx);
        let Some(s) = self.step(true)? else {
            return Ok(None);
        };
        let Some(event) = s.event else {
            return Ok(None); // step(true) always decodes; kept total for the type
        };
        Ok(Some(Record {
            number,
            offset: s.offset,
            rx,
            tx,
            event: TimedEvent::on(s.stream, s.at, event),
        }))
    }

    /// Advances over one event. With `decode` false, Rx/Tx payloads are measured, not copied
    /// (indexing and seeking skip them at memory speed); every other kind is decoded either
    /// way, so both paths accept and number exactly the same records.
    fn step(&mut self, decode: bool) -> Result<Option<Found>, CaptureError> {
        loop {
            let Some(raw) = self
                .advance()
                .map_err(|e| CaptureError::io(&self.name, e))?
            else {
                return Ok(None);
            };
            let at = Duration::from_nanos(raw.at_ns);
            if raw.kind == codec::STREAMS_KIND {
                let b = self
                    .win
                    .get(&mut self.src, raw.offset, raw.len)
                    .map_err(|e| CaptureError::io(&self.name, e))?;
                match codec::decode_streams(format::payload(b, raw.len)) {
                    Ok(s) => self.streams = s,
                    Err(e) => self.warn(ReadWarning::Skipped {
                        offset: raw.offset,
                        kind: raw.kind,
                        reason: e.to_string(),
                    }),
                }
                continue;
            }
            if raw.kind == codec::STREAM_KIND {
                let b = self
                    .win
                    .get(&mut self.src, raw.offset, raw.len)
                    .map_err(|e| CaptureError::io(&self.name, e))?;
                match codec::decode_stream(format::payload(b, raw.len)) {
                    Ok(id) => self.stream = id,
                    Err(e) => self.warn(ReadWarning::Skipped {
                        offset: raw.offset,
                        kind: raw.kind,
                        reason: e.to_string(),
                    }),
                }
                continue;
            }
            let payload_len = (raw.len - format::RECORD_OVERHEAD) as u64;
            let dir = if raw.kind == Kind::Rx as u16 {
                Some(Direction::Rx)
            } else if raw.kind == Kind::Tx as u16 {
                Some(Direction::Tx)
            } else {
                None
            };
            let event = if dir.is_some() && !decode {
                None
            } else {
                let b = self
                    .win
                    .get(&mut self.src, raw.offset, raw.len)
                    .map_err(|e| CaptureError::io(&self.name, e))?;
                match codec::decode_payload(raw.kind, format::payload(b, raw.len)) {
                    Ok(ev) => Some(ev),
                    Err(e) => {
                        self.warn(ReadWarning::Skipped {
                            offset: raw.offset,
                            kind: raw.kind,
                            reason: e.to_string(),
                        });
                        continue;
                    }
                }
            };
            self.next_number += 1;
            match dir {
                Some(Direction::Rx) => self.rx += payload_len,
                Some(Direction::Tx) => self.tx += payload_len,
                None => {}
            }
            return Ok(Some(Found {
                offset: raw.offset,
                at,
                bytes: dir.map(|d| (d, payload_len)),
                stream: self.stream,
                event,
            }));
        }
    }

    /// The next record with a good frame and CRC, resyncing over damage.
    fn advance(&mut self) -> io::Result<Option<Raw>> {
        loop {
            let pos = self.pos;
            if self.win.get(&mut self.src, pos, 1)?.is_empty() {
                self.torn = None;
                return Ok(None);
            }
            let reason = match self.probe_at(pos)? {
                Probe::Valid { kind, at_ns, len } => {
                    self.pos = pos + len as u64;
                    self.torn = None;
                    return Ok(Some(Raw {
                        offset: pos,
                        kind,
                        at_ns,
                        len,
                    }));
                }
                Probe::Incomplete => "record cut short",
                Probe::Invalid(r) => r,
            };
            match self.scan(pos + 1)? {
                Some(next) => {
                    self.warn(ReadWarning::Damaged {
                        offset: pos,
                        skipped: next - pos,
                        reason,
                    });
                    self.pos = next;
                }
                None => {
                    self.torn = Some(TornTail {
                        offset: pos,
                        len: self.win.end().saturating_sub(pos),
                        reason,
                    });
                    return Ok(None);
                }
            }
        }
    }

    fn probe_at(&mut self, pos: u64) -> io::Result<Probe> {
        let head = self.win.get(&mut self.src, pos, RECORD_PREFIX)?;
        let Some(len) = format::record_len(head) else {
            return Ok(format::probe(head));
        };
        let b = self.win.get(&mut self.src, pos, len)?;
        Ok(format::probe(b))
    }

    /// The offset of the next valid record at or after `from`, if any.
    fn scan(&mut self, from: u64) -> io::Result<Option<u64>> {
        const CHUNK: usize = 64 << 10;
        let mut p = from;
        loop {
            let b = self.win.get(&mut self.src, p, CHUNK)?;
            let at_end = b.len() < CHUNK;
            let found = b
                .windows(format::SYNC.len())
                .position(|w| w == format::SYNC);
            match found {
                Some(i) => {
                    let c = p + i as u64;
                    if let Probe::Valid { .. } = self.probe_at(c)? {
                        return Ok(Some(c));
                    }
                    p = c + 1;
                }
                None if at_end => return Ok(None),
                // Keep the last 3 bytes: a marker may straddle the chunk boundary.
                None => p += (b.len() - (format::SYNC.len() - 1)) as u64,
            }
        }
    }

    fn warn(&mut self, w: ReadWarning) {
        let off = w.offset();
        if self.warned_upto.is_some_and(|u| off <= u) {
            return;
        }
        self.warned_upto = Some(off);
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.warnings_dropped += 1;
        }
    }

    /// Indexes the whole file (one pass, payloads not copied). Leaves the reader at the end;
    /// [`Self::rewind`] or a seek reads again.
    pub fn index(&mut self) -> Result<CaptureIndex, CaptureError> {
        let mut idx = CaptureIndex {
            end: self.header.len,
            ..CaptureIndex::default()
        };
        self.extend_index(&mut idx)?;
        Ok(idx)
    }

    /// Indexes what was appended since `idx` was built (a capture still being recorded).
    pub fn extend_index(&mut self, idx: &mut CaptureIndex) -> Result<(), CaptureError> {
        self.pos = idx.end.max(self.header.len);
        self.next_number = idx.events;
        self.rx = idx.rx_bytes;
        self.tx = idx.tx_bytes;
        loop {
            let (number, rx, tx) = (self.next_number, self.rx, self.tx);
            let Some(s) = self.step(false)? else { break };
            let due = idx.checkpoints.last().is_none_or(|c| {
                number - c.number >= INDEX_EVERY_EVENTS || s.offset - c.offset >= INDEX_EVERY_BYTES
            });
            if due {
                idx.checkpoints.push(Checkpoint {
                    number,
                    offset: s.offset,
                    at: s.at,
                    rx,
                    tx,
                });
            }
            idx.last_at = idx.last_at.max(s.at);
        }
        idx.events = self.next_number;
        idx.end = self.pos;
        idx.rx_bytes = self.rx;
        idx.tx_bytes = self.tx;
        Ok(())
    }

    fn restart_at(&mut self, c: Checkpoint) {
        self.pos = c.offset;
        self.next_number = c.number;
        self.rx = c.rx;
        self.tx = c.tx;
        self.torn = None;
    }

    /// Event number `n` (reading on from it continues in order), or None past the end.
    pub fn seek_event(
        &mut self,
        idx: &CaptureIndex,
        n: u64,
    ) -> Result<Option<Record>, CaptureError> {
        match idx.for_event(n) {
            Some(c) => self.restart_at(c),
            None => self.rewind(),
        }
        while self.next_number < n {
            if self.step(false)?.is_none() {
                return Ok(None);
            }
        }
        self.next_record()
    }

    /// The Rx or Tx event holding byte `off` of that direction's stream, or None past the end.
    pub fn seek_stream(
        &mut self,
        idx: &CaptureIndex,
        dir: Direction,
        off: u64,
    ) -> Result<Option<Record>, CaptureError> {
        match idx.for_stream(dir, off) {
            Some(c) => self.restart_at(c),
            None => self.rewind(),
        }
        loop {
            let (number, rx, tx) = (self.next_number, self.rx, self.tx);
            let Some(s) = self.step(false)? else {
                return Ok(None);
            };
            let Some((d, len)) = s.bytes else { continue };
            let start = match d {
                Direction::Rx => rx,
                Direction::Tx => tx,
            };
            if d == dir && start <= off && off < start + len {
                // Found it: read it again, this time with its bytes.
                self.restart_at(Checkpoint {
                    number,
                    offset: s.offset,
                    at: s.at,
                    rx,
                    tx,
                });
                return self.next_record();
            }
        }
    }

    /// Bytes `range` of the `dir` stream (clamped to what the capture holds and to
    /// [`MAX_STREAM_READ`]): what the hex view shows when it scrolls beyond the memory window.
    pub fn read_stream(
        &mut self,
        idx: &CaptureIndex,
        dir: Direction,
        range: Range<u64>,
    ) -> Result<Vec<u8>, CaptureError> {
        let end = range.end.min(range.start.saturating_add(MAX_STREAM_READ));
        let mut out = Vec::new();
        if range.start >= end {
            return Ok(out);
        }
        let Some(first) = self.seek_stream(idx, dir, range.start)? else {
            return Ok(out);
        };
        let mut rec = Some(first);
        while let Some(r) = rec {
            let (start, bytes) = match (&r.event.event, dir) {
                (Event::Rx(b), Direction::Rx) => (r.rx, b),
                (Event::Tx(b), Direction::Tx) => (r.tx, b),
                _ => {
                    rec = self.next_record()?;
                    continue;
                }
            };
            let lo = range.start.saturating_sub(start) as usize;
            let hi = (end - start).min(bytes.len() as u64) as usize;
            if lo < hi {
                out.extend_from_slice(&bytes[lo..hi]);
            }
            if start + bytes.len() as u64 >= end {
                break;
            }
            rec = self.next_record()?;
        }
        Ok(out)
    }
}

impl<R: Read + Seek> Iterator for CaptureReader<R> {
    type Item = Result<Record, CaptureError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

fn header_error(path: &str, p: HeaderProblem) -> CaptureError {
    let path = path.to_string();
    match p {
        HeaderProblem::Truncated { have, need } => {
            CaptureError::TruncatedHeader { path, have, need }
        }
        HeaderProblem::NotACapture => CaptureError::NotACapture { path },
        HeaderProblem::LineEndings => CaptureError::LineEndings { path },
        HeaderProblem::NewerVersion { major, minor } => CaptureError::NewerVersion {
            path,
            major,
            minor,
            supported: format::VERSION_MAJOR,
            ours: env!("CARGO_PKG_VERSION"),
        },
        HeaderProblem::Corrupt(reason) => CaptureError::CorruptHeader { path, reason },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::capture::codec::tests::every_event;
    use crate::capture::writer::CaptureWriter;
    use std::io::Cursor;
    use std::time::UNIX_EPOCH;

    fn meta() -> CaptureMeta {
        CaptureMeta::new(
            "serial /dev/ttyUSB0",
            Some(crate::event::LineSettings::default()),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    fn timed(events: Vec<Event>) -> Vec<TimedEvent> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| TimedEvent::new(Duration::from_micros(i as u64 * 1500 + 7), event))
            .collect()
    }

    /// A capture of `events` in memory, and the file offset where each record starts.
    fn capture(events: &[TimedEvent]) -> (Vec<u8>, Vec<u64>) {
        let mut w = CaptureWriter::new(Vec::new(), "mem", &meta());
        let mut offsets = Vec::new();
        let mut total = format::encode_header(&meta()).len() as u64;
        for e in events {
            offsets.push(total);
            w.append(e);
            let mut p = Vec::new();
            codec::encode_payload(&e.event, &mut p);
            total += (format::RECORD_OVERHEAD + p.len()) as u64;
        }
        let b = w.into_inner().unwrap();
        assert_eq!(b.len() as u64, total);
        (b, offsets)
    }

    fn read(bytes: &[u8]) -> (Vec<Record>, CaptureReader<Cursor<&[u8]>>) {
        let mut r = CaptureReader::new(Cursor::new(bytes), "mem").unwrap();
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push(rec);
        }
        (v, r)
    }

    #[test]
    fn every_event_variant_round_trips_through_a_file() {
        let events = timed(every_event());
        let (bytes, offsets) = capture(&events);
        let (recs, r) = read(&bytes);
        assert_eq!(r.header().meta, meta());
        assert_eq!(r.header().version, (1, 0));
        let got: Vec<TimedEvent> = recs.iter().map(|r| r.event.clone()).collect();
        assert_eq!(got, events);
        let offs: Vec<u64> = recs.iter().map(|r| r.offset).collect();
        assert_eq!(offs, offsets);
        assert!(r.warnings().is_empty());
        assert_eq!(r.torn_tail(), None);
    }

    #[test]
    fn a_capture_cut_at_every_byte_keeps_every_complete_record() {
        let events = timed(every_event());
        let (bytes, offsets) = capture(&events);
        let header_len = offsets[0] as usize;
        for cut in 0..bytes.len() {
            let part = &bytes[..cut];
            if cut < header_len {
                let e = CaptureReader::new(Cursor::new(part), "cut.hscap").unwrap_err();
                assert!(
                    matches!(e, CaptureError::TruncatedHeader { have, .. } if have == cut),
                    "cut {cut}: {e}"
                );
                assert!(e.to_string().contains("ends inside its header"));
                continue;
            }
            let (recs, r) = read(part);
            // Every record that ends at or before the cut is read, intact.
            let complete = offsets
                .iter()
                .enumerate()
                .filter(|(i, _)| offsets.get(i + 1).map_or(bytes.len(), |&o| o as usize) <= cut)
                .count();
            assert_eq!(recs.len(), complete, "cut {cut}");
            for (rec, ev) in recs.iter().zip(&events) {
                assert_eq!(&rec.event, ev, "cut {cut}");
            }
            assert!(r.warnings().is_empty(), "cut {cut}: {:?}", r.warnings());
            // A cut inside a record is reported as a torn tail at that record's offset.
            let at_boundary = cut == header_len || offsets.contains(&(cut as u64));
            match r.torn_tail() {
                None => assert!(at_boundary, "cut {cut}: no torn tail reported"),
                Some(t) => {
                    assert!(!at_boundary, "cut {cut} is a boundary but reported {t:?}");
                    assert_eq!(t.offset, offsets[complete], "cut {cut}");
                    assert_eq!(t.offset + t.len, cut as u64);
                }
            }
        }
    }

    #[test]
    fn a_flipped_byte_in_a_middle_record_skips_only_that_record() {
        let events = timed(every_event());
        let (bytes, offsets) = capture(&events);
        let victim = 5;
        let start = offsets[victim] as usize;
        let end = offsets[victim + 1] as usize;
        // Every byte of the record: marker, length, kind, time, payload, CRC.
        for i in start..end {
            let mut d = bytes.clone();
            d[i] ^= 0x40;
            let (recs, r) = read(&d);
            let got: Vec<&TimedEvent> = recs.iter().map(|r| &r.event).collect();
            let want: Vec<&TimedEvent> = events
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != victim)
                .map(|(_, e)| e)
                .collect();
            assert_eq!(got, want, "flip at {i}");
            assert_eq!(r.warnings().len(), 1, "flip at {i}");
            assert!(
                matches!(r.warnings()[0], ReadWarning::Damaged { offset, skipped, .. }
                    if offset == start as u64 && skipped == (end - start) as u64),
                "flip at {i}: {:?}",
                r.warnings()
            );
            assert!(
                r.warnings()[0]
                    .to_string()
                    .contains("damaged bytes skipped")
            );
            assert_eq!(r.torn_tail(), None);
        }
    }

    #[test]
    fn garbage_between_records_and_unknown_kinds_are_skipped_with_warnings() {
        let events = timed(vec![Event::Rx(vec![0x68]), Event::Tx(vec![0x10])]);
        let (bytes, offsets) = capture(&events);
        let mid = offsets[1] as usize;
        let mut d = bytes[..mid].to_vec();
        d.extend_from_slice(b"some garbage \xC7\x5E\xA1 with half a marker");
        let garbage_end = d.len() as u64;
        // A record of a kind from the future, with a good CRC.
        format::push_record(&mut d, 4242, 5, b"future");
        // A known kind whose payload does not parse (bad parity code).
        format::push_record(
            &mut d,
            Kind::LineSettings as u16,
            6,
            &[0, 0x25, 0, 0, 8, 9, 1, 0, 0, 0],
        );
        d.extend_from_slice(&bytes[mid..]);
        let (recs, r) = read(&d);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].event, events[1]);
        assert_eq!(recs[1].number, 1);
        let w = r.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(
            w[0],
            ReadWarning::Damaged {
                offset: mid as u64,
                skipped: garbage_end - mid as u64,
                reason: "no record marker"
            }
        );
        assert!(
            matches!(&w[1], ReadWarning::Skipped { kind: 4242, reason, .. } if reason.contains("newer hsmon"))
        );
        assert!(
            matches!(&w[2], ReadWarning::Skipped { kind: 3, reason, .. } if reason.contains("malformed settings"))
        );
    }

    #[test]
    fn header_errors_name_the_cause_and_the_fix() {
        let (bytes, _) = capture(&[]);
        let err = |b: &[u8]| CaptureReader::new(Cursor::new(b), "x.hscap").unwrap_err();
        let e = err(b"PK\x03\x04 a zip file, not a capture");
        assert!(matches!(e, CaptureError::NotACapture { .. }));
        assert!(e.to_string().contains("hsmon decode x.hscap"), "{e}");
        // A newer hsmon's file: version 7 and a checksum that matches it.
        let mut newer = bytes.clone();
        newer[8] = 7;
        let need = format::len_ignoring_version(&newer).unwrap();
        let crc = crc32fast::hash(&newer[..need - 4]);
        newer[need - 4..need].copy_from_slice(&crc.to_le_bytes());
        let e = err(&newer);
        assert!(e.to_string().contains("newer hsmon"), "{e}");
        assert!(e.to_string().contains("upgrade hsmon"), "{e}");
        // A flipped version byte: the checksum is wrong, so it is damage, not a newer hsmon.
        let mut flipped = bytes.clone();
        flipped[8] ^= 0x40;
        let e = err(&flipped);
        assert!(matches!(e, CaptureError::CorruptHeader { .. }), "{e}");
        assert!(!e.to_string().contains("upgrade hsmon"), "{e}");
        assert!(e.to_string().contains("damaged"), "{e}");
        let mut lf = bytes.clone();
        lf.remove(6);
        assert!(err(&lf).to_string().contains("binary mode"));
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(matches!(err(&bad), CaptureError::CorruptHeader { .. }));
        let e = err(b"");
        assert!(
            matches!(e, CaptureError::TruncatedHeader { have: 0, .. }),
            "{e}"
        );

        let e = CaptureReader::open(Path::new("/nonexistent/hsmon-test.hscap")).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = CaptureReader::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    fn many_events(n: usize) -> Vec<TimedEvent> {
        (0..n)
            .map(|i| {
                TimedEvent::new(
                    Duration::from_micros(i as u64 * 100),
                    match i % 5 {
                        0..=2 => Event::Rx((0..(i % 37) as u8).map(|b| b ^ i as u8).collect()),
                        3 => Event::Tx(vec![i as u8; 3]),
                        _ => Event::BreakSent,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_index_seeks_by_event_number_and_stream_offset() {
        let events = many_events(5000);
        let (bytes, offsets) = capture(&events);
        let mut r = CaptureReader::new(Cursor::new(&bytes[..]), "mem").unwrap();
        let idx = r.index().unwrap();
        assert_eq!(idx.events, 5000);
        assert_eq!(idx.end, bytes.len() as u64);
        assert!(idx.checkpoints().len() >= 5, "{}", idx.checkpoints().len());
        assert!(idx.checkpoints().len() < 100);
        let rx: Vec<u8> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::Rx(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(idx.rx_bytes, rx.len() as u64);
        assert_eq!(idx.last_at, events[4999].at);

        for n in [0u64, 1, 1023, 1024, 1025, 2500, 4999] {
            let rec = r.seek_event(&idx, n).unwrap().unwrap();
            assert_eq!(rec.number, n);
            assert_eq!(rec.offset, offsets[n as usize]);
            assert_eq!(rec.event, events[n as usize]);
            // Reading on continues in order.
            if n < 4999 {
                assert_eq!(
                    r.next_record().unwrap().unwrap().event,
                    events[n as usize + 1]
                );
            }
        }
        assert_eq!(r.seek_event(&idx, 5000).unwrap(), None);

        for off in [0u64, 1, 500, 12_345, rx.len() as u64 - 1] {
            let rec = r.seek_stream(&idx, Direction::Rx, off).unwrap().unwrap();
            let Event::Rx(b) = &rec.event.event else {
                panic!("not rx: {rec:?}")
            };
            assert!(rec.rx <= off && off < rec.rx + b.len() as u64);
            assert_eq!(b[(off - rec.rx) as usize], rx[off as usize]);
        }
        assert_eq!(
            r.seek_stream(&idx, Direction::Rx, rx.len() as u64).unwrap(),
            None
        );
        let got = r.read_stream(&idx, Direction::Rx, 10_000..20_000).unwrap();
        assert_eq!(got, rx[10_000..20_000]);
        let got = r
            .read_stream(&idx, Direction::Rx, rx.len() as u64 - 5..u64::MAX)
            .unwrap();
        assert_eq!(got, rx[rx.len() - 5..]);
    }

    #[test]
    fn the_index_grows_with_a_file_still_being_written() {
        let events = many_events(3000);
        let (bytes, offsets) = capture(&events);
        // The file as seen mid-write: a torn record at the end.
        let cut = offsets[2000] as usize + 5;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.hscap");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let mut r = CaptureReader::open(&path).unwrap();
        let mut idx = r.index().unwrap();
        assert_eq!(idx.events, 2000);
        assert_eq!(idx.end, offsets[2000]);
        assert_eq!(r.torn_tail().map(|t| t.offset), Some(offsets[2000]));
        // The writer goes on; the same reader picks up where the index ended.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &bytes[cut..]).unwrap();
        r.extend_index(&mut idx).unwrap();
        assert_eq!(idx.events, 3000);
        assert_eq!(r.torn_tail(), None);
        let full = CaptureReader::new(Cursor::new(&bytes[..]), "full")
            .unwrap()
            .index()
            .unwrap();
        assert_eq!(idx.end, full.end);
        assert_eq!(idx.rx_bytes, full.rx_bytes);
        assert_eq!(
            r.seek_event(&idx, 2999).unwrap().unwrap().event,
            events[2999]
        );
    }

    #[test]
    fn seeking_past_damage_does_not_repeat_warnings() {
        let events = many_events(3000);
        let (mut bytes, offsets) = capture(&events);
        bytes[offsets[1500] as usize + 12] ^= 0xFF;
        let mut r = CaptureReader::new(Cursor::new(&bytes[..]), "mem").unwrap();
        let idx = r.index().unwrap();
        assert_eq!(idx.events, 2999);
        assert_eq!(r.warnings().len(), 1);
        let rec = r.seek_event(&idx, 1500).unwrap().unwrap();
        assert_eq!(rec.event, events[1501]);
        r.rewind();
        while r.next_record().unwrap().is_some() {}
        assert_eq!(r.warnings().len(), 1);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            /// Arbitrary damage to the records area never panics, never invents events, and
            /// a single flipped byte costs at most the record it hit.
            #[test]
            fn damage_costs_at_most_the_damaged_record(
                sizes in proptest::collection::vec(0usize..300, 1..40),
                flip_at in any::<proptest::sample::Index>(),
                flip in 1u8..=255,
            ) {
                let events: Vec<TimedEvent> = sizes.iter().enumerate().map(|(i, &n)| TimedEvent::new(Duration::from_millis(i as u64), Event::Rx((0..n).map(|k| (k * 7 + i) as u8).collect()))).collect();
                let (mut bytes, offsets) = capture(&events);
                let first = offsets[0] as usize;
                let i = first + flip_at.index(bytes.len() - first);
                bytes[i] ^= flip;
                let victim = offsets.iter().rposition(|&o| o as usize <= i).unwrap_or(0);
                let (recs, r) = read(&bytes);
                let got: Vec<&TimedEvent> = recs.iter().map(|r| &r.event).collect();
                let want: Vec<&TimedEvent> = events.iter().enumerate()
                    .filter(|(j, _)| *j != victim).map(|(_, e)| e).collect();
                prop_assert_eq!(got, want);
                // The last record damaged is a torn tail; any other is one warning.
                if victim + 1 == events.len() {
                    prop_assert!(r.torn_tail().is_some());
                    prop_assert!(r.warnings().is_empty());
                } else {
                    prop_assert_eq!(r.warnings().len(), 1);
                    prop_assert!(r.torn_tail().is_none());
                }
            }

            /// Any bytes after a good header: no panic, and reading always terminates.
            #[test]
            fn arbitrary_record_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2000)) {
                let mut bytes = format::encode_header(&meta());
                bytes.extend_from_slice(&tail);
                let mut r = CaptureReader::new(Cursor::new(&bytes[..]), "mem").unwrap();
                let idx = r.index().unwrap();
                r.rewind();
                let mut n = 0;
                while r.next_record().unwrap().is_some() { n += 1; }
                prop_assert_eq!(n, idx.events);
            }
        }
    }
}
