//! pcapng for Wireshark, written by hand (SHB, IDB and EPB blocks are all it takes; the
//! `pcap-file` crate would add a dependency for ~100 lines and still leave the upper-PDU
//! records to us).
//!
//! - APDUs and ATRs: LINKTYPE_WIRESHARK_UPPER_PDU (252) packets tagged with the dissector name
//!   `iso7816` and the direction (0 = command, 1 = response/ATR) — the layout verified with
//!   tshark 4.0 (Wireshark's exported_pdu tags); command and response are separate packets.
//! - Line bytes, one packet per received or sent chunk, direction in the EPB flags (inbound =
//!   rx, outbound = tx), in the first of these that fits ([`LineEncap::choose`]):
//!   - IEC 60870-5-104 (a `tcp` session to port 2404, or bytes that are 104 APDUs end to end):
//!     TCP/IPv4 in LINKTYPE_RAW (101) between synthetic documentation addresses (RFC 5737):
//!     hsmon 192.0.2.1, the station 192.0.2.2 port 2404 — Wireshark's `iec60870_104` dissector
//!     is registered on TCP port 2404, so it decodes them with no option. A handshake opens
//!     each connection and sequence/ack numbers run on, so TCP analysis stays quiet.
//!   - Any other serial line: LINKTYPE_RTAC_SERIAL (250), a 12-byte header (time, event
//!     DATA_TX_START/DATA_RX_START, DTR/RTS) then the bytes. Its payload protocol is
//!     "Decode As" (`-d rtacser.data,iec60870_101`, also `mbrtu`, `dnp3`, `iec60870_5_103`).
//!   - What nothing else fits (a `tcp` session that is not IEC 104): LINKTYPE_USER0 (147),
//!     the bytes unwrapped, so Wireshark's DLT_USER preference can run any dissector on them
//!     (`-o 'uat:user_dlts:"User 0 (DLT=147)","data","0","","0",""'`, any dissector's name).
//! - A card's ATR once: sources report it on insertion and again on connect; the connect
//!   with the same ATR is a text packet (below) like any other card event.
//! - Every other event (settings, connection, card state, PC/SC errors): an upper-PDU packet
//!   with the `data-text-lines` dissector, protocol column "hsmon", the headless text line as
//!   payload and as packet comment — so a trace reads in order with its context.
//!
//! Timestamps: nanosecond resolution (`if_tsresol` = 9), the capture's wall-clock start plus
//! the event time. An APDU's command is stamped `at - duration` and its response `at` (sources
//! stamp the exchange when the response arrives; `duration` is the transmit time).
//!
//! Block layout: pcapng spec (draft-ietf-opsawg-pcapng), little-endian section.

use std::io::{self, Write};

use super::{Exporter, text_without_time};
use crate::capture::codec::duration_to_ns;
use crate::capture::reader::{CaptureHeader, Record};
use crate::event::{ApduOrigin, CardEvent, ConnectionState, Event};

pub const LINKTYPE_RAW: u16 = 101;
pub const LINKTYPE_USER0: u16 = 147;
pub const LINKTYPE_RTAC_SERIAL: u16 = 250;
pub const LINKTYPE_WIRESHARK_UPPER_PDU: u16 = 252;

const BLOCK_SHB: u32 = 0x0A0D_0D0A;
const BLOCK_IDB: u32 = 0x0000_0001;
const BLOCK_EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;

/// Longer Rx/Tx chunks become several packets with the same time: Wireshark refuses packets
/// over 262144 bytes for most link types.
const MAX_PACKET: usize = 65_535;

/// EPB flag bits 0-1: direction.
const INBOUND: u32 = 0b01;
const OUTBOUND: u32 = 0b10;

/// Exported-PDU tags (wsutil/exported_pdu_tlvs.h), big-endian TLVs.
const EXP_PDU_TAG_END_OF_OPT: u16 = 0;
const EXP_PDU_TAG_DISSECTOR_NAME: u16 = 12;
const EXP_PDU_TAG_COL_PROT_TEXT: u16 = 33;
const EXP_PDU_TAG_P2P_DIRECTION: u16 = 35;
/// Info column text; Wireshark 4.0 ignores it (shown as an unknown tag), later versions use it.
const EXP_PDU_TAG_COL_INFO_TEXT: u16 = 36;

