//! Events into the session: counters, settings, connection, card events, and the bytes handed
//! to the decoding engine, whose frames and diagnoses are taken into the bounded lists.

use crate::decode::StreamOffset;
use crate::diagnose::engine::{Engine, Findings};
use crate::event::{
    ConnectionState, Direction, Event, LineErrorCounts, StreamId, TimedEvent, Timestamp,
};

use super::memory::DIAGNOSES_CAP;
use super::{NoticeLevel, ReplayState, Session, SessionDiagnosis, SessionFrame};
use crate::diagnose::baud::watch::BaudWatch;

/// Largest piece of one event handed to the decoders at once. The frames found in a piece
/// are taken into the bounded list before the next piece is decoded, so a multi-megabyte
/// event (a source catching up after a stall) never holds all its frames in memory at once.
pub(super) const DECODE_SLICE: usize = 64 * 1024;

/// How many times `needle` occurs in `bytes`. Counted in 255-byte pieces with a byte-wide
/// tally, which the compiler turns into wide vector compares (a plain `filter().count()`
/// widens every byte to 64 bits): it runs over every received byte.
pub(super) fn count_byte(bytes: &[u8], needle: u8) -> u64 {
    bytes
        .chunks(255)
        .map(|piece| {
            u64::from(
                piece
                    .iter()
                    .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == needle))),
            )
        })
        .sum()
}

