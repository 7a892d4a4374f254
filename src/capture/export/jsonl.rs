//! JSON lines: a `session` record from the capture header, then one object per event, the
//! records `--headless --format json` prints (`headless::write_event_json`: `ts` from the
//! capture's start, reads split at 4 KiB), so scripts read a capture and a live session the
//! same way.

use std::io::{self, Write};

use super::Exporter;
use crate::capture::reader::{CaptureHeader, Record};
use crate::stamp::Stamp;

pub struct JsonlExporter {
    stamp: Stamp,
}

impl JsonlExporter {
    /// An exporter adding `labels` (the `--label` members) to every record.
    pub fn new(labels: Vec<(String, String)>) -> JsonlExporter {
        JsonlExporter {
            stamp: Stamp {
                start_unix_ns: 0,
                labels,
            },
        }
    }
}

impl Exporter for JsonlExporter {
    fn begin(&mut self, header: &CaptureHeader, out: &mut dyn Write) -> io::Result<()> {
        let m = &header.meta;
        self.stamp.start_unix_ns = m.started_unix_ns;
        let v = crate::headless::session_record(
            &self.stamp,
            &m.hsmon_version,
            None,
            None,
            &m.source,
            m.settings.as_ref(),
            None,
        );
        crate::sanitize::write_json_line(out, &v)
    }

    fn event(&mut self, rec: &Record, out: &mut dyn Write) -> io::Result<u64> {
        crate::headless::write_event_json(out, &rec.event, None, &self.stamp)
    }
}
