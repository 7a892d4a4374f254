//! The raw TCP source: a socket as a byte stream (a ser2net raw port, an IEC 60870-5-104
//! station on 2404, a device server), reconnecting by itself like a serial port — plus the
//! `HOST:PORT` parsing and connect errors every network source and probe shares.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::event::{Command, ConnectionState, Event};
use crate::source::{EventSink, SourceHandle, channels};

/// How often a lost connection is tried again (the same pace as a vanished serial port).
pub const RETRY_INTERVAL: Duration = crate::source::serial::RETRY_INTERVAL;

/// How long a connection attempt (name lookup and TCP handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes asked for per read.
const READ_BUFFER: usize = 64 * 1024;

/// A host and a TCP port as the user wrote them: `lab-pi:7000`, `10.0.0.5:2404`, `[::1]:2000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// A name or an address literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

/// A `HOST:PORT` argument that cannot be used. A usage error: the fix is in the command line.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AddressError {
    #[error("'{0}' has no port: write HOST:PORT, e.g. 10.0.0.5:2404 or lab-pi:7000")]
    MissingPort(String),
    #[error("'{given}': the port '{port}' is not a number from 1 to 65535")]
    BadPort { given: String, port: String },
    #[error("'{0}' has no host: write HOST:PORT, e.g. 127.0.0.1:2404")]
    MissingHost(String),
}

impl std::str::FromStr for HostPort {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<HostPort, AddressError> {
        let given = s.trim();
        // [v6]:port, or host:port split at the last colon (a bare v6 address has no port).
        let (host, port) = if let Some(rest) = given.strip_prefix('[') {
            let (h, p) = rest
                .split_once(']')
                .ok_or_else(|| AddressError::MissingPort(given.to_string()))?;
            let p = p
                .strip_prefix(':')
                .ok_or_else(|| AddressError::MissingPort(given.to_string()))?;
            (h, p)
        } else {
            let (h, p) = given
                .rsplit_once(':')
                .ok_or_else(|| AddressError::MissingPort(given.to_string()))?;
            if h.contains(':') {
                // An IPv6 literal needs brackets to carry a port.
                return Err(AddressError::MissingPort(given.to_string()));
            }
            (h, p)
        };
        if host.is_empty() {
            return Err(AddressError::MissingHost(given.to_string()));
        }
        let port = p_number(port).ok_or_else(|| AddressError::BadPort {
            given: given.to_string(),
            port: port.to_string(),
        })?;
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

fn p_number(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|&n| n > 0)
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a TCP connection could not be made. Each says the cause and the fix.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConnectError {
    #[error("host not found: {host} ({detail}). Check the name for typos, or give the IP address")]
    HostNotFound { host: String, detail: String },
    #[error(
        "connection refused by {target} ({addr}): nothing listens on that port. Check the port number and that the server (ser2net, the station's 104 service, the device server) is running"
    )]
    Refused { target: String, addr: SocketAddr },
    #[error(
        "no answer from {target} within {secs} s: the host is down or a firewall drops the connection. Check the address and the route (ping the host)"
    )]
    TimedOut { target: String, secs: u64 },
    #[error("{target} cannot be reached: {detail}. Check the network cable, address and route")]
    Unreachable { target: String, detail: String },
    #[error("cannot connect to {target}: {detail}")]
    Other { target: String, detail: String },
}

impl ConnectError {
    /// A short form for the retry notices ("connection refused by 127.0.0.1:7000").
    pub fn short(&self) -> String {
        match self {
            ConnectError::HostNotFound { host, .. } => format!("host not found: {host}"),
            ConnectError::Refused { target, .. } => format!("connection refused by {target}"),
            ConnectError::TimedOut { target, .. } => format!("no answer from {target}"),
            ConnectError::Unreachable { target, detail } => format!("{target}: {detail}"),
            ConnectError::Other { target, detail } => format!("{target}: {detail}"),
        }
    }
}

/// Sorts one failed attempt into a [`ConnectError`].
fn classify(target: &HostPort, addr: SocketAddr, e: &io::Error) -> ConnectError {
    let target = target.to_string();
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused { target, addr },
        io::ErrorKind::TimedOut => ConnectError::TimedOut {
            target,
            secs: CONNECT_TIMEOUT.as_secs(),
        },
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ConnectError::Unreachable {
                target,
                detail: e.to_string(),
            }
        }
        _ => ConnectError::Other {
            target,
            detail: e.to_string(),
        },
    }
}

/// Resolves `target` and connects to the first address that answers, within `timeout`
/// overall. Nagle is off: small requests (a 6-byte 104 frame, a keystroke) go out at once.
pub async fn connect(target: &HostPort, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| ConnectError::HostNotFound {
                host: target.host.clone(),
                detail: lookup_detail(&e),
            })?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(classify(target, addr, &e)),
            }
        }
        Err(last.unwrap_or_else(|| ConnectError::HostNotFound {
            host: target.host.clone(),
            detail: "the name has no address".to_string(),
        }))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::TimedOut {
            target: target.to_string(),
            secs: timeout.as_secs().max(1),
        }),
    }
}

