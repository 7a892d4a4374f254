//! The offline commands: `hsmon decode` (bytes from the command line or a file, framed and
//! explained as a live session would) and `hsmon explain` (a status word, a PC/SC code, a
//! byte or a knowledge id, answered from the tables and the knowledge base).

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::decode::iso7816::{apdu, atr, sw};
use crate::decode::{Field, Frame, Protocol, pcsc_codes};
use crate::diagnose::knowledge::{Entry, Knowledge};
use crate::event::{Event, TimedEvent};
use crate::exit::UsageError;
use crate::session::Session;

/// Where `decode` reads its bytes from.
pub enum Input {
    Hex(String),
    File(std::path::PathBuf),
}

/// Reads the bytes; a malformed hex string or an unreadable file is a usage error.
pub fn read_input(input: &Input) -> Result<Vec<u8>, UsageError> {
    match input {
        Input::Hex(h) => {
            crate::hex::parse(h).map_err(|e| UsageError(format!("--hex \"{h}\": {e}")))
        }
        Input::File(p) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut open_input(p)?, &mut bytes).map_err(|e| {
                UsageError(format!(
                    "cannot read {}: {e} (give a file of raw bytes, or the bytes with --hex)",
                    p.display()
                ))
            })?;
            Ok(bytes)
        }
    }
}

/// Opens a file to decode; one that cannot be opened is a usage error.
pub fn open_input(path: &std::path::Path) -> Result<std::fs::File, UsageError> {
    std::fs::File::open(path).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {e} (give a file of raw bytes, or the bytes with --hex)",
            path.display()
        ))
    })
}

fn fields_text(fields: &[Field], depth: usize, out: &mut String) {
    for f in fields {
        let _ = writeln!(
            out,
            "{}{}: {}",
            "  ".repeat(depth + 1),
            crate::sanitize::printable(&f.name),
            crate::sanitize::printable(&f.value)
        );
        fields_text(&f.children, depth + 1, out);
    }
}

fn fields_json(fields: &[Field]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| {
                json!({
                    "name": f.name, "value": f.value,
                    "start": f.span.start, "end": f.span.end,
                    "fields": fields_json(&f.children),
                })
            })
            .collect(),
    )
}

/// A frame's JSON line; `bytes` holds its bytes when they are still at hand.
fn frame_json(f: &Frame, bytes: &[u8]) -> Value {
    json!({
        "type": "frame",
        "protocol": f.protocol.id(),
        "kind": f.kind,
        "status": crate::record::finding::status_id(&f.status),
        "evidence": f.evidence().strength.id(), "bits": f.evidence().bits,
        "start": f.span.start, "end": f.span.end,
        "hex": crate::hex::spaced(bytes),
        "summary": f.summary(),
        "fields": fields_json(f.fields()),
    })
}

/// Frames for an explicit `--protocol`: ATR and APDUs are parsed whole; stream protocols run
/// their framer.
fn frames_for(p: Protocol, bytes: &[u8]) -> Vec<Frame> {
    match p {
        Protocol::Atr => vec![atr::frame(0, bytes)],
        Protocol::Apdu => {
            // A command unless it parses only as a response (data + SW).
            if apdu::parse_command(bytes).is_ok() {
                vec![apdu::command_frame(0, bytes)]
            } else {
                vec![apdu::response_frame(0, bytes)]
            }
        }
        _ => {
            let mut out = Vec::new();
            for mut f in crate::decode::framers()
                .into_iter()
                .filter(|f| f.protocol() == p)
            {
                f.feed(0, bytes, &mut out);
                f.flush(&mut out);
            }
            out
        }
    }
}

/// Most input `decode --protocol` reads (it decodes the input whole).
pub const MAX_WHOLE: u64 = 64 * 1024 * 1024;

/// Bytes read and decoded at a time by [`decode_stream`].
const DECODE_CHUNK: usize = 64 * 1024;

/// Input kept behind the newest read, to print the bytes of the frames it completes: a frame
/// leaves arbitration once nothing can cover it any more, within the longest frame (a TLS
/// record, 16 KiB and its header) of its end.
const KEPT_INPUT: usize = 2 * DECODE_CHUNK;

