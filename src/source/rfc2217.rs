//! The RFC 2217 source: a serial port on another machine behind a telnet COM-PORT-OPTION
//! server (ser2net's `telnet(rfc2217)` accepter), opened as `rfc2217://HOST:PORT`. Bytes flow
//! both ways, the baud/format/flow/DTR/RTS/break commands reach the remote port, and what its
//! server confirms becomes the `LineSettings` event. Reconnects like a local port.
//!
//! The protocol lives in two pure modules: [`telnet`] (RFC 854/855: escaping, negotiation,
//! sub-negotiation framing) and [`comport`] (RFC 2217 messages and acknowledgements). This
//! file is the I/O around them: one task, one socket, never waiting on an answer.

pub mod comport;
pub mod telnet;

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::event::{Command, Event, LineSettings, Timestamp};
use crate::source::tcp::{
    AddressError, CONNECT_TIMEOUT, ConnectError, Ended, HostPort, PEER_CLOSED, Reconnecting,
    connect, describe_io, run_reconnecting,
};
use crate::source::{EventSink, SourceHandle, channels};
use comport::{ComPort, Reply};
use telnet::Telnet;

/// The URL scheme that selects this source in `hsmon serial`.
pub const SCHEME: &str = "rfc2217://";

/// How long the server has to agree to COM-PORT-OPTION before hsmon says it is not an
/// RFC 2217 server (data still flows: it may be a plain telnet port).
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes asked for per read.
const READ_BUFFER: usize = 64 * 1024;

/// The remote port named by a `serial` argument, if it is an `rfc2217://HOST:PORT` URL
/// (`None`: a local path). A trailing `/` or pyserial-style `/option` parts are ignored.
pub fn target_of(port: &Path) -> Option<Result<HostPort, AddressError>> {
    let s = port.to_str()?;
    let rest = s
        .get(..SCHEME.len())
        .filter(|p| p.eq_ignore_ascii_case(SCHEME))
        .map(|_| &s[SCHEME.len()..])?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Some(authority.parse())
}

/// Connects and starts the source task; the remote port is set to `settings` once the server
/// agrees to COM-PORT-OPTION. The first connection fails fast with a [`ConnectError`].
pub async fn spawn(
    target: HostPort,
    settings: LineSettings,
    clock: Clock,
) -> Result<SourceHandle, ConnectError> {
    let stream = connect(&target, CONNECT_TIMEOUT).await?;
    let (etx, erx, ctx, crx) = channels();
    let name = format!("{SCHEME}{target}");
    tokio::spawn(async move {
        let mut task = Task {
            target,
            sink: EventSink::new(etx, clock),
            commands: crx,
            port: ComPort::new(settings),
            clock,
            not_rfc2217_said: false,
        };
        run_reconnecting(&mut task, stream).await;
    });
    Ok(SourceHandle {
        events: erx,
        commands: ctx,
        name,
        streams: Vec::new(),
    })
}

struct Task {
    target: HostPort,
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
    /// Survives reconnects: the settings to restore and what the server proved it ignores.
    port: ComPort,
    clock: Clock,
    not_rfc2217_said: bool,
}

/// The per-connection state around the socket.
struct Link {
    telnet: Telnet,
    /// COM-PORT-OPTION agreed and the port set up.
    opened: bool,
    negotiation_deadline: Timestamp,
    /// When the running break must end.
    break_until: Option<Timestamp>,
}

impl Reconnecting for Task {
    const KIND: &'static str = "rfc2217";

    fn parts(&mut self) -> (&HostPort, &mut EventSink, &mut mpsc::Receiver<Command>) {
        (&self.target, &mut self.sink, &mut self.commands)
    }

