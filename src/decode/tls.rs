//! TLS record headers (content type, version, length; handshake type, alert level and
//! description) and plain-HTTP start lines, the usual answer where TLS was expected.
//!
//! Facts: RFC 8446 §5.1, RFC 5246 §6.2.1 (content types from Linux `include/net/tls_prot.h`; OpenSSL record
//! checks and error texts); alert descriptions from `tls_prot.h`/RFC 8446 as listed by the
//! w5500-tls docs; handshake types from the IANA registry as listed by tls-parser.

use wide::u8x16;

use super::frame::{Field, Frame, FrameStatus, Framer, Protocol, StreamOffset};
use super::stream::{
    Lanes, ParseStep, Streamer, WindowParser, escape_ascii, find_starts, framer_from_streamer,
    lanes_between, lanes_eq, span,
};

/// Record header: type, version (2), length (2).
const HEADER: usize = 5;
/// Largest record length a peer may send: 2^14 bytes of plaintext plus 2048 of expansion.
const MAX_RECORD: u16 = (1 << 14) + 2048;
/// Approximate OpenSSL ≥ 3.2 read buffer for a record body (16384 + 320, RFC 8446 §5.1, RFC 5246 §6.2.1):
/// a "length" above it gives "packet length too long" before the version is checked.
const OPENSSL_READ_LIMIT: u16 = 16384 + 320;
/// Longest HTTP start line framed.
const MAX_LINE: usize = 8192;

fn content_type_name(content_type: u8) -> Option<&'static str> {
    Some(match content_type {
        0x14 => "change_cipher_spec",
        0x15 => "alert",
        0x16 => "handshake",
        0x17 => "application_data",
        0x18 => "heartbeat",
        0x19 => "tls12_cid",
        0x1A => "ack",
        _ => return None,
    })
}

fn version_name(minor: u8) -> &'static str {
    match minor {
        0 => "SSL 3.0",
        1 => "TLS 1.0",
        2 => "TLS 1.1",
        3 => "TLS 1.2",
        _ => "TLS 1.3",
    }
}

fn handshake_name(message: u8) -> Option<&'static str> {
    Some(match message {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        3 => "HelloVerifyRequest",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        6 => "HelloRetryRequest",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        254 => "MessageHash",
        _ => return None,
    })
}

fn alert_name(description: u8) -> Option<&'static str> {
    Some(match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}

/// Streaming TLS record framer: kind "record", spanning header and body. Bodies are skipped
/// without being buffered; pending input ≤ 9 bytes.
pub struct TlsFramer {
    streamer: Streamer<TlsParser>,
}

impl TlsFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        TlsFramer {
            streamer: Streamer::new(TlsParser),
        }
    }
}

impl Default for TlsFramer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(TlsFramer);

struct TlsParser;

impl WindowParser for TlsParser {
    const PROTOCOL: Protocol = Protocol::Tls;
    // Header plus the first four body bytes (handshake type and length).
    const MAX_WINDOW: usize = HEADER + 4;

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        // Content types 0x14..=0x1A, followed by major version 3.
        find_starts(bytes, 1, record_hits, is_record_start)
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        record(at, window, at_end)
    }
}

/// [`is_record_start`] for sixteen positions at a time (see [`find_starts`]).
fn record_hits(lanes: &Lanes<'_>) -> u8x16 {
    lanes_between(lanes.at(0), 0x13, 0x1B) & lanes_eq(lanes.at(1), 3)
}

/// Can a record start at `rest[0]`? Content types 0x14..=0x1A, followed by major version 3.
fn is_record_start(rest: &[u8]) -> bool {
    matches!(rest, [0x14..=0x1A] | [0x14..=0x1A, 3, ..])
}

/// Decode the TLS record header at the start of `bytes` (first byte at stream offset `base`).
/// The frame spans the whole record; if `bytes` ends earlier it is `Truncated`.
pub fn parse_record(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    match record(base, bytes, true) {
        ParseStep::Frame { frame, .. } => Some(frame),
        ParseStep::FrameWithBody {
            frame,
            consumed,
            body,
        } => {
            let available = bytes.len().saturating_sub(consumed) as u64;
            if body <= available {
                Some(frame)
            } else {
                Some(super::stream::truncate_frame(frame, body - available))
            }
        }
        _ => None,
    }
}

