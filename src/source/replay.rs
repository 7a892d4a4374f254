//! The replay source: a capture file played back as a live source, so decoders, events and
//! explanations work exactly as they did live. Events keep their recorded times; the pace
//! follows them (× speed), or there is no pace at all ([`UNPACED`], `--speed max`). Paused, the user steps one event at a time; a search plays on at
//! full speed until the bytes are found, then pauses there.
//!
//! The file is read on its own thread (blocking I/O); commands reach it through a channel.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use crate::capture::reader::CaptureReader;
use crate::clock::Clock;
use crate::event::{Command, ConnectionState, Event, ReplayControl, Timestamp};
use crate::source::{EventSink, SourceHandle, channels};

/// Slowest and fastest playback.
pub const SPEED_MIN: f64 = 1.0 / 64.0;
pub const SPEED_MAX: f64 = 1024.0;
/// The speed that means "as fast as it can": no waiting between events (`--speed max` or
/// `--speed 0`). Slower from there is [`SPEED_MAX`].
pub const UNPACED: f64 = 0.0;
/// A recorded gap longer than this between two records is not waited for: the later record
/// plays at once and the player says so. A damaged or forged stamp (2^64−1 ns is 584 years)
/// would otherwise hold a replay for ever, at any speed.
pub const MAX_GAP: Duration = Duration::from_secs(3600);