/// `hsmon decode` for bytes at hand (`--hex`, tests): what [`decode_stream`] prints.
pub fn decode(
    bytes: &[u8],
    protocol: Option<Protocol>,
    knowledge: Arc<Knowledge>,
    format: OutputFormat,
) -> (u8, String) {
    let mut out = Vec::new();
    let code = decode_stream(&mut &bytes[..], protocol, knowledge, format, &mut out)
        .unwrap_or(crate::exit::USAGE);
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// `hsmon decode`: prints frames (and, without `--protocol`, the diagnoses a live session
/// would raise) as a live session finds them. Without `--protocol` the input is read and
/// decoded in 64 KiB pieces and each frame printed once arbitration lets it go, so memory
/// stays bounded however long the input (an endless one too); with `--protocol` it is parsed
/// whole. Returns the exit status: 0 if anything decoded, 1 if nothing did.
pub fn decode_stream(
    input: &mut dyn std::io::Read,
    protocol: Option<Protocol>,
    knowledge: Arc<Knowledge>,
    format: OutputFormat,
    out: &mut dyn std::io::Write,
) -> std::io::Result<u8> {
    if let Some(p) = protocol {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut *input, MAX_WHOLE + 1),
            &mut bytes,
        )?;
        if bytes.len() as u64 > MAX_WHOLE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "with --protocol the input is decoded whole, and it is larger than {} MiB: \
                     give --max-bytes N, or leave --protocol out to decode it as it streams",
                    MAX_WHOLE >> 20
                ),
            ));
        }
        let frames = frames_for(p, &bytes);
        for f in &frames {
            let slice = bytes
                .get(f.span.start as usize..f.span.end as usize)
                .unwrap_or(&[]);
            write_frame(out, f, slice, format)?;
        }
        return nothing_found(
            out,
            frames.len() as u64,
            bytes.len() as u64,
            protocol,
            format,
        );
    }
    let mut s = Session::with_knowledge("decode", 4 * DECODE_CHUNK, Some(knowledge));
    let mut recent: Vec<u8> = Vec::new();
    let mut recent_start = 0u64;
    let mut total = 0u64;
    let mut found = 0u64;
    let mut buf = vec![0u8; DECODE_CHUNK];
    let print_new = |s: &mut Session,
                     recent: &[u8],
                     recent_start: u64,
                     out: &mut dyn std::io::Write|
     -> std::io::Result<u64> {
        let (frames, _) = s.take_new();
        for sf in &frames {
            let f = &sf.frame;
            let slice = f
                .span
                .start
                .checked_sub(recent_start)
                .and_then(|from| recent.get(from as usize..(f.span.end - recent_start) as usize))
                .unwrap_or(&[]);
            write_frame(out, f, slice, format)?;
        }
        Ok(frames.len() as u64)
    };
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let read = buf.get(..n).unwrap_or_default();
        recent.extend_from_slice(read);
        total += n as u64;
        s.ingest(&TimedEvent::new(
            std::time::Duration::ZERO,
            Event::Rx(read.to_vec()),
        ));
        found += print_new(&mut s, &recent, recent_start, out)?;
        if recent.len() > KEPT_INPUT {
            let cut = recent.len() - KEPT_INPUT;
            recent.drain(..cut);
            recent_start += cut as u64;
        }
    }
    s.flush_decoders();
    found += print_new(&mut s, &recent, recent_start, out)?;
    for sd in s.diagnoses() {
        let d = &sd.diagnosis;
        match format {
            OutputFormat::Json => crate::sanitize::write_json_line(
                out,
                &json!({"type": "event", "id": d.id, "severity": d.severity.label(),
                       "title": d.title, "text": d.context, "about_68": d.about_68,
                       "start": d.span.as_ref().map(|s| s.start),
                       "end": d.span.as_ref().map(|s| s.end)}),
            )?,
            OutputFormat::Text => writeln!(
                out,
                "\n{} {} ({}): {}",
                crate::ui::events::severity_mark(d.severity),
                crate::sanitize::printable(&d.title),
                crate::sanitize::printable(&d.id),
                crate::sanitize::printable(&d.context)
            )?,
        }
    }
    nothing_found(out, found, total, None, format)
}

