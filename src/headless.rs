//! Headless mode: the same session without a terminal UI. Each record is one line on
//! stdout (text, or JSON with `"type"` and `"t"` as DESIGN.md specifies); stdin lines are
//! commands, so scripts and tests can drive the port as the keys do.

use std::io::Write;

use serde_json::ser::{CompactFormatter, Formatter as _};

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::cli::OutputFormat;
use crate::diagnose::autobaud::Ranked;
use crate::diagnose::baud_scan::ScanUpdate;
use crate::event::{
    Baud, Command, ConnectionState, Event, FlowControl, FrameFormat, TimedEvent, Timestamp, on_off,
};
use crate::handshake::driver::HandshakeDriver;
use crate::monitor::{Effect, FrontEnd, Monitor, Report};
use crate::sanitize::{
    JsonF64, JsonLine, hex_string, printable, write_hex, write_json_line, write_printable,
};
use crate::session::Session;
use crate::stamp::stamp_value;
use crate::ui::sendline;

/// One record as a JSON object, or None for events that have no record.
pub fn json_record(ev: &TimedEvent) -> Value {
    let t = ev.at.as_secs_f64();
    match &ev.event {
        Event::Rx(b) => json!({"type": "rx", "t": t, "hex": hex_string(b)}),
        Event::Tx(b) => json!({"type": "tx", "t": t, "hex": hex_string(b)}),
        Event::LineSettings { settings, modem } => json!({
            "type": "settings", "t": t,
            "baud": settings.baud.bps(),
            "format": settings.format.to_string(),
            "flow": settings.flow.label(),
            "dtr": modem.dtr, "rts": modem.rts,
        }),
        Event::Connection(c) => match c {
            ConnectionState::Up => json!({"type": "connection", "t": t, "state": "up"}),
            ConnectionState::Down { reason } => {
                json!({"type": "connection", "t": t, "state": "down", "reason": reason})
            }
            ConnectionState::Retrying { reason } => {
                json!({"type": "connection", "t": t, "state": "retrying", "reason": reason})
            }
        },
        Event::Overrun(o) => json!({
            "type": "event", "t": t, "id": "hsmon.overrun", "severity": "error",
            "text": format!("{} bytes dropped: the output fell behind the port", o.dropped_bytes),
            "dropped_bytes": o.dropped_bytes,
        }),
        Event::BreakSent => json!({
            "type": "event", "t": t, "id": "hsmon.break_sent", "severity": "info", "text": "break sent",
        }),
        Event::LineErrors(None) => json!({
            "type": "event", "t": t, "id": "hsmon.line_errors", "severity": "info",
            "text": "this port keeps no line error counters (TIOCGICOUNT unsupported)",
            "available": false,
        }),
        Event::LineErrors(Some(c)) => json!({
            "type": "event", "t": t, "id": "hsmon.line_errors",
            "severity": if c.total() > 0 { "warning" } else { "info" },
            "text": format!("line errors: framing {} parity {} overrun {} break {} buffer {}",
                c.frame, c.parity, c.overrun, c.brk, c.buf_overrun),
            "available": true,
            "frame": c.frame, "overrun": c.overrun, "parity": c.parity, "brk": c.brk,
            "buf_overrun": c.buf_overrun,
        }),
        Event::CommandFailed { command, reason } => json!({
            "type": "event", "t": t, "id": "hsmon.command_failed", "severity": "warning",
            "text": format!("{command}: {reason}"), "command": command,
        }),
        Event::Apdu(x) => {
            let sw = x.sw().map(crate::decode::iso7816::sw::StatusWord);
            json!({
                "type": "apdu", "t": t,
                "origin": x.origin.label(),
                "command": hex_string(&x.command),
                "response": hex_string(x.data()),
                "sw": sw.map(|s| s.to_string()),
                "sw_text": sw.map(|s| crate::decode::iso7816::sw::lookup(s).meaning),
                "summary": crate::card::describe::command_summary(&x.command),
                "duration_ms": x.duration.as_secs_f64() * 1000.0,
            })
        }
        Event::Card(c) => card_record(t, c),
        Event::Replay {
            paused,
            speed,
            text,
        } => json!({
            "type": "event", "t": t, "id": "hsmon.replay", "severity": "info",
            "text": text, "paused": paused, "speed": speed,
        }),
        Event::Pcsc { operation, code } => {
            // The raw PC/SC failure; the explanation comes as an `event` from the knowledge base.
            let known = crate::decode::pcsc_codes::lookup_code(*code);
            json!({
                "type": "card", "t": t, "state": "pcsc_error",
                "operation": operation,
                "code": format!("0x{code:08X}"),
                "name": known.map(|k| k.name),
            })
        }
        Event::Trace(te) => trace_record(t, te),
    }
}

