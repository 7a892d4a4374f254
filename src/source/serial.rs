//! The serial-port source: opens a tty (USB adapter, on-board UART, pseudo-terminal), streams
//! its bytes, applies line settings live, and reconnects by itself when the port vanishes.

use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};

use crate::clock::Clock;
use crate::event::{
    Baud, Command, ConnectionState, DataBits, Event, FlowControl, FrameFormat, LineSettings,
    ModemLines, Parity, StopBits,
};
use crate::source::line_errors;
use crate::source::{EventSink, SourceHandle, channels};

/// How often a vanished port is looked for again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// How often an open port's path is checked (some drivers stay silent when unplugged) and
/// its line error counters read.
const PRESENCE_CHECK: Duration = Duration::from_secs(1);

/// Bytes asked for per read.
const READ_BUFFER: usize = 64 * 1024;

/// Why a port could not be opened. Each says the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: no such serial port.{}", available_ports_hint())]
    NotFound { path: String },
    #[error("permission denied on {path}: {fix}")]
    PermissionDenied { path: String, fix: String },
    #[error(
        "{path} is busy: another program has it open{holder}. Close that program (a terminal, ModemManager, a flashing tool) and try again"
    )]
    Busy { path: String, holder: String },
    #[error(
        "{path} is not a serial port ({reason}): give a tty such as /dev/ttyUSB0 or /dev/ttyACM0"
    )]
    NotATty { path: String, reason: String },
    #[error("{path}: the port refused {what}: {reason}")]
    Refused {
        path: String,
        what: String,
        reason: String,
    },
    #[error("cannot open {path}: {reason}")]
    Other { path: String, reason: String },
}

fn available_ports_hint() -> String {
    let ports = super::available::serial_port_names();
    if ports.is_empty() {
        " No serial ports were found on this machine: is the adapter plugged in? (`hsmon list` shows them)".to_string()
    } else {
        format!(" Ports that exist: {}", ports.join(", "))
    }
}

