//! What a capture says about its session (source, initial settings, hsmon version, wall-clock
//! start), RFC 3339 rendering of that start, and where captures go by default.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::LineSettings;

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

/// Nanoseconds since the Unix epoch (negative before 1970), saturating.
pub fn unix_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// RFC 3339 in UTC (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`) for nanoseconds since the epoch.
/// Hand-written (days → civil date, H. Hinnant's algorithm) to avoid a date crate for one line.
pub fn rfc3339(unix_ns: i64) -> String {
    rfc3339_digits(unix_ns, 9)
}

/// RFC 3339 in UTC with microseconds (`YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, the `ts` of headless JSON
/// records): [`rfc3339`] cut to whole microseconds (truncated, never rounded up a second).
pub fn rfc3339_micros(unix_ns: i64) -> String {
    rfc3339_digits(unix_ns, 6)
}

/// RFC 3339 with `digits` (1..=9) of the fraction, truncated.
fn rfc3339_digits(unix_ns: i64, digits: u32) -> String {
    let (date, secs_of_day, nanos) = split(unix_ns);
    let (y, m, d) = date;
    let digits = digits.clamp(1, 9);
    let fraction = nanos / 10i64.pow(9 - digits);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{fraction:0width$}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        width = digits as usize
    )
}

/// A compact UTC stamp for file names: `20231114T221320Z`.
pub fn file_stamp(unix_ns: i64) -> String {
    let ((y, m, d), s, _) = split(unix_ns);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn split(unix_ns: i64) -> ((i64, u32, u32), i64, i64) {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    (civil_from_days(days), secs_of_day, nanos)
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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
    use std::time::Duration;

    #[test]
    fn rfc3339_known_answers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1700000000` → Tue Nov 14 22:13:20 UTC 2023
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        // Leap day, and the day after.
        assert_eq!(
            rfc3339(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(951_868_800 * 1_000_000_000),
            "2000-03-01T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(file_stamp(1_700_000_000_000_000_000), "20231114T221320Z");
    }

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