fn record(at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
    let Some(&[content_type, major, minor, high, low]) = window.get(..HEADER) else {
        // The header is too short to tell a record from any other byte.
        let prefix_fits =
            window.get(1).is_none_or(|&m| m == 3) && window.get(2).is_none_or(|&m| m <= 4);
        return if at_end || !prefix_fits {
            ParseStep::Skip(1)
        } else {
            ParseStep::Need
        };
    };
    // Unknown is not absent, except here: a record header has no check value, and its
    // content type is most of what tells it from any five bytes (03 and a minor ≤ 4 are
    // ~11 bits). RFC 8446 §5 answers an unknown content type with unexpected_message, so a
    // peer that sends one is not speaking TLS anyway: such bytes stay unframed.
    let Some(type_name) = content_type_name(content_type) else {
        return ParseStep::Skip(1);
    };
    if major != 3 || minor > 4 {
        return ParseStep::Skip(1);
    }
    let length = u16::from_be_bytes([high, low]);
    let fields = vec![
        Field::new(
            "type",
            format!("0x{content_type:02X} {type_name}"),
            span(at, 0, 1),
        ),
        Field::new(
            "version",
            format!("03 {minor:02X} ({})", version_name(minor)),
            span(at, 1, 2),
        ),
        Field::new("length", format!("{length} bytes"), span(at, 3, 2)),
    ];
    let version = version_name(minor);
    if length > MAX_RECORD {
        let why = format!(
            "record length {length} exceeds 2^14 + 2048 = {MAX_RECORD} (OpenSSL: record overflow / packet length too long)"
        );
        let summary = format!("{version} {type_name} record — {why}");
        let frame = Frame::new(
            Protocol::Tls,
            span(at, 0, HEADER),
            "record",
            FrameStatus::Malformed(why),
            summary,
            fields,
        );
        return ParseStep::Frame { frame, consumed: 1 };
    }
    let body_len = usize::from(length);
    let peek_len = match content_type {
        0x16 => 4,
        0x15 => 2,
        0x14 => 1,
        _ => 0,
    }
    .min(body_len);
    let Some(peek) = window.get(HEADER..HEADER + peek_len) else {
        if !at_end {
            return ParseStep::Need;
        }
        let seen = window.get(HEADER..).unwrap_or_default();
        return with_body(at, content_type, version, length, seen, fields);
    };
    with_body(at, content_type, version, length, peek, fields)
}

