//! A session's records as they are produced: an event's own record, then the frames and
//! diagnoses the session found with it — text lines or JSON — for the headless front end,
//! and for `export --to jsonl` and a headless replay, which play a capture through a session.

use std::io::{self, Write};

use serde_json::ser::{CompactFormatter, Formatter as _};

use crate::diagnose::baud::live_scan::ScanUpdate;
use crate::event::{ConnectionState, Event, TimedEvent, on_off};
use crate::hex::{spaced as hex_string, write_spaced as write_hex};
use crate::output::OutputFormat;
use crate::record::finding::status_id;
use crate::record::{Time, event::write_event_on, finding};
use crate::sanitize::{printable, write_printable};
use crate::session::Session;

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
            "{t:12.6} event error: {} received bytes not shown (output fell behind; a capture being recorded has them)",
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

/// A traced program's news as text (`hsmon trace`).
fn trace_text(te: &crate::event::TraceEvent) -> String {
    use crate::event::{ProgramExit, TraceEvent};
    match te {
        // The line's `[NAME pid N]` names the stream (see `write_stream_text`).
        TraceEvent::Stream { fd, .. } => format!("stream opened, fd {fd}"),
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
    let stream = session.stream_tag(ev.stream);
    match (format, &ev.event) {
        (OutputFormat::Json, _) => {
            write_event_on(out, ev, label, stream, &session.stamp)?;
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

/// `[label] ` (or `[label pid N] `) in a multi-stream session's text lines (nothing otherwise).
fn write_stream_text(
    out: &mut impl Write,
    stream: Option<crate::session::StreamTag<'_>>,
) -> std::io::Result<()> {
    if let Some(s) = stream {
        out.write_all(b"[")?;
        write_printable(out, s.label)?;
        if let Some(pid) = s.pid {
            write!(out, " pid {pid}")?;
        }
        out.write_all(b"] ")?;
    }
    Ok(())
}

/// Frames and diagnoses the session found since the last call: `frame` records
/// ([`finding::frame`], with a tap's label) and `event` records ([`finding::diagnosis`]). A
/// frame's summary is read with `Frame::summary_once`, so printing a frame does not keep its
/// description.
pub fn write_findings(
    out: &mut impl Write,
    session: &mut Session,
    format: OutputFormat,
) -> std::io::Result<()> {
    write_link_findings(out, session, format)?;
    // The session's other conversations (each descriptor a traced program uses).
    let mut links = session.take_links();
    let written = links
        .iter_mut()
        .try_for_each(|(_, link)| write_link_findings(out, link, format));
    session.restore_links(links);
    written
}

/// [`write_findings`] for one link (the session itself is link 0).
fn write_link_findings(
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
    let mut time: Option<(crate::event::Timestamp, Time)> = None;
    let mut text_time: Option<(crate::event::Timestamp, String)> = None;
    for f in frames.range(frames.len() - nf..) {
        let label = labels.map(|l| l.get(f.direction));
        let stream = session.stream_tag(f.stream);
        match format {
            OutputFormat::Json => {
                if time.as_ref().is_none_or(|(at, _)| *at != f.at) {
                    time = Some((f.at, Time::at(f.at, stamp)));
                }
                if let Some((_, t)) = &time {
                    crate::record::write_on(out, &finding::frame(f), t, label, stream, stamp)?
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
        let stream = session.stream_tag(d.stream);
        match format {
            OutputFormat::Json => crate::record::write_on(
                out,
                &finding::diagnosis(d),
                &Time::at(d.diagnosis.first_at, stamp),
                None,
                stream,
                stamp,
            )?,
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

/// One recorded event through `session`, written as the headless loop writes a live one
/// (its record, then the frames and diagnoses it produced). What the loop's timer would have
/// done before the event arrived is done first: frames held for arbitration on a quiet line
/// are released at the event's time, so the records come in the order a replay at the
/// recorded pace prints them, whatever the speed.
pub fn play<W: Write>(
    out: &mut W,
    session: &mut Session,
    ev: &TimedEvent,
    format: OutputFormat,
) -> io::Result<()> {
    if session.next_due().is_some_and(|due| due <= ev.at) && session.poll(ev.at) {
        write_findings(out, session, format)?;
    }
    write_record(out, session, ev, format)
}

/// The end of a recorded session: what the decoders still hold, as records.
pub fn play_end<W: Write>(
    out: &mut W,
    session: &mut Session,
    format: OutputFormat,
) -> io::Result<()> {
    session.flush_decoders();
    session.finish_capture();
    write_findings(out, session, format)
}

/// Records for script steps: `event` records `script.step` and `script.finished` (see
/// [`crate::record::scan::script`]); in text, their severity and text.
pub fn write_script_updates(
    out: &mut impl Write,
    stamp: &crate::stamp::Stamp,
    at: crate::event::Timestamp,
    ups: &[crate::card::runner::RunnerUpdate],
    format: OutputFormat,
) -> std::io::Result<()> {
    for u in ups {
        let r = crate::record::scan::script(u);
        match format {
            OutputFormat::Json => crate::record::write(out, &r, &Time::at(at, stamp), None, stamp)?,
            OutputFormat::Text => {
                write!(out, "{:12.6} event {}: ", at.as_secs_f64(), r.severity)?;
                write_printable(out, &r.text)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// The `baud` records of an active scan.
pub fn write_scan_updates(
    out: &mut impl Write,
    stamp: &crate::stamp::Stamp,
    at: crate::event::Timestamp,
    ups: &[ScanUpdate],
    format: OutputFormat,
) -> std::io::Result<()> {
    for u in ups {
        match format {
            OutputFormat::Json => crate::record::write(
                out,
                &crate::record::scan::baud(u),
                &Time::at(at, stamp),
                None,
                stamp,
            )?,
            OutputFormat::Text => writeln!(out, "{:12.6} baud {}", at.as_secs_f64(), scan_text(u))?,
        }
    }
    Ok(())
}

pub fn scan_text(u: &ScanUpdate) -> String {
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
            format!(
                "ignored: {}",
                crate::diagnose::baud::live_scan::RATE_IGNORED_TEXT
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::{Baud, FrameFormat};
    use crate::record::event::RECORD_BYTES;
    use std::time::Duration;

    /// The records as hsmon wrote them before `crate::record` (each built as a
    /// `serde_json::Value`): the reference the record structs must match byte for byte.
    #[allow(clippy::all)]
    mod reference {
        use crate::diagnose::baud::live_scan::ScanUpdate;
        use crate::diagnose::baud::scoring::Ranked;
        use crate::event::{ConnectionState, Event, TimedEvent};
        use crate::hex::spaced as hex_string;
        use serde_json::{Value, json};

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
                    "text": format!("{} received bytes not shown: the output fell behind the port (a capture being recorded has them)", o.dropped_bytes),
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
                Event::Trace(te) => {
                    use crate::event::{ProgramExit, TraceEvent};
                    match te {
                        TraceEvent::Stream { fd, .. } => {
                            json!({"type": "stream", "t": t, "fd": fd})
                        }
                        TraceEvent::Process { pid, parent, exec } => json!({
                            "type": "process", "t": t, "pid": pid, "parent": parent, "exec": exec,
                        }),
                        TraceEvent::Exit(ProgramExit::Code(c)) => {
                            json!({"type": "exit", "t": t, "code": c})
                        }
                        TraceEvent::Exit(ProgramExit::Signal(s)) => {
                            json!({"type": "exit", "t": t, "signal": s})
                        }
                        TraceEvent::Detached { pid } => {
                            json!({"type": "detached", "t": t, "pid": pid})
                        }
                        TraceEvent::Flush { queue } => {
                            json!({"type": "flush", "t": t, "queue": queue})
                        }
                    }
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
                    "reason": crate::diagnose::baud::live_scan::RATE_IGNORED_TEXT,
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
    }

    #[test]
    fn json_rx_record_matches_design() {
        let ev = TimedEvent::new(
            Duration::from_micros(12_300),
            Event::Rx(vec![0x68, 0x04, 0x04, 0x68]),
        );
        assert_eq!(
            reference::json_record(&ev).to_string(),
            r#"{"type":"rx","t":0.0123,"hex":"68 04 04 68"}"#
        );
    }

    /// Adds `"label"` (a tap's name for who sent the bytes) to a record, then stamps it.
    fn with_label(
        mut v: serde_json::Value,
        label: Option<&str>,
        stamp: &crate::stamp::Stamp,
    ) -> serde_json::Value {
        if let (Some(l), serde_json::Value::Object(m)) = (label, &mut v) {
            m.insert("label".into(), serde_json::Value::String(l.to_string()));
        }
        crate::stamp::stamp_value(v, stamp)
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
                crate::sanitize::write_json_line(
                    out,
                    &with_label(reference::frame_record(f, None), l, &stamp),
                )
                .unwrap();
            }
            for d in diags {
                crate::sanitize::write_json_line(
                    out,
                    &with_label(reference::diagnosis_record(d), None, &stamp),
                )
                .unwrap();
            }
        };
        for ev in events {
            s.ingest(ev);
            let l = match (&ev.event, s.labels.as_ref()) {
                (Event::Rx(_), Some(l)) => Some(l.rx.as_str()),
                (Event::Tx(_), Some(l)) => Some(l.tx.as_str()),
                _ => None,
            };
            crate::sanitize::write_json_line(
                &mut out,
                &with_label(reference::json_record(ev), l, &stamp),
            )
            .unwrap();
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

    /// Every kind of event, with text from outside in every string it carries.
    fn every_event() -> Vec<TimedEvent> {
        use crate::event::{
            ApduExchange, ApduOrigin, CardDisposition, CardEvent, LineErrorCounts, LineSettings,
            ModemLines, Overrun, ShareMode,
        };
        let t = "evil\x1b[2J\u{9b}31m\u{202e}rev\u{200b}\u{feff}\u{7f}\"q\\ ü".to_string();
        let atr = vec![0x3B, 0x1B, 0x9B, 0x00];
        let events = vec![
            Event::LineSettings {
                settings: LineSettings::default(),
                modem: ModemLines {
                    dtr: Some(true),
                    rts: None,
                },
            },
            Event::Connection(ConnectionState::Up),
            Event::Connection(ConnectionState::Retrying { reason: t.clone() }),
            Event::Connection(ConnectionState::Down { reason: t.clone() }),
            Event::Rx(Vec::new()),
            Event::Tx((0..=255u8).cycle().take(9000).collect()),
            Event::Overrun(Overrun { dropped_bytes: 7 }),
            Event::BreakSent,
            Event::LineErrors(None),
            Event::LineErrors(Some(LineErrorCounts {
                frame: 1,
                parity: 2,
                overrun: 3,
                brk: 4,
                buf_overrun: 5,
            })),
            Event::LineErrors(Some(LineErrorCounts::default())),
            Event::CommandFailed {
                command: t.clone(),
                reason: t.clone(),
            },
            Event::Replay {
                paused: true,
                speed: 0.25,
                text: t.clone(),
            },
            Event::Apdu(ApduExchange {
                command: b"\x00\xa4\x04\x00\x05\x1b[2J\x9b".to_vec(),
                response: b"\x1b]52;c;x\x07\x90\x00".to_vec(),
                duration: Duration::from_micros(3_217),
                origin: ApduOrigin::User,
            }),
            Event::Apdu(ApduExchange {
                command: vec![0x00, 0xB0, 0x00, 0x00, 0x00],
                response: vec![0x01],
                duration: Duration::from_millis(1),
                origin: ApduOrigin::User,
            }),
            Event::Card(CardEvent::Readers(vec![t.clone(), "ok reader".into()])),
            Event::Card(CardEvent::Inserted {
                reader: t.clone(),
                atr: atr.clone(),
            }),
            Event::Card(CardEvent::Connected {
                reader: t.clone(),
                protocol: t.clone(),
                share: ShareMode::Exclusive,
                atr,
            }),
            Event::Card(CardEvent::Reconnected {
                reader: t.clone(),
                disposition: CardDisposition::Reset,
                protocol: "T=1".into(),
            }),
            Event::Card(CardEvent::Transaction { begun: true }),
            Event::Card(CardEvent::Transaction { begun: false }),
            Event::Card(CardEvent::Removed { reader: t.clone() }),
            Event::Card(CardEvent::Disconnected {
                reader: t.clone(),
                disposition: CardDisposition::Leave,
            }),
            Event::Pcsc {
                operation: t.clone(),
                code: 0x8010_0068,
            },
            Event::Pcsc {
                operation: t,
                code: 0x1234_5678,
            },
        ];
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| TimedEvent::new(Duration::from_micros(i as u64 * 1_000_003), event))
            .collect()
    }

    #[test]
    fn every_event_record_equals_the_value_record() {
        let stamp = test_stamp();
        for ev in every_event() {
            let mut got = Vec::new();
            crate::record::event::write_event(&mut got, &ev, None, &stamp).unwrap();
            let mut want = Vec::new();
            let v = reference::json_record(&ev);
            match &ev.event {
                // The reference has no 4 KiB split: compare the pieces joined.
                Event::Tx(b) if b.len() > RECORD_BYTES => {
                    let got = String::from_utf8(got).unwrap();
                    assert_eq!(got.lines().count(), b.len().div_ceil(RECORD_BYTES));
                    let hex: Vec<String> = got
                        .lines()
                        .map(|l| {
                            let v: serde_json::Value = serde_json::from_str(l).unwrap();
                            v["hex"].as_str().unwrap().to_string()
                        })
                        .collect();
                    assert_eq!(hex.join(" "), v["hex"].as_str().unwrap());
                    continue;
                }
                _ => crate::sanitize::write_json_line(&mut want, &with_label(v, None, &stamp))
                    .unwrap(),
            }
            let got = String::from_utf8(got).unwrap();
            assert_eq!(got, String::from_utf8(want).unwrap());
            assert!(
                !got.trim_end().chars().any(crate::sanitize::is_unsafe),
                "{got}"
            );
        }
    }

    #[test]
    fn baud_records_equal_the_value_records() {
        use crate::diagnose::baud::scoring::{Candidate, Ranked};
        let stamp = test_stamp();
        let c = |bps: u32| Candidate {
            baud: Baud::new(bps).unwrap(),
            format: FrameFormat::default(),
        };
        let r = |bps: u32, score: f64| Ranked {
            candidate: c(bps),
            score,
            bytes: 4096,
            reason: "text \u{1b}[2J".into(),
        };
        let ups = [
            ScanUpdate::Trying(c(9600)),
            ScanUpdate::Scored(r(9600, 0.123_456)),
            ScanUpdate::Finished {
                locked: Some(r(115_200, 0.987_654)),
                ranking: vec![r(115_200, 0.987_654), r(9600, 0.1)],
            },
            ScanUpdate::Finished {
                locked: None,
                ranking: vec![],
            },
            ScanUpdate::RateIgnored {
                ranking: vec![r(9600, 0.5)],
            },
        ];
        let at = Duration::from_millis(1234);
        for u in &ups {
            let mut got = Vec::new();
            write_scan_updates(
                &mut got,
                &stamp,
                at,
                std::slice::from_ref(u),
                OutputFormat::Json,
            )
            .unwrap();
            let mut want = Vec::new();
            let v = crate::stamp::stamp_value(reference::scan_record(at, u), &stamp);
            crate::sanitize::write_json_line(&mut want, &v).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}