/// Looks for a UUCP lock file naming a live process (the convention minicom, tio and
/// others follow), so "busy" can say who holds the port.
fn lock_holder(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    for dir in ["/run/lock", "/var/lock"] {
        let lock = Path::new(dir).join(format!("LCK..{name}"));
        if let Ok(text) = std::fs::read_to_string(&lock) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                if Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id() {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Processes that have `path` open, found the way `fuser` does (their /proc/PID/fd links).
fn holders(path: &Path) -> Vec<u32> {
    let Ok(target) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            out.push(pid);
        }
    }
    out
}

fn holders_text(path: &Path) -> String {
    let pids = holders(path);
    if pids.is_empty() {
        return String::new();
    }
    let list: Vec<String> = pids
        .iter()
        .map(|p| format!("{p} ({})", process_name(*p)))
        .collect();
    format!(" (process {})", list.join(", "))
}

fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// Opens `path` with `settings`, mapping every failure to an [`OpenError`] with a fix.
pub fn open(path: &Path, settings: &LineSettings) -> Result<SerialStream, OpenError> {
    let p = path.display().to_string();
    if !path.exists() {
        return Err(OpenError::NotFound { path: p });
    }
    if let Some(pid) = lock_holder(path) {
        return Err(OpenError::Busy {
            path: p,
            holder: format!(" (process {pid}, {}, holds a lock file)", process_name(pid)),
        });
    }
    let builder = tokio_serial::new(p.clone(), settings.baud.bps())
        .data_bits(to_sp_data_bits(settings.format.data_bits))
        .parity(to_sp_parity(settings.format.parity))
        .stop_bits(to_sp_stop_bits(settings.format.stop_bits))
        .flow_control(to_sp_flow(settings.flow))
        .timeout(Duration::from_millis(100));
    let port = builder
        .open_native_async()
        .map_err(|e| map_open_error(&p, e))?;
    apply_mark_space(&port, settings.format.parity).map_err(|reason| OpenError::Refused {
        path: p.clone(),
        what: format!("parity {:?}", settings.format.parity),
        reason,
    })?;
    Ok(port)
}

fn map_open_error(path: &str, e: tokio_serial::Error) -> OpenError {
    let path = path.to_string();
    let text = e.description.clone();
    if text.contains("Not a typewriter") || text.contains("Inappropriate ioctl") {
        return OpenError::NotATty { path, reason: text };
    }
    if Path::new(&path).is_dir() {
        return OpenError::NotATty {
            path,
            reason: "it is a directory".into(),
        };
    }
    match e.kind {
        // serialport reports EBUSY (TIOCEXCL) and a held flock as NoDevice.
        tokio_serial::ErrorKind::NoDevice if Path::new(&path).exists() => {
            let holder = holders_text(Path::new(&path));
            OpenError::Busy { path, holder }
        }
        tokio_serial::ErrorKind::NoDevice => OpenError::NotFound { path },
        tokio_serial::ErrorKind::Io(kind) => match kind {
            io::ErrorKind::NotFound => OpenError::NotFound { path },
            io::ErrorKind::PermissionDenied => permission_denied(path),
            io::ErrorKind::ResourceBusy | io::ErrorKind::WouldBlock => {
                let holder = holders_text(Path::new(&path));
                OpenError::Busy { path, holder }
            }
            _ => OpenError::Other { path, reason: text },
        },
        tokio_serial::ErrorKind::InvalidInput => OpenError::Refused {
            path,
            what: "the line settings".to_string(),
            reason: text,
        },
        tokio_serial::ErrorKind::Unknown => {
            if text.contains("Permission denied") {
                permission_denied(path)
            } else if text.contains("busy") || text.contains("Resource temporarily unavailable") {
                OpenError::Busy {
                    path,
                    holder: String::new(),
                }
            } else {
                OpenError::Other { path, reason: text }
            }
        }
    }
}

/// Permission denied, with the fix the device's owner, group and mode allow: joining its
/// group helps only when the group may read and write it (a 0600 root device needs a udev
/// rule or sudo).
fn permission_denied(path: String) -> OpenError {
    use std::os::unix::fs::MetadataExt;
    let fix = match std::fs::metadata(&path) {
        Ok(m) if m.mode() & 0o060 == 0o060 => {
            let group = group_name(m.gid()).unwrap_or_else(|| format!("with id {}", m.gid()));
            format!(
                "the port belongs to the group {group}: add yourself to it (sudo usermod -aG {group} $USER), then log out and in again"
            )
        }
        Ok(m) => format!(
            "only its owner (uid {}) may open it (mode {:04o}): give it a group you are in with a udev rule (e.g. GROUP=\"dialout\", MODE=\"0660\"), or run hsmon as that user",
            m.uid(),
            m.mode() & 0o7777
        ),
        Err(_) => "check the permissions of the port and of the folders above it".into(),
    };
    OpenError::PermissionDenied { path, fix }
}

/// The name of group `gid` from /etc/group.
fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?;
        (id.parse() == Ok(gid)).then(|| name.to_string())
    })
}

fn to_sp_data_bits(d: DataBits) -> tokio_serial::DataBits {
    match d {
        DataBits::Five => tokio_serial::DataBits::Five,
        DataBits::Six => tokio_serial::DataBits::Six,
        DataBits::Seven => tokio_serial::DataBits::Seven,
        DataBits::Eight => tokio_serial::DataBits::Eight,
    }
}

fn to_sp_parity(p: Parity) -> tokio_serial::Parity {
    match p {
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
        // Mark and space are applied afterwards with CMSPAR (`apply_mark_space`).
        Parity::None | Parity::Mark | Parity::Space => tokio_serial::Parity::None,
    }
}

fn to_sp_stop_bits(s: StopBits) -> tokio_serial::StopBits {
    match s {
        StopBits::One => tokio_serial::StopBits::One,
        StopBits::Two => tokio_serial::StopBits::Two,
    }
}

