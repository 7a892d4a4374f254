//! The trace source: starts the tracer helper, reads its [`Wire`] messages on a thread and
//! turns each into a `(StreamKey, TimedEvent)`: bytes the program read (Rx) or wrote (Tx),
//! the settings and modem lines it set, connection up/down per descriptor, its processes
//! and its exit. [`to_monitor`] is the one place that maps stream keys onto the monitor's
//! streams.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::tracer::{self, Target};
use super::wire::Wire;
use crate::clock::Clock;
use crate::event::{
    Baud, Command, ConnectionState, Event, FlowControl, FrameFormat, LineSettings, ModemLines,
    Overrun, ProgramExit, StreamId, TimedEvent, TraceEvent,
};
use crate::source::{SourceHandle, channels};

/// A stream of the traced program: a descriptor of a process and what it is (the path as
/// the program opened it, `tcp HOST:PORT`, `udp HOST:PORT`, `unix PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub pid: u32,
    pub fd: i32,
    pub name: String,
}

/// Why tracing could not start; usage errors exit 2, the rest 3.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Device(String),
}

/// The running source and the slot where the program's exit lands.
pub struct TraceHandle {
    pub handle: SourceHandle,
    pub exit: Arc<Mutex<Option<ProgramExit>>>,
    /// The traced program's pid.
    pub pid: u32,
}

/// Starts the helper on `target` and waits until it traces the program (or refuses).
pub fn spawn(target: Target, clock: Clock) -> Result<TraceHandle, TraceError> {
    let device = |what: &str, e: &dyn std::fmt::Display| TraceError::Device(format!("{what}: {e}"));
    let (wire_r, wire_w) = nix::unistd::pipe().map_err(|e| device("cannot make a pipe", &e))?;
    let (ctl_r, ctl_w) = nix::unistd::pipe().map_err(|e| device("cannot make a pipe", &e))?;
    // Our ends are close-on-exec; the helper inherits only its own two.
    let wire = super::sys::take_fd(wire_r).map_err(|e| device("pipe", &e))?;
    let control = super::sys::take_fd(ctl_w).map_err(|e| device("pipe", &e))?;
    let exe = std::env::current_exe().map_err(|e| device("cannot find hsmon's own binary", &e))?;
    let child = std::process::Command::new(exe)
        .args(tracer::helper_args(wire_w, ctl_r, &target))
        .spawn();
    let _ = nix::unistd::close(wire_w);
    let _ = nix::unistd::close(ctl_r);
    let mut child = child.map_err(|e| device("cannot start the tracer", &e))?;
    let mut lines = BufReader::new(wire);
    let pid = match read_wire(&mut lines) {
        Some(Wire::Started { pid }) => pid,
        Some(Wire::Refused {
            usage: true,
            message,
        }) => return Err(TraceError::Usage(message)),
        Some(Wire::Refused { message, .. }) => return Err(TraceError::Device(message)),
        other => {
            let status = child.wait().ok();
            return Err(TraceError::Device(format!(
                "the tracer ended before the program started ({other:?}, {status:?})"
            )));
        }
    };
    let (etx, erx, ctx, crx) = channels();
    let exit = Arc::new(Mutex::new(None));
    let (done_tx, done_rx) = oneshot::channel();
    let slot = exit.clone();
    let reader_tx = etx.clone();
    std::thread::Builder::new()
        .name("hsmon-trace".into())
        .spawn(move || {
            read_loop(lines, reader_tx, clock, &slot);
            let _ = done_tx.send(());
            // Reap the helper when it ends with the program (it may outlive hsmon).
            let _ = child.try_wait();
        })
        .map_err(|e| device("cannot start the trace reader", &e))?;
    tokio::spawn(commands(crx, etx, control, done_rx, clock));
    let name = match &target {
        Target::Attach { pid } => format!("trace pid {pid}"),
        Target::Launch { program, .. } => format!("trace {}", program.to_string_lossy()),
    };
    Ok(TraceHandle {
        handle: SourceHandle {
            events: erx,
            commands: ctx,
            name,
            // Declared as the program opens them: see `to_monitor`.
            streams: Vec::new(),
        },
        exit,
        pid,
    })
}

fn read_wire(lines: &mut BufReader<File>) -> Option<Wire> {
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Ok(w) = serde_json::from_str(&line) {
            return Some(w);
        }
        tracing::warn!("trace: unreadable message from the helper: {line:?}");
    }
}

