//! JSON lines: one object per event, exactly the records `--headless --format json` prints
//! (`headless::json_record`), so scripts read a capture and a live session the same way.

use std::io::{self, Write};

use super::Exporter;
use crate::capture::reader::{CaptureHeader, Record};

pub struct JsonlExporter;

impl Exporter for JsonlExporter {
    fn begin(&mut self, _header: &CaptureHeader, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, rec: &Record, out: &mut dyn Write) -> io::Result<u64> {
        serde_json::to_writer(&mut *out, &crate::headless::json_record(&rec.event))?;
        out.write_all(b"\n")?;
        Ok(1)
    }
}