impl Session {
    /// Takes one event into the model.
    pub fn ingest(&mut self, ev: &TimedEvent) {
        if let Some(r) = self.recorder.as_ref().filter(|_| !self.recorded_upstream) {
            r.append(ev);
        }
        self.note_capture_failure(ev.at);
        self.generation += 1;
        self.last_at = self.last_at.max(ev.at);
        // A traced program's descriptor, seen for the first time: a stream of its own.
        if let Event::Trace(crate::event::TraceEvent::Stream { name, pid, .. }) = &ev.event {
            // Once, where it is new (a link's own session already knows its streams).
            let known = self
                .stream_info(ev.stream)
                .is_some_and(|s| s.label == *name && s.pid == Some(*pid));
            if ev.stream != StreamId::MAIN && !known {
                self.declare_traced(ev.stream, name, *pid);
            }
        }
        // Line error counters are per port: a rise is judged against the same port's last.
        let stream_errors = self.stream_info(ev.stream).and_then(|s| s.line_errors);
        self.note_stream(ev);
        // Another conversation than link 0's: its own session decodes it.
        let link = self.stream_info(ev.stream).map_or(0, |s| s.link);
        if link != 0 {
            self.link_mut(link).ingest(ev);
            return;
        }
        self.ingesting = ev.stream;
        match &ev.event {
            Event::Rx(b) => {
                self.counters.rx_bytes += b.len() as u64;
                self.rx_rate.add(ev.at, b.len());
                let offset = self.rx_offset;
                self.rx_window.0 += b.len() as u64;
                self.rx_window.1 += count_byte(b, 0x68);
                self.rx_window.2 += count_byte(b, 0x00);
                self.append(Direction::Rx, ev.at, b);
                self.baud.on_rx(b);
                self.decode(Direction::Rx, offset, ev.at, b);
                self.judge_baud(ev.at);
            }
            Event::Tx(b) => {
                self.counters.tx_bytes += b.len() as u64;
                self.tx_rate.add(ev.at, b.len());
                let offset = self.tx_offset;
                self.append(Direction::Tx, ev.at, b);
                // On a tap both directions are devices talking: what arrives as Tx is
                // evidence too. Otherwise it is what hsmon sent, and never evidence.
                let observed = self.labels.is_some();
                if let Some(e) = self.engine.as_mut() {
                    e.set_tx_observed(observed);
                }
                self.decode(Direction::Tx, offset, ev.at, b);
            }
            Event::LineSettings { settings, modem } => {
                if let Some(old) = self.settings {
                    if old != *settings {
                        self.notice(ev.at, NoticeLevel::Info, format!("port set to {settings}"));
                        // Bytes before and after a settings change never belong to one frame,
                        // and what was seen at the old setting says little about the new.
                        self.with_engine(|e, f| e.new_epoch(ev.at, f));
                    }
                }
                self.settings = Some(*settings);
                self.modem = *modem;
                self.baud.on_settings(settings);
            }
            Event::Connection(state) => {
                match state {
                    ConnectionState::Up => {
                        self.with_engine(|e, f| e.reset(ev.at, f));
                        self.baud.on_reconnect();
                        if !matches!(self.connection, ConnectionState::Up)
                            && self.counters.rx_bytes + self.counters.tx_bytes > 0
                        {
                            self.counters.reconnects += 1;
                            self.notice(ev.at, NoticeLevel::Info, "reconnected".to_string());
                        }
                    }
                    ConnectionState::Down { reason } => {
                        self.notice(ev.at, NoticeLevel::Error, format!("disconnected: {reason}"))
                    }
                    ConnectionState::Retrying { reason } => {
                        self.notice(ev.at, NoticeLevel::Warning, format!("retrying: {reason}"))
                    }
                }
                self.connection = state.clone();
            }
            Event::Overrun(o) => {
                self.counters.dropped_bytes += o.dropped_bytes;
                // Display drops: the source's sink recorded the bytes before it dropped them.
                let kept = if self.recorded_upstream
                    && self.recorder.as_ref().is_some_and(|r| r.failed().is_none())
                {
                    " (the capture has them)"
                } else {
                    ""
                };
                self.notice(
                    ev.at,
                    NoticeLevel::Error,
                    format!(
                        "{} received bytes not shown: the display fell behind the port{kept}",
                        o.dropped_bytes
                    ),
                );
            }
            Event::BreakSent => self.notice(ev.at, NoticeLevel::Info, "break sent".to_string()),
            Event::Apdu(_) | Event::Card(_) | Event::Pcsc { .. } => self.ingest_card(ev),
            // Nothing for the byte window: headless writes its record, the capture keeps it.
            Event::Trace(_) => {}
            Event::Replay {
                paused,
                speed,
                text,
            } => {
                self.replay = Some(ReplayState {
                    paused: *paused,
                    speed: *speed,
                });
                self.notice(ev.at, NoticeLevel::Info, format!("replay {text}"));
            }
            Event::LineErrors(counts) => {
                if let (Some(Some(old)), Some(new)) = (stream_errors, counts) {
                    if new.total() > old.total() {
                        self.notice(
                            ev.at,
                            NoticeLevel::Warning,
                            format!(
                                "line errors: +{} framing, +{} parity, +{} overrun, +{} break",
                                new.frame.saturating_sub(old.frame),
                                new.parity.saturating_sub(old.parity),
                                (new.overrun + new.buf_overrun)
                                    .saturating_sub(old.overrun + old.buf_overrun),
                                new.brk.saturating_sub(old.brk)
                            ),
                        );
                    }
                }
                if let (Some(Some(old)), Some(new)) = (stream_errors, counts) {
                    self.diagnose_line_errors(ev.at, old, *new);
                }
                // The status bar and the baud watch see the link: its ports' counters added.
                self.counters.line_errors = self.link_line_errors();
                self.rx_window = (0, 0, 0);
                if let Some(Some(c)) = self.counters.line_errors {
                    self.baud.on_line_errors(&c);
                    self.judge_baud(ev.at);
                }
            }
            Event::CommandFailed { command, reason } => {
                self.counters.commands_failed += 1;
                self.notice(ev.at, NoticeLevel::Warning, format!("{command}: {reason}"));
            }
        }
    }