/// getaddrinfo's words without Rust's "failed to lookup address information: " prefix.
fn lookup_detail(e: &io::Error) -> String {
    let s = e.to_string();
    s.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&s)
        .to_string()
}

/// Why an open connection ended, in words for the Down notice.
pub fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset by the peer".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::BrokenPipe => "the peer closed the connection".to_string(),
        io::ErrorKind::TimedOut => "the connection timed out".to_string(),
        _ => e.to_string(),
    }
}

/// The notice for a peer that closed its end.
pub const PEER_CLOSED: &str = "the peer closed the connection";

/// Connects and starts the source task. The first connection fails fast with a
/// [`ConnectError`]; after that, a lost connection is retried with a [`Backoff`].
pub async fn spawn(target: HostPort, clock: Clock) -> Result<SourceHandle, ConnectError> {
    let stream = connect(&target, CONNECT_TIMEOUT).await?;
    let (etx, erx, ctx, crx) = channels();
    let name = format!("tcp {target}");
    tokio::spawn(async move {
        let mut task = TcpTask {
            target,
            sink: EventSink::new(etx, clock),
            commands: crx,
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

/// How a connected stretch ended.
pub(crate) enum Ended {
    Shutdown,
    Lost(String),
}

/// A source over a TCP connection that comes back by itself: raw TCP, RFC 2217.
pub(crate) trait Reconnecting {
    /// What the log calls it ("tcp", "rfc2217").
    const KIND: &'static str;

    /// The target, the sink and the command channel, borrowed together for [`reconnect`].
    fn parts(&mut self) -> (&HostPort, &mut EventSink, &mut mpsc::Receiver<Command>);

    /// Serves one connection until it is lost or the session ends.
    async fn connected(&mut self, stream: &mut TcpStream) -> Ended;
}

/// The wait before each reconnect attempt: [`RETRY_INTERVAL`] (500 ms) at first, doubling
/// after each attempt that failed or each connection that did not last, up to
/// [`RETRY_MAX`]; back to the start after a connection that lasted [`RETRY_STABLE`]. A peer
/// that accepts and closes at once is then tried about once every 4 s, not 300 times a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    next: Duration,
}

/// Longest wait between reconnect attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(4);
/// A connection up this long resets the back-off.
pub const RETRY_STABLE: Duration = Duration::from_secs(5);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            next: RETRY_INTERVAL,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long (up to the cap).
    pub(crate) fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(RETRY_MAX);
        now
    }

    /// A connection ended after being up for `lasted`: one that lasted starts over.
    pub(crate) fn connection_lasted(&mut self, lasted: Duration) {
        if lasted >= RETRY_STABLE {
            *self = Backoff::new();
        }
    }
}

/// Runs a source's connections one after another: "up", serve, and after a loss "down" and
/// [`reconnect`] with a [`Backoff`], until the session ends (then the stream is shut and the
/// sink drained).
pub(crate) async fn run_reconnecting<T: Reconnecting>(task: &mut T, mut stream: TcpStream) {
    let mut backoff = Backoff::new();
    loop {
        let (_, sink, _) = task.parts();
        if sink.emit(Event::Connection(ConnectionState::Up)).is_err() {
            return;
        }
        let up = tokio::time::Instant::now();
        match task.connected(&mut stream).await {
            Ended::Shutdown => {
                let _ = stream.shutdown().await;
                let (_, sink, _) = task.parts();
                let _ = sink.drain().await;
                return;
            }
            Ended::Lost(reason) => {
                backoff.connection_lasted(up.elapsed());
                let (target, sink, commands) = task.parts();
                tracing::info!(target = %target, %reason, kind = T::KIND, "connection lost");
                let down = Event::Connection(ConnectionState::Down {
                    reason: reason.clone(),
                });
                if sink.emit(down).is_err() {
                    return;
                }
                match reconnect(target, sink, commands, reason, &mut backoff).await {
                    Some(s) => stream = s,
                    None => return,
                }
            }
        }
    }
}

struct TcpTask {
    target: HostPort,
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
}

impl Reconnecting for TcpTask {
    const KIND: &'static str = "tcp";

    fn parts(&mut self) -> (&HostPort, &mut EventSink, &mut mpsc::Receiver<Command>) {
        (&self.target, &mut self.sink, &mut self.commands)
    }

    async fn connected(&mut self, stream: &mut TcpStream) -> Ended {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let flush_soon = self.sink.has_pending();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => return Ended::Shutdown,
                    Some(Command::Transmit(bytes)) => {
                        if let Err(e) = stream.write_all(&bytes).await {
                            let reason = describe_io(&e);
                            let _ = self.sink.emit(Event::CommandFailed {
                                command: Command::Transmit(bytes).describe(),
                                reason: format!("not sent: {reason}"),
                            });
                            return Ended::Lost(reason);
                        }
                        if self.sink.emit(Event::Tx(bytes)).is_err() {
                            return Ended::Shutdown;
                        }
                    }
                    Some(other) => {
                        let refused = Event::CommandFailed {
                            command: other.describe(),
                            reason: NO_LINE_SETTINGS.to_string(),
                        };
                        if self.sink.emit(refused).is_err() {
                            return Ended::Shutdown;
                        }
                    }
                },
                r = stream.read(&mut buf) => match r {
                    Ok(0) => return Ended::Lost(PEER_CLOSED.to_string()),
                    Ok(n) => {
                        if self.sink.emit(Event::Rx(buf[..n].to_vec())).is_err() {
                            return Ended::Shutdown;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Ended::Lost(describe_io(&e)),
                },
                _ = tokio::time::sleep(Duration::from_millis(2)), if flush_soon => {
                    if self.sink.flush().is_err() {
                        return Ended::Shutdown;
                    }
                }
            }
        }
    }
}