/// Finish a record frame from the first body bytes that are present (`peek`).
fn with_body(
    at: StreamOffset,
    content_type: u8,
    version: &str,
    length: u16,
    peek: &[u8],
    mut fields: Vec<Field>,
) -> ParseStep {
    let body_len = usize::from(length);
    let type_name = content_type_name(content_type).unwrap_or("record");
    let mut status = FrameStatus::Ok;
    let mut summary = format!("{version} {type_name}");
    match content_type {
        0x16 => {
            if let Some(&message) = peek.first() {
                match handshake_name(message) {
                    Some(name) => {
                        summary = format!("{version} handshake {name}");
                        fields.push(Field::new(
                            "handshake type",
                            format!("{message} {name}"),
                            span(at, HEADER, 1),
                        ));
                    }
                    None => {
                        summary = format!("{version} handshake (type {message}, likely encrypted)");
                        fields.push(Field::new(
                            "handshake type",
                            format!("{message} (likely encrypted)"),
                            span(at, HEADER, 1),
                        ));
                    }
                }
                if let Some(&[_, l0, l1, l2]) = peek.get(..4) {
                    let message_len = u32::from_be_bytes([0, l0, l1, l2]);
                    fields.push(Field::new(
                        "handshake length",
                        format!("{message_len} bytes"),
                        span(at, HEADER + 1, 3),
                    ));
                }
            }
        }
        0x15 => match peek {
            &[level, description] if body_len == 2 => {
                let level_name = match level {
                    1 => "warning",
                    2 => "fatal",
                    _ => "unknown level",
                };
                let name = match alert_name(description) {
                    Some(name) => name.to_string(),
                    None => format!("unknown description 0x{description:02X}"),
                };
                summary = format!("{version} alert: {level_name} {name} ({description})");
                fields.push(Field::new(
                    "level",
                    format!("{level} {level_name}"),
                    span(at, HEADER, 1),
                ));
                fields.push(Field::new(
                    "description",
                    format!("{description} {name}"),
                    span(at, HEADER + 1, 1),
                ));
            }
            _ => summary = format!("{version} alert ({body_len} bytes, likely encrypted)"),
        },
        0x14 if peek.first().is_some_and(|&b| b != 1) || (body_len != 1 && !peek.is_empty()) => {
            status = FrameStatus::Malformed(format!(
                "change_cipher_spec must carry the single byte 01 ({body_len} bytes here)"
            ));
        }
        _ => {}
    }
    if body_len == 0 && matches!(content_type, 0x14..=0x16) {
        status = FrameStatus::Malformed(format!("empty {type_name} record"));
    }
    if content_type != 0x15 && content_type != 0x16 {
        summary.push_str(&format!(" ({body_len} bytes)"));
    }
    if body_len > 0 {
        fields.push(Field::new(
            "fragment",
            format!("{body_len} bytes"),
            span(at, HEADER, body_len),
        ));
    }
    if let FrameStatus::Malformed(why) = &status {
        summary.push_str(" — ");
        summary.push_str(why);
    }
    let frame = Frame::new(
        Protocol::Tls,
        span(at, 0, HEADER + body_len),
        "record",
        status,
        summary,
        fields,
    );
    ParseStep::FrameWithBody {
        frame,
        consumed: HEADER,
        body: length as u64,
    }
}

/// Streaming plain-HTTP start-line framer: kinds "status" (`HTTP/1.x NNN reason`) and
/// "request" (`METHOD target HTTP/1.x`). Pending input ≤ 8 KiB.
pub struct HttpFramer {
    streamer: Streamer<HttpParser>,
}

impl HttpFramer {
    /// A framer with nothing pending, ready for the first byte of a stream.
    pub fn new() -> Self {
        HttpFramer {
            streamer: Streamer::new(HttpParser),
        }
    }
}

impl Default for HttpFramer {
    fn default() -> Self {
        Self::new()
    }
}

framer_from_streamer!(HttpFramer);

/// [`is_line_start`] for sixteen positions at a time (see [`find_starts`]): all first letters
/// lie in 'C'..='T' and all second ones in 'A'..='U'.
fn line_hits(lanes: &Lanes<'_>) -> u8x16 {
    lanes_between(lanes.at(0), b'B', b'U') & lanes_between(lanes.at(1), b'@', b'V')
}

/// Can a start line begin at `rest[0]`? The first two letters of "HTTP/" or of a method.
fn is_line_start(rest: &[u8]) -> bool {
    matches!(
        rest,
        [b'H' | b'G' | b'P' | b'D' | b'O' | b'T' | b'C']
            | [b'H', b'T', ..]
            | [b'G' | b'D', b'E', ..]
            | [b'P', b'O' | b'U' | b'A', ..]
            | [b'O', b'P', ..]
            | [b'T', b'R', ..]
            | [b'C', b'O', ..]
    )
}

struct HttpParser;

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

impl WindowParser for HttpParser {
    const PROTOCOL: Protocol = Protocol::Http;
    const MAX_WINDOW: usize = MAX_LINE;

    fn next_candidate(&self, _at: StreamOffset, bytes: &[u8]) -> Option<usize> {
        find_starts(bytes, 1, line_hits, is_line_start)
    }

