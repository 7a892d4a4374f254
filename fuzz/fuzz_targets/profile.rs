//! Handshake profiles as untrusted text, and the runner against untrusted replies: parsing
//! never panics and every error points inside the text; a profile that parses runs to an end
//! (success, divergence or device error) whatever the device answers, and so does every
//! built-in profile.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hsmon::diagnose::knowledge::Knowledge;
use hsmon::event::{
    ApduExchange, CardEvent, Command, ConnectionState, Event, ShareMode, TimedEvent,
};
use hsmon::handshake::profile::{Profile, ProfileError, Profiles, Transport};
use hsmon::handshake::runner::Runner;
use libfuzzer_sys::fuzz_target;

fn built_in() -> &'static [Profile] {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        Profiles::built_in()
            .expect("the built-in profiles parse")
            .all()
            .to_vec()
    })
}

fn knowledge() -> Arc<Knowledge> {
    static K: OnceLock<Arc<Knowledge>> = OnceLock::new();
    K.get_or_init(|| Arc::new(Knowledge::embedded().expect("the built-in knowledge parses")))
        .clone()
}

/// Runs `profile` with the device answering each send with the next chunk of `replies`.
fn drive(profile: Profile, replies: &[u8]) {
    let transport = profile.transport.clone();
    let mut runner = Runner::new(profile, Some(knowledge()), Duration::ZERO);
    let mut now = Duration::ZERO;
    let ready = match transport {
        Transport::Serial(settings) => Event::LineSettings {
            settings,
            modem: Default::default(),
        },
        Transport::Tcp { .. } => Event::Connection(ConnectionState::Up),
        Transport::Card => Event::Card(CardEvent::Connected {
            reader: "fuzz".into(),
            protocol: "T=1".into(),
            share: ShareMode::Shared,
            atr: vec![0x3B],
        }),
    };
    let mut chunks = replies.chunks(7);
    let mut queue = vec![ready];
    // Every step is bounded (timeouts, retries, steps): the run must end.
    for _ in 0..200_000 {
        if runner.is_finished() {
            return;
        }
        let out = match queue.pop() {
            Some(e) => {
                now += Duration::from_millis(1);
                runner.on_event(&TimedEvent::new(now, e))
            }
            None => {
                now = now.max(runner.next_wake().expect("an unfinished run has a wake time"));
                runner.poll(now)
            }
        };
        for c in out.commands {
            match c {
                Command::Transmit(b) => {
                    if let Some(r) = chunks.next() {
                        queue.push(Event::Rx(r.to_vec()));
                    }
                    queue.push(Event::Tx(b));
                }
                Command::SendApdu { apdu, origin } => {
                    let response = chunks.next().unwrap_or_default().to_vec();
                    queue.push(Event::Apdu(ApduExchange {
                        command: apdu,
                        response,
                        duration: Duration::from_millis(1),
                        origin,
                    }));
                }
                _ => {}
            }
        }
    }
    panic!("the run did not end");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Profile::parse(&text, "fuzz.toml") {
        Ok(p) => {
            let _ = p.list_line();
            if let Err(e) = p.check_knowledge(&knowledge()) {
                assert!(e.location().is_some(), "{e}");
            }
            drive(p, data);
        }
        Err(e) => {
            let lines = text.split('\n').count();
            match &e {
                ProfileError::Invalid { line, column, .. } => {
                    assert!(*line >= 1 && *line <= lines && *column >= 1, "{e} (of {lines} lines)");
                }
                other => panic!("parsing gave a non-positional error: {other}"),
            }
        }
    }
    if let Some(&pick) = data.first() {
        let all = built_in();
        drive(all[usize::from(pick) % all.len()].clone(), &data[1..]);
    }
});