/// Opens `path` and starts playing it at `speed` (paused when `paused`). Errors name the
/// cause and the fix (not a capture, newer version, unreadable).
/// With `stay` the player waits for commands at the end (the TUI: the user may still search
/// and read); without, it stops there and the session ends (headless).
pub fn spawn(
    path: &Path,
    clock: Clock,
    speed: f64,
    paused: bool,
    stay: bool,
) -> Result<SourceHandle, crate::capture::reader::CaptureError> {
    let reader = CaptureReader::open(path)?;
    let header = reader.header().clone();
    // A multi-stream capture declares its streams before its first event.
    let streams = {
        let mut peek = CaptureReader::open(path)?;
        let _ = peek.next_record();
        peek.streams().to_vec()
    };
    let (etx, erx, ctx, mut crx) = channels();
    let (cmd_tx, cmd_rx) = std_mpsc::channel::<Command>();
    std::thread::spawn(move || {
        while let Some(c) = crx.blocking_recv() {
            if cmd_tx.send(c).is_err() {
                return;
            }
        }
        let _ = cmd_tx.send(Command::Shutdown);
    });
    let name = format!(
        "replay: {} ({})",
        header.meta.source,
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    std::thread::spawn(move || {
        let mut p = Player {
            sink: EventSink::new(etx, clock),
            reader,
            commands: cmd_rx,
            speed: if speed == UNPACED {
                UNPACED
            } else {
                speed.clamp(SPEED_MIN, SPEED_MAX)
            },
            paused,
            anchor: None,
            find: None,
            ended: false,
            played: 0,
            stay,
            last_at: Timestamp::ZERO,
            prev_at: None,
        };
        p.announce();
        p.run();
    });
    Ok(SourceHandle {
        events: erx,
        commands: ctx,
        name,
        streams,
    })
}

struct Player {
    sink: EventSink,
    reader: CaptureReader,
    commands: std_mpsc::Receiver<Command>,
    speed: f64,
    paused: bool,
    /// Wall instant and recorded time that pacing counts from (reset on every change).
    anchor: Option<(Instant, Timestamp)>,
    /// A search in progress: bytes to find, and the tail of the last chunk per direction
    /// (a match may span two chunks).
    find: Option<Find>,
    ended: bool,
    played: u64,
    stay: bool,
    /// The recorded time of the last event played.
    last_at: Timestamp,
    /// The recorded time of the record read before this one (pacing counts gaps from it).
    prev_at: Option<Timestamp>,
}

/// A long span in words: "3.2 h", "41 days", "584 years".
fn describe_gap(gap: Duration) -> String {
    let s = gap.as_secs_f64();
    if s < 2.0 * 86_400.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s < 2.0 * 365.25 * 86_400.0 {
        format!("{:.0} days", s / 86_400.0)
    } else {
        format!("{:.0} years", s / (365.25 * 86_400.0))
    }
}

struct Find {
    pattern: Vec<u8>,
    tail: [Vec<u8>; 2],
}

impl Player {
    /// Emits the player's own events at the recorded time reached so far (one time base).
    fn emit(&mut self, ev: Event) {
        let _ = self
            .sink
            .emit_at(crate::event::TimedEvent::new(self.last_at, ev));
    }

    fn announce(&mut self) {
        let pace = if self.speed == UNPACED {
            "max speed".to_string()
        } else {
            format!("{}x", self.speed)
        };
        let text = format!(
            "{} at {pace}{}",
            if self.paused { "paused" } else { "playing" },
            if self.ended { ", at the end" } else { "" }
        );
        self.emit(Event::Replay {
            paused: self.paused,
            speed: self.speed,
            text,
        });
    }

    fn run(&mut self) {
        loop {
            let _ = self.sink.flush();
            // Waiting: paused, at the end, or until the next event is due.
            let wait = if self.paused || self.ended {
                Duration::from_millis(200)
            } else {
                Duration::ZERO
            };
            match self.commands.recv_timeout(wait) {
                Ok(c) => {
                    if !self.obey(c) {
                        return;
                    }
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.ended && !self.stay {
                let _ = self.drain();
                return;
            }
            if self.paused || self.ended {
                continue;
            }
            if !self.play_one() {
                return;
            }
        }
    }

    /// Hands everything queued to the session before the source ends.
    fn drain(&mut self) -> bool {
        for _ in 0..2000 {
            if !self.sink.has_pending() {
                return true;
            }
            if self.sink.flush().is_err() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Plays the next event when it is due. False: the session is gone.
    fn play_one(&mut self) -> bool {
        let rec = match self.reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.end();
                return true;
            }
            Err(e) => {
                self.emit(Event::Connection(ConnectionState::Down {
                    reason: format!("the capture cannot be read further: {e}"),
                }));
                self.ended = true;
                return true;
            }
        };
        let at = rec.event.at;
        let prev = self.prev_at.replace(at);
        if self.find.is_none() && self.speed != UNPACED {
            self.clamp_gap(prev, at);
            let (t0, a0) = *self.anchor.get_or_insert((Instant::now(), at));
            let due = t0 + at.saturating_sub(a0).div_f64(self.speed);
            // Sleep in slices so commands (pause, a new speed) act at once.
            while Instant::now() < due {
                let left = due.saturating_duration_since(Instant::now());
                match self
                    .commands
                    .recv_timeout(left.min(Duration::from_millis(50)))
                {
                    Ok(c) => {
                        let was_paused = self.paused;
                        if !self.obey(c) {
                            return false;
                        }
                        if self.paused && !was_paused {
                            // Paused mid-wait: this event comes with the next step.
                            self.anchor = None;
                            return self.send(rec.event, true);
                        }
                        if self.anchor.is_none() {
                            break;
                        }
                    }
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return false,
                }
            }
        }
        let found = self.matches(&rec.event.event);
        let ok = self.send(rec.event, false);
        if found {
            self.find = None;
            self.paused = true;
            self.anchor = None;
            self.announce();
        }
        ok
    }

    /// Pacing restarts at a record stamped before the one read before it, or more than
    /// [`MAX_GAP`] after it: it plays at once, and a forward jump is said (one `Replay` event).
    fn clamp_gap(&mut self, prev: Option<Timestamp>, at: Timestamp) {
        let Some(prev) = prev else { return };
        if at < prev {
            self.anchor = Some((Instant::now(), at));
            return;
        }
        let gap = at - prev;
        if gap <= MAX_GAP {
            return;
        }
        self.anchor = Some((Instant::now(), at));
        let text = format!(
            "record {} is stamped {} after the one before it (more than {} h, a damaged or \
             forged time): played at once instead of waiting",
            self.played + 1,
            describe_gap(gap),
            MAX_GAP.as_secs() / 3600
        );
        self.emit(Event::Replay {
            paused: self.paused,
            speed: self.speed,
            text,
        });
    }

    fn send(&mut self, ev: crate::event::TimedEvent, _deferred: bool) -> bool {
        self.played += 1;
        self.last_at = self.last_at.max(ev.at);
        // Replayed events keep their recorded time: the session's clock is the capture's.
        self.wait_for_room() && self.sink.emit_at(ev).is_ok()
    }

    /// Waits until the sink has queued nothing: a live source lets the sink coalesce received
    /// chunks when the session lags, but a replay has the file and can wait, so every record
    /// reaches the session as itself, with its own time — at `--speed max` too. False: the
    /// session is gone.
    fn wait_for_room(&mut self) -> bool {
        while self.sink.has_pending() {
            if self.sink.flush().is_err() {
                return false;
            }
            if self.sink.has_pending() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        true
    }

    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let torn = self
            .reader
            .torn_tail()
            .map(|t| format!("; the file ends in a cut record at byte {}", t.offset))
            .unwrap_or_default();
        let warnings = self.reader.warnings().len();
        if self.find.take().is_some() {
            self.emit(Event::CommandFailed {
                command: "search".to_string(),
                reason: "not found before the end of the capture".to_string(),
            });
        }
        self.emit(Event::Connection(ConnectionState::Down {
            reason: format!(
                "end of the capture: {} events played{}{torn}",
                self.played,
                if warnings > 0 {
                    format!(
                        ", {warnings} damaged record(s) skipped ({})",
                        crate::capture::reader::warning_offsets(self.reader.warnings())
                    )
                } else {
                    String::new()
                }
            ),
        }));
        self.announce();
    }

    /// True when `ev` completes the search.
    fn matches(&mut self, ev: &Event) -> bool {
        let Some(f) = self.find.as_mut() else {
            return false;
        };
        let (i, bytes) = match ev {
            Event::Rx(b) => (0, b),
            Event::Tx(b) => (1, b),
            _ => return false,
        };
        let mut hay = std::mem::take(&mut f.tail[i]);
        hay.extend_from_slice(bytes);
        let hit = !f.pattern.is_empty()
            && hay
                .windows(f.pattern.len())
                .any(|w| w == f.pattern.as_slice());
        let keep = f.pattern.len().saturating_sub(1).min(hay.len());
        f.tail[i] = hay[hay.len() - keep..].to_vec();
        hit
    }

    /// False: shut down.
    fn obey(&mut self, c: Command) -> bool {
        match c {
            Command::Shutdown => return false,
            Command::Replay(r) => match r {
                ReplayControl::TogglePause => {
                    self.paused = !self.paused;
                    self.anchor = None;
                    self.announce();
                }
                ReplayControl::Faster | ReplayControl::Slower => {
                    let f = if r == ReplayControl::Faster { 2.0 } else { 0.5 };
                    self.speed = match (self.speed == UNPACED, r) {
                        (true, ReplayControl::Faster) => UNPACED,
                        (true, _) => SPEED_MAX,
                        (false, _) => (self.speed * f).clamp(SPEED_MIN, SPEED_MAX),
                    };
                    self.anchor = None;
                    self.announce();
                }
                ReplayControl::Step => {
                    // One chunk: events up to and including the next one that carries data
                    // (bytes or an APDU exchange); settings and the like come along.
                    self.paused = true;
                    self.anchor = None;
                    while !self.ended {
                        match self.reader.next_record() {
                            Ok(Some(rec)) => {
                                let data = matches!(
                                    rec.event.event,
                                    Event::Rx(_) | Event::Tx(_) | Event::Apdu(_)
                                );
                                if !self.send(rec.event, false) {
                                    return false;
                                }
                                if data {
                                    break;
                                }
                            }
                            Ok(None) | Err(_) => self.end(),
                        }
                    }
                }
                ReplayControl::Find(pattern) => {
                    if self.ended {
                        self.emit(Event::CommandFailed {
                            command: "search".to_string(),
                            reason: "the capture has been played to its end".to_string(),
                        });
                    } else {
                        self.find = Some(Find {
                            pattern,
                            tail: [Vec::new(), Vec::new()],
                        });
                        self.paused = false;
                    }
                }
            },
            other => self.emit(Event::CommandFailed {
                command: other.describe(),
                reason: "a replay cannot change the recorded device".to_string(),
            }),
        }
        true
    }
}