    fn parse(&mut self, at: StreamOffset, window: &[u8], at_end: bool) -> ParseStep {
        let window = window.get(..MAX_LINE).unwrap_or(window);
        match start_line(at, window, at_end) {
            Line::Need => ParseStep::Need,
            Line::No => ParseStep::Skip(1),
            Line::Frame(frame) => {
                let consumed = (frame.span.end - frame.span.start) as usize;
                ParseStep::Frame { frame, consumed }
            }
        }
    }
}

enum Line {
    Need,
    No,
    Frame(Frame),
}

/// Decode an HTTP status or request line at the start of `bytes` (first byte at `base`).
pub fn parse_http(base: StreamOffset, bytes: &[u8]) -> Option<Frame> {
    let window = bytes.get(..MAX_LINE).unwrap_or(bytes);
    match start_line(base, window, true) {
        Line::Frame(frame) => Some(frame),
        _ => None,
    }
}

/// Compare `window` with `expected` as far as both go: `Some(true)` all of `expected`
/// matched, `Some(false)` a mismatch, `None` the window ended first.
fn prefix(window: &[u8], expected: &[u8]) -> Option<bool> {
    let matched = window
        .iter()
        .zip(expected)
        .take_while(|(a, b)| a == b)
        .count();
    if matched == expected.len() {
        Some(true)
    } else if matched == window.len() {
        None
    } else {
        Some(false)
    }
}

/// "HTTP/1.x" at the start of `bytes`: `Some(Some(minor))`, `Some(None)` no, `None` need more.
fn http_version(bytes: &[u8]) -> Option<Option<u8>> {
    match prefix(bytes, b"HTTP/1.") {
        Some(true) => {}
        Some(false) => return Some(None),
        None => return None,
    }
    match bytes.get(7) {
        Some(&digit @ (b'0' | b'1')) => Some(Some(digit - b'0')),
        Some(_) => Some(None),
        None => None,
    }
}

/// The first five bytes read as a TLS record header, and what OpenSSL makes of them.
fn as_tls_header(bytes: &[u8], request: bool) -> Option<String> {
    let &[content_type, major, minor, high, low] = bytes.get(..HEADER)? else {
        return None;
    };
    let version = u16::from_be_bytes([major, minor]);
    let length = u16::from_be_bytes([high, low]);
    let reading = if request {
        let method_end = bytes.iter().position(|&b| b == b' ').unwrap_or(0);
        match bytes.get(..method_end) {
            Some(b"GET" | b"POST" | b"HEAD" | b"PUT") => "an OpenSSL server reports \"http request\" and closes without an alert".to_string(),
            Some(b"CONNECT") => "an OpenSSL server reports \"https proxy request\"".to_string(),
            _ => "an OpenSSL server reports \"http request\" (current master) or \"wrong version number\" (3.2-era)".to_string(),
        }
    } else if length > OPENSSL_READ_LIMIT {
        "an OpenSSL client reports \"packet length too long\" (≥ 3.2, length above its ≈16.7 KiB read buffer) or \"wrong version number\" (≤ 3.1)".to_string()
    } else {
        "an OpenSSL client reports \"wrong version number\"".to_string()
    };
    Some(format!(
        "type 0x{content_type:02X}, version 0x{version:04X}, length {length}: not TLS; {reading}"
    ))
}

