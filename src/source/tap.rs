//! The two-port tap: both directions of one UART link, each wired (a Y-cable) to the RX of
//! its own adapter, merged into one session in time order. Port A hears the host (master):
//! its bytes become `Tx`, the request direction; port B hears the device: its bytes become
//! `Rx`, the answers — so the decoders see one conversation. One setting command applies to
//! both ports, and each port's acknowledgement shows.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::event::{
    Command, ConnectionState, Direction, Event, LineSettings, StreamDecl, StreamId, StreamKind,
    TimedEvent, Timestamp,
};
use crate::session::DirectionLabels;
use crate::source::serial::{self, OpenError};
use crate::source::{EventSink, SourceHandle, channels};

/// How long an event is held so that one from the other port, read a little earlier but
/// delivered a little later, can still go before it. Two serial tasks stamp their reads
/// independently; a few milliseconds of scheduling separate them at most.
pub const REORDER_HOLD: Duration = Duration::from_millis(20);

/// Why a tap could not start.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error(
        "PORT_A and PORT_B are the same port ({0}): a tap needs one adapter per direction of the link"
    )]
    SamePort(String),
    #[error("{label} port: {source}")]
    Open {
        label: String,
        #[source]
        source: OpenError,
    },
}

/// The two ports of a tap, with the name of whoever sends on each.
#[derive(Debug, Clone)]
pub struct TapPorts {
    /// Hears the host (master): its bytes are the `Tx` direction.
    pub a: PathBuf,
    /// Hears the device: its bytes are the `Rx` direction.
    pub b: PathBuf,
    pub labels: DirectionLabels,
}

/// Opens both ports and starts the merging task. Both must open: a tap with one side is
/// a plain monitor, and saying so beats showing half a conversation.
pub fn spawn(
    ports: TapPorts,
    settings: LineSettings,
    clock: Clock,
) -> Result<SourceHandle, TapError> {
    let same = match (
        std::fs::canonicalize(&ports.a),
        std::fs::canonicalize(&ports.b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => ports.a == ports.b,
    };
    if same {
        return Err(TapError::SamePort(ports.a.display().to_string()));
    }
    let open = |path: &PathBuf, label: &str| {
        serial::spawn(path.clone(), settings, clock).map_err(|source| TapError::Open {
            label: label.to_string(),
            source,
        })
    };
    let a = open(&ports.a, &ports.labels.tx)?;
    let b = open(&ports.b, &ports.labels.rx)?;
    let (etx, erx, ctx, crx) = channels();
    // Two streams of one link: A's bytes are the requests, B's the answers.
    let streams = [
        (Port::A, &ports.a, Direction::Tx),
        (Port::B, &ports.b, Direction::Rx),
    ]
    .map(|(port, path, direction)| StreamDecl {
        id: port.stream(),
        label: path.display().to_string(),
        kind: StreamKind::Serial,
        link: 0,
        direction: Some(direction),
    })
    .to_vec();
    let name = format!(
        "tap {} {} → {} {}",
        ports.labels.tx,
        ports.a.display(),
        ports.labels.rx,
        ports.b.display()
    );
    tokio::spawn(async move {
        let mut m = Merge {
            sides: [
                Side::new(a, &ports.labels.tx),
                Side::new(b, &ports.labels.rx),
            ],
            sink: EventSink::new(etx, clock),
            commands: crx,
            clock,
            reorder: Reorder::new(REORDER_HOLD),
            merged: MergedState::default(),
        };
        m.run().await;
    });
    Ok(SourceHandle {
        events: erx,
        commands: ctx,
        name,
        streams,
    })
}

/// Events held back for [`REORDER_HOLD`] and released in timestamp order.
#[derive(Debug)]
pub struct Reorder {
    held: VecDeque<TimedEvent>,
    hold: Duration,
}

impl Reorder {
    pub fn new(hold: Duration) -> Reorder {
        Reorder {
            held: VecDeque::new(),
            hold,
        }
    }

    /// Takes an event in; equal timestamps keep their arrival order.
    pub fn push(&mut self, ev: TimedEvent) {
        let i = self.held.partition_point(|h| h.at <= ev.at);
        self.held.insert(i, ev);
    }

    /// The oldest event, once it has been held long enough at `now`.
    pub fn pop_ready(&mut self, now: Timestamp) -> Option<TimedEvent> {
        let due = self.held.front()?.at + self.hold;
        if due <= now {
            self.held.pop_front()
        } else {
            None
        }
    }

    /// When the oldest held event is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.held.front().map(|h| h.at + self.hold)
    }

    /// Everything held, oldest first (at shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = TimedEvent> + '_ {
        self.held.drain(..)
    }
}