/// P2P direction values: sent by hsmon (command APDU), received (response, ATR).
const P2P_DIR_SENT: u32 = 0;
const P2P_DIR_RECV: u32 = 1;

/// The TCP port IANA assigned to IEC 60870-5-104 (and Wireshark dissects on).
pub const IEC104_PORT: u16 = 2404;
/// Synthetic addresses from TEST-NET-1 (RFC 5737): hsmon, and the station it talks to.
const HSMON_ADDR: [u8; 4] = [192, 0, 2, 1];
const STATION_ADDR: [u8; 4] = [192, 0, 2, 2];
/// hsmon's port for the first connection; each reconnection takes the next.
const HSMON_PORT: u16 = 49_152;
/// TCP segments carry at most an Ethernet MSS of payload.
const TCP_MSS: usize = 1460;
/// Bytes the IEC 104 check reads per direction before deciding.
const PROBE_BYTES: usize = 4096;

/// How a capture's line bytes go out (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEncap {
    /// IEC 60870-5-104 as TCP/IPv4 (LINKTYPE_RAW).
    Iec104Tcp,
    /// A serial line: LINKTYPE_RTAC_SERIAL.
    RtacSerial,
    /// LINKTYPE_USER0: the bytes alone.
    User0,
}

impl LineEncap {
    /// The rule: IEC 104 when the session was `hsmon tcp HOST:2404`, or when the first
    /// received and sent bytes (`rx`, `tx`: up to [`PROBE_BYTES`] each, from the start) are
    /// IEC 104 APDUs end to end, at least one whole APDU in each direction that has bytes (the
    /// last may be cut off); otherwise RTAC serial, except for
    /// `tcp` sessions (no serial line): USER0.
    pub fn choose(source: &str, rx: &[u8], tx: &[u8]) -> LineEncap {
        let tcp = source.strip_prefix("tcp ");
        if tcp.is_some_and(|t| t.rsplit(':').next() == Some("2404")) {
            return LineEncap::Iec104Tcp;
        }
        match (iec104_apdus(rx), iec104_apdus(tx)) {
            (Some(a), Some(b)) if a + b > 0 => LineEncap::Iec104Tcp,
            _ if tcp.is_some() => LineEncap::User0,
            _ => LineEncap::RtacSerial,
        }
    }
}

/// Whole APDUs in `bytes` if they are IEC 104 APDUs back to back (the last may be cut off);
/// None at the first byte that does not fit.
fn iec104_apdus(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut n = 0;
    while pos + 2 <= bytes.len() {
        let len = usize::from(bytes[pos + 1]) + 2;
        if bytes[pos] != 0x68 || len < 6 {
            return None;
        }
        if pos + len > bytes.len() {
            break;
        }
        crate::decode::iec104::parse(pos as u64, &bytes[pos..pos + len])?;
        n += 1;
        pos += len;
    }
    // A cut last APDU is fine (the probe stops mid-stream, a capture may end mid-APDU), but
    // not alone: "hello" starts with 0x68 too.
    if pos < bytes.len() && (n == 0 || bytes[pos] != 0x68) {
        return None;
    }
    Some(n)
}

/// Reads the first line bytes of each direction for [`LineEncap::choose`].
#[derive(Debug, Default)]
pub struct Probe {
    pub rx: Vec<u8>,
    pub tx: Vec<u8>,
}

impl Probe {
    /// Takes the bytes of one event; false once both directions have enough.
    pub fn take(&mut self, ev: &Event) -> bool {
        let (buf, b) = match ev {
            Event::Rx(b) => (&mut self.rx, b),
            Event::Tx(b) => (&mut self.tx, b),
            _ => return true,
        };
        let room = PROBE_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&b[..b.len().min(room)]);
        self.rx.len() < PROBE_BYTES || self.tx.len() < PROBE_BYTES
    }
}