/// Until the helper's pipe ends: messages to events, in order. Waits when the monitor is
/// behind (the helper, and so the program, waits too: no byte is dropped).
fn read_loop(
    mut lines: BufReader<File>,
    tx: crate::source::EventTx,
    clock: Clock,
    exit: &Mutex<Option<ProgramExit>>,
) {
    let mut ids = StreamIds::default();
    while let Some(w) = read_wire(&mut lines) {
        let Some((key, event)) = event_of(w) else {
            continue;
        };
        if let Event::Trace(TraceEvent::Exit(e)) = &event {
            if let Ok(mut slot) = exit.lock() {
                *slot = Some(*e);
            }
        }
        let ev = TimedEvent::new(clock.now(), event);
        for e in to_monitor(&mut ids, key, ev) {
            if tx.blocking_send(e).is_err() {
                return;
            }
        }
    }
}

/// The helper's message as an event of a stream (None: of the program as a whole).
pub fn event_of(w: Wire) -> Option<(Option<StreamKey>, Event)> {
    let key = |pid, fd, name| Some(StreamKey { pid, fd, name });
    Some(match w {
        Wire::Open { pid, fd, stream } => {
            (key(pid, fd, stream), Event::Connection(ConnectionState::Up))
        }
        Wire::Close { pid, fd, stream } => (
            key(pid, fd, stream),
            Event::Connection(ConnectionState::Down {
                reason: "the program closed it".to_string(),
            }),
        ),
        Wire::Bytes {
            pid,
            fd,
            stream,
            rx,
            hex,
        } => {
            let bytes = unhex(&hex)?;
            let ev = if rx {
                Event::Rx(bytes)
            } else {
                Event::Tx(bytes)
            };
            (key(pid, fd, stream), ev)
        }
        Wire::Lost {
            pid,
            fd,
            stream,
            bytes,
        } => (
            key(pid, fd, stream),
            Event::Overrun(Overrun {
                dropped_bytes: bytes,
            }),
        ),
        Wire::Settings {
            pid,
            fd,
            stream,
            baud,
            format,
            flow,
            dtr,
            rts,
        } => {
            let settings = LineSettings {
                baud: Baud::new(baud).ok()?,
                format: format.parse::<FrameFormat>().ok()?,
                flow: flow.parse::<FlowControl>().ok()?,
            };
            (
                key(pid, fd, stream),
                Event::LineSettings {
                    settings,
                    modem: ModemLines { dtr, rts },
                },
            )
        }
        Wire::Break { pid, fd, stream } => (key(pid, fd, stream), Event::BreakSent),
        Wire::Flush {
            pid,
            fd,
            stream,
            queue,
        } => (
            key(pid, fd, stream),
            Event::Trace(TraceEvent::Flush { queue }),
        ),
        // Interim: a warning event in the program's terms, until the knowledge base has an
        // entry for a port that did not keep its settings.
        Wire::NotKept {
            pid,
            fd,
            stream,
            asked,
            text,
        } => (
            key(pid, fd, stream),
            Event::CommandFailed {
                command: format!("the program's tcsetattr {asked}"),
                reason: text,
            },
        ),
        Wire::Process { pid, parent, exec } => (
            None,
            Event::Trace(TraceEvent::Process { pid, parent, exec }),
        ),
        Wire::Exit { code, signal } => {
            let e = match (code, signal) {
                (_, Some(s)) => ProgramExit::Signal(s),
                (Some(c), None) => ProgramExit::Code(c),
                (None, None) => return None,
            };
            (None, Event::Trace(TraceEvent::Exit(e)))
        }
        Wire::Detached { pid } => (None, Event::Trace(TraceEvent::Detached { pid })),
        Wire::Started { .. } | Wire::Refused { .. } => return None,
    })
}

/// The wire's lowercase hex back to bytes.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16);
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Some((digit(*h)? * 16 + digit(*l)?) as u8),
            _ => None,
        })
        .collect()
}

/// The session stream of each descriptor the tracer has seen.
#[derive(Debug, Default)]
pub struct StreamIds {
    ids: std::collections::HashMap<StreamKey, StreamId>,
}