fn start_line(at: StreamOffset, window: &[u8], at_end: bool) -> Line {
    let need = |at_end: bool| if at_end { Line::No } else { Line::Need };
    // Status line: HTTP/1.x SP 3DIGIT (SP reason | EOL).
    match http_version(window) {
        None => return need(at_end),
        Some(Some(minor)) => return status_line(at, window, at_end, minor),
        Some(None) => {}
    }
    let mut method = None;
    for candidate in METHODS {
        match prefix(window, candidate) {
            Some(true) => method = Some(candidate),
            Some(false) => {}
            None => return need(at_end),
        }
    }
    let Some(method) = method else {
        return Line::No;
    };
    // METHOD SP target SP HTTP/1.x CRLF
    let target_start = method.len();
    let target_len = window
        .get(target_start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| (0x21..0x7F).contains(&b))
        .count();
    let after_target = target_start + target_len;
    let Some(&separator) = window.get(after_target) else {
        return need(at_end);
    };
    if target_len == 0 || separator != b' ' {
        return Line::No;
    }
    let version_start = after_target + 1;
    let minor = match http_version(window.get(version_start..).unwrap_or_default()) {
        None => return need(at_end),
        Some(None) => return Line::No,
        Some(Some(minor)) => minor,
    };
    let line_end = match window.get(version_start + 8..version_start + 10) {
        Some(b"\r\n") => version_start + 10,
        _ => match window.get(version_start + 8) {
            Some(b'\n') => version_start + 9,
            Some(b'\r') if window.len() == version_start + 9 => return need(at_end),
            Some(_) => return Line::No,
            None => return need(at_end),
        },
    };
    let method_name = method.get(..method.len() - 1).unwrap_or_default();
    let target = window.get(target_start..after_target).unwrap_or_default();
    let mut fields = vec![
        Field::new(
            "method",
            escape_ascii(method_name, 16),
            span(at, 0, method_name.len()),
        ),
        Field::new(
            "target",
            escape_ascii(target, 200),
            span(at, target_start, target_len),
        ),
        Field::new(
            "version",
            format!("HTTP/1.{minor}"),
            span(at, version_start, 8),
        ),
    ];
    if let Some(tls) = as_tls_header(window, true) {
        fields.push(Field::new("read as TLS", tls, span(at, 0, HEADER)));
    }
    Line::Frame(Frame::new(
        Protocol::Http,
        span(at, 0, line_end),
        "request",
        FrameStatus::Ok,
        format!(
            "{} {} HTTP/1.{minor} (plain HTTP request)",
            escape_ascii(method_name, 16),
            escape_ascii(target, 80)
        ),
        fields,
    ))
}