    /// Runs `work` on the engine and takes what it found into the lists.
    fn with_engine(&mut self, work: impl FnOnce(&mut Engine, &mut Findings)) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        work(engine, &mut f);
        self.absorb(&mut f);
        self.findings = f;
    }

    /// When frames held for arbitration or records for the capture are next due (None:
    /// nothing pending, no timer needed).
    pub fn next_due(&self) -> Option<Timestamp> {
        let held = self.engine.as_ref().and_then(Engine::due);
        let links = self.links.iter().filter_map(|(_, l)| l.next_due()).min();
        [self.capture_flush_due(), held, links]
            .into_iter()
            .flatten()
            .min()
    }

    /// Does what is due at `now`: writes the capture, releases frames held long enough on a
    /// quiet line. True when the model changed (something to show).
    pub fn poll(&mut self, now: Timestamp) -> bool {
        self.poll_capture(now);
        let before = self.generation;
        let mut links_changed = false;
        for (_, l) in self.links.iter_mut() {
            links_changed |= l.poll(now);
        }
        if links_changed {
            // Something to show: the session as a whole changed.
            self.generation += 1;
        }
        if self
            .engine
            .as_ref()
            .and_then(Engine::due)
            .is_some_and(|due| due <= now)
        {
            let frames = self.next_frame_seq;
            let diagnoses = self.pending_diagnoses;
            self.with_engine(|e, f| e.poll(now, f));
            if self.next_frame_seq != frames || self.pending_diagnoses != diagnoses {
                self.generation += 1;
            }
        }
        self.generation != before
    }

    fn decode(&mut self, dir: Direction, offset: StreamOffset, at: Timestamp, bytes: &[u8]) {
        if self.engine.is_none() {
            return;
        }
        let mut f = std::mem::take(&mut self.findings);
        let mut offset = offset;
        for piece in bytes.chunks(DECODE_SLICE) {
            if let Some(engine) = self.engine.as_mut() {
                engine.feed(dir, offset, at, piece, &mut f);
            }
            offset += piece.len() as u64;
            self.absorb(&mut f);
        }
        self.findings = f;
    }

    /// Lets the baud watch judge what arrived; a setting that looks wrong becomes one
    /// observation per setting (baud mismatch, too high/low, clock drift).
    fn judge_baud(&mut self, at: Timestamp) {
        let Some((obs, text)) = self.baud.judge() else {
            return;
        };
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        engine.observe(&obs, at, text, &mut f);
        self.absorb(&mut f);
        self.findings = f;
    }

    /// Raises an observation made outside the byte stream (a handshake divergence): the first
    /// entry of `prefer` the knowledge base has (a profile's choice), else the best match.
    pub fn observe(
        &mut self,
        obs: &crate::diagnose::observation::Observation,
        prefer: &[String],
        at: Timestamp,
        context: String,
    ) {
        self.generation += 1;
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        let about_68 = match obs {
            crate::diagnose::observation::Observation::Handshake(h) => h.got.first() == Some(&0x68),
            _ => false,
        };
        let raised = prefer
            .iter()
            .any(|id| engine.raise_entry(id, about_68, at, context.clone(), &mut f));
        if !raised {
            engine.observe(obs, at, context, &mut f);
        }
        self.absorb(&mut f);
        self.findings = f;
    }

    /// What the passive baud estimation makes of the current setting.
    pub fn baud_watch(&self) -> &BaudWatch {
        &self.baud
    }

    /// Takes what the engine found into the bounded lists.
    fn absorb(&mut self, f: &mut Findings) {
        for (direction, frame, frame_at) in f.frames.drain(..) {
            if direction == Direction::Rx
                && frame.status == crate::decode::FrameStatus::Ok
                && frame.protocol != crate::decode::Protocol::Text
            {
                self.baud.on_frame_ok();
            }
            self.keep_frame(direction, frame, frame_at);
        }
        let first = self.diagnoses.front().map_or(0, |d| d.seq);
        for (n, when) in f.repeats.drain(..) {
            if let Some(d) = n
                .checked_sub(first)
                .and_then(|i| self.diagnoses.get_mut(i as usize))
            {
                d.diagnosis.count += 1;
                d.diagnosis.last_at = when;
            }
        }
        let next = self.diagnoses.back().map_or(0, |d| d.seq + 1);
        for (i, d) in f.diagnoses.drain(..).enumerate() {
            if self.diagnoses.len() >= DIAGNOSES_CAP {
                self.diagnoses.pop_front();
            }
            let stream = d
                .direction
                .map_or(self.ingesting, |dir| self.stream_of(dir));
            self.diagnoses.push_back(SessionDiagnosis {
                seq: next + i as u64,
                stream,
                diagnosis: d,
            });
            self.pending_diagnoses += 1;
        }
    }

    /// A rise in the driver's error counters, with what arrived meanwhile, becomes
    /// observations: the counters themselves, a 0x68 amid framing errors (likely garbage, not
    /// a frame start), and a run of 00 with framing errors (the port is far too fast).
    fn diagnose_line_errors(&mut self, at: Timestamp, old: LineErrorCounts, new: LineErrorCounts) {
        use crate::diagnose::observation::{LineErrorWindow, Observation};
        if new.total() <= old.total() {
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let (bytes, n68, n00) = self.rx_window;
        let errors = new.since(&old);
        let framing = errors.frame;
        let seen = LineErrorWindow {
            bytes,
            errors,
            fe_even_popcount_only: false,
        };
        let mut f = std::mem::take(&mut self.findings);
        let text = format!(
            "{framing} framing, {} parity, {} break errors over {bytes} received bytes",
            errors.parity, errors.brk
        );
        engine.observe(&Observation::LineErrors(seen), at, text, &mut f);
        if framing > 0 && n68 > 0 {
            engine.observe(
                &Observation::RepeatedByte {
                    byte: 0x68,
                    count: n68,
                    framing_errors: framing,
                },
                at,
                format!("{n68} × 68 among {bytes} bytes with {framing} framing errors"),
                &mut f,
            );
        }
        if framing >= 3 && n00 * 2 >= bytes {
            engine.observe(
                &Observation::RepeatedByte {
                    byte: 0x00,
                    count: n00,
                    framing_errors: framing,
                },
                at,
                format!("{n00} × 00 among {bytes} bytes with {framing} framing errors"),
                &mut f,
            );
        }
        self.absorb(&mut f);
        self.findings = f;
    }

    /// Frames still pending in the framers are reported (end of input).
    pub fn flush_decoders(&mut self) {
        let at = self.last_at;
        self.with_engine(|e, f| e.flush(at, f));
        for (_, l) in self.links.iter_mut() {
            l.flush_decoders();
        }
    }

    /// Frames and diagnoses added since the last call (for headless output), oldest first.
    pub fn take_new(&mut self) -> (Vec<&SessionFrame>, Vec<&SessionDiagnosis>) {
        let (nf, nd) = self.take_new_counts();
        (
            self.frames.range(self.frames.len() - nf..).collect(),
            self.diagnoses.range(self.diagnoses.len() - nd..).collect(),
        )
    }

    /// How many frames and diagnoses were added since the last call (to this or `take_new`):
    /// the last that many of [`Session::frames`] and [`Session::diagnoses`]. Marks them taken.
    pub fn take_new_counts(&mut self) -> (usize, usize) {
        (
            std::mem::take(&mut self.pending_frames).min(self.frames.len()),
            std::mem::take(&mut self.pending_diagnoses).min(self.diagnoses.len()),
        )
    }

    /// Card events: kept in the card log for the APDU pane, not mixed into the byte stream;
    /// status words and PC/SC codes go to the diagnosis engine.
    fn ingest_card(&mut self, ev: &TimedEvent) {
        let observations = self.card.ingest(ev.at, &ev.event);
        match &ev.event {
            Event::Card(c) => {
                let text = crate::card::describe::card_event_text(c);
                self.notice(ev.at, NoticeLevel::Info, format!("card {text}"));
            }
            Event::Pcsc { operation, code } => self.notice(
                ev.at,
                NoticeLevel::Error,
                format!(
                    "{operation}: {}",
                    crate::card::describe::pcsc_error_text(*code)
                ),
            ),
            _ => {}
        }
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut f = std::mem::take(&mut self.findings);
        for (obs, text) in observations {
            engine.observe(&obs, ev.at, text, &mut f);
        }
        self.absorb(&mut f);
        self.findings = f;
    }
}
