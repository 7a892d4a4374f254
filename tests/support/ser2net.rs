//! Debian's ser2net (4.x, YAML configuration) on 127.0.0.1 fronting a pty, as a lab's
//! terminal server fronts a real port: in RFC 2217 (`telnet(rfc2217)`) or raw TCP mode.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{require, wait_until};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `accepter: telnet(rfc2217),tcp,...`: what `hsmon serial rfc2217://` talks to.
    Rfc2217,
    /// `accepter: tcp,...`: bytes only, what `hsmon tcp` talks to.
    Raw,
}

pub struct Ser2net {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
}

/// A port nothing listens on right now (the kernel's pick; free again once dropped).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// True when a socket listens on 127.0.0.1:`port` (read from /proc, so the check itself
/// opens no connection: ser2net would open the device for it).
pub fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == want && f[3] == "0A"
        })
    })
}

impl Ser2net {
    /// Starts ser2net on a free port, fronting `device` at 115200 8N1 (`local`: no modem
    /// control lines, as a pty has none).
    pub fn start(device: &Path, mode: Mode) -> Ser2net {
        require("ser2net");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let accepter = match mode {
            Mode::Rfc2217 => "telnet(rfc2217),tcp",
            Mode::Raw => "tcp",
        };
        let yaml = format!(
            "connection: &hsmon\n  accepter: {accepter},127.0.0.1,{port}\n  connector: serialdev,{},115200n81,local\n",
            device.display()
        );
        std::fs::write(dir.path().join("ser2net.yaml"), yaml).unwrap();
        let mut s = Ser2net {
            dir,
            child: None,
            port,
        };
        s.spawn();
        s
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("ser2net.yaml")
    }

    fn spawn(&mut self) {
        let child = Command::new("ser2net")
            .arg("-n") // stay in the foreground
            .arg("-c")
            .arg(self.config())
            .arg("-P")
            .arg(self.dir.path().join("ser2net.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ser2net starts");
        self.child = Some(child);
        let port = self.port;
        wait_until(Duration::from_secs(10), || listening(port))
            .unwrap_or_else(|e| panic!("ser2net does not listen on {port}: {e}"));
    }

    /// The URL hsmon opens.
    pub fn url(&self) -> String {
        format!("rfc2217://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops ser2net (SIGTERM: it closes the device and removes its lock file).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            if wait_until(Duration::from_secs(5), || {
                matches!(c.try_wait(), Ok(Some(_)))
            })
            .is_err()
            {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        let port = self.port;
        wait_until(Duration::from_secs(5), || !listening(port)).unwrap();
    }

    /// Starts it again with the same configuration (same port).
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