/// A traced program's news: `stream`, `process`, `detached`, and the final `exit` record
/// (`{"type":"exit","code":3}` or `{"type":"exit","signal":9}`).
fn trace_record(t: f64, te: &crate::event::TraceEvent) -> Value {
    use crate::event::{ProgramExit, TraceEvent};
    match te {
        TraceEvent::Stream { name, pid, fd } => {
            json!({"type": "stream", "t": t, "stream": name, "pid": pid, "fd": fd})
        }
        TraceEvent::Process { pid, parent, exec } => {
            json!({"type": "process", "t": t, "pid": pid, "parent": parent, "exec": exec})
        }
        TraceEvent::Exit(ProgramExit::Code(c)) => json!({"type": "exit", "t": t, "code": c}),
        TraceEvent::Exit(ProgramExit::Signal(s)) => {
            json!({"type": "exit", "t": t, "signal": s})
        }
        TraceEvent::Detached { pid } => json!({"type": "detached", "t": t, "pid": pid}),
        TraceEvent::Flush { queue } => json!({"type": "flush", "t": t, "queue": queue}),
    }
}

fn trace_text(te: &crate::event::TraceEvent) -> String {
    use crate::event::{ProgramExit, TraceEvent};
    match te {
        TraceEvent::Stream { name, pid, fd } => {
            format!("stream {} pid {pid} fd {fd}", printable(name))
        }
        TraceEvent::Process { pid, parent, exec } => match (parent, exec) {
            (_, Some(e)) => format!("process {pid} runs {}", printable(e)),
            (Some(p), None) => format!("process {pid} started by {p}"),
            (None, None) => format!("process {pid}"),
        },
        TraceEvent::Exit(ProgramExit::Code(c)) => format!("exit code {c}"),
        TraceEvent::Exit(ProgramExit::Signal(s)) => format!("exit signal {s}"),
        TraceEvent::Detached { pid } => format!("detached from {pid}: it runs on"),
        TraceEvent::Flush { queue } => format!("flush {}", printable(queue)),
    }
}

fn card_record(t: f64, c: &crate::event::CardEvent) -> Value {
    use crate::event::CardEvent as C;
    match c {
        C::Readers(r) => json!({"type": "card", "t": t, "state": "readers", "readers": r}),
        C::Inserted { reader, atr } => json!({
            "type": "card", "t": t, "state": "inserted", "reader": reader, "atr": hex_string(atr),
        }),
        C::Removed { reader } => {
            json!({"type": "card", "t": t, "state": "removed", "reader": reader})
        }
        C::Connected {
            reader,
            protocol,
            share,
            atr,
        } => json!({
            "type": "card", "t": t, "state": "connected", "reader": reader,
            "protocol": protocol,
            "share": match share { crate::event::ShareMode::Shared => "shared", crate::event::ShareMode::Exclusive => "exclusive" },
            "atr": hex_string(atr),
        }),
        C::Reconnected {
            reader,
            disposition,
            protocol,
        } => json!({
            "type": "card", "t": t, "state": "reconnected", "reader": reader,
            "disposition": disposition.label(), "protocol": protocol,
        }),
        C::Disconnected {
            reader,
            disposition,
        } => json!({
            "type": "card", "t": t, "state": "disconnected", "reader": reader,
            "disposition": disposition.label(),
        }),
        C::Transaction { begun } => json!({
            "type": "card", "t": t, "state": if *begun { "transaction_begun" } else { "transaction_ended" },
        }),
    }
}

/// A decoded frame as a JSON record (`"type":"frame"`).
pub fn frame_record(sf: &crate::session::SessionFrame, bytes: Option<&[u8]>) -> Value {
    let f = &sf.frame;
    let mut v = json!({
        "type": "frame", "t": sf.at.as_secs_f64(),
        "dir": sf.direction.label(),
        "protocol": f.protocol.id(),
        "kind": f.kind,
        "status": status_id(&f.status),
        "evidence": f.evidence().strength.id(), "bits": f.evidence().bits,
        "start": f.span.start, "end": f.span.end,
        "summary": f.summary(),
    });
    if let (Some(b), Value::Object(m)) = (bytes, &mut v) {
        m.insert("hex".into(), Value::String(hex_string(b)));
    }
    if let (crate::decode::FrameStatus::BadChecksum { expected, found }, Value::Object(m)) =
        (&f.status, &mut v)
    {
        m.insert("checksum_expected".into(), json!(expected));
        m.insert("checksum_found".into(), json!(found));
    }
    v
}

pub fn status_id(s: &crate::decode::FrameStatus) -> &'static str {
    match s {
        crate::decode::FrameStatus::Ok => "ok",
        crate::decode::FrameStatus::BadChecksum { .. } => "bad_checksum",
        crate::decode::FrameStatus::Truncated => "truncated",
        crate::decode::FrameStatus::Malformed(_) => "malformed",
    }
}

