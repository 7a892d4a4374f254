//! Headless mode: the same session without a terminal UI. Each record is one line on
//! stdout (text, or JSON with `"type"` and `"t"` as DESIGN.md specifies); stdin lines are
//! commands, so scripts and tests can drive the port as the keys do. The JSON records are
//! defined in [`crate::record`].

use std::io::Write;

use tokio::io::AsyncBufReadExt;

use crate::cli::OutputFormat;
use crate::event::{Baud, Command, FlowControl, FrameFormat, TimedEvent, Timestamp};
use crate::handshake::driver::HandshakeDriver;
use crate::monitor::{Effect, FrontEnd, Monitor, Report};
use crate::record::session::SessionRecord;
use crate::record::stream::{
    write_findings, write_scan_updates, write_script_updates, write_taken,
};
use crate::sanitize::printable;
use crate::session::Session;
use crate::ui::sendline;

pub use crate::record::event::RECORD_BYTES;

/// A headless control line that could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ControlError(String);

/// Parses one stdin control line. Blank lines and `#` comments give no command.
pub fn parse_control(line: &str) -> Result<Option<Command>, ControlError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (verb, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let arg = arg.trim();
    let err = |e: &dyn std::fmt::Display| ControlError(format!("{verb}: {e}"));
    let on = |a: &str| match a {
        "on" | "1" | "true" => Ok(true),
        "off" | "0" | "false" => Ok(false),
        _ => Err(ControlError(format!("{verb}: say on or off, not '{a}'"))),
    };
    let cmd = match verb {
        "send" | "send-hex" => Command::Transmit(crate::hex::parse(arg).map_err(|e| err(&e))?),
        "send-text" => Command::Transmit(sendline::parse_text(arg).map_err(|e| err(&e))?),
        "baud" => Command::SetBaud(arg.parse::<Baud>().map_err(|e| err(&e))?),
        "format" => Command::SetFormat(arg.parse::<FrameFormat>().map_err(|e| err(&e))?),
        "flow" => Command::SetFlow(arg.parse::<FlowControl>().map_err(|e| err(&e))?),
        "dtr" => Command::SetDtr(on(arg)?),
        "rts" => Command::SetRts(on(arg)?),
        "break" => {
            let ms = if arg.is_empty() {
                250
            } else {
                arg.parse::<u64>().map_err(|e| err(&e))?.min(10_000)
            };
            Command::SendBreak(std::time::Duration::from_millis(ms))
        }
        "quit" | "exit" => Command::Shutdown,
        _ => {
            return Err(ControlError(format!(
                "unknown command '{verb}': use send HEX, send-text TEXT, baud N, format 8N1, flow none|hw|sw, dtr on|off, rts on|off, break [ms], quit"
            )));
        }
    };
    Ok(Some(cmd))
}

/// The headless front end: records on stdout (text, or JSON lines), control lines from
/// stdin, messages on stderr.
pub struct Headless<W: Write> {
    out: W,
    format: OutputFormat,
    /// Stdin lines read, for error messages.
    line_no: usize,
    /// The capture stopped (or never started) and that was said: the exit status says it too.
    recording_failed: bool,
}

impl<W: Write> Headless<W> {
    pub fn new(out: W, format: OutputFormat) -> Headless<W> {
        Headless {
            out,
            format,
            line_no: 0,
            recording_failed: false,
        }
    }

    /// True once recording failed (at start or during the session): headless exits 3.
    pub fn recording_failed(&self) -> bool {
        self.recording_failed
    }

