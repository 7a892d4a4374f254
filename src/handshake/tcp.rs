//! The TCP source a handshake runs over (IEC 60870-5-104 on 2404, a ser2net raw port).
//!
//! This is the one boundary between the handshake and a TCP transport: [`spawn`] gives a
//! [`SourceHandle`] like every other source. Until the general `source::tcp` (with reconnects
//! and richer connect errors) is in this tree, a minimal socket task lives here; the hookup is
//! then one line in [`spawn`]: `crate::source::tcp::spawn(addr.parse()?, clock).await`.
//! A handshake needs no reconnect: a peer that closes has answered, and the run ends.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clock::Clock;
use crate::event::{Command, ConnectionState, Event};
use crate::source::{EventSink, SourceHandle, channels};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the socket could not be opened. Each says the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcpError {
    #[error("'{0}' is not HOST:PORT: write e.g. 127.0.0.1:2404")]
    BadAddress(String),
    #[error(
        "connection refused by {0}: nothing listens on that port. Check the port and that the server runs"
    )]
    Refused(String),
    #[error(
        "no answer from {0} within {secs} s: the host is down or a firewall drops the connection",
        secs = CONNECT_TIMEOUT.as_secs()
    )]
    TimedOut(String),
    #[error("cannot connect to {addr}: {reason}")]
    Other { addr: String, reason: String },
}

/// Connects to `addr` (`HOST:PORT`) and starts the socket task.
pub async fn spawn(addr: &str, clock: Clock) -> Result<SourceHandle, TcpError> {
    if addr
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(TcpError::BadAddress(addr.to_string()));
    }
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(TcpError::TimedOut(addr.to_string())),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(TcpError::Refused(addr.to_string()));
        }
        Ok(Err(e)) => {
            return Err(TcpError::Other {
                addr: addr.to_string(),
                reason: e.to_string(),
            });
        }
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (etx, erx, ctx, mut crx) = channels();
    let name = format!("tcp {addr}");
    tokio::spawn(async move {
        let mut sink = EventSink::new(etx, clock);
        let mut stream = stream;
        if sink.emit(Event::Connection(ConnectionState::Up)).is_err() {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut open = true;
        loop {
            tokio::select! {
                cmd = crx.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(Command::Transmit(bytes)) if open => {
                        let ev = match stream.write_all(&bytes).await {
                            Ok(()) => Event::Tx(bytes),
                            Err(e) => Event::CommandFailed {
                                command: Command::Transmit(bytes).describe(),
                                reason: format!("not sent: {e}"),
                            },
                        };
                        if sink.emit(ev).is_err() {
                            break;
                        }
                    }
                    Some(other) => {
                        let reason = if open {
                            "a TCP socket has no line settings, modem lines or card"
                        } else {
                            "the connection is closed"
                        };
                        let ev = Event::CommandFailed { command: other.describe(), reason: reason.to_string() };
                        if sink.emit(ev).is_err() {
                            break;
                        }
                    }
                },
                r = stream.read(&mut buf), if open => {
                    let ev = match r {
                        Ok(0) => {
                            open = false;
                            Event::Connection(ConnectionState::Down { reason: "closed by the peer".to_string() })
                        }
                        Ok(n) => Event::Rx(buf[..n].to_vec()),
                        Err(e) => {
                            open = false;
                            Event::Connection(ConnectionState::Down { reason: e.to_string() })
                        }
                    };
                    if sink.emit(ev).is_err() {
                        break;
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(2)), if sink.has_pending() => {
                    if sink.flush().is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.drain().await;
    });
    Ok(SourceHandle {
        events: erx,
        commands: ctx,
        name,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test]
    async fn sends_receives_and_reports_the_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 6];
            s.read_exact(&mut b).unwrap();
            s.write_all(&[0x68, 0x04, 0x0B, 0, 0, 0]).unwrap();
            b
        });
        let mut h = spawn(&addr, Clock::start()).await.unwrap();
        assert_eq!(
            h.events.recv().await.unwrap().event,
            Event::Connection(ConnectionState::Up)
        );
        h.commands
            .send(Command::Transmit(vec![0x68, 0x04, 0x07, 0, 0, 0]))
            .await
            .unwrap();
        assert_eq!(
            h.events.recv().await.unwrap().event,
            Event::Tx(vec![0x68, 0x04, 0x07, 0, 0, 0])
        );
        assert_eq!(server.join().unwrap(), [0x68, 0x04, 0x07, 0, 0, 0]);
        let mut rx = Vec::new();
        loop {
            match h.events.recv().await.unwrap().event {
                Event::Rx(b) => rx.extend(b),
                Event::Connection(ConnectionState::Down { reason }) => {
                    assert_eq!(reason, "closed by the peer");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rx, vec![0x68, 0x04, 0x0B, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_bad_address_said() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert_eq!(
            spawn(&addr, Clock::start()).await.err(),
            Some(TcpError::Refused(addr.clone()))
        );
        assert!(matches!(
            spawn("localhost", Clock::start()).await.err(),
            Some(TcpError::BadAddress(_))
        ));
    }
}