/// What a raw TCP source answers to a line-settings command.
const NO_LINE_SETTINGS: &str = "a raw TCP connection has no serial line to configure: for a remote port with baud control, use `hsmon serial rfc2217://HOST:PORT` (ser2net's telnet(rfc2217) accepter)";

/// Tries to connect again, waiting as `backoff` says before each attempt, until it works or
/// the session ends (None). Commands meanwhile are refused with a message; the retry notice is repeated
/// only when the reason changes (refused → host not found), not every attempt.
pub(crate) async fn reconnect(
    target: &HostPort,
    sink: &mut EventSink,
    commands: &mut mpsc::Receiver<Command>,
    mut reason: String,
    backoff: &mut Backoff,
) -> Option<TcpStream> {
    let mut due = tokio::time::Instant::now() + backoff.step();
    let mut announced = false;
    loop {
        if !announced {
            let retrying = Event::Connection(ConnectionState::Retrying {
                reason: reason.clone(),
            });
            sink.emit(retrying).ok()?;
            announced = true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = tokio::time::sleep(Duration::from_millis(2)), if sink.has_pending() => {
                sink.flush().ok()?;
                continue;
            }
            cmd = commands.recv() => {
                match cmd {
                    None | Some(Command::Shutdown) => return None,
                    Some(c) => {
                        let refused = Event::CommandFailed {
                            command: c.describe(),
                            reason: format!("{target} is disconnected; waiting for it to return"),
                        };
                        sink.emit(refused).ok()?;
                    }
                }
                continue;
            }
        }
        // Each attempt is short, so commands and shutdown are never kept waiting long.
        match connect(target, RETRY_INTERVAL.max(Duration::from_secs(2))).await {
            Ok(s) => return Some(s),
            Err(e) => {
                due = tokio::time::Instant::now() + backoff.step();
                let now = e.short();
                if now != reason {
                    reason = now;
                    announced = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_starts_over_after_a_lasting_connection() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..6).map(|_| b.step().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000]);
        b.connection_lasted(Duration::from_millis(100));
        assert_eq!(b.step(), RETRY_MAX, "a short connection does not reset it");
        b.connection_lasted(RETRY_STABLE);
        assert_eq!(b.step(), RETRY_INTERVAL);
    }

    #[test]
    fn host_port_parses_names_v4_and_bracketed_v6() {
        let hp: HostPort = "lab-pi:7000".parse().unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("lab-pi", 7000));
        let hp: HostPort = "10.0.0.5:2404".parse().unwrap();
        assert_eq!(hp.to_string(), "10.0.0.5:2404");
        let hp: HostPort = "[::1]:2000".parse().unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("::1", 2000));
        assert_eq!(hp.to_string(), "[::1]:2000");
    }

    #[test]
    fn host_port_rejects_what_cannot_connect() {
        assert_eq!(
            "lab-pi".parse::<HostPort>(),
            Err(AddressError::MissingPort("lab-pi".into()))
        );
        assert!(matches!(
            "lab-pi:http".parse::<HostPort>(),
            Err(AddressError::BadPort { .. })
        ));
        assert!(matches!(
            "lab-pi:0".parse::<HostPort>(),
            Err(AddressError::BadPort { .. })
        ));
        assert!(matches!(
            "lab-pi:65536".parse::<HostPort>(),
            Err(AddressError::BadPort { .. })
        ));
        assert_eq!(
            ":2404".parse::<HostPort>(),
            Err(AddressError::MissingHost(":2404".into()))
        );
        assert!(matches!(
            "::1".parse::<HostPort>(),
            Err(AddressError::MissingPort(_))
        ));
        assert!(matches!(
            "[::1]".parse::<HostPort>(),
            Err(AddressError::MissingPort(_))
        ));
    }

    #[test]
    fn io_errors_sort_into_causes() {
        let t: HostPort = "h:1".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            classify(&t, a, &refused),
            ConnectError::Refused { .. }
        ));
        let msg = classify(&t, a, &refused).to_string();
        assert!(msg.contains("nothing listens"), "{msg}");
        let timed = io::Error::from(io::ErrorKind::TimedOut);
        assert!(matches!(
            classify(&t, a, &timed),
            ConnectError::TimedOut { .. }
        ));
        let unreach = io::Error::from(io::ErrorKind::NetworkUnreachable);
        assert!(matches!(
            classify(&t, a, &unreach),
            ConnectError::Unreachable { .. }
        ));
    }
}
