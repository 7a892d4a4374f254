//! What every headless JSON record carries besides its own members: `t` rounded to
//! microseconds, the wall-clock `ts` after it, and the user's `--label KEY=VALUE` members at
//! the end. One [`Stamp`] per session; `crate::record::write` applies it to every record.

use std::time::Duration;

#[cfg(test)]
use serde_json::{Map, Value};

/// The session's wall-clock start and the `--label` members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Wall-clock time of the session start (record times count from it), in nanoseconds
    /// since 1970-01-01T00:00:00Z (the capture header's `started_unix_ns`).
    pub start_unix_ns: i64,
    /// `--label` members in the order given.
    pub labels: Vec<(String, String)>,
}

/// Members hsmon writes itself in some record: a `--label` may not take these names.
pub const RESERVED: &[&str] = &[
    "type",
    "t",
    "ts",
    "hex",
    "label",
    "version",
    "host",
    "command",
    "source",
    "settings",
    "capture",
    "state",
    "reason",
    "baud",
    "format",
    "flow",
    "dtr",
    "rts",
    "id",
    "severity",
    "title",
    "text",
    "about_68",
    "dir",
    "protocol",
    "kind",
    "status",
    "evidence",
    "bits",
    "start",
    "end",
    "summary",
    "checksum_expected",
    "checksum_found",
    "dropped_bytes",
    "available",
    "frame",
    "overrun",
    "parity",
    "brk",
    "buf_overrun",
    "origin",
    "response",
    "sw",
    "sw_text",
    "duration_ms",
    "readers",
    "reader",
    "atr",
    "share",
    "disposition",
    "paused",
    "speed",
    "operation",
    "code",
    "name",
    "line",
    "expect",
    "ok",
    "failures",
    "score",
    "bytes",
    "ranking",
    "locked",
    "profile",
    "transport",
    "outcome",
    "exit",
    "steps",
    "divergence",
    "error",
    "notes",
    "step",
    "sent",
    "got",
    "elapsed_ms",
    // hsmon trace
    "stream",
    "pid",
    "fd",
    "parent",
    "exec",
    "signal",
    "queue",
];

/// One `--label KEY=VALUE`, checked: KEY is `[A-Za-z0-9_.-]+` and not a member hsmon writes.
pub fn parse_label(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!("--label {arg}: give KEY=VALUE (site=lab)"));
    };
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "--label {arg}: the key must be letters, digits, '_', '.' or '-' (site=lab)"
        ));
    }
    if RESERVED.contains(&key) {
        return Err(format!(
            "--label {arg}: '{key}' is a member hsmon writes itself; choose another key"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Whole microseconds of a record time given in seconds (what `t` is rounded to).
pub fn micros(t_secs: f64) -> i64 {
    // Saturating cast: a time beyond i64 microseconds (≈292,000 years) is not a session's.
    (t_secs * 1e6).round() as i64
}

impl Stamp {
    /// A stamp for a session started at `start` with `labels`.
    pub fn new(start: std::time::SystemTime, labels: Vec<(String, String)>) -> Stamp {
        Stamp {
            start_unix_ns: crate::utc::unix_ns(start),
            labels,
        }
    }

    /// `t` (seconds, rounded to microseconds) and `ts` (RFC 3339, UTC, microseconds) of a
    /// record `at` after the start.
    pub fn times(&self, at: Duration) -> (f64, String) {
        self.times_secs(at.as_secs_f64())
    }

    /// [`Stamp::times`] for a time already in seconds.
    pub fn times_secs(&self, t_secs: f64) -> (f64, String) {
        let us = micros(t_secs);
        let ns = self.start_unix_ns.saturating_add(us.saturating_mul(1000));
        (us as f64 / 1e6, crate::utc::rfc3339_micros(ns))
    }
}

/// A record `Value` stamped: `t` rounded to microseconds, `ts` right after it, the labels at
/// the end. A value without a numeric `t` gets no `ts` (labels still). The records are written
/// by `crate::record::write`; this is the old way, the reference the tests hold them to.
#[cfg(test)]
pub fn stamp_value(v: Value, stamp: &Stamp) -> Value {
    let Value::Object(mut m) = v else { return v };
    let mut out = Map::with_capacity(m.len() + 1 + stamp.labels.len());
    // `type` first, whatever order the record was built in; `t` and `ts` follow it.
    if let Some(ty) = m.shift_remove("type") {
        out.insert("type".into(), ty);
    }
    if let Some(t) = m.shift_remove("t") {
        m.shift_insert(0, "t".into(), t);
    }
    for (k, val) in m {
        if k == "t" {
            if let Some(t) = val.as_f64() {
                let (t, ts) = stamp.times_secs(t);
                out.insert(k, Value::from(t));
                out.insert("ts".into(), Value::String(ts));
                continue;
            }
        }
        out.insert(k, val);
    }
    for (k, val) in &stamp.labels {
        out.insert(k.clone(), Value::String(val.clone()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_round_to_microseconds() {
        let s = Stamp {
            start_unix_ns: 1_700_000_000_000_000_000,
            labels: vec![],
        };
        let (t, ts) = s.times_secs(2.5077076849999997);
        assert_eq!(serde_json::to_string(&t).unwrap(), "2.507708");
        assert_eq!(ts, "2023-11-14T22:13:22.507708Z");
    }

    #[test]
    fn labels_are_checked() {
        assert_eq!(
            parse_label("site=lab").unwrap(),
            ("site".to_string(), "lab".to_string())
        );
        assert_eq!(parse_label("a.b-c_1=x=y").unwrap().1, "x=y");
        assert!(parse_label("site").is_err());
        assert!(parse_label("=lab").is_err());
        assert!(parse_label("si te=lab").is_err());
        assert!(parse_label("ts=now").unwrap_err().contains("hsmon writes"));
        assert!(parse_label("hex=x").is_err());
    }

    #[test]
    fn a_value_is_stamped_in_order() {
        let s = Stamp {
            start_unix_ns: 0,
            labels: vec![("site".into(), "lab".into())],
        };
        let v = stamp_value(
            serde_json::json!({"type": "rx", "t": 0.0123, "hex": "68"}),
            &s,
        );
        assert_eq!(
            v.to_string(),
            r#"{"type":"rx","t":0.0123,"ts":"1970-01-01T00:00:00.012300Z","hex":"68","site":"lab"}"#
        );
    }

    #[test]
    fn type_t_and_ts_come_first_whatever_the_build_order() {
        let s = Stamp::default();
        let v = stamp_value(
            serde_json::json!({"score": 1, "state": "scored", "type": "baud", "t": 1.0}),
            &s,
        );
        assert_eq!(
            v.to_string(),
            r#"{"type":"baud","t":1.0,"ts":"1970-01-01T00:00:01.000000Z","score":1,"state":"scored"}"#
        );
    }
}
