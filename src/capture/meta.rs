//! What a capture says about its session (source, initial settings, hsmon version, wall-clock
//! start) and where captures go by default.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::event::LineSettings;
use crate::utc::{file_stamp, rfc3339, unix_ns};

/// The session metadata stored in a capture's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureMeta {
    /// What was recorded: "serial /dev/ttyUSB0", "demo tour", "card Virtual PCD 00 00".
    pub source: String,
    /// The line settings at the start, where the source has any.
    pub settings: Option<LineSettings>,
    /// The hsmon version that wrote the file.
    pub hsmon_version: String,
    /// Wall-clock time of the session start (record times count from it), in nanoseconds
    /// since 1970-01-01T00:00:00Z.
    pub started_unix_ns: i64,
}

impl CaptureMeta {
    /// Metadata for a session that started at `started` (the caller reads the clock).
    pub fn new(
        source: impl Into<String>,
        settings: Option<LineSettings>,
        started: SystemTime,
    ) -> CaptureMeta {
        CaptureMeta {
            source: source.into(),
            settings,
            hsmon_version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix_ns: unix_ns(started),
        }
    }

    /// The start as RFC 3339 in UTC with nanoseconds: `2023-11-14T22:13:20.000000000Z`.
    pub fn started_rfc3339(&self) -> String {
        rfc3339(self.started_unix_ns)
    }
}

/// The directory captures go to by default: `$XDG_STATE_HOME/hsmon/captures`
/// (`~/.local/state/hsmon/captures`), next to hsmon's log. A capture is a session's history —
/// what the XDG spec puts in the state dir ("history, logs") rather than the data dir (files a
/// user made and would carry to another machine). Where the platform has no state dir (macOS,
/// Windows) the local data dir is used.
pub fn default_capture_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("hsmon").join("captures"))
}

/// Whether `dir` lies in [`default_capture_dir`]: the only place hsmon makes directories for
/// captures.
pub fn is_in_capture_dir(dir: &Path) -> bool {
    default_capture_dir().is_some_and(|d| dir.starts_with(d))
}

/// `<dir>/<UTC stamp>-<source>.hscap`, e.g. `20231114T221320Z-ttyUSB0.hscap`.
pub fn default_capture_path(source: &str, started: SystemTime) -> Option<PathBuf> {
    default_capture_dir().map(|d| capture_path_in(&d, source, started))
}

/// The file name part of [`default_capture_path`], in a given directory.
pub fn capture_path_in(dir: &Path, source: &str, started: SystemTime) -> PathBuf {
    dir.join(format!(
        "{}-{}.hscap",
        file_stamp(unix_ns(started)),
        file_safe(source)
    ))
}

/// A source description as a short, portable file-name part: `/dev/ttyUSB0` → `ttyUSB0`,
/// `tcp 10.0.0.5:2404` → `tcp-10.0.0.5-2404`.
fn file_safe(source: &str) -> String {
    let s = source.trim();
    let s = s.strip_prefix("serial ").unwrap_or(s);
    let s = s.strip_prefix("/dev/").unwrap_or(s);
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
        if out.len() >= 48 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "session".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn capture_file_names_are_safe() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let dir = Path::new("/state/hsmon/captures");
        assert_eq!(
            capture_path_in(dir, "serial /dev/ttyUSB0", t),
            dir.join("20231114T221320Z-ttyUSB0.hscap")
        );
        assert_eq!(
            capture_path_in(dir, "tcp 10.0.0.5:2404", t),
            dir.join("20231114T221320Z-tcp-10.0.0.5-2404.hscap")
        );
        assert_eq!(
            capture_path_in(dir, "../../etc/passwd", t),
            dir.join("20231114T221320Z-..-..-etc-passwd.hscap")
        );
        assert_eq!(
            capture_path_in(dir, "", t),
            dir.join("20231114T221320Z-session.hscap")
        );
        let long = "x".repeat(500);
        let p = capture_path_in(dir, &long, t);
        assert!(p.file_name().unwrap().len() < 80);
    }
}
