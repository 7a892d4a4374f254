//! docs/lab.md's ser2net connection, run for real: Debian's ser2net with the YAML from the
//! page (device and port moved to a pty and 127.0.0.1) serves two `hsmon serial NAME` sessions
//! through a named rfc2217:// port at once — the logger and a person — and both see what the
//! device says. Without `max-connections` the second is turned away: the reason the page
//! raises it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::process::{Child, Stdio};

use std::time::Duration;

use support::ser2net::{free_port, listening};
use support::{Headless, PtyLink, hsmon_command, path_str, require, wait_until};

const T: Duration = Duration::from_secs(20);

/// The ```yaml block of docs/lab.md, for the given device and port on 127.0.0.1.
fn lab_yaml(device: &str, port: u16) -> String {
    let doc = include_str!("../docs/lab.md");
    let start = doc.find("```yaml\n").unwrap() + "```yaml\n".len();
    let block = &doc[start..];
    let block = &block[..block.find("```").unwrap()];
    assert!(block.contains("max-connections: 4"), "{block}");
    block
        .replace("tcp,7001", &format!("tcp,127.0.0.1,{port}"))
        .replace(
            "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
            device,
        )
}

struct Server(Child);

impl Server {
    fn start(dir: &std::path::Path, yaml: &str, port: u16) -> Server {
        require("ser2net");
        let cfg = dir.join("ser2net.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let child = std::process::Command::new("ser2net")
            .arg("-n")
            .arg("-c")
            .arg(&cfg)
            .arg("-P")
            .arg(dir.join("ser2net.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ser2net starts");
        wait_until(Duration::from_secs(10), || listening(port)).unwrap();
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hsmon --headless --format json --config CFG serial NAME`.
fn session(cfg: &std::path::Path, name: &str) -> Headless {
    let mut cmd = hsmon_command();
    cmd.args(["--headless", "--format", "json", "--no-capture"])
        .args(["--config", path_str(cfg), "serial", name]);
    Headless::spawn(cmd)
}

/// Waits until the session has received `want` (in any of its reads).
fn wait_rx(h: &mut Headless, want: &[u8]) {
    while !h.rx_bytes().windows(want.len()).any(|w| w == want) {
        h.wait_for(T, |v| v["type"] == "rx");
    }
}

#[test]
fn the_lab_page_s_ser2net_serves_the_logger_and_a_person_at_once() {
    let link = PtyLink::new();
    let port = free_port();
    let _server = Server::start(link.dir.path(), &lab_yaml(path_str(&link.a()), port), port);
    let cfg = link.dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[ports.meter]\npath = \"rfc2217://127.0.0.1:{port}\"\nbaud = 2400\n"),
    )
    .unwrap();
    let mut logger = session(&cfg, "meter");
    let s = logger.wait_for(T, |v| v["type"] == "settings");
    assert_eq!(s["baud"], 2400, "what ser2net confirmed: {s}");
    let mut person = session(&cfg, "meter");
    person.wait_for(T, |v| v["type"] == "settings");
    let mut dev = link.device();
    dev.write_all(b"\x68\x03\x03\x68\x53\xfe\x50\xa1\x16")
        .unwrap();
    wait_rx(&mut logger, b"\x68\x03\x03\x68\x53\xfe\x50\xa1\x16");
    wait_rx(&mut person, b"\x68\x03\x03\x68\x53\xfe\x50\xa1\x16");
}

#[test]
fn without_max_connections_a_second_client_is_turned_away() {
    let link = PtyLink::new();
    let port = free_port();
    // The same connection with its `options:` (only max-connections) left out.
    let yaml: String = lab_yaml(path_str(&link.a()), port)
        .lines()
        .filter(|l| !l.contains("options:") && !l.contains("max-connections"))
        .map(|l| format!("{l}\n"))
        .collect();
    let _server = Server::start(link.dir.path(), &yaml, port);
    let addr = format!("127.0.0.1:{port}");
    let first = std::net::TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut second = std::net::TcpStream::connect(&addr).unwrap();
    second.set_read_timeout(Some(T)).unwrap();
    // ser2net says why and closes: read to the end.
    let mut said = Vec::new();
    let _ = second.read_to_end(&mut said);
    let said = String::from_utf8_lossy(&said);
    assert!(said.contains("in use"), "ser2net said {said:?}");
    drop(first);
}
