//! `hsmon probe tls HOST:PORT`: sends a real TLS ClientHello (rustls) and says what came
//! back — a TLS handshake (version, cipher suite, certificate chain, whether it verifies), a
//! TLS alert (decoded), plaintext (its first line: HTTP where TLS was expected), or nothing —
//! with the knowledge base's explanation of the answer.
//!
//! A certificate that does not verify is still TLS: the probe records why it failed and
//! completes the handshake anyway, because "is this port TLS?" is the question, and "would
//! my client trust it?" the second one. Nothing is sent after the handshake but close_notify.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::diagnose::knowledge::Knowledge;
use crate::diagnose::observation::{Observation, TlsProbeResult};
use crate::hex;
use crate::sanitize::printable;
use crate::source::tcp::{HostPort, connect, describe_io};

/// How the probe runs.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Server name to send and verify against (default: the host, when it is a name).
    pub sni: Option<String>,
    /// Limit for the connection and for each wait for an answer.
    pub timeout: Duration,
    /// Limit for the whole probe, connection included: a server that trickles a byte now and
    /// then keeps every single wait short and would otherwise hold the probe for ever.
    pub deadline: Duration,
}

/// Most reply bytes kept (enough for a plaintext first line and the records before an alert).
const MAX_REPLY: usize = 16 * 1024;

/// After plaintext starts, how long to wait for the rest of its first line.
const LINE_WAIT: Duration = Duration::from_millis(300);

/// Longest first line reported.
const MAX_LINE: usize = 200;

/// Why the probe could not even start. `BadServerName` is a usage error.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "'{0}' is not a server name rustls can send: give a DNS name (--sni api.example) or an IP address"
    )]
    BadServerName(String),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// What answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A TLS handshake completed.
    Tls(Box<Handshake>),
    /// The peer answered with a TLS alert.
    Alert(Alert),
    /// The peer answered with something that is not TLS.
    Plaintext { first_line: String },
    /// The peer closed (or reset) the connection without a byte.
    Closed { how: String },
    /// The peer said nothing within the timeout.
    Silent { waited: Duration },
    /// TLS records came, but the handshake could not be completed.
    HandshakeFailed { reason: String },
    /// No TCP connection.
    Unreachable { error: String },
}

impl Answer {
    /// Stable id for `--format json`.
    pub fn id(&self) -> &'static str {
        match self {
            Answer::Tls(_) => "tls",
            Answer::Alert(_) => "alert",
            Answer::Plaintext { .. } => "plaintext",
            Answer::Closed { .. } => "closed",
            Answer::Silent { .. } => "silent",
            Answer::HandshakeFailed { .. } => "handshake_failed",
            Answer::Unreachable { .. } => "connection_error",
        }
    }
}

/// A completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// "TLS 1.3".
    pub version: String,
    /// IANA-style suite name: "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
    /// End entity first.
    pub chain: Vec<CertSummary>,
    /// Whether the chain verifies for the server name, and against which roots (Mozilla's
    /// list, else the system's trust store, where a lab's private CA is installed); if not,
    /// why.
    pub verified: Result<Trust, String>,
}

/// The roots a certificate chain verified against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Mozilla's root list (what browsers trust).
    Mozilla,
    /// The system's trust store (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System,
}

impl Trust {
    /// Stable identifier for JSON: "mozilla", "system".
    pub fn id(self) -> &'static str {
        match self {
            Trust::Mozilla => "mozilla",
            Trust::System => "system",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Trust::Mozilla => "Mozilla's roots",
            Trust::System => "the system trust store",
        }
    }
}

/// One certificate, as a person checks it. Strings are made terminal-safe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// Subject alternative names: DNS names and IP addresses.
    pub san: Vec<String>,
    /// Set when the certificate could not be parsed (the rest is then empty).
    pub parse_error: Option<String>,
}

/// A decoded TLS alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub level: u8,
    /// "warning", "fatal".
    pub level_name: String,
    pub description: u8,
    /// "handshake_failure".
    pub description_name: String,
}

