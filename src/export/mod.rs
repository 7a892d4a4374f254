//! Exporting a capture: [`export`] streams every event of a [`CaptureReader`] into one of the
//! formats (`pcapng` for Wireshark, `jsonl` for scripts, `hexdump` for bug reports), and
//! [`run_cli`] is `hsmon export FILE --to FORMAT [-o OUT]`.

pub mod hexdump;
pub mod jsonl;
pub mod pcapng;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Seek, Write};
use std::path::Path;

use crate::capture::reader::{
    CaptureError, CaptureHeader, CaptureReader, ReadWarning, Record, TornTail,
};

/// What `hsmon export --to` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// pcapng for Wireshark: APDUs dissected as ISO 7816, line bytes with direction.
    Pcapng,
    /// One JSON object per line, the records of `--headless --format json`.
    Jsonl,
    /// A readable dump with timestamps and direction, for bug reports.
    Hexdump,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Events read from the capture.
    pub events: u64,
    /// Output records written (lines, packets, dump entries).
    pub written: u64,
    /// Events this format has no place for (e.g. an empty Rx chunk in pcapng).
    pub skipped: u64,
    /// What the reader skipped in the capture.
    pub warnings: Vec<ReadWarning>,
    pub warnings_dropped: u64,
    /// The capture's incomplete end, if it has one.
    pub torn: Option<TornTail>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Read(#[from] CaptureError),
    #[error("cannot write the export: {0}: check free space and that the output is writable")]
    Write(#[source] io::Error),
    #[error("cannot create {path}: {source}: choose a writable place with -o FILE")]
    CreateOutput {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Knowledge(String),
    #[error("{0} is the capture itself: give -o another file name")]
    SameFile(String),
    #[error(
        "pcapng is binary and stdout is a terminal: give -o FILE.pcapng, or redirect (> FILE.pcapng)"
    )]
    BinaryToTerminal,
}

/// One output format: a preamble from the header, then each event in order.
trait Exporter {
    fn begin(&mut self, header: &CaptureHeader, out: &mut dyn Write) -> io::Result<()>;
    /// Returns the output records written for `rec` (0: this format has no place for it).
    fn event(&mut self, rec: &Record, out: &mut dyn Write) -> io::Result<u64>;
    /// After the last event; returns the output records written.
    fn end(&mut self, _out: &mut dyn Write) -> io::Result<u64> {
        Ok(0)
    }
}

/// Writes every event `reader` yields (from where it stands) to `out` in format `to`.
pub fn export<R: Read + Seek>(
    reader: &mut CaptureReader<R>,
    to: ExportFormat,
    out: &mut dyn Write,
) -> Result<ExportStats, ExportError> {
    export_labelled(reader, to, &[], out)
}

/// [`export`] with `--label` members at the end of every jsonl record.
pub fn export_labelled<R: Read + Seek>(
    reader: &mut CaptureReader<R>,
    to: ExportFormat,
    labels: &[(String, String)],
    out: &mut dyn Write,
) -> Result<ExportStats, ExportError> {
    let header = reader.header().clone();
    let mut exporter: Box<dyn Exporter> = match to {
        ExportFormat::Pcapng => {
            let encap = probe_line_encap(reader, &header)?;
            Box::new(pcapng::PcapngExporter::new(&header, encap))
        }
        ExportFormat::Jsonl => Box::new(jsonl::RecordExporter::new(
            crate::output::OutputFormat::Json,
            labels.to_vec(),
            Some(knowledge()?),
        )),
        ExportFormat::Hexdump => Box::new(hexdump::HexdumpExporter),
    };
    write_all(reader, exporter.as_mut(), &header, out)
}

/// Every event `reader` yields through `exporter` to `out`.
fn write_all<R: Read + Seek>(
    reader: &mut CaptureReader<R>,
    exporter: &mut dyn Exporter,
    header: &CaptureHeader,
    out: &mut dyn Write,
) -> Result<ExportStats, ExportError> {
    let mut stats = ExportStats::default();
    exporter.begin(header, out).map_err(ExportError::Write)?;
    while let Some(rec) = reader.next_record()? {
        stats.events += 1;
        let n = exporter.event(&rec, out).map_err(ExportError::Write)?;
        if n == 0 {
            stats.skipped += 1;
        }
        stats.written += n;
    }
    stats.written += exporter.end(out).map_err(ExportError::Write)?;
    out.flush().map_err(ExportError::Write)?;
    stats.warnings = reader.warnings().to_vec();
    stats.warnings_dropped = reader.warnings_dropped();
    stats.torn = reader.torn_tail();
    Ok(stats)
}

/// How pcapng carries the line bytes: read from the first records when the reader stands at
/// the start (then back there), from the source's name alone otherwise.
fn probe_line_encap<R: Read + Seek>(
    reader: &mut CaptureReader<R>,
    header: &CaptureHeader,
) -> Result<pcapng::LineEncap, ExportError> {
    /// Records read at most: a capture with bytes in one direction only would be read whole.
    const PROBE_RECORDS: usize = 10_000;
    let mut probe = pcapng::Probe::default();
    if CaptureReader::position(reader).0 == 0 {
        for _ in 0..PROBE_RECORDS {
            match reader.next_record()? {
                Some(rec) if probe.take(&rec.event.event) => {}
                _ => break,
            }
        }
        // The export reads these records again and reports their damage then.
        let _ = reader.take_warnings();
        reader.rewind();
    }
    Ok(pcapng::LineEncap::choose(
        &header.meta.source,
        &probe.rx,
        &probe.tx,
    ))
}

