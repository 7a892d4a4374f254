//! JSON lines: exactly what `hsmon --headless --format json replay FILE --speed max` prints.
//! The capture's events go through a `Session` as a replay's do
//! ([`crate::record::session::play`]), so the export has the `session` record (from the
//! capture header), every `rx`/`tx`/`settings`/… record, and the `frame` and `event` records
//! the session finds, with `ts` from the capture's start. The same exporter in text format is
//! the headless text of a replay.

use std::io::{self, Write};
use std::sync::Arc;

use super::Exporter;
use crate::capture::reader::{CaptureHeader, Record};
use crate::diagnose::knowledge::Knowledge;
use crate::output::OutputFormat;
use crate::record::session::SessionRecord;
use crate::record::stream::{play, play_end};
use crate::session::Session;

/// Records of a capture, JSON (the jsonl export) or text.
pub struct RecordExporter {
    format: OutputFormat,
    labels: Vec<(String, String)>,
    knowledge: Option<Arc<Knowledge>>,
    session: Option<Session>,
}

impl RecordExporter {
    /// An exporter in `format` adding `labels` (the `--label` members) to every JSON record;
    /// `knowledge` explains what the session finds, as in a replay.
    pub fn new(
        format: OutputFormat,
        labels: Vec<(String, String)>,
        knowledge: Option<Arc<Knowledge>>,
    ) -> RecordExporter {
        RecordExporter {
            format,
            labels,
            knowledge,
            session: None,
        }
    }
}

/// Counts the lines written through it.
struct Lines<'a> {
    out: &'a mut dyn Write,
    n: u64,
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.n += buf.iter().take(n).filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Exporter for RecordExporter {
    fn begin(&mut self, header: &CaptureHeader, out: &mut dyn Write) -> io::Result<()> {
        let record = session_record_of(&header.meta, &self.labels);
        let mut session = Session::with_knowledge(
            header.meta.source.clone(),
            crate::session::DEFAULT_WINDOW_BYTES,
            self.knowledge.clone(),
        );
        session.stamp = record.stamp.clone();
        self.session = Some(session);
        match self.format {
            OutputFormat::Json => record.write(out),
            OutputFormat::Text => Ok(()),
        }
    }

    fn event(&mut self, rec: &Record, out: &mut dyn Write) -> io::Result<u64> {
        let Some(session) = self.session.as_mut() else {
            return Ok(0);
        };
        let mut lines = Lines { out, n: 0 };
        play(&mut lines, session, &rec.event, self.format)?;
        Ok(lines.n)
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        let Some(session) = self.session.as_mut() else {
            return Ok(0);
        };
        let mut lines = Lines { out, n: 0 };
        play_end(&mut lines, session, self.format)?;
        Ok(lines.n)
    }
}

/// The `session` record of a recorded session: the capture's hsmon version, source and
/// settings, `ts` from its start. Neither host nor command line: a capture keeps neither.
pub fn session_record_of(
    meta: &crate::capture::meta::CaptureMeta,
    labels: &[(String, String)],
) -> SessionRecord {
    let stamp = crate::stamp::Stamp {
        start_unix_ns: meta.started_unix_ns,
        labels: labels.to_vec(),
    };
    SessionRecord::new(
        &stamp,
        &meta.hsmon_version,
        &meta.source,
        meta.settings.as_ref(),
    )
}
