//! Headless mode: the same session without a terminal UI. Each record is one line on
//! stdout (text, or JSON with `"type"` and `"t"` as DESIGN.md specifies); stdin lines are
//! commands, so scripts and tests can drive the port as the keys do.

use std::io::Write;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::cli::OutputFormat;
use crate::diagnose::autobaud::Ranked;
use crate::diagnose::baud_scan::{BaudScan, ScanUpdate};
use crate::event::{
    Baud, Command, ConnectionState, Event, FlowControl, FrameFormat, TimedEvent, on_off,
};
use crate::sanitize::{hex_string, printable, write_json_line};
use crate::session::Session;
use crate::source::SourceHandle;
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
            "dropped_bytes": o.dropped_bytes,
            "text": format!("{} bytes dropped: the output fell behind the port", o.dropped_bytes),
        }),
        Event::BreakSent => json!({
            "type": "event", "t": t, "id": "hsmon.break_sent", "severity": "info", "text": "break sent",
        }),
        Event::LineErrors(None) => json!({
            "type": "event", "t": t, "id": "hsmon.line_errors", "severity": "info",
            "available": false,
            "text": "this port keeps no line error counters (TIOCGICOUNT unsupported)",
        }),
        Event::LineErrors(Some(c)) => json!({
            "type": "event", "t": t, "id": "hsmon.line_errors",
            "severity": if c.total() > 0 { "warning" } else { "info" },
            "available": true,
            "frame": c.frame, "overrun": c.overrun, "parity": c.parity, "brk": c.brk,
            "buf_overrun": c.buf_overrun,
            "text": format!("line errors: framing {} parity {} overrun {} break {} buffer {}",
                c.frame, c.parity, c.overrun, c.brk, c.buf_overrun),
        }),
        Event::CommandFailed { command, reason } => json!({
            "type": "event", "t": t, "id": "hsmon.command_failed", "severity": "warning",
            "command": command, "text": format!("{command}: {reason}"),
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
            "paused": paused, "speed": speed, "text": text,
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

/// Runs until Ctrl-C / SIGTERM / SIGHUP, `quit` on stdin, the source ending, or `deadline`.
/// With `autobaud`, an active scan runs once the port reports its settings; the run ends when
/// the scan does, with exit status 0 if it locked and 1 if nothing scored.
pub async fn run(
    mut handle: SourceHandle,
    mut session: Session,
    format: OutputFormat,
    deadline: Option<std::time::Duration>,
    extras: crate::run::Extras,
    clock: crate::clock::Clock,
) -> color_eyre::Result<u8> {
    let autobaud = extras.autobaud;
    let mut script = extras.script;
    let mut script_started = false;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut line_no = 0usize;
    let mut signals = crate::run::Signals::new()?;
    let stop_at = deadline.map(|d| tokio::time::Instant::now() + d);
    let mut shutting_down = false;
    let mut scan: Option<BaudScan> = None;
    let mut scan_wanted = autobaud;
    let mut status = crate::exit::OK;
    let mut tick = tokio::time::interval(SCAN_TICK);

    loop {
        tokio::select! {
            ev = handle.events.recv() => {
                let Some(ev) = ev else { break };
                let mut cmds = Vec::new();
                let mut batch = vec![ev];
                // Drain what is already queued before flushing: one write per burst. At most a
                // channel's worth: a source far ahead would otherwise refill the channel as fast
                // as it is emptied, and the batch would hold its whole backlog in memory.
                while batch.len() < crate::source::EVENT_CHANNEL_CAPACITY {
                    let Ok(ev) = handle.events.try_recv() else { break };
                    batch.push(ev);
                }
                for ev in &batch {
                    write_record(&mut out, &mut session, ev, format)?;
                    if scan_wanted {
                        if let (None, Event::LineSettings { settings, .. }) = (&scan, &ev.event) {
                            let (s, c, ups) = BaudScan::start(*settings, session.baud_watch().estimate());
                            write_scan_updates(&mut out, ev.at, &ups, format)?;
                            cmds.extend(c);
                            scan = Some(s);
                            scan_wanted = false;
                            continue;
                        }
                    }
                    if let Some(s) = scan.as_mut() {
                        let (c, ups) = s.on_event(ev);
                        write_scan_updates(&mut out, ev.at, &ups, format)?;
                        cmds.extend(c);
                    }
                    if let Some(r) = script.as_mut() {
                        // The script runs once a card is connected.
                        if !script_started && matches!(ev.event, Event::Card(crate::event::CardEvent::Connected { .. })) {
                            script_started = true;
                            cmds.extend(r.run_all());
                        } else {
                            let (c, ups) = r.on_event(ev);
                            cmds.extend(c);
                            write_script_updates(&mut out, ev.at, &ups, format)?;
                        }
                    }
                }
                out.flush()?;
                for c in cmds {
                    if handle.commands.send(c).await.is_err() { break }
                }
            }
            _ = capture_timer(&session, &clock) => session.poll_capture(clock.now()),
            _ = tick.tick(), if scan.as_ref().is_some_and(|s| !s.is_finished()) => {
                let now = clock.now();
                if let Some(s) = scan.as_mut() {
                    let (cmds, ups) = s.poll(now.as_secs_f64());
                    write_scan_updates(&mut out, now, &ups, format)?;
                    out.flush()?;
                    for c in cmds {
                        if handle.commands.send(c).await.is_err() { break }
                    }
                }
            }
            line = stdin.next_line(), if stdin_open && !shutting_down => match line {
                Ok(Some(l)) => {
                    line_no += 1;
                    match parse_control(&l) {
                        Ok(Some(cmd)) => {
                            let quit = cmd == Command::Shutdown;
                            if handle.commands.send(cmd).await.is_err() { break }
                            shutting_down |= quit;
                        }
                        Ok(None) => {}
                        Err(e) => eprintln!("hsmon: stdin line {line_no}: {e}"),
                    }
                }
                // End of input is not the end of the session: keep monitoring.
                Ok(None) | Err(_) => stdin_open = false,
            },
            _ = signals.recv(), if !shutting_down => {
                shutting_down = true;
                let _ = handle.commands.send(Command::Shutdown).await;
            }
            _ = async { match stop_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } }, if !shutting_down => {
                shutting_down = true;
                if autobaud && scan.as_ref().is_none_or(|s| !s.is_finished()) {
                    // Out of time before the scan finished: nothing locked.
                    status = crate::exit::EXPECTATION_FAILED;
                }
                let _ = handle.commands.send(Command::Shutdown).await;
            }
        }
        if !shutting_down {
            if let Some(r) = script.as_ref().filter(|r| r.is_finished() && !r.is_busy()) {
                status = if r.expectation_failures() > 0 {
                    crate::exit::EXPECTATION_FAILED
                } else {
                    crate::exit::OK
                };
                shutting_down = true;
                let _ = handle.commands.send(Command::Shutdown).await;
            }
            if let Some(result) = scan.as_ref().and_then(|s| s.result()) {
                status = if result.is_some() {
                    crate::exit::OK
                } else {
                    crate::exit::EXPECTATION_FAILED
                };
                shutting_down = true;
                let _ = handle.commands.send(Command::Shutdown).await;
            }
        }
    }
    session.flush_decoders();
    session.finish_capture();
    write_findings(&mut out, &mut session, format)?;
    out.flush()?;
    Ok(status)
}

/// Fires when the session's capture has records due for the file (never when it has none).
pub async fn capture_timer(session: &Session, clock: &crate::clock::Clock) {
    match session.capture_flush_due() {
        Some(due) => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(clock.instant_at(due))).await
        }
        None => std::future::pending().await,
    }
}