    /// Says, once, that the capture stopped: an `event` record `hsmon.recording_stopped` on
    /// stdout and (unless `said_on_stderr`, as at start) a line on stderr.
    fn check_recording(
        &mut self,
        session: &Session,
        said_on_stderr: bool,
    ) -> color_eyre::Result<()> {
        if self.recording_failed {
            return Ok(());
        }
        let Some((name, f)) = session
            .recorder()
            .and_then(|r| r.failure().map(|f| (r.name().to_string(), f)))
        else {
            return Ok(());
        };
        self.recording_failed = true;
        let at = session.last_at;
        match self.format {
            OutputFormat::Json => crate::record::write(
                &mut self.out,
                &crate::record::event::recording_stopped(&name, &f.reason, &f.detail),
                &crate::record::Time::at(at, &session.stamp),
                None,
                &session.stamp,
            )?,
            OutputFormat::Text => writeln!(
                self.out,
                "{:12.6} event error: {}",
                at.as_secs_f64(),
                printable(&f.detail)
            )?,
        }
        self.out.flush()?;
        if !said_on_stderr {
            crate::output::eprint_line(&format!("hsmon: {}", printable(&f.detail)))?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> FrontEnd for Headless<W> {
    type Input = String;

    fn on_event(&mut self, m: &mut Monitor, ev: &TimedEvent) -> color_eyre::Result<()> {
        write_taken(&mut self.out, &mut m.session, ev, self.format)?;
        Ok(())
    }

    fn on_report(&mut self, m: &Monitor, at: Timestamp, r: &Report) -> color_eyre::Result<()> {
        let stamp = &m.session.stamp;
        match r {
            Report::Scan(u) => write_scan_updates(
                &mut self.out,
                stamp,
                at,
                std::slice::from_ref(u),
                self.format,
            )?,
            Report::Script(u) => write_script_updates(
                &mut self.out,
                stamp,
                at,
                std::slice::from_ref(u),
                self.format,
            )?,
            Report::HandshakeStep(i) => {
                if let Some(h) = m.driver::<HandshakeDriver>() {
                    write_handshake_step(&mut self.out, h.runner(), *i, at, self.format, stamp)?;
                }
            }
            Report::Message(text) => self.message(text.clone())?,
            Report::ScanStatus(_) | Report::ScanStopped => {}
        }
        Ok(())
    }

    fn on_input(&mut self, _m: &Monitor, line: String) -> color_eyre::Result<Vec<Effect>> {
        self.line_no += 1;
        match parse_control(&line) {
            Ok(Some(cmd)) => Ok(vec![Effect::Command(cmd)]),
            Ok(None) => Ok(Vec::new()),
            Err(e) => {
                crate::output::eprint_line(&format!("hsmon: stdin line {}: {e}", self.line_no))?;
                Ok(Vec::new())
            }
        }
    }

    /// The end of stdin is not the end of the session: keep monitoring.
    fn on_input_end(&mut self) -> bool {
        false
    }

    fn settle(&mut self, m: &mut Monitor) -> color_eyre::Result<Vec<Effect>> {
        write_findings(&mut self.out, &mut m.session, self.format)?;
        self.check_recording(&m.session, false)?;
        self.out.flush()?;
        Ok(Vec::new())
    }

    fn on_history(
        &mut self,
        _m: &Monitor,
        _reply: &crate::monitor::HistoryReply,
        _loaded: Option<&Session>,
    ) -> bool {
        false
    }

    fn message(&mut self, text: String) -> color_eyre::Result<()> {
        crate::output::eprint_line(&format!("hsmon: {text}"))?;
        Ok(())
    }

    fn next_draw(&self, _m: &Monitor) -> Option<tokio::time::Instant> {
        None
    }

    fn draw(&mut self, _m: &Monitor) -> color_eyre::Result<()> {
        Ok(())
    }

    fn ends_with_source(&self) -> bool {
        true
    }

    fn decodes_at_exit(&self) -> bool {
        true
    }
}

/// Stdin lines as a stream (ends at end of input or on a read error).
fn stdin_lines() -> impl futures::Stream<Item = String> + Unpin {
    let lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    Box::pin(futures::stream::unfold(lines, |mut l| async move {
        match l.next_line().await {
            Ok(Some(line)) => Some((line, l)),
            Ok(None) | Err(_) => None,
        }
    }))
}

/// Runs the monitor headless until Ctrl-C / SIGTERM / SIGHUP, `quit` on stdin, the source
/// ending, `--duration`, or a driver that ends the run (`--autobaud`: exit 0 if the scan
/// locked, 1 if nothing scored; `--script`: 1 if an expectation failed; a handshake: its
/// outcome). Returns the exit status: 3 when the capture could not be written (at start or
/// during the session), said on stderr and as an `hsmon.recording_stopped` record.
pub async fn run(monitor: &mut Monitor, format: OutputFormat) -> color_eyre::Result<u8> {
    run_reading(monitor, format, true).await
}

/// [`run`], with stdin read for control lines only when `control` (`hsmon trace` leaves
/// stdin to the traced program).
pub async fn run_reading(
    monitor: &mut Monitor,
    format: OutputFormat,
    control: bool,
) -> color_eyre::Result<u8> {
    // Errors from stdout are tagged: a closed pipe ends the run quietly (see `output`).
    let out = std::io::BufWriter::with_capacity(256 * 1024, crate::output::Stdout::lock());
    let mut fe = Headless::new(out, format);
    if format == OutputFormat::Json {
        write_json_line(&mut fe.out, &live_session_record(&monitor.session))?;
    }
    let mut input: std::pin::Pin<Box<dyn futures::Stream<Item = String> + Send>> = if control {
        Box::pin(stdin_lines())
    } else {
        Box::pin(futures::stream::pending())
    };
    // A capture that could not start was said on stderr at start: the record says it too.
    fe.check_recording(&monitor.session, true)?;
    let end = monitor.run(&mut fe, &mut input).await?;
    fe.out.flush()?;
    let status = monitor.exit_status(end).unwrap_or(crate::exit::OK);
    // Recording failed: the exit status says it (3, the device/I/O class), unless a driver
    // already failed the run with its own status.
    if fe.recording_failed() && status == crate::exit::OK {
        return Ok(crate::exit::DEVICE);
    }
    Ok(status)
}

/// A handshake step's `event` record (`handshake.step`).
fn write_handshake_step(
    w: &mut impl Write,
    runner: &crate::handshake::runner::Runner,
    step: usize,
    at: Timestamp,
    format: OutputFormat,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    let Some(v) = crate::record::handshake::step_event_json(runner, step) else {
        return Ok(());
    };
    match format {
        OutputFormat::Json => {
            crate::record::handshake::write_step_event(w, runner, step, at, stamp)
        }
        OutputFormat::Text => writeln!(
            w,
            "{:12.6} event {}: handshake {}",
            at.as_secs_f64(),
            v["severity"].as_str().unwrap_or(""),
            printable(v["text"].as_str().unwrap_or(""))
        ),
    }
}

/// The `session` record of this process's session (see [`SessionRecord::live`]).
pub fn live_session_record(session: &Session) -> SessionRecord {
    SessionRecord::live(session)
}

/// Writes the `session` record of this process's session.
pub fn write_live_session<W: Write + ?Sized>(
    out: &mut W,
    session: &Session,
) -> std::io::Result<()> {
    SessionRecord::live(session).write(out)
}

/// The session record as a JSON line (what [`run`] prints first).
fn write_json_line<W: Write + ?Sized>(out: &mut W, record: &SessionRecord) -> std::io::Result<()> {
    record.write(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn control_lines_parse() {
        assert_eq!(
            parse_control("send 68 04").unwrap(),
            Some(Command::Transmit(vec![0x68, 4]))
        );
        assert_eq!(
            parse_control("send-text AT\\r").unwrap(),
            Some(Command::Transmit(b"AT\r".to_vec()))
        );
        assert_eq!(
            parse_control("baud 9600").unwrap(),
            Some(Command::SetBaud(Baud::new(9600).unwrap()))
        );
        assert_eq!(parse_control("  # note").unwrap(), None);
        assert!(
            parse_control("send 6")
                .unwrap_err()
                .0
                .contains("odd number")
        );
        assert!(parse_control("baud fast").is_err());
        assert!(parse_control("dtr maybe").is_err());
        assert!(
            parse_control("fly")
                .unwrap_err()
                .0
                .contains("unknown command")
        );
    }
}
