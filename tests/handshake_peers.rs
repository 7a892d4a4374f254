//! The simulated peers of the handshake tests (tests/support/peer.rs) checked on their own:
//! the worked frames decode, good peers answer each request even in pieces, faulty ones
//! misbehave as documented, and each peer meets its built-in profile through the runner.
#![allow(clippy::unwrap_used)]

mod support;

use support::peer::*;

fn h(s: &str) -> Vec<u8> {
    hsmon::hex::parse(s).unwrap()
}

fn bytes(r: &[Reply]) -> Vec<u8> {
    r.iter()
        .flat_map(|r| match r {
            Reply::Bytes(b) => b.clone(),
            Reply::Close => Vec::new(),
        })
        .collect()
}

#[test]
fn the_worked_frames_check_out_with_the_decoders() {
    let f = hsmon::decode::dlt645::parse(0, &DLT645_ADDRESS_REPLY).unwrap();
    assert!(f.status.is_ok(), "{f:?}");
    assert_eq!(f.span, 0..22);
    let f = hsmon::decode::mbus::parse(0, &MBUS_RSP_UD).unwrap();
    assert!(f.status.is_ok(), "{f:?}");
}

#[test]
fn good_peers_answer_each_request_even_in_pieces() {
    let mut mtk = Peer::new("mtk-brom", Fault::None).unwrap();
    assert_eq!(
        bytes(&mtk.on_bytes(&[0xA0, 0x0A, 0x50, 0x05])),
        h("5F F5 AF FA")
    );
    let mut stm = Peer::new("stm32", Fault::None).unwrap();
    assert_eq!(bytes(&stm.on_bytes(&[0x7F])), vec![0x79]);
    assert!(stm.on_bytes(&[0x00]).is_empty());
    assert_eq!(bytes(&stm.on_bytes(&[0xFF])), STM32_GET_REPLY.to_vec());
    let mut mbus = Peer::new("mbus", Fault::None).unwrap();
    assert_eq!(bytes(&mbus.on_bytes(&h("10 40 FE 3E"))), Vec::<u8>::new());
    assert_eq!(bytes(&mbus.on_bytes(&h("16"))), vec![0xE5]);
    assert_eq!(
        bytes(&mbus.on_bytes(&h("10 5B FE 59 16"))),
        MBUS_RSP_UD.to_vec()
    );
    let mut iec = Peer::new("iec104", Fault::None).unwrap();
    assert_eq!(
        bytes(&iec.on_bytes(&h("68 04 07 00 00 00"))),
        h("68 04 0B 00 00 00")
    );
    let mut dlt = Peer::new("dlt645", Fault::None).unwrap();
    let req = h("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16");
    assert_eq!(bytes(&dlt.on_bytes(&req)), DLT645_ADDRESS_REPLY.to_vec());
    let mut esp = Peer::new("esp32", Fault::None).unwrap();
    let mut sync = h("C0 00 08 24 00 00 00 00 00 07 07 12 20");
    sync.extend([0x55; 32]);
    sync.push(0xC0);
    assert_eq!(bytes(&esp.on_bytes(&sync)), ESP_SYNC_REPLY.repeat(8));
}

#[test]
fn faulty_peers_misbehave_as_named() {
    let mut mtk = Peer::new("mtk-brom", Fault::Echo).unwrap();
    assert_eq!(bytes(&mtk.on_bytes(&[0xA0])), vec![0xA0]);
    let mut stm = Peer::new("stm32", Fault::NotInBootMode).unwrap();
    assert_eq!(bytes(&stm.on_bytes(&[0x7F])), APP_TEXT.to_vec());
    let mut stm = Peer::new("stm32", Fault::Nack).unwrap();
    assert_eq!(bytes(&stm.on_bytes(&[0x7F])), vec![0x1F]);
    let mut mbus = Peer::new("mbus", Fault::LongFrame).unwrap();
    assert_eq!(
        bytes(&mbus.on_bytes(&h("10 40 FE 3E 16"))),
        MBUS_RSP_UD.to_vec()
    );
    let mut mbus = Peer::new("mbus", Fault::HalfDuplexEcho).unwrap();
    assert_eq!(
        bytes(&mbus.on_bytes(&h("10 40 FE 3E 16"))),
        h("10 40 FE 3E 16 E5")
    );
    let mut mbus = Peer::new("mbus", Fault::WrongBaud).unwrap();
    assert_eq!(bytes(&mbus.on_bytes(&h("10 40 FE 3E 16"))), h("78 80"));
    let mut silent = Peer::new("stm32", Fault::Silent).unwrap();
    assert!(silent.on_bytes(&[0x7F]).is_empty());
    let mut closes = Peer::new("iec104", Fault::Closes).unwrap();
    assert_eq!(closes.on_bytes(&h("68 04 07 00 00 00")), vec![Reply::Close]);
    assert!(Peer::new("mtk-brom", Fault::LongFrame).is_none());
    assert!(Peer::new("iso7816-select", Fault::None).is_none());
    assert_eq!(
        Fault::from_name("half-duplex-echo"),
        Some(Fault::HalfDuplexEcho)
    );
}