/// Which port an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    A,
    B,
}

impl Port {
    /// The session stream of the port: A is the main stream (the request direction), B the
    /// second. Every event a tap emits carries the stream of the port it came from.
    pub fn stream(self) -> StreamId {
        match self {
            Port::A => StreamId::MAIN,
            Port::B => StreamId(1),
        }
    }
}

/// What the merged stream last said, per port and together.
#[derive(Debug, Default)]
pub struct MergedState {
    up: [bool; 2],
    announced_up: bool,
    settings: [Option<LineSettings>; 2],
    mismatch_said: Option<(LineSettings, LineSettings)>,
    /// When each port was asked for a new setting it has not answered yet: until both have,
    /// their settings differ only because one confirmed first (no warning then).
    awaiting: [Option<Timestamp>; 2],
}

impl MergedState {
    /// A settings command went at `at` to the ports marked `sent`: each will confirm for itself.
    pub fn settings_commanded(&mut self, sent: [bool; 2], at: Timestamp) {
        self.awaiting = sent.map(|s| s.then_some(at));
    }

    /// A port's settings report or refusal stamped `at` answers the pending command only if
    /// the port sent it after the command went out. One stamped earlier (the settings a port
    /// reports when it opens, still on its way through the merge when the command went out)
    /// is older news: taking it for the answer ended the wait early, and the port's real
    /// answer, landing after the other port's, then read as a difference.
    fn answered(&mut self, i: usize, at: Timestamp) {
        if let Some(slot) = self.awaiting.get_mut(i) {
            if slot.is_some_and(|sent| at >= sent) {
                *slot = None;
            }
        }
    }

    /// Turns one port's event into what the merged session sees. Pure, so the merging rules
    /// are tested without ports: A's bytes become `Tx`, B's `Rx`; `Up` only once both are up;
    /// a loss, a refused command and a settings difference name the port. `at` is when the
    /// port stamped the event.
    pub fn translate(
        &mut self,
        port: Port,
        at: Timestamp,
        labels: [&str; 2],
        ev: Event,
        out: &mut Vec<Event>,
    ) {
        let i = port as usize;
        let label = labels[i];
        match ev {
            Event::Rx(bytes) => out.push(match port {
                Port::A => Event::Tx(bytes),
                Port::B => Event::Rx(bytes),
            }),
            // A tap never transmits; a serial source reports Tx only for what it sent.
            Event::Tx(_) => {}
            Event::Connection(ConnectionState::Up) => {
                self.up[i] = true;
                if self.up.iter().all(|&u| u) && !self.announced_up {
                    self.announced_up = true;
                    out.push(Event::Connection(ConnectionState::Up));
                }
            }
            Event::Connection(ConnectionState::Down { reason }) => {
                self.up[i] = false;
                self.announced_up = false;
                out.push(Event::Connection(ConnectionState::Down {
                    reason: format!("{label}: {reason}"),
                }));
            }
            Event::Connection(ConnectionState::Retrying { reason }) => {
                out.push(Event::Connection(ConnectionState::Retrying {
                    reason: format!("{label}: {reason}"),
                }));
            }
            Event::LineSettings { settings, modem } => {
                self.settings[i] = Some(settings);
                self.answered(i, at);
                out.push(Event::LineSettings { settings, modem });
                if self.awaiting.iter().any(Option::is_some) {
                    return;
                }
                if let [Some(a), Some(b)] = self.settings {
                    if a != b && self.mismatch_said != Some((a, b)) {
                        self.mismatch_said = Some((a, b));
                        out.push(Event::CommandFailed {
                            command: "tap settings".to_string(),
                            reason: format!(
                                "{} is at {a} but {} at {b}: the two directions are read at different settings",
                                labels[0], labels[1]
                            ),
                        });
                    } else if a == b {
                        self.mismatch_said = None;
                    }
                }
            }
            // Each port's own counters, on its stream: the session adds them up for the link.
            Event::LineErrors(counts) => out.push(Event::LineErrors(counts)),
            Event::CommandFailed { command, reason } => {
                // A refused setting is that port's answer: it stays where it was.
                self.answered(i, at);
                out.push(Event::CommandFailed {
                    command: format!("{label}: {command}"),
                    reason,
                })
            }
            other => out.push(other),
        }
    }
}

