//! APDU round-trip overhead of hsmon's card source against a bare pcsc transmit loop, on the
//! same virtual card behind the real pcscd + vpcd (the test stack; `scripts/setup.sh` installs
//! it). `cargo run --release --example apdu_overhead [N]`
//!
//! Bare: `Card::transmit` in a loop. hsmon: `Command::SendApdu` into the card source, each
//! waiting for its `Apdu` event — the channel hops, the wake-up of the PC/SC thread and the
//! event on the way back included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement harness

// The test stack's pcscd and virtual-card helpers (only those: the rest of tests/support
// needs the test binary's environment).
#[path = "../tests/support/pcscd.rs"]
mod pcscd;
#[path = "../tests/support/vpcd.rs"]
mod vpcd;

use std::time::{Duration, Instant};

use hsmon::event::{ApduOrigin, Command, Event};
use hsmon::sim::card::SimCard;
use pcscd::{connect_shared, leave, pcsc_test};
use vpcd::VirtualCard;

const APDU: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let (_lock, reader) = pcsc_test();
    let _vcard = VirtualCard::insert(SimCard::default());

    // Bare pcsc.
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let card = connect_shared(&ctx, &reader);
    let mut buf = [0u8; 300];
    for _ in 0..50 {
        card.transmit(&APDU, &mut buf).unwrap();
    }
    let t0 = Instant::now();
    for _ in 0..n {
        card.transmit(&APDU, &mut buf).unwrap();
    }
    let bare = t0.elapsed() / n as u32;
    leave(card);

    // hsmon's card source.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hsmon = rt.block_on(async {
        let opts = hsmon::source::card::CardOptions {
            reader: Some(reader.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let mut h = hsmon::source::card::spawn(opts, hsmon::clock::Clock::start());
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), h.events.recv())
                .await
                .expect("the card source connects")
                .expect("events");
            if matches!(
                ev.event,
                Event::Card(hsmon::event::CardEvent::Connected { .. })
            ) {
                break;
            }
        }
        let once = async |h: &mut hsmon::source::SourceHandle| {
            h.commands
                .send(Command::SendApdu {
                    apdu: APDU.to_vec(),
                    origin: ApduOrigin::User,
                })
                .await
                .unwrap();
            loop {
                let ev = h.events.recv().await.unwrap();
                if let Event::Apdu(x) = ev.event {
                    assert_eq!(x.sw(), Some(0x9000));
                    break;
                }
            }
        };
        for _ in 0..50 {
            once(&mut h).await;
        }
        let t0 = Instant::now();
        for _ in 0..n {
            once(&mut h).await;
        }
        let per = t0.elapsed() / n as u32;
        let _ = h.commands.send(Command::Shutdown).await;
        per
    });
    println!("APDU round trip over pcscd + vpcd ({n} × GET CHALLENGE):");
    println!(
        "  bare pcsc transmit loop   {:>8.1} µs",
        bare.as_secs_f64() * 1e6
    );
    println!(
        "  through hsmon's source    {:>8.1} µs",
        hsmon.as_secs_f64() * 1e6
    );
    println!(
        "  ratio {:.2}  (overhead {:.1} µs per APDU)",
        hsmon.as_secs_f64() / bare.as_secs_f64(),
        (hsmon.as_secs_f64() - bare.as_secs_f64()) * 1e6
    );
}
