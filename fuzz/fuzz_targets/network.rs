//! What a network peer sends: the telnet layer of RFC 2217 (whole and split input must give
//! the same data and sub-negotiations), COM-PORT-OPTION replies and the client's state machine
//! that takes them, and what `hsmon probe tls` reads from a server (first line, TLS alert,
//! certificate DER), plus the TLS record and HTTP parsers the framers use. Never panics.
#![no_main]

use hsmon::event::{Event, LineSettings};
use hsmon::source::rfc2217::comport::{ComPort, Reply};
use hsmon::source::rfc2217::telnet::Telnet;
use libfuzzer_sys::fuzz_target;

fn telnet(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let mut t = Telnet::new();
    let _ = t.start();
    let (mut data, mut subs) = (Vec::new(), Vec::new());
    for c in chunks {
        t.receive(c, &mut data, &mut subs);
    }
    let out = t.take_output();
    (data, subs, out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = (cut as usize * rest.len()) / 256;
    let whole = telnet(&[rest]);
    let split = telnet(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole, split, "telnet output depends on where input was cut");

    let mut port = ComPort::new(LineSettings::default());
    let mut events: Vec<Event> = Vec::new();
    let _ = port.open(std::time::Duration::ZERO);
    for sub in &whole.1 {
        if let Ok(reply) = Reply::parse(sub) {
            port.on_reply(&reply, &mut events);
        }
    }
    let _ = Reply::parse(rest);
    port.poll(std::time::Duration::from_secs(60), &mut events);

    let line = hsmon::probe::tls::first_line(rest);
    assert!(!line.chars().any(hsmon::sanitize::is_unsafe), "{line:?}");
    let _ = hsmon::probe::tls::find_alert(rest);
    let der = rustls_pki_types::CertificateDer::from(rest.to_vec());
    let _ = hsmon::probe::tls::summarize(&der);
    let _ = hsmon::decode::tls::parse_record(0, rest);
    let _ = hsmon::decode::tls::parse_http(0, rest);
});
