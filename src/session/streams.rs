//! The streams of a session (a port, each port of a tap, later each descriptor a traced
//! program uses): what each is, its own settings, modem lines, connection, counts and rate,
//! and the link — the one conversation — its bytes feed.
//!
//! The decoding unit is the link: a tap's two ports are two streams of one link, so the engine
//! still pairs the requests heard on port A with the answers heard on port B. A port or a
//! socket is one stream carrying both directions of its own link.

use crate::diagnose::classify::Classifier;
use crate::event::{
    ConnectionState, Direction, Event, LineErrorCounts, LineSettings, ModemLines, StreamDecl,
    StreamId, StreamKind, TimedEvent,
};

use super::{DirectionLabels, RateMeter, Session};

/// A conversation: the streams that carry its two directions. Today a session decodes one
/// link (the session's engine, window and frame lists are link 0's).
pub type LinkId = u16;

/// One stream and what it last reported.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub id: StreamId,
    /// The port path, peer address or reader name (the source's name for a single stream).
    pub label: String,
    pub kind: Option<StreamKind>,
    pub link: LinkId,
    /// The direction of the link this stream carries; None: both (one port, one socket).
    pub direction: Option<Direction>,
    /// As this stream's port last confirmed it (the device is the truth).
    pub settings: Option<LineSettings>,
    pub modem: ModemLines,
    pub connection: ConnectionState,
    /// Bytes the stream carried.
    pub bytes: u64,
    pub rate: RateMeter,
    /// This stream's line error counters: None until known, Some(None) where the port keeps none.
    pub line_errors: Option<Option<LineErrorCounts>>,
    /// The process that uses it (a traced program's descriptor), when known.
    pub pid: Option<u32>,
}

/// What a record of a multi-stream session says about its stream: the label (a port path,
/// `tcp HOST:PORT`, …) and, for a traced program's descriptor, the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTag<'a> {
    pub label: &'a str,
    pub pid: Option<u32>,
}

impl StreamInfo {
    fn declared(d: &StreamDecl) -> StreamInfo {
        StreamInfo {
            id: d.id,
            label: d.label.clone(),
            kind: Some(d.kind),
            link: d.link,
            direction: d.direction,
            settings: None,
            modem: ModemLines::default(),
            connection: ConnectionState::Down {
                reason: "not connected yet".to_string(),
            },
            bytes: 0,
            rate: RateMeter::default(),
            line_errors: None,
            pid: None,
        }
    }

    /// The one stream of a single-stream source, named after it.
    pub(super) fn main(label: String) -> StreamInfo {
        StreamInfo::declared(&StreamDecl {
            id: StreamId::MAIN,
            label,
            kind: StreamKind::Serial,
            link: 0,
            direction: None,
        })
        .without_kind()
    }

    fn without_kind(mut self) -> StreamInfo {
        self.kind = None;
        self
    }

    /// Takes what the event says about this stream alone.
    pub(super) fn note(&mut self, ev: &TimedEvent) {
        match &ev.event {
            Event::Rx(b) | Event::Tx(b) => {
                self.bytes += b.len() as u64;
                self.rate.add(ev.at, b.len());
            }
            Event::LineSettings { settings, modem } => {
                self.settings = Some(*settings);
                self.modem = *modem;
            }
            Event::Connection(c) => self.connection = c.clone(),
            Event::LineErrors(c) => self.line_errors = Some(*c),
            _ => {}
        }
    }
}

impl Session {
    /// Takes the source's streams (none: the one main stream, named after the source) and,
    /// for a tap, the names of the two directions. Call before the first event.
    pub fn set_streams(&mut self, streams: &[StreamDecl], labels: Option<DirectionLabels>) {
        self.labels = labels;
        if !streams.is_empty() {
            self.streams = streams.iter().map(StreamInfo::declared).collect();
        }
        if let Some(r) = self.recorder.as_ref() {
            r.declare_streams(streams);
        }
    }

    /// Every stream, in the order the source declared them (the main stream first).
    pub fn streams(&self) -> &[StreamInfo] {
        &self.streams
    }

    /// True when the session has more than one stream: its records then name their stream.
    pub fn is_multi_stream(&self) -> bool {
        self.streams.len() > 1
    }