/// `hsmon export FILE --to FORMAT [-o OUT]`: writes to OUT (or stdout), reports what the
/// reader skipped on stderr, and returns the exit status (0). Every error names its cause and
/// fix; the caller maps them to exit status 2.
/// `labels` are the `--label` members, added to every jsonl record.
pub fn run_cli(
    file: &Path,
    to: ExportFormat,
    output: Option<&Path>,
    labels: &[(String, String)],
) -> Result<u8, ExportError> {
    let mut reader = CaptureReader::open(file)?;
    let stats = match output {
        Some(out_path) => {
            if same_file(file, out_path) {
                return Err(ExportError::SameFile(out_path.display().to_string()));
            }
            let f = File::create(out_path).map_err(|source| ExportError::CreateOutput {
                path: out_path.display().to_string(),
                source,
            })?;
            let mut w = BufWriter::new(f);
            let r = export_labelled(&mut reader, to, labels, &mut w).and_then(|s| {
                w.into_inner()
                    .map(|_| s)
                    .map_err(|e| ExportError::Write(e.into_error()))
            });
            // A half-written export would pass for a whole one: remove it — if it is a plain
            // file (never a device or pipe given as -o /dev/stdout, nor a symlink).
            if r.is_err()
                && std::fs::symlink_metadata(out_path).is_ok_and(|m| m.file_type().is_file())
            {
                let _ = std::fs::remove_file(out_path);
            }
            r?
        }
        None => {
            let stdout = io::stdout();
            if to == ExportFormat::Pcapng && stdout.is_terminal() {
                return Err(ExportError::BinaryToTerminal);
            }
            let mut w = BufWriter::new(crate::output::Stdout::lock());
            match export_labelled(&mut reader, to, labels, &mut w) {
                // `hsmon export ... | head`: the reader went away, which is not an error.
                Err(ExportError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Ok(crate::exit::OK);
                }
                r => r?,
            }
        }
    };
    report(file, output, to, &stats);
    Ok(crate::exit::OK)
}

/// The knowledge a replay explains with (the built-in entries and the user's file).
fn knowledge() -> Result<std::sync::Arc<crate::diagnose::knowledge::Knowledge>, ExportError> {
    crate::diagnose::knowledge::Knowledge::with_user_file()
        .map(std::sync::Arc::new)
        .map_err(ExportError::Knowledge)
}

/// `hsmon --headless replay FILE --speed max`: the capture's records on stdout in `format`,
/// through the jsonl export's path (so `export --to jsonl` equals the JSON, record for record),
/// what the reader skipped on stderr. Returns the exit status (0).
pub fn replay_headless(
    file: &Path,
    format: crate::output::OutputFormat,
    labels: &[(String, String)],
) -> Result<u8, ExportError> {
    let mut reader = CaptureReader::open(file)?;
    let header = reader.header().clone();
    let mut exporter = jsonl::RecordExporter::new(format, labels.to_vec(), Some(knowledge()?));
    let mut w = BufWriter::with_capacity(64 * 1024, crate::output::Stdout::lock());
    let stats = match write_all(&mut reader, &mut exporter, &header, &mut w) {
        // `hsmon ... | head`: the reader went away, which is not an error.
        Err(ExportError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(crate::exit::OK);
        }
        r => r?,
    };
    report(file, None, ExportFormat::Jsonl, &stats);
    Ok(crate::exit::OK)
}

/// What the reader skipped, on stderr: a few warnings, the torn tail, and a summary line when
/// the export went to a file.
fn report(file: &Path, output: Option<&Path>, to: ExportFormat, stats: &ExportStats) {
    const SHOWN: usize = 20;
    let name = file.display();
    for w in stats.warnings.iter().take(SHOWN) {
        crate::output::eprint_last(&format!("hsmon: warning: {name}: {w}"));
    }
    let more = stats.warnings.len().saturating_sub(SHOWN) as u64 + stats.warnings_dropped;
    if more > 0 {
        crate::output::eprint_last(&format!(
            "hsmon: warning: {name}: {more} more records skipped"
        ));
    }
    if let Some(t) = stats.torn {
        crate::output::eprint_last(&format!("hsmon: note: {name}: {t}"));
    }
    if let Some(out) = output {
        let what = match to {
            ExportFormat::Pcapng => "packets",
            ExportFormat::Jsonl => "lines",
            ExportFormat::Hexdump => "entries",
        };
        crate::output::eprint_last(&format!(
            "hsmon: exported {} events from {name} to {} ({} {what})",
            stats.events,
            out.display(),
            stats.written
        ));
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The headless text line of an event without its leading time column.
fn text_without_time(rec: &Record) -> String {
    let line = crate::record::stream::text_record(&rec.event);
    let t = line.trim_start();
    t.split_once(' ').map_or(t, |(_, rest)| rest).to_string()
}
