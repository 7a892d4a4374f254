//! pcapng for Wireshark, written by hand (SHB, IDB and EPB blocks are all it takes; the
//! `pcap-file` crate would add a dependency for ~100 lines and still leave the upper-PDU
//! records to us).
//!
//! - APDUs and ATRs: LINKTYPE_WIRESHARK_UPPER_PDU (252) packets tagged with the dissector name
//!   `iso7816` and the direction (0 = command, 1 = response/ATR) — the layout verified with
//!   tshark 4.0 in `reference/pcsc.md`; command and response are separate packets.
//! - Serial and TCP bytes: LINKTYPE_USER0 (147), one packet per received or sent chunk, the
//!   device bytes unwrapped, direction in the EPB flags (inbound = rx, outbound = tx). USER0
//!   because Wireshark's DLT_USER preference then lets a user run any dissector on them
//!   (`-o 'uat:user_dlts:"User 0 (DLT=147)","mbus","0","","0",""'`); unconfigured, Wireshark
//!   shows the bytes as data with a hint naming that preference.
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
use crate::capture::format::duration_to_ns;
use crate::capture::reader::{CaptureHeader, Record};
use crate::event::{ApduOrigin, CardEvent, Event};

pub const LINKTYPE_USER0: u16 = 147;
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
}

impl PcapngExporter {
    pub fn new(h: &CaptureHeader) -> PcapngExporter {
        PcapngExporter {
            start_ns: h.meta.started_unix_ns,
            source: h.meta.source.clone(),
            bytes_id: None,
            pdu_id: None,
            next_id: 0,
            atr_written: None,
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
            Iface::Bytes => (
                LINKTYPE_USER0,
                "hsmon-line".to_string(),
                format!("bytes on {} (inbound = rx, outbound = tx)", self.source),
            ),
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
            Event::Rx(b) | Event::Tx(b) => {
                let flags = match rec.event.event {
                    Event::Rx(_) => INBOUND,
                    _ => OUTBOUND,
                };
                let mut n = 0;
                for chunk in b.chunks(MAX_PACKET) {
                    self.packet(out, Iface::Bytes, at, chunk, Some(flags), None)?;
                    n += 1;
                }
                Ok(n)
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
        // reference/pcsc.md: 00 0C 00 07 "iso7816", 00 23 00 04 <u32 BE>, 00 00 00 00, bytes.
        let b = upper_pdu("iso7816", Some(P2P_DIR_RECV), None, &[0x6A, 0x82]);
        let mut want = vec![0x00, 0x0C, 0x00, 0x07];
        want.extend_from_slice(b"iso7816");
        want.extend_from_slice(&[0x00, 0x23, 0x00, 0x04, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0x6A, 0x82]);
        assert_eq!(b, want);
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