    pub fn stream_info(&self, id: StreamId) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.id == id)
    }

    /// The stream's label for a record: Some only in a multi-stream session (a single-stream
    /// session's records stay as they were).
    pub fn stream_label(&self, id: StreamId) -> Option<&str> {
        self.stream_tag(id).map(|t| t.label)
    }

    /// What a record says about stream `id`: Some only in a multi-stream session.
    pub fn stream_tag(&self, id: StreamId) -> Option<StreamTag<'_>> {
        if !self.is_multi_stream() {
            return None;
        }
        self.stream_info(id).map(|s| StreamTag {
            label: s.label.as_str(),
            pid: s.pid,
        })
    }

    /// A traced program's descriptor `id` (`name`: the path as the program opened it, `tcp
    /// HOST:PORT`, …, in process `pid`): the same device or peer as an earlier descriptor
    /// joins that one's link (a forked child writing to its parent's port is one
    /// conversation); a new one gets a link of its own.
    pub fn declare_traced(&mut self, id: StreamId, name: &str, pid: u32) {
        let link = self
            .streams
            .iter()
            .find(|s| s.id != StreamId::MAIN && s.id != id && s.label == name)
            .map_or(id.0, |s| s.link);
        let kind = match name.split_once(' ') {
            Some(("tcp" | "udp" | "unix", _)) => StreamKind::Tcp,
            _ => StreamKind::Serial,
        };
        let decl = StreamDecl {
            id,
            label: name.to_string(),
            kind,
            link,
            direction: None,
        };
        self.declare_stream(&decl, Some(pid));
    }

    /// A stream that appeared during the session (a descriptor a traced program opened):
    /// declared before its first event, or when it comes; a stream already known keeps its
    /// counters and takes the new name, link and process.
    pub fn declare_stream(&mut self, decl: &StreamDecl, pid: Option<u32>) {
        match self.streams.iter_mut().find(|s| s.id == decl.id) {
            Some(s) => {
                s.label = decl.label.clone();
                s.kind = Some(decl.kind);
                s.link = decl.link;
                s.direction = decl.direction;
                s.pid = pid;
            }
            None => {
                let mut s = StreamInfo::declared(decl);
                s.pid = pid;
                self.streams.push(s);
            }
        }
        // A link that already decodes learns its new stream (as its own: link 0 there).
        if let Some((_, link)) = self.links.iter_mut().find(|(l, _)| *l == decl.link) {
            let own = StreamDecl {
                link: 0,
                ..decl.clone()
            };
            link.declare_stream(&own, pid);
        }
    }

    /// The stream that carries `dir` of link 0: a tap's port for that direction, else the
    /// stream that carries both (the main stream, or a link's own descriptor).
    pub fn stream_of(&self, dir: Direction) -> StreamId {
        let link0 = || self.streams.iter().filter(|s| s.link == 0);
        link0()
            .find(|s| s.direction == Some(dir))
            .or_else(|| link0().find(|s| s.direction.is_none()))
            .map_or(StreamId::MAIN, |s| s.id)
    }

    /// What the stream's link is talking (the classifier's answer), None without a knowledge
    /// base or for a stream the session does not know.
    pub fn talking_to(&self, stream: StreamId) -> Option<&Classifier> {
        let link = self.stream_info(stream)?.link;
        self.link(link)?.engine.as_ref().map(|e| &e.classifier)
    }

    /// The conversation `id`: link 0 is this session, the others decode on their own (each
    /// descriptor a traced program uses). None for a link no event has reached yet.
    pub fn link(&self, id: LinkId) -> Option<&Session> {
        if id == 0 {
            return Some(self);
        }
        self.links.iter().find(|(l, _)| *l == id).map(|(_, s)| s)
    }

    /// Every link that has seen an event, link 0 (this session) first.
    pub fn links(&self) -> impl Iterator<Item = (LinkId, &Session)> {
        std::iter::once((0, self)).chain(self.links.iter().map(|(id, s)| (*id, s)))
    }

    /// The other links, taken out for a moment (to write their records with this session's
    /// names at hand); give them back with [`Session::restore_links`].
    pub fn take_links(&mut self) -> Vec<(LinkId, Session)> {
        std::mem::take(&mut self.links)
    }

    pub fn restore_links(&mut self, links: Vec<(LinkId, Session)>) {
        self.links = links;
    }

    /// The session of link `id` (not 0), made on its first event: the same knowledge, memory
    /// cap, stamp and stream names as this one, and no capture of its own.
    pub(super) fn link_mut(&mut self, id: LinkId) -> &mut Session {
        let i = match self.links.iter().position(|(l, _)| *l == id) {
            Some(i) => i,
            None => {
                let label = self
                    .streams
                    .iter()
                    .find(|s| s.link == id)
                    .map_or_else(|| format!("link {id}"), |s| s.label.clone());
                let mut link =
                    Session::with_knowledge(label, self.window_cap, self.knowledge.clone());
                link.stamp = self.stamp.clone();
                link.streams = self
                    .streams
                    .iter()
                    .map(|s| StreamInfo {
                        link: 0,
                        ..s.clone()
                    })
                    .filter(|s| self.stream_info(s.id).is_some_and(|o| o.link == id))
                    .collect();
                // Records of a multi-stream session name their stream: keep every name.
                for s in &self.streams {
                    if !link.streams.iter().any(|t| t.id == s.id) {
                        link.streams.push(StreamInfo {
                            link: u16::MAX,
                            ..s.clone()
                        });
                    }
                }
                self.links.push((id, link));
                self.links.len() - 1
            }
        };
        &mut self.links[i].1
    }

    /// The line error counters of link 0's streams added up: None until a stream reported,
    /// Some(None) while none of them keeps any.
    pub(super) fn link_line_errors(&self) -> Option<Option<LineErrorCounts>> {
        let reported: Vec<Option<LineErrorCounts>> = self
            .streams
            .iter()
            .filter(|s| s.link == 0)
            .filter_map(|s| s.line_errors)
            .collect();
        if reported.is_empty() {
            return None;
        }
        let kept: Vec<LineErrorCounts> = reported.into_iter().flatten().collect();
        if kept.is_empty() {
            return Some(None);
        }
        Some(Some(kept.iter().fold(
            LineErrorCounts::default(),
            |s, c| LineErrorCounts {
                frame: s.frame + c.frame,
                overrun: s.overrun + c.overrun,
                parity: s.parity + c.parity,
                brk: s.brk + c.brk,
                buf_overrun: s.buf_overrun + c.buf_overrun,
            },
        )))
    }

    /// Files the event under its stream; a stream the source did not declare is added.
    pub(super) fn note_stream(&mut self, ev: &TimedEvent) {
        let i = match self.streams.iter().position(|s| s.id == ev.stream) {
            Some(i) => i,
            None => {
                let mut s = StreamInfo::main(format!("stream {}", ev.stream));
                s.id = ev.stream;
                self.streams.push(s);
                self.streams.len() - 1
            }
        };
        if let Some(s) = self.streams.get_mut(i) {
            s.note(ev);
        }
    }
}
