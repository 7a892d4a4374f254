//! The `.hscap` bytes on disk: the file header (magic, version, session metadata) and the
//! record frame (sync marker, length, kind, time, payload, CRC). `docs/capture-format.md` is the
//! prose version of this file; change both together.
//!
//! Everything is little-endian. A record is framed so that a reader can tell a complete record
//! from a torn or damaged one, and can find the next good record after damage by scanning for
//! [`SYNC`] and checking length and CRC.

use crate::event::LineSettings;

use super::codec::{self, Kind};
use super::meta::CaptureMeta;

/// The first 8 bytes of every capture: `\x89 H S C A P \r \n`. The high-bit first byte catches
/// 7-bit transfers, the CR LF pair catches line-ending conversion (as PNG's signature does).
pub const MAGIC: [u8; 8] = [0x89, b'H', b'S', b'C', b'A', b'P', b'\r', b'\n'];

/// The format this hsmon writes. A reader accepts any minor version of a major it knows
/// (minor versions only add record kinds or trailing fields, which older readers skip), and
/// refuses a newer major with [`super::CaptureError::NewerVersion`].
pub const VERSION_MAJOR: u16 = 1;
pub const VERSION_MINOR: u16 = 0;

/// Bytes before the metadata: magic, major, minor, metadata length.
pub const HEADER_FIXED: usize = 16;

/// A metadata block larger than this is taken as damage, not as metadata.
pub const MAX_META: usize = 1 << 20;

/// Every record starts with these four bytes. Chosen to be neither ASCII nor a value the
/// protocols hsmon decodes give meaning to (0x68, 0x10, 0x00, 0xFF ...); a false match inside a
/// payload is still possible and is rejected by the length and CRC checks.
pub const SYNC: [u8; 4] = [0xC7, 0x5E, 0xA1, 0x9B];

/// Sync marker and length field.
pub const RECORD_PREFIX: usize = 8;
/// Kind (u16) and time (u64 ns): the part of the body every record has.
pub const BODY_FIXED: usize = 10;
/// The CRC after the body.
pub const RECORD_SUFFIX: usize = 4;
/// Bytes a record takes on disk besides its payload.
pub const RECORD_OVERHEAD: usize = RECORD_PREFIX + BODY_FIXED + RECORD_SUFFIX;

/// The largest body a reader accepts (a larger length field is damage). The writer splits
/// longer Rx/Tx chunks so it never writes one.
pub const MAX_BODY: usize = 16 << 20;
/// The largest payload that fits under [`MAX_BODY`].
pub const MAX_PAYLOAD: usize = MAX_BODY - BODY_FIXED;

/// Metadata tags (tag u16, length u32, value). Unknown tags are skipped by readers.
pub mod tag {
    /// What was recorded, UTF-8 ("serial /dev/ttyUSB0", "demo tour").
    pub const SOURCE: u16 = 1;
    /// The hsmon version that wrote the file, UTF-8 ("0.1.0").
    pub const HSMON_VERSION: u16 = 2;
    /// Wall-clock time of the session start: i64 nanoseconds since 1970-01-01T00:00:00Z.
    pub const STARTED_UNIX_NS: u16 = 3;
    /// The line settings at the start, encoded as a LineSettings record payload.
    pub const LINE_SETTINGS: u16 = 4;
}

