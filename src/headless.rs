//! Headless mode: the same session without a terminal UI. Each record is one line on
//! stdout (text, or JSON with `"type"` and `"t"` as DESIGN.md specifies); stdin lines are
//! commands, so scripts and tests can drive the port as the keys do.

use std::io::Write;

use serde_json::ser::{CompactFormatter, Formatter as _};

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::cli::OutputFormat;
use crate::diagnose::autobaud::Ranked;
use crate::diagnose::baud_scan::{BaudScan, ScanUpdate};
use crate::event::{
    Baud, Command, ConnectionState, Event, FlowControl, FrameFormat, TimedEvent, on_off,
};
use crate::sanitize::{
    JsonF64, JsonLine, hex_string, printable, write_hex, write_json_line, write_printable,
};
use crate::session::Session;
use crate::source::SourceHandle;
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
    // Errors from stdout are tagged: a closed pipe ends the run quietly (see `output`).
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, crate::output::Stdout::lock());
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
    if format == OutputFormat::Json {
        write_json_line(&mut out, &live_session_record(&session))?;
    }

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
                            write_scan_updates(&mut out, &session.stamp, ev.at, &ups, format)?;
                            cmds.extend(c);
                            scan = Some(s);
                            scan_wanted = false;
                            continue;
                        }
                    }
                    if let Some(s) = scan.as_mut() {
                        let (c, ups) = s.on_event(ev);
                        write_scan_updates(&mut out, &session.stamp, ev.at, &ups, format)?;
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
                            write_script_updates(&mut out, &session.stamp, ev.at, &ups, format)?;
                        }
                    }
                }
                out.flush()?;
                for c in cmds {
                    if handle.commands.send(c).await.is_err() { break }
                }
            }
            _ = session_timer(&session, &clock) => {
                if session.poll(clock.now()) {
                    write_findings(&mut out, &mut session, format)?;
                    out.flush()?;
                }
            }
            _ = tick.tick(), if scan.as_ref().is_some_and(|s| !s.is_finished()) => {
                let now = clock.now();
                if let Some(s) = scan.as_mut() {
                    let (cmds, ups) = s.poll(now.as_secs_f64());
                    write_scan_updates(&mut out, &session.stamp, now, &ups, format)?;
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
                        Err(e) => crate::output::eprint_line(&format!("hsmon: stdin line {line_no}: {e}"))?,
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

/// Fires when the session has work due (capture records for the file, frames held for
/// arbitration on a quiet line); never when it has none. Answer it with `Session::poll`.
pub async fn session_timer(session: &Session, clock: &crate::clock::Clock) {
    match session.next_due() {
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

/// How often a running baud scan is polled (a dwell ends on time, not only on bytes).
pub const SCAN_TICK: std::time::Duration = std::time::Duration::from_millis(100);

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
    write_event_json_on(out, ev, label, None, stamp)
}

/// [`write_event_json`] with the `"stream"` member every record of a multi-stream session
/// carries (the stream's label: a tap's port path).
pub fn write_event_json_on<W: Write + ?Sized>(
    out: &mut W,
    ev: &TimedEvent,
    label: Option<&str>,
    stream: Option<&str>,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<u64> {
    let (kind, b) = match &ev.event {
        Event::Rx(b) => ("rx", b),
        Event::Tx(b) => ("tx", b),
        _ => {
            let mut v = json_record(ev);
            if let (Some(s), Value::Object(m)) = (stream, &mut v) {
                m.insert("stream".into(), Value::String(s.to_string()));
            }
            write_json_line(out, &stamp_value(v, stamp))?;
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
        if let Some(s) = stream {
            line.str("stream", s)?;
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
    let label = match ev.event {
        Event::Rx(_) => session.labels.as_ref().map(|l| l.rx.as_str()),
        Event::Tx(_) => session.labels.as_ref().map(|l| l.tx.as_str()),
        _ => None,
    };
    let stream = session.stream_label(ev.stream);
    match (format, &ev.event) {
        (OutputFormat::Json, _) => {
            write_event_json_on(out, ev, label, stream, &session.stamp)?;
        }
        (OutputFormat::Text, Event::Rx(b) | Event::Tx(b)) => {
            let d = if matches!(ev.event, Event::Rx(_)) {
                "rx"
            } else {
                "tx"
            };
            write!(out, "{:12.6} ", ev.at.as_secs_f64())?;
            write_stream_text(out, stream)?;
            write!(out, "{d} ")?;
            // "rx meter 68 04 …": the label after the direction, for a tap.
            if let Some(l) = label {
                write_printable(out, l)?;
                out.write_all(b" ")?;
            }
            write_hex(out, b)?;
            out.write_all(b"\n")?;
        }
        (OutputFormat::Text, _) => {
            let line = text_record(ev);
            match stream {
                None => writeln!(out, "{line}")?,
                Some(_) => {
                    // "    1.234567 [/dev/ttyUSB1] settings …": the stream after the time.
                    let (t, rest) = line.trim_start().split_once(' ').unwrap_or((&line, ""));
                    write!(out, "{t:>12} ")?;
                    write_stream_text(out, stream)?;
                    writeln!(out, "{rest}")?;
                }
            }
        }
    }
    write_findings(out, session, format)
}

/// `[label] ` in a multi-stream session's text lines (nothing otherwise).
fn write_stream_text(out: &mut impl Write, stream: Option<&str>) -> std::io::Result<()> {
    if let Some(s) = stream {
        out.write_all(b"[")?;
        write_printable(out, s)?;
        out.write_all(b"] ")?;
    }
    Ok(())
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
        let stream = session.stream_label(f.stream);
        match format {
            OutputFormat::Json => {
                if time.as_ref().is_none_or(|(at, _, _)| *at != f.at) {
                    let (t, ts) = stamp.times(f.at);
                    time = Some((f.at, JsonF64::new(t), ts));
                }
                if let Some((_, t, ts)) = &time {
                    write_frame_json(out, f, t, ts, label, stream, stamp)?
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
                out.write_all(b" ")?;
                write_stream_text(out, stream)?;
                out.write_all(b"frame ")?;
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
        let stream = session.stream_label(d.stream);
        match format {
            OutputFormat::Json => write_diagnosis_json(out, d, stream, stamp)?,
            OutputFormat::Text => {
                let g = &d.diagnosis;
                write!(out, "{:12.6} ", g.first_at.as_secs_f64())?;
                write_stream_text(out, stream)?;
                write!(out, "event {} ", g.severity.label())?;
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
    stream: Option<&str>,
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
    if let Some(s) = stream {
        line.str("stream", s)?;
    }
    line.labels(stamp)?.end()
}

/// A diagnosis's JSON line: [`diagnosis_record`], member for member.
fn write_diagnosis_json(
    out: &mut impl Write,
    d: &crate::session::SessionDiagnosis,
    stream: Option<&str>,
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
    if let Some(s) = stream {
        line.str("stream", s)?;
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
        let ev = TimedEvent::new(
            Duration::from_micros(12_300),
            Event::Rx(vec![0x68, 0x04, 0x04, 0x68]),
        );
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
        let mut events = vec![TimedEvent::new(
            Duration::ZERO,
            Event::Connection(ConnectionState::Up),
        )];
        for (i, piece) in stream.chunks(333).enumerate() {
            let at = Duration::from_micros(i as u64 * 1234 + 7);
            let event = if i % 7 == 3 {
                Event::Tx(piece.to_vec())
            } else {
                Event::Rx(piece.to_vec())
            };
            events.push(TimedEvent::new(at, event));
            if i % 50 == 0 {
                events.push(TimedEvent::new(
                    at,
                    Event::Connection(ConnectionState::Down {
                        reason: "gone \x1b]0;x\x07".into(),
                    }),
                ));
            }
        }
        events.push(TimedEvent::new(
            Duration::from_secs(9),
            Event::Rx(Vec::new()),
        ));
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