/// A knowledge-base entry that explains the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub id: String,
    pub severity: &'static str,
    pub title: String,
    pub fixes: Vec<String>,
}

/// The probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: String,
    /// The SNI sent (None for an IP address).
    pub sni: Option<String>,
    pub verdict: Answer,
    /// The first bytes the peer sent.
    pub reply: Vec<u8>,
    pub explanations: Vec<Explanation>,
}

/// The name rustls sends (SNI) and verifies the certificate against.
pub fn server_name(
    target: &HostPort,
    sni: Option<&str>,
) -> Result<ServerName<'static>, ProbeError> {
    let name = sni.unwrap_or(&target.host).to_string();
    ServerName::try_from(name.clone()).map_err(|_| ProbeError::BadServerName(name))
}

/// Runs the probe. Connection failures are a report (exit 3), not an error.
pub async fn probe(
    target: &HostPort,
    opts: &ProbeOptions,
    knowledge: &Knowledge,
) -> Result<Report, ProbeError> {
    let name = server_name(target, opts.sni.as_deref())?;
    let sni = match &name {
        ServerName::DnsName(d) => Some(d.as_ref().to_string()),
        _ => None,
    };
    let verifier = Arc::new(Recorder::new()?);
    let config = client_config(verifier.clone())?;
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| ProbeError::Setup(e.to_string()))?;
    let end = tokio::time::Instant::now() + opts.deadline;
    let first = opts.timeout.min(opts.deadline);
    let (verdict, reply) = match connect(target, first).await {
        Ok(mut stream) => {
            let limits = Limits {
                wait: opts.timeout,
                end,
                deadline: opts.deadline,
            };
            exchange(&mut stream, &mut conn, &verifier, limits).await
        }
        Err(e) => (
            Answer::Unreachable {
                error: e.to_string(),
            },
            Vec::new(),
        ),
    };
    Ok(Report::new(target, sni, verdict, reply, knowledge))
}

fn client_config(verifier: Arc<Recorder>) -> Result<ClientConfig, ProbeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// How long the exchange may wait: each read, and all of it.
#[derive(Debug, Clone, Copy)]
struct Limits {
    wait: Duration,
    end: tokio::time::Instant,
    deadline: Duration,
}

impl Limits {
    /// When the next read gives up: after `wait`, or at the overall end if that is sooner.
    fn next(&self) -> tokio::time::Instant {
        (tokio::time::Instant::now() + self.wait).min(self.end)
    }

    fn overdue(&self) -> bool {
        tokio::time::Instant::now() >= self.end
    }
}