/// A diagnosis as a JSON record (`"type":"event"` with the knowledge id).
pub fn diagnosis_record(d: &crate::session::SessionDiagnosis) -> Value {
    let g = &d.diagnosis;
    let mut v = json!({
        "type": "event", "t": g.first_at.as_secs_f64(),
        "id": g.id, "severity": g.severity.label(),
        "title": g.title, "text": g.context,
        "about_68": g.about_68,
    });
    if let Value::Object(m) = &mut v {
        if let Some(d) = g.direction {
            m.insert("dir".into(), json!(d.label()));
        }
        if let Some(sp) = &g.span {
            m.insert("start".into(), json!(sp.start));
            m.insert("end".into(), json!(sp.end));
        }
    }
    v
}

/// One record as a text line. Every text that can come from outside (a reason an OS or a
/// remote end gave, a reader name, a capture's replay note) goes through `printable`, so a
/// line printed to a terminal carries no control character or escape sequence.
pub fn text_record(ev: &TimedEvent) -> String {
    let t = ev.at.as_secs_f64();
    match &ev.event {
        Event::Rx(b) => format!("{t:12.6} rx {}", hex_string(b)),
        Event::Tx(b) => format!("{t:12.6} tx {}", hex_string(b)),
        Event::LineSettings { settings, modem } => format!(
            "{t:12.6} settings {settings} dtr {} rts {}",
            modem.dtr.map_or("n/a", on_off),
            modem.rts.map_or("n/a", on_off)
        ),
        Event::Connection(ConnectionState::Up) => format!("{t:12.6} connection up"),
        Event::Connection(ConnectionState::Down { reason }) => {
            format!("{t:12.6} connection down: {}", printable(reason))
        }
        Event::Connection(ConnectionState::Retrying { reason }) => {
            format!("{t:12.6} connection retrying: {}", printable(reason))
        }
        Event::Overrun(o) => format!(
            "{t:12.6} event error: {} bytes dropped (output fell behind)",
            o.dropped_bytes
        ),
        Event::BreakSent => format!("{t:12.6} event: break sent"),
        Event::LineErrors(None) => format!("{t:12.6} event: line error counters not available"),
        Event::LineErrors(Some(c)) => format!(
            "{t:12.6} event: line errors framing {} parity {} overrun {} break {} buffer {}",
            c.frame, c.parity, c.overrun, c.brk, c.buf_overrun
        ),
        Event::CommandFailed { command, reason } => format!(
            "{t:12.6} event warning: {}: {}",
            printable(command),
            printable(reason)
        ),
        Event::Apdu(x) => {
            let sw = x
                .sw()
                .map(|s| {
                    crate::decode::iso7816::sw::lookup(crate::decode::iso7816::sw::StatusWord(s))
                        .summary()
                })
                .unwrap_or_else(|| "no status word".to_string());
            format!(
                "{t:12.6} apdu [{}] > {} < {} {sw} ({:.1} ms)",
                x.origin.label(),
                hex_string(&x.command),
                hex_string(x.data()),
                x.duration.as_secs_f64() * 1000.0
            )
        }
        Event::Card(c) => format!(
            "{t:12.6} card {}",
            printable(&crate::card::describe::card_event_text(c))
        ),
        Event::Replay { text, .. } => format!("{t:12.6} event: replay {}", printable(text)),
        Event::Pcsc { operation, code } => format!(
            "{t:12.6} event error: {}: {}",
            printable(operation),
            printable(&crate::card::describe::pcsc_error_text(*code))
        ),
        Event::Trace(te) => format!("{t:12.6} {}", trace_text(te)),
    }
}

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
        "send" | "send-hex" => Command::Transmit(sendline::parse_hex(arg).map_err(|e| err(&e))?),
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
}