/// Every built-in line profile passes against its good peer and fails against each
/// faulty one with the kind of divergence a user meets (the runner driven by hand).
#[test]
fn each_peer_meets_its_profile() {
    use hsmon::diagnose::knowledge::Knowledge;
    use hsmon::event::{Command, ConnectionState, Event, TimedEvent};
    use hsmon::handshake::profile::{Profiles, Transport};
    use hsmon::handshake::runner::{Outcome, Runner};
    use std::sync::Arc;
    use std::time::Duration;

    let k = Arc::new(Knowledge::embedded().unwrap());
    let set = Profiles::built_in().unwrap();
    let cases: &[(&str, Fault, &str)] = &[
        ("mtk-brom", Fault::None, "ok"),
        ("mtk-brom", Fault::Echo, "mtk.brom_echo_a0"),
        ("mtk-brom", Fault::NotInBootMode, "mtk.text_reply"),
        ("mtk-brom", Fault::Silent, "mtk.no_reply"),
        ("stm32", Fault::None, "ok"),
        ("stm32", Fault::NotInBootMode, "stm32.text_instead_of_ack"),
        ("stm32", Fault::Nack, "stm32.nack_on_init"),
        ("stm32", Fault::Silent, "stm32.no_ack"),
        ("esp32", Fault::None, "ok"),
        ("esp32", Fault::NotInBootMode, "esp.not_download_mode"),
        ("esp32", Fault::Silent, "esp.no_reply"),
        ("mbus", Fault::None, "ok"),
        ("mbus", Fault::HalfDuplexEcho, "ok"),
        ("mbus", Fault::LongFrame, "mbus.stale_response"),
        ("mbus", Fault::WrongBaud, "mbus.garbage_instead_of_e5"),
        ("mbus", Fault::Silent, "mbus.no_answer"),
        ("iec104", Fault::None, "ok"),
        ("iec104", Fault::Closes, "iec104.no_startdt_con"),
        ("dlt645", Fault::None, "ok"),
        ("dlt645", Fault::HalfDuplexEcho, "ok"),
        ("dlt645", Fault::Silent, "handshake.divergence"),
    ];
    for &(name, fault, want) in cases {
        let p = set.get(name).unwrap().clone();
        let ready = match p.transport {
            Transport::Serial(settings) => Event::LineSettings {
                settings,
                modem: Default::default(),
            },
            _ => Event::Connection(ConnectionState::Up),
        };
        let mut peer = Peer::new(name, fault).unwrap();
        let mut runner = Runner::new(p, Some(k.clone()), Duration::ZERO);
        let mut now = Duration::ZERO;
        let mut pending = vec![ready];
        for _ in 0..10_000 {
            if runner.is_finished() {
                break;
            }
            if pending.is_empty() {
                now = now.max(runner.next_wake().unwrap());
                let out = runner.poll(now);
                for c in out.commands {
                    if let Command::Transmit(b) = c {
                        pending.push(Event::Tx(b));
                    }
                }
                continue;
            }
            let e = pending.remove(0);
            now += Duration::from_millis(1);
            let out = runner.on_event(&TimedEvent::new(now, e.clone()));
            if let Event::Tx(b) = &e {
                for r in peer.on_bytes(b) {
                    pending.push(match r {
                        Reply::Bytes(b) => Event::Rx(b),
                        Reply::Close => Event::Connection(ConnectionState::Down {
                            reason: "closed".to_string(),
                        }),
                    });
                }
            }
            for c in out.commands {
                if let Command::Transmit(b) = c {
                    pending.push(Event::Tx(b));
                }
            }
        }
        let got = match runner.outcome() {
            Some(Outcome::Success) => "ok".to_string(),
            Some(Outcome::Diverged(d)) => d.explanation[0].id.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(got, want, "{name} against a {fault:?} peer");
    }
}