/// What a tap answers to a request to send.
pub const LISTEN_ONLY: &str = "a tap only listens: each adapter's RX is wired to one direction of the link. Send from the master itself, or monitor a single port with `hsmon serial`";

struct Side {
    handle: SourceHandle,
    label: String,
    /// The port's task has ended (after a shutdown).
    done: bool,
}

impl Side {
    fn new(handle: SourceHandle, label: &str) -> Side {
        // Each port's events are recorded once, by the tap's own sink.
        handle.events.tee().attach(None);
        Side {
            handle,
            label: label.to_string(),
            done: false,
        }
    }
}

struct Merge {
    sides: [Side; 2],
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
    clock: Clock,
    reorder: Reorder,
    merged: MergedState,
}

impl Merge {
    async fn run(&mut self) {
        let mut shutting_down = false;
        loop {
            if self.sides.iter().all(|s| s.done) {
                break;
            }
            let due = self
                .reorder
                .next_due()
                .map(|d| d.saturating_sub(self.clock.now()));
            let flush_soon = self.sink.has_pending();
            let [sa, sb] = &mut self.sides;
            tokio::select! {
                ev = sa.handle.events.recv(), if !sa.done => match ev {
                    Some(ev) => self.take(Port::A, ev),
                    None => self.sides[0].done = true,
                },
                ev = sb.handle.events.recv(), if !sb.done => match ev {
                    Some(ev) => self.take(Port::B, ev),
                    None => self.sides[1].done = true,
                },
                cmd = self.commands.recv(), if !shutting_down => {
                    let cmd = cmd.unwrap_or(Command::Shutdown);
                    shutting_down |= cmd == Command::Shutdown;
                    self.forward(cmd).await;
                }
                _ = tokio::time::sleep(due.unwrap_or(Duration::ZERO)), if due.is_some() => {}
                _ = tokio::time::sleep(Duration::from_millis(2)), if flush_soon => {}
            }
            if self.release(false).is_err() {
                // The session is gone: stop both ports.
                for s in &self.sides {
                    let _ = s.handle.commands.try_send(Command::Shutdown);
                }
                return;
            }
        }
        let _ = self.release(true);
        let _ = self.sink.drain().await;
    }

    fn take(&mut self, port: Port, ev: TimedEvent) {
        let labels = [self.sides[0].label.as_str(), self.sides[1].label.as_str()];
        let mut out = Vec::new();
        self.merged
            .translate(port, ev.at, labels, ev.event, &mut out);
        for event in out {
            self.reorder
                .push(TimedEvent::on(port.stream(), ev.at, event));
        }
    }

    /// Emits what has been held long enough (or everything, at the end).
    fn release(&mut self, all: bool) -> Result<(), crate::source::Closed> {
        let now = self.clock.now();
        if all {
            let held: Vec<TimedEvent> = self.reorder.drain().collect();
            for ev in held {
                self.sink.emit_at(ev)?;
            }
        } else {
            while let Some(ev) = self.reorder.pop_ready(now) {
                self.sink.emit_at(ev)?;
            }
        }
        self.sink.flush()
    }