impl<W: Write> Headless<W> {
    pub fn new(out: W, format: OutputFormat) -> Headless<W> {
        Headless {
            out,
            format,
            line_no: 0,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> FrontEnd for Headless<W> {
    type Input = String;

    fn on_event(&mut self, m: &mut Monitor, ev: &TimedEvent) -> color_eyre::Result<()> {
        use crate::event::TraceEvent;
        match &ev.event {
            Event::Trace(TraceEvent::Stream { name, pid, .. }) => {
                tag_trace_stream(&mut m.session.stamp, Some((name, *pid)));
            }
            Event::Trace(TraceEvent::Flush { .. }) => {}
            Event::Trace(_) => tag_trace_stream(&mut m.session.stamp, None),
            _ => {}
        }
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

/// INTERIM until `TimedEvent` carries a stream id (branch `streams`): a traced program's
/// streams all go through the main stream, each run of events announced by a
/// `TraceEvent::Stream`. Its name and pid become the `stream` and `pid` members of every
/// record that follows (they ride on the stamp's labels), so each record names its stream.
/// Frames and diagnoses written later may carry the next stream's name.
/// News of the program as a whole (a process, its exit) clears them.
fn tag_trace_stream(stamp: &mut crate::stamp::Stamp, stream: Option<(&str, u32)>) {
    stamp.labels.retain(|(k, _)| k != "stream" && k != "pid");
    if let Some((name, pid)) = stream {
        stamp.labels.push(("stream".to_string(), name.to_string()));
        stamp.labels.push(("pid".to_string(), pid.to_string()));
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
/// outcome). Returns the exit status.
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
    let end = monitor.run(&mut fe, &mut input).await?;
    fe.out.flush()?;
    Ok(monitor.exit_status(end).unwrap_or(crate::exit::OK))
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
    let Some(v) = crate::handshake::report::step_event_json(runner, step, at) else {
        return Ok(());
    };
    match format {
        OutputFormat::Json => write_json_line(w, &stamp_value(v, stamp)),
        OutputFormat::Text => writeln!(
            w,
            "{:12.6} event {}: handshake {}",
            at.as_secs_f64(),
            v["severity"].as_str().unwrap_or(""),
            printable(v["text"].as_str().unwrap_or(""))
        ),
    }
}

/// Records for script steps: `event` records `script.step` (info when it met its
/// expectation or had none and succeeded, error otherwise) and `script.finished`.
fn write_script_updates(
    out: &mut impl Write,
    stamp: &crate::stamp::Stamp,
    at: crate::event::Timestamp,
    ups: &[crate::card::runner::RunnerUpdate],
    format: OutputFormat,
) -> std::io::Result<()> {
    use crate::card::runner::{RunnerUpdate, StepResult};
    let t = at.as_secs_f64();
    for u in ups {
        let v = match u {
            RunnerUpdate::StepDone {
                line,
                result,
                expect,
                ..
            } => {
                let failed = result.is_failure();
                let (sw, text) = match result {
                    StepResult::Sw { sw, expected } => (
                        Some(format!("{sw:04X}")),
                        match (expected, expect) {
                            (Some(true), Some(e)) => {
                                format!("line {line}: {sw:04X} as expected ({e})")
                            }
                            (Some(false), Some(e)) => {
                                format!("line {line}: {sw:04X}, expected {e}")
                            }
                            _ => format!("line {line}: {sw:04X}"),
                        },
                    ),
                    StepResult::Reset => (None, format!("line {line}: card reset")),
                    StepResult::Failed(why) => (None, format!("line {line}: {why}")),
                };
                json!({
                    "type": "event", "t": t, "id": "script.step",
                    "severity": if failed { "error" } else { "info" },
                    "text": text, "line": line, "sw": sw, "expect": expect, "ok": !failed,
                })
            }
            RunnerUpdate::Finished { failures } => json!({
                "type": "event", "t": t, "id": "script.finished",
                "severity": if *failures > 0 { "error" } else { "info" },
                "text": format!("script finished: {failures} step(s) failed"),
                "failures": failures,
            }),
        };
        match format {
            OutputFormat::Json => write_json_line(out, &stamp_value(v, stamp))?,
            OutputFormat::Text => writeln!(
                out,
                "{t:12.6} event {}: {}",
                v["severity"].as_str().unwrap_or(""),
                printable(v["text"].as_str().unwrap_or(""))
            )?,
        }
    }
    Ok(())
}

/// The `baud` records of an active scan.
fn write_scan_updates(
    out: &mut impl Write,
    stamp: &crate::stamp::Stamp,
    at: crate::event::Timestamp,
    ups: &[ScanUpdate],
    format: OutputFormat,
) -> std::io::Result<()> {
    for u in ups {
        match format {
            OutputFormat::Json => write_json_line(out, &stamp_value(scan_record(at, u), stamp))?,
            OutputFormat::Text => writeln!(out, "{:12.6} baud {}", at.as_secs_f64(), scan_text(u))?,
        }
    }
    Ok(())
}

fn ranked_json(r: &Ranked) -> Value {
    json!({
        "baud": r.candidate.baud.bps(), "format": r.candidate.format.to_string(),
        "score": (r.score * 1000.0).round() / 1000.0, "bytes": r.bytes, "reason": r.reason,
    })
}

/// A `baud` record: `state` is `trying`, `scored`, `locked`, `none` or `ignored` (the port
/// ignores the rate).
pub fn scan_record(at: crate::event::Timestamp, u: &ScanUpdate) -> Value {
    let t = at.as_secs_f64();
    let v = match u {
        ScanUpdate::Trying(c) => json!({
            "type": "baud", "t": t, "state": "trying",
            "baud": c.baud.bps(), "format": c.format.to_string(),
        }),
        ScanUpdate::Scored(r) => {
            let mut v = ranked_json(r);
            if let Value::Object(m) = &mut v {
                m.insert("state".into(), json!("scored"));
            }
            v
        }
        ScanUpdate::Finished { locked, ranking } => {
            let mut v = locked.as_ref().map_or_else(|| json!({}), ranked_json);
            if let Value::Object(m) = &mut v {
                m.insert(
                    "state".into(),
                    json!(if locked.is_some() { "locked" } else { "none" }),
                );
                m.insert(
                    "ranking".into(),
                    Value::Array(ranking.iter().map(ranked_json).collect()),
                );
            }
            v
        }
        ScanUpdate::RateIgnored { ranking } => json!({
            "state": "ignored",
            "reason": crate::diagnose::baud_scan::RATE_IGNORED_TEXT,
            "ranking": Value::Array(ranking.iter().map(ranked_json).collect()),
        }),
    };
    // One member order for every `baud` record, whichever way it was built.
    let mut m = match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let mut out = serde_json::Map::new();
    out.insert("type".into(), json!("baud"));
    out.insert("t".into(), json!(t));
    for k in [
        "state", "baud", "format", "score", "bytes", "reason", "ranking",
    ] {
        if let Some(x) = m.shift_remove(k) {
            out.insert(k.into(), x);
        }
    }
    out.extend(m);
    Value::Object(out)
}

fn scan_text(u: &ScanUpdate) -> String {
    match u {
        ScanUpdate::Trying(c) => format!("trying {c}"),
        ScanUpdate::Scored(r) => format!(
            "scored {} {:.2} over {} bytes: {}",
            r.candidate, r.score, r.bytes, r.reason
        ),
        ScanUpdate::Finished {
            locked: Some(r), ..
        } => format!(
            "locked {} (score {:.2}): {}",
            r.candidate, r.score, r.reason
        ),
        ScanUpdate::Finished { locked: None, .. } => {
            "none: no setting scored (is the device sending?)".to_string()
        }
        ScanUpdate::RateIgnored { .. } => {
            format!("ignored: {}", crate::diagnose::baud_scan::RATE_IGNORED_TEXT)
        }
    }
}

/// The JSON lines of one event, stamped (see [`crate::stamp`]): a read as `rx`/`tx` records of
/// at most [`RECORD_BYTES`] each (written straight out, no `Value` or String between: reads
/// are most of the output), any other event as [`json_record`]. `label` is a tap's name for
/// the direction. Returns the lines written.
pub fn write_event_json<W: Write + ?Sized>(
    out: &mut W,
    ev: &TimedEvent,
    label: Option<&str>,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<u64> {
    let (kind, b) = match &ev.event {
        Event::Rx(b) => ("rx", b),
        Event::Tx(b) => ("tx", b),
        _ => {
            write_json_line(out, &stamp_value(json_record(ev), stamp))?;
            return Ok(1);
        }
    };
    let (t, ts) = stamp.times(ev.at);
    let t = JsonF64::new(t);
    // At most RECORD_BYTES of data a record: a 64 KiB read is 16 lines a log shipper takes
    // whole, all with the read's time. An empty read is still one record.
    let mut pieces = b.chunks(RECORD_BYTES);
    let first = pieces.next().unwrap_or_default();
    let mut n = 0;
    for piece in std::iter::once(first).chain(pieces) {
        let mut line = JsonLine::begin(&mut *out)?;
        line.str("type", kind)?
            .stamp_text(&t, &ts)?
            .hex("hex", piece)?;
        if let Some(l) = label {
            line.str("label", l)?;
        }
        line.labels(stamp)?.end()?;
        n += 1;
    }
    Ok(n)
}

/// The first record of a headless JSON run or a jsonl export: what the records that follow
/// are about. `host` and `command` are None where not known (an export: the capture does not
/// keep them); `capture` is the file being recorded to.
pub fn session_record(
    stamp: &crate::stamp::Stamp,
    version: &str,
    host: Option<&str>,
    command: Option<&[String]>,
    source: &str,
    settings: Option<&crate::event::LineSettings>,
    capture: Option<&str>,
) -> Value {
    let settings = settings.map(
        |s| json!({"baud": s.baud.bps(), "format": s.format.to_string(), "flow": s.flow.label()}),
    );
    let v = json!({
        "type": "session", "t": 0.0,
        "version": version, "host": host, "command": command,
        "source": source, "settings": settings, "capture": capture,
    });
    stamp_value(v, stamp)
}

/// [`session_record`] for this process's session: this hsmon, this host, this command line.
pub fn live_session_record(session: &Session) -> Value {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty());
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let capture = session
        .recorder()
        .filter(|w| w.failure().is_none())
        .map(|w| w.name().to_string());
    session_record(
        &session.stamp,
        env!("CARGO_PKG_VERSION"),
        host.as_deref(),
        Some(&argv),
        &session.source_name,
        session.settings.as_ref(),
        capture.as_deref(),
    )
}

/// The most data bytes one `rx`/`tx` JSON record carries: a longer read is split into
/// records of this many bytes, all with the read's time.
pub const RECORD_BYTES: usize = 4096;

/// Takes one event into the session and prints its record, then the frames and diagnoses it
/// produced: what the headless loop does with every event (public for `benches/headless.rs`).
pub fn write_record(
    out: &mut impl Write,
    session: &mut Session,
    ev: &TimedEvent,
    format: OutputFormat,
) -> std::io::Result<()> {
    session.ingest(ev);
    write_taken(out, session, ev, format)
}

/// The record of an event the session has just taken, then the frames and diagnoses it
/// produced.
pub fn write_taken(
    out: &mut impl Write,
    session: &mut Session,
    ev: &TimedEvent,
    format: OutputFormat,
) -> std::io::Result<()> {
    let label = match ev.event {
        Event::Rx(_) => session.labels.as_ref().map(|l| l.rx.as_str()),
        Event::Tx(_) => session.labels.as_ref().map(|l| l.tx.as_str()),
        _ => None,
    };
    match (format, &ev.event) {
        (OutputFormat::Json, _) => {
            write_event_json(out, ev, label, &session.stamp)?;
        }
        (OutputFormat::Text, Event::Rx(b) | Event::Tx(b)) => {
            let d = if matches!(ev.event, Event::Rx(_)) {
                "rx"
            } else {
                "tx"
            };
            write!(out, "{:12.6} {d} ", ev.at.as_secs_f64())?;
            // "rx meter 68 04 …": the label after the direction, for a tap.
            if let Some(l) = label {
                write_printable(out, l)?;
                out.write_all(b" ")?;
            }
            write_hex(out, b)?;
            out.write_all(b"\n")?;
        }
        (OutputFormat::Text, _) => writeln!(out, "{}", text_record(ev))?,
    }
    write_findings(out, session, format)
}

/// Frames and diagnoses the session found since the last call. Each record is written as
/// [`frame_record`] and [`diagnosis_record`] (plus a tap's label) would print, but straight
/// to `out`; a frame's summary is read with `Frame::summary_once`, so printing a frame does
/// not keep its description.
pub fn write_findings(
    out: &mut impl Write,
    session: &mut Session,
    format: OutputFormat,
) -> std::io::Result<()> {
    let (nf, nd) = session.take_new_counts();
    let frames = session.frames();
    let diagnoses = session.diagnoses();
    let labels = session.labels.as_ref();
    let stamp = &session.stamp;
    // The frames of one read share its time: formatted once.
    let mut time: Option<(crate::event::Timestamp, JsonF64, String)> = None;
    let mut text_time: Option<(crate::event::Timestamp, String)> = None;
    for f in frames.range(frames.len() - nf..) {
        let label = labels.map(|l| l.get(f.direction));
        match format {
            OutputFormat::Json => {
                if time.as_ref().is_none_or(|(at, _, _)| *at != f.at) {
                    let (t, ts) = stamp.times(f.at);
                    time = Some((f.at, JsonF64::new(t), ts));
                }
                if let Some((_, t, ts)) = &time {
                    write_frame_json(out, f, t, ts, label, stamp)?
                }
            }
            OutputFormat::Text => {
                // "{:12.6} frame {dir} {protocol} {kind} {status} [{start}..{end}] {summary}",
                // the time formatted once per read, the rest written piece by piece.
                if text_time.as_ref().is_none_or(|(at, _)| *at != f.at) {
                    text_time = Some((f.at, format!("{:12.6}", f.at.as_secs_f64())));
                }
                if let Some((_, t)) = &text_time {
                    out.write_all(t.as_bytes())?;
                }
                out.write_all(b" frame ")?;
                for (i, word) in [
                    f.direction.label(),
                    f.frame.protocol.id(),
                    f.frame.kind,
                    status_id(&f.frame.status),
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        out.write_all(b" ")?;
                    }
                    out.write_all(word.as_bytes())?;
                }
                out.write_all(b" [")?;
                CompactFormatter.write_u64(out, f.frame.span.start)?;
                out.write_all(b"..")?;
                CompactFormatter.write_u64(out, f.frame.span.end)?;
                out.write_all(b"] ")?;
                write_printable(out, &f.frame.summary_once())?;
                out.write_all(b"\n")?;
            }
        }
    }
    for d in diagnoses.range(diagnoses.len() - nd..) {
        match format {
            OutputFormat::Json => write_diagnosis_json(out, d, stamp)?,
            OutputFormat::Text => {
                let g = &d.diagnosis;
                write!(
                    out,
                    "{:12.6} event {} ",
                    g.first_at.as_secs_f64(),
                    g.severity.label()
                )?;
                write_printable(out, &g.id)?;
                out.write_all(b": ")?;
                write_printable(out, &g.title)?;
                out.write_all(" — ".as_bytes())?;
                write_printable(out, &g.context)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// A frame's JSON line: [`frame_record`] (without bytes) and its label, member for member.
fn write_frame_json(
    out: &mut impl Write,
    sf: &crate::session::SessionFrame,
    t: &JsonF64,
    ts: &str,
    label: Option<&str>,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    let f = &sf.frame;
    let evidence = f.evidence();
    let mut line = JsonLine::begin(out)?;
    line.str("type", "frame")?
        .stamp_text(t, ts)?
        .str("dir", sf.direction.label())?
        .str("protocol", f.protocol.id())?
        .str("kind", f.kind)?
        .str("status", status_id(&f.status))?
        .str("evidence", evidence.strength.id())?
        .u64("bits", u64::from(evidence.bits))?
        .u64("start", f.span.start)?
        .u64("end", f.span.end)?
        .str("summary", &f.summary_once())?;
    if let crate::decode::FrameStatus::BadChecksum { expected, found } = &f.status {
        line.u64("checksum_expected", u64::from(*expected))?
            .u64("checksum_found", u64::from(*found))?;
    }
    if let Some(l) = label {
        line.str("label", l)?;
    }
    line.labels(stamp)?.end()
}

/// A diagnosis's JSON line: [`diagnosis_record`], member for member.
fn write_diagnosis_json(
    out: &mut impl Write,
    d: &crate::session::SessionDiagnosis,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    let g = &d.diagnosis;
    let mut line = JsonLine::begin(out)?;
    line.str("type", "event")?
        .stamp(g.first_at, stamp)?
        .str("id", &g.id)?
        .str("severity", g.severity.label())?
        .str("title", &g.title)?
        .str("text", &g.context)?
        .bool("about_68", g.about_68)?;
    if let Some(dir) = g.direction {
        line.str("dir", dir.label())?;
    }
    if let Some(sp) = &g.span {
        line.u64("start", sp.start)?.u64("end", sp.end)?;
    }
    line.labels(stamp)?.end()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_rx_record_matches_design() {
        let ev = TimedEvent {
            at: Duration::from_micros(12_300),
            event: Event::Rx(vec![0x68, 0x04, 0x04, 0x68]),
        };
        assert_eq!(
            json_record(&ev).to_string(),
            r#"{"type":"rx","t":0.0123,"hex":"68 04 04 68"}"#
        );
    }

    /// Adds `"label"` (a tap's name for who sent the bytes) to a record, then stamps it.
    fn with_label(mut v: Value, label: Option<&str>, stamp: &crate::stamp::Stamp) -> Value {
        if let (Some(l), Value::Object(m)) = (label, &mut v) {
            m.insert("label".into(), Value::String(l.to_string()));
        }
        stamp_value(v, stamp)
    }

    fn test_stamp() -> crate::stamp::Stamp {
        crate::stamp::Stamp {
            start_unix_ns: 1_700_000_000_123_456_789,
            labels: vec![
                ("site".into(), "lab \x1b[2J\"".into()),
                ("port".into(), "meter1".into()),
            ],
        }
    }

    /// The records as `Value`s, the way headless output was first written: the reference the
    /// direct writers must match byte for byte.
    fn by_values(
        events: &[TimedEvent],
        labels: Option<crate::session::DirectionLabels>,
    ) -> Vec<u8> {
        let mut s = Session::new("t", crate::session::DEFAULT_WINDOW_BYTES);
        s.labels = labels;
        let stamp = test_stamp();
        let mut out = Vec::new();
        let findings = |s: &mut Session, out: &mut Vec<u8>| {
            let labels = s.labels.clone();
            let (frames, diags) = s.take_new();
            for f in frames {
                let l = labels.as_ref().map(|l| l.get(f.direction));
                write_json_line(out, &with_label(frame_record(f, None), l, &stamp)).unwrap();
            }
            for d in diags {
                write_json_line(out, &with_label(diagnosis_record(d), None, &stamp)).unwrap();
            }
        };
        for ev in events {
            s.ingest(ev);
            let l = match (&ev.event, s.labels.as_ref()) {
                (Event::Rx(_), Some(l)) => Some(l.rx.as_str()),
                (Event::Tx(_), Some(l)) => Some(l.tx.as_str()),
                _ => None,
            };
            write_json_line(&mut out, &with_label(json_record(ev), l, &stamp)).unwrap();
            findings(&mut s, &mut out);
        }
        s.flush_decoders();
        findings(&mut s, &mut out);
        out
    }

    fn by_writer(
        events: &[TimedEvent],
        labels: Option<crate::session::DirectionLabels>,
        format: OutputFormat,
    ) -> Vec<u8> {
        let mut s = Session::new("t", crate::session::DEFAULT_WINDOW_BYTES);
        s.labels = labels;
        s.stamp = test_stamp();
        let mut out = Vec::new();
        for ev in events {
            write_record(&mut out, &mut s, ev, format).unwrap();
        }
        s.flush_decoders();
        write_findings(&mut out, &mut s, format).unwrap();
        out
    }

    /// A stream with every kind of record the writers handle: M-Bus frames good and with a
    /// bad checksum (checksum members), text with escapes and bidi controls, STM32 bytes,
    /// garbage, both directions, and events that are not reads.
    fn mixed_events() -> Vec<TimedEvent> {
        let mut stream: Vec<u8> = Vec::new();
        let mut x: u32 = 0x2545_f491;
        for n in 0..400u32 {
            let mut mbus = vec![
                0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
                0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
            ];
            if n % 3 == 0 {
                mbus[25] ^= 0x55;
            }
            stream.extend_from_slice(&mbus);
            stream.extend_from_slice(format!("boot: {n} \x1b[31mred\u{202e} ü\r\n").as_bytes());
            for _ in 0..48 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                stream.push(x as u8);
            }
            stream.extend_from_slice(b"\xe8\xe5llo world\r\n");
        }
        let mut events = vec![TimedEvent {
            at: Duration::ZERO,
            event: Event::Connection(ConnectionState::Up),
        }];
        for (i, piece) in stream.chunks(333).enumerate() {
            let at = Duration::from_micros(i as u64 * 1234 + 7);
            let event = if i % 7 == 3 {
                Event::Tx(piece.to_vec())
            } else {
                Event::Rx(piece.to_vec())
            };
            events.push(TimedEvent { at, event });
            if i % 50 == 0 {
                events.push(TimedEvent {
                    at,
                    event: Event::Connection(ConnectionState::Down {
                        reason: "gone \x1b]0;x\x07".into(),
                    }),
                });
            }
        }
        events.push(TimedEvent {
            at: Duration::from_secs(9),
            event: Event::Rx(Vec::new()),
        });
        events
    }

    #[test]
    fn direct_json_records_equal_the_value_records() {
        let events = mixed_events();
        let labels = crate::session::DirectionLabels {
            rx: "meter \x1b[2J".into(),
            tx: "master".into(),
        };
        for labels in [None, Some(labels)] {
            let want = String::from_utf8(by_values(&events, labels.clone())).unwrap();
            let got = String::from_utf8(by_writer(&events, labels, OutputFormat::Json)).unwrap();
            assert!(
                got.contains("\"checksum_expected\""),
                "bad checksums covered"
            );
            assert!(got.contains("\"type\":\"event\""), "diagnoses covered");
            assert!(got.lines().count() > 2000);
            for (n, (g, w)) in got.lines().zip(want.lines()).enumerate() {
                assert_eq!(g, w, "line {n}");
            }
            assert_eq!(got.lines().count(), want.lines().count());
        }
    }

    #[test]
    fn direct_text_records_equal_the_formatted_ones() {
        let events = mixed_events();
        let got = String::from_utf8(by_writer(&events, None, OutputFormat::Text)).unwrap();
        let mut s = Session::new("t", crate::session::DEFAULT_WINDOW_BYTES);
        let mut want = String::new();
        let findings = |s: &mut Session, want: &mut String| {
            let (frames, diags) = s.take_new();
            for f in frames {
                want.push_str(&format!(
                    "{:12.6} frame {} {} {} {} [{}..{}] {}\n",
                    f.at.as_secs_f64(),
                    f.direction.label(),
                    f.frame.protocol.id(),
                    f.frame.kind,
                    status_id(&f.frame.status),
                    f.frame.span.start,
                    f.frame.span.end,
                    printable(f.frame.summary())
                ));
            }
            for d in diags {
                want.push_str(&format!(
                    "{:12.6} event {} {}: {} — {}\n",
                    d.diagnosis.first_at.as_secs_f64(),
                    d.diagnosis.severity.label(),
                    printable(&d.diagnosis.id),
                    printable(&d.diagnosis.title),
                    printable(&d.diagnosis.context)
                ));
            }
        };
        for ev in &events {
            s.ingest(ev);
            want.push_str(&text_record(ev));
            want.push('\n');
            findings(&mut s, &mut want);
        }
        s.flush_decoders();
        findings(&mut s, &mut want);
        assert!(got.contains(" frame rx mbus long bad_checksum "));
        for (n, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "line {n}");
        }
        assert_eq!(got.lines().count(), want.lines().count());
    }

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