/// Sends the ClientHello and reads until the answer is classified.
async fn exchange(
    stream: &mut TcpStream,
    conn: &mut ClientConnection,
    verifier: &Recorder,
    limits: Limits,
) -> (Answer, Vec<u8>) {
    let timeout = limits.wait;
    let mut raw: Vec<u8> = Vec::new();
    if let Err(e) = send_pending(stream, conn).await {
        let reason = format!("sending the ClientHello failed: {}", describe_io(&e));
        return (Answer::HandshakeFailed { reason }, raw);
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout_at(limits.next(), stream.read(&mut buf)).await {
            Err(_) if raw.is_empty() => {
                let waited = if limits.overdue() {
                    limits.deadline
                } else {
                    timeout
                };
                return (Answer::Silent { waited }, raw);
            }
            Err(_) if limits.overdue() => {
                let reason = format!(
                    "no verdict within the overall deadline of {:.1} s: {} bytes came, too slowly to \
                     finish a handshake (a server that trickles bytes); give --deadline SECONDS to \
                     wait longer",
                    limits.deadline.as_secs_f64(),
                    raw.len()
                );
                return (Answer::HandshakeFailed { reason }, raw);
            }
            Err(_) => {
                let reason = format!(
                    "the handshake stalled: nothing more came within {:.1} s",
                    timeout.as_secs_f64()
                );
                return (Answer::HandshakeFailed { reason }, raw);
            }
            Ok(Ok(0)) | Ok(Err(_)) if raw.is_empty() => {
                let how = "the peer closed the connection without a byte".to_string();
                return (Answer::Closed { how }, raw);
            }
            Ok(Ok(0)) => {
                let reason = "the peer closed the connection during the handshake".to_string();
                return (Answer::HandshakeFailed { reason }, raw);
            }
            Ok(Err(e)) => {
                let reason = format!("during the handshake: {}", describe_io(&e));
                return (Answer::HandshakeFailed { reason }, raw);
            }
            Ok(Ok(n)) => n,
        };
        let fresh = &buf[..n];
        let room = MAX_REPLY.saturating_sub(raw.len());
        raw.extend_from_slice(&fresh[..n.min(room)]);
        if !TlsProbeResult::new(None, None, &raw).looks_tls() {
            read_rest_of_line(stream, &mut raw, limits.end).await;
            let first_line = first_line(&raw);
            return (Answer::Plaintext { first_line }, raw);
        }
        let mut rd: &[u8] = fresh;
        while !rd.is_empty() {
            match conn.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    let reason = format!("rustls refused the records: {e}");
                    return (Answer::HandshakeFailed { reason }, raw);
                }
            }
            if let Err(e) = conn.process_new_packets() {
                // rustls queued an alert of its own; send it, as a real client would.
                let _ = send_pending(stream, conn).await;
                return (failure(&e, &raw), raw);
            }
        }
        if let Err(e) = send_pending(stream, conn).await {
            let reason = format!("during the handshake: {}", describe_io(&e));
            return (Answer::HandshakeFailed { reason }, raw);
        }
        if !conn.is_handshaking() {
            let hs = Handshake {
                version: conn
                    .protocol_version()
                    .map_or_else(|| "unknown".to_string(), version_name),
                cipher: conn
                    .negotiated_cipher_suite()
                    .map_or_else(|| "unknown".to_string(), |s| format!("{:?}", s.suite())),
                chain: conn
                    .peer_certificates()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| summarize(c))
                    .collect(),
                verified: verifier.result(),
            };
            conn.send_close_notify();
            let _ = send_pending(stream, conn).await;
            return (Answer::Tls(Box::new(hs)), raw);
        }
    }
}

async fn send_pending(stream: &mut TcpStream, conn: &mut ClientConnection) -> io::Result<()> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    if !out.is_empty() {
        stream.write_all(&out).await?;
    }
    Ok(())
}

/// A plaintext answer: read on briefly until its first line is complete.
async fn read_rest_of_line(stream: &mut TcpStream, raw: &mut Vec<u8>, end: tokio::time::Instant) {
    let mut buf = [0u8; 4096];
    while !raw.contains(&b'\n') && raw.len() < MAX_REPLY {
        let until = (tokio::time::Instant::now() + LINE_WAIT).min(end);
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                let room = MAX_REPLY - raw.len();
                raw.extend_from_slice(&buf[..n.min(room)]);
            }
            _ => break,
        }
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    }
}

/// The first line of a plaintext answer, terminal-safe and bounded.
pub fn first_line(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = raw[..end].strip_suffix(b"\r").unwrap_or(&raw[..end]);
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
    printable(&text)
}

/// The first plaintext alert record among the reply's records, decoded.
pub fn find_alert(raw: &[u8]) -> Option<Alert> {
    let mut i = 0;
    while let Some(&[t, major, _, hi, lo]) = raw.get(i..i + 5) {
        if !(0x14..=0x18).contains(&t) || major != 3 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if t == 0x15 && len == 2 {
            return raw.get(i..i + 7).and_then(decode_alert);
        }
        i += 5 + len;
    }
    None
}