/// One frame, as JSON or as text with its field tree.
fn write_frame(
    out: &mut dyn std::io::Write,
    f: &Frame,
    bytes: &[u8],
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let mut v = frame_json(f, bytes);
            if f.protocol == Protocol::Atr {
                add_atr_fields(&mut v, bytes);
            }
            crate::sanitize::write_json_line(out, &v)
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "{} {} [{}..{}] {}: {}",
                f.protocol.name(),
                f.kind,
                f.span.start,
                f.span.end,
                crate::ui::frames::status_mark(&f.status),
                crate::sanitize::printable(f.summary())
            )?;
            writeln!(out, "  evidence: {}", f.evidence())?;
            let mut fields = String::new();
            fields_text(f.fields(), 0, &mut fields);
            out.write_all(fields.as_bytes())
        }
    }
}

/// The exit status, with "no frame found" said in text when nothing decoded.
fn nothing_found(
    out: &mut dyn std::io::Write,
    found: u64,
    bytes: u64,
    protocol: Option<Protocol>,
    format: OutputFormat,
) -> std::io::Result<u8> {
    if found > 0 {
        return Ok(crate::exit::OK);
    }
    if format == OutputFormat::Text {
        writeln!(
            out,
            "no frame found in {bytes} bytes{}",
            protocol.map_or(String::new(), |p| format!(" as {}", p.name()))
        )?;
    }
    Ok(crate::exit::EXPECTATION_FAILED)
}

/// The ATR summary fields pcsc-tools' ATR_analysis also prints.
fn add_atr_fields(v: &mut Value, bytes: &[u8]) {
    let Ok(a) = atr::parse_prefix(bytes) else {
        return;
    };
    if let Value::Object(m) = v {
        let protocols: Vec<String> = a.protocols().iter().map(|p| p.to_string()).collect();
        m.insert("protocols".into(), json!(protocols));
        m.insert("fi".into(), json!(a.fi()));
        m.insert("di".into(), json!(a.di()));
        m.insert(
            "historical".into(),
            json!(crate::hex::spaced(a.historical_bytes())),
        );
        m.insert("tck_ok".into(), json!(a.tck_ok()));
    }
}

/// A JSON line as a String, terminal-safe (see [`crate::sanitize::write_json_line`]).
fn json_line(v: &Value) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and the JSON is UTF-8.
    let _ = crate::sanitize::write_json_line(&mut out, v);
    String::from_utf8_lossy(&out).into_owned()
}

fn entry_json(query: &str, e: &Entry) -> Value {
    json!({
        "type": "explanation", "query": query, "id": e.id, "severity": e.severity.label(),
        "title": e.title, "meaning": e.meaning, "causes": e.causes, "fixes": e.fixes,
        "reference": e.reference,
    })
}

