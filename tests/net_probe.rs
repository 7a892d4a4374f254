//! `hsmon probe tls` against servers on loopback: a plain HTTP server (what a wss:// client
//! meets on a ws:// port), a rustls server with a self-signed certificate made by rcgen, a
//! server answering with a hand-written TLS alert record, one that closes without a word,
//! and a closed port. Each classification, exit status and explanation is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::run_hsmon;
use support::ser2net::free_port;

/// A one-connection server on loopback: reads what the client sends first (the
/// ClientHello), then hands the socket to `answer`.
fn server(answer: impl FnOnce(std::net::TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        answer(s);
    });
    port
}

/// Reads the ClientHello record: 16 03 XX then its length.
fn read_client_hello(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).unwrap();
    let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    let mut all = head.to_vec();
    all.extend(body);
    all
}

fn probe_json(args: &[&str]) -> (i32, Value) {
    let mut full = vec!["--config", "/dev/null", "--format", "json", "probe", "tls"];
    full.extend_from_slice(args);
    let (code, out, err) = run_hsmon(&full);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("not one JSON object: {out:?} ({e}); stderr {err}"));
    (code, v)
}

fn ids(v: &Value) -> Vec<String> {
    v["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plaintext_http_is_named_with_its_fixes() {
    let port = server(|mut s| {
        let hello = read_client_hello(&mut s);
        assert_eq!(hello[0], 0x16, "a real ClientHello record");
        assert_eq!(hello[5], 0x01, "handshake type ClientHello");
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    let (code, v) = probe_json(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "plaintext");
    assert_eq!(v["first_line"], "HTTP/1.1 400 Bad Request");
    assert!(
        v["reply"].as_str().unwrap().starts_with("48 54 54 50"),
        "{v}"
    );
    let ids = ids(&v);
    for want in ["tls.wss_to_ws_server", "tls.http_reply", "tls.not_tls"] {
        assert!(ids.iter().any(|i| i == want), "{want} missing: {ids:?}");
    }
    assert!(v["text"].as_str().unwrap().contains("ws://"), "{v}");
}

#[test]
fn plaintext_text_output_reads_as_a_report() {
    let port = server(|mut s| {
        read_client_hello(&mut s);
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
    });
    let (code, out, _) = run_hsmon(&[
        "--config",
        "/dev/null",
        "probe",
        "tls",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("plaintext: this port serves unencrypted HTTP"),
        "{out}"
    );
    assert!(
        out.contains("first line  HTTP/1.1 400 Bad Request"),
        "{out}"
    );
    assert!(out.contains("tls.http_reply [error]"), "{out}");
    assert!(
        out.contains("1. Use http:// (ws://) for this port"),
        "{out}"
    );
}

/// A rustls server with a fresh self-signed certificate for "localhost".
fn tls_server() -> u16 {
    tls_server_with_pem().0
}

/// [`tls_server`], and its certificate in PEM (to install as a private CA).
fn tls_server_with_pem() -> (u16, String) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = key.cert.pem();
    let cert = key.cert.der().clone();
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], pkcs8.into())
    .unwrap();
    let port = server(move |s| {
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                return;
            }
        }
        // Until the client's close_notify (or the socket) ends it.
        let mut buf = [0u8; 256];
        while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
    });
    (port, pem)
}

/// A lab's private CA installed in the system trust store (here through `SSL_CERT_FILE`,
/// which rustls-native-certs reads like OpenSSL does) verifies, and the report says which
/// roots did: Mozilla's list does not hold it.
#[test]
fn a_private_ca_in_the_system_store_verifies_and_is_named() {
    let (port, pem) = tls_server_with_pem();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("lab-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let out = support::hsmon_command()
        .env("SSL_CERT_FILE", &ca)
        .args(["--config", "/dev/null", "--format", "json", "probe", "tls"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--sni", "localhost"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["trust"], "system", "{v}");
    // (Without it the same kind of certificate is an unknown issuer: the test above.)
}

#[test]
fn a_tls_server_is_tls_even_when_its_certificate_does_not_verify() {
    let port = tls_server();
    let (code, v) = probe_json(&[&format!("127.0.0.1:{port}"), "--sni", "localhost"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "tls");
    assert_eq!(v["sni"], "localhost");
    assert_eq!(v["version"], "TLS 1.3");
    assert!(v["cipher"].as_str().unwrap().starts_with("TLS13_"), "{v}");
    assert_eq!(v["verified"], false);
    assert_eq!(v["trust"], Value::Null);
    assert!(
        v["verify_error"]
            .as_str()
            .unwrap()
            .contains("unknown issuer"),
        "{v}"
    );
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0]["san"], serde_json::json!(["localhost"]));
    assert_eq!(chain[0]["subject"], chain[0]["issuer"], "self-signed");
    assert!(!chain[0]["not_after"].as_str().unwrap().is_empty());
    assert!(v["reply"].as_str().unwrap().starts_with("16 03 03"), "{v}");
}

#[test]
fn a_tls_server_text_report_shows_the_chain() {
    let port = tls_server();
    let (code, out, err) = run_hsmon(&[
        "--config",
        "/dev/null",
        "probe",
        "tls",
        &format!("127.0.0.1:{port}"),
        "--sni",
        "localhost",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("TLS: TLS 1.3 handshake completed, but the certificate does not verify"),
        "{out}"
    );
    assert!(out.contains("verified  no: unknown issuer"), "{out}");
    assert!(out.contains("names   localhost"), "{out}");
}

#[test]
fn a_tls_alert_is_decoded() {
    let port = server(|mut s| {
        read_client_hello(&mut s);
        // Alert record: TLS 1.2, length 2, fatal (2) handshake_failure (40).
        s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
            .unwrap();
    });
    let (code, v) = probe_json(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "alert");
    assert_eq!(v["alert"]["level"], 2);
    assert_eq!(v["alert"]["level_name"], "fatal");
    assert_eq!(v["alert"]["description"], 40);
    assert_eq!(v["alert"]["description_name"], "handshake_failure");
    assert_eq!(v["reply"], "15 03 03 00 02 02 28");
}

#[test]
fn a_peer_closing_without_a_word_is_explained() {
    let port = server(|mut s| {
        read_client_hello(&mut s);
    });
    let (code, v) = probe_json(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "closed");
    assert!(
        ids(&v).contains(&"tls.closed_without_reply".to_string()),
        "{v}"
    );
}

#[test]
fn a_closed_port_is_a_connection_error() {
    let port = free_port();
    let (code, v) = probe_json(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["verdict"], "connection_error");
    assert!(
        v["error"].as_str().unwrap().contains("connection refused"),
        "{v}"
    );
    let (code, _, err) = run_hsmon(&[
        "--config",
        "/dev/null",
        "probe",
        "tls",
        "127.0.0.1:443",
        "--sni",
        "bad name!",
    ]);
    assert_eq!(code, 2, "a bad --sni is a usage error: {err}");
}