fn to_sp_flow(f: FlowControl) -> tokio_serial::FlowControl {
    match f {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        FlowControl::Software => tokio_serial::FlowControl::Software,
    }
}

/// Mark and space parity: serialport has no names for them; Linux sets them with
/// PARENB|CMSPAR (PARODD selects mark). Elsewhere they are refused with a message.
#[cfg(target_os = "linux")]
fn apply_mark_space(port: &SerialStream, parity: Parity) -> Result<(), String> {
    use nix::sys::termios::{ControlFlags, SetArg, tcgetattr, tcsetattr};
    let fd = port.as_raw_fd();
    let mut t = tcgetattr(fd).map_err(|e| e.to_string())?;
    match parity {
        Parity::Mark => {
            t.control_flags |= ControlFlags::PARENB | ControlFlags::CMSPAR | ControlFlags::PARODD;
        }
        Parity::Space => {
            t.control_flags |= ControlFlags::PARENB | ControlFlags::CMSPAR;
            t.control_flags &= !ControlFlags::PARODD;
        }
        _ => {
            if !t.control_flags.contains(ControlFlags::CMSPAR) {
                return Ok(());
            }
            t.control_flags &= !ControlFlags::CMSPAR;
        }
    }
    tcsetattr(fd, SetArg::TCSANOW, &t).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn apply_mark_space(_port: &SerialStream, parity: Parity) -> Result<(), String> {
    match parity {
        Parity::Mark | Parity::Space => {
            Err("mark and space parity are only supported on Linux".to_string())
        }
        _ => Ok(()),
    }
}

#[cfg(target_os = "linux")]
fn read_mark_space(port: &SerialStream) -> Option<Parity> {
    use nix::sys::termios::{ControlFlags, tcgetattr};
    let t = tcgetattr(port.as_raw_fd()).ok()?;
    let f = t.control_flags;
    if f.contains(ControlFlags::PARENB | ControlFlags::CMSPAR) {
        Some(if f.contains(ControlFlags::PARODD) {
            Parity::Mark
        } else {
            Parity::Space
        })
    } else {
        None
    }
}

#[cfg(not(target_os = "linux"))]
fn read_mark_space(_port: &SerialStream) -> Option<Parity> {
    None
}

/// The settings the port really has now (the device is the truth, not our request).
fn read_settings(port: &SerialStream, fallback: &LineSettings) -> LineSettings {
    let baud = port
        .baud_rate()
        .ok()
        .and_then(|b| Baud::new(b).ok())
        .unwrap_or(fallback.baud);
    let data_bits = match port.data_bits() {
        Ok(tokio_serial::DataBits::Five) => DataBits::Five,
        Ok(tokio_serial::DataBits::Six) => DataBits::Six,
        Ok(tokio_serial::DataBits::Seven) => DataBits::Seven,
        Ok(tokio_serial::DataBits::Eight) => DataBits::Eight,
        Err(_) => fallback.format.data_bits,
    };
    let parity = read_mark_space(port).unwrap_or(match port.parity() {
        Ok(tokio_serial::Parity::Even) => Parity::Even,
        Ok(tokio_serial::Parity::Odd) => Parity::Odd,
        Ok(tokio_serial::Parity::None) => Parity::None,
        Err(_) => fallback.format.parity,
    });
    let stop_bits = match port.stop_bits() {
        Ok(tokio_serial::StopBits::One) => StopBits::One,
        Ok(tokio_serial::StopBits::Two) => StopBits::Two,
        Err(_) => fallback.format.stop_bits,
    };
    let flow = match port.flow_control() {
        Ok(tokio_serial::FlowControl::None) => FlowControl::None,
        Ok(tokio_serial::FlowControl::Hardware) => FlowControl::Hardware,
        Ok(tokio_serial::FlowControl::Software) => FlowControl::Software,
        Err(_) => fallback.flow,
    };
    LineSettings {
        baud,
        format: FrameFormat {
            data_bits,
            parity,
            stop_bits,
        },
        flow,
    }
}

/// Asserts DTR and RTS after open (what Linux does on open anyway) and records whether the
/// port has modem lines at all: a pseudo-terminal refuses, and shows "n/a".
fn init_modem(port: &mut SerialStream) -> ModemLines {
    let dtr = port.write_data_terminal_ready(true).ok().map(|_| true);
    let rts = port.write_request_to_send(true).ok().map(|_| true);
    ModemLines { dtr, rts }
}

/// Opens the port and starts the source task. The first open fails fast with an
/// [`OpenError`]; after that, a lost port is retried every [`RETRY_INTERVAL`].
pub fn spawn(
    path: PathBuf,
    settings: LineSettings,
    clock: Clock,
) -> Result<SourceHandle, OpenError> {
    let mut port = open(&path, &settings)?;
    let (etx, erx, ctx, crx) = channels();
    let modem = init_modem(&mut port);
    let name = path.display().to_string();
    tokio::spawn(async move {
        let sink = EventSink::new(etx, clock);
        let mut task = SerialTask {
            path,
            settings,
            modem,
            sink,
            commands: crx,
        };
        task.run(port).await;
    });
    Ok(SourceHandle {
        events: erx,
        commands: ctx,
        name,
        streams: Vec::new(),
    })
}

/// How a command is acknowledged.
enum CmdKind {
    /// By the settings the port reports afterwards, compared with these.
    Settings(LineSettings),
    /// By the modem-line state in a settings record.
    Modem,
    /// By its own event (Tx, BreakSent) or a failure.
    Other,
}

enum Ended {
    Shutdown,
    Lost(String),
}

struct SerialTask {
    path: PathBuf,
    settings: LineSettings,
    modem: ModemLines,
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
}

impl SerialTask {
    async fn run(&mut self, mut port: SerialStream) {
        loop {
            // What the port was opened with (the command line, the config) is checked like a
            // live `format` command: a port that kept other settings (a pty keeps 8N1) is said.
            let asked = self.settings;
            self.settings = read_settings(&port, &self.settings);
            let up = self.sink.emit(Event::Connection(ConnectionState::Up));
            let kept = if asked == self.settings {
                Ok(())
            } else {
                self.sink.emit(Event::CommandFailed {
                    command: format!("open with {asked}"),
                    reason: format!(
                        "the port kept {} (pseudo-terminals ignore data bits, parity and flow control)",
                        self.settings
                    ),
                })
            };
            let ls = self.sink.emit(Event::LineSettings {
                settings: self.settings,
                modem: self.modem,
            });
            if up.is_err() || kept.is_err() || ls.is_err() {
                return;
            }
            match self.connected(&mut port).await {
                Ended::Shutdown => {
                    let _ = self.sink.drain().await;
                    return;
                }
                Ended::Lost(reason) => {
                    drop(port);
                    tracing::info!(path = %self.path.display(), %reason, "port lost");
                    if self
                        .sink
                        .emit(Event::Connection(ConnectionState::Down {
                            reason: reason.clone(),
                        }))
                        .is_err()
                    {
                        return;
                    }
                    match self.reconnect(reason).await {
                        Some(p) => port = p,
                        None => return,
                    }
                }
            }
        }
    }

    /// Reads and obeys commands until the port is lost or the session ends.
    async fn connected(&mut self, port: &mut SerialStream) -> Ended {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut presence = tokio::time::interval(PRESENCE_CHECK);
        // Reported once at the start (supported or not), then on change.
        let mut errors = Some(crate::event::LineErrorCounts {
            frame: u64::MAX,
            ..Default::default()
        });
        presence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flush_soon = self.sink.has_pending();
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { return Ended::Shutdown };
                    if cmd == Command::Shutdown {
                        return Ended::Shutdown;
                    }
                    if let Some(lost) = self.obey(port, cmd).await {
                        return Ended::Lost(lost);
                    }
                }
                r = port.read(&mut buf) => match r {
                    Ok(0) => return Ended::Lost("end of file on the port".to_string()),
                    Ok(n) => {
                        if self.sink.emit(Event::Rx(buf[..n].to_vec())).is_err() {
                            return Ended::Shutdown;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut => {}
                    Err(e) => return Ended::Lost(describe_io(&e)),
                },
                _ = presence.tick() => {
                    if !self.path.exists() {
                        return Ended::Lost(format!("{} disappeared", self.path.display()));
                    }
                    // Line error counters: polled once a second, reported when they change.
                    let now = line_errors::read(port.as_raw_fd());
                    if now != errors {
                        errors = now;
                        if self.sink.emit(Event::LineErrors(now)).is_err() {
                            return Ended::Shutdown;
                        }
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(2)), if flush_soon => {
                    if self.sink.flush().is_err() {
                        return Ended::Shutdown;
                    }
                }
            }
        }
    }

    /// Carries out one command and reports the outcome as Events. Returns a reason if the
    /// port turned out to be gone.
    async fn obey(&mut self, port: &mut SerialStream, cmd: Command) -> Option<String> {
        let what = cmd.describe();
        let cmd_kind = match &cmd {
            Command::SetBaud(b) => CmdKind::Settings(LineSettings {
                baud: *b,
                ..self.settings
            }),
            Command::SetFormat(f) => CmdKind::Settings(LineSettings {
                format: *f,
                ..self.settings
            }),
            Command::SetFlow(f) => CmdKind::Settings(LineSettings {
                flow: *f,
                ..self.settings
            }),
            Command::SetDtr(_) | Command::SetRts(_) => CmdKind::Modem,
            _ => CmdKind::Other,
        };
        let result: Result<Option<Event>, String> = match cmd {
            Command::SetBaud(b) => port
                .set_baud_rate(b.bps())
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Command::SetFormat(f) => (|| {
                port.set_data_bits(to_sp_data_bits(f.data_bits))
                    .map_err(|e| e.to_string())?;
                port.set_parity(to_sp_parity(f.parity))
                    .map_err(|e| e.to_string())?;
                port.set_stop_bits(to_sp_stop_bits(f.stop_bits))
                    .map_err(|e| e.to_string())?;
                apply_mark_space(port, f.parity)?;
                Ok(None)
            })(),
            Command::SetFlow(f) => port
                .set_flow_control(to_sp_flow(f))
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Command::SetDtr(on) => match port.write_data_terminal_ready(on) {
                Ok(()) => {
                    self.modem.dtr = Some(on);
                    Ok(None)
                }
                Err(e) => Err(no_modem_lines(e)),
            },
            Command::SetRts(on) => match port.write_request_to_send(on) {
                Ok(()) => {
                    self.modem.rts = Some(on);
                    Ok(None)
                }
                Err(e) => Err(no_modem_lines(e)),
            },
            Command::SendBreak(d) => match port.set_break() {
                Ok(()) => {
                    tokio::time::sleep(d).await;
                    port.clear_break()
                        .map(|_| Some(Event::BreakSent))
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("break not supported by this port: {e}")),
            },
            Command::Transmit(bytes) => match port.write_all(&bytes).await {
                Ok(()) => {
                    let _ = port.flush().await;
                    Ok(Some(Event::Tx(bytes)))
                }
                Err(e) => {
                    let reason = describe_io(&e);
                    let _ = self.sink.emit(Event::CommandFailed {
                        command: what,
                        reason: format!("not sent: {reason}"),
                    });
                    return Some(reason);
                }
            },
            Command::Shutdown => Ok(None),
            Command::Replay(_) => Err("a live port is not a replay".to_string()),
            Command::SendApdu { .. } | Command::Reconnect(_) | Command::Transaction(_) => {
                Err("a serial port has no card: APDUs need `hsmon card`".to_string())
            }
        };
        let requested = match &cmd_kind {
            CmdKind::Settings(r) => Some(*r),
            CmdKind::Modem => None,
            CmdKind::Other => {
                // Data and breaks are acknowledged by their own events, not by settings.
                let _ = match result {
                    Ok(Some(ev)) => self.sink.emit(ev),
                    Ok(None) => Ok(()),
                    Err(reason) => self.sink.emit(Event::CommandFailed {
                        command: what,
                        reason,
                    }),
                };
                return None;
            }
        };
        if let Err(reason) = result {
            let _ = self.sink.emit(Event::CommandFailed {
                command: what.clone(),
                reason,
            });
        }
        // Every settings command is acknowledged by what the port now reports, and a
        // setting the port silently kept as it was is said (a pty keeps 8N1, for one).
        self.settings = read_settings(port, &self.settings);
        if let Some(want) = requested {
            if want != self.settings {
                let _ = self.sink.emit(Event::CommandFailed {
                    command: what,
                    reason: format!(
                        "the port kept {} (pseudo-terminals ignore data bits, parity and flow control)",
                        self.settings
                    ),
                });
            }
        }
        let _ = self.sink.emit(Event::LineSettings {
            settings: self.settings,
            modem: self.modem,
        });
        None
    }

    /// Retries every [`RETRY_INTERVAL`] until the port opens again with the same settings.
    /// Commands meanwhile are refused with a message (nothing is sent to a missing port).
    async fn reconnect(&mut self, mut reason: String) -> Option<SerialStream> {
        let mut tick = tokio::time::interval(RETRY_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut announced = false;
        loop {
            if !announced {
                let retrying = Event::Connection(ConnectionState::Retrying {
                    reason: reason.clone(),
                });
                self.sink.emit(retrying).ok()?;
                announced = true;
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::time::sleep(Duration::from_millis(2)), if self.sink.has_pending() => {
                    self.sink.flush().ok()?;
                    continue;
                }
                cmd = self.commands.recv() => {
                    match cmd {
                        None | Some(Command::Shutdown) => return None,
                        Some(c) => {
                            let refused = Event::CommandFailed {
                                command: c.describe(),
                                reason: "the port is disconnected; waiting for it to return"
                                    .to_string(),
                            };
                            self.sink.emit(refused).ok()?;
                        }
                    }
                    continue;
                }
            }
            match open(&self.path, &self.settings) {
                Ok(mut p) => {
                    // Restore the modem lines the user had set.
                    if let Some(dtr) = self.modem.dtr {
                        let _ = p.write_data_terminal_ready(dtr);
                    }
                    if let Some(rts) = self.modem.rts {
                        let _ = p.write_request_to_send(rts);
                    }
                    return Some(p);
                }
                Err(e) => {
                    // Say so only when the reason changes, not every 500 ms attempt (and
                    // without listing every port each time).
                    let now = match e {
                        OpenError::NotFound { path } => format!("{path} is gone"),
                        other => other.to_string(),
                    };
                    if now != reason {
                        reason = now;
                        announced = false;
                    }
                }
            }
        }
    }
}

/// Why DTR or RTS could not be set. ENOTTY ("Not a typewriter") is the OS's word for a port
/// without modem lines; it is said in those words, not echoed.
fn no_modem_lines(e: tokio_serial::Error) -> String {
    let text = e.description;
    if text.contains("Not a typewriter") || text.contains("Inappropriate ioctl") {
        "this port has no modem control lines (a pseudo-terminal, or an adapter or bridge without them): DTR and RTS cannot be set on it".into()
    } else {
        format!("the port refused to change the modem line: {text}")
    }
}

fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(5) => "input/output error (adapter unplugged?)".to_string(),
        Some(19) => "no such device (adapter unplugged?)".to_string(),
        _ => e.to_string(),
    }
}