/// Records for script steps: `event` records `script.step` (info when it met its
/// expectation or had none and succeeded, error otherwise) and `script.finished`.
fn write_script_updates(
    out: &mut impl Write,
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
                    "line": line, "sw": sw, "expect": expect, "ok": !failed, "text": text,
                })
            }
            RunnerUpdate::Finished { failures } => json!({
                "type": "event", "t": t, "id": "script.finished",
                "severity": if *failures > 0 { "error" } else { "info" },
                "failures": failures,
                "text": format!("script finished: {failures} step(s) failed"),
            }),
        };
        match format {
            OutputFormat::Json => write_json_line(out, &v)?,
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

/// How often a running baud scan is polled (a dwell ends on time, not only on bytes).
pub const SCAN_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// The `baud` records of an active scan.
fn write_scan_updates(
    out: &mut impl Write,
    at: crate::event::Timestamp,
    ups: &[ScanUpdate],
    format: OutputFormat,
) -> std::io::Result<()> {
    for u in ups {
        match format {
            OutputFormat::Json => write_json_line(out, &scan_record(at, u))?,
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

/// A `baud` record: `state` is `trying`, `scored`, `locked` or `none`.
pub fn scan_record(at: crate::event::Timestamp, u: &ScanUpdate) -> Value {
    let t = at.as_secs_f64();
    let mut v = match u {
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
    };
    if let Value::Object(m) = &mut v {
        m.insert("type".into(), json!("baud"));
        m.insert("t".into(), json!(t));
    }
    v
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
    }
}

/// Takes one event into the session and prints its record, then the frames and diagnoses it
/// produced: what the headless loop does with every event (public for `benches/headless.rs`).
pub fn write_record(
    out: &mut impl Write,
    session: &mut Session,
    ev: &TimedEvent,
    format: OutputFormat,
) -> std::io::Result<()> {
    session.ingest(ev);
    let dir = match ev.event {
        Event::Rx(_) => Some(crate::event::Direction::Rx),
        Event::Tx(_) => Some(crate::event::Direction::Tx),
        _ => None,
    };
    let label = dir.and_then(|d| session.labels.as_ref().map(|l| l.get(d)));
    match format {
        OutputFormat::Json => write_json_line(out, &with_label(json_record(ev), label))?,
        OutputFormat::Text => match (label, dir, &ev.event) {
            // "rx meter 68 04 …": the label after the direction, for a tap.
            (Some(l), Some(d), Event::Rx(b) | Event::Tx(b)) => writeln!(
                out,
                "{:12.6} {} {} {}",
                ev.at.as_secs_f64(),
                d.label(),
                printable(l),
                hex_string(b)
            )?,
            _ => writeln!(out, "{}", text_record(ev))?,
        },
    }
    write_findings(out, session, format)
}

/// Adds `"label"` (a tap's name for who sent the bytes) to a record.
fn with_label(mut v: Value, label: Option<&str>) -> Value {
    if let (Some(l), Value::Object(m)) = (label, &mut v) {
        m.insert("label".into(), Value::String(l.to_string()));
    }
    v
}

/// Frames and diagnoses the session found since the last call.
pub fn write_findings(
    out: &mut impl Write,
    session: &mut Session,
    format: OutputFormat,
) -> std::io::Result<()> {
    let labels = session.labels.clone();
    let label = |d| labels.as_ref().map(|l| l.get(d));
    let (frames, diags) = session.take_new();
    for f in frames {
        match format {
            OutputFormat::Json => {
                write_json_line(out, &with_label(frame_record(f, None), label(f.direction)))?
            }
            OutputFormat::Text => writeln!(
                out,
                "{:12.6} frame {} {} {} {} [{}..{}] {}",
                f.at.as_secs_f64(),
                f.direction.label(),
                f.frame.protocol.id(),
                f.frame.kind,
                status_id(&f.frame.status),
                f.frame.span.start,
                f.frame.span.end,
                printable(f.frame.summary())
            )?,
        }
    }
    for d in diags {
        match format {
            OutputFormat::Json => write_json_line(out, &diagnosis_record(d))?,
            OutputFormat::Text => writeln!(
                out,
                "{:12.6} event {} {}: {} — {}",
                d.diagnosis.first_at.as_secs_f64(),
                d.diagnosis.severity.label(),
                printable(&d.diagnosis.id),
                printable(&d.diagnosis.title),
                printable(&d.diagnosis.context)
            )?,
        }
    }
    Ok(())
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