/// The full header for `meta`: magic, version, metadata TLVs and the header CRC.
pub fn encode_header(meta: &CaptureMeta) -> Vec<u8> {
    let mut m = Vec::new();
    push_tlv(&mut m, tag::SOURCE, meta.source.as_bytes());
    push_tlv(&mut m, tag::HSMON_VERSION, meta.hsmon_version.as_bytes());
    push_tlv(
        &mut m,
        tag::STARTED_UNIX_NS,
        &meta.started_unix_ns.to_le_bytes(),
    );
    if let Some(s) = meta.settings {
        let mut v = Vec::new();
        codec::encode_settings(&s, &crate::event::ModemLines::default(), &mut v);
        push_tlv(&mut m, tag::LINE_SETTINGS, &v);
    }
    // A metadata block over MAX_META would be refused by readers: drop the source text (the
    // only unbounded field) rather than write an unreadable file.
    if m.len() > MAX_META {
        m.clear();
        push_tlv(&mut m, tag::SOURCE, b"(source name too long)");
        push_tlv(&mut m, tag::HSMON_VERSION, meta.hsmon_version.as_bytes());
        push_tlv(
            &mut m,
            tag::STARTED_UNIX_NS,
            &meta.started_unix_ns.to_le_bytes(),
        );
    }
    let mut h = Vec::with_capacity(HEADER_FIXED + m.len() + 4);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    h.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    h.extend_from_slice(&(m.len() as u32).to_le_bytes());
    h.extend_from_slice(&m);
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Why a header could not be read (the reader turns these into [`super::CaptureError`]s with
/// the file name and the fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Fewer bytes than the header needs; `need` is known once the fixed part is there.
    Truncated {
        have: usize,
        need: usize,
    },
    NotACapture,
    /// The magic matches except for CR LF → LF (or similar): a text-mode transfer.
    LineEndings,
    NewerVersion {
        major: u16,
        minor: u16,
    },
    Corrupt(String),
}

/// The fixed part of a header: returns the total header length (fixed + metadata + CRC).
pub fn header_len(fixed: &[u8]) -> Result<usize, HeaderProblem> {
    let have = fixed.len();
    let magic_part = &fixed[..have.min(MAGIC.len())];
    if magic_part != &MAGIC[..magic_part.len()] {
        // "\x89HSCAP\n" (CR dropped) or "\x89HSCAP\r\r\n" (LF expanded).
        if fixed.starts_with(&MAGIC[..6]) {
            return Err(HeaderProblem::LineEndings);
        }
        return Err(HeaderProblem::NotACapture);
    }
    if have < HEADER_FIXED {
        return Err(HeaderProblem::Truncated {
            have,
            need: HEADER_FIXED,
        });
    }
    let major = u16::from_le_bytes([fixed[8], fixed[9]]);
    let minor = u16::from_le_bytes([fixed[10], fixed[11]]);
    if major == 0 {
        return Err(HeaderProblem::Corrupt("format version 0".into()));
    }
    if major > VERSION_MAJOR {
        return Err(HeaderProblem::NewerVersion { major, minor });
    }
    let meta_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
    if meta_len > MAX_META {
        return Err(HeaderProblem::Corrupt(format!(
            "metadata length {meta_len} exceeds {MAX_META}"
        )));
    }
    Ok(HEADER_FIXED + meta_len + 4)
}

/// The length a header would have in this format, whatever its version field says: to tell a
/// damaged version field from a newer file ([`version_damaged`]).
pub fn len_ignoring_version(fixed: &[u8]) -> Option<usize> {
    let meta_len = u32::from_le_bytes(fixed.get(12..16)?.try_into().ok()?) as usize;
    (meta_len <= MAX_META).then_some(HEADER_FIXED + meta_len + 4)
}

/// Whether a header that reads as a newer major version is in fact this format with a damaged
/// version field: its checksum fails as it is and matches once the major is ours. (A file from
/// a newer hsmon has a checksum of its own that matches.)
pub fn version_damaged(h: &[u8]) -> bool {
    let Some(need) = h.get(..HEADER_FIXED).and_then(len_ignoring_version) else {
        return false;
    };
    let Some(h) = h.get(..need) else {
        return false;
    };
    let (body, crc) = h.split_at(need - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let mut ours = body.to_vec();
    ours[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    crc32fast::hash(body) != stored && crc32fast::hash(&ours) == stored
}

/// A whole header (as long as [`header_len`] said): checks the CRC and reads the metadata.
pub fn decode_header(h: &[u8]) -> Result<(CaptureMeta, (u16, u16)), HeaderProblem> {
    let need = header_len(h)?;
    if h.len() < need {
        return Err(HeaderProblem::Truncated {
            have: h.len(),
            need,
        });
    }
    let body = &h[..need - 4];
    let stored = u32::from_le_bytes([h[need - 4], h[need - 3], h[need - 2], h[need - 1]]);
    let crc = crc32fast::hash(body);
    if crc != stored {
        return Err(HeaderProblem::Corrupt(format!(
            "header CRC {crc:08x}, stored {stored:08x}"
        )));
    }
    let version = (
        u16::from_le_bytes([h[8], h[9]]),
        u16::from_le_bytes([h[10], h[11]]),
    );
    let mut meta = CaptureMeta {
        source: String::new(),
        settings: None,
        hsmon_version: String::new(),
        started_unix_ns: 0,
    };
    let mut m = &body[HEADER_FIXED..];
    while !m.is_empty() {
        if m.len() < 6 {
            return Err(HeaderProblem::Corrupt("metadata field cut short".into()));
        }
        let t = u16::from_le_bytes([m[0], m[1]]);
        let len = u32::from_le_bytes([m[2], m[3], m[4], m[5]]) as usize;
        let Some(value) = m.get(6..6usize.saturating_add(len)) else {
            return Err(HeaderProblem::Corrupt(format!(
                "metadata field {t} runs past the header"
            )));
        };
        match t {
            tag::SOURCE => meta.source = String::from_utf8_lossy(value).into_owned(),
            tag::HSMON_VERSION => meta.hsmon_version = String::from_utf8_lossy(value).into_owned(),
            tag::STARTED_UNIX_NS => {
                let b: [u8; 8] = value
                    .try_into()
                    .map_err(|_| HeaderProblem::Corrupt("start time is not 8 bytes".into()))?;
                meta.started_unix_ns = i64::from_le_bytes(b);
            }
            tag::LINE_SETTINGS => {
                meta.settings = Some(settings_from(value).ok_or_else(|| {
                    HeaderProblem::Corrupt("initial line settings unreadable".into())
                })?);
            }
            _ => {} // a later minor version's field
        }
        m = &m[6 + len..];
    }
    Ok((meta, version))
}

fn settings_from(value: &[u8]) -> Option<LineSettings> {
    match codec::decode_payload(Kind::LineSettings as u16, value) {
        Ok(crate::event::Event::LineSettings { settings, .. }) => Some(settings),
        _ => None,
    }
}

/// Appends one framed record (sync, length, kind, time, payload, CRC) to `out`. The payload
/// must be at most [`MAX_PAYLOAD`] bytes (the writer makes sure of it).
pub fn push_record(out: &mut Vec<u8>, kind: u16, at_ns: u64, payload: &[u8]) {
    let start = out.len();
    let body_len = (BODY_FIXED + payload.len()) as u32;
    out.extend_from_slice(&SYNC);
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 4..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The on-disk length of the record whose first [`RECORD_PREFIX`] bytes are `prefix`, if they
/// look like a record start (sync marker and a length in range).
pub fn record_len(prefix: &[u8]) -> Option<usize> {
    let p = prefix.get(..RECORD_PREFIX)?;
    if p[..4] != SYNC {
        return None;
    }
    let body = u32::from_le_bytes([p[4], p[5], p[6], p[7]]) as usize;
    (BODY_FIXED..=MAX_BODY)
        .contains(&body)
        .then_some(RECORD_PREFIX + body + RECORD_SUFFIX)
}

/// What the bytes at a position hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A complete record with a good CRC: `len` bytes on disk in all.
    Valid { kind: u16, at_ns: u64, len: usize },
    /// A plausible start whose end lies past the available bytes (a torn tail, or a record
    /// still being written).
    Incomplete,
    /// Not a record start.
    Invalid(&'static str),
}

/// Checks the bytes at the start of `b` (which may hold more than one record).
pub fn probe(b: &[u8]) -> Probe {
    if b.len() < RECORD_PREFIX {
        let n = b.len().min(SYNC.len());
        return if b[..n] == SYNC[..n] {
            Probe::Incomplete
        } else {
            Probe::Invalid("no record marker")
        };
    }
    if b[..4] != SYNC {
        return Probe::Invalid("no record marker");
    }
    let body = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if !(BODY_FIXED..=MAX_BODY).contains(&body) {
        return Probe::Invalid("record length out of range");
    }
    let len = RECORD_PREFIX + body + RECORD_SUFFIX;
    if b.len() < len {
        return Probe::Incomplete;
    }
    let end = RECORD_PREFIX + body;
    let stored = u32::from_le_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
    if crc32fast::hash(&b[4..end]) != stored {
        return Probe::Invalid("CRC mismatch");
    }
    let kind = u16::from_le_bytes([b[8], b[9]]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[10..18]);
    Probe::Valid {
        kind,
        at_ns: u64::from_le_bytes(t),
        len,
    }
}

/// The payload of a record that [`probe`] found valid (`b` starts at the record).
pub fn payload(b: &[u8], len: usize) -> &[u8] {
    b.get(RECORD_PREFIX + BODY_FIXED..len - RECORD_SUFFIX)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_record_probes_valid_and_a_damaged_one_does_not() {
        let mut b = Vec::new();
        push_record(&mut b, 1, 42, b"\x68\x04");
        assert_eq!(b.len(), RECORD_OVERHEAD + 2);
        assert_eq!(
            probe(&b),
            Probe::Valid {
                kind: 1,
                at_ns: 42,
                len: b.len()
            }
        );
        assert_eq!(payload(&b, b.len()), b"\x68\x04");
        for cut in 0..b.len() {
            assert_eq!(probe(&b[..cut]), Probe::Incomplete, "cut at {cut}");
        }
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x01;
            assert!(
                !matches!(probe(&d), Probe::Valid { .. }),
                "flip at {i} accepted"
            );
        }
    }

    #[test]
    fn the_documented_example_record() {
        // docs/capture-format.md: Tx `10 5B 01 5C 16` (M-Bus REQ_UD2) at 1.5 ms.
        let mut b = Vec::new();
        push_record(&mut b, 2, 1_500_000, &[0x10, 0x5B, 0x01, 0x5C, 0x16]);
        let want = [
            0xC7, 0x5E, 0xA1, 0x9B, 0x0F, 0x00, 0x00, 0x00, 0x02, 0x00, 0x60, 0xE3, 0x16, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x10, 0x5B, 0x01, 0x5C, 0x16, 0xE1, 0x39, 0x5E, 0xD9,
        ];
        assert_eq!(b, want);
    }

    #[test]
    fn header_round_trips_and_names_its_problems() {
        let meta = CaptureMeta {
            source: "serial /dev/ttyUSB0".into(),
            settings: Some(LineSettings::default()),
            hsmon_version: "0.1.0".into(),
            started_unix_ns: 1_700_000_000_123_456_789,
        };
        let h = encode_header(&meta);
        assert_eq!(header_len(&h[..HEADER_FIXED]).unwrap(), h.len());
        assert_eq!(decode_header(&h).unwrap(), (meta, (1, 0)));

        assert_eq!(
            header_len(b"GIF89a..........").unwrap_err(),
            HeaderProblem::NotACapture
        );
        let mut crlf = h.clone();
        crlf.remove(6); // CR dropped by a text-mode copy
        assert_eq!(header_len(&crlf).unwrap_err(), HeaderProblem::LineEndings);
        let mut newer = h.clone();
        newer[8] = 2;
        assert_eq!(
            header_len(&newer).unwrap_err(),
            HeaderProblem::NewerVersion { major: 2, minor: 0 }
        );
        let mut bad = h.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xFF;
        assert!(matches!(
            decode_header(&bad).unwrap_err(),
            HeaderProblem::Corrupt(_)
        ));
        assert!(matches!(
            header_len(&h[..5]).unwrap_err(),
            HeaderProblem::Truncated { have: 5, .. }
        ));
    }
}