fn status_line(at: StreamOffset, window: &[u8], at_end: bool, minor: u8) -> Line {
    let need = if at_end { Line::No } else { Line::Need };
    let Some(rest) = window.get(8..) else {
        return need;
    };
    let Some(&space) = rest.first() else {
        return need;
    };
    if space != b' ' {
        return Line::No;
    }
    let code_bytes = rest.get(1..4);
    let digits_so_far = rest
        .get(1..)
        .unwrap_or_default()
        .iter()
        .take(3)
        .all(u8::is_ascii_digit);
    if !digits_so_far {
        return Line::No;
    }
    let Some(code_bytes) = code_bytes else {
        return need;
    };
    // The reason phrase runs to the end of the line: printable ASCII and tabs only.
    let reason_start = 8 + 4;
    let tail = window.get(reason_start..).unwrap_or_default();
    let Some(newline) = tail.iter().position(|&b| b == b'\n') else {
        let printable = tail
            .iter()
            .all(|&b| b == b'\t' || b == b'\r' || (0x20..0x7F).contains(&b));
        return if printable && window.len() < MAX_LINE {
            need
        } else {
            Line::No
        };
    };
    let line = tail.get(..newline).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7F).contains(&b))
    {
        return Line::No;
    }
    if line.first().is_some_and(|&b| b != b' ') {
        return Line::No;
    }
    let reason = line.get(1..).unwrap_or_default();
    let code = String::from_utf8_lossy(code_bytes).into_owned();
    let line_end = reason_start + newline + 1;
    let mut fields = vec![
        Field::new("version", format!("HTTP/1.{minor}"), span(at, 0, 8)),
        Field::new("status", code.clone(), span(at, 9, 3)),
    ];
    if !reason.is_empty() {
        fields.push(Field::new(
            "reason",
            escape_ascii(reason, 200),
            span(at, reason_start + 1, reason.len()),
        ));
    }
    if let Some(tls) = as_tls_header(window, false) {
        fields.push(Field::new("read as TLS", tls, span(at, 0, HEADER)));
    }
    let mut summary = format!("HTTP/1.{minor} {code}");
    if !reason.is_empty() {
        summary.push(' ');
        summary.push_str(&escape_ascii(reason, 80));
    }
    summary.push_str(" (plain HTTP response)");
    Line::Frame(Frame::new(
        Protocol::Http,
        span(at, 0, line_end),
        "status",
        FrameStatus::Ok,
        summary,
        fields,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decode::testing::{field, h};
    use proptest::prelude::*;

    fn run_tls(bytes: &[u8]) -> Vec<Frame> {
        let mut framer = TlsFramer::new();
        let mut out = Vec::new();
        framer.feed(0, bytes, &mut out);
        framer.flush(&mut out);
        out
    }

    fn run_http(bytes: &[u8]) -> Vec<Frame> {
        let mut framer = HttpFramer::new();
        let mut out = Vec::new();
        framer.feed(0, bytes, &mut out);
        framer.flush(&mut out);
        out
    }

    #[test]
    fn client_hello_record_spans_the_body() {
        // 16 03 01 00 05 | 01 00 00 01 AA: a (tiny) ClientHello record, then an alert.
        let mut bytes = h("16 03 01 00 05 01 00 00 01 AA");
        // RFC 8446 §5.1, RFC 5246 §6.2.1: fatal alert 15 03 03 00 02 02 28 (handshake_failure, 40).
        bytes.extend(h("15 03 03 00 02 02 28"));
        let frames = run_tls(&bytes);
        assert_eq!(frames.len(), 2, "{frames:#?}");
        assert_eq!(frames[0].summary(), "TLS 1.0 handshake ClientHello");
        assert_eq!(frames[0].span, 0..10);
        assert_eq!(field(&frames[0], "fragment").span, 5..10);
        assert_eq!(
            frames[1].summary(),
            "TLS 1.2 alert: fatal handshake_failure (40)"
        );
        assert_eq!(frames[1].span, 10..17);
        assert!(
            frames
                .iter()
                .all(|f| f.status.is_ok() && f.kind == "record")
        );
    }

    #[test]
    fn truncated_record_is_cut_to_the_bytes_seen() {
        let frames = run_tls(&h("16 03 01 02 00 01 00 01 FC 03 03"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].status, FrameStatus::Truncated);
        assert_eq!(frames[0].span, 0..11);
        assert_eq!(field(&frames[0], "fragment").span, 5..11);
    }

    #[test]
    fn malformed_records() {
        let frames = run_tls(&h("17 03 03 48 01"));
        assert!(matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("exceeds")));
        let frames = run_tls(&h("14 03 03 00 01 02"));
        assert!(
            matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("single byte 01"))
        );
        let frames = run_tls(&h("16 03 03 00 00"));
        assert!(matches!(&frames[0].status, FrameStatus::Malformed(w) if w.contains("empty")));
    }

    /// RFC 8446 §5.1, RFC 5246 §6.2.1: 0x68 is no content type; a 104 APDU is not TLS.
    #[test]
    fn non_tls_first_bytes_are_not_records() {
        assert!(run_tls(&h("68 04 07 00 00 00")).is_empty());
        assert!(run_tls(b"hello").is_empty());
        assert!(run_tls(b"HTTP/1.1 400 Bad Request\r\n").is_empty());
    }

    /// An alert whose description no table of ours names (RFC 8446 §6 leaves room for more)
    /// is shown with its value; a record with an unknown content type is not framed (see
    /// `record`).
    #[test]
    fn unknown_alert_description_is_shown() {
        let frames = run_tls(&h("15 03 03 00 02 02 FA"));
        assert_eq!(
            frames[0].summary(),
            "TLS 1.2 alert: fatal unknown description 0xFA (250)"
        );
        assert!(run_tls(&h("1B 03 03 00 02 02 28")).is_empty());
    }

    #[test]
    fn record_bodies_do_not_hide_following_records_when_split() {
        let mut bytes = h("17 03 03 00 20");
        bytes.extend([0x16; 32]);
        bytes.extend(h("15 03 03 00 02 01 00"));
        for cut in 0..bytes.len() {
            let mut framer = TlsFramer::new();
            let mut out = Vec::new();
            framer.feed(0, &bytes[..cut], &mut out);
            framer.feed(cut as u64, &bytes[cut..], &mut out);
            framer.flush(&mut out);
            assert_eq!(out, run_tls(&bytes), "cut at {cut}");
        }
        let frames = run_tls(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[1].summary(),
            "TLS 1.2 alert: warning close_notify (0)"
        );
    }

    /// RFC 8446 §5.1, RFC 5246 §6.2.1: a TLS client reading "HTTP/1.1 400" sees type 0x48, version 0x5454,
    /// length 0x502F = 20527.
    #[test]
    fn http_status_line_read_as_tls() {
        let frames = run_http(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n");
        assert_eq!(frames.len(), 1);
        let frame = &frames[0];
        assert_eq!(frame.kind, "status");
        assert_eq!(frame.span, 0..26);
        assert_eq!(
            frame.summary(),
            "HTTP/1.1 400 Bad Request (plain HTTP response)"
        );
        let tls = field(frame, "read as TLS");
        assert!(
            tls.value
                .starts_with("type 0x48, version 0x5454, length 20527: not TLS")
        );
        assert!(tls.value.contains("packet length too long"));
    }

    #[test]
    fn go_plain_http_answer() {
        // Go net/http's answer to a plaintext client (RFC 8446 §5.1, RFC 5246 §6.2.1).
        let frames = run_http(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        );
        assert_eq!(
            frames[0].summary(),
            "HTTP/1.0 400 Bad Request (plain HTTP response)"
        );
    }

    #[test]
    fn request_lines() {
        let frames = run_http(b"xxGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].kind, "request");
        assert_eq!(frames[0].span, 2..18);
        assert!(
            field(&frames[0], "read as TLS")
                .value
                .contains("\"http request\"")
        );
        let frames = run_http(b"CONNECT example.org:443 HTTP/1.1\n");
        assert!(
            field(&frames[0], "read as TLS")
                .value
                .contains("https proxy request")
        );
        assert!(run_http(b"GET the milk\r\n").is_empty());
        assert!(run_http(b"HTTP/1.1 4x0 Bad\r\n").is_empty());
        // Not finished before the end of the stream: no frame.
        assert!(run_http(b"HTTP/1.1 200 OK").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_in_range(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            for frame in run_tls(&bytes).into_iter().chain(run_http(&bytes)) {
                prop_assert!(frame.span.start < frame.span.end && frame.span.end <= bytes.len() as u64);
            }
        }

        #[test]
        fn split_feeding_equals_whole(
            noise in prop::collection::vec(prop::sample::select(vec![0x16u8, 0x03, 0x01, 0x00, 0x15, b'H', b'T', b'P', b'/', b'1', b'.', b' ', b'\n']), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut bytes = noise;
            bytes.extend(b"HTTP/1.1 400 Bad Request\r\n");
            bytes.extend(h("15 03 03 00 02 02 28"));
            for (run, framer) in [(run_tls as fn(&[u8]) -> Vec<Frame>, 0), (run_http, 1)] {
                let mut split = Vec::new();
                let mut boxed: Box<dyn Framer> = if framer == 0 { Box::new(TlsFramer::new()) } else { Box::new(HttpFramer::new()) };
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                cuts.sort_unstable();
                let mut start = 0;
                for cut in cuts {
                    boxed.feed(start as u64, &bytes[start..cut], &mut split);
                    start = cut;
                }
                boxed.feed(start as u64, &bytes[start..], &mut split);
                boxed.flush(&mut split);
                prop_assert_eq!(split, run(&bytes));
            }
        }
    }

    proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn record_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(&[0x14, 0x16, 0x17, 0x1A, 0x03, 0x13])) {
            crate::decode::stream::tests::assert_same_starts(&bytes, 1, record_hits, is_record_start);
        }
    }

    proptest! {
        /// The sixteen-at-a-time start search finds what a byte-by-byte one does.
        #[test]
        fn start_line_search_matches_plain_scan(bytes in crate::decode::stream::tests::noisy_bytes(b"HTGEPOUDACRB@V")) {
            crate::decode::stream::tests::assert_same_starts(&bytes, 1, line_hits, is_line_start);
        }
    }
}
