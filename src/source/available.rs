//! The serial ports the OS reports on this machine, with USB VID:PID, serial number and the
//! stable /dev/serial/by-id name: what `hsmon list` shows, what named ports match against, and
//! the "ports that exist" hint when opening one fails.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One serial port as the OS reports it (and `hsmon list` shows it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortInfo {
    pub path: String,
    /// "usb", "pci", "bluetooth" or "unknown".
    pub kind: String,
    pub vid_pid: Option<String>,
    pub serial_number: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    /// The /dev/serial/by-id link that points at this port, if any.
    pub by_id: Option<String>,
}

/// Maps each canonical device path to its /dev/serial/by-id link.
fn by_id_links(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let link = e.path();
            let target = std::fs::canonicalize(&link).ok()?;
            Some((target, link.display().to_string()))
        })
        .collect()
}

/// Every serial port the OS reports, sorted by path.
pub fn serial_ports() -> Vec<PortInfo> {
    let links = by_id_links(Path::new("/dev/serial/by-id"));
    let mut out: Vec<PortInfo> = serialport::available_ports()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let canonical = std::fs::canonicalize(&p.port_name).ok();
            let by_id = links
                .iter()
                .find(|(t, _)| Some(t) == canonical.as_ref())
                .map(|(_, l)| l.clone());
            let (kind, vid_pid, serial_number, manufacturer, product) = match p.port_type {
                serialport::SerialPortType::UsbPort(u) => (
                    "usb",
                    Some(format!("{:04x}:{:04x}", u.vid, u.pid)),
                    u.serial_number,
                    u.manufacturer,
                    u.product,
                ),
                serialport::SerialPortType::PciPort => ("pci", None, None, None, None),
                serialport::SerialPortType::BluetoothPort => ("bluetooth", None, None, None, None),
                serialport::SerialPortType::Unknown => ("unknown", None, None, None, None),
            };
            PortInfo {
                path: p.port_name,
                kind: kind.to_string(),
                vid_pid,
                serial_number,
                manufacturer,
                product,
                by_id,
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Just the paths, for "ports that exist" hints in error messages.
pub fn serial_port_names() -> Vec<String> {
    serial_ports().into_iter().map(|p| p.path).collect()
}