/// The synthetic TCP connection IEC 104 bytes travel in.
#[derive(Debug)]
struct TcpFlow {
    /// hsmon's port of the current connection.
    port: u16,
    /// Next sequence number of hsmon and of the station.
    seq_hsmon: u32,
    seq_station: u32,
    open: bool,
    /// IPv4 identification counter.
    ip_id: u16,
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Iface {
    Bytes,
    Pdu,
}

pub struct PcapngExporter {
    start_ns: i64,
    source: String,
    /// Interface ids, assigned (and their IDB written) on first use.
    bytes_id: Option<u32>,
    pdu_id: Option<u32>,
    next_id: u32,
    /// The ATR last written as an ISO 7816 packet, until the card is removed: sources report
    /// a card's ATR on insertion and again on connect, and Wireshark should see it once.
    atr_written: Option<Vec<u8>>,
    encap: LineEncap,
    flow: TcpFlow,
    /// RTAC serial control-line bits (DTR, RTS) from the last line settings.
    control_lines: u8,
}

impl PcapngExporter {
    /// An exporter whose line bytes go out as `encap` ([`LineEncap::choose`]).
    pub fn new(h: &CaptureHeader, encap: LineEncap) -> PcapngExporter {
        PcapngExporter {
            start_ns: h.meta.started_unix_ns,
            source: h.meta.source.clone(),
            bytes_id: None,
            pdu_id: None,
            next_id: 0,
            atr_written: None,
            encap,
            flow: TcpFlow {
                port: HSMON_PORT,
                seq_hsmon: 0x0001_0000,
                seq_station: 0x0100_0000,
                open: false,
                ip_id: 0,
            },
            control_lines: 0,
        }
    }

    /// Wall-clock nanoseconds of a session time (clamped at the epoch).
    fn ts(&self, at_ns: u64) -> u64 {
        u64::try_from(self.start_ns.max(0))
            .unwrap_or(0)
            .saturating_add(at_ns)
    }

    fn iface(&mut self, which: Iface, out: &mut dyn Write) -> io::Result<u32> {
        let slot = match which {
            Iface::Bytes => &mut self.bytes_id,
            Iface::Pdu => &mut self.pdu_id,
        };
        if let Some(id) = *slot {
            return Ok(id);
        }
        let id = self.next_id;
        *slot = Some(id);
        self.next_id += 1;
        let (linktype, name, desc) = match which {
            Iface::Bytes => match self.encap {
                LineEncap::Iec104Tcp => (
                    LINKTYPE_RAW,
                    "hsmon-iec104".to_string(),
                    format!(
                        "IEC 60870-5-104 of {} as TCP/IPv4: hsmon 192.0.2.1, the station 192.0.2.2:{IEC104_PORT} (synthetic addresses, RFC 5737)",
                        self.source
                    ),
                ),
                LineEncap::RtacSerial => (
                    LINKTYPE_RTAC_SERIAL,
                    "hsmon-serial".to_string(),
                    format!(
                        "serial bytes on {} (TX/RX as RTAC serial events)",
                        self.source
                    ),
                ),
                LineEncap::User0 => (
                    LINKTYPE_USER0,
                    "hsmon-line".to_string(),
                    format!("bytes on {} (inbound = rx, outbound = tx)", self.source),
                ),
            },
            Iface::Pdu => (
                LINKTYPE_WIRESHARK_UPPER_PDU,
                "hsmon-events".to_string(),
                format!("APDUs and events of {}", self.source),
            ),
        };
        let mut body = Vec::new();
        body.extend_from_slice(&linktype.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes()); // snaplen: no limit
        push_opt(&mut body, IF_NAME, name.as_bytes());
        push_opt(&mut body, IF_DESCRIPTION, desc.as_bytes());
        push_opt(&mut body, IF_TSRESOL, &[9]);
        push_opt(&mut body, OPT_END, &[]);
        write_block(out, BLOCK_IDB, &body)?;
        Ok(id)
    }