    async fn connected(&mut self, stream: &mut TcpStream) -> Ended {
        let mut link = Link {
            telnet: Telnet::new(),
            opened: false,
            negotiation_deadline: self.clock.now() + NEGOTIATION_TIMEOUT,
            break_until: None,
        };
        let hello = link.telnet.start();
        if let Err(e) = stream.write_all(&hello).await {
            return Ended::Lost(describe_io(&e));
        }
        let mut buf = vec![0u8; READ_BUFFER];
        let mut data = Vec::new();
        let mut subs = Vec::new();
        loop {
            let flush_soon = self.sink.has_pending();
            let due = self.next_due(&link);
            let sleep_for = due.map(|d| d.saturating_sub(self.clock.now()));
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { return Ended::Shutdown };
                    if let Some(end) = self.obey(stream, &mut link, cmd).await {
                        return end;
                    }
                }
                r = stream.read(&mut buf) => {
                    let n = match r {
                        Ok(0) => return Ended::Lost(PEER_CLOSED.to_string()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Ended::Lost(describe_io(&e)),
                    };
                    data.clear();
                    subs.clear();
                    link.telnet.receive(&buf[..n], &mut data, &mut subs);
                    if !data.is_empty() && self.sink.emit(Event::Rx(data.clone())).is_err() {
                        return Ended::Shutdown;
                    }
                    let mut events = Vec::new();
                    for sub in &subs {
                        match Reply::parse(sub) {
                            Ok(reply) => {
                                if let Reply::ModemState(bits) = reply {
                                    tracing::debug!(bits = format!("{bits:02X}"), "modem state");
                                }
                                self.port.on_reply(&reply, &mut events);
                            }
                            Err(e) => tracing::debug!(%e, "sub-negotiation ignored"),
                        }
                    }
                    let mut out = link.telnet.take_output();
                    if !link.opened && link.telnet.com_port_ready() {
                        link.opened = true;
                        out.extend(self.port.open(self.clock.now()));
                    }
                    if !out.is_empty() {
                        if let Err(e) = stream.write_all(&out).await {
                            return Ended::Lost(describe_io(&e));
                        }
                    }
                    if self.emit_all(events).is_err() {
                        return Ended::Shutdown;
                    }
                }
                _ = tokio::time::sleep(sleep_for.unwrap_or(Duration::ZERO)), if sleep_for.is_some() => {
                    if let Some(end) = self.on_timer(stream, &mut link).await {
                        return end;
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
}

impl Task {
    /// The earliest of: an answer's deadline, the negotiation deadline, the end of a break.
    fn next_due(&self, link: &Link) -> Option<Timestamp> {
        let negotiation =
            (!link.opened && !self.not_rfc2217_said).then_some(link.negotiation_deadline);
        [self.port.next_deadline(), negotiation, link.break_until]
            .into_iter()
            .flatten()
            .min()
    }

    async fn on_timer(&mut self, stream: &mut TcpStream, link: &mut Link) -> Option<Ended> {
        let now = self.clock.now();
        let mut events = Vec::new();
        self.port.poll(now, &mut events);
        if !link.opened && !self.not_rfc2217_said && now >= link.negotiation_deadline {
            self.not_rfc2217_said = true;
            events.push(Event::CommandFailed {
                command: "negotiate COM-PORT-OPTION".to_string(),
                reason: format!(
                    "{} did not agree to RFC 2217 within {} s: it is likely a plain telnet or raw TCP port (ser2net needs `accepter: telnet(rfc2217),...`); bytes still flow, but the line cannot be set — for a raw port use `hsmon tcp {}`",
                    self.target,
                    NEGOTIATION_TIMEOUT.as_secs(),
                    self.target
                ),
            });
        }
        if link.break_until.is_some_and(|t| t <= now) {
            link.break_until = None;
            if let Err(e) = stream.write_all(&ComPort::break_off()).await {
                return Some(Ended::Lost(describe_io(&e)));
            }
        }
        self.emit_all(events).err().map(|_| Ended::Shutdown)
    }

    async fn obey(
        &mut self,
        stream: &mut TcpStream,
        link: &mut Link,
        cmd: Command,
    ) -> Option<Ended> {
        match cmd {
            Command::Shutdown => Some(Ended::Shutdown),
            Command::Transmit(bytes) => {
                let mut wire = Vec::with_capacity(bytes.len() + 8);
                link.telnet.encode_data(&bytes, &mut wire);
                if let Err(e) = stream.write_all(&wire).await {
                    let reason = describe_io(&e);
                    let _ = self.sink.emit(Event::CommandFailed {
                        command: Command::Transmit(bytes).describe(),
                        reason: format!("not sent: {reason}"),
                    });
                    return Some(Ended::Lost(reason));
                }
                self.sink
                    .emit(Event::Tx(bytes))
                    .err()
                    .map(|_| Ended::Shutdown)
            }
            other => {
                let now = self.clock.now();
                let result = if link.opened {
                    self.port.command(&other, now)
                } else {
                    Err("the server has not agreed to COM-PORT-OPTION (RFC 2217), so the remote line cannot be set".to_string())
                };
                match result {
                    Ok(bytes) => {
                        if let Command::SendBreak(d) = other {
                            link.break_until = Some(now + d);
                        }
                        if let Err(e) = stream.write_all(&bytes).await {
                            return Some(Ended::Lost(describe_io(&e)));
                        }
                        None
                    }
                    Err(reason) => self
                        .sink
                        .emit(Event::CommandFailed {
                            command: other.describe(),
                            reason,
                        })
                        .err()
                        .map(|_| Ended::Shutdown),
                }
            }
        }
    }

    fn emit_all(&mut self, events: Vec<Event>) -> Result<(), crate::source::Closed> {
        for e in events {
            self.sink.emit(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_select_this_source() {
        let t = target_of(Path::new("rfc2217://lab-pi:7000"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_string(), "lab-pi:7000");
        let t = target_of(Path::new("RFC2217://127.0.0.1:2000/ign_set_control"))
            .unwrap()
            .unwrap();
        assert_eq!(t.port, 2000);
        assert!(target_of(Path::new("/dev/ttyUSB0")).is_none());
        assert!(target_of(Path::new("rfc2217://lab-pi")).unwrap().is_err());
    }
}