/// Decodes one alert record (`15 03 0X 00 02 level description`) with the TLS decoder's names.
fn decode_alert(record: &[u8]) -> Option<Alert> {
    let frame = crate::decode::tls::parse_record(0, record)?;
    let field = |name: &str| {
        let f = frame.fields().iter().find(|f| f.name == name)?;
        let (n, text) = f.value.split_once(' ')?;
        Some((n.parse::<u8>().ok()?, text.to_string()))
    };
    let (level, level_name) = field("level")?;
    let (description, description_name) = field("description")?;
    Some(Alert {
        level,
        level_name,
        description,
        description_name,
    })
}

/// What a handshake error means: a plaintext alert from the peer, or a failure with a reason.
fn failure(e: &rustls::Error, raw: &[u8]) -> Answer {
    if let Some(a) = find_alert(raw) {
        return Answer::Alert(a);
    }
    match e {
        rustls::Error::AlertReceived(d) => {
            // An encrypted alert (TLS 1.3, after ServerHello): rustls decrypted it; the level
            // is not exposed, and every alert but close_notify/user_canceled ends a handshake.
            let code = u8::from(*d);
            let named = decode_alert(&[0x15, 3, 3, 0, 2, 2, code]);
            Answer::Alert(named.unwrap_or(Alert {
                level: 2,
                level_name: "fatal".to_string(),
                description: code,
                description_name: format!("{d:?}"),
            }))
        }
        rustls::Error::PeerIncompatible(why) => Answer::HandshakeFailed {
            reason: format!(
                "the server's TLS is one rustls refuses ({why:?}): likely TLS 1.0/1.1 or old cipher suites only (an old device or firmware); `openssl s_client -connect HOST:PORT` shows what it offers"
            ),
        },
        other => Answer::HandshakeFailed {
            reason: other.to_string(),
        },
    }
}

/// Subject, issuer, validity and names of one certificate.
pub fn summarize(der: &CertificateDer<'_>) -> CertSummary {
    let cert = match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, c)) => c,
        Err(e) => {
            return CertSummary {
                parse_error: Some(printable(&e.to_string())),
                ..CertSummary::default()
            };
        }
    };
    let time = |t: &x509_parser::time::ASN1Time| t.to_rfc2822().unwrap_or_else(|_| t.to_string());
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => san.push(printable(d)),
                x509_parser::extensions::GeneralName::IPAddress(ip) => san.push(ip_text(ip)),
                _ => {}
            }
        }
    }
    CertSummary {
        subject: printable(&cert.subject().to_string()),
        issuer: printable(&cert.issuer().to_string()),
        not_before: time(&cert.validity().not_before),
        not_after: time(&cert.validity().not_after),
        san,
        parse_error: None,
    }
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex::spaced(b),
    }
}

/// A verification failure in words, with what to do about the common ones.
fn verify_reason(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => "unknown issuer: the chain leads to no root in Mozilla's list nor in this system's trust store (a self-signed or private-CA certificate; clients need that CA installed)".to_string(),
        rustls::Error::InvalidCertificate(c @ (C::NotValidForName | C::NotValidForNameContext { .. })) => format!("{c}: the name the client uses must be among the certificate's names (check --sni)"),
        rustls::Error::InvalidCertificate(c @ (C::Expired | C::ExpiredContext { .. })) => format!("{c}: the certificate must be renewed"),
        rustls::Error::InvalidCertificate(c @ (C::NotValidYet | C::NotValidYetContext { .. })) => format!("{c}: check the clocks of the server and of this machine"),
        rustls::Error::InvalidCertificate(C::Other(o)) if format!("{o:?}").contains("CaUsedAsEndEntity") => "the server presents a CA certificate as its own (typical of a self-signed certificate made with `openssl req -x509`): clients that check will refuse it".to_string(),
        other => other.to_string(),
    }
}

/// Verifies like a browser would (webpki, Mozilla's roots), then against the system's trust
/// store (where a lab installs its private CA), remembers the verdict, and lets the handshake
/// go on either way. Handshake signatures are still checked for real.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    /// None when the system has no readable trust store.
    system: Option<Arc<WebPkiServerVerifier>>,
    result: Mutex<Option<Result<Trust, String>>>,
}