    fn packet(
        &mut self,
        out: &mut dyn Write,
        which: Iface,
        at_ns: u64,
        data: &[u8],
        flags: Option<u32>,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let id = self.iface(which, out)?;
        let ts = self.ts(at_ns);
        let mut body = Vec::with_capacity(data.len() + 64);
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(data);
        pad4(&mut body);
        if flags.is_some() || comment.is_some() {
            if let Some(f) = flags {
                push_opt(&mut body, EPB_FLAGS, &f.to_le_bytes());
            }
            if let Some(c) = comment {
                push_opt(&mut body, OPT_COMMENT, c.as_bytes());
            }
            push_opt(&mut body, OPT_END, &[]);
        }
        write_block(out, BLOCK_EPB, &body)
    }

    /// Line bytes received (`rx`) or sent, as this capture's [`LineEncap`]; returns packets.
    fn line(&mut self, out: &mut dyn Write, at: u64, rx: bool, b: &[u8]) -> io::Result<u64> {
        let flags = if rx { INBOUND } else { OUTBOUND };
        let mut n = 0;
        match self.encap {
            LineEncap::Iec104Tcp => {
                n += self.tcp_open(out, at)?;
                for chunk in b.chunks(TCP_MSS) {
                    let seg = self.tcp_segment(!rx, TCP_PSH | TCP_ACK, chunk);
                    self.packet(out, Iface::Bytes, at, &seg, Some(flags), None)?;
                    n += 1;
                }
            }
            LineEncap::RtacSerial => {
                let ts = self.ts(at);
                for chunk in b.chunks(MAX_PACKET) {
                    let mut p = Vec::with_capacity(chunk.len() + 12);
                    p.extend_from_slice(&((ts / 1_000_000_000) as u32).to_be_bytes());
                    p.extend_from_slice(&((ts % 1_000_000_000 / 1000) as u32).to_be_bytes());
                    p.push(if rx {
                        RTAC_DATA_RX_START
                    } else {
                        RTAC_DATA_TX_START
                    });
                    p.push(self.control_lines);
                    p.extend_from_slice(&[0, 0]); // footer
                    p.extend_from_slice(chunk);
                    self.packet(out, Iface::Bytes, at, &p, Some(flags), None)?;
                    n += 1;
                }
            }
            LineEncap::User0 => {
                for chunk in b.chunks(MAX_PACKET) {
                    self.packet(out, Iface::Bytes, at, chunk, Some(flags), None)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// SYN, SYN-ACK, ACK before the first bytes of a connection; returns packets.
    fn tcp_open(&mut self, out: &mut dyn Write, at: u64) -> io::Result<u64> {
        if self.flow.open {
            return Ok(0);
        }
        self.flow.open = true;
        let syn = self.tcp_segment(true, TCP_SYN, &[]);
        self.packet(out, Iface::Bytes, at, &syn, Some(OUTBOUND), None)?;
        let syn_ack = self.tcp_segment(false, TCP_SYN | TCP_ACK, &[]);
        self.packet(out, Iface::Bytes, at, &syn_ack, Some(INBOUND), None)?;
        let ack = self.tcp_segment(true, TCP_ACK, &[]);
        self.packet(out, Iface::Bytes, at, &ack, Some(OUTBOUND), None)?;
        Ok(3)
    }

    /// FIN from hsmon, FIN-ACK from the station, the last ACK; the next bytes open a new
    /// connection from the next port. Returns packets.
    fn tcp_close(&mut self, out: &mut dyn Write, at: u64) -> io::Result<u64> {
        if !self.flow.open {
            return Ok(0);
        }
        let fin = self.tcp_segment(true, TCP_FIN | TCP_ACK, &[]);
        self.packet(out, Iface::Bytes, at, &fin, Some(OUTBOUND), None)?;
        let fin_ack = self.tcp_segment(false, TCP_FIN | TCP_ACK, &[]);
        self.packet(out, Iface::Bytes, at, &fin_ack, Some(INBOUND), None)?;
        let ack = self.tcp_segment(true, TCP_ACK, &[]);
        self.packet(out, Iface::Bytes, at, &ack, Some(OUTBOUND), None)?;
        self.flow.open = false;
        self.flow.port = self.flow.port.checked_add(1).unwrap_or(HSMON_PORT);
        self.flow.seq_hsmon = self.flow.seq_hsmon.wrapping_add(0x0001_0000);
        self.flow.seq_station = self.flow.seq_station.wrapping_add(0x0001_0000);
        Ok(3)
    }

    /// One IPv4/TCP packet from hsmon (`from_hsmon`) or the station, advancing that side's
    /// sequence number by the payload (and by one for SYN and FIN).
    fn tcp_segment(&mut self, from_hsmon: bool, flags: u8, payload: &[u8]) -> Vec<u8> {
        let f = &mut self.flow;
        let (src, dst, sport, dport, seq, ack) = if from_hsmon {
            let ack = if flags & TCP_ACK != 0 {
                f.seq_station
            } else {
                0
            };
            (
                HSMON_ADDR,
                STATION_ADDR,
                f.port,
                IEC104_PORT,
                f.seq_hsmon,
                ack,
            )
        } else {
            (
                STATION_ADDR,
                HSMON_ADDR,
                IEC104_PORT,
                f.port,
                f.seq_station,
                f.seq_hsmon,
            )
        };
        let advance = payload.len() as u32 + u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
        if from_hsmon {
            f.seq_hsmon = f.seq_hsmon.wrapping_add(advance);
        } else {
            f.seq_station = f.seq_station.wrapping_add(advance);
        }
        f.ip_id = f.ip_id.wrapping_add(1);
        ipv4_tcp(f.ip_id, src, dst, sport, dport, seq, ack, flags, payload)
    }

    /// An event with no bytes of its own, as a text line Wireshark shows in order.
    fn text(&mut self, out: &mut dyn Write, at_ns: u64, text: &str) -> io::Result<()> {
        let mut line = text.as_bytes().to_vec();
        line.push(b'\n');
        let pdu = upper_pdu("data-text-lines", None, Some(("hsmon", text)), &line);
        self.packet(out, Iface::Pdu, at_ns, &pdu, None, Some(text))
    }
}

impl Exporter for PcapngExporter {
    fn begin(&mut self, h: &CaptureHeader, out: &mut dyn Write) -> io::Result<()> {
        let m = &h.meta;
        let mut comment = format!(
            "hsmon capture of {}, started {}",
            m.source,
            m.started_rfc3339()
        );
        if let Some(s) = m.settings {
            comment.push_str(&format!(", line {s}"));
        }
        let mut body = Vec::new();
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not given
        push_opt(&mut body, OPT_COMMENT, comment.as_bytes());
        push_opt(
            &mut body,
            SHB_USERAPPL,
            format!("hsmon {}", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        push_opt(&mut body, OPT_END, &[]);
        write_block(out, BLOCK_SHB, &body)
    }

    fn event(&mut self, rec: &Record, out: &mut dyn Write) -> io::Result<u64> {
        let at = duration_to_ns(rec.event.at);
        match &rec.event.event {
            Event::Rx(b) | Event::Tx(b) if b.is_empty() => Ok(0),
            Event::Rx(b) => self.line(out, at, true, b),
            Event::Tx(b) => self.line(out, at, false, b),
            Event::Connection(state) => {
                let mut n = 0;
                if self.encap == LineEncap::Iec104Tcp && *state != ConnectionState::Up {
                    n += self.tcp_close(out, at)?;
                }
                self.text(out, at, &text_without_time(rec))?;
                Ok(n + 1)
            }
            Event::LineSettings { modem, .. } => {
                self.control_lines = if modem.dtr == Some(true) { RTAC_DTR } else { 0 }
                    | if modem.rts == Some(true) { RTAC_RTS } else { 0 };
                self.text(out, at, &text_without_time(rec))?;
                Ok(1)
            }
            Event::Apdu(x) => {
                let sent = at.saturating_sub(duration_to_ns(x.duration));
                let note = match x.origin {
                    ApduOrigin::User => None,
                    o => Some(format!("sent by {}", o.label())),
                };
                let cmd = upper_pdu("iso7816", Some(P2P_DIR_SENT), None, &x.command);
                self.packet(out, Iface::Pdu, sent, &cmd, Some(OUTBOUND), note.as_deref())?;
                if x.response.is_empty() {
                    return Ok(1);
                }
                let resp = upper_pdu("iso7816", Some(P2P_DIR_RECV), None, &x.response);
                self.packet(out, Iface::Pdu, at, &resp, Some(INBOUND), None)?;
                Ok(2)
            }
            Event::Card(CardEvent::Inserted { atr, .. } | CardEvent::Connected { atr, .. })
                if !atr.is_empty() && self.atr_written.as_ref() != Some(atr) =>
            {
                let text = text_without_time(rec);
                let pdu = upper_pdu("iso7816", Some(P2P_DIR_RECV), None, atr);
                self.packet(out, Iface::Pdu, at, &pdu, Some(INBOUND), Some(&text))?;
                self.atr_written = Some(atr.clone());
                Ok(1)
            }
            Event::Card(CardEvent::Removed { .. }) => {
                self.atr_written = None;
                self.text(out, at, &text_without_time(rec))?;
                Ok(1)
            }
            _ => {
                self.text(out, at, &text_without_time(rec))?;
                Ok(1)
            }
        }
    }
}

/// RTAC serial event types and control-line bits (Wireshark's packet-rtacser.c).
const RTAC_DATA_TX_START: u8 = 0x01;
const RTAC_DATA_RX_START: u8 = 0x02;
const RTAC_RTS: u8 = 0x08;
const RTAC_DTR: u8 = 0x10;

/// An IPv4 header (RFC 791, no options, DF) and a TCP header (RFC 9293, no options, window
/// 65535), both with their checksums, then the payload.
#[allow(clippy::too_many_arguments)]
fn ipv4_tcp(
    id: u16,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let tcp_len = 20 + payload.len();
    let total = (20 + tcp_len) as u16;
    let mut p = Vec::with_capacity(20 + tcp_len);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    p.extend_from_slice(&[64, 6, 0, 0]); // TTL, TCP, checksum (below)
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let ip_sum = internet_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let t = p.len();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[5 << 4, flags]);
    p.extend_from_slice(&u16::MAX.to_be_bytes()); // window
    p.extend_from_slice(&[0, 0, 0, 0]); // checksum (below), urgent pointer
    p.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    let tcp_sum = internet_checksum(&[&pseudo, &p[t..]]);
    p[t + 16..t + 18].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// The one's-complement sum of RFC 1071 over the concatenated parts (each even-length but
/// the last).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for w in part.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            sum += hi | w.get(1).map_or(0, |&b| u32::from(b));
        }
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An exported-PDU packet: dissector name, optional direction and column texts, end tag,
/// then the PDU bytes. TLV lengths are the exact value lengths (no padding), as verified.
fn upper_pdu(dissector: &str, dir: Option<u32>, cols: Option<(&str, &str)>, pdu: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(pdu.len() + 48);
    push_tlv_be(&mut b, EXP_PDU_TAG_DISSECTOR_NAME, dissector.as_bytes());
    if let Some(d) = dir {
        push_tlv_be(&mut b, EXP_PDU_TAG_P2P_DIRECTION, &d.to_be_bytes());
    }
    if let Some((proto, info)) = cols {
        push_tlv_be(&mut b, EXP_PDU_TAG_COL_PROT_TEXT, proto.as_bytes());
        push_tlv_be(&mut b, EXP_PDU_TAG_COL_INFO_TEXT, info.as_bytes());
    }
    push_tlv_be(&mut b, EXP_PDU_TAG_END_OF_OPT, &[]);
    b.extend_from_slice(pdu);
    b
}

fn push_tlv_be(b: &mut Vec<u8>, tag: u16, value: &[u8]) {
    // A TLV length is 16 bits: longer texts are cut (they are only column text).
    let v = &value[..value.len().min(u16::MAX as usize)];
    b.extend_from_slice(&tag.to_be_bytes());
    b.extend_from_slice(&(v.len() as u16).to_be_bytes());
    b.extend_from_slice(v);
}

/// A pcapng option: code, length (both u16 LE), value padded to 32 bits.
fn push_opt(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    let v = &value[..value.len().min(u16::MAX as usize - 3)];
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(v.len() as u16).to_le_bytes());
    b.extend_from_slice(v);
    pad4(b);
}

fn pad4(b: &mut Vec<u8>) {
    while b.len() % 4 != 0 {
        b.push(0);
    }
}

/// A block: type, total length, body (a multiple of 4 bytes), total length again.
fn write_block(out: &mut dyn Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total = u32::try_from(body.len() + 12).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "a packet too large for pcapng")
    })?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upper_pdu_matches_the_verified_layout() {
        // Wireshark's exported_pdu tags: 00 0C 00 07 "iso7816", 00 23 00 04 <u32 BE>, 00 00 00 00, bytes.
        let b = upper_pdu("iso7816", Some(P2P_DIR_RECV), None, &[0x6A, 0x82]);
        let mut want = vec![0x00, 0x0C, 0x00, 0x07];
        want.extend_from_slice(b"iso7816");
        want.extend_from_slice(&[0x00, 0x23, 0x00, 0x04, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0x6A, 0x82]);
        assert_eq!(b, want);
    }

    #[test]
    fn internet_checksum_known_answer() {
        // RFC 1071 §3's example: the sum is 0xDDF2, the checksum its complement.
        let b = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7];
        assert_eq!(internet_checksum(&[&b]), !0xDDF2);
        // Split anywhere even, the same.
        assert_eq!(internet_checksum(&[&b[..2], &b[2..]]), !0xDDF2);
    }