/// The one mapping from the tracer's streams to the monitor's: each descriptor of each
/// process (a [`StreamKey`]) is a stream of the session, announced by a `stream` event on it
/// the first time it is seen (the session names the stream after it and gives it a link:
/// the same device or peer as an earlier descriptor joins its link, so a forked child's
/// bytes on the parent's port decode as one conversation). News of the program as a whole
/// (a process, its exit) goes on the main stream.
pub fn to_monitor(ids: &mut StreamIds, key: Option<StreamKey>, ev: TimedEvent) -> Vec<TimedEvent> {
    let Some(key) = key else {
        return vec![ev];
    };
    if let Some(id) = ids.ids.get(&key) {
        return vec![TimedEvent::on(*id, ev.at, ev.event)];
    }
    // Ids 1…u16::MAX: past that many descriptors, the rest share the last one.
    let id = StreamId(u16::try_from(ids.ids.len() + 1).unwrap_or(u16::MAX));
    let marker = TimedEvent::on(
        id,
        ev.at,
        Event::Trace(TraceEvent::Stream {
            name: key.name.clone(),
            pid: key.pid,
            fd: key.fd,
        }),
    );
    ids.ids.insert(key, id);
    vec![marker, TimedEvent::on(id, ev.at, ev.event)]
}

/// The command side: hsmon only watches a traced program, so line commands are refused; a
/// shutdown (or the session ending) closes the control pipe, and the helper lets go.
async fn commands(
    mut crx: mpsc::Receiver<Command>,
    etx: crate::source::EventTx,
    control: File,
    mut done: oneshot::Receiver<()>,
    clock: Clock,
) {
    loop {
        tokio::select! {
            cmd = crx.recv() => match cmd {
                None | Some(Command::Shutdown) => break,
                Some(c) => {
                    let ev = TimedEvent::new(
                        clock.now(),
                        Event::CommandFailed {
                            command: c.describe(),
                            reason: "hsmon trace only watches: the port belongs to the traced program".to_string(),
                        },
                    );
                    let _ = etx.try_send(ev);
                }
            },
            _ = &mut done => break,
        }
    }
    drop(control);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn at(event: Event) -> TimedEvent {
        TimedEvent::new(Duration::ZERO, event)
    }

    #[test]
    fn each_descriptor_is_a_stream_announced_once() {
        let a = StreamKey {
            pid: 1,
            fd: 3,
            name: "/dev/pts/4".into(),
        };
        let b = StreamKey {
            pid: 2,
            fd: 3,
            name: "/dev/pts/4".into(),
        };
        let mut ids = StreamIds::default();
        let first = to_monitor(&mut ids, Some(a.clone()), at(Event::Tx(vec![1])));
        assert_eq!(first.len(), 2, "announced, then the bytes");
        assert!(first.iter().all(|e| e.stream == StreamId(1)));
        let again = to_monitor(&mut ids, Some(a.clone()), at(Event::Rx(vec![2])));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].stream, StreamId(1));
        let out = to_monitor(&mut ids, Some(b), at(Event::Tx(vec![3])));
        assert_eq!(
            out[0].event,
            Event::Trace(TraceEvent::Stream {
                name: "/dev/pts/4".into(),
                pid: 2,
                fd: 3
            })
        );
        assert_eq!(out[0].stream, StreamId(2));
        let exit = at(Event::Trace(TraceEvent::Exit(ProgramExit::Code(3))));
        let out = to_monitor(&mut ids, None, exit);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream, StreamId::MAIN);
    }

    #[test]
    fn wire_messages_become_events() {
        let (k, e) = event_of(Wire::Settings {
            pid: 7,
            fd: 3,
            stream: "/dev/ttyUSB0".into(),
            baud: 57600,
            format: "8E1".into(),
            flow: "none".into(),
            dtr: Some(true),
            rts: None,
        })
        .unwrap();
        assert_eq!(k.unwrap().name, "/dev/ttyUSB0");
        let Event::LineSettings { settings, modem } = e else {
            panic!("{e:?}")
        };
        assert_eq!(settings.to_string(), "57600 8E1 flow none");
        assert_eq!(modem.dtr, Some(true));
        let (_, e) = event_of(Wire::Bytes {
            pid: 7,
            fd: 3,
            stream: "x".into(),
            rx: true,
            hex: "7f79".into(),
        })
        .unwrap();
        assert_eq!(e, Event::Rx(vec![0x7f, 0x79]));
        let (_, e) = event_of(Wire::Exit {
            code: None,
            signal: Some(9),
        })
        .unwrap();
        assert_eq!(e, Event::Trace(TraceEvent::Exit(ProgramExit::Signal(9))));
    }
}