impl Recorder {
    fn new() -> Result<Recorder, ProbeError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ProbeError::Setup(e.to_string()))?;
        // Unreadable certificates in the store are skipped, as other TLS clients do.
        let mut system_roots = RootCertStore::empty();
        let (added, _) =
            system_roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let system = (added > 0)
            .then(|| {
                WebPkiServerVerifier::builder_with_provider(Arc::new(system_roots), provider)
                    .build()
                    .ok()
            })
            .flatten();
        Ok(Recorder {
            inner,
            system,
            result: Mutex::new(None),
        })
    }

    fn result(&self) -> Result<Trust, String> {
        self.result
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| Err("the server sent no certificate to verify".to_string()))
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mozilla = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let r = match mozilla {
            Ok(_) => Ok(Trust::Mozilla),
            Err(e) => match self.system.as_ref().map(|s| {
                s.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }) {
                Some(Ok(_)) => Ok(Trust::System),
                // A name or date fault is the same whichever roots: Mozilla's reason stands.
                _ => Err(verify_reason(&e)),
            },
        };
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(r);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Report {
    /// Builds the report and finds the knowledge entries for the answer. The probe plays an
    /// https:// (wss://) client, so the observation carries that scheme: a plaintext HTTP
    /// answer then matches "wss:// client, plain ws:// server" as well as the generic entries.
    pub fn new(
        target: &HostPort,
        sni: Option<String>,
        verdict: Answer,
        reply: Vec<u8>,
        knowledge: &Knowledge,
    ) -> Report {
        let explanations = match &verdict {
            Answer::Plaintext { .. } | Answer::Closed { .. } => {
                let obs = Observation::TlsProbe(TlsProbeResult::new(
                    Some(target.port),
                    Some("https"),
                    &reply,
                ));
                knowledge
                    .matches(&obs)
                    .into_iter()
                    .map(|e| Explanation {
                        id: e.id.clone(),
                        severity: e.severity.label(),
                        title: e.title.clone(),
                        fixes: e.fixes.clone(),
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let mut reply = reply;
        reply.truncate(crate::diagnose::observation::MAX_OBSERVED_BYTES);
        Report {
            target: target.to_string(),
            sni,
            verdict,
            reply,
            explanations,
        }
    }

    /// 0 a TLS handshake completed; 1 plaintext, an alert, nothing, a failed handshake;
    /// 3 no connection.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Answer::Tls(_) => crate::exit::OK,
            Answer::Unreachable { .. } => crate::exit::DEVICE,
            _ => crate::exit::EXPECTATION_FAILED,
        }
    }

    /// One sentence: what answered and what it means.
    pub fn headline(&self) -> String {
        match &self.verdict {
            Answer::Tls(h) => match &h.verified {
                Ok(trust) => format!(
                    "TLS: {} handshake completed, certificate verified ({})",
                    h.version,
                    trust.words()
                ),
                Err(_) => format!(
                    "TLS: {} handshake completed, but the certificate does not verify",
                    h.version
                ),
            },
            Answer::Alert(a) => format!(
                "TLS alert: the server refused the handshake ({} {}, {})",
                a.level_name, a.description_name, a.description
            ),
            Answer::Plaintext { first_line } if first_line.starts_with("HTTP/") => {
                "plaintext: this port serves unencrypted HTTP — ws:// (http://) is what it speaks; a wss:// (https://) URL for it fails".to_string()
            }
            Answer::Plaintext { .. } => {
                "plaintext: this port serves unencrypted traffic, not TLS".to_string()
            }
            Answer::Closed { how } => format!("no answer: {how} after the ClientHello"),
            Answer::Silent { waited } => format!(
                "no answer: the peer accepted the connection but sent nothing within {:.1} s (a plaintext service waiting for its own protocol, or a firewall)",
                waited.as_secs_f64()
            ),
            Answer::HandshakeFailed { reason } => {
                format!("TLS records came back, but the handshake failed: {reason}")
            }
            Answer::Unreachable { error } => format!("no connection: {error}"),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "type": "tls_probe",
            "target": self.target,
            "sni": self.sni,
            "verdict": self.verdict.id(),
            "text": self.headline(),
            "reply": hex::spaced(&self.reply),
        });
        let Value::Object(m) = &mut v else {
            return v;
        };
        match &self.verdict {
            Answer::Tls(h) => {
                m.insert("version".into(), json!(h.version));
                m.insert("cipher".into(), json!(h.cipher));
                m.insert("verified".into(), json!(h.verified.is_ok()));
                m.insert(
                    "trust".into(),
                    json!(h.verified.as_ref().ok().map(|t| t.id())),
                );
                m.insert("verify_error".into(), json!(h.verified.as_ref().err()));
                let chain: Vec<Value> = h
                    .chain
                    .iter()
                    .map(|c| {
                        json!({
                            "subject": c.subject, "issuer": c.issuer,
                            "not_before": c.not_before, "not_after": c.not_after,
                            "san": c.san, "parse_error": c.parse_error,
                        })
                    })
                    .collect();
                m.insert("chain".into(), Value::Array(chain));
            }
            Answer::Alert(a) => {
                m.insert(
                    "alert".into(),
                    json!({
                        "level": a.level, "level_name": a.level_name,
                        "description": a.description, "description_name": a.description_name,
                    }),
                );
            }
            Answer::Plaintext { first_line } => {
                m.insert("first_line".into(), json!(first_line));
            }
            Answer::HandshakeFailed { reason } => {
                m.insert("error".into(), json!(reason));
            }
            Answer::Unreachable { error } => {
                m.insert("error".into(), json!(error));
            }
            Answer::Closed { .. } | Answer::Silent { .. } => {}
        }
        let ex: Vec<Value> = self
            .explanations
            .iter()
            .map(
                |e| json!({"id": e.id, "severity": e.severity, "title": e.title, "fixes": e.fixes}),
            )
            .collect();
        m.insert("explanations".into(), Value::Array(ex));
        v
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let sni = self.sni.as_deref().map_or_else(
            || " (no SNI: an IP address)".to_string(),
            |s| format!(" (SNI {s})"),
        );
        out.push_str(&format!(
            "probe tls {}{sni}\n{}\n",
            self.target,
            self.headline()
        ));
        match &self.verdict {
            Answer::Tls(h) => {
                out.push_str(&format!(
                    "  version   {}\n  cipher    {}\n",
                    h.version, h.cipher
                ));
                match &h.verified {
                    Ok(trust) => out.push_str(&format!(
                        "  verified  yes ({}, name matches)\n",
                        trust.words()
                    )),
                    Err(why) => out.push_str(&format!("  verified  no: {why}\n")),
                }
                for (i, c) in h.chain.iter().enumerate() {
                    if let Some(e) = &c.parse_error {
                        out.push_str(&format!("  cert {}    (unreadable: {e})\n", i + 1));
                        continue;
                    }
                    out.push_str(&format!(
                        "  cert {}    subject {}\n            issuer  {}\n            valid   {} — {}\n",
                        i + 1,
                        c.subject,
                        c.issuer,
                        c.not_before,
                        c.not_after
                    ));
                    if !c.san.is_empty() {
                        out.push_str(&format!("            names   {}\n", c.san.join(", ")));
                    }
                }
            }
            Answer::Alert(a) => out.push_str(&format!(
                "  alert     level {} ({}), description {} ({})\n",
                a.level, a.level_name, a.description, a.description_name
            )),
            Answer::Plaintext { first_line } => {
                out.push_str(&format!("  first line  {first_line}\n"));
            }
            _ => {}
        }
        if !self.reply.is_empty() {
            out.push_str(&format!("  reply     {}\n", hex::spaced(&self.reply)));
        }
        for e in &self.explanations {
            out.push_str(&format!("\n{} [{}] {}\n", e.id, e.severity, e.title));
            for (i, f) in e.fixes.iter().enumerate() {
                out.push_str(&format!("  {}. {f}\n", i + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn first_line_stops_at_the_newline_and_is_terminal_safe() {
        assert_eq!(
            first_line(b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n"),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(first_line(b"hello\x1b[2J"), "hello\\x1B[2J");
        assert_eq!(first_line(&[b'a'; 1000]).len(), MAX_LINE);
    }

    #[test]
    fn alerts_are_found_after_other_records() {
        // A bare fatal handshake_failure (RFC 8446 §6: level 2, description 40).
        let a = find_alert(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).unwrap();
        assert_eq!((a.level, a.level_name.as_str()), (2, "fatal"));
        assert_eq!(
            (a.description, a.description_name.as_str()),
            (40, "handshake_failure")
        );
        // After a (short) handshake record: protocol_version (70).
        let raw = [
            0x16, 0x03, 0x03, 0x00, 0x01, 0x02, 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46,
        ];
        assert_eq!(
            find_alert(&raw).unwrap().description_name,
            "protocol_version"
        );
        // Not TLS, or an encrypted (longer) alert: none found.
        assert!(find_alert(b"HTTP/1.1 400").is_none());
        assert!(find_alert(&[0x15, 0x03, 0x03, 0x00, 0x1A, 1, 2]).is_none());
        assert!(find_alert(&[0x15, 0x03]).is_none());
    }

    #[test]
    fn ip_addresses_send_no_sni() {
        let t: HostPort = "127.0.0.1:443".parse().unwrap();
        assert!(matches!(
            server_name(&t, None).unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name(&t, Some("api.example")).unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name(&t, Some("bad name!")),
            Err(ProbeError::BadServerName(_))
        ));
    }

    fn knowledge() -> Knowledge {
        Knowledge::embedded().unwrap()
    }

    #[test]
    fn plaintext_http_is_explained_by_the_knowledge_base() {
        let t: HostPort = "127.0.0.1:8080".parse().unwrap();
        let raw = b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec();
        let r = Report::new(
            &t,
            None,
            Answer::Plaintext {
                first_line: first_line(&raw),
            },
            raw,
            &knowledge(),
        );
        let ids: Vec<&str> = r.explanations.iter().map(|e| e.id.as_str()).collect();
        assert!(ids.contains(&"tls.http_reply"), "{ids:?}");
        assert!(ids.contains(&"tls.wss_to_ws_server"), "{ids:?}");
        assert_eq!(r.exit_code(), 1);
        assert!(r.headline().contains("ws://"), "{}", r.headline());
        let j = r.to_json();
        assert_eq!(j["verdict"], "plaintext");
        assert_eq!(j["first_line"], "HTTP/1.1 400 Bad Request");
        assert_eq!(j["reply"].as_str().unwrap().split(' ').count(), 28);
    }

    #[test]
    fn an_iec104_answer_on_a_tls_port_is_named() {
        let t: HostPort = "10.0.0.5:2404".parse().unwrap();
        let raw = vec![0x68, 0x04, 0x0B, 0x00, 0x00, 0x00];
        let r = Report::new(
            &t,
            None,
            Answer::Plaintext {
                first_line: first_line(&raw),
            },
            raw,
            &knowledge(),
        );
        assert!(
            r.explanations.iter().any(|e| e.id == "tls.reply_68"),
            "{:?}",
            r.explanations
        );
    }

    #[test]
    fn exit_codes_follow_the_verdict() {
        let t: HostPort = "h:1".parse().unwrap();
        let k = knowledge();
        let mk = |v| Report::new(&t, None, v, Vec::new(), &k).exit_code();
        assert_eq!(
            mk(Answer::Unreachable {
                error: "refused".into()
            }),
            3
        );
        assert_eq!(
            mk(Answer::Closed {
                how: "closed".into()
            }),
            1
        );
        assert_eq!(
            mk(Answer::Tls(Box::new(Handshake {
                version: "TLS 1.3".into(),
                cipher: "x".into(),
                chain: vec![],
                verified: Err("unknown issuer".into()),
            }))),
            0,
            "a certificate that does not verify is still TLS"
        );
    }
}
