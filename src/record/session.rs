//! The `session` record (the first line: what the records that follow are about) and
//! [`play`]: recorded events taken through a `Session` and written as records, the one path
//! for `hsmon export --to jsonl` and `hsmon --headless replay --speed max`.

use std::io::{self, Write};

use serde::Serialize;

use super::{Record, Time};
use crate::event::LineSettings;
use crate::session::Session;
use crate::stamp::Stamp;

/// The line settings a session started with.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSettings {
    pub baud: u32,
    pub format: String,
    pub flow: &'static str,
}

/// `session`: the hsmon that wrote the records, where and how it was started (None where
/// not known: a capture keeps neither host nor command line), the source and its settings,
/// and the capture the session records to.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    pub version: String,
    pub host: Option<String>,
    pub command: Option<Vec<String>>,
    pub source: String,
    pub settings: Option<SessionSettings>,
    pub capture: Option<String>,
    /// The session's start and labels: the record's `ts` and last members.
    #[serde(skip)]
    pub stamp: Stamp,
}

impl Record for SessionRecord {
    fn kind(&self) -> &'static str {
        "session"
    }
}

impl SessionRecord {
    pub fn new(
        stamp: &Stamp,
        version: &str,
        source: &str,
        settings: Option<&LineSettings>,
    ) -> Self {
        SessionRecord {
            version: version.to_string(),
            host: None,
            command: None,
            source: source.to_string(),
            settings: settings.map(|s| SessionSettings {
                baud: s.baud.bps(),
                format: s.format.to_string(),
                flow: s.flow.label(),
            }),
            capture: None,
            stamp: stamp.clone(),
        }
    }

    /// The record of this process's session: this hsmon, this host, this command line, and
    /// the capture it records to.
    pub fn live(session: &Session) -> Self {
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
        SessionRecord {
            host,
            command: Some(argv),
            capture,
            ..SessionRecord::new(
                &session.stamp,
                env!("CARGO_PKG_VERSION"),
                &session.source_name,
                session.settings.as_ref(),
            )
        }
    }

    /// Writes the record (`t` 0).
    pub fn write<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        let time = Time::at(std::time::Duration::ZERO, &self.stamp);
        super::write(out, self, &time, None, &self.stamp)
    }
}