    async fn forward(&mut self, cmd: Command) {
        match cmd {
            Command::Transmit(_)
            | Command::SendApdu { .. }
            | Command::Reconnect(_)
            | Command::Transaction(_)
            | Command::Replay(_) => {
                let reason = if matches!(cmd, Command::Transmit(_)) {
                    LISTEN_ONLY.to_string()
                } else {
                    "a tap watches serial ports: APDUs need `hsmon card`".to_string()
                };
                let at = self.clock.now();
                self.reorder.push(TimedEvent::new(
                    at,
                    Event::CommandFailed {
                        command: cmd.describe(),
                        reason,
                    },
                ));
            }
            // Settings and modem commands reach both ports; each acknowledges for itself.
            cmd => {
                if matches!(
                    cmd,
                    Command::SetBaud(_) | Command::SetFormat(_) | Command::SetFlow(_)
                ) {
                    self.merged.settings_commanded(
                        [!self.sides[0].done, !self.sides[1].done],
                        self.clock.now(),
                    );
                }
                for s in &self.sides {
                    if !s.done {
                        let _ = s.handle.commands.send(cmd.clone()).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::{Baud, LineErrorCounts};

    fn at(ms: u64, event: Event) -> TimedEvent {
        TimedEvent::new(Duration::from_millis(ms), event)
    }

    #[test]
    fn reorder_releases_in_time_order_after_the_hold() {
        let mut r = Reorder::new(Duration::from_millis(20));
        r.push(at(10, Event::Rx(vec![2])));
        r.push(at(5, Event::Tx(vec![1])));
        r.push(at(10, Event::Rx(vec![3])));
        assert_eq!(r.next_due(), Some(Duration::from_millis(25)));
        assert!(r.pop_ready(Duration::from_millis(24)).is_none());
        assert_eq!(
            r.pop_ready(Duration::from_millis(25)).unwrap().event,
            Event::Tx(vec![1])
        );
        assert!(r.pop_ready(Duration::from_millis(25)).is_none());
        let rest: Vec<Event> = std::iter::from_fn(|| r.pop_ready(Duration::from_secs(1)))
            .map(|e| e.event)
            .collect();
        assert_eq!(rest, vec![Event::Rx(vec![2]), Event::Rx(vec![3])]);
    }

    const LABELS: [&str; 2] = ["master", "meter"];

    /// One port's event, stamped after any command of the tests below (sent at 0..1 s).
    fn translate(m: &mut MergedState, port: Port, ev: Event) -> Vec<Event> {
        translate_at(m, port, 2000, ev)
    }

    fn translate_at(m: &mut MergedState, port: Port, ms: u64, ev: Event) -> Vec<Event> {
        let mut out = Vec::new();
        m.translate(port, Duration::from_millis(ms), LABELS, ev, &mut out);
        out
    }

    #[test]
    fn a_is_the_request_direction_and_b_the_answers() {
        let mut m = MergedState::default();
        assert_eq!(
            translate(&mut m, Port::A, Event::Rx(vec![0x10, 0x5B])),
            vec![Event::Tx(vec![0x10, 0x5B])]
        );
        assert_eq!(
            translate(&mut m, Port::B, Event::Rx(vec![0xE5])),
            vec![Event::Rx(vec![0xE5])]
        );
    }

    #[test]
    fn up_once_both_are_and_losses_name_the_port() {
        let mut m = MergedState::default();
        let up = Event::Connection(ConnectionState::Up);
        assert!(translate(&mut m, Port::A, up.clone()).is_empty());
        assert_eq!(translate(&mut m, Port::B, up.clone()), vec![up.clone()]);
        let down = translate(
            &mut m,
            Port::B,
            Event::Connection(ConnectionState::Down {
                reason: "/dev/ttyUSB1 disappeared".into(),
            }),
        );
        assert_eq!(
            down,
            vec![Event::Connection(ConnectionState::Down {
                reason: "meter: /dev/ttyUSB1 disappeared".into()
            })]
        );
        assert_eq!(translate(&mut m, Port::B, up.clone()), vec![up]);
    }

    #[test]
    fn both_acknowledgements_show_and_a_difference_is_said_once() {
        let mut m = MergedState::default();
        let s = |bps| Event::LineSettings {
            settings: LineSettings {
                baud: Baud::new(bps).unwrap(),
                ..LineSettings::default()
            },
            modem: Default::default(),
        };
        assert_eq!(translate(&mut m, Port::A, s(9600)), vec![s(9600)]);
        assert_eq!(translate(&mut m, Port::B, s(9600)), vec![s(9600)]);
        let out = translate(&mut m, Port::A, s(2400));
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[1], Event::CommandFailed { reason, .. } if reason.contains("master is at 2400 8N1 flow none but meter at 9600")),
            "{out:?}"
        );
        assert_eq!(translate(&mut m, Port::A, s(2400)).len(), 1, "said once");
    }

    /// One baud command to both ports: the first confirmation arriving before the second is
    /// no difference (it was a warning on every baud change, and the first `command_failed`
    /// record a test met about one run in five); a port that ends elsewhere still is.
    #[test]
    fn a_commanded_change_is_no_difference_until_both_answered() {
        let mut m = MergedState::default();
        let s = |bps| Event::LineSettings {
            settings: LineSettings {
                baud: Baud::new(bps).unwrap(),
                ..LineSettings::default()
            },
            modem: Default::default(),
        };
        translate(&mut m, Port::A, s(2400));
        translate(&mut m, Port::B, s(2400));
        m.settings_commanded([true, true], Duration::ZERO);
        assert_eq!(translate(&mut m, Port::A, s(9600)), vec![s(9600)]);
        assert_eq!(translate(&mut m, Port::B, s(9600)), vec![s(9600)]);
        m.settings_commanded([true, true], Duration::ZERO);
        assert_eq!(translate(&mut m, Port::B, s(19200)), vec![s(19200)]);
        let out = translate(&mut m, Port::A, s(9600));
        assert!(
            matches!(out.get(1), Some(Event::CommandFailed { reason, .. }) if reason.contains("master is at 9600 8N1 flow none but meter at 19200")),
            "{out:?}"
        );
    }

    /// The race behind `net_tap::one_baud_control_sets_both_ports_and_sending_is_refused`:
    /// port B's settings from when it opened (stamped before the command) reach the merge after
    /// the command went out. That is not B's answer: the wait goes on, and A's new rate landing
    /// first raises no difference; B's real answer ends the wait.
    #[test]
    fn settings_sent_before_the_command_do_not_answer_it() {
        let mut m = MergedState::default();
        let s = |bps| Event::LineSettings {
            settings: LineSettings {
                baud: Baud::new(bps).unwrap(),
                ..LineSettings::default()
            },
            modem: Default::default(),
        };
        translate_at(&mut m, Port::A, 10, s(2400));
        m.settings_commanded([true, true], Duration::from_millis(100));
        assert_eq!(translate_at(&mut m, Port::B, 11, s(2400)), vec![s(2400)]);
        assert_eq!(
            translate_at(&mut m, Port::A, 120, s(9600)),
            vec![s(9600)],
            "B has not answered yet: no difference"
        );
        assert_eq!(translate_at(&mut m, Port::B, 118, s(9600)), vec![s(9600)]);
        // A port that really ends elsewhere is still said.
        m.settings_commanded([true, true], Duration::from_millis(200));
        translate_at(&mut m, Port::A, 210, s(19200));
        let out = translate_at(&mut m, Port::B, 211, s(9600));
        assert!(
            matches!(out.get(1), Some(Event::CommandFailed { reason, .. }) if reason.contains("at 19200") && reason.contains("at 9600")),
            "{out:?}"
        );
    }

    #[test]
    fn line_errors_stay_per_port_and_refusals_name_the_port() {
        let mut m = MergedState::default();
        let e = |frame| {
            Event::LineErrors(Some(LineErrorCounts {
                frame,
                ..Default::default()
            }))
        };
        assert_eq!(
            translate(&mut m, Port::A, Event::LineErrors(None)),
            vec![Event::LineErrors(None)]
        );
        assert_eq!(translate(&mut m, Port::B, e(2)), vec![e(2)]);
        assert_eq!(translate(&mut m, Port::A, e(3)), vec![e(3)]);
        let out = translate(
            &mut m,
            Port::B,
            Event::CommandFailed {
                command: "set DTR off".into(),
                reason: "no modem lines".into(),
            },
        );
        assert_eq!(
            out,
            vec![Event::CommandFailed {
                command: "meter: set DTR off".into(),
                reason: "no modem lines".into()
            }]
        );
    }
}
