//! `hsmon list`: the serial ports on this machine, with USB VID:PID, serial number and the
//! stable /dev/serial/by-id name (the one to put in scripts: it survives re-plugging).

use crate::source::available::PortInfo;

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
                    Some(atr) => s.push_str(&format!("  card ATR {}", crate::hex::spaced(atr))),
                    None => s.push_str("  (no card)"),
                }
                s.push('\n');
            }
            s
        }
    }
}
