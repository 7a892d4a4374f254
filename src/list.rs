//! `hsmon list`: the serial ports on this machine, with USB VID:PID, serial number and the
//! stable /dev/serial/by-id name (the one to put in scripts: it survives re-plugging).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One serial port as `hsmon list` shows it.
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

/// One line per port for the terminal.
pub fn render_text(ports: &[PortInfo]) -> String {
    if ports.is_empty() {
        return "No serial ports found. Plug in the adapter; if it still does not show, check `dmesg` for the driver.\n".to_string();
    }
    let mut s = String::from("Serial ports:\n");
    for p in ports {
        s.push_str(&format!("  {:<20} {}", p.path, p.kind));
        if let Some(v) = &p.vid_pid {
            s.push_str(&format!("  {v}"));
        }
        let desc: Vec<&str> = [&p.manufacturer, &p.product]
            .into_iter()
            .filter_map(|x| x.as_deref())
            .collect();
        if !desc.is_empty() {
            s.push_str(&format!(
                "  {}",
                crate::sanitize::printable(&desc.join(" "))
            ));
        }
        if let Some(sn) = &p.serial_number {
            s.push_str(&format!("  serial {}", crate::sanitize::printable(sn)));
        }
        if let Some(b) = &p.by_id {
            s.push_str(&format!("\n  {:<20} {}", "", b));
        }
        s.push('\n');
    }
    s
}

/// The PC/SC readers for `hsmon list`, or why they cannot be listed.
pub fn render_readers(readers: &Result<Vec<crate::source::card::ReaderInfo>, String>) -> String {
    match readers {
        Err(e) => format!("Card readers: {e}\n"),
        Ok(r) if r.is_empty() => {
            "Card readers: none (plug one in; pcscd lists it within a second)\n".to_string()
        }
        Ok(r) => {
            let mut s = String::from("Card readers:\n");
            for (i, x) in r.iter().enumerate() {
                s.push_str(&format!("  {i}  {}", crate::sanitize::printable(&x.name)));
                match &x.atr {
                    Some(atr) => {
                        s.push_str(&format!("  card ATR {}", crate::sanitize::hex_string(atr)))
                    }
                    None => s.push_str("  (no card)"),
                }
                s.push('\n');
            }
            s
        }
    }
}