/// `hsmon explain`: every query answered, or a usage error naming what can be asked.
pub fn explain(
    queries: &[String],
    knowledge: &Knowledge,
    format: OutputFormat,
) -> Result<String, UsageError> {
    let mut out = String::new();
    for q in queries {
        let entries = knowledge.explain(q);
        // The tables answer what the knowledge base does not cover entry by entry.
        let sw_line = sw::StatusWord::parse(q)
            .ok()
            .filter(|_| q.trim().len() >= 4)
            .map(|w| sw::lookup(w).summary());
        let pcsc = pcsc_codes::explain(q);
        if entries.is_empty() && sw_line.is_none() && pcsc.is_none() {
            return Err(UsageError(format!(
                "no explanation for '{q}': ask for a status word (6882), a PC/SC code (0x80100068 or SCARD_W_RESET_CARD), a byte (68) or a knowledge id (iso7816.sw.6882)"
            )));
        }
        match format {
            OutputFormat::Json => {
                if let Some(c) = pcsc {
                    out.push_str(&json_line(&json!({"type": "pcsc_code", "query": q,
                           "name": c.name, "code": format!("0x{:08X}", c.code),
                           "meaning": c.meaning, "hint": c.hint})));
                }
                if let Some(l) = &sw_line {
                    out.push_str(&json_line(
                        &json!({"type": "status_word", "query": q, "text": l}),
                    ));
                }
                for e in &entries {
                    out.push_str(&json_line(&entry_json(q, e)));
                }
            }
            OutputFormat::Text => {
                let _ = writeln!(out, "── {q} ──");
                if let Some(c) = pcsc {
                    let _ = writeln!(out, "{} = 0x{:08X}: {}", c.name, c.code, c.meaning);
                    if let Some(h) = c.hint {
                        let _ = writeln!(out, "fix: {h}");
                    }
                    out.push('\n');
                } else if let Some(l) = &sw_line {
                    let _ = writeln!(out, "status word {l}\n");
                }
                for e in &entries {
                    out.push_str(&e.render_text());
                    out.push('\n');
                }
            }
        }
    }
    // Knowledge text may come from the user's file: nothing unsafe reaches the terminal.
    Ok(match format {
        OutputFormat::Text => crate::sanitize::printable_lines(&out),
        OutputFormat::Json => out,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kb() -> Arc<Knowledge> {
        Arc::new(Knowledge::embedded().unwrap())
    }

    #[test]
    fn decode_guesses_mbus() {
        let bytes = crate::hex::parse("68 03 03 68 53 FE 50 A1 16").unwrap();
        let (code, out) = decode(&bytes, None, kb(), OutputFormat::Text);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("M-Bus control"), "{out}");
    }

    #[test]
    fn decode_atr_json_has_analysis_fields() {
        let bytes =
            crate::hex::parse("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31 B7").unwrap();
        let (code, out) = decode(&bytes, Some(Protocol::Atr), kb(), OutputFormat::Json);
        assert_eq!(code, 0);
        let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(v["protocols"], json!(["T=1"]));
        assert_eq!(v["fi"], 372);
        assert_eq!(v["di"], 4);
        assert_eq!(v["historical"], "4A 43 4F 50 76 32 34 31");
    }

    #[test]
    fn knowledge_text_reaches_neither_output_raw() {
        // TOML basic strings take \uXXXX escapes: a user's file can carry any character.
        let hostile = r"evil\u001b]52;c;eA==\u0007\u009b31m\u202erev\u2066\u200b\u200e\u061c\ufeff\u2060\u007fend";
        let toml = format!(
            "[[entry]]\nid = \"user.hostile\"\ndomain = \"iso7816\"\nseverity = \"error\"\n\
             title = \"{hostile}\"\nmeaning = \"{hostile}\"\ncauses = [\"{hostile}\"]\n\
             fixes = [\"{hostile}\"]\nreference = \"{hostile}\"\ncodes = [\"9F99\"]\nwhen = [{{ observation = \"sw\", sw = \"9F99\" }}]\n"
        );
        let k = Knowledge::parse(&toml, "user.toml").unwrap();
        for format in [OutputFormat::Text, OutputFormat::Json] {
            let out = explain(&["user.hostile".into()], &k, format).unwrap();
            assert!(out.contains("evil"), "{out}");
            for line in out.lines() {
                assert!(
                    !line.chars().any(crate::sanitize::is_unsafe),
                    "{format:?}: {line:?}"
                );
            }
            if format == OutputFormat::Json {
                let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
                assert!(
                    v["title"].as_str().unwrap().contains('\u{200b}'),
                    "read back"
                );
            }
        }
    }

    #[test]
    fn explain_answers_the_three_classics() {
        let k = kb();
        let out = explain(&["6882".into()], &k, OutputFormat::Text).unwrap();
        assert!(out.to_lowercase().contains("secure messaging"), "{out}");
        let out = explain(&["0x80100068".into()], &k, OutputFormat::Text).unwrap();
        assert!(
            out.contains("SCARD_W_RESET_CARD") && out.contains("SCardReconnect"),
            "{out}"
        );
        let out = explain(&["68".into()], &k, OutputFormat::Text).unwrap();
        assert!(out.contains("M-Bus") && out.contains("IEC 104"), "{out}");
        assert!(explain(&["zzz".into()], &k, OutputFormat::Text).is_err());
    }
}