    #[test]
    fn ipv4_tcp_headers_check_out() {
        let p = ipv4_tcp(
            7,
            HSMON_ADDR,
            STATION_ADDR,
            49_152,
            2404,
            1,
            2,
            TCP_ACK,
            b"abc",
        );
        assert_eq!(p.len(), 43);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 43);
        // A header whose checksum is right sums to zero (complement 0).
        assert_eq!(internet_checksum(&[&p[..20]]), 0);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, 6, 0, 23]);
        assert_eq!(internet_checksum(&[&pseudo, &p[20..]]), 0);
    }

    #[test]
    fn the_line_encapsulation_rule() {
        let startdt = [0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
        let con = [0x68, 0x04, 0x0B, 0x00, 0x00, 0x00];
        // By the session: hsmon tcp to port 2404, bytes or not.
        assert_eq!(
            LineEncap::choose("tcp 10.0.0.5:2404", &[], &[]),
            LineEncap::Iec104Tcp
        );
        // By the bytes, from any source; a cut last APDU is fine.
        assert_eq!(
            LineEncap::choose("/dev/ttyUSB0", &con, &[&startdt[..], &con[..4]].concat()),
            LineEncap::Iec104Tcp
        );
        assert_eq!(
            LineEncap::choose("tcp 10.0.0.5:2405", &con, &startdt),
            LineEncap::Iec104Tcp
        );
        // FT1.2 (IEC 101, M-Bus) starts with 0x68 too, but is not 104 end to end.
        let ft12 = [
            0x68, 0x09, 0x09, 0x68, 0x73, 0x01, 0x64, 0x01, 0x06, 0x01, 0x00, 0x00, 0x14, 0xF4,
            0x16,
        ];
        assert_eq!(
            LineEncap::choose("serial /dev/ttyS0", &[], &ft12),
            LineEncap::RtacSerial
        );
        // 104 in one direction, something else in the other: not 104.
        assert_eq!(
            LineEncap::choose("rfc2217://pi:7000", &con, b"hello"),
            LineEncap::RtacSerial
        );
        // Nothing at all from a serial line: serial; a tcp session that is not 104: USER0.
        assert_eq!(
            LineEncap::choose("/dev/ttyS0", &[], &[]),
            LineEncap::RtacSerial
        );
        assert_eq!(
            LineEncap::choose("tcp 10.0.0.5:4001", &ft12, &[]),
            LineEncap::User0
        );
    }

    #[test]
    fn blocks_are_32_bit_aligned_and_framed() {
        let mut out = Vec::new();
        let mut body = vec![1, 2, 3, 4, 5];
        pad4(&mut body);
        write_block(&mut out, BLOCK_EPB, &body).unwrap();
        assert_eq!(out.len(), 20);
        assert_eq!(&out[4..8], &20u32.to_le_bytes());
        assert_eq!(&out[16..20], &20u32.to_le_bytes());
    }
}
